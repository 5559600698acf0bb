// trainer/checkpoint.h — training checkpoints in HDF5: parameters, AdamW moments, step, RNG state,
// the model config and a free-form JSON string of run state, written atomically.
// defines: checkpoint_t, checkpoint_save, checkpoint_load, checkpoint_free
//
// File layout (inspect with h5dump or h5py):
//   /                   attributes format = "cispo-checkpoint", version = 1
//   /config             string: every model_config_t field as JSON (exact: doubles round-trip)
//   /config_hf          string: the HF config.json text, for people and other tools (not read back)
//   /params/<name>      float32, the parameter's shape (names as in the parameter table, e.g.
//                       "model.layers.0.self_attn.qkv_proj.weight")
//   /optim/m/<name>     float32, AdamW first moment (only when saved with moments)
//   /optim/v/<name>     float32, AdamW second moment
//   /step               int64 scalar
//   /rng                uint64 [n_rng] (may be empty)
//   /extra              string: run state the trainer wants back (only when given)
//
// Use (trainer):
//   checkpoint_save("run/ckpt-100.h5", &cfg, &table, params, m, v, step, rng, n_rng, extra_json);
//   checkpoint_t ck;
//   if (checkpoint_load("run/ckpt-100.h5", &ck)) { fprintf(stderr, "%s\n", cispo_last_error()); ... }
//   ... use ck.cfg, ck.table, ck.params, ck.m / ck.v (NULL when not saved), ck.step, ck.rng, ck.extra_json
//   checkpoint_free(&ck);
// Saving writes "<path>.tmp" and renames it over <path> only when complete and synced, so a crash
// leaves the previous checkpoint intact. Loading checks every dataset (present, float, right shape)
// against the table built from the stored config; errors name the file and the dataset.
#ifndef CISPO_TRAINER_CHECKPOINT_H
#define CISPO_TRAINER_CHECKPOINT_H

#include <stdint.h>

#include "model/config.h"
#include "model/params.h"

typedef struct {
    model_config_t cfg;
    param_table_t table;  // built from cfg
    float *params;        // [table.n_floats]
    float *m, *v;         // [table.n_floats] each, or NULL when the checkpoint has no moments
    int64_t step;
    uint64_t *rng;        // [n_rng] (NULL when n_rng == 0)
    int n_rng;
    char *extra_json;     // NULL when none was saved
} checkpoint_t;

// m and v may both be NULL (no optimizer state); rng may be NULL when n_rng == 0; extra_json may be
// NULL. Returns 0, or -1 with cispo_last_error() naming the file and what failed.
int checkpoint_save(const char *path, const model_config_t *cfg, const param_table_t *table, const float *params,
                    const float *m, const float *v, int64_t step, const uint64_t *rng, int n_rng,
                    const char *extra_json);
// Fills *ck (free with checkpoint_free). Returns 0, or -1 with cispo_last_error() set and *ck empty.
int checkpoint_load(const char *path, checkpoint_t *ck);
void checkpoint_free(checkpoint_t *ck);

#endif
