// kernels/cuda/lightning_decode.cu — one lightning-attention decode step for a batch of sequences.
// defines: lightning_decode_cuda, lightning_decode_slots_cuda, lightning_decode_qkv_cuda, lightning_decode_qkv_gate_cuda
//
// Per (sequence, head): S = lam S + k^T v, o = q S, with S [D, D] fp32 in device memory, read once
// and written once. That is 8 D^2 bytes against 4 D^2 FLOPs, so the step is bound by memory
// bandwidth; the kernel only has to stream the state with 16-byte accesses and enough loads in flight.
// One CTA per (sequence, head) of dec_threads(D) threads (256; D^2/4 when fewer, at D 16): D/4 threads cover a
// row of S with float4s, the other factor splits the rows into groups whose partial q S sums meet in shared memory.
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
#include "kernels/cuda/cluster.cuh"
#include "kernels/cuda/lightning.h"
#include "kernels/cuda/pdl.cuh"
#include "kernels/cuda/ops_cuda.h"

namespace {

// threads a CTA: 256, or one float4 of S each when S has fewer (D 16: 64)
__host__ __device__ constexpr int dec_threads(int D) { return D * D / 4 < 256 ? D * D / 4 : 256; }

// An element of q, k or v as the step reads it: as stored, or (QKV) act of the q|k|v product's element rounded
// to bf16 as qkv_split stores it (act < 0: none).
template <bool QKV>
__device__ __forceinline__ float qkv_load(const __nv_bfloat16 *p, int act) {
    const float x = __bfloat162float(*p);
    if (!QKV || act < 0) return x;
    return __bfloat162float(__float2bfloat16(act_eval(act, x, NULL)));
}

// The output's norm and gate (lightning_decode_qkv_gate): o_norm = rmsnorm(o) * w over the H D of a sequence's row,
// gated = sigmoid(gate) * o_norm as stored (gate's rows ldg apart).
struct GateArgs {
    __nv_bfloat16 *o_norm, *gated;
    float *rstd;
    const __nv_bfloat16 *w, *gate;
    int ldg;
    float eps;
};

// QKV: q points at the q|k|v product (rows ldq apart, head h's [q | k | v] at h * 3D), k and v unused.
// GATE (with QKV): launched in clusters of the H heads' CTAs of a sequence (rank h), the output's norm and gate too
// (GateArgs): each head's sum of squares of o as stored, the row's as their sum in head order through distributed
// shared memory, then rmsnorm_gate_forward's formula on the head's D elements.
template <int D, bool QKV, bool GATE = false>
__global__ void __launch_bounds__(dec_threads(D)) lightning_decode_kernel(__nv_bfloat16 *o, float *state,
                                                               const __nv_bfloat16 *q, const __nv_bfloat16 *k,
                                                               const __nv_bfloat16 *v, const float *slopes, int H,
                                                               const int32_t *slot, int ldq, int act,
                                                               const GateArgs ga) {
    constexpr int TPR = D / 4;                // threads per row
    constexpr int RG = dec_threads(D) / TPR;  // row groups
    constexpr int RPG = D / RG;       // rows per group
    __shared__ float qs[D], ks[D];
    __shared__ float part[RG][D];
    __shared__ float ssq[(D + 31) / 32], cx;  // GATE (D 64 and 128): the warps' sums of squares, the head's
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
    float ov = 0.f;  // this thread's element of o as stored
    if (tid < D) {
        float sum = 0.f;
#pragma unroll
        for (int r = 0; r < RG; r++) sum += part[r][tid];
        const __nv_bfloat16 ob = __float2bfloat16_rn(sum);
        o[vec + tid] = ob;
        ov = __bfloat162float(ob);
    }
    if constexpr (GATE) {
        float sq = ov * ov;
#pragma unroll
        for (int off = 16; off > 0; off >>= 1) sq += __shfl_xor_sync(0xffffffffu, sq, off);
        if (tid < D && tid % 32 == 0) ssq[tid / 32] = sq;
        __syncthreads();
        if (tid == 0) {
            float t = 0.f;
#pragma unroll
            for (int w = 0; w < D / 32; w++) t += ssq[w];
            cx = t;
        }
        cl_sync();
        if (tid < D) {
            float tot = 0.f;  // the row's, in head order: the same bits in every CTA of the cluster
            for (unsigned r = 0; r < cl_size(); r++) tot += cl_load_f32(&cx, r);
            const int C = H * D;
            const float rs = (float)(1.0 / sqrt((double)tot / C + (double)ga.eps));
            const size_t row = (size_t)(sh / H), at = row * C + (size_t)h * D + tid;
            if (h == 0 && tid == 0) ga.rstd[row] = rs;
            const __nv_bfloat16 yb = __float2bfloat16_rn(__bfloat162float(ga.w[h * D + tid]) * (ov * rs));
            if (ga.o_norm) ga.o_norm[at] = yb;
            const float g = __bfloat162float(ga.gate[row * ga.ldg + (size_t)h * D + tid]);
            ga.gated[at] = __float2bfloat16_rn(1.0f / (1.0f + expf(-g)) * __bfloat162float(yb));
        }
        cl_sync();  // no CTA leaves while another may still read its cx
    }
}

} // namespace

