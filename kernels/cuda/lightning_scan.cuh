// kernels/cuda/lightning_scan.cuh — the chunked lightning-attention scan kernel and its segment scan.
// defines: LightningScanArgs, lightning_scan_kernel<D, REV, STATE_ONLY>, lightning_segscan_kernel,
//          lightning_scan_smem_bytes
//
// One operator serves forward and backward. With roles a (query), b (key), c (value), per head:
//   out_t = sum_{s <= t} lam^(t-s) (a_t . b_s) c_s + lam^(t+1) a_t S0,   S_end = sum_s lam^(L-1-s) b_s^T c_s + lam^L S0
// in chunks of LT = 64 positions (docs/model.md chunked form):
//   O_i = ((A_i B_i^T) o Dec) C_i + diag(lam^(r+1)) A_i S_{i-1},   S_i = lam^m S_{i-1} + (diag(lam^(m-1-c)) B_i)^T C_i.
// Forward: (a, b, c) = (q, k, v). Backward (docs/model.md, exact gradients of the same recurrence):
//   dq = op(dout, v, k) in time order with S0 = state_in^T,
//   dv = op(k, q, dout) and dk = op(v, dout, q) with time reversed (REV), S0 = 0; dv's final state
//   times lam is dstate_in.
//
// Work split: one CTA per (segment of one sequence, head, block of 64 value columns), walking its
// chunks in order with two roles that run concurrently on the same chunk:
//  - state warps 4..7 keep S [D, 64] in fp32 registers (warp owns key rows [w D/4, (w+1) D/4)),
//    advance it S_{i-1} -> S_i and publish a bf16 copy for the next chunk (double-buffered);
//  - output warps 0..3 compute output rows [16w, 16w+16) of chunk i from the bf16 S_{i-1}; key
//    tiles above the diagonal are skipped.
// The two only meet at one barrier per chunk, so each warp's serial chain per chunk is about half of
// what one role doing both would have. Chunks are triple-buffered in shared memory by cp.async, the
// loads of chunks i+1 and i+2 overlapping the work on chunk i. The STATE_ONLY pass has the state
// warps alone.
// Segments: when (sequences x heads x column blocks) is too few CTAs to fill the GPU, each sequence is
// cut into segments of `cps` chunks: a STATE_ONLY pass writes each segment's local end state, the
// segment scan turns those into every segment's start state, and the output pass starts from them.
#ifndef CISPO_KERNELS_CUDA_LIGHTNING_SCAN_CUH
#define CISPO_KERNELS_CUDA_LIGHTNING_SCAN_CUH

#include <cuda_bf16.h>
#include <stdint.h>

#include "kernels/cuda/lightning_mma.cuh"

