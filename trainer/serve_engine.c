// trainer/serve_engine.c — the engine of `cispo serve` (serve.h), run by the main thread: a FIFO of
// requests, continuous batching over the infer_t's slots, sampling, stop rules, and the hand-over of
// each token to the HTTP threads.
// defines: serve_engine_create, serve_engine_run, serve_engine_stop, serve_engine_free, serve_engine_submit,
//          serve_engine_wait, serve_engine_lock, serve_engine_unlock, serve_request_new, serve_request_alloc_choices, serve_request_release,
//          serve_choice_stable, serve_engine_totals
//
// The loop, as rl/rollout.c's but open-ended: admit waiting choices into free slots (one batched
// prefill, within the model's prefill budget), decode one token for every active sequence, sample
// each row on the model's backend with its own seed (kernels/ops.h sample_tokens: the counter-based
// draw, so a choice's samples do not depend on what runs beside it; logits come to the host only
// for requests that ask top_logprobs), apply the stop rules (end-of-sequence token, stop strings, the
// length budget), free finished slots and their KV blocks. The model runs without the lock; results
// are handed over under it.
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/common.h"
#include "base/utf8.h"
#include "trainer/serve.h"

typedef struct {
    serve_request_t *req;  // NULL: free
    int ch;                // choice index in req
    int32_t next;          // token to feed at the next decode step
} slot_t;

struct serve_engine {
    infer_t *e;
    int V, B, eos_id, max_queue;
    pthread_mutex_t mu;
    pthread_cond_t work;       // signalled when a request is queued or the engine must stop
    int stopping;
    serve_request_t *head, *tail;
    int queued;
    slot_t *slots;             // [B]
    const tokenizer_t *tok;
    long n_requests, n_tokens;
    int max_batch;             // most sequences decoded together
};

void serve_engine_lock(serve_engine_t *g) { pthread_mutex_lock(&g->mu); }
void serve_engine_unlock(serve_engine_t *g) { pthread_mutex_unlock(&g->mu); }
void serve_engine_wait(serve_engine_t *g, serve_request_t *r) { pthread_cond_wait(&r->cond, &g->mu); }

void serve_engine_totals(serve_engine_t *g, long *requests, long *tokens, int *max_batch) {
    pthread_mutex_lock(&g->mu);
    *requests = g->n_requests, *tokens = g->n_tokens, *max_batch = g->max_batch;
    pthread_mutex_unlock(&g->mu);
}

serve_request_t *serve_request_new(void) {
    serve_request_t *r = cispo_calloc(1, sizeof *r);
    r->refs = 1;
    r->n = 1;
    pthread_cond_init(&r->cond, NULL);
    return r;
}

void serve_request_alloc_choices(serve_request_t *r) {
    r->n_choices = r->n_prompts * r->n;
    r->ch = cispo_calloc((size_t)r->n_choices, sizeof(serve_choice_t));
    const size_t M = (size_t)r->max_tokens, K = (size_t)r->top_logprobs;
    for (int i = 0; i < r->n_choices; i++) {
        serve_choice_t *c = &r->ch[i];
        c->prompt = i / r->n;
        c->tokens = cispo_malloc(M * sizeof(int32_t));
        c->logp = cispo_malloc(M * sizeof(float));
        c->text_end = cispo_malloc(M * sizeof(size_t));
        if (K) c->top_ids = cispo_malloc(M * K * sizeof(int32_t)), c->top_lp = cispo_malloc(M * K * sizeof(float));
        buf_init(&c->text);
        // the same seed gives the same samples; choice i of a request draws from stream i
        c->rng = sampler_rng_seed(r->seed, (uint64_t)i);
    }
}

static void request_free(serve_request_t *r) {
    for (int i = 0; i < r->n_prompts; i++) free(r->prompts ? r->prompts[i] : NULL);
    free(r->prompts);
    free(r->prompt_lens);
    for (int i = 0; i < r->n_stop; i++) free(r->stop[i]);
    free(r->stop);
    for (int i = 0; i < r->n_choices; i++) {
        serve_choice_t *c = &r->ch[i];
        free(c->tokens), free(c->logp), free(c->text_end), free(c->top_ids), free(c->top_lp);
        buf_free(&c->text);
    }
    free(r->ch);
    pthread_cond_destroy(&r->cond);
    free(r);
}

// With the lock held.
static void unref(serve_request_t *r) {
    if (--r->refs == 0) request_free(r);
}

void serve_request_release(serve_engine_t *g, serve_request_t *r) {
    if (!r) return;
    if (!g) {  // never submitted
        request_free(r);
        return;
    }
    pthread_mutex_lock(&g->mu);
    r->cancelled = 1;
    unref(r);
    pthread_mutex_unlock(&g->mu);
}

