// trainer/serve_api.c — the OpenAI API of `cispo serve` (serve.h): request bodies of /v1/completions and
// /v1/chat/completions parsed and checked into engine requests, and the response bodies (whole, or as
// server-sent events), errors as OpenAI writes them.
// defines: serve_api_parse, serve_api_error_json, serve_api_response, serve_api_models, serve_api_stream
//
// Fields: model, prompt (a string, token ids, or a list of either) | messages (+ tools, passed to the
// chat template, and chat_template_kwargs), max_tokens (chat also max_completion_tokens), temperature
// (0: greedy), top_p, top_k, n, seed, stop (a string or a list), stream (+ stream_options.include_usage),
// logprobs (completions: a count of alternatives; chat: a flag with top_logprobs). Other fields are
// ignored, as OpenAI-compatible servers do. Statuses: 400 malformed JSON or a value out of range or a
// prompt too long, 422 a field of the wrong type or a required field missing, 404 a model not served.
#include <cjson/cJSON.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/common.h"
#include "base/utf8.h"
#include "trainer/serve.h"

static int fail(serve_error_t *e, int status, const char *param, const char *code, const char *fmt, ...)
    CISPO_PRINTF(5, 6);
static int fail(serve_error_t *e, int status, const char *param, const char *code, const char *fmt, ...) {
    e->status = status;
    e->type = status == 503 ? "server_error" : "invalid_request_error";
    e->param = param;
    e->code = code;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e->message, sizeof e->message, fmt, ap);
    va_end(ap);
    return -1;
}

char *serve_api_error_json(const serve_error_t *e) {
    cJSON *o = cJSON_CreateObject(), *x = cJSON_AddObjectToObject(o, "error");
    cJSON_AddStringToObject(x, "message", e->message);
    cJSON_AddStringToObject(x, "type", e->type ? e->type : "invalid_request_error");
    if (e->param) cJSON_AddStringToObject(x, "param", e->param);
    else cJSON_AddNullToObject(x, "param");
    if (e->code) cJSON_AddStringToObject(x, "code", e->code);
    else cJSON_AddNullToObject(x, "code");
    char *s = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    return s;
}

static const char *json_type(const cJSON *v) {
    return cJSON_IsString(v) ? "a string" : cJSON_IsNumber(v) ? "a number" : cJSON_IsBool(v) ? "a boolean" :
           cJSON_IsArray(v) ? "an array" : cJSON_IsObject(v) ? "an object" : "null";
}

// Optional fields: 0 absent or null (the default stays), 1 set, -1 wrong type (422) or out of range (400).
static int get_number(const cJSON *o, const char *name, double lo, double hi, double *out, serve_error_t *e) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);
    if (!v || cJSON_IsNull(v)) return 0;
    if (!cJSON_IsNumber(v))
        return fail(e, 422, name, "invalid_type", "Invalid type for '%s': expected a number, but got %s instead.", name,
                    json_type(v));
    if (!(v->valuedouble >= lo && v->valuedouble <= hi))
        return fail(e, 400, name, "invalid_value", "Invalid value for '%s': %g is outside [%g, %g].", name, v->valuedouble,
                    lo, hi);
    *out = v->valuedouble;
    return 1;
}

static int get_int(const cJSON *o, const char *name, double lo, double hi, long long *out, serve_error_t *e) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);
    if (v && cJSON_IsNumber(v) && v->valuedouble != floor(v->valuedouble))
        return fail(e, 422, name, "invalid_type", "Invalid type for '%s': expected an integer, but got %g instead.", name,
                    v->valuedouble);
    if (v && !cJSON_IsNull(v) && !cJSON_IsNumber(v))
        return fail(e, 422, name, "invalid_type", "Invalid type for '%s': expected an integer, but got %s instead.", name,
                    json_type(v));
    double d = 0;
    int rc = get_number(o, name, lo, hi, &d, e);
    if (rc == 1) *out = (long long)d;
    return rc;
}

