// tests/test_ep.c — expert parallelism (model/moe_ep.h over trainer/dist_ep.h) across real ranks: run alone
// (a world of one) and under mpirun -np 2, 3 and 4 (tests/cmake/ep.cmake). Every grid ep x dp that fits the
// world trains three steps of the tiny preset (with 5 experts: every split uneven; with 3 experts on 4 EP
// ranks one rank owns none), each rank's model holding the dense parameters and its own experts only
// (model_create_experts), and is compared with one process running every rank's micro-batches in turn on
// the whole model, which every rank computes itself:
//   - memory per rank: parameters and gradients of the local layout, moments of its shards of the parts;
//   - the log-probs and load-balancing loss of every micro-batch;
//   - every gradient after the reduction (dense parameters over all ranks, experts over their DP group);
//   - the same with activation recompute (MODEL_RECOMPUTE, and MODEL_RECOMPUTE_CHEAP) on the grid ep = world,
//     and with ZeRO-1 keeping the
//     master in the optimizer's shards (optim_keep_master) on every grid;
//   - the parameters after three AdamW steps (this rank's layout), with whole moments and with ZeRO-1 (each
//     part sharded over its replicas), bit-identical over the replicas (DP group; the dense part over all);
//   - a checkpoint's shards: the ranges each rank writes (optim_owned) hold every element once over the
//     ranks, with the single process's moments, and moments loaded in the other sharding read back the same.
// Generation (check_generate): every rank holds only its experts (model_create_experts) and generates its own
// prompts through the rollout engine, the group's prefill and decode steps exchanging the routed rows (a
// rank with no prompts, ranks stopping at different steps, a rank that fails at once and serves); the tokens
// equal one process's on the whole model, the log-probs to 1e-4.
// The batches make the corner cases certain: micro-batches of one token (most experts get no row), ranks
// with no micro-batch in a step (they serve their experts through moe_ep_serve), and
// groups where one rank has two micro-batches and another one.
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "base/common.h"
#include "model/config.h"
#include "model/layers.h"
#include "model/model.h"
#include "model/moe_ep.h"
#include "model/infer.h"
#include "rl/rollout.h"
#include "tests/testutil.h"
#include "trainer/dist.h"
#include "trainer/dist_ep.h"
#include "trainer/optim.h"

#define MAXT 24
#define STEPS 3
#define AUX 0.01f

typedef struct {
    int T, nseq;
    int32_t ids[MAXT], cu[MAXT + 1], targets[MAXT];
    float dlogp[MAXT];
} micro_t;

// Micro-batches of rank r in step s: 0, 1 or 2 of them, some of a single token.
static int micro_count(int r, int s) { return (r + s) % 3 == 1 ? 0 : 1 + (r + 2 * s) % 2; }

static void micro_make(micro_t *b, const model_config_t *c, int r, int s, int k) {
    uint64_t seed = 77 + 1000 * (uint64_t)r + 100 * (uint64_t)s + (uint64_t)k;
    b->T = (r + s + k) % 4 == 0 ? 1 : 2 + (int)(test_rng_next(&seed) % (MAXT - 2));
    b->nseq = b->T >= 6 ? 2 : 1;
    b->cu[0] = 0, b->cu[1] = b->nseq == 2 ? b->T / 3 : b->T, b->cu[b->nseq] = b->T;
    for (int t = 0; t < b->T; t++) {
        b->ids[t] = (int32_t)(test_rng_next(&seed) % (uint64_t)c->vocab_size);
        b->targets[t] = (int32_t)(test_rng_next(&seed) % (uint64_t)c->vocab_size);
        b->dlogp[t] = (float)test_uniform(&seed, -0.1, 0.1);
    }
}

static optim_config_t ocfg(void) {
    optim_config_t o = {0};
    o.lr = 1e-3, o.beta1 = 0.9, o.beta2 = 0.95, o.eps = 1e-8, o.weight_decay = 0.1, o.grad_clip = 0.5;
    return o;
}

