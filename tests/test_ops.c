// tests/test_ops.c — the dense CPU reference ops (kernels/ops.h) against naive double-precision
// references and central finite differences (tests/ophelp.h), over a table of cases per op: odd
// sizes, every transpose case, partial and full rotary (default, scaled and zero frequencies), every
// ACT2FN activation plain and gated, K = 1 and K > 1, E not a power of two, LM-head chunks that do not
// divide T, targets with -1 entries. Backward ops are checked to accumulate.
//   build-x/test_ops            one line per op and case, then the worst error per op
//   build-x/test_ops --perf     also us/run and GFLOP/s (or GB/s) for model-like shapes (not asserted)
#include "base/common.h"
#include "kernels/cpu/ops_cpu.h"
#include "tests/testutil.h"
#include "tests/act_ref.h"
#include "tests/ophelp.h"

#include <cblas.h>
#include <math.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FWD_TOL 1e-5   // normalised forward error of an fp32 op against its double reference
#define GRAD_TOL 1e-4  // normalised gradient error against double finite differences
#define FD_SAMPLES 160 // elements of each input probed by finite differences
#define M_PI_D 3.14159265358979323846

static uint64_t rng = 0x5eed0c15f0u;

// ===================================================================== matmul
typedef struct {
    int m, n, k, ta, tb;
    float alpha, beta;
    const double *c0;  // C before the call (the beta term)
} mm_ctx;

static double mm_at(const double *a, int rows_as_stored_cols, int i, int j, int trans) {
    // element (i, j) of op(X) where X is stored [I, J] (trans = 0) or [J, I] (trans = 1)
    return trans ? a[(size_t)j * rows_as_stored_cols + i] : a[(size_t)i * rows_as_stored_cols + j];
}
static void mm_ref(double *c, double *const *in, const void *vctx) {
    const mm_ctx *x = vctx;
    const double *a = in[0], *b = in[1];
    int lda = x->ta ? x->m : x->k, ldb = x->tb ? x->k : x->n;
    for (int i = 0; i < x->m; i++)
        for (int j = 0; j < x->n; j++) {
            double s = 0;
            for (int p = 0; p < x->k; p++) s += mm_at(a, lda, i, p, x->ta) * mm_at(b, ldb, p, j, x->tb);
            c[(size_t)i * x->n + j] = x->alpha * s + (x->beta != 0 ? x->beta * x->c0[(size_t)i * x->n + j] : 0);
        }
}

static void test_matmul(int m, int n, int k, int ta, int tb, float alpha, float beta) {
    char name[64];
    snprintf(name, sizeof name, "m%d n%d k%d %c%c a%g b%g", m, n, k, ta ? 'T' : 'N', tb ? 'T' : 'N', alpha, beta);
    size_t na = (size_t)m * k, nb = (size_t)k * n, nc = (size_t)m * n;
    float *a = ophelp_floats(na), *b = ophelp_floats(nb), *c = ophelp_floats(nc), *c2 = ophelp_floats(nc);
    test_fill(a, na, &rng, -1, 1);
    test_fill(b, nb, &rng, -1, 1);
    test_fill(c, nc, &rng, -1, 1);
    if (beta == 0)
        for (size_t i = 0; i < nc; i++) c[i] = NAN;  // beta = 0 must ignore C's old contents
    double *a_d = ophelp_to_double(a, na), *b_d = ophelp_to_double(b, nb), *c0 = ophelp_to_double(c, nc);
    memcpy(c2, c, nc * sizeof(float));
    mm_ctx ctx = {m, n, k, ta, tb, alpha, beta, c0};
    double *ref = ophelp_doubles(nc);
    double *in[2] = {a_d, b_d};
    mm_ref(ref, in, &ctx);
    matmul_cpu(c, a, b, m, n, k, ta, tb, alpha, beta);
    double fwd = ophelp_compare(c, ref, nc).nerr;
    matmul_cpu(c2, a, b, m, n, k, ta, tb, alpha, beta);
    if (!ophelp_same_bits(c, c2, nc)) fwd = INFINITY;  // reproducible run to run

    // The backward of C = alpha op(A) op(B) is two more GEMMs, as the layers' backward passes call them:
    //   dop(A) = alpha dC op(B)^T,  dop(B) = alpha op(A)^T dC.
    double *r = ophelp_doubles(nc);
    float *dc = ophelp_floats(nc);
    for (size_t i = 0; i < nc; i++) dc[i] = (float)(r[i] = test_uniform(&rng, -1, 1));
    float *da = ophelp_floats(na), *db = ophelp_floats(nb);
    float *sa = ophelp_acc_begin(da, na, &rng), *sb = ophelp_acc_begin(db, nb, &rng);
    if (!ta) matmul_cpu(da, dc, b, m, k, n, 0, !tb, alpha, 1.0f);    // dA [M,K] = dC op(B)^T
    else matmul_cpu(da, b, dc, k, m, n, tb, 1, alpha, 1.0f);         // dA [K,M] = op(B) dC^T
    if (!tb) matmul_cpu(db, a, dc, k, n, m, !ta, 0, alpha, 1.0f);    // dB [K,N] = op(A)^T dC
    else matmul_cpu(db, dc, a, n, k, m, 1, ta, alpha, 1.0f);         // dB [N,K] = dC^T op(A)
    ophelp_acc_end(da, sa, na);
    ophelp_acc_end(db, sb, nb);
    ophelp_gradcheck g = {mm_ref, &ctx, nc, r, 2, {a_d, b_d}, {na, nb}, {da, db}, FD_SAMPLES};
    double grad = ophelp_grad_err(&g, &rng, NULL);
    ophelp_report("matmul", name, fwd, FWD_TOL, grad, GRAD_TOL);
    free(a); free(b); free(c); free(c2); free(a_d); free(b_d); free(c0); free(ref); free(r); free(dc);
    free(da); free(db);
}

// ===================================================================== embedding
typedef struct {
    const int32_t *ids;
    int T, C;
} emb_ctx;
static void emb_ref(double *out, double *const *in, const void *vctx) {
    const emb_ctx *x = vctx;
    for (int t = 0; t < x->T; t++)
        for (int c = 0; c < x->C; c++) out[(size_t)t * x->C + c] = in[0][(size_t)x->ids[t] * x->C + c];
}
static void test_embedding(int V, int T, int C) {
    char name[64];
    snprintf(name, sizeof name, "V%d T%d C%d", V, T, C);
    size_t nt = (size_t)V * C, no = (size_t)T * C;
    float *table = ophelp_floats(nt), *out = ophelp_floats(no), *dtable = ophelp_floats(nt);
    int32_t *ids = ophelp_alloc((size_t)T * sizeof(int32_t));
    test_fill(table, nt, &rng, -1, 1);
    ophelp_fill_int(ids, (size_t)T, &rng, 0, V);  // T > V in some cases: repeated ids must sum
    double *t_d = ophelp_to_double(table, nt), *ref = ophelp_doubles(no), *r = ophelp_doubles(no);
    emb_ctx ctx = {ids, T, C};
    double *in[1] = {t_d};
    emb_ref(ref, in, &ctx);
    embedding_forward_cpu(out, ids, table, T, C);
    double fwd = ophelp_compare(out, ref, no).nerr;
    float *dout = ophelp_floats(no);
    for (size_t i = 0; i < no; i++) dout[i] = (float)(r[i] = test_uniform(&rng, -1, 1));
    float *s = ophelp_acc_begin(dtable, nt, &rng);
    embedding_backward_cpu(dtable, dout, ids, T, C);
    ophelp_acc_end(dtable, s, nt);
    ophelp_gradcheck g = {emb_ref, &ctx, no, r, 1, {t_d}, {nt}, {dtable}, 0};
    ophelp_report("embedding", name, fwd, 0.0, ophelp_grad_err(&g, &rng, NULL), GRAD_TOL);
    free(table); free(out); free(dtable); free(ids); free(t_d); free(ref); free(r); free(dout);
}

