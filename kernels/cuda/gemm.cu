// kernels/cuda/gemm.cu — GEMMs of the op API on the GPU: dense (cuBLAS) and grouped over the
// experts of an MoE layer (own bf16 tensor-core kernels: wgmma at training sizes on sm_90a,
// kernels/cuda/gemm_wgmma.cuh; mma.sync otherwise, kernels/cuda/gemm_grouped.cuh).
// defines: matmul_cuda, matmul_wgrad_cuda, grouped_matmul_workspace_bytes_cuda, grouped_matmul_cuda,
//          grouped_matmul_pair_cuda, grouped_matmul_glu_cuda, grouped_matmul_wgrad_cuda, wgmma_ready_cuda
//
// The op API is row-major; cuBLAS is column-major. A row-major [M,N] matrix is the column-major
// [N,M] one, so C = op(A) op(B) is computed as C^T = op(B)^T op(A)^T with the operands swapped.
#include <cublas_v2.h>
#include <cuda_bf16.h>
#include <cuda_runtime.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

extern "C" {
#include "base/common.h"  // C header without C++ guards
#include "kernels/backend.h"
}
#include "kernels/cuda/ops_cuda.h"
#include "kernels/cuda/pdl.cuh"
#include "kernels/cuda/gemm_grouped.cuh"
#include "kernels/cuda/gemm_skinny.cuh"
#include "kernels/cuda/gemm_wgmma.cuh"

namespace {

bool aligned16(const void *p);
int launch_check(const char *op);
int dense_skinny_launch(__nv_bfloat16 *c, const __nv_bfloat16 *a, const __nv_bfloat16 *w, int m, int n, int k,
                        float beta, int loop, cudaStream_t st);

int blas_fail(const char *what, cublasStatus_t s) {
    return cispo_fail("%s: cuBLAS status %d (%s)", what, (int)s, cublasGetStatusString(s));
}

int cuda_fail(const char *what, cudaError_t e) {
    return cispo_fail("%s: %s (%s)", what, cudaGetErrorName(e), cudaGetErrorString(e));
}

int dtype_type(int dtype, cudaDataType_t *t, const char *op) {
    if (dtype == DTYPE_BF16) *t = CUDA_R_16BF;
    else if (dtype == DTYPE_F32) *t = CUDA_R_32F;
    else return cispo_fail("%s: dtype %d not supported (bf16 or f32)", op, dtype);
    return 0;
}

// Row-major C[m,n] = alpha op(A) op(B) + beta C with leading dimensions (elements); A, B of type ab,
// C of type ct; fp32 accumulation (CUBLAS_COMPUTE_32F: no TF32 for fp32 inputs, as the reference).
int gemm_rm(cublasHandle_t h, int trans_a, int trans_b, int m, int n, int k, float alpha, const void *a, int lda,
            const void *b, int ldb, float beta, void *c, int ldc, cudaDataType_t ab, cudaDataType_t ct,
            const char *op) {
    if (m <= 0 || n <= 0) return 0;
    if (lda < 1) lda = 1;
    if (ldb < 1) ldb = 1;
    cublasStatus_t s = cublasGemmEx(h, trans_b ? CUBLAS_OP_T : CUBLAS_OP_N, trans_a ? CUBLAS_OP_T : CUBLAS_OP_N, n,
                                    m, k, &alpha, b, ab, ldb, a, ab, lda, &beta, c, ct, ldc, CUBLAS_COMPUTE_32F,
                                    CUBLAS_GEMM_DEFAULT);
    if (s != CUBLAS_STATUS_SUCCESS) return blas_fail(op, s);
    return 0;
}

}  // namespace

extern "C" int matmul_cuda(void *blas, void *c, const void *a, const void *bm, int m, int n, int k, int trans_a,
                           int trans_b, float alpha, float beta, int dtype, int skinny, int wide, cudaStream_t st) {
    cudaDataType_t t = CUDA_R_16BF;
    if (dtype_type(dtype, &t, "matmul_cuda")) return -1;
    // a linear layer of a few rows (decode's projections): the wide-k tiles stream W at the copy bandwidth where
    // cuBLAS spends 5-7 us on a 2-6 MB product (backend_tuning_t.dense_skinny)
    if (m > 0 && m <= skinny && n > 0 && k > 0 && dtype == DTYPE_BF16 && !trans_a && trans_b && alpha == 1.0f &&
        k % 8 == 0 && aligned16(a) && aligned16(bm)) {
        if (dense_skinny_launch((__nv_bfloat16 *)c, (const __nv_bfloat16 *)a, (const __nv_bfloat16 *)bm, m, n, k, beta,
                                wide == 2, st))
            return -1;
        return launch_check("matmul_cuda");
    }
    // otherwise cuBLAS (its handle is bound to the stream)
    return gemm_rm((cublasHandle_t)blas, trans_a, trans_b, m, n, k, alpha, a, trans_a ? m : k, bm, trans_b ? k : n,
                   beta, c, n, t, t, "matmul_cuda");
}

// The cuBLAS type of a weight gradient: fp32, or bf16 beside bf16 activations (cuBLAS has no fp32 x fp32 ->
// bf16 product).
static int grad_type(int gdtype, int dtype, cudaDataType_t *t, const char *op) {
    if (gdtype == DTYPE_BF16 && dtype != DTYPE_BF16)
        return cispo_fail("%s: bf16 gradients need bf16 activations (got %s)", op, dtype_name(dtype));
    return dtype_type(gdtype, t, op);
}

