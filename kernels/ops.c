// kernels/ops.c — the op API's dispatch (kernels/ops.h): each op calls its backend's implementation,
// adapting the one contract (write/accumulate flags, slot-indexed caches, workspace) to the
// reference's signature. An op a backend lacks aborts naming the op, backend and dtype.
// defines: op_name, backend_supports, and every op of kernels/ops.h
#include "kernels/ops.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/common.h"
#include "kernels/cpu/ops_cpu.h"
#ifdef CISPO_HAVE_CUDA
#include "kernels/cuda/ops_cuda.h"
#endif

#define CISPO_OP_NAME(name) #name,
static const char *const op_names[OP_COUNT] = {CISPO_OPS(CISPO_OP_NAME)};
#undef CISPO_OP_NAME

const char *op_name(int op) { return op >= 0 && op < OP_COUNT ? op_names[op] : "?"; }

int backend_supports(const backend_t *b, int op, int dtype) {
    if (op < 0 || op >= OP_COUNT) return 0;
    if (b->kind == BACKEND_CPU) return dtype == DTYPE_F32;
#ifdef CISPO_HAVE_CUDA
    if (b->kind == BACKEND_CUDA) {
        switch (op) {
        case OP_sum_squares:
        case OP_scale_f32:
        case OP_adamw_step:  // fp32 tensors whatever the activation dtype
        case OP_sample_tokens:  // fp32 logits
            return 1;
        default:
            return dtype == DTYPE_BF16;
        }
    }
#endif
    return 0;
}

// The CPU reference writes and reads fp32 gradients only (grad_dtype bf16 is a CUDA context's): dtype, the
// gradient's (b->grad_dtype for the ops that write one).
static void grads_f32(const backend_t *b, int op, int dtype) {
    if (dtype == DTYPE_F32) return;
    char what[160];
    snprintf(what, sizeof what, "op %s on backend %s with %s gradients", op_name(op), backend_name(b->kind),
             dtype_name(dtype));
    cispo_die(__FILE__, __LINE__, what, "the CPU reference takes fp32 parameter gradients only (grad_dtype fp32)");
}

static void unsupported(const backend_t *b, int op) {
    char what[160];
    snprintf(what, sizeof what, "op %s on backend %s in %s", op_name(op), backend_name(b->kind),
             dtype_name(b->act_dtype));
    cispo_die(__FILE__, __LINE__, what, "this backend does not implement the op in this dtype (backend_supports)");
}

#define CPU(b) ((b)->kind == BACKEND_CPU)
#define F(p) ((float *)(p))
#define CF(p) ((const float *)(p))
#define GT(b) ((b)->grad_dtype)

static void zero_if_write(int acc, void *p, size_t n) {
    if (acc == OP_WRITE && p) memset(p, 0, n * sizeof(float));
}