// ===================================================================== rmsnorm
typedef struct {
    int T, C;
    double eps;
} rms_ctx;
static void rms_ref(double *out, double *const *in, const void *vctx) {
    const rms_ctx *x = vctx;
    const double *xs = in[0], *w = in[1];
    for (int t = 0; t < x->T; t++) {
        double ss = 0;
        for (int c = 0; c < x->C; c++) ss += xs[(size_t)t * x->C + c] * xs[(size_t)t * x->C + c];
        double r = 1 / sqrt(ss / x->C + x->eps);
        for (int c = 0; c < x->C; c++) out[(size_t)t * x->C + c] = w[c] * xs[(size_t)t * x->C + c] * r;
    }
}
static void test_rmsnorm(int T, int C, float eps, double xscale) {
    char name[64];
    snprintf(name, sizeof name, "T%d C%d eps%g |x|<%g", T, C, eps, xscale);
    size_t n = (size_t)T * C;
    float *x = ophelp_floats(n), *w = ophelp_floats(C), *out = ophelp_floats(n), *rstd = ophelp_floats(T);
    test_fill(x, n, &rng, -xscale, xscale);
    test_fill(w, C, &rng, 0.5, 1.5);
    double *x_d = ophelp_to_double(x, n), *w_d = ophelp_to_double(w, C), *ref = ophelp_doubles(n);
    rms_ctx ctx = {T, C, eps};
    double *in[2] = {x_d, w_d};
    rms_ref(ref, in, &ctx);
    rmsnorm_forward_cpu(out, rstd, x, w, T, C, eps);
    double fwd = ophelp_compare(out, ref, n).nerr;
    double *rstd_ref = ophelp_doubles(T);
    for (int t = 0; t < T; t++) {
        double ss = 0;
        for (int c = 0; c < C; c++) ss += x_d[(size_t)t * C + c] * x_d[(size_t)t * C + c];
        rstd_ref[t] = 1 / sqrt(ss / C + (double)eps);
    }
    double fr = ophelp_compare(rstd, rstd_ref, T).nerr;
    if (fr > fwd) fwd = fr;
    double *r = ophelp_doubles(n);
    float *dout = ophelp_floats(n), *dx = ophelp_floats(n), *dw = ophelp_floats(C);
    for (size_t i = 0; i < n; i++) dout[i] = (float)(r[i] = test_uniform(&rng, -1, 1));
    float *sx = ophelp_acc_begin(dx, n, &rng), *sw = ophelp_acc_begin(dw, C, &rng);
    rmsnorm_backward_cpu(dx, dw, dout, x, w, rstd, T, C);
    ophelp_acc_end(dx, sx, n);
    ophelp_acc_end(dw, sw, C);
    ophelp_gradcheck g = {rms_ref, &ctx, n, r, 2, {x_d, w_d}, {n, (size_t)C}, {dx, dw}, FD_SAMPLES};
    ophelp_report("rmsnorm", name, fwd, FWD_TOL, ophelp_grad_err(&g, &rng, NULL), GRAD_TOL);
    free(x); free(w); free(out); free(rstd); free(x_d); free(w_d); free(ref); free(rstd_ref); free(r);
    free(dout); free(dx); free(dw);
}

// ===================================================================== elementwise
static double sig_d(double x) { return 1 / (1 + exp(-x)); }
typedef struct {
    size_t n;
    int T, F;
} ew_ctx;
static void silu_ref(double *out, double *const *in, const void *vctx) {
    const ew_ctx *x = vctx;
    for (size_t i = 0; i < x->n; i++) out[i] = in[0][i] * sig_d(in[0][i]);
}
static void gate_ref(double *out, double *const *in, const void *vctx) {
    const ew_ctx *x = vctx;
    for (size_t i = 0; i < x->n; i++) out[i] = sig_d(in[0][i]) * in[1][i];
}
static void swiglu_ref(double *out, double *const *in, const void *vctx) {
    const ew_ctx *x = vctx;
    for (int t = 0; t < x->T; t++)
        for (int f = 0; f < x->F; f++) {
            double h1 = in[0][(size_t)t * 2 * x->F + f], h3 = in[0][(size_t)t * 2 * x->F + x->F + f];
            out[(size_t)t * x->F + f] = h1 * sig_d(h1) * h3;
        }
}

// The inputs span [-range, range]; a few entries are pushed to +-100 (exp overflow territory).
static void fill_activation_input(float *x, size_t n, double range) {
    test_fill(x, n, &rng, -range, range);
    if (n > 4) {
        x[0] = -100.0f;
        x[n - 1] = 100.0f;
    }
}

static void test_silu(size_t n, double range) {
    char name[64];
    snprintf(name, sizeof name, "n%zu |x|<%g", n, range);
    float *x = ophelp_floats(n), *out = ophelp_floats(n), *dout = ophelp_floats(n), *dx = ophelp_floats(n);
    fill_activation_input(x, n, range);
    double *x_d = ophelp_to_double(x, n), *ref = ophelp_doubles(n), *r = ophelp_doubles(n);
    ew_ctx ctx = {n, 0, 0};
    double *in[1] = {x_d};
    silu_ref(ref, in, &ctx);
    silu_forward_cpu(out, x, n);
    double fwd = ophelp_compare(out, ref, n).nerr;
    for (size_t i = 0; i < n; i++) dout[i] = (float)(r[i] = test_uniform(&rng, -1, 1));
    float *s = ophelp_acc_begin(dx, n, &rng);
    silu_backward_cpu(dx, dout, x, n);
    ophelp_acc_end(dx, s, n);
    ophelp_gradcheck g = {silu_ref, &ctx, n, r, 1, {x_d}, {n}, {dx}, FD_SAMPLES};
    ophelp_report("silu", name, fwd, FWD_TOL, ophelp_grad_err(&g, &rng, NULL), GRAD_TOL);
    free(x); free(out); free(dout); free(dx); free(x_d); free(ref); free(r);
}

static void test_sigmoid_gate(size_t n, double range) {
    char name[64];
    snprintf(name, sizeof name, "n%zu |g|<%g", n, range);
    float *gt = ophelp_floats(n), *x = ophelp_floats(n), *out = ophelp_floats(n), *dout = ophelp_floats(n);
    float *dg = ophelp_floats(n), *dx = ophelp_floats(n);
    fill_activation_input(gt, n, range);
    test_fill(x, n, &rng, -2, 2);
    double *g_d = ophelp_to_double(gt, n), *x_d = ophelp_to_double(x, n), *ref = ophelp_doubles(n);
    double *r = ophelp_doubles(n);
    ew_ctx ctx = {n, 0, 0};
    double *in[2] = {g_d, x_d};
    gate_ref(ref, in, &ctx);
    sigmoid_gate_forward_cpu(out, gt, x, n);
    double fwd = ophelp_compare(out, ref, n).nerr;
    for (size_t i = 0; i < n; i++) dout[i] = (float)(r[i] = test_uniform(&rng, -1, 1));
    float *sg = ophelp_acc_begin(dg, n, &rng), *sx = ophelp_acc_begin(dx, n, &rng);
    sigmoid_gate_backward_cpu(dg, dx, dout, gt, x, n);
    ophelp_acc_end(dg, sg, n);
    ophelp_acc_end(dx, sx, n);
    ophelp_gradcheck g = {gate_ref, &ctx, n, r, 2, {g_d, x_d}, {n, n}, {dg, dx}, FD_SAMPLES};
    ophelp_report("sigmoid_gate", name, fwd, FWD_TOL, ophelp_grad_err(&g, &rng, NULL), GRAD_TOL);
    free(gt); free(x); free(out); free(dout); free(dg); free(dx); free(g_d); free(x_d); free(ref); free(r);
}

