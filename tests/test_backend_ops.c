// tests/test_backend_ops.c — every op of the op API (kernels/ops.h) on every backend against the CPU
// backend, in the manner of ggml's test-backend-ops: one table of op cases, one output row per
// (op, shape, backend).
//   build-x/tests/test_backend_ops                       every case on every backend that can run it
//   build-x/tests/test_backend_ops --op attention_forward,attention_backward --backend cuda
//   build-x/tests/test_backend_ops --perf                also us/run and GB/s or TFLOP/s (never asserted)
//   build-x/tests/test_backend_ops --require-cuda        fails when no CUDA device can run the rows
//   build-x/tests/test_backend_ops --perf --defaults --shape 'rows8192|lens 4096'   some rows, no knob variants
// Run from the repository root.
//
// A case draws fresh random inputs (never zeros; ids, offsets, slots and permutations valid; MoE
// logits without near-ties so integer outputs can be demanded exactly), then:
//  - reference: the op through the op API on the CPU backend in fp32. When the backend under test
//    keeps activations in bf16, the reference's activation-dtype inputs are rounded to bf16 first,
//    so both sides see the same values and only the backend's own arithmetic differs.
//  - backend under test: inputs uploaded (backend_fill_f32 / backend_upload), written outputs
//    poisoned with NaN (integers with a sentinel) so an unwritten element fails, accumulated
//    outputs (OP_ACCUMULATE, parameter gradients) preset to random values the size of the result, so
//    an op that overwrites instead of adding fails.
//  - error of an output: ||out - ref|| / ||ref|| (NaN anywhere fails), integers exactly equal; the
//    row shows the worst output relative to its limit.
//  - on the CPU backend the op API must also equal the direct *_cpu call (kernels/cpu/ops_cpu.h),
//    and every backward op is checked against central finite differences (in double) of a random
//    linear functional of its forward: a second row "fd".
// Limits: CPU backend 1e-6 (it is the same arithmetic); bf16 backends 1e-2 for bf16 outputs (and
// for the lightning kernels' every output, as their GPU test had), 1e-4..1e-5 for fp32 statistics
// computed in fp32 from the same bf16 inputs, 1e-7 for the fp32 optimizer ops; finite differences
// 1e-3. Integer outputs: 0 mismatches.
#include "base/common.h"
#include "kernels/backend.h"
#include "kernels/cpu/ops_cpu.h"
#include "kernels/ops.h"
#include "tests/testutil.h"
#ifdef CISPO_HAVE_CUDA
#include "kernels/cuda/lightning.h"  // lightning_decode_cuda on contiguous states, argument checks
#endif

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define CPU_TOL 1e-6     // the CPU backend against the CPU reference and the direct *_cpu call
#define BF16_TOL 1e-2    // bf16 outputs of a bf16 backend
#define STAT_TOL 1e-4    // fp32 statistics computed from bf16 inputs (GEMM outputs, lse, logp)
#define FD_TOL 1e-3      // backward against central finite differences
#define FD_STEP 1e-2     // central-difference step (inputs are O(1))
#define FD_SAMPLES 6     // random elements probed per differentiated tensor (plus the 2 largest)
#define FD_MAX_ELEMS 300000  // cases larger than this skip the finite-difference row
#define INT_POISON (-12345)

static uint64_t rng = 0xb4c0e5u;
static int g_dry;  // building a case only for its shape string: no fills, no derived inputs
static double urand(double lo, double hi) { return test_uniform(&rng, lo, hi); }
static int irand(int n) { return (int)(test_rng_next(&rng) % (uint64_t)n); }

// ===================================================================== case description
// activation dtype of the context, always fp32, int32, a parameter gradient (the context's grad_dtype: fp32, or bf16
// in a CASE_GRAD_BF16 row)
enum { TK_ACT, TK_F32, TK_I32, TK_GRAD };
enum {
    TR_IN,     // input
    TR_OUT,    // written output: poisoned before the run
    TR_ACC,    // accumulated output: preset to random values, the op adds to them
    TR_INOUT,  // updated in place (caches, states, optimizer state)
    TR_HOST,   // host-only: used by the finite-difference loss, never given to the op
    TR_NONE    // an optional argument passed as NULL
};
#define MAXT 16

typedef struct {
    const char *name;
    int kind, role;
    size_t n;
    float *f;    // host values (TK_ACT, TK_F32)
    int32_t *i;  // host values (TK_I32)
    double tol;  // limit on a bf16 backend (0: the case's)
    int nan_ok;  // elements the op leaves alone may stay NaN (padding columns of a strided output)
    double floor;  // an output whose rms is below this is 0 in exact arithmetic (rounding noise on both sides): its
                   // error is relative to this rms, and an accumulated one's prior is this size
    double prior_scale;  // TR_ACC: the op scales the prior by this before it adds (0: 1, as most ops add)
} tens_t;

typedef struct opcase opcase_t;
typedef void (*run_fn)(backend_t *b, void **p, const opcase_t *c, double *ret);
typedef void (*direct_fn)(void **p, const opcase_t *c, double *ret);
typedef double (*loss_fn)(const opcase_t *c);
typedef int (*custom_fn)(backend_t *b, opcase_t *c, double *err, double *limit, char *note, size_t note_cap);

enum {
    CASE_CPU_ONLY = 1,         // a shape only for the CPU (small head dims the GPU kernels do not take)
    CASE_CUDA_ROWS_ONLY = 2,   // large shape: only as a GPU row (its CPU row would repeat the reference)
    CASE_CUDA_WRITE_ONLY = 4,  // the CUDA dispatch takes OP_WRITE only for this op
    CASE_PERF_ONLY = 8,        // a timing shape: only with --perf, not compared
    CASE_GRAD_BF16 = 16,       // the op's parameter gradients in bf16 (grad_dtype bf16): a CUDA row only
    CASE_SKINNY_NARROW = 32,   // gg_skinny_wide = -1: decode-sized expert products through the 32-k skinny tiles
    CASE_DENSE_SKINNY = 64,    // dense_skinny = 256: matmul's linear layers of up to 256 rows through the wide-k tiles
    CASE_SKINNY_LOOP = 128,    // gg_skinny_wide = 2: the wide-k tiles on a persistent grid (gs_forward_loop)
    CASE_INFLIGHT = 256,       // wg_wgrad_inflight = -1 (and wg_wgrad_tma = -1): the weight gradient's wgmmas waited
                               // for each step (the cp.async kernel otherwise keeps them in flight a step)
    CASE_PINGPONG = 512,       // attn_fwd_pingpong = -1 (and attn_fwd_tma = -1): the wgmma attention forward's
                               // warpgroups issue together (the cp.async kernel otherwise has them take turns)
    // a cuda kernel choice: no cpu row
    CASE_TMA = 1024,           // attn_fwd_tma = -1: the ping-pong forward on cp.async (the default adds each warpgroup's
                               // overlap and TMA loads); wg_wgrad_tma = -1: the weight gradient on cp.async, wgmmas in
                               // flight a step (the default takes its operands by the TMA)
    CASE_CLUSTER8 = 2048,      // sample_cluster = 8: a sampled row over 8 CTAs whatever its length and the rows
    CASE_BWD_OVL = 4096,       // attn_bwd_overlap = -1: the attention backward's dQ atomics after dV's and dK's products
    CASE_KNOBS = CASE_SKINNY_NARROW | CASE_DENSE_SKINNY | CASE_SKINNY_LOOP | CASE_INFLIGHT | CASE_PINGPONG |
                 CASE_TMA | CASE_CLUSTER8 | CASE_BWD_OVL,
};

struct opcase {
    int op;
    char shape[160];
    int nt;
    tens_t t[MAXT];
    int p[12];
    float f[6];
    int lens[12], nlens;
    int bf16;  // the backend under test keeps activations in bf16 (inputs are rounded for the reference)
    int gbf16; // ... and parameter gradients (TK_GRAD) in bf16: CASE_GRAD_BF16 on such a backend
    // packed sequences: the cu tensor's index, its host copy, counts
    int cu_idx, nseq, T, max_len;
    int32_t *cu_host;
    float *hostf;  // host-side parameter (rope inv_freq)
    double tol;    // default limit on a bf16 backend
    int has_ret;   // the op returns a host value (sum_squares)
    double ret_tol;
    run_fn run;
    direct_fn direct;
    int direct_zero;  // the direct *_cpu call accumulates into its written outputs: zero them first
    loss_fn loss;     // finite differences: L(inputs) in double
    int ngrad, grad_in[4], grad_out[4];
    custom_fn custom;
    op_ws_shape_t ws;
    double flops;
    int flags;
};

typedef struct {
    int op;
    void (*build)(opcase_t *c);
    int p[12];
    float f[6];
    int lens[12];
    int nlens;
    int flags;
} entry_t;

static void *xcalloc(size_t n, size_t sz) { return cispo_calloc(n ? n : 1, sz); }

static int t_add(opcase_t *c, const char *name, int kind, int role, size_t n) {
    CISPO_ASSERT(c->nt < MAXT);
    tens_t *t = &c->t[c->nt];
    memset(t, 0, sizeof *t);
    t->name = name, t->kind = kind, t->role = role, t->n = role == TR_NONE ? 0 : n;
    if (role != TR_NONE) {
        if (kind == TK_I32) t->i = xcalloc(n + 1, sizeof(int32_t));
        else t->f = xcalloc(n + 1, sizeof(float));
    }
    return c->nt++;
}
static float round_bf16(float x) { return bf16_to_f32(f32_to_bf16(x)); }
// Whether a tensor of this kind is bf16 on the backend under test.
static int is_bf16(const opcase_t *c, int kind) { return (kind == TK_ACT && c->bf16) || (kind == TK_GRAD && c->gbf16); }
static void fill_uniform(opcase_t *c, int idx, double lo, double hi) {
    tens_t *t = &c->t[idx];
    if (g_dry || !(hi > lo)) return;  // lo == hi: the builder fills it (derived inputs)
    for (size_t i = 0; i < t->n; i++) {
        float x;
        do x = (float)urand(lo, hi);
        while (x == 0.0f);
        t->f[i] = is_bf16(c, t->kind) ? round_bf16(x) : x;
    }
}
static int t_act(opcase_t *c, const char *name, int role, size_t n, double lo, double hi) {
    int i = t_add(c, name, TK_ACT, role, n);
    if (role == TR_IN || role == TR_INOUT || role == TR_HOST) fill_uniform(c, i, lo, hi);
    return i;
}
static int t_f32(opcase_t *c, const char *name, int role, size_t n, double lo, double hi) {
    int i = t_add(c, name, TK_F32, role, n);
    if (role == TR_IN || role == TR_INOUT || role == TR_HOST) fill_uniform(c, i, lo, hi);
    return i;
}
static int t_grad(opcase_t *c, const char *name, int role, size_t n, double lo, double hi) {
    int i = t_add(c, name, TK_GRAD, role, n);
    if (role == TR_IN || role == TR_INOUT || role == TR_HOST) fill_uniform(c, i, lo, hi);
    return i;
}
static int t_i32(opcase_t *c, const char *name, int role, size_t n) { return t_add(c, name, TK_I32, role, n); }
static int t_none(opcase_t *c, const char *name) { return t_add(c, name, TK_F32, TR_NONE, 0); }
// Rounds tensor idx's host values to bf16 where the backend under test keeps its kind in bf16 (is_bf16).
static void round_to_backend(opcase_t *c, int idx) {
    if (!is_bf16(c, c->t[idx].kind)) return;
    for (size_t i = 0; i < c->t[idx].n; i++) c->t[idx].f[i] = round_bf16(c->t[idx].f[i]);
}

// Packed sequences from the entry's lengths: an int32 input tensor cu [nseq+1].
static int t_seqs(opcase_t *c) {
    int idx = t_i32(c, "cu", TR_IN, (size_t)c->nlens + 1);
    int32_t *cu = c->t[idx].i;
    cu[0] = 0;
    c->max_len = 0;
    for (int s = 0; s < c->nlens; s++) {
        cu[s + 1] = cu[s] + c->lens[s];
        if (c->lens[s] > c->max_len) c->max_len = c->lens[s];
    }
    c->cu_idx = idx, c->nseq = c->nlens, c->T = cu[c->nlens], c->cu_host = cu;
    return idx;
}
static void seqs_count(opcase_t *c) {
    c->T = 0;
    for (int s = 0; s < c->nlens; s++) c->T += c->lens[s];
    c->nseq = c->nlens;
}
static op_seqs_t seqs_of(void **p, const opcase_t *c) {
    op_seqs_t s = {(const int32_t *)p[c->cu_idx], c->cu_host, c->nseq, c->T, c->max_len};
    return s;
}
// "lens 63,1,0,64" (at most a few lengths, then "... (n)")
static void lens_str(const opcase_t *c, char *out, size_t cap) {
    size_t o = (size_t)snprintf(out, cap, "lens ");
    for (int s = 0; s < c->nlens && o < cap; s++) {
        if (s == 6 && c->nlens > 7) {
            o += (size_t)snprintf(out + o, cap - o, "...(%d)", c->nlens);
            break;
        }
        o += (size_t)snprintf(out + o, cap - o, "%s%d", s ? "," : "", c->lens[s]);
    }
}
static void perm_fill(int32_t *p, int n) {  // random permutation of 0..n-1
    for (int i = 0; i < n; i++) p[i] = i;
    for (int i = n - 1; i > 0; i--) {
        int j = irand(i + 1);
        int32_t t = p[i];
        p[i] = p[j], p[j] = t;
    }
}
// topk_idx [T,K]: K distinct experts per token
static void topk_fill(int32_t *idx, int T, int E, int K) {
    int32_t *perm = xcalloc((size_t)E, sizeof(int32_t));
    for (int t = 0; t < T; t++) {
        perm_fill(perm, E);
        memcpy(idx + (size_t)t * K, perm, (size_t)K * sizeof(int32_t));
    }
    free(perm);
}
// MoE logits without near-ties: a permutation of a 1/8 grid (exact in bf16) plus a row offset.
static void logits_fill(float *z, int T, int E) {
    int32_t *perm = xcalloc((size_t)E, sizeof(int32_t));
    for (int t = 0; t < T; t++) {
        perm_fill(perm, E);
        float off = 0.125f * (float)(irand(16) - 8) - 0.0625f * (float)E / 2;
        for (int e = 0; e < E; e++) z[(size_t)t * E + e] = off + 0.125f * (float)perm[e] + 0.0625f;
    }
    free(perm);
}
// Activation inputs away from the kinks of relu/relu6/hardswish/leaky (0, -3, 3, 6) so that finite
// differences with step FD_STEP never straddle one.
static void act_input_fill(opcase_t *c, int idx, double lo, double hi) {
    static const double kinks[] = {0.0, -3.0, 3.0, 6.0};
    tens_t *t = &c->t[idx];
    if (g_dry) return;
    for (size_t i = 0; i < t->n; i++) {
        float x;
        int near;
        do {
            x = (float)urand(lo, hi);
            if (c->bf16) x = round_bf16(x);
            near = 0;
            for (int k = 0; k < 4; k++) near |= fabs(x - kinks[k]) < 0.05;
        } while (near);
        t->f[i] = x;
    }
}

#define PF(i) ((float *)p[i])
#define PI(i) ((int32_t *)p[i])
#define HF(x) (c->t[x].f)
#define HI(x) (c->t[x].i)

static const char *const act_names[ACT_COUNT] = {"silu", "gelu", "gelu_tanh", "gelu_10", "quick_gelu", "relu",
                                                 "relu2", "relu6", "leaky_relu", "sigmoid", "tanh", "linear",
                                                 "mish", "laplace", "hardswish", "sqrtsoftplus"};
static const char *acc_name(int acc) { return acc == OP_ACCUMULATE ? "acc" : "write"; }
static double dot_d(const float *a, const float *b, size_t n) {
    double s = 0;
    for (size_t i = 0; i < n; i++) s += (double)a[i] * (double)b[i];
    return s;
}

// ===================================================================== GEMM
// p: m n k trans_a trans_b; f: alpha beta.  tensors: c a b
static void r_matmul(backend_t *b, void **p, const opcase_t *c, double *ret) {
    (void)ret;
    matmul(b, p[0], p[1], p[2], c->p[0], c->p[1], c->p[2], c->p[3], c->p[4], c->f[0], c->f[1]);
}
static void d_matmul(void **p, const opcase_t *c, double *ret) {
    (void)ret;
    matmul_cpu(PF(0), PF(1), PF(2), c->p[0], c->p[1], c->p[2], c->p[3], c->p[4], c->f[0], c->f[1]);
}
static void b_matmul(opcase_t *c) {
    int m = c->p[0], n = c->p[1], k = c->p[2];
    t_act(c, "c", c->f[1] != 0 ? TR_INOUT : TR_OUT, (size_t)m * n, -1, 1);
    t_act(c, "a", TR_IN, (size_t)m * k, -1, 1);
    t_act(c, "b", TR_IN, (size_t)k * n, -1, 1);
    snprintf(c->shape, sizeof c->shape, "m%d n%d k%d %c%c alpha%g beta%g", m, n, k, c->p[3] ? 'T' : 'N',
             c->p[4] ? 'T' : 'N', c->f[0], c->f[1]);
    c->run = r_matmul, c->direct = d_matmul, c->flops = 2.0 * m * n * k;
}

// p: n_out n_in T write.  tensors: dw dy x W(host)
static void r_matmul_wgrad(backend_t *b, void **p, const opcase_t *c, double *ret) {
    (void)ret;
    matmul_wgrad(b, PF(0), p[1], p[2], c->p[0], c->p[1], c->p[2], c->p[3] ? OP_WRITE : OP_ACCUMULATE);
}
static void d_matmul_wgrad(void **p, const opcase_t *c, double *ret) {
    (void)ret;
    matmul_wgrad_cpu(PF(0), PF(1), PF(2), c->p[0], c->p[1], c->p[2], c->p[3] ? OP_WRITE : OP_ACCUMULATE);
}
static double l_matmul_wgrad(const opcase_t *c) {  // L = <dy, x W^T>
    int no = c->p[0], ni = c->p[1], T = c->p[2];
    float *y = xcalloc((size_t)T * no, sizeof(float));
    matmul_cpu(y, HF(2), HF(3), T, no, ni, 0, 1, 1.0f, 0.0f);
    double l = dot_d(y, HF(1), (size_t)T * no);
    free(y);
    return l;
}
static void b_matmul_wgrad(opcase_t *c) {
    int no = c->p[0], ni = c->p[1], T = c->p[2];
    c->t[t_grad(c, "dw", c->p[3] ? TR_OUT : TR_ACC, (size_t)no * ni, 0, 0)].tol = STAT_TOL;
    t_act(c, "dy", TR_IN, (size_t)T * no, -1, 1);
    t_act(c, "x", TR_IN, (size_t)T * ni, -1, 1);
    t_f32(c, "W", TR_HOST, (size_t)no * ni, -1, 1);
    snprintf(c->shape, sizeof c->shape, "out%d in%d T%d %s", no, ni, T, c->p[3] ? "write" : "acc");
    c->run = r_matmul_wgrad, c->direct = d_matmul_wgrad, c->loss = l_matmul_wgrad;
    c->ngrad = 1, c->grad_in[0] = 3, c->grad_out[0] = 0;
    c->flops = 2.0 * no * ni * T;
}

// Random group offsets [G+1] over `rows` rows, some groups empty.
static void offsets_fill(int32_t *off, int G, int rows) {
    off[0] = 0;
    for (int g = 1; g < G; g++) off[g] = irand(rows + 1);
    off[G] = rows;
    for (int i = 1; i < G; i++)  // insertion sort of the cut points
        for (int j = i; j > 1 && off[j] < off[j - 1]; j--) {
            int32_t t = off[j];
            off[j] = off[j - 1], off[j - 1] = t;
        }
    if (G >= 3) off[1] = 0;  // group 0 empty
    if (G >= 4) off[G - 1] = off[G - 2];  // an empty group in the middle
}
// Even group offsets (a timing shape as the per-op peers time it: rows / G rows per group).
static void offsets_even(int32_t *off, int G, int rows) {
    for (int g = 0; g <= G; g++) off[g] = (int32_t)((long)rows * g / G);
}
static void set_ws_groups(opcase_t *c, int G, int rows, int n, int k) {
    c->ws.E = G, c->ws.T = rows, c->ws.K = 1, c->ws.C = c->ws.F = n > k ? n : k;
}
// p: G rows n k trans_w lda_pad ldc_pad even; f: beta.  tensors: c a w offsets
static void r_grouped_matmul(backend_t *b, void **p, const opcase_t *c, double *ret) {
    (void)ret;
    int n = c->p[2], k = c->p[3];
    grouped_matmul(b, p[0], n + c->p[6], p[1], k + c->p[5], p[2], c->p[4], PI(3), c->p[0], c->p[1], n, k, c->f[0]);
}
static void d_grouped_matmul(void **p, const opcase_t *c, double *ret) {
    (void)ret;
    int n = c->p[2], k = c->p[3];
    grouped_matmul_cpu(PF(0), n + c->p[6], PF(1), k + c->p[5], PF(2), c->p[4], PI(3), c->p[0], n, k, c->f[0]);
}
static void b_grouped_matmul(opcase_t *c) {
    int G = c->p[0], rows = c->p[1], n = c->p[2], k = c->p[3];
    int lda = k + c->p[5], ldc = n + c->p[6];
    c->t[t_act(c, "c", c->f[0] != 0 ? TR_INOUT : TR_OUT, (size_t)rows * ldc, -1, 1)].nan_ok = 1;
    t_act(c, "a", TR_IN, (size_t)rows * lda, -1, 1);
    t_act(c, "w", TR_IN, (size_t)G * n * k, -1, 1);
    int32_t *off = HI(t_i32(c, "offsets", TR_IN, (size_t)G + 1));
    if (c->p[7]) offsets_even(off, G, rows);  // p[7]: even groups
    else offsets_fill(off, G, rows);
    snprintf(c->shape, sizeof c->shape, "G%d rows%d n%d k%d %s lda%d ldc%d beta%g%s", G, rows, n, k,
             c->p[4] ? "W^T" : "W", lda, ldc, c->f[0], c->p[7] ? " even" : "");
    c->run = r_grouped_matmul, c->direct = d_grouped_matmul, c->flops = 2.0 * rows * n * k;
    set_ws_groups(c, G, rows, n, k);
}

// p: G rows n k lda_pad ldc_pad (ldc = 2n + pad) even.  tensors: c a w v offsets
static void r_grouped_matmul_pair(backend_t *b, void **p, const opcase_t *c, double *ret) {
    (void)ret;
    int n = c->p[2], k = c->p[3];
    grouped_matmul_pair(b, p[0], 2 * n + c->p[5], p[1], k + c->p[4], p[2], p[3], PI(4), c->p[0], c->p[1], n, k);
}
static void d_grouped_matmul_pair(void **p, const opcase_t *c, double *ret) {
    (void)ret;
    int n = c->p[2], k = c->p[3];
    grouped_matmul_pair_cpu(PF(0), 2 * n + c->p[5], PF(1), k + c->p[4], PF(2), PF(3), PI(4), c->p[0], n, k);
}
static void b_grouped_matmul_pair(opcase_t *c) {
    int G = c->p[0], rows = c->p[1], n = c->p[2], k = c->p[3];
    int lda = k + c->p[4], ldc = 2 * n + c->p[5];
    c->t[t_act(c, "c", TR_OUT, (size_t)rows * ldc, -1, 1)].nan_ok = 1;
    t_act(c, "a", TR_IN, (size_t)rows * lda, -1, 1);
    t_act(c, "w", TR_IN, (size_t)G * n * k, -1, 1);
    t_act(c, "v", TR_IN, (size_t)G * n * k, -1, 1);
    int32_t *off = HI(t_i32(c, "offsets", TR_IN, (size_t)G + 1));
    if (c->p[6]) offsets_even(off, G, rows);  // p[6]: even groups
    else offsets_fill(off, G, rows);
    snprintf(c->shape, sizeof c->shape, "G%d rows%d n%d k%d lda%d ldc%d%s", G, rows, n, k, lda, ldc,
             c->p[6] ? " even" : "");
    c->run = r_grouped_matmul_pair, c->direct = d_grouped_matmul_pair, c->flops = 4.0 * rows * n * k;
    set_ws_groups(c, G, rows, 2 * n, k);
}

// p: G rows n k lda_pad act even gk (> 0: A's row s is a's row gather[s] / gk, gather a permutation of the rows,
// a rows / gk rows: moe_dispatch's perm).  tensors: out a w v offsets [gather]
static void r_grouped_matmul_glu(backend_t *b, void **p, const opcase_t *c, double *ret) {
    (void)ret;
    int n = c->p[2], k = c->p[3];
    grouped_matmul_glu(b, p[0], p[1], k + c->p[4], p[2], p[3], PI(4), c->p[0], c->p[1], n, k, c->p[5],
                       c->p[7] ? PI(5) : NULL, c->p[7]);
}
static void d_grouped_matmul_glu(void **p, const opcase_t *c, double *ret) {
    (void)ret;
    int n = c->p[2], k = c->p[3];
    grouped_matmul_glu_cpu(PF(0), PF(1), k + c->p[4], PF(2), PF(3), PI(4), c->p[0], c->p[1], n, k, c->p[5],
                           c->p[7] ? PI(5) : NULL, c->p[7]);
}
static void b_grouped_matmul_glu(opcase_t *c) {
    int G = c->p[0], rows = c->p[1], n = c->p[2], k = c->p[3], lda = k + c->p[4], gk = c->p[7];
    CISPO_ASSERT(gk == 0 || rows % gk == 0);
    t_act(c, "out", TR_OUT, (size_t)rows * n, -1, 1);
    t_act(c, "a", TR_IN, (size_t)(gk ? rows / gk : rows) * lda, -1, 1);
    t_act(c, "w", TR_IN, (size_t)G * n * k, -1, 1);
    t_act(c, "v", TR_IN, (size_t)G * n * k, -1, 1);
    int32_t *off = HI(t_i32(c, "offsets", TR_IN, (size_t)G + 1));
    if (c->p[6]) offsets_even(off, G, rows);
    else offsets_fill(off, G, rows);
    if (gk) {
        int32_t *ga = HI(t_i32(c, "gather", TR_IN, (size_t)rows));
        if (!g_dry) perm_fill(ga, rows);
    }
    snprintf(c->shape, sizeof c->shape, "G%d rows%d n%d k%d lda%d %s%s%s", G, rows, n, k, lda, act_names[c->p[5]],
             c->p[6] ? " even" : "", gk ? (gk == 1 ? " gather/1" : gk == 2 ? " gather/2" : " gather/K") : "");
    c->run = r_grouped_matmul_glu, c->direct = d_grouped_matmul_glu, c->flops = 4.0 * rows * n * k;
    set_ws_groups(c, G, rows, 2 * n, k);
}

// p: G rows n k lda_pad lddc_pad write even.  tensors: dw dc a offsets W(host)
static void r_grouped_matmul_wgrad(backend_t *b, void **p, const opcase_t *c, double *ret) {
    (void)ret;
    int n = c->p[2], k = c->p[3];
    grouped_matmul_wgrad(b, PF(0), p[1], n + c->p[5], p[2], k + c->p[4], PI(3), c->p[0], c->p[1], n, k,
                         c->p[6] ? OP_WRITE : OP_ACCUMULATE);
}
static void d_grouped_matmul_wgrad(void **p, const opcase_t *c, double *ret) {
    (void)ret;
    int n = c->p[2], k = c->p[3];
    grouped_matmul_wgrad_cpu(PF(0), PF(1), n + c->p[5], PF(2), k + c->p[4], PI(3), c->p[0], n, k,
                             c->p[6] ? OP_WRITE : OP_ACCUMULATE);
}
static double l_grouped_matmul_wgrad(const opcase_t *c) {  // L = <dc, A_g W_g^T>
    int G = c->p[0], rows = c->p[1], n = c->p[2], k = c->p[3], ldc = n + c->p[5];
    float *y = xcalloc((size_t)rows * ldc, sizeof(float));
    grouped_matmul_cpu(y, ldc, HF(2), k + c->p[4], HF(4), 1, HI(3), G, n, k, 0.0f);
    double l = dot_d(y, HF(1), (size_t)rows * ldc);  // padding columns of y stay 0
    free(y);
    return l;
}
static void b_grouped_matmul_wgrad(opcase_t *c) {
    int G = c->p[0], rows = c->p[1], n = c->p[2], k = c->p[3];
    c->t[t_grad(c, "dw", c->p[6] ? TR_OUT : TR_ACC, (size_t)G * n * k, 0, 0)].tol = STAT_TOL;
    t_act(c, "dc", TR_IN, (size_t)rows * (n + c->p[5]), -1, 1);
    t_act(c, "a", TR_IN, (size_t)rows * (k + c->p[4]), -1, 1);
    int32_t *off = HI(t_i32(c, "offsets", TR_IN, (size_t)G + 1));
    if (c->p[7]) offsets_even(off, G, rows);  // p[7]: even groups
    else offsets_fill(off, G, rows);
    t_f32(c, "W", TR_HOST, (size_t)G * n * k, -1, 1);
    snprintf(c->shape, sizeof c->shape, "G%d rows%d n%d k%d lda%d lddc%d %s%s", G, rows, n, k, k + c->p[4],
             n + c->p[5], c->p[6] ? "write" : "acc", c->p[7] ? " even" : "");
    c->run = r_grouped_matmul_wgrad, c->direct = d_grouped_matmul_wgrad, c->loss = l_grouped_matmul_wgrad;
    c->ngrad = 1, c->grad_in[0] = 4, c->grad_out[0] = 0;
    c->flops = 2.0 * rows * n * k;
    set_ws_groups(c, G, rows, n, k);
}

