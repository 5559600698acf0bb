// rl/math/compare.c — is the predicted answer equal to the gold? (gold first: forms follow the gold)
// defines: mv_equal, mvc_equal, mvc_why, mvc_is_scalar, mvc_is_symbolish, mvc_is_setlike, mvc_is_equation, mvc_is_assignment
//
// Order of rules:
//   0. units (normalize.c reports them, top level only): an angle in degrees on one side only also
//      matches its value in radians; one unit in any spelling ("5 meters" = "5 \text{ m}" = "5 m");
//      two different named units differ.
//   1. identical canonical text (canon.c).
//   2. relations: "x = 3" vs "3" when the gold is an assignment; a chain keeps its last value
//      ("x = 5+6 = 11", "1/3 \approx 0.33" keeps 1/3); equations equal when lhs - rhs are
//      proportional (2x+4y-3=0 vs y=-x/2+3/4); inequalities when proportional by a positive factor
//      after flipping > and >=; a gold relation in one variable vs a set (0<x<1 vs (0,1)), and a gold
//      set vs a relation when opts.set_relation.
//   3. values: +- expands to two values; "12,5" may be a decimal comma; percent X% matches X/100,
//      and X itself when X is a number literal; text by letters; matrices elementwise; the gold's
//      form decides order: a gold tuple or bare list "1, 2" in order, a gold set, "1 and 2",
//      "x = 1, 2", a list of tuples or +- in any order (an answer written as a set too); intervals
//      by ends and openness, unions by components or membership.
//   4. scalars: exact rationals (GMP); a printed float matches a value it rounds to (>= 2 decimals
//      or >= 3 significant digits) when the gold is the float or rational, or under
//      lenient_decimals (compare_scalar.c); otherwise evaluation at random points in MPFR with a relative
//      tolerance (no points: one evaluation).
#include <ctype.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "rl/math/mv_compare.h"

int mvc_why(cmp_t *k, const char *w, int v) {
    k->c->why = w;
    return v;
}

// ---------------------------------------------------------------- shape helpers

int mvc_is_scalar(const mv_node *x) {
    switch (x->kind) {
    case MV_NUM: case MV_SYM: case MV_CONST: case MV_INF: case MV_ADD: case MV_MUL: case MV_NEG: case MV_DIV:
    case MV_POW: case MV_FUNC: case MV_UFUNC: case MV_FACT: case MV_ABS: case MV_ROOT: case MV_BINOM: case MV_SUM:
    case MV_PERCENT: case MV_PM:
        return 1;
    default: return 0;
    }
}

// Made only of names: x, S_{ABC}, |AB|, f(x), (p, q), a:b
int mvc_is_symbolish(const mv_node *x) {
    switch (x->kind) {
    case MV_SYM: return 1;
    case MV_UFUNC: return 1;  // f(x) = ..., f(2) = ...
    case MV_MUL: case MV_ABS: case MV_RATIO: case MV_TUPLE: case MV_LIST: case MV_DIV:
        for (int i = 0; i < x->n; i++)
            if (!mvc_is_symbolish(x->kid[i])) return 0;
        return 1;
    default: return 0;
    }
}

static int is_eq_op(int op) { return op == MV_R_EQ || op == MV_R_APPROX; }

int mvc_is_equation(const mv_node *x) {
    if (x->kind == MV_REL) {
        for (int i = 0; i < x->n - 1; i++)
            if (!is_eq_op(x->ops[i])) return 0;
        return 1;
    }
    if (x->kind == MV_LIST && x->n > 0) {
        for (int i = 0; i < x->n; i++)
            if (!mvc_is_equation(x->kid[i])) return 0;
        return 1;
    }
    return 0;
}

int mvc_is_assignment(const mv_node *x) {
    if (x->kind == MV_LIST && x->n > 0) {
        for (int i = 0; i < x->n; i++)
            if (!mvc_is_assignment(x->kid[i])) return 0;
        return 1;
    }
    return mvc_is_equation(x) && x->kind == MV_REL && mvc_is_symbolish(x->kid[0]);
}

