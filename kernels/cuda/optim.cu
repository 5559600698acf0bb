// kernels/cuda/optim.cu — the optimizer's fp32 ops on CUDA: sum of squares (gradient norm), scaling,
// AdamW with the clip's factor applied to the gradient and the bf16 working copy refreshed in the same pass.
// Gradients are fp32 or bf16 (grad_dtype). CPU references:
// kernels/cpu/elementwise.c (sum_squares_cpu, scale_f32_cpu), kernels/cpu/adamw.c.
// defines: sum_squares_cuda, scale_f32_cuda, adamw_step_cuda
#include <cuda_bf16.h>
#include <cuda_runtime.h>
#include <math.h>

extern "C" {
#include "base/common.h"
#include "kernels/backend.h"
}
#include "kernels/cuda/elementwise_util.cuh"
#include "kernels/cuda/ops_cuda.h"

#define OPT_THREADS 256
#define SS_BLOCKS_MAX 1024

// ---------------------------------------------------------------------------------------------
// sum of squares in double: per-block partial sums, then one block adds them in a fixed order
// (deterministic), then the host reads the result.

static __device__ __forceinline__ double block_sum_d(double v, double *sh) {
    int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, nw = blockDim.x >> 5;
    v = ew_warp_sum_d(v);
    if (lane == 0) sh[warp] = v;
    __syncthreads();
    if (warp == 0) {
        v = lane < nw ? sh[lane] : 0.0;
        v = ew_warp_sum_d(v);
    }
    return v;  // valid in thread 0
}

// Four gradient elements in one load (16 bytes of fp32, 8 of bf16).
static __device__ __forceinline__ float4 grad4(const float *g, size_t i) { return reinterpret_cast<const float4 *>(g)[i]; }
static __device__ __forceinline__ float4 grad4(const __nv_bfloat16 *g, size_t i) {
    uint2 u = reinterpret_cast<const uint2 *>(g)[i];
    float2 a = __bfloat1622float2(*reinterpret_cast<__nv_bfloat162 *>(&u.x));
    float2 b = __bfloat1622float2(*reinterpret_cast<__nv_bfloat162 *>(&u.y));
    return make_float4(a.x, a.y, b.x, b.y);
}

template <typename G>
__global__ void sum_squares_partial_kernel(double *partial, const G *g, size_t n, int vec) {
    __shared__ double sh[32];
    size_t tid = (size_t)blockIdx.x * blockDim.x + threadIdx.x, stride = (size_t)gridDim.x * blockDim.x;
    size_t nv = vec ? n / 4 : 0;
    double s = 0;
    for (size_t i = tid; i < nv; i += stride) {
        float4 f = grad4(g, i);
        s += (double)f.x * f.x + (double)f.y * f.y + (double)f.z * f.z + (double)f.w * f.w;
    }
    for (size_t i = nv * 4 + tid; i < n; i += stride) {
        double x = ew_get(g + i);
        s += x * x;
    }
    s = block_sum_d(s, sh);
    if (threadIdx.x == 0) partial[blockIdx.x] = s;
}

__global__ void sum_squares_final_kernel(double *out, const double *partial, int nb) {
    __shared__ double sh[32];
    double s = 0;
    for (int i = threadIdx.x; i < nb; i += blockDim.x) s += partial[i];
    s = block_sum_d(s, sh);
    if (threadIdx.x == 0) *out = s;
}