// ===================================================================== embedding
// p: T C V.  tensors: out ids table
static void r_embedding_forward(backend_t *b, void **p, const opcase_t *c, double *ret) {
    (void)ret;
    embedding_forward(b, p[0], PI(1), p[2], c->p[0], c->p[1]);
}
static void d_embedding_forward(void **p, const opcase_t *c, double *ret) {
    (void)ret;
    embedding_forward_cpu(PF(0), PI(1), PF(2), c->p[0], c->p[1]);
}
static void b_embedding_forward(opcase_t *c) {
    int T = c->p[0], C = c->p[1], V = c->p[2];
    t_act(c, "out", TR_OUT, (size_t)T * C, 0, 0);
    int32_t *ids = HI(t_i32(c, "ids", TR_IN, (size_t)T));
    for (int t = 0; t < T; t++) ids[t] = irand(V);
    t_act(c, "table", TR_IN, (size_t)V * C, -1, 1);
    snprintf(c->shape, sizeof c->shape, "T%d C%d V%d", T, C, V);
    c->run = r_embedding_forward, c->direct = d_embedding_forward;
}
// p: T C V pad_id.  tensors: dtable dout ids table(host)
static void r_embedding_backward(backend_t *b, void **p, const opcase_t *c, double *ret) {
    (void)ret;
    embedding_backward(b, PF(0), p[1], PI(2), c->p[0], c->p[1], c->p[3]);
}
static void d_embedding_backward(void **p, const opcase_t *c, double *ret) {
    (void)ret;
    int T = c->p[0], C = c->p[1], pad = c->p[3];
    for (int t = 0; t < T; t++)
        if (PI(2)[t] != pad) embedding_backward_cpu(PF(0), PF(1) + (size_t)t * C, PI(2) + t, 1, C);
}
static double l_embedding_backward(const opcase_t *c) {  // L = sum over non-pad tokens <dout_t, table[id_t]>
    int T = c->p[0], C = c->p[1], pad = c->p[3];
    float *out = xcalloc((size_t)T * C, sizeof(float));
    embedding_forward_cpu(out, HI(2), HF(3), T, C);
    double l = 0;
    for (int t = 0; t < T; t++)
        if (HI(2)[t] != pad) l += dot_d(out + (size_t)t * C, HF(1) + (size_t)t * C, (size_t)C);
    free(out);
    return l;
}
static void b_embedding_backward(opcase_t *c) {
    int T = c->p[0], C = c->p[1], V = c->p[2], pad = c->p[3];
    c->t[t_grad(c, "dtable", TR_ACC, (size_t)V * C, 0, 0)].tol = STAT_TOL;
    t_act(c, "dout", TR_IN, (size_t)T * C, -1, 1);
    int32_t *ids = HI(t_i32(c, "ids", TR_IN, (size_t)T));
    for (int t = 0; t < T; t++) ids[t] = (pad >= 0 && t % 4 == 1) ? pad : irand(V);  // repeats and pads
    t_f32(c, "table", TR_HOST, (size_t)V * C, -1, 1);
    snprintf(c->shape, sizeof c->shape, "T%d C%d V%d pad%d", T, C, V, pad);
    c->run = r_embedding_backward, c->direct = d_embedding_backward, c->loss = l_embedding_backward;
    c->ngrad = 1, c->grad_in[0] = 3, c->grad_out[0] = 0;
}

// ===================================================================== RMSNorm
// p: T C; f: eps.  tensors: out rstd x w
static void r_rmsnorm_forward(backend_t *b, void **p, const opcase_t *c, double *ret) {
    (void)ret;
    rmsnorm_forward(b, p[0], PF(1), p[2], p[3], c->p[0], c->p[1], c->f[0]);
}
static void d_rmsnorm_forward(void **p, const opcase_t *c, double *ret) {
    (void)ret;
    rmsnorm_forward_cpu(PF(0), PF(1), PF(2), PF(3), c->p[0], c->p[1], c->f[0]);
}
static void b_rmsnorm_forward(opcase_t *c) {
    int T = c->p[0], C = c->p[1];
    t_act(c, "out", TR_OUT, (size_t)T * C, 0, 0);
    c->t[t_f32(c, "rstd", TR_OUT, (size_t)T, 0, 0)].tol = 1e-5;
    t_act(c, "x", TR_IN, (size_t)T * C, -2, 2);
    t_act(c, "w", TR_IN, (size_t)C, 0.5, 1.5);
    snprintf(c->shape, sizeof c->shape, "T%d C%d eps%g", T, C, c->f[0]);
    c->run = r_rmsnorm_forward, c->direct = d_rmsnorm_forward;
}
// p: T C has_r; f: eps alpha beta.  tensors: x_out out rstd r y w
static void r_residual_rmsnorm(backend_t *b, void **p, const opcase_t *c, double *ret) {
    (void)ret;
    residual_rmsnorm(b, p[0], p[1], PF(2), p[3], p[4], c->f[1], c->f[2], p[5], c->p[0], c->p[1], c->f[0]);
}
static void d_residual_rmsnorm(void **p, const opcase_t *c, double *ret) {
    (void)ret;
    residual_rmsnorm_cpu(PF(0), PF(1), PF(2), PF(3), PF(4), c->f[1], c->f[2], PF(5), c->p[0], c->p[1], c->f[0]);
}
static void b_residual_rmsnorm(opcase_t *c) {
    int T = c->p[0], C = c->p[1];
    t_act(c, "x_out", TR_OUT, (size_t)T * C, 0, 0);
    t_act(c, "out", TR_OUT, (size_t)T * C, 0, 0);
    // rstd is of x_out as stored: on a bf16 backend that is x_out rounded (2^-9 relative per element)
    c->t[t_f32(c, "rstd", TR_OUT, (size_t)T, 0, 0)].tol = 4e-3;
    t_act(c, "r", c->p[2] ? TR_IN : TR_NONE, (size_t)T * C, -2, 2);
    t_act(c, "y", TR_IN, (size_t)T * C, -2, 2);
    t_act(c, "w", TR_IN, (size_t)C, 0.5, 1.5);
    snprintf(c->shape, sizeof c->shape, "T%d C%d%s alpha%g beta%g eps%g", T, C, c->p[2] ? "" : " r=NULL", c->f[1],
             c->f[2], c->f[0]);
    c->run = r_residual_rmsnorm, c->direct = d_residual_rmsnorm;
}
// Inputs of residual_rmsnorm_route whose routes have no near-ties after bf16 rounding: a token's y row is a sign
// pattern on one of four blocks of columns (t % 4) plus noise, and the router's weights give each block its own
// order of the experts, logits about 2 * gap apart (gap 0.2, or 8 / E for many experts) and at most 0, the largest
// near 0 where bf16's steps are finest (rounded logits of many experts would tie further down).
static void route_norm_fill(opcase_t *c, int iy, int ir, int iw, int iwg, int T, int C, int E) {
    const int nd = C < 4 ? C : 4;
    const double gap = E <= 40 ? 0.2 : 8.0 / E;
    int32_t *perm = xcalloc((size_t)E, sizeof(int32_t));
    float *g = xcalloc((size_t)nd * E, sizeof(float)), *sg = xcalloc((size_t)C, sizeof(float));
    for (int j = 0; j < nd; j++) {
        perm_fill(perm, E);
        for (int e = 0; e < E; e++) g[(size_t)j * E + e] = (float)((perm[e] - (E - 1)) * gap);
    }
    for (int cc = 0; cc < C; cc++) sg[cc] = irand(2) ? 1.0f : -1.0f;
    for (int t = 0; t < T; t++)
        for (int cc = 0; cc < C; cc++) {
            HF(iy)[(size_t)t * C + cc] = (cc * nd / C == t % nd ? sg[cc] : 0.0f) + (float)urand(-0.02, 0.02);
            if (ir >= 0) HF(ir)[(size_t)t * C + cc] = (float)urand(-0.02, 0.02);
        }
    for (int cc = 0; cc < C; cc++) HF(iw)[cc] = (float)urand(0.9, 1.1);
    for (int e = 0; e < E; e++)
        for (int cc = 0; cc < C; cc++) {
            const int j = cc * nd / C, nb = (j + 1) * C / nd - j * C / nd;  // (block j's columns)
            HF(iwg)[(size_t)e * C + cc] = g[(size_t)j * E + e] * sg[cc] / (float)sqrt((double)nb * C / nd);
        }
    round_to_backend(c, iy), round_to_backend(c, iw), round_to_backend(c, iwg);
    if (ir >= 0) round_to_backend(c, ir);
    free(perm), free(g), free(sg);
}
// p: T C E K has_r sort; f: eps alpha beta.  tensors: x_out out rstd r y w wg logits probs topk_idx topk_w
// [perm offsets count] (sort: the routes sorted too; count holds 0 before and after)
static void r_residual_rmsnorm_route(backend_t *b, void **p, const opcase_t *c, double *ret) {
    (void)ret;
    residual_rmsnorm_route(b, p[0], p[1], PF(2), p[3], p[4], c->f[1], c->f[2], p[5], c->p[0], c->p[1], c->f[0], p[6],
                           p[7], PF(8), PI(9), PF(10), c->p[2], c->p[3], c->p[5] ? PI(11) : NULL,
                           c->p[5] ? PI(12) : NULL, c->p[5] ? PI(13) : NULL);
}
static void d_residual_rmsnorm_route(void **p, const opcase_t *c, double *ret) {
    (void)ret;
    residual_rmsnorm_route_cpu(PF(0), PF(1), PF(2), PF(3), PF(4), c->f[1], c->f[2], PF(5), c->p[0], c->p[1], c->f[0],
                               PF(6), PF(7), PF(8), PI(9), PF(10), c->p[2], c->p[3], c->p[5] ? PI(11) : NULL,
                               c->p[5] ? PI(12) : NULL);
}
static void b_residual_rmsnorm_route(opcase_t *c) {
    int T = c->p[0], C = c->p[1], E = c->p[2], K = c->p[3];
    t_act(c, "x_out", TR_OUT, (size_t)T * C, 0, 0);
    t_act(c, "out", TR_OUT, (size_t)T * C, 0, 0);
    c->t[t_f32(c, "rstd", TR_OUT, (size_t)T, 0, 0)].tol = 4e-3;  // of x_out as stored (residual_rmsnorm's row)
    int ir = t_act(c, "r", c->p[4] ? TR_IN : TR_NONE, (size_t)T * C, 0, 0);
    int iy = t_act(c, "y", TR_IN, (size_t)T * C, 0, 0), iw = t_act(c, "w", TR_IN, (size_t)C, 0, 0);
    int iwg = t_act(c, "wg", TR_IN, (size_t)E * C, 0, 0);
    t_act(c, "logits", TR_OUT, (size_t)T * E, 0, 0);
    // logits rounded to bf16 from the row as stored (2^-9 relative): the probabilities follow within about 1%
    c->t[t_f32(c, "probs", TR_OUT, (size_t)T * E, 0, 0)].tol = 2e-2;
    t_i32(c, "topk_idx", TR_OUT, (size_t)T * K);
    c->t[t_f32(c, "topk_w", TR_OUT, (size_t)T * K, 0, 0)].tol = 2e-2;
    if (c->p[5]) {
        t_i32(c, "perm", TR_OUT, (size_t)T * K);
        t_i32(c, "offsets", TR_OUT, (size_t)E + 1);
        t_i32(c, "count", TR_INOUT, 1);  // zeros, and zeros after (the last CTA sets it back)
    }
    route_norm_fill(c, iy, c->p[4] ? ir : -1, iw, iwg, T, C, E);
    snprintf(c->shape, sizeof c->shape, "T%d C%d E%d K%d%s alpha%g beta%g%s", T, C, E, K, c->p[4] ? "" : " r=NULL",
             c->f[1], c->f[2], c->p[5] ? " sort" : "");
    c->run = r_residual_rmsnorm_route, c->direct = d_residual_rmsnorm_route;
}
// p: T C ldg (g's row stride; 0: C) nout (1: out NULL); f: eps.  tensors: out gated rstd x w g
static int ldg_of(const opcase_t *c) { return c->p[2] ? c->p[2] : c->p[1]; }
static void r_rmsnorm_gate_forward(backend_t *b, void **p, const opcase_t *c, double *ret) {
    (void)ret;
    rmsnorm_gate_forward(b, p[0], p[1], PF(2), p[3], p[4], p[5], ldg_of(c), c->p[0], c->p[1], c->f[0]);
}
static void d_rmsnorm_gate_forward(void **p, const opcase_t *c, double *ret) {
    (void)ret;
    rmsnorm_gate_forward_cpu(PF(0), PF(1), PF(2), PF(3), PF(4), PF(5), ldg_of(c), c->p[0], c->p[1], c->f[0]);
}
static void b_rmsnorm_gate_forward(opcase_t *c) {
    int T = c->p[0], C = c->p[1], ldg = ldg_of(c);
    t_act(c, "out", c->p[3] ? TR_NONE : TR_OUT, (size_t)T * C, 0, 0);
    t_act(c, "gated", TR_OUT, (size_t)T * C, 0, 0);
    c->t[t_f32(c, "rstd", TR_OUT, (size_t)T, 0, 0)].tol = 1e-5;
    t_act(c, "x", TR_IN, (size_t)T * C, -2, 2);
    t_act(c, "w", TR_IN, (size_t)C, 0.5, 1.5);
    t_act(c, "g", TR_IN, T ? (size_t)(T - 1) * ldg + C : 0, -3, 3);
    snprintf(c->shape, sizeof c->shape, "T%d C%d ldg%d eps%g%s", T, C, ldg, c->f[0], c->p[3] ? " out=NULL" : "");
    c->run = r_rmsnorm_gate_forward, c->direct = d_rmsnorm_gate_forward;
}
// p: T C ldg (0: C); f: eps.  tensors: dx dw dg dgated x w rstd g
static void r_rmsnorm_gate_backward(backend_t *b, void **p, const opcase_t *c, double *ret) {
    (void)ret;
    rmsnorm_gate_backward(b, p[0], p[1], p[2], p[3], p[4], p[5], PF(6), p[7], ldg_of(c), c->p[0], c->p[1]);
}
static void d_rmsnorm_gate_backward(void **p, const opcase_t *c, double *ret) {
    (void)ret;
    rmsnorm_gate_backward_cpu(PF(0), PF(1), PF(2), PF(3), PF(4), PF(5), PF(6), PF(7), ldg_of(c), c->p[0], c->p[1]);
}
// <gated, dgated> of rmsnorm_gate_forward
static double l_rmsnorm_gate_backward(const opcase_t *c) {
    int T = c->p[0], C = c->p[1];
    float *out = xcalloc((size_t)T * C, sizeof(float)), *gated = xcalloc((size_t)T * C, sizeof(float));
    float *rstd = xcalloc((size_t)T, sizeof(float));
    rmsnorm_gate_forward_cpu(out, gated, rstd, HF(4), HF(5), HF(7), ldg_of(c), T, C, c->f[0]);
    double l = dot_d(gated, HF(3), (size_t)T * C);
    free(out), free(gated), free(rstd);
    return l;
}
static void b_rmsnorm_gate_backward(opcase_t *c) {
    int T = c->p[0], C = c->p[1], ldg = ldg_of(c);
    t_act(c, "dx", TR_OUT, (size_t)T * C, 0, 0);
    c->t[t_grad(c, "dw", TR_ACC, (size_t)C, 0, 0)].tol = STAT_TOL;
    t_act(c, "dg", TR_OUT, (size_t)T * C, 0, 0);
    t_act(c, "dgated", TR_IN, (size_t)T * C, -1, 1);
    int x = t_act(c, "x", TR_IN, (size_t)T * C, -2, 2), w = t_act(c, "w", TR_IN, (size_t)C, 0.5, 1.5);
    int r = t_f32(c, "rstd", TR_IN, (size_t)T, 0, 0);
    t_act(c, "g", TR_IN, T ? (size_t)(T - 1) * ldg + C : 0, -3, 3);
    float *tmp = xcalloc((size_t)T * C, sizeof(float));
    rmsnorm_forward_cpu(tmp, HF(r), HF(x), HF(w), T, C, c->f[0]);
    free(tmp);
    snprintf(c->shape, sizeof c->shape, "T%d C%d ldg%d", T, C, ldg);
    c->run = r_rmsnorm_gate_backward, c->direct = d_rmsnorm_gate_backward, c->loss = l_rmsnorm_gate_backward;
    // finite differences of x and w, and of g where its rows are contiguous (dg holds only the C columns)
    c->ngrad = ldg == C ? 3 : 2;
    c->grad_in[0] = 4, c->grad_out[0] = 0, c->grad_in[1] = 5, c->grad_out[1] = 1, c->grad_in[2] = 7, c->grad_out[2] = 2;
}
// p: T C acc; f: eps, acc_scale (the factor on dx's prior with OP_ACCUMULATE).  tensors: dx dw dout x w rstd
static void r_rmsnorm_backward(backend_t *b, void **p, const opcase_t *c, double *ret) {
    (void)ret;
    rmsnorm_backward(b, p[0], PF(1), p[2], p[3], p[4], PF(5), c->p[0], c->p[1], c->p[2], c->f[1]);
}
static void d_rmsnorm_backward(void **p, const opcase_t *c, double *ret) {
    (void)ret;
    if (c->p[2] == OP_ACCUMULATE) scale_f32_cpu(PF(0), c->f[1], (size_t)c->p[0] * c->p[1]);
    rmsnorm_backward_cpu(PF(0), PF(1), PF(2), PF(3), PF(4), PF(5), c->p[0], c->p[1]);
}
static double l_rmsnorm_backward(const opcase_t *c) {
    int T = c->p[0], C = c->p[1];
    float *out = xcalloc((size_t)T * C, sizeof(float)), *rstd = xcalloc((size_t)T, sizeof(float));
    rmsnorm_forward_cpu(out, rstd, HF(3), HF(4), T, C, c->f[0]);
    double l = dot_d(out, HF(2), (size_t)T * C);
    free(out), free(rstd);
    return l;
}
static void b_rmsnorm_backward(opcase_t *c) {
    int T = c->p[0], C = c->p[1];
    c->t[t_act(c, "dx", c->p[2] == OP_ACCUMULATE ? TR_ACC : TR_OUT, (size_t)T * C, 0, 0)].prior_scale =
        c->p[2] == OP_ACCUMULATE ? c->f[1] : 0;
    c->t[t_grad(c, "dw", TR_ACC, (size_t)C, 0, 0)].tol = STAT_TOL;
    t_act(c, "dout", TR_IN, (size_t)T * C, -1, 1);
    int x = t_act(c, "x", TR_IN, (size_t)T * C, -2, 2), w = t_act(c, "w", TR_IN, (size_t)C, 0.5, 1.5);
    int r = t_f32(c, "rstd", TR_IN, (size_t)T, 0, 0);
    float *tmp = xcalloc((size_t)T * C, sizeof(float));
    rmsnorm_forward_cpu(tmp, HF(r), HF(x), HF(w), T, C, c->f[0]);
    free(tmp);
    if (c->p[2] == OP_ACCUMULATE && c->f[1] != 1.0f)
        snprintf(c->shape, sizeof c->shape, "T%d C%d %s x%g", T, C, acc_name(c->p[2]), c->f[1]);
    else snprintf(c->shape, sizeof c->shape, "T%d C%d %s", T, C, acc_name(c->p[2]));
    c->run = r_rmsnorm_backward, c->direct = d_rmsnorm_backward, c->loss = l_rmsnorm_backward;
    c->direct_zero = 1;
    c->ngrad = 2, c->grad_in[0] = 3, c->grad_out[0] = 0, c->grad_in[1] = 4, c->grad_out[1] = 1;
}

// ===================================================================== elementwise
// p: n has_r; f: alpha beta.  tensors: out r y
static void r_residual_mix(backend_t *b, void **p, const opcase_t *c, double *ret) {
    (void)ret;
    residual_mix(b, p[0], p[1], p[2], c->f[0], c->f[1], (size_t)c->p[0]);
}
static void d_residual_mix(void **p, const opcase_t *c, double *ret) {
    (void)ret;
    residual_mix_cpu(PF(0), PF(1), PF(2), c->f[0], c->f[1], (size_t)c->p[0]);
}
static void b_residual_mix(opcase_t *c) {
    size_t n = (size_t)c->p[0];
    t_act(c, "out", TR_OUT, n, 0, 0);
    if (c->p[1]) t_act(c, "r", TR_IN, n, -1, 1);
    else t_none(c, "r");
    t_act(c, "y", TR_IN, n, -1, 1);
    snprintf(c->shape, sizeof c->shape, "n%zu %s alpha%g beta%g", n, c->p[1] ? "r" : "r=NULL", c->f[0], c->f[1]);
    c->run = r_residual_mix, c->direct = d_residual_mix;
}

// p: act n.  tensors: out x
static void r_act_forward(backend_t *b, void **p, const opcase_t *c, double *ret) {
    (void)ret;
    act_forward(b, c->p[0], p[0], p[1], (size_t)c->p[1]);
}
static void d_act_forward(void **p, const opcase_t *c, double *ret) {
    (void)ret;
    act_forward_cpu(c->p[0], PF(0), PF(1), (size_t)c->p[1]);
}
static void b_act_forward(opcase_t *c) {
    size_t n = (size_t)c->p[1];
    t_act(c, "out", TR_OUT, n, 0, 0);
    act_input_fill(c, t_act(c, "x", TR_IN, n, -1, 1), -7, 7);
    snprintf(c->shape, sizeof c->shape, "%s n%zu", act_names[c->p[0]], n);
    c->run = r_act_forward, c->direct = d_act_forward;
}
// p: act n acc.  tensors: dx dout x
static void r_act_backward(backend_t *b, void **p, const opcase_t *c, double *ret) {
    (void)ret;
    act_backward(b, c->p[0], p[0], p[1], p[2], (size_t)c->p[1], c->p[2]);
}
static void d_act_backward(void **p, const opcase_t *c, double *ret) {
    (void)ret;
    act_backward_cpu(c->p[0], PF(0), PF(1), PF(2), (size_t)c->p[1]);
}
static double l_act_backward(const opcase_t *c) {
    size_t n = (size_t)c->p[1];
    float *out = xcalloc(n, sizeof(float));
    act_forward_cpu(c->p[0], out, HF(2), n);
    double l = dot_d(out, HF(1), n);
    free(out);
    return l;
}
static void b_act_backward(opcase_t *c) {
    size_t n = (size_t)c->p[1];
    t_act(c, "dx", c->p[2] == OP_ACCUMULATE ? TR_ACC : TR_OUT, n, 0, 0);
    t_act(c, "dout", TR_IN, n, -1, 1);
    act_input_fill(c, t_act(c, "x", TR_IN, n, -1, 1), -7, 7);
    snprintf(c->shape, sizeof c->shape, "%s n%zu %s", act_names[c->p[0]], n, acc_name(c->p[2]));
    c->run = r_act_backward, c->direct = d_act_backward, c->loss = l_act_backward, c->direct_zero = 1;
    c->ngrad = 1, c->grad_in[0] = 2, c->grad_out[0] = 0;
}
// p: act T F.  tensors: out h13
static void r_glu_forward(backend_t *b, void **p, const opcase_t *c, double *ret) {
    (void)ret;
    glu_forward(b, c->p[0], p[0], p[1], c->p[1], c->p[2]);
}
static void d_glu_forward(void **p, const opcase_t *c, double *ret) {
    (void)ret;
    glu_forward_cpu(c->p[0], PF(0), PF(1), c->p[1], c->p[2]);
}
static void b_glu_forward(opcase_t *c) {
    int T = c->p[1], F = c->p[2];
    t_act(c, "out", TR_OUT, (size_t)T * F, 0, 0);
    act_input_fill(c, t_act(c, "h13", TR_IN, (size_t)T * 2 * F, -1, 1), -7, 7);
    snprintf(c->shape, sizeof c->shape, "%s T%d F%d", act_names[c->p[0]], T, F);
    c->run = r_glu_forward, c->direct = d_glu_forward;
}
// p: act T F acc.  tensors: dh13 dout h13
static void r_glu_backward(backend_t *b, void **p, const opcase_t *c, double *ret) {
    (void)ret;
    glu_backward(b, c->p[0], p[0], p[1], p[2], c->p[1], c->p[2], c->p[3]);
}
static void d_glu_backward(void **p, const opcase_t *c, double *ret) {
    (void)ret;
    glu_backward_cpu(c->p[0], PF(0), PF(1), PF(2), c->p[1], c->p[2]);
}
static double l_glu_backward(const opcase_t *c) {
    int T = c->p[1], F = c->p[2];
    float *out = xcalloc((size_t)T * F, sizeof(float));
    glu_forward_cpu(c->p[0], out, HF(2), T, F);
    double l = dot_d(out, HF(1), (size_t)T * F);
    free(out);
    return l;
}
static void b_glu_backward(opcase_t *c) {
    int T = c->p[1], F = c->p[2];
    t_act(c, "dh13", c->p[3] == OP_ACCUMULATE ? TR_ACC : TR_OUT, (size_t)T * 2 * F, 0, 0);
    t_act(c, "dout", TR_IN, (size_t)T * F, -1, 1);
    act_input_fill(c, t_act(c, "h13", TR_IN, (size_t)T * 2 * F, -1, 1), -7, 7);
    snprintf(c->shape, sizeof c->shape, "%s T%d F%d %s", act_names[c->p[0]], T, F, acc_name(c->p[3]));
    c->run = r_glu_backward, c->direct = d_glu_backward, c->loss = l_glu_backward, c->direct_zero = 1;
    c->ngrad = 1, c->grad_in[0] = 2, c->grad_out[0] = 0;
}
// p: n.  tensors: out g x
static void r_sigmoid_gate_forward(backend_t *b, void **p, const opcase_t *c, double *ret) {
    (void)ret;
    sigmoid_gate_forward(b, p[0], p[1], p[2], (size_t)c->p[0]);
}
static void d_sigmoid_gate_forward(void **p, const opcase_t *c, double *ret) {
    (void)ret;
    sigmoid_gate_forward_cpu(PF(0), PF(1), PF(2), (size_t)c->p[0]);
}
static void b_sigmoid_gate_forward(opcase_t *c) {
    size_t n = (size_t)c->p[0];
    t_act(c, "out", TR_OUT, n, 0, 0);
    t_act(c, "g", TR_IN, n, -6, 6);
    t_act(c, "x", TR_IN, n, -2, 2);
    snprintf(c->shape, sizeof c->shape, "n%zu", n);
    c->run = r_sigmoid_gate_forward, c->direct = d_sigmoid_gate_forward;
}
// p: n acc.  tensors: dg dx dout g x
static void r_sigmoid_gate_backward(backend_t *b, void **p, const opcase_t *c, double *ret) {
    (void)ret;
    sigmoid_gate_backward(b, p[0], p[1], p[2], p[3], p[4], (size_t)c->p[0], c->p[1]);
}
static void d_sigmoid_gate_backward(void **p, const opcase_t *c, double *ret) {
    (void)ret;
    sigmoid_gate_backward_cpu(PF(0), PF(1), PF(2), PF(3), PF(4), (size_t)c->p[0]);
}
static double l_sigmoid_gate_backward(const opcase_t *c) {
    size_t n = (size_t)c->p[0];
    float *out = xcalloc(n, sizeof(float));
    sigmoid_gate_forward_cpu(out, HF(3), HF(4), n);
    double l = dot_d(out, HF(2), n);
    free(out);
    return l;
}
static void b_sigmoid_gate_backward(opcase_t *c) {
    size_t n = (size_t)c->p[0];
    int role = c->p[1] == OP_ACCUMULATE ? TR_ACC : TR_OUT;
    t_act(c, "dg", role, n, 0, 0);
    t_act(c, "dx", role, n, 0, 0);
    t_act(c, "dout", TR_IN, n, -1, 1);
    t_act(c, "g", TR_IN, n, -6, 6);
    t_act(c, "x", TR_IN, n, -2, 2);
    snprintf(c->shape, sizeof c->shape, "n%zu %s", n, acc_name(c->p[1]));
    c->run = r_sigmoid_gate_backward, c->direct = d_sigmoid_gate_backward, c->loss = l_sigmoid_gate_backward;
    c->direct_zero = 1;
    c->ngrad = 2, c->grad_in[0] = 3, c->grad_out[0] = 0, c->grad_in[1] = 4, c->grad_out[1] = 1;
}
// p: T H D.  tensors: q k v qkv
static void r_qkv_split(backend_t *b, void **p, const opcase_t *c, double *ret) {
    (void)ret;
    qkv_split(b, p[0], p[1], p[2], p[3], c->p[0], c->p[1], c->p[2], c->p[3] - 1);
}
static void d_qkv_split(void **p, const opcase_t *c, double *ret) {
    (void)ret;
    qkv_split_cpu(PF(0), PF(1), PF(2), PF(3), c->p[0], c->p[1], c->p[2], c->p[3] - 1);
}
static void b_qkv_split(opcase_t *c) {
    size_t n = (size_t)c->p[0] * c->p[1] * c->p[2];
    t_act(c, "q", TR_OUT, n, 0, 0);
    t_act(c, "k", TR_OUT, n, 0, 0);
    t_act(c, "v", TR_OUT, n, 0, 0);
    t_act(c, "qkv", TR_IN, 3 * n, -1, 1);
    snprintf(c->shape, sizeof c->shape, "T%d H%d D%d%s%s", c->p[0], c->p[1], c->p[2], c->p[3] ? " act " : "",
             c->p[3] ? act_names[c->p[3] - 1] : "");
    c->run = r_qkv_split, c->direct = d_qkv_split;
}
// p: T H D act+1 (0: the plain transpose).  tensors: dqkv dq dk dv qkv
static void r_qkv_merge(backend_t *b, void **p, const opcase_t *c, double *ret) {
    (void)ret;
    qkv_merge(b, p[0], p[1], p[2], p[3], p[4], c->p[0], c->p[1], c->p[2], c->p[3] - 1);
}
static void d_qkv_merge(void **p, const opcase_t *c, double *ret) {
    (void)ret;
    qkv_merge_cpu(PF(0), PF(1), PF(2), PF(3), PF(4), c->p[0], c->p[1], c->p[2], c->p[3] - 1);
}
// the gradient of <qkv_split(qkv), (dq, dk, dv)> with respect to qkv
static double l_qkv_merge(const opcase_t *c) {
    size_t n = (size_t)c->p[0] * c->p[1] * c->p[2];
    float *q = xcalloc(3 * n, sizeof(float));
    qkv_split_cpu(q, q + n, q + 2 * n, HF(4), c->p[0], c->p[1], c->p[2], c->p[3] - 1);
    double l = dot_d(q, HF(1), n) + dot_d(q + n, HF(2), n) + dot_d(q + 2 * n, HF(3), n);
    free(q);
    return l;
}
static void b_qkv_merge(opcase_t *c) {
    size_t n = (size_t)c->p[0] * c->p[1] * c->p[2];
    t_act(c, "dqkv", TR_OUT, 3 * n, 0, 0);
    t_act(c, "dq", TR_IN, n, -1, 1);
    t_act(c, "dk", TR_IN, n, -1, 1);
    t_act(c, "dv", TR_IN, n, -1, 1);
    act_input_fill(c, t_act(c, "qkv", TR_IN, 3 * n, -1, 1), -7, 7);
    snprintf(c->shape, sizeof c->shape, "T%d H%d D%d%s%s", c->p[0], c->p[1], c->p[2], c->p[3] ? " act " : "",
             c->p[3] ? act_names[c->p[3] - 1] : "");
    c->run = r_qkv_merge, c->direct = d_qkv_merge, c->loss = l_qkv_merge;
    c->ngrad = 1, c->grad_in[0] = 4, c->grad_out[0] = 0;
}

