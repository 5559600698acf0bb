// kernels/cuda/backend_cuda.cu — device, stream, cuBLAS handle and device memory of a CUDA context.
// defines: backend_cuda_device_count, backend_cuda_init, backend_cuda_release, backend_cuda_alloc,
//          backend_cuda_free, backend_cuda_memset, backend_cuda_copy, backend_cuda_sync, backend_cuda_mem_info,
//          backend_cuda_sm_count
#include <cublas_v2.h>
#include <cuda_runtime.h>
#include <stdio.h>

extern "C" {
#include "base/common.h"
}
#include "kernels/cuda/backend_cuda.h"

static void cuda_die(const char *file, int line, const char *stmt, cudaError_t e) {
    char what[512];
    snprintf(what, sizeof what, "%s -> %s (%s)", stmt, cudaGetErrorName(e), cudaGetErrorString(e));
    cispo_die(file, line, what, "CUDA call failed");
}
#define CU(call)                                                   \
    do {                                                           \
        cudaError_t e_ = (call);                                   \
        if (e_ != cudaSuccess) cuda_die(__FILE__, __LINE__, #call, e_); \
    } while (0)

extern "C" int backend_cuda_device_count(void) {
    int n = 0;
    if (cudaGetDeviceCount(&n) != cudaSuccess) {
        cudaGetLastError();  // clear the sticky "no device" error
        return 0;
    }
    return n;
}

extern "C" int backend_cuda_init(backend_t *b) {
    int n = backend_cuda_device_count();
    if (b->device < 0 || b->device >= n)
        return cispo_fail("backend cuda: device %d asked, %d visible", b->device, n);
    cudaError_t e = cudaSetDevice(b->device);
    if (e != cudaSuccess) return cispo_fail("backend cuda: cudaSetDevice(%d): %s", b->device, cudaGetErrorString(e));
    cudaStream_t st;
    e = cudaStreamCreateWithFlags(&st, cudaStreamNonBlocking);
    if (e != cudaSuccess) return cispo_fail("backend cuda: stream: %s", cudaGetErrorString(e));
    cublasHandle_t h;
    cublasStatus_t s = cublasCreate(&h);
    if (s != CUBLAS_STATUS_SUCCESS) {
        cudaStreamDestroy(st);
        return cispo_fail("backend cuda: cublasCreate failed (status %d)", (int)s);
    }
    cublasSetStream(h, st);
    b->stream = st;
    b->blas = h;
    return 0;
}

extern "C" void backend_cuda_release(backend_t *b) {
    if (b->blas) cublasDestroy((cublasHandle_t)b->blas);
    if (b->stream) cudaStreamDestroy((cudaStream_t)b->stream);
    b->blas = NULL;
    b->stream = NULL;
}

extern "C" void *backend_cuda_alloc(backend_t *b, size_t bytes) {
    void *p = NULL;
    cudaError_t e = cudaMalloc(&p, bytes ? bytes : 1);
    if (e != cudaSuccess) {
        size_t fr = 0, tot = 0;
        cudaMemGetInfo(&fr, &tot);
        char what[256];
        snprintf(what, sizeof what, "cudaMalloc(%zu bytes) on device %d: %s (%zu of %zu bytes free)", bytes, b->device,
                 cudaGetErrorString(e), fr, tot);
        cispo_die(__FILE__, __LINE__, what, "out of device memory: lower max_tokens or the batch");
    }
    CU(cudaMemsetAsync(p, 0, bytes ? bytes : 1, (cudaStream_t)b->stream));
    return p;
}

extern "C" void backend_cuda_free(backend_t *b, void *p) {
    CU(cudaStreamSynchronize((cudaStream_t)b->stream));
    CU(cudaFree(p));
}

extern "C" void backend_cuda_memset(backend_t *b, void *p, size_t bytes) {
    CU(cudaMemsetAsync(p, 0, bytes, (cudaStream_t)b->stream));
}

extern "C" void backend_cuda_copy(backend_t *b, void *dst, const void *src, size_t bytes, int dir) {
    cudaStream_t st = (cudaStream_t)b->stream;
    cudaMemcpyKind k = dir == BACKEND_CUDA_H2D ? cudaMemcpyHostToDevice
                       : dir == BACKEND_CUDA_D2H ? cudaMemcpyDeviceToHost : cudaMemcpyDeviceToDevice;
    CU(cudaMemcpyAsync(dst, src, bytes, k, st));
    // host buffers may be reused or freed as soon as the call returns
    if (dir != BACKEND_CUDA_D2D) CU(cudaStreamSynchronize(st));
}

extern "C" void backend_cuda_sync(backend_t *b) { CU(cudaStreamSynchronize((cudaStream_t)b->stream)); }

extern "C" void backend_cuda_mem_info(backend_t *b, size_t *free_bytes, size_t *total_bytes) {
    (void)b;
    CU(cudaMemGetInfo(free_bytes, total_bytes));
}

extern "C" int backend_cuda_sm_count(void) {
    int dev = 0, n = 0;
    if (cudaGetDevice(&dev) != cudaSuccess ||
        cudaDeviceGetAttribute(&n, cudaDevAttrMultiProcessorCount, dev) != cudaSuccess)
        return 132;
    return n > 0 ? n : 132;
}
