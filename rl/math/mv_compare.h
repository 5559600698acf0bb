// rl/math/mv_compare.h — internals shared by the comparison files of the math checker:
// compare.c (entry, gold-first rules, values and collections), compare_scalar.c (exact, float and
// numeric equality of scalars), compare_rel.c (equations, inequalities, relations as sets),
// compare_sets.c (intervals, unions, finite sets).
// defines: cmp_t, comp_t, mvc_* functions
#ifndef CISPO_RL_MATH_MV_COMPARE_H
#define CISPO_RL_MATH_MV_COMPARE_H

#include "rl/math/mv_internal.h"

typedef struct {
    mv_cmp_ctx *c;
    mv_arena *a;
    int budget;  // comparisons left (bounds nested unordered matching)
} cmp_t;

// One component of a subset of the reals: an interval, or a point (hi == NULL).
typedef struct {
    mv_node *lo, *hi;
    int lopen, ropen;
} comp_t;

// compare.c
int mvc_equal(cmp_t *k, mv_node *g, mv_node *p);        // full comparison (relations, values)
int mvc_why(cmp_t *k, const char *w, int v);            // records the reason, returns v
int mvc_is_scalar(const mv_node *x);
int mvc_is_symbolish(const mv_node *x);                 // made only of names: x, |AB|, f(x), (p, q)
int mvc_is_setlike(const mv_node *x);
int mvc_is_equation(const mv_node *x);
int mvc_is_assignment(const mv_node *x);

// compare_scalar.c
int mvc_scalar_equal(cmp_t *k, mv_node *g, mv_node *p);
int mvc_numeric_equal(cmp_t *k, const mv_node *g, const mv_node *p);  // 1 / 0 / -1 undecided
int mvc_proportional(cmp_t *k, mv_node *fg, mv_node *fp, int positive);
int mvc_const_free(const mv_node *x);

// compare_rel.c
mv_node *mvc_trim_chain(cmp_t *k, mv_node *x);
mv_node *mvc_last_rhs(cmp_t *k, mv_node *x);
mv_node *mvc_unwrap_in(mv_node *x);
int mvc_flip(int op);
int mvc_rel_equal(cmp_t *k, mv_node *g, mv_node *p);
int mvc_rel_vs_set(cmp_t *k, mv_node *rel, mv_node *set);

// compare_sets.c
int mvc_components(cmp_t *k, mv_node *x, comp_t *c, int *n, int cap);
int mvc_member(const double *lo, const double *hi, const int *lop, const int *rop, const int *pt, int n, double t);
int mvc_perfect_matching(int n, const unsigned char *eq);
int mvc_sets_equal(cmp_t *k, mv_node *g, mv_node *p);
double mvc_to_double(const mv_node *x, int *ok);  // a real constant (+-oo for infinities)

#endif
