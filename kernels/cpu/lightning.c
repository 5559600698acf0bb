// kernels/cpu/lightning.c — lightning attention (linear attention with per-head exponential decay),
// fp32 CPU reference: the specification the CUDA kernels are tested against (docs/model.md).
// defines: lightning_forward_cpu, lightning_backward_cpu, lightning_decode_cpu, lightning_decode_qkv_cpu,
//          lightning_decode_qkv_gate_cpu,
//          lightning_forward_recurrent_cpu, lightning_forward_explicit_cpu, lightning_slopes
//
// Per head, with lam = exp(-slope):  S_t = lam S_{t-1} + k_t^T v_t,  o_t = q_t S_t  (S [D(key), D(value)]).
// Chunked form over blocks of B tokens (local indices r, c in [0, m), m = block length <= B):
//   O_i = ((Q_i K_i^T) o Dec) V_i + diag(lam^(r+1)) Q_i S_{i-1}          Dec[r,c] = lam^(r-c), r >= c
//   S_i = lam^m S_{i-1} + (diag(lam^(m-1-c)) K_i)^T V_i
// Per-head matrices are views into the token-major [T, H, D] tensors with leading dimension H*D, so
// every product is one cblas_sgemm without copies; only decay-scaled operands go to scratch.
// Decay powers lam^n are exp(-slope * n) evaluated in double and rounded once, never products of
// rounded lam, so long sequences do not accumulate error in the decay itself.
#include "base/common.h"
#include "kernels/cpu/ops_cpu.h"

#include <cblas.h>
#include <math.h>
#include <string.h>

// ---- small helpers ----

// pw[n] = lam^n = exp(-slope * n), n = 0..nmax (slope is the fp32 value the caller holds).
static void decay_powers(float *pw, float slope, int nmax) {
    for (int n = 0; n <= nmax; n++) pw[n] = (float)exp(-(double)slope * (double)n);
}

// a [m, m] (row-major) <- a o Dec: keeps the causal lower triangle scaled by lam^(r-c), zeroes the rest.
static void apply_causal_decay(float *a, int m, const float *pw) {
    for (int r = 0; r < m; r++) {
        float *row = a + (size_t)r * m;
        for (int c = 0; c <= r; c++) row[c] *= pw[r - c];
        for (int c = r + 1; c < m; c++) row[c] = 0.0f;
    }
}

// dst [m, D] (dense) <- diag(scale[r]) src[m, D] (leading dimension ld); scale[r] = pw[off + dir*r].
static void scale_rows(float *dst, const float *src, int m, int D, size_t ld, const float *pw, int off, int dir) {
    for (int r = 0; r < m; r++) {
        float s = pw[off + dir * r];
        const float *x = src + (size_t)r * ld;
        float *y = dst + (size_t)r * D;
        for (int d = 0; d < D; d++) y[d] = s * x[d];
    }
}

static void check_seqlens(const int32_t *cu_seqlens, int nseq) {
    CISPO_ASSERT(nseq >= 0 && cu_seqlens != NULL);
    CISPO_ASSERT(cu_seqlens[0] == 0);
    for (int s = 0; s < nseq; s++) CISPO_ASSERT(cu_seqlens[s + 1] >= cu_seqlens[s]);
}

// Longest sequence length, so scratch is sized by min(block, longest) rather than block alone.
static int max_seqlen(const int32_t *cu_seqlens, int nseq) {
    int m = 0;
    for (int s = 0; s < nseq; s++)
        if (cu_seqlens[s + 1] - cu_seqlens[s] > m) m = cu_seqlens[s + 1] - cu_seqlens[s];
    return m;
}

// ---- chunked forward ----

typedef struct {
    float *pw;  // [B+1] decay powers
    float *a;   // [B, B] intra-chunk scores
    float *x;   // [B, D] decay-scaled operand
    float *s;   // [D, D] running state
} lightning_scratch;

