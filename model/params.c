// model/params.c — the parameter table (every weight's checkpoint name, shape and offset into one flat
// fp32 buffer) and the HF-like initialisation.
// defines: param_table_build, param_table_build_experts, param_table_free, param_table_find,
//          param_table_spans, param_init_hf
//
// Layout, in offset order: embed, then per layer l: input_layernorm, attention (lightning: qkv_proj,
// output_gate, norm, out_proj; softmax: q_proj, k_proj, v_proj, o_proj), post_attention_layernorm,
// router (block_sparse_moe.gate), w1 of experts e_lo..e_hi-1, w3 of the same, w2 of the same (so each
// matrix kind is one [nl, rows, cols] stack; nl = E for the whole model), then model.norm, then lm_head
// (absent when tied: lm_head then aliases embed). Gradients and optimizer moments use the same layout.
// A table of experts [e_lo, e_hi) lists the whole model's entries in the same order, less the other
// experts: every entry is contiguous in both layouts (param_table_spans maps one onto the other).
#include "model/params.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/common.h"
#include "base/rng.h"

typedef struct {
    param_table_t *t;
    int cap;
} builder_t;

static size_t add(builder_t *b, const char *name, int ndim, int64_t d0, int64_t d1) {
    param_table_t *t = b->t;
    if (t->n_entries == b->cap) {
        b->cap = b->cap ? 2 * b->cap : 64;
        t->entries = cispo_realloc(t->entries, (size_t)b->cap * sizeof *t->entries);
    }
    param_entry_t *e = &t->entries[t->n_entries++];
    memset(e, 0, sizeof *e);
    CISPO_ASSERT(strlen(name) < PARAM_NAME_MAX);
    strcpy(e->name, name);
    e->ndim = ndim;
    e->shape[0] = d0;
    e->shape[1] = ndim == 2 ? d1 : 0;
    e->numel = (size_t)d0 * (size_t)(ndim == 2 ? d1 : 1);
    e->offset = t->n_floats;
    t->n_floats += e->numel;
    return e->offset;
}

void param_table_build(param_table_t *t, const model_config_t *cfg) {
    param_table_build_experts(t, cfg, 0, cfg->n_experts);
}

void param_table_build_experts(param_table_t *t, const model_config_t *cfg, int e_lo, int e_hi) {
    CISPO_ASSERT(0 <= e_lo && e_lo <= e_hi && e_hi <= cfg->n_experts);
    memset(t, 0, sizeof *t);
    t->e_lo = e_lo, t->e_hi = e_hi;
    builder_t b = {t, 0};
    const int64_t V = cfg->vocab_size, C = cfg->hidden_size, A = model_attn_width(cfg);
    const int64_t KVD = (int64_t)cfg->n_kv_heads * cfg->head_dim, F = cfg->intermediate_size;
    const int E = cfg->n_experts;
    char name[PARAM_NAME_MAX];

    t->embed = add(&b, "model.embed_tokens.weight", 2, V, C);
    for (int l = 0; l < cfg->n_layers; l++) {
        layer_params_t *lp = &t->layers[l];
#define NAME(...) (snprintf(name, sizeof name, __VA_ARGS__), name)
        lp->input_norm = add(&b, NAME("model.layers.%d.input_layernorm.weight", l), 1, C, 0);
        if (cfg->layer_kind[l] == LAYER_LIGHTNING) {
            lp->qkv = add(&b, NAME("model.layers.%d.self_attn.qkv_proj.weight", l), 2, 3 * A, C);
            lp->gate = add(&b, NAME("model.layers.%d.self_attn.output_gate.weight", l), 2, A, C);
            lp->out_norm = add(&b, NAME("model.layers.%d.self_attn.norm.weight", l), 1, A, 0);
            lp->out = add(&b, NAME("model.layers.%d.self_attn.out_proj.weight", l), 2, C, A);
        } else {
            lp->wq = add(&b, NAME("model.layers.%d.self_attn.q_proj.weight", l), 2, A, C);
            lp->wk = add(&b, NAME("model.layers.%d.self_attn.k_proj.weight", l), 2, KVD, C);
            lp->wv = add(&b, NAME("model.layers.%d.self_attn.v_proj.weight", l), 2, KVD, C);
            lp->wo = add(&b, NAME("model.layers.%d.self_attn.o_proj.weight", l), 2, C, A);
        }
        lp->post_norm = add(&b, NAME("model.layers.%d.post_attention_layernorm.weight", l), 1, C, 0);
        lp->router = add(&b, NAME("model.layers.%d.block_sparse_moe.gate.weight", l), 2, E, C);
        lp->w1 = t->n_floats;
        for (int e = e_lo; e < e_hi; e++)
            add(&b, NAME("model.layers.%d.block_sparse_moe.experts.%d.w1.weight", l, e), 2, F, C);
        lp->w3 = t->n_floats;
        for (int e = e_lo; e < e_hi; e++)
            add(&b, NAME("model.layers.%d.block_sparse_moe.experts.%d.w3.weight", l, e), 2, F, C);
        lp->w2 = t->n_floats;
        for (int e = e_lo; e < e_hi; e++)
            add(&b, NAME("model.layers.%d.block_sparse_moe.experts.%d.w2.weight", l, e), 2, C, F);
#undef NAME
    }
    t->final_norm = add(&b, "model.norm.weight", 1, C, 0);
    t->lm_head = cfg->tie_word_embeddings ? t->embed : add(&b, "lm_head.weight", 2, V, C);
    t->n_full = t->n_floats + (size_t)(E - (e_hi - e_lo)) * 3 * (size_t)F * (size_t)C * (size_t)cfg->n_layers;
}

