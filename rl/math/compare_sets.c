// rl/math/compare_sets.c — subsets of the reals: intervals (open/closed ends, infinities), unions
// and finite sets, compared component by component (any order), else by membership of every end,
// the points beside each end and midpoints (so [0,1) U [1,2] equals [0,2]).
// defines: mvc_components, mvc_member, mvc_perfect_matching, mvc_sets_equal
#include <ctype.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "rl/math/mv_compare.h"



int mvc_components(cmp_t *k, mv_node *x, comp_t *c, int *n, int cap) {
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
            if (mvc_components(k, x->kid[i], c, n, cap)) return -1;
        return 0;
    case MV_SET:
    case MV_LIST:
        for (int i = 0; i < x->n; i++) {
            if (*n == cap || !mvc_is_scalar(x->kid[i])) return -1;
            c[(*n)++] = (comp_t){x->kid[i], NULL, 0, 0};
        }
        return 0;
    case MV_EMPTYSET: return 0;
    default:
        if (!mvc_is_scalar(x) || *n == cap) return -1;
        c[(*n)++] = (comp_t){x, NULL, 0, 0};
        return 0;
    }
}

static int end_equal(cmp_t *k, mv_node *a, mv_node *b) {
    int ia = a->kind == MV_INF || (a->kind == MV_NEG && a->kid[0]->kind == MV_INF);
    int ib = b->kind == MV_INF || (b->kind == MV_NEG && b->kid[0]->kind == MV_INF);
    if (ia || ib) return ia && ib && (a->kind == MV_NEG) == (b->kind == MV_NEG);
    return mvc_scalar_equal(k, a, b);
}

static int comp_equal(cmp_t *k, const comp_t *a, const comp_t *b) {
    if ((a->hi == NULL) != (b->hi == NULL)) return 0;
    if (!a->hi) return mvc_scalar_equal(k, a->lo, b->lo);
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

int mvc_perfect_matching(int n, const unsigned char *eq) {
    int owner[64];
    unsigned char seen[64];
    for (int j = 0; j < n; j++) owner[j] = -1;
    for (int i = 0; i < n; i++) {
        memset(seen, 0, sizeof seen);
        if (!match_try(i, n, eq, owner, seen)) return 0;
    }
    return 1;
}

double mvc_to_double(const mv_node *x, int *ok) {
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

int mvc_member(const double *lo, const double *hi, const int *lop, const int *rop, const int *pt, int n, double t) {
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
            lo[idx] = mvc_to_double(all[s][i].lo, &ok);
            if (!ok) return 0;
            hi[idx] = all[s][i].hi ? mvc_to_double(all[s][i].hi, &ok) : lo[idx];
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
        if (mvc_member(lo, hi, lop, rop, pt, na, pts[i]) != mvc_member(lo + na, hi + na, lop + na, rop + na, pt + na, nb, pts[i])) return 0;
    return 1;
}

int mvc_sets_equal(cmp_t *k, mv_node *g, mv_node *p) {
    comp_t a[64], b[64];
    int na = 0, nb = 0;
    if (mvc_components(k, g, a, &na, 64) || mvc_components(k, p, b, &nb, 64)) return mvc_why(k, "different: not comparable sets", 0);
    if (na == nb) {
        unsigned char eq[64 * 64];
        for (int i = 0; i < na; i++)
            for (int j = 0; j < nb; j++) eq[i * nb + j] = (unsigned char)comp_equal(k, &a[i], &b[j]);
        if (mvc_perfect_matching(na, eq)) return mvc_why(k, "equal: same intervals", 1);
    }
    int ok = sets_by_membership(a, na, b, nb);
    return mvc_why(k, ok ? "equal: same set (membership)" : "different: sets differ", ok);
}

// A relation in one variable as a set: "0 < x <= 1" -> (0, 1]; "x != 3" -> (-oo,3) U (3,oo).