// kernels/cpu/attention.c — causal softmax attention with grouped-query heads over packed
// sequences, fp32 CPU reference (the oracle for the CUDA kernels).
// defines: attention_forward_cpu, attention_backward_cpu
//
// Per sequence and query head j (kv head j / (H/KV)), scale = 1/sqrt(D):
//   S = scale Q K^T (causal: key c <= query r; with a window W also r - c < W),  P = softmax_rows(S),
//   O = P V,  lse_r = log sum_c exp(S_rc)
// Backward (P recomputed from lse, nothing T x T stored between calls):
//   dV = P^T dO,  dP = dO V^T,  dS = P o (dP - rowsum(dO o O)),  dQ = scale dS K,  dK = scale dS^T Q
// Queries go in row blocks of ATTN_QBLOCK so scratch is QBLOCK x (sequence length), not T x T;
// each block's products are cblas_sgemm calls on views of the [T, heads, D] tensors. A block of rows
// r0..r0+mb-1 sees keys kb..r0+mb-1 (kb = 0, or r0 - W + 1 with a window), so with a window the work
// per block is QBLOCK x (QBLOCK + W) whatever the sequence length.
#include "base/common.h"
#include "kernels/cpu/ops_cpu.h"

#include <cblas.h>
#include <math.h>
#include <string.h>

#define ATTN_QBLOCK 128

static void check_args(const int32_t *cu_seqlens, int nseq, int H, int KV, int D, int window) {
    CISPO_ASSERT(H > 0 && KV > 0 && D > 0 && H % KV == 0 && window >= 0);
    CISPO_ASSERT(nseq >= 0 && cu_seqlens != NULL && cu_seqlens[0] == 0);
    for (int s = 0; s < nseq; s++) CISPO_ASSERT(cu_seqlens[s + 1] >= cu_seqlens[s]);
}

static int max_seqlen(const int32_t *cu_seqlens, int nseq) {
    int m = 0;
    for (int s = 0; s < nseq; s++)
        if (cu_seqlens[s + 1] - cu_seqlens[s] > m) m = cu_seqlens[s + 1] - cu_seqlens[s];
    return m;
}

// The first key a block of queries starting at row r0 may see (0 without a window).
static int first_key(int r0, int window) { return window > 0 && r0 - window + 1 > 0 ? r0 - window + 1 : 0; }

void attention_forward_cpu(float *o, float *lse, const float *q, const float *k, const float *v,
                           const int32_t *cu_seqlens, int nseq, int H, int KV, int D, int window) {
    check_args(cu_seqlens, nseq, H, KV, D, window);
    const int group = H / KV, ldq = H * D, ldk = KV * D;
    const float scale = (float)(1.0 / sqrt((double)D));
    int longest = max_seqlen(cu_seqlens, nseq);
    cpu_scratch_t mark = cpu_scratch_begin();
    float *s = cpu_scratch_take((size_t)ATTN_QBLOCK * (longest > 0 ? longest : 1) * sizeof(float));  // [mb, n]
    for (int sq = 0; sq < nseq; sq++) {
        const int t0 = cu_seqlens[sq], len = cu_seqlens[sq + 1] - t0;
        for (int h = 0; h < H; h++) {
            const int kvh = h / group;
            const float *K0 = k + (size_t)t0 * ldk + (size_t)kvh * D, *V0 = v + (size_t)t0 * ldk + (size_t)kvh * D;
            for (int r0 = 0; r0 < len; r0 += ATTN_QBLOCK) {
                int mb = len - r0 < ATTN_QBLOCK ? len - r0 : ATTN_QBLOCK;
                int kb = first_key(r0, window), n = r0 + mb - kb;  // keys this block can see: [kb, kb + n)
                const float *K = K0 + (size_t)kb * ldk, *V = V0 + (size_t)kb * ldk;
                const float *Q = q + (size_t)(t0 + r0) * ldq + (size_t)h * D;
                float *O = o + (size_t)(t0 + r0) * ldq + (size_t)h * D;
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, mb, n, D, scale, Q, ldq, K, ldk, 0.0f, s, n);
                for (int r = 0; r < mb; r++) {
                    float *row = s + (size_t)r * n;
                    int last = r0 + r - kb;                                        // causal: columns ..last
                    int first = window > 0 && last - window + 1 > 0 ? last - window + 1 : 0;  // window: first..
                    float mx = row[first];
                    for (int c = first + 1; c <= last; c++) mx = row[c] > mx ? row[c] : mx;
                    double sum = 0.0;
                    for (int c = first; c <= last; c++) {
                        row[c] = expf(row[c] - mx);
                        sum += row[c];
                    }
                    float inv = (float)(1.0 / sum);
                    for (int c = 0; c < first; c++) row[c] = 0.0f;
                    for (int c = first; c <= last; c++) row[c] *= inv;
                    for (int c = last + 1; c < n; c++) row[c] = 0.0f;
                    lse[(size_t)(t0 + r0 + r) * H + h] = mx + (float)log(sum);
                }
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, mb, D, n, 1.0f, s, n, V, ldk, 0.0f, O, ldq);
            }
        }
    }
    cpu_scratch_end(mark);
}

