// model/model.c — the whole network: memory plan, forward over packed sequences, log-probs through
// the fp32 LM head, and the backward pass into every parameter's gradient.
// defines: model_create, model_free, model_forward, model_logprobs, model_backward, model_zero_grad,
//          model_scratch_take, model_scratch_take_zero
//
// One decoder layer (transformers' MiniMaxDecoderLayer; docs/model.md "Forward"):
//     h  = rmsnorm(x, w_in)
//     x1 = alpha_attn * r + beta_attn * attn(h)      r = h (postnorm, HF and M1) or x (original, postnorm false)
//     h2 = rmsnorm(x1, w_post)
//     x  = alpha_mlp * r2 + beta_mlp * moe(h2)       r2 = h2 (postnorm) or x1
// then x = rmsnorm(x, w_final) and log-probs of x @ lm_head^T in fp32.
#include "model/model.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/common.h"
#include "kernels/ops.h"
#include "model/layers.h"

// Logits of at most this many floats exist at once in the LM head (chunk of tokens x V).
#define MODEL_LMHEAD_CHUNK_FLOATS ((size_t)1 << 22)

float *model_scratch_take(model_scratch_t *s, size_t n) {
    CISPO_ASSERT(s->used + n <= s->cap);
    float *p = s->base + s->used;
    s->used += n;
    return p;
}

float *model_scratch_take_zero(model_scratch_t *s, size_t n) {
    float *p = model_scratch_take(s, n);
    memset(p, 0, n * sizeof(float));
    return p;
}

static size_t bump(size_t *n, size_t k) {
    size_t o = *n;
    *n += k;
    return o;
}

// Offsets of every saved activation for up to Tm tokens.
static void plan_activations(model_t *m) {
    const model_config_t *c = &m->cfg;
    const size_t Tm = (size_t)m->max_tokens, C = (size_t)c->hidden_size, A = (size_t)model_attn_width(c);
    const size_t KVD = (size_t)c->n_kv_heads * c->head_dim, H = (size_t)c->n_heads;
    const size_t E = (size_t)c->n_experts, K = (size_t)c->n_experts_per_tok, F = (size_t)c->intermediate_size;
    const size_t S = Tm * K;
    size_t nf = 0, ni = 0;
    size_t x_prev = bump(&nf, Tm * C);  // x[0]: embeddings
    for (int l = 0; l < c->n_layers; l++) {
        model_layer_acts_t *a = &m->layer[l];
        memset(a, 0, sizeof *a);
        a->x_in = x_prev;
        a->rstd_in = bump(&nf, Tm);
        a->h = bump(&nf, Tm * C);
        if (c->layer_kind[l] == LAYER_LIGHTNING) {
            a->qkv_pre = bump(&nf, Tm * 3 * A);
            a->q = bump(&nf, Tm * A);
            a->k = bump(&nf, Tm * A);
            a->v = bump(&nf, Tm * A);
            a->o_core = bump(&nf, Tm * A);
            a->rstd_o = bump(&nf, Tm);
            a->o_norm = bump(&nf, Tm * A);
            a->gate_pre = bump(&nf, Tm * A);
            a->gated = bump(&nf, Tm * A);
        } else {
            a->q_pre = bump(&nf, Tm * A);
            a->k_pre = bump(&nf, Tm * KVD);
            a->q = bump(&nf, Tm * A);
            a->k = bump(&nf, Tm * KVD);
            a->v = bump(&nf, Tm * KVD);
            a->o_core = bump(&nf, Tm * A);
            a->lse = bump(&nf, Tm * H);
        }
        a->x1 = bump(&nf, Tm * C);
        a->rstd_post = bump(&nf, Tm);
        a->h2 = bump(&nf, Tm * C);
        a->logits = bump(&nf, Tm * E);
        a->probs = bump(&nf, Tm * E);
        a->topk_w = bump(&nf, S);
        a->xe = bump(&nf, S * C);
        a->h13 = bump(&nf, S * 2 * F);
        a->act = bump(&nf, S * F);
        a->ye = bump(&nf, S * C);
        a->topk_idx = bump(&ni, S);
        a->perm = bump(&ni, S);
        a->offsets = bump(&ni, E + 1);
        x_prev = bump(&nf, Tm * C);  // this layer's output = the next layer's input
    }
    m->x_final = x_prev;
    m->rstd_final = bump(&nf, Tm);
    m->h_final = bump(&nf, Tm * C);
    m->lm_lse = bump(&nf, Tm);
    m->ids = bump(&ni, Tm);
    m->pos = bump(&ni, Tm);
    m->targets = bump(&ni, Tm);
    m->cu_seqlens = bump(&ni, Tm + 1);
    m->n_acts = nf;
    m->n_iacts = ni;

    // scratch: the forward's branch output or the backward's five [T,C] gradients, plus the
    // largest sub-block's own needs
    size_t sub = model_moe_scratch_floats(c, Tm);
    size_t sl = model_lightning_scratch_floats(c, Tm), ss = model_softmax_scratch_floats(c, Tm);
    if (sl > sub) sub = sl;
    if (ss > sub) sub = ss;
    m->n_scratch = 6 * Tm * C + sub;
}

