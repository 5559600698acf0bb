// model/infer.c — prefill and decode with per-slot caches and a paged KV pool (model/infer.h): both
// are model_forward_cached, then the fp32 LM head on the rows whose next token is wanted, then (on
// request) the sampling op on those rows.
#include "model/infer.h"

#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "base/common.h"
#include "kernels/ops.h"
#include "model/layers.h"

infer_capacity_t infer_capacity(const model_config_t *c, size_t act_bytes, int max_len, size_t bytes) {
    infer_capacity_t k = {0};
    int n_lin = 0, n_soft = 0;
    for (int l = 0; l < c->n_layers; l++) c->layer_kind[l] == LAYER_LIGHTNING ? n_lin++ : n_soft++;
    const size_t H = (size_t)c->n_heads, D = (size_t)c->head_dim, KV = (size_t)c->n_kv_heads;
    k.state_bytes = (size_t)n_lin * H * D * D * sizeof(float);
    k.kv_token_bytes = 2 * (size_t)n_soft * KV * D * act_bytes;
    const size_t blocks = ((size_t)max_len + INFER_BLOCK_SIZE - 1) / INFER_BLOCK_SIZE;
    k.seq_bytes = k.state_bytes + blocks * INFER_BLOCK_SIZE * k.kv_token_bytes + (size_t)c->vocab_size * sizeof(float) +
                  sizeof(sample_slot_t);
    k.sequences = k.seq_bytes ? (long)(bytes / k.seq_bytes) : 0;
    return k;
}

static void upload_row(infer_t *e, int slot) {
    const size_t MB = (size_t)e->max_blocks;
    backend_upload(e->m->be, e->cache.block_table + slot * MB, e->table + slot * MB, MB * sizeof(int32_t));
}

infer_t *infer_create_paged(model_t *m, int max_slots, int max_ctx, int n_blocks) {
    CISPO_ASSERT(max_slots >= 1 && max_ctx >= 1 && n_blocks >= 0);
    const model_config_t *c = &m->cfg;
    backend_t *b = m->be;
    infer_t *e = cispo_calloc(1, sizeof *e);
    e->m = m;
    e->max_slots = max_slots;
    e->max_ctx = max_ctx;
    e->block_size = INFER_BLOCK_SIZE;
    e->max_blocks = (max_ctx + INFER_BLOCK_SIZE - 1) / INFER_BLOCK_SIZE;
    e->n_blocks = n_blocks ? n_blocks : max_slots * e->max_blocks;
    model_cache_t *ca = &e->cache;
    ca->max_slots = max_slots;
    ca->max_ctx = max_ctx;
    ca->block_size = e->block_size;
    ca->n_blocks = e->n_blocks;
    ca->max_blocks = e->max_blocks;
    for (int l = 0; l < c->n_layers; l++)
        ca->layer_slot[l] = c->layer_kind[l] == LAYER_LIGHTNING ? ca->n_lin++ : ca->n_soft++;
    const size_t H = c->n_heads, D = c->head_dim, KV = c->n_kv_heads, HDD = H * D * D * sizeof(float);
    ca->lin_state = backend_alloc(b, (size_t)ca->n_lin * max_slots * HDD);
    ca->state_stage = backend_alloc(b, (size_t)max_slots * HDD);
    ca->state_init = backend_alloc(b, (size_t)max_slots * HDD);
    size_t kv = (size_t)ca->n_soft * e->n_blocks * e->block_size * KV * D * m->esize;
    ca->kcache = backend_alloc(b, kv ? kv : 1);
    ca->vcache = backend_alloc(b, kv ? kv : 1);
    const size_t cells = (size_t)max_slots * e->max_blocks;
    ca->block_table = backend_alloc(b, cells * sizeof(int32_t));
    e->table = cispo_malloc(cells * sizeof(int32_t));
    for (size_t i = 0; i < cells; i++) e->table[i] = -1;
    backend_upload(b, ca->block_table, e->table, cells * sizeof(int32_t));
    e->mapped = cispo_calloc((size_t)max_slots, sizeof(int32_t));
    e->reserved = cispo_calloc((size_t)max_slots, sizeof(int32_t));
    e->free_list = cispo_malloc((size_t)e->n_blocks * sizeof(int32_t));
    for (int i = 0; i < e->n_blocks; i++) e->free_list[i] = e->n_blocks - 1 - i;  // block 0 on top
    e->n_free = e->n_blocks;
    e->len = cispo_calloc((size_t)max_slots, sizeof(int32_t));
    e->logits = backend_alloc(b, (size_t)max_slots * c->vocab_size * sizeof(float));
    e->samp = backend_alloc(b, (size_t)max_slots * sizeof(sample_slot_t));
    e->out = backend_alloc(b, 3 * (size_t)max_slots * sizeof(int32_t));
    e->out_host = cispo_calloc(3 * (size_t)max_slots, sizeof(int32_t));
    e->slot_dev = backend_alloc(b, (size_t)max_slots * sizeof(int32_t));
    const char *g = getenv("CISPO_CUDA_GRAPHS");
    e->use_graphs = b->kind == BACKEND_CUDA && !model_rope_by_length(c) && !(g && !strcmp(g, "0"));
    e->graphs = cispo_calloc((size_t)max_slots + 1, sizeof(void *));
    return e;
}

