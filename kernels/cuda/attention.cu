// kernels/cuda/attention.cu — causal softmax attention with grouped-query heads over packed
// sequences on the GPU (the op API's attention_forward/backward/decode; kernels/cpu/attention.c
// and attention_decode.c are the specification).
// defines: attention_workspace_bytes_cuda, attention_forward_cuda, attention_backward_cuda,
//          attention_decode_cuda
//
// Forward and backward are FlashAttention-2 kernels (attention_fwd.cuh, attention_bwd.cuh; at head dim
// 128 on sm_90a both are attention_wgmma.cuh's warpgroup kernels) over a
// list of (sequence, tile) pairs built here from the host copy of cu_seqlens, heaviest tiles first
// so the long causal tiles start in the first wave. The workspace holds that list, then (backward)
// dQ in fp32 [T, H, D] for the kernels' additions (atomics, or bulk reductions), delta = rowsum(dO o O) [T, H], and dK, dV in fp32
// [T, KV, D] for when the backward splits a GQA group's heads over CTAs.
// Decode is one CTA per (sequence, query head) streaming the slot's cache once.
#include <cuda_runtime.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

extern "C" {
#include "base/common.h" // C header without C++ guards
}
#include "kernels/cuda/attention_wgmma.cuh"
#include "kernels/cuda/backend_cuda.h"
#include "kernels/cuda/ops_cuda.h"
#include "kernels/cuda/pdl.cuh"

using namespace attn;

