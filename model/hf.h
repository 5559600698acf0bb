// model/hf.h — Hugging Face model directories: import (config.json + model.safetensors or a sharded
// model.safetensors.index.json; original per-expert names or HF fused expert names; HF's decay
// buffers ignored) and export (a directory transformers' MiniMaxForCausalLM loads).
// defines: hf_load_dir, hf_save_dir
#ifndef CISPO_MODEL_HF_H
#define CISPO_MODEL_HF_H

#include "model/config.h"
#include "model/params.h"

// Loads dir/config.json and the weights into a new flat fp32 buffer laid out by *table (built here).
// Returns 0, or -1 with cispo_last_error() naming the file, the tensor or key and the problem.
int hf_load_dir(const char *dir, model_config_t *cfg, param_table_t *table, float **params);
// Writes dir/config.json (HF flavour) and dir/model.safetensors (fp32, per-expert names), atomically
// (temporary files + rename). Creates dir if needed.
int hf_save_dir(const char *dir, const model_config_t *cfg, const param_table_t *table, const float *params);

#endif