int serve_engine_submit(serve_engine_t *g, serve_request_t *r, char *msg, size_t cap) {
    pthread_mutex_lock(&g->mu);
    int rc = 0;
    if (g->stopping) {
        snprintf(msg, cap, "the server is shutting down");
        rc = -1;
    } else if (g->queued >= g->max_queue) {
        snprintf(msg, cap, "the server is overloaded: %d requests are waiting (--max-queue); retry later", g->queued);
        rc = -1;
    } else {
        r->refs++;
        r->next = NULL;
        if (g->tail) g->tail->next = r;
        else g->head = r;
        g->tail = r;
        g->queued++;
        g->n_requests++;
        pthread_cond_signal(&g->work);
    }
    pthread_mutex_unlock(&g->mu);
    return rc;
}

// ---- stop rules and text ----

// The first occurrence of any stop string in text[from, n): its offset, or (size_t)-1.
static size_t find_stop(const serve_request_t *r, const char *text, size_t n, size_t from) {
    size_t best = (size_t)-1;
    for (int k = 0; k < r->n_stop; k++) {
        const char *s = r->stop[k];
        size_t m = strlen(s);
        for (size_t i = from; i + m <= n && i < best; i++)
            if (text[i] == s[0] && !memcmp(text + i, s, m)) {
                best = i;
                break;
            }
    }
    return best;
}

size_t serve_choice_stable(const serve_request_t *r, const serve_choice_t *c) {
    size_t n = c->text.n;
    if (c->finish) return n;
    // hold back the longest tail that a stop string could still begin with
    size_t hold = 0;
    for (int k = 0; k < r->n_stop; k++) {
        size_t m = strlen(r->stop[k]);
        for (size_t h = m - 1 < n ? m - 1 : n; h > hold; h--)
            if (!memcmp(c->text.s + n - h, r->stop[k], h)) {
                hold = h;
                break;
            }
    }
    n -= hold;
    // and an incomplete character at the end: wait for its continuation bytes
    size_t start = n;
    while (start > 0 && n - start < 4 && utf8_is_cont((unsigned char)c->text.s[start - 1])) start--;
    if (start > 0) {
        unsigned char lead = (unsigned char)c->text.s[--start];
        size_t want = lead >= 0xF0 ? 4 : lead >= 0xE0 ? 3 : lead >= 0xC0 ? 2 : 1;
        if (n - start < want) n = start;
    }
    return n;
}

// log-softmax of logits [V] at the k most likely tokens (ties: lowest id), best first.
static void top_logprobs(const float *logits, int V, int k, int32_t *ids, float *lp) {
    double mx = -INFINITY, sum = 0;
    for (int v = 0; v < V; v++) mx = logits[v] > mx ? logits[v] : mx;
    for (int v = 0; v < V; v++) sum += exp((double)logits[v] - mx);
    double lse = mx + log(sum);
    int n = 0;
    for (int v = 0; v < V; v++) {
        if (n == k && logits[v] <= logits[ids[n - 1]]) continue;
        int j = n < k ? n++ : k - 1;
        while (j > 0 && logits[ids[j - 1]] < logits[v]) ids[j] = ids[j - 1], j--;
        ids[j] = v;
    }
    for (int j = 0; j < n; j++) lp[j] = (float)((double)logits[ids[j]] - lse);
}

// Appends the text of c's last token: the decode of a few tokens ending with it less the decode of the
// same tokens without it, so that decoders which act on a token's neighbours or on the first token
// (Metaspace's leading space) give what decoding the whole sequence gives. Raw bytes: a character
// split over tokens is whole once its last token is in (serve_choice_stable holds the part back).
static void append_piece(serve_engine_t *g, serve_choice_t *c) {
    int n = c->n_tokens, from = n > 4 ? n - 4 : 0;
    size_t lp = 0, lc = 0;
    const int32_t *w = c->tokens + from;
    char *prev = n - 1 > from ? tokenizer_decode(g->tok, w, (size_t)(n - 1 - from), TOKENIZER_SKIP_SPECIAL, &lp) : NULL;
    char *cur = tokenizer_decode(g->tok, w, (size_t)(n - from), TOKENIZER_SKIP_SPECIAL, &lc);
    if (!prev) lp = 0;
    if (cur && lc >= lp && (!lp || !memcmp(cur, prev, lp))) buf_append(&c->text, cur + lp, lc - lp);
    else if (cur) buf_append(&c->text, cur, lc);  // a decoder that rewrites its input: the whole window's text
    free(prev);
    free(cur);
}

