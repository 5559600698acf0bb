// kernels/cuda/attention_fwd.cuh — the forward kernel of causal GQA softmax attention
// (FlashAttention-2 scheme: Dao 2023, algorithm 1), tensor cores through mma.sync m16n8k16.
// defines: attn::AttnTile, attn::FwdArgs, attn::fwd_kernel, attn::fwd_smem_bytes, attn::load_rows,
//          attn::fwd_bn, attn::fwd_threads, attn::FWD_BM
//
// One CTA per (query tile of FWD_BM rows of one sequence, query head); each warp owns MT blocks of
// 16 query rows (MT = 2: two blocks share every key/value fragment the warp loads) across the keys. Key/value tiles of fwd_bn rows stream through shared
// memory two deep (cp.async); the tiles a query tile cannot see (after its last row, before its
// first row's window) are never loaded. Scores live in registers in the log2 domain
// (s = q.k * scale * log2 e) with a running row max m and row sum l; the probabilities go back into
// the tensor cores as bf16 A fragments straight from the score accumulators (the C and A fragment
// layouts of m16n8k16 line up pairwise, lightning_mma.cuh). Out: o = acc / l, lse = (m + log2 l) ln 2.
#ifndef CISPO_KERNELS_CUDA_ATTENTION_FWD_CUH
#define CISPO_KERNELS_CUDA_ATTENTION_FWD_CUH

#include <cuda_bf16.h>
#include <math.h>
#include <stdint.h>

#include "kernels/cuda/lightning_mma.cuh"

