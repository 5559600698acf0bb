// kernels/cpu/ops_cpu.h — the numerical ops, fp32 CPU reference (the specification and the test oracle).
// defines: matmul, embedding, rmsnorm, silu, sigmoid gate, swiglu, ACT2FN activations and their gated
//          form, rope, lightning attention,
//          softmax attention, MoE routing/dispatch/combine, fused LM head + log-prob, AdamW.
//
// Conventions (every op):
//  - row-major, fp32, contiguous; [T, ...] means token-major; shapes in the comments.
//  - packed variable-length sequences: cu_seqlens[nseq+1], cu_seqlens[0] = 0, cu_seqlens[nseq] = T.
//  - backward functions ACCUMULATE (+=) into every gradient they write (inputs and parameters);
//    callers zero gradients first. This makes residual branches and shared inputs compose.
//  - the op API (kernels/ops.h) dispatches `op(ctx, ...)` to `op_cpu` here or `op_cuda` in
//    kernels/cuda/; model code never calls these directly.
//  - CPU ops take their scratch from a per-thread arena (cpu_scratch_*) that grows to the largest
//    request and is reused: nothing is allocated per call in steady state; no state between calls.
#ifndef CISPO_KERNELS_CPU_OPS_CPU_H
#define CISPO_KERNELS_CPU_OPS_CPU_H

#include <stddef.h>
#include <stdint.h>

#include "kernels/ops.h"  // enum act_kind, the op API these implement

// ---- GEMM (OpenBLAS) ----
// C[M,N] = alpha * op(A) @ op(B) + beta * C; A is [M,K] (trans_a=0) or [K,M] (trans_a=1);
// B is [K,N] (trans_b=0) or [N,K] (trans_b=1). Linear layer y = x W^T: matmul(y, x, W, T, out, in, 0, 1, 1, 0).
void matmul_cpu(float *c, const float *a, const float *b, int m, int n, int k, int trans_a, int trans_b,
                float alpha, float beta);

// ---- embedding ----
void embedding_forward_cpu(float *out, const int32_t *ids, const float *table, int T, int C);   // out [T,C]
void embedding_backward_cpu(float *dtable, const float *dout, const int32_t *ids, int T, int C); // dtable [V,C]

// ---- RMSNorm: out = w * x / sqrt(mean(x^2) + eps); rstd [T] saved for backward ----
void rmsnorm_forward_cpu(float *out, float *rstd, const float *x, const float *w, int T, int C, float eps);
// rmsnorm_forward_cpu into out, then sigmoid_gate_forward_cpu(gated, g, out) row by row (g's rows ldg apart; out
// NULL: the norm's output is not kept)
void rmsnorm_gate_forward_cpu(float *out, float *gated, float *rstd, const float *x, const float *w, const float *g,
                              int ldg, int T, int C, float eps);
// residual_mix_cpu into x_out, then rmsnorm_forward_cpu of it into out
void residual_rmsnorm_cpu(float *x_out, float *out, float *rstd, const float *r, const float *y, float alpha,
                          float beta, const float *w, int T, int C, float eps);
// residual_rmsnorm_cpu, then logits = out wg^T (matmul_cpu) and moe_route_forward_cpu of them (kernels/cpu/moe.c);
// perm, offsets non-NULL: moe_dispatch_cpu's of those routes (moe_sort_cpu)
void residual_rmsnorm_route_cpu(float *x_out, float *out, float *rstd, const float *r, const float *y, float alpha,
                                float beta, const float *w, int T, int C, float eps, const float *wg, float *logits,
                                float *probs, int32_t *topk_idx, float *topk_w, int E, int K, int32_t *perm,
                                int32_t *offsets);
// moe_dispatch_cpu's perm and offsets without its rows: the slots' stable counting sort by expert
void moe_sort_cpu(int32_t *perm, int32_t *offsets, const int32_t *topk_idx, int T, int E, int K);
// rmsnorm_gate_forward_cpu's backward (ops.h rmsnorm_gate_backward): dx, dg [T, C] written, dw [C] accumulates
void rmsnorm_gate_backward_cpu(float *dx, float *dw, float *dg, const float *dgated, const float *x, const float *w,
                               const float *rstd, const float *g, int ldg, int T, int C);
void rmsnorm_backward_cpu(float *dx, float *dw, const float *dout, const float *x, const float *w,
                          const float *rstd, int T, int C);

