// rl/genrm.c — LLM judge over an OpenAI-compatible chat completions endpoint (genrm.h).
// defines: GENRM_DEFAULT_TEMPLATE, genrm_config_default, genrm_config_from_env, genrm_config_free,
//          genrm_render_prompt, genrm_parse_score, genrm_judge, genrm_verify
#include "rl/genrm.h"

#include <cjson/cJSON.h>
#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "base/common.h"

// Asks for a correctness grade, not a style grade: the reward must follow the reference answer.
const char GENRM_DEFAULT_TEMPLATE[] =
    "You are grading the final answer of a response to a question against a reference answer.\n"
    "\n"
    "[Question]\n"
    "{question}\n"
    "\n"
    "[Reference answer]\n"
    "{reference}\n"
    "\n"
    "[Response]\n"
    "{response}\n"
    "\n"
    "[Instructions]\n"
    "Judge only whether the response's final answer agrees with the reference answer. Equivalent forms "
    "count as agreement (0.5 and 1/2, reordered terms, an equivalent expression, units written "
    "differently); a missing, hedged or different final answer does not, however good the reasoning. "
    "Explain briefly, then end with one final line of the form \"Score: X\", where X is an integer "
    "from 0 (wrong) to 10 (correct).\n";

genrm_config_t genrm_config_default(void) {
    genrm_config_t c = {0};
    c.scale_min = 0, c.scale_max = 10;
    c.correct_at = 0.5;
    c.temperature = 0;
    c.max_tokens = 1024;
    c.http = http_options_default();
    c.http.max_attempts = 4;
    return c;
}

void genrm_config_free(genrm_config_t *c) {
    free(c->url), free(c->model), free(c->api_key), free(c->template_text);
    c->url = c->model = c->api_key = c->template_text = NULL;
}

// base "http://h:8000", "http://h:8000/", "http://h:8000/v1" or the full ".../chat/completions" URL.
static char *chat_completions_url(const char *base) {
    size_t n = strlen(base);
    while (n > 0 && base[n - 1] == '/') n--;
    const char *suffix = "/v1/chat/completions";
    if (n >= 17 && !strncmp(base + n - 17, "/chat/completions", 17)) suffix = "";
    else if (n >= 3 && !strncmp(base + n - 3, "/v1", 3)) suffix = "/chat/completions";
    char *url = cispo_malloc(n + strlen(suffix) + 1);
    memcpy(url, base, n);
    strcpy(url + n, suffix);
    return url;
}

int genrm_config_from_env(genrm_config_t *c) {
    *c = genrm_config_default();
    const char *url = getenv("CISPO_GENRM_URL"), *model = getenv("CISPO_GENRM_MODEL");
    if (!url || !*url)
        return cispo_fail("genrm: CISPO_GENRM_URL is not set: set it to the judge server's base URL, e.g. "
                          "http://judge-host:8000 (an OpenAI-compatible /v1/chat/completions server)");
    if (!model || !*model)
        return cispo_fail("genrm: CISPO_GENRM_MODEL is not set: set it to the model name the judge server serves");
    c->url = chat_completions_url(url);
    c->model = cispo_strdup(model);
    const char *key_var = getenv("CISPO_GENRM_API_KEY_ENV");
    const char *key = getenv(key_var && *key_var ? key_var : "OPENAI_API_KEY");
    if (key && *key) c->api_key = cispo_strdup(key);
    const char *tpl = getenv("CISPO_GENRM_TEMPLATE");
    if (tpl && *tpl) {
        c->template_text = cispo_read_file(tpl, NULL);
        if (!c->template_text) {
            char why[512];
            snprintf(why, sizeof why, "%s", cispo_last_error());
            genrm_config_free(c);
            return cispo_fail("genrm: CISPO_GENRM_TEMPLATE: %s", why);
        }
        if (!strstr(c->template_text, "{response}")) {
            genrm_config_free(c);
            return cispo_fail("genrm: CISPO_GENRM_TEMPLATE=%s: the template has no {response} placeholder "
                              "(placeholders: {question}, {reference}, {response})", tpl);
        }
    }
    const char *scale = getenv("CISPO_GENRM_SCALE");
    if (scale && *scale) {
        char *end;
        c->scale_min = strtod(scale, &end);
        int ok = end != scale && *end == ':';
        if (ok) {
            const char *p = end + 1;
            c->scale_max = strtod(p, &end);
            ok = end != p && *end == 0 && c->scale_max > c->scale_min;
        }
        if (!ok) {
            genrm_config_free(c);
            return cispo_fail("genrm: CISPO_GENRM_SCALE='%s': expected MIN:MAX with MIN < MAX, e.g. 0:10", scale);
        }
    }
    int bad = 0;
    bad |= http_env_number("CISPO_GENRM_CORRECT_AT", 0, 1, &c->correct_at);
    bad |= http_env_number("CISPO_GENRM_TEMPERATURE", 0, 10, &c->temperature);
    double max_tokens = c->max_tokens, retries = c->http.max_attempts - 1;
    bad |= http_env_number("CISPO_GENRM_MAX_TOKENS", 1, 1e7, &max_tokens);
    bad |= http_env_number("CISPO_GENRM_TIMEOUT", 1e-3, 1e5, &c->http.timeout_s);
    bad |= http_env_number("CISPO_GENRM_RETRIES", 0, 100, &retries);
    if (bad) return genrm_config_free(c), -1;
    c->max_tokens = (int)max_tokens;
    c->http.max_attempts = (int)retries + 1;
    return 0;
}

