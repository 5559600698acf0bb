// kernels/cuda/gemm_grouped.cuh — the grouped bf16 GEMM kernels of the MoE experts (kernels/cuda/gemm.cu
// launches them): mma.sync m16n8k16 tensor cores, fp32 accumulation, a 4-stage cp.async pipeline.
// defines: GG_BM, GG_BN, GG_BK, GG_THREADS, GG_SMEM, GG_SKINNY_BM, GG_SKINNY_STAGES, gg_smem_bytes, gg_forward,
//          gg_wgrad, gg_tile_t, gg_find_tile, gg_cta_tile, gg_store_c2, gg_store_dw2, gg_put_zero, cp_async16, cp_async_commit, cp_async_wait,
//          smem_addr
//
// A CTA of 8 warps (2 x 4, 64 x 32 each) computes a 128 x 128 tile over K in steps of 32. Groups of a few
// rows each (decode: a batch of 64 tokens spreads 2 or 8 rows over each expert) take the skinny shape of
// gg_forward instead: 32-row tiles (warps of 16 x 32), so that streaming each expert's weights is not held
// back by tensor-core work on rows that are only padding. Each output
// element is the same sum in the same order in both shapes (k in steps of 32, then 16, in one mma
// chain), so the results are identical bit for bit. Operands
// reach shared memory either K-major ([128][32], row = m) or M-major ([32][128], row = k), 16-byte
// chunks XOR-swizzled so that ldmatrix (.trans for M-major) reads without bank conflicts:
//   K-major chunk (r, c) at r*32 + 8*(c ^ ((r >> 1) & 3)),  M-major (r, c) at r*128 + 8*(c ^ (r & 7)).
// Out-of-range elements (past a group's rows, past n or k) load as zeros. gg_forward finds its
// (group, row tile, column tile) from the offsets on the device, row tiles of a group and column
// tile adjacent so that a W tile is read from memory once per group; gg_wgrad has one CTA per
// (group, tile of dW) reducing over the group's rows.
#ifndef CISPO_KERNELS_CUDA_GEMM_GROUPED_CUH
#define CISPO_KERNELS_CUDA_GEMM_GROUPED_CUH

#include <cuda_bf16.h>
#include <stdint.h>

#define GG_BM 128
#define GG_BN 128
#define GG_BK 32
#define GG_STAGES 4
#define GG_THREADS 256
#define GG_TILE_ELEMS (GG_BM * GG_BK)                                // one operand, one stage
#define GG_SMEM (GG_STAGES * 2 * GG_TILE_ELEMS * (int)sizeof(__nv_bfloat16))  // 64 KiB
#define GG_SKINNY_BM 32
#define GG_SKINNY_STAGES 4  // 4 CTAs an SM: a decode step's expert products in one wave (bench/NOTES.md)
// dynamic shared memory of a (BM x GG_BN) tile with STAGES stages
#define gg_smem_bytes(BM, STAGES) ((STAGES) * ((BM) + GG_BN) * GG_BK * (int)sizeof(__nv_bfloat16))

namespace {

__device__ __forceinline__ uint32_t smem_addr(const void *p) { return (uint32_t)__cvta_generic_to_shared(p); }

__device__ __forceinline__ void cp_async16(void *dst, const void *src, int bytes) {
    asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(smem_addr(dst)), "l"(src), "r"(bytes));
}
__device__ __forceinline__ void cp_async_commit() { asm volatile("cp.async.commit_group;\n" ::); }
template <int N>
__device__ __forceinline__ void cp_async_wait() {
    asm volatile("cp.async.wait_group %0;\n" ::"n"(N));
}

__device__ __forceinline__ void ldsm_x4(uint32_t r[4], const void *p) {
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];\n"
                 : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
                 : "r"(smem_addr(p)));
}
__device__ __forceinline__ void ldsm_x4_t(uint32_t r[4], const void *p) {
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0,%1,%2,%3}, [%4];\n"
                 : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
                 : "r"(smem_addr(p)));
}

__device__ __forceinline__ void mma_bf16(float d[4], const uint32_t a[4], uint32_t b0, uint32_t b1) {
    asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
                 "{%0,%1,%2,%3};\n"
                 : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
                 : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}

