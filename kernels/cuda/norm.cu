// kernels/cuda/norm.cu — RMSNorm over the last dimension on CUDA: out = w * (x * rstd),
// rstd = 1/sqrt(mean(x^2) + eps) (fp32, saved for the backward). CPU reference: kernels/cpu/rmsnorm.c.
// defines: rmsnorm_forward_cuda, rmsnorm_backward_cuda, rmsnorm_backward_workspace_bytes_cuda, residual_rmsnorm_cuda,
//          residual_rmsnorm_route_cuda, rmsnorm_gate_forward_cuda, rmsnorm_gate_backward_cuda, moe_combine_rmsnorm_cuda
// Forward and dx: one block per row. dw: each block owns a strip of columns and walks the rows of its split
// (blockIdx.y); with more than one split the splits' sums go to the workspace and a second kernel adds them in
// split order, so the sum over tokens has one fixed order and no atomics (deterministic) either way.
#include <cuda_bf16.h>
#include <cuda_runtime.h>

extern "C" {
#include "base/common.h"
#include "kernels/backend.h"
#include "kernels/ops.h"
}
#include "kernels/act_eval.h"
#include "kernels/cuda/backend_cuda.h"
#include "kernels/cuda/elementwise_util.cuh"
#include "kernels/cuda/moe_route.cuh"
#include "kernels/cuda/ops_cuda.h"
#include "kernels/cuda/pdl.cuh"

// Threads of a row block: about one V-vector each, 32..512.
static int row_threads(int units) {
    int t = (units + 31) / 32 * 32;
    return t < 32 ? 32 : (t > 512 ? 512 : t);
}

// V elements per step: EW_VN(T) on the vector path, 1 otherwise.

