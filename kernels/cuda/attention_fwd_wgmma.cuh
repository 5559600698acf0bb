// kernels/cuda/attention_fwd_wgmma.cuh — the forward of causal GQA softmax attention at head dim 128 on
// Hopper's warpgroup tensor cores (wgmma, sm_90a; kernels/cuda/wgmma.cuh); kernels/cuda/attention.cu
// launches it where it was built for the card, else attention_fwd.cuh's mma.sync kernel, which it follows
// (the same tiles, masks, log2-domain online softmax and outputs).
// defines: attn::fwd_wg_kernel, attn::FWD_WG_SMEM, attn::FWD_WG_THREADS
//
// One CTA of two warpgroups per (query tile of FWD_BM = 128 rows, query head); warpgroup w owns rows
// 64w .. 64w+63. Key and value tiles of 128 rows stream through shared memory two deep (cp.async). Per
// tile, a warpgroup computes S = Q K^T (64 x 128, eight m64n128k16 wgmmas, Q and K K-major in shared
// memory), masks and exponentiates it in registers, turns the probabilities into bf16 A fragments in
// place (wgmma's register A layout is mma.sync's, warp by warp) and adds P V (eight more, V MN-major).
// Q, K and V tiles share one shared-memory layout: 128 rows in two halves of 64 columns (16 KiB each),
// rows 128 bytes, 16-byte chunk c of row r at chunk c ^ (r & 7) — K-major for Q and K, and for V the
// MN-major panels (leading offset 16 KiB) of the PV product.
#ifndef CISPO_KERNELS_CUDA_ATTENTION_FWD_WGMMA_CUH
#define CISPO_KERNELS_CUDA_ATTENTION_FWD_WGMMA_CUH

#include "kernels/cuda/attention_fwd.cuh"
#include "kernels/cuda/wgmma.cuh"

namespace attn {

constexpr int FWD_WG_THREADS = 256, FWD_WG_BN = 128, FWD_WG_TILE = 128 * 128 * 2;  // bytes of one tile
constexpr int FWD_WG_SMEM = 5 * FWD_WG_TILE + 1024;                                  // Q, 2 K, 2 V; alignment

// 128 rows x 128 columns of a [T, ld] tensor (rows past nvalid: zeros) into the layout above
__device__ __forceinline__ void wga_load(unsigned char *s, const __nv_bfloat16 *g, size_t ld, int nvalid) {
    for (int i = threadIdx.x; i < 128 * 16; i += FWD_WG_THREADS) {
        const int r = i >> 4, cc = i & 15;
        const bool ok = r < nvalid;
        cp_async16(s + (cc >> 3) * 16384 + r * 128 + 16 * ((cc & 7) ^ (r & 7)), ok ? g + (size_t)r * ld + cc * 8 : g,
                   ok);
    }
}

__global__ void __launch_bounds__(FWD_WG_THREADS, 1) fwd_wg_kernel(const FwdArgs p) {
    constexpr int D = 128, BN = FWD_WG_BN, NB = BN / 8, ND = D / 8;
    extern __shared__ __align__(1024) unsigned char wga_smem[];
    unsigned char *sQ = wga_smem + ((1024 - (__cvta_generic_to_shared(wga_smem) & 1023)) & 1023);
    unsigned char *sK = sQ + FWD_WG_TILE, *sV = sK + 2 * FWD_WG_TILE;  // [2] tiles each
    const uint32_t aQ = (uint32_t)__cvta_generic_to_shared(sQ), aK = aQ + FWD_WG_TILE, aV = aK + 2 * FWD_WG_TILE;

    const AttnTile tile = p.tiles[blockIdx.x];
    const int h = blockIdx.y, kvh = h / p.group;
    const int t0 = p.cu[tile.seq], L = p.cu[tile.seq + 1] - t0, r0 = tile.start;
    const int W = p.window;
    const int wgi = threadIdx.x >> 7, warp = (threadIdx.x >> 5) & 3, lane = threadIdx.x & 31, g = lane / 4,
              tq = lane % 4;

    const int ke = min(L, r0 + FWD_BM);
    int kb = W > 0 && r0 - W + 1 > 0 ? r0 - W + 1 : 0;
    kb -= kb % BN;
    const int nkt = (ke - kb + BN - 1) / BN;

    const size_t ldq = (size_t)p.H * D, ldk = (size_t)p.KV * D;
    const __nv_bfloat16 *gq = p.q + (size_t)(t0 + r0) * ldq + (size_t)h * D;
    const __nv_bfloat16 *gk = p.k + (size_t)t0 * ldk + (size_t)kvh * D;
    const __nv_bfloat16 *gv = p.v + (size_t)t0 * ldk + (size_t)kvh * D;

    wga_load(sQ, gq, ldq, L - r0);
    wga_load(sK, gk + (size_t)kb * ldk, ldk, L - kb);
    wga_load(sV, gv + (size_t)kb * ldk, ldk, L - kb);
    cp_async_commit();

    // this thread's rows: ra (accumulators e < 2) and ra + 8 (e >= 2)
    float o[64];
#pragma unroll
    for (int i = 0; i < 64; i++) o[i] = 0.0f;
    float m[2] = {-INFINITY, -INFINITY}, l[2] = {0.0f, 0.0f};
    const int wr_lo = r0 + wgi * 64, wr_hi = wr_lo + 63, ra = wr_lo + warp * 16 + g;

    for (int j = 0; j < nkt; j++) {
        const int buf = j & 1, c0 = kb + j * BN;
        if (j + 1 < nkt) {
            const int cn = c0 + BN;
            wga_load(sK + (buf ^ 1) * FWD_WG_TILE, gk + (size_t)cn * ldk, ldk, L - cn);
            wga_load(sV + (buf ^ 1) * FWD_WG_TILE, gv + (size_t)cn * ldk, ldk, L - cn);
            cp_async_commit();
            cp_async_wait<1>();
        } else {
            cp_async_wait<0>();
        }
        wg_fence_proxy();
        __syncthreads();
        const bool skip = c0 > wr_hi || (W > 0 && wr_lo - (c0 + BN - 1) >= W);
        if (!skip) {
            float s[64];
#pragma unroll
            for (int i = 0; i < 64; i++) s[i] = 0.0f;
            wg_fence_regs<64>(s);
            wg_fence();
#pragma unroll
            for (int ks = 0; ks < D / 16; ks++) {
                const uint32_t half = (ks >> 2) * 16384 + (ks & 3) * 32;
                wg_mma_ss_128<0, 0>(s, wg_desc(aQ + half + wgi * 8192, 16, 1024),
                                    wg_desc(aK + buf * FWD_WG_TILE + half, 16, 1024));
            }
            wg_commit();
            wg_wait<0>();
            wg_fence_regs<64>(s);
            const bool need_mask = c0 + BN - 1 > wr_lo || c0 + BN > L || (W > 0 && wr_hi - c0 >= W);
#pragma unroll
            for (int i = 0; i < NB; i++)
#pragma unroll
                for (int e = 0; e < 4; e++) {
                    float x = s[4 * i + e] * p.scale_log2;
                    if (need_mask) {
                        const int r = ra + (e / 2) * 8, c = c0 + i * 8 + 2 * tq + (e % 2);
                        if (c > r || c >= L || (W > 0 && r - c >= W)) x = -INFINITY;
                    }
                    s[4 * i + e] = x;
                }
#pragma unroll
            for (int hr = 0; hr < 2; hr++) {
                float mx = -INFINITY;
#pragma unroll
                for (int i = 0; i < NB; i++) mx = fmaxf(mx, fmaxf(s[4 * i + 2 * hr], s[4 * i + 2 * hr + 1]));
                mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 1));
                mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 2));
                const float mn = fmaxf(m[hr], mx);
                const float base = mn == -INFINITY ? 0.0f : mn;  // a row that has seen nothing yet
                const float alpha = exp2f(m[hr] - base);
                m[hr] = mn;
                float sum = 0.0f;
#pragma unroll
                for (int i = 0; i < NB; i++) {
                    s[4 * i + 2 * hr] = exp2f(s[4 * i + 2 * hr] - base);
                    s[4 * i + 2 * hr + 1] = exp2f(s[4 * i + 2 * hr + 1] - base);
                    sum += s[4 * i + 2 * hr] + s[4 * i + 2 * hr + 1];
                }
                l[hr] = l[hr] * alpha + sum;
#pragma unroll
                for (int i = 0; i < ND; i++) {
                    o[4 * i + 2 * hr] *= alpha;
                    o[4 * i + 2 * hr + 1] *= alpha;
                }
            }
            uint32_t a[BN / 16][4];
