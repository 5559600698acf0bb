// rl/sampler.c — temperature / top-k / top-p / greedy sampling with per-sequence seeds (sampler.h).
#include "rl/sampler.h"

#include <math.h>
#include <stdlib.h>

#include "base/rng.h"

uint64_t sampler_rng_seed(uint64_t seed, uint64_t sequence_id) {
    uint64_t s = seed ^ (0xD1B54A32D192ED03ull * (sequence_id + 1));
    rng_next(&s);
    return s;
}

double sampler_uniform(uint64_t *state) { return rng_uniform(state); }

int sampler_draw(const float *p, int V, double u) {
    double c = 0;
    int best = 0;
    for (int i = 0; i < V; i++) {
        c += p[i];
        if (u < c) return i;
        if (p[i] > p[best]) best = i;
    }
    return best;
}

// Token order of the truncation: descending probability, then ascending id (a total order, so the
// kept set never depends on how the selection is done).
static int before(const float *p, int i, int j) { return p[i] > p[j] || (p[i] == p[j] && i < j); }

static void sift_down(const float *p, int *h, int n, int at) {
    for (;;) {
        int l = 2 * at + 1, best = at;
        if (l < n && before(p, h[l], h[best])) best = l;
        if (l + 1 < n && before(p, h[l + 1], h[best])) best = l + 1;
        if (best == at) return;
        int x = h[at];
        h[at] = h[best], h[best] = x;
        at = best;
    }
}

// A heap over idx [V] (the first of the order on top). Each pop moves the next token of the order to
// the back: after r pops, idx[V-1], idx[V-2], ..., idx[V-r] are the r first tokens, in order.
static void heap_build(const float *p, int *idx, int V) {
    for (int i = 0; i < V; i++) idx[i] = i;
    for (int i = V / 2 - 1; i >= 0; i--) sift_down(p, idx, V, i);
}

static int heap_pop(const float *p, int *idx, int *n) {
    int top = idx[0];
    idx[0] = idx[--*n];
    idx[*n] = top;
    sift_down(p, idx, *n, 0);
    return top;
}

int sampler_next(const float *logits, int V, const sampler_config_t *cfg, uint64_t *rng, float *scratch,
                 float *logp, float *prob) {
    const double u = cfg->greedy ? 0.0 : sampler_uniform(rng);
    return sampler_pick(logits, V, cfg, u, scratch, logp, prob);
}

int sampler_pick(const float *logits, int V, const sampler_config_t *cfg, double u, float *scratch, float *logp,
                 float *prob) {
    const double t = cfg->temperature > 0 ? cfg->temperature : 1.0;
    double mx = -INFINITY;
    int arg = 0;
    for (int i = 0; i < V; i++)
        if (logits[i] > mx) mx = logits[i], arg = i;
    int tok = arg;
    if (!cfg->greedy) {
        // sampling distribution: tempered softmax, then top-k, then top-p (renormalised after top-k)
        float *p = scratch;
        double zt = 0;
        for (int i = 0; i < V; i++) zt += (p[i] = (float)exp(((double)logits[i] - mx) / t));
        for (int i = 0; i < V; i++) p[i] = (float)(p[i] / zt);
        const int top_k = cfg->top_k > 0 && cfg->top_k < V ? cfg->top_k : 0;
        const int top_p = cfg->top_p > 0 && cfg->top_p < 1;
        if (top_k || top_p) {
            int *idx = (int *)(scratch + V), h = V, n = 0;
            heap_build(p, idx, V);
            double mass = 0;
            if (top_k) {
                for (; n < top_k; n++) mass += p[heap_pop(p, idx, &h)];
            }
            if (top_p) {
                // the smallest prefix whose share of the kept mass (1 without top-k) reaches top_p
                double kept = top_k ? mass : 1.0, c = 0;
                const int limit = top_k ? n : V;
                int m = 0;
                while (m < limit) {
                    if (m == n) heap_pop(p, idx, &h), n++;
                    c += p[idx[V - 1 - m++]];
                    if (c >= cfg->top_p * kept) break;
                }
                n = m;
                mass = c;
            }
            double target = u * mass, c = 0;
            tok = idx[V - n];
            for (int r = 0; r < n; r++) {
                c += p[idx[V - 1 - r]];
                if (target < c) {
                    tok = idx[V - 1 - r];
                    break;
                }
            }
        } else {
            tok = sampler_draw(p, V, u);
        }
    }
    // log pi(token): the untempered policy, or the tempered one (verl's convention), in double
    const double s = cfg->tempered_logp ? t : 1.0;
    double z = 0;
    for (int i = 0; i < V; i++) z += exp(((double)logits[i] - mx) / s);
    const double lp = s == 1.0 ? (double)logits[tok] - (mx + log(z)) : ((double)logits[tok] - mx) / s - log(z);
    *logp = (float)lp;
    *prob = (float)exp(lp);
    return tok;
}
