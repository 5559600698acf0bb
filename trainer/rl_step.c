// trainer/rl_step.c — one RL step (docs/rl.md "One RL step"): sample prompts, roll out G completions each
// with the current policy (log pi_old recorded), reward them in the worker pool, group-normalise the
// rewards, then several minibatch updates with the policy loss (CISPO by default), each normalised
// over its own response tokens (token-level normalisation over the whole update batch).
// Data parallel (world > 1): every rank draws the same prompts and rolls out its contiguous slice of
// them (groups stay on one rank), with the sampling seeds of their GLOBAL sample index, so the union of
// the samples is the one-process step's. Each update takes each rank's share of its local minibatch,
// normalised by the GLOBAL token (GSPO: sequence) count, and all-reduces the gradient before the common
// AdamW step; every rank runs the same number of updates, each over a slice of the GLOBAL sample
// order, so no update is empty on every rank. Logged metrics are global.
// With tools (multi-turn, docs/rl.md "Tool use"), the verifier grades the final turn, and tool-output
// tokens are context: they carry neither log pi_old nor loss (train_seq_t.mask).
// A failed verification (the verifier could not run) is no reward: the sample gets no loss and stays
// out of its group's mean, std and dynamic-sampling decision. An update whose gradient norm is not
// finite is skipped (trainer/optim.c) and counted; max_nonfinite_updates in a row stop the run.
// It lives in trainer/, not rl/: it drives the optimizer, the reward worker pool, checkpointed run
// state and MPI, which sit above rl/ (includes point down); rl/ holds the pieces it calls (rollout,
// sampler, advantages, losses, verifiers).
// defines: train_rl_step, rl_minibatch_slice
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/common.h"
#include "base/rng.h"
#include "trainer/dist.h"
#include "model/moe_ep.h"
#include "trainer/train.h"
#include "trainer/train_batch.h"
#include "trainer/train_data.h"

typedef struct {
    int ex;               // record index
    rollout_sample_t s;   // completion tokens and their log pi_old
    verdict_t v;
    float reward, adv;
    char *text;
} rl_sample_t;

// One RNG step from state z (base/rng.h): the hash behind the prompt order and sampling seeds.
static uint64_t mix64(uint64_t z) { return rng_next(&z); }

static int cmp_int(const void *a, const void *b) { return *(const int *)a - *(const int *)b; }

// Train/rollout agreement accumulators: Pearson correlation and |diff| of log-probs (docs/rl.md).
// worst: the batch-wide index (training order) of the token with the largest |diff|.
typedef struct {
    double n, sx, sy, sxx, syy, sxy, sad, mad;
    long worst;
} agree_t;

// x, y: n log-probs of the tokens from batch-wide index at on
static void agree_add(agree_t *a, const float *x, const float *y, int n, long at) {
    for (int i = 0; i < n; i++) {
        double u = x[i], v = y[i], d = fabs(u - v);
        a->n++, a->sx += u, a->sy += v, a->sxx += u * u, a->syy += v * v, a->sxy += u * v, a->sad += d;
        if (d > a->mad) a->mad = d, a->worst = at + i;
    }
}

// Also where the largest |diff| is, so it can be looked up in samples.h5: the sample (its index in the
// step's generated batch, order[] maps training order to it) and the token (among the sample's policy
// tokens: tool output has no log pi_old).
static void agree_metrics(const agree_t *a, metrics_t *mt, const long *first_tok, const int *order, int n_seq) {
    if (a->n < 2) return;
    double cov = a->sxy - a->sx * a->sy / a->n, vx = a->sxx - a->sx * a->sx / a->n, vy = a->syy - a->sy * a->sy / a->n;
    metrics_set(mt, "agree_pearson", vx > 0 && vy > 0 ? cov / sqrt(vx * vy) : 1.0);
    metrics_set(mt, "agree_mean_abs", a->sad / a->n);
    metrics_set(mt, "agree_max_abs", a->mad);
    int s = 0;
    while (s + 1 < n_seq && first_tok[s + 1] <= a->worst) s++;
    if (n_seq > 0) {
        metrics_set(mt, "agree_max_sample", order[s]);
        metrics_set(mt, "agree_max_token", (double)(a->worst - first_tok[s]));
    }
}

// A failure on any rank fails all of them (the others would wait in the next collective).
static int sync_fail(int rc) {
    dist_t *dw = dist_world();
    if (dw->world == 1) return rc;
    double f = rc != 0;
    if (dist_allreduce_max_f64(dw, &f, 1)) return -1;
    return f && !rc ? cispo_fail("RL step failed on another rank") : rc;
}

