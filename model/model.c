// model/model.c — the whole network: memory plan, forward over packed sequences, log-probs through
// the fp32 LM head, and the backward pass into every parameter's gradient.
// defines: model_create, model_create_on, model_create_experts, model_activation_bytes, model_free, model_forward, model_forward_cached, model_stage_cached,
//          model_run_cached, model_logprobs,
//          model_backward, model_grad_ranges, model_zero_grad, model_sync_weights, model_load_params, model_drop_master,
//          model_scratch_take
//
// One decoder layer (transformers' MiniMaxDecoderLayer; docs/model.md "Forward"):
//     h  = rmsnorm(x, w_in)
//     x1 = alpha_attn * r + beta_attn * attn(h)      r = h (postnorm, HF and M1) or x (original, postnorm false)
//     h2 = rmsnorm(x1, w_post)
//     x  = alpha_mlp * r2 + beta_mlp * moe(h2)       r2 = h2 (postnorm) or x1
// then x = rmsnorm(x, w_final) and log-probs of x @ lm_head^T in fp32.
// Every step is an op of kernels/ops.h on m->be: this file and model/layer_*.c are the whole model on
// every backend, for training, prefill and decode alike.
#include "model/model.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/common.h"
#include "kernels/ops.h"
#include "model/layers.h"
#include "model/moe_ep.h"

#define SCRATCH_ALIGN 256

void *model_scratch_take(model_scratch_t *s, size_t n, size_t bytes_per) {
    size_t at = (s->used + SCRATCH_ALIGN - 1) / SCRATCH_ALIGN * SCRATCH_ALIGN;
    CISPO_ASSERT(at + n * bytes_per <= s->cap);
    s->used = at + n * bytes_per;
    return s->base + at;
}

// Every piece starts on a multiple of 64 elements (128 bytes in bf16): the CUDA kernels load rows with
// 16-byte vectors and cp.async, so a piece after one of odd size (Tm * E with E and Tm odd) must not
// shift the next off alignment.
static size_t bump(size_t *n, size_t k) {
    size_t o = (*n + 63) / 64 * 64;
    *n = o + k;
    return o;
}

// The staged index arrays of a batch of T tokens in nseq sequences, packed from m->stage; returns the
// elements up to the end of tok_len. Fixed by (T, nseq): a decode step replayed as a CUDA graph finds them
// where its capture did.
static size_t stage_layout(model_t *m, int T, int nseq) {
    const size_t a = ((size_t)T + 63) / 64 * 64, c = ((size_t)nseq + 1 + 63) / 64 * 64;
    m->ids = m->stage;
    m->cu_seqlens = m->ids + a;
    m->pos = m->cu_seqlens + c;
    m->tok_slot = m->pos + a;
    m->tok_len = m->tok_slot + a;
    return m->tok_len - m->stage + (size_t)T;
}

// The pieces of layer l other than its input and what stays per layer (x_in, rstd_in, topk_idx, aux), for up
// to Tm tokens, bumped from the counters (act: activation dtype; st: fp32; ni: int32). The pieces that are
// cheap to make again from the others without a GEMM or an attention core (norm outputs, activations, the
// rotated q and k, the gate product, the dispatched rows) are bumped from nc instead (activation dtype). The
// softmax layer's q and k before RoPE are read again only to make the rotated ones again: kept (bumped from na)
// with keep_pre, else MODEL_PIECE_SCRATCH (the forward takes them from its scratch).
static void plan_layer_body(const model_config_t *c, int l, size_t Tm, model_layer_acts_t *a, size_t *na, size_t *st,
                            size_t *ni, size_t *nc, int keep_pre) {
    const size_t C = (size_t)c->hidden_size, A = (size_t)model_attn_width(c);
    const size_t KVD = (size_t)c->n_kv_heads * c->head_dim, H = (size_t)c->n_heads;
    const size_t E = (size_t)c->n_experts, K = (size_t)c->n_experts_per_tok, F = (size_t)c->intermediate_size;
    const size_t S = Tm * K;
    a->h = bump(nc, Tm * C);
    if (c->layer_kind[l] == LAYER_LIGHTNING) {
        a->qkv_pre = bump(na, Tm * 3 * A);
        a->q = bump(nc, Tm * A);
        a->k = bump(nc, Tm * A);
        a->v = bump(nc, Tm * A);
        a->o_core = bump(na, Tm * A);
        a->rstd_o = bump(st, Tm);
        a->gate_pre = bump(na, Tm * A);
        a->gated = bump(nc, Tm * A);
    } else {
        a->q_pre = keep_pre ? bump(na, Tm * A) : MODEL_PIECE_SCRATCH;
        a->k_pre = keep_pre ? bump(na, Tm * KVD) : MODEL_PIECE_SCRATCH;
        a->q = bump(nc, Tm * A);
        a->k = bump(nc, Tm * KVD);
        a->v = bump(na, Tm * KVD);
        a->o_core = bump(na, Tm * A);
        a->lse = bump(st, Tm * H);
    }
    a->x1 = bump(na, Tm * C);
    a->rstd_post = bump(st, Tm);
    a->h2 = bump(nc, Tm * C);
    a->logits = bump(nc, Tm * E);  // the backward does not read it
    a->probs = bump(st, Tm * E);
    a->topk_w = bump(st, S);
    a->xe = bump(nc, S * C);
    a->h13 = bump(na, S * 2 * F);
    a->act = bump(nc, S * F);
    a->ye = bump(na, S * C);
    a->perm = bump(ni, S);
    a->offsets = bump(ni, E + 1);
}

