// trainer/dist_nccl.c — NCCL collectives and the MoE exchange on device buffers (trainer/dist_nccl.h).
#include "trainer/dist_nccl.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/common.h"

static dist_nccl_t *world_comm;

dist_nccl_t *dist_nccl_world(void) { return world_comm; }
void dist_nccl_set_world(dist_nccl_t *c) { world_comm = c; }

#ifdef CISPO_HAVE_NCCL
#include <cuda_runtime.h>
#include <mpi.h>
#include <nccl.h>

#define NSLOT 8  // exchanges in flight at once (a layer pass has at most 4)

struct dist_nccl {
    dist_t *g;          // the MPI group (bootstrap, host-side counts)
    backend_t *be;      // device and stream
    ncclComm_t comm;
    cudaStream_t side;  // the started exchanges' stream, beside the backend's
    struct slot {
        cudaEvent_t ready, done;  // the rows are ready (compute stream) / the exchange is done (side stream)
        int busy;
    } slot[NSLOT];
    cudaEvent_t gready, gdone;  // gradient reductions: after the compute stream / all of them done
    int grads_pending;          // reductions started since the last dist_nccl_grads_wait
};

int dist_nccl_available(void) { return 1; }

static int nccl_fail(const dist_nccl_t *c, const char *what, ncclResult_t rc) {
    return cispo_fail("%s rank %d/%d: NCCL %s failed: %s", c->g->host, c->g->rank, c->g->world, what,
                      ncclGetErrorString(rc));
}

#define NCCL_TRY(c, what, call)                               \
    do {                                                      \
        ncclResult_t nrc_ = (call);                           \
        if (nrc_ != ncclSuccess) return nccl_fail(c, what, nrc_); \
    } while (0)

dist_nccl_t *dist_nccl_init(dist_t *g, backend_t *be) {
    if (be->kind != BACKEND_CUDA) {
        cispo_fail("NCCL needs the CUDA backend (this one is %s)", backend_name(be->kind));
        return NULL;
    }
    ncclUniqueId id;
    memset(&id, 0, sizeof id);
    if (g->rank == 0) {
        ncclResult_t rc = ncclGetUniqueId(&id);
        if (rc != ncclSuccess) {
            cispo_fail("%s rank 0: ncclGetUniqueId failed: %s", g->host, ncclGetErrorString(rc));
            return NULL;
        }
    }
    // the id travels over MPI as floats' worth of bytes (dist_broadcast_f32 carries any bytes)
    if (g->world > 1) {
        float buf[(sizeof id + sizeof(float) - 1) / sizeof(float)];
        memcpy(buf, &id, sizeof id);
        if (dist_broadcast_f32(g, buf, sizeof buf / sizeof(float), 0)) return NULL;
        memcpy(&id, buf, sizeof id);
    }
    dist_nccl_t *c = cispo_calloc(1, sizeof *c);
    c->g = g;
    c->be = be;
    cudaSetDevice(be->device);
    ncclResult_t rc = ncclCommInitRank(&c->comm, g->world, id, g->rank);
    if (rc != ncclSuccess) {
        nccl_fail(c, "communicator init", rc);
        free(c);
        return NULL;
    }
    cudaError_t ce = cudaStreamCreateWithFlags(&c->side, cudaStreamNonBlocking);
    for (int i = 0; i < NSLOT && ce == cudaSuccess; i++) {
        ce = cudaEventCreateWithFlags(&c->slot[i].ready, cudaEventDisableTiming);
        if (ce == cudaSuccess) ce = cudaEventCreateWithFlags(&c->slot[i].done, cudaEventDisableTiming);
    }
    if (ce == cudaSuccess) ce = cudaEventCreateWithFlags(&c->gready, cudaEventDisableTiming);
    if (ce == cudaSuccess) ce = cudaEventCreateWithFlags(&c->gdone, cudaEventDisableTiming);
    if (ce != cudaSuccess) {
        cispo_fail("%s rank %d: the exchange stream or its events: %s", g->host, g->rank, cudaGetErrorString(ce));
        dist_nccl_free(c);
        return NULL;
    }
    return c;
}

void dist_nccl_free(dist_nccl_t *c) {
    if (!c) return;
    ncclCommDestroy(c->comm);
    for (int i = 0; i < NSLOT; i++) {
        if (c->slot[i].ready) cudaEventDestroy(c->slot[i].ready);
        if (c->slot[i].done) cudaEventDestroy(c->slot[i].done);
    }
    if (c->gready) cudaEventDestroy(c->gready);
    if (c->gdone) cudaEventDestroy(c->gdone);
    if (c->side) cudaStreamDestroy(c->side);
    free(c);
}