// ===================================================================== RoPE
// p: T nh D R maxpos acc; f: scale theta.  hostf: inv_freq [R/2]
static void rope_setup(opcase_t *c, int pos_idx) {
    int T = c->p[0], R = c->p[3];
    c->hostf = xcalloc((size_t)R / 2 + 1, sizeof(float));
    for (int i = 0; i < R / 2; i++) c->hostf[i] = (float)pow((double)c->f[1], -2.0 * i / R);
    for (int t = 0; t < T; t++) HI(pos_idx)[t] = irand(c->p[4]);
}
static void r_rope_forward(backend_t *b, void **p, const opcase_t *c, double *ret) {
    (void)ret;
    rope_forward(b, p[0], p[1], PI(2), c->p[0], c->p[1], c->p[2], c->p[3], c->hostf, c->f[0]);
}
static void d_rope_forward(void **p, const opcase_t *c, double *ret) {
    (void)ret;
    rope_forward_cpu(PF(0), PF(1), PI(2), c->p[0], c->p[1], c->p[2], c->p[3], c->hostf, c->f[0]);
}
static void b_rope_forward(opcase_t *c) {
    size_t n = (size_t)c->p[0] * c->p[1] * c->p[2];
    t_act(c, "out", TR_OUT, n, 0, 0);
    t_act(c, "x", TR_IN, n, -1, 1);
    rope_setup(c, t_i32(c, "pos", TR_IN, (size_t)c->p[0]));
    snprintf(c->shape, sizeof c->shape, "T%d nh%d D%d R%d pos<%d scale%g", c->p[0], c->p[1], c->p[2], c->p[3],
             c->p[4], c->f[0]);
    c->run = r_rope_forward, c->direct = d_rope_forward;
}
// tensors: dx dout pos x(host)
static void r_rope_backward(backend_t *b, void **p, const opcase_t *c, double *ret) {
    (void)ret;
    rope_backward(b, p[0], p[1], PI(2), c->p[0], c->p[1], c->p[2], c->p[3], c->hostf, c->f[0], c->p[5]);
}
static void d_rope_backward(void **p, const opcase_t *c, double *ret) {
    (void)ret;
    rope_backward_cpu(PF(0), PF(1), PI(2), c->p[0], c->p[1], c->p[2], c->p[3], c->hostf, c->f[0]);
}
static double l_rope_backward(const opcase_t *c) {
    size_t n = (size_t)c->p[0] * c->p[1] * c->p[2];
    float *out = xcalloc(n, sizeof(float));
    rope_forward_cpu(out, HF(3), HI(2), c->p[0], c->p[1], c->p[2], c->p[3], c->hostf, c->f[0]);
    double l = dot_d(out, HF(1), n);
    free(out);
    return l;
}
static void b_rope_backward(opcase_t *c) {
    size_t n = (size_t)c->p[0] * c->p[1] * c->p[2];
    t_act(c, "dx", c->p[5] == OP_ACCUMULATE ? TR_ACC : TR_OUT, n, 0, 0);
    t_act(c, "dout", TR_IN, n, -1, 1);
    rope_setup(c, t_i32(c, "pos", TR_IN, (size_t)c->p[0]));
    t_f32(c, "x", TR_HOST, n, -1, 1);
    snprintf(c->shape, sizeof c->shape, "T%d nh%d D%d R%d pos<%d scale%g %s", c->p[0], c->p[1], c->p[2], c->p[3],
             c->p[4], c->f[0], acc_name(c->p[5]));
    c->run = r_rope_backward, c->direct = d_rope_backward, c->loss = l_rope_backward, c->direct_zero = 1;
    c->ngrad = 1, c->grad_in[0] = 3, c->grad_out[0] = 0;
}

// ===================================================================== lightning attention
// p: H D block with_state layer acc.  lens: sequences.
// forward tensors: o state_out q k v state_in slopes cu
static void lightning_ws(opcase_t *c, int H, int D) { c->ws.T = c->T, c->ws.nseq = c->nseq, c->ws.H = H, c->ws.D = D; }
static void r_lightning_forward(backend_t *b, void **p, const opcase_t *c, double *ret) {
    (void)ret;
    op_seqs_t s = seqs_of(p, c);
    lightning_forward(b, p[0], PF(1), p[2], p[3], p[4], PF(5), PF(6), &s, c->p[0], c->p[1], c->p[2]);
}
static void d_lightning_forward(void **p, const opcase_t *c, double *ret) {
    (void)ret;
    lightning_forward_cpu(PF(0), PF(1), PF(2), PF(3), PF(4), PF(5), PF(6), PI(7), c->nseq, c->p[0], c->p[1], c->p[2]);
}
static void b_lightning_forward(opcase_t *c) {
    int H = c->p[0], D = c->p[1];
    seqs_count(c);
    size_t n = (size_t)c->T * H * D, ns = (size_t)c->nseq * H * D * D;
    t_act(c, "o", TR_OUT, n, 0, 0);
    t_f32(c, "state_out", TR_OUT, ns, 0, 0);
    t_act(c, "q", TR_IN, n, -1, 1);
    t_act(c, "k", TR_IN, n, -1, 1);
    t_act(c, "v", TR_IN, n, -1, 1);
    if (c->p[3]) t_f32(c, "state_in", TR_IN, ns, -2, 2);
    else t_none(c, "state_in");
    int sl = t_f32(c, "slopes", TR_IN, (size_t)H, 0, 0);
    lightning_slopes(HF(sl), H, c->p[4], 8, 0);
    t_seqs(c);
    char ls[96];
    lens_str(c, ls, sizeof ls);
    snprintf(c->shape, sizeof c->shape, "T%d %s H%d D%d block%d%s", c->T, ls, H, D, c->p[2], c->p[3] ? " state" : "");
    c->run = r_lightning_forward, c->direct = d_lightning_forward, c->tol = BF16_TOL;
    c->flops = (double)c->T * H * (4.0 * D * D + 4.0 * 64 * D);
    lightning_ws(c, H, D);
}
// backward tensors: dq dk dv dstate_in dout q k v state_in slopes cu
static void r_lightning_backward(backend_t *b, void **p, const opcase_t *c, double *ret) {
    (void)ret;
    op_seqs_t s = seqs_of(p, c);
    lightning_backward(b, p[0], p[1], p[2], PF(3), p[4], p[5], p[6], p[7], PF(8), PF(9), &s, c->p[0], c->p[1],
                       c->p[2], c->p[5]);
}
static void d_lightning_backward(void **p, const opcase_t *c, double *ret) {
    (void)ret;
    lightning_backward_cpu(PF(0), PF(1), PF(2), PF(3), PF(4), PF(5), PF(6), PF(7), PF(8), PF(9), PI(10), c->nseq,
                           c->p[0], c->p[1], c->p[2]);
}
static double l_lightning_backward(const opcase_t *c) {
    size_t n = (size_t)c->T * c->p[0] * c->p[1];
    float *o = xcalloc(n, sizeof(float));
    lightning_forward_cpu(o, NULL, HF(5), HF(6), HF(7), HF(8), HF(9), HI(10), c->nseq, c->p[0], c->p[1], c->p[2]);
    double l = dot_d(o, HF(4), n);
    free(o);
    return l;
}
static void b_lightning_backward(opcase_t *c) {
    int H = c->p[0], D = c->p[1];
    seqs_count(c);
    size_t n = (size_t)c->T * H * D, ns = (size_t)c->nseq * H * D * D;
    int role = c->p[5] == OP_ACCUMULATE ? TR_ACC : TR_OUT;
    t_act(c, "dq", role, n, 0, 0);
    t_act(c, "dk", role, n, 0, 0);
    t_act(c, "dv", role, n, 0, 0);
    if (c->p[3]) t_f32(c, "dstate_in", role, ns, 0, 0);
    else t_none(c, "dstate_in");
    t_act(c, "dout", TR_IN, n, -1, 1);
    t_act(c, "q", TR_IN, n, -1, 1);
    t_act(c, "k", TR_IN, n, -1, 1);
    t_act(c, "v", TR_IN, n, -1, 1);
    if (c->p[3]) t_f32(c, "state_in", TR_IN, ns, -2, 2);
    else t_none(c, "state_in");
    int sl = t_f32(c, "slopes", TR_IN, (size_t)H, 0, 0);
    lightning_slopes(HF(sl), H, c->p[4], 8, 0);
    t_seqs(c);
    char ls[96];
    lens_str(c, ls, sizeof ls);
    snprintf(c->shape, sizeof c->shape, "T%d %s H%d D%d block%d%s %s", c->T, ls, H, D, c->p[2],
             c->p[3] ? " state" : "", acc_name(c->p[5]));
    c->run = r_lightning_backward, c->direct = d_lightning_backward, c->loss = l_lightning_backward;
    c->direct_zero = 1, c->tol = BF16_TOL;
    c->ngrad = c->p[3] ? 4 : 3;
    for (int g = 0; g < 3; g++) c->grad_in[g] = 5 + g, c->grad_out[g] = g;
    c->grad_in[3] = 8, c->grad_out[3] = 3;
    if (c->p[5] == OP_ACCUMULATE) c->flags |= CASE_CUDA_WRITE_ONLY;
    c->flops = 2.5 * (double)c->T * H * (4.0 * D * D + 4.0 * 64 * D);
    lightning_ws(c, H, D);
}
// p: n nslots H D.  tensors: o states slot q k v slopes
static void r_lightning_decode(backend_t *b, void **p, const opcase_t *c, double *ret) {
    (void)ret;
    lightning_decode(b, p[0], PF(1), PI(2), p[3], p[4], p[5], PF(6), c->p[0], c->p[2], c->p[3]);
}
static void d_lightning_decode(void **p, const opcase_t *c, double *ret) {
    (void)ret;
    size_t HD = (size_t)c->p[2] * c->p[3], HDD = HD * c->p[3];
    for (int i = 0; i < c->p[0]; i++)
        lightning_decode_cpu(PF(0) + i * HD, PF(1) + (size_t)PI(2)[i] * HDD, PF(3) + i * HD, PF(4) + i * HD,
                             PF(5) + i * HD, PF(6), 1, c->p[2], c->p[3]);
}
static void b_lightning_decode(opcase_t *c) {
    int n = c->p[0], S = c->p[1], H = c->p[2], D = c->p[3];
    size_t nd = (size_t)n * H * D;
    t_act(c, "o", TR_OUT, nd, 0, 0);
    t_f32(c, "states", TR_INOUT, (size_t)S * H * D * D, -1, 1);
    int32_t *slot = HI(t_i32(c, "slot", TR_IN, (size_t)n)), *perm = xcalloc((size_t)S, sizeof(int32_t));
    perm_fill(perm, S);
    memcpy(slot, perm, (size_t)n * sizeof(int32_t));
    free(perm);
    t_act(c, "q", TR_IN, nd, -1, 1);
    t_act(c, "k", TR_IN, nd, -1, 1);
    t_act(c, "v", TR_IN, nd, -1, 1);
    lightning_slopes(HF(t_f32(c, "slopes", TR_IN, (size_t)H, 0, 0)), H, 3, 8, 1);
    snprintf(c->shape, sizeof c->shape, "n%d slots%d H%d D%d", n, S, H, D);
    c->run = r_lightning_decode, c->direct = d_lightning_decode, c->tol = BF16_TOL;
}

// p: n slots H D ldq (0: 3 H D) act.  tensors: o states slot qkv slopes
static int ldq_of(const opcase_t *c) { return c->p[4] ? c->p[4] : 3 * c->p[2] * c->p[3]; }
static void r_lightning_decode_qkv(backend_t *b, void **p, const opcase_t *c, double *ret) {
    (void)ret;
    lightning_decode_qkv(b, p[0], PF(1), PI(2), p[3], ldq_of(c), c->p[5], PF(4), c->p[0], c->p[2], c->p[3]);
}
static void d_lightning_decode_qkv(void **p, const opcase_t *c, double *ret) {
    (void)ret;
    lightning_decode_qkv_cpu(PF(0), PF(1), PI(2), PF(3), ldq_of(c), c->p[5], PF(4), c->p[0], c->p[2], c->p[3]);
}
static void b_lightning_decode_qkv(opcase_t *c) {
    int n = c->p[0], S = c->p[1], H = c->p[2], D = c->p[3], ldq = ldq_of(c);
    t_act(c, "o", TR_OUT, (size_t)n * H * D, 0, 0);
    t_f32(c, "states", TR_INOUT, (size_t)S * H * D * D, -1, 1);
    int32_t *slot = HI(t_i32(c, "slot", TR_IN, (size_t)n)), *perm = xcalloc((size_t)S, sizeof(int32_t));
    perm_fill(perm, S);
    memcpy(slot, perm, (size_t)n * sizeof(int32_t));
    free(perm);
    t_act(c, "qkv", TR_IN, (size_t)n * ldq, -2, 2);
    lightning_slopes(HF(t_f32(c, "slopes", TR_IN, (size_t)H, 0, 0)), H, 3, 8, 1);
    snprintf(c->shape, sizeof c->shape, "n%d slots%d H%d D%d ldq%d act%d", n, S, H, D, ldq, c->p[5]);
    c->run = r_lightning_decode_qkv, c->direct = d_lightning_decode_qkv, c->tol = BF16_TOL;
}

// p: n slots H D ldq (0: 3 H D) act ldg (0: H D) nout (1: o_norm NULL); f: eps.
// tensors: o states slot qkv slopes o_norm gated rstd w gate
static int ldgate_of(const opcase_t *c) { return c->p[6] ? c->p[6] : c->p[2] * c->p[3]; }
static void r_lightning_decode_qkv_gate(backend_t *b, void **p, const opcase_t *c, double *ret) {
    (void)ret;
    lightning_decode_qkv_gate(b, p[0], PF(1), PI(2), p[3], ldq_of(c), c->p[5], PF(4), c->p[0], c->p[2], c->p[3], p[5],
                              p[6], PF(7), p[8], p[9], ldgate_of(c), c->f[0]);
}
static void d_lightning_decode_qkv_gate(void **p, const opcase_t *c, double *ret) {
    (void)ret;
    lightning_decode_qkv_gate_cpu(PF(0), PF(1), PI(2), PF(3), ldq_of(c), c->p[5], PF(4), c->p[0], c->p[2], c->p[3],
                                  PF(5), PF(6), PF(7), PF(8), PF(9), ldgate_of(c), c->f[0]);
}
static void b_lightning_decode_qkv_gate(opcase_t *c) {
    b_lightning_decode_qkv(c);  // o states slot qkv slopes, as lightning_decode_qkv's rows
    const int n = c->p[0], A = c->p[2] * c->p[3], ldg = ldgate_of(c);
    t_act(c, "o_norm", c->p[7] ? TR_NONE : TR_OUT, (size_t)n * A, 0, 0);
    t_act(c, "gated", TR_OUT, (size_t)n * A, 0, 0);
    t_f32(c, "rstd", TR_OUT, (size_t)n, 0, 0);  // of o as the step stores it: bf16 on CUDA, so bf16's tolerance
    t_act(c, "w", TR_IN, (size_t)A, 0.5, 1.5);
    t_act(c, "gate", TR_IN, n ? (size_t)(n - 1) * ldg + A : 0, -3, 3);
    const size_t l = strlen(c->shape);
    snprintf(c->shape + l, sizeof c->shape - l, " ldg%d%s", ldg, c->p[7] ? " o_norm=NULL" : "");
    c->run = r_lightning_decode_qkv_gate, c->direct = d_lightning_decode_qkv_gate;
}

// ===================================================================== softmax attention
// p: H KV D window acc.  forward tensors: o lse q k v cu
static void attn_ws(opcase_t *c, int H, int KV, int D) {
    c->ws.T = c->T, c->ws.nseq = c->nseq, c->ws.H = H, c->ws.KV = KV, c->ws.D = D;
}
static double attn_flops(const opcase_t *c, int H, int D, int window) {
    double pairs = 0;
    for (int s = 0; s < c->nlens; s++) {
        double L = c->lens[s];
        pairs += window > 0 && window < L ? L * window : L * (L + 1) / 2;
    }
    return 4.0 * pairs * H * D;
}
static void r_attention_forward(backend_t *b, void **p, const opcase_t *c, double *ret) {
    (void)ret;
    op_seqs_t s = seqs_of(p, c);
    attention_forward(b, p[0], PF(1), p[2], p[3], p[4], &s, c->p[0], c->p[1], c->p[2], c->p[3]);
}
static void d_attention_forward(void **p, const opcase_t *c, double *ret) {
    (void)ret;
    attention_forward_cpu(PF(0), PF(1), PF(2), PF(3), PF(4), PI(5), c->nseq, c->p[0], c->p[1], c->p[2], c->p[3]);
}
static void b_attention_forward(opcase_t *c) {
    int H = c->p[0], KV = c->p[1], D = c->p[2];
    seqs_count(c);
    size_t nq = (size_t)c->T * H * D, nk = (size_t)c->T * KV * D;
    t_act(c, "o", TR_OUT, nq, 0, 0);
    c->t[t_f32(c, "lse", TR_OUT, (size_t)c->T * H, 0, 0)].tol = STAT_TOL;
    t_act(c, "q", TR_IN, nq, -1.5, 1.5);
    t_act(c, "k", TR_IN, nk, -1.5, 1.5);
    t_act(c, "v", TR_IN, nk, -1, 1);
    t_seqs(c);
    char ls[96];
    lens_str(c, ls, sizeof ls);
    snprintf(c->shape, sizeof c->shape, "T%d %s H%d KV%d D%d window%d", c->T, ls, H, KV, D, c->p[3]);
    c->run = r_attention_forward, c->direct = d_attention_forward;
    c->flops = attn_flops(c, H, D, c->p[3]);
    attn_ws(c, H, KV, D);
}
// the same with scores 16 times wider (q in +-24: a log2-domain standard deviation of about 17), so that a row's
// running maximum often grows by more than 2^8 from one key tile to the next: the CUDA forward's lazy maxima
// (wga_softmax's LAZY) then rescale the output mid-sequence, which ordinary scores never make them do
static void b_attention_forward_wide(opcase_t *c) {
    b_attention_forward(c);
    for (int i = 0; i < c->nt; i++)
        if (!strcmp(c->t[i].name, "q"))
            for (size_t j = 0; j < c->t[i].n; j++) c->t[i].f[j] *= 16.0f;  // (a power of two: bf16 values stay so)
    strncat(c->shape, " wide", sizeof c->shape - strlen(c->shape) - 1);
}
// backward tensors: dq dk dv dout o lse q k v cu
static void r_attention_backward(backend_t *b, void **p, const opcase_t *c, double *ret) {
    (void)ret;
    op_seqs_t s = seqs_of(p, c);
    attention_backward(b, p[0], p[1], p[2], p[3], p[4], PF(5), p[6], p[7], p[8], &s, c->p[0], c->p[1], c->p[2],
                       c->p[3], c->p[4]);
}
static void d_attention_backward(void **p, const opcase_t *c, double *ret) {
    (void)ret;
    attention_backward_cpu(PF(0), PF(1), PF(2), PF(3), PF(4), PF(5), PF(6), PF(7), PF(8), PI(9), c->nseq, c->p[0],
                           c->p[1], c->p[2], c->p[3]);
}
static double l_attention_backward(const opcase_t *c) {
    size_t n = (size_t)c->T * c->p[0] * c->p[2];
    float *o = xcalloc(n, sizeof(float)), *lse = xcalloc((size_t)c->T * c->p[0], sizeof(float));
    attention_forward_cpu(o, lse, HF(6), HF(7), HF(8), HI(9), c->nseq, c->p[0], c->p[1], c->p[2], c->p[3]);
    double l = dot_d(o, HF(3), n);
    free(o), free(lse);
    return l;
}
static void b_attention_backward(opcase_t *c) {
    int H = c->p[0], KV = c->p[1], D = c->p[2];
    seqs_count(c);
    size_t nq = (size_t)c->T * H * D, nk = (size_t)c->T * KV * D;
    int role = c->p[4] == OP_ACCUMULATE ? TR_ACC : TR_OUT;
    // a sequence of one token has one key: its dq and dk are 0 (the softmax's gradient), noise in both results
    c->t[t_act(c, "dq", role, nq, 0, 0)].floor = 1e-3;
    c->t[t_act(c, "dk", role, nk, 0, 0)].floor = 1e-3;
    t_act(c, "dv", role, nk, 0, 0);
    t_act(c, "dout", TR_IN, nq, -1, 1);
    int o = t_act(c, "o", TR_IN, nq, 0, 0), lse = t_f32(c, "lse", TR_IN, (size_t)c->T * H, 0, 0);
    int q = t_act(c, "q", TR_IN, nq, -1.5, 1.5), k = t_act(c, "k", TR_IN, nk, -1.5, 1.5);
    int v = t_act(c, "v", TR_IN, nk, -1, 1);
    int cu = t_seqs(c);
    if (g_dry || (c->flags & CASE_PERF_ONLY)) {  // timing only: a plausible lse, no reference forward
        for (int i = 0; i < c->T * H; i++) HF(lse)[i] = 4.0f;
    } else {
        attention_forward_cpu(HF(o), HF(lse), HF(q), HF(k), HF(v), HI(cu), c->nseq, H, KV, D, c->p[3]);
        round_to_backend(c, o);
    }
    char ls[96];
    lens_str(c, ls, sizeof ls);
    snprintf(c->shape, sizeof c->shape, "T%d %s H%d KV%d D%d window%d %s", c->T, ls, H, KV, D, c->p[3],
             acc_name(c->p[4]));
    c->run = r_attention_backward, c->direct = d_attention_backward, c->loss = l_attention_backward;
    c->direct_zero = 1;
    c->ngrad = 3;
    for (int g = 0; g < 3; g++) c->grad_in[g] = 6 + g, c->grad_out[g] = g;
    c->flops = 2.5 * attn_flops(c, H, D, c->p[3]);
    attn_ws(c, H, KV, D);
}
// A random paged layout: slots x max_blocks table entries, each mapped to a distinct pool block of
// n_blocks (>= slots * max_blocks), unused pool blocks left over (their contents must not matter).
static void block_table_fill(int32_t *bt, int S, int MB, int NB) {
    int32_t *perm = xcalloc((size_t)NB, sizeof(int32_t));
    perm_fill(perm, NB);
    for (int i = 0; i < S * MB; i++) bt[i] = perm[i];
    free(perm);
}
// p: T KVD slots max_blocks block_size n_blocks.  tensors: kcache vcache k v slot pos block_table
static void r_kv_write(backend_t *b, void **p, const opcase_t *c, double *ret) {
    (void)ret;
    kv_write(b, p[0], p[1], p[2], p[3], PI(4), PI(5), c->p[0], c->p[1], PI(6), c->p[3], c->p[4]);
}
static void d_kv_write(void **p, const opcase_t *c, double *ret) {
    (void)ret;
    kv_write_cpu(PF(0), PF(1), PF(2), PF(3), PI(4), PI(5), c->p[0], c->p[1], PI(6), c->p[3], c->p[4]);
}
static void b_kv_write(opcase_t *c) {
    int T = c->p[0], KVD = c->p[1], S = c->p[2], MB = c->p[3], BS = c->p[4], NB = c->p[5], M = MB * BS;
    size_t ncache = (size_t)NB * BS * KVD;
    t_act(c, "kcache", TR_INOUT, ncache, -1, 1);
    t_act(c, "vcache", TR_INOUT, ncache, -1, 1);
    t_act(c, "k", TR_IN, (size_t)T * KVD, -1, 1);
    t_act(c, "v", TR_IN, (size_t)T * KVD, -1, 1);
    int32_t *slot = HI(t_i32(c, "slot", TR_IN, (size_t)T)), *pos = HI(t_i32(c, "pos", TR_IN, (size_t)T));
    int32_t *bt = HI(t_i32(c, "block_table", TR_IN, (size_t)S * MB));
    if (!g_dry) block_table_fill(bt, S, MB, NB);
    int32_t *cells = xcalloc((size_t)S * M, sizeof(int32_t));  // distinct (slot, pos) cells
    perm_fill(cells, S * M);
    for (int t = 0; t < T; t++) slot[t] = cells[t] / M, pos[t] = cells[t] % M;
    free(cells);
    snprintf(c->shape, sizeof c->shape, "T%d KVD%d slots%d blocks%dx%d pool%d", T, KVD, S, MB, BS, NB);
    c->run = r_kv_write, c->direct = d_kv_write;
}
// p: n H KV D slots max_blocks block_size window n_blocks.  tensors: o q kcache vcache slot len block_table
static void r_attention_decode(backend_t *b, void **p, const opcase_t *c, double *ret) {
    (void)ret;
    attention_decode(b, p[0], p[1], p[2], p[3], PI(4), PI(5), c->p[0], c->p[1], c->p[2], c->p[3], PI(6), c->p[5],
                     c->p[6], c->p[7]);
}
static void d_attention_decode(void **p, const opcase_t *c, double *ret) {
    (void)ret;
    int H = c->p[1], KV = c->p[2], D = c->p[3], MB = c->p[5];
    size_t HD = (size_t)H * D;
    for (int i = 0; i < c->p[0]; i++)
        attention_decode_cpu(PF(0) + i * HD, PF(1) + i * HD, PF(2), PF(3), PI(6) + (size_t)PI(4)[i] * MB, PI(5)[i], H,
                             KV, D, c->p[6], c->p[7]);
}
static void b_attention_decode(opcase_t *c) {
    int n = c->p[0], H = c->p[1], KV = c->p[2], D = c->p[3], S = c->p[4], MB = c->p[5], BS = c->p[6], NB = c->p[8];
    int M = MB * BS;
    t_act(c, "o", TR_OUT, (size_t)n * H * D, 0, 0);
    t_act(c, "q", TR_IN, (size_t)n * H * D, -1.5, 1.5);
    t_act(c, "kcache", TR_IN, (size_t)NB * BS * KV * D, -1.5, 1.5);
    t_act(c, "vcache", TR_IN, (size_t)NB * BS * KV * D, -1, 1);
    int32_t *slot = HI(t_i32(c, "slot", TR_IN, (size_t)n)), *len = HI(t_i32(c, "len", TR_IN, (size_t)n));
    int32_t *bt = HI(t_i32(c, "block_table", TR_IN, (size_t)S * MB));
    if (!g_dry) block_table_fill(bt, S, MB, NB);
    for (int i = 0; i < n; i++) slot[i] = irand(S), len[i] = 1 + irand(M);
    len[0] = M;      // a full cache
    if (n > 1) len[1] = 1;  // a single position
    if (n > 3) slot[3] = slot[2], len[3] = len[2] > 1 ? len[2] - 1 : 1;  // two queries of one slot (a prefill chunk)
    snprintf(c->shape, sizeof c->shape, "n%d H%d KV%d D%d slots%d blocks%dx%d pool%d window%d", n, H, KV, D, S, MB, BS,
             NB, c->p[7]);
    c->run = r_attention_decode, c->direct = d_attention_decode;
}