// Offsets of every saved activation for up to Tm tokens (act: activation dtype; st: fp32; ni: int32).
// Each layer keeps its input x_in, rstd_in, its routes topk_idx and its aux loss. The rest of a layer's
// pieces are its own (MODEL_RECOMPUTE_OFF), or one region that every layer reuses (FULL: the backward runs
// each layer's forward again from its input before its backward, model_backward), or its own except the
// cheap ones, which share a region (CHEAP: the backward makes them again, layer_recompute_cheap). The softmax
// layer's q and k before RoPE are kept only under CHEAP (its recompute reads them).
static void plan_activations(model_t *m) {
    const model_config_t *c = &m->cfg;
    const size_t Tm = (size_t)m->max_tokens, C = (size_t)c->hidden_size;
    const size_t S = Tm * (size_t)c->n_experts_per_tok;
    size_t na = 0, st = 0, ni = 0, cheap_base = 0;
    size_t aux_all = bump(&st, (size_t)c->n_layers);
    if (m->recompute == MODEL_RECOMPUTE_CHEAP_MODE) {  // the cheap pieces' region: as large as the largest layer's
        size_t most = 0;
        for (int l = 0; l < c->n_layers; l++) {
            model_layer_acts_t tmp;
            size_t ja = 0, js = 0, ji = 0, jc = 0;
            plan_layer_body(c, l, Tm, &tmp, &ja, &js, &ji, &jc, 1);
            if (jc > most) most = jc;
        }
        cheap_base = bump(&na, most);
    }
    size_t x_prev = bump(&na, Tm * C);  // x[0]: embeddings
    for (int l = 0; l < c->n_layers; l++) {
        model_layer_acts_t *a = &m->layer[l];
        memset(a, 0, sizeof *a);
        a->x_in = x_prev;
        a->rstd_in = bump(&st, Tm);
        a->topk_idx = bump(&ni, S);
        a->aux = aux_all + (size_t)l;
        if (m->recompute == MODEL_RECOMPUTE_OFF) {
            plan_layer_body(c, l, Tm, a, &na, &st, &ni, &na, 0);
        } else if (m->recompute == MODEL_RECOMPUTE_CHEAP_MODE) {
            size_t nc = cheap_base;
            plan_layer_body(c, l, Tm, a, &na, &st, &ni, &nc, 1);
        }
        x_prev = bump(&na, Tm * C);  // this layer's output = the next layer's input
    }
    if (m->recompute == MODEL_RECOMPUTE_FULL) {  // one region, as large as the largest layer kind needs
        size_t na0 = na, st0 = st, ni0 = ni;
        for (int l = 0; l < c->n_layers; l++) {
            size_t a1 = na0, s1 = st0, i1 = ni0;
            plan_layer_body(c, l, Tm, &m->layer[l], &a1, &s1, &i1, &a1, 0);
            if (a1 > na) na = a1;
            if (s1 > st) st = s1;
            if (i1 > ni) ni = i1;
        }
    }
    m->x_final = x_prev;
    m->rstd_final = bump(&st, Tm);
    m->h_final = bump(&na, Tm * C);
    m->lm_lse = bump(&st, Tm);
    m->logp = bump(&st, Tm);
    m->entropy = bump(&st, Tm);
    m->dlogp = bump(&st, Tm);
    m->targets = bump(&ni, Tm);
    m->route_count = bump(&ni, 1);  // zero from the allocation on (the op leaves it so)
    // the staged index arrays (stage_batch): ids, cu_seqlens, pos, tok_slot, tok_len, each on 64 elements
    m->stage = bump(&ni, 5 * ((Tm + 63) / 64 * 64) + 64);
    stage_layout(m, Tm, Tm);
    m->n_acts = na;
    m->n_stats = st;
    m->n_iacts = ni;

    // scratch: the forward's branch output or the backward's four [T,C] gradients and dx, plus the
    // largest sub-block's own needs
    const size_t es = m->esize;
    size_t sub = model_moe_scratch_bytes(c, Tm, es);
    size_t sl = model_lightning_scratch_bytes(c, Tm, es), ss = model_softmax_scratch_bytes(c, Tm, es);
    if (sl > sub) sub = sl;
    if (ss > sub) sub = ss;
    m->n_scratch = 6 * (Tm * C * es + SCRATCH_ALIGN) + sub;
}