static int get_bool(const cJSON *o, const char *name, int *out, serve_error_t *e) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);
    if (!v || cJSON_IsNull(v)) return 0;
    if (!cJSON_IsBool(v))
        return fail(e, 422, name, "invalid_type", "Invalid type for '%s': expected a boolean, but got %s instead.", name,
                    json_type(v));
    *out = cJSON_IsTrue(v);
    return 1;
}

// ---- prompts ----

static int add_prompt(serve_request_t *r, int32_t *ids, int n) {
    r->prompts = cispo_realloc(r->prompts, sizeof(int32_t *) * (size_t)(r->n_prompts + 1));
    r->prompt_lens = cispo_realloc(r->prompt_lens, sizeof(int) * (size_t)(r->n_prompts + 1));
    r->prompts[r->n_prompts] = ids;
    r->prompt_lens[r->n_prompts] = n;
    return r->n_prompts++;
}

static int encode_text(const serve_config_t *s, serve_request_t *r, const char *text, size_t len, int flags,
                       const char *param, serve_error_t *e) {
    token_ids_t t = {0};
    if (tokenizer_encode(s->tok, text, len, &t, flags)) {
        token_ids_free(&t);
        return fail(e, 400, param, "invalid_value", "Invalid '%s': %s", param, cispo_last_error());
    }
    if (t.n == 0) {
        token_ids_free(&t);
        return fail(e, 400, param, "invalid_value", "Invalid '%s': the prompt encodes to no tokens.", param);
    }
    add_prompt(r, t.ids, (int)t.n);
    return 0;
}

static int token_prompt(const serve_config_t *s, serve_request_t *r, const cJSON *a, serve_error_t *e) {
    int n = cJSON_GetArraySize(a);
    if (n == 0) return fail(e, 400, "prompt", "invalid_value", "Invalid 'prompt': an empty list of token ids.");
    int32_t *ids = cispo_malloc(sizeof(int32_t) * (size_t)n);
    int i = 0;
    for (const cJSON *v = a->child; v; v = v->next, i++) {
        if (!cJSON_IsNumber(v) || v->valuedouble != floor(v->valuedouble)) {
            free(ids);
            return fail(e, 422, "prompt", "invalid_type", "Invalid 'prompt[%d]': expected a token id (an integer).", i);
        }
        if (v->valuedouble < 0 || v->valuedouble >= s->vocab_size) {
            free(ids);
            return fail(e, 400, "prompt", "invalid_value", "Invalid 'prompt[%d]': token id %g is outside the vocabulary [0, %d).",
                        i, v->valuedouble, s->vocab_size);
        }
        ids[i] = (int32_t)v->valuedouble;
    }
    add_prompt(r, ids, n);
    return 0;
}

// "prompt": a string, token ids, a list of strings or a list of token-id lists.
static int parse_prompt(const serve_config_t *s, serve_request_t *r, const cJSON *p, serve_error_t *e) {
    if (!p) return fail(e, 422, "prompt", "missing_required_parameter", "Missing required parameter: 'prompt'.");
    if (cJSON_IsString(p)) return encode_text(s, r, p->valuestring, strlen(p->valuestring), TOKENIZER_ADD_SPECIAL, "prompt", e);
    if (!cJSON_IsArray(p) || cJSON_GetArraySize(p) == 0)
        return fail(e, cJSON_IsArray(p) ? 400 : 422, "prompt", "invalid_type",
                    "Invalid 'prompt': expected a string, a list of token ids or a list of either, but got %s.",
                    cJSON_IsArray(p) ? "an empty list" : json_type(p));
    if (cJSON_IsNumber(p->child)) return token_prompt(s, r, p, e);
    if (cJSON_GetArraySize(p) > 64) return fail(e, 400, "prompt", "invalid_value", "Invalid 'prompt': at most 64 prompts per request.");
    for (const cJSON *v = p->child; v; v = v->next) {
        int rc = cJSON_IsString(v) ? encode_text(s, r, v->valuestring, strlen(v->valuestring), TOKENIZER_ADD_SPECIAL, "prompt", e)
                 : cJSON_IsArray(v) ? token_prompt(s, r, v, e)
                                    : fail(e, 422, "prompt", "invalid_type",
                                           "Invalid 'prompt': a list may hold strings or token-id lists, not %s.", json_type(v));
        if (rc) return rc;
    }
    return 0;
}

