// trainer/cmd_convert.c — `cispo convert SRC DST`: a Hugging Face model directory to an HDF5
// checkpoint, or an HDF5 checkpoint back to a Hugging Face directory. fp32 weights pass through
// unchanged, so HF -> .h5 -> HF gives the same safetensors bytes tensor by tensor.
// defines: cmd_convert
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "base/common.h"
#include "model/hf.h"
#include "trainer/checkpoint.h"
#include "trainer/commands.h"
#include "trainer/keyconf.h"
#include "trainer/paths.h"
#include "trainer/train.h"

static const keyconf_cli_t convert_cli = {
    "cispo convert",
    "cispo convert SRC DST",
    "  SRC a Hugging Face model directory (config.json + model.safetensors or a sharded index),\n"
    "      DST a file ending .h5: writes an HDF5 checkpoint (parameters, config; step 0).\n"
    "  SRC a .h5 checkpoint, DST a directory (created if needed): writes config.json +\n"
    "      model.safetensors (fp32) that transformers' MiniMaxForCausalLM loads.\n"
    "  SRC a model preset (tiny, bench-1b, minimax-m1, or a .yaml / config.json): its random initialisation\n"
    "      (seed 1, as `cispo train` starts it), written as DST says (.h5: a checkpoint, else a directory).\n"
    "  Optimizer moments and run state in a checkpoint are not exported. No options.",
    NULL, 0, 2};

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
static int preset_to(const char *src, const char *dst) {
    model_config_t cfg;
    float *params;
    if (train_load_model(src, 1, &cfg, &params)) return -1;
    param_table_t table;
    param_table_build(&table, &cfg);
    int rc = ends_with(dst, ".h5") ? checkpoint_save(dst, &cfg, &table, params, NULL, NULL, 0, NULL, 0, NULL)
                                   : hf_save_dir(dst, &cfg, &table, params);
    if (!rc)
        printf("cispo convert: %s (random initialisation, seed 1) -> %s: %d tensors, %zu parameters\n", src, dst,
               table.n_entries, table.n_floats);
    free(params);
    param_table_free(&table);
    return rc;
}

static int h5_to_hf(const char *src, const char *dst) {
    checkpoint_t ck;
    if (checkpoint_load(src, &ck)) return -1;
    if (ck.cfg.flavour == MODEL_FLAVOUR_ORIGINAL)
        fprintf(stderr, "cispo convert: note: %s holds an original-flavour (minimax_m1) model; config.json is written in "
                        "the HF flavour, whose RoPE width and decay slopes differ slightly (docs/model.md)\n", src);
    int rc = hf_save_dir(dst, &ck.cfg, &ck.table, ck.params);
    if (!rc)
        printf("cispo convert: %s -> %s: %d tensors, %zu parameters (step %lld)\n", src, dst, ck.table.n_entries,
               ck.table.n_floats, (long long)ck.step);
    checkpoint_free(&ck);
    return rc;
}

int cmd_convert(int argc, char **argv) {
    const char *pos[2];
    int n_pos = 0, prc = keyconf_parse_cli(&convert_cli, NULL, argc, argv, pos, &n_pos, NULL);
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
        rc = preset_to(spec, dst);
    } else if (is_dir(src)) {
        if (!ends_with(dst, ".h5")) {
            fprintf(stderr, "cispo convert: SRC %s is a directory, so DST must be a file ending .h5 (got '%s')\n", src, dst);
            return 2;
        }
        rc = hf_to_h5(src, dst);
    } else if (ends_with(src, ".h5")) {
        if (ends_with(dst, ".h5")) {
            fprintf(stderr, "cispo convert: SRC %s is a checkpoint, so DST must be a model directory (got '%s')\n", src, dst);
            return 2;
        }
        rc = h5_to_hf(src, dst);
    } else {
        fprintf(stderr, "cispo convert: SRC '%s' is neither a model directory, a .h5 checkpoint nor a preset (tiny, "
                        "bench-1b, minimax-m1: configs/models/NAME.yaml)\n", src);
        return 2;
    }
    if (rc) {
        fprintf(stderr, "cispo convert: %s\n", cispo_last_error());
        return 1;
    }
    return 0;
}