// RES: x is first made as residual_mix does, x = alpha r + beta y (r may be NULL), and stored; each thread
// then reads back the units it stored, so the norm sees x as stored (the same values as the two ops).
// GATE (gate != NULL, rows ldg elements apart): gated = sigmoid(gate) * out as stored, the formula of
// sigmoid_gate_forward; out may then be NULL (not stored; the same rounding in registers).
// CMB (with RES): y is the MoE combine, y[t] = sum_k cw[t*K+k] y[row_of[t*K+k]] rounded to T as
// moe_combine_forward stores it; small: row_of holds perm instead, inverted in shared memory by each block.
// NJ > 0 (with RES; residual_rmsnorm_route): the MoE router of the row too, as matmul then moe_route_forward would:
// logits[e] = out . wg[e] (as stored; fp32 sums, each warp its experts, lanes over the row, then a warp sum),
// rounded to T, then the routes by warp 0 (moe_route_row, NJ its registers a lane) from those logits in shared
// memory. Launched with a warp an expert (up to 32 warps; the norm's loops leave the extra threads idle), so that
// the experts' weight rows are read at once, not one L2 round trip after another.
// perm non-NULL: the CTA that finishes last (each counts itself in *count, which holds 0 before and after) sorts
// every row's routes by expert as moe_dispatch does (moe_sort_block: perm [T K], offsets [E + 1]), in shared
// memory after the logits (E T-values rounded up to 4 bytes, then 2 E int32).
template <typename T>
struct RouteArgs {
    const T *wg;  // router weight [E, C]
    T *logits;    // [T, E]
    float *probs;  // [T, E]
    int32_t *idx;  // [T, K]
    float *w;      // [T, K]
    int E, K;
    int32_t *perm, *offsets, *count;
};
template <typename T, int V, bool RES, bool CMB = false, int NJ = 0>
__global__ void rmsnorm_forward_kernel(T *out, float *rstd, T *x, const T *w, int Tn, int C, float eps, const T *r,
                                       const T *y, float alpha, float beta, const T *gate, T *gated,
                                       const float *cw, const int32_t *row_of, int K, int small, int ldg,
                                       const RouteArgs<T> ra) {
    __shared__ float sh[32];
    extern __shared__ int32_t inv[];
    pdl_wait();  // launched with PDL (kernels/cuda/pdl.cuh)
    pdl_trigger();
    if (CMB && small) row_of = moe_perm_inverse_shared(inv, row_of, Tn * K);
    int units = C / V;
    for (int t = blockIdx.x; t < Tn; t += gridDim.x) {
        T *xr = x + (size_t)t * C;
        // NULL only with a gate and without RES (rmsnorm_gate_forward's out not kept)
        T *o = RES || out ? out + (size_t)t * C : NULL;
        float ss = 0;
        for (int u = threadIdx.x; u < units; u += blockDim.x) {
            float f[V];
            if (RES) {
                float fr[V];
                if (CMB) {
#pragma unroll
                    for (int j = 0; j < V; j++) fr[j] = 0.0f;
                    for (int k = 0; k < K; k++) {
                        const size_t sl = (size_t)t * K + k;
                        ew_ld<T, V>(f, y + (size_t)row_of[sl] * C + (size_t)u * V);
#pragma unroll
                        for (int j = 0; j < V; j++) fr[j] += cw[sl] * f[j];
                    }
#pragma unroll
                    for (int j = 0; j < V; j++) f[j] = ew_round<T>(fr[j]);  // the combine's output as stored
                } else {
                    ew_ld<T, V>(f, y + (size_t)t * C + (size_t)u * V);
                }
                if (r) {
                    ew_ld<T, V>(fr, r + (size_t)t * C + (size_t)u * V);
#pragma unroll
                    for (int j = 0; j < V; j++) f[j] = alpha * fr[j] + beta * f[j];
                } else {
#pragma unroll
                    for (int j = 0; j < V; j++) f[j] = beta * f[j];
                }
                ew_st<T, V>(xr + (size_t)u * V, f);
            }
            ew_ld<T, V>(f, xr + (size_t)u * V);
#pragma unroll
            for (int j = 0; j < V; j++) ss += f[j] * f[j];
        }
        ss = ew_block_sum(ss, sh);
        float r = (float)(1.0 / sqrt((double)ss / C + (double)eps));
        if (threadIdx.x == 0) rstd[t] = r;
        for (int u = threadIdx.x; u < units; u += blockDim.x) {
            float f[V], g[V];
            ew_ld<T, V>(f, xr + (size_t)u * V);
            ew_ld<T, V>(g, w + (size_t)u * V);
#pragma unroll
            for (int j = 0; j < V; j++) f[j] = g[j] * (f[j] * r);  // HF order: weight * (x * rstd)
            if (RES || o) ew_st<T, V>(o + (size_t)u * V, f);
            if (gate) {  // the output rounded as stored, then the gate
#pragma unroll
                for (int j = 0; j < V; j++) f[j] = ew_round<T>(f[j]);
                ew_ld<T, V>(g, gate + (size_t)t * ldg + (size_t)u * V);
#pragma unroll
                for (int j = 0; j < V; j++) f[j] = act_sigmoidf(g[j]) * f[j];
                ew_st<T, V>(gated + (size_t)t * C + (size_t)u * V, f);
            }
        }
        if constexpr (NJ > 0) {
            T *zs = reinterpret_cast<T *>(inv);
            const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, nw = blockDim.x >> 5;
            __syncthreads();  // the row as stored, for every warp
            for (int e = warp; e < ra.E; e += nw) {
                const T *wr = ra.wg + (size_t)e * C;
                float acc = 0.0f;
#pragma unroll 4
                for (int u = lane; u < units; u += 32) {
                    float f[V], g[V];
                    ew_ld<T, V>(f, o + (size_t)u * V);
                    ew_ld<T, V>(g, wr + (size_t)u * V);
#pragma unroll
                    for (int j = 0; j < V; j++) acc += f[j] * g[j];
                }
                acc = ew_warp_sum(acc);
                if (lane == 0) {
                    ew_put(zs + e, acc);
                    ra.logits[(size_t)t * ra.E + e] = zs[e];
                }
            }
            __syncthreads();
            if (warp == 0)
                moe_route_row<T, NJ>(ra.probs + (size_t)t * ra.E, ra.idx + (size_t)t * ra.K, ra.w + (size_t)t * ra.K, zs,
                                     ra.E, ra.K, 0);
            __syncthreads();  // zs holds the next row's logits
        }
    }
    if constexpr (NJ > 0) {
        if (ra.perm) {  // the last CTA to finish sorts every row's routes
            __shared__ int last;
            __threadfence();  // each thread's routes, before the CTA's count
            __syncthreads();
            if (threadIdx.x == 0) last = atomicAdd(ra.count, 1) == (int)gridDim.x - 1;
            __syncthreads();
            if (last) {
                __threadfence();  // every CTA's routes, after their counts (moe_sort_block reads them from the L2)
                int32_t *cnt = inv + ((size_t)ra.E * sizeof(T) + 3) / 4, *off = cnt + ra.E;
                moe_sort_block(ra.perm, off, cnt, ra.idx, Tn * ra.K, ra.E);
                for (int e = threadIdx.x; e < ra.E; e += blockDim.x) ra.offsets[e] = off[e];
                if (threadIdx.x == 0) ra.offsets[ra.E] = Tn * ra.K, *ra.count = 0;
            }
        }
    }
}

