// kernels/cuda/elementwise.cu — memory-bound elementwise ops of the op API (kernels/ops.h) on CUDA:
// residual mix, ACT2FN activations and their gated form, the sigmoid output gate, q/k/v split and
// merge, embedding lookup and its scatter-add, KV-cache writes. bf16 or fp32 storage, fp32 math; the
// CPU references are kernels/cpu/{elementwise,activations,embedding}.c.
// defines: residual_mix_cuda, act_forward_cuda, act_backward_cuda, glu_forward_cuda, glu_backward_cuda,
//          sigmoid_gate_forward_cuda, sigmoid_gate_backward_cuda, qkv_split_cuda, qkv_merge_cuda,
//          embedding_forward_cuda, embedding_backward_cuda, embedding_workspace_bytes_cuda, kv_write_cuda
// Every kernel runs a grid-stride loop over 16-byte vectors when the sizes and pointers allow, and
// over single elements otherwise (and for the tail).
#include <cub/device/device_radix_sort.cuh>
#include <cuda_bf16.h>
#include <cuda_runtime.h>

extern "C" {
#include "base/common.h"
#include "kernels/backend.h"
#include "kernels/ops.h"
}
#include "kernels/act_eval.h"
#include "kernels/cuda/elementwise_util.cuh"
#include "kernels/cuda/ops_cuda.h"
#include "kernels/cuda/pdl.cuh"

#define EW_THREADS 256

// (every kernel here starts with it: the wait of a launch with PDL, kernels/cuda/pdl.cuh; a no-op otherwise)
#define GRID_STRIDE_BEGIN                                                           \
    pdl_wait();                                                                     \
    pdl_trigger();                                                                  \
    size_t tid_ = (size_t)blockIdx.x * blockDim.x + threadIdx.x;                    \
    size_t stride_ = (size_t)gridDim.x * blockDim.x;

// ---------------------------------------------------------------------------------------------
// activations: the formulas of kernels/cpu/activations.c (act_eval: kernels/act_eval.h)

static int act_ok(const char *fn, int act) {
    if (act < 0 || act >= ACT_COUNT) return cispo_fail("%s: unknown activation %d", fn, act);
    return 0;
}

// ---------------------------------------------------------------------------------------------
// residual mix: out = alpha r + beta y (r NULL: beta y); out may alias r or y

template <typename T>
__global__ void residual_mix_kernel(T *out, const T *r, const T *y, float alpha, float beta, size_t n, int vec) {
    const int N = EW_VN(T);
    GRID_STRIDE_BEGIN
    size_t nv = vec ? n / N : 0;
    for (size_t i = tid_; i < nv; i += stride_) {
        float fy[N], fr[N];
        ew_vload(fy, y + i * N);
        if (r) {
            ew_vload(fr, r + i * N);
#pragma unroll
            for (int j = 0; j < N; j++) fy[j] = alpha * fr[j] + beta * fy[j];
        } else {
#pragma unroll
            for (int j = 0; j < N; j++) fy[j] = beta * fy[j];
        }
        ew_vstore(out + i * N, fy);
    }
    for (size_t i = nv * N + tid_; i < n; i += stride_) {
        float v = beta * ew_get(y + i);
        if (r) v = alpha * ew_get(r + i) + v;
        ew_put(out + i, v);
    }
}

extern "C" int residual_mix_cuda(void *out, const void *r, const void *y, float alpha, float beta, size_t n, int dtype,
                                 cudaStream_t st) {
    if (n == 0) return 0;
    if (!out || !y) return cispo_fail("residual_mix_cuda: out and y must not be NULL");
    int vec = ew_aligned16(out) && ew_aligned16(r) && ew_aligned16(y);
    EW_DISPATCH("residual_mix_cuda", dtype, {
        residual_mix_kernel<T><<<ew_blocks(vec ? n / EW_VN(T) + EW_VN(T) : n, EW_THREADS), EW_THREADS, 0, st>>>(
            (T *)out, (const T *)r, (const T *)y, alpha, beta, n, vec);
    });
    return ew_check("residual_mix_cuda");
}

// ---------------------------------------------------------------------------------------------
// act_forward: out = act(x) (out may alias x); act_backward: dx (=|+=) dout act'(x)

template <typename T>
__global__ void act_forward_kernel(int act, T *out, const T *x, size_t n, int vec) {
    const int N = EW_VN(T);
    GRID_STRIDE_BEGIN
    size_t nv = vec ? n / N : 0;
    for (size_t i = tid_; i < nv; i += stride_) {
        float f[N];
        ew_vload(f, x + i * N);
#pragma unroll
        for (int j = 0; j < N; j++) f[j] = act_eval(act, f[j], NULL);
        ew_vstore(out + i * N, f);
    }
    for (size_t i = nv * N + tid_; i < n; i += stride_) ew_put(out + i, act_eval(act, ew_get(x + i), NULL));
}

