// tests/test_engine.c — the generation engine on the CPU backend (model/infer.h, rl/rollout.h): the
// paged KV pool (blocks mapped as sequences grow, returned when they finish, reused out of order; a
// full pool refuses a promise and names itself when written past), chunked prefill against a whole
// prefill, and rollout_generate's continuous batching (mixed lengths, chunked prefill under a token
// budget, a pool too small for every sequence at once) against each sequence generated alone with
// the same seed; the rollout's log pi_old against the training forward of prompt + completion. Blocks
// on demand: more sequences at once than whole-budget reservation allows; preemption when the pool
// runs dry mid-decode (recompute, with sampler and tool state carried over) == each sequence alone,
// no block leaked. Routing replay: the routes the rollout records (chunked prefill, decode, preemption) are
// the experts the training forward would pick for the same tokens (all of them on the CPU but router
// near-ties), and micro_forward replays them: its forward's routes are the recorded ones, its log-probs the
// rollout's. The fused lightning decode step (backend_tuning_t.decode_fused) against the separate products; the
// router in the post-attention norm (decode_route) against the separate ops.
// Run: ctest -R test_engine
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "base/common.h"
#include "kernels/ops.h"
#include "model/infer.h"
#include "model/seq_logprob.h"
#include "rl/rollout.h"
#include "tests/testutil.h"
#include "trainer/train_batch.h"

#define NP 9  // prompts of the batching test

static model_t *tiny_model(void) {
    char path[4096];
    const char *src = getenv("CISPO_SRC");
    snprintf(path, sizeof path, "%s/configs/models/tiny.yaml", src ? src : ".");
    model_config_t cfg;
    if (!test_check(model_config_load(&cfg, path) == 0, "tiny preset: %s", cispo_last_error())) return NULL;
    cfg.n_layers = 4;
    for (int l = 0; l < 4; l++) cfg.layer_kind[l] = l % 2 ? LAYER_SOFTMAX : LAYER_LIGHTNING;  // two of each
    if (!test_check(model_config_validate(&cfg, "tiny") == 0, "tiny: %s", cispo_last_error())) return NULL;
    model_t *m = model_create(&cfg, NULL, 128);  // the training forward of prompt + completion in one batch
    param_init_hf(m->params, &m->table, &cfg, 23);
    for (size_t i = 0; i < m->table.n_floats; i++) m->params[i] *= 3.0f;  // larger weights: peaked, varied outputs
    return m;
}

static void fill_ids(int32_t *ids, int n, uint64_t seed, int V) {
    for (int i = 0; i < n; i++) ids[i] = (int32_t)(test_rng_next(&seed) % (uint64_t)V);
}

static double max_diff(const float *a, const float *b, size_t n) {
    double w = 0;
    for (size_t i = 0; i < n; i++) w = fmax(w, fabs((double)a[i] - b[i]));
    return w;
}

