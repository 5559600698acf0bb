// tests/test_model_grad.c — the whole network's backward pass against central finite differences, on
// the tiny preset (configs/models/tiny.yaml), on an original-flavour variant of it (RoPE over half
// the head dims, pre-norm residuals, the original slopes) and on variants with a sliding window, other
// hidden_act and rope types (yarn, dynamic, longrope, proportional), plus packing, determinism and
// pad_token_id's embedding gradient:
//   - gradient check: Loss = sum_t c_t logp_t + aux_coef * aux_loss (random c_t, as CISPO weights tokens),
//     accumulated in double; for EVERY parameter tensor, its 3 largest-|g| entries and 3 random ones;
//     the perturbed forwards replay the unperturbed forward's routes (model.h route_replay: a top-K flip
//     would make the loss discontinuous), and replaying a forward's own routes must give the same bits;
//     per tensor ||fd - g|| / ||g|| over the sample <= 1e-2.
//   - forward: log-probs of two packed sequences against an independent double-precision forward written
//     from docs/model.md in this file (no kernels/ ops), for both flavours;
//   - packing two sequences gives the log-probs of running each alone;
//   - forward (and backward) twice is bit-identical;
//   - activation recompute (MODEL_RECOMPUTE, and MODEL_RECOMPUTE_CHEAP): the same log-probs, load-balancing loss, routes and gradients,
//     bit for bit, over two accumulated micro-batches (one with replayed routes, one at logit_scale 1/0.7),
//     with arenas a fraction of the size.
//     ./test_model_grad            the checks
//     ./test_model_grad --bench    also CPU tokens/s of forward + backward on the tiny preset (printed)
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/common.h"
#include "kernels/cpu/ops_cpu.h"
#include "model/config.h"
#include "model/model.h"
#include "model/params.h"
#include "tests/act_ref.h"
#include "tests/testutil.h"

#define GRAD_TOL 1e-2
#define FD_EPS 1e-2

// Weights large enough that every part of the network matters (as tests/parity/make_fixtures.py):
// norms 1 + 0.2 n, matrices n / sqrt(fan_in), the router 1.5x so routing is decisive.
static void randomise(float *p, const param_table_t *t, uint64_t seed) {
    uint64_t s = seed;
    for (int i = 0; i < t->n_entries; i++) {
        const param_entry_t *e = &t->entries[i];
        int router = strstr(e->name, "block_sparse_moe.gate.") != NULL;
        double scale = e->ndim == 1 ? 0.2 : (router ? 1.5 : 1.0) / sqrt((double)e->shape[1]);
        for (size_t j = 0; j < e->numel; j++) {
            double u1 = test_uniform(&s, 1e-12, 1), u2 = test_uniform(&s, 0, 1);
            double n = sqrt(-2 * log(u1)) * cos(6.283185307179586 * u2);
            p[e->offset + j] = (float)(e->ndim == 1 ? 1.0 + scale * n : scale * n);
        }
    }
}

typedef struct {
    model_t *m;
    const int32_t *ids, *cu, *targets;
    int nseq, T;
    const float *coef;  // c_t
    float aux_coef;
    float *logp;
} batch_t;

static double eval_loss(batch_t *b) {
    CISPO_ASSERT(model_forward(b->m, b->ids, b->cu, b->nseq, b->T) == 0);
    model_logprobs(b->m, b->targets, b->logp, NULL);
    double L = 0;
    for (int t = 0; t < b->T; t++) L += (double)b->coef[t] * b->logp[t];
    return L + (double)b->aux_coef * b->m->aux_loss;
}

// All layers' top-K choices of the last forward (model_routes), [n_layers][T][K].
static void snapshot_routing(const model_t *m, int32_t *out) {
    size_t TK = (size_t)m->T * m->cfg.n_experts_per_tok;
    for (int l = 0; l < m->cfg.n_layers; l++) model_routes(m, l, out + l * TK);
}

// logit_scale of the model under gradcheck (RL trains with 1 / the rollout temperature)
static float g_logit_scale = 1.0f;

