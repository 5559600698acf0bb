// kernels/ops.h — the op API: every numerical operation of the model, the loss and the optimizer,
// called as op(ctx, ...) on a backend context (kernels/backend.h) and dispatched to the backend's
// implementation: op_cpu (kernels/cpu/, the fp32 reference and specification) or op_cuda
// (kernels/cuda/). model/, rl/ and trainer/ call only these.
// defines: act_kind, op_id_t, op_seqs_t, op_ws_shape_t, op_name, backend_supports, ops_workspace_bytes, OP_WRITE, OP_ACCUMULATE,
//          matmul, matmul_wgrad, grouped_matmul, grouped_matmul_pair, grouped_matmul_glu, grouped_matmul_wgrad,
//          embedding_forward,
//          embedding_backward, rmsnorm_forward, rmsnorm_backward, residual_rmsnorm, residual_rmsnorm_route,
//          rmsnorm_gate_forward, rmsnorm_gate_backward,
//          residual_mix, act_forward,
//          act_backward, glu_forward, glu_backward, sigmoid_gate_forward, sigmoid_gate_backward,
//          qkv_split, qkv_merge, rope_forward, rope_backward, lightning_forward, lightning_backward,
//          lightning_slopes, lightning_workspace_bytes, lightning_decode, lightning_decode_qkv,
//          lightning_decode_qkv_gate, attention_forward, attention_backward, kv_write, attention_decode,
//          moe_route_forward, moe_aux_loss, moe_route_backward, moe_dispatch, moe_dispatch_backward,
//          moe_combine_forward, moe_combine_rmsnorm, moe_combine_backward, lmhead_logprob_forward, lmhead_logprob_backward,
//          lmhead_logits, sample_slot_t, sample_uniform, sample_tokens, SAMPLE_DONE_*, sum_squares,
//          scale_f32, adamw_step, ops_graph_begin, ops_graph_end, ops_graph_launch, ops_graph_free
//
// One contract for every backend:
//  - shapes and layout as the CPU reference (kernels/cpu/ops_cpu.h): row-major, contiguous,
//    token-major [T, ...]; packed sequences described by op_seqs_t.
//  - dtypes: "act" tensors (activations, their gradients, the weights' working copy, KV caches) are
//    in ctx->act_dtype; tensors declared float are always fp32 (statistics: rstd, lse, router
//    probabilities and weights; lightning states and slopes; parameter gradients; log-probs).
//    Integer tensors are int32. All pointers are in the context's memory unless marked _host.
//  - backward ops take `acc`: OP_WRITE overwrites the input gradients they produce, OP_ACCUMULATE
//    adds to them. Parameter gradients (fp32) always accumulate, so micro-batches compose.
//  - ops are asynchronous on ctx->stream; an op that returns a host value says so and synchronises.
//  - scratch comes from the context's workspace (backend.h), never from an allocation per call.
//  - backend_supports(ctx, op, dtype) says whether an op runs on a backend in a dtype; calling an
//    unsupported op aborts with a message naming the op, backend and dtype.
#ifndef CISPO_KERNELS_OPS_H
#define CISPO_KERNELS_OPS_H

#include <stddef.h>
#include <stdint.h>

#include "kernels/backend.h"

// ---- the activations of transformers' ACT2FN without parameters (config hidden_act) ----
// Formulas as torch evaluates them in fp32 (kernels/cpu/activations.c lists each one).
enum act_kind {
    ACT_SILU = 0,      // silu, swish: x sigmoid(x)
    ACT_GELU,          // gelu, gelu_python: x/2 (1 + erf(x/sqrt 2))
    ACT_GELU_TANH,     // gelu_new, gelu_pytorch_tanh, gelu_python_tanh, gelu_accurate, gelu_fast
    ACT_GELU_10,       // gelu_10: clip(gelu(x), -10, 10)
    ACT_QUICK_GELU,    // quick_gelu: x sigmoid(1.702 x)
    ACT_RELU,          // relu
    ACT_RELU2,         // relu2: relu(x)^2
    ACT_RELU6,         // relu6: min(max(x, 0), 6)
    ACT_LEAKY_RELU,    // leaky_relu: negative slope 0.01 (nn.LeakyReLU default)
    ACT_SIGMOID,       // sigmoid
    ACT_TANH,          // tanh
    ACT_LINEAR,        // linear: identity
    ACT_MISH,          // mish: x tanh(softplus(x))
    ACT_LAPLACE,       // laplace: (1 + erf((x - 0.707107) / (0.282095 sqrt 2))) / 2
    ACT_HARDSWISH,     // hardswish: x relu6(x + 3) / 6
    ACT_SQRTSOFTPLUS,  // sqrtsoftplus: sqrt(softplus(x)) (softplus threshold 20)
    ACT_COUNT
};

