// rl/math/compare_rel.c — relations: "x = 3" chains and assignments, equations compared by
// proportional lhs - rhs, inequalities by a positive factor after flipping > and >=, chains in
// either direction, and a relation in one variable compared with a set (directly as an interval
// when it is one, else by membership at the set's ends and between them).
// defines: mvc_trim_chain, mvc_last_rhs, mvc_unwrap_in, mvc_flip, mvc_rel_equal, mvc_rel_vs_set
#include <ctype.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "rl/math/mv_compare.h"


// "x = a = b \approx c" -> "x = b" (the approximation after an exact value is commentary)
mv_node *mvc_trim_chain(cmp_t *k, mv_node *x) {
    if (x->kind == MV_LIST) {
        mv_node *l = mv_new(k->a, MV_LIST, x->n);
        if (!l) return x;
        l->flags = x->flags;
        for (int i = 0; i < x->n; i++) l->kid[i] = mvc_trim_chain(k, x->kid[i]);
        return l;
    }
    if (x->kind != MV_REL || !mvc_is_equation(x)) return x;
    int last = x->n - 1;
    while (last > 1 && x->ops[last - 1] == MV_R_APPROX) last--;
    if (x->n == 2 && last == 1) return x;
    mv_node *r = mv_new2(k->a, MV_REL, x->kid[0], x->kid[last]);
    if (!r) return x;
    r->ops = mv_alloc(k->a, sizeof(int));
    r->ops[0] = MV_R_EQ;
    return r;
}

mv_node *mvc_last_rhs(cmp_t *k, mv_node *x) {
    if (x->kind == MV_LIST) {
        mv_node *l = mv_new(k->a, MV_LIST, x->n);
        if (!l) return x;
        l->flags = x->flags;
        for (int i = 0; i < x->n; i++) l->kid[i] = mvc_last_rhs(k, x->kid[i]);
        return l;
    }
    return x->kind == MV_REL ? x->kid[x->n - 1] : x;
}

// "x \in S" -> S
mv_node *mvc_unwrap_in(mv_node *x) {
    if (x->kind == MV_REL && x->n == 2 && x->ops[0] == MV_R_IN && mvc_is_symbolish(x->kid[0])) return x->kid[1];
    return x;
}



// lhs - rhs
static mv_node *diff(cmp_t *k, mv_node *l, mv_node *r) { return mv_new2(k->a, MV_ADD, l, mv_new1(k->a, MV_NEG, r)); }

// One relation "l op r" as (l - r, op) with > and >= flipped to < and <=.
static mv_node *rel_norm(cmp_t *k, mv_node *l, int op, mv_node *r, int *nop) {
    if (op == MV_R_GT || op == MV_R_GE) {
        *nop = op == MV_R_GT ? MV_R_LT : MV_R_LE;
        return diff(k, r, l);
    }
    *nop = op == MV_R_APPROX ? MV_R_EQ : op;
    return diff(k, l, r);
}


static int one_rel_equal(cmp_t *k, mv_node *gl, int gop, mv_node *gr, mv_node *pl, int pop, mv_node *pr) {
    int go, po;
    mv_node *fg = rel_norm(k, gl, gop, gr, &go), *fp = rel_norm(k, pl, pop, pr, &po);
    if (go != po || !fg || !fp) return 0;
    if (go == MV_R_IN) return mv_struct_equal(gl, pl) && mvc_equal(k, gr, pr);
    if (!mvc_is_scalar(gl) || !mvc_is_scalar(gr) || !mvc_is_scalar(pl) || !mvc_is_scalar(pr)) {
        // x = (1, 2): sides compared as values
        return go == MV_R_EQ && ((mvc_equal(k, gl, pl) && mvc_equal(k, gr, pr)) || (mvc_equal(k, gl, pr) && mvc_equal(k, gr, pl)));
    }
    if (mvc_const_free(fg) && mvc_const_free(fp)) {  // "1 < 2": sides as values
        if (go == MV_R_EQ || go == MV_R_NE)
            return (mvc_scalar_equal(k, gl, pl) && mvc_scalar_equal(k, gr, pr)) || (mvc_scalar_equal(k, gl, pr) && mvc_scalar_equal(k, gr, pl));
        int a = gop == pop && mvc_scalar_equal(k, gl, pl) && mvc_scalar_equal(k, gr, pr);
        return a;
    }
    int r = mvc_proportional(k, fg, fp, go == MV_R_LT || go == MV_R_LE);
    if (r == -1) return mv_struct_equal(fg, fp);
    return r;
}