// from the per-thread arena of the CPU ops (the caller brackets it with cpu_scratch_begin/end)
static lightning_scratch scratch_alloc(int B, int D) {
    lightning_scratch w;
    w.pw = cpu_scratch_take((size_t)(B + 1) * sizeof(float));
    w.a = cpu_scratch_take((size_t)B * B * sizeof(float));
    w.x = cpu_scratch_take((size_t)B * D * sizeof(float));
    w.s = cpu_scratch_take((size_t)D * D * sizeof(float));
    return w;
}

// S <- lam^m S + (diag(lam^(m-1-c)) K)^T V for one chunk of m tokens (k, v point at its first row).
static void state_advance(float *S, const float *k, const float *v, int m, int D, int ld, const float *pw,
                          float *x) {
    float decay = pw[m];
    for (size_t i = 0; i < (size_t)D * D; i++) S[i] *= decay;
    scale_rows(x, k, m, D, ld, pw, m - 1, -1);
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, D, D, m, 1.0f, x, D, v, ld, 1.0f, S, D);
}

void lightning_forward_cpu(float *o, float *state_out, const float *q, const float *k, const float *v,
                           const float *state_in, const float *slopes, const int32_t *cu_seqlens, int nseq,
                           int H, int D, int block) {
    CISPO_ASSERT(H > 0 && D > 0 && block >= 1);
    check_seqlens(cu_seqlens, nseq);
    int longest = max_seqlen(cu_seqlens, nseq);
    int B = block < longest ? block : (longest > 0 ? longest : 1);
    cpu_scratch_t mark = cpu_scratch_begin();
    lightning_scratch w = scratch_alloc(B, D);
    const int ld = H * D;
    const size_t DD = (size_t)D * D;
    for (int h = 0; h < H; h++) {
        decay_powers(w.pw, slopes[h], B);
        for (int sq = 0; sq < nseq; sq++) {
            float *S = w.s;
            size_t st = ((size_t)sq * H + h) * DD;
            int have_state = state_in != NULL;
            if (have_state) memcpy(S, state_in + st, DD * sizeof(float));
            else memset(S, 0, DD * sizeof(float));
            for (int t0 = cu_seqlens[sq]; t0 < cu_seqlens[sq + 1]; t0 += B) {
                int m = cu_seqlens[sq + 1] - t0 < B ? cu_seqlens[sq + 1] - t0 : B;
                size_t row = ((size_t)t0 * H + h) * D;
                const float *Q = q + row, *K = k + row, *V = v + row;
                float *O = o + row;
                // intra: O = ((Q K^T) o Dec) V
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, m, m, D, 1.0f, Q, ld, K, ld, 0.0f, w.a, m);
                apply_causal_decay(w.a, m, w.pw);
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, m, D, m, 1.0f, w.a, m, V, ld, 0.0f, O, ld);
                // inter: O += diag(lam^(r+1)) Q S_{i-1} (S is exactly zero before the first chunk without state_in)
                if (have_state) {
                    scale_rows(w.x, Q, m, D, ld, w.pw, 1, 1);
                    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, m, D, D, 1.0f, w.x, D, S, D, 1.0f, O, ld);
                }
                state_advance(S, K, V, m, D, ld, w.pw, w.x);
                have_state = 1;
            }
            if (state_out) memcpy(state_out + st, S, DD * sizeof(float));
        }
    }
    cpu_scratch_end(mark);
}

// ---- chunked backward ----
// dQ = ((dO V^T) o M) K + (inter through S),  dK = ((dO V^T) o M)^T Q,  dV = ((Q K^T) o M)^T dO.
// Three parts per (sequence, head):
//  1. intra-chunk (independent per chunk): the Dec-masked products within each chunk.
//  2. forward sweep: recompute S_{i-1} and add dQ_i += diag(lam^(r+1)) dO_i S_{i-1}^T.
//  3. backward sweep with the gradient state G_i = sum_{t after chunk i} lam^(t - end_i + 1) q_t^T dO_t:
//     dK_i += diag(lam^(m-1-c)) V_i G_i^T,  dV_i += diag(lam^(m-1-c)) K_i G_i,
//     G_{i-1} = lam^m G_i + (diag(lam^(r+1)) Q_i)^T dO_i;  after the first chunk G_{-1} = dL/dS_in.