// ---- elementwise ----
void silu_forward_cpu(float *out, const float *x, size_t n);                       // x * sigmoid(x)
void silu_backward_cpu(float *dx, const float *dout, const float *x, size_t n);
// out = sigmoid(g) * x
void sigmoid_gate_forward_cpu(float *out, const float *g, const float *x, size_t n);
void sigmoid_gate_backward_cpu(float *dg, float *dx, const float *dout, const float *g, const float *x, size_t n);
// SwiGLU on a fused [T, 2F] input h13 = [h1 | h3] (h1 = x W1^T, h3 = x W3^T): out[T,F] = silu(h1) * h3
void swiglu_forward_cpu(float *out, const float *h13, int T, int F);
void swiglu_backward_cpu(float *dh13, const float *dout, const float *h13, int T, int F);

// ---- the activations of transformers' ACT2FN without parameters (config hidden_act) ----
// Formulas as torch evaluates them in fp32 (kernels/cpu/activations.c lists each one).
// out = act(x); out may alias x.
void act_forward_cpu(int act, float *out, const float *x, size_t n);
// dx += dout * act'(x)
void act_backward_cpu(int act, float *dx, const float *dout, const float *x, size_t n);
// d = d * act'(x) in place (the products of act_backward_cpu, in its order)
void act_grad_scale_cpu(int act, float *d, const float *x, size_t n);
// Gated form on a fused [T, 2F] input h13 = [h1 | h3]: out[T,F] = act(h1) * h3 (ACT_SILU = SwiGLU);
// backward accumulates dh13 [T, 2F].
void glu_forward_cpu(int act, float *out, const float *h13, int T, int F);
void glu_backward_cpu(int act, float *dh13, const float *dout, const float *h13, int T, int F);

// ---- RoPE, NeoX rotate-half over the first R dims of each head (R even, R <= D), rest untouched ----
// x [T, nh, D]; pos [T] positions; inv_freq [R/2] (computed by the caller: model_rope_inv_freq follows
// transformers' rope types), pairs (i, i + R/2); scale multiplies cos and sin (transformers'
// attention_scaling: 1 except yarn / longrope).
// Numerics as HF: the angle pos*inv_freq is an fp32 product (its rounding is ~1e-2 rad at pos ~ 1e5,
// so it must match), cos/sin of that fp32 angle rounded to fp32, then times scale in fp32.
void rope_forward_cpu(float *out, const float *x, const int32_t *pos, int T, int nh, int D, int R,
                      const float *inv_freq, float scale);
void rope_backward_cpu(float *dx, const float *dout, const int32_t *pos, int T, int nh, int D, int R,
                       const float *inv_freq, float scale);

// ---- lightning attention (docs/model.md): per head S_t = lam S_{t-1} + k_t^T v_t, o_t = q_t S_t ----
// q, k, v, o [T, H, D]; slopes [H] with lam_h = exp(-slopes[h]); block = chunk size B (any B >= 1,
// need not divide a sequence's length). state_in [nseq, H, D(key), D(value)] or NULL (zeros);
// state_out same shape or NULL. Chunked form; no scale, no normalisation (the layer does those).
void lightning_forward_cpu(float *o, float *state_out, const float *q, const float *k, const float *v,
                           const float *state_in, const float *slopes, const int32_t *cu_seqlens, int nseq,
                           int H, int D, int block);
// dq, dk, dv [T,H,D] (accumulate); dstate_in [nseq,H,D,D] or NULL; states are recomputed, not stored.
void lightning_backward_cpu(float *dq, float *dk, float *dv, float *dstate_in, const float *dout,
                            const float *q, const float *k, const float *v, const float *state_in,
                            const float *slopes, const int32_t *cu_seqlens, int nseq, int H, int D, int block);
// One decode step for nseq sequences, one token each: state [nseq,H,D,D] updated in place,
// q, k, v, o [nseq, H, D].
// lightning_decode_cpu on per-slot states (sequence i steps states + slot[i] H D D) from the q|k|v product:
// sequence i's head h is [q | k | v] at qkv + i*ldq + h*3D, act applied (act < 0: none), as qkv_split makes them
void lightning_decode_qkv_cpu(float *o, float *states, const int32_t *slot, const float *qkv, int ldq, int act,
                              const float *slopes, int n, int H, int D);
// lightning_decode_qkv_cpu, then rmsnorm_gate_forward_cpu of o (the reference of lightning_decode_qkv_gate)
void lightning_decode_qkv_gate_cpu(float *o, float *states, const int32_t *slot, const float *qkv, int ldq, int act,
                                   const float *slopes, int n, int H, int D, float *o_norm, float *gated, float *rstd,
                                   const float *w, const float *gate, int ldg, float eps);
