// trainer/train_device.c — the device the policy lives on: choosing the backend (and whether the
// optimizer state is sharded over the ranks, run key `zero`), moving tensors between it and the host
// (checkpoints, collectives), and the memory report printed at start.
// defines: train_moment_floats, train_open_backend, train_allreduce_grads, train_arm_grad_reduce, train_issue_grads,
//          train_drop_grads, train_download, train_upload, train_memory_report
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
size_t train_moment_floats(const train_t *t) {
    const param_table_t *tb = &t->m->table;
    const size_t n = tb->n_floats, w = (size_t)dist_world()->world;
    if (!t->cfg.zero || w == 1) return n;
    if (t->cfg.ep <= 1) return (n + w - 1) / w;
    const size_t ex = (size_t)(tb->e_hi - tb->e_lo) * 3 * (size_t)t->mcfg.intermediate_size *
                      (size_t)t->mcfg.hidden_size * (size_t)t->mcfg.n_layers;
    const size_t dense = n - ex, dp = w / (size_t)t->cfg.ep;
    return (dense + w - 1) / w + (ex + dp - 1) / dp;
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