namespace {

constexpr int DTYPE_BF16_ = 1; // kernels/ops.h DTYPE_BF16

size_t align256(size_t n) { return (n + 255) & ~(size_t)255; }

// Tiles of the smallest tile size over all sequences: an upper bound for both kernels' lists.
size_t tiles_bytes(int T, int nseq) {
    const int mn = FWD_BM < BWD_BN ? FWD_BM : BWD_BN;
    return align256(((size_t)T / mn + (size_t)nseq + 1) * sizeof(AttnTile));
}

int check_launch(const char *what) {
    cudaError_t e = cudaGetLastError();
    if (e != cudaSuccess) return cispo_fail("attention %s: CUDA error %s", what, cudaGetErrorString(e));
    return 0;
}

int check_args(const char *op, int H, int KV, int D, int window, int dtype) {
    if (dtype != DTYPE_BF16_) return cispo_fail("%s: activation dtype %d, the CUDA kernel takes bf16", op, dtype);
    if (D != 16 && D != 32 && D != 64 && D != 128)
        return cispo_fail("%s: head dim %d, the CUDA kernel takes 16, 32, 64 or 128", op, D);
    if (H <= 0 || KV <= 0 || H % KV) return cispo_fail("%s: %d query heads not a multiple of %d kv heads", op, H, KV);
    if (window < 0) return cispo_fail("%s: window %d < 0", op, window);
    return 0;
}

// The grid's order. Tile-major (block x the head, y the tile: every head's heaviest tile, then every head's next:
// the longest-processing-time order over the whole grid) where K and V fit in half the L2 cache, so that the heads
// running side by side find their keys there; else head-major (one head's tiles side by side share its keys, and
// with many waves the order matters little). CISPO_ATTN_ORDER=head or tile in the environment overrides it (for
// comparison).
int tile_major(int T, int KV, int D, int ntiles) {
    static int env = -2, l2 = -1;
    if (env == -2) {
        const char *e = getenv("CISPO_ATTN_ORDER");
        env = !e ? -1 : !strcmp(e, "tile") ? 1 : !strcmp(e, "head") ? 0 : -1;
    }
    if (l2 < 0) {
        int dev = 0, n = 0;
        l2 = cudaGetDevice(&dev) == cudaSuccess && cudaDeviceGetAttribute(&n, cudaDevAttrL2CacheSize, dev) == cudaSuccess
                 ? n
                 : 0;
    }
    if (ntiles > 65535) return 0;  // (gridDim.y's limit)
    if (env >= 0) return env;
    return 2.0 * T * KV * D * 2 <= 0.5 * l2;
}

// Whether the backward runs its warp-specialized kernel (bwd_wg_ws_kernel) where the TMA can feed it: 1 (the
// default); CISPO_ATTN_BWD_WS=0 in the environment runs bwd_wg_kernel instead, for comparison.
int bwd_ws() {
    static int on = -1;
    if (on < 0) on = env_knob("CISPO_ATTN_BWD_WS", 1, 1);
    return on;
}

// Whether fwd_wg_tma_kernel folds the scale into the exponentials' arguments (attention_wgmma.cuh, wga_softmax's
// FOLD), the default: 558-564 against 541-551 TFLOP/s at T 16384, H 64 and 458-466 against 443-449 at T 4096, H 8
// on an H100, three passes alternated; CISPO_ATTN_FWD_FOLD=0 in the environment scales each score first
// (test_backend_ops_gpu_forms runs the forward's rows so)
int fwd_fold() {
    static int on = -1;
    if (on < 0) on = env_knob("CISPO_ATTN_FWD_FOLD", 1, 1);
    return on;
}

// Whether fwd_wg_tma_kernel (with the fold) keeps a warp's maxima while they grow by at most 2^8 (attention_wgmma.cuh,
// wga_softmax's LAZY), so that the output is rarely rescaled: the default, 638-643 against 599-606 TFLOP/s at T 16384,
// H 64 and 508-519 against 489-493 at T 4096, H 8 on an H100, three passes alternated; CISPO_ATTN_FWD_LAZY=0 in the
// environment rescales on every tile (test_backend_ops_gpu_forms runs the forward's rows without the fold, which
// leaves it too)
int fwd_lazy() {
    static int on = -1;
    if (on < 0) on = env_knob("CISPO_ATTN_FWD_LAZY", 1, 1);
    return on;
}

// Whether fwd_wg_tma_kernel (with the fold and the lazy maxima) keeps its warpgroup's rows of Q as register
// fragments for the score products (attention_wgmma.cuh, wga_load_q): the default, 660-666 against 640-650 TFLOP/s
// at T 16384, H 64 and 530-536 against 511-516 at T 4096, H 8 on an H100, three passes alternated;
// CISPO_ATTN_FWD_QREG=0 in the environment reads Q from shared memory (test_backend_ops_gpu_forms_qreg)
int fwd_qreg() {
    static int on = -1;
    if (on < 0) on = env_knob("CISPO_ATTN_FWD_QREG", 1, 1);
    return on;
}

// Whether bwd_wg_ws_kernel lays dq_acc out by blocks (attention_wgmma.cuh, TILED), the default: 448 against 398
// TFLOP/s at T 16384, H 64 and 373 against 347 at T 4096, H 8 on an H100; CISPO_ATTN_DQ_TILED=0 in the
// environment keeps the row layout [T, H, D] (test_backend_ops_gpu_forms runs the backward's rows so).
int dq_tiled() {
    static int on = -1;
    if (on < 0) on = env_knob("CISPO_ATTN_DQ_TILED", 1, 1);
    return on;
}

// dq_acc's rows: T, or with the tiled layout each sequence's rows padded to a multiple of 64 (at most T + 64 nseq)
size_t dq_rows(int T, int nseq, int D) { return (size_t)T + (D == 128 && dq_tiled() ? 64 * (size_t)nseq : 0); }

struct TileWork {
    AttnTile t;
    long work;
};

int cmp_work(const void *a, const void *b) {
    long x = ((const TileWork *)a)->work, y = ((const TileWork *)b)->work;
    return x < y ? 1 : x > y ? -1 : 0;
}

// Tiles of `bs` rows of every sequence, heaviest first, copied to dev (device); returns their
// number, or -1. Work: the key rows a query tile sees (fwd), the query rows that see a key tile
// (bwd), both clipped by the window.
int build_tiles(AttnTile *dev, const int32_t *cu_host, int nseq, int bs, int window, int fwd, cudaStream_t st) {
    int n = 0;
    for (int s = 0; s < nseq; s++) n += (cu_host[s + 1] - cu_host[s] + bs - 1) / bs;
    if (n == 0) return 0;
    TileWork *tw = (TileWork *)malloc((size_t)n * sizeof *tw);
    AttnTile *t = (AttnTile *)malloc((size_t)n * sizeof *t);
    if (!tw || !t) {
        free(tw), free(t);
        return cispo_fail("attention: out of host memory for %d tiles", n);
    }
    int i = 0;
    for (int s = 0; s < nseq; s++) {
        const int L = cu_host[s + 1] - cu_host[s];
        for (int r = 0; r < L; r += bs) {
            const int e = r + bs < L ? r + bs : L;
            long w;
            if (fwd) w = window > 0 && e < window ? e : window > 0 ? window + bs : e;
            else w = window > 0 && L - r > window + bs ? window + bs : L - r;
            tw[i].t.seq = s, tw[i].t.start = r, tw[i].work = w;
            i++;
        }
    }
    qsort(tw, (size_t)n, sizeof *tw, cmp_work);
    for (i = 0; i < n; i++) t[i] = tw[i].t;
    // pageable source: the call returns once the data is staged, so t may be freed after it
    cudaError_t e = cudaMemcpyAsync(dev, t, (size_t)n * sizeof *t, cudaMemcpyHostToDevice, st);
    free(tw), free(t);
    if (e != cudaSuccess) return cispo_fail("attention: tile list copy: %s", cudaGetErrorString(e));
    return n;
}

// The kernel's dynamic shared-memory limit raised to `bytes`, once (*done: the caller's flag for that kernel;
// the attribute is per function).
template <typename F>
int set_smem(F kern, int bytes, bool *done) {
    if (*done) return 0;
    if (cudaFuncSetAttribute(kern, cudaFuncAttributeMaxDynamicSharedMemorySize, bytes) != cudaSuccess)
        return check_launch("cudaFuncSetAttribute");
    *done = true;
    return 0;
}

template <int D, int MT>
int launch_fwd(const FwdArgs &p, int ntiles, int H, cudaStream_t st) {
    constexpr int smem = fwd_smem_bytes<D, MT>();
    static bool attr_set = false;  // per kernel
    if (set_smem(fwd_kernel<D, MT>, smem, &attr_set)) return -1;
    fwd_kernel<D, MT><<<p.tile_major ? dim3(H, ntiles) : dim3(ntiles, H), fwd_threads<MT>(), smem, st>>>(p);
    return check_launch("forward kernel launch");
}

// Row blocks a warp in the forward: 2 at D <= 64; at D = 128 two blocks need more registers than
// there are (the accumulators alone are 128), so 1. The context's attn_fwd_rows knob (1 or 2)
// overrides, for benchmarks.
int fwd_mt(int D, int knob) {
    if (knob == 1 || knob == 2) return knob;
    return D <= 64 ? 2 : 1;
}

template <int D>
int launch_bwd(const BwdArgs &p, int ntiles, int KV, int nsplit, cudaStream_t st) {
    constexpr int smem = bwd_smem_bytes<D>();
    static bool attr_set = false;  // per kernel
    if (set_smem(bwd_kernel<D>, smem, &attr_set)) return -1;
    const dim3 grid = p.tile_major ? dim3(KV * nsplit, ntiles) : dim3(ntiles, KV, nsplit);
    bwd_kernel<D><<<grid, BWD_THREADS, smem, st>>>(p);
    return check_launch("backward kernel launch");
}

// CISPO_ATTN_ABLATE's bit mask in a build with -DCISPO_ATTN_ABLATION (timing studies: ATTN_ABLATE in
// attention_wgmma.cuh), else 0
int attn_ablate() {
#ifdef CISPO_ATTN_ABLATION
    static int mask = -1;
    if (mask < 0) {
        const char *e = getenv("CISPO_ATTN_ABLATE");
        mask = e ? atoi(e) : 0;
    }
    return mask;
#else
    return 0;
#endif
}

// bwd_wg_ws_kernel (attention_wgmma.cuh) where bwd_ws() and the TMA's tensor maps allow: 1 launched, 0 not, -1 error
int launch_bwd_ws(const BwdArgs &p, int nt, int KV, int nsplit, int T, int H, int D, const void *q, const void *dout,
                  const void *k, const void *v, cudaStream_t st) {
    if (!bwd_ws() || tma_off()) return 0;
    WgtMap mq, mo, mk, mv;
    const cuuint64_t qd[2] = {(cuuint64_t)H * D, (cuuint64_t)T}, qs[1] = {(cuuint64_t)H * D * 2};
    const cuuint64_t kd[2] = {(cuuint64_t)KV * D, (cuuint64_t)T}, ks[1] = {(cuuint64_t)KV * D * 2};
    const cuuint32_t qbox[2] = {64, BWD_WG_BM}, kbox[2] = {64, BWD_WG_BN};
    if (tensor_map(&mq, q, 2, qd, qs, qbox) || tensor_map(&mo, dout, 2, qd, qs, qbox) ||
        tensor_map(&mk, k, 2, kd, ks, kbox) || tensor_map(&mv, v, 2, kd, ks, kbox))
        return 0;
    static bool attr[2] = {false, false};
    const dim3 grid = p.tile_major ? dim3(KV * nsplit, nt) : dim3(nt, KV, nsplit);
    if (p.pad) {
        if (set_smem(bwd_wg_ws_kernel<true>, BWD_WS_SMEM, &attr[1])) return -1;
        bwd_wg_ws_kernel<true><<<grid, FWD_WS_THREADS, BWD_WS_SMEM, st>>>(p, mq, mo, mk, mv);
    } else {
        if (set_smem(bwd_wg_ws_kernel<false>, BWD_WS_SMEM, &attr[0])) return -1;
        bwd_wg_ws_kernel<false><<<grid, FWD_WS_THREADS, BWD_WS_SMEM, st>>>(p, mq, mo, mk, mv);
    }
    return check_launch("backward kernel launch") ? -1 : 1;
}

// delta[t, h] = sum_d dO[t, h, d] O[t, h, d] in fp32: one warp per (t, h), 8 bytes a lane.
template <int D>
__global__ void __launch_bounds__(256) delta_kernel(float *delta, const __nv_bfloat16 *dout,
                                                    const __nv_bfloat16 *o, size_t rows) {
    const size_t row = (size_t)blockIdx.x * 8 + threadIdx.x / 32;
    const int lane = threadIdx.x % 32;
    if (row >= rows) return;
    float s = 0.0f;
#pragma unroll
    for (int c = lane * 2; c < D; c += 64) {
        float2 a = unpack_bf16(*reinterpret_cast<const uint32_t *>(dout + row * D + c));
        float2 b = unpack_bf16(*reinterpret_cast<const uint32_t *>(o + row * D + c));
        s += a.x * b.x + a.y * b.y;
    }
#pragma unroll
    for (int off = 16; off > 0; off >>= 1) s += __shfl_xor_sync(0xffffffffu, s, off);
    if (lane == 0) delta[row] = s;
}

// dst = scale * acc (written, or added to dst) in bf16, two elements a thread.
__global__ void dq_convert_kernel(__nv_bfloat16 *dq, const float *acc, size_t n2, float scale, int add) {
    for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < n2; i += (size_t)gridDim.x * blockDim.x) {
        float2 a = reinterpret_cast<const float2 *>(acc)[i];
        a.x *= scale, a.y *= scale;
        uint32_t *d = reinterpret_cast<uint32_t *>(dq) + i;
        if (add) {
            float2 old = unpack_bf16(*d);
            a.x += old.x, a.y += old.y;
        }
        *d = pack_bf16(a.x, a.y);
    }
}

