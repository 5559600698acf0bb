// model/layer_softmax.c — the softmax attention layer (GQA + RoPE), forward and backward, and the RoPE
// frequencies of transformers' rope types.
// defines: model_softmax_forward, model_softmax_backward, model_softmax_scratch_floats, model_rope_inv_freq,
//          model_rope_by_length
//
// transformers' MiniMaxAttention: q = q_proj(h) [T,H,D], k = k_proj(h), v = v_proj(h) [T,KV,D];
// RoPE (NeoX rotate-half) over R dims (HF flavour R = D, original R = rotary_dim) at positions that
// restart at 0 in every packed sequence; causal GQA softmax attention with scale 1/sqrt(D), within
// sliding_window keys when the config sets one (transformers' sliding-window causal mask); o_proj.
//
// RoPE frequencies (transformers' modeling_rope_utils.py, ROPE_INIT_FUNCTIONS), replayed in the
// precision torch uses: a Python float meeting an fp32 tensor is rounded to fp32 first, so every
// tensor step below is an fp32 operation, every scalar-only step a double one.
//   default       inv[i] = 1 / theta^(2i/R)        (theta^e: the correctly rounded fp32 power; torch's
//                 SLEEF powf is 1-ulp and can differ by an ulp for ~1% of (theta, i) pairs)
//   linear        default / factor
//   dynamic       seq_len <= max_position_embeddings: default (the init-time double formula gives theta);
//                 above: theta' = theta * (factor L / mpe - (factor - 1))^(R/(R-2)) in fp32, L = seq_len
//   yarn          ramp between 1/(factor theta^e) and 1/theta^e over the correction range of beta_fast /
//                 beta_slow (floor/ceil when truncate); scale = attention_factor or
//                 mscale(factor[, mscale]) / mscale(factor, mscale_all_dim), mscale(s, m) = 0.1 m ln s + 1
//   longrope      1 / (f_i theta^e), f = long_factor when seq_len > original_max_position_embeddings else
//                 short_factor; scale = attention_factor or sqrt(1 + ln factor / ln orig) (1 if factor <= 1)
//   llama3        wavelength bands: low frequencies / factor, high kept, the middle smoothly interpolated
//   proportional  the first floor(prf D / 2) pairs 1 / theta^(2i/D), the rest 0 (not rotated); / factor
#include <math.h>
#include <stdlib.h>

#include "base/common.h"
#include "kernels/ops.h"
#include "model/layers.h"

// ---------------------------------------------------------------------------------------------
// RoPE frequencies

// fp32 theta^e, e = (float)(2i) / (float)dim
static float pow_f(float base, int two_i, int dim) {
    float e = (float)two_i / (float)dim;
    return (float)pow((double)base, (double)e);
}

static double yarn_mscale(double scale, double m) { return scale <= 1 ? 1.0 : 0.1 * m * log(scale) + 1.0; }

#define ROPE_PI 3.141592653589793  // math.pi

static double yarn_correction_dim(double rotations, int dim, double base, double max_pos) {
    return (dim * log(max_pos / (rotations * 2 * ROPE_PI))) / (2 * log(base));
}

int model_rope_by_length(const model_config_t *c) {
    return c->flavour == MODEL_FLAVOUR_HF && (c->rope.type == ROPE_DYNAMIC || c->rope.type == ROPE_LONGROPE);
}

