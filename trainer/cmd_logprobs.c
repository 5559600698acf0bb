// trainer/cmd_logprobs.c — `cispo score --model DIR|CKPT.h5 --tokens FILE`: per-token log-probs of one token
// sequence under a model. FILE holds whitespace-separated ids t0..tn-1 (n >= 2); the output is n-1
// lines, line i = ln p(t_i | t_0..t_{i-1}) for i = 1..n-1, from the fp32 forward and LM head.
// defines: cmd_logprobs
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "base/common.h"
#include "model/hf.h"
#include "model/model.h"
#include "model/seq_logprob.h"
#include "trainer/checkpoint.h"
#include "trainer/commands.h"

int cmd_logprobs(int argc, char **argv);

static void usage(FILE *f) {
    fprintf(f,
            "usage: cispo score --model MODEL --tokens FILE\n"
            "  MODEL  a Hugging Face model directory (config.json + safetensors) or an HDF5 checkpoint (.h5)\n"
            "  FILE   token ids t0 .. tn-1 separated by whitespace (n >= 2)\n"
            "Prints n-1 lines: line i is the natural-log probability of t_i given t_0 .. t_{i-1}.\n");
}

static int is_dir(const char *p) {
    struct stat sb;
    return stat(p, &sb) == 0 && S_ISDIR(sb.st_mode);
}

// Loads a model directory or a checkpoint into cfg / params (params malloc'ed, caller frees).
static int load_model(const char *path, model_config_t *cfg, float **params) {
    param_table_t table;
    if (is_dir(path)) {
        if (hf_load_dir(path, cfg, &table, params)) return -1;
        param_table_free(&table);
        return 0;
    }
    checkpoint_t ck;
    if (checkpoint_load(path, &ck)) return -1;
    *cfg = ck.cfg;
    *params = ck.params;
    ck.params = NULL;
    checkpoint_free(&ck);
    return 0;
}

int cmd_logprobs(int argc, char **argv) {
    const char *model_path = NULL, *tokens_path = NULL;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            usage(stdout);
            return 0;
        } else if (!strcmp(argv[i], "--model") && i + 1 < argc) {
            model_path = argv[++i];
        } else if (!strcmp(argv[i], "--tokens") && i + 1 < argc) {
            tokens_path = argv[++i];
        } else {
            fprintf(stderr, "cispo score: unexpected argument '%s'\n", argv[i]);
            usage(stderr);
            return 2;
        }
    }
    if (!model_path || !tokens_path) {
        fprintf(stderr, "cispo score: both --model and --tokens are required\n");
        usage(stderr);
        return 2;
    }
    model_config_t cfg;
    float *params = NULL;
    if (load_model(model_path, &cfg, &params)) {
        fprintf(stderr, "cispo score: %s\n", cispo_last_error());
        return 1;
    }
    int32_t *ids = NULL;
    int n = 0;
    if (model_read_token_file(tokens_path, cfg.vocab_size, 2, &ids, &n)) {
        fprintf(stderr, "cispo score: %s\n", cispo_last_error());
        free(params);
        return 1;
    }
    model_t *m = model_create(&cfg, params, n);
    float *logp = cispo_malloc((size_t)n * sizeof(float));
    int rc = model_seq_logprobs(m, ids, n, logp);
    if (rc) fprintf(stderr, "cispo score: %s\n", cispo_last_error());
    else
        for (int i = 0; i + 1 < n; i++) printf("%.10g\n", (double)logp[i]);
    free(logp);
    model_free(m);
    free(ids);
    free(params);
    return rc ? 1 : 0;
}
