// trainer/serve.h — `cispo serve`: an OpenAI-compatible HTTP server on the rollout engine.
// defines: serve_request_t, serve_choice_t, serve_engine_t, serve_engine_create, serve_engine_run,
//          serve_engine_stop, serve_engine_free, serve_engine_submit, serve_engine_wait, serve_engine_lock, serve_engine_unlock,
//          serve_request_new, serve_request_release, serve_choice_stable, serve_config_t, serve_http_run,
//          serve_api_* (OpenAI request parsing and response bodies)
//
// Threads: one engine thread (the main thread) owns the infer_t and its slots (serve_engine.c);
// libmicrohttpd runs one thread per connection (serve_http.c). A handler parses the body into a serve_request_t
// (serve_api.c), submits it and then waits on the request's condition variable (or, streaming, reads
// what has been generated so far each time the client can take more). The engine admits waiting
// choices into free slots with one batched prefill, decodes one token for every active sequence per
// step, and frees a slot as soon as its sequence finishes: continuous batching across clients.
// A choice's results change only under the engine lock (serve_engine_lock), so readers take it too.
//
// Every sequence samples from its own generator, seeded from (request seed, choice index), and the
// CPU engine computes each row of a batch alone, so a request gets the same tokens whatever else is
// being served beside it.
#ifndef CISPO_TRAINER_SERVE_H
#define CISPO_TRAINER_SERVE_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#include "base/buf.h"
#include "model/chat_template.h"
#include "model/infer.h"
#include "model/tokenizer.h"
#include "rl/sampler.h"

enum serve_finish { SERVE_RUNNING = 0, SERVE_FINISH_STOP, SERVE_FINISH_LENGTH, SERVE_FINISH_ERROR };

#define SERVE_MAX_TOP_LOGPROBS 20

// One generated sequence of a request (a request of n prompts asking n choices each has n*n of them).
typedef struct {
    int prompt;          // which of the request's prompts it continues
    int32_t *tokens;     // [max_tokens] generated ids (the end-of-sequence token, when reached, included)
    float *logp;         // [max_tokens] log pi(token) under the untempered model
    int32_t *top_ids;    // [max_tokens, top_logprobs] the most likely tokens at each step (when asked)
    float *top_lp;       // [max_tokens, top_logprobs] their log-probs
    size_t *text_end;    // [max_tokens] bytes of `text` once token i is in (at most the cut at a stop string)
    int n_tokens;
    int eos;             // 1: the last token is the end-of-sequence token (no text)
    buf_t text;          // generated text, raw bytes (special tokens left out; cut before a stop string)
    int finish;          // enum serve_finish
    // engine-private
    uint64_t rng;
} serve_choice_t;

typedef struct serve_request {
    // filled by serve_api_parse_* (or a caller) before serve_engine_submit
    int n_prompts;
    int32_t **prompts;   // [n_prompts] token ids
    int *prompt_lens;    // [n_prompts]
    int n;               // choices per prompt
    int max_tokens;      // per choice
    sampler_config_t sampler;
    uint64_t seed;
    char **stop;         // [n_stop] stop strings (non-empty)
    int n_stop;
    int logprobs;        // 1: report each token's log-prob
    int top_logprobs;    // alternatives per position, 0..SERVE_MAX_TOP_LOGPROBS
    int stream, include_usage, chat;
    // results, under the engine lock
    int n_choices;       // n_prompts * n
    serve_choice_t *ch;
    int n_finished;
    char error[256];     // set when the engine failed the request (shutting down, an engine error)
    // engine-private
    int refs, cancelled, next_choice;
    pthread_cond_t cond;
    struct serve_request *next;
} serve_request_t;

typedef struct serve_engine serve_engine_t;

