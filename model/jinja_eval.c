// model/jinja_eval.c — rendering a parsed template (model/jinja_parse.c) with Python's semantics where
// chat templates rely on them: truthiness, ==, +, slicing and len over characters, str() and repr() of
// values, json.dumps as transformers' tojson calls it, jinja2's Undefined (prints as "", is false,
// iterates as empty; an attribute of it is an error) and its scoping (a loop body is a new scope each
// iteration, so templates carry state out of loops in namespace() objects).
// defines: jinja_render
//
// Filters: abs, capitalize, count, d, default, dictsort, first, float, indent, int, items, join, last,
//   length, list, lower, map, max, min, reject, rejectattr, replace, reverse, round, safe, select,
//   selectattr, sort, string, title, tojson, trim, unique, upper. Tests: boolean, callable, defined,
//   divisibleby, eq, equalto, even, false, float, ge, gt, in, integer, iterable, le, lower, lt, mapping,
//   ne, none, number, odd, sequence, string, true, undefined, upper. String methods: capitalize, count,
//   endswith, find, format, join, lower, lstrip, replace, rstrip, split, startswith, strip, title,
//   upper; dict methods: get, items, keys, values. Globals: dict, namespace, raise_exception, range,
//   strftime_now. Errors carry jinja2's own words where a caller may look for them: "'dict object' has
//   no attribute 'x'", "access to attribute 'append' of 'list' object is unsafe." (the sandbox).
#define _POSIX_C_SOURCE 200809L  // localtime_r, gmtime_r
#include <cjson/cJSON.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <utf8proc.h>

#include "base/buf.h"
#include "base/common.h"
#include "base/utf8.h"
#include "model/jinja_int.h"

typedef struct frame {
    struct frame *parent;
    jdict_t vars;
} frame_t;

typedef struct {
    const jinja_template_t *t;
    jarena_t arena;
    buf_t *out;          // where output goes: top, or a set block's or macro call's buffer
    buf_t top;
    buf_t *stack[256];   // the buffers of set blocks and macro calls in flight (freed on an error)
    int n_stack;
    frame_t *root;
    int ctl;  // 1: break, 2: continue pending
    jval_t blockval;  // the body of the filter block being filtered (JN_BLOCKVAL)
    int depth;
    jmp_buf jb;
    char err[1024];
} render_t;

enum {
    FN_RANGE, FN_NAMESPACE, FN_RAISE, FN_STRFTIME, FN_DICT,
    FN_S_STRIP, FN_S_LSTRIP, FN_S_RSTRIP, FN_S_SPLIT, FN_S_STARTSWITH, FN_S_ENDSWITH, FN_S_UPPER, FN_S_LOWER,
    FN_S_REPLACE, FN_S_TITLE, FN_S_CAPITALIZE, FN_S_FIND, FN_S_COUNT, FN_S_JOIN, FN_S_FORMAT,
    FN_D_ITEMS, FN_D_KEYS, FN_D_VALUES, FN_D_GET,
};

static const struct { const char *name; int id; } str_methods[] = {
    {"strip", FN_S_STRIP}, {"lstrip", FN_S_LSTRIP}, {"rstrip", FN_S_RSTRIP}, {"split", FN_S_SPLIT},
    {"startswith", FN_S_STARTSWITH}, {"endswith", FN_S_ENDSWITH}, {"upper", FN_S_UPPER}, {"lower", FN_S_LOWER},
    {"replace", FN_S_REPLACE}, {"title", FN_S_TITLE}, {"capitalize", FN_S_CAPITALIZE}, {"find", FN_S_FIND},
    {"count", FN_S_COUNT}, {"join", FN_S_JOIN}, {"format", FN_S_FORMAT}, {NULL, 0}};
static const struct { const char *name; int id; } dict_methods[] = {
    {"items", FN_D_ITEMS}, {"keys", FN_D_KEYS}, {"values", FN_D_VALUES}, {"get", FN_D_GET}, {NULL, 0}};

CISPO_PRINTF(3, 4) static _Noreturn void rerr(render_t *R, const jnode_t *at, const char *fmt, ...) {
    char msg[900];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (at) snprintf(R->err, sizeof R->err, "%s:%d:%d: %s", R->t->name, at->line, at->col, msg);
    else snprintf(R->err, sizeof R->err, "%s: %s", R->t->name, msg);
    longjmp(R->jb, 1);
}

// ---- values ----
static jval_t v_undef(const char *name) { jval_t v = {.t = JV_UNDEF}; v.undef_name = name; return v; }
static jval_t v_none(void) { return (jval_t){.t = JV_NONE}; }
static jval_t v_bool(int b) { jval_t v = {.t = JV_BOOL}; v.u.b = !!b; return v; }
static jval_t v_int(long long i) { jval_t v = {.t = JV_INT}; v.u.i = i; return v; }
static jval_t v_float(double f) { jval_t v = {.t = JV_FLOAT}; v.u.f = f; return v; }
static jval_t v_strn(render_t *R, const char *p, size_t n) {
    jval_t v = {.t = JV_STR};
    v.u.s.p = jarena_strndup(&R->arena, p, n), v.u.s.n = n;
    return v;
}
static jval_t v_str_buf(render_t *R, buf_t *b) {
    jval_t v = v_strn(R, b->s ? b->s : "", b->n);
    buf_free(b);
    return v;
}
static jval_t v_list(render_t *R) {
    jval_t v = {.t = JV_LIST};
    v.u.l = jarena_alloc(&R->arena, sizeof(jlist_t));
    return v;
}
static jval_t v_dict(render_t *R) {
    jval_t v = {.t = JV_DICT};
    v.u.d = jarena_alloc(&R->arena, sizeof(jdict_t));
    return v;
}
static void list_push(render_t *R, jlist_t *l, jval_t x) {
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 8;
        jval_t *v = jarena_alloc(&R->arena, cap * sizeof *v);
        if (l->n) memcpy(v, l->v, l->n * sizeof *v);
        l->v = v, l->cap = cap;
    }
    l->v[l->n++] = x;
}
static int str_eq(jval_t a, const char *s, size_t n) { return a.t == JV_STR && a.u.s.n == n && !memcmp(a.u.s.p, s, n); }
static jval_t *dict_find(const jdict_t *d, const char *k, size_t n) {
    for (size_t i = 0; i < d->n; i++)
        if (str_eq(d->k[i], k, n)) return &d->v[i];
    return NULL;
}
static int values_equal(jval_t a, jval_t b);
static jval_t *dict_find_v(const jdict_t *d, jval_t k) {
    for (size_t i = 0; i < d->n; i++)
        if (values_equal(d->k[i], k)) return &d->v[i];
    return NULL;
}
static void dict_set_v(render_t *R, jdict_t *d, jval_t k, jval_t v) {
    jval_t *slot = dict_find_v(d, k);
    if (slot) {
        *slot = v;
        return;
    }
    if (d->n == d->cap) {
        size_t cap = d->cap ? d->cap * 2 : 8;
        jval_t *kk = jarena_alloc(&R->arena, cap * sizeof *kk), *vv = jarena_alloc(&R->arena, cap * sizeof *vv);
        if (d->n) memcpy(kk, d->k, d->n * sizeof *kk), memcpy(vv, d->v, d->n * sizeof *vv);
        d->k = kk, d->v = vv, d->cap = cap;
    }
    d->k[d->n] = k, d->v[d->n++] = v;
}
static void dict_set(render_t *R, jdict_t *d, const char *k, jval_t v) {
    jval_t key = {.t = JV_STR};
    key.u.s.p = k, key.u.s.n = strlen(k);
    dict_set_v(R, d, key, v);
}

// The next number literal of JSON text at or after p, outside strings (NULL: none); *n its length.
static const char *json_next_number(const char *p, size_t *n) {
    while (*p) {
        if (*p == '"') {
            for (p++; *p && *p != '"'; p++)
                if (*p == '\\' && p[1]) p++;
            if (*p) p++;
        } else if (*p == '-' || (*p >= '0' && *p <= '9')) {
            const char *q = p;
            while (*q && strchr("+-0123456789.eE", *q)) q++;
            *n = (size_t)(q - p);
            return p;
        } else {
            p++;
        }
    }
    return NULL;
}

// Marks the numbers of j (in document order, as the literals of text come) written as floats.
static void json_mark_floats(cJSON *j, const char **text) {
    for (; j; j = j->next) {
        if (cJSON_IsNumber(j) && *text) {
            size_t n = 0;
            const char *lit = json_next_number(*text, &n);
            if (lit && (memchr(lit, '.', n) || memchr(lit, 'e', n) || memchr(lit, 'E', n))) j->type |= JINJA_JSON_FLOAT;
            *text = lit ? lit + n : NULL;
        }
        json_mark_floats(j->child, text);
    }
}

cJSON *jinja_json_parse(const char *text) {
    cJSON *j = cJSON_Parse(text);
    const char *p = text;
    if (j) json_mark_floats(j, &p);
    return j;
}

static jval_t from_json(render_t *R, const cJSON *j) {
    if (!j || cJSON_IsNull(j)) return v_none();
    if (cJSON_IsBool(j)) return v_bool(cJSON_IsTrue(j));
    if (cJSON_IsNumber(j)) {
        double x = j->valuedouble;
        if (j->type & JINJA_JSON_FLOAT) return v_float(x);
        if (x == floor(x) && fabs(x) < 9007199254740992.0) return v_int((long long)x);
        return v_float(x);
    }
    if (cJSON_IsString(j)) return v_strn(R, j->valuestring, strlen(j->valuestring));
    if (cJSON_IsArray(j)) {
        jval_t l = v_list(R);
        for (const cJSON *c = j->child; c; c = c->next) list_push(R, l.u.l, from_json(R, c));
        return l;
    }
    if (cJSON_IsObject(j)) {
        jval_t d = v_dict(R);
        for (const cJSON *c = j->child; c; c = c->next)
            dict_set_v(R, d.u.d, v_strn(R, c->string, strlen(c->string)), from_json(R, c));
        return d;
    }
    return v_none();
}

static const char *type_name(jval_t v) {
    switch (v.t) {
    case JV_UNDEF: return "undefined";
    case JV_NONE: return "none";
    case JV_BOOL: return "bool";
    case JV_INT: return "int";
    case JV_FLOAT: return "float";
    case JV_STR: return "str";
    case JV_LIST: return "list";
    case JV_DICT: return v.u.d->is_namespace ? "namespace" : "dict";
    case JV_MACRO: return "macro";
    case JV_FUNC: return "function";
    }
    return "?";
}

static int truthy(jval_t v) {
    switch (v.t) {
    case JV_UNDEF: case JV_NONE: return 0;
    case JV_BOOL: return v.u.b;
    case JV_INT: return v.u.i != 0;
    case JV_FLOAT: return v.u.f != 0;
    case JV_STR: return v.u.s.n != 0;
    case JV_LIST: return v.u.l->is_gen || v.u.l->n != 0;
    case JV_DICT: return v.u.d->is_namespace || v.u.d->n != 0;
    default: return 1;
    }
}

