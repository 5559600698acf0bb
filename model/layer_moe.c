// model/layer_moe.c — the sparse MoE block, forward and backward.
// defines: model_moe_post_norm, model_moe_forward, model_moe_backward, model_moe_recompute, model_moe_scratch_bytes, model_routes
//
// transformers' MiniMaxSparseMoeBlock: logits = h2 Wg^T; p = softmax(logits) in fp32; top-K of p
// (torch.topk order), renormalised to sum 1; y = sum_k w_k * W2_e(act(W1_e x) * W3_e x), act =
// ACT2FN[hidden_act] (silu: SwiGLU).
// Tokens are dispatched into expert order (slots s = t*K + k), so each projection of all experts is
// one grouped GEMM over the row ranges offsets[e]..offsets[e+1); W1 and W3 write the two halves of
// the fused [h1 | h3] rows the gated activation reads, in one launch (grouped_matmul_pair).
// With expert parallelism (m->ep: training, prefill and decode alike) routing, dispatch and combine stay
// local and the expert GEMMs run on the ranks that own the experts (model/moe_ep.c); without it the model
// holds every expert (expert e at (e - e_lo) of the stacks, e_lo 0).
#include <stdlib.h>

#include "base/common.h"
#include "kernels/ops.h"
#include "model/layers.h"
#include "model/moe_ep.h"

size_t model_moe_scratch_bytes(const model_config_t *c, size_t T, size_t esize) {
    size_t S = T * (size_t)c->n_experts_per_tok, Cc = (size_t)c->hidden_size, F = (size_t)c->intermediate_size;
    // backward: dye, dxe [S,C]; dact [S,F]; dh13 [S,2F]; dlogits [T,E]; dtopk_w [T,K] fp32
    return S * (2 * Cc + 3 * F) * esize + T * (size_t)c->n_experts * esize + S * sizeof(float) + 8 * 256;
}

// A decode step whose backend asks for it (backend_tuning_t.decode_route) routes in the post-attention norm; never
// with expert parallelism, replayed routes or in a recompute (those read or keep the forward's routes).
static int routes_in_norm(const model_t *m) {
    return decode_route_on(m->be) && m->cache && m->cache->mode == MODEL_CACHE_DECODE && !m->ep && !m->route_replay &&
           !m->recomputing;
}

// ...and sorts them there too (backend_tuning_t.decode_sort), when the experts' first product is the gated one that
// gathers its rows (decode_fused): model_moe_forward then makes no moe_dispatch.
static int sorts_in_norm(const model_t *m) {
    return routes_in_norm(m) && m->be->tune.decode_sort > 0 && decode_fused_on(m->be);
}

void model_moe_post_norm(model_t *m, int l, const void *r, const void *branch, float alpha, float beta) {
    const model_config_t *c = &m->cfg;
    const model_layer_acts_t *a = &m->layer[l];
    const layer_params_t *p = &m->table.layers[l];
    const int T = m->T, C = c->hidden_size;
    const float eps = (float)c->rms_norm_eps;
    const int sort = sorts_in_norm(m);
    if (routes_in_norm(m))
        residual_rmsnorm_route(m->be, ACT(m, a->x1), ACT(m, a->h2), STAT(m, a->rstd_post), r, branch, alpha, beta,
                               WP(m, p->post_norm), T, C, eps, WP(m, p->router), ACT(m, a->logits),
                               STAT(m, a->probs), IACT(m, a->topk_idx), STAT(m, a->topk_w), c->n_experts,
                               c->n_experts_per_tok, sort ? IACT(m, a->perm) : NULL, sort ? IACT(m, a->offsets) : NULL,
                               IACT(m, m->route_count));
    else
        residual_rmsnorm(m->be, ACT(m, a->x1), ACT(m, a->h2), STAT(m, a->rstd_post), r, branch, alpha, beta,
                         WP(m, p->post_norm), T, C, eps);
}

void model_moe_forward(model_t *m, int l, model_scratch_t *s) {
    const model_config_t *c = &m->cfg;
    backend_t *b = m->be;
    const int T = m->T, C = c->hidden_size, E = c->n_experts, K = c->n_experts_per_tok, F = c->intermediate_size;
    const int S = T * K;
    const model_layer_acts_t *a = &m->layer[l];
    const layer_params_t *p = &m->table.layers[l];
    const int32_t *off = IACT(m, a->offsets);
    void *h13 = ACT(m, a->h13);
    (void)s;

    if (!routes_in_norm(m)) {  // (else model_moe_post_norm routed)
        matmul(b, ACT(m, a->logits), ACT(m, a->h2), WP(m, p->router), T, E, C, 0, 1, 1.0f, 0.0f);
        // a recompute (model_backward) replays the routes its forward left in topk_idx
        if (m->route_replay && !m->recomputing)
            backend_upload(b, IACT(m, a->topk_idx), m->route_replay + (size_t)l * S, (size_t)S * sizeof(int32_t));
        moe_route_forward(b, STAT(m, a->probs), IACT(m, a->topk_idx), STAT(m, a->topk_w), ACT(m, a->logits), T, E,
                          K, m->route_replay != NULL || m->recomputing);
    }
    if (!m->cache && !m->recomputing)  // prefill and decode train nothing: no load-balancing loss (model_forward_cached)
        moe_aux_loss(b, STAT(m, a->aux), STAT(m, a->probs), IACT(m, a->topk_idx), T, E, K);
    const int sorted = sorts_in_norm(m);  // perm and offsets made by the norm; the gated product gathers the rows
    if (!sorted)
        moe_dispatch(b, ACT(m, a->xe), IACT(m, a->perm), IACT(m, a->offsets), ACT(m, a->h2), IACT(m, a->topk_idx), T,
                     C, E, K);
    if (m->ep) {
        int32_t *off_host = cispo_malloc((size_t)(E + 1) * sizeof(int32_t));
        backend_download(b, off_host, off, (size_t)(E + 1) * sizeof(int32_t));
        moe_ep_layer_forward(m, l, ACT(m, a->xe), off_host, S, ACT(m, a->ye));
        free(off_host);
    } else {
        if (decode_fused_on(b) && m->cache && m->cache->mode == MODEL_CACHE_DECODE) {
            // backend_tuning_t.decode_fused: the gated activation from both products in one (a decode step
            // reads no [h1 | h3] rows)
            grouped_matmul_glu(b, ACT(m, a->act), ACT(m, sorted ? a->h2 : a->xe), C, WP(m, p->w1), WP(m, p->w3), off,
                               E, S, F, C, c->hidden_act, sorted ? IACT(m, a->perm) : NULL, K);
        } else {
            grouped_matmul_pair(b, h13, 2 * F, ACT(m, a->xe), C, WP(m, p->w1), WP(m, p->w3), off, E, S, F, C);
            glu_forward(b, c->hidden_act, ACT(m, a->act), h13, S, F);
        }
        grouped_matmul(b, ACT(m, a->ye), C, ACT(m, a->act), F, WP(m, p->w2), 1, off, E, S, C, F, 0.0f);
    }
}