#pragma unroll
            for (int kk = 0; kk < BN / 16; kk++) {
                a[kk][0] = pack_bf16(s[8 * kk + 0], s[8 * kk + 1]);
                a[kk][1] = pack_bf16(s[8 * kk + 2], s[8 * kk + 3]);
                a[kk][2] = pack_bf16(s[8 * kk + 4], s[8 * kk + 5]);
                a[kk][3] = pack_bf16(s[8 * kk + 6], s[8 * kk + 7]);
            }
            wg_fence_regs<64>(o);
            wg_fence();
#pragma unroll
            for (int kk = 0; kk < BN / 16; kk++)
                wg_mma_rs_128<1>(o, a[kk], wg_desc(aV + buf * FWD_WG_TILE + kk * 2048, 16384, 1024));
            wg_commit();
            wg_wait<0>();
            wg_fence_regs<64>(o);
        }
        __syncthreads();  // the next prefetch overwrites this buffer
    }

#pragma unroll
    for (int hr = 0; hr < 2; hr++) {
        float sum = l[hr];
        sum += __shfl_xor_sync(0xffffffffu, sum, 1);
        sum += __shfl_xor_sync(0xffffffffu, sum, 2);
        const int r = ra + hr * 8;
        if (r >= L) continue;
        const float inv = sum > 0.0f ? 1.0f / sum : 0.0f;
        __nv_bfloat16 *orow = p.o + (size_t)(t0 + r) * ldq + (size_t)h * D;
#pragma unroll
        for (int i = 0; i < ND; i++)
            *reinterpret_cast<uint32_t *>(orow + i * 8 + 2 * tq) =
                pack_bf16(o[4 * i + 2 * hr] * inv, o[4 * i + 2 * hr + 1] * inv);
        if (tq == 0) p.lse[(size_t)(t0 + r) * p.H + h] = (m[hr] + log2f(sum)) * LN2;
    }
}

}  // namespace attn

#endif
