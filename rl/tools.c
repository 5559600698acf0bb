// rl/tools.c — tool-call formats, the call parser, the calculator and python tools (rl/tools.h).
#include "rl/tools.h"

#include <ctype.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "base/common.h"
#include "rl/sandbox_client.h"

// ---- formats ----
// A template's format is one row: add a row for another family (e.g. a model's own call tags).
const tool_format_t tool_formats[] = {
    {"hermes", "<tool_call>", "</tool_call>", TOOL_BODY_JSON, "\n<tool_response>\n", "\n</tool_response>\n"},
    {"demo", "<<", ">>", TOOL_BODY_NAME_ARGS, "\n= ", "\n"},
};
const int tool_n_formats = sizeof tool_formats / sizeof tool_formats[0];

const tool_format_t *tool_format_find(const char *name) {
    for (int i = 0; i < tool_n_formats; i++)
        if (!strcmp(tool_formats[i].name, name)) return &tool_formats[i];
    return NULL;
}

void tool_call_free(tool_call_t *c) {
    free(c->name), free(c->args);
    c->name = c->args = NULL;
}

static char *trimmed(const char *s, size_t n) {
    while (n && isspace((unsigned char)*s)) s++, n--;
    while (n && isspace((unsigned char)s[n - 1])) n--;
    return cispo_strndup(s, n);
}

static int bad_call(tool_call_t *out, const char *why) {
    out->name = NULL;
    out->args = cispo_strdup(why);
    return 1;
}

// {"name": ..., "arguments": {...} | "..."}: arguments with one string field give that string.
static int parse_json_body(const char *body, tool_call_t *out) {
    cJSON *j = cJSON_Parse(body);
    if (!j) return bad_call(out, "the call is not valid JSON");
    const cJSON *name = cJSON_GetObjectItemCaseSensitive(j, "name");
    const cJSON *args = cJSON_GetObjectItemCaseSensitive(j, "arguments");
    if (!cJSON_IsString(name) || !name->valuestring[0]) {
        cJSON_Delete(j);
        return bad_call(out, "the call has no \"name\"");
    }
    if (cJSON_IsString(args)) {
        out->args = cispo_strdup(args->valuestring);
    } else if (cJSON_IsObject(args) && cJSON_GetArraySize(args) == 1 && cJSON_IsString(args->child)) {
        out->args = cispo_strdup(args->child->valuestring);
    } else if (cJSON_IsObject(args)) {
        char *t = cJSON_PrintUnformatted(args);
        out->args = cispo_strdup(t);
        free(t);
    } else if (!args) {
        out->args = cispo_strdup("");
    } else {
        cJSON_Delete(j);
        return bad_call(out, "the call's \"arguments\" is neither an object nor a string");
    }
    out->name = cispo_strdup(name->valuestring);
    cJSON_Delete(j);
    return 1;
}

int tool_call_parse(const tool_format_t *f, const char *text, tool_call_t *out, size_t *end) {
    const char *a = strstr(text, f->call_open);
    if (!a) return 0;
    const char *b0 = a + strlen(f->call_open), *b = strstr(b0, f->call_close);
    if (!b) return 0;
    memset(out, 0, sizeof *out);
    *end = (size_t)(b - text) + strlen(f->call_close);
    char *body = trimmed(b0, (size_t)(b - b0));
    int r;
    if (f->body == TOOL_BODY_JSON) {
        r = parse_json_body(body, out);
    } else {
        size_t k = 0;
        while (body[k] && (isalnum((unsigned char)body[k]) || body[k] == '_')) k++;
        if (k == 0 || (body[k] && !isspace((unsigned char)body[k]))) {
            r = bad_call(out, "the call does not start with a tool name");
        } else {
            out->name = cispo_strndup(body, k);
            out->args = trimmed(body + k, strlen(body + k));
            r = 1;
        }
    }
    free(body);
    return r;
}

// ---- the calculator: exact rationals p/q (q > 0, reduced) in 64 bits, overflow reported ----
typedef struct {
    int64_t p, q;
} rat_t;

typedef struct {
    const char *s;
    const char *err;
} calc_t;

static int64_t gcd64(int64_t a, int64_t b) {
    if (a < 0) a = -a;
    if (b < 0) b = -b;
    while (b) {
        int64_t t = a % b;
        a = b, b = t;
    }
    return a ? a : 1;
}

