// kernels/cuda/moe.cu
// defines: moe_workspace_bytes_cuda, moe_route_forward_cuda, moe_aux_loss_cuda, moe_route_backward_cuda, moe_dispatch_cuda, moe_dispatch_backward_cuda, moe_combine_forward_cuda, moe_combine_backward_cuda
#include <cuda_runtime.h>

extern "C" {
#include "base/common.h"
}
#include "kernels/cuda/ops_cuda.h"

extern "C" size_t moe_workspace_bytes_cuda(int T, int E, int K) {
    return 0;
}

extern "C" int moe_route_forward_cuda(float *probs, int32_t *topk_idx, float *topk_w, const void *logits, int T, int E, int K,
                           int dtype, cudaStream_t st) {
    return cispo_fail("moe_route_forward_cuda: not implemented yet");
}

extern "C" int moe_aux_loss_cuda(float *out, const float *probs, const int32_t *topk_idx, int T, int E, int K, void *ws,
                      size_t ws_bytes, cudaStream_t st) {
    return cispo_fail("moe_aux_loss_cuda: not implemented yet");
}

extern "C" int moe_route_backward_cuda(void *dlogits, const float *dtopk_w, float d_aux, const float *probs,
                            const int32_t *topk_idx, const float *topk_w, int T, int E, int K, int acc, int dtype,
                            void *ws, size_t ws_bytes, cudaStream_t st) {
    return cispo_fail("moe_route_backward_cuda: not implemented yet");
}

extern "C" int moe_dispatch_cuda(void *xe, int32_t *perm, int32_t *offsets, const void *x, const int32_t *topk_idx, int T, int C,
                      int E, int K, int dtype, void *ws, size_t ws_bytes, cudaStream_t st) {
    return cispo_fail("moe_dispatch_cuda: not implemented yet");
}

extern "C" int moe_dispatch_backward_cuda(void *dx, const void *dxe, const int32_t *perm, int T, int C, int K, int acc, int dtype,
                               void *ws, size_t ws_bytes, cudaStream_t st) {
    return cispo_fail("moe_dispatch_backward_cuda: not implemented yet");
}

extern "C" int moe_combine_forward_cuda(void *y, const void *ye, const float *topk_w, const int32_t *perm, int T, int C, int K,
                             int dtype, void *ws, size_t ws_bytes, cudaStream_t st) {
    return cispo_fail("moe_combine_forward_cuda: not implemented yet");
}

extern "C" int moe_combine_backward_cuda(void *dye, float *dtopk_w, const void *dy, const void *ye, const float *topk_w,
                              const int32_t *perm, int T, int C, int K, int acc, int dtype, void *ws, size_t ws_bytes,
                              cudaStream_t st) {
    return cispo_fail("moe_combine_backward_cuda: not implemented yet");
}
