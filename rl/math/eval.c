// rl/math/eval.c — values of expression trees: exact rationals (GMP) for constant arithmetic, and
// complex high-precision values (MPFR, MV_PREC bits) at a point for everything else.
// defines: mv_eval_exact, mv_eval_num, mv_cval_init, mv_cval_clear, mv_free_vars, mv_has_float
//
// Work is bounded: exact intermediates above MV_MAX_EXACT_BITS, exponents above MV_MAX_POW_EXP and
// factorials above MV_MAX_FACT make the exact path give up (the numeric path then overflows to
// infinity in O(1)); sums run at most MV_MAX_SUM_TERMS terms.
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base/rng.h"
#include "rl/math/mv_internal.h"

// ---------------------------------------------------------------- work budget

// Node visits left for this verdict (exact and numeric evaluation together); when spent, every
// evaluation fails and the comparison falls back to structure: bounded time whatever the input.
static _Thread_local long work_left = MV_WORK_BUDGET;

void mv_work_reset(void) { work_left = MV_WORK_BUDGET; }
static int spend(void) { return --work_left >= 0; }

// ---------------------------------------------------------------- exact

static int too_big(const mpq_t q) {
    return mpz_sizeinbase(mpq_numref(q), 2) + mpz_sizeinbase(mpq_denref(q), 2) > MV_MAX_EXACT_BITS;
}

// "12.50" -> 25/2; "1.5e3" -> 1500
static int number_to_q(const char *d, mpq_t out) {
    const char *ex = strpbrk(d, "eE");
    size_t mant = ex ? (size_t)(ex - d) : strlen(d);
    if (mant > 4000) return -1;
    char *digits = malloc(mant + 1);
    if (!digits) abort();
    size_t nd = 0;
    long decimals = 0;
    int seen_dot = 0;
    for (size_t i = 0; i < mant; i++) {
        if (d[i] == '.') seen_dot = 1;
        else {
            digits[nd++] = d[i];
            if (seen_dot) decimals++;
        }
    }
    digits[nd] = 0;
    if (nd == 0) {
        free(digits);
        return -1;
    }
    long e10 = ex ? strtol(ex + 1, NULL, 10) : 0;
    if (e10 > 2000 || e10 < -2000) {
        free(digits);
        return -1;
    }
    e10 -= decimals;
    mpz_t num, p10;
    mpz_init_set_str(num, digits, 10);
    free(digits);
    mpz_init(p10);
    mpz_ui_pow_ui(p10, 10, (unsigned long)(e10 < 0 ? -e10 : e10));
    if (e10 >= 0) {
        mpz_mul(num, num, p10);
        mpq_set_z(out, num);
    } else {
        mpq_set_num(out, num);
        mpq_set_den(out, p10);
        mpq_canonicalize(out);
    }
    mpz_clear(num);
    mpz_clear(p10);
    return 0;
}

// Exact q-th root of a non-negative rational when it is one; 0 on success.
static int exact_root(mpq_t x, unsigned long q) {
    if (q == 1) return 0;
    if (mpq_sgn(x) < 0 && q % 2 == 0) return -1;
    int neg = mpq_sgn(x) < 0;
    mpz_t a, b;
    mpz_init(a);
    mpz_init(b);
    mpz_abs(a, mpq_numref(x));
    int ok = mpz_root(a, a, q) && mpz_root(b, mpq_denref(x), q);
    if (ok) {
        if (neg) mpz_neg(a, a);
        mpq_set_num(x, a);
        mpq_set_den(x, b);
        mpq_canonicalize(x);
    }
    mpz_clear(a);
    mpz_clear(b);
    return ok ? 0 : -1;
}

static int exact(const mv_node *x, mpq_t out);

