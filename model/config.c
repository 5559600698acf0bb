// model/config.c — the network's configuration from config.json (Hugging Face "minimax" or the
// original "minimax_m1" / "minimax_text_01" remote-code flavour) or from a YAML preset, its checks,
// and the HF-flavour config.json writer.
// defines: model_config_load, model_config_from_json_text, model_config_from_yaml,
//          model_config_validate, model_config_to_json, model_config_take_variants, model_act_name,
//          model_rope_type_name
//
// Key sets (docs/model.md "Where the two references differ"):
//   HF:       layer_types ["linear_attention"|"full_attention"], {full,linear}_attn_{alpha,beta}_factor,
//             mlp_{alpha,beta}_factor, rope_parameters.rope_theta (older files: top-level rope_theta);
//             RoPE over all D dims, slope factor 1 - l/(N-1+1e-5) + 1e-5, residual = normed input.
//   original: attn_type_list [0 lightning | 1 softmax], layernorm_{full_attention,linear_attention,mlp}_
//             {alpha,beta}, rope_theta, rotary_dim (RoPE over the first rotary_dim dims), postnorm,
//             slope factor 1 - l/(N-1) + 1e-5.
// Absent keys take the defaults of the flavour's reference (transformers' MiniMaxConfig, the original
// MiniMaxM1Config), e.g. HF layer_types = full at even l, linear at odd l (its __post_init__).
//
// Every field of transformers' MiniMaxConfig (5.x) and how cispo handles it:
//   field                     default      handling
//   vocab_size                32000        V: embedding and LM head rows
//   hidden_size               4096         C
//   intermediate_size         14336        F per expert
//   num_hidden_layers         32           N (<= MODEL_MAX_LAYERS)
//   num_attention_heads       32           H
//   num_key_value_heads       8            KV; null -> H (__post_init__); must divide H
//   head_dim                  null         D; null or absent -> C / H
//   hidden_act                "silu"       ACT2FN name -> enum act_kind, applied to the lightning qkv projection
//                                          and inside the experts (act(w1 x) * w3 x), forward and backward; every
//                                          parameter-free ACT2FN entry; prelu / xielu (learnable) are refused
//   max_position_embeddings   131072       dynamic rope's threshold; default original_max_position_embeddings
//   initializer_range         0.02         std of param_init_hf
//   rms_norm_eps              1e-5         block and final norms (the lightning output norm is fixed at 1e-6)
//   use_cache                 true         no numerics (inference always caches); written back true
//   pad_token_id              null         embedding padding_idx: that row gets no gradient from lookups
//   bos_token_id              1            kept for export; generation takes ids from the tokenizer
//   eos_token_id              2            int or list (up to 8): eos_token_ids[], kept for generation and export
//   tie_word_embeddings       false        lm_head aliases the embedding (gradients add)
//   sliding_window            null         W >= 1: softmax layers see keys j with 0 <= i - j < W (training
//                                          forward/backward and decode: the last W cached positions)
//   attention_dropout         0.0          eval semantics (transformers applies it only in training mode):
//                                          cispo trains without dropout; kept for export
//   num_experts_per_tok       2            K
//   num_local_experts         8            E ("num_experts" is read as the same key: attribute_map)
//   output_router_logits      false        logits unaffected; the aux loss is model_backward's aux_coef
//                                          (trainer option), not added to transformers' CausalLM loss;
//                                          kept for export
//   router_aux_loss_coef      0.001        default aux_coef for callers (model.h)
//   router_jitter_noise       0.0          eval semantics (training-mode-only noise in transformers): no
//                                          jitter in cispo; kept for export
//   rope_parameters           null         rope_type default | linear | dynamic | yarn | longrope | llama3 |
//                                          proportional with factor, original_max_position_embeddings,
//                                          attention_factor, beta_fast/slow, mscale(_all_dim), truncate,
//                                          low/high_freq_factor, short/long_factor, partial_rotary_factor
//                                          (model/layer_softmax.c computes the frequencies); older files:
//                                          rope_scaling (with "type"), top-level rope_theta,
//                                          partial_rotary_factor and original_max_position_embeddings
//                                          (the latter wins, as at transformers' model init); per-layer-type
//                                          dicts are refused (MiniMax's rotary embedding reads one)
//   layer_types               null         linear_attention / full_attention per layer
//   block_size                256          lightning chunk (numerically equivalent for any value)
//   full/linear_attn_{alpha,beta}_factor, mlp_{alpha,beta}_factor   1   residual factors
//   generic PreTrainedConfig keys (dtype, architectures, output_attentions, ...): no numerics; cispo
//   computes in fp32 with eager attention semantics
#include "model/config.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/common.h"
#include "base/yaml.h"
#include "kernels/ops.h"

// ---------------------------------------------------------------------------------------------
// typed getters: return 1 (present, *out set), 0 (absent, or null where null means "unset"), -1 (error)

static const char *json_type_name(const cJSON *it) {
    if (cJSON_IsString(it)) return "a string";
    if (cJSON_IsBool(it)) return "a boolean";
    if (cJSON_IsNull(it)) return "null";
    if (cJSON_IsArray(it)) return "an array";
    if (cJSON_IsObject(it)) return "an object";
    if (cJSON_IsNumber(it)) return "a number";
    return "an invalid value";
}

static int get_int(const cJSON *obj, const char *origin, const char *key, int null_is_absent, int *out) {
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(obj, key);
    if (!it) return 0;
    if (cJSON_IsNull(it) && null_is_absent) return 0;
    if (!cJSON_IsNumber(it))
        return cispo_fail("%s: key '%s': expected an integer, got %s", origin, key, json_type_name(it));
    double v = it->valuedouble;
    if (v != floor(v) || fabs(v) > 2147483647.0)
        return cispo_fail("%s: key '%s': expected an integer, got %.17g", origin, key, v);
    *out = (int)v;
    return 1;
}

static int get_num(const cJSON *obj, const char *origin, const char *key, double *out) {
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(obj, key);
    if (!it) return 0;
    if (!cJSON_IsNumber(it))
        return cispo_fail("%s: key '%s': expected a number, got %s", origin, key, json_type_name(it));
    *out = it->valuedouble;
    return 1;
}

static int get_bool(const cJSON *obj, const char *origin, const char *key, int *out) {
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(obj, key);
    if (!it) return 0;
    if (!cJSON_IsBool(it))
        return cispo_fail("%s: key '%s': expected true or false, got %s", origin, key, json_type_name(it));
    *out = cJSON_IsTrue(it) ? 1 : 0;
    return 1;
}

// Only for keys whose value must be one fixed string (or null): hidden_act, rope_type.
static int get_str(const cJSON *obj, const char *origin, const char *key, const char **out) {
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(obj, key);
    if (!it || cJSON_IsNull(it)) return 0;
    if (!cJSON_IsString(it))
        return cispo_fail("%s: key '%s': expected a string, got %s", origin, key, json_type_name(it));
    *out = it->valuestring;
    return 1;
}

