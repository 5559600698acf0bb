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
    int32_t *loc_host;    // [L][nl+1] host: row ranges of the local experts in xr
    int32_t *loc_dev;     // [L][nl+1] backend: the same, for the grouped GEMMs
    void **xr, **h13r, **actr;  // [L] backend: [rmax, C], [rmax, 2F], [rmax, F] saved for the backward
    void *yr, *dyr, *dact, *dh13, *dxr;  // backend scratch: [rmax, C], [rmax, C], [rmax, F], [rmax, 2F], [rmax, C]
    moe_ep_block_t *sb, *rb;  // [size * E] host
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
    moe_ep_detach(m);
    moe_ep_t *ep = cispo_calloc(1, sizeof *ep);
    ep->comm = *comm;
    moe_ep_range(c->n_experts, comm->size, comm->rank, &ep->e_lo, &ep->e_hi);
    ep->nl = ep->e_hi - ep->e_lo;
    const size_t L = (size_t)c->n_layers, E = (size_t)c->n_experts, P = (size_t)comm->size;
    const size_t C = (size_t)c->hidden_size, F = (size_t)c->intermediate_size, es = m->esize;
    ep->rmax = P * (size_t)m->max_tokens * (size_t)c->n_experts_per_tok;
    backend_t *b = m->be;
    ep->cnt = cispo_calloc(L * P * (E + 1), sizeof(int32_t));
    ep->src_off = cispo_calloc(L * (E + 1), sizeof(int32_t));
    ep->loc_host = cispo_calloc(L * (size_t)(ep->nl + 1), sizeof(int32_t));
    ep->loc_dev = backend_alloc(b, L * (size_t)(ep->nl + 1) * sizeof(int32_t));
    ep->xr = cispo_calloc(L, sizeof(void *));
    ep->h13r = cispo_calloc(L, sizeof(void *));
    ep->actr = cispo_calloc(L, sizeof(void *));
    const size_t rows = ep->rmax > 0 ? ep->rmax : 1;
    for (size_t l = 0; l < L; l++) {
        ep->xr[l] = backend_alloc(b, rows * C * es);
        ep->h13r[l] = backend_alloc(b, rows * 2 * F * es);
        ep->actr[l] = backend_alloc(b, rows * F * es);
    }
    ep->yr = backend_alloc(b, rows * C * es);
    ep->dyr = backend_alloc(b, rows * C * es);
    ep->dact = backend_alloc(b, rows * F * es);
    ep->dh13 = backend_alloc(b, rows * 2 * F * es);
    ep->dxr = backend_alloc(b, rows * C * es);
    ep->sb = cispo_calloc(P * E + 1, sizeof(moe_ep_block_t));
    ep->rb = cispo_calloc(P * E + 1, sizeof(moe_ep_block_t));
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
    free(ep->sb), free(ep->rb);
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

// Dispatch blocks of layer l from the saved counts: send (this rank's rows to each expert's owner) and
// receive (rows for the local experts, expert by expert, source by source). Returns R, the rows received.
static size_t ep_blocks(moe_ep_t *ep, const model_config_t *c, int l, int *nsb, int *nrb) {
    const int E = c->n_experts, P = ep->comm.size, me = ep->comm.rank;
    const int32_t *cnt = ep->cnt + (size_t)l * P * (E + 1), *src = ep->src_off + (size_t)l * (E + 1);
    int32_t *loc = ep->loc_host + (size_t)l * (ep->nl + 1);
    int ns = 0, nr = 0;
    for (int p = 0; p < P; p++) {
        int lo, hi;
        moe_ep_range(E, P, p, &lo, &hi);
        for (int e = lo; e < hi; e++)
            if (cnt[(size_t)me * (E + 1) + e] > 0)
                ep->sb[ns++] = (moe_ep_block_t){p, (size_t)src[e], (size_t)cnt[(size_t)me * (E + 1) + e]};
    }
    size_t pos = 0;
    for (int e = ep->e_lo; e < ep->e_hi; e++) {
        loc[e - ep->e_lo] = (int32_t)pos;
        for (int r = 0; r < P; r++) {
            size_t n = (size_t)cnt[(size_t)r * (E + 1) + e];
            if (n) ep->rb[nr++] = (moe_ep_block_t){r, pos, n}, pos += n;
        }
    }
    loc[ep->nl] = (int32_t)pos;
    *nsb = ns, *nrb = nr;
    return pos;
}