template <typename T>
__global__ void act_backward_kernel(int act, T *dx, const T *dout, const T *x, size_t n, int acc, int vec) {
    const int N = EW_VN(T);
    GRID_STRIDE_BEGIN
    size_t nv = vec ? n / N : 0;
    for (size_t i = tid_; i < nv; i += stride_) {
        float fx[N], fd[N], fo[N];
        ew_vload(fx, x + i * N);
        ew_vload(fd, dout + i * N);
        if (acc) ew_vload(fo, dx + i * N);
#pragma unroll
        for (int j = 0; j < N; j++) {
            float g;
            act_eval(act, fx[j], &g);
            fd[j] = acc ? fo[j] + fd[j] * g : fd[j] * g;
        }
        ew_vstore(dx + i * N, fd);
    }
    for (size_t i = nv * N + tid_; i < n; i += stride_) {
        float g;
        act_eval(act, ew_get(x + i), &g);
        float v = ew_get(dout + i) * g;
        ew_put(dx + i, acc ? ew_get(dx + i) + v : v);
    }
}

extern "C" int act_forward_cuda(int act, void *out, const void *x, size_t n, int dtype, cudaStream_t st) {
    if (act_ok("act_forward_cuda", act)) return -1;
    if (n == 0) return 0;
    int vec = ew_aligned16(out) && ew_aligned16(x);
    EW_DISPATCH("act_forward_cuda", dtype, {
        act_forward_kernel<T><<<ew_blocks(vec ? n / EW_VN(T) + EW_VN(T) : n, EW_THREADS), EW_THREADS, 0, st>>>(
            act, (T *)out, (const T *)x, n, vec);
    });
    return ew_check("act_forward_cuda");
}

extern "C" int act_backward_cuda(int act, void *dx, const void *dout, const void *x, size_t n, int acc, int dtype,
                                 cudaStream_t st) {
    if (act_ok("act_backward_cuda", act)) return -1;
    if (n == 0) return 0;
    int vec = ew_aligned16(dx) && ew_aligned16(dout) && ew_aligned16(x);
    EW_DISPATCH("act_backward_cuda", dtype, {
        act_backward_kernel<T><<<ew_blocks(vec ? n / EW_VN(T) + EW_VN(T) : n, EW_THREADS), EW_THREADS, 0, st>>>(
            act, (T *)dx, (const T *)dout, (const T *)x, n, acc, vec);
    });
    return ew_check("act_backward_cuda");
}

// ---------------------------------------------------------------------------------------------
// gated: h13 [T, 2F] = [h1 | h3], out [T, F] = act(h1) h3;
// backward: dh1 (=|+=) dout h3 act'(h1), dh3 (=|+=) dout act(h1)

template <typename T>
__global__ void glu_forward_kernel(int act, T *out, const T *h13, int Tn, int F, int vec) {
    const int N = EW_VN(T);
    GRID_STRIDE_BEGIN
    if (vec) {
        size_t FV = (size_t)F / N, nv = (size_t)Tn * FV;
        for (size_t i = tid_; i < nv; i += stride_) {
            size_t t = i / FV, f = (i - t * FV) * N;
            const T *h1 = h13 + t * 2 * F + f;
            float a[N], b[N];
            ew_vload(a, h1);
            ew_vload(b, h1 + F);
#pragma unroll
            for (int j = 0; j < N; j++) a[j] = act_eval(act, a[j], NULL) * b[j];
            ew_vstore(out + t * F + f, a);
        }
    } else {
        size_t n = (size_t)Tn * F;
        for (size_t i = tid_; i < n; i += stride_) {
            size_t t = i / F, f = i - t * F;
            const T *h1 = h13 + t * 2 * F + f;
            ew_put(out + i, act_eval(act, ew_get(h1), NULL) * ew_get(h1 + F));
        }
    }
}

