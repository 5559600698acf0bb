// trainer/optim.h — the optimizer around the flat parameter buffer (docs/rl.md "Optimizer and schedule"):
// AdamW with fp32 moments in the parameter layout, global gradient-norm clipping, and the learning-rate
// schedule (linear warmup, then constant, cosine or linear decay to a floor); under data parallelism
// optionally ZeRO-1: the moments sharded over the ranks (docs/architecture.md "Data and expert parallelism over MPI"); with expert parallelism two parts with their own replicas.
// defines: optim_config_t, optim_t, optim_init, optim_init_on, optim_init_zero, optim_use_zero, optim_free,
//          optim_lr, optim_grad_norm, optim_step, optim_gather_moments, optim_load_moments, optim_reset,
//          optim_keep_master, optim_gather_params,
//          optim_range_t, optim_part_t, optim_init_ep, optim_use_ep, optim_use_nccl, optim_reduce_grads,
//          optim_expert_ranges,
//          optim_owned, optim_owned_values, optim_part_values
//
// Use (one update):
//     model_zero_grad(m); ... model_backward(m, dlogp, aux) for each micro-batch ...
//     (data parallel: all-reduce m->grads; ZeRO-1: dist_reduce_scatter_sum_f32 is enough)
//     double gn = optim_step(&opt, m->params, m->grads, &lr);   // clips, then AdamW; !isfinite(gn): skipped
// Gradients are in be->grad_dtype (fp32, or bf16 on CUDA without expert parallelism).
#ifndef CISPO_TRAINER_OPTIM_H
#define CISPO_TRAINER_OPTIM_H

#include <stddef.h>

#include "kernels/backend.h"
#include "model/params.h"
#include "trainer/dist.h"
#include "trainer/dist_ep.h"
#include "trainer/dist_nccl.h"

enum lr_schedule { LR_CONSTANT = 0, LR_COSINE = 1, LR_LINEAR = 2 };

typedef struct {
    double lr;            // peak learning rate
    int warmup;           // updates of linear warmup from lr/warmup to lr (0: none)
    int schedule;         // enum lr_schedule, applied after warmup
    int total;            // updates over which cosine/linear decay to lr * min_ratio
    double min_ratio;     // floor of the decay, as a fraction of lr
    double beta1, beta2;  // 0.9, 0.95 (docs/rl.md)
    double eps;           // 1e-15 (M1: most gradients are below 1e-14; 1e-8 stalls training)
    double weight_decay;
    double grad_clip;     // global L2 norm; 0: no clipping
} optim_config_t;

typedef struct {
    size_t off, len;  // floats [off, off + len) of the flat buffer
} optim_range_t;

// Under expert parallelism the buffer (a rank's own layout: every dense parameter and its experts only,
// model/params.h) is two parts with their own replicas: the dense parameters (every rank) and this rank's
// experts (its DP group). A part is a list of ranges taken in order; ZeRO-1 shards that concatenation over
// the part's replicas.
typedef struct {
    optim_range_t *r;   // [nr] ascending, disjoint (owned)
    int nr;
    size_t n;           // floats in all ranges
    dist_t *shard;      // ZeRO-1: the replicas the moments are sharded over; NULL: whole on every replica
    int norm_here;      // unsharded: this rank is the replica that adds the part to the global norm
    size_t lo, hi;      // this rank's shard of the concatenation ([0, n) when whole)
    float *m, *v;       // [hi - lo] in be's memory
    float *p;           // [hi - lo] the fp32 master of the shard (optim_keep_master), or NULL
} optim_part_t;