int mvc_flip(int op) {
    switch (op) {
    case MV_R_LT: return MV_R_GT;
    case MV_R_GT: return MV_R_LT;
    case MV_R_LE: return MV_R_GE;
    case MV_R_GE: return MV_R_LE;
    default: return op;
    }
}

int mvc_rel_equal(cmp_t *k, mv_node *g, mv_node *p) {
    if (g->n != p->n) return mvc_why(k, "different: relations of different length", 0);
    // assignments with the same name: compare the values (x = (0, 1) vs x = (0, 1.5))
    if (g->n == 2 && mvc_is_assignment(g) && mvc_is_assignment(p) && mv_struct_equal(g->kid[0], p->kid[0]))
        return mvc_equal(k, g->kid[1], p->kid[1]);
    int ok = 1;
    for (int i = 0; i + 1 < g->n && ok; i++)
        ok = one_rel_equal(k, g->kid[i], g->ops[i], g->kid[i + 1], p->kid[i], p->ops[i], p->kid[i + 1]);
    if (!ok) {  // a < x < b vs b > x > a
        ok = 1;
        int n = p->n;
        for (int i = 0; i + 1 < g->n && ok; i++)
            ok = one_rel_equal(k, g->kid[i], g->ops[i], g->kid[i + 1], p->kid[n - 1 - i], mvc_flip(p->ops[n - 2 - i]), p->kid[n - 2 - i]);
    }
    return mvc_why(k, ok ? "equal: equivalent relations" : "different: relations differ", ok);
}

static mv_node *interval(cmp_t *k, mv_node *lo, mv_node *hi, int lopen, int ropen) {
    mv_node *iv = mv_new2(k->a, MV_INTERVAL, lo, hi);
    if (iv) iv->flags = (lopen ? MV_F_LOPEN : 0) | (ropen ? MV_F_ROPEN : 0);
    return iv;
}

static mv_node *rel_to_set(cmp_t *k, mv_node *r) {
    mv_node *inf = mv_new(k->a, MV_INF, 0), *ninf = mv_new1(k->a, MV_NEG, inf);
    if (!inf || !ninf) return NULL;
    if (r->n == 2) {
        mv_node *l = r->kid[0], *c = r->kid[1];
        int op = r->ops[0];
        if (mvc_const_free(l) && !mvc_const_free(c)) {
            mv_node *t = l;
            l = c;
            c = t;
            op = mvc_flip(op);
        }
        if (!mvc_const_free(c) || mvc_const_free(l) || !(l->kind == MV_SYM || l->kind == MV_UFUNC)) return NULL;
        switch (op) {
        case MV_R_LT: return interval(k, ninf, c, 1, 1);
        case MV_R_LE: return interval(k, ninf, c, 1, 0);
        case MV_R_GT: return interval(k, c, inf, 1, 1);
        case MV_R_GE: return interval(k, c, inf, 0, 1);
        case MV_R_NE: {
            mv_node *u = mv_new2(k->a, MV_UNION, interval(k, ninf, c, 1, 1), interval(k, c, inf, 1, 1));
            return u;
        }
        case MV_R_EQ: return mv_new1(k->a, MV_SET, c);
        default: return NULL;
        }
    }
    if (r->n == 3 && (r->kid[1]->kind == MV_SYM || r->kid[1]->kind == MV_UFUNC) && mvc_const_free(r->kid[0]) && mvc_const_free(r->kid[2])) {
        int o1 = r->ops[0], o2 = r->ops[1];
        int up = (o1 == MV_R_LT || o1 == MV_R_LE) && (o2 == MV_R_LT || o2 == MV_R_LE);
        int down = (o1 == MV_R_GT || o1 == MV_R_GE) && (o2 == MV_R_GT || o2 == MV_R_GE);
        if (up) return interval(k, r->kid[0], r->kid[2], o1 == MV_R_LT, o2 == MV_R_LT);
        if (down) return interval(k, r->kid[2], r->kid[0], o2 == MV_R_GT, o1 == MV_R_GT);
    }
    return NULL;
}