template <typename T>
__global__ void glu_backward_kernel(int act, T *dh13, const T *dout, const T *h13, int Tn, int F, int acc, int vec) {
    const int N = EW_VN(T);
    GRID_STRIDE_BEGIN
    if (vec) {
        size_t FV = (size_t)F / N, nv = (size_t)Tn * FV;
        for (size_t i = tid_; i < nv; i += stride_) {
            size_t t = i / FV, f = (i - t * FV) * N;
            const T *h1 = h13 + t * 2 * F + f;
            T *d1 = dh13 + t * 2 * F + f;
            float a[N], b[N], dy[N], o1[N], o3[N];
            ew_vload(a, h1);
            ew_vload(b, h1 + F);
            ew_vload(dy, dout + t * F + f);
            if (acc) {
                ew_vload(o1, d1);
                ew_vload(o3, d1 + F);
            }
#pragma unroll
            for (int j = 0; j < N; j++) {
                float g, y = act_eval(act, a[j], &g);
                float v1 = dy[j] * b[j] * g, v3 = dy[j] * y;
                a[j] = acc ? o1[j] + v1 : v1;
                b[j] = acc ? o3[j] + v3 : v3;
            }
            ew_vstore(d1, a);
            ew_vstore(d1 + F, b);
        }
    } else {
        size_t n = (size_t)Tn * F;
        for (size_t i = tid_; i < n; i += stride_) {
            size_t t = i / F, f = i - t * F;
            const T *h1 = h13 + t * 2 * F + f;
            T *d1 = dh13 + t * 2 * F + f;
            float g, y = act_eval(act, ew_get(h1), &g), dy = ew_get(dout + i);
            float v1 = dy * ew_get(h1 + F) * g, v3 = dy * y;
            ew_put(d1, acc ? ew_get(d1) + v1 : v1);
            ew_put(d1 + F, acc ? ew_get(d1 + F) + v3 : v3);
        }
    }
}

extern "C" int glu_forward_cuda(int act, void *out, const void *h13, int T_, int F, int dtype, cudaStream_t st) {
    if (act_ok("glu_forward_cuda", act)) return -1;
    if (T_ < 0 || F < 0) return cispo_fail("glu_forward_cuda: bad sizes T=%d F=%d", T_, F);
    size_t n = (size_t)T_ * F;
    if (n == 0) return 0;
    EW_DISPATCH("glu_forward_cuda", dtype, {
        int vec = F % EW_VN(T) == 0 && ew_aligned16(out) && ew_aligned16(h13);
        PDL_LAUNCH(ew_blocks(vec ? n / EW_VN(T) : n, EW_THREADS), EW_THREADS, 0, st, glu_forward_kernel<T>,
            act, (T *)out, (const T *)h13, T_, F, vec);
    });
    return ew_check("glu_forward_cuda");
}

extern "C" int glu_backward_cuda(int act, void *dh13, const void *dout, const void *h13, int T_, int F, int acc,
                                 int dtype, cudaStream_t st) {
    if (act_ok("glu_backward_cuda", act)) return -1;
    if (T_ < 0 || F < 0) return cispo_fail("glu_backward_cuda: bad sizes T=%d F=%d", T_, F);
    size_t n = (size_t)T_ * F;
    if (n == 0) return 0;
    EW_DISPATCH("glu_backward_cuda", dtype, {
        int vec = F % EW_VN(T) == 0 && ew_aligned16(dh13) && ew_aligned16(dout) && ew_aligned16(h13);
        glu_backward_kernel<T><<<ew_blocks(vec ? n / EW_VN(T) : n, EW_THREADS), EW_THREADS, 0, st>>>(
            act, (T *)dh13, (const T *)dout, (const T *)h13, T_, F, acc, vec);
    });
    return ew_check("glu_backward_cuda");
}

// ---------------------------------------------------------------------------------------------
// sigmoid gate: out = s x, s = sigmoid(g); backward dg (=|+=) dout x s (1 - s), dx (=|+=) dout s,
// either may be NULL

template <typename T>
__global__ void sigmoid_gate_forward_kernel(T *out, const T *g, const T *x, size_t n, int vec) {
    const int N = EW_VN(T);
    GRID_STRIDE_BEGIN
    size_t nv = vec ? n / N : 0;
    for (size_t i = tid_; i < nv; i += stride_) {
        float fg[N], fx[N];
        ew_vload(fg, g + i * N);
        ew_vload(fx, x + i * N);
#pragma unroll
        for (int j = 0; j < N; j++) fx[j] = act_sigmoidf(fg[j]) * fx[j];
        ew_vstore(out + i * N, fx);
    }
    for (size_t i = nv * N + tid_; i < n; i += stride_) ew_put(out + i, act_sigmoidf(ew_get(g + i)) * ew_get(x + i));
}