void attention_backward_cpu(float *dq, float *dk, float *dv, const float *dout, const float *o,
                            const float *lse, const float *q, const float *k, const float *v,
                            const int32_t *cu_seqlens, int nseq, int H, int KV, int D, int window) {
    check_args(cu_seqlens, nseq, H, KV, D, window);
    const int group = H / KV, ldq = H * D, ldk = KV * D;
    const float scale = (float)(1.0 / sqrt((double)D));
    int longest = max_seqlen(cu_seqlens, nseq);
    size_t scratch = (size_t)ATTN_QBLOCK * (longest > 0 ? longest : 1);
    cpu_scratch_t mark = cpu_scratch_begin();
    float *p = cpu_scratch_take(scratch * sizeof(float));   // P  [mb, n]
    float *dp = cpu_scratch_take(scratch * sizeof(float));  // dP, then dS [mb, n]
    for (int sq = 0; sq < nseq; sq++) {
        const int t0 = cu_seqlens[sq], len = cu_seqlens[sq + 1] - t0;
        for (int h = 0; h < H; h++) {
            const int kvh = h / group;
            for (int r0 = 0; r0 < len; r0 += ATTN_QBLOCK) {
                int mb = len - r0 < ATTN_QBLOCK ? len - r0 : ATTN_QBLOCK;
                int kb = first_key(r0, window), n = r0 + mb - kb;  // keys [kb, kb + n)
                size_t kv_off = (size_t)(t0 + kb) * ldk + (size_t)kvh * D;
                const float *K = k + kv_off, *V = v + kv_off;
                float *dK = dk + kv_off, *dV = dv + kv_off;
                size_t q_off = (size_t)(t0 + r0) * ldq + (size_t)h * D;
                const float *Q = q + q_off, *dO = dout + q_off, *O = o + q_off;
                // P = exp(scale Q K^T - lse), causal
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, mb, n, D, scale, Q, ldq, K, ldk, 0.0f, p, n);
                for (int r = 0; r < mb; r++) {
                    float *row = p + (size_t)r * n;
                    int last = r0 + r - kb;
                    int first = window > 0 && last - window + 1 > 0 ? last - window + 1 : 0;
                    float l = lse[(size_t)(t0 + r0 + r) * H + h];
                    for (int c = 0; c < first; c++) row[c] = 0.0f;
                    for (int c = first; c <= last; c++) row[c] = expf(row[c] - l);
                    for (int c = last + 1; c < n; c++) row[c] = 0.0f;
                }
                // dV += P^T dO
                cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, n, D, mb, 1.0f, p, n, dO, ldq, 1.0f, dV, ldk);
                // dP = dO V^T;  dS = P o (dP - delta_r), delta_r = dO_r . O_r (= sum_c P_rc dP_rc)
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, mb, n, D, 1.0f, dO, ldq, V, ldk, 0.0f, dp, n);
                for (int r = 0; r < mb; r++) {
                    const float *dor = dO + (size_t)r * ldq, *orow = O + (size_t)r * ldq;
                    double delta = 0.0;
                    for (int d = 0; d < D; d++) delta += (double)dor[d] * orow[d];
                    float fd = (float)delta;
                    float *prow = p + (size_t)r * n, *drow = dp + (size_t)r * n;
                    for (int c = 0; c < n; c++) drow[c] = prow[c] * (drow[c] - fd);
                }
                // dQ += scale dS K;  dK += scale dS^T Q
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, mb, D, n, scale, dp, n, K, ldk, 1.0f,
                            dq + q_off, ldq);
                cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, n, D, mb, scale, dp, n, Q, ldq, 1.0f, dK, ldk);
            }
        }
    }
    cpu_scratch_end(mark);
}
