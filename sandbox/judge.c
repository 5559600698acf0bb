// sandbox/judge.c — output comparison for judged runs (see judge.h).
// defines: judge_tokens, judge_json_values, judge_call_output, judge_call_input
#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sandbox/judge.h"

#define JUDGE_REL_TOL 1e-6

// Only plain decimal numbers take part in the tolerant comparison: strtod alone would also accept
// "inf", "nan" and hex floats, which judges compare as text.
static int parse_decimal(const char *s, size_t len, double *out) {
    char buf[128];
    if (len == 0 || len >= sizeof buf) return 0;
    int digits = 0;
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        if (isdigit((unsigned char)c)) digits = 1;
        else if (!(c == '+' || c == '-' || c == '.' || c == 'e' || c == 'E')) return 0;
    }
    if (!digits) return 0;
    memcpy(buf, s, len);
    buf[len] = 0;
    char *end;
    *out = strtod(buf, &end);
    return *end == 0 && isfinite(*out);
}

static double abs_d(double x) { return x < 0 ? -x : x; }

static int numbers_close(double a, double b) {
    if (a == b) return 1;
    double scale = abs_d(a) > abs_d(b) ? abs_d(a) : abs_d(b);
    if (scale < 1.0) scale = 1.0;
    return abs_d(a - b) <= JUDGE_REL_TOL * scale;
}

static int is_integer(const char *s, size_t n) {
    size_t i = (n && (s[0] == '-' || s[0] == '+')) ? 1 : 0;
    if (i == n) return 0;
    for (; i < n; i++)
        if (!isdigit((unsigned char)s[i])) return 0;
    return 1;
}

// Equal as integers: sign, then digits without leading zeros ("-0" is 0, "007" is 7).
static int integers_equal(const char *a, size_t an, const char *b, size_t bn) {
    int na = a[0] == '-', nb = b[0] == '-';
    if (a[0] == '-' || a[0] == '+') a++, an--;
    if (b[0] == '-' || b[0] == '+') b++, bn--;
    while (an > 1 && a[0] == '0') a++, an--;
    while (bn > 1 && b[0] == '0') b++, bn--;
    if (an == 1 && a[0] == '0') na = 0;
    if (bn == 1 && b[0] == '0') nb = 0;
    return na == nb && an == bn && !memcmp(a, b, an);
}

static const char *next_token(const char *p, const char *end, size_t *len) {
    while (p < end && isspace((unsigned char)*p)) p++;
    const char *s = p;
    while (p < end && !isspace((unsigned char)*p)) p++;
    *len = (size_t)(p - s);
    return s;
}

int judge_tokens(const char *got, size_t got_len, const char *want, size_t want_len, char *why, size_t n) {
    const char *g = got, *ge = got + got_len, *w = want, *we = want + want_len;
    for (long k = 1;; k++) {
        size_t gl, wl;
        const char *gt = next_token(g, ge, &gl), *wt = next_token(w, we, &wl);
        g = gt + gl;
        w = wt + wl;
        if (!gl && !wl) return 1;
        if (!gl || !wl) {
            snprintf(why, n, "%s output: token %ld is %s", !gl ? "short" : "extra", k, !gl ? "missing" : "not expected");
            return 0;
        }
        if (gl == wl && !memcmp(gt, wt, gl)) continue;
        int gi = is_integer(gt, gl), wi = is_integer(wt, wl);
        if (gi && wi) {  // integers are exact, at any length (Python prints big ones)
            if (integers_equal(gt, gl, wt, wl)) continue;
            snprintf(why, n, "token %ld: got '%.*s', want '%.*s'", k, (int)(gl > 40 ? 40 : gl), gt, (int)(wl > 40 ? 40 : wl), wt);
            return 0;
        }
        double a, b;
        if (parse_decimal(gt, gl, &a) && parse_decimal(wt, wl, &b) && numbers_close(a, b)) continue;
        snprintf(why, n, "token %ld: got '%.*s', want '%.*s'", k, (int)(gl > 40 ? 40 : gl), gt, (int)(wl > 40 ? 40 : wl), wt);
        return 0;
    }
}