void model_rope_inv_freq(const model_config_t *c, int seq_len, float *inv, float *scale) {
    const model_rope_t *r = &c->rope;
    const int R = c->rotary_dim, half = R / 2, t = c->flavour == MODEL_FLAVOUR_HF ? r->type : ROPE_DEFAULT;
    const double theta = c->rope_theta;
    const float base_f = (float)theta;
    *scale = 1.0f;
    switch (t) {
    case ROPE_DEFAULT:
    case ROPE_LINEAR:
        for (int i = 0; i < half; i++) inv[i] = 1.0f / pow_f(base_f, 2 * i, R);
        if (t == ROPE_LINEAR)
            for (int i = 0; i < half; i++) inv[i] /= (float)r->factor;
        break;
    case ROPE_DYNAMIC: {
        const int mpe = c->max_position_embeddings;
        float b;
        if (seq_len > mpe) {  // dynamic_rope_update: recomputed from the int64 length tensor, in fp32
            float g = (float)seq_len * (float)r->factor;
            g = g / (float)mpe;
            g = g - (float)(r->factor - 1);
            g = (float)pow((double)g, (double)(float)((double)R / (R - 2)));
            b = (float)theta * g;
        } else {              // init: seq_len = max_position_embeddings, Python floats
            b = (float)(theta * pow(r->factor * mpe / mpe - (r->factor - 1), (double)R / (R - 2)));
        }
        for (int i = 0; i < half; i++) inv[i] = 1.0f / pow_f(b, 2 * i, R);
        break;
    }
    case ROPE_YARN: {
        const double orig = r->original_max_pos;
        const double factor = isnan(r->factor) ? c->max_position_embeddings / orig : r->factor;
        double af = r->attention_factor;
        if (isnan(af))
            af = r->mscale != 0 && r->mscale_all_dim != 0
                     ? yarn_mscale(factor, r->mscale) / yarn_mscale(factor, r->mscale_all_dim)
                     : yarn_mscale(factor, 1);
        const double beta_fast = r->beta_fast != 0 ? r->beta_fast : 32, beta_slow = r->beta_slow != 0 ? r->beta_slow : 1;
        double low = yarn_correction_dim(beta_fast, R, theta, orig), high = yarn_correction_dim(beta_slow, R, theta, orig);
        if (r->truncate) {
            low = floor(low);
            high = ceil(high);
        }
        if (low < 0) low = 0;
        if (high > R - 1) high = R - 1;
        if (low == high) high += 0.001;  // transformers: prevent the singularity
        const float lo_f = (float)low, span_f = (float)(high - low);
        for (int i = 0; i < half; i++) {
            float pf = pow_f(base_f, 2 * i, R);
            float extra = 1.0f / pf, inter = 1.0f / ((float)factor * pf);
            float ramp = ((float)i - lo_f) / span_f;
            ramp = ramp < 0 ? 0.0f : (ramp > 1 ? 1.0f : ramp);
            float ef = 1.0f - ramp;
            inv[i] = inter * (1.0f - ef) + extra * ef;
        }
        *scale = (float)af;
        break;
    }
    case ROPE_LONGROPE: {
        const double orig = r->original_max_pos;
        const double factor = isnan(r->factor) ? c->max_position_embeddings / orig : r->factor;
        double af = r->attention_factor;
        if (isnan(af)) af = factor <= 1.0 ? 1.0 : sqrt(1 + log(factor) / log(orig));
        const double *f = seq_len > r->original_max_pos ? r->long_factor : r->short_factor;
        for (int i = 0; i < half; i++) inv[i] = 1.0f / ((float)f[i] * pow_f(base_f, 2 * i, R));
        *scale = (float)af;
        break;
    }
    case ROPE_LLAMA3: {
        const double old = r->original_max_pos;
        const float low_wl = (float)(old / r->low_freq_factor), high_wl = (float)(old / r->high_freq_factor);
        const float factor = (float)r->factor, two_pi = (float)(2 * ROPE_PI);
        for (int i = 0; i < half; i++) {
            float f = 1.0f / pow_f(base_f, 2 * i, R);
            float wl = two_pi / f;
            float fl = wl > low_wl ? f / factor : f;
            float smooth = ((float)old / wl - (float)r->low_freq_factor) / (float)(r->high_freq_factor - r->low_freq_factor);
            float smoothed = (1.0f - smooth) * fl / factor + smooth * fl;
            inv[i] = !(wl < high_wl) && !(wl > low_wl) ? smoothed : fl;
        }
        break;
    }
    case ROPE_PROPORTIONAL: {
        const double prf = isnan(r->partial_rotary_factor) ? 1.0 : r->partial_rotary_factor;
        const float factor = isnan(r->factor) ? 1.0f : (float)r->factor;
        const int angles = (int)floor(prf * R / 2);  // int(prf * head_dim // 2)
        for (int i = 0; i < half; i++) inv[i] = i < angles ? 1.0f / pow_f(base_f, 2 * i, R) : 0.0f;
        for (int i = 0; i < half; i++) inv[i] /= factor;
        break;
    }
    default:
        CISPO_ASSERT(0 && "unknown rope type");
    }
}

// RoPE over the packed batch of the last forward: one frequency set, or one per sequence when the rope
// type depends on the length. x, out [T, nh, D]; backward: out accumulates the transpose.
static void rope_batch(const model_t *m, float *out, const float *x, int nh, int backward) {
    const model_config_t *c = &m->cfg;
    const int D = c->head_dim, R = c->rotary_dim;
    const int32_t *cu = m->iacts + m->cu_seqlens, *pos = m->iacts + m->pos;
    float *inv = cispo_malloc(sizeof(float) * (size_t)(R / 2 > 0 ? R / 2 : 1));
    float scale;
    const int per_seq = model_rope_by_length(c);
    const int n = per_seq ? m->nseq : 1;
    for (int s = 0; s < n; s++) {
        int t0 = per_seq ? cu[s] : 0, len = per_seq ? cu[s + 1] - cu[s] : m->T;
        if (len == 0) continue;
        model_rope_inv_freq(c, len, inv, &scale);  // len = largest position + 1 (positions restart at 0)
        size_t off = (size_t)t0 * nh * D;
        if (backward) rope_backward_cpu(out + off, x + off, pos + t0, len, nh, D, R, inv, scale);
        else rope_forward_cpu(out + off, x + off, pos + t0, len, nh, D, R, inv, scale);
    }
    free(inv);
}

