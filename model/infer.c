// model/infer.c — prefill and decode with per-slot caches (model/infer.h): both are
// model_forward_cached, then the fp32 LM head on the rows whose next token is wanted.
#include "model/infer.h"

#include <stdlib.h>
#include <string.h>

#include "base/common.h"
#include "kernels/ops.h"
#include "model/layers.h"

infer_t *infer_create(model_t *m, int max_slots, int max_ctx) {
    const model_config_t *c = &m->cfg;
    backend_t *b = m->be;
    infer_t *e = cispo_calloc(1, sizeof *e);
    e->m = m;
    e->max_slots = max_slots;
    e->max_ctx = max_ctx;
    model_cache_t *ca = &e->cache;
    ca->max_slots = max_slots;
    ca->max_ctx = max_ctx;
    for (int l = 0; l < c->n_layers; l++)
        ca->layer_slot[l] = c->layer_kind[l] == LAYER_LIGHTNING ? ca->n_lin++ : ca->n_soft++;
    const size_t H = c->n_heads, D = c->head_dim, KV = c->n_kv_heads;
    ca->lin_state = backend_alloc(b, (size_t)ca->n_lin * max_slots * H * D * D * sizeof(float));
    ca->state_stage = backend_alloc(b, (size_t)max_slots * H * D * D * sizeof(float));
    size_t kv = (size_t)ca->n_soft * max_slots * max_ctx * KV * D * m->esize;
    ca->kcache = backend_alloc(b, kv);
    ca->vcache = backend_alloc(b, kv);
    e->len = cispo_calloc((size_t)max_slots, sizeof(int32_t));
    e->logits = backend_alloc(b, (size_t)max_slots * c->vocab_size * sizeof(float));
    return e;
}

void infer_free(infer_t *e) {
    if (!e) return;
    backend_t *b = e->m->be;
    backend_free(b, e->cache.lin_state);
    backend_free(b, e->cache.state_stage);
    backend_free(b, e->cache.kcache);
    backend_free(b, e->cache.vcache);
    backend_free(b, e->logits);
    free(e->len);
    free(e);
}

// logits [n, V] (host) of the final hidden rows `rows` of the last forward
static void head_rows(infer_t *e, const int32_t *rows, int n, float *logits) {
    model_t *m = e->m;
    backend_t *b = m->be;
    const int C = m->cfg.hidden_size, V = m->cfg.vocab_size;
    int leading = 1;  // decode: rows 0..n-1, already contiguous
    for (int i = 0; i < n && leading; i++) leading = rows[i] == i;
    const void *h = ACT(m, m->h_final);
    if (!leading) {  // prefill: the last row of each prompt, gathered
        model_scratch_t sc = {m->scratch, 0, m->n_scratch};
        void *g = model_scratch_take(&sc, (size_t)n * C, m->esize);
        for (int i = 0; i < n; i++)
            backend_copy(b, (char *)g + (size_t)i * C * m->esize, ACT(m, m->h_final + (size_t)rows[i] * C),
                         (size_t)C * m->esize);
        h = g;
    }
    lmhead_logits(b, e->logits, h, WP(m, m->table.lm_head), n, C, V);
    backend_download(b, logits, e->logits, (size_t)n * V * sizeof(float));
}

int infer_prefill(infer_t *e, const int *slots, const int32_t *const *prompts, const int *lens, int n,
                  float *logits_last) {
    model_t *m = e->m;
    int T = 0;
    if (n < 1 || n > e->max_slots) return cispo_fail("prefill: %d prompts for %d slots", n, e->max_slots);
    for (int i = 0; i < n; i++) {
        if (lens[i] < 1 || lens[i] > e->max_ctx)
            return cispo_fail("prefill: prompt %d has %d tokens (allowed 1..%d)", i, lens[i], e->max_ctx);
        if (slots[i] < 0 || slots[i] >= e->max_slots) return cispo_fail("prefill: slot %d out of range", slots[i]);
        T += lens[i];
    }
    if (T > m->max_tokens) return cispo_fail("prefill: %d prompt tokens exceed the planned %d", T, m->max_tokens);
    int32_t *ids = cispo_malloc(sizeof(int32_t) * (size_t)T), *cu = cispo_malloc(sizeof(int32_t) * (size_t)(n + 1));
    int32_t *slot = cispo_malloc(sizeof(int32_t) * (size_t)n), *start = cispo_calloc((size_t)n, sizeof(int32_t));
    int32_t *last = cispo_malloc(sizeof(int32_t) * (size_t)n);
    cu[0] = 0;
    for (int i = 0; i < n; i++) {
        memcpy(ids + cu[i], prompts[i], sizeof(int32_t) * (size_t)lens[i]);
        cu[i + 1] = cu[i] + lens[i];
        slot[i] = slots[i];
        last[i] = cu[i + 1] - 1;
    }
    e->cache.mode = MODEL_CACHE_PREFILL;
    e->cache.slot_host = slot;
    e->cache.start_host = start;
    int rc = model_forward_cached(m, ids, cu, n, T, &e->cache);
    if (rc == 0) {
        for (int i = 0; i < n; i++) e->len[slots[i]] = lens[i];
        head_rows(e, last, n, logits_last);
    }
    free(ids);
    free(cu);
    free(slot);
    free(start);
    free(last);
    return rc;
}

int infer_decode(infer_t *e, const int *slots, const int32_t *tokens, int n, float *logits) {
    model_t *m = e->m;
    const model_config_t *c = &m->cfg;
    if (n < 1 || n > e->max_slots) return cispo_fail("decode: %d tokens for %d slots", n, e->max_slots);
    for (int i = 0; i < n; i++) {
        if (slots[i] < 0 || slots[i] >= e->max_slots) return cispo_fail("decode: slot %d out of range", slots[i]);
        if (e->len[slots[i]] >= e->max_ctx)
            return cispo_fail("decode: slot %d is full (%d tokens)", slots[i], e->max_ctx);
        if (tokens[i] < 0 || tokens[i] >= c->vocab_size) return cispo_fail("decode: token id %d out of range", tokens[i]);
    }
    int32_t *cu = cispo_malloc(sizeof(int32_t) * (size_t)(n + 1)), *slot = cispo_malloc(sizeof(int32_t) * (size_t)n);
    int32_t *start = cispo_malloc(sizeof(int32_t) * (size_t)n), *rows = cispo_malloc(sizeof(int32_t) * (size_t)n);
    for (int i = 0; i <= n; i++) cu[i] = i;
    for (int i = 0; i < n; i++) {
        slot[i] = slots[i];
        start[i] = e->len[slots[i]];
        rows[i] = i;
    }
    e->cache.mode = MODEL_CACHE_DECODE;
    e->cache.slot_host = slot;
    e->cache.start_host = start;
    int rc = model_forward_cached(m, tokens, cu, n, n, &e->cache);
    if (rc == 0) {
        head_rows(e, rows, n, logits);
        for (int i = 0; i < n; i++) e->len[slots[i]]++;
    }
    free(cu);
    free(slot);
    free(start);
    free(rows);
    return rc;
}
