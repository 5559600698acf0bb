// model/layer_lightning.c — the lightning (linear) attention layer, forward and backward.
// defines: model_lightning_forward, model_lightning_backward, model_lightning_recompute,
//          model_lightning_scratch_bytes
//
// transformers' MiniMaxLightningAttention:
//   qkv = act(qkv_proj(h)).reshape(T, H, 3D); q, k, v = split(qkv, D)     # rows per head: [q | k | v]
//         act = ACT2FN[hidden_act] (silu in every MiniMax checkpoint)
//   o   = lightning core (S_t = lam S_{t-1} + k_t^T v_t, o_t = q_t S_t), no scale
//   o   = norm(o) over all A channels (MiniMaxRMSNorm default eps 1e-6)
//   out = out_proj(sigmoid(output_gate(h)) * o)
// With a cache, prefill runs the chunked core (from the slot's state when the chunk continues an
// earlier one: chunked prefill) and keeps each sequence's final state in its slot;
// decode runs the recurrent step on the slot's state. Everything else is the same code.
#include "base/common.h"
#include "kernels/ops.h"
#include "model/layers.h"

#define LIGHTNING_NORM_EPS 1e-6f

size_t model_lightning_scratch_bytes(const model_config_t *c, size_t T, size_t esize) {
    size_t A = (size_t)model_attn_width(c);
    // backward: dgated, dgate_pre, do_core, dq, dk, dv, dqkv_pre (3A); forward: qkv (3A); 256-byte alignment of
    // each piece (a prefill's final states go to the cache's stage buffer)
    return T * A * 9 * esize + 16 * 256;
}

// Layer l's lightning states in the cache, one [H, D, D] fp32 block per slot
static float *layer_states(const model_t *m, int l) {
    const model_cache_t *ca = m->cache;
    return ca->lin_state + (size_t)ca->layer_slot[l] * ca->max_slots * m->cfg.n_heads * m->cfg.head_dim *
                               m->cfg.head_dim;
}

// The core with the cache swapped in: prefill keeps final states, decode steps the slot's state.
static void core_forward(model_t *m, int l, model_scratch_t *s) {
    const model_config_t *c = &m->cfg;
    const int H = c->n_heads, D = c->head_dim;
    const model_layer_acts_t *a = &m->layer[l];
    const float *slopes = m->slopes + (size_t)l * H;
    op_seqs_t seqs = {IACT(m, m->cu_seqlens), m->h_cu, m->nseq, m->T, m->max_len};
    model_cache_t *ca = m->cache;
    const size_t HDD = (size_t)H * D * D;
    if (ca && ca->mode == MODEL_CACHE_DECODE) {
        lightning_decode(m->be, ACT(m, a->o_core), layer_states(m, l), IACT(m, m->tok_slot), ACT(m, a->q), ACT(m, a->k),
                         ACT(m, a->v), slopes, m->T, H, D);
        return;
    }
    CISPO_ASSERT(!ca || m->nseq <= ca->max_slots);
    float *final = ca ? ca->state_stage : NULL;
    const float *init = NULL;
    if (ca && ca->continuing) {  // a prefill chunk after earlier ones: start from the slot's state
        float *states = layer_states(m, l);
        for (int i = 0; i < m->nseq; i++) {
            float *dst = ca->state_init + (size_t)i * HDD;
            if (ca->start_host[i] > 0)
                backend_copy(m->be, dst, states + (size_t)ca->slot_host[i] * HDD, HDD * sizeof(float));
            else
                backend_zero(m->be, dst, HDD * sizeof(float));
        }
        init = ca->state_init;
    }
    lightning_forward(m->be, ACT(m, a->o_core), final, ACT(m, a->q), ACT(m, a->k), ACT(m, a->v), init, slopes,
                      &seqs, H, D, c->block_size);
    if (ca) {
        float *states = layer_states(m, l);
        for (int i = 0; i < m->nseq; i++)
            backend_copy(m->be, states + (size_t)ca->slot_host[i] * HDD, final + (size_t)i * HDD, HDD * sizeof(float));
    }
}