// dW[n_out, n_in] (+)= dy[T, n_out]^T x[T, n_in], dW in gdtype (acc 0: written)
extern "C" int matmul_wgrad_cuda(void *blas, void *dw, const void *dy, const void *x, int n_out, int n_in, int T,
                                 int acc, int dtype, int gdtype, cudaStream_t st) {
    cudaDataType_t t = CUDA_R_16BF, gt = CUDA_R_32F;
    if (dtype_type(dtype, &t, "matmul_wgrad_cuda") || grad_type(gdtype, dtype, &gt, "matmul_wgrad_cuda")) return -1;
    if (T <= 0) {
        if (acc || n_out <= 0 || n_in <= 0) return 0;
        cudaError_t e = cudaMemsetAsync(dw, 0, (size_t)n_out * n_in * dtype_size(gdtype), st);
        return e == cudaSuccess ? 0 : cuda_fail("matmul_wgrad_cuda", e);
    }
    return gemm_rm((cublasHandle_t)blas, 1, 0, n_out, n_in, T, 1.0f, dy, n_out, x, n_in, acc ? 1.0f : 0.0f, dw, n_in,
                   t, gt, "matmul_wgrad_cuda");
}

// The wgmma kernels (grouped GEMMs, attention): built for sm_90a (CMake's default architecture) and run on a
// card of compute capability 9.x. CISPO_NO_WGMMA in the environment keeps the mma.sync kernels (for
// comparison): 1 everywhere, "gemm" or "attention" for those kernels only. The answer is the first call's,
// for the device current then.
extern "C" int wgmma_ready_cuda(int which) {
#if defined(CISPO_WGMMA)
    static int avail = -1, off_gemm = 0, off_attn = 0;
    if (avail < 0) {
        int dev = 0, major = 0;
        const char *off = getenv("CISPO_NO_WGMMA");
        avail = cudaGetDevice(&dev) == cudaSuccess &&
                cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, dev) == cudaSuccess && major == 9;
        if (off && (!strcmp(off, "1") || !strcmp(off, "gemm"))) off_gemm = 1;
        if (off && (!strcmp(off, "1") || !strcmp(off, "attention"))) off_attn = 1;
    }
    return avail && !(which == WGMMA_GEMM ? off_gemm : off_attn);
#else
    (void)which;
    return 0;
#endif
}

// The grouped GEMMs keep everything on the device: each CTA finds its tile from the offsets, so
// there is no host round trip and no workspace.
extern "C" size_t grouped_matmul_workspace_bytes_cuda(int G, int rows, int n, int k) {
    (void)G, (void)rows, (void)n, (void)k;
    return 0;
}