// dq = scale acc (+ dq with add) from the tiled layout (dq_tiled_index; pad: each sequence's first padded row), 4
// columns a thread (the swizzle moves groups of 8, so 4 stay side by side)
__global__ void dq_convert_tiled_kernel(__nv_bfloat16 *dq, const float *acc, const int32_t *cu, const int32_t *pad,
                                        int nseq, int H, size_t n4, float scale, int add) {
    for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < n4; i += (size_t)gridDim.x * blockDim.x) {
        const int c = (int)(i % 32) * 4, h = (int)(i / 32 % H);
        const int t = (int)(i / 32 / H);
        int lo = 0, hi = nseq - 1;  // the sequence of row t
        while (lo < hi) {
            const int mid = (lo + hi + 1) / 2;
            if (cu[mid] <= t) lo = mid;
            else hi = mid - 1;
        }
        float4 a = *reinterpret_cast<const float4 *>(acc + dq_tiled_index(pad[lo] + t - cu[lo], h, c, H));
        a.x *= scale, a.y *= scale, a.z *= scale, a.w *= scale;
        uint32_t *d = reinterpret_cast<uint32_t *>(dq) + i * 2;
        if (add) {
            const float2 o0 = unpack_bf16(d[0]), o1 = unpack_bf16(d[1]);
            a.x += o0.x, a.y += o0.y, a.z += o1.x, a.w += o1.y;
        }
        d[0] = pack_bf16(a.x, a.y), d[1] = pack_bf16(a.z, a.w);
    }
}