// messages -> a copy the template can take: content parts joined into one string, tool-call arguments
// (a JSON string in the API) parsed into the object chat templates expect.
static cJSON *template_messages(const cJSON *msgs, serve_error_t *e) {
    if (!msgs) return fail(e, 422, "messages", "missing_required_parameter", "Missing required parameter: 'messages'."), NULL;
    if (!cJSON_IsArray(msgs))
        return fail(e, 422, "messages", "invalid_type", "Invalid type for 'messages': expected an array, but got %s instead.",
                    json_type(msgs)), NULL;
    if (cJSON_GetArraySize(msgs) == 0)
        return fail(e, 400, "messages", "invalid_value", "Invalid 'messages': empty array. Expected an array with minimum length 1."), NULL;
    cJSON *out = cJSON_Duplicate(msgs, 1);
    int i = 0;
    for (cJSON *m = out->child; m; m = m->next, i++) {
        const cJSON *role = cJSON_GetObjectItemCaseSensitive(m, "role");
        if (!cJSON_IsObject(m) || !cJSON_IsString(role)) {
            fail(e, 422, "messages", "invalid_type", "Invalid 'messages[%d]': expected an object with a string 'role'.", i);
            break;
        }
        cJSON *content = cJSON_GetObjectItemCaseSensitive(m, "content");
        if (cJSON_IsArray(content)) {
            buf_t b;
            buf_init(&b);
            int k = 0, bad = 0;
            for (const cJSON *part = content->child; part && !bad; part = part->next, k++) {
                const cJSON *type = cJSON_GetObjectItemCaseSensitive(part, "type");
                const cJSON *text = cJSON_GetObjectItemCaseSensitive(part, "text");
                if (!cJSON_IsString(type) || strcmp(type->valuestring, "text") || !cJSON_IsString(text))
                    bad = 1, fail(e, 400, "messages", "invalid_value",
                                  "Invalid 'messages[%d].content[%d]': only text parts ({\"type\": \"text\", \"text\": ...}) are supported.",
                                  i, k);
                else buf_puts(&b, text->valuestring);
            }
            if (bad) {
                buf_free(&b);
                break;
            }
            cJSON_ReplaceItemInObjectCaseSensitive(m, "content", cJSON_CreateString(b.s));
            buf_free(&b);
        } else if (content && !cJSON_IsString(content) && !cJSON_IsNull(content)) {
            fail(e, 422, "messages", "invalid_type", "Invalid type for 'messages[%d].content': expected a string or an array of "
                                                     "text parts, but got %s instead.", i, json_type(content));
            break;
        }
        cJSON *calls = cJSON_GetObjectItemCaseSensitive(m, "tool_calls");
        for (cJSON *tc = cJSON_IsArray(calls) ? calls->child : NULL; tc; tc = tc->next) {
            cJSON *fn = cJSON_GetObjectItemCaseSensitive(tc, "function");
            cJSON *args = cJSON_GetObjectItemCaseSensitive(fn, "arguments");
            cJSON *parsed = cJSON_IsString(args) ? cJSON_Parse(args->valuestring) : NULL;
            if (cJSON_IsObject(parsed)) cJSON_ReplaceItemInObjectCaseSensitive(fn, "arguments", parsed);
            else cJSON_Delete(parsed);
        }
    }
    if (e->status) {
        cJSON_Delete(out);
        return NULL;
    }
    return out;
}