void model_moe_recompute(model_t *m, int l) {
    if (m->ep) return;
    const model_config_t *c = &m->cfg;
    const int T = m->T, C = c->hidden_size, E = c->n_experts, K = c->n_experts_per_tok, F = c->intermediate_size;
    const model_layer_acts_t *a = &m->layer[l];
    moe_dispatch(m->be, ACT(m, a->xe), IACT(m, a->perm), IACT(m, a->offsets), ACT(m, a->h2), IACT(m, a->topk_idx), T,
                 C, E, K);
    glu_forward(m->be, c->hidden_act, ACT(m, a->act), ACT(m, a->h13), T * K, F);
}

void model_moe_backward(model_t *m, int l, const void *dout, void *din, float aux_coef, model_scratch_t *s) {
    const model_config_t *c = &m->cfg;
    backend_t *b = m->be;
    const int T = m->T, C = c->hidden_size, E = c->n_experts, K = c->n_experts_per_tok, F = c->intermediate_size;
    const int S = T * K;
    const size_t es = m->esize;
    const model_layer_acts_t *a = &m->layer[l];
    const layer_params_t *p = &m->table.layers[l];
    const int32_t *off = IACT(m, a->offsets);
    size_t mark = s->used;

    // y = combine(ye, topk_w)
    void *dye = model_scratch_take(s, (size_t)S * C, es);
    float *dtopk_w = model_scratch_take(s, (size_t)S, sizeof(float));
    moe_combine_backward(b, dye, dtopk_w, dout, ACT(m, a->ye), STAT(m, a->topk_w), IACT(m, a->perm), T, C, K,
                         OP_WRITE);
    void *dxe = model_scratch_take(s, (size_t)S * C, es);
    if (m->ep) {
        moe_ep_layer_backward(m, l, dye, S, dxe);
    } else {
        // ye = act W2_e^T
        void *dact = model_scratch_take(s, (size_t)S * F, es);
        grouped_matmul(b, dact, F, dye, C, WP(m, p->w2), 0, off, E, S, F, C, 0.0f);
        grouped_matmul_wgrad(b, GP(m, p->w2), dye, C, ACT(m, a->act), F, off, E, S, C, F, m->grad_write);
        // act = act(h1) * h3
        void *dh13 = model_scratch_take(s, (size_t)S * 2 * F, es), *dh3 = (char *)dh13 + (size_t)F * es;
        glu_backward(b, c->hidden_act, dh13, dact, ACT(m, a->h13), S, F, OP_WRITE);
        // h1 = xe W1_e^T, h3 = xe W3_e^T (every dispatched row belongs to exactly one expert)
        grouped_matmul(b, dxe, C, dh13, 2 * F, WP(m, p->w1), 0, off, E, S, C, F, 0.0f);
        grouped_matmul(b, dxe, C, dh3, 2 * F, WP(m, p->w3), 0, off, E, S, C, F, 1.0f);
        grouped_matmul_wgrad(b, GP(m, p->w1), dh13, 2 * F, ACT(m, a->xe), C, off, E, S, F, C, m->grad_write);
        grouped_matmul_wgrad(b, GP(m, p->w3), dh3, 2 * F, ACT(m, a->xe), C, off, E, S, F, C, m->grad_write);
    }
    moe_dispatch_backward(b, din, dxe, IACT(m, a->perm), T, C, K, OP_ACCUMULATE);
    // routing: topk_w and (through the aux loss) probs depend on logits = h2 Wg^T
    void *dlogits = model_scratch_take(s, (size_t)T * E, es);
    moe_route_backward(b, dlogits, dtopk_w, aux_coef, STAT(m, a->probs), IACT(m, a->topk_idx), STAT(m, a->topk_w), T,
                       E, K, OP_WRITE);
    matmul(b, din, dlogits, WP(m, p->router), T, C, E, 0, 0, 1.0f, 1.0f);
    matmul_wgrad(b, GP(m, p->router), dlogits, ACT(m, a->h2), E, C, T, m->grad_write);
    s->used = mark;
}

void model_routes(const model_t *m, int layer, int32_t *idx) {
    CISPO_ASSERT(layer >= 0 && layer < m->cfg.n_layers);
    backend_download(m->be, idx, IACT(m, m->layer[layer].topk_idx),
                     (size_t)m->T * m->cfg.n_experts_per_tok * sizeof(int32_t));
}