// ===================================================================== sampling
// p: n V slots mode.  tensors: tok logp done state logits slot. mode: 0 plain, 1 greedy, 2 top-k,
// 3 top-p, 4 top-k + top-p (tempered log-prob), 5 top-k + top-p on logits with many ties.
static void r_sample_tokens(backend_t *b, void **p, const opcase_t *c, double *ret) {
    (void)ret;
    sample_tokens(b, PI(0), PF(1), PI(2), (sample_slot_t *)p[3], PI(5), PF(4), c->p[0], c->p[1]);
}
static void d_sample_tokens(void **p, const opcase_t *c, double *ret) {
    (void)ret;
    sample_tokens_cpu(PI(0), PF(1), PI(2), (sample_slot_t *)p[3], PI(5), PF(4), c->p[0], c->p[1]);
}
static void b_sample_tokens(opcase_t *c) {
    int n = c->p[0], V = c->p[1], S = c->p[2], mode = c->p[3];
    static const char *const modes[6] = {"plain", "greedy", "top-k", "top-p", "top-k+p", "ties"};
    t_i32(c, "tok", TR_OUT, (size_t)n);
    c->t[t_f32(c, "logp", TR_OUT, (size_t)n, 0, 0)].tol = 1e-6;
    t_i32(c, "done", TR_OUT, (size_t)n);
    sample_slot_t *st = (sample_slot_t *)HI(t_i32(c, "state", TR_INOUT, (size_t)S * sizeof(sample_slot_t) / 4));
    float *z = HF(t_f32(c, "logits", TR_IN, (size_t)n * V, -6, 6));
    int32_t *slot = HI(t_i32(c, "slot", TR_IN, (size_t)n));
    snprintf(c->shape, sizeof c->shape, "n%d V%d slots%d %s", n, V, S, modes[mode]);
    c->run = r_sample_tokens, c->direct = d_sample_tokens;
    c->ws.nseq = n, c->ws.V = V, c->ws.T = n;
    if (g_dry) return;
    if (mode == 5)
        for (size_t i = 0; i < (size_t)n * V; i++) z[i] = 0.5f * floorf(z[i]);  // a few distinct values
    int32_t *perm = xcalloc((size_t)S, sizeof(int32_t));
    perm_fill(perm, S);
    for (int i = 0; i < n; i++) slot[i] = perm[i];
    free(perm);
    for (int s = 0; s < S; s++) {
        sample_slot_t *x = st + s;
        memset(x, 0, sizeof *x);
        x->seed = test_rng_next(&rng);
        x->temperature = mode == 2 ? 0.7 : mode == 4 ? 1.3 : 1.0;
        x->top_p = mode == 3 ? 0.9 : mode >= 4 ? 0.8 : 1.0;
        x->top_k = mode == 2 ? 40 : mode >= 4 ? 50 : 0;
        x->greedy = mode == 1;
        x->tempered_logp = mode == 4;
        x->rep_p = 0.001 * irand(100);
        x->rep_n = irand(4);
        x->eos_id = irand(2) ? irand(V) : -1;
        x->max_new = 1 + irand(40);
        x->n_gen = irand(x->max_new);
        x->run = irand(3);
    }
}

// ===================================================================== MoE
static void moe_ws(opcase_t *c, int T, int E, int K, int C) { c->ws.T = T, c->ws.E = E, c->ws.K = K, c->ws.C = C; }
// p: T E K replay.  tensors: probs topk_idx topk_w logits
static void r_moe_route_forward(backend_t *b, void **p, const opcase_t *c, double *ret) {
    (void)ret;
    moe_route_forward(b, PF(0), PI(1), PF(2), p[3], c->p[0], c->p[1], c->p[2], c->p[3]);
}
static void d_moe_route_forward(void **p, const opcase_t *c, double *ret) {
    (void)ret;
    moe_route_forward_cpu(PF(0), PI(1), PF(2), PF(3), c->p[0], c->p[1], c->p[2], c->p[3]);
}
static void b_moe_route_forward(opcase_t *c) {
    int T = c->p[0], E = c->p[1], K = c->p[2], replay = c->p[3];
    c->t[t_f32(c, "probs", TR_OUT, (size_t)T * E, 0, 0)].tol = 1e-5;
    int ix = t_i32(c, "topk_idx", replay ? TR_IN : TR_OUT, (size_t)T * K);
    if (replay) topk_fill(HI(ix), T, E, K);  // K distinct experts in random order: routes of another forward
    c->t[t_f32(c, "topk_w", TR_OUT, (size_t)T * K, 0, 0)].tol = 1e-5;
    logits_fill(HF(t_act(c, "logits", TR_IN, (size_t)T * E, 0, 0)), T, E);
    snprintf(c->shape, sizeof c->shape, "T%d E%d K%d%s", T, E, K, replay ? " replay" : "");
    c->run = r_moe_route_forward, c->direct = d_moe_route_forward;
    moe_ws(c, T, E, K, 1);
}
// Softmax rows [T,E] (fp32) from tie-free logits, and their top-K.
static void route_inputs(float *probs, int32_t *idx, float *w, float *logits, int T, int E, int K) {
    logits_fill(logits, T, E);
    moe_route_forward_cpu(probs, idx, w, logits, T, E, K, 0);
}
// p: T E K.  tensors: out probs topk_idx
static void r_moe_aux_loss(backend_t *b, void **p, const opcase_t *c, double *ret) {
    (void)ret;
    moe_aux_loss(b, PF(0), PF(1), PI(2), c->p[0], c->p[1], c->p[2]);
}
static void d_moe_aux_loss(void **p, const opcase_t *c, double *ret) {
    (void)ret;
    PF(0)[0] = moe_aux_loss_cpu(PF(1), PI(2), c->p[0], c->p[1], c->p[2]);
}
static void b_moe_aux_loss(opcase_t *c) {
    int T = c->p[0], E = c->p[1], K = c->p[2];
    c->t[t_f32(c, "aux", TR_OUT, 1, 0, 0)].tol = 1e-5;
    int pr = t_f32(c, "probs", TR_IN, (size_t)T * E, 0, 0), ix = t_i32(c, "topk_idx", TR_IN, (size_t)T * K);
    float *w = xcalloc((size_t)T * K, sizeof(float)), *z = xcalloc((size_t)T * E, sizeof(float));
    route_inputs(HF(pr), HI(ix), w, z, T, E, K);
    free(w), free(z);
    snprintf(c->shape, sizeof c->shape, "T%d E%d K%d", T, E, K);
    c->run = r_moe_aux_loss, c->direct = d_moe_aux_loss;
    moe_ws(c, T, E, K, 1);
}
// p: T E K acc; f: d_aux.  tensors: dlogits dtopk_w probs topk_idx topk_w logits(host)
static void r_moe_route_backward(backend_t *b, void **p, const opcase_t *c, double *ret) {
    (void)ret;
    moe_route_backward(b, p[0], PF(1), c->f[0], PF(2), PI(3), PF(4), c->p[0], c->p[1], c->p[2], c->p[3]);
}
static void d_moe_route_backward(void **p, const opcase_t *c, double *ret) {
    (void)ret;
    moe_route_backward_cpu(PF(0), PF(1), c->f[0], PF(2), PI(3), PF(4), c->p[0], c->p[1], c->p[2]);
}
static double l_moe_route_backward(const opcase_t *c) {  // L = <dtopk_w, topk_w(z)> + d_aux aux(z)
    int T = c->p[0], E = c->p[1], K = c->p[2];
    float *pr = xcalloc((size_t)T * E, sizeof(float)), *w = xcalloc((size_t)T * K, sizeof(float));
    int32_t *ix = xcalloc((size_t)T * K, sizeof(int32_t));
    moe_route_forward_cpu(pr, ix, w, HF(5), T, E, K, 0);
    double l = dot_d(w, HF(1), (size_t)T * K) + (double)c->f[0] * moe_aux_loss_cpu(pr, ix, T, E, K);
    free(pr), free(w), free(ix);
    return l;
}
static void b_moe_route_backward(opcase_t *c) {
    int T = c->p[0], E = c->p[1], K = c->p[2];
    t_act(c, "dlogits", c->p[3] == OP_ACCUMULATE ? TR_ACC : TR_OUT, (size_t)T * E, 0, 0);
    t_f32(c, "dtopk_w", TR_IN, (size_t)T * K, -1, 1);
    int pr = t_f32(c, "probs", TR_IN, (size_t)T * E, 0, 0), ix = t_i32(c, "topk_idx", TR_IN, (size_t)T * K);
    int w = t_f32(c, "topk_w", TR_IN, (size_t)T * K, 0, 0), z = t_f32(c, "logits", TR_HOST, (size_t)T * E, 0, 0);
    route_inputs(HF(pr), HI(ix), HF(w), HF(z), T, E, K);
    snprintf(c->shape, sizeof c->shape, "T%d E%d K%d d_aux%g %s", T, E, K, c->f[0], acc_name(c->p[3]));
    c->run = r_moe_route_backward, c->direct = d_moe_route_backward, c->loss = l_moe_route_backward;
    c->direct_zero = 1;
    c->ngrad = 1, c->grad_in[0] = 5, c->grad_out[0] = 0;
    moe_ws(c, T, E, K, 1);
}
// p: T C E K.  tensors: xe perm offsets x topk_idx
static void r_moe_dispatch(backend_t *b, void **p, const opcase_t *c, double *ret) {
    (void)ret;
    moe_dispatch(b, p[0], PI(1), PI(2), p[3], PI(4), c->p[0], c->p[1], c->p[2], c->p[3]);
}
static void d_moe_dispatch(void **p, const opcase_t *c, double *ret) {
    (void)ret;
    moe_dispatch_cpu(PF(0), PI(1), PI(2), PF(3), PI(4), c->p[0], c->p[1], c->p[2], c->p[3]);
}
static void b_moe_dispatch(opcase_t *c) {
    int T = c->p[0], C = c->p[1], E = c->p[2], K = c->p[3];
    t_act(c, "xe", TR_OUT, (size_t)T * K * C, 0, 0);
    t_i32(c, "perm", TR_OUT, (size_t)T * K);
    t_i32(c, "offsets", TR_OUT, (size_t)E + 1);
    t_act(c, "x", TR_IN, (size_t)T * C, -1, 1);
    topk_fill(HI(t_i32(c, "topk_idx", TR_IN, (size_t)T * K)), T, E, K);
    snprintf(c->shape, sizeof c->shape, "T%d C%d E%d K%d", T, C, E, K);
    c->run = r_moe_dispatch, c->direct = d_moe_dispatch;
    moe_ws(c, T, E, K, C);
}
// A dispatch permutation [T*K] as moe_dispatch makes it, from random routing.
static void perm_from_routing(int32_t *perm, int32_t *idx, int T, int C, int E, int K) {
    topk_fill(idx, T, E, K);
    float *x = xcalloc((size_t)T * C, sizeof(float)), *xe = xcalloc((size_t)T * K * C, sizeof(float));
    int32_t *off = xcalloc((size_t)E + 1, sizeof(int32_t));
    moe_dispatch_cpu(xe, perm, off, x, idx, T, C, E, K);
    free(x), free(xe), free(off);
}
// p: T C E K acc.  tensors: dx dxe perm x(host) topk_idx(host)
static void r_moe_dispatch_backward(backend_t *b, void **p, const opcase_t *c, double *ret) {
    (void)ret;
    moe_dispatch_backward(b, p[0], p[1], PI(2), c->p[0], c->p[1], c->p[3], c->p[4]);
}
static void d_moe_dispatch_backward(void **p, const opcase_t *c, double *ret) {
    (void)ret;
    moe_dispatch_backward_cpu(PF(0), PF(1), PI(2), c->p[0], c->p[1], c->p[3]);
}
static double l_moe_dispatch_backward(const opcase_t *c) {
    int T = c->p[0], C = c->p[1], E = c->p[2], K = c->p[3];
    float *xe = xcalloc((size_t)T * K * C, sizeof(float));
    int32_t *perm = xcalloc((size_t)T * K, sizeof(int32_t)), *off = xcalloc((size_t)E + 1, sizeof(int32_t));
    moe_dispatch_cpu(xe, perm, off, HF(3), HI(4), T, C, E, K);
    double l = dot_d(xe, HF(1), (size_t)T * K * C);
    free(xe), free(perm), free(off);
    return l;
}
static void b_moe_dispatch_backward(opcase_t *c) {
    int T = c->p[0], C = c->p[1], E = c->p[2], K = c->p[3];
    t_act(c, "dx", c->p[4] == OP_ACCUMULATE ? TR_ACC : TR_OUT, (size_t)T * C, 0, 0);
    t_act(c, "dxe", TR_IN, (size_t)T * K * C, -1, 1);
    int pm = t_i32(c, "perm", TR_IN, (size_t)T * K);
    t_f32(c, "x", TR_HOST, (size_t)T * C, -1, 1);
    int ix = t_i32(c, "topk_idx", TR_HOST, (size_t)T * K);
    perm_from_routing(HI(pm), HI(ix), T, C, E, K);
    snprintf(c->shape, sizeof c->shape, "T%d C%d E%d K%d %s", T, C, E, K, acc_name(c->p[4]));
    c->run = r_moe_dispatch_backward, c->direct = d_moe_dispatch_backward, c->loss = l_moe_dispatch_backward;
    c->direct_zero = 1;
    c->ngrad = 1, c->grad_in[0] = 3, c->grad_out[0] = 0;
    moe_ws(c, T, E, K, C);
}
// p: T C E K.  tensors: y ye topk_w perm
static void r_moe_combine_forward(backend_t *b, void **p, const opcase_t *c, double *ret) {
    (void)ret;
    moe_combine_forward(b, p[0], p[1], PF(2), PI(3), c->p[0], c->p[1], c->p[3]);
}
static void d_moe_combine_forward(void **p, const opcase_t *c, double *ret) {
    (void)ret;
    moe_combine_forward_cpu(PF(0), PF(1), PF(2), PI(3), c->p[0], c->p[1], c->p[3]);
}
static void b_moe_combine_forward(opcase_t *c) {
    int T = c->p[0], C = c->p[1], E = c->p[2], K = c->p[3];
    t_act(c, "y", TR_OUT, (size_t)T * C, 0, 0);
    t_act(c, "ye", TR_IN, (size_t)T * K * C, -1, 1);
    t_f32(c, "topk_w", TR_IN, (size_t)T * K, 0.05, 1);
    int32_t *idx = xcalloc((size_t)T * K, sizeof(int32_t));
    perm_from_routing(HI(t_i32(c, "perm", TR_IN, (size_t)T * K)), idx, T, C, E, K);
    free(idx);
    snprintf(c->shape, sizeof c->shape, "T%d C%d E%d K%d", T, C, E, K);
    c->run = r_moe_combine_forward, c->direct = d_moe_combine_forward, c->direct_zero = 1;
    moe_ws(c, T, E, K, C);
}
// p: T C E K has_r; f: eps alpha beta.  tensors: x_out out rstd r ye topk_w perm w
static void r_moe_combine_rmsnorm(backend_t *b, void **p, const opcase_t *c, double *ret) {
    (void)ret;
    moe_combine_rmsnorm(b, p[0], p[1], PF(2), p[3], p[4], PF(5), PI(6), c->f[1], c->f[2], p[7], c->p[0], c->p[1],
                        c->p[3], c->f[0]);
}
static void d_moe_combine_rmsnorm(void **p, const opcase_t *c, double *ret) {
    (void)ret;
    moe_combine_rmsnorm_cpu(PF(0), PF(1), PF(2), PF(3), PF(4), PF(5), PI(6), c->f[1], c->f[2], PF(7), c->p[0],
                            c->p[1], c->p[3], c->f[0]);
}
static void b_moe_combine_rmsnorm(opcase_t *c) {
    int T = c->p[0], C = c->p[1], E = c->p[2], K = c->p[3];
    t_act(c, "x_out", TR_OUT, (size_t)T * C, 0, 0);
    t_act(c, "out", TR_OUT, (size_t)T * C, 0, 0);
    c->t[t_f32(c, "rstd", TR_OUT, (size_t)T, 0, 0)].tol = 4e-3;  // of x_out as stored (residual_rmsnorm's row)
    t_act(c, "r", c->p[4] ? TR_IN : TR_NONE, (size_t)T * C, -2, 2);
    t_act(c, "ye", TR_IN, (size_t)T * K * C, -1, 1);
    t_f32(c, "topk_w", TR_IN, (size_t)T * K, 0.05, 1);
    int32_t *idx = xcalloc((size_t)T * K, sizeof(int32_t));
    perm_from_routing(HI(t_i32(c, "perm", TR_IN, (size_t)T * K)), idx, T, C, E, K);
    free(idx);
    t_act(c, "w", TR_IN, (size_t)C, 0.5, 1.5);
    snprintf(c->shape, sizeof c->shape, "T%d C%d E%d K%d%s alpha%g beta%g", T, C, E, K, c->p[4] ? "" : " r=NULL",
             c->f[1], c->f[2]);
    c->run = r_moe_combine_rmsnorm, c->direct = d_moe_combine_rmsnorm;
    moe_ws(c, T, E, K, C);
}
// p: T C E K acc.  tensors: dye dtopk_w dy ye topk_w perm
static void r_moe_combine_backward(backend_t *b, void **p, const opcase_t *c, double *ret) {
    (void)ret;
    moe_combine_backward(b, p[0], PF(1), p[2], p[3], PF(4), PI(5), c->p[0], c->p[1], c->p[3], c->p[4]);
}
static void d_moe_combine_backward(void **p, const opcase_t *c, double *ret) {
    (void)ret;
    moe_combine_backward_cpu(PF(0), PF(1), PF(2), PF(3), PF(4), PI(5), c->p[0], c->p[1], c->p[3]);
}
static double l_moe_combine_backward(const opcase_t *c) {
    int T = c->p[0], C = c->p[1], K = c->p[3];
    float *y = xcalloc((size_t)T * C, sizeof(float));
    moe_combine_forward_cpu(y, HF(3), HF(4), HI(5), T, C, K);
    double l = dot_d(y, HF(2), (size_t)T * C);
    free(y);
    return l;
}
static void b_moe_combine_backward(opcase_t *c) {
    int T = c->p[0], C = c->p[1], E = c->p[2], K = c->p[3];
    int role = c->p[4] == OP_ACCUMULATE ? TR_ACC : TR_OUT;
    t_act(c, "dye", role, (size_t)T * K * C, 0, 0);
    c->t[t_f32(c, "dtopk_w", role, (size_t)T * K, 0, 0)].tol = STAT_TOL;
    t_act(c, "dy", TR_IN, (size_t)T * C, -1, 1);
    t_act(c, "ye", TR_IN, (size_t)T * K * C, -1, 1);
    t_f32(c, "topk_w", TR_IN, (size_t)T * K, 0.05, 1);
    int32_t *idx = xcalloc((size_t)T * K, sizeof(int32_t));
    perm_from_routing(HI(t_i32(c, "perm", TR_IN, (size_t)T * K)), idx, T, C, E, K);
    free(idx);
    snprintf(c->shape, sizeof c->shape, "T%d C%d E%d K%d %s", T, C, E, K, acc_name(c->p[4]));
    c->run = r_moe_combine_backward, c->direct = d_moe_combine_backward, c->loss = l_moe_combine_backward;
    c->direct_zero = 1;
    c->ngrad = 2, c->grad_in[0] = 3, c->grad_out[0] = 0, c->grad_in[1] = 4, c->grad_out[1] = 1;
    moe_ws(c, T, E, K, C);
}

// ===================================================================== LM head
static int lmhead_chunk_of(int T, int V) {  // as kernels/ops.c: at most 2^22 logits at once
    size_t ch = ((size_t)1 << 22) / (size_t)V;
    if (ch < 1) ch = 1;
    if (ch > (size_t)T) ch = (size_t)T;
    return (int)(ch > 0 ? ch : 1);
}
static void targets_fill(int32_t *tg, int T, int V) {
    for (int t = 0; t < T; t++) tg[t] = (t % 5 == 3) ? -1 : irand(V);
}
// p: T C V with_entropy.  tensors: logp lse entropy x w targets
static void r_lmhead_logprob_forward(backend_t *b, void **p, const opcase_t *c, double *ret) {
    (void)ret;
    lmhead_logprob_forward(b, PF(0), PF(1), PF(2), p[3], p[4], PI(5), c->p[0], c->p[1], c->p[2]);
}
static void d_lmhead_logprob_forward(void **p, const opcase_t *c, double *ret) {
    (void)ret;
    lmhead_logprob_forward_cpu(PF(0), PF(1), PF(2), PF(3), PF(4), PI(5), c->p[0], c->p[1], c->p[2],
                               lmhead_chunk_of(c->p[0], c->p[2]));
}
static void lmhead_ws(opcase_t *c, int T, int C, int V) { c->ws.T = T, c->ws.C = c->ws.F = C, c->ws.V = V; }
static void b_lmhead_logprob_forward(opcase_t *c) {
    int T = c->p[0], C = c->p[1], V = c->p[2];
    c->t[t_f32(c, "logp", TR_OUT, (size_t)T, 0, 0)].tol = STAT_TOL;
    c->t[t_f32(c, "lse", TR_OUT, (size_t)T, 0, 0)].tol = STAT_TOL;
    if (c->p[3]) c->t[t_f32(c, "entropy", TR_OUT, (size_t)T, 0, 0)].tol = STAT_TOL;
    else t_none(c, "entropy");
    t_act(c, "x", TR_IN, (size_t)T * C, -1, 1);
    t_act(c, "w", TR_IN, (size_t)V * C, -0.3, 0.3);
    targets_fill(HI(t_i32(c, "targets", TR_IN, (size_t)T)), T, V);
    snprintf(c->shape, sizeof c->shape, "T%d C%d V%d%s", T, C, V, c->p[3] ? " entropy" : "");
    c->run = r_lmhead_logprob_forward, c->direct = d_lmhead_logprob_forward, c->flops = 2.0 * T * C * V;
    lmhead_ws(c, T, C, V);
}
// p: T C V acc.  tensors: dx dw dlogp x w targets lse
static void r_lmhead_logprob_backward(backend_t *b, void **p, const opcase_t *c, double *ret) {
    (void)ret;
    lmhead_logprob_backward(b, p[0], PF(1), PF(2), p[3], p[4], PI(5), PF(6), c->p[0], c->p[1], c->p[2], c->p[3]);
}
static void d_lmhead_logprob_backward(void **p, const opcase_t *c, double *ret) {
    (void)ret;
    lmhead_logprob_backward_cpu(PF(0), PF(1), PF(2), PF(3), PF(4), PI(5), PF(6), c->p[0], c->p[1], c->p[2],
                                lmhead_chunk_of(c->p[0], c->p[2]));
}
static double l_lmhead_logprob_backward(const opcase_t *c) {
    int T = c->p[0], C = c->p[1], V = c->p[2];
    float *logp = xcalloc((size_t)T, sizeof(float)), *lse = xcalloc((size_t)T, sizeof(float));
    lmhead_logprob_forward_cpu(logp, lse, NULL, HF(3), HF(4), HI(5), T, C, V, lmhead_chunk_of(T, V));
    double l = dot_d(logp, HF(2), (size_t)T);
    free(logp), free(lse);
    return l;
}
static void b_lmhead_logprob_backward(opcase_t *c) {
    int T = c->p[0], C = c->p[1], V = c->p[2];
    t_act(c, "dx", c->p[3] == OP_ACCUMULATE ? TR_ACC : TR_OUT, (size_t)T * C, 0, 0);
    c->t[t_grad(c, "dw", TR_ACC, (size_t)V * C, 0, 0)].tol = 5e-3;  // through bf16 logits gradients
    t_f32(c, "dlogp", TR_IN, (size_t)T, -1, 1);
    int x = t_act(c, "x", TR_IN, (size_t)T * C, -1, 1), w = t_act(c, "w", TR_IN, (size_t)V * C, -0.3, 0.3);
    int tg = t_i32(c, "targets", TR_IN, (size_t)T);
    targets_fill(HI(tg), T, V);
    int lse = t_f32(c, "lse", TR_IN, (size_t)T, 0, 0);
    float *logp = xcalloc((size_t)T, sizeof(float));
    lmhead_logprob_forward_cpu(logp, HF(lse), NULL, HF(x), HF(w), HI(tg), T, C, V, lmhead_chunk_of(T, V));
    free(logp);
    snprintf(c->shape, sizeof c->shape, "T%d C%d V%d %s", T, C, V, acc_name(c->p[3]));
    c->run = r_lmhead_logprob_backward, c->direct = d_lmhead_logprob_backward, c->loss = l_lmhead_logprob_backward;
    c->direct_zero = 1;
    c->ngrad = 2, c->grad_in[0] = 3, c->grad_out[0] = 0, c->grad_in[1] = 4, c->grad_out[1] = 1;
    c->flops = 6.0 * T * C * V;
    lmhead_ws(c, T, C, V);
}
// p: n C V bf16 (logits rounded to bf16: backend_tuning_t.lmhead_bf16).  tensors: logits x w
static void r_lmhead_logits(backend_t *b, void **p, const opcase_t *c, double *ret) {
    (void)ret;
    int keep = b->tune.lmhead_bf16;
    b->tune.lmhead_bf16 = c->p[3];
    lmhead_logits(b, PF(0), p[1], p[2], c->p[0], c->p[1], c->p[2]);
    b->tune.lmhead_bf16 = keep;
}
static void d_lmhead_logits(void **p, const opcase_t *c, double *ret) {
    (void)ret;
    lmhead_logits_cpu(PF(0), PF(1), PF(2), c->p[0], c->p[1], c->p[2], c->p[3]);
}
static void b_lmhead_logits(opcase_t *c) {
    int n = c->p[0], C = c->p[1], V = c->p[2];
    c->t[t_f32(c, "logits", TR_OUT, (size_t)n * V, 0, 0)].tol = STAT_TOL;
    t_act(c, "x", TR_IN, (size_t)n * C, -1, 1);
    t_act(c, "w", TR_IN, (size_t)V * C, -0.3, 0.3);
    snprintf(c->shape, sizeof c->shape, "n%d C%d V%d%s", n, C, V, c->p[3] ? " bf16 logits" : "");
    c->run = r_lmhead_logits, c->direct = d_lmhead_logits, c->flops = 2.0 * n * C * V;
    lmhead_ws(c, n, C, V);
}

