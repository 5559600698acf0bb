// tests/test_grad_overlap.c — the gradient all-reduce overlapped with the backward (run key
// overlap_grad_reduce; trainer/train_device.c) across real ranks: run alone (a world of one) and under
// mpirun -np 2 and 3 (tests/cmake/mpi.cmake). On the tiny preset, tied and untied:
//   - model_grad_ranges over layers n_layers-1 .. 0 and -1 cover the flat buffer exactly once, and
//     model_backward calls its hook in that order, once each;
//   - several micro-batches per update (gradients accumulate, the hook armed on the last only), with the
//     same count on every rank and with uneven counts (rank r has r of them: rank 0 none), the overlapped
//     reduction gives the same summed gradients as the reduction of the whole buffer after the backward
//     (within fp32 reduction order), the same on every rank; and three AdamW steps the same losses and
//     parameters.
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "base/common.h"
#include "tests/testdist.h"
#include "tests/testutil.h"
#include "trainer/dist.h"
#include "trainer/optim.h"
#include "trainer/train.h"

enum { MAXT = 24, STEPS = 3 };

typedef struct {
    int calls, order_ok;
    int expect;  // the next layer expected
    int n_layers;
} order_t;

static void order_hook(void *ctx, int layer, const size_t *off, const size_t *len, int n) {
    (void)off, (void)len, (void)n;
    order_t *o = ctx;
    o->order_ok &= layer == o->expect;
    o->calls++;
    o->expect = layer > 0 ? layer - 1 : layer == 0 ? -1 : -2;
}

static void check_ranges(const model_config_t *cfg, const char *what) {
    model_t *m = model_create(cfg, NULL, MAXT);
    const size_t n = m->table.n_floats;
    unsigned char *seen = cispo_calloc(n, 1);
    int ok = 1;
    for (int l = cfg->n_layers - 1; l >= -1; l--) {
        size_t off[2], len[2];
        int k = model_grad_ranges(m, l, off, len);
        ok &= k == (l < 0 ? 2 : 1);
        for (int j = 0; j < k; j++)
            for (size_t i = off[j]; i < off[j] + len[j] && i < n; i++) ok &= seen[i]++ == 0;
    }
    for (size_t i = 0; i < n; i++) ok &= seen[i] == 1;
    test_check(ok, "%s: the gradient ranges cover the %zu floats exactly once", what, n);
    // every tensor of layer l inside layer l's range
    for (int e = 0; e < m->table.n_entries; e++) {
        const param_entry_t *pe = &m->table.entries[e];
        int l = -1;
        if (sscanf(pe->name, "model.layers.%d.", &l) != 1) l = -1;
        size_t off[2], len[2];
        int k = model_grad_ranges(m, l, off, len), in = 0;
        for (int j = 0; j < k; j++) in |= pe->offset >= off[j] && pe->offset + pe->numel <= off[j] + len[j];
        if (!in) ok = 0;
    }
    test_check(ok, "%s: every tensor lies in its layer's range", what);
    free(seen);
    model_free(m);
}

// One micro-batch of rank `rank`, update `step`, index k: two sequences of random tokens.
static void micro_batch(model_t *m, const model_config_t *cfg, int rank, int step, int k, double *loss) {
    uint64_t s = 77 + 1000 * (uint64_t)rank + 100 * (uint64_t)step + (uint64_t)k;
    const int l0 = 5 + (int)(rng_next(&s) % 6), l1 = 4 + (int)(rng_next(&s) % 8), T = l0 + l1;
    int32_t ids[MAXT], tgt[MAXT], cu[3] = {0, l0, T};
    for (int t = 0; t < T; t++) ids[t] = (int32_t)(rng_next(&s) % (uint64_t)cfg->vocab_size);
    for (int t = 0; t < T; t++) tgt[t] = t + 1 == l0 || t + 1 == T ? -1 : ids[t + 1];
    test_check(model_forward(m, ids, cu, 2, T) == 0, "forward: %s", cispo_last_error());
    float lp[MAXT], d[MAXT];
    model_logprobs(m, tgt, lp, NULL);
    for (int t = 0; t < T; t++) *loss -= lp[t], d[t] = tgt[t] < 0 ? 0.0f : -1.0f / 64;
    model_backward(m, d, 0.01f);
}