static int is_num(jval_t v) { return v.t == JV_INT || v.t == JV_FLOAT || v.t == JV_BOOL; }
static double num_f(jval_t v) { return v.t == JV_FLOAT ? v.u.f : v.t == JV_INT ? (double)v.u.i : (double)v.u.b; }
static long long num_i(jval_t v) { return v.t == JV_INT ? v.u.i : v.t == JV_BOOL ? v.u.b : (long long)v.u.f; }

static int values_equal(jval_t a, jval_t b) {
    if (is_num(a) && is_num(b)) {
        if (a.t != JV_FLOAT && b.t != JV_FLOAT) return num_i(a) == num_i(b);
        return num_f(a) == num_f(b);
    }
    if (a.t != b.t) return 0;
    switch (a.t) {
    case JV_UNDEF: case JV_NONE: return 1;
    case JV_STR: return a.u.s.n == b.u.s.n && !memcmp(a.u.s.p, b.u.s.p, a.u.s.n);
    case JV_LIST:
        if (a.u.l->is_gen || b.u.l->is_gen) return a.u.l == b.u.l;
        if (a.u.l->n != b.u.l->n || a.u.l->is_tuple != b.u.l->is_tuple) return 0;
        for (size_t i = 0; i < a.u.l->n; i++)
            if (!values_equal(a.u.l->v[i], b.u.l->v[i])) return 0;
        return 1;
    case JV_DICT:
        if (a.u.d->n != b.u.d->n) return 0;
        for (size_t i = 0; i < a.u.d->n; i++) {
            jval_t *o = dict_find_v(b.u.d, a.u.d->k[i]);
            if (!o || !values_equal(a.u.d->v[i], *o)) return 0;
        }
        return 1;
    case JV_MACRO: return a.u.macro == b.u.macro;
    default: return 0;
    }
}

// ---- Python's str(), repr() and json.dumps ----
static void py_float(buf_t *b, double x, int json) {
    if (isnan(x)) { buf_puts(b, json ? "NaN" : "nan"); return; }
    if (isinf(x)) { buf_puts(b, x > 0 ? (json ? "Infinity" : "inf") : (json ? "-Infinity" : "-inf")); return; }
    char s[40];
    int prec = 1;
    for (; prec <= 17; prec++) {  // the shortest digits that read back to x (Python's repr)
        snprintf(s, sizeof s, "%.*e", prec - 1, x);
        if (strtod(s, NULL) == x) break;
    }
    char digits[24];
    int nd = 0, neg = s[0] == '-';
    const char *p = s + neg;
    for (; *p && *p != 'e'; p++)
        if (*p != '.') digits[nd++] = *p;
    int e = atoi(p + 1);
    while (nd > 1 && digits[nd - 1] == '0') nd--;
    if (neg) buf_putc(b, '-');
    if (e >= -5 + 1 && e < 16) {  // fixed notation for 1e-4 <= |x| < 1e16
        if (e < 0) {
            buf_puts(b, "0.");
            for (int i = 0; i < -e - 1; i++) buf_putc(b, '0');
            buf_append(b, digits, (size_t)nd);
        } else {
            for (int i = 0; i <= e; i++) buf_putc(b, i < nd ? digits[i] : '0');
            buf_putc(b, '.');
            if (nd > e + 1) buf_append(b, digits + e + 1, (size_t)(nd - e - 1));
            else buf_putc(b, '0');
        }
    } else {
        buf_putc(b, digits[0]);
        if (nd > 1) buf_putc(b, '.'), buf_append(b, digits + 1, (size_t)(nd - 1));
        buf_printf(b, "e%c%02d", e < 0 ? '-' : '+', e < 0 ? -e : e);
    }
}

static void py_repr(buf_t *b, jval_t v);

static void py_str(buf_t *b, jval_t v) {
    switch (v.t) {
    case JV_UNDEF: return;
    case JV_NONE: buf_puts(b, "None"); return;
    case JV_BOOL: buf_puts(b, v.u.b ? "True" : "False"); return;
    case JV_INT: buf_printf(b, "%lld", v.u.i); return;
    case JV_FLOAT: py_float(b, v.u.f, 0); return;
    case JV_STR: buf_append(b, v.u.s.p, v.u.s.n); return;
    default: py_repr(b, v);
    }
}

static void py_repr(buf_t *b, jval_t v) {
    switch (v.t) {
    case JV_STR: {
        int has_sq = memchr(v.u.s.p, '\'', v.u.s.n) != NULL, has_dq = memchr(v.u.s.p, '"', v.u.s.n) != NULL;
        char q = has_sq && !has_dq ? '"' : '\'';
        buf_putc(b, q);
        for (size_t i = 0; i < v.u.s.n; i++) {
            unsigned char c = (unsigned char)v.u.s.p[i];
            if (c == q || c == '\\') buf_putc(b, '\\'), buf_putc(b, (char)c);
            else if (c == '\n') buf_puts(b, "\\n");
            else if (c == '\r') buf_puts(b, "\\r");
            else if (c == '\t') buf_puts(b, "\\t");
            else if (c < 0x20 || c == 0x7f) buf_printf(b, "\\x%02x", c);
            else buf_putc(b, (char)c);
        }
        buf_putc(b, q);
        return;
    }
    case JV_LIST:
        buf_putc(b, v.u.l->is_tuple ? '(' : '[');
        for (size_t i = 0; i < v.u.l->n; i++) {
            if (i) buf_puts(b, ", ");
            py_repr(b, v.u.l->v[i]);
        }
        if (v.u.l->is_tuple && v.u.l->n == 1) buf_putc(b, ',');
        buf_putc(b, v.u.l->is_tuple ? ')' : ']');
        return;
    case JV_DICT:
        if (v.u.d->is_namespace) buf_puts(b, "<Namespace ");
        buf_putc(b, '{');
        for (size_t i = 0; i < v.u.d->n; i++) {
            if (i) buf_puts(b, ", ");
            py_repr(b, v.u.d->k[i]);
            buf_puts(b, ": ");
            py_repr(b, v.u.d->v[i]);
        }
        buf_putc(b, '}');
        if (v.u.d->is_namespace) buf_putc(b, '>');
        return;
    case JV_MACRO: buf_puts(b, "<Macro>"); return;
    case JV_FUNC: buf_puts(b, "<function>"); return;
    default: py_str(b, v);
    }
}

typedef struct {
    int indent;            // -1: none
    const char *item_sep, *key_sep;
    int sort_keys, ensure_ascii;
} json_opts_t;

static void json_str(buf_t *b, const char *s, size_t n, int ensure_ascii) {
    buf_putc(b, '"');
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        switch (c) {
        case '"': buf_puts(b, "\\\""); break;
        case '\\': buf_puts(b, "\\\\"); break;
        case '\n': buf_puts(b, "\\n"); break;
        case '\r': buf_puts(b, "\\r"); break;
        case '\t': buf_puts(b, "\\t"); break;
        case '\b': buf_puts(b, "\\b"); break;
        case '\f': buf_puts(b, "\\f"); break;
        default:
            if (c < 0x20) {
                buf_printf(b, "\\u%04x", c);
            } else if (c >= 0x80 && ensure_ascii) {
                uint32_t cp;
                int k = utf8_decode(s + i, n - i, &cp);
                if (!k) cp = 0xFFFD, k = 1;
                if (cp >= 0x10000) {
                    cp -= 0x10000;
                    buf_printf(b, "\\u%04x\\u%04x", 0xD800 + (cp >> 10), 0xDC00 + (cp & 0x3FF));
                } else {
                    buf_printf(b, "\\u%04x", cp);
                }
                i += (size_t)k - 1;
            } else {
                buf_putc(b, (char)c);
            }
        }
    }
    buf_putc(b, '"');
}

static int str_cmp(jval_t a, jval_t b) {
    size_t n = a.u.s.n < b.u.s.n ? a.u.s.n : b.u.s.n;
    int c = memcmp(a.u.s.p, b.u.s.p, n);
    return c ? c : (a.u.s.n > b.u.s.n) - (a.u.s.n < b.u.s.n);
}

static void json_newline(buf_t *b, const json_opts_t *o, int level) {
    buf_putc(b, '\n');
    for (int i = 0; i < o->indent * level; i++) buf_putc(b, ' ');
}

static void json_dump(render_t *R, const jnode_t *at, buf_t *b, jval_t v, const json_opts_t *o, int level) {
    switch (v.t) {
    case JV_NONE: buf_puts(b, "null"); return;
    case JV_BOOL: buf_puts(b, v.u.b ? "true" : "false"); return;
    case JV_INT: buf_printf(b, "%lld", v.u.i); return;
    case JV_FLOAT: py_float(b, v.u.f, 1); return;
    case JV_STR: json_str(b, v.u.s.p, v.u.s.n, o->ensure_ascii); return;
    case JV_LIST:
        if (v.u.l->is_gen) rerr(R, at, "tojson: Object of type generator is not JSON serializable (add '| list')");
        if (!v.u.l->n) { buf_puts(b, "[]"); return; }
        buf_putc(b, '[');
        for (size_t i = 0; i < v.u.l->n; i++) {
            if (i) buf_puts(b, o->item_sep);
            if (o->indent >= 0) json_newline(b, o, level + 1);
            json_dump(R, at, b, v.u.l->v[i], o, level + 1);
        }
        if (o->indent >= 0) json_newline(b, o, level);
        buf_putc(b, ']');
        return;
    case JV_DICT: {
        if (!v.u.d->n) { buf_puts(b, "{}"); return; }
        size_t n = v.u.d->n, *ord = jarena_alloc(&R->arena, (n + 1) * sizeof *ord);  // the arena: a failure below frees it
        for (size_t i = 0; i < n; i++) ord[i] = i;
        if (o->sort_keys)
            for (size_t i = 1; i < n; i++)  // insertion sort: dicts are small
                for (size_t j = i; j > 0 && v.u.d->k[ord[j - 1]].t == JV_STR && v.u.d->k[ord[j]].t == JV_STR &&
                                   str_cmp(v.u.d->k[ord[j - 1]], v.u.d->k[ord[j]]) > 0; j--) {
                    size_t t = ord[j];
                    ord[j] = ord[j - 1], ord[j - 1] = t;
                }
        buf_putc(b, '{');
        for (size_t i = 0; i < n; i++) {
            jval_t k = v.u.d->k[ord[i]];
            if (i) buf_puts(b, o->item_sep);
            if (o->indent >= 0) json_newline(b, o, level + 1);
            if (k.t == JV_STR) {
                json_str(b, k.u.s.p, k.u.s.n, o->ensure_ascii);
            } else {
                buf_t kb = {0};
                buf_init(&kb);
                if (k.t == JV_NONE) buf_puts(&kb, "null");
                else if (k.t == JV_BOOL) buf_puts(&kb, k.u.b ? "true" : "false");
                else py_str(&kb, k);
                json_str(b, kb.s, kb.n, o->ensure_ascii);
                buf_free(&kb);
            }
            buf_puts(b, o->key_sep);
            json_dump(R, at, b, v.u.d->v[ord[i]], o, level + 1);
        }
        if (o->indent >= 0) json_newline(b, o, level);
        buf_putc(b, '}');
        return;
    }
    default:  // b is on the render's stack of buffers, freed with it
        rerr(R, at, "tojson: a value of type %s is not JSON serializable", type_name(v));
    }
}