void lightning_backward_cpu(float *dq, float *dk, float *dv, float *dstate_in, const float *dout,
                            const float *q, const float *k, const float *v, const float *state_in,
                            const float *slopes, const int32_t *cu_seqlens, int nseq, int H, int D, int block) {
    CISPO_ASSERT(H > 0 && D > 0 && block >= 1);
    check_seqlens(cu_seqlens, nseq);
    int longest = max_seqlen(cu_seqlens, nseq);
    int B = block < longest ? block : (longest > 0 ? longest : 1);
    cpu_scratch_t mark = cpu_scratch_begin();
    lightning_scratch w = scratch_alloc(B, D);
    float *g = cpu_scratch_take((size_t)D * D * sizeof(float));  // G, the running gradient state
    const int ld = H * D;
    const size_t DD = (size_t)D * D;
    for (int h = 0; h < H; h++) {
        decay_powers(w.pw, slopes[h], B);
        for (int sq = 0; sq < nseq; sq++) {
            const int t_beg = cu_seqlens[sq], t_end = cu_seqlens[sq + 1];
            const int nchunks = (t_end - t_beg + B - 1) / B;
            size_t st = ((size_t)sq * H + h) * DD;

            // 1. intra-chunk
            for (int i = 0; i < nchunks; i++) {
                int t0 = t_beg + i * B;
                int m = t_end - t0 < B ? t_end - t0 : B;
                size_t row = ((size_t)t0 * H + h) * D;
                const float *Q = q + row, *K = k + row, *V = v + row, *dO = dout + row;
                // A = (dO V^T) o Dec:  dQ += A K,  dK += A^T Q
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, m, m, D, 1.0f, dO, ld, V, ld, 0.0f, w.a, m);
                apply_causal_decay(w.a, m, w.pw);
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, m, D, m, 1.0f, w.a, m, K, ld, 1.0f, dq + row, ld);
                cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, m, D, m, 1.0f, w.a, m, Q, ld, 1.0f, dk + row, ld);
                // A = (Q K^T) o Dec:  dV += A^T dO
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, m, m, D, 1.0f, Q, ld, K, ld, 0.0f, w.a, m);
                apply_causal_decay(w.a, m, w.pw);
                cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, m, D, m, 1.0f, w.a, m, dO, ld, 1.0f, dv + row, ld);
            }

            // 2. forward sweep over chunks: dQ_i += diag(lam^(r+1)) dO_i S_{i-1}^T
            float *S = w.s;
            int have_state = state_in != NULL;
            if (have_state) memcpy(S, state_in + st, DD * sizeof(float));
            else memset(S, 0, DD * sizeof(float));
            for (int i = 0; i < nchunks; i++) {
                int t0 = t_beg + i * B;
                int m = t_end - t0 < B ? t_end - t0 : B;
                size_t row = ((size_t)t0 * H + h) * D;
                if (have_state) {
                    scale_rows(w.x, dout + row, m, D, ld, w.pw, 1, 1);
                    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, m, D, D, 1.0f, w.x, D, S, D, 1.0f, dq + row, ld);
                }
                if (i + 1 < nchunks) state_advance(S, k + row, v + row, m, D, ld, w.pw, w.x);
                have_state = 1;
            }

            // 3. backward sweep over chunks with G
            memset(g, 0, DD * sizeof(float));
            for (int i = nchunks - 1; i >= 0; i--) {
                int t0 = t_beg + i * B;
                int m = t_end - t0 < B ? t_end - t0 : B;
                size_t row = ((size_t)t0 * H + h) * D;
                if (i + 1 < nchunks) {  // G is zero after the last chunk
                    scale_rows(w.x, v + row, m, D, ld, w.pw, m - 1, -1);
                    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, m, D, D, 1.0f, w.x, D, g, D, 1.0f, dk + row, ld);
                    scale_rows(w.x, k + row, m, D, ld, w.pw, m - 1, -1);
                    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, m, D, D, 1.0f, w.x, D, g, D, 1.0f, dv + row, ld);
                }
                float decay = w.pw[m];
                for (size_t j = 0; j < DD; j++) g[j] *= decay;
                scale_rows(w.x, q + row, m, D, ld, w.pw, 1, 1);
                cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, D, D, m, 1.0f, w.x, D, dout + row, ld, 1.0f, g, D);
            }
            if (dstate_in)
                for (size_t j = 0; j < DD; j++) dstate_in[st + j] += g[j];
        }
    }
    cpu_scratch_end(mark);
}