static int parse_messages(const serve_config_t *s, serve_request_t *r, const cJSON *req, serve_error_t *e) {
    cJSON *msgs = template_messages(cJSON_GetObjectItemCaseSensitive(req, "messages"), e);
    if (!msgs) return -1;
    const cJSON *tools = cJSON_GetObjectItemCaseSensitive(req, "tools");
    const cJSON *kw = cJSON_GetObjectItemCaseSensitive(req, "chat_template_kwargs");
    int rc = -1, gen = 1;
    if (tools && !cJSON_IsNull(tools) && !cJSON_IsArray(tools))
        fail(e, 422, "tools", "invalid_type", "Invalid type for 'tools': expected an array, but got %s instead.", json_type(tools));
    else if (kw && !cJSON_IsNull(kw) && !cJSON_IsObject(kw))
        fail(e, 422, "chat_template_kwargs", "invalid_type", "Invalid type for 'chat_template_kwargs': expected an object.");
    else if (get_bool(req, "add_generation_prompt", &gen, e) >= 0) {
        if (!s->tmpl) {
            fail(e, 400, "messages", "invalid_value", "The model has no chat template (chat_template.jinja or tokenizer_config.json): "
                                                      "use /v1/completions, or start the server with --chat-template FILE.");
        } else {
            char *text = chat_template_render(s->tmpl, msgs, cJSON_IsArray(tools) ? tools : NULL, gen,
                                              cJSON_IsObject(kw) ? kw : NULL);
            if (!text) fail(e, 400, "messages", "invalid_value", "The chat template could not render the messages: %s",
                            cispo_last_error());
            else rc = encode_text(s, r, text, strlen(text), 0, "messages", e);
            free(text);
        }
    }
    cJSON_Delete(msgs);
    return rc;
}

static int parse_stop(serve_request_t *r, const cJSON *v, serve_error_t *e) {
    if (!v || cJSON_IsNull(v)) return 0;
    if (!cJSON_IsString(v) && !cJSON_IsArray(v))
        return fail(e, 422, "stop", "invalid_type", "Invalid type for 'stop': expected a string or an array of strings, but got %s instead.",
                    json_type(v));
    if (cJSON_GetArraySize(v) > 16) return fail(e, 400, "stop", "invalid_value", "Invalid 'stop': at most 16 stop strings.");
    const cJSON *first = cJSON_IsString(v) ? v : v->child;
    for (const cJSON *x = first; x; x = cJSON_IsString(v) ? NULL : x->next) {
        if (!cJSON_IsString(x)) return fail(e, 422, "stop", "invalid_type", "Invalid type for 'stop': a list of strings expected.");
        if (!x->valuestring[0]) continue;
        r->stop = cispo_realloc(r->stop, sizeof(char *) * (size_t)(r->n_stop + 1));
        r->stop[r->n_stop++] = cispo_strdup(x->valuestring);
    }
    return 0;
}

