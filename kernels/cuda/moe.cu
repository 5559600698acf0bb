// kernels/cuda/moe.cu — mixture-of-experts routing on CUDA: softmax and top-K of the router logits,
// the load-balancing loss and its gradient, the stable dispatch of token slots into expert order and
// the weighted combine back. CPU reference (the specification): kernels/cpu/moe.c; slots s = t*K + k.
// defines: moe_workspace_bytes_cuda, moe_route_forward_cuda, moe_aux_loss_cuda, moe_route_backward_cuda,
//          moe_dispatch_cuda, moe_dispatch_backward_cuda, moe_combine_forward_cuda, moe_combine_backward_cuda,
//          moe_row_of_cuda
// Everything stays on the device (no host round trip): the dispatch is a counting sort (per-chunk
// histograms, one exclusive scan in expert-major order, then each chunk places its slots in slot
// order), so perm equals the CPU's exactly. Token-order gradients are gathered through the inverse
// permutation (row_of), never scattered with atomics: deterministic.
#include <cuda_bf16.h>
#include <cuda_runtime.h>
#include <math.h>

extern "C" {
#include "base/common.h"
#include "kernels/backend.h"
}
#include "kernels/cuda/elementwise_util.cuh"
#include "kernels/cuda/moe_route.cuh"
#include "kernels/cuda/ops_cuda.h"
#include "kernels/cuda/pdl.cuh"

#define MOE_THREADS 256
#define MOE_CHUNK 512        // slots per histogram / placement chunk

// ---------------------------------------------------------------------------------------------
// workspace: row_of [T*K] | hist [E * chunks] | count [E] | psum [E] (double), 256-byte aligned

typedef struct {
    int32_t *row_of, *hist, *count;
    double *psum;
} moe_ws_t;

static size_t al256(size_t x) { return (x + 255) & ~(size_t)255; }

static size_t moe_chunks(int T, int K) { return ((size_t)T * K + MOE_CHUNK - 1) / MOE_CHUNK; }

// Bytes the layout needs; fills w from ws when w is not NULL.
static size_t moe_ws_layout(moe_ws_t *w, void *ws, int T, int E, int K) {
    size_t n = (size_t)(T > 0 ? T : 0) * (K > 0 ? K : 0), e = E > 0 ? (size_t)E : 0;
    size_t o_row = 0, o_hist = o_row + al256(n * 4), o_count = o_hist + al256(e * moe_chunks(T, K) * 4);
    size_t o_psum = o_count + al256(e * 4), end = o_psum + al256(e * 8);
    if (w) {
        char *b = (char *)(((uintptr_t)ws + 255) & ~(uintptr_t)255);
        w->row_of = (int32_t *)(b + o_row);
        w->hist = (int32_t *)(b + o_hist);
        w->count = (int32_t *)(b + o_count);
        w->psum = (double *)(b + o_psum);
    }
    return end + 256;  // room to align the base
}

extern "C" size_t moe_workspace_bytes_cuda(int T, int E, int K) { return moe_ws_layout(NULL, NULL, T, E, K); }

static int moe_ws(const char *fn, moe_ws_t *w, void *ws, size_t ws_bytes, int T, int E, int K) {
    size_t need = moe_ws_layout(NULL, NULL, T, E, K);
    if (!ws || ws_bytes < need)
        return cispo_fail("%s: workspace of %zu bytes is too small, need %zu (moe_workspace_bytes_cuda)", fn,
                          ws_bytes, need);
    moe_ws_layout(w, ws, T, E, K);
    return 0;
}

// ---------------------------------------------------------------------------------------------
// route forward: one warp per token (moe_route_row, kernels/cuda/moe_route.cuh)

template <typename T, int NJ>
__global__ void moe_route_forward_kernel(float *probs, int32_t *topk_idx, float *topk_w, const T *logits, int Tn,
                                         int E, int K, int replay) {
    pdl_wait();  // launched with PDL (kernels/cuda/pdl.cuh)
    pdl_trigger();
    int warp = (int)((blockIdx.x * (size_t)blockDim.x + threadIdx.x) >> 5);
    int nwarps = (int)((gridDim.x * (size_t)blockDim.x) >> 5);
    for (int t = warp; t < Tn; t += nwarps)
        moe_route_row<T, NJ>(probs + (size_t)t * E, topk_idx + (size_t)t * K, topk_w + (size_t)t * K,
                             logits + (size_t)t * E, E, K, replay);
}