int mvc_is_setlike(const mv_node *x) {
    return x->kind == MV_INTERVAL || x->kind == MV_UNION || x->kind == MV_EMPTYSET ||
           (x->kind == MV_TUPLE && (x->flags & MV_F_MAYBE_INTERVAL)) || x->kind == MV_SET;
}

// ---------------------------------------------------------------- values

static int contains_pm(const mv_node *x) {
    if (x->kind == MV_PM) return 1;
    if (x->kind == MV_TUPLE || x->kind == MV_SET || x->kind == MV_LIST || x->kind == MV_INTERVAL || x->kind == MV_MATRIX) return 0;
    for (int i = 0; i < x->n; i++)
        if (contains_pm(x->kid[i])) return 1;
    return 0;
}

// The tree with every +- taken as + (sign 1) or - (sign -1).
static mv_node *expand_pm(cmp_t *k, mv_node *x, int sign) {
    if (!contains_pm(x)) return x;
    if (x->kind == MV_PM) {
        if (x->n == 1) {
            mv_node *a = expand_pm(k, x->kid[0], sign);
            return sign > 0 ? a : mv_new1(k->a, MV_NEG, a);
        }
        mv_node *a = expand_pm(k, x->kid[0], sign), *b = expand_pm(k, x->kid[1], sign);
        return mv_new2(k->a, MV_ADD, a, sign > 0 ? b : mv_new1(k->a, MV_NEG, b));
    }
    mv_node *y = mv_new(k->a, x->kind, x->n);
    if (!y) return x;
    *y = (mv_node){x->kind, x->flags, x->n, x->rows, x->cols, x->ndec, x->str, y->kid, x->ops};
    for (int i = 0; i < x->n; i++) {
        y->kid[i] = expand_pm(k, x->kid[i], sign);
        if (!y->kid[i]) return x;
    }
    return y;
}

// Collections with +- elements get both values; a scalar with +- becomes a set of two.
static mv_node *pm_values(cmp_t *k, mv_node *x) {
    if (mvc_is_scalar(x) && contains_pm(x)) {
        mv_node *s = mv_new2(k->a, MV_SET, expand_pm(k, x, 1), expand_pm(k, x, -1));
        return s ? s : x;
    }
    if (x->kind != MV_SET && x->kind != MV_LIST) return x;
    int extra = 0;
    for (int i = 0; i < x->n; i++) extra += mvc_is_scalar(x->kid[i]) && contains_pm(x->kid[i]);
    if (!extra) return x;
    mv_node *y = mv_new(k->a, x->kind, x->n + extra);
    if (!y) return x;
    y->flags = x->flags | MV_F_UNORDERED;
    for (int i = 0, j = 0; i < x->n; i++) {
        if (mvc_is_scalar(x->kid[i]) && contains_pm(x->kid[i])) {
            y->kid[j++] = expand_pm(k, x->kid[i], 1);
            y->kid[j++] = expand_pm(k, x->kid[i], -1);
        } else {
            y->kid[j++] = x->kid[i];
        }
    }
    return y;
}

// "12,5" read as 12.5
static mv_node *decimal_comma(cmp_t *k, mv_node *x) {
    if (x->kind != MV_LIST || !(x->flags & MV_F_DECIMAL_COMMA)) return NULL;
    char buf[256];
    if (snprintf(buf, sizeof buf, "%s.%s", x->kid[0]->str, x->kid[1]->str) >= (int)sizeof buf) return NULL;
    mv_node *n = mv_new(k->a, MV_NUM, 0);
    if (!n) return NULL;
    n->str = mv_strndup(k->a, buf, strlen(buf));
    n->flags = MV_F_FLOAT;
    n->ndec = (int)strlen(x->kid[1]->str);
    return n;
}

// Letters of a text-like answer, lowercased: \text{(C)} -> "c", odd -> "odd"; 0 when not text-like.
static int text_key(const mv_node *x, char *buf, size_t cap, size_t *len) {
    switch (x->kind) {
    case MV_TEXT:
        for (const char *c = x->str; *c; c++)
            if (isalnum((unsigned char)*c)) {
                if (*len + 1 >= cap) return 0;
                buf[(*len)++] = (char)tolower((unsigned char)*c);
            }
        buf[*len] = 0;
        return 1;
    case MV_SYM:
    case MV_CONST:
        for (const char *c = x->str; *c; c++) {
            if (*len + 1 >= cap) return 0;
            buf[(*len)++] = (char)tolower((unsigned char)*c);
        }
        buf[*len] = 0;
        return 1;
    case MV_MUL:
        for (int i = 0; i < x->n; i++)
            if (!text_key(x->kid[i], buf, cap, len)) return 0;
        return 1;
    default: return 0;
    }
}

