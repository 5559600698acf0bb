// tests/test_lightning.c — lightning attention CPU reference (kernels/cpu/lightning.c) against
// double-precision references: the chunked forward vs the per-token recurrence and the explicit
// ((Q K^T) o M) V form, at many (T, H, D, block) incl. T = 1, T < block, T not a multiple of block,
// block = 1, packed batches of mixed lengths, initial and final states, decode continuing a
// prefill; the chunked backward vs central finite differences and vs the backward of the explicit
// form (dq, dk, dv, dstate_in); slopes vs values printed by PyTorch from the two reference codes.
// Run: build/test_lightning [--perf]   (--perf also times fwd/bwd at T=4096, H=8, D=128, B=256)
#include "kernels/cpu/ops_cpu.h"
#include "tests/testutil.h"
#include "tests/ophelp.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

// fp32 against a double reference: normalised L2 error (see tests/ophelp.h)
#define TOL_FWD 1e-5
#define TOL_GRAD 1e-5

// ---- slopes: fp32 bit patterns printed by torch 2.x from the two reference implementations ----
// (transformers MiniMaxLightningAttention.get_slope_rate and the original _build_slope_tensor times
// the layer factor), for (flavour, H, layer, N).
typedef struct {
    int original, H, layer, n_layers;
    uint32_t bits[64];
} slope_case;
static const slope_case slope_cases[] = {
    {0, 8, 0, 1, {
        0x3f000054, 0x3e800054, 0x3e000054, 0x3d800054, 0x3d000054, 0x3c800054, 0x3c000054, 0x3b800054
    }},
    {0, 8, 3, 8, {
        0x3e9249d7, 0x3e1249d7, 0x3d9249d7, 0x3d1249d7, 0x3c9249d7, 0x3c1249d7, 0x3b9249d7, 0x3b1249d7
    }},
    {1, 8, 3, 8, {
        0x3e9249cc, 0x3e1249cc, 0x3d9249cc, 0x3d1249cc, 0x3c9249cc, 0x3c1249cc, 0x3b9249cc, 0x3b1249cc
    }},
    {0, 64, 0, 80, {
        0x3f6ac161, 0x3f57458a, 0x3f4567ac, 0x3f35056a, 0x3f25ff44, 0x3f183855, 0x3f0b961e, 0x3f000054,
        0x3eeac162, 0x3ed7458b, 0x3ec567ad, 0x3eb5056b, 0x3ea5ff45, 0x3e983855, 0x3e8b961f, 0x3e800055,
        0x3e6ac163, 0x3e57458b, 0x3e4567ae, 0x3e35056c, 0x3e25ff45, 0x3e183856, 0x3e0b961f, 0x3e000055,
        0x3deac163, 0x3dd7458c, 0x3dc567ae, 0x3db5056c, 0x3da5ff46, 0x3d983856, 0x3d8b9620, 0x3d800056,
        0x3d6ac164, 0x3d57458d, 0x3d4567af, 0x3d35056d, 0x3d25ff46, 0x3d183857, 0x3d0b9620, 0x3d000056,
        0x3ceac165, 0x3cd7458d, 0x3cc567af, 0x3cb5056d, 0x3ca5ff47, 0x3c983857, 0x3c8b9621, 0x3c800056,
        0x3c6ac166, 0x3c57458e, 0x3c4567b0, 0x3c35056e, 0x3c25ff47, 0x3c183858, 0x3c0b9621, 0x3c000057,
        0x3beac166, 0x3bd7458f, 0x3bc567b1, 0x3bb5056f, 0x3ba5ff48, 0x3b983858, 0x3b8b9621, 0x3b800057
    }},
    {1, 64, 0, 80, {
        0x3f6ac161, 0x3f57458a, 0x3f4567ac, 0x3f35056a, 0x3f25ff44, 0x3f183854, 0x3f0b961e, 0x3f000054,
        0x3eeac161, 0x3ed7458a, 0x3ec567ac, 0x3eb5056a, 0x3ea5ff44, 0x3e983854, 0x3e8b961e, 0x3e800054,
        0x3e6ac161, 0x3e57458a, 0x3e4567ac, 0x3e35056a, 0x3e25ff44, 0x3e183854, 0x3e0b961e, 0x3e000054,
        0x3deac161, 0x3dd7458a, 0x3dc567ac, 0x3db5056a, 0x3da5ff44, 0x3d983854, 0x3d8b961e, 0x3d800054,
        0x3d6ac161, 0x3d57458a, 0x3d4567ac, 0x3d35056a, 0x3d25ff44, 0x3d183854, 0x3d0b961e, 0x3d000054,
        0x3ceac161, 0x3cd7458a, 0x3cc567ac, 0x3cb5056a, 0x3ca5ff44, 0x3c983854, 0x3c8b961e, 0x3c800054,
        0x3c6ac161, 0x3c57458a, 0x3c4567ac, 0x3c35056a, 0x3c25ff44, 0x3c183854, 0x3c0b961e, 0x3c000054,
        0x3beac161, 0x3bd7458a, 0x3bc567ac, 0x3bb5056a, 0x3ba5ff44, 0x3b983854, 0x3b8b961e, 0x3b800054
    }},
    {0, 64, 41, 80, {
        0x3ee1d7d4, 0x3ecf195a, 0x3ebde920, 0x3eae2619, 0x3e9fb1f7, 0x3e9270ee, 0x3e864980, 0x3e76489c,
        0x3e61d7d5, 0x3e4f195b, 0x3e3de921, 0x3e2e261a, 0x3e1fb1f8, 0x3e1270ee, 0x3e064981, 0x3df6489e,
        0x3de1d7d6, 0x3dcf195b, 0x3dbde922, 0x3dae261b, 0x3d9fb1f8, 0x3d9270ef, 0x3d864981, 0x3d76489e,
        0x3d61d7d6, 0x3d4f195c, 0x3d3de922, 0x3d2e261b, 0x3d1fb1f9, 0x3d1270ef, 0x3d064982, 0x3cf648a0,
        0x3ce1d7d7, 0x3ccf195d, 0x3cbde923, 0x3cae261c, 0x3c9fb1f9, 0x3c9270f0, 0x3c864982, 0x3c7648a0,
        0x3c61d7d8, 0x3c4f195d, 0x3c3de923, 0x3c2e261c, 0x3c1fb1fa, 0x3c1270f0, 0x3c064982, 0x3bf648a0,
        0x3be1d7d9, 0x3bcf195e, 0x3bbde924, 0x3bae261d, 0x3b9fb1fa, 0x3b9270f1, 0x3b864982, 0x3b7648a2,
        0x3b61d7d9, 0x3b4f195f, 0x3b3de924, 0x3b2e261e, 0x3b1fb1fb, 0x3b1270f1, 0x3b064982, 0x3af648a2
    }},
    {1, 64, 41, 80, {
        0x3ee1d7d3, 0x3ecf1958, 0x3ebde91e, 0x3eae2618, 0x3e9fb1f6, 0x3e9270ec, 0x3e86497f, 0x3e76489a,
        0x3e61d7d3, 0x3e4f1958, 0x3e3de91e, 0x3e2e2618, 0x3e1fb1f6, 0x3e1270ec, 0x3e06497f, 0x3df6489a,
        0x3de1d7d3, 0x3dcf1958, 0x3dbde91e, 0x3dae2618, 0x3d9fb1f6, 0x3d9270ec, 0x3d86497f, 0x3d76489a,
        0x3d61d7d3, 0x3d4f1958, 0x3d3de91e, 0x3d2e2618, 0x3d1fb1f6, 0x3d1270ec, 0x3d06497f, 0x3cf6489a,
        0x3ce1d7d3, 0x3ccf1958, 0x3cbde91e, 0x3cae2618, 0x3c9fb1f6, 0x3c9270ec, 0x3c86497f, 0x3c76489a,
        0x3c61d7d3, 0x3c4f1958, 0x3c3de91e, 0x3c2e2618, 0x3c1fb1f6, 0x3c1270ec, 0x3c06497f, 0x3bf6489a,
        0x3be1d7d3, 0x3bcf1958, 0x3bbde91e, 0x3bae2618, 0x3b9fb1f6, 0x3b9270ec, 0x3b86497f, 0x3b76489a,
        0x3b61d7d3, 0x3b4f1958, 0x3b3de91e, 0x3b2e2618, 0x3b1fb1f6, 0x3b1270ec, 0x3b06497f, 0x3af6489a
    }},
    {0, 64, 79, 80, {
        0x371bcb92, 0x370edd65, 0x370301f3, 0x36f044df, 0x36dc53e3, 0x36ca0a98, 0x36b945d3, 0x36a9e557,
        0x369bcb92, 0x368edd66, 0x368301f4, 0x367044e0, 0x365c53e4, 0x364a0a98, 0x363945d4, 0x3629e558,
        0x361bcb93, 0x360edd66, 0x360301f4, 0x35f044e1, 0x35dc53e4, 0x35ca0a99, 0x35b945d4, 0x35a9e558,
        0x359bcb93, 0x358edd66, 0x358301f4, 0x357044e1, 0x355c53e5, 0x354a0a99, 0x353945d6, 0x3529e55a,
        0x351bcb94, 0x350edd67, 0x350301f5, 0x34f044e3, 0x34dc53e5, 0x34ca0a9a, 0x34b945d6, 0x34a9e55a,
        0x349bcb94, 0x348edd67, 0x348301f5, 0x347044e3, 0x345c53e7, 0x344a0a9a, 0x343945d7, 0x3429e55a,
        0x341bcb95, 0x340edd68, 0x340301f6, 0x33f044e4, 0x33dc53e7, 0x33ca0a9c, 0x33b945d7, 0x33a9e55b,
        0x339bcb95, 0x338edd68, 0x338301f6, 0x337044e5, 0x335c53e8, 0x334a0a9c, 0x333945d7, 0x3329e55b
    }},
    {1, 64, 79, 80, {
        0x3719d906, 0x370d143a, 0x37015eb9, 0x36ed4402, 0x36d992d6, 0x36c7840e, 0x36b6f4f3, 0x36a7c5ac,
        0x3699d906, 0x368d143a, 0x36815eb9, 0x366d4402, 0x365992d6, 0x3647840e, 0x3636f4f3, 0x3627c5ac,
        0x3619d906, 0x360d143a, 0x36015eb9, 0x35ed4402, 0x35d992d6, 0x35c7840e, 0x35b6f4f3, 0x35a7c5ac,
        0x3599d906, 0x358d143a, 0x35815eb9, 0x356d4402, 0x355992d6, 0x3547840e, 0x3536f4f3, 0x3527c5ac,
        0x3519d906, 0x350d143a, 0x35015eb9, 0x34ed4402, 0x34d992d6, 0x34c7840e, 0x34b6f4f3, 0x34a7c5ac,
        0x3499d906, 0x348d143a, 0x34815eb9, 0x346d4402, 0x345992d6, 0x3447840e, 0x3436f4f3, 0x3427c5ac,
        0x3419d906, 0x340d143a, 0x34015eb9, 0x33ed4402, 0x33d992d6, 0x33c7840e, 0x33b6f4f3, 0x33a7c5ac,
        0x3399d906, 0x338d143a, 0x33815eb9, 0x336d4402, 0x335992d6, 0x3347840e, 0x3336f4f3, 0x3327c5ac
    }},
    {0, 6, 2, 5, {
        0x3e4b3121, 0x3da14606, 0x3d0000bc, 0x3c4b3121, 0x3ba14605, 0x3b0000bc
    }},
    {1, 6, 2, 5, {
        0x3e0000a8, 0x3d0000a8, 0x3c0000a8, 0x3b0000a8, 0x3e8000a8, 0x3d8000a8
    }},
    {0, 12, 1, 4, {
        0x3ed707b5, 0x3e8775e3, 0x3e2aab65, 0x3dd707b7, 0x3d8775e3, 0x3d2aab66, 0x3cd707b7, 0x3c8775e3,
        0x3c2aab66, 0x3bd707b8, 0x3b8775e4, 0x3b2aab68
    }},
    {1, 12, 1, 4, {
        0x3eaaab52, 0x3e2aab52, 0x3daaab52, 0x3d2aab52, 0x3caaab52, 0x3c2aab52, 0x3baaab52, 0x3b2aab52,
        0x3ef15cdb, 0x3e715cdb, 0x3df15cdb, 0x3d715cdb
    }},
    {0, 48, 5, 10, {
        0x3ecabbda, 0x3eb49d83, 0x3ea0e8f0, 0x3e8f5abc, 0x3e7f6db5, 0x3e638f9b, 0x3e4abbd9, 0x3e349d82,
        0x3e20e8ee, 0x3e0f5abb, 0x3dff6db5, 0x3de38f9a, 0x3dcabbd7, 0x3db49d80, 0x3da0e8ee, 0x3d8f5aba,
        0x3d7f6db3, 0x3d638f99, 0x3d4abbd6, 0x3d349d7f, 0x3d20e8ed, 0x3d0f5ab9, 0x3cff6db1, 0x3ce38f98,
        0x3ccabbd5, 0x3cb49d7e, 0x3ca0e8ec, 0x3c8f5ab8, 0x3c7f6db0, 0x3c638f96, 0x3c4abbd3, 0x3c349d7d,
        0x3c20e8eb, 0x3c0f5ab7, 0x3bff6dae, 0x3be38f95, 0x3bcabbd3, 0x3bb49d7c, 0x3ba0e8ea, 0x3b8f5ab7,
        0x3b7f6dac, 0x3b638f93, 0x3b4abbd1, 0x3b349d7b, 0x3b20e8e9, 0x3b0f5ab6, 0x3aff6daa, 0x3ae38f92
    }},
    {1, 48, 5, 10, {
        0x3ebf5ade, 0x3ea0e8e1, 0x3e874ef2, 0x3e638f88, 0x3e3f5ade, 0x3e20e8e1, 0x3e074ef2, 0x3de38f88,
        0x3dbf5ade, 0x3da0e8e1, 0x3d874ef2, 0x3d638f88, 0x3d3f5ade, 0x3d20e8e1, 0x3d074ef2, 0x3ce38f88,
        0x3cbf5ade, 0x3ca0e8e1, 0x3c874ef2, 0x3c638f88, 0x3c3f5ade, 0x3c20e8e1, 0x3c074ef2, 0x3be38f88,
        0x3bbf5ade, 0x3ba0e8e1, 0x3b874ef2, 0x3b638f88, 0x3b3f5ade, 0x3b20e8e1, 0x3b074ef2, 0x3ae38f88,
        0x3ed0ac8f, 0x3eaf7928, 0x3e938e0a, 0x3e78281c, 0x3e50ac8f, 0x3e2f7928, 0x3e138e0a, 0x3df8281c,
        0x3dd0ac8f, 0x3daf7928, 0x3d938e0a, 0x3d78281c, 0x3d50ac8f, 0x3d2f7928, 0x3d138e0a, 0x3cf8281c
    }},
};

