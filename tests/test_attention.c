// tests/test_attention.c — causal softmax attention CPU reference (kernels/cpu/attention.c) against
// a naive double-precision reference: outputs and log-sum-exp for GQA ratios 1, 2, 4, packed
// sequences of mixed lengths (incl. length 1 and lengths across the internal query block), large
// score ranges, sliding windows (W = 1, W smaller and larger than the query block, W >= the length);
// the backward against central finite differences (small problems, every element) and against the
// analytic double backward (larger problems), accumulating into its gradients; the decode step
// (attention_decode_cpu) against the forward's rows, with and without a window.
// Run: build/test_attention [--perf]   (--perf also times fwd/bwd at T=4096, H=8, KV=8 and 2, D=128)
#include "kernels/cpu/ops_cpu.h"
#include "tests/testutil.h"
#include "tests/ophelp.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TOL_FWD 1e-5   // normalised L2 error of fp32 vs double
#define TOL_GRAD 1e-5

typedef struct {
    const int32_t *cu;
    int nseq, H, KV, D, W;  // W: sliding window (0 = none)
} ref_ctx;

// First key of query t in a sequence starting at s0: transformers' mask kv > q - W.
static int ref_first(int s0, int t, int W) { return W > 0 && t - W + 1 > s0 ? t - W + 1 : s0; }

// o [T,H,D], lse [T,H] (may be NULL) in double, straight from the definition.
static void ref_forward(double *o, double *lse, const double *q, const double *k, const double *v, const ref_ctx *c) {
    int H = c->H, KV = c->KV, D = c->D, group = H / KV;
    double scale = 1.0 / sqrt((double)D);
    int longest = 0;
    for (int s = 0; s < c->nseq; s++)
        if (c->cu[s + 1] - c->cu[s] > longest) longest = c->cu[s + 1] - c->cu[s];
    double *w = ophelp_doubles(longest + 1);
    for (int s = 0; s < c->nseq; s++)
        for (int t = c->cu[s]; t < c->cu[s + 1]; t++)
            for (int h = 0; h < H; h++) {
                const double *qt = q + ((size_t)t * H + h) * D;
                double mx = -INFINITY;
                const int j0 = ref_first(c->cu[s], t, c->W);
                for (int j = j0; j <= t; j++) {
                    const double *kj = k + ((size_t)j * KV + h / group) * D;
                    double dot = 0;
                    for (int d = 0; d < D; d++) dot += qt[d] * kj[d];
                    w[j - c->cu[s]] = dot * scale;
                    if (dot * scale > mx) mx = dot * scale;
                }
                double sum = 0;
                for (int j = j0; j <= t; j++) sum += exp(w[j - c->cu[s]] - mx);
                double *ot = o + ((size_t)t * H + h) * D;
                for (int d = 0; d < D; d++) ot[d] = 0;
                for (int j = j0; j <= t; j++) {
                    double p = exp(w[j - c->cu[s]] - mx) / sum;
                    const double *vj = v + ((size_t)j * KV + h / group) * D;
                    for (int d = 0; d < D; d++) ot[d] += p * vj[d];
                }
                if (lse) lse[(size_t)t * H + h] = mx + log(sum);
            }
    free(w);
}

static void ref_forward_fn(double *out, double *const *in, const void *ctx) {
    ref_forward(out, NULL, in[0], in[1], in[2], ctx);
}

