// trainer/cmd_convert.c — `cispo convert SRC DST`: a Hugging Face model directory to an HDF5
// checkpoint, or an HDF5 checkpoint back to a complete Hugging Face directory (weights, config,
// generation config, tokenizer files: model/hf.h hf_export_dir). fp32 weights pass through unchanged,
// so HF -> .h5 -> HF gives the same safetensors bytes tensor by tensor.
// defines: cmd_convert
#include <cjson/cJSON.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "base/common.h"
#include "base/yaml.h"
#include "model/hf.h"
#include "trainer/checkpoint.h"
#include "trainer/commands.h"
#include "trainer/keyconf.h"
#include "trainer/paths.h"
#include "trainer/train.h"

typedef struct {
    char tokenizer[4096], chat_template[4096];
} convert_opts_t;

#define O(f) offsetof(convert_opts_t, f)
static const keyconf_key_t convert_keys[] = {
    {"tokenizer", KEY_STRING, O(tokenizer), 0, 0, NULL, "",
     "tokenizer.json to ship in an exported directory (its directory's tokenizer_config.json, chat_template.jinja "
     "and generation_config.json are taken along); empty: the checkpoint's run's tokenizer, if it records one", 4096},
    {"chat-template", KEY_STRING, O(chat_template), 0, 0, NULL, "",
     "a chat template (.jinja, or a tokenizer_config.json) for the export's tokenizer_config.json instead of the "
     "tokenizer's own", 4096},
};
#undef O

static const keyconf_cli_t convert_cli = {
    "cispo convert",
    "cispo convert SRC DST [--tokenizer tokenizer.json] [--chat-template FILE]",
    "  SRC a Hugging Face model directory (config.json + model.safetensors or a sharded index),\n"
    "      DST a file ending .h5: writes an HDF5 checkpoint (parameters, config; step 0).\n"
    "  SRC a .h5 checkpoint, DST a directory (created if needed): writes a complete model directory:\n"
    "      config.json + model.safetensors (fp32) that transformers' MiniMaxForCausalLM loads,\n"
    "      generation_config.json, and with a tokenizer (--tokenizer, else the one the checkpoint's run\n"
    "      names in its config.yaml) tokenizer.json and tokenizer_config.json with the chat template;\n"
    "      eos/bos/pad ids are the tokenizer's.\n"
    "  SRC a model preset (tiny, bench-1b, minimax-m1, or a .yaml / config.json): its random initialisation\n"
    "      (seed 1, as `cispo train` starts it), written as DST says (.h5: a checkpoint, else a directory).\n"
    "  Optimizer moments and run state in a checkpoint are not exported.",
    convert_keys, sizeof convert_keys / sizeof convert_keys[0], 2};

static int ends_with(const char *s, const char *suffix) {
    size_t n = strlen(s), k = strlen(suffix);
    return n >= k && !strcmp(s + n - k, suffix);
}

static int is_dir(const char *p) {
    struct stat sb;
    return stat(p, &sb) == 0 && S_ISDIR(sb.st_mode);
}

static int hf_to_h5(const char *src, const char *dst) {
    model_config_t cfg;
    param_table_t table;
    float *params;
    if (hf_load_dir(src, &cfg, &table, &params)) return -1;
    int rc = checkpoint_save(dst, &cfg, &table, params, NULL, NULL, 0, NULL, 0, NULL);
    if (!rc) printf("cispo convert: %s -> %s: %d tensors, %zu parameters\n", src, dst, table.n_entries, table.n_floats);
    free(params);
    param_table_free(&table);
    return rc;
}

// A preset's random initialisation, as `cispo train model=NAME` starts it (seed 1).
static int preset_to(const char *src, const char *dst, const convert_opts_t *o) {
    model_config_t cfg;
    float *params;
    if (train_load_model(src, 1, &cfg, &params)) return -1;
    param_table_t table;
    param_table_build(&table, &cfg);
    int rc = ends_with(dst, ".h5") ? checkpoint_save(dst, &cfg, &table, params, NULL, NULL, 0, NULL, 0, NULL)
                                   : hf_export_dir(dst, &cfg, &table, params, o->tokenizer[0] ? o->tokenizer : NULL,
                                                   o->chat_template[0] ? o->chat_template : NULL);
    if (!rc)
        printf("cispo convert: %s (random initialisation, seed 1) -> %s: %d tensors, %zu parameters\n", src, dst,
               table.n_entries, table.n_floats);
    free(params);
    param_table_free(&table);
    return rc;
}

// A path from the run's config.yaml: absolute as the run writes them; a relative one is taken relative to
// the config's directory. "" when the key is absent or empty.
static void run_path(const ynode_t *root, const char *key, const char *dir, char *out, size_t cap) {
    const ynode_t *v = ynode_get(root, key);
    out[0] = 0;
    if (!v || v->kind != YNODE_SCALAR || !v->str[0] || (v->plain && !strcmp(v->str, "null"))) return;
    if (v->str[0] == '/') snprintf(out, cap, "%s", v->str);
    else snprintf(out, cap, "%s/%s", dir, v->str);
}

