// tests/test_sampler.c — rl/sampler.c: the untruncated draw never lands on a token of probability 0
// when float sums fall short of 1; top-k then top-p renormalises over the top-k tokens (HF, vLLM); the
// heap selection keeps exactly the tokens a full sort would; the recorded log-prob is the untempered
// policy's, or the tempered one's with tempered_logp (verl's convention); draws repeat from a seed; the
// sampling op (kernels/ops.h sample_tokens) picks what this sampler picks from the same uniform.
// Run: ctest -R test_sampler
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "base/common.h"
#include "kernels/ops.h"
#include "rl/sampler.h"
#include "tests/testutil.h"

// A generator state whose first uniform draw is at least u_min (searched from seed).
static uint64_t state_with_draw_above(double u_min, uint64_t seed) {
    for (;;) {
        uint64_t s = seed++, probe = s;
        if (sampler_uniform(&probe) >= u_min) return s;
    }
}

static void test_shortfall(void) {
    // 2021 equal logits: each float probability rounds down, so their float sum is 1 - 5.6e-8; the last
    // id has probability 0. A draw above the sum used to return the last id.
    enum { V = 2022 };
    float *logits = cispo_malloc(sizeof(float) * V), *scratch = cispo_malloc(sizeof(float) * 2 * V);
    for (int i = 0; i < V - 1; i++) logits[i] = 0;
    logits[V - 1] = -1e4f;
    double c = 0;
    float q = (float)(1.0 / (V - 1));
    for (int i = 0; i < V - 1; i++) c += q;
    test_check(c < 1 - 5e-8, "precondition: the float probabilities sum to %.17g", c);
    uint64_t rng = state_with_draw_above(c, 1);
    sampler_config_t cfg = {.temperature = 1.0, .top_p = 1.0};
    float lp, pr;
    int tok = sampler_next(logits, V, &cfg, &rng, scratch, &lp, &pr);
    test_check(tok != V - 1 && isfinite(lp), "a draw above the float sum takes a token of nonzero probability (got %d)", tok);
    float p[4] = {0.5f, 0.3f, 0.2f - 1e-6f, 0.0f};
    test_check(sampler_draw(p, 4, 0.9999999) == 0 && sampler_draw(p, 4, 0.6) == 1 && sampler_draw(p, 4, 0.1) == 0,
               "sampler_draw: inverse CDF, shortfall to the most probable token");
    free(logits), free(scratch);
}

static void test_topk_topp(void) {
    // p = 0.4, 0.3, 0.2, 0.1; top_k 2 keeps {0, 1} with renormalised 0.571, 0.429; top_p 0.5 then keeps
    // token 0 alone. Without renormalisation 0.4 < 0.5 kept token 1 too.
    const float logits[4] = {(float)log(0.4), (float)log(0.3), (float)log(0.2), (float)log(0.1)};
    float scratch[8], lp, pr;
    sampler_config_t cfg = {.temperature = 1.0, .top_p = 0.5, .top_k = 2};
    int counts[4] = {0};
    for (uint64_t s = 0; s < 400; s++) {
        uint64_t rng = sampler_rng_seed(9, s);
        counts[sampler_next(logits, 4, &cfg, &rng, scratch, &lp, &pr)]++;
    }
    test_check(counts[0] == 400, "top_k=2 then top_p=0.5 keeps only token 0 (counts %d %d %d %d)", counts[0], counts[1],
               counts[2], counts[3]);
    // top_k alone: {0, 1} at 4:3
    cfg.top_p = 1.0;
    memset(counts, 0, sizeof counts);
    for (uint64_t s = 0; s < 4000; s++) {
        uint64_t rng = sampler_rng_seed(9, s);
        counts[sampler_next(logits, 4, &cfg, &rng, scratch, &lp, &pr)]++;
    }
    test_check(counts[2] == 0 && counts[3] == 0 && fabs(counts[0] / 4000.0 - 4.0 / 7.0) < 0.03,
               "top_k=2 keeps {0, 1} at 4:3 (%d %d)", counts[0], counts[1]);
}

static int by_desc(const void *a, const void *b, void *p) {
    const float *v = p;
    int i = *(const int *)a, j = *(const int *)b;
    if (v[i] != v[j]) return v[i] > v[j] ? -1 : 1;
    return i - j;
}
static const float *cmp_vals;
static int cmp_desc(const void *a, const void *b) { return by_desc(a, b, (void *)cmp_vals); }