// One layer's forward; off_host NULL: a serving pass. Returns 0, doing nothing more, when the counts show
// that no rank of the group has tokens (the end of moe_ep_serve on every rank), else 1.
static int layer_forward(model_t *m, int l, const void *xe, const int32_t *off_host, void *ye) {
    const model_config_t *c = &m->cfg;
    moe_ep_t *ep = m->ep;
    backend_t *b = m->be;
    const int E = c->n_experts, P = ep->comm.size, C = c->hidden_size, F = c->intermediate_size;
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
    int ns, nr;
    size_t R = ep_blocks(ep, c, l, &ns, &nr);
    if (R > ep->rmax) {
        char what[160];
        snprintf(what, sizeof what, "%zu rows received, planned for %zu (do the group's models share max_tokens?)", R,
                 ep->rmax);
        cispo_fail("receive buffer too small");
        ep_die(ep, l, what);
    }
    const size_t rowb = (size_t)C * m->esize;
    int32_t *loc = ep->loc_host + (size_t)l * (ep->nl + 1);
    int32_t *locd = ep->loc_dev + (size_t)l * (ep->nl + 1);
    backend_upload(b, locd, loc, (size_t)(ep->nl + 1) * sizeof(int32_t));
    if (ep->comm.exchange(ep->comm.ctx, xe, ep->sb, ns, ep->xr[l], ep->rb, nr, rowb))
        ep_die(ep, l, "dispatch of the routed rows");
    if (R > 0) {
        const layer_params_t *p = &m->table.layers[l];
        const size_t e0 = (size_t)ep->e_lo * F * C;
        void *h13 = ep->h13r[l], *h3 = (char *)h13 + (size_t)F * m->esize;
        grouped_matmul(b, h13, 2 * F, ep->xr[l], C, WP(m, p->w1 + e0), 1, locd, ep->nl, (int)R, F, C, 0.0f);
        grouped_matmul(b, h3, 2 * F, ep->xr[l], C, WP(m, p->w3 + e0), 1, locd, ep->nl, (int)R, F, C, 0.0f);
        glu_forward(b, c->hidden_act, ep->actr[l], h13, (int)R, F);
        grouped_matmul(b, ep->yr, C, ep->actr[l], F, WP(m, p->w2 + e0), 1, locd, ep->nl, (int)R, C, F, 0.0f);
    }
    // combine: the outputs return along the dispatch blocks, reversed
    if (ep->comm.exchange(ep->comm.ctx, ep->yr, ep->rb, nr, ye, ep->sb, ns, rowb))
        ep_die(ep, l, "return of the expert outputs");
    return 1;
}

void moe_ep_layer_forward(model_t *m, int l, const void *xe, const int32_t *off_host, int S, void *ye) {
    CISPO_ASSERT(S > 0 && off_host);
    layer_forward(m, l, xe, off_host, ye);
}

void moe_ep_layer_backward(model_t *m, int l, const void *dye, int S, void *dxe) {
    const model_config_t *c = &m->cfg;
    moe_ep_t *ep = m->ep;
    backend_t *b = m->be;
    const int C = c->hidden_size, F = c->intermediate_size;
    (void)S;
    int ns, nr;
    size_t R = ep_blocks(ep, c, l, &ns, &nr);
    const size_t rowb = (size_t)C * m->esize;
    const int32_t *locd = ep->loc_dev + (size_t)l * (ep->nl + 1);
    if (ep->comm.exchange(ep->comm.ctx, dye, ep->sb, ns, ep->dyr, ep->rb, nr, rowb))
        ep_die(ep, l, "dispatch of the output gradients");
    if (R > 0) {
        const layer_params_t *p = &m->table.layers[l];
        const size_t e0 = (size_t)ep->e_lo * F * C;
        void *dh3 = (char *)ep->dh13 + (size_t)F * m->esize;
        // yr = act W2_e^T
        grouped_matmul(b, ep->dact, F, ep->dyr, C, WP(m, p->w2 + e0), 0, locd, ep->nl, (int)R, F, C, 0.0f);
        grouped_matmul_wgrad(b, GP(m, p->w2 + e0), ep->dyr, C, ep->actr[l], F, locd, ep->nl, (int)R, C, F);
        // act = act(h1) * h3
        glu_backward(b, c->hidden_act, ep->dh13, ep->dact, ep->h13r[l], (int)R, F, OP_WRITE);
        // h1 = xr W1_e^T, h3 = xr W3_e^T
        grouped_matmul(b, ep->dxr, C, ep->dh13, 2 * F, WP(m, p->w1 + e0), 0, locd, ep->nl, (int)R, C, F, 0.0f);
        grouped_matmul(b, ep->dxr, C, dh3, 2 * F, WP(m, p->w3 + e0), 0, locd, ep->nl, (int)R, C, F, 1.0f);
        grouped_matmul_wgrad(b, GP(m, p->w1 + e0), ep->dh13, 2 * F, ep->xr[l], C, locd, ep->nl, (int)R, F, C);
        grouped_matmul_wgrad(b, GP(m, p->w3 + e0), dh3, 2 * F, ep->xr[l], C, locd, ep->nl, (int)R, F, C);
    }
    if (ep->comm.exchange(ep->comm.ctx, ep->dxr, ep->rb, nr, dxe, ep->sb, ns, rowb))
        ep_die(ep, l, "return of the input gradients");
}

void moe_ep_serve(model_t *m, int backward) {
    if (!m->ep) return;
    const int L = m->cfg.n_layers;
    // each round: a pass without tokens, for as long as one rank of the group still has a micro-batch
    while (layer_forward(m, 0, NULL, NULL, NULL)) {
        for (int l = 1; l < L; l++) layer_forward(m, l, NULL, NULL, NULL);
        if (backward)
            for (int l = L - 1; l >= 0; l--) moe_ep_layer_backward(m, l, NULL, 0, NULL);
    }
}