// Analytic backward in double (overwrites): per query row, P from the definition,
// dS_j = P_j (dO . v_j - dO . o), dq = scale sum_j dS_j k_j, dk_j += scale dS_j q, dv_j += P_j dO.
static void ref_backward(double *dq, double *dk, double *dv, const double *dout, const double *q, const double *k,
                         const double *v, const ref_ctx *c) {
    int H = c->H, KV = c->KV, D = c->D, group = H / KV;
    size_t T = (size_t)c->cu[c->nseq];
    double scale = 1.0 / sqrt((double)D);
    double *o = ophelp_doubles(T * H * D), *lse = ophelp_doubles(T * H);
    ref_forward(o, lse, q, k, v, c);
    memset(dq, 0, T * H * D * sizeof(double));
    memset(dk, 0, T * KV * D * sizeof(double));
    memset(dv, 0, T * KV * D * sizeof(double));
    for (int s = 0; s < c->nseq; s++)
        for (int t = c->cu[s]; t < c->cu[s + 1]; t++)
            for (int h = 0; h < H; h++) {
                size_t rq = ((size_t)t * H + h) * D;
                double delta = 0;
                for (int d = 0; d < D; d++) delta += dout[rq + d] * o[rq + d];
                for (int j = ref_first(c->cu[s], t, c->W); j <= t; j++) {
                    size_t rk = ((size_t)j * KV + h / group) * D;
                    double dot = 0, dov = 0;
                    for (int d = 0; d < D; d++) {
                        dot += q[rq + d] * k[rk + d];
                        dov += dout[rq + d] * v[rk + d];
                    }
                    double p = exp(dot * scale - lse[(size_t)t * H + h]);
                    double ds = p * (dov - delta);
                    for (int d = 0; d < D; d++) {
                        dq[rq + d] += scale * ds * k[rk + d];
                        dk[rk + d] += scale * ds * q[rq + d];
                        dv[rk + d] += p * dout[rq + d];
                    }
                }
            }
    free(o);
    free(lse);
}

typedef struct {
    int T, H, KV, D, nseq, W;
    int32_t cu[16];
    float *q, *k, *v;
} problem;

static problem problem_make(const int *lens, int nseq, int H, int KV, int D, double amp, uint64_t *rng) {
    problem p = {.H = H, .KV = KV, .D = D, .nseq = nseq, .W = 0};
    p.cu[0] = 0;
    for (int s = 0; s < nseq; s++) p.cu[s + 1] = p.cu[s] + lens[s];
    p.T = p.cu[nseq];
    size_t nq = (size_t)p.T * H * D, nk = (size_t)p.T * KV * D;
    p.q = ophelp_floats(nq);
    p.k = ophelp_floats(nk);
    p.v = ophelp_floats(nk);
    test_fill(p.q, nq, rng, -amp, amp);
    test_fill(p.k, nk, rng, -amp, amp);
    test_fill(p.v, nk, rng, -1, 1);
    return p;
}
static void problem_free(problem *p) {
    free(p->q);
    free(p->k);
    free(p->v);
}

static void describe(char *buf, size_t n, const problem *p, double amp) {
    int off = snprintf(buf, n, "H=%d KV=%d D=%d amp=%g", p->H, p->KV, p->D, amp);
    if (p->W) off += snprintf(buf + off, n - off, " W=%d", p->W);
    off += snprintf(buf + off, n - off, " lens");
    for (int s = 0; s < p->nseq && off < (int)n; s++)
        off += snprintf(buf + off, n - off, "%s%d", s ? "," : " ", p->cu[s + 1] - p->cu[s]);
}

