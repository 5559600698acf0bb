// kernels/cuda/attention.cu — causal softmax attention with grouped-query heads over packed
// sequences on the GPU (the op API's attention_forward/backward/decode; kernels/cpu/attention.c
// and attention_decode.c are the specification).
// defines: attention_workspace_bytes_cuda, attention_forward_cuda, attention_backward_cuda,
//          attention_decode_cuda
#include <cuda_runtime.h>

extern "C" {
#include "base/common.h" // C header without C++ guards
}
#include "kernels/cuda/ops_cuda.h"

size_t attention_workspace_bytes_cuda(int T, int nseq, int H, int KV, int D) {
    (void)nseq, (void)KV;
    return (size_t)T * H * D * sizeof(float) + (size_t)T * H * sizeof(float);
}

int attention_forward_cuda(void *o, float *lse, const void *q, const void *k, const void *v, const int32_t *cu_seqlens,
                           const int32_t *cu_host, int nseq, int T, int max_len, int H, int KV, int D, int window,
                           int dtype, void *ws, size_t ws_bytes, cudaStream_t st) {
    (void)o, (void)lse, (void)q, (void)k, (void)v, (void)cu_seqlens, (void)cu_host, (void)nseq, (void)T, (void)max_len;
    (void)H, (void)KV, (void)D, (void)window, (void)dtype, (void)ws, (void)ws_bytes, (void)st;
    return cispo_fail("attention_forward_cuda: not implemented yet");
}

int attention_backward_cuda(void *dq, void *dk, void *dv, const void *dout, const void *o, const float *lse,
                            const void *q, const void *k, const void *v, const int32_t *cu_seqlens,
                            const int32_t *cu_host, int nseq, int T, int max_len, int H, int KV, int D, int window,
                            int acc, int dtype, void *ws, size_t ws_bytes, cudaStream_t st) {
    (void)dq, (void)dk, (void)dv, (void)dout, (void)o, (void)lse, (void)q, (void)k, (void)v, (void)cu_seqlens;
    (void)cu_host, (void)nseq, (void)T, (void)max_len, (void)H, (void)KV, (void)D, (void)window, (void)acc;
    (void)dtype, (void)ws, (void)ws_bytes, (void)st;
    return cispo_fail("attention_backward_cuda: not implemented yet");
}

int attention_decode_cuda(void *o, const void *q, const void *kcache, const void *vcache, const int32_t *slot,
                          const int32_t *len, int n, int H, int KV, int D, int max_ctx, int window, int dtype,
                          cudaStream_t st) {
    (void)o, (void)q, (void)kcache, (void)vcache, (void)slot, (void)len, (void)n, (void)H, (void)KV, (void)D;
    (void)max_ctx, (void)window, (void)dtype, (void)st;
    return cispo_fail("attention_decode_cuda: not implemented yet");
}