infer_t *infer_create(model_t *m, int max_slots, int max_ctx) { return infer_create_paged(m, max_slots, max_ctx, 0); }

static void drop_graphs(infer_t *e) {
    for (int i = 0; i <= e->max_slots; i++) ops_graph_free(e->graphs[i]), e->graphs[i] = NULL;
}

void infer_free(infer_t *e) {
    if (!e) return;
    backend_t *b = e->m->be;
    drop_graphs(e);
    free(e->graphs);
    backend_free(b, e->cache.lin_state);
    backend_free(b, e->cache.state_stage);
    backend_free(b, e->cache.state_init);
    backend_free(b, e->cache.kcache);
    backend_free(b, e->cache.vcache);
    backend_free(b, e->cache.block_table);
    backend_free(b, e->logits);
    backend_free(b, e->samp);
    backend_free(b, e->out);
    backend_free(b, e->slot_dev);
    free(e->out_host);
    free(e->table);
    free(e->mapped);
    free(e->reserved);
    free(e->free_list);
    free(e->len);
    free(e);
}

void infer_report(const infer_t *e, FILE *f) {
    const model_t *m = e->m;
    size_t free_b = 0, total_b = 0;
    backend_mem_info(m->be, &free_b, &total_b);
    infer_capacity_t k = infer_capacity(&m->cfg, m->esize, e->max_ctx, free_b);
    const double MB = 1024.0 * 1024.0;
    fprintf(f,
            "engine: %d slots x %d tokens; KV pool %d blocks of %d tokens (%.1f MB); per sequence: lightning state "
            "%.2f MB fixed + KV %.1f KB/token = %.1f MB at %d tokens",
            e->max_slots, e->max_ctx, e->n_blocks, e->block_size,
            (double)e->n_blocks * e->block_size * k.kv_token_bytes / MB, k.state_bytes / MB, k.kv_token_bytes / 1024.0,
            k.seq_bytes / MB, e->max_ctx);
    if (free_b > 0)  // the CPU backend reports no device memory
        fprintf(f, "; %.0f MB free on %s: room for %ld more such sequences", free_b / MB, backend_name(m->be->kind),
                k.sequences);
    if (e->preemptions > 0) fprintf(f, "; %ld sequences preempted (KV pool dry) and recomputed", e->preemptions);
    fprintf(f, "\n");
}

int infer_blocks_for(const infer_t *e, int tokens) { return (tokens + e->block_size - 1) / e->block_size; }
int infer_blocks_free(const infer_t *e) { return e->n_free - e->n_promised; }