void param_table_free(param_table_t *t) {
    free(t->entries);
    memset(t, 0, sizeof *t);
}

int param_table_find(const param_table_t *t, const char *name) {
    for (int i = 0; i < t->n_entries; i++)
        if (!strcmp(t->entries[i].name, name)) return i;
    return -1;
}

int param_table_spans(const param_table_t *t, const model_config_t *cfg, param_span_t **spans) {
    param_table_t full;
    param_table_build(&full, cfg);
    CISPO_ASSERT(full.n_floats == t->n_full);
    param_span_t *s = cispo_malloc((size_t)(t->n_entries + 1) * sizeof *s);
    int n = 0, j = 0;
    for (int i = 0; i < t->n_entries; i++) {  // t's entries are full's in the same order, some left out
        const param_entry_t *e = &t->entries[i];
        while (j < full.n_entries && strcmp(full.entries[j].name, e->name)) j++;
        CISPO_ASSERT(j < full.n_entries && full.entries[j].numel == e->numel);
        const size_t at = full.entries[j++].offset;
        if (n && s[n - 1].off + s[n - 1].len == e->offset && s[n - 1].full + s[n - 1].len == at) s[n - 1].len += e->numel;
        else if (e->numel) s[n++] = (param_span_t){e->offset, at, e->numel};
    }
    param_table_free(&full);
    *spans = s;
    return n;
}

// ---- initialisation ----
// Each tensor draws from its own stream, seeded by (seed, name): a tensor's values do not depend on
// which other tensors exist, so a deeper or wider config keeps the shared tensors' initial values.

void param_init_hf(float *params, const param_table_t *t, const model_config_t *cfg, uint64_t seed) {
    // transformers' _init_weights: Linear and Embedding weights ~ normal(0, initializer_range), RMSNorm
    // weights 1 (the router and the experts likewise normal). Norms are the only 1-D tensors.
    double std = cfg->initializer_range > 0 ? cfg->initializer_range : 0.02;
    for (int i = 0; i < t->n_entries; i++) {
        const param_entry_t *e = &t->entries[i];
        float *p = params + e->offset;
        if (e->ndim == 1) {
            for (size_t j = 0; j < e->numel; j++) p[j] = 1.0f;
        } else {
            uint64_t s = seed * 0x2545F4914F6CDD1Dull ^ rng_fnv1a_str(e->name);
            rng_fill_normal(p, e->numel, std, &s);
        }
    }
}
