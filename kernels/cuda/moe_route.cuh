// kernels/cuda/moe_route.cuh — one token's MoE routing by one warp, shared by moe.cu's moe_route_forward kernel
// and norm.cu's residual_rmsnorm_route (the decode step's post-attention norm with the router), and the block's
// counting sort of a few slots by expert (moe.cu's small dispatch; residual_rmsnorm_route's last CTA): the softmax of E
// logits in double exponentials like the CPU (kernels/cpu/moe.c), rounded to fp32; top-K by K warp arg-max rounds
// (ties: the lower expert index); the weights renormalised in double. Replay: the K experts are read from idx
// (lane k holds the k-th) and only their weights are computed.
// defines: MOE_MAX_PER_LANE, MOE_MAX_K, moe_route_row, MOE_ROUTE_NJ_DISPATCH, moe_sort_block
// NJ: the registers a lane holds, ceil(E / 32) rounded up to a power of two (the same sums as any larger NJ: the
// extra registers hold zeros and are never picked; one double division a lane instead of 16 at E = 32).
// Include after elementwise_util.cuh.
#ifndef CISPO_KERNELS_CUDA_MOE_ROUTE_CUH
#define CISPO_KERNELS_CUDA_MOE_ROUTE_CUH

#define MOE_MAX_PER_LANE 16  // router: E <= 32 * 16 experts held in registers by one warp
#define MOE_MAX_K 32         // one lane per chosen expert

// The whole warp: probs [E], idx [K] (read with replay, else written) and w [K] of the token whose logits are z
// (global or shared memory).
template <typename T, int NJ>
static __device__ __forceinline__ void moe_route_row(float *pr, int32_t *idx, float *w, const T *z, int E, int K,
                                                     int replay) {
    const int lane = threadIdx.x & 31;
    float zl[NJ], p[NJ];
    float mx = -INFINITY;
#pragma unroll
    for (int j = 0; j < NJ; j++) {
        int e = lane + 32 * j;
        zl[j] = e < E ? ew_get(z + e) : -INFINITY;
        mx = zl[j] > mx ? zl[j] : mx;
    }
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) {
        float other = __shfl_xor_sync(0xffffffffu, mx, o);
        mx = other > mx ? other : mx;
    }
    double ex[NJ], sum = 0;
#pragma unroll
    for (int j = 0; j < NJ; j++) {
        ex[j] = lane + 32 * j < E ? exp((double)zl[j] - mx) : 0.0;
        sum += ex[j];
    }
    sum = ew_warp_sum_d(sum);
#pragma unroll
    for (int j = 0; j < NJ; j++) {
        int e = lane + 32 * j;
        p[j] = (float)(ex[j] / sum);
        if (e < E) pr[e] = p[j];
    }
    unsigned taken = 0;
    double wsum = 0;
    int my_e = 0;
    float my_p = 0;
    if (replay) {
        // the k-th given expert's probability: held by lane e % 32 in register e / 32
        int e = lane < K ? idx[lane] : 0;
        e = e < 0 || e >= E ? 0 : e;
        for (int k = 0; k < K; k++) {
            int ek = __shfl_sync(0xffffffffu, e, k);
            float pk = 0;
#pragma unroll
            for (int j = 0; j < NJ; j++)
                if (ek >> 5 == j) pk = p[j];
            pk = __shfl_sync(0xffffffffu, pk, ek & 31);
            if (lane == k) my_p = pk;
            wsum += pk;
        }
        if (lane < K) w[lane] = (float)(my_p / wsum);
        return;
    }
    for (int k = 0; k < K; k++) {
        float bv = 0;
        int be = -1;
#pragma unroll
        for (int j = 0; j < NJ; j++) {
            int e = lane + 32 * j;
            if (e < E && !(taken >> j & 1u) && (be < 0 || p[j] > bv)) {
                bv = p[j];
                be = e;
            }
        }
#pragma unroll
        for (int o = 16; o > 0; o >>= 1) {
            float ov = __shfl_xor_sync(0xffffffffu, bv, o);
            int oe = __shfl_xor_sync(0xffffffffu, be, o);
            if (oe >= 0 && (be < 0 || ov > bv || (ov == bv && oe < be))) {
                bv = ov;
                be = oe;
            }
        }
        if ((be & 31) == lane) taken |= 1u << (be >> 5);
        if (lane == k) {
            my_e = be;
            my_p = bv;
        }
        wsum += bv;
    }
    if (lane < K) {
        idx[lane] = my_e;
        w[lane] = (float)(my_p / wsum);
    }
}

