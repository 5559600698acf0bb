// trainer/optim.c — AdamW + global-norm clipping + warmup/decay schedule, whole or ZeRO-1 sharded (optim.h).
#include "trainer/optim.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base/common.h"
#include "kernels/ops.h"

static dist_t *zero_group;  // optim_use_zero: the ranks optim_init_on shards over (NULL: none)
static struct {             // optim_use_ep: the grid optim_init_on splits over (g NULL: none)
    dist_ep_t *g;
    const param_table_t *t;
    const model_config_t *c;
    int zero;
} ep_use;

static dist_nccl_t *nccl_use[2];  // optim_use_nccl: world, EP data-parallel group

void optim_use_zero(dist_t *dp) { zero_group = dp; }

void optim_use_nccl(dist_nccl_t *world, dist_nccl_t *dp_group) { nccl_use[0] = world, nccl_use[1] = dp_group; }

void optim_use_ep(dist_ep_t *g, const param_table_t *t, const model_config_t *c, int zero) {
    ep_use.g = g, ep_use.t = t, ep_use.c = c, ep_use.zero = zero;
}

static void optim_free_ep(optim_t *o);
static double optim_step_ep(optim_t *o, float *p, float *g, double *lr_out);
static int optim_gather_moments_ep(optim_t *o, float *m, float *v, int root);
static void optim_load_moments_ep(optim_t *o, const float *m, const float *v);

void optim_init_zero(optim_t *o, backend_t *be, const optim_config_t *cfg, size_t n, void *w_act, dist_t *dp) {
    memset(o, 0, sizeof *o);
    o->cfg = *cfg;
    o->n = n;
    o->be = be;
    o->w_act = w_act;
    o->dp = dp && dp->world > 1 ? dp : NULL;
    o->nccl = o->dp && be->kind == BACKEND_CUDA ? nccl_use[0] : NULL;  // the trainer's dp is the world
    o->hi = n;
    if (o->dp) dist_shard_range(dp->world, dp->rank, n, &o->lo, &o->hi);
    o->m = backend_alloc(be, (o->hi - o->lo) * sizeof(float));
    o->v = backend_alloc(be, (o->hi - o->lo) * sizeof(float));
}

void optim_init_on(optim_t *o, backend_t *be, const optim_config_t *cfg, size_t n, void *w_act) {
    if (ep_use.g) {
        CISPO_ASSERT(n == ep_use.t->n_floats);
        optim_init_ep(o, be, cfg, ep_use.t, ep_use.c, w_act, ep_use.g, ep_use.zero);
        return;
    }
    optim_init_zero(o, be, cfg, n, w_act, zero_group);
}

void optim_init(optim_t *o, const optim_config_t *cfg, size_t n) { optim_init_zero(o, backend_host(), cfg, n, NULL, NULL); }

void optim_free(optim_t *o) {
    if (o->ep) optim_free_ep(o);
    if (o->be) {
        backend_free(o->be, o->m);
        backend_free(o->be, o->v);
        backend_free(o->be, o->ps);
    }
    o->m = o->v = o->ps = NULL;
    o->keeps_master = 0;
}