#define TRY(x)                  \
    do {                        \
        if ((x) < 0) return -1; \
    } while (0)

// ---------------------------------------------------------------------------------------------
// layer kinds

static int parse_layer_types(model_config_t *cfg, const cJSON *root, const char *origin) {
    const cJSON *lt = cJSON_GetObjectItemCaseSensitive(root, "layer_types");
    if (!lt || cJSON_IsNull(lt)) {
        // transformers' MiniMaxConfig.__post_init__: "full_attention" if (i + 1) % 2 else "linear_attention"
        for (int l = 0; l < cfg->n_layers; l++) cfg->layer_kind[l] = (l % 2 == 0) ? LAYER_SOFTMAX : LAYER_LIGHTNING;
        return 0;
    }
    if (!cJSON_IsArray(lt))
        return cispo_fail("%s: key 'layer_types': expected an array of strings, got %s", origin, json_type_name(lt));
    int n = cJSON_GetArraySize(lt);
    if (n != cfg->n_layers)
        return cispo_fail("%s: key 'layer_types': has %d entries but num_hidden_layers is %d", origin, n,
                          cfg->n_layers);
    for (int l = 0; l < n; l++) {
        const cJSON *e = cJSON_GetArrayItem(lt, l);
        if (cJSON_IsString(e) && !strcmp(e->valuestring, "linear_attention")) cfg->layer_kind[l] = LAYER_LIGHTNING;
        else if (cJSON_IsString(e) && !strcmp(e->valuestring, "full_attention")) cfg->layer_kind[l] = LAYER_SOFTMAX;
        else
            return cispo_fail("%s: key 'layer_types': entry %d must be \"linear_attention\" or \"full_attention\", "
                              "got %s%s%s", origin, l, cJSON_IsString(e) ? "\"" : "",
                              cJSON_IsString(e) ? e->valuestring : json_type_name(e), cJSON_IsString(e) ? "\"" : "");
    }
    return 0;
}

static int parse_attn_type_list(model_config_t *cfg, const cJSON *root, const char *origin) {
    const cJSON *lt = cJSON_GetObjectItemCaseSensitive(root, "attn_type_list");
    if (!lt)
        return cispo_fail("%s: key 'attn_type_list': missing (the original flavour needs one entry per layer, "
                          "0 = lightning, 1 = softmax)", origin);
    if (!cJSON_IsArray(lt))
        return cispo_fail("%s: key 'attn_type_list': expected an array of 0/1, got %s", origin, json_type_name(lt));
    int n = cJSON_GetArraySize(lt);
    if (n != cfg->n_layers)
        return cispo_fail("%s: key 'attn_type_list': has %d entries but num_hidden_layers is %d", origin, n,
                          cfg->n_layers);
    for (int l = 0; l < n; l++) {
        const cJSON *e = cJSON_GetArrayItem(lt, l);
        if (!cJSON_IsNumber(e) || (e->valuedouble != 0.0 && e->valuedouble != 1.0))
            return cispo_fail("%s: key 'attn_type_list': entry %d must be 0 (lightning) or 1 (softmax)", origin, l);
        cfg->layer_kind[l] = e->valuedouble == 1.0 ? LAYER_SOFTMAX : LAYER_LIGHTNING;
    }
    return 0;
}

static int parse_eos(model_config_t *cfg, const cJSON *root, const char *origin, int default_id) {
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(root, "eos_token_id");
    cfg->n_eos = 0;
    cfg->eos_token_id = -1;
    if (!it) {
        if (default_id >= 0) cfg->eos_token_ids[cfg->n_eos++] = default_id;
    } else if (cJSON_IsNull(it)) {
    } else if (cJSON_IsArray(it)) {
        int n = cJSON_GetArraySize(it);
        if (n > (int)(sizeof cfg->eos_token_ids / sizeof cfg->eos_token_ids[0]))
            return cispo_fail("%s: key 'eos_token_id': %d ids, at most %d are supported", origin, n,
                              (int)(sizeof cfg->eos_token_ids / sizeof cfg->eos_token_ids[0]));
        for (int i = 0; i < n; i++) {
            const cJSON *e = cJSON_GetArrayItem(it, i);
            if (!cJSON_IsNumber(e) || e->valuedouble != floor(e->valuedouble) || fabs(e->valuedouble) > 2147483647.0)
                return cispo_fail("%s: key 'eos_token_id': entry %d is not an integer", origin, i);
            cfg->eos_token_ids[cfg->n_eos++] = (int)e->valuedouble;
        }
    } else {
        int v = 0;
        TRY(get_int(root, origin, "eos_token_id", 1, &v));
        cfg->eos_token_ids[cfg->n_eos++] = v;
    }
    if (cfg->n_eos > 0) cfg->eos_token_id = cfg->eos_token_ids[0];
    return 0;
}

// ---------------------------------------------------------------------------------------------
// hidden_act: transformers' ACT2FN names without learnable parameters

static const struct {
    const char *name;
    int act;
} act_names[] = {
    {"silu", ACT_SILU},           {"swish", ACT_SILU},          {"gelu", ACT_GELU},
    {"gelu_python", ACT_GELU},    {"gelu_new", ACT_GELU_TANH},  {"gelu_pytorch_tanh", ACT_GELU_TANH},
    {"gelu_python_tanh", ACT_GELU_TANH}, {"gelu_accurate", ACT_GELU_TANH}, {"gelu_fast", ACT_GELU_TANH},
    {"gelu_10", ACT_GELU_10},     {"quick_gelu", ACT_QUICK_GELU}, {"relu", ACT_RELU},
    {"relu2", ACT_RELU2},         {"relu6", ACT_RELU6},         {"leaky_relu", ACT_LEAKY_RELU},
    {"sigmoid", ACT_SIGMOID},     {"tanh", ACT_TANH},           {"linear", ACT_LINEAR},
    {"mish", ACT_MISH},           {"laplace", ACT_LAPLACE},     {"hardswish", ACT_HARDSWISH},
    {"sqrtsoftplus", ACT_SQRTSOFTPLUS},
};

// The first name of each kind (gelu_new for every tanh-form gelu: the same function up to float
// rounding); config.json gets back the name it was read with (hidden_act_name) when that is known.
const char *model_act_name(int act) {
    for (size_t i = 0; i < sizeof act_names / sizeof act_names[0]; i++)
        if (act_names[i].act == act) return act_names[i].name;
    return "?";
}