model_t *model_create(const model_config_t *cfg, float *params, int max_tokens) {
    CISPO_ASSERT(max_tokens >= 1);
    model_t *m = cispo_calloc(1, sizeof *m);
    m->cfg = *cfg;
    m->max_tokens = max_tokens;
    param_table_build(&m->table, cfg);
    m->owns_params = params == NULL;
    m->params = params ? params : cispo_calloc(m->table.n_floats, sizeof(float));
    m->grads = cispo_calloc(m->table.n_floats, sizeof(float));
    const int H = cfg->n_heads;
    m->slopes = cispo_calloc((size_t)cfg->n_layers * H, sizeof(float));
    for (int l = 0; l < cfg->n_layers; l++)
        if (cfg->layer_kind[l] == LAYER_LIGHTNING)
            lightning_slopes(m->slopes + (size_t)l * H, H, l, cfg->n_layers, cfg->flavour == MODEL_FLAVOUR_ORIGINAL);
    plan_activations(m);
    m->acts = cispo_calloc(m->n_acts, sizeof(float));
    m->iacts = cispo_calloc(m->n_iacts, sizeof(int32_t));
    m->scratch = cispo_calloc(m->n_scratch, sizeof(float));
    return m;
}

void model_free(model_t *m) {
    if (!m) return;
    if (m->owns_params) free(m->params);
    free(m->grads);
    free(m->slopes);
    free(m->acts);
    free(m->iacts);
    free(m->scratch);
    param_table_free(&m->table);
    free(m);
}

void model_zero_grad(model_t *m) { memset(m->grads, 0, m->table.n_floats * sizeof(float)); }

// out = a * r + b * y, elementwise in fp32 (as torch computes residual * alpha + hidden * beta)
static void residual_mix(float *out, const float *r, const float *y, double alpha, double beta, size_t n) {
    const float a = (float)alpha, b = (float)beta;
    for (size_t i = 0; i < n; i++) out[i] = a * r[i] + b * y[i];
}

static void scaled_copy(float *out, const float *x, double scale, size_t n) {
    const float s = (float)scale;
    for (size_t i = 0; i < n; i++) out[i] = s * x[i];
}