static int exact_pow(const mv_node *x, mpq_t out) {
    mpq_t e;
    mpq_init(e);
    int rc = -1;
    if (exact(x->kid[0], out) == 0 && exact(x->kid[1], e) == 0 && mpz_cmpabs_ui(mpq_numref(e), MV_MAX_POW_EXP) <= 0 &&
        mpz_cmp_ui(mpq_denref(e), 64) <= 0) {
        long p = mpz_get_si(mpq_numref(e));
        unsigned long q = mpz_get_ui(mpq_denref(e));
        size_t bits = mpz_sizeinbase(mpq_numref(out), 2) + mpz_sizeinbase(mpq_denref(out), 2);
        if (bits * (size_t)labs(p) <= MV_MAX_EXACT_BITS && !(mpq_sgn(out) == 0 && p < 0) && exact_root(out, q) == 0) {
            mpz_t a, b;
            mpz_init(a);
            mpz_init(b);
            mpz_pow_ui(a, mpq_numref(out), (unsigned long)labs(p));
            mpz_pow_ui(b, mpq_denref(out), (unsigned long)labs(p));
            if (p < 0) mpz_swap(a, b);
            if (mpz_sgn(b) < 0) {
                mpz_neg(a, a);
                mpz_neg(b, b);
            }
            mpq_set_num(out, a);
            mpq_set_den(out, b);
            mpq_canonicalize(out);
            mpz_clear(a);
            mpz_clear(b);
            rc = 0;
        }
    }
    mpq_clear(e);
    return rc;
}

static int exact(const mv_node *x, mpq_t out) {
    mpq_t t;
    int rc = -1;
    if (!spend()) return -1;
    switch (x->kind) {
    case MV_NUM: return number_to_q(x->str, out);
    case MV_NEG:
        if (exact(x->kid[0], out)) return -1;
        mpq_neg(out, out);
        return 0;
    case MV_ADD:
    case MV_MUL:
        if (exact(x->kid[0], out)) return -1;
        mpq_init(t);
        rc = 0;
        for (int i = 1; i < x->n && rc == 0; i++) {
            if (exact(x->kid[i], t) || too_big(t)) rc = -1;
            else if (x->kind == MV_ADD) mpq_add(out, out, t);
            else mpq_mul(out, out, t);
            if (too_big(out)) rc = -1;
        }
        mpq_clear(t);
        return rc;
    case MV_DIV:
        if (exact(x->kid[0], out)) return -1;
        mpq_init(t);
        if (exact(x->kid[1], t) == 0 && mpq_sgn(t) != 0) {
            mpq_div(out, out, t);
            rc = 0;
        }
        mpq_clear(t);
        return rc;
    case MV_POW: return exact_pow(x, out);
    case MV_PERCENT:
        if (exact(x->kid[0], out)) return -1;
        mpq_init(t);
        mpq_set_ui(t, 1, 100);
        mpq_mul(out, out, t);
        mpq_clear(t);
        return 0;
    case MV_FACT:
        if (exact(x->kid[0], out) || mpz_cmp_ui(mpq_denref(out), 1) || mpq_sgn(out) < 0 ||
            mpz_cmp_ui(mpq_numref(out), MV_MAX_FACT) > 0)
            return -1;
        mpz_fac_ui(mpq_numref(out), mpz_get_ui(mpq_numref(out)));
        return 0;
    case MV_BINOM:
        if (exact(x->kid[0], out)) return -1;
        mpq_init(t);
        if (exact(x->kid[1], t) == 0 && !mpz_cmp_ui(mpq_denref(out), 1) && !mpz_cmp_ui(mpq_denref(t), 1) && mpq_sgn(t) >= 0 &&
            mpz_cmp_ui(mpq_numref(t), MV_MAX_FACT) <= 0 && mpz_sizeinbase(mpq_numref(out), 2) < 64) {
            mpz_bin_ui(mpq_numref(out), mpq_numref(out), mpz_get_ui(mpq_numref(t)));
            rc = 0;
        }
        mpq_clear(t);
        return rc;
    case MV_ABS:
        if (exact(x->kid[0], out)) return -1;
        mpq_abs(out, out);
        return 0;
    case MV_FUNC:
        if (!strcmp(x->str, "sqrt") && x->n == 1) {
            if (exact(x->kid[0], out)) return -1;
            return exact_root(out, 2);
        }
        return -1;
    case MV_ROOT:
        mpq_init(t);
        if (exact(x->kid[0], t) == 0 && !mpz_cmp_ui(mpq_denref(t), 1) && mpz_cmp_ui(mpq_numref(t), 1) >= 0 &&
            mpz_cmp_ui(mpq_numref(t), 64) <= 0 && exact(x->kid[1], out) == 0)
            rc = exact_root(out, mpz_get_ui(mpq_numref(t)));
        mpq_clear(t);
        return rc;
    default: return -1;
    }
}