static int parse_hidden_act(model_config_t *cfg, const cJSON *root, const char *origin) {
    const char *act = NULL;
    cfg->hidden_act = ACT_SILU;
    int has = get_str(root, origin, "hidden_act", &act);
    if (has <= 0) return has;
    for (size_t i = 0; i < sizeof act_names / sizeof act_names[0]; i++)
        if (!strcmp(act, act_names[i].name)) {
            cfg->hidden_act = act_names[i].act;
            cfg->hidden_act_name = (int)i;
            return 0;
        }
    if (!strcmp(act, "prelu") || !strcmp(act, "xielu"))
        return cispo_fail("%s: key 'hidden_act': \"%s\" has learnable parameters that MiniMax checkpoints do not "
                          "carry; use a parameter-free activation (e.g. \"silu\", \"gelu\", \"relu\")", origin, act);
    return cispo_fail("%s: key 'hidden_act': unknown activation \"%s\" (supported: silu, swish, gelu, gelu_python, "
                      "gelu_new, gelu_pytorch_tanh, gelu_python_tanh, gelu_accurate, gelu_fast, gelu_10, quick_gelu, "
                      "relu, relu2, relu6, leaky_relu, sigmoid, tanh, linear, mish, laplace, hardswish, "
                      "sqrtsoftplus)", origin, act);
}

// ---------------------------------------------------------------------------------------------
// rope_parameters (transformers 5.x; older files: rope_scaling, with "type" for "rope_type")

static const char *const rope_type_names[ROPE_TYPE_COUNT] = {"default", "linear",  "dynamic",     "yarn",
                                                              "longrope", "llama3", "proportional"};

const char *model_rope_type_name(int type) {
    return type >= 0 && type < ROPE_TYPE_COUNT ? rope_type_names[type] : "?";
}

// A number in rope_parameters: 1 present, 0 absent or null (*out = NAN), -1 error.
static int rope_num(const cJSON *rp, const char *origin, const char *key, double *out) {
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(rp, key);
    *out = NAN;
    if (!it || cJSON_IsNull(it)) return 0;
    if (!cJSON_IsNumber(it))
        return cispo_fail("%s: key 'rope_parameters.%s': expected a number, got %s", origin, key, json_type_name(it));
    *out = it->valuedouble;
    return 1;
}

static int rope_list(const cJSON *rp, const char *origin, const char *key, double *out, int *n) {
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(rp, key);
    if (!it || cJSON_IsNull(it))
        return cispo_fail("%s: key 'rope_parameters.%s': missing (longrope needs short_factor and long_factor, "
                          "rotary_dim / 2 numbers each)", origin, key);
    if (!cJSON_IsArray(it))
        return cispo_fail("%s: key 'rope_parameters.%s': expected a list of numbers, got %s", origin, key,
                          json_type_name(it));
    int k = cJSON_GetArraySize(it);
    if (k > MODEL_MAX_ROPE_PAIRS)
        return cispo_fail("%s: key 'rope_parameters.%s': %d entries, at most %d are supported", origin, key, k,
                          MODEL_MAX_ROPE_PAIRS);
    for (int i = 0; i < k; i++) {
        const cJSON *e = cJSON_GetArrayItem(it, i);
        if (!cJSON_IsNumber(e))
            return cispo_fail("%s: key 'rope_parameters.%s': entry %d is not a number", origin, key, i);
        out[i] = e->valuedouble;
    }
    *n = k;
    return 0;
}

// Reads the rope type, its parameters and rope_theta (rope_parameters > top-level rope_theta > 1e6).
static int parse_rope(model_config_t *cfg, const cJSON *root, const char *origin) {
    model_rope_t *r = &cfg->rope;
    memset(r, 0, sizeof *r);
    r->factor = r->attention_factor = r->partial_rotary_factor = NAN;
    r->low_freq_factor = r->high_freq_factor = NAN;
    r->truncate = 1;
    TRY(get_num(root, origin, "rope_theta", &cfg->rope_theta));
    double top_prf = NAN;
    TRY(get_num(root, origin, "partial_rotary_factor", &top_prf));
    // transformers: rope_parameters = rope_scaling or rope_parameters
    const cJSON *rp = cJSON_GetObjectItemCaseSensitive(root, "rope_scaling");
    const char *rp_key = "rope_scaling";
    if (!rp || cJSON_IsNull(rp) || (cJSON_IsObject(rp) && !rp->child)) {
        rp = cJSON_GetObjectItemCaseSensitive(root, "rope_parameters");
        rp_key = "rope_parameters";
    }
    if (rp && !cJSON_IsNull(rp)) {
        if (!cJSON_IsObject(rp))
            return cispo_fail("%s: key '%s': expected an object, got %s", origin, rp_key, json_type_name(rp));
        if (cJSON_GetObjectItemCaseSensitive(rp, "full_attention") || cJSON_GetObjectItemCaseSensitive(rp, "linear_attention"))
            return cispo_fail("%s: key '%s': per-layer-type RoPE parameters are not supported (MiniMax has one "
                              "rotary embedding; give rope_type and its parameters directly)", origin, rp_key);
        const char *rt = NULL;
        if (get_str(rp, origin, "rope_type", &rt) < 0) return -1;
        if (!rt && get_str(rp, origin, "type", &rt) < 0) return -1;
        if (rt) {
            r->type = -1;
            for (int i = 0; i < ROPE_TYPE_COUNT; i++)
                if (!strcmp(rt, rope_type_names[i])) r->type = i;
            if (r->type < 0)
                return cispo_fail("%s: key 'rope_parameters.rope_type': unknown rope type \"%s\" (transformers "
                                  "knows default, linear, dynamic, yarn, longrope, llama3, proportional)", origin, rt);
        }
        double theta = NAN;
        TRY(rope_num(rp, origin, "rope_theta", &theta));
        if (!isnan(theta)) cfg->rope_theta = theta;
        TRY(rope_num(rp, origin, "partial_rotary_factor", &r->partial_rotary_factor));
        int has_factor = cJSON_GetObjectItemCaseSensitive(rp, "factor") != NULL;
        TRY(rope_num(rp, origin, "factor", &r->factor));
        TRY(rope_num(rp, origin, "attention_factor", &r->attention_factor));
        double v = NAN;
        TRY(rope_num(rp, origin, "beta_fast", &v));
        r->beta_fast = isnan(v) ? 0 : v;
        TRY(rope_num(rp, origin, "beta_slow", &v));
        r->beta_slow = isnan(v) ? 0 : v;
        TRY(rope_num(rp, origin, "mscale", &v));
        r->mscale = isnan(v) ? 0 : v;
        TRY(rope_num(rp, origin, "mscale_all_dim", &v));
        r->mscale_all_dim = isnan(v) ? 0 : v;
        TRY(get_bool(rp, origin, "truncate", &r->truncate));
        TRY(rope_num(rp, origin, "low_freq_factor", &r->low_freq_factor));
        TRY(rope_num(rp, origin, "high_freq_factor", &r->high_freq_factor));
        double orig = NAN;
        TRY(rope_num(rp, origin, "original_max_position_embeddings", &orig));
        if (!isnan(orig) && (orig != floor(orig) || orig < 1 || orig > 2147483647.0))
            return cispo_fail("%s: key 'rope_parameters.original_max_position_embeddings': %g is not a positive "
                              "integer", origin, orig);
        if (!isnan(orig)) r->original_max_pos = (int)orig;
        // keys transformers requires (KeyError there)
        const int t = r->type;
        if ((t == ROPE_LINEAR || t == ROPE_DYNAMIC || t == ROPE_YARN || t == ROPE_LLAMA3) && !has_factor)
            return cispo_fail("%s: key 'rope_parameters.factor': missing (rope type \"%s\" needs it)", origin,
                              rope_type_names[t]);
        if ((t == ROPE_LINEAR || t == ROPE_DYNAMIC || t == ROPE_LLAMA3) && isnan(r->factor))
            return cispo_fail("%s: key 'rope_parameters.factor': null (rope type \"%s\" needs a number)", origin,
                              rope_type_names[t]);
        if (t == ROPE_LLAMA3 && (isnan(r->low_freq_factor) || isnan(r->high_freq_factor)))
            return cispo_fail("%s: key 'rope_parameters.%s': missing (llama3 needs low_freq_factor and "
                              "high_freq_factor)", origin, isnan(r->low_freq_factor) ? "low_freq_factor" : "high_freq_factor");
        if (t == ROPE_LONGROPE) {
            int ns = 0, nl = 0;
            TRY(rope_list(rp, origin, "short_factor", r->short_factor, &ns));
            TRY(rope_list(rp, origin, "long_factor", r->long_factor, &nl));
            if (ns != nl)
                return cispo_fail("%s: key 'rope_parameters.long_factor': %d entries but short_factor has %d", origin,
                                  nl, ns);
            r->n_pairs = ns;
        }
    }
    if (isnan(r->partial_rotary_factor)) r->partial_rotary_factor = top_prf;
    // original_max_position_embeddings: a top-level key wins (transformers' standardize_rope_params, run
    // again when the model is built), then rope_parameters', then max_position_embeddings
    if (r->type == ROPE_YARN || r->type == ROPE_LONGROPE || r->type == ROPE_LLAMA3) {
        int top = 0;
        int has_top = get_int(root, origin, "original_max_position_embeddings", 1, &top);
        if (has_top < 0) return -1;
        if (has_top) r->original_max_pos = top;
        else if (r->original_max_pos == 0) r->original_max_pos = cfg->max_position_embeddings;
    } else {
        r->original_max_pos = 0;
    }
    return 0;
}