static int ulp_distance(float a, float b) {
    int32_t ia, ib;
    memcpy(&ia, &a, 4);
    memcpy(&ib, &b, 4);
    return abs(ia - ib);  // same sign here: slopes are positive
}

static void test_slopes(void) {
    int worst = 0, exact = 0, total = 0;
    for (size_t c = 0; c < sizeof slope_cases / sizeof slope_cases[0]; c++) {
        const slope_case *sc = &slope_cases[c];
        float s[64];
        lightning_slopes(s, sc->H, sc->layer, sc->n_layers, sc->original);
        int w = 0;
        for (int h = 0; h < sc->H; h++) {
            float ref;
            memcpy(&ref, &sc->bits[h], 4);
            int u = ulp_distance(s[h], ref);
            if (u > w) w = u;
            exact += u == 0;
            total++;
        }
        if (w > worst) worst = w;
        // torch evaluates the HF power in fp32 (vectorised pow, <= 1 ulp); the original list is exact double math
        test_check(w <= (sc->original ? 0 : 1), "slopes %s H=%d layer %d/%d: worst %d ulp",
                   sc->original ? "original" : "hf", sc->H, sc->layer, sc->n_layers, w);
    }
    printf("  slopes: %d/%d bit-exact vs torch, worst %d ulp\n", exact, total, worst);
}