static rat_t rat_norm(calc_t *c, __int128 p, __int128 q) {
    rat_t r = {0, 1};
    if (q == 0) return c->err = c->err ? c->err : "division by zero", r;
    if (q < 0) p = -p, q = -q;
    __int128 a = p < 0 ? -p : p, b = q;
    while (b) {
        __int128 t = a % b;
        a = b, b = t;
    }
    if (a > 1) p /= a, q /= a;
    if (p > INT64_MAX || p < -INT64_MAX || q > INT64_MAX) return c->err = c->err ? c->err : "result too large", r;
    r.p = (int64_t)p, r.q = (int64_t)q;
    return r;
}

static void skip_ws(calc_t *c) {
    while (*c->s == ' ' || *c->s == '\t' || *c->s == '\n') c->s++;
}

static rat_t calc_sum(calc_t *c, int depth);

static rat_t calc_atom(calc_t *c, int depth) {
    rat_t zero = {0, 1};
    skip_ws(c);
    if (depth > 64) return c->err = "expression nested too deeply", zero;
    if (*c->s == '-') return c->s++, (zero = calc_atom(c, depth + 1)), zero.p = -zero.p, zero;
    if (*c->s == '+') return c->s++, calc_atom(c, depth + 1);
    if (*c->s == '(') {
        c->s++;
        rat_t v = calc_sum(c, depth + 1);
        skip_ws(c);
        if (*c->s != ')') return c->err = c->err ? c->err : "missing ')'", zero;
        c->s++;
        return v;
    }
    if (!isdigit((unsigned char)*c->s) && *c->s != '.') return c->err = "expected a number", zero;
    __int128 p = 0, q = 1;
    int digits = 0, frac = 0;
    for (; isdigit((unsigned char)*c->s) || (*c->s == '.' && !frac); c->s++) {
        if (*c->s == '.') { frac = 1; continue; }
        if (++digits > 18) return c->err = "number too long", zero;
        p = p * 10 + (*c->s - '0');
        if (frac) q *= 10;
    }
    if (!digits) return c->err = "expected a number", zero;
    return rat_norm(c, p, q);
}

static rat_t calc_pow(calc_t *c, int depth) {
    rat_t b = calc_atom(c, depth);
    skip_ws(c);
    if (*c->s != '^' && !(c->s[0] == '*' && c->s[1] == '*')) return b;
    c->s += *c->s == '^' ? 1 : 2;
    rat_t e = calc_pow(c, depth + 1);  // right-associative
    if (c->err) return b;
    if (e.q != 1 || e.p > 64 || e.p < -64) return c->err = "exponent must be an integer in -64..64", b;
    __int128 p = 1, q = 1;
    for (int64_t i = 0; i < (e.p < 0 ? -e.p : e.p); i++) {
        p *= b.p, q *= b.q;
        if (p > INT64_MAX || p < -INT64_MAX || q > INT64_MAX) return c->err = "result too large", b;
    }
    return e.p < 0 ? rat_norm(c, q, p) : rat_norm(c, p, q);
}

static rat_t calc_product(calc_t *c, int depth) {
    rat_t a = calc_pow(c, depth);
    for (;;) {
        skip_ws(c);
        char op = *c->s;
        if ((op != '*' && op != '/') || (op == '*' && c->s[1] == '*')) return a;
        c->s++;
        rat_t b = calc_pow(c, depth);
        if (c->err) return a;
        a = op == '*' ? rat_norm(c, (__int128)a.p * b.p, (__int128)a.q * b.q)
                      : rat_norm(c, (__int128)a.p * b.q, (__int128)a.q * b.p);
    }
}

static rat_t calc_sum(calc_t *c, int depth) {
    rat_t a = calc_product(c, depth);
    for (;;) {
        skip_ws(c);
        char op = *c->s;
        if (op != '+' && op != '-') return a;
        c->s++;
        rat_t b = calc_product(c, depth);
        if (c->err) return a;
        __int128 g = gcd64(a.q, b.q), l = (__int128)a.q / g * b.q;
        __int128 x = (__int128)a.p * (l / a.q), y = (__int128)b.p * (l / b.q);
        a = rat_norm(c, op == '+' ? x + y : x - y, l);
    }
}

int tool_calculator(const char *expr, char *buf, size_t cap) {
    calc_t c = {expr, NULL};
    rat_t v = calc_sum(&c, 0);
    skip_ws(&c);
    if (!c.err && *c.s) c.err = "unexpected character";
    if (c.err) {
        snprintf(buf, cap, "%s at offset %d of \"%.40s\"", c.err, (int)(c.s - expr), expr);
        return -1;
    }
    if (v.q == 1) snprintf(buf, cap, "%lld", (long long)v.p);
    else snprintf(buf, cap, "%lld/%lld", (long long)v.p, (long long)v.q);
    return 0;
}

