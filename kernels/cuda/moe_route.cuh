// kernels/cuda/moe_route.cuh — one token's MoE routing by one warp, shared by moe.cu's moe_route_forward kernel
// and norm.cu's residual_rmsnorm_route (the decode step's post-attention norm with the router): the softmax of E
// logits in double exponentials like the CPU (kernels/cpu/moe.c), rounded to fp32; top-K by K warp arg-max rounds
// (ties: the lower expert index); the weights renormalised in double. Replay: the K experts are read from idx
// (lane k holds the k-th) and only their weights are computed.
// defines: MOE_MAX_PER_LANE, MOE_MAX_K, moe_route_row, MOE_ROUTE_NJ_DISPATCH
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

#endif