// Rolls out G samples for each of the n prompts idx[]; rewards them; fills out[n*G] (group-major).
// first: the step's global sample index of out[0] (it picks the sampling seeds).
// budget, window, rep_n: this step's generation budget, overlong window and repetition run (the
// length curriculum scales them together).
static int rollout_round(train_t *t, const int *idx, int n, uint64_t seed, uint64_t first, int budget, int window,
                         int rep_n, rl_sample_t *out, double *t_roll, double *t_reward, long *gen_tokens) {
    const run_config_t *c = &t->cfg;
    const int G = c->group_size, N = n * G;
    const int32_t **pp = cispo_malloc(sizeof(*pp) * (size_t)N);
    int *pl = cispo_malloc(sizeof(int) * (size_t)N), *ex = cispo_malloc(sizeof(int) * (size_t)N);
    uint64_t *seeds = cispo_malloc(sizeof(uint64_t) * (size_t)N);
    rollout_sample_t *rs = cispo_calloc((size_t)N, sizeof(rollout_sample_t));
    for (int i = 0; i < N; i++) {
        const train_example_t *e = &t->train.ex[idx[i / G]];
        pp[i] = e->ids, pl[i] = e->n_ids, ex[i] = idx[i / G];
        seeds[i] = sampler_rng_seed(seed, first + (uint64_t)i);
    }
    // log pi_old of the untempered policy: the training forward scores the untempered policy, so the
    // ratio is of like to like (docs/rl.md "Temperature and truncation")
    rollout_config_t rc = {.max_new_tokens = budget,
                           .eos_id = t->eos_id,
                           .sampler = {.temperature = c->temperature, .top_p = c->top_p, .top_k = c->top_k,
                                       .tempered_logp = 1},
                           .rep_n = rep_n,
                           .rep_p = c->rep_p,
                           .tools = t->tools.tools ? &t->tools : NULL,
                           .record_routes = c->routing_replay};
    double t0 = cispo_now();
    int rc_ = rollout_generate(t->engine, &rc, pp, pl, seeds, N, rs, NULL);  // N may be 0 (EP: it serves)
    *t_roll += cispo_now() - t0;
    if (!rc_ && N > 0) {
        t0 = cispo_now();
        char **texts = cispo_malloc(sizeof(char *) * (size_t)N);
        verdict_t *v = cispo_malloc(sizeof(verdict_t) * (size_t)N);
        train_reward(t, ex, &t->train, rs, N, texts, v);  // the final turn's answer (trainer/rl_reward.c)
        if (t->tools.tools) {  // the samples keep the whole conversation
            for (int i = 0; i < N; i++) {
                if (!rs[i].n_tool_calls) continue;
                char *full = tokenizer_decode(t->tok, rs[i].tokens, (size_t)rs[i].n_tokens,
                                              TOKENIZER_SKIP_SPECIAL | TOKENIZER_LOSSY, NULL);
                if (full) free(texts[i]), texts[i] = full;
            }
        }
        *t_reward += cispo_now() - t0;
        for (int i = 0; i < N; i++) {
            rl_sample_t *o = &out[i];
            o->ex = ex[i], o->s = rs[i], o->v = v[i], o->text = texts[i];
            o->reward = v[i].failed ? 0.0f : (float)v[i].reward;
            if (rs[i].stop == STOP_REPETITION) o->reward = (float)c->rep_reward;
            if (window > 0)  // DAPO soft overlong punishment
                o->reward += reward_overlong_penalty(rs[i].n_tokens, budget, window);
            *gen_tokens += rs[i].n_tokens;
        }
        free(texts), free(v);
    }
    free(pp), free(pl), free(ex), free(seeds), free(rs);
    return rc_;
}

static void write_samples(train_t *t, int step, const rl_sample_t *s, int n) {
    if (!t->samples) return;
    for (int i = 0; i < n; i++) {
        const train_example_t *e = &t->train.ex[s[i].ex];
        sample_record_t r = {.step = step,
                             .prompt = e->prompt,
                             .completion = s[i].text,
                             .prompt_tokens = e->ids,
                             .n_prompt = e->n_ids,
                             .tokens = s[i].s.tokens,
                             .logp = s[i].s.logp,
                             .n_tokens = s[i].s.n_tokens,
                             .reward = s[i].reward,
                             .correct = s[i].v.correct,
                             .failed = s[i].v.failed,
                             .stop = s[i].s.stop,
                             .extracted = s[i].v.extracted,
                             .reason = s[i].v.reason};
        if (samples_append(t->samples, &r)) {
            fprintf(stderr, "cispo: %s (samples no longer written)\n", cispo_last_error());
            samples_close(t->samples);
            t->samples = NULL;
            return;
        }
    }
}

