// trainer/optim.c — AdamW + global-norm clipping + warmup/decay schedule (optim.h).
#include "trainer/optim.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "base/common.h"
#include "kernels/ops.h"

void optim_init_on(optim_t *o, backend_t *be, const optim_config_t *cfg, size_t n, void *w_act) {
    memset(o, 0, sizeof *o);
    o->cfg = *cfg;
    o->n = n;
    o->be = be;
    o->w_act = w_act;
    o->m = backend_alloc(be, n * sizeof(float));
    o->v = backend_alloc(be, n * sizeof(float));
}

void optim_init(optim_t *o, const optim_config_t *cfg, size_t n) { optim_init_on(o, backend_host(), cfg, n, NULL); }

void optim_free(optim_t *o) {
    if (o->be) {
        backend_free(o->be, o->m);
        backend_free(o->be, o->v);
    }
    o->m = o->v = NULL;
}

double optim_lr(const optim_config_t *c, int update) {
    if (c->warmup > 0 && update < c->warmup) return c->lr * (update + 1) / c->warmup;
    if (c->schedule == LR_CONSTANT || c->total <= c->warmup) return c->lr;
    double frac = (double)(update - c->warmup) / (double)(c->total - c->warmup);
    if (frac > 1) frac = 1;
    double floor = c->lr * c->min_ratio;
    if (c->schedule == LR_COSINE) return floor + (c->lr - floor) * 0.5 * (1.0 + cos(M_PI * frac));
    return c->lr - (c->lr - floor) * frac;
}

double optim_grad_norm(const float *g, size_t n) { return sqrt(sum_squares(backend_host(), g, n)); }

double optim_step(optim_t *o, float *p, float *g, double *lr_out) {
    double norm = sqrt(sum_squares(o->be, g, o->n));
    double lr = optim_lr(&o->cfg, o->t);
    if (lr_out) *lr_out = lr;
    // A NaN norm fails `norm > clip` and an inf one makes the clip scale 0 (inf * 0 = NaN): either
    // way AdamW would write NaN into the weights and both moments for good. Skip the update.
    if (!isfinite(norm)) return norm;
    if (o->cfg.grad_clip > 0 && norm > o->cfg.grad_clip) {
        scale_f32(o->be, g, (float)(o->cfg.grad_clip / (norm + 1e-30)), o->n);
    }
    o->t++;
    adamw_step(o->be, p, o->w_act, o->m, o->v, g, o->n, (float)lr, (float)o->cfg.beta1, (float)o->cfg.beta2, (float)o->cfg.eps,
                   (float)o->cfg.weight_decay, o->t);
    return norm;
}
