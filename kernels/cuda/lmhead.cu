// kernels/cuda/lmhead.cu — the fp32 LM head on the GPU: log-probs of the targets, log-sum-exp and
// entropy, and their backward, in chunks of tokens so that the [T, V] logits never exist at once.
// defines: lmhead_workspace_bytes_cuda, lmhead_logprob_forward_cuda, lmhead_logprob_backward_cuda,
//          lmhead_logits_cuda
//
// Per chunk of tokens: logits z [n, V] fp32 = x w^T by cuBLAS (act-dtype inputs, fp32 accumulation
// and output), then one CTA per row reduces z in one pass with an online max (kernels/cpu/lmhead.c
// is the specification). The backward has lse, so it needs no whole row: it tiles (tokens x vocab
// block), recomputes z of the tile, turns it into dz = dlogp (onehot - e^(z - lse)) in the act
// dtype (bf16: the GEMM inputs; fp32 in place), adds dz w into an fp32 dx of the token chunk and
// dz^T x into dw. Token chunks are large (4096) because each one reads and writes all of the fp32
// dw [V, C] (4.9 GB in M1): with small chunks that traffic, not the GEMMs, set the time.
// Rows without a gradient (no target, or dlogp = 0) get dz = 0: they are not gathered out, as that
// would need their count on the host, so they cost GEMM time but contribute exact zeros.
#include <cublas_v2.h>
#include <cuda_bf16.h>
#include <cuda_runtime.h>
#include <math.h>
#include <stdint.h>

extern "C" {
#include "base/common.h"  // C header without C++ guards
#include "kernels/backend.h"
}
#include "kernels/cuda/ops_cuda.h"