// Response-length and outcome statistics over every generated sample of the step.
static void sample_metrics(const rl_sample_t *s, int n, metrics_t *mt) {
    double rs = 0, rss = 0, acc = 0, len = 0, trunc = 0, rep = 0, failed = 0;
    int *lens = cispo_malloc(sizeof(int) * (size_t)n);
    for (int i = 0; i < n; i++) {
        rs += s[i].reward, rss += (double)s[i].reward * s[i].reward;
        acc += s[i].v.correct != 0, failed += s[i].v.failed != 0;
        len += lens[i] = s[i].s.n_tokens;
        trunc += s[i].s.stop == STOP_LENGTH, rep += s[i].s.stop == STOP_REPETITION;
    }
    qsort(lens, (size_t)n, sizeof(int), cmp_int);
    double mean = rs / n;
    metrics_set(mt, "reward_mean", mean);
    metrics_set(mt, "reward_std", n > 1 ? sqrt(fmax(0, (rss - n * mean * mean) / (n - 1))) : 0);
    metrics_set(mt, "accuracy", acc / n);
    metrics_set(mt, "response_len_mean", len / n);
    metrics_set(mt, "response_len_p50", lens[(n - 1) / 2]);
    metrics_set(mt, "response_len_p99", lens[(int)floor(0.99 * (n - 1))]);
    metrics_set(mt, "response_len_max", lens[n - 1]);
    metrics_set(mt, "truncated_frac", trunc / n);
    metrics_set(mt, "repetition_frac", rep / n);
    metrics_set(mt, "verifier_failed", failed);
    free(lens);
}

// Tool use over the step's samples (tools configured): calls per sample, fraction of samples with a
// call, failed calls (malformed, unknown tool, tool error). world > 1: summed over ranks.
static int tool_metrics(const rl_sample_t *s, int n, int n_global, metrics_t *mt) {
    double v[3] = {0, 0, 0};
    for (int i = 0; i < n; i++)
        v[0] += s[i].s.n_tool_calls, v[1] += s[i].s.n_tool_calls > 0, v[2] += s[i].s.n_tool_errors;
    if (dist_world()->world > 1 && dist_allreduce_sum_f64(dist_world(), v, 3)) return -1;
    metrics_set(mt, "tool_calls_per_sample", n_global ? v[0] / n_global : 0);
    metrics_set(mt, "tool_use_rate", n_global ? v[1] / n_global : 0);
    metrics_set(mt, "tool_errors", v[2]);
    return 0;
}

// Accuracy and failed verifications per verifier (docs/rl.md), for the verifiers the step's records
// name: accuracy_math, verifier_failed_math, ...
static void verifier_metrics(const train_t *t, const rl_sample_t *s, int n, metrics_t *mt) {
    const char *names[8];
    double right[8] = {0}, count[8] = {0}, failed[8] = {0};
    int k = 0;
    for (int i = 0; i < n; i++) {
        const char *v = t->train.ex[s[i].ex].verifier ? t->train.ex[s[i].ex].verifier : t->cfg.verifier;
        int j = 0;
        while (j < k && strcmp(names[j], v)) j++;
        if (j == k) {
            if (k == 8) continue;  // a mix of more than 8 verifiers: the first 8 are reported
            names[k++] = v;
        }
        right[j] += s[i].v.correct != 0, count[j]++, failed[j] += s[i].v.failed != 0;
    }
    for (int j = 0; j < k; j++) {
        char key[40];
        snprintf(key, sizeof key, "accuracy_%.24s", names[j]);
        metrics_set(mt, key, right[j] / count[j]);
        snprintf(key, sizeof key, "verifier_failed_%.20s", names[j]);
        metrics_set(mt, key, failed[j]);
    }
}

