// kernels/cpu/lmhead.c — fused LM head + log-softmax + per-token log-prob (+ entropy), forward and
// backward, in chunks of tokens so that at most chunk*V logits exist at once (V = 200064 in M1).
// defines: lmhead_logprob_forward_cpu, lmhead_logprob_backward_cpu
// The logits are fp32 (MiniMax computes the RL head in fp32, docs/rl.md); the softmax sums run in double.
// The backward recomputes each chunk's logits from x and w (nothing [T,V] is saved) and skips tokens
// whose gradient is zero (no target, or dlogp = 0 such as prompt tokens), gathering the rest.
#include "kernels/cpu/ops_cpu.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "base/common.h"

// x [T,C], w [V,C], targets [T]; logp, lse [T]; entropy [T] or NULL
void lmhead_logprob_forward_cpu(float *logp, float *lse, float *entropy, const float *x, const float *w,
                                const int32_t *targets, int T, int C, int V, int chunk) {
    CISPO_ASSERT(chunk >= 1 && V >= 1);
    if (T <= 0) return;
    if (chunk > T) chunk = T;
    cpu_scratch_t mark = cpu_scratch_begin();
    float *z = cpu_scratch_take((size_t)chunk * V * sizeof(float));  // logits of one chunk [n, V]
    for (int t0 = 0; t0 < T; t0 += chunk) {
        int n = T - t0 < chunk ? T - t0 : chunk;
        matmul_cpu(z, x + (size_t)t0 * C, w, n, V, C, 0, 1, 1.0f, 0.0f);
        for (int i = 0; i < n; i++) {
            int t = t0 + i;
            const float *zr = z + (size_t)i * V;
            float mx = zr[0];
            for (int v = 1; v < V; v++) mx = zr[v] > mx ? zr[v] : mx;
            double se = 0, sez = 0;  // sum e^(z-mx), sum e^(z-mx) z
            for (int v = 0; v < V; v++) {
                double e = expf(zr[v] - mx);
                se += e;
                sez += e * zr[v];
            }
            double l = mx + log(se);
            lse[t] = (float)l;
            int tg = targets[t];
            CISPO_ASSERT(tg < V);
            logp[t] = tg >= 0 ? (float)((double)zr[tg] - l) : 0.0f;
            if (entropy) entropy[t] = (float)(l - sez / se);  // H = -sum p log p = lse - sum p z
        }
    }
    cpu_scratch_end(mark);
}

// dz_v = dlogp_t (onehot(target)_v - exp(z_v - lse_t));  dx += dz @ w,  dw += dz^T @ x.
// dx [T,C] and dw [V,C] accumulate; either may be NULL.
void lmhead_logprob_backward_cpu(float *dx, float *dw, const float *dlogp, const float *x, const float *w,
                                 const int32_t *targets, const float *lse, int T, int C, int V, int chunk) {
    CISPO_ASSERT(chunk >= 1 && V >= 1);
    cpu_scratch_t mark = cpu_scratch_begin();
    int *active = cpu_scratch_take((size_t)(T > 0 ? T : 1) * sizeof(int));
    int na = 0;
    for (int t = 0; t < T; t++)
        if (targets[t] >= 0 && dlogp[t] != 0.0f) active[na++] = t;
    if (na == 0 || (!dx && !dw)) {
        cpu_scratch_end(mark);
        return;
    }
    if (chunk > na) chunk = na;
    float *xc = cpu_scratch_take((size_t)chunk * C * sizeof(float));   // gathered rows of x [n, C]
    float *dxc = cpu_scratch_take((size_t)chunk * C * sizeof(float));  // their dx [n, C]
    float *z = cpu_scratch_take((size_t)chunk * V * sizeof(float));    // logits, then dz [n, V]
    for (int a0 = 0; a0 < na; a0 += chunk) {
        int n = na - a0 < chunk ? na - a0 : chunk;
        for (int i = 0; i < n; i++)
            memcpy(xc + (size_t)i * C, x + (size_t)active[a0 + i] * C, (size_t)C * sizeof(float));
        matmul_cpu(z, xc, w, n, V, C, 0, 1, 1.0f, 0.0f);
        for (int i = 0; i < n; i++) {
            int t = active[a0 + i];
            float *zr = z + (size_t)i * V;
            float g = dlogp[t], l = lse[t];
            CISPO_ASSERT(targets[t] < V);
            for (int v = 0; v < V; v++) zr[v] = -g * expf(zr[v] - l);
            zr[targets[t]] += g;
        }
        if (dx) {
            matmul_cpu(dxc, z, w, n, C, V, 0, 0, 1.0f, 0.0f);
            for (int i = 0; i < n; i++) {
                float *d = dx + (size_t)active[a0 + i] * C;
                const float *s = dxc + (size_t)i * C;
                for (int c = 0; c < C; c++) d[c] += s[c];
            }
        }
        if (dw) matmul_cpu(dw, z, xc, V, C, n, 1, 0, 1.0f, 1.0f);
    }
    cpu_scratch_end(mark);
}