namespace {

bool aligned16(const void *p) { return ((uintptr_t)p & 15) == 0; }

int launch_check(const char *op) {
    cudaError_t e = cudaGetLastError();
    if (e != cudaSuccess) return cuda_fail(op, e);
    return 0;
}

// The CTAs of a grouped forward in bm x bn tiles (gg_find_tile's order): a bound on sum_g ceil(rows_g / bm) x
// the column tiles (twice with a second weight: two); -1 (+ message) past the grid's limit.
long grouped_tiles(int rows, int G, int n, int bm, int bn, int two) {
    const long nt = (long)(n + bn - 1) / bn * (two ? 2 : 1), tiles = ((long)(rows + bm - 1) / bm + G) * nt;
    return tiles > 0x7fffffffL ? (cispo_fail("grouped_matmul_cuda: %ld tiles", tiles), -1L) : tiles;
}

// gg_forward with BM-row tiles and STAGES stages over every (group, row tile, column tile).
template <int BM, int STAGES>
int gg_launch(int trans_w, __nv_bfloat16 *c, int ldc, const __nv_bfloat16 *a, int lda, const __nv_bfloat16 *w,
              const __nv_bfloat16 *v, const int32_t *offsets, int G, int rows, int n, int k, float beta, int vec,
              int pair, cudaStream_t st) {
    const char *op = "grouped_matmul_cuda";
    const long tiles = grouped_tiles(rows, G, n, BM, GG_BN, v != NULL);
    if (tiles < 0) return -1;
    const int smem = gg_smem_bytes(BM, STAGES);
    cudaError_t e;
    PDL_CONFIG(cfg, (unsigned)tiles, GG_THREADS, (size_t)smem, st);
    if (trans_w) {
        e = cudaFuncSetAttribute(gg_forward<BM, STAGES, true>, cudaFuncAttributeMaxDynamicSharedMemorySize, smem);
        if (e != cudaSuccess) return cuda_fail(op, e);
        e = cudaLaunchKernelEx(&cfg, gg_forward<BM, STAGES, true>, c, ldc, a, lda, w, v, offsets, G, n, k, beta, vec,
                               pair);
    } else {
        e = cudaFuncSetAttribute(gg_forward<BM, STAGES, false>, cudaFuncAttributeMaxDynamicSharedMemorySize, smem);
        if (e != cudaSuccess) return cuda_fail(op, e);
        e = cudaLaunchKernelEx(&cfg, gg_forward<BM, STAGES, false>, c, ldc, a, lda, w, v, offsets, G, n, k, beta, vec,
                               pair);
    }
    return e == cudaSuccess ? 0 : cuda_fail(op, e);
}

// The wgmma kernels take a grouped GEMM whose rows take 16-byte loads (vec) and whose groups average at least
// WG_MIN_ROWS rows (training and prefill; decode keeps the mma.sync kernels).
bool use_wgmma(int vec, int rows, int G) {
    return vec && (long)rows >= (long)WG_MIN_ROWS * G && wgmma_ready_cuda(WGMMA_GEMM);
}

// The current device's multiprocessors into *sms (the persistent grids' size)
static cudaError_t device_sms(int *sms) {
    int dev = 0;
    cudaError_t e = cudaGetDevice(&dev);
    return e != cudaSuccess ? e : cudaDeviceGetAttribute(sms, cudaDevAttrMultiProcessorCount, dev);
}

// Whether the TMA-fed grouped forward and weight gradient run persistent and warp-specialized (wgp_forward,
// wgp_wgrad) rather than a CTA a tile (wgt_forward, wgt_wgrad): wherever their tiles leave through the TMA (tma_out:
// forward_fstore(), or wgrad_tstore() at 2, and the shape allows), so that the next tile's loads run under the last
// one's stores, and else where a tile's K steps are few (steps: WG_BK each). Measured on an H100 (bench/NOTES.md):
// with the threads' stores, +9 to +11% at bench-1b's forward (16 steps a tile) and +6.5% at its weight gradient
// (4), -1.5% at M1's W1|W3 (96) and -5% at M1's weight gradient (16 steps, fp32 tiles of dW); with the TMA
// epilogues, in one call, M1's W1 weight gradient +6 to +7% (fp32 dW 557-560 against 520-526 TFLOP/s, bf16 dW
// 637-654 against 605-620), bench-1b's +12% (248 against 222), M1's W1|W3 +3% (742 against 720), W2 +1% (722
// against 716) and W2's input gradient -3% (674 against 694). CISPO_WG_PERSIST=0 or 1 in the environment
// overrides it (for comparison). Clusters of two CTAs sharing the 256-column operand by TMA multicast: use_cluster.
static int use_persist(int steps, int wgrad, int tma_out) {
    static int env = -2;
    if (env == -2) env = env_knob("CISPO_WG_PERSIST", -1, 1);
    if (env >= 0) return env;
    return tma_out || steps <= (wgrad ? 8 : 32);
}

// Where the TMA-fed expert weight gradient stores its tiles through the TMA (staged in shared memory; fp32 sums
// added to in the L2) rather than by its threads: 2 (the default) in both kernels, 1 in the one of a CTA a tile
// only (wgt_wgrad), 0 in neither (the threads' stores, for comparison); CISPO_WG_TSTORE=0, 1 or 2 in the
// environment picks. Measured at M1's W1: on an H200 a CTA a tile, fp32 dW 533 against 519 TFLOP/s, bf16 dW 621
// against 509; on an H100 persistent (wgp_wgrad) 557-560 and 637-654 against the CTA-a-tile form's 520-526 and
// 605-620, and bench-1b's 248 against 222 with the threads' stores (bench/NOTES.md).
static int wgrad_tstore(void) {
    static int on = -1;
    if (on < 0) on = env_knob("CISPO_WG_TSTORE", 2, 2);
    return on;
}

// Whether the TMA-fed expert forward (wgt_forward, wgp_forward) stores its tiles through the TMA (staged in shared
// memory) rather than by its threads (bf16x2 stores fill half a sector a row): 1, the default; CISPO_WG_FSTORE=0
// in the environment for the threads' stores (for comparison). Measured on an H100 in one call, TFLOP/s against
// the threads' stores: bench-1b W1|W3 480 against 390, W2 398 against 327; M1 W1|W3 720 against 665, W2 716
// against 680, W2's input gradient 694 against 656 (bench/NOTES.md).
static int forward_fstore(void) {
    static int on = -1;
    if (on < 0) on = env_knob("CISPO_WG_FSTORE", 1, 1);
    return on;
}

// Whether the TMA-fed grouped forward and weight gradient run on a persistent grid of clusters of two CTAs that
// share the 256-column operand of each K step through the TMA's multicast (wgpc_forward, wgpc_wgrad) in place of
// the persistent and CTA-a-tile kernels: CISPO_WG_CLUSTER=1 in the environment (default 0). The same bits either
// way. On an H100 at M1's widths (one call, bench/NOTES.md) level with the default kernels: W1|W3 732 against 729
// and 749 TFLOP/s, W2 689 against 716, W2's input gradient 717 against 687, the weight gradient within 1%;
// bench-1b's products 7% slower.
static int use_cluster(void) {
    static int on = -1;
    if (on < 0) on = env_knob("CISPO_WG_CLUSTER", 0, 1);
    return on;
}

// The launch of a clustered kernel (WGP_THREADS threads, smem bytes) on `clusters` clusters of two CTAs along x
// (attr: its one attribute, the cluster dimension)
static cudaLaunchConfig_t cluster_config(unsigned clusters, int smem, cudaStream_t st, cudaLaunchAttribute *attr) {
    cudaLaunchConfig_t cfg = {};
    cfg.gridDim = dim3(2 * clusters), cfg.blockDim = dim3(WGP_THREADS), cfg.dynamicSmemBytes = (size_t)smem;
    cfg.stream = st;
    attr->id = cudaLaunchAttributeClusterDimension;
    attr->val.clusterDim.x = 2, attr->val.clusterDim.y = 1, attr->val.clusterDim.z = 1;
    cfg.attrs = attr, cfg.numAttrs = 1;
    return cfg;
}

// The persistent clustered grid of kern for `pairs` tile pairs into *clusters: as many clusters of two as the
// device runs at once (cudaOccupancyMaxActiveClusters, at most half the SMs: a GPC may leave an SM without a
// partner), at most `pairs`. The device's answer is asked once for each shared-memory size (every clustered kernel
// runs one CTA an SM of WGP_THREADS threads, so the size alone sets it). Sets kern's shared-memory size; 0, or -1
// (+ message) where the query fails or no cluster fits.
template <typename KERN>
static int cluster_grid(KERN kern, int smem, long pairs, cudaStream_t st, unsigned *clusters, const char *op) {
    static int known_smem[2] = {-1, -1}, known_slots[2];
    cudaError_t e = cudaFuncSetAttribute(kern, cudaFuncAttributeMaxDynamicSharedMemorySize, smem);
    if (e != cudaSuccess) return cuda_fail(op, e);
    const int i = smem > WG_SMEM;  // with or without the TMA epilogue's buffers
    if (known_smem[i] != smem) {
        cudaLaunchAttribute attr;
        const cudaLaunchConfig_t cfg = cluster_config(1, smem, st, &attr);
        int n = 0, sms = 0;
        if ((e = cudaOccupancyMaxActiveClusters(&n, kern, &cfg)) != cudaSuccess ||
            (e = device_sms(&sms)) != cudaSuccess)
            return cuda_fail(op, e);
        known_slots[i] = n < sms / 2 ? n : sms / 2, known_smem[i] = smem;
    }
    const int slots = known_slots[i];
    if (slots <= 0) return cispo_fail("%s: no cluster of two CTAs fits", op);
    *clusters = (unsigned)(pairs < slots ? pairs : slots);
    return 0;
}

// wgpc_forward (use_cluster), else wgp_forward or wgt_forward (use_persist), where the maps encode and CISPO_NO_TMA=1
// is not set: 1 launched, 0 not (the caller runs wg_forward), -1 a launch error.
int wgt_forward_launch(int trans_w, __nv_bfloat16 *c, int ldc, const __nv_bfloat16 *a, int lda,
                       const __nv_bfloat16 *w, const __nv_bfloat16 *v, const int32_t *offsets, int G, int rows, int n,
                       int k, float beta, int pair, long tiles, cudaStream_t st) {
    if (tma_off()) return 0;
    static_assert(sizeof(WgtMap) == sizeof(CUtensorMap), "tensor map size");
    WgtMap ma, mw, mv;
    const cuuint64_t adims[2] = {(cuuint64_t)k, (cuuint64_t)rows}, astr[1] = {(cuuint64_t)lda * 2};
    const cuuint32_t abox[2] = {WG_BK, WG_BM};
    if (tensor_map(&ma, a, 2, adims, astr, abox)) return 0;
    const int cluster = use_cluster();
    cuuint64_t wdims[3], wstr[2];
    cuuint32_t wbox[3];
    if (trans_w) {  // W_g [n, k] (wgpc_forward: in halves of 128 n, one multicast by each CTA of a cluster)
        wdims[0] = (cuuint64_t)k, wdims[1] = (cuuint64_t)n, wdims[2] = (cuuint64_t)G;
        wbox[0] = WG_BK, wbox[1] = cluster ? WG_BN / 2 : WG_BN, wbox[2] = 1;
    } else {  // W_g [k, n]
        wdims[0] = (cuuint64_t)n, wdims[1] = (cuuint64_t)k, wdims[2] = (cuuint64_t)G;
        wbox[0] = 64, wbox[1] = WG_BK, wbox[2] = 1;
    }
    wstr[0] = wdims[0] * 2, wstr[1] = (cuuint64_t)n * k * 2;
    if (tensor_map(&mw, w, 3, wdims, wstr, wbox)) return 0;
    if (v ? tensor_map(&mv, v, 3, wdims, wstr, wbox) : (mv = mw, 0)) return 0;
    // the tile out through the TMA (FSTORE) where asked for, C is written (beta 0), its rows 16-byte aligned and no
    // tile's box of 64 columns reaches past n (into the pair's second half)
    WgtMap mcf = ma, mcs = ma;
    const cuuint64_t cdims[2] = {(cuuint64_t)(v ? 2 * n : n), (cuuint64_t)rows}, cstr[1] = {(cuuint64_t)ldc * 2};
    const cuuint32_t cboxf[2] = {64, WG_BM}, cboxs[2] = {64, 8};
    const int fstore = forward_fstore() && beta == 0.0f && n % 64 == 0 && aligned16(c) && ldc % 8 == 0 &&
                       !tensor_map(&mcf, c, 2, cdims, cstr, cboxf) && !tensor_map(&mcs, c, 2, cdims, cstr, cboxs);
    const char *op = "grouped_matmul_cuda";
    cudaError_t e;
    if (cluster) {  // wgpc_forward: persistent, clusters of two CTAs walking the tile pairs
        const int smem = WG_SMEM + (fstore ? WGP_TSTORE_SMEM : 0);
        void (*kern)(const WgtMap, const WgtMap, const WgtMap, const WgtMap, const WgtMap, __nv_bfloat16 *, int,
                     const int32_t *, int, int, int, float, int, int, int) =
            trans_w ? (fstore ? wgpc_forward<true, true> : wgpc_forward<true, false>)
                    : (fstore ? wgpc_forward<false, true> : wgpc_forward<false, false>);
        unsigned clusters = 0;
        if (cluster_grid(kern, smem, (tiles + 1) / 2, st, &clusters, op)) return -1;
        cudaLaunchAttribute attr;
        const cudaLaunchConfig_t cfg = cluster_config(clusters, smem, st, &attr);
        e = cudaLaunchKernelEx(&cfg, kern, ma, mw, mv, mcf, mcs, c, ldc, offsets, G, n, k, beta, pair, (int)(v != NULL),
                               (int)tiles);
        return e == cudaSuccess ? 1 : cuda_fail(op, e);
    }
    if (use_persist((k + WG_BK - 1) / WG_BK, 0, fstore)) {  // wgp_forward: persistent, one CTA an SM at most
        int sms = 0;
        if ((e = device_sms(&sms)) != cudaSuccess) return cuda_fail(op, e);
        const unsigned grid = (unsigned)(tiles < sms ? tiles : sms);
        const int smem = WG_SMEM + (fstore ? WGP_TSTORE_SMEM : 0);
        void (*kern)(const WgtMap, const WgtMap, const WgtMap, const WgtMap, const WgtMap, __nv_bfloat16 *, int,
                     const int32_t *, int, int, int, float, int, int, int) =
            trans_w ? (fstore ? wgp_forward<true, true> : wgp_forward<true, false>)
                    : (fstore ? wgp_forward<false, true> : wgp_forward<false, false>);
        e = cudaFuncSetAttribute(kern, cudaFuncAttributeMaxDynamicSharedMemorySize, smem);
        if (e != cudaSuccess) return cuda_fail(op, e);
        kern<<<grid, WGP_THREADS, smem, st>>>(ma, mw, mv, mcf, mcs, c, ldc, offsets, G, n, k, beta, pair, v != NULL,
                                              (int)tiles);
        return 1;
    }
    void (*kern)(const WgtMap, const WgtMap, const WgtMap, const WgtMap, const WgtMap, __nv_bfloat16 *, int,
                 const int32_t *, int, int, int, float, int, int) =
        trans_w ? (fstore ? wgt_forward<true, true> : wgt_forward<true, false>)
                : (fstore ? wgt_forward<false, true> : wgt_forward<false, false>);
    e = cudaFuncSetAttribute(kern, cudaFuncAttributeMaxDynamicSharedMemorySize, WG_SMEM);
    if (e != cudaSuccess) return cuda_fail(op, e);
    kern<<<(unsigned)tiles, WG_THREADS, WG_SMEM, st>>>(ma, mw, mv, mcf, mcs, c, ldc, offsets, G, n, k, beta, pair,
                                                       v != NULL);
    return 1;
}

int wg_forward_launch(int trans_w, __nv_bfloat16 *c, int ldc, const __nv_bfloat16 *a, int lda,
                      const __nv_bfloat16 *w, const __nv_bfloat16 *v, const int32_t *offsets, int G, int rows, int n,
                      int k, float beta, int pair, cudaStream_t st) {
    const char *op = "grouped_matmul_cuda";
    const long tiles = grouped_tiles(rows, G, n, WG_BM, WG_BN, v != NULL);
    if (tiles < 0) return -1;
    int t = wgt_forward_launch(trans_w, c, ldc, a, lda, w, v, offsets, G, rows, n, k, beta, pair, tiles, st);
    if (t) return t < 0 ? -1 : 0;
    cudaError_t e;
    if (trans_w) {
        e = cudaFuncSetAttribute(wg_forward<true>, cudaFuncAttributeMaxDynamicSharedMemorySize, WG_SMEM);
        if (e != cudaSuccess) return cuda_fail(op, e);
        wg_forward<true><<<(unsigned)tiles, WG_THREADS, WG_SMEM, st>>>(c, ldc, a, lda, w, v, offsets, G, n, k, beta,
                                                                      pair);
    } else {
        e = cudaFuncSetAttribute(wg_forward<false>, cudaFuncAttributeMaxDynamicSharedMemorySize, WG_SMEM);
        if (e != cudaSuccess) return cuda_fail(op, e);
        wg_forward<false><<<(unsigned)tiles, WG_THREADS, WG_SMEM, st>>>(c, ldc, a, lda, w, v, offsets, G, n, k, beta,
                                                                       pair);
    }
    return 0;
}

// The skinny tiles' pipeline depth: GG_SKINNY_STAGES, or CISPO_GG_SKINNY_STAGES in the environment (5, 6 or 8;
// for comparing them). Shared memory per CTA is (32 + 128) x 32 x 2 bytes a stage, so the depth sets how many
// CTAs an SM holds (a decode step's W1|W3 product has G x 16 of them) against the bytes each keeps in flight;
// the results are the same bits at every depth. bench/NOTES.md has the comparison that chose 4.
static int skinny_stages(void) {
    static int s = -1;
    if (s < 0) {
        const char *e = getenv("CISPO_GG_SKINNY_STAGES");
        int v = e ? atoi(e) : GG_SKINNY_STAGES;
        s = v == 5 || v == 6 || v == 8 ? v : GG_SKINNY_STAGES;
    }
    return s;
}

// The wide-k tiles' shape (the same bits at every one): GS_STAGES stages of k step GS_BK, or from the
// environment CISPO_GS_STAGES=2|3 (more CTAs an SM) and CISPO_GS_BK=256 (512 contiguous bytes of each weight row
// a stage; 2 stages unless CISPO_GS_STAGES=3), for comparison. *bk gets the k step; returns the stages.
static int wide_shape(int *bk) {
    static int s = -1, b = GS_BK;
    if (s < 0) {
        const char *es = getenv("CISPO_GS_STAGES"), *eb = getenv("CISPO_GS_BK");
        const int vs = es ? atoi(es) : 0, vb = eb ? atoi(eb) : GS_BK;
        b = vb == 256 ? 256 : GS_BK;
        s = vs == 2 || vs == 3 ? vs : b == 256 ? 2 : GS_STAGES;
    }
    *bk = b;
    return s;
}

// gs_forward (gemm_skinny.cuh) over every (group, row tile, column tile), offsets NULL: one group of `rows` rows;
// loop: gs_forward_loop on a persistent grid (the CTAs an SM holds at this shape, times the SMs); glu: their
// grouped_matmul_glu form (activation act).
template <bool GLU>
static int gs_launch_t(__nv_bfloat16 *c, int ldc, const __nv_bfloat16 *a, int lda, const __nv_bfloat16 *w,
                       const __nv_bfloat16 *v, const int32_t *offsets, int G, int rows, int n, int k, float beta,
                       int pair, int loop, int act, const int32_t *arow, int adiv, const char *op, cudaStream_t st) {
    long tiles = grouped_tiles(rows, offsets ? G : 0, n, GS_BM, GLU ? GS_BN / 2 : GS_BN, !GLU && v);
    if (tiles < 0) return -1;
    int bk;
    const int s = wide_shape(&bk);
    typedef void (*gs_kern_t)(__nv_bfloat16 *, int, const __nv_bfloat16 *, int, const __nv_bfloat16 *,
                              const __nv_bfloat16 *, const int32_t *, int, int, int, int, float, int, int,
                              const int32_t *, int);
    // the instance of KERN (gs_forward or gs_forward_loop) at the stages and k step wide_shape chose
#define GS_PICK(KERN)                                                                                        \
    (bk == 256 ? (s == 3 ? KERN<3, 256, GLU> : KERN<2, 256, GLU>)                                          \
               : (s == 2 ? KERN<2, GS_BK, GLU> : s == 3 ? KERN<3, GS_BK, GLU> : KERN<GS_STAGES, GS_BK, GLU>))
    const gs_kern_t kern = loop ? GS_PICK(gs_forward_loop) : GS_PICK(gs_forward);
#undef GS_PICK
    const int smem = GS_SMEM(s, bk);
    cudaError_t e = cudaFuncSetAttribute(kern, cudaFuncAttributeMaxDynamicSharedMemorySize, smem);
    if (e != cudaSuccess) return cuda_fail(op, e);
    if (loop) {
        int sms = 0, per_sm = 0;
        if ((e = device_sms(&sms)) != cudaSuccess ||
            (e = cudaOccupancyMaxActiveBlocksPerMultiprocessor(&per_sm, kern, GG_THREADS, smem)) != cudaSuccess)
            return cuda_fail(op, e);
        const long grid = (long)sms * (per_sm > 0 ? per_sm : 1);
        if (tiles > grid) tiles = grid;
    }
    PDL_CONFIG(cfg, (unsigned)tiles, GG_THREADS, (size_t)smem, st);
    e = cudaLaunchKernelEx(&cfg, kern, c, ldc, a, lda, w, v, offsets, G, rows, n, k, beta, pair, act, arow, adiv);
    return e == cudaSuccess ? 0 : cuda_fail(op, e);
}

static int gs_launch(__nv_bfloat16 *c, int ldc, const __nv_bfloat16 *a, int lda, const __nv_bfloat16 *w,
                     const __nv_bfloat16 *v, const int32_t *offsets, int G, int rows, int n, int k, float beta, int pair,
                     int loop, cudaStream_t st) {
    return gs_launch_t<false>(c, ldc, a, lda, w, v, offsets, G, rows, n, k, beta, pair, loop, 0, NULL, 1,
                              offsets ? "grouped_matmul_cuda" : "matmul_cuda", st);
}

// matmul's linear layer C[m, n] = beta C + A W^T (A [m, k], W [n, k], both 16-byte aligned, k % 8 == 0) through
// the wide-k tiles as one group.
int dense_skinny_launch(__nv_bfloat16 *c, const __nv_bfloat16 *a, const __nv_bfloat16 *w, int m, int n, int k,
                        float beta, int loop, cudaStream_t st) {
    const int pair = ((uintptr_t)c & 3) == 0 && n % 2 == 0;  // bf16x2 stores
    return gs_launch(c, n, a, k, w, NULL, NULL, 1, m, n, k, beta, pair, loop, st);
}

// a few rows per group on average (decode): with W_g [n, k] in 16-byte rows the wide-k tiles (gs_forward; on a
// persistent grid, gs_forward_loop, when wide is 2) unless wide (the tuning knob gg_skinny_wide) is -1, else the
// 32-k skinny tiles (bit-identical results); many (training): the wgmma kernels (use_wgmma)
int gg_run(int trans_w, __nv_bfloat16 *c, int ldc, const __nv_bfloat16 *a, int lda, const __nv_bfloat16 *w,
           const __nv_bfloat16 *v, const int32_t *offsets, int G, int rows, int n, int k, float beta, int vec, int pair,
           int wide, cudaStream_t st) {
    if (use_wgmma(vec, rows, G))
        return wg_forward_launch(trans_w, c, ldc, a, lda, w, v, offsets, G, rows, n, k, beta, pair, st);
    if ((long)rows > 24L * G)
        return gg_launch<GG_BM, GG_STAGES>(trans_w, c, ldc, a, lda, w, v, offsets, G, rows, n, k, beta, vec, pair, st);
    if (wide >= 0 && trans_w && vec)
        return gs_launch(c, ldc, a, lda, w, v, offsets, G, rows, n, k, beta, pair, wide == 2, st);
    const int s = skinny_stages();
#define SKINNY(S) gg_launch<GG_SKINNY_BM, S>(trans_w, c, ldc, a, lda, w, v, offsets, G, rows, n, k, beta, vec, pair, st)
    return s == 5 ? SKINNY(5) : s == 6 ? SKINNY(6) : s == 8 ? SKINNY(8) : SKINNY(GG_SKINNY_STAGES);
#undef SKINNY
}

}  // namespace