static void test_swiglu(int T, int F) {
    char name[64];
    snprintf(name, sizeof name, "T%d F%d", T, F);
    size_t nin = (size_t)T * 2 * F, no = (size_t)T * F;
    float *h = ophelp_floats(nin), *out = ophelp_floats(no), *dout = ophelp_floats(no), *dh = ophelp_floats(nin);
    fill_activation_input(h, nin, 6);
    double *h_d = ophelp_to_double(h, nin), *ref = ophelp_doubles(no), *r = ophelp_doubles(no);
    ew_ctx ctx = {0, T, F};
    double *in[1] = {h_d};
    swiglu_ref(ref, in, &ctx);
    swiglu_forward_cpu(out, h, T, F);
    double fwd = ophelp_compare(out, ref, no).nerr;
    for (size_t i = 0; i < no; i++) dout[i] = (float)(r[i] = test_uniform(&rng, -1, 1));
    float *s = ophelp_acc_begin(dh, nin, &rng);
    swiglu_backward_cpu(dh, dout, h, T, F);
    ophelp_acc_end(dh, s, nin);
    ophelp_gradcheck g = {swiglu_ref, &ctx, no, r, 1, {h_d}, {nin}, {dh}, FD_SAMPLES};
    ophelp_report("swiglu", name, fwd, FWD_TOL, ophelp_grad_err(&g, &rng, NULL), GRAD_TOL);
    free(h); free(out); free(dout); free(dh); free(h_d); free(ref); free(r);
}

// ===================================================================== ACT2FN activations
// The double references are tests/act_ref.h's; the gradient check differentiates them numerically.
static const char *const act_label[ACT_COUNT] = {"silu", "gelu", "gelu_tanh", "gelu_10", "quick_gelu", "relu",
                                                 "relu2", "relu6", "leaky_relu", "sigmoid", "tanh", "linear",
                                                 "mish", "laplace", "hardswish", "sqrtsoftplus"};
typedef struct {
    int act;
    size_t n;
    int T, F;
} act_ctx;
static void act_ref(double *out, double *const *in, const void *vctx) {
    const act_ctx *x = vctx;
    for (size_t i = 0; i < x->n; i++) out[i] = act_ref_d(x->act, in[0][i]);
}
static void glu_ref(double *out, double *const *in, const void *vctx) {
    const act_ctx *x = vctx;
    for (int t = 0; t < x->T; t++)
        for (int f = 0; f < x->F; f++) {
            double h1 = in[0][(size_t)t * 2 * x->F + f], h3 = in[0][(size_t)t * 2 * x->F + x->F + f];
            out[(size_t)t * x->F + f] = act_ref_d(x->act, h1) * h3;
        }
}

// act_forward/backward (also in place) and the gated form glu_forward/backward for one activation.
static void test_act(int act, size_t n, double range) {
    char name[64], op[32];
    snprintf(name, sizeof name, "n%zu |x|<%g", n, range);
    snprintf(op, sizeof op, "act %s", act_label[act]);
    float *x = ophelp_floats(n), *out = ophelp_floats(n), *dout = ophelp_floats(n), *dx = ophelp_floats(n);
    fill_activation_input(x, n, range);
    double *x_d = ophelp_to_double(x, n), *ref = ophelp_doubles(n), *r = ophelp_doubles(n);
    act_ctx ctx = {act, n, 0, 0};
    double *in[1] = {x_d};
    act_ref(ref, in, &ctx);
    act_forward_cpu(act, out, x, n);
    ophelp_err e = ophelp_compare(out, ref, n);
    double fwd = e.nerr;
    float *xi = ophelp_floats(n);
    memcpy(xi, x, n * sizeof(float));
    act_forward_cpu(act, xi, xi, n);
    if (!ophelp_same_bits(xi, out, n)) fwd = INFINITY;
    for (size_t i = 0; i < n; i++) dout[i] = (float)(r[i] = test_uniform(&rng, -1, 1));
    float *s = ophelp_acc_begin(dx, n, &rng);
    act_backward_cpu(act, dx, dout, x, n);
    ophelp_acc_end(dx, s, n);
    ophelp_gradcheck g = {act_ref, &ctx, n, r, 1, {x_d}, {n}, {dx}, FD_SAMPLES};
    ophelp_report(op, name, fwd, FWD_TOL, ophelp_grad_err(&g, &rng, NULL), GRAD_TOL);
    free(x); free(out); free(dout); free(dx); free(x_d); free(ref); free(r); free(xi);

    // gated: out = act(h1) * h3
    const int T = 7, F = 33;
    size_t nin = (size_t)T * 2 * F, no = (size_t)T * F;
    float *h = ophelp_floats(nin), *o = ophelp_floats(no), *dy = ophelp_floats(no), *dh = ophelp_floats(nin);
    fill_activation_input(h, nin, range);
    double *h_d = ophelp_to_double(h, nin), *gref = ophelp_doubles(no), *gr = ophelp_doubles(no);
    act_ctx gctx = {act, 0, T, F};
    double *gin[1] = {h_d};
    glu_ref(gref, gin, &gctx);
    glu_forward_cpu(act, o, h, T, F);
    double gfwd = ophelp_compare(o, gref, no).nerr;
    for (size_t i = 0; i < no; i++) dy[i] = (float)(gr[i] = test_uniform(&rng, -1, 1));
    float *sh = ophelp_acc_begin(dh, nin, &rng);
    glu_backward_cpu(act, dh, dy, h, T, F);
    ophelp_acc_end(dh, sh, nin);
    ophelp_gradcheck gg = {glu_ref, &gctx, no, gr, 1, {h_d}, {nin}, {dh}, FD_SAMPLES};
    snprintf(op, sizeof op, "glu %s", act_label[act]);
    snprintf(name, sizeof name, "T%d F%d |h|<%g", T, F, range);
    ophelp_report(op, name, gfwd, FWD_TOL, ophelp_grad_err(&gg, &rng, NULL), GRAD_TOL);
    free(h); free(o); free(dy); free(dh); free(h_d); free(gref); free(gr);
}

