// model/infer.c — prefill and decode with per-slot caches (model/infer.h).
// Prefill = the training forward (model_forward) + caches taken from its activations; decode = one
// token per slot through each layer: recurrent lightning step (fp32 state) or attention over the
// KV cache (the last sliding_window positions when set; the cache keeps all of them), then the MoE
// block, then the fp32 LM head.
#include "model/infer.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "base/common.h"
#include "kernels/ops.h"

#define LIGHTNING_NORM_EPS 1e-6f  // docs/model.md: the lightning output norm uses 1e-6 in both references

// Scratch layout of one decode step for up to B tokens.
typedef struct {
    float *x, *h, *qkv, *q, *k, *v, *o, *onorm, *gate, *attn, *x1, *h2, *rlog, *probs, *tw, *xe, *h1, *h3, *ye, *y,
        *state;
    int32_t *idx, *perm, *offs, *pos, *len1;
} step_bufs_t;

static size_t plan_step(const model_config_t *c, int B, step_bufs_t *s, float *base, int32_t *ibase) {
    const size_t C = c->hidden_size, A = (size_t)model_attn_width(c), E = c->n_experts, K = c->n_experts_per_tok,
                 F = c->intermediate_size, H = c->n_heads, D = c->head_dim;
    size_t off = 0;
#define TAKE(field, n)                          \
    do {                                        \
        if (base) s->field = base + off;        \
        off += (size_t)B * (n);                 \
    } while (0)
    TAKE(x, C); TAKE(h, C); TAKE(qkv, 3 * A); TAKE(q, A); TAKE(k, A); TAKE(v, A); TAKE(o, A); TAKE(onorm, A);
    TAKE(gate, A); TAKE(attn, C); TAKE(x1, C); TAKE(h2, C); TAKE(rlog, E); TAKE(probs, E); TAKE(tw, K);
    TAKE(xe, K * C); TAKE(h1, K * F); TAKE(h3, K * F); TAKE(ye, K * C); TAKE(y, C); TAKE(state, H * D * D);
#undef TAKE
    if (ibase) {
        s->idx = ibase;
        s->perm = ibase + (size_t)B * K;
        s->offs = ibase + (size_t)2 * B * K;
        s->pos = s->offs + E + 1;
        s->len1 = s->pos + B;
    }
    return off;
}

infer_t *infer_create(model_t *m, int max_slots, int max_ctx) {
    const model_config_t *c = &m->cfg;
    infer_t *e = cispo_calloc(1, sizeof *e);
    e->m = m;
    e->max_slots = max_slots;
    e->max_ctx = max_ctx;
    for (int l = 0; l < c->n_layers; l++)
        e->layer_slot[l] = c->layer_kind[l] == LAYER_LIGHTNING ? e->n_lin++ : e->n_soft++;
    const size_t H = c->n_heads, D = c->head_dim, KV = c->n_kv_heads;
    e->lin_state = cispo_calloc((size_t)max_slots * e->n_lin * H * D * D, sizeof(float));
    size_t kv = (size_t)e->n_soft * max_slots * max_ctx * KV * D;
    e->kcache = cispo_calloc(kv ? kv : 1, sizeof(float));
    e->vcache = cispo_calloc(kv ? kv : 1, sizeof(float));
    e->len = cispo_calloc((size_t)max_slots, sizeof(int32_t));
    step_bufs_t s = {0};
    e->n_buf = plan_step(c, max_slots, &s, NULL, NULL);
    e->buf = cispo_calloc(e->n_buf, sizeof(float));
    return e;
}

void infer_free(infer_t *e) {
    if (!e) return;
    free(e->lin_state);
    free(e->kcache);
    free(e->vcache);
    free(e->len);
    free(e->buf);
    free(e);
}

static float *slot_state(infer_t *e, int slot, int lin) {
    const size_t HDD = (size_t)e->m->cfg.n_heads * e->m->cfg.head_dim * e->m->cfg.head_dim;
    return e->lin_state + ((size_t)slot * e->n_lin + lin) * HDD;
}