// rmsnorm_gate_backward's gate (rmsnorm_gate_forward: gated = sigmoid(g) y, y the norm's output): with GATE the
// kernels below read dout as dgated and take the norm's dy = dout s (s = sigmoid(g), g's rows ldg apart), and the
// dx kernel also writes dg = dout y s (1 - s) (y = w (x r) in fp32, as the forward computes it before rounding).
template <typename T>
struct norm_gate_t {
    const T *g;
    T *dg;
    int ldg;
};

// dy of a V-vector from dout (GATE: dout as read kept in d0, times sigmoid of the gate's units at gr, kept in s)
template <typename T, int V, bool GATE>
__device__ __forceinline__ void norm_dy(float fd[V], float s[V], float d0[V], const T *dy, const T *gr) {
    ew_ld<T, V>(fd, dy);
    if (GATE) {
        float fg[V];
        ew_ld<T, V>(fg, gr);
#pragma unroll
        for (int j = 0; j < V; j++) d0[j] = fd[j], s[j] = act_sigmoidf(fg[j]), fd[j] = fd[j] * s[j];
    }
}

// dx_i = (acc ? acc_scale dx_i : 0) + r w_i dy_i - (r^3 / C) x_i sum_j w_j dy_j x_j (GATE: norm_gate_t's dy, and dg)
template <typename T, int V, bool GATE>
__global__ void rmsnorm_dx_kernel(T *dx, const T *dout, const T *x, const T *w, const float *rstd, int Tn, int C,
                                  int acc, float acc_scale, norm_gate_t<T> gate) {
    __shared__ float sh[32];
    int units = C / V;
    for (int t = blockIdx.x; t < Tn; t += gridDim.x) {
        const T *xr = x + (size_t)t * C, *dy = dout + (size_t)t * C, *gr = GATE ? gate.g + (size_t)t * gate.ldg : NULL;
        T *d = dx ? dx + (size_t)t * C : NULL;
        float dot = 0;
        for (int u = threadIdx.x; u < units; u += blockDim.x) {
            float fx[V], fd[V], fw[V], s[V], d0[V];
            ew_ld<T, V>(fx, xr + (size_t)u * V);
            norm_dy<T, V, GATE>(fd, s, d0, dy + (size_t)u * V, GATE ? gr + (size_t)u * V : NULL);
            ew_ld<T, V>(fw, w + (size_t)u * V);
#pragma unroll
            for (int j = 0; j < V; j++) dot += fw[j] * fd[j] * fx[j];
        }
        dot = ew_block_sum(dot, sh);
        float r = rstd[t], k = r * r * r * dot / (float)C;
        for (int u = threadIdx.x; u < units; u += blockDim.x) {
            float fx[V], fd[V], fw[V], fo[V], s[V], d0[V];
            ew_ld<T, V>(fx, xr + (size_t)u * V);
            norm_dy<T, V, GATE>(fd, s, d0, dy + (size_t)u * V, GATE ? gr + (size_t)u * V : NULL);
            ew_ld<T, V>(fw, w + (size_t)u * V);
            if (GATE) {  // dg = dgated y s (1 - s)
                float dg[V];
#pragma unroll
                for (int j = 0; j < V; j++) dg[j] = d0[j] * (fw[j] * (fx[j] * r)) * s[j] * (1.0f - s[j]);
                ew_st<T, V>(gate.dg + (size_t)t * C + (size_t)u * V, dg);
            }
            if (!d) continue;
            if (acc) ew_ld<T, V>(fo, d + (size_t)u * V);
#pragma unroll
            for (int j = 0; j < V; j++) {
                float v = r * fw[j] * fd[j] - k * fx[j];
                fd[j] = acc ? acc_scale * fo[j] + v : v;
            }
            ew_st<T, V>(d + (size_t)u * V, fd);
        }
    }
}

