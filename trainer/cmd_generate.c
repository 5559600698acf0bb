// trainer/cmd_generate.c — `cispo generate`: continue a prompt with a model, through the same rollout
// engine RL uses (prefill by the training forward, recurrent decode, fp32 LM head).
//   cispo generate --model DIR|CKPT.h5 --prompt-tokens FILE --max-new N [--greedy]   -> new ids on one line
//   cispo generate --model DIR --prompt "text" [--tokenizer tokenizer.json] ...      -> the new text
// defines: cmd_generate
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/common.h"
#include "model/infer.h"
#include "model/seq_logprob.h"
#include "model/tokenizer.h"
#include "rl/rollout.h"
#include "trainer/commands.h"
#include "trainer/train.h"

int cmd_generate(int argc, char **argv);

static void usage(FILE *f) {
    fprintf(f,
            "usage: cispo generate --model MODEL (--prompt-tokens FILE | --prompt TEXT) [options]\n"
            "  MODEL             an HF model directory or an .h5 checkpoint (a preset .yaml gives a random model)\n"
            "  --prompt-tokens F token ids (whitespace-separated, as `cispo score` reads): prints the new ids\n"
            "  --prompt TEXT     a text prompt, encoded with the tokenizer: prints the new text\n"
            "  --tokenizer PATH  tokenizer.json (default: MODEL/tokenizer.json)\n"
            "  --max-new N       tokens to generate (default 32)\n"
            "  --greedy          argmax decoding (default: sampling)\n"
            "  --temperature T, --top-p P, --top-k K, --seed S   sampling settings (1.0, 1.0, 0, 1)\n"
            "  --no-eos          do not stop at the end-of-sequence token\n"
            "  --logprobs        also print each new token's log-probability (second line)\n");
}

int cmd_generate(int argc, char **argv) {
    const char *model = NULL, *tok_file = NULL, *text = NULL, *tok_path = NULL;
    int max_new = 32, greedy = 0, top_k = 0, no_eos = 0, show_lp = 0;
    double temperature = 1.0, top_p = 1.0;
    long long seed = 1;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        static const char *const with_value[] = {"--model", "--prompt-tokens", "--prompt", "--tokenizer", "--max-new",
                                                 "--temperature", "--top-p", "--top-k", "--seed"};
        const char *v = NULL;
        for (size_t k = 0; k < sizeof with_value / sizeof *with_value; k++)
            if (!strcmp(a, with_value[k])) {
                if (i + 1 >= argc) return fprintf(stderr, "cispo generate: %s needs a value\n", a), 2;
                v = argv[++i];
            }
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) return usage(stdout), 0;
        else if (!strcmp(a, "--model")) model = v;
        else if (!strcmp(a, "--prompt-tokens")) tok_file = v;
        else if (!strcmp(a, "--prompt")) text = v;
        else if (!strcmp(a, "--tokenizer")) tok_path = v;
        else if (!strcmp(a, "--max-new")) max_new = atoi(v);
        else if (!strcmp(a, "--temperature")) temperature = atof(v);
        else if (!strcmp(a, "--top-p")) top_p = atof(v);
        else if (!strcmp(a, "--top-k")) top_k = atoi(v);
        else if (!strcmp(a, "--seed")) seed = atoll(v);
        else if (!strcmp(a, "--greedy")) greedy = 1;
        else if (!strcmp(a, "--no-eos")) no_eos = 1;
        else if (!strcmp(a, "--logprobs")) show_lp = 1;
        else return fprintf(stderr, "cispo generate: unknown argument '%s'\n", a), usage(stderr), 2;
    }
    if (!model || (!tok_file == !text)) {
        fprintf(stderr, "cispo generate: give --model and exactly one of --prompt-tokens or --prompt\n");
        return usage(stderr), 2;
    }
    if (max_new < 1) return fprintf(stderr, "cispo generate: --max-new must be >= 1\n"), 2;
    if (!(temperature > 0) || !(top_p > 0 && top_p <= 1) || top_k < 0)
        return fprintf(stderr, "cispo generate: need --temperature > 0, 0 < --top-p <= 1, --top-k >= 0\n"), 2;
    model_config_t cfg;
    float *params;
    if (train_load_model(model, (uint64_t)seed, &cfg, &params)) {
        fprintf(stderr, "cispo generate: %s\n", cispo_last_error());
        return 1;
    }
    tokenizer_t *tok = NULL;
    int32_t *ids = NULL;
    int n = 0, rc = 1;
    int32_t eos = cfg.eos_token_id;
    if (text) {
        if (!(tok = train_load_tokenizer(tok_path, model))) goto out;
        token_ids_t t = {0};
        if (tokenizer_encode(tok, text, strlen(text), &t, TOKENIZER_ADD_SPECIAL)) goto out;
        ids = t.ids, n = (int)t.n;
        if (n < 1) {
            cispo_fail("the prompt encodes to no tokens");
            goto out;
        }
        if (tokenizer_eos_id(tok) >= 0) eos = tokenizer_eos_id(tok);
    } else if (model_read_token_file(tok_file, cfg.vocab_size, 1, &ids, &n)) {
        goto out;
    }
    {
        model_t *m = model_create(&cfg, params, n);
        infer_t *e = infer_create(m, 1, n + max_new + 1);
        rollout_config_t rc_ = {.max_new_tokens = max_new,
                                .eos_id = no_eos ? -1 : eos,
                                .sampler = {.temperature = temperature, .top_p = top_p, .top_k = top_k, .greedy = greedy}};
        const int32_t *pp = ids;
        uint64_t sd = sampler_rng_seed((uint64_t)seed, 0);
        rollout_sample_t s;
        if (!rollout_generate(e, &rc_, &pp, &n, &sd, 1, &s, NULL)) {
            if (tok) {
                int len = s.n_tokens - (s.stop == STOP_EOS);
                char *out = tokenizer_decode(tok, s.tokens, (size_t)len, TOKENIZER_LOSSY, NULL);
                printf("%s\n", out ? out : "");
                free(out);
            } else {
                for (int i = 0; i < s.n_tokens; i++) printf(i ? " %d" : "%d", s.tokens[i]);
                printf("\n");
            }
            if (show_lp) {
                for (int i = 0; i < s.n_tokens; i++) printf(i ? " %.9g" : "%.9g", s.logp[i]);
                printf("\n");
            }
            rollout_sample_free(&s);
            rc = 0;
        }
        infer_free(e);
        model_free(m);
    }
out:
    if (rc) fprintf(stderr, "cispo generate: %s\n", cispo_last_error());
    free(ids);
    free(params);
    if (tok) tokenizer_free(tok);
    return rc;
}
