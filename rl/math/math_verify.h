// rl/math/math_verify.h — the math answer checker: gold answer + full model response -> verdict.
// defines: math_opts_t, math_opts_default, math_verify, math_verify_opts, math_extract_answer
//
// Pipeline (docs/verifiers.md, math section): extract the final answer from the response (after the
// last </think>; last \boxed{}; "answer is" phrases; last LaTeX span; last number), normalise it
// (Unicode, separators, units, percent, malformed LaTeX), parse it into an expression tree, and
// compare it with the parsed gold: exact rationals (GMP), printed-precision floats, evaluation at
// random points (MPFR) for symbolic expressions, and structure rules for tuples, sets, intervals,
// matrices, equations and inequalities. The gold is compared first (one-directional rules such as
// "x = 3" vs "3" follow the gold's form). Every step is bounded: a pathological answer is judged
// wrong quickly, never a hang.
#ifndef CISPO_RL_MATH_VERIFY_H
#define CISPO_RL_MATH_VERIFY_H

#include <stddef.h>

#include "rl/verifier.h"

typedef struct {
    int strict;        // 1: variable names matter (f(x) != f(y)); 0: variables matched by sorted position
    int set_relation;  // 1: a gold set also matches a relation (x \in [a,b] vs a \le x \le b); a gold
                       //    relation always matches an equal set
    int lenient_decimals;  // 1: a decimal answer for an irrational gold (3.14 for \pi) is right when the
                           //    gold rounds to it at its printed precision; 0: wrong (a rational gold
                           //    such as 1/3 vs 0.333 is judged by rounding either way)
} math_opts_t;

// strict = 1, set_relation = 1, lenient_decimals = 0
extern const math_opts_t math_opts_default;

// Fills *out (correct, reward, extracted, reason). Returns 0; -1 only on NULL arguments.
int math_verify(const char *gold, const char *response, verdict_t *out);
int math_verify_opts(const char *gold, const char *response, const math_opts_t *opts, verdict_t *out);

// The answer text the checker would extract from a response (normalised), into buf.
// Returns 1 when something was found, 0 when not (buf = "").
int math_extract_answer(const char *response, char *buf, size_t cap);

#endif