typedef struct {
    optim_config_t cfg;
    size_t n;             // floats in the parameter buffer
    backend_t *be;        // where p, g and the moments live (the host backend by default)
    dist_t *dp;           // ZeRO-1: the data-parallel ranks the moments are sharded over; NULL: all here
    size_t lo, hi;        // this rank's shard [lo, hi) of the buffer (dist_shard_range; [0, n) unsharded)
    float *m, *v;         // [hi - lo] AdamW moments of the shard, the parameter layout, in be's memory
    float *ps;            // [hi - lo] the fp32 master of the shard (optim_keep_master), or NULL
    int keeps_master;     // optim_keep_master took the master: p of optim_step is unused
    void *w_act;          // the model's working copy refreshed by each step (NULL: p itself)
    int t;                // AdamW updates taken (bias correction counts from 1)
    // expert parallelism (optim_init_ep): the two parts; each rank updates its own experts, which no other
    // EP rank holds
    dist_ep_t *ep;        // NULL: the fields above (one whole or ZeRO-sharded buffer)
    optim_part_t part[2]; // dense, experts
    // NCCL communicators (optim_use_nccl) over the same ranks as dp, and as each part's replicas: the EP
    // gradient reduction and, with the master kept (optim_keep_master), the working copy's all-gather then
    // stay on the device; NULL: MPI, through the host on a GPU
    dist_nccl_t *nccl, *nccl_part[2];
} optim_t;

// Moments on the host (the CPU reference path), whole.
void optim_init(optim_t *o, const optim_config_t *cfg, size_t n);
// Moments in be's memory; w_act: the working copy (act dtype) AdamW refreshes in the same pass, or
// NULL when the activation dtype is fp32 and the master is the working copy. Sharded over the ranks
// that optim_use_zero named (if any), else whole.
void optim_init_on(optim_t *o, backend_t *be, const optim_config_t *cfg, size_t n, void *w_act);
// The same, sharded over dp's ranks (ZeRO-1): this rank allocates moments for its shard only, which
// may be empty when n < dp->world. dp NULL or a world of one: whole.
void optim_init_zero(optim_t *o, backend_t *be, const optim_config_t *cfg, size_t n, void *w_act, dist_t *dp);
// What optim_init_on does from now on: shard over dp (the trainer's run key `zero` under mpirun), or
// for NULL (the default) keep the whole state on every rank.
void optim_use_zero(dist_t *dp);
// What optim_init_on does from now on: the collectives of a GPU run on NCCL communicators, world over every
// rank (the ZeRO-1 all-gather of a kept master's working copy, and under expert parallelism the dense part's
// reduction) and
// dp_group over the rank's EP data-parallel group (the expert part's; NULL when that group is one rank).
// NULL, NULL: MPI through the host (the default).
void optim_use_nccl(dist_nccl_t *world, dist_nccl_t *dp_group);
void optim_free(optim_t *o);
// A new phase of training (RL after SFT): fresh moments (zero), the update count back to 0 and cfg's
// schedule; the layout, the shards and a kept master stay.
void optim_reset(optim_t *o, const optim_config_t *cfg);
// ZeRO-1 of the fp32 master too: when the state is sharded (optim_init_zero over a dp of several ranks, or
// an expert-parallel part sharded over its replicas), the optimizer copies its shard of the master from p
// (be's memory, the whole flat buffer: the model's master, which the caller then frees: model_drop_master)
// and keeps it. From then on optim_step ignores its p: it updates the shard, writes the new values into the
// working copy w (be's memory, act dtype, the whole buffer: the model's weights; on the CPU the fp32 buffer
// that was the master) and all-gathers the working copy alone (bf16 on a GPU: half the bytes of the master;
// 4/N instead of 4 bytes a parameter of master on each of N ranks). Returns 1 when it took the master, 0
// when the state is not sharded (nothing changes).
int optim_keep_master(optim_t *o, const float *p, void *w);
// The whole fp32 parameters [n] on the host of rank root (h there; NULL elsewhere): downloaded from p, or
// gathered from the kept shards (a collective of the replicas). Under expert parallelism over ep > 1 ranks
// refused like optim_gather_moments. 0 or -1 (+ message).
int optim_gather_params(optim_t *o, const float *p, float *h, int root);
// Learning rate of update number `update` (0-based) under the schedule.
double optim_lr(const optim_config_t *cfg, int update);
// Global L2 norm of g [n] (host memory), accumulated in double.
double optim_grad_norm(const float *g, size_t n);
// Clips g in place to cfg.grad_clip (when the norm exceeds it), then one AdamW update of p with the
// schedule's rate for update o->t. Returns the norm before clipping; *lr_out (may be NULL) gets the rate.
// A non-finite norm (NaN or inf anywhere in g) skips the update: p, the moments and o->t stay as they
// were, and the non-finite norm is returned for the caller to count (isfinite).
// Sharded (o->dp): a collective of every rank of dp. g needs to hold the summed gradient only in this
// rank's shard (a reduce-scatter); the norm is the global one (the shards' sums of squares all-reduced),
// the update touches the shard, and the all-gather then gives every rank the whole new p and working
// copy, bit-identical on all ranks (a GPU stages it through the host). A failed collective aborts: the
// ranks could not continue in step.
double optim_step(optim_t *o, float *p, void *g, double *lr_out);
// A single-file checkpoint holds the whole moments. optim_gather_moments: the moments [n] on the host of
// rank root (m, v there; NULL on the other ranks), gathered from the shards: a collective of dp when sharded
// (unsharded: root copies its own, the others do nothing). Under expert parallelism over ep > 1 ranks the
// ranks hold different experts: refused (-1 + message; such a checkpoint is written per rank, optim_owned).
// optim_load_moments: this rank's shard taken from the whole moments m, v [n] on the host (the rank's own
// layout: under EP its dense parameters and experts), so a state saved on any number of ranks loads on
// any other. 0 or -1 (+ message).
int optim_gather_moments(optim_t *o, float *m, float *v, int root);
void optim_load_moments(optim_t *o, const float *m, const float *v);