static void gradcheck(const char *label, const model_config_t *cfg, uint64_t seed) {
    // two packed sequences; lengths not multiples of the block so chunks straddle the boundary
    const int lens[2] = {21, 19}, nseq = 2, T = 40;
    int32_t cu[3] = {0, lens[0], lens[0] + lens[1]};
    int32_t ids[40], targets[40];
    float coef[40], logp[40];
    uint64_t s = seed;
    for (int t = 0; t < T; t++) ids[t] = (int32_t)(test_rng_next(&s) % (uint64_t)cfg->vocab_size);
    for (int q = 0; q < nseq; q++)
        for (int t = cu[q]; t < cu[q + 1]; t++) targets[t] = t + 1 < cu[q + 1] ? ids[t + 1] : -1;
    for (int t = 0; t < T; t++) coef[t] = targets[t] >= 0 ? (float)test_uniform(&s, -1.5, 0.5) : 0.0f;

    model_t *m = model_create(cfg, NULL, T);
    m->logit_scale = g_logit_scale;
    randomise(m->params, &m->table, seed + 1);
    batch_t b = {m, ids, cu, targets, nseq, T, coef, 0.1f, logp};

    eval_loss(&b);
    model_zero_grad(m);
    model_backward(m, coef, b.aux_coef);
    const size_t TK = (size_t)T * cfg->n_experts_per_tok;
    int32_t *route0 = cispo_malloc((size_t)cfg->n_layers * TK * sizeof(int32_t));
    int32_t *route1 = cispo_malloc((size_t)cfg->n_layers * TK * sizeof(int32_t));
    snapshot_routing(m, route0);
    // The perturbed forwards replay these routes (model.h route_replay): the loss is then smooth in every
    // parameter, so no perturbation lands across a router near-tie. The replayed forward must still agree
    // with the routed one to the bit.
    m->route_replay = route0;
    {
        float *lp0 = cispo_malloc(sizeof(float) * T);
        memcpy(lp0, logp, sizeof(float) * T);
        eval_loss(&b);
        snapshot_routing(m, route1);
        test_check(!memcmp(lp0, logp, sizeof(float) * T) &&
                       !memcmp(route0, route1, (size_t)cfg->n_layers * TK * sizeof(int32_t)),
                   "%s: replaying a forward's own routes gives the same log-probs bit for bit", label);
        free(lp0);
    }

    double worst = 0;
    const char *worst_name = "-";
    int checked = 0;
    for (int i = 0; i < m->table.n_entries; i++) {
        const param_entry_t *e = &m->table.entries[i];
        const float *g = (const float *)m->grads + e->offset;
        // the 3 largest |g|, then random entries
        size_t pick[6];
        int np = 0;
        for (int k = 0; k < 3 && k < (int)e->numel; k++) {
            size_t best = SIZE_MAX;
            for (size_t j = 0; j < e->numel; j++) {
                int used = 0;
                for (int q = 0; q < np; q++) used |= pick[q] == j;
                if (!used && (best == SIZE_MAX || fabsf(g[j]) > fabsf(g[best]))) best = j;
            }
            pick[np++] = best;
        }
        double num = 0, den = 0;
        int n_ok = 0, tries = 0;
        for (int k = 0; n_ok < 6 && tries < 40; k++, tries++) {
            size_t j = k < np ? pick[k] : (size_t)(test_rng_next(&s) % e->numel);
            float *p = m->params + e->offset + j;
            const float p0 = *p;
            *p = p0 + (float)FD_EPS;
            double lp = eval_loss(&b);
            *p = p0 - (float)FD_EPS;
            double lm = eval_loss(&b);
            *p = p0;
            double fd = (lp - lm) / (2.0 * FD_EPS);
            num += (fd - g[j]) * (fd - g[j]);
            den += (double)g[j] * g[j];
            n_ok++;
        }
        checked += n_ok;
        double err = den > 0 ? sqrt(num / den) : sqrt(num);
        if (!test_check(n_ok >= 3 && err <= GRAD_TOL, "%s: %s: finite-difference relative error %.3g over %d entries",
                        label, e->name, err, n_ok))
            continue;
        if (err > worst) {
            worst = err;
            worst_name = e->name;
        }
    }
    printf("%s: gradient check of %d tensors, %d entries (routes replayed): worst rel %.2e (%s)\n", label,
           m->table.n_entries, checked, worst, worst_name);
    free(route0);
    free(route1);
    model_free(m);
}

// ---- an independent forward in double, straight from docs/model.md (no kernels/ ops): per sequence,
// recurrent lightning, naive causal attention with partial RoPE, per-token experts ----

static void ref_rmsnorm(double *out, const double *x, const float *w, int n, double eps) {
    double ss = 0;
    for (int i = 0; i < n; i++) ss += x[i] * x[i];
    double r = 1.0 / sqrt(ss / n + eps);
    for (int i = 0; i < n; i++) out[i] = (double)w[i] * x[i] * r;
}



// y[r] = sum_c W[r, c] x[c], W [rows, cols] fp32
static void ref_linear(double *y, const float *W, const double *x, int rows, int cols) {
    for (int r = 0; r < rows; r++) {
        double s = 0;
        for (int c = 0; c < cols; c++) s += (double)W[(size_t)r * cols + c] * x[c];
        y[r] = s;
    }
}