static int recompute_mode(int flags) {
    if (flags & (MODEL_RECOMPUTE | MODEL_FORWARD_ONLY)) return MODEL_RECOMPUTE_FULL;
    return flags & MODEL_RECOMPUTE_CHEAP ? MODEL_RECOMPUTE_CHEAP_MODE : MODEL_RECOMPUTE_OFF;
}

size_t model_activation_bytes(const model_config_t *cfg, int max_tokens, size_t esize, int flags) {
    model_t *m = cispo_calloc(1, sizeof *m);
    m->cfg = *cfg;
    m->max_tokens = max_tokens;
    m->esize = esize;
    m->recompute = recompute_mode(flags);
    plan_activations(m);
    size_t bytes = m->n_acts * esize + (m->n_stats + m->n_iacts) * 4 + m->n_scratch;
    free(m);
    return bytes;
}

model_t *model_create_experts(backend_t *be, const model_config_t *cfg, float *params, int max_tokens, int e_lo,
                              int e_hi, int flags) {
    CISPO_ASSERT(max_tokens >= 1);
    model_t *m = cispo_calloc(1, sizeof *m);
    m->cfg = *cfg;
    m->forward_only = (flags & MODEL_FORWARD_ONLY) != 0;
    m->recompute = recompute_mode(flags);
    m->be = be;
    m->grad_write = OP_ACCUMULATE;  // backward adds to m->grads (model_zero_grad_deferred: writes once)
    m->max_tokens = max_tokens;
    m->esize = dtype_size(be->act_dtype);
    m->grad_dtype = be->grad_dtype;
    m->gsize = dtype_size(be->grad_dtype);
    param_table_build_experts(&m->table, cfg, e_lo, e_hi);
    const size_t np = m->table.n_floats;
    // forward only in a narrower dtype: the working copy alone (no fp32 master, no gradients); MODEL_NO_MASTER:
    // the working copy and the gradients
    const int no_master = (m->forward_only || (flags & MODEL_NO_MASTER)) && be->act_dtype != DTYPE_F32;
    CISPO_ASSERT(!no_master || !params);
    m->owns_params = params == NULL && !no_master;
    m->params = no_master ? NULL : params ? params : backend_alloc(be, np * sizeof(float));
    m->wparams = be->act_dtype == DTYPE_F32 ? (void *)m->params : backend_alloc(be, np * m->esize);
    m->grads = m->forward_only ? NULL : backend_alloc(be, np * m->gsize);
    const int H = cfg->n_heads;
    float *slopes = cispo_calloc((size_t)cfg->n_layers * H, sizeof(float));
    for (int l = 0; l < cfg->n_layers; l++)
        if (cfg->layer_kind[l] == LAYER_LIGHTNING)
            lightning_slopes(slopes + (size_t)l * H, H, l, cfg->n_layers, cfg->flavour == MODEL_FLAVOUR_ORIGINAL);
    m->slopes = backend_alloc(be, (size_t)cfg->n_layers * H * sizeof(float));
    backend_upload(be, m->slopes, slopes, (size_t)cfg->n_layers * H * sizeof(float));
    free(slopes);
    plan_activations(m);
    m->acts = backend_alloc(be, m->n_acts * m->esize);
    m->stats = backend_alloc(be, m->n_stats * sizeof(float));
    m->iacts = backend_alloc(be, m->n_iacts * sizeof(int32_t));
    m->scratch = backend_alloc(be, m->n_scratch);
    m->h_cu = cispo_calloc((size_t)max_tokens + 1, sizeof(int32_t));
    m->h_pos = cispo_calloc((size_t)max_tokens, sizeof(int32_t));
    m->logit_scale = 1.0f;
    if (params) model_sync_weights(m);
    return m;
}

model_t *model_create_on(backend_t *be, const model_config_t *cfg, float *params, int max_tokens) {
    return model_create_experts(be, cfg, params, max_tokens, 0, cfg->n_experts, 0);
}

