// model/moe_ep.c — expert parallelism for the MoE block (model/moe_ep.h).
// defines: moe_ep_range, moe_ep_owner, moe_ep_attach, moe_ep_detach, moe_ep_comm, moe_ep_serve,
//          moe_ep_layer_forward, moe_ep_layer_backward
//
// One layer's forward on rank q of a group of P (E experts, rank r owning [lo_r, hi_r)):
//     counts:   n[q][e] = rows of q's tokens routed to expert e (q's dispatch offsets); all-gathered
//     dispatch: q sends rows off_q[e] .. off_q[e] + n[q][e] to owner(e), one block per expert, and
//               receives, expert by expert of its own and source by source, n[r][e] rows from each r:
//               xr [R, C] in (expert, source) order, R = sum over its experts and all r of n[r][e]
//     experts:  h13 = [xr W1_e^T | xr W3_e^T], act = act(h1) * h3, yr = act W2_e^T (grouped GEMMs over
//               the local experts' row ranges)
//     combine:  yr's blocks go back the way they came, into ye [S, C] at the dispatch rows
// The backward sends dye along the dispatch blocks and dxe back along the combine blocks. Pairs of
// ranks match their blocks in order (expert ascending on both sides), so a transport needs no tags.
// Two token groups pipeline each exchange with the expert work: every (source, expert) block is split in
// halves, group 0 the first ceil(n/2) rows and group 1 the rest (both sides derive it from the counts);
// group 1's dispatch is in flight while the experts run on group 0, and group 0's return while they run
// on group 1 (with a transport that has exchange_start; otherwise the same order, one exchange at a time).
// The received rows lie group by group, each in (expert, source) order.
#include "model/moe_ep.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/common.h"
#include "kernels/ops.h"
#include "model/layers.h"

struct moe_ep {
    moe_ep_comm_t comm;
    int e_lo, e_hi, nl;   // owned experts [e_lo, e_hi), nl of them
    size_t rmax;          // receive capacity in rows: size * max_tokens * K
    int32_t *cnt;         // [L][size][E+1] host: rows each rank dispatched to each expert in the last forward,
                          // then whether the rank had tokens (1) or was serving (0)
    int32_t *src_off;     // [L][E+1] host: this rank's dispatch offsets of the last forward (0: no tokens)
    int32_t *loc_host;    // [L][2][nl+1] host: row ranges of the local experts in each group's region of xr
    int32_t *loc_dev;     // [L][2][nl+1] backend: the same, for the grouped GEMMs
    size_t base[2], rows[2];  // the current layer's groups: first row and rows of each region
    void **xr, **h13r, **actr;  // [L] backend: [rmax, C], [rmax, 2F], [rmax, F] saved for the backward
    void *yr, *dyr, *dact, *dh13, *dxr;  // backend scratch: [rmax, C], [rmax, C], [rmax, F], [rmax, 2F], [rmax, C]
    moe_ep_block_t *sb[2], *rb[2];  // [size * E] host, per group
};

void moe_ep_range(int n_experts, int size, int rank, int *lo, int *hi) {
    int base = n_experts / size, extra = n_experts % size;
    *lo = rank * base + (rank < extra ? rank : extra);
    *hi = *lo + base + (rank < extra ? 1 : 0);
}

int moe_ep_owner(int n_experts, int size, int e) {
    for (int r = 0; r < size; r++) {
        int lo, hi;
        moe_ep_range(n_experts, size, r, &lo, &hi);
        if (e >= lo && e < hi) return r;
    }
    return -1;
}