// Blocks: mapped as a slot grows, returned on release, reused by another slot in any order; a promise
// the pool cannot keep is refused; a write past the pool fails with a message. Logits of sequences
// whose blocks were recycled equal those of each sequence in a fresh engine.
static void test_pool(model_t *m) {
    const int V = m->cfg.vocab_size;
    int32_t a[40], b[40], c[40];
    fill_ids(a, 40, 1, V), fill_ids(b, 40, 2, V), fill_ids(c, 40, 3, V);
    infer_t *e = infer_create_paged(m, 3, 64, 7);  // 7 blocks of 16: 112 positions for 3 slots
    test_check(e->n_blocks == 7 && infer_blocks_free(e) == 7, "pool of 7 blocks");
    int s0 = 0, s1 = 1, s2 = 2, la = 33, lb = 20, lc = 17;
    const int32_t *pa = a, *pb = b, *pc = c;
    test_check(infer_prefill(e, &s0, &pa, &la, 1, NULL) == 0, "prefill a: %s", cispo_last_error());
    test_check(e->mapped[0] == 3 && infer_blocks_free(e) == 4, "33 tokens map 3 blocks (%d free)", infer_blocks_free(e));
    test_check(infer_prefill(e, &s1, &pb, &lb, 1, NULL) == 0, "prefill b");
    test_check(infer_reserve(e, 2, 40) == 1 && e->reserved[2] == 0, "a promise of 3 blocks with 2 free is refused");
    test_check(infer_prefill(e, &s2, &pc, &lc, 1, NULL) == 0 && infer_blocks_free(e) == 0, "prefill c takes the last 2");
    int32_t t = 5;
    test_check(infer_decode(e, &s1, &t, 1, NULL) == 0, "decode b within its block");
    lb++;
    const int rc = infer_decode(e, &s0, &t, 1, NULL) == 0 ? 0 : -1;  // a: position 33 still fits block 3
    test_check(rc == 0, "decode a: %s", cispo_last_error());
    int32_t many[16];
    fill_ids(many, 16, 4, V);
    const int32_t *pm = many;
    int l16 = 16;
    test_check(infer_prefill_chunk(e, &s2, &pm, &l16, 1, NULL) == -1 && strstr(cispo_last_error(), "KV pool full"),
               "a write past a full pool fails naming it: %s", cispo_last_error());
    // a finishes first (out of order): its blocks serve c's growth
    infer_release(e, 0);
    test_check(infer_blocks_free(e) == 3 && e->len[0] == 0, "release returns a's 3 blocks");
    test_check(infer_prefill_chunk(e, &s2, &pm, &l16, 1, NULL) == 0, "c grows into a's blocks: %s", cispo_last_error());
    // b and c decoded together on recycled blocks == each alone in a fresh engine
    float *lg = cispo_malloc(sizeof(float) * 2 * V), *ref = cispo_malloc(sizeof(float) * V);
    int both[2] = {2, 1};
    int32_t tk[2] = {7, 9};
    test_check(infer_decode(e, both, tk, 2, lg) == 0, "decode c, b");
    int32_t cc[33], bb[21];
    memcpy(cc, c, 17 * sizeof(int32_t)), memcpy(cc + 17, many, 16 * sizeof(int32_t));
    memcpy(bb, b, 20 * sizeof(int32_t)), bb[20] = 5;
    infer_t *f = infer_create(m, 1, 64);
    const int32_t *q = cc;
    int n33 = 33, n21 = 21, z = 0;
    infer_prefill(f, &z, &q, &n33, 1, NULL);
    infer_decode(f, &z, &tk[0], 1, ref);
    double d1 = max_diff(lg, ref, (size_t)V);
    q = bb;
    infer_prefill(f, &z, &q, &n21, 1, NULL);
    infer_decode(f, &z, &tk[1], 1, ref);
    double d2 = max_diff(lg + V, ref, (size_t)V);
    TEST_LE(fmax(d1, d2), 1e-5, "recycled blocks, out-of-order release: logits equal a fresh engine's (max diff %.3g)",
            fmax(d1, d2));
    infer_free(f);
    infer_free(e);
    free(lg), free(ref);
}

// A prompt prefilled in chunks of 5 equals one prefill (lightning from the slot's state, attention over
// the slot's pages), and so does the next decode step.
static void test_chunked_prefill(model_t *m) {
    const int V = m->cfg.vocab_size, n = 37;
    int32_t ids[38];
    fill_ids(ids, 38, 8, V);
    float *whole = cispo_malloc(sizeof(float) * V), *part = cispo_malloc(sizeof(float) * V);
    infer_t *e = infer_create(m, 2, 64);
    int s = 1, len = n;
    const int32_t *p = ids;
    infer_prefill(e, &s, &p, &len, 1, whole);
    int s0 = 0;
    for (int at = 0; at < n; at += 5) {
        int l = n - at < 5 ? n - at : 5;
        const int32_t *q = ids + at;
        test_check(infer_prefill_chunk(e, &s0, &q, &l, 1, part) == 0, "chunk at %d: %s", at, cispo_last_error());
    }
    double dp = max_diff(whole, part, (size_t)V);
    infer_decode(e, &s, &ids[n], 1, whole);
    infer_decode(e, &s0, &ids[n], 1, part);
    double dd = max_diff(whole, part, (size_t)V);
    TEST_LE(fmax(dp, dd), 1e-4, "chunked prefill == whole prefill (logits max diff %.3g, next decode %.3g)", dp, dd);
    infer_free(e);
    free(whole), free(part);
}