// dw[c] += sum_t dy[t,c] x[t,c] r[t] (GATE: norm_gate_t's dy). Block: TC threads across V*TC columns times 256/TC
// row groups, over the rows blockIdx.y * rows .. + rows; row group g takes the split's rows g, g + 256/TC, ...; the
// groups' sums are added in group order. PART: the split's sums to part[blockIdx.y][c] (rmsnorm_dw_sum_kernel adds
// them), else added to dw of type G (fp32, or bf16: the sum rounded once as it is added).
#define DW_THREADS 256
#define DW_MAX_SPLITS 32
template <typename T, int V, int TC, typename G, bool PART, bool GATE>
__global__ void rmsnorm_dw_kernel(G *dw, float *part, const T *dout, const T *x, const float *rstd, int Tn, int C,
                                  int rows, norm_gate_t<T> gate) {
    const int RG = DW_THREADS / TC, W = TC * V;
    __shared__ float sh[RG][W + 1];
    int tx = threadIdx.x % TC, g = threadIdx.x / TC;
    int c0 = blockIdx.x * W + tx * V;
    const int t0 = blockIdx.y * rows, t1 = min(Tn, t0 + rows);
    float a[V];
#pragma unroll
    for (int j = 0; j < V; j++) a[j] = 0;
    if (c0 < C) {
#pragma unroll 4
        for (int t = t0 + g; t < t1; t += RG) {
            float fx[V], fd[V], s[V], d0[V], r = rstd[t];
            ew_ld<T, V>(fx, x + (size_t)t * C + c0);
            norm_dy<T, V, GATE>(fd, s, d0, dout + (size_t)t * C + c0, GATE ? gate.g + (size_t)t * gate.ldg + c0 : NULL);
#pragma unroll
            for (int j = 0; j < V; j++) a[j] += fd[j] * fx[j] * r;
        }
    }
#pragma unroll
    for (int j = 0; j < V; j++) sh[g][tx * V + j] = a[j];
    __syncthreads();
    for (int c = threadIdx.x; c < W; c += DW_THREADS) {
        int col = blockIdx.x * W + c;
        if (col >= C) continue;
        double s = 0;
        for (int i = 0; i < RG; i++) s += sh[i][c];
        if (PART) part[(size_t)blockIdx.y * C + col] = (float)s;
        else ew_put(dw + col, ew_get(dw + col) + (float)s);
    }
}

// dw[c] += the S splits' sums part[0..S)[c], in split order
template <typename G>
__global__ void rmsnorm_dw_sum_kernel(G *dw, const float *part, int S, int C) {
    const int col = blockIdx.x * blockDim.x + threadIdx.x;
    if (col >= C) return;
    double s = 0;
    for (int i = 0; i < S; i++) s += part[(size_t)i * C + col];
    ew_put(dw + col, ew_get(dw + col) + (float)s);
}

extern "C" size_t rmsnorm_backward_workspace_bytes_cuda(int C) { return (size_t)DW_MAX_SPLITS * C * sizeof(float); }

template <typename T, int V>
static void rmsnorm_forward_launch(T *out, float *rstd, const T *x, const T *w, int Tn, int C, float eps,
                                   cudaStream_t st, const T *r = NULL, const T *y = NULL, float alpha = 0,
                                   float beta = 0, const float *cw = NULL, const int32_t *row_of = NULL, int K = 0,
                                   int small = 0) {
    unsigned blocks = Tn < 65535 ? (unsigned)Tn : 65535u;
    const T *none = NULL;
    PDL_CONFIG(cfg, blocks, row_threads(C / V), cw && small ? (size_t)Tn * K * 4 : 0, st);
    if (cw)
        (void)cudaLaunchKernelEx(&cfg, rmsnorm_forward_kernel<T, V, true, true>, out, rstd, (T *)x, w, Tn, C, eps, r,
                                 y, alpha, beta, none, (T *)NULL, cw, row_of, K, small, 0, RouteArgs<T>{});
    else if (y)
        (void)cudaLaunchKernelEx(&cfg, rmsnorm_forward_kernel<T, V, true>, out, rstd, (T *)x, w, Tn, C, eps, r, y,
                                 alpha, beta, none, (T *)NULL, (const float *)NULL, (const int32_t *)NULL, 0, 0, 0,
                                 RouteArgs<T>{});
    else
        (void)cudaLaunchKernelEx(&cfg, rmsnorm_forward_kernel<T, V, false>, out, rstd, (T *)x, w, Tn, C, eps, r, y,
                                 alpha, beta, none, (T *)NULL, (const float *)NULL, (const int32_t *)NULL, 0, 0, 0,
                                 RouteArgs<T>{});
}

