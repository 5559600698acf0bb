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

// descending by value, then ascending by index (a total order: results do not depend on qsort)
static const float *sort_vals;
static int by_value_desc(const void *a, const void *b) {
    int i = *(const int *)a, j = *(const int *)b;
    if (sort_vals[i] != sort_vals[j]) return sort_vals[i] > sort_vals[j] ? -1 : 1;
    return i - j;
}

int sampler_next(const float *logits, int V, const sampler_config_t *cfg, uint64_t *rng, float *scratch,
                 float *logp, float *prob) {
    // policy log-probs (T = 1) in double
    double mx = -INFINITY;
    int arg = 0;
    for (int i = 0; i < V; i++)
        if (logits[i] > mx) mx = logits[i], arg = i;
    double z = 0;
    for (int i = 0; i < V; i++) z += exp((double)logits[i] - mx);
    const double lse = mx + log(z);
    int tok = arg;
    if (!cfg->greedy) {
        // sampling distribution: tempered softmax, then top-k / top-p truncation
        float *p = scratch;
        const double t = cfg->temperature > 0 ? cfg->temperature : 1.0;
        double zt = 0;
        for (int i = 0; i < V; i++) zt += (p[i] = (float)exp(((double)logits[i] - mx) / t));
        for (int i = 0; i < V; i++) p[i] = (float)(p[i] / zt);
        int n = V;
        int *idx = (int *)(scratch + V);
        int truncate = (cfg->top_k > 0 && cfg->top_k < V) || (cfg->top_p > 0 && cfg->top_p < 1);
        double u = sampler_uniform(rng);
        if (truncate) {
            for (int i = 0; i < V; i++) idx[i] = i;
            sort_vals = p;
            qsort(idx, (size_t)V, sizeof(int), by_value_desc);
            if (cfg->top_k > 0 && cfg->top_k < n) n = cfg->top_k;
            if (cfg->top_p > 0 && cfg->top_p < 1) {
                double c = 0;
                for (int r = 0; r < n; r++) {
                    c += p[idx[r]];
                    if (c >= cfg->top_p) {
                        n = r + 1;
                        break;
                    }
                }
            }
            double mass = 0;
            for (int r = 0; r < n; r++) mass += p[idx[r]];
            double target = u * mass, c = 0;
            tok = idx[n - 1];
            for (int r = 0; r < n; r++) {
                c += p[idx[r]];
                if (target < c) {
                    tok = idx[r];
                    break;
                }
            }
        } else {
            double c = 0;
            tok = V - 1;
            for (int i = 0; i < V; i++) {
                c += p[i];
                if (u < c) {
                    tok = i;
                    break;
                }
            }
        }
    }
    *logp = (float)((double)logits[tok] - lse);
    *prob = (float)exp((double)logits[tok] - lse);
    return tok;
}
