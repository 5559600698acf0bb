// model/moe_ep.h — expert parallelism for the MoE block: the experts of every MoE layer split over an
// EP group of ranks (contiguous, balanced ranges: any expert count, sizes differ by at most one, a rank may
// own none). Each rank routes its own tokens, sends every dispatched row to the rank owning its expert,
// runs its own experts on the rows it received from every rank, and sends the outputs back to be
// combined; the backward runs the same two exchanges in reverse (dY to the owners, dX back).
// The transport is the caller's: model/ sees only moe_ep_comm_t (trainer/dist_ep.c implements it over
// MPI), so no MPI or NCCL header reaches model/.
// defines: moe_ep_block_t, moe_ep_comm_t, moe_ep_t, moe_ep_range, moe_ep_owner, moe_ep_attach,
//          moe_ep_detach, moe_ep_comm, moe_ep_serve, moe_ep_layer_forward, moe_ep_layer_backward
//
// Use (every rank of the group runs the same sequence of forwards and backwards):
//     moe_ep_attach(m, &comm);                // m->ep: model_forward/model_backward now exchange
//     model_forward(m, ...); model_logprobs(...); model_backward(m, ...);
//     ... as many micro-batches as this rank has (the group's ranks may have different numbers) ...
//     moe_ep_serve(m, 1);   // then serve the experts to the group's others until every rank is done
//     moe_ep_detach(m);
// A rank's model holds its own experts only (model_create_experts with moe_ep_range's range: parameters,
// gradients, working copy and optimizer state shrink to them; a model holding more experts also works,
// the others unused): it computes with, and accumulates gradients into, those. The forward with caches
// (prefill and decode, model/infer.h) exchanges as the training forward does, so the ranks of a group
// generate together: each forward of a rank is one round of the group, matched in order with the others'
// forwards whatever their kinds and token counts (a prefill chunk of one rank may meet a decode step of
// another), and a rank whose sequences are done serves with moe_ep_serve(m, 0) until every rank is
// (rl/rollout.c rollout_generate does).
#ifndef CISPO_MODEL_MOE_EP_H
#define CISPO_MODEL_MOE_EP_H

#include <stddef.h>
#include <stdint.h>

#include "model/model.h"

// rows [row, row + rows) of a buffer of equal-width rows, to or from rank `peer` of the group
typedef struct {
    int peer;
    size_t row, rows;
} moe_ep_block_t;

typedef struct {
    int rank, size;  // this rank in the EP group, and the group's size
    void *ctx;       // the transport's own state
    // every rank's mine [n] to all: all [size * n], rank r's at all + r * n. 0 or -1 (+ message).
    int (*allgather_i32)(void *ctx, const int32_t *mine, int32_t *all, int n);
    // sends send's blocks to their peers and receives recv's blocks from theirs (rows of row_bytes bytes,
    // buffers in the model backend's memory). The k-th block this rank sends to a peer is that peer's k-th
    // receive block from this rank, of the same rows; blocks of zero rows are never listed. 0 or -1.
    int (*exchange)(void *ctx, const void *send, const moe_ep_block_t *sb, int nsb, void *recv,
                    const moe_ep_block_t *rb, int nrb, size_t row_bytes);
    // Optional (NULL: exchange serves, one at a time): the same exchange started (a handle, NULL + message
    // on failure) and completed later, so that the expert work on one token group overlaps the next group's
    // transfer. The buffers stay untouched until the wait; exchanges in flight match in the order started.
    void *(*exchange_start)(void *ctx, const void *send, const moe_ep_block_t *sb, int nsb, void *recv,
                            const moe_ep_block_t *rb, int nrb, size_t row_bytes);
    int (*exchange_wait)(void *ctx, void *handle);
} moe_ep_comm_t;

typedef struct moe_ep moe_ep_t;  // per-model state (model/moe_ep.c): receive buffers and the last counts

// Experts [lo, hi) owned by `rank` of a group of `size` (balanced contiguous ranges), and the owner of e.
void moe_ep_range(int n_experts, int size, int rank, int *lo, int *hi);
int moe_ep_owner(int n_experts, int size, int e);
// Splits m's experts over comm's group (copied): m->ep is set, and the receive buffers are planned for the
// worst case (every rank's max_tokens * K rows to this rank's experts). 0, or -1 (+ message) when the group
// is not usable (size < 1, rank outside it).
int moe_ep_attach(model_t *m, const moe_ep_comm_t *comm);
void moe_ep_detach(model_t *m);
// The transport m's experts are split over (NULL when m->ep is not set).
const moe_ep_comm_t *moe_ep_comm(const model_t *m);
// After a loop of passes (forwards, each followed by a backward when backward is set): passes with no tokens
// of this rank's own (every MoE layer's exchanges, and the expert work for the rows the others send) until
// every rank of the group has called it. Each pass starts with the all-gather of the first layer's counts,
// which carries whether the rank has tokens; a round where no rank has ends the loop on all of them at once,
// so the ranks need not know each other's number of micro-batches. A collective of the group.
void moe_ep_serve(model_t *m, int backward);

// model/layer_moe.c: the expert part of the MoE block when m->ep is set. xe [S, C] the local rows in
// expert order with off_host [E+1] (host) their ranges (off_host NULL: a serving pass without tokens);
// writes ye [S, C], the expert outputs of the local rows. The backward takes dye [S, C] and writes
// dxe [S, C]; the owned experts' weight gradients accumulate into m->grads.
void moe_ep_layer_forward(model_t *m, int l, const void *xe, const int32_t *off_host, int S, void *ye);
void moe_ep_layer_backward(model_t *m, int l, const void *dye, int S, void *dxe);

#endif