// ---- decode: one token per sequence, state updated in place ----

void lightning_decode_cpu(float *o, float *state, const float *q, const float *k, const float *v,
                          const float *slopes, int nseq, int H, int D) {
    const size_t DD = (size_t)D * D;
    for (int sq = 0; sq < nseq; sq++) {
        for (int h = 0; h < H; h++) {
            float lam = (float)exp(-(double)slopes[h]);
            size_t row = ((size_t)sq * H + h) * D;
            const float *qr = q + row, *kr = k + row, *vr = v + row;
            float *S = state + ((size_t)sq * H + h) * DD;
            float *orow = o + row;
            for (int d = 0; d < D; d++) orow[d] = 0.0f;
            for (int a = 0; a < D; a++) {  // S[a, :] = lam S[a, :] + k[a] v;  o += q[a] S[a, :]
                float *Sa = S + (size_t)a * D;
                float ka = kr[a], qa = qr[a];
                for (int d = 0; d < D; d++) {
                    Sa[d] = lam * Sa[d] + ka * vr[d];
                    orow[d] += qa * Sa[d];
                }
            }
        }
    }
}

void lightning_decode_qkv_cpu(float *o, float *states, const int32_t *slot, const float *qkv, int ldq, int act,
                              const float *slopes, int n, int H, int D) {
    const size_t HD = (size_t)H * D, HDD = HD * D;
    cpu_scratch_t mark = cpu_scratch_begin();
    float *q = cpu_scratch_take(3 * HD * sizeof(float)), *k = q + HD, *v = k + HD;
    for (int i = 0; i < n; i++) {
        qkv_split_cpu(q, k, v, qkv + (size_t)i * ldq, 1, H, D, act);  // sequence i's row, as qkv_split makes it
        lightning_decode_cpu(o + i * HD, states + (size_t)slot[i] * HDD, q, k, v, slopes, 1, H, D);
    }
    cpu_scratch_end(mark);
}

void lightning_decode_qkv_gate_cpu(float *o, float *states, const int32_t *slot, const float *qkv, int ldq, int act,
                                   const float *slopes, int n, int H, int D, float *o_norm, float *gated, float *rstd,
                                   const float *w, const float *gate, int ldg, float eps) {
    lightning_decode_qkv_cpu(o, states, slot, qkv, ldq, act, slopes, n, H, D);
    rmsnorm_gate_forward_cpu(o_norm, gated, rstd, o, w, gate, ldg, n, H * D, eps);
}

// ---- oracles (double accumulation, so they are more accurate than the fp32 forms they check) ----

void lightning_forward_recurrent_cpu(float *o, float *state_out, const float *q, const float *k,
                                     const float *v, const float *state_in, const float *slopes,
                                     const int32_t *cu_seqlens, int nseq, int H, int D) {
    check_seqlens(cu_seqlens, nseq);
    const size_t DD = (size_t)D * D;
    double *S = cispo_malloc(DD * sizeof(double));
    double *orow = cispo_malloc((size_t)D * sizeof(double));
    for (int sq = 0; sq < nseq; sq++) {
        for (int h = 0; h < H; h++) {
            double lam = exp(-(double)slopes[h]);
            size_t st = ((size_t)sq * H + h) * DD;
            for (size_t j = 0; j < DD; j++) S[j] = state_in ? (double)state_in[st + j] : 0.0;
            for (int t = cu_seqlens[sq]; t < cu_seqlens[sq + 1]; t++) {
                size_t row = ((size_t)t * H + h) * D;
                for (int d = 0; d < D; d++) orow[d] = 0.0;
                for (int a = 0; a < D; a++) {
                    double *Sa = S + (size_t)a * D;
                    double ka = k[row + a], qa = q[row + a];
                    for (int d = 0; d < D; d++) {
                        Sa[d] = lam * Sa[d] + ka * (double)v[row + d];
                        orow[d] += qa * Sa[d];
                    }
                }
                for (int d = 0; d < D; d++) o[row + d] = (float)orow[d];
            }
            if (state_out)
                for (size_t j = 0; j < DD; j++) state_out[st + j] = (float)S[j];
        }
    }
    free(orow);
    free(S);
}