int moe_ep_attach(model_t *m, const moe_ep_comm_t *comm) {
    const model_config_t *c = &m->cfg;
    if (comm->size < 1 || comm->rank < 0 || comm->rank >= comm->size)
        return cispo_fail("expert parallelism: rank %d of a group of %d", comm->rank, comm->size);
    if (!comm->allgather_i32 || !comm->exchange)
        return cispo_fail("expert parallelism: the transport lacks its all-gather or exchange");
    int lo, hi;
    moe_ep_range(c->n_experts, comm->size, comm->rank, &lo, &hi);
    if (lo < m->table.e_lo || hi > m->table.e_hi)
        return cispo_fail("expert parallelism: rank %d of a group of %d owns experts [%d, %d), the model holds [%d, %d)",
                          comm->rank, comm->size, lo, hi, m->table.e_lo, m->table.e_hi);
    moe_ep_detach(m);
    moe_ep_t *ep = cispo_calloc(1, sizeof *ep);
    ep->comm = *comm;
    ep->e_lo = lo, ep->e_hi = hi;
    ep->nl = ep->e_hi - ep->e_lo;
    const size_t L = (size_t)c->n_layers, E = (size_t)c->n_experts, P = (size_t)comm->size;
    const size_t C = (size_t)c->hidden_size, F = (size_t)c->intermediate_size, es = m->esize;
    ep->rmax = P * (size_t)m->max_tokens * (size_t)c->n_experts_per_tok;
    backend_t *b = m->be;
    ep->cnt = cispo_calloc(L * P * (E + 1), sizeof(int32_t));
    ep->src_off = cispo_calloc(L * (E + 1), sizeof(int32_t));
    ep->loc_host = cispo_calloc(L * 2 * (size_t)(ep->nl + 1), sizeof(int32_t));
    ep->loc_dev = backend_alloc(b, L * 2 * (size_t)(ep->nl + 1) * sizeof(int32_t));
    ep->xr = cispo_calloc(L, sizeof(void *));
    ep->h13r = cispo_calloc(L, sizeof(void *));
    ep->actr = cispo_calloc(L, sizeof(void *));
    const size_t rows = ep->rmax > 0 ? ep->rmax : 1;
    // the received rows a layer's backward reads: per layer, or with full activation recompute (each layer's
    // forward runs again just before its backward) one set that every layer reuses
    for (size_t l = 0; l < L; l++) {
        int own = l == 0 || m->recompute != MODEL_RECOMPUTE_FULL;
        ep->xr[l] = own ? backend_alloc(b, rows * C * es) : ep->xr[0];
        ep->h13r[l] = own ? backend_alloc(b, rows * 2 * F * es) : ep->h13r[0];
        ep->actr[l] = own ? backend_alloc(b, rows * F * es) : ep->actr[0];
    }
    ep->yr = backend_alloc(b, rows * C * es);
    ep->dyr = backend_alloc(b, rows * C * es);
    ep->dact = backend_alloc(b, rows * F * es);
    ep->dh13 = backend_alloc(b, rows * 2 * F * es);
    ep->dxr = backend_alloc(b, rows * C * es);
    for (int g = 0; g < 2; g++) {
        ep->sb[g] = cispo_calloc(P * E + 1, sizeof(moe_ep_block_t));
        ep->rb[g] = cispo_calloc(P * E + 1, sizeof(moe_ep_block_t));
    }
    // the grouped GEMMs over up to rmax received rows: the workspace of a batch of size * max_tokens tokens
    op_ws_shape_t shape = {(int)(P * (size_t)m->max_tokens), 1, c->hidden_size, c->vocab_size, c->n_heads,
                           c->n_kv_heads, c->head_dim, c->n_experts, c->n_experts_per_tok, c->intermediate_size};
    backend_ws_reserve(b, ops_workspace_bytes(b, &shape));
    m->ep = ep;
    return 0;
}

void moe_ep_detach(model_t *m) {
    moe_ep_t *ep = m->ep;
    if (!ep) return;
    backend_t *b = m->be;
    for (int l = 0; l < m->cfg.n_layers; l++) {
        if (l > 0 && m->recompute == MODEL_RECOMPUTE_FULL) break;  // one set shared by every layer
        backend_free(b, ep->xr[l]);
        backend_free(b, ep->h13r[l]);
        backend_free(b, ep->actr[l]);
    }
    backend_free(b, ep->yr);
    backend_free(b, ep->dyr);
    backend_free(b, ep->dact);
    backend_free(b, ep->dh13);
    backend_free(b, ep->dxr);
    backend_free(b, ep->loc_dev);
    free(ep->xr), free(ep->h13r), free(ep->actr);
    free(ep->cnt), free(ep->src_off), free(ep->loc_host);
    for (int g = 0; g < 2; g++) free(ep->sb[g]), free(ep->rb[g]);
    free(ep);
    m->ep = NULL;
}

const moe_ep_comm_t *moe_ep_comm(const model_t *m) { return m->ep ? &m->ep->comm : NULL; }