template <typename T>
__global__ void sigmoid_gate_backward_kernel(T *dg, T *dx, const T *dout, const T *g, const T *x, size_t n, int acc,
                                             int vec) {
    const int N = EW_VN(T);
    GRID_STRIDE_BEGIN
    size_t nv = vec ? n / N : 0;
    for (size_t i = tid_; i < nv; i += stride_) {
        float fg[N], fx[N], fd[N], o[N];
        ew_vload(fg, g + i * N);
        ew_vload(fx, x + i * N);
        ew_vload(fd, dout + i * N);
        if (dg) {
            if (acc) ew_vload(o, dg + i * N);
            float r[N];
#pragma unroll
            for (int j = 0; j < N; j++) {
                float s = act_sigmoidf(fg[j]), v = fd[j] * fx[j] * s * (1.0f - s);
                r[j] = acc ? o[j] + v : v;
            }
            ew_vstore(dg + i * N, r);
        }
        if (dx) {
            if (acc) ew_vload(o, dx + i * N);
            float r[N];
#pragma unroll
            for (int j = 0; j < N; j++) {
                float v = fd[j] * act_sigmoidf(fg[j]);
                r[j] = acc ? o[j] + v : v;
            }
            ew_vstore(dx + i * N, r);
        }
    }
    for (size_t i = nv * N + tid_; i < n; i += stride_) {
        float s = act_sigmoidf(ew_get(g + i)), d = ew_get(dout + i);
        if (dg) {
            float v = d * ew_get(x + i) * s * (1.0f - s);
            ew_put(dg + i, acc ? ew_get(dg + i) + v : v);
        }
        if (dx) {
            float v = d * s;
            ew_put(dx + i, acc ? ew_get(dx + i) + v : v);
        }
    }
}

extern "C" int sigmoid_gate_forward_cuda(void *out, const void *g, const void *x, size_t n, int dtype, cudaStream_t st) {
    if (n == 0) return 0;
    int vec = ew_aligned16(out) && ew_aligned16(g) && ew_aligned16(x);
    EW_DISPATCH("sigmoid_gate_forward_cuda", dtype, {
        sigmoid_gate_forward_kernel<T><<<ew_blocks(vec ? n / EW_VN(T) + EW_VN(T) : n, EW_THREADS), EW_THREADS, 0,
                                         st>>>((T *)out, (const T *)g, (const T *)x, n, vec);
    });
    return ew_check("sigmoid_gate_forward_cuda");
}

extern "C" int sigmoid_gate_backward_cuda(void *dg, void *dx, const void *dout, const void *g, const void *x, size_t n,
                                          int acc, int dtype, cudaStream_t st) {
    if (n == 0 || (!dg && !dx)) return 0;
    int vec = ew_aligned16(dg) && ew_aligned16(dx) && ew_aligned16(dout) && ew_aligned16(g) && ew_aligned16(x);
    EW_DISPATCH("sigmoid_gate_backward_cuda", dtype, {
        sigmoid_gate_backward_kernel<T><<<ew_blocks(vec ? n / EW_VN(T) + EW_VN(T) : n, EW_THREADS), EW_THREADS, 0,
                                          st>>>((T *)dg, (T *)dx, (const T *)dout, (const T *)g, (const T *)x, n, acc,
                                                vec);
    });
    return ew_check("sigmoid_gate_backward_cuda");
}

// ---------------------------------------------------------------------------------------------
// Row copies (split, merge, lookup, cache writes) move bytes: U is the copy unit, uint4 when every
// row is a whole number of aligned 16-byte vectors, else the element itself (2 or 4 bytes).

// qkv [TH, 3, DU] <-> q, k, v [TH, DU] in units; split = 1 reads qkv, 0 writes it.
template <typename U>
__global__ void qkv_copy_kernel(U *qkv, U *q, U *k, U *v, size_t TH, size_t DU, int split) {
    GRID_STRIDE_BEGIN
    size_t n = TH * 3 * DU;
    for (size_t i = tid_; i < n; i += stride_) {
        size_t th = i / (3 * DU), rem = i - th * 3 * DU, part = rem / DU, d = rem - part * DU;
        U *other = (part == 0 ? q : part == 1 ? k : v) + th * DU + d;
        if (split)
            *other = qkv[i];
        else
            qkv[i] = *other;
    }
}