int mv_eval_exact(const mv_node *x, mpq_t out) { return exact(x, out); }

// ---------------------------------------------------------------- numeric (complex)

void mv_cval_init(mv_cval *v) {
    mpfr_init2(v->re, MV_PREC);
    mpfr_init2(v->im, MV_PREC);
    mpfr_set_zero(v->re, 1);
    mpfr_set_zero(v->im, 1);
}

void mv_cval_clear(mv_cval *v) {
    mpfr_clear(v->re);
    mpfr_clear(v->im);
}

static int is_real(const mv_cval *v) { return mpfr_zero_p(v->im); }

static void c_mul(mv_cval *r, const mv_cval *a, const mv_cval *b) {
    if (is_real(a) && is_real(b)) {
        mpfr_mul(r->re, a->re, b->re, MPFR_RNDN);
        mpfr_set_zero(r->im, 1);
        return;
    }
    mpfr_t t1, t2, t3;
    mpfr_inits2(MV_PREC, t1, t2, t3, (mpfr_ptr)0);
    mpfr_mul(t1, a->re, b->re, MPFR_RNDN);
    mpfr_mul(t2, a->im, b->im, MPFR_RNDN);
    mpfr_mul(t3, a->re, b->im, MPFR_RNDN);
    mpfr_mul(r->im, a->im, b->re, MPFR_RNDN);
    mpfr_add(r->im, r->im, t3, MPFR_RNDN);
    mpfr_sub(r->re, t1, t2, MPFR_RNDN);
    mpfr_clears(t1, t2, t3, (mpfr_ptr)0);
}

static int c_div(mv_cval *r, const mv_cval *a, const mv_cval *b) {
    if (mpfr_zero_p(b->re) && mpfr_zero_p(b->im)) return -1;
    if (is_real(a) && is_real(b)) {
        mpfr_div(r->re, a->re, b->re, MPFR_RNDN);
        mpfr_set_zero(r->im, 1);
        return 0;
    }
    mpfr_t den, t1, t2, re;
    mpfr_inits2(MV_PREC, den, t1, t2, re, (mpfr_ptr)0);
    mpfr_sqr(den, b->re, MPFR_RNDN);
    mpfr_sqr(t1, b->im, MPFR_RNDN);
    mpfr_add(den, den, t1, MPFR_RNDN);
    mpfr_mul(t1, a->re, b->re, MPFR_RNDN);
    mpfr_mul(t2, a->im, b->im, MPFR_RNDN);
    mpfr_add(re, t1, t2, MPFR_RNDN);
    mpfr_mul(t1, a->im, b->re, MPFR_RNDN);
    mpfr_mul(t2, a->re, b->im, MPFR_RNDN);
    mpfr_sub(r->im, t1, t2, MPFR_RNDN);
    mpfr_div(r->im, r->im, den, MPFR_RNDN);
    mpfr_div(r->re, re, den, MPFR_RNDN);
    mpfr_clears(den, t1, t2, re, (mpfr_ptr)0);
    return 0;
}

// log z = ln|z| + i arg z
static void c_log(mv_cval *r, const mv_cval *a) {
    mpfr_t m;
    mpfr_init2(m, MV_PREC);
    mpfr_hypot(m, a->re, a->im, MPFR_RNDN);
    mpfr_atan2(r->im, a->im, a->re, MPFR_RNDN);
    mpfr_log(r->re, m, MPFR_RNDN);
    mpfr_clear(m);
}

// Arguments of sin/cos past 2^64 cost MPFR an exact reduction modulo pi of their full size.
static int huge(const mpfr_t x) { return mpfr_regular_p(x) && mpfr_get_exp(x) > 64; }

// Below 2^-(2 MV_PREC) a value is zero for every comparison here; MPFR's sinh/cosh of such a
// value works at a precision proportional to its exponent (seconds for 2^-10^7), so flush it.
static void flush_tiny(mpfr_t x) {
    if (mpfr_regular_p(x) && mpfr_get_exp(x) < -2 * MV_PREC) mpfr_set_zero(x, 1);
}

// e^x past |x| >= 2^30 over- or underflows any exponent range we use: no value to compare.
static int exp_range(const mpfr_t x) { return mpfr_regular_p(x) && mpfr_get_exp(x) > 30; }

