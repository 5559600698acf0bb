// trainer/cmd_serve.c — `cispo serve`: an OpenAI-compatible HTTP server on the rollout engine (trainer/serve.h).
//   cispo serve --model DIR [--tokenizer F] [--port 8000] [--host 127.0.0.1] [--slots 16] [--max-ctx N]
//               [--device cpu|cuda|auto]
//   curl http://127.0.0.1:8000/v1/chat/completions -d '{"messages": [{"role": "user", "content": "2+3="}]}'
// defines: cmd_serve_model (cmd_serve is taken: `cispo sandbox serve` has a static one)
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "base/common.h"
#include "kernels/backend.h"
#include "model/chat_template.h"
#include "model/infer.h"
#include "model/tokenizer.h"
#include "trainer/commands.h"
#include "trainer/keyconf.h"
#include "trainer/serve.h"
#include "trainer/train.h"

typedef struct {
    char model[4096], tokenizer[4096], chat_template[4096], name[256], host[256];
    int port, slots, max_ctx, prefill_tokens, device, max_queue;
    long long max_body, seed;
} serve_opts_t;

enum { DEV_CPU, DEV_CUDA, DEV_AUTO };

#define O(f) offsetof(serve_opts_t, f)
#define S(f) sizeof(((serve_opts_t *)0)->f)
static const keyconf_key_t serve_keys[] = {
    {"model", KEY_PATH, O(model), 0, 0, NULL, "", "an HF model directory or an .h5 checkpoint (a preset gives a random model)", S(model)},
    {"tokenizer", KEY_PATH, O(tokenizer), 0, 0, NULL, "", "tokenizer.json (empty: MODEL/tokenizer.json)", S(tokenizer)},
    {"chat-template", KEY_PATH, O(chat_template), 0, 0, NULL, "", "chat template (.jinja or tokenizer_config.json; empty: the model's, else the tokenizer's directory's)", S(chat_template)},
    {"served-model-name", KEY_STRING, O(name), 0, 0, NULL, "", "the model id clients send (empty: the model path's last component)", S(name)},
    {"host", KEY_STRING, O(host), 0, 0, NULL, "127.0.0.1", "IPv4 address to listen on (0.0.0.0: every interface)", S(host)},
    {"port", KEY_INT, O(port), 1, 65535, NULL, "8000", "TCP port", 0},
    {"slots", KEY_INT, O(slots), 1, 4096, NULL, "16", "sequences decoded together (continuous batching); more wait in a queue", 0},
    {"max-ctx", KEY_INT, O(max_ctx), 0, 1e7, NULL, "0", "prompt + completion tokens per sequence (0: the model's max_position_embeddings, at most 4096)", 0},
    {"prefill-tokens", KEY_INT, O(prefill_tokens), 0, 1e7, NULL, "0", "prompt tokens prefilled in one batch (0: max-ctx)", 0},
    {"device", KEY_CHOICE, O(device), 0, 0, "cpu|cuda|auto", "cpu", "where the model runs: cpu (the fp32 reference), cuda (bf16 activations), auto (cuda when a GPU is present)", 0},
    {"max-queue", KEY_INT, O(max_queue), 1, 1e6, NULL, "1024", "requests waiting for a slot before new ones get 503", 0},
    {"max-body", KEY_INT64, O(max_body), 1024, 1e10, NULL, "8388608", "largest request body in bytes (larger: 413)", 0},
    {"seed", KEY_INT64, O(seed), 0, 9.2e18, NULL, "1", "initialisation seed when --model is a preset", 0},
};
#undef O
#undef S

static const keyconf_cli_t serve_cli = {
    "cispo serve",
    "cispo serve --model DIR [--tokenizer F] [--port 8000] [--host 127.0.0.1] [--slots 16] [--max-ctx N] [--device cpu|cuda|auto]",
    "  An OpenAI-compatible HTTP server on the rollout engine: GET /v1/models, POST /v1/completions and\n"
    "  /v1/chat/completions (the model's chat template; tools passed to it), streaming, stop strings,\n"
    "  max_tokens, temperature, top_p, n, seed, logprobs. Requests from all clients are batched together\n"
    "  in --slots slots. SIGINT or SIGTERM stops it.",
    serve_keys, sizeof serve_keys / sizeof serve_keys[0], 0};

static int is_dir(const char *p) {
    struct stat st;
    return !stat(p, &st) && S_ISDIR(st.st_mode);
}

static int open_backend(backend_t *be, int want, int head_dim) {
    const char *note = NULL;
    int rc = backend_open(be, want == DEV_AUTO ? -1 : want == DEV_CUDA ? BACKEND_CUDA : BACKEND_CPU, 0, head_dim, "--device", &note);
    if (note) fprintf(stderr, "cispo serve: --device auto: %s\n", note);
    return rc;
}