extern "C" int moe_route_forward_cuda(float *probs, int32_t *topk_idx, float *topk_w, const void *logits, int T_,
                                      int E, int K, int replay, int dtype, cudaStream_t st) {
    if (T_ < 0 || E < 1 || K < 1 || K > E)
        return cispo_fail("moe_route_forward_cuda: bad sizes T=%d E=%d K=%d (need 1 <= K <= E)", T_, E, K);
    if (E > 32 * MOE_MAX_PER_LANE || K > MOE_MAX_K)
        return cispo_fail("moe_route_forward_cuda: E=%d K=%d above the supported %d experts, top-%d", E, K,
                          32 * MOE_MAX_PER_LANE, MOE_MAX_K);
    if (T_ == 0) return 0;
    EW_DISPATCH("moe_route_forward_cuda", dtype, {
        MOE_ROUTE_NJ_DISPATCH(E, PDL_LAUNCH(ew_blocks((size_t)T_ * 32, MOE_THREADS), MOE_THREADS, 0, st,
                                            (moe_route_forward_kernel<T, NJ>), probs, topk_idx, topk_w,
                                            (const T *)logits, T_, E, K, replay));
    });
    return ew_check("moe_route_forward_cuda");
}

// ---------------------------------------------------------------------------------------------
// expert counts (integer atomics: exact whatever the order); slots with an index outside [0, E) are
// ignored (the CPU asserts on them)

__global__ void moe_count_kernel(int32_t *count, const int32_t *topk_idx, size_t n, int E) {
    size_t tid = (size_t)blockIdx.x * blockDim.x + threadIdx.x, stride = (size_t)gridDim.x * blockDim.x;
    for (size_t s = tid; s < n; s += stride) {
        int e = topk_idx[s];
        if (e >= 0 && e < E) atomicAdd(count + e, 1);
    }
}

static int moe_counts(const char *fn, int32_t *count, const int32_t *topk_idx, int T_, int E, int K,
                      cudaStream_t st) {
    cudaError_t e = cudaMemsetAsync(count, 0, (size_t)E * sizeof(int32_t), st);
    if (e != cudaSuccess) return cispo_fail("%s: %s", fn, cudaGetErrorString(e));
    size_t n = (size_t)T_ * K;
    if (n) moe_count_kernel<<<ew_blocks(n, MOE_THREADS), MOE_THREADS, 0, st>>>(count, topk_idx, n, E);
    return ew_check(fn);
}

// psum[e] = sum_t probs[t,e] in double: block (32 experts) x (32 row lanes), row lanes added in order.
__global__ void moe_psum_kernel(double *psum, const float *probs, int Tn, int E) {
    __shared__ double sh[32][33];
    int tx = threadIdx.x & 31, ty = threadIdx.x >> 5, e = blockIdx.x * 32 + tx;
    double s = 0;
    if (e < E)
        for (int t = ty; t < Tn; t += 32) s += probs[(size_t)t * E + e];
    sh[ty][tx] = s;
    __syncthreads();
    if (ty == 0 && e < E) {
        double a = 0;
        for (int i = 0; i < 32; i++) a += sh[i][tx];
        psum[e] = a;
    }
}

// aux = E / T^2 * sum_e count[e] psum[e]
__global__ void moe_aux_final_kernel(float *out, const int32_t *count, const double *psum, int Tn, int E) {
    __shared__ double sh[32];
    double s = 0;
    for (int e = threadIdx.x; e < E; e += blockDim.x) s += (double)count[e] * psum[e];
    int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    s = ew_warp_sum_d(s);
    if (lane == 0) sh[warp] = s;
    __syncthreads();
    if (warp == 0) {
        s = lane < (int)(blockDim.x >> 5) ? sh[lane] : 0.0;
        s = ew_warp_sum_d(s);
        if (lane == 0) *out = Tn > 0 ? (float)(s * ((double)E / ((double)Tn * Tn))) : 0.0f;
    }
}