serve_request_t *serve_api_parse(const serve_config_t *s, const char *body, size_t len, int chat, serve_error_t *e) {
    memset(e, 0, sizeof *e);
    const char *end = NULL;
    cJSON *req = cJSON_ParseWithLengthOpts(body, len, &end, 0);
    if (!req) {
        fail(e, 400, NULL, "invalid_json", "We could not parse the JSON body of your request (near byte %ld). The API "
                                           "expects a JSON payload.", end ? (long)(end - body) : 0L);
        return NULL;
    }
    serve_request_t *r = serve_request_new();
    r->chat = chat;
    long long ll;
    double d;
    int rc = 0;
    const cJSON *model = cJSON_GetObjectItemCaseSensitive(req, "model");
    if (!cJSON_IsObject(req)) {
        rc = fail(e, 400, NULL, "invalid_json", "The request body must be a JSON object, not %s.", json_type(req));
        goto out;
    }
    if (model && !cJSON_IsString(model) && !cJSON_IsNull(model)) {
        rc = fail(e, 422, "model", "invalid_type", "Invalid type for 'model': expected a string, but got %s instead.", json_type(model));
        goto out;
    }
    if (cJSON_IsString(model) && strcmp(model->valuestring, s->model_name)) {
        rc = fail(e, 404, "model", "model_not_found", "The model `%.200s` does not exist: this server serves `%s` (GET /v1/models).",
                  model->valuestring, s->model_name);
        goto out;
    }
    r->sampler = (sampler_config_t){.temperature = 1, .top_p = 1};
    r->seed = (uint64_t)time(NULL) * 0x9E3779B97F4A7C15ull ^ (uint64_t)(uintptr_t)r;
    long long max_tokens = 0;
    if ((rc = get_bool(req, "stream", &r->stream, e)) < 0) goto out;
    const cJSON *so = cJSON_GetObjectItemCaseSensitive(req, "stream_options");
    if (cJSON_IsObject(so) && (rc = get_bool(so, "include_usage", &r->include_usage, e)) < 0) goto out;
    if ((rc = get_int(req, "n", 1, 128, &ll, e)) < 0) goto out;
    if (rc) r->n = (int)ll;
    if ((rc = get_number(req, "temperature", 0, 100, &d, e)) < 0) goto out;
    if (rc) {
        if (d == 0) r->sampler.greedy = 1;
        else r->sampler.temperature = d;
    }
    if ((rc = get_number(req, "top_p", 1e-9, 1, &d, e)) < 0) goto out;
    if (rc) r->sampler.top_p = d;
    if ((rc = get_int(req, "top_k", -1, 1e9, &ll, e)) < 0) goto out;
    if (rc && ll > 0) r->sampler.top_k = (int)ll;
    if ((rc = get_int(req, "seed", -9.2e18, 9.2e18, &ll, e)) < 0) goto out;
    if (rc) r->seed = (uint64_t)ll;
    if ((rc = get_int(req, "max_tokens", 1, 1e9, &ll, e)) < 0) goto out;
    if (rc) max_tokens = ll;
    if (chat && (rc = get_int(req, "max_completion_tokens", 1, 1e9, &ll, e)) < 0) goto out;
    if (chat && rc) max_tokens = ll;
    if ((rc = parse_stop(r, cJSON_GetObjectItemCaseSensitive(req, "stop"), e)) < 0) goto out;
    if (chat) {
        if ((rc = get_bool(req, "logprobs", &r->logprobs, e)) < 0) goto out;
        if ((rc = get_int(req, "top_logprobs", 0, SERVE_MAX_TOP_LOGPROBS, &ll, e)) < 0) goto out;
        if (rc) r->top_logprobs = (int)ll;
        if (r->top_logprobs && !r->logprobs) {
            rc = fail(e, 400, "top_logprobs", "invalid_value", "'top_logprobs' needs 'logprobs' set to true.");
            goto out;
        }
    } else {
        if ((rc = get_int(req, "logprobs", 0, SERVE_MAX_TOP_LOGPROBS, &ll, e)) < 0) goto out;
        if (rc) r->logprobs = 1, r->top_logprobs = (int)ll;
    }
    rc = chat ? parse_messages(s, r, req, e) : parse_prompt(s, r, cJSON_GetObjectItemCaseSensitive(req, "prompt"), e);
    if (rc) goto out;
    // the context: each prompt and its completion in one slot of max_ctx tokens
    int longest = 0;
    for (int i = 0; i < r->n_prompts; i++) longest = r->prompt_lens[i] > longest ? r->prompt_lens[i] : longest;
    long long want = max_tokens ? max_tokens : chat ? s->max_ctx - longest : 16;
    if (want < 1 || longest + want > s->max_ctx) {
        if (want < 1) want = 1;
        rc = fail(e, 400, chat ? "messages" : "prompt", "context_length_exceeded",
                  "This model's maximum context length is %d tokens. However, you requested %lld tokens (%d in the %s, "
                  "%lld in the completion). Please reduce the length of the %s or completion.", s->max_ctx, longest + want,
                  longest, chat ? "messages" : "prompt", want, chat ? "messages" : "prompt");
        goto out;
    }
    r->max_tokens = (int)want;
    rc = 0;
out:
    cJSON_Delete(req);
    if (rc) {
        serve_request_release(NULL, r);
        return NULL;
    }
    serve_request_alloc_choices(r);
    return r;
}