// ---- double references ----

typedef struct {
    const int32_t *cu;
    int nseq, H, D;
    const float *slopes;
} ref_ctx;

// o [T,H,D] and state_out [nseq,H,D,D] (may be NULL) by the per-token recurrence in double;
// s0 may be NULL (zero state).
static void ref_forward(double *o, double *state_out, const double *q, const double *k, const double *v,
                        const double *s0, const ref_ctx *c) {
    int H = c->H, D = c->D;
    size_t DD = (size_t)D * D;
    double *S = ophelp_doubles(DD);
    for (int sq = 0; sq < c->nseq; sq++)
        for (int h = 0; h < H; h++) {
            double lam = exp(-(double)c->slopes[h]);
            size_t st = ((size_t)sq * H + h) * DD;
            for (size_t j = 0; j < DD; j++) S[j] = s0 ? s0[st + j] : 0.0;
            for (int t = c->cu[sq]; t < c->cu[sq + 1]; t++) {
                size_t row = ((size_t)t * H + h) * D;
                for (int a = 0; a < D; a++)
                    for (int b = 0; b < D; b++) S[a * D + b] = lam * S[a * D + b] + k[row + a] * v[row + b];
                for (int b = 0; b < D; b++) {
                    double acc = 0;
                    for (int a = 0; a < D; a++) acc += q[row + a] * S[a * D + b];
                    o[row + b] = acc;
                }
            }
            if (state_out) memcpy(state_out + st, S, DD * sizeof(double));
        }
    free(S);
}