static size_t kv_index(const infer_t *e, int soft, int slot, int pos) {
    const size_t KVD = (size_t)e->m->cfg.n_kv_heads * e->m->cfg.head_dim;
    return (((size_t)soft * e->max_slots + slot) * e->max_ctx + pos) * KVD;
}

// logits [n, V] = rows of the final hidden h [*, C] @ lm_head^T
static void lm_head(const model_t *m, float *logits, const float *h, int n) {
    const model_config_t *c = &m->cfg;
    matmul_cpu(logits, h, m->params + m->table.lm_head, n, c->vocab_size, c->hidden_size, 0, 1, 1.0f, 0.0f);
}

int infer_prefill(infer_t *e, const int *slots, const int32_t *const *prompts, const int *lens, int n,
                  float *logits_last) {
    model_t *m = e->m;
    const model_config_t *c = &m->cfg;
    int T = 0;
    for (int i = 0; i < n; i++) {
        if (lens[i] < 1 || lens[i] > e->max_ctx)
            return cispo_fail("prefill: prompt %d has %d tokens (allowed 1..%d)", i, lens[i], e->max_ctx);
        if (slots[i] < 0 || slots[i] >= e->max_slots) return cispo_fail("prefill: slot %d out of range", slots[i]);
        T += lens[i];
    }
    if (T > m->max_tokens) return cispo_fail("prefill: %d prompt tokens exceed the planned %d", T, m->max_tokens);
    int32_t *ids = cispo_malloc(sizeof(int32_t) * (size_t)T), *cu = cispo_malloc(sizeof(int32_t) * (size_t)(n + 1));
    cu[0] = 0;
    for (int i = 0; i < n; i++) {
        memcpy(ids + cu[i], prompts[i], sizeof(int32_t) * (size_t)lens[i]);
        cu[i + 1] = cu[i] + lens[i];
    }
    if (model_forward(m, ids, cu, n, T)) {
        free(ids);
        free(cu);
        return -1;
    }
    const size_t H = c->n_heads, D = c->head_dim, KVD = (size_t)c->n_kv_heads * D, HDD = H * D * D;
    float *states = cispo_malloc(sizeof(float) * (size_t)n * HDD);
    float *otmp = cispo_malloc(sizeof(float) * (size_t)T * H * D);
    for (int l = 0; l < c->n_layers; l++) {
        const model_layer_acts_t *a = &m->layer[l];
        if (c->layer_kind[l] == LAYER_LIGHTNING) {
            // the final state of each prompt: recomputed from the saved q, k, v (training kernels)
            lightning_forward_cpu(otmp, states, m->acts + a->q, m->acts + a->k, m->acts + a->v, NULL,
                                  m->slopes + (size_t)l * H, cu, n, (int)H, (int)D, c->block_size);
            for (int i = 0; i < n; i++)
                memcpy(slot_state(e, slots[i], e->layer_slot[l]), states + (size_t)i * HDD, sizeof(float) * HDD);
        } else {
            for (int i = 0; i < n; i++) {
                size_t dst = kv_index(e, e->layer_slot[l], slots[i], 0);
                memcpy(e->kcache + dst, m->acts + a->k + (size_t)cu[i] * KVD, sizeof(float) * lens[i] * KVD);
                memcpy(e->vcache + dst, m->acts + a->v + (size_t)cu[i] * KVD, sizeof(float) * lens[i] * KVD);
            }
        }
    }
    float *hl = cispo_malloc(sizeof(float) * (size_t)n * c->hidden_size);
    for (int i = 0; i < n; i++) {
        memcpy(hl + (size_t)i * c->hidden_size, m->acts + m->h_final + (size_t)(cu[i + 1] - 1) * c->hidden_size,
               sizeof(float) * c->hidden_size);
        e->len[slots[i]] = lens[i];
    }
    lm_head(m, logits_last, hl, n);
    free(hl);
    free(states);
    free(otmp);
    free(ids);
    free(cu);
    return 0;
}

