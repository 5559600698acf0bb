// kernels/cpu/matmul.c — GEMM through OpenBLAS (row-major), the building block of every linear layer.
// defines: matmul_cpu
// Threads: one, unless the environment names a count for OpenBLAS's own pool (OPENBLAS_NUM_THREADS, or
// GOTO_NUM_THREADS / OMP_NUM_THREADS, which it also reads). Its sgemm gives the same bits for the same shapes
// and thread count, but not across thread counts (a weight gradient's [512, 64] x 3000-token product differs
// in 60% of its elements between one thread and two), so OpenBLAS's default of one thread a core would make a
// run's results depend on the machine's core count; at the CPU demo's sizes one thread is also faster (on 2
// cores: 20% less wall time than two threads, 2.5x less CPU time).
#include "kernels/cpu/ops_cpu.h"

#include <cblas.h>
#include <stdlib.h>

// Before main (this file is in every program that runs a CPU op), so every cblas call of kernels/cpu sees it.
__attribute__((constructor)) static void cpu_blas_threads(void) {
    if (getenv("OPENBLAS_NUM_THREADS") || getenv("GOTO_NUM_THREADS") || getenv("OMP_NUM_THREADS")) return;
    openblas_set_num_threads(1);
}

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