#define OP_WRITE 0
#define OP_ACCUMULATE 1

// Every op, for backend_supports and the op tests.
#define CISPO_OPS(X)                                                                                   \
    X(matmul) X(matmul_wgrad) X(grouped_matmul) X(grouped_matmul_pair) X(grouped_matmul_glu)            \
    X(grouped_matmul_wgrad)                                                                            \
    X(embedding_forward) X(embedding_backward) X(rmsnorm_forward) X(rmsnorm_backward)                  \
    X(residual_rmsnorm) X(residual_rmsnorm_route) X(rmsnorm_gate_forward) X(rmsnorm_gate_backward)      \
    X(residual_mix)                                                                                    \
    X(act_forward)                                                                                     \
    X(act_backward) X(glu_forward) X(glu_backward) X(sigmoid_gate_forward) X(sigmoid_gate_backward)    \
    X(qkv_split) X(qkv_merge) X(rope_forward) X(rope_backward) X(lightning_forward)                    \
    X(lightning_backward) X(lightning_decode) X(lightning_decode_qkv) X(lightning_decode_qkv_gate)       \
    X(attention_forward)                                                                               \
    X(attention_backward) X(kv_write)                                                                  \
    X(attention_decode) X(moe_route_forward) X(moe_aux_loss) X(moe_route_backward) X(moe_dispatch)     \
    X(moe_dispatch_backward) X(moe_combine_forward) X(moe_combine_rmsnorm) X(moe_combine_backward)     \
    X(lmhead_logprob_forward)                                                                          \
    X(lmhead_logprob_backward) X(lmhead_logits) X(sample_tokens) X(sum_squares) X(scale_f32) X(adamw_step)
#define CISPO_OP_ENUM(name) OP_##name,
typedef enum { CISPO_OPS(CISPO_OP_ENUM) OP_COUNT } op_id_t;
#undef CISPO_OP_ENUM

const char *op_name(int op);
int backend_supports(const backend_t *b, int op, int dtype);

// Workspace bytes of the largest op of a model batch (0 on the CPU): T tokens in nseq sequences,
// hidden C, vocabulary V, heads H, KV, D, experts E, K, F. The model reserves it before a step.
typedef struct {
    int T, nseq, C, V, H, KV, D, E, K, F;
} op_ws_shape_t;
size_t ops_workspace_bytes(const backend_t *b, const op_ws_shape_t *s);

// Packed variable-length sequences: sequence s is tokens cu[s]..cu[s+1]) (empty sequences allowed).
typedef struct {
    const int32_t *cu;       // [nseq + 1] in the context's memory
    const int32_t *cu_host;  // the same on the host (launch sizes, per-sequence loops)
    int nseq, T;             // T = cu[nseq]
    int max_len;             // longest sequence
} op_seqs_t;

// ---- GEMM ----
// C[M,N] = alpha * op(A) @ op(B) + beta * C (act dtype; fp32 accumulation). A is [M,K] (trans_a=0)
// or [K,M]; B is [K,N] (trans_b=0) or [N,K]. Linear layer y = x W^T: matmul(b, y, x, W, T, out, in, 0, 1, 1, 0).
void matmul(backend_t *b, void *c, const void *a, const void *bm, int m, int n, int k, int trans_a, int trans_b,
            float alpha, float beta);