static mv_node *as_matrix(cmp_t *k, mv_node *x) {
    if (x->kind == MV_MATRIX) return x;
    if (x->kind == MV_NEG) {
        mv_node *m = as_matrix(k, x->kid[0]);
        if (!m) return NULL;
        mv_node *r = mv_new(k->a, MV_MATRIX, m->n);
        if (!r) return NULL;
        r->rows = m->rows;
        r->cols = m->cols;
        for (int i = 0; i < m->n; i++) r->kid[i] = mv_new1(k->a, MV_NEG, m->kid[i]);
        return r;
    }
    if (x->kind == MV_ADD || x->kind == MV_MUL) {
        mv_node *acc = NULL;
        for (int t = 0; t < x->n; t++) {
            mv_node *m = as_matrix(k, x->kid[t]);
            mv_node *item = m ? m : x->kid[t];
            if (!acc) {
                acc = item;
                continue;
            }
            int am = acc->kind == MV_MATRIX, im = item->kind == MV_MATRIX;
            if (x->kind == MV_ADD) {
                if (!am || !im || acc->rows != item->rows || acc->cols != item->cols) return NULL;
                mv_node *r = mv_new(k->a, MV_MATRIX, acc->n);
                if (!r) return NULL;
                r->rows = acc->rows;
                r->cols = acc->cols;
                for (int i = 0; i < acc->n; i++) r->kid[i] = mv_new2(k->a, MV_ADD, acc->kid[i], item->kid[i]);
                acc = r;
            } else if (am && im) {  // matrix product
                if (acc->cols != item->rows || acc->rows * item->cols > MV_MAX_ELEMS) return NULL;
                mv_node *r = mv_new(k->a, MV_MATRIX, acc->rows * item->cols);
                if (!r) return NULL;
                r->rows = acc->rows;
                r->cols = item->cols;
                for (int i = 0; i < acc->rows; i++)
                    for (int j = 0; j < item->cols; j++) {
                        mv_node *s = mv_new(k->a, MV_ADD, acc->cols);
                        if (!s) return NULL;
                        for (int q = 0; q < acc->cols; q++)
                            s->kid[q] = mv_new2(k->a, MV_MUL, acc->kid[i * acc->cols + q], item->kid[q * item->cols + j]);
                        r->kid[i * r->cols + j] = s;
                    }
                acc = r;
            } else if (am || im) {  // scalar times matrix
                mv_node *m2 = am ? acc : item, *sc = am ? item : acc;
                if (!mvc_is_scalar(sc)) return NULL;
                mv_node *r = mv_new(k->a, MV_MATRIX, m2->n);
                if (!r) return NULL;
                r->rows = m2->rows;
                r->cols = m2->cols;
                for (int i = 0; i < m2->n; i++) r->kid[i] = mv_new2(k->a, MV_MUL, sc, m2->kid[i]);
                acc = r;
            } else {
                acc = mv_new2(k->a, MV_MUL, acc, item);
                if (!acc) return NULL;
            }
        }
        return acc && acc->kind == MV_MATRIX ? acc : NULL;
    }
    return NULL;
}

static int ordered_equal(cmp_t *k, mv_node *g, mv_node *p) {
    if (g->n != p->n) return mvc_why(k, "different: number of elements", 0);
    for (int i = 0; i < g->n; i++)
        if (!mvc_equal(k, g->kid[i], p->kid[i])) return 0;
    return mvc_why(k, "equal: elementwise", 1);
}

