// rl/math/compare.c — is the predicted answer equal to the gold? (gold first: forms follow the gold)
// defines: mv_equal, mvc_equal, mvc_why, mvc_is_scalar, mvc_is_symbolish, mvc_is_setlike, mvc_is_equation, mvc_is_assignment
//
// Order of rules:
//   1. identical canonical text (canon.c).
//   2. relations: "x = 3" vs "3" when the gold is an assignment; a chain keeps its last value
//      ("x = 5+6 = 11", "1/3 \approx 0.33" keeps 1/3); equations equal when lhs - rhs are
//      proportional (2x+4y-3=0 vs y=-x/2+3/4); inequalities when proportional by a positive factor
//      after flipping > and >=; a gold relation in one variable vs a set (0<x<1 vs (0,1)), and a gold
//      set vs a relation when opts.set_relation.
//   3. values: +- expands to two values; "12,5" may be a decimal comma; percent X% matches X and
//      X/100; text by letters; matrices elementwise; tuples in order; sets, "1 and 2" lists and lists
//      of tuples in any order; intervals by ends and openness, unions by components or membership.
//   4. scalars: exact rationals (GMP); a printed float matches a value it rounds to (>= 2 decimals
//      or >= 3 significant digits); otherwise evaluation at random points in MPFR with a relative
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

static int all_tuples(const mv_node *x) {
    for (int i = 0; i < x->n; i++)
        if (x->kid[i]->kind != MV_TUPLE) return 0;
    return x->n > 0;
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

static int collections_equal(cmp_t *k, mv_node *g, mv_node *p) {
    int gs = g->kind == MV_SET, ps = p->kind == MV_SET;
    if ((gs && p->kind == MV_TUPLE) || (ps && g->kind == MV_TUPLE)) {
        if (k->c->strict) return mvc_why(k, "different: a set is not a tuple", 0);
        return unordered_equal(k, g, p, 1);
    }
    if (gs || ps) return unordered_equal(k, g, p, 1);
    int unordered = (g->kind == MV_LIST && (g->flags & MV_F_UNORDERED)) || (p->kind == MV_LIST && (p->flags & MV_F_UNORDERED)) ||
                    (mvc_is_assignment(g) && mvc_is_assignment(p)) ||
                    (all_tuples(g) && all_tuples(p) && (g->kind == MV_LIST || p->kind == MV_LIST));
    return unordered ? unordered_equal(k, g, p, 1) : ordered_equal(k, g, p);
}

static int percent_equal(cmp_t *k, mv_node *g, mv_node *p) {
    mv_node *x = g->kind == MV_PERCENT ? g : p, *y = x == g ? p : g;
    if (y->kind == MV_PERCENT) return mvc_equal(k, x->kid[0], y->kid[0]);
    if (!mvc_is_scalar(y)) return 0;
    // 12\% matches 12 and 0.12
    if (mvc_scalar_equal(k, x->kid[0], y)) return mvc_why(k, "equal: percent value", 1);
    return mvc_scalar_equal(k, x, y);
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

int mvc_equal(cmp_t *k, mv_node *g, mv_node *p) {
    if (--k->budget < 0) return mvc_why(k, "different: comparison budget spent", 0);
    if (mv_struct_equal(g, p)) return mvc_why(k, "equal: same expression", 1);
    g = mvc_unwrap_in(g);
    p = mvc_unwrap_in(p);
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

int mv_equal(mv_cmp_ctx *c, mv_arena *a, mv_node *gold, mv_node *pred) {
    cmp_t k = {c, a, 4096};
    c->why = "different";
    return mvc_equal(&k, gold, pred);
}