// ---- UTF-8 character helpers (Python's len and slices count characters) ----
static size_t n_chars(const char *s, size_t n) {
    size_t c = 0;
    for (size_t i = 0; i < n; i++) c += !utf8_is_cont((unsigned char)s[i]);
    return c;
}
static size_t char_offset(const char *s, size_t n, size_t k) {  // byte offset of character k
    size_t i = 0;
    for (size_t c = 0; i < n; i++) {
        if (!utf8_is_cont((unsigned char)s[i])) {
            if (c == k) return i;
            c++;
        }
    }
    return n;
}

static jval_t to_str(render_t *R, jval_t v) {
    if (v.t == JV_STR) return v;
    buf_t b = {0};
    buf_init(&b);
    py_str(&b, v);
    return v_str_buf(R, &b);
}

// ---- scopes ----
static jval_t *lookup(frame_t *f, const char *name) {
    size_t n = strlen(name);
    for (; f; f = f->parent) {
        jval_t *v = dict_find(&f->vars, name, n);
        if (v) return v;
    }
    return NULL;
}
static frame_t *frame_new(render_t *R, frame_t *parent) {
    frame_t *f = jarena_alloc(&R->arena, sizeof *f);
    f->parent = parent;
    return f;
}

static jval_t eval(render_t *R, frame_t *f, const jnode_t *n);
static void exec_body(render_t *R, frame_t *f, jnode_t *const *stmts, int n);

// ---- attribute and item access ----
static jval_t bound(render_t *R, int id, jval_t self) {
    jval_t v = {.t = JV_FUNC};
    v.u.fn.id = id;
    v.u.fn.self = jarena_alloc(&R->arena, sizeof(jval_t));
    *v.u.fn.self = self;
    return v;
}

// jinja2's name for the type of a value in its messages (utils.object_type_repr).
static const char *object_type_repr(jval_t v) {
    switch (v.t) {
    case JV_NONE: return "None";
    case JV_BOOL: return "bool object";
    case JV_INT: return "int object";
    case JV_FLOAT: return "float object";
    case JV_STR: return "str object";
    case JV_LIST: return v.u.l->is_gen ? "generator object" : v.u.l->is_tuple ? "tuple object" : "list object";
    case JV_DICT: return v.u.d->is_namespace ? "jinja2.utils.Namespace object" : "dict object";
    case JV_MACRO: return "jinja2.runtime.Macro object";
    default: return "function object";
    }
}

// An undefined value for a missing attribute (or element: key not a string) of obj, carrying jinja2's
// message ("'dict object' has no attribute 'x'", "'list object' has no element 3").
static jval_t v_undef_in(render_t *R, jval_t obj, const char *name, const jval_t *key) {
    jval_t u = v_undef(name);
    char msg[300];
    if (key) {
        buf_t b = {0};
        buf_init(&b);
        py_repr(&b, *key);
        snprintf(msg, sizeof msg, "%s has no element %s", object_type_repr(obj), b.s);
        buf_free(&b);
    } else {
        snprintf(msg, sizeof msg, "'%s' has no attribute '%s'", object_type_repr(obj), name);
    }
    u.undef_msg = jarena_strndup(&R->arena, msg, strlen(msg));
    return u;
}

// jinja2's UndefinedError text of an undefined value.
static const char *undef_text(render_t *R, jval_t u) {
    if (u.undef_msg) return u.undef_msg;
    char msg[300];
    snprintf(msg, sizeof msg, "'%s' is undefined", u.undef_name ? u.undef_name : "value");
    return jarena_strndup(&R->arena, msg, strlen(msg));
}

static jval_t get_attr(render_t *R, const jnode_t *at, jval_t obj, const char *name) {
    if (obj.t == JV_UNDEF) rerr(R, at, "%s (reading its attribute '%s')", undef_text(R, obj), name);
    if (obj.t == JV_STR)
        for (int i = 0; str_methods[i].name; i++)
            if (!strcmp(str_methods[i].name, name)) return bound(R, str_methods[i].id, obj);
    if (obj.t == JV_DICT) {
        if (!obj.u.d->is_namespace)
            for (int i = 0; dict_methods[i].name; i++)
                if (!strcmp(dict_methods[i].name, name)) return bound(R, dict_methods[i].id, obj);
        jval_t *v = dict_find(obj.u.d, name, strlen(name));
        if (v) return *v;
    }
    return v_undef_in(R, obj, name, NULL);
}

static long long norm_index(long long i, size_t n) { return i < 0 ? i + (long long)n : i; }

static jval_t get_item(render_t *R, const jnode_t *at, jval_t obj, jval_t key) {
    if (obj.t == JV_UNDEF) rerr(R, at, "%s (reading an item of it)", undef_text(R, obj));
    if (obj.t == JV_DICT) {
        jval_t *v = dict_find_v(obj.u.d, key);
        if (v) return *v;
        if (key.t == JV_STR) return get_attr(R, at, obj, jarena_strndup(&R->arena, key.u.s.p, key.u.s.n));
        return v_undef_in(R, obj, "item", &key);
    }
    if (obj.t == JV_LIST && obj.u.l->is_gen) return v_undef_in(R, obj, "item", &key);  // jinja2: not subscriptable
    if ((obj.t == JV_LIST || obj.t == JV_STR) && (key.t == JV_INT || key.t == JV_BOOL)) {
        size_t n = obj.t == JV_LIST ? obj.u.l->n : n_chars(obj.u.s.p, obj.u.s.n);
        long long i = norm_index(num_i(key), n);
        if (i < 0 || i >= (long long)n) return v_undef_in(R, obj, "item", &key);
        if (obj.t == JV_LIST) return obj.u.l->v[i];
        size_t a = char_offset(obj.u.s.p, obj.u.s.n, (size_t)i), b = char_offset(obj.u.s.p, obj.u.s.n, (size_t)i + 1);
        return v_strn(R, obj.u.s.p + a, b - a);
    }
    if (key.t == JV_STR) return get_attr(R, at, obj, jarena_strndup(&R->arena, key.u.s.p, key.u.s.n));
    return v_undef_in(R, obj, "item", &key);
}

// Python's slice indices for a sequence of n.
static jval_t do_slice(render_t *R, const jnode_t *at, jval_t obj, jval_t lo, jval_t hi, jval_t st) {
    if (obj.t != JV_LIST && obj.t != JV_STR) rerr(R, at, "cannot slice a value of type %s", type_name(obj));
    if (obj.t == JV_LIST && obj.u.l->is_gen) {  // jinja2: not subscriptable, so undefined
        jval_t u = v_undef("slice");
        u.undef_msg = "generator object has no element (a slice)";
        return u;
    }
    long long n = obj.t == JV_LIST ? (long long)obj.u.l->n : (long long)n_chars(obj.u.s.p, obj.u.s.n);
    long long step = st.t == JV_NONE || st.t == JV_UNDEF ? 1 : num_i(st);
    if (step == 0) rerr(R, at, "slice step cannot be zero");
    long long a, b;
    if (lo.t == JV_NONE || lo.t == JV_UNDEF) a = step > 0 ? 0 : n - 1;
    else {
        a = num_i(lo);
        if (a < 0) a += n;
        if (a < 0) a = step > 0 ? 0 : -1;
        if (a >= n) a = step > 0 ? n : n - 1;
    }
    if (hi.t == JV_NONE || hi.t == JV_UNDEF) b = step > 0 ? n : -1;
    else {
        b = num_i(hi);
        if (b < 0) b += n;
        if (b < 0) b = step > 0 ? 0 : -1;
        if (b >= n) b = step > 0 ? n : n - 1;
    }
    if (obj.t == JV_LIST) {
        jval_t out = v_list(R);
        for (long long i = a; step > 0 ? i < b : i > b; i += step) list_push(R, out.u.l, obj.u.l->v[i]);
        return out;
    }
    buf_t buf = {0};
    buf_init(&buf);
    for (long long i = a; step > 0 ? i < b : i > b; i += step) {
        size_t x = char_offset(obj.u.s.p, obj.u.s.n, (size_t)i), y = char_offset(obj.u.s.p, obj.u.s.n, (size_t)i + 1);
        buf_append(&buf, obj.u.s.p + x, y - x);
    }
    return v_str_buf(R, &buf);
}

// The items a for loop walks: list elements, dict keys, string characters; undefined and none: none.
static jlist_t *iter_items(render_t *R, const jnode_t *at, jval_t v) {
    jlist_t *l = jarena_alloc(&R->arena, sizeof *l);
    if (v.t == JV_LIST && v.u.l->is_gen) {  // a generator yields its items once
        if (v.u.l->consumed) return l;
        v.u.l->consumed = 1;
        return v.u.l;
    }
    if (v.t == JV_LIST) return v.u.l;
    if (v.t == JV_UNDEF) return l;
    if (v.t == JV_DICT) {
        for (size_t i = 0; i < v.u.d->n; i++) list_push(R, l, v.u.d->k[i]);
        return l;
    }
    if (v.t == JV_STR) {
        for (size_t i = 0; i < v.u.s.n;) {
            size_t j = i + 1;
            while (j < v.u.s.n && utf8_is_cont((unsigned char)v.u.s.p[j])) j++;
            list_push(R, l, v_strn(R, v.u.s.p + i, j - i));
            i = j;
        }
        return l;
    }
    rerr(R, at, "a value of type %s is not iterable", type_name(v));
}

static jval_t dict_items(render_t *R, jdict_t *d) {
    jval_t out = v_list(R);
    for (size_t i = 0; i < d->n; i++) {
        jval_t pair = v_list(R);
        pair.u.l->is_tuple = 1;
        list_push(R, pair.u.l, d->k[i]);
        list_push(R, pair.u.l, d->v[i]);
        list_push(R, out.u.l, pair);
    }
    return out;
}

// ---- arguments ----
typedef struct {
    jval_t *pos;
    int npos;
    const char **kw;
    jval_t *kwv;
    int nkw;
} args_t;

static args_t eval_args(render_t *R, frame_t *f, const jnode_t *n) {
    args_t a = {0};
    if (!n->n_args) return a;
    a.pos = jarena_alloc(&R->arena, (size_t)n->n_args * sizeof *a.pos);
    a.kw = jarena_alloc(&R->arena, (size_t)n->n_args * sizeof *a.kw);
    a.kwv = jarena_alloc(&R->arena, (size_t)n->n_args * sizeof *a.kwv);
    for (int i = 0; i < n->n_args; i++) {
        jval_t v = eval(R, f, n->args[i]);
        if (n->kwnames && n->kwnames[i]) a.kw[a.nkw] = n->kwnames[i], a.kwv[a.nkw++] = v;
        else a.pos[a.npos++] = v;
    }
    return a;
}

// Argument i by position or by name; def when absent.
static jval_t arg(const args_t *a, int i, const char *name, jval_t def) {
    if (i >= 0 && i < a->npos) return a->pos[i];
    for (int k = 0; k < a->nkw; k++)
        if (name && !strcmp(a->kw[k], name)) return a->kwv[k];
    return def;
}

