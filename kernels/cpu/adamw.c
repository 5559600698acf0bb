// kernels/cpu/adamw.c — AdamW with decoupled weight decay, in the operation order of torch.optim.AdamW
// (single-tensor path), so a step here and there agree to fp32 rounding.
// defines: adamw_step_cpu
//   p *= 1 - lr*wd;  m = m + (g - m)(1 - b1);  v = b2 v + (1 - b2) g^2
//   p -= (lr / (1 - b1^t)) * m / (sqrt(v) / sqrt(1 - b2^t) + eps)
// which equals p -= lr * (mhat / (sqrt(vhat) + eps) + wd * p) of ops.h. RL.md: eps 1e-15, since most
// M1 gradients are below 1e-14.
#include "kernels/ops.h"

#include <math.h>

#include "kernels/common.h"

// p, m, v, g [n]; step counts from 1
void adamw_step_cpu(float *p, float *m, float *v, const float *g, size_t n, float lr, float beta1, float beta2,
                    float eps, float wd, int step) {
    CISPO_ASSERT(step >= 1);
    // scalars in double like torch's Python-side bias corrections, then used as fp32
    float decay = (float)(1.0 - (double)lr * wd);
    float one_m_b1 = (float)(1.0 - (double)beta1);
    float one_m_b2 = (float)(1.0 - (double)beta2);
    float step_size = (float)((double)lr / (1.0 - pow(beta1, step)));
    float bc2_sqrt = (float)sqrt(1.0 - pow(beta2, step));
    for (size_t i = 0; i < n; i++) {
        float gi = g[i];
        float pi = p[i] * decay;
        float mi = m[i] + (gi - m[i]) * one_m_b1;  // torch: exp_avg.lerp_(grad, 1 - beta1)
        float vi = v[i] * beta2 + one_m_b2 * gi * gi;
        float denom = sqrtf(vi) / bc2_sqrt + eps;
        p[i] = pi - step_size * (mi / denom);
        m[i] = mi;
        v[i] = vi;
    }
}
