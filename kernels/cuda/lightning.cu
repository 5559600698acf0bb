// kernels/cuda/lightning.cu — host entry points of lightning attention on the GPU.
// defines: lightning_workspace_bytes_cuda, lightning_forward_cuda, lightning_backward_cuda
//
// Both directions are passes of one chunked scan kernel (lightning_scan.cuh says which roles q, k,
// v and dout play in each pass). A pass either runs one CTA per (sequence, head, value block), or,
// when that is too few CTAs to fill the GPU, splits sequences into segments: state pass, segment
// scan, output pass (the workspace holds one D x D fp32 state per segment and head). Head widths 16 and 32
// run through the D = 64 kernels on zero-padded copies (below).
#include <cuda_runtime.h>
#include <stdlib.h>

extern "C" {
#include "base/common.h" // C header without C++ guards
}
#include "kernels/cuda/backend_cuda.h"
#include "kernels/cuda/lightning.h"
#include "kernels/cuda/lightning_scan.cuh"

using namespace lightning;

namespace {

// The calling context's prof_skip knob for the passes of the current call (benchmarks only).
thread_local int prof_skip_now = 0;

// Chunks per segment, or 0 for "do not segment". Unsegmented work is one CTA (8 warps, a whole
// multiprocessor's registers) per (sequence, head, value block). Segmenting costs a state pass (b
// and c read once more), so it pays only when the GPU would otherwise idle: measured on H100
// (bench/NOTES.md), H=64 D=128 (128 CTAs) ran faster unsegmented, H=8 (16 CTAs) 4-6x faster
// segmented. Below 3/4 of a CTA per multiprocessor, cut each sequence into the number of segments
// that fills one wave (a partial second wave costs a full one), at least 4 chunks each.
// The context's tuning knob lightning_cps overrides the choice (-1: never segment), for benchmarks.
int choose_cps(int T, int nseq, int H, int D, const backend_tuning_t *tune) {
    const long ncb = D / DVB, sms = backend_cuda_sm_count();
    const long chunks = (long)(T + LT - 1) / LT, base = (long)nseq * H * ncb;
    long cps;
    if (tune && tune->lightning_cps) {
        cps = tune->lightning_cps;
    } else {
        if (4 * base >= 3 * sms) return 0;
        long nseg = sms / base;
        long per_seq = (chunks + nseq - 1) / nseq;
        cps = (per_seq + nseg - 1) / nseg;
        if (cps < 4) cps = 4;
    }
    if (cps <= 0 || cps * LT >= T) return 0; // one segment per sequence anyway
    return (int)cps;
}

size_t seg_bytes(int T, int nseq, int H, int D, int cps) {
    if (!cps) return 0;
    size_t slots = (size_t)(T / (cps * LT)) + (size_t)nseq;
    return slots * (size_t)H * D * D * sizeof(float);
}

int check_launch(const char *what) {
    cudaError_t e = cudaGetLastError();
    if (e != cudaSuccess) return cispo_fail("lightning %s: CUDA error %s", what, cudaGetErrorString(e));
    return 0;
}

template <int D, bool REV, bool STATE_ONLY>
int launch_scan(const LightningScanArgs &p, int slots, cudaStream_t st) {
    constexpr int smem = lightning_scan_smem_bytes<D, STATE_ONLY>();
    auto kern = lightning_scan_kernel<D, REV, STATE_ONLY>;
    static bool attr_set = false; // per template instance; the attribute is per function
    if (!attr_set) {
        if (cudaFuncSetAttribute(kern, cudaFuncAttributeMaxDynamicSharedMemorySize, smem) != cudaSuccess)
            return check_launch("cudaFuncSetAttribute");
        attr_set = true;
    }
    kern<<<dim3(slots * (D / DVB), p.H), scan_threads<STATE_ONLY>(), smem, st>>>(p);
    return check_launch("scan kernel launch");
}

// One pass out = op(a, b, c) (lightning_scan.cuh), S0 = init (transposed if init_t), final state
// (times lam if out_decay) to state_out.
template <int D, bool REV>
int run_pass(const __nv_bfloat16 *a, const __nv_bfloat16 *b, const __nv_bfloat16 *c, __nv_bfloat16 *out,
             const float *init, int init_t, float *state_out, int out_decay, const float *slopes,
             const int32_t *cu, int nseq, int H, int T, int cps, float *ws, cudaStream_t st) {
    LightningScanArgs p = {};
    p.a = a; p.b = b; p.c = c; p.out = out;
    p.slopes = slopes; p.cu = cu; p.nseq = nseq; p.H = H;
    p.state_out = state_out; p.state_out_decay = out_decay;
    p.prof_skip = prof_skip_now; // benchmarks only: see LightningScanArgs
    if (cps) {
        const int slots = T / (cps * LT) + nseq;
        p.cps = cps; p.seg = ws;
        if (launch_scan<D, REV, true>(p, slots, st)) return -1;
        lightning_segscan_kernel<<<dim3(nseq, H, D * D / 1024), 256, 0, st>>>(ws, init, init_t, slopes, cu, H, D,
                                                                             cps * LT);
        if (check_launch("segment scan launch")) return -1;
        p.segmented = 1;
        return launch_scan<D, REV, false>(p, slots, st);
    }
    p.cps = T / LT + 2; // one segment longer than any sequence
    p.init = init; p.init_transposed = init_t;
    return launch_scan<D, REV, false>(p, nseq, st);
}

int check_args(const char *fn, int nseq, int H, int D, int block, int T, const void *const *ptrs, int nptrs,
               size_t ws_bytes, const void *ws, size_t need) {
    if (nseq < 1 || H < 1 || T < 0 || block < 1)
        return cispo_fail("%s: bad sizes nseq=%d H=%d T=%d block=%d (need nseq >= 1, H >= 1, T >= 0, block >= 1)",
                          fn, nseq, H, T, block);
    if (D != 16 && D != 32 && D != 64 && D != 128)
        return cispo_fail("%s: head_dim D=%d is not supported (16, 32, 64 or 128)", fn, D);
    for (int i = 0; i < nptrs; i++)
        if (!ptrs[i]) return cispo_fail("%s: required pointer argument %d is NULL", fn, i);
    if (need && (!ws || ws_bytes < need))
        return cispo_fail("%s: workspace of %zu bytes is too small, need %zu (lightning_workspace_bytes_cuda)", fn,
                          ws_bytes, need);
    return 0;
}

const __nv_bfloat16 *bf(const uint16_t *x) { return reinterpret_cast<const __nv_bfloat16 *>(x); }
__nv_bfloat16 *bf(uint16_t *x) { return reinterpret_cast<__nv_bfloat16 *>(x); }

// ---- head widths below 64 ----
// D 16 and 32 run through the D = 64 kernels on copies zero-padded to PD = 64 columns, the states to PD x PD: q.k,
// k^T v and every product with a state only gain zero terms, so each output's padded columns (and a state's padded
// rows and columns) come out zero and the D columns are the same sums. The copies follow the segment states in the
// workspace: PAD_ACTS activations [T, H, PD] bf16 (the backward's dout, q, k, v, dq, dk, dv) and two states
// [nseq, H, PD, PD] fp32 (the state in, the state out).
constexpr int PD = 64, PAD_ACTS = 7;
bool padded(int D) { return D == 16 || D == 32; }
size_t align256(size_t x) { return (x + 255) / 256 * 256; }
size_t pad_act_bytes(int T, int H) { return align256((size_t)T * H * PD * 2); }
size_t pad_state_bytes(int nseq, int H) { return align256((size_t)nseq * H * PD * PD * sizeof(float)); }
size_t pad_bytes(int T, int nseq, int H, int cps) {
    return align256(seg_bytes(T, nseq, H, PD, cps)) + PAD_ACTS * pad_act_bytes(T, H) + 2 * pad_state_bytes(nseq, H);
}

// rows of D columns <-> rows of PD (the rest zero); states [n][D][D] <-> [n][PD][PD] (the rest zero)
__global__ void pad_rows_kernel(__nv_bfloat16 *dst, const __nv_bfloat16 *src, size_t rows, int D) {
    for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < rows * PD; i += (size_t)gridDim.x * blockDim.x) {
        const size_t r = i / PD;
        const int c = (int)(i % PD);
        dst[i] = c < D ? src[r * D + c] : __float2bfloat16(0.0f);
    }
}
__global__ void unpad_rows_kernel(__nv_bfloat16 *dst, const __nv_bfloat16 *src, size_t rows, int D) {
    for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < rows * D; i += (size_t)gridDim.x * blockDim.x)
        dst[i] = src[i / D * PD + i % D];
}
__global__ void pad_state_kernel(float *dst, const float *src, size_t n, int D) {
    for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < n * PD * PD; i += (size_t)gridDim.x * blockDim.x) {
        const size_t m = i / (PD * PD);
        const int r = (int)(i / PD % PD), c = (int)(i % PD);
        dst[i] = r < D && c < D ? src[(m * D + r) * D + c] : 0.0f;
    }
}
__global__ void unpad_state_kernel(float *dst, const float *src, size_t n, int D) {
    for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < n * D * D; i += (size_t)gridDim.x * blockDim.x) {
        const size_t m = i / ((size_t)D * D);
        const int r = (int)(i / D % D), c = (int)(i % D);
        dst[i] = src[(m * PD + r) * PD + c];
    }
}
unsigned pad_grid(size_t n) {
    const size_t b = (n + 255) / 256;
    return (unsigned)(b < 1 ? 1 : b > 4096 ? 4096 : b);
}
int pad_rows(uint16_t *dst, const uint16_t *src, size_t rows, int D, cudaStream_t st) {
    pad_rows_kernel<<<pad_grid(rows * PD), 256, 0, st>>>(bf(dst), bf(src), rows, D);
    return check_launch("padding launch");
}
int unpad_rows(uint16_t *dst, const uint16_t *src, size_t rows, int D, cudaStream_t st) {
    unpad_rows_kernel<<<pad_grid(rows * D), 256, 0, st>>>(bf(dst), bf(src), rows, D);
    return check_launch("padding launch");
}
int pad_state(float *dst, const float *src, size_t n, int D, cudaStream_t st) {
    pad_state_kernel<<<pad_grid(n * PD * PD), 256, 0, st>>>(dst, src, n, D);
    return check_launch("padding launch");
}
int unpad_state(float *dst, const float *src, size_t n, int D, cudaStream_t st) {
    unpad_state_kernel<<<pad_grid(n * D * D), 256, 0, st>>>(dst, src, n, D);
    return check_launch("padding launch");
}