// backend_tuning_t.decode_fused (a lightning layer's q|k|v|gate in one product, lightning_decode_qkv, the gate read
// in place) against the separate products and qkv_split: the same logits step after step (the products' sums
// differ only in how the BLAS blocks them).
static void test_decode_fused(model_t *m) {
    const int V = m->cfg.vocab_size, n = 21, steps = 6, A = model_attn_width(&m->cfg), C = m->cfg.hidden_size;
    const layer_params_t *p = &m->table.layers[0];
    test_check(p->gate == p->qkv + (size_t)3 * A * C, "the gate's weight follows q|k|v's (one product)");
    int32_t ids[21 + 6];
    fill_ids(ids, n + steps, 31, V);
    float *plain = cispo_malloc(sizeof(float) * V), *fused = cispo_malloc(sizeof(float) * V);
    infer_t *e = infer_create(m, 2, 64);
    int s0 = 0, s1 = 1, len = n;
    const int32_t *pr = ids;
    infer_prefill(e, &s0, &pr, &len, 1, plain);
    infer_prefill(e, &s1, &pr, &len, 1, fused);
    double worst = 0;
    for (int t = 0; t < steps; t++) {
        m->be->tune.decode_fused = -1;
        test_check(infer_decode(e, &s0, &ids[n + t], 1, plain) == 0, "decode: %s", cispo_last_error());
        m->be->tune.decode_fused = 1;
        test_check(infer_decode(e, &s1, &ids[n + t], 1, fused) == 0, "fused decode: %s", cispo_last_error());
        worst = fmax(worst, max_diff(plain, fused, (size_t)V));
    }
    m->be->tune.decode_fused = 0;
    TEST_LE(worst, 1e-4, "fused lightning decode == separate products over %d steps (logits max diff %.3g)", steps,
            worst);
    infer_free(e);
    free(plain), free(fused);
}

// Two sequences decoded together step after step, twice from their own prefills: with the tuning `a` sets and with
// the tuning `b` sets (the same prompts and tokens); the largest difference of the two runs' logits.
static double decode_knob_diff(model_t *m, void (*a)(backend_tuning_t *), void (*b)(backend_tuning_t *), int seed) {
    const int V = m->cfg.vocab_size, n = 17, steps = 6;
    int32_t ids[2][17 + 6];
    fill_ids(ids[0], n + steps, seed, V);
    fill_ids(ids[1], n + steps, seed + 4, V);
    float *la = cispo_malloc(sizeof(float) * 2 * V), *lb = cispo_malloc(sizeof(float) * 2 * V);
    const backend_tuning_t keep = m->be->tune;
    infer_t *e = infer_create(m, 4, 64);
    int sa[2] = {0, 1}, sb[2] = {2, 3}, len[2] = {n, n};
    const int32_t *pr[2] = {ids[0], ids[1]};
    a(&m->be->tune);
    infer_prefill(e, sa, pr, len, 2, la);
    m->be->tune = keep, b(&m->be->tune);
    infer_prefill(e, sb, pr, len, 2, lb);
    double worst = 0;
    for (int t = 0; t < steps; t++) {
        const int32_t tok[2] = {ids[0][n + t], ids[1][n + t]};
        m->be->tune = keep, a(&m->be->tune);
        test_check(infer_decode(e, sa, tok, 2, la) == 0, "decode: %s", cispo_last_error());
        m->be->tune = keep, b(&m->be->tune);
        test_check(infer_decode(e, sb, tok, 2, lb) == 0, "decode: %s", cispo_last_error());
        worst = fmax(worst, max_diff(la, lb, (size_t)2 * V));
    }
    m->be->tune = keep;
    infer_free(e);
    free(la), free(lb);
    return worst;
}

static void route_off(backend_tuning_t *t) { t->decode_route = -1; }
static void route_on(backend_tuning_t *t) { t->decode_route = 1; }
static void fused_gate_off(backend_tuning_t *t) { t->decode_fused = 1, t->decode_gate = 0; }
static void fused_gate_on(backend_tuning_t *t) { t->decode_fused = 1, t->decode_gate = 1; }
static void fused_routed(backend_tuning_t *t) { t->decode_fused = 1, t->decode_route = 1, t->decode_sort = 0; }
static void fused_sorted(backend_tuning_t *t) { t->decode_fused = 1, t->decode_route = 1, t->decode_sort = 1; }

// backend_tuning_t.decode_route (the router's product and the routes in each post-attention norm,
// residual_rmsnorm_route) against the separate ops: on the CPU the same functions, so the same logits bit for bit.
static void test_decode_route(model_t *m) {
    const double worst = decode_knob_diff(m, route_off, route_on, 37);
    TEST_LE(worst, 0.0, "decode with the router in the post-attention norm == separate ops (logits max diff %.3g)",
            worst);
}

// The fused decode step (decode_fused) with the lightning output's norm and gate in the decode op
// (lightning_decode_qkv_gate, decode_gate 1) against rmsnorm_gate_forward after lightning_decode_qkv: on the CPU
// the op is the two references in turn, so the logits are the same bits.
static void test_decode_gate(model_t *m) {
    const model_config_t *c = &m->cfg;
    int lightning = -1;
    for (int l = 0; l < c->n_layers && lightning < 0; l++)
        if (c->layer_kind[l] == LAYER_LIGHTNING) lightning = l;
    test_check(lightning >= 0, "the test model has a lightning layer");
    if (lightning < 0) return;
    const layer_params_t *p = &m->table.layers[lightning];
    test_check(p->gate == p->qkv + (size_t)3 * c->n_heads * c->head_dim * c->hidden_size,
               "the gate's weight follows q|k|v's (the fused decode step's one product)");
    const double worst = decode_knob_diff(m, fused_gate_off, fused_gate_on, 43);
    TEST_LE(worst, 0.0, "decode with the lightning output's norm in the decode op == separate ops (logits max diff "
            "%.3g)", worst);
}

