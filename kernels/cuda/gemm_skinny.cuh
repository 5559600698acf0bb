// kernels/cuda/gemm_skinny.cuh — the grouped forward GEMM for decode-sized groups (a few rows an expert)
// with a wide k step: each stage reads 256 contiguous bytes of every weight row it covers, where gg_forward's
// skinny tiles read 64 bytes of each of 128 rows 2 KB apart (bench/NOTES.md: those stream at 60-65% of the
// copy bandwidth whatever their pipeline depth; these run 15% faster in a bench-1b decode step at batch 64).
// Used for the K-major weight layout (W_g [n, k]) with 16-byte rows unless the tuning knob gg_skinny_wide
// (backend_tuning_t) is -1; the sums are gg_forward's, k in steps of 16 in
// one mma chain, so the results are the same bits.
// defines: GS_BM, GS_BN, GS_BK, GS_STAGES, GS_SMEM, gs_forward
//
// A CTA of 8 warps (2 x 4, 16 x 16 each) computes a 32 x 64 tile over k in steps of BK (128 by default), STAGES
// stages (4). Both operands are K-major in shared memory, 2 BK bytes a row: 16-byte chunk (r, c) at
// r*BK + 8*(c ^ (r & 7)) (the XOR stays within each 128-byte group of a row), so ldmatrix reads eight rows of one
// chunk column without bank conflicts. At BK 128 a warp's cp.async covers two rows of 256 bytes.
#ifndef CISPO_KERNELS_CUDA_GEMM_SKINNY_CUH
#define CISPO_KERNELS_CUDA_GEMM_SKINNY_CUH

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

// C[r, :] = beta C[r, :] + A[r, :] W_g^T for the rows r of group g, W_g [n, k] K-major (grouped_matmul with
// trans_w); v non-null: grouped_matmul_pair's second weight, its column tiles after W's. One CTA per (group,
// column tile, row tile) in the order of the offsets (gg_find_tile); CTAs past the last tile exit.
template <int STAGES, int BK>
__global__ void __launch_bounds__(GG_THREADS) gs_forward(__nv_bfloat16 *c, int ldc, const __nv_bfloat16 *a, int lda,
                                                          const __nv_bfloat16 *w, const __nv_bfloat16 *v,
                                                          const int32_t *offsets, int G, int n, int k, float beta,
                                                          int pair) {
    extern __shared__ __align__(128) unsigned char gs_smem[];
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    pdl_wait();  // launched with PDL (kernels/cuda/pdl.cuh): the offsets and rows are the kernels' before
    pdl_trigger();
    const gg_tile_t t = gg_cta_tile(offsets, G, GS_BM, GS_BN, n, v != NULL);
    if (t.g < 0) return;
    const int r0 = t.r0, n0 = t.n0, mlim = t.mlim, nlim = t.nlim;
    const __nv_bfloat16 *ag = a + (size_t)r0 * lda, *wg = (t.second ? v : w) + (size_t)t.g * n * k + (size_t)n0 * k;
    if (t.second) c += n;
    __nv_bfloat16 *sa = (__nv_bfloat16 *)gs_smem, *sb = sa + STAGES * GS_BM * BK;
    const int ktiles = (k + BK - 1) / BK, wm = warp >> 2, wn = warp & 3;
    float acc[2][4];
#pragma unroll
    for (int ni = 0; ni < 2; ni++)
#pragma unroll
        for (int e = 0; e < 4; e++) acc[ni][e] = 0.0f;
#pragma unroll
    for (int s = 0; s < STAGES - 1; s++) {
        if (s < ktiles) {
            gs_load_tile<GS_BM, BK>(sa + s * GS_BM * BK, ag, lda, mlim, k, s * BK);
            gs_load_tile<GS_BN, BK>(sb + s * GS_BN * BK, wg, k, nlim, k, s * BK);
        }
        cp_async_commit();
    }
    for (int kt = 0; kt < ktiles; kt++) {
        cp_async_wait<STAGES - 2>();
        __syncthreads();  // stage kt landed for all; stage kt-1 consumed by all
        const int nk = kt + STAGES - 1;
        if (nk < ktiles) {
            const int s = nk % STAGES;
            gs_load_tile<GS_BM, BK>(sa + s * GS_BM * BK, ag, lda, mlim, k, nk * BK);
            gs_load_tile<GS_BN, BK>(sb + s * GS_BN * BK, wg, k, nlim, k, nk * BK);
        }
        cp_async_commit();
        const __nv_bfloat16 *ta = sa + (kt % STAGES) * GS_BM * BK, *tb = sb + (kt % STAGES) * GS_BN * BK;
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
    cp_async_wait<0>();
    const int gid = lane >> 2, tig = lane & 3;
#pragma unroll
    for (int h = 0; h < 2; h++) {
        const int row = wm * 16 + gid + h * 8;
        if (row >= mlim) continue;
        __nv_bfloat16 *cr = c + (size_t)(r0 + row) * ldc + n0;
#pragma unroll
        for (int ni = 0; ni < 2; ni++)
            gg_store_c2(cr, wn * 16 + ni * 8 + 2 * tig, nlim, acc[ni][2 * h], acc[ni][2 * h + 1], beta, pair);
    }
}

}  // namespace

#endif