// forward vs reference; backward vs FD (fd = 1) or vs the analytic double backward (fd = 0)
static void check_case(const problem *p, double amp, int fd, uint64_t *rng) {
    size_t nq = (size_t)p->T * p->H * p->D, nk = (size_t)p->T * p->KV * p->D, nl = (size_t)p->T * p->H;
    ref_ctx c = {p->cu, p->nseq, p->H, p->KV, p->D, p->W};
    double *qd = ophelp_to_double(p->q, nq), *kd = ophelp_to_double(p->k, nk), *vd = ophelp_to_double(p->v, nk);
    double *o_ref = ophelp_doubles(nq), *lse_ref = ophelp_doubles(nl);
    ref_forward(o_ref, lse_ref, qd, kd, vd, &c);
    float *o = ophelp_floats(nq), *lse = ophelp_floats(nl);
    attention_forward_cpu(o, lse, p->q, p->k, p->v, p->cu, p->nseq, p->H, p->KV, p->D, p->W);
    double ef = ophelp_compare(o, o_ref, nq).nerr;
    // lse is a log: judged in absolute terms relative to its magnitude (>= 1)
    double el = 0;
    for (size_t i = 0; i < nl; i++) {
        double d = fabs(lse[i] - lse_ref[i]) / fmax(1.0, fabs(lse_ref[i]));
        if (!(d <= el)) el = d;
    }
    // backward with a random cotangent, started from random gradients (it must accumulate)
    float *r = ophelp_floats(nq);
    test_fill(r, nq, rng, -1, 1);
    float *dq = ophelp_floats(nq), *dk = ophelp_floats(nk), *dv = ophelp_floats(nk);
    float *sq = ophelp_acc_begin(dq, nq, rng), *sk = ophelp_acc_begin(dk, nk, rng), *sv = ophelp_acc_begin(dv, nk, rng);
    attention_backward_cpu(dq, dk, dv, r, o, lse, p->q, p->k, p->v, p->cu, p->nseq, p->H, p->KV, p->D, p->W);
    ophelp_acc_end(dq, sq, nq);
    ophelp_acc_end(dk, sk, nk);
    ophelp_acc_end(dv, sv, nk);
    double *rd = ophelp_to_double(r, nq);
    double eg = 0;
    if (fd) {
        ophelp_gradcheck g = {.ref = ref_forward_fn, .ctx = &c, .out_n = nq, .r = rd, .n_in = 3, .max_samples = 0};
        g.in[0] = qd, g.in_n[0] = nq, g.grad[0] = dq;
        g.in[1] = kd, g.in_n[1] = nk, g.grad[1] = dk;
        g.in[2] = vd, g.in_n[2] = nk, g.grad[2] = dv;
        eg = ophelp_grad_err(&g, rng, NULL);
    } else {
        double *dqr = ophelp_doubles(nq), *dkr = ophelp_doubles(nk), *dvr = ophelp_doubles(nk), x;
        ref_backward(dqr, dkr, dvr, rd, qd, kd, vd, &c);
        if ((x = ophelp_compare(dq, dqr, nq).nerr) > eg) eg = x;
        if ((x = ophelp_compare(dk, dkr, nk).nerr) > eg) eg = x;
        if ((x = ophelp_compare(dv, dvr, nk).nerr) > eg) eg = x;
        free(dqr), free(dkr), free(dvr);
    }
    char kase[160];
    describe(kase, sizeof kase, p, amp);
    ophelp_report(fd ? "attention_fd" : "attention", kase, ef, TOL_FWD, eg, TOL_GRAD);
    ophelp_report("attention_lse", kase, el, TOL_FWD, -1, 0);
    free(qd), free(kd), free(vd), free(o_ref), free(lse_ref), free(o), free(lse);
    free(r), free(dq), free(dk), free(dv), free(rd);
}

