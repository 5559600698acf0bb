// kernels/cuda/lightning_decode.cu — one lightning-attention decode step for a batch of sequences.
// defines: lightning_decode_cuda, lightning_decode_slots_cuda, lightning_decode_qkv_cuda
//
// Per (sequence, head): S = lam S + k^T v, o = q S, with S [D, D] fp32 in device memory, read once
// and written once. That is 8 D^2 bytes against 4 D^2 FLOPs, so the step is bound by memory
// bandwidth; the kernel only has to stream the state with 16-byte accesses and enough loads in flight.
// One CTA of 256 threads per (sequence, head): D/4 threads cover a row of S with float4s, the other
// factor of the 256 splits the rows into groups whose partial q S sums meet in shared memory.
// With slot indices (device memory), sequence i steps the state of slot slot[i] in place: the
// engine's per-slot states need no gather and no host read of the indices. Launched with PDL
// (kernels/cuda/pdl.cuh): the state rows are loaded before the wait, overlapping the kernel before, since no
// kernel writes a state or the slot indices between two steps of a layer (only this one writes its states).
#include <cuda_bf16.h>
#include <cuda_runtime.h>

extern "C" {
#include "base/common.h" // C header without C++ guards
#include "kernels/ops.h"
}
#include "kernels/act_eval.h"
#include "kernels/cuda/lightning.h"
#include "kernels/cuda/pdl.cuh"

namespace {

// An element of q, k or v as the step reads it: as stored, or (QKV) act of the q|k|v product's element rounded
// to bf16 as qkv_split stores it (act < 0: none).
template <bool QKV>
__device__ __forceinline__ float qkv_load(const __nv_bfloat16 *p, int act) {
    const float x = __bfloat162float(*p);
    if (!QKV || act < 0) return x;
    return __bfloat162float(__float2bfloat16(act_eval(act, x, NULL)));
}

// QKV: q points at the q|k|v product (rows ldq apart, head h's [q | k | v] at h * 3D), k and v unused.
template <int D, bool QKV>
__global__ void __launch_bounds__(256) lightning_decode_kernel(__nv_bfloat16 *o, float *state,
                                                               const __nv_bfloat16 *q, const __nv_bfloat16 *k,
                                                               const __nv_bfloat16 *v, const float *slopes, int H,
                                                               const int32_t *slot, int ldq, int act) {
    constexpr int TPR = D / 4;        // threads per row
    constexpr int RG = 256 / TPR;     // row groups
    constexpr int RPG = D / RG;       // rows per group
    __shared__ float qs[D], ks[D];
    __shared__ float part[RG][D];
    const int sh = blockIdx.x, h = sh % H, tid = threadIdx.x;
    const size_t vec = (size_t)sh * D; // q, k, v, o are [nseq, H, D]
    const int cq = tid % TPR, rg = tid / TPR;
    const float lam = __expf(-slopes[h]);
    const size_t sidx = slot ? (size_t)slot[sh / H] * H + h : (size_t)sh;
    float4 *S = reinterpret_cast<float4 *>(state + sidx * D * D) + cq;
    float4 s[RPG];
#pragma unroll
    for (int i = 0; i < RPG; i++) s[i] = S[(size_t)(rg * RPG + i) * TPR];
    pdl_wait();  // q, k and v are the kernel's before
    pdl_trigger();
    const __nv_bfloat16 *qr, *kr, *vr;  // this (sequence, head)'s rows
    if (QKV) {
        qr = q + (size_t)(sh / H) * ldq + (size_t)h * 3 * D;
        kr = qr + D, vr = qr + 2 * D;
    } else {
        qr = q + vec, kr = k + vec, vr = v + vec;
    }
    if (tid < D) {
        qs[tid] = qkv_load<QKV>(qr + tid, act);
        ks[tid] = qkv_load<QKV>(kr + tid, act);
    }
    float4 vv;
    vv.x = qkv_load<QKV>(vr + 4 * cq, act);
    vv.y = qkv_load<QKV>(vr + 4 * cq + 1, act);
    vv.z = qkv_load<QKV>(vr + 4 * cq + 2, act);
    vv.w = qkv_load<QKV>(vr + 4 * cq + 3, act);
    __syncthreads();
    float4 acc = make_float4(0.f, 0.f, 0.f, 0.f);
#pragma unroll
    for (int i = 0; i < RPG; i++) {
        const int row = rg * RPG + i;
        const float kr = ks[row], qr = qs[row];
        float4 x = s[i];
        x.x = lam * x.x + kr * vv.x;
        x.y = lam * x.y + kr * vv.y;
        x.z = lam * x.z + kr * vv.z;
        x.w = lam * x.w + kr * vv.w;
        S[(size_t)row * TPR] = x;
        acc.x += qr * x.x;
        acc.y += qr * x.y;
        acc.z += qr * x.z;
        acc.w += qr * x.w;
    }
    *reinterpret_cast<float4 *>(&part[rg][4 * cq]) = acc;
    __syncthreads();
    if (tid < D) {
        float sum = 0.f;
#pragma unroll
        for (int r = 0; r < RG; r++) sum += part[r][tid];
        o[vec + tid] = __float2bfloat16_rn(sum);
    }
}

} // namespace