namespace {

const int ROW_THREADS = 512;
const size_t CHUNK_BUDGET = (size_t)384 << 20;  // bytes of chunk buffers the workspace asks for
const int CHUNK_MAX = 2048;                     // forward tokens per chunk (larger gains nothing in GEMM efficiency)
const int BWD_TOKENS = 4096;                    // backward tokens per chunk (one pass over dw each)

size_t align_up(size_t x) { return (x + 255) & ~(size_t)255; }

// Bytes per logit a chunk needs: fp32 z, plus dz in the act dtype when that is not fp32 (fp32 dz
// overwrites z in place).
size_t chunk_elem_bytes(int dtype) { return dtype == DTYPE_F32 ? 4 : 6; }

int chunk_rows(size_t ws_bytes, int T, int V, size_t elem_bytes) {
    size_t per_row = (size_t)V * elem_bytes;
    size_t c = ws_bytes > 512 ? (ws_bytes - 512) / per_row : 0;  // 512: alignment of the second buffer
    if (c > (size_t)CHUNK_MAX) c = CHUNK_MAX;
    if (c > (size_t)T) c = (size_t)T;
    return (int)c;
}

int blas_fail(const char *what, cublasStatus_t s) {
    return cispo_fail("%s: cuBLAS status %d (%s)", what, (int)s, cublasGetStatusString(s));
}

int check_launch(const char *what) {
    cudaError_t e = cudaGetLastError();
    if (e != cudaSuccess) return cispo_fail("%s: launch: %s (%s)", what, cudaGetErrorName(e), cudaGetErrorString(e));
    return 0;
}

int dtype_type(int dtype, cudaDataType_t *t, const char *op) {
    if (dtype == DTYPE_BF16) *t = CUDA_R_16BF;
    else if (dtype == DTYPE_F32) *t = CUDA_R_32F;
    else return cispo_fail("%s: dtype %d not supported (bf16 or f32)", op, dtype);
    return 0;
}

// Row-major C[m,n] = alpha op(A) op(B) + beta C (operands swapped for column-major cuBLAS).
int gemm_rm(cublasHandle_t h, int trans_a, int trans_b, int m, int n, int k, float alpha, const void *a, int lda,
            const void *b, int ldb, float beta, void *c, int ldc, cudaDataType_t ab, cudaDataType_t ct,
            const char *op) {
    if (m <= 0 || n <= 0) return 0;
    cublasStatus_t s = cublasGemmEx(h, trans_b ? CUBLAS_OP_T : CUBLAS_OP_N, trans_a ? CUBLAS_OP_T : CUBLAS_OP_N, n,
                                    m, k, &alpha, b, ab, ldb, a, ab, lda, &beta, c, ct, ldc, CUBLAS_COMPUTE_32F,
                                    CUBLAS_GEMM_DEFAULT);
    if (s != CUBLAS_STATUS_SUCCESS) return blas_fail(op, s);
    return 0;
}

// Online softmax statistics of a set of logits: max m, s = sum e^(z-m), sz = sum e^(z-m) z.
struct stat3 {
    float m, s, sz;
};

__device__ __forceinline__ stat3 stat_merge(stat3 a, stat3 b) {
    if (b.m == -INFINITY) return a;
    if (a.m == -INFINITY) return b;
    float m = fmaxf(a.m, b.m);
    float ea = __expf(a.m - m), eb = __expf(b.m - m);
    stat3 r = {m, a.s * ea + b.s * eb, a.sz * ea + b.sz * eb};
    return r;
}

// Block-wide merge; the result is valid in every thread.
__device__ stat3 block_stat(stat3 v) {
    __shared__ stat3 part[ROW_THREADS / 32];
    for (int o = 16; o > 0; o >>= 1) {
        stat3 u = {__shfl_xor_sync(0xffffffffu, v.m, o), __shfl_xor_sync(0xffffffffu, v.s, o),
                   __shfl_xor_sync(0xffffffffu, v.sz, o)};
        v = stat_merge(v, u);
    }
    int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
    if (lane == 0) part[warp] = v;
    __syncthreads();
    stat3 r = part[0];
    for (int i = 1; i < ROW_THREADS / 32; i++) r = stat_merge(r, part[i]);
    return r;
}

// One CTA per row of z [n, V]: lse, logp of the target (0 without one), entropy = lse - sum p z.
__global__ void __launch_bounds__(ROW_THREADS) lmhead_row_forward(float *logp, float *lse, float *entropy,
                                                                   const float *z, const int32_t *targets, int V) {
    const float *zr = z + (size_t)blockIdx.x * V;
    stat3 st = {-INFINITY, 0.0f, 0.0f};
    for (int v = threadIdx.x; v < V; v += ROW_THREADS) {
        float x = zr[v];
        if (x > st.m) {
            float e = __expf(st.m - x);  // 0 on the first element (st.m = -inf)
            st.s *= e;
            st.sz *= e;
            st.m = x;
        }
        float e = __expf(x - st.m);
        st.s += e;
        st.sz += e * x;
    }
    st = block_stat(st);
    if (threadIdx.x == 0) {
        float l = st.m + logf(st.s);
        int t = blockIdx.x, tg = targets[t];
        lse[t] = l;
        logp[t] = tg < 0 ? 0.0f : tg < V ? zr[tg] - l : NAN;  // a target >= V is a caller bug: NaN shows it
        if (entropy) entropy[t] = l - st.sz / st.s;
    }
}

// dz = g (onehot(target) - e^(z - lse)) on a tile z [n, vb] of vocabulary columns v0.., one CTA per
// row, g = dlogp; rows without a target or with g = 0 get zeros. dz may alias z (fp32).
template <typename T>
__global__ void __launch_bounds__(ROW_THREADS) lmhead_tile_backward(T *dz, const float *z, const float *dlogp,
                                                                     const int32_t *targets, const float *lse,
                                                                     int V, int v0, int vb) {
    int t = blockIdx.x;
    const float *zr = z + (size_t)t * vb;
    T *dr = dz + (size_t)t * vb;
    int tg = targets[t];
    float g = dlogp[t];
    if (tg < 0 || tg >= V || g == 0.0f) g = 0.0f;
    float l = lse[t];
    int tl = tg - v0;  // the target's column in this tile, if there
    for (int v = threadIdx.x; v < vb; v += ROW_THREADS) {
        float d = g == 0.0f ? 0.0f : -g * __expf(zr[v] - l);
        if (v == tl) d += g;
        dr[v] = (T)d;
    }
}

// dx [n, C] = acc (0 or 1) dx + dxf (fp32)
template <typename T>
__global__ void lmhead_dx_store(T *dx, const float *dxf, size_t n, int acc) {
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x)
        dx[i] = (T)(acc ? (float)dx[i] + dxf[i] : dxf[i]);
}