// blocks promised to slot s and not yet mapped
static int owed(const infer_t *e, int s) { return e->reserved[s] > e->mapped[s] ? e->reserved[s] - e->mapped[s] : 0; }

int infer_blocks_short(const infer_t *e, int slot, int tokens) {
    CISPO_ASSERT(slot >= 0 && slot < e->max_slots);
    const int want = infer_blocks_for(e, tokens);
    const int have = e->mapped[slot] > e->reserved[slot] ? e->mapped[slot] : e->reserved[slot];
    return want > have ? want - have : 0;
}

int infer_reserve(infer_t *e, int slot, int tokens) {
    CISPO_ASSERT(slot >= 0 && slot < e->max_slots);
    int want = infer_blocks_for(e, tokens);
    if (want > e->max_blocks) want = e->max_blocks;
    const int have = e->mapped[slot] > e->reserved[slot] ? e->mapped[slot] : e->reserved[slot];
    if (want <= have) return 0;
    if (want - have > infer_blocks_free(e)) return 1;
    e->n_promised -= owed(e, slot);
    e->reserved[slot] = want;
    e->n_promised += owed(e, slot);
    return 0;
}

void infer_release(infer_t *e, int slot) {
    CISPO_ASSERT(slot >= 0 && slot < e->max_slots);
    e->n_promised -= owed(e, slot);
    int32_t *row = e->table + (size_t)slot * e->max_blocks;
    for (int i = 0; i < e->mapped[slot]; i++) e->free_list[e->n_free++] = row[i], row[i] = -1;
    const int changed = e->mapped[slot] > 0;
    e->mapped[slot] = e->reserved[slot] = 0;
    e->len[slot] = 0;
    if (changed) upload_row(e, slot);
}

// Maps blocks so that slot holds `tokens` positions: promised blocks first, then free ones nobody
// was promised. Returns 0 or -1 (+ message) when the pool has none left for it.
static int map_blocks(infer_t *e, int slot, int tokens) {
    const int want = infer_blocks_for(e, tokens);
    if (want <= e->mapped[slot]) return 0;
    int32_t *row = e->table + (size_t)slot * e->max_blocks;
    while (e->mapped[slot] < want) {
        const int promised = owed(e, slot) > 0;
        if (!promised && infer_blocks_free(e) < 1)
            return cispo_fail("KV pool full: slot %d needs a block for position %d, all %d blocks of %d tokens are in use "
                              "or promised (reserve blocks before growing a sequence, or make the pool larger)",
                              slot, e->mapped[slot] * e->block_size, e->n_blocks, e->block_size);
        if (promised) e->n_promised--;
        row[e->mapped[slot]++] = e->free_list[--e->n_free];
    }
    upload_row(e, slot);
    return 0;
}

// Leaves the LM head's logits of the final hidden rows `rows` of the last forward in e->logits
// (and [n, V] on the host when logits is not NULL).
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
    e->n_rows = n;
    if (logits) backend_download(b, logits, e->logits, (size_t)n * V * sizeof(float));
}

static int check_slots(const infer_t *e, const char *what, const int *slots, int n) {
    if (n < 1 || n > e->max_slots) return cispo_fail("%s: %d sequences for %d slots", what, n, e->max_slots);
    for (int i = 0; i < n; i++) {
        if (slots[i] < 0 || slots[i] >= e->max_slots) return cispo_fail("%s: slot %d out of range 0..%d", what, slots[i], e->max_slots - 1);
        for (int j = 0; j < i; j++)
            if (slots[j] == slots[i]) return cispo_fail("%s: slot %d appears twice in one batch", what, slots[i]);
    }
    return 0;
}