static int c_exp(mv_cval *r, const mv_cval *a) {
    if (huge(a->im) || exp_range(a->re)) return -1;
    mpfr_t m, s, c, im;
    mpfr_inits2(MV_PREC, m, s, c, im, (mpfr_ptr)0);
    mpfr_set(im, a->im, MPFR_RNDN);
    flush_tiny(im);
    mpfr_exp(m, a->re, MPFR_RNDN);
    mpfr_sin_cos(s, c, im, MPFR_RNDN);
    mpfr_mul(r->re, m, c, MPFR_RNDN);
    mpfr_mul(r->im, m, s, MPFR_RNDN);
    mpfr_clears(m, s, c, im, (mpfr_ptr)0);
    return 0;
}

// a^b: real where the real result exists (negative base with integer exponent, odd roots stay
// principal complex as in most CAS), else exp(b log a).
static int c_pow(mv_cval *r, const mv_cval *a, const mv_cval *b) {
    // |a^b| beyond 2^(2^24) (or below its inverse) is no answer anyone writes: give up in O(1)
    // instead of letting MPFR work towards an overflow
    double la = log2(hypot(mpfr_get_d(a->re, MPFR_RNDN), mpfr_get_d(a->im, MPFR_RNDN)));
    double mb = hypot(mpfr_get_d(b->re, MPFR_RNDN), mpfr_get_d(b->im, MPFR_RNDN));
    if (isfinite(la) && la != 0 && fabs(la) * mb > 16777216.0) return -1;
    if (!isfinite(mb)) return -1;
    if (is_real(a) && is_real(b)) {
        if (mpfr_sgn(a->re) >= 0 || mpfr_integer_p(b->re)) {
            if (mpfr_zero_p(a->re) && mpfr_sgn(b->re) < 0) return -1;
            mpfr_pow(r->re, a->re, b->re, MPFR_RNDN);
            mpfr_set_zero(r->im, 1);
            return 0;
        }
    }
    if (mpfr_zero_p(a->re) && mpfr_zero_p(a->im)) {
        if (is_real(b) && mpfr_sgn(b->re) > 0) {
            mpfr_set_zero(r->re, 1);
            mpfr_set_zero(r->im, 1);
            return 0;
        }
        return -1;
    }
    if (is_real(b) && mpfr_integer_p(b->re) && mpfr_cmpabs_ui(b->re, 64) <= 0) {  // exact repeated product
        long e = mpfr_get_si(b->re, MPFR_RNDN);
        mv_cval acc, base;
        mv_cval_init(&acc);
        mv_cval_init(&base);
        mpfr_set_ui(acc.re, 1, MPFR_RNDN);
        mpfr_set(base.re, a->re, MPFR_RNDN);
        mpfr_set(base.im, a->im, MPFR_RNDN);
        for (long k = labs(e); k > 0; k >>= 1) {
            if (k & 1) c_mul(&acc, &acc, &base);
            c_mul(&base, &base, &base);
        }
        int rc = 0;
        if (e < 0) {
            mv_cval one;
            mv_cval_init(&one);
            mpfr_set_ui(one.re, 1, MPFR_RNDN);
            rc = c_div(r, &one, &acc);
            mv_cval_clear(&one);
        } else {
            mpfr_set(r->re, acc.re, MPFR_RNDN);
            mpfr_set(r->im, acc.im, MPFR_RNDN);
        }
        mv_cval_clear(&acc);
        mv_cval_clear(&base);
        return rc;
    }
    mv_cval l;
    mv_cval_init(&l);
    c_log(&l, a);
    c_mul(&l, &l, b);
    int rc = c_exp(r, &l);
    mv_cval_clear(&l);
    return rc;
}

// A smooth, deterministic stand-in for an undefined function f: f(t) = sin(a t + b) + c t.
static int ufunc_value(const char *name, const mv_cval *arg, mv_cval *out) {
    if (!is_real(arg) || huge(arg->re)) return -1;
    uint64_t h = rng_fnv1a_str(name);
    double a = 0.5 + (double)(h & 0xffff) / 65536.0, b = (double)((h >> 16) & 0xffff) / 65536.0,
           c = (double)((h >> 32) & 0xffff) / 131072.0;
    mpfr_t t;
    mpfr_init2(t, MV_PREC);
    mpfr_mul_d(t, arg->re, a, MPFR_RNDN);
    mpfr_add_d(t, t, b, MPFR_RNDN);
    flush_tiny(t);
    mpfr_sin(t, t, MPFR_RNDN);
    mpfr_mul_d(out->re, arg->re, c, MPFR_RNDN);
    mpfr_add(out->re, out->re, t, MPFR_RNDN);
    mpfr_set_zero(out->im, 1);
    mpfr_clear(t);
    return 0;
}