extern "C" int rmsnorm_gate_forward_cuda(void *out, void *gated, float *rstd, const void *x, const void *w,
                                         const void *g, int ldg, int T_, int C, float eps, int dtype, cudaStream_t st) {
    if (T_ < 0 || C < 1 || ldg < C)
        return cispo_fail("rmsnorm_gate_forward_cuda: bad sizes T=%d C=%d ldg=%d (need ldg >= C)", T_, C, ldg);
    if (!gated || !rstd || !x || !w || !g) return cispo_fail("rmsnorm_gate_forward_cuda: NULL pointer argument");
    if (T_ == 0) return 0;
    EW_DISPATCH("rmsnorm_gate_forward_cuda", dtype, {
        const int N = EW_VN(T);
        unsigned blocks = T_ < 65535 ? (unsigned)T_ : 65535u;
        const T *none = NULL;
        const int vec = C % N == 0 && ldg % N == 0 && ew_aligned16(out) && ew_aligned16(x) && ew_aligned16(w) &&
                        ew_aligned16(g) && ew_aligned16(gated);
        PDL_CONFIG(cfg, blocks, row_threads(vec ? C / N : C), 0, st);
        (void)cudaLaunchKernelEx(&cfg, vec ? rmsnorm_forward_kernel<T, N, false> : rmsnorm_forward_kernel<T, 1, false>,
                                 (T *)out, rstd, (T *)x, (const T *)w, T_, C, eps, none, none, 0.0f, 0.0f,
                                 (const T *)g, (T *)gated, (const float *)NULL, (const int32_t *)NULL, 0, 0, ldg,
                                 RouteArgs<T>{});
    });
    return ew_check("rmsnorm_gate_forward_cuda");
}

extern "C" int residual_rmsnorm_cuda(void *x_out, void *out, float *rstd, const void *r, const void *y, float alpha,
                                     float beta, const void *w, int T_, int C, float eps, int dtype, cudaStream_t st) {
    if (T_ < 0 || C < 1) return cispo_fail("residual_rmsnorm_cuda: bad sizes T=%d C=%d", T_, C);
    if (!x_out || !out || !rstd || !y || !w) return cispo_fail("residual_rmsnorm_cuda: NULL pointer argument");
    if (T_ == 0) return 0;
    EW_DISPATCH("residual_rmsnorm_cuda", dtype, {
        const int N = EW_VN(T);
        if (C % N == 0 && ew_aligned16(out) && ew_aligned16(x_out) && ew_aligned16(w) && ew_aligned16(r) &&
            ew_aligned16(y))
            rmsnorm_forward_launch<T, N>((T *)out, rstd, (const T *)x_out, (const T *)w, T_, C, eps, st, (const T *)r,
                                         (const T *)y, alpha, beta);
        else
            rmsnorm_forward_launch<T, 1>((T *)out, rstd, (const T *)x_out, (const T *)w, T_, C, eps, st, (const T *)r,
                                         (const T *)y, alpha, beta);
    });
    return ew_check("residual_rmsnorm_cuda");
}