// ===================================================================== optimizer
// p: n.  tensors: g
static void r_sum_squares(backend_t *b, void **p, const opcase_t *c, double *ret) {
    *ret = sum_squares(b, p[0], b->grad_dtype, (size_t)c->p[0]);
}
static void d_sum_squares(void **p, const opcase_t *c, double *ret) { *ret = sum_squares_cpu(PF(0), (size_t)c->p[0]); }
static void b_sum_squares(opcase_t *c) {
    t_grad(c, "g", TR_IN, (size_t)c->p[0], -3, 3);
    snprintf(c->shape, sizeof c->shape, "n%d", c->p[0]);
    c->run = r_sum_squares, c->direct = d_sum_squares, c->has_ret = 1, c->ret_tol = 1e-7, c->flops = 2.0 * c->p[0];
}
// p: n; f: s.  tensors: x
static void r_scale_f32(backend_t *b, void **p, const opcase_t *c, double *ret) {
    (void)ret;
    scale_f32(b, PF(0), c->f[0], (size_t)c->p[0]);
}
static void d_scale_f32(void **p, const opcase_t *c, double *ret) {
    (void)ret;
    scale_f32_cpu(PF(0), c->f[0], (size_t)c->p[0]);
}
static void b_scale_f32(opcase_t *c) {
    c->t[t_f32(c, "x", TR_INOUT, (size_t)c->p[0], -3, 3)].tol = 1e-7;
    snprintf(c->shape, sizeof c->shape, "n%d s%g", c->p[0], c->f[0]);
    c->run = r_scale_f32, c->direct = d_scale_f32;
}
// p: n step; f: lr beta1 beta2 eps wd gscale (0: 1).  tensors: p w_act m v g
#define GSCALE(c) ((c)->f[5] != 0.0f ? (c)->f[5] : 1.0f)
static void r_adamw_step(backend_t *b, void **p, const opcase_t *c, double *ret) {
    (void)ret;
    size_t n = (size_t)c->p[0];
    const float *f = c->f;
    if (b->act_dtype == DTYPE_F32) {  // the working copy is p itself: w_act must equal p after the step
        adamw_step(b, PF(0), NULL, PF(2), PF(3), p[4], b->grad_dtype, GSCALE(c), n, f[0], f[1], f[2], f[3], f[4], c->p[1]);
        backend_copy(b, p[1], p[0], n * sizeof(float));
    } else {
        adamw_step(b, PF(0), p[1], PF(2), PF(3), p[4], b->grad_dtype, GSCALE(c), n, f[0], f[1], f[2], f[3], f[4], c->p[1]);
    }
}
static void d_adamw_step(void **p, const opcase_t *c, double *ret) {
    (void)ret;
    const float *f = c->f;
    adamw_step_cpu(PF(0), PF(2), PF(3), PF(4), GSCALE(c), (size_t)c->p[0], f[0], f[1], f[2], f[3], f[4], c->p[1]);
    memcpy(p[1], p[0], (size_t)c->p[0] * sizeof(float));
}
static void b_adamw_step(opcase_t *c) {
    size_t n = (size_t)c->p[0];
    c->t[t_f32(c, "p", TR_INOUT, n, -1, 1)].tol = 1e-5;
    t_act(c, "w_act", TR_OUT, n, 0, 0);
    c->t[t_f32(c, "m", TR_INOUT, n, -0.1, 0.1)].tol = 1e-5;
    c->t[t_f32(c, "v", TR_INOUT, n, 1e-6, 1e-2)].tol = 1e-5;
    t_grad(c, "g", TR_IN, n, -0.3, 0.3);
    snprintf(c->shape, sizeof c->shape, "n%zu step%d lr%g wd%g gscale%g", n, c->p[1], c->f[0], c->f[4], GSCALE(c));
    c->run = r_adamw_step, c->direct = d_adamw_step, c->flops = 15.0 * (double)n;
}

// ===================================================================== lightning GPU checks
// Decode on contiguous states continuing a prefill (the decode case of the former lightning GPU test):
// prefill with lightning_forward (states out), then p[3] decode steps. The CUDA op API does not reach
// the contiguous-state kernel (lightning_decode takes slots), so the CUDA row calls
// lightning_decode_cuda; the CPU row calls the op API with slot i = sequence i.
static int x_lightning_decode_contig(backend_t *b, opcase_t *c, double *err, double *limit, char *note,
                                     size_t note_cap) {
    int H = c->p[0], D = c->p[1], steps = c->p[3], nseq = c->nlens;
    seqs_count(c);
    const int T = c->T, dt = b->act_dtype;
    const size_t n = (size_t)T * H * D, ns = (size_t)nseq * H * D * D, nd = (size_t)nseq * H * D;
    backend_t *hb = backend_host();
    int32_t *cu = xcalloc((size_t)nseq + 1, sizeof(int32_t)), *slot = xcalloc((size_t)nseq, sizeof(int32_t));
    for (int s = 0; s < nseq; s++) cu[s + 1] = cu[s] + c->lens[s], slot[s] = s;
    float *slopes = xcalloc((size_t)H, sizeof(float));
    lightning_slopes(slopes, H, 3, 8, 1);
    float *q = xcalloc(n + 1, 4), *k = xcalloc(n + 1, 4), *v = xcalloc(n + 1, 4);
    for (size_t i = 0; i < n; i++) {
        q[i] = (float)urand(-1, 1), k[i] = (float)urand(-1, 1), v[i] = (float)urand(-1, 1);
        if (c->bf16) q[i] = round_bf16(q[i]), k[i] = round_bf16(k[i]), v[i] = round_bf16(v[i]);
    }
    // reference: the CPU op API, prefill then decode with slots = sequences (contiguous states)
    float *o_ref = xcalloc(n + 1, 4), *s_ref = xcalloc(ns, 4);
    op_seqs_t hs = {cu, cu, nseq, T, 0};
    for (int s = 0; s < nseq; s++) hs.max_len = c->lens[s] > hs.max_len ? c->lens[s] : hs.max_len;
    lightning_forward(hb, o_ref, s_ref, q, k, v, NULL, slopes, &hs, H, D, 256);
    // backend under test
    size_t es = dtype_size(dt);
    void *dq = backend_alloc(b, n * es + 4), *dk = backend_alloc(b, n * es + 4), *dv = backend_alloc(b, n * es + 4);
    void *dout = backend_alloc(b, n * es + 4);
    float *dstate = backend_alloc(b, ns * 4), *dslopes = backend_alloc(b, (size_t)H * 4);
    int32_t *dcu = backend_alloc(b, ((size_t)nseq + 1) * 4), *dslot = backend_alloc(b, (size_t)nseq * 4);
    backend_fill_f32(b, dq, dt, q, n), backend_fill_f32(b, dk, dt, k, n), backend_fill_f32(b, dv, dt, v, n);
    backend_upload(b, dslopes, slopes, (size_t)H * 4);
    backend_upload(b, dcu, cu, ((size_t)nseq + 1) * 4);
    backend_upload(b, dslot, slot, (size_t)nseq * 4);
    float *nanv = xcalloc(ns > n ? ns : n, 4);
    for (size_t i = 0; i < (ns > n ? ns : n); i++) nanv[i] = NAN;
    backend_fill_f32(b, dstate, DTYPE_F32, nanv, ns);
    op_seqs_t ds = {dcu, cu, nseq, T, hs.max_len};
    backend_ws_reserve(b, lightning_workspace_bytes(b, T, nseq, H, D) + 4096);
    lightning_forward(b, dout, dstate, dq, dk, dv, NULL, dslopes, &ds, H, D, 256);
    float *tq = xcalloc(nd, 4), *tk = xcalloc(nd, 4), *tv = xcalloc(nd, 4), *to_ref = xcalloc(nd, 4);
    float *to = xcalloc(nd, 4);
    void *gq = backend_alloc(b, nd * es), *gk = backend_alloc(b, nd * es), *gv = backend_alloc(b, nd * es);
    void *go = backend_alloc(b, nd * es);
    double worst = 0;
    int rc = 0;
    for (int st = 0; st < steps && rc == 0; st++) {
        for (size_t i = 0; i < nd; i++) {
            tq[i] = (float)urand(-1, 1), tk[i] = (float)urand(-1, 1), tv[i] = (float)urand(-1, 1);
            if (c->bf16) tq[i] = round_bf16(tq[i]), tk[i] = round_bf16(tk[i]), tv[i] = round_bf16(tv[i]);
        }
        backend_fill_f32(b, gq, dt, tq, nd), backend_fill_f32(b, gk, dt, tk, nd), backend_fill_f32(b, gv, dt, tv, nd);
        backend_fill_f32(b, go, dt, nanv, nd);
        if (b->kind == BACKEND_CPU) {
            lightning_decode(b, go, dstate, dslot, gq, gk, gv, dslopes, nseq, H, D);
        } else {
#ifdef CISPO_HAVE_CUDA
            rc = lightning_decode_cuda(go, dstate, gq, gk, gv, dslopes, nseq, H, D, (cudaStream_t)b->stream);
#endif
        }
        lightning_decode(hb, to_ref, s_ref, slot, tq, tk, tv, slopes, nseq, H, D);
        backend_read_f32(b, to, go, dt, nd);
        double e = test_rel_l2(to, to_ref, nd);
        if (e > worst) worst = e;
    }
    float *s_out = xcalloc(ns, 4);
    backend_read_f32(b, s_out, dstate, DTYPE_F32, ns);
    double es_ = test_rel_l2(s_out, s_ref, ns);
    *limit = b->kind == BACKEND_CPU ? CPU_TOL : BF16_TOL;
    *err = rc ? INFINITY : (worst > es_ ? worst : es_);
    if (rc) snprintf(note, note_cap, "lightning_decode_cuda failed: %s", cispo_last_error());
    else snprintf(note, note_cap, "o (worst of %d steps) %.2e, state %.2e", steps, worst, es_);
    void *dev[] = {dq, dk, dv, dout, dstate, dslopes, dcu, dslot, gq, gk, gv, go};
    for (size_t i = 0; i < sizeof dev / sizeof dev[0]; i++) backend_free(b, dev[i]);
    free(cu), free(slot), free(slopes), free(q), free(k), free(v), free(o_ref), free(s_ref), free(nanv);
    free(tq), free(tk), free(tv), free(to_ref), free(to), free(s_out);
    return 0;
}
static void b_lightning_decode_contig(opcase_t *c) {
    seqs_count(c);
    char ls[96];
    lens_str(c, ls, sizeof ls);
    snprintf(c->shape, sizeof c->shape, "contiguous states: prefill T%d %s H%d D%d + %d steps", c->T, ls, c->p[0],
             c->p[1], c->p[3]);
    c->custom = x_lightning_decode_contig;
}
// A head dim the GPU kernels do not take must be refused with a message naming it, not launched.
static int x_lightning_bad_args(backend_t *b, opcase_t *c, double *err, double *limit, char *note, size_t cap) {
    (void)c;
    *limit = 0;
    if (b->kind != BACKEND_CUDA) return -1;  // a check of the CUDA entry points only
#ifdef CISPO_HAVE_CUDA
    int rc = lightning_forward_cuda((uint16_t *)16, NULL, (uint16_t *)16, (uint16_t *)16, (uint16_t *)16, NULL,
                                    (float *)16, (int32_t *)16, 1, 8, 96, 64, 128, NULL, NULL, 0, 0);
    int ok = rc == -1 && strstr(cispo_last_error(), "D=96") != NULL;
    *err = ok ? 0 : 1;
    snprintf(note, cap, "rc=%d msg='%s'", rc, cispo_last_error());
    return 0;
#else
    (void)err, (void)note, (void)cap;
    return -1;
#endif
}
static void b_lightning_bad_args(opcase_t *c) {
    snprintf(c->shape, sizeof c->shape, "lightning_forward_cuda D=96 refused");
    c->custom = x_lightning_bad_args;
}

// ===================================================================== the table
#define W OP_WRITE
#define A OP_ACCUMULATE
#define LENS(...) .lens = {__VA_ARGS__}, .nlens = (int)(sizeof((int[]){__VA_ARGS__}) / sizeof(int))
#define BIG CASE_CUDA_ROWS_ONLY
#define CPUONLY CASE_CPU_ONLY

