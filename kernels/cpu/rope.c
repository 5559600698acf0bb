// kernels/cpu/rope.c — rotary position embedding, NeoX "rotate half" over the first R dims of each head.
// defines: rope_forward_cpu, rope_backward_cpu
//
// Numerics follow Hugging Face's rotary embedding so train and HF agree to ~1e-7:
//   freqs    = pos.float() * inv_freq                              -- fp32 product (angle rounded to fp32)
//   cos, sin = freqs.cos() * scale, freqs.sin() * scale            -- fp32
//   out      = x * cos + rotate_half(x) * sin                      -- fp32
// The fp32 rounding of the angle matters: at pos ~ 1e5 its ulp is ~0.008 rad, far above 1e-7, so an
// exact (double) angle would disagree with HF. cos/sin are evaluated in double on the fp32 angle and
// rounded, which is within an ulp of torch's fp32 cos/sin. inv_freq comes from the caller (the
// rope types' formulas live in model/layer_softmax.c: model_rope_inv_freq).
#include "kernels/cpu/ops_cpu.h"

#include <math.h>
#include <stdlib.h>

#include "base/common.h"

// cs [R/2 cos | R/2 sin] for one position.
static void rope_cos_sin(float *cs, const float *inv_freq, float scale, int half, int32_t pos) {
    for (int i = 0; i < half; i++) {
        float ang = (float)pos * inv_freq[i];
        cs[i] = (float)cos((double)ang) * scale;
        cs[half + i] = (float)sin((double)ang) * scale;
    }
}

// sign = +1: forward rotation; -1: its transpose (the backward). out may alias x.
static void rope_apply(float *out, const float *x, const int32_t *pos, int T, int nh, int D, int R,
                       const float *inv_freq, float scale, int accumulate, float sign) {
    CISPO_ASSERT(R >= 0 && R % 2 == 0 && R <= D);
    int half = R / 2;
    cpu_scratch_t mark = cpu_scratch_begin();
    float *cs = cpu_scratch_take((size_t)(R ? R : 1) * sizeof(float));
    for (int t = 0; t < T; t++) {
        rope_cos_sin(cs, inv_freq, scale, half, pos[t]);
        for (int h = 0; h < nh; h++) {
            const float *xr = x + ((size_t)t * nh + h) * D;
            float *o = out + ((size_t)t * nh + h) * D;
            for (int i = 0; i < half; i++) {
                float c = cs[i], s = sign * cs[half + i];
                float x1 = xr[i], x2 = xr[i + half];
                // HF: q * cos + rotate_half(q) * sin, rotate_half(q) = [-q2, q1]
                float y1 = x1 * c + (-x2) * s;
                float y2 = x2 * c + x1 * s;
                if (accumulate) {
                    o[i] += y1;
                    o[i + half] += y2;
                } else {
                    o[i] = y1;
                    o[i + half] = y2;
                }
            }
            for (int d = R; d < D; d++) o[d] = accumulate ? o[d] + xr[d] : xr[d];
        }
    }
    cpu_scratch_end(mark);
}

// x, out [T, nh, D]; pos [T]; inv_freq [R/2]
void rope_forward_cpu(float *out, const float *x, const int32_t *pos, int T, int nh, int D, int R,
                      const float *inv_freq, float scale) {
    rope_apply(out, x, pos, T, nh, D, R, inv_freq, scale, 0, 1.0f);
}

// The map is scale times a rotation, so its transpose is scale times the rotation by -angle;
// dx [T, nh, D] accumulates.
void rope_backward_cpu(float *dx, const float *dout, const int32_t *pos, int T, int nh, int D, int R,
                       const float *inv_freq, float scale) {
    rope_apply(dx, dout, pos, T, nh, D, R, inv_freq, scale, 1, -1.0f);
}