// Records token tok of slot s (lock held); returns 1 when the sequence is finished.
static int take_token(serve_engine_t *g, slot_t *s, int32_t tok, float lp, const float *logits) {
    serve_request_t *r = s->req;
    serve_choice_t *c = &r->ch[s->ch];
    int i = c->n_tokens++;
    c->tokens[i] = tok;
    c->logp[i] = lp;
    if (r->top_logprobs)
        top_logprobs(logits, g->V, r->top_logprobs, c->top_ids + (size_t)i * r->top_logprobs,
                     c->top_lp + (size_t)i * r->top_logprobs);
    s->next = tok;
    g->n_tokens++;
    if (g->eos_id >= 0 && tok == g->eos_id) {
        c->text_end[i] = c->text.n;
        c->eos = 1;
        return c->finish = SERVE_FINISH_STOP, 1;
    }
    size_t before = c->text.n;
    append_piece(g, c);
    c->text_end[i] = c->text.n;
    if (r->n_stop) {
        size_t longest = 0;
        for (int k = 0; k < r->n_stop; k++) longest = strlen(r->stop[k]) > longest ? strlen(r->stop[k]) : longest;
        size_t from = before + 1 > longest ? before + 1 - longest : 0;
        size_t at = find_stop(r, c->text.s, c->text.n, from);
        if (at != (size_t)-1) {
            c->text.n = at;
            c->text.s[at] = 0;
            for (int j = 0; j <= i; j++) c->text_end[j] = c->text_end[j] > at ? at : c->text_end[j];
            return c->finish = SERVE_FINISH_STOP, 1;
        }
    }
    if (c->n_tokens >= r->max_tokens) return c->finish = SERVE_FINISH_LENGTH, 1;
    return 0;
}

// A choice is over (lock held): wake its readers, free the slot, drop the engine's reference when the
// request has no choice left.
static void finish_slot(serve_engine_t *g, slot_t *s, int how) {
    serve_request_t *r = s->req;
    infer_release(g->e, (int)(s - g->slots));  // its KV blocks go back to the pool at once
    if (how) r->ch[s->ch].finish = how;
    r->n_finished++;
    pthread_cond_broadcast(&r->cond);
    if (r->n_finished == r->n_choices) unref(r);
    s->req = NULL;
}

// Fails whatever remains of a queued request (lock held) and takes it off the queue.
static void drop_queued(serve_engine_t *g, serve_request_t *r, const char *why) {
    if (why && !r->error[0]) snprintf(r->error, sizeof r->error, "%s", why);
    for (int i = r->next_choice; i < r->n_choices; i++) r->ch[i].finish = SERVE_FINISH_ERROR;
    r->n_finished += r->n_choices - r->next_choice;
    r->next_choice = r->n_choices;
    g->head = r->next;
    if (!g->head) g->tail = NULL;
    g->queued--;
    pthread_cond_broadcast(&r->cond);
    if (r->n_finished == r->n_choices) unref(r);
}

static void fail_active(serve_engine_t *g, const char *why) {
    for (int b = 0; b < g->B; b++)
        if (g->slots[b].req) {
            serve_request_t *r = g->slots[b].req;
            if (!r->error[0]) snprintf(r->error, sizeof r->error, "%s", why);
            finish_slot(g, &g->slots[b], SERVE_FINISH_ERROR);
        }
}

// The slot's sampling parameters for the device sampler: the request's rule and the choice's seed;
// the stop rules (EOS, max_tokens, stop strings) stay with take_token, so the device judges none.
static void sample_begin(serve_engine_t *g, int b) {
    const slot_t *s = &g->slots[b];
    const sampler_config_t *c = &s->req->sampler;
    sample_slot_t p = {.seed = s->req->ch[s->ch].rng, .temperature = c->temperature, .top_p = c->top_p,
                       .top_k = c->top_k, .greedy = c->greedy, .tempered_logp = c->tempered_logp, .eos_id = -1,
                       .max_new = 0x7fffffff};
    infer_sample_begin(g->e, b, &p);
}

// Whether any of the n slots ids[] wants the step's logits on the host (top_logprobs).
static int want_logits(const serve_engine_t *g, const int *ids, int n) {
    for (int j = 0; j < n; j++)
        if (g->slots[ids[j]].req->top_logprobs) return 1;
    return 0;
}