// One operand tile of one stage: ROWS (m or n) x 32 (k) at k0. KMAJ: element (m, k) at p[m*ld + k];
// else (ROWS 128 only) at p[k*ld + m]. Valid m < mlim, k < klim. vec: 16-byte cp.async (ld, p and the
// limits' chunks aligned); else element loads stored as 16-byte chunks.
template <int ROWS, bool KMAJ>
__device__ __forceinline__ void gg_load_tile(__nv_bfloat16 *s, const __nv_bfloat16 *p, int ld, int mlim, int klim,
                                             int k0, int vec) {
    static_assert(KMAJ || ROWS == GG_BM, "M-major tiles are 128 wide");
    constexpr int CHUNKS = ROWS * GG_BK / 8;
#pragma unroll
    for (int it = 0; it < (CHUNKS + GG_THREADS - 1) / GG_THREADS; it++) {
        int c = threadIdx.x + it * GG_THREADS;
        if (CHUNKS % GG_THREADS != 0 && c >= CHUNKS) break;
        int m, kk, soff;
        if (KMAJ) {
            m = c >> 2;
            kk = (c & 3) * 8;
            soff = m * GG_BK + 8 * ((c & 3) ^ ((m >> 1) & 3));
        } else {
            kk = c >> 4;
            m = (c & 15) * 8;
            soff = kk * GG_BM + 8 * ((c & 15) ^ (kk & 7));
        }
        int kg = k0 + kk;
        if (vec) {
            bool ok = m < mlim && kg < klim;
            const __nv_bfloat16 *src = ok ? (KMAJ ? p + (size_t)m * ld + kg : p + (size_t)kg * ld + m) : p;
            cp_async16(s + soff, src, ok ? 16 : 0);
        } else {
            __align__(16) __nv_bfloat16 v[8];
#pragma unroll
            for (int e = 0; e < 8; e++) {
                int me = KMAJ ? m : m + e, ke = KMAJ ? kg + e : kg;
                v[e] = me < mlim && ke < klim ? (KMAJ ? p[(size_t)me * ld + ke] : p[(size_t)ke * ld + me])
                                              : __float2bfloat16(0.0f);
            }
            *(uint4 *)(s + soff) = *(const uint4 *)v;
        }
    }
}

// acc[mi][ni][4] of warp (wm, wn) += A_tile B_tile^T over K = [0, klim), for a BM x 128 tile (warps of
// BM/2 x 32: MI = BM/32 fragments of 16 rows) through STAGES stages. A: (m, k) per A_KMAJ, valid
// m < amlim; B: (n, k) per B_KMAJ, valid n < bnlim.
template <int BM, int STAGES, bool A_KMAJ, bool B_KMAJ>
__device__ __forceinline__ void gg_mainloop(float acc[BM / 32][4][4], const __nv_bfloat16 *a, int lda, int amlim,
                                            const __nv_bfloat16 *b, int ldb, int bnlim, int klim, int vec,
                                            __nv_bfloat16 *smem) {
    constexpr int MI = BM / 32, A_ELEMS = BM * GG_BK;
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, wm = warp >> 2, wn = warp & 3;
    const int ktiles = (klim + GG_BK - 1) / GG_BK;
    __nv_bfloat16 *sa = smem, *sb = smem + STAGES * A_ELEMS;
#pragma unroll
    for (int s = 0; s < STAGES - 1; s++) {
        if (s < ktiles) {
            gg_load_tile<BM, A_KMAJ>(sa + s * A_ELEMS, a, lda, amlim, klim, s * GG_BK, vec);
            gg_load_tile<GG_BN, B_KMAJ>(sb + s * GG_TILE_ELEMS, b, ldb, bnlim, klim, s * GG_BK, vec);
        }
        cp_async_commit();
    }
    for (int kt = 0; kt < ktiles; kt++) {
        cp_async_wait<STAGES - 2>();
        __syncthreads();  // stage kt landed for all; stage kt-1 consumed by all
        int nk = kt + STAGES - 1;
        if (nk < ktiles) {
            int s = nk % STAGES;
            gg_load_tile<BM, A_KMAJ>(sa + s * A_ELEMS, a, lda, amlim, klim, nk * GG_BK, vec);
            gg_load_tile<GG_BN, B_KMAJ>(sb + s * GG_TILE_ELEMS, b, ldb, bnlim, klim, nk * GG_BK, vec);
        }
        cp_async_commit();
        const __nv_bfloat16 *ta = sa + (kt % STAGES) * A_ELEMS, *tb = sb + (kt % STAGES) * GG_TILE_ELEMS;
#pragma unroll
        for (int kk = 0; kk < GG_BK; kk += 16) {
            uint32_t af[MI][4], bfr[4][2];
#pragma unroll
            for (int mi = 0; mi < MI; mi++) {
                if (A_KMAJ) {
                    int m = wm * (BM / 2) + mi * 16 + (lane & 15), kc = (kk >> 3) + (lane >> 4);
                    ldsm_x4(af[mi], ta + m * GG_BK + 8 * (kc ^ ((m >> 1) & 3)));
                } else {
                    int k = kk + (lane & 7) + ((lane >> 4) & 1) * 8,
                        m = wm * (BM / 2) + mi * 16 + ((lane >> 3) & 1) * 8;
                    ldsm_x4_t(af[mi], ta + k * BM + 8 * ((m >> 3) ^ (k & 7)));
                }
            }
#pragma unroll
            for (int nj = 0; nj < 2; nj++) {
                uint32_t r[4];
                if (B_KMAJ) {
                    int n = wn * 32 + nj * 16 + (lane & 7) + ((lane >> 4) & 1) * 8, kc = (kk >> 3) + ((lane >> 3) & 1);
                    ldsm_x4(r, tb + n * GG_BK + 8 * (kc ^ ((n >> 1) & 3)));
                } else {
                    int k = kk + (lane & 7) + ((lane >> 3) & 1) * 8, n = wn * 32 + nj * 16 + ((lane >> 4) & 1) * 8;
                    ldsm_x4_t(r, tb + k * GG_BN + 8 * ((n >> 3) ^ (k & 7)));
                }
                bfr[2 * nj][0] = r[0];
                bfr[2 * nj][1] = r[1];
                bfr[2 * nj + 1][0] = r[2];
                bfr[2 * nj + 1][1] = r[3];
            }
#pragma unroll
            for (int mi = 0; mi < MI; mi++)
#pragma unroll
                for (int ni = 0; ni < 4; ni++) mma_bf16(acc[mi][ni], af[mi], bfr[ni][0], bfr[ni][1]);
        }
    }
    cp_async_wait<0>();
}

