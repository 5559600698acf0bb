// kernels/cuda/gemm.cu — GEMMs of the op API on the GPU: dense (cuBLAS) and grouped over the
// experts of an MoE layer.
// defines: matmul_cuda, matmul_wgrad_cuda, grouped_matmul_workspace_bytes_cuda, grouped_matmul_cuda,
//          grouped_matmul_wgrad_cuda
//
// The op API is row-major; cuBLAS is column-major. A row-major [M,N] matrix is the column-major
// [N,M] one, so C = op(A) op(B) is computed as C^T = op(B)^T op(A)^T with the operands swapped.
#include <cublas_v2.h>
#include <cuda_bf16.h>
#include <cuda_runtime.h>
#include <stdint.h>
#include <stdlib.h>

extern "C" {
#include "base/common.h"  // C header without C++ guards
#include "kernels/backend.h"
}
#include "kernels/cuda/ops_cuda.h"

namespace {

int blas_fail(const char *what, cublasStatus_t s) {
    return cispo_fail("%s: cuBLAS status %d (%s)", what, (int)s, cublasGetStatusString(s));
}

int cuda_fail(const char *what, cudaError_t e) {
    return cispo_fail("%s: %s (%s)", what, cudaGetErrorName(e), cudaGetErrorString(e));
}

int dtype_type(int dtype, cudaDataType_t *t, const char *op) {
    if (dtype == DTYPE_BF16) *t = CUDA_R_16BF;
    else if (dtype == DTYPE_F32) *t = CUDA_R_32F;
    else return cispo_fail("%s: dtype %d not supported (bf16 or f32)", op, dtype);
    return 0;
}

// Row-major C[m,n] = alpha op(A) op(B) + beta C with leading dimensions (elements); A, B of type ab,
// C of type ct; fp32 accumulation (CUBLAS_COMPUTE_32F: no TF32 for fp32 inputs, as the reference).
int gemm_rm(cublasHandle_t h, int trans_a, int trans_b, int m, int n, int k, float alpha, const void *a, int lda,
            const void *b, int ldb, float beta, void *c, int ldc, cudaDataType_t ab, cudaDataType_t ct,
            const char *op) {
    if (m <= 0 || n <= 0) return 0;
    if (lda < 1) lda = 1;
    if (ldb < 1) ldb = 1;
    cublasStatus_t s = cublasGemmEx(h, trans_b ? CUBLAS_OP_T : CUBLAS_OP_N, trans_a ? CUBLAS_OP_T : CUBLAS_OP_N, n,
                                    m, k, &alpha, b, ab, ldb, a, ab, lda, &beta, c, ct, ldc, CUBLAS_COMPUTE_32F,
                                    CUBLAS_GEMM_DEFAULT);
    if (s != CUBLAS_STATUS_SUCCESS) return blas_fail(op, s);
    return 0;
}

}  // namespace

extern "C" int matmul_cuda(void *blas, void *c, const void *a, const void *bm, int m, int n, int k, int trans_a,
                           int trans_b, float alpha, float beta, int dtype, cudaStream_t st) {
    (void)st;  // the handle is bound to the stream
    cudaDataType_t t = CUDA_R_16BF;
    if (dtype_type(dtype, &t, "matmul_cuda")) return -1;
    return gemm_rm((cublasHandle_t)blas, trans_a, trans_b, m, n, k, alpha, a, trans_a ? m : k, bm, trans_b ? k : n,
                   beta, c, n, t, t, "matmul_cuda");
}

// dW[n_out, n_in] += dy[T, n_out]^T x[T, n_in], dW fp32
extern "C" int matmul_wgrad_cuda(void *blas, float *dw, const void *dy, const void *x, int n_out, int n_in, int T,
                                 int dtype, cudaStream_t st) {
    (void)st;
    cudaDataType_t t = CUDA_R_16BF;
    if (dtype_type(dtype, &t, "matmul_wgrad_cuda")) return -1;
    if (T <= 0) return 0;
    return gemm_rm((cublasHandle_t)blas, 1, 0, n_out, n_in, T, 1.0f, dy, n_out, x, n_in, 1.0f, dw, n_in, t,
                   CUDA_R_32F, "matmul_wgrad_cuda");
}

