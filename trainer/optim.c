// trainer/optim.c — AdamW + global-norm clipping + warmup/decay schedule, whole or ZeRO-1 sharded (optim.h).
#include "trainer/optim.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base/common.h"
#include "kernels/ops.h"

static dist_t *zero_group;  // optim_use_zero: the ranks optim_init_on shards over (NULL: none)

void optim_use_zero(dist_t *dp) { zero_group = dp; }

void optim_init_zero(optim_t *o, backend_t *be, const optim_config_t *cfg, size_t n, void *w_act, dist_t *dp) {
    memset(o, 0, sizeof *o);
    o->cfg = *cfg;
    o->n = n;
    o->be = be;
    o->w_act = w_act;
    o->dp = dp && dp->world > 1 ? dp : NULL;
    o->hi = n;
    if (o->dp) dist_shard_range(dp->world, dp->rank, n, &o->lo, &o->hi);
    o->m = backend_alloc(be, (o->hi - o->lo) * sizeof(float));
    o->v = backend_alloc(be, (o->hi - o->lo) * sizeof(float));
}

void optim_init_on(optim_t *o, backend_t *be, const optim_config_t *cfg, size_t n, void *w_act) {
    optim_init_zero(o, be, cfg, n, w_act, zero_group);
}

void optim_init(optim_t *o, const optim_config_t *cfg, size_t n) { optim_init_zero(o, backend_host(), cfg, n, NULL, NULL); }

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

// The working copy at element i (act dtype), or NULL when p is the working copy.
static void *w_at(const optim_t *o, size_t i) {
    return o->w_act ? (void *)((uint8_t *)o->w_act + i * dtype_size(o->be->act_dtype)) : NULL;
}

// ZeRO-1's all-gather: every owner's shard of p to all ranks, the working copy with it. On the host in
// place; a GPU stages p through the host (as the gradient all-reduce does until NCCL) and refreshes the
// working copy of the other ranks' shards (its own shard AdamW already wrote).
static void gather_params(optim_t *o, float *p) {
    if (o->be->kind == BACKEND_CPU && !o->w_act) {
        if (dist_allgather_f32(o->dp, p, o->n)) cispo_die(__FILE__, __LINE__, "ZeRO-1 all-gather", cispo_last_error());
        return;
    }
    float *h = cispo_malloc(o->n * sizeof(float));
    if (o->hi > o->lo) backend_download(o->be, h + o->lo, p + o->lo, (o->hi - o->lo) * sizeof(float));
    if (dist_allgather_f32(o->dp, h, o->n)) cispo_die(__FILE__, __LINE__, "ZeRO-1 all-gather", cispo_last_error());
    const size_t ranges[2][2] = {{0, o->lo}, {o->hi, o->n}};
    for (int k = 0; k < 2; k++) {
        size_t b = ranges[k][0], e = ranges[k][1];
        if (e <= b) continue;
        backend_upload(o->be, p + b, h + b, (e - b) * sizeof(float));
        if (o->w_act) backend_fill_f32(o->be, w_at(o, b), o->be->act_dtype, h + b, e - b);
    }
    free(h);
}

double optim_step(optim_t *o, float *p, float *g, double *lr_out) {
    const size_t ns = o->hi - o->lo;
    double ss = sum_squares(o->be, g + o->lo, ns);
    if (o->dp && dist_allreduce_sum_f64(o->dp, &ss, 1))
        cispo_die(__FILE__, __LINE__, "ZeRO-1 gradient norm all-reduce", cispo_last_error());
    double norm = sqrt(ss);
    double lr = optim_lr(&o->cfg, o->t);
    if (lr_out) *lr_out = lr;
    // A NaN norm fails `norm > clip` and an inf one makes the clip scale 0 (inf * 0 = NaN): either
    // way AdamW would write NaN into the weights and both moments for good. Skip the update (every
    // rank sees the same global norm, so all skip).
    if (!isfinite(norm)) return norm;
    if (o->cfg.grad_clip > 0 && norm > o->cfg.grad_clip && ns > 0) {
        scale_f32(o->be, g + o->lo, (float)(o->cfg.grad_clip / (norm + 1e-30)), ns);
    }
    o->t++;
    if (ns > 0)
        adamw_step(o->be, p + o->lo, w_at(o, o->lo), o->m, o->v, g + o->lo, ns, (float)lr, (float)o->cfg.beta1,
                   (float)o->cfg.beta2, (float)o->cfg.eps, (float)o->cfg.weight_decay, o->t);
    if (o->dp) gather_params(o, p);
    return norm;
}

int optim_gather_moments(optim_t *o, float *m, float *v, int root) {
    const size_t ns = o->hi - o->lo;
    if (!o->dp) {  // whole on every rank: root copies its own
        if (m && ns) backend_download(o->be, m, o->m, ns * sizeof(float)), backend_download(o->be, v, o->v, ns * sizeof(float));
        return 0;
    }
    const int here = o->dp->rank == root;
    // the shard on the host: the root's straight into its place, another rank's into a buffer to send
    float *hm = here ? m + o->lo : cispo_malloc((ns ? ns : 1) * sizeof(float));
    float *hv = here ? v + o->lo : cispo_malloc((ns ? ns : 1) * sizeof(float));
    if (ns) backend_download(o->be, hm, o->m, ns * sizeof(float)), backend_download(o->be, hv, o->v, ns * sizeof(float));
    int rc = dist_gather_shards_f32(o->dp, hm, here ? m : NULL, o->n, root);
    if (!rc) rc = dist_gather_shards_f32(o->dp, hv, here ? v : NULL, o->n, root);
    if (!here) free(hm), free(hv);
    return rc;
}

void optim_load_moments(optim_t *o, const float *m, const float *v) {
    const size_t ns = o->hi - o->lo;
    if (!ns) return;
    backend_upload(o->be, o->m, m + o->lo, ns * sizeof(float));
    backend_upload(o->be, o->v, v + o->lo, ns * sizeof(float));
}
