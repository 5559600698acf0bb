// tests/testutil.h — small helpers shared by the C tests: deterministic random fills, error
// measures, and a pass/fail tally that ends each test with one clear line.
// A test program returns test_finish() from main: 0 when every check passed.
#ifndef CISPO_TESTS_TESTUTIL_H
#define CISPO_TESTS_TESTUTIL_H

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "base/rng.h"

static int test_failures = 0, test_checks = 0;

// Deterministic draws from base's RNG stream (base/rng.h); test_uniform is uniform in [lo, hi).
static inline uint64_t test_rng_next(uint64_t *s) { return rng_next(s); }
static inline double test_uniform(uint64_t *s, double lo, double hi) {
    return lo + (hi - lo) * rng_unit(test_rng_next(s));
}
static inline void test_fill(float *x, size_t n, uint64_t *s, double lo, double hi) {
    for (size_t i = 0; i < n; i++) x[i] = (float)test_uniform(s, lo, hi);
}

static inline double test_max_abs_diff(const float *a, const float *b, size_t n) {
    double m = 0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - (double)b[i]);
        if (d != d) return INFINITY;  // NaN never passes
        if (d > m) m = d;
    }
    return m;
}
// ||a - b|| / ||b|| (b is the reference); NaN anywhere gives INFINITY.
static inline double test_rel_l2(const float *a, const float *b, size_t n) {
    double num = 0, den = 0;
    for (size_t i = 0; i < n; i++) {
        double d = (double)a[i] - (double)b[i];
        num += d * d;
        den += (double)b[i] * (double)b[i];
    }
    if (num != num || den != den) return INFINITY;
    return den > 0 ? sqrt(num / den) : sqrt(num);
}
// max_i |a_i - b_i| / (floor + |b_i|) (b is the reference); NaN counts as the worst.
static inline double test_max_rel_diff(const float *a, const float *b, size_t n, double floor) {
    double w = 0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - b[i]) / (floor + fabs((double)b[i]));
        if (!(d <= w)) w = d;
    }
    return w;
}

// Records one check; prints a line for failures (and for passes when verbose).
static inline int test_check(int ok, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
#include <stdarg.h>
static inline int test_check(int ok, const char *fmt, ...) {
    test_checks++;
    if (!ok) test_failures++;
    if (!ok || getenv("TEST_VERBOSE")) {
        va_list ap;
        va_start(ap, fmt);
        printf("%s ", ok ? "ok  " : "FAIL");
        vprintf(fmt, ap);
        printf("\n");
        va_end(ap);
    }
    return ok;
}
// Compares with tolerance: passes when err <= tol (and err is not NaN).
#define TEST_LE(err, tol, ...) test_check((err) <= (tol), __VA_ARGS__)

static inline int test_finish(const char *name) {
    printf("%s: %d checks, %d failed: %s\n", name, test_checks, test_failures, test_failures ? "FAILED" : "overall okay");
    return test_failures ? 1 : 0;
}

#endif
