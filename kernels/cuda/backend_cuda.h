// kernels/cuda/backend_cuda.h — the CUDA side of kernels/backend.c: device, stream, cuBLAS handle,
// device memory. Without CUDA in the build these report no device (kernels/backend_nocuda.c).
// defines: backend_cuda_device_count, backend_cuda_init, backend_cuda_release, backend_cuda_alloc,
//          backend_cuda_free, backend_cuda_memset, backend_cuda_copy, backend_cuda_sync, backend_cuda_mem_info,
//          backend_cuda_sm_count
#ifndef CISPO_KERNELS_CUDA_BACKEND_CUDA_H
#define CISPO_KERNELS_CUDA_BACKEND_CUDA_H

#include <stddef.h>

#include "kernels/backend.h"

#ifdef __cplusplus
extern "C" {
#endif

enum { BACKEND_CUDA_H2D = 1, BACKEND_CUDA_D2H = 2, BACKEND_CUDA_D2D = 3 };

int backend_cuda_device_count(void);   // 0 when CUDA is not built or no device is usable
int backend_cuda_init(backend_t *b);   // device b->device: stream + cuBLAS handle; 0 or -1 (+ message)
void backend_cuda_release(backend_t *b);
void *backend_cuda_alloc(backend_t *b, size_t bytes);   // zeroed; aborts naming the size on failure
void backend_cuda_free(backend_t *b, void *p);
void backend_cuda_memset(backend_t *b, void *p, size_t bytes);
void backend_cuda_copy(backend_t *b, void *dst, const void *src, size_t bytes, int dir);  // D2H synchronises
void backend_cuda_sync(backend_t *b);
void backend_cuda_mem_info(backend_t *b, size_t *free_bytes, size_t *total_bytes);
// The current device's multiprocessors, 132 where the query fails (the kernels' grid sizes; CUDA builds only)
int backend_cuda_sm_count(void);

#ifdef __cplusplus
}
#endif

#endif
