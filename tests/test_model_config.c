// tests/test_model_config.c — model configuration: HF-flavour and original-flavour config.json, the
// defaults of each reference when keys are absent, eos lists, the YAML presets, the HF config writer
// (round trip), the parameter table, and every bad-config case with its one-line message.
//     ./test_model_config       (run from the repository root, or with CISPO_SRC set)
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/common.h"
#include "kernels/cpu/ops_cpu.h"
#include "model/config.h"
#include "model/params.h"
#include "tests/testutil.h"

static char src_root[2048] = ".";

static void path_in_src(char *out, size_t n, const char *rel) { snprintf(out, n, "%s/%s", src_root, rel); }

// ---- positive cases ----

static const char *HF_WIDE =
    "{\"architectures\": [\"MiniMaxForCausalLM\"], \"model_type\": \"minimax\", \"vocab_size\": 61,"
    " \"hidden_size\": 24, \"num_attention_heads\": 3, \"head_dim\": 16, \"num_key_value_heads\": 1,"
    " \"num_hidden_layers\": 3, \"layer_types\": [\"full_attention\", \"linear_attention\", \"linear_attention\"],"
    " \"num_local_experts\": 3, \"num_experts_per_tok\": 1, \"intermediate_size\": 16, \"block_size\": 5,"
    " \"rope_parameters\": {\"rope_type\": \"default\", \"rope_theta\": 10000.0}, \"rms_norm_eps\": 1e-06,"
    " \"full_attn_alpha_factor\": 1.7, \"full_attn_beta_factor\": 0.6, \"linear_attn_alpha_factor\": 2.1,"
    " \"linear_attn_beta_factor\": 0.8, \"mlp_alpha_factor\": 1.3, \"mlp_beta_factor\": 0.9,"
    " \"tie_word_embeddings\": true, \"bos_token_id\": 1, \"eos_token_id\": 2, \"hidden_act\": \"silu\","
    " \"sliding_window\": null, \"router_aux_loss_coef\": 0.01, \"max_position_embeddings\": 4096}";

static void test_hf_full(void) {
    model_config_t c;
    int rc = model_config_from_json_text(&c, HF_WIDE, "wide.json");
    if (!test_check(rc == 0, "HF config: %s", cispo_last_error())) return;
    test_check(c.flavour == MODEL_FLAVOUR_HF, "HF flavour");
    test_check(c.vocab_size == 61 && c.hidden_size == 24 && c.n_heads == 3 && c.head_dim == 16 && c.n_kv_heads == 1,
               "HF sizes V C H D KV");
    test_check(model_attn_width(&c) == 48, "A = H*D = 48 differs from C");
    test_check(c.n_layers == 3 && c.layer_kind[0] == LAYER_SOFTMAX && c.layer_kind[1] == LAYER_LIGHTNING &&
                   c.layer_kind[2] == LAYER_LIGHTNING, "HF layer_types");
    test_check(c.n_experts == 3 && c.n_experts_per_tok == 1 && c.intermediate_size == 16 && c.block_size == 5,
               "HF MoE sizes and block");
    test_check(c.rope_theta == 10000.0 && c.rms_norm_eps == 1e-6, "HF rope_parameters.rope_theta and eps");
    test_check(c.rotary_dim == 16, "HF flavour rotates all D dims (rotary_dim = D), got %d", c.rotary_dim);
    test_check(c.full_alpha == 1.7 && c.full_beta == 0.6 && c.linear_alpha == 2.1 && c.linear_beta == 0.8 &&
                   c.mlp_alpha == 1.3 && c.mlp_beta == 0.9, "HF residual factors");
    test_check(c.tie_word_embeddings == 1 && c.bos_token_id == 1 && c.eos_token_id == 2 && c.n_eos == 1,
               "HF tie, bos, eos");
    test_check(c.postnorm == 1, "HF residual is the normed input");
    test_check(c.router_aux_loss_coef == 0.01 && c.max_position_embeddings == 4096, "HF aux coef, max positions");
}

static void test_hf_defaults(void) {
    model_config_t c;
    int rc = model_config_from_json_text(&c, "{\"model_type\": \"minimax\"}", "min.json");
    if (!test_check(rc == 0, "minimal HF config: %s", cispo_last_error())) return;
    // transformers 5.x MiniMaxConfig class defaults
    test_check(c.vocab_size == 32000 && c.hidden_size == 4096 && c.n_layers == 32 && c.n_heads == 32,
               "defaults V C N H");
    test_check(c.head_dim == 128, "head_dim absent -> C/H = 128, got %d", c.head_dim);
    test_check(c.n_kv_heads == 8, "num_key_value_heads absent -> 8 (the class default), got %d", c.n_kv_heads);
    test_check(c.intermediate_size == 14336 && c.n_experts == 8 && c.n_experts_per_tok == 2, "defaults F E K");
    test_check(c.block_size == 256 && c.rope_theta == 1e6 && c.rms_norm_eps == 1e-5 && c.tie_word_embeddings == 0,
               "defaults block 256, theta 1e6, eps 1e-5, untied");
    test_check(c.linear_alpha == 1 && c.linear_beta == 1 && c.full_alpha == 1 && c.full_beta == 1 &&
                   c.mlp_alpha == 1 && c.mlp_beta == 1, "default factors 1");
    int ok = 1;
    for (int l = 0; l < 32; l++) ok &= c.layer_kind[l] == (l % 2 == 0 ? LAYER_SOFTMAX : LAYER_LIGHTNING);
    test_check(ok, "layer_types default: full_attention at even l, linear_attention at odd l");
    test_check(c.bos_token_id == 1 && c.eos_token_id == 2, "HF default bos 1, eos 2");
    test_check(c.router_aux_loss_coef == 0.001 && c.initializer_range == 0.02, "default aux coef, init range");

    // explicit null num_key_value_heads -> H; head_dim null -> C/H; older files' top-level rope_theta
    rc = model_config_from_json_text(&c,
                                     "{\"model_type\": \"minimax\", \"hidden_size\": 64, \"num_attention_heads\": 4,"
                                     " \"num_key_value_heads\": null, \"head_dim\": null, \"rope_theta\": 5000.0,"
                                     " \"num_hidden_layers\": 2}",
                                     "older.json");
    if (test_check(rc == 0, "older HF config: %s", cispo_last_error())) {
        test_check(c.n_kv_heads == 4 && c.head_dim == 16, "null KV -> H, null head_dim -> C/H");
        test_check(c.rope_theta == 5000.0, "top-level rope_theta (older files), got %g", c.rope_theta);
    }
    // rope_parameters wins over a top-level rope_theta (transformers' standardisation)
    rc = model_config_from_json_text(&c,
                                     "{\"model_type\": \"minimax\", \"rope_theta\": 5000.0, \"num_key_value_heads\": 8,"
                                     " \"rope_parameters\": {\"rope_type\": \"default\", \"rope_theta\": 7.0}}",
                                     "both.json");
    test_check(rc == 0 && c.rope_theta == 7.0, "rope_parameters.rope_theta over top-level rope_theta");
}

