// kernels/cpu/moe.c — mixture-of-experts routing (softmax, top-K, renormalise), the load-balancing
// loss, and the dispatch/combine permutation between token order and expert order.
// defines: moe_route_forward_cpu, moe_route_backward_cpu, moe_aux_loss_cpu,
//          moe_sort_cpu, moe_dispatch_cpu, moe_dispatch_backward_cpu, moe_combine_forward_cpu, moe_combine_rmsnorm_cpu,
//          moe_combine_backward_cpu, residual_rmsnorm_route_cpu
// Formulas: docs/model.md "MoE block". Slots are s = t*K + k; the dispatched buffer holds the slots grouped
// by expert, each group in slot order (a stable sort), so expert e owns rows offsets[e]..offsets[e+1).
#include "kernels/cpu/ops_cpu.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "base/common.h"

// logits, probs [T,E]; topk_idx, topk_w [T,K]
void moe_route_forward_cpu(float *probs, int32_t *topk_idx, float *topk_w, const float *logits, int T, int E,
                           int K, int replay) {
    CISPO_ASSERT(K >= 1 && K <= E);
    cpu_scratch_t mark = cpu_scratch_begin();
    double *ex = cpu_scratch_take((size_t)E * sizeof(double));  // e^(z - max) of one token
    for (int t = 0; t < T; t++) {
        const float *z = logits + (size_t)t * E;
        float *p = probs + (size_t)t * E;
        int32_t *idx = topk_idx + (size_t)t * K;
        float *w = topk_w + (size_t)t * K;
        // softmax: exponentials and their sum in double, probabilities rounded to fp32
        float mx = z[0];
        for (int e = 1; e < E; e++) mx = z[e] > mx ? z[e] : mx;
        double sum = 0;
        for (int e = 0; e < E; e++) sum += ex[e] = exp((double)z[e] - mx);
        for (int e = 0; e < E; e++) p[e] = (float)(ex[e] / sum);
        // top-K by repeated arg-max: strict '>' keeps the lower expert index on ties; K is small (2..8)
        double wsum = 0;
        if (replay) {
            for (int k = 0; k < K; k++) {
                CISPO_ASSERT(idx[k] >= 0 && idx[k] < E);
                for (int j = 0; j < k; j++) CISPO_ASSERT(idx[j] != idx[k]);
                wsum += p[idx[k]];
            }
        }
        for (int k = 0; k < K && !replay; k++) {
            int best = -1;
            for (int e = 0; e < E; e++) {
                int taken = 0;
                for (int j = 0; j < k; j++) taken |= idx[j] == e;
                if (!taken && (best < 0 || p[e] > p[best])) best = e;
            }
            idx[k] = best;
            wsum += p[best];
        }
        for (int k = 0; k < K; k++) w[k] = (float)(p[idx[k]] / wsum);
    }
    cpu_scratch_end(mark);
}

// count[e] = number of (token, slot) pairs routed to e.
static void moe_counts(int64_t *count, const int32_t *topk_idx, int T, int E, int K) {
    memset(count, 0, (size_t)E * sizeof(int64_t));
    for (size_t s = 0; s < (size_t)T * K; s++) {
        CISPO_ASSERT(topk_idx[s] >= 0 && topk_idx[s] < E);
        count[topk_idx[s]]++;
    }
}

// aux = E * sum_{slot,e} f[slot,e] P[e] with f[slot,e] = (#t: idx[t,slot] = e)/T, P[e] = mean_t p[t,e];
// summing f over slots gives count[e]/T, so aux = E/T^2 * sum_e count[e] * sum_t p[t,e].
float moe_aux_loss_cpu(const float *probs, const int32_t *topk_idx, int T, int E, int K) {
    if (T <= 0) return 0.0f;
    cpu_scratch_t mark = cpu_scratch_begin();
    int64_t *count = cpu_scratch_take((size_t)E * sizeof(int64_t));
    double *psum = cpu_scratch_take((size_t)E * sizeof(double));
    memset(psum, 0, (size_t)E * sizeof(double));
    moe_counts(count, topk_idx, T, E, K);
    for (int t = 0; t < T; t++)
        for (int e = 0; e < E; e++) psum[e] += probs[(size_t)t * E + e];
    double aux = 0;
    for (int e = 0; e < E; e++) aux += (double)count[e] * psum[e];
    aux *= (double)E / ((double)T * T);
    cpu_scratch_end(mark);
    return (float)aux;
}