// ---- responses ----

// Text as a JSON string: invalid UTF-8 as U+FFFD, and a NUL byte too (cJSON strings end at NUL; a
// model can emit one)
static void add_text(cJSON *o, const char *name, const char *s, size_t n) {
    buf_t b;
    buf_init(&b);
    for (size_t i = 0; i <= n; i++) {
        const char *z = memchr(s + i, 0, n - i);
        size_t k = z ? (size_t)(z - s) : n;
        utf8_append_lossy(&b, s + i, k - i);
        if (z) buf_puts(&b, "\xEF\xBF\xBD");
        i = k;
    }
    cJSON_AddStringToObject(o, name, b.s);
    buf_free(&b);
}

static char *token_text(const serve_config_t *s, int32_t id, size_t *n) {
    char *t = tokenizer_decode(s->tok, &id, 1, 0, n);
    if (!t) t = cispo_strdup(""), *n = 0;
    return t;
}

// chat: {"token", "logprob", "bytes", "top_logprobs": [...]}
static cJSON *chat_logprob(const serve_config_t *s, int32_t id, float lp, const int32_t *top, const float *top_lp, int k) {
    cJSON *o = cJSON_CreateObject();
    size_t n;
    char *t = token_text(s, id, &n);
    add_text(o, "token", t, n);
    cJSON_AddNumberToObject(o, "logprob", lp);
    cJSON *bytes = cJSON_AddArrayToObject(o, "bytes");
    for (size_t i = 0; i < n; i++) cJSON_AddItemToArray(bytes, cJSON_CreateNumber((unsigned char)t[i]));
    free(t);
    if (top) {
        cJSON *a = cJSON_AddArrayToObject(o, "top_logprobs");
        for (int j = 0; j < k; j++) cJSON_AddItemToArray(a, chat_logprob(s, top[j], top_lp[j], NULL, NULL, 0));
    }
    return o;
}

// Token i of c, as the chat API or the completions API reports it, appended to the lists of lp.
static void add_logprob(const serve_config_t *s, const serve_request_t *r, const serve_choice_t *c, int i, cJSON *lp) {
    const int K = r->top_logprobs;
    const int32_t *top = c->top_ids + (size_t)i * K;
    const float *top_lp = c->top_lp + (size_t)i * K;
    if (r->chat) {
        cJSON_AddItemToArray(cJSON_GetObjectItemCaseSensitive(lp, "content"),
                             chat_logprob(s, c->tokens[i], c->logp[i], top, top_lp, K));
        return;
    }
    size_t n;
    char *t = token_text(s, c->tokens[i], &n);
    buf_t b;
    buf_init(&b);
    utf8_append_lossy(&b, t, n);
    free(t);
    cJSON_AddItemToArray(cJSON_GetObjectItemCaseSensitive(lp, "tokens"), cJSON_CreateString(b.s));
    buf_free(&b);
    cJSON_AddItemToArray(cJSON_GetObjectItemCaseSensitive(lp, "token_logprobs"), cJSON_CreateNumber(c->logp[i]));
    cJSON_AddItemToArray(cJSON_GetObjectItemCaseSensitive(lp, "text_offset"),
                         cJSON_CreateNumber((double)(i ? c->text_end[i - 1] : 0)));
    cJSON *alts = cJSON_CreateObject();
    for (int j = 0; j < K; j++) {
        char *a = token_text(s, top[j], &n);
        buf_init(&b);
        utf8_append_lossy(&b, a, n);
        free(a);
        if (!cJSON_GetObjectItemCaseSensitive(alts, b.s)) cJSON_AddNumberToObject(alts, b.s, top_lp[j]);
        buf_free(&b);
    }
    cJSON_AddItemToArray(cJSON_GetObjectItemCaseSensitive(lp, "top_logprobs"), alts);
}