typedef struct {
    const mv_env *env;
    const char *bound_name;  // \sum index
    long bound_val;
    int steps;               // work counter (nodes visited)
} num_ctx;

static int num(num_ctx *c, const mv_node *x, mv_cval *out);

static int real_fn(const char *f, mpfr_t r, mpfr_t a) {
    flush_tiny(a);
    if (!strcmp(f, "arcsin") || !strcmp(f, "arccos")) {
        if (mpfr_cmpabs_ui(a, 1) > 0) return -1;
        return !strcmp(f, "arcsin") ? mpfr_asin(r, a, MPFR_RNDN) : mpfr_acos(r, a, MPFR_RNDN), 0;
    }
    if (!strcmp(f, "arctan")) return mpfr_atan(r, a, MPFR_RNDN), 0;
    if (!strcmp(f, "arccot")) {
        if (mpfr_zero_p(a)) return -1;
        mpfr_ui_div(r, 1, a, MPFR_RNDN);
        return mpfr_atan(r, r, MPFR_RNDN), 0;
    }
    if ((!strcmp(f, "sinh") || !strcmp(f, "cosh")) && exp_range(a)) return -1;
    if (!strcmp(f, "sinh")) return mpfr_sinh(r, a, MPFR_RNDN), 0;
    if (!strcmp(f, "cosh")) return mpfr_cosh(r, a, MPFR_RNDN), 0;
    if (!strcmp(f, "tanh")) return mpfr_tanh(r, a, MPFR_RNDN), 0;
    if (!strcmp(f, "floor")) return mpfr_floor(r, a), 0;
    if (!strcmp(f, "ceil")) return mpfr_ceil(r, a), 0;
    if (!strcmp(f, "lg")) {
        if (mpfr_sgn(a) <= 0) return -1;
        return mpfr_log10(r, a, MPFR_RNDN), 0;
    }
    return -1;
}

