// kernels/cuda/ops_cuda.h — the CUDA implementations behind the op API (kernels/ops.h), callable
// from C. Each is the op's name with _cuda: the op's arguments as device pointers, the activation
// dtype (DTYPE_BF16, or DTYPE_F32 where an op also supports it), then what the GPU needs in addition
// (cuBLAS handle, workspace from the context's arena sized by the matching *_workspace_bytes_cuda,
// the stream). All are asynchronous on the stream unless they say otherwise, and return 0 or -1 with
// cispo_last_error() naming the bad argument or the CUDA error. kernels/ops.c dispatches to them.
// The semantics (shapes, formulas, write/accumulate) are the op API's; the CPU reference in
// kernels/cpu/ is the specification each is tested against (tests/test_backend_ops.c).
// defines: matmul_cuda, matmul_wgrad_cuda, grouped_matmul_cuda, grouped_matmul_pair_cuda, grouped_matmul_glu_cuda,
//          grouped_matmul_wgrad_cuda,
//          grouped_matmul_workspace_bytes_cuda, lmhead_logprob_forward_cuda, lmhead_logprob_backward_cuda,
//          lmhead_workspace_bytes_cuda, lmhead_logits_cuda, embedding_forward_cuda, embedding_backward_cuda, embedding_workspace_bytes_cuda,
//          rmsnorm_forward_cuda, rmsnorm_backward_cuda, rmsnorm_backward_workspace_bytes_cuda, residual_rmsnorm_cuda, residual_rmsnorm_route_cuda, rmsnorm_gate_forward_cuda, rmsnorm_gate_backward_cuda, residual_mix_cuda, act_forward_cuda, act_backward_cuda,
//          glu_forward_cuda, glu_backward_cuda, sigmoid_gate_forward_cuda, sigmoid_gate_backward_cuda,
//          qkv_split_cuda, qkv_merge_cuda, rope_forward_cuda, rope_backward_cuda, moe_route_forward_cuda,
//          moe_aux_loss_cuda, moe_route_backward_cuda, moe_dispatch_cuda, moe_dispatch_backward_cuda,
//          moe_combine_forward_cuda, moe_combine_backward_cuda, moe_row_of_cuda, moe_combine_rmsnorm_cuda, moe_workspace_bytes_cuda, kv_write_cuda,
//          sum_squares_cuda, scale_f32_cuda, adamw_step_cuda, attention_forward_cuda, attention_backward_cuda,
//          attention_decode_cuda, attention_workspace_bytes_cuda, sample_workspace_bytes_cuda, sample_tokens_cuda,
//          graph_begin_cuda, graph_end_cuda, graph_launch_cuda, graph_free_cuda, wgmma_ready_cuda
#ifndef CISPO_KERNELS_CUDA_OPS_CUDA_H
#define CISPO_KERNELS_CUDA_OPS_CUDA_H

#include <stddef.h>
#include <stdint.h>

#include <cuda_runtime_api.h>

#include "kernels/cuda/lightning.h"

