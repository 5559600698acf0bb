// trainer/sft.c — one supervised warm-start update: mean cross-entropy over the demonstration tokens
// (the answer and EOS after each prompt) of sft_batch records, i.e. dlogp = -1/n_tokens on each.
// Data parallel (world > 1): every rank draws the same batch and trains its contiguous slice of it; the
// token count that normalises the loss is the global one, so the summed gradient is the global mean's.
// defines: train_sft_step, train_optim_config, train_use_optimizer, train_phase_lr, train_note_update
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/common.h"
#include "trainer/dist.h"
#include "model/moe_ep.h"
#include "trainer/train.h"
#include "trainer/train_batch.h"
#include "trainer/train_data.h"

// Models up to this many parameters take the demo's rates when lr / sft_lr are left at -1: the tiny
// preset has 0.34 M. 1e-3 on a billion-parameter model wrecks it in a few updates (M1 trained at ~1e-6).
#define TINY_MODEL_PARAMS 10000000

int train_phase_lr(const run_config_t *c, size_t n_params, int phase, double *lr) {
    const double key = phase == 1 ? c->sft_lr : c->lr;
    *lr = key >= 0 ? key : phase == 1 ? 3e-3 : 1e-3;
    if (key >= 0 || n_params < TINY_MODEL_PARAMS) return 0;
    return cispo_fail("key '%s' is required for this model (%.1f M parameters): its default is sized for the tiny "
                      "demo model (%s) and would wreck a larger one; set it, e.g. %s=1e-6 (M1's RL rate) or %s=1e-5",
                      phase == 1 ? "sft_lr" : "lr", n_params / 1e6, phase == 1 ? "3e-3" : "1e-3",
                      phase == 1 ? "sft_lr" : "lr", phase == 1 ? "sft_lr" : "lr");
}

// The optimizer settings of a phase; lr as train_phase_lr resolves it for a tiny model (the caller
// checks larger models with train_phase_lr).
void train_optim_config(const run_config_t *c, int phase, optim_config_t *o) {
    memset(o, 0, sizeof *o);
    train_phase_lr(c, 0, phase, &o->lr);
    o->warmup = phase == 1 ? c->sft_warmup : c->warmup;
    o->schedule = phase == 1 ? c->sft_lr_schedule : c->lr_schedule;
    o->total = phase == 1 ? c->sft_steps : c->steps * c->minibatches;
    o->min_ratio = c->lr_min_ratio;
    o->beta1 = c->beta1;
    o->beta2 = c->beta2;
    o->eps = c->adam_eps;
    o->weight_decay = c->weight_decay;
    o->grad_clip = c->grad_clip;
}

// The optimizer state belongs to one phase: RL starts from fresh moments and its own schedule. The
// state is set up even when the rate is missing (a resume loads moments into it); the -1 then stops
// the step. Both phases' rates are checked at the first, so a long SFT does not end in a missing lr.
// Under ZeRO-1 on several ranks the first phase's optimizer takes its shard of the fp32 master and the
// model lets go of the whole one (optim_keep_master); a later phase keeps the layout and the master and
// starts from fresh moments (optim_reset).
int train_use_optimizer(train_t *t, int phase) {
    const size_t n = t->m->table.n_floats;
    double lr;
    int rc = 0;
    if (t->cfg.sft_steps > t->sft_done && train_phase_lr(&t->cfg, n, 1, &lr)) rc = -1;
    if (!rc && t->cfg.steps > 0 && train_phase_lr(&t->cfg, n, 2, &lr)) rc = -1;
    if (!rc && train_phase_lr(&t->cfg, n, phase, &lr)) rc = -1;
    if (t->opt_phase == phase) return rc;
    optim_config_t oc;
    train_optim_config(&t->cfg, phase, &oc);
    if (t->opt_phase) {
        optim_reset(&t->opt, &oc);
    } else {
        optim_init_on(&t->opt, t->m->be, &oc, n, t->m->wparams == (void *)t->m->params ? NULL : t->m->wparams);
        if (optim_keep_master(&t->opt, t->m->params, t->m->wparams)) model_drop_master(t->m);
    }
    t->opt_phase = phase;
    return rc;
}

int train_note_update(train_t *t, double gn, const char *what) {
    if (isfinite(gn)) {
        t->nonfinite_streak = 0;
        return 0;
    }
    t->nonfinite_streak++;
    if (dist_world()->rank == 0)
        fprintf(stderr, "cispo: %s: gradient norm %g, update skipped (weights and AdamW state unchanged; %d in a row)\n",
                what, gn, t->nonfinite_streak);
    if (t->nonfinite_streak < t->cfg.max_nonfinite_updates) return 0;
    return cispo_fail("%s: %d updates in a row had a non-finite gradient norm and were skipped "
                      "(max_nonfinite_updates); the weights are those before them. Lower the learning rate, look for "
                      "a bad batch in samples.h5, or raise max_nonfinite_updates", what, t->nonfinite_streak);
}