// logp [n] of one sequence ids [n] (targets = next ids; the last gets 0)
static void ref_sequence(const model_config_t *c, const param_table_t *t, const float *P, const int32_t *ids, int n,
                         double *logp) {
    const int C = c->hidden_size, H = c->n_heads, D = c->head_dim, A = H * D, KV = c->n_kv_heads, N = c->n_layers;
    const int E = c->n_experts, K = c->n_experts_per_tok, F = c->intermediate_size, V = c->vocab_size;
    const int R = c->rotary_dim, W = c->sliding_window, act = c->hidden_act;
    // RoPE frequencies of this sequence (the rope types' formulas are checked against transformers by
    // the parity fixtures; here: their use, per sequence, with the cos/sin scale)
    float inv_freq[MODEL_MAX_ROPE_PAIRS], rope_scale;
    model_rope_inv_freq(c, n, inv_freq, &rope_scale);
    double *x = calloc((size_t)n * C, sizeof(double)), *h = calloc((size_t)n * C, sizeof(double));
    double *q = calloc((size_t)n * A, sizeof(double)), *k = calloc((size_t)n * A, sizeof(double));
    double *v = calloc((size_t)n * A, sizeof(double)), *o = calloc((size_t)n * A, sizeof(double));
    double *S = calloc((size_t)H * D * D, sizeof(double)), *tmp = calloc((size_t)3 * A + 2 * F + C + V, sizeof(double));
    double *x1 = calloc((size_t)n * C, sizeof(double)), *h2 = calloc((size_t)n * C, sizeof(double));
    for (int i = 0; i < n; i++)
        for (int j = 0; j < C; j++) x[(size_t)i * C + j] = P[t->embed + (size_t)ids[i] * C + j];
    for (int l = 0; l < N; l++) {
        const layer_params_t *lp = &t->layers[l];
        const int lightning = c->layer_kind[l] == LAYER_LIGHTNING;
        for (int i = 0; i < n; i++)
            ref_rmsnorm(h + (size_t)i * C, x + (size_t)i * C, P + lp->input_norm, C, c->rms_norm_eps);
        double *attn = calloc((size_t)n * C, sizeof(double));
        if (lightning) {
            double factor = c->flavour == MODEL_FLAVOUR_ORIGINAL ? 1.0 - (double)l / (N - 1) + 1e-5
                                                                 : 1.0 - (double)l / (N - 1 + 1e-5) + 1e-5;
            memset(S, 0, sizeof(double) * H * D * D);
            for (int i = 0; i < n; i++) {
                ref_linear(tmp, P + lp->qkv, h + (size_t)i * C, 3 * A, C);
                for (int hh = 0; hh < H; hh++) {
                    const double *qh = tmp + hh * 3 * D, *kh = qh + D, *vh = qh + 2 * D;
                    double lam = exp(-pow(2.0, -8.0 * (hh + 1) / H) * factor);
                    double *Sh = S + (size_t)hh * D * D;
                    for (int a = 0; a < D; a++)
                        for (int b = 0; b < D; b++)
                            Sh[a * D + b] = lam * Sh[a * D + b] + act_ref_d(act, kh[a]) * act_ref_d(act, vh[b]);
                    for (int b = 0; b < D; b++) {
                        double s = 0;
                        for (int a = 0; a < D; a++) s += act_ref_d(act, qh[a]) * Sh[a * D + b];
                        o[(size_t)i * A + hh * D + b] = s;
                    }
                }
                double *on = tmp, *g = tmp + A;
                ref_rmsnorm(on, o + (size_t)i * A, P + lp->out_norm, A, 1e-6);
                ref_linear(g, P + lp->gate, h + (size_t)i * C, A, C);
                for (int j = 0; j < A; j++) on[j] *= 1.0 / (1.0 + exp(-g[j]));
                ref_linear(attn + (size_t)i * C, P + lp->out, on, C, A);
            }
        } else {
            for (int i = 0; i < n; i++) {
                ref_linear(q + (size_t)i * A, P + lp->wq, h + (size_t)i * C, A, C);
                ref_linear(k + (size_t)i * KV * D, P + lp->wk, h + (size_t)i * C, KV * D, C);
                ref_linear(v + (size_t)i * KV * D, P + lp->wv, h + (size_t)i * C, KV * D, C);
                // NeoX rotate-half over the first R dims: pairs (j, j + R/2), angle pos * inv_freq[j]
                // (the fp32 angle, as transformers), cos and sin times the scale
                for (int which = 0; which < 2; which++) {
                    int nh = which ? KV : H;
                    double *base = (which ? k : q) + (size_t)i * nh * D;
                    for (int hh = 0; hh < nh; hh++)
                        for (int j = 0; j < R / 2; j++) {
                            double ang = (float)i * inv_freq[j];
                            double cs = cos(ang) * rope_scale, sn = sin(ang) * rope_scale;
                            double *a0 = base + hh * D + j, *a1 = a0 + R / 2;
                            double u = *a0, w = *a1;
                            *a0 = u * cs - w * sn;
                            *a1 = w * cs + u * sn;
                        }
                }
            }
            for (int i = 0; i < n; i++) {
                for (int hh = 0; hh < H; hh++) {
                    int kvh = hh / (H / KV);
                    double mx = -INFINITY, *sc = tmp, den = 0;
                    const int j0 = W > 0 && i - W + 1 > 0 ? i - W + 1 : 0;  // sliding window: i - j < W
                    for (int j = j0; j <= i; j++) {
                        double s = 0;
                        for (int d = 0; d < D; d++)
                            s += q[(size_t)i * A + hh * D + d] * k[((size_t)j * KV + kvh) * D + d];
                        sc[j] = s / sqrt((double)D);
                        mx = fmax(mx, sc[j]);
                    }
                    for (int j = j0; j <= i; j++) den += (sc[j] = exp(sc[j] - mx));
                    for (int d = 0; d < D; d++) {
                        double s = 0;
                        for (int j = j0; j <= i; j++) s += sc[j] * v[((size_t)j * KV + kvh) * D + d];
                        o[(size_t)i * A + hh * D + d] = s / den;
                    }
                }
                ref_linear(attn + (size_t)i * C, P + lp->wo, o + (size_t)i * A, C, A);
            }
        }
        double al = lightning ? c->linear_alpha : c->full_alpha, be = lightning ? c->linear_beta : c->full_beta;
        for (size_t j = 0; j < (size_t)n * C; j++) x1[j] = al * (c->postnorm ? h[j] : x[j]) + be * attn[j];
        free(attn);
        for (int i = 0; i < n; i++) {
            double *hi = h2 + (size_t)i * C;
            ref_rmsnorm(hi, x1 + (size_t)i * C, P + lp->post_norm, C, c->rms_norm_eps);
            double *p = tmp, mx = -INFINITY, den = 0;
            ref_linear(p, P + lp->router, hi, E, C);
            for (int e = 0; e < E; e++) mx = fmax(mx, p[e]);
            for (int e = 0; e < E; e++) den += (p[e] = exp(p[e] - mx));
            for (int e = 0; e < E; e++) p[e] /= den;
            int chosen[16];
            double wsum = 0;
            for (int kk = 0; kk < K; kk++) {
                int best = -1;
                for (int e = 0; e < E; e++) {
                    int used = 0;
                    for (int j = 0; j < kk; j++) used |= chosen[j] == e;
                    if (!used && (best < 0 || p[e] > p[best])) best = e;
                }
                chosen[kk] = best;
                wsum += p[best];
            }
            double *y = tmp + E, *a1 = y + C, *a3 = a1 + F;
            memset(y, 0, sizeof(double) * C);
            for (int kk = 0; kk < K; kk++) {
                int e = chosen[kk];
                ref_linear(a1, P + lp->w1 + (size_t)e * F * C, hi, F, C);
                ref_linear(a3, P + lp->w3 + (size_t)e * F * C, hi, F, C);
                for (int j = 0; j < F; j++) a1[j] = act_ref_d(act, a1[j]) * a3[j];
                for (int r = 0; r < C; r++) {
                    double s = 0;
                    for (int j = 0; j < F; j++) s += (double)P[lp->w2 + (size_t)e * C * F + (size_t)r * F + j] * a1[j];
                    y[r] += p[e] / wsum * s;
                }
            }
            for (int r = 0; r < C; r++)
                x[(size_t)i * C + r] =
                    c->mlp_alpha * (c->postnorm ? hi[r] : x1[(size_t)i * C + r]) + c->mlp_beta * y[r];
        }
    }
    for (int i = 0; i < n; i++) {
        double *hf = tmp, *z = tmp + C, mx = -INFINITY, den = 0;
        ref_rmsnorm(hf, x + (size_t)i * C, P + t->final_norm, C, c->rms_norm_eps);
        ref_linear(z, P + t->lm_head, hf, V, C);
        for (int u = 0; u < V; u++) mx = fmax(mx, z[u]);
        for (int u = 0; u < V; u++) den += exp(z[u] - mx);
        logp[i] = i + 1 < n ? z[ids[i + 1]] - mx - log(den) : 0.0;
    }
    double *bufs[] = {x, h, q, k, v, o, S, tmp, x1, h2};
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++) free(bufs[i]);
}