// Weight gradient of a linear layer y = x W^T: dW[n_out, n_in] += dy[T, n_out]^T x[T, n_in] (dW in
// b->grad_dtype, like every parameter gradient an op writes: fp32 accumulation, one rounding as bf16 dW is
// added to); acc = OP_WRITE: dW = ... instead (zeros when T = 0), the first backward after
// model_zero_grad_deferred.
void matmul_wgrad(backend_t *b, void *dw, const void *dy, const void *x, int n_out, int n_in, int T, int acc);
// Grouped GEMM over row groups (the experts of an MoE layer): for g < G, rows r in
// [offsets[g], offsets[g+1]) (offsets int32 [G+1], offsets[G] = rows):
//   C[r, 0:n] = beta * C[r, 0:n] + A[r, 0:k] @ W_g^T,   W_g = w + g*n*k, [n, k] row-major
// (trans_w = 0: W_g is [k, n] and multiplies as is). Row strides lda, ldc (elements).
void grouped_matmul(backend_t *b, void *c, int ldc, const void *a, int lda, const void *w, int trans_w,
                    const int32_t *offsets, int G, int rows, int n, int k, float beta);
// Two grouped GEMMs of the same rows in one (an MoE layer's W1 and W3: the [h1 | h3] rows the gated
// activation reads): C[r, 0:n] = A[r, 0:k] @ W_g^T and C[r, n:2n] = A[r, 0:k] @ V_g^T, W_g = w + g*n*k and
// V_g = v + g*n*k both [n, k]; ldc >= 2n. The same values as grouped_matmul on each half (beta 0).
void grouped_matmul_pair(backend_t *b, void *c, int ldc, const void *a, int lda, const void *w, const void *v,
                         const int32_t *offsets, int G, int rows, int n, int k);
// out [rows, n] = act(h1) * h3 with [h1 | h3] what grouped_matmul_pair gives (rounded to the activation dtype as
// it stores them): the pair and glu_forward in one, no [h1 | h3] rows in memory (decode; backend_tuning_t
// decode_fused). On CUDA A, W and V need 16-byte aligned rows (lda and k multiples of 8). gather non-NULL: row s
// of A is a's row gather[s] / gk (moe_dispatch's rows without their copy: gather = perm, gk = K), else a's row s.
void grouped_matmul_glu(backend_t *b, void *out, const void *a, int lda, const void *w, const void *v,
                        const int32_t *offsets, int G, int rows, int n, int k, int act, const int32_t *gather, int gk);
// dW_g [n, k] += dC_g^T A_g for every group (dW in b->grad_dtype): the weight gradient of the above
// (trans_w = 1). acc = OP_WRITE: dW_g = ... for every group instead (zeros for a group without rows).
void grouped_matmul_wgrad(backend_t *b, void *dw, const void *dc, int lddc, const void *a, int lda,
                          const int32_t *offsets, int G, int rows, int n, int k, int acc);

// ---- embedding ----
void embedding_forward(backend_t *b, void *out, const int32_t *ids, const void *table, int T, int C);
// dtable [V,C] (b->grad_dtype) += rows of dout at each id; rows whose id is pad_id get nothing
// (transformers' padding_idx; -1 = no pad row). In bf16 the rows of one id are summed in fp32 first.
void embedding_backward(backend_t *b, void *dtable, const void *dout, const int32_t *ids, int T, int C,
                        int pad_id);

// ---- RMSNorm: out = w * x / sqrt(mean(x^2) + eps); rstd [T] fp32 saved for backward ----
void rmsnorm_forward(backend_t *b, void *out, float *rstd, const void *x, const void *w, int T, int C, float eps);
// dw (b->grad_dtype) += the norm weight's gradient, dx per acc; either may be NULL. With OP_ACCUMULATE, dx =
// acc_scale * dx + the input's gradient in one pass (a decoder layer's residual factor alpha on the gradient that
// passes the branch: 1 adds).
void rmsnorm_backward(backend_t *b, void *dx, void *dw, const void *dout, const void *x, const void *w,
                      const float *rstd, int T, int C, int acc, float acc_scale);
// residual_mix then rmsnorm_forward in one pass, as a decoder layer joins a branch and normalises for
// the next: x_out [T, C] = alpha * r + beta * y (r may be NULL, as residual_mix; x_out must not alias r or
// y), out = rmsnorm(x_out) * w with rstd. The same values as the two ops (the norm reads x_out as stored).
void residual_rmsnorm(backend_t *b, void *x_out, void *out, float *rstd, const void *r, const void *y, float alpha,
                      float beta, const void *w, int T, int C, float eps);