// backend_tuning_t.decode_sort (the routes sorted by the post-attention norm, the gated expert product reading its
// rows through perm) against moe_dispatch's copy: the same functions on the CPU, so the same logits bit for bit.
static void test_decode_sort(model_t *m) {
    const double worst = decode_knob_diff(m, fused_routed, fused_sorted, 53);
    TEST_LE(worst, 0.0, "decode with the routes sorted in the norm == moe_dispatch (logits max diff %.3g)", worst);
}

// Stops at a token divisible by 7: sequences end at different, data-dependent lengths.
static int stop_mod7(void *ctx, const int32_t *tokens, int n) {
    (void)ctx;
    return n >= 3 && tokens[n - 1] % 7 == 0;
}

static void test_batching(model_t *m) {
    const int V = m->cfg.vocab_size;
    int32_t *prompts_buf[NP];
    const int32_t *prompts[NP];
    int plen[NP];
    uint64_t seeds[NP];
    for (int i = 0; i < NP; i++) {
        plen[i] = 2 + (i * 11) % 45;  // 2 .. 46 tokens: several longer than the prefill budget
        prompts_buf[i] = cispo_malloc(sizeof(int32_t) * (size_t)plen[i]);
        fill_ids(prompts_buf[i], plen[i], 100 + (uint64_t)i, V);
        prompts[i] = prompts_buf[i];
        seeds[i] = sampler_rng_seed(42, (uint64_t)i);
    }
    const sampler_config_t samplers[3] = {{.temperature = 1.0, .top_p = 1.0},
                                          {.temperature = 0.8, .top_p = 0.9, .top_k = 40, .tempered_logp = 1},
                                          {.temperature = 1.0, .top_p = 1.0, .greedy = 1}};
    for (int k = 0; k < 3; k++) {
        rollout_config_t rc = {.max_new_tokens = 24, .eos_id = -1, .sampler = samplers[k], .stop_check = stop_mod7,
                               .rep_n = 6, .rep_p = 0.9, .prefill_chunk = 9};
        rollout_sample_t all[NP], one;
        rollout_stats_t st;
        // 4 slots, a pool of 10 blocks: prompts of up to 3 blocks each do not all fit at once, the rest wait
        infer_t *e = infer_create_paged(m, 4, 80, 10);
        test_check(rollout_generate(e, &rc, prompts, plen, seeds, NP, all, &st) == 0, "batched rollout: %s",
                   cispo_last_error());
        test_check(infer_blocks_free(e) == 10, "every block back in the pool after the rollout (%d free)",
                   infer_blocks_free(e));
        infer_free(e);
        printf("batching, sampler %d: %ld waits, %ld preemptions, at most %d decoded together\n", k, st.waits,
               st.preemptions, st.max_batch);
        test_check(st.waits > 0, "sampler %d: a full pool made sequences wait (%ld deferred admissions)", k, st.waits);
        int same = 1, lens_differ = 0;
        double dl = 0, dtrain = 0;
        for (int i = 0; i < NP; i++) {
            rollout_config_t r1 = rc;
            r1.prefill_chunk = 0;  // alone: the whole prompt in one prefill, a pool that never fills
            infer_t *e1 = infer_create(m, 1, 80);
            test_check(rollout_generate(e1, &r1, &prompts[i], &plen[i], &seeds[i], 1, &one, NULL) == 0, "alone: %s",
                       cispo_last_error());
            infer_free(e1);
            if (one.n_tokens != all[i].n_tokens || memcmp(one.tokens, all[i].tokens, sizeof(int32_t) * one.n_tokens) ||
                one.stop != all[i].stop) {
                if (same) printf("sampler %d prompt %d: batched %d tokens (stop %d), alone %d (stop %d)\n", k, i,
                                 all[i].n_tokens, all[i].stop, one.n_tokens, one.stop);
                same = 0;
            } else {
                dl = fmax(dl, max_diff(one.logp, all[i].logp, (size_t)one.n_tokens));
            }
            lens_differ |= all[i].n_tokens != all[0].n_tokens;
            // log pi_old against the training forward of prompt + completion
            const int tot = plen[i] + all[i].n_tokens;
            int32_t *seq = cispo_malloc(sizeof(int32_t) * (size_t)tot);
            float *lp = cispo_malloc(sizeof(float) * (size_t)tot);
            memcpy(seq, prompts[i], sizeof(int32_t) * (size_t)plen[i]);
            memcpy(seq + plen[i], all[i].tokens, sizeof(int32_t) * (size_t)all[i].n_tokens);
            if (samplers[k].tempered_logp) m->logit_scale = (float)(1.0 / samplers[k].temperature);
            model_seq_logprobs(m, seq, tot, lp);
            m->logit_scale = 1.0f;
            for (int t = 0; t < all[i].n_tokens; t++) dtrain = fmax(dtrain, fabs(lp[plen[i] - 1 + t] - all[i].logp[t]));
            free(seq), free(lp);
            rollout_sample_free(&one);
        }
        test_check(same, "sampler %d: each sequence batched (chunked prefill, waits) == alone with its seed", k);
        test_check(lens_differ, "sampler %d: the sequences end at different lengths", k);
        TEST_LE(dl, 1e-4, "sampler %d: log pi_old batched vs alone (max diff %.3g)", k, dl);
        TEST_LE(dtrain, 1e-4, "sampler %d: log pi_old vs the training forward (max diff %.3g)", k, dtrain);
        for (int i = 0; i < NP; i++) rollout_sample_free(&all[i]);
    }
    // a sequence longer than the whole pool is an error, not a wait forever
    {
        rollout_config_t rc = {.max_new_tokens = 60, .eos_id = -1, .sampler = samplers[0]};  // 62 tokens: 4 blocks
        rollout_sample_t o;
        infer_t *e = infer_create_paged(m, 2, 80, 3);
        test_check(rollout_generate(e, &rc, prompts, plen, seeds, 1, &o, NULL) == -1 &&
                       strstr(cispo_last_error(), "KV blocks"),
                   "a sequence the pool can never hold fails naming it: %s", cispo_last_error());
        infer_free(e);
    }
    for (int i = 0; i < NP; i++) free(prompts_buf[i]);
}