// ldq > 0: q is the q|k|v product (lightning_decode_qkv), k and v unused
static int launch(uint16_t *o, float *state, const int32_t *slot, const uint16_t *q, const uint16_t *k,
                  const uint16_t *v, const float *slopes, int nseq, int H, int D, int ldq, int act,
                  cudaStream_t stream) {
    const char *fn = ldq ? "lightning_decode_qkv_cuda" : slot ? "lightning_decode_slots_cuda" : "lightning_decode_cuda";
    if (nseq < 1 || H < 1) return cispo_fail("%s: bad sizes nseq=%d H=%d (need >= 1)", fn, nseq, H);
    if (D != 64 && D != 128) return cispo_fail("%s: head_dim D=%d is not supported (64 or 128)", fn, D);
    if (!o || !state || !q || (!ldq && (!k || !v)) || !slopes)
        return cispo_fail("%s: a required pointer argument is NULL", fn);
    if (ldq && ldq < 3 * H * D) return cispo_fail("%s: ldq %d < 3 H D = %d", fn, ldq, 3 * H * D);
    auto *ob = reinterpret_cast<__nv_bfloat16 *>(o);
    auto *qb = reinterpret_cast<const __nv_bfloat16 *>(q);
    auto *kb = reinterpret_cast<const __nv_bfloat16 *>(k);
    auto *vb = reinterpret_cast<const __nv_bfloat16 *>(v);
    const unsigned grid = (unsigned)nseq * (unsigned)H;
    PDL_CONFIG(cfg, grid, 256, 0, stream);
    void (*kern)(__nv_bfloat16 *, float *, const __nv_bfloat16 *, const __nv_bfloat16 *, const __nv_bfloat16 *,
                 const float *, int, const int32_t *, int, int) =
        D == 64 ? (ldq ? lightning_decode_kernel<64, true> : lightning_decode_kernel<64, false>)
                : (ldq ? lightning_decode_kernel<128, true> : lightning_decode_kernel<128, false>);
    cudaError_t e = cudaLaunchKernelEx(&cfg, kern, ob, state, qb, kb, vb, slopes, H, slot, ldq, act);
    if (e != cudaSuccess) return cispo_fail("%s: CUDA error %s", fn, cudaGetErrorString(e));
    return 0;
}

extern "C" int lightning_decode_cuda(uint16_t *o, float *state, const uint16_t *q, const uint16_t *k,
                                     const uint16_t *v, const float *slopes, int nseq, int H, int D,
                                     cudaStream_t stream) {
    return launch(o, state, NULL, q, k, v, slopes, nseq, H, D, 0, -1, stream);
}

extern "C" int lightning_decode_slots_cuda(uint16_t *o, float *states, const int32_t *slot, const uint16_t *q,
                                           const uint16_t *k, const uint16_t *v, const float *slopes, int nseq, int H,
                                           int D, cudaStream_t stream) {
    if (!slot) return cispo_fail("lightning_decode_slots_cuda: slot indices are NULL");
    return launch(o, states, slot, q, k, v, slopes, nseq, H, D, 0, -1, stream);
}

extern "C" int lightning_decode_qkv_cuda(uint16_t *o, float *states, const int32_t *slot, const uint16_t *qkv, int ldq,
                                         int act, const float *slopes, int nseq, int H, int D, cudaStream_t stream) {
    if (!slot) return cispo_fail("lightning_decode_qkv_cuda: slot indices are NULL");
    if (ldq < 1) return cispo_fail("lightning_decode_qkv_cuda: ldq %d < 1", ldq);
    return launch(o, states, slot, qkv, NULL, NULL, slopes, nseq, H, D, ldq, act, stream);
}