extern "C" int moe_aux_loss_cuda(float *out, const float *probs, const int32_t *topk_idx, int T_, int E, int K,
                                 void *ws, size_t ws_bytes, cudaStream_t st) {
    if (T_ < 0 || E < 1 || K < 1) return cispo_fail("moe_aux_loss_cuda: bad sizes T=%d E=%d K=%d", T_, E, K);
    moe_ws_t w;
    if (moe_ws("moe_aux_loss_cuda", &w, ws, ws_bytes, T_, E, K)) return -1;
    if (moe_counts("moe_aux_loss_cuda", w.count, topk_idx, T_, E, K, st)) return -1;
    moe_psum_kernel<<<(unsigned)((E + 31) / 32), 1024, 0, st>>>(w.psum, probs, T_, E);
    if (ew_check("moe_aux_loss_cuda")) return -1;
    moe_aux_final_kernel<<<1, 256, 0, st>>>(out, w.count, w.psum, T_, E);
    return ew_check("moe_aux_loss_cuda");
}

// ---------------------------------------------------------------------------------------------
// route backward, one warp per token (kernels/cpu/moe.c's chain rule):
//   dp_e = aux_scale count[e] + sum_{k: idx_k = e} (dw_k - sum_j dw_j w_j) / S,  S = sum_k p_{idx_k}
//   dz_e = p_e (dp_e - sum_e' p_e' dp_e')

template <typename T>
__global__ void moe_route_backward_kernel(T *dlogits, const float *dtopk_w, double aux_scale, const float *probs,
                                          const int32_t *topk_idx, const float *topk_w, const int32_t *count, int Tn,
                                          int E, int K, int acc) {
    int lane = threadIdx.x & 31;
    int warp = (int)((blockIdx.x * (size_t)blockDim.x + threadIdx.x) >> 5);
    int nwarps = (int)((gridDim.x * (size_t)blockDim.x) >> 5);
    for (int t = warp; t < Tn; t += nwarps) {
        const float *p = probs + (size_t)t * E;
        const int32_t *idx = topk_idx + (size_t)t * K;
        double S = 1, dot = 0;
        if (dtopk_w) {
            const float *dw = dtopk_w + (size_t)t * K, *w = topk_w + (size_t)t * K;
            S = 0;
            for (int k = 0; k < K; k++) {
                S += p[idx[k]];
                dot += (double)dw[k] * w[k];
            }
        }
        double pdp = 0;
        for (int e = lane; e < E; e += 32) {
            double dp = aux_scale * count[e];
            if (dtopk_w)
                for (int k = 0; k < K; k++)
                    if (idx[k] == e) dp += (dtopk_w[(size_t)t * K + k] - dot) / S;
            pdp += p[e] * dp;
        }
        pdp = ew_warp_sum_d(pdp);
        T *dz = dlogits + (size_t)t * E;
        for (int e = lane; e < E; e += 32) {
            double dp = aux_scale * count[e];
            if (dtopk_w)
                for (int k = 0; k < K; k++)
                    if (idx[k] == e) dp += (dtopk_w[(size_t)t * K + k] - dot) / S;
            float v = (float)(p[e] * (dp - pdp));
            ew_put(dz + e, acc ? ew_get(dz + e) + v : v);
        }
    }
}

extern "C" int moe_route_backward_cuda(void *dlogits, const float *dtopk_w, float d_aux, const float *probs,
                                       const int32_t *topk_idx, const float *topk_w, int T_, int E, int K, int acc,
                                       int dtype, void *ws, size_t ws_bytes, cudaStream_t st) {
    if (T_ < 0 || E < 1 || K < 1) return cispo_fail("moe_route_backward_cuda: bad sizes T=%d E=%d K=%d", T_, E, K);
    if (T_ == 0) return 0;
    moe_ws_t w;
    if (moe_ws("moe_route_backward_cuda", &w, ws, ws_bytes, T_, E, K)) return -1;
    if (moe_counts("moe_route_backward_cuda", w.count, topk_idx, T_, E, K, st)) return -1;
    double aux_scale = (double)d_aux * E / ((double)T_ * T_);
    EW_DISPATCH("moe_route_backward_cuda", dtype, {
        moe_route_backward_kernel<T><<<ew_blocks((size_t)T_ * 32, MOE_THREADS), MOE_THREADS, 0, st>>>(
            (T *)dlogits, dtopk_w, aux_scale, probs, topk_idx, topk_w, w.count, T_, E, K, acc);
    });
    return ew_check("moe_route_backward_cuda");
}