// The MoE block on n rows: y [n, C] = sum_k w_k expert_{idx_k}(h2)
static void moe_rows(const model_t *m, int l, step_bufs_t *s, int n) {
    const model_config_t *c = &m->cfg;
    const layer_params_t *p = &m->table.layers[l];
    const int C = c->hidden_size, E = c->n_experts, K = c->n_experts_per_tok, F = c->intermediate_size;
    matmul_cpu(s->rlog, s->h2, m->params + p->router, n, E, C, 0, 1, 1.0f, 0.0f);
    moe_route_forward_cpu(s->probs, s->idx, s->tw, s->rlog, n, E, K);
    moe_dispatch_cpu(s->xe, s->perm, s->offs, s->h2, s->idx, n, C, E, K);
    for (int x = 0; x < E; x++) {
        int r0 = s->offs[x], rows = s->offs[x + 1] - r0;
        if (rows == 0) continue;
        const size_t FC = (size_t)F * C;
        matmul_cpu(s->h1, s->xe + (size_t)r0 * C, m->params + p->w1 + x * FC, rows, F, C, 0, 1, 1.0f, 0.0f);
        matmul_cpu(s->h3, s->xe + (size_t)r0 * C, m->params + p->w3 + x * FC, rows, F, C, 0, 1, 1.0f, 0.0f);
        act_forward_cpu(c->hidden_act, s->h1, s->h1, (size_t)rows * F);
        for (size_t i = 0; i < (size_t)rows * F; i++) s->h1[i] *= s->h3[i];
        matmul_cpu(s->ye + (size_t)r0 * C, s->h1, m->params + p->w2 + x * FC, rows, C, F, 0, 1, 1.0f, 0.0f);
    }
    memset(s->y, 0, sizeof(float) * (size_t)n * C);
    moe_combine_forward_cpu(s->y, s->ye, s->tw, s->perm, n, C, K);
}

