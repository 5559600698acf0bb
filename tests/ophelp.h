// tests/ophelp.h — the op-test harness (in the manner of ggml's test-backend-ops): compares an fp32
// op against a naive double-precision reference, checks a backward against central finite
// differences of that double reference, checks that backward ops accumulate, times ops for --perf,
// and prints one line per op and case:  op  case  fwd <err>  grad <err>  ok|FAIL
// defines: ophelp_compare, ophelp_compare_i32, ophelp_gradcheck + ophelp_grad_err, ophelp_report,
//          ophelp_acc_begin / ophelp_acc_end, ophelp_time_us, ophelp_perf_line, fill/convert helpers.
//
// Errors:
//  - forward "nerr" = ||out - ref||_2 / ||ref||_2 (normalised error; ||out - ref|| when ref == 0),
//    "max" = max |out - ref|.
//  - backward: loss L = sum(out * R) with a random cotangent R; the op's gradient (its backward
//    called with dout = R) is compared against (L(x + h e_j) - L(x - h e_j)) / 2h computed on the
//    double reference; err = max_j |g_j - fd_j| / max(max_j |fd_j|, OPHELP_GRAD_FLOOR) over the
//    sampled elements j of every input (the error relative to the gradient's own scale).
// Include after tests/testutil.h (it uses test_check, test_rng_next, test_uniform).
#ifndef CISPO_TESTS_OPHELP_H
#define CISPO_TESTS_OPHELP_H

#include "tests/testutil.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define OPHELP_MAX_IN 8
#define OPHELP_GRAD_FLOOR 1e-3  // gradients below this scale are judged in absolute terms
#define OPHELP_FD_STEP 1e-5     // central-difference step, relative to max(1, |x_j|)

typedef struct {
    double max_abs;  // max |out - ref|
    double nerr;     // ||out - ref|| / ||ref||
} ophelp_err;

static inline void *ophelp_alloc(size_t n) {
    void *p = calloc(n ? n : 1, 1);
    if (!p) {
        fprintf(stderr, "ophelp: out of memory (%zu bytes)\n", n);
        abort();
    }
    return p;
}
static inline float *ophelp_floats(size_t n) { return ophelp_alloc(n * sizeof(float)); }
static inline double *ophelp_doubles(size_t n) { return ophelp_alloc(n * sizeof(double)); }

// A fresh double copy of an fp32 array (the reference works on exactly the op's inputs).
static inline double *ophelp_to_double(const float *x, size_t n) {
    double *d = ophelp_doubles(n);
    for (size_t i = 0; i < n; i++) d[i] = x[i];
    return d;
}
static inline void ophelp_fill_int(int32_t *x, size_t n, uint64_t *rng, int lo, int hi) {  // [lo, hi)
    for (size_t i = 0; i < n; i++) x[i] = lo + (int32_t)(test_rng_next(rng) % (uint64_t)(hi - lo));
}

static inline ophelp_err ophelp_compare(const float *out, const double *ref, size_t n) {
    ophelp_err e = {0, 0};
    double num = 0, den = 0;
    for (size_t i = 0; i < n; i++) {
        double d = (double)out[i] - ref[i];
        if (d != d) return (ophelp_err){INFINITY, INFINITY};  // NaN never passes
        if (fabs(d) > e.max_abs) e.max_abs = fabs(d);
        num += d * d;
        den += ref[i] * ref[i];
    }
    e.nerr = den > 0 ? sqrt(num / den) : sqrt(num);
    return e;
}
// Number of positions where two integer arrays differ.
static inline size_t ophelp_compare_i32(const int32_t *a, const int32_t *b, size_t n) {
    size_t bad = 0;
    for (size_t i = 0; i < n; i++) bad += a[i] != b[i];
    return bad;
}
// 1 when two fp32 arrays are bit-identical (determinism checks).
static inline int ophelp_same_bits(const float *a, const float *b, size_t n) {
    return memcmp(a, b, n * sizeof(float)) == 0;
}

