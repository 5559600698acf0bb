// kernels/cuda/attention_wgmma.cuh — the forward and backward of causal GQA softmax attention at head dim 128 on
// Hopper's warpgroup tensor cores (wgmma, sm_90a; kernels/cuda/wgmma.cuh); kernels/cuda/attention.cu
// launches them where they were built for the card, else attention_fwd.cuh's and attention_bwd.cuh's mma.sync
// kernels, which they follow (the same masks, log2-domain online softmax, arguments and outputs).
// defines: attn::fwd_wg_kernel, attn::fwd_wg_tma_kernel, attn::FWD_WG_SMEM, attn::FWD_WG_TMA_SMEM,
//          attn::FWD_WG_THREADS, attn::FWD_WS_THREADS, attn::bwd_wg_kernel, attn::BWD_WG_SMEM, attn::BWD_WG_BN, attn::wga_load,
//          attn::wga_bar_sync, attn::wga_bar_arrive, attn::wga_key_tiles, attn::wga_issue_s, attn::wga_issue_pv,
//          attn::bwd_wg_ws_kernel, attn::BWD_WS_SMEM, attn::BWD_WG_BM, attn::wgb_scores, attn::wgb_probs,
//          attn::wgb_store_ds, attn::wgb_issue_dvdk, attn::wgb_issue_dq, attn::wgb_wait_dvdk, attn::wgb_reduce_add,
//          attn::wgb_scores_issue, attn::wgb_probs_ds, attn::wgb_issue_acc, attn::WsBars, attn::wgb_put_dq,
//          attn::wga_need_mask, attn::wga_softmax_tile, attn::LAZY_LOG2
//
// One CTA of two warpgroups per (query tile of FWD_BM = 128 rows, query head; fwd_wg_tma_kernel adds a third that
// only loads); warpgroup w owns rows 64w .. 64w+63. Key and value tiles of 128 rows stream through shared memory two deep (cp.async). Per
// tile, a warpgroup computes S = Q K^T (64 x 128, eight m64n128k16 wgmmas, Q and K K-major in shared
// memory), masks and exponentiates it in registers, turns the probabilities into bf16 A fragments in
// place (wgmma's register A layout is mma.sync's, warp by warp) and adds P V (eight more, V MN-major).
// Q, K and V tiles share one shared-memory layout: 128 rows in two halves of 64 columns (16 KiB each),
// rows 128 bytes, 16-byte chunk c of row r at chunk c ^ (r & 7) — K-major for Q and K, and for V the
// MN-major panels (leading offset 16 KiB) of the PV product.
#ifndef CISPO_KERNELS_CUDA_ATTENTION_WGMMA_CUH
#define CISPO_KERNELS_CUDA_ATTENTION_WGMMA_CUH

#include "kernels/cuda/attention_bwd.cuh"
#include "kernels/cuda/wgmma.cuh"

namespace attn {

// Timing studies only: in a build with -DCISPO_ATTN_ABLATION the environment's CISPO_ATTN_ABLATE (a bit mask, the
// kernels' p.ablate) leaves parts of the TMA kernels out, so that what a part costs is what its removal saves; the
// results are then wrong. Bits: 1 dQ's bulk reductions; 2 dQ's stores to shared memory and its reductions; 4 the
// backward's exponentials; 8 the backward's named barrier (a race); 16 the backward's lse and delta loads; 32 the
// forward's exponentials; 64 the forward's output stores; 128 the forward's key and value loads past the first three
// tiles (the stages keep the tiles they hold: what the traffic from L2 costs); 256 the forward's rescaling of the
// output; 1024 the backward's Q and dO loads past the first stages. Without the definition (every other build)
// this is false throughout and the kernels compile as without it.
#ifdef CISPO_ATTN_ABLATION
#define ATTN_ABLATE(p, bit) (((p).ablate & (bit)) != 0)
#else
#define ATTN_ABLATE(p, bit) false
#endif

constexpr int FWD_WG_THREADS = 256, FWD_WG_BN = 128, FWD_WG_TILE = 128 * 128 * 2;  // bytes of one tile
constexpr int FWD_WG_SMEM = 5 * FWD_WG_TILE + 1024;                                  // Q, 2 K, 2 V; alignment

// ROWS rows x 128 columns of a [T, ld] tensor (rows past nvalid: zeros) into the layout above (halves of
// ROWS x 128 bytes), by 256 threads
template <int ROWS>
__device__ __forceinline__ void wga_load(unsigned char *s, const __nv_bfloat16 *g, size_t ld, int nvalid) {
    for (int i = threadIdx.x; i < ROWS * 16; i += FWD_WG_THREADS) {
        const int r = i >> 4, cc = i & 15;
        const bool ok = r < nvalid;
        cp_async16(s + (cc >> 3) * (ROWS * 128) + r * 128 + 16 * ((cc & 7) ^ (r & 7)),
                   ok ? g + (size_t)r * ld + cc * 8 : g, ok);
    }
}

// Named barrier 1 or 2 (__syncthreads is 0) across both warpgroups: wait until the other has arrived there, or
// arrive. The id is a register (which ptxas counts as all sixteen barriers in use, harmless at one CTA an SM): a
// branch on it would put the wgmmas after it in a divergent path, which ptxas serializes.
__device__ __forceinline__ void wga_bar_sync(int id) {
    asm volatile("bar.sync %0, %1;\n" ::"r"(id), "n"(FWD_WG_THREADS) : "memory");
}
__device__ __forceinline__ void wga_bar_arrive(int id) {
    asm volatile("bar.arrive %0, %1;\n" ::"r"(id), "n"(FWD_WG_THREADS) : "memory");
}

// The key tiles of BN = 128 keys that query tile r0 (FWD_BM rows of a sequence of L) sees: from kb (the first
// tile the window reaches, else 0), nkt of them
__device__ __forceinline__ void wga_key_tiles(int r0, int L, int W, int *kb, int *nkt) {
    const int ke = min(L, r0 + FWD_BM);
    int b = W > 0 && r0 - W + 1 > 0 ? r0 - W + 1 : 0;
    b -= b % FWD_WG_BN;
    *kb = b, *nkt = (ke - b + FWD_WG_BN - 1) / FWD_WG_BN;
}

// s = this warpgroup's 64 rows of Q (tile at aQ) times the key tile at aK^T: eight wgmmas, committed as one group
__device__ __forceinline__ void wga_issue_s(float s[64], uint32_t aQ, uint32_t aK, int wgi) {
#pragma unroll
    for (int i = 0; i < 64; i++) s[i] = 0.0f;
    wg_fence_regs<64>(s);
    wg_fence();
#pragma unroll
    for (int ks = 0; ks < 128 / 16; ks++) {
        const uint32_t half = (ks >> 2) * 16384 + (ks & 3) * 32;
        wg_mma_ss_128<0, 0>(s, wg_desc(aQ + half + wgi * 8192, 16, 1024), wg_desc(aK + half, 16, 1024));
    }
    wg_commit();
}

// QREG (fwd_wg_tma_kernel's default; CISPO_ATTN_FWD_QREG=0 leaves it): this warpgroup's 64 rows of the Q tile at
// sQ (two panels of 64 columns, 128 rows of 128 bytes, the 128-byte swizzle) as register A fragments, once a CTA
// (ldmatrix.x4 a 16-column step: lanes 0-15 give rows 0-15 of the warp's 16 at the step's first 8 columns, lanes
// 16-31 at its next 8), so that the score products read only the key tile from shared memory (32 KiB a tile a
// warpgroup in place of 48)
__device__ __forceinline__ void wga_load_q(uint32_t qf[8][4], const unsigned char *sQ, int wgi, int warp, int lane) {
    const int r = wgi * 64 + warp * 16 + (lane & 15);
#pragma unroll
    for (int ks = 0; ks < 8; ks++) {
        const int chunk = (ks & 3) * 2 + (lane >> 4);
        const unsigned char *src = sQ + (ks >> 2) * 16384 + r * 128 + ((chunk ^ (r & 7)) << 4);
#ifdef WG_DEVICE
        asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];\n"
                     : "=r"(qf[ks][0]), "=r"(qf[ks][1]), "=r"(qf[ks][2]), "=r"(qf[ks][3])
                     : "r"((uint32_t)__cvta_generic_to_shared(src)));
#else
        (void)src, qf[ks][0] = qf[ks][1] = qf[ks][2] = qf[ks][3] = 0;
#endif
    }
}

// wga_issue_s with Q's fragments in registers (wga_load_q)
__device__ __forceinline__ void wga_issue_s_rs(float s[64], const uint32_t qf[8][4], uint32_t aK) {
#pragma unroll
    for (int i = 0; i < 64; i++) s[i] = 0.0f;
    wg_fence_regs<64>(s);
    wg_fence();
#pragma unroll
    for (int ks = 0; ks < 128 / 16; ks++)
        wg_mma_rs_128<0>(s, qf[ks], wg_desc(aK + (ks >> 2) * 16384 + (ks & 3) * 32, 16, 1024));
    wg_commit();
}