static jval_t need_str(render_t *R, const jnode_t *at, jval_t v, const char *what) {
    if (v.t != JV_STR) rerr(R, at, "%s: expected a string, got %s", what, type_name(v));
    return v;
}

// Python's str.isspace(): what strip(), split() and the trim filter remove (Unicode 16).
static int is_pyspace(uint32_t c) {
    return c == ' ' || (c >= 9 && c <= 13) || (c >= 0x1c && c <= 0x1f) || c == 0x85 || c == 0xa0 || c == 0x1680 ||
           (c >= 0x2000 && c <= 0x200a) || c == 0x2028 || c == 0x2029 || c == 0x202f || c == 0x205f || c == 0x3000;
}

// The character at p (n > 0 bytes left): its code point and byte length; a byte that does not start
// valid UTF-8 is a character of its own (code point 0xDC00 + byte, as Python's surrogateescape).
static int char_at(const char *p, size_t n, uint32_t *cp) {
    int k = utf8_decode(p, n, cp);
    if (k <= 0) *cp = 0xDC00 + (unsigned char)*p, k = 1;
    return k;
}

// The offset of the last character of p[0..n) (n > 0).
static size_t char_last(const char *p, size_t n) {
    size_t k = n - 1;
    while (k > 0 && n - k < 4 && utf8_is_cont((unsigned char)p[k])) k--;
    uint32_t cp;
    return char_at(p + k, n - k, &cp) == (int)(n - k) ? k : n - 1;
}

static int in_chars(uint32_t c, jval_t chars) {  // chars: a string (its characters) or not: whitespace
    if (chars.t != JV_STR) return is_pyspace(c);
    for (size_t i = 0; i < chars.u.s.n;) {
        uint32_t d;
        i += (size_t)char_at(chars.u.s.p + i, chars.u.s.n - i, &d);
        if (d == c) return 1;
    }
    return 0;
}

// str.strip/lstrip/rstrip (chars: not a string for whitespace).
static jval_t s_strip(render_t *R, jval_t s, jval_t chars, int left, int right) {
    const char *p = s.u.s.p;
    size_t a = 0, b = s.u.s.n;
    uint32_t c;
    while (left && a < b) {
        int k = char_at(p + a, b - a, &c);
        if (!in_chars(c, chars)) break;
        a += (size_t)k;
    }
    while (right && b > a) {
        size_t k = a + char_last(p + a, b - a);
        char_at(p + k, b - k, &c);
        if (!in_chars(c, chars)) break;
        b = k;
    }
    jval_t out = s;
    out.u.s.p = p + a, out.u.s.n = b - a;
    (void)R;
    return out;
}

static const char *memfind(const char *h, size_t hn, const char *nd, size_t nn) {
    if (nn == 0) return h;
    for (size_t i = 0; i + nn <= hn; i++)
        if (h[i] == nd[0] && !memcmp(h + i, nd, nn)) return h + i;
    return NULL;
}

static jval_t s_replace(render_t *R, jval_t s, jval_t old, jval_t new_, long long count) {
    buf_t b = {0};
    buf_init(&b);
    const char *p = s.u.s.p, *end = p + s.u.s.n;
    long long done = 0;
    if (old.u.s.n == 0) {  // Python inserts new_ between characters
        while (p <= end) {
            if (count < 0 || done < count) buf_append(&b, new_.u.s.p, new_.u.s.n), done++;
            if (p == end) break;
            const char *q = p + 1;
            while (q < end && utf8_is_cont((unsigned char)*q)) q++;
            buf_append(&b, p, (size_t)(q - p));
            p = q;
        }
        return v_str_buf(R, &b);
    }
    for (;;) {
        const char *q = (count < 0 || done < count) ? memfind(p, (size_t)(end - p), old.u.s.p, old.u.s.n) : NULL;
        if (!q) break;
        buf_append(&b, p, (size_t)(q - p));
        buf_append(&b, new_.u.s.p, new_.u.s.n);
        p = q + old.u.s.n, done++;
    }
    buf_append(&b, p, (size_t)(end - p));
    return v_str_buf(R, &b);
}

// Python's lower/upper/title/capitalize per character (simple case mappings of utf8proc).
static jval_t s_case(render_t *R, jval_t s, int mode) {  // 0 lower, 1 upper, 2 title, 3 capitalize
    buf_t b = {0};
    buf_init(&b);
    int prev_cased = 0;
    for (size_t i = 0; i < s.u.s.n;) {
        uint32_t cp;
        int k = utf8_decode(s.u.s.p + i, s.u.s.n - i, &cp);
        if (!k) {  // not UTF-8: the byte as it is
            buf_putc(&b, s.u.s.p[i++]);
            prev_cased = 0;
            continue;
        }
        utf8proc_int32_t c = (utf8proc_int32_t)cp;
        int cased = utf8proc_tolower(c) != c || utf8proc_toupper(c) != c;
        int up = mode == 1 || (mode == 2 && !prev_cased) || (mode == 3 && i == 0);
        utf8proc_int32_t o = up ? (mode == 1 ? utf8proc_toupper(c) : utf8proc_totitle(c)) : utf8proc_tolower(c);
        char e[4];
        buf_append(&b, e, (size_t)utf8_encode((uint32_t)o, e));
        prev_cased = cased;
        i += (size_t)k;
    }
    return v_str_buf(R, &b);
}

static jval_t s_split(render_t *R, jval_t s, jval_t sep, long long maxsplit) {
    jval_t out = v_list(R);
    const char *p = s.u.s.p, *end = p + s.u.s.n;
    long long done = 0;
    if (sep.t != JV_STR) {  // runs of whitespace, no empty strings
        uint32_t c;
        for (;;) {
            int k;
            while (p < end && (k = char_at(p, (size_t)(end - p), &c), is_pyspace(c))) p += k;
            if (p >= end) break;
            if (maxsplit >= 0 && done >= maxsplit) {  // the rest, less its trailing whitespace
                jval_t rest = s_strip(R, v_strn(R, p, (size_t)(end - p)), v_none(), 0, 1);
                list_push(R, out.u.l, rest);
                break;
            }
            const char *q = p;
            while (q < end && (k = char_at(q, (size_t)(end - q), &c), !is_pyspace(c))) q += k;
            list_push(R, out.u.l, v_strn(R, p, (size_t)(q - p)));
            done++;
            p = q;
        }
        return out;
    }
    for (;;) {
        const char *q = (maxsplit < 0 || done < maxsplit) ? memfind(p, (size_t)(end - p), sep.u.s.p, sep.u.s.n) : NULL;
        if (!q) break;
        list_push(R, out.u.l, v_strn(R, p, (size_t)(q - p)));
        p = q + sep.u.s.n, done++;
    }
    list_push(R, out.u.l, v_strn(R, p, (size_t)(end - p)));
    return out;
}

static int affix(jval_t s, jval_t x, int suffix) {
    if (x.t == JV_LIST) {
        for (size_t i = 0; i < x.u.l->n; i++)
            if (affix(s, x.u.l->v[i], suffix)) return 1;
        return 0;
    }
    if (x.t != JV_STR || x.u.s.n > s.u.s.n) return 0;
    return !memcmp(s.u.s.p + (suffix ? s.u.s.n - x.u.s.n : 0), x.u.s.p, x.u.s.n);
}

static jval_t call_macro(render_t *R, const jnode_t *at, const jnode_t *m, const args_t *a);

// str.format with replacement fields {}, {0}, {name} and the conversions !s and !r; {{ and }} are
// braces. Attribute or index lookups inside a field and format specs fail naming themselves.
static jval_t s_format(render_t *R, const jnode_t *at, jval_t self, const args_t *a) {
    buf_t b = {0};
    buf_init(&b);
    const char *p = self.u.s.p, *end = p + self.u.s.n;
    int next = 0, mode = 0;  // mode: 1 automatic ({}), 2 manual ({0}) numbering
    while (p < end) {
        if ((*p == '{' || *p == '}') && p + 1 < end && p[1] == *p) {
            buf_putc(&b, *p);
            p += 2;
            continue;
        }
        if (*p == '}') buf_free(&b), rerr(R, at, "str.format: single '}' encountered in format string");
        if (*p != '{') {
            buf_putc(&b, *p++);
            continue;
        }
        const char *q = memchr(p, '}', (size_t)(end - p));
        if (!q) buf_free(&b), rerr(R, at, "str.format: single '{' encountered in format string");
        const char *f0 = p + 1, *fe = q, *conv = memchr(f0, '!', (size_t)(fe - f0)), *spec = memchr(f0, ':', (size_t)(fe - f0));
        const char *ne = conv ? conv : spec ? spec : fe;
        if (spec && spec + 1 < fe)
            buf_free(&b), rerr(R, at, "str.format: unsupported format spec '%.*s'", (int)(fe - spec - 1), spec + 1);
        if (memchr(f0, '.', (size_t)(ne - f0)) || memchr(f0, '[', (size_t)(ne - f0)))
            buf_free(&b), rerr(R, at, "str.format: unsupported field '%.*s' (attribute or index lookup)", (int)(ne - f0), f0);
        jval_t v;
        if (ne == f0 || (*f0 >= '0' && *f0 <= '9')) {
            int manual = ne != f0;
            if (mode && mode != 1 + manual)
                buf_free(&b), rerr(R, at, "str.format: cannot switch from %s", manual
                                   ? "automatic field numbering to manual field specification"
                                   : "manual field specification to automatic field numbering");
            mode = 1 + manual;
            int k = ne == f0 ? next++ : atoi(f0);
            if (k >= a->npos) buf_free(&b), rerr(R, at, "str.format: Replacement index %d out of range for positional args tuple", k);
            v = a->pos[k];
        } else {
            char key[128];
            snprintf(key, sizeof key, "%.*s", (int)(ne - f0), f0);
            v = arg(a, -1, key, v_undef(key));
            if (v.t == JV_UNDEF) buf_free(&b), rerr(R, at, "str.format: '%s' (a keyword argument is missing)", key);
        }
        if (conv && conv + 1 < fe && conv[1] == 'r') py_repr(&b, v);
        else py_str(&b, v);
        p = q + 1;
    }
    return v_str_buf(R, &b);
}