extern "C" int grouped_matmul_cuda(void *blas, void *c, int ldc, const void *a, int lda, const void *w, int trans_w,
                                   const int32_t *offsets, int G, int rows, int n, int k, float beta, int dtype,
                                   int wide, void *ws, size_t ws_bytes, cudaStream_t st) {
    (void)blas, (void)ws, (void)ws_bytes;
    const char *op = "grouped_matmul_cuda";
    if (dtype != DTYPE_BF16) return cispo_fail("%s: dtype %s not supported (bf16 only)", op, dtype_name(dtype));
    if (G <= 0 || rows <= 0 || n <= 0) return 0;
    if (k <= 0) return cispo_fail("%s: k = %d", op, k);
    // 16-byte cp.async when every row of both operands starts on 16 bytes; else element loads
    int vec = aligned16(a) && aligned16(w) && lda % 8 == 0 && k % 8 == 0 && (trans_w || n % 8 == 0);
    int pair = ((uintptr_t)c & 3) == 0 && ldc % 2 == 0 && n % 2 == 0;  // bf16x2 stores
    if (gg_run(trans_w, (__nv_bfloat16 *)c, ldc, (const __nv_bfloat16 *)a, lda, (const __nv_bfloat16 *)w, NULL,
               offsets, G, rows, n, k, beta, vec, pair, wide, st))
        return -1;
    return launch_check(op);
}

