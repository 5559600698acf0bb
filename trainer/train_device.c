// trainer/train_device.c — the device the policy lives on: choosing the backend (and whether the
// optimizer state is sharded over the ranks, run key `zero`), moving tensors between it and the host
// (checkpoints, collectives), the memory plan checked before the model is loaded, and the memory report printed at
// start.
// defines: train_moment_floats, train_recompute_flags, train_memory_check, train_open_backend, train_allreduce_grads,
//          train_arm_grad_reduce, train_issue_grads, train_drop_grads, train_download, train_upload,
//          train_memory_report
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/common.h"
#include "trainer/dist.h"
#include "trainer/dist_nccl.h"
#include "trainer/train.h"

int train_open_backend(train_t *t) {
    // ZeRO-1 over the data-parallel ranks: every optimizer the run sets up holds its shard of the moments (and,
    // taken from the model, of the fp32 master: train_use_optimizer)
    dist_t *dw = dist_world();
    optim_use_zero(t->cfg.zero && dw->world > 1 ? dw : NULL);
    const int c = t->cfg.device, want = c == RUN_DEVICE_AUTO ? -1 : c == RUN_DEVICE_CUDA ? BACKEND_CUDA : BACKEND_CPU;
    const int have = backend_available(BACKEND_CUDA);
    // one GPU per rank, in rank order on each host
    const int dev = dw->world > 1 && have > 0 ? dw->rank % have : 0;
    const char *note = NULL;
    if (backend_open(&t->be, want, dev, t->mcfg.head_dim, "key 'device'", &note)) return -1;
    if (note && dw->rank == 0) printf("device=auto: %s\n", note);
    if (t->cfg.grad_dtype == DTYPE_BF16) {
        if (t->be.kind != BACKEND_CUDA || t->be.act_dtype != DTYPE_BF16)
            return cispo_fail("key 'grad_dtype': bf16 gradients need device=cuda (this run is on %s, the fp32 "
                              "reference); set grad_dtype=fp32", backend_name(t->be.kind));
        if (dw->world > 1)
            return cispo_fail("key 'grad_dtype': bf16 gradients run on one GPU; the reductions over this run's %d "
                              "ranks are fp32: set grad_dtype=fp32", dw->world);
        t->be.grad_dtype = DTYPE_BF16;
    }
    return 0;
}

void train_download(train_t *t, float *host, const float *src, size_t n) {
    backend_download(&t->be, host, src, n * sizeof(float));
}

void train_upload(train_t *t, float *dst, const float *host, size_t n) {
    backend_upload(&t->be, dst, host, n * sizeof(float));
}

// Whether the gradient reduction overlaps the backward: on the GPU with NCCL (all-reduce or ZeRO-1's reduces
// on the side stream, trainer/dist_nccl.h), and plain data parallelism over MPI on the CPU (there ZeRO-1,
// and everywhere expert parallelism and host staging, keep the reduction of the whole buffer after the
// backward).
static int overlapped(const train_t *t) {
    if (!t->cfg.overlap_grad_reduce || dist_world()->world == 1 || t->opt.ep) return 0;
    if (dist_nccl_world()) return 1;
    return !t->opt.dp && t->be.kind == BACKEND_CPU;
}

// The gradients as fp32: every path that reduces them over ranks (bf16 gradients run on one rank: train_init).
static float *grads_f32(const train_t *t) {
    CISPO_ASSERT(t->m->grad_dtype == DTYPE_F32);
    return t->m->grads;
}

// Issues the reduction of the next range set in backward order (index i: layer n_layers-1-i; n_layers: the
// rest). Errors are kept for the wait: every rank must issue the same sums.
static int issue_next(train_t *t) {
    const int L = t->m->cfg.n_layers, layer = L - 1 - t->grads_issued;
    size_t off[2], len[2];
    const int n = model_grad_ranges(t->m, layer, off, len);
    int rc = 0;
    dist_nccl_t *nc = dist_nccl_world();
    if (nc)
        rc = dist_nccl_grads_start(nc, grads_f32(t), off, len, n, t->m->table.n_floats, t->opt.dp != NULL);
    else
        for (int k = 0; k < n; k++)
            if (len[k] && dist_iallreduce_sum_f32(dist_world(), grads_f32(t) + off[k], len[k], &t->grads_reqs)) rc = -1;
    t->grads_issued++;
    return rc;
}