static const entry_t fixed_table[] = {
    // ---- GEMM: T not a tile multiple, every transpose, alpha/beta, E=1 groups, empty groups, strides
    {OP_matmul, b_matmul, {37, 50, 64, 0, 1}, {1, 0}, {0}, 0, 0},
    {OP_matmul, b_matmul, {1, 1000, 128, 0, 1}, {1, 0}, {0}, 0, 0},
    {OP_matmul, b_matmul, {200, 33, 17, 1, 0}, {0.5f, 0.7f}, {0}, 0, 0},
    {OP_matmul, b_matmul, {64, 64, 64, 1, 1}, {1, 1}, {0}, 0, 0},
    {OP_matmul, b_matmul, {3, 5, 7, 0, 0}, {2, 0}, {0}, 0, 0},
    // linear layers of a few rows through the wide-k tiles (decode's projections; dense_skinny): a full 64-row
    // product, n past a 64-column tile, an odd n with beta and a k tail inside a 128 step, several row tiles, the
    // router's 32 columns; then on the persistent grid
    {OP_matmul, b_matmul, {64, 1024, 1024, 0, 1}, {1, 0}, {0}, 0, CASE_DENSE_SKINNY},
    {OP_matmul, b_matmul, {37, 50, 64, 0, 1}, {1, 0}, {0}, 0, CASE_DENSE_SKINNY},
    {OP_matmul, b_matmul, {5, 33, 24, 0, 1}, {1, 0.7f}, {0}, 0, CASE_DENSE_SKINNY},
    {OP_matmul, b_matmul, {200, 136, 40, 0, 1}, {1, 0.5f}, {0}, 0, CASE_DENSE_SKINNY},
    {OP_matmul, b_matmul, {64, 32, 1024, 0, 1}, {1, 0}, {0}, 0, CASE_DENSE_SKINNY},
    {OP_matmul, b_matmul, {1, 1000, 128, 0, 1}, {1, 0}, {0}, 0, CASE_DENSE_SKINNY | CASE_SKINNY_LOOP},
    {OP_matmul, b_matmul, {200, 136, 40, 0, 1}, {1, 0.5f}, {0}, 0, CASE_DENSE_SKINNY | CASE_SKINNY_LOOP},
    {OP_matmul, b_matmul, {64, 4096, 1024, 0, 1}, {1, 0}, {0}, 0, CASE_DENSE_SKINNY | CASE_SKINNY_LOOP},
    {OP_matmul_wgrad, b_matmul_wgrad, {50, 64, 37}, {0}, {0}, 0, 0},
    {OP_matmul_wgrad, b_matmul_wgrad, {16, 8, 1}, {0}, {0}, 0, 0},
    {OP_matmul_wgrad, b_matmul_wgrad, {128, 96, 200}, {0}, {0}, 0, 0},
    {OP_matmul_wgrad, b_matmul_wgrad, {50, 64, 37, 1}, {0}, {0}, 0, 0},  // p[3]: write (the first backward)
    {OP_matmul_wgrad, b_matmul_wgrad, {16, 8, 0, 1}, {0}, {0}, 0, 0},
    {OP_matmul_wgrad, b_matmul_wgrad, {50, 64, 37}, {0}, {0}, 0, CASE_GRAD_BF16},
    {OP_matmul_wgrad, b_matmul_wgrad, {128, 96, 200, 1}, {0}, {0}, 0, CASE_GRAD_BF16},
    {OP_matmul_wgrad, b_matmul_wgrad, {16, 8, 0, 1}, {0}, {0}, 0, CASE_GRAD_BF16},
    {OP_grouped_matmul, b_grouped_matmul, {4, 37, 24, 16, 1, 0, 0}, {0}, {0}, 0, 0},
    {OP_grouped_matmul, b_grouped_matmul, {1, 5, 32, 8, 1, 0, 0}, {0}, {0}, 0, 0},
    {OP_grouped_matmul, b_grouped_matmul, {8, 200, 64, 48, 0, 3, 5}, {1}, {0}, 0, 0},
    {OP_grouped_matmul, b_grouped_matmul, {6, 100, 40, 72, 1, 0, 8}, {0}, {0}, 0, 0},
    // decode-like (a few rows per expert, some none: 32-row tiles) and training-like (128-row tiles)
    {OP_grouped_matmul, b_grouped_matmul, {16, 40, 256, 200, 1, 0, 0}, {0}, {0}, 0, 0},
    {OP_grouped_matmul, b_grouped_matmul, {3, 700, 136, 96, 0, 0, 0}, {0}, {0}, 0, 0},
    // >= 128 rows per group on average (on sm_90a: the wgmma kernels): n past a 256 tile, k past a 64 step,
    // both weight layouts, beta, strides
    {OP_grouped_matmul, b_grouped_matmul, {4, 1000, 328, 200, 1, 8, 0}, {0}, {0}, 0, 0},
    {OP_grouped_matmul, b_grouped_matmul, {3, 1000, 264, 136, 0, 0, 4}, {1}, {0}, 0, 0},
    {OP_grouped_matmul, b_grouped_matmul, {2, 600, 512, 256, 1, 0, 0, 1}, {0}, {0}, 0, 0},
    // n a multiple of 64 and C's rows 16-byte aligned, uneven groups (tiles short of their 128 rows, by 8s and
    // less): the shapes the forward's TMA epilogue takes (persistent; a CTA a tile under CISPO_WG_PERSIST=0, as
    // test_backend_ops_gpu_forms runs them), with few K steps and with 33
    {OP_grouped_matmul, b_grouped_matmul, {3, 900, 320, 136, 1, 0, 0}, {0}, {0}, 0, 0},
    {OP_grouped_matmul, b_grouped_matmul, {3, 900, 320, 136, 0, 8, 8}, {0}, {0}, 0, 0},
    {OP_grouped_matmul, b_grouped_matmul, {2, 300, 128, 2112, 1, 0, 0}, {0}, {0}, 0, 0},
    {OP_grouped_matmul_pair, b_grouped_matmul_pair, {4, 37, 24, 16, 0, 0}, {0}, {0}, 0, 0},
    {OP_grouped_matmul_pair, b_grouped_matmul_pair, {1, 5, 32, 8, 0, 6}, {0}, {0}, 0, 0},
    {OP_grouped_matmul_pair, b_grouped_matmul_pair, {8, 200, 136, 48, 3, 0}, {0}, {0}, 0, 0},
    {OP_grouped_matmul_pair, b_grouped_matmul_pair, {32, 128, 256, 128, 0, 0}, {0}, {0}, 0, 0},  // decode-shaped
    {OP_grouped_matmul_pair, b_grouped_matmul_pair, {3, 700, 136, 96, 0, 2}, {0}, {0}, 0, 0},
    {OP_grouped_matmul_pair, b_grouped_matmul_pair, {4, 1000, 200, 136, 8, 2}, {0}, {0}, 0, 0},
    {OP_grouped_matmul_pair, b_grouped_matmul_pair, {3, 700, 192, 96, 0, 0}, {0}, {0}, 0, 0},
    {OP_grouped_matmul_pair, b_grouped_matmul_pair, {4, 1100, 256, 136, 8, 8}, {0}, {0}, 0, 0},
    // the 32-k skinny decode tiles (the wide-k ones, gemm_skinny.cuh, are the default): the shapes that give the
    // wide-k tiles a k tail inside a 128 step, n past a 64 tile, beta and padded rows
    {OP_grouped_matmul_pair, b_grouped_matmul_pair, {32, 128, 256, 136, 0, 0}, {0}, {0}, 0, CASE_SKINNY_NARROW},
    {OP_grouped_matmul_pair, b_grouped_matmul_pair, {4, 37, 24, 16, 0, 0}, {0}, {0}, 0, CASE_SKINNY_NARROW},
    {OP_grouped_matmul_pair, b_grouped_matmul_pair, {1, 5, 32, 8, 0, 6}, {0}, {0}, 0, CASE_SKINNY_NARROW},
    {OP_grouped_matmul, b_grouped_matmul, {16, 40, 256, 200, 1, 0, 0}, {0}, {0}, 0, CASE_SKINNY_NARROW},
    {OP_grouped_matmul, b_grouped_matmul, {6, 100, 40, 72, 1, 8, 8}, {1}, {0}, 0, CASE_SKINNY_NARROW},
    {OP_grouped_matmul, b_grouped_matmul, {32, 128, 1000, 520, 1, 0, 0}, {0}, {0}, 0, CASE_SKINNY_NARROW},
    // both products and the gated activation in one (decode_fused's MoE step): n past a 32-feature tile, a k tail,
    // padded rows, empty groups, the activations of MiniMax (silu) and others; then on the persistent grid
    {OP_grouped_matmul_glu, b_grouped_matmul_glu, {32, 128, 256, 136, 0, ACT_SILU}, {0}, {0}, 0, 0},
    {OP_grouped_matmul_glu, b_grouped_matmul_glu, {4, 37, 40, 24, 8, ACT_SILU}, {0}, {0}, 0, 0},
    {OP_grouped_matmul_glu, b_grouped_matmul_glu, {1, 5, 32, 8, 0, ACT_GELU}, {0}, {0}, 0, 0},
    {OP_grouped_matmul_glu, b_grouped_matmul_glu, {6, 100, 72, 40, 0, ACT_RELU}, {0}, {0}, 0, 0},
    {OP_grouped_matmul_glu, b_grouped_matmul_glu, {32, 128, 1000, 520, 0, ACT_SILU}, {0}, {0}, 0, CASE_SKINNY_LOOP},
    {OP_grouped_matmul_glu, b_grouped_matmul_glu, {4, 37, 40, 24, 8, ACT_GELU}, {0}, {0}, 0, CASE_SKINNY_LOOP},
    // rows gathered through a slot permutation (moe_dispatch's perm, no copy): K 2 and 1, padded rows, a persistent grid
    {OP_grouped_matmul_glu, b_grouped_matmul_glu, {32, 128, 256, 136, 0, ACT_SILU, 0, 2}, {0}, {0}, 0, 0},
    {OP_grouped_matmul_glu, b_grouped_matmul_glu, {4, 36, 40, 24, 8, ACT_GELU, 0, 4}, {0}, {0}, 0, 0},
    {OP_grouped_matmul_glu, b_grouped_matmul_glu, {6, 100, 72, 40, 0, ACT_RELU, 0, 1}, {0}, {0}, 0, 0},
    {OP_grouped_matmul_glu, b_grouped_matmul_glu, {32, 128, 1000, 520, 0, ACT_SILU, 0, 2}, {0}, {0}, 0, CASE_SKINNY_LOOP},
    // the same through the wide-k tiles on a persistent grid (gs_forward_loop: tiles of k 24 are one stage each,
    // so its loads run several tiles ahead), and the decode shape
    {OP_grouped_matmul_pair, b_grouped_matmul_pair, {32, 128, 256, 136, 0, 0}, {0}, {0}, 0, CASE_SKINNY_LOOP},
    {OP_grouped_matmul_pair, b_grouped_matmul_pair, {4, 37, 24, 16, 0, 0}, {0}, {0}, 0, CASE_SKINNY_LOOP},
    {OP_grouped_matmul_pair, b_grouped_matmul_pair, {1, 5, 32, 8, 0, 6}, {0}, {0}, 0, CASE_SKINNY_LOOP},
    {OP_grouped_matmul, b_grouped_matmul, {16, 40, 256, 200, 1, 0, 0}, {0}, {0}, 0, CASE_SKINNY_LOOP},
    {OP_grouped_matmul, b_grouped_matmul, {6, 100, 40, 72, 1, 8, 8}, {1}, {0}, 0, CASE_SKINNY_LOOP},
    {OP_grouped_matmul, b_grouped_matmul, {32, 128, 1000, 520, 1, 0, 0}, {0}, {0}, 0, CASE_SKINNY_LOOP},
    {OP_grouped_matmul_pair, b_grouped_matmul_pair, {32, 128, 1024, 1024, 0, 0}, {0}, {0}, 0, CASE_SKINNY_LOOP},
    {OP_grouped_matmul_wgrad, b_grouped_matmul_wgrad, {4, 37, 24, 16, 0, 0}, {0}, {0}, 0, 0},
    {OP_grouped_matmul_wgrad, b_grouped_matmul_wgrad, {1, 5, 8, 8, 0, 0}, {0}, {0}, 0, 0},
    {OP_grouped_matmul_wgrad, b_grouped_matmul_wgrad, {8, 200, 64, 48, 3, 5}, {0}, {0}, 0, 0},
    {OP_grouped_matmul_wgrad, b_grouped_matmul_wgrad, {8, 200, 64, 48, 3, 5, 1}, {0}, {0}, 0, 0},  // p[6]: write
    {OP_grouped_matmul_wgrad, b_grouped_matmul_wgrad, {5, 300, 136, 160, 0, 0, 1}, {0}, {0}, 0, 0},
    {OP_grouped_matmul_wgrad, b_grouped_matmul_wgrad, {4, 1000, 328, 200, 0, 0, 1}, {0}, {0}, 0, 0},
    {OP_grouped_matmul_wgrad, b_grouped_matmul_wgrad, {3, 900, 136, 264, 8, 8}, {0}, {0}, 0, 0},
    // bf16 gradients: mma.sync (few rows), wgmma (>= 128 rows a group), written and added to, an odd k (scalar stores)
    {OP_grouped_matmul_wgrad, b_grouped_matmul_wgrad, {4, 37, 24, 16, 0, 0}, {0}, {0}, 0, CASE_GRAD_BF16},
    {OP_grouped_matmul_wgrad, b_grouped_matmul_wgrad, {8, 200, 64, 48, 3, 5, 1}, {0}, {0}, 0, CASE_GRAD_BF16},
    {OP_grouped_matmul_wgrad, b_grouped_matmul_wgrad, {4, 1000, 328, 200, 0, 0, 1}, {0}, {0}, 0, CASE_GRAD_BF16},
    {OP_grouped_matmul_wgrad, b_grouped_matmul_wgrad, {3, 900, 136, 264, 8, 8}, {0}, {0}, 0, CASE_GRAD_BF16},
    {OP_grouped_matmul_wgrad, b_grouped_matmul_wgrad, {2, 300, 8, 7, 0, 0}, {0}, {0}, 0, CASE_GRAD_BF16},
    // groups of 550 rows on average (9 K steps): a CTA a tile (wgt_wgrad), its tiles out through the TMA, written and
    // added to, fp32 and bf16 (added to: the threads' stores); n and k not multiples of the tile (the TMA clips the boxes)
    {OP_grouped_matmul_wgrad, b_grouped_matmul_wgrad, {2, 1100, 136, 200, 0, 0, 1}, {0}, {0}, 0, 0},
    {OP_grouped_matmul_wgrad, b_grouped_matmul_wgrad, {2, 1100, 136, 200, 0, 0}, {0}, {0}, 0, 0},
    {OP_grouped_matmul_wgrad, b_grouped_matmul_wgrad, {2, 1100, 136, 200, 0, 0, 1}, {0}, {0}, 0, CASE_GRAD_BF16},
    {OP_grouped_matmul_wgrad, b_grouped_matmul_wgrad, {2, 1100, 136, 200, 0, 0}, {0}, {0}, 0, CASE_GRAD_BF16},
    // the wgmma weight gradient waiting for each step's wgmmas (wg_wgrad_inflight -1; the default keeps them in
    // flight a step): one k step (rows < 64), a few, many, accumulate and write, bf16 gradients
    {OP_grouped_matmul_wgrad, b_grouped_matmul_wgrad, {2, 300, 136, 160, 0, 0, 1}, {0}, {0}, 0, CASE_INFLIGHT},
    {OP_grouped_matmul_wgrad, b_grouped_matmul_wgrad, {3, 500, 136, 160, 0, 0, 1}, {0}, {0}, 0, CASE_INFLIGHT},
    {OP_grouped_matmul_wgrad, b_grouped_matmul_wgrad, {4, 1000, 328, 200, 0, 0, 1}, {0}, {0}, 0, CASE_INFLIGHT},
    {OP_grouped_matmul_wgrad, b_grouped_matmul_wgrad, {3, 900, 136, 264, 8, 8}, {0}, {0}, 0, CASE_INFLIGHT},
    {OP_grouped_matmul_wgrad, b_grouped_matmul_wgrad, {2, 2000, 264, 136, 0, 0, 1}, {0}, {0}, 0,
     CASE_INFLIGHT | CASE_GRAD_BF16},
    // ... on cp.async with the wgmmas in flight (wg_wgrad_tma -1; the default takes the operands by the TMA: a
    // group's last rows short of a 64-row step, the next group's rows zeroed): an empty group, n and k past a tile,
    // accumulate and write, bf16 gradients
    {OP_grouped_matmul_wgrad, b_grouped_matmul_wgrad, {2, 300, 136, 160, 0, 0, 1}, {0}, {0}, 0, CASE_TMA},
    {OP_grouped_matmul_wgrad, b_grouped_matmul_wgrad, {3, 500, 136, 160, 0, 0, 1}, {0}, {0}, 0, CASE_TMA},
    {OP_grouped_matmul_wgrad, b_grouped_matmul_wgrad, {4, 1000, 328, 200, 0, 0, 1}, {0}, {0}, 0, CASE_TMA},
    {OP_grouped_matmul_wgrad, b_grouped_matmul_wgrad, {3, 900, 136, 264, 8, 8}, {0}, {0}, 0, CASE_TMA},
    {OP_grouped_matmul_wgrad, b_grouped_matmul_wgrad, {2, 2000, 264, 136, 0, 0, 1}, {0}, {0}, 0,
     CASE_TMA | CASE_GRAD_BF16},
    // ---- embedding
    {OP_embedding_forward, b_embedding_forward, {37, 64, 50}, {0}, {0}, 0, 0},
    {OP_embedding_forward, b_embedding_forward, {1, 8, 3}, {0}, {0}, 0, 0},
    {OP_embedding_forward, b_embedding_forward, {200, 100, 1000}, {0}, {0}, 0, 0},
    {OP_embedding_backward, b_embedding_backward, {37, 64, 50, -1}, {0}, {0}, 0, 0},
    {OP_embedding_backward, b_embedding_backward, {200, 24, 20, 3}, {0}, {0}, 0, 0},
    {OP_embedding_backward, b_embedding_backward, {1, 8, 3, -1}, {0}, {0}, 0, 0},
    {OP_embedding_backward, b_embedding_backward, {37, 64, 50, -1}, {0}, {0}, 0, CASE_GRAD_BF16},
    {OP_embedding_backward, b_embedding_backward, {200, 24, 20, 3}, {0}, {0}, 0, CASE_GRAD_BF16},  // ids repeat
    {OP_embedding_backward, b_embedding_backward, {3000, 40, 2, -1}, {0}, {0}, 0, CASE_GRAD_BF16},  // 1500 a row
    // ---- RMSNorm
    {OP_rmsnorm_forward, b_rmsnorm_forward, {37, 64}, {1e-6f}, {0}, 0, 0},
    {OP_rmsnorm_forward, b_rmsnorm_forward, {1, 1000}, {1e-5f}, {0}, 0, 0},
    {OP_rmsnorm_forward, b_rmsnorm_forward, {200, 96}, {1e-6f}, {0}, 0, 0},
    {OP_rmsnorm_gate_forward, b_rmsnorm_gate_forward, {37, 64}, {1e-6f}, {0}, 0, 0},
    {OP_rmsnorm_gate_forward, b_rmsnorm_gate_forward, {1, 1024}, {1e-6f}, {0}, 0, 0},
    {OP_rmsnorm_gate_forward, b_rmsnorm_gate_forward, {5, 30}, {1e-6f}, {0}, 0, 0},
    // the gate columns of a wider product's rows (a lightning decode step's q|k|v|gate: ldg 4A)
    {OP_rmsnorm_gate_forward, b_rmsnorm_gate_forward, {64, 1024, 4096}, {1e-6f}, {0}, 0, 0},
    {OP_rmsnorm_gate_forward, b_rmsnorm_gate_forward, {37, 64, 72}, {1e-6f}, {0}, 0, 0},
    // the norm's output not kept (the training forward: its backward recomputes it), vector and scalar paths
    {OP_rmsnorm_gate_forward, b_rmsnorm_gate_forward, {64, 1024, 4096, 1}, {1e-6f}, {0}, 0, 0},
    {OP_rmsnorm_gate_forward, b_rmsnorm_gate_forward, {5, 30, 0, 1}, {1e-6f}, {0}, 0, 0},
    {OP_rmsnorm_gate_forward, b_rmsnorm_gate_forward, {5, 30, 33}, {1e-6f}, {0}, 0, 0},
    {OP_residual_rmsnorm, b_residual_rmsnorm, {37, 64, 1}, {1e-6f, 2.378f, 1}, {0}, 0, 0},
    {OP_residual_rmsnorm, b_residual_rmsnorm, {1, 1000, 1}, {1e-5f, 1, 0.5f}, {0}, 0, 0},
    {OP_residual_rmsnorm, b_residual_rmsnorm, {200, 96, 0}, {1e-6f, 0, 1.5f}, {0}, 0, 0},
    {OP_residual_rmsnorm, b_residual_rmsnorm, {5, 30, 1}, {1e-6f, 1, 1}, {0}, 0, 0},
    {OP_residual_rmsnorm_route, b_residual_rmsnorm_route, {64, 1024, 32, 2, 1}, {1e-5f, 2.378f, 1}, {0}, 0, 0},
    {OP_residual_rmsnorm_route, b_residual_rmsnorm_route, {37, 96, 8, 2, 1}, {1e-6f, 1, 0.5f}, {0}, 0, 0},
    {OP_residual_rmsnorm_route, b_residual_rmsnorm_route, {5, 30, 300, 4, 0}, {1e-6f, 0, 1.5f}, {0}, 0, 0},
    {OP_residual_rmsnorm_route, b_residual_rmsnorm_route, {2, 6144, 32, 2, 1}, {1e-5f, 1, 1}, {0}, 0, 0},
    {OP_residual_rmsnorm_route, b_residual_rmsnorm_route, {3, 64, 1, 1, 1}, {1e-6f, 1, 1}, {0}, 0, 0},
    // the routes sorted by the last CTA too (decode_sort): bench-1b's at batch 64 and 1, many experts, E = K = 1
    {OP_residual_rmsnorm_route, b_residual_rmsnorm_route, {64, 1024, 32, 2, 1, 1}, {1e-5f, 2.378f, 1}, {0}, 0, 0},
    {OP_residual_rmsnorm_route, b_residual_rmsnorm_route, {1, 1024, 32, 2, 1, 1}, {1e-5f, 2.378f, 1}, {0}, 0, 0},
    {OP_residual_rmsnorm_route, b_residual_rmsnorm_route, {37, 96, 300, 4, 0, 1}, {1e-6f, 0, 1.5f}, {0}, 0, 0},
    {OP_residual_rmsnorm_route, b_residual_rmsnorm_route, {5, 64, 1, 1, 1, 1}, {1e-6f, 1, 1}, {0}, 0, 0},
    {OP_residual_rmsnorm_route, b_residual_rmsnorm_route, {17, 128, 8, 8, 0}, {1e-6f, 0, 1}, {0}, 0, 0},
    {OP_residual_rmsnorm_route, b_residual_rmsnorm_route, {9, 256, 100, 8, 1}, {1e-6f, 1, 1}, {0}, 0, 0},
    {OP_rmsnorm_backward, b_rmsnorm_backward, {37, 64, W}, {1e-6f, 1.0f}, {0}, 0, 0},
    {OP_rmsnorm_backward, b_rmsnorm_backward, {1, 200, A}, {1e-5f, 1.0f}, {0}, 0, 0},
    {OP_rmsnorm_backward, b_rmsnorm_backward, {200, 96, A}, {1e-6f, 1.0f}, {0}, 0, 0},
    {OP_rmsnorm_backward, b_rmsnorm_backward, {200, 96, A}, {1e-6f, 1.0f}, {0}, 0, CASE_GRAD_BF16},
    {OP_rmsnorm_backward, b_rmsnorm_backward, {37, 61, W}, {1e-6f, 1.0f}, {0}, 0, CASE_GRAD_BF16},
    // enough rows for dw's sums in row splits on CUDA (at least 256 rows a split)
    {OP_rmsnorm_backward, b_rmsnorm_backward, {600, 512, A}, {1e-6f, 1.0f}, {0}, 0, 0},
    // the lightning output's norm and gate (p[2]: the gate's row stride, 0: C)
    {OP_rmsnorm_gate_backward, b_rmsnorm_gate_backward, {37, 64}, {1e-6f}, {0}, 0, 0},
    {OP_rmsnorm_gate_backward, b_rmsnorm_gate_backward, {5, 30, 33}, {1e-6f}, {0}, 0, 0},
    {OP_rmsnorm_gate_backward, b_rmsnorm_gate_backward, {1, 1024, 4096}, {1e-6f}, {0}, 0, 0},
    {OP_rmsnorm_gate_backward, b_rmsnorm_gate_backward, {200, 96}, {1e-6f}, {0}, 0, CASE_GRAD_BF16},
    {OP_rmsnorm_gate_backward, b_rmsnorm_gate_backward, {600, 512}, {1e-6f}, {0}, 0, 0},
    {OP_rmsnorm_gate_backward, b_rmsnorm_gate_backward, {0, 64}, {1e-6f}, {0}, 0, 0},
    // dx = acc_scale dx + the gradient (a decoder layer's residual factor alpha, in one pass)
    {OP_rmsnorm_backward, b_rmsnorm_backward, {37, 64, A}, {1e-6f, 2.5f}, {0}, 0, 0},
    {OP_rmsnorm_backward, b_rmsnorm_backward, {600, 512, A}, {1e-6f, 1.68f}, {0}, 0, CASE_GRAD_BF16},
    {OP_rmsnorm_backward, b_rmsnorm_backward, {1300, 96, W}, {1e-6f, 1.0f}, {0}, 0, CASE_GRAD_BF16},
    // ---- elementwise
    {OP_residual_mix, b_residual_mix, {1000, 1}, {1, 1}, {0}, 0, 0},
    {OP_residual_mix, b_residual_mix, {37, 1}, {0.5f, 2}, {0}, 0, 0},
    {OP_residual_mix, b_residual_mix, {4099, 0}, {0, 1.5f}, {0}, 0, 0},
    {OP_sigmoid_gate_forward, b_sigmoid_gate_forward, {1000}, {0}, {0}, 0, 0},
    {OP_sigmoid_gate_forward, b_sigmoid_gate_forward, {1}, {0}, {0}, 0, 0},
    {OP_sigmoid_gate_forward, b_sigmoid_gate_forward, {4099}, {0}, {0}, 0, 0},
    {OP_sigmoid_gate_backward, b_sigmoid_gate_backward, {1000, W}, {0}, {0}, 0, 0},
    {OP_sigmoid_gate_backward, b_sigmoid_gate_backward, {37, A}, {0}, {0}, 0, 0},
    {OP_qkv_split, b_qkv_split, {37, 4, 16}, {0}, {0}, 0, 0},
    {OP_qkv_split, b_qkv_split, {1, 1, 64}, {0}, {0}, 0, 0},
    {OP_qkv_split, b_qkv_split, {200, 8, 128}, {0}, {0}, 0, 0},
    {OP_qkv_split, b_qkv_split, {37, 4, 16, ACT_SILU + 1}, {0}, {0}, 0, 0},  // p[3]: act + 1 (0: a copy)
    {OP_qkv_split, b_qkv_split, {200, 8, 128, ACT_SILU + 1}, {0}, {0}, 0, 0},
    {OP_qkv_split, b_qkv_split, {5, 2, 7, ACT_GELU_TANH + 1}, {0}, {0}, 0, 0},
    {OP_qkv_merge, b_qkv_merge, {37, 4, 16}, {0}, {0}, 0, 0},
    {OP_qkv_merge, b_qkv_merge, {1, 1, 64}, {0}, {0}, 0, 0},
    {OP_qkv_merge, b_qkv_merge, {200, 8, 128}, {0}, {0}, 0, 0},
    {OP_qkv_merge, b_qkv_merge, {37, 4, 16, ACT_SILU + 1}, {0}, {0}, 0, 0},  // p[3]: act + 1 (0: the transpose)
    {OP_qkv_merge, b_qkv_merge, {200, 8, 128, ACT_SILU + 1}, {0}, {0}, 0, 0},
    {OP_qkv_merge, b_qkv_merge, {5, 2, 7, ACT_GELU_TANH + 1}, {0}, {0}, 0, 0},
    {OP_qkv_merge, b_qkv_merge, {3, 1, 64, ACT_RELU + 1}, {0}, {0}, 0, 0},
    // ---- RoPE: D 64/128, R < D, small D (CPU), large positions, scale
    {OP_rope_forward, b_rope_forward, {37, 4, 64, 64, 4096}, {1, 10000}, {0}, 0, 0},
    {OP_rope_forward, b_rope_forward, {200, 2, 128, 64, 100000}, {1, 1e6f}, {0}, 0, 0},
    {OP_rope_forward, b_rope_forward, {1, 1, 128, 128, 65536}, {0.8f, 10000}, {0}, 0, 0},
    {OP_rope_forward, b_rope_forward, {37, 3, 8, 4, 64}, {1, 10000}, {0}, 0, CPUONLY},
    {OP_rope_backward, b_rope_backward, {37, 4, 64, 64, 4096, W}, {1, 10000}, {0}, 0, 0},
    {OP_rope_backward, b_rope_backward, {200, 2, 128, 64, 100000, A}, {1, 1e6f}, {0}, 0, 0},
    {OP_rope_backward, b_rope_backward, {1, 1, 128, 128, 65536, W}, {0.8f, 10000}, {0}, 0, 0},
    {OP_rope_backward, b_rope_backward, {37, 3, 8, 4, 64, A}, {1, 10000}, {0}, 0, CPUONLY},
    // ---- lightning: p = H D block with_state layer acc
    {OP_lightning_forward, b_lightning_forward, {1, 64, 64, 0, 0}, {0}, LENS(1), 0},
    {OP_lightning_forward, b_lightning_forward, {8, 128, 256, 1, 2}, {0}, LENS(1), 0},
    {OP_lightning_forward, b_lightning_forward, {2, 64, 64, 1, 1}, {0}, LENS(37), 0},
    {OP_lightning_forward, b_lightning_forward, {4, 64, 16, 1, 4}, {0}, LENS(63, 1, 0, 64, 65, 7, 0), 0},
    {OP_lightning_forward, b_lightning_forward, {2, 128, 256, 0, 5}, {0}, LENS(200, 0, 13), 0},
    {OP_lightning_forward, b_lightning_forward, {3, 8, 5, 1, 3}, {0}, LENS(11, 0, 29, 1), CPUONLY},
    // head dims 16 and 32 (the demo model's 16): on CUDA the 64-wide kernels on zero-padded copies
    {OP_lightning_forward, b_lightning_forward, {4, 16, 16, 1, 4}, {0}, LENS(63, 1, 0, 64, 65, 7, 0), 0},
    {OP_lightning_forward, b_lightning_forward, {2, 32, 16, 0, 1}, {0}, LENS(200, 0, 13), 0},
    {OP_lightning_forward, b_lightning_forward, {4, 16, 16, 1, 2}, {0}, LENS(300, 1000), 0},
    {OP_lightning_backward, b_lightning_backward, {1, 64, 64, 0, 0, W}, {0}, LENS(1), 0},
    {OP_lightning_backward, b_lightning_backward, {8, 128, 256, 1, 2, W}, {0}, LENS(1), 0},
    {OP_lightning_backward, b_lightning_backward, {2, 64, 16, 1, 1, W}, {0}, LENS(37), 0},
    {OP_lightning_backward, b_lightning_backward, {4, 64, 16, 1, 4, W}, {0}, LENS(63, 1, 0, 64, 65, 7, 0), 0},
    {OP_lightning_backward, b_lightning_backward, {2, 128, 256, 0, 5, A}, {0}, LENS(200, 0, 13), 0},
    {OP_lightning_backward, b_lightning_backward, {3, 8, 5, 1, 3, A}, {0}, LENS(11, 0, 29, 1), CPUONLY},
    {OP_lightning_backward, b_lightning_backward, {4, 16, 16, 1, 4, W}, {0}, LENS(63, 1, 0, 64, 65, 7, 0), 0},
    {OP_lightning_backward, b_lightning_backward, {2, 32, 16, 0, 1, A}, {0}, LENS(200, 0, 13), 0},
    {OP_lightning_backward, b_lightning_backward, {4, 16, 16, 1, 2, W}, {0}, LENS(300, 1000), 0},
    // the shapes of the lightning GPU test (T to 65536, H to 64, both kernel paths)
    {OP_lightning_forward, b_lightning_forward, {8, 128, 64, 1, 1}, {0}, LENS(100), BIG},
    {OP_lightning_forward, b_lightning_forward, {8, 64, 256, 1, 4}, {0}, LENS(63, 1, 0, 64, 65, 200, 1000, 7), BIG},
    {OP_lightning_forward, b_lightning_forward, {64, 128, 256, 1, 0}, {0}, LENS(1000, 1500, 517), BIG},
    {OP_lightning_forward, b_lightning_forward, {64, 128, 256, 1, 3}, {0}, LENS(4096), BIG},
    {OP_lightning_forward, b_lightning_forward, {64, 64, 64, 0, 7}, {0}, LENS(777, 1234, 2000, 1), BIG},
    {OP_lightning_forward, b_lightning_forward, {8, 128, 256, 1, 0}, {0}, LENS(16384), BIG},
    {OP_lightning_forward, b_lightning_forward, {1, 128, 256, 1, 0}, {0}, LENS(65536), BIG},
    {OP_lightning_forward, b_lightning_forward, {1, 64, 64, 0, 5}, {0}, LENS(40000, 25000, 536), BIG},
    {OP_lightning_forward, b_lightning_forward, {8, 64, 256, 1, 6}, {0}, LENS(65535), BIG},
    {OP_lightning_backward, b_lightning_backward, {8, 128, 64, 1, 1, W}, {0}, LENS(100), BIG},
    {OP_lightning_backward, b_lightning_backward, {8, 64, 256, 1, 4, W}, {0}, LENS(63, 1, 0, 64, 65, 200, 1000, 7), BIG},
    {OP_lightning_backward, b_lightning_backward, {64, 128, 256, 1, 0, W}, {0}, LENS(1000, 1500, 517), BIG},
    {OP_lightning_backward, b_lightning_backward, {64, 128, 256, 1, 3, W}, {0}, LENS(4096), BIG},
    {OP_lightning_backward, b_lightning_backward, {64, 64, 64, 0, 7, W}, {0}, LENS(777, 1234, 2000, 1), BIG},
    {OP_lightning_backward, b_lightning_backward, {8, 128, 256, 1, 0, W}, {0}, LENS(16384), BIG},
    {OP_lightning_backward, b_lightning_backward, {1, 128, 256, 1, 0, W}, {0}, LENS(65536), BIG},
    {OP_lightning_backward, b_lightning_backward, {1, 64, 64, 0, 5, W}, {0}, LENS(40000, 25000, 536), BIG},
    {OP_lightning_backward, b_lightning_backward, {8, 64, 256, 1, 6, W}, {0}, LENS(65535), BIG},
    {OP_lightning_decode, b_lightning_decode, {3, 5, 4, 64}, {0}, {0}, 0, 0},
    {OP_lightning_decode, b_lightning_decode, {1, 1, 1, 128}, {0}, {0}, 0, 0},
    {OP_lightning_decode, b_lightning_decode, {4, 4, 2, 8}, {0}, {0}, 0, CPUONLY},
    {OP_lightning_decode, b_lightning_decode, {3, 5, 4, 16}, {0}, {0}, 0, 0},
    {OP_lightning_decode, b_lightning_decode, {6, 6, 2, 32}, {0}, {0}, 0, 0},
    // from the q|k|v product: its own rows (ldq 3 H D), the rows of bench-1b's q|k|v|gate product (4 H D), no
    // activation, another activation
    {OP_lightning_decode_qkv, b_lightning_decode_qkv, {5, 9, 2, 64, 0, ACT_SILU}, {0}, {0}, 0, 0},
    {OP_lightning_decode_qkv, b_lightning_decode_qkv, {64, 70, 8, 128, 4096, ACT_SILU}, {0}, {0}, 0, 0},
    {OP_lightning_decode_qkv, b_lightning_decode_qkv, {3, 4, 1, 128, 424, -1}, {0}, {0}, 0, 0},
    {OP_lightning_decode_qkv, b_lightning_decode_qkv, {7, 7, 4, 64, 800, ACT_GELU}, {0}, {0}, 0, 0},
    {OP_lightning_decode_qkv, b_lightning_decode_qkv, {2, 3, 2, 8, 50, ACT_SILU}, {0}, {0}, 0, CPUONLY},
    {OP_lightning_decode_qkv, b_lightning_decode_qkv, {5, 9, 4, 16, 0, ACT_SILU}, {0}, {0}, 0, 0},
    {OP_lightning_decode_qkv, b_lightning_decode_qkv, {3, 4, 2, 32, 200, -1}, {0}, {0}, 0, 0},
    // the decode step's output norm and gate too: one launch for H <= 8 (a cluster of the heads), else the two ops;
    // bench-1b's (H 8, D 128, the gate in the q|k|v|gate product's rows: ldq = ldg = 4 H D) at batch 1 and 64
    {OP_lightning_decode_qkv_gate, b_lightning_decode_qkv_gate, {1, 3, 8, 128, 4096, ACT_SILU, 4096}, {1e-6f}, {0}, 0, 0},
    {OP_lightning_decode_qkv_gate, b_lightning_decode_qkv_gate, {64, 70, 8, 128, 4096, ACT_SILU, 4096}, {1e-6f}, {0}, 0,
     0},
    {OP_lightning_decode_qkv_gate, b_lightning_decode_qkv_gate, {5, 9, 2, 64, 0, ACT_SILU, 0}, {1e-6f}, {0}, 0, 0},
    {OP_lightning_decode_qkv_gate, b_lightning_decode_qkv_gate, {3, 4, 1, 128, 424, -1, 200}, {1e-6f}, {0}, 0, 0},
    {OP_lightning_decode_qkv_gate, b_lightning_decode_qkv_gate, {7, 7, 5, 64, 1000, ACT_GELU, 0}, {1e-5f}, {0}, 0, 0},
    {OP_lightning_decode_qkv_gate, b_lightning_decode_qkv_gate, {4, 6, 12, 64, 0, ACT_SILU, 0}, {1e-6f}, {0}, 0, 0},
    {OP_lightning_decode_qkv_gate, b_lightning_decode_qkv_gate, {2, 3, 2, 8, 50, ACT_SILU, 20}, {1e-6f}, {0}, 0, CPUONLY},
    {OP_lightning_decode_qkv_gate, b_lightning_decode_qkv_gate, {3, 4, 4, 16, 0, ACT_SILU, 0}, {1e-6f}, {0}, 0, 0},
    // o_norm not kept: the fused kernel, and the two ops (H > 8)
    {OP_lightning_decode_qkv_gate, b_lightning_decode_qkv_gate, {64, 70, 8, 128, 4096, ACT_SILU, 4096, 1}, {1e-6f}, {0},
     0, 0},
    {OP_lightning_decode_qkv_gate, b_lightning_decode_qkv_gate, {4, 6, 12, 64, 0, ACT_SILU, 0, 1}, {1e-6f}, {0}, 0, 0},
    {OP_lightning_decode, b_lightning_decode_contig, {8, 128, 0, 6}, {0}, LENS(5, 64, 300, 1, 129, 1000, 70), 0},
    {OP_lightning_decode, b_lightning_decode_contig, {64, 64, 0, 4}, {0}, LENS(33, 200, 1), BIG},
    {OP_lightning_decode, b_lightning_decode_contig, {1, 128, 0, 3}, {0}, LENS(4000), BIG},
    {OP_lightning_forward, b_lightning_bad_args, {0}, {0}, {0}, 0, 0},
    // ---- softmax attention: p = H KV D window acc; MHA, GQA, MQA, H=1, windows, empty sequences
    {OP_attention_forward, b_attention_forward, {4, 4, 64, 0}, {0}, LENS(37), 0},
    {OP_attention_forward, b_attention_forward, {8, 2, 128, 0}, {0}, LENS(1, 0, 200, 0, 63), 0},
    {OP_attention_forward, b_attention_forward, {4, 1, 64, 16}, {0}, LENS(100, 37), 0},
    {OP_attention_forward, b_attention_forward, {1, 1, 128, 0}, {0}, LENS(1), 0},
    // head dim 128 over several 128-key tiles (on sm_90a: the wgmma forward), a window across tiles
    {OP_attention_forward, b_attention_forward, {4, 2, 128, 100}, {0}, LENS(300, 0, 517), 0},
    {OP_attention_forward, b_attention_forward, {2, 1, 128, 0}, {0}, LENS(700, 129), 0},
    // the wgmma forward's other kernels (head dim 128; the default is the ping-pong with each warpgroup's softmax
    // beside its own products on TMA loads): both issuing together (attn_fwd_pingpong -1), the ping-pong on
    // cp.async (attn_fwd_tma -1); tiles masked
    // out for one warpgroup's rows only (short and empty sequences, the diagonal), a window, several key tiles
    {OP_attention_forward, b_attention_forward, {8, 2, 128, 0}, {0}, LENS(1, 0, 200, 0, 63), 0},
    {OP_attention_forward, b_attention_forward, {2, 2, 128, 300}, {0}, LENS(1000, 128, 257), 0},
    {OP_attention_forward, b_attention_forward, {4, 1, 128, 0}, {0}, LENS(1500, 390), 0},
    {OP_attention_forward, b_attention_forward, {8, 2, 128, 0}, {0}, LENS(1, 0, 200, 0, 63), CASE_PINGPONG},
    {OP_attention_forward, b_attention_forward, {4, 2, 128, 100}, {0}, LENS(300, 0, 517), CASE_PINGPONG},
    {OP_attention_forward, b_attention_forward, {2, 1, 128, 0}, {0}, LENS(700, 129), CASE_PINGPONG},
    {OP_attention_forward, b_attention_forward, {1, 1, 128, 0}, {0}, LENS(1), CASE_PINGPONG},
    {OP_attention_forward, b_attention_forward, {2, 2, 128, 300}, {0}, LENS(1000, 128, 257), CASE_PINGPONG},
    {OP_attention_forward, b_attention_forward, {8, 2, 128, 0}, {0}, LENS(1, 0, 200, 0, 63), CASE_TMA},
    {OP_attention_forward, b_attention_forward, {4, 2, 128, 100}, {0}, LENS(300, 0, 517), CASE_TMA},
    {OP_attention_forward, b_attention_forward, {2, 1, 128, 0}, {0}, LENS(700, 129), CASE_TMA},
    {OP_attention_forward, b_attention_forward, {1, 1, 128, 0}, {0}, LENS(1), CASE_TMA},
    {OP_attention_forward, b_attention_forward, {2, 2, 128, 300}, {0}, LENS(1000, 128, 257), CASE_TMA},
    {OP_attention_forward, b_attention_forward, {4, 1, 128, 0}, {0}, LENS(1500, 390), CASE_TMA},
    {OP_attention_forward, b_attention_forward, {2, 1, 64, 1}, {0}, LENS(9, 0, 5), 0},
    {OP_attention_forward, b_attention_forward_wide, {4, 2, 128, 0}, {0}, LENS(700, 300), 0},
    // head dims 16 and 32 (the demo model's 16: the mma.sync kernel at those widths)
    {OP_attention_forward, b_attention_forward, {6, 3, 16, 7}, {0}, LENS(20, 0, 33), 0},
    {OP_attention_forward, b_attention_forward, {4, 2, 16, 0}, {0}, LENS(200, 1, 0, 129), 0},
    {OP_attention_forward, b_attention_forward, {4, 1, 32, 0}, {0}, LENS(300, 37), 0},
    {OP_attention_forward, b_attention_forward, {2, 2, 32, 50}, {0}, LENS(257, 0, 64), 0},
    {OP_attention_backward, b_attention_backward, {4, 4, 64, 0, W}, {0}, LENS(37), 0},
    {OP_attention_backward, b_attention_backward, {8, 2, 128, 0, A}, {0}, LENS(1, 0, 200, 0, 63), 0},
    {OP_attention_backward, b_attention_backward, {4, 1, 64, 16, W}, {0}, LENS(100, 37), 0},
    {OP_attention_backward, b_attention_backward, {1, 1, 128, 0, A}, {0}, LENS(1), 0},
    // head dim 128 over several 128-key tiles (on sm_90a: the wgmma backward), a window across tiles, GQA
    {OP_attention_backward, b_attention_backward, {4, 2, 128, 100, W}, {0}, LENS(300, 0, 517), 0},
    {OP_attention_backward, b_attention_backward, {2, 1, 128, 0, A}, {0}, LENS(700, 129), 0},
    // window 2, not 1: with one key per query P = 1, O = V and dK = 0 exactly, so the normalised error of dK
    // is rounding noise over zero
    {OP_attention_backward, b_attention_backward, {2, 1, 64, 2, W}, {0}, LENS(9, 0, 5), 0},
    // attn_bwd_overlap = -1: dQ's atomics after dV's and dK's products, a barrier a tile (the wgmma kernel, D 128)
    {OP_attention_backward, b_attention_backward, {8, 2, 128, 0, A}, {0}, LENS(1, 0, 200, 0, 63), CASE_BWD_OVL},
    {OP_attention_backward, b_attention_backward, {4, 2, 128, 100, W}, {0}, LENS(300, 0, 517), CASE_BWD_OVL},
    {OP_attention_backward, b_attention_backward, {2, 1, 128, 0, A}, {0}, LENS(700, 129), CASE_BWD_OVL},
    {OP_attention_backward, b_attention_backward, {1, 1, 128, 0, A}, {0}, LENS(1), CASE_BWD_OVL},
    {OP_attention_backward, b_attention_backward, {6, 3, 16, 7, A}, {0}, LENS(20, 0, 33), 0},
    {OP_attention_backward, b_attention_backward, {4, 2, 16, 0, W}, {0}, LENS(200, 1, 0, 129), 0},
    {OP_attention_backward, b_attention_backward, {4, 1, 32, 0, A}, {0}, LENS(300, 37), 0},
    {OP_attention_backward, b_attention_backward, {2, 2, 32, 50, W}, {0}, LENS(257, 0, 64), 0},
    {OP_sample_tokens, b_sample_tokens, {7, 1000, 9, 0}, {0}, {0}, 0, 0},
    {OP_sample_tokens, b_sample_tokens, {4, 5001, 6, 0}, {0}, {0}, 0, 0},      // runs of 5 ids, the last short
    {OP_sample_tokens, b_sample_tokens, {64, 32768, 64, 0}, {0}, {0}, 0, 0},   // bench-1b's decode step, batch 64
    {OP_sample_tokens, b_sample_tokens, {5, 333, 5, 1}, {0}, {0}, 0, 0},
    {OP_sample_tokens, b_sample_tokens, {9, 5000, 12, 2}, {0}, {0}, 0, 0},
    {OP_sample_tokens, b_sample_tokens, {9, 5000, 9, 3}, {0}, {0}, 0, 0},
    {OP_sample_tokens, b_sample_tokens, {6, 32000, 8, 4}, {0}, {0}, 0, 0},
    {OP_sample_tokens, b_sample_tokens, {8, 3000, 8, 5}, {0}, {0}, 0, 0},
    {OP_sample_tokens, b_sample_tokens, {1, 1, 1, 0}, {0}, {0}, 0, 0},
    // a row over a cluster of 2, 4 or 8 CTAs on CUDA (kernels/cuda/sample.cu: segments of at least 2048 ids, a
    // few rows)
    {OP_sample_tokens, b_sample_tokens, {16, 16384, 16, 0}, {0}, {0}, 0, 0},
    {OP_sample_tokens, b_sample_tokens, {3, 4096, 3, 2}, {0}, {0}, 0, 0},
    {OP_sample_tokens, b_sample_tokens, {4, 8192, 4, 3}, {0}, {0}, 0, 0},
    {OP_sample_tokens, b_sample_tokens, {8, 16384, 8, 4}, {0}, {0}, 0, 0},
    {OP_sample_tokens, b_sample_tokens, {6, 32768, 6, 5}, {0}, {0}, 0, 0},
    {OP_sample_tokens, b_sample_tokens, {5, 20001, 5, 1}, {0}, {0}, 0, 0},
    // clusters of 8 forced: 64 rows (batch 64's timing against the default's one CTA a row), segments of a few ids,
    // and of none (V 1: seven CTAs with empty segments)
    {OP_sample_tokens, b_sample_tokens, {64, 32768, 64, 0}, {0}, {0}, 0, CASE_CLUSTER8},
    {OP_sample_tokens, b_sample_tokens, {1, 1, 1, 0}, {0}, {0}, 0, CASE_CLUSTER8},
    {OP_sample_tokens, b_sample_tokens, {5, 333, 5, 4}, {0}, {0}, 0, CASE_CLUSTER8},
    {OP_sample_tokens, b_sample_tokens, {8, 3000, 8, 5}, {0}, {0}, 0, CASE_CLUSTER8},
    {OP_sample_tokens, b_sample_tokens, {9, 5000, 9, 3}, {0}, {0}, 0, CASE_CLUSTER8},
    // one CTA a row over more ids than its shared memory holds: the probabilities in the global workspace
    {OP_sample_tokens, b_sample_tokens, {64, 200064, 64, 4}, {0}, {0}, 0, BIG},
    {OP_sample_tokens, b_sample_tokens, {66, 60001, 66, 0}, {0}, {0}, 0, BIG},
    {OP_sample_tokens, b_sample_tokens, {66, 60001, 70, 5}, {0}, {0}, 0, BIG},
    {OP_kv_write, b_kv_write, {37, 64, 3, 4, 16, 14}, {0}, {0}, 0, 0},
    {OP_kv_write, b_kv_write, {1, 128, 1, 1, 8, 3}, {0}, {0}, 0, 0},
    {OP_kv_write, b_kv_write, {200, 256, 4, 7, 16, 40}, {0}, {0}, 0, 0},
    {OP_attention_decode, b_attention_decode, {3, 8, 2, 128, 4, 13, 16, 0, 60}, {0}, {0}, 0, 0},
    {OP_attention_decode, b_attention_decode, {5, 4, 1, 64, 3, 5, 16, 16, 17}, {0}, {0}, 0, 0},
    {OP_attention_decode, b_attention_decode, {1, 1, 1, 64, 1, 1, 1, 0, 1}, {0}, {0}, 0, 0},
    {OP_attention_decode, b_attention_decode, {4, 4, 4, 64, 4, 3, 13, 1, 20}, {0}, {0}, 0, 0},
    {OP_attention_decode, b_attention_decode, {64, 8, 1, 128, 64, 64, 16, 0, 4200}, {0}, {0}, 0, BIG},
    {OP_attention_decode, b_attention_decode, {2, 6, 3, 16, 2, 5, 4, 5, 11}, {0}, {0}, 0, 0},
    {OP_attention_decode, b_attention_decode, {5, 4, 2, 16, 3, 9, 16, 0, 130}, {0}, {0}, 0, 0},
    {OP_attention_decode, b_attention_decode, {3, 8, 4, 32, 4, 13, 16, 7, 60}, {0}, {0}, 0, 0},
    // ---- MoE: E=1, K=E, E not a power of two, T=1/37/200
    {OP_moe_route_forward, b_moe_route_forward, {37, 8, 2}, {0}, {0}, 0, 0},
    {OP_moe_route_forward, b_moe_route_forward, {1, 1, 1}, {0}, {0}, 0, 0},
    {OP_moe_route_forward, b_moe_route_forward, {200, 60, 6}, {0}, {0}, 0, 0},
    {OP_moe_route_forward, b_moe_route_forward, {37, 4, 4}, {0}, {0}, 0, 0},
    {OP_moe_route_forward, b_moe_route_forward, {64, 64, 8}, {0}, {0}, 0, 0},
    {OP_moe_route_forward, b_moe_route_forward, {37, 8, 2, 1}, {0}, {0}, 0, 0},
    {OP_moe_route_forward, b_moe_route_forward, {200, 60, 6, 1}, {0}, {0}, 0, 0},
    {OP_moe_route_forward, b_moe_route_forward, {37, 4, 4, 1}, {0}, {0}, 0, 0},
    // each register count a lane can hold (1, 4, 8 and 16 of them: E 32, 100, 256, 300), a decode step's shape
    {OP_moe_route_forward, b_moe_route_forward, {64, 32, 2}, {0}, {0}, 0, 0},
    {OP_moe_route_forward, b_moe_route_forward, {64, 32, 2, 1}, {0}, {0}, 0, 0},
    {OP_moe_route_forward, b_moe_route_forward, {50, 100, 4}, {0}, {0}, 0, 0},
    {OP_moe_route_forward, b_moe_route_forward, {40, 256, 8}, {0}, {0}, 0, 0},
    {OP_moe_route_forward, b_moe_route_forward, {20, 300, 8}, {0}, {0}, 0, 0},
    {OP_moe_route_forward, b_moe_route_forward, {20, 300, 8, 1}, {0}, {0}, 0, 0},
    {OP_moe_aux_loss, b_moe_aux_loss, {37, 8, 2}, {0}, {0}, 0, 0},
    {OP_moe_aux_loss, b_moe_aux_loss, {1, 1, 1}, {0}, {0}, 0, 0},
    {OP_moe_aux_loss, b_moe_aux_loss, {200, 60, 6}, {0}, {0}, 0, 0},
    {OP_moe_route_backward, b_moe_route_backward, {37, 8, 2, W}, {0.3f}, {0}, 0, 0},
    {OP_moe_route_backward, b_moe_route_backward, {1, 1, 1, A}, {0.5f}, {0}, 0, 0},
    {OP_moe_route_backward, b_moe_route_backward, {200, 60, 6, A}, {0.01f}, {0}, 0, 0},
    {OP_moe_route_backward, b_moe_route_backward, {37, 4, 4, W}, {0}, {0}, 0, 0},
    {OP_moe_dispatch, b_moe_dispatch, {37, 24, 8, 2}, {0}, {0}, 0, 0},
    {OP_moe_dispatch, b_moe_dispatch, {1, 16, 1, 1}, {0}, {0}, 0, 0},
    {OP_moe_dispatch, b_moe_dispatch, {200, 64, 60, 6}, {0}, {0}, 0, 0},
    {OP_moe_dispatch, b_moe_dispatch, {37, 8, 4, 4}, {0}, {0}, 0, 0},
    {OP_moe_dispatch, b_moe_dispatch, {600, 40, 16, 4}, {0}, {0}, 0, 0},  // 2400 slots: past the one-launch path
    {OP_moe_dispatch_backward, b_moe_dispatch_backward, {37, 24, 8, 2, W}, {0}, {0}, 0, 0},
    {OP_moe_dispatch_backward, b_moe_dispatch_backward, {1, 16, 1, 1, A}, {0}, {0}, 0, 0},
    {OP_moe_dispatch_backward, b_moe_dispatch_backward, {200, 64, 60, 6, A}, {0}, {0}, 0, 0},
    {OP_moe_combine_rmsnorm, b_moe_combine_rmsnorm, {37, 24, 8, 2, 1}, {1e-6f, 2.378f, 1}, {0}, 0, 0},
    {OP_moe_combine_rmsnorm, b_moe_combine_rmsnorm, {1, 30, 1, 1, 0}, {1e-5f, 1, 0.5f}, {0}, 0, 0},
    {OP_moe_combine_rmsnorm, b_moe_combine_rmsnorm, {64, 1024, 32, 2, 1}, {1e-5f, 2.378f, 1}, {0}, 0, 0},
    {OP_moe_combine_rmsnorm, b_moe_combine_rmsnorm, {1100, 64, 16, 2, 1}, {1e-6f, 1, 1}, {0}, 0, 0},  // not small
    {OP_moe_combine_forward, b_moe_combine_forward, {37, 24, 8, 2}, {0}, {0}, 0, 0},
    {OP_moe_combine_forward, b_moe_combine_forward, {1, 16, 1, 1}, {0}, {0}, 0, 0},
    {OP_moe_combine_forward, b_moe_combine_forward, {200, 64, 60, 6}, {0}, {0}, 0, 0},
    {OP_moe_combine_forward, b_moe_combine_forward, {600, 40, 16, 4}, {0}, {0}, 0, 0},  // past the one-launch path
    {OP_moe_combine_backward, b_moe_combine_backward, {37, 24, 8, 2, W}, {0}, {0}, 0, 0},
    {OP_moe_combine_backward, b_moe_combine_backward, {1, 16, 1, 1, A}, {0}, {0}, 0, 0},
    {OP_moe_combine_backward, b_moe_combine_backward, {200, 64, 60, 6, A}, {0}, {0}, 0, 0},
    {OP_moe_combine_backward, b_moe_combine_backward, {37, 8, 4, 4, W}, {0}, {0}, 0, 0},
    // ---- LM head: V not a multiple of 128, targets with -1
    {OP_lmhead_logprob_forward, b_lmhead_logprob_forward, {37, 64, 1000, 1}, {0}, {0}, 0, 0},
    {OP_lmhead_logprob_forward, b_lmhead_logprob_forward, {1, 32, 5, 0}, {0}, {0}, 0, 0},
    {OP_lmhead_logprob_forward, b_lmhead_logprob_forward, {200, 128, 1000, 1}, {0}, {0}, 0, 0},
    {OP_lmhead_logprob_backward, b_lmhead_logprob_backward, {37, 64, 1000, W}, {0}, {0}, 0, 0},
    {OP_lmhead_logprob_backward, b_lmhead_logprob_backward, {1, 32, 5, A}, {0}, {0}, 0, 0},
    {OP_lmhead_logprob_backward, b_lmhead_logprob_backward, {200, 128, 1000, A}, {0}, {0}, 0, 0},
    {OP_lmhead_logprob_backward, b_lmhead_logprob_backward, {200, 128, 1000, A}, {0}, {0}, 0, CASE_GRAD_BF16},
    {OP_lmhead_logits, b_lmhead_logits, {3, 64, 1000}, {0}, {0}, 0, 0},
    {OP_lmhead_logits, b_lmhead_logits, {1, 32, 5}, {0}, {0}, 0, 0},
    {OP_lmhead_logits, b_lmhead_logits, {37, 128, 1000}, {0}, {0}, 0, 0},
    {OP_lmhead_logits, b_lmhead_logits, {37, 128, 1000, 1}, {0}, {0}, 0, 0},
    // ---- optimizer
    {OP_sum_squares, b_sum_squares, {1}, {0}, {0}, 0, 0},
    {OP_sum_squares, b_sum_squares, {1000}, {0}, {0}, 0, 0},
    {OP_sum_squares, b_sum_squares, {1048579}, {0}, {0}, 0, 0},
    {OP_sum_squares, b_sum_squares, {1001}, {0}, {0}, 0, CASE_GRAD_BF16},
    {OP_sum_squares, b_sum_squares, {1048579}, {0}, {0}, 0, CASE_GRAD_BF16},
    {OP_scale_f32, b_scale_f32, {1}, {0.5f}, {0}, 0, 0},
    {OP_scale_f32, b_scale_f32, {4099}, {-1.75f}, {0}, 0, 0},
    {OP_adamw_step, b_adamw_step, {1, 1}, {1e-3f, 0.9f, 0.95f, 1e-8f, 0.1f}, {0}, 0, 0},
    {OP_adamw_step, b_adamw_step, {4099, 7}, {3e-4f, 0.9f, 0.999f, 1e-8f, 0}, {0}, 0, 0},
    {OP_adamw_step, b_adamw_step, {1000, 1000}, {1e-2f, 0.8f, 0.95f, 1e-6f, 0.01f}, {0}, 0, 0},
    {OP_adamw_step, b_adamw_step, {1000, 3}, {1e-2f, 0.8f, 0.95f, 1e-6f, 0.01f, 0.37f}, {0}, 0, 0},  // clipped
    {OP_adamw_step, b_adamw_step, {4099, 7}, {3e-4f, 0.9f, 0.999f, 1e-8f, 0, 0.5f}, {0}, 0, CASE_GRAD_BF16},
    // ---- timing shapes (--perf only; not compared)
    {OP_matmul, b_matmul, {4096, 4096, 4096, 0, 1}, {1, 0}, {0}, 0, CASE_PERF_ONLY | BIG},
    // the per-op peers' shapes (bench/op_peers.py times torch's kernels on the same): the experts of bench-1b
    // (T 4096, K 2, E 32: 256 rows each) and of M1 (1024 rows each, 8 of its 32 experts), W1|W3, W2, the
    // weight gradient; causal GQA attention at bench-1b's and M1's heads
    {OP_grouped_matmul_pair, b_grouped_matmul_pair, {32, 8192, 1024, 1024, 0, 0, 1}, {0}, {0}, 0, CASE_PERF_ONLY | BIG},
    // bench-1b's decode steps at batch 64 and 256 (2 experts a token): each touched expert streamed once
    {OP_grouped_matmul_pair, b_grouped_matmul_pair, {32, 128, 1024, 1024, 0, 0, 1}, {0}, {0}, 0, CASE_PERF_ONLY | BIG},
    {OP_grouped_matmul_pair, b_grouped_matmul_pair, {32, 512, 1024, 1024, 0, 0, 1}, {0}, {0}, 0, CASE_PERF_ONLY | BIG},
    {OP_grouped_matmul, b_grouped_matmul, {32, 128, 1024, 1024, 1, 0, 0, 1}, {0}, {0}, 0, CASE_PERF_ONLY | BIG},
    {OP_grouped_matmul_pair, b_grouped_matmul_pair, {32, 128, 1024, 1024, 0, 0, 1}, {0}, {0}, 0,
     CASE_PERF_ONLY | BIG | CASE_SKINNY_NARROW},
    {OP_grouped_matmul_pair, b_grouped_matmul_pair, {32, 512, 1024, 1024, 0, 0, 1}, {0}, {0}, 0,
     CASE_PERF_ONLY | BIG | CASE_SKINNY_NARROW},
    {OP_grouped_matmul, b_grouped_matmul, {32, 128, 1024, 1024, 1, 0, 0, 1}, {0}, {0}, 0,
     CASE_PERF_ONLY | BIG | CASE_SKINNY_NARROW},
    {OP_grouped_matmul_pair, b_grouped_matmul_pair, {32, 128, 1024, 1024, 0, 0, 1}, {0}, {0}, 0,
     CASE_PERF_ONLY | BIG | CASE_SKINNY_LOOP},
    {OP_grouped_matmul_pair, b_grouped_matmul_pair, {32, 512, 1024, 1024, 0, 0, 1}, {0}, {0}, 0,
     CASE_PERF_ONLY | BIG | CASE_SKINNY_LOOP},
    {OP_grouped_matmul, b_grouped_matmul, {32, 128, 1024, 1024, 1, 0, 0, 1}, {0}, {0}, 0,
     CASE_PERF_ONLY | BIG | CASE_SKINNY_LOOP},
    {OP_grouped_matmul_glu, b_grouped_matmul_glu, {32, 128, 1024, 1024, 0, ACT_SILU, 1}, {0}, {0}, 0,
     CASE_PERF_ONLY | BIG},
    {OP_grouped_matmul_glu, b_grouped_matmul_glu, {32, 512, 1024, 1024, 0, ACT_SILU, 1}, {0}, {0}, 0,
     CASE_PERF_ONLY | BIG},
    // bench-1b's decode projections at batch 64 (q|k|v|gate 4096 columns, out 1024, the router 32) and 256:
    // cuBLAS, the wide-k tiles, the same on a persistent grid
    {OP_matmul, b_matmul, {64, 4096, 1024, 0, 1}, {1, 0}, {0}, 0, CASE_PERF_ONLY | BIG},
    {OP_matmul, b_matmul, {64, 4096, 1024, 0, 1}, {1, 0}, {0}, 0, CASE_PERF_ONLY | BIG | CASE_DENSE_SKINNY},
    {OP_matmul, b_matmul, {64, 4096, 1024, 0, 1}, {1, 0}, {0}, 0,
     CASE_PERF_ONLY | BIG | CASE_DENSE_SKINNY | CASE_SKINNY_LOOP},
    {OP_matmul, b_matmul, {64, 1024, 1024, 0, 1}, {1, 0}, {0}, 0, CASE_PERF_ONLY | BIG},
    {OP_matmul, b_matmul, {64, 1024, 1024, 0, 1}, {1, 0}, {0}, 0, CASE_PERF_ONLY | BIG | CASE_DENSE_SKINNY},
    {OP_matmul, b_matmul, {64, 32, 1024, 0, 1}, {1, 0}, {0}, 0, CASE_PERF_ONLY | BIG},
    {OP_matmul, b_matmul, {64, 32, 1024, 0, 1}, {1, 0}, {0}, 0, CASE_PERF_ONLY | BIG | CASE_DENSE_SKINNY},
    {OP_matmul, b_matmul, {256, 4096, 1024, 0, 1}, {1, 0}, {0}, 0, CASE_PERF_ONLY | BIG},
    {OP_matmul, b_matmul, {256, 4096, 1024, 0, 1}, {1, 0}, {0}, 0, CASE_PERF_ONLY | BIG | CASE_DENSE_SKINNY},
    {OP_grouped_matmul_pair, b_grouped_matmul_pair, {8, 8192, 9216, 6144, 0, 0, 1}, {0}, {0}, 0, CASE_PERF_ONLY | BIG},
    {OP_grouped_matmul, b_grouped_matmul, {32, 8192, 1024, 1024, 1, 0, 0, 1}, {0}, {0}, 0, CASE_PERF_ONLY | BIG},
    {OP_grouped_matmul, b_grouped_matmul, {8, 8192, 6144, 9216, 1, 0, 0, 1}, {0}, {0}, 0, CASE_PERF_ONLY | BIG},
    {OP_grouped_matmul, b_grouped_matmul, {8, 8192, 9216, 6144, 0, 0, 0, 1}, {0}, {0}, 0, CASE_PERF_ONLY | BIG},
    {OP_grouped_matmul_wgrad, b_grouped_matmul_wgrad, {8, 8192, 9216, 6144, 0, 0, 1, 1}, {0}, {0}, 0,
     CASE_PERF_ONLY | BIG},
    {OP_grouped_matmul_wgrad, b_grouped_matmul_wgrad, {8, 8192, 9216, 6144, 0, 0, 1, 1}, {0}, {0}, 0,
     CASE_PERF_ONLY | BIG | CASE_GRAD_BF16},
    {OP_grouped_matmul_wgrad, b_grouped_matmul_wgrad, {8, 8192, 9216, 6144, 0, 0, 1, 1}, {0}, {0}, 0,
     CASE_PERF_ONLY | BIG | CASE_INFLIGHT},
    {OP_grouped_matmul_wgrad, b_grouped_matmul_wgrad, {8, 8192, 9216, 6144, 0, 0, 1, 1}, {0}, {0}, 0,
     CASE_PERF_ONLY | BIG | CASE_GRAD_BF16 | CASE_INFLIGHT},
    {OP_grouped_matmul_wgrad, b_grouped_matmul_wgrad, {32, 8192, 1024, 1024, 0, 0, 1, 1}, {0}, {0}, 0,
     CASE_PERF_ONLY | BIG},
    {OP_grouped_matmul_wgrad, b_grouped_matmul_wgrad, {32, 8192, 1024, 1024, 0, 0, 1, 1}, {0}, {0}, 0,
     CASE_PERF_ONLY | BIG | CASE_INFLIGHT},
    {OP_grouped_matmul_wgrad, b_grouped_matmul_wgrad, {8, 8192, 9216, 6144, 0, 0, 1, 1}, {0}, {0}, 0,
     CASE_PERF_ONLY | BIG | CASE_TMA},
    {OP_grouped_matmul_wgrad, b_grouped_matmul_wgrad, {8, 8192, 9216, 6144, 0, 0, 1, 1}, {0}, {0}, 0,
     CASE_PERF_ONLY | BIG | CASE_GRAD_BF16 | CASE_TMA},
    {OP_grouped_matmul_wgrad, b_grouped_matmul_wgrad, {32, 8192, 1024, 1024, 0, 0, 1, 1}, {0}, {0}, 0,
     CASE_PERF_ONLY | BIG | CASE_TMA},
    {OP_attention_forward, b_attention_forward, {8, 1, 128, 0}, {0}, LENS(4096), CASE_PERF_ONLY | BIG},
    {OP_attention_backward, b_attention_backward, {8, 1, 128, 0, W}, {0}, LENS(4096), CASE_PERF_ONLY | BIG},
    {OP_attention_forward, b_attention_forward, {64, 8, 128, 0}, {0}, LENS(16384), CASE_PERF_ONLY | BIG},
    {OP_attention_forward, b_attention_forward, {64, 8, 128, 0}, {0}, LENS(16384), CASE_PERF_ONLY | BIG | CASE_PINGPONG},
    {OP_attention_forward, b_attention_forward, {64, 8, 128, 0}, {0}, LENS(16384), CASE_PERF_ONLY | BIG | CASE_TMA},
    {OP_attention_forward, b_attention_forward, {8, 1, 128, 0}, {0}, LENS(4096), CASE_PERF_ONLY | BIG | CASE_PINGPONG},
    {OP_attention_forward, b_attention_forward, {8, 1, 128, 0}, {0}, LENS(4096), CASE_PERF_ONLY | BIG | CASE_TMA},
    {OP_attention_backward, b_attention_backward, {64, 8, 128, 0, W}, {0}, LENS(16384), CASE_PERF_ONLY | BIG},
    {OP_attention_backward, b_attention_backward, {64, 8, 128, 0, W}, {0}, LENS(16384),
     CASE_PERF_ONLY | BIG | CASE_BWD_OVL},
    {OP_attention_backward, b_attention_backward, {8, 1, 128, 0, W}, {0}, LENS(4096), CASE_PERF_ONLY | BIG | CASE_BWD_OVL},
    {OP_attention_forward, b_attention_forward, {32, 8, 128, 0}, {0}, LENS(4096, 4096), CASE_PERF_ONLY | BIG},
    {OP_attention_backward, b_attention_backward, {32, 8, 128, 0, W}, {0}, LENS(4096, 4096), CASE_PERF_ONLY | BIG},
    {OP_lightning_forward, b_lightning_forward, {64, 128, 256, 0, 0}, {0}, LENS(8192), CASE_PERF_ONLY | BIG},
    {OP_lightning_backward, b_lightning_backward, {64, 128, 256, 0, 0, W}, {0}, LENS(8192), CASE_PERF_ONLY | BIG},
    {OP_lmhead_logprob_forward, b_lmhead_logprob_forward, {2048, 2048, 32768, 1}, {0}, {0}, 0, CASE_PERF_ONLY | BIG},
    {OP_rmsnorm_forward, b_rmsnorm_forward, {8192, 6144}, {1e-6f}, {0}, 0, CASE_PERF_ONLY | BIG},
    {OP_adamw_step, b_adamw_step, {1 << 26, 10}, {1e-3f, 0.9f, 0.95f, 1e-8f, 0.1f}, {0}, 0, CASE_PERF_ONLY | BIG},
};
#undef W
#undef A