// ---- prompt ----

char *genrm_render_prompt(const char *tpl, const char *question, const char *reference, const char *response) {
    static const char *const names[3] = {"{question}", "{reference}", "{response}"};
    const char *values[3] = {question ? question : "", reference ? reference : "", response ? response : ""};
    if (!tpl) tpl = GENRM_DEFAULT_TEMPLATE;
    size_t cap = strlen(tpl) + 1;
    for (int i = 0; i < 3; i++) {
        size_t uses = 0;
        for (const char *p = tpl; (p = strstr(p, names[i])); p++) uses++;
        cap += uses * strlen(values[i]);
    }
    char *out = cispo_malloc(cap), *o = out;
    for (const char *p = tpl; *p;) {
        int hit = -1;
        if (*p == '{')
            for (int i = 0; i < 3 && hit < 0; i++)
                if (!strncmp(p, names[i], strlen(names[i]))) hit = i;
        if (hit < 0) {
            *o++ = *p++;
            continue;
        }
        size_t n = strlen(values[hit]);
        memcpy(o, values[hit], n);
        o += n;
        p += strlen(names[hit]);
    }
    *o = 0;
    return out;
}

// ---- score parsing ----

// A decimal number [+-]digits[.digits] or [+-].digits at p (no exponent, no inf/nan, no hex: a judge's
// score is plain). Returns the end, or NULL.
static const char *parse_decimal(const char *p, double *v) {
    const char *s = p;
    if (*p == '+' || *p == '-') p++;
    int digits = 0;
    while (isdigit((unsigned char)*p)) p++, digits++;
    if (*p == '.' && isdigit((unsigned char)p[1])) {
        p++;
        while (isdigit((unsigned char)*p)) p++, digits++;
    }
    if (!digits) return NULL;
    char buf[64];
    size_t n = (size_t)(p - s);
    if (n >= sizeof buf) return NULL;
    memcpy(buf, s, n);
    buf[n] = 0;
    *v = strtod(buf, NULL);
    return p;
}

static const char *skip_chars(const char *p, const char *set) {
    while (*p && strchr(set, *p)) p++;
    return p;
}

// Rule 1: the last "score [:=] X".
static int last_score_label(const char *text, double *v) {
    int found = 0;
    for (const char *p = text; *p; p++) {
        if (strncasecmp(p, "score", 5) || (p > text && isalpha((unsigned char)p[-1]))) continue;
        const char *q = skip_chars(p + 5, " \t*");
        if (*q != ':' && *q != '=') continue;
        q = skip_chars(q + 1, " \t*");
        double x;
        if (parse_decimal(q, &x)) *v = x, found = 1;
    }
    return found;
}

// Rule 2: the last "[[X]]".
static int last_double_bracket(const char *text, double *v) {
    int found = 0;
    for (const char *p = text; (p = strstr(p, "[[")); p += 2) {
        const char *q = skip_chars(p + 2, " ");
        double x;
        const char *e = parse_decimal(q, &x);
        if (e && !strncmp(skip_chars(e, " "), "]]", 2)) *v = x, found = 1;
    }
    return found;
}

int genrm_parse_score(const char *reply, double scale_min, double scale_max, double *score) {
    if (!reply) return -1;
    const char *text = reply, *t;
    for (const char *p = reply; (p = strstr(p, "</think>")); p += 8) text = p + 8;
    if (text == reply && strstr(reply, "<think>")) return -1;  // cut off inside the reasoning
    double v;
    if (last_score_label(text, &v) || last_double_bracket(text, &v)) {
        *score = v;
        return 0;
    }
    // Rules 3 and 4: the whole (trimmed) reply.
    const char *b = skip_chars(text, " \t\r\n*");
    const char *e = b + strlen(b);
    while (e > b && strchr(" \t\r\n*", e[-1])) e--;
    if (e > b && e[-1] == '.') e--;
    size_t n = (size_t)(e - b);
    if ((t = parse_decimal(b, &v)) && t == e) {
        *score = v;
        return 0;
    }
    if (n == 3 && !strncasecmp(b, "yes", 3)) return *score = scale_max, 0;
    if (n == 2 && !strncasecmp(b, "no", 2)) return *score = scale_min, 0;
    return -1;
}

