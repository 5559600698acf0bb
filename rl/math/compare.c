// rl/math/compare.c — is the predicted answer equal to the gold? (gold first: forms follow the gold)
// defines: mv_equal
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

#include "rl/math/mv_internal.h"

#define NPOINTS 6
#define REL_TOL 1e-24

typedef struct {
    mv_cmp_ctx *c;
    mv_arena *a;
    int budget;  // comparisons left (bounds nested unordered matching)
} cmp_t;

static int equal(cmp_t *k, mv_node *g, mv_node *p);
static int value_equal(cmp_t *k, mv_node *g, mv_node *p);

static int why(cmp_t *k, const char *w, int v) {
    k->c->why = w;
    return v;
}

// ---------------------------------------------------------------- shape helpers

static int is_scalar(const mv_node *x) {
    switch (x->kind) {
    case MV_NUM: case MV_SYM: case MV_CONST: case MV_INF: case MV_ADD: case MV_MUL: case MV_NEG: case MV_DIV:
    case MV_POW: case MV_FUNC: case MV_UFUNC: case MV_FACT: case MV_ABS: case MV_ROOT: case MV_BINOM: case MV_SUM:
    case MV_PERCENT: case MV_PM:
        return 1;
    default: return 0;
    }
}

// Made only of names: x, S_{ABC}, |AB|, f(x), (p, q), a:b
static int is_symbolish(const mv_node *x) {
    switch (x->kind) {
    case MV_SYM: return 1;
    case MV_UFUNC: return 1;  // f(x) = ..., f(2) = ...
    case MV_MUL: case MV_ABS: case MV_RATIO: case MV_TUPLE: case MV_LIST: case MV_DIV:
        for (int i = 0; i < x->n; i++)
            if (!is_symbolish(x->kid[i])) return 0;
        return 1;
    default: return 0;
    }
}

static int is_eq_op(int op) { return op == MV_R_EQ || op == MV_R_APPROX; }

static int is_equation(const mv_node *x) {
    if (x->kind == MV_REL) {
        for (int i = 0; i < x->n - 1; i++)
            if (!is_eq_op(x->ops[i])) return 0;
        return 1;
    }
    if (x->kind == MV_LIST && x->n > 0) {
        for (int i = 0; i < x->n; i++)
            if (!is_equation(x->kid[i])) return 0;
        return 1;
    }
    return 0;
}

static int is_assignment(const mv_node *x) {
    if (x->kind == MV_LIST && x->n > 0) {
        for (int i = 0; i < x->n; i++)
            if (!is_assignment(x->kid[i])) return 0;
        return 1;
    }
    return is_equation(x) && x->kind == MV_REL && is_symbolish(x->kid[0]);
}

// "x = a = b \approx c" -> "x = b" (the approximation after an exact value is commentary)
static mv_node *trim_chain(cmp_t *k, mv_node *x) {
    if (x->kind == MV_LIST) {
        mv_node *l = mv_new(k->a, MV_LIST, x->n);
        if (!l) return x;
        l->flags = x->flags;
        for (int i = 0; i < x->n; i++) l->kid[i] = trim_chain(k, x->kid[i]);
        return l;
    }
    if (x->kind != MV_REL || !is_equation(x)) return x;
    int last = x->n - 1;
    while (last > 1 && x->ops[last - 1] == MV_R_APPROX) last--;
    if (x->n == 2 && last == 1) return x;
    mv_node *r = mv_new2(k->a, MV_REL, x->kid[0], x->kid[last]);
    if (!r) return x;
    r->ops = mv_alloc(k->a, sizeof(int));
    r->ops[0] = MV_R_EQ;
    return r;
}

static mv_node *last_rhs(cmp_t *k, mv_node *x) {
    if (x->kind == MV_LIST) {
        mv_node *l = mv_new(k->a, MV_LIST, x->n);
        if (!l) return x;
        l->flags = x->flags;
        for (int i = 0; i < x->n; i++) l->kid[i] = last_rhs(k, x->kid[i]);
        return l;
    }
    return x->kind == MV_REL ? x->kid[x->n - 1] : x;
}

// "x \in S" -> S
static mv_node *unwrap_in(mv_node *x) {
    if (x->kind == MV_REL && x->n == 2 && x->ops[0] == MV_R_IN && is_symbolish(x->kid[0])) return x->kid[1];
    return x;
}

static int is_setlike(const mv_node *x) {
    return x->kind == MV_INTERVAL || x->kind == MV_UNION || x->kind == MV_EMPTYSET ||
           (x->kind == MV_TUPLE && (x->flags & MV_F_MAYBE_INTERVAL)) || x->kind == MV_SET;
}