// ---- accumulation: backward ops add into gradients, so tests start them at random values ----
// ophelp_acc_begin fills g with small random values and returns a copy; ophelp_acc_end subtracts the
// copy, leaving what the op added. An op that overwrote instead of accumulating fails the gradcheck.
static inline float *ophelp_acc_begin(float *g, size_t n, uint64_t *rng) {
    float *saved = ophelp_floats(n);
    for (size_t i = 0; i < n; i++) g[i] = saved[i] = (float)test_uniform(rng, -0.25, 0.25);
    return saved;
}
static inline void ophelp_acc_end(float *g, float *saved, size_t n) {
    for (size_t i = 0; i < n; i++) g[i] = (float)((double)g[i] - (double)saved[i]);
    free(saved);
}

// ---- finite differences on the double reference ----
// ref(out, in, ctx): the naive double reference, out [out_n] from the inputs in[0..n_in-1]
// (the same inputs, in the same order, that the gradcheck lists).
typedef void (*ophelp_ref_fn)(double *out, double *const *in, const void *ctx);

typedef struct {
    ophelp_ref_fn ref;
    const void *ctx;
    size_t out_n;
    const double *r;               // cotangent R [out_n]; the op's backward ran with dout = R
    int n_in;
    double *in[OPHELP_MAX_IN];     // double inputs (perturbed in place, restored after)
    size_t in_n[OPHELP_MAX_IN];
    const float *grad[OPHELP_MAX_IN];  // the op's gradient per input; NULL: input not differentiated
    int max_samples;               // elements checked per input (all when <= 0 or >= in_n)
} ophelp_gradcheck;

static inline double ophelp_loss(const ophelp_gradcheck *g, double *out) {
    g->ref(out, g->in, g->ctx);
    double l = 0;
    for (size_t i = 0; i < g->out_n; i++) l += out[i] * g->r[i];
    return l;
}

// Worst normalised gradient error over the inputs (see the file header); the worst input's index
// goes to *worst_in when not NULL.
static inline double ophelp_grad_err(ophelp_gradcheck *g, uint64_t *rng, int *worst_in) {
    double *out = ophelp_doubles(g->out_n);
    double worst = 0;
    if (worst_in) *worst_in = -1;
    for (int a = 0; a < g->n_in; a++) {
        if (!g->grad[a]) continue;
        size_t n = g->in_n[a];
        size_t ns = (g->max_samples <= 0 || (size_t)g->max_samples >= n) ? n : (size_t)g->max_samples;
        double maxdiff = 0, maxfd = 0;
        for (size_t s = 0; s < ns; s++) {
            // all elements when ns == n; otherwise the first, the last, and random ones between
            size_t j = ns == n ? s : s == 0 ? 0 : s == 1 ? n - 1 : (size_t)(test_rng_next(rng) % n);
            double x0 = g->in[a][j];
            double h = OPHELP_FD_STEP * (fabs(x0) > 1 ? fabs(x0) : 1);
            g->in[a][j] = x0 + h;
            double lp = ophelp_loss(g, out);
            g->in[a][j] = x0 - h;
            double lm = ophelp_loss(g, out);
            g->in[a][j] = x0;
            double fd = (lp - lm) / (2 * h);
            double d = fabs((double)g->grad[a][j] - fd);
            if (d != d) d = INFINITY;
            if (d > maxdiff) maxdiff = d;
            if (fabs(fd) > maxfd) maxfd = fabs(fd);
        }
        double err = maxdiff / (maxfd > OPHELP_GRAD_FLOOR ? maxfd : OPHELP_GRAD_FLOOR);
        if (err > worst || (err != err)) {
            worst = err != err ? INFINITY : err;
            if (worst_in) *worst_in = a;
        }
    }
    free(out);
    return worst;
}