// The tokenizer (and chat template) of the run that wrote the checkpoint src: the checkpoint's own
// record ("tokenizer" in its run state) when it has one, else the run directory's config.yaml beside
// it: key tokenizer, or the model directory's tokenizer.json; chat_template when it names a file.
static void recorded_tokenizer(const checkpoint_t *ck, const char *src, convert_opts_t *o) {
    cJSON *x = ck->extra_json ? cJSON_Parse(ck->extra_json) : NULL;
    const cJSON *t = cJSON_GetObjectItemCaseSensitive(x, "tokenizer");
    if (cJSON_IsString(t) && t->valuestring[0] && !o->tokenizer[0]) snprintf(o->tokenizer, sizeof o->tokenizer, "%s", t->valuestring);
    cJSON_Delete(x);
    char dir[4096], yaml[4200], p[4096];
    const char *slash = strrchr(src, '/');
    snprintf(dir, sizeof dir, "%.*s", slash ? (int)(slash - src) : 1, slash ? src : ".");
    snprintf(yaml, sizeof yaml, "%s/config.yaml", dir);
    ynode_t *root = NULL;
    struct stat sb;
    if (stat(yaml, &sb) || yaml_load_file(yaml, &root)) {
        cispo_clear_error();
        return;
    }
    if (!o->tokenizer[0]) {
        run_path(root, "tokenizer", dir, o->tokenizer, sizeof o->tokenizer);
        run_path(root, "model", dir, p, sizeof p);
        char tj[4200];
        snprintf(tj, sizeof tj, "%s/tokenizer.json", p);
        if (!o->tokenizer[0] && p[0] && is_dir(p) && !stat(tj, &sb) && strlen(tj) < sizeof o->tokenizer)
            memcpy(o->tokenizer, tj, strlen(tj) + 1);
    }
    const ynode_t *ct = ynode_get(root, "chat_template");
    if (!o->chat_template[0] && o->tokenizer[0] && ct && ct->kind == YNODE_SCALAR && strcmp(ct->str, "auto") &&
        strcmp(ct->str, "none") && ct->str[0])
        run_path(root, "chat_template", dir, o->chat_template, sizeof o->chat_template);
    ynode_free(root);
}

static int h5_to_hf(const char *src, const char *dst, convert_opts_t *o) {
    checkpoint_t ck;
    if (checkpoint_load(src, &ck)) return -1;
    if (ck.cfg.flavour == MODEL_FLAVOUR_ORIGINAL)
        fprintf(stderr, "cispo convert: note: %s holds an original-flavour (minimax_m1) model; config.json is written in "
                        "the HF flavour, whose RoPE width and decay slopes differ slightly (docs/model.md)\n", src);
    if (!o->tokenizer[0]) recorded_tokenizer(&ck, src, o);
    int rc = hf_export_dir(dst, &ck.cfg, &ck.table, ck.params, o->tokenizer[0] ? o->tokenizer : NULL,
                           o->chat_template[0] ? o->chat_template : NULL);
    if (!rc)
        printf("cispo convert: %s -> %s: %d tensors, %zu parameters (step %lld)\n", src, dst, ck.table.n_entries,
               ck.table.n_floats, (long long)ck.step);
    checkpoint_free(&ck);
    return rc;
}

int cmd_convert(int argc, char **argv) {
    const char *pos[2];
    convert_opts_t o;
    keyconf_defaults(&o, convert_keys, convert_cli.n_keys);
    int n_pos = 0, prc = keyconf_parse_cli(&convert_cli, &o, argc, argv, pos, &n_pos, NULL);
    if (prc) {
        if (prc < 0) fprintf(stderr, "cispo convert: %s\n", cispo_last_error());
        return prc < 0 ? 2 : 0;
    }
    if (n_pos != 2) {
        keyconf_print_help(stderr, &convert_cli, NULL);
        return 2;
    }
    const char *src = pos[0], *dst = pos[1];
    char spec[4096];
    paths_model_spec(src, spec, sizeof spec);  // tiny -> configs/models/tiny.yaml, as every command
    int rc;
    if (paths_is_preset(spec)) {
        rc = preset_to(spec, dst, &o);
    } else if (is_dir(src)) {
        if (!ends_with(dst, ".h5")) {
            fprintf(stderr, "cispo convert: SRC %s is a directory, so DST must be a file ending .h5 (got '%s')\n", src, dst);
            return 2;
        }
        if (o.tokenizer[0] || o.chat_template[0]) {
            fprintf(stderr, "cispo convert: --tokenizer and --chat-template go with an export to a directory; a .h5 "
                            "checkpoint holds no tokenizer\n");
            return 2;
        }
        rc = hf_to_h5(src, dst);
    } else if (ends_with(src, ".h5")) {
        if (ends_with(dst, ".h5")) {
            fprintf(stderr, "cispo convert: SRC %s is a checkpoint, so DST must be a model directory (got '%s')\n", src, dst);
            return 2;
        }
        rc = h5_to_hf(src, dst, &o);
    } else {
        fprintf(stderr, "cispo convert: SRC '%s' is neither a model directory, a .h5 checkpoint nor a preset (tiny, "
                        "bench-1b, minimax-m1: configs/models/NAME.yaml)\n", src);
        return 2;
    }
    if (rc) {
        fprintf(stderr, "cispo convert: %s\n", cispo_last_error());
        return 1;
    }
    if (!ends_with(dst, ".h5")) {
        if (o.tokenizer[0]) printf("cispo convert: tokenizer %s exported with its chat template and special tokens\n", o.tokenizer);
        else fprintf(stderr, "cispo convert: note: no tokenizer exported (give --tokenizer tokenizer.json): transformers' "
                             "AutoTokenizer will not load %s\n", dst);
    }
    return 0;
}