// ---- one judgement ----

// A failed verdict: reported with its reason, never a reward (the reason is cut to fit verdict_t).
static int fail_verdict(verdict_t *out, const char *fmt, ...) CISPO_PRINTF(2, 3);
static int fail_verdict(verdict_t *out, const char *fmt, ...) {
    out->failed = 1, out->correct = 0, out->reward = 0;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(out->reason, sizeof out->reason, fmt, ap);
    va_end(ap);
    return -1;
}

int genrm_judge(const genrm_config_t *cfg, const char *question, const char *reference, const char *response,
                verdict_t *out) {
    memset(out, 0, sizeof *out);
    if (!cfg->url || !cfg->model) return fail_verdict(out, "genrm: no judge URL or model configured");
    char *prompt = genrm_render_prompt(cfg->template_text, question, reference, response);
    cJSON *req = cJSON_CreateObject();
    cJSON_AddStringToObject(req, "model", cfg->model);
    cJSON *msgs = cJSON_AddArrayToObject(req, "messages");
    cJSON *m = cJSON_CreateObject();
    cJSON_AddStringToObject(m, "role", "user");
    cJSON_AddStringToObject(m, "content", prompt);
    cJSON_AddItemToArray(msgs, m);
    cJSON_AddNumberToObject(req, "temperature", cfg->temperature);
    cJSON_AddNumberToObject(req, "max_tokens", cfg->max_tokens);
    char *body = cJSON_PrintUnformatted(req);
    CHECK_ALLOC(body);
    cJSON_Delete(req);
    free(prompt);

    http_options_t http = cfg->http;
    http.bearer_token = cfg->api_key;
    http_response_t res;
    int rc = http_post_json(cfg->url, body, &http, &res);
    free(body);
    if (rc) {
        fail_verdict(out, "genrm: %s", cispo_last_error());
        http_response_free(&res);
        return -1;
    }
    cJSON *doc = cJSON_ParseWithLength(res.body ? res.body : "", res.body_len);
    cJSON *choices = doc ? cJSON_GetObjectItemCaseSensitive(doc, "choices") : NULL;
    cJSON *c0 = cJSON_IsArray(choices) ? cJSON_GetArrayItem(choices, 0) : NULL;
    cJSON *msg = c0 ? cJSON_GetObjectItemCaseSensitive(c0, "message") : NULL;
    cJSON *content = msg ? cJSON_GetObjectItemCaseSensitive(msg, "content") : NULL;
    char snip[160];
    http_snippet(snip, sizeof snip, res.body);
    if (!cJSON_IsString(content)) {
        fail_verdict(out, doc ? "genrm: %s: reply has no choices[0].message.content string: %s"
                              : "genrm: %s: reply is not JSON: %s",
                     cfg->url, snip);
        cJSON_Delete(doc), http_response_free(&res);
        return -1;
    }
    const char *reply = content->valuestring;
    size_t n = strlen(reply);
    // The score sits at the end of a reasoned reply: keep the tail.
    snprintf(out->extracted, sizeof out->extracted, "%s", n >= sizeof out->extracted ? reply + n - (sizeof out->extracted - 1) : reply);
    double score;
    if (genrm_parse_score(reply, cfg->scale_min, cfg->scale_max, &score)) {
        http_snippet(snip, sizeof snip, reply + (n > 150 ? n - 150 : 0));
        fail_verdict(out, "genrm: no score in the judge's reply (expected 'Score: X', '[[X]]', a bare number or "
                          "YES/NO%s): ...%s", strstr(reply, "<think>") && !strstr(reply, "</think>") ?
                          "; it ends inside <think>: raise CISPO_GENRM_MAX_TOKENS" : "", snip);
        cJSON_Delete(doc), http_response_free(&res);
        return -1;
    }
    cJSON_Delete(doc), http_response_free(&res);
    if (score < cfg->scale_min || score > cfg->scale_max) {
        return fail_verdict(out, "genrm: judge score %g outside the scale %g..%g (CISPO_GENRM_SCALE)", score,
                            cfg->scale_min, cfg->scale_max);
    }
    out->reward = (score - cfg->scale_min) / (cfg->scale_max - cfg->scale_min);
    out->correct = out->reward >= cfg->correct_at;
    snprintf(out->reason, sizeof out->reason, "judge score %g on %g..%g -> reward %.3f", score, cfg->scale_min,
             cfg->scale_max, out->reward);
    return 0;
}

int genrm_verify(const verify_request_t *req, verdict_t *out) {
    genrm_config_t cfg;
    if (genrm_config_from_env(&cfg)) {
        memset(out, 0, sizeof *out);
        return fail_verdict(out, "%s", cispo_last_error());
    }
    int rc = genrm_judge(&cfg, req->question, req->gold, req->response, out);
    genrm_config_free(&cfg);
    return rc;
}