// Runs the statements (__VA_ARGS__) with the constant NJ that moe_route_row takes for E experts (E <= 32 *
// MOE_MAX_PER_LANE).
#define MOE_ROUTE_NJ_DISPATCH(E, ...)                         \
    do {                                                      \
        if ((E) <= 32) {                                      \
            constexpr int NJ = 1;                             \
            __VA_ARGS__;                                      \
        } else if ((E) <= 64) {                               \
            constexpr int NJ = 2;                             \
            __VA_ARGS__;                                      \
        } else if ((E) <= 128) {                              \
            constexpr int NJ = 4;                             \
            __VA_ARGS__;                                      \
        } else if ((E) <= 256) {                              \
            constexpr int NJ = 8;                             \
            __VA_ARGS__;                                      \
        } else {                                              \
            constexpr int NJ = MOE_MAX_PER_LANE;              \
            __VA_ARGS__;                                      \
        }                                                     \
    } while (0)

// The whole block: the stable counting sort of n slots by expert (idx [n], read through the L2), moe_dispatch's
// order: pos[j] = the slot of row j (pos: n entries, global or shared memory; a slot with an expert outside
// [0, E) gets no row, and the rows it leaves at the end hold -1), off [E] each expert's first row. cnt and off: E
// int32 each of shared memory. Warp 0 places 32 slots at a time (match_any, then each expert's peers by lane).
static __device__ void moe_sort_block(int32_t *pos, int32_t *off, int32_t *cnt, const int32_t *idx, int n, int E) {
    for (int e = threadIdx.x; e < E; e += blockDim.x) cnt[e] = 0;
    for (int j = threadIdx.x; j < n; j += blockDim.x) pos[j] = -1;
    __syncthreads();
    for (int s = threadIdx.x; s < n; s += blockDim.x) {
        const int e = __ldcg(idx + s);
        if (e >= 0 && e < E) atomicAdd(cnt + e, 1);
    }
    __syncthreads();
    if (threadIdx.x < 32) {
        const int lane = threadIdx.x;
        int32_t base = 0;
        for (int e0 = 0; e0 < E; e0 += 32) {  // exclusive scan of the counts; cnt becomes each expert's next row
            const int e = e0 + lane;
            const int32_t v = e < E ? cnt[e] : 0;
            int32_t incl = v;
#pragma unroll
            for (int o = 1; o < 32; o <<= 1) {
                const int32_t u = __shfl_up_sync(0xffffffffu, incl, o);
                if (lane >= o) incl += u;
            }
            if (e < E) off[e] = base + incl - v, cnt[e] = base + incl - v;
            base += __shfl_sync(0xffffffffu, incl, 31);
        }
        __syncwarp();
        for (int b0 = 0; b0 < n; b0 += 32) {
            const int s = b0 + lane;
            int e = -1;
            if (s < n) {
                e = __ldcg(idx + s);
                if (e < 0 || e >= E) e = -1;
            }
            const unsigned peers = __match_any_sync(0xffffffffu, e);
            const int rank = __popc(peers & ((1u << lane) - 1u));
            if (e >= 0) pos[cnt[e] + rank] = s;
            __syncwarp();
            if (e >= 0 && rank == 0) cnt[e] += __popc(peers);
            __syncwarp();
        }
    }
    __syncthreads();
}

#endif
