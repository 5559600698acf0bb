// kernels/cpu/sample.c — the sampling op's fp32/fp64 reference (kernels/ops.h: sample_tokens,
// sample_uniform): temperature, top-k, top-p, greedy, the counter-based draw, the log-prob the
// trainer's importance weights use, and the stop state (EOS, repetition, length) of each slot.
// defines: sample_uniform, sample_tokens_cpu
//
// The arithmetic is rl/sampler.c's, step for step (probabilities rounded to fp32 after a double exp,
// sums in double in the order of the kept tokens), so the two pick the same token from the same
// uniform; the kept set is found by sorting instead of a heap.
#include <math.h>
#include <string.h>

#include "base/common.h"
#include "kernels/cpu/ops_cpu.h"
#include "kernels/ops.h"

// splitmix64's finaliser (Steele, Lea, Flood 2014), applied to seed and to the seed's hash plus the
// step: a counter-based generator whose draw j needs no state (kernels/cuda/sample.cu repeats it).
static uint64_t mix64(uint64_t z) {
    z += 0x9E3779B97F4A7C15ull;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

double sample_uniform(uint64_t seed, uint64_t step) {
    return (double)(mix64(mix64(seed) ^ step) >> 11) * 0x1.0p-53;
}

// the order of truncation: descending probability, then ascending id
static int before(const float *p, int i, int j) { return p[i] > p[j] || (p[i] == p[j] && i < j); }

static void sort_order(const float *p, int *idx, int *tmp, int n) {  // merge sort of idx [n] by `before`
    for (int w = 1; w < n; w *= 2) {
        for (int lo = 0; lo < n; lo += 2 * w) {
            int mid = lo + w < n ? lo + w : n, hi = lo + 2 * w < n ? lo + 2 * w : n, a = lo, b = mid, o = lo;
            while (a < mid && b < hi) tmp[o++] = before(p, idx[b], idx[a]) ? idx[b++] : idx[a++];
            while (a < mid) tmp[o++] = idx[a++];
            while (b < hi) tmp[o++] = idx[b++];
        }
        memcpy(idx, tmp, sizeof(int) * (size_t)n);
    }
}

static int sample_row(const float *z, int V, sample_slot_t *st, float *p, int *idx, int *tmp, double *logp) {
    const double t = st->temperature > 0 ? st->temperature : 1.0;
    double mx = -INFINITY;
    int arg = 0;
    for (int i = 0; i < V; i++)
        if (z[i] > mx) mx = z[i], arg = i;
    int tok = arg;
    if (!st->greedy) {
        double zt = 0;
        for (int i = 0; i < V; i++) zt += (p[i] = (float)exp(((double)z[i] - mx) / t));
        for (int i = 0; i < V; i++) p[i] = (float)(p[i] / zt);
        const int top_k = st->top_k > 0 && st->top_k < V ? st->top_k : 0;
        const int top_p = st->top_p > 0 && st->top_p < 1;
        const double u = sample_uniform(st->seed, (uint64_t)st->n_gen);
        if (top_k || top_p) {
            for (int i = 0; i < V; i++) idx[i] = i;
            sort_order(p, idx, tmp, V);
            int n = 0;
            double mass = 0;
            if (top_k)
                for (; n < top_k; n++) mass += p[idx[n]];
            if (top_p) {  // the shortest prefix whose share of the kept mass (1 without top-k) reaches top_p
                const double kept = top_k ? mass : 1.0;
                const int limit = top_k ? n : V;
                double c = 0;
                int m = 0;
                while (m < limit) {
                    c += p[idx[m++]];
                    if (c >= st->top_p * kept) break;
                }
                n = m, mass = c;
            }
            const double target = u * mass;
            double c = 0;
            tok = idx[n - 1];
            for (int r = 0; r < n; r++) {
                c += p[idx[r]];
                if (target < c) {
                    tok = idx[r];
                    break;
                }
            }
        } else {  // inverse CDF over ids in order; a shortfall from rounding takes the most probable
            double c = 0;
            int best = 0;
            tok = -1;
            for (int i = 0; i < V && tok < 0; i++) {
                c += p[i];
                if (u < c) tok = i;
                if (p[i] > p[best]) best = i;
            }
            if (tok < 0) tok = best;
        }
    }
    const double s = st->tempered_logp ? t : 1.0;
    double zs = 0;
    for (int i = 0; i < V; i++) zs += exp(((double)z[i] - mx) / s);
    const double lp = s == 1.0 ? (double)z[tok] - (mx + log(zs)) : ((double)z[tok] - mx) / s - log(zs);
    *logp = lp;
    return tok;
}

void sample_tokens_cpu(int32_t *tok, float *logp, int32_t *done, sample_slot_t *state, const int32_t *slot,
                       const float *logits, int n, int V) {
    cpu_scratch_t mark = cpu_scratch_begin();
    float *p = cpu_scratch_take(sizeof(float) * (size_t)V);
    int *idx = cpu_scratch_take(sizeof(int) * (size_t)V), *tmp = cpu_scratch_take(sizeof(int) * (size_t)V);
    for (int i = 0; i < n; i++) {
        sample_slot_t *st = state + slot[i];
        double lp;
        const int t = sample_row(logits + (size_t)i * V, V, st, p, idx, tmp, &lp);
        const float pr = (float)exp(lp);  // what the repetition rule reads (rl/sampler.h *prob)
        logp[i] = (float)lp;
        tok[i] = t;
        st->n_gen++;
        st->run = pr > st->rep_p ? st->run + 1 : 0;
        done[i] = st->eos_id >= 0 && t == st->eos_id       ? SAMPLE_DONE_EOS
                  : st->rep_n > 0 && st->run >= st->rep_n ? SAMPLE_DONE_REPETITION
                  : st->n_gen >= st->max_new              ? SAMPLE_DONE_LENGTH
                                                          : 0;
    }
    cpu_scratch_end(mark);
}
