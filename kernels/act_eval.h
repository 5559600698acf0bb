// kernels/act_eval.h — the activation formulas of transformers' ACT2FN in fp32 and their derivatives
// (kernels/cpu/activations.c lists them), one definition for the CPU reference and the CUDA kernels (host and
// device functions under nvcc).
// defines: ACT_FN, act_sigmoidf, act_softplus20, act_eval
// Include after base/common.h and kernels/ops.h (the ACT_* codes).
#ifndef CISPO_KERNELS_ACT_EVAL_H
#define CISPO_KERNELS_ACT_EVAL_H

#include <math.h>

#ifdef __CUDACC__
#define ACT_FN static __host__ __device__ __forceinline__
#else
#define ACT_FN static inline
#endif

// 1 / (1 + e^-x): expf overflows to inf for x < -88 and the quotient is then exactly 0, never NaN.
ACT_FN float act_sigmoidf(float x) { return 1.0f / (1.0f + expf(-x)); }

#define ACT_GELU_K 0.7978845608028654f  // sqrt(2/pi)
#define ACT_GELU_C 0.044715f
#define ACT_LAPLACE_MU 0.707107f
#define ACT_LAPLACE_SIGMA_SQRT2 ((float)(0.282095 * 1.4142135623730951))  // torch divides by the rounded product

ACT_FN float act_softplus20(float x) { return x > 20.0f ? x : log1pf(expf(x)); }

// act(x), and act'(x) into *d when d is not NULL.
ACT_FN float act_eval(int act, float x, float *d) {
    float y = 0, g = 0;
    switch (act) {
    case ACT_SILU: {
        float s = act_sigmoidf(x);
        y = x * s;
        g = s * (1.0f + x * (1.0f - s));
        break;
    }
    case ACT_GELU:
    case ACT_GELU_10: {
        y = x * 0.5f * (1.0f + erff(x * 0.70710678f));
        g = 0.5f * (1.0f + erff(x * 0.70710678f)) + x * 0.39894228f * expf(-0.5f * x * x);
        if (act == ACT_GELU_10 && (y > 10.0f || y < -10.0f)) {
            y = y > 10.0f ? 10.0f : -10.0f;
            g = 0.0f;
        }
        break;
    }
    case ACT_GELU_TANH: {
        float t = tanhf(ACT_GELU_K * (x + ACT_GELU_C * x * x * x));
        y = 0.5f * x * (1.0f + t);
        g = 0.5f * (1.0f + t) + 0.5f * x * (1.0f - t * t) * ACT_GELU_K * (1.0f + 3.0f * ACT_GELU_C * x * x);
        break;
    }
    case ACT_QUICK_GELU: {
        float s = act_sigmoidf(1.702f * x);
        y = x * s;
        g = s + 1.702f * x * s * (1.0f - s);
        break;
    }
    case ACT_RELU:
        y = x > 0 ? x : 0.0f;
        g = x > 0 ? 1.0f : 0.0f;
        break;
    case ACT_RELU2:
        y = x > 0 ? x * x : 0.0f;
        g = x > 0 ? 2.0f * x : 0.0f;
        break;
    case ACT_RELU6:
        y = x < 0 ? 0.0f : (x > 6.0f ? 6.0f : x);
        g = x > 0 && x < 6.0f ? 1.0f : 0.0f;
        break;
    case ACT_LEAKY_RELU:
        y = x > 0 ? x : 0.01f * x;
        g = x > 0 ? 1.0f : 0.01f;
        break;
    case ACT_SIGMOID:
        y = act_sigmoidf(x);
        g = y * (1.0f - y);
        break;
    case ACT_TANH:
        y = tanhf(x);
        g = 1.0f - y * y;
        break;
    case ACT_LINEAR:
        y = x;
        g = 1.0f;
        break;
    case ACT_MISH: {
        float t = tanhf(log1pf(expf(x)));
        y = x * t;
        g = t + x * act_sigmoidf(x) * (1.0f - t * t);
        break;
    }
    case ACT_LAPLACE: {
        float z = (x - ACT_LAPLACE_MU) / ACT_LAPLACE_SIGMA_SQRT2;
        y = 0.5f * (1.0f + erff(z));
        g = 0.56418958f * expf(-z * z) / ACT_LAPLACE_SIGMA_SQRT2;  // 1/sqrt(pi) e^{-z^2} dz/dx
        break;
    }
    case ACT_HARDSWISH: {
        float r = x + 3.0f;
        r = r < 0 ? 0.0f : (r > 6.0f ? 6.0f : r);
        y = x * r / 6.0f;
        g = x < -3.0f ? 0.0f : (x <= 3.0f ? x / 3.0f + 0.5f : 1.0f);
        break;
    }
    case ACT_SQRTSOFTPLUS: {
        float sp = act_softplus20(x);
        y = sqrtf(sp);
        float dsp = x > 20.0f ? 1.0f : act_sigmoidf(x);
        g = dsp / (2.0f * y);
        break;
    }
    default:
#ifndef __CUDA_ARCH__
        CISPO_ASSERT(0 && "unknown activation");  // the ops check the code first
#endif
        break;
    }
    if (d) *d = g;
    return y;
}

#endif