// x rounded to bf16 in place (the output precision of a bf16 LM head)
__global__ void round_bf16(float *x, size_t n) {
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x)
        x[i] = __bfloat162float(__float2bfloat16_rn(x[i]));
}

}  // namespace

// The forward wants whole rows of z (chunk x V fp32); the backward a token chunk's fp32 dx
// [min(T, 4096), C] and tiles of z and dz (6 bytes a logit in bf16) within the same budget.
extern "C" size_t lmhead_workspace_bytes_cuda(int T, int C, int V) {
    if (T <= 0 || V <= 0) return 0;
    size_t tc = T < BWD_TOKENS ? (size_t)T : BWD_TOKENS;
    size_t tiles = tc * (size_t)V * 6;
    if (tiles > CHUNK_BUDGET) tiles = CHUNK_BUDGET;
    size_t rowmin = (size_t)V * 4;  // the forward needs one whole row at least
    if (tiles < rowmin) tiles = rowmin;
    return align_up(tc * (size_t)(C > 0 ? C : 0) * sizeof(float)) + tiles + 1024;
}

extern "C" int lmhead_logprob_forward_cuda(void *blas, float *logp, float *lse, float *entropy, const void *x,
                                           const void *w, const int32_t *targets, int T, int C, int V, int dtype,
                                           void *ws, size_t ws_bytes, cudaStream_t st) {
    const char *op = "lmhead_logprob_forward_cuda";
    cudaDataType_t t = CUDA_R_16BF;
    if (dtype_type(dtype, &t, op)) return -1;
    if (T <= 0) return 0;
    if (V <= 0 || C <= 0) return cispo_fail("%s: C = %d, V = %d", op, C, V);
    int chunk = chunk_rows(ws_bytes, T, V, 4);
    if (chunk < 1) return cispo_fail("%s: workspace of %zu bytes holds no row of %d logits", op, ws_bytes, V);
    float *z = (float *)ws;
    size_t es = dtype == DTYPE_F32 ? 4 : 2;
    for (int t0 = 0; t0 < T; t0 += chunk) {
        int n = T - t0 < chunk ? T - t0 : chunk;
        if (gemm_rm((cublasHandle_t)blas, 0, 1, n, V, C, 1.0f, (const char *)x + (size_t)t0 * C * es, C, w, C, 0.0f,
                    z, V, t, CUDA_R_32F, op))
            return -1;
        lmhead_row_forward<<<n, ROW_THREADS, 0, st>>>(logp + t0, lse + t0, entropy ? entropy + t0 : NULL, z,
                                                      targets + t0, V);
        if (check_launch(op)) return -1;
    }
    return 0;
}