// ophelp reference: in = {q, k, v, s0}
static void ref_forward_fn(double *out, double *const *in, const void *ctx) {
    ref_forward(out, NULL, in[0], in[1], in[2], in[3], ctx);
}

// Backward of the explicit form in double: dQ = ((dO V^T) o M) K + diag(lam^(t+1)) dO S0^T,
// dK = ((dO V^T) o M)^T Q, dV = ((Q K^T) o M)^T dO, dS0 = sum_t lam^(t+1) q_t^T dO_t (t from the
// sequence start). Overwrites its outputs; ds0 may be NULL, s0 may be NULL.
static void ref_backward_explicit(double *dq, double *dk, double *dv, double *ds0, const double *dout,
                                  const double *q, const double *k, const double *v, const double *s0,
                                  const ref_ctx *c) {
    int H = c->H, D = c->D;
    size_t DD = (size_t)D * D;
    size_t T = (size_t)c->cu[c->nseq];
    memset(dq, 0, T * H * D * sizeof(double));
    memset(dk, 0, T * H * D * sizeof(double));
    memset(dv, 0, T * H * D * sizeof(double));
    if (ds0) memset(ds0, 0, (size_t)c->nseq * H * DD * sizeof(double));
    for (int sq = 0; sq < c->nseq; sq++)
        for (int h = 0; h < H; h++) {
            double slope = c->slopes[h];
            int t0 = c->cu[sq], t1 = c->cu[sq + 1];
            size_t st = ((size_t)sq * H + h) * DD;
            for (int t = t0; t < t1; t++) {
                const double *qt = q + ((size_t)t * H + h) * D, *dot = dout + ((size_t)t * H + h) * D;
                double *dqt = dq + ((size_t)t * H + h) * D;
                for (int j = t0; j <= t; j++) {
                    size_t rj = ((size_t)j * H + h) * D;
                    double m = exp(-slope * (double)(t - j));
                    double dov = 0, qk = 0;
                    for (int d = 0; d < D; d++) {
                        dov += dot[d] * v[rj + d];
                        qk += qt[d] * k[rj + d];
                    }
                    for (int d = 0; d < D; d++) {
                        dqt[d] += m * dov * k[rj + d];
                        dk[rj + d] += m * dov * qt[d];
                        dv[rj + d] += m * qk * dot[d];
                    }
                }
                double m0 = exp(-slope * (double)(t - t0 + 1));
                for (int a = 0; a < D; a++)
                    for (int b = 0; b < D; b++) {
                        if (s0) dqt[a] += m0 * dot[b] * s0[st + (size_t)a * D + b];
                        if (ds0) ds0[st + (size_t)a * D + b] += m0 * qt[a] * dot[b];
                    }
            }
        }
}

// ---- helpers ----

typedef struct {
    int T, H, D, nseq;
    int32_t cu[16];
    float *q, *k, *v, *s0;  // s0 [nseq,H,D,D]
    float slopes[64];
} problem;

// lens: nseq lengths; slopes of a layer of an n_layers model (the decay spread that matters);
// inputs uniform in [-1, 1), states uniform in [-s_scale, s_scale).
static problem problem_make(const int *lens, int nseq, int H, int D, int layer, int n_layers, uint64_t *rng) {
    problem p;
    p.H = H;
    p.D = D;
    p.nseq = nseq;
    p.cu[0] = 0;
    for (int s = 0; s < nseq; s++) p.cu[s + 1] = p.cu[s] + lens[s];
    p.T = p.cu[nseq];
    size_t n = (size_t)p.T * H * D, ns = (size_t)nseq * H * D * D;
    p.q = ophelp_floats(n);
    p.k = ophelp_floats(n);
    p.v = ophelp_floats(n);
    p.s0 = ophelp_floats(ns);
    test_fill(p.q, n, rng, -1, 1);
    test_fill(p.k, n, rng, -1, 1);
    test_fill(p.v, n, rng, -1, 1);
    test_fill(p.s0, ns, rng, -1, 1);
    lightning_slopes(p.slopes, H, layer, n_layers, 0);
    return p;
}
static void problem_free(problem *p) {
    free(p->q);
    free(p->k);
    free(p->v);
    free(p->s0);
}
static size_t problem_n(const problem *p) { return (size_t)p->T * p->H * p->D; }
static size_t problem_ns(const problem *p) { return (size_t)p->nseq * p->H * p->D * p->D; }
static ref_ctx problem_ctx(const problem *p) { return (ref_ctx){p->cu, p->nseq, p->H, p->D, p->slopes}; }

static void describe(char *buf, size_t n, const problem *p, int block, int with_state) {
    int off = snprintf(buf, n, "T=%d H=%d D=%d B=%d%s lens", p->T, p->H, p->D, block, with_state ? " +S0" : "");
    for (int s = 0; s < p->nseq && off < (int)n; s++)
        off += snprintf(buf + off, n - off, "%s%d", s ? "," : " ", p->cu[s + 1] - p->cu[s]);
}

// ---- forward: chunked vs recurrent vs explicit vs the double reference ----

