// kernels/cuda/attention_bwd.cuh — the backward kernel of causal GQA softmax attention
// (FlashAttention-2 scheme: Dao 2023, algorithm 2), tensor cores through mma.sync m16n8k16.
// defines: attn::BwdArgs, attn::bwd_kernel, attn::bwd_store_dkdv, attn::bwd_smem_bytes, attn::BWD_BM,
//          attn::BWD_BN, attn::BWD_THREADS
//
// One CTA per (key tile of BWD_BN rows of one sequence, kv head); 4 warps, each owning 16 keys.
// It walks the query tiles (BWD_BM rows) that can see its keys, for every query head of the kv
// head's group, with Q, dO, lse and delta = rowsum(dO o O) two deep in shared memory. Each warp
// works transposed, keys as rows: S^T = K Q^T, P^T = exp2(S^T scale log2 e - lse log2 e),
// dP^T = V dO^T, dS^T = P^T o (dP^T - delta); dV += P^T dO and dK += dS^T Q stay in fp32 registers
// for the whole walk. dS^T goes to shared memory (bf16) and the 4 warps then split dQ = dS K by
// query rows, adding it to an fp32 buffer with atomics (several key tiles meet on each dQ row);
// the host converts that buffer to bf16 with the 1/sqrt(D) after the kernel. dK takes its factor at
// the end. When (key tiles x kv heads) are too few CTAs to fill the GPU (GQA with few kv heads),
// a split index (blockIdx.z; in the tile-major grid, part of blockIdx.x) splits the group's query heads and dK, dV meet
// in fp32 buffers through atomics too.
#ifndef CISPO_KERNELS_CUDA_ATTENTION_BWD_CUH
#define CISPO_KERNELS_CUDA_ATTENTION_BWD_CUH

#include "kernels/cuda/attention_fwd.cuh"