int model_forward(model_t *m, const int32_t *ids, const int32_t *cu_seqlens, int nseq, int T) {
    const model_config_t *c = &m->cfg;
    if (T < 1 || T > m->max_tokens)
        return cispo_fail("model_forward: %d tokens, the model was planned for 1..%d per micro-batch", T,
                          m->max_tokens);
    if (nseq < 1 || cu_seqlens[0] != 0 || cu_seqlens[nseq] != T)
        return cispo_fail("model_forward: cu_seqlens must run from 0 to T = %d over %d sequences", T, nseq);
    for (int s = 0; s < nseq; s++)
        if (cu_seqlens[s + 1] < cu_seqlens[s])
            return cispo_fail("model_forward: cu_seqlens decreases at sequence %d", s);
    for (int t = 0; t < T; t++)
        if (ids[t] < 0 || ids[t] >= c->vocab_size)
            return cispo_fail("model_forward: token %d has id %d, outside the vocabulary [0, %d)", t, ids[t],
                              c->vocab_size);
    const int C = c->hidden_size;
    const size_t TC = (size_t)T * C;
    int32_t *I = m->iacts;
    m->T = T;
    m->nseq = nseq;
    m->have_logprobs = 0;
    memcpy(I + m->ids, ids, (size_t)T * sizeof(int32_t));
    memcpy(I + m->cu_seqlens, cu_seqlens, (size_t)(nseq + 1) * sizeof(int32_t));
    for (int s = 0; s < nseq; s++)
        for (int t = cu_seqlens[s]; t < cu_seqlens[s + 1]; t++) I[m->pos + t] = t - cu_seqlens[s];

    const float *P = m->params;
    float *X = m->acts;
    model_scratch_t sc = {m->scratch, 0, m->n_scratch};
    float *branch = model_scratch_take(&sc, TC);
    const float eps = (float)c->rms_norm_eps;
    double aux = 0;

    embedding_forward_cpu(X + m->layer[0].x_in, ids, P + m->table.embed, T, C);
    for (int l = 0; l < c->n_layers; l++) {
        const model_layer_acts_t *a = &m->layer[l];
        const layer_params_t *p = &m->table.layers[l];
        const float *x_in = X + a->x_in;
        float *x_out = X + (l + 1 < c->n_layers ? m->layer[l + 1].x_in : m->x_final);
        const int lightning = c->layer_kind[l] == LAYER_LIGHTNING;
        const double alpha = lightning ? c->linear_alpha : c->full_alpha;
        const double beta = lightning ? c->linear_beta : c->full_beta;

        rmsnorm_forward_cpu(X + a->h, X + a->rstd_in, x_in, P + p->input_norm, T, C, eps);
        if (lightning) model_lightning_forward(m, l, branch, &sc);
        else model_softmax_forward(m, l, branch, &sc);
        residual_mix(X + a->x1, c->postnorm ? X + a->h : x_in, branch, alpha, beta, TC);
        rmsnorm_forward_cpu(X + a->h2, X + a->rstd_post, X + a->x1, P + p->post_norm, T, C, eps);
        aux += model_moe_forward(m, l, branch, &sc);
        residual_mix(x_out, c->postnorm ? X + a->h2 : X + a->x1, branch, c->mlp_alpha, c->mlp_beta, TC);
    }
    rmsnorm_forward_cpu(X + m->h_final, X + m->rstd_final, X + m->x_final, P + m->table.final_norm, T, C, eps);
    m->aux_loss = (float)aux;
    return 0;
}

static int lmhead_chunk(const model_t *m) {
    size_t chunk = MODEL_LMHEAD_CHUNK_FLOATS / (size_t)m->cfg.vocab_size;
    if (chunk < 1) chunk = 1;
    if (chunk > (size_t)m->T) chunk = (size_t)m->T;
    return (int)chunk;
}

void model_logprobs(model_t *m, const int32_t *targets, float *logp, float *entropy) {
    CISPO_ASSERT(m->T >= 1);
    const model_config_t *c = &m->cfg;
    int32_t *tg = m->iacts + m->targets;
    for (int t = 0; t < m->T; t++) CISPO_ASSERT(targets[t] >= -1 && targets[t] < c->vocab_size);
    memcpy(tg, targets, (size_t)m->T * sizeof(int32_t));
    lmhead_logprob_forward_cpu(logp, m->acts + m->lm_lse, entropy, m->acts + m->h_final, m->params + m->table.lm_head,
                               tg, m->T, c->hidden_size, c->vocab_size, lmhead_chunk(m));
    m->have_logprobs = 1;
}

