// kernels/cpu/adamw.c — AdamW with decoupled weight decay (torch.optim.AdamW's update).
// defines: adamw_step_cpu
//   m = m + (g - m)(1 - b1);  v = b2 v + (1 - b2) g^2           (torch's lerp / addcmul forms)
//   p -= lr*wd*p + (lr / (1 - b1^t)) * m / (sqrt(v) / sqrt(1 - b2^t) + eps)
// which is p -= lr * (mhat / (sqrt(vhat) + eps) + wd * p) of ops.h. torch instead multiplies p by the
// fp32 constant (1 - lr*wd) first; with lr*wd ~ 1e-5 that constant's rounding (~3e-8) changes the
// decay strength by ~0.3%, so the decay term is subtracted on its own here and p rounds once.
// docs/rl.md: eps 1e-15, since most M1 gradients are below 1e-14.
#include "kernels/cpu/ops_cpu.h"

#include <math.h>

#include "base/common.h"

// p, m, v, g [n]; the gradient is gscale * g (one fp32 product); step counts from 1
void adamw_step_cpu(float *p, float *m, float *v, const float *g, float gscale, size_t n, float lr, float beta1,
                    float beta2, float eps, float wd, int step) {
    CISPO_ASSERT(step >= 1);
    // scalars in double like torch's Python-side bias corrections, then used as fp32
    float lr_wd = (float)((double)lr * wd);
    float one_m_b1 = (float)(1.0 - (double)beta1);
    float one_m_b2 = (float)(1.0 - (double)beta2);
    float step_size = (float)((double)lr / (1.0 - pow(beta1, step)));
    float bc2_sqrt = (float)sqrt(1.0 - pow(beta2, step));
    for (size_t i = 0; i < n; i++) {
        float gi = g[i] * gscale;
        float mi = m[i] + (gi - m[i]) * one_m_b1;  // torch: exp_avg.lerp_(grad, 1 - beta1)
        float vi = v[i] * beta2 + one_m_b2 * gi * gi;
        float denom = sqrtf(vi) / bc2_sqrt + eps;
        p[i] = p[i] - (lr_wd * p[i] + step_size * (mi / denom));
        m[i] = mi;
        v[i] = vi;
    }
}