extern "C" int sum_squares_cuda(double *result, const void *g, int gdtype, size_t n, void *ws, size_t ws_bytes,
                                cudaStream_t st) {
    if (!result) return cispo_fail("sum_squares_cuda: result is NULL");
    *result = 0;
    if (n == 0) return 0;
    if (!g || !ws || ws_bytes < 2 * sizeof(double))
        return cispo_fail("sum_squares_cuda: need g and a workspace of at least %zu bytes (got %zu)",
                          2 * sizeof(double), ws_bytes);
    if (gdtype != DTYPE_F32 && gdtype != DTYPE_BF16)
        return cispo_fail("sum_squares_cuda: gradient dtype %d (fp32 or bf16)", gdtype);
    int vec = ((uintptr_t)g % (4 * dtype_size(gdtype))) == 0;
    size_t nb = ew_blocks(vec ? n / 4 + 4 : n, OPT_THREADS), cap = ws_bytes / sizeof(double) - 1;
    if (nb > SS_BLOCKS_MAX) nb = SS_BLOCKS_MAX;
    if (nb > cap) nb = cap;
    double *partial = (double *)ws, *out = partial + nb;
    if (gdtype == DTYPE_BF16)
        sum_squares_partial_kernel<__nv_bfloat16><<<(unsigned)nb, OPT_THREADS, 0, st>>>(partial,
                                                                                      (const __nv_bfloat16 *)g, n, vec);
    else
        sum_squares_partial_kernel<float><<<(unsigned)nb, OPT_THREADS, 0, st>>>(partial, (const float *)g, n, vec);
    if (ew_check("sum_squares_cuda")) return -1;
    sum_squares_final_kernel<<<1, 1024, 0, st>>>(out, partial, (int)nb);
    if (ew_check("sum_squares_cuda")) return -1;
    cudaError_t e = cudaMemcpyAsync(result, out, sizeof(double), cudaMemcpyDeviceToHost, st);
    if (e == cudaSuccess) e = cudaStreamSynchronize(st);
    if (e != cudaSuccess) return cispo_fail("sum_squares_cuda: %s", cudaGetErrorString(e));
    return 0;
}

// ---------------------------------------------------------------------------------------------

__global__ void scale_f32_kernel(float *x, float s, size_t n, int vec) {
    size_t tid = (size_t)blockIdx.x * blockDim.x + threadIdx.x, stride = (size_t)gridDim.x * blockDim.x;
    size_t nv = vec ? n / 4 : 0;
    for (size_t i = tid; i < nv; i += stride) {
        float4 f = reinterpret_cast<float4 *>(x)[i];
        f.x *= s;
        f.y *= s;
        f.z *= s;
        f.w *= s;
        reinterpret_cast<float4 *>(x)[i] = f;
    }
    for (size_t i = nv * 4 + tid; i < n; i += stride) x[i] *= s;
}

extern "C" int scale_f32_cuda(float *x, float s, size_t n, cudaStream_t st) {
    if (n == 0) return 0;
    if (!x) return cispo_fail("scale_f32_cuda: x is NULL");
    int vec = ew_aligned16(x);
    scale_f32_kernel<<<ew_blocks(vec ? n / 4 + 4 : n, OPT_THREADS), OPT_THREADS, 0, st>>>(x, s, n, vec);
    return ew_check("scale_f32_cuda");
}

// ---------------------------------------------------------------------------------------------
// AdamW as kernels/cpu/adamw.c, each operation rounded on its own (no contraction into FMA, IEEE
// division and square root whatever --use_fast_math says), so p, m, v match the CPU bit for bit.

typedef struct {
    float lr_wd, one_m_b1, one_m_b2, beta2, step_size, bc2_sqrt, eps, gscale;
} adamw_consts_t;

static __device__ __forceinline__ void adamw_one(float &p, float &m, float &v, float g, const adamw_consts_t &k) {
    g = __fmul_rn(g, k.gscale);  // the clip (scale_f32's product; exact when 1)
    float mi = __fadd_rn(m, __fmul_rn(__fsub_rn(g, m), k.one_m_b1));  // torch: exp_avg.lerp_(grad, 1 - beta1)
    float vi = __fadd_rn(__fmul_rn(v, k.beta2), __fmul_rn(__fmul_rn(k.one_m_b2, g), g));
    float denom = __fadd_rn(__fdiv_rn(__fsqrt_rn(vi), k.bc2_sqrt), k.eps);
    p = __fsub_rn(p, __fadd_rn(__fmul_rn(k.lr_wd, p), __fmul_rn(k.step_size, __fdiv_rn(mi, denom))));
    m = mi;
    v = vi;
}

// Four elements of the working copy in one store.
template <typename T>
struct alignas(4 * sizeof(T)) wquad_t {
    T e[4];
};