// ===================================================================== rope
// The reference follows HF's recipe independently (C library powf/cosf/sinf on fp32 angles, cos/sin
// times the scale in fp32); the rotation itself runs in double. cs [T, R] holds cos | sin per token,
// constant for the gradient. inv_freq is the default rope's 1/theta^(2i/R) unless a case passes its own
// (zeros included: proportional rope leaves those pairs unrotated).
typedef struct {
    int T, nh, D, R;
    const double *cs;
} rope_ctx;
static double *rope_ref_cos_sin(const int32_t *pos, int T, int R, const float *inv, float scale) {
    int half = R / 2;
    double *cs = ophelp_doubles((size_t)T * (R ? R : 1));
    for (int t = 0; t < T; t++)
        for (int i = 0; i < half; i++) {
            float ang = (float)pos[t] * inv[i];  // fp32 angle, as HF's matmul
            cs[(size_t)t * R + i] = cosf(ang) * scale;
            cs[(size_t)t * R + half + i] = sinf(ang) * scale;
        }
    return cs;
}
static void rope_ref(double *out, double *const *in, const void *vctx) {
    const rope_ctx *x = vctx;
    int half = x->R / 2;
    for (int t = 0; t < x->T; t++)
        for (int h = 0; h < x->nh; h++) {
            const double *xr = in[0] + ((size_t)t * x->nh + h) * x->D;
            double *o = out + ((size_t)t * x->nh + h) * x->D;
            for (int i = 0; i < half; i++) {
                double c = x->cs[(size_t)t * x->R + i], s = x->cs[(size_t)t * x->R + half + i];
                o[i] = xr[i] * c - xr[i + half] * s;
                o[i + half] = xr[i + half] * c + xr[i] * s;
            }
            for (int d = x->R; d < x->D; d++) o[d] = xr[d];
        }
}
// kind 0: default frequencies; 1: scaled (yarn-like: scale 1.07, every other frequency / 4); 2: the
// upper half of the frequencies zero (proportional rope, partial_rotary_factor 0.5)
static void test_rope(int T, int nh, int D, int R, float theta, int max_pos, int kind) {
    char name[64];
    snprintf(name, sizeof name, "T%d nh%d D%d R%d theta%g pos<%d%s", T, nh, D, R, theta, max_pos,
             kind == 1 ? " scaled" : kind == 2 ? " zeros" : "");
    float *inv = ophelp_floats((size_t)(R / 2 + 1)), scale = kind == 1 ? 1.0693147f : 1.0f;
    for (int i = 0; i < R / 2; i++) {
        inv[i] = 1.0f / powf(theta, (float)(2 * i) / (float)R);  // 1/(theta^(arange(0,R,2)/R)) in fp32
        if (kind == 1 && i % 2) inv[i] /= 4.0f;
        if (kind == 2 && i >= R / 4) inv[i] = 0.0f;
    }
    size_t n = (size_t)T * nh * D;
    float *x = ophelp_floats(n), *out = ophelp_floats(n), *dout = ophelp_floats(n), *dx = ophelp_floats(n);
    int32_t *pos = ophelp_alloc((size_t)T * sizeof(int32_t));
    test_fill(x, n, &rng, -1, 1);
    ophelp_fill_int(pos, T, &rng, 0, max_pos);
    pos[0] = 0;
    if (T > 1) pos[T - 1] = max_pos - 1;
    double *cs = rope_ref_cos_sin(pos, T, R, inv, scale);
    double *x_d = ophelp_to_double(x, n), *ref = ophelp_doubles(n), *r = ophelp_doubles(n);
    rope_ctx ctx = {T, nh, D, R, cs};
    double *in[1] = {x_d};
    rope_ref(ref, in, &ctx);
    rope_forward_cpu(out, x, pos, T, nh, D, R, inv, scale);
    ophelp_err e = ophelp_compare(out, ref, n);
    double fwd = e.nerr;
    if (e.max_abs > 1e-6) fwd = INFINITY;  // HF agreement is per element: |x| < 1, so ~1e-7 absolute
    // in place (out == x) must give the same result
    float *xi = ophelp_floats(n);
    memcpy(xi, x, n * sizeof(float));
    rope_forward_cpu(xi, xi, pos, T, nh, D, R, inv, scale);
    if (!ophelp_same_bits(xi, out, n)) fwd = INFINITY;
    for (size_t i = 0; i < n; i++) dout[i] = (float)(r[i] = test_uniform(&rng, -1, 1));
    float *s = ophelp_acc_begin(dx, n, &rng);
    rope_backward_cpu(dx, dout, pos, T, nh, D, R, inv, scale);
    ophelp_acc_end(dx, s, n);
    ophelp_gradcheck g = {rope_ref, &ctx, n, r, 1, {x_d}, {n}, {dx}, FD_SAMPLES};
    ophelp_report("rope", name, fwd, FWD_TOL, ophelp_grad_err(&g, &rng, NULL), GRAD_TOL);
    free(x); free(out); free(dout); free(dx); free(pos); free(cs); free(x_d); free(ref); free(r); free(xi);
    free(inv);
}

// ===================================================================== MoE routing + aux loss
// Reference output: [topk_w (T*K) | aux] with the selection recomputed from the (perturbed) logits;
// finite differences never cross a selection boundary for well-separated random logits, so f stays
// constant as the aux loss defines it.
typedef struct {
    int T, E, K;
    int32_t *idx;  // selection of the last evaluation [T,K]
    double *probs; // [T,E]
} route_ctx;
static void route_ref(double *out, double *const *in, const void *vctx) {
    const route_ctx *x = vctx;
    int T = x->T, E = x->E, K = x->K;
    for (int t = 0; t < T; t++) {
        const double *z = in[0] + (size_t)t * E;
        double *p = x->probs + (size_t)t * E;
        double mx = z[0], s = 0;
        for (int e = 1; e < E; e++) mx = fmax(mx, z[e]);
        for (int e = 0; e < E; e++) s += exp(z[e] - mx);
        for (int e = 0; e < E; e++) p[e] = exp(z[e] - mx) / s;
        int32_t *idx = x->idx + (size_t)t * K;
        double ws = 0;
        for (int k = 0; k < K; k++) {  // k-th largest, lower index on ties
            int best = -1;
            for (int e = 0; e < E; e++) {
                int used = 0;
                for (int j = 0; j < k; j++) used |= idx[j] == e;
                if (!used && (best < 0 || p[e] > p[best])) best = e;
            }
            idx[k] = best;
            ws += p[best];
        }
        for (int k = 0; k < K; k++) out[(size_t)t * K + k] = p[idx[k]] / ws;
    }
    // aux = E * sum_{slot,e} f[slot,e] * mean_t p[t,e]
    double aux = 0;
    for (int k = 0; k < K; k++)
        for (int e = 0; e < E; e++) {
            double f = 0, pm = 0;
            for (int t = 0; t < T; t++) {
                f += x->idx[(size_t)t * K + k] == e;
                pm += x->probs[(size_t)t * E + e];
            }
            aux += (f / T) * (pm / T);
        }
    out[(size_t)T * K] = E * aux;
}
// ties: logits drawn from a few integer values so many probabilities tie exactly.
static void test_moe_route(int T, int E, int K, int ties, int aux_only) {
    char name[64];
    snprintf(name, sizeof name, "T%d E%d K%d%s%s", T, E, K, ties ? " ties" : "", aux_only ? " aux-only" : "");
    size_t nl = (size_t)T * E, nk = (size_t)T * K;
    float *z = ophelp_floats(nl), *p = ophelp_floats(nl), *w = ophelp_floats(nk), *dz = ophelp_floats(nl);
    int32_t *idx = ophelp_alloc(nk * sizeof(int32_t));
    if (ties)
        for (size_t i = 0; i < nl; i++) z[i] = (float)(test_rng_next(&rng) % 3);
    else
        test_fill(z, nl, &rng, -3, 3);
    double *z_d = ophelp_to_double(z, nl), *ref = ophelp_doubles(nk + 1), *r = ophelp_doubles(nk + 1);
    route_ctx ctx = {T, E, K, ophelp_alloc(nk * sizeof(int32_t)), ophelp_doubles(nl)};
    double *in[1] = {z_d};
    route_ref(ref, in, &ctx);
    moe_route_forward_cpu(p, idx, w, z, T, E, K, 0);
    double fwd = ophelp_compare(p, ctx.probs, nl).nerr;
    double fw = ophelp_compare(w, ref, nk).nerr;
    if (fw > fwd) fwd = fw;
    if (ophelp_compare_i32(idx, ctx.idx, nk)) fwd = INFINITY;  // the exact same experts, in order
    float aux = moe_aux_loss_cpu(p, idx, T, E, K);
    double fa = fabs(aux - ref[nk]) / fabs(ref[nk]);
    if (fa > fwd) fwd = fa;
    {   // replay: its own routes give the same weights bit for bit; reversed routes give p[idx] / sum
        float *p2 = ophelp_floats(nl), *w2 = ophelp_floats(nk);
        int32_t *idx2 = ophelp_alloc(nk * sizeof(int32_t));
        memcpy(idx2, idx, nk * sizeof(int32_t));
        moe_route_forward_cpu(p2, idx2, w2, z, T, E, K, 1);
        if (memcmp(w2, w, nk * sizeof(float)) || memcmp(idx2, idx, nk * sizeof(int32_t))) fwd = INFINITY;
        for (int t = 0; t < T; t++)
            for (int k = 0; k < K; k++) idx2[t * K + k] = idx[t * K + K - 1 - k];
        moe_route_forward_cpu(p2, idx2, w2, z, T, E, K, 1);
        for (int t = 0; t < T; t++)
            for (int k = 0; k < K; k++)
                if (fabs(w2[t * K + k] - w[t * K + K - 1 - k]) > 1e-6f)
                    fwd = INFINITY;
        free(p2), free(w2), free(idx2);
    }
    double grad = -1;
    if (!ties) {  // a tie is a selection boundary: finite differences are meaningless there
        float *dw = ophelp_floats(nk);
        for (size_t i = 0; i < nk; i++) dw[i] = (float)(r[i] = aux_only ? 0 : test_uniform(&rng, -1, 1));
        float d_aux = (float)test_uniform(&rng, 0.5, 2);
        r[nk] = d_aux;
        float *s = ophelp_acc_begin(dz, nl, &rng);
        moe_route_backward_cpu(dz, aux_only ? NULL : dw, d_aux, p, idx, w, T, E, K);
        ophelp_acc_end(dz, s, nl);
        ophelp_gradcheck g = {route_ref, &ctx, nk + 1, r, 1, {z_d}, {nl}, {dz}, FD_SAMPLES};
        grad = ophelp_grad_err(&g, &rng, NULL);
        free(dw);
    }
    ophelp_report("moe_route+aux", name, fwd, FWD_TOL, grad, GRAD_TOL);
    free(z); free(p); free(w); free(dz); free(idx); free(z_d); free(ref); free(r); free(ctx.idx); free(ctx.probs);
}