// ---------------------------------------------------------------------------------------------
// dispatch: stable counting sort of the slots by expert

// hist[e * nb + b] = slots of chunk b routed to e
__global__ void moe_hist_kernel(int32_t *hist, const int32_t *topk_idx, size_t n, int E, int nb) {
    extern __shared__ int32_t cnt[];
    int b = blockIdx.x;
    for (int e = threadIdx.x; e < E; e += blockDim.x) cnt[e] = 0;
    __syncthreads();
    size_t s0 = (size_t)b * MOE_CHUNK, s1 = s0 + MOE_CHUNK < n ? s0 + MOE_CHUNK : n;
    for (size_t s = s0 + threadIdx.x; s < s1; s += blockDim.x) {
        int e = topk_idx[s];
        if (e >= 0 && e < E) atomicAdd(cnt + e, 1);
    }
    __syncthreads();
    for (int e = threadIdx.x; e < E; e += blockDim.x) hist[(size_t)e * nb + b] = cnt[e];
}

// In place exclusive scan of hist [M = E * nb] in one block of 1024 threads (each a contiguous run);
// offsets[e] = start of expert e's rows, offsets[E] = n.
__global__ void moe_scan_kernel(int32_t *hist, int32_t *offsets, size_t M, int nb, int E, int32_t n) {
    __shared__ int32_t warp_tot[32];
    size_t per = (M + blockDim.x - 1) / blockDim.x, i0 = threadIdx.x * per, i1 = i0 + per < M ? i0 + per : M;
    int32_t local = 0;
    for (size_t i = i0; i < i1; i++) local += hist[i];
    // exclusive scan of `local` over the block
    int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    int32_t incl = local;
#pragma unroll
    for (int o = 1; o < 32; o <<= 1) {
        int32_t v = __shfl_up_sync(0xffffffffu, incl, o);
        if (lane >= o) incl += v;
    }
    if (lane == 31) warp_tot[warp] = incl;
    __syncthreads();
    if (warp == 0) {
        int32_t v = lane < (int)(blockDim.x >> 5) ? warp_tot[lane] : 0, inc = v;
#pragma unroll
        for (int o = 1; o < 32; o <<= 1) {
            int32_t u = __shfl_up_sync(0xffffffffu, inc, o);
            if (lane >= o) inc += u;
        }
        warp_tot[lane] = inc - v;  // exclusive prefix of the warps
    }
    __syncthreads();
    int32_t run = warp_tot[warp] + incl - local;
    for (size_t i = i0; i < i1; i++) {
        int32_t h = hist[i];
        hist[i] = run;
        if (i % nb == 0) offsets[i / nb] = run;
        run += h;
    }
    if (threadIdx.x == 0) offsets[E] = n;
}

// One warp per chunk: slots in order, 32 at a time; lanes sending to the same expert take
// consecutive rows in lane order (match_any + rank), so each expert's rows keep slot order.
__global__ void moe_place_kernel(int32_t *perm, const int32_t *hist, const int32_t *topk_idx, size_t n, int E,
                                 int nb) {
    extern __shared__ int32_t next[];
    int b = blockIdx.x, lane = threadIdx.x;
    for (int e = lane; e < E; e += 32) next[e] = hist[(size_t)e * nb + b];
    __syncwarp();
    size_t s0 = (size_t)b * MOE_CHUNK, s1 = s0 + MOE_CHUNK < n ? s0 + MOE_CHUNK : n;
    for (size_t base = s0; base < s1; base += 32) {
        size_t s = base + lane;
        int e = -1;
        if (s < s1) {
            e = topk_idx[s];
            if (e < 0 || e >= E) e = -1;
        }
        unsigned peers = __match_any_sync(0xffffffffu, e);
        int rank = __popc(peers & ((1u << lane) - 1u));
        if (e >= 0) perm[next[e] + rank] = (int32_t)s;
        __syncwarp();
        if (e >= 0 && rank == 0) next[e] += __popc(peers);
        __syncwarp();
    }
}

