// rl/math/canon.c — canonical text of an expression tree: numbers without redundant zeros, the
// arguments of + and * and the elements of sets and unordered lists sorted. Two trees with the same
// canonical text are the same answer (x+1 vs 1+x, \{2,1\} vs \{1,2\}); it also decides what numeric
// evaluation cannot (sums with symbolic bounds, text, infinities).
// defines: mv_canon, mv_struct_equal
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rl/math/mv_internal.h"

static void put_number(const char *d, buf_t *out) {
    // sci notation is kept as written; plain decimals lose leading and trailing zeros
    if (strpbrk(d, "eE")) {
        buf_puts(out, d);
        return;
    }
    while (d[0] == '0' && d[1] && d[1] != '.') d++;
    const char *dot = strchr(d, '.');
    size_t n = strlen(d);
    if (dot) {
        while (n > 0 && d[n - 1] == '0') n--;
        if (n > 0 && d[n - 1] == '.') n--;
    }
    if (n == 0) buf_putc(out, '0');
    else buf_append(out, d, n);
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

static void canon(const mv_node *x, buf_t *out);

static void canon_sorted(const mv_node *x, const char *open, const char *sep, const char *close, buf_t *out) {
    char *stack_parts[16];
    char **parts = x->n <= 16 ? stack_parts : malloc(sizeof(char *) * (size_t)x->n);
    if (!parts) abort();
    for (int i = 0; i < x->n; i++) {
        buf_t b;
        buf_init(&b);
        canon(x->kid[i], &b);
        parts[i] = b.s;
    }
    qsort(parts, (size_t)x->n, sizeof(char *), cmp_str);
    buf_puts(out, open);
    for (int i = 0; i < x->n; i++) {
        if (i) buf_puts(out, sep);
        buf_puts(out, parts[i]);
        free(parts[i]);
    }
    buf_puts(out, close);
    if (parts != stack_parts) free(parts);
}

static void canon_seq(const mv_node *x, const char *open, const char *sep, const char *close, buf_t *out) {
    buf_puts(out, open);
    for (int i = 0; i < x->n; i++) {
        if (i) buf_puts(out, sep);
        canon(x->kid[i], out);
    }
    buf_puts(out, close);
}

static void canon(const mv_node *x, buf_t *out) {
    static const char *const relname[] = {"=", "<", "<=", ">", ">=", "!=", "~", "in"};
    switch (x->kind) {
    case MV_NUM: put_number(x->str, out); break;
    case MV_SYM: buf_puts(out, x->str); break;
    case MV_CONST: buf_putc(out, '\\'); buf_puts(out, x->str); break;
    case MV_INF: buf_puts(out, "oo"); break;
    case MV_EMPTYSET: buf_puts(out, "{}"); break;
    case MV_DOTS: buf_puts(out, "..."); break;
    case MV_TEXT: buf_puts(out, "\"");
        for (const char *c = x->str; *c; c++)
            if (*c != ' ') buf_putc(out, *c);
        buf_puts(out, "\"");
        break;
    case MV_ADD: canon_sorted(x, "(", "+", ")", out); break;
    case MV_MUL: canon_sorted(x, "(", "*", ")", out); break;
    case MV_SET: canon_sorted(x, "{", ",", "}", out); break;
    case MV_UNION: canon_sorted(x, "U(", ",", ")", out); break;
    case MV_LIST:
        if (x->flags & MV_F_UNORDERED) canon_sorted(x, "L{", ",", "}", out);
        else canon_seq(x, "L(", ",", ")", out);
        break;
    case MV_TUPLE: canon_seq(x, "T(", ",", ")", out); break;
    case MV_NEG: buf_puts(out, "-("); canon(x->kid[0], out); buf_puts(out, ")"); break;
    case MV_DIV: canon_seq(x, "div(", ",", ")", out); break;
    case MV_POW: canon_seq(x, "pow(", ",", ")", out); break;
    case MV_FACT: canon_seq(x, "fact(", ",", ")", out); break;
    case MV_ABS: canon_seq(x, "abs(", ",", ")", out); break;
    case MV_ROOT: canon_seq(x, "root(", ",", ")", out); break;
    case MV_BINOM: canon_seq(x, "binom(", ",", ")", out); break;
    case MV_PM: canon_seq(x, "pm(", ",", ")", out); break;
    case MV_PERCENT: canon_seq(x, "pct(", ",", ")", out); break;
    case MV_RATIO: canon_seq(x, "ratio(", ",", ")", out); break;
    case MV_SUM: buf_puts(out, x->str); canon_seq(x, "(", ",", ")", out); break;
    case MV_FUNC:
    case MV_UFUNC: buf_puts(out, x->str); canon_seq(x, "(", ",", ")", out); break;
    case MV_INTERVAL:
        buf_putc(out, (x->flags & MV_F_LOPEN) ? '(' : '[');
        canon(x->kid[0], out);
        buf_putc(out, ',');
        canon(x->kid[1], out);
        buf_putc(out, (x->flags & MV_F_ROPEN) ? ')' : ']');
        break;
    case MV_MATRIX: {
        char dims[32];
        snprintf(dims, sizeof dims, "M%dx%d(", x->rows, x->cols);
        canon_seq(x, dims, ",", ")", out);
        break;
    }
    case MV_REL:
        buf_puts(out, "rel(");
        for (int i = 0; i < x->n; i++) {
            if (i) buf_puts(out, relname[x->ops[i - 1]]);
            canon(x->kid[i], out);
        }
        buf_puts(out, ")");
        break;
    }
}

void mv_canon(const mv_node *x, buf_t *out) { canon(x, out); }

int mv_struct_equal(const mv_node *a, const mv_node *b) {
    buf_t x, y;
    buf_init(&x);
    buf_init(&y);
    canon(a, &x);
    canon(b, &y);
    int eq = x.n == y.n && !memcmp(x.s, y.s, x.n);
    buf_free(&x);
    buf_free(&y);
    return eq;
}