// Chain rule back to the logits, per token:
//   w_k = p_{i_k} / S, S = sum_k p_{i_k}:   dp_{i_j} = (dw_j - sum_k dw_k w_k) / S
//   aux (f constant):                      dp_e   += d_aux * E * count[e] / T^2
//   softmax:                               dz_e    = p_e (dp_e - sum_e' p_e' dp_e')
// dlogits [T,E] accumulates; dtopk_w may be NULL (aux only).
void moe_route_backward_cpu(float *dlogits, const float *dtopk_w, float d_aux, const float *probs,
                            const int32_t *topk_idx, const float *topk_w, int T, int E, int K) {
    if (T <= 0) return;
    cpu_scratch_t mark = cpu_scratch_begin();
    int64_t *count = cpu_scratch_take((size_t)E * sizeof(int64_t));
    double *dp = cpu_scratch_take((size_t)E * sizeof(double));
    moe_counts(count, topk_idx, T, E, K);
    double aux_scale = (double)d_aux * E / ((double)T * T);
    for (int t = 0; t < T; t++) {
        const float *p = probs + (size_t)t * E;
        const int32_t *idx = topk_idx + (size_t)t * K;
        const float *w = topk_w + (size_t)t * K;
        for (int e = 0; e < E; e++) dp[e] = aux_scale * count[e];
        if (dtopk_w) {
            const float *dw = dtopk_w + (size_t)t * K;
            double S = 0, dot = 0;
            for (int k = 0; k < K; k++) {
                S += p[idx[k]];
                dot += (double)dw[k] * w[k];
            }
            for (int k = 0; k < K; k++) dp[idx[k]] += (dw[k] - dot) / S;
        }
        double pdp = 0;
        for (int e = 0; e < E; e++) pdp += p[e] * dp[e];
        float *dz = dlogits + (size_t)t * E;
        for (int e = 0; e < E; e++) dz[e] += (float)(p[e] * (dp[e] - pdp));
    }
    cpu_scratch_end(mark);
}

// x [T,C] -> xe [T*K, C] in expert order; perm [T*K]; offsets [E+1]
void moe_sort_cpu(int32_t *perm, int32_t *offsets, const int32_t *topk_idx, int T, int E, int K) {
    cpu_scratch_t mark = cpu_scratch_begin();
    int64_t *count = cpu_scratch_take((size_t)E * sizeof(int64_t));
    moe_counts(count, topk_idx, T, E, K);
    offsets[0] = 0;
    for (int e = 0; e < E; e++) offsets[e + 1] = offsets[e] + (int32_t)count[e];
    // counting sort: scanning slots in order and filling each expert's rows front to back is stable
    int32_t *next = cpu_scratch_take((size_t)E * sizeof(int32_t));
    memcpy(next, offsets, (size_t)E * sizeof(int32_t));
    for (int32_t s = 0; s < (int32_t)((size_t)T * K); s++) perm[next[topk_idx[s]]++] = s;
    cpu_scratch_end(mark);
}

void moe_dispatch_cpu(float *xe, int32_t *perm, int32_t *offsets, const float *x, const int32_t *topk_idx,
                      int T, int C, int E, int K) {
    moe_sort_cpu(perm, offsets, topk_idx, T, E, K);
    for (size_t j = 0; j < (size_t)T * K; j++)
        memcpy(xe + j * C, x + (size_t)(perm[j] / K) * C, (size_t)C * sizeof(float));
}

// dx[perm[j] / K] += dxe[j], in row order (deterministic)
void moe_dispatch_backward_cpu(float *dx, const float *dxe, const int32_t *perm, int T, int C, int K) {
    for (size_t j = 0; j < (size_t)T * K; j++) {
        float *d = dx + (size_t)(perm[j] / K) * C;
        const float *g = dxe + j * C;
        for (int c = 0; c < C; c++) d[c] += g[c];
    }
}