// A small batch (decode: a few hundred slots) in one launch instead of four: every block counts, scans and
// places all n slots in shared memory, in the same stable order as the kernels above (warp 0, 32 slots at a
// time, match_any + rank); block 0 writes perm and the offsets; every block gathers its share of the rows
// (xe[j] = x[perm[j] / K]; a slot with an expert outside [0, E) leaves its row, the last ones, as zeros).
#define MOE_SMALL_E 1024
template <typename U>
__global__ void moe_dispatch_small_kernel(U *xe, int32_t *perm, int32_t *offsets, const U *x,
                                          const int32_t *topk_idx, int n, int E, int K, size_t CU) {
    __shared__ int32_t cnt[MOE_SMALL_E], off[MOE_SMALL_E], pos[MOE_SMALL_SLOTS];
    pdl_wait();  // launched with PDL (kernels/cuda/pdl.cuh)
    pdl_trigger();
    moe_sort_block(pos, off, cnt, topk_idx, n, E);
    if (blockIdx.x == 0) {
        for (int j = threadIdx.x; j < n; j += blockDim.x) perm[j] = pos[j];
        for (int e = threadIdx.x; e < E; e += blockDim.x) offsets[e] = off[e];
        if (threadIdx.x == 0) offsets[E] = n;
    }
    U zero;
    memset(&zero, 0, sizeof zero);
    for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < (size_t)n * CU; i += (size_t)gridDim.x * blockDim.x) {
        size_t j = i / CU, c = i - j * CU;
        xe[i] = pos[j] >= 0 ? x[(size_t)(pos[j] / K) * CU + c] : zero;
    }
}

// xe[j] = x[perm[j] / K], rows of CU copy units
template <typename U>
__global__ void moe_gather_kernel(U *xe, const U *x, const int32_t *perm, size_t n, size_t CU, int K) {
    size_t tid = (size_t)blockIdx.x * blockDim.x + threadIdx.x, stride = (size_t)gridDim.x * blockDim.x;
    size_t total = n * CU;
    for (size_t i = tid; i < total; i += stride) {
        size_t j = i / CU, c = i - j * CU;
        xe[i] = x[(size_t)(perm[j] / K) * CU + c];
    }
}