namespace lightning {

constexpr int LT = 64;        // positions per chunk (rows of a tile)
constexpr int DVB = 64;       // value columns per CTA
constexpr int NSTAGE = 3;     // chunk buffers: chunk i in use, i+1 and i+2 loading
// 4 output warps + 4 state warps; the STATE_ONLY pass has the state warps alone
template <bool STATE_ONLY>
__host__ __device__ constexpr int scan_threads() { return STATE_ONLY ? 128 : 256; }
constexpr float LOG2E = 1.4426950408889634f;

struct LightningScanArgs {
    const __nv_bfloat16 *a, *b, *c; // query, key, value roles [T, H, D]
    __nv_bfloat16 *out;             // [T, H, D] (output pass)
    const float *slopes;            // [H]; lam = exp(-slope)
    const int32_t *cu;              // [nseq + 1] (device)
    int nseq, H;
    int cps;                        // chunks per segment (segment = cps * LT positions)
    const float *init;              // [nseq, H, D, D] start states or NULL (zeros); unsegmented only
    int init_transposed;            // read init[s][h][col][row] instead of [row][col]
    float *seg;                     // [slots, H, D, D]: local end states (STATE_ONLY) / start states
    int segmented;                  // output pass: start from seg[slot] instead of init
    float *state_out;               // [nseq, H, D, D] or NULL; written by each sequence's last segment
    int state_out_decay;            // multiply the final state by lam once more (dstate_in)
    int prof_skip;                  // benchmarks only (the context's lightning_prof_skip knob), results wrong when set:
                                    // 1 output warps skip their math, 2 state warps skip theirs,
                                    // 4 no output stores. Timing with a stage left out places the time.
};

template <int D, bool STATE_ONLY>
constexpr int lightning_scan_smem_bytes() {
    // sA [NSTAGE][LT][D+8], sB [NSTAGE][LT][D+8], sC [NSTAGE][LT][DVB+8], sS [2][D][DVB+8] (bf16);
    // rows padded by 16 bytes so that the 8 rows an ldmatrix reads fall in distinct banks.
    return 2 * ((STATE_ONLY ? 0 : NSTAGE * LT * (D + 8)) + NSTAGE * LT * (D + 8) + NSTAGE * LT * (DVB + 8) +
                (STATE_ONLY ? 0 : 2 * D * (DVB + 8)));
}

// Maps a CTA's slot to (sequence, segment): sequence i owns slots [base(i), base(i+1)) with
// base(i) = cu[i] / seglen + i, which leaves room for ceil(len_i / seglen) >= 1 segments.
__device__ __forceinline__ int lightning_slot_seq(const int32_t *cu, int nseq, int seglen, int slot) {
    int lo = 0, hi = nseq - 1;
    while (lo < hi) {
        int mid = (lo + hi + 1) >> 1;
        if (cu[mid] / seglen + mid <= slot)
            lo = mid;
        else
            hi = mid - 1;
    }
    return lo;
}

template <int D, bool REV, bool STATE_ONLY>
__global__ void __launch_bounds__(scan_threads<STATE_ONLY>(), 1) lightning_scan_kernel(const LightningScanArgs p) {
    constexpr int NT = scan_threads<STATE_ONLY>();
    constexpr int SA = D + 8, SC = DVB + 8;
    constexpr int MT = D / 64;   // 16-row m-tiles of the state per warp
    constexpr int KD = D / 16;   // k-steps over the head dimension
    extern __shared__ __align__(16) unsigned char smem_raw[];
    __nv_bfloat16 *sA = reinterpret_cast<__nv_bfloat16 *>(smem_raw);
    __nv_bfloat16 *sB = sA + (STATE_ONLY ? 0 : NSTAGE * LT * SA);
    __nv_bfloat16 *sC = sB + NSTAGE * LT * SA;
    __nv_bfloat16 *sS = sC + NSTAGE * LT * SC;

    const int tid = threadIdx.x, lane = tid & 31, g = lane >> 2, t4 = lane & 3;
    const bool state_role = STATE_ONLY || tid >= 128;
    const int warp = (tid >> 5) & 3; // index within the role
    // blockIdx.x = slot * (D / DVB) + column block: the CTAs of one (segment, head) are neighbours,
    // run together, and the second one's reads of a and b hit L2 instead of DRAM.
    const int h = blockIdx.y, cb = blockIdx.x % (D / DVB), slot = blockIdx.x / (D / DVB), H = p.H;
    const int seglen = p.cps * LT;
    const int seq = lightning_slot_seq(p.cu, p.nseq, seglen, slot);
    const int t0 = p.cu[seq], L = p.cu[seq + 1] - t0;
    const int seg = slot - (t0 / seglen + seq);
    const int nseg = L > 0 ? (L + seglen - 1) / seglen : 1;
    if (seg >= nseg) return;
    if (STATE_ONLY && seg == nseg - 1) return; // the last segment's local state feeds nothing
    const int nchunks = (L + LT - 1) / LT;
    const int c_begin = seg * p.cps, c_end = min(c_begin + p.cps, nchunks);
    const float ls = p.slopes[h] * LOG2E; // lam^x = exp2(-ls x)

    // ---- state S [D(key), DVB] in fp32 registers: rows warp*D/4 + mt*16 + g (+8), cols nt*8 + 2t4 (+1)
    float S[MT][8][4];
    {
        const float *src = nullptr;
        int tr = 0;
        if (!STATE_ONLY) {
            if (p.segmented)
                src = p.seg + ((size_t)slot * H + h) * D * D;
            else if (p.init) {
                src = p.init + ((size_t)seq * H + h) * D * D;
                tr = p.init_transposed;
            }
        }
#pragma unroll
        for (int mt = 0; mt < MT; mt++)
#pragma unroll
            for (int nt = 0; nt < 8; nt++)
#pragma unroll
                for (int e = 0; e < 4; e++) {
                    int row = warp * (D / 4) + mt * 16 + g + (e >> 1) * 8;
                    int col = cb * DVB + nt * 8 + 2 * t4 + (e & 1);
                    S[mt][nt][e] = src ? (tr ? src[(size_t)col * D + row] : src[(size_t)row * D + col]) : 0.f;
                }
    }
    auto store_state_bf16 = [&](__nv_bfloat16 *dstS) {
#pragma unroll
        for (int mt = 0; mt < MT; mt++)
#pragma unroll
            for (int nt = 0; nt < 8; nt++) {
                int row = warp * (D / 4) + mt * 16 + g, col = nt * 8 + 2 * t4;
                *reinterpret_cast<uint32_t *>(&dstS[row * SC + col]) = pack_bf16(S[mt][nt][0], S[mt][nt][1]);
                *reinterpret_cast<uint32_t *>(&dstS[(row + 8) * SC + col]) = pack_bf16(S[mt][nt][2], S[mt][nt][3]);
            }
    };
    if (!STATE_ONLY && state_role) store_state_bf16(sS);

    // ---- chunk loader: rows past the sequence's end are zero-filled
    auto token_of = [&](int pos) -> size_t { return (size_t)(REV ? t0 + L - 1 - pos : t0 + pos); };
    auto load_chunk = [&](int j, int buf) {
        const int m = min(LT, L - j * LT);
        constexpr int PA = D / 8; // 16-byte pieces per row of a / b
        for (int idx = tid; idx < LT * PA; idx += NT) {
            int r = idx / PA, cc = (idx % PA) * 8;
            bool ok = r < m;
            size_t off = (token_of(ok ? j * LT + r : j * LT) * H + h) * D + cc;
            if (!STATE_ONLY) cp_async16(&sA[(buf * LT + r) * SA + cc], p.a + off, ok);
            cp_async16(&sB[(buf * LT + r) * SA + cc], p.b + off, ok);
        }
        for (int idx = tid; idx < LT * (DVB / 8); idx += NT) {
            int r = idx / (DVB / 8), cc = (idx % (DVB / 8)) * 8;
            bool ok = r < m;
            size_t off = (token_of(ok ? j * LT + r : j * LT) * H + h) * D + cb * DVB + cc;
            cp_async16(&sC[(buf * LT + r) * SC + cc], p.c + off, ok);
        }
        cp_async_commit();
    };

    // Two chunks in flight ahead of the one in use: one SM's share of DRAM bandwidth needs more bytes
    // in flight than one chunk (measured: 2 buffers left the H100 at half its copy bandwidth).
    const int nj = c_end - c_begin;
    if (nj > 0) load_chunk(c_begin, 0);
    if (nj > 1) load_chunk(c_begin + 1, 1);
    for (int jj = 0; jj < nj; jj++) {
        const int j = c_begin + jj, buf = jj % NSTAGE, sb = jj & 1;
        const int m = min(LT, L - j * LT);
        if (jj + 1 < nj)
            cp_async_wait<1>(); // chunk j+1 may still be loading
        else
            cp_async_wait<0>();
        // The one barrier per chunk: chunk j has landed for everyone, sS[sb] holds S_{j-1}, and every
        // warp is done with chunk j-1, so its buffer (and sS[sb ^ 1]) may be overwritten.
        __syncthreads();
        if (jj + 2 < nj) load_chunk(j + 2, (jj + 2) % NSTAGE);
        const __nv_bfloat16 *cA = sA + buf * LT * SA, *cB = sB + buf * LT * SA, *cC = sC + buf * LT * SC;
        const __nv_bfloat16 *cS = sS + sb * D * SC;

        if (!state_role) {
            if (p.prof_skip & 1) continue;
            // ---- output rows [16 warp, 16 warp + 16): O = diag(lam^(r+1)) A S + ((A B^T) o Dec) C
            uint32_t af[KD][4];
#pragma unroll
            for (int kk = 0; kk < KD; kk++)
                ldsm_x4(af[kk], &cA[(warp * 16 + (lane & 7) + ((lane >> 3) & 1) * 8) * SA + kk * 16 + (lane >> 4) * 8]);
            float o[8][4];
#pragma unroll
            for (int nt = 0; nt < 8; nt++) o[nt][0] = o[nt][1] = o[nt][2] = o[nt][3] = 0.f;
#pragma unroll
            for (int kk = 0; kk < KD; kk++)
#pragma unroll
                for (int np = 0; np < 4; np++) {
                    uint32_t bf[4];
                    ldsm_x4_t(bf, &cS[(kk * 16 + (lane & 7) + ((lane >> 3) & 1) * 8) * SC + np * 16 + (lane >> 4) * 8]);
                    mma_bf16(o[2 * np], af[kk], bf[0], bf[1]);
                    mma_bf16(o[2 * np + 1], af[kk], bf[2], bf[3]);
                }
            const int r0 = warp * 16 + g, r1 = r0 + 8;
            {
                float q0 = exp2f(-ls * (float)(r0 + 1)), q1 = exp2f(-ls * (float)(r1 + 1));
#pragma unroll
                for (int nt = 0; nt < 8; nt++) {
                    o[nt][0] *= q0; o[nt][1] *= q0; o[nt][2] *= q1; o[nt][3] *= q1;
                }
            }
            // scores over keys [0, 16 warp + 16): key tiles np <= warp
            float sc[8][4];
#pragma unroll
            for (int nt = 0; nt < 8; nt++) sc[nt][0] = sc[nt][1] = sc[nt][2] = sc[nt][3] = 0.f;
            // k outer, key tiles inner: up to 8 independent accumulators in flight, not a chain of 8
#pragma unroll
            for (int kk = 0; kk < KD; kk++) {
#pragma unroll
                for (int np = 0; np < 4; np++) {
                    if (np <= warp) {
                        uint32_t bf[4];
                        ldsm_x4(bf, &cB[(np * 16 + (lane & 7) + (lane >> 4) * 8) * SA + kk * 16 + ((lane >> 3) & 1) * 8]);
                        mma_bf16(sc[2 * np], af[kk], bf[0], bf[1]);
                        mma_bf16(sc[2 * np + 1], af[kk], bf[2], bf[3]);
                    }
                }
            }
            // causal mask and decay lam^(r-c)
#pragma unroll
            for (int nt = 0; nt < 8; nt++)
#pragma unroll
                for (int e = 0; e < 4; e++) {
                    int r = (e >> 1) ? r1 : r0, c = nt * 8 + 2 * t4 + (e & 1);
                    sc[nt][e] = c <= r ? sc[nt][e] * exp2f(-ls * (float)(r - c)) : 0.f;
                }
#pragma unroll
            for (int kk = 0; kk < 4; kk++) {
                if (kk <= warp) {
                    uint32_t pa[4] = {pack_bf16(sc[2 * kk][0], sc[2 * kk][1]), pack_bf16(sc[2 * kk][2], sc[2 * kk][3]),
                                      pack_bf16(sc[2 * kk + 1][0], sc[2 * kk + 1][1]),
                                      pack_bf16(sc[2 * kk + 1][2], sc[2 * kk + 1][3])};
#pragma unroll
                    for (int np = 0; np < 4; np++) {
                        uint32_t bf[4];
                        ldsm_x4_t(bf, &cC[(kk * 16 + (lane & 7) + ((lane >> 3) & 1) * 8) * SC + np * 16 + (lane >> 4) * 8]);
                        mma_bf16(o[2 * np], pa, bf[0], bf[1]);
                        mma_bf16(o[2 * np + 1], pa, bf[2], bf[3]);
                    }
                }
            }
            if (r0 < m && !(p.prof_skip & 4)) {
                __nv_bfloat16 *dst = p.out + (token_of(j * LT + r0) * H + h) * D + cb * DVB + 2 * t4;
#pragma unroll
                for (int nt = 0; nt < 8; nt++)
                    *reinterpret_cast<uint32_t *>(dst + nt * 8) = pack_bf16(o[nt][0], o[nt][1]);
            }
            if (r1 < m && !(p.prof_skip & 4)) {
                __nv_bfloat16 *dst = p.out + (token_of(j * LT + r1) * H + h) * D + cb * DVB + 2 * t4;
#pragma unroll
                for (int nt = 0; nt < 8; nt++)
                    *reinterpret_cast<uint32_t *>(dst + nt * 8) = pack_bf16(o[nt][2], o[nt][3]);
            }
        }

        // ---- state: S = lam^m S + (diag(lam^(m-1-c)) B)^T C, published as bf16 for chunk j+1
        else {
            if (p.prof_skip & 2) continue;
            const float lm = exp2f(-ls * (float)m);
#pragma unroll
            for (int mt = 0; mt < MT; mt++)
#pragma unroll
                for (int nt = 0; nt < 8; nt++)
#pragma unroll
                    for (int e = 0; e < 4; e++) S[mt][nt][e] *= lm;
#pragma unroll
            for (int kk = 0; kk < 4; kk++) {
                uint32_t bc[4][4];
#pragma unroll
                for (int np = 0; np < 4; np++)
                    ldsm_x4_t(bc[np], &cC[(kk * 16 + (lane & 7) + ((lane >> 3) & 1) * 8) * SC + np * 16 + (lane >> 4) * 8]);
                const int c0 = kk * 16 + 2 * t4;
                auto dec = [&](int c) { return c < m ? exp2f(-ls * (float)(m - 1 - c)) : 0.f; };
                const float d0 = dec(c0), d1 = dec(c0 + 1), d2 = dec(c0 + 8), d3 = dec(c0 + 9);
#pragma unroll
                for (int mt = 0; mt < MT; mt++) {
                    uint32_t af[4];
                    ldsm_x4_t(af, &cB[(kk * 16 + (lane & 7) + (lane >> 4) * 8) * SA + warp * (D / 4) + mt * 16 +
                                      ((lane >> 3) & 1) * 8]);
                    float2 x;
                    x = unpack_bf16(af[0]); af[0] = pack_bf16(x.x * d0, x.y * d1);
                    x = unpack_bf16(af[1]); af[1] = pack_bf16(x.x * d0, x.y * d1);
                    x = unpack_bf16(af[2]); af[2] = pack_bf16(x.x * d2, x.y * d3);
                    x = unpack_bf16(af[3]); af[3] = pack_bf16(x.x * d2, x.y * d3);
#pragma unroll
                    for (int np = 0; np < 4; np++) {
                        mma_bf16(S[mt][2 * np], af, bc[np][0], bc[np][1]);
                        mma_bf16(S[mt][2 * np + 1], af, bc[np][2], bc[np][3]);
                    }
                }
            }
            if (!STATE_ONLY) store_state_bf16(sS + (sb ^ 1) * D * SC);
        }
    }

    // ---- the state leaves: a segment's local end state, or the sequence's final state
    float *dst = nullptr;
    float scale = 1.f;
    if (!state_role) {
        // output warps hold no state
    } else if (STATE_ONLY) {
        dst = p.seg + ((size_t)slot * H + h) * D * D;
    } else if (seg == nseg - 1 && p.state_out) {
        dst = p.state_out + ((size_t)seq * H + h) * D * D;
        if (p.state_out_decay) scale = exp2f(-ls);
    }
    if (dst) {
#pragma unroll
        for (int mt = 0; mt < MT; mt++)
#pragma unroll
            for (int nt = 0; nt < 8; nt++) {
                int row = warp * (D / 4) + mt * 16 + g, col = cb * DVB + nt * 8 + 2 * t4;
                *reinterpret_cast<float2 *>(&dst[(size_t)row * D + col]) =
                    make_float2(S[mt][nt][0] * scale, S[mt][nt][1] * scale);
                *reinterpret_cast<float2 *>(&dst[(size_t)(row + 8) * D + col]) =
                    make_float2(S[mt][nt][2] * scale, S[mt][nt][3] * scale);
            }
    }
}

// Segment scan, one thread per 4 state elements of one (sequence, head): walks the sequence's
// segments in order, replacing each local end state in `seg` by that segment's start state:
// start[0] = init (or 0), start[g+1] = lam^seglen start[g] + local[g] (every segment but the last
// is full). grid (nseq, H, D*D/1024), block 256.
__global__ void __launch_bounds__(256) lightning_segscan_kernel(float *seg, const float *init, int init_transposed,
                                                                const float *slopes, const int32_t *cu, int H,
                                                                int D, int seglen) {
    const int s = blockIdx.x, h = blockIdx.y;
    const int idx = (blockIdx.z * 256 + threadIdx.x) * 4;
    const int t0 = cu[s], L = cu[s + 1] - t0;
    const int base = t0 / seglen + s;
    const int nseg = L > 0 ? (L + seglen - 1) / seglen : 1;
    const float lseg = exp2f(-slopes[h] * LOG2E * (float)seglen);
    float4 run = make_float4(0.f, 0.f, 0.f, 0.f);
    if (init) {
        const float *src = init + ((size_t)s * H + h) * D * D;
        if (init_transposed) {
            int row = idx / D, col = idx % D;
            run = make_float4(src[(size_t)col * D + row], src[(size_t)(col + 1) * D + row],
                              src[(size_t)(col + 2) * D + row], src[(size_t)(col + 3) * D + row]);
        } else {
            run = *reinterpret_cast<const float4 *>(src + idx);
        }
    }
    for (int gi = 0; gi < nseg; gi++) {
        float4 *ptr = reinterpret_cast<float4 *>(seg + ((size_t)(base + gi) * H + h) * D * D + idx);
        if (gi == nseg - 1) {
            *ptr = run;
            break;
        }
        float4 loc = *ptr;
        *ptr = run;
        run = make_float4(run.x * lseg + loc.x, run.y * lseg + loc.y, run.z * lseg + loc.z, run.w * lseg + loc.w);
    }
}

} // namespace lightning

#endif