// row_of[s] = dispatched row of slot s (the inverse of perm), from the caller's scratch bracket
static int32_t *moe_rows_of_slots(const int32_t *perm, int T, int K) {
    size_t n = (size_t)T * K;
    int32_t *row_of = cpu_scratch_take((n ? n : 1) * sizeof(int32_t));
    for (size_t j = 0; j < n; j++) {
        CISPO_ASSERT(perm[j] >= 0 && (size_t)perm[j] < n);
        row_of[perm[j]] = (int32_t)j;
    }
    return row_of;
}

// y [T,C] += sum_k topk_w[t,k] * ye[row of slot t*K+k]; ye [T*K, C]
void moe_combine_forward_cpu(float *y, const float *ye, const float *topk_w, const int32_t *perm, int T, int C,
                             int K) {
    cpu_scratch_t mark = cpu_scratch_begin();
    int32_t *row_of = moe_rows_of_slots(perm, T, K);
    for (int t = 0; t < T; t++) {
        float *yr = y + (size_t)t * C;
        for (int k = 0; k < K; k++) {
            size_t s = (size_t)t * K + k;
            float w = topk_w[s];
            const float *e = ye + (size_t)row_of[s] * C;
            for (int c = 0; c < C; c++) yr[c] += w * e[c];
        }
    }
    cpu_scratch_end(mark);
}

// the combine into zeros, then residual_rmsnorm_cpu: x_out = alpha r + beta y, out = rmsnorm(x_out) w
void moe_combine_rmsnorm_cpu(float *x_out, float *out, float *rstd, const float *r, const float *ye,
                             const float *topk_w, const int32_t *perm, float alpha, float beta, const float *w, int T,
                             int C, int K, float eps) {
    cpu_scratch_t mark = cpu_scratch_begin();
    float *y = cpu_scratch_take((size_t)T * C * sizeof(float));
    memset(y, 0, (size_t)T * C * sizeof(float));
    moe_combine_forward_cpu(y, ye, topk_w, perm, T, C, K);
    residual_rmsnorm_cpu(x_out, out, rstd, r, y, alpha, beta, w, T, C, eps);
    cpu_scratch_end(mark);
}

void residual_rmsnorm_route_cpu(float *x_out, float *out, float *rstd, const float *r, const float *y, float alpha,
                                float beta, const float *w, int T, int C, float eps, const float *wg, float *logits,
                                float *probs, int32_t *topk_idx, float *topk_w, int E, int K, int32_t *perm,
                                int32_t *offsets) {
    residual_rmsnorm_cpu(x_out, out, rstd, r, y, alpha, beta, w, T, C, eps);
    matmul_cpu(logits, out, wg, T, E, C, 0, 1, 1.0f, 0.0f);
    moe_route_forward_cpu(probs, topk_idx, topk_w, logits, T, E, K, 0);
    if (perm) moe_sort_cpu(perm, offsets, topk_idx, T, E, K);
}

// dye[row] += w dy[t];  dtopk_w[t,k] += <dy[t], ye[row]>   (either output may be NULL)
void moe_combine_backward_cpu(float *dye, float *dtopk_w, const float *dy, const float *ye, const float *topk_w,
                              const int32_t *perm, int T, int C, int K) {
    cpu_scratch_t mark = cpu_scratch_begin();
    int32_t *row_of = moe_rows_of_slots(perm, T, K);
    for (int t = 0; t < T; t++) {
        const float *g = dy + (size_t)t * C;
        for (int k = 0; k < K; k++) {
            size_t s = (size_t)t * K + k;
            size_t row = (size_t)row_of[s];
            if (dye) {
                float w = topk_w[s];
                float *d = dye + row * C;
                for (int c = 0; c < C; c++) d[c] += w * g[c];
            }
            if (dtopk_w) {
                const float *e = ye + row * C;
                double dot = 0;
                for (int c = 0; c < C; c++) dot += (double)g[c] * e[c];
                dtopk_w[s] += (float)dot;
            }
        }
    }
    cpu_scratch_end(mark);
}
