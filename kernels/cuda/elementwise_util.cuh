// kernels/cuda/elementwise_util.cuh — device helpers shared by the memory-bound kernels
// (elementwise.cu, norm.cu, rope.cu, moe.cu, optim.cu): element loads/stores as fp32 for bf16 and fp32
// tensors, 16-byte vectors of them, warp and block sums, launch sizes and checks, dtype dispatch.
// defines: ew_get, ew_put, EW_VN, ew_vload, ew_vstore, ew_ld, ew_st, ew_aligned16, ew_warp_sum, ew_warp_sum_d,
//          ew_block_sum, ew_blocks, ew_check, EW_DISPATCH, MOE_SMALL_SLOTS, MOE_SMALL_E, moe_perm_inverse_shared,
//          moe_sort_small, moe_sort_small_store
// Include after base/common.h and kernels/backend.h (inside extern "C").
#ifndef CISPO_KERNELS_CUDA_ELEMENTWISE_UTIL_CUH
#define CISPO_KERNELS_CUDA_ELEMENTWISE_UTIL_CUH

#include <cuda_bf16.h>
#include <cuda_runtime.h>
#include <stdint.h>

// One element as fp32, and back (bf16: round to nearest even).
static __device__ __forceinline__ float ew_get(const float *p) { return *p; }
static __device__ __forceinline__ float ew_get(const __nv_bfloat16 *p) { return __bfloat162float(*p); }
static __device__ __forceinline__ void ew_put(float *p, float x) { *p = x; }
static __device__ __forceinline__ void ew_put(__nv_bfloat16 *p, float x) { *p = __float2bfloat16(x); }

// Elements of type T in one 16-byte vector: 8 bf16 or 4 fp32.
#define EW_VN(T) ((int)(16 / sizeof(T)))

// f[0..EW_VN(T)) = the 16-byte vector at p (p 16-byte aligned).
template <typename T>
static __device__ __forceinline__ void ew_vload(float *f, const T *p) {
    uint4 u = *reinterpret_cast<const uint4 *>(p);
    const T *e = reinterpret_cast<const T *>(&u);
#pragma unroll
    for (int i = 0; i < EW_VN(T); i++) f[i] = ew_get(e + i);
}
template <typename T>
static __device__ __forceinline__ void ew_vstore(T *p, const float *f) {
    uint4 u;
    T *e = reinterpret_cast<T *>(&u);
#pragma unroll
    for (int i = 0; i < EW_VN(T); i++) ew_put(e + i, f[i]);
    *reinterpret_cast<uint4 *>(p) = u;
}

// V elements at p as fp32 and back: one element (V = 1, the scalar path) or one 16-byte vector
// (V = EW_VN(T)).
template <typename T, int V>
static __device__ __forceinline__ void ew_ld(float *f, const T *p) {
    if constexpr (V == 1)
        f[0] = ew_get(p);
    else
        ew_vload(f, p);
}
template <typename T, int V>
static __device__ __forceinline__ void ew_st(T *p, const float *f) {
    if constexpr (V == 1)
        ew_put(p, f[0]);
    else
        ew_vstore(p, f);
}

// An MoE dispatch of at most MOE_SMALL_SLOTS slots (decode-sized) is handled inside one launch: its perm fits
// shared memory, and each block of a kernel that reads rows by slot inverts it there (moe_perm_inverse_shared).
#define MOE_SMALL_SLOTS 2048

// inv[perm[j]] = j for the n slots of a dispatch (slots outside [0, n) skipped), by the whole block into its
// shared memory; returns inv once every thread sees it.
static __device__ __forceinline__ const int32_t *moe_perm_inverse_shared(int32_t *inv, const int32_t *perm, int n) {
    for (int j = threadIdx.x; j < n; j += blockDim.x) {
        int s = perm[j];
        if (s >= 0 && s < n) inv[s] = j;
    }
    __syncthreads();
    return inv;
}