// STEPS updates of a data-parallel run: rank r has nmb[r] micro-batches each; grads0 gets the first
// update's reduced gradient, params the final parameters, loss the global loss of each update.
static void run(dist_t *d, const model_config_t *cfg, int overlap, const int *nmb, float *grads0, float *params,
                double *loss) {
    train_t t;
    memset(&t, 0, sizeof t);
    t.cfg.overlap_grad_reduce = overlap;
    t.be = *backend_host();
    t.m = model_create(cfg, NULL, MAXT);
    const size_t n = t.m->table.n_floats;
    param_init_hf(t.m->params, &t.m->table, cfg, 5);
    optim_config_t oc = {0};
    oc.lr = 1e-2, oc.beta1 = 0.9, oc.beta2 = 0.95, oc.eps = 1e-8, oc.weight_decay = 0.1, oc.grad_clip = 1.0;
    optim_init(&t.opt, &oc, n);
    for (int s = 0; s < STEPS; s++) {
        model_zero_grad(t.m);
        double l = 0;
        const int K = nmb[d->rank];
        for (int k = 0; k < K; k++) {
            train_arm_grad_reduce(&t, k == K - 1);
            micro_batch(t.m, cfg, d->rank, s, k, &l);
        }
        if (overlap && d->world > 1)  // the armed backward issued every range itself; without one, nothing yet
            test_check(t.grads_issued == (K > 0 ? cfg->n_layers + 1 : 0), "rank %d: %d ranges issued by the backward",
                       d->rank, t.grads_issued);
        test_check(train_issue_grads(&t) == 0, "issue: %s", cispo_last_error());
        test_check(t.m->grad_hook == NULL, "the hook is disarmed after the update's backward");
        test_check(train_allreduce_grads(&t) == 0, "reduce: %s", cispo_last_error());
        test_check(t.grads_reqs == NULL && t.grads_issued == 0, "nothing left in flight");
        dist_allreduce_sum_f64(d, &l, 1);
        loss[s] = l;
        if (s == 0) memcpy(grads0, t.m->grads, n * sizeof(float));
        double lr;
        optim_step(&t.opt, t.m->params, t.m->grads, &lr);
    }
    memcpy(params, t.m->params, n * sizeof(float));
    optim_free(&t.opt);
    model_free(t.m);
}

static void check_runs(dist_t *d, const model_config_t *cfg, const int *nmb, const char *what) {
    model_t *probe = model_create(cfg, NULL, 1);
    const size_t n = probe->table.n_floats;
    model_free(probe);
    float *g[2], *p[2];
    double loss[2][STEPS];
    for (int o = 0; o < 2; o++) {
        g[o] = cispo_malloc(n * sizeof(float)), p[o] = cispo_malloc(n * sizeof(float));
        run(d, cfg, o, nmb, g[o], p[o], loss[o]);
    }
    double gd = test_max_rel_diff(g[1], g[0], n, 1e-6), pd = test_max_rel_diff(p[1], p[0], n, 1e-6), ld = 0;
    for (int s = 0; s < STEPS; s++) ld = fmax(ld, fabs(loss[1][s] - loss[0][s]) / (1e-9 + fabs(loss[0][s])));
    test_check(gd <= 1e-5, "%s: reduced gradients overlapped vs after the backward: max rel diff %.3g", what, gd);
    test_check(ld <= 1e-5, "%s: losses over %d AdamW steps: max rel diff %.3g", what, STEPS, ld);
    test_check(pd <= 1e-5, "%s: parameters after %d AdamW steps: max rel diff %.3g", what, STEPS, pd);
    test_check(test_same_on_all_ranks(d, g[1], n) && test_same_on_all_ranks(d, p[1], n),
               "%s: overlapped gradients and parameters are the same bits on every rank", what);
    for (int o = 0; o < 2; o++) free(g[o]), free(p[o]);
}

int main(int argc, char **argv) {
    dist_t *d = dist_world();
    if (dist_start(&argc, &argv, 0)) {
        fprintf(stderr, "%s\n", cispo_last_error());
        return 1;
    }
    optim_use_zero(NULL);
    const char *src = getenv("CISPO_SRC");
    char path[4096];
    snprintf(path, sizeof path, "%s/configs/models/tiny.yaml", src ? src : ".");
    model_config_t cfg;
    if (!test_check(model_config_load(&cfg, path) == 0, "tiny preset: %s", cispo_last_error()))
        return test_finish("test_grad_overlap");
    model_config_t tied = cfg;
    tied.tie_word_embeddings = 1;
    check_ranges(&cfg, "untied");
    check_ranges(&tied, "tied");

    {  // the hook's order on one backward
        model_t *m = model_create(&cfg, NULL, MAXT);
        param_init_hf(m->params, &m->table, &cfg, 3);
        order_t o = {0, 1, cfg.n_layers - 1, cfg.n_layers};
        m->grad_hook = order_hook, m->grad_hook_ctx = &o;
        double l = 0;
        micro_batch(m, &cfg, 0, 0, 0, &l);
        test_check(o.calls == cfg.n_layers + 1 && o.order_ok && o.expect == -2,
                   "the hook runs once per layer from the last, then for the rest (%d calls)", o.calls);
        model_free(m);
    }

    int even[16], uneven[16];
    for (int r = 0; r < 16; r++) even[r] = 3, uneven[r] = r % 4;
    if (d->world <= 16) {
        check_runs(d, &cfg, even, "3 micro-batches on every rank");
        check_runs(d, &tied, even, "tied, 3 micro-batches on every rank");
        if (d->world > 1) check_runs(d, &cfg, uneven, "rank r has r micro-batches (rank 0 none)");
    }
    int rc = test_finish("test_grad_overlap");
    dist_finalize(d);
    return rc;
}
