// kernels/cpu/activations.c — elementwise activations: SiLU, the sigmoid output gate, SwiGLU.
// defines: silu_{forward,backward}_cpu, sigmoid_gate_{forward,backward}_cpu, swiglu_{forward,backward}_cpu
#include "kernels/ops.h"

#include <math.h>

// 1 / (1 + e^-x): expf overflows to inf for x < -88 and the quotient is then exactly 0, never NaN.
static inline float sigmoidf(float x) { return 1.0f / (1.0f + expf(-x)); }

void silu_forward_cpu(float *out, const float *x, size_t n) {
    for (size_t i = 0; i < n; i++) out[i] = x[i] * sigmoidf(x[i]);
}

// d/dx x s(x) = s (1 + x (1 - s))
void silu_backward_cpu(float *dx, const float *dout, const float *x, size_t n) {
    for (size_t i = 0; i < n; i++) {
        float s = sigmoidf(x[i]);
        dx[i] += dout[i] * s * (1.0f + x[i] * (1.0f - s));
    }
}

// out = sigmoid(g) * x   (the lightning layer's output gate)
void sigmoid_gate_forward_cpu(float *out, const float *g, const float *x, size_t n) {
    for (size_t i = 0; i < n; i++) out[i] = sigmoidf(g[i]) * x[i];
}

// dg += dout x s (1 - s), dx += dout s; either may be NULL.
void sigmoid_gate_backward_cpu(float *dg, float *dx, const float *dout, const float *g, const float *x, size_t n) {
    for (size_t i = 0; i < n; i++) {
        float s = sigmoidf(g[i]);
        if (dg) dg[i] += dout[i] * x[i] * s * (1.0f - s);
        if (dx) dx[i] += dout[i] * s;
    }
}

// h13 [T, 2F] = [h1 | h3] per row; out [T, F] = silu(h1) * h3
void swiglu_forward_cpu(float *out, const float *h13, int T, int F) {
    for (int t = 0; t < T; t++) {
        const float *h1 = h13 + (size_t)t * 2 * F, *h3 = h1 + F;
        float *o = out + (size_t)t * F;
        for (int f = 0; f < F; f++) o[f] = h1[f] * sigmoidf(h1[f]) * h3[f];
    }
}

// dh1 += dout h3 silu'(h1), dh3 += dout silu(h1)   (dh13 [T, 2F] accumulates)
void swiglu_backward_cpu(float *dh13, const float *dout, const float *h13, int T, int F) {
    for (int t = 0; t < T; t++) {
        const float *h1 = h13 + (size_t)t * 2 * F, *h3 = h1 + F;
        float *d1 = dh13 + (size_t)t * 2 * F, *d3 = d1 + F;
        const float *dy = dout + (size_t)t * F;
        for (int f = 0; f < F; f++) {
            float s = sigmoidf(h1[f]);
            d1[f] += dy[f] * h3[f] * s * (1.0f + h1[f] * (1.0f - s));
            d3[f] += dy[f] * h1[f] * s;
        }
    }
}