// The activations: every act_kind through act_forward/backward and glu_forward/backward.
static entry_t *table;
static int table_n;
static void table_build(void) {
    int nf = (int)(sizeof fixed_table / sizeof fixed_table[0]);
    table = xcalloc((size_t)nf + 8 * ACT_COUNT + 8, sizeof(entry_t));
    for (int i = 0; i < nf; i++) table[table_n++] = fixed_table[i];
    for (int a = 0; a < ACT_COUNT; a++) {
        entry_t e = {0};
        e.op = OP_act_forward, e.build = b_act_forward, e.p[0] = a, e.p[1] = a == ACT_SILU ? 4099 : 1000;
        table[table_n++] = e;
        e.op = OP_act_backward, e.build = b_act_backward, e.p[1] = a % 3 == 0 ? 37 : 1000, e.p[2] = a % 2;
        table[table_n++] = e;
        e.op = OP_glu_forward, e.build = b_glu_forward, e.p[1] = 37, e.p[2] = 20, e.p[3] = 0;
        table[table_n++] = e;
        e.op = OP_glu_backward, e.build = b_glu_backward, e.p[3] = a % 2;
        table[table_n++] = e;
    }
    static const int glu_shapes[][3] = {{ACT_SILU, 1, 1000}, {ACT_SILU, 200, 96}, {ACT_GELU_TANH, 200, 96}};
    for (int s = 0; s < 3; s++) {
        entry_t e = {0};
        e.op = OP_glu_forward, e.build = b_glu_forward;
        memcpy(e.p, glu_shapes[s], sizeof glu_shapes[s]);
        table[table_n++] = e;
        e.op = OP_glu_backward, e.build = b_glu_backward, e.p[3] = s % 2;
        table[table_n++] = e;
    }
}

// ===================================================================== the harness
static struct {
    int only_op[OP_COUNT], any_op;
    int backend;  // -1 all
    int perf, require_cuda, verbose;
    int defaults;       // --defaults: not the rows that force a kernel choice (CASE_KNOBS)
    const char *shape;  // --shape: only the rows whose shape holds one of these texts ('|' between them)
} opt = {{0}, 0, -1, 0, 0, 0, 0, NULL};
static int n_rows, n_failed, n_skipped;