static void grad_ready(void *ctx, int layer, const size_t *off, const size_t *len, int n) {
    (void)off, (void)len, (void)n;
    train_t *t = ctx;
    const int L = t->m->cfg.n_layers;
    CISPO_ASSERT(layer == (t->grads_issued < L ? L - 1 - t->grads_issued : -1) && t->grads_issued <= L);
    if (issue_next(t)) t->grads_rc = -1;
}

void train_arm_grad_reduce(train_t *t, int last) {
    const int on = last && overlapped(t);
    t->m->grad_hook = on ? grad_ready : NULL;
    t->m->grad_hook_ctx = on ? t : NULL;
}

int train_issue_grads(train_t *t) {
    t->m->grad_hook = NULL, t->m->grad_hook_ctx = NULL;
    if (!overlapped(t)) return 0;
    while (t->grads_issued <= t->m->cfg.n_layers)
        if (issue_next(t)) t->grads_rc = -1;
    return t->grads_rc;
}

// Completes what was issued this update and starts the next one afresh.
static int wait_grads(train_t *t) {
    dist_nccl_t *nc = dist_nccl_world();
    int rc = (nc ? dist_nccl_grads_wait(nc) : dist_wait(t->grads_reqs)) || t->grads_rc ? -1 : 0;
    t->grads_reqs = NULL, t->grads_issued = 0, t->grads_rc = 0;
    return rc;
}

void train_drop_grads(train_t *t) {
    t->m->grad_hook = NULL, t->m->grad_hook_ctx = NULL;
    if (t->grads_reqs || t->grads_issued) wait_grads(t);
}

// Under ZeRO-1 (t->opt sharded) a reduce-scatter: each rank gets the sum of its shard only, all that its
// optimizer step reads; else the whole buffer is all-reduced.
int train_allreduce_grads(train_t *t) {
    dist_t *dw = dist_world();
    if (dw->world == 1) return 0;
    const size_t n = t->m->table.n_floats;
    if (overlapped(t)) {  // the per-layer all-reduces: whatever was not issued yet, then the wait
        int rc = train_issue_grads(t);
        return wait_grads(t) || rc ? -1 : 0;
    }
    float *g = grads_f32(t);
    if (t->opt.ep) return optim_reduce_grads(&t->opt, g);  // expert parallelism: dense and expert parts
    const int zero = t->opt.dp != NULL;
    dist_nccl_t *nc = dist_nccl_world();  // a GPU run with NCCL: on the device
    if (nc) return zero ? dist_nccl_reduce_scatter_sum_f32(nc, g, n) : dist_nccl_allreduce_sum_f32(nc, g, n);
    if (t->be.kind == BACKEND_CPU) return zero ? dist_reduce_scatter_sum_f32(dw, g, n) : dist_allreduce_sum_f32(dw, g, n);
    float *h = cispo_malloc(n * sizeof(float));
    train_download(t, h, g, n);
    int rc = zero ? dist_reduce_scatter_sum_f32(dw, h, n) : dist_allreduce_sum_f32(dw, h, n);
    const size_t b = zero ? t->opt.lo : 0, e = zero ? t->opt.hi : n;
    if (!rc && e > b) train_upload(t, g + b, h + b, e - b);
    free(h);
    return rc;
}

static double gib(size_t bytes) { return (double)bytes / (1024.0 * 1024.0 * 1024.0); }

// ZeRO-1: the moments of rank 0's shard, the largest (shards differ by at most one element); under expert
// parallelism the table is this rank's layout (its experts only), the dense part sharded over the world and
// the experts over the rank's DP group (trainer/optim.h)
static size_t moment_floats(const train_t *t, const param_table_t *tb) {
    const size_t n = tb->n_floats, w = (size_t)dist_world()->world;
    if (!t->cfg.zero || w == 1) return n;
    if (t->cfg.ep <= 1) return (n + w - 1) / w;
    const size_t ex = (size_t)(tb->e_hi - tb->e_lo) * 3 * (size_t)t->mcfg.intermediate_size *
                      (size_t)t->mcfg.hidden_size * (size_t)t->mcfg.n_layers;
    const size_t dense = n - ex, dp = w / (size_t)t->cfg.ep;
    return (dense + w - 1) / w + (ex + dp - 1) / dp;
}

