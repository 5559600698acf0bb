// kernels/cuda/gemm_wgmma.cuh — the grouped bf16 GEMMs of the MoE experts at training sizes, on Hopper's
// warpgroup tensor-core instruction (wgmma.mma_async, sm_90a): kernels/cuda/gemm.cu launches them where every
// group averages at least WG_MIN_ROWS rows and the operands take 16-byte loads; smaller shapes (decode) keep
// the mma.sync kernels of kernels/cuda/gemm_grouped.cuh.
// defines: WG_BM, WG_BN, WG_BK, WG_STAGES, WG_THREADS, WG_SMEM, WG_MIN_ROWS, wg_forward, wg_wgrad, wgt_forward,
//          wgt_wgrad, wgp_forward, wgp_wgrad, WGP_THREADS, wg_zero_tail, wg_step, wg_store_c, wg_store_dw, wg_zero_dw,
//          wg_stage_box, wg_fstore_boxes, WGP_TSTORE_SMEM, wgp_store_tile, wgp_store_dw_tile, wgpc_forward,
//          wgpc_wgrad, wgpc_release, WGPC_EMPTY
//
// A CTA of two warpgroups computes a 128 x 256 tile of C (each warpgroup 64 x 256: one m64n256k16 wgmma per 16
// of K, 128 fp32 accumulators a thread) over K in steps of 64, through a 4-stage cp.async pipeline of 48 KiB
// stages: the loads of step kt + 3 are issued before the wgmmas of step kt, which are waited for before the
// next step's barrier frees their stage. Both operands sit in shared memory in the canonical layouts of the
// 128-byte swizzle, tile bases 1024-byte aligned:
//   K-major (rows m, k contiguous; ROWS x 64): row m at m*128 bytes, its 16-byte chunk c at 16*(c ^ (m & 7));
//     descriptor stride (8-row groups) 1024 bytes; the 16-wide K steps start 32 bytes apart.
//   MN-major (k rows, m contiguous; 64 x ROWS): panels of 64 m, 8 KiB each; row k of a panel at k*128 bytes,
//     its chunk c (m = 8c .. 8c+7 of the panel) at 16*(c ^ (k & 7)); descriptor leading offset 8192 bytes
//     (panel to panel), stride 1024 bytes (8 k rows); the K steps start 2048 bytes apart.
// Elements out of range (past a group's rows, past n or k) load as zeros; each output element is one fp32
// sum over k in one wgmma chain. The tile order and the epilogue follow gg_forward and gg_wgrad. wgt_forward
// (below) is wg_forward with the same shared-memory layouts filled by the TMA instead of cp.async; the host
// launches it first and wg_forward where the tensor maps cannot be made. wgp_forward and wgp_wgrad (below) are
// the TMA-fed kernels made persistent and warp-specialized, for shapes whose tiles have few K steps.
#ifndef CISPO_KERNELS_CUDA_GEMM_WGMMA_CUH
#define CISPO_KERNELS_CUDA_GEMM_WGMMA_CUH

#include "kernels/cuda/cluster.cuh"
#include "kernels/cuda/gemm_grouped.cuh"
#include "kernels/cuda/wgmma.cuh"

#define WG_BM 128
#define WG_BN 256
#define WG_BK 64
#define WG_STAGES 4
#define WG_THREADS 256
#define WG_A_BYTES (WG_BM * WG_BK * 2)                                  // 16 KiB
#define WG_B_BYTES (WG_BN * WG_BK * 2)                                  // 32 KiB
#define WG_SMEM (WG_STAGES * (WG_A_BYTES + WG_B_BYTES) + 1024)          // + alignment to 1024 bytes
#define WG_MIN_ROWS 128  // rows per group on average from which the wgmma kernels run

