// kernels/cuda/elementwise.cu
// defines: residual_mix_cuda, act_forward_cuda, act_backward_cuda, glu_forward_cuda, glu_backward_cuda, sigmoid_gate_forward_cuda, sigmoid_gate_backward_cuda, qkv_split_cuda, qkv_merge_cuda, embedding_forward_cuda, embedding_backward_cuda, kv_write_cuda
#include <cuda_runtime.h>

extern "C" {
#include "base/common.h"
}
#include "kernels/cuda/ops_cuda.h"

extern "C" int residual_mix_cuda(void *out, const void *r, const void *y, float alpha, float beta, size_t n, int dtype,
                      cudaStream_t st) {
    return cispo_fail("residual_mix_cuda: not implemented yet");
}

extern "C" int act_forward_cuda(int act, void *out, const void *x, size_t n, int dtype, cudaStream_t st) {
    return cispo_fail("act_forward_cuda: not implemented yet");
}

extern "C" int act_backward_cuda(int act, void *dx, const void *dout, const void *x, size_t n, int acc, int dtype, cudaStream_t st) {
    return cispo_fail("act_backward_cuda: not implemented yet");
}

extern "C" int glu_forward_cuda(int act, void *out, const void *h13, int T, int F, int dtype, cudaStream_t st) {
    return cispo_fail("glu_forward_cuda: not implemented yet");
}

extern "C" int glu_backward_cuda(int act, void *dh13, const void *dout, const void *h13, int T, int F, int acc, int dtype,
                      cudaStream_t st) {
    return cispo_fail("glu_backward_cuda: not implemented yet");
}

extern "C" int sigmoid_gate_forward_cuda(void *out, const void *g, const void *x, size_t n, int dtype, cudaStream_t st) {
    return cispo_fail("sigmoid_gate_forward_cuda: not implemented yet");
}

extern "C" int sigmoid_gate_backward_cuda(void *dg, void *dx, const void *dout, const void *g, const void *x, size_t n, int acc,
                               int dtype, cudaStream_t st) {
    return cispo_fail("sigmoid_gate_backward_cuda: not implemented yet");
}

extern "C" int qkv_split_cuda(void *q, void *k, void *v, const void *qkv, int T, int H, int D, int dtype, cudaStream_t st) {
    return cispo_fail("qkv_split_cuda: not implemented yet");
}

extern "C" int qkv_merge_cuda(void *dqkv, const void *dq, const void *dk, const void *dv, int T, int H, int D, int dtype,
                   cudaStream_t st) {
    return cispo_fail("qkv_merge_cuda: not implemented yet");
}

extern "C" int embedding_forward_cuda(void *out, const int32_t *ids, const void *table, int T, int C, int dtype, cudaStream_t st) {
    return cispo_fail("embedding_forward_cuda: not implemented yet");
}

extern "C" int embedding_backward_cuda(float *dtable, const void *dout, const int32_t *ids, int T, int C, int pad_id, int dtype,
                            cudaStream_t st) {
    return cispo_fail("embedding_backward_cuda: not implemented yet");
}

extern "C" int kv_write_cuda(void *kcache, void *vcache, const void *k, const void *v, const int32_t *slot, const int32_t *pos,
                  int T, int KVD, int max_ctx, int dtype, cudaStream_t st) {
    return cispo_fail("kv_write_cuda: not implemented yet");
}