size_t model_softmax_scratch_floats(const model_config_t *c, size_t T) {
    size_t A = (size_t)model_attn_width(c), KVD = (size_t)c->n_kv_heads * c->head_dim;
    return T * (3 * A + 3 * KVD);  // backward: do, dq, dq_pre [T,A]; dk, dv, dk_pre [T,KV*D]
}

void model_softmax_forward(model_t *m, int l, float *out, model_scratch_t *s) {
    const model_config_t *c = &m->cfg;
    const int T = m->T, C = c->hidden_size, H = c->n_heads, KV = c->n_kv_heads, D = c->head_dim;
    const int A = H * D, KVD = KV * D;
    const model_layer_acts_t *a = &m->layer[l];
    const layer_params_t *p = &m->table.layers[l];
    const float *P = m->params;
    float *X = m->acts;
    const float *h = X + a->h;
    const int32_t *cu = m->iacts + m->cu_seqlens;
    (void)s;

    matmul_cpu(X + a->q_pre, h, P + p->wq, T, A, C, 0, 1, 1.0f, 0.0f);
    matmul_cpu(X + a->k_pre, h, P + p->wk, T, KVD, C, 0, 1, 1.0f, 0.0f);
    matmul_cpu(X + a->v, h, P + p->wv, T, KVD, C, 0, 1, 1.0f, 0.0f);
    rope_batch(m, X + a->q, X + a->q_pre, H, 0);
    rope_batch(m, X + a->k, X + a->k_pre, KV, 0);
    attention_forward_cpu(X + a->o_core, X + a->lse, X + a->q, X + a->k, X + a->v, cu, m->nseq, H, KV, D,
                          c->sliding_window);
    matmul_cpu(out, X + a->o_core, P + p->wo, T, C, A, 0, 1, 1.0f, 0.0f);
}

void model_softmax_backward(model_t *m, int l, const float *dout, float *din, model_scratch_t *s) {
    const model_config_t *c = &m->cfg;
    const int T = m->T, C = c->hidden_size, H = c->n_heads, KV = c->n_kv_heads, D = c->head_dim;
    const int A = H * D, KVD = KV * D;
    const model_layer_acts_t *a = &m->layer[l];
    const layer_params_t *p = &m->table.layers[l];
    const float *P = m->params;
    float *G = m->grads;
    const float *X = m->acts;
    const float *h = X + a->h;
    const int32_t *cu = m->iacts + m->cu_seqlens;
    const size_t TA = (size_t)T * A, TKV = (size_t)T * KVD;
    size_t mark = s->used;

    float *d_o = model_scratch_take(s, TA);
    matmul_cpu(d_o, dout, P + p->wo, T, A, C, 0, 0, 1.0f, 0.0f);
    matmul_cpu(G + p->wo, dout, X + a->o_core, C, A, T, 1, 0, 1.0f, 1.0f);
    float *dq = model_scratch_take_zero(s, TA), *dk = model_scratch_take_zero(s, TKV);
    float *dv = model_scratch_take_zero(s, TKV);
    attention_backward_cpu(dq, dk, dv, d_o, X + a->o_core, X + a->lse, X + a->q, X + a->k, X + a->v, cu, m->nseq, H,
                           KV, D, c->sliding_window);
    float *dq_pre = model_scratch_take_zero(s, TA), *dk_pre = model_scratch_take_zero(s, TKV);
    rope_batch(m, dq_pre, dq, H, 1);
    rope_batch(m, dk_pre, dk, KV, 1);
    matmul_cpu(din, dq_pre, P + p->wq, T, C, A, 0, 0, 1.0f, 1.0f);
    matmul_cpu(din, dk_pre, P + p->wk, T, C, KVD, 0, 0, 1.0f, 1.0f);
    matmul_cpu(din, dv, P + p->wv, T, C, KVD, 0, 0, 1.0f, 1.0f);
    matmul_cpu(G + p->wq, dq_pre, h, A, C, T, 1, 0, 1.0f, 1.0f);
    matmul_cpu(G + p->wk, dk_pre, h, KVD, C, T, 1, 0, 1.0f, 1.0f);
    matmul_cpu(G + p->wv, dv, h, KVD, C, T, 1, 0, 1.0f, 1.0f);
    s->used = mark;
}