static void test_eos_list(void) {
    model_config_t c;
    int rc = model_config_from_json_text(&c, "{\"model_type\": \"minimax\", \"eos_token_id\": [200020, 200021, 7],"
                                             " \"vocab_size\": 200064, \"bos_token_id\": null}", "eos.json");
    if (!test_check(rc == 0, "eos list: %s", cispo_last_error())) return;
    test_check(c.n_eos == 3 && c.eos_token_id == 200020 && c.eos_token_ids[1] == 200021 && c.eos_token_ids[2] == 7,
               "eos list kept in order, eos_token_id = the first");
    test_check(c.bos_token_id == -1, "bos null -> -1");
    rc = model_config_from_json_text(&c, "{\"model_type\": \"minimax\", \"eos_token_id\": null}", "eosnull.json");
    test_check(rc == 0 && c.n_eos == 0 && c.eos_token_id == -1, "eos null -> none");
}

// The released MiniMax-M1 config.json (original flavour), attn_type_list generated: softmax at l%8 == 7.
static char *m1_config_text(int with_postnorm, int with_rotary) {
    char *buf = cispo_malloc(8192);
    int n = snprintf(buf, 8192, "{\"architectures\": [\"MiniMaxM1ForCausalLM\"], \"attention_dropout\": 0.0, "
                                "\"attn_type_list\": [");
    for (int l = 0; l < 80; l++) n += snprintf(buf + n, 8192 - n, "%s%d", l ? ", " : "", l % 8 == 7);
    snprintf(buf + n, 8192 - n,
             "], \"bos_token_id\": null, \"eos_token_id\": null, \"head_dim\": 128, \"hidden_act\": \"silu\","
             " \"hidden_size\": 6144, \"initializer_range\": 0.02, \"intermediate_size\": 9216,"
             " \"layernorm_full_attention_alpha\": 3.5565588200778455, \"layernorm_full_attention_beta\": 1.0,"
             " \"layernorm_linear_attention_alpha\": 3.5565588200778455, \"layernorm_linear_attention_beta\": 1.0,"
             " \"layernorm_mlp_alpha\": 3.5565588200778455, \"layernorm_mlp_beta\": 1.0,"
             " \"max_position_embeddings\": 10240000, \"model_type\": \"minimax_m1\", \"num_attention_heads\": 64,"
             " \"num_experts_per_tok\": 2, \"num_hidden_layers\": 80, \"num_key_value_heads\": 8,"
             " \"num_local_experts\": 32, \"output_router_logits\": false, %s \"rms_norm_eps\": 1e-05,"
             " \"rope_theta\": 10000000, %s \"router_aux_loss_coef\": 0.001, \"router_jitter_noise\": 0.0,"
             " \"shared_intermediate_size\": 0, \"shared_moe_mode\": \"sigmoid\", \"sliding_window\": null,"
             " \"tie_word_embeddings\": false, \"transformers_version\": \"4.45.2\", \"use_cache\": true,"
             " \"vocab_size\": 200064}",
             with_postnorm ? "\"postnorm\": true," : "", with_rotary ? "\"rotary_dim\": 64," : "");
    return buf;
}