// The model's log-probs of two packed sequences against the double reference run on each alone.
static void reference_forward(const char *label, const model_config_t *cfg, uint64_t seed) {
    const int lens[2] = {29, 18}, T = 47;
    int32_t cu[3] = {0, lens[0], T}, ids[47], targets[47];
    uint64_t s = seed;
    for (int i = 0; i < T; i++) ids[i] = (int32_t)(test_rng_next(&s) % (uint64_t)cfg->vocab_size);
    for (int i = 0; i < T; i++) targets[i] = (i + 1 == lens[0] || i + 1 == T) ? -1 : ids[i + 1];
    model_t *m = model_create(cfg, NULL, T);
    randomise(m->params, &m->table, seed + 1);
    float logp[47];
    double ref[47];
    CISPO_ASSERT(model_forward(m, ids, cu, 2, T) == 0);
    model_logprobs(m, targets, logp, NULL);
    ref_sequence(cfg, &m->table, m->params, ids, lens[0], ref);
    ref_sequence(cfg, &m->table, m->params, ids + lens[0], lens[1], ref + lens[0]);
    double worst = 0, mean = 0;
    for (int i = 0; i < T; i++) {
        worst = fmax(worst, fabs(logp[i] - ref[i]));
        mean += ref[i] / T;
    }
    TEST_LE(worst, 1e-5, "%s: log-probs vs the double reference: max |diff| %.3g", label, worst);
    printf("%s: log-probs vs an independent double-precision forward: max |diff| %.2e (mean logp %.3f)\n", label,
           worst, mean);
    model_free(m);
}