namespace attn {

constexpr int FWD_BM = 128;
// MT blocks of 16 query rows a warp (1: 8 warps, 2: 4 warps sharing each K/V fragment over 32 rows)
template <int MT>
__host__ __device__ constexpr int fwd_threads() {
    return FWD_BM / (16 * MT) * 32;
}
// key tile rows: 32 for two row blocks at D = 128 keeps scores and output accumulators in registers
template <int D, int MT>
__host__ __device__ constexpr int fwd_bn() {
    return D == 128 && MT == 2 ? 32 : 64;
}
constexpr float LOG2E = 1.4426950408889634f, LN2 = 0.6931471805599453f;

// A tile of one sequence: its index and first row (query rows forward, key rows backward).
struct AttnTile {
    int seq, start;
};

struct FwdArgs {
    __nv_bfloat16 *o;              // [T, H, D]
    float *lse;                    // [T, H]
    const __nv_bfloat16 *q, *k, *v; // [T, H, D], [T, KV, D], [T, KV, D]
    const int32_t *cu;             // [nseq + 1]
    const AttnTile *tiles;         // [gridDim.x]
    int H, KV, group, window;
    int tile_major;                // 0: grid (tiles, H); 1: grid (H, tiles), every head's heaviest tile first
    float scale_log2;              // log2(e) / sqrt(D)
    int ablate;                    // CISPO_ATTN_ABLATION builds only (ATTN_ABLATE in attention_wgmma.cuh); else 0
};

// Shared-memory rows are D + 8 elements: a 16-byte pad puts the 8 rows an ldmatrix reads in 8
// different bank groups.
template <int D, int MT>
constexpr int fwd_smem_bytes() {
    return (FWD_BM + 4 * fwd_bn<D, MT>()) * (D + 8) * 2;
}

// rows x D bf16 of a [T, ld] tensor (rows from `row0` of the sequence, `nvalid` of them real) into
// shared memory with row stride D + 8; the rows past nvalid become zeros.
template <int D, int NT>
__device__ __forceinline__ void load_rows(__nv_bfloat16 *s, const __nv_bfloat16 *g, size_t ld, int rows,
                                          int nvalid) {
    constexpr int CPR = D / 8; // 16-byte chunks per row
    for (int i = threadIdx.x; i < rows * CPR; i += NT) {
        int r = i / CPR, c = (i % CPR) * 8;
        bool ok = r < nvalid;
        cp_async16(s + r * (D + 8) + c, ok ? g + (size_t)r * ld + c : g, ok);
    }
}

template <int D, int MT>
__global__ void __launch_bounds__(fwd_threads<MT>(), 1) fwd_kernel(const FwdArgs p) {
    constexpr int BN = fwd_bn<D, MT>(), LDS = D + 8, NB = BN / 8, ND = D / 8, FWD_THREADS = fwd_threads<MT>();
    extern __shared__ __align__(16) unsigned char smem_raw[];
    __nv_bfloat16 *sQ = reinterpret_cast<__nv_bfloat16 *>(smem_raw); // [BM][LDS]
    __nv_bfloat16 *sK = sQ + FWD_BM * LDS;                            // [2][BN][LDS]
    __nv_bfloat16 *sV = sK + 2 * BN * LDS;                        // [2][BN][LDS]

    const AttnTile tile = p.tiles[p.tile_major ? blockIdx.y : blockIdx.x];
    const int h = p.tile_major ? blockIdx.x : blockIdx.y, kvh = h / p.group;
    const int t0 = p.cu[tile.seq], L = p.cu[tile.seq + 1] - t0, r0 = tile.start;
    const int W = p.window;
    const int warp = threadIdx.x / 32, lane = threadIdx.x % 32, g = lane / 4, tq = lane % 4;

    // keys [kb, ke): kb the first key the tile's first row sees, rounded down to a key tile
    const int ke = min(L, r0 + FWD_BM);
    int kb = W > 0 && r0 - W + 1 > 0 ? r0 - W + 1 : 0;
    kb -= kb % BN;
    const int nkt = (ke - kb + BN - 1) / BN;

    const size_t ldq = (size_t)p.H * D, ldk = (size_t)p.KV * D;
    const __nv_bfloat16 *gq = p.q + (size_t)(t0 + r0) * ldq + (size_t)h * D;
    const __nv_bfloat16 *gk = p.k + (size_t)t0 * ldk + (size_t)kvh * D;
    const __nv_bfloat16 *gv = p.v + (size_t)t0 * ldk + (size_t)kvh * D;

    load_rows<D, FWD_THREADS>(sQ, gq, ldq, FWD_BM, L - r0);
    load_rows<D, FWD_THREADS>(sK, gk + (size_t)kb * ldk, ldk, BN, L - kb);
    load_rows<D, FWD_THREADS>(sV, gv + (size_t)kb * ldk, ldk, BN, L - kb);
    cp_async_commit();

    // the warp's rows: MT row blocks of 16 from r0 + warp 16 MT; this thread's rows in block mt
    // are ra + 16 mt and ra + 16 mt + 8
    float acc[MT][ND][4];
#pragma unroll
    for (int mt = 0; mt < MT; mt++)
#pragma unroll
        for (int i = 0; i < ND; i++) acc[mt][i][0] = acc[mt][i][1] = acc[mt][i][2] = acc[mt][i][3] = 0.0f;
    float m[MT][2], l[MT][2];
#pragma unroll
    for (int mt = 0; mt < MT; mt++) m[mt][0] = m[mt][1] = -INFINITY, l[mt][0] = l[mt][1] = 0.0f;
    const int wrow = warp * 16 * MT, ra = r0 + wrow + g;
    const int wr_lo = r0 + wrow, wr_hi = wr_lo + 16 * MT - 1;

    for (int j = 0; j < nkt; j++) {
        const int buf = j & 1, c0 = kb + j * BN;
        if (j + 1 < nkt) {
            const int cn = c0 + BN, nb = buf ^ 1;
            load_rows<D, FWD_THREADS>(sK + nb * BN * LDS, gk + (size_t)cn * ldk, ldk, BN, L - cn);
            load_rows<D, FWD_THREADS>(sV + nb * BN * LDS, gv + (size_t)cn * ldk, ldk, BN, L - cn);
            cp_async_commit();
            cp_async_wait<1>();
        } else {
            cp_async_wait<0>();
        }
        __syncthreads();
        // this warp's rows see none of this tile: causal (all keys after its last row) or window
        // (all keys before its first row's window); the barriers stay shared.
        const bool skip = c0 > wr_hi || (W > 0 && wr_lo - (c0 + BN - 1) >= W);
        if (!skip) {
            const __nv_bfloat16 *k_s = sK + buf * BN * LDS, *v_s = sV + buf * BN * LDS;
            float s[MT][NB][4];
#pragma unroll
            for (int mt = 0; mt < MT; mt++)
#pragma unroll
                for (int i = 0; i < NB; i++) s[mt][i][0] = s[mt][i][1] = s[mt][i][2] = s[mt][i][3] = 0.0f;
#pragma unroll
            for (int kk = 0; kk < D / 16; kk++) {
                uint32_t a[MT][4];
#pragma unroll
                for (int mt = 0; mt < MT; mt++)
                    ldsm_x4(a[mt], sQ + (wrow + mt * 16 + (lane % 8) + ((lane / 8) % 2) * 8) * LDS + kk * 16 + (lane / 16) * 8);
#pragma unroll
                for (int np = 0; np < NB / 2; np++) {
                    uint32_t b[4];
                    ldsm_x4(b, k_s + (np * 16 + (lane % 8) + (lane / 16) * 8) * LDS + kk * 16 + ((lane / 8) % 2) * 8);
#pragma unroll
                    for (int mt = 0; mt < MT; mt++) {
                        mma_bf16(s[mt][2 * np], a[mt], b[0], b[1]);
                        mma_bf16(s[mt][2 * np + 1], a[mt], b[2], b[3]);
                    }
                }
            }
            // mask where the tile crosses the diagonal, the window's edge or the sequence's end
            const bool need_mask = c0 + BN - 1 > wr_lo || c0 + BN > L || (W > 0 && wr_hi - c0 >= W);
#pragma unroll
            for (int mt = 0; mt < MT; mt++) {
#pragma unroll
                for (int i = 0; i < NB; i++) {
#pragma unroll
                    for (int e = 0; e < 4; e++) {
                        float x = s[mt][i][e] * p.scale_log2;
                        if (need_mask) {
                            const int r = ra + mt * 16 + (e / 2) * 8, c = c0 + i * 8 + 2 * tq + (e % 2);
                            if (c > r || c >= L || (W > 0 && r - c >= W)) x = -INFINITY;
                        }
                        s[mt][i][e] = x;
                    }
                }
                // online softmax; a row's values are spread over the 4 lanes of a quad
#pragma unroll
                for (int hr = 0; hr < 2; hr++) {
                    float mx = -INFINITY;
#pragma unroll
                    for (int i = 0; i < NB; i++) mx = fmaxf(mx, fmaxf(s[mt][i][2 * hr], s[mt][i][2 * hr + 1]));
                    mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 1));
                    mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 2));
                    const float mn = fmaxf(m[mt][hr], mx);
                    const float base = mn == -INFINITY ? 0.0f : mn; // a row that has seen nothing yet
                    const float alpha = exp2f(m[mt][hr] - base);
                    m[mt][hr] = mn;
                    float sum = 0.0f;
#pragma unroll
                    for (int i = 0; i < NB; i++) {
                        s[mt][i][2 * hr] = exp2f(s[mt][i][2 * hr] - base);
                        s[mt][i][2 * hr + 1] = exp2f(s[mt][i][2 * hr + 1] - base);
                        sum += s[mt][i][2 * hr] + s[mt][i][2 * hr + 1];
                    }
                    l[mt][hr] = l[mt][hr] * alpha + sum;
#pragma unroll
                    for (int i = 0; i < ND; i++) {
                        acc[mt][i][2 * hr] *= alpha;
                        acc[mt][i][2 * hr + 1] *= alpha;
                    }
                }
            }
            // acc += P V