// Relative L2 difference of a and b over ranges.
static double ranges_rel(const float *a, const float *b, const optim_range_t *r, int nr) {
    double num = 0, den = 0;
    for (int i = 0; i < nr; i++)
        for (size_t j = r[i].off; j < r[i].off + r[i].len; j++) {
            double d = (double)a[j] - b[j];
            num += d * d, den += (double)b[j] * b[j];
        }
    if (!(num == num)) return INFINITY;
    return den > 0 ? sqrt(num / den) : sqrt(num);
}

static double max_abs(const float *a, const float *b, size_t n) { return test_max_abs_diff(a, b, n); }

typedef struct {
    int empty_expert, idle_rank;  // corner cases the run met
} seen_t;

// The whole model's values x [n_full] in the layout of a rank's table (its spans) to out [n_floats].
static void local_view(const float *x, const param_span_t *sp, int ns, float *out) {
    for (int i = 0; i < ns; i++) memcpy(out + sp[i].off, x + sp[i].full, sp[i].len * sizeof(float));
}

// How many ranks' owned ranges (optim_owned) hold each element of the whole model: 1 everywhere, summed
// over d. Returns the worst element's count (0 or > 1 is wrong), -1 on a failed sum.
static double owned_cover(dist_t *d, const optim_t *o, const param_span_t *sp, int ns, size_t nf) {
    double *cnt = cispo_calloc(nf, sizeof(double));
    optim_range_t *r;
    int nr = optim_owned(o, &r);
    for (int i = 0; i < nr; i++)
        for (size_t a = r[i].off; a < r[i].off + r[i].len; a++)
            for (int k = 0; k < ns; k++)
                if (a >= sp[k].off && a < sp[k].off + sp[k].len) cnt[sp[k].full + (a - sp[k].off)] += 1;
    free(r);
    double worst = 1;
    if (dist_allreduce_sum_f64(d, cnt, nf)) worst = -1;
    for (size_t i = 0; i < nf && worst >= 0; i++)
        if (cnt[i] != 1) worst = cnt[i];
    free(cnt);
    return worst;
}

