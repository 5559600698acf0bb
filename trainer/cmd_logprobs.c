// trainer/cmd_logprobs.c — `cispo logprobs --model DIR|CKPT.h5 --tokens FILE` (also `cispo score`, its
// former name): per-token log-probs of one token sequence under a model. FILE holds whitespace-separated ids t0..tn-1 (n >= 2); the output is n-1
// lines, line i = ln p(t_i | t_0..t_{i-1}) for i = 1..n-1, from the fp32 forward and LM head.
// defines: cmd_logprobs
#include <stddef.h>
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
#include "trainer/keyconf.h"
#include "trainer/train.h"

typedef struct {
    char model[4096], tokens[4096];
} logprobs_opts_t;

static const keyconf_key_t logprobs_keys[] = {
    {"model", KEY_STRING, offsetof(logprobs_opts_t, model), 0, 0, NULL, "",
     "a Hugging Face model directory (config.json + safetensors), an HDF5 checkpoint (.h5), or a preset (tiny: random weights)", 4096},
    {"tokens", KEY_STRING, offsetof(logprobs_opts_t, tokens), 0, 0, NULL, "", "token ids t0 .. tn-1 separated by whitespace (n >= 2)", 4096},
};

static const keyconf_cli_t logprobs_cli = {
    "cispo logprobs",
    "cispo logprobs --model MODEL --tokens FILE      (`cispo score` is another name)",
    "  Prints n-1 lines: line i is the natural-log probability of t_i given t_0 .. t_{i-1}.",
    logprobs_keys, sizeof logprobs_keys / sizeof logprobs_keys[0], 0};

int cmd_logprobs(int argc, char **argv) {
    const char *me = !strcmp(argv[0], "score") ? "cispo score" : "cispo logprobs";
    logprobs_opts_t o;
    keyconf_defaults(&o, logprobs_keys, logprobs_cli.n_keys);
    int prc = keyconf_parse_cli(&logprobs_cli, &o, argc, argv, NULL, NULL, NULL);
    if (prc) {
        if (prc < 0) fprintf(stderr, "%s: %s\n", me, cispo_last_error());
        return prc < 0 ? 2 : 0;
    }
    const char *model_path = o.model, *tokens_path = o.tokens;
    if (!model_path[0] || !tokens_path[0]) {
        fprintf(stderr, "%s: both --model and --tokens are required (`cispo logprobs --help`)\n", me);
        return 2;
    }
    model_config_t cfg;
    float *params = NULL;
    if (train_load_model(model_path, 1, &cfg, &params)) {
        fprintf(stderr, "%s: %s\n", me, cispo_last_error());
        return 1;
    }
    int32_t *ids = NULL;
    int n = 0;
    if (model_read_token_file(tokens_path, cfg.vocab_size, 2, &ids, &n)) {
        fprintf(stderr, "%s: %s\n", me, cispo_last_error());
        free(params);
        return 1;
    }
    model_t *m = model_create_experts(backend_host(), &cfg, params, n, 0, cfg.n_experts, MODEL_FORWARD_ONLY);
    float *logp = cispo_malloc((size_t)n * sizeof(float));
    int rc = model_seq_logprobs(m, ids, n, logp);
    if (rc) fprintf(stderr, "%s: %s\n", me, cispo_last_error());
    else
        for (int i = 0; i + 1 < n; i++) printf("%.10g\n", (double)logp[i]);
    free(logp);
    model_free(m);
    free(ids);
    free(params);
    return rc ? 1 : 0;
}