#ifdef CISPO_HAVE_CUDA
static void cuda_ok(int rc, int op) {
    if (rc == 0) return;
    char what[512];
    snprintf(what, sizeof what, "op %s on cuda: %s", op_name(op), cispo_last_error());
    cispo_die(__FILE__, __LINE__, what, "CUDA op failed");
}
#define ST(b) ((cudaStream_t)(b)->stream)
#define DT(b) ((b)->act_dtype)
// On a CUDA context: run `call` and return from the op. The _WS form first takes `bytes` of the
// context's workspace as (ws, wsb) for the call and gives them back after.
static double prof_begin(backend_t *b) {
    if (!b->prof) return 0;
    backend_sync(b);
    return cispo_now();
}
static void prof_end(backend_t *b, int op, double t0) {
    if (!b->prof) return;
    backend_sync(b);
    b->prof[2 * op] += cispo_now() - t0;
    b->prof[2 * op + 1] += 1;
}
#define ON_CUDA(op, call)                           \
    do {                                            \
        if (b->kind == BACKEND_CUDA) {              \
            double t0_ = prof_begin(b);             \
            cuda_ok((call), OP_##op);               \
            prof_end(b, OP_##op, t0_);              \
            return;                                 \
        }                                           \
    } while (0)
#define ON_CUDA_WS(op, bytes, call)                                         \
    do {                                                                    \
        if (b->kind == BACKEND_CUDA) {                                      \
            size_t wsb = (bytes), mark_ = backend_ws_mark(b);               \
            void *ws = wsb ? backend_ws_take(b, wsb) : NULL;                \
            double t0_ = prof_begin(b);                                     \
            cuda_ok((call), OP_##op);                                       \
            prof_end(b, OP_##op, t0_);                                      \
            backend_ws_reset(b, mark_);                                     \
            return;                                                         \
        }                                                                   \
    } while (0)
#else
#define ON_CUDA(op, call) \
    do {                  \
    } while (0)
#define ON_CUDA_WS(op, bytes, call) \
    do {                            \
    } while (0)
#endif

size_t ops_workspace_bytes(const backend_t *b, const op_ws_shape_t *s) {
#ifdef CISPO_HAVE_CUDA
    if (b->kind == BACKEND_CUDA) {
        size_t w[9];
        // lightning, plus the copies of an accumulating backward
        w[0] = lightning_workspace_bytes_cuda(s->T, s->nseq, s->H, s->D, &b->tune) + (size_t)3 * s->T * s->H * s->D * 2 +
               (size_t)s->nseq * s->H * s->D * s->D * sizeof(float) + 4 * 256;
        int nmax = s->F > s->C ? s->F : s->C;
        w[1] = grouped_matmul_workspace_bytes_cuda(s->E, s->T * s->K, nmax, nmax);
        w[2] = lmhead_workspace_bytes_cuda(s->T, s->C, s->V);
        w[3] = moe_workspace_bytes_cuda(s->T, s->E, s->K);
        w[4] = attention_workspace_bytes_cuda(s->T, s->nseq, s->H, s->KV, s->D);
        w[5] = (size_t)1 << 16;  // reductions (sum_squares)
        w[6] = sample_workspace_bytes_cuda(s->nseq, s->V);  // the sampler's probabilities of a batch's rows
        w[7] = embedding_workspace_bytes_cuda(s->T);          // its backward into bf16 gradients
        w[8] = rmsnorm_backward_workspace_bytes_cuda(s->H * s->D > s->C ? s->H * s->D : s->C);  // dw's row splits
        size_t mx = 0;
        for (int i = 0; i < 9; i++) mx = w[i] > mx ? w[i] : mx;
        return mx + 4096;
    }
#endif
    (void)b, (void)s;
    return 0;
}

// ---- GEMM ----
void matmul(backend_t *b, void *c, const void *a, const void *bm, int m, int n, int k, int trans_a, int trans_b,
            float alpha, float beta) {
    ON_CUDA(matmul, matmul_cuda(b->blas, c, a, bm, m, n, k, trans_a, trans_b, alpha, beta, DT(b), b->tune.dense_skinny,
                                b->tune.gg_skinny_wide, ST(b)));
    if (!CPU(b)) unsupported(b, OP_matmul);
    matmul_cpu(F(c), CF(a), CF(bm), m, n, k, trans_a, trans_b, alpha, beta);
}

void matmul_wgrad(backend_t *b, void *dw, const void *dy, const void *x, int n_out, int n_in, int T, int acc) {
    ON_CUDA(matmul_wgrad, matmul_wgrad_cuda(b->blas, dw, dy, x, n_out, n_in, T, acc, DT(b), GT(b), ST(b)));
    if (!CPU(b)) unsupported(b, OP_matmul_wgrad);
    grads_f32(b, OP_matmul_wgrad, GT(b));
    matmul_wgrad_cpu(F(dw), CF(dy), CF(x), n_out, n_in, T, acc);
}

void grouped_matmul(backend_t *b, void *c, int ldc, const void *a, int lda, const void *w, int trans_w,
                    const int32_t *offsets, int G, int rows, int n, int k, float beta) {
    ON_CUDA_WS(grouped_matmul, grouped_matmul_workspace_bytes_cuda(G, rows, n, k),
               grouped_matmul_cuda(b->blas, c, ldc, a, lda, w, trans_w, offsets, G, rows, n, k, beta, DT(b),
                                   b->tune.gg_skinny_wide, ws, wsb, ST(b)));
    (void)rows;
    if (!CPU(b)) unsupported(b, OP_grouped_matmul);
    grouped_matmul_cpu(F(c), ldc, CF(a), lda, CF(w), trans_w, offsets, G, n, k, beta);
}

void grouped_matmul_pair(backend_t *b, void *c, int ldc, const void *a, int lda, const void *w, const void *v,
                         const int32_t *offsets, int G, int rows, int n, int k) {
    ON_CUDA(grouped_matmul_pair, grouped_matmul_pair_cuda(c, ldc, a, lda, w, v, offsets, G, rows, n, k, DT(b),
                                                          b->tune.gg_skinny_wide, ST(b)));
    (void)rows;
    if (!CPU(b)) unsupported(b, OP_grouped_matmul_pair);
    grouped_matmul_pair_cpu(F(c), ldc, CF(a), lda, CF(w), CF(v), offsets, G, n, k);
}

void grouped_matmul_glu(backend_t *b, void *out, const void *a, int lda, const void *w, const void *v,
                        const int32_t *offsets, int G, int rows, int n, int k, int act, const int32_t *gather, int gk) {
    CISPO_ASSERT(!gather || gk >= 1);
    ON_CUDA(grouped_matmul_glu, grouped_matmul_glu_cuda(out, a, lda, w, v, offsets, G, rows, n, k, act, gather, gk,
                                                        DT(b), b->tune.gg_skinny_wide, ST(b)));
    if (!CPU(b)) unsupported(b, OP_grouped_matmul_glu);
    grouped_matmul_glu_cpu(F(out), CF(a), lda, CF(w), CF(v), offsets, G, rows, n, k, act, gather, gk);
}

void grouped_matmul_wgrad(backend_t *b, void *dw, const void *dc, int lddc, const void *a, int lda,
                          const int32_t *offsets, int G, int rows, int n, int k, int acc) {
    ON_CUDA_WS(grouped_matmul_wgrad, grouped_matmul_workspace_bytes_cuda(G, rows, n, k),
               grouped_matmul_wgrad_cuda(b->blas, dw, dc, lddc, a, lda, offsets, G, rows, n, k, acc, DT(b), GT(b),
                                         b->tune.wg_wgrad_tma >= 0 ? 2 : b->tune.wg_wgrad_inflight >= 0, ws, wsb, ST(b)));
    (void)rows;
    if (!CPU(b)) unsupported(b, OP_grouped_matmul_wgrad);
    grads_f32(b, OP_grouped_matmul_wgrad, GT(b));
    grouped_matmul_wgrad_cpu(F(dw), CF(dc), lddc, CF(a), lda, offsets, G, n, k, acc);
}

// ---- embedding, norm ----
void embedding_forward(backend_t *b, void *out, const int32_t *ids, const void *table, int T, int C) {
    ON_CUDA(embedding_forward, embedding_forward_cuda(out, ids, table, T, C, DT(b), ST(b)));
    if (!CPU(b)) unsupported(b, OP_embedding_forward);
    embedding_forward_cpu(F(out), ids, CF(table), T, C);
}

void embedding_backward(backend_t *b, void *dtable, const void *dout, const int32_t *ids, int T, int C,
                        int pad_id) {
    ON_CUDA_WS(embedding_backward, GT(b) == DTYPE_F32 ? 0 : embedding_workspace_bytes_cuda(T),
               embedding_backward_cuda(dtable, dout, ids, T, C, pad_id, DT(b), GT(b), ws, wsb, ST(b)));
    if (!CPU(b)) unsupported(b, OP_embedding_backward);
    grads_f32(b, OP_embedding_backward, GT(b));
    if (pad_id < 0) {
        embedding_backward_cpu(F(dtable), CF(dout), ids, T, C);
        return;
    }
    for (int t = 0; t < T; t++)  // rows of the pad id get no gradient from their lookups
        if (ids[t] != pad_id) embedding_backward_cpu(F(dtable), CF(dout) + (size_t)t * C, ids + t, 1, C);
}

void residual_rmsnorm(backend_t *b, void *x_out, void *out, float *rstd, const void *r, const void *y, float alpha,
                      float beta, const void *w, int T, int C, float eps) {
    ON_CUDA(residual_rmsnorm, residual_rmsnorm_cuda(x_out, out, rstd, r, y, alpha, beta, w, T, C, eps, DT(b), ST(b)));
    if (!CPU(b)) unsupported(b, OP_residual_rmsnorm);
    residual_rmsnorm_cpu(F(x_out), F(out), rstd, CF(r), CF(y), alpha, beta, CF(w), T, C, eps);
}

void residual_rmsnorm_route(backend_t *b, void *x_out, void *out, float *rstd, const void *r, const void *y,
                            float alpha, float beta, const void *w, int T, int C, float eps, const void *wg,
                            void *logits, float *probs, int32_t *topk_idx, float *topk_w, int E, int K, int32_t *perm,
                            int32_t *offsets, int32_t *count) {
    CISPO_ASSERT(!perm == !offsets && (!perm || b->kind != BACKEND_CUDA || count));
    ON_CUDA(residual_rmsnorm_route, residual_rmsnorm_route_cuda(x_out, out, rstd, r, y, alpha, beta, w, T, C, eps, wg,
                                                                logits, probs, topk_idx, topk_w, E, K, perm, offsets,
                                                                count, DT(b), ST(b)));
    if (!CPU(b)) unsupported(b, OP_residual_rmsnorm_route);
    residual_rmsnorm_route_cpu(F(x_out), F(out), rstd, CF(r), CF(y), alpha, beta, CF(w), T, C, eps, CF(wg), F(logits),
                               probs, topk_idx, topk_w, E, K, perm, offsets);
}

void rmsnorm_gate_forward(backend_t *b, void *out, void *gated, float *rstd, const void *x, const void *w,
                          const void *g, int ldg, int T, int C, float eps) {
    CISPO_ASSERT(ldg >= C);
    ON_CUDA(rmsnorm_gate_forward,
            rmsnorm_gate_forward_cuda(out, gated, rstd, x, w, g, ldg, T, C, eps, DT(b), ST(b)));
    if (!CPU(b)) unsupported(b, OP_rmsnorm_gate_forward);
    rmsnorm_gate_forward_cpu(F(out), F(gated), rstd, CF(x), CF(w), CF(g), ldg, T, C, eps);
}

void rmsnorm_gate_backward(backend_t *b, void *dx, void *dw, void *dg, const void *dgated, const void *x,
                           const void *w, const float *rstd, const void *g, int ldg, int T, int C) {
    CISPO_ASSERT(ldg >= C);
    ON_CUDA_WS(rmsnorm_gate_backward, dw ? backend_ws_room(b, rmsnorm_backward_workspace_bytes_cuda(C)) : 0,
               rmsnorm_gate_backward_cuda(dx, dw, dg, dgated, x, w, rstd, g, ldg, T, C, ws, wsb, DT(b), GT(b), ST(b)));
    if (!CPU(b)) unsupported(b, OP_rmsnorm_gate_backward);
    if (dw) grads_f32(b, OP_rmsnorm_gate_backward, GT(b));
    rmsnorm_gate_backward_cpu(F(dx), F(dw), F(dg), CF(dgated), CF(x), CF(w), rstd, CF(g), ldg, T, C);
}

void rmsnorm_forward(backend_t *b, void *out, float *rstd, const void *x, const void *w, int T, int C, float eps) {
    ON_CUDA(rmsnorm_forward, rmsnorm_forward_cuda(out, rstd, x, w, T, C, eps, DT(b), ST(b)));
    if (!CPU(b)) unsupported(b, OP_rmsnorm_forward);
    rmsnorm_forward_cpu(F(out), rstd, CF(x), CF(w), T, C, eps);
}

void rmsnorm_backward(backend_t *b, void *dx, void *dw, const void *dout, const void *x, const void *w,
                      const float *rstd, int T, int C, int acc, float acc_scale) {
    ON_CUDA_WS(rmsnorm_backward, dw ? backend_ws_room(b, rmsnorm_backward_workspace_bytes_cuda(C)) : 0,
               rmsnorm_backward_cuda(dx, dw, dout, x, w, rstd, T, C, acc, acc_scale, ws, wsb, DT(b), GT(b), ST(b)));
    if (!CPU(b)) unsupported(b, OP_rmsnorm_backward);
    if (dw) grads_f32(b, OP_rmsnorm_backward, GT(b));
    zero_if_write(acc, dx, (size_t)T * C);
    if (acc == OP_ACCUMULATE && dx && acc_scale != 1.0f) scale_f32_cpu(F(dx), acc_scale, (size_t)T * C);
    rmsnorm_backward_cpu(F(dx), F(dw), CF(dout), CF(x), CF(w), rstd, T, C);
}

// ---- elementwise ----
void residual_mix(backend_t *b, void *out, const void *r, const void *y, float alpha, float beta, size_t n) {
    ON_CUDA(residual_mix, residual_mix_cuda(out, r, y, alpha, beta, n, DT(b), ST(b)));
    if (!CPU(b)) unsupported(b, OP_residual_mix);
    residual_mix_cpu(F(out), CF(r), CF(y), alpha, beta, n);
}

void act_forward(backend_t *b, int act, void *out, const void *x, size_t n) {
    ON_CUDA(act_forward, act_forward_cuda(act, out, x, n, DT(b), ST(b)));
    if (!CPU(b)) unsupported(b, OP_act_forward);
    act_forward_cpu(act, F(out), CF(x), n);
}

void act_backward(backend_t *b, int act, void *dx, const void *dout, const void *x, size_t n, int acc) {
    ON_CUDA(act_backward, act_backward_cuda(act, dx, dout, x, n, acc, DT(b), ST(b)));
    if (!CPU(b)) unsupported(b, OP_act_backward);
    zero_if_write(acc, dx, n);
    act_backward_cpu(act, F(dx), CF(dout), CF(x), n);
}

void glu_forward(backend_t *b, int act, void *out, const void *h13, int T, int F_) {
    ON_CUDA(glu_forward, glu_forward_cuda(act, out, h13, T, F_, DT(b), ST(b)));
    if (!CPU(b)) unsupported(b, OP_glu_forward);
    glu_forward_cpu(act, F(out), CF(h13), T, F_);
}

void glu_backward(backend_t *b, int act, void *dh13, const void *dout, const void *h13, int T, int F_, int acc) {
    ON_CUDA(glu_backward, glu_backward_cuda(act, dh13, dout, h13, T, F_, acc, DT(b), ST(b)));
    if (!CPU(b)) unsupported(b, OP_glu_backward);
    zero_if_write(acc, dh13, (size_t)T * 2 * F_);
    glu_backward_cpu(act, F(dh13), CF(dout), CF(h13), T, F_);
}

void sigmoid_gate_forward(backend_t *b, void *out, const void *g, const void *x, size_t n) {
    ON_CUDA(sigmoid_gate_forward, sigmoid_gate_forward_cuda(out, g, x, n, DT(b), ST(b)));
    if (!CPU(b)) unsupported(b, OP_sigmoid_gate_forward);
    sigmoid_gate_forward_cpu(F(out), CF(g), CF(x), n);
}

void sigmoid_gate_backward(backend_t *b, void *dg, void *dx, const void *dout, const void *g, const void *x,
                           size_t n, int acc) {
    ON_CUDA(sigmoid_gate_backward, sigmoid_gate_backward_cuda(dg, dx, dout, g, x, n, acc, DT(b), ST(b)));
    if (!CPU(b)) unsupported(b, OP_sigmoid_gate_backward);
    zero_if_write(acc, dg, n);
    zero_if_write(acc, dx, n);
    sigmoid_gate_backward_cpu(F(dg), F(dx), CF(dout), CF(g), CF(x), n);
}

void qkv_split(backend_t *b, void *q, void *k, void *v, const void *qkv, int T, int H, int D, int act) {
    ON_CUDA(qkv_split, qkv_split_cuda(q, k, v, qkv, T, H, D, act, DT(b), ST(b)));
    if (!CPU(b)) unsupported(b, OP_qkv_split);
    qkv_split_cpu(F(q), F(k), F(v), CF(qkv), T, H, D, act);
}

void qkv_merge(backend_t *b, void *dqkv, const void *dq, const void *dk, const void *dv, const void *qkv, int T, int H,
               int D, int act) {
    ON_CUDA(qkv_merge, qkv_merge_cuda(dqkv, dq, dk, dv, qkv, T, H, D, act, DT(b), ST(b)));
    if (!CPU(b)) unsupported(b, OP_qkv_merge);
    qkv_merge_cpu(F(dqkv), CF(dq), CF(dk), CF(dv), CF(qkv), T, H, D, act);
}

// ---- RoPE ----
void rope_forward(backend_t *b, void *out, const void *x, const int32_t *pos, int T, int nh, int D, int R,
                  const float *inv_freq_host, float scale) {
    ON_CUDA(rope_forward, rope_forward_cuda(out, x, pos, T, nh, D, R, inv_freq_host, scale, DT(b), ST(b)));
    if (!CPU(b)) unsupported(b, OP_rope_forward);
    rope_forward_cpu(F(out), CF(x), pos, T, nh, D, R, inv_freq_host, scale);
}

void rope_backward(backend_t *b, void *dx, const void *dout, const int32_t *pos, int T, int nh, int D, int R,
                   const float *inv_freq_host, float scale, int acc) {
    ON_CUDA(rope_backward, rope_backward_cuda(dx, dout, pos, T, nh, D, R, inv_freq_host, scale, acc, DT(b), ST(b)));
    if (!CPU(b)) unsupported(b, OP_rope_backward);
    zero_if_write(acc, dx, (size_t)T * nh * D);
    rope_backward_cpu(F(dx), CF(dout), pos, T, nh, D, R, inv_freq_host, scale);
}

// ---- lightning attention ----
void lightning_forward(backend_t *b, void *o, float *state_out, const void *q, const void *k, const void *v,
                       const float *state_in, const float *slopes, const op_seqs_t *seqs, int H, int D, int block) {
    if (CPU(b)) {
        lightning_forward_cpu(F(o), state_out, CF(q), CF(k), CF(v), state_in, slopes, seqs->cu, seqs->nseq, H, D,
                              block);
        return;
    }
#ifdef CISPO_HAVE_CUDA
    if (b->kind == BACKEND_CUDA && b->act_dtype == DTYPE_BF16) {
        size_t need = lightning_workspace_bytes_cuda(seqs->T, seqs->nseq, H, D, &b->tune), mark = backend_ws_mark(b);
        void *ws = need ? backend_ws_take(b, need) : NULL;
        double t0 = prof_begin(b);
        cuda_ok(lightning_forward_cuda((uint16_t *)o, state_out, (const uint16_t *)q, (const uint16_t *)k,
                                       (const uint16_t *)v, state_in, slopes, seqs->cu, seqs->nseq, H, D, block,
                                       seqs->T, &b->tune, ws, need, (cudaStream_t)b->stream),
                OP_lightning_forward);
        prof_end(b, OP_lightning_forward, t0);
        backend_ws_reset(b, mark);
        return;
    }
#endif
    unsupported(b, OP_lightning_forward);
}

void lightning_backward(backend_t *b, void *dq, void *dk, void *dv, float *dstate_in, const void *dout,
                        const void *q, const void *k, const void *v, const float *state_in, const float *slopes,
                        const op_seqs_t *seqs, int H, int D, int block, int acc) {
    const size_t n = (size_t)seqs->T * H * D;
    if (CPU(b)) {
        zero_if_write(acc, dq, n);
        zero_if_write(acc, dk, n);
        zero_if_write(acc, dv, n);
        zero_if_write(acc, dstate_in, (size_t)seqs->nseq * H * D * D);
        lightning_backward_cpu(F(dq), F(dk), F(dv), dstate_in, CF(dout), CF(q), CF(k), CF(v), state_in, slopes,
                               seqs->cu, seqs->nseq, H, D, block);
        return;
    }
#ifdef CISPO_HAVE_CUDA
    // the kernels write their gradients (a bf16 gradient accumulated in place would round twice);
    // OP_ACCUMULATE writes into workspace copies and adds them
    if (b->kind == BACKEND_CUDA && b->act_dtype == DTYPE_BF16) {
        size_t need = lightning_workspace_bytes_cuda(seqs->T, seqs->nseq, H, D, &b->tune), mark = backend_ws_mark(b);
        void *ws = need ? backend_ws_take(b, need) : NULL;
        const size_t nst = (size_t)seqs->nseq * H * D * D;
        void *gq = dq, *gk = dk, *gv = dv;
        float *gs = dstate_in;
        if (acc == OP_ACCUMULATE) {
            gq = backend_ws_take(b, n * 2), gk = backend_ws_take(b, n * 2), gv = backend_ws_take(b, n * 2);
            gs = dstate_in ? backend_ws_take(b, nst * sizeof(float)) : NULL;
        }
        double t0 = prof_begin(b);
        cuda_ok(lightning_backward_cuda((uint16_t *)gq, (uint16_t *)gk, (uint16_t *)gv, gs, (const uint16_t *)dout,
                                        (const uint16_t *)q, (const uint16_t *)k, (const uint16_t *)v, state_in,
                                        slopes, seqs->cu, seqs->nseq, H, D, block, seqs->T, &b->tune, ws, need,
                                        ST(b)),
                OP_lightning_backward);
        if (acc == OP_ACCUMULATE) {
            cuda_ok(residual_mix_cuda(dq, dq, gq, 1.0f, 1.0f, n, DTYPE_BF16, ST(b)), OP_lightning_backward);
            cuda_ok(residual_mix_cuda(dk, dk, gk, 1.0f, 1.0f, n, DTYPE_BF16, ST(b)), OP_lightning_backward);
            cuda_ok(residual_mix_cuda(dv, dv, gv, 1.0f, 1.0f, n, DTYPE_BF16, ST(b)), OP_lightning_backward);
            if (gs) cuda_ok(residual_mix_cuda(dstate_in, dstate_in, gs, 1.0f, 1.0f, nst, DTYPE_F32, ST(b)), OP_lightning_backward);
        }
        prof_end(b, OP_lightning_backward, t0);
        backend_ws_reset(b, mark);
        return;
    }
#endif
    unsupported(b, OP_lightning_backward);
}

size_t lightning_workspace_bytes(const backend_t *b, int T, int nseq, int H, int D) {
#ifdef CISPO_HAVE_CUDA
    if (b->kind == BACKEND_CUDA) return lightning_workspace_bytes_cuda(T, nseq, H, D, &b->tune);
#endif
    (void)b, (void)T, (void)nseq, (void)H, (void)D;
    return 0;
}

void lightning_decode(backend_t *b, void *o, float *states, const int32_t *slot, const void *q, const void *k,
                      const void *v, const float *slopes, int n, int H, int D) {
    const size_t HD = (size_t)H * D, HDD = HD * D;
    if (CPU(b)) {
        for (int i = 0; i < n; i++)
            lightning_decode_cpu(F(o) + i * HD, states + (size_t)slot[i] * HDD, CF(q) + i * HD, CF(k) + i * HD,
                                 CF(v) + i * HD, slopes, 1, H, D);
        return;
    }
#ifdef CISPO_HAVE_CUDA
    // the kernel steps each slot's state in place (slot indices read on the device)
    if (b->kind == BACKEND_CUDA && b->act_dtype == DTYPE_BF16) {
        double t0 = prof_begin(b);
        cuda_ok(lightning_decode_slots_cuda((uint16_t *)o, states, slot, (const uint16_t *)q, (const uint16_t *)k,
                                            (const uint16_t *)v, slopes, n, H, D, ST(b)),
                OP_lightning_decode);
        prof_end(b, OP_lightning_decode, t0);
        return;
    }
#endif
    unsupported(b, OP_lightning_decode);
}

void lightning_decode_qkv(backend_t *b, void *o, float *states, const int32_t *slot, const void *qkv, int ldq,
                          int act, const float *slopes, int n, int H, int D) {
    CISPO_ASSERT(ldq >= 3 * H * D);
    if (CPU(b)) {
        lightning_decode_qkv_cpu(F(o), states, slot, CF(qkv), ldq, act, slopes, n, H, D);
        return;
    }
#ifdef CISPO_HAVE_CUDA
    if (b->kind == BACKEND_CUDA && b->act_dtype == DTYPE_BF16) {
        double t0 = prof_begin(b);
        cuda_ok(lightning_decode_qkv_cuda((uint16_t *)o, states, slot, (const uint16_t *)qkv, ldq, act, slopes, n, H,
                                          D, ST(b)),
                OP_lightning_decode_qkv);
        prof_end(b, OP_lightning_decode_qkv, t0);
        return;
    }
#endif
    unsupported(b, OP_lightning_decode_qkv);
}

void lightning_decode_qkv_gate(backend_t *b, void *o, float *states, const int32_t *slot, const void *qkv, int ldq,
                               int act, const float *slopes, int n, int H, int D, void *o_norm, void *gated,
                               float *rstd, const void *w, const void *gate, int ldg, float eps) {
    CISPO_ASSERT(ldq >= 3 * H * D && ldg >= H * D);
    if (CPU(b)) {
        lightning_decode_qkv_gate_cpu(F(o), states, slot, CF(qkv), ldq, act, slopes, n, H, D, F(o_norm), F(gated), rstd,
                                      CF(w), CF(gate), ldg, eps);
        return;
    }
#ifdef CISPO_HAVE_CUDA
    if (b->kind == BACKEND_CUDA && b->act_dtype == DTYPE_BF16) {
        double t0 = prof_begin(b);
        cuda_ok(lightning_decode_qkv_gate_cuda((uint16_t *)o, states, slot, (const uint16_t *)qkv, ldq, act, slopes, n,
                                               H, D, (uint16_t *)o_norm, (uint16_t *)gated, rstd, (const uint16_t *)w,
                                               (const uint16_t *)gate, ldg, eps, ST(b)),
                OP_lightning_decode_qkv_gate);
        prof_end(b, OP_lightning_decode_qkv_gate, t0);
        return;
    }
#endif
    unsupported(b, OP_lightning_decode_qkv_gate);
}

// ---- softmax attention ----
void attention_forward(backend_t *b, void *o, float *lse, const void *q, const void *k, const void *v,
                       const op_seqs_t *seqs, int H, int KV, int D, int window) {
    ON_CUDA_WS(attention_forward, attention_workspace_bytes_cuda(seqs->T, seqs->nseq, H, KV, D),
               attention_forward_cuda(o, lse, q, k, v, seqs->cu, seqs->cu_host, seqs->nseq, seqs->T, seqs->max_len, H, KV, D,
                                      window, DT(b), &b->tune, ws, wsb, ST(b)));
    if (!CPU(b)) unsupported(b, OP_attention_forward);
    attention_forward_cpu(F(o), lse, CF(q), CF(k), CF(v), seqs->cu, seqs->nseq, H, KV, D, window);
}

void attention_backward(backend_t *b, void *dq, void *dk, void *dv, const void *dout, const void *o,
                        const float *lse, const void *q, const void *k, const void *v, const op_seqs_t *seqs,
                        int H, int KV, int D, int window, int acc) {
    ON_CUDA_WS(attention_backward, attention_workspace_bytes_cuda(seqs->T, seqs->nseq, H, KV, D),
               attention_backward_cuda(dq, dk, dv, dout, o, lse, q, k, v, seqs->cu, seqs->cu_host, seqs->nseq, seqs->T,
                                       seqs->max_len, H, KV, D, window, acc, DT(b), &b->tune, ws, wsb, ST(b)));
    if (!CPU(b)) unsupported(b, OP_attention_backward);
    zero_if_write(acc, dq, (size_t)seqs->T * H * D);
    zero_if_write(acc, dk, (size_t)seqs->T * KV * D);
    zero_if_write(acc, dv, (size_t)seqs->T * KV * D);
    attention_backward_cpu(F(dq), F(dk), F(dv), CF(dout), CF(o), lse, CF(q), CF(k), CF(v), seqs->cu, seqs->nseq, H,
                           KV, D, window);
}

void kv_write(backend_t *b, void *kcache, void *vcache, const void *k, const void *v, const int32_t *slot,
              const int32_t *pos, int T, int KVD, const int32_t *block_table, int max_blocks, int block_size) {
    ON_CUDA(kv_write, kv_write_cuda(kcache, vcache, k, v, slot, pos, T, KVD, block_table, max_blocks, block_size, DT(b),
                                    ST(b)));
    if (!CPU(b)) unsupported(b, OP_kv_write);
    kv_write_cpu(F(kcache), F(vcache), CF(k), CF(v), slot, pos, T, KVD, block_table, max_blocks, block_size);
}

void attention_decode(backend_t *b, void *o, const void *q, const void *kcache, const void *vcache,
                      const int32_t *slot, const int32_t *len, int n, int H, int KV, int D,
                      const int32_t *block_table, int max_blocks, int block_size, int window) {
    ON_CUDA(attention_decode, attention_decode_cuda(o, q, kcache, vcache, slot, len, n, H, KV, D, block_table, max_blocks,
                                                    block_size, window, DT(b), ST(b)));
    if (!CPU(b)) unsupported(b, OP_attention_decode);
    const size_t HD = (size_t)H * D;
    for (int i = 0; i < n; i++)
        attention_decode_cpu(F(o) + i * HD, CF(q) + i * HD, CF(kcache), CF(vcache),
                             block_table + (size_t)slot[i] * max_blocks, len[i], H, KV, D, block_size, window);
}

// ---- MoE ----
void moe_route_forward(backend_t *b, float *probs, int32_t *topk_idx, float *topk_w, const void *logits, int T,
                       int E, int K, int replay) {
    ON_CUDA(moe_route_forward, moe_route_forward_cuda(probs, topk_idx, topk_w, logits, T, E, K, replay, DT(b), ST(b)));
    if (!CPU(b)) unsupported(b, OP_moe_route_forward);
    moe_route_forward_cpu(probs, topk_idx, topk_w, CF(logits), T, E, K, replay);
}

void moe_aux_loss(backend_t *b, float *out, const float *probs, const int32_t *topk_idx, int T, int E, int K) {
    ON_CUDA_WS(moe_aux_loss, moe_workspace_bytes_cuda(T, E, K), moe_aux_loss_cuda(out, probs, topk_idx, T, E, K, ws, wsb, ST(b)));
    if (!CPU(b)) unsupported(b, OP_moe_aux_loss);
    *out = moe_aux_loss_cpu(probs, topk_idx, T, E, K);
}

void moe_route_backward(backend_t *b, void *dlogits, const float *dtopk_w, float d_aux, const float *probs,
                        const int32_t *topk_idx, const float *topk_w, int T, int E, int K, int acc) {
    ON_CUDA_WS(moe_route_backward, moe_workspace_bytes_cuda(T, E, K),
               moe_route_backward_cuda(dlogits, dtopk_w, d_aux, probs, topk_idx, topk_w, T, E, K, acc, DT(b), ws, wsb, ST(b)));
    if (!CPU(b)) unsupported(b, OP_moe_route_backward);
    zero_if_write(acc, dlogits, (size_t)T * E);
    moe_route_backward_cpu(F(dlogits), dtopk_w, d_aux, probs, topk_idx, topk_w, T, E, K);
}

void moe_dispatch(backend_t *b, void *xe, int32_t *perm, int32_t *offsets, const void *x, const int32_t *topk_idx,
                  int T, int C, int E, int K) {
    ON_CUDA_WS(moe_dispatch, moe_workspace_bytes_cuda(T, E, K),
               moe_dispatch_cuda(xe, perm, offsets, x, topk_idx, T, C, E, K, DT(b), ws, wsb, ST(b)));
    if (!CPU(b)) unsupported(b, OP_moe_dispatch);
    moe_dispatch_cpu(F(xe), perm, offsets, CF(x), topk_idx, T, C, E, K);
}

void moe_dispatch_backward(backend_t *b, void *dx, const void *dxe, const int32_t *perm, int T, int C, int K,
                           int acc) {
    ON_CUDA_WS(moe_dispatch_backward, moe_workspace_bytes_cuda(T, 1, K),
               moe_dispatch_backward_cuda(dx, dxe, perm, T, C, K, acc, DT(b), ws, wsb, ST(b)));
    if (!CPU(b)) unsupported(b, OP_moe_dispatch_backward);
    zero_if_write(acc, dx, (size_t)T * C);
    moe_dispatch_backward_cpu(F(dx), CF(dxe), perm, T, C, K);
}

void moe_combine_rmsnorm(backend_t *b, void *x_out, void *out, float *rstd, const void *r, const void *ye,
                         const float *topk_w, const int32_t *perm, float alpha, float beta, const void *w, int T,
                         int C, int K, float eps) {
    ON_CUDA_WS(moe_combine_rmsnorm, moe_workspace_bytes_cuda(T, 1, K),
               moe_combine_rmsnorm_cuda(x_out, out, rstd, r, ye, topk_w, perm, alpha, beta, w, T, C, K, eps, DT(b), ws,
                                        wsb, ST(b)));
    if (!CPU(b)) unsupported(b, OP_moe_combine_rmsnorm);
    moe_combine_rmsnorm_cpu(F(x_out), F(out), rstd, CF(r), CF(ye), topk_w, perm, alpha, beta, CF(w), T, C, K, eps);
}

void moe_combine_forward(backend_t *b, void *y, const void *ye, const float *topk_w, const int32_t *perm, int T,
                         int C, int K) {
    ON_CUDA_WS(moe_combine_forward, moe_workspace_bytes_cuda(T, 1, K),
               moe_combine_forward_cuda(y, ye, topk_w, perm, T, C, K, DT(b), ws, wsb, ST(b)));
    if (!CPU(b)) unsupported(b, OP_moe_combine_forward);
    memset(y, 0, (size_t)T * C * sizeof(float));
    moe_combine_forward_cpu(F(y), CF(ye), topk_w, perm, T, C, K);
}

void moe_combine_backward(backend_t *b, void *dye, float *dtopk_w, const void *dy, const void *ye,
                          const float *topk_w, const int32_t *perm, int T, int C, int K, int acc) {
    ON_CUDA_WS(moe_combine_backward, moe_workspace_bytes_cuda(T, 1, K),
               moe_combine_backward_cuda(dye, dtopk_w, dy, ye, topk_w, perm, T, C, K, acc, DT(b), ws, wsb, ST(b)));
    if (!CPU(b)) unsupported(b, OP_moe_combine_backward);
    zero_if_write(acc, dye, (size_t)T * K * C);
    zero_if_write(acc, dtopk_w, (size_t)T * K);
    moe_combine_backward_cpu(F(dye), dtopk_w, CF(dy), CF(ye), topk_w, perm, T, C, K);
}

// ---- LM head ----
// Logits of at most this many floats exist at once in the CPU LM head (chunk of tokens x V).
#define LMHEAD_CHUNK_FLOATS ((size_t)1 << 22)

static int lmhead_chunk(int T, int V) {
    size_t chunk = LMHEAD_CHUNK_FLOATS / (size_t)V;
    if (chunk < 1) chunk = 1;
    if (chunk > (size_t)T) chunk = (size_t)T;
    return (int)(chunk > 0 ? chunk : 1);
}

void lmhead_logprob_forward(backend_t *b, float *logp, float *lse, float *entropy, const void *x, const void *w,
                            const int32_t *targets, int T, int C, int V) {
    ON_CUDA_WS(lmhead_logprob_forward, lmhead_workspace_bytes_cuda(T, C, V),
               lmhead_logprob_forward_cuda(b->blas, logp, lse, entropy, x, w, targets, T, C, V, DT(b), ws, wsb, ST(b)));
    if (!CPU(b)) unsupported(b, OP_lmhead_logprob_forward);
    lmhead_logprob_forward_cpu(logp, lse, entropy, CF(x), CF(w), targets, T, C, V, lmhead_chunk(T, V));
}

void lmhead_logprob_backward(backend_t *b, void *dx, void *dw, const float *dlogp, const void *x, const void *w,
                             const int32_t *targets, const float *lse, int T, int C, int V, int acc) {
    ON_CUDA_WS(lmhead_logprob_backward, lmhead_workspace_bytes_cuda(T, C, V),
               lmhead_logprob_backward_cuda(b->blas, dx, dw, dlogp, x, w, targets, lse, T, C, V, acc, DT(b), GT(b), ws,
                                            wsb, ST(b)));
    if (!CPU(b)) unsupported(b, OP_lmhead_logprob_backward);
    if (dw) grads_f32(b, OP_lmhead_logprob_backward, GT(b));
    zero_if_write(acc, dx, (size_t)T * C);
    lmhead_logprob_backward_cpu(F(dx), F(dw), dlogp, CF(x), CF(w), targets, lse, T, C, V, lmhead_chunk(T, V));
}

void lmhead_logits(backend_t *b, float *logits, const void *x, const void *w, int n, int C, int V) {
    ON_CUDA(lmhead_logits, lmhead_logits_cuda(b->blas, logits, x, w, n, C, V, b->tune.lmhead_bf16, DT(b), ST(b)));
    if (!CPU(b)) unsupported(b, OP_lmhead_logits);
    lmhead_logits_cpu(logits, CF(x), CF(w), n, C, V, b->tune.lmhead_bf16);
}

// ---- sampling ----
void sample_tokens(backend_t *b, int32_t *tok, float *logp, int32_t *done, sample_slot_t *state, const int32_t *slot,
                   const float *logits, int n, int V) {
    ON_CUDA_WS(sample_tokens, sample_workspace_bytes_cuda(n, V),
               sample_tokens_cuda(tok, logp, done, state, slot, logits, n, V, b->tune.sample_cluster, ws, wsb, ST(b)));
    if (!CPU(b)) unsupported(b, OP_sample_tokens);
    sample_tokens_cpu(tok, logp, done, state, slot, logits, n, V);
}

// ---- CUDA graphs ----
int ops_graph_begin(backend_t *b) {
#ifdef CISPO_HAVE_CUDA
    if (b->kind == BACKEND_CUDA && !b->prof) return graph_begin_cuda(ST(b));
#endif
    (void)b;
    return -1;
}

void *ops_graph_end(backend_t *b) {
#ifdef CISPO_HAVE_CUDA
    if (b->kind == BACKEND_CUDA) return graph_end_cuda(ST(b));
#endif
    (void)b;
    return NULL;
}

void ops_graph_launch(backend_t *b, void *graph) {
#ifdef CISPO_HAVE_CUDA
    if (b->kind == BACKEND_CUDA) {
        if (graph_launch_cuda(graph, ST(b))) {
            char what[512];
            snprintf(what, sizeof what, "CUDA graph launch: %s", cispo_last_error());
            cispo_die(__FILE__, __LINE__, what, "CUDA graph replay failed");
        }
        return;
    }
#endif
    (void)b, (void)graph;
    cispo_die(__FILE__, __LINE__, "ops_graph_launch", "this backend has no graphs (ops_graph_begin returned -1)");
}

void ops_graph_free(void *graph) {
#ifdef CISPO_HAVE_CUDA
    if (graph) graph_free_cuda(graph);
#else
    (void)graph;
#endif
}

// ---- optimizer ----
double sum_squares(backend_t *b, const void *g, int dtype, size_t n) {
#ifdef CISPO_HAVE_CUDA
    if (b->kind == BACKEND_CUDA) {
        size_t wsb = (size_t)1 << 16, mark = backend_ws_mark(b);
        void *ws = backend_ws_take(b, wsb);
        double r = 0;
        cuda_ok(sum_squares_cuda(&r, g, dtype, n, ws, wsb, ST(b)), OP_sum_squares);
        backend_ws_reset(b, mark);
        return r;
    }
#endif
    if (!CPU(b)) unsupported(b, OP_sum_squares);
    grads_f32(b, OP_sum_squares, dtype);
    return sum_squares_cpu(CF(g), n);
}

void scale_f32(backend_t *b, float *x, float s, size_t n) {
    ON_CUDA(scale_f32, scale_f32_cuda(x, s, n, ST(b)));
    if (!CPU(b)) unsupported(b, OP_scale_f32);
    scale_f32_cpu(x, s, n);
}

void adamw_step(backend_t *b, float *p, void *w_act, float *m, float *v, const void *g, int gdtype, float gscale,
                size_t n, float lr, float beta1, float beta2, float eps, float wd, int step) {
    ON_CUDA(adamw_step, adamw_step_cuda(p, w_act, DT(b), m, v, g, gdtype, gscale, n, lr, beta1, beta2, eps, wd, step,
                                        ST(b)));
    if (!CPU(b)) unsupported(b, OP_adamw_step);
    grads_f32(b, OP_adamw_step, gdtype);
    adamw_step_cpu(p, m, v, CF(g), gscale, n, lr, beta1, beta2, eps, wd, step);
    // fp32: the working copy is the master itself, or (the optimizer keeping a master shard apart) a copy of it
    if (w_act && w_act != (void *)p) memcpy(w_act, p, n * sizeof(float));
}