static int num_func(num_ctx *c, const mv_node *x, mv_cval *out) {
    const char *f = x->str;
    mv_cval a;
    mv_cval_init(&a);
    int rc = -1;
    if (x->n < 1 || num(c, x->kid[0], &a)) goto done;
    if (!strcmp(f, "sqrt")) {
        mv_cval half;
        mv_cval_init(&half);
        mpfr_set_d(half.re, 0.5, MPFR_RNDN);
        if (is_real(&a) && mpfr_sgn(a.re) >= 0) {
            mpfr_sqrt(out->re, a.re, MPFR_RNDN);
            mpfr_set_zero(out->im, 1);
            rc = 0;
        } else {
            rc = c_pow(out, &a, &half);
        }
        mv_cval_clear(&half);
    } else if (!strcmp(f, "exp")) {
        rc = c_exp(out, &a);
    } else if (!strcmp(f, "ln") || !strcmp(f, "log")) {
        if (mpfr_zero_p(a.re) && mpfr_zero_p(a.im)) goto done;
        c_log(out, &a);
        rc = 0;
        if (x->n == 2) {  // \log_b a
            mv_cval b, lb;
            mv_cval_init(&b);
            mv_cval_init(&lb);
            if (num(c, x->kid[1], &b) == 0 && !(mpfr_zero_p(b.re) && mpfr_zero_p(b.im))) {
                c_log(&lb, &b);
                rc = c_div(out, out, &lb);
            } else {
                rc = -1;
            }
            mv_cval_clear(&b);
            mv_cval_clear(&lb);
        }
    } else if (!strcmp(f, "sin") || !strcmp(f, "cos") || !strcmp(f, "tan") || !strcmp(f, "sec") || !strcmp(f, "csc") ||
               !strcmp(f, "cot")) {
        // sin(a+bi) = sin a cosh b + i cos a sinh b; cos(a+bi) = cos a cosh b - i sin a sinh b.
        // MPFR reduces a huge argument modulo pi exactly (millions of digits of pi for 3333322!):
        // beyond 2^64 there is no meaningful value to compare, so give up at once.
        if (huge(a.re) || exp_range(a.im)) goto done;
        flush_tiny(a.re);
        flush_tiny(a.im);
        mv_cval s, co;
        mv_cval_init(&s);
        mv_cval_init(&co);
        mpfr_t sa, ca, chb, shb;
        mpfr_inits2(MV_PREC, sa, ca, chb, shb, (mpfr_ptr)0);
        mpfr_sin_cos(sa, ca, a.re, MPFR_RNDN);
        mpfr_sinh_cosh(shb, chb, a.im, MPFR_RNDN);
        mpfr_mul(s.re, sa, chb, MPFR_RNDN);
        mpfr_mul(s.im, ca, shb, MPFR_RNDN);
        mpfr_mul(co.re, ca, chb, MPFR_RNDN);
        mpfr_mul(co.im, sa, shb, MPFR_RNDN);
        mpfr_neg(co.im, co.im, MPFR_RNDN);
        mpfr_clears(sa, ca, chb, shb, (mpfr_ptr)0);
        mv_cval one;
        mv_cval_init(&one);
        mpfr_set_ui(one.re, 1, MPFR_RNDN);
        if (!strcmp(f, "sin")) { mpfr_set(out->re, s.re, MPFR_RNDN); mpfr_set(out->im, s.im, MPFR_RNDN); rc = 0; }
        else if (!strcmp(f, "cos")) { mpfr_set(out->re, co.re, MPFR_RNDN); mpfr_set(out->im, co.im, MPFR_RNDN); rc = 0; }
        else if (!strcmp(f, "tan")) rc = c_div(out, &s, &co);
        else if (!strcmp(f, "cot")) rc = c_div(out, &co, &s);
        else if (!strcmp(f, "sec")) rc = c_div(out, &one, &co);
        else rc = c_div(out, &one, &s);
        mv_cval_clear(&s);
        mv_cval_clear(&co);
        mv_cval_clear(&one);
    } else if (!strcmp(f, "max") || !strcmp(f, "min")) {
        if (!is_real(&a)) goto done;
        mpfr_set(out->re, a.re, MPFR_RNDN);
        mpfr_set_zero(out->im, 1);
        rc = 0;
        for (int i = 1; i < x->n && rc == 0; i++) {
            mv_cval b;
            mv_cval_init(&b);
            if (num(c, x->kid[i], &b) || !is_real(&b)) rc = -1;
            else if (!strcmp(f, "max") ? mpfr_greater_p(b.re, out->re) : mpfr_less_p(b.re, out->re))
                mpfr_set(out->re, b.re, MPFR_RNDN);
            mv_cval_clear(&b);
        }
    } else if (x->n == 1 && is_real(&a)) {
        rc = real_fn(f, out->re, a.re);
        mpfr_set_zero(out->im, 1);
    }
done:
    mv_cval_clear(&a);
    return rc;
}

static int num_sum(num_ctx *c, const mv_node *x, mv_cval *out) {
    mv_cval lo, hi, t;
    mv_cval_init(&lo);
    mv_cval_init(&hi);
    mv_cval_init(&t);
    int rc = -1;
    if (num(c, x->kid[1], &lo) || num(c, x->kid[2], &hi) || !is_real(&lo) || !is_real(&hi) || !mpfr_integer_p(lo.re) ||
        !mpfr_integer_p(hi.re))
        goto done;
    long a = mpfr_get_si(lo.re, MPFR_RNDN), b = mpfr_get_si(hi.re, MPFR_RNDN);
    if (b - a > MV_MAX_SUM_TERMS) goto done;
    int prod = !strcmp(x->str, "prod");
    mpfr_set_ui(out->re, prod ? 1 : 0, MPFR_RNDN);
    mpfr_set_zero(out->im, 1);
    num_ctx inner = *c;
    inner.bound_name = x->kid[0]->str;
    rc = 0;
    for (long k = a; k <= b && rc == 0; k++) {
        inner.bound_val = k;
        if (num(&inner, x->kid[3], &t)) rc = -1;
        else if (prod) c_mul(out, out, &t);
        else {
            mpfr_add(out->re, out->re, t.re, MPFR_RNDN);
            mpfr_add(out->im, out->im, t.im, MPFR_RNDN);
        }
    }
    c->steps = inner.steps;
done:
    mv_cval_clear(&lo);
    mv_cval_clear(&hi);
    mv_cval_clear(&t);
    return rc;
}