extern "C" int lmhead_logprob_backward_cuda(void *blas, void *dx, void *dw, const float *dlogp, const void *x,
                                            const void *w, const int32_t *targets, const float *lse, int T, int C,
                                            int V, int acc, int dtype, int gdtype, void *ws, size_t ws_bytes,
                                            cudaStream_t st) {
    const char *op = "lmhead_logprob_backward_cuda";
    cudaDataType_t t = CUDA_R_16BF, gt = CUDA_R_32F;
    if (dtype_type(dtype, &t, op) || dtype_type(gdtype, &gt, op)) return -1;
    if (dw && gdtype == DTYPE_BF16 && dtype != DTYPE_BF16)
        return cispo_fail("%s: bf16 gradients need bf16 activations (got %s)", op, dtype_name(dtype));
    if (T <= 0 || (!dx && !dw)) return 0;
    if (V <= 0 || C <= 0) return cispo_fail("%s: C = %d, V = %d", op, C, V);
    // token chunk tc and vocabulary block vb: fp32 dx [tc, C], z [tc, vb] and dz [tc, vb] fit ws
    const size_t eb = chunk_elem_bytes(dtype);
    int tc = T < BWD_TOKENS ? T : BWD_TOKENS, vb = 0;
    for (;; tc = (tc + 1) / 2) {
        size_t fixed = (dx ? align_up((size_t)tc * C * sizeof(float)) : 0) + 512;
        size_t v = ws_bytes > fixed ? (ws_bytes - fixed) / ((size_t)tc * eb) : 0;
        if (v >= (size_t)V) vb = V;
        else if (v >= 256 || (tc == 1 && v >= 8)) vb = (int)(v & ~(size_t)7);  // 8: 16-byte rows of dz
        if (vb > 0 || tc == 1) break;
    }
    if (vb < 1) return cispo_fail("%s: workspace of %zu bytes too small (C = %d, V = %d)", op, ws_bytes, C, V);
    cublasHandle_t h = (cublasHandle_t)blas;
    char *p = (char *)ws;
    float *dxf = NULL;
    if (dx) {
        dxf = (float *)p;
        p += align_up((size_t)tc * C * sizeof(float));
    }
    float *z = (float *)p;
    void *dz = dtype == DTYPE_F32 ? (void *)z : (void *)(p + align_up((size_t)tc * vb * sizeof(float)));
    size_t es = dtype == DTYPE_F32 ? 4 : 2;
    for (int t0 = 0; t0 < T; t0 += tc) {
        int n = T - t0 < tc ? T - t0 : tc;
        const void *xc = (const char *)x + (size_t)t0 * C * es;
        for (int v0 = 0; v0 < V; v0 += vb) {
            int nv = V - v0 < vb ? V - v0 : vb;
            const void *wv = (const char *)w + (size_t)v0 * C * es;
            if (gemm_rm(h, 0, 1, n, nv, C, 1.0f, xc, C, wv, C, 0.0f, z, nv, t, CUDA_R_32F, op)) return -1;
            if (dtype == DTYPE_F32)
                lmhead_tile_backward<float><<<n, ROW_THREADS, 0, st>>>((float *)dz, z, dlogp + t0, targets + t0,
                                                                       lse + t0, V, v0, nv);
            else
                lmhead_tile_backward<__nv_bfloat16><<<n, ROW_THREADS, 0, st>>>(
                    (__nv_bfloat16 *)dz, z, dlogp + t0, targets + t0, lse + t0, V, v0, nv);
            if (check_launch(op)) return -1;
            // dxf (+)= dz w[v0:v0+nv];  dw[v0:v0+nv] += dz^T x
            if (dx && gemm_rm(h, 0, 0, n, C, nv, 1.0f, dz, nv, wv, C, v0 ? 1.0f : 0.0f, dxf, C, t, CUDA_R_32F, op))
                return -1;
            // (bf16 dw: each chunk's fp32 sum rounded once as it is added)
            if (dw && gemm_rm(h, 1, 0, nv, C, n, 1.0f, dz, nv, xc, C, 1.0f,
                              (char *)dw + (size_t)v0 * C * dtype_size(gdtype), C, t, gt, op))
                return -1;
        }
        if (dx) {  // acc is OP_WRITE (0) or OP_ACCUMULATE (1)
            size_t cnt = (size_t)n * C;
            unsigned blocks = (unsigned)((cnt + 255) / 256 < 4096 ? (cnt + 255) / 256 : 4096);
            if (dtype == DTYPE_F32)
                lmhead_dx_store<float><<<blocks, 256, 0, st>>>((float *)dx + (size_t)t0 * C, dxf, cnt, acc);
            else
                lmhead_dx_store<__nv_bfloat16><<<blocks, 256, 0, st>>>((__nv_bfloat16 *)dx + (size_t)t0 * C, dxf,
                                                                       cnt, acc);
            if (check_launch(op)) return -1;
        }
    }
    return 0;
}

// logits [n, V] fp32 = x [n, C] w [V, C]^T; bf16 = 1: each logit then rounded to bf16
extern "C" int lmhead_logits_cuda(void *blas, float *logits, const void *x, const void *w, int n, int C, int V,
                                  int bf16, int dtype, cudaStream_t st) {
    cudaDataType_t t = CUDA_R_16BF;
    if (dtype_type(dtype, &t, "lmhead_logits_cuda")) return -1;
    if (n <= 0 || V <= 0) return 0;
    if (gemm_rm((cublasHandle_t)blas, 0, 1, n, V, C, 1.0f, x, C, w, C, 0.0f, logits, V, t, CUDA_R_32F,
                "lmhead_logits_cuda"))
        return -1;
    if (!bf16) return 0;
    size_t cnt = (size_t)n * V;
    unsigned blocks = (unsigned)((cnt + 255) / 256 < 4096 ? (cnt + 255) / 256 : 4096);
    round_bf16<<<blocks, 256, 0, st>>>(logits, cnt);
    return check_launch("lmhead_logits_cuda");
}