extern "C" int residual_rmsnorm_route_cuda(void *x_out, void *out, float *rstd, const void *r, const void *y,
                                           float alpha, float beta, const void *w, int T_, int C, float eps,
                                           const void *wg, void *logits, float *probs, int32_t *topk_idx,
                                           float *topk_w, int E, int K, int32_t *perm, int32_t *offsets,
                                           int32_t *count, int dtype, cudaStream_t st) {
    const char *fn = "residual_rmsnorm_route_cuda";
    if (T_ < 0 || C < 1 || E < 1 || K < 1 || K > E)
        return cispo_fail("%s: bad sizes T=%d C=%d E=%d K=%d (need 1 <= K <= E)", fn, T_, C, E, K);
    if (E > 32 * MOE_MAX_PER_LANE || K > MOE_MAX_K)
        return cispo_fail("%s: E=%d K=%d above the supported %d experts, top-%d", fn, E, K, 32 * MOE_MAX_PER_LANE,
                          MOE_MAX_K);
    if (!x_out || !out || !rstd || !y || !w || !wg || !logits || !probs || !topk_idx || !topk_w ||
        (perm && (!offsets || !count)))
        return cispo_fail("%s: NULL pointer argument", fn);
    if ((size_t)T_ * K > 0x7fffffff) return cispo_fail("%s: T*K=%zu slots above int32", fn, (size_t)T_ * K);
    if (T_ == 0) {
        cudaError_t e = perm ? cudaMemsetAsync(offsets, 0, (size_t)(E + 1) * sizeof(int32_t), st) : cudaSuccess;
        return e == cudaSuccess ? 0 : cispo_fail("%s: %s", fn, cudaGetErrorString(e));
    }
    EW_DISPATCH(fn, dtype, {
        const int N = EW_VN(T);
        const RouteArgs<T> ra = {(const T *)wg, (T *)logits, probs, topk_idx, topk_w, E, K, perm, offsets, count};
        const size_t smem = ((size_t)E * sizeof(T) + 3) / 4 * 4 + (perm ? 2 * (size_t)E * sizeof(int32_t) : 0);
        const int vec = C % N == 0 && ew_aligned16(out) && ew_aligned16(x_out) && ew_aligned16(w) &&
                        ew_aligned16(r) && ew_aligned16(y) && ew_aligned16(wg);
        unsigned blocks = T_ < 65535 ? (unsigned)T_ : 65535u;
        const T *none = NULL;
        const int want = max(row_threads(vec ? C / N : C), min(1024, 32 * E));  // a warp an expert
        MOE_ROUTE_NJ_DISPATCH(E, {
            void (*kern)(T *, float *, T *, const T *, int, int, float, const T *, const T *, float, float, const T *,
                         T *, const float *, const int32_t *, int, int, int, const RouteArgs<T>) =
                vec ? rmsnorm_forward_kernel<T, N, true, false, NJ> : rmsnorm_forward_kernel<T, 1, true, false, NJ>;
            cudaFuncAttributes fa;  // as many threads as the kernel's registers allow
            if (cudaFuncGetAttributes(&fa, kern) != cudaSuccess) return ew_check(fn);
            const int threads = min(want, fa.maxThreadsPerBlock / 32 * 32);
            PDL_CONFIG(cfg, blocks, threads, smem, st);
            (void)cudaLaunchKernelEx(&cfg, kern, (T *)out, rstd, (T *)x_out, (const T *)w, T_, C, eps, (const T *)r,
                                     (const T *)y, alpha, beta, none, (T *)NULL, (const float *)NULL,
                                     (const int32_t *)NULL, 0, 0, 0, ra);
        });
    });
    return ew_check(fn);
}

extern "C" int moe_combine_rmsnorm_cuda(void *x_out, void *out, float *rstd, const void *r, const void *ye,
                                        const float *topk_w, const int32_t *perm, float alpha, float beta,
                                        const void *w, int T_, int C, int K, float eps, int dtype, void *ws,
                                        size_t ws_bytes, cudaStream_t st) {
    const char *fn = "moe_combine_rmsnorm_cuda";
    if (T_ < 0 || C < 1 || K < 1) return cispo_fail("%s: bad sizes T=%d C=%d K=%d", fn, T_, C, K);
    if (!x_out || !out || !rstd || !ye || !topk_w || !perm || !w) return cispo_fail("%s: NULL pointer argument", fn);
    if (T_ == 0) return 0;
    // decode-sized: each block inverts perm in shared memory; else the inverse is made once in the workspace
    const int small = (size_t)T_ * K <= MOE_SMALL_SLOTS;
    const int32_t *row_of = perm;
    if (!small) {
        if (!ws || ws_bytes < (size_t)T_ * K * sizeof(int32_t) + 256)
            return cispo_fail("%s: workspace of %zu bytes is too small", fn, ws_bytes);
        int32_t *ro = (int32_t *)(((uintptr_t)ws + 255) & ~(uintptr_t)255);
        if (moe_row_of_cuda(ro, perm, (size_t)T_ * K, st)) return -1;
        row_of = ro;
    }
    EW_DISPATCH(fn, dtype, {
        const int N = EW_VN(T);
        if (C % N == 0 && ew_aligned16(out) && ew_aligned16(x_out) && ew_aligned16(w) && ew_aligned16(r) &&
            ew_aligned16(ye))
            rmsnorm_forward_launch<T, N>((T *)out, rstd, (const T *)x_out, (const T *)w, T_, C, eps, st, (const T *)r,
                                         (const T *)ye, alpha, beta, topk_w, row_of, K, small);
        else
            rmsnorm_forward_launch<T, 1>((T *)out, rstd, (const T *)x_out, (const T *)w, T_, C, eps, st, (const T *)r,
                                         (const T *)ye, alpha, beta, topk_w, row_of, K, small);
    });
    return ew_check(fn);
}