// One run of the grid ep over d: three steps, compared with the single-process reference. Each rank's model
// holds the dense parameters and its own experts only (model_create_experts).
static void check_grid(dist_t *d, const model_config_t *c0, int n_experts, int ep, int zero, int recompute, int keep,
                       seen_t *seen) {
    model_config_t c = *c0;
    c.n_experts = n_experts;
    dist_ep_t g;
    if (!test_check(dist_ep_init(&g, d, ep) == 0, "grid ep %d: %s", ep, cispo_last_error())) return;
    char what[96];
    snprintf(what, sizeof what, "E %d, world %d = ep %d x dp %d%s%s%s", n_experts, d->world, ep, g.dp,
             zero ? ", ZeRO-1" : "",
             recompute == MODEL_RECOMPUTE ? ", activation recompute" : recompute ? ", cheap recompute" : "",
             keep ? ", master in shards" : "");
    int elo, ehi;
    moe_ep_range(n_experts, ep, g.ep_rank, &elo, &ehi);
    model_t *m = model_create_experts(backend_host(), &c, NULL, MAXT, elo, ehi, recompute);
    model_t *ref = model_create(&c, NULL, MAXT);
    const size_t n = m->table.n_floats, nf = ref->table.n_floats;
    param_init_hf(m->params, &m->table, &c, 5);  // per-tensor streams: the whole model's values of its tensors
    param_init_hf(ref->params, &ref->table, &c, 5);
    param_span_t *sp;
    const int ns = param_table_spans(&m->table, &c, &sp);
    float *view = cispo_malloc(n * sizeof(float));
    local_view(ref->params, sp, ns, view);
    test_check(!memcmp(view, m->params, n * sizeof(float)), "%s: the local buffer holds the whole model's values",
               what);
    moe_ep_comm_t comm;
    dist_ep_comm(&g, m->be, &comm);
    test_check(moe_ep_attach(m, &comm) == 0, "%s: attach: %s", what, cispo_last_error());
    optim_config_t oc = ocfg();
    optim_t o, oref;
    optim_init_ep(&o, m->be, &oc, &m->table, &c, NULL, &g, zero);
    optim_init(&oref, &oc, nf);
    // the optimizer keeps its shards of the master (on the CPU the model's fp32 buffer stays the working copy
    // it all-gathers into, so m->params still reads the weights)
    if (keep) test_check(optim_keep_master(&o, m->params, m->wparams) == (o.part[0].shard || o.part[1].shard),
                         "%s: the optimizer keeps the master where a part is sharded", what);
    // memory per rank: parameters and gradients of the dense tensors and its own experts; moments of its
    // shards of those (ZeRO-1: the dense part over the world, the experts over the DP group)
    const size_t FC3L = 3 * (size_t)c.intermediate_size * c.hidden_size * c.n_layers, mine_x = (size_t)(ehi - elo) * FC3L;
    const size_t dense = nf - (size_t)n_experts * FC3L;
    size_t dlo, dhi, xlo, xhi;
    dist_shard_range(zero ? d->world : 1, zero ? d->rank : 0, dense, &dlo, &dhi);
    dist_shard_range(zero ? g.dp : 1, zero ? g.dp_rank : 0, mine_x, &xlo, &xhi);
    test_check(n == dense + mine_x && o.part[0].n == dense && o.part[1].n == mine_x &&
                   o.part[0].hi - o.part[0].lo == dhi - dlo && o.part[1].hi - o.part[1].lo == xhi - xlo,
               "%s: rank %d holds %zu of the model's %zu floats (dense %zu + experts [%d, %d)), moments for %zu + %zu",
               what, d->rank, n, nf, dense, elo, ehi, o.part[0].hi - o.part[0].lo, o.part[1].hi - o.part[1].lo);
    float *gref = cispo_malloc(nf * sizeof(float)), *gview = cispo_malloc(n * sizeof(float));
    float lp[MAXT], lr_[MAXT];
    double worst_lp = 0, worst_aux = 0, worst_gd = 0, worst_gx = 0, worst_norm = 0;
    int ok_same = 1;
    for (int s = 0; s < STEPS; s++) {
        // the reference: every rank's micro-batches in rank order, gradients summed
        model_zero_grad(ref);
        for (int r = 0; r < d->world; r++)
            for (int k = 0; k < micro_count(r, s); k++) {
                micro_t b;
                micro_make(&b, &c, r, s, k);
                model_forward(ref, b.ids, b.cu, b.nseq, b.T);
                model_logprobs(ref, b.targets, lr_, NULL);
                // the routing of this micro-batch: experts without rows, EP ranks whose experts get none
                for (int l = 0; l < c.n_layers; l++) {
                    int cnt[16] = {0};
                    const int32_t *ti = IACT(ref, ref->layer[l].topk_idx);
                    for (int q = 0; q < b.T * c.n_experts_per_tok; q++) cnt[ti[q]]++;
                    for (int e = 0; e < n_experts; e++) seen->empty_expert |= cnt[e] == 0;
                }
                model_backward(ref, b.dlogp, AUX);
            }
        memcpy(gref, ref->grads, nf * sizeof(float));
        // this rank's micro-batches, then idle passes up to the EP group's most
        model_zero_grad(m);
        const int mine = micro_count(d->rank, s);
        seen->idle_rank |= mine == 0;
        for (int k = 0; k < mine; k++) {
            micro_t b;
            micro_make(&b, &c, d->rank, s, k);
            test_check(model_forward(m, b.ids, b.cu, b.nseq, b.T) == 0, "forward: %s", cispo_last_error());
            model_logprobs(m, b.targets, lp, NULL);
            // the same micro-batch alone on the reference's model (its weights are the reference's too)
            float aux_ep = m->aux_loss;
            model_forward(ref, b.ids, b.cu, b.nseq, b.T);
            model_logprobs(ref, b.targets, lr_, NULL);
            double dl = max_abs(lp, lr_, (size_t)b.T), da = fabs((double)aux_ep - ref->aux_loss);
            worst_lp = dl > worst_lp ? dl : worst_lp;
            worst_aux = da > worst_aux ? da : worst_aux;
            model_backward(m, b.dlogp, AUX);
        }
        moe_ep_serve(m, 1);  // the group's ranks with more micro-batches still need this rank's experts
        test_check(optim_reduce_grads(&o, m->grads) == 0, "%s: gradient reduction: %s", what, cispo_last_error());
        if (!zero) {  // whole sums: the dense part and this rank's experts equal the reference
            local_view(gref, sp, ns, gview);
            double gd = ranges_rel(m->grads, gview, o.part[0].r, o.part[0].nr);
            double gx = ranges_rel(m->grads, gview, o.part[1].r, o.part[1].nr);
            worst_gd = gd > worst_gd ? gd : worst_gd;
            worst_gx = gx > worst_gx ? gx : worst_gx;
        }
        double lr1, lr2;
        double n1 = optim_step(&o, m->params, m->grads, &lr1), n2 = optim_step(&oref, ref->params, gref, &lr2);
        double dn = fabs(n1 - n2) / (n2 > 0 ? n2 : 1);
        worst_norm = dn > worst_norm ? dn : worst_norm;
        // bit-identical replicas: the whole buffer over the DP group (same experts), the dense part over all
        float *p0 = cispo_malloc(n * sizeof(float)), *dn0 = cispo_malloc((o.part[0].n + 1) * sizeof(float));
        float *dmine = cispo_malloc((o.part[0].n + 1) * sizeof(float));
        memcpy(p0, m->params, n * sizeof(float));
        dist_broadcast_f32(&g.dp_group, p0, n, 0);
        optim_part_values(&o, 0, m->params, dmine);
        memcpy(dn0, dmine, o.part[0].n * sizeof(float));
        dist_broadcast_f32(d, dn0, o.part[0].n, 0);
        double differ = memcmp(p0, m->params, n * sizeof(float)) != 0 || memcmp(dn0, dmine, o.part[0].n * sizeof(float));
        dist_allreduce_sum_f64(d, &differ, 1);
        ok_same &= differ == 0;
        free(p0), free(dn0), free(dmine);
    }
    TEST_LE(worst_lp, 1e-5, "%s: log-probs of every micro-batch equal the unsplit model's (max |diff| %.3g)", what,
            worst_lp);
    TEST_LE(worst_aux, 1e-6, "%s: load-balancing losses equal (max |diff| %.3g)", what, worst_aux);
    if (!zero) {
        TEST_LE(worst_gd, 1e-5, "%s: dense gradients summed over all ranks equal the single process (rel %.3g)", what,
                worst_gd);
        TEST_LE(worst_gx, 1e-5, "%s: this rank's expert gradients summed over its DP group equal the single process "
                "(rel %.3g)", what, worst_gx);
    }
    TEST_LE(worst_norm, 1e-5, "%s: global gradient norms agree (rel %.3g)", what, worst_norm);
    test_check(ok_same, "%s: replicas bit-identical after every step (DP group: all; world: the dense part)", what);
    local_view(ref->params, sp, ns, view);
    double dp = max_abs(m->params, view, n);
    // the DP sums round otherwise than the single process's (by how the BLAS blocks its products: it differs
    // by CPU), and AdamW's m / sqrt(v) magnifies that where a gradient is near 0: a limit of 0.3% of the
    // largest move AdamW can make in STEPS steps (lr each); 2.8e-6 measured on an AMD EPYC, below 2e-6 elsewhere
    const double ptol = 3e-3 * 1e-3 * STEPS;
    TEST_LE(dp, ptol, "%s: parameters after %d AdamW steps (this rank's layout) equal the single process (max |diff| "
            "%.3g)", what, STEPS, dp);
    // a checkpoint's shard: the owned ranges cover the whole model once over the ranks, and their moments
    // are the single process's
    double cover = owned_cover(d, &o, sp, ns, nf);
    test_check(cover == 1, "%s: the ranks' owned ranges hold every element of the model once (worst count %g)", what,
               cover);
    optim_range_t *r;
    const int nr = optim_owned(&o, &r);
    size_t tot = 0;
    for (int i = 0; i < nr; i++) tot += r[i].len;
    float *hp = cispo_malloc((tot + 1) * sizeof(float)), *hm = cispo_malloc((tot + 1) * sizeof(float));
    float *hv = cispo_malloc((tot + 1) * sizeof(float)), *mview = cispo_malloc(n * sizeof(float));
    float *vview = cispo_malloc(n * sizeof(float));
    optim_owned_values(&o, m->params, hp, hm, hv);
    local_view(oref.m, sp, ns, mview);
    local_view(oref.v, sp, ns, vview);
    double wm_ = 0, wv_ = 0, wp_ = 0;
    for (int i = 0, at = 0; i < nr; at += (int)r[i].len, i++) {
        wp_ = fmax(wp_, max_abs(hp + at, m->params + r[i].off, r[i].len));
        wm_ = fmax(wm_, test_rel_l2(hm + at, mview + r[i].off, r[i].len));
        wv_ = fmax(wv_, test_rel_l2(hv + at, vview + r[i].off, r[i].len));
    }
    test_check(wp_ == 0 && wm_ <= 1e-5 && wv_ <= 1e-5, "%s: owned parameters (%.3g) and moments m (%.3g), v (%.3g) "
               "are this rank's and the single process's", what, wp_, wm_, wv_);
    // moments loaded from this rank's whole layout into the other sharding give back the same bits
    for (size_t i = 0; i < n; i++) mview[i] = (float)i, vview[i] = (float)(2 * i);
    optim_t o2;
    optim_init_ep(&o2, m->be, &oc, &m->table, &c, NULL, &g, !zero);  // the other sharding
    optim_load_moments(&o2, mview, vview);
    optim_range_t *r2;
    const int nr2 = optim_owned(&o2, &r2);
    int same = 1;
    size_t tot2 = 0;
    for (int i = 0; i < nr2; i++) tot2 += r2[i].len;
    float *bm = cispo_malloc((tot2 + 1) * sizeof(float)), *bv = cispo_malloc((tot2 + 1) * sizeof(float));
    optim_owned_values(&o2, m->params, NULL, bm, bv);
    for (int i = 0, at = 0; i < nr2; at += (int)r2[i].len, i++)
        same &= !memcmp(bm + at, mview + r2[i].off, r2[i].len * sizeof(float)) &&
                !memcmp(bv + at, vview + r2[i].off, r2[i].len * sizeof(float));
    test_check(same, "%s: moments loaded %s and read back for a shard are the same bits", what,
               zero ? "whole" : "as ZeRO-1 shards");
    optim_free(&o2);
    free(r), free(r2), free(hp), free(hm), free(hv), free(mview), free(vview), free(bm), free(bv);
    free(sp), free(view), free(gref), free(gview);
    optim_free(&o), optim_free(&oref);
    model_free(m), model_free(ref);
    dist_ep_free(&g);
}