static int qkv_copy(const char *fn, void *qkv, void *q, void *k, void *v, int T_, int H, int D, int dtype,
                    int split, cudaStream_t st) {
    if (T_ < 0 || H < 0 || D < 0) return cispo_fail("%s: bad sizes T=%d H=%d D=%d", fn, T_, H, D);
    if (dtype != DTYPE_BF16 && dtype != DTYPE_F32) return cispo_fail("%s: dtype %d is not supported", fn, dtype);
    size_t TH = (size_t)T_ * H, esz = dtype == DTYPE_BF16 ? 2 : 4, row = (size_t)D * esz;
    if (TH == 0 || D == 0) return 0;
    if (row % 16 == 0 && ew_aligned16(qkv) && ew_aligned16(q) && ew_aligned16(k) && ew_aligned16(v)) {
        size_t DU = row / 16;
        PDL_LAUNCH(ew_blocks(TH * 3 * DU, EW_THREADS), EW_THREADS, 0, st, qkv_copy_kernel<uint4>,
            (uint4 *)qkv, (uint4 *)q, (uint4 *)k, (uint4 *)v, TH, DU, split);
    } else if (esz == 2) {
        PDL_LAUNCH(ew_blocks(TH * 3 * D, EW_THREADS), EW_THREADS, 0, st, qkv_copy_kernel<uint16_t>,
            (uint16_t *)qkv, (uint16_t *)q, (uint16_t *)k, (uint16_t *)v, TH, (size_t)D, split);
    } else {
        PDL_LAUNCH(ew_blocks(TH * 3 * D, EW_THREADS), EW_THREADS, 0, st, qkv_copy_kernel<uint32_t>,
            (uint32_t *)qkv, (uint32_t *)q, (uint32_t *)k, (uint32_t *)v, TH, (size_t)D, split);
    }
    return ew_check(fn);
}

// q, k, v [TH, D] = act(qkv [TH, 3, D]) elementwise, in vectors of N when D is a multiple of N and
// everything is 16-byte aligned (vec), else element by element; rounding as act_forward's.
template <typename T>
__global__ void qkv_act_split_kernel(int act, const T *qkv, T *q, T *k, T *v, size_t TH, int D, int vec) {
    const int N = vec ? EW_VN(T) : 1;
    GRID_STRIDE_BEGIN
    const size_t DU = (size_t)D / N, n = TH * 3 * DU;
    for (size_t i = tid_; i < n; i += stride_) {
        size_t th = i / (3 * DU), rem = i - th * 3 * DU, part = rem / DU, d = (rem - part * DU) * N;
        T *dst = (part == 0 ? q : part == 1 ? k : v) + th * D + d;
        const T *src = qkv + (th * 3 + part) * D + d;
        if (vec) {
            float f[EW_VN(T)];
            ew_vload(f, src);
#pragma unroll
            for (int j = 0; j < EW_VN(T); j++) f[j] = act_eval(act, f[j], NULL);
            ew_vstore(dst, f);
        } else {
            ew_put(dst, act_eval(act, ew_get(src), NULL));
        }
    }
}

extern "C" int qkv_split_cuda(void *q, void *k, void *v, const void *qkv, int T_, int H, int D, int act, int dtype,
                              cudaStream_t st) {
    if (act < 0) return qkv_copy("qkv_split_cuda", (void *)qkv, q, k, v, T_, H, D, dtype, 1, st);
    if (act_ok("qkv_split_cuda", act)) return -1;
    if (T_ < 0 || H < 0 || D < 0) return cispo_fail("qkv_split_cuda: bad sizes T=%d H=%d D=%d", T_, H, D);
    size_t TH = (size_t)T_ * H;
    if (TH == 0 || D == 0) return 0;
    EW_DISPATCH("qkv_split_cuda", dtype, {
        int vec = D % EW_VN(T) == 0 && ew_aligned16(qkv) && ew_aligned16(q) && ew_aligned16(k) && ew_aligned16(v);
        size_t units = TH * 3 * (size_t)(vec ? D / EW_VN(T) : D);
        PDL_LAUNCH(ew_blocks(units, EW_THREADS), EW_THREADS, 0, st, qkv_act_split_kernel<T>,
            act, (const T *)qkv, (T *)q, (T *)k, (T *)v, TH, D, vec);
    });
    return ew_check("qkv_split_cuda");
}

// dqkv [TH, 3, D] = [dq | dk | dv] [TH, D] times act'(qkv) elementwise (qkv_act_split_kernel's transpose), in
// vectors of N when D is a multiple of N and everything is 16-byte aligned (vec); rounding as act_backward's.
template <typename T>
__global__ void qkv_act_merge_kernel(int act, T *dqkv, const T *qkv, const T *dq, const T *dk, const T *dv, size_t TH,
                                     int D, int vec) {
    const int N = vec ? EW_VN(T) : 1;
    GRID_STRIDE_BEGIN
    const size_t DU = (size_t)D / N, n = TH * 3 * DU;
    for (size_t i = tid_; i < n; i += stride_) {
        size_t th = i / (3 * DU), rem = i - th * 3 * DU, part = rem / DU, d = (rem - part * DU) * N;
        const T *src = (part == 0 ? dq : part == 1 ? dk : dv) + th * D + d;
        const size_t at = (th * 3 + part) * D + d;
        if (vec) {
            float f[EW_VN(T)], x[EW_VN(T)];
            ew_vload(f, src);
            ew_vload(x, qkv + at);
#pragma unroll
            for (int j = 0; j < EW_VN(T); j++) {
                float g;
                act_eval(act, x[j], &g);
                f[j] = f[j] * g;
            }
            ew_vstore(dqkv + at, f);
        } else {
            float g;
            act_eval(act, ew_get(qkv + at), &g);
            ew_put(dqkv + at, ew_get(src) * g);
        }
    }
}