// Generates each of n prompts alone (one slot, a pool that never fills, the whole prompt in one
// prefill) and compares with the batched samples: returns 1 when every sequence has the same tokens and
// stop reason, and the largest log-prob difference in *dl.
static int same_as_alone(model_t *m, const rollout_config_t *rc, const int32_t *const *prompts, const int *plen,
                         const uint64_t *seeds, int n, const rollout_sample_t *all, int max_ctx, double *dl) {
    int same = 1;
    *dl = 0;
    for (int i = 0; i < n; i++) {
        rollout_config_t r1 = *rc;
        r1.prefill_chunk = 0;
        rollout_sample_t one;
        infer_t *e1 = infer_create(m, 1, max_ctx);
        test_check(rollout_generate(e1, &r1, &prompts[i], &plen[i], &seeds[i], 1, &one, NULL) == 0, "alone: %s",
                   cispo_last_error());
        infer_free(e1);
        if (one.n_tokens != all[i].n_tokens || memcmp(one.tokens, all[i].tokens, sizeof(int32_t) * one.n_tokens) ||
            one.stop != all[i].stop) {
            if (same) printf("prompt %d: batched %d tokens (stop %d), alone %d (stop %d)\n", i, all[i].n_tokens,
                             all[i].stop, one.n_tokens, one.stop);
            same = 0;
        } else {
            *dl = fmax(*dl, max_diff(one.logp, all[i].logp, (size_t)one.n_tokens));
        }
        rollout_sample_free(&one);
    }
    return same;
}