model_t *model_create(const model_config_t *cfg, float *params, int max_tokens) {
    return model_create_on(backend_host(), cfg, params, max_tokens);
}

void model_free(model_t *m) {
    if (!m) return;
    moe_ep_detach(m);
    backend_t *b = m->be;
    if (m->wparams != (void *)m->params) backend_free(b, m->wparams);
    if (m->owns_params) backend_free(b, m->params);
    backend_free(b, m->grads);
    backend_free(b, m->slopes);
    backend_free(b, m->acts);
    backend_free(b, m->stats);
    backend_free(b, m->iacts);
    backend_free(b, m->scratch);
    free(m->h_cu);
    free(m->h_pos);
    param_table_free(&m->table);
    free(m);
}

void model_zero_grad(model_t *m) {
    CISPO_ASSERT(m->grads);  // not a MODEL_FORWARD_ONLY model
    backend_zero(m->be, m->grads, m->table.n_floats * m->gsize);
    m->grad_write = OP_ACCUMULATE;
}

void model_zero_grad_deferred(model_t *m) {
    CISPO_ASSERT(m->grads);
    if (m->ep) {  // expert gradients may come in several pieces (model/moe_ep.c)
        model_zero_grad(m);
        return;
    }
    const model_config_t *c = &m->cfg;
    const param_table_t *t = &m->table;
    const size_t C = (size_t)c->hidden_size, A = (size_t)model_attn_width(c), V = (size_t)c->vocab_size;
    size_t zeroed = 0, written = 0;  // floats of each kind: together the whole buffer
#define ZERO(off, n) (backend_zero(m->be, GP(m, off), (n) * m->gsize), zeroed += (n))
    ZERO(t->embed, V * C);
    ZERO(t->final_norm, C);
    if (t->lm_head != t->embed) ZERO(t->lm_head, V * C);
    const size_t KVD = (size_t)c->n_kv_heads * c->head_dim, E = (size_t)(t->e_hi - t->e_lo);
    const size_t F = (size_t)c->intermediate_size;
    for (int l = 0; l < c->n_layers; l++) {
        const layer_params_t *p = &t->layers[l];
        ZERO(p->input_norm, C);
        ZERO(p->post_norm, C);
        if (c->layer_kind[l] == LAYER_LIGHTNING) {
            ZERO(p->out_norm, A);
            written += 3 * A * C + A * C + C * A;  // qkv, gate, out
        } else {
            written += A * C + 2 * KVD * C + C * A;  // q, k, v, o
        }
        written += (size_t)c->n_experts * C + 3 * E * F * C;  // router, w1, w3, w2
    }
#undef ZERO
    CISPO_ASSERT(zeroed + written == t->n_floats);  // a parameter neither written nor zeroed would keep stale sums
    m->grad_write = OP_WRITE;
}

void model_grads_settle(model_t *m) {
    if (m->grad_write == OP_WRITE) model_zero_grad(m);
}

void model_sync_weights(model_t *m) {
    if (!m->params || m->wparams == (void *)m->params) return;  // no master (MODEL_FORWARD_ONLY), or it is the copy
    const size_t n = m->table.n_floats;
    float *host = cispo_malloc(n * sizeof(float));
    backend_download(m->be, host, m->params, n * sizeof(float));
    backend_fill_f32(m->be, m->wparams, m->be->act_dtype, host, n);
    free(host);
}

