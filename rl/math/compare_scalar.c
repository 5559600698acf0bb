// rl/math/compare_scalar.c — equality of two scalar answers: same canonical text; exact rationals
// (GMP); a printed float against the value it rounds (>= 2 decimals or >= 3 significant digits,
// ties away from zero) when the gold is that float or a rational, or any value under
// lenient_decimals (3.14 for \pi is wrong by default); evaluation at random points (MPFR) with a
// relative tolerance; and the proportionality test the equation and inequality rules use.
// defines: mvc_scalar_equal, mvc_numeric_equal, mvc_proportional, mvc_const_free, mvc_to_double
#include <ctype.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "base/rng.h"
#include "rl/math/mv_compare.h"

#define NPOINTS 6
#define REL_TOL 1e-24


static double point_uniform(uint64_t *r, double lo, double hi) { return lo + (hi - lo) * rng_uniform(r); }

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

static void set_point(env_pair *e, uint64_t *r, int point) {
    for (int i = 0; i < e->g.nvars; i++) {
        // spread points: small, around one, larger; avoid integers and simple fractions
        double lo = point % 3 == 0 ? 0.15 : point % 3 == 1 ? 0.6 : 1.3, hi = lo + (point % 3 == 2 ? 2.1 : 0.9);
        e->g.vals[i] = e->p.vals[i] = point_uniform(r, lo, hi);
    }
}

// Numeric equality of two scalars at random points. 1 equal, 0 different, -1 undecided.
int mvc_numeric_equal(cmp_t *k, const mv_node *g, const mv_node *p) {
    env_pair e;
    int nv = make_envs(k, g, p, &e);
    uint64_t r = 0x5eed1234u;
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

int mvc_scalar_equal(cmp_t *k, mv_node *g, mv_node *p) {
    if (mv_struct_equal(g, p)) return mvc_why(k, "equal: same expression", 1);
    mpq_t qg, qp;
    mpq_init(qg);
    mpq_init(qp);
    int gold_rational = mv_eval_exact(g, qg) == 0;
    int exact = gold_rational && mv_eval_exact(p, qp) == 0;
    int eq = exact && mpq_equal(qg, qp);
    mpq_clear(qg);
    mpq_clear(qp);
    if (eq) return mvc_why(k, "equal: exact rational", 1);
    int dg = 0, sg = 0, dp = 0, sp = 0, fg = bare_float(g, &dg, &sg), fp = bare_float(p, &dp, &sp), rounded = 0;
    if (fg || fp) {
        const mv_node *f = fg && (!fp || dg <= dp) ? g : p, *v = f == g ? p : g;
        int d = f == g ? dg : dp, s = f == g ? sg : sp;
        // A decimal gold states the precision asked for; a rational gold (1/3 vs 0.333) is matched by
        // rounding too. A decimal for an irrational gold (3.14 for \pi) is a different answer unless
        // the options say lenient_decimals: a policy must not learn to answer approximations.
        int rounding_ok = f == g || gold_rational || k->c->lenient_decimals;
        if ((d >= 2 || s >= 3) && float_rounds(f, d, v)) {
            if (rounding_ok) return mvc_why(k, "equal: float rounds the exact value", 1);
            rounded = 1;  // still equal if the decimal is the exact value (\sin(\pi/6) vs 0.5)
        }
    }
    if (exact) return mvc_why(k, "different: exact rationals differ", 0);
    if (g->kind == MV_INF || p->kind == MV_INF) return mvc_why(k, "different", 0);
    int r = mvc_numeric_equal(k, g, p);
    if (r == 1) return mvc_why(k, "equal: numeric evaluation", 1);
    if (rounded) return mvc_why(k, "different: a rounded decimal for an irrational value (lenient_decimals accepts it)", 0);
    return mvc_why(k, r == 0 ? "different: numeric evaluation" : "different: could not evaluate", 0);
}

// f_g = c f_p for a constant c (sign > 0: c > 0 required). 1 / 0 / -1 undecided.
int mvc_proportional(cmp_t *k, mv_node *fg, mv_node *fp, int positive) {
    if (!fg || !fp) return -1;
    env_pair e;
    int nv = make_envs(k, fg, fp, &e);
    if (nv == 0) return -1;
    uint64_t r = 0xabcdef12u;
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


int mvc_const_free(const mv_node *x) {
    const char *names[1];
    return mv_free_vars(x, names, 1) == 0;
}