// Does the relation (one free variable) hold at t?
static int rel_holds(const mv_node *r, const char *var, double t, int *ok) {
    mv_env env = {1, {var}, {t}};
    mv_cval a, b;
    mv_cval_init(&a);
    mv_cval_init(&b);
    int holds = 1;
    *ok = 1;
    for (int i = 0; i + 1 < r->n && *ok; i++) {
        if (mv_eval_num(r->kid[i], &env, &a) || mv_eval_num(r->kid[i + 1], &env, &b) || !mpfr_zero_p(a.im) || !mpfr_zero_p(b.im)) {
            *ok = 0;
            break;
        }
        double x = mpfr_get_d(a.re, MPFR_RNDN), y = mpfr_get_d(b.re, MPFR_RNDN);
        double tol = 1e-12 * (1 + fabs(x) + fabs(y));
        int lt = x < y - tol, gt = x > y + tol, eq = !lt && !gt;
        switch (r->ops[i]) {
        case MV_R_LT: holds &= lt; break;
        case MV_R_LE: holds &= lt || eq; break;
        case MV_R_GT: holds &= gt; break;
        case MV_R_GE: holds &= gt || eq; break;
        case MV_R_NE: holds &= !eq; break;
        case MV_R_EQ: case MV_R_APPROX: holds &= eq; break;
        default: *ok = 0;
        }
    }
    mv_cval_clear(&a);
    mv_cval_clear(&b);
    return holds;
}

int mvc_rel_vs_set(cmp_t *k, mv_node *rel, mv_node *set) {
    mv_node *s = rel_to_set(k, rel);
    if (s) return mvc_equal(k, s, set);
    // sampling: 1 <= |z| <= 3/2 vs [-3/2, -1] U [1, 3/2]
    const char *vars[2];
    if (mv_free_vars(rel, vars, 2) != 1) return mvc_why(k, "different: relation is not in one variable", 0);
    comp_t c[64];
    int n = 0;
    if (mvc_components(k, set, c, &n, 64)) return mvc_why(k, "different: not comparable", 0);
    double lo[64], hi[64], pts[400];
    int lop[64], rop[64], pt[64], np = 0, ok = 1;
    for (int i = 0; i < n; i++) {
        lo[i] = mvc_to_double(c[i].lo, &ok);
        if (!ok) return 0;
        hi[i] = c[i].hi ? mvc_to_double(c[i].hi, &ok) : lo[i];
        if (!ok) return 0;
        lop[i] = c[i].lopen;
        rop[i] = c[i].ropen;
        pt[i] = c[i].hi == NULL;
        double ends[2] = {lo[i], hi[i]};
        for (int e = 0; e < 2; e++) {
            if (isinf(ends[e])) continue;
            double d = 1e-7 * (1 + fabs(ends[e]));
            pts[np++] = ends[e];
            pts[np++] = ends[e] - d;
            pts[np++] = ends[e] + d;
            pts[np++] = -ends[e];
        }
    }
    int base = np;
    for (int i = 0; i < base && np < 396; i++)
        for (int j = i + 1; j < base && np < 396; j += 4) pts[np++] = 0.5 * (pts[i] + pts[j]);
    pts[np++] = 0;
    pts[np++] = 1e6;
    pts[np++] = -1e6;
    int checked = 0;
    for (int i = 0; i < np; i++) {
        int okr;
        int in_rel = rel_holds(rel, vars[0], pts[i], &okr);
        if (!okr) continue;
        checked++;
        if (in_rel != mvc_member(lo, hi, lop, rop, pt, n, pts[i])) return mvc_why(k, "different: relation and set differ", 0);
    }
    return mvc_why(k, checked >= 4 ? "equal: relation describes the set" : "different: could not sample", checked >= 4);
}