// Packing: the log-probs of [s1 | s2] equal those of s1 and s2 run alone; determinism: twice the same bits.
static void packing_and_determinism(const model_config_t *cfg) {
    const int l1 = 37, l2 = 23, T = l1 + l2;
    int32_t ids[60], targets[60], cu2[3] = {0, l1, T};
    uint64_t s = 99;
    for (int t = 0; t < T; t++) ids[t] = (int32_t)(test_rng_next(&s) % (uint64_t)cfg->vocab_size);
    for (int t = 0; t < T; t++) targets[t] = (t + 1 == l1 || t + 1 == T) ? -1 : ids[t + 1];
    model_t *m = model_create(cfg, NULL, T);
    randomise(m->params, &m->table, 5);
    float packed[60], alone[60], again[60];
    CISPO_ASSERT(model_forward(m, ids, cu2, 2, T) == 0);
    model_logprobs(m, targets, packed, NULL);
    int32_t cu_a[2] = {0, l1}, cu_b[2] = {0, l2};
    CISPO_ASSERT(model_forward(m, ids, cu_a, 1, l1) == 0);
    model_logprobs(m, targets, alone, NULL);
    CISPO_ASSERT(model_forward(m, ids + l1, cu_b, 1, l2) == 0);
    model_logprobs(m, targets + l1, alone + l1, NULL);
    double d = test_max_abs_diff(packed, alone, (size_t)T);
    TEST_LE(d, 2e-6, "packing two sequences changes log-probs by %.3g", d);
    printf("packing: max |logp(packed) - logp(alone)| = %.3g\n", d);

    // forward twice: bit-identical log-probs; backward twice: bit-identical gradients
    float dlogp[60];
    for (int t = 0; t < T; t++) dlogp[t] = targets[t] >= 0 ? -1.0f / T : 0.0f;
    CISPO_ASSERT(model_forward(m, ids, cu2, 2, T) == 0);
    model_logprobs(m, targets, again, NULL);
    test_check(memcmp(packed, again, sizeof(float) * T) == 0, "forward twice is bit-identical");
    model_zero_grad(m);
    model_backward(m, dlogp, 0.001f);
    float *g1 = cispo_malloc(m->table.n_floats * sizeof(float));
    memcpy(g1, m->grads, m->table.n_floats * sizeof(float));
    CISPO_ASSERT(model_forward(m, ids, cu2, 2, T) == 0);
    model_logprobs(m, targets, again, NULL);
    model_zero_grad(m);
    model_backward(m, dlogp, 0.001f);
    test_check(memcmp(g1, m->grads, m->table.n_floats * sizeof(float)) == 0, "backward twice is bit-identical");
    // gradients accumulate across micro-batches: a second backward doubles them
    CISPO_ASSERT(model_forward(m, ids, cu2, 2, T) == 0);
    model_logprobs(m, targets, again, NULL);
    model_backward(m, dlogp, 0.001f);
    double err = 0;
    for (size_t i = 0; i < m->table.n_floats; i++) err = fmax(err, fabs(((float *)m->grads)[i] - 2.0 * g1[i]));
    TEST_LE(err, 1e-6, "a second backward accumulates (max |g - 2 g1| = %.3g)", err);
    // deferred zeroing: over a buffer of NaNs the first backward writes every gradient it owns (experts
    // without tokens get zeros) and the rest was zeroed: the same bits as zeroing first; then it adds again
    {
        const size_t nf = m->table.n_floats;
        int idle = 0;  // experts of some layer that got no token: their gradients must come out zero
        int32_t *route = cispo_malloc((size_t)T * cfg->n_experts_per_tok * sizeof(int32_t));
        for (int l = 0; l < cfg->n_layers; l++) {
            model_routes(m, l, route);
            for (int e = 0; e < cfg->n_experts; e++) {
                int used = 0;
                for (int i = 0; i < T * cfg->n_experts_per_tok; i++) used |= route[i] == e;
                idle += !used;
            }
        }
        free(route);
        for (size_t i = 0; i < nf; i++) ((float *)m->grads)[i] = NAN;
        model_zero_grad_deferred(m);
        CISPO_ASSERT(model_forward(m, ids, cu2, 2, T) == 0);
        model_logprobs(m, targets, again, NULL);
        model_backward(m, dlogp, 0.001f);
        test_check(memcmp(g1, m->grads, nf * sizeof(float)) == 0,
                   "deferred zeroing: the first backward gives the same bits (%d idle experts)", idle);
        CISPO_ASSERT(model_forward(m, ids, cu2, 2, T) == 0);
        model_logprobs(m, targets, again, NULL);
        model_backward(m, dlogp, 0.001f);
        err = 0;
        for (size_t i = 0; i < nf; i++) err = fmax(err, fabs(((float *)m->grads)[i] - 2.0 * g1[i]));
        TEST_LE(err, 1e-6, "deferred zeroing: the second backward accumulates (max |g - 2 g1| = %.3g)", err);
        for (size_t i = 0; i < nf; i++) ((float *)m->grads)[i] = NAN;
        model_zero_grad_deferred(m);
        model_grads_settle(m);  // no backward ran: the buffer reads as zeros
        int zero = 1;
        for (size_t i = 0; i < nf; i++) zero &= ((float *)m->grads)[i] == 0.0f;
        test_check(zero, "model_grads_settle without a backward leaves zeros");
    }
    // bad batches are refused with a message
    int32_t bad_cu[3] = {0, 50, 40};
    test_check(model_forward(m, ids, bad_cu, 2, 40) == -1 && strstr(cispo_last_error(), "cu_seqlens"),
               "decreasing cu_seqlens refused: %s", cispo_last_error());
    int32_t one[2] = {0, 61};
    test_check(model_forward(m, ids, one, 1, 61) == -1 && strstr(cispo_last_error(), "61 tokens"),
               "more tokens than planned refused: %s", cispo_last_error());
    int32_t bad_ids[2] = {3, cfg->vocab_size}, cu1[2] = {0, 2};
    test_check(model_forward(m, bad_ids, cu1, 1, 2) == -1 && strstr(cispo_last_error(), "token 1"),
               "out-of-vocabulary id refused: %s", cispo_last_error());
    free(g1);
    model_free(m);
}