// residual_rmsnorm, then the MoE router of its output in the same pass, as a decode step's post-attention norm
// feeds the router: logits [T, E] = out wg^T (wg [E, C]; matmul's, rounded to the activation dtype), then
// moe_route_forward of them (probs, topk_idx, topk_w; not replayed). The same values as the three ops but for the
// order of the logits' fp32 sums (one launch instead of three: backend_tuning_t.decode_route). perm and offsets
// (may be NULL): moe_dispatch's of those routes too, without its rows (the gated product gathers them:
// grouped_matmul_glu's gather; backend_tuning_t.decode_sort); count: one int32 of the context's memory that holds 0
// (the CUDA kernel's CTAs count themselves there, the last sorts and sets it back to 0; unused on the CPU).
void residual_rmsnorm_route(backend_t *b, void *x_out, void *out, float *rstd, const void *r, const void *y,
                            float alpha, float beta, const void *w, int T, int C, float eps, const void *wg,
                            void *logits, float *probs, int32_t *topk_idx, float *topk_w, int E, int K, int32_t *perm,
                            int32_t *offsets, int32_t *count);
// rmsnorm_forward then sigmoid_gate_forward in one pass, as the lightning layer's output gate reads its
// norm: out = rmsnorm(x) * w with rstd, gated = sigmoid(g) * out as stored (rounded to the activation dtype);
// out may be NULL (not kept: rmsnorm_gate_backward recomputes it); g's rows are ldg >= C elements apart (C:
// contiguous; more: the gate columns of a wider product's rows).
void rmsnorm_gate_forward(backend_t *b, void *out, void *gated, float *rstd, const void *x, const void *w,
                          const void *g, int ldg, int T, int C, float eps);
// Its backward from dgated [T, C]: dg [T, C] = dgated * y * s (1 - s) and the norm's backward of dy = dgated * s
// (s = sigmoid(g), y = rmsnorm(x) * w recomputed in fp32 from x and rstd, not read): dx and dg written, dw (b->
// grad_dtype) added to; dx or dw may be NULL. One pass where sigmoid_gate_backward then rmsnorm_backward take two.
void rmsnorm_gate_backward(backend_t *b, void *dx, void *dw, void *dg, const void *dgated, const void *x,
                           const void *w, const float *rstd, const void *g, int ldg, int T, int C);

// ---- elementwise ----
// out = alpha * r + beta * y (r NULL: out = beta * y); out may alias r or y. The residual mixes
// of a decoder layer and their backward.
void residual_mix(backend_t *b, void *out, const void *r, const void *y, float alpha, float beta, size_t n);
void act_forward(backend_t *b, int act, void *out, const void *x, size_t n);                // out may alias x
void act_backward(backend_t *b, int act, void *dx, const void *dout, const void *x, size_t n, int acc);
// gated form on h13 [T, 2F] = [h1 | h3]: out [T, F] = act(h1) * h3
void glu_forward(backend_t *b, int act, void *out, const void *h13, int T, int F);
void glu_backward(backend_t *b, int act, void *dh13, const void *dout, const void *h13, int T, int F, int acc);
// out = sigmoid(g) * x
void sigmoid_gate_forward(backend_t *b, void *out, const void *g, const void *x, size_t n);
void sigmoid_gate_backward(backend_t *b, void *dg, void *dx, const void *dout, const void *g, const void *x,
                           size_t n, int acc);
// qkv [T, H, 3D] (per head [q | k | v]) -> q, k, v [T, H, D], each element through act_forward's act on the
// way (act < 0: copied as it is). qkv_merge is its backward (writes): dqkv = [dq | dk | dv] per head times act'(qkv)
// (act_backward's derivative, one rounding; act < 0: the plain transpose, qkv not read).
void qkv_split(backend_t *b, void *q, void *k, void *v, const void *qkv, int T, int H, int D, int act);
void qkv_merge(backend_t *b, void *dqkv, const void *dq, const void *dk, const void *dv, const void *qkv, int T, int H,
               int D, int act);

// ---- RoPE, NeoX rotate-half over the first R dims of each head; x, out [T, nh, D], pos [T] ----
// inv_freq_host [R/2] on the host (model_rope_inv_freq computes it); scale multiplies cos and sin.
void rope_forward(backend_t *b, void *out, const void *x, const int32_t *pos, int T, int nh, int D, int R,
                  const float *inv_freq_host, float scale);
void rope_backward(backend_t *b, void *dx, const void *dout, const int32_t *pos, int T, int nh, int D, int R,
                   const float *inv_freq_host, float scale, int acc);