static cJSON *new_logprobs(const serve_request_t *r) {
    cJSON *lp = cJSON_CreateObject();
    if (r->chat) cJSON_AddArrayToObject(lp, "content");
    else {
        cJSON_AddArrayToObject(lp, "tokens");
        cJSON_AddArrayToObject(lp, "token_logprobs");
        cJSON_AddArrayToObject(lp, "top_logprobs");
        cJSON_AddArrayToObject(lp, "text_offset");
    }
    return lp;
}

// Tokens with text in the output: all but a final end-of-sequence token.
static int out_tokens(const serve_choice_t *c) { return c->n_tokens - c->eos; }

static const char *finish_name(int f) { return f == SERVE_FINISH_LENGTH ? "length" : "stop"; }

static cJSON *usage(const serve_request_t *r) {
    long p = 0, g = 0;
    for (int i = 0; i < r->n_prompts; i++) p += r->prompt_lens[i];
    for (int i = 0; i < r->n_choices; i++) g += r->ch[i].n_tokens;
    cJSON *u = cJSON_CreateObject();
    cJSON_AddNumberToObject(u, "prompt_tokens", (double)p);
    cJSON_AddNumberToObject(u, "completion_tokens", (double)g);
    cJSON_AddNumberToObject(u, "total_tokens", (double)(p + g));
    return u;
}

static cJSON *envelope(const serve_config_t *s, const serve_request_t *r, const char *id, long created, const char *object) {
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "id", id);
    cJSON_AddStringToObject(o, "object", object);
    cJSON_AddNumberToObject(o, "created", (double)created);
    cJSON_AddStringToObject(o, "model", s->model_name);
    (void)r;
    return o;
}

char *serve_api_response(const serve_config_t *s, const serve_request_t *r, const char *id, long created) {
    cJSON *o = envelope(s, r, id, created, r->chat ? "chat.completion" : "text_completion");
    cJSON *choices = cJSON_AddArrayToObject(o, "choices");
    for (int i = 0; i < r->n_choices; i++) {
        const serve_choice_t *c = &r->ch[i];
        cJSON *ch = cJSON_CreateObject();
        cJSON_AddNumberToObject(ch, "index", i);
        if (r->chat) {
            cJSON *m = cJSON_AddObjectToObject(ch, "message");
            cJSON_AddStringToObject(m, "role", "assistant");
            add_text(m, "content", c->text.s, c->text.n);
        } else {
            add_text(ch, "text", c->text.s, c->text.n);
        }
        if (r->logprobs) {
            cJSON *lp = new_logprobs(r);
            for (int t = 0; t < out_tokens(c); t++) add_logprob(s, r, c, t, lp);
            cJSON_AddItemToObject(ch, "logprobs", lp);
        } else {
            cJSON_AddNullToObject(ch, "logprobs");
        }
        cJSON_AddStringToObject(ch, "finish_reason", finish_name(c->finish));
        cJSON_AddItemToArray(choices, ch);
    }
    cJSON_AddItemToObject(o, "usage", usage(r));
    char *out = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    return out;
}

static cJSON *model_card(const serve_config_t *s) {
    cJSON *m = cJSON_CreateObject();
    cJSON_AddStringToObject(m, "id", s->model_name);
    cJSON_AddStringToObject(m, "object", "model");
    cJSON_AddNumberToObject(m, "created", (double)s->created);
    cJSON_AddStringToObject(m, "owned_by", "cispo");
    cJSON_AddNumberToObject(m, "max_model_len", s->max_ctx);
    return m;
}

char *serve_api_models(const serve_config_t *s, const char *id) {
    cJSON *o;
    if (id) {
        if (strcmp(id, s->model_name)) return NULL;
        o = model_card(s);
    } else {
        o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "object", "list");
        cJSON_AddItemToArray(cJSON_AddArrayToObject(o, "data"), model_card(s));
    }
    char *out = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    return out;
}