extern "C" int qkv_merge_cuda(void *dqkv, const void *dq, const void *dk, const void *dv, const void *qkv, int T_,
                              int H, int D, int act, int dtype, cudaStream_t st) {
    if (act < 0) return qkv_copy("qkv_merge_cuda", dqkv, (void *)dq, (void *)dk, (void *)dv, T_, H, D, dtype, 0, st);
    if (act_ok("qkv_merge_cuda", act)) return -1;
    if (T_ < 0 || H < 0 || D < 0) return cispo_fail("qkv_merge_cuda: bad sizes T=%d H=%d D=%d", T_, H, D);
    size_t TH = (size_t)T_ * H;
    if (TH == 0 || D == 0) return 0;
    EW_DISPATCH("qkv_merge_cuda", dtype, {
        int vec = D % EW_VN(T) == 0 && ew_aligned16(qkv) && ew_aligned16(dqkv) && ew_aligned16(dq) &&
                  ew_aligned16(dk) && ew_aligned16(dv);
        size_t units = TH * 3 * (size_t)(vec ? D / EW_VN(T) : D);
        PDL_LAUNCH(ew_blocks(units, EW_THREADS), EW_THREADS, 0, st, qkv_act_merge_kernel<T>,
            act, (T *)dqkv, (const T *)qkv, (const T *)dq, (const T *)dk, (const T *)dv, TH, D, vec);
    });
    return ew_check("qkv_merge_cuda");
}

// out[t] = table[ids[t]] (rows of CU units); a negative id (invalid input) gives a zero row.
template <typename U>
__global__ void embedding_forward_kernel(U *out, const int32_t *ids, const U *table, int Tn, size_t CU) {
    GRID_STRIDE_BEGIN
    size_t n = (size_t)Tn * CU;
    for (size_t i = tid_; i < n; i += stride_) {
        size_t t = i / CU, c = i - t * CU;
        int32_t id = ids[t];
        U z;
        memset(&z, 0, sizeof z);
        out[i] = id >= 0 ? table[(size_t)id * CU + c] : z;
    }
}

extern "C" int embedding_forward_cuda(void *out, const int32_t *ids, const void *table, int T_, int C, int dtype,
                                      cudaStream_t st) {
    if (T_ < 0 || C < 0) return cispo_fail("embedding_forward_cuda: bad sizes T=%d C=%d", T_, C);
    if (dtype != DTYPE_BF16 && dtype != DTYPE_F32)
        return cispo_fail("embedding_forward_cuda: dtype %d is not supported", dtype);
    size_t esz = dtype == DTYPE_BF16 ? 2 : 4, row = (size_t)C * esz;
    if (T_ == 0 || C == 0) return 0;
    if (row % 16 == 0 && ew_aligned16(out) && ew_aligned16(table))
        PDL_LAUNCH(ew_blocks((size_t)T_ * (row / 16), EW_THREADS), EW_THREADS, 0, st, embedding_forward_kernel<uint4>,
            (uint4 *)out, ids, (const uint4 *)table, T_, row / 16);
    else if (esz == 2)
        PDL_LAUNCH(ew_blocks((size_t)T_ * C, EW_THREADS), EW_THREADS, 0, st, embedding_forward_kernel<uint16_t>,
            (uint16_t *)out, ids, (const uint16_t *)table, T_, (size_t)C);
    else
        PDL_LAUNCH(ew_blocks((size_t)T_ * C, EW_THREADS), EW_THREADS, 0, st, embedding_forward_kernel<uint32_t>,
            (uint32_t *)out, ids, (const uint32_t *)table, T_, (size_t)C);
    return ew_check("embedding_forward_cuda");
}

