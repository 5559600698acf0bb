// model/hf.h — Hugging Face model directories: import (config.json + model.safetensors or a sharded
// model.safetensors.index.json; original per-expert names or HF fused expert names; HF's decay
// buffers ignored) and export (a complete directory: transformers' AutoModelForCausalLM and
// AutoTokenizer load it).
// defines: hf_load_dir, hf_save_dir, hf_export_dir
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

// A complete model directory: hf_save_dir's files, generation_config.json and, with a tokenizer.json,
// tokenizer.json (copied), tokenizer_config.json (the one beside it, with the chat template: the file at
// chat_template_path when given, else the tokenizer's own, chat_template.jinja included; a tokenizer
// class; the special tokens by name) and generation_config.json from the one beside it. The eos, bos
// and pad ids of config.json and generation_config.json are the tokenizer's where it names them
// (model/tokenizer.h: tokenizer_config.json or its added tokens), cfg's otherwise. A tokenizer with more
// ids than cfg's vocab_size is refused. tokenizer_path and chat_template_path may be NULL.
int hf_export_dir(const char *dir, const model_config_t *cfg, const param_table_t *table, const float *params,
                  const char *tokenizer_path, const char *chat_template_path);

#endif