static void test_original(void) {
    model_config_t c;
    char *text = m1_config_text(1, 1);
    int rc = model_config_from_json_text(&c, text, "m1.json");
    free(text);
    if (!test_check(rc == 0, "M1 original config: %s", cispo_last_error())) return;
    test_check(c.flavour == MODEL_FLAVOUR_ORIGINAL, "minimax_m1 is the original flavour");
    test_check(c.vocab_size == 200064 && c.hidden_size == 6144 && c.n_layers == 80 && c.n_heads == 64 &&
                   c.head_dim == 128 && c.n_kv_heads == 8, "M1 sizes");
    test_check(model_attn_width(&c) == 8192, "M1 A = 8192");
    test_check(c.rotary_dim == 64 && c.head_dim == 128, "original flavour: RoPE over rotary_dim 64 of D 128");
    test_check(c.intermediate_size == 9216 && c.n_experts == 32 && c.n_experts_per_tok == 2, "M1 MoE sizes");
    test_check(c.rope_theta == 1e7 && c.postnorm == 1, "M1 rope_theta 1e7 (top-level key), postnorm true");
    int n_soft = 0, ok = 1;
    for (int l = 0; l < 80; l++) {
        ok &= c.layer_kind[l] == (l % 8 == 7 ? LAYER_SOFTMAX : LAYER_LIGHTNING);
        n_soft += c.layer_kind[l] == LAYER_SOFTMAX;
    }
    test_check(ok && n_soft == 10, "attn_type_list: softmax at l = 7, 15, ..., 79 (10 of 80)");
    test_check(fabs(c.full_alpha - pow(160.0, 0.25)) < 1e-15 && c.linear_alpha == c.full_alpha &&
                   c.mlp_alpha == c.full_alpha && c.full_beta == 1 && c.linear_beta == 1 && c.mlp_beta == 1,
               "layernorm_* factors: alpha = (2N)^(1/4), beta = 1");
    test_check(c.bos_token_id == -1 && c.n_eos == 0, "bos/eos null");

    // the original slope formula: 2^(-8(h+1)/H) * (1 - l/(N-1) + 1e-5); HF's is 1 - l/(N-1+1e-5) + 1e-5
    const int H = c.n_heads, N = c.n_layers;
    float *s = cispo_malloc((size_t)H * sizeof(float)), *shf = cispo_malloc((size_t)H * sizeof(float));
    double worst = 0, worst_hf = 0, flavour_gap = 0;
    for (int l = 0; l < N; l++) {
        lightning_slopes(s, H, l, N, c.flavour == MODEL_FLAVOUR_ORIGINAL);
        lightning_slopes(shf, H, l, N, 0);
        for (int h = 0; h < H; h++) {
            double base = pow(2.0, -8.0 * (h + 1) / H);
            double ref = base * (1.0 - (double)l / (N - 1) + 1e-5);
            double ref_hf = base * (1.0 - (double)l / (N - 1 + 1e-5) + 1e-5);
            worst = fmax(worst, fabs(s[h] - ref) / ref);
            worst_hf = fmax(worst_hf, fabs(shf[h] - ref_hf) / ref_hf);
            flavour_gap = fmax(flavour_gap, fabs(ref - ref_hf) / ref);
        }
    }
    TEST_LE(worst, 1e-6, "original slopes match 2^(-8(h+1)/H) (1 - l/(N-1) + 1e-5): worst rel %.3g", worst);
    TEST_LE(worst_hf, 1e-6, "HF slopes match 2^(-8(h+1)/H) (1 - l/(N-1+1e-5) + 1e-5): worst rel %.3g", worst_hf);
    // at l = N-1 the factors are 1e-5 (original) and 1.0127e-5 (HF): 1.3% apart, far above the tolerance
    test_check(flavour_gap > 0.01, "the two slope formulas differ at the last layer (gap %.3g)", flavour_gap);
    free(s);
    free(shf);

    // original defaults: postnorm false (MiniMaxM1Config), rotary_dim absent -> head_dim
    text = m1_config_text(0, 0);
    rc = model_config_from_json_text(&c, text, "m1-min.json");
    free(text);
    if (test_check(rc == 0, "M1 without postnorm/rotary_dim: %s", cispo_last_error()))
        test_check(c.postnorm == 0 && c.rotary_dim == 128, "original defaults: postnorm false, rotary_dim = D");
    // minimax_text_01 is the same flavour
    rc = model_config_from_json_text(&c, "{\"model_type\": \"minimax_text_01\", \"num_hidden_layers\": 2,"
                                         " \"attn_type_list\": [0, 1], \"num_key_value_heads\": 8}", "t01.json");
    test_check(rc == 0 && c.flavour == MODEL_FLAVOUR_ORIGINAL && c.bos_token_id == -1,
               "minimax_text_01 -> original flavour: %s", cispo_last_error());
}

static void test_roundtrip(void) {
    model_config_t a, b;
    if (model_config_from_json_text(&a, HF_WIDE, "wide.json") != 0) return;
    char *js = model_config_to_json(&a);
    int rc = model_config_from_json_text(&b, js, "written.json");
    test_check(rc == 0, "HF config written by model_config_to_json reloads: %s", cispo_last_error());
    test_check(rc == 0 && memcmp(&a, &b, sizeof a) == 0, "HF config round trip is exact");
    test_check(strstr(js, "\"rope_parameters\"") && strstr(js, "\"layer_types\"") && strstr(js, "\"head_dim\"") &&
                   strstr(js, "\"rope_type\":\t\"default\""),
               "written config has rope_parameters, layer_types, head_dim");
    free(js);
    // an eos list survives the round trip
    rc = model_config_from_json_text(&a, "{\"model_type\": \"minimax\", \"eos_token_id\": [3, 4], \"vocab_size\": 10,"
                                         " \"num_hidden_layers\": 2, \"num_key_value_heads\": 8}", "l.json");
    js = model_config_to_json(&a);
    test_check(rc == 0 && model_config_from_json_text(&b, js, "w.json") == 0 && b.n_eos == 2 && b.eos_token_ids[1] == 4,
               "eos list round trip");
    free(js);
}

// Fields that select numerics variants: parsed as transformers reads them, written back by
// model_config_to_json so the round trip is exact.
static void roundtrip_exact(const model_config_t *a, const char *label) {
    model_config_t b;
    char *js = model_config_to_json(a);
    int rc = model_config_from_json_text(&b, js, "written.json");
    test_check(rc == 0 && memcmp(a, &b, sizeof b) == 0, "%s: round trip through model_config_to_json is exact (%s)",
               label, rc ? cispo_last_error() : "reloaded");
    free(js);
}