// Same elements in any order. As sets (repeats ignored: every element of each side equals one of
// the other) when as_set, else as lists (a one-to-one matching).
static int unordered_equal(cmp_t *k, mv_node *g, mv_node *p, int as_set) {
    if (!as_set && g->n != p->n) return mvc_why(k, "different: number of elements", 0);
    if (g->n > 64 || p->n > 64) return mvc_why(k, "different: too many elements", 0);
    unsigned char eq[64 * 64];
    for (int i = 0; i < g->n; i++)
        for (int j = 0; j < p->n; j++) {
            if (--k->budget < 0) return mvc_why(k, "different: comparison budget spent", 0);
            eq[i * p->n + j] = (unsigned char)mvc_equal(k, g->kid[i], p->kid[j]);
        }
    int ok = 1;
    if (as_set) {
        for (int i = 0; i < g->n && ok; i++) {
            int any = 0;
            for (int j = 0; j < p->n; j++) any |= eq[i * p->n + j];
            ok = any;
        }
        for (int j = 0; j < p->n && ok; j++) {
            int any = 0;
            for (int i = 0; i < g->n; i++) any |= eq[i * p->n + j];
            ok = any;
        }
    } else {
        ok = mvc_perfect_matching(g->n, eq);
    }
    return mvc_why(k, ok ? "equal: same elements in any order" : "different: elements differ", ok);
}

static int is_collection(const mv_node *x) { return x->kind == MV_TUPLE || x->kind == MV_LIST || x->kind == MV_SET; }

static int all_tuples(const mv_node *x) {
    for (int i = 0; i < x->n; i++)
        if (x->kid[i]->kind != MV_TUPLE) return 0;
    return x->n > 0;
}

// Order follows the gold's form: the gold marks an unordered answer as a set "\{a, b\}", with
// "and"/"or" ("a and b", "x = a or x = b"), as the values of one variable ("x = a, b"), as a list
// of tuples (the solutions (x, y) of a system) or with +-; a gold tuple "(a, b)" or bare list
// "a, b" is ordered (the MATH grader's convention). The answer's connectors do not change that; an
// answer written as a set (braces, +-) has no order and is compared as a set.
static int collections_equal(cmp_t *k, mv_node *g, mv_node *p) {
    int gs = g->kind == MV_SET, ps = p->kind == MV_SET;
    if ((gs && p->kind == MV_TUPLE) || (ps && g->kind == MV_TUPLE)) {
        if (k->c->strict) return mvc_why(k, "different: a set is not a tuple", 0);
        return unordered_equal(k, g, p, 1);
    }
    int unordered = gs || ps || (g->kind == MV_LIST && ((g->flags & MV_F_UNORDERED) || all_tuples(g))) ||
                    (mvc_is_assignment(g) && mvc_is_assignment(p));
    return unordered ? unordered_equal(k, g, p, 1) : ordered_equal(k, g, p);
}

// A number literal written as a percentage (12, -3.5): only these may lose their percent sign;
// \frac{1}{2}\% is 0.005, never 1/2.
static int percent_number(const mv_node *x) {
    if (x->kind == MV_NEG) x = x->kid[0];
    return x->kind == MV_NUM;
}

static int percent_equal(cmp_t *k, mv_node *g, mv_node *p) {
    if (g->kind == MV_PERCENT && p->kind == MV_PERCENT) return mvc_equal(k, g->kid[0], p->kid[0]);
    mv_node *x = g->kind == MV_PERCENT ? g : p, *y = x == g ? p : g;
    if (!mvc_is_scalar(y)) return 0;
    // 12\% matches 12 (the sign dropped) and 0.12 (its value); gold first in every comparison
    if (percent_number(x->kid[0]) && (x == g ? mvc_scalar_equal(k, x->kid[0], y) : mvc_scalar_equal(k, y, x->kid[0])))
        return mvc_why(k, "equal: percent value", 1);
    return x == g ? mvc_scalar_equal(k, x, y) : mvc_scalar_equal(k, y, x);
}

