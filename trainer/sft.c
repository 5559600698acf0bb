// trainer/sft.c — one supervised warm-start update: mean cross-entropy over the demonstration tokens
// (the answer and EOS after each prompt) of sft_batch records, i.e. dlogp = -1/n_tokens on each.
// Data parallel (world > 1): every rank draws the same batch and trains its contiguous slice of it; the
// token count that normalises the loss is the global one, so the summed gradient is the global mean's.
// defines: train_sft_step, train_optim_config
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "base/common.h"
#include "trainer/dist.h"
#include "trainer/train.h"
#include "trainer/train_batch.h"
#include "trainer/train_data.h"

void train_optim_config(const run_config_t *c, int phase, optim_config_t *o) {
    memset(o, 0, sizeof *o);
    o->lr = phase == 1 ? c->sft_lr : c->lr;
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

// The optimizer state belongs to one phase: RL starts from fresh moments and its own schedule.
void train_use_optimizer(train_t *t, int phase) {
    if (t->opt_phase == phase) return;
    optim_config_t oc;
    train_optim_config(&t->cfg, phase, &oc);
    optim_free(&t->opt);
    optim_init_on(&t->opt, t->m->be, &oc, t->m->table.n_floats,
                  t->m->wparams == (void *)t->m->params ? NULL : t->m->wparams);
    t->opt_phase = phase;
}

int train_sft_step(train_t *t, metrics_t *mt) {
    const run_config_t *c = &t->cfg;
    double t0 = cispo_now();
    train_use_optimizer(t, 1);
    const int B = c->sft_batch;
    int *idx = cispo_malloc(sizeof(int) * (size_t)B);
    data_cursor_take(&t->sft_data, (uint64_t)c->seed, 1, t->train.n, B, idx);
    dist_t *dw = dist_world();
    const int lo = (int)((long)B * dw->rank / dw->world), nb = (int)((long)B * (dw->rank + 1) / dw->world) - lo;
    train_seq_t *seqs = cispo_malloc(sizeof(train_seq_t) * (size_t)(nb > 0 ? nb : 1));
    long n_tok = 0, n_packed = 0, my_tok = 0;
    for (int i = 0; i < nb; i++) {
        const train_example_t *e = &t->train.ex[idx[lo + i]];
        seqs[i] = (train_seq_t){e->ids, e->n_ids, e->demo_ids, e->n_demo};
        n_tok += e->n_demo;
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
    model_zero_grad(t->m);
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
            for (int j = 0; j < q->n_resp; j++) all &= lp[r + j] > -0.6931472f;
            correct_seq += all;
            r += q->n_resp;
        }
        for (int j = 0; j < mb[k].n_resp; j++) loss -= lp[j], d[j] = -1.0f / (float)n_tok;
        micro_backward(t->m, seqs, &mb[k], d, t->aux_coef * (float)mb[k].T / (float)n_packed);
    }
    free(lp), free(d), free(mb), free(seqs), free(idx);
    if (rc) return -1;
    if (dw->world > 1) {  // global gradient, loss and count; every rank then takes the same AdamW step
        double sums[2] = {loss, (double)correct_seq};
        if (train_allreduce_grads(t) || dist_allreduce_sum_f64(dw, sums, 2))
            return -1;
        loss = sums[0], correct_seq = (long)sums[1];
    }
    double lr;
    double gn = optim_step(&t->opt, t->m->params, t->m->grads, &lr);
    t->sft_done++;
    double dt = cispo_now() - t0;
    metrics_clear(mt);
    metrics_set(mt, "loss", loss / (double)n_tok);
    metrics_set(mt, "seq_confident", (double)correct_seq / B);
    metrics_set(mt, "grad_norm", gn);
    metrics_set(mt, "lr", lr);
    metrics_set(mt, "tokens", (double)n_tok);
    metrics_set(mt, "time_step_s", dt);
    metrics_set(mt, "train_tok_per_s", (double)n_packed / dt);
    return isfinite(loss) ? 0 : cispo_fail("SFT step %d: the loss is not finite (lower sft_lr)", t->sft_done);
}