#pragma unroll
            for (int kk = 0; kk < BN / 16; kk++) {
                uint32_t a[MT][4];
#pragma unroll
                for (int mt = 0; mt < MT; mt++) {
                    a[mt][0] = pack_bf16(s[mt][2 * kk][0], s[mt][2 * kk][1]);
                    a[mt][1] = pack_bf16(s[mt][2 * kk][2], s[mt][2 * kk][3]);
                    a[mt][2] = pack_bf16(s[mt][2 * kk + 1][0], s[mt][2 * kk + 1][1]);
                    a[mt][3] = pack_bf16(s[mt][2 * kk + 1][2], s[mt][2 * kk + 1][3]);
                }
#pragma unroll
                for (int dp = 0; dp < D / 16; dp++) {
                    uint32_t b[4];
                    ldsm_x4_t(b, v_s + (kk * 16 + (lane % 8) + ((lane / 8) % 2) * 8) * LDS + dp * 16 + (lane / 16) * 8);
#pragma unroll
                    for (int mt = 0; mt < MT; mt++) {
                        mma_bf16(acc[mt][2 * dp], a[mt], b[0], b[1]);
                        mma_bf16(acc[mt][2 * dp + 1], a[mt], b[2], b[3]);
                    }
                }
            }
        }
        __syncthreads(); // the next prefetch overwrites this buffer
    }

#pragma unroll
    for (int mt = 0; mt < MT; mt++) {
#pragma unroll
        for (int hr = 0; hr < 2; hr++) {
            float sum = l[mt][hr];
            sum += __shfl_xor_sync(0xffffffffu, sum, 1);
            sum += __shfl_xor_sync(0xffffffffu, sum, 2);
            const int r = ra + mt * 16 + hr * 8;
            if (r >= L) continue;
            const float inv = sum > 0.0f ? 1.0f / sum : 0.0f;
            __nv_bfloat16 *orow = p.o + (size_t)(t0 + r) * ldq + (size_t)h * D;
#pragma unroll
            for (int i = 0; i < ND; i++)
                *reinterpret_cast<uint32_t *>(orow + i * 8 + 2 * tq) =
                    pack_bf16(acc[mt][i][2 * hr] * inv, acc[mt][i][2 * hr + 1] * inv);
            if (tq == 0) p.lse[(size_t)(t0 + r) * p.H + h] = (m[mt][hr] + log2f(sum)) * LN2;
        }
    }
}

} // namespace attn

#endif