#ifdef __cplusplus
extern "C" {
#endif

#include "kernels/ops.h"  // sample_slot_t

// ---- GEMMs (kernels/cuda/gemm.cu): cuBLAS, bf16 or fp32 inputs, fp32 accumulation ----
// skinny: backend_tuning_t.dense_skinny (a linear layer of at most that many rows through the wide-k tiles);
// wide: gg_skinny_wide (2: those tiles on a persistent grid)
int matmul_cuda(void *blas, void *c, const void *a, const void *bm, int m, int n, int k, int trans_a, int trans_b,
                float alpha, float beta, int dtype, int skinny, int wide, cudaStream_t st);
// dw in gdtype (DTYPE_F32 or DTYPE_BF16), as the other weight-gradient ops below
int matmul_wgrad_cuda(void *blas, void *dw, const void *dy, const void *x, int n_out, int n_in, int T, int acc,
                      int dtype, int gdtype, cudaStream_t st);
size_t grouped_matmul_workspace_bytes_cuda(int G, int rows, int n, int k);
// 1 where the kernels on Hopper's wgmma run (which: WGMMA_GEMM, the grouped expert GEMMs; WGMMA_ATTENTION,
// softmax attention at head dim 128): built for sm_90a, a compute-capability 9 card current, and not turned
// off by CISPO_NO_WGMMA in the environment (1: both; gemm or attention: those; the mma.sync kernels run
// instead, for comparison).
enum { WGMMA_GEMM = 0, WGMMA_ATTENTION = 1 };
int wgmma_ready_cuda(int which);
// wide: backend_tuning_t.gg_skinny_wide (decode-sized groups through the 32-k skinny tiles when -1, else the wide-k
// ones, on a persistent grid when 2)
int grouped_matmul_cuda(void *blas, void *c, int ldc, const void *a, int lda, const void *w, int trans_w,
                        const int32_t *offsets, int G, int rows, int n, int k, float beta, int dtype, int wide,
                        void *ws, size_t ws_bytes, cudaStream_t st);
int grouped_matmul_pair_cuda(void *c, int ldc, const void *a, int lda, const void *w, const void *v,
                             const int32_t *offsets, int G, int rows, int n, int k, int dtype, int wide,
                             cudaStream_t st);
int grouped_matmul_glu_cuda(void *out, const void *a, int lda, const void *w, const void *v, const int32_t *offsets,
                            int G, int rows, int n, int k, int act, const int32_t *gather, int gk, int dtype, int wide,
                            cudaStream_t st);
// inflight: the wgmma kernel's variant: 0 each k step waited for, 1 in flight a step (backend_tuning_t
// wg_wgrad_inflight), 2 the TMA loads (wg_wgrad_tma)
int grouped_matmul_wgrad_cuda(void *blas, void *dw, const void *dc, int lddc, const void *a, int lda,
                              const int32_t *offsets, int G, int rows, int n, int k, int acc, int dtype, int gdtype,
                              int inflight, void *ws, size_t ws_bytes, cudaStream_t st);

// ---- the fp32 LM head (kernels/cuda/lmhead.cu): chunks of tokens, logits never all at once ----
size_t lmhead_workspace_bytes_cuda(int T, int C, int V);
int lmhead_logprob_forward_cuda(void *blas, float *logp, float *lse, float *entropy, const void *x, const void *w,
                                const int32_t *targets, int T, int C, int V, int dtype, void *ws, size_t ws_bytes,
                                cudaStream_t st);
int lmhead_logprob_backward_cuda(void *blas, void *dx, void *dw, const float *dlogp, const void *x, const void *w,
                                 const int32_t *targets, const float *lse, int T, int C, int V, int acc, int dtype, int gdtype,
                                 void *ws, size_t ws_bytes, cudaStream_t st);
int lmhead_logits_cuda(void *blas, float *logits, const void *x, const void *w, int n, int C, int V, int bf16, int dtype,
                       cudaStream_t st);

// ---- elementwise, norms, RoPE, embedding (kernels/cuda/elementwise.cu, norm.cu, rope.cu) ----
int embedding_forward_cuda(void *out, const int32_t *ids, const void *table, int T, int C, int dtype, cudaStream_t st);
// gdtype bf16: the ids sorted (workspace: embedding_workspace_bytes_cuda), each id's rows summed in fp32 in
// token order and added once (deterministic); fp32: atomics, no workspace.
size_t embedding_workspace_bytes_cuda(int T);
int embedding_backward_cuda(void *dtable, const void *dout, const int32_t *ids, int T, int C, int pad_id, int dtype,
                            int gdtype, void *ws, size_t ws_bytes, cudaStream_t st);
int rmsnorm_gate_forward_cuda(void *out, void *gated, float *rstd, const void *x, const void *w, const void *g,
                              int ldg, int T, int C, float eps, int dtype, cudaStream_t st);
int residual_rmsnorm_cuda(void *x_out, void *out, float *rstd, const void *r, const void *y, float alpha, float beta,
                          const void *w, int T, int C, float eps, int dtype, cudaStream_t st);
int residual_rmsnorm_route_cuda(void *x_out, void *out, float *rstd, const void *r, const void *y, float alpha,
                                float beta, const void *w, int T, int C, float eps, const void *wg, void *logits,
                                float *probs, int32_t *topk_idx, float *topk_w, int E, int K, int32_t *perm,
                                int32_t *offsets, int32_t *count, int dtype, cudaStream_t st);
int rmsnorm_forward_cuda(void *out, float *rstd, const void *x, const void *w, int T, int C, float eps, int dtype,
                         cudaStream_t st);
// dw's sums over row splits go through ws when it holds them (rmsnorm_backward_workspace_bytes_cuda: the most
// it uses; less room, fewer splits; none, one split straight into dw)
int rmsnorm_backward_cuda(void *dx, void *dw, const void *dout, const void *x, const void *w, const float *rstd,
                          int T, int C, int acc, float acc_scale, void *ws, size_t ws_bytes, int dtype, int gdtype,
                          cudaStream_t st);
size_t rmsnorm_backward_workspace_bytes_cuda(int C);
// dx (may be NULL) and dg written, dw added to; ws as rmsnorm_backward_cuda's
int rmsnorm_gate_backward_cuda(void *dx, void *dw, void *dg, const void *dgated, const void *x, const void *w,
                               const float *rstd, const void *g, int ldg, int T, int C, void *ws, size_t ws_bytes,
                               int dtype, int gdtype, cudaStream_t st);
int residual_mix_cuda(void *out, const void *r, const void *y, float alpha, float beta, size_t n, int dtype,
                      cudaStream_t st);
int act_forward_cuda(int act, void *out, const void *x, size_t n, int dtype, cudaStream_t st);
int act_backward_cuda(int act, void *dx, const void *dout, const void *x, size_t n, int acc, int dtype, cudaStream_t st);
int glu_forward_cuda(int act, void *out, const void *h13, int T, int F, int dtype, cudaStream_t st);
int glu_backward_cuda(int act, void *dh13, const void *dout, const void *h13, int T, int F, int acc, int dtype,
                      cudaStream_t st);
int sigmoid_gate_forward_cuda(void *out, const void *g, const void *x, size_t n, int dtype, cudaStream_t st);
int sigmoid_gate_backward_cuda(void *dg, void *dx, const void *dout, const void *g, const void *x, size_t n, int acc,
                               int dtype, cudaStream_t st);
int qkv_split_cuda(void *q, void *k, void *v, const void *qkv, int T, int H, int D, int act, int dtype,
                   cudaStream_t st);
int qkv_merge_cuda(void *dqkv, const void *dq, const void *dk, const void *dv, const void *qkv, int T, int H, int D,
                   int act, int dtype, cudaStream_t st);
// inv_freq_host [R/2] is a host array (passed to the kernel by value or as a small upload on st).
int rope_forward_cuda(void *out, const void *x, const int32_t *pos, int T, int nh, int D, int R,
                      const float *inv_freq_host, float scale, int dtype, cudaStream_t st);
int rope_backward_cuda(void *dx, const void *dout, const int32_t *pos, int T, int nh, int D, int R,
                       const float *inv_freq_host, float scale, int acc, int dtype, cudaStream_t st);
// paged: pools [n_blocks, block_size, KVD], block_table [slots, max_blocks] (kernels/ops.h kv_write)
int kv_write_cuda(void *kcache, void *vcache, const void *k, const void *v, const int32_t *slot, const int32_t *pos,
                  int T, int KVD, const int32_t *block_table, int max_blocks, int block_size, int dtype, cudaStream_t st);

// ---- MoE routing, dispatch, combine (kernels/cuda/moe.cu) ----
size_t moe_workspace_bytes_cuda(int T, int E, int K);
int moe_route_forward_cuda(float *probs, int32_t *topk_idx, float *topk_w, const void *logits, int T, int E, int K,
                           int replay, int dtype, cudaStream_t st);
int moe_aux_loss_cuda(float *out, const float *probs, const int32_t *topk_idx, int T, int E, int K, void *ws,
                      size_t ws_bytes, cudaStream_t st);
int moe_route_backward_cuda(void *dlogits, const float *dtopk_w, float d_aux, const float *probs,
                            const int32_t *topk_idx, const float *topk_w, int T, int E, int K, int acc, int dtype,
                            void *ws, size_t ws_bytes, cudaStream_t st);
int moe_dispatch_cuda(void *xe, int32_t *perm, int32_t *offsets, const void *x, const int32_t *topk_idx, int T, int C,
                      int E, int K, int dtype, void *ws, size_t ws_bytes, cudaStream_t st);
int moe_dispatch_backward_cuda(void *dx, const void *dxe, const int32_t *perm, int T, int C, int K, int acc, int dtype,
                               void *ws, size_t ws_bytes, cudaStream_t st);
// row_of[perm[j]] = j for the n slots (the inverse of a dispatch's perm)
int moe_row_of_cuda(int32_t *row_of, const int32_t *perm, size_t n, cudaStream_t st);
// moe_combine_forward then residual_rmsnorm in one pass (kernels/cuda/norm.cu); ws: moe_workspace_bytes_cuda(T, 1, K)
int moe_combine_rmsnorm_cuda(void *x_out, void *out, float *rstd, const void *r, const void *ye, const float *topk_w,
                             const int32_t *perm, float alpha, float beta, const void *w, int T, int C, int K, float eps,
                             int dtype, void *ws, size_t ws_bytes, cudaStream_t st);
int moe_combine_forward_cuda(void *y, const void *ye, const float *topk_w, const int32_t *perm, int T, int C, int K,
                             int dtype, void *ws, size_t ws_bytes, cudaStream_t st);
int moe_combine_backward_cuda(void *dye, float *dtopk_w, const void *dy, const void *ye, const float *topk_w,
                              const int32_t *perm, int T, int C, int K, int acc, int dtype, void *ws, size_t ws_bytes,
                              cudaStream_t st);

// ---- optimizer (kernels/cuda/optim.cu), fp32 tensors, gradients in gdtype (fp32 or bf16) ----
// *result (host) = sum of squares in double; synchronises the stream.
int sum_squares_cuda(double *result, const void *g, int gdtype, size_t n, void *ws, size_t ws_bytes, cudaStream_t st);
int scale_f32_cuda(float *x, float s, size_t n, cudaStream_t st);
// w_act (dtype) refreshed from the updated p in the same pass; NULL = none.
// The gradient is gscale * g (one fp32 product, as scale_f32 then the step).
int adamw_step_cuda(float *p, void *w_act, int dtype, float *m, float *v, const void *g, int gdtype, float gscale,
                    size_t n, float lr, float beta1, float beta2, float eps, float wd, int step, cudaStream_t st);

// ---- softmax attention (kernels/cuda/attention.cu): causal GQA over packed sequences ----
// cu_seqlens device, cu_host its host copy; max_len the longest sequence (launch sizes).
size_t attention_workspace_bytes_cuda(int T, int nseq, int H, int KV, int D);
int attention_forward_cuda(void *o, float *lse, const void *q, const void *k, const void *v, const int32_t *cu_seqlens,
                           const int32_t *cu_host, int nseq, int T, int max_len, int H, int KV, int D, int window,
                           int dtype, const backend_tuning_t *tune, void *ws, size_t ws_bytes, cudaStream_t st);
int attention_backward_cuda(void *dq, void *dk, void *dv, const void *dout, const void *o, const float *lse,
                            const void *q, const void *k, const void *v, const int32_t *cu_seqlens,
                            const int32_t *cu_host, int nseq, int T, int max_len, int H, int KV, int D, int window,
                            int acc, int dtype, const backend_tuning_t *tune, void *ws, size_t ws_bytes,
                            cudaStream_t st);
// paged KV cache as kv_write_cuda; n queries, query i over positions [0, len[i]) of slot[i]
int attention_decode_cuda(void *o, const void *q, const void *kcache, const void *vcache, const int32_t *slot,
                          const int32_t *len, int n, int H, int KV, int D, const int32_t *block_table, int max_blocks,
                          int block_size, int window, int dtype, cudaStream_t st);

// ---- CUDA graphs (kernels/cuda/graph.cu): stream capture, instantiate, replay ----
int graph_begin_cuda(cudaStream_t st);
void *graph_end_cuda(cudaStream_t st);  // NULL when the capture failed (error cleared, message set)
int graph_launch_cuda(void *graph, cudaStream_t st);
void graph_free_cuda(void *graph);

// ---- sampling (kernels/cuda/sample.cu): a cluster of CTAs a row, fp32 logits, state in device memory ----
// cluster: backend_tuning_t.sample_cluster (0: by the rows and V; 1, 2, 4 or 8 CTAs a row)
size_t sample_workspace_bytes_cuda(int n, int V);
int sample_tokens_cuda(int32_t *tok, float *logp, int32_t *done, sample_slot_t *state, const int32_t *slot,
                       const float *logits, int n, int V, int cluster, void *ws, size_t ws_bytes, cudaStream_t st);

#ifdef __cplusplus
}
#endif

#endif