// The stable counting sort of a small dispatch (n <= MOE_SMALL_SLOTS slots, E <= MOE_SMALL_E experts) by the whole
// block in its shared memory: off [E + 1] each expert's first dispatched row (off[E] = n), pos [n] the slot of each
// dispatched row (-1 past the slots with an expert in [0, E)), cnt [E] scratch. Slots of one expert keep their
// order (warp 0, 32 slots at a time: match_any and the rank among the peers), as moe_dispatch's larger kernels do.
// Ends with a barrier: every thread sees off and pos.
#define MOE_SMALL_E 1024
static __device__ __forceinline__ void moe_sort_small(int32_t *cnt, int32_t *off, int32_t *pos,
                                                      const int32_t *topk_idx, int n, int E) {
    for (int e = threadIdx.x; e < E; e += blockDim.x) cnt[e] = 0;
    for (int j = threadIdx.x; j < n; j += blockDim.x) pos[j] = -1;
    __syncthreads();
    for (int s = threadIdx.x; s < n; s += blockDim.x) {
        int e = topk_idx[s];
        if (e >= 0 && e < E) atomicAdd(cnt + e, 1);
    }
    __syncthreads();
    if (threadIdx.x < 32) {
        const int lane = threadIdx.x;
        int32_t base = 0;
        for (int e0 = 0; e0 < E; e0 += 32) {  // exclusive scan of the counts; cnt becomes each expert's next row
            int e = e0 + lane;
            int32_t v = e < E ? cnt[e] : 0, incl = v;
#pragma unroll
            for (int o = 1; o < 32; o <<= 1) {
                int32_t u = __shfl_up_sync(0xffffffffu, incl, o);
                if (lane >= o) incl += u;
            }
            if (e < E) off[e] = base + incl - v, cnt[e] = base + incl - v;
            base += __shfl_sync(0xffffffffu, incl, 31);
        }
        if (lane == 0) off[E] = n;
        __syncwarp();
        for (int b0 = 0; b0 < n; b0 += 32) {
            int s = b0 + lane, e = -1;
            if (s < n) {
                e = topk_idx[s];
                if (e < 0 || e >= E) e = -1;
            }
            unsigned peers = __match_any_sync(0xffffffffu, e);
            int rank = __popc(peers & ((1u << lane) - 1u));
            if (e >= 0) pos[cnt[e] + rank] = s;
            __syncwarp();
            if (e >= 0 && rank == 0) cnt[e] += __popc(peers);
            __syncwarp();
        }
    }
    __syncthreads();
}
// moe_sort_small's result as moe_dispatch writes it: perm [n], offsets [E + 1] (one block)
static __device__ __forceinline__ void moe_sort_small_store(int32_t *perm, int32_t *offsets, const int32_t *off,
                                                            const int32_t *pos, int n, int E) {
    for (int j = threadIdx.x; j < n; j += blockDim.x) perm[j] = pos[j];
    for (int e = threadIdx.x; e <= E; e += blockDim.x) offsets[e] = off[e];
}

// NULL counts as aligned (an absent operand does not stop the vector path).
static inline int ew_aligned16(const void *p) { return ((uintptr_t)p & 15) == 0; }

static __device__ __forceinline__ float ew_warp_sum(float v) {
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}
static __device__ __forceinline__ double ew_warp_sum_d(double v) {
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}

// Sum of v over the block (blockDim.x a multiple of 32, at most 1024), returned to every thread;
// sh is 32 floats of shared memory. Fixed order: deterministic.
static __device__ __forceinline__ float ew_block_sum(float v, float *sh) {
    int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, nw = blockDim.x >> 5;
    v = ew_warp_sum(v);
    if (lane == 0) sh[warp] = v;
    __syncthreads();
    if (warp == 0) {
        v = lane < nw ? sh[lane] : 0.0f;
        v = ew_warp_sum(v);
        if (lane == 0) sh[0] = v;
    }
    __syncthreads();
    float r = sh[0];
    __syncthreads();  // sh may be reused at once
    return r;
}

// Blocks of `threads` for `work` items in a grid-stride loop.
static inline unsigned ew_blocks(size_t work, int threads) {
    size_t b = (work + (size_t)threads - 1) / (size_t)threads;
    if (b < 1) b = 1;
    if (b > 16384) b = 16384;
    return (unsigned)b;
}

static inline int ew_check(const char *fn) {
    cudaError_t e = cudaGetLastError();
    if (e != cudaSuccess) return cispo_fail("%s: CUDA error %s (%s)", fn, cudaGetErrorName(e), cudaGetErrorString(e));
    return 0;
}

// Runs the statements (__VA_ARGS__) with the element type T of dtype (bf16 or fp32); any other dtype fails naming fn.
#define EW_DISPATCH(fn, dtype, ...)                                                                   \
    do {                                                                                               \
        if ((dtype) == DTYPE_BF16) {                                                                   \
            typedef __nv_bfloat16 T;                                                                   \
            __VA_ARGS__;                                                                               \
        } else if ((dtype) == DTYPE_F32) {                                                             \
            typedef float T;                                                                           \
            __VA_ARGS__;                                                                               \
        } else {                                                                                       \
            return cispo_fail("%s: dtype %d is not supported (bf16 or fp32)", fn, (int)(dtype));       \
        }                                                                                              \
    } while (0)

#endif
