// kernels/cuda/gemm_skinny.cuh — the grouped forward GEMM for decode-sized groups (a few rows an expert)
// with a wide k step: each stage reads 256 contiguous bytes of every weight row it covers, where gg_forward's
// skinny tiles read 64 bytes of each of 128 rows 2 KB apart (bench/NOTES.md: those stream at 60-65% of the
// copy bandwidth whatever their pipeline depth; these run 15% faster in a bench-1b decode step at batch 64).
// Used for the K-major weight layout (W_g [n, k]) with 16-byte rows unless the tuning knob gg_skinny_wide
// (backend_tuning_t) is -1; the sums are gg_forward's, k in steps of 16 in
// one mma chain, so the results are the same bits. The same tiles serve a dense product of a few rows (matmul
// with W [n, k], offsets NULL: the tuning knob dense_skinny), and gs_forward_loop runs them on a persistent grid.
// With GLU they compute grouped_matmul_glu: act(A W_g^T) * (A V_g^T) from one tile of both weights.
// defines: GS_BM, GS_BN, GS_BK, GS_STAGES, GS_SMEM, GS_RING, gs_find_tile, gs_load_rows, gs_load_glu_tile, gs_store_glu,
//          gs_epilogue, gs_forward, gs_forward_loop
//
// A CTA of 8 warps (2 x 4, 16 x 16 each) computes a 32 x 64 tile over k in steps of BK (128 by default), STAGES
// stages (4). Both operands are K-major in shared memory, 2 BK bytes a row: 16-byte chunk (r, c) at
// r*BK + 8*(c ^ (r & 7)) (the XOR stays within each 128-byte group of a row), so ldmatrix reads eight rows of one
// chunk column without bank conflicts. At BK 128 a warp's cp.async covers two rows of 256 bytes.
#ifndef CISPO_KERNELS_CUDA_GEMM_SKINNY_CUH
#define CISPO_KERNELS_CUDA_GEMM_SKINNY_CUH

#include "kernels/act_eval.h"
#include "kernels/cuda/gemm_grouped.cuh"

#define GS_BM 32
#define GS_BN 64
#define GS_BK 128
#define GS_STAGES 4  // the default depth and k step; CISPO_GS_STAGES=2|3 and CISPO_GS_BK=256 in the environment
                     // (gemm.cu) choose others, for comparison
// dynamic shared memory at S stages of k step BK: 24 KiB a stage at BK 128 (4 stages: 2 CTAs an SM; 3: 3; 2: 4)
#define GS_SMEM(S, BK) ((S) * (GS_BM + GS_BN) * (BK) * (int)sizeof(__nv_bfloat16))