// Activation recompute: a model keeping only each layer's input (MODEL_RECOMPUTE), or only what GEMMs and
// attention cores made (MODEL_RECOMPUTE_CHEAP), gives the same bits as one keeping everything, through packed
// micro-batches with an empty sequence, gradient accumulation, deferred zeroing, routing replay and a logit scale.
static void recompute_same(const char *label0, const model_config_t *cfg, int flags) {
    enum { T = 41 };
    char label[160];
    snprintf(label, sizeof label, "%s, %s", label0, flags == MODEL_RECOMPUTE ? "full" : "cheap");
    model_t *full = model_create(cfg, NULL, T);
    model_t *lean = model_create_experts(backend_host(), cfg, NULL, T, 0, cfg->n_experts, flags);
    randomise(full->params, &full->table, 8);
    memcpy(lean->params, full->params, full->table.n_floats * sizeof(float));
    const size_t nf = full->table.n_floats, K = (size_t)cfg->n_experts_per_tok;
    int32_t ids[T], targets[T], cu[4] = {0, 17, 17, T};  // the second sequence is empty
    float dlogp[T], lp_f[T], lp_l[T], ent_f[T], ent_l[T];
    uint64_t s = 123;
    for (int t = 0; t < T; t++) {
        ids[t] = (int32_t)(test_rng_next(&s) % (uint64_t)cfg->vocab_size);
        targets[t] = t + 1 == 17 || t + 1 == T ? -1 : (int32_t)(test_rng_next(&s) % (uint64_t)cfg->vocab_size);
        dlogp[t] = (float)test_uniform(&s, -0.2, 0.2);
    }
    int32_t *routes = cispo_malloc((size_t)cfg->n_layers * T * K * sizeof(int32_t));
    int32_t *r_f = cispo_malloc(T * K * sizeof(int32_t)), *r_l = cispo_malloc(T * K * sizeof(int32_t));
    int same_fwd = 1, same_routes = 1;
    model_t *ms[2] = {full, lean};
    for (int i = 0; i < 2; i++) model_zero_grad_deferred(ms[i]);
    for (int mb = 0; mb < 2; mb++) {
        // micro-batch 1 replays routes of micro-batch 0's forward rotated by one expert; it runs at logit scale 1/0.7
        for (int i = 0; i < 2; i++) {
            model_t *m = ms[i];
            m->logit_scale = mb ? 1.0f / 0.7f : 1.0f;
            m->route_replay = mb ? routes : NULL;
            CISPO_ASSERT(model_forward(m, ids, cu, 3, T) == 0);
            m->route_replay = NULL;
            model_logprobs(m, targets, i ? lp_l : lp_f, i ? ent_l : ent_f);
        }
        if (mb == 0)
            for (int l = 0; l < cfg->n_layers; l++) {
                model_routes(full, l, routes + (size_t)l * T * K);
                for (size_t j = 0; j < (size_t)T * K; j++) {  // another valid choice: distinct experts per token
                    int32_t *r = routes + (size_t)l * T * K + j;
                    *r = (*r + 1) % cfg->n_experts;
                }
            }
        same_fwd &= !memcmp(lp_f, lp_l, sizeof lp_f) && !memcmp(ent_f, ent_l, sizeof ent_f) &&
                    full->aux_loss == lean->aux_loss;
        model_backward(full, dlogp, 0.01f);
        model_backward(lean, dlogp, 0.01f);
        for (int l = 0; l < cfg->n_layers; l++) {  // every layer's routes survive the shared region
            model_routes(full, l, r_f);
            model_routes(lean, l, r_l);
            same_routes &= !memcmp(r_f, r_l, (size_t)T * K * sizeof(int32_t));
        }
    }
    test_check(same_fwd, "%s, recompute: log-probs, entropies and load-balancing loss are the same bits", label);
    test_check(same_routes, "%s, recompute: every layer's routes are kept", label);
    test_check(!memcmp(full->grads, lean->grads, nf * sizeof(float)),
               "%s, recompute: gradients over two micro-batches (replayed routes, logit scale) are the same bits", label);
    const double bf = (double)full->n_acts * full->esize + full->n_stats * 4.0 + full->n_iacts * 4.0;
    const double bl = (double)lean->n_acts * lean->esize + lean->n_stats * 4.0 + lean->n_iacts * 4.0;
    TEST_LE(bl, (flags == MODEL_RECOMPUTE ? 0.6 : 0.9) * bf, "%s, recompute: activation arenas %.0f bytes against %.0f",
            label, bl, bf);
    printf("%-48s recompute: activations %.1f KB against %.1f KB (%.1fx less)\n", label, bl / 1024, bf / 1024, bf / bl);
    // a forward-only model (no gradients; its activations planned as with recompute): the same forward
    model_t *fo = model_create_experts(backend_host(), cfg, NULL, T, 0, cfg->n_experts, MODEL_FORWARD_ONLY);
    model_load_params(fo, full->params);
    full->logit_scale = 1.0f;
    CISPO_ASSERT(model_forward(full, ids, cu, 3, T) == 0 && model_forward(fo, ids, cu, 3, T) == 0);
    model_logprobs(full, targets, lp_f, NULL);
    model_logprobs(fo, targets, lp_l, NULL);
    test_check(fo->grads == NULL && fo->recompute && !memcmp(lp_f, lp_l, sizeof lp_f),
               "%s, forward only: no gradient buffer, the same log-probs", label);
    model_free(fo);
    free(routes), free(r_f), free(r_l);
    model_free(full), model_free(lean);
}