// The padded copies' places in the workspace (after the segment states of the D = 64 passes).
struct PadWs {
    float *seg;
    uint16_t *act[PAD_ACTS];
    float *state_in, *state_out;
};
PadWs pad_ws(void *workspace, int T, int nseq, int H, int cps) {
    PadWs w;
    char *p = static_cast<char *>(workspace);
    w.seg = reinterpret_cast<float *>(p);
    p += align256(seg_bytes(T, nseq, H, PD, cps));
    for (int i = 0; i < PAD_ACTS; i++, p += pad_act_bytes(T, H)) w.act[i] = reinterpret_cast<uint16_t *>(p);
    w.state_in = reinterpret_cast<float *>(p);
    w.state_out = reinterpret_cast<float *>(p + pad_state_bytes(nseq, H));
    return w;
}

} // namespace

extern "C" size_t lightning_workspace_bytes_cuda(int T, int nseq, int H, int D, const backend_tuning_t *tune) {
    if (T < 0 || nseq < 1 || H < 1) return 0;
    if (padded(D)) return pad_bytes(T, nseq, H, choose_cps(T, nseq, H, PD, tune));
    if (D != 64 && D != 128) return 0;
    return seg_bytes(T, nseq, H, D, choose_cps(T, nseq, H, D, tune));
}