static void test_variants(void) {
    model_config_t c;
    const char *base = "{\"model_type\": \"minimax\", \"num_hidden_layers\": 2, \"head_dim\": 8, "
                       "\"num_key_value_heads\": 8, \"max_position_embeddings\": 64, ";
    char js[2048];
    snprintf(js, sizeof js, "%s\"sliding_window\": 7, \"hidden_act\": \"gelu_pytorch_tanh\", \"pad_token_id\": 3}",
             base);
    if (test_check(model_config_from_json_text(&c, js, "v.json") == 0, "window/act/pad: %s", cispo_last_error())) {
        test_check(c.sliding_window == 7 && c.hidden_act == ACT_GELU_TANH && c.has_pad_token && c.pad_token_id == 3,
                   "sliding_window 7, gelu_pytorch_tanh, pad 3");
        roundtrip_exact(&c, "window/act/pad");
        char *w = model_config_to_json(&c);
        test_check(strstr(w, "\"gelu_pytorch_tanh\"") != NULL, "hidden_act is written back under its own name");
        free(w);
    }
    const struct {
        const char *name;
        int act;
    } acts[] = {{"swish", ACT_SILU},     {"gelu", ACT_GELU},       {"gelu_new", ACT_GELU_TANH}, {"gelu_fast", ACT_GELU_TANH},
                {"quick_gelu", ACT_QUICK_GELU}, {"relu", ACT_RELU}, {"sigmoid", ACT_SIGMOID},  {"tanh", ACT_TANH},
                {"relu2", ACT_RELU2},    {"mish", ACT_MISH},       {"linear", ACT_LINEAR}};
    for (size_t i = 0; i < sizeof acts / sizeof acts[0]; i++) {
        snprintf(js, sizeof js, "%s\"hidden_act\": \"%s\"}", base, acts[i].name);
        test_check(model_config_from_json_text(&c, js, "a.json") == 0 && c.hidden_act == acts[i].act,
                   "hidden_act \"%s\" is activation %d", acts[i].name, acts[i].act);
    }
    // every rope type with its parameters
    const struct {
        const char *rp;
        int type;
    } ropes[] = {
        {"{\"rope_type\": \"linear\", \"factor\": 2.0, \"rope_theta\": 100.0}", ROPE_LINEAR},
        {"{\"rope_type\": \"dynamic\", \"factor\": 3.0}", ROPE_DYNAMIC},
        {"{\"rope_type\": \"yarn\", \"factor\": 4.0, \"original_max_position_embeddings\": 16, \"beta_fast\": 16.0,"
         " \"beta_slow\": 2.0, \"mscale\": 1.0, \"mscale_all_dim\": 0.5, \"truncate\": false}", ROPE_YARN},
        {"{\"rope_type\": \"yarn\", \"factor\": null, \"attention_factor\": 1.25}", ROPE_YARN},
        {"{\"rope_type\": \"longrope\", \"short_factor\": [1, 1.5, 2, 2.5], \"long_factor\": [3, 4, 5, 6],"
         " \"original_max_position_embeddings\": 16}", ROPE_LONGROPE},
        {"{\"rope_type\": \"llama3\", \"factor\": 8.0, \"low_freq_factor\": 1.0, \"high_freq_factor\": 4.0,"
         " \"original_max_position_embeddings\": 16, \"rope_theta\": 500000.0}", ROPE_LLAMA3},
        {"{\"rope_type\": \"proportional\", \"partial_rotary_factor\": 0.5, \"rope_theta\": 100.0}", ROPE_PROPORTIONAL},
    };
    for (size_t i = 0; i < sizeof ropes / sizeof ropes[0]; i++) {
        snprintf(js, sizeof js, "%s\"rope_parameters\": %s}", base, ropes[i].rp);
        char label[32];
        snprintf(label, sizeof label, "rope case %zu", i);
        if (test_check(model_config_from_json_text(&c, js, "r.json") == 0 && c.rope.type == ropes[i].type,
                       "%s (%s): %s", label, ropes[i].rp, cispo_last_error()))
            roundtrip_exact(&c, label);
    }
    // details transformers' standardisation decides
    snprintf(js, sizeof js, "%s\"rope_parameters\": {\"rope_type\": \"yarn\", \"factor\": 2.0}}", base);
    test_check(model_config_from_json_text(&c, js, "y.json") == 0 && c.rope.original_max_pos == 64 &&
                   isnan(c.rope.attention_factor) && c.rope.truncate == 1 && c.rope.beta_fast == 0,
               "yarn: original_max_position_embeddings defaults to max_position_embeddings (64), got %d",
               c.rope.original_max_pos);
    snprintf(js, sizeof js, "%s\"original_max_position_embeddings\": 8, \"rope_parameters\": {\"rope_type\": "
             "\"yarn\", \"factor\": 2.0, \"original_max_position_embeddings\": 16}}", base);
    test_check(model_config_from_json_text(&c, js, "y.json") == 0 && c.rope.original_max_pos == 8,
               "a top-level original_max_position_embeddings wins (transformers' model init), got %d",
               c.rope.original_max_pos);
    snprintf(js, sizeof js, "%s\"rope_theta\": 5000.0, \"rope_scaling\": {\"type\": \"linear\", \"factor\": 2.0}}",
             base);
    test_check(model_config_from_json_text(&c, js, "s.json") == 0 && c.rope.type == ROPE_LINEAR &&
                   c.rope.factor == 2.0 && c.rope_theta == 5000.0,
               "older files: rope_scaling with \"type\", top-level rope_theta: %s", cispo_last_error());
    snprintf(js, sizeof js, "%s\"partial_rotary_factor\": 0.25, \"rope_parameters\": {\"rope_type\": "
             "\"proportional\"}}", base);
    test_check(model_config_from_json_text(&c, js, "p.json") == 0 && c.rope.partial_rotary_factor == 0.25,
               "top-level partial_rotary_factor moves into rope_parameters: %s", cispo_last_error());
    snprintf(js, sizeof js, "%s\"partial_rotary_factor\": 0.5}", base);
    test_check(model_config_from_json_text(&c, js, "p.json") == 0 && c.rope.type == ROPE_DEFAULT &&
                   c.rotary_dim == c.head_dim, "default rope ignores partial_rotary_factor (rotates all D dims)");
    snprintf(js, sizeof js, "%s\"num_experts\": 5, \"num_experts_per_tok\": 3}", base);
    test_check(model_config_from_json_text(&c, js, "e.json") == 0 && c.n_experts == 5,
               "num_experts is num_local_experts (MiniMaxConfig.attribute_map)");
    // a store that keeps the older fields itself takes the variant fields from the HF text
    snprintf(js, sizeof js, "%s\"sliding_window\": 3, \"hidden_act\": \"relu\", \"pad_token_id\": 2, "
             "\"rope_parameters\": {\"rope_type\": \"llama3\", \"factor\": 8.0, \"low_freq_factor\": 1.0, "
             "\"high_freq_factor\": 4.0}}", base);
    if (test_check(model_config_from_json_text(&c, js, "t.json") == 0, "variants: %s", cispo_last_error())) {
        model_config_t old = c;
        old.sliding_window = old.hidden_act = old.hidden_act_name = old.has_pad_token = old.pad_token_id = 0;
        memset(&old.rope, 0, sizeof old.rope);
        char *hf = model_config_to_json(&c);
        test_check(model_config_take_variants(&old, hf, "config_hf") == 0 && memcmp(&old, &c, sizeof c) == 0,
                   "model_config_take_variants restores the variant fields from model_config_to_json's text");
        free(hf);
    }
    snprintf(js, sizeof js, "%s\"router_jitter_noise\": 0.1, \"attention_dropout\": 0.2, "
             "\"output_router_logits\": true}", base);
    if (test_check(model_config_from_json_text(&c, js, "j.json") == 0, "training-only fields: %s", cispo_last_error()))
        roundtrip_exact(&c, "router_jitter_noise / attention_dropout");
}

