// model/layer_softmax.c — the softmax (full) attention layer, forward and backward.
// defines: model_softmax_forward, model_softmax_backward, model_softmax_scratch_floats
//
// transformers' MiniMaxAttention: q = q_proj(h) [T,H,D], k = k_proj(h), v = v_proj(h) [T,KV,D];
// RoPE (NeoX rotate-half) over R dims (HF flavour R = D, original R = rotary_dim) at positions that
// restart at 0 in every packed sequence; causal GQA softmax attention with scale 1/sqrt(D); o_proj.
#include "kernels/common.h"
#include "kernels/ops.h"
#include "model/layers.h"

size_t model_softmax_scratch_floats(const model_config_t *c, size_t T) {
    size_t A = (size_t)model_attn_width(c), KVD = (size_t)c->n_kv_heads * c->head_dim;
    return T * (3 * A + 3 * KVD);  // backward: do, dq, dq_pre [T,A]; dk, dv, dk_pre [T,KV*D]
}

void model_softmax_forward(model_t *m, int l, float *out, model_scratch_t *s) {
    const model_config_t *c = &m->cfg;
    const int T = m->T, C = c->hidden_size, H = c->n_heads, KV = c->n_kv_heads, D = c->head_dim;
    const int A = H * D, KVD = KV * D;
    const model_layer_acts_t *a = &m->layer[l];
    const layer_params_t *p = &m->table.layers[l];
    const float *P = m->params;
    float *X = m->acts;
    const float *h = X + a->h;
    const int32_t *cu = m->iacts + m->cu_seqlens, *pos = m->iacts + m->pos;
    (void)s;

    matmul_cpu(X + a->q_pre, h, P + p->wq, T, A, C, 0, 1, 1.0f, 0.0f);
    matmul_cpu(X + a->k_pre, h, P + p->wk, T, KVD, C, 0, 1, 1.0f, 0.0f);
    matmul_cpu(X + a->v, h, P + p->wv, T, KVD, C, 0, 1, 1.0f, 0.0f);
    rope_forward_cpu(X + a->q, X + a->q_pre, pos, T, H, D, c->rotary_dim, (float)c->rope_theta);
    rope_forward_cpu(X + a->k, X + a->k_pre, pos, T, KV, D, c->rotary_dim, (float)c->rope_theta);
    attention_forward_cpu(X + a->o_core, X + a->lse, X + a->q, X + a->k, X + a->v, cu, m->nseq, H, KV, D);
    matmul_cpu(out, X + a->o_core, P + p->wo, T, C, A, 0, 1, 1.0f, 0.0f);
}

void model_softmax_backward(model_t *m, int l, const float *dout, float *din, model_scratch_t *s) {
    const model_config_t *c = &m->cfg;
    const int T = m->T, C = c->hidden_size, H = c->n_heads, KV = c->n_kv_heads, D = c->head_dim;
    const int A = H * D, KVD = KV * D;
    const model_layer_acts_t *a = &m->layer[l];
    const layer_params_t *p = &m->table.layers[l];
    const float *P = m->params;
    float *G = m->grads;
    const float *X = m->acts;
    const float *h = X + a->h;
    const int32_t *cu = m->iacts + m->cu_seqlens, *pos = m->iacts + m->pos;
    const size_t TA = (size_t)T * A, TKV = (size_t)T * KVD;
    size_t mark = s->used;

    float *d_o = model_scratch_take(s, TA);
    matmul_cpu(d_o, dout, P + p->wo, T, A, C, 0, 0, 1.0f, 0.0f);
    matmul_cpu(G + p->wo, dout, X + a->o_core, C, A, T, 1, 0, 1.0f, 1.0f);
    float *dq = model_scratch_take_zero(s, TA), *dk = model_scratch_take_zero(s, TKV);
    float *dv = model_scratch_take_zero(s, TKV);
    attention_backward_cpu(dq, dk, dv, d_o, X + a->o_core, X + a->lse, X + a->q, X + a->k, X + a->v, cu, m->nseq, H,
                           KV, D);
    float *dq_pre = model_scratch_take_zero(s, TA), *dk_pre = model_scratch_take_zero(s, TKV);
    rope_backward_cpu(dq_pre, dq, pos, T, H, D, c->rotary_dim, (float)c->rope_theta);
    rope_backward_cpu(dk_pre, dk, pos, T, KV, D, c->rotary_dim, (float)c->rope_theta);
    matmul_cpu(din, dq_pre, P + p->wq, T, C, A, 0, 0, 1.0f, 1.0f);
    matmul_cpu(din, dk_pre, P + p->wk, T, C, KVD, 0, 0, 1.0f, 1.0f);
    matmul_cpu(din, dv, P + p->wv, T, C, KVD, 0, 0, 1.0f, 1.0f);
    matmul_cpu(G + p->wq, dq_pre, h, A, C, T, 1, 0, 1.0f, 1.0f);
    matmul_cpu(G + p->wk, dk_pre, h, KVD, C, T, 1, 0, 1.0f, 1.0f);
    matmul_cpu(G + p->wv, dv, h, KVD, C, T, 1, 0, 1.0f, 1.0f);
    s->used = mark;
}