// Columns col and col + 1 (those < nlim) of one row of C (cr: the row at the tile's first column) = v, plus
// beta times C's old value where beta != 0. pair: one bf16x2 access (col even, the row 4-byte aligned).
__device__ __forceinline__ void gg_store_c2(__nv_bfloat16 *cr, int col, int nlim, float v0, float v1, float beta,
                                            int pair) {
    if (pair && col + 1 < nlim) {
        __nv_bfloat162 *p2 = (__nv_bfloat162 *)(cr + col);
        if (beta != 0.0f) {
            float2 o = __bfloat1622float2(*p2);
            v0 += beta * o.x;
            v1 += beta * o.y;
        }
        *p2 = __floats2bfloat162_rn(v0, v1);
    } else {
        if (col < nlim) cr[col] = __float2bfloat16(beta != 0.0f ? v0 + beta * __bfloat162float(cr[col]) : v0);
        if (col + 1 < nlim)
            cr[col + 1] = __float2bfloat16(beta != 0.0f ? v1 + beta * __bfloat162float(cr[col + 1]) : v1);
    }
}

// The same for a row of a weight gradient (fp32, or bf16: the fp32 sum rounded once): written (add 0) or
// added to. pair: one float2 (bf16x2) access.
__device__ __forceinline__ void gg_store_dw2(float *dr, int col, int nlim, float v0, float v1, int add, int pair) {
    if (pair && col + 1 < nlim) {
        float2 *p2 = (float2 *)(dr + col), o = add ? *p2 : make_float2(0.0f, 0.0f);
        o.x += v0;
        o.y += v1;
        *p2 = o;
    } else {
        if (col < nlim) dr[col] = add ? dr[col] + v0 : v0;
        if (col + 1 < nlim) dr[col + 1] = add ? dr[col + 1] + v1 : v1;
    }
}
__device__ __forceinline__ void gg_store_dw2(__nv_bfloat16 *dr, int col, int nlim, float v0, float v1, int add,
                                             int pair) {
    if (pair && col + 1 < nlim) {
        __nv_bfloat162 *p2 = (__nv_bfloat162 *)(dr + col);
        if (add) {
            float2 o = __bfloat1622float2(*p2);
            v0 += o.x, v1 += o.y;
        }
        *p2 = __floats2bfloat162_rn(v0, v1);
    } else {
        if (col < nlim) dr[col] = __float2bfloat16(add ? __bfloat162float(dr[col]) + v0 : v0);
        if (col + 1 < nlim) dr[col + 1] = __float2bfloat16(add ? __bfloat162float(dr[col + 1]) + v1 : v1);
    }
}
// Zeros of a weight gradient's tile (a group without rows, written).
__device__ __forceinline__ void gg_put_zero(float *p) { *p = 0.0f; }
__device__ __forceinline__ void gg_put_zero(__nv_bfloat16 *p) { *p = __float2bfloat16(0.0f); }