int train_sft_step(train_t *t, metrics_t *mt) {
    const run_config_t *c = &t->cfg;
    double t0 = cispo_now();
    if (train_use_optimizer(t, 1)) return -1;
    const int B = c->sft_batch;
    int *idx = cispo_malloc(sizeof(int) * (size_t)B);
    data_cursor_take(&t->sft_data, (uint64_t)c->seed, 1, t->train.n, B, idx);
    dist_t *dw = dist_world();
    const int lo = (int)((long)B * dw->rank / dw->world), nb = (int)((long)B * (dw->rank + 1) / dw->world) - lo;
    train_seq_t *seqs = cispo_malloc(sizeof(train_seq_t) * (size_t)(nb > 0 ? nb : 1));
    long n_tok = 0, n_packed = 0, my_tok = 0;
    for (int i = 0; i < nb; i++) {
        const train_example_t *e = &t->train.ex[idx[lo + i]];
        seqs[i] = (train_seq_t){.prompt = e->ids, .n_prompt = e->n_ids, .resp = e->demo_ids, .n_resp = e->n_demo,
                                .mask = e->demo_mask};
        for (int j = 0; j < e->n_demo; j++) n_tok += !e->demo_mask || e->demo_mask[j];  // tool results: context
        n_packed += e->n_ids + e->n_demo - 1;
    }
    my_tok = n_tok;
    if (dw->world > 1) {
        double cnt[2] = {(double)n_tok, (double)n_packed};
        if (dist_allreduce_sum_f64(dw, cnt, 2)) return free(idx), free(seqs), -1;
        n_tok = (long)cnt[0], n_packed = (long)cnt[1];
    }
    micro_t *mb;
    int nmb = micro_plan(seqs, nb, c->micro_tokens, &mb);
    if (nmb < 0) return free(idx), free(seqs), -1;
    model_zero_grad_deferred(t->m);  // the first backward writes the gradients (model.h)
    double loss = 0;
    long correct_seq = 0;
    float *lp = cispo_malloc(sizeof(float) * (size_t)(my_tok + 1)), *d = cispo_malloc(sizeof(float) * (size_t)(my_tok + 1));
    int rc = 0;
    for (int k = 0; k < nmb && !rc; k++) {
        if ((rc = micro_forward(t->m, seqs, &mb[k], lp, NULL))) break;
        int r = 0;
        for (int s = 0; s < mb[k].count; s++) {  // a sequence counts as learnt when every token has p > 1/2
            const train_seq_t *q = &seqs[mb[k].first + s];
            int all = 1;
            const int n_scored = train_seq_n_train(q);
            for (int j = 0; j < n_scored; j++) all &= lp[r + j] > -0.6931472f;
            correct_seq += all;
            r += n_scored;
        }
        // logp holds the scored tokens only: tool results inside demonstrations carry no loss
        for (int j = 0; j < mb[k].n_resp; j++) loss -= lp[j], d[j] = -1.0f / (float)n_tok;
        train_arm_grad_reduce(t, k == nmb - 1);  // the last backward starts each layer's reduction
        micro_backward(t->m, seqs, &mb[k], d, t->aux_coef * (float)mb[k].T / (float)n_packed);
    }
    model_grads_settle(t->m);  // zeros where no backward ran (a rank without micro-batches)
    // every rank issues the reductions its backward did not (all of them without micro-batches)
    if (train_issue_grads(t) && !rc) rc = -1;
    moe_ep_serve(t->m, 1);  // expert parallelism: serve the experts to the EP group's ranks with more micro-batches
    free(lp), free(d), free(mb), free(seqs), free(idx);
    if (rc) return train_drop_grads(t), -1;
    if (dw->world > 1) {  // global gradient, loss and count; every rank then takes the same AdamW step
        double sums[2] = {loss, (double)correct_seq};
        if (train_allreduce_grads(t) || dist_allreduce_sum_f64(dw, sums, 2))
            return -1;
        loss = sums[0], correct_seq = (long)sums[1];
    }
    double lr;
    double gn = optim_step(&t->opt, t->m->params, t->m->grads, &lr);
    t->sft_done++;
    char what[64];
    snprintf(what, sizeof what, "SFT step %d", t->sft_done);
    if (train_note_update(t, gn, what)) return -1;
    double dt = cispo_now() - t0;
    metrics_clear(mt);
    metrics_set(mt, "loss", loss / (double)n_tok);
    metrics_set(mt, "seq_confident", (double)correct_seq / B);
    metrics_set(mt, "grad_norm", gn);
    metrics_set(mt, "skipped_updates", !isfinite(gn));
    metrics_set(mt, "lr", lr);
    metrics_set(mt, "tokens", (double)n_tok);
    metrics_set(mt, "time_step_s", dt);
    metrics_set(mt, "train_tok_per_s", (double)n_packed / dt);
    return isfinite(loss) || !isfinite(gn) ? 0 : cispo_fail("SFT step %d: the loss is not finite (lower sft_lr)", t->sft_done);
}