extern "C" int grouped_matmul_pair_cuda(void *c, int ldc, const void *a, int lda, const void *w, const void *v,
                                        const int32_t *offsets, int G, int rows, int n, int k, int dtype, int wide,
                                        cudaStream_t st) {
    const char *op = "grouped_matmul_pair_cuda";
    if (dtype != DTYPE_BF16) return cispo_fail("%s: dtype %s not supported (bf16 only)", op, dtype_name(dtype));
    if (G <= 0 || rows <= 0 || n <= 0) return 0;
    if (k <= 0) return cispo_fail("%s: k = %d", op, k);
    if (ldc < 2 * n) return cispo_fail("%s: ldc %d < 2n = %d", op, ldc, 2 * n);
    int vec = aligned16(a) && aligned16(w) && aligned16(v) && lda % 8 == 0 && k % 8 == 0;
    int pair = ((uintptr_t)c & 3) == 0 && ldc % 2 == 0 && n % 2 == 0;
    if (gg_run(1, (__nv_bfloat16 *)c, ldc, (const __nv_bfloat16 *)a, lda, (const __nv_bfloat16 *)w,
               (const __nv_bfloat16 *)v, offsets, G, rows, n, k, 0.0f, vec, pair, wide, st))
        return -1;
    return launch_check(op);
}