static jval_t call_func(render_t *R, const jnode_t *at, jval_t fn, const args_t *a) {
    if (fn.t == JV_MACRO) return call_macro(R, at, fn.u.macro, a);
    if (fn.t != JV_FUNC) rerr(R, at, "a value of type %s is not callable", type_name(fn));
    jval_t self = fn.u.fn.self ? *fn.u.fn.self : v_none();
    jval_t none = v_none();
    switch (fn.u.fn.id) {
    case FN_RANGE: {
        long long s0 = 0, s1, st = 1;
        if (a->npos == 1) s1 = num_i(a->pos[0]);
        else if (a->npos >= 2) s0 = num_i(a->pos[0]), s1 = num_i(a->pos[1]), st = a->npos > 2 ? num_i(a->pos[2]) : 1;
        else rerr(R, at, "range: expected 1 to 3 arguments");
        if (st == 0) rerr(R, at, "range: step cannot be zero");
        jval_t out = v_list(R);
        for (long long i = s0; st > 0 ? i < s1 : i > s1; i += st) {
            if (out.u.l->n > 10000000) rerr(R, at, "range: too many items");
            list_push(R, out.u.l, v_int(i));
        }
        return out;
    }
    case FN_NAMESPACE: case FN_DICT: {
        jval_t d = v_dict(R);
        d.u.d->is_namespace = fn.u.fn.id == FN_NAMESPACE;
        for (int i = 0; i < a->npos; i++) {
            if (a->pos[i].t != JV_DICT) rerr(R, at, "%s: positional arguments must be dicts", fn.u.fn.id == FN_DICT ? "dict" : "namespace");
            for (size_t k = 0; k < a->pos[i].u.d->n; k++) dict_set_v(R, d.u.d, a->pos[i].u.d->k[k], a->pos[i].u.d->v[k]);
        }
        for (int i = 0; i < a->nkw; i++) dict_set(R, d.u.d, a->kw[i], a->kwv[i]);
        return d;
    }
    case FN_RAISE: {
        buf_t b = {0};
        buf_init(&b);
        if (a->npos) py_str(&b, a->pos[0]);
        char msg[700];
        snprintf(msg, sizeof msg, "%s", b.s);
        buf_free(&b);
        rerr(R, at, "raise_exception: %s", msg);
    }
    case FN_STRFTIME: {
        jval_t fmt = need_str(R, at, arg(a, 0, "format", none), "strftime_now");
        char fbuf[256], out[512];
        snprintf(fbuf, sizeof fbuf, "%.*s", (int)fmt.u.s.n, fmt.u.s.p);
        // SOURCE_DATE_EPOCH (the reproducible-builds convention) fixes the instant, read as UTC
        const char *sde = getenv("SOURCE_DATE_EPOCH");
        char *end = NULL;
        long long fixed = sde && *sde ? strtoll(sde, &end, 10) : 0;
        struct tm tmv;
        time_t now = end && !*end ? (time_t)fixed : time(NULL);
        if (end && !*end) gmtime_r(&now, &tmv);
        else localtime_r(&now, &tmv);
        size_t k = strftime(out, sizeof out, fbuf, &tmv);
        return v_strn(R, out, k);
    }
    case FN_S_STRIP: case FN_S_LSTRIP: case FN_S_RSTRIP:
        return s_strip(R, self, arg(a, 0, "chars", none), fn.u.fn.id != FN_S_RSTRIP, fn.u.fn.id != FN_S_LSTRIP);
    case FN_S_SPLIT: {
        jval_t ms = arg(a, 1, "maxsplit", v_int(-1));
        return s_split(R, self, arg(a, 0, "sep", none), num_i(ms));
    }
    case FN_S_STARTSWITH: case FN_S_ENDSWITH:
        return v_bool(affix(self, arg(a, 0, NULL, none), fn.u.fn.id == FN_S_ENDSWITH));
    case FN_S_UPPER: return s_case(R, self, 1);
    case FN_S_LOWER: return s_case(R, self, 0);
    case FN_S_TITLE: return s_case(R, self, 2);
    case FN_S_CAPITALIZE: return s_case(R, self, 3);
    case FN_S_REPLACE: {
        jval_t o = need_str(R, at, arg(a, 0, NULL, none), "replace"), nw = need_str(R, at, arg(a, 1, NULL, none), "replace");
        return s_replace(R, self, o, nw, num_i(arg(a, 2, "count", v_int(-1))));
    }
    case FN_S_FIND: case FN_S_COUNT: {
        jval_t x = need_str(R, at, arg(a, 0, NULL, none), fn.u.fn.id == FN_S_FIND ? "find" : "count");
        if (fn.u.fn.id == FN_S_FIND) {
            const char *q = memfind(self.u.s.p, self.u.s.n, x.u.s.p, x.u.s.n);
            return v_int(q ? (long long)n_chars(self.u.s.p, (size_t)(q - self.u.s.p)) : -1);
        }
        long long c = 0;
        if (!x.u.s.n) return v_int((long long)n_chars(self.u.s.p, self.u.s.n) + 1);
        for (const char *p = self.u.s.p, *q; (q = memfind(p, self.u.s.n - (size_t)(p - self.u.s.p), x.u.s.p, x.u.s.n)); p = q + x.u.s.n) c++;
        return v_int(c);
    }
    case FN_S_JOIN: {
        jlist_t *l = iter_items(R, at, arg(a, 0, NULL, none));
        buf_t b = {0};
        buf_init(&b);
        for (size_t i = 0; i < l->n; i++) {
            if (l->v[i].t != JV_STR) {
                buf_free(&b);
                rerr(R, at, "str.join: item %zu is %s, not a string", i, type_name(l->v[i]));
            }
            if (i) buf_append(&b, self.u.s.p, self.u.s.n);
            buf_append(&b, l->v[i].u.s.p, l->v[i].u.s.n);
        }
        return v_str_buf(R, &b);
    }
    case FN_S_FORMAT: return s_format(R, at, self, a);
    case FN_D_ITEMS: return dict_items(R, self.u.d);
    case FN_D_KEYS: case FN_D_VALUES: {
        jval_t out = v_list(R);
        for (size_t i = 0; i < self.u.d->n; i++)
            list_push(R, out.u.l, fn.u.fn.id == FN_D_KEYS ? self.u.d->k[i] : self.u.d->v[i]);
        return out;
    }
    case FN_D_GET: {
        jval_t *v = dict_find_v(self.u.d, arg(a, 0, NULL, none));
        return v ? *v : arg(a, 1, "default", none);
    }
    }
    rerr(R, at, "unknown function");
}

// ---- tests ----
static int run_test(render_t *R, const jnode_t *at, const char *name, jval_t v, const args_t *a) {
    jval_t none = v_none(), x = arg(a, 0, NULL, none);
    if (!strcmp(name, "defined")) return v.t != JV_UNDEF;
    if (!strcmp(name, "undefined")) return v.t == JV_UNDEF;
    if (!strcmp(name, "none")) return v.t == JV_NONE;
    if (!strcmp(name, "string")) return v.t == JV_STR;
    if (!strcmp(name, "number")) return v.t == JV_INT || v.t == JV_FLOAT;
    if (!strcmp(name, "integer")) return v.t == JV_INT;
    if (!strcmp(name, "float")) return v.t == JV_FLOAT;
    if (!strcmp(name, "boolean")) return v.t == JV_BOOL;
    if (!strcmp(name, "true")) return v.t == JV_BOOL && v.u.b;
    if (!strcmp(name, "false")) return v.t == JV_BOOL && !v.u.b;
    if (!strcmp(name, "mapping")) return v.t == JV_DICT;
    if (!strcmp(name, "sequence")) return (v.t == JV_LIST && !v.u.l->is_gen) || v.t == JV_STR || v.t == JV_DICT;
    if (!strcmp(name, "iterable")) return v.t == JV_LIST || v.t == JV_STR || v.t == JV_DICT || v.t == JV_UNDEF;
    if (!strcmp(name, "callable")) return v.t == JV_MACRO || v.t == JV_FUNC;
    if (!strcmp(name, "odd") || !strcmp(name, "even")) {
        if (!is_num(v)) rerr(R, at, "test '%s': expected a number, got %s", name, type_name(v));
        long long i = num_i(v);
        return (i % 2 != 0) == (name[0] == 'o');
    }
    if (!strcmp(name, "divisibleby")) return num_i(x) != 0 && num_i(v) % num_i(x) == 0;
    if (!strcmp(name, "lower") || !strcmp(name, "upper")) {
        if (v.t != JV_STR) return 0;
        jval_t c = s_case(R, v, name[0] == 'u');
        return str_eq(c, v.u.s.p, v.u.s.n);
    }
    if (!strcmp(name, "eq") || !strcmp(name, "equalto") || !strcmp(name, "sameas")) return values_equal(v, x);
    if (!strcmp(name, "ne")) return !values_equal(v, x);
    if (!strcmp(name, "lt") || !strcmp(name, "le") || !strcmp(name, "gt") || !strcmp(name, "ge")) {
        int c;
        if (is_num(v) && is_num(x)) c = (num_f(v) > num_f(x)) - (num_f(v) < num_f(x));
        else if (v.t == JV_STR && x.t == JV_STR) c = str_cmp(v, x);
        else rerr(R, at, "test '%s': cannot compare %s with %s", name, type_name(v), type_name(x));
        return name[0] == 'l' ? (name[1] == 't' ? c < 0 : c <= 0) : (name[1] == 't' ? c > 0 : c >= 0);
    }
    if (!strcmp(name, "in")) {
        if (x.t == JV_STR && v.t == JV_STR) return memfind(x.u.s.p, x.u.s.n, v.u.s.p, v.u.s.n) != NULL;
        jlist_t *l = iter_items(R, at, x);
        for (size_t i = 0; i < l->n; i++)
            if (values_equal(l->v[i], v)) return 1;
        return 0;
    }
    rerr(R, at, "unsupported test '%s'", name);
}

// ---- filters ----
static buf_t *push_out(render_t *R, const jnode_t *at);
static jval_t pop_out(render_t *R, buf_t *b);
static jval_t apply_filter(render_t *R, frame_t *f, const jnode_t *at, const char *name, jval_t v, const args_t *a);

// Python's ordering of two values (numbers, strings by code point, lists element-wise); anything else
// fails as Python's sorted() does. fold: compare strings lower-cased (jinja2's case_sensitive=False).
static int py_cmp(render_t *R, const jnode_t *at, jval_t a, jval_t b, int fold) {
    if (is_num(a) && is_num(b)) {
        if (a.t != JV_FLOAT && b.t != JV_FLOAT) return (num_i(a) > num_i(b)) - (num_i(a) < num_i(b));
        return (num_f(a) > num_f(b)) - (num_f(a) < num_f(b));
    }
    if (a.t == JV_STR && b.t == JV_STR) return fold ? str_cmp(s_case(R, a, 0), s_case(R, b, 0)) : str_cmp(a, b);
    if (a.t == JV_LIST && b.t == JV_LIST) {
        size_t n = a.u.l->n < b.u.l->n ? a.u.l->n : b.u.l->n;
        for (size_t i = 0; i < n; i++) {
            if (values_equal(a.u.l->v[i], b.u.l->v[i])) continue;
            return py_cmp(R, at, a.u.l->v[i], b.u.l->v[i], 0);  // jinja2 folds the top-level key only
        }
        return (a.u.l->n > b.u.l->n) - (a.u.l->n < b.u.l->n);
    }
    rerr(R, at, "'<' not supported between %s and %s", type_name(a), type_name(b));
}

// The sort key of x: x itself, or its attribute (dotted path "a.b", or an index).
static jval_t sort_key(render_t *R, const jnode_t *at, jval_t x, jval_t attr) {
    if (attr.t == JV_INT) return get_item(R, at, x, attr);
    if (attr.t != JV_STR) return x;
    const char *p = attr.u.s.p, *end = p + attr.u.s.n;
    while (p <= end) {
        const char *q = memchr(p, '.', (size_t)(end - p));
        if (!q) q = end;
        x = get_item(R, at, x, v_strn(R, p, (size_t)(q - p)));
        p = q + 1;
    }
    return x;
}