static void check_forward(const problem *p, int block, int with_state) {
    size_t n = problem_n(p), ns = problem_ns(p);
    ref_ctx c = problem_ctx(p);
    double *qd = ophelp_to_double(p->q, n), *kd = ophelp_to_double(p->k, n), *vd = ophelp_to_double(p->v, n);
    double *s0d = with_state ? ophelp_to_double(p->s0, ns) : NULL;
    double *o_ref = ophelp_doubles(n), *s_ref = ophelp_doubles(ns);
    ref_forward(o_ref, s_ref, qd, kd, vd, s0d, &c);

    const float *s0 = with_state ? p->s0 : NULL;
    float *o = ophelp_floats(n), *s = ophelp_floats(ns);
    float *o_rec = ophelp_floats(n), *s_rec = ophelp_floats(ns);
    lightning_forward_cpu(o, s, p->q, p->k, p->v, s0, p->slopes, p->cu, p->nseq, p->H, p->D, block);
    lightning_forward_recurrent_cpu(o_rec, s_rec, p->q, p->k, p->v, s0, p->slopes, p->cu, p->nseq, p->H, p->D);
    char kase[160];
    describe(kase, sizeof kase, p, block, with_state);
    ophelp_report("lightning_fwd", kase, ophelp_compare(o, o_ref, n).nerr, TOL_FWD, -1, 0);
    ophelp_report("lightning_fwd_state", kase, ophelp_compare(s, s_ref, ns).nerr, TOL_FWD, -1, 0);
    ophelp_report("lightning_recurrent", kase, ophelp_compare(o_rec, o_ref, n).nerr, TOL_FWD, -1, 0);
    ophelp_report("lightning_recur_state", kase, ophelp_compare(s_rec, s_ref, ns).nerr, TOL_FWD, -1, 0);
    if (!with_state && p->T <= 1200) {
        float *o_exp = ophelp_floats(n);
        lightning_forward_explicit_cpu(o_exp, p->q, p->k, p->v, p->slopes, p->cu, p->nseq, p->H, p->D);
        ophelp_report("lightning_explicit", kase, ophelp_compare(o_exp, o_ref, n).nerr, TOL_FWD, -1, 0);
        // the chunked form against the explicit form directly, too (both fp32 outputs)
        TEST_LE(test_rel_l2(o, o_exp, n), TOL_FWD, "chunked vs explicit %s", kase);
        free(o_exp);
    }
    TEST_LE(test_rel_l2(o, o_rec, n), TOL_FWD, "chunked vs recurrent %s", kase);
    free(qd), free(kd), free(vd), free(s0d), free(o_ref), free(s_ref);
    free(o), free(s), free(o_rec), free(s_rec);
}

static void test_forward(uint64_t *rng) {
    static const struct {
        int nseq, lens[6], H, D, block, layer, n_layers;
    } cases[] = {
        {1, {1}, 1, 1, 1, 0, 1},               // smallest possible
        {1, {1}, 2, 8, 256, 0, 8},             // T = 1, T < block
        {1, {5}, 2, 8, 16, 3, 8},              // T < block
        {1, {16}, 2, 8, 16, 3, 8},             // T = block
        {1, {37}, 3, 5, 8, 1, 4},              // T not a multiple of block, odd sizes
        {1, {37}, 3, 5, 1, 1, 4},              // block = 1
        {1, {64}, 4, 16, 7, 0, 80},            // block not dividing anything
        {3, {1, 17, 40}, 2, 8, 16, 2, 8},      // packed, mixed lengths
        {4, {9, 0, 33, 2}, 2, 4, 8, 5, 8},     // an empty sequence in the pack
        {2, {300, 129}, 4, 32, 64, 40, 80},    // multi-chunk, partial last chunks
        {2, {513, 255}, 8, 64, 256, 79, 80},   // last layer: lam ~ 1 (almost no decay)
        {1, {1000}, 8, 128, 256, 0, 80},       // M1 head size, strongest decay
        {1, {4096}, 8, 64, 256, 20, 80},       // long sequence vs the recurrence
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        problem p = problem_make(cases[i].lens, cases[i].nseq, cases[i].H, cases[i].D, cases[i].layer,
                                 cases[i].n_layers, rng);
        check_forward(&p, cases[i].block, 0);
        if (p.T <= 1200) check_forward(&p, cases[i].block, 1);
        problem_free(&p);
    }
    // block sizes around the length, same problem: all must agree with the reference
    int lens[3] = {23, 48, 7};
    problem p = problem_make(lens, 3, 2, 8, 1, 3, rng);
    int blocks[] = {1, 2, 3, 7, 8, 16, 23, 24, 47, 48, 49, 1000};
    for (size_t b = 0; b < sizeof blocks / sizeof blocks[0]; b++) check_forward(&p, blocks[b], 1);
    problem_free(&p);
}

// ---- decode steps continuing a prefill reproduce the forward over the whole sequences ----

