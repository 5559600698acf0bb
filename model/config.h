// model/config.h — the hybrid MoE network's configuration (docs/model.md), from HF-flavour or
// original-flavour config.json, or from a YAML preset in configs/models/.
// defines: model_config_t, model_config_load, model_config_from_json_text, model_config_from_yaml,
//          model_config_validate, model_config_to_json
#ifndef CISPO_MODEL_CONFIG_H
#define CISPO_MODEL_CONFIG_H

#include <stddef.h>

#define MODEL_MAX_LAYERS 256
#define MODEL_MAX_ROPE_PAIRS 256  // head_dim / 2 limit for longrope's per-pair factors

enum model_flavour { MODEL_FLAVOUR_HF = 0, MODEL_FLAVOUR_ORIGINAL = 1 };
enum layer_kind { LAYER_LIGHTNING = 0, LAYER_SOFTMAX = 1 };
// transformers' rope_parameters.rope_type (ROPE_INIT_FUNCTIONS); 0 = "default"
enum model_rope_type {
    ROPE_DEFAULT = 0, ROPE_LINEAR, ROPE_DYNAMIC, ROPE_YARN, ROPE_LONGROPE, ROPE_LLAMA3, ROPE_PROPORTIONAL,
    ROPE_TYPE_COUNT
};

// rope_parameters beyond rope_theta. NAN marks an absent (or null) optional number; zero-initialised
// means "default" (ROPE_DEFAULT ignores every other field).
typedef struct {
    int type;                        // enum model_rope_type
    double factor;                   // linear, dynamic, yarn, longrope, llama3, proportional (NAN: null/absent)
    int original_max_pos;            // yarn, longrope, llama3: original_max_position_embeddings, resolved as
                                     // transformers does (top-level key > rope_parameters > max_position_embeddings)
    double attention_factor;         // yarn, longrope: cos/sin scale (NAN: derived from factor)
    double beta_fast, beta_slow;     // yarn (0: absent -> 32 and 1, as transformers' `or`)
    double mscale, mscale_all_dim;   // yarn (0: absent)
    int truncate;                    // yarn (default true)
    double low_freq_factor, high_freq_factor;  // llama3
    double partial_rotary_factor;    // proportional: rotated fraction of D (NAN: absent = 1)
    int n_pairs;                     // longrope: length of short_factor and long_factor (= D/2)
    double short_factor[MODEL_MAX_ROPE_PAIRS], long_factor[MODEL_MAX_ROPE_PAIRS];
} model_rope_t;

typedef struct {
    int flavour;             // MODEL_FLAVOUR_HF ("minimax") or MODEL_FLAVOUR_ORIGINAL ("minimax_m1"/"minimax_text_01")
    int vocab_size;          // V
    int hidden_size;         // C
    int n_layers;            // N
    int n_heads;             // H
    int head_dim;            // D (A = H*D may differ from C)
    int n_kv_heads;          // KV
    int intermediate_size;   // F, per expert
    int n_experts;           // E
    int n_experts_per_tok;   // K
    int block_size;          // lightning chunk size
    int rotary_dim;          // R: HF flavour defaults to D; original reads rotary_dim
    double rope_theta;
    double rms_norm_eps;     // for the block norms; the lightning output norm uses 1e-6
    double router_aux_loss_coef;
    int tie_word_embeddings; // 0 in every MiniMax checkpoint; supported for completeness
    int max_position_embeddings;
    int layer_kind[MODEL_MAX_LAYERS];  // LAYER_LIGHTNING / LAYER_SOFTMAX
    double linear_alpha, linear_beta;  // residual factors of lightning layers
    double full_alpha, full_beta;      // residual factors of softmax layers
    double mlp_alpha, mlp_beta;        // residual factors of the MoE block
    int bos_token_id, eos_token_id;    // -1 when absent (eos_token_id = the first of a list)
    // Fields added after the first version (keep the ones above stable):
    int postnorm;            // 1: the residual of each sub-block is the NORMED input (HF always; original
                             // reads "postnorm", default false); 0: the un-normed input (pre-norm residual)
    int n_eos;               // number of end-of-sequence ids (config.json's eos_token_id may be a list)
    int eos_token_ids[8];    // all of them; eos_token_ids[0] == eos_token_id
    double initializer_range;    // std of the normal init (HF default 0.02)
    // Fields that select numerics variants (zero = transformers' default, so a zeroed tail reads as the
    // default model):
    int sliding_window;      // 0: causal softmax attention; W >= 1: query i sees keys j with 0 <= i - j < W
    int hidden_act;          // enum act_kind (kernels/ops.h) for the lightning qkv and the experts; 0 = silu
    model_rope_t rope;       // rope type and its parameters (HF flavour; the original flavour is default)
    int has_pad_token;       // pad_token_id given: transformers' embedding (padding_idx) gives its row no
    int pad_token_id;        // gradient from the input side
    double router_jitter_noise, attention_dropout;  // training-mode-only in transformers: kept for export
    int output_router_logits;  // transformers adds the aux loss to its CausalLM loss; kept for export
    int hidden_act_name;     // which ACT2FN name gave hidden_act (gelu_new vs gelu_pytorch_tanh, ...), for export
} model_config_t;

// Loads config.json (HF or original flavour, chosen by model_type) or a .yaml preset.
// Returns 0, or -1 with cispo_last_error() naming the file, the key and the problem.
int model_config_load(model_config_t *cfg, const char *path);
int model_config_from_json_text(model_config_t *cfg, const char *text, const char *origin);
int model_config_from_yaml(model_config_t *cfg, const char *path);
// Checks ranges and consistency (H % KV, K <= E, R even and <= D, ...). 0 or -1 + message.
int model_config_validate(const model_config_t *cfg, const char *origin);
// HF-flavour config.json text that transformers' MiniMaxConfig loads (caller frees).
char *model_config_to_json(const model_config_t *cfg);
// Copies the fields that select numerics variants (sliding_window, hidden_act, rope, pad token,
// router_jitter_noise, attention_dropout, output_router_logits, hidden_act_name: those after
// initializer_range) from HF config.json text, e.g.
// model_config_to_json's, into cfg and keeps the rest: for stores that keep the older fields exactly in a
// format of their own (HDF5 checkpoints: /config beside /config_hf). 0, or -1 + message.
int model_config_take_variants(model_config_t *cfg, const char *hf_json, const char *origin);
// Names of the enums as config.json writes them ("silu", "yarn", ...).
const char *model_act_name(int act);
const char *model_rope_type_name(int type);

static inline int model_attn_width(const model_config_t *c) { return c->n_heads * c->head_dim; }

#endif