int infer_prefill_chunk(infer_t *e, const int *slots, const int32_t *const *chunks, const int *lens, int n,
                        float *logits_last) {
    model_t *m = e->m;
    int T = 0;
    if (check_slots(e, "prefill", slots, n)) return -1;
    for (int i = 0; i < n; i++) {
        if (lens[i] < 1 || e->len[slots[i]] + lens[i] > e->max_ctx)
            return cispo_fail("prefill: prompt %d (slot %d) has %d tokens after %d cached (allowed 1..%d in all)", i,
                              slots[i], lens[i], e->len[slots[i]], e->max_ctx);
        T += lens[i];
    }
    if (T > m->max_tokens) return cispo_fail("prefill: %d prompt tokens exceed the planned %d", T, m->max_tokens);
    for (int i = 0; i < n; i++)
        if (map_blocks(e, slots[i], e->len[slots[i]] + lens[i])) return -1;
    int32_t *ids = cispo_malloc(sizeof(int32_t) * (size_t)T), *cu = cispo_malloc(sizeof(int32_t) * (size_t)(n + 1));
    int32_t *slot = cispo_malloc(sizeof(int32_t) * (size_t)n), *start = cispo_calloc((size_t)n, sizeof(int32_t));
    int32_t *last = cispo_malloc(sizeof(int32_t) * (size_t)n);
    cu[0] = 0;
    int continuing = 0;
    for (int i = 0; i < n; i++) {
        memcpy(ids + cu[i], chunks[i], sizeof(int32_t) * (size_t)lens[i]);
        cu[i + 1] = cu[i] + lens[i];
        slot[i] = slots[i];
        start[i] = e->len[slots[i]];
        continuing |= start[i] > 0;
        last[i] = cu[i + 1] - 1;
    }
    e->cache.mode = MODEL_CACHE_PREFILL;
    e->cache.continuing = continuing;
    e->cache.slot_host = slot;
    e->cache.start_host = start;
    int rc = model_forward_cached(m, ids, cu, n, T, &e->cache);
    if (rc == 0) {
        for (int i = 0; i < n; i++) e->len[slots[i]] += lens[i];
        head_rows(e, last, n, logits_last);
    }
    free(ids);
    free(cu);
    free(slot);
    free(start);
    free(last);
    return rc;
}

int infer_prefill(infer_t *e, const int *slots, const int32_t *const *prompts, const int *lens, int n,
                  float *logits_last) {
    if (check_slots(e, "prefill", slots, n)) return -1;
    for (int i = 0; i < n; i++) {  // a fresh start keeps the slot's promise of blocks
        const int keep = e->reserved[slots[i]];
        infer_release(e, slots[i]);
        if (keep) infer_reserve(e, slots[i], keep * e->block_size);
    }
    return infer_prefill_chunk(e, slots, prompts, lens, n, logits_last);
}

