// trainer/cmd_generate.c — `cispo generate`: continue a prompt with a model, through the same rollout
// engine RL uses (prefill by the training forward, recurrent decode over a paged KV cache, fp32 LM
// head, sampling on the model's backend), on the CPU or a GPU.
//   cispo generate --model DIR|CKPT.h5 --prompt-tokens FILE --max-new N [--greedy]   -> new ids on one line
//   cispo generate --model DIR --prompt "text" [--tokenizer tokenizer.json] ...      -> the new text
//   ... --device cuda [--prefill-chunk N] [--stats]: the engine's plan and timing on stderr
// defines: cmd_generate
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/common.h"
#include "model/infer.h"
#include "model/seq_logprob.h"
#include "model/tokenizer.h"
#include "rl/rollout.h"
#include "trainer/commands.h"
#include "trainer/keyconf.h"
#include "trainer/train.h"

typedef struct {
    char model[4096], prompt_tokens[4096], prompt[1 << 16], tokenizer[4096];
    int max_new, greedy, top_k, no_eos, logprobs, device, prefill_chunk, stats;
    double temperature, top_p;
    long long seed;
} generate_opts_t;

#define O(f) offsetof(generate_opts_t, f)
#define S(f) sizeof(((generate_opts_t *)0)->f)
static const keyconf_key_t generate_keys[] = {
    {"model", KEY_STRING, O(model), 0, 0, NULL, "", "an HF model directory or an .h5 checkpoint (a preset .yaml gives a random model)", S(model)},
    {"prompt-tokens", KEY_STRING, O(prompt_tokens), 0, 0, NULL, "", "token ids (whitespace-separated, as `cispo logprobs` reads): prints the new ids", S(prompt_tokens)},
    {"prompt", KEY_STRING, O(prompt), 0, 0, NULL, "", "a text prompt, encoded with the tokenizer: prints the new text", S(prompt)},
    {"tokenizer", KEY_STRING, O(tokenizer), 0, 0, NULL, "", "tokenizer.json (empty: MODEL/tokenizer.json); also gives the end-of-sequence id with --prompt-tokens", S(tokenizer)},
    {"max-new", KEY_INT, O(max_new), 1, 1e7, NULL, "32", "tokens to generate", 0},
    {"greedy", KEY_BOOL, O(greedy), 0, 0, NULL, "false", "argmax decoding (else sampling)", 0},
    {"temperature", KEY_DOUBLE, O(temperature), 1e-6, 1e6, NULL, "1.0", "sampling temperature", 0},
    {"top-p", KEY_DOUBLE, O(top_p), 1e-9, 1, NULL, "1.0", "nucleus sampling: smallest set of tokens with this much mass", 0},
    {"top-k", KEY_INT, O(top_k), 0, 1e9, NULL, "0", "sample among the k most likely tokens (0: all)", 0},
    {"seed", KEY_INT64, O(seed), 0, 9.2e18, NULL, "1", "sampling seed", 0},
    {"no-eos", KEY_BOOL, O(no_eos), 0, 0, NULL, "false", "do not stop at the end-of-sequence token", 0},
    {"logprobs", KEY_BOOL, O(logprobs), 0, 0, NULL, "false", "also print each new token's log-probability (second line)", 0},
    {"device", KEY_CHOICE, O(device), 0, 0, "cpu|cuda|auto", "cpu", "where the model runs: cpu (the fp32 reference), cuda (bf16 activations), auto (cuda when a GPU is present)", 0},
    {"prefill-chunk", KEY_INT, O(prefill_chunk), 0, 1e7, NULL, "0", "prompt tokens prefilled per engine step (0: the whole prompt at once)", 0},
    {"stats", KEY_BOOL, O(stats), 0, 0, NULL, "false", "print the engine's cache plan and prefill/decode timing on stderr", 0},
};
#undef O
#undef S

static const keyconf_cli_t generate_cli = {
    "cispo generate",
    "cispo generate --model MODEL (--prompt-tokens FILE | --prompt TEXT) [options]",
    "  Continues the prompt through the rollout engine RL uses; prints the new token ids (one line) or,\n"
    "  with --prompt, the new text.",
    generate_keys, sizeof generate_keys / sizeof generate_keys[0], 0};

enum { DEV_CPU = 0, DEV_CUDA = 1, DEV_AUTO = 2 };

static int open_device(backend_t *be, int want, int head_dim) {
    const char *note = NULL;
    int rc = backend_open(be, want == DEV_AUTO ? -1 : want == DEV_CUDA ? BACKEND_CUDA : BACKEND_CPU, 0, head_dim, "--device", &note);
    if (note) fprintf(stderr, "cispo generate: --device auto: %s\n", note);
    return rc;
}