// Blocks on demand: a budget of 60 new tokens is 5 blocks a sequence, so a pool of 12 blocks held
// only two sequences at a time when admission reserved the whole budget; the sequences stop after a
// few tokens (one or two blocks each), and admitting on the prompt's blocks runs more of them at once.
static void test_on_demand(model_t *m) {
    enum { N = 9 };
    const int V = m->cfg.vocab_size;
    int32_t buf[N][12];
    const int32_t *prompts[N];
    int plen[N];
    uint64_t seeds[N];
    for (int i = 0; i < N; i++) {
        plen[i] = 3 + i % 6;
        fill_ids(buf[i], plen[i], 300 + (uint64_t)i, V);
        prompts[i] = buf[i];
        seeds[i] = sampler_rng_seed(7, (uint64_t)i);
    }
    rollout_config_t rc = {.max_new_tokens = 60, .eos_id = -1, .sampler = {.temperature = 1.0, .top_p = 1.0},
                           .stop_check = stop_mod7, .prefill_chunk = 9};
    rollout_sample_t all[N];
    rollout_stats_t st;
    infer_t *e = infer_create_paged(m, 6, 80, 12);
    const int full = e->n_blocks / infer_blocks_for(e, 8 + rc.max_new_tokens);  // whole budgets that fit: 2
    test_check(rollout_generate(e, &rc, prompts, plen, seeds, N, all, &st) == 0, "on-demand rollout: %s",
               cispo_last_error());
    test_check(infer_blocks_free(e) == 12 && e->n_free == 12, "every block back after the rollout (%d free)",
               e->n_free);
    infer_free(e);
    printf("on demand: at most %d sequences decoded together (%d running), %d under whole-budget reservation; "
           "%ld preemptions, %ld waits\n", st.max_batch, st.max_running, full, st.preemptions, st.waits);
    test_check(full == 2 && st.max_batch > full && st.max_running > full,
               "more sequences at once (%d decoded, %d running) than whole budgets fit (%d)", st.max_batch,
               st.max_running, full);
    double dl;
    test_check(same_as_alone(m, &rc, prompts, plen, seeds, N, all, 80, &dl),
               "blocks on demand: each sequence == alone with its seed");
    TEST_LE(dl, 1e-4, "blocks on demand: log pi_old vs alone (max diff %.3g)", dl);
    for (int i = 0; i < N; i++) rollout_sample_free(&all[i]);
}

// Preemption: four sequences admitted on their prompts grow to about 60 tokens (4 blocks each) in a
// pool of 9 blocks, so decoding runs the pool dry and the newest sequences are preempted, re-queued and
// recomputed (prompt + generated tokens prefilled again, in chunks), several times. Each still gets
// exactly its tokens and log-probs alone (the draw counter and the repetition run carried over), and
// every block comes back. Greedy stops by the repetition rule after its run outlasted a preemption.
static void test_preemption(model_t *m) {
    enum { N = 6 };
    const int V = m->cfg.vocab_size;
    int32_t buf[N][20];
    const int32_t *prompts[N];
    int plen[N];
    uint64_t seeds[N];
    for (int i = 0; i < N; i++) {
        plen[i] = 5 + (i * 7) % 16;  // 5 .. 19
        fill_ids(buf[i], plen[i], 500 + (uint64_t)i, V);
        prompts[i] = buf[i];
        seeds[i] = sampler_rng_seed(11, (uint64_t)i);
    }
    const sampler_config_t samplers[3] = {{.temperature = 1.0, .top_p = 1.0},
                                          {.temperature = 0.8, .top_p = 0.9, .top_k = 40, .tempered_logp = 1},
                                          {.temperature = 1.0, .top_p = 1.0, .greedy = 1}};
    for (int k = 0; k < 3; k++) {
        rollout_config_t rc = {.max_new_tokens = 44, .eos_id = -1, .sampler = samplers[k], .rep_n = 36, .rep_p = 0.02,
                               .prefill_chunk = 7};  // greedy's tokens all have p > 0.02: it stops at 36
        rollout_sample_t all[N];
        rollout_stats_t st;
        infer_t *e = infer_create_paged(m, 4, 64, 9);
        test_check(rollout_generate(e, &rc, prompts, plen, seeds, N, all, &st) == 0, "preempting rollout: %s",
                   cispo_last_error());
        test_check(st.preemptions > 0 && e->preemptions == st.preemptions,
                   "sampler %d: the dry pool preempted sequences (%ld)", k, st.preemptions);
        test_check(e->n_free == 9 && infer_blocks_free(e) == 9, "sampler %d: no block leaked (%d of 9 free)", k,
                   e->n_free);
        infer_free(e);
        int rep = 0;
        for (int i = 0; i < N; i++) rep += all[i].stop == STOP_REPETITION;
        printf("preemption, sampler %d: %ld preemptions, %d of %d sequences stopped by repetition\n", k, st.preemptions,
               rep, N);
        double dl;
        test_check(same_as_alone(m, &rc, prompts, plen, seeds, N, all, 64, &dl),
                   "sampler %d: preempted and recomputed, each sequence == alone with its seed", k);
        TEST_LE(dl, 1e-4, "sampler %d: log pi_old after preemption vs alone (max diff %.3g)", k, dl);
        for (int i = 0; i < N; i++) rollout_sample_free(&all[i]);
    }
}