// ---------------------------------------------------------------------------------------------
// the parsed tree -> model_config_t

static int from_tree(model_config_t *cfg, const cJSON *root, const char *origin) {
    memset(cfg, 0, sizeof *cfg);
    if (!cJSON_IsObject(root)) return cispo_fail("%s: expected a JSON object at the top level", origin);

    const cJSON *mt = cJSON_GetObjectItemCaseSensitive(root, "model_type");
    if (!mt)
        return cispo_fail("%s: key 'model_type': missing (expected \"minimax\", \"minimax_m1\" or \"minimax_text_01\")",
                          origin);
    if (!cJSON_IsString(mt))
        return cispo_fail("%s: key 'model_type': expected a string, got %s", origin, json_type_name(mt));
    const char *t = mt->valuestring;
    if (!strcmp(t, "minimax")) cfg->flavour = MODEL_FLAVOUR_HF;
    else if (!strcmp(t, "minimax_m1") || !strcmp(t, "minimax_text_01") || !strcmp(t, "MiniMaxM1") ||
             !strcmp(t, "MiniMaxText01"))
        cfg->flavour = MODEL_FLAVOUR_ORIGINAL;
    else
        return cispo_fail("%s: key 'model_type': unknown model type \"%s\" (expected \"minimax\", \"minimax_m1\" or "
                          "\"minimax_text_01\")", origin, t);
    const int hf = cfg->flavour == MODEL_FLAVOUR_HF;

    // defaults of transformers' MiniMaxConfig and the original MiniMaxM1Config
    cfg->vocab_size = 32000;
    cfg->hidden_size = 4096;
    cfg->intermediate_size = 14336;
    cfg->n_layers = 32;
    cfg->n_heads = 32;
    cfg->n_experts = 8;
    cfg->n_experts_per_tok = 2;
    cfg->block_size = 256;
    cfg->rope_theta = 1e6;
    cfg->rms_norm_eps = 1e-5;
    cfg->router_aux_loss_coef = 0.001;
    cfg->tie_word_embeddings = 0;
    cfg->max_position_embeddings = 4096 * 32;
    cfg->initializer_range = 0.02;
    cfg->linear_alpha = cfg->linear_beta = cfg->full_alpha = cfg->full_beta = 1.0;
    cfg->mlp_alpha = cfg->mlp_beta = 1.0;

    TRY(get_int(root, origin, "vocab_size", 0, &cfg->vocab_size));
    TRY(get_int(root, origin, "hidden_size", 0, &cfg->hidden_size));
    TRY(get_int(root, origin, "intermediate_size", 0, &cfg->intermediate_size));
    TRY(get_int(root, origin, "num_hidden_layers", 0, &cfg->n_layers));
    TRY(get_int(root, origin, "num_attention_heads", 0, &cfg->n_heads));
    // MiniMaxConfig.attribute_map: "num_experts" is another name of num_local_experts
    if (!cJSON_GetObjectItemCaseSensitive(root, "num_local_experts"))
        TRY(get_int(root, origin, "num_experts", 0, &cfg->n_experts));
    TRY(get_int(root, origin, "num_local_experts", 0, &cfg->n_experts));
    TRY(get_int(root, origin, "num_experts_per_tok", 0, &cfg->n_experts_per_tok));
    TRY(get_int(root, origin, "block_size", 0, &cfg->block_size));
    TRY(get_int(root, origin, "max_position_embeddings", 0, &cfg->max_position_embeddings));
    TRY(get_num(root, origin, "rms_norm_eps", &cfg->rms_norm_eps));
    TRY(get_num(root, origin, "router_aux_loss_coef", &cfg->router_aux_loss_coef));
    TRY(get_num(root, origin, "initializer_range", &cfg->initializer_range));
    TRY(get_bool(root, origin, "tie_word_embeddings", &cfg->tie_word_embeddings));

    // Sizes the rest depends on must be sane before they are used as defaults or array lengths.
    if (cfg->n_layers < 1 || cfg->n_layers > MODEL_MAX_LAYERS)
        return cispo_fail("%s: key 'num_hidden_layers': %d is out of range (1..%d)", origin, cfg->n_layers,
                          MODEL_MAX_LAYERS);
    if (cfg->n_heads < 1)
        return cispo_fail("%s: key 'num_attention_heads': %d is out of range (must be >= 1)", origin, cfg->n_heads);

    // head_dim absent or null -> C / H (both references). num_key_value_heads: both config classes
    // default to 8 when the key is absent and turn an explicit null into H (MHA)
    cfg->head_dim = cfg->hidden_size / cfg->n_heads;
    TRY(get_int(root, origin, "head_dim", 1, &cfg->head_dim));
    cfg->n_kv_heads = 8;
    {
        const cJSON *kv = cJSON_GetObjectItemCaseSensitive(root, "num_key_value_heads");
        if (kv && cJSON_IsNull(kv)) cfg->n_kv_heads = cfg->n_heads;
        else TRY(get_int(root, origin, "num_key_value_heads", 0, &cfg->n_kv_heads));
    }

    cfg->bos_token_id = hf ? 1 : -1;
    {
        const cJSON *b = cJSON_GetObjectItemCaseSensitive(root, "bos_token_id");
        if (b && cJSON_IsNull(b)) cfg->bos_token_id = -1;
        else TRY(get_int(root, origin, "bos_token_id", 0, &cfg->bos_token_id));
    }
    TRY(parse_eos(cfg, root, origin, hf ? 2 : -1));

    TRY(parse_hidden_act(cfg, root, origin));
    cfg->sliding_window = 0;
    int has_window = get_int(root, origin, "sliding_window", 1, &cfg->sliding_window);
    if (has_window < 0) return -1;
    if (has_window && cfg->sliding_window < 1)
        return cispo_fail("%s: key 'sliding_window': %d is out of range (must be >= 1, or null for full causal "
                          "attention)", origin, cfg->sliding_window);
    cfg->has_pad_token = get_int(root, origin, "pad_token_id", 1, &cfg->pad_token_id);
    if (cfg->has_pad_token < 0) return -1;
    TRY(get_num(root, origin, "router_jitter_noise", &cfg->router_jitter_noise));
    TRY(get_num(root, origin, "attention_dropout", &cfg->attention_dropout));
    TRY(get_bool(root, origin, "output_router_logits", &cfg->output_router_logits));

    if (hf) {
        TRY(parse_layer_types(cfg, root, origin));
        TRY(get_num(root, origin, "linear_attn_alpha_factor", &cfg->linear_alpha));
        TRY(get_num(root, origin, "linear_attn_beta_factor", &cfg->linear_beta));
        TRY(get_num(root, origin, "full_attn_alpha_factor", &cfg->full_alpha));
        TRY(get_num(root, origin, "full_attn_beta_factor", &cfg->full_beta));
        TRY(get_num(root, origin, "mlp_alpha_factor", &cfg->mlp_alpha));
        TRY(get_num(root, origin, "mlp_beta_factor", &cfg->mlp_beta));
        // transformers 5.x: rope_parameters {rope_type, rope_theta, ...}; older files: top-level rope_theta
        TRY(parse_rope(cfg, root, origin));
        cfg->postnorm = 1;                    // transformers' decoder layer: residual = normed input
        cfg->rotary_dim = cfg->head_dim;      // transformers' rotary embedding covers all D dims
    } else {
        TRY(parse_attn_type_list(cfg, root, origin));
        TRY(get_num(root, origin, "layernorm_linear_attention_alpha", &cfg->linear_alpha));
        TRY(get_num(root, origin, "layernorm_linear_attention_beta", &cfg->linear_beta));
        TRY(get_num(root, origin, "layernorm_full_attention_alpha", &cfg->full_alpha));
        TRY(get_num(root, origin, "layernorm_full_attention_beta", &cfg->full_beta));
        TRY(get_num(root, origin, "layernorm_mlp_alpha", &cfg->mlp_alpha));
        TRY(get_num(root, origin, "layernorm_mlp_beta", &cfg->mlp_beta));
        TRY(get_num(root, origin, "rope_theta", &cfg->rope_theta));
        cfg->rotary_dim = cfg->head_dim;      // the original code: rotary_dim if present else head_dim
        TRY(get_int(root, origin, "rotary_dim", 1, &cfg->rotary_dim));
        // the original remote code is only known with SiLU and full causal attention
        if (cfg->hidden_act != ACT_SILU)
            return cispo_fail("%s: key 'hidden_act': \"%s\" is not supported in the original flavour (its experts use "
                              "\"silu\"; the HF flavour, model_type \"minimax\", supports the others)", origin,
                              model_act_name(cfg->hidden_act));
        if (cfg->sliding_window != 0)
            return cispo_fail("%s: key 'sliding_window': not supported in the original flavour (set it to null; the HF "
                              "flavour, model_type \"minimax\", supports it)", origin);
        cfg->postnorm = 0;                    // MiniMaxM1Config default; the released checkpoints set true
        TRY(get_bool(root, origin, "postnorm", &cfg->postnorm));
        int shared = 0;
        TRY(get_int(root, origin, "shared_intermediate_size", 1, &shared));
        if (shared != 0)
            return cispo_fail("%s: key 'shared_intermediate_size': %d: shared experts are not supported (MiniMax-M1 "
                              "has none; set 0)", origin, shared);
    }
    return model_config_validate(cfg, origin);
}

