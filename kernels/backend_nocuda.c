// kernels/backend_nocuda.c — the CUDA backend's entry points in a build without CUDA: no device.
// defines: backend_cuda_device_count, backend_cuda_init, backend_cuda_release, backend_cuda_alloc,
//          backend_cuda_free, backend_cuda_memset, backend_cuda_copy, backend_cuda_sync, backend_cuda_mem_info
#ifndef CISPO_HAVE_CUDA
#include "base/common.h"
#include "kernels/cuda/backend_cuda.h"

int backend_cuda_device_count(void) { return 0; }
int backend_cuda_init(backend_t *b) {
    (void)b;
    return cispo_fail("backend cuda: this build has no CUDA (configure with -DCISPO_CUDA=ON on a machine with nvcc)");
}
// The remaining entry points are unreachable: no context of kind BACKEND_CUDA can be initialised.
void backend_cuda_release(backend_t *b) { (void)b; }
void *backend_cuda_alloc(backend_t *b, size_t bytes) {
    (void)b, (void)bytes;
    CISPO_ASSERT(0 && "CUDA memory without CUDA");
    return NULL;
}
void backend_cuda_free(backend_t *b, void *p) { (void)b, (void)p; }
void backend_cuda_memset(backend_t *b, void *p, size_t bytes) { (void)b, (void)p, (void)bytes; }
void backend_cuda_copy(backend_t *b, void *dst, const void *src, size_t bytes, int dir) {
    (void)b, (void)dst, (void)src, (void)bytes, (void)dir;
    CISPO_ASSERT(0 && "CUDA copy without CUDA");
}
void backend_cuda_sync(backend_t *b) { (void)b; }
void backend_cuda_mem_info(backend_t *b, size_t *free_bytes, size_t *total_bytes) {
    (void)b, (void)free_bytes, (void)total_bytes;
}
#else
typedef int backend_nocuda_unused;  // ISO C forbids an empty translation unit
#endif