static void test_presets(void) {
    char p[4096];
    model_config_t c;
    path_in_src(p, sizeof p, "configs/models/tiny.yaml");
    if (test_check(model_config_load(&c, p) == 0, "tiny preset: %s", cispo_last_error())) {
        test_check(c.flavour == MODEL_FLAVOUR_HF && c.vocab_size == 512 && c.hidden_size == 64 && c.n_layers == 4 &&
                       c.n_heads == 4 && c.head_dim == 16 && c.n_kv_heads == 2 && c.n_experts == 4 &&
                       c.n_experts_per_tok == 2 && c.intermediate_size == 64 && c.block_size == 16,
                   "tiny: V 512, C 64, N 4, H 4, D 16, KV 2, E 4, K 2, F 64, block 16");
        test_check(c.layer_kind[0] == LAYER_LIGHTNING && c.layer_kind[1] == LAYER_LIGHTNING &&
                       c.layer_kind[2] == LAYER_LIGHTNING && c.layer_kind[3] == LAYER_SOFTMAX,
                   "tiny: softmax only at l = 3");
    }
    path_in_src(p, sizeof p, "configs/models/bench-1b.yaml");
    if (test_check(model_config_load(&c, p) == 0, "bench-1b preset: %s", cispo_last_error())) {
        int ok = 1;
        for (int l = 0; l < 16; l++) ok &= c.layer_kind[l] == (l == 7 || l == 15 ? LAYER_SOFTMAX : LAYER_LIGHTNING);
        test_check(ok && c.vocab_size == 32768 && c.hidden_size == 1024 && c.n_heads == 8 && c.head_dim == 128 &&
                       c.n_kv_heads == 1 && c.n_experts == 32 && c.intermediate_size == 1024 && c.rope_theta == 1e7,
                   "bench-1b values (docs/performance.md)");
        test_check(fabs(c.mlp_alpha - pow(32.0, 0.25)) < 1e-12, "bench-1b alpha = 32^(1/4)");
        param_table_t t;
        param_table_build(&t, &c);
        test_check(fabs((double)t.n_floats / 1.76e9 - 1) < 0.01, "bench-1b has 1.76 B parameters (%zu)", t.n_floats);
        param_table_free(&t);
    }
    path_in_src(p, sizeof p, "configs/models/minimax-m1.yaml");
    if (test_check(model_config_load(&c, p) == 0, "minimax-m1 preset: %s", cispo_last_error())) {
        char *text = m1_config_text(1, 1);
        model_config_t ref;
        model_config_from_json_text(&ref, text, "m1.json");
        free(text);
        ref.bos_token_id = c.bos_token_id;
        test_check(memcmp(&c, &ref, sizeof c) == 0, "minimax-m1 preset equals the released config.json");
        param_table_t t;
        param_table_build(&t, &c);
        // 456 B total parameters (MiniMax-M1 report)
        test_check(fabs((double)t.n_floats / 456e9 - 1) < 0.01, "MiniMax-M1 has 456 B parameters (%.4g)",
                   (double)t.n_floats);
        param_table_free(&t);
    }
}

