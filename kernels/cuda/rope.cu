// kernels/cuda/rope.cu
// defines: rope_forward_cuda, rope_backward_cuda
#include <cuda_runtime.h>

extern "C" {
#include "base/common.h"
}
#include "kernels/cuda/ops_cuda.h"

extern "C" int rope_forward_cuda(void *out, const void *x, const int32_t *pos, int T, int nh, int D, int R,
                      const float *inv_freq_host, float scale, int dtype, cudaStream_t st) {
    return cispo_fail("rope_forward_cuda: not implemented yet");
}

extern "C" int rope_backward_cuda(void *dx, const void *dout, const int32_t *pos, int T, int nh, int D, int R,
                       const float *inv_freq_host, float scale, int acc, int dtype, cudaStream_t st) {
    return cispo_fail("rope_backward_cuda: not implemented yet");
}