// ---- streaming ----

static void event(buf_t *out, cJSON *o) {
    char *t = cJSON_PrintUnformatted(o);
    buf_puts(out, "data: ");
    buf_puts(out, t);
    buf_puts(out, "\n\n");
    free(t);
    cJSON_Delete(o);
}

// One chunk for choice i: its text piece (or a role delta, or nothing), log-probs, finish reason.
static void chunk(const serve_config_t *s, const serve_request_t *r, const char *id, long created, int i, const char *role,
                  const char *text, size_t n, cJSON *lp, const char *finish, buf_t *out) {
    cJSON *o = envelope(s, r, id, created, r->chat ? "chat.completion.chunk" : "text_completion");
    cJSON *ch = cJSON_CreateObject();
    cJSON_AddNumberToObject(ch, "index", i);
    if (r->chat) {
        cJSON *d = cJSON_AddObjectToObject(ch, "delta");
        if (role) cJSON_AddStringToObject(d, "role", role);
        if (text) add_text(d, "content", text, n);
    } else {
        add_text(ch, "text", text ? text : "", text ? n : 0);
    }
    if (lp) cJSON_AddItemToObject(ch, "logprobs", lp);
    else cJSON_AddNullToObject(ch, "logprobs");
    if (finish) cJSON_AddStringToObject(ch, "finish_reason", finish);
    else cJSON_AddNullToObject(ch, "finish_reason");
    cJSON_AddItemToArray(cJSON_AddArrayToObject(o, "choices"), ch);
    event(out, o);
}

int serve_api_stream(const serve_config_t *s, const serve_request_t *r, serve_stream_t *st, const char *id, long created,
                     buf_t *out) {
    if (st->done) return 1;
    int ended = 0, failed = 0;
    for (int i = 0; i < r->n_choices; i++) {
        const serve_choice_t *c = &r->ch[i];
        if (c->finish == SERVE_FINISH_ERROR) failed = 1;
        if (st->ended[i] || failed) {
            ended += st->ended[i];
            continue;
        }
        if (r->chat && !st->began[i]) {
            chunk(s, r, id, created, i, "assistant", "", 0, NULL, NULL, out);
            st->began[i] = 1;
        }
        size_t stable = serve_choice_stable(r, c);
        int covered = st->sent_tokens[i];
        while (covered < out_tokens(c) && c->text_end[covered] <= stable) covered++;
        if (c->finish) covered = out_tokens(c);
        if (stable > st->sent[i] || (r->logprobs && covered > st->sent_tokens[i])) {
            cJSON *lp = NULL;
            if (r->logprobs) {
                lp = new_logprobs(r);
                for (int t = st->sent_tokens[i]; t < covered; t++) add_logprob(s, r, c, t, lp);
            }
            chunk(s, r, id, created, i, NULL, c->text.s + st->sent[i], stable - st->sent[i], lp, NULL, out);
            st->sent[i] = stable;
            st->sent_tokens[i] = covered;
        }
        if (c->finish) {
            chunk(s, r, id, created, i, NULL, NULL, 0, NULL, finish_name(c->finish), out);
            st->ended[i] = 1;
            ended++;
        }
    }
    if (failed) {
        serve_error_t e = {0};
        fail(&e, 503, NULL, "server_error", "%s", r->error[0] ? r->error : "generation failed");
        char *t = serve_api_error_json(&e);
        buf_printf(out, "data: %s\n\n", t);
        free(t);
    } else if (ended < r->n_choices) {
        return 0;
    } else if (r->include_usage) {
        cJSON *o = envelope(s, r, id, created, r->chat ? "chat.completion.chunk" : "text_completion");
        cJSON_AddArrayToObject(o, "choices");
        cJSON_AddItemToObject(o, "usage", usage(r));
        event(out, o);
    }
    buf_puts(out, "data: [DONE]\n\n");
    st->done = 1;
    return 1;
}