// The chat template: --chat-template, else the model directory's, else the tokenizer's directory's.
static int load_template(const serve_opts_t *o, chat_template_t **ct) {
    *ct = NULL;
    if (o->chat_template[0]) return (*ct = chat_template_load_file(o->chat_template)) ? 0 : -1;
    if (is_dir(o->model)) {
        int rc = chat_template_load_dir(o->model, ct);
        if (rc <= 0) return rc;
    }
    if (o->tokenizer[0]) {
        char dir[4096];
        snprintf(dir, sizeof dir, "%s", o->tokenizer);
        char *slash = strrchr(dir, '/');
        if (slash) *slash = 0;
        else snprintf(dir, sizeof dir, ".");
        if (chat_template_load_dir(dir, ct) < 0) return -1;
    }
    return 0;
}

int cmd_serve_model(int argc, char **argv) {
    serve_opts_t *o = cispo_calloc(1, sizeof *o);
    keyconf_defaults(o, serve_keys, serve_cli.n_keys);
    int prc = keyconf_parse_cli(&serve_cli, o, argc, argv, NULL, NULL, NULL);
    if (prc) {
        if (prc < 0) fprintf(stderr, "cispo serve: %s\n", cispo_last_error());
        free(o);
        return prc < 0 ? 2 : 0;
    }
    if (!o->model[0]) {
        fprintf(stderr, "cispo serve: give --model DIR (`cispo serve --help`)\n");
        free(o);
        return 2;
    }
    model_config_t cfg;
    float *params = NULL;
    tokenizer_t *tok = NULL;
    chat_template_t *tmpl = NULL;
    backend_t be;
    int be_open = 0, rc = 1;
    model_t *m = NULL;
    infer_t *e = NULL;
    serve_engine_t *g = NULL;
    if (train_load_model(o->model, (uint64_t)o->seed, &cfg, &params)) goto out;
    if (!(tok = train_load_tokenizer(o->tokenizer, o->model))) goto out;
    if (tokenizer_vocab_size(tok) > cfg.vocab_size)
        fprintf(stderr, "cispo serve: warning: the tokenizer has %d ids, the model %d: ids past the model's are never generated\n",
                tokenizer_vocab_size(tok), cfg.vocab_size);
    if (load_template(o, &tmpl)) goto out;
    if (!tmpl) fprintf(stderr, "cispo serve: warning: no chat template found: /v1/chat/completions will refuse requests (give --chat-template)\n");
    int max_ctx = o->max_ctx ? o->max_ctx : cfg.max_position_embeddings < 4096 ? cfg.max_position_embeddings : 4096;
    int prefill = o->prefill_tokens ? o->prefill_tokens : max_ctx;
    if (prefill < max_ctx) {
        cispo_fail("--prefill-tokens %d is shorter than --max-ctx %d: a long prompt could never be prefilled", prefill, max_ctx);
        goto out;
    }
    if (open_backend(&be, o->device, cfg.head_dim)) goto out;
    be_open = 1;
    // the plan covers a prefill batch and a decode step of every slot; forward only (MODEL_FORWARD_ONLY: one
    // layer's activations, no gradients, on a GPU the bf16 weights alone)
    m = model_create_experts(&be, &cfg, NULL, prefill > o->slots ? prefill : o->slots, 0, cfg.n_experts,
                             MODEL_FORWARD_ONLY);
    model_load_params(m, params);
    free(params), params = NULL;
    e = infer_create(m, o->slots, max_ctx);
    int32_t eos = tokenizer_eos_id(tok) >= 0 ? tokenizer_eos_id(tok) : cfg.eos_token_id;
    if (eos < 0) fprintf(stderr, "cispo serve: warning: no end-of-sequence token known: every completion runs to max_tokens or a stop string\n");
    g = serve_engine_create(e, tok, eos, o->max_queue);
    char name[256];
    if (o->name[0]) snprintf(name, sizeof name, "%.255s", o->name);
    else {
        char path[4096];
        snprintf(path, sizeof path, "%s", o->model);
        size_t n = strlen(path);
        while (n > 1 && path[n - 1] == '/') path[--n] = 0;
        const char *base = strrchr(path, '/');
        snprintf(name, sizeof name, "%.255s", base ? base + 1 : path);
    }
    serve_config_t sc = {.engine = g, .tok = tok, .tmpl = tmpl, .model_name = name, .vocab_size = cfg.vocab_size,
                         .max_ctx = max_ctx, .max_body = (size_t)o->max_body, .created = (long)time(NULL)};
    fprintf(stderr, "cispo serve: %s on %s: %d slots of %d tokens, prefill batches of %d tokens%s%s\n", name,
            backend_name(be.kind), o->slots, max_ctx, prefill, tmpl ? ", chat template " : "", tmpl ? tmpl->origin : "");
    rc = serve_http_run(&sc, o->host, o->port);
    long nreq, ntok;
    int batch;
    serve_engine_totals(g, &nreq, &ntok, &batch);
    fprintf(stderr, "cispo serve: stopped after %ld requests, %ld tokens generated, at most %d sequences decoded together\n",
            nreq, ntok, batch);
out:
    if (rc && cispo_last_error()[0]) fprintf(stderr, "cispo serve: %s\n", cispo_last_error());
    serve_engine_free(g);
    if (e) infer_free(e);
    if (m) model_free(m);
    if (be_open) backend_release(&be);
    free(params);
    if (tok) tokenizer_free(tok);
    chat_template_free(tmpl);
    free(o);
    return rc;
}
