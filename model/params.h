// model/params.h — the parameter table: every weight with its checkpoint name, shape and offset
// into one flat fp32 allocation. Gradients and optimizer moments share the same layout, so one
// buffer op (all-reduce, AdamW) covers all of them.
// defines: param_entry_t, param_table_t, param_span_t, param_table_build, param_table_build_experts,
//          param_table_free, param_table_find, param_table_spans, param_init_hf
//
// Under expert parallelism a rank holds every non-expert tensor and only its own experts [e_lo, e_hi) of
// every MoE layer (model/moe_ep.h moe_ep_range): the table then lists just those experts (names keep the
// global expert index), the layer's stacks hold nl = e_hi - e_lo experts, and model code finds expert e at
// (e - e_lo) in them. With every expert held (e_lo 0, e_hi n_experts) the layout is the whole model's.
#ifndef CISPO_MODEL_PARAMS_H
#define CISPO_MODEL_PARAMS_H

#include <stddef.h>
#include <stdint.h>

#include "model/config.h"

#define PARAM_NAME_MAX 96

typedef struct {
    char name[PARAM_NAME_MAX];  // HF/MiniMax checkpoint name, e.g. "model.layers.3.self_attn.qkv_proj.weight"
    int ndim;                   // 1 or 2
    int64_t shape[2];
    size_t offset;              // in floats, into the flat buffer
    size_t numel;
} param_entry_t;

// Per-layer views into the flat buffer (pointers are offsets added to a base by model code).
typedef struct {
    size_t input_norm;          // [C]
    size_t post_norm;           // [C]
    // lightning layers
    size_t qkv;                 // [3A, C], rows per head: h*3D + [q | k | v]
    size_t gate;                // output_gate [A, C]
    size_t out_norm;            // norm [A]
    size_t out;                 // out_proj [C, A]
    // softmax layers
    size_t wq;                  // [A, C]
    size_t wk;                  // [KV*D, C]
    size_t wv;                  // [KV*D, C]
    size_t wo;                  // [C, A]
    // MoE
    size_t router;              // block_sparse_moe.gate [E, C]
    size_t w1;                  // experts stacked: expert e at w1 + (e - e_lo)*F*C, [F, C] each
    size_t w3;                  // [nl][F, C]
    size_t w2;                  // [nl][C, F]
} layer_params_t;

typedef struct {
    param_entry_t *entries;     // one per checkpoint tensor (experts listed one by one, original naming)
    int n_entries;
    size_t n_floats;            // size of the flat buffer
    int e_lo, e_hi;             // the experts of every MoE layer held: [e_lo, e_hi) (all: 0, n_experts)
    size_t n_full;              // floats of the whole model (every expert); == n_floats when all are held
    size_t embed;               // [V, C]
    size_t final_norm;          // [C]
    size_t lm_head;             // [V, C] (== embed when tied)
    layer_params_t layers[MODEL_MAX_LAYERS];
} param_table_t;

// A run of the flat buffer and where it lies in the whole model's layout (every expert held).
typedef struct {
    size_t off;   // floats into this table's buffer
    size_t full;  // floats into the whole model's buffer (param_table_build's layout)
    size_t len;
} param_span_t;

// Builds the table for cfg (allocates entries; free with param_table_free).
void param_table_build(param_table_t *t, const model_config_t *cfg);
// The same holding only experts [e_lo, e_hi) of every MoE layer (0 <= e_lo <= e_hi <= n_experts).
void param_table_build_experts(param_table_t *t, const model_config_t *cfg, int e_lo, int e_hi);
void param_table_free(param_table_t *t);
// Index of the entry with this name, or -1.
int param_table_find(const param_table_t *t, const char *name);
// The whole buffer of t as runs of the whole model's layout, ascending in both and merged where adjacent in
// both (one run when t holds every expert). Returns the count; *spans malloc'd (the caller frees).
int param_table_spans(const param_table_t *t, const model_config_t *cfg, param_span_t **spans);
// HF-like initialisation: normal(0, 0.02) for matrices, 1 for norm weights; deterministic in seed.
void param_init_hf(float *params, const param_table_t *t, const model_config_t *cfg, uint64_t seed);

#endif
