// trainer/checkpoint.h — training checkpoints in HDF5: parameters, AdamW moments, step, RNG state,
// the model config and a free-form JSON string of run state, written atomically; one file, or (expert
// parallelism) an index and one shard per rank, read back on any number of ranks and any `ep`.
// defines: checkpoint_t, checkpoint_save, checkpoint_load, checkpoint_load_ep, checkpoint_read_config, checkpoint_free,
//          checkpoint_shard_path, checkpoint_save_shard, checkpoint_save_index, checkpoint_remove,
//          checkpoint_link
//
// One file (version 1; inspect with h5dump or h5py):
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
// Sharded (version 2: each rank of an expert-parallel run writes what it alone updates):
//   <stem>.h5           the index: attributes format = "cispo-checkpoint", version = 2, shards = N,
//                       moments = 0|1; /config, /config_hf, /step, /rng, /extra as above; no tensors
//   <stem>.shard-<k>-of-<N>.h5   shard k (zero-padded to 5 digits), one per rank: attributes format =
//                       "cispo-checkpoint-shard", version = 1, shard = k, shards = N;
//     /step             int64, the index's step (a shard left by another save is refused)
//     /runs             int64 [r, 2]: (offset, length) of each run it holds in the whole model's flat layout
//                       (model/params.h param_table_build: every expert), ascending and disjoint
//     /params           float32 [sum of lengths]: the runs' parameters, concatenated
//     /optim/m, /optim/v  float32, the same runs' AdamW moments (when the index says moments = 1)
//   Every element of the model is in exactly one shard: a rank writes the dense parameters of its ZeRO-1
//   shard of them and the experts' of its shard over its DP group (without ZeRO-1, rank 0 the dense part and
//   DP rank 0 of each EP rank its experts), with their moments, so the shards together are one copy.
//   Loading builds the table of the experts wanted (checkpoint_load_ep), intersects its runs with every
//   shard's and reads only those pieces: a run saved on 4 ranks (ep 2 x dp 2) resumes on 1, 2, 3 or 6, with
//   any ep; checkpoint_load (ep 1) gives the whole model, for eval, generate and convert. A missing, foreign,
//   damaged or stale shard, or an element no shard or two shards hold, is an error naming the file.
//
// Use (trainer):
//   checkpoint_save("run/ckpt-100.h5", &cfg, &table, params, m, v, step, rng, n_rng, extra_json);
//   checkpoint_t ck;
//   if (checkpoint_load("run/ckpt-100.h5", &ck)) { fprintf(stderr, "%s\n", cispo_last_error()); ... }
//   ... use ck.cfg, ck.table, ck.params, ck.m / ck.v (NULL when not saved), ck.step, ck.rng, ck.extra_json
//   checkpoint_free(&ck);
//   sharded: every rank checkpoint_save_shard(path, rank, world, ...); a barrier; one rank
//   checkpoint_save_index(path, world, ...), the last file written: the checkpoint exists once it does.
// Saving writes each file as "<file>.tmp" and renames it over <file> only when complete and synced, so a
// crash leaves the previous checkpoint intact. Loading checks every dataset (present, float, right shape)
// against the table built from the stored config; errors name the file and the dataset.
#ifndef CISPO_TRAINER_CHECKPOINT_H
#define CISPO_TRAINER_CHECKPOINT_H

#include <stddef.h>
#include <stdint.h>

#include "model/config.h"
#include "model/params.h"

typedef struct {
    model_config_t cfg;
    param_table_t table;  // built from cfg (checkpoint_load_ep: holding the experts asked for only)
    float *params;        // [table.n_floats]
    float *m, *v;         // [table.n_floats] each, or NULL when the checkpoint has no moments
    int n_shards;         // 0: read from one file; else from an index and its n_shards shards
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
// table must hold every expert (a sharded checkpoint is written with the functions below).
// Fills *ck (free with checkpoint_free) with the whole model, from one file or an index and its shards.
// Returns 0, or -1 with cispo_last_error() set and *ck empty.
int checkpoint_load(const char *path, checkpoint_t *ck);
// The same for EP rank ep_rank of a group of ep (model/moe_ep.h moe_ep_range of the stored config's
// experts): ck->table holds the dense parameters and those experts only, the moments likewise.
int checkpoint_load_ep(const char *path, int ep, int ep_rank, checkpoint_t *ck);
// The model config of a checkpoint file or index alone (no tensors read). 0, or -1 (+ message naming the file).
int checkpoint_read_config(const char *path, model_config_t *cfg);
void checkpoint_free(checkpoint_t *ck);

// The path of shard k of n of the index at index_path: <index_path less .h5>.shard-<k>-of-<n>.h5.
void checkpoint_shard_path(char *buf, size_t cap, const char *index_path, int shard, int n_shards);
// Writes shard k of n of the checkpoint whose index will be index_path: runs [n_runs][2] (offset, length in
// the whole model's layout, ascending), params and (both or neither) m, v [sum of lengths] on the host,
// concatenated in the runs' order. 0 or -1 (+ message naming the file).
int checkpoint_save_shard(const char *index_path, int shard, int n_shards, int64_t step, const int64_t *runs,
                          int n_runs, const float *params, const float *m, const float *v);
// Writes the index, once every shard is in place (after a barrier): it makes the checkpoint. Shard files of
// the same name for another number of shards (an earlier save of this step) are removed after it.
int checkpoint_save_index(const char *path, int n_shards, int moments, const model_config_t *cfg, int64_t step,
                          const uint64_t *rng, int n_rng, const char *extra_json);
// Removes a checkpoint: the file or index at path, then its shards. 0, or -1 (+ message) when path exists
// and cannot be removed.
int checkpoint_remove(const char *path);
// Hard-links the checkpoint at src as dst (its shards as dst's shards first, the index last; each through
// a temporary name and a rename), and removes shards of dst that src does not have. 0 or -1 (+ message).
int checkpoint_link(const char *src, const char *dst);

#endif