int infer_decode(infer_t *e, const int *slots, const int32_t *tokens, int n, float *logits) {
    model_t *m = e->m;
    const model_config_t *c = &m->cfg;
    if (check_slots(e, "decode", slots, n)) return -1;
    for (int i = 0; i < n; i++) {
        if (e->len[slots[i]] < 1) return cispo_fail("decode: slot %d is empty (prefill it first)", slots[i]);
        if (e->len[slots[i]] >= e->max_ctx)
            return cispo_fail("decode: slot %d is full (%d tokens)", slots[i], e->max_ctx);
        if (tokens[i] < 0 || tokens[i] >= c->vocab_size) return cispo_fail("decode: token id %d out of range", tokens[i]);
    }
    for (int i = 0; i < n; i++)
        if (map_blocks(e, slots[i], e->len[slots[i]] + 1)) return -1;
    int32_t *cu = cispo_malloc(sizeof(int32_t) * (size_t)(n + 1)), *slot = cispo_malloc(sizeof(int32_t) * (size_t)n);
    int32_t *start = cispo_malloc(sizeof(int32_t) * (size_t)n), *rows = cispo_malloc(sizeof(int32_t) * (size_t)n);
    for (int i = 0; i <= n; i++) cu[i] = i;
    for (int i = 0; i < n; i++) {
        slot[i] = slots[i];
        start[i] = e->len[slots[i]];
        rows[i] = i;
    }
    e->cache.mode = MODEL_CACHE_DECODE;
    e->cache.continuing = 0;
    e->cache.slot_host = slot;
    e->cache.start_host = start;
    int rc = model_stage_cached(m, tokens, cu, n, n, &e->cache);
    if (rc == 0) {
        backend_t *b = m->be;
        void *g = NULL;
        if (e->use_graphs && !m->ep) {  // the expert-parallel exchange reads its counts on the host
            if (e->graph_ws != (const void *)b->ws) drop_graphs(e), e->graph_ws = b->ws;  // pointers changed
            g = e->graphs[n];
            if (!g && ops_graph_begin(b) == 0) {
                model_run_cached(m, &e->cache);
                lmhead_logits(b, e->logits, ACT(m, m->h_final), WP(m, m->table.lm_head), n, c->hidden_size,
                              c->vocab_size);
                g = e->graphs[n] = ops_graph_end(b);
                if (!g) {
                    fprintf(stderr, "infer: decode step runs without CUDA graphs: %s\n", cispo_last_error());
                    e->use_graphs = 0;
                }
            }
        }
        if (g) {
            ops_graph_launch(b, g);
            e->n_rows = n;
            e->graph_steps++;
            if (logits) backend_download(b, logits, e->logits, (size_t)n * c->vocab_size * sizeof(float));
        } else {
            model_run_cached(m, &e->cache);
            head_rows(e, rows, n, logits);
        }
        for (int i = 0; i < n; i++) e->len[slots[i]]++;
    }
    free(cu);
    free(slot);
    free(start);
    free(rows);
    return rc;
}

void infer_sample_begin(infer_t *e, int slot, const sample_slot_t *params) {
    CISPO_ASSERT(slot >= 0 && slot < e->max_slots);
    sample_slot_t s = *params;
    s.n_gen = s.run = 0;
    backend_upload(e->m->be, e->samp + slot, &s, sizeof s);
}

void infer_sample_save(infer_t *e, int slot, sample_slot_t *state) {
    CISPO_ASSERT(slot >= 0 && slot < e->max_slots);
    backend_download(e->m->be, state, e->samp + slot, sizeof *state);
}

void infer_sample_restore(infer_t *e, int slot, const sample_slot_t *state) {
    CISPO_ASSERT(slot >= 0 && slot < e->max_slots);
    backend_upload(e->m->be, e->samp + slot, state, sizeof *state);
}

void infer_sample_reset_run(infer_t *e, int slot) {
    CISPO_ASSERT(slot >= 0 && slot < e->max_slots);
    const int32_t zero = 0;
    backend_upload(e->m->be, (char *)(e->samp + slot) + offsetof(sample_slot_t, run), &zero, sizeof zero);
}

void infer_sample(infer_t *e, const int *slots, int n, int32_t *tok, float *logp, int32_t *done) {
    CISPO_ASSERT(n >= 1 && n <= e->n_rows);
    backend_t *b = e->m->be;
    const int V = e->m->cfg.vocab_size;
    const size_t B = (size_t)e->max_slots;
    backend_upload(b, e->slot_dev, slots, (size_t)n * sizeof(int32_t));
    sample_tokens(b, e->out, (float *)(e->out + B), e->out + 2 * B, e->samp, e->slot_dev, e->logits, n, V);
    // one download of the three arrays (their rows 0..n-1 and the gaps between)
    backend_download(b, e->out_host, e->out, (2 * B + (size_t)n) * sizeof(int32_t));
    memcpy(tok, e->out_host, (size_t)n * sizeof(int32_t));
    memcpy(logp, e->out_host + B, (size_t)n * sizeof(float));
    memcpy(done, e->out_host + 2 * B, (size_t)n * sizeof(int32_t));
}