// Backward through decoder layer l: on entry dx = dLoss/d(layer output), on return dLoss/d(layer input).
static void layer_backward(model_t *m, int l, float *dx, float aux_coef, model_scratch_t *sc) {
    const model_config_t *c = &m->cfg;
    const int T = m->T, C = c->hidden_size;
    const size_t TC = (size_t)T * C;
    const model_layer_acts_t *a = &m->layer[l];
    const layer_params_t *p = &m->table.layers[l];
    const float *P = m->params, *X = m->acts;
    float *G = m->grads;
    const int lightning = c->layer_kind[l] == LAYER_LIGHTNING;
    const double alpha = lightning ? c->linear_alpha : c->full_alpha;
    const double beta = lightning ? c->linear_beta : c->full_beta;
    size_t mark = sc->used;
    float *dbranch = model_scratch_take(sc, TC), *dh2 = model_scratch_take(sc, TC);
    float *dx1 = model_scratch_take(sc, TC), *dh = model_scratch_take(sc, TC);

    // x_out = alpha_mlp * r2 + beta_mlp * moe(h2)
    scaled_copy(dbranch, dx, c->mlp_beta, TC);
    if (c->postnorm) scaled_copy(dh2, dx, c->mlp_alpha, TC);
    else memset(dh2, 0, TC * sizeof(float));
    model_moe_backward(m, l, dbranch, dh2, aux_coef, sc);
    if (c->postnorm) memset(dx1, 0, TC * sizeof(float));
    else scaled_copy(dx1, dx, c->mlp_alpha, TC);
    rmsnorm_backward_cpu(dx1, G + p->post_norm, dh2, X + a->x1, P + p->post_norm, X + a->rstd_post, T, C);

    // x1 = alpha * r + beta * attn(h)
    scaled_copy(dbranch, dx1, beta, TC);
    if (c->postnorm) scaled_copy(dh, dx1, alpha, TC);
    else memset(dh, 0, TC * sizeof(float));
    if (lightning) model_lightning_backward(m, l, dbranch, dh, sc);
    else model_softmax_backward(m, l, dbranch, dh, sc);
    if (c->postnorm) memset(dx, 0, TC * sizeof(float));
    else scaled_copy(dx, dx1, alpha, TC);
    rmsnorm_backward_cpu(dx, G + p->input_norm, dh, X + a->x_in, P + p->input_norm, X + a->rstd_in, T, C);
    sc->used = mark;
}

void model_backward(model_t *m, const float *dlogp, float aux_coef) {
    CISPO_ASSERT(m->have_logprobs);
    const model_config_t *c = &m->cfg;
    const int T = m->T, C = c->hidden_size;
    const size_t TC = (size_t)T * C;
    const float *P = m->params, *X = m->acts;
    float *G = m->grads;
    model_scratch_t sc = {m->scratch, 0, m->n_scratch};

    float *dhf = model_scratch_take_zero(&sc, TC), *dx = model_scratch_take_zero(&sc, TC);
    lmhead_logprob_backward_cpu(dhf, G + m->table.lm_head, dlogp, X + m->h_final, P + m->table.lm_head,
                                m->iacts + m->targets, X + m->lm_lse, T, C, c->vocab_size, lmhead_chunk(m));
    rmsnorm_backward_cpu(dx, G + m->table.final_norm, dhf, X + m->x_final, P + m->table.final_norm,
                         X + m->rstd_final, T, C);
    for (int l = c->n_layers - 1; l >= 0; l--) layer_backward(m, l, dx, aux_coef, &sc);
    // transformers' nn.Embedding(padding_idx = pad_token_id) gives the pad row no gradient from its
    // lookups (a tied lm_head still contributes through the LM head above)
    if (c->has_pad_token)
        for (int t = 0; t < T; t++)
            if (m->iacts[m->ids + t] == c->pad_token_id) memset(dx + (size_t)t * C, 0, (size_t)C * sizeof(float));
    embedding_backward_cpu(G + m->table.embed, dx, m->iacts + m->ids, T, C);
}