// The real line written as a set: \mathbb{R} (read as the name R, so only beside another set),
// "all real numbers", \mathbb{R} \setminus \{a, b\} -> (-oo, a) U (a, b) U (b, oo).
static mv_node *real_line(cmp_t *k, mv_node *x, const mv_node *other) {
    mv_node *inf = mv_new(k->a, MV_INF, 0), *ninf = mv_new1(k->a, MV_NEG, inf);
    if (!inf || !ninf) return NULL;
    int whole = 0;
    if (x->kind == MV_SYM && !strcmp(x->str, "R") && mvc_is_setlike(other)) whole = 1;
    if (x->kind == MV_TEXT) {
        char key[64];
        size_t n = 0;
        for (const char *c = x->str; *c && n + 1 < sizeof key; c++)
            if (isalpha((unsigned char)*c)) key[n++] = (char)tolower((unsigned char)*c);
        key[n] = 0;
        whole = !strcmp(key, "allrealnumbers") || !strcmp(key, "allreals") || !strcmp(key, "realnumbers");
    }
    if (whole) {
        mv_node *iv = mv_new2(k->a, MV_INTERVAL, ninf, inf);
        if (iv) iv->flags = MV_F_LOPEN | MV_F_ROPEN;
        return iv;
    }
    if (x->kind != MV_FUNC || strcmp(x->str, "setminus") || x->n != 2 || x->kid[0]->kind != MV_SYM || strcmp(x->kid[0]->str, "R"))
        return NULL;
    mv_node *holes = x->kid[1];
    int m = holes->kind == MV_SET ? holes->n : 0;
    if (m == 0 || m > 32) return NULL;
    double v[32];
    mv_node *pts[32];
    for (int i = 0; i < m; i++) {  // sort the removed points by value
        int ok;
        double d = mvc_to_double(holes->kid[i], &ok);
        if (!ok) return NULL;
        int j = i;
        while (j > 0 && v[j - 1] > d) {
            v[j] = v[j - 1];
            pts[j] = pts[j - 1];
            j--;
        }
        v[j] = d;
        pts[j] = holes->kid[i];
    }
    mv_node *u = mv_new(k->a, MV_UNION, m + 1);
    if (!u) return NULL;
    for (int i = 0; i <= m; i++) {
        u->kid[i] = mv_new2(k->a, MV_INTERVAL, i == 0 ? ninf : pts[i - 1], i == m ? inf : pts[i]);
        if (!u->kid[i]) return NULL;
        u->kid[i]->flags = MV_F_LOPEN | MV_F_ROPEN;
    }
    return u;
}