// Checks the batch and brings its index arrays to the backend: ids, cu_seqlens, positions (from
// each sequence's start: 0, or the cached length in decode) and, with a cache, each token's slot
// and cached length after it.
static int stage_batch(model_t *m, const int32_t *ids, const int32_t *cu_seqlens, int nseq, int T,
                       const model_cache_t *ca) {
    const model_config_t *c = &m->cfg;
    if (T < 1 || T > m->max_tokens)
        return cispo_fail("model_forward: %d tokens, the model was planned for 1..%d per micro-batch", T,
                          m->max_tokens);
    if (!m->ep && (m->table.e_lo != 0 || m->table.e_hi != c->n_experts))
        return cispo_fail("model_forward: the model holds experts [%d, %d) of %d only: attach the expert-parallel "
                          "group that owns the others (moe_ep_attach)", m->table.e_lo, m->table.e_hi, c->n_experts);
    if (nseq > m->max_tokens)
        return cispo_fail("model_forward: %d sequences, the model was planned for at most %d", nseq, m->max_tokens);
    if (nseq < 1 || cu_seqlens[0] != 0 || cu_seqlens[nseq] != T)
        return cispo_fail("model_forward: cu_seqlens must run from 0 to T = %d over %d sequences", T, nseq);
    int max_len = 0;
    for (int s = 0; s < nseq; s++) {
        int len = cu_seqlens[s + 1] - cu_seqlens[s];
        if (len < 0) return cispo_fail("model_forward: cu_seqlens decreases at sequence %d", s);
        if (ca && ca->mode == MODEL_CACHE_DECODE && len != 1)
            return cispo_fail("model_forward: decode takes one token per sequence, sequence %d has %d", s, len);
        if (len > max_len) max_len = len;
    }
    for (int t = 0; t < T; t++)
        if (ids[t] < 0 || ids[t] >= c->vocab_size)
            return cispo_fail("model_forward: token %d has id %d, outside the vocabulary [0, %d)", t, ids[t],
                              c->vocab_size);
    m->T = T;
    m->nseq = nseq;
    m->max_len = max_len;
    m->have_logprobs = 0;
    memcpy(m->h_cu, cu_seqlens, (size_t)(nseq + 1) * sizeof(int32_t));
    // one upload of the packed arrays (each a synchronising copy on a device: one instead of five)
    const size_t n = stage_layout(m, T, nseq), used = ca ? n : m->tok_slot - m->stage;
    int32_t *h = cispo_calloc(used, sizeof(int32_t));
    int32_t *slot = ca ? h + (m->tok_slot - m->stage) : NULL, *len1 = ca ? h + (m->tok_len - m->stage) : NULL;
    for (int s = 0; s < nseq; s++) {
        int start = ca ? ca->start_host[s] : 0;
        for (int t = cu_seqlens[s]; t < cu_seqlens[s + 1]; t++) {
            m->h_pos[t] = start + t - cu_seqlens[s];
            if (ca) {
                slot[t] = ca->slot_host[s];
                len1[t] = m->h_pos[t] + 1;
            }
        }
    }
    memcpy(h + (m->ids - m->stage), ids, (size_t)T * sizeof(int32_t));
    memcpy(h + (m->cu_seqlens - m->stage), cu_seqlens, (size_t)(nseq + 1) * sizeof(int32_t));
    memcpy(h + (m->pos - m->stage), m->h_pos, (size_t)T * sizeof(int32_t));
    backend_upload(m->be, IACT(m, m->stage), h, used * sizeof(int32_t));
    free(h);
    return 0;
}

int model_stage_cached(model_t *m, const int32_t *ids, const int32_t *cu_seqlens, int nseq, int T,
                       const model_cache_t *cache) {
    const model_config_t *c = &m->cfg;
    if (stage_batch(m, ids, cu_seqlens, nseq, T, cache)) return -1;
    op_ws_shape_t shape = {T, nseq, c->hidden_size, c->vocab_size, c->n_heads, c->n_kv_heads, c->head_dim,
                           c->n_experts, c->n_experts_per_tok, c->intermediate_size};
    backend_ws_reserve(m->be, ops_workspace_bytes(m->be, &shape));
    return 0;
}

void model_run_cached(model_t *m, model_cache_t *cache) {
    const model_config_t *c = &m->cfg;
    backend_t *b = m->be;
    const int T = m->T;
    m->cache = cache;
    const int C = c->hidden_size;
    model_scratch_t sc = {m->scratch, 0, m->n_scratch};
    void *branch = model_scratch_take(&sc, (size_t)T * C, m->esize);
    const float eps = (float)c->rms_norm_eps;

    // Each residual join is fused with the norm that reads it: the attention branch's with the
    // post-attention norm (residual_rmsnorm), the MoE branch's, its combine included (moe_combine_rmsnorm),
    // with the next layer's input norm (the final norm after the last layer).
    embedding_forward(b, ACT(m, m->layer[0].x_in), IACT(m, m->ids), WP(m, m->table.embed), T, C);
    rmsnorm_forward(b, ACT(m, m->layer[0].h), STAT(m, m->layer[0].rstd_in), ACT(m, m->layer[0].x_in),
                    WP(m, m->table.layers[0].input_norm), T, C, eps);
    for (int l = 0; l < c->n_layers; l++) {
        const model_layer_acts_t *a = &m->layer[l];
        const void *x_in = ACT(m, a->x_in);
        const int last = l + 1 == c->n_layers;
        const int lightning = c->layer_kind[l] == LAYER_LIGHTNING;
        const float alpha = (float)(lightning ? c->linear_alpha : c->full_alpha);
        const float beta = (float)(lightning ? c->linear_beta : c->full_beta);

        if (lightning) model_lightning_forward(m, l, branch, &sc);
        else model_softmax_forward(m, l, branch, &sc);
        model_moe_post_norm(m, l, c->postnorm ? ACT(m, a->h) : x_in, branch, alpha, beta);
        model_moe_forward(m, l, &sc);  // up to the experts' rows; the combine joins the residual below
        const model_layer_acts_t *n = last ? NULL : &m->layer[l + 1];
        moe_combine_rmsnorm(b, ACT(m, last ? m->x_final : n->x_in), ACT(m, last ? m->h_final : n->h),
                            STAT(m, last ? m->rstd_final : n->rstd_in), c->postnorm ? ACT(m, a->h2) : ACT(m, a->x1),
                            ACT(m, a->ye), STAT(m, a->topk_w), IACT(m, a->perm), (float)c->mlp_alpha,
                            (float)c->mlp_beta, WP(m, last ? m->table.final_norm : m->table.layers[l + 1].input_norm),
                            T, C, c->n_experts_per_tok, eps);
    }
    m->cache = NULL;
}

