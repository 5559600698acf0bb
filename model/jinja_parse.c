// model/jinja_parse.c — the lexer and parser of the Jinja2 subset (model/jinja.h): template text to a
// tree of jnode_t (model/jinja_int.h), with jinja2's whitespace rules as transformers configures them
// (trim_blocks: the first newline after a block or comment tag is dropped; lstrip_blocks: spaces and
// tabs from the start of a line to a block or comment tag are dropped; `-` strips all whitespace on
// its side, `+` keeps it; one trailing newline of the template is dropped).
// defines: jinja_parse, jinja_free, jarena_alloc, jarena_strndup, jarena_free
#include <ctype.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/buf.h"
#include "base/common.h"
#include "base/utf8.h"
#include "model/jinja_int.h"

// ---- arena ----
void *jarena_alloc(jarena_t *a, size_t n) {
    n = (n + 15) & ~(size_t)15;
    if (!a->head || a->head->cap - a->head->used < n) {
        size_t cap = n > 65536 ? n : 65536;
        jarena_block_t *b = cispo_malloc(sizeof *b + cap);
        b->next = a->head, b->used = 0, b->cap = cap;
        a->head = b;
    }
    void *p = a->head->data + a->head->used;
    a->head->used += n;
    memset(p, 0, n);
    return p;
}

char *jarena_strndup(jarena_t *a, const char *s, size_t n) {
    char *p = jarena_alloc(a, n + 1);
    memcpy(p, s, n);
    p[n] = 0;
    return p;
}

void jarena_free(jarena_t *a) {
    for (jarena_block_t *b = a->head, *nx; b; b = nx) nx = b->next, free(b);
    a->head = NULL;
}

// ---- tokens ----
typedef enum {
    TK_DATA, TK_VAR_BEGIN, TK_VAR_END, TK_BLOCK_BEGIN, TK_BLOCK_END, TK_NAME, TK_STRING, TK_INT, TK_FLOAT, TK_OP, TK_EOF,
} tk_kind_t;

typedef struct {
    tk_kind_t kind;
    const char *p;  // DATA/NAME/OP: the text; STRING: the decoded value
    size_t n;
    long long i;
    double f;
    int line, col;
} token_t;

typedef struct {
    jarena_t *arena;
    const char *name;
    const char *src;
    size_t len;
    token_t *tk;
    size_t ntk, cap, pos;
    size_t lc_off;  // line_col's last answer
    int lc_line, lc_col;
    jmp_buf jb;
    char err[512];
} parser_t;