// The tile a CTA of a grouped forward computes: group g (-1: past the last tile, the CTA exits), its first row r0
// and column n0, the rows (mlim) and columns (nlim) it holds, and second: a column tile of grouped_matmul_pair's
// second weight (its columns go to [n, 2n) of C).
struct gg_tile_t {
    int g, r0, n0, mlim, nlim, second;
};

// Warp 0 of a CTA: *t = linear tile L of a grouped forward over n columns in bm x bn tiles, whose group g has
// ceil(rows_g / bm) row tiles times nt column tiles (nt = ceil(n / bn), twice that with a second weight: two),
// row tiles of a group adjacent (a scan of per-group tile counts, 32 groups at a time). Read *t after a
// __syncthreads.
__device__ __forceinline__ void gg_find_tile(int L, const int32_t *offsets, int G, int bm, int bn, int n, int two,
                                             gg_tile_t *t) {
    const int lane = threadIdx.x & 31, nt1 = (n + bn - 1) / bn, nt = two ? 2 * nt1 : nt1;
    int base = 0, found = 0;
    for (int g0 = 0; g0 < G && !found; g0 += 32) {
        int g = g0 + lane, mt = 0;
        if (g < G) {
            int nr = offsets[g + 1] - offsets[g];
            mt = nr > 0 ? (nr + bm - 1) / bm : 0;
        }
        int cnt = mt * nt, incl = cnt;
#pragma unroll
        for (int o = 1; o < 32; o <<= 1) {
            int u = __shfl_up_sync(0xffffffffu, incl, o);
            if (lane >= o) incl += u;
        }
        unsigned hit = __ballot_sync(0xffffffffu, cnt > 0 && L >= base + incl - cnt && L < base + incl);
        if (hit) {
            if (lane == __ffs(hit) - 1) {
                const int l = L - (base + incl - cnt), i = l % mt, j0 = l / mt;
                t->g = g;
                t->second = j0 >= nt1;
                t->r0 = offsets[g] + i * bm;
                t->n0 = (j0 - (t->second ? nt1 : 0)) * bn;
                t->mlim = min(bm, offsets[g + 1] - t->r0);
                t->nlim = min(bn, n - t->n0);
            }
            found = 1;
        }
        base += __shfl_sync(0xffffffffu, incl, 31);
    }
    if (lane == 0 && !found) t->g = -1;
}

// The tile this CTA of a grouped forward computes (gg_find_tile by warp 0, then a barrier; every thread gets it).
__device__ __forceinline__ gg_tile_t gg_cta_tile(const int32_t *offsets, int G, int bm, int bn, int n, int two) {
    __shared__ gg_tile_t s_t;
    if (threadIdx.x < 32) gg_find_tile(blockIdx.x, offsets, G, bm, bn, n, two, &s_t);
    __syncthreads();
    return s_t;
}