size_t train_moment_floats(const train_t *t) { return moment_floats(t, &t->m->table); }

int train_recompute_flags(const run_config_t *c) {
    return c->recompute == 1 ? MODEL_RECOMPUTE : c->recompute == 2 ? MODEL_RECOMPUTE_CHEAP : 0;
}

// What train_memory_check plans, bytes: on the device (the host on the CPU) and on the host besides
typedef struct {
    size_t weights, master, moments, grads, acts, caches, ref, ckpt;  // one rank's (ckpt: rank 0's)
    size_t load;    // the CPU's host copy of the weights beside the model's while it loads (a run that trains
                    // holds more than that later; one that only evaluates does not)
    size_t device;  // one rank's device memory (on the CPU, its host memory without ckpt)
    size_t host;    // the host memory of the ranks on this host, together (cispo_local_ranks)
    int local;      // those ranks
} mem_plan_t;

static mem_plan_t plan_memory(const train_t *t, int e_lo, int e_hi, int ctx) {
    const run_config_t *c = &t->cfg;
    const model_config_t *mc = &t->mcfg;
    param_table_t tb;
    param_table_build_experts(&tb, mc, e_lo, e_hi);
    const size_t n = tb.n_floats, mom = moment_floats(t, &tb);
    param_table_free(&tb);
    const int cpu = t->be.kind == BACKEND_CPU;
    const size_t es = dtype_size(t->be.act_dtype), f = sizeof(float);
    mem_plan_t p = {0};
    // The CPU trains the fp32 weights themselves; a GPU a working copy beside the fp32 master (whose ZeRO-1
    // shard the optimizer keeps, as it keeps the moments'). A run that trains nothing (`cispo eval`, sft_steps =
    // steps = 0) takes no optimizer step and no backward: no moments, no checkpoint, and on the CPU no gradient
    // page is ever touched (a GPU allocates them all the same).
    const int trains = c->sft_steps > 0 || c->steps > 0;
    p.weights = cpu ? n * f : n * es;
    p.master = cpu ? (mom < n && trains ? mom * f : 0) : mom * f;
    p.moments = trains ? 2 * mom * f : 0;
    p.grads = trains || !cpu ? n * dtype_size(t->be.grad_dtype) : 0;
    p.load = cpu && !trains ? n * f : 0;
    p.acts = model_activation_bytes(mc, c->micro_tokens, es, train_recompute_flags(c));  // with the backward's scratch
    // the rollout engine (infer_create): every slot's lightning states and KV blocks for ctx tokens and its
    // logits row, and two more states a slot for staging
    const infer_capacity_t k = infer_capacity(mc, es, ctx, 0);
    p.caches = (size_t)c->rollout_slots * (k.seq_bytes + 2 * (size_t)mc->n_heads * mc->head_dim * mc->head_dim * f);
    // the KL term's frozen reference: a forward-only model (its working copy, fp32 on the CPU)
    if (c->kl_coef > 0 && c->steps > 0)
        p.ref = n * es + model_activation_bytes(mc, c->micro_tokens, es, MODEL_FORWARD_ONLY);
    // a checkpoint meets on rank 0 (under EP each rank writes its shard) in host copies of the master and the
    // moments; the CPU writes its weights in place, and its moments too unless ZeRO-1 or EP spread them (train_save)
    const int spread = (c->zero && dist_world()->world > 1) || c->ep > 1;
    p.ckpt = trains ? (cpu ? (spread ? 2 : 0) : 3) * n * f : 0;
    p.device = p.weights + p.master + p.moments + p.grads + p.acts + p.caches + p.ref + p.load;
    // the host, for every rank it runs: everything on the CPU; for a GPU run the fp32 weights read there first
    // (freed once uploaded), then a checkpoint's copies
    p.local = cispo_local_ranks();
    const size_t one = cpu ? p.device : n * f, ckpt = p.ckpt * (c->ep > 1 ? (size_t)p.local : 1);
    p.host = cpu ? one * p.local + ckpt : (ckpt > one * p.local ? ckpt : one * p.local);
    return p;
}