// ===================================================================== MoE dispatch / combine
typedef struct {
    int T, C, K;
    const int32_t *perm;
    const float *w;   // topk_w (combine, when not differentiated)
} mx_ctx;
static void dispatch_ref(double *out, double *const *in, const void *vctx) {
    const mx_ctx *x = vctx;
    for (size_t j = 0; j < (size_t)x->T * x->K; j++)
        for (int c = 0; c < x->C; c++) out[j * x->C + c] = in[0][(size_t)(x->perm[j] / x->K) * x->C + c];
}
// in[0] = ye [T*K, C], in[1] = topk_w [T*K]; out = y [T, C] (starting from zero)
static void combine_ref(double *out, double *const *in, const void *vctx) {
    const mx_ctx *x = vctx;
    memset(out, 0, (size_t)x->T * x->C * sizeof(double));
    for (size_t j = 0; j < (size_t)x->T * x->K; j++) {
        size_t s = (size_t)x->perm[j], t = s / x->K;
        for (int c = 0; c < x->C; c++) out[t * x->C + c] += in[1][s] * in[0][j * x->C + c];
    }
}
static void test_moe_dispatch_combine(int T, int C, int E, int K) {
    char name[64];
    snprintf(name, sizeof name, "T%d C%d E%d K%d", T, C, E, K);
    size_t nk = (size_t)T * K, nx = (size_t)T * C, ne = nk * C;
    float *x = ophelp_floats(nx), *xe = ophelp_floats(ne), *w = ophelp_floats(nk);
    int32_t *idx = ophelp_alloc(nk * sizeof(int32_t)), *perm = ophelp_alloc(nk * sizeof(int32_t));
    int32_t *offsets = ophelp_alloc((size_t)(E + 1) * sizeof(int32_t));
    test_fill(x, nx, &rng, -1, 1);
    test_fill(w, nk, &rng, 0, 1);
    for (int t = 0; t < T; t++)  // K distinct experts per token; some experts get no tokens when E > T*K
        for (int k = 0; k < K; k++) {
            int e;
            int used;
            do {
                e = (int)(test_rng_next(&rng) % (uint64_t)E);
                used = 0;
                for (int j = 0; j < k; j++) used |= idx[(size_t)t * K + j] == e;
            } while (used);
            idx[(size_t)t * K + k] = e;
        }
    // naive stable sort by expert
    int32_t *perm_ref = ophelp_alloc(nk * sizeof(int32_t)), *off_ref = ophelp_alloc((size_t)(E + 1) * sizeof(int32_t));
    int32_t nrow = 0;
    for (int e = 0; e < E; e++) {
        off_ref[e] = nrow;
        for (size_t s = 0; s < nk; s++)
            if (idx[s] == e) perm_ref[nrow++] = (int32_t)s;
    }
    off_ref[E] = nrow;
    moe_dispatch_cpu(xe, perm, offsets, x, idx, T, C, E, K);
    double fwd = 0;
    if (ophelp_compare_i32(perm, perm_ref, nk) || ophelp_compare_i32(offsets, off_ref, (size_t)E + 1)) fwd = INFINITY;
    double *x_d = ophelp_to_double(x, nx), *ref = ophelp_doubles(ne), *r = ophelp_doubles(ne);
    mx_ctx ctx = {T, C, K, perm_ref, w};
    double *in1[1] = {x_d};
    dispatch_ref(ref, in1, &ctx);
    double f2 = ophelp_compare(xe, ref, ne).nerr;
    if (f2 > fwd) fwd = f2;
    float *dxe = ophelp_floats(ne), *dx = ophelp_floats(nx);
    for (size_t i = 0; i < ne; i++) dxe[i] = (float)(r[i] = test_uniform(&rng, -1, 1));
    float *s = ophelp_acc_begin(dx, nx, &rng);
    moe_dispatch_backward_cpu(dx, dxe, perm, T, C, K);
    ophelp_acc_end(dx, s, nx);
    ophelp_gradcheck g = {dispatch_ref, &ctx, ne, r, 1, {x_d}, {nx}, {dx}, 0};
    ophelp_report("moe_dispatch", name, fwd, 0.0, ophelp_grad_err(&g, &rng, NULL), GRAD_TOL);

    // combine: y = y0 + sum_k w ye; ye random expert outputs in dispatched order
    float *ye = ophelp_floats(ne), *y = ophelp_floats(nx), *y0 = ophelp_floats(nx);
    test_fill(ye, ne, &rng, -1, 1);
    test_fill(y0, nx, &rng, -1, 1);
    memcpy(y, y0, nx * sizeof(float));
    double *ye_d = ophelp_to_double(ye, ne), *w_d = ophelp_to_double(w, nk), *cref = ophelp_doubles(nx);
    double *cr = ophelp_doubles(nx);
    double *in2[2] = {ye_d, w_d};
    combine_ref(cref, in2, &ctx);
    for (size_t i = 0; i < nx; i++) cref[i] += y0[i];
    moe_combine_forward_cpu(y, ye, w, perm, T, C, K);
    fwd = ophelp_compare(y, cref, nx).nerr;
    float *dy = ophelp_floats(nx), *dye = ophelp_floats(ne), *dw = ophelp_floats(nk);
    for (size_t i = 0; i < nx; i++) dy[i] = (float)(cr[i] = test_uniform(&rng, -1, 1));
    float *sye = ophelp_acc_begin(dye, ne, &rng), *sw = ophelp_acc_begin(dw, nk, &rng);
    moe_combine_backward_cpu(dye, dw, dy, ye, w, perm, T, C, K);
    ophelp_acc_end(dye, sye, ne);
    ophelp_acc_end(dw, sw, nk);
    ophelp_gradcheck g2 = {combine_ref, &ctx, nx, cr, 2, {ye_d, w_d}, {ne, nk}, {dye, dw}, FD_SAMPLES};
    ophelp_report("moe_combine", name, fwd, FWD_TOL, ophelp_grad_err(&g2, &rng, NULL), GRAD_TOL);
    free(x); free(xe); free(w); free(idx); free(perm); free(offsets); free(perm_ref); free(off_ref); free(x_d);
    free(ref); free(r); free(dxe); free(dx); free(ye); free(y); free(y0); free(ye_d); free(w_d); free(cref);
    free(cr); free(dy); free(dye); free(dw);
}

// ===================================================================== fused LM head
typedef struct {
    int T, C, V;
    const int32_t *targets;
} lm_ctx;
// out = logp [T]; lse/entropy via lm_ref_full
static void lm_ref_full(double *logp, double *lse, double *ent, double *const *in, const lm_ctx *x) {
    double *z = ophelp_doubles(x->V);
    for (int t = 0; t < x->T; t++) {
        double mx = -INFINITY;
        for (int v = 0; v < x->V; v++) {
            double s = 0;
            for (int c = 0; c < x->C; c++) s += in[0][(size_t)t * x->C + c] * in[1][(size_t)v * x->C + c];
            z[v] = s;
            mx = fmax(mx, s);
        }
        double se = 0;
        for (int v = 0; v < x->V; v++) se += exp(z[v] - mx);
        double l = mx + log(se), h = 0;
        for (int v = 0; v < x->V; v++) h -= exp(z[v] - l) * (z[v] - l);
        logp[t] = x->targets[t] >= 0 ? z[x->targets[t]] - l : 0;
        if (lse) lse[t] = l;
        if (ent) ent[t] = h;
    }
    free(z);
}
static void lm_ref(double *out, double *const *in, const void *vctx) { lm_ref_full(out, NULL, NULL, in, vctx); }