// A stable sort of l's items by key (Python's sorted is stable), in a new list.
static jval_t sorted_list(render_t *R, const jnode_t *at, jlist_t *l, jval_t attr, int fold, int reverse) {
    jval_t out = v_list(R);
    jval_t *keys = jarena_alloc(&R->arena, (l->n + 1) * sizeof *keys);
    for (size_t i = 0; i < l->n; i++) {
        jval_t x = l->v[i], k = sort_key(R, at, x, attr);
        size_t j = out.u.l->n;
        list_push(R, out.u.l, x);
        // insertion: move past the items that sort after k (before it when reversed), equal ones stay first
        while (j > 0) {
            int c = py_cmp(R, at, keys[j - 1], k, fold);
            if (reverse ? c >= 0 : c <= 0) break;
            out.u.l->v[j] = out.u.l->v[j - 1], keys[j] = keys[j - 1];
            j--;
        }
        out.u.l->v[j] = x, keys[j] = k;
    }
    return out;
}

static jval_t filter_select(render_t *R, frame_t *f, const jnode_t *at, const char *name, jval_t v, const args_t *a) {
    int reject = name[0] == 'r', by_attr = strstr(name, "attr") != NULL;
    jlist_t *l = truthy(v) ? iter_items(R, at, v) : iter_items(R, at, v_undef(name));  // jinja2: `if seq:`
    jval_t out = v_list(R);
    int first = by_attr ? 1 : 0;
    jval_t attr = by_attr ? need_str(R, at, arg(a, 0, NULL, v_none()), name) : v_none();
    const char *test = NULL;
    if (a->npos > first) test = jarena_strndup(&R->arena, need_str(R, at, a->pos[first], name).u.s.p, a->pos[first].u.s.n);
    args_t ta = {0};
    if (a->npos > first + 1) ta.pos = a->pos + first + 1, ta.npos = a->npos - first - 1;
    (void)f;
    for (size_t i = 0; i < l->n; i++) {
        jval_t x = l->v[i];
        if (by_attr) x = x.t == JV_UNDEF ? x : get_attr(R, at, x, jarena_strndup(&R->arena, attr.u.s.p, attr.u.s.n));
        int ok = test ? run_test(R, at, test, x, &ta) : truthy(x);
        if (ok != reject) list_push(R, out.u.l, l->v[i]);
    }
    out.u.l->is_gen = 1;
    return out;
}

static jval_t apply_filter(render_t *R, frame_t *f, const jnode_t *at, const char *name, jval_t v, const args_t *a) {
    jval_t none = v_none();
    if (!strcmp(name, "safe")) {  // a Markup: printed as it is; adding a plain string to it escapes that string
        jval_t m = to_str(R, v);
        m.u.s.safe = 1;
        return m;
    }
    if (!strcmp(name, "trim")) return s_strip(R, to_str(R, v), arg(a, 0, "chars", none), 1, 1);
    if (!strcmp(name, "string")) return to_str(R, v);
    if (!strcmp(name, "upper") || !strcmp(name, "lower") || !strcmp(name, "title") || !strcmp(name, "capitalize"))
        return s_case(R, to_str(R, v), name[0] == 'l' ? 0 : name[0] == 'u' ? 1 : name[0] == 't' ? 2 : 3);
    if (!strcmp(name, "length") || !strcmp(name, "count")) {
        switch (v.t) {
        case JV_STR: return v_int((long long)n_chars(v.u.s.p, v.u.s.n));
        case JV_LIST:
            if (v.u.l->is_gen) rerr(R, at, "%s: object of type 'generator' has no len() (add '| list')", name);
            return v_int((long long)v.u.l->n);
        case JV_DICT: return v_int((long long)v.u.d->n);
        case JV_UNDEF: return v_int(0);
        default: rerr(R, at, "length: a value of type %s has no length", type_name(v));
        }
    }
    if (!strcmp(name, "default") || !strcmp(name, "d")) {
        jval_t def = arg(a, 0, "default_value", v_strn(R, "", 0));
        int boolean = truthy(arg(a, 1, "boolean", v_bool(0)));
        return (v.t == JV_UNDEF || (boolean && !truthy(v))) ? def : v;
    }
    if (!strcmp(name, "items")) {
        if (v.t == JV_UNDEF) return v_list(R);
        if (v.t != JV_DICT) rerr(R, at, "items: expected a dict, got %s", type_name(v));
        return dict_items(R, v.u.d);
    }
    if (!strcmp(name, "join")) {
        jlist_t *l = iter_items(R, at, v);
        jval_t sep = to_str(R, arg(a, 0, "d", v_strn(R, "", 0)));
        jval_t attr = arg(a, 1, "attribute", none);
        buf_t *saved = R->out, *b = push_out(R, at);  // on the render's stack: get_attr may fail
        R->out = saved;
        for (size_t i = 0; i < l->n; i++) {
            if (i) buf_append(b, sep.u.s.p, sep.u.s.n);
            jval_t x = l->v[i];
            if (attr.t == JV_STR) x = get_attr(R, at, x, jarena_strndup(&R->arena, attr.u.s.p, attr.u.s.n));
            py_str(b, x);
        }
        return pop_out(R, b);
    }
    if (!strcmp(name, "replace")) {
        jval_t s = to_str(R, v);
        jval_t o = to_str(R, arg(a, 0, "old", none)), nw = to_str(R, arg(a, 1, "new", none));
        jval_t cnt = arg(a, 2, "count", none);
        return s_replace(R, s, o, nw, cnt.t == JV_NONE ? -1 : num_i(cnt));
    }
    if (!strcmp(name, "first") || !strcmp(name, "last")) {
        if (name[0] == 'l' && v.t == JV_LIST && v.u.l->is_gen) rerr(R, at, "last: 'generator' object is not reversible (add '| list')");
        jlist_t *l = iter_items(R, at, v);
        if (!l->n) return v_undef(name);
        return name[0] == 'f' ? l->v[0] : l->v[l->n - 1];
    }
    if (!strcmp(name, "list")) {
        jlist_t *l = iter_items(R, at, v);
        jval_t out = v_list(R);
        for (size_t i = 0; i < l->n; i++) list_push(R, out.u.l, l->v[i]);
        return out;
    }
    if (!strcmp(name, "reverse")) {
        if (v.t == JV_STR) {
            jval_t st = v_none();
            st.t = JV_INT, st.u.i = -1;
            return do_slice(R, at, v, none, none, st);
        }
        jlist_t *l = iter_items(R, at, v);
        jval_t out = v_list(R);
        for (size_t i = l->n; i > 0; i--) list_push(R, out.u.l, l->v[i - 1]);
        return out;
    }
    if (!strcmp(name, "int")) {
        if (v.t == JV_INT) return v;
        if (is_num(v)) return v_int(num_i(v));
        if (v.t == JV_STR) {
            char tmp[64];
            snprintf(tmp, sizeof tmp, "%.*s", (int)(v.u.s.n < 63 ? v.u.s.n : 63), v.u.s.p);
            char *e;
            double x = strtod(tmp, &e);
            if (e != tmp) return v_int((long long)x);
        }
        return arg(a, 0, "default", v_int(0));
    }
    if (!strcmp(name, "float")) {
        if (is_num(v)) return v_float(num_f(v));
        if (v.t == JV_STR) {
            char tmp[64];
            snprintf(tmp, sizeof tmp, "%.*s", (int)(v.u.s.n < 63 ? v.u.s.n : 63), v.u.s.p);
            char *e;
            double x = strtod(tmp, &e);
            if (e != tmp) return v_float(x);
        }
        return arg(a, 0, "default", v_float(0));
    }
    if (!strcmp(name, "abs")) {
        if (v.t == JV_INT) return v_int(v.u.i < 0 ? -v.u.i : v.u.i);
        if (is_num(v)) return v_float(fabs(num_f(v)));
        rerr(R, at, "abs: expected a number, got %s", type_name(v));
    }
    if (!strcmp(name, "round")) {
        int prec = (int)num_i(arg(a, 0, "precision", v_int(0)));
        double x = num_f(v), m = pow(10, prec);
        return v_float(round(x * m) / m);
    }
    if (!strcmp(name, "tojson")) {
        json_opts_t o = {.indent = -1, .item_sep = ", ", .key_sep = ": "};
        jval_t ind = arg(a, 1, "indent", none), sep = arg(a, 2, "separators", none);
        o.ensure_ascii = truthy(arg(a, 0, "ensure_ascii", v_bool(0)));
        o.sort_keys = truthy(arg(a, 3, "sort_keys", v_bool(0)));
        if (ind.t == JV_INT) o.indent = (int)ind.u.i, o.item_sep = ",";
        else if (ind.t != JV_NONE) rerr(R, at, "tojson: indent must be an integer");
        if (sep.t == JV_LIST && sep.u.l->n == 2 && sep.u.l->v[0].t == JV_STR && sep.u.l->v[1].t == JV_STR) {
            o.item_sep = jarena_strndup(&R->arena, sep.u.l->v[0].u.s.p, sep.u.l->v[0].u.s.n);
            o.key_sep = jarena_strndup(&R->arena, sep.u.l->v[1].u.s.p, sep.u.l->v[1].u.s.n);
        } else if (sep.t != JV_NONE) {
            rerr(R, at, "tojson: separators must be a pair of strings");
        }
        if (v.t == JV_UNDEF) rerr(R, at, "tojson: %s", undef_text(R, v));
        buf_t *saved = R->out, *b = push_out(R, at);  // on the render's stack: freed if json_dump fails
        R->out = saved;
        json_dump(R, at, b, v, &o, 0);
        return pop_out(R, b);
    }
    if (!strcmp(name, "indent")) {
        jval_t s = to_str(R, v), w = arg(a, 0, "width", v_int(4));
        int first = truthy(arg(a, 1, "first", v_bool(0))), blank = truthy(arg(a, 2, "blank", v_bool(0)));
        buf_t pad = {0}, b = {0};
        buf_init(&pad), buf_init(&b);
        if (w.t == JV_STR) buf_append(&pad, w.u.s.p, w.u.s.n);
        else for (long long i = 0; i < num_i(w); i++) buf_putc(&pad, ' ');
        const char *p = s.u.s.p, *end = p + s.u.s.n;
        for (int line = 0; p <= end; line++) {
            const char *q = memchr(p, '\n', (size_t)(end - p));
            const char *e = q ? q : end;
            if ((line > 0 || first) && (blank || e > p)) buf_append(&b, pad.s, pad.n);
            buf_append(&b, p, (size_t)(e - p));
            if (!q) break;
            buf_putc(&b, '\n');
            p = q + 1;
        }
        buf_free(&pad);
        return v_str_buf(R, &b);
    }
    if (!strcmp(name, "map")) {
        jlist_t *l = truthy(v) ? iter_items(R, at, v) : iter_items(R, at, v_undef(name));  // jinja2: `if seq:`
        jval_t out = v_list(R), attr = arg(a, -1, "attribute", none);
        const char *filt = a->npos ? jarena_strndup(&R->arena, need_str(R, at, a->pos[0], "map").u.s.p, a->pos[0].u.s.n) : NULL;
        if (!filt && attr.t != JV_STR) rerr(R, at, "map: give a filter name or attribute=");
        args_t fa = {0};
        if (a->npos > 1) fa.pos = a->pos + 1, fa.npos = a->npos - 1;
        for (size_t i = 0; i < l->n; i++) {
            jval_t x = l->v[i];
            if (filt) x = apply_filter(R, f, at, filt, x, &fa);
            else x = get_attr(R, at, x, jarena_strndup(&R->arena, attr.u.s.p, attr.u.s.n));
            if (!filt && x.t == JV_UNDEF) x = arg(a, -1, "default", x);
            list_push(R, out.u.l, x);
        }
        out.u.l->is_gen = 1;
        return out;
    }
    if (!strcmp(name, "select") || !strcmp(name, "reject") || !strcmp(name, "selectattr") || !strcmp(name, "rejectattr"))
        return filter_select(R, f, at, name, v, a);
    if (!strcmp(name, "sort")) {  // sort(reverse=false, case_sensitive=false, attribute=none)
        int rev = truthy(arg(a, 0, "reverse", v_bool(0))), cs = truthy(arg(a, 1, "case_sensitive", v_bool(0)));
        return sorted_list(R, at, iter_items(R, at, v), arg(a, 2, "attribute", none), !cs, rev);
    }
    if (!strcmp(name, "dictsort")) {  // dictsort(case_sensitive=false, by='key', reverse=false): (key, value) pairs
        if (v.t != JV_DICT) rerr(R, at, "dictsort: expected a dict, got %s", type_name(v));
        int cs = truthy(arg(a, 0, "case_sensitive", v_bool(0))), rev = truthy(arg(a, 2, "reverse", v_bool(0)));
        jval_t by = arg(a, 1, "by", v_strn(R, "key", 3));
        int pos;
        if (str_eq(by, "key", 3)) pos = 0;
        else if (str_eq(by, "value", 5)) pos = 1;
        else rerr(R, at, "You can only sort by either \"key\" or \"value\"");
        jval_t idx = v_int(pos);
        return sorted_list(R, at, dict_items(R, v.u.d).u.l, idx, !cs, rev);
    }
    if (!strcmp(name, "unique")) {  // unique(case_sensitive=false, attribute=none): first of each, in order
        int cs = truthy(arg(a, 0, "case_sensitive", v_bool(0)));
        jval_t attr = arg(a, 1, "attribute", none);
        jlist_t *l = iter_items(R, at, v);
        jval_t out = v_list(R), seen = v_list(R);
        for (size_t i = 0; i < l->n; i++) {
            jval_t k = sort_key(R, at, l->v[i], attr);
            if (!cs && k.t == JV_STR) k = s_case(R, k, 0);
            int dup = 0;
            for (size_t j = 0; j < seen.u.l->n && !dup; j++) dup = values_equal(seen.u.l->v[j], k);
            if (!dup) list_push(R, seen.u.l, k), list_push(R, out.u.l, l->v[i]);
        }
        return out;
    }
    if (!strcmp(name, "min") || !strcmp(name, "max")) {  // min/max(case_sensitive=false, attribute=none)
        int cs = truthy(arg(a, 0, "case_sensitive", v_bool(0))), want = name[1] == 'a' ? 1 : -1;
        jval_t attr = arg(a, 1, "attribute", none);
        jlist_t *l = iter_items(R, at, v);
        if (!l->n) {
            jval_t u = v_undef(name);
            u.undef_msg = "No aggregated item, sequence was empty.";
            return u;
        }
        size_t best = 0;
        for (size_t i = 1; i < l->n; i++)
            if (py_cmp(R, at, sort_key(R, at, l->v[i], attr), sort_key(R, at, l->v[best], attr), !cs) == want) best = i;
        return l->v[best];
    }
    rerr(R, at, "unsupported filter '%s'", name);
}