static void test_param_table(void) {
    model_config_t c;
    if (model_config_from_json_text(&c, HF_WIDE, "wide.json") != 0) return;
    c.tie_word_embeddings = 0;
    param_table_t t;
    param_table_build(&t, &c);
    int i = param_table_find(&t, "model.layers.1.self_attn.qkv_proj.weight");
    test_check(i >= 0 && t.entries[i].shape[0] == 3 * 48 && t.entries[i].shape[1] == 24 &&
                   t.entries[i].offset == t.layers[1].qkv, "qkv_proj [3A, C] at layers[1].qkv");
    i = param_table_find(&t, "model.layers.0.self_attn.k_proj.weight");
    test_check(i >= 0 && t.entries[i].shape[0] == 16 && t.entries[i].shape[1] == 24, "k_proj [KV*D, C]");
    i = param_table_find(&t, "model.layers.2.block_sparse_moe.experts.2.w2.weight");
    test_check(i >= 0 && t.entries[i].shape[0] == 24 && t.entries[i].shape[1] == 16 &&
                   t.entries[i].offset == t.layers[2].w2 + 2 * 16 * 24, "expert 2's w2 [C, F] inside the w2 stack");
    i = param_table_find(&t, "model.layers.0.block_sparse_moe.experts.1.w3.weight");
    test_check(i >= 0 && t.entries[i].offset == t.layers[0].w3 + 16 * 24, "expert 1's w3 inside the w3 stack");
    test_check(param_table_find(&t, "lm_head.weight") >= 0 && t.lm_head != t.embed, "untied: own lm_head");
    size_t sum = 0;
    int contiguous = 1;
    for (int k = 0; k < t.n_entries; k++) {
        contiguous &= t.entries[k].offset == sum;
        sum += t.entries[k].numel;
    }
    test_check(contiguous && sum == t.n_floats, "entries tile the flat buffer");
    // 1 + 3 layers x (2 norms + 4 attention + router + 3E experts) + norm + lm_head
    test_check(t.n_entries == 1 + 3 * (2 + 4 + 1 + 9) + 2, "entry count %d", t.n_entries);
    float *p1 = cispo_malloc(t.n_floats * sizeof(float)), *p2 = cispo_malloc(t.n_floats * sizeof(float));
    param_init_hf(p1, &t, &c, 7);
    param_init_hf(p2, &t, &c, 7);
    test_check(memcmp(p1, p2, t.n_floats * sizeof(float)) == 0, "init is deterministic in the seed");
    i = param_table_find(&t, "model.layers.1.self_attn.norm.weight");
    test_check(p1[t.entries[i].offset] == 1.0f && p1[t.layers[2].post_norm] == 1.0f, "norm weights init to 1");
    const param_entry_t *e = &t.entries[param_table_find(&t, "model.embed_tokens.weight")];
    double s1 = 0, s2 = 0;
    for (size_t k = 0; k < e->numel; k++) {
        s1 += p1[e->offset + k];
        s2 += (double)p1[e->offset + k] * p1[e->offset + k];
    }
    double mean = s1 / e->numel, sd = sqrt(s2 / e->numel - mean * mean);
    test_check(fabs(mean) < 0.003 && fabs(sd - 0.02) < 0.002, "embedding ~ normal(0, 0.02): mean %.4f sd %.4f", mean,
               sd);
    param_init_hf(p2, &t, &c, 8);
    test_check(memcmp(p1, p2, t.n_floats * sizeof(float)) != 0, "another seed gives other values");
    free(p1);
    free(p2);
    param_table_free(&t);
    c.tie_word_embeddings = 1;
    param_table_build(&t, &c);
    test_check(param_table_find(&t, "lm_head.weight") < 0 && t.lm_head == t.embed, "tied: lm_head aliases embed");
    param_table_free(&t);
}

// ---- bad configs: each gives one line naming the file and the key ----

typedef struct {
    const char *json;
    const char *key;    // must appear in the message ('' = none)
    const char *what;   // must appear in the message
} bad_case_t;