int model_config_take_variants(model_config_t *cfg, const char *hf_json, const char *origin) {
    model_config_t v;
    if (model_config_from_json_text(&v, hf_json, origin) < 0) return -1;
    cfg->sliding_window = v.sliding_window;
    cfg->hidden_act = v.hidden_act;
    cfg->rope = v.rope;
    cfg->has_pad_token = v.has_pad_token;
    cfg->pad_token_id = v.pad_token_id;
    cfg->router_jitter_noise = v.router_jitter_noise;
    cfg->attention_dropout = v.attention_dropout;
    cfg->output_router_logits = v.output_router_logits;
    cfg->hidden_act_name = v.hidden_act_name;
    return model_config_validate(cfg, origin);
}

int model_config_from_json_text(model_config_t *cfg, const char *text, const char *origin) {
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithOpts(text, &end, 1);
    if (!root) {
        size_t at = end ? (size_t)(end - text) : 0;
        int line = 1;
        for (size_t i = 0; i < at && text[i]; i++) line += text[i] == '\n';
        return cispo_fail("%s: malformed JSON at line %d (byte %zu): fix the syntax there", origin, line, at);
    }
    int rc = from_tree(cfg, root, origin);
    cJSON_Delete(root);
    return rc;
}

// ---------------------------------------------------------------------------------------------
// YAML presets: the same keys as an HF config.json (model_type defaults to "minimax"), read into a
// JSON tree and checked by the same code. One preset-only key: full_attention_interval: n puts the
// softmax layers at l = n-1, 2n-1, ... (MiniMax-M1: every 8th) when layer_types is not given.

// A plain scalar may be null, a boolean or a number (YAML 1.2 core schema); a quoted one is a string.
static cJSON *scalar_to_json(const ynode_t *y) {
    const char *s = y->str;
    if (y->plain) {
        if (!strcmp(s, "null") || !strcmp(s, "~") || !strcmp(s, "") || !strcmp(s, "Null") || !strcmp(s, "NULL"))
            return cJSON_CreateNull();
        if (!strcmp(s, "true") || !strcmp(s, "True") || !strcmp(s, "TRUE")) return cJSON_CreateTrue();
        if (!strcmp(s, "false") || !strcmp(s, "False") || !strcmp(s, "FALSE")) return cJSON_CreateFalse();
        char *endp = NULL;
        errno = 0;
        double v = strtod(s, &endp);
        if (endp != s && *endp == '\0' && errno == 0 && isfinite(v)) return cJSON_CreateNumber(v);
    }
    return cJSON_CreateString(s);
}

