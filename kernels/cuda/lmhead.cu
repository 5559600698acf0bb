// kernels/cuda/lmhead.cu — the fp32 LM head on the GPU: log-probs of the targets, log-sum-exp and
// entropy, and their backward, in chunks of tokens so that the [T, V] logits never exist at once.
// defines: lmhead_workspace_bytes_cuda, lmhead_logprob_forward_cuda, lmhead_logprob_backward_cuda,
//          lmhead_logits_cuda
#include <cublas_v2.h>
#include <cuda_runtime.h>
#include <stdint.h>

extern "C" {
#include "base/common.h"  // C header without C++ guards
#include "kernels/backend.h"
}
#include "kernels/cuda/ops_cuda.h"

extern "C" size_t lmhead_workspace_bytes_cuda(int T, int C, int V) {
    (void)T, (void)C, (void)V;
    return 0;
}

extern "C" int lmhead_logprob_forward_cuda(void *blas, float *logp, float *lse, float *entropy, const void *x,
                                           const void *w, const int32_t *targets, int T, int C, int V, int dtype,
                                           void *ws, size_t ws_bytes, cudaStream_t st) {
    (void)blas, (void)logp, (void)lse, (void)entropy, (void)x, (void)w, (void)targets, (void)T, (void)C, (void)V;
    (void)dtype, (void)ws, (void)ws_bytes, (void)st;
    return cispo_fail("lmhead_logprob_forward_cuda: not implemented yet");
}

extern "C" int lmhead_logprob_backward_cuda(void *blas, void *dx, float *dw, const float *dlogp, const void *x,
                                            const void *w, const int32_t *targets, const float *lse, int T, int C,
                                            int V, int acc, int dtype, void *ws, size_t ws_bytes, cudaStream_t st) {
    (void)blas, (void)dx, (void)dw, (void)dlogp, (void)x, (void)w, (void)targets, (void)lse, (void)T, (void)C;
    (void)V, (void)acc, (void)dtype, (void)ws, (void)ws_bytes, (void)st;
    return cispo_fail("lmhead_logprob_backward_cuda: not implemented yet");
}

extern "C" int lmhead_logits_cuda(void *blas, float *logits, const void *x, const void *w, int n, int C, int V,
                                  int dtype, cudaStream_t st) {
    (void)blas, (void)logits, (void)x, (void)w, (void)n, (void)C, (void)V, (void)dtype, (void)st;
    return cispo_fail("lmhead_logits_cuda: not implemented yet");
}