// o += P (bf16 A fragments a) times the value tile at aV: eight wgmmas, committed as one group
__device__ __forceinline__ void wga_issue_pv(float o[64], uint32_t a[FWD_WG_BN / 16][4], uint32_t aV) {
    wg_fence_regs<64>(o);
    wg_fence();
#pragma unroll
    for (int kk = 0; kk < FWD_WG_BN / 16; kk++) wg_mma_rs_128<1>(o, a[kk], wg_desc(aV + kk * 2048, 16384, 1024));
    wg_commit();
}

// One tile's scores s (this warpgroup's rows wr_lo .. wr_hi, keys c0 .. c0 + 127) into probabilities in place:
// scaled to the log2 domain, masked (causal, past the sequence, the window), the running maxima m and sums l
// of this thread's rows ra and ra + 8 updated; alpha: the factor for what the output holds so far. Returns whether
// the output must be rescaled (alpha is not 1 throughout the warp).
// FOLD (fwd_wg_tma_kernel's default; CISPO_ATTN_FWD_FOLD=0 leaves it): the maxima are taken on the unscaled
// scores and kept so (m unscaled), and the scale goes into the exponentials' arguments, one FFMA an element in
// place of a multiply and a subtraction (the scale is positive, so the maxima are the same elements'; +2.6% at
// T 16384, H 64 and +3.5% at T 4096, H 8 on an H100); the caller scales m before wga_store_o.
// LAZY (with FOLD; the default, CISPO_ATTN_FWD_LAZY=0 leaves it): a warp's rows keep the maxima they have while no
// row's new maximum exceeds its old one by more than LAZY_LOG2 in the log2 domain, so the probabilities stay at
// most 2^LAZY_LOG2 (a wider range, not less precision: fp32 and bf16 keep their relative precision at any power of
// two) and neither the output nor the sums are rescaled: the multiplications of the output by alpha are left out
// on most tiles (the division by the sums at the end and the log-sum-exp take the maxima the sums were taken
// against, so the result is the same up to rounding; 638-643 against 599-606 TFLOP/s at T 16384, H 64 on an H100).
// MASK: the masks are applied (wga_need_mask says where a tile needs them); a separate instantiation, so that the
// tiles without masks run none of their comparisons (inside one body, ptxas predicated them on every tile: 195 of
// the loop's 979 instructions a warp were integer comparisons)
constexpr float LAZY_LOG2 = 8.0f;
template <bool MASK, bool NOEXP = false, bool FOLD = false, bool LAZY = false>  // NOEXP: ATTN_ABLATE's bit 32
__device__ __forceinline__ bool wga_softmax(float s[64], float m[2], float l[2], float alpha[2], const FwdArgs &p,
                                            int c0, int ra, int L, int tq) {
    static_assert(!LAZY || FOLD, "LAZY keeps the maxima unscaled, as FOLD does");
    constexpr int NB = FWD_WG_BN / 8;
    const int W = p.window;
    const float c = p.scale_log2;
#pragma unroll
    for (int i = 0; i < NB; i++)
#pragma unroll
        for (int e = 0; e < 4; e++) {
            float x = FOLD ? s[4 * i + e] : s[4 * i + e] * c;
            if (MASK) {
                const int r = ra + (e / 2) * 8, cc = c0 + i * 8 + 2 * tq + (e % 2);
                if (cc > r || cc >= L || (W > 0 && r - cc >= W)) x = -INFINITY;
            }
            s[4 * i + e] = x;
        }
    float mx[2];
#pragma unroll
    for (int hr = 0; hr < 2; hr++) {
        float v = -INFINITY;
#pragma unroll
        for (int i = 0; i < NB; i++) v = fmaxf(v, fmaxf(s[4 * i + 2 * hr], s[4 * i + 2 * hr + 1]));
        v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, 1));
        mx[hr] = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, 2));
    }
    // LAZY: whether the warp keeps its maxima (false where a row has none yet: -inf - -inf is NaN, x - -inf inf)
    const bool keep =
        LAZY && __all_sync(0xffffffffu, (mx[0] - m[0]) * c <= LAZY_LOG2 && (mx[1] - m[1]) * c <= LAZY_LOG2);
#pragma unroll
    for (int hr = 0; hr < 2; hr++) {
        const float mn = keep ? m[hr] : fmaxf(m[hr], mx[hr]);
        // a row that has seen nothing yet: base 0 (FOLD: base is the scaled maximum, the others' scale)
        const float base = mn == -INFINITY ? 0.0f : FOLD ? mn * c : mn;
        alpha[hr] = keep ? 1.0f : FOLD ? exp2f(fmaf(m[hr], c, -base)) : exp2f(m[hr] - base);
        m[hr] = mn;
        float sum = 0.0f;
#pragma unroll
        for (int i = 0; i < NB; i++) {
#pragma unroll
            for (int e = 0; e < 2; e++) {
                float &x = s[4 * i + 2 * hr + e];
                const float arg = FOLD ? fmaf(x, c, -base) : x - base;
                x = NOEXP ? arg : exp2f(arg);
                sum += x;
            }
        }
        l[hr] = keep ? l[hr] + sum : l[hr] * alpha[hr] + sum;
    }
    return !keep;
}

// whether the key tile at c0 needs masks for a warpgroup's rows wr_lo .. wr_hi (causal, past the sequence's L, the
// window W)
__device__ __forceinline__ bool wga_need_mask(int c0, int wr_lo, int wr_hi, int L, int W) {
    return c0 + FWD_WG_BN - 1 > wr_lo || c0 + FWD_WG_BN > L || (W > 0 && wr_hi - c0 >= W);
}

// wga_softmax on the key tile at c0 for a warpgroup's rows wr_lo .. wr_hi, with the masks where it needs them
template <bool NOEXP = false, bool FOLD = false, bool LAZY = false>
__device__ __forceinline__ bool wga_softmax_tile(float s[64], float m[2], float l[2], float alpha[2], const FwdArgs &p,
                                                 int c0, int wr_lo, int wr_hi, int ra, int L, int tq) {
    if (wga_need_mask(c0, wr_lo, wr_hi, L, p.window))
        return wga_softmax<true, NOEXP, FOLD, LAZY>(s, m, l, alpha, p, c0, ra, L, tq);
    return wga_softmax<false, NOEXP, FOLD, LAZY>(s, m, l, alpha, p, c0, ra, L, tq);
}

// what the output holds so far, times alpha (each thread's rows ra, ra + 8)
__device__ __forceinline__ void wga_rescale(float o[64], const float alpha[2]) {
#pragma unroll
    for (int i = 0; i < 16; i++) {
        o[4 * i] *= alpha[0], o[4 * i + 1] *= alpha[0];
        o[4 * i + 2] *= alpha[1], o[4 * i + 3] *= alpha[1];
    }
}

// the probabilities as bf16 A fragments of the P V wgmmas (wgmma's register A layout is mma.sync's)
__device__ __forceinline__ void wga_pack_p(const float s[64], uint32_t a[FWD_WG_BN / 16][4]) {
#pragma unroll
    for (int kk = 0; kk < FWD_WG_BN / 16; kk++) {
        a[kk][0] = pack_bf16(s[8 * kk + 0], s[8 * kk + 1]);
        a[kk][1] = pack_bf16(s[8 * kk + 2], s[8 * kk + 3]);
        a[kk][2] = pack_bf16(s[8 * kk + 4], s[8 * kk + 5]);
        a[kk][3] = pack_bf16(s[8 * kk + 6], s[8 * kk + 7]);
    }
}