int model_forward_cached(model_t *m, const int32_t *ids, const int32_t *cu_seqlens, int nseq, int T,
                         model_cache_t *cache) {
    const model_config_t *c = &m->cfg;
    if (model_stage_cached(m, ids, cu_seqlens, nseq, T, cache)) return -1;
    model_run_cached(m, cache);
    // the load-balancing losses of all layers, read once; prefill and decode train nothing, and a
    // device read would stall every decode step
    if (cache) {
        m->aux_loss = 0.0f;
        return 0;
    }
    float aux_host[MODEL_MAX_LAYERS];
    backend_download(m->be, aux_host, STAT(m, m->layer[0].aux), (size_t)c->n_layers * sizeof(float));
    double aux = 0;
    for (int l = 0; l < c->n_layers; l++) aux += aux_host[l];
    m->aux_loss = (float)aux;
    return 0;
}

int model_forward(model_t *m, const int32_t *ids, const int32_t *cu_seqlens, int nseq, int T) {
    return model_forward_cached(m, ids, cu_seqlens, nseq, T, NULL);
}

void model_logprobs(model_t *m, const int32_t *targets, float *logp, float *entropy) {
    CISPO_ASSERT(m->T >= 1);
    const model_config_t *c = &m->cfg;
    backend_t *b = m->be;
    for (int t = 0; t < m->T; t++) CISPO_ASSERT(targets[t] >= -1 && targets[t] < c->vocab_size);
    backend_upload(b, IACT(m, m->targets), targets, (size_t)m->T * sizeof(int32_t));
    // logits s z = (s x) W^T: the head on the scaled hidden state (exact, and the same op everywhere)
    model_scratch_t sc = {m->scratch, 0, m->n_scratch};
    const void *x = ACT(m, m->h_final);
    if (m->logit_scale != 1.0f) {
        void *xs = model_scratch_take(&sc, (size_t)m->T * c->hidden_size, m->esize);
        residual_mix(b, xs, NULL, x, 0.0f, m->logit_scale, (size_t)m->T * c->hidden_size);
        x = xs;
    }
    lmhead_logprob_forward(b, STAT(m, m->logp), STAT(m, m->lm_lse), entropy ? STAT(m, m->entropy) : NULL, x,
                           WP(m, m->table.lm_head), IACT(m, m->targets), m->T, c->hidden_size, c->vocab_size);
    backend_download(b, logp, STAT(m, m->logp), (size_t)m->T * sizeof(float));
    if (entropy) backend_download(b, entropy, STAT(m, m->entropy), (size_t)m->T * sizeof(float));
    m->have_logprobs = 1;
}

// Layer l's forward again from its saved input, up to the MoE experts' outputs (the layer's output, which
// the next layer's backward no longer needs, is not formed): every piece layer_backward reads is back in the
// region the layers share (plan_activations). The MoE replays the routes the forward chose (kept per layer),
// so the recomputed layer is the one the forward ran whatever the backend's rounding; its load-balancing loss
// is the forward's.
static void layer_recompute(model_t *m, int l, model_scratch_t *sc) {
    const model_config_t *c = &m->cfg;
    backend_t *b = m->be;
    const int T = m->T, C = c->hidden_size;
    const model_layer_acts_t *a = &m->layer[l];
    const layer_params_t *p = &m->table.layers[l];
    const int lightning = c->layer_kind[l] == LAYER_LIGHTNING;
    const float alpha = (float)(lightning ? c->linear_alpha : c->full_alpha);
    const float beta = (float)(lightning ? c->linear_beta : c->full_beta);
    const float eps = (float)c->rms_norm_eps;
    size_t mark = sc->used;
    void *branch = model_scratch_take(sc, (size_t)T * C, m->esize);
    rmsnorm_forward(b, ACT(m, a->h), STAT(m, a->rstd_in), ACT(m, a->x_in), WP(m, p->input_norm), T, C, eps);
    if (lightning) model_lightning_forward(m, l, branch, sc);
    else model_softmax_forward(m, l, branch, sc);
    model_moe_post_norm(m, l, c->postnorm ? ACT(m, a->h) : ACT(m, a->x_in), branch, alpha, beta);
    m->recomputing = 1;
    model_moe_forward(m, l, sc);
    m->recomputing = 0;
    sc->used = mark;
}