// The step's samples as one process would hold them, for the metrics (world > 1): each rank's outcome
// fields at their global slots slot[i], summed over ranks. Returns the global count; *g malloc'ed.
static int global_samples(const rl_sample_t *s, const int *slot, int n, int n_global, rl_sample_t **g) {
    enum { F = 6 };
    double *v = cispo_calloc((size_t)(n_global > 0 ? n_global : 1) * F, sizeof(double));
    for (int i = 0; i < n; i++) {
        double *o = v + (size_t)slot[i] * F;
        o[0] = s[i].reward, o[1] = s[i].v.correct != 0, o[2] = s[i].v.failed != 0;
        o[3] = s[i].s.n_tokens, o[4] = s[i].s.stop, o[5] = s[i].ex;
    }
    int rc = dist_allreduce_sum_f64(dist_world(), v, (size_t)n_global * F);
    *g = cispo_calloc((size_t)(n_global > 0 ? n_global : 1), sizeof(rl_sample_t));
    for (int i = 0; i < n_global; i++) {
        const double *o = v + (size_t)i * F;
        (*g)[i].reward = (float)o[0], (*g)[i].v.correct = (int)o[1], (*g)[i].v.failed = (int)o[2];
        (*g)[i].s.n_tokens = (int)o[3], (*g)[i].s.stop = (int)o[4], (*g)[i].ex = (int)o[5];
    }
    free(v);
    return rc ? -1 : n_global;
}

void rl_minibatch_slice(long offset, int n, int n_global, int U, int u, int *lo, int *hi) {
    long a = (long)n_global * u / U - offset, b = (long)n_global * (u + 1) / U - offset;
    a = a < 0 ? 0 : a > n ? n : a;
    b = b < 0 ? 0 : b > n ? n : b;
    *lo = (int)a, *hi = (int)b;
}

// Once per run (rank 0): what the importance ratio can and cannot correct in this rollout setting.
static void warn_sampling(train_t *t) {
    const run_config_t *c = &t->cfg;
    if (t->sampling_warned || dist_world()->rank != 0) return;
    t->sampling_warned = 1;
    if ((c->top_p > 0 && c->top_p < 1) || c->top_k > 0)
        fprintf(stderr, "cispo: warning: top_p=%g top_k=%d truncate the sampling distribution, which neither log "
                        "pi_old nor log pi_theta describes: the importance ratio is biased for every token near the "
                        "cut. Train with top_p=1 top_k=0 (truncate at evaluation only)\n", c->top_p, c->top_k);
}

// The frozen reference of the KL term: ref_model's weights, or the policy's when RL starts. Lives on the
// policy's backend. 0 or -1 (+ message).
// Under expert parallelism it holds the policy's experts only and exchanges over the policy's EP group.
static int open_reference(train_t *t) {
    const run_config_t *c = &t->cfg;
    const size_t n = t->m->table.n_floats;
    const moe_ep_comm_t *ec = moe_ep_comm(t->m);
    float *host = NULL;
    if (c->ref_model[0]) {
        model_config_t rc;
        if (train_load_model_ep(c->ref_model, (uint64_t)c->seed, ec ? ec->size : 1, ec ? ec->rank : 0, &rc, &host))
            return -1;
        param_table_t tab;  // the policy's experts of the reference (all of it when the expert counts differ)
        if (rc.n_experts == t->mcfg.n_experts) param_table_build_experts(&tab, &rc, t->m->table.e_lo, t->m->table.e_hi);
        else param_table_build(&tab, &rc);
        size_t rn = tab.n_floats;
        param_table_free(&tab);
        if (rn != n)
            return free(host), cispo_fail("key 'ref_model' (%s): %zu parameters, the policy has %zu: the reference "
                                          "must be the policy's architecture", c->ref_model, rn, n);
    } else if (t->rl_done > 0 && dist_world()->rank == 0) {
        fprintf(stderr, "cispo: warning: the KL reference is the policy at RL step %d (this resume), not at the "
                        "start of RL: set ref_model to the checkpoint RL started from\n", t->rl_done);
    }
    // forward only: one layer's activations, no gradients, on a GPU the bf16 weights alone
    t->ref = model_create_experts(t->m->be, &t->mcfg, NULL, c->micro_tokens, t->m->table.e_lo, t->m->table.e_hi,
                                  MODEL_FORWARD_ONLY);
    if (host) model_load_params(t->ref, host);
    else  // the policy as it computes now: its working copy, the same weights in the same dtype (the master may
          // be in ZeRO-1 shards)
        backend_copy(t->m->be, t->ref->wparams, t->m->wparams, n * t->m->esize);
    if (ec && moe_ep_attach(t->ref, ec)) return free(host), -1;
    free(host);
    return 0;
}