void model_lightning_forward(model_t *m, int l, void *out, model_scratch_t *s) {
    const model_config_t *c = &m->cfg;
    backend_t *b = m->be;
    const int T = m->T, C = c->hidden_size, H = c->n_heads, D = c->head_dim, A = H * D;
    const model_layer_acts_t *a = &m->layer[l];
    const layer_params_t *p = &m->table.layers[l];
    const void *h = ACT(m, a->h);

    size_t mark = s->used;
    const void *gate = ACT(m, a->gate_pre);  // rows ldg apart
    int ldg = A, normed = 0;
    if (decode_fused_on(b) && m->cache && m->cache->mode == MODEL_CACHE_DECODE &&
        p->gate == p->qkv + (size_t)3 * A * C) {
        // backend_tuning_t.decode_fused: q|k|v and the gate from one product of the adjacent weights (rows [q|k|v
        // of each head | gate], 4A wide), the step reading q, k, v from it with the activation applied as
        // loaded, the output norm reading the gate in place (nothing else reads them in a decode step)
        char *qkvg = model_scratch_take(s, (size_t)T * 4 * A, m->esize);
        matmul(b, qkvg, h, WP(m, p->qkv), T, 4 * A, C, 0, 1, 1.0f, 0.0f);  // [T, 4A]
        gate = qkvg + (size_t)3 * A * m->esize, ldg = 4 * A;
        if (b->tune.decode_gate > 0) {  // the output's norm and gate in the same launch (backend_tuning_t)
            lightning_decode_qkv_gate(b, ACT(m, a->o_core), layer_states(m, l), IACT(m, m->tok_slot), qkvg, 4 * A,
                                      c->hidden_act, m->slopes + (size_t)l * H, T, H, D, NULL,
                                      ACT(m, a->gated), STAT(m, a->rstd_o), WP(m, p->out_norm), gate, ldg,
                                      LIGHTNING_NORM_EPS);
            normed = 1;
        } else {
            lightning_decode_qkv(b, ACT(m, a->o_core), layer_states(m, l), IACT(m, m->tok_slot), qkvg, 4 * A,
                                 c->hidden_act, m->slopes + (size_t)l * H, T, H, D);
        }
    } else {
        matmul(b, ACT(m, a->qkv_pre), h, WP(m, p->qkv), T, 3 * A, C, 0, 1, 1.0f, 0.0f);  // [T, 3A]
        qkv_split(b, ACT(m, a->q), ACT(m, a->k), ACT(m, a->v), ACT(m, a->qkv_pre), T, H, D, c->hidden_act);
        matmul(b, ACT(m, a->gate_pre), h, WP(m, p->gate), T, A, C, 0, 1, 1.0f, 0.0f);  // [T, A]
        core_forward(m, l, s);
    }
    // gated = sigmoid(gate) * rmsnorm_A(o_core), in one op; the norm's output is not kept (the backward recomputes it
    // from o_core and rstd_o)
    if (!normed)
        rmsnorm_gate_forward(b, NULL, ACT(m, a->gated), STAT(m, a->rstd_o), ACT(m, a->o_core),
                             WP(m, p->out_norm), gate, ldg, T, A, LIGHTNING_NORM_EPS);
    s->used = mark;
    matmul(b, out, ACT(m, a->gated), WP(m, p->out), T, C, A, 0, 1, 1.0f, 0.0f);    // [T, C]
}

void model_lightning_recompute(model_t *m, int l) {
    const model_config_t *c = &m->cfg;
    const int T = m->T, H = c->n_heads, D = c->head_dim;
    const model_layer_acts_t *a = &m->layer[l];
    qkv_split(m->be, ACT(m, a->q), ACT(m, a->k), ACT(m, a->v), ACT(m, a->qkv_pre), T, H, D, c->hidden_act);
    rmsnorm_gate_forward(m->be, NULL, ACT(m, a->gated), STAT(m, a->rstd_o), ACT(m, a->o_core),
                         WP(m, m->table.layers[l].out_norm), ACT(m, a->gate_pre), H * D, T, H * D, LIGHTNING_NORM_EPS);
}

void model_lightning_backward(model_t *m, int l, const void *dout, void *din, model_scratch_t *s) {
    const model_config_t *c = &m->cfg;
    backend_t *b = m->be;
    const int T = m->T, C = c->hidden_size, H = c->n_heads, D = c->head_dim, A = H * D;
    const model_layer_acts_t *a = &m->layer[l];
    const layer_params_t *p = &m->table.layers[l];
    const void *h = ACT(m, a->h);
    const size_t TA = (size_t)T * A, es = m->esize;
    op_seqs_t seqs = {IACT(m, m->cu_seqlens), m->h_cu, m->nseq, m->T, m->max_len};
    size_t mark = s->used;

    // out = gated Wout^T
    void *dgated = model_scratch_take(s, TA, es);
    matmul(b, dgated, dout, WP(m, p->out), T, A, C, 0, 0, 1.0f, 0.0f);
    matmul_wgrad(b, GP(m, p->out), dout, ACT(m, a->gated), C, A, T, m->grad_write);
    // gated = sigmoid(gate_pre) * o_norm, o_norm = rmsnorm_A(o_core); gate_pre = h Wgate^T
    void *dgate_pre = model_scratch_take(s, TA, es), *do_core = model_scratch_take(s, TA, es);
    rmsnorm_gate_backward(b, do_core, GP(m, p->out_norm), dgate_pre, dgated, ACT(m, a->o_core), WP(m, p->out_norm),
                          STAT(m, a->rstd_o), ACT(m, a->gate_pre), A, T, A);
    matmul(b, din, dgate_pre, WP(m, p->gate), T, C, A, 0, 0, 1.0f, 1.0f);
    matmul_wgrad(b, GP(m, p->gate), dgate_pre, h, A, C, T, m->grad_write);
    // the lightning core
    void *dq = model_scratch_take(s, TA, es), *dk = model_scratch_take(s, TA, es), *dv = model_scratch_take(s, TA, es);
    lightning_backward(b, dq, dk, dv, NULL, do_core, ACT(m, a->q), ACT(m, a->k), ACT(m, a->v), NULL,
                       m->slopes + (size_t)l * H, &seqs, H, D, c->block_size, OP_WRITE);
    // q, k, v = split(act(qkv_pre)), qkv_pre = h Wqkv^T
    void *dqkv_pre = model_scratch_take(s, 3 * TA, es);
    qkv_merge(b, dqkv_pre, dq, dk, dv, ACT(m, a->qkv_pre), T, H, D, c->hidden_act);
    matmul(b, din, dqkv_pre, WP(m, p->qkv), T, C, 3 * A, 0, 0, 1.0f, 1.0f);
    matmul_wgrad(b, GP(m, p->qkv), dqkv_pre, h, 3 * A, C, T, m->grad_write);
    s->used = mark;
}