extern "C" int rmsnorm_forward_cuda(void *out, float *rstd, const void *x, const void *w, int T_, int C, float eps,
                                    int dtype, cudaStream_t st) {
    if (T_ < 0 || C < 1) return cispo_fail("rmsnorm_forward_cuda: bad sizes T=%d C=%d", T_, C);
    if (!out || !rstd || !x || !w) return cispo_fail("rmsnorm_forward_cuda: NULL pointer argument");
    if (T_ == 0) return 0;
    EW_DISPATCH("rmsnorm_forward_cuda", dtype, {
        const int N = EW_VN(T);
        if (C % N == 0 && ew_aligned16(out) && ew_aligned16(x) && ew_aligned16(w))
            rmsnorm_forward_launch<T, N>((T *)out, rstd, (const T *)x, (const T *)w, T_, C, eps, st);
        else
            rmsnorm_forward_launch<T, 1>((T *)out, rstd, (const T *)x, (const T *)w, T_, C, eps, st);
    });
    return ew_check("rmsnorm_forward_cuda");
}

// dw's launches. Row splits: about four blocks an SM, at least 256 rows (four a thread) each, as many as the
// workspace ws holds (1: straight into dw).
template <typename T, int V, typename G, bool GATE>
static void rmsnorm_dw_launch(G *dw, void *ws, size_t ws_bytes, const T *dout, const T *x, const float *rstd, int Tn,
                              int C, norm_gate_t<T> gate, cudaStream_t st) {
    // vectors: 4 threads x 16 bytes = 64 bytes per row and strip (two full sectors); scalars: a warp
    const int TC = V == 1 ? 32 : 4;
    const int strips = (C + TC * V - 1) / (TC * V);
    int S = min(min((4 * backend_cuda_sm_count() + strips - 1) / strips, DW_MAX_SPLITS), Tn / 256);
    if (!ws || S < 2 || (size_t)S * C * sizeof(float) > ws_bytes) S = 1;
    float *part = (float *)ws;
    const int rows = (Tn + S - 1) / S;
    if (S == 1) {
        rmsnorm_dw_kernel<T, V, TC, G, false, GATE><<<strips, DW_THREADS, 0, st>>>(dw, NULL, dout, x, rstd, Tn, C, rows,
                                                                                  gate);
        return;
    }
    rmsnorm_dw_kernel<T, V, TC, G, true, GATE><<<dim3(strips, S), DW_THREADS, 0, st>>>(dw, part, dout, x, rstd, Tn, C,
                                                                                      rows, gate);
    rmsnorm_dw_sum_kernel<G><<<(C + 255) / 256, 256, 0, st>>>(dw, part, S, C);
}

// rmsnorm_backward (GATE false) and rmsnorm_gate_backward (GATE: gate's g, ldg and dg; dout is dgated)
template <typename T, int V, bool GATE>
static void rmsnorm_backward_launch(T *dx, void *dw, int gdtype, const T *dout, const T *x, const T *w,
                                    const float *rstd, int Tn, int C, int acc, float acc_scale, void *ws,
                                    size_t ws_bytes, norm_gate_t<T> gate, cudaStream_t st) {
    if (dx || GATE) {
        unsigned blocks = Tn < 65535 ? (unsigned)Tn : 65535u;
        rmsnorm_dx_kernel<T, V, GATE><<<blocks, row_threads(C / V), 0, st>>>(dx, dout, x, w, rstd, Tn, C, acc,
                                                                             acc_scale, gate);
    }
    if (dw) {
        if (gdtype == DTYPE_BF16)
            rmsnorm_dw_launch<T, V, __nv_bfloat16, GATE>((__nv_bfloat16 *)dw, ws, ws_bytes, dout, x, rstd, Tn, C, gate,
                                                         st);
        else rmsnorm_dw_launch<T, V, float, GATE>((float *)dw, ws, ws_bytes, dout, x, rstd, Tn, C, gate, st);
    }
}