static void test_decode(uint64_t *rng) {
    enum { NSEQ = 3, STEPS = 9 };
    int H = 4, D = 16, block = 8;
    int prefill[NSEQ] = {0, 5, 20}, lens[NSEQ];
    for (int s = 0; s < NSEQ; s++) lens[s] = prefill[s] + STEPS;
    problem full = problem_make(lens, NSEQ, H, D, 2, 8, rng);
    size_t n = problem_n(&full), ns = problem_ns(&full);
    // reference: one forward over everything, from the initial states
    float *o_full = ophelp_floats(n), *s_full = ophelp_floats(ns);
    lightning_forward_cpu(o_full, s_full, full.q, full.k, full.v, full.s0, full.slopes, full.cu, NSEQ, H, D, block);
    // prefill: the first prefill[s] tokens of each sequence, packed (a zero-length prefill keeps S0)
    int32_t cu_pre[NSEQ + 1] = {0};
    for (int s = 0; s < NSEQ; s++) cu_pre[s + 1] = cu_pre[s] + prefill[s];
    size_t hd = (size_t)H * D;
    float *qp = ophelp_floats(cu_pre[NSEQ] * hd + 1), *kp = ophelp_floats(cu_pre[NSEQ] * hd + 1);
    float *vp = ophelp_floats(cu_pre[NSEQ] * hd + 1), *op = ophelp_floats(cu_pre[NSEQ] * hd + 1);
    for (int s = 0; s < NSEQ; s++) {
        size_t src = full.cu[s] * hd, dst = cu_pre[s] * hd, len = prefill[s] * hd;
        memcpy(qp + dst, full.q + src, len * sizeof(float));
        memcpy(kp + dst, full.k + src, len * sizeof(float));
        memcpy(vp + dst, full.v + src, len * sizeof(float));
    }
    float *state = ophelp_floats(ns);
    lightning_forward_cpu(op, state, qp, kp, vp, full.s0, full.slopes, cu_pre, NSEQ, H, D, block);
    double worst_o = 0;
    for (int s = 0; s < NSEQ; s++)
        if (prefill[s]) {
            size_t n_s = prefill[s] * hd;
            double e = test_rel_l2(op + cu_pre[s] * hd, o_full + full.cu[s] * hd, n_s);
            if (e > worst_o) worst_o = e;
        }
    // decode: step j feeds token prefill[s] + j of every sequence
    float *qs = ophelp_floats(NSEQ * hd), *ks = ophelp_floats(NSEQ * hd), *vs = ophelp_floats(NSEQ * hd);
    float *os = ophelp_floats(NSEQ * hd);
    for (int j = 0; j < STEPS; j++) {
        for (int s = 0; s < NSEQ; s++) {
            size_t src = (full.cu[s] + prefill[s] + j) * hd;
            memcpy(qs + s * hd, full.q + src, hd * sizeof(float));
            memcpy(ks + s * hd, full.k + src, hd * sizeof(float));
            memcpy(vs + s * hd, full.v + src, hd * sizeof(float));
        }
        lightning_decode_cpu(os, state, qs, ks, vs, full.slopes, NSEQ, H, D);
        for (int s = 0; s < NSEQ; s++) {
            double e = test_rel_l2(os + s * hd, o_full + (full.cu[s] + prefill[s] + j) * hd, hd);
            if (e > worst_o) worst_o = e;
        }
    }
    double es = test_rel_l2(state, s_full, ns);
    ophelp_report("lightning_decode", "prefill 0,5,20 + 9 steps, H=4 D=16", worst_o, TOL_FWD, -1, 0);
    ophelp_report("lightning_decode_state", "prefill 0,5,20 + 9 steps, H=4 D=16", es, TOL_FWD, -1, 0);
    free(o_full), free(s_full), free(qp), free(kp), free(vp), free(op), free(state);
    free(qs), free(ks), free(vs), free(os);
    problem_free(&full);
}

// ---- backward ----

// dq, dk, dv, ds0 from lightning_backward_cpu with dout = r, started from random values (the op
// must accumulate) and returned as what the op added.
static void run_backward(const problem *p, const float *r, int block, int with_state, float *dq, float *dk,
                         float *dv, float *ds0, uint64_t *rng) {
    size_t n = problem_n(p), ns = problem_ns(p);
    float *sq = ophelp_acc_begin(dq, n, rng), *sk = ophelp_acc_begin(dk, n, rng);
    float *sv = ophelp_acc_begin(dv, n, rng), *ss = ophelp_acc_begin(ds0, ns, rng);
    lightning_backward_cpu(dq, dk, dv, ds0, r, p->q, p->k, p->v, with_state ? p->s0 : NULL, p->slopes, p->cu,
                           p->nseq, p->H, p->D, block);
    ophelp_acc_end(dq, sq, n);
    ophelp_acc_end(dk, sk, n);
    ophelp_acc_end(dv, sv, n);
    ophelp_acc_end(ds0, ss, ns);
}

// vs central differences of the double recurrence (all elements: small problems)
static void check_backward_fd(const problem *p, int block, int with_state, uint64_t *rng) {
    size_t n = problem_n(p), ns = problem_ns(p);
    ref_ctx c = problem_ctx(p);
    float *r = ophelp_floats(n);
    test_fill(r, n, rng, -1, 1);
    float *dq = ophelp_floats(n), *dk = ophelp_floats(n), *dv = ophelp_floats(n), *ds0 = ophelp_floats(ns);
    run_backward(p, r, block, with_state, dq, dk, dv, ds0, rng);
    double *rd = ophelp_to_double(r, n);
    ophelp_gradcheck g = {.ref = ref_forward_fn, .ctx = &c, .out_n = n, .r = rd, .n_in = 4, .max_samples = 0};
    g.in[0] = ophelp_to_double(p->q, n), g.in_n[0] = n, g.grad[0] = dq;
    g.in[1] = ophelp_to_double(p->k, n), g.in_n[1] = n, g.grad[1] = dk;
    g.in[2] = ophelp_to_double(p->v, n), g.in_n[2] = n, g.grad[2] = dv;
    g.in[3] = with_state ? ophelp_to_double(p->s0, ns) : NULL, g.in_n[3] = ns, g.grad[3] = with_state ? ds0 : NULL;
    if (!with_state) g.n_in = 3;
    int worst_in;
    double err = ophelp_grad_err(&g, rng, &worst_in);
    char kase[160];
    describe(kase, sizeof kase, p, block, with_state);
    ophelp_report("lightning_bwd_fd", kase, -1, 0, err, TOL_GRAD);
    for (int a = 0; a < 4; a++) free(g.in[a]);
    free(rd), free(r), free(dq), free(dk), free(dv), free(ds0);
}