static void test_lmhead(int T, int C, int V, int chunk, double zscale) {
    char name[64];
    snprintf(name, sizeof name, "T%d C%d V%d chunk%d |z|~%g", T, C, V, chunk, zscale);
    size_t nx = (size_t)T * C, nw = (size_t)V * C;
    float *x = ophelp_floats(nx), *w = ophelp_floats(nw);
    float *logp = ophelp_floats(T), *lse = ophelp_floats(T), *ent = ophelp_floats(T), *logp2 = ophelp_floats(T);
    int32_t *tg = ophelp_alloc((size_t)T * sizeof(int32_t));
    double a = sqrt(zscale / sqrt((double)C));  // logits ~ zscale in magnitude
    test_fill(x, nx, &rng, -a, a);
    test_fill(w, nw, &rng, -a, a);
    ophelp_fill_int(tg, T, &rng, 0, V);
    for (int t = 0; t < T; t += 3) tg[t] = -1;  // no target: logp 0, no gradient
    if (T > 1) tg[T - 1] = V - 1;
    double *x_d = ophelp_to_double(x, nx), *w_d = ophelp_to_double(w, nw);
    double *lr = ophelp_doubles(T), *sr = ophelp_doubles(T), *er = ophelp_doubles(T), *r = ophelp_doubles(T);
    lm_ctx ctx = {T, C, V, tg};
    double *in[2] = {x_d, w_d};
    lm_ref_full(lr, sr, er, in, &ctx);
    lmhead_logprob_forward_cpu(logp, lse, ent, x, w, tg, T, C, V, chunk);
    // log-probs are compared in absolute terms (they are what the importance ratios exponentiate)
    double fwd = ophelp_compare(logp, lr, T).max_abs;
    double f2 = ophelp_compare(lse, sr, T).max_abs, f3 = ophelp_compare(ent, er, T).max_abs;
    fwd = fmax(fwd, fmax(f2, f3));
    lmhead_logprob_forward_cpu(logp2, lse, NULL, x, w, tg, T, C, V, T);  // no entropy, one chunk
    if (ophelp_compare(logp2, lr, T).max_abs > 1e-5) fwd = INFINITY;

    float *dlogp = ophelp_floats(T), *dx = ophelp_floats(nx), *dw = ophelp_floats(nw);
    for (int t = 0; t < T; t++) dlogp[t] = (float)(r[t] = t % 5 == 1 ? 0 : test_uniform(&rng, -1, 1));
    float *sx = ophelp_acc_begin(dx, nx, &rng), *sw = ophelp_acc_begin(dw, nw, &rng);
    float *dx2 = ophelp_floats(nx), *dw2 = ophelp_floats(nw);
    memcpy(dx2, dx, nx * sizeof(float));
    memcpy(dw2, dw, nw * sizeof(float));
    lmhead_logprob_backward_cpu(dx, dw, dlogp, x, w, tg, lse, T, C, V, chunk);
    lmhead_logprob_backward_cpu(dx2, dw2, dlogp, x, w, tg, lse, T, C, V, chunk);
    if (!ophelp_same_bits(dx, dx2, nx) || !ophelp_same_bits(dw, dw2, nw)) fwd = INFINITY;  // reproducible
    ophelp_acc_end(dx, sx, nx);
    ophelp_acc_end(dw, sw, nw);
    ophelp_gradcheck g = {lm_ref, &ctx, (size_t)T, r, 2, {x_d, w_d}, {nx, nw}, {dx, dw}, FD_SAMPLES};
    ophelp_report("lmhead_logprob", name, fwd, 2e-5, ophelp_grad_err(&g, &rng, NULL), GRAD_TOL);
    free(x); free(w); free(logp); free(lse); free(ent); free(logp2); free(tg); free(x_d); free(w_d); free(lr);
    free(sr); free(er); free(r); free(dlogp); free(dx); free(dw); free(dx2); free(dw2);
}

// ===================================================================== AdamW
// Each step is compared with a double step taken from the op's own previous fp32 state. p itself is
// fp32 and the step rounds it twice (decay, then update), so one ulp of the larger of old and new p
// is unavoidable whatever the step size; beyond that, the error is measured against the step size:
// err = max_i max(0, |p_i - pref_i| - ulp(max(|p_old_i|, |pref_i|))) / lr.
static void test_adamw(size_t n, float lr, float b1, float b2, float eps, float wd, int steps, double gscale) {
    char name[160];
    snprintf(name, sizeof name, "n%zu lr%g b%g/%g eps%g wd%g %dst g~%g", n, lr, b1, b2, eps, wd, steps, gscale);
    float *p = ophelp_floats(n), *m = ophelp_floats(n), *v = ophelp_floats(n), *g = ophelp_floats(n);
    float *p_old = ophelp_floats(n);
    test_fill(p, n, &rng, -1, 1);
    double *pd = ophelp_doubles(n), *md = ophelp_doubles(n), *vd = ophelp_doubles(n);
    double worst = 0;
    for (int step = 1; step <= steps; step++) {
        test_fill(g, n, &rng, -gscale, gscale);
        for (size_t i = 0; i < n; i++) {
            md[i] = b1 * (double)m[i] + (1 - (double)b1) * g[i];
            vd[i] = b2 * (double)v[i] + (1 - (double)b2) * (double)g[i] * g[i];
            double mh = md[i] / (1 - pow(b1, step)), vh = vd[i] / (1 - pow(b2, step));
            pd[i] = p[i] - (double)lr * (mh / (sqrt(vh) + eps) + (double)wd * p[i]);
        }
        memcpy(p_old, p, n * sizeof(float));
        adamw_step_cpu(p, m, v, g, 1.0f, n, lr, b1, b2, eps, wd, step);
        double e = 0;
        for (size_t i = 0; i < n; i++) {
            float a = fmaxf(fabsf(p_old[i]), fabsf((float)pd[i]));
            double ulp = (double)nextafterf(a, INFINITY) - a;
            double d = fabs((double)p[i] - pd[i]) - ulp;
            if (d != d) d = INFINITY;
            if (d > e) e = d;
        }
        e /= lr;
        worst = fmax(worst, fmax(e, fmax(ophelp_compare(m, md, n).nerr, ophelp_compare(v, vd, n).nerr)));
    }
    ophelp_report("adamw", name, worst, 1e-4, -1, 0);
    free(p); free(m); free(v); free(g); free(p_old); free(pd); free(md); free(vd);
}

