// trainer/dist_nccl.h — NCCL on the CUDA backend, bootstrapped over MPI: rank 0 of a group makes the
// unique id and broadcasts it over the group's MPI communicator, every rank then joins the NCCL
// communicator with the group's ranks. Collectives run on device buffers in the backend's stream (ordered
// with its kernels): the gradient all-reduce, ZeRO-1's reduce-scatter and all-gather with the uneven shards
// of dist_shard_range (one reduce or broadcast per owner, grouped), and the MoE exchange of model/moe_ep.h
// as grouped ncclSend/ncclRecv; the transport for model/moe_ep.h also starts exchanges on a second stream
// (ordered after the compute stream by an event; the compute stream waits for its end), so the expert work
// on one token group overlaps the next group's transfer; the per-layer gradient reductions of the backward
// (dist_nccl_grads_start) run on that stream too, each after the kernels that wrote its layer's gradients,
// while the compute stream goes on with the layers below. Built when CMake finds NCCL (CISPO_HAVE_NCCL); otherwise every call fails
// with a message saying so, and the MPI path (trainer/dist.h, trainer/dist_ep.h: host staging) is the one.
// defines: dist_nccl_t, dist_nccl_available, dist_nccl_init, dist_nccl_free, dist_nccl_allreduce_sum_f32,
//          dist_nccl_reduce_scatter_sum_f32, dist_nccl_allgather_f32, dist_nccl_exchange, dist_nccl_ep_comm,
//          dist_nccl_world, dist_nccl_set_world, dist_nccl_grads_start, dist_nccl_grads_wait, dist_nccl_piece_t,
//          dist_nccl_pieces_sum, dist_nccl_pieces_gather
#ifndef CISPO_TRAINER_DIST_NCCL_H
#define CISPO_TRAINER_DIST_NCCL_H

#include <stddef.h>

#include "kernels/backend.h"
#include "model/moe_ep.h"
#include "trainer/dist.h"

typedef struct dist_nccl dist_nccl_t;

// Whether this build has NCCL.
int dist_nccl_available(void);
// A communicator over g's ranks for the CUDA backend be (its device and stream). A collective of g.
// NULL (+ message) on failure, or when the build has no NCCL or be is not CUDA.
dist_nccl_t *dist_nccl_init(dist_t *g, backend_t *be);
void dist_nccl_free(dist_nccl_t *c);
// In-place sum over the ranks of buf [n] (device memory, fp32). 0 or -1 (+ message).
int dist_nccl_allreduce_sum_f32(dist_nccl_t *c, float *buf, size_t n);
// ZeRO-1 on device memory, the shards of dist_shard_range(world, rank, n): each rank's shard of buf gets
// the sum over ranks of that shard / every owner's shard is copied to all ranks.
int dist_nccl_reduce_scatter_sum_f32(dist_nccl_t *c, float *buf, size_t n);
int dist_nccl_allgather_f32(dist_nccl_t *c, float *buf, size_t n);
// Starts the sum over the ranks of the ranges off[i], len[i] (i < n) of buf (device fp32, total floats in
// all) on the side stream, ordered after everything the compute stream has been given so far: the whole
// ranges (zero 0: all-reduce), or under ZeRO-1 (zero 1) each owner's share of them, dist_shard_range(world,
// r, total), reduced to its owner (what dist_nccl_reduce_scatter_sum_f32 of the whole buffer gives each rank
// of its shard). dist_nccl_grads_wait then orders the compute stream after every reduction started.
int dist_nccl_grads_start(dist_nccl_t *c, float *buf, const size_t *off, const size_t *len, int n, size_t total,
                          int zero);
int dist_nccl_grads_wait(dist_nccl_t *c);
// The optimizer's collectives over pieces of a flat device buffer: piece i is elements [phys, phys + len) of
// the buffer and [cat, cat + len) of a concatenation of `total` elements that ZeRO-1 shards over c's ranks
// (dist_shard_range). On the backend's stream, grouped:
//   dist_nccl_pieces_sum     fp32 sums over the ranks: each piece all-reduced (zero 0), or each owner's share
//                            of it reduced to its owner (zero 1);
//   dist_nccl_pieces_gather  each owner's share broadcast from the owner to every rank, elements of esize
//                            bytes (the fp32 master, or the working copy in the activation dtype).
// 0 or -1 (+ message).
typedef struct {
    size_t phys, cat, len;
} dist_nccl_piece_t;
int dist_nccl_pieces_sum(dist_nccl_t *c, float *buf, const dist_nccl_piece_t *pc, int n, size_t total, int zero);
int dist_nccl_pieces_gather(dist_nccl_t *c, void *buf, size_t esize, const dist_nccl_piece_t *pc, int n,
                            size_t total);
// model/moe_ep.h's exchange on device rows: grouped ncclSend/ncclRecv, blocks to and from group ranks.
int dist_nccl_exchange(dist_nccl_t *c, const void *send, const moe_ep_block_t *sb, int nsb, void *recv,
                       const moe_ep_block_t *rb, int nrb, size_t row_bytes);
// The transport for model/moe_ep.h over c: counts all-gathered over c's MPI group (host), rows by NCCL.
void dist_nccl_ep_comm(dist_nccl_t *c, moe_ep_comm_t *out);
// The communicator over all ranks that a GPU run reduces its gradients with (NULL: none, the MPI path).
dist_nccl_t *dist_nccl_world(void);
void dist_nccl_set_world(dist_nccl_t *c);

#endif