extern "C" int lightning_forward_cuda(uint16_t *o, float *state_out, const uint16_t *q, const uint16_t *k,
                                      const uint16_t *v, const float *state_in, const float *slopes,
                                      const int32_t *cu_seqlens, int nseq, int H, int D, int block, int T,
                                      const backend_tuning_t *tune, void *workspace, size_t workspace_bytes,
                                      cudaStream_t stream) {
    const int cps = D == 64 || D == 128 ? choose_cps(T, nseq, H, D, tune) : padded(D) ? choose_cps(T, nseq, H, PD, tune) : 0;
    prof_skip_now = tune ? tune->lightning_prof_skip : 0;
    const void *ptrs[] = {o, q, k, v, slopes, cu_seqlens};
    if (check_args("lightning_forward_cuda", nseq, H, D, block, T, ptrs, 6, workspace_bytes, workspace,
                   padded(D) ? pad_bytes(T, nseq, H, cps) : seg_bytes(T, nseq, H, D, cps)))
        return -1;
    float *ws = static_cast<float *>(workspace);
    if (padded(D)) {  // q, k, v (and the state in) padded to 64 columns, o (and the state out) cut back
        const PadWs w = pad_ws(workspace, T, nseq, H, cps);
        const size_t rows = (size_t)T * H, ns = (size_t)nseq * H;
        uint16_t *pq = w.act[0], *pk = w.act[1], *pv = w.act[2], *po = w.act[3];
        if (pad_rows(pq, q, rows, D, stream) || pad_rows(pk, k, rows, D, stream) || pad_rows(pv, v, rows, D, stream) ||
            (state_in && pad_state(w.state_in, state_in, ns, D, stream)))
            return -1;
        if (run_pass<PD, false>(bf(pq), bf(pk), bf(pv), bf(po), state_in ? w.state_in : nullptr, 0,
                                state_out ? w.state_out : nullptr, 0, slopes, cu_seqlens, nseq, H, T, cps, w.seg,
                                stream))
            return -1;
        if (unpad_rows(o, po, rows, D, stream)) return -1;
        return state_out ? unpad_state(state_out, w.state_out, ns, D, stream) : 0;
    }
    if (D == 64)
        return run_pass<64, false>(bf(q), bf(k), bf(v), bf(o), state_in, 0, state_out, 0, slopes, cu_seqlens, nseq,
                                   H, T, cps, ws, stream);
    return run_pass<128, false>(bf(q), bf(k), bf(v), bf(o), state_in, 0, state_out, 0, slopes, cu_seqlens, nseq, H,
                                T, cps, ws, stream);
}