extern "C" int moe_dispatch_cuda(void *xe, int32_t *perm, int32_t *offsets, const void *x, const int32_t *topk_idx,
                                 int T_, int C, int E, int K, int dtype, void *ws, size_t ws_bytes, cudaStream_t st) {
    const char *fn = "moe_dispatch_cuda";
    if (T_ < 0 || C < 0 || E < 1 || K < 1) return cispo_fail("%s: bad sizes T=%d C=%d E=%d K=%d", fn, T_, C, E, K);
    if (dtype != DTYPE_BF16 && dtype != DTYPE_F32) return cispo_fail("%s: dtype %d is not supported", fn, dtype);
    if ((size_t)E * sizeof(int32_t) > 48 * 1024) return cispo_fail("%s: E=%d experts above 12288", fn, E);
    size_t n = (size_t)T_ * K;
    if (n > 0x7fffffff) return cispo_fail("%s: T*K=%zu slots above int32", fn, n);
    moe_ws_t w;
    if (moe_ws(fn, &w, ws, ws_bytes, T_, E, K)) return -1;
    if (n == 0) {
        cudaError_t e = cudaMemsetAsync(offsets, 0, (size_t)(E + 1) * sizeof(int32_t), st);
        if (e != cudaSuccess) return cispo_fail("%s: %s", fn, cudaGetErrorString(e));
        return 0;
    }
    if (n <= MOE_SMALL_SLOTS && E <= MOE_SMALL_E) {  // decode-sized: one launch
        size_t esz = dtype == DTYPE_BF16 ? 2 : 4, row = (size_t)C * esz;
        const int vec = row % 16 == 0 && ew_aligned16(xe) && ew_aligned16(x);
        size_t CU = vec ? row / 16 : (size_t)C, units = n * (CU > 0 ? CU : 1);
        unsigned blocks = (unsigned)((units + MOE_THREADS - 1) / MOE_THREADS);
        blocks = blocks < 1 ? 1 : (blocks > 264 ? 264 : blocks);
        if (vec)
            PDL_LAUNCH(blocks, MOE_THREADS, 0, st, moe_dispatch_small_kernel<uint4>,
                (uint4 *)xe, perm, offsets, (const uint4 *)x, topk_idx, (int)n, E, K, CU);
        else if (esz == 2)
            PDL_LAUNCH(blocks, MOE_THREADS, 0, st, moe_dispatch_small_kernel<uint16_t>,
                (uint16_t *)xe, perm, offsets, (const uint16_t *)x, topk_idx, (int)n, E, K, CU);
        else
            PDL_LAUNCH(blocks, MOE_THREADS, 0, st, moe_dispatch_small_kernel<uint32_t>,
                (uint32_t *)xe, perm, offsets, (const uint32_t *)x, topk_idx, (int)n, E, K, CU);
        return ew_check(fn);
    }
    int nb = (int)moe_chunks(T_, K);
    size_t smem = (size_t)E * sizeof(int32_t);
    moe_hist_kernel<<<nb, MOE_THREADS, smem, st>>>(w.hist, topk_idx, n, E, nb);
    if (ew_check(fn)) return -1;
    moe_scan_kernel<<<1, 1024, 0, st>>>(w.hist, offsets, (size_t)E * nb, nb, E, (int32_t)n);
    if (ew_check(fn)) return -1;
    moe_place_kernel<<<nb, 32, smem, st>>>(perm, w.hist, topk_idx, n, E, nb);
    if (ew_check(fn)) return -1;
    if (C == 0) return 0;
    size_t esz = dtype == DTYPE_BF16 ? 2 : 4, row = (size_t)C * esz;
    if (row % 16 == 0 && ew_aligned16(xe) && ew_aligned16(x))
        moe_gather_kernel<uint4><<<ew_blocks(n * (row / 16), MOE_THREADS), MOE_THREADS, 0, st>>>(
            (uint4 *)xe, (const uint4 *)x, perm, n, row / 16, K);
    else if (esz == 2)
        moe_gather_kernel<uint16_t><<<ew_blocks(n * C, MOE_THREADS), MOE_THREADS, 0, st>>>(
            (uint16_t *)xe, (const uint16_t *)x, perm, n, (size_t)C, K);
    else
        moe_gather_kernel<uint32_t><<<ew_blocks(n * C, MOE_THREADS), MOE_THREADS, 0, st>>>(
            (uint32_t *)xe, (const uint32_t *)x, perm, n, (size_t)C, K);
    return ew_check(fn);
}

// ---------------------------------------------------------------------------------------------
// token-order gathers through row_of (the inverse of perm)

__global__ void moe_row_of_kernel(int32_t *row_of, const int32_t *perm, size_t n) {
    size_t tid = (size_t)blockIdx.x * blockDim.x + threadIdx.x, stride = (size_t)gridDim.x * blockDim.x;
    for (size_t j = tid; j < n; j += stride) {
        int32_t s = perm[j];
        if (s >= 0 && (size_t)s < n) row_of[s] = (int32_t)j;
    }
}

static int moe_row_of(const char *fn, int32_t *row_of, const int32_t *perm, size_t n, cudaStream_t st) {
    moe_row_of_kernel<<<ew_blocks(n, MOE_THREADS), MOE_THREADS, 0, st>>>(row_of, perm, n);
    return ew_check(fn);
}

extern "C" int moe_row_of_cuda(int32_t *row_of, const int32_t *perm, size_t n, cudaStream_t st) {
    return moe_row_of("moe_row_of_cuda", row_of, perm, n, st);
}