// act(A W_g^T) * (A V_g^T) [rows, n] through the wide-k tiles with both weights in one tile (gs_load_glu_tile):
// the values grouped_matmul_pair then glu_forward give, without the [h1 | h3] rows in memory. Any number of rows
// a group (made for decode's few); wide 2: on a persistent grid; gather: A's row s is a's row gather[s] / gk.
extern "C" int grouped_matmul_glu_cuda(void *out, const void *a, int lda, const void *w, const void *v,
                                       const int32_t *offsets, int G, int rows, int n, int k, int act,
                                       const int32_t *gather, int gk, int dtype, int wide, cudaStream_t st) {
    const char *op = "grouped_matmul_glu_cuda";
    if (dtype != DTYPE_BF16) return cispo_fail("%s: dtype %s not supported (bf16 only)", op, dtype_name(dtype));
    if (act < 0 || act >= ACT_COUNT) return cispo_fail("%s: unknown activation %d", op, act);
    if (G <= 0 || rows <= 0 || n <= 0) return 0;
    if (k <= 0) return cispo_fail("%s: k = %d", op, k);
    if (gather && gk < 1) return cispo_fail("%s: gather with gk = %d", op, gk);
    if (!(aligned16(a) && aligned16(w) && aligned16(v) && lda % 8 == 0 && k % 8 == 0))
        return cispo_fail("%s: A and the weights need 16-byte aligned rows (lda %d, k %d)", op, lda, k);
    const int pair = ((uintptr_t)out & 3) == 0 && n % 2 == 0;
    if (gs_launch_t<true>((__nv_bfloat16 *)out, n, (const __nv_bfloat16 *)a, lda, (const __nv_bfloat16 *)w,
                          (const __nv_bfloat16 *)v, offsets, G, rows, n, k, 0.0f, pair, wide == 2, act, gather,
                          gather ? gk : 1, op, st))
        return -1;
    return launch_check(op);
}

