// kernels/cpu/elementwise.c — residual mixes, head split/merge, KV-cache writes, fp32 reductions of
// the optimizer, the fp32 logits of the sampler: fp32 references (kernels/ops.h states the contract).
// defines: residual_mix_cpu, qkv_split_cpu, qkv_merge_cpu, kv_write_cpu, lmhead_logits_cpu,
//          sum_squares_cpu, scale_f32_cpu
#include <string.h>

#include "base/common.h"
#include "kernels/backend.h"  // f32_to_bf16, bf16_to_f32
#include "kernels/cpu/ops_cpu.h"

void residual_mix_cpu(float *out, const float *r, const float *y, float alpha, float beta, size_t n) {
    if (r)  // as torch computes residual * alpha + hidden * beta in fp32
        for (size_t i = 0; i < n; i++) out[i] = alpha * r[i] + beta * y[i];
    else
        for (size_t i = 0; i < n; i++) out[i] = beta * y[i];
}

void qkv_split_cpu(float *q, float *k, float *v, const float *qkv, int T, int H, int D, int act) {
    for (size_t th = 0; th < (size_t)T * H; th++) {
        const float *src = qkv + th * 3 * D;
        memcpy(q + th * D, src, (size_t)D * sizeof(float));
        memcpy(k + th * D, src + D, (size_t)D * sizeof(float));
        memcpy(v + th * D, src + 2 * D, (size_t)D * sizeof(float));
    }
    if (act >= 0) {
        const size_t n = (size_t)T * H * D;
        act_forward_cpu(act, q, q, n);
        act_forward_cpu(act, k, k, n);
        act_forward_cpu(act, v, v, n);
    }
}

void qkv_merge_cpu(float *dqkv, const float *dq, const float *dk, const float *dv, const float *qkv, int T, int H,
                   int D, int act) {
    for (size_t th = 0; th < (size_t)T * H; th++) {
        float *dst = dqkv + th * 3 * D;
        memcpy(dst, dq + th * D, (size_t)D * sizeof(float));
        memcpy(dst + D, dk + th * D, (size_t)D * sizeof(float));
        memcpy(dst + 2 * D, dv + th * D, (size_t)D * sizeof(float));
    }
    if (act >= 0) act_grad_scale_cpu(act, dqkv, qkv, (size_t)T * H * 3 * D);
}

void kv_write_cpu(float *kcache, float *vcache, const float *k, const float *v, const int32_t *slot,
                  const int32_t *pos, int T, int KVD, const int32_t *block_table, int max_blocks, int block_size) {
    for (int t = 0; t < T; t++) {
        const int32_t blk = block_table[(size_t)slot[t] * max_blocks + pos[t] / block_size];
        CISPO_ASSERT(blk >= 0);  // the position's block is mapped
        size_t at = ((size_t)blk * block_size + pos[t] % block_size) * KVD;
        memcpy(kcache + at, k + (size_t)t * KVD, (size_t)KVD * sizeof(float));
        memcpy(vcache + at, v + (size_t)t * KVD, (size_t)KVD * sizeof(float));
    }
}

void lmhead_logits_cpu(float *logits, const float *x, const float *w, int n, int C, int V, int bf16) {
    matmul_cpu(logits, x, w, n, V, C, 0, 1, 1.0f, 0.0f);
    if (bf16)
        for (size_t i = 0; i < (size_t)n * V; i++) logits[i] = bf16_to_f32(f32_to_bf16(logits[i]));
}

double sum_squares_cpu(const float *g, size_t n) {
    double s = 0;
    for (size_t i = 0; i < n; i++) s += (double)g[i] * g[i];
    return s;
}

void scale_f32_cpu(float *x, float s, size_t n) {
    for (size_t i = 0; i < n; i++) x[i] *= s;
}