// this thread's rows ra and ra + 8 of the output (divided by their sums) and their log-sum-exp
__device__ __forceinline__ void wga_store_o(const FwdArgs &p, const float o[64], const float m[2], const float l[2],
                                            int ra, int L, int t0, int h, int tq) {
    constexpr int D = 128, ND = D / 8;
    const size_t ldq = (size_t)p.H * D;
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

// PP (the tuning knob attn_fwd_pingpong): the warpgroups take turns issuing their wgmmas, so that one's
// softmax runs while the tensor cores work on the other's products (FlashAttention-3's ping-pong). Warpgroup w
// waits on barrier 1 + w before each batch of wgmmas (S, then P V) and, once issued, arrives on the other's;
// warpgroup 1 arrives once before the loop so that warpgroup 0 goes first, and warpgroup 0 takes that last
// arrival after it. Both do every barrier of a tile whether or not its keys are masked out for their rows, so
// the turns stay matched. The same products in the same order: the same bits.
template <bool PP>
__global__ void __launch_bounds__(FWD_WG_THREADS, 1) fwd_wg_kernel(const FwdArgs p) {
    constexpr int D = 128, BN = FWD_WG_BN;
    extern __shared__ __align__(1024) unsigned char wga_smem[];
    unsigned char *sQ = wga_smem + ((1024 - (__cvta_generic_to_shared(wga_smem) & 1023)) & 1023);
    unsigned char *sK = sQ + FWD_WG_TILE, *sV = sK + 2 * FWD_WG_TILE;  // [2] tiles each
    const uint32_t aQ = (uint32_t)__cvta_generic_to_shared(sQ), aK = aQ + FWD_WG_TILE, aV = aK + 2 * FWD_WG_TILE;

    const AttnTile tile = p.tiles[p.tile_major ? blockIdx.y : blockIdx.x];
    const int h = p.tile_major ? blockIdx.x : blockIdx.y, kvh = h / p.group;
    const int t0 = p.cu[tile.seq], L = p.cu[tile.seq + 1] - t0, r0 = tile.start;
    const int W = p.window;
    const int wgi = wg_index(), warp = wg_warp(), lane = threadIdx.x & 31, g = lane / 4,
              tq = lane % 4;

    int kb, nkt;
    wga_key_tiles(r0, L, W, &kb, &nkt);

    const size_t ldq = (size_t)p.H * D, ldk = (size_t)p.KV * D;
    const __nv_bfloat16 *gq = p.q + (size_t)(t0 + r0) * ldq + (size_t)h * D;
    const __nv_bfloat16 *gk = p.k + (size_t)t0 * ldk + (size_t)kvh * D;
    const __nv_bfloat16 *gv = p.v + (size_t)t0 * ldk + (size_t)kvh * D;

    wga_load<128>(sQ, gq, ldq, L - r0);
    wga_load<128>(sK, gk + (size_t)kb * ldk, ldk, L - kb);
    wga_load<128>(sV, gv + (size_t)kb * ldk, ldk, L - kb);
    cp_async_commit();

    // this thread's rows: ra (accumulators e < 2) and ra + 8 (e >= 2)
    float o[64];
#pragma unroll
    for (int i = 0; i < 64; i++) o[i] = 0.0f;
    float m[2] = {-INFINITY, -INFINITY}, l[2] = {0.0f, 0.0f};
    const int wr_lo = r0 + wgi * 64, wr_hi = wr_lo + 63, ra = wr_lo + warp * 16 + g;

    if (PP && wgi == 1) wga_bar_arrive(1);
    for (int j = 0; j < nkt; j++) {
        const int buf = j & 1, c0 = kb + j * BN;
        if (j + 1 < nkt) {
            const int cn = c0 + BN;
            wga_load<128>(sK + (buf ^ 1) * FWD_WG_TILE, gk + (size_t)cn * ldk, ldk, L - cn);
            wga_load<128>(sV + (buf ^ 1) * FWD_WG_TILE, gv + (size_t)cn * ldk, ldk, L - cn);
            cp_async_commit();
            cp_async_wait<1>();
        } else {
            cp_async_wait<0>();
        }
        wg_fence_proxy();
        __syncthreads();
        // (with PP, every warpgroup issues every product: a skip would put the wgmmas in a divergent path, which
        // ptxas serializes; the softmax of a tile its rows cannot see leaves everything as it was)
        const bool skip = !PP && (c0 > wr_hi || (W > 0 && wr_lo - (c0 + BN - 1) >= W));
        float s[64];
        uint32_t a[BN / 16][4];
        if (PP) wga_bar_sync(1 + wgi);
        if (!skip) wga_issue_s(s, aQ, aK + buf * FWD_WG_TILE, wgi);
        if (PP) wga_bar_arrive(2 - wgi);
        if (!skip) {
            wg_wait<0>();
            wg_fence_regs<64>(s);
            float alpha[2];
            wga_softmax_tile(s, m, l, alpha, p, c0, wr_lo, wr_hi, ra, L, tq);
            wga_rescale(o, alpha);
            wga_pack_p(s, a);
        }
        if (PP) wga_bar_sync(1 + wgi);
        if (!skip) wga_issue_pv(o, a, aV + buf * FWD_WG_TILE);
        if (PP) wga_bar_arrive(2 - wgi);
        if (!skip) {
            wg_wait<0>();
            wg_fence_regs<64>(o);
            wg_fence_frags<BN / 16>(a);
        }
        __syncthreads();  // the next prefetch overwrites this buffer
    }
    if (PP && wgi == 0) wga_bar_sync(1);  // warpgroup 1's last arrival

    wga_store_o(p, o, m, l, ra, L, t0, h, tq);
}

// The tuning knob attn_fwd_tma: the ping-pong and FlashAttention-3's intra-warpgroup overlap together (each
// warpgroup issues tile j's Q K^T with tile j-1's P V and runs tile j's softmax beside them; the overlap alone,
// with cp.async loads and a __syncthreads a step, ran at 349 TFLOP/s against the ping-pong's 366 on an H100 and
// was removed), with Q, K and V brought in by the TMA (2-d tensor maps over [T, heads x 128], boxes of 128 rows
// x 64 columns, 128-byte swizzle: the layout wga_load writes) so that no warpgroup waits for the other at a
// __syncthreads. Every stage completes on a "full" mbarrier (transaction bytes) and is handed back on an "empty" one
// that all 256 threads of the two computing warpgroups arrive at once their wgmmas that read it are done: K tiles
// (read by Q K^T) and V tiles (read by P V one step later) in rings of three. Each step a warpgroup waits for its
// turn (named barriers, as fwd_wg_kernel<true>), issues tile j's Q K^T and tile j-1's P V, hands the turn over,
// and runs tile j's softmax beside the products. Rows past a sequence's end load the next sequence's rows
// (the TMA zero-fills only past the tensor): the mask gives them zero probability, so their values add
// nothing; the same products and sums as fwd_wg_kernel: the same bits.
constexpr int FWD_WG_TMA_SMEM = 7 * FWD_WG_TILE + 1024;  // Q, 3 K, 3 V; alignment

// The loads are in a warpgroup of their own (FlashAttention-3's warp specialization): warpgroup 0 gives its
// registers back (setmaxnreg, 24) and its first thread issues Q, then K of tile j + 1 and V of tile j as their
// stages come free; warpgroups 1 and 2 take 240 registers and run the ping-pong and the overlap above (named
// barriers 1 and 2 between the two of them, the empty mbarriers counting their 256 threads), so that no consumer
// thread waits on an empty barrier to issue loads (548 against 491 TFLOP/s at T 16384 H 64 and 455 against 387 at
// T 4096 H 8 on an H100, when thread 0 of warpgroup 0 issued them between its own products).
constexpr int FWD_WS_THREADS = 384;

template <bool FOLD, bool LAZY, bool QREG>  // wga_softmax's FOLD and LAZY; wga_load_q's QREG
__global__ void __launch_bounds__(FWD_WS_THREADS, 1)
    fwd_wg_tma_kernel(const FwdArgs p, const __grid_constant__ WgtMap mq, const __grid_constant__ WgtMap mk,
                      const __grid_constant__ WgtMap mv) {
    constexpr int D = 128, BN = FWD_WG_BN, HALF = FWD_WG_TILE / 2;
    extern __shared__ __align__(1024) unsigned char wga_smem[];
    __shared__ __align__(8) uint64_t bars[13];  // Q; K full, K empty, V full, V empty [3] each
    unsigned char *sQ = wga_smem + ((1024 - (__cvta_generic_to_shared(wga_smem) & 1023)) & 1023);
    const uint32_t aQ = (uint32_t)__cvta_generic_to_shared(sQ), aK = aQ + FWD_WG_TILE, aV = aK + 3 * FWD_WG_TILE;
    const uint32_t qbar = (uint32_t)__cvta_generic_to_shared(bars);
    auto kfull = [&](int st) { return qbar + 8 * (1 + st); };
    auto kempty = [&](int st) { return qbar + 8 * (4 + st); };
    auto vfull = [&](int st) { return qbar + 8 * (7 + st); };
    auto vempty = [&](int st) { return qbar + 8 * (10 + st); };

    const AttnTile tile = p.tiles[p.tile_major ? blockIdx.y : blockIdx.x];
    const int h = p.tile_major ? blockIdx.x : blockIdx.y, kvh = h / p.group;
    const int t0 = p.cu[tile.seq], L = p.cu[tile.seq + 1] - t0, r0 = tile.start;
    const int W = p.window;
    const int wgi = wg_index() - 1, warp = wg_warp(), lane = threadIdx.x & 31, g = lane / 4,
              tq = lane % 4;  // wgi: the consumer warpgroup (-1: the producer's)

    int kb, nkt;
    wga_key_tiles(r0, L, W, &kb, &nkt);

    if (threadIdx.x == 0) {
        wgt_mbar_init(qbar, 1);
        for (int st = 0; st < 3; st++) {
            wgt_mbar_init(kfull(st), 1), wgt_mbar_init(vfull(st), 1);
            wgt_mbar_init(kempty(st), FWD_WG_THREADS), wgt_mbar_init(vempty(st), FWD_WG_THREADS);
        }
        wgt_mbar_init_fence();
    }
    __syncthreads();
    auto load_kv = [&](const WgtMap &map, uint32_t base, uint32_t bar, int j) {  // tile j, both halves
        if (ATTN_ABLATE(p, 128) && j >= 3) {
            wgt_mbar_arrive(bar);
            return;
        }
        wgt_mbar_expect_tx(bar, FWD_WG_TILE);
        wgt_load_2d(base, &map, bar, kvh * D, t0 + kb + j * BN);
        wgt_load_2d(base + HALF, &map, bar, kvh * D + 64, t0 + kb + j * BN);
    };
    if (wgi < 0) {  // the producer: Q, then K of tile j + 1 and V of tile j for j = -1, 0, 1, ...
        wg_setmaxnreg_dec<24>();
        if (threadIdx.x != 0) return;
        wgt_mbar_expect_tx(qbar, FWD_WG_TILE);
        wgt_load_2d(aQ, &mq, qbar, h * D, t0 + r0);
        wgt_load_2d(aQ + HALF, &mq, qbar, h * D + 64, t0 + r0);
        load_kv(mk, aK, kfull(0), 0);
        for (int j = 0; j < nkt; j++) {
            if (j + 1 < nkt) {  // its stage held K of tile j - 2, done with at the consumers' step j - 2
                const int st = (j + 1) % 3;
                if (j + 1 >= 3) wgt_mbar_wait(kempty(st), ((j + 1) / 3 - 1) & 1);
                load_kv(mk, aK + st * FWD_WG_TILE, kfull(st), j + 1);
            }
            const int st = j % 3;  // V of tile j - 3, done with at step j - 2
            if (j >= 3) wgt_mbar_wait(vempty(st), (j / 3 - 1) & 1);
            load_kv(mv, aV + st * FWD_WG_TILE, vfull(st), j);
        }
        return;
    }
    wg_setmaxnreg_inc<240>();

    float o[64];
#pragma unroll
    for (int i = 0; i < 64; i++) o[i] = 0.0f;
    float m[2] = {-INFINITY, -INFINITY}, l[2] = {0.0f, 0.0f};
    const int wr_lo = r0 + wgi * 64, wr_hi = wr_lo + 63, ra = wr_lo + warp * 16 + g;

    uint32_t a[BN / 16][4];  // the probabilities of the previous tile, waiting for their P V
    uint32_t qf[8][4];  // (QREG)
    auto issue_s = [&](float s[64], int st) {
        if (QREG) wga_issue_s_rs(s, qf, aK + st * FWD_WG_TILE);
        else wga_issue_s(s, aQ, aK + st * FWD_WG_TILE, wgi);
    };
    auto issue_pv = [&](int st) { wga_issue_pv(o, a, aV + st * FWD_WG_TILE); };
    auto softmax = [&](float s[64], float alpha[2], int c0) {  // (without its exponentials: ATTN_ABLATE's bit 32)
        if (ATTN_ABLATE(p, 32)) return wga_softmax<true, true, FOLD, LAZY>(s, m, l, alpha, p, c0, ra, L, tq);
        return wga_softmax_tile<false, FOLD, LAZY>(s, m, l, alpha, p, c0, wr_lo, wr_hi, ra, L, tq);
    };

    wgt_mbar_wait(qbar, 0);
    if (QREG) wga_load_q(qf, sQ, wgi, warp, lane);
    if (wgi == 1) wga_bar_arrive(1);  // warpgroup 0 goes first
    // tile 0: its scores and probabilities
    wgt_mbar_wait(kfull(0), 0);
    {
        float s[64], alpha[2];
        wga_bar_sync(1 + wgi);
        issue_s(s, 0);
        wga_bar_arrive(2 - wgi);
        wg_wait<0>();
        wg_fence_regs<64>(s);
        wgt_mbar_arrive(kempty(0));
        softmax(s, alpha, kb);  // (the output is still zero)
        wga_pack_p(s, a);
    }
    // tile j's scores beside tile j - 1's P V
    for (int j = 1; j < nkt; j++) {
        const int st = j % 3, pst = (j - 1) % 3;
        wgt_mbar_wait(kfull(st), (j / 3) & 1);
        wgt_mbar_wait(vfull(pst), ((j - 1) / 3) & 1);
        float s[64], alpha[2];
        wga_bar_sync(1 + wgi);
        issue_s(s, st);
        issue_pv(pst);
        wga_bar_arrive(2 - wgi);
        wg_wait<1>();  // S (committed first), not P V
        wg_fence_regs<64>(s);
        wgt_mbar_arrive(kempty(st));
        const bool rescale = softmax(s, alpha, kb + j * BN);
        wg_wait<0>();
        wg_fence_regs<64>(o);
        wg_fence_frags<BN / 16>(a);
        wgt_mbar_arrive(vempty(pst));
        if (rescale && !ATTN_ABLATE(p, 256)) wga_rescale(o, alpha);
        wga_pack_p(s, a);
    }
    wgt_mbar_wait(vfull((nkt - 1) % 3), ((nkt - 1) / 3) & 1);
    wga_bar_sync(1 + wgi);
    issue_pv((nkt - 1) % 3);
    wga_bar_arrive(2 - wgi);
    wg_wait<0>();
    wg_fence_regs<64>(o);
    wg_fence_frags<BN / 16>(a);
    if (wgi == 0) wga_bar_sync(1);  // warpgroup 1's last arrival
    if (FOLD) m[0] *= p.scale_log2, m[1] *= p.scale_log2;  // (an empty row's -inf stays -inf)
    if (!ATTN_ABLATE(p, 64)) wga_store_o(p, o, m, l, ra, L, t0, h, tq);
}

// The backward (FlashAttention-2's algorithm 2, as attention_bwd.cuh's bwd_kernel, whose arguments and
// outputs it shares): one CTA per (key tile of BWD_WG_BN = 128 keys, kv head, split of the group's query heads)
// whose two computing warpgroups each own 64 keys of the tile and walk the query tiles of 64 rows that see them.
// Per query tile: S^T = K Q^T and dP^T = V dO^T (m64n64, K, V, Q, dO K-major), P^T and dS^T = P^T o (dP^T - delta)
// in registers, then dV += P^T dO and dK += dS^T Q with the probabilities as register A fragments (dO, Q
// MN-major), dS^T to shared memory, and dQ = dS K (dS^T and K MN-major), each warpgroup 64 of dQ's 128 columns,
// added to the fp32 buffer [T, H, D]. The helpers below are those steps; two kernels schedule them:
//   bwd_wg_kernel: 256 threads that load too (cp.async), Q, dO, lse and delta NB tiles deep. OVL
//     (backend_tuning_t.attn_bwd_overlap): dQ's products are issued first, after the barrier that publishes
//     dS^T, then dV's and dK's, and dQ's atomics run while dV's and dK's products are on the tensor cores, and
//     with Q, dO, lse and delta three tiles deep and dS^T two no barrier ends a query tile, so the warpgroups
//     drift apart by up to a phase (the same products and sums: the same bits); else dV and dK are issued before
//     the barrier, everything is waited for before the atomics, and a barrier ends each tile.
//   bwd_wg_ws_kernel: OVL's order with the loads and dQ's additions in a warpgroup of their own (below), but each
//     tile's dV products issued before dS^T is computed.
constexpr int BWD_WG_BN = 128, BWD_WG_BM = 64;
constexpr int BWD_WG_KV = 128 * 128 * 2, BWD_WG_Q = 64 * 128 * 2;  // bytes of a K (V) tile, a Q (dO) tile
// K, V, Q[NB], dO[NB], dS^T[NS] (128 keys x 64 queries each), lse and delta [NB][64], alignment: NB = 2, NS = 1,
// or with OVL 3 and 2 (so that no barrier ends a query tile: the buffers a tile fills were last read two tiles
// before, which both warpgroups finished before either passed the barriers of the tile between)
constexpr int bwd_wg_smem(int nb, int ns) { return 2 * BWD_WG_KV + 2 * nb * BWD_WG_Q + ns * 128 * 128 + 2 * nb * 64 * 4 + 1024; }
constexpr int BWD_WG_SMEM = bwd_wg_smem(2, 1), BWD_WG_SMEM_OVL = bwd_wg_smem(3, 2);

// S^T (pt) and dP^T (ds) of warpgroup wgi's 64 keys (K, V at aK, aV) and the 64 queries of the Q and dO tiles at
// q_a, o_a: sixteen m64n64k16 wgmmas, not waited for; TWO: committed as two groups (S^T's, then dP^T's), else
// interleaved in one
template <bool TWO>
__device__ __forceinline__ void wgb_scores_issue(float pt[32], float ds[32], uint32_t aK, uint32_t aV, uint32_t q_a,
                                                 uint32_t o_a, int wgi) {
#pragma unroll
    for (int i = 0; i < 32; i++) pt[i] = ds[i] = 0.0f;
    wg_fence_regs<32>(pt);
    wg_fence_regs<32>(ds);
    wg_fence();
    auto kh = [](int ks) { return (uint32_t)((ks >> 2) * 16384 + (ks & 3) * 32); };
    auto qh = [](int ks) { return (uint32_t)((ks >> 2) * 8192 + (ks & 3) * 32); };
    const uint64_t dk = wg_desc(aK + wgi * 8192, 16, 1024), dv = wg_desc(aV + wgi * 8192, 16, 1024);
    const uint64_t dq = wg_desc(q_a, 16, 1024), dout = wg_desc(o_a, 16, 1024);
#pragma unroll
    for (int ks = 0; ks < 128 / 16; ks++) {
        wg_mma_ss_64<0, 0>(pt, wg_desc_at(dk, kh(ks)), wg_desc_at(dq, qh(ks)));
        if (!TWO) wg_mma_ss_64<0, 0>(ds, wg_desc_at(dv, kh(ks)), wg_desc_at(dout, qh(ks)));
    }
    if (TWO) {
        wg_commit();
#pragma unroll
        for (int ks = 0; ks < 128 / 16; ks++)
            wg_mma_ss_64<0, 0>(ds, wg_desc_at(dv, kh(ks)), wg_desc_at(dout, qh(ks)));
    }
    wg_commit();
}

// dS^T = P^T (dP^T - delta) (d_s: the tile's delta) as bf16 A fragments sa
__device__ __forceinline__ void wgb_probs_ds(const float pt[32], float ds[32], uint32_t sa[4][4], const float *d_s,
                                             int tq) {
#pragma unroll
    for (int i = 0; i < BWD_WG_BM / 8; i++)
#pragma unroll
        for (int e = 0; e < 4; e++) ds[4 * i + e] = pt[4 * i + e] * (ds[4 * i + e] - d_s[i * 8 + 2 * tq + (e % 2)]);
#pragma unroll
    for (int kk = 0; kk < BWD_WG_BM / 16; kk++)
#pragma unroll
        for (int j = 0; j < 4; j++) sa[kk][j] = pack_bf16(ds[8 * kk + 2 * j], ds[8 * kk + 2 * j + 1]);
}

// acc += X^T T for X's bf16 A fragments x and the Q or dO tile T at t_a (MN-major): four wgmmas, committed as a
// group. dV += P^T dO is wgb_issue_acc(dv, pa, o_a), dK += dS^T Q wgb_issue_acc(dk, sa, q_a).
__device__ __forceinline__ void wgb_issue_acc(float acc[64], uint32_t x[4][4], uint32_t t_a) {
    wg_fence_regs<64>(acc);
    wg_fence();
    const uint64_t dt = wg_desc(t_a, 8192, 1024);
#pragma unroll
    for (int kk = 0; kk < BWD_WG_BM / 16; kk++) wg_mma_rs_128<1>(acc, x[kk], wg_desc_at(dt, kk * 2048));
    wg_commit();
}

// wgb_scores_issue<false>, waited for
__device__ __forceinline__ void wgb_scores(float pt[32], float ds[32], uint32_t aK, uint32_t aV, uint32_t q_a,
                                           uint32_t o_a, int wgi) {
    wgb_scores_issue<false>(pt, ds, aK, aV, q_a, o_a, wgi);
    wg_wait<0>();
    wg_fence_regs<32>(pt);
    wg_fence_regs<32>(ds);
}

// P^T and, with DS, dS^T from the scores (this thread's keys kr, kr + 8; query tile m0; l_s, d_s: the tile's lse
// log2 e and delta), as bf16 A fragments pa and sa (without DS: P^T alone, and pt keeps it in fp32)
// (MASK: a template too, where the caller branches on need_mask, so that the tiles without masks run none of the
// comparisons and branches of each element)
template <bool DS, bool NOEXP = false, bool MASK = true>  // NOEXP: ATTN_ABLATE's bit 4 (the exponentials left out)
__device__ __forceinline__ void wgb_probs(float pt[32], float ds[32], uint32_t pa[4][4], uint32_t sa[4][4],
                                          const BwdArgs &p, const float *l_s, const float *d_s, int kr, int m0, int L,
                                          bool need_mask, int tq) {
    const int W = p.window;
#pragma unroll
    for (int i = 0; i < BWD_WG_BM / 8; i++)
#pragma unroll
        for (int e = 0; e < 4; e++) {
            const int ql = i * 8 + 2 * tq + (e % 2);
            float x = NOEXP ? pt[4 * i + e] * p.scale_log2 - l_s[ql] : exp2f(pt[4 * i + e] * p.scale_log2 - l_s[ql]);
            if (MASK && need_mask) {
                const int c = kr + (e / 2) * 8, r = m0 + ql;
                if (r >= L || c > r || (W > 0 && r - c >= W)) x = 0.0f;
            }
            pt[4 * i + e] = x;
            if (DS) ds[4 * i + e] = x * (ds[4 * i + e] - d_s[ql]);
        }
#pragma unroll
    for (int kk = 0; kk < BWD_WG_BM / 16; kk++) {
        pa[kk][0] = pack_bf16(pt[8 * kk + 0], pt[8 * kk + 1]);
        pa[kk][1] = pack_bf16(pt[8 * kk + 2], pt[8 * kk + 3]);
        pa[kk][2] = pack_bf16(pt[8 * kk + 4], pt[8 * kk + 5]);
        pa[kk][3] = pack_bf16(pt[8 * kk + 6], pt[8 * kk + 7]);
        if (DS) {
            sa[kk][0] = pack_bf16(ds[8 * kk + 0], ds[8 * kk + 1]);
            sa[kk][1] = pack_bf16(ds[8 * kk + 2], ds[8 * kk + 3]);
            sa[kk][2] = pack_bf16(ds[8 * kk + 4], ds[8 * kk + 5]);
            sa[kk][3] = pack_bf16(ds[8 * kk + 6], ds[8 * kk + 7]);
        }
    }
}

// dS^T rows of this thread (rows srow, srow + 8 of the tile's 128 keys; queries 8 kk2 + 2 tq ..) into the
// swizzled tile sS
__device__ __forceinline__ void wgb_store_ds(unsigned char *sS, const uint32_t sa[4][4], int srow, int tq) {
#pragma unroll
    for (int kk = 0; kk < BWD_WG_BM / 16; kk++)
#pragma unroll
        for (int hh = 0; hh < 2; hh++) {  // query chunk 2 kk + hh: sa[kk][2 hh] row g, sa[kk][2 hh + 1] row g+8
            const int ch = 2 * kk + hh;
            *reinterpret_cast<uint32_t *>(sS + srow * 128 + 16 * (ch ^ (srow & 7)) + tq * 4) = sa[kk][2 * hh];
            *reinterpret_cast<uint32_t *>(sS + (srow + 8) * 128 + 16 * (ch ^ ((srow + 8) & 7)) + tq * 4) =
                sa[kk][2 * hh + 1];
        }
}

// dV += P^T dO and dK += dS^T Q (the Q and dO tiles at q_a, o_a): eight wgmmas each, committed as one group
__device__ __forceinline__ void wgb_issue_dvdk(float dv[64], float dk[64], uint32_t pa[4][4], uint32_t sa[4][4],
                                               uint32_t q_a, uint32_t o_a) {
    wg_fence_regs<64>(dv);
    wg_fence_regs<64>(dk);
    wg_fence();
    const uint64_t dout = wg_desc(o_a, 8192, 1024), dq = wg_desc(q_a, 8192, 1024);
#pragma unroll
    for (int kk = 0; kk < BWD_WG_BM / 16; kk++) {
        wg_mma_rs_128<1>(dv, pa[kk], wg_desc_at(dout, kk * 2048));
        wg_mma_rs_128<1>(dk, sa[kk], wg_desc_at(dq, kk * 2048));
    }
    wg_commit();
}

// dQ[:, 64 wgi ..] of the tile's 64 queries = dS K over the tile's 128 keys (dS^T at aS): eight wgmmas, committed
__device__ __forceinline__ void wgb_issue_dq(float dq[32], uint32_t aS, uint32_t aK, int wgi) {
#pragma unroll
    for (int i = 0; i < 32; i++) dq[i] = 0.0f;
    wg_fence_regs<32>(dq);
    wg_fence();
    const uint64_t ds = wg_desc(aS, 8192, 1024), dk = wg_desc(aK + wgi * 16384, 16384, 1024);
#pragma unroll
    for (int ks = 0; ks < BWD_WG_BN / 16; ks++)
        wg_mma_ss_64<1, 1>(dq, wg_desc_at(ds, ks * 2048), wg_desc_at(dk, ks * 2048));
    wg_commit();
}

__device__ __forceinline__ void wgb_wait_dvdk(float dv[64], float dk[64], uint32_t pa[4][4], uint32_t sa[4][4]) {
    wg_wait<0>();
    wg_fence_regs<64>(dv);
    wg_fence_regs<64>(dk);
    wg_fence_frags<BWD_WG_BM / 16>(pa);
    wg_fence_frags<BWD_WG_BM / 16>(sa);
}

template <bool OVL>
__global__ void __launch_bounds__(FWD_WG_THREADS, 1) bwd_wg_kernel(const BwdArgs p) {
    constexpr int D = 128, NB = OVL ? 3 : 2, NS = OVL ? 2 : 1;
    extern __shared__ __align__(1024) unsigned char wgb_smem[];
    unsigned char *sK = wgb_smem + ((1024 - (__cvta_generic_to_shared(wgb_smem) & 1023)) & 1023);
    unsigned char *sV = sK + BWD_WG_KV, *sQ = sV + BWD_WG_KV, *sO = sQ + NB * BWD_WG_Q, *sS0 = sO + NB * BWD_WG_Q;
    float *sL = reinterpret_cast<float *>(sS0 + NS * 128 * 128), *sD = sL + NB * BWD_WG_BM;
    const uint32_t aK = (uint32_t)__cvta_generic_to_shared(sK), aV = aK + BWD_WG_KV, aQ = aV + BWD_WG_KV,
                   aO = aQ + NB * BWD_WG_Q, aS0 = aO + NB * BWD_WG_Q;

    const AttnTile tile = p.tiles[p.tile_major ? blockIdx.y : blockIdx.x];
    const int kvh = p.tile_major ? blockIdx.x / p.nsplit : blockIdx.y;
    const int t0 = p.cu[tile.seq], L = p.cu[tile.seq + 1] - t0, n0 = tile.start;
    const int W = p.window;
    const int wgi = wg_index(), warp = wg_warp(), lane = threadIdx.x & 31, g = lane / 4,
              tq = lane % 4;

    const int mb = n0 - n0 % BWD_WG_BM;
    const int last_key = min(L, n0 + BWD_WG_BN) - 1;
    const int me = W > 0 ? min(L, last_key + W) : L;
    const int h_lo = kvh * p.group + (p.tile_major ? blockIdx.x % p.nsplit : blockIdx.z) * p.heads_per_split;
    const int nh = min(p.heads_per_split, kvh * p.group + p.group - h_lo);
    const int nq = (me - mb + BWD_WG_BM - 1) / BWD_WG_BM, nit = nh > 0 ? nq * nh : 0;

    const size_t ldq = (size_t)p.H * D, ldk = (size_t)p.KV * D;
    wga_load<128>(sK, p.k + (size_t)(t0 + n0) * ldk + (size_t)kvh * D, ldk, L - n0);
    wga_load<128>(sV, p.v + (size_t)(t0 + n0) * ldk + (size_t)kvh * D, ldk, L - n0);

    auto stage = [&](int it, int b) {
        const int h = h_lo + it / nq, m0 = mb + (it % nq) * BWD_WG_BM;
        const size_t off = (size_t)(t0 + m0) * ldq + (size_t)h * D;
        wga_load<64>(sQ + b * BWD_WG_Q, p.q + off, ldq, L - m0);
        wga_load<64>(sO + b * BWD_WG_Q, p.dout + off, ldq, L - m0);
        for (int i = threadIdx.x; i < 2 * BWD_WG_BM; i += FWD_WG_THREADS) {
            const int r = i % BWD_WG_BM;
            const bool ok = m0 + r < L;
            const size_t row = (size_t)(t0 + m0 + r) * p.H + h;
            if (i < BWD_WG_BM) sL[b * BWD_WG_BM + r] = ok ? p.lse[row] * LOG2E : INFINITY;
            else sD[b * BWD_WG_BM + r] = ok ? p.delta[row] : 0.0f;
        }
    };
    if (nit > 0) stage(0, 0);
    cp_async_commit();

    float dk[64], dv[64];
#pragma unroll
    for (int i = 0; i < 64; i++) dk[i] = dv[i] = 0.0f;
    const int kr = n0 + wgi * 64 + warp * 16 + g;  // this thread's keys kr and kr + 8
    const int srow = wgi * 64 + warp * 16 + g;      // their rows of dS^T

    for (int it = 0; it < nit; it++) {
        const int buf = it % NB;
        const int h = h_lo + it / nq, m0 = mb + (it % nq) * BWD_WG_BM;
        unsigned char *sS = sS0 + (it % NS) * 128 * 128;  // this tile's dS^T
        const uint32_t aS = aS0 + (it % NS) * 128 * 128;
        if (it + 1 < nit) {
            stage(it + 1, (it + 1) % NB);
            cp_async_commit();
            cp_async_wait<1>();
        } else {
            cp_async_wait<0>();
        }
        wg_fence_proxy();
        __syncthreads();
        const uint32_t q_a = aQ + buf * BWD_WG_Q, o_a = aO + buf * BWD_WG_Q;
        const bool need_mask =
            m0 < n0 + BWD_WG_BN - 1 || m0 + BWD_WG_BM > L || (W > 0 && m0 + BWD_WG_BM - 1 - n0 >= W);

        float pt[32], ds[32];
        wgb_scores(pt, ds, aK, aV, q_a, o_a, wgi);
        uint32_t pa[BWD_WG_BM / 16][4], sa[BWD_WG_BM / 16][4];
        wgb_probs<true>(pt, ds, pa, sa, p, sL + buf * BWD_WG_BM, sD + buf * BWD_WG_BM, kr, m0, L, need_mask, tq);
        wgb_store_ds(sS, sa, srow, tq);
        if (!OVL) wgb_issue_dvdk(dv, dk, pa, sa, q_a, o_a);
        wg_fence_proxy();  // the dS^T stores, for the dQ wgmmas of both warpgroups
        __syncthreads();
        float dq[32];
        wgb_issue_dq(dq, aS, aK, wgi);
        if (OVL) {
            wgb_issue_dvdk(dv, dk, pa, sa, q_a, o_a);
            wg_wait<1>();  // dQ's group; dV's and dK's go on
            wg_fence_regs<32>(dq);
        } else {
            wgb_wait_dvdk(dv, dk, pa, sa);
            wg_fence_regs<32>(dq);
        }
        {
            const int qa = m0 + warp * 16 + g;
            float *dqa = p.dq_acc + (size_t)(t0 + qa) * ldq + (size_t)h * D + wgi * 64;
#pragma unroll
            for (int i = 0; i < 8; i++) {
                const int c = i * 8 + 2 * tq;
                if (qa < L) atomicAdd(reinterpret_cast<float2 *>(dqa + c), make_float2(dq[4 * i], dq[4 * i + 1]));
                if (qa + 8 < L)
                    atomicAdd(reinterpret_cast<float2 *>(dqa + 8 * ldq + c), make_float2(dq[4 * i + 2], dq[4 * i + 3]));
            }
        }
        if (OVL) wgb_wait_dvdk(dv, dk, pa, sa);
        if (!OVL) __syncthreads();  // the next stage overwrites this buffer and dS^T
    }

    bwd_store_dkdv<D>(p, dk, dv, kr, L, t0, kvh, tq);
}

// bwd_wg_ws_kernel: the backward with FlashAttention-3's warp specialization. Warpgroup 0 gives its registers back
// (setmaxnreg, 24) and only moves data: its warp 0 (one thread) brings K and V in once and Q and dO a query tile
// at a time through the TMA (tensor maps with boxes of 128 and 64 rows x 64 columns, the layout wga_load writes),
// warp 1 the tile's lse log2 e and delta, both into BWD_WS_NB stages that complete on a "full" mbarrier (the
// TMA's bytes and warp 1's 32 arrivals) and come back on an "empty" one at which the 256 computing threads
// arrive once dV's and dK's products have read them. Warpgroups 1 and 2 take 240 registers and run OVL's order
// without a __syncthreads, except that a warpgroup commits S^T's and dP^T's products as two groups, waits for
// S^T's alone, computes P^T and issues dV's products while dP^T's still run, then computes dS^T beside dV's
// products (400 against 383 TFLOP/s at T 16384, H 64 and 347 against 340 at T 4096, H 8 on an H100, when dV's
// products followed the barrier with dK's; a form that issued each tile's dQ products a tile later, so that no
// barrier joined the computing warpgroups, ran no faster: both removed, and so was that form with the forward's
// ping-pong added). Named barrier 1 (their 256 threads) publishes each tile's dS^T (two buffers, so one barrier a
// tile: a buffer was last read two tiles before, by products both waited for before that barrier of the tile between),
// and dQ goes to shared memory in fp32 instead of atomics, its rows 16 bytes apart more than their
// 256 (two wavefronts a warp's store, the fewest), one 64 x 64 block per computing warpgroup with its own pair of
// mbarriers: warp 2 + w of warpgroup 0 adds block w to the fp32 buffer, a bulk reduction (cp.reduce.async.bulk,
// 256 bytes a row, the rows past the sequence left out) per row, and hands the block back once the reductions
// have read it. Rows of a tile past its sequence load the next sequence's rows (the TMA zero-fills only past T):
// lse INFINITY and the mask give them zero probability, so they add nothing. The same products and sums in the
// same order as bwd_wg_kernel<true>, but dQ's fp32 additions of different key tiles meet in another order (as
// with atomics, an order that varies from run to run). On an H100, before the early dV: 386 against 341 TFLOP/s
// at T 16384, H 64, KV 8 and 336 against 279 at T 4096, H 8, KV 1 (bwd_wg_kernel<true>); with float2 atomics
// from the computing threads in place of the bulk reductions it ran at 357 and 321 (removed).
constexpr int BWD_WS_NB = 2, BWD_WS_DQ_LD = 64 * 4 + 16;  // stages; bytes a row of a dQ block
// TILED (the default; CISPO_ATTN_DQ_TILED=0 keeps the rows): dq_acc laid out by blocks, so that a computing
// warpgroup's dQ block of a tile goes out in one bulk reduction of 16 KiB in place of 64 of a row each (448
// against 398 TFLOP/s at T 16384, H 64, KV 8 on an H100; 373 against 347 at T 4096, H 8, KV 1). Each sequence's
// rows start at a multiple of 64 (p.pad); block (query tile b of the padded rows, head h, half w of the 128
// columns) is 64 x 64 floats at ((b H + h) 2 + w) 4096, row r's column c at r 64 + (c ^ 8 (r & 7)): the swizzle
// that spreads a warp's float2 stores over the banks (its rows r, r + 8 and columns 8 i + 2 tq: each half-warp's 16
// stores in distinct banks). The shared-memory block is the global one, byte for byte. dq_tiled_index gives an
// element's place.
__host__ __device__ __forceinline__ size_t dq_tiled_index(int pr, int h, int c, int H) {
    const int r = pr & 63, w = c >> 6, cc = c & 63;
    return (((size_t)(pr >> 6) * H + h) * 2 + w) * 4096 + r * 64 + (cc ^ ((r & 7) << 3));
}
constexpr int BWD_WS_SMEM = 2 * BWD_WG_KV + 2 * BWD_WS_NB * BWD_WG_Q + 2 * 128 * 128 + 2 * 64 * BWD_WS_DQ_LD +
                            2 * BWD_WS_NB * 64 * 4 + 1024;

__device__ __forceinline__ void wgb_reduce_add(float *dst, uint32_t src, uint32_t bytes) {
#ifdef WG_DEVICE
    asm volatile("cp.reduce.async.bulk.global.shared::cta.bulk_group.add.f32 [%0], [%1], %2;\n" ::"l"(dst), "r"(src),
                 "r"(bytes)
                 : "memory");
#else
    (void)dst, (void)src, (void)bytes;
#endif
}
__device__ __forceinline__ void wgb_bulk_commit() {
#ifdef WG_DEVICE
    asm volatile("cp.async.bulk.commit_group;\n" ::: "memory");
#endif
}
template <bool READ>
__device__ __forceinline__ void wgb_bulk_wait() {  // every committed group done (READ: done reading the source)
#ifdef WG_DEVICE
    if (READ) asm volatile("cp.async.bulk.wait_group.read 0;\n" ::: "memory");
    else asm volatile("cp.async.bulk.wait_group 0;\n" ::: "memory");
#endif
}

// bwd_wg_ws_kernel's mbarriers, 8 bytes each from shared address base: K and V (kv); the stages' full and empty
// [BWD_WS_NB]; dQ full and dQ empty [computing warpgroup]. WS_BARS: how many.
constexpr int WS_BARS = 1 + 4 * 2;
struct WsBars {
    uint32_t base;
    __device__ uint32_t kv() const { return base; }
    __device__ uint32_t full(int b) const { return base + 8 * (1 + b); }
    __device__ uint32_t empty(int b) const { return base + 8 * (3 + b); }
    __device__ uint32_t dqfull(int w) const { return base + 8 * (5 + w); }
    __device__ uint32_t dqempty(int w) const { return base + 8 * (7 + w); }
};

// this thread's rows of its warpgroup's dQ block (sdq; rows 16 bytes longer than their 256) to warps 2 and 3 of
// warpgroup 0, once they have read the last one: tile it's dQ
// (TILED: sdq is the warpgroup's block, rr this thread's first row of it; else sdq is that row)
template <bool TILED>
__device__ __forceinline__ void wgb_put_dq(unsigned char *sdq, const float dq[32], WsBars bars, int it, int wgi,
                                           int tq, int rr) {
    if (it > 0) wgt_mbar_wait(bars.dqempty(wgi), (it - 1) & 1);
#pragma unroll
    for (int i = 0; i < 8; i++) {
        if (TILED) {  // rows rr and rr + 8 share their swizzle
            const int c = (i * 8 + 2 * tq) ^ ((rr & 7) << 3);
            *reinterpret_cast<float2 *>(sdq + (rr * 64 + c) * 4) = make_float2(dq[4 * i], dq[4 * i + 1]);
            *reinterpret_cast<float2 *>(sdq + ((rr + 8) * 64 + c) * 4) = make_float2(dq[4 * i + 2], dq[4 * i + 3]);
        } else {
            *reinterpret_cast<float2 *>(sdq + (i * 8 + 2 * tq) * 4) = make_float2(dq[4 * i], dq[4 * i + 1]);
            *reinterpret_cast<float2 *>(sdq + 8 * BWD_WS_DQ_LD + (i * 8 + 2 * tq) * 4) =
                make_float2(dq[4 * i + 2], dq[4 * i + 3]);
        }
    }
    wg_fence_proxy();  // the dQ stores, for the bulk reductions
    wgt_mbar_arrive(bars.dqfull(wgi));
}

template <bool TILED>
__global__ void __launch_bounds__(FWD_WS_THREADS, 1)
    bwd_wg_ws_kernel(const BwdArgs p, const __grid_constant__ WgtMap mq, const __grid_constant__ WgtMap mo,
                     const __grid_constant__ WgtMap mk, const __grid_constant__ WgtMap mv) {
    constexpr int D = 128, NB = BWD_WS_NB;
    extern __shared__ __align__(1024) unsigned char wgb_smem[];
    __shared__ __align__(8) uint64_t bars[WS_BARS];  // WsBars
    unsigned char *sK = wgb_smem + ((1024 - (__cvta_generic_to_shared(wgb_smem) & 1023)) & 1023);
    unsigned char *sS0 = sK + 2 * BWD_WG_KV + 2 * NB * BWD_WG_Q, *sQd = sS0 + 2 * 128 * 128;
    float *sL = reinterpret_cast<float *>(sQd + 2 * 64 * BWD_WS_DQ_LD), *sD = sL + NB * BWD_WG_BM;
    const uint32_t aK = (uint32_t)__cvta_generic_to_shared(sK), aV = aK + BWD_WG_KV, aQ = aV + BWD_WG_KV,
                   aO = aQ + NB * BWD_WG_Q, aS0 = aO + NB * BWD_WG_Q, aQd = aS0 + 2 * 128 * 128;
    const WsBars wb = {(uint32_t)__cvta_generic_to_shared(bars)};

    const AttnTile tile = p.tiles[p.tile_major ? blockIdx.y : blockIdx.x];
    const int kvh = p.tile_major ? blockIdx.x / p.nsplit : blockIdx.y;
    const int t0 = p.cu[tile.seq], L = p.cu[tile.seq + 1] - t0, n0 = tile.start;
    const int W = p.window;
    const int wgi = wg_index() - 1, warp = wg_warp(), lane = threadIdx.x & 31, g = lane / 4,
              tq = lane % 4;  // wgi: the computing warpgroup (-1: the loading one)

    const int mb = n0 - n0 % BWD_WG_BM;
    const int last_key = min(L, n0 + BWD_WG_BN) - 1;
    const int me = W > 0 ? min(L, last_key + W) : L;
    const int h_lo = kvh * p.group + (p.tile_major ? blockIdx.x % p.nsplit : blockIdx.z) * p.heads_per_split;
    const int nh = min(p.heads_per_split, kvh * p.group + p.group - h_lo);
    const int nq = (me - mb + BWD_WG_BM - 1) / BWD_WG_BM, nit = nh > 0 ? nq * nh : 0;
    const size_t ldq = (size_t)p.H * D;

    if (threadIdx.x == 0) {
        wgt_mbar_init(wb.kv(), 1);
        for (int b = 0; b < NB; b++) wgt_mbar_init(wb.full(b), 1 + 32), wgt_mbar_init(wb.empty(b), FWD_WG_THREADS);
        for (int w = 0; w < 2; w++) wgt_mbar_init(wb.dqfull(w), 128), wgt_mbar_init(wb.dqempty(w), 1);
        wgt_mbar_init_fence();
    }
    __syncthreads();

    if (wgi < 0) {
        wg_setmaxnreg_dec<24>();
        if (warp == 0) {  // K and V, then Q and dO of every query tile
            if (lane != 0 || nit == 0) return;
            wgt_mbar_expect_tx(wb.kv(), 2 * BWD_WG_KV);
            wgt_load_2d(aK, &mk, wb.kv(), kvh * D, t0 + n0);
            wgt_load_2d(aK + BWD_WG_KV / 2, &mk, wb.kv(), kvh * D + 64, t0 + n0);
            wgt_load_2d(aV, &mv, wb.kv(), kvh * D, t0 + n0);
            wgt_load_2d(aV + BWD_WG_KV / 2, &mv, wb.kv(), kvh * D + 64, t0 + n0);
            for (int it = 0; it < nit; it++) {
                const int b = it % NB, h = h_lo + it / nq, m0 = mb + (it % nq) * BWD_WG_BM;
                if (it >= NB) wgt_mbar_wait(wb.empty(b), (it / NB - 1) & 1);
                if (ATTN_ABLATE(p, 1024) && it >= NB) {
                    wgt_mbar_arrive(wb.full(b));
                    continue;
                }
                wgt_mbar_expect_tx(wb.full(b), 2 * BWD_WG_Q);
                const uint32_t q_a = aQ + b * BWD_WG_Q, o_a = aO + b * BWD_WG_Q;
                wgt_load_2d(q_a, &mq, wb.full(b), h * D, t0 + m0);
                wgt_load_2d(q_a + BWD_WG_Q / 2, &mq, wb.full(b), h * D + 64, t0 + m0);
                wgt_load_2d(o_a, &mo, wb.full(b), h * D, t0 + m0);
                wgt_load_2d(o_a + BWD_WG_Q / 2, &mo, wb.full(b), h * D + 64, t0 + m0);
            }
        } else if (warp == 1) {  // lse log2 e and delta of every query tile
            for (int it = 0; it < nit; it++) {
                const int b = it % NB, h = h_lo + it / nq, m0 = mb + (it % nq) * BWD_WG_BM;
                if (it >= NB) wgt_mbar_wait(wb.empty(b), (it / NB - 1) & 1);
#pragma unroll
                for (int hh = 0; hh < 2; hh++) {
                    const int r = lane + 32 * hh;
                    const bool ok = m0 + r < L;
                    const size_t row = (size_t)(t0 + m0 + r) * p.H + h;
                    if (ATTN_ABLATE(p, 16)) {
                        sL[b * BWD_WG_BM + r] = ok ? 0.0f : INFINITY;
                        sD[b * BWD_WG_BM + r] = 0.0f;
                        continue;
                    }
                    sL[b * BWD_WG_BM + r] = ok ? p.lse[row] * LOG2E : INFINITY;
                    sD[b * BWD_WG_BM + r] = ok ? p.delta[row] : 0.0f;
                }
                wgt_mbar_arrive(wb.full(b));
            }
        } else {  // dQ block w of every query tile into the fp32 buffer
            const int w = warp - 2;
            if (ATTN_ABLATE(p, 2)) return;
            if (TILED && lane != 0) return;  // TILED: lane 0 adds the whole block, one bulk reduction a tile
            const int pr0 = TILED ? p.pad[tile.seq] : 0;
            for (int it = 0; it < nit; it++) {
                const int h = h_lo + it / nq, m0 = mb + (it % nq) * BWD_WG_BM;
                wgt_mbar_wait(wb.dqfull(w), it & 1);
                if (TILED) {
                    if (!ATTN_ABLATE(p, 1))
                        wgb_reduce_add(p.dq_acc + dq_tiled_index(pr0 + m0, h, w * 64, p.H), aQd + w * 64 * 64 * 4,
                                       64 * 64 * 4);
                } else {
#pragma unroll
                    for (int hh = 0; hh < 2; hh++) {
                        const int r = lane + 32 * hh;
                        if (m0 + r < L && !ATTN_ABLATE(p, 1))
                            wgb_reduce_add(p.dq_acc + (size_t)(t0 + m0 + r) * ldq + (size_t)h * D + w * 64,
                                           aQd + (w * 64 + r) * BWD_WS_DQ_LD, 64 * 4);
                    }
                }
                wgb_bulk_commit();
                wgb_bulk_wait<true>();
                if (!TILED) __syncwarp();
                if (lane == 0) wgt_mbar_arrive(wb.dqempty(w));
            }
            wgb_bulk_wait<false>();
        }
        return;
    }
    wg_setmaxnreg_inc<240>();

    float dk[64], dv[64];
#pragma unroll
    for (int i = 0; i < 64; i++) dk[i] = dv[i] = 0.0f;
    const int rr = warp * 16 + g;         // this thread's rows of its dQ block: rr, rr + 8
    const int kr = n0 + wgi * 64 + rr;    // its keys kr and kr + 8
    const int srow = wgi * 64 + rr;       // their rows of dS^T
    unsigned char *sdq = TILED ? sQd + wgi * 64 * 64 * 4 : sQd + (wgi * 64 + rr) * BWD_WS_DQ_LD;

    if (nit > 0) wgt_mbar_wait(wb.kv(), 0);
    for (int it = 0; it < nit; it++) {
        const int b = it % NB, m0 = mb + (it % nq) * BWD_WG_BM;
        const uint32_t aS = aS0 + (it & 1) * 128 * 128, q_a = aQ + b * BWD_WG_Q, o_a = aO + b * BWD_WG_Q;
        const bool need_mask =
            m0 < n0 + BWD_WG_BN - 1 || m0 + BWD_WG_BM > L || (W > 0 && m0 + BWD_WG_BM - 1 - n0 >= W);
        wgt_mbar_wait(wb.full(b), (it / NB) & 1);
        float pt[32], ds[32];
        uint32_t pa[BWD_WG_BM / 16][4], sa[BWD_WG_BM / 16][4];
        wgb_scores_issue<true>(pt, ds, aK, aV, q_a, o_a, wgi);
        wg_wait<1>();  // S^T's group
        wg_fence_regs<32>(pt);
        if (ATTN_ABLATE(p, 4))
            wgb_probs<false, true>(pt, ds, pa, sa, p, sL + b * BWD_WG_BM, nullptr, kr, m0, L, need_mask, tq);
        else if (need_mask)
            wgb_probs<false>(pt, ds, pa, sa, p, sL + b * BWD_WG_BM, nullptr, kr, m0, L, true, tq);
        else
            wgb_probs<false, false, false>(pt, ds, pa, sa, p, sL + b * BWD_WG_BM, nullptr, kr, m0, L, false, tq);
        wgb_issue_acc(dv, pa, o_a);  // beside dP^T's products and dS^T's arithmetic
        wg_wait<1>();               // dP^T's group; dV's goes on
        wg_fence_regs<32>(ds);
        wgb_probs_ds(pt, ds, sa, sD + b * BWD_WG_BM, tq);
        wgb_store_ds(sS0 + (it & 1) * 128 * 128, sa, srow, tq);
        wg_fence_proxy();  // the dS^T stores, for the dQ wgmmas of both warpgroups
        if (!ATTN_ABLATE(p, 8)) wga_bar_sync(1);
        float dq[32];
        wgb_issue_dq(dq, aS, aK, wgi);
        wgb_issue_acc(dk, sa, q_a);
        wg_wait<1>();  // dV's and dQ's groups; dK's goes on
        wg_fence_regs<32>(dq);
        if (!ATTN_ABLATE(p, 2)) wgb_put_dq<TILED>(sdq, dq, wb, it, wgi, tq, rr);
        wgb_wait_dvdk(dv, dk, pa, sa);
        wgt_mbar_arrive(wb.empty(b));
    }

    bwd_store_dkdv<D>(p, dk, dv, kr, L, t0, kvh, tq);
}

}  // namespace attn

#endif
