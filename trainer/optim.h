// trainer/optim.h — the optimizer around the flat parameter buffer (docs/rl.md "Optimizer and schedule"):
// AdamW with fp32 moments in the parameter layout, global gradient-norm clipping, and the learning-rate
// schedule (linear warmup, then constant, cosine or linear decay to a floor); under data parallelism
// optionally ZeRO-1: the moments sharded over the ranks (docs/architecture.md "Data parallelism over MPI").
// defines: optim_config_t, optim_t, optim_init, optim_init_on, optim_init_zero, optim_use_zero, optim_free,
//          optim_lr, optim_grad_norm, optim_step, optim_gather_moments, optim_load_moments
//
// Use (one update):
//     model_zero_grad(m); ... model_backward(m, dlogp, aux) for each micro-batch ...
//     (data parallel: all-reduce m->grads; ZeRO-1: dist_reduce_scatter_sum_f32 is enough)
//     double gn = optim_step(&opt, m->params, m->grads, &lr);   // clips, then AdamW; !isfinite(gn): skipped
#ifndef CISPO_TRAINER_OPTIM_H
#define CISPO_TRAINER_OPTIM_H

#include <stddef.h>

#include "kernels/backend.h"
#include "trainer/dist.h"

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
    optim_config_t cfg;
    size_t n;             // floats in the parameter buffer
    backend_t *be;        // where p, g and the moments live (the host backend by default)
    dist_t *dp;           // ZeRO-1: the data-parallel ranks the moments are sharded over; NULL: all here
    size_t lo, hi;        // this rank's shard [lo, hi) of the buffer (dist_shard_range; [0, n) unsharded)
    float *m, *v;         // [hi - lo] AdamW moments of the shard, the parameter layout, in be's memory
    void *w_act;          // the model's working copy refreshed by each step (NULL: p itself)
    int t;                // AdamW updates taken (bias correction counts from 1)
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
void optim_free(optim_t *o);
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
double optim_step(optim_t *o, float *p, float *g, double *lr_out);
// Checkpoints hold the whole moments. optim_gather_moments: the moments [n] on the host of rank root
// (m, v there; NULL on the other ranks), gathered from the shards: a collective of dp when sharded
// (unsharded: root copies its own, the others do nothing).
// optim_load_moments: this rank's shard taken from the whole moments m, v [n] on the host, so a state
// saved on any number of ranks loads on any other. 0 or -1 (+ message).
int optim_gather_moments(optim_t *o, float *m, float *v, int root);
void optim_load_moments(optim_t *o, const float *m, const float *v);

#endif