// out[t] (=|+=) sum_k (w ? w[t,k] : 1) src[row_of[t*K + k]]: the combine (weights) and the dispatch
// backward (no weights); rows of C elements, V at a time. SMALL (at most MOE_SMALL_SLOTS slots): row_of
// holds perm instead, and each block inverts it in shared memory (one launch instead of two).
template <typename T, int V, bool SMALL>
__global__ void moe_gather_sum_kernel(T *out, const T *src, const float *w, const int32_t *row_of, int Tn, int C,
                                      int K, int acc) {
    extern __shared__ int32_t inv[];
    if (SMALL) row_of = moe_perm_inverse_shared(inv, row_of, Tn * K);
    size_t tid = (size_t)blockIdx.x * blockDim.x + threadIdx.x, stride = (size_t)gridDim.x * blockDim.x;
    size_t CV = (size_t)C / V, total = (size_t)Tn * CV;
    for (size_t i = tid; i < total; i += stride) {
        size_t t = i / CV, c = (i - t * CV) * V;
        float a[V], f[V];
#pragma unroll
        for (int j = 0; j < V; j++) a[j] = 0;
        for (int k = 0; k < K; k++) {
            size_t s = t * K + k;
            float wk = w ? w[s] : 1.0f;
            ew_ld<T, V>(f, src + (size_t)row_of[s] * C + c);
#pragma unroll
            for (int j = 0; j < V; j++) a[j] += wk * f[j];
        }
        T *o = out + t * C + c;
        if (acc) {
            ew_ld<T, V>(f, o);
#pragma unroll
            for (int j = 0; j < V; j++) a[j] += f[j];
        }
        ew_st<T, V>(o, a);
    }
}

// perm (not NULL): the SMALL form, row_of unused.
template <typename T>
static void moe_gather_sum(T *out, const T *src, const float *w, const int32_t *row_of, int Tn, int C, int K, int acc,
                           cudaStream_t st, const int32_t *perm = NULL) {
    const int N = EW_VN(T);
    const size_t smem = perm ? (size_t)Tn * K * sizeof(int32_t) : 0;
    const int32_t *ro = perm ? perm : row_of;
    if (C % N == 0 && ew_aligned16(out) && ew_aligned16(src)) {
        unsigned g = ew_blocks((size_t)Tn * (C / N), MOE_THREADS);
        if (perm) moe_gather_sum_kernel<T, N, true><<<g, MOE_THREADS, smem, st>>>(out, src, w, ro, Tn, C, K, acc);
        else moe_gather_sum_kernel<T, N, false><<<g, MOE_THREADS, 0, st>>>(out, src, w, ro, Tn, C, K, acc);
    } else {
        unsigned g = ew_blocks((size_t)Tn * C, MOE_THREADS);
        if (perm) moe_gather_sum_kernel<T, 1, true><<<g, MOE_THREADS, smem, st>>>(out, src, w, ro, Tn, C, K, acc);
        else moe_gather_sum_kernel<T, 1, false><<<g, MOE_THREADS, 0, st>>>(out, src, w, ro, Tn, C, K, acc);
    }
}

extern "C" int moe_dispatch_backward_cuda(void *dx, const void *dxe, const int32_t *perm, int T_, int C, int K, int acc,
                                          int dtype, void *ws, size_t ws_bytes, cudaStream_t st) {
    const char *fn = "moe_dispatch_backward_cuda";
    if (T_ < 0 || C < 0 || K < 1) return cispo_fail("%s: bad sizes T=%d C=%d K=%d", fn, T_, C, K);
    if (T_ == 0 || C == 0) return 0;
    moe_ws_t w;
    if (moe_ws(fn, &w, ws, ws_bytes, T_, 1, K)) return -1;
    if (moe_row_of(fn, w.row_of, perm, (size_t)T_ * K, st)) return -1;
    EW_DISPATCH(fn, dtype, moe_gather_sum<T>((T *)dx, (const T *)dxe, NULL, w.row_of, T_, C, K, acc, st));
    return ew_check(fn);
}

