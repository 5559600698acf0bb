// kernels/cuda/optim.cu
// defines: sum_squares_cuda, scale_f32_cuda, adamw_step_cuda
#include <cuda_runtime.h>

extern "C" {
#include "base/common.h"
}
#include "kernels/cuda/ops_cuda.h"

extern "C" int sum_squares_cuda(double *result, const float *g, size_t n, void *ws, size_t ws_bytes, cudaStream_t st) {
    return cispo_fail("sum_squares_cuda: not implemented yet");
}

extern "C" int scale_f32_cuda(float *x, float s, size_t n, cudaStream_t st) {
    return cispo_fail("scale_f32_cuda: not implemented yet");
}

extern "C" int adamw_step_cuda(float *p, void *w_act, int dtype, float *m, float *v, const float *g, size_t n, float lr,
                    float beta1, float beta2, float eps, float wd, int step, cudaStream_t st) {
    return cispo_fail("adamw_step_cuda: not implemented yet");
}