static const bad_case_t BAD[] = {
    {"{\"model_type\": \"minimax\",", "", "malformed JSON at line 1"},
    {"{\"model_type\": \"minimax\",\n \"hidden_size\": 64,\n \"vocab_size\": }", "", "malformed JSON at line 3"},
    {"[1, 2]", "", "expected a JSON object"},
    {"{\"vocab_size\": 10}", "'model_type'", "missing"},
    {"{\"model_type\": \"llama\"}", "'model_type'", "unknown model type \"llama\""},
    {"{\"model_type\": 3}", "'model_type'", "expected a string"},
    {"{\"model_type\": \"minimax\", \"hidden_size\": \"64\"}", "'hidden_size'", "expected an integer, got a string"},
    {"{\"model_type\": \"minimax\", \"num_hidden_layers\": 2.5}", "'num_hidden_layers'",
     "expected an integer, got 2.5"},
    {"{\"model_type\": \"minimax\", \"num_hidden_layers\": 0}", "'num_hidden_layers'", "0 is out of range"},
    {"{\"model_type\": \"minimax\", \"num_hidden_layers\": 1000}", "'num_hidden_layers'", "1000 is out of range"},
    {"{\"model_type\": \"minimax\", \"vocab_size\": -5}", "'vocab_size'", "out of range"},
    {"{\"model_type\": \"minimax\", \"num_attention_heads\": 0}", "'num_attention_heads'", "out of range"},
    {"{\"model_type\": \"minimax\", \"num_attention_heads\": 4, \"num_key_value_heads\": 3}", "'num_key_value_heads'",
     "must divide num_attention_heads (4)"},
    {"{\"model_type\": \"minimax\", \"num_local_experts\": 4, \"num_experts_per_tok\": 5}", "'num_experts_per_tok'",
     "out of range"},
    {"{\"model_type\": \"minimax\", \"block_size\": 0}", "'block_size'", "out of range"},
    {"{\"model_type\": \"minimax\", \"rms_norm_eps\": -1}", "'rms_norm_eps'", "out of range"},
    {"{\"model_type\": \"minimax\", \"rms_norm_eps\": \"tiny\"}", "'rms_norm_eps'", "expected a number"},
    {"{\"model_type\": \"minimax\", \"tie_word_embeddings\": 1}", "'tie_word_embeddings'", "expected true or false"},
    {"{\"model_type\": \"minimax\", \"num_hidden_layers\": 2, \"layer_types\": [\"linear_attention\"]}",
     "'layer_types'", "has 1 entries but num_hidden_layers is 2"},
    {"{\"model_type\": \"minimax\", \"num_hidden_layers\": 2, \"layer_types\": [\"linear_attention\", \"mamba\"]}",
     "'layer_types'", "entry 1 must be"},
    {"{\"model_type\": \"minimax\", \"layer_types\": \"linear_attention\"}", "'layer_types'", "expected an array"},
    {"{\"model_type\": \"minimax\", \"rope_parameters\": {\"rope_type\": \"yarn\", \"rope_theta\": 1e6}}",
     "'rope_parameters.factor'", "missing"},
    {"{\"model_type\": \"minimax\", \"rope_parameters\": {\"rope_type\": \"ntk\", \"factor\": 2.0}}",
     "'rope_parameters.rope_type'", "unknown rope type \"ntk\""},
    {"{\"model_type\": \"minimax\", \"rope_parameters\": {\"rope_type\": \"linear\", \"factor\": null}}",
     "'rope_parameters.factor'", "null"},
    {"{\"model_type\": \"minimax\", \"rope_parameters\": {\"rope_type\": \"linear\", \"factor\": -2.0}}",
     "'rope_parameters.factor'", "must be a positive number"},
    {"{\"model_type\": \"minimax\", \"rope_parameters\": {\"rope_type\": \"longrope\", \"long_factor\": [1]}}",
     "'rope_parameters.short_factor'", "missing"},
    {"{\"model_type\": \"minimax\", \"head_dim\": 8, \"rope_parameters\": {\"rope_type\": \"longrope\","
     " \"short_factor\": [1, 1, 1], \"long_factor\": [2, 2, 2]}}", "'rope_parameters.short_factor'",
     "has 3 entries, rotary_dim / 2 = 4 needed"},
    {"{\"model_type\": \"minimax\", \"head_dim\": 8, \"rope_parameters\": {\"rope_type\": \"longrope\","
     " \"short_factor\": [1, 1, 1, 1], \"long_factor\": [2, 2, 2]}}", "'rope_parameters.long_factor'",
     "3 entries but short_factor has 4"},
    {"{\"model_type\": \"minimax\", \"head_dim\": 8, \"partial_rotary_factor\": 0.5, \"rope_parameters\":"
     " {\"rope_type\": \"linear\", \"factor\": 2.0}}", "'rope_parameters.partial_rotary_factor'",
     "transformers fails on this config"},
    {"{\"model_type\": \"minimax\", \"rope_parameters\": {\"rope_type\": \"llama3\", \"factor\": 8.0,"
     " \"low_freq_factor\": 2.0, \"high_freq_factor\": 2.0}}", "'rope_parameters.high_freq_factor'",
     "need positive numbers that differ"},
    {"{\"model_type\": \"minimax\", \"rope_parameters\": {\"rope_type\": \"llama3\", \"factor\": 8.0}}",
     "'rope_parameters.low_freq_factor'", "missing"},
    {"{\"model_type\": \"minimax\", \"rope_parameters\": {\"full_attention\": {\"rope_type\": \"default\"}}}",
     "'rope_parameters'", "per-layer-type RoPE parameters are not supported"},
    {"{\"model_type\": \"minimax\", \"rope_scaling\": [1]}", "'rope_scaling'", "expected an object"},
    {"{\"model_type\": \"minimax\", \"rope_parameters\": {\"rope_theta\": \"big\"}}",
     "'rope_parameters.rope_theta'", "expected a number"},
    {"{\"model_type\": \"minimax\", \"rope_parameters\": {\"rope_theta\": -1}}", "'rope_theta'", "must be positive"},
    {"{\"model_type\": \"minimax\", \"rope_parameters\": 5}", "'rope_parameters'", "expected an object"},
    {"{\"model_type\": \"minimax\", \"hidden_act\": \"gelu_xyz\"}", "'hidden_act'", "unknown activation \"gelu_xyz\""},
    {"{\"model_type\": \"minimax\", \"hidden_act\": \"prelu\"}", "'hidden_act'", "learnable parameters"},
    {"{\"model_type\": \"minimax\", \"hidden_act\": 3}", "'hidden_act'", "expected a string"},
    {"{\"model_type\": \"minimax\", \"sliding_window\": 0}", "'sliding_window'", "must be >= 1, or null"},
    {"{\"model_type\": \"minimax\", \"sliding_window\": 2.5}", "'sliding_window'", "expected an integer"},
    {"{\"model_type\": \"minimax\", \"vocab_size\": 10, \"pad_token_id\": 10}", "'pad_token_id'", "out of range"},
    {"{\"model_type\": \"minimax_m1\", \"num_hidden_layers\": 2, \"attn_type_list\": [0, 1], \"sliding_window\": 8}",
     "'sliding_window'", "not supported in the original flavour"},
    {"{\"model_type\": \"minimax_m1\", \"num_hidden_layers\": 2, \"attn_type_list\": [0, 1], \"hidden_act\": \"gelu\"}",
     "'hidden_act'", "not supported in the original flavour"},
    {"{\"model_type\": \"minimax\", \"vocab_size\": 512, \"eos_token_id\": 600}", "'eos_token_id'",
     "600 is out of range"},
    {"{\"model_type\": \"minimax\", \"eos_token_id\": [1, \"x\"]}", "'eos_token_id'", "entry 1 is not an integer"},
    {"{\"model_type\": \"minimax\", \"vocab_size\": 512, \"bos_token_id\": 512}", "'bos_token_id'", "out of range"},
    {"{\"model_type\": \"minimax\", \"head_dim\": -4}", "'head_dim'", "out of range"},
    {"{\"model_type\": \"minimax\", \"mlp_alpha_factor\": \"x\"}", "'mlp_alpha_factor'", "expected a number"},
    {"{\"model_type\": \"minimax_m1\", \"num_hidden_layers\": 2, \"num_key_value_heads\": 8}", "'attn_type_list'",
     "missing"},
    {"{\"model_type\": \"minimax_m1\", \"num_hidden_layers\": 2, \"attn_type_list\": [0, 2]}", "'attn_type_list'",
     "entry 1 must be 0"},
    {"{\"model_type\": \"minimax_m1\", \"num_hidden_layers\": 2, \"attn_type_list\": [0, 1, 0]}",
     "'attn_type_list'", "has 3 entries"},
    {"{\"model_type\": \"minimax_m1\", \"num_hidden_layers\": 2, \"attn_type_list\": [0, 1], \"rotary_dim\": 63}",
     "'rotary_dim'", "must be even"},
    {"{\"model_type\": \"minimax_m1\", \"num_hidden_layers\": 2, \"attn_type_list\": [0, 1], \"head_dim\": 64,"
     " \"rotary_dim\": 128}", "'rotary_dim'", "in 2..head_dim (64)"},
    {"{\"model_type\": \"minimax_m1\", \"num_hidden_layers\": 2, \"attn_type_list\": [0, 1], \"postnorm\": \"yes\"}",
     "'postnorm'", "expected true or false"},
    {"{\"model_type\": \"minimax_m1\", \"num_hidden_layers\": 2, \"attn_type_list\": [0, 1],"
     " \"shared_intermediate_size\": 1024}", "'shared_intermediate_size'", "not supported"},
    {"{\"model_type\": \"minimax_m1\", \"num_hidden_layers\": 1, \"attn_type_list\": [0]}", "'num_hidden_layers'",
     "needs at least 2 layers"},
    {"{\"model_type\": \"minimax_m1\", \"num_hidden_layers\": 2, \"attn_type_list\": [0, 1],"
     " \"layernorm_mlp_alpha\": true}", "'layernorm_mlp_alpha'", "expected a number"},
};

