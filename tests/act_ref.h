// tests/act_ref.h — ACT2FN activations in double precision, written from transformers' definitions
// (activations.py, torch.nn) and independent of the ops' derivative formulas: the op tests and the
// model's double-precision forward both use them as the reference.
// defines: act_ref_d
#ifndef CISPO_TESTS_ACT_REF_H
#define CISPO_TESTS_ACT_REF_H

#include <math.h>

#include "kernels/cpu/ops_cpu.h"

static inline double act_ref_sigmoid(double x) { return 1 / (1 + exp(-x)); }

static inline double act_ref_d(int act, double x) {
    const double k = sqrt(2.0 / 3.14159265358979323846);
    switch (act) {
    case ACT_SILU: return x * act_ref_sigmoid(x);
    case ACT_GELU: return 0.5 * x * (1 + erf(x / sqrt(2.0)));
    case ACT_GELU_TANH: return 0.5 * x * (1 + tanh(k * (x + 0.044715 * x * x * x)));
    case ACT_GELU_10: return fmin(fmax(0.5 * x * (1 + erf(x / sqrt(2.0))), -10), 10);
    case ACT_QUICK_GELU: return x * act_ref_sigmoid(1.702 * x);
    case ACT_RELU: return fmax(x, 0);
    case ACT_RELU2: return fmax(x, 0) * fmax(x, 0);
    case ACT_RELU6: return fmin(fmax(x, 0), 6);
    case ACT_LEAKY_RELU: return x > 0 ? x : 0.01 * x;
    case ACT_SIGMOID: return act_ref_sigmoid(x);
    case ACT_TANH: return tanh(x);
    case ACT_LINEAR: return x;
    case ACT_MISH: return x * tanh(log1p(exp(x)));
    case ACT_LAPLACE: return 0.5 * (1 + erf((x - 0.707107) / (0.282095 * sqrt(2.0))));
    case ACT_HARDSWISH: return x * fmin(fmax(x + 3, 0), 6) / 6;
    case ACT_SQRTSOFTPLUS: return sqrt(x > 20 ? x : log1p(exp(x)));
    }
    return NAN;
}

#endif