static int mvc_value_equal(cmp_t *k, mv_node *g, mv_node *p) {
    if (mv_struct_equal(g, p)) return mvc_why(k, "equal: same expression", 1);
    mv_node *rg = real_line(k, g, p), *rp = real_line(k, p, g);
    if (rg) g = rg;
    if (rp) p = rp;
    g = pm_values(k, g);
    p = pm_values(k, p);
    mv_node *d;
    if ((d = decimal_comma(k, g)) && mvc_is_scalar(p)) g = d;
    if ((d = decimal_comma(k, p)) && mvc_is_scalar(g)) p = d;
    if (g->kind == MV_TEXT || p->kind == MV_TEXT) {
        char a[256], b[256];
        size_t la = 0, lb = 0;
        int ok = text_key(g, a, sizeof a, &la) && text_key(p, b, sizeof b, &lb) && la > 0 && la == lb && !memcmp(a, b, la);
        return mvc_why(k, ok ? "equal: same text" : "different: text differs", ok);
    }
    if (g->kind == MV_PERCENT || p->kind == MV_PERCENT) return percent_equal(k, g, p);
    mv_node *mg = as_matrix(k, g), *mp = as_matrix(k, p);
    if (mg || mp) {
        if (mg && mp) {
            if (mg->rows != mp->rows || mg->cols != mp->cols) return mvc_why(k, "different: matrix shapes", 0);
            return ordered_equal(k, mg, mp);
        }
        mv_node *m = mg ? mg : mp, *o = mg ? p : g;
        if ((m->rows == 1 || m->cols == 1) && o->kind == MV_TUPLE) return ordered_equal(k, mg ? mg : g, mg ? p : mp);
        return mvc_why(k, "different: matrix vs non-matrix", 0);
    }
    if (g->kind == MV_RATIO || p->kind == MV_RATIO) {
        if (g->kind == MV_RATIO && p->kind == MV_RATIO) {
            if (mvc_equal(k, g->kid[0], p->kid[0]) && mvc_equal(k, g->kid[1], p->kid[1])) return mvc_why(k, "equal: same ratio", 1);
            mv_node *zero = mv_num_int(k->a, 0);
            if (!zero || mvc_scalar_equal(k, g->kid[1], zero) || mvc_scalar_equal(k, p->kid[1], zero)) return mvc_why(k, "different: ratio", 0);
            mv_node *l = mv_new2(k->a, MV_MUL, g->kid[0], p->kid[1]), *r = mv_new2(k->a, MV_MUL, p->kid[0], g->kid[1]);
            int ok = l && r && mvc_scalar_equal(k, l, r);
            return mvc_why(k, ok ? "equal: proportional ratios" : "different: ratios differ", ok);
        }
        mv_node *rt = g->kind == MV_RATIO ? g : p, *o = rt == g ? p : g;
        if (!mvc_is_scalar(o)) return 0;
        mv_node *q = mv_new2(k->a, MV_DIV, rt->kid[0], rt->kid[1]);
        return q && (rt == g ? mvc_scalar_equal(k, q, o) : mvc_scalar_equal(k, o, q));
    }
    int gi = g->kind == MV_INTERVAL || g->kind == MV_UNION || g->kind == MV_EMPTYSET;
    int pi = p->kind == MV_INTERVAL || p->kind == MV_UNION || p->kind == MV_EMPTYSET;
    if (gi || pi) {
        if ((gi || mvc_is_setlike(g)) && (pi || mvc_is_setlike(p))) return mvc_sets_equal(k, g, p);
        if (gi && p->kind == MV_LIST && p->n == 2 && g->kind == MV_INTERVAL) return mvc_why(k, "different: list vs interval", 0);
        return mvc_why(k, "different: set vs non-set", 0);
    }
    if (is_collection(g) || is_collection(p)) {
        if (is_collection(g) && is_collection(p)) return collections_equal(k, g, p);
        mv_node *c = is_collection(g) ? g : p, *o = c == g ? p : g;
        if (c->n == 1) return c == g ? mvc_equal(k, c->kid[0], o) : mvc_equal(k, o, c->kid[0]);
        return mvc_why(k, "different: several values vs one", 0);
    }
    if (!mvc_is_scalar(g) || !mvc_is_scalar(p)) return mvc_why(k, "different: forms differ", 0);
    return mvc_scalar_equal(k, g, p);
}

// ---------------------------------------------------------------- entry

// "x = 2 or x = -3", "x = 2, x = -3": the values of one variable, as "x = 2, -3" (unordered).
static mv_node *merge_assignments(cmp_t *k, mv_node *x) {
    if (x->kind != MV_LIST || x->n < 2) return x;
    for (int i = 0; i < x->n; i++) {
        mv_node *r = x->kid[i];
        if (r->kind != MV_REL || r->n != 2 || r->ops[0] != MV_R_EQ || r->kid[0]->kind != MV_SYM ||
            strcmp(r->kid[0]->str, x->kid[0]->kid[0]->str) || r->kid[1]->kind == MV_LIST)
            return x;
    }
    mv_node *vals = mv_new(k->a, MV_LIST, x->n), *rel = mv_new(k->a, MV_REL, 2);
    if (!vals || !rel) return x;
    for (int i = 0; i < x->n; i++) vals->kid[i] = x->kid[i]->kid[1];
    vals->flags = MV_F_UNORDERED;
    rel->kid[0] = x->kid[0]->kid[0];
    rel->kid[1] = vals;
    rel->ops = x->kid[0]->ops;
    return rel;
}

int mvc_equal(cmp_t *k, mv_node *g, mv_node *p) {
    if (--k->budget < 0) return mvc_why(k, "different: comparison budget spent", 0);
    if (mv_struct_equal(g, p)) return mvc_why(k, "equal: same expression", 1);
    g = merge_assignments(k, mvc_unwrap_in(g));
    p = merge_assignments(k, mvc_unwrap_in(p));
    int gE = mvc_is_equation(g), pE = mvc_is_equation(p), gA = mvc_is_assignment(g);
    int glen = g->kind == MV_REL ? g->n : 0;
    if (gE) g = mvc_trim_chain(k, g);
    if (pE) p = mvc_trim_chain(k, p);
    if (pE && !gE) p = mvc_last_rhs(k, p);
    else if (gE && !pE && (gA || glen >= 3)) g = mvc_last_rhs(k, g);
    int gR = g->kind == MV_REL, pR = p->kind == MV_REL;
    if (gR && mvc_is_setlike(p)) return mvc_rel_vs_set(k, g, p);
    if (pR && mvc_is_setlike(g)) {
        if (!k->c->set_relation) return mvc_why(k, "different: gold is a set, answer a relation", 0);
        return mvc_rel_vs_set(k, p, g);
    }
    if (gR && pR) return mvc_rel_equal(k, g, p);
    if (gR || pR) return mvc_why(k, "different: relation vs value", 0);
    return mvc_value_equal(k, g, p);
}