// ldq > 0: q is the q|k|v product (lightning_decode_qkv), k and v unused
static int launch(uint16_t *o, float *state, const int32_t *slot, const uint16_t *q, const uint16_t *k,
                  const uint16_t *v, const float *slopes, int nseq, int H, int D, int ldq, int act,
                  cudaStream_t stream) {
    const char *fn = ldq ? "lightning_decode_qkv_cuda" : slot ? "lightning_decode_slots_cuda" : "lightning_decode_cuda";
    if (nseq < 1 || H < 1) return cispo_fail("%s: bad sizes nseq=%d H=%d (need >= 1)", fn, nseq, H);
    if (D != 16 && D != 32 && D != 64 && D != 128)
        return cispo_fail("%s: head_dim D=%d is not supported (16, 32, 64 or 128)", fn, D);
    if (!o || !state || !q || (!ldq && (!k || !v)) || !slopes)
        return cispo_fail("%s: a required pointer argument is NULL", fn);
    if (ldq && ldq < 3 * H * D) return cispo_fail("%s: ldq %d < 3 H D = %d", fn, ldq, 3 * H * D);
    auto *ob = reinterpret_cast<__nv_bfloat16 *>(o);
    auto *qb = reinterpret_cast<const __nv_bfloat16 *>(q);
    auto *kb = reinterpret_cast<const __nv_bfloat16 *>(k);
    auto *vb = reinterpret_cast<const __nv_bfloat16 *>(v);
    const unsigned grid = (unsigned)nseq * (unsigned)H;
    PDL_CONFIG(cfg, grid, dec_threads(D), 0, stream);
    void (*kern)(__nv_bfloat16 *, float *, const __nv_bfloat16 *, const __nv_bfloat16 *, const __nv_bfloat16 *,
                 const float *, int, const int32_t *, int, int, const GateArgs) =
        D == 16   ? (ldq ? lightning_decode_kernel<16, true> : lightning_decode_kernel<16, false>)
        : D == 32 ? (ldq ? lightning_decode_kernel<32, true> : lightning_decode_kernel<32, false>)
        : D == 64 ? (ldq ? lightning_decode_kernel<64, true> : lightning_decode_kernel<64, false>)
                  : (ldq ? lightning_decode_kernel<128, true> : lightning_decode_kernel<128, false>);
    cudaError_t e = cudaLaunchKernelEx(&cfg, kern, ob, state, qb, kb, vb, slopes, H, slot, ldq, act, GateArgs{});
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

extern "C" int lightning_decode_qkv_gate_cuda(uint16_t *o, float *states, const int32_t *slot, const uint16_t *qkv,
                                              int ldq, int act, const float *slopes, int nseq, int H, int D,
                                              uint16_t *o_norm, uint16_t *gated, float *rstd, const uint16_t *w,
                                              const uint16_t *gate, int ldg, float eps, cudaStream_t stream) {
    const char *fn = "lightning_decode_qkv_gate_cuda";
    if (nseq < 1 || H < 1 || ldq < 3 * H * D || ldg < H * D)
        return cispo_fail("%s: bad sizes nseq=%d H=%d ldq=%d ldg=%d (D=%d)", fn, nseq, H, ldq, ldg, D);
    if (H > 8 || (D != 64 && D != 128)) {  // beyond a portable cluster (or the kernel's head widths): the two ops
        if (lightning_decode_qkv_cuda(o, states, slot, qkv, ldq, act, slopes, nseq, H, D, stream)) return -1;
        return rmsnorm_gate_forward_cuda(o_norm, gated, rstd, o, w, gate, ldg, nseq, H * D, eps, DTYPE_BF16, stream);
    }
    if (!o || !states || !slot || !qkv || !slopes || !gated || !rstd || !w || !gate)
        return cispo_fail("%s: a required pointer argument is NULL", fn);
    const GateArgs ga = {reinterpret_cast<__nv_bfloat16 *>(o_norm), reinterpret_cast<__nv_bfloat16 *>(gated), rstd,
                         reinterpret_cast<const __nv_bfloat16 *>(w), reinterpret_cast<const __nv_bfloat16 *>(gate), ldg,
                         eps};
    cudaLaunchAttribute attr[2];
    cudaLaunchConfig_t cfg = {};
    cfg.gridDim = dim3((unsigned)nseq * (unsigned)H), cfg.blockDim = dim3(256), cfg.dynamicSmemBytes = 0;
    cfg.stream = stream;
    attr[0].id = cudaLaunchAttributeProgrammaticStreamSerialization;  // kernels/cuda/pdl.cuh
    attr[0].val.programmaticStreamSerializationAllowed = pdl_enabled();
    attr[1].id = cudaLaunchAttributeClusterDimension;  // one sequence's heads
    attr[1].val.clusterDim.x = (unsigned)H, attr[1].val.clusterDim.y = 1, attr[1].val.clusterDim.z = 1;
    cfg.attrs = attr, cfg.numAttrs = 2;
    auto *ob = reinterpret_cast<__nv_bfloat16 *>(o);
    auto *qb = reinterpret_cast<const __nv_bfloat16 *>(qkv);
    cudaError_t e = D == 64 ? cudaLaunchKernelEx(&cfg, lightning_decode_kernel<64, true, true>, ob, states, qb, qb, qb,
                                                 slopes, H, slot, ldq, act, ga)
                            : cudaLaunchKernelEx(&cfg, lightning_decode_kernel<128, true, true>, ob, states, qb, qb, qb,
                                                 slopes, H, slot, ldq, act, ga);
    if (e != cudaSuccess) return cispo_fail("%s: CUDA error %s", fn, cudaGetErrorString(e));
    return 0;
}