namespace {

// K-major tile: ROWS x 64 of element (m, k) = p[m*ld + k] from k0, valid m < mlim, k < klim (klim % 8 == 0).
template <int ROWS>
__device__ __forceinline__ void wg_load_kmajor(unsigned char *s, const __nv_bfloat16 *p, int ld, int mlim,
                                               int klim, int k0) {
#pragma unroll
    for (int it = 0; it < ROWS * 8 / WG_THREADS; it++) {
        int c = threadIdx.x + it * WG_THREADS, m = c >> 3, kc = c & 7, kg = k0 + kc * 8;
        bool ok = m < mlim && kg < klim;
        cp_async16(s + m * 128 + 16 * (kc ^ (m & 7)), ok ? p + (size_t)m * ld + kg : p, ok ? 16 : 0);
    }
}

// MN-major tile: 64 x ROWS of element (m, k) = p[k*ld + m] from k0, valid m < mlim (mlim % 8 == 0), k < klim.
template <int ROWS>
__device__ __forceinline__ void wg_load_mnmajor(unsigned char *s, const __nv_bfloat16 *p, int ld, int mlim,
                                                int klim, int k0) {
    constexpr int CPR = ROWS / 8;  // 16-byte chunks in a k row
#pragma unroll
    for (int it = 0; it < 64 * CPR / WG_THREADS; it++) {
        int c = threadIdx.x + it * WG_THREADS, kk = c / CPR, mc = c % CPR, kg = k0 + kk;
        bool ok = kg < klim && mc * 8 < mlim;
        cp_async16(s + (mc >> 3) * 8192 + kk * 128 + 16 * ((mc & 7) ^ (kk & 7)),
                   ok ? p + (size_t)kg * ld + mc * 8 : p, ok ? 16 : 0);
    }
}

// One K step of a 128 x 256 tile for warpgroup w (its 64 rows of A): the four m64n256k16 wgmmas over the stage at
// sa (A: K-major, or MN-major panels) and sb (B likewise), committed as one group; then wait until at most PENDING
// groups are in flight (1: this step's go on while the next is issued).
template <int A_MN, int B_MN, int PENDING>
__device__ __forceinline__ void wg_step(float acc[128], uint32_t sa, uint32_t sb, int w) {
    wg_fence_regs<128>(acc);
    wg_fence();
#pragma unroll
    for (int ks = 0; ks < WG_BK / 16; ks++) {
        uint64_t da = A_MN ? wg_desc(sa + w * 8192 + ks * 2048, 8192, 1024) : wg_desc(sa + w * 8192 + ks * 32, 16, 1024);
        uint64_t db = B_MN ? wg_desc(sb + ks * 2048, 8192, 1024) : wg_desc(sb + ks * 32, 16, 1024);
        wg_mma_ss_256<A_MN, B_MN>(acc, da, db);
    }
    wg_commit();
    wg_wait<PENDING>();
    wg_fence_regs<128>(acc);
}

// acc += A_tile B_tile^T over K = [0, klim) for a 128 x 256 tile. A: (m, k) K-major (A_MN 0) or MN-major;
// valid m < amlim. B: (n, k) K-major (B_MN 0) or MN-major; valid n < bnlim. INFLIGHT: each step's wgmmas stay in
// flight while the next step's are issued (wgmma.wait_group 1, as wgt_forward), so the loads run 2 steps ahead
// instead of 3 (the stage of step kt - 1 is still being read when step kt's are issued); the same sums in the
// same order either way.
template <int A_MN, int B_MN, bool INFLIGHT = false>
__device__ __forceinline__ void wg_mainloop(float acc[128], const __nv_bfloat16 *a, int lda, int amlim,
                                            const __nv_bfloat16 *b, int ldb, int bnlim, int klim,
                                            unsigned char *smem) {
    constexpr int STAGE = WG_A_BYTES + WG_B_BYTES, AHEAD = INFLIGHT ? WG_STAGES - 2 : WG_STAGES - 1;
    const int wgi = threadIdx.x >> 7, ktiles = (klim + WG_BK - 1) / WG_BK;
    const uint32_t base = smem_addr(smem);
#pragma unroll
    for (int s = 0; s < AHEAD; s++) {
        if (s < ktiles) {
            unsigned char *st = smem + s * STAGE;
            if (A_MN) wg_load_mnmajor<WG_BM>(st, a, lda, amlim, klim, s * WG_BK);
            else wg_load_kmajor<WG_BM>(st, a, lda, amlim, klim, s * WG_BK);
            if (B_MN) wg_load_mnmajor<WG_BN>(st + WG_A_BYTES, b, ldb, bnlim, klim, s * WG_BK);
            else wg_load_kmajor<WG_BN>(st + WG_A_BYTES, b, ldb, bnlim, klim, s * WG_BK);
        }
        cp_async_commit();
    }
    for (int kt = 0; kt < ktiles; kt++) {
        cp_async_wait<AHEAD - 1>();
        wg_fence_proxy();
        // step kt landed for all; every warpgroup is done with the stage the next load takes (step kt - 1's,
        // waited for below; INFLIGHT: step kt - 2's, complete after the wait_group 1 that ended step kt - 1)
        __syncthreads();
        int nk = kt + AHEAD;
        if (nk < ktiles) {
            unsigned char *st = smem + (nk % WG_STAGES) * STAGE;
            if (A_MN) wg_load_mnmajor<WG_BM>(st, a, lda, amlim, klim, nk * WG_BK);
            else wg_load_kmajor<WG_BM>(st, a, lda, amlim, klim, nk * WG_BK);
            if (B_MN) wg_load_mnmajor<WG_BN>(st + WG_A_BYTES, b, ldb, bnlim, klim, nk * WG_BK);
            else wg_load_kmajor<WG_BN>(st + WG_A_BYTES, b, ldb, bnlim, klim, nk * WG_BK);
        }
        cp_async_commit();
        const uint32_t sa = base + (kt % WG_STAGES) * STAGE;
        // this warpgroup's 64 rows of A: rows 64 wgi.. (K-major), or panel wgi (MN-major)
        wg_step<A_MN, B_MN, INFLIGHT ? 1 : 0>(acc, sa, sa + WG_A_BYTES, wgi);
    }
    wg_wait<0>();
    wg_fence_regs<128>(acc);
    cp_async_wait<0>();
}

// C[r0 + row, n0 + col] = acc (+ beta C) for the rows mlo .. mlim - 1 and columns < nlim of a 128 x 256 tile held
// by two warpgroups (tid: the thread's index in them, 0 .. 255); accumulator e of a thread: row 16 warp + lane/4 +
// 8 ((e/2) & 1), column 8 (e/4) + 2 (lane & 3) + (e & 1). pair: bf16x2 stores. FROM: rows below mlo skipped.
template <bool FROM = false>
__device__ __forceinline__ void wg_store_c(const float acc[128], __nv_bfloat16 *c, int ldc, int r0, int n0, int mlim,
                                           int nlim, float beta, int pair, int tid, int mlo = 0) {
    const int lane = tid & 31, warp = tid >> 5;
#pragma unroll
    for (int h = 0; h < 2; h++) {
        int row = warp * 16 + (lane >> 2) + h * 8;
        if (row >= mlim || (FROM && row < mlo)) continue;
        __nv_bfloat16 *cr = c + (size_t)(r0 + row) * ldc + n0;
#pragma unroll
        for (int jb = 0; jb < 32; jb++) {  // (constant indices whether or not the h loop is unrolled)
            gg_store_c2(cr, jb * 8 + 2 * (lane & 3), nlim, h ? acc[4 * jb + 2] : acc[4 * jb],
                        h ? acc[4 * jb + 3] : acc[4 * jb + 1], beta, pair);
        }
    }
}

// gg_forward's op at 128 x 256 tiles (TRANS_W: W_g [n, k], else [k, n]; v: grouped_matmul_pair's second
// weight, its column tiles after W's). Needs 16-byte rows: lda, k (and n where W_g is [k, n]) multiples of 8.
template <bool TRANS_W>
__global__ void __launch_bounds__(WG_THREADS, 1) wg_forward(__nv_bfloat16 *c, int ldc, const __nv_bfloat16 *a,
                                                             int lda, const __nv_bfloat16 *w,
                                                             const __nv_bfloat16 *v, const int32_t *offsets, int G,
                                                             int n, int k, float beta, int pair) {
    extern __shared__ __align__(1024) unsigned char wg_smem_raw[];
    unsigned char *smem = wg_smem_raw + ((1024 - (smem_addr(wg_smem_raw) & 1023)) & 1023);
    const gg_tile_t t = gg_cta_tile(offsets, G, WG_BM, WG_BN, n, v != NULL);
    if (t.g < 0) return;
    const int r0 = t.r0, n0 = t.n0, mlim = t.mlim, nlim = t.nlim;
    const __nv_bfloat16 *wg = (t.second ? v : w) + (size_t)t.g * n * k;
    if (t.second) c += n;
    float acc[128];
#pragma unroll
    for (int e = 0; e < 128; e++) acc[e] = 0.0f;
    wg_mainloop<0, TRANS_W ? 0 : 1>(acc, a + (size_t)r0 * lda, lda, mlim, TRANS_W ? wg + (size_t)n0 * k : wg + n0,
                                    TRANS_W ? k : n, nlim, k, smem);
    wg_store_c(acc, c, ldc, r0, n0, mlim, nlim, beta, pair, threadIdx.x);
}

// Box b of the tile's accumulators (the 256 threads of two warpgroups, tid 0 .. 255, laid out as wg_store_c says)
// into shared memory at s as the TMA's store takes it: 128 rows of 128 bytes (columns 32 b .. 32 b + 31 of fp32,
// 64 b .. 64 b + 63 of bf16), 16-byte chunk c of row r at r*128 + 16 (c ^ (r & 7)) (the 128-byte swizzle). fp32:
// two-way bank conflicts, as few as 256 bytes an instruction allow; bf16: none. bf16 rounds to nearest, as
// gg_store_dw2. b must be known at compile time (an unrolled loop's).
__device__ __forceinline__ void wg_stage_box(const float acc[128], float *, unsigned char *s, int b, int tid) {
    const int lane = tid & 31, q = lane & 3;
#pragma unroll
    for (int h = 0; h < 2; h++) {
        const int r = (tid >> 5) * 16 + (lane >> 2) + 8 * h;
        unsigned char *row = s + r * 128 + 8 * (q & 1);
#pragma unroll
        for (int j = 0; j < 4; j++) {
            const int jb = 4 * b + j, c = 2 * j + (q >> 1);
            *reinterpret_cast<float2 *>(row + ((c ^ (r & 7)) << 4)) =
                make_float2(acc[4 * jb + 2 * h], acc[4 * jb + 2 * h + 1]);
        }
    }
}
__device__ __forceinline__ void wg_stage_box(const float acc[128], __nv_bfloat16 *, unsigned char *s, int b, int tid) {
    const int lane = tid & 31, q = lane & 3;
#pragma unroll
    for (int h = 0; h < 2; h++) {
        const int r = (tid >> 5) * 16 + (lane >> 2) + 8 * h;
        unsigned char *row = s + r * 128 + 4 * q;
#pragma unroll
        for (int j = 0; j < 8; j++) {
            const int jb = 8 * b + j;
            *reinterpret_cast<__nv_bfloat162 *>(row + ((j ^ (r & 7)) << 4)) =
                __floats2bfloat162_rn(acc[4 * jb + 2 * h], acc[4 * jb + 2 * h + 1]);
        }
    }
}

// A forward tile's rows [0, mlim) and columns [0, nlim) out of the staging buffers by the TMA (thread 0 of the
// tile; FSTORE of wgt_forward and wgp_forward): box b's 128 rows x 64 columns at sbox(b) (wg_stage_box's layout),
// to C's columns col + 64 b, rows r0 ..: one store of map mcf (boxes of 128 rows) for a whole tile, else one of
// mcs (boxes of 8 rows) for each 8 rows below mlim & ~7 (a tile's rows past its group are the next group's, never
// written; the threads store the last mlim % 8 rows). Boxes from b0 to b1 - 1, those below nlim (a multiple of 64),
// then one bulk group.
__device__ __forceinline__ void wg_fstore_boxes(const WgtMap *mcf, const WgtMap *mcs, uint32_t sbox0, int bstride,
                                                int b0, int b1, int col, int r0, int mlim, int nlim) {
    for (int b = b0; b < b1 && 64 * b < nlim; b++) {
        const uint32_t sb = sbox0 + (uint32_t)((b - b0) * bstride);
        if (mlim == WG_BM) wgt_store_2d(mcf, sb, col + 64 * b, r0);
        else
            for (int r = 0; r + 8 <= mlim; r += 8) wgt_store_2d(mcs, sb + r * 128, col + 64 * b, r0 + r);
    }
    wgt_bulk_commit();
}

// ---- the forward fed by the tensor memory accelerator (TMA) ----
// wgt_forward: wg_forward's op with the operands brought in by TMA (cp.async.bulk.tensor, 128-byte swizzle,
// out-of-range elements zero) into WG_STAGES stages, each completing on its mbarrier; thread 0 issues the
// loads of step kt + 3 once both warpgroups are done with step kt - 1 (the wgmmas of step kt stay in flight
// meanwhile: wgmma.wait_group 1). Tensor maps (kernels/cuda/gemm.cu): A [rows, k] in boxes of 128 rows x 64
// k; W_g as a 3-d map over the groups, [n, k] in boxes of 256 x 64 (TRANS_W) or [k, n] in four boxes of
// 64 k x 64 n, one per MN-major panel; a group's rows and columns past n or k load as zeros, never as the
// next group's. A tile's rows past its group are other groups' tokens, never stored. FSTORE (the default where
// beta is 0 and n a multiple of 64: forward_fstore in kernels/cuda/gemm.cu): the tile leaves through the TMA,
// staged in the stages' shared memory (wg_stage_box) once both warpgroups' wgmmas are done, by boxes of map mcf
// (128 rows) or mcs (8 rows; a tile short of its 128 rows), the last mlim % 8 rows by the threads; the same values
// as the threads' stores.
template <bool TRANS_W, bool FSTORE>
__global__ void __launch_bounds__(WG_THREADS, 1)
    wgt_forward(const __grid_constant__ WgtMap ma, const __grid_constant__ WgtMap mw, const __grid_constant__ WgtMap mv,
                const __grid_constant__ WgtMap mcf, const __grid_constant__ WgtMap mcs, __nv_bfloat16 *c, int ldc,
                const int32_t *offsets, int G, int n, int k, float beta, int pair, int has_v) {
    extern __shared__ __align__(1024) unsigned char wg_smem_raw[];
    unsigned char *smem = wg_smem_raw + ((1024 - (smem_addr(wg_smem_raw) & 1023)) & 1023);
    __shared__ __align__(8) uint64_t full[WG_STAGES];
    __shared__ gg_tile_t s_t;
    if (threadIdx.x < 32) gg_find_tile(blockIdx.x, offsets, G, WG_BM, WG_BN, n, has_v, &s_t);
    if (threadIdx.x == 0) {
        for (int st = 0; st < WG_STAGES; st++) wgt_mbar_init(smem_addr(&full[st]), 1);
        wgt_mbar_init_fence();
    }
    __syncthreads();
    const gg_tile_t t = s_t;
    if (t.g < 0) return;
    const int g = t.g, r0 = t.r0, n0 = t.n0, mlim = t.mlim, nlim = t.nlim;
    const void *mb = t.second ? (const void *)&mv : (const void *)&mw;
    const int col = t.second ? n + n0 : n0;  // (C's column of the tile, for the TMA's stores)
    if (t.second) c += n;
    constexpr int STAGE = WG_A_BYTES + WG_B_BYTES;
    const int wgi = threadIdx.x >> 7, ktiles = (k + WG_BK - 1) / WG_BK;
    const uint32_t base = smem_addr(smem);
    auto issue = [&](int kt) {
        const int st = kt % WG_STAGES;
        const uint32_t bar = smem_addr(&full[st]), sa = base + st * STAGE, sb = sa + WG_A_BYTES;
        wgt_mbar_expect_tx(bar, STAGE);
        wgt_load_2d(sa, &ma, bar, kt * WG_BK, r0);
        if (TRANS_W) {
            wgt_load_3d(sb, mb, bar, kt * WG_BK, n0, g);
        } else {
#pragma unroll
            for (int pnl = 0; pnl < WG_BN / 64; pnl++) wgt_load_3d(sb + pnl * 8192, mb, bar, n0 + 64 * pnl, kt * WG_BK, g);
        }
    };
    if (threadIdx.x == 0)
        for (int kt = 0; kt < WG_STAGES - 1 && kt < ktiles; kt++) issue(kt);
    float acc[128];
#pragma unroll
    for (int e = 0; e < 128; e++) acc[e] = 0.0f;
    for (int kt = 0; kt < ktiles; kt++) {
        const int st = kt % WG_STAGES;
        wgt_mbar_wait(smem_addr(&full[st]), (kt / WG_STAGES) & 1);
        const uint32_t sa = base + st * STAGE;
        wg_step<0, TRANS_W ? 0 : 1, 1>(acc, sa, sa + WG_A_BYTES, wgi);
        __syncthreads();  // both warpgroups are done with step kt - 1: its stage takes step kt + 3
        if (threadIdx.x == 0 && kt + WG_STAGES - 1 < ktiles) issue(kt + WG_STAGES - 1);
    }
    wg_wait<0>();
    wg_fence_regs<128>(acc);
    if (FSTORE) {
        __syncthreads();  // both warpgroups' wgmmas are done with the stages
#pragma unroll
        for (int b = 0; b < WG_BN / 64; b++) wg_stage_box(acc, c, smem + b * 16384, b, threadIdx.x);
        wg_fence_proxy();
        __syncthreads();
        if (threadIdx.x == 0) wg_fstore_boxes(&mcf, &mcs, base, 16384, 0, WG_BN / 64, col, r0, mlim, nlim);
        if (mlim & 7) wg_store_c<true>(acc, c, ldc, r0, n0, mlim, nlim, 0.0f, pair, threadIdx.x, mlim & ~7);
        if (threadIdx.x == 0) wgt_bulk_wait_read<0>();
    } else {
        wg_store_c(acc, c, ldc, r0, n0, mlim, nlim, beta, pair, threadIdx.x);
    }
}

// A weight gradient's last K step (a stage at s) past its group's rows: rows 64 - tail .. 63 of the step are the
// next group's, zeroed in every panel (6 panels of 64 rows) by the tile's 256 computing threads (tid), then a proxy
// fence and a barrier (named barrier 1 of those threads where they are not the whole CTA, else __syncthreads)
// before their wgmmas read them.
__device__ __forceinline__ void wg_zero_tail(unsigned char *s, int tail, int tid, int named) {
    for (int c = tid; c < 6 * tail * 8; c += WG_THREADS) {
        const int pnl = c / (tail * 8), r = WG_BK - tail + (c % (tail * 8)) / 8, ch = c % 8;
        *reinterpret_cast<uint4 *>(s + pnl * 8192 + r * 128 + ch * 16) = make_uint4(0, 0, 0, 0);
    }
    wg_fence_proxy();
    if (named) asm volatile("bar.sync 1, 256;\n" ::: "memory");
    else __syncthreads();
}

#define WGPC_EMPTY 16  // the arrivals that free a stage: one by each consumer warp of both CTAs of the cluster

// A consumer warp done with a stage (its wgmma.wait_group showed the wgmmas that read it complete, or it had none
// to run): its lane 0 arrives on the stage's empty barrier in this CTA and in the peer.
__device__ __forceinline__ void wgpc_release(uint32_t bar, unsigned peer) {
    __syncwarp();
    if ((threadIdx.x & 31) == 0) {
        wgt_mbar_arrive(bar);
        wgt_mbar_arrive_remote(bar, peer);
    }
}

// A stage handed back by a persistent kernel's consumer thread: in a cluster (CL) by its warp's lane 0 in both CTAs
// (wgpc_release), else by every thread (2 x 128 arrivals)
template <bool CL>
__device__ __forceinline__ void wgp_release(uint32_t bar, unsigned peer) {
    if (CL) wgpc_release(bar, peer);
    else wgt_mbar_arrive(bar);
}

// The K steps of one tile by a consumer warpgroup of wgp_forward, wgp_wgrad and their clustered forms (cw: its
// rows 64 cw ..; tid 0 .. 255 over both): acc from zero; each step waits for its stage's loads (the first step's
// wait is the caller's, which read the stage's tile), zeroes the rows past the group in the last step where tail >
// 0 (weight gradients, named barrier 1), issues its wgmmas and hands back the stage of the step before, whose
// wgmmas are then done; the last stage once all are. *step advances by ktiles.
template <int A_MN, int B_MN, bool CL>
__device__ __forceinline__ void wgp_mainloop(float acc[128], unsigned char *smem, uint64_t *full, uint64_t *empty,
                                             int *step, int ktiles, int tail, int cw, int tid, unsigned peer) {
    constexpr int STAGE = WG_A_BYTES + WG_B_BYTES;
    const uint32_t base = smem_addr(smem);
    int sp = *step;
#pragma unroll
    for (int e = 0; e < 128; e++) acc[e] = 0.0f;
    for (int kt = 0; kt < ktiles; kt++, sp++) {
        const int st = sp % WG_STAGES;
        if (kt > 0) wgt_mbar_wait(smem_addr(&full[st]), (sp / WG_STAGES) & 1);
        const uint32_t sa = base + st * STAGE;
        if (kt == ktiles - 1 && tail > 0) wg_zero_tail(smem + st * STAGE, tail, tid, 1);
        wg_step<A_MN, B_MN, 1>(acc, sa, sa + WG_A_BYTES, cw);
        if (kt > 0) wgp_release<CL>(smem_addr(&empty[(sp - 1) % WG_STAGES]), peer);  // step sp - 1's wgmmas are done
    }
    wg_wait<0>();
    wg_fence_regs<128>(acc);
    wgp_release<CL>(smem_addr(&empty[(sp - 1) % WG_STAGES]), peer);
    *step = sp;
}

// The epilogue of wgp_forward and wgpc_forward, by the 256 consumer threads (tid 0 .. 255) of tile t: through the
// TMA (FSTORE) from two 16 KiB buffers at buf (past the stages), box after box, so that the next tile's loads go on:
// box b is staged once the stores of box b - 2 have read its buffer, then stored while box b + 1 is staged; else
// by the threads.
template <bool FSTORE>
__device__ __forceinline__ void wgp_store_tile(const float acc[128], const gg_tile_t &t, unsigned char *buf,
                                               const WgtMap *mcf, const WgtMap *mcs, __nv_bfloat16 *c, int ldc, int n,
                                               float beta, int pair, int tid) {
    if (FSTORE) {
        const uint32_t sbuf = smem_addr(buf);
#pragma unroll
        for (int b = 0; b < WG_BN / 64; b++) {
            if (tid == 0) wgt_bulk_wait_read<1>();  // the stores of two boxes back have read this buffer
            asm volatile("bar.sync 1, 256;\n" ::: "memory");
            wg_stage_box(acc, c, buf + (b & 1) * 16384, b, tid);
            wg_fence_proxy();
            asm volatile("bar.sync 1, 256;\n" ::: "memory");
            if (tid == 0)
                wg_fstore_boxes(mcf, mcs, sbuf + (b & 1) * 16384, 0, b, b + 1, t.second ? n + t.n0 : t.n0, t.r0,
                                t.mlim, t.nlim);
        }
        if (t.mlim & 7)
            wg_store_c<true>(acc, t.second ? c + n : c, ldc, t.r0, t.n0, t.mlim, t.nlim, 0.0f, pair, tid,
                             t.mlim & ~7);
    } else {
        wg_store_c(acc, t.second ? c + n : c, ldc, t.r0, t.n0, t.mlim, t.nlim, beta, pair, tid);
    }
}

// wgp_forward: wgt_forward's op, persistent and warp-specialized (the schedule of CUTLASS's cooperative Hopper
// kernels). A grid of at most one CTA an SM walks the tiles (tile blockIdx.x, then every gridDim.x-th, in
// gg_find_tile's order) with three warpgroups: warpgroup 0 gives its registers back (setmaxnreg) and its first
// warp finds each tile and issues the TMA loads of its K steps into the WG_STAGES stages; warpgroups 1 and 2 take
// 232 registers each and run the wgmmas of rows 0..63 and 64..127 of the tile, then store it while the loads of
// the next tile are already under way. Every stage has a "full" mbarrier (the loads' bytes) and an "empty" one at
// which all 256 consumer threads arrive once the wgmmas that read it are done; the loads never wait for a
// __syncthreads, nor the consumers for each other. Each stage also carries the (group, row, column) of the tile
// whose first K step it holds, written by the producer before that step's loads and read by the consumers after
// its full barrier: g = -1 there (a plain arrival, no loads) ends the walk. The same wgmmas in the same order as
// wgt_forward: the same bits. FSTORE (as wgt_forward's): the tile leaves through the TMA from two 16 KiB buffers
// past the stages (WGP_TSTORE_SMEM more shared memory), box after box, so that the next tile's loads go on: box b
// is staged once the stores of box b - 2 have read its buffer, then stored while box b + 1 is staged.
#define WGP_THREADS 384
#define WGP_TSTORE_SMEM 32768
template <bool TRANS_W, bool FSTORE>
__global__ void __launch_bounds__(WGP_THREADS, 1)
    wgp_forward(const __grid_constant__ WgtMap ma, const __grid_constant__ WgtMap mw, const __grid_constant__ WgtMap mv,
                const __grid_constant__ WgtMap mcf, const __grid_constant__ WgtMap mcs, __nv_bfloat16 *c, int ldc,
                const int32_t *offsets, int G, int n, int k, float beta, int pair, int has_v, int ntiles) {
    extern __shared__ __align__(1024) unsigned char wg_smem_raw[];
    unsigned char *smem = wg_smem_raw + ((1024 - (smem_addr(wg_smem_raw) & 1023)) & 1023);
    __shared__ __align__(8) uint64_t full[WG_STAGES], empty[WG_STAGES];
    __shared__ gg_tile_t info[WG_STAGES], found;
    constexpr int STAGE = WG_A_BYTES + WG_B_BYTES;
    const int wgi = threadIdx.x >> 7, ktiles = (k + WG_BK - 1) / WG_BK;
    const uint32_t base = smem_addr(smem);
    if (threadIdx.x == 0) {
        for (int st = 0; st < WG_STAGES; st++) {
            wgt_mbar_init(smem_addr(&full[st]), 1);
            wgt_mbar_init(smem_addr(&empty[st]), 2 * 128);
        }
        wgt_mbar_init_fence();
    }
    __syncthreads();
    if (wgi == 0) {  // the producer
        wg_setmaxnreg_dec<40>();
        if (threadIdx.x >= 32) return;
        const int lane = threadIdx.x;
        int step = 0;
        for (int tile = blockIdx.x;; tile += gridDim.x) {
            gg_tile_t t;
            if (tile < ntiles) {
                gg_find_tile(tile, offsets, G, WG_BM, WG_BN, n, has_v, &found);
                __syncwarp();
                t = found;
                __syncwarp();  // every lane has read it before the next tile's search writes it
            } else {
                t.g = -1;
            }
            for (int kt = 0; kt < (t.g < 0 ? 1 : ktiles); kt++, step++) {
                const int st = step % WG_STAGES;
                if (lane != 0) continue;
                const uint32_t fb = smem_addr(&full[st]), sa = base + st * STAGE, sb = sa + WG_A_BYTES;
                if (step >= WG_STAGES) wgt_mbar_wait(smem_addr(&empty[st]), (step / WG_STAGES - 1) & 1);
                if (kt == 0) info[st] = t;
                if (t.g < 0) {
                    wgt_mbar_arrive(fb);
                    break;
                }
                const void *mb = t.second ? (const void *)&mv : (const void *)&mw;
                wgt_mbar_expect_tx(fb, STAGE);
                wgt_load_2d(sa, &ma, fb, kt * WG_BK, t.r0);
                if (TRANS_W) {
                    wgt_load_3d(sb, mb, fb, kt * WG_BK, t.n0, t.g);
                } else {
#pragma unroll
                    for (int pnl = 0; pnl < WG_BN / 64; pnl++)
                        wgt_load_3d(sb + pnl * 8192, mb, fb, t.n0 + 64 * pnl, kt * WG_BK, t.g);
                }
            }
            if (t.g < 0) return;
        }
    }
    wg_setmaxnreg_inc<232>();
    const int cw = wgi - 1, tid = threadIdx.x - 128;  // this warpgroup's rows 64 cw .. 64 cw + 63
    for (int step = 0;;) {
        wgt_mbar_wait(smem_addr(&full[step % WG_STAGES]), (step / WG_STAGES) & 1);
        const gg_tile_t t = info[step % WG_STAGES];
        if (t.g < 0) {
            if (FSTORE && tid == 0) wgt_bulk_wait_read<0>();  // the last stores have read their buffers
            return;
        }
        float acc[128];
        wgp_mainloop<0, TRANS_W ? 0 : 1, false>(acc, smem, full, empty, &step, ktiles, 0, cw, tid, 0);
        wgp_store_tile<FSTORE>(acc, t, smem + WG_STAGES * STAGE, &mcf, &mcs, c, ldc, n, beta, pair, tid);
    }
}

// wgpc_forward: wgp_forward's op in clusters of two CTAs that share the 256-column operand of each K step through
// the TMA's multicast (the schedule of CUTLASS's 2 x 1 clusters). At M1's expert widths a 128 x 256 tile reads 48
// KiB from the L2 a K step (16 KiB of A, 32 of W_g) for 4.2 MFLOP, about 9 TB/s at 780 TFLOP/s; sharing W_g's
// tile takes that to 32 KiB. A 1-d grid of 2C CTAs (cluster dimension 2 along x) walks tile pairs p = c, c + C,
// ...: tiles 2p and 2p + 1 of gg_find_tile's order (two row tiles of one group under one column tile, unless the
// pair straddles a column tile or a group), the CTA of rank r taking tile r. Both producers find both tiles and
// decide alike whether they share (same group, weight and columns): then each multicasts its half of W_g's K step
// (128 rows of the K-major tile, map mw's boxes of 128 n; or panels 2r and 2r + 1 of the MN-major one) into both
// CTAs and loads its own A; else each loads all of its own (two boxes, or four panels). Either way a CTA's "full"
// barrier of a step expects the whole stage and its producer's one arrival. Both CTAs walk the same pairs with the
// same K steps a pair, so their stage rings stay in step: a stage's "empty" barrier takes WGPC_EMPTY = 16 arrivals,
// one by lane 0 of each consumer warp of both CTAs (its own, then the peer's through mapa) once that warp's
// wgmma.wait_group shows the stage read, whether or not the pair shares. A CTA whose tile of the pair does not
// exist while the peer's does (g = -2 in the stage) takes the pair's K steps without loads and hands each stage
// back unread; g = -1 ends the walk, reached by both at the same step. The barriers are initialized before a
// cluster barrier that precedes any multicast or remote arrival, and every thread of both CTAs meets at a second
// one before exiting (every multicast into the CTA landed, the last remote arrivals made). The same wgmma chains
// and epilogue as wgp_forward: the same bits. An earlier form with release and acquire at cluster scope on every
// arrival and wait ran 35% slower than wgp_forward (bench/NOTES.md); these are at CTA scope, as CUTLASS's are.
template <bool TRANS_W, bool FSTORE>
__global__ void __launch_bounds__(WGP_THREADS, 1)
    wgpc_forward(const __grid_constant__ WgtMap ma, const __grid_constant__ WgtMap mw,
                 const __grid_constant__ WgtMap mv, const __grid_constant__ WgtMap mcf,
                 const __grid_constant__ WgtMap mcs, __nv_bfloat16 *c, int ldc,
                 const int32_t *offsets, int G, int n, int k, float beta, int pair, int has_v, int ntiles) {
    extern __shared__ __align__(1024) unsigned char wg_smem_raw[];
    unsigned char *smem = wg_smem_raw + ((1024 - (smem_addr(wg_smem_raw) & 1023)) & 1023);
    __shared__ __align__(8) uint64_t full[WG_STAGES], empty[WG_STAGES];
    __shared__ gg_tile_t info[WG_STAGES], found[2];
    constexpr int STAGE = WG_A_BYTES + WG_B_BYTES;
    const int wgi = threadIdx.x >> 7, ktiles = (k + WG_BK - 1) / WG_BK;
    const unsigned rank = cl_rank(), peer = rank ^ 1u;
    const uint32_t base = smem_addr(smem);
    if (threadIdx.x == 0) {
        for (int st = 0; st < WG_STAGES; st++) {
            wgt_mbar_init(smem_addr(&full[st]), 1);
            wgt_mbar_init(smem_addr(&empty[st]), WGPC_EMPTY);
        }
        wgt_mbar_init_fence();
    }
    cl_sync();  // both CTAs' barriers are initialized before any multicast or remote arrival
    if (wgi == 0) {  // the producer: warp 0 (lane 0 issues)
        wg_setmaxnreg_dec<40>();
        if (threadIdx.x < 32) {
            const int lane = threadIdx.x;
            int step = 0;
            for (int p = (int)(blockIdx.x >> 1);; p += (int)(gridDim.x >> 1)) {
                gg_tile_t t, o;  // this CTA's tile of the pair and the peer's (g < 0: none)
                t.g = o.g = -1;
                if (2L * p < ntiles) {
#pragma unroll 1
                    for (int r = 0; r < 2; r++) {
                        if (2L * p + r < ntiles) gg_find_tile(2 * p + r, offsets, G, WG_BM, WG_BN, n, has_v, &found[r]);
                        else if (lane == 0) found[r].g = -1;
                    }
                    __syncwarp();
                    t = found[rank], o = found[peer];
                    __syncwarp();  // every lane has read them before the next pair's search writes them
                }
                const bool end = t.g < 0 && o.g < 0;
                const bool share = t.g >= 0 && o.g >= 0 && t.g == o.g && t.second == o.second && t.n0 == o.n0;
                if (t.g < 0 && !end) t.g = -2;  // the peer's tile only: its K steps without loads
                for (int kt = 0; kt < (end ? 1 : ktiles); kt++, step++) {
                    const int st = step % WG_STAGES;
                    if (lane != 0) continue;
                    const uint32_t fb = smem_addr(&full[st]), sa = base + st * STAGE, sb = sa + WG_A_BYTES;
                    if (step >= WG_STAGES) wgt_mbar_wait(smem_addr(&empty[st]), (step / WG_STAGES - 1) & 1);
                    if (kt == 0) info[st] = t;
                    if (t.g < 0) {
                        wgt_mbar_arrive(fb);
                        continue;
                    }
                    const void *mb = t.second ? (const void *)&mv : (const void *)&mw;
                    wgt_mbar_expect_tx(fb, STAGE);
                    wgt_load_2d(sa, &ma, fb, kt * WG_BK, t.r0);
                    if (TRANS_W) {
                        if (share) {
                            const int h = (int)rank;
                            wgt_load_3d_mc(sb + h * (WG_B_BYTES / 2), mb, fb, kt * WG_BK, t.n0 + h * (WG_BN / 2), t.g,
                                           3);
                        } else {
#pragma unroll
                            for (int h = 0; h < 2; h++)
                                wgt_load_3d(sb + h * (WG_B_BYTES / 2), mb, fb, kt * WG_BK, t.n0 + h * (WG_BN / 2), t.g);
                        }
                    } else if (share) {
#pragma unroll
                        for (int q = 0; q < 2; q++) {
                            const int pnl = 2 * (int)rank + q;
                            wgt_load_3d_mc(sb + pnl * 8192, mb, fb, t.n0 + 64 * pnl, kt * WG_BK, t.g, 3);
                        }
                    } else {
#pragma unroll
                        for (int pnl = 0; pnl < WG_BN / 64; pnl++)
                            wgt_load_3d(sb + pnl * 8192, mb, fb, t.n0 + 64 * pnl, kt * WG_BK, t.g);
                    }
                }
                if (end) break;
            }
        }
        __syncwarp();
        cl_sync();  // every thread of both CTAs before either exits
        return;
    }
    wg_setmaxnreg_inc<232>();
    const int cw = wgi - 1, tid = threadIdx.x - 128;  // this warpgroup's rows 64 cw .. 64 cw + 63
    for (int step = 0;;) {
        wgt_mbar_wait(smem_addr(&full[step % WG_STAGES]), (step / WG_STAGES) & 1);
        const gg_tile_t t = info[step % WG_STAGES];
        if (t.g == -1) break;
        if (t.g < 0) {  // the peer's tile only: hand each step's stage back unread
            for (int kt = 0; kt < ktiles; kt++, step++) {
                const int st = step % WG_STAGES;
                if (kt > 0) wgt_mbar_wait(smem_addr(&full[st]), (step / WG_STAGES) & 1);
                wgpc_release(smem_addr(&empty[st]), peer);
            }
            continue;
        }
        float acc[128];
        wgp_mainloop<0, TRANS_W ? 0 : 1, true>(acc, smem, full, empty, &step, ktiles, 0, cw, tid, peer);
        wgp_store_tile<FSTORE>(acc, t, smem + WG_STAGES * STAGE, &mcf, &mcs, c, ldc, n, beta, pair, tid);
    }
    if (FSTORE && tid == 0) wgt_bulk_wait_read<0>();  // the last stores have read their buffers
    cl_sync();  // this CTA's remote arrivals are made, and every multicast into it has landed
}

// A 128 x 256 tile of dW_g [n, k] (rows < mlim, columns < nlim from m0, n0) set to zero: an empty group's
// (by the 256 threads of two warpgroups, tid 0 .. 255)
template <typename DW>
__device__ __forceinline__ void wg_zero_dw(DW *dwg, int k, int m0, int n0, int mlim, int nlim, int tid) {
    for (int e = tid; e < WG_BM * WG_BN; e += WG_THREADS) {
        int row = e / WG_BN, col = e % WG_BN;
        if (row < mlim && col < nlim) gg_put_zero(dwg + (size_t)(m0 + row) * k + n0 + col);
    }
}

// The tile's accumulators into dW_g (written, or added: add), as wg_store_c lays them out
template <typename DW>
__device__ __forceinline__ void wg_store_dw(const float acc[128], DW *dwg, int k, int m0, int n0, int mlim, int nlim,
                                            int add, int pair, int tid) {
    const int lane = tid & 31, warp = tid >> 5;
#pragma unroll
    for (int h = 0; h < 2; h++) {
        int row = warp * 16 + (lane >> 2) + h * 8;
        if (row >= mlim) continue;
        DW *dr = dwg + (size_t)(m0 + row) * k + n0;
#pragma unroll
        for (int jb = 0; jb < 32; jb++) {
            gg_store_dw2(dr, jb * 8 + 2 * (lane & 3), nlim, h ? acc[4 * jb + 2] : acc[4 * jb],
                         h ? acc[4 * jb + 3] : acc[4 * jb + 1], add, pair);
        }
    }
}

// gg_wgrad's op at 128 x 256 tiles of dW_g (blockIdx.y over n, blockIdx.x over k, blockIdx.z the group):
// dC_g^T and A_g are both MN-major. Needs lddc, lda, n and k multiples of 8. DW: float or __nv_bfloat16;
// INFLIGHT: wg_mainloop's (the tuning knob wg_wgrad_inflight).
template <typename DW, bool INFLIGHT>
__global__ void __launch_bounds__(WG_THREADS, 1) wg_wgrad(DW *dw, const __nv_bfloat16 *dc, int lddc,
                                                           const __nv_bfloat16 *a, int lda, const int32_t *offsets,
                                                           int n, int k, int pair, int add) {
    extern __shared__ __align__(1024) unsigned char wg_smem_raw[];
    unsigned char *smem = wg_smem_raw + ((1024 - (smem_addr(wg_smem_raw) & 1023)) & 1023);
    const int g = blockIdx.z, r0 = offsets[g], nr = offsets[g + 1] - r0;
    const int m0 = blockIdx.y * WG_BM, n0 = blockIdx.x * WG_BN;
    const int mlim = min(WG_BM, n - m0), nlim = min(WG_BN, k - n0);
    DW *dwg = dw + (size_t)g * n * k;
    if (nr <= 0) {  // an empty group: its gradient is zero
        if (!add) wg_zero_dw(dwg, k, m0, n0, mlim, nlim, threadIdx.x);
        return;
    }
    float acc[128];
#pragma unroll
    for (int e = 0; e < 128; e++) acc[e] = 0.0f;
    wg_mainloop<1, 1, INFLIGHT>(acc, dc + (size_t)r0 * lddc + m0, lddc, mlim, a + (size_t)r0 * lda + n0, lda, nlim, nr,
                                smem);
    wg_store_dw(acc, dwg, k, m0, n0, mlim, nlim, add, pair, threadIdx.x);
}

// wg_wgrad's op with both operands brought in by the TMA (the tuning knob wg_wgrad_tma; wgt_forward's pipeline:
// WG_STAGES stages on "full" mbarriers, thread 0 issuing step kt + 3 once the __syncthreads after step kt's
// wait_group 1 shows both warpgroups done with step kt - 1). Maps (kernels/cuda/gemm.cu): dC [rows, n] and A
// [rows, k], boxes of 64 rows x 64 columns: one MN-major panel each (two for dC^T's 128 m, four for A's 256 n).
// A group's rows are the reduction, and a box reaching past the group's last row holds the next group's rows
// (the TMA zero-fills only past the tensor): in the group's last step every thread zeroes those rows of both
// operands, then a proxy fence and a barrier before the wgmmas read them. The same sums in the same order as
// wg_wgrad: the same bits. TSTORE (the default: wgrad_tstore in kernels/cuda/gemm.cu): the tile leaves through the
// TMA instead of the threads' stores: staged in the stages' shared memory (wg_stage_box, free once both warpgroups'
// wgmmas are done), then stored, or added in the L2 (add; fp32 only: a bf16 dW added to keeps the threads' read-add-write and
// its one rounding), by box of map mdw (dW as [G, n, k], boxes of 128 rows by 128 bytes; rows past n and columns
// past k are not written); the CTA ends once the TMA has read them. The same values as the threads' stores.
template <typename DW, bool TSTORE>
__global__ void __launch_bounds__(WG_THREADS, 1)
    wgt_wgrad(DW *dw, const __grid_constant__ WgtMap mdc, const __grid_constant__ WgtMap ma,
              const __grid_constant__ WgtMap mdw, const int32_t *offsets, int n, int k, int pair, int add) {
    extern __shared__ __align__(1024) unsigned char wg_smem_raw[];
    unsigned char *smem = wg_smem_raw + ((1024 - (smem_addr(wg_smem_raw) & 1023)) & 1023);
    __shared__ __align__(8) uint64_t full[WG_STAGES];
    const int g = blockIdx.z, r0 = offsets[g], nr = offsets[g + 1] - r0;
    const int m0 = blockIdx.y * WG_BM, n0 = blockIdx.x * WG_BN;
    const int mlim = min(WG_BM, n - m0), nlim = min(WG_BN, k - n0);
    DW *dwg = dw + (size_t)g * n * k;
    if (nr <= 0) {  // an empty group: its gradient is zero
        if (!add) wg_zero_dw(dwg, k, m0, n0, mlim, nlim, threadIdx.x);
        return;
    }
    if (threadIdx.x == 0) {
        for (int st = 0; st < WG_STAGES; st++) wgt_mbar_init(smem_addr(&full[st]), 1);
        wgt_mbar_init_fence();
    }
    __syncthreads();
    constexpr int STAGE = WG_A_BYTES + WG_B_BYTES;
    const int wgi = threadIdx.x >> 7, ktiles = (nr + WG_BK - 1) / WG_BK, tail = ktiles * WG_BK - nr;
    const uint32_t base = smem_addr(smem);
    auto issue = [&](int kt) {
        const int st = kt % WG_STAGES, y = r0 + kt * WG_BK;
        const uint32_t bar = smem_addr(&full[st]), sa = base + st * STAGE, sb = sa + WG_A_BYTES;
        wgt_mbar_expect_tx(bar, STAGE);
#pragma unroll
        for (int pnl = 0; pnl < WG_BM / 64; pnl++) wgt_load_2d(sa + pnl * 8192, &mdc, bar, m0 + 64 * pnl, y);
#pragma unroll
        for (int pnl = 0; pnl < WG_BN / 64; pnl++) wgt_load_2d(sb + pnl * 8192, &ma, bar, n0 + 64 * pnl, y);
    };
    if (threadIdx.x == 0)
        for (int kt = 0; kt < WG_STAGES - 1 && kt < ktiles; kt++) issue(kt);
    float acc[128];
#pragma unroll
    for (int e = 0; e < 128; e++) acc[e] = 0.0f;
    for (int kt = 0; kt < ktiles; kt++) {
        const int st = kt % WG_STAGES;
        wgt_mbar_wait(smem_addr(&full[st]), (kt / WG_STAGES) & 1);
        unsigned char *s = smem + st * STAGE;
        const uint32_t sa = base + st * STAGE, sb = sa + WG_A_BYTES;
        if (kt == ktiles - 1 && tail > 0) wg_zero_tail(s, tail, threadIdx.x, 0);
        wg_step<1, 1, 1>(acc, sa, sb, wgi);
        __syncthreads();  // both warpgroups are done with step kt - 1: its stage takes step kt + 3
        if (threadIdx.x == 0 && kt + WG_STAGES - 1 < ktiles) issue(kt + WG_STAGES - 1);
    }
    wg_wait<0>();
    wg_fence_regs<128>(acc);
    if (TSTORE) {
        constexpr int BOXC = 128 / (int)sizeof(DW);
        __syncthreads();  // both warpgroups' wgmmas are done with the stages
#pragma unroll
        for (int b = 0; b < WG_BN / BOXC; b++) wg_stage_box(acc, dw, smem + b * 16384, b, threadIdx.x);
        wg_fence_proxy();
        __syncthreads();
        if (threadIdx.x == 0) {
#pragma unroll
            for (int b = 0; b < WG_BN / BOXC; b++)
                if (b * BOXC < nlim) wgt_store_3d(&mdw, base + b * 16384, n0 + b * BOXC, m0, g, add);
            wgt_bulk_commit();
            wgt_bulk_wait_read<0>();
        }
    } else {
        wg_store_dw(acc, dwg, k, m0, n0, mlim, nlim, add, pair, threadIdx.x);
    }
}


// wgp_wgrad: wgt_wgrad's op on wgp_forward's schedule (persistent, a producer warp, two consumer warpgroups,
// full and empty mbarriers a stage; tile L of the walk is dW tile (k column tile L % nx, n row tile L / nx % ny,
// group L / (nx ny)), wgt_wgrad's blockIdx order). A tile of an empty group takes one step with no loads (a plain
// arrival): its consumers zero it (unless add) and hand the stage back. In a group's last step the consumers
// zero the rows past the group (as wgt_wgrad does) and meet at named barrier 1 (the 256 consumer threads)
// before their wgmmas read them. The same sums in the same order as wgt_wgrad: the same bits. TSTORE (as
// wgt_wgrad's): the tile leaves through the TMA by box (wg_stage_box) through two 16 KiB buffers of its own past
// the stages (WGP_TSTORE_SMEM more shared memory), so that the next tile's loads go on meanwhile: box b is staged
// once the store of box b - 2 has read its buffer, then stored (or added) while box b + 1 is staged.
struct wgp_wtile_t {
    int g, m0, n0, r0, nr;
};
// The epilogue of wgp_wgrad and wgpc_wgrad, by the 256 consumer threads (tid 0 .. 255) of dW tile t: through the
// TMA (TSTORE: map mdw, two 16 KiB buffers at buf past the stages) box after box, box b staged once the store of
// box b - 2 has read its buffer, then stored (or added) while box b + 1 is staged; else by the threads.
template <typename DW, bool TSTORE>
__device__ __forceinline__ void wgp_store_dw_tile(const float acc[128], const wgp_wtile_t &t, unsigned char *buf,
                                                  const WgtMap *mdw, DW *dw, int n, int k, int mlim, int nlim, int add,
                                                  int pair, int tid) {
    if (TSTORE) {
        constexpr int BOXC = 128 / (int)sizeof(DW);
        const uint32_t sbuf = smem_addr(buf);
#pragma unroll
        for (int b = 0; b < WG_BN / BOXC; b++) {
            if (tid == 0) wgt_bulk_wait_read<1>();  // the store of two boxes back has read this buffer
            asm volatile("bar.sync 1, 256;\n" ::: "memory");
            wg_stage_box(acc, dw, buf + (b & 1) * 16384, b, tid);
            wg_fence_proxy();
            asm volatile("bar.sync 1, 256;\n" ::: "memory");
            if (tid == 0) {
                if (b * BOXC < nlim) wgt_store_3d(mdw, sbuf + (b & 1) * 16384, t.n0 + b * BOXC, t.m0, t.g, add);
                wgt_bulk_commit();
            }
        }
    } else {
        wg_store_dw(acc, dw + (size_t)t.g * n * k, k, t.m0, t.n0, mlim, nlim, add, pair, tid);
    }
}

template <typename DW, bool TSTORE>
__global__ void __launch_bounds__(WGP_THREADS, 1)
    wgp_wgrad(DW *dw, const __grid_constant__ WgtMap mdc, const __grid_constant__ WgtMap ma,
              const __grid_constant__ WgtMap mdw, const int32_t *offsets, int G, int n, int k, int pair, int add) {
    extern __shared__ __align__(1024) unsigned char wg_smem_raw[];
    unsigned char *smem = wg_smem_raw + ((1024 - (smem_addr(wg_smem_raw) & 1023)) & 1023);
    __shared__ __align__(8) uint64_t full[WG_STAGES], empty[WG_STAGES];
    __shared__ wgp_wtile_t info[WG_STAGES];
    constexpr int STAGE = WG_A_BYTES + WG_B_BYTES;
    const int wgi = threadIdx.x >> 7, nx = (k + WG_BN - 1) / WG_BN, ny = (n + WG_BM - 1) / WG_BM;
    const long ntiles = (long)nx * ny * G;
    const uint32_t base = smem_addr(smem);
    if (threadIdx.x == 0) {
        for (int st = 0; st < WG_STAGES; st++) {
            wgt_mbar_init(smem_addr(&full[st]), 1);
            wgt_mbar_init(smem_addr(&empty[st]), 2 * 128);
        }
        wgt_mbar_init_fence();
    }
    __syncthreads();
    if (wgi == 0) {  // the producer: one thread
        wg_setmaxnreg_dec<40>();
        if (threadIdx.x != 0) return;
        int step = 0;
        for (long tile = blockIdx.x;; tile += gridDim.x) {
            wgp_wtile_t t;
            t.g = -1, t.nr = 0;
            if (tile < ntiles) {
                t.g = (int)(tile / ((long)nx * ny));
                t.m0 = (int)(tile / nx % ny) * WG_BM, t.n0 = (int)(tile % nx) * WG_BN;
                t.r0 = offsets[t.g], t.nr = offsets[t.g + 1] - t.r0;
            }
            const int ktiles = t.nr > 0 ? (t.nr + WG_BK - 1) / WG_BK : 1;
            for (int kt = 0; kt < ktiles; kt++, step++) {
                const int st = step % WG_STAGES;
                const uint32_t fb = smem_addr(&full[st]), sa = base + st * STAGE, sb = sa + WG_A_BYTES;
                if (step >= WG_STAGES) wgt_mbar_wait(smem_addr(&empty[st]), (step / WG_STAGES - 1) & 1);
                if (kt == 0) info[st] = t;
                if (t.nr <= 0) {  // the end of the walk, or an empty group's tile
                    wgt_mbar_arrive(fb);
                    continue;
                }
                const int y = t.r0 + kt * WG_BK;
                wgt_mbar_expect_tx(fb, STAGE);
#pragma unroll
                for (int pnl = 0; pnl < WG_BM / 64; pnl++) wgt_load_2d(sa + pnl * 8192, &mdc, fb, t.m0 + 64 * pnl, y);
#pragma unroll
                for (int pnl = 0; pnl < WG_BN / 64; pnl++) wgt_load_2d(sb + pnl * 8192, &ma, fb, t.n0 + 64 * pnl, y);
            }
            if (t.g < 0) return;
        }
    }
    wg_setmaxnreg_inc<232>();
    const int cw = wgi - 1, tid = threadIdx.x - 128;  // this warpgroup's rows 64 cw .. 64 cw + 63 of the tile
    for (int step = 0;;) {
        wgt_mbar_wait(smem_addr(&full[step % WG_STAGES]), (step / WG_STAGES) & 1);
        const wgp_wtile_t t = info[step % WG_STAGES];
        if (t.g < 0) {
            if (TSTORE && tid == 0) wgt_bulk_wait_read<0>();  // the last stores have read their buffers
            return;
        }
        const int mlim = min(WG_BM, n - t.m0), nlim = min(WG_BN, k - t.n0);
        DW *dwg = dw + (size_t)t.g * n * k;
        if (t.nr <= 0) {  // an empty group: its gradient is zero
            if (!add) wg_zero_dw(dwg, k, t.m0, t.n0, mlim, nlim, tid);
            wgt_mbar_arrive(smem_addr(&empty[step % WG_STAGES]));
            step++;
            continue;
        }
        const int ktiles = (t.nr + WG_BK - 1) / WG_BK, tail = ktiles * WG_BK - t.nr;
        float acc[128];
        wgp_mainloop<1, 1, false>(acc, smem, full, empty, &step, ktiles, tail, cw, tid, 0);
        wgp_store_dw_tile<DW, TSTORE>(acc, t, smem + WG_STAGES * STAGE, &mdw, dw, n, k, mlim, nlim, add, pair, tid);
    }
}

// wgpc_wgrad: wgp_wgrad's op in clusters of two (1-d grid of 2C CTAs, as wgpc_forward). Pair p is the two dW tiles
// of group p / (nx ny2), k columns n0 = 256 (p % nx) .. and n rows m0 = 128 (2 (p / nx % ny2) + r) for rank r (nx
// column tiles, ny2 = ceil(ny / 2) pairs of the ny row tiles): the reduction runs over the same rows of the same
// group, so the two share A_g's 4 panels of each K step (rank r multicasts panels 2r and 2r + 1) and each loads
// its own 2 panels of dC; where ny is odd, the last pair's rank-1 tile is past n: rank 0 loads all of its A and
// rank 1 takes the steps without loads. An empty group's two tiles take one step without loads each (zeroed
// unless add). The rows past the group in its last step are zeroed in each CTA's own copy (named barrier 1 of
// the 256 consumer threads, as wgp_wgrad) before its wgmmas read them. Barriers, releases and the exit as in
// wgpc_forward; the same sums in the same order as wgp_wgrad: the same bits.
template <typename DW, bool TSTORE>
__global__ void __launch_bounds__(WGP_THREADS, 1)
    wgpc_wgrad(DW *dw, const __grid_constant__ WgtMap mdc, const __grid_constant__ WgtMap ma,
               const __grid_constant__ WgtMap mdw, const int32_t *offsets, int G, int n, int k, int pair, int add) {
    extern __shared__ __align__(1024) unsigned char wg_smem_raw[];
    unsigned char *smem = wg_smem_raw + ((1024 - (smem_addr(wg_smem_raw) & 1023)) & 1023);
    __shared__ __align__(8) uint64_t full[WG_STAGES], empty[WG_STAGES];
    __shared__ wgp_wtile_t info[WG_STAGES];
    constexpr int STAGE = WG_A_BYTES + WG_B_BYTES;
    const int wgi = threadIdx.x >> 7, nx = (k + WG_BN - 1) / WG_BN, ny = (n + WG_BM - 1) / WG_BM, ny2 = (ny + 1) / 2;
    const long npairs = (long)nx * ny2 * G;
    const unsigned rank = cl_rank(), peer = rank ^ 1u;
    const uint32_t base = smem_addr(smem);
    if (threadIdx.x == 0) {
        for (int st = 0; st < WG_STAGES; st++) {
            wgt_mbar_init(smem_addr(&full[st]), 1);
            wgt_mbar_init(smem_addr(&empty[st]), WGPC_EMPTY);
        }
        wgt_mbar_init_fence();
    }
    cl_sync();  // both CTAs' barriers are initialized before any multicast or remote arrival
    if (wgi == 0) {  // the producer: one thread
        wg_setmaxnreg_dec<40>();
        if (threadIdx.x == 0) {
            int step = 0;
            for (long p = blockIdx.x >> 1;; p += gridDim.x >> 1) {
                wgp_wtile_t t;
                t.g = -1, t.m0 = 0, t.n0 = 0, t.r0 = 0, t.nr = 0;
                bool share = false;
                if (p < npairs) {
                    const int y = (int)(p / nx % ny2) * 2;
                    t.g = (int)(p / ((long)nx * ny2));
                    t.m0 = (y + (int)rank) * WG_BM, t.n0 = (int)(p % nx) * WG_BN;
                    t.r0 = offsets[t.g], t.nr = offsets[t.g + 1] - t.r0;
                    share = y + 1 < ny;  // both row tiles exist
                }
                // no loads: the end of the walk, an empty group's tile, or a row tile past n (the peer's only)
                const bool idle = t.g < 0 || t.nr <= 0 || t.m0 >= n;
                const int ktiles = t.nr > 0 ? (t.nr + WG_BK - 1) / WG_BK : 1;
                for (int kt = 0; kt < ktiles; kt++, step++) {
                    const int st = step % WG_STAGES;
                    const uint32_t fb = smem_addr(&full[st]), sa = base + st * STAGE, sb = sa + WG_A_BYTES;
                    if (step >= WG_STAGES) wgt_mbar_wait(smem_addr(&empty[st]), (step / WG_STAGES - 1) & 1);
                    if (kt == 0) info[st] = t;
                    if (idle) {
                        wgt_mbar_arrive(fb);
                        continue;
                    }
                    const int y = t.r0 + kt * WG_BK;
                    wgt_mbar_expect_tx(fb, STAGE);
#pragma unroll
                    for (int pnl = 0; pnl < WG_BM / 64; pnl++)
                        wgt_load_2d(sa + pnl * 8192, &mdc, fb, t.m0 + 64 * pnl, y);
                    if (share) {
#pragma unroll
                        for (int q = 0; q < 2; q++) {
                            const int pnl = 2 * (int)rank + q;
                            wgt_load_2d_mc(sb + pnl * 8192, &ma, fb, t.n0 + 64 * pnl, y, 3);
                        }
                    } else {
#pragma unroll
                        for (int pnl = 0; pnl < WG_BN / 64; pnl++)
                            wgt_load_2d(sb + pnl * 8192, &ma, fb, t.n0 + 64 * pnl, y);
                    }
                }
                if (t.g < 0) break;
            }
        }
        __syncwarp();
        cl_sync();  // every thread of both CTAs before either exits
        return;
    }
    wg_setmaxnreg_inc<232>();
    const int cw = wgi - 1, tid = threadIdx.x - 128;  // this warpgroup's rows 64 cw .. 64 cw + 63 of the tile
    for (int step = 0;;) {
        wgt_mbar_wait(smem_addr(&full[step % WG_STAGES]), (step / WG_STAGES) & 1);
        const wgp_wtile_t t = info[step % WG_STAGES];
        if (t.g < 0) break;
        const int mlim = min(WG_BM, n - t.m0), nlim = min(WG_BN, k - t.n0);
        if (t.nr <= 0 || mlim <= 0) {  // an empty group's tile (its gradient is zero), or the peer's tile only
            if (t.nr <= 0 && mlim > 0 && !add) wg_zero_dw(dw + (size_t)t.g * n * k, k, t.m0, t.n0, mlim, nlim, tid);
            const int ktiles = t.nr > 0 ? (t.nr + WG_BK - 1) / WG_BK : 1;
            for (int kt = 0; kt < ktiles; kt++, step++) {
                const int st = step % WG_STAGES;
                if (kt > 0) wgt_mbar_wait(smem_addr(&full[st]), (step / WG_STAGES) & 1);
                wgpc_release(smem_addr(&empty[st]), peer);
            }
            continue;
        }
        const int ktiles = (t.nr + WG_BK - 1) / WG_BK, tail = ktiles * WG_BK - t.nr;
        float acc[128];
        wgp_mainloop<1, 1, true>(acc, smem, full, empty, &step, ktiles, tail, cw, tid, peer);
        wgp_store_dw_tile<DW, TSTORE>(acc, t, smem + WG_STAGES * STAGE, &mdw, dw, n, k, mlim, nlim, add, pair, tid);
    }
    if (TSTORE && tid == 0) wgt_bulk_wait_read<0>();  // the last stores have read their buffers
    cl_sync();  // this CTA's remote arrivals are made, and every multicast into it has landed
}

}  // namespace

#endif
