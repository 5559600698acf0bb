// trainer/cmd_generate.c — `cispo generate`: continue a prompt with a model, through the same rollout
// engine RL uses (prefill by the training forward, recurrent decode over a paged KV cache, fp32 LM
// head, sampling on the model's backend), on the CPU or a GPU.
//   cispo generate --model DIR|CKPT.h5 --prompt-tokens FILE --max-new N [--greedy]   -> new ids on one line
//   cispo generate --model DIR --prompts FILE [--slots S] ...    -> one line of new ids per line of FILE
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
    char model[4096], prompt_tokens[4096], prompts[4096], prompt[1 << 16], tokenizer[4096];
    int max_new, greedy, top_k, no_eos, logprobs, device, prefill_chunk, stats, slots;
    double temperature, top_p;
    long long seed;
} generate_opts_t;

#define O(f) offsetof(generate_opts_t, f)
#define S(f) sizeof(((generate_opts_t *)0)->f)
static const keyconf_key_t generate_keys[] = {
    {"model", KEY_STRING, O(model), 0, 0, NULL, "", "an HF model directory or an .h5 checkpoint (a preset .yaml gives a random model)", S(model)},
    {"prompt-tokens", KEY_STRING, O(prompt_tokens), 0, 0, NULL, "", "token ids (whitespace-separated, as `cispo logprobs` reads): prints the new ids", S(prompt_tokens)},
    {"prompts", KEY_STRING, O(prompts), 0, 0, NULL, "", "token-id prompts, one per line, generated together (continuous batching): prints one line of new ids per prompt, in order (the i-th prompt samples with seed stream i)", S(prompts)},
    {"slots", KEY_INT, O(slots), 1, 4096, NULL, "64", "with --prompts: sequences decoded at once", 0},
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
    "cispo generate --model MODEL (--prompt-tokens FILE | --prompts FILE | --prompt TEXT) [options]",
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

// The prompts of a --prompts file: every line holding an id is one prompt (blank lines are skipped). Returns
// the count (>= 1) with ids[i], lens[i] malloc'd, or -1 + message naming the file and line.
static int read_prompt_lines(const char *path, int vocab, int32_t ***ids, int **lens) {
    char *text = cispo_read_file(path, NULL);
    if (!text) return -1;
    int cap = 16, n = 0, line = 0, rc = 0;
    *ids = cispo_malloc((size_t)cap * sizeof **ids);
    *lens = cispo_malloc((size_t)cap * sizeof **lens);
    for (char *p = text; *p && !rc;) {
        char *e = strchr(p, '\n');
        if (e) *e = 0;
        line++;
        if (strspn(p, " \t\r") < strlen(p)) {
            if (n == cap) {
                cap *= 2;
                *ids = cispo_realloc(*ids, (size_t)cap * sizeof **ids);
                *lens = cispo_realloc(*lens, (size_t)cap * sizeof **lens);
            }
            if (model_parse_tokens_from(p, path, line, vocab, 1, &(*ids)[n], &(*lens)[n])) rc = -1;
            else n++;
        }
        p = e ? e + 1 : p + strlen(p);
    }
    free(text);
    if (!rc && n == 0) rc = cispo_fail("%s: no prompt (every line is empty)", path);
    if (rc) {
        for (int i = 0; i < n; i++) free((*ids)[i]);
        free(*ids), free(*lens);
        *ids = NULL, *lens = NULL;
        return -1;
    }
    return n;
}

// Prints sample k: its text (with a tokenizer) or its ids on one line, and with show_lp its log-probs.
static void print_sample(const rollout_sample_t *s, tokenizer_t *tok, int show_lp) {
    if (tok) {
        int len = s->n_tokens - (s->stop == STOP_EOS);
        char *out = tokenizer_decode(tok, s->tokens, (size_t)len, TOKENIZER_LOSSY, NULL);
        printf("%s\n", out ? out : "");
        free(out);
    } else {
        for (int i = 0; i < s->n_tokens; i++) printf(i ? " %d" : "%d", s->tokens[i]);
        printf("\n");
    }
    if (show_lp) {
        for (int i = 0; i < s->n_tokens; i++) printf(i ? " %.9g" : "%.9g", s->logp[i]);
        printf("\n");
    }
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
    const char *lines_file = o->prompts[0] ? o->prompts : NULL;
    const char *text = o->prompt[0] ? o->prompt : NULL, *tok_path = o->tokenizer[0] ? o->tokenizer : NULL;
    int max_new = o->max_new, greedy = o->greedy, top_k = o->top_k, no_eos = o->no_eos, show_lp = o->logprobs;
    double temperature = o->temperature, top_p = o->top_p;
    long long seed = o->seed;
    if (!model[0] || (tok_file != NULL) + (lines_file != NULL) + (text != NULL) != 1) {
        fprintf(stderr, "cispo generate: give --model and exactly one of --prompt-tokens, --prompts or --prompt "
                        "(`cispo generate --help`)\n");
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
    int32_t **ids = NULL;
    int *lens = NULL, np = 0, rc = 1;
    int32_t eos = cfg.eos_token_id;
    if (text) {
        if (!(tok = train_load_tokenizer(tok_path, model))) goto out;
        token_ids_t t = {0};
        if (tokenizer_encode(tok, text, strlen(text), &t, TOKENIZER_ADD_SPECIAL)) goto out;
        ids = cispo_malloc(sizeof *ids), lens = cispo_malloc(sizeof *lens);
        ids[0] = t.ids, lens[0] = (int)t.n, np = 1;
        if (lens[0] < 1) {
            cispo_fail("the prompt encodes to no tokens");
            goto out;
        }
        if (tokenizer_eos_id(tok) >= 0) eos = tokenizer_eos_id(tok);
    } else {
        if (tok_file) {
            ids = cispo_calloc(1, sizeof *ids), lens = cispo_malloc(sizeof *lens);
            if (model_read_token_file(tok_file, cfg.vocab_size, 1, &ids[0], &lens[0])) goto out;
            np = 1;
        } else if ((np = read_prompt_lines(lines_file, cfg.vocab_size, &ids, &lens)) < 0) {
            np = 0;
            goto out;
        }
        if (!no_eos) {
            // token ids in, token ids out: the end-of-sequence id still comes from the tokenizer (a preset's
            // config names none), given with --tokenizer or found in the model directory
            tokenizer_t *t = NULL;
            if (tok_path || eos < 0) t = train_load_tokenizer(tok_path, model);
            if (t && tokenizer_eos_id(t) >= 0) eos = tokenizer_eos_id(t);
            if (t) tokenizer_free(t);
            if (eos < 0)
                fprintf(stderr, "cispo generate: warning: no end-of-sequence token known (the model config names none; "
                                "give --tokenizer FILE): generating all %d tokens\n", max_new);
        }
    }
    int longest = 0;
    long total = 0;
    for (int i = 0; i < np; i++) longest = lens[i] > longest ? lens[i] : longest, total += lens[i];
    if (longest + max_new > cfg.max_position_embeddings)
        fprintf(stderr, "cispo generate: warning: prompt (%d) + max-new (%d) exceeds the model's max_position_embeddings "
                        "(%d): positions past it were never trained\n", longest, max_new, cfg.max_position_embeddings);
    {
        backend_t be;
        if (open_device(&be, o->device, cfg.head_dim)) goto out;
        // the plan covers one prefill step (a whole prompt or one chunk; several prompts up to 8192 tokens) and
        // a decode step of every slot; forward only (MODEL_FORWARD_ONLY: one layer's activations, no gradients,
        // on a GPU the bf16 weights alone)
        const int slots = np < o->slots ? np : o->slots;
        int plan = o->prefill_chunk > 0 && o->prefill_chunk < longest ? o->prefill_chunk : longest;
        if (total > plan) plan = total < 8192 ? (int)total : (plan > 8192 ? plan : 8192);
        if (slots > plan) plan = slots;
        model_t *m;
        if (be.kind == BACKEND_CPU) {
            m = model_create_experts(backend_host(), &cfg, params, plan, 0, cfg.n_experts, MODEL_FORWARD_ONLY);
        } else {
            m = model_create_experts(&be, &cfg, NULL, plan, 0, cfg.n_experts, MODEL_FORWARD_ONLY);
            model_load_params(m, params);
        }
        infer_t *e = infer_create(m, slots, longest + max_new + 1);
        if (o->stats) infer_report(e, stderr);
        rollout_config_t rc_ = {.max_new_tokens = max_new,
                                .eos_id = no_eos ? -1 : eos,
                                .sampler = {.temperature = temperature, .top_p = top_p, .top_k = top_k, .greedy = greedy},
                                .prefill_chunk = o->prefill_chunk};
        uint64_t *sd = cispo_malloc((size_t)np * sizeof *sd);
        for (int i = 0; i < np; i++) sd[i] = sampler_rng_seed((uint64_t)seed, (uint64_t)i);
        rollout_sample_t *s = cispo_calloc((size_t)np, sizeof *s);
        rollout_stats_t st;
        if (!rollout_generate(e, &rc_, (const int32_t *const *)ids, lens, sd, np, s, &st)) {
            for (int k = 0; k < np; k++) {
                print_sample(&s[k], tok, show_lp);
                rollout_sample_free(&s[k]);
            }
            if (o->stats)
                fprintf(stderr, "generate on %s: %d prompt(s), prefill %ld tokens %.3f s, decode %ld tokens %.3f s "
                        "(%.1f tokens/s; up to %d sequences at once)\n",
                        backend_name(be.kind), np, total, st.prefill_s, st.decode_tokens, st.decode_s,
                        st.decode_s > 0 ? st.decode_tokens / st.decode_s : 0.0, st.max_batch);
            rc = 0;
        }
        free(sd), free(s);
        infer_free(e);
        model_free(m);
        backend_release(&be);
    }
out:
    if (rc) fprintf(stderr, "cispo generate: %s\n", cispo_last_error());
    free(o);
    if (ids)
        for (int i = 0; i < (np ? np : 1); i++) free(ids[i]);
    free(ids), free(lens);
    free(params);
    if (tok) tokenizer_free(tok);
    return rc;
}