int infer_decode(infer_t *e, const int *slots, const int32_t *tokens, int n, float *logits) {
    const model_t *m = e->m;
    const model_config_t *c = &m->cfg;
    if (n > e->max_slots) return cispo_fail("decode: %d tokens for %d slots", n, e->max_slots);
    for (int i = 0; i < n; i++) {
        if (slots[i] < 0 || slots[i] >= e->max_slots) return cispo_fail("decode: slot %d out of range", slots[i]);
        if (e->len[slots[i]] >= e->max_ctx)
            return cispo_fail("decode: slot %d is full (%d tokens)", slots[i], e->max_ctx);
        if (tokens[i] < 0 || tokens[i] >= c->vocab_size) return cispo_fail("decode: token id %d out of range", tokens[i]);
    }
    step_bufs_t s = {0};
    int32_t *ib = cispo_malloc(sizeof(int32_t) * ((size_t)3 * n * c->n_experts_per_tok + c->n_experts + 1 + 2 * n));
    plan_step(c, n, &s, e->buf, ib);
    const int C = c->hidden_size, A = model_attn_width(c), H = c->n_heads, D = c->head_dim, KV = c->n_kv_heads;
    const float *P = m->params;
    float *inv_freq = cispo_malloc(sizeof(float) * (size_t)(c->rotary_dim / 2 > 0 ? c->rotary_dim / 2 : 1));
    float rope_scale = 1.0f;
    const int by_len = model_rope_by_length(c);
    embedding_forward_cpu(s.x, tokens, P + m->table.embed, n, C);
    for (int i = 0; i < n; i++) s.pos[i] = e->len[slots[i]];
    for (int l = 0; l < c->n_layers; l++) {
        const layer_params_t *p = &m->table.layers[l];
        const int lin = c->layer_kind[l] == LAYER_LIGHTNING;
        const float alpha = (float)(lin ? c->linear_alpha : c->full_alpha), beta = (float)(lin ? c->linear_beta : c->full_beta);
        rmsnorm_forward_cpu(s.h, s.x1, s.x, P + p->input_norm, n, C, (float)c->rms_norm_eps);  // x1: rstd scratch
        if (lin) {
            matmul_cpu(s.qkv, s.h, P + p->qkv, n, 3 * A, C, 0, 1, 1.0f, 0.0f);
            act_forward_cpu(c->hidden_act, s.qkv, s.qkv, (size_t)n * 3 * A);
            for (int i = 0; i < n; i++)  // rows per head are [q | k | v]
                for (int hh = 0; hh < H; hh++) {
                    const float *src = s.qkv + (size_t)i * 3 * A + (size_t)hh * 3 * D;
                    size_t dst = ((size_t)i * H + hh) * D;
                    memcpy(s.q + dst, src, sizeof(float) * D);
                    memcpy(s.k + dst, src + D, sizeof(float) * D);
                    memcpy(s.v + dst, src + 2 * D, sizeof(float) * D);
                }
            for (int i = 0; i < n; i++) {
                float *st = slot_state(e, slots[i], e->layer_slot[l]);
                lightning_decode_cpu(s.o + (size_t)i * A, st, s.q + (size_t)i * A, s.k + (size_t)i * A,
                                     s.v + (size_t)i * A, m->slopes + (size_t)l * H, 1, H, D);
            }
            rmsnorm_forward_cpu(s.onorm, s.x1, s.o, P + p->out_norm, n, A, LIGHTNING_NORM_EPS);
            matmul_cpu(s.gate, s.h, P + p->gate, n, A, C, 0, 1, 1.0f, 0.0f);
            sigmoid_gate_forward_cpu(s.o, s.gate, s.onorm, (size_t)n * A);
            matmul_cpu(s.attn, s.o, P + p->out, n, C, A, 0, 1, 1.0f, 0.0f);
        } else {
            const int KVD = KV * D;
            matmul_cpu(s.q, s.h, P + p->wq, n, A, C, 0, 1, 1.0f, 0.0f);
            matmul_cpu(s.k, s.h, P + p->wk, n, KVD, C, 0, 1, 1.0f, 0.0f);
            matmul_cpu(s.v, s.h, P + p->wv, n, KVD, C, 0, 1, 1.0f, 0.0f);
            // RoPE per token: "dynamic" and "longrope" take the frequencies of length pos + 1 (model.h)
            for (int i = 0; i < n; i++) {
                if (i == 0 || by_len) model_rope_inv_freq(c, s.pos[i] + 1, inv_freq, &rope_scale);
                rope_forward_cpu(s.onorm + (size_t)i * A, s.q + (size_t)i * A, s.pos + i, 1, H, D, c->rotary_dim,
                                 inv_freq, rope_scale);
                rope_forward_cpu(s.gate + (size_t)i * KVD, s.k + (size_t)i * KVD, s.pos + i, 1, KV, D, c->rotary_dim,
                                 inv_freq, rope_scale);
            }
            const int soft = e->layer_slot[l];
            for (int i = 0; i < n; i++) {
                size_t at = kv_index(e, soft, slots[i], s.pos[i]);
                memcpy(e->kcache + at, s.gate + (size_t)i * KVD, sizeof(float) * KVD);
                memcpy(e->vcache + at, s.v + (size_t)i * KVD, sizeof(float) * KVD);
                int32_t len1 = s.pos[i] + 1;
                attention_decode_cpu(s.o + (size_t)i * A, s.onorm + (size_t)i * A, e->kcache + kv_index(e, soft, slots[i], 0),
                                     e->vcache + kv_index(e, soft, slots[i], 0), &len1, 1, H, KV, D, e->max_ctx,
                                     c->sliding_window);
            }
            matmul_cpu(s.attn, s.o, P + p->wo, n, C, A, 0, 1, 1.0f, 0.0f);
        }
        for (size_t i = 0; i < (size_t)n * C; i++) s.x1[i] = alpha * s.h[i] + beta * s.attn[i];
        rmsnorm_forward_cpu(s.h2, s.attn, s.x1, P + p->post_norm, n, C, (float)c->rms_norm_eps);  // attn: rstd scratch
        moe_rows(m, l, &s, n);
        const float am = (float)c->mlp_alpha, bm = (float)c->mlp_beta;
        for (size_t i = 0; i < (size_t)n * C; i++) s.x[i] = am * s.h2[i] + bm * s.y[i];
    }
    rmsnorm_forward_cpu(s.h, s.x1, s.x, P + m->table.final_norm, n, C, (float)c->rms_norm_eps);
    lm_head(m, logits, s.h, n);
    for (int i = 0; i < n; i++) e->len[slots[i]]++;
    free(inv_freq);
    free(ib);
    return 0;
}