// "weights 6.543 GiB + ... = total GiB", the parts a plan holds (those above zero), into buf
static void plan_text(char *buf, size_t cap, const mem_plan_t *p, const run_config_t *c, int cpu, int ctx) {
    const struct {
        const char *name;
        size_t bytes;
    } part[] = {{cpu ? "fp32 weights" : "weights", p->weights}, {cpu ? "master shard" : "fp32 master", p->master},
                {"AdamW moments", p->moments}, {"gradients", p->grads}, {"activations", p->acts},
                {"rollout caches", p->caches}, {"KL reference", p->ref}, {"checkpoint copies", cpu ? p->ckpt : 0},
                {"the weights' load copy", p->load}};
    size_t k = 0;
    buf[0] = 0;
    for (size_t i = 0; i < sizeof part / sizeof part[0] && k < cap; i++) {
        if (!part[i].bytes) continue;
        k += (size_t)snprintf(buf + k, cap - k, "%s%s %.3f%s", k ? " + " : "", part[i].name, gib(part[i].bytes),
                              k ? "" : " GiB");
        if (k < cap && i == 4)
            k += (size_t)snprintf(buf + k, cap - k, " (micro_tokens %d, recompute %s)", c->micro_tokens,
                                  c->recompute == 1 ? "true" : c->recompute == 2 ? "cheap" : "false");
        else if (k < cap && i == 5)
            k += (size_t)snprintf(buf + k, cap - k, " (%d slots of %d tokens)", c->rollout_slots, ctx);
    }
    if (k < cap) k += (size_t)snprintf(buf + k, cap - k, " = %.3f GiB", gib(cpu ? p->device + p->ckpt : p->device));
    if (k < cap && cpu && p->local > 1)
        snprintf(buf + k, cap - k, " a rank, %.3f GiB for the %d ranks on this host", gib(p->host), p->local);
}

int train_memory_check(train_t *t, int e_lo, int e_hi, int ctx) {
    const run_config_t *c = &t->cfg;
    const mem_plan_t p = plan_memory(t, e_lo, e_hi, ctx);
    const int cpu = t->be.kind == BACKEND_CPU;
    size_t h_avail = 0, h_total = 0, d_free = 0, d_total = 0;
    const int host_known = !cispo_host_memory(&h_avail, &h_total);
    if (!cpu) backend_mem_info(&t->be, &d_free, &d_total);
    char parts[768];
    plan_text(parts, sizeof parts, &p, c, cpu, ctx);
    // the device (on the CPU, the host) first, then a GPU run's host side
    const size_t need = cpu ? p.host : p.device, have = cpu ? h_avail : d_free;
    const int known = cpu ? host_known : d_total > 0;
    if (c->memory_check && known && need > have) {
        // (on the CPU: for the ranks on this host)
        const size_t state = cpu ? (p.weights + p.master + p.moments + p.grads) * p.local + p.ckpt
                                 : p.weights + p.master + p.moments + p.grads;
        char advice[512];
        const char *way = cpu ? "train it on a GPU (device=cuda in a build with CUDA), over several hosts (mpirun; "
                                "run keys zero, ep), or pick a smaller model"
                              : "train it over several GPUs (mpirun; run keys zero, ep; `cispo plan` sizes a layout), "
                                "with grad_dtype=bf16, or pick a smaller model";
        if (state > have)
            snprintf(advice, sizeof advice, "its weights, gradients and AdamW state alone take %.1f GiB: %s",
                     gib(state), way);
        else {
            const size_t acts = cpu ? p.acts * p.local : p.acts;
            const double per_token = (double)acts / c->micro_tokens, room = (double)have - (double)(need - acts);
            const long fit = room > 0 ? (long)(room * 0.95 / per_token) : 0;
            snprintf(advice, sizeof advice, "lower micro_tokens (about %ld fit), set recompute=true, or lower "
                     "rollout_slots", fit);
        }
        return cispo_fail("model '%s' on the %s needs about %.1f GiB (%s), but %.1f of %.1f GiB %s: %s; "
                          "memory_check=false tries anyway", c->model, cpu ? "cpu" : "gpu", gib(need), parts,
                          gib(have), gib(cpu ? h_total : d_total),
                          cpu ? "are available on the host" : "are free on the GPU", advice);
    }
    if (c->memory_check && !cpu && host_known && p.host > h_avail)
        return cispo_fail("model '%s': a GPU run reads its fp32 weights on the host and writes checkpoints from there "
                          "(%.1f GiB), but the host has %.1f of %.1f GiB available; memory_check=false tries anyway",
                          c->model, gib(p.host), gib(h_avail), gib(h_total));
    // the plan as one line, for train_run to print (the CPU's, and a dry run's on any device)
    char *s = t->mem_plan;
    const size_t cap = sizeof t->mem_plan;
    int k = snprintf(s, cap, "memory plan on the %s: %s", cpu ? "cpu" : "gpu", parts);
    if (!cpu && d_total && k >= 0 && (size_t)k < cap)
        k += snprintf(s + k, cap - (size_t)k, "; the GPU has %.1f of %.1f GiB free", gib(d_free), gib(d_total));
    if (host_known && k >= 0 && (size_t)k < cap)
        snprintf(s + k, cap - (size_t)k, "; the host has %.1f of %.1f GiB available", gib(h_avail), gib(h_total));
    return 0;
}