// C[r, :] = beta C[r, :] + A[r, :] W_g^T for the rows r of group g (kernels/ops.h grouped_matmul).
// TRANS_W: W_g [n, k] (K-major); else W_g [k, n]. One CTA per (group, column tile, row tile) in the
// order of the offsets; CTAs past the last tile exit. Tiles of BM rows (128, or GG_SKINNY_BM), STAGES stages.
// v non-null (grouped_matmul_pair; TRANS_W, beta 0): a second weight of the same shape whose product goes
// to columns [n, 2n) of C, its column tiles after W's in the same launch.
template <int BM, int STAGES, bool TRANS_W>
__global__ void __launch_bounds__(GG_THREADS) gg_forward(__nv_bfloat16 *c, int ldc, const __nv_bfloat16 *a, int lda,
                                                          const __nv_bfloat16 *w, const __nv_bfloat16 *v,
                                                          const int32_t *offsets, int G, int n, int k, float beta,
                                                          int vec, int pair) {
    extern __shared__ __align__(128) unsigned char gg_smem[];
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    pdl_wait();  // launched with PDL (kernels/cuda/pdl.cuh)
    pdl_trigger();
    const gg_tile_t t = gg_cta_tile(offsets, G, BM, GG_BN, n, v != NULL);
    if (t.g < 0) return;
    const int r0 = t.r0, n0 = t.n0, mlim = t.mlim, nlim = t.nlim;
    const __nv_bfloat16 *wg = (t.second ? v : w) + (size_t)t.g * n * k;
    if (t.second) c += n;
    constexpr int MI = BM / 32;
    float acc[MI][4][4];
#pragma unroll
    for (int mi = 0; mi < MI; mi++)
#pragma unroll
        for (int ni = 0; ni < 4; ni++)
#pragma unroll
            for (int e = 0; e < 4; e++) acc[mi][ni][e] = 0.0f;
    gg_mainloop<BM, STAGES, true, TRANS_W>(acc, a + (size_t)r0 * lda, lda, mlim, TRANS_W ? wg + (size_t)n0 * k : wg + n0,
                               TRANS_W ? k : n, nlim, k, vec, (__nv_bfloat16 *)gg_smem);
    const int wm = warp >> 2, wn = warp & 3, gid = lane >> 2, tig = lane & 3;
#pragma unroll
    for (int mi = 0; mi < MI; mi++)
#pragma unroll
        for (int h = 0; h < 2; h++) {
            int row = wm * (BM / 2) + mi * 16 + gid + h * 8;
            if (row >= mlim) continue;
            __nv_bfloat16 *cr = c + (size_t)(r0 + row) * ldc + n0;
#pragma unroll
            for (int ni = 0; ni < 4; ni++) {
                gg_store_c2(cr, wn * 32 + ni * 8 + 2 * tig, nlim, acc[mi][ni][2 * h], acc[mi][ni][2 * h + 1], beta,
                            pair);
            }
        }
}

// dW_g [n, k] += dC_g^T A_g over the rows of group g = blockIdx.z; tile (blockIdx.y over n,
// blockIdx.x over k). dC_g^T is M-major (row r of dC holds m), A_g N-major. add 0: dW_g is written
// (zeros for a group without rows) instead of read, added to and written back. DW: float or __nv_bfloat16.
template <typename DW>
__global__ void __launch_bounds__(GG_THREADS) gg_wgrad(DW *dw, const __nv_bfloat16 *dc, int lddc,
                                                        const __nv_bfloat16 *a, int lda, const int32_t *offsets,
                                                        int n, int k, int vec, int pair, int add) {
    extern __shared__ __align__(128) unsigned char gg_smem[];
    const int g = blockIdx.z, r0 = offsets[g], nr = offsets[g + 1] - r0;
    const int m0 = blockIdx.y * GG_BM, n0 = blockIdx.x * GG_BN;
    const int mlim = min(GG_BM, n - m0), nlim = min(GG_BN, k - n0);
    if (nr <= 0) {
        if (!add) {
            DW *dwg = dw + (size_t)g * n * k;
            for (int i = threadIdx.x; i < GG_BM * GG_BN; i += GG_THREADS) {
                int row = i / GG_BN, col = i % GG_BN;
                if (row < mlim && col < nlim) gg_put_zero(dwg + (size_t)(m0 + row) * k + n0 + col);
            }
        }
        return;
    }
    float acc[4][4][4];
#pragma unroll
    for (int mi = 0; mi < 4; mi++)
#pragma unroll
        for (int ni = 0; ni < 4; ni++)
#pragma unroll
            for (int e = 0; e < 4; e++) acc[mi][ni][e] = 0.0f;
    gg_mainloop<GG_BM, GG_STAGES, false, false>(acc, dc + (size_t)r0 * lddc + m0, lddc, mlim, a + (size_t)r0 * lda + n0,
                                                lda, nlim, nr, vec, (__nv_bfloat16 *)gg_smem);
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, wm = warp >> 2, wn = warp & 3;
    const int gid = lane >> 2, tig = lane & 3;
    DW *dwg = dw + (size_t)g * n * k;
#pragma unroll
    for (int mi = 0; mi < 4; mi++)
#pragma unroll
        for (int h = 0; h < 2; h++) {
            int row = wm * 64 + mi * 16 + gid + h * 8;
            if (row >= mlim) continue;
            DW *dr = dwg + (size_t)(m0 + row) * k + n0;
#pragma unroll
            for (int ni = 0; ni < 4; ni++) {
                gg_store_dw2(dr, wn * 32 + ni * 8 + 2 * tig, nlim, acc[mi][ni][2 * h], acc[mi][ni][2 * h + 1], add, pair);
            }
        }
}

}  // namespace

#endif
