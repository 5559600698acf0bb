// kernels/cpu/matmul.c — GEMM through OpenBLAS (row-major), the building block of every linear layer.
// defines: matmul_cpu
// Threads: OpenBLAS's own pool (OPENBLAS_NUM_THREADS); its sgemm gives the same bits for the same
// shapes and thread count, so results are reproducible run to run.
#include "kernels/cpu/ops_cpu.h"

#include <cblas.h>

// C[M,N] = alpha * op(A) @ op(B) + beta * C.  A: [M,K] or (trans_a) [K,M]; B: [K,N] or (trans_b) [N,K].
void matmul_cpu(float *c, const float *a, const float *b, int m, int n, int k, int trans_a, int trans_b,
                float alpha, float beta) {
    if (m <= 0 || n <= 0) return;
    if (k <= 0) {
        // BLAS rejects a zero leading dimension; an empty product leaves beta * C (exact zeros when beta = 0).
        for (size_t i = 0; i < (size_t)m * n; i++) c[i] = beta == 0.0f ? 0.0f : beta * c[i];
        return;
    }
    int lda = trans_a ? m : k;
    int ldb = trans_b ? k : n;
    cblas_sgemm(CblasRowMajor, trans_a ? CblasTrans : CblasNoTrans, trans_b ? CblasTrans : CblasNoTrans, m, n, k,
                alpha, a, lda, b, ldb, beta, c, n);
}
