// kernels/cpu/rmsnorm.c — RMSNorm over the last dimension: out = w * (x * rstd), rstd = 1/sqrt(mean(x^2) + eps).
// defines: rmsnorm_forward_cpu, rmsnorm_backward_cpu, residual_rmsnorm_cpu, rmsnorm_gate_forward_cpu,
//          rmsnorm_gate_backward_cpu
// Sums run in double: C is up to 8192 (the lightning output norm spans all A channels), where a
// float sum would lose ~1e-6 relative; the stored rstd and outputs are fp32 like HF's.
#include "kernels/cpu/ops_cpu.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "base/common.h"

// x, out [T,C]; w [C]; rstd [T]
void rmsnorm_forward_cpu(float *out, float *rstd, const float *x, const float *w, int T, int C, float eps) {
    for (int t = 0; t < T; t++) {
        const float *xr = x + (size_t)t * C;
        float *o = out + (size_t)t * C;
        double ss = 0;
        for (int c = 0; c < C; c++) ss += (double)xr[c] * xr[c];
        float r = (float)(1.0 / sqrt(ss / C + (double)eps));
        rstd[t] = r;
        for (int c = 0; c < C; c++) o[c] = w[c] * (xr[c] * r);  // HF order: weight * (x * rstd)
    }
}

void residual_rmsnorm_cpu(float *x_out, float *out, float *rstd, const float *r, const float *y, float alpha,
                          float beta, const float *w, int T, int C, float eps) {
    residual_mix_cpu(x_out, r, y, alpha, beta, (size_t)T * C);
    rmsnorm_forward_cpu(out, rstd, x_out, w, T, C, eps);
}

void rmsnorm_gate_forward_cpu(float *out, float *gated, float *rstd, const float *x, const float *w, const float *g,
                              int ldg, int T, int C, float eps) {
    cpu_scratch_t mark = cpu_scratch_begin();
    float *row = out ? NULL : cpu_scratch_take((size_t)C * sizeof(float));  // out NULL: the norm a row at a time
    for (int t = 0; t < T; t++) {
        float *y = out ? out + (size_t)t * C : row;
        rmsnorm_forward_cpu(y, rstd + t, x + (size_t)t * C, w, 1, C, eps);
        sigmoid_gate_forward_cpu(gated + (size_t)t * C, g + (size_t)t * ldg, y, (size_t)C);
    }
    cpu_scratch_end(mark);
}

// y_i = w_i x_i r, r = (mean(x^2) + eps)^(-1/2):
//   dx_i += r w_i dy_i - (r^3 / C) x_i sum_j w_j dy_j x_j,   dw_i += sum_t dy_ti x_ti r_t
// dx [T,C] and dw [C] accumulate; either may be NULL.
void rmsnorm_backward_cpu(float *dx, float *dw, const float *dout, const float *x, const float *w,
                          const float *rstd, int T, int C) {
    cpu_scratch_t mark = cpu_scratch_begin();
    double *dw_acc = dw ? cpu_scratch_take((size_t)C * sizeof(double)) : NULL;
    if (dw_acc) memset(dw_acc, 0, (size_t)C * sizeof(double));
    for (int t = 0; t < T; t++) {
        const float *xr = x + (size_t)t * C;
        const float *dy = dout + (size_t)t * C;
        double r = rstd[t];
        if (dx) {
            double dot = 0;
            for (int c = 0; c < C; c++) dot += (double)w[c] * dy[c] * xr[c];
            double k = r * r * r * dot / C;
            float *d = dx + (size_t)t * C;
            for (int c = 0; c < C; c++) d[c] += (float)(r * w[c] * dy[c] - k * xr[c]);
        }
        if (dw_acc)
            for (int c = 0; c < C; c++) dw_acc[c] += (double)dy[c] * xr[c] * r;
    }
    if (dw_acc) {
        for (int c = 0; c < C; c++) dw[c] += (float)dw_acc[c];
    }
    cpu_scratch_end(mark);
}

// rmsnorm_gate_forward's backward: y = w (x r) recomputed as the forward computes it, then sigmoid_gate_backward_cpu
// (dg = dgated y s (1 - s), dy = dgated s, s = sigmoid(g)) and rmsnorm_backward_cpu of dy. dx and dg are written, dw
// accumulates; dx or dw may be NULL.
void rmsnorm_gate_backward_cpu(float *dx, float *dw, float *dg, const float *dgated, const float *x, const float *w,
                               const float *rstd, const float *g, int ldg, int T, int C) {
    cpu_scratch_t mark = cpu_scratch_begin();
    float *y = cpu_scratch_take((size_t)C * sizeof(float)), *dy = cpu_scratch_take((size_t)T * C * sizeof(float));
    memset(dy, 0, (size_t)T * C * sizeof(float));
    memset(dg, 0, (size_t)T * C * sizeof(float));
    for (int t = 0; t < T; t++) {
        const float *xr = x + (size_t)t * C;
        for (int c = 0; c < C; c++) y[c] = w[c] * (xr[c] * rstd[t]);
        sigmoid_gate_backward_cpu(dg + (size_t)t * C, dy + (size_t)t * C, dgated + (size_t)t * C, g + (size_t)t * ldg,
                                  y, (size_t)C);
    }
    if (dx) memset(dx, 0, (size_t)T * C * sizeof(float));
    rmsnorm_backward_cpu(dx, dw, dy, x, w, rstd, T, C);
    cpu_scratch_end(mark);
}
