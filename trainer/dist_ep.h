// trainer/dist_ep.h — the expert-parallel grid over MPI: world = ep x dp ranks, world rank
// w = dp_rank * ep + ep_rank. The ep consecutive ranks of one EP group split every MoE layer's experts
// (model/moe_ep.h); the dp ranks of one DP group (equal ep_rank) are replicas of the same experts, and
// all world ranks are replicas of the dense (non-expert) parameters. dist_ep_comm gives model/ the
// exchange it calls (MPI point-to-point; a device backend stages through the host).
// defines: dist_ep_t, dist_ep_init, dist_ep_free, dist_ep_comm
#ifndef CISPO_TRAINER_DIST_EP_H
#define CISPO_TRAINER_DIST_EP_H

#include <stddef.h>

#include "kernels/backend.h"
#include "model/moe_ep.h"
#include "trainer/dist.h"

typedef struct {
    int ep, dp;             // group sizes, ep * dp = world
    int ep_rank, dp_rank;   // this rank's place in its EP group and its DP group
    dist_t *world;          // all ranks (not owned)
    dist_t ep_group;        // the ep ranks splitting the experts (this rank's EP group)
    dist_t dp_group;        // the dp ranks holding this rank's experts
    backend_t *be;          // where the exchanged rows live (dist_ep_comm)
    char *stage;            // host staging of a device backend's rows
    size_t stage_bytes;
} dist_ep_t;

// Splits world into EP groups of ep ranks (a collective of world). ep must divide the world size: the error
// names both. 0 or -1 (+ message).
int dist_ep_init(dist_ep_t *g, dist_t *world, int ep);
void dist_ep_free(dist_ep_t *g);
// The transport model/moe_ep.h calls: g's EP group, rows in be's memory (g must outlive its use).
void dist_ep_comm(dist_ep_t *g, backend_t *be, moe_ep_comm_t *out);

#endif