CISPO_PRINTF(4, 5) static _Noreturn void perr(parser_t *P, int line, int col, const char *fmt, ...) {
    char msg[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    snprintf(P->err, sizeof P->err, "%s:%d:%d: %s", P->name, line, col, msg);
    longjmp(P->jb, 1);
}

// Line and column (in characters) of a source offset; offsets mostly increase, so it resumes from the
// last answer.
static void line_col(parser_t *P, size_t off, int *line, int *col) {
    size_t i = 0;
    int l = 1, c = 1;
    if (off >= P->lc_off) i = P->lc_off, l = P->lc_line, c = P->lc_col;
    for (; i < off && i < P->len; i++) {
        if (P->src[i] == '\n') l++, c = 1;
        else if (!utf8_is_cont((unsigned char)P->src[i])) c++;
    }
    P->lc_off = i, P->lc_line = l, P->lc_col = c;
    *line = l, *col = c;
}

static token_t *push_tok(parser_t *P, tk_kind_t kind, const char *p, size_t n, size_t off) {
    if (P->ntk == P->cap) {
        P->cap = P->cap ? P->cap * 2 : 256;
        P->tk = cispo_realloc(P->tk, P->cap * sizeof *P->tk);
    }
    token_t *t = &P->tk[P->ntk++];
    memset(t, 0, sizeof *t);
    t->kind = kind, t->p = p, t->n = n;
    line_col(P, off, &t->line, &t->col);
    return t;
}

static int is_ws(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'; }

// A string literal at s[*i] (the quote), decoded as Python decodes it; *i moves past the closing quote.
static void lex_string(parser_t *P, size_t *i, size_t off0) {
    const char *s = P->src;
    char q = s[*i];
    size_t j = *i + 1;
    buf_t b = {0};
    buf_init(&b);
    while (j < P->len && s[j] != q) {
        if (s[j] == '\\' && j + 1 < P->len) {
            char e = s[j + 1];
            j += 2;
            switch (e) {
            case 'n': buf_putc(&b, '\n'); break;
            case 't': buf_putc(&b, '\t'); break;
            case 'r': buf_putc(&b, '\r'); break;
            case 'b': buf_putc(&b, '\b'); break;
            case 'f': buf_putc(&b, '\f'); break;
            case 'v': buf_putc(&b, '\v'); break;
            case 'a': buf_putc(&b, '\a'); break;
            case '0': buf_putc(&b, '\0'); break;
            case '\\': case '\'': case '"': buf_putc(&b, e); break;
            case '\n': break;
            case 'x': case 'u': case 'U': {
                int nd = e == 'x' ? 2 : e == 'u' ? 4 : 8;
                uint32_t cp = 0;
                for (int k = 0; k < nd; k++, j++) {
                    if (j >= P->len || !isxdigit((unsigned char)s[j])) {
                        int l, c;
                        line_col(P, off0, &l, &c);
                        buf_free(&b);
                        perr(P, l, c, "bad \\%c escape in a string literal", e);
                    }
                    cp = cp * 16 + (uint32_t)(isdigit((unsigned char)s[j]) ? s[j] - '0' : (tolower((unsigned char)s[j]) - 'a' + 10));
                }
                char u[4];
                if (cp > 0x10FFFF || (cp >= 0xD800 && cp < 0xE000)) cp = 0xFFFD;
                buf_append(&b, u, (size_t)utf8_encode(cp, u));
                break;
            }
            default: buf_putc(&b, '\\'), buf_putc(&b, e);
            }
        } else {
            buf_putc(&b, s[j++]);
        }
    }
    if (j >= P->len) {
        int l, c;
        line_col(P, off0, &l, &c);
        buf_free(&b);
        perr(P, l, c, "unterminated string literal");
    }
    token_t *t = push_tok(P, TK_STRING, jarena_strndup(P->arena, b.s, b.n), b.n, off0);
    (void)t;
    buf_free(&b);
    *i = j + 1;
}

// The tokens of one tag's inside, from src[*i] up to its end marker ("}}" or "%}", with - or +);
// *i moves past the end marker. Returns the sign before the end marker ('-', '+' or 0).
static char lex_tag(parser_t *P, size_t *i, int is_var, size_t tag_off) {
    const char *s = P->src;
    int depth = 0;
    size_t j = *i;
    for (;;) {
        while (j < P->len && is_ws(s[j])) j++;
        if (j >= P->len) {
            int l, c;
            line_col(P, tag_off, &l, &c);
            perr(P, l, c, "unclosed %s tag", is_var ? "{{" : "{%");
        }
        char c = s[j];
        const char *end = is_var ? "}}" : "%}";
        if (depth == 0) {
            if ((c == '-' || c == '+') && j + 2 < P->len + 0 && !strncmp(s + j + 1, end, 2)) {
                push_tok(P, is_var ? TK_VAR_END : TK_BLOCK_END, s + j, 3, j);
                *i = j + 3;
                return c;
            }
            if (!strncmp(s + j, end, 2)) {
                push_tok(P, is_var ? TK_VAR_END : TK_BLOCK_END, s + j, 2, j);
                *i = j + 2;
                return 0;
            }
        }
        if (c == '\'' || c == '"') {
            lex_string(P, &j, j);
        } else if (isdigit((unsigned char)c)) {
            size_t k = j;
            int is_float = 0;
            while (k < P->len && (isdigit((unsigned char)s[k]) || s[k] == '_')) k++;
            if (k + 1 < P->len && s[k] == '.' && isdigit((unsigned char)s[k + 1])) {
                is_float = 1, k++;
                while (k < P->len && (isdigit((unsigned char)s[k]) || s[k] == '_')) k++;
            }
            if (k < P->len && (s[k] == 'e' || s[k] == 'E')) {
                size_t e = k + 1;
                if (e < P->len && (s[e] == '+' || s[e] == '-')) e++;
                if (e < P->len && isdigit((unsigned char)s[e])) {
                    is_float = 1, k = e;
                    while (k < P->len && isdigit((unsigned char)s[k])) k++;
                }
            }
            char num[64];
            size_t m = 0;
            for (size_t q = j; q < k && m < sizeof num - 1; q++)
                if (s[q] != '_') num[m++] = s[q];
            num[m] = 0;
            token_t *t = push_tok(P, is_float ? TK_FLOAT : TK_INT, s + j, k - j, j);
            if (is_float) t->f = strtod(num, NULL);
            else t->i = strtoll(num, NULL, 10);
            j = k;
        } else if (isalpha((unsigned char)c) || c == '_') {
            size_t k = j;
            while (k < P->len && (isalnum((unsigned char)s[k]) || s[k] == '_')) k++;
            push_tok(P, TK_NAME, s + j, k - j, j);
            j = k;
        } else {
            static const char *const two[] = {"//", "**", "==", "!=", "<=", ">=", NULL};
            size_t n = 0;
            for (const char *const *o = two; *o; o++)
                if (j + 1 < P->len && s[j] == (*o)[0] && s[j + 1] == (*o)[1]) n = 2;
            if (!n) {
                if (!strchr("+-/*%~[](){}.,:|=<>!", c)) {
                    int l, col;
                    line_col(P, j, &l, &col);
                    perr(P, l, col, "unexpected character '%c' in a tag", c);
                }
                n = 1;
                if (c == '(' || c == '[' || c == '{') depth++;
                if ((c == ')' || c == ']' || c == '}') && depth > 0) depth--;
            }
            push_tok(P, TK_OP, s + j, n, j);
            j += n;
        }
    }
}

static void lex(parser_t *P) {
    const char *s = P->src;
    size_t i = 0;
    int line_starting = 1;
    while (i < P->len) {
        // the next tag opening
        size_t t = i;
        int kind = 0;  // '{', '%', '#'
        for (; t + 1 < P->len; t++)
            if (s[t] == '{' && (s[t + 1] == '{' || s[t + 1] == '%' || s[t + 1] == '#')) {
                kind = s[t + 1];
                break;
            }
        if (!kind) {
            push_tok(P, TK_DATA, s + i, P->len - i, i);
            break;
        }
        char sign = t + 2 < P->len && (s[t + 2] == '-' || s[t + 2] == '+') ? s[t + 2] : 0;
        size_t tn = t - i;  // text length before the tag
        if (sign == '-') {
            while (tn > 0 && is_ws(s[i + tn - 1])) tn--;
        } else if (sign != '+' && kind != '{') {  // lstrip_blocks
            size_t lpos = tn;
            while (lpos > 0 && s[i + lpos - 1] != '\n') lpos--;
            if ((lpos > 0 || line_starting) && lpos < tn) {
                int all_ws = 1;
                for (size_t k = lpos; k < tn; k++) all_ws &= is_ws(s[i + k]);
                if (all_ws) tn = lpos;
            }
        }
        if (tn) push_tok(P, TK_DATA, s + i, tn, i);
        size_t body = t + 2 + (sign ? 1 : 0);
        if (kind == '#') {
            const char *e = NULL;
            for (size_t k = body; k + 1 < P->len; k++)
                if (s[k] == '#' && s[k + 1] == '}') {
                    e = s + k;
                    break;
                }
            if (!e) {
                int l, c;
                line_col(P, t, &l, &c);
                perr(P, l, c, "unclosed comment {#");
            }
            size_t k = (size_t)(e - s) + 2;
            char esign = e > s + body && (e[-1] == '-' || e[-1] == '+') ? e[-1] : 0;
            if (esign == '-') {
                while (k < P->len && is_ws(s[k])) k++;
            } else if (esign != '+' && k < P->len && s[k] == '\n') {
                k++;
            }
            line_starting = s[k - 1] == '\n';
            i = k;
            continue;
        }
        push_tok(P, kind == '{' ? TK_VAR_BEGIN : TK_BLOCK_BEGIN, s + t, body - t, t);
        size_t k = body;
        char esign = lex_tag(P, &k, kind == '{', t);
        if (esign == '-') {
            while (k < P->len && is_ws(s[k])) k++;
        } else if (kind == '%' && esign != '+' && k < P->len && s[k] == '\n') {
            k++;
        }
        line_starting = s[k - 1] == '\n';
        i = k;
    }
    push_tok(P, TK_EOF, s + P->len, 0, P->len);
}

// ---- parser ----
static token_t *cur(parser_t *P) { return &P->tk[P->pos]; }
static token_t *peek(parser_t *P, int k) {
    size_t p = P->pos + (size_t)k;
    return &P->tk[p < P->ntk ? p : P->ntk - 1];
}
static int tok_is(const token_t *t, tk_kind_t kind, const char *text) {
    return t->kind == kind && (!text || (strlen(text) == t->n && !memcmp(t->p, text, t->n)));
}
static int is_op(parser_t *P, const char *op) { return tok_is(cur(P), TK_OP, op); }
static int is_name(parser_t *P, const char *nm) { return tok_is(cur(P), TK_NAME, nm); }

static const char *tok_desc(const token_t *t, char *buf, size_t n) {
    switch (t->kind) {
    case TK_EOF: return "the end of the template";
    case TK_VAR_END: return "'}}'";
    case TK_BLOCK_END: return "'%}'";
    case TK_DATA: return "template text";
    case TK_STRING: return "a string";
    default: snprintf(buf, n, "'%.*s'", (int)(t->n < 40 ? t->n : 40), t->p); return buf;
    }
}

CISPO_PRINTF(2, 3) static _Noreturn void perr_tok(parser_t *P, const char *fmt, ...) {
    char msg[300], d[64];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    perr(P, cur(P)->line, cur(P)->col, "%s (found %s)", msg, tok_desc(cur(P), d, sizeof d));
}

static void expect_op(parser_t *P, const char *op) {
    if (!is_op(P, op)) perr_tok(P, "expected '%s'", op);
    P->pos++;
}

static const char *expect_name(parser_t *P) {
    if (cur(P)->kind != TK_NAME) perr_tok(P, "expected a name");
    token_t *t = &P->tk[P->pos++];
    return jarena_strndup(P->arena, t->p, t->n);
}

static void expect_block_end(parser_t *P) {
    if (cur(P)->kind != TK_BLOCK_END) perr_tok(P, "expected '%%}'");
    P->pos++;
}

static jnode_t *mk(parser_t *P, jkind_t kind, const token_t *at) {
    jnode_t *n = jarena_alloc(P->arena, sizeof *n);
    n->kind = kind, n->line = at->line, n->col = at->col;
    return n;
}

typedef struct {
    jnode_t **v;
    const char **names;
    int n, cap;
} nodevec_t;

static void nv_push(parser_t *P, nodevec_t *nv, jnode_t *x, const char *name) {
    if (nv->n == nv->cap) {
        int cap = nv->cap ? nv->cap * 2 : 8;
        jnode_t **v = jarena_alloc(P->arena, (size_t)cap * sizeof *v);
        const char **nm = jarena_alloc(P->arena, (size_t)cap * sizeof *nm);
        if (nv->n) memcpy(v, nv->v, (size_t)nv->n * sizeof *v), memcpy(nm, nv->names, (size_t)nv->n * sizeof *nm);
        nv->v = v, nv->names = nm, nv->cap = cap;
    }
    nv->names[nv->n] = name;
    nv->v[nv->n++] = x;
}

static jnode_t *parse_expr(parser_t *P, int with_cond);
static jnode_t *parse_unary(parser_t *P, int with_filter);
static jnode_t *parse_primary(parser_t *P);
static jnode_t *parse_postfix(parser_t *P, jnode_t *n);

// Call arguments after '(' up to ')': positional then key=value.
static void parse_args(parser_t *P, jnode_t *n) {
    nodevec_t nv = {0};
    expect_op(P, "(");
    while (!is_op(P, ")")) {
        if (nv.n) expect_op(P, ",");
        if (is_op(P, ")")) break;  // trailing comma
        if (is_op(P, "*") || is_op(P, "**")) perr_tok(P, "*args and **kwargs in calls are not supported");
        const char *kw = NULL;
        if (cur(P)->kind == TK_NAME && tok_is(peek(P, 1), TK_OP, "=")) {
            kw = expect_name(P);
            P->pos++;
        }
        nv_push(P, &nv, parse_expr(P, 1), kw);
    }
    P->pos++;
    n->args = nv.v, n->kwnames = nv.names, n->n_args = nv.n;
}

static jnode_t *parse_filter_expr(parser_t *P, jnode_t *n) {
    for (;;) {
        if (is_op(P, "|")) {
            token_t *at = &P->tk[P->pos++];
            jnode_t *f = mk(P, JN_FILTER, at);
            f->name = expect_name(P);
            while (is_op(P, ".")) {  // dotted filter names are not in the subset
                perr_tok(P, "dotted filter names are not supported");
            }
            f->a = n;
            if (is_op(P, "(")) parse_args(P, f);
            n = f;
        } else if (is_name(P, "is")) {
            token_t *at = &P->tk[P->pos++];
            jnode_t *t = mk(P, JN_TEST, at);
            if (is_name(P, "not")) t->op = 1, P->pos++;
            t->name = expect_name(P);
            t->a = n;
            if (is_op(P, "(")) {
                parse_args(P, t);
            } else {
                token_t *c = cur(P);
                int arg = c->kind == TK_STRING || c->kind == TK_INT || c->kind == TK_FLOAT || tok_is(c, TK_OP, "[") ||
                          tok_is(c, TK_OP, "{") ||
                          (c->kind == TK_NAME && !tok_is(c, TK_NAME, "else") && !tok_is(c, TK_NAME, "or") &&
                           !tok_is(c, TK_NAME, "and") && !tok_is(c, TK_NAME, "if") && !tok_is(c, TK_NAME, "in") &&
                           !tok_is(c, TK_NAME, "not") && !tok_is(c, TK_NAME, "is"));
                if (arg) {
                    jnode_t *a = parse_postfix(P, parse_primary(P));
                    t->args = jarena_alloc(P->arena, sizeof *t->args);
                    t->kwnames = jarena_alloc(P->arena, sizeof *t->kwnames);
                    t->args[0] = a, t->n_args = 1;
                }
            }
            n = t;
        } else if (is_op(P, "(")) {
            jnode_t *c = mk(P, JN_CALL, cur(P));
            c->a = n;
            parse_args(P, c);
            n = c;
        } else {
            return n;
        }
    }
}

static jnode_t *parse_postfix(parser_t *P, jnode_t *n) {
    for (;;) {
        token_t *at = cur(P);
        if (is_op(P, ".")) {
            P->pos++;
            jnode_t *a;
            if (cur(P)->kind == TK_INT) {
                a = mk(P, JN_INDEX, at);
                jnode_t *lit = mk(P, JN_LIT, cur(P));
                lit->lit.t = JV_INT, lit->lit.u.i = cur(P)->i;
                P->pos++;
                a->a = n, a->b = lit;
            } else {
                a = mk(P, JN_ATTR, at);
                a->a = n, a->name = expect_name(P);
            }
            n = a;
        } else if (is_op(P, "[")) {
            P->pos++;
            jnode_t *lo = NULL, *hi = NULL, *st = NULL;
            int slice = 0;
            if (!is_op(P, ":")) lo = parse_expr(P, 1);
            if (is_op(P, ":")) {
                slice = 1, P->pos++;
                if (!is_op(P, "]") && !is_op(P, ":")) hi = parse_expr(P, 1);
                if (is_op(P, ":")) {
                    P->pos++;
                    if (!is_op(P, "]")) st = parse_expr(P, 1);
                }
            }
            expect_op(P, "]");
            jnode_t *x = mk(P, slice ? JN_SLICE : JN_INDEX, at);
            x->a = n, x->b = lo, x->c = hi, x->d = st;
            n = x;
        } else if (is_op(P, "(")) {
            jnode_t *c = mk(P, JN_CALL, at);
            c->a = n;
            parse_args(P, c);
            n = c;
        } else {
            return n;
        }
    }
}

static jnode_t *parse_primary(parser_t *P) {
    token_t *t = cur(P);
    jnode_t *n;
    if (t->kind == TK_NAME) {
        P->pos++;
        n = mk(P, JN_LIT, t);
        if (tok_is(t, TK_NAME, "true") || tok_is(t, TK_NAME, "True")) n->lit.t = JV_BOOL, n->lit.u.b = 1;
        else if (tok_is(t, TK_NAME, "false") || tok_is(t, TK_NAME, "False")) n->lit.t = JV_BOOL, n->lit.u.b = 0;
        else if (tok_is(t, TK_NAME, "none") || tok_is(t, TK_NAME, "None")) n->lit.t = JV_NONE;
        else n->kind = JN_NAME, n->name = jarena_strndup(P->arena, t->p, t->n);
        return n;
    }
    if (t->kind == TK_STRING) {
        buf_t b = {0};
        buf_init(&b);
        while (cur(P)->kind == TK_STRING) buf_append(&b, cur(P)->p, cur(P)->n), P->pos++;  // adjacent literals join
        n = mk(P, JN_LIT, t);
        n->lit.t = JV_STR;
        n->lit.u.s.p = jarena_strndup(P->arena, b.s, b.n);
        n->lit.u.s.n = b.n;
        buf_free(&b);
        return n;
    }
    if (t->kind == TK_INT || t->kind == TK_FLOAT) {
        P->pos++;
        n = mk(P, JN_LIT, t);
        if (t->kind == TK_INT) n->lit.t = JV_INT, n->lit.u.i = t->i;
        else n->lit.t = JV_FLOAT, n->lit.u.f = t->f;
        return n;
    }
    if (tok_is(t, TK_OP, "(")) {
        P->pos++;
        if (is_op(P, ")")) {
            P->pos++;
            n = mk(P, JN_TUPLE, t);
            return n;
        }
        jnode_t *e = parse_expr(P, 1);
        if (is_op(P, ",")) {
            nodevec_t nv = {0};
            nv_push(P, &nv, e, NULL);
            while (is_op(P, ",")) {
                P->pos++;
                if (is_op(P, ")")) break;
                nv_push(P, &nv, parse_expr(P, 1), NULL);
            }
            e = mk(P, JN_TUPLE, t);
            e->args = nv.v, e->n_args = nv.n;
        }
        expect_op(P, ")");
        return e;
    }
    if (tok_is(t, TK_OP, "[")) {
        P->pos++;
        nodevec_t nv = {0};
        while (!is_op(P, "]")) {
            if (nv.n) expect_op(P, ",");
            if (is_op(P, "]")) break;
            nv_push(P, &nv, parse_expr(P, 1), NULL);
        }
        P->pos++;
        n = mk(P, JN_LIST, t);
        n->args = nv.v, n->n_args = nv.n;
        return n;
    }
    if (tok_is(t, TK_OP, "{")) {
        P->pos++;
        nodevec_t ks = {0}, vs = {0};
        while (!is_op(P, "}")) {
            if (ks.n) expect_op(P, ",");
            if (is_op(P, "}")) break;
            nv_push(P, &ks, parse_expr(P, 1), NULL);
            expect_op(P, ":");
            nv_push(P, &vs, parse_expr(P, 1), NULL);
        }
        P->pos++;
        n = mk(P, JN_DICT, t);
        n->args = ks.v, n->n_args = ks.n, n->args2 = vs.v, n->n_args2 = vs.n;
        return n;
    }
    perr_tok(P, "expected an expression");
}

static jnode_t *parse_unary(parser_t *P, int with_filter) {
    token_t *t = cur(P);
    jnode_t *n;
    if (tok_is(t, TK_OP, "-") || tok_is(t, TK_OP, "+")) {
        P->pos++;
        n = mk(P, t->p[0] == '-' ? JN_NEG : JN_POS, t);
        n->a = parse_unary(P, 0);
    } else {
        n = parse_postfix(P, parse_primary(P));
    }
    return with_filter ? parse_filter_expr(P, n) : n;
}

static jnode_t *mkbin(parser_t *P, const token_t *at, int op, jnode_t *a, jnode_t *b) {
    jnode_t *n = mk(P, JN_BIN, at);
    n->op = op, n->a = a, n->b = b;
    return n;
}

static jnode_t *parse_pow(parser_t *P) {
    jnode_t *n = parse_unary(P, 1);
    while (is_op(P, "**")) {
        token_t *at = &P->tk[P->pos++];
        n = mkbin(P, at, JOP_POW, n, parse_unary(P, 1));
    }
    return n;
}

static jnode_t *parse_math2(parser_t *P) {
    jnode_t *n = parse_pow(P);
    for (;;) {
        int op = is_op(P, "*") ? JOP_MUL : is_op(P, "/") ? JOP_DIV : is_op(P, "//") ? JOP_FLOORDIV : is_op(P, "%") ? JOP_MOD : -1;
        if (op < 0) return n;
        token_t *at = &P->tk[P->pos++];
        n = mkbin(P, at, op, n, parse_pow(P));
    }
}

static jnode_t *parse_concat(parser_t *P) {
    jnode_t *n = parse_math2(P);
    while (is_op(P, "~")) {
        token_t *at = &P->tk[P->pos++];
        n = mkbin(P, at, JOP_CONCAT, n, parse_math2(P));
    }
    return n;
}

static jnode_t *parse_math1(parser_t *P) {
    jnode_t *n = parse_concat(P);
    for (;;) {
        int op = is_op(P, "+") ? JOP_ADD : is_op(P, "-") ? JOP_SUB : -1;
        if (op < 0) return n;
        token_t *at = &P->tk[P->pos++];
        n = mkbin(P, at, op, n, parse_concat(P));
    }
}

static jnode_t *parse_compare(parser_t *P) {
    jnode_t *n = parse_math1(P);
    for (;;) {
        token_t *at = cur(P);
        int op = is_op(P, "==") ? JOP_EQ : is_op(P, "!=") ? JOP_NE : is_op(P, "<") ? JOP_LT : is_op(P, "<=") ? JOP_LE
               : is_op(P, ">") ? JOP_GT : is_op(P, ">=") ? JOP_GE : is_name(P, "in") ? JOP_IN : -1;
        if (op < 0 && is_name(P, "not") && tok_is(peek(P, 1), TK_NAME, "in")) {
            op = JOP_NOTIN;
            P->pos++;
        }
        if (op < 0) return n;
        P->pos++;
        n = mkbin(P, at, op, n, parse_math1(P));
    }
}

static jnode_t *parse_not(parser_t *P) {
    if (is_name(P, "not")) {
        jnode_t *n = mk(P, JN_NOT, cur(P));
        P->pos++;
        n->a = parse_not(P);
        return n;
    }
    return parse_compare(P);
}

static jnode_t *parse_and(parser_t *P) {
    jnode_t *n = parse_not(P);
    while (is_name(P, "and")) {
        jnode_t *x = mk(P, JN_AND, cur(P));
        P->pos++;
        x->a = n, x->b = parse_not(P);
        n = x;
    }
    return n;
}

static jnode_t *parse_or(parser_t *P) {
    jnode_t *n = parse_and(P);
    while (is_name(P, "or")) {
        jnode_t *x = mk(P, JN_OR, cur(P));
        P->pos++;
        x->a = n, x->b = parse_and(P);
        n = x;
    }
    return n;
}

static jnode_t *parse_expr(parser_t *P, int with_cond) {
    jnode_t *n = parse_or(P);
    while (with_cond && is_name(P, "if")) {
        jnode_t *c = mk(P, JN_COND, cur(P));
        P->pos++;
        c->b = n;
        c->a = parse_or(P);
        if (is_name(P, "else")) {
            P->pos++;
            c->c = parse_expr(P, 1);
        }
        n = c;
    }
    return n;
}

// ---- statements ----
static jnode_t *parse_body(parser_t *P, const char *const *ends);

static const char *const END_IF[] = {"elif", "else", "endif", NULL};
static const char *const END_FOR[] = {"else", "endfor", NULL};

static int at_end_tag(parser_t *P, const char *const *ends) {
    if (cur(P)->kind != TK_BLOCK_BEGIN || peek(P, 1)->kind != TK_NAME) return 0;
    for (const char *const *e = ends; e && *e; e++)
        if (tok_is(peek(P, 1), TK_NAME, *e)) return 1;
    return 0;
}

static void expect_end(parser_t *P, const char *name, const token_t *opened) {
    if (cur(P)->kind != TK_BLOCK_BEGIN || !tok_is(peek(P, 1), TK_NAME, name))
        perr(P, opened->line, opened->col, "'%.*s' block is not closed by '%s'", (int)opened->n, opened->p, name);
    P->pos += 2;
    expect_block_end(P);
}

static jnode_t *parse_if(parser_t *P, token_t *kw) {
    jnode_t *n = mk(P, JN_IF, kw);
    n->a = parse_expr(P, 1);
    expect_block_end(P);
    jnode_t *body = parse_body(P, END_IF);
    n->args = body->args, n->n_args = body->n_args;
    if (cur(P)->kind != TK_BLOCK_BEGIN) perr(P, kw->line, kw->col, "'if' block is not closed by 'endif'");
    token_t *t = peek(P, 1);
    if (tok_is(t, TK_NAME, "elif")) {
        P->pos += 2;
        jnode_t *sub = parse_if(P, t);  // consumes through endif
        n->args2 = jarena_alloc(P->arena, sizeof *n->args2);
        n->args2[0] = sub, n->n_args2 = 1;
        return n;
    }
    if (tok_is(t, TK_NAME, "else")) {
        P->pos += 2;
        expect_block_end(P);
        jnode_t *eb = parse_body(P, (const char *const[]){"endif", NULL});
        n->args2 = eb->args, n->n_args2 = eb->n_args;
    }
    expect_end(P, "endif", kw);
    return n;
}

static jnode_t *parse_for(parser_t *P, token_t *kw) {
    jnode_t *n = mk(P, JN_FOR, kw);
    const char **tg = jarena_alloc(P->arena, 8 * sizeof *tg);
    int nt = 0;
    int paren = is_op(P, "(");
    if (paren) P->pos++;
    do {
        if (nt && is_op(P, ",")) P->pos++;
        if (nt == 8) perr_tok(P, "more than 8 loop targets");
        tg[nt++] = expect_name(P);
    } while (is_op(P, ","));
    if (paren) expect_op(P, ")");
    n->targets = tg, n->n_targets = nt;
    if (!is_name(P, "in")) perr_tok(P, "expected 'in' in a for loop");
    P->pos++;
    n->a = parse_expr(P, 0);
    if (is_name(P, "if")) {
        P->pos++;
        n->b = parse_expr(P, 1);
    }
    if (is_name(P, "recursive")) perr_tok(P, "recursive loops are not supported");
    expect_block_end(P);
    jnode_t *body = parse_body(P, END_FOR);
    n->args = body->args, n->n_args = body->n_args;
    if (at_end_tag(P, (const char *const[]){"else", NULL})) {
        P->pos += 2;
        expect_block_end(P);
        jnode_t *eb = parse_body(P, (const char *const[]){"endfor", NULL});
        n->args2 = eb->args, n->n_args2 = eb->n_args;
    }
    expect_end(P, "endfor", kw);
    return n;
}

static jnode_t *parse_set(parser_t *P, token_t *kw) {
    jnode_t *n = mk(P, JN_SET, kw);
    n->name = expect_name(P);
    if (is_op(P, ".")) {
        P->pos++;
        n->attr = expect_name(P);
    }
    if (is_op(P, ",")) perr_tok(P, "tuple assignment in 'set' is not supported");
    if (is_op(P, "=")) {
        P->pos++;
        n->a = parse_expr(P, 1);
        expect_block_end(P);
        return n;
    }
    if (is_op(P, "|")) n->a = parse_filter_expr(P, mk(P, JN_BLOCKVAL, cur(P)));  // {% set x | f %}...{% endset %}
    expect_block_end(P);
    n->kind = JN_SETBLOCK;
    jnode_t *body = parse_body(P, (const char *const[]){"endset", NULL});
    n->args = body->args, n->n_args = body->n_args;
    expect_end(P, "endset", kw);
    return n;
}

static jnode_t *parse_macro(parser_t *P, token_t *kw) {
    jnode_t *n = mk(P, JN_MACRO, kw);
    n->name = expect_name(P);
    nodevec_t defs = {0};
    expect_op(P, "(");
    while (!is_op(P, ")")) {
        if (defs.n) expect_op(P, ",");
        const char *pn = expect_name(P);
        jnode_t *d = NULL;
        if (is_op(P, "=")) {
            P->pos++;
            d = parse_expr(P, 1);
        }
        nv_push(P, &defs, d, pn);
    }
    P->pos++;
    n->targets = defs.names, n->n_targets = defs.n, n->args2 = defs.v, n->n_args2 = defs.n;
    expect_block_end(P);
    jnode_t *body = parse_body(P, (const char *const[]){"endmacro", NULL});
    n->args = body->args, n->n_args = body->n_args;
    expect_end(P, "endmacro", kw);
    return n;
}

static jnode_t *parse_statement(parser_t *P) {
    token_t *begin = &P->tk[P->pos++];
    if (cur(P)->kind != TK_NAME) perr_tok(P, "expected a statement name after '{%%'");
    token_t *kw = &P->tk[P->pos++];
    if (tok_is(kw, TK_NAME, "if")) return parse_if(P, kw);
    if (tok_is(kw, TK_NAME, "for")) return parse_for(P, kw);
    if (tok_is(kw, TK_NAME, "set")) return parse_set(P, kw);
    if (tok_is(kw, TK_NAME, "macro")) return parse_macro(P, kw);
    if (tok_is(kw, TK_NAME, "break") || tok_is(kw, TK_NAME, "continue")) {
        jnode_t *n = mk(P, kw->p[0] == 'b' ? JN_BREAK : JN_CONTINUE, kw);
        expect_block_end(P);
        return n;
    }
    if (tok_is(kw, TK_NAME, "filter")) {  // {% filter f(args) | g %}body{% endfilter %}: the body through the filters
        jnode_t *n = mk(P, JN_FILTERBLOCK, kw), *fl = mk(P, JN_FILTER, cur(P));
        fl->name = expect_name(P);
        fl->a = mk(P, JN_BLOCKVAL, kw);
        if (is_op(P, "(")) parse_args(P, fl);
        n->a = parse_filter_expr(P, fl);
        expect_block_end(P);
        jnode_t *body = parse_body(P, (const char *const[]){"endfilter", NULL});
        n->args = body->args, n->n_args = body->n_args;
        expect_end(P, "endfilter", kw);
        return n;
    }
    if (tok_is(kw, TK_NAME, "generation")) {  // transformers' assistant-mask marker: its body renders as is
        expect_block_end(P);
        jnode_t *body = parse_body(P, (const char *const[]){"endgeneration", NULL});
        expect_end(P, "endgeneration", kw);
        return body;
    }
    (void)begin;
    perr(P, kw->line, kw->col, "unsupported statement '%.*s' (the subset has if, for, set, macro, filter, break, "
         "continue, generation)", (int)kw->n, kw->p);
}

static jnode_t *parse_body(parser_t *P, const char *const *ends) {
    jnode_t *body = mk(P, JN_BODY, cur(P));
    nodevec_t nv = {0};
    for (;;) {
        token_t *t = cur(P);
        if (t->kind == TK_EOF) {
            if (ends) break;  // the caller reports the missing end tag
            break;
        }
        if (t->kind == TK_DATA) {
            jnode_t *x = mk(P, JN_TEXT, t);
            x->name = t->p, x->n_text = t->n;
            nv_push(P, &nv, x, NULL);
            P->pos++;
        } else if (t->kind == TK_VAR_BEGIN) {
            P->pos++;
            jnode_t *x = mk(P, JN_OUTPUT, t);
            x->a = parse_expr(P, 1);
            if (cur(P)->kind != TK_VAR_END) perr_tok(P, "expected '}}'");
            P->pos++;
            nv_push(P, &nv, x, NULL);
        } else if (t->kind == TK_BLOCK_BEGIN) {
            if (at_end_tag(P, ends)) break;
            token_t *nm = peek(P, 1);
            if (nm->kind == TK_NAME && !ends) {
                static const char *const stray[] = {"endif", "endfor", "else", "elif", "endset", "endmacro", "endgeneration", "endfilter", NULL};
                for (const char *const *s = stray; *s; s++)
                    if (tok_is(nm, TK_NAME, *s)) perr(P, nm->line, nm->col, "'%s' without an open block", *s);
            }
            if (nm->kind == TK_NAME && ends) {
                static const char *const stray[] = {"endif", "endfor", "endset", "endmacro", "endgeneration", "endfilter", "elif", "else", NULL};
                for (const char *const *s = stray; *s; s++)
                    if (tok_is(nm, TK_NAME, *s)) perr(P, nm->line, nm->col, "unexpected '%s' (expected '%s')", *s, ends[0]);
            }
            nv_push(P, &nv, parse_statement(P), NULL);
        } else {
            perr_tok(P, "unexpected token");
        }
    }
    body->args = nv.v, body->n_args = nv.n;
    return body;
}

jinja_template_t *jinja_parse(const char *src, size_t len, const char *name) {
    jinja_template_t *t = cispo_calloc(1, sizeof *t);
    t->name = cispo_strdup(name ? name : "template");
    // newlines normalised to \n, one trailing newline dropped (jinja2's keep_trailing_newline=False)
    char *s = jarena_alloc(&t->arena, len + 1);
    size_t n = 0;
    for (size_t i = 0; i < len; i++) {
        if (src[i] == '\r') {
            s[n++] = '\n';
            if (i + 1 < len && src[i + 1] == '\n') i++;
        } else {
            s[n++] = src[i];
        }
    }
    if (n && s[n - 1] == '\n') n--;
    s[n] = 0;
    parser_t P = {.arena = &t->arena, .name = t->name, .src = s, .len = n, .lc_line = 1, .lc_col = 1};
    if (setjmp(P.jb)) {
        free(P.tk);
        cispo_fail("%s", P.err);
        jinja_free(t);
        return NULL;
    }
    lex(&P);
    t->root = parse_body(&P, NULL);
    if (cur(&P)->kind != TK_EOF) perr_tok(&P, "unexpected end tag");
    free(P.tk);
    return t;
}

void jinja_free(jinja_template_t *t) {
    if (!t) return;
    jarena_free(&t->arena);
    free(t->name);
    free(t);
}