// The reference: sort the whole vocabulary, keep the prefix, draw u * mass along it.
static int ref_pick(const float *logits, int V, const sampler_config_t *cfg, uint64_t *rng) {
    float *p = malloc(sizeof(float) * V);
    int *idx = malloc(sizeof(int) * V);
    double mx = -INFINITY, z = 0;
    for (int i = 0; i < V; i++) mx = fmax(mx, logits[i]);
    for (int i = 0; i < V; i++) z += (p[i] = (float)exp(((double)logits[i] - mx) / cfg->temperature));
    for (int i = 0; i < V; i++) p[i] = (float)(p[i] / z), idx[i] = i;
    cmp_vals = p;
    qsort(idx, V, sizeof(int), cmp_desc);
    int n = cfg->top_k > 0 && cfg->top_k < V ? cfg->top_k : V;
    double kept = 0;
    for (int r = 0; r < n; r++) kept += p[idx[r]];
    if (cfg->top_p < 1) {
        double c = 0;
        for (int r = 0; r < n; r++) {
            c += p[idx[r]];
            if (c >= cfg->top_p * (cfg->top_k > 0 ? kept : 1.0)) {
                n = r + 1;
                break;
            }
        }
    }
    double mass = 0;
    for (int r = 0; r < n; r++) mass += p[idx[r]];
    double target = sampler_uniform(rng) * mass, c = 0;
    int tok = idx[n - 1];
    for (int r = 0; r < n; r++) {
        c += p[idx[r]];
        if (target < c) {
            tok = idx[r];
            break;
        }
    }
    free(p), free(idx);
    return tok;
}

static void test_selection(void) {
    enum { V = 3000 };
    float *logits = malloc(sizeof(float) * V), *scratch = malloc(sizeof(float) * 2 * V);
    uint64_t s = 21;
    test_fill(logits, V, &s, -4, 4);
    for (int i = 0; i < 40; i++) logits[(i * 97) % V] = logits[0];  // ties: ids break them
    const sampler_config_t cfgs[4] = {{.temperature = 0.7, .top_p = 0.9}, {.temperature = 1.0, .top_p = 1.0, .top_k = 50},
                                      {.temperature = 1.3, .top_p = 0.6, .top_k = 400}, {.temperature = 1.0, .top_p = 0.2}};
    int same = 1;
    for (int k = 0; k < 4; k++)
        for (uint64_t q = 0; q < 200; q++) {
            uint64_t a = sampler_rng_seed(3, q), b = a;
            float lp, pr;
            int got = sampler_next(logits, V, &cfgs[k], &a, scratch, &lp, &pr), want = ref_pick(logits, V, &cfgs[k], &b);
            if (got != want) {
                same = 0;
                printf("config %d seed %llu: heap selection %d, full sort %d\n", k, (unsigned long long)q, got, want);
                break;
            }
        }
    test_check(same, "heap selection draws what a full sort does (top-p, top-k, both, with ties)");
    free(logits), free(scratch);
}

static void test_logp(void) {
    const float logits[5] = {1.0f, 2.5f, -0.5f, 0.0f, 2.0f};
    float scratch[10], lp, pr;
    sampler_config_t cfg = {.temperature = 0.5, .top_p = 1.0};
    for (int tempered = 0; tempered < 2; tempered++) {
        cfg.tempered_logp = tempered;
        uint64_t rng = sampler_rng_seed(1, 2), again = rng;
        int tok = sampler_next(logits, 5, &cfg, &rng, scratch, &lp, &pr);
        double T = tempered ? 0.5 : 1.0, z = 0;
        for (int i = 0; i < 5; i++) z += exp(logits[i] / T);
        double want = logits[tok] / T - log(z);
        test_check(fabs(lp - want) < 1e-6 && fabs(pr - exp(want)) < 1e-6, "%s log-prob of token %d: %g want %g",
                   tempered ? "tempered" : "untempered", tok, lp, want);
        float lp2, pr2;
        test_check(sampler_next(logits, 5, &cfg, &again, scratch, &lp2, &pr2) == tok && lp2 == lp, "same seed, same draw");
    }
    cfg.greedy = 1;
    uint64_t rng = 1;
    test_check(sampler_next(logits, 5, &cfg, &rng, scratch, &lp, &pr) == 1, "greedy takes the argmax");
}