// dtable[ids[t]] += dout[t] in fp32 atomics (the order of repeated ids is not fixed); pad_id rows and
// negative ids get nothing.
template <typename T>
__global__ void embedding_backward_kernel(float *dtable, const T *dout, const int32_t *ids, int Tn, int C, int pad_id,
                                          int vec) {
    const int N = EW_VN(T);
    GRID_STRIDE_BEGIN
    if (vec) {
        size_t CV = (size_t)C / N, n = (size_t)Tn * CV;
        for (size_t i = tid_; i < n; i += stride_) {
            size_t t = i / CV, c = (i - t * CV) * N;
            int32_t id = ids[t];
            if (id < 0 || id == pad_id) continue;
            float f[N];
            ew_vload(f, dout + t * C + c);
            float *row = dtable + (size_t)id * C + c;
#pragma unroll
            for (int j = 0; j < N; j++) atomicAdd(row + j, f[j]);
        }
    } else {
        size_t n = (size_t)Tn * C;
        for (size_t i = tid_; i < n; i += stride_) {
            size_t t = i / C, c = i - t * C;
            int32_t id = ids[t];
            if (id < 0 || id == pad_id) continue;
            atomicAdd(dtable + (size_t)id * C + c, ew_get(dout + i));
        }
    }
}

// Into bf16 gradients, where an atomic add per token would round once per repeat (and lose a frequent
// token's small rows entirely): the tokens sorted by id (stable, so each id's tokens stay in order), then
// block i, when position i starts a run of one id, sums the run's rows in fp32 and adds the sum once.
__global__ void embedding_iota_kernel(int32_t *v, int n) {
    for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < n; i += gridDim.x * blockDim.x) v[i] = i;
}

template <typename T>
__global__ void embedding_backward_sorted_kernel(__nv_bfloat16 *dtable, const T *dout, const int32_t *sid,
                                                 const int32_t *stok, int Tn, int C, int pad_id) {
    for (int i = blockIdx.x; i < Tn; i += gridDim.x) {
        const int id = sid[i];
        if (id < 0 || id == pad_id || (i > 0 && sid[i - 1] == id)) continue;
        int end = i + 1;
        while (end < Tn && sid[end] == id) end++;
        for (int c = threadIdx.x; c < C; c += blockDim.x) {
            float s = 0;
            for (int j = i; j < end; j++) s += ew_get(dout + (size_t)stok[j] * C + c);
            __nv_bfloat16 *p = dtable + (size_t)id * C + c;
            *p = __float2bfloat16(__bfloat162float(*p) + s);
        }
    }
}

static size_t ew_align256(size_t b) { return (b + 255) & ~(size_t)255; }

// The radix sort's scratch for T keys (cub's own query) and the sorted ids, the token indices and their sorted
// copy.
static size_t embedding_sort_temp_bytes(int T_) {
    size_t tmp = 0;
    cub::DeviceRadixSort::SortPairs(NULL, tmp, (const int32_t *)NULL, (int32_t *)NULL, (const int32_t *)NULL,
                                    (int32_t *)NULL, T_ > 0 ? T_ : 1, 0, 32);
    return tmp;
}

// The workspace for T tokens whose sort takes tmp bytes of scratch (+ 256: aligning the start).
static size_t embedding_ws_bytes(int T_, size_t tmp) {
    return 3 * ew_align256((size_t)T_ * sizeof(int32_t)) + ew_align256(tmp) + 256;
}

extern "C" size_t embedding_workspace_bytes_cuda(int T_) {
    return T_ <= 0 ? 0 : embedding_ws_bytes(T_, embedding_sort_temp_bytes(T_));
}