// The YAML tree as the JSON tree config.json would give (lists hold scalars only in a preset).
static int node_to_json(const ynode_t *y, const char *origin, cJSON **out) {
    if (y->kind == YNODE_SCALAR) {
        *out = scalar_to_json(y);
        return 0;
    }
    cJSON *c = y->kind == YNODE_MAP ? cJSON_CreateObject() : cJSON_CreateArray();
    for (int i = 0; i < y->n; i++) {
        const ynode_t *k = y->kids[i];
        cJSON *v = NULL;
        if (y->kind == YNODE_LIST && k->kind != YNODE_SCALAR) {
            cJSON_Delete(c);
            return cispo_fail("%s:%d: nested collections inside a list are not supported in a model preset", origin,
                              k->line);
        }
        if (node_to_json(k, origin, &v)) {
            cJSON_Delete(c);
            return -1;
        }
        if (y->kind == YNODE_MAP) cJSON_AddItemToObject(c, k->key, v);
        else cJSON_AddItemToArray(c, v);
    }
    *out = c;
    return 0;
}

static int yaml_to_json(const char *path, cJSON **out) {
    ynode_t *y = NULL;
    if (yaml_load_file(path, &y)) return -1;
    if (!y) return cispo_fail("%s: the file is empty", path);
    int rc = y->kind == YNODE_MAP ? node_to_json(y, path, out)
                                  : cispo_fail("%s:%d: expected a mapping of keys at the top level", path, y->line);
    ynode_free(y);
    return rc;
}

int model_config_from_yaml(model_config_t *cfg, const char *path) {
    cJSON *root = NULL;
    if (yaml_to_json(path, &root) < 0) return -1;
    if (!cJSON_GetObjectItemCaseSensitive(root, "model_type")) cJSON_AddStringToObject(root, "model_type", "minimax");
    const cJSON *iv = cJSON_GetObjectItemCaseSensitive(root, "full_attention_interval");
    int rc = 0;
    if (iv) {
        int n = 0, every = 0;
        if (get_int(root, path, "num_hidden_layers", 0, &n) <= 0 || n < 1 || n > MODEL_MAX_LAYERS)
            rc = cispo_fail("%s: key 'full_attention_interval': needs num_hidden_layers (1..%d) in the same file",
                            path, MODEL_MAX_LAYERS);
        else if (get_int(root, path, "full_attention_interval", 0, &every) < 0)
            rc = -1;
        else if (every < 1)
            rc = cispo_fail("%s: key 'full_attention_interval': %d is out of range (must be >= 1)", path, every);
        else if (cJSON_GetObjectItemCaseSensitive(root, "layer_types") ||
                 cJSON_GetObjectItemCaseSensitive(root, "attn_type_list"))
            rc = cispo_fail("%s: key 'full_attention_interval': give it or an explicit layer list, not both", path);
        else {
            const char *mt = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(root, "model_type"));
            int original = mt && strcmp(mt, "minimax") != 0;
            cJSON *arr = cJSON_AddArrayToObject(root, original ? "attn_type_list" : "layer_types");
            for (int l = 0; l < n; l++) {
                int full = (l + 1) % every == 0;
                cJSON_AddItemToArray(arr, original ? cJSON_CreateNumber(full)
                                                   : cJSON_CreateString(full ? "full_attention" : "linear_attention"));
            }
        }
        cJSON_DeleteItemFromObjectCaseSensitive(root, "full_attention_interval");
    }
    if (rc == 0) rc = from_tree(cfg, root, path);
    cJSON_Delete(root);
    return rc;
}

int model_config_load(model_config_t *cfg, const char *path) {
    size_t n = strlen(path);
    if ((n >= 5 && !strcmp(path + n - 5, ".yaml")) || (n >= 4 && !strcmp(path + n - 4, ".yml")))
        return model_config_from_yaml(cfg, path);
    char *text = cispo_read_file(path, NULL);
    if (!text) return -1;
    int rc = model_config_from_json_text(cfg, text, path);
    free(text);
    return rc;
}

// ---------------------------------------------------------------------------------------------
// checks

// rope_parameters: what transformers needs to build its rotary embedding for MiniMax (which rotates
// rotary_dim = D dims, or a partial rotary_dim, so every type must give rotary_dim/2 frequencies).
static int rope_validate(const model_config_t *c, const char *origin) {
    const model_rope_t *r = &c->rope;
    const int t = r->type, D = c->rotary_dim;
#define RP(cond, key, fmt, ...) \
    if (!(cond)) return cispo_fail("%s: key 'rope_parameters.%s': " fmt, origin, key, __VA_ARGS__)
    RP(t >= 0 && t < ROPE_TYPE_COUNT, "rope_type", "%d is not a rope type", t);
    if (t == ROPE_DEFAULT) return 0;
    RP(c->flavour == MODEL_FLAVOUR_HF, "rope_type", "\"%s\" needs the HF flavour (model_type \"minimax\")",
       rope_type_names[t]);
    RP(isnan(r->factor) || (isfinite(r->factor) && r->factor > 0), "factor", "%g must be a positive number",
       r->factor);
    RP(!(t == ROPE_LINEAR || t == ROPE_DYNAMIC || t == ROPE_LLAMA3) || !isnan(r->factor), "factor",
       "missing (rope type \"%s\" needs it)", rope_type_names[t]);
    if (t == ROPE_YARN || t == ROPE_LONGROPE || t == ROPE_LLAMA3)
        RP(r->original_max_pos >= 1, "original_max_position_embeddings", "%d is out of range (must be >= 1)",
           r->original_max_pos);
    RP(isnan(r->attention_factor) || (isfinite(r->attention_factor) && r->attention_factor >= 0), "attention_factor",
       "%g must be a number >= 0", r->attention_factor);
    RP(isfinite(r->beta_fast) && isfinite(r->beta_slow) && isfinite(r->mscale) && isfinite(r->mscale_all_dim),
       "beta_fast", "%s", "beta_fast, beta_slow, mscale and mscale_all_dim must be finite numbers");
    if (t == ROPE_LLAMA3)
        RP(isfinite(r->low_freq_factor) && isfinite(r->high_freq_factor) && r->low_freq_factor > 0 &&
               r->high_freq_factor != r->low_freq_factor,
           "high_freq_factor", "%g with low_freq_factor %g: need positive numbers that differ (the smoothing "
           "divides by their difference)", r->high_freq_factor, r->low_freq_factor);
    if (t == ROPE_LONGROPE) {
        RP(r->n_pairs == D / 2, "short_factor", "has %d entries, rotary_dim / 2 = %d needed", r->n_pairs, D / 2);
        for (int i = 0; i < r->n_pairs; i++)
            RP(isfinite(r->short_factor[i]) && r->short_factor[i] > 0 && isfinite(r->long_factor[i]) &&
                   r->long_factor[i] > 0,
               "short_factor", "entry %d of short_factor or long_factor is not a positive number", i);
    }
    if (!isnan(r->partial_rotary_factor)) {
        if (t == ROPE_PROPORTIONAL) {
            RP(r->partial_rotary_factor >= 0 && r->partial_rotary_factor <= 1, "partial_rotary_factor",
               "%g is out of range (0..1)", r->partial_rotary_factor);
        } else {
            RP((int)(D * r->partial_rotary_factor) == D, "partial_rotary_factor",
               "%g: rope type \"%s\" would give int(head_dim * factor) = %d frequency dims, but MiniMax rotates all "
               "head_dim = %d (transformers fails on this config); use 1.0 or rope type \"proportional\"",
               r->partial_rotary_factor, rope_type_names[t], (int)(D * r->partial_rotary_factor), D);
        }
    }
#undef RP
    return 0;
}