// The sampling op (kernels/ops.h sample_tokens on the CPU backend) against this file's host sampler:
// the same token and log-prob for draw j of seed s as sampler_pick with u = sample_uniform(s, j), over
// every truncation mode, ties and the shortfall row; the stop state as rl/rollout's rules; greedy
// consumes no draw; a draw depends on (seed, step) only.
static void test_device_op(void) {
    enum { V = 2022, N = 6 };
    backend_t *b = backend_host();
    float *logits = malloc(sizeof(float) * V * N), *scratch = malloc(sizeof(float) * 2 * V);
    uint64_t s = 77;
    test_fill(logits, (size_t)V * N, &s, -5, 5);
    for (int i = 0; i < 60; i++) logits[(i * 31) % V] = logits[0];     // ties in row 0
    for (int i = 0; i < V - 1; i++) logits[V + i] = 0;                  // row 1: the shortfall row
    logits[2 * V - 1] = -1e4f;
    const sampler_config_t cfgs[6] = {{.temperature = 1.0, .top_p = 1.0}, {.temperature = 0.6, .top_p = 0.9},
                                      {.temperature = 1.0, .top_p = 1.0, .top_k = 50},
                                      {.temperature = 1.3, .top_p = 0.6, .top_k = 400, .tempered_logp = 1},
                                      {.temperature = 1.0, .top_p = 0.2}, {.temperature = 0.8, .top_p = 1.0, .greedy = 1}};
    sample_slot_t st[N];
    int32_t slot[N], tok[N], done[N];
    float lp[N];
    long same = 0, total = 0;
    for (int k = 0; k < 6; k++)
        for (int step = 0; step < 40; step++) {
            for (int i = 0; i < N; i++) {
                memset(&st[i], 0, sizeof st[i]);
                st[i].seed = sampler_rng_seed(11, (uint64_t)(i + 7 * k));
                st[i].temperature = cfgs[k].temperature, st[i].top_p = cfgs[k].top_p, st[i].top_k = cfgs[k].top_k;
                st[i].greedy = cfgs[k].greedy, st[i].tempered_logp = cfgs[k].tempered_logp;
                st[i].eos_id = -1, st[i].max_new = 1000, st[i].n_gen = step;
                slot[N - 1 - i] = i;  // rows in reverse slot order
            }
            sample_tokens(b, tok, lp, done, st, slot, logits, N, V);
            for (int r = 0; r < N; r++) {
                const int i = slot[r];
                float wl, wp;
                const int want = sampler_pick(logits + (size_t)r * V, V, &cfgs[k],
                                              sample_uniform(sampler_rng_seed(11, (uint64_t)(i + 7 * k)), (uint64_t)step),
                                              scratch, &wl, &wp);
                total++;
                if (want == tok[r] && wl == lp[r] && st[i].n_gen == step + 1 && done[r] == 0) same++;
                else if (total - same < 4)
                    printf("config %d step %d row %d: op %d (%g), host %d (%g)\n", k, step, r, tok[r], lp[r], want, wl);
            }
        }
    test_check(same == total, "sampling op == host sampler on %ld of %ld draws (all modes, ties, shortfall)", same, total);

    // stop state: EOS first, then repetition (pi > rep_p for rep_n tokens in a row), then the length budget
    sample_slot_t one = {.seed = 5, .temperature = 1.0, .top_p = 1.0, .greedy = 1, .eos_id = -1, .max_new = 3,
                         .rep_n = 2, .rep_p = 2.0};
    float peaked[4] = {0, 0, 9, 0};
    int32_t sl = 0, t1, d1;
    float l1;
    int codes[3];
    for (int j = 0; j < 3; j++) sample_tokens(b, &t1, &l1, &d1, &one, &sl, peaked, 1, 4), codes[j] = d1;
    test_check(t1 == 2 && codes[0] == 0 && codes[1] == 0 && codes[2] == SAMPLE_DONE_LENGTH && one.n_gen == 3,
               "length budget: done after max_new tokens (codes %d %d %d)", codes[0], codes[1], codes[2]);
    one.n_gen = 0, one.rep_p = 0.5;  // token 2 has pi > 0.99: two in a row stop the sequence
    sample_tokens(b, &t1, &l1, &d1, &one, &sl, peaked, 1, 4);
    codes[0] = d1;
    sample_tokens(b, &t1, &l1, &d1, &one, &sl, peaked, 1, 4);
    test_check(codes[0] == 0 && d1 == SAMPLE_DONE_REPETITION && one.run == 2, "repetition: done after rep_n tokens");
    one.eos_id = 2;
    sample_tokens(b, &t1, &l1, &d1, &one, &sl, peaked, 1, 4);
    test_check(d1 == SAMPLE_DONE_EOS, "EOS takes precedence over repetition and length");
    free(logits), free(scratch);
}

int main(void) {
    test_device_op();
    test_shortfall();
    test_topk_topp();
    test_selection();
    test_logp();
    return test_finish("test_sampler");
}