// The grouped weight gradient into dW of type DW (float or __nv_bfloat16); pair: two-element accesses; inflight:
// the wgmma kernel's variant (0 each step waited for, 1 in flight a step, 2 the TMA loads).
template <typename DW>
static int grouped_wgrad_launch(DW *dw, const void *dc, int lddc, const void *a, int lda, const int32_t *offsets,
                                int G, int rows, int n, int k, int acc, int vec, int pair, int inflight, cudaStream_t st,
                                const char *op) {
    if (use_wgmma(vec, rows, G)) {
        dim3 wgrid((unsigned)((k + WG_BN - 1) / WG_BN), (unsigned)((n + WG_BM - 1) / WG_BM), (unsigned)G);
        if (wgrid.y > 65535) return cispo_fail("%s: n = %d too large", op, n);
        if (inflight == 2 && !tma_off()) {  // the TMA loads (wgt_wgrad, wgp_wgrad), where the maps encode
            WgtMap mdc, ma;
            const cuuint64_t cd[2] = {(cuuint64_t)n, (cuuint64_t)rows}, cs[1] = {(cuuint64_t)lddc * 2};
            const cuuint64_t ad[2] = {(cuuint64_t)k, (cuuint64_t)rows}, as[1] = {(cuuint64_t)lda * 2};
            const cuuint32_t box[2] = {64, WG_BK};
            if (!tensor_map(&mdc, dc, 2, cd, cs, box) && !tensor_map(&ma, a, 2, ad, as, box)) {
                // the tile out through the TMA (TSTORE) where dW's rows are 16-byte aligned and the sum is not a
                // bf16 one added to
                WgtMap mdw = mdc;
                const int f32 = sizeof(DW) == 4;
                const cuuint64_t wd[3] = {(cuuint64_t)k, (cuuint64_t)n, (cuuint64_t)G},
                                 ws[2] = {(cuuint64_t)k * sizeof(DW), (cuuint64_t)n * k * sizeof(DW)};
                const cuuint32_t wb[3] = {(cuuint32_t)(128 / sizeof(DW)), WG_BM, 1};
                const int tma_ok = wgrad_tstore() >= 1 && (f32 || !acc) && aligned16(dw) &&
                                   (k * sizeof(DW)) % 16 == 0 && !tensor_map(&mdw, dw, 3, wd, ws, wb, f32);
                const int cluster = use_cluster();
                const int persist = cluster || use_persist((int)(((long)rows / G + WG_BK - 1) / WG_BK), 1,
                                                           tma_ok && wgrad_tstore() >= 2);
                const int tstore = tma_ok && wgrad_tstore() >= (persist ? 2 : 1);
                cudaError_t e;
                if (cluster) {  // wgpc_wgrad: persistent, clusters of two CTAs walking pairs of row tiles
                    const int smem = WG_SMEM + (tstore ? WGP_TSTORE_SMEM : 0);
                    void (*kern)(DW *, const WgtMap, const WgtMap, const WgtMap, const int32_t *, int, int, int, int,
                                 int) = tstore ? wgpc_wgrad<DW, true> : wgpc_wgrad<DW, false>;
                    const long pairs = (long)wgrid.x * ((wgrid.y + 1) / 2) * wgrid.z;
                    unsigned clusters = 0;
                    if (cluster_grid(kern, smem, pairs, st, &clusters, op)) return -1;
                    cudaLaunchAttribute attr;
                    const cudaLaunchConfig_t cfg = cluster_config(clusters, smem, st, &attr);
                    e = cudaLaunchKernelEx(&cfg, kern, dw, mdc, ma, mdw, offsets, G, n, k, pair, acc);
                    return e == cudaSuccess ? launch_check(op) : cuda_fail(op, e);
                }
                if (persist) {  // wgp_wgrad: persistent
                    int sms = 0;
                    const int smem = WG_SMEM + (tstore ? WGP_TSTORE_SMEM : 0);
                    void (*kern)(DW *, const WgtMap, const WgtMap, const WgtMap, const int32_t *, int, int, int, int,
                                 int) = tstore ? wgp_wgrad<DW, true> : wgp_wgrad<DW, false>;
                    if ((e = device_sms(&sms)) != cudaSuccess ||
                        (e = cudaFuncSetAttribute(kern, cudaFuncAttributeMaxDynamicSharedMemorySize, smem)) !=
                            cudaSuccess)
                        return cuda_fail(op, e);
                    const long tiles = (long)wgrid.x * wgrid.y * wgrid.z;
                    kern<<<(unsigned)(tiles < sms ? tiles : sms), WGP_THREADS, smem, st>>>(dw, mdc, ma, mdw, offsets, G,
                                                                                          n, k, pair, acc);
                    return launch_check(op);
                }
                void (*kern)(DW *, const WgtMap, const WgtMap, const WgtMap, const int32_t *, int, int, int, int) =
                    tstore ? wgt_wgrad<DW, true> : wgt_wgrad<DW, false>;
                e = cudaFuncSetAttribute(kern, cudaFuncAttributeMaxDynamicSharedMemorySize, WG_SMEM);
                if (e != cudaSuccess) return cuda_fail(op, e);
                kern<<<wgrid, WG_THREADS, WG_SMEM, st>>>(dw, mdc, ma, mdw, offsets, n, k, pair, acc);
                return launch_check(op);
            }
        }
        void (*kern)(DW *, const __nv_bfloat16 *, int, const __nv_bfloat16 *, int, const int32_t *, int, int, int,
                     int) = inflight > 0 ? wg_wgrad<DW, true> : wg_wgrad<DW, false>;
        cudaError_t e = cudaFuncSetAttribute(kern, cudaFuncAttributeMaxDynamicSharedMemorySize, WG_SMEM);
        if (e != cudaSuccess) return cuda_fail(op, e);
        kern<<<wgrid, WG_THREADS, WG_SMEM, st>>>(dw, (const __nv_bfloat16 *)dc, lddc, (const __nv_bfloat16 *)a, lda,
                                                 offsets, n, k, pair, acc);
        return launch_check(op);
    }
    dim3 grid((unsigned)((k + GG_BN - 1) / GG_BN), (unsigned)((n + GG_BM - 1) / GG_BM), (unsigned)G);
    if (grid.y > 65535) return cispo_fail("%s: n = %d too large", op, n);
    cudaError_t e = cudaFuncSetAttribute(gg_wgrad<DW>, cudaFuncAttributeMaxDynamicSharedMemorySize, GG_SMEM);
    if (e != cudaSuccess) return cuda_fail(op, e);
    gg_wgrad<DW><<<grid, GG_THREADS, GG_SMEM, st>>>(dw, (const __nv_bfloat16 *)dc, lddc, (const __nv_bfloat16 *)a, lda,
                                                    offsets, n, k, vec, pair, acc);
    return launch_check(op);
}

