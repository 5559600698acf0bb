// kernels/cuda/lightning.h — lightning attention on the GPU (sm_90a), callable from C.
// defines: lightning_forward_cuda, lightning_backward_cuda, lightning_decode_cuda, lightning_decode_slots_cuda,
//          lightning_decode_qkv_cuda, lightning_decode_qkv_gate_cuda,
//          lightning_workspace_bytes_cuda
//
// The same operator as lightning_*_cpu in kernels/ops.h (docs/model.md, lightning section): per head h
// S_t = lam_h S_{t-1} + k_t^T v_t, o_t = q_t S_t, lam_h = exp(-slopes[h]). The arguments are the CPU
// reference's, as device pointers, followed by what the GPU needs in addition:
//   T          total tokens (= cu_seqlens[nseq]; the host cannot read device memory cheaply),
//   tune       the context's tuning knobs (kernels/backend.h; NULL: the kernel chooses),
//   workspace  device scratch of lightning_workspace_bytes_cuda(T, nseq, H, D, tune) bytes (NULL if 0),
//   stream     the CUDA stream every kernel is queued on (0 = default stream).
// Types: q, k, v, o, dout, dq, dk, dv are bf16 ([T, H, D] token-major, passed as uint16_t so that C
// callers need no CUDA headers for them); states [nseq, H, D(key), D(value)] and slopes [H] fp32;
// cu_seqlens int32 [nseq + 1] on the device. D is 16, 32, 64 or 128 (16 and 32 through the 64-wide kernels on
// zero-padded copies in the workspace; the decode kernels take all four).
// `block` is the reference's chunk size; the result does not depend on it (only rounding does), and
// the kernels use their own tile of 64 tokens, so any block >= 1 is accepted.
// Differences from the CPU reference, both deliberate: the backward WRITES dq, dk, dv and dstate_in
// instead of accumulating into them (a bf16 gradient accumulated in place would be rounded twice and
// cost one more pass over memory), and every call is asynchronous on `stream`.
// Return: 0, or -1 with cispo_last_error() naming the bad argument or the CUDA error.
#ifndef CISPO_KERNELS_CUDA_LIGHTNING_H
#define CISPO_KERNELS_CUDA_LIGHTNING_H

#include <stddef.h>
#include <stdint.h>

#include <cuda_runtime_api.h>

#include "kernels/backend.h"  // backend_tuning_t

#ifdef __cplusplus
extern "C" {
#endif

// Scratch bytes that forward and backward need for these sizes (0 when the problem has enough heads
// and sequences to fill the GPU without splitting sequences into segments).
size_t lightning_workspace_bytes_cuda(int T, int nseq, int H, int D, const backend_tuning_t *tune);

// o [T,H,D] bf16; state_out [nseq,H,D,D] fp32 or NULL; state_in same or NULL (zeros).
int lightning_forward_cuda(uint16_t *o, float *state_out, const uint16_t *q, const uint16_t *k,
                           const uint16_t *v, const float *state_in, const float *slopes,
                           const int32_t *cu_seqlens, int nseq, int H, int D, int block, int T,
                           const backend_tuning_t *tune, void *workspace, size_t workspace_bytes,
                           cudaStream_t stream);

// dq, dk, dv [T,H,D] bf16 (written); dstate_in [nseq,H,D,D] fp32 or NULL (written); states are
// recomputed on the fly, nothing from the forward is needed except its inputs.
int lightning_backward_cuda(uint16_t *dq, uint16_t *dk, uint16_t *dv, float *dstate_in,
                            const uint16_t *dout, const uint16_t *q, const uint16_t *k, const uint16_t *v,
                            const float *state_in, const float *slopes, const int32_t *cu_seqlens, int nseq,
                            int H, int D, int block, int T, const backend_tuning_t *tune, void *workspace,
                            size_t workspace_bytes, cudaStream_t stream);

// One decode step for nseq sequences, one token each: state [nseq,H,D,D] fp32 updated in place,
// q, k, v, o [nseq,H,D] bf16.
int lightning_decode_cuda(uint16_t *o, float *state, const uint16_t *q, const uint16_t *k, const uint16_t *v,
                          const float *slopes, int nseq, int H, int D, cudaStream_t stream);
// The same on per-slot states: sequence i steps states + slot[i]*H*D*D (slot [nseq] int32, device).
int lightning_decode_slots_cuda(uint16_t *o, float *states, const int32_t *slot, const uint16_t *q, const uint16_t *k,
                                const uint16_t *v, const float *slopes, int nseq, int H, int D, cudaStream_t stream);
// The same from the q|k|v product (kernels/ops.h lightning_decode_qkv): rows ldq apart, act applied as loaded.
int lightning_decode_qkv_cuda(uint16_t *o, float *states, const int32_t *slot, const uint16_t *qkv, int ldq, int act,
                              const float *slopes, int nseq, int H, int D, cudaStream_t stream);
// lightning_decode_qkv_cuda and the output's norm and gate (kernels/ops.h lightning_decode_qkv_gate): for H <= 8
// one launch, a cluster of the H heads' CTAs a sequence; else lightning_decode_qkv_cuda, then
// rmsnorm_gate_forward_cuda.
int lightning_decode_qkv_gate_cuda(uint16_t *o, float *states, const int32_t *slot, const uint16_t *qkv, int ldq,
                                   int act, const float *slopes, int nseq, int H, int D, uint16_t *o_norm,
                                   uint16_t *gated, float *rstd, const uint16_t *w, const uint16_t *gate, int ldg,
                                   float eps, cudaStream_t stream);

#ifdef __cplusplus
}
#endif

#endif