// ===================================================================== perf
typedef struct {
    int op;
    int m, n, k, ta, tb;
    float *a, *b, *c, *d, *e, *f;
    int32_t *i0, *i1, *i2;
    size_t len;
} perf_ctx;
static void perf_matmul(void *v) {
    perf_ctx *p = v;
    matmul_cpu(p->c, p->a, p->b, p->m, p->n, p->k, p->ta, p->tb, 1.0f, 0.0f);
}
static void perf_rmsnorm_f(void *v) {
    perf_ctx *p = v;
    rmsnorm_forward_cpu(p->c, p->d, p->a, p->b, p->m, p->n, 1e-5f);
}
static void perf_rmsnorm_b(void *v) {
    perf_ctx *p = v;
    rmsnorm_backward_cpu(p->e, p->f, p->c, p->a, p->b, p->d, p->m, p->n);
}
static void perf_silu_f(void *v) {
    perf_ctx *p = v;
    silu_forward_cpu(p->c, p->a, p->len);
}
static void perf_silu_b(void *v) {
    perf_ctx *p = v;
    silu_backward_cpu(p->e, p->c, p->a, p->len);
}
static void perf_swiglu_f(void *v) {
    perf_ctx *p = v;
    swiglu_forward_cpu(p->c, p->a, p->m, p->n);
}
static void perf_swiglu_b(void *v) {
    perf_ctx *p = v;
    swiglu_backward_cpu(p->e, p->c, p->a, p->m, p->n);
}
static void perf_rope_f(void *v) {
    perf_ctx *p = v;
    rope_forward_cpu(p->c, p->a, p->i0, p->m, p->n, p->k, p->ta, p->f, 1.0f);
}
static void perf_rope_b(void *v) {
    perf_ctx *p = v;
    rope_backward_cpu(p->e, p->c, p->i0, p->m, p->n, p->k, p->ta, p->f, 1.0f);
}
static void perf_route_f(void *v) {
    perf_ctx *p = v;
    moe_route_forward_cpu(p->b, p->i0, p->c, p->a, p->m, p->n, p->k, 0);
}
static void perf_route_b(void *v) {
    perf_ctx *p = v;
    moe_route_backward_cpu(p->e, p->d, 1e-3f, p->b, p->i0, p->c, p->m, p->n, p->k);
}
static void perf_dispatch(void *v) {
    perf_ctx *p = v;
    moe_dispatch_cpu(p->d, p->i1, p->i2, p->a, p->i0, p->m, p->n, p->ta, p->k);
}
static void perf_combine(void *v) {
    perf_ctx *p = v;
    moe_combine_forward_cpu(p->e, p->d, p->b, p->i1, p->m, p->n, p->k);
}
static void perf_lm_f(void *v) {
    perf_ctx *p = v;
    lmhead_logprob_forward_cpu(p->c, p->d, p->e, p->a, p->b, p->i0, p->m, p->k, p->n, p->ta);
}
static void perf_lm_b(void *v) {
    perf_ctx *p = v;
    lmhead_logprob_backward_cpu(p->f, NULL, p->c, p->a, p->b, p->i0, p->d, p->m, p->k, p->n, p->ta);
}
static void perf_adamw(void *v) {
    perf_ctx *p = v;
    adamw_step_cpu(p->a, p->b, p->c, p->d, 1.0f, p->len, 1e-6f, 0.9f, 0.95f, 1e-15f, 0.1f, 3);
}

static float *rnd(size_t n, double lo, double hi) {
    float *x = ophelp_floats(n);
    test_fill(x, n, &rng, lo, hi);
    return x;
}

static void run_perf(void) {
    const double sec = 0.3;
    printf("perf (us/run; GFLOP/s counts 2 per multiply-add; GB/s counts bytes read + written):\n");
    {  // GEMMs: square, and the linear-layer shapes of a small model (T=512, C=1024, F=2816)
        int shapes[][5] = {{512, 512, 512, 0, 0}, {512, 512, 512, 1, 0}, {512, 512, 512, 0, 1},
                           {512, 512, 512, 1, 1}, {512, 5632, 1024, 0, 1}, {512, 1024, 2816, 0, 1},
                           {1024, 2816, 512, 1, 0}};
        for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++) {
            perf_ctx p = {0};
            p.m = shapes[i][0], p.n = shapes[i][1], p.k = shapes[i][2], p.ta = shapes[i][3], p.tb = shapes[i][4];
            p.a = rnd((size_t)p.m * p.k, -1, 1), p.b = rnd((size_t)p.k * p.n, -1, 1);
            p.c = ophelp_floats((size_t)p.m * p.n);
            char name[64];
            snprintf(name, sizeof name, "%dx%dx%d %c%c", p.m, p.n, p.k, p.ta ? 'T' : 'N', p.tb ? 'T' : 'N');
            double us = ophelp_time_us(perf_matmul, &p, sec);
            ophelp_perf_line("matmul", name, us, 2.0 * p.m * p.n * p.k, 0);
            free(p.a); free(p.b); free(p.c);
        }
    }
    {
        perf_ctx p = {0};
        p.m = 1024, p.n = 4096;
        size_t n = (size_t)p.m * p.n;
        p.a = rnd(n, -1, 1), p.b = rnd(p.n, 0.5, 1.5), p.c = rnd(n, -1, 1), p.d = ophelp_floats(p.m);
        p.e = ophelp_floats(n), p.f = ophelp_floats(p.n);
        ophelp_perf_line("rmsnorm fwd", "T1024 C4096", ophelp_time_us(perf_rmsnorm_f, &p, sec), 0, 8.0 * n);
        ophelp_perf_line("rmsnorm bwd", "T1024 C4096", ophelp_time_us(perf_rmsnorm_b, &p, sec), 0, 16.0 * n);
        p.len = n;
        ophelp_perf_line("silu fwd", "n4M", ophelp_time_us(perf_silu_f, &p, sec), 0, 8.0 * n);
        ophelp_perf_line("silu bwd", "n4M", ophelp_time_us(perf_silu_b, &p, sec), 0, 16.0 * n);
        p.m = 512, p.n = 2048;  // h13 [512, 4096] -> [512, 2048]
        // swiglu per output element: fwd reads 2, writes 1 float; bwd reads 3, reads+writes 2
        ophelp_perf_line("swiglu fwd", "T512 F2048", ophelp_time_us(perf_swiglu_f, &p, sec), 0, 12.0 * n / 4);
        ophelp_perf_line("swiglu bwd", "T512 F2048", ophelp_time_us(perf_swiglu_b, &p, sec), 0, 28.0 * n / 4);
        p.m = 1024, p.n = 32, p.k = 128, p.ta = 64;  // x [1024, 32, 128], R = 64
        p.i0 = ophelp_alloc(1024 * sizeof(int32_t));
        for (int t = 0; t < 1024; t++) p.i0[t] = t * 37;
        for (int i = 0; i < 32; i++) p.f[i] = 1.0f / powf(1e7f, (float)(2 * i) / 64.0f);  // f: inv_freq [R/2]
        ophelp_perf_line("rope fwd", "T1024 nh32 D128 R64", ophelp_time_us(perf_rope_f, &p, sec), 0, 8.0 * n);
        ophelp_perf_line("rope bwd", "T1024 nh32 D128 R64", ophelp_time_us(perf_rope_b, &p, sec), 0, 12.0 * n);
        free(p.a); free(p.b); free(p.c); free(p.d); free(p.e); free(p.f); free(p.i0);
    }
    {  // MoE: T=4096 tokens, E=32, K=2, C=1024
        perf_ctx p = {0};
        p.m = 4096, p.n = 32, p.k = 2;
        size_t nl = (size_t)p.m * p.n, nk = (size_t)p.m * p.k;
        p.a = rnd(nl, -3, 3), p.b = ophelp_floats(nl), p.c = ophelp_floats(nk), p.d = rnd(nk, -1, 1);
        p.e = ophelp_floats(nl), p.i0 = ophelp_alloc(nk * sizeof(int32_t));
        ophelp_perf_line("moe_route fwd", "T4096 E32 K2", ophelp_time_us(perf_route_f, &p, sec), 0, 0);
        ophelp_perf_line("moe_route bwd", "T4096 E32 K2", ophelp_time_us(perf_route_b, &p, sec), 0, 0);
        perf_ctx q = {0};
        q.m = 4096, q.n = 1024, q.k = 2, q.ta = 32;
        size_t nx = (size_t)q.m * q.n;
        q.a = rnd(nx, -1, 1), q.b = p.c, q.d = ophelp_floats(nx * 2), q.e = ophelp_floats(nx), q.i0 = p.i0;
        q.i1 = ophelp_alloc(nk * sizeof(int32_t)), q.i2 = ophelp_alloc(33 * sizeof(int32_t));
        ophelp_perf_line("moe_dispatch", "T4096 C1024 E32 K2", ophelp_time_us(perf_dispatch, &q, sec), 0, 16.0 * nx);
        ophelp_perf_line("moe_combine", "T4096 C1024 K2", ophelp_time_us(perf_combine, &q, sec), 0, 16.0 * nx);
        free(p.a); free(p.b); free(p.c); free(p.d); free(p.e); free(p.i0); free(q.a); free(q.d); free(q.e);
        free(q.i1); free(q.i2);
    }
    {  // LM head: T=256, C=1024, V=32000, chunk 64
        perf_ctx p = {0};
        p.m = 256, p.k = 1024, p.n = 32000, p.ta = 64;
        p.a = rnd((size_t)p.m * p.k, -0.2, 0.2), p.b = rnd((size_t)p.n * p.k, -0.2, 0.2);
        p.c = rnd(p.m, -1, 1), p.d = ophelp_floats(p.m), p.e = ophelp_floats(p.m), p.f = ophelp_floats((size_t)p.m * p.k);
        p.i0 = ophelp_alloc((size_t)p.m * sizeof(int32_t));
        ophelp_fill_int(p.i0, p.m, &rng, 0, p.n);
        double fl = 2.0 * p.m * p.k * p.n;
        ophelp_perf_line("lmhead fwd", "T256 C1024 V32000 chunk64", ophelp_time_us(perf_lm_f, &p, sec), fl, 0);
        ophelp_perf_line("lmhead bwd (dx)", "T256 C1024 V32000 chunk64", ophelp_time_us(perf_lm_b, &p, sec), 2 * fl, 0);
        free(p.a); free(p.b); free(p.c); free(p.d); free(p.e); free(p.f); free(p.i0);
    }
    {
        perf_ctx p = {0};
        p.len = (size_t)1 << 24;
        p.a = rnd(p.len, -1, 1), p.b = ophelp_floats(p.len), p.c = ophelp_floats(p.len), p.d = rnd(p.len, -1, 1);
        ophelp_perf_line("adamw", "n16M", ophelp_time_us(perf_adamw, &p, sec), 0, 28.0 * p.len);
        free(p.a); free(p.b); free(p.c); free(p.d);
    }
}

