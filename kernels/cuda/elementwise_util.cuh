// kernels/cuda/elementwise_util.cuh — device helpers shared by the memory-bound kernels
// (elementwise.cu, norm.cu, rope.cu, moe.cu, optim.cu): element loads/stores as fp32 for bf16 and fp32
// tensors, 16-byte vectors of them, warp and block sums, launch sizes and checks, dtype dispatch.
// defines: ew_get, ew_put, ew_round, EW_VN, ew_vload, ew_vstore, ew_ld, ew_st, ew_aligned16, ew_warp_sum, ew_warp_sum_d,
//          ew_block_sum, ew_blocks, ew_check, EW_DISPATCH, MOE_SMALL_SLOTS, moe_perm_inverse_shared
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
// x as a T element holds it: what ew_get reads back after ew_put (a value "as stored", kept in a register)
template <typename T>
static __device__ __forceinline__ float ew_round(float x) {
    T h;
    ew_put(&h, x);
    return ew_get(&h);
}

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