// vs the explicit-form backward in double (larger problems, every element)
static void check_backward_explicit(const problem *p, int block, int with_state, uint64_t *rng) {
    size_t n = problem_n(p), ns = problem_ns(p);
    ref_ctx c = problem_ctx(p);
    float *r = ophelp_floats(n);
    test_fill(r, n, rng, -1, 1);
    float *dq = ophelp_floats(n), *dk = ophelp_floats(n), *dv = ophelp_floats(n), *ds0 = ophelp_floats(ns);
    run_backward(p, r, block, with_state, dq, dk, dv, ds0, rng);
    double *rd = ophelp_to_double(r, n), *qd = ophelp_to_double(p->q, n), *kd = ophelp_to_double(p->k, n);
    double *vd = ophelp_to_double(p->v, n), *s0d = with_state ? ophelp_to_double(p->s0, ns) : NULL;
    double *dqr = ophelp_doubles(n), *dkr = ophelp_doubles(n), *dvr = ophelp_doubles(n), *dsr = ophelp_doubles(ns);
    ref_backward_explicit(dqr, dkr, dvr, dsr, rd, qd, kd, vd, s0d, &c);
    double e = 0, x;
    if ((x = ophelp_compare(dq, dqr, n).nerr) > e) e = x;
    if ((x = ophelp_compare(dk, dkr, n).nerr) > e) e = x;
    if ((x = ophelp_compare(dv, dvr, n).nerr) > e) e = x;
    if ((x = ophelp_compare(ds0, dsr, ns).nerr) > e) e = x;  // dstate_in is defined with or without S0
    char kase[160];
    describe(kase, sizeof kase, p, block, with_state);
    ophelp_report("lightning_bwd_explicit", kase, -1, 0, e, TOL_GRAD);
    // dstate_in may be NULL: the other gradients do not change
    float *dq2 = ophelp_floats(n), *dk2 = ophelp_floats(n), *dv2 = ophelp_floats(n);
    lightning_backward_cpu(dq2, dk2, dv2, NULL, r, p->q, p->k, p->v, with_state ? p->s0 : NULL, p->slopes, p->cu,
                           p->nseq, p->H, p->D, block);
    // (dq etc. started from random values, so compare within rounding, not bits)
    test_check(test_rel_l2(dq2, dq, n) < 1e-6 && test_rel_l2(dk2, dk, n) < 1e-6 && test_rel_l2(dv2, dv, n) < 1e-6,
               "backward with dstate_in NULL agrees %s", kase);
    free(dq2), free(dk2), free(dv2);
    free(rd), free(qd), free(kd), free(vd), free(s0d), free(dqr), free(dkr), free(dvr), free(dsr);
    free(r), free(dq), free(dk), free(dv), free(ds0);
}

static void test_backward(uint64_t *rng) {
    static const struct {
        int nseq, lens[4], H, D, block, layer, n_layers;
    } fd_cases[] = {
        {1, {1}, 1, 3, 4, 0, 2},             // T = 1
        {1, {6}, 2, 4, 16, 1, 8},            // T < block
        {1, {11}, 2, 4, 4, 0, 8},            // T not a multiple of block
        {1, {9}, 2, 3, 1, 2, 8},             // block = 1
        {3, {5, 1, 12}, 2, 4, 4, 3, 8},      // packed, mixed lengths
        {3, {7, 0, 10}, 1, 5, 3, 7, 8},      // empty sequence, last layer (lam ~ 1)
    };
    for (size_t i = 0; i < sizeof fd_cases / sizeof fd_cases[0]; i++) {
        problem p = problem_make(fd_cases[i].lens, fd_cases[i].nseq, fd_cases[i].H, fd_cases[i].D,
                                 fd_cases[i].layer, fd_cases[i].n_layers, rng);
        check_backward_fd(&p, fd_cases[i].block, 0, rng);
        check_backward_fd(&p, fd_cases[i].block, 1, rng);
        problem_free(&p);
    }
    static const struct {
        int nseq, lens[4], H, D, block, layer, n_layers;
    } ex_cases[] = {
        {1, {1}, 2, 8, 64, 0, 8},
        {1, {50}, 2, 8, 1, 1, 8},
        {2, {130, 77}, 2, 16, 32, 3, 8},
        {3, {256, 1, 100}, 4, 32, 64, 0, 80},
        {2, {300, 211}, 4, 64, 100, 79, 80},
        {1, {600}, 2, 128, 256, 10, 80},
    };
    for (size_t i = 0; i < sizeof ex_cases / sizeof ex_cases[0]; i++) {
        problem p = problem_make(ex_cases[i].lens, ex_cases[i].nseq, ex_cases[i].H, ex_cases[i].D,
                                 ex_cases[i].layer, ex_cases[i].n_layers, rng);
        check_backward_explicit(&p, ex_cases[i].block, 0, rng);
        check_backward_explicit(&p, ex_cases[i].block, 1, rng);
        problem_free(&p);
    }
}

// ---- M1 head size at T = 4096: errors vs a double recurrence (forward and backward), timings ----

// Backward by recurrences in double, O(T D^2) per head: dq_t = dO_t S_t^T; with
// G_t = sum_{u >= t} lam^(u-t) q_u^T dO_u: dk_t = v_t G_t^T, dv_t = k_t G_t; dS0 = lam G_first.
static void ref_backward_recurrent(double *dq, double *dk, double *dv, double *ds0, const double *dout,
                                   const double *q, const double *k, const double *v, const double *s0,
                                   const ref_ctx *c) {
    int H = c->H, D = c->D;
    size_t DD = (size_t)D * D;
    double *S = ophelp_doubles(DD);
    for (int sq = 0; sq < c->nseq; sq++)
        for (int h = 0; h < H; h++) {
            double lam = exp(-(double)c->slopes[h]);
            size_t st = ((size_t)sq * H + h) * DD;
            for (size_t j = 0; j < DD; j++) S[j] = s0 ? s0[st + j] : 0.0;
            for (int t = c->cu[sq]; t < c->cu[sq + 1]; t++) {
                size_t row = ((size_t)t * H + h) * D;
                for (int a = 0; a < D; a++) {
                    double acc = 0;
                    for (int b = 0; b < D; b++) {
                        S[a * D + b] = lam * S[a * D + b] + k[row + a] * v[row + b];
                        acc += dout[row + b] * S[a * D + b];
                    }
                    dq[row + a] = acc;
                }
            }
            memset(S, 0, DD * sizeof(double));  // now G
            for (int t = c->cu[sq + 1] - 1; t >= c->cu[sq]; t--) {
                size_t row = ((size_t)t * H + h) * D;
                for (int a = 0; a < D; a++)
                    for (int b = 0; b < D; b++) S[a * D + b] = lam * S[a * D + b] + q[row + a] * dout[row + b];
                for (int a = 0; a < D; a++) {
                    double gk = 0, gv = 0;
                    for (int b = 0; b < D; b++) {
                        gk += S[a * D + b] * v[row + b];       // (v G^T)[a]
                        gv += k[row + b] * S[b * D + a];       // (k G)[a]
                    }
                    dk[row + a] = gk;
                    dv[row + a] = gv;
                }
            }
            for (size_t j = 0; j < DD; j++) ds0[st + j] = lam * S[j];
        }
    free(S);
}