void lightning_decode_cpu(float *o, float *state, const float *q, const float *k, const float *v,
                          const float *slopes, int nseq, int H, int D);
// Oracles for tests: the per-token recurrence and the explicit ((Q K^T) o M) V form (same arguments
// as lightning_forward_cpu without block; explicit form needs state_in == NULL).
void lightning_forward_recurrent_cpu(float *o, float *state_out, const float *q, const float *k,
                                     const float *v, const float *state_in, const float *slopes,
                                     const int32_t *cu_seqlens, int nseq, int H, int D);
void lightning_forward_explicit_cpu(float *o, const float *q, const float *k, const float *v,
                                    const float *slopes, const int32_t *cu_seqlens, int nseq, int H, int D);

// ---- causal softmax attention with GQA over packed sequences ----
// q [T,H,D], k, v [T,KV,D], o [T,H,D]; query head j uses kv head j / (H/KV); scale 1/sqrt(D);
// lse [T,H] (log-sum-exp of the scaled scores) saved for backward. window: 0 = full causal; W >= 1 =
// sliding window, query i of a sequence sees keys j with 0 <= i - j < W (transformers'
// sliding_window_causal_mask: kv_idx > q_idx - W and kv_idx <= q_idx).
void attention_forward_cpu(float *o, float *lse, const float *q, const float *k, const float *v,
                           const int32_t *cu_seqlens, int nseq, int H, int KV, int D, int window);
void attention_backward_cpu(float *dq, float *dk, float *dv, const float *dout, const float *o,
                            const float *lse, const float *q, const float *k, const float *v,
                            const int32_t *cu_seqlens, int nseq, int H, int KV, int D, int window);

// ---- MoE routing ----
// logits [T,E] (= x Wg^T); probs [T,E] = softmax (fp32); topk_idx/topk_w [T,K]: the K largest
// probabilities (ties: lower expert index first), renormalised to sum 1. replay: topk_idx is given (K
// distinct experts per token) and the weights are its probabilities renormalised.
void moe_route_forward_cpu(float *probs, int32_t *topk_idx, float *topk_w, const float *logits, int T, int E,
                           int K, int replay);
// Load-balancing loss of one layer: E * sum_{slot,e} f[slot,e] * mean_t probs[t,e], f[slot,e] =
// fraction of tokens whose slot-th choice is e (f carries no gradient).
float moe_aux_loss_cpu(const float *probs, const int32_t *topk_idx, int T, int E, int K);
// dlogits [T,E] (accumulate) from dtopk_w [T,K] and the scalar gradient d_aux of the aux loss.
void moe_route_backward_cpu(float *dlogits, const float *dtopk_w, float d_aux, const float *probs,
                            const int32_t *topk_idx, const float *topk_w, int T, int E, int K);
// Dispatch: order the T*K token slots (slot s = t*K + k) by expert (stable). offsets[E+1] (row ranges
// per expert in the dispatched buffer), perm[T*K]: perm[j] = slot at dispatched row j;
// xe[T*K, C]: xe[j] = x[perm[j] / K].
void moe_dispatch_cpu(float *xe, int32_t *perm, int32_t *offsets, const float *x, const int32_t *topk_idx,
                      int T, int C, int E, int K);
void moe_dispatch_backward_cpu(float *dx, const float *dxe, const int32_t *perm, int T, int C, int K);
// Combine: y[t] += sum_k topk_w[t,k] * ye[row of slot t*K+k] (y accumulates).
void moe_combine_rmsnorm_cpu(float *x_out, float *out, float *rstd, const float *r, const float *ye,
                             const float *topk_w, const int32_t *perm, float alpha, float beta, const float *w, int T,
                             int C, int K, float eps);
void moe_combine_forward_cpu(float *y, const float *ye, const float *topk_w, const int32_t *perm, int T, int C,
                             int K);
void moe_combine_backward_cpu(float *dye, float *dtopk_w, const float *dy, const float *ye, const float *topk_w,
                              const int32_t *perm, int T, int C, int K);

// ---- fused LM head + log-softmax + per-token log-prob (never all [T,V] logits at once) ----
// x [T,C] final hidden, w [V,C]; targets [T] (-1: no target, logp = 0). Works in chunks of `chunk`
// tokens (chunk*V floats of scratch). Outputs: logp [T] = log softmax(x w^T)[target], lse [T],
// entropy [T] or NULL (entropy of the full distribution, for metrics).
void lmhead_logprob_forward_cpu(float *logp, float *lse, float *entropy, const float *x, const float *w,
                                const int32_t *targets, int T, int C, int V, int chunk);