#define STREAM(c) ((cudaStream_t)(c)->be->stream)
#define NCHUNK ((size_t)1 << 30)  // elements per call

int dist_nccl_allreduce_sum_f32(dist_nccl_t *c, float *buf, size_t n) {
    NCCL_TRY(c, "group start", ncclGroupStart());
    for (size_t o = 0; o < n; o += NCHUNK) {
        size_t k = n - o < NCHUNK ? n - o : NCHUNK;
        ncclResult_t rc = ncclAllReduce(buf + o, buf + o, k, ncclFloat, ncclSum, c->comm, STREAM(c));
        if (rc != ncclSuccess) return ncclGroupEnd(), nccl_fail(c, "all-reduce", rc);
    }
    NCCL_TRY(c, "all-reduce", ncclGroupEnd());
    return 0;
}

// One reduce to each owner of its shard (uneven shards: ncclReduceScatter wants equal ones), grouped.
int dist_nccl_reduce_scatter_sum_f32(dist_nccl_t *c, float *buf, size_t n) {
    const int W = c->g->world;
    NCCL_TRY(c, "group start", ncclGroupStart());
    for (int r = 0; r < W; r++) {
        size_t b, e;
        dist_shard_range(W, r, n, &b, &e);
        if (e <= b) continue;
        ncclResult_t rc = ncclReduce(buf + b, buf + b, e - b, ncclFloat, ncclSum, r, c->comm, STREAM(c));
        if (rc != ncclSuccess) return ncclGroupEnd(), nccl_fail(c, "reduce-scatter", rc);
    }
    NCCL_TRY(c, "reduce-scatter", ncclGroupEnd());
    return 0;
}

int dist_nccl_allgather_f32(dist_nccl_t *c, float *buf, size_t n) {
    const int W = c->g->world;
    NCCL_TRY(c, "group start", ncclGroupStart());
    for (int r = 0; r < W; r++) {
        size_t b, e;
        dist_shard_range(W, r, n, &b, &e);
        if (e <= b) continue;
        ncclResult_t rc = ncclBroadcast(buf + b, buf + b, e - b, ncclFloat, r, c->comm, STREAM(c));
        if (rc != ncclSuccess) return ncclGroupEnd(), nccl_fail(c, "all-gather", rc);
    }
    NCCL_TRY(c, "all-gather", ncclGroupEnd());
    return 0;
}

// [b, e) of buf summed on stream s: all-reduced, or reduced to rank root (root >= 0), in calls of NCHUNK
// (inside the caller's group).
static int sum_range_on(dist_nccl_t *c, cudaStream_t s, float *buf, size_t b, size_t e, int root) {
    for (size_t o = b; o < e; o += NCHUNK) {
        size_t k = e - o < NCHUNK ? e - o : NCHUNK;
        ncclResult_t rc = root < 0 ? ncclAllReduce(buf + o, buf + o, k, ncclFloat, ncclSum, c->comm, s)
                                   : ncclReduce(buf + o, buf + o, k, ncclFloat, ncclSum, root, c->comm, s);
        if (rc != ncclSuccess) return nccl_fail(c, root < 0 ? "gradient all-reduce" : "gradient reduce", rc);
    }
    return 0;
}

// The pieces on stream s (inside the caller's group): summed (gather 0: all-reduced, or under zero each
// owner's share reduced to its owner) or broadcast from each owner (gather 1, elements of esize bytes).
static int pieces_on(dist_nccl_t *c, cudaStream_t s, void *buf, size_t esize, const dist_nccl_piece_t *pc, int n,
                     size_t total, int zero, int gather) {
    const int W = c->g->world;
    for (int i = 0; i < n; i++) {
        if (!gather && !zero) {
            if (sum_range_on(c, s, (float *)buf, pc[i].phys, pc[i].phys + pc[i].len, -1)) return -1;
            continue;
        }
        const size_t b = pc[i].cat, e = pc[i].cat + pc[i].len;
        for (int r = 0; r < W; r++) {  // each owner's share of the piece, at its place in the buffer
            size_t sb, se;
            dist_shard_range(W, r, total, &sb, &se);
            const size_t lo = sb > b ? sb : b, hi = se < e ? se : e;
            if (hi <= lo) continue;
            const size_t at = pc[i].phys + (lo - b);
            if (!gather) {
                if (sum_range_on(c, s, (float *)buf, at, at + (hi - lo), r)) return -1;
                continue;
            }
            char *p = (char *)buf + at * esize;
            for (size_t o = 0, k, bytes = (hi - lo) * esize; o < bytes; o += k) {
                k = bytes - o < NCHUNK ? bytes - o : NCHUNK;
                ncclResult_t rc = ncclBroadcast(p + o, p + o, k, ncclUint8, r, c->comm, s);
                if (rc != ncclSuccess) return nccl_fail(c, "parameter all-gather", rc);
            }
        }
    }
    return 0;
}