// pad_token_id (transformers' nn.Embedding padding_idx): the pad row of the embedding gets no gradient
// from its lookups; every other gradient is unchanged.
static void pad_token_gradient(const model_config_t *cfg) {
    const int T = 24;
    int32_t ids[24], targets[24], cu[2] = {0, T};
    float dlogp[24];
    uint64_t s = 7;
    for (int t = 0; t < T; t++) ids[t] = (int32_t)(test_rng_next(&s) % 16);  // ids repeat, the pad among them
    ids[3] = ids[9] = 5;
    for (int t = 0; t < T; t++) targets[t] = t + 1 < T ? ids[t + 1] : -1;
    for (int t = 0; t < T; t++) dlogp[t] = -1.0f / T;
    model_config_t pc = *cfg;
    pc.has_pad_token = 1;
    pc.pad_token_id = 5;
    model_t *a = model_create(cfg, NULL, T), *b = model_create(&pc, NULL, T);
    randomise(a->params, &a->table, 8);
    memcpy(b->params, a->params, a->table.n_floats * sizeof(float));
    float logp[24];
    model_t *ms[2] = {a, b};
    for (int i = 0; i < 2; i++) {
        CISPO_ASSERT(model_forward(ms[i], ids, cu, 1, T) == 0);
        model_logprobs(ms[i], targets, logp, NULL);
        model_zero_grad(ms[i]);
        model_backward(ms[i], dlogp, 0.0f);
    }
    const size_t C = (size_t)cfg->hidden_size, row = a->table.embed + 5 * C;
    double pad_a = 0, pad_b = 0, other = 0;
    for (size_t j = 0; j < a->table.n_floats; j++) {
        if (j >= row && j < row + C) {
            pad_a = fmax(pad_a, fabsf(((float *)a->grads)[j]));
            pad_b = fmax(pad_b, fabsf(((float *)b->grads)[j]));
        } else {
            other = fmax(other, fabsf(((float *)a->grads)[j] - ((float *)b->grads)[j]));
        }
    }
    test_check(pad_a > 0 && pad_b == 0 && other == 0,
               "pad_token_id 5: its embedding row's gradient %.3g -> %.3g (0 expected), others differ by %.3g",
               pad_a, pad_b, other);
    model_free(a);
    model_free(b);
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

// Forward + log-probs + backward on 8 packed sequences of 64 tokens (T = 512), median of 10 runs.
static void bench(const model_config_t *cfg) {
    const int nseq = 8, len = 64, T = nseq * len, reps = 10;
    int32_t *ids = cispo_malloc((size_t)T * sizeof(int32_t)), *targets = cispo_malloc((size_t)T * sizeof(int32_t));
    int32_t cu[9];
    float *logp = cispo_malloc((size_t)T * sizeof(float)), *dlogp = cispo_malloc((size_t)T * sizeof(float));
    uint64_t s = 3;
    for (int q = 0; q <= nseq; q++) cu[q] = q * len;
    for (int t = 0; t < T; t++) ids[t] = (int32_t)(test_rng_next(&s) % (uint64_t)cfg->vocab_size);
    for (int t = 0; t < T; t++) targets[t] = (t + 1) % len ? ids[t + 1] : -1;
    for (int t = 0; t < T; t++) dlogp[t] = targets[t] >= 0 ? -1.0f / T : 0.0f;
    model_t *m = model_create(cfg, NULL, T);
    param_init_hf(m->params, &m->table, cfg, 1);
    double times[10], fwd[10];
    for (int r = -1; r < reps; r++) {  // r = -1 warms up
        double t0 = cispo_now();
        CISPO_ASSERT(model_forward(m, ids, cu, nseq, T) == 0);
        model_logprobs(m, targets, logp, NULL);
        double t1 = cispo_now();
        model_zero_grad(m);
        model_backward(m, dlogp, cfg->router_aux_loss_coef);
        double t2 = cispo_now();
        if (r >= 0) {
            times[r] = t2 - t0;
            fwd[r] = t1 - t0;
        }
    }
    qsort(times, reps, sizeof(double), cmp_double);
    qsort(fwd, reps, sizeof(double), cmp_double);
    printf("bench (tiny preset, %zu parameters, T = %d as %d x %d): forward %.2f ms, forward+backward %.2f ms = "
           "%.0f tokens/s (median of %d)\n", m->table.n_floats, T, nseq, len, 1e3 * fwd[reps / 2],
           1e3 * times[reps / 2], T / times[reps / 2], reps);
    model_free(m);
    free(ids);
    free(targets);
    free(logp);
    free(dlogp);
}

int main(int argc, char **argv) {
    char path[4096];
    const char *src = getenv("CISPO_SRC");
    snprintf(path, sizeof path, "%s/configs/models/tiny.yaml", src ? src : ".");
    model_config_t cfg;
    if (!test_check(model_config_load(&cfg, path) == 0, "tiny preset: %s", cispo_last_error()))
        return test_finish("test_model_grad");
    int do_bench = argc > 1 && !strcmp(argv[1], "--bench");

    reference_forward("tiny (HF flavour)", &cfg, 21);
    gradcheck("tiny (HF flavour)", &cfg, 11);
    g_logit_scale = 1.0f / 0.7f;  // log-probs of softmax(z / 0.7), as RL at temperature 0.7 trains them
    gradcheck("tiny (HF flavour, logit_scale 1/0.7)", &cfg, 13);
    g_logit_scale = 1.0f;

    // the original flavour's differences: RoPE over rotary_dim < D, residual = un-normed input, slopes
    model_config_t orig = cfg;
    orig.flavour = MODEL_FLAVOUR_ORIGINAL;
    orig.rotary_dim = cfg.head_dim / 2;
    orig.postnorm = 0;
    CISPO_ASSERT(model_config_validate(&orig, "original variant") == 0);
    reference_forward("tiny (original flavour, rotary_dim D/2, pre-norm residual)", &orig, 22);
    recompute_same("tiny (original flavour)", &orig, MODEL_RECOMPUTE);
    recompute_same("tiny (original flavour)", &orig, MODEL_RECOMPUTE_CHEAP);
    gradcheck("tiny (original flavour, rotary_dim D/2, pre-norm residual)", &orig, 12);

    // HF config fields that select numerics: sliding window, hidden_act, rope types (whose frequency
    // formulas the parity fixtures check against transformers; here their per-sequence use and scale)
    model_config_t v = cfg;
    v.sliding_window = 6;
    v.hidden_act = ACT_GELU_TANH;
    v.rope.type = ROPE_YARN;
    v.rope.factor = 4.0;
    v.rope.original_max_pos = 8;
    v.rope.attention_factor = v.rope.partial_rotary_factor = NAN;
    v.rope.truncate = 1;
    CISPO_ASSERT(model_config_validate(&v, "variant") == 0);
    reference_forward("tiny + sliding_window 6, gelu_new, yarn", &v, 23);
    recompute_same("tiny + sliding_window 6, gelu_new, yarn", &v, MODEL_RECOMPUTE);
    recompute_same("tiny + sliding_window 6, gelu_new, yarn", &v, MODEL_RECOMPUTE_CHEAP);
    gradcheck("tiny + sliding_window 6, gelu_new, yarn", &v, 13);
    // dynamic NTK and longrope change with the length: 29 and 18 tokens on either side of 20
    v = cfg;
    v.hidden_act = ACT_QUICK_GELU;
    v.max_position_embeddings = 20;
    v.rope.type = ROPE_DYNAMIC;
    v.rope.factor = 3.0;
    v.rope.attention_factor = v.rope.partial_rotary_factor = NAN;
    CISPO_ASSERT(model_config_validate(&v, "variant") == 0);
    reference_forward("tiny + quick_gelu, dynamic (mpe 20)", &v, 24);
    gradcheck("tiny + quick_gelu, dynamic (mpe 20)", &v, 14);
    v.hidden_act = ACT_MISH;
    v.rope.type = ROPE_LONGROPE;
    v.rope.original_max_pos = 20;
    v.rope.factor = NAN;
    v.rope.n_pairs = v.head_dim / 2;
    for (int i = 0; i < v.rope.n_pairs; i++) {
        v.rope.short_factor[i] = 1.0 + 0.1 * i;
        v.rope.long_factor[i] = 2.0 + 0.5 * i;
    }
    CISPO_ASSERT(model_config_validate(&v, "variant") == 0);
    reference_forward("tiny + mish, longrope (original 20)", &v, 25);
    v.hidden_act = ACT_SILU;
    v.rope.type = ROPE_PROPORTIONAL;
    v.rope.partial_rotary_factor = 0.5;
    v.sliding_window = 1;
    CISPO_ASSERT(model_config_validate(&v, "variant") == 0);
    reference_forward("tiny + proportional rope 0.5, sliding_window 1", &v, 26);

    pad_token_gradient(&cfg);
    packing_and_determinism(&cfg);
    recompute_same("tiny (HF flavour)", &cfg, MODEL_RECOMPUTE);
    recompute_same("tiny (HF flavour)", &cfg, MODEL_RECOMPUTE_CHEAP);
    if (do_bench) bench(&cfg);
    return test_finish("test_model_grad");
}