void lightning_forward_explicit_cpu(float *o, const float *q, const float *k, const float *v,
                                    const float *slopes, const int32_t *cu_seqlens, int nseq, int H, int D) {
    check_seqlens(cu_seqlens, nseq);
    double *orow = cispo_malloc((size_t)D * sizeof(double));
    for (int sq = 0; sq < nseq; sq++) {
        for (int h = 0; h < H; h++) {
            double slope = slopes[h];
            for (int t = cu_seqlens[sq]; t < cu_seqlens[sq + 1]; t++) {
                const float *qt = q + ((size_t)t * H + h) * D;
                for (int d = 0; d < D; d++) orow[d] = 0.0;
                for (int j = cu_seqlens[sq]; j <= t; j++) {  // o_t = sum_{j<=t} lam^(t-j) (q_t . k_j) v_j
                    const float *kj = k + ((size_t)j * H + h) * D, *vj = v + ((size_t)j * H + h) * D;
                    double s = 0.0;
                    for (int d = 0; d < D; d++) s += (double)qt[d] * kj[d];
                    s *= exp(-slope * (double)(t - j));
                    for (int d = 0; d < D; d++) orow[d] += s * vj[d];
                }
                float *ot = o + ((size_t)t * H + h) * D;
                for (int d = 0; d < D; d++) ot[d] = (float)orow[d];
            }
        }
    }
    free(orow);
}

// ---- slopes ----
// HF (transformers MiniMaxLightningAttention.get_slope_rate): base = 1 / 2^(8/H) in Python double;
// rate = base ** (h+1) evaluated by torch in fp32 (base rounded to fp32 first), then rate * factor
// in fp32 with factor = 1 - l/(N-1+1e-5) + 1e-5 rounded to fp32. We form the power in double and
// round once (torch's fp32 pow is within 1 ulp of that).
// Original (modeling_minimax_m1 _build_slope_tensor): the ALiBi slope list in Python double,
// start = ratio = 2^(-8/n) for n a power of two, list = start * ratio^i; for other H the list of
// the nearest lower power of two p followed by every other slope of the 2p list, first H - p of
// them; converted to fp32, then multiplied by 1 - l/(N-1) + 1e-5 in fp32. For H a power of two
// both flavours are 2^(-8(h+1)/H) times their factor.

static double alibi_pow2_slope(int n, int i) {  // i-th slope of the power-of-two list of length n
    double start = pow(2.0, -pow(2.0, -(log2((double)n) - 3.0)));
    return start * pow(start, (double)i);
}

static double alibi_slope(int n, int i) {
    int p = 1;
    while (p * 2 <= n) p *= 2;
    if (p == n || i < p) return alibi_pow2_slope(p, i);
    return alibi_slope(2 * p, 2 * (i - p));  // get_slopes(2p)[0::2][i - p]
}

void lightning_slopes(float *slopes, int H, int layer, int n_layers, int original_flavour) {
    CISPO_ASSERT(H > 0 && n_layers > 0 && layer >= 0 && layer < n_layers);
    if (original_flavour) {
        CISPO_ASSERT(n_layers > 1);  // the original code divides by N - 1
        float factor = (float)(1.0 - (double)layer / (double)(n_layers - 1) + 1e-5);
        for (int h = 0; h < H; h++) slopes[h] = (float)alibi_slope(H, h) * factor;
    } else {
        float factor = (float)(1.0 - (double)layer / ((double)(n_layers - 1) + 1e-5) + 1e-5);
        float base = (float)(1.0 / pow(2.0, 8.0 / (double)H));
        for (int h = 0; h < H; h++) slopes[h] = (float)pow((double)base, (double)(h + 1)) * factor;
    }
}