extern "C" int embedding_backward_cuda(void *dtable, const void *dout, const int32_t *ids, int T_, int C, int pad_id,
                                       int dtype, int gdtype, void *ws, size_t ws_bytes, cudaStream_t st) {
    const char *op = "embedding_backward_cuda";
    if (T_ < 0 || C < 0) return cispo_fail("%s: bad sizes T=%d C=%d", op, T_, C);
    size_t n = (size_t)T_ * C;
    if (n == 0) return 0;
    if (gdtype == DTYPE_BF16) {
        size_t tmp = embedding_sort_temp_bytes(T_);  // (cub takes it by reference)
        const size_t need = embedding_ws_bytes(T_, tmp);
        if (!ws || ws_bytes < need) return cispo_fail("%s: workspace of %zu bytes, %zu needed", op, ws_bytes, need);
        char *p = (char *)(((uintptr_t)ws + 255) & ~(uintptr_t)255);
        const size_t tb = ew_align256((size_t)T_ * sizeof(int32_t));
        int32_t *sid = (int32_t *)p, *tok = (int32_t *)(p + tb), *stok = (int32_t *)(p + 2 * tb);
        void *sort_tmp = p + 3 * tb;
        embedding_iota_kernel<<<ew_blocks((size_t)T_, EW_THREADS), EW_THREADS, 0, st>>>(tok, T_);
        if (ew_check(op)) return -1;
        cudaError_t e = cub::DeviceRadixSort::SortPairs(sort_tmp, tmp, ids, sid, tok, stok, T_, 0, 32, st);
        if (e != cudaSuccess) return cispo_fail("%s: radix sort of the ids: %s", op, cudaGetErrorString(e));
        unsigned blocks = T_ < 65535 ? (unsigned)T_ : 65535u;
        EW_DISPATCH(op, dtype, {
            embedding_backward_sorted_kernel<T><<<blocks, 128, 0, st>>>((__nv_bfloat16 *)dtable, (const T *)dout, sid,
                                                                        stok, T_, C, pad_id);
        });
        return ew_check(op);
    }
    if (gdtype != DTYPE_F32) return cispo_fail("%s: gradient dtype %d (fp32 or bf16)", op, gdtype);
    EW_DISPATCH(op, dtype, {
        int vec = C % EW_VN(T) == 0 && ew_aligned16(dout);
        embedding_backward_kernel<T><<<ew_blocks(vec ? n / EW_VN(T) : n, EW_THREADS), EW_THREADS, 0, st>>>(
            (float *)dtable, (const T *)dout, ids, T_, C, pad_id, vec);
    });
    return ew_check(op);
}

// paged pools kcache, vcache [n_blocks, block_size, KVU]: token t's rows go to position pos[t] of slot
// slot[t], pool row block_table[slot * max_blocks + pos / block_size] * block_size + pos % block_size.
template <typename U>
__global__ void kv_write_kernel(U *kc, U *vc, const U *k, const U *v, const int32_t *slot, const int32_t *pos, int Tn,
                                size_t KVU, const int32_t *block_table, int max_blocks, int block_size) {
    GRID_STRIDE_BEGIN
    size_t n = (size_t)Tn * KVU;
    for (size_t i = tid_; i < n; i += stride_) {
        size_t t = i / KVU, c = i - t * KVU;
        const int p = pos[t];
        const size_t row = (size_t)block_table[(size_t)slot[t] * max_blocks + p / block_size] * block_size + p % block_size;
        size_t at = row * KVU + c;
        kc[at] = k[i];
        vc[at] = v[i];
    }
}

extern "C" int kv_write_cuda(void *kcache, void *vcache, const void *k, const void *v, const int32_t *slot,
                             const int32_t *pos, int T_, int KVD, const int32_t *block_table, int max_blocks,
                             int block_size, int dtype, cudaStream_t st) {
    if (T_ < 0 || KVD < 0 || max_blocks < 1 || block_size < 1)
        return cispo_fail("kv_write_cuda: bad sizes T=%d KVD=%d max_blocks=%d block_size=%d", T_, KVD, max_blocks,
                          block_size);
    if (dtype != DTYPE_BF16 && dtype != DTYPE_F32) return cispo_fail("kv_write_cuda: dtype %d is not supported", dtype);
    size_t esz = dtype == DTYPE_BF16 ? 2 : 4, row = (size_t)KVD * esz;
    if (T_ == 0 || KVD == 0) return 0;
    if (row % 16 == 0 && ew_aligned16(kcache) && ew_aligned16(vcache) && ew_aligned16(k) && ew_aligned16(v))
        PDL_LAUNCH(ew_blocks((size_t)T_ * (row / 16), EW_THREADS), EW_THREADS, 0, st, kv_write_kernel<uint4>,
            (uint4 *)kcache, (uint4 *)vcache, (const uint4 *)k, (const uint4 *)v, slot, pos, T_, row / 16, block_table, max_blocks, block_size);
    else if (esz == 2)
        PDL_LAUNCH(ew_blocks((size_t)T_ * KVD, EW_THREADS), EW_THREADS, 0, st, kv_write_kernel<uint16_t>,
            (uint16_t *)kcache, (uint16_t *)vcache, (const uint16_t *)k, (const uint16_t *)v, slot, pos, T_,
            (size_t)KVD, block_table, max_blocks, block_size);
    else
        PDL_LAUNCH(ew_blocks((size_t)T_ * KVD, EW_THREADS), EW_THREADS, 0, st, kv_write_kernel<uint32_t>,
            (uint32_t *)kcache, (uint32_t *)vcache, (const uint32_t *)k, (const uint32_t *)v, slot, pos, T_,
            (size_t)KVD, block_table, max_blocks, block_size);
    return ew_check("kv_write_cuda");
}