// MODEL_RECOMPUTE_CHEAP: layer l's pieces that live in the shared region, made again from the ones the layer
// kept, by the same ops as the forward (so the same bits): the two norm outputs, and each sub-block's own.
static void layer_recompute_cheap(model_t *m, int l) {
    const model_config_t *c = &m->cfg;
    const model_layer_acts_t *a = &m->layer[l];
    const layer_params_t *p = &m->table.layers[l];
    const float eps = (float)c->rms_norm_eps;
    rmsnorm_forward(m->be, ACT(m, a->h), STAT(m, a->rstd_in), ACT(m, a->x_in), WP(m, p->input_norm), m->T,
                    c->hidden_size, eps);
    if (c->layer_kind[l] == LAYER_LIGHTNING) model_lightning_recompute(m, l);
    else model_softmax_recompute(m, l);
    rmsnorm_forward(m->be, ACT(m, a->h2), STAT(m, a->rstd_post), ACT(m, a->x1), WP(m, p->post_norm), m->T,
                    c->hidden_size, eps);
    model_moe_recompute(m, l);
}

// y times s in buf, or y itself where s is 1 (the branches' backward only read the gradient of their output)
static const void *scaled_grad(backend_t *b, void *buf, const void *y, float s, size_t n) {
    if (s == 1.0f) return y;
    residual_mix(b, buf, NULL, y, 0.0f, s, n);
    return buf;
}

// Backward through decoder layer l: on entry dx = dLoss/d(layer output), on return dLoss/d(layer input).
static void layer_backward(model_t *m, int l, void *dx, float aux_coef, model_scratch_t *sc) {
    const model_config_t *c = &m->cfg;
    backend_t *b = m->be;
    const int T = m->T, C = c->hidden_size;
    const size_t TC = (size_t)T * C, es = m->esize;
    const model_layer_acts_t *a = &m->layer[l];
    const layer_params_t *p = &m->table.layers[l];
    const int lightning = c->layer_kind[l] == LAYER_LIGHTNING;
    const float alpha = (float)(lightning ? c->linear_alpha : c->full_alpha);
    const float beta = (float)(lightning ? c->linear_beta : c->full_beta);
    size_t mark = sc->used;
    void *dbranch = model_scratch_take(sc, TC, es), *dh2 = model_scratch_take(sc, TC, es);
    void *dh = model_scratch_take(sc, TC, es);
    // the gradient that passes the MoE block: in place in dx (pre-norm: dx = alpha dx + the norm's, one pass), or
    // a buffer of its own (post-norm)
    void *dx1 = c->postnorm ? model_scratch_take(sc, TC, es) : dx;

    // x_out = alpha_mlp * r2 + beta_mlp * moe(h2)
    const void *dmoe = scaled_grad(b, dbranch, dx, (float)c->mlp_beta, TC);
    if (c->postnorm) residual_mix(b, dh2, NULL, dx, 0.0f, (float)c->mlp_alpha, TC);
    else backend_zero(b, dh2, TC * es);
    model_moe_backward(m, l, dmoe, dh2, aux_coef, sc);
    rmsnorm_backward(b, dx1, GP(m, p->post_norm), dh2, ACT(m, a->x1), WP(m, p->post_norm), STAT(m, a->rstd_post), T,
                     C, c->postnorm ? OP_WRITE : OP_ACCUMULATE, (float)c->mlp_alpha);

    // x1 = alpha * r + beta * attn(h)
    const void *dattn = scaled_grad(b, dbranch, dx1, beta, TC);
    if (c->postnorm) residual_mix(b, dh, NULL, dx1, 0.0f, alpha, TC);
    else backend_zero(b, dh, TC * es);
    if (lightning) model_lightning_backward(m, l, dattn, dh, sc);
    else model_softmax_backward(m, l, dattn, dh, sc);
    rmsnorm_backward(b, dx, GP(m, p->input_norm), dh, ACT(m, a->x_in), WP(m, p->input_norm), STAT(m, a->rstd_in), T, C,
                     c->postnorm ? OP_WRITE : OP_ACCUMULATE, alpha);
    sc->used = mark;
}