static void ep_die(const moe_ep_t *ep, int l, const char *what) {
    char msg[160];
    snprintf(msg, sizeof msg, "expert parallelism, rank %d of %d, MoE layer %d: %s", ep->comm.rank, ep->comm.size, l,
             what);
    // a failed exchange leaves the group's ranks out of step: nothing can continue
    cispo_die(__FILE__, __LINE__, msg, cispo_last_error());
}

// Rows of a (source, expert) block of n rows in group g, and where they start in it.
static size_t grp_rows(size_t n, int g) { return g ? n / 2 : (n + 1) / 2; }
static size_t grp_first(size_t n, int g) { return g ? (n + 1) / 2 : 0; }

// Dispatch blocks of layer l and group g from the saved counts: send (this rank's rows to each expert's
// owner) and receive (rows for the local experts, expert by expert, source by source, from row `base`).
// Fills the group's local ranges (relative to base) and returns the rows received.
static size_t ep_blocks(moe_ep_t *ep, const model_config_t *c, int l, int g, size_t base, int *nsb, int *nrb) {
    const int E = c->n_experts, P = ep->comm.size, me = ep->comm.rank;
    const int32_t *cnt = ep->cnt + (size_t)l * P * (E + 1), *src = ep->src_off + (size_t)l * (E + 1);
    int32_t *loc = ep->loc_host + ((size_t)l * 2 + g) * (ep->nl + 1);
    int ns = 0, nr = 0;
    for (int p = 0; p < P; p++) {
        int lo, hi;
        moe_ep_range(E, P, p, &lo, &hi);
        for (int e = lo; e < hi; e++) {
            size_t n = (size_t)cnt[(size_t)me * (E + 1) + e], k = grp_rows(n, g);
            if (k) ep->sb[g][ns++] = (moe_ep_block_t){p, (size_t)src[e] + grp_first(n, g), k};
        }
    }
    size_t pos = 0;
    for (int e = ep->e_lo; e < ep->e_hi; e++) {
        loc[e - ep->e_lo] = (int32_t)pos;
        for (int r = 0; r < P; r++) {
            size_t k = grp_rows((size_t)cnt[(size_t)r * (E + 1) + e], g);
            if (k) ep->rb[g][nr++] = (moe_ep_block_t){r, base + pos, k}, pos += k;
        }
    }
    loc[ep->nl] = (int32_t)pos;
    *nsb = ns, *nrb = nr;
    return pos;
}

// The transport, started and completed (one at a time when it has no asynchronous half).
static void *x_start(moe_ep_t *ep, int l, const char *what, const void *send, const moe_ep_block_t *sb, int ns,
                     void *recv, const moe_ep_block_t *rb, int nr, size_t rowb) {
    static char done;
    if (ep->comm.exchange_start) {
        void *h = ep->comm.exchange_start(ep->comm.ctx, send, sb, ns, recv, rb, nr, rowb);
        if (!h) ep_die(ep, l, what);
        return h;
    }
    if (ep->comm.exchange(ep->comm.ctx, send, sb, ns, recv, rb, nr, rowb)) ep_die(ep, l, what);
    return &done;
}

static void x_wait(moe_ep_t *ep, int l, const char *what, void *h) {
    if (ep->comm.exchange_start && ep->comm.exchange_wait(ep->comm.ctx, h)) ep_die(ep, l, what);
}

#define ROWS(p, r, w) ((char *)(p) + (size_t)(r) * (size_t)(w) * m->esize)  // row r of rows of w elements

// The local experts on group g's rows of layer l: h13 = [x W1^T | x W3^T], act, y = act W2^T.
static void experts_forward(model_t *m, int l, int g) {
    moe_ep_t *ep = m->ep;
    const model_config_t *c = &m->cfg;
    backend_t *b = m->be;
    const int C = c->hidden_size, F = c->intermediate_size, R = (int)ep->rows[g];
    if (R == 0) return;
    const size_t at = ep->base[g], e0 = (size_t)(ep->e_lo - m->table.e_lo) * F * C;
    const layer_params_t *p = &m->table.layers[l];
    const int32_t *locd = ep->loc_dev + ((size_t)l * 2 + g) * (ep->nl + 1);
    void *x = ROWS(ep->xr[l], at, C), *h13 = ROWS(ep->h13r[l], at, 2 * F);
    void *act = ROWS(ep->actr[l], at, F), *y = ROWS(ep->yr, at, C);
    grouped_matmul_pair(b, h13, 2 * F, x, C, WP(m, p->w1 + e0), WP(m, p->w3 + e0), locd, ep->nl, R, F, C);
    glu_forward(b, c->hidden_act, act, h13, R, F);
    grouped_matmul(b, y, C, act, F, WP(m, p->w2 + e0), 1, locd, ep->nl, R, C, F, 0.0f);
}

