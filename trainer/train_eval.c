// trainer/train_eval.c — held-out accuracy: every held-out prompt decoded greedily (or eval_samples
// samples at the rollout temperature, with fixed seeds so that evaluations before and after
// training draw the same random numbers), scored by its verifier.
// defines: train_evaluate
#include <stdlib.h>

#include "kernels/common.h"
#include "trainer/train.h"

int train_evaluate(train_t *t, double *accuracy, double *mean_len) {
    const run_config_t *c = &t->cfg;
    const int S = c->eval_greedy ? 1 : c->eval_samples, N = t->eval.n * S;
    const int32_t **pp = cispo_malloc(sizeof(*pp) * (size_t)N);
    int *pl = cispo_malloc(sizeof(int) * (size_t)N), *ex = cispo_malloc(sizeof(int) * (size_t)N);
    uint64_t *seeds = cispo_malloc(sizeof(uint64_t) * (size_t)N);
    for (int i = 0; i < N; i++) {
        ex[i] = i / S;
        pp[i] = t->eval.ex[ex[i]].ids, pl[i] = t->eval.ex[ex[i]].n_ids;
        seeds[i] = sampler_rng_seed((uint64_t)c->seed ^ 0xE7A1u, (uint64_t)i);
    }
    rollout_config_t rc = {.max_new_tokens = c->max_new_tokens,
                           .eos_id = t->eos_id,
                           .sampler = {.temperature = c->temperature, .top_p = c->top_p, .top_k = c->top_k,
                                       .greedy = c->eval_greedy},
                           .rep_n = c->rep_n,
                           .rep_p = c->rep_p};
    rollout_sample_t *rs = cispo_calloc((size_t)N, sizeof(rollout_sample_t));
    int r = rollout_generate(t->engine, &rc, pp, pl, seeds, N, rs, NULL);
    if (!r) {
        char **texts = cispo_malloc(sizeof(char *) * (size_t)N);
        verdict_t *v = cispo_malloc(sizeof(verdict_t) * (size_t)N);
        train_score(t, ex, &t->eval, rs, N, texts, v);
        double acc = 0, len = 0;
        for (int i = 0; i < N; i++) {
            acc += v[i].correct != 0 && !v[i].failed;
            len += rs[i].n_tokens;
            free(texts[i]);
            rollout_sample_free(&rs[i]);
        }
        *accuracy = N ? acc / N : 0;
        if (mean_len) *mean_len = N ? len / N : 0;
        free(texts), free(v);
    }
    free(pp), free(pl), free(ex), free(seeds), free(rs);
    return r;
}