// ---- registry ----
static const char *const known_tools[] = {"calculator", "python"};

int tools_create(tools_t *t, const char *list, const char *sandbox_url, double timeout_s, int max_result_chars) {
    memset(t, 0, sizeof *t);
    snprintf(t->sandbox_url, sizeof t->sandbox_url, "%s", sandbox_url ? sandbox_url : "");
    t->timeout_s = timeout_s > 0 ? timeout_s : 10;
    t->max_result_chars = max_result_chars > 0 ? max_result_chars : 512;
    const char *p = list;
    while (p && *p) {
        const char *e = strchr(p, ',');
        size_t n = e ? (size_t)(e - p) : strlen(p);
        char name[32];
        char *nm = trimmed(p, n);
        snprintf(name, sizeof name, "%s", nm);
        free(nm);
        p = e ? e + 1 : p + n;
        if (!name[0]) continue;
        int ok = 0;
        for (size_t k = 0; k < sizeof known_tools / sizeof *known_tools; k++) ok |= !strcmp(name, known_tools[k]);
        if (!ok) return cispo_fail("key 'tools': unknown tool '%s' (known: calculator, python)", name);
        if (t->n == 8) return cispo_fail("key 'tools': at most 8 tools");
        snprintf(t->names[t->n++], sizeof t->names[0], "%s", name);
    }
    return 0;
}

static int error_result(char **result, const char *fmt, const char *a, const char *b) {
    char buf[600];
    snprintf(buf, sizeof buf, fmt, a, b);
    *result = cispo_strdup(buf);
    return 1;
}

static int run_python(const tools_t *t, const char *code, char **result) {
    if (!t->sandbox_url[0])
        return error_result(result, "error: %s%s", "the python tool has no sandbox (set code_sandbox_url)", "");
    sandbox_client_t cl = sandbox_client_default(t->sandbox_url);
    cl.http.timeout_s = t->timeout_s + 10;
    sandbox_run_t r;
    if (sandbox_client_run(&cl, "python", code, NULL, NULL, t->timeout_s, 0, 512, &r))
        return error_result(result, "error: python: %s%s", cispo_last_error(), "");
    int ok = !strcmp(r.run_status, "Finished") && r.return_code == 0;
    size_t ns = strlen(r.stdout_text), ne = strlen(r.stderr_text);
    char *out = cispo_malloc(ns + ne + 64);
    if (ok) snprintf(out, ns + ne + 64, "%s", r.stdout_text);
    else snprintf(out, ns + ne + 64, "error: %s (exit %d)\n%s%s", r.run_status[0] ? r.run_status : "failed",
                  r.return_code, r.stdout_text, r.stderr_text);
    sandbox_run_free(&r);
    *result = out;
    return !ok;
}

int tools_run(const tools_t *t, const tool_call_t *call, char **result) {
    *result = NULL;
    if (!call->name) return error_result(result, "error: malformed tool call: %s%s", call->args ? call->args : "", "");
    int known = 0;
    for (int i = 0; i < t->n; i++) known |= !strcmp(t->names[i], call->name);
    if (!known) {
        char list[300] = "";
        for (int i = 0; i < t->n; i++) snprintf(list + strlen(list), sizeof list - strlen(list), "%s%s", i ? ", " : "", t->names[i]);
        return error_result(result, "error: unknown tool '%.64s' (tools: %s)", call->name, list);
    }
    int rc;
    if (!strcmp(call->name, "calculator")) {
        char buf[256];
        rc = tool_calculator(call->args, buf, sizeof buf) ? 1 : 0;
        if (rc) return error_result(result, "error: calculator: %s%s", buf, "");
        *result = cispo_strdup(buf);
    } else {
        rc = run_python(t, call->args, result);
    }
    size_t n = strlen(*result);
    if ((int)n > t->max_result_chars) {  // a long output is cut, and says so
        (*result)[t->max_result_chars] = 0;
        char *r = cispo_malloc((size_t)t->max_result_chars + 64);
        snprintf(r, (size_t)t->max_result_chars + 64, "%s... (%zu characters cut)", *result, n - (size_t)t->max_result_chars);
        free(*result);
        *result = r;
    }
    return rc;
}

char *tool_result_plain(const tool_format_t *f, const char *result) {
    size_t n = strlen(f->result_open) + strlen(result) + strlen(f->result_close) + 1;
    char *s = cispo_malloc(n);
    snprintf(s, n, "%s%s%s", f->result_open, result, f->result_close);
    return s;
}