void model_drop_master(model_t *m) {
    CISPO_ASSERT(m->params && m->owns_params);
    if (m->wparams != (void *)m->params) backend_free(m->be, m->params);  // else the buffer stays as the working copy
    m->params = NULL;
    m->owns_params = 0;
}

void model_load_params(model_t *m, const float *host) {
    const size_t n = m->table.n_floats;
    if (!m->params) {  // the working copy is all there is: converted on the way
        backend_fill_f32(m->be, m->wparams, m->be->act_dtype, host, n);
        return;
    }
    if (host != m->params) backend_upload(m->be, m->params, host, n * sizeof(float));
    model_sync_weights(m);
}

void model_backward(model_t *m, const float *dlogp, float aux_coef) {
    CISPO_ASSERT(m->have_logprobs && m->grads);  // a MODEL_FORWARD_ONLY model has no gradients
    CISPO_ASSERT(m->grad_dtype == m->be->grad_dtype);  // the ops write the backend's gradient dtype
    const model_config_t *c = &m->cfg;
    backend_t *b = m->be;
    const int T = m->T, C = c->hidden_size;
    const size_t TC = (size_t)T * C;
    model_scratch_t sc = {m->scratch, 0, m->n_scratch};

    backend_upload(b, STAT(m, m->dlogp), dlogp, (size_t)T * sizeof(float));
    void *dhf = model_scratch_take(&sc, TC, m->esize), *dx = model_scratch_take(&sc, TC, m->esize);
    // with logit_scale s the head saw s x: dW += dz^T (s x) comes out of the head as is, dx = s (dz W)
    const void *xh = ACT(m, m->h_final);
    size_t mark = sc.used;
    if (m->logit_scale != 1.0f) {
        void *xs = model_scratch_take(&sc, TC, m->esize);
        residual_mix(b, xs, NULL, xh, 0.0f, m->logit_scale, TC);
        xh = xs;
    }
    lmhead_logprob_backward(b, dhf, GP(m, m->table.lm_head), STAT(m, m->dlogp), xh, WP(m, m->table.lm_head),
                            IACT(m, m->targets), STAT(m, m->lm_lse), T, C, c->vocab_size, OP_WRITE);
    if (m->logit_scale != 1.0f) residual_mix(b, dhf, NULL, dhf, 0.0f, m->logit_scale, TC);
    sc.used = mark;
    rmsnorm_backward(b, dx, GP(m, m->table.final_norm), dhf, ACT(m, m->x_final), WP(m, m->table.final_norm),
                     STAT(m, m->rstd_final), T, C, OP_WRITE, 1.0f);
    size_t off[2], len[2];
    for (int l = c->n_layers - 1; l >= 0; l--) {
        if (m->recompute == MODEL_RECOMPUTE_FULL) layer_recompute(m, l, &sc);
        else if (m->recompute == MODEL_RECOMPUTE_CHEAP_MODE) layer_recompute_cheap(m, l);
        layer_backward(m, l, dx, aux_coef, &sc);
        // layer l's parameters are touched by its own backward only: their gradients are final
        if (m->grad_hook) m->grad_hook(m->grad_hook_ctx, l, off, len, model_grad_ranges(m, l, off, len));
    }
    // transformers' nn.Embedding(padding_idx = pad_token_id) gives the pad row no gradient from its
    // lookups (a tied lm_head still contributes through the LM head above)
    embedding_backward(b, GP(m, m->table.embed), dx, IACT(m, m->ids), T, C, c->has_pad_token ? c->pad_token_id : -1);
    if (m->grad_hook) m->grad_hook(m->grad_hook_ctx, -1, off, len, model_grad_ranges(m, -1, off, len));
    m->grad_write = OP_ACCUMULATE;
}

// params.h's layout: embed, then each layer's tensors one after another (input_layernorm first), then
// model.norm and lm_head (absent when tied)
int model_grad_ranges(const model_t *m, int layer, size_t off[2], size_t len[2]) {
    const param_table_t *t = &m->table;
    const int L = m->cfg.n_layers;
    CISPO_ASSERT(layer >= -1 && layer < L);
    const size_t first = L > 0 ? t->layers[0].input_norm : t->final_norm;
    if (layer < 0) {
        off[0] = 0, len[0] = first;
        off[1] = t->final_norm, len[1] = t->n_floats - t->final_norm;
        return 2;
    }
    const size_t end = layer + 1 < L ? t->layers[layer + 1].input_norm : t->final_norm;
    off[0] = t->layers[layer].input_norm, len[0] = end - off[0];
    return 1;
}
