// kernels/cuda/rope.cu — rotary position embedding on CUDA, NeoX rotate-half over the first R dims of
// each head, pairs (i, i + R/2); dims >= R pass through. CPU reference: kernels/cpu/rope.c, whose
// numerics this follows: fp32 angle pos * inv_freq, cos and sin of that angle evaluated in double and
// rounded to fp32, then times scale (double precision functions are untouched by --use_fast_math).
// defines: rope_forward_cuda, rope_backward_cuda
// One block per token: the token's R/2 cos/sin pairs go to shared memory once, then its nh heads are
// rotated by units of V consecutive pairs (16-byte vectors when the sizes allow).
#include <cuda_bf16.h>
#include <cuda_runtime.h>
#include <string.h>

extern "C" {
#include "base/common.h"
#include "kernels/backend.h"
}
#include "kernels/cuda/elementwise_util.cuh"
#include "kernels/cuda/ops_cuda.h"
#include "kernels/cuda/pdl.cuh"

#define ROPE_MAX_HALF 256
#define ROPE_THREADS 256

// inv_freq passed by value (1 KiB of kernel parameters).
typedef struct {
    float f[ROPE_MAX_HALF];
} rope_freqs_t;


// out (=|+=) rotation of x; sign -1 rotates by -angle (the transpose: the backward). out may alias x.
template <typename T, int V>
__global__ void rope_kernel(T *out, const T *x, const int32_t *pos, int Tn, int nh, int D, int R, rope_freqs_t fr,
                            float scale, float sign, int acc) {
    __shared__ float cs[2 * ROPE_MAX_HALF];
    pdl_wait();  // launched with PDL (kernels/cuda/pdl.cuh)
    pdl_trigger();
    const int half = R / 2, ru = half / V, cu = (D - R) / V, per_head = ru + cu;
    for (int t = blockIdx.x; t < Tn; t += gridDim.x) {
        __syncthreads();  // the previous token's cs is no longer read
        float p = (float)pos[t];
        for (int i = threadIdx.x; i < half; i += blockDim.x) {
            float ang = p * fr.f[i];
            cs[i] = (float)cos((double)ang) * scale;
            cs[half + i] = (float)sin((double)ang) * scale;
        }
        __syncthreads();
        size_t row = (size_t)t * nh * D;
        for (int u = threadIdx.x; u < nh * per_head; u += blockDim.x) {
            int h = u / per_head, j = u - h * per_head;
            const T *xr = x + row + (size_t)h * D;
            T *o = out + row + (size_t)h * D;
            if (j < ru) {
                int i0 = j * V;
                float x1[V], x2[V], y1[V], y2[V];
                ew_ld<T, V>(x1, xr + i0);
                ew_ld<T, V>(x2, xr + i0 + half);
#pragma unroll
                for (int k = 0; k < V; k++) {
                    float c = cs[i0 + k], s = sign * cs[half + i0 + k];
                    y1[k] = x1[k] * c + (-x2[k]) * s;  // HF: q cos + rotate_half(q) sin, rotate_half = [-q2, q1]
                    y2[k] = x2[k] * c + x1[k] * s;
                }
                if (acc) {
                    ew_ld<T, V>(x1, o + i0);
                    ew_ld<T, V>(x2, o + i0 + half);
#pragma unroll
                    for (int k = 0; k < V; k++) {
                        y1[k] += x1[k];
                        y2[k] += x2[k];
                    }
                }
                ew_st<T, V>(o + i0, y1);
                ew_st<T, V>(o + i0 + half, y2);
            } else {
                int d0 = R + (j - ru) * V;
                float f[V], g[V];
                ew_ld<T, V>(f, xr + d0);
                if (acc) {
                    ew_ld<T, V>(g, o + d0);
#pragma unroll
                    for (int k = 0; k < V; k++) f[k] += g[k];
                }
                ew_st<T, V>(o + d0, f);
            }
        }
    }
}

template <typename T, int V>
static void rope_launch(T *out, const T *x, const int32_t *pos, int Tn, int nh, int D, int R, const rope_freqs_t &fr,
                        float scale, float sign, int acc, cudaStream_t st) {
    unsigned blocks = Tn < 65535 ? (unsigned)Tn : 65535u;
    PDL_LAUNCH(blocks, ROPE_THREADS, 0, st, rope_kernel<T, V>, out, x, pos, Tn, nh, D, R, fr, scale, sign, acc);
}

static int rope_run(const char *fn, void *out, const void *x, const int32_t *pos, int T_, int nh, int D, int R,
                    const float *inv_freq_host, float scale, float sign, int acc, int dtype, cudaStream_t st) {
    if (T_ < 0 || nh < 0 || D < 0 || R < 0 || R % 2 || R > D)
        return cispo_fail("%s: bad sizes T=%d nh=%d D=%d R=%d (need R even, 0 <= R <= D)", fn, T_, nh, D, R);
    if (R / 2 > ROPE_MAX_HALF) return cispo_fail("%s: rotary dims R=%d above %d", fn, R, 2 * ROPE_MAX_HALF);
    if (R > 0 && !inv_freq_host) return cispo_fail("%s: inv_freq_host is NULL", fn);
    if (!out || !x || !pos) return cispo_fail("%s: NULL pointer argument", fn);
    if (T_ == 0 || nh == 0 || D == 0) return 0;
    rope_freqs_t fr;
    memset(&fr, 0, sizeof fr);
    if (R > 0) memcpy(fr.f, inv_freq_host, (size_t)(R / 2) * sizeof(float));
    EW_DISPATCH(fn, dtype, {
        const int N = EW_VN(T);
        // a vector must not straddle the rotated half or the pass-through part: R/2 and D multiples of N
        if ((R / 2) % N == 0 && D % N == 0 && ew_aligned16(out) && ew_aligned16(x))
            rope_launch<T, N>((T *)out, (const T *)x, pos, T_, nh, D, R, fr, scale, sign, acc, st);
        else
            rope_launch<T, 1>((T *)out, (const T *)x, pos, T_, nh, D, R, fr, scale, sign, acc, st);
    });
    return ew_check(fn);
}

extern "C" int rope_forward_cuda(void *out, const void *x, const int32_t *pos, int T_, int nh, int D, int R,
                                 const float *inv_freq_host, float scale, int dtype, cudaStream_t st) {
    return rope_run("rope_forward_cuda", out, x, pos, T_, nh, D, R, inv_freq_host, scale, 1.0f, 0, dtype, st);
}

extern "C" int rope_backward_cuda(void *dx, const void *dout, const int32_t *pos, int T_, int nh, int D, int R,
                                  const float *inv_freq_host, float scale, int acc, int dtype, cudaStream_t st) {
    return rope_run("rope_backward_cuda", dx, dout, pos, T_, nh, D, R, inv_freq_host, scale, -1.0f, acc, dtype, st);
}