// ---- generation (prefill and decode) with the experts split ----

// Stops at a token divisible by 7 (after 2): sequences end at different, data-dependent steps.
static int stop_mod7(void *ctx, const int32_t *tokens, int n) {
    (void)ctx;
    return n >= 2 && tokens[n - 1] % 7 == 0;
}

// Prompts of rank r in case k: rank 1 has none (it only serves); the others 1..5 of 2..30 tokens.
static int gen_count(int r, int k) { return r == 1 ? 0 : 1 + (2 * r + k) % 5; }

// Each rank holds only its experts (model_create_experts) and generates its own prompts through the
// rollout engine (3 slots: admissions wait; chunked prefill of 7 tokens; length budgets that differ by rank,
// a stop string), with the group's ranks stepping together; every sequence must be the one a single
// process generates on the whole model for the same prompt and seed. In case 2 rank 0 asks for a context
// the engine cannot hold: it fails at once and serves, and the others still finish.
static void check_generate(dist_t *d, const model_config_t *c0, int n_experts, int ep) {
    model_config_t c = *c0;
    c.n_experts = n_experts;
    dist_ep_t g;
    if (!test_check(dist_ep_init(&g, d, ep) == 0, "grid ep %d: %s", ep, cispo_last_error())) return;
    char what[96];
    snprintf(what, sizeof what, "generation, E %d, world %d = ep %d x dp %d", n_experts, d->world, ep, g.dp);
    int lo, hi;
    moe_ep_range(n_experts, ep, g.ep_rank, &lo, &hi);
    const int MT = 40, CTX = 80;
    model_t *full = model_create(&c, NULL, MT), *m = model_create_experts(backend_host(), &c, NULL, MT, lo, hi, 0);
    param_init_hf(full->params, &full->table, &c, 9);
    param_init_hf(m->params, &m->table, &c, 9);  // each tensor from its own stream: the whole model's values
    // the local layout: every non-expert tensor and experts [lo, hi) only, each equal to the whole model's
    const size_t FC3 = 3 * (size_t)c.intermediate_size * c.hidden_size * c.n_layers;
    test_check(m->table.n_floats == full->table.n_floats - (size_t)(n_experts - (hi - lo)) * FC3 &&
                   m->table.n_full == full->table.n_floats,
               "%s: rank %d holds %zu of the model's %zu floats (experts [%d, %d))", what, d->rank, m->table.n_floats,
               full->table.n_floats, lo, hi);
    param_span_t *sp;
    int ns = param_table_spans(&m->table, &c, &sp), same = 1;
    size_t covered = 0;
    for (int i = 0; i < ns; i++) {
        same &= !memcmp(m->params + sp[i].off, full->params + sp[i].full, sp[i].len * sizeof(float));
        covered += sp[i].len;
    }
    test_check(same && covered == m->table.n_floats, "%s: the local buffer's %d spans are the whole model's values",
               what, ns);
    free(sp);
    int32_t ids[3] = {1, 2, 3}, cu[2] = {0, 3};
    if (hi - lo < n_experts)
        test_check(model_forward(m, ids, cu, 1, 3) == -1 && strstr(cispo_last_error(), "holds experts"),
                   "%s: a forward of a model holding some experts, without its group, is refused: %s", what,
                   cispo_last_error());
    moe_ep_comm_t comm;
    dist_ep_comm(&g, m->be, &comm);
    test_check(moe_ep_attach(m, &comm) == 0, "%s: attach: %s", what, cispo_last_error());
    const sampler_config_t samplers[3] = {{.temperature = 1.0, .top_p = 1.0, .greedy = 1},
                                          {.temperature = 0.9, .top_p = 0.95, .top_k = 20, .tempered_logp = 1},
                                          {.temperature = 1.0, .top_p = 1.0}};
    for (int k = 0; k < 3; k++) {
        const int n = gen_count(d->rank, k);
        int32_t *buf[5];
        const int32_t *pp[5];
        int pl[5];
        uint64_t seeds[5];
        for (int i = 0; i < n; i++) {
            uint64_t s = 500 + 10 * (uint64_t)d->rank + (uint64_t)i + 100 * (uint64_t)k;
            pl[i] = 2 + (int)(test_rng_next(&s) % 29);
            buf[i] = cispo_malloc(sizeof(int32_t) * (size_t)CTX);
            for (int t = 0; t < pl[i]; t++) buf[i][t] = (int32_t)(test_rng_next(&s) % (uint64_t)c.vocab_size);
            pp[i] = buf[i];
            seeds[i] = sampler_rng_seed(33 + (uint64_t)k, 100 * (uint64_t)d->rank + (uint64_t)i);
        }
        const int fail_here = k == 2 && d->rank == 0;
        if (fail_here) pl[0] = CTX;  // no room for a new token: refused before the first step
        rollout_config_t rc = {.max_new_tokens = 4 + 5 * (d->rank % 3), .eos_id = -1, .sampler = samplers[k],
                               .stop_check = k == 1 ? stop_mod7 : NULL, .prefill_chunk = 7};
        rollout_sample_t out[5], ref;
        infer_t *e = infer_create(m, 3, CTX), *er = infer_create(full, 1, CTX);
        int rc_ep = rollout_generate(e, &rc, pp, pl, seeds, n, out, NULL);
        if (fail_here) {
            test_check(rc_ep == -1, "%s: rank 0's impossible prompt fails there while the others go on", what);
        } else if (test_check(rc_ep == 0, "%s, case %d: rollout on rank %d: %s", what, k, d->rank, cispo_last_error())) {
            int tok_same = 1;
            double dl = 0;
            for (int i = 0; i < n; i++) {
                test_check(rollout_generate(er, &rc, &pp[i], &pl[i], &seeds[i], 1, &ref, NULL) == 0, "reference: %s",
                           cispo_last_error());
                tok_same &= ref.n_tokens == out[i].n_tokens && ref.stop == out[i].stop &&
                            !memcmp(ref.tokens, out[i].tokens, sizeof(int32_t) * (size_t)ref.n_tokens);
                for (int j = 0; j < ref.n_tokens && j < out[i].n_tokens; j++)
                    dl = fmax(dl, fabs((double)ref.logp[j] - out[i].logp[j]));
                rollout_sample_free(&ref);
                rollout_sample_free(&out[i]);
            }
            test_check(tok_same, "%s, case %d: rank %d's %d sequences (budget %d) are one process's tokens", what, k,
                       d->rank, n, rc.max_new_tokens);
            TEST_LE(dl, 1e-4, "%s, case %d: rank %d's log-probs equal one process's (max |diff| %.3g)", what, k,
                    d->rank, dl);
        }
        infer_free(e), infer_free(er);
        for (int i = 0; i < n; i++) free(buf[i]);
    }
    model_free(m), model_free(full);
    dist_ep_free(&g);
}