int dist_nccl_grads_start(dist_nccl_t *c, float *buf, const size_t *off, const size_t *len, int n, size_t total,
                          int zero) {
    cudaError_t ce = cudaEventRecord(c->gready, STREAM(c));
    if (ce == cudaSuccess) ce = cudaStreamWaitEvent(c->side, c->gready, 0);
    if (ce != cudaSuccess) return cispo_fail("ordering a gradient reduction after the backward: %s", cudaGetErrorString(ce));
    dist_nccl_piece_t pc[2];
    CISPO_ASSERT(n <= 2);
    for (int i = 0; i < n; i++) pc[i] = (dist_nccl_piece_t){off[i], off[i], len[i]};  // the whole buffer is the concatenation
    NCCL_TRY(c, "group start", ncclGroupStart());
    if (pieces_on(c, c->side, buf, sizeof(float), pc, n, total, zero, 0)) return ncclGroupEnd(), -1;
    NCCL_TRY(c, "gradient reduction", ncclGroupEnd());
    c->grads_pending = 1;
    return 0;
}

int dist_nccl_pieces_sum(dist_nccl_t *c, float *buf, const dist_nccl_piece_t *pc, int n, size_t total, int zero) {
    NCCL_TRY(c, "group start", ncclGroupStart());
    if (pieces_on(c, STREAM(c), buf, sizeof(float), pc, n, total, zero, 0)) return ncclGroupEnd(), -1;
    NCCL_TRY(c, "gradient reduction", ncclGroupEnd());
    return 0;
}

int dist_nccl_pieces_gather(dist_nccl_t *c, void *buf, size_t esize, const dist_nccl_piece_t *pc, int n,
                            size_t total) {
    NCCL_TRY(c, "group start", ncclGroupStart());
    if (pieces_on(c, STREAM(c), buf, esize, pc, n, total, 1, 1)) return ncclGroupEnd(), -1;
    NCCL_TRY(c, "parameter all-gather", ncclGroupEnd());
    return 0;
}

int dist_nccl_grads_wait(dist_nccl_t *c) {
    if (!c->grads_pending) return 0;
    c->grads_pending = 0;
    cudaError_t ce = cudaEventRecord(c->gdone, c->side);
    if (ce == cudaSuccess) ce = cudaStreamWaitEvent(STREAM(c), c->gdone, 0);
    return ce == cudaSuccess ? 0 : cispo_fail("waiting for the gradient reductions: %s", cudaGetErrorString(ce));
}

static int sendrecv_on(dist_nccl_t *c, cudaStream_t s, const void *send, const moe_ep_block_t *sb, int nsb,
                       void *recv, const moe_ep_block_t *rb, int nrb, size_t row_bytes);

int dist_nccl_exchange(dist_nccl_t *c, const void *send, const moe_ep_block_t *sb, int nsb, void *recv,
                       const moe_ep_block_t *rb, int nrb, size_t row_bytes) {
    return sendrecv_on(c, STREAM(c), send, sb, nsb, recv, rb, nrb, row_bytes);
}

// Grouped send/receive of the blocks on stream s (ncclGroupEnd enqueues them).
static int sendrecv_on(dist_nccl_t *c, cudaStream_t s, const void *send, const moe_ep_block_t *sb, int nsb,
                       void *recv, const moe_ep_block_t *rb, int nrb, size_t row_bytes) {
    NCCL_TRY(c, "group start", ncclGroupStart());
    for (int k = 0; k < nsb; k++) {
        ncclResult_t rc = ncclSend((const char *)send + sb[k].row * row_bytes, sb[k].rows * row_bytes, ncclUint8,
                                   sb[k].peer, c->comm, s);
        if (rc != ncclSuccess) return ncclGroupEnd(), nccl_fail(c, "send of routed rows", rc);
    }
    for (int k = 0; k < nrb; k++) {
        ncclResult_t rc = ncclRecv((char *)recv + rb[k].row * row_bytes, rb[k].rows * row_bytes, ncclUint8,
                                   rb[k].peer, c->comm, s);
        if (rc != ncclSuccess) return ncclGroupEnd(), nccl_fail(c, "receive of routed rows", rc);
    }
    NCCL_TRY(c, "exchange of routed rows", ncclGroupEnd());
    return 0;
}