int train_rl_step(train_t *t, metrics_t *mt) {
    const run_config_t *c = &t->cfg;
    const int P = c->prompts_per_step, G = c->group_size, step = t->rl_done + 1;
    double t_start = cispo_now(), t_roll = 0, t_reward = 0;
    long gen_tokens = 0;
    if (train_use_optimizer(t, 2)) return -1;
    warn_sampling(t);
    metrics_clear(mt);
    // the loss settings the run keys add to the kind's defaults
    t->loss.mask_eps_low = c->eq7_eps_low, t->loss.mask_eps_high = c->eq7_eps_high;
    t->loss.clip_ratio_c = c->clip_ratio_c;
    t->loss.kl_coef = c->kl_coef, t->loss.kl_kind = c->kl_estimator;
    t->loss.entropy_coef = c->entropy_coef;
    if (c->kl_coef > 0 && !t->ref && open_reference(t)) return -1;
    // verl's convention: log pi_old (recorded by the sampler) and log pi_theta (the training forward) are
    // both of softmax(z / temperature), so the ratio corrects the policy's change and nothing else
    const float logit_scale = (float)(1.0 / c->temperature);
    t->m->logit_scale = logit_scale;
    if (t->ref) t->ref->logit_scale = logit_scale;
    // length curriculum: the budget of this step, with the overlong window and the repetition run scaled alike
    const int budget = run_config_max_new_tokens(c, t->rl_done);
    const int window = (int)((long)t->overlong_cache * budget / c->max_new_tokens);
    const int rep_n = c->rep_n > 0 ? (int)(((long)c->rep_n * budget + c->max_new_tokens - 1) / c->max_new_tokens) : 0;

    // ---- rollout and scoring (dynamic sampling may take several rounds) ----
    int cap = P * G * (1 + (t->dynamic_sampling ? c->dynamic_max_rounds : 0));
    rl_sample_t *all = cispo_calloc((size_t)cap, sizeof(rl_sample_t));
    int *keep = cispo_malloc(sizeof(int) * (size_t)P);  // first sample of each kept group
    int *idx = cispo_malloc(sizeof(int) * (size_t)P);
    int *slot = cispo_malloc(sizeof(int) * (size_t)cap);  // global sample slot of all[i] (world > 1)
    dist_t *dw = dist_world();
    // kept_g, n_all_g: over all ranks (equal to kept, n_all in a world of one)
    int n_all = 0, kept = 0, rounds = 0, signal_groups = 0, rc = 0, kept_g = 0, n_all_g = 0;
    for (int round = 0; round <= (t->dynamic_sampling ? c->dynamic_max_rounds : 0) && kept_g < P; round++) {
        int need_g = P - kept_g;
        data_cursor_take(&t->rl_data, (uint64_t)c->seed, 2, t->train.n, need_g, idx);
        int lo = (int)((long)need_g * dw->rank / dw->world), need = (int)((long)need_g * (dw->rank + 1) / dw->world) - lo;
        uint64_t seed = mix64(mix64((uint64_t)c->seed) ^ ((uint64_t)step << 8 | (uint64_t)round));
        rc = rollout_round(t, idx + lo, need, seed, (uint64_t)lo * (uint64_t)G, budget, window, rep_n, all + n_all,
                           &t_roll, &t_reward, &gen_tokens);
        if ((rc = sync_fail(rc))) break;
        rounds++;
        int kept0 = kept;
        for (int i = 0; i < need * G; i++) slot[n_all + i] = n_all_g + lo * G + i;
        for (int g = 0; g < need; g++) {
            // signal: DAPO's rule reads the verifier's accuracy, not the shaped reward; failed verdicts abstain
            float v[1024];
            unsigned char ok[1024];
            for (int j = 0; j < G; j++) {
                const rl_sample_t *q = &all[n_all + g * G + j];
                v[j] = c->dynamic_sampling_metric == DS_METRIC_REWARD ? q->reward : (float)(q->v.correct != 0);
                ok[j] = !q->v.failed;
            }
            int sig = group_has_signal_valid(v, ok, G);
            signal_groups += sig;
            if (!t->dynamic_sampling || sig) keep[kept++] = n_all + g * G;
        }
        n_all += need * G;
        n_all_g += need_g * G;
        int d = kept - kept0;
        if (dw->world > 1) {
            double x = d;
            if ((rc = dist_allreduce_sum_f64(dw, &x, 1))) break;
            d = (int)x;
        }
        kept_g += d;
    }
    if (rc) {
        for (int i = 0; i < n_all; i++) rollout_sample_free(&all[i].s), free(all[i].text);
        free(all), free(keep), free(idx), free(slot);
        return -1;
    }
    write_samples(t, step, all, n_all);  // world > 1: rank 0 writes the samples of its own slice only
    if (dw->world > 1) {
        rl_sample_t *g;
        double sg = signal_groups;
        if (global_samples(all, slot, n_all, n_all_g, &g) < 0 || dist_allreduce_sum_f64(dw, &sg, 1)) rc = -1;
        sample_metrics(g, n_all_g, mt);
        verifier_metrics(t, g, n_all_g, mt);
        free(g);
        signal_groups = (int)sg;
    } else {
        sample_metrics(all, n_all, mt);
        verifier_metrics(t, all, n_all, mt);
    }
    if (t->tools.tools && tool_metrics(all, n_all, n_all_g, mt)) rc = -1;
    free(slot);
    metrics_set(mt, "groups_signal_frac", (double)signal_groups / (n_all_g / G));
    metrics_set(mt, "groups_kept", kept_g);
    metrics_set(mt, "rollout_rounds", rounds);
    metrics_set(mt, "samples_generated", n_all_g);
    metrics_set(mt, "max_new_tokens", budget);
    metrics_set(mt, "overlong_window", window);
    metrics_set(mt, "rep_n", rep_n);

    // ---- advantages of the kept groups over their valid samples; the training sequences in a seeded order ----
    const adv_config_t ac = {.kind = c->adv, .eps = 1e-6};
    int n = 0;  // training samples: the kept groups' samples with a verdict
    for (int k = 0; k < kept; k++) {
        float r[1024], a[1024];
        unsigned char ok[1024];
        for (int j = 0; j < G; j++) r[j] = all[keep[k] + j].reward, ok[j] = !all[keep[k] + j].v.failed, n += ok[j];
        advantages_group_valid(a, r, ok, 1, G, &ac);
        for (int j = 0; j < G; j++) all[keep[k] + j].adv = a[j];
    }
    int *order = cispo_malloc(sizeof(int) * (size_t)(n > 0 ? n : 1));
    for (int i = 0, k = 0; i < kept * G; i++) {
        int at = keep[i / G] + i % G;
        if (!all[at].v.failed) order[k++] = at;
    }
    uint64_t s = mix64((uint64_t)c->seed * 31 + (uint64_t)step);
    for (int i = n - 1; i > 0; i--) {
        s = mix64(s);
        int j = (int)(s % (uint64_t)(i + 1)), tmp = order[i];
        order[i] = order[j], order[j] = tmp;
    }
    train_seq_t *seqs = cispo_malloc(sizeof(train_seq_t) * (size_t)(n > 0 ? n : 1));
    long n_tok = 0;
    for (int i = 0; i < n; i++) {
        const rl_sample_t *q = &all[order[i]];
        const train_example_t *e = &t->train.ex[q->ex];
        seqs[i] = (train_seq_t){.prompt = e->ids, .n_prompt = e->n_ids, .resp = q->s.tokens, .n_resp = q->s.n_tokens,
                                .mask = q->s.mask, .routes = q->s.routes, .routes_stride = q->s.routes_stride,
                                .routes_n = q->s.routes_n};
        n_tok += train_seq_n_train(&seqs[i]);
    }
    // per-token arrays over the whole batch, in training order
    float *old = cispo_malloc(sizeof(float) * (size_t)(n_tok + 1)), *adv = cispo_malloc(sizeof(float) * (size_t)(n_tok + 1));
    long *first_tok = cispo_malloc(sizeof(long) * (size_t)(n + 1));
    first_tok[0] = 0;
    for (int i = 0; i < n; i++) {
        const rl_sample_t *q = &all[order[i]];
        long k = first_tok[i];
        if (q->s.mask) {  // the policy's tokens only: tool output has no log pi_old
            for (int j = 0; j < q->s.n_tokens; j++)
                if (q->s.mask[j]) old[k] = q->s.logp[j], adv[k++] = q->adv;
        } else {
            memcpy(old + k, q->s.logp, sizeof(float) * (size_t)q->s.n_tokens);
            for (int j = 0; j < q->s.n_tokens; j++) adv[k++] = q->adv;
        }
        first_tok[i + 1] = k;
    }
    // this rank's place in the global sample order (ranks in order): updates split the global order
    long offset = 0;
    int n_g = n;
    if (dw->world > 1) {
        double *cnt = cispo_calloc((size_t)dw->world, sizeof(double));
        cnt[dw->rank] = n;
        if (dist_allreduce_sum_f64(dw, cnt, (size_t)dw->world)) rc = -1;
        n_g = 0;
        for (int r = 0; r < dw->world; r++) offset += r < dw->rank ? (long)cnt[r] : 0, n_g += (int)cnt[r];
        free(cnt);
    }

    // ---- training: minibatch updates ----
    double t_train0 = cispo_now();
    agree_t ag = {0};
    loss_stats_t st = {0};
    double loss = 0, gn_sum = 0, lr = 0, ent_sum = 0, packed = 0;
    float *lp = cispo_malloc(sizeof(float) * (size_t)(n_tok + 1)), *ent = cispo_malloc(sizeof(float) * (size_t)(n_tok + 1));
    float *d = cispo_malloc(sizeof(float) * (size_t)(n_tok + 1));
    float *ref = t->ref ? cispo_malloc(sizeof(float) * (size_t)(n_tok + 1)) : NULL;
    micro_t *mb = NULL;
    int updates = 0, skipped = 0;
    if (!rc && (c->old_logprobs == OLD_LOGP_RECOMPUTE || ref) && n > 0) {
        // one extra forward with the training kernels (log pi_old), and the reference's log-probs, once per batch;
        // the reference's pass first, then the policy's (under expert parallelism each model's forwards are
        // rounds of the group, served below, so the two may not interleave)
        int nmb = micro_plan(seqs, n, c->micro_tokens, &mb);
        if (nmb < 0) rc = -1;
        for (int k = 0; k < nmb && !rc && ref; k++)
            rc = micro_forward(t->ref, seqs, &mb[k], ref + first_tok[mb[k].first], NULL);
        if (t->ref) moe_ep_serve(t->ref, 0);
        for (int k = 0; k < nmb && !rc && c->old_logprobs == OLD_LOGP_RECOMPUTE; k++) {
            long at = first_tok[mb[k].first];
            if ((rc = micro_forward(t->m, seqs, &mb[k], lp + at, NULL))) break;
            agree_add(&ag, old + at, lp + at, mb[k].n_resp, at);
            memcpy(old + at, lp + at, sizeof(float) * (size_t)mb[k].n_resp);
        }
        free(mb), mb = NULL;
    } else if (t->ref) {
        moe_ep_serve(t->ref, 0);  // none here: serve the reference's experts to the group's others
    }
    // expert parallelism: the recompute forwards of the EP group's other ranks still need this rank's experts
    moe_ep_serve(t->m, 0);
    rc = sync_fail(rc);
    // every rank runs the same U updates (a rank without sequences in one joins the sums)
    const int U = n_g > 0 ? (c->minibatches < n_g ? c->minibatches : n_g) : 0;
    for (int u = 0; u < U && !rc; u++) {
        int lo, hi;
        rl_minibatch_slice(offset, n, n_g, U, u, &lo, &hi);
        long tok_lo = first_tok[lo], tok_hi = first_tok[hi];
        double norm = c->loss == LOSS_GSPO ? (double)(hi - lo) : (double)(tok_hi - tok_lo);
        int nmb = micro_plan(seqs + lo, hi - lo, c->micro_tokens, &mb);
        if (nmb < 0) rc = -1, nmb = 0;
        long upd_packed = 0;
        for (int k = 0; k < nmb; k++) upd_packed += mb[k].T;
        if (dw->world > 1) {  // the update's global normaliser and packed length
            double x[2] = {norm, (double)upd_packed};
            if (dist_allreduce_sum_f64(dw, x, 2)) rc = -1;
            norm = x[0], upd_packed = (long)x[1];
        }
        if (!rc && norm == 0) {  // nothing to train on any rank: no AdamW step (the schedule counts real updates)
            free(mb), mb = NULL;
            continue;
        }
        model_zero_grad_deferred(t->m);  // the first backward writes the gradients (model.h)
        for (int k = 0; k < nmb && !rc; k++) {
            const micro_t *b = &mb[k];
            long at = first_tok[lo + b->first];
            if ((rc = micro_forward(t->m, seqs + lo, b, lp + at, ent + at))) break;
            if (u == 0 && c->old_logprobs == OLD_LOGP_ROLLOUT) agree_add(&ag, old + at, lp + at, b->n_resp, at);
            int32_t offs[4097];
            int32_t *so = b->count < 4096 ? offs : cispo_malloc(sizeof(int32_t) * (size_t)(b->count + 1));
            for (int q = 0; q <= b->count; q++) so[q] = (int32_t)(first_tok[lo + b->first + q] - at);
            loss += policy_loss(&t->loss, lp + at, old + at, ref ? ref + at : NULL, ent + at, adv + at, so, b->count,
                                norm, d + at, &st);
            if (so != offs) free(so);
            for (int j = 0; j < b->n_resp; j++) ent_sum += ent[at + j];
            train_arm_grad_reduce(t, k == nmb - 1);  // the last backward starts each layer's reduction
            micro_backward(t->m, seqs + lo, b, d + at, t->aux_coef * (float)b->T / (float)upd_packed);
            packed += b->T;
        }
        model_grads_settle(t->m);  // zeros where no backward ran (a rank without micro-batches)
        // every rank issues the reductions its backward did not (all of them without micro-batches)
        if (train_issue_grads(t) && !rc) rc = -1;
        moe_ep_serve(t->m, 1);
        free(mb), mb = NULL;
        if ((rc = sync_fail(rc))) {
            train_drop_grads(t);
            break;
        }
        if ((rc = train_allreduce_grads(t))) break;
        double gn = optim_step(&t->opt, t->m->params, t->m->grads, &lr);
        char what[64];
        snprintf(what, sizeof what, "RL step %d, update %d", step, u + 1);
        if ((rc = train_note_update(t, gn, what))) break;
        if (isfinite(gn)) gn_sum += gn, updates++;
        else skipped++;
    }
    double t_train = cispo_now() - t_train0;
    const int n_local = n;  // first_tok and order index this rank's samples (n becomes the global count)
    if (!rc && dw->world > 1) {  // global sums and maxima of the training statistics
        double sum[15] = {loss, st.n_tokens, st.clip_low, st.clip_high, st.masked, st.weight_sum, st.kl_old_sum,
                          ent_sum, packed, (double)n_tok, (double)gen_tokens, ag.n, ag.sad, st.kl_ref_sum, (double)n};
        double agv[5] = {ag.sx, ag.sy, ag.sxx, ag.syy, ag.sxy}, mx[2] = {st.weight_max, ag.mad};
        if (dist_allreduce_sum_f64(dw, sum, 15) || dist_allreduce_sum_f64(dw, agv, 5) || dist_allreduce_max_f64(dw, mx, 2))
            rc = -1;
        loss = sum[0], st.n_tokens = sum[1], st.clip_low = sum[2], st.clip_high = sum[3], st.masked = sum[4];
        st.weight_sum = sum[5], st.kl_old_sum = sum[6], ent_sum = sum[7], packed = sum[8], n_tok = (long)sum[9];
        gen_tokens = (long)sum[10], ag.n = sum[11], ag.sad = sum[12], st.kl_ref_sum = sum[13], n = (int)sum[14];
        ag.sx = agv[0], ag.sy = agv[1], ag.sxx = agv[2], ag.syy = agv[3], ag.sxy = agv[4];
        st.weight_max = mx[0], ag.mad = mx[1];
    }
    if (!rc) {
        t->rl_done++;
        t->rl_tokens += gen_tokens;
        double nt = st.n_tokens > 0 ? st.n_tokens : 1;
        metrics_set(mt, "loss", updates ? loss / updates : 0);
        metrics_set(mt, "clip_frac", (st.clip_low + st.clip_high) / nt);
        metrics_set(mt, "clip_frac_low", st.clip_low / nt);
        metrics_set(mt, "clip_frac_high", st.clip_high / nt);
        metrics_set(mt, "masked_frac", st.masked / nt);
        metrics_set(mt, "weight_mean", st.weight_sum / nt);
        metrics_set(mt, "weight_max", st.weight_max);
        metrics_set(mt, "kl_old", st.kl_old_sum / nt);
        if (t->ref) metrics_set(mt, "kl_ref", st.kl_ref_sum / nt);
        metrics_set(mt, "entropy", ent_sum / nt);
        agree_metrics(&ag, mt, first_tok, order, n_local);
        metrics_set(mt, "grad_norm", updates ? gn_sum / updates : 0);
        metrics_set(mt, "lr", lr);
        metrics_set(mt, "updates", updates);
        metrics_set(mt, "skipped_updates", skipped);
        metrics_set(mt, "train_samples", n);
        metrics_set(mt, "train_tokens", (double)n_tok);
        double dt = cispo_now() - t_start;
        metrics_set(mt, "time_step_s", dt);
        metrics_set(mt, "time_rollout_s", t_roll);
        metrics_set(mt, "time_reward_s", t_reward);
        metrics_set(mt, "time_train_s", t_train);
        metrics_set(mt, "rollout_tok_per_s", t_roll > 0 ? gen_tokens / t_roll : 0);
        metrics_set(mt, "train_tok_per_s", t_train > 0 ? packed / t_train : 0);
    }
    t->m->logit_scale = 1.0f;  // SFT and evaluation see the policy itself
    if (t->ref) t->ref->logit_scale = 1.0f;
    if (t->ref && (rc || t->rl_done >= c->steps)) model_free(t->ref), t->ref = NULL;
    for (int i = 0; i < n_all; i++) rollout_sample_free(&all[i].s), free(all[i].text);
    free(all), free(keep), free(idx), free(order), free(seqs), free(old), free(adv), free(first_tok);
    free(lp), free(ent), free(d), free(ref);
    return rc;
}