int cmd_generate(int argc, char **argv) {
    generate_opts_t *o = cispo_calloc(1, sizeof *o);
    keyconf_defaults(o, generate_keys, generate_cli.n_keys);
    int prc = keyconf_parse_cli(&generate_cli, o, argc, argv, NULL, NULL, NULL);
    if (prc) {
        if (prc < 0) fprintf(stderr, "cispo generate: %s\n", cispo_last_error());
        free(o);
        return prc < 0 ? 2 : 0;
    }
    const char *model = o->model, *tok_file = o->prompt_tokens[0] ? o->prompt_tokens : NULL;
    const char *text = o->prompt[0] ? o->prompt : NULL, *tok_path = o->tokenizer[0] ? o->tokenizer : NULL;
    int max_new = o->max_new, greedy = o->greedy, top_k = o->top_k, no_eos = o->no_eos, show_lp = o->logprobs;
    double temperature = o->temperature, top_p = o->top_p;
    long long seed = o->seed;
    if (!model[0] || (!tok_file == !text)) {
        fprintf(stderr, "cispo generate: give --model and exactly one of --prompt-tokens or --prompt (`cispo generate --help`)\n");
        free(o);
        return 2;
    }
    model_config_t cfg;
    float *params;
    if (train_load_model(model, (uint64_t)seed, &cfg, &params)) {
        fprintf(stderr, "cispo generate: %s\n", cispo_last_error());
        free(o);
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
    } else if (!no_eos) {
        // token ids in, token ids out: the end-of-sequence id still comes from the tokenizer (a preset's
        // config names none), given with --tokenizer or found in the model directory
        tokenizer_t *t = NULL;
        if (tok_path || eos < 0) t = train_load_tokenizer(tok_path, model);
        if (t && tokenizer_eos_id(t) >= 0) eos = tokenizer_eos_id(t);
        if (t) tokenizer_free(t);
        if (eos < 0)
            fprintf(stderr, "cispo generate: warning: no end-of-sequence token known (the model config names none; give "
                            "--tokenizer FILE): generating all %d tokens\n", max_new);
    }
    if (n + max_new > cfg.max_position_embeddings)
        fprintf(stderr, "cispo generate: warning: prompt (%d) + max-new (%d) exceeds the model's max_position_embeddings "
                        "(%d): positions past it were never trained\n", n, max_new, cfg.max_position_embeddings);
    {
        backend_t be;
        if (open_device(&be, o->device, cfg.head_dim)) goto out;
        // the plan covers one prefill step (the whole prompt, or one chunk) and a decode step; forward only
        // (MODEL_FORWARD_ONLY: one layer's activations, no gradients, on a GPU the bf16 weights alone)
        const int plan = o->prefill_chunk > 0 && o->prefill_chunk < n ? o->prefill_chunk : n;
        model_t *m;
        if (be.kind == BACKEND_CPU) {
            m = model_create_experts(backend_host(), &cfg, params, plan, 0, cfg.n_experts, MODEL_FORWARD_ONLY);
        } else {
            m = model_create_experts(&be, &cfg, NULL, plan, 0, cfg.n_experts, MODEL_FORWARD_ONLY);
            model_load_params(m, params);
        }
        infer_t *e = infer_create(m, 1, n + max_new + 1);
        if (o->stats) infer_report(e, stderr);
        rollout_config_t rc_ = {.max_new_tokens = max_new,
                                .eos_id = no_eos ? -1 : eos,
                                .sampler = {.temperature = temperature, .top_p = top_p, .top_k = top_k, .greedy = greedy},
                                .prefill_chunk = o->prefill_chunk};
        const int32_t *pp = ids;
        uint64_t sd = sampler_rng_seed((uint64_t)seed, 0);
        rollout_sample_t s;
        rollout_stats_t st;
        if (!rollout_generate(e, &rc_, &pp, &n, &sd, 1, &s, &st)) {
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
            if (o->stats)
                fprintf(stderr, "generate on %s: prefill %d tokens %.3f s, decode %ld tokens %.3f s (%.1f tokens/s, %.3f ms a step)\n",
                        backend_name(be.kind), n, st.prefill_s, st.decode_tokens, st.decode_s,
                        st.decode_s > 0 ? st.decode_tokens / st.decode_s : 0.0,
                        st.decode_tokens > 0 ? 1e3 * st.decode_s / st.decode_tokens : 0.0);
            rollout_sample_free(&s);
            rc = 0;
        }
        infer_free(e);
        model_free(m);
        backend_release(&be);
    }
out:
    if (rc) fprintf(stderr, "cispo generate: %s\n", cispo_last_error());
    free(o);
    free(ids);
    free(params);
    if (tok) tokenizer_free(tok);
    return rc;
}
