// trainer/dist_ep.c — the expert-parallel grid and the MoE exchange over MPI (trainer/dist_ep.h).
#include "trainer/dist_ep.h"

#include <stdlib.h>
#include <string.h>

#include "base/common.h"

int dist_ep_init(dist_ep_t *g, dist_t *world, int ep) {
    memset(g, 0, sizeof *g);
    if (ep < 1 || world->world % ep != 0)
        return cispo_fail("key 'ep': %d does not divide the %d ranks (the world is ep x data-parallel degree)", ep,
                          world->world);
    g->ep = ep;
    g->dp = world->world / ep;
    g->ep_rank = world->rank % ep;
    g->dp_rank = world->rank / ep;
    g->world = world;
    if (dist_split(world, g->dp_rank, g->ep_rank, &g->ep_group)) return -1;
    if (dist_split(world, g->ep_rank, g->dp_rank, &g->dp_group)) return dist_group_free(&g->ep_group), -1;
    return 0;
}

void dist_ep_free(dist_ep_t *g) {
    dist_group_free(&g->ep_group);
    dist_group_free(&g->dp_group);
    free(g->stage);
    g->stage = NULL;
    g->stage_bytes = 0;
}

static int ep_allgather(void *ctx, const int32_t *mine, int32_t *all, int n) {
    dist_ep_t *g = ctx;
    return dist_allgather_i32(&g->ep_group, mine, all, n);
}

// Blocks of rows to byte blocks, posted (host rows); a device backend's rows go through one host buffer
// (sends, then receives) and complete at once.
static void *ep_start(void *ctx, const void *send, const moe_ep_block_t *sb, int nsb, void *recv,
                      const moe_ep_block_t *rb, int nrb, size_t row_bytes) {
    static char done;  // the handle of an exchange that already completed
    dist_ep_t *g = ctx;
    int *sp = cispo_malloc((size_t)(nsb + nrb + 1) * sizeof(int)), *rp = sp + nsb;
    size_t *so = cispo_malloc((size_t)(2 * (nsb + nrb) + 1) * sizeof(size_t)), *sn = so + nsb;
    size_t *ro = sn + nsb, *rn = ro + nrb;
    size_t send_end = 0, recv_end = 0;
    for (int k = 0; k < nsb; k++) {
        sp[k] = sb[k].peer, so[k] = sb[k].row * row_bytes, sn[k] = sb[k].rows * row_bytes;
        if (so[k] + sn[k] > send_end) send_end = so[k] + sn[k];
    }
    for (int k = 0; k < nrb; k++) {
        rp[k] = rb[k].peer, ro[k] = rb[k].row * row_bytes, rn[k] = rb[k].rows * row_bytes;
        if (ro[k] + rn[k] > recv_end) recv_end = ro[k] + rn[k];
    }
    void *h = NULL;
    if (!g->be || g->be->kind == BACKEND_CPU) {
        h = dist_post_blocks(&g->ep_group, send, sp, so, sn, nsb, recv, rp, ro, rn, nrb);
    } else {
        size_t need = send_end + recv_end;
        if (need > g->stage_bytes) {
            free(g->stage);
            g->stage = cispo_malloc(need ? need : 1);
            g->stage_bytes = need;
        }
        char *hs = g->stage, *hr = g->stage + send_end;
        for (int k = 0; k < nsb; k++) backend_download(g->be, hs + so[k], (const char *)send + so[k], sn[k]);
        int rc = dist_sendrecv_blocks(&g->ep_group, hs, sp, so, sn, nsb, hr, rp, ro, rn, nrb);
        for (int k = 0; k < nrb && !rc; k++) backend_upload(g->be, (char *)recv + ro[k], hr + ro[k], rn[k]);
        h = rc ? NULL : &done;
    }
    free(sp);
    free(so);
    return h;
}

static int ep_wait(void *ctx, void *h) {
    dist_ep_t *g = ctx;
    if (!g->be || g->be->kind == BACKEND_CPU) return dist_wait_blocks(h);
    return h ? 0 : -1;
}

static int ep_exchange(void *ctx, const void *send, const moe_ep_block_t *sb, int nsb, void *recv,
                       const moe_ep_block_t *rb, int nrb, size_t row_bytes) {
    return ep_wait(ctx, ep_start(ctx, send, sb, nsb, recv, rb, nrb, row_bytes));
}

void dist_ep_comm(dist_ep_t *g, backend_t *be, moe_ep_comm_t *out) {
    g->be = be;
    *out = (moe_ep_comm_t){.rank = g->ep_rank, .size = g->ep, .ctx = g, .allgather_i32 = ep_allgather,
                           .exchange = ep_exchange, .exchange_start = ep_start, .exchange_wait = ep_wait};
}