// Their backward on group g's rows: dX from dY, the owned experts' weight gradients accumulated.
static void experts_backward(model_t *m, int l, int g) {
    moe_ep_t *ep = m->ep;
    const model_config_t *c = &m->cfg;
    backend_t *b = m->be;
    const int C = c->hidden_size, F = c->intermediate_size, R = (int)ep->rows[g];
    if (R == 0) return;
    const size_t at = ep->base[g], e0 = (size_t)(ep->e_lo - m->table.e_lo) * F * C;
    const layer_params_t *p = &m->table.layers[l];
    const int32_t *locd = ep->loc_dev + ((size_t)l * 2 + g) * (ep->nl + 1);
    void *x = ROWS(ep->xr[l], at, C), *h13 = ROWS(ep->h13r[l], at, 2 * F), *act = ROWS(ep->actr[l], at, F);
    void *dy = ROWS(ep->dyr, at, C), *dact = ROWS(ep->dact, at, F), *dh13 = ROWS(ep->dh13, at, 2 * F);
    void *dh3 = (char *)dh13 + (size_t)F * m->esize, *dx = ROWS(ep->dxr, at, C);
    // y = act W2_e^T
    grouped_matmul(b, dact, F, dy, C, WP(m, p->w2 + e0), 0, locd, ep->nl, R, F, C, 0.0f);
    grouped_matmul_wgrad(b, GP(m, p->w2 + e0), dy, C, act, F, locd, ep->nl, R, C, F, OP_ACCUMULATE);
    // act = act(h1) * h3
    glu_backward(b, c->hidden_act, dh13, dact, h13, R, F, OP_WRITE);
    // h1 = x W1_e^T, h3 = x W3_e^T
    grouped_matmul(b, dx, C, dh13, 2 * F, WP(m, p->w1 + e0), 0, locd, ep->nl, R, C, F, 0.0f);
    grouped_matmul(b, dx, C, dh3, 2 * F, WP(m, p->w3 + e0), 0, locd, ep->nl, R, C, F, 1.0f);
    grouped_matmul_wgrad(b, GP(m, p->w1 + e0), dh13, 2 * F, x, C, locd, ep->nl, R, F, C, OP_ACCUMULATE);
    grouped_matmul_wgrad(b, GP(m, p->w3 + e0), dh3, 2 * F, x, C, locd, ep->nl, R, F, C, OP_ACCUMULATE);
}

// Both groups' blocks of layer l (saved counts); the regions' rows. Aborts when they exceed the buffers.
static void plan_groups(model_t *m, int l, int ns[2], int nr[2]) {
    moe_ep_t *ep = m->ep;
    ep->base[0] = 0;
    ep->rows[0] = ep_blocks(ep, &m->cfg, l, 0, 0, &ns[0], &nr[0]);
    ep->base[1] = ep->rows[0];
    ep->rows[1] = ep_blocks(ep, &m->cfg, l, 1, ep->base[1], &ns[1], &nr[1]);
    const size_t R = ep->rows[0] + ep->rows[1];
    if (R > ep->rmax) {
        cispo_fail("%zu rows received, planned for %zu (do the group's models share max_tokens?)", R, ep->rmax);
        ep_die(ep, l, "receive buffer too small");
    }
}