// ---- lightning attention (docs/model.md): per head S_t = lam S_{t-1} + k_t^T v_t, o_t = q_t S_t ----
// q, k, v, o [T, H, D] act; slopes [H] fp32 (lam_h = exp(-slopes[h])); states [nseq, H, D, D] fp32
// or NULL (zeros in / not wanted out); block: the reference's chunk size (any B >= 1).
void lightning_forward(backend_t *b, void *o, float *state_out, const void *q, const void *k, const void *v,
                       const float *state_in, const float *slopes, const op_seqs_t *seqs, int H, int D, int block);
void lightning_backward(backend_t *b, void *dq, void *dk, void *dv, float *dstate_in, const void *dout,
                        const void *q, const void *k, const void *v, const float *state_in, const float *slopes,
                        const op_seqs_t *seqs, int H, int D, int block, int acc);
// MiniMax slope of head h (0-based) in layer l of N: 2^(-8(h+1)/H) * factor(l) where factor is
// 1 - l/(N-1+1e-5) + 1e-5 (HF flavour, original=0) or 1 - l/(N-1) + 1e-5 (original flavour, N > 1).
// For H not a power of two the original flavour follows its code's interleaved ALiBi-style list.
void lightning_slopes(float *slopes, int H, int layer, int n_layers, int original_flavour);
// Workspace bytes lightning_forward/backward take from the context for such a batch (0 on the CPU):
// the caller reserves it (backend_ws_reserve) before the step.
size_t lightning_workspace_bytes(const backend_t *b, int T, int nseq, int H, int D);
// One decode step for n sequences, one token each: sequence i updates the state
// states + slot[i] * H*D*D (fp32, in place); q, k, v, o [n, H, D].
void lightning_decode(backend_t *b, void *o, float *states, const int32_t *slot, const void *q, const void *k,
                      const void *v, const float *slopes, int n, int H, int D);
// lightning_decode on qkv_split's input: sequence i's q, k, v of head h are act of qkv + i*ldq + h*3D + {0, D,
// 2D} (D each; act < 0: none), rounded as qkv_split stores them (the lightning layer's q|k|v product, whose
// rows may hold more columns: ldq >= 3 H D). The same results as qkv_split then lightning_decode, one launch.
void lightning_decode_qkv(backend_t *b, void *o, float *states, const int32_t *slot, const void *qkv, int ldq,
                          int act, const float *slopes, int n, int H, int D);
// lightning_decode_qkv, then rmsnorm_gate_forward of its output o [n, H D] (o_norm = rmsnorm(o) * w with rstd [n],
// gated = sigmoid(gate) * o_norm as stored; gate's rows ldg apart; o_norm may be NULL): the lightning layer's decode
// step up to its output projection. On CUDA one launch for H <= 8 (a cluster of the H heads' CTAs a sequence sums
// the row's squares; the norm's sum in another order than rmsnorm_gate_forward's), else the two ops.
void lightning_decode_qkv_gate(backend_t *b, void *o, float *states, const int32_t *slot, const void *qkv, int ldq,
                               int act, const float *slopes, int n, int H, int D, void *o_norm, void *gated,
                               float *rstd, const void *w, const void *gate, int ldg, float eps);

// ---- causal softmax attention with GQA over packed sequences ----
// q [T,H,D], k, v [T,KV,D], o [T,H,D]; scale 1/sqrt(D); lse [T,H] fp32; window 0 = full causal,
// W >= 1 = query i sees keys j with 0 <= i - j < W.
void attention_forward(backend_t *b, void *o, float *lse, const void *q, const void *k, const void *v,
                       const op_seqs_t *seqs, int H, int KV, int D, int window);
void attention_backward(backend_t *b, void *dq, void *dk, void *dv, const void *dout, const void *o,
                        const float *lse, const void *q, const void *k, const void *v, const op_seqs_t *seqs,
                        int H, int KV, int D, int window, int acc);