namespace attn {

constexpr int BWD_BM = 64, BWD_BN = 64, BWD_THREADS = 128;

struct BwdArgs {
    __nv_bfloat16 *dk, *dv;                          // [T, KV, D]
    float *dq_acc;                                   // [T, H, D] fp32, zeroed
    float *dk_acc, *dv_acc;                          // [T, KV, D] fp32, zeroed, or NULL: write dk, dv
    const __nv_bfloat16 *q, *k, *v, *dout;           // [T, H, D], [T, KV, D] x2, [T, H, D]
    const float *lse, *delta;                        // [T, H]
    const int32_t *cu;                               // [nseq + 1]
    const AttnTile *tiles;                           // [gridDim.x], key tiles
    int H, KV, group, window, acc;
    int heads_per_split; // split z of the group takes query heads [z hps, (z + 1) hps)
    int nsplit;          // the splits of a group
    int tile_major;      // 0: grid (tiles, KV, nsplit); 1: grid (KV x nsplit, tiles), block x = kvh nsplit + z
    float scale, scale_log2;
    int ablate;          // CISPO_ATTN_ABLATION builds only (ATTN_ABLATE in attention_wgmma.cuh); else 0
    const int32_t *pad;  // [nseq]: each sequence's first row in dq_acc's tiled layout (bwd_wg_ws_kernel<true>)
};

template <int D>
constexpr int bwd_smem_bytes() {
    return (2 * BWD_BN + 4 * BWD_BM) * (D + 8) * 2 + BWD_BN * (BWD_BM + 8) * 2 + 4 * BWD_BM * 4;
}

// A thread's dK (taking its 1/sqrt(D) here) and dV for keys kr and kr + 8 of the sequence at t0, columns
// 8 i + 2 tq (+1): element 4 i + 2 hr (+1) of dk, dv, hr = 0 for kr and 1 for kr + 8 (mma.sync's C layout,
// also wgmma's accumulator layout). Added to the fp32 buffers when the group's heads are split over CTAs,
// else written (or added, p.acc) as bf16.
template <int D>
__device__ __forceinline__ void bwd_store_dkdv(const BwdArgs &p, const float *dk, const float *dv, int kr, int L,
                                               int t0, int kvh, int tq) {
    constexpr int ND = D / 8;
    const size_t ldk = (size_t)p.KV * D;
#pragma unroll
    for (int hr = 0; hr < 2; hr++) {
        const int c = kr + hr * 8;
        if (c >= L) continue;
        const size_t off = (size_t)(t0 + c) * ldk + (size_t)kvh * D;
        if (p.dk_acc) {
#pragma unroll
            for (int i = 0; i < ND; i++) {
                atomicAdd(reinterpret_cast<float2 *>(p.dk_acc + off + i * 8 + 2 * tq),
                          make_float2(dk[4 * i + 2 * hr] * p.scale, dk[4 * i + 2 * hr + 1] * p.scale));
                atomicAdd(reinterpret_cast<float2 *>(p.dv_acc + off + i * 8 + 2 * tq),
                          make_float2(dv[4 * i + 2 * hr], dv[4 * i + 2 * hr + 1]));
            }
            continue;
        }
#pragma unroll
        for (int i = 0; i < ND; i++) {
            uint32_t *pk = reinterpret_cast<uint32_t *>(p.dk + off + i * 8 + 2 * tq);
            uint32_t *pv = reinterpret_cast<uint32_t *>(p.dv + off + i * 8 + 2 * tq);
            float k0 = dk[4 * i + 2 * hr] * p.scale, k1 = dk[4 * i + 2 * hr + 1] * p.scale;
            float v0 = dv[4 * i + 2 * hr], v1 = dv[4 * i + 2 * hr + 1];
            if (p.acc) {
                const float2 ok = unpack_bf16(*pk), ov = unpack_bf16(*pv);
                k0 += ok.x, k1 += ok.y, v0 += ov.x, v1 += ov.y;
            }
            *pk = pack_bf16(k0, k1);
            *pv = pack_bf16(v0, v1);
        }
    }
}

template <int D>
__global__ void __launch_bounds__(BWD_THREADS, 1) bwd_kernel(const BwdArgs p) {
    constexpr int LDS = D + 8, LDP = BWD_BM + 8, NQ = BWD_BM / 8, ND = D / 8;
    extern __shared__ __align__(16) unsigned char smem_raw[];
    __nv_bfloat16 *sK = reinterpret_cast<__nv_bfloat16 *>(smem_raw); // [BN][LDS]
    __nv_bfloat16 *sV = sK + BWD_BN * LDS;                            // [BN][LDS]
    __nv_bfloat16 *sQ = sV + BWD_BN * LDS;                            // [2][BM][LDS]
    __nv_bfloat16 *sO = sQ + 2 * BWD_BM * LDS;                        // [2][BM][LDS] (dO)
    __nv_bfloat16 *sS = sO + 2 * BWD_BM * LDS;                        // [BN][LDP] dS^T
    float *sL = reinterpret_cast<float *>(sS + BWD_BN * LDP);         // [2][BM] lse * log2 e
    float *sD = sL + 2 * BWD_BM;                                      // [2][BM] delta

    const AttnTile tile = p.tiles[p.tile_major ? blockIdx.y : blockIdx.x];
    const int kvh = p.tile_major ? blockIdx.x / p.nsplit : blockIdx.y;
    const int t0 = p.cu[tile.seq], L = p.cu[tile.seq + 1] - t0, n0 = tile.start;
    const int W = p.window;
    const int warp = threadIdx.x / 32, lane = threadIdx.x % 32, g = lane / 4, tq = lane % 4;

    // query rows [mb, me) see some key of the tile: rows from n0 (causal) to the last key's window
    const int mb = n0 - n0 % BWD_BM;
    const int last_key = min(L, n0 + BWD_BN) - 1;
    const int me = W > 0 ? min(L, last_key + W) : L;
    const int h_lo = kvh * p.group + (p.tile_major ? blockIdx.x % p.nsplit : blockIdx.z) * p.heads_per_split;
    const int nh = min(p.heads_per_split, kvh * p.group + p.group - h_lo);
    const int nq = (me - mb + BWD_BM - 1) / BWD_BM, nit = nh > 0 ? nq * nh : 0;

    const size_t ldq = (size_t)p.H * D, ldk = (size_t)p.KV * D;
    const __nv_bfloat16 *gk = p.k + (size_t)(t0 + n0) * ldk + (size_t)kvh * D;
    const __nv_bfloat16 *gv = p.v + (size_t)(t0 + n0) * ldk + (size_t)kvh * D;
    load_rows<D, BWD_THREADS>(sK, gk, ldk, BWD_BN, L - n0);
    load_rows<D, BWD_THREADS>(sV, gv, ldk, BWD_BN, L - n0);

    // stage iteration `it` (query head, query tile) into buffer b
    auto stage = [&](int it, int b) {
        const int h = h_lo + it / nq, m0 = mb + (it % nq) * BWD_BM;
        const size_t off = (size_t)(t0 + m0) * ldq + (size_t)h * D;
        load_rows<D, BWD_THREADS>(sQ + b * BWD_BM * LDS, p.q + off, ldq, BWD_BM, L - m0);
        load_rows<D, BWD_THREADS>(sO + b * BWD_BM * LDS, p.dout + off, ldq, BWD_BM, L - m0);
        for (int i = threadIdx.x; i < 2 * BWD_BM; i += BWD_THREADS) {
            const int r = i % BWD_BM;
            const bool ok = m0 + r < L;
            const size_t row = (size_t)(t0 + m0 + r) * p.H + h;
            if (i < BWD_BM) sL[b * BWD_BM + r] = ok ? p.lse[row] * LOG2E : INFINITY;
            else sD[b * BWD_BM + r] = ok ? p.delta[row] : 0.0f;
        }
    };
    if (nit > 0) stage(0, 0);
    cp_async_commit();

    float dk[ND][4], dv[ND][4];
#pragma unroll
    for (int i = 0; i < ND; i++)
#pragma unroll
        for (int e = 0; e < 4; e++) dk[i][e] = dv[i][e] = 0.0f;
    const int kr = n0 + warp * 16 + g; // this thread's key rows kr and kr + 8 (within the sequence)

    for (int it = 0; it < nit; it++) {
        const int buf = it & 1;
        const int h = h_lo + it / nq, m0 = mb + (it % nq) * BWD_BM;
        if (it + 1 < nit) {
            stage(it + 1, buf ^ 1);
            cp_async_commit();
            cp_async_wait<1>();
        } else {
            cp_async_wait<0>();
        }
        __syncthreads();
        const __nv_bfloat16 *q_s = sQ + buf * BWD_BM * LDS, *o_s = sO + buf * BWD_BM * LDS;
        const float *l_s = sL + buf * BWD_BM, *d_s = sD + buf * BWD_BM;
        const bool need_mask = m0 < n0 + BWD_BN - 1 || m0 + BWD_BM > L || (W > 0 && m0 + BWD_BM - 1 - n0 >= W);

        // S^T = K Q^T (16 keys x BM queries per warp), then P^T
        float pt[NQ][4];
#pragma unroll
        for (int i = 0; i < NQ; i++) pt[i][0] = pt[i][1] = pt[i][2] = pt[i][3] = 0.0f;
#pragma unroll
        for (int kk = 0; kk < D / 16; kk++) {
            uint32_t a[4];
            ldsm_x4(a, sK + (warp * 16 + (lane % 8) + ((lane / 8) % 2) * 8) * LDS + kk * 16 + (lane / 16) * 8);
#pragma unroll
            for (int np = 0; np < NQ / 2; np++) {
                uint32_t b[4];
                ldsm_x4(b, q_s + (np * 16 + (lane % 8) + (lane / 16) * 8) * LDS + kk * 16 + ((lane / 8) % 2) * 8);
                mma_bf16(pt[2 * np], a, b[0], b[1]);
                mma_bf16(pt[2 * np + 1], a, b[2], b[3]);
            }
        }
#pragma unroll
        for (int i = 0; i < NQ; i++) {
#pragma unroll
            for (int e = 0; e < 4; e++) {
                const int ql = i * 8 + 2 * tq + (e % 2);
                float x = exp2f(pt[i][e] * p.scale_log2 - l_s[ql]);
                if (need_mask) {
                    const int c = kr + (e / 2) * 8, r = m0 + ql;
                    if (r >= L || c > r || (W > 0 && r - c >= W)) x = 0.0f;
                }
                pt[i][e] = x;
            }
        }
        // dV += P^T dO
#pragma unroll
        for (int kk = 0; kk < BWD_BM / 16; kk++) {
            uint32_t a[4];
            a[0] = pack_bf16(pt[2 * kk][0], pt[2 * kk][1]);
            a[1] = pack_bf16(pt[2 * kk][2], pt[2 * kk][3]);
            a[2] = pack_bf16(pt[2 * kk + 1][0], pt[2 * kk + 1][1]);
            a[3] = pack_bf16(pt[2 * kk + 1][2], pt[2 * kk + 1][3]);
#pragma unroll
            for (int dp = 0; dp < D / 16; dp++) {
                uint32_t b[4];
                ldsm_x4_t(b, o_s + (kk * 16 + (lane % 8) + ((lane / 8) % 2) * 8) * LDS + dp * 16 + (lane / 16) * 8);
                mma_bf16(dv[2 * dp], a, b[0], b[1]);
                mma_bf16(dv[2 * dp + 1], a, b[2], b[3]);
            }
        }
        // dP^T = V dO^T, then dS^T = P^T o (dP^T - delta) in place
        float ds[NQ][4];
#pragma unroll
        for (int i = 0; i < NQ; i++) ds[i][0] = ds[i][1] = ds[i][2] = ds[i][3] = 0.0f;
#pragma unroll
        for (int kk = 0; kk < D / 16; kk++) {
            uint32_t a[4];
            ldsm_x4(a, sV + (warp * 16 + (lane % 8) + ((lane / 8) % 2) * 8) * LDS + kk * 16 + (lane / 16) * 8);
#pragma unroll
            for (int np = 0; np < NQ / 2; np++) {
                uint32_t b[4];
                ldsm_x4(b, o_s + (np * 16 + (lane % 8) + (lane / 16) * 8) * LDS + kk * 16 + ((lane / 8) % 2) * 8);
                mma_bf16(ds[2 * np], a, b[0], b[1]);
                mma_bf16(ds[2 * np + 1], a, b[2], b[3]);
            }
        }
#pragma unroll
        for (int i = 0; i < NQ; i++)
#pragma unroll
            for (int e = 0; e < 4; e++) ds[i][e] = pt[i][e] * (ds[i][e] - d_s[i * 8 + 2 * tq + (e % 2)]);
        // dS^T to shared memory for dQ; dK += dS^T Q
#pragma unroll
        for (int i = 0; i < NQ; i++) {
            *reinterpret_cast<uint32_t *>(sS + (warp * 16 + g) * LDP + i * 8 + 2 * tq) = pack_bf16(ds[i][0], ds[i][1]);
            *reinterpret_cast<uint32_t *>(sS + (warp * 16 + g + 8) * LDP + i * 8 + 2 * tq) =
                pack_bf16(ds[i][2], ds[i][3]);
        }
#pragma unroll
        for (int kk = 0; kk < BWD_BM / 16; kk++) {
            uint32_t a[4];
            a[0] = pack_bf16(ds[2 * kk][0], ds[2 * kk][1]);
            a[1] = pack_bf16(ds[2 * kk][2], ds[2 * kk][3]);
            a[2] = pack_bf16(ds[2 * kk + 1][0], ds[2 * kk + 1][1]);
            a[3] = pack_bf16(ds[2 * kk + 1][2], ds[2 * kk + 1][3]);
#pragma unroll
            for (int dp = 0; dp < D / 16; dp++) {
                uint32_t b[4];
                ldsm_x4_t(b, q_s + (kk * 16 + (lane % 8) + ((lane / 8) % 2) * 8) * LDS + dp * 16 + (lane / 16) * 8);
                mma_bf16(dk[2 * dp], a, b[0], b[1]);
                mma_bf16(dk[2 * dp + 1], a, b[2], b[3]);
            }
        }
        __syncthreads(); // dS^T complete
        // dQ rows 16 warp.. of the tile = dS K over the tile's keys, D in halves to spare registers
        {
            constexpr int DH = D < 64 ? D : 64;
            uint32_t af[BWD_BN / 16][4];
#pragma unroll
            for (int kk = 0; kk < BWD_BN / 16; kk++)
                ldsm_x4_t(af[kk], sS + (kk * 16 + (lane % 8) + (lane / 16) * 8) * LDP + warp * 16 + ((lane / 8) % 2) * 8);
            const int qa = m0 + warp * 16 + g;
            float *dqa = p.dq_acc + (size_t)(t0 + qa) * ldq + (size_t)h * D;
#pragma unroll
            for (int d0 = 0; d0 < D; d0 += DH) {
                float dq[DH / 8][4];
#pragma unroll
                for (int i = 0; i < DH / 8; i++) dq[i][0] = dq[i][1] = dq[i][2] = dq[i][3] = 0.0f;
#pragma unroll
                for (int kk = 0; kk < BWD_BN / 16; kk++) {
#pragma unroll
                    for (int dp = 0; dp < DH / 16; dp++) {
                        uint32_t b[4];
                        ldsm_x4_t(b, sK + (kk * 16 + (lane % 8) + ((lane / 8) % 2) * 8) * LDS + d0 + dp * 16 + (lane / 16) * 8);
                        mma_bf16(dq[2 * dp], af[kk], b[0], b[1]);
                        mma_bf16(dq[2 * dp + 1], af[kk], b[2], b[3]);
                    }
                }
#pragma unroll
                for (int i = 0; i < DH / 8; i++) {
                    const int c = d0 + i * 8 + 2 * tq;
                    if (qa < L) atomicAdd(reinterpret_cast<float2 *>(dqa + c), make_float2(dq[i][0], dq[i][1]));
                    if (qa + 8 < L)
                        atomicAdd(reinterpret_cast<float2 *>(dqa + 8 * ldq + c), make_float2(dq[i][2], dq[i][3]));
                }
            }
        }
        __syncthreads(); // the next stage overwrites this buffer and dS^T
    }

    bwd_store_dkdv<D>(p, &dk[0][0], &dv[0][0], kr, L, t0, kvh, tq);
}

} // namespace attn

#endif
