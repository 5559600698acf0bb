// trainer/train_eval.c — held-out accuracy: every held-out prompt decoded greedily (or eval_samples
// samples at the rollout temperature, with fixed seeds so that evaluations before and after
// training draw the same random numbers), scored by its verifier.
// Data parallel (world > 1): each rank decodes its contiguous slice of the (prompt, sample) list with the
// same seeds as one process; the counts are summed over ranks.
// defines: train_evaluate
#include <stdlib.h>

#include "base/common.h"
#include "trainer/dist.h"
#include "trainer/train.h"

int train_evaluate(train_t *t, double *accuracy, double *mean_len) {
    const run_config_t *c = &t->cfg;
    const int S = c->eval_greedy ? 1 : c->eval_samples, NG = t->eval.n * S;
    dist_t *dw = dist_world();
    const int lo = (int)((long)NG * dw->rank / dw->world), N = (int)((long)NG * (dw->rank + 1) / dw->world) - lo;
    const size_t A = (size_t)(N > 0 ? N : 1);
    const int32_t **pp = cispo_malloc(sizeof(*pp) * A);
    int *pl = cispo_malloc(sizeof(int) * A), *ex = cispo_malloc(sizeof(int) * A);
    uint64_t *seeds = cispo_malloc(sizeof(uint64_t) * A);
    for (int i = 0; i < N; i++) {
        ex[i] = (lo + i) / S;
        pp[i] = t->eval.ex[ex[i]].ids, pl[i] = t->eval.ex[ex[i]].n_ids;
        seeds[i] = sampler_rng_seed((uint64_t)c->seed ^ 0xE7A1u, (uint64_t)(lo + i));
    }
    rollout_config_t rc = {.max_new_tokens = c->max_new_tokens,
                           .eos_id = t->eos_id,
                           .sampler = {.temperature = c->temperature, .top_p = c->top_p, .top_k = c->top_k,
                                       .greedy = c->eval_greedy},
                           .rep_n = c->rep_n,
                           .rep_p = c->rep_p,
                           .tools = t->tools.tools ? &t->tools : NULL};
    rollout_sample_t *rs = cispo_calloc(A, sizeof(rollout_sample_t));
    int r = rollout_generate(t->engine, &rc, pp, pl, seeds, N, rs, NULL);  // N may be 0 (EP: it serves)
    if (dw->world > 1) {  // a failure on any rank fails every rank (they would wait in the sums below)
        double fail = r != 0;
        if (dist_allreduce_max_f64(dw, &fail, 1)) r = -1;
        else if (fail && !r) r = cispo_fail("held-out evaluation failed on another rank");
    }
    if (!r) {
        char **texts = cispo_malloc(sizeof(char *) * A);
        verdict_t *v = cispo_malloc(sizeof(verdict_t) * A);
        if (N > 0) train_reward(t, ex, &t->eval, rs, N, texts, v);
        double sums[2] = {0, 0};  // correct, completion tokens
        for (int i = 0; i < N; i++) {
            sums[0] += v[i].correct != 0 && !v[i].failed;
            sums[1] += rs[i].n_tokens;
            free(texts[i]);
            rollout_sample_free(&rs[i]);
        }
        if (dist_allreduce_sum_f64(dw, sums, 2)) r = -1;
        *accuracy = NG ? sums[0] / NG : 0;
        if (mean_len) *mean_len = NG ? sums[1] / NG : 0;
        free(texts), free(v);
    }
    free(pp), free(pl), free(ex), free(seeds), free(rs);
    return r;
}
