// kernels/cpu/rope.c — rotary position embedding, NeoX "rotate half" over the first R dims of each head.
// defines: rope_forward_cpu, rope_backward_cpu
//
// Numerics follow Hugging Face's LlamaRotaryEmbedding-style code so train and HF agree to ~1e-7:
//   inv_freq = 1.0 / (theta ** (arange(0, R, 2).float() / R))     -- all fp32
//   freqs    = inv_freq * pos.float()                              -- fp32 product (angle rounded to fp32)
//   cos, sin = freqs.cos(), freqs.sin()                            -- fp32
//   out      = x * cos + rotate_half(x) * sin                      -- fp32
// The fp32 rounding of the angle matters: at pos ~ 1e5 its ulp is ~0.008 rad, far above 1e-7, so an
// exact (double) angle would disagree with HF. cos/sin are evaluated in double on the fp32 angle and
// rounded, which is within an ulp of torch's fp32 cos/sin.
// inv_freq here is the correctly rounded fp32 power. torch evaluates theta ** e with SLEEF's vector
// powf (1-ulp) on full SIMD lanes and with std::pow on the tail, so its inv_freq depends on the
// machine; for ~1% of (theta, i) pairs it is one ulp away (none for theta = 1e7 with R = 64 or 128,
// the M1 values), which moves those angles by ~6e-8 relative (~1e-5 in cos/sin near pos 3e5).
#include "kernels/ops.h"

#include <math.h>
#include <stdlib.h>

#include "kernels/common.h"

// inv_freq [R/2] exactly as HF computes it in fp32.
static void rope_inv_freq(float *inv_freq, int R, float theta) {
    for (int i = 0; i < R / 2; i++) {
        float e = (float)(2 * i) / (float)R;
        float p = (float)pow((double)theta, (double)e);
        inv_freq[i] = 1.0f / p;
    }
}

// cs [R/2 cos | R/2 sin] for one position.
static void rope_cos_sin(float *cs, const float *inv_freq, int half, int32_t pos) {
    for (int i = 0; i < half; i++) {
        float ang = (float)pos * inv_freq[i];
        cs[i] = (float)cos((double)ang);
        cs[half + i] = (float)sin((double)ang);
    }
}

// sign = +1: forward rotation; -1: its transpose (the backward). out may alias x.
static void rope_apply(float *out, const float *x, const int32_t *pos, int T, int nh, int D, int R, float theta,
                       int accumulate, float sign) {
    CISPO_ASSERT(R >= 0 && R % 2 == 0 && R <= D);
    int half = R / 2;
    float *inv_freq = cispo_malloc((size_t)(half ? half : 1) * sizeof(float));
    float *cs = cispo_malloc((size_t)(R ? R : 1) * sizeof(float));
    rope_inv_freq(inv_freq, R, theta);
    for (int t = 0; t < T; t++) {
        rope_cos_sin(cs, inv_freq, half, pos[t]);
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
    free(cs);
    free(inv_freq);
}

// x, out [T, nh, D]; pos [T]
void rope_forward_cpu(float *out, const float *x, const int32_t *pos, int T, int nh, int D, int R, float theta) {
    rope_apply(out, x, pos, T, nh, D, R, theta, 0, 1.0f);
}

// The rotation is orthogonal, so dx = rotate(dout, -angle); dx [T, nh, D] accumulates.
void rope_backward_cpu(float *dx, const float *dout, const int32_t *pos, int T, int nh, int D, int R, float theta) {
    rope_apply(dx, dout, pos, T, nh, D, R, theta, 1, -1.0f);
}