// ---- operators ----
static jval_t binop(render_t *R, const jnode_t *at, int op, jval_t a, jval_t b) {
    static const char *const sym[] = {"+", "-", "*", "/", "//", "%", "**", "~", "==", "!=", "<", "<=", ">", ">=", "in", "not in"};
    switch (op) {
    case JOP_EQ: return v_bool(values_equal(a, b));
    case JOP_NE: return v_bool(!values_equal(a, b));
    case JOP_CONCAT: {
        buf_t s = {0};
        buf_init(&s);
        py_str(&s, a), py_str(&s, b);
        return v_str_buf(R, &s);
    }
    case JOP_IN: case JOP_NOTIN: {
        int r;
        if (b.t == JV_STR) {
            if (a.t != JV_STR) rerr(R, at, "'in <string>' requires a string on the left, not %s", type_name(a));
            r = memfind(b.u.s.p, b.u.s.n, a.u.s.p, a.u.s.n) != NULL;
        } else if (b.t == JV_DICT) {
            r = dict_find_v(b.u.d, a) != NULL;
        } else if (b.t == JV_LIST || b.t == JV_UNDEF) {
            jlist_t *l = iter_items(R, at, b);
            r = 0;
            for (size_t i = 0; i < l->n && !r; i++) r = values_equal(l->v[i], a);
        } else {
            rerr(R, at, "'in': a value of type %s is not a container", type_name(b));
        }
        return v_bool(op == JOP_IN ? r : !r);
    }
    case JOP_LT: case JOP_LE: case JOP_GT: case JOP_GE: {
        int c;
        if (is_num(a) && is_num(b)) c = (num_f(a) > num_f(b)) - (num_f(a) < num_f(b));
        else if (a.t == JV_STR && b.t == JV_STR) c = str_cmp(a, b);
        else rerr(R, at, "'%s' not supported between %s and %s", sym[op], type_name(a), type_name(b));
        return v_bool(op == JOP_LT ? c < 0 : op == JOP_LE ? c <= 0 : op == JOP_GT ? c > 0 : c >= 0);
    }
    default: break;
    }
    if (a.t == JV_UNDEF || b.t == JV_UNDEF) {
        jval_t u = a.t == JV_UNDEF ? a : b;
        rerr(R, at, "%s (operand of '%s')", undef_text(R, u), sym[op]);
    }
    if (op == JOP_ADD && a.t == JV_STR && b.t == JV_STR) {
        // a Markup (`x | safe`) added to a plain string escapes it, as markupsafe's Markup.__add__ and
        // __radd__ do, and the sum is a Markup
        int safe = a.u.s.safe || b.u.s.safe;
        buf_t s = {0};
        buf_init(&s);
        for (int k = 0; k < 2; k++) {
            jval_t x = k ? b : a;
            if (!safe || x.u.s.safe) {
                buf_append(&s, x.u.s.p, x.u.s.n);
                continue;
            }
            for (size_t i = 0; i < x.u.s.n; i++) {
                char c = x.u.s.p[i];
                const char *e = c == '&' ? "&amp;" : c == '<' ? "&lt;" : c == '>' ? "&gt;" : c == '"' ? "&#34;" : c == '\'' ? "&#39;" : NULL;
                if (e) buf_puts(&s, e);
                else buf_putc(&s, c);
            }
        }
        jval_t out = v_str_buf(R, &s);
        out.u.s.safe = safe;
        return out;
    }
    if (op == JOP_ADD && a.t == JV_LIST && b.t == JV_LIST) {
        jval_t out = v_list(R);
        for (size_t i = 0; i < a.u.l->n; i++) list_push(R, out.u.l, a.u.l->v[i]);
        for (size_t i = 0; i < b.u.l->n; i++) list_push(R, out.u.l, b.u.l->v[i]);
        return out;
    }
    if (op == JOP_MUL && ((a.t == JV_STR && b.t == JV_INT) || (a.t == JV_INT && b.t == JV_STR))) {
        jval_t s = a.t == JV_STR ? a : b;
        long long k = a.t == JV_INT ? a.u.i : b.u.i;
        buf_t o = {0};
        buf_init(&o);
        for (long long i = 0; i < k; i++) buf_append(&o, s.u.s.p, s.u.s.n);
        return v_str_buf(R, &o);
    }
    if (!is_num(a) || !is_num(b))
        rerr(R, at, "unsupported operand types for '%s': %s and %s", sym[op], type_name(a), type_name(b));
    int ints = a.t != JV_FLOAT && b.t != JV_FLOAT;
    long long x = num_i(a), y = num_i(b);
    double p = num_f(a), q = num_f(b);
    switch (op) {
    case JOP_ADD: return ints ? v_int(x + y) : v_float(p + q);
    case JOP_SUB: return ints ? v_int(x - y) : v_float(p - q);
    case JOP_MUL: return ints ? v_int(x * y) : v_float(p * q);
    case JOP_DIV:
        if (q == 0) rerr(R, at, "division by zero");
        return v_float(p / q);
    case JOP_FLOORDIV: case JOP_MOD:
        if (q == 0) rerr(R, at, "division by zero");
        if (ints) {
            long long d = x / y, m = x % y;
            if (m != 0 && ((m < 0) != (y < 0))) d--, m += y;
            return v_int(op == JOP_FLOORDIV ? d : m);
        } else {
            double d = floor(p / q), m = p - d * q;
            return v_float(op == JOP_FLOORDIV ? d : m);
        }
    case JOP_POW:
        if (ints && y >= 0) {
            long long r = 1;
            for (long long i = 0; i < y; i++) r *= x;
            return v_int(r);
        }
        return v_float(pow(p, q));
    }
    rerr(R, at, "bad operator");
}