// Paged KV cache of one layer: kcache, vcache are pools [n_blocks, block_size, KV*D] shared by all
// slots; block_table [slots, max_blocks] int32 maps slot s's positions [b*block_size, (b+1)*block_size)
// to pool block block_table[s*max_blocks + b] (docs/model.md "Inference with caches"). Position p of slot s is row
// block_table[s*max_blocks + p/block_size]*block_size + p%block_size of the pool.
// kv_write: token t's k, v rows [T, KVD] go to (slot[t], pos[t]); its block must be mapped.
void kv_write(backend_t *b, void *kcache, void *vcache, const void *k, const void *v, const int32_t *slot,
              const int32_t *pos, int T, int KVD, const int32_t *block_table, int max_blocks, int block_size);
// Query i (of n; q, o [n, H, D]) attends over positions [0, len[i]) of slot slot[i]'s paged cache (the
// last `window` of them when window >= 1). Decode passes one query per sequence (len = cached length
// with the new token); a prefill chunk that continues a cache passes every token of the chunk with
// len = its position + 1 (causal), after kv_write put the chunk's keys and values in place.
void attention_decode(backend_t *b, void *o, const void *q, const void *kcache, const void *vcache,
                      const int32_t *slot, const int32_t *len, int n, int H, int KV, int D,
                      const int32_t *block_table, int max_blocks, int block_size, int window);

// ---- MoE ----
// logits [T,E] act -> probs [T,E] fp32 softmax; topk_idx [T,K] int32, topk_w [T,K] fp32 renormalised
// (ties: lower expert index first). replay != 0: topk_idx is an input (K distinct experts per token, e.g.
// the routes another forward chose: model.h route_replay) and only probs and topk_w are written.
void moe_route_forward(backend_t *b, float *probs, int32_t *topk_idx, float *topk_w, const void *logits, int T,
                       int E, int K, int replay);
// *out (one fp32 in the context's memory) = the layer's load-balancing loss (ops_cpu.h formula).
void moe_aux_loss(backend_t *b, float *out, const float *probs, const int32_t *topk_idx, int T, int E, int K);
// dlogits [T,E] act from dtopk_w [T,K] fp32 and the aux loss's scalar gradient d_aux.
void moe_route_backward(backend_t *b, void *dlogits, const float *dtopk_w, float d_aux, const float *probs,
                        const int32_t *topk_idx, const float *topk_w, int T, int E, int K, int acc);
// slots s = t*K + k ordered by expert (stable): offsets [E+1], perm [T*K] (dispatched row -> slot),
// xe [T*K, C] = x[perm[j] / K].
void moe_dispatch(backend_t *b, void *xe, int32_t *perm, int32_t *offsets, const void *x, const int32_t *topk_idx,
                  int T, int C, int E, int K);
void moe_dispatch_backward(backend_t *b, void *dx, const void *dxe, const int32_t *perm, int T, int C, int K,
                           int acc);
// y [T,C] = sum_k topk_w[t,k] * ye[row of slot t*K+k] (writes y).
void moe_combine_forward(backend_t *b, void *y, const void *ye, const float *topk_w, const int32_t *perm, int T,
                         int C, int K);
// moe_combine_forward then residual_rmsnorm in one pass, as the MoE branch joins the residual stream:
// x_out = alpha * r + beta * y with y the combine above (r may be NULL; y as moe_combine_forward stores it),
// out = rmsnorm(x_out) * w with rstd. The same values as the two ops; y itself is not written.
void moe_combine_rmsnorm(backend_t *b, void *x_out, void *out, float *rstd, const void *r, const void *ye,
                         const float *topk_w, const int32_t *perm, float alpha, float beta, const void *w, int T,
                         int C, int K, float eps);
// dye [T*K, C] (per acc), dtopk_w [T,K] fp32 (per acc).
void moe_combine_backward(backend_t *b, void *dye, float *dtopk_w, const void *dy, const void *ye,
                          const float *topk_w, const int32_t *perm, int T, int C, int K, int acc);

// ---- the LM head in fp32: log-softmax, per-token log-prob, entropy, never all [T,V] logits ----
// x [T,C], w [V,C] act; targets [T] int32 (-1: none, logp 0); logp, lse [T] fp32; entropy [T] or NULL.
void lmhead_logprob_forward(backend_t *b, float *logp, float *lse, float *entropy, const void *x, const void *w,
                            const int32_t *targets, int T, int C, int V);
// dlogp [T] fp32 = dLoss/dlogp; dx [T,C] per acc; dw [V,C] (b->grad_dtype) accumulates.
void lmhead_logprob_backward(backend_t *b, void *dx, void *dw, const float *dlogp, const void *x, const void *w,
                             const int32_t *targets, const float *lse, int T, int C, int V, int acc);
