// kernels/cuda/ops_cuda.h — the CUDA implementations behind the op API (kernels/ops.h), callable
// from C. Each has the op's name with _cuda, device pointers, and returns 0 or -1 with
// cispo_last_error(); kernels/ops.c dispatches to them and reports failures.
// defines: (declarations only; see each kernels/cuda/*.h)
#ifndef CISPO_KERNELS_CUDA_OPS_CUDA_H
#define CISPO_KERNELS_CUDA_OPS_CUDA_H

#include "kernels/backend.h"
#include "kernels/cuda/lightning.h"

#endif