// ---------------------------------------------------------------- units and angles

// "5 m", "3 ft^2" read as a product whose last factor spells the unit u: the number without it
// (NULL when x is not such a product). Used only when the other side names the unit in words.
static mv_node *strip_unit_symbol(cmp_t *k, mv_node *x, const char *u) {
    if (x->kind != MV_MUL || x->n != 2 || !mvc_const_free(x->kid[0])) return NULL;
    mv_node *last = x->kid[1];
    char c[MV_UNIT_CAP], full[2 * MV_UNIT_CAP];
    int power = 1;
    if (last->kind == MV_POW && last->kid[1]->kind == MV_NUM && (!strcmp(last->kid[1]->str, "2") || !strcmp(last->kid[1]->str, "3"))) {
        power = last->kid[1]->str[0] - '0';
        last = last->kid[0];
    }
    if (last->kind != MV_SYM || !mv_unit_canon(last->str, c)) return NULL;
    if (power > 1) snprintf(full, sizeof full, "%s^%d", c, power);
    else snprintf(full, sizeof full, "%s", c);
    (void)k;
    return strcmp(full, u) ? NULL : x->kid[0];
}

static mv_node *to_radians(cmp_t *k, mv_node *x) {
    mv_node *pi = mv_new(k->a, MV_CONST, 0);
    if (!pi) return NULL;
    pi->str = "pi";
    return mv_new2(k->a, MV_MUL, x, mv_new2(k->a, MV_DIV, pi, mv_num_int(k->a, 180)));
}

// The units normalisation found (gold first): an angle marked in degrees on one side only also
// matches its value in radians (90^\circ vs \frac{\pi}{2}); two named units must be the same unit in
// any spelling ("5 meters" vs "5 \text{ m}"); a unit named in words on one side makes a trailing
// unit letter on the other a unit ("5 meters" vs "5 m"). -1: no unit rule applies.
static int units_equal(cmp_t *k, mv_node **g, mv_node **p) {
    const char *gu = k->c->gold_unit ? k->c->gold_unit : "", *pu = k->c->pred_unit ? k->c->pred_unit : "";
    if ((!gu[0] && !pu[0]) || !mvc_is_scalar(*g) || !mvc_is_scalar(*p)) return -1;
    int gdeg = !strcmp(gu, "deg"), pdeg = !strcmp(pu, "deg");
    if (gdeg != pdeg) {
        if (mvc_equal(k, *g, *p)) return 1;
        mv_node *g2 = gdeg ? to_radians(k, *g) : *g, *p2 = pdeg ? to_radians(k, *p) : *p;
        int ok = g2 && p2 && mvc_equal(k, g2, p2);
        return mvc_why(k, ok ? "equal: the same angle in degrees and radians" : "different: angles differ", ok);
    }
    if (gu[0] && pu[0] && strcmp(gu, pu)) return mvc_why(k, "different: units differ", 0);
    mv_node *v;
    if (gu[0] && !pu[0] && (v = strip_unit_symbol(k, *p, gu))) *p = v;
    if (pu[0] && !gu[0] && (v = strip_unit_symbol(k, *g, pu))) *g = v;
    return -1;
}

int mv_equal(mv_cmp_ctx *c, mv_arena *a, mv_node *gold, mv_node *pred) {
    cmp_t k = {c, a, 4096};
    c->why = "different";
    int u = units_equal(&k, &gold, &pred);
    if (u >= 0) return u;
    return mvc_equal(&k, gold, pred);
}
