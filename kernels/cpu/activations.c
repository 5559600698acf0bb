// kernels/cpu/activations.c — elementwise activations: SiLU, the sigmoid output gate, SwiGLU, and the
// parameter-free activations of transformers' ACT2FN (config hidden_act) with their gated form.
// defines: silu_{forward,backward}_cpu, sigmoid_gate_{forward,backward}_cpu, swiglu_{forward,backward}_cpu,
//          act_{forward,backward}_cpu, act_grad_scale_cpu, glu_{forward,backward}_cpu
//
// ACT2FN formulas (transformers/activations.py, torch fp32 on the CPU) and the derivatives used here:
//   gelu          x/2 (1 + erf(x/sqrt2))                      Phi(x) + x phi(x)
//   gelu tanh     x/2 (1 + tanh(k (x + 0.044715 x^3))), k = sqrt(2/pi)   (gelu_new, gelu_pytorch_tanh,
//                 gelu_python_tanh, gelu_accurate; gelu_fast writes k as 0.7978845608, the same float)
//   gelu_10       clip(gelu(x), -10, 10)                      0 where clipped (torch.clip's gradient)
//   quick_gelu    x sigmoid(1.702 x)
//   relu, relu2 = relu(x)^2, relu6 = hardtanh(x, 0, 6), leaky_relu (slope 0.01): gradient 0 at the kinks
//                 as torch (relu: x > 0; relu6: 0 < x < 6; leaky: x > 0 ? 1 : 0.01)
//   sigmoid, tanh, linear (identity)
//   mish          x tanh(log1p(e^x))                          tanh(sp) + x sigmoid(x) (1 - tanh(sp)^2)
//   laplace       (1 + erf((x - mu) / (sigma sqrt2))) / 2, mu = 0.707107, sigma = 0.282095
//   hardswish     x relu6(x + 3) / 6                          0 (x < -3), x/3 + 1/2 (x <= 3), 1
//   sqrtsoftplus  sqrt(softplus(x)), softplus = x above 20    softplus'(x) / (2 sqrt(softplus(x)))
#include "kernels/cpu/ops_cpu.h"

#include <math.h>

#include "base/common.h"
#include "kernels/act_eval.h"


void silu_forward_cpu(float *out, const float *x, size_t n) {
    for (size_t i = 0; i < n; i++) out[i] = x[i] * act_sigmoidf(x[i]);
}

// d/dx x s(x) = s (1 + x (1 - s))
void silu_backward_cpu(float *dx, const float *dout, const float *x, size_t n) {
    for (size_t i = 0; i < n; i++) {
        float s = act_sigmoidf(x[i]);
        dx[i] += dout[i] * s * (1.0f + x[i] * (1.0f - s));
    }
}

// out = sigmoid(g) * x   (the lightning layer's output gate)
void sigmoid_gate_forward_cpu(float *out, const float *g, const float *x, size_t n) {
    for (size_t i = 0; i < n; i++) out[i] = act_sigmoidf(g[i]) * x[i];
}

// dg += dout x s (1 - s), dx += dout s; either may be NULL.
void sigmoid_gate_backward_cpu(float *dg, float *dx, const float *dout, const float *g, const float *x, size_t n) {
    for (size_t i = 0; i < n; i++) {
        float s = act_sigmoidf(g[i]);
        if (dg) dg[i] += dout[i] * x[i] * s * (1.0f - s);
        if (dx) dx[i] += dout[i] * s;
    }
}

// h13 [T, 2F] = [h1 | h3] per row; out [T, F] = silu(h1) * h3
void swiglu_forward_cpu(float *out, const float *h13, int T, int F) {
    for (int t = 0; t < T; t++) {
        const float *h1 = h13 + (size_t)t * 2 * F, *h3 = h1 + F;
        float *o = out + (size_t)t * F;
        for (int f = 0; f < F; f++) o[f] = h1[f] * act_sigmoidf(h1[f]) * h3[f];
    }
}

// dh1 += dout h3 silu'(h1), dh3 += dout silu(h1)   (dh13 [T, 2F] accumulates)
void swiglu_backward_cpu(float *dh13, const float *dout, const float *h13, int T, int F) {
    for (int t = 0; t < T; t++) {
        const float *h1 = h13 + (size_t)t * 2 * F, *h3 = h1 + F;
        float *d1 = dh13 + (size_t)t * 2 * F, *d3 = d1 + F;
        const float *dy = dout + (size_t)t * F;
        for (int f = 0; f < F; f++) {
            float s = act_sigmoidf(h1[f]);
            d1[f] += dy[f] * h3[f] * s * (1.0f + h1[f] * (1.0f - s));
            d3[f] += dy[f] * h1[f] * s;
        }
    }
}

// ---------------------------------------------------------------------------------------------
// ACT2FN (act_eval: kernels/act_eval.h, shared with the CUDA kernels)

void act_forward_cpu(int act, float *out, const float *x, size_t n) {
    if (act == ACT_SILU) {
        silu_forward_cpu(out, x, n);
        return;
    }
    for (size_t i = 0; i < n; i++) out[i] = act_eval(act, x[i], NULL);
}

void act_backward_cpu(int act, float *dx, const float *dout, const float *x, size_t n) {
    if (act == ACT_SILU) {
        silu_backward_cpu(dx, dout, x, n);
        return;
    }
    for (size_t i = 0; i < n; i++) {
        float g;
        act_eval(act, x[i], &g);
        dx[i] += dout[i] * g;
    }
}

void act_grad_scale_cpu(int act, float *d, const float *x, size_t n) {
    if (act == ACT_SILU) {
        for (size_t i = 0; i < n; i++) {
            float s = act_sigmoidf(x[i]);
            d[i] = d[i] * s * (1.0f + x[i] * (1.0f - s));
        }
        return;
    }
    for (size_t i = 0; i < n; i++) {
        float g;
        act_eval(act, x[i], &g);
        d[i] = d[i] * g;
    }
}

void glu_forward_cpu(int act, float *out, const float *h13, int T, int F) {
    if (act == ACT_SILU) {
        swiglu_forward_cpu(out, h13, T, F);
        return;
    }
    for (int t = 0; t < T; t++) {
        const float *h1 = h13 + (size_t)t * 2 * F, *h3 = h1 + F;
        float *o = out + (size_t)t * F;
        for (int f = 0; f < F; f++) o[f] = act_eval(act, h1[f], NULL) * h3[f];
    }
}

// dh1 += dout h3 act'(h1), dh3 += dout act(h1)
void glu_backward_cpu(int act, float *dh13, const float *dout, const float *h13, int T, int F) {
    if (act == ACT_SILU) {
        swiglu_backward_cpu(dh13, dout, h13, T, F);
        return;
    }
    for (int t = 0; t < T; t++) {
        const float *h1 = h13 + (size_t)t * 2 * F, *h3 = h1 + F;
        float *d1 = dh13 + (size_t)t * 2 * F, *d3 = d1 + F;
        const float *dy = dout + (size_t)t * F;
        for (int f = 0; f < F; f++) {
            float g, a = act_eval(act, h1[f], &g);
            d1[f] += dy[f] * h3[f] * g;
            d3[f] += dy[f] * a;
        }
    }
}