// The CPU ops' scratch arena is per thread: threads that run ops and exit give it back (LeakSanitizer
// in the sanitizer build reports a leak otherwise), and each thread computes the same result.
static void *scratch_thread(void *arg) {
    float *out = arg;
    const int T = 9, C = 300;
    float x[9 * 300], w[300], dy[9 * 300], rstd[9], dx[9 * 300], dw[300];
    uint64_t s = 5;
    test_fill(x, (size_t)T * C, &s, -1, 1);
    test_fill(w, C, &s, 0.5, 1.5);
    test_fill(dy, (size_t)T * C, &s, -1, 1);
    memset(dx, 0, sizeof dx);
    memset(dw, 0, sizeof dw);
    rmsnorm_forward_cpu(out, rstd, x, w, T, C, 1e-5f);
    rmsnorm_backward_cpu(dx, dw, dy, x, w, rstd, T, C);  // takes scratch for the dw sums
    memcpy(out, dw, sizeof dw);
    return NULL;
}

static void check_scratch_threads(void) {
    enum { NT = 4 };
    static float out[NT][9 * 300];
    pthread_t th[NT];
    for (int i = 0; i < NT; i++) CISPO_ASSERT(pthread_create(&th[i], NULL, scratch_thread, out[i]) == 0);
    for (int i = 0; i < NT; i++) pthread_join(th[i], NULL);
    int same = 1;
    for (int i = 1; i < NT; i++) same &= !memcmp(out[0], out[i], 300 * sizeof(float));
    test_check(same, "threads with their own scratch arenas compute the same rmsnorm weight gradient");
}

int main(int argc, char **argv) {
    int perf = argc > 1 && strcmp(argv[1], "--perf") == 0;
    printf("  %-22s %-40s %-13s %-14s\n", "op", "case", "fwd err", "grad err");
    check_scratch_threads();
    // kernels/cpu/matmul.c: one sgemm thread unless the environment names a count (sgemm's bits change with it)
    if (!getenv("OPENBLAS_NUM_THREADS") && !getenv("GOTO_NUM_THREADS") && !getenv("OMP_NUM_THREADS"))
        test_check(openblas_get_num_threads() == 1, "CPU GEMMs on one thread by default: OpenBLAS has %d",
                   openblas_get_num_threads());

    int mm[][3] = {{1, 1, 1}, {7, 5, 3}, {33, 17, 65}, {16, 64, 9}, {65, 3, 130}};
    for (size_t i = 0; i < sizeof mm / sizeof mm[0]; i++)
        for (int ta = 0; ta < 2; ta++)
            for (int tb = 0; tb < 2; tb++) test_matmul(mm[i][0], mm[i][1], mm[i][2], ta, tb, 1.0f, 0.0f);
    test_matmul(19, 23, 31, 0, 1, 0.5f, 1.0f);  // the accumulate form the backward passes use
    test_matmul(19, 23, 31, 1, 0, -1.5f, 0.25f);
    test_matmul(4, 6, 0, 0, 0, 1.0f, 0.5f);     // empty inner dimension: C = beta C

    test_embedding(11, 7, 5);
    test_embedding(5, 40, 13);  // more tokens than rows: ids repeat
    test_embedding(1, 3, 1);

    test_rmsnorm(1, 1, 1e-5f, 1);
    test_rmsnorm(5, 17, 1e-5f, 1);
    test_rmsnorm(9, 64, 1e-6f, 10);
    test_rmsnorm(3, 301, 1e-5f, 1e-3);  // x small against eps: eps matters

    test_silu(1, 3);
    test_silu(1001, 8);
    test_sigmoid_gate(7, 3);
    test_sigmoid_gate(999, 8);
    test_swiglu(1, 1);
    test_swiglu(5, 37);
    test_swiglu(12, 64);

    test_rope(1, 1, 2, 2, 10000.0f, 1, 0);
    test_rope(9, 3, 16, 16, 10000.0f, 64, 0);       // R = D
    test_rope(9, 3, 16, 8, 10000.0f, 64, 0);        // R < D
    test_rope(7, 2, 128, 64, 1e7f, 200000, 0);      // M1: R = 64 of D = 128, theta 1e7, long positions
    test_rope(5, 3, 24, 24, 1e6f, 1 << 20, 0);      // R = D, positions ~1e6 (fp32 angle rounding matters)
    test_rope(4, 2, 10, 0, 10000.0f, 50, 0);        // R = 0: identity
    test_rope(9, 3, 16, 16, 10000.0f, 300, 1);      // scaled cos/sin (yarn, longrope attention factor)
    test_rope(6, 2, 32, 32, 1e6f, 100, 2);          // zero frequencies (proportional rope)

    for (int act = 0; act < ACT_COUNT; act++) {
        test_act(act, 1001, 8);
        test_act(act, 64, 25);  // beyond softplus's threshold 20 and gelu_10's clip
    }

    test_moe_route(1, 1, 1, 0, 0);
    test_moe_route(13, 5, 1, 0, 0);   // K = 1: w = 1, gradient only through the aux loss
    test_moe_route(17, 6, 2, 0, 0);
    test_moe_route(23, 7, 3, 0, 0);
    test_moe_route(31, 32, 2, 0, 0);
    test_moe_route(9, 10, 4, 0, 1);   // aux gradient alone (dtopk_w NULL)
    test_moe_route(40, 7, 3, 1, 0);   // exact ties: lower expert index first

    test_moe_dispatch_combine(1, 3, 1, 1);
    test_moe_dispatch_combine(7, 5, 3, 2);
    test_moe_dispatch_combine(13, 9, 6, 3);
    test_moe_dispatch_combine(3, 4, 17, 2);  // experts with no tokens

    test_lmhead(1, 5, 7, 1, 1);
    test_lmhead(13, 17, 101, 4, 3);    // chunk does not divide T
    test_lmhead(10, 8, 33, 3, 20);     // peaked distributions (large logits)
    test_lmhead(6, 32, 257, 16, 5);    // chunk > T
    test_lmhead(21, 12, 64, 21, 1);

    test_adamw(1, 1e-3f, 0.9f, 0.999f, 1e-8f, 0.0f, 3, 1);
    test_adamw(1000, 1e-4f, 0.9f, 0.95f, 1e-15f, 0.1f, 5, 1e-12);  // docs/rl.md values, tiny gradients
    test_adamw(333, 3e-3f, 0.8f, 0.99f, 1e-6f, 0.01f, 4, 10);

    ophelp_print_worst();
    if (perf) run_perf();
    return test_finish("test_ops");
}