int model_config_validate(const model_config_t *c, const char *origin) {
#define RANGE(cond, key, fmt, ...) \
    if (!(cond)) return cispo_fail("%s: key '%s': " fmt, origin, key, __VA_ARGS__)
    RANGE(c->vocab_size >= 1, "vocab_size", "%d is out of range (must be >= 1)", c->vocab_size);
    RANGE(c->hidden_size >= 1, "hidden_size", "%d is out of range (must be >= 1)", c->hidden_size);
    RANGE(c->n_layers >= 1 && c->n_layers <= MODEL_MAX_LAYERS, "num_hidden_layers", "%d is out of range (1..%d)",
          c->n_layers, MODEL_MAX_LAYERS);
    RANGE(c->n_heads >= 1, "num_attention_heads", "%d is out of range (must be >= 1)", c->n_heads);
    RANGE(c->head_dim >= 1, "head_dim", "%d is out of range (must be >= 1; absent means hidden_size / "
          "num_attention_heads)", c->head_dim);
    RANGE(c->n_kv_heads >= 1 && c->n_kv_heads <= c->n_heads && c->n_heads % c->n_kv_heads == 0,
          "num_key_value_heads", "%d must divide num_attention_heads (%d)", c->n_kv_heads, c->n_heads);
    RANGE(c->intermediate_size >= 1, "intermediate_size", "%d is out of range (must be >= 1)", c->intermediate_size);
    RANGE(c->n_experts >= 1, "num_local_experts", "%d is out of range (must be >= 1)", c->n_experts);
    RANGE(c->n_experts_per_tok >= 1 && c->n_experts_per_tok <= c->n_experts, "num_experts_per_tok",
          "%d is out of range (1..num_local_experts = %d)", c->n_experts_per_tok, c->n_experts);
    RANGE(c->block_size >= 1, "block_size", "%d is out of range (must be >= 1)", c->block_size);
    RANGE(c->rotary_dim >= 2 && c->rotary_dim <= c->head_dim && c->rotary_dim % 2 == 0, "rotary_dim",
          "%d must be even and in 2..head_dim (%d)", c->rotary_dim, c->head_dim);
    RANGE(c->rope_theta > 0 && isfinite(c->rope_theta), "rope_theta", "%g must be positive", c->rope_theta);
    RANGE(c->rms_norm_eps > 0 && c->rms_norm_eps < 1, "rms_norm_eps", "%g is out of range (0 < eps < 1)",
          c->rms_norm_eps);
    RANGE(c->router_aux_loss_coef >= 0 && isfinite(c->router_aux_loss_coef), "router_aux_loss_coef",
          "%g must be >= 0", c->router_aux_loss_coef);
    RANGE(c->initializer_range > 0 && isfinite(c->initializer_range), "initializer_range", "%g must be positive",
          c->initializer_range);
    RANGE(c->max_position_embeddings >= 1, "max_position_embeddings", "%d is out of range (must be >= 1)",
          c->max_position_embeddings);
    RANGE(c->bos_token_id >= -1 && c->bos_token_id < c->vocab_size, "bos_token_id",
          "%d is out of range (0..vocab_size-1 = %d, or null)", c->bos_token_id, c->vocab_size - 1);
    for (int i = 0; i < c->n_eos; i++)
        RANGE(c->eos_token_ids[i] >= 0 && c->eos_token_ids[i] < c->vocab_size, "eos_token_id",
              "%d is out of range (0..vocab_size-1 = %d, or null)", c->eos_token_ids[i], c->vocab_size - 1);
    RANGE(c->sliding_window >= 0, "sliding_window", "%d is out of range (must be >= 1, or null)", c->sliding_window);
    RANGE(c->hidden_act >= 0 && c->hidden_act < ACT_COUNT, "hidden_act", "%d is not an activation", c->hidden_act);
    RANGE(!c->has_pad_token || (c->pad_token_id >= 0 && c->pad_token_id < c->vocab_size), "pad_token_id",
          "%d is out of range (0..vocab_size-1 = %d, or null)", c->pad_token_id, c->vocab_size - 1);
    if (rope_validate(c, origin) < 0) return -1;
    const double f[6] = {c->linear_alpha, c->linear_beta, c->full_alpha, c->full_beta, c->mlp_alpha, c->mlp_beta};
    const char *fk_hf[6] = {"linear_attn_alpha_factor", "linear_attn_beta_factor", "full_attn_alpha_factor",
                            "full_attn_beta_factor",    "mlp_alpha_factor",        "mlp_beta_factor"};
    const char *fk_or[6] = {"layernorm_linear_attention_alpha", "layernorm_linear_attention_beta",
                            "layernorm_full_attention_alpha",   "layernorm_full_attention_beta",
                            "layernorm_mlp_alpha",              "layernorm_mlp_beta"};
    for (int i = 0; i < 6; i++)
        RANGE(isfinite(f[i]), c->flavour == MODEL_FLAVOUR_HF ? fk_hf[i] : fk_or[i], "%g is not a finite number", f[i]);
    int n_lightning = 0;
    for (int l = 0; l < c->n_layers; l++) {
        RANGE(c->layer_kind[l] == LAYER_LIGHTNING || c->layer_kind[l] == LAYER_SOFTMAX,
              c->flavour == MODEL_FLAVOUR_HF ? "layer_types" : "attn_type_list", "entry %d is not a layer kind", l);
        n_lightning += c->layer_kind[l] == LAYER_LIGHTNING;
    }
    // the original slope factor 1 - l/(N-1) + 1e-5 divides by N-1
    RANGE(!(c->flavour == MODEL_FLAVOUR_ORIGINAL && c->n_layers == 1 && n_lightning > 0), "num_hidden_layers",
          "%d: the original flavour's lightning slope formula needs at least 2 layers", c->n_layers);
#undef RANGE
    return 0;
}

// ---------------------------------------------------------------------------------------------
// HF-flavour config.json (what transformers 5.x's MiniMaxConfig reads)