static void test_routing_replay(model_t *m) {
    enum { N = 6 };
    const int V = m->cfg.vocab_size, L = m->cfg.n_layers, K = m->cfg.n_experts_per_tok;
    int32_t buf[N][20];
    const int32_t *prompts[N];
    int plen[N];
    uint64_t seeds[N];
    for (int i = 0; i < N; i++) {
        plen[i] = 5 + (i * 7) % 16;
        fill_ids(buf[i], plen[i], 700 + (uint64_t)i, V);
        prompts[i] = buf[i];
        seeds[i] = sampler_rng_seed(13, (uint64_t)i);
    }
    rollout_config_t rc = {.max_new_tokens = 40, .eos_id = -1, .sampler = {.temperature = 1.0, .top_p = 1.0},
                           .prefill_chunk = 7, .record_routes = 1};
    rollout_sample_t all[N];
    rollout_stats_t st;
    infer_t *e = infer_create_paged(m, 4, 64, 9);  // a pool that preempts
    test_check(rollout_generate(e, &rc, prompts, plen, seeds, N, all, &st) == 0, "recording rollout: %s",
               cispo_last_error());
    infer_free(e);
    test_check(st.preemptions > 0, "routing replay: the pool preempted sequences (%ld)", st.preemptions);
    int covered = 1, own_differ = 0, fed_total = 0, routes_equal = 1;
    double dl = 0;
    for (int i = 0; i < N; i++) {
        const int fed = plen[i] + all[i].n_tokens - 1;  // every context token but the last sampled one
        covered &= all[i].routes != NULL && all[i].routes_n == fed;
        if (all[i].routes_n < fed) continue;
        // the sequence alone through the training forward, routing by itself: the same experts but at ties
        int32_t ids[64], cu[2] = {0, fed}, *own = cispo_malloc(sizeof(int32_t) * (size_t)fed * K);
        memcpy(ids, prompts[i], sizeof(int32_t) * (size_t)plen[i]);
        memcpy(ids + plen[i], all[i].tokens, sizeof(int32_t) * (size_t)(all[i].n_tokens - 1));
        CISPO_ASSERT(model_forward(m, ids, cu, 1, fed) == 0);
        for (int t = 0; t < fed; t++) {
            int differ = 0;
            for (int l = 0; l < L; l++) {
                model_routes(m, l, own);
                differ |= memcmp(own + (size_t)t * K, all[i].routes + ((size_t)l * all[i].routes_stride + t) * K,
                                 sizeof(int32_t) * (size_t)K) != 0;
            }
            own_differ += differ;
        }
        fed_total += fed;
        // micro_forward with the recorded routes: the forward replays them, its log-probs are the rollout's
        train_seq_t q = {.prompt = prompts[i], .n_prompt = plen[i], .resp = all[i].tokens, .n_resp = all[i].n_tokens,
                         .routes = all[i].routes, .routes_stride = all[i].routes_stride, .routes_n = all[i].routes_n};
        micro_t mb = {0, 1, fed, all[i].n_tokens};
        float *lp = cispo_malloc(sizeof(float) * (size_t)all[i].n_tokens);
        CISPO_ASSERT(micro_forward(m, &q, &mb, lp, NULL) == 0);
        for (int l = 0; l < L; l++) {
            model_routes(m, l, own);
            for (int t = 0; t < fed; t++)
                routes_equal &= !memcmp(own + (size_t)t * K, all[i].routes + ((size_t)l * all[i].routes_stride + t) * K,
                                        sizeof(int32_t) * (size_t)K);
        }
        for (int j = 0; j < all[i].n_tokens; j++) dl = fmax(dl, fabs((double)lp[j] - all[i].logp[j]));
        free(lp), free(own);
    }
    test_check(covered, "routing replay: every fed token's routes recorded");
    printf("routing replay: %d of %d fed tokens routed otherwise by the training forward alone (router near-ties); "
           "replayed log-probs within %.3g of the rollout's (%ld preemptions)\n", own_differ, fed_total, dl,
           st.preemptions);
    test_check(own_differ * 50 <= fed_total, "routing replay: the recorded routes are the forward's own but at ties "
               "(%d of %d differ)", own_differ, fed_total);
    test_check(routes_equal, "routing replay: micro_forward's forward used the recorded routes");
    TEST_LE(dl, 1e-4, "routing replay: replayed log-probs vs the rollout's (max diff %.3g)", dl);
    for (int i = 0; i < N; i++) rollout_sample_free(&all[i]);
}

// A format whose calls a random policy writes often: a call is the text between "a" and "e".
static const tool_format_t busy = {"busy", "a", "e", TOOL_BODY_NAME_ARGS, " [", "]"};