extern "C" int moe_combine_forward_cuda(void *y, const void *ye, const float *topk_w, const int32_t *perm, int T_,
                                        int C, int K, int dtype, void *ws, size_t ws_bytes, cudaStream_t st) {
    const char *fn = "moe_combine_forward_cuda";
    if (T_ < 0 || C < 0 || K < 1) return cispo_fail("%s: bad sizes T=%d C=%d K=%d", fn, T_, C, K);
    if (T_ == 0 || C == 0) return 0;
    if (!topk_w) return cispo_fail("%s: topk_w is NULL", fn);
    moe_ws_t w;
    if (moe_ws(fn, &w, ws, ws_bytes, T_, 1, K)) return -1;
    if ((size_t)T_ * K <= MOE_SMALL_SLOTS) {  // decode-sized: perm inverted inside the one launch
        EW_DISPATCH(fn, dtype, moe_gather_sum<T>((T *)y, (const T *)ye, topk_w, NULL, T_, C, K, 0, st, perm));
        return ew_check(fn);
    }
    if (moe_row_of(fn, w.row_of, perm, (size_t)T_ * K, st)) return -1;
    EW_DISPATCH(fn, dtype, moe_gather_sum<T>((T *)y, (const T *)ye, topk_w, w.row_of, T_, C, K, 0, st));
    return ew_check(fn);
}

// One block per token: for each k, dye[row] (=|+=) w dy[t] and dtopk_w[t,k] (=|+=) <dy[t], ye[row]>.
template <typename T, int V>
__global__ void moe_combine_backward_kernel(T *dye, float *dtopk_w, const T *dy, const T *ye, const float *topk_w,
                                            const int32_t *row_of, int Tn, int C, int K, int acc) {
    __shared__ float sh[32];
    int units = C / V;
    for (int t = blockIdx.x; t < Tn; t += gridDim.x) {
        const T *g = dy + (size_t)t * C;
        for (int k = 0; k < K; k++) {
            size_t s = (size_t)t * K + k, row = (size_t)row_of[s];
            float wk = topk_w[s], dot = 0;
            for (int u = threadIdx.x; u < units; u += blockDim.x) {
                float fg[V], f[V];
                ew_ld<T, V>(fg, g + (size_t)u * V);
                if (dtopk_w) {
                    ew_ld<T, V>(f, ye + row * C + (size_t)u * V);
#pragma unroll
                    for (int j = 0; j < V; j++) dot += fg[j] * f[j];
                }
                if (dye) {
                    T *d = dye + row * C + (size_t)u * V;
                    if (acc) ew_ld<T, V>(f, d);
#pragma unroll
                    for (int j = 0; j < V; j++) f[j] = acc ? f[j] + wk * fg[j] : wk * fg[j];
                    ew_st<T, V>(d, f);
                }
            }
            if (dtopk_w) {
                dot = ew_block_sum(dot, sh);
                if (threadIdx.x == 0) dtopk_w[s] = acc ? dtopk_w[s] + dot : dot;
            }
        }
    }
}

extern "C" int moe_combine_backward_cuda(void *dye, float *dtopk_w, const void *dy, const void *ye, const float *topk_w,
                                         const int32_t *perm, int T_, int C, int K, int acc, int dtype, void *ws,
                                         size_t ws_bytes, cudaStream_t st) {
    const char *fn = "moe_combine_backward_cuda";
    if (T_ < 0 || C < 0 || K < 1) return cispo_fail("%s: bad sizes T=%d C=%d K=%d", fn, T_, C, K);
    if (T_ == 0 || (!dye && !dtopk_w)) return 0;
    moe_ws_t w;
    if (moe_ws(fn, &w, ws, ws_bytes, T_, 1, K)) return -1;
    if (moe_row_of(fn, w.row_of, perm, (size_t)T_ * K, st)) return -1;
    unsigned blocks = T_ < 65535 ? (unsigned)T_ : 65535u;
    EW_DISPATCH(fn, dtype, {
        const int N = EW_VN(T);
        if (C % N == 0 && ew_aligned16(dye) && ew_aligned16(dy) && ew_aligned16(ye)) {
            int thr = (C / N + 31) / 32 * 32;
            thr = thr < 32 ? 32 : (thr > 256 ? 256 : thr);
            moe_combine_backward_kernel<T, N><<<blocks, thr, 0, st>>>((T *)dye, dtopk_w, (const T *)dy,
                                                                      (const T *)ye, topk_w, w.row_of, T_, C, K, acc);
        } else {
            moe_combine_backward_kernel<T, 1><<<blocks, 256, 0, st>>>((T *)dye, dtopk_w, (const T *)dy,
                                                                      (const T *)ye, topk_w, w.row_of, T_, C, K, acc);
        }
    });
    return ew_check(fn);
}