template <int D>
static int backward_passes(uint16_t *dq, uint16_t *dk, uint16_t *dv, float *dstate_in, const uint16_t *dout,
                           const uint16_t *q, const uint16_t *k, const uint16_t *v, const float *state_in,
                           const float *slopes, const int32_t *cu, int nseq, int H, int T, int cps, float *ws,
                           cudaStream_t st) {
    // dq_t = sum_{s<=t} lam^(t-s) (dout_t . v_s) k_s + lam^(t+1) dout_t S0^T
    if (run_pass<D, false>(bf(dout), bf(v), bf(k), bf(dq), state_in, 1, nullptr, 0, slopes, cu, nseq, H, T, cps, ws,
                           st))
        return -1;
    // dv_t = sum_{s>=t} lam^(s-t) (k_t . q_s) dout_s; its final state sum_t lam^t q_t^T dout_t, times
    // lam, is dL/dS0 (S0 reaches o_t as lam^(t+1) q_t S0)
    if (run_pass<D, true>(bf(k), bf(q), bf(dout), bf(dv), nullptr, 0, dstate_in, 1, slopes, cu, nseq, H, T, cps, ws,
                          st))
        return -1;
    // dk_t = sum_{s>=t} lam^(s-t) (v_t . dout_s) q_s
    return run_pass<D, true>(bf(v), bf(dout), bf(q), bf(dk), nullptr, 0, nullptr, 0, slopes, cu, nseq, H, T, cps, ws,
                             st);
}

extern "C" int lightning_backward_cuda(uint16_t *dq, uint16_t *dk, uint16_t *dv, float *dstate_in,
                                       const uint16_t *dout, const uint16_t *q, const uint16_t *k,
                                       const uint16_t *v, const float *state_in, const float *slopes,
                                       const int32_t *cu_seqlens, int nseq, int H, int D, int block, int T,
                                       const backend_tuning_t *tune, void *workspace, size_t workspace_bytes,
                                       cudaStream_t stream) {
    const int cps = D == 64 || D == 128 ? choose_cps(T, nseq, H, D, tune) : padded(D) ? choose_cps(T, nseq, H, PD, tune) : 0;
    prof_skip_now = tune ? tune->lightning_prof_skip : 0;
    const void *ptrs[] = {dq, dk, dv, dout, q, k, v, slopes, cu_seqlens};
    if (check_args("lightning_backward_cuda", nseq, H, D, block, T, ptrs, 9, workspace_bytes, workspace,
                   padded(D) ? pad_bytes(T, nseq, H, cps) : seg_bytes(T, nseq, H, D, cps)))
        return -1;
    float *ws = static_cast<float *>(workspace);
    if (padded(D)) {  // dout, q, k, v (and the state in) padded to 64 columns, the gradients cut back
        const PadWs w = pad_ws(workspace, T, nseq, H, cps);
        const size_t rows = (size_t)T * H, ns = (size_t)nseq * H;
        uint16_t *po = w.act[0], *pq = w.act[1], *pk = w.act[2], *pv = w.act[3], *gq = w.act[4], *gk = w.act[5],
                 *gv = w.act[6];
        if (pad_rows(po, dout, rows, D, stream) || pad_rows(pq, q, rows, D, stream) ||
            pad_rows(pk, k, rows, D, stream) || pad_rows(pv, v, rows, D, stream) ||
            (state_in && pad_state(w.state_in, state_in, ns, D, stream)))
            return -1;
        if (backward_passes<PD>(gq, gk, gv, dstate_in ? w.state_out : nullptr, po, pq, pk, pv,
                                state_in ? w.state_in : nullptr, slopes, cu_seqlens, nseq, H, T, cps, w.seg, stream))
            return -1;
        if (unpad_rows(dq, gq, rows, D, stream) || unpad_rows(dk, gk, rows, D, stream) ||
            unpad_rows(dv, gv, rows, D, stream))
            return -1;
        return dstate_in ? unpad_state(dstate_in, w.state_out, ns, D, stream) : 0;
    }
    if (D == 64)
        return backward_passes<64>(dq, dk, dv, dstate_in, dout, q, k, v, state_in, slopes, cu_seqlens, nseq, H, T,
                                   cps, ws, stream);
    return backward_passes<128>(dq, dk, dv, dstate_in, dout, q, k, v, state_in, slopes, cu_seqlens, nseq, H, T, cps,
                                ws, stream);
}