// Preemption with tool use: the tool state (turn start, result tokens still to feed) goes with a
// preempted sequence, and its fed tool output is part of the recomputed context. Each sample (tokens,
// mask, log-probs, calls) equals the sequence alone.
static void test_preemption_tools(model_t *m) {
    enum { N = 4 };
    char path[4096];
    const char *src = getenv("CISPO_SRC");
    snprintf(path, sizeof path, "%s/configs/tokenizers/demo/tokenizer.json", src ? src : ".");
    tokenizer_t *tok = tokenizer_load(path);
    if (!test_check(tok != NULL, "demo tokenizer: %s", cispo_last_error())) return;
    tools_t reg;
    test_check(tools_create(&reg, "calculator", "", 5, 64) == 0, "calculator tool: %s", cispo_last_error());
    rollout_tools_t rt = {.tools = &reg, .format = &busy, .tok = tok, .max_calls = 3};
    rollout_config_t rc = {.max_new_tokens = 60, .eos_id = -1, .sampler = {.temperature = 1.5, .top_p = 1.0},
                           .tools = &rt, .prefill_chunk = 5};
    int32_t p0[3] = {1, 2, 3}, p1[2] = {4, 5}, p2[4] = {6, 7, 8, 9}, p3[3] = {10, 11, 12};
    const int32_t *prompts[N] = {p0, p1, p2, p3};
    int plen[N] = {3, 2, 4, 3};
    uint64_t seeds[N];
    for (int i = 0; i < N; i++) seeds[i] = sampler_rng_seed(13, (uint64_t)i);
    rollout_sample_t a[N], one;
    rollout_stats_t st;
    infer_t *e = infer_create_paged(m, 3, 64, 6);  // 3 slots growing to 4 blocks each in a pool of 6
    test_check(rollout_generate(e, &rc, prompts, plen, seeds, N, a, &st) == 0, "multi-turn rollout: %s",
               cispo_last_error());
    test_check(e->n_free == 6, "multi-turn: no block leaked (%d of 6 free)", e->n_free);
    infer_free(e);
    int alone = 1, calls = 0, ctx = 0;
    for (int i = 0; i < N; i++) {
        infer_t *e1 = infer_create(m, 1, 64);
        test_check(rollout_generate(e1, &rc, prompts + i, plen + i, seeds + i, 1, &one, NULL) == 0, "alone: %s",
                   cispo_last_error());
        infer_free(e1);
        alone &= one.n_tokens == a[i].n_tokens && one.stop == a[i].stop && one.n_tool_calls == a[i].n_tool_calls &&
                 one.answer_from == a[i].answer_from &&
                 !memcmp(one.tokens, a[i].tokens, sizeof(int32_t) * (size_t)one.n_tokens) &&
                 !memcmp(one.mask, a[i].mask, (size_t)one.n_tokens) &&
                 max_diff(one.logp, a[i].logp, (size_t)one.n_tokens) <= 1e-4;
        calls += a[i].n_tool_calls;
        for (int j = 0; j < a[i].n_tokens; j++) ctx += !a[i].mask[j];
        rollout_sample_free(&one);
    }
    printf("multi-turn preemption: %ld preemptions, %d tool calls, %d tool-output tokens\n", st.preemptions, calls,
           ctx);
    test_check(st.preemptions > 0 && calls > 0 && ctx > 0, "multi-turn: preemptions (%ld) and tool calls (%d)",
               st.preemptions, calls);
    test_check(alone, "multi-turn: preempted and recomputed, each sample == alone");
    for (int i = 0; i < N; i++) rollout_sample_free(&a[i]);
    tokenizer_free(tok);
}

// The capacity planner's arithmetic: a fixed lightning state per sequence plus KV per token.
static void test_capacity(model_t *m) {
    const model_config_t *c = &m->cfg;
    infer_capacity_t k = infer_capacity(c, 4, 100, (size_t)1 << 30);
    const size_t state = 2 * (size_t)c->n_heads * c->head_dim * c->head_dim * 4;
    const size_t kv = 2 * 2 * (size_t)c->n_kv_heads * c->head_dim * 4;
    test_check(k.state_bytes == state && k.kv_token_bytes == kv, "per sequence: state %zu B, KV %zu B/token",
               k.state_bytes, k.kv_token_bytes);
    test_check(k.seq_bytes == state + 112 * kv + (size_t)c->vocab_size * 4 + sizeof(sample_slot_t) &&
                   k.sequences == (long)(((size_t)1 << 30) / k.seq_bytes),
               "100 tokens take 7 blocks of 16; %ld sequences in 1 GiB", k.sequences);
}

int main(void) {
    model_t *m = tiny_model();
    if (!m) return test_finish("test_engine");
    test_pool(m);
    test_chunked_prefill(m);
    test_decode_fused(m);
    test_decode_route(m);
    test_decode_gate(m);
    test_decode_sort(m);
    test_batching(m);
    test_on_demand(m);
    test_preemption(m);
    test_preemption_tools(m);
    test_routing_replay(m);
    test_capacity(m);
    model_free(m);
    return test_finish("test_engine");
}
