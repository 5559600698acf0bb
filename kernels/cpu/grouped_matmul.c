// kernels/cpu/grouped_matmul.c — GEMMs over row groups (the experts of an MoE layer) and the weight
// gradient of a linear layer, fp32 reference (kernels/ops.h states the contract).
// defines: grouped_matmul_cpu, grouped_matmul_pair_cpu, grouped_matmul_glu_cpu, grouped_matmul_wgrad_cpu,
//          matmul_wgrad_cpu
#include <cblas.h>
#include <string.h>

#include "kernels/cpu/ops_cpu.h"

void grouped_matmul_cpu(float *c, int ldc, const float *a, int lda, const float *w, int trans_w,
                        const int32_t *offsets, int G, int n, int k, float beta) {
    for (int g = 0; g < G; g++) {
        int r0 = offsets[g], rows = offsets[g + 1] - r0;
        if (rows <= 0) continue;
        const float *wg = w + (size_t)g * n * k;
        cblas_sgemm(CblasRowMajor, CblasNoTrans, trans_w ? CblasTrans : CblasNoTrans, rows, n, k, 1.0f,
                    a + (size_t)r0 * lda, lda, wg, trans_w ? k : n, beta, c + (size_t)r0 * ldc, ldc);
    }
}

void grouped_matmul_pair_cpu(float *c, int ldc, const float *a, int lda, const float *w, const float *v,
                             const int32_t *offsets, int G, int n, int k) {
    grouped_matmul_cpu(c, ldc, a, lda, w, 1, offsets, G, n, k, 0.0f);
    grouped_matmul_cpu(c + n, ldc, a, lda, v, 1, offsets, G, n, k, 0.0f);
}

// The pair's [h1 | h3] rows in scratch, then the gated activation: the two ops it stands for, in their order.
void grouped_matmul_glu_cpu(float *out, const float *a, int lda, const float *w, const float *v, const int32_t *offsets,
                            int G, int rows, int n, int k, int act, const int32_t *gather, int gk) {
    if (rows <= 0 || n <= 0) return;
    cpu_scratch_t mark = cpu_scratch_begin();
    if (gather) {  // the rows in slot order first (moe_dispatch's copy)
        float *ga = cpu_scratch_take((size_t)rows * k * sizeof(float));
        for (int s = 0; s < rows; s++)
            memcpy(ga + (size_t)s * k, a + (size_t)(gather[s] / gk) * lda, (size_t)k * sizeof(float));
        a = ga, lda = k;
    }
    float *h13 = cpu_scratch_take((size_t)rows * 2 * n * sizeof(float));
    grouped_matmul_pair_cpu(h13, 2 * n, a, lda, w, v, offsets, G, n, k);
    glu_forward_cpu(act, out, h13, rows, n);
    cpu_scratch_end(mark);
}

void grouped_matmul_wgrad_cpu(float *dw, const float *dc, int lddc, const float *a, int lda, const int32_t *offsets,
                              int G, int n, int k, int acc) {
    for (int g = 0; g < G; g++) {
        int r0 = offsets[g], rows = offsets[g + 1] - r0;
        if (rows <= 0) {
            if (!acc) memset(dw + (size_t)g * n * k, 0, (size_t)n * k * sizeof(float));
            continue;
        }
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, n, k, rows, 1.0f, dc + (size_t)r0 * lddc, lddc,
                    a + (size_t)r0 * lda, lda, acc ? 1.0f : 0.0f, dw + (size_t)g * n * k, k);
    }
}

void matmul_wgrad_cpu(float *dw, const float *dy, const float *x, int n_out, int n_in, int T, int acc) {
    if (T <= 0) {
        if (!acc) memset(dw, 0, (size_t)n_out * n_in * sizeof(float));
        return;
    }
    matmul_cpu(dw, dy, x, n_out, n_in, T, 1, 0, 1.0f, acc ? 1.0f : 0.0f);
}