extern "C" size_t grouped_matmul_workspace_bytes_cuda(int G, int rows, int n, int k) {
    (void)rows, (void)n, (void)k;
    return (size_t)(G + 1) * sizeof(int32_t) + 256;
}

namespace {

// Host copy of the offsets (synchronises the stream).
int read_offsets(int32_t **out, const int32_t *offsets, int G, cudaStream_t st, const char *op) {
    int32_t *h = (int32_t *)malloc((size_t)(G + 1) * sizeof(int32_t));
    if (!h) return cispo_fail("%s: out of host memory", op);
    cudaError_t e = cudaMemcpyAsync(h, offsets, (size_t)(G + 1) * sizeof(int32_t), cudaMemcpyDeviceToHost, st);
    if (e == cudaSuccess) e = cudaStreamSynchronize(st);
    if (e != cudaSuccess) {
        free(h);
        return cuda_fail(op, e);
    }
    *out = h;
    return 0;
}

}  // namespace

extern "C" int grouped_matmul_cuda(void *blas, void *c, int ldc, const void *a, int lda, const void *w, int trans_w,
                                   const int32_t *offsets, int G, int rows, int n, int k, float beta, int dtype,
                                   void *ws, size_t ws_bytes, cudaStream_t st) {
    (void)ws, (void)ws_bytes, (void)rows;
    cudaDataType_t t = CUDA_R_16BF;
    if (dtype_type(dtype, &t, "grouped_matmul_cuda")) return -1;
    if (G <= 0 || n <= 0) return 0;
    int32_t *off;
    if (read_offsets(&off, offsets, G, st, "grouped_matmul_cuda")) return -1;
    size_t es = dtype == DTYPE_BF16 ? 2 : 4;
    int rc = 0;
    for (int g = 0; g < G && !rc; g++) {
        int r0 = off[g], nr = off[g + 1] - r0;
        if (nr <= 0) continue;
        rc = gemm_rm((cublasHandle_t)blas, 0, trans_w, nr, n, k, 1.0f, (const char *)a + (size_t)r0 * lda * es, lda,
                     (const char *)w + (size_t)g * n * k * es, trans_w ? k : n, beta,
                     (char *)c + (size_t)r0 * ldc * es, ldc, t, t, "grouped_matmul_cuda");
    }
    free(off);
    return rc;
}

extern "C" int grouped_matmul_wgrad_cuda(void *blas, float *dw, const void *dc, int lddc, const void *a, int lda,
                                         const int32_t *offsets, int G, int rows, int n, int k, int dtype, void *ws,
                                         size_t ws_bytes, cudaStream_t st) {
    (void)ws, (void)ws_bytes, (void)rows;
    cudaDataType_t t = CUDA_R_16BF;
    if (dtype_type(dtype, &t, "grouped_matmul_wgrad_cuda")) return -1;
    if (G <= 0 || n <= 0 || k <= 0) return 0;
    int32_t *off;
    if (read_offsets(&off, offsets, G, st, "grouped_matmul_wgrad_cuda")) return -1;
    size_t es = dtype == DTYPE_BF16 ? 2 : 4;
    int rc = 0;
    for (int g = 0; g < G && !rc; g++) {
        int r0 = off[g], nr = off[g + 1] - r0;
        if (nr <= 0) continue;
        rc = gemm_rm((cublasHandle_t)blas, 1, 0, n, k, nr, 1.0f, (const char *)dc + (size_t)r0 * lddc * es, lddc,
                     (const char *)a + (size_t)r0 * lda * es, lda, 1.0f, dw + (size_t)g * n * k, k, t, CUDA_R_32F,
                     "grouped_matmul_wgrad_cuda");
    }
    free(off);
    return rc;
}