// Given dlogp [T] = dLoss/dlogp_t, the logits gradient is dlogp_t * (onehot(target) - softmax(z_t));
// accumulates dx [T,C] and dw [V,C]. Cross-entropy (mean over n tokens) is dlogp = -1/n; CISPO is
// dlogp = -w*A/N_tokens (rl/loss).
void lmhead_logprob_backward_cpu(float *dx, float *dw, const float *dlogp, const float *x, const float *w,
                                 const int32_t *targets, const float *lse, int T, int C, int V, int chunk);

// ---- AdamW (decoupled weight decay), step counts from 1 ----
// p -= lr * (mhat / (sqrt(vhat) + eps) + wd * p), the gradient gscale * g (1: g itself)
void adamw_step_cpu(float *p, float *m, float *v, const float *g, float gscale, size_t n, float lr, float beta1,
                    float beta2, float eps, float wd, int step);

// One query of causal softmax attention against a paged KV cache (the query's own k, v already
// written). q, o [H, D]; kpool, vpool [n_blocks, block_size, KV, D]; blocks: the sequence's row of the
// block table (position p is pool row blocks[p / block_size] * block_size + p % block_size); len =
// positions the query sees (0..len-1). Same scale and GQA as above; window W >= 1: only the last W
// positions (0 = all).
void attention_decode_cpu(float *o, const float *q, const float *kpool, const float *vpool, const int32_t *blocks,
                          int len, int H, int KV, int D, int block_size, int window);

// ---- ops added with the op API (kernels/ops.h gives each contract; these are their fp32 references) ----
void grouped_matmul_cpu(float *c, int ldc, const float *a, int lda, const float *w, int trans_w,
                        const int32_t *offsets, int G, int n, int k, float beta);
void grouped_matmul_pair_cpu(float *c, int ldc, const float *a, int lda, const float *w, const float *v,
                             const int32_t *offsets, int G, int n, int k);
// gather non-NULL: A's row s is a's row gather[s] / gk
void grouped_matmul_glu_cpu(float *out, const float *a, int lda, const float *w, const float *v, const int32_t *offsets,
                            int G, int rows, int n, int k, int act, const int32_t *gather, int gk);
// acc = 0 (OP_WRITE): dw is written (zeros where no rows), else added to
void grouped_matmul_wgrad_cpu(float *dw, const float *dc, int lddc, const float *a, int lda, const int32_t *offsets,
                              int G, int n, int k, int acc);
void matmul_wgrad_cpu(float *dw, const float *dy, const float *x, int n_out, int n_in, int T, int acc);
void residual_mix_cpu(float *out, const float *r, const float *y, float alpha, float beta, size_t n);
void qkv_split_cpu(float *q, float *k, float *v, const float *qkv, int T, int H, int D, int act);
// dqkv = [dq | dk | dv] per head, then times act'(qkv) where act >= 0 (act_grad_scale_cpu)
void qkv_merge_cpu(float *dqkv, const float *dq, const float *dk, const float *dv, const float *qkv, int T, int H,
                   int D, int act);
void kv_write_cpu(float *kcache, float *vcache, const float *k, const float *v, const int32_t *slot,
                  const int32_t *pos, int T, int KVD, const int32_t *block_table, int max_blocks, int block_size);
// bf16 = 1: each logit rounded to bf16 (the output of a bf16 LM head; backend_tuning_t.lmhead_bf16)
void lmhead_logits_cpu(float *logits, const float *x, const float *w, int n, int C, int V, int bf16);
// kernels/ops.h sample_tokens with host memory (state [slots], indexed by slot[i])
void sample_tokens_cpu(int32_t *tok, float *logp, int32_t *done, sample_slot_t *state, const int32_t *slot,
                       const float *logits, int n, int V);
double sum_squares_cpu(const float *g, size_t n);
void scale_f32_cpu(float *x, float s, size_t n);

// ---- workspace of the CPU ops (kernels/cpu/scratch.c): a per-thread arena, reused across calls ----
typedef struct {
    void *block;
    size_t used;
} cpu_scratch_t;
cpu_scratch_t cpu_scratch_begin(void);   // remembers the arena's position
void *cpu_scratch_take(size_t bytes);    // 64-byte aligned, uninitialised
void cpu_scratch_end(cpu_scratch_t mark);  // gives back everything taken since the mark

#endif