// GQA is the same as MHA with each kv head repeated H/KV times, gradients summed over the group.
static void check_gqa_repeat(uint64_t *rng) {
    int lens[3] = {40, 1, 140}, H = 8, KV = 2, D = 16, group = H / KV;
    problem p = problem_make(lens, 3, H, KV, D, 1.0, rng);
    size_t nq = (size_t)p.T * H * D, nk = (size_t)p.T * KV * D;
    float *kr = ophelp_floats(nq), *vr = ophelp_floats(nq);
    for (int t = 0; t < p.T; t++)
        for (int h = 0; h < H; h++) {
            memcpy(kr + ((size_t)t * H + h) * D, p.k + ((size_t)t * KV + h / group) * D, D * sizeof(float));
            memcpy(vr + ((size_t)t * H + h) * D, p.v + ((size_t)t * KV + h / group) * D, D * sizeof(float));
        }
    float *o1 = ophelp_floats(nq), *o2 = ophelp_floats(nq), *l1 = ophelp_floats((size_t)p.T * H);
    float *l2 = ophelp_floats((size_t)p.T * H), *r = ophelp_floats(nq);
    attention_forward_cpu(o1, l1, p.q, p.k, p.v, p.cu, p.nseq, H, KV, D, 0);
    attention_forward_cpu(o2, l2, p.q, kr, vr, p.cu, p.nseq, H, H, D, 0);
    test_fill(r, nq, rng, -1, 1);
    float *dq1 = ophelp_floats(nq), *dk1 = ophelp_floats(nk), *dv1 = ophelp_floats(nk);
    float *dq2 = ophelp_floats(nq), *dk2 = ophelp_floats(nq), *dv2 = ophelp_floats(nq);
    float *dk2s = ophelp_floats(nk), *dv2s = ophelp_floats(nk);
    attention_backward_cpu(dq1, dk1, dv1, r, o1, l1, p.q, p.k, p.v, p.cu, p.nseq, H, KV, D, 0);
    attention_backward_cpu(dq2, dk2, dv2, r, o2, l2, p.q, kr, vr, p.cu, p.nseq, H, H, D, 0);
    for (int t = 0; t < p.T; t++)
        for (int h = 0; h < H; h++)
            for (int d = 0; d < D; d++) {
                dk2s[((size_t)t * KV + h / group) * D + d] += dk2[((size_t)t * H + h) * D + d];
                dv2s[((size_t)t * KV + h / group) * D + d] += dv2[((size_t)t * H + h) * D + d];
            }
    double e = test_rel_l2(o1, o2, nq), x;
    if ((x = test_rel_l2(dq1, dq2, nq)) > e) e = x;
    if ((x = test_rel_l2(dk1, dk2s, nk)) > e) e = x;
    if ((x = test_rel_l2(dv1, dv2s, nk)) > e) e = x;
    ophelp_report("attention_gqa_repeat", "H=8 KV=2 D=16 lens 40,1,140", e, TOL_FWD, -1, 0);
    free(kr), free(vr), free(o1), free(o2), free(l1), free(l2), free(r);
    free(dq1), free(dk1), free(dv1), free(dq2), free(dk2), free(dv2), free(dk2s), free(dv2s);
    problem_free(&p);
}

// attention_decode_cpu at every position of one sequence (cache = its k, v as one block of L positions;
// len = t + 1) equals the forward's row t, with the same window.
static void check_decode(int L, int H, int KV, int D, int W, uint64_t *rng) {
    problem p = problem_make(&L, 1, H, KV, D, 1.0, rng);
    p.W = W;
    size_t nq = (size_t)L * H * D;
    float *o = ophelp_floats(nq), *lse = ophelp_floats((size_t)L * H), *od = ophelp_floats(nq);
    attention_forward_cpu(o, lse, p.q, p.k, p.v, p.cu, 1, H, KV, D, W);
    const int32_t block0 = 0;
    for (int t = 0; t < L; t++)
        attention_decode_cpu(od + (size_t)t * H * D, p.q + (size_t)t * H * D, p.k, p.v, &block0, t + 1, H, KV, D, L, W);
    char kase[96];
    snprintf(kase, sizeof kase, "H=%d KV=%d D=%d W=%d len %d", H, KV, D, W, L);
    ophelp_report("attention_decode", kase, test_rel_l2(od, o, nq), TOL_FWD, -1, 0);
    free(o), free(lse), free(od);
    problem_free(&p);
}

typedef struct {
    const problem *p;
    float *o, *lse, *r, *dq, *dk, *dv;
} perf_ctx;
static void perf_fwd(void *ctx) {
    perf_ctx *c = ctx;
    attention_forward_cpu(c->o, c->lse, c->p->q, c->p->k, c->p->v, c->p->cu, c->p->nseq, c->p->H, c->p->KV, c->p->D,
                          c->p->W);
}
static void perf_bwd(void *ctx) {
    perf_ctx *c = ctx;
    attention_backward_cpu(c->dq, c->dk, c->dv, c->r, c->o, c->lse, c->p->q, c->p->k, c->p->v, c->p->cu, c->p->nseq,
                           c->p->H, c->p->KV, c->p->D, c->p->W);
}
static void perf(uint64_t *rng) {
    int T = 4096;
    for (int KV = 8; KV >= 2; KV /= 4) {
        problem p = problem_make(&T, 1, 8, KV, 128, 1.0, rng);
        size_t nq = (size_t)T * 8 * 128, nk = (size_t)T * KV * 128;
        perf_ctx c = {&p, ophelp_floats(nq), ophelp_floats((size_t)T * 8), ophelp_floats(nq), ophelp_floats(nq),
                      ophelp_floats(nk), ophelp_floats(nk)};
        test_fill(c.r, nq, rng, -1, 1);
        char kase[64];
        snprintf(kase, sizeof kase, "T=4096 H=8 KV=%d D=128", KV);
        double causal = (double)T * (T + 1) / 2 * 8 * 128;  // multiply-adds of one causal Q K^T
        ophelp_perf_line("attention_forward_cpu", kase, ophelp_time_us(perf_fwd, &c, 2.0), 2 * 2 * causal, 0);
        ophelp_perf_line("attention_backward_cpu", kase, ophelp_time_us(perf_bwd, &c, 2.0), 5 * 2 * causal, 0);
        free(c.o), free(c.lse), free(c.r), free(c.dq), free(c.dk), free(c.dv);
        problem_free(&p);
    }
}