void train_memory_report(const train_t *t) {
    if (dist_world()->rank != 0) return;
    const model_t *m = t->m;
    const size_t n = m->table.n_floats, es = m->esize;
    const size_t working = m->wparams == (void *)m->params ? 0 : n * es;
    const size_t moments = train_moment_floats(t);
    // under ZeRO-1 the optimizer keeps its shard of the master, the same shard as the moments' (optim_keep_master)
    const size_t master = moments * sizeof(float), optim = 2 * moments * sizeof(float), grads = n * m->gsize;
    const size_t acts = m->n_acts * es + m->n_stats * sizeof(float) + m->n_iacts * sizeof(int32_t);
    const size_t scratch = m->n_scratch, ws = m->be->ws_bytes;
    const model_cache_t *ca = t->engine ? &t->engine->cache : NULL;
    size_t caches = 0;
    if (ca) {
        const model_config_t *c = &m->cfg;
        caches = (size_t)ca->n_lin * ca->max_slots * c->n_heads * c->head_dim * c->head_dim * sizeof(float) +
                 2 * (size_t)ca->n_soft * ca->n_blocks * ca->block_size * c->n_kv_heads * c->head_dim * es;
    }
    const size_t total = working + master + optim + grads + acts + scratch + ws + caches;
    printf("memory on %s (%s activations): weights %.3f GiB + fp32 master%s %.3f + AdamW moments%s %.3f + %s gradients "
           "%.3f + activations %.3f (micro_tokens %d, recompute %s) + scratch %.3f + workspace %.3f + rollout caches "
           "%.3f = %.3f GiB\n",
           backend_name(m->be->kind), dtype_name(m->be->act_dtype), gib(working), moments < n ? " (ZeRO-1 shard)" : "",
           gib(master), moments < n ? " (ZeRO-1 shard)" : "", gib(optim), dtype_name(m->grad_dtype), gib(grads),
           gib(acts), m->max_tokens,
           m->recompute == MODEL_RECOMPUTE_FULL ? "true" : m->recompute == MODEL_RECOMPUTE_OFF ? "false" : "cheap",
           gib(scratch), gib(ws), gib(caches), gib(total));
    size_t fr = 0, tot = 0;
    backend_mem_info(m->be, &fr, &tot);
    if (tot) {
        // activations and scratch grow linearly with micro_tokens; the rest does not
        double per_token = (double)(acts + scratch) / m->max_tokens;
        double room = (double)fr + (double)(acts + scratch) - (double)optim;  // moments are allocated later
        long fit = per_token > 0 ? (long)(room * 0.95 / per_token) : 0;
        // the other choice of the run key recompute, planned for the same micro_tokens
        const int other = m->recompute == MODEL_RECOMPUTE_FULL ? 0 : MODEL_RECOMPUTE;
        double per_other = (double)model_activation_bytes(&m->cfg, m->max_tokens, es, other) / m->max_tokens;
        long fit_other = per_other > 0 ? (long)(room * 0.95 / per_other) : 0;
        printf("memory: %.1f of %.1f GiB free on the device; micro_tokens up to about %ld fit (%ld with recompute=%s)\n",
               gib(fr), gib(tot), fit > 0 ? fit : 0, fit_other > 0 ? fit_other : 0, other ? "true" : "false");
    }
    if (t->engine) infer_report(t->engine, stdout);  // the rollout engine's capacity plan
}