// One layer's forward; off_host NULL: a serving pass. Returns 0, doing nothing more, when the counts show
// that no rank of the group has tokens (the end of moe_ep_serve on every rank), else 1.
static int layer_forward(model_t *m, int l, const void *xe, const int32_t *off_host, void *ye) {
    const model_config_t *c = &m->cfg;
    moe_ep_t *ep = m->ep;
    const int E = c->n_experts, P = ep->comm.size;
    int32_t *src = ep->src_off + (size_t)l * (E + 1);
    int32_t *cnt = ep->cnt + (size_t)l * P * (E + 1);
    if (off_host) memcpy(src, off_host, (size_t)(E + 1) * sizeof(int32_t));
    else memset(src, 0, (size_t)(E + 1) * sizeof(int32_t));
    int32_t *mine = cispo_malloc((size_t)(E + 1) * sizeof(int32_t));
    for (int e = 0; e < E; e++) mine[e] = src[e + 1] - src[e];
    mine[E] = off_host != NULL;
    if (ep->comm.allgather_i32(ep->comm.ctx, mine, cnt, E + 1)) ep_die(ep, l, "all-gather of the routed counts");
    free(mine);
    int any = 0;
    for (int r = 0; r < P; r++) any |= cnt[(size_t)r * (E + 1) + E];
    if (!any) return 0;
    int ns[2], nr[2];
    plan_groups(m, l, ns, nr);
    const size_t rowb = (size_t)c->hidden_size * m->esize;
    backend_upload(m->be, ep->loc_dev + (size_t)l * 2 * (ep->nl + 1), ep->loc_host + (size_t)l * 2 * (ep->nl + 1),
                   2 * (size_t)(ep->nl + 1) * sizeof(int32_t));
    const char *wd = "dispatch of the routed rows", *wr = "return of the expert outputs";
    void *d0 = x_start(ep, l, wd, xe, ep->sb[0], ns[0], ep->xr[l], ep->rb[0], nr[0], rowb);
    void *d1 = x_start(ep, l, wd, xe, ep->sb[1], ns[1], ep->xr[l], ep->rb[1], nr[1], rowb);
    x_wait(ep, l, wd, d0);
    experts_forward(m, l, 0);  // while group 1's rows travel
    void *r0 = x_start(ep, l, wr, ep->yr, ep->rb[0], nr[0], ye, ep->sb[0], ns[0], rowb);
    x_wait(ep, l, wd, d1);
    experts_forward(m, l, 1);  // while group 0's outputs travel back
    void *r1 = x_start(ep, l, wr, ep->yr, ep->rb[1], nr[1], ye, ep->sb[1], ns[1], rowb);
    x_wait(ep, l, wr, r0);
    x_wait(ep, l, wr, r1);
    return 1;
}

void moe_ep_layer_forward(model_t *m, int l, const void *xe, const int32_t *off_host, int S, void *ye) {
    CISPO_ASSERT(S > 0 && off_host);
    layer_forward(m, l, xe, off_host, ye);
}

void moe_ep_layer_backward(model_t *m, int l, const void *dye, int S, void *dxe) {
    moe_ep_t *ep = m->ep;
    (void)S;
    int ns[2], nr[2];
    plan_groups(m, l, ns, nr);
    const size_t rowb = (size_t)m->cfg.hidden_size * m->esize;
    const char *wd = "dispatch of the output gradients", *wr = "return of the input gradients";
    void *d0 = x_start(ep, l, wd, dye, ep->sb[0], ns[0], ep->dyr, ep->rb[0], nr[0], rowb);
    void *d1 = x_start(ep, l, wd, dye, ep->sb[1], ns[1], ep->dyr, ep->rb[1], nr[1], rowb);
    x_wait(ep, l, wd, d0);
    experts_backward(m, l, 0);
    void *r0 = x_start(ep, l, wr, ep->dxr, ep->rb[0], nr[0], dxe, ep->sb[0], ns[0], rowb);
    x_wait(ep, l, wd, d1);
    experts_backward(m, l, 1);
    void *r1 = x_start(ep, l, wr, ep->dxr, ep->rb[1], nr[1], dxe, ep->sb[1], ns[1], rowb);
    x_wait(ep, l, wr, r0);
    x_wait(ep, l, wr, r1);
}

void moe_ep_serve(model_t *m, int backward) {
    if (!m->ep) return;
    const int L = m->cfg.n_layers;
    // each round: a pass without tokens, for as long as one rank of the group still has a micro-batch
    while (layer_forward(m, 0, NULL, NULL, NULL)) {
        for (int l = 1; l < L; l++) layer_forward(m, l, NULL, NULL, NULL);
        if (backward)  // with activation recompute each layer's forward runs again before its backward
            for (int l = L - 1; l >= 0; l--) {
                if (m->recompute == MODEL_RECOMPUTE_FULL) layer_forward(m, l, NULL, NULL, NULL);
                moe_ep_layer_backward(m, l, NULL, 0, NULL);
            }
    }
}