int main(int argc, char **argv) {
    uint64_t rng = 0xa77e5710;
    static const struct {
        int nseq, lens[5], H, KV, D;
        double amp;
        int fd, W;
    } cases[] = {
        // finite differences on small problems (every element)
        {1, {1}, 1, 1, 4, 1.0, 1, 0},               // a single token: output = v, lse = score
        {1, {7}, 2, 2, 4, 1.0, 1, 0},               // ratio 1
        {2, {5, 3}, 4, 2, 3, 1.0, 1, 0},            // ratio 2, packed
        {3, {4, 1, 6}, 4, 1, 4, 1.0, 1, 0},         // ratio 4, packed with a length-1 sequence
        {2, {6, 5}, 2, 1, 8, 2.0, 1, 0},            // sharper softmax
        // analytic double backward on larger problems
        {1, {200}, 4, 4, 32, 1.0, 0, 0},            // across the 128-row query block
        {3, {129, 1, 257}, 8, 4, 16, 1.0, 0, 0},    // ratio 2, lengths at block edges
        {4, {128, 2, 300, 33}, 8, 2, 64, 1.0, 0, 0},// ratio 4
        {2, {150, 90}, 4, 1, 128, 1.0, 0, 0},       // M1 head size
        {1, {160}, 2, 1, 16, 3.0, 0, 0},            // scores up to ~36: exercises the max subtraction
        {5, {0, 17, 0, 1, 40}, 4, 2, 8, 1.0, 0, 0}, // empty sequences in the pack
        // sliding windows: key j visible from query i iff 0 <= i - j < W
        {1, {6}, 2, 1, 4, 1.0, 1, 2},            // W = 2
        {2, {6, 9}, 2, 1, 4, 1.0, 0, 1},         // W = 1: each query sees only itself (o = v, dq = dk = 0)
        {2, {9, 4}, 4, 2, 3, 1.0, 1, 3},         // W < lengths, packed
        {2, {5, 7}, 2, 2, 4, 2.0, 1, 7},         // W >= every length: the causal result
        {3, {300, 1, 140}, 4, 2, 16, 1.0, 0, 50},   // W < query block: blocks start at r0 - W + 1
        {2, {400, 260}, 4, 1, 8, 1.0, 0, 200},   // W > query block
        {1, {257}, 2, 2, 32, 3.0, 0, 129},       // W at a block edge, sharp scores
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        problem p = problem_make(cases[i].lens, cases[i].nseq, cases[i].H, cases[i].KV, cases[i].D, cases[i].amp, &rng);
        p.W = cases[i].W;
        check_case(&p, cases[i].amp, cases[i].fd, &rng);
        problem_free(&p);
    }
    check_gqa_repeat(&rng);
    check_decode(37, 4, 2, 8, 0, &rng);
    check_decode(37, 4, 2, 8, 5, &rng);
    check_decode(20, 2, 1, 16, 1, &rng);
    check_decode(20, 2, 2, 16, 20, &rng);
    if (argc > 1 && strcmp(argv[1], "--perf") == 0) perf(&rng);
    ophelp_print_worst();
    return test_finish("test_attention");
}