template <typename T, typename G>
__global__ void adamw_kernel(float *p, T *w_act, float *m, float *v, const G *g, size_t n, adamw_consts_t k,
                             int vec) {
    size_t tid = (size_t)blockIdx.x * blockDim.x + threadIdx.x, stride = (size_t)gridDim.x * blockDim.x;
    size_t nv = vec ? n / 4 : 0;
    for (size_t i = tid; i < nv; i += stride) {
        float4 fp = reinterpret_cast<float4 *>(p)[i], fm = reinterpret_cast<float4 *>(m)[i];
        float4 fv = reinterpret_cast<float4 *>(v)[i], fg = grad4(g, i);
        adamw_one(fp.x, fm.x, fv.x, fg.x, k);
        adamw_one(fp.y, fm.y, fv.y, fg.y, k);
        adamw_one(fp.z, fm.z, fv.z, fg.z, k);
        adamw_one(fp.w, fm.w, fv.w, fg.w, k);
        reinterpret_cast<float4 *>(p)[i] = fp;
        reinterpret_cast<float4 *>(m)[i] = fm;
        reinterpret_cast<float4 *>(v)[i] = fv;
        if (w_act) {
            wquad_t<T> q;
            ew_put(&q.e[0], fp.x);
            ew_put(&q.e[1], fp.y);
            ew_put(&q.e[2], fp.z);
            ew_put(&q.e[3], fp.w);
            reinterpret_cast<wquad_t<T> *>(w_act)[i] = q;
        }
    }
    for (size_t i = nv * 4 + tid; i < n; i += stride) {
        float fp = p[i], fm = m[i], fv = v[i];
        adamw_one(fp, fm, fv, ew_get(g + i), k);
        p[i] = fp;
        m[i] = fm;
        v[i] = fv;
        if (w_act) ew_put(w_act + i, fp);
    }
}

template <typename G>
static int adamw_launch(float *p, void *w_act, int dtype, float *m, float *v, const G *g, size_t n,
                        const adamw_consts_t &k, int vec, cudaStream_t st) {
    if (w_act) {
        EW_DISPATCH("adamw_step_cuda", dtype, {
            int vw = vec && ((uintptr_t)w_act % (4 * sizeof(T))) == 0;
            adamw_kernel<T, G><<<ew_blocks(vw ? n / 4 + 4 : n, OPT_THREADS), OPT_THREADS, 0, st>>>(p, (T *)w_act, m, v,
                                                                                               g, n, k, vw);
        });
    } else {
        adamw_kernel<float, G><<<ew_blocks(vec ? n / 4 + 4 : n, OPT_THREADS), OPT_THREADS, 0, st>>>(p, NULL, m, v, g,
                                                                                                  n, k, vec);
    }
    return ew_check("adamw_step_cuda");
}

extern "C" int adamw_step_cuda(float *p, void *w_act, int dtype, float *m, float *v, const void *g, int gdtype,
                               float gscale, size_t n, float lr, float beta1, float beta2, float eps, float wd,
                               int step, cudaStream_t st) {
    if (step < 1) return cispo_fail("adamw_step_cuda: step %d (steps count from 1)", step);
    if (n == 0) return 0;
    if (!p || !m || !v || !g) return cispo_fail("adamw_step_cuda: NULL pointer argument");
    // scalars in double like torch's Python-side bias corrections, then used as fp32 (as the CPU)
    adamw_consts_t k;
    k.lr_wd = (float)((double)lr * wd);
    k.one_m_b1 = (float)(1.0 - (double)beta1);
    k.one_m_b2 = (float)(1.0 - (double)beta2);
    k.beta2 = beta2;
    k.step_size = (float)((double)lr / (1.0 - pow(beta1, step)));
    k.bc2_sqrt = (float)sqrt(1.0 - pow(beta2, step));
    k.eps = eps;
    k.gscale = gscale;
    if (gdtype != DTYPE_F32 && gdtype != DTYPE_BF16)
        return cispo_fail("adamw_step_cuda: gradient dtype %d (fp32 or bf16)", gdtype);
    int vec = ew_aligned16(p) && ew_aligned16(m) && ew_aligned16(v) && ((uintptr_t)g % (4 * dtype_size(gdtype))) == 0;
    if (gdtype == DTYPE_BF16) return adamw_launch(p, w_act, dtype, m, v, (const __nv_bfloat16 *)g, n, k, vec, st);
    return adamw_launch(p, w_act, dtype, m, v, (const float *)g, n, k, vec, st);
}
