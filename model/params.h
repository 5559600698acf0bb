// model/params.h — the parameter table: every weight with its checkpoint name, shape and offset
// into one flat fp32 allocation. Gradients and optimizer moments share the same layout, so one
// buffer op (all-reduce, AdamW) covers all of them.
// defines: param_entry_t, param_table_t, param_table_build, param_table_find, param_init_hf
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
    size_t w1;                  // experts stacked: expert e at w1 + e*F*C, [F, C] each
    size_t w3;                  // [E][F, C]
    size_t w2;                  // [E][C, F]
} layer_params_t;

typedef struct {
    param_entry_t *entries;     // one per checkpoint tensor (experts listed one by one, original naming)
    int n_entries;
    size_t n_floats;            // size of the flat buffer
    size_t embed;               // [V, C]
    size_t final_norm;          // [C]
    size_t lm_head;             // [V, C] (== embed when tied)
    layer_params_t layers[MODEL_MAX_LAYERS];
} param_table_t;

// Builds the table for cfg (allocates entries; free with param_table_free).
void param_table_build(param_table_t *t, const model_config_t *cfg);
void param_table_free(param_table_t *t);
// Index of the entry with this name, or -1.
int param_table_find(const param_table_t *t, const char *name);
// HF-like initialisation: normal(0, 0.02) for matrices, 1 for norm weights; deterministic in seed.
void param_init_hf(float *params, const param_table_t *t, const model_config_t *cfg, uint64_t seed);

#endif