// Started on the side stream once the compute stream has the rows ready; the handle is a slot whose done
// event the compute stream waits for (the expert work on another group runs meanwhile).
static void *nccl_ep_start(void *ctx, const void *send, const moe_ep_block_t *sb, int nsb, void *recv,
                           const moe_ep_block_t *rb, int nrb, size_t row_bytes) {
    dist_nccl_t *c = ctx;
    struct slot *q = NULL;
    for (int i = 0; i < NSLOT && !q; i++)
        if (!c->slot[i].busy) q = &c->slot[i];
    if (!q) return cispo_fail("more than %d exchanges in flight", NSLOT), NULL;
    if (cudaEventRecord(q->ready, STREAM(c)) != cudaSuccess || cudaStreamWaitEvent(c->side, q->ready, 0) != cudaSuccess)
        return cispo_fail("ordering the exchange after the compute stream failed"), NULL;
    if (sendrecv_on(c, c->side, send, sb, nsb, recv, rb, nrb, row_bytes)) return NULL;
    if (cudaEventRecord(q->done, c->side) != cudaSuccess) return cispo_fail("recording the exchange's end failed"), NULL;
    q->busy = 1;
    return q;
}

static int nccl_ep_wait(void *ctx, void *h) {
    dist_nccl_t *c = ctx;
    struct slot *q = h;
    q->busy = 0;
    cudaError_t ce = cudaStreamWaitEvent(STREAM(c), q->done, 0);
    return ce == cudaSuccess ? 0 : cispo_fail("waiting for the exchange: %s", cudaGetErrorString(ce));
}

static int nccl_ep_allgather(void *ctx, const int32_t *mine, int32_t *all, int n) {
    dist_nccl_t *c = ctx;
    return dist_allgather_i32(c->g, mine, all, n);
}

static int nccl_ep_exchange(void *ctx, const void *send, const moe_ep_block_t *sb, int nsb, void *recv,
                            const moe_ep_block_t *rb, int nrb, size_t row_bytes) {
    return dist_nccl_exchange(ctx, send, sb, nsb, recv, rb, nrb, row_bytes);
}

void dist_nccl_ep_comm(dist_nccl_t *c, moe_ep_comm_t *out) {
    *out = (moe_ep_comm_t){.rank = c->g->rank, .size = c->g->world, .ctx = c, .allgather_i32 = nccl_ep_allgather,
                           .exchange = nccl_ep_exchange, .exchange_start = nccl_ep_start, .exchange_wait = nccl_ep_wait};
}

#else  // a build without NCCL: the calls say so

struct dist_nccl {
    int unused;
};

int dist_nccl_available(void) { return 0; }

static int no_nccl(void) {
    return cispo_fail("this build has no NCCL (CMake did not find nccl.h and libnccl; the MPI path serves instead)");
}

dist_nccl_t *dist_nccl_init(dist_t *g, backend_t *be) {
    (void)g, (void)be;
    no_nccl();
    return NULL;
}
void dist_nccl_free(dist_nccl_t *c) { (void)c; }
int dist_nccl_allreduce_sum_f32(dist_nccl_t *c, float *buf, size_t n) { return (void)c, (void)buf, (void)n, no_nccl(); }
int dist_nccl_reduce_scatter_sum_f32(dist_nccl_t *c, float *buf, size_t n) {
    return (void)c, (void)buf, (void)n, no_nccl();
}
int dist_nccl_allgather_f32(dist_nccl_t *c, float *buf, size_t n) { return (void)c, (void)buf, (void)n, no_nccl(); }
int dist_nccl_grads_start(dist_nccl_t *c, float *buf, const size_t *off, const size_t *len, int n, size_t total,
                          int zero) {
    (void)c, (void)buf, (void)off, (void)len, (void)n, (void)total, (void)zero;
    return no_nccl();
}
int dist_nccl_grads_wait(dist_nccl_t *c) { return (void)c, no_nccl(); }
int dist_nccl_pieces_sum(dist_nccl_t *c, float *buf, const dist_nccl_piece_t *pc, int n, size_t total, int zero) {
    (void)c, (void)buf, (void)pc, (void)n, (void)total, (void)zero;
    return no_nccl();
}
int dist_nccl_pieces_gather(dist_nccl_t *c, void *buf, size_t esize, const dist_nccl_piece_t *pc, int n,
                            size_t total) {
    (void)c, (void)buf, (void)esize, (void)pc, (void)n, (void)total;
    return no_nccl();
}
int dist_nccl_exchange(dist_nccl_t *c, const void *send, const moe_ep_block_t *sb, int nsb, void *recv,
                       const moe_ep_block_t *rb, int nrb, size_t row_bytes) {
    (void)c, (void)send, (void)sb, (void)nsb, (void)recv, (void)rb, (void)nrb, (void)row_bytes;
    return no_nccl();
}
void dist_nccl_ep_comm(dist_nccl_t *c, moe_ep_comm_t *out) {
    (void)c;
    memset(out, 0, sizeof *out);
}
#endif