// ---- reporting ----
// Per-op worst errors, so a test can print a summary table at the end.
typedef struct {
    char op[32];
    double fwd, grad;  // worst normalised errors seen (grad < 0: op has no backward case)
    int cases, failed;
} ophelp_worst;
#define OPHELP_MAX_OPS 64
static ophelp_worst ophelp_worst_table[OPHELP_MAX_OPS];
static int ophelp_n_worst = 0;

static inline ophelp_worst *ophelp_worst_for(const char *op) {
    for (int i = 0; i < ophelp_n_worst; i++)
        if (strcmp(ophelp_worst_table[i].op, op) == 0) return &ophelp_worst_table[i];
    if (ophelp_n_worst == OPHELP_MAX_OPS) return NULL;
    ophelp_worst *w = &ophelp_worst_table[ophelp_n_worst++];
    snprintf(w->op, sizeof w->op, "%s", op);
    w->fwd = 0;
    w->grad = -1;
    return w;
}

// One line per op and case; fwd_err/grad_err < 0 mean "not checked" (printed as "-").
// Passes when fwd_err <= fwd_tol and grad_err <= grad_tol (NaN fails). Returns 1 when ok.
static inline int ophelp_report(const char *op, const char *kase, double fwd_err, double fwd_tol, double grad_err,
                                double grad_tol) {
    int ok = 1;
    if (fwd_err >= 0 && !(fwd_err <= fwd_tol)) ok = 0;
    if (grad_err >= 0 && !(grad_err <= grad_tol)) ok = 0;
    if (fwd_err != fwd_err || grad_err != grad_err) ok = 0;
    char f[32] = "-", g[32] = "-";
    if (fwd_err >= 0 || fwd_err != fwd_err) snprintf(f, sizeof f, "%.2e", fwd_err);
    if (grad_err >= 0 || grad_err != grad_err) snprintf(g, sizeof g, "%.2e", grad_err);
    printf("  %-22s %-40s fwd %-9s grad %-9s %s\n", op, kase, f, g, ok ? "ok" : "FAIL");
    test_checks++;
    if (!ok) test_failures++;
    ophelp_worst *w = ophelp_worst_for(op);
    if (w) {
        w->cases++;
        w->failed += !ok;
        if (fwd_err > w->fwd || fwd_err != fwd_err) w->fwd = fwd_err;
        if (grad_err > w->grad || grad_err != grad_err) w->grad = grad_err;
    }
    return ok;
}

static inline void ophelp_print_worst(void) {
    printf("worst errors per op (normalised):\n");
    for (int i = 0; i < ophelp_n_worst; i++) {
        ophelp_worst *w = &ophelp_worst_table[i];
        char g[32] = "-";
        if (w->grad >= 0 || w->grad != w->grad) snprintf(g, sizeof g, "%.2e", w->grad);
        printf("  %-22s cases %3d  fwd %.2e  grad %-9s %s\n", w->op, w->cases, w->fwd, g,
               w->failed ? "FAIL" : "ok");
    }
}

// ---- perf (printed, never asserted) ----
static inline double ophelp_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}
// Microseconds per run of fn(ctx): one warm-up run, then runs until min_seconds have passed
// (at least 3 runs).
static inline double ophelp_time_us(void (*fn)(void *), void *ctx, double min_seconds) {
    fn(ctx);
    int runs = 0;
    double t0 = ophelp_now(), t;
    do {
        fn(ctx);
        runs++;
        t = ophelp_now();
    } while (runs < 3 || t - t0 < min_seconds);
    return (t - t0) * 1e6 / runs;
}
// flops: floating-point operations of one run (2 per multiply-add); bytes: memory touched (0: skip).
static inline void ophelp_perf_line(const char *op, const char *kase, double us, double flops, double bytes) {
    printf("  perf %-22s %-40s %10.1f us/run", op, kase, us);
    if (flops > 0) printf("  %8.2f GFLOP/s", flops / (us * 1e3));
    if (bytes > 0) printf("  %8.2f GB/s", bytes / (us * 1e3));
    printf("\n");
}

#endif