static void row(const char *op, const char *shape, const char *backend, const char *dtype, const char *result,
                const char *fmt, ...) __attribute__((format(printf, 6, 7)));
static void row(const char *op, const char *shape, const char *backend, const char *dtype, const char *result,
                const char *fmt, ...) {
    char detail[256] = "";
    if (fmt) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(detail, sizeof detail, fmt, ap);
        va_end(ap);
    }
    printf("%-26s %-62s %-5s %-5s %-44s %s\n", op, shape, backend, dtype, detail, result);
    fflush(stdout);
    n_rows++;
}

static void case_free(opcase_t *c) {
    for (int i = 0; i < c->nt; i++) free(c->t[i].f), free(c->t[i].i);
    free(c->hostf);
    memset(c, 0, sizeof *c);
}
static int case_make(opcase_t *c, const entry_t *e, int bf16) {
    memset(c, 0, sizeof *c);
    c->op = e->op, c->bf16 = bf16, c->flags = e->flags, c->tol = BF16_TOL, c->cu_idx = -1;
    c->gbf16 = bf16 && (e->flags & CASE_GRAD_BF16);
    memcpy(c->p, e->p, sizeof c->p);
    memcpy(c->f, e->f, sizeof c->f);
    memcpy(c->lens, e->lens, sizeof c->lens);
    c->nlens = e->nlens;
    c->ws.T = c->ws.nseq = c->ws.C = c->ws.V = c->ws.H = c->ws.KV = c->ws.D = c->ws.E = c->ws.K = c->ws.F = 1;
    e->build(c);
    c->flags |= e->flags;
    if (e->flags & CASE_GRAD_BF16) {
        size_t l = strlen(c->shape);
        snprintf(c->shape + l, sizeof c->shape - l, " grad bf16");
    }
    if (e->flags & CASE_KNOBS) {
        size_t l = strlen(c->shape);
        snprintf(c->shape + l, sizeof c->shape - l, "%s%s%s%s%s%s%s%s", e->flags & CASE_SKINNY_NARROW ? " 32-k" : "",
                 e->flags & CASE_DENSE_SKINNY ? " skinny" : "", e->flags & CASE_SKINNY_LOOP ? " loop" : "",
                 e->flags & CASE_INFLIGHT ? " no-inflight" : "", e->flags & CASE_PINGPONG ? " no-pingpong" : "",
                 e->flags & CASE_TMA ? " no-tma" : "", e->flags & CASE_CLUSTER8 ? " cluster8" : "",
                 e->flags & CASE_BWD_OVL ? " no-dq-overlap" : "");
    }
    for (int i = 0; i < c->nt; i++)
        if (!g_dry && c->t[i].role != TR_HOST) round_to_backend(c, i);
    return 0;
}

static int dtype_of(const backend_t *b, int kind) {
    return kind == TK_ACT ? b->act_dtype : kind == TK_GRAD ? b->grad_dtype : DTYPE_F32;
}
static size_t elem_size(const backend_t *b, int kind) { return kind == TK_I32 ? 4 : dtype_size(dtype_of(b, kind)); }

// out vs ref: any NaN fails, except NaN on both sides where the tensor allows it (untouched padding).
typedef struct {
    double nerr, max_abs;
} err_t;
static err_t compare(const float *out, const float *ref, size_t n, int nan_ok, double floor) {
    double num = 0, den = 0, mx = 0;
    for (size_t i = 0; i < n; i++) {
        int no = out[i] != out[i], nr = ref[i] != ref[i];
        if (no && nr && nan_ok) continue;
        if (no || nr) return (err_t){INFINITY, INFINITY};
        double d = (double)out[i] - (double)ref[i];
        num += d * d, den += (double)ref[i] * ref[i];
        if (fabs(d) > mx) mx = fabs(d);
    }
    if (num != num || den != den) return (err_t){INFINITY, INFINITY};
    if (den < (double)n * floor * floor) den = (double)n * floor * floor;
    return (err_t){den > 0 ? sqrt(num / den) : sqrt(num), mx};
}
static double rms(const float *x, size_t n) {
    double s = 0;
    size_t m = 0;
    for (size_t i = 0; i < n; i++)
        if (x[i] == x[i]) s += (double)x[i] * x[i], m++;
    return m ? sqrt(s / (double)m) : 0;
}

// Host buffers of one run: pointers for the op (host memory) and the arrays behind them.
typedef struct {
    void *p[MAXT];
} hostrun_t;
// Fresh host copies for a run: inputs copied, OUT poisoned (or zeroed when zero_out), ACC = prior,
// INOUT copied, HOST = the case's array.
static void host_setup(hostrun_t *h, const opcase_t *c, float *const *prior, int zero_out) {
    for (int i = 0; i < c->nt; i++) {
        const tens_t *t = &c->t[i];
        h->p[i] = NULL;
        if (t->role == TR_NONE) continue;
        if (t->role == TR_HOST) {
            h->p[i] = t->kind == TK_I32 ? (void *)t->i : (void *)t->f;
            continue;
        }
        if (t->kind == TK_I32) {
            int32_t *a = xcalloc(t->n + 1, sizeof(int32_t));
            if (t->role == TR_OUT) {
                for (size_t j = 0; j < t->n; j++) a[j] = zero_out ? 0 : INT_POISON;
            } else memcpy(a, t->i, t->n * sizeof(int32_t));
            h->p[i] = a;
        } else {
            float *a = xcalloc(t->n + 1, sizeof(float));
            if (t->role == TR_OUT) {
                for (size_t j = 0; j < t->n; j++) a[j] = zero_out ? 0.0f : NAN;
            } else if (t->role == TR_ACC) {
                if (prior && prior[i]) memcpy(a, prior[i], t->n * sizeof(float));
            } else memcpy(a, t->f, t->n * sizeof(float));
            h->p[i] = a;
        }
    }
}
static void host_free(hostrun_t *h, const opcase_t *c) {
    for (int i = 0; i < c->nt; i++)
        if (c->t[i].role != TR_HOST) free(h->p[i]);
}
static int is_output(int role) { return role == TR_OUT || role == TR_ACC || role == TR_INOUT; }

// Backend tensors of one run on b.
static void dev_setup(backend_t *b, void **d, const opcase_t *c, float *const *prior) {
    for (int i = 0; i < c->nt; i++) {
        const tens_t *t = &c->t[i];
        d[i] = NULL;
        if (t->role == TR_NONE) continue;
        if (t->role == TR_HOST) {
            d[i] = t->kind == TK_I32 ? (void *)t->i : (void *)t->f;
            continue;
        }
        size_t es = elem_size(b, t->kind);
        d[i] = backend_alloc(b, t->n * es + 16);
        if (t->kind == TK_I32) {
            if (t->role == TR_OUT) {
                int32_t *a = xcalloc(t->n + 1, sizeof(int32_t));
                for (size_t j = 0; j < t->n; j++) a[j] = INT_POISON;
                backend_upload(b, d[i], a, t->n * sizeof(int32_t));
                free(a);
            } else backend_upload(b, d[i], t->i, t->n * sizeof(int32_t));
        } else {
            if (t->role == TR_OUT) {
                float *a = xcalloc(t->n + 1, sizeof(float));
                for (size_t j = 0; j < t->n; j++) a[j] = NAN;
                backend_fill_f32(b, d[i], dtype_of(b, t->kind), a, t->n);
                free(a);
            } else if (t->role == TR_ACC) {
                backend_fill_f32(b, d[i], dtype_of(b, t->kind), prior[i], t->n);
            } else backend_fill_f32(b, d[i], dtype_of(b, t->kind), t->f, t->n);
        }
    }
    backend_sync(b);
}
static void dev_free(backend_t *b, void **d, const opcase_t *c) {
    for (int i = 0; i < c->nt; i++)
        if (c->t[i].role != TR_HOST && c->t[i].role != TR_NONE) backend_free(b, d[i]);
}

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static void perf_row(backend_t *b, opcase_t *c, void **d) {
    double ret = 0, bytes = 0;
    for (int i = 0; i < c->nt; i++)
        if (c->t[i].role != TR_HOST && c->t[i].role != TR_NONE)
            bytes += (double)c->t[i].n * (double)elem_size(b, c->t[i].kind) * (is_output(c->t[i].role) ? 2 : 1);
    for (int w = 0; w < 2; w++) c->run(b, d, c, &ret);
    backend_sync(b);
    int reps = 0;
    double t0 = now_s(), el = 0;
    do {
        c->run(b, d, c, &ret);
        reps++;
        if (reps % 4 == 0 || reps < 4) {
            backend_sync(b);
            el = now_s() - t0;
        }
    } while (el < 0.25 && reps < 200);
    backend_sync(b);
    el = now_s() - t0;
    double us = 1e6 * el / reps;
    char what[128];
    if (c->flops > 0)
        snprintf(what, sizeof what, "%10.1f us/run %8.2f TFLOP/s %8.1f GB/s", us, c->flops / (us * 1e6),
                 bytes / (us * 1e3));
    else snprintf(what, sizeof what, "%10.1f us/run %8.1f GB/s", us, bytes / (us * 1e3));
    printf("%-26s %-62s %-5s %-5s %s\n", op_name(c->op), c->shape, backend_name(b->kind), dtype_name(b->act_dtype),
           what);
    fflush(stdout);
}

// Finite differences on the CPU: the op's gradients (outputs starting at zero) against central
// differences of c->loss for FD_SAMPLES random elements and the 2 largest of each differentiated input.
static void fd_row(opcase_t *c) {
    backend_t *hb = backend_host();
    hostrun_t h;
    host_setup(&h, c, NULL, 1);
    double ret = 0;
    c->run(hb, h.p, c, &ret);
    double worst = 0;
    const char *worst_name = "";
    for (int g = 0; g < c->ngrad; g++) {
        tens_t *in = &c->t[c->grad_in[g]];
        const float *grad = h.p[c->grad_out[g]];
        size_t n = in->n;
        if (!n) continue;
        size_t idx[FD_SAMPLES + 2];
        int ns = 0;
        size_t big1 = 0, big2 = 0;
        double gmax = 0;
        for (size_t j = 0; j < n; j++) {
            double a = fabs(grad[j]);
            if (a > gmax) gmax = a;
            if (a > fabs(grad[big1])) big2 = big1, big1 = j;
            else if (j != big1 && a > fabs(grad[big2])) big2 = j;
        }
        idx[ns++] = big1;
        if (n > 1) idx[ns++] = big2;
        for (int s = 0; s < FD_SAMPLES && (size_t)ns < n; s++) idx[ns++] = (size_t)(test_rng_next(&rng) % n);
        double num = 0, scale = 0;
        for (int s = 0; s < ns; s++) {
            float x0 = in->f[idx[s]];
            double hstep = FD_STEP;
            in->f[idx[s]] = (float)(x0 + hstep);
            double hp = (double)in->f[idx[s]] - x0;  // the step as stored in fp32
            double lp = c->loss(c);
            in->f[idx[s]] = (float)(x0 - hstep);
            double hm = x0 - (double)in->f[idx[s]];
            double lm = c->loss(c);
            in->f[idx[s]] = x0;
            double fd = (lp - lm) / (hp + hm);
            double d = fabs(fd - (double)grad[idx[s]]);
            if (d > num) num = d;
            if (fabs(fd) > scale) scale = fabs(fd);
        }
        if (0.1 * gmax > scale) scale = 0.1 * gmax;
        if (scale < 1e-3) scale = 1e-3;  // gradients below this scale are judged in absolute terms
        double e = num / scale;
        if (g == 0 || !(e <= worst)) worst = e, worst_name = in->name;
        if (e != e) worst = INFINITY;
    }
    host_free(&h, c);
    int ok = worst <= FD_TOL;
    if (!ok) n_failed++;
    row(op_name(c->op), c->shape, "cpu", "fd", ok ? "PASS" : "FAIL", "fd err %9.2e (d%-7s) limit %.0e", worst,
        worst_name, FD_TOL);
}

// A row that does not run: the case is built dry, for its shape string only.
static void skip_row(const entry_t *e, const char *bn, const char *dn, const char *why) {
    opcase_t c;
    g_dry = 1;
    case_make(&c, e, 1);
    g_dry = 0;
    row(op_name(c.op), c.shape, bn, dn, why, NULL);
    n_skipped++;
    case_free(&c);
}

// Whether entry e's shape holds one of --shape's texts (from a dry case: no data; every entry without --shape)
// and, under --defaults, e forces no kernel choice.
static int shape_wanted(const entry_t *e) {
    if (opt.defaults && (e->flags & CASE_KNOBS)) return 0;
    if (!opt.shape) return 1;
    opcase_t c;
    g_dry = 1;
    case_make(&c, e, 1);
    g_dry = 0;
    int match = 0;
    for (const char *t = opt.shape; !match && t; t = strchr(t, '|'), t = t ? t + 1 : NULL) {
        char alt[sizeof c.shape];  // this alternative alone
        snprintf(alt, sizeof alt, "%.*s", (int)strcspn(t, "|"), t);
        match = alt[0] && strstr(c.shape, alt);
    }
    case_free(&c);
    return match;
}

// One (case, backend) row.
static void run_case_row(const entry_t *e, backend_t *b) {
    const int bf16 = b->act_dtype == DTYPE_BF16;
    const char *bn = backend_name(b->kind), *dn = dtype_name(b->act_dtype);
    opcase_t c;
    const char *skip = NULL;
    if ((e->flags & CASE_CPU_ONLY) && b->kind != BACKEND_CPU) skip = "skipped (shape for the cpu only)";
    if ((e->flags & CASE_CUDA_ROWS_ONLY) && b->kind == BACKEND_CPU) skip = "skipped (large shape: cuda rows only)";
    if ((e->flags & CASE_GRAD_BF16) && b->act_dtype != DTYPE_BF16) skip = "skipped (bf16 gradients: cuda rows only)";
    if ((e->flags & CASE_KNOBS) && b->kind == BACKEND_CPU) skip = "skipped (a cuda kernel choice)";
    if (skip) {
        skip_row(e, bn, dn, skip);
        return;
    }
    case_make(&c, e, bf16);
    const char *on = op_name(c.op);
    if (c.custom) {
        double err = 0, limit = 0;
        char note[200] = "";
        if (c.custom(b, &c, &err, &limit, note, sizeof note) != 0) {
            row(on, c.shape, bn, dn, "skipped (a check of the cuda entry points)", NULL);
            n_skipped++;
        } else {
            int ok = err <= limit;
            if (!ok) n_failed++;
            row(on, c.shape, bn, dn, ok ? "PASS" : "FAIL", "err %9.2e limit %.0e %s", err, limit, note);
        }
        case_free(&c);
        return;
    }
    if (!backend_supports(b, c.op, b->act_dtype) ||
        (b->kind != BACKEND_CPU && (c.flags & CASE_CUDA_WRITE_ONLY))) {
        row(on, c.shape, bn, dn, (c.flags & CASE_CUDA_WRITE_ONLY) ? "unsupported (OP_ACCUMULATE)" : "unsupported",
            NULL);
        n_skipped++;
        case_free(&c);
        return;
    }
    size_t wsb = ops_workspace_bytes(b, &c.ws);
    if (wsb) backend_ws_reserve(b, wsb + ((size_t)1 << 20));
    void *d[MAXT];
    float *prior[MAXT] = {0};
    if (c.flags & CASE_PERF_ONLY) {
        for (int i = 0; i < c.nt; i++)
            if (c.t[i].role == TR_ACC) prior[i] = xcalloc(c.t[i].n + 1, sizeof(float));
        dev_setup(b, d, &c, prior);
        perf_row(b, &c, d);
        dev_free(b, d, &c);
        for (int i = 0; i < c.nt; i++) free(prior[i]);
        case_free(&c);
        return;
    }
    // reference: CPU op API, accumulated outputs from zero (their delta)
    backend_t *hb = backend_host();
    hostrun_t ref;
    host_setup(&ref, &c, NULL, 0);
    for (int i = 0; i < c.nt; i++)
        if (c.t[i].role == TR_ACC) memset(ref.p[i], 0, c.t[i].n * sizeof(float));
    double ref_ret = 0;
    c.run(hb, ref.p, &c, &ref_ret);
    // priors of accumulated outputs, the size of the result; expected = prior + delta
    for (int i = 0; i < c.nt; i++) {
        tens_t *t = &c.t[i];
        if (t->role != TR_ACC) continue;
        float *r = ref.p[i];
        double s = rms(r, t->n);
        if (s < t->floor) s = t->floor;
        if (!(s > 0)) s = 1;
        prior[i] = xcalloc(t->n + 1, sizeof(float));
        for (size_t j = 0; j < t->n; j++) {
            float x = (float)(s * urand(-1, 1));
            prior[i][j] = is_bf16(&c, t->kind) ? round_bf16(x) : x;
            r[j] = (float)((double)r[j] + (t->prior_scale != 0 ? t->prior_scale : 1.0) * prior[i][j]);
        }
    }
    // backend under test
    dev_setup(b, d, &c, prior);
    double ret = 0;
    c.run(b, d, &c, &ret);
    backend_sync(b);
    double worst_ratio = -1, worst_err = 0, worst_max = 0, worst_lim = 0;
    const char *worst_name = "";
    long bad_ints = 0;
    float *cpu_out[MAXT] = {0};
    for (int i = 0; i < c.nt; i++) {
        tens_t *t = &c.t[i];
        if (!is_output(t->role)) continue;
        double lim = b->kind == BACKEND_CPU ? CPU_TOL : (t->tol > 0 ? t->tol : c.tol);
        if (t->kind == TK_GRAD && c.gbf16 && lim < BF16_TOL) lim = BF16_TOL;  // a bf16 output
        double err, mx;
        if (t->kind == TK_I32) {
            int32_t *a = xcalloc(t->n + 1, sizeof(int32_t));
            backend_download(b, a, d[i], t->n * sizeof(int32_t));
            long bad = 0;
            for (size_t j = 0; j < t->n; j++) bad += a[j] != ((int32_t *)ref.p[i])[j];
            bad_ints += bad;
            err = mx = (double)bad, lim = 0;
            if (b->kind == BACKEND_CPU) cpu_out[i] = (float *)a;
            else free(a);
        } else {
            float *a = xcalloc(t->n + 1, sizeof(float));
            backend_read_f32(b, a, d[i], dtype_of(b, t->kind), t->n);
            err_t er = compare(a, ref.p[i], t->n, t->nan_ok, t->floor);
            err = er.nerr, mx = er.max_abs;
            if (b->kind == BACKEND_CPU) cpu_out[i] = a;
            else free(a);
        }
        double ratio = lim > 0 ? err / lim : (err > 0 ? INFINITY : 0);
        if (err != err) ratio = INFINITY;
        if (ratio > worst_ratio) worst_ratio = ratio, worst_err = err, worst_max = mx, worst_lim = lim, worst_name = t->name;
    }
    if (c.has_ret) {
        double lim = b->kind == BACKEND_CPU ? CPU_TOL : c.ret_tol;
        double err = fabs(ret - ref_ret) / (fabs(ref_ret) > 0 ? fabs(ref_ret) : 1);
        if (ret != ret) err = INFINITY;
        double ratio = err / lim;
        if (ratio > worst_ratio) worst_ratio = ratio, worst_err = err, worst_max = fabs(ret - ref_ret), worst_lim = lim,
                                 worst_name = "result";
    }
    // CPU backend: the op API equals the direct *_cpu call on the same inputs and priors
    if (b->kind == BACKEND_CPU && c.direct) {
        hostrun_t dr;
        host_setup(&dr, &c, prior, 0);
        if (c.direct_zero)
            for (int i = 0; i < c.nt; i++)
                if (c.t[i].role == TR_OUT && c.t[i].kind != TK_I32) memset(dr.p[i], 0, c.t[i].n * sizeof(float));
        double dret = 0;
        c.direct(dr.p, &c, &dret);
        for (int i = 0; i < c.nt; i++) {
            tens_t *t = &c.t[i];
            if (!is_output(t->role)) continue;
            double err, mx;
            if (t->kind == TK_I32) {
                long bad = 0;
                for (size_t j = 0; j < t->n; j++) bad += ((int32_t *)cpu_out[i])[j] != ((int32_t *)dr.p[i])[j];
                err = mx = (double)bad;
                if (bad) worst_ratio = INFINITY, worst_err = err, worst_max = mx, worst_lim = 0, worst_name = t->name;
                bad_ints += bad;
                continue;
            }
            err_t er = compare(cpu_out[i], dr.p[i], t->n, t->nan_ok, t->floor);
            err = er.nerr, mx = er.max_abs;
            if (err / CPU_TOL > worst_ratio || err != err)
                worst_ratio = err != err ? INFINITY : err / CPU_TOL, worst_err = err, worst_max = mx,
                worst_lim = CPU_TOL, worst_name = t->name;
        }
        if (c.has_ret && dret != ret) {
            double err = fabs(dret - ret) / (fabs(ret) > 0 ? fabs(ret) : 1);
            if (err / CPU_TOL > worst_ratio) worst_ratio = err / CPU_TOL, worst_err = err, worst_lim = CPU_TOL,
                                              worst_name = "result(direct)";
        }
        host_free(&dr, &c);
    }
    int ok = worst_ratio <= 1.0 && bad_ints == 0;
    if (!ok) n_failed++;
    row(on, c.shape, bn, dn, ok ? "PASS" : "FAIL", "max %9.2e err %9.2e (%-9s) limit %.0e", worst_max, worst_err,
        worst_name, worst_lim);
    if (opt.perf) perf_row(b, &c, d);
    for (int i = 0; i < c.nt; i++) free(prior[i]), free(cpu_out[i]);
    dev_free(b, d, &c);
    host_free(&ref, &c);
    if (b->kind == BACKEND_CPU && c.loss && !(c.flags & CASE_CUDA_ROWS_ONLY)) {
        size_t tot = 0;
        for (int i = 0; i < c.nt; i++) tot += c.t[i].n;
        if (tot <= FD_MAX_ELEMS) fd_row(&c);
    }
    case_free(&c);
}

// A row with the gradient dtype and kernel choice its entry asks for (CASE_GRAD_BF16: bf16 on a bf16 context;
// CASE_SKINNY_NARROW, CASE_SKINNY_LOOP: the tuning knob gg_skinny_wide at -1, 2; CASE_DENSE_SKINNY: dense_skinny;
// CASE_INFLIGHT: wg_wgrad_inflight and wg_wgrad_tma -1; CASE_PINGPONG: attn_fwd_pingpong and attn_fwd_tma -1;
// CASE_TMA: attn_fwd_tma and wg_wgrad_tma -1; CASE_CLUSTER8: sample_cluster 8; CASE_BWD_OVL: attn_bwd_overlap -1),
// restored after.
static void run_row(const entry_t *e, backend_t *b) {
    const int keep = b->grad_dtype;
    const backend_tuning_t keep_tune = b->tune;
    if ((e->flags & CASE_GRAD_BF16) && b->act_dtype == DTYPE_BF16) b->grad_dtype = DTYPE_BF16;
    if (e->flags & CASE_SKINNY_NARROW) b->tune.gg_skinny_wide = -1;
    if (e->flags & CASE_SKINNY_LOOP) b->tune.gg_skinny_wide = 2;
    if (e->flags & CASE_DENSE_SKINNY) b->tune.dense_skinny = 256;
    if (e->flags & CASE_INFLIGHT) b->tune.wg_wgrad_inflight = -1, b->tune.wg_wgrad_tma = -1;
    if (e->flags & CASE_PINGPONG) b->tune.attn_fwd_pingpong = -1, b->tune.attn_fwd_tma = -1;
    if (e->flags & CASE_TMA) b->tune.attn_fwd_tma = -1, b->tune.wg_wgrad_tma = -1;
    if (e->flags & CASE_CLUSTER8) b->tune.sample_cluster = 8;
    if (e->flags & CASE_BWD_OVL) b->tune.attn_bwd_overlap = -1;
    run_case_row(e, b);
    b->grad_dtype = keep, b->tune = keep_tune;
}

static int parse_ops(const char *s) {
    char buf[1024];
    snprintf(buf, sizeof buf, "%s", s);
    for (char *tok = strtok(buf, ","); tok; tok = strtok(NULL, ",")) {
        int found = 0;
        for (int op = 0; op < OP_COUNT; op++)
            if (strcmp(op_name(op), tok) == 0) opt.only_op[op] = 1, found = 1;
        if (!found) {
            fprintf(stderr, "test_backend_ops: --op: no op named '%s' (kernels/ops.h CISPO_OPS lists them)\n", tok);
            return -1;
        }
        opt.any_op = 1;
    }
    return 0;
}

static void usage(void) {
    printf("usage: test_backend_ops [--op name[,name...]] [--backend cpu|cuda] [--perf] [--shape TEXT[|TEXT...]] "
           "[--defaults] [--require-cuda] [--seed N]\n"
           "  --shape TEXT: only the rows whose shape holds TEXT, or one of the texts between '|' (a perf row alone\n"
           "    under a profiler)\n"
           "  --defaults: not the rows that force a kernel choice (32-k, skinny, loop, no-tma, ...)\n");
}

int main(int argc, char **argv) {
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--op") && i + 1 < argc) {
            if (parse_ops(argv[++i])) return 2;
        } else if (!strncmp(a, "--op=", 5)) {
            if (parse_ops(a + 5)) return 2;
        } else if (!strcmp(a, "--backend") && i + 1 < argc) {
            const char *v = argv[++i];
            opt.backend = !strcmp(v, "cpu") ? BACKEND_CPU : !strcmp(v, "cuda") ? BACKEND_CUDA : -2;
            if (opt.backend == -2) {
                fprintf(stderr, "test_backend_ops: --backend: '%s' is not cpu or cuda\n", v);
                return 2;
            }
        } else if (!strcmp(a, "--perf")) {
            opt.perf = 1;
        } else if (!strcmp(a, "--require-cuda")) {
            opt.require_cuda = 1;
        } else if (!strcmp(a, "--shape") && i + 1 < argc) {
            opt.shape = argv[++i];
        } else if (!strcmp(a, "--defaults")) {
            opt.defaults = 1;
        } else if (!strcmp(a, "--seed") && i + 1 < argc) {
            rng = strtoull(argv[++i], NULL, 0);
        } else if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            usage();
            return 0;
        } else {
            fprintf(stderr, "test_backend_ops: unknown argument '%s'\n", a);
            usage();
            return 2;
        }
    }
    table_build();
    // the backends: CPU fp32 always; CUDA bf16 when built and a device is present
    backend_t cpu, cuda;
    CISPO_ASSERT(backend_init(&cpu, BACKEND_CPU, 0, DTYPE_F32) == 0);
    int have_cuda = 0;
    const char *cuda_skip = NULL;
#ifdef CISPO_HAVE_CUDA
    if (backend_available(BACKEND_CUDA) <= 0) cuda_skip = "skipped (no CUDA device)";
    else if (backend_init(&cuda, BACKEND_CUDA, 0, DTYPE_BF16) != 0) {
        fprintf(stderr, "test_backend_ops: cuda backend: %s\n", cispo_last_error());
        cuda_skip = "skipped (no CUDA device)";
    } else have_cuda = 1;
#else
    cuda_skip = "skipped (not built with CUDA)";
    (void)cuda;
#endif
    int want_cpu = opt.backend < 0 || opt.backend == BACKEND_CPU;
    int want_cuda = opt.backend < 0 || opt.backend == BACKEND_CUDA;
    if (opt.require_cuda && !have_cuda) {
        printf("test_backend_ops: --require-cuda: %s\n", cuda_skip);
        n_failed++;
    }
    printf("%-26s %-62s %-5s %-5s %-44s %s\n", "op", "shape", "backend", "dtype", "error (worst output)", "result");
    double t0 = now_s();
    for (int i = 0; i < table_n; i++) {
        const entry_t *e = &table[i];
        if (opt.any_op && !opt.only_op[e->op]) continue;
        if ((e->flags & CASE_PERF_ONLY) && !opt.perf) continue;
        if (!shape_wanted(e)) continue;
        if (want_cpu) run_row(e, &cpu);
        if (want_cuda) {
            if (have_cuda) run_row(e, &cuda);
            else skip_row(e, "cuda", "bf16", cuda_skip);
        }
    }
    backend_release(&cpu);
    if (have_cuda) backend_release(&cuda);
    free(table);
    printf("(%.1f s)\n", now_s() - t0);
    printf("test_backend_ops: %d rows, %d failed, %d skipped: %s\n", n_rows, n_failed, n_skipped,
           n_failed ? "FAILED" : "overall okay");
    return n_failed ? 1 : 0;
}