void optim_reset(optim_t *o, const optim_config_t *cfg) {
    o->cfg = *cfg;
    o->t = 0;
    for (int k = 0; k < (o->ep ? 2 : 1); k++) {
        const size_t ns = o->ep ? o->part[k].hi - o->part[k].lo : o->hi - o->lo;
        if (!ns) continue;  // an empty shard
        backend_zero(o->be, o->ep ? o->part[k].m : o->m, ns * sizeof(float));
        backend_zero(o->be, o->ep ? o->part[k].v : o->v, ns * sizeof(float));
    }
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

double optim_grad_norm(const float *g, size_t n) { return sqrt(sum_squares(backend_host(), g, DTYPE_F32, n)); }

// The working copy at element i (act dtype), or NULL when p is the working copy.
static void *w_at(const optim_t *o, size_t i) {
    return o->w_act ? (void *)((uint8_t *)o->w_act + i * dtype_size(o->be->act_dtype)) : NULL;
}

// The working copy's elements of [a, b) (each of es bytes) between be's memory and the host buffer h (bytes,
// indexed like the flat buffer).
static void w_move(optim_t *o, char *h, size_t a, size_t b, int to_host) {
    const size_t es = dtype_size(o->be->act_dtype);
    if (b <= a) return;
    if (to_host) backend_download(o->be, h + a * es, w_at(o, a), (b - a) * es);
    else backend_upload(o->be, w_at(o, a), h + a * es, (b - a) * es);
}

// With the master kept (optim_keep_master): every owner's shard of the working copy to all ranks, alone
// (AdamW wrote this rank's shard of it).
static void gather_working(optim_t *o) {
    const size_t es = dtype_size(o->be->act_dtype);
    if (o->nccl) {
        dist_nccl_piece_t all = {0, 0, o->n};
        if (dist_nccl_pieces_gather(o->nccl, o->w_act, es, &all, 1, o->n))
            cispo_die(__FILE__, __LINE__, "ZeRO-1 all-gather of the weights (NCCL)", cispo_last_error());
        return;
    }
    if (o->be->kind == BACKEND_CPU) {  // host memory: in place
        if (dist_allgather_bytes(o->dp, o->w_act, o->n, es))
            cispo_die(__FILE__, __LINE__, "ZeRO-1 all-gather of the weights", cispo_last_error());
        return;
    }
    char *h = cispo_malloc(o->n * es);
    w_move(o, h, o->lo, o->hi, 1);
    if (dist_allgather_bytes(o->dp, h, o->n, es))
        cispo_die(__FILE__, __LINE__, "ZeRO-1 all-gather of the weights", cispo_last_error());
    w_move(o, h, 0, o->lo, 0);
    w_move(o, h, o->hi, o->n, 0);
    free(h);
}

// ZeRO-1's all-gather: every owner's shard of p to all ranks, the working copy with it. On the host in
// place; a GPU stages p through the host (as the gradient all-reduce does until NCCL) and refreshes the
// working copy of the other ranks' shards (its own shard AdamW already wrote).
static void gather_params(optim_t *o, float *p) {
    if (o->keeps_master) {  // the trainer's path (on NCCL where it has communicators)
        gather_working(o);
        return;
    }
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

// The factor the step reads the gradients with: grad_clip / norm above the clip, else 1.
static float clip_factor(const optim_t *o, double norm) {
    return o->cfg.grad_clip > 0 && norm > o->cfg.grad_clip ? (float)(o->cfg.grad_clip / (norm + 1e-30)) : 1.0f;
}

double optim_step(optim_t *o, float *p, void *g, double *lr_out) {
    if (o->ep) {
        CISPO_ASSERT(o->be->grad_dtype == DTYPE_F32);  // the trainer refuses bf16 gradients with expert parallelism
        return optim_step_ep(o, p, g, lr_out);
    }
    const size_t ns = o->hi - o->lo;
    const int gt = o->be->grad_dtype;
    const void *gs = (const char *)g + o->lo * dtype_size(gt);  // this rank's shard
    double ss = sum_squares(o->be, gs, gt, ns);
    if (o->dp && dist_allreduce_sum_f64(o->dp, &ss, 1))
        cispo_die(__FILE__, __LINE__, "ZeRO-1 gradient norm all-reduce", cispo_last_error());
    double norm = sqrt(ss);
    double lr = optim_lr(&o->cfg, o->t);
    if (lr_out) *lr_out = lr;
    // A NaN norm fails `norm > clip` and an inf one makes the clip scale 0 (inf * 0 = NaN): either
    // way AdamW would write NaN into the weights and both moments for good. Skip the update (every
    // rank sees the same global norm, so all skip).
    if (!isfinite(norm)) return norm;
    // the clip's factor goes into the step's reading of the gradients (no pass of its own)
    const float scale = clip_factor(o, norm);
    o->t++;
    if (ns > 0)
        adamw_step(o->be, o->keeps_master ? o->ps : p + o->lo, w_at(o, o->lo), o->m, o->v, gs, gt, scale, ns, (float)lr,
                   (float)o->cfg.beta1, (float)o->cfg.beta2, (float)o->cfg.eps, (float)o->cfg.weight_decay, o->t);
    if (o->dp) gather_params(o, p);
    return norm;
}

int optim_gather_moments(optim_t *o, float *m, float *v, int root) {
    if (o->ep) return optim_gather_moments_ep(o, m, v, root);
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
    if (o->ep) {
        optim_load_moments_ep(o, m, v);
        return;
    }
    const size_t ns = o->hi - o->lo;
    if (!ns) return;
    backend_upload(o->be, o->m, m + o->lo, ns * sizeof(float));
    backend_upload(o->be, o->v, v + o->lo, ns * sizeof(float));
}

static int keep_master_ep(optim_t *o, const float *p);
static int gather_params_ep(optim_t *o, const float *p, float *h, int root);

int optim_keep_master(optim_t *o, const float *p, void *w) {
    CISPO_ASSERT(w && !o->keeps_master);
    if (o->ep) {
        if (!o->part[0].shard && !o->part[1].shard) return 0;
        o->w_act = w;
        return keep_master_ep(o, p);
    }
    if (!o->dp) return 0;
    const size_t ns = o->hi - o->lo;
    o->ps = backend_alloc(o->be, (ns ? ns : 1) * sizeof(float));
    if (ns) backend_copy(o->be, o->ps, p + o->lo, ns * sizeof(float));
    o->w_act = w;
    o->keeps_master = 1;
    return 1;
}

int optim_gather_params(optim_t *o, const float *p, float *h, int root) {
    if (o->ep) return gather_params_ep(o, p, h, root);
    if (!o->keeps_master) {  // the whole master is p on every rank
        if ((!o->dp || o->dp->rank == root) && h) backend_download(o->be, h, p, o->n * sizeof(float));
        return 0;
    }
    const int here = o->dp->rank == root;
    const size_t ns = o->hi - o->lo;
    float *mine = here ? h + o->lo : cispo_malloc((ns ? ns : 1) * sizeof(float));
    if (ns) backend_download(o->be, mine, o->ps, ns * sizeof(float));
    int rc = dist_gather_shards_f32(o->dp, mine, here ? h : NULL, o->n, root);
    if (!here) free(mine);
    return rc;
}

// ---- expert parallelism: two parts, each with its own replicas ----

static int range_cmp(const void *a, const void *b) {
    const optim_range_t *x = a, *y = b;
    return x->off < y->off ? -1 : x->off > y->off;
}

// sorts and merges adjacent ranges in place; returns the count
static int ranges_merge(optim_range_t *r, int n) {
    qsort(r, (size_t)n, sizeof *r, range_cmp);
    int k = 0;
    for (int i = 0; i < n; i++) {
        if (!r[i].len) continue;
        if (k && r[k - 1].off + r[k - 1].len == r[i].off) r[k - 1].len += r[i].len;
        else r[k++] = r[i];
    }
    return k;
}

optim_range_t *optim_expert_ranges(const param_table_t *t, const model_config_t *c, int lo, int hi, int *n_out) {
    CISPO_ASSERT(t->e_lo <= lo && lo <= hi && hi <= t->e_hi);
    const size_t FC = (size_t)c->intermediate_size * c->hidden_size;
    optim_range_t *r = cispo_malloc((size_t)(3 * c->n_layers + 1) * sizeof *r);
    int n = 0;
    for (int l = 0; l < c->n_layers; l++) {
        const layer_params_t *p = &t->layers[l];
        const size_t w[3] = {p->w1, p->w3, p->w2};
        for (int k = 0; k < 3; k++) r[n++] = (optim_range_t){w[k] + (size_t)(lo - t->e_lo) * FC, (size_t)(hi - lo) * FC};
    }
    *n_out = ranges_merge(r, n);
    return r;
}

static void part_set(optim_part_t *pt, backend_t *be, optim_range_t *r, int nr, dist_t *shard, int norm_here) {
    pt->r = r, pt->nr = nr, pt->n = 0;
    for (int i = 0; i < nr; i++) pt->n += r[i].len;
    pt->shard = shard && shard->world > 1 ? shard : NULL;
    pt->norm_here = norm_here;
    pt->lo = 0, pt->hi = pt->n;
    if (pt->shard) dist_shard_range(shard->world, shard->rank, pt->n, &pt->lo, &pt->hi);
    pt->m = backend_alloc(be, (pt->hi - pt->lo) * sizeof(float));
    pt->v = backend_alloc(be, (pt->hi - pt->lo) * sizeof(float));
}

void optim_init_ep(optim_t *o, backend_t *be, const optim_config_t *cfg, const param_table_t *t,
                   const model_config_t *c, void *w_act, dist_ep_t *g, int zero) {
    memset(o, 0, sizeof *o);
    o->cfg = *cfg;
    o->n = t->n_floats;
    o->be = be;
    o->w_act = w_act;
    o->ep = g;
    o->hi = o->n;
    int lo, hi, nx;
    moe_ep_range(c->n_experts, g->ep, g->ep_rank, &lo, &hi);
    optim_range_t *x = optim_expert_ranges(t, c, lo, hi, &nx);
    // dense: the complement of every expert the table holds
    int na;
    optim_range_t *all = optim_expert_ranges(t, c, t->e_lo, t->e_hi, &na);
    optim_range_t *d = cispo_malloc((size_t)(na + 1) * sizeof *d);
    int nd = 0;
    size_t at = 0;
    for (int i = 0; i < na; i++) {
        if (all[i].off > at) d[nd++] = (optim_range_t){at, all[i].off - at};
        at = all[i].off + all[i].len;
    }
    if (o->n > at) d[nd++] = (optim_range_t){at, o->n - at};
    free(all);
    part_set(&o->part[0], be, d, nd, zero ? g->world : NULL, g->world->rank == 0);
    part_set(&o->part[1], be, x, nx, zero ? &g->dp_group : NULL, g->dp_rank == 0);
    if (be->kind == BACKEND_CUDA) {  // the groups each part's collectives run over
        if (g->world->world > 1) o->nccl_part[0] = nccl_use[0];
        if (g->dp_group.world > 1) o->nccl_part[1] = nccl_use[1];
    }
}

static void optim_free_ep(optim_t *o) {
    for (int k = 0; k < 2; k++) {
        backend_free(o->be, o->part[k].m);
        backend_free(o->be, o->part[k].v);
        backend_free(o->be, o->part[k].p);
        o->part[k].p = NULL;
        free(o->part[k].r);
    }
    o->ep = NULL;
}

// Piece i of the part within [a, b) of its concatenation: *phys in the flat buffer, *at the position in
// the concatenation, *len; 0 when range i misses [a, b). *cat: range i's start in the concatenation (the
// caller walks i upwards and carries it).
static int piece(const optim_part_t *pt, int i, size_t *cat, size_t a, size_t b, size_t *phys, size_t *at, size_t *len) {
    size_t s = *cat, e = s + pt->r[i].len;
    *cat = e;
    size_t lo = s > a ? s : a, hi = e < b ? e : b;
    if (hi <= lo) return 0;
    *phys = pt->r[i].off + (lo - s), *at = lo, *len = hi - lo;
    return 1;
}

// The part's values of x (be's memory, flat layout) within [a, b) of the concatenation to h (host, indexed
// by the concatenation), or back (to_host 0; refreshes the working copy with the parameters when w is set).
static void part_move(optim_t *o, const optim_part_t *pt, float *x, float *h, size_t a, size_t b, int to_host, int w) {
    size_t cat = 0, ph, at, len;
    for (int i = 0; i < pt->nr; i++) {
        if (!piece(pt, i, &cat, a, b, &ph, &at, &len)) continue;
        if (to_host) backend_download(o->be, h + at, x + ph, len * sizeof(float));
        else {
            backend_upload(o->be, x + ph, h + at, len * sizeof(float));
            if (w && o->w_act) backend_fill_f32(o->be, w_at(o, ph), o->be->act_dtype, h + at, len);
        }
    }
}

// The working copy's elements of the part within [a, b) of its concatenation, between be's memory and the
// host buffer h (bytes, indexed by the concatenation).
static void part_move_w(optim_t *o, const optim_part_t *pt, char *h, size_t a, size_t b, int to_host) {
    const size_t es = dtype_size(o->be->act_dtype);
    size_t cat = 0, ph, at, len;
    for (int i = 0; i < pt->nr; i++) {
        if (!piece(pt, i, &cat, a, b, &ph, &at, &len)) continue;
        if (to_host) backend_download(o->be, h + at * es, w_at(o, ph), len * es);
        else backend_upload(o->be, w_at(o, ph), h + at * es, len * es);
    }
}

static int keep_master_ep(optim_t *o, const float *p) {
    for (int k = 0; k < 2; k++) {
        optim_part_t *pt = &o->part[k];
        pt->p = backend_alloc(o->be, (pt->hi - pt->lo ? pt->hi - pt->lo : 1) * sizeof(float));
        size_t cat = 0, ph, at, len;
        for (int i = 0; i < pt->nr; i++)
            if (piece(pt, i, &cat, pt->lo, pt->hi, &ph, &at, &len))
                backend_copy(o->be, pt->p + (at - pt->lo), p + ph, len * sizeof(float));
    }
    o->keeps_master = 1;
    return 1;
}

// Whole parameters on root as optim_gather_moments_ep gathers the moments: each element from the one rank
// that writes it (optim_owned), summed into zeroed buffers.
static int gather_params_ep(optim_t *o, const float *p, float *h, int root) {
    if (o->ep->ep > 1)
        return cispo_fail("expert parallelism over %d ranks: the ranks hold different experts, so the parameters do "
                          "not meet on one rank (the checkpoint is written per rank)", o->ep->ep);
    dist_t *w = o->ep->world;
    const int here = w->rank == root;
    float *hp = here ? h : cispo_malloc(o->n * sizeof(float));
    memset(hp, 0, o->n * sizeof(float));
    optim_range_t *r;
    const int nr = optim_owned(o, &r);
    size_t total = 0;
    for (int i = 0; i < nr; i++) total += r[i].len;
    float *vals = cispo_malloc((total ? total : 1) * sizeof(float));
    optim_owned_values(o, p, vals, NULL, NULL);
    size_t at = 0;
    for (int i = 0; i < nr; at += r[i].len, i++) memcpy(hp + r[i].off, vals + at, r[i].len * sizeof(float));
    free(vals), free(r);
    int rc = dist_reduce_sum_f32(w, hp, o->n, root);
    if (!here) free(hp);
    return rc;
}

// The part's ranges as pieces of its concatenation (malloc'd [pt->nr + 1]).
static dist_nccl_piece_t *part_pieces(const optim_part_t *pt) {
    dist_nccl_piece_t *pc = cispo_malloc((size_t)(pt->nr + 1) * sizeof *pc);
    size_t cat = 0;
    for (int i = 0; i < pt->nr; i++) pc[i] = (dist_nccl_piece_t){pt->r[i].off, cat, pt->r[i].len}, cat += pt->r[i].len;
    return pc;
}

int optim_reduce_grads(optim_t *o, float *g) {
    if (!o->ep) return cispo_fail("optim_reduce_grads: the optimizer is not expert-parallel");
    for (int k = 0; k < 2; k++) {
        optim_part_t *pt = &o->part[k];
        dist_t *grp = k == 0 ? o->ep->world : &o->ep->dp_group;
        if (grp->world == 1 || !pt->n) continue;
        if (o->nccl_part[k]) {  // on the device
            dist_nccl_piece_t *pc = part_pieces(pt);
            int rc = dist_nccl_pieces_sum(o->nccl_part[k], g, pc, pt->nr, pt->n, pt->shard != NULL);
            free(pc);
            if (rc) return -1;
            continue;
        }
        float *h = cispo_malloc(pt->n * sizeof(float));
        part_move(o, pt, g, h, 0, pt->n, 1, 0);
        int rc = pt->shard ? dist_reduce_scatter_sum_f32(grp, h, pt->n) : dist_allreduce_sum_f32(grp, h, pt->n);
        if (!rc) part_move(o, pt, g, h, pt->lo, pt->hi, 0, 0);
        free(h);
        if (rc) return -1;
    }
    return 0;
}

static void ep_die(const char *what) { cispo_die(__FILE__, __LINE__, what, cispo_last_error()); }

static double optim_step_ep(optim_t *o, float *p, float *g, double *lr_out) {
    double ss = 0;
    for (int k = 0; k < 2; k++) {
        const optim_part_t *pt = &o->part[k];
        if (!pt->shard && !pt->norm_here) continue;  // another replica counts it
        size_t cat = 0, ph, at, len;
        for (int i = 0; i < pt->nr; i++)
            if (piece(pt, i, &cat, pt->lo, pt->hi, &ph, &at, &len)) ss += sum_squares(o->be, g + ph, DTYPE_F32, len);
    }
    if (dist_allreduce_sum_f64(o->ep->world, &ss, 1)) ep_die("gradient norm all-reduce (expert parallelism)");
    double norm = sqrt(ss);
    double lr = optim_lr(&o->cfg, o->t);
    if (lr_out) *lr_out = lr;
    if (!isfinite(norm)) return norm;  // every rank sees the same norm: all skip
    const float scale = clip_factor(o, norm);
    o->t++;
    for (int k = 0; k < 2; k++) {
        const optim_part_t *pt = &o->part[k];
        size_t cat = 0, ph, at, len;
        for (int i = 0; i < pt->nr; i++) {
            if (!piece(pt, i, &cat, pt->lo, pt->hi, &ph, &at, &len)) continue;
            float *pm = o->keeps_master ? pt->p + (at - pt->lo) : p + ph;
            adamw_step(o->be, pm, w_at(o, ph), pt->m + (at - pt->lo), pt->v + (at - pt->lo), g + ph, DTYPE_F32, scale,
                       len, (float)lr,
                       (float)o->cfg.beta1, (float)o->cfg.beta2, (float)o->cfg.eps, (float)o->cfg.weight_decay, o->t);
        }
    }
    // ZeRO-1: each part's shards to its replicas
    for (int k = 0; k < 2; k++) {
        optim_part_t *pt = &o->part[k];
        if (!pt->shard) continue;
        if (o->keeps_master && o->nccl_part[k]) {  // the working copy's pieces alone, on the device
            dist_nccl_piece_t *pc = part_pieces(pt);
            int rc = dist_nccl_pieces_gather(o->nccl_part[k], o->w_act, dtype_size(o->be->act_dtype), pc, pt->nr, pt->n);
            free(pc);
            if (rc) ep_die("ZeRO-1 all-gather of the weights (expert parallelism, NCCL)");
            continue;
        }
        if (o->keeps_master) {  // the working copy's pieces alone, through the host
            const size_t es = dtype_size(o->be->act_dtype);
            char *hw = cispo_calloc(pt->n ? pt->n : 1, es);
            part_move_w(o, pt, hw, pt->lo, pt->hi, 1);
            if (dist_allgather_bytes(pt->shard, hw, pt->n, es)) ep_die("ZeRO-1 all-gather of the weights (expert parallelism)");
            part_move_w(o, pt, hw, 0, pt->lo, 0);
            part_move_w(o, pt, hw, pt->hi, pt->n, 0);
            free(hw);
            continue;
        }
        float *h = cispo_calloc(pt->n ? pt->n : 1, sizeof(float));
        part_move(o, pt, p, h, pt->lo, pt->hi, 1, 0);
        if (dist_allgather_f32(pt->shard, h, pt->n)) ep_die("ZeRO-1 all-gather (expert parallelism)");
        part_move(o, pt, p, h, 0, pt->lo, 0, 1);
        part_move(o, pt, p, h, pt->hi, pt->n, 0, 1);
        free(h);
    }
    return norm;
}

// Whole moments on root: every element is written by the one rank that holds it (its shard's owner, or
// the counting replica of an unsharded part) into zeroed buffers, then summed to root.
static int optim_gather_moments_ep(optim_t *o, float *m, float *v, int root) {
    if (o->ep->ep > 1)
        return cispo_fail("expert parallelism over %d ranks: the ranks hold different experts, so the moments do not "
                          "meet on one rank (the checkpoint is written per rank)", o->ep->ep);
    dist_t *w = o->ep->world;
    const int here = w->rank == root;
    float *hm = here ? m : cispo_malloc(o->n * sizeof(float)), *hv = here ? v : cispo_malloc(o->n * sizeof(float));
    memset(hm, 0, o->n * sizeof(float));
    memset(hv, 0, o->n * sizeof(float));
    for (int k = 0; k < 2; k++) {
        const optim_part_t *pt = &o->part[k];
        if (!pt->shard && !pt->norm_here) continue;
        size_t cat = 0, ph, at, len;
        for (int i = 0; i < pt->nr; i++) {
            if (!piece(pt, i, &cat, pt->lo, pt->hi, &ph, &at, &len)) continue;
            backend_download(o->be, hm + ph, pt->m + (at - pt->lo), len * sizeof(float));
            backend_download(o->be, hv + ph, pt->v + (at - pt->lo), len * sizeof(float));
        }
    }
    int rc = dist_reduce_sum_f32(w, hm, o->n, root);
    if (!rc) rc = dist_reduce_sum_f32(w, hv, o->n, root);
    if (!here) free(hm), free(hv);
    return rc;
}

static void optim_load_moments_ep(optim_t *o, const float *m, const float *v) {
    for (int k = 0; k < 2; k++) {
        const optim_part_t *pt = &o->part[k];
        size_t cat = 0, ph, at, len;
        for (int i = 0; i < pt->nr; i++) {
            if (!piece(pt, i, &cat, pt->lo, pt->hi, &ph, &at, &len)) continue;
            backend_upload(o->be, pt->m + (at - pt->lo), m + ph, len * sizeof(float));
            backend_upload(o->be, pt->v + (at - pt->lo), v + ph, len * sizeof(float));
        }
    }
}

int optim_owned(const optim_t *o, optim_range_t **r) {
    CISPO_ASSERT(o->ep);
    int cap = o->part[0].nr + o->part[1].nr + 1, n = 0;
    optim_range_t *out = cispo_malloc((size_t)cap * sizeof *out);
    for (int k = 0; k < 2; k++) {
        const optim_part_t *pt = &o->part[k];
        if (!pt->shard && !pt->norm_here) continue;  // another replica writes it
        size_t cat = 0, ph, at, len;
        for (int i = 0; i < pt->nr; i++)
            if (piece(pt, i, &cat, pt->lo, pt->hi, &ph, &at, &len)) out[n++] = (optim_range_t){ph, len};
    }
    *r = out;
    return ranges_merge(out, n);
}

void optim_owned_values(const optim_t *o, const float *p, float *hp, float *hm, float *hv) {
    CISPO_ASSERT(o->ep);
    // the ranges of optim_owned in ascending order: the two parts' pieces interleave in the flat buffer
    optim_range_t *r;
    int nr = optim_owned(o, &r);
    size_t at_out = 0;
    for (int i = 0; i < nr && !o->keeps_master; i++) {
        if (hp) backend_download(o->be, hp + at_out, p + r[i].off, r[i].len * sizeof(float));
        at_out += r[i].len;
    }
    // moments (and a kept master): each piece of a part at its place among the ranges (ranges_merge may have
    // joined pieces)
    for (int k = 0; k < 2 && (hm || hv || (hp && o->keeps_master)); k++) {
        const optim_part_t *pt = &o->part[k];
        if (!pt->shard && !pt->norm_here) continue;
        size_t cat = 0, ph, at, len;
        for (int i = 0; i < pt->nr; i++) {
            if (!piece(pt, i, &cat, pt->lo, pt->hi, &ph, &at, &len)) continue;
            size_t before = 0;
            int j = 0;
            while (r[j].off + r[j].len <= ph) before += r[j++].len;
            before += ph - r[j].off;
            if (hm) backend_download(o->be, hm + before, pt->m + (at - pt->lo), len * sizeof(float));
            if (hv) backend_download(o->be, hv + before, pt->v + (at - pt->lo), len * sizeof(float));
            if (hp && o->keeps_master) backend_download(o->be, hp + before, pt->p + (at - pt->lo), len * sizeof(float));
        }
    }
    free(r);
}

void optim_part_values(const optim_t *o, int k, const float *x, float *h) {
    CISPO_ASSERT(o->ep && k >= 0 && k < 2);
    part_move((optim_t *)o, &o->part[k], (float *)x, h, 0, o->part[k].n, 1, 0);
}