// The engine over e (slots = e->max_slots). tok gives each token's text (special tokens left out),
// eos_id ends a sequence (-1: none). Requests beyond max_queue waiting ones are refused.
serve_engine_t *serve_engine_create(infer_t *e, const tokenizer_t *tok, int eos_id, int max_queue);
// The engine loop, on the calling thread (the main thread: the CPU ops keep per-thread scratch arenas
// that a thread's exit would not free) until serve_engine_stop; then it fails every waiting and
// running request ("the server is shutting down") and returns.
void serve_engine_run(serve_engine_t *g);
// Asks the loop to stop (any thread); later submissions are refused.
void serve_engine_stop(serve_engine_t *g);
// Frees it, once the loop has returned and no HTTP thread holds a request.
void serve_engine_free(serve_engine_t *g);
// A request with room for its results (refs = 1: the caller's). Fields above "results" are then set by
// the caller; serve_request_alloc_choices sizes the choices once n_prompts, n, max_tokens and
// top_logprobs are known.
serve_request_t *serve_request_new(void);
void serve_request_alloc_choices(serve_request_t *r);
// Queues r (the engine takes its own reference). Returns 0, or -1 with msg set when the queue is full
// or the server is stopping (HTTP 503).
int serve_engine_submit(serve_engine_t *g, serve_request_t *r, char *msg, size_t cap);
void serve_engine_lock(serve_engine_t *g);
void serve_engine_unlock(serve_engine_t *g);
// With the lock held: waits until the engine has added to r (a token, a finish, an error).
void serve_engine_wait(serve_engine_t *g, serve_request_t *r);
// Drops the caller's reference; a request still running is cancelled (its slots are freed at the next step).
void serve_request_release(serve_engine_t *g, serve_request_t *r);
// With the lock held: how many bytes of c->text can be shown now (all once finished; while running,
// short of a possible start of a stop string and of an incomplete UTF-8 character).
size_t serve_choice_stable(const serve_request_t *r, const serve_choice_t *c);
// Served totals (for the shutdown line): requests, tokens generated, most sequences decoded together.
void serve_engine_totals(serve_engine_t *g, long *requests, long *tokens, int *max_batch);

// ---- the HTTP API (serve_api.c: OpenAI request parsing and response bodies) ----
typedef struct {
    serve_engine_t *engine;
    const tokenizer_t *tok;
    const chat_template_t *tmpl;  // NULL: /v1/chat/completions answers that the model has none
    const char *model_name;       // the id clients send as "model"
    int vocab_size, max_ctx;
    size_t max_body;              // request bodies over this are refused (413)
    long created;                 // unix time the server started ("created" of /v1/models)
} serve_config_t;

// An OpenAI-style error: HTTP status, type, param (or NULL), code (or NULL) and message.
typedef struct {
    int status;
    const char *type, *param, *code;
    char message[512];
} serve_error_t;

// Parses a /v1/completions (chat = 0) or /v1/chat/completions (chat = 1) body into a new request.
// NULL with *err filled on a bad request.
serve_request_t *serve_api_parse(const serve_config_t *s, const char *body, size_t len, int chat, serve_error_t *err);
// The body of the error (a new string).
char *serve_api_error_json(const serve_error_t *e);
// The whole (non-streamed) response of a finished request (a new string). id: "cmpl-..." or "chatcmpl-...".
char *serve_api_response(const serve_config_t *s, const serve_request_t *r, const char *id, long created);
// GET /v1/models, GET /v1/models/{id} (NULL when the id is not served).
char *serve_api_models(const serve_config_t *s, const char *id);
// Streaming, under the engine lock: appends the SSE events of what is new in r since the state st last
// saw (role, text, log-probs, finishes, usage, [DONE]); returns 1 once the stream is complete.
typedef struct {
    size_t *sent;        // [n_choices] bytes of text sent
    int *sent_tokens;    // [n_choices] tokens whose log-probs were sent
    unsigned char *began, *ended;  // [n_choices] role chunk / finish chunk sent
    int done;
} serve_stream_t;
int serve_api_stream(const serve_config_t *s, const serve_request_t *r, serve_stream_t *st, const char *id, long created,
                     buf_t *out);

// Listens on host:port until SIGINT or SIGTERM. Returns 0, or 1 when it cannot listen.
int serve_http_run(const serve_config_t *s, const char *host, int port);

#endif