// The ranges of the flat buffer holding the experts [lo, hi) of every MoE layer (W1, W3, W2 of each; t holds
// them: t->e_lo <= lo <= hi <= t->e_hi), ascending and merged where adjacent; *n_out ranges (malloc'd, the
// caller frees).
optim_range_t *optim_expert_ranges(const param_table_t *t, const model_config_t *c, int lo, int hi, int *n_out);
// Expert parallelism over g: moments for the dense part (every parameter outside the experts, replicated
// over all ranks) and for this rank's experts (replicated over its DP group), each sharded over its
// replicas when zero is set (ZeRO-1). t is the rank's table: every expert it holds besides the rank's own
// (moe_ep_range) is left alone, so with ep > 1 it should hold just those (model_create_experts).
// Gradients: optim_reduce_grads. A world of one (g->ep == g->dp == 1) equals optim_init_on.
void optim_init_ep(optim_t *o, backend_t *be, const optim_config_t *cfg, const param_table_t *t,
                   const model_config_t *c, void *w_act, dist_ep_t *g, int zero);
// What optim_init_on does from now on: expert parallelism over g for models of table t and config c
// (the trainer's run key `ep`), with ZeRO-1 when zero; g NULL: back to optim_use_zero's choice.
void optim_use_ep(dist_ep_t *g, const param_table_t *t, const model_config_t *c, int zero);
// The gradient reduction an EP optimizer's step needs: dense gradients summed over all ranks, each
// expert's over its DP group (reduce-scatter to the shards under ZeRO-1, else all-reduce). g [n] in be's
// memory; model_backward left the other EP ranks' experts' gradients untouched (they are not read).
// A collective of all ranks. 0 or -1 (+ message).
int optim_reduce_grads(optim_t *o, float *g);
// Checkpoints under expert parallelism are written per rank (trainer/checkpoint.h): optim_owned gives the
// ranges of the flat buffer this rank writes, each part's ZeRO-1 shard or, unsharded, the whole part on the
// replica that counts it in the norm, so that the ranks write every element exactly once; ascending, *r
// malloc'd (the caller frees); returns the count. optim_owned_values: the parameters p (be's memory; the kept
// master shards when the optimizer keeps it) and the moments of those ranges, concatenated in that order, to
// hp and (each may be NULL) hm, hv on the host.
int optim_owned(const optim_t *o, optim_range_t **r);
void optim_owned_values(const optim_t *o, const float *p, float *hp, float *hm, float *hv);
// Part k's (0 dense, 1 experts) values of x (be's memory, the flat layout) to h [part n] on the host, in the
// part's order: the dense part is the same list of tensors on every rank whatever its experts.
void optim_part_values(const optim_t *o, int k, const float *x, float *h);

#endif