// blocks of 256 threads for a grid-stride loop over n items: enough for one each, at most 4096
int convert_blocks(size_t n) {
    const size_t b = (n + 255) / 256;
    return b < 1 ? 1 : b > 4096 ? 4096 : (int)b;
}

void convert(void *dst, const float *acc_buf, size_t n, float scale, int acc, cudaStream_t st) {
    dq_convert_kernel<<<convert_blocks(n / 2), 256, 0, st>>>((__nv_bfloat16 *)dst, acc_buf, n / 2, scale, acc);
}

// ---- decode ----
// One CTA (4 warps) per (query, query head). A key is D/8 lanes with 16 bytes each, so a warp
// takes 256/D keys a step; every lane group keeps its own running max and sum, each lane 8
// output elements, merged through shared memory at the end. The cache is paged: position j of the
// query's slot is pool row bt[j / bs] * bs + j % bs (bt: the slot's row of the block table).
constexpr int DEC_WARPS = 4;

template <int D>
__global__ void __launch_bounds__(DEC_WARPS * 32) decode_kernel(__nv_bfloat16 *o, const __nv_bfloat16 *q,
                                                                const __nv_bfloat16 *kc, const __nv_bfloat16 *vc,
                                                                const int32_t *slot, const int32_t *len, int H,
                                                                int KV, const int32_t *block_table, int max_blocks,
                                                                int bs, int window, float scale) {
    constexpr int LPK = D / 8, KPW = 32 / LPK, NG = DEC_WARPS * KPW; // lanes a key, keys a warp step, groups
    __shared__ float s_m[NG], s_l[NG], s_acc[NG][D];
    pdl_wait();  // launched with PDL (kernels/cuda/pdl.cuh)
    pdl_trigger();
    const int i = blockIdx.x, h = blockIdx.y, kvh = h / (H / KV);
    const int warp = threadIdx.x / 32, lane = threadIdx.x % 32, sub = lane / LPK, d0 = (lane % LPK) * 8;
    const int grp = warp * KPW + sub;
    const int n = len[i], j0 = window > 0 && n > window ? n - window : 0;
    const size_t ldk = (size_t)KV * D;
    const int32_t *bt = block_table + (size_t)slot[i] * max_blocks;
    const __nv_bfloat16 *kb = kc + (size_t)kvh * D + d0;
    const __nv_bfloat16 *vb = vc + (size_t)kvh * D + d0;

    float qv[8];
    {
        uint4 u = *reinterpret_cast<const uint4 *>(q + ((size_t)i * H + h) * D + d0);
        const uint32_t w[4] = {u.x, u.y, u.z, u.w};
#pragma unroll
        for (int e = 0; e < 4; e++) {
            float2 f = unpack_bf16(w[e]);
            qv[2 * e] = f.x * scale, qv[2 * e + 1] = f.y * scale;
        }
    }
    float m = -INFINITY, l = 0.0f, acc[8];
#pragma unroll
    for (int e = 0; e < 8; e++) acc[e] = 0.0f;
    // the loop bound is warp-uniform: the shuffles below need every lane of the warp
    for (int jb = j0 + warp * KPW; jb < n; jb += NG) {
        const int j = jb + sub;
        const bool ok = j < n;
        uint4 ku = make_uint4(0, 0, 0, 0), vu = make_uint4(0, 0, 0, 0);
        if (ok) {
            const size_t row = (size_t)bt[j / bs] * bs + j % bs;
            ku = *reinterpret_cast<const uint4 *>(kb + row * ldk);
            vu = *reinterpret_cast<const uint4 *>(vb + row * ldk);
        }
        const uint32_t kw[4] = {ku.x, ku.y, ku.z, ku.w}, vw[4] = {vu.x, vu.y, vu.z, vu.w};
        float s = 0.0f;
#pragma unroll
        for (int e = 0; e < 4; e++) {
            float2 f = unpack_bf16(kw[e]);
            s += qv[2 * e] * f.x + qv[2 * e + 1] * f.y;
        }
#pragma unroll
        for (int off = LPK / 2; off > 0; off >>= 1) s += __shfl_xor_sync(0xffffffffu, s, off, LPK);
        if (!ok) continue;
        const float mn = fmaxf(m, s), c = expf(m - mn), pj = expf(s - mn);
        m = mn;
        l = l * c + pj;
#pragma unroll
        for (int e = 0; e < 4; e++) {
            float2 f = unpack_bf16(vw[e]);
            acc[2 * e] = acc[2 * e] * c + pj * f.x;
            acc[2 * e + 1] = acc[2 * e + 1] * c + pj * f.y;
        }
    }
    if (lane % LPK == 0) s_m[grp] = m, s_l[grp] = l;
#pragma unroll
    for (int e = 0; e < 8; e++) s_acc[grp][d0 + e] = acc[e];
    __syncthreads();
    float mx = -INFINITY;
    for (int gi = 0; gi < NG; gi++) mx = fmaxf(mx, s_m[gi]);
    for (int d = threadIdx.x; d < D; d += DEC_WARPS * 32) {
        float sum = 0.0f, val = 0.0f;
        for (int gi = 0; gi < NG; gi++) {
            if (s_m[gi] == -INFINITY) continue; // a group that saw no key
            const float w = expf(s_m[gi] - mx);
            sum += s_l[gi] * w;
            val += s_acc[gi][d] * w;
        }
        o[((size_t)i * H + h) * D + d] = __float2bfloat16(val / sum);
    }
}

