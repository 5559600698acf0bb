// kernels/cuda/lightning_decode.cu — one lightning-attention decode step for a batch of sequences.
// defines: lightning_decode_cuda, lightning_decode_slots_cuda
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
}
#include "kernels/cuda/lightning.h"
#include "kernels/cuda/pdl.cuh"

namespace {

template <int D>
__global__ void __launch_bounds__(256) lightning_decode_kernel(__nv_bfloat16 *o, float *state,
                                                               const __nv_bfloat16 *q, const __nv_bfloat16 *k,
                                                               const __nv_bfloat16 *v, const float *slopes, int H,
                                                               const int32_t *slot) {
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
    if (tid < D) {
        qs[tid] = __bfloat162float(q[vec + tid]);
        ks[tid] = __bfloat162float(k[vec + tid]);
    }
    float4 vv;
    vv.x = __bfloat162float(v[vec + 4 * cq]);
    vv.y = __bfloat162float(v[vec + 4 * cq + 1]);
    vv.z = __bfloat162float(v[vec + 4 * cq + 2]);
    vv.w = __bfloat162float(v[vec + 4 * cq + 3]);
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

static int launch(uint16_t *o, float *state, const int32_t *slot, const uint16_t *q, const uint16_t *k,
                  const uint16_t *v, const float *slopes, int nseq, int H, int D, cudaStream_t stream) {
    if (nseq < 1 || H < 1) return cispo_fail("lightning_decode_cuda: bad sizes nseq=%d H=%d (need >= 1)", nseq, H);
    if (D != 64 && D != 128) return cispo_fail("lightning_decode_cuda: head_dim D=%d is not supported (64 or 128)", D);
    if (!o || !state || !q || !k || !v || !slopes)
        return cispo_fail("lightning_decode_cuda: a required pointer argument is NULL");
    auto *ob = reinterpret_cast<__nv_bfloat16 *>(o);
    auto *qb = reinterpret_cast<const __nv_bfloat16 *>(q);
    auto *kb = reinterpret_cast<const __nv_bfloat16 *>(k);
    auto *vb = reinterpret_cast<const __nv_bfloat16 *>(v);
    const unsigned grid = (unsigned)nseq * (unsigned)H;
    PDL_CONFIG(cfg, grid, 256, 0, stream);
    cudaError_t e = D == 64 ? cudaLaunchKernelEx(&cfg, lightning_decode_kernel<64>, ob, state, qb, kb, vb, slopes, H, slot)
                            : cudaLaunchKernelEx(&cfg, lightning_decode_kernel<128>, ob, state, qb, kb, vb, slopes, H, slot);
    if (e != cudaSuccess) return cispo_fail("lightning_decode_cuda: CUDA error %s", cudaGetErrorString(e));
    return 0;
}

extern "C" int lightning_decode_cuda(uint16_t *o, float *state, const uint16_t *q, const uint16_t *k,
                                     const uint16_t *v, const float *slopes, int nseq, int H, int D,
                                     cudaStream_t stream) {
    return launch(o, state, NULL, q, k, v, slopes, nseq, H, D, stream);
}

extern "C" int lightning_decode_slots_cuda(uint16_t *o, float *states, const int32_t *slot, const uint16_t *q,
                                           const uint16_t *k, const uint16_t *v, const float *slopes, int nseq, int H,
                                           int D, cudaStream_t stream) {
    if (!slot) return cispo_fail("lightning_decode_slots_cuda: slot indices are NULL");
    return launch(o, states, slot, q, k, v, slopes, nseq, H, D, stream);
}