void serve_engine_run(serve_engine_t *g) {
    infer_t *e = g->e;
    const int V = g->V, B = g->B;
    float *logits = cispo_malloc(sizeof(float) * (size_t)B * V);
    int32_t *done = cispo_malloc(sizeof(int32_t) * (size_t)B);
    int *ids = cispo_malloc(sizeof(int) * (size_t)B), *lens = cispo_malloc(sizeof(int) * (size_t)B);
    const int32_t **pp = cispo_malloc(sizeof(*pp) * (size_t)B);
    int32_t *toks = cispo_malloc(sizeof(int32_t) * (size_t)B), *picked = cispo_malloc(sizeof(int32_t) * (size_t)B);
    float *lps = cispo_malloc(sizeof(float) * (size_t)B);
    pthread_mutex_lock(&g->mu);
    while (!g->stopping) {
        // cancelled requests (a streaming client went away) give their slots back
        for (int b = 0; b < B; b++)
            if (g->slots[b].req && g->slots[b].req->cancelled) finish_slot(g, &g->slots[b], SERVE_FINISH_ERROR);
        // admit waiting choices into free slots, in arrival order, as many as the prefill budget takes
        int k = 0, budget = e->m->max_tokens, active = 0;
        for (int b = 0; b < B; b++) active += g->slots[b].req != NULL;
        for (int b = 0; b < B && g->head; b++) {
            if (g->slots[b].req) continue;
            serve_request_t *r = g->head;
            if (r->cancelled) {
                drop_queued(g, r, NULL);
                b--;
                continue;
            }
            int len = r->prompt_lens[r->ch[r->next_choice].prompt];
            if (len > budget) break;
            budget -= len;
            g->slots[b] = (slot_t){r, r->next_choice, 0};
            ids[k] = b, pp[k] = r->prompts[r->ch[r->next_choice].prompt], lens[k] = len, k++;
            if (++r->next_choice == r->n_choices) {
                g->head = r->next;
                if (!g->head) g->tail = NULL;
                g->queued--;
            }
        }
        if (k == 0 && active == 0) {
            pthread_cond_wait(&g->work, &g->mu);
            continue;
        }
        // the slots' choices stay valid without the lock: only this thread finishes them
        pthread_mutex_unlock(&g->mu);
        int rc = 0;
        int host = 0;
        if (k > 0) {
            for (int j = 0; j < k; j++) sample_begin(g, ids[j]);
            host = want_logits(g, ids, k);
            rc = infer_prefill(e, ids, pp, lens, k, host ? logits : NULL);
            if (!rc) infer_sample(e, ids, k, picked, lps, done);
            pthread_mutex_lock(&g->mu);
            if (rc) {
                fail_active(g, cispo_last_error());
                continue;
            }
            for (int j = 0; j < k; j++)
                if (take_token(g, &g->slots[ids[j]], picked[j], lps[j], host ? logits + (size_t)j * V : NULL))
                    finish_slot(g, &g->slots[ids[j]], 0);
                else
                    pthread_cond_broadcast(&g->slots[ids[j]].req->cond);
            pthread_mutex_unlock(&g->mu);
        }
        // one decode step for every active sequence
        int m = 0;
        for (int b = 0; b < B; b++)
            if (g->slots[b].req) ids[m] = b, toks[m] = g->slots[b].next, m++;
        host = m > 0 && want_logits(g, ids, m);
        if (m > 0) {
            rc = infer_decode(e, ids, toks, m, host ? logits : NULL);
            if (!rc) infer_sample(e, ids, m, picked, lps, done);
        }
        pthread_mutex_lock(&g->mu);
        if (rc) {
            fail_active(g, cispo_last_error());
            continue;
        }
        g->max_batch = m > g->max_batch ? m : g->max_batch;
        for (int j = 0; j < m; j++)
            if (take_token(g, &g->slots[ids[j]], picked[j], lps[j], host ? logits + (size_t)j * V : NULL))
                finish_slot(g, &g->slots[ids[j]], 0);
            else
                pthread_cond_broadcast(&g->slots[ids[j]].req->cond);
    }
    // shutting down: nothing more will be generated
    fail_active(g, "the server is shutting down");
    while (g->head) drop_queued(g, g->head, "the server is shutting down");
    pthread_mutex_unlock(&g->mu);
    free(logits), free(done), free(ids), free(lens), free(pp), free(toks), free(picked), free(lps);
}

serve_engine_t *serve_engine_create(infer_t *e, const tokenizer_t *tok, int eos_id, int max_queue) {
    serve_engine_t *g = cispo_calloc(1, sizeof *g);
    g->e = e;
    g->V = e->m->cfg.vocab_size;
    g->B = e->max_slots;
    g->eos_id = eos_id;
    g->max_queue = max_queue;
    g->slots = cispo_calloc((size_t)g->B, sizeof(slot_t));
    g->tok = tok;
    pthread_mutex_init(&g->mu, NULL);
    pthread_cond_init(&g->work, NULL);
    return g;
}

void serve_engine_stop(serve_engine_t *g) {
    pthread_mutex_lock(&g->mu);
    g->stopping = 1;
    pthread_cond_signal(&g->work);
    pthread_mutex_unlock(&g->mu);
}

void serve_engine_free(serve_engine_t *g) {
    if (!g) return;
    pthread_mutex_destroy(&g->mu);
    pthread_cond_destroy(&g->work);
    free(g->slots);
    free(g);
}