template <int D>
int launch_decode(void *o, const void *q, const void *kc, const void *vc, const int32_t *slot, const int32_t *len,
                  int n, int H, int KV, const int32_t *block_table, int max_blocks, int bs, int window,
                  cudaStream_t st) {
    PDL_LAUNCH(dim3(n, H), DEC_WARPS * 32, 0, st, decode_kernel<D>, (__nv_bfloat16 *)o, (const __nv_bfloat16 *)q,
               (const __nv_bfloat16 *)kc, (const __nv_bfloat16 *)vc, slot, len, H, KV, block_table, max_blocks, bs,
               window, 1.0f / sqrtf((float)D));
    return check_launch("decode kernel launch");
}

} // namespace

size_t attention_workspace_bytes_cuda(int T, int nseq, int H, int KV, int D) {
    return tiles_bytes(T, nseq) + align256(dq_rows(T, nseq, D) * H * D * sizeof(float)) +
           align256((size_t)T * H * sizeof(float)) + 2 * align256((size_t)T * KV * D * sizeof(float)) +
           align256((size_t)nseq * sizeof(int32_t));
}

int attention_forward_cuda(void *o, float *lse, const void *q, const void *k, const void *v, const int32_t *cu_seqlens,
                           const int32_t *cu_host, int nseq, int T, int max_len, int H, int KV, int D, int window,
                           int dtype, const backend_tuning_t *tune, void *ws, size_t ws_bytes, cudaStream_t st) {
    (void)max_len;
    const int attn_rows = tune ? tune->attn_fwd_rows : 0;
    if (check_args("attention_forward_cuda", H, KV, D, window, dtype)) return -1;
    if (T <= 0 || nseq <= 0) return 0;
    if (ws_bytes < tiles_bytes(T, nseq))
        return cispo_fail("attention_forward_cuda: workspace %zu bytes < %zu", ws_bytes, tiles_bytes(T, nseq));
    AttnTile *tiles = (AttnTile *)ws;
    int nt = build_tiles(tiles, cu_host, nseq, FWD_BM, window, 1, st);
    if (nt <= 0) return nt;
    FwdArgs p;
    p.o = (__nv_bfloat16 *)o, p.lse = lse;
    p.q = (const __nv_bfloat16 *)q, p.k = (const __nv_bfloat16 *)k, p.v = (const __nv_bfloat16 *)v;
    p.cu = cu_seqlens, p.tiles = tiles;
    p.H = H, p.KV = KV, p.group = H / KV, p.window = window;
    p.tile_major = tile_major(T, KV, D, nt);
    p.scale_log2 = LOG2E / sqrtf((float)D);
    p.ablate = attn_ablate();
    const dim3 grid = p.tile_major ? dim3(H, nt) : dim3(nt, H);
    if (D == 128 && attn_rows == 0 && wgmma_ready_cuda(WGMMA_ATTENTION)) {
        if ((!tune || tune->attn_fwd_tma >= 0) && !tma_off()) {  // the ping-pong and overlap on TMA loads (attention_wgmma.cuh)
            WgtMap mq, mk, mv;
            const cuuint64_t qd[2] = {(cuuint64_t)H * D, (cuuint64_t)T}, qs[1] = {(cuuint64_t)H * D * 2};
            const cuuint64_t kd[2] = {(cuuint64_t)KV * D, (cuuint64_t)T}, ks[1] = {(cuuint64_t)KV * D * 2};
            const cuuint32_t box[2] = {64, 128};
            if (!tensor_map(&mq, q, 2, qd, qs, box) && !tensor_map(&mk, k, 2, kd, ks, box) &&
                !tensor_map(&mv, v, 2, kd, ks, box)) {
                typedef void (*TmaKernel)(const FwdArgs, const WgtMap, const WgtMap, const WgtMap);
                static const TmaKernel kerns[4] = {
                    fwd_wg_tma_kernel<false, false, false>, fwd_wg_tma_kernel<true, false, false>,
                    fwd_wg_tma_kernel<true, true, false>, fwd_wg_tma_kernel<true, true, true>};
                static bool tma_attr[4] = {false, false, false, false};  // per kernel
                // (the lazy maxima: the fold's form; Q's fragments in registers: the lazy maxima's)
                const int ki = fwd_fold() ? 1 + fwd_lazy() + (fwd_lazy() && fwd_qreg()) : 0;
                if (set_smem(kerns[ki], FWD_WG_TMA_SMEM, &tma_attr[ki])) return -1;
                kerns[ki]<<<grid, FWD_WS_THREADS, FWD_WG_TMA_SMEM, st>>>(p, mq, mk, mv);
                return check_launch("forward kernel launch");
            }
        }
        static bool attr_set[2] = {false, false};  // per kernel
        const int pp = !tune || tune->attn_fwd_pingpong >= 0;  // the warpgroups' ping-pong (attention_wgmma.cuh)
        void (*kern)(const FwdArgs) = pp ? fwd_wg_kernel<true> : fwd_wg_kernel<false>;
        if (set_smem(kern, FWD_WG_SMEM, &attr_set[pp])) return -1;
        kern<<<grid, FWD_WG_THREADS, FWD_WG_SMEM, st>>>(p);
        return check_launch("forward kernel launch");
    }
    const int mt = fwd_mt(D, attn_rows);
    switch (D) {  // the mma.sync kernel at every head width (check_args: 16, 32, 64, 128)
    case 16: return mt == 2 ? launch_fwd<16, 2>(p, nt, H, st) : launch_fwd<16, 1>(p, nt, H, st);
    case 32: return mt == 2 ? launch_fwd<32, 2>(p, nt, H, st) : launch_fwd<32, 1>(p, nt, H, st);
    case 64: return mt == 2 ? launch_fwd<64, 2>(p, nt, H, st) : launch_fwd<64, 1>(p, nt, H, st);
    default: return mt == 2 ? launch_fwd<128, 2>(p, nt, H, st) : launch_fwd<128, 1>(p, nt, H, st);
    }
}