int main(int argc, char **argv) {
    dist_t d;
    if (dist_init(&d, &argc, &argv)) {
        printf("%s\n", cispo_last_error());
        return 1;
    }
    const char *src = getenv("CISPO_SRC");
    char path[1024];
    snprintf(path, sizeof path, "%s/configs/models/tiny.yaml", src ? src : ".");
    model_config_t c;
    if (!test_check(model_config_load(&c, path) == 0, "tiny preset: %s", cispo_last_error())) return test_finish("test_ep");
    seen_t seen = {0};
    for (int ep = 1; ep <= d.world; ep++) {
        if (d.world % ep) continue;
        for (int zero = 0; zero <= 1; zero++) check_grid(&d, &c, 5, ep, zero, 0, 0, &seen);
        check_grid(&d, &c, 5, ep, 1, 0, 1, &seen);  // ZeRO-1 with the master in the optimizer's shards
        // activation recompute: the backward's recompute forwards are exchanges too (ranks without
        // micro-batches serve them)
        if (ep == d.world) {
            check_grid(&d, &c, 5, ep, 0, MODEL_RECOMPUTE, 0, &seen);
            check_grid(&d, &c, 5, ep, 1, MODEL_RECOMPUTE_CHEAP, 0, &seen);
        }
        if (ep == 4) check_grid(&d, &c, 3, ep, 0, 0, 0, &seen);  // EP rank 3 owns no expert
    }
    for (int ep = 1; ep <= d.world; ep++)
        if (d.world % ep == 0) check_generate(&d, &c, 5, ep);
    if (d.world == 4) check_generate(&d, &c, 3, 4);  // EP rank 3 owns no expert
    // an ep that does not divide the world is refused, naming both
    if (d.world > 1) {
        dist_ep_t g;
        int rc = dist_ep_init(&g, &d, d.world + 1);
        test_check(rc == -1 && strstr(cispo_last_error(), "does not divide"), "ep %d on %d ranks refused: %s",
                   d.world + 1, d.world, cispo_last_error());
    }
    test_check(seen.empty_expert, "the batches had experts without rows");
    if (d.world > 1) test_check(seen.idle_rank, "the batches had a rank without micro-batches in a step");
    int rc = test_finish(d.world > 1 ? "test_ep (mpi)" : "test_ep");
    dist_finalize(&d);
    return rc;
}