static int num(num_ctx *c, const mv_node *x, mv_cval *out) {
    if (++c->steps > 10000 || !spend()) return -1;
    mv_cval t;
    int rc = 0;
    switch (x->kind) {
    case MV_NUM:
        if (mpfr_set_str(out->re, x->str, 10, MPFR_RNDN)) return -1;
        mpfr_set_zero(out->im, 1);
        return 0;
    case MV_SYM:
        if (c->bound_name && !strcmp(c->bound_name, x->str)) {
            mpfr_set_si(out->re, c->bound_val, MPFR_RNDN);
            mpfr_set_zero(out->im, 1);
            return 0;
        }
        for (int i = 0; c->env && i < c->env->nvars; i++)
            if (!strcmp(c->env->names[i], x->str)) {
                mpfr_set_d(out->re, c->env->vals[i], MPFR_RNDN);
                mpfr_set_zero(out->im, 1);
                return 0;
            }
        return -1;
    case MV_CONST:
        mpfr_set_zero(out->im, 1);
        if (!strcmp(x->str, "pi")) mpfr_const_pi(out->re, MPFR_RNDN);
        else if (!strcmp(x->str, "e")) {
            mpfr_set_ui(out->re, 1, MPFR_RNDN);
            mpfr_exp(out->re, out->re, MPFR_RNDN);
        } else {
            mpfr_set_zero(out->re, 1);
            mpfr_set_ui(out->im, 1, MPFR_RNDN);
        }
        return 0;
    case MV_NEG:
        if (num(c, x->kid[0], out)) return -1;
        mpfr_neg(out->re, out->re, MPFR_RNDN);
        mpfr_neg(out->im, out->im, MPFR_RNDN);
        return 0;
    case MV_ADD:
    case MV_MUL:
        if (num(c, x->kid[0], out)) return -1;
        mv_cval_init(&t);
        for (int i = 1; i < x->n && rc == 0; i++) {
            if (num(c, x->kid[i], &t)) rc = -1;
            else if (x->kind == MV_MUL) c_mul(out, out, &t);
            else {
                mpfr_add(out->re, out->re, t.re, MPFR_RNDN);
                mpfr_add(out->im, out->im, t.im, MPFR_RNDN);
            }
        }
        mv_cval_clear(&t);
        return rc;
    case MV_DIV:
    case MV_POW:
        if (num(c, x->kid[0], out)) return -1;
        mv_cval_init(&t);
        if (num(c, x->kid[1], &t)) rc = -1;
        else rc = x->kind == MV_DIV ? c_div(out, out, &t) : c_pow(out, out, &t);
        mv_cval_clear(&t);
        return rc;
    case MV_PERCENT:
        if (num(c, x->kid[0], out)) return -1;
        mpfr_div_ui(out->re, out->re, 100, MPFR_RNDN);
        mpfr_div_ui(out->im, out->im, 100, MPFR_RNDN);
        return 0;
    case MV_ABS:
        if (num(c, x->kid[0], out)) return -1;
        mpfr_hypot(out->re, out->re, out->im, MPFR_RNDN);
        mpfr_set_zero(out->im, 1);
        return 0;
    case MV_FACT:
        if (num(c, x->kid[0], out) || !is_real(out) || mpfr_cmp_si(out->re, -1) <= 0) return -1;
        if (mpfr_integer_p(out->re) && mpfr_sgn(out->re) < 0) return -1;
        mpfr_add_ui(out->re, out->re, 1, MPFR_RNDN);
        // MPFR's gamma of a large integer is exact and slow (millions of digits): use exp(lngamma)
        if (mpfr_cmp_ui(out->re, 1000) > 0) {
            mpfr_lngamma(out->re, out->re, MPFR_RNDN);
            mpfr_exp(out->re, out->re, MPFR_RNDN);
        } else {
            mpfr_gamma(out->re, out->re, MPFR_RNDN);
        }
        return 0;
    case MV_BINOM: {
        mv_cval_init(&t);
        rc = -1;
        if (num(c, x->kid[0], out) == 0 && num(c, x->kid[1], &t) == 0 && is_real(out) && is_real(&t) &&
            mpfr_integer_p(t.re) && mpfr_sgn(t.re) >= 0 && mpfr_cmp_ui(t.re, MV_MAX_FACT) <= 0) {
            // C(n, k) = prod_{j<k} (n - j) / (j + 1), exact for real n too
            long k = mpfr_get_si(t.re, MPFR_RNDN);
            mpfr_t acc, term;
            mpfr_inits2(MV_PREC, acc, term, (mpfr_ptr)0);
            mpfr_set_ui(acc, 1, MPFR_RNDN);
            long j = 0;
            for (; j < k && spend(); j++) {
                mpfr_sub_si(term, out->re, j, MPFR_RNDN);
                mpfr_mul(acc, acc, term, MPFR_RNDN);
                mpfr_div_si(acc, acc, j + 1, MPFR_RNDN);
            }
            mpfr_set(out->re, acc, MPFR_RNDN);
            mpfr_clears(acc, term, (mpfr_ptr)0);
            rc = j == k ? 0 : -1;  // the work budget ran out first
        }
        mv_cval_clear(&t);
        return rc;
    }
    case MV_ROOT: {
        mv_cval_init(&t);
        rc = -1;
        if (num(c, x->kid[0], &t) == 0 && num(c, x->kid[1], out) == 0 && is_real(&t) && !mpfr_zero_p(t.re)) {
            if (is_real(out) && mpfr_sgn(out->re) < 0 && mpfr_integer_p(t.re) && mpfr_get_si(t.re, MPFR_RNDN) % 2 != 0) {
                // odd root of a negative real: the real root
                mpfr_neg(out->re, out->re, MPFR_RNDN);
                mpfr_ui_div(t.re, 1, t.re, MPFR_RNDN);
                mpfr_pow(out->re, out->re, t.re, MPFR_RNDN);
                mpfr_neg(out->re, out->re, MPFR_RNDN);
                rc = 0;
            } else {
                mpfr_ui_div(t.re, 1, t.re, MPFR_RNDN);
                rc = c_pow(out, out, &t);
            }
        }
        mv_cval_clear(&t);
        return rc;
    }
    case MV_FUNC: return num_func(c, x, out);
    case MV_UFUNC:
        if (x->n != 1 || !strcmp(x->str, "prime")) return -1;
        mv_cval_init(&t);
        rc = num(c, x->kid[0], &t) ? -1 : ufunc_value(x->str, &t, out);
        mv_cval_clear(&t);
        return rc;
    case MV_SUM: return num_sum(c, x, out);
    default: return -1;
    }
}