int attention_backward_cuda(void *dq, void *dk, void *dv, const void *dout, const void *o, const float *lse,
                            const void *q, const void *k, const void *v, const int32_t *cu_seqlens,
                            const int32_t *cu_host, int nseq, int T, int max_len, int H, int KV, int D, int window,
                            int acc, int dtype, const backend_tuning_t *tune, void *ws, size_t ws_bytes,
                            cudaStream_t st) {
    (void)max_len;
    if (check_args("attention_backward_cuda", H, KV, D, window, dtype)) return -1;
    if (T <= 0 || nseq <= 0) return 0;
    const size_t need = attention_workspace_bytes_cuda(T, nseq, H, KV, D);
    if (ws_bytes < need) return cispo_fail("attention_backward_cuda: workspace %zu bytes < %zu", ws_bytes, need);
    AttnTile *tiles = (AttnTile *)ws;
    float *dq_acc = (float *)((char *)ws + tiles_bytes(T, nseq));
    const size_t nq = (size_t)T * H * D, rows = (size_t)T * H, nk = (size_t)T * KV * D;
    const size_t nq_acc = dq_rows(T, nseq, D) * H * D;  // (nq, or with the tiled layout its padded rows)
    float *delta = (float *)((char *)dq_acc + align256(nq_acc * sizeof(float)));
    float *dk_acc = (float *)((char *)delta + align256((size_t)T * H * sizeof(float)));
    float *dv_acc = (float *)((char *)dk_acc + align256((size_t)T * KV * D * sizeof(float)));
    int32_t *pad = (int32_t *)((char *)dv_acc + align256((size_t)T * KV * D * sizeof(float)));

    cudaError_t e = cudaMemsetAsync(dq_acc, 0, nq_acc * sizeof(float), st);
    if (e != cudaSuccess) return cispo_fail("attention_backward_cuda: memset: %s", cudaGetErrorString(e));
    {
        const unsigned nb = (unsigned)((rows + 7) / 8);
        const __nv_bfloat16 *db = (const __nv_bfloat16 *)dout, *ob = (const __nv_bfloat16 *)o;
        switch (D) {
        case 16: delta_kernel<16><<<nb, 256, 0, st>>>(delta, db, ob, rows); break;
        case 32: delta_kernel<32><<<nb, 256, 0, st>>>(delta, db, ob, rows); break;
        case 64: delta_kernel<64><<<nb, 256, 0, st>>>(delta, db, ob, rows); break;
        default: delta_kernel<128><<<nb, 256, 0, st>>>(delta, db, ob, rows); break;
        }
    }
    if (check_launch("delta kernel launch")) return -1;

    const bool wg = D == 128 && wgmma_ready_cuda(WGMMA_ATTENTION);
    int nt = build_tiles(tiles, cu_host, nseq, wg ? BWD_WG_BN : BWD_BN, window, 0, st);
    if (nt < 0) return -1;
    int nsplit = 1, tiled = 0;
    if (nt > 0) {
        // split each group's query heads over CTAs until about two CTAs a multiprocessor are there
        const int group = H / KV, want = 2 * backend_cuda_sm_count();
        const long base = (long)nt * KV;
        if (group > 1 && base < want) {
            nsplit = (int)((want + base - 1) / base);
            if (nsplit > group) nsplit = group;
        }
        const int hps = (group + nsplit - 1) / nsplit;
        nsplit = (group + hps - 1) / hps;
        if (nsplit > 1) {
            e = cudaMemsetAsync(dk_acc, 0, 2 * align256(nk * sizeof(float)), st);
            if (e != cudaSuccess) return cispo_fail("attention_backward_cuda: memset: %s", cudaGetErrorString(e));
        }
        BwdArgs p;
        p.dk_acc = nsplit > 1 ? dk_acc : NULL, p.dv_acc = nsplit > 1 ? dv_acc : NULL;
        p.heads_per_split = hps, p.nsplit = nsplit;
        p.tile_major = tile_major(T, KV, D, nt);
        p.dk = (__nv_bfloat16 *)dk, p.dv = (__nv_bfloat16 *)dv, p.dq_acc = dq_acc;
        p.q = (const __nv_bfloat16 *)q, p.k = (const __nv_bfloat16 *)k, p.v = (const __nv_bfloat16 *)v;
        p.dout = (const __nv_bfloat16 *)dout, p.lse = lse, p.delta = delta;
        p.cu = cu_seqlens, p.tiles = tiles;
        p.H = H, p.KV = KV, p.group = H / KV, p.window = window, p.acc = acc;
        p.scale = 1.0f / sqrtf((float)D), p.scale_log2 = LOG2E / sqrtf((float)D);
        p.ablate = attn_ablate();
        p.pad = NULL;
        const int ovl = !tune || tune->attn_bwd_overlap >= 0;  // dQ's additions beside dV's and dK's products
        if (wg && ovl && dq_tiled()) {  // each sequence's first row in the tiled layout
            int32_t *ph = (int32_t *)malloc((size_t)nseq * sizeof *ph);
            if (!ph) return cispo_fail("attention_backward_cuda: out of host memory for %d sequences", nseq);
            for (int s = 0, r = 0; s < nseq; s++) ph[s] = r, r += (cu_host[s + 1] - cu_host[s] + 63) / 64 * 64;
            // pageable source: the call returns once the data is staged
            e = cudaMemcpyAsync(pad, ph, (size_t)nseq * sizeof *ph, cudaMemcpyHostToDevice, st);
            free(ph);
            if (e != cudaSuccess) return cispo_fail("attention_backward_cuda: copy: %s", cudaGetErrorString(e));
            p.pad = pad;
        }
        const int ws = wg && ovl ? launch_bwd_ws(p, nt, KV, nsplit, T, H, D, q, dout, k, v, st) : 0;
        if (ws < 0) return -1;
        tiled = ws && p.pad;
        if (!ws && wg) {
            static bool attr_set[2] = {false, false};  // per kernel
            void (*kern)(const BwdArgs) = ovl ? bwd_wg_kernel<true> : bwd_wg_kernel<false>;
            const int smem = ovl ? BWD_WG_SMEM_OVL : BWD_WG_SMEM;
            if (set_smem(kern, smem, &attr_set[ovl])) return -1;
            kern<<<p.tile_major ? dim3(KV * nsplit, nt) : dim3(nt, KV, nsplit), FWD_WG_THREADS, smem, st>>>(p);
            if (check_launch("backward kernel launch")) return -1;
        } else if (!ws && (D == 16 ? launch_bwd<16>(p, nt, KV, nsplit, st)
                    : D == 32 ? launch_bwd<32>(p, nt, KV, nsplit, st)
                    : D == 64 ? launch_bwd<64>(p, nt, KV, nsplit, st)
                                   : launch_bwd<128>(p, nt, KV, nsplit, st))) {
            return -1;
        }
    }
    if (tiled) {
        dq_convert_tiled_kernel<<<convert_blocks(nq / 4), 256, 0, st>>>((__nv_bfloat16 *)dq, dq_acc, cu_seqlens, pad,
                                                                         nseq, H, nq / 4, 1.0f / sqrtf((float)D), acc);
    } else {
        convert(dq, dq_acc, nq, 1.0f / sqrtf((float)D), acc, st);
    }
    if (nsplit > 1) {
        convert(dk, dk_acc, nk, 1.0f, acc, st);
        convert(dv, dv_acc, nk, 1.0f, acc, st);
    }
    return check_launch("gradient convert kernel launch");
}

int attention_decode_cuda(void *o, const void *q, const void *kcache, const void *vcache, const int32_t *slot,
                          const int32_t *len, int n, int H, int KV, int D, const int32_t *block_table, int max_blocks,
                          int block_size, int window, int dtype, cudaStream_t st) {
    if (check_args("attention_decode_cuda", H, KV, D, window, dtype)) return -1;
    if (max_blocks < 1 || block_size < 1)
        return cispo_fail("attention_decode_cuda: bad page sizes max_blocks=%d block_size=%d", max_blocks, block_size);
    if (n <= 0) return 0;
    switch (D) {
    case 16: return launch_decode<16>(o, q, kcache, vcache, slot, len, n, H, KV, block_table, max_blocks, block_size,
                                      window, st);
    case 32: return launch_decode<32>(o, q, kcache, vcache, slot, len, n, H, KV, block_table, max_blocks, block_size,
                                      window, st);
    case 64: return launch_decode<64>(o, q, kcache, vcache, slot, len, n, H, KV, block_table, max_blocks, block_size,
                                      window, st);
    default: return launch_decode<128>(o, q, kcache, vcache, slot, len, n, H, KV, block_table, max_blocks, block_size,
                                       window, st);
    }
}