typedef struct {
    const problem *p;
    float *o, *dq, *dk, *dv, *ds0;
    const float *r;
    int block;
} perf_ctx;
static void perf_fwd(void *ctx) {
    perf_ctx *c = ctx;
    lightning_forward_cpu(c->o, NULL, c->p->q, c->p->k, c->p->v, NULL, c->p->slopes, c->p->cu, c->p->nseq, c->p->H,
                          c->p->D, c->block);
}
static void perf_bwd(void *ctx) {
    perf_ctx *c = ctx;
    lightning_backward_cpu(c->dq, c->dk, c->dv, NULL, c->r, c->p->q, c->p->k, c->p->v, NULL, c->p->slopes, c->p->cu,
                           c->p->nseq, c->p->H, c->p->D, c->block);
}

static void test_m1_size(uint64_t *rng, int perf) {
    int T = 4096, H = 8, D = 128, block = 256;
    problem p = problem_make(&T, 1, H, D, 0, 80, rng);
    size_t n = problem_n(&p), ns = problem_ns(&p);
    ref_ctx c = problem_ctx(&p);
    float *o = ophelp_floats(n), *s = ophelp_floats(ns), *r = ophelp_floats(n);
    test_fill(r, n, rng, -1, 1);
    float *dq = ophelp_floats(n), *dk = ophelp_floats(n), *dv = ophelp_floats(n), *ds0 = ophelp_floats(ns);
    lightning_forward_cpu(o, s, p.q, p.k, p.v, p.s0, p.slopes, p.cu, 1, H, D, block);
    lightning_backward_cpu(dq, dk, dv, ds0, r, p.q, p.k, p.v, p.s0, p.slopes, p.cu, 1, H, D, block);
    double *qd = ophelp_to_double(p.q, n), *kd = ophelp_to_double(p.k, n), *vd = ophelp_to_double(p.v, n);
    double *s0d = ophelp_to_double(p.s0, ns), *rd = ophelp_to_double(r, n);
    double *o_ref = ophelp_doubles(n), *s_ref = ophelp_doubles(ns);
    double *dqr = ophelp_doubles(n), *dkr = ophelp_doubles(n), *dvr = ophelp_doubles(n), *dsr = ophelp_doubles(ns);
    ref_forward(o_ref, s_ref, qd, kd, vd, s0d, &c);
    ref_backward_recurrent(dqr, dkr, dvr, dsr, rd, qd, kd, vd, s0d, &c);
    const char *kase = "T=4096 H=8 D=128 B=256 +S0";
    double ef = ophelp_compare(o, o_ref, n).nerr, es = ophelp_compare(s, s_ref, ns).nerr;
    if (es > ef) ef = es;
    double eb = 0, x;
    if ((x = ophelp_compare(dq, dqr, n).nerr) > eb) eb = x;
    if ((x = ophelp_compare(dk, dkr, n).nerr) > eb) eb = x;
    if ((x = ophelp_compare(dv, dvr, n).nerr) > eb) eb = x;
    if ((x = ophelp_compare(ds0, dsr, ns).nerr) > eb) eb = x;
    ophelp_report("lightning_m1_size", kase, ef, TOL_FWD, eb, TOL_GRAD);
    printf("  T=4096 H=8 D=128: fwd max|err| %.2e, bwd max|err| dq %.2e dk %.2e dv %.2e ds0 %.2e\n",
           ophelp_compare(o, o_ref, n).max_abs, ophelp_compare(dq, dqr, n).max_abs,
           ophelp_compare(dk, dkr, n).max_abs, ophelp_compare(dv, dvr, n).max_abs,
           ophelp_compare(ds0, dsr, ns).max_abs);
    if (perf) {
        perf_ctx pc = {&p, o, dq, dk, dv, ds0, r, block};
        double hd = (double)H * T;
        // chunked FLOPs: intra 2*(B*D) per token per product, inter and state 2*D*D per product
        double f_fwd = hd * (2.0 * 2 * block * D + 2.0 * 2 * D * D);
        double f_bwd = hd * (3.0 * 2 * 2 * block * D + 5.0 * 2 * D * D);
        ophelp_perf_line("lightning_forward_cpu", kase, ophelp_time_us(perf_fwd, &pc, 2.0), f_fwd, 0);
        ophelp_perf_line("lightning_backward_cpu", kase, ophelp_time_us(perf_bwd, &pc, 2.0), f_bwd, 0);
    }
    free(qd), free(kd), free(vd), free(s0d), free(rd), free(o_ref), free(s_ref);
    free(dqr), free(dkr), free(dvr), free(dsr);
    free(o), free(s), free(r), free(dq), free(dk), free(dv), free(ds0);
    problem_free(&p);
}

int main(int argc, char **argv) {
    int perf = argc > 1 && strcmp(argv[1], "--perf") == 0;
    uint64_t rng = 0x11637a1e;
    test_slopes();
    test_forward(&rng);
    test_decode(&rng);
    test_backward(&rng);
    test_m1_size(&rng, perf);
    ophelp_print_worst();
    return test_finish("test_lightning");
}