namespace {

// One K-major operand tile of one stage: ROWS x BK (k) at k0; element (m, k) at p[m*ld + k], valid m < mlim,
// k < klim (klim and ld multiples of 8, p 16-byte aligned).
template <int ROWS, int BK>
__device__ __forceinline__ void gs_load_tile(__nv_bfloat16 *s, const __nv_bfloat16 *p, int ld, int mlim, int klim,
                                             int k0) {
    constexpr int RC = BK / 8, CHUNKS = ROWS * RC;  // 16-byte chunks a row, a tile
    static_assert(CHUNKS % GG_THREADS == 0, "whole passes of the CTA");
#pragma unroll
    for (int it = 0; it < CHUNKS / GG_THREADS; it++) {
        const int c = threadIdx.x + it * GG_THREADS, m = c / RC, kc = c % RC, kg = k0 + kc * 8;
        const bool ok = m < mlim && kg < klim;
        cp_async16(s + m * BK + 8 * (kc ^ (m & 7)), ok ? p + (size_t)m * ld + kg : p, ok ? 16 : 0);
    }
}

// The A tile of a gathered product (grouped_matmul_glu's gather): row m of the tile is a's row rows[m] / div
// (rows: the tile's entries of gather), laid out as gs_load_tile's.
template <int BK>
__device__ __forceinline__ void gs_load_rows(__nv_bfloat16 *s, const __nv_bfloat16 *a, int lda, const int32_t *rows,
                                             int div, int mlim, int k, int k0) {
    constexpr int RC = BK / 8, CHUNKS = GS_BM * RC;
    static_assert(CHUNKS % GG_THREADS == 0, "whole passes of the CTA");
#pragma unroll
    for (int it = 0; it < CHUNKS / GG_THREADS; it++) {
        const int c = threadIdx.x + it * GG_THREADS, m = c / RC, kc = c % RC, kg = k0 + kc * 8;
        const bool ok = m < mlim && kg < k;
        cp_async16(s + m * BK + 8 * (kc ^ (m & 7)), ok ? a + (size_t)(__ldg(rows + m) / div) * lda + kg : a, ok ? 16 : 0);
    }
}

// Warp 0 of a CTA: *t = linear tile L of the wide-k tiles: gg_find_tile's over the groups of offsets, or with
// offsets NULL one group of `rows` rows (a dense product: matmul's linear layers), row tiles adjacent the same way.
// bn: the tile's columns of C (GS_BN; GS_BN / 2 features of act(h1) * h3 with GLU).
__device__ __forceinline__ void gs_find_tile(int L, const int32_t *offsets, int G, int rows, int n, int bn, int two,
                                             gg_tile_t *t) {
    if (offsets) {
        gg_find_tile(L, offsets, G, GS_BM, bn, n, two, t);
        return;
    }
    if ((threadIdx.x & 31) != 0) return;
    const int nt1 = (n + bn - 1) / bn, mt = (rows + GS_BM - 1) / GS_BM, nt = two ? 2 * nt1 : nt1;
    if (rows <= 0 || (long)L >= (long)mt * nt) {
        t->g = -1;
        return;
    }
    const int i = L % mt, j0 = L / mt;
    t->g = 0;
    t->second = j0 >= nt1;
    t->r0 = i * GS_BM;
    t->n0 = (j0 - (t->second ? nt1 : 0)) * bn;
    t->mlim = min(GS_BM, rows - t->r0);
    t->nlim = min(bn, n - t->n0);
}

// The weight tile of a GLU product (grouped_matmul_glu): 32 features f0.. of both weights, interleaved by 8 so
// that warp wn's 16 rows are features f0 + 8 wn .. + 7 of W (rows 0-7) then of V (rows 8-15): the thread that
// holds h1 of an output then holds its h3 too. Rows laid out as gs_load_tile's.
template <int BK>
__device__ __forceinline__ void gs_load_glu_tile(__nv_bfloat16 *s, const __nv_bfloat16 *wg, const __nv_bfloat16 *vg,
                                                 int k, int flim, int k0) {
    constexpr int RC = BK / 8, CHUNKS = GS_BN * RC;
    static_assert(CHUNKS % GG_THREADS == 0, "whole passes of the CTA");
#pragma unroll
    for (int it = 0; it < CHUNKS / GG_THREADS; it++) {
        const int c = threadIdx.x + it * GG_THREADS, m = c / RC, kc = c % RC, kg = k0 + kc * 8;
        const int f = 8 * (m >> 4) + (m & 7);  // the feature of tile row m (of W when m & 8 is 0, else of V)
        const bool ok = f < flim && kg < k;
        const __nv_bfloat16 *p = (m & 8 ? vg : wg) + (size_t)f * k + kg;
        cp_async16(s + m * BK + 8 * (kc ^ (m & 7)), ok ? p : wg, ok ? 16 : 0);
    }
}

// One stage of tile t: its rows of A and its columns of the weight (w, or v for a second-weight tile) at k0; GLU:
// its features of both weights (gs_load_glu_tile).
template <int BK, bool GLU>
__device__ __forceinline__ void gs_load_stage(__nv_bfloat16 *sa, __nv_bfloat16 *sb, const gg_tile_t &t,
                                              const __nv_bfloat16 *a, int lda, const __nv_bfloat16 *w,
                                              const __nv_bfloat16 *v, int n, int k, int k0, const int32_t *arow,
                                              int adiv) {
    if (arow) gs_load_rows<BK>(sa, a, lda, arow + t.r0, adiv, t.mlim, k, k0);
    else gs_load_tile<GS_BM, BK>(sa, a + (size_t)t.r0 * lda, lda, t.mlim, k, k0);
    if (GLU) {
        const size_t off = (size_t)t.g * n * k + (size_t)t.n0 * k;
        gs_load_glu_tile<BK>(sb, w + off, v + off, k, t.nlim, k0);
    } else {
        gs_load_tile<GS_BN, BK>(sb, (t.second ? v : w) + (size_t)t.g * n * k + (size_t)t.n0 * k, k, t.nlim, k, k0);
    }
}

// acc += the stage's product: warp (wm, wn) takes rows wm*16.. and columns wn*16.. of the tile, k in steps of 16 in
// one mma chain.
template <int BK>
__device__ __forceinline__ void gs_mma_stage(float acc[2][4], const __nv_bfloat16 *ta, const __nv_bfloat16 *tb,
                                             int lane, int wm, int wn) {
#pragma unroll
    for (int kk = 0; kk < BK; kk += 16) {
        uint32_t af[4], r[4];
        {
            const int m = wm * 16 + (lane & 15), kc = (kk >> 3) + (lane >> 4);
            ldsm_x4(af, ta + m * BK + 8 * (kc ^ (m & 7)));
        }
        {
            const int nn = wn * 16 + (lane & 7) + ((lane >> 4) & 1) * 8, kc = (kk >> 3) + ((lane >> 3) & 1);
            ldsm_x4(r, tb + nn * BK + 8 * (kc ^ (nn & 7)));
        }
        mma_bf16(acc[0], af, r[0], r[1]);
        mma_bf16(acc[1], af, r[2], r[3]);
    }
}

// C[rows of t, columns of t] = beta C + acc (a second-weight tile's columns at n + ...).
__device__ __forceinline__ void gs_store(__nv_bfloat16 *c, int ldc, int n, const gg_tile_t &t, float acc[2][4],
                                         float beta, int pair, int lane, int wm, int wn) {
    const int gid = lane >> 2, tig = lane & 3;
    if (t.second) c += n;
#pragma unroll
    for (int h = 0; h < 2; h++) {
        const int row = wm * 16 + gid + h * 8;
        if (row >= t.mlim) continue;
        __nv_bfloat16 *cr = c + (size_t)(t.r0 + row) * ldc + t.n0;
#pragma unroll
        for (int ni = 0; ni < 2; ni++)
            gg_store_c2(cr, wn * 16 + ni * 8 + 2 * tig, t.nlim, acc[ni][2 * h], acc[ni][2 * h + 1], beta, pair);
    }
}

// out[r, f] = act(h1) * h3 of a GLU tile (features t.n0 + wn*8 + 2 tig + {0, 1}), h1 = acc[0] and h3 = acc[1]
// each rounded to bf16 first, as grouped_matmul_pair stores them and glu_forward reads them (the same bits).
__device__ __forceinline__ void gs_store_glu(__nv_bfloat16 *out, int n, const gg_tile_t &t, float acc[2][4], int act,
                                             int pair, int lane, int wm, int wn) {
    const int gid = lane >> 2, tig = lane & 3, f = wn * 8 + 2 * tig;
#pragma unroll
    for (int h = 0; h < 2; h++) {
        const int row = wm * 16 + gid + h * 8;
        if (row >= t.mlim) continue;
        float y[2];
#pragma unroll
        for (int e = 0; e < 2; e++) {
            const float h1 = __bfloat162float(__float2bfloat16(acc[0][2 * h + e]));
            const float h3 = __bfloat162float(__float2bfloat16(acc[1][2 * h + e]));
            y[e] = act_eval(act, h1, NULL) * h3;
        }
        gg_store_c2(out + (size_t)(t.r0 + row) * n + t.n0, f, t.nlim, y[0], y[1], 0.0f, pair);
    }
}

// A finished tile's outputs: gs_store_glu's with GLU, else gs_store's.
template <bool GLU>
__device__ __forceinline__ void gs_epilogue(__nv_bfloat16 *c, int ldc, int n, const gg_tile_t &t, float acc[2][4],
                                            float beta, int pair, int act, int lane, int wm, int wn) {
    if (GLU) gs_store_glu(c, n, t, acc, act, pair, lane, wm, wn);
    else gs_store(c, ldc, n, t, acc, beta, pair, lane, wm, wn);
}

// C[r, :] = beta C[r, :] + A[r, :] W_g^T for the rows r of group g, W_g [n, k] K-major (grouped_matmul with
// trans_w); v non-null: grouped_matmul_pair's second weight, its column tiles after W's; offsets NULL: one group
// of `rows` rows (matmul). GLU (grouped_matmul_glu): C = act(A W_g^T) * (A V_g^T) [rows, n] (ldc n), tiles of
// GS_BN / 2 features. One CTA per (group, column tile, row tile) in the order of the offsets (gs_find_tile); CTAs
// past the last tile exit. arow non-NULL: A's row r is a's row arow[r] / adiv (the gathered rows of an MoE
// dispatch that copied none: gs_load_rows).
template <int STAGES, int BK, bool GLU>
__global__ void __launch_bounds__(GG_THREADS) gs_forward(__nv_bfloat16 *c, int ldc, const __nv_bfloat16 *a, int lda,
                                                          const __nv_bfloat16 *w, const __nv_bfloat16 *v,
                                                          const int32_t *offsets, int G, int rows, int n, int k,
                                                          float beta, int pair, int act, const int32_t *arow,
                                                          int adiv) {
    extern __shared__ __align__(128) unsigned char gs_smem[];
    __shared__ gg_tile_t s_t;
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    constexpr int BN = GLU ? GS_BN / 2 : GS_BN;  // columns of C a tile holds
    __nv_bfloat16 *sa = (__nv_bfloat16 *)gs_smem, *sb = sa + STAGES * GS_BM * BK;
    const int ktiles = (k + BK - 1) / BK, wm = warp >> 2, wn = warp & 3;
    // Launched with PDL (kernels/cuda/pdl.cuh): the offsets and A are the kernels' before. A dense product's tile
    // needs no offsets, and its weight (never written by the kernel just before: a model's linear layers follow a
    // norm or an activation) neither: its first stages' weight rows load before the wait, overlapping that kernel,
    // as one cp.async group ahead of the A stages' groups (so each wait below still covers its stage).
    const bool dense = offsets == NULL;
    if (dense) {
        if (warp == 0) gs_find_tile(blockIdx.x, NULL, G, rows, n, BN, !GLU && v, &s_t);
        __syncthreads();
        const gg_tile_t t = s_t;
        if (t.g >= 0 && !GLU)
#pragma unroll
            for (int s = 0; s < STAGES - 1; s++)
                if (s < ktiles)
                    gs_load_tile<GS_BN, BK>(sb + s * GS_BN * BK, (t.second ? v : w) + (size_t)t.n0 * k, k, t.nlim, k,
                                            s * BK);
        cp_async_commit();
    }
    pdl_wait();
    pdl_trigger();
    if (!dense) {
        if (warp == 0) gs_find_tile(blockIdx.x, offsets, G, rows, n, BN, !GLU && v, &s_t);
        __syncthreads();
    }
    const gg_tile_t t = s_t;
    if (t.g < 0) return;
    float acc[2][4] = {};
#pragma unroll
    for (int s = 0; s < STAGES - 1; s++) {
        if (s < ktiles) {
            if (dense && !GLU) gs_load_tile<GS_BM, BK>(sa + s * GS_BM * BK, a + (size_t)t.r0 * lda, lda, t.mlim, k, s * BK);
            else gs_load_stage<BK, GLU>(sa + s * GS_BM * BK, sb + s * GS_BN * BK, t, a, lda, w, v, n, k, s * BK, arow, adiv);
        }
        cp_async_commit();
    }
    for (int kt = 0; kt < ktiles; kt++) {
        cp_async_wait<STAGES - 2>();
        __syncthreads();  // stage kt landed for all; stage kt-1 consumed by all
        const int nk = kt + STAGES - 1;
        if (nk < ktiles) {
            const int s = nk % STAGES;
            gs_load_stage<BK, GLU>(sa + s * GS_BM * BK, sb + s * GS_BN * BK, t, a, lda, w, v, n, k, nk * BK, arow, adiv);
        }
        cp_async_commit();
        gs_mma_stage<BK>(acc, sa + (kt % STAGES) * GS_BM * BK, sb + (kt % STAGES) * GS_BN * BK, lane, wm, wn);
    }
    cp_async_wait<0>();
    gs_epilogue<GLU>(c, ldc, n, t, acc, beta, pair, act, lane, wm, wn);
}

// The same products with a persistent grid (backend_tuning_t.gg_skinny_wide = 2): CTA b computes tiles b, b + grid,
// b + 2 grid, ... and its pipeline runs on across them, so the next tile's first stages load while this one's
// last stages multiply and no CTA's start waits a full memory latency with nothing in flight. The tile of each
// iteration comes from a ring of GS_RING(STAGES) entries that warp 0 refills as tiles finish: the loads run at
// most STAGES - 1 stages ahead of the products, so at most STAGES tiles ahead, and an entry is written one barrier
// before any warp reads it. Each output is the same sum as gs_forward's (the same bits).
#define GS_RING(S) ((S) + 2)
template <int STAGES, int BK, bool GLU>
__global__ void __launch_bounds__(GG_THREADS)
    gs_forward_loop(__nv_bfloat16 *c, int ldc, const __nv_bfloat16 *a, int lda, const __nv_bfloat16 *w,
                    const __nv_bfloat16 *v, const int32_t *offsets, int G, int rows, int n, int k, float beta,
                    int pair, int act, const int32_t *arow, int adiv) {
    constexpr int R = GS_RING(STAGES), BN = GLU ? GS_BN / 2 : GS_BN;
    extern __shared__ __align__(128) unsigned char gs_smem[];
    __shared__ gg_tile_t ring[R];
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, two = !GLU && v;
    pdl_wait();  // launched with PDL (kernels/cuda/pdl.cuh)
    pdl_trigger();
    if (warp == 0)
        for (int j = 0; j < R; j++) gs_find_tile(blockIdx.x + j * gridDim.x, offsets, G, rows, n, BN, two, &ring[j]);
    __syncthreads();
    __nv_bfloat16 *sa = (__nv_bfloat16 *)gs_smem, *sb = sa + STAGES * GS_BM * BK;
    const int ktiles = (k + BK - 1) / BK, wm = warp >> 2, wn = warp & 3;
    // the loads' tile (iteration ip, k step kp) and the products' (ic, kc)
    int ip = 0, kp = 0, ic = 0, kc = 0;
    gg_tile_t tp = ring[0], tc = ring[0];
    if (tc.g < 0) return;
    float acc[2][4] = {};
#pragma unroll
    for (int s = 0; s < STAGES - 1; s++) {
        if (tp.g >= 0) {
            gs_load_stage<BK, GLU>(sa + s * GS_BM * BK, sb + s * GS_BN * BK, tp, a, lda, w, v, n, k, kp * BK, arow, adiv);
            if (++kp == ktiles) kp = 0, ip++, tp = ring[ip % R];
        }
        cp_async_commit();
    }
    for (int cs = 0;; cs++) {
        cp_async_wait<STAGES - 2>();
        __syncthreads();  // stage cs landed for all; stage cs-1 consumed by all; ring entries written before seen
        if (tp.g >= 0) {
            const int s = (cs + STAGES - 1) % STAGES;
            gs_load_stage<BK, GLU>(sa + s * GS_BM * BK, sb + s * GS_BN * BK, tp, a, lda, w, v, n, k, kp * BK, arow, adiv);
            if (++kp == ktiles) kp = 0, ip++, tp = ring[ip % R];
        }
        cp_async_commit();
        gs_mma_stage<BK>(acc, sa + (cs % STAGES) * GS_BM * BK, sb + (cs % STAGES) * GS_BN * BK, lane, wm, wn);
        if (++kc < ktiles) continue;
        gs_epilogue<GLU>(c, ldc, n, tc, acc, beta, pair, act, lane, wm, wn);
#pragma unroll
        for (int ni = 0; ni < 2; ni++)
#pragma unroll
            for (int e = 0; e < 4; e++) acc[ni][e] = 0.0f;
        kc = 0;
        // iteration ic's entry is read by no one any more (the loads are past it): it takes iteration ic + R
        if (warp == 0) gs_find_tile(blockIdx.x + (ic + R) * gridDim.x, offsets, G, rows, n, BN, two, &ring[ic % R]);
        ic++;
        tc = ring[ic % R];
        if (tc.g < 0) break;
    }
    cp_async_wait<0>();
}

}  // namespace

#endif