// ---- expressions ----
static jval_t eval(render_t *R, frame_t *f, const jnode_t *n) {
    switch (n->kind) {
    case JN_LIT: return n->lit;
    case JN_NAME: {
        jval_t *v = lookup(f, n->name);
        return v ? *v : v_undef(n->name);
    }
    case JN_LIST: case JN_TUPLE: {
        jval_t l = v_list(R);
        for (int i = 0; i < n->n_args; i++) list_push(R, l.u.l, eval(R, f, n->args[i]));
        l.u.l->is_tuple = n->kind == JN_TUPLE;
        return l;
    }
    case JN_DICT: {
        jval_t d = v_dict(R);
        for (int i = 0; i < n->n_args; i++) dict_set_v(R, d.u.d, eval(R, f, n->args[i]), eval(R, f, n->args2[i]));
        return d;
    }
    case JN_BLOCKVAL: return R->blockval;
    case JN_ATTR: return get_attr(R, n, eval(R, f, n->a), n->name);
    case JN_INDEX: return get_item(R, n, eval(R, f, n->a), eval(R, f, n->b));
    case JN_SLICE: {
        jval_t none = v_none();
        jval_t obj = eval(R, f, n->a);
        if (obj.t == JV_UNDEF) rerr(R, n, "%s (slicing it)", undef_text(R, obj));
        return do_slice(R, n, obj, n->b ? eval(R, f, n->b) : none, n->c ? eval(R, f, n->c) : none,
                        n->d ? eval(R, f, n->d) : none);
    }
    case JN_CALL: {
        jval_t fn = eval(R, f, n->a);
        if (fn.t == JV_UNDEF) {
            if (n->a->kind == JN_ATTR) {
                jval_t obj = eval(R, f, n->a->a);
                // transformers renders in jinja2's ImmutableSandboxedEnvironment: methods that modify a
                // list or dict are refused, with this message
                static const char *const list_mod[] = {"append", "extend", "insert", "pop", "remove", "clear", "sort", "reverse", NULL};
                static const char *const dict_mod[] = {"update", "pop", "popitem", "setdefault", "clear", NULL};
                const char *const *mod = obj.t == JV_LIST ? list_mod : obj.t == JV_DICT && !obj.u.d->is_namespace ? dict_mod : NULL;
                for (int i = 0; mod && mod[i]; i++)
                    if (!strcmp(mod[i], n->a->name))
                        rerr(R, n, "access to attribute '%s' of '%s' object is unsafe.", n->a->name, obj.t == JV_LIST ? "list" : "dict");
                rerr(R, n, "unsupported method '%s' of a %s (jinja2: %s)", n->a->name, type_name(obj), undef_text(R, fn));
            }
            rerr(R, n, "%s (called as a function)", undef_text(R, fn));
        }
        args_t a = eval_args(R, f, n);
        return call_func(R, n, fn, &a);
    }
    case JN_FILTER: {
        jval_t v = eval(R, f, n->a);
        args_t a = eval_args(R, f, n);
        return apply_filter(R, f, n, n->name, v, &a);
    }
    case JN_TEST: {
        jval_t v = eval(R, f, n->a);
        args_t a = eval_args(R, f, n);
        int r = run_test(R, n, n->name, v, &a);
        return v_bool(n->op ? !r : r);
    }
    case JN_NOT: return v_bool(!truthy(eval(R, f, n->a)));
    case JN_NEG: case JN_POS: {
        jval_t v = eval(R, f, n->a);
        if (!is_num(v)) rerr(R, n, "bad operand type for unary %c: %s", n->kind == JN_NEG ? '-' : '+', type_name(v));
        if (n->kind == JN_POS) return v.t == JV_BOOL ? v_int(v.u.b) : v;
        return v.t == JV_FLOAT ? v_float(-v.u.f) : v_int(-num_i(v));
    }
    case JN_AND: {
        jval_t a = eval(R, f, n->a);
        return truthy(a) ? eval(R, f, n->b) : a;
    }
    case JN_OR: {
        jval_t a = eval(R, f, n->a);
        return truthy(a) ? a : eval(R, f, n->b);
    }
    case JN_COND:
        if (truthy(eval(R, f, n->a))) return eval(R, f, n->b);
        return n->c ? eval(R, f, n->c) : v_undef("conditional expression");
    case JN_BIN: {
        jval_t a = eval(R, f, n->a), b = eval(R, f, n->b);
        return binop(R, n, n->op, a, b);
    }
    default: rerr(R, n, "not an expression");
    }
}

// ---- statements ----
// A new output buffer for a set block or a macro call; pop_out turns it into a string value.
static buf_t *push_out(render_t *R, const jnode_t *at) {
    if (R->n_stack == (int)(sizeof R->stack / sizeof R->stack[0])) rerr(R, at, "set blocks and macro calls nested too deep");
    buf_t *b = cispo_calloc(1, sizeof *b);
    buf_init(b);
    R->stack[R->n_stack++] = b;
    R->out = b;
    return b;
}
static jval_t pop_out(render_t *R, buf_t *b) {
    R->n_stack--;
    jval_t v = v_str_buf(R, b);
    free(b);
    return v;
}

static void emit(render_t *R, jval_t v) { py_str(R->out, v); }

static jval_t call_macro(render_t *R, const jnode_t *at, const jnode_t *m, const args_t *a) {
    if (++R->depth > 200) rerr(R, at, "macro '%s': recursion deeper than 200", m->name);
    frame_t *f = frame_new(R, R->root);
    if (a->npos > m->n_targets) rerr(R, at, "macro '%s' takes %d arguments, got %d", m->name, m->n_targets, a->npos);
    for (int i = 0; i < m->n_targets; i++) {
        jval_t v = v_undef(m->targets[i]);
        int given = 0;
        if (i < a->npos) v = a->pos[i], given = 1;
        for (int k = 0; k < a->nkw && !given; k++)
            if (!strcmp(a->kw[k], m->targets[i])) v = a->kwv[k], given = 1;
        if (!given && m->args2[i]) v = eval(R, f, m->args2[i]);
        dict_set(R, &f->vars, m->targets[i], v);
    }
    for (int k = 0; k < a->nkw; k++) {
        int known = 0;
        for (int i = 0; i < m->n_targets; i++) known |= !strcmp(a->kw[k], m->targets[i]);
        if (!known) rerr(R, at, "macro '%s' has no parameter '%s'", m->name, a->kw[k]);
    }
    buf_t *saved = R->out, *out = push_out(R, at);
    exec_body(R, f, m->args, m->n_args);
    R->out = saved;
    R->depth--;
    return pop_out(R, out);
}

static void exec_for(render_t *R, frame_t *f, const jnode_t *n) {
    jval_t it = eval(R, f, n->a);
    jlist_t *all = iter_items(R, n->a, it), *items = all;
    frame_t *fr = NULL;
    if (n->b) {  // `for x in xs if cond`: filtered before loop.index counts
        items = jarena_alloc(&R->arena, sizeof *items);
        for (size_t i = 0; i < all->n; i++) {
            fr = frame_new(R, f);
            jval_t x = all->v[i];
            if (n->n_targets == 1) dict_set(R, &fr->vars, n->targets[0], x);
            else for (int k = 0; k < n->n_targets; k++)
                dict_set(R, &fr->vars, n->targets[k], x.t == JV_LIST && (size_t)k < x.u.l->n ? x.u.l->v[k] : v_undef(n->targets[k]));
            if (truthy(eval(R, fr, n->b))) list_push(R, items, x);
        }
    }
    if (!items->n) {
        exec_body(R, f, n->args2, n->n_args2);
        return;
    }
    size_t len = items->n;
    for (size_t i = 0; i < len; i++) {
        fr = frame_new(R, f);
        jval_t x = items->v[i];
        if (n->n_targets == 1) {
            dict_set(R, &fr->vars, n->targets[0], x);
        } else {
            if (x.t != JV_LIST || x.u.l->n != (size_t)n->n_targets)
                rerr(R, n, "cannot unpack %s into %d loop variables", type_name(x), n->n_targets);
            for (int k = 0; k < n->n_targets; k++) dict_set(R, &fr->vars, n->targets[k], x.u.l->v[k]);
        }
        jval_t loop = v_dict(R);
        jdict_t *L = loop.u.d;
        dict_set(R, L, "index", v_int((long long)i + 1));
        dict_set(R, L, "index0", v_int((long long)i));
        dict_set(R, L, "revindex", v_int((long long)(len - i)));
        dict_set(R, L, "revindex0", v_int((long long)(len - i - 1)));
        dict_set(R, L, "first", v_bool(i == 0));
        dict_set(R, L, "last", v_bool(i + 1 == len));
        dict_set(R, L, "length", v_int((long long)len));
        dict_set(R, L, "previtem", i ? items->v[i - 1] : v_undef("loop.previtem"));
        dict_set(R, L, "nextitem", i + 1 < len ? items->v[i + 1] : v_undef("loop.nextitem"));
        L->is_namespace = 1;  // attributes only, like jinja2's LoopContext
        dict_set(R, &fr->vars, "loop", loop);
        exec_body(R, fr, n->args, n->n_args);
        if (R->ctl == 1) {
            R->ctl = 0;
            break;
        }
        R->ctl = 0;
    }
}

static void exec_body(render_t *R, frame_t *f, jnode_t *const *stmts, int nst) {
    for (int i = 0; i < nst && !R->ctl; i++) {
        const jnode_t *n = stmts[i];
        switch (n->kind) {
        case JN_TEXT: buf_append(R->out, n->name, n->n_text); break;
        case JN_OUTPUT: emit(R, eval(R, f, n->a)); break;
        case JN_IF:
            if (truthy(eval(R, f, n->a))) exec_body(R, f, n->args, n->n_args);
            else exec_body(R, f, n->args2, n->n_args2);
            break;
        case JN_FOR: exec_for(R, f, n); break;
        case JN_SET: {
            jval_t v = eval(R, f, n->a);
            if (n->attr) {
                jval_t *ns = lookup(f, n->name);
                if (!ns || ns->t != JV_DICT || !ns->u.d->is_namespace)
                    rerr(R, n, "cannot assign attribute '%s' of '%s': not a namespace() object", n->attr, n->name);
                dict_set(R, ns->u.d, n->attr, v);
            } else {
                dict_set(R, &f->vars, n->name, v);
            }
            break;
        }
        case JN_SETBLOCK: case JN_FILTERBLOCK: {
            buf_t *saved = R->out, *out = push_out(R, n);
            exec_body(R, f, n->args, n->n_args);
            R->out = saved;
            jval_t v = pop_out(R, out);
            if (n->a) {  // the body through the block's filters
                jval_t outer = R->blockval;
                R->blockval = v;
                v = eval(R, f, n->a);
                R->blockval = outer;
            }
            if (n->kind == JN_FILTERBLOCK) emit(R, v);
            else dict_set(R, &f->vars, n->name, v);
            break;
        }
        case JN_MACRO: {
            jval_t m = {.t = JV_MACRO};
            m.u.macro = n;
            dict_set(R, &f->vars, n->name, m);
            break;
        }
        case JN_BREAK: R->ctl = 1; break;
        case JN_CONTINUE: R->ctl = 2; break;
        case JN_BODY: exec_body(R, f, n->args, n->n_args); break;
        default: rerr(R, n, "not a statement");
        }
    }
}

char *jinja_render(const jinja_template_t *t, const cJSON *vars, size_t *len_out) {
    render_t *R = cispo_calloc(1, sizeof *R);
    R->t = t;
    buf_init(&R->top);
    R->out = &R->top;
    if (setjmp(R->jb)) {
        for (int i = 0; i < R->n_stack; i++) buf_free(R->stack[i]), free(R->stack[i]);
        buf_free(&R->top);
        cispo_fail("%s", R->err);
        jarena_free(&R->arena);
        free(R);
        return NULL;
    }
    R->root = frame_new(R, NULL);
    static const struct { const char *name; int id; } globals[] = {
        {"range", FN_RANGE}, {"namespace", FN_NAMESPACE}, {"raise_exception", FN_RAISE},
        {"strftime_now", FN_STRFTIME}, {"dict", FN_DICT}, {NULL, 0}};
    for (int i = 0; globals[i].name; i++) {
        jval_t g = {.t = JV_FUNC};
        g.u.fn.id = globals[i].id;
        dict_set(R, &R->root->vars, globals[i].name, g);
    }
    if (vars && !cJSON_IsObject(vars)) rerr(R, NULL, "the variables must be a JSON object");
    for (const cJSON *c = vars ? vars->child : NULL; c; c = c->next) dict_set(R, &R->root->vars, c->string, from_json(R, c));
    exec_body(R, R->root, t->root->args, t->root->n_args);
    char *text = buf_take(&R->top, len_out);
    jarena_free(&R->arena);
    free(R);
    return text;
}