extern "C" int grouped_matmul_wgrad_cuda(void *blas, void *dw, const void *dc, int lddc, const void *a, int lda,
                                         const int32_t *offsets, int G, int rows, int n, int k, int acc, int dtype,
                                         int gdtype, int inflight, void *ws, size_t ws_bytes, cudaStream_t st) {
    (void)blas, (void)ws, (void)ws_bytes;
    const char *op = "grouped_matmul_wgrad_cuda";
    if (dtype != DTYPE_BF16) return cispo_fail("%s: dtype %s not supported (bf16 only)", op, dtype_name(dtype));
    if (gdtype != DTYPE_F32 && gdtype != DTYPE_BF16)
        return cispo_fail("%s: gradient dtype %d not supported (fp32 or bf16)", op, gdtype);
    if (G <= 0 || n <= 0 || k <= 0) return 0;
    if (rows <= 0) {  // no rows at all: nothing to add, or zeros to write
        if (acc) return 0;
        cudaError_t e = cudaMemsetAsync(dw, 0, (size_t)G * n * k * dtype_size(gdtype), st);
        return e == cudaSuccess ? 0 : cuda_fail(op, e);
    }
    if (G > 65535) return cispo_fail("%s: G = %d groups (at most 65535)", op, G);
    int vec = aligned16(dc) && aligned16(a) && lddc % 8 == 0 && lda % 8 == 0 && n % 8 == 0 && k % 8 == 0;
    // two-element read-add-write (float2, bf16x2)
    int pair = ((uintptr_t)dw % (2 * dtype_size(gdtype))) == 0 && k % 2 == 0;
    if (gdtype == DTYPE_BF16)
        return grouped_wgrad_launch((__nv_bfloat16 *)dw, dc, lddc, a, lda, offsets, G, rows, n, k, acc, vec, pair,
                                    inflight, st, op);
    return grouped_wgrad_launch((float *)dw, dc, lddc, a, lda, offsets, G, rows, n, k, acc, vec, pair, inflight, st,
                                op);
}