extern "C" int rmsnorm_backward_cuda(void *dx, void *dw, const void *dout, const void *x, const void *w,
                                     const float *rstd, int T_, int C, int acc, float acc_scale, void *ws,
                                     size_t ws_bytes, int dtype, int gdtype, cudaStream_t st) {
    if (T_ < 0 || C < 1) return cispo_fail("rmsnorm_backward_cuda: bad sizes T=%d C=%d", T_, C);
    if (gdtype != DTYPE_F32 && gdtype != DTYPE_BF16)
        return cispo_fail("rmsnorm_backward_cuda: gradient dtype %d (fp32 or bf16)", gdtype);
    if (!dout || !x || !w || !rstd) return cispo_fail("rmsnorm_backward_cuda: NULL pointer argument");
    if (T_ == 0) return 0;
    EW_DISPATCH("rmsnorm_backward_cuda", dtype, {
        const int N = EW_VN(T);
        const norm_gate_t<T> none = {NULL, NULL, 0};
        if (C % N == 0 && ew_aligned16(dx) && ew_aligned16(dout) && ew_aligned16(x) && ew_aligned16(w))
            rmsnorm_backward_launch<T, N, false>((T *)dx, dw, gdtype, (const T *)dout, (const T *)x, (const T *)w, rstd,
                                                 T_, C, acc, acc_scale, ws, ws_bytes, none, st);
        else
            rmsnorm_backward_launch<T, 1, false>((T *)dx, dw, gdtype, (const T *)dout, (const T *)x, (const T *)w, rstd,
                                                 T_, C, acc, acc_scale, ws, ws_bytes, none, st);
    });
    return ew_check("rmsnorm_backward_cuda");
}

extern "C" int rmsnorm_gate_backward_cuda(void *dx, void *dw, void *dg, const void *dgated, const void *x,
                                          const void *w, const float *rstd, const void *g, int ldg, int T_, int C,
                                          void *ws, size_t ws_bytes, int dtype, int gdtype, cudaStream_t st) {
    if (T_ < 0 || C < 1 || ldg < C)
        return cispo_fail("rmsnorm_gate_backward_cuda: bad sizes T=%d C=%d ldg=%d", T_, C, ldg);
    if (gdtype != DTYPE_F32 && gdtype != DTYPE_BF16)
        return cispo_fail("rmsnorm_gate_backward_cuda: gradient dtype %d (fp32 or bf16)", gdtype);
    if (!dg || !dgated || !x || !w || !rstd || !g)
        return cispo_fail("rmsnorm_gate_backward_cuda: NULL pointer argument");
    if (T_ == 0) return 0;
    EW_DISPATCH("rmsnorm_gate_backward_cuda", dtype, {
        const int N = EW_VN(T);
        const norm_gate_t<T> gate = {(const T *)g, (T *)dg, ldg};
        if (C % N == 0 && ldg % N == 0 && ew_aligned16(dx) && ew_aligned16(dg) && ew_aligned16(dgated) &&
            ew_aligned16(x) && ew_aligned16(w) && ew_aligned16(g))
            rmsnorm_backward_launch<T, N, true>((T *)dx, dw, gdtype, (const T *)dgated, (const T *)x, (const T *)w,
                                                rstd, T_, C, 0, 1.0f, ws, ws_bytes, gate, st);  // dx written
        else
            rmsnorm_backward_launch<T, 1, true>((T *)dx, dw, gdtype, (const T *)dgated, (const T *)x, (const T *)w,
                                                rstd, T_, C, 0, 1.0f, ws, ws_bytes, gate, st);  // dx written
    });
    return ew_check("rmsnorm_gate_backward_cuda");
}