// transformers' config classes type-check float fields: 0 or 1e6 must be written as 0.0 / 1000000.0.
static void add_float(cJSON *o, const char *key, double v) {
    char buf[64];
    snprintf(buf, sizeof buf, "%.17g", v);
    if (!strpbrk(buf, ".eEn")) strcat(buf, ".0");
    cJSON_AddRawToObject(o, key, buf);
}

// rope_parameters with the keys of its type (only those given, so transformers derives the rest the
// same way); original_max_position_embeddings is written resolved.
static void add_rope(cJSON *o, const model_config_t *c) {
    const model_rope_t *r = &c->rope;
    const int t = c->flavour == MODEL_FLAVOUR_HF ? r->type : ROPE_DEFAULT;
    cJSON *rp = cJSON_AddObjectToObject(o, "rope_parameters");
    cJSON_AddStringToObject(rp, "rope_type", model_rope_type_name(t));
    add_float(rp, "rope_theta", c->rope_theta);
    if (t == ROPE_DEFAULT) return;
    if (!isnan(r->factor)) add_float(rp, "factor", r->factor);
    else if (t == ROPE_YARN) cJSON_AddNullToObject(rp, "factor");
    if (t == ROPE_YARN || t == ROPE_LONGROPE || t == ROPE_LLAMA3)
        cJSON_AddNumberToObject(rp, "original_max_position_embeddings", r->original_max_pos);
    if ((t == ROPE_YARN || t == ROPE_LONGROPE) && !isnan(r->attention_factor))
        add_float(rp, "attention_factor", r->attention_factor);
    if (t == ROPE_YARN) {
        if (r->beta_fast != 0) add_float(rp, "beta_fast", r->beta_fast);
        if (r->beta_slow != 0) add_float(rp, "beta_slow", r->beta_slow);
        if (r->mscale != 0) add_float(rp, "mscale", r->mscale);
        if (r->mscale_all_dim != 0) add_float(rp, "mscale_all_dim", r->mscale_all_dim);
        cJSON_AddBoolToObject(rp, "truncate", r->truncate);
    }
    if (t == ROPE_LLAMA3) {
        add_float(rp, "low_freq_factor", r->low_freq_factor);
        add_float(rp, "high_freq_factor", r->high_freq_factor);
    }
    if (t == ROPE_LONGROPE) {
        cJSON_AddItemToObject(rp, "short_factor", cJSON_CreateDoubleArray(r->short_factor, r->n_pairs));
        cJSON_AddItemToObject(rp, "long_factor", cJSON_CreateDoubleArray(r->long_factor, r->n_pairs));
    }
    if (!isnan(r->partial_rotary_factor)) add_float(rp, "partial_rotary_factor", r->partial_rotary_factor);
}

char *model_config_to_json(const model_config_t *c) {
    cJSON *o = cJSON_CreateObject();
    cJSON *arch = cJSON_AddArrayToObject(o, "architectures");
    cJSON_AddItemToArray(arch, cJSON_CreateString("MiniMaxForCausalLM"));
    cJSON_AddStringToObject(o, "model_type", "minimax");
    cJSON_AddNumberToObject(o, "vocab_size", c->vocab_size);
    cJSON_AddNumberToObject(o, "hidden_size", c->hidden_size);
    cJSON_AddNumberToObject(o, "intermediate_size", c->intermediate_size);
    cJSON_AddNumberToObject(o, "num_hidden_layers", c->n_layers);
    cJSON_AddNumberToObject(o, "num_attention_heads", c->n_heads);
    cJSON_AddNumberToObject(o, "num_key_value_heads", c->n_kv_heads);
    cJSON_AddNumberToObject(o, "head_dim", c->head_dim);
    const int ni = c->hidden_act_name;
    const int named = ni >= 0 && ni < (int)(sizeof act_names / sizeof act_names[0]) && act_names[ni].act == c->hidden_act;
    cJSON_AddStringToObject(o, "hidden_act", named ? act_names[ni].name : model_act_name(c->hidden_act));
    cJSON_AddNumberToObject(o, "max_position_embeddings", c->max_position_embeddings);
    add_float(o, "initializer_range", c->initializer_range);
    add_float(o, "rms_norm_eps", c->rms_norm_eps);
    if (c->has_pad_token) cJSON_AddNumberToObject(o, "pad_token_id", c->pad_token_id);
    else cJSON_AddNullToObject(o, "pad_token_id");
    if (c->bos_token_id >= 0) cJSON_AddNumberToObject(o, "bos_token_id", c->bos_token_id);
    else cJSON_AddNullToObject(o, "bos_token_id");
    if (c->n_eos == 1) cJSON_AddNumberToObject(o, "eos_token_id", c->eos_token_ids[0]);
    else if (c->n_eos > 1) cJSON_AddItemToObject(o, "eos_token_id", cJSON_CreateIntArray(c->eos_token_ids, c->n_eos));
    else cJSON_AddNullToObject(o, "eos_token_id");
    cJSON_AddBoolToObject(o, "tie_word_embeddings", c->tie_word_embeddings);
    cJSON_AddNumberToObject(o, "num_local_experts", c->n_experts);
    cJSON_AddNumberToObject(o, "num_experts_per_tok", c->n_experts_per_tok);
    add_float(o, "router_aux_loss_coef", c->router_aux_loss_coef);
    add_float(o, "router_jitter_noise", c->router_jitter_noise);
    cJSON_AddBoolToObject(o, "output_router_logits", c->output_router_logits);
    if (c->sliding_window > 0) cJSON_AddNumberToObject(o, "sliding_window", c->sliding_window);
    else cJSON_AddNullToObject(o, "sliding_window");
    add_float(o, "attention_dropout", c->attention_dropout);
    add_rope(o, c);
    cJSON *lt = cJSON_AddArrayToObject(o, "layer_types");
    for (int l = 0; l < c->n_layers; l++)
        cJSON_AddItemToArray(lt, cJSON_CreateString(c->layer_kind[l] == LAYER_SOFTMAX ? "full_attention"
                                                                                    : "linear_attention"));
    cJSON_AddNumberToObject(o, "block_size", c->block_size);
    cJSON_AddNumberToObject(o, "linear_attn_alpha_factor", c->linear_alpha);
    cJSON_AddNumberToObject(o, "linear_attn_beta_factor", c->linear_beta);
    cJSON_AddNumberToObject(o, "full_attn_alpha_factor", c->full_alpha);
    cJSON_AddNumberToObject(o, "full_attn_beta_factor", c->full_beta);
    cJSON_AddNumberToObject(o, "mlp_alpha_factor", c->mlp_alpha);
    cJSON_AddNumberToObject(o, "mlp_beta_factor", c->mlp_beta);
    cJSON_AddStringToObject(o, "dtype", "float32");
    cJSON_AddBoolToObject(o, "use_cache", 1);
    char *s = cJSON_Print(o);
    cJSON_Delete(o);
    CHECK_ALLOC(s);
    // cJSON's allocator is malloc; hand back a buffer the caller frees with free()
    char *out = cispo_strdup(s);
    cJSON_free(s);
    return out;
}