int mv_eval_num(const mv_node *x, const mv_env *env, mv_cval *out) {
    num_ctx c = {env, NULL, 0, 0};
    int rc = num(&c, x, out);
    if (rc == 0 && (!mpfr_number_p(out->re) || !mpfr_number_p(out->im))) rc = -1;
    return rc;
}

// ---------------------------------------------------------------- free variables

static void collect(const mv_node *x, const char **names, int *n, int cap, const char *bound) {
    if (x->kind == MV_SYM) {
        if (bound && !strcmp(bound, x->str)) return;
        for (int i = 0; i < *n; i++)
            if (!strcmp(names[i], x->str)) return;
        if (*n < cap) names[(*n)++] = x->str;
        return;
    }
    if (x->kind == MV_SUM) {
        for (int i = 1; i < 4; i++) collect(x->kid[i], names, n, cap, i == 3 ? x->kid[0]->str : bound);
        return;
    }
    for (int i = 0; i < x->n; i++) collect(x->kid[i], names, n, cap, bound);
}

static int cmp_name(const void *a, const void *b) { return strcmp(*(const char *const *)a, *(const char *const *)b); }

int mv_free_vars(const mv_node *x, const char **names, int cap) {
    int n = 0;
    collect(x, names, &n, cap, NULL);
    qsort(names, (size_t)n, sizeof(char *), cmp_name);
    return n;
}

int mv_has_float(const mv_node *x) {
    if (x->kind == MV_NUM) return (x->flags & MV_F_FLOAT) != 0;
    for (int i = 0; i < x->n; i++)
        if (mv_has_float(x->kid[i])) return 1;
    return 0;
}