static void check_msg(const char *origin, const char *key, const char *what, const char *label) {
    const char *msg = cispo_last_error();
    int ok = strncmp(msg, origin, strlen(origin)) == 0 && strstr(msg, key) && strstr(msg, what) && !strchr(msg, '\n');
    test_check(ok, "%s: message \"%s\" should start with \"%s\", name %s and say \"%s\"", label, msg, origin,
               key[0] ? key : "(no key)", what);
}

static void test_bad(void) {
    for (size_t i = 0; i < sizeof BAD / sizeof BAD[0]; i++) {
        model_config_t c;
        cispo_clear_error();
        int rc = model_config_from_json_text(&c, BAD[i].json, "bad/config.json");
        char label[64];
        snprintf(label, sizeof label, "bad case %zu", i);
        if (test_check(rc == -1, "%s is rejected: %s", label, BAD[i].json))
            check_msg("bad/config.json", BAD[i].key, BAD[i].what, label);
    }
    // files: missing, YAML errors (the same checks apply to presets, named by the YAML path)
    model_config_t c;
    test_check(model_config_load(&c, "/nonexistent/dir/config.json") == -1 &&
                   strstr(cispo_last_error(), "/nonexistent/dir/config.json"), "missing file is named: %s",
               cispo_last_error());
    char tmpl[] = "/tmp/cispo_cfg_XXXXXX";
    char *dir = mkdtemp(tmpl);
    if (!test_check(dir != NULL, "mkdtemp")) return;
    struct {
        const char *text, *key, *what;
    } ycases[] = {
        {"vocab_size: [1, 2\nhidden_size: 4\n", "", "malformed YAML at line"},
        {"hidden_size: \"64\"\n", "'hidden_size'", "expected an integer, got a string"},
        {"num_hidden_layers: 4\nfull_attention_interval: 2\nlayer_types: [linear_attention, full_attention,"
         " linear_attention, full_attention]\n", "'full_attention_interval'", "not both"},
        {"num_hidden_layers: 4\nfull_attention_interval: 0\n", "'full_attention_interval'", "out of range"},
        {"num_hidden_layers: 2\nnum_hidden_layers: 3\n", "'num_hidden_layers'", "appears twice"},
        {"model_type: gpt2\n", "'model_type'", "unknown model type"},
    };
    for (size_t i = 0; i < sizeof ycases / sizeof ycases[0]; i++) {
        char path[4200];
        snprintf(path, sizeof path, "%s/bad%zu.yaml", dir, i);
        FILE *f = fopen(path, "w");
        fputs(ycases[i].text, f);
        fclose(f);
        char label[64];
        snprintf(label, sizeof label, "bad yaml %zu", i);
        if (test_check(model_config_load(&c, path) == -1, "%s is rejected", label))
            check_msg(path, ycases[i].key, ycases[i].what, label);
        unlink(path);
    }
    rmdir(dir);
}

int main(void) {
    const char *src = getenv("CISPO_SRC");
    if (src) snprintf(src_root, sizeof src_root, "%s", src);
    test_hf_full();
    test_hf_defaults();
    test_eos_list();
    test_original();
    test_roundtrip();
    test_variants();
    test_presets();
    test_param_table();
    test_bad();
    return test_finish("test_model_config");
}