// ---------------------------------------------------------------- numeric helpers

typedef struct {
    uint64_t s;
} rng_t;
static double rng_uniform(rng_t *r, double lo, double hi) {
    uint64_t z = (r->s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    z ^= z >> 31;
    return lo + (hi - lo) * (double)(z >> 11) * (1.0 / 9007199254740992.0);
}

static int close_enough(const mv_cval *a, const mv_cval *b) {
    mpfr_t d, m, t;
    mpfr_inits2(MV_PREC, d, m, t, (mpfr_ptr)0);
    mpfr_sub(d, a->re, b->re, MPFR_RNDN);
    mpfr_sub(t, a->im, b->im, MPFR_RNDN);
    mpfr_hypot(d, d, t, MPFR_RNDN);
    mpfr_hypot(m, a->re, a->im, MPFR_RNDN);
    mpfr_hypot(t, b->re, b->im, MPFR_RNDN);
    mpfr_max(m, m, t, MPFR_RNDN);
    mpfr_mul_d(m, m, REL_TOL, MPFR_RNDN);
    mpfr_add_d(m, m, 1e-40, MPFR_RNDN);
    int ok = mpfr_lessequal_p(d, m);
    mpfr_clears(d, m, t, (mpfr_ptr)0);
    return ok;
}

// Variables of both sides into one environment per side: the same names get the same values
// (strict); without strict, the i-th sorted variable of pred gets the value of gold's i-th.
typedef struct {
    mv_env g, p;
} env_pair;

static int make_envs(cmp_t *k, const mv_node *g, const mv_node *p, env_pair *e) {
    const char *gv[32], *pv[32];
    int ng = mv_free_vars(g, gv, 32), np = mv_free_vars(p, pv, 32);
    memset(e, 0, sizeof *e);
    if (!k->c->strict && ng == np) {
        e->g.nvars = e->p.nvars = ng;
        for (int i = 0; i < ng; i++) {
            e->g.names[i] = gv[i];
            e->p.names[i] = pv[i];
        }
        return ng;
    }
    int n = 0;
    for (int i = 0; i < ng; i++) e->g.names[n++] = gv[i];
    for (int i = 0; i < np && n < 32; i++) {
        int dup = 0;
        for (int j = 0; j < ng; j++)
            if (!strcmp(pv[i], gv[j])) dup = 1;
        if (!dup) e->g.names[n++] = pv[i];
    }
    e->g.nvars = n;
    e->p = e->g;
    return n;
}

static void set_point(env_pair *e, rng_t *r, int point) {
    for (int i = 0; i < e->g.nvars; i++) {
        // spread points: small, around one, larger; avoid integers and simple fractions
        double lo = point % 3 == 0 ? 0.15 : point % 3 == 1 ? 0.6 : 1.3, hi = lo + (point % 3 == 2 ? 2.1 : 0.9);
        e->g.vals[i] = e->p.vals[i] = rng_uniform(r, lo, hi);
    }
}

// Numeric equality of two scalars at random points. 1 equal, 0 different, -1 undecided.
static int numeric_equal(cmp_t *k, const mv_node *g, const mv_node *p) {
    env_pair e;
    int nv = make_envs(k, g, p, &e);
    rng_t r = {0x5eed1234u};
    mv_cval vg, vp;
    mv_cval_init(&vg);
    mv_cval_init(&vp);
    int valid = 0, bad = 0, points = nv ? NPOINTS : 1;
    for (int i = 0; i < points && !bad; i++) {
        set_point(&e, &r, i);
        if (mv_eval_num(g, &e.g, &vg) || mv_eval_num(p, &e.p, &vp)) continue;
        if (close_enough(&vg, &vp)) valid++;
        else bad = 1;
    }
    mv_cval_clear(&vg);
    mv_cval_clear(&vp);
    if (bad) return 0;
    if (valid >= (nv ? 2 : 1)) return 1;
    return -1;
}

// A bare decimal literal (-0.25, 3.14): its value and printed decimals; 0 when not one.
static int bare_float(const mv_node *x, int *ndec, int *sig) {
    if (x->kind == MV_NEG) x = x->kid[0];
    if (x->kind != MV_NUM || !(x->flags & MV_F_FLOAT) || (x->flags & MV_F_SCI)) return 0;
    *ndec = x->ndec;
    int s = 0, leading = 1;
    for (const char *c = x->str; *c; c++) {
        if (!isdigit((unsigned char)*c)) continue;
        if (*c != '0') leading = 0;
        if (!leading) s++;
    }
    *sig = s;
    return 1;
}

// The float f (printed with d decimals) rounds the other value v: |v - f| <= 0.5 10^-d.
static int float_rounds(const mv_node *f, int d, const mv_node *v) {
    mv_cval a, b;
    mv_cval_init(&a);
    mv_cval_init(&b);
    int ok = 0;
    if (mv_eval_num(f, NULL, &a) == 0 && mv_eval_num(v, NULL, &b) == 0 && mpfr_zero_p(b.im)) {
        mpfr_t diff, half;
        mpfr_inits2(MV_PREC, diff, half, (mpfr_ptr)0);
        mpfr_sub(diff, a.re, b.re, MPFR_RNDN);
        mpfr_abs(diff, diff, MPFR_RNDN);
        mpfr_set_ui(half, 10, MPFR_RNDN);
        mpfr_pow_si(half, half, -d, MPFR_RNDN);
        mpfr_mul_d(half, half, 0.5, MPFR_RNDN);
        // strictly inside half a unit, or a tie rounded away from zero (0.125 -> 0.13, not 0.12)
        mpfr_t lo, hi;
        mpfr_inits2(MV_PREC, lo, hi, (mpfr_ptr)0);
        mpfr_mul_d(lo, half, 1 - 1e-12, MPFR_RNDN);
        mpfr_mul_d(hi, half, 1 + 1e-12, MPFR_RNDN);
        ok = mpfr_less_p(diff, lo) || (mpfr_lessequal_p(diff, hi) && mpfr_cmpabs(a.re, b.re) > 0);
        mpfr_clears(lo, hi, (mpfr_ptr)0);
        mpfr_clears(diff, half, (mpfr_ptr)0);
    }
    mv_cval_clear(&a);
    mv_cval_clear(&b);
    return ok;
}

static int scalar_equal(cmp_t *k, mv_node *g, mv_node *p) {
    if (mv_struct_equal(g, p)) return why(k, "equal: same expression", 1);
    mpq_t qg, qp;
    mpq_init(qg);
    mpq_init(qp);
    int exact = mv_eval_exact(g, qg) == 0 && mv_eval_exact(p, qp) == 0;
    int eq = exact && mpq_equal(qg, qp);
    mpq_clear(qg);
    mpq_clear(qp);
    if (eq) return why(k, "equal: exact rational", 1);
    int dg = 0, sg = 0, dp = 0, sp = 0, fg = bare_float(g, &dg, &sg), fp = bare_float(p, &dp, &sp);
    if (fg || fp) {
        const mv_node *f = fg && (!fp || dg <= dp) ? g : p, *v = f == g ? p : g;
        int d = f == g ? dg : dp, s = f == g ? sg : sp;
        if ((d >= 2 || s >= 3) && float_rounds(f, d, v)) return why(k, "equal: float rounds the exact value", 1);
    }
    if (exact) return why(k, "different: exact rationals differ", 0);
    if (g->kind == MV_INF || p->kind == MV_INF) return why(k, "different", 0);
    int r = numeric_equal(k, g, p);
    if (r == 1) return why(k, "equal: numeric evaluation", 1);
    return why(k, r == 0 ? "different: numeric evaluation" : "different: could not evaluate", 0);
}

// ---------------------------------------------------------------- relations

// lhs - rhs
static mv_node *diff(cmp_t *k, mv_node *l, mv_node *r) { return mv_new2(k->a, MV_ADD, l, mv_new1(k->a, MV_NEG, r)); }

// f_g = c f_p for a constant c (sign > 0: c > 0 required). 1 / 0 / -1 undecided.
static int proportional(cmp_t *k, mv_node *fg, mv_node *fp, int positive) {
    if (!fg || !fp) return -1;
    env_pair e;
    int nv = make_envs(k, fg, fp, &e);
    if (nv == 0) return -1;
    rng_t r = {0xabcdef12u};
    mv_cval vg, vp, ratio, first;
    mv_cval_init(&vg);
    mv_cval_init(&vp);
    mv_cval_init(&ratio);
    mv_cval_init(&first);
    int have = 0, valid = 0, bad = 0;
    for (int i = 0; i < NPOINTS + 2 && !bad; i++) {
        set_point(&e, &r, i);
        if (mv_eval_num(fg, &e.g, &vg) || mv_eval_num(fp, &e.p, &vp)) continue;
        int zg = mpfr_cmpabs_ui(vg.re, 0) == 0 && mpfr_zero_p(vg.im), zp = mpfr_zero_p(vp.re) && mpfr_zero_p(vp.im);
        if (zg || zp) {
            if (zg != zp) bad = 1;
            continue;
        }
        mpfr_t t;
        mpfr_init2(t, MV_PREC);
        // ratio = vg / vp (complex division inline through mv_eval on nodes is heavier; do it here)
        mpfr_hypot(t, vp.re, vp.im, MPFR_RNDN);
        mpfr_sqr(t, t, MPFR_RNDN);
        mpfr_t a, b;
        mpfr_inits2(MV_PREC, a, b, (mpfr_ptr)0);
        mpfr_mul(a, vg.re, vp.re, MPFR_RNDN);
        mpfr_mul(b, vg.im, vp.im, MPFR_RNDN);
        mpfr_add(ratio.re, a, b, MPFR_RNDN);
        mpfr_div(ratio.re, ratio.re, t, MPFR_RNDN);
        mpfr_mul(a, vg.im, vp.re, MPFR_RNDN);
        mpfr_mul(b, vg.re, vp.im, MPFR_RNDN);
        mpfr_sub(ratio.im, a, b, MPFR_RNDN);
        mpfr_div(ratio.im, ratio.im, t, MPFR_RNDN);
        mpfr_clears(a, b, t, (mpfr_ptr)0);
        if (!have) {
            mpfr_set(first.re, ratio.re, MPFR_RNDN);
            mpfr_set(first.im, ratio.im, MPFR_RNDN);
            have = 1;
            if (positive && (mpfr_sgn(first.re) <= 0 || !mpfr_zero_p(first.im))) bad = 1;
        } else if (!close_enough(&ratio, &first)) {
            bad = 1;
        }
        valid++;
    }
    mv_cval_clear(&vg);
    mv_cval_clear(&vp);
    mv_cval_clear(&ratio);
    mv_cval_clear(&first);
    if (bad) return 0;
    return valid >= 2 ? 1 : -1;
}

// One relation "l op r" as (l - r, op) with > and >= flipped to < and <=.
static mv_node *rel_norm(cmp_t *k, mv_node *l, int op, mv_node *r, int *nop) {
    if (op == MV_R_GT || op == MV_R_GE) {
        *nop = op == MV_R_GT ? MV_R_LT : MV_R_LE;
        return diff(k, r, l);
    }
    *nop = op == MV_R_APPROX ? MV_R_EQ : op;
    return diff(k, l, r);
}

static int const_free(const mv_node *x) {
    const char *names[1];
    return mv_free_vars(x, names, 1) == 0;
}

static int one_rel_equal(cmp_t *k, mv_node *gl, int gop, mv_node *gr, mv_node *pl, int pop, mv_node *pr) {
    int go, po;
    mv_node *fg = rel_norm(k, gl, gop, gr, &go), *fp = rel_norm(k, pl, pop, pr, &po);
    if (go != po || !fg || !fp) return 0;
    if (go == MV_R_IN) return mv_struct_equal(gl, pl) && equal(k, gr, pr);
    if (!is_scalar(gl) || !is_scalar(gr) || !is_scalar(pl) || !is_scalar(pr)) {
        // x = (1, 2): sides compared as values
        return go == MV_R_EQ && ((equal(k, gl, pl) && equal(k, gr, pr)) || (equal(k, gl, pr) && equal(k, gr, pl)));
    }
    if (const_free(fg) && const_free(fp)) {  // "1 < 2": sides as values
        if (go == MV_R_EQ || go == MV_R_NE)
            return (scalar_equal(k, gl, pl) && scalar_equal(k, gr, pr)) || (scalar_equal(k, gl, pr) && scalar_equal(k, gr, pl));
        int a = gop == pop && scalar_equal(k, gl, pl) && scalar_equal(k, gr, pr);
        return a;
    }
    int r = proportional(k, fg, fp, go == MV_R_LT || go == MV_R_LE);
    if (r == -1) return mv_struct_equal(fg, fp);
    return r;
}

static int flip(int op) {
    switch (op) {
    case MV_R_LT: return MV_R_GT;
    case MV_R_GT: return MV_R_LT;
    case MV_R_LE: return MV_R_GE;
    case MV_R_GE: return MV_R_LE;
    default: return op;
    }
}

static int rel_equal(cmp_t *k, mv_node *g, mv_node *p) {
    if (g->n != p->n) return why(k, "different: relations of different length", 0);
    // assignments with the same name: compare the values (x = (0, 1) vs x = (0, 1.5))
    if (g->n == 2 && is_assignment(g) && is_assignment(p) && mv_struct_equal(g->kid[0], p->kid[0]))
        return equal(k, g->kid[1], p->kid[1]);
    int ok = 1;
    for (int i = 0; i + 1 < g->n && ok; i++)
        ok = one_rel_equal(k, g->kid[i], g->ops[i], g->kid[i + 1], p->kid[i], p->ops[i], p->kid[i + 1]);
    if (!ok) {  // a < x < b vs b > x > a
        ok = 1;
        int n = p->n;
        for (int i = 0; i + 1 < g->n && ok; i++)
            ok = one_rel_equal(k, g->kid[i], g->ops[i], g->kid[i + 1], p->kid[n - 1 - i], flip(p->ops[n - 2 - i]), p->kid[n - 2 - i]);
    }
    return why(k, ok ? "equal: equivalent relations" : "different: relations differ", ok);
}

// ---------------------------------------------------------------- sets, intervals

typedef struct {
    mv_node *lo, *hi;  // hi == NULL: a point
    int lopen, ropen;
} comp_t;

static int components(cmp_t *k, mv_node *x, comp_t *c, int *n, int cap) {
    switch (x->kind) {
    case MV_INTERVAL:
        if (*n == cap) return -1;
        c[(*n)++] = (comp_t){x->kid[0], x->kid[1], (x->flags & MV_F_LOPEN) != 0, (x->flags & MV_F_ROPEN) != 0};
        return 0;
    case MV_TUPLE:
        if (!(x->flags & MV_F_MAYBE_INTERVAL) || *n == cap) return -1;
        c[(*n)++] = (comp_t){x->kid[0], x->kid[1], 1, 1};
        return 0;
    case MV_UNION:
        for (int i = 0; i < x->n; i++)
            if (components(k, x->kid[i], c, n, cap)) return -1;
        return 0;
    case MV_SET:
    case MV_LIST:
        for (int i = 0; i < x->n; i++) {
            if (*n == cap || !is_scalar(x->kid[i])) return -1;
            c[(*n)++] = (comp_t){x->kid[i], NULL, 0, 0};
        }
        return 0;
    case MV_EMPTYSET: return 0;
    default:
        if (!is_scalar(x) || *n == cap) return -1;
        c[(*n)++] = (comp_t){x, NULL, 0, 0};
        return 0;
    }
}

static int end_equal(cmp_t *k, mv_node *a, mv_node *b) {
    int ia = a->kind == MV_INF || (a->kind == MV_NEG && a->kid[0]->kind == MV_INF);
    int ib = b->kind == MV_INF || (b->kind == MV_NEG && b->kid[0]->kind == MV_INF);
    if (ia || ib) return ia && ib && (a->kind == MV_NEG) == (b->kind == MV_NEG);
    return scalar_equal(k, a, b);
}

static int comp_equal(cmp_t *k, const comp_t *a, const comp_t *b) {
    if ((a->hi == NULL) != (b->hi == NULL)) return 0;
    if (!a->hi) return scalar_equal(k, a->lo, b->lo);
    return a->lopen == b->lopen && a->ropen == b->ropen && end_equal(k, a->lo, b->lo) && end_equal(k, a->hi, b->hi);
}

// Perfect matching between n items under eq(i, j) (augmenting paths; n <= 64).
static int match_try(int i, int n, const unsigned char *eq, int *owner, unsigned char *seen) {
    for (int j = 0; j < n; j++) {
        if (!eq[i * n + j] || seen[j]) continue;
        seen[j] = 1;
        if (owner[j] < 0 || match_try(owner[j], n, eq, owner, seen)) {
            owner[j] = i;
            return 1;
        }
    }
    return 0;
}

static int perfect_matching(int n, const unsigned char *eq) {
    int owner[64];
    unsigned char seen[64];
    for (int j = 0; j < n; j++) owner[j] = -1;
    for (int i = 0; i < n; i++) {
        memset(seen, 0, sizeof seen);
        if (!match_try(i, n, eq, owner, seen)) return 0;
    }
    return 1;
}

static double to_double(const mv_node *x, int *ok) {
    if (x->kind == MV_INF) return INFINITY;
    if (x->kind == MV_NEG && x->kid[0]->kind == MV_INF) return -INFINITY;
    mv_cval v;
    mv_cval_init(&v);
    double d = 0;
    *ok = mv_eval_num(x, NULL, &v) == 0 && mpfr_zero_p(v.im);
    if (*ok) d = mpfr_get_d(v.re, MPFR_RNDN);
    mv_cval_clear(&v);
    return d;
}

static int member(const double *lo, const double *hi, const int *lop, const int *rop, const int *pt, int n, double t) {
    for (int i = 0; i < n; i++) {
        if (pt[i]) {
            if (t == lo[i]) return 1;
            continue;
        }
        int above = lop[i] ? t > lo[i] : t >= lo[i];
        int below = rop[i] ? t < hi[i] : t <= hi[i];
        if (above && below) return 1;
    }
    return 0;
}

// Same subset of the reals, by membership of every end, points beside each end and midpoints.
static int sets_by_membership(const comp_t *a, int na, const comp_t *b, int nb) {
    double lo[128], hi[128], pts[512];
    int lop[128], rop[128], pt[128], np = 0, ok = 1;
    if (na + nb > 128) return 0;
    const comp_t *all[2] = {a, b};
    int cnt[2] = {na, nb};
    for (int s = 0, idx = 0; s < 2; s++)
        for (int i = 0; i < cnt[s]; i++, idx++) {
            lo[idx] = to_double(all[s][i].lo, &ok);
            if (!ok) return 0;
            hi[idx] = all[s][i].hi ? to_double(all[s][i].hi, &ok) : lo[idx];
            if (!ok) return 0;
            lop[idx] = all[s][i].lopen;
            rop[idx] = all[s][i].ropen;
            pt[idx] = all[s][i].hi == NULL;
        }
    int total = na + nb;
    double big = 1;
    for (int i = 0; i < total; i++) {
        double ends[2] = {lo[i], hi[i]};
        for (int e = 0; e < 2; e++) {
            if (isinf(ends[e])) continue;
            double d = 1e-9 * (1 + fabs(ends[e]));
            pts[np++] = ends[e];
            pts[np++] = ends[e] - d;
            pts[np++] = ends[e] + d;
            if (fabs(ends[e]) + 1 > big) big = fabs(ends[e]) + 1;
        }
    }
    int base = np;
    for (int i = 0; i < base && np < 510; i++)
        for (int j = i + 1; j < base && np < 510; j += 3) pts[np++] = 0.5 * (pts[i] + pts[j]);
    pts[np++] = 10 * big;
    pts[np++] = -10 * big;
    for (int i = 0; i < np; i++)
        if (member(lo, hi, lop, rop, pt, na, pts[i]) != member(lo + na, hi + na, lop + na, rop + na, pt + na, nb, pts[i])) return 0;
    return 1;
}

static int sets_equal(cmp_t *k, mv_node *g, mv_node *p) {
    comp_t a[64], b[64];
    int na = 0, nb = 0;
    if (components(k, g, a, &na, 64) || components(k, p, b, &nb, 64)) return why(k, "different: not comparable sets", 0);
    if (na == nb) {
        unsigned char eq[64 * 64];
        for (int i = 0; i < na; i++)
            for (int j = 0; j < nb; j++) eq[i * nb + j] = (unsigned char)comp_equal(k, &a[i], &b[j]);
        if (perfect_matching(na, eq)) return why(k, "equal: same intervals", 1);
    }
    int ok = sets_by_membership(a, na, b, nb);
    return why(k, ok ? "equal: same set (membership)" : "different: sets differ", ok);
}

// A relation in one variable as a set: "0 < x <= 1" -> (0, 1]; "x != 3" -> (-oo,3) U (3,oo).
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
        if (const_free(l) && !const_free(c)) {
            mv_node *t = l;
            l = c;
            c = t;
            op = flip(op);
        }
        if (!const_free(c) || const_free(l) || !(l->kind == MV_SYM || l->kind == MV_UFUNC)) return NULL;
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
    if (r->n == 3 && (r->kid[1]->kind == MV_SYM || r->kid[1]->kind == MV_UFUNC) && const_free(r->kid[0]) && const_free(r->kid[2])) {
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

static int rel_vs_set(cmp_t *k, mv_node *rel, mv_node *set) {
    mv_node *s = rel_to_set(k, rel);
    if (s) return equal(k, s, set);
    // sampling: 1 <= |z| <= 3/2 vs [-3/2, -1] U [1, 3/2]
    const char *vars[2];
    if (mv_free_vars(rel, vars, 2) != 1) return why(k, "different: relation is not in one variable", 0);
    comp_t c[64];
    int n = 0;
    if (components(k, set, c, &n, 64)) return why(k, "different: not comparable", 0);
    double lo[64], hi[64], pts[400];
    int lop[64], rop[64], pt[64], np = 0, ok = 1;
    for (int i = 0; i < n; i++) {
        lo[i] = to_double(c[i].lo, &ok);
        if (!ok) return 0;
        hi[i] = c[i].hi ? to_double(c[i].hi, &ok) : lo[i];
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
        if (in_rel != member(lo, hi, lop, rop, pt, n, pts[i])) return why(k, "different: relation and set differ", 0);
    }
    return why(k, checked >= 4 ? "equal: relation describes the set" : "different: could not sample", checked >= 4);
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
    if (is_scalar(x) && contains_pm(x)) {
        mv_node *s = mv_new2(k->a, MV_SET, expand_pm(k, x, 1), expand_pm(k, x, -1));
        return s ? s : x;
    }
    if (x->kind != MV_SET && x->kind != MV_LIST) return x;
    int extra = 0;
    for (int i = 0; i < x->n; i++) extra += is_scalar(x->kid[i]) && contains_pm(x->kid[i]);
    if (!extra) return x;
    mv_node *y = mv_new(k->a, x->kind, x->n + extra);
    if (!y) return x;
    y->flags = x->flags | MV_F_UNORDERED;
    for (int i = 0, j = 0; i < x->n; i++) {
        if (is_scalar(x->kid[i]) && contains_pm(x->kid[i])) {
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
                if (!is_scalar(sc)) return NULL;
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
    if (g->n != p->n) return why(k, "different: number of elements", 0);
    for (int i = 0; i < g->n; i++)
        if (!equal(k, g->kid[i], p->kid[i])) return 0;
    return why(k, "equal: elementwise", 1);
}

// Same elements in any order. As sets (repeats ignored: every element of each side equals one of
// the other) when as_set, else as lists (a one-to-one matching).
static int unordered_equal(cmp_t *k, mv_node *g, mv_node *p, int as_set) {
    if (!as_set && g->n != p->n) return why(k, "different: number of elements", 0);
    if (g->n > 64 || p->n > 64) return why(k, "different: too many elements", 0);
    unsigned char eq[64 * 64];
    for (int i = 0; i < g->n; i++)
        for (int j = 0; j < p->n; j++) {
            if (--k->budget < 0) return why(k, "different: comparison budget spent", 0);
            eq[i * p->n + j] = (unsigned char)equal(k, g->kid[i], p->kid[j]);
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
        ok = perfect_matching(g->n, eq);
    }
    return why(k, ok ? "equal: same elements in any order" : "different: elements differ", ok);
}

static int is_collection(const mv_node *x) { return x->kind == MV_TUPLE || x->kind == MV_LIST || x->kind == MV_SET; }

static int collections_equal(cmp_t *k, mv_node *g, mv_node *p) {
    int gs = g->kind == MV_SET, ps = p->kind == MV_SET;
    if ((gs && p->kind == MV_TUPLE) || (ps && g->kind == MV_TUPLE)) {
        if (k->c->strict) return why(k, "different: a set is not a tuple", 0);
        return unordered_equal(k, g, p, 1);
    }
    if (gs || ps) return unordered_equal(k, g, p, 1);
    int unordered = (g->kind == MV_LIST && (g->flags & MV_F_UNORDERED)) || (p->kind == MV_LIST && (p->flags & MV_F_UNORDERED)) ||
                    (is_assignment(g) && is_assignment(p)) ||
                    (all_tuples(g) && all_tuples(p) && (g->kind == MV_LIST || p->kind == MV_LIST));
    return unordered ? unordered_equal(k, g, p, 1) : ordered_equal(k, g, p);
}

static int percent_equal(cmp_t *k, mv_node *g, mv_node *p) {
    mv_node *x = g->kind == MV_PERCENT ? g : p, *y = x == g ? p : g;
    if (y->kind == MV_PERCENT) return equal(k, x->kid[0], y->kid[0]);
    if (!is_scalar(y)) return 0;
    // 12\% matches 12 and 0.12
    if (scalar_equal(k, x->kid[0], y)) return why(k, "equal: percent value", 1);
    return scalar_equal(k, x, y);
}

static int value_equal(cmp_t *k, mv_node *g, mv_node *p) {
    if (mv_struct_equal(g, p)) return why(k, "equal: same expression", 1);
    g = pm_values(k, g);
    p = pm_values(k, p);
    mv_node *d;
    if ((d = decimal_comma(k, g)) && is_scalar(p)) g = d;
    if ((d = decimal_comma(k, p)) && is_scalar(g)) p = d;
    if (g->kind == MV_TEXT || p->kind == MV_TEXT) {
        char a[256], b[256];
        size_t la = 0, lb = 0;
        int ok = text_key(g, a, sizeof a, &la) && text_key(p, b, sizeof b, &lb) && la > 0 && la == lb && !memcmp(a, b, la);
        return why(k, ok ? "equal: same text" : "different: text differs", ok);
    }
    if (g->kind == MV_PERCENT || p->kind == MV_PERCENT) return percent_equal(k, g, p);
    mv_node *mg = as_matrix(k, g), *mp = as_matrix(k, p);
    if (mg || mp) {
        if (mg && mp) {
            if (mg->rows != mp->rows || mg->cols != mp->cols) return why(k, "different: matrix shapes", 0);
            return ordered_equal(k, mg, mp);
        }
        mv_node *m = mg ? mg : mp, *o = mg ? p : g;
        if ((m->rows == 1 || m->cols == 1) && o->kind == MV_TUPLE) return ordered_equal(k, mg ? mg : g, mg ? p : mp);
        return why(k, "different: matrix vs non-matrix", 0);
    }
    if (g->kind == MV_RATIO || p->kind == MV_RATIO) {
        if (g->kind == MV_RATIO && p->kind == MV_RATIO) {
            if (equal(k, g->kid[0], p->kid[0]) && equal(k, g->kid[1], p->kid[1])) return why(k, "equal: same ratio", 1);
            mv_node *zero = mv_num_int(k->a, 0);
            if (!zero || scalar_equal(k, g->kid[1], zero) || scalar_equal(k, p->kid[1], zero)) return why(k, "different: ratio", 0);
            mv_node *l = mv_new2(k->a, MV_MUL, g->kid[0], p->kid[1]), *r = mv_new2(k->a, MV_MUL, p->kid[0], g->kid[1]);
            int ok = l && r && scalar_equal(k, l, r);
            return why(k, ok ? "equal: proportional ratios" : "different: ratios differ", ok);
        }
        mv_node *rt = g->kind == MV_RATIO ? g : p, *o = rt == g ? p : g;
        if (!is_scalar(o)) return 0;
        mv_node *q = mv_new2(k->a, MV_DIV, rt->kid[0], rt->kid[1]);
        return q && (rt == g ? scalar_equal(k, q, o) : scalar_equal(k, o, q));
    }
    int gi = g->kind == MV_INTERVAL || g->kind == MV_UNION || g->kind == MV_EMPTYSET;
    int pi = p->kind == MV_INTERVAL || p->kind == MV_UNION || p->kind == MV_EMPTYSET;
    if (gi || pi) {
        if ((gi || is_setlike(g)) && (pi || is_setlike(p))) return sets_equal(k, g, p);
        if (gi && p->kind == MV_LIST && p->n == 2 && g->kind == MV_INTERVAL) return why(k, "different: list vs interval", 0);
        return why(k, "different: set vs non-set", 0);
    }
    if (is_collection(g) || is_collection(p)) {
        if (is_collection(g) && is_collection(p)) return collections_equal(k, g, p);
        mv_node *c = is_collection(g) ? g : p, *o = c == g ? p : g;
        if (c->n == 1) return c == g ? equal(k, c->kid[0], o) : equal(k, o, c->kid[0]);
        return why(k, "different: several values vs one", 0);
    }
    if (!is_scalar(g) || !is_scalar(p)) return why(k, "different: forms differ", 0);
    return scalar_equal(k, g, p);
}

// ---------------------------------------------------------------- entry

static int equal(cmp_t *k, mv_node *g, mv_node *p) {
    if (--k->budget < 0) return why(k, "different: comparison budget spent", 0);
    if (mv_struct_equal(g, p)) return why(k, "equal: same expression", 1);
    g = unwrap_in(g);
    p = unwrap_in(p);
    int gE = is_equation(g), pE = is_equation(p), gA = is_assignment(g);
    int glen = g->kind == MV_REL ? g->n : 0;
    if (gE) g = trim_chain(k, g);
    if (pE) p = trim_chain(k, p);
    if (pE && !gE) p = last_rhs(k, p);
    else if (gE && !pE && (gA || glen >= 3)) g = last_rhs(k, g);
    int gR = g->kind == MV_REL, pR = p->kind == MV_REL;
    if (gR && is_setlike(p)) return rel_vs_set(k, g, p);
    if (pR && is_setlike(g)) {
        if (!k->c->set_relation) return why(k, "different: gold is a set, answer a relation", 0);
        return rel_vs_set(k, p, g);
    }
    if (gR && pR) return rel_equal(k, g, p);
    if (gR || pR) return why(k, "different: relation vs value", 0);
    return value_equal(k, g, p);
}

int mv_equal(mv_cmp_ctx *c, mv_arena *a, mv_node *gold, mv_node *pred) {
    cmp_t k = {c, a, 4096};
    c->why = "different";
    return equal(&k, gold, pred);
}