int judge_json_values(const cJSON *a, const cJSON *b) {
    if (!a || !b) return a == b;
    if (cJSON_IsNumber(a) && cJSON_IsNumber(b)) return numbers_close(a->valuedouble, b->valuedouble);
    if (cJSON_IsBool(a) || cJSON_IsBool(b)) return cJSON_IsBool(a) && cJSON_IsBool(b) && cJSON_IsTrue(a) == cJSON_IsTrue(b);
    if (cJSON_IsNull(a) || cJSON_IsNull(b)) return cJSON_IsNull(a) && cJSON_IsNull(b);
    if (cJSON_IsString(a) && cJSON_IsString(b)) return !strcmp(a->valuestring, b->valuestring);
    if (cJSON_IsArray(a) && cJSON_IsArray(b)) {
        const cJSON *x = a->child, *y = b->child;
        for (; x && y; x = x->next, y = y->next)
            if (!judge_json_values(x, y)) return 0;
        return !x && !y;
    }
    if (cJSON_IsObject(a) && cJSON_IsObject(b)) {
        if (cJSON_GetArraySize(a) != cJSON_GetArraySize(b)) return 0;
        for (const cJSON *x = a->child; x; x = x->next) {
            const cJSON *y = cJSON_GetObjectItemCaseSensitive(b, x->string);
            if (!y || !judge_json_values(x, y)) return 0;
        }
        return 1;
    }
    return 0;
}

int judge_call_output(const char *got, const cJSON *want, char *why, size_t n) {
    const char *end = NULL;
    cJSON *g = got ? cJSON_ParseWithOpts(got, &end, 1) : NULL;
    if (!g) {
        snprintf(why, n, "no result: the function did not return a JSON-serializable value (or the program exited early)");
        return 0;
    }
    int ok = judge_json_values(g, want);
    if (!ok && cJSON_IsString(want)) {  // a string holding the JSON text of the value
        cJSON *w = cJSON_Parse(want->valuestring);
        ok = w && judge_json_values(g, w);
        cJSON_Delete(w);
    }
    if (!ok && cJSON_IsArray(want) && cJSON_GetArraySize(want) == 1)  // APPS wraps the value in a list
        ok = judge_json_values(g, want->child);
    if (!ok) {
        char *gs = cJSON_PrintUnformatted(g), *ws = cJSON_PrintUnformatted(want);
        snprintf(why, n, "returned %.80s, want %.80s", gs ? gs : "?", ws ? ws : "?");
        free(gs);
        free(ws);
    }
    cJSON_Delete(g);
    return ok;
}

static cJSON *call_args(const cJSON *input, char *why, size_t n) {
    if (cJSON_IsArray(input)) return cJSON_Duplicate(input, 1);
    if (!cJSON_IsString(input)) {
        snprintf(why, n, "call-based test input must be a JSON array of arguments or a string of JSON lines");
        return NULL;
    }
    cJSON *args = cJSON_CreateArray();
    const char *s = input->valuestring;
    int line = 0;
    while (*s) {
        const char *e = strchr(s, '\n');
        size_t len = e ? (size_t)(e - s) : strlen(s);
        line++;
        char *buf = malloc(len + 1);
        memcpy(buf, s, len);
        buf[len] = 0;
        int blank = 1;
        for (size_t i = 0; i < len; i++) blank &= isspace((unsigned char)buf[i]) != 0;
        if (!blank) {
            cJSON *v = cJSON_Parse(buf);
            if (!v) {
                snprintf(why, n, "call-based test input, line %d: not a JSON value: %.60s", line, buf);
                free(buf);
                cJSON_Delete(args);
                return NULL;
            }
            cJSON_AddItemToArray(args, v);
        }
        free(buf);
        s += len + (e ? 1 : 0);
    }
    return args;
}

char *judge_call_input(const char *fn_name, const cJSON *input, char *why, size_t n) {
    cJSON *args = call_args(input, why, n);
    if (!args) return NULL;
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "fn", fn_name);
    cJSON_AddItemToObject(o, "args", args);
    char *text = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    return text;
}
