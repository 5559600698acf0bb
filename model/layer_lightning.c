// model/layer_lightning.c — the lightning (linear) attention layer, forward and backward.
// defines: model_lightning_forward, model_lightning_backward, model_lightning_scratch_floats
//
// transformers' MiniMaxLightningAttention:
//   qkv = act(qkv_proj(h)).reshape(T, H, 3D); q, k, v = split(qkv, D)     # rows per head: [q | k | v]
//         act = ACT2FN[hidden_act] (silu in every MiniMax checkpoint)
//   o   = lightning core (S_t = lam S_{t-1} + k_t^T v_t, o_t = q_t S_t), no scale
//   o   = norm(o) over all A channels (MiniMaxRMSNorm default eps 1e-6)
//   out = out_proj(sigmoid(output_gate(h)) * o)
#include <string.h>

#include "base/common.h"
#include "kernels/ops.h"
#include "model/layers.h"

#define LIGHTNING_NORM_EPS 1e-6f

// qkv [T, H, 3D] -> q, k, v [T, H, D]
static void split_heads(float *q, float *k, float *v, const float *qkv, int T, int H, int D) {
    for (size_t th = 0; th < (size_t)T * H; th++) {
        const float *src = qkv + th * 3 * D;
        memcpy(q + th * D, src, (size_t)D * sizeof(float));
        memcpy(k + th * D, src + D, (size_t)D * sizeof(float));
        memcpy(v + th * D, src + 2 * D, (size_t)D * sizeof(float));
    }
}

// the inverse: dq, dk, dv [T, H, D] -> dqkv [T, H, 3D]
static void merge_heads(float *dqkv, const float *dq, const float *dk, const float *dv, int T, int H, int D) {
    for (size_t th = 0; th < (size_t)T * H; th++) {
        float *dst = dqkv + th * 3 * D;
        memcpy(dst, dq + th * D, (size_t)D * sizeof(float));
        memcpy(dst + D, dk + th * D, (size_t)D * sizeof(float));
        memcpy(dst + 2 * D, dv + th * D, (size_t)D * sizeof(float));
    }
}

size_t model_lightning_scratch_floats(const model_config_t *c, size_t T) {
    size_t A = (size_t)model_attn_width(c);
    return T * A * 13;  // backward: dgated, dgate_pre, do_norm, do_core, dq, dk, dv, dqkv (3A), dqkv_pre (3A)
}

void model_lightning_forward(model_t *m, int l, float *out, model_scratch_t *s) {
    const model_config_t *c = &m->cfg;
    const int T = m->T, C = c->hidden_size, H = c->n_heads, D = c->head_dim, A = H * D;
    const model_layer_acts_t *a = &m->layer[l];
    const layer_params_t *p = &m->table.layers[l];
    const float *P = m->params;
    float *X = m->acts;
    const float *h = X + a->h;
    const int32_t *cu = m->iacts + m->cu_seqlens;
    size_t mark = s->used;

    matmul_cpu(X + a->qkv_pre, h, P + p->qkv, T, 3 * A, C, 0, 1, 1.0f, 0.0f);  // [T, 3A]
    float *qkv = model_scratch_take(s, (size_t)T * 3 * A);
    act_forward_cpu(c->hidden_act, qkv, X + a->qkv_pre, (size_t)T * 3 * A);
    split_heads(X + a->q, X + a->k, X + a->v, qkv, T, H, D);
    lightning_forward_cpu(X + a->o_core, NULL, X + a->q, X + a->k, X + a->v, NULL, m->slopes + (size_t)l * H, cu,
                          m->nseq, H, D, c->block_size);
    rmsnorm_forward_cpu(X + a->o_norm, X + a->rstd_o, X + a->o_core, P + p->out_norm, T, A, LIGHTNING_NORM_EPS);
    matmul_cpu(X + a->gate_pre, h, P + p->gate, T, A, C, 0, 1, 1.0f, 0.0f);     // [T, A]
    sigmoid_gate_forward_cpu(X + a->gated, X + a->gate_pre, X + a->o_norm, (size_t)T * A);
    matmul_cpu(out, X + a->gated, P + p->out, T, C, A, 0, 1, 1.0f, 0.0f);       // [T, C]
    s->used = mark;
}

void model_lightning_backward(model_t *m, int l, const float *dout, float *din, model_scratch_t *s) {
    const model_config_t *c = &m->cfg;
    const int T = m->T, C = c->hidden_size, H = c->n_heads, D = c->head_dim, A = H * D;
    const model_layer_acts_t *a = &m->layer[l];
    const layer_params_t *p = &m->table.layers[l];
    const float *P = m->params;
    float *G = m->grads;
    const float *X = m->acts;
    const float *h = X + a->h;
    const int32_t *cu = m->iacts + m->cu_seqlens;
    const size_t TA = (size_t)T * A;
    size_t mark = s->used;

    // out = gated Wout^T
    float *dgated = model_scratch_take(s, TA);
    matmul_cpu(dgated, dout, P + p->out, T, A, C, 0, 0, 1.0f, 0.0f);
    matmul_cpu(G + p->out, dout, X + a->gated, C, A, T, 1, 0, 1.0f, 1.0f);
    // gated = sigmoid(gate_pre) * o_norm; gate_pre = h Wgate^T
    float *dgate_pre = model_scratch_take_zero(s, TA), *do_norm = model_scratch_take_zero(s, TA);
    sigmoid_gate_backward_cpu(dgate_pre, do_norm, dgated, X + a->gate_pre, X + a->o_norm, TA);
    matmul_cpu(din, dgate_pre, P + p->gate, T, C, A, 0, 0, 1.0f, 1.0f);
    matmul_cpu(G + p->gate, dgate_pre, h, A, C, T, 1, 0, 1.0f, 1.0f);
    // o_norm = rmsnorm_A(o_core)
    float *do_core = model_scratch_take_zero(s, TA);
    rmsnorm_backward_cpu(do_core, G + p->out_norm, do_norm, X + a->o_core, P + p->out_norm, X + a->rstd_o, T, A);
    // the lightning core
    float *dq = model_scratch_take_zero(s, TA), *dk = model_scratch_take_zero(s, TA);
    float *dv = model_scratch_take_zero(s, TA);
    lightning_backward_cpu(dq, dk, dv, NULL, do_core, X + a->q, X + a->k, X + a->v, NULL, m->slopes + (size_t)l * H,
                           cu, m->nseq, H, D, c->block_size);
    // qkv = act(qkv_pre), qkv_pre = h Wqkv^T
    float *dqkv = model_scratch_take(s, 3 * TA), *dqkv_pre = model_scratch_take_zero(s, 3 * TA);
    merge_heads(dqkv, dq, dk, dv, T, H, D);
    act_backward_cpu(c->hidden_act, dqkv_pre, dqkv, X + a->qkv_pre, 3 * TA);
    matmul_cpu(din, dqkv_pre, P + p->qkv, T, C, 3 * A, 0, 0, 1.0f, 1.0f);
    matmul_cpu(G + p->qkv, dqkv_pre, h, 3 * A, C, T, 1, 0, 1.0f, 1.0f);
    s->used = mark;
}