// logits [n, V] fp32 = x [n,C] w^T (fp32 accumulation): the sampler's input.
void lmhead_logits(backend_t *b, float *logits, const void *x, const void *w, int n, int C, int V);

// ---- sampling on the device: the rollout's next tokens without bringing logits to the host ----
// Per-slot sampling parameters and stop state (an array in the context's memory, one per slot).
typedef struct {
    uint64_t seed;        // the sequence's generator: draw j is sample_uniform(seed, j)
    double temperature;   // > 0 (<= 0 is taken as 1)
    double top_p;         // (0, 1]; 1 = off
    double rep_p;         // repetition early-truncation: a run of tokens of probability > rep_p ...
    int32_t rep_n;        // ... rep_n long stops the sequence (0 = off)
    int32_t top_k;        // 0 = off
    int32_t greedy;       // argmax (ties: lowest id), no draw
    int32_t tempered_logp;  // *logp under softmax(z / temperature) (1) or softmax(z) (0)
    int32_t eos_id;       // -1: none
    int32_t max_new;      // length budget (tokens sampled)
    int32_t n_gen;        // state: tokens sampled so far (the draw counter)
    int32_t run;          // state: current run of tokens with probability > rep_p
} sample_slot_t;
// done codes of sample_tokens (rl/rollout.h's stop reason + 1; 0 = the sequence continues)
#define SAMPLE_DONE_EOS 1
#define SAMPLE_DONE_LENGTH 2
#define SAMPLE_DONE_REPETITION 4
// The counter-based uniform in [0, 1) of draw `step` of generator `seed` (a hash, no state: the same
// on every backend, whatever else is in the batch).
double sample_uniform(uint64_t seed, uint64_t step);
// Row i of logits [n, V] (fp32, the LM head's) picks sequence slot[i]'s next token with state[slot[i]]
// (rl/sampler.h's rule: tempered softmax, then top-k, then top-p over the top-k renormalised, kept
// tokens ordered by probability then id, inverse CDF of u = sample_uniform(seed, n_gen) over that
// order; without truncation over ids in order; greedy = argmax). Writes tok[i], logp[i] (log pi of
// the token in double, rounded: tempered or not per the slot) and done[i] (EOS, then repetition
// with pi = exp(logp), then the length budget; SAMPLE_DONE_*), and advances n_gen and run.
void sample_tokens(backend_t *b, int32_t *tok, float *logp, int32_t *done, sample_slot_t *state, const int32_t *slot,
                   const float *logits, int n, int V);

// ---- CUDA graphs: a run of ops captured once and replayed with one launch (CUDA backend only) ----
// ops_graph_begin starts capturing the context's stream (returns -1 where the backend has no
// graphs: the CPU); the ops called until ops_graph_end are recorded, not run. Captured ops must not
// read the host or upload (stage their inputs first); their pointers and launch sizes are frozen,
// so a replay sees the device contents at launch time. ops_graph_end returns the executable graph, or
// NULL when the capture failed (the error is cleared; run the ops directly instead).
int ops_graph_begin(backend_t *b);
void *ops_graph_end(backend_t *b);
void ops_graph_launch(backend_t *b, void *graph);
void ops_graph_free(void *graph);

// ---- optimizer (fp32 tensors; gradients in the dtype named) ----
// sum of squares of g [n] (dtype: DTYPE_F32, or DTYPE_BF16 on CUDA) in double, returned on the host
// (synchronises).
double sum_squares(backend_t *b, const void *g, int dtype, size_t n);
void scale_f32(backend_t *b, float *x, float s, size_t n);
// AdamW, decoupled weight decay, step counts from 1: p -= lr * (mhat / (sqrt(vhat) + eps) + wd * p), the
// gradient being gscale * g (fp32 product: the clip's factor, 1 without; g in gdtype as sum_squares).
// w_act: the working copy of p in act dtype refreshed in the same pass (NULL when act dtype is fp32
// and the working copy is p itself; in fp32 a buffer apart from p gets p's new values).
void adamw_step(backend_t *b, float *p, void *w_act, float *m, float *v, const void *g, int gdtype, float gscale,
                size_t n, float lr, float beta1, float beta2, float eps, float wd, int step);

#endif
