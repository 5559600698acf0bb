// model/layer_softmax.c — the softmax attention layer (GQA + RoPE), forward and backward, and the RoPE
// frequencies of transformers' rope types.
// defines: model_softmax_forward, model_softmax_backward, model_softmax_recompute, model_softmax_scratch_bytes,
//          model_rope_inv_freq,
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
// type depends on the length (its largest position + 1: the sequence's own length in training and
// prefill, position + 1 for a decoded token). x, out [T, nh, D]; backward writes dx.
#define ROPE_MAX_HALF 1024
static void rope_batch(model_t *m, void *out, const void *x, int nh, int backward) {
    const model_config_t *c = &m->cfg;
    const int D = c->head_dim, R = c->rotary_dim;
    const int32_t *cu = m->h_cu, *pos = IACT(m, m->pos);
    float inv[ROPE_MAX_HALF];
    float scale;
    CISPO_ASSERT(R / 2 <= ROPE_MAX_HALF);
    const int per_seq = model_rope_by_length(c);
    const int n = per_seq ? m->nseq : 1;
    for (int s = 0; s < n; s++) {
        int t0 = per_seq ? cu[s] : 0, len = per_seq ? cu[s + 1] - cu[s] : m->T;
        if (len == 0) continue;
        int start = per_seq && m->cache ? m->cache->start_host[s] : 0;
        model_rope_inv_freq(c, start + len, inv, &scale);
        size_t off = (size_t)t0 * nh * D * m->esize;
        if (backward)
            rope_backward(m->be, (char *)out + off, (const char *)x + off, pos + t0, len, nh, D, R, inv, scale, OP_WRITE);
        else
            rope_forward(m->be, (char *)out + off, (const char *)x + off, pos + t0, len, nh, D, R, inv, scale);
    }
}

size_t model_softmax_scratch_bytes(const model_config_t *c, size_t T, size_t esize) {
    size_t A = (size_t)model_attn_width(c), KVD = (size_t)c->n_kv_heads * c->head_dim;
    return T * (3 * A + 3 * KVD) * esize + 8 * 256;  // backward: do, dq, dq_pre [T,A]; dk, dv, dk_pre [T,KV*D]
}

// The core: causal attention over the packed batch (training, a fresh prefill), or over each slot's
// paged cache (decode; a prefill chunk that continues earlier ones); with a cache, this batch's keys
// and values are written into it first.
static void core_forward(model_t *m, int l) {
    const model_config_t *c = &m->cfg;
    const int H = c->n_heads, KV = c->n_kv_heads, D = c->head_dim, KVD = KV * D;
    const model_layer_acts_t *a = &m->layer[l];
    model_cache_t *ca = m->cache;
    if (ca) {
        size_t layer_off = (size_t)ca->layer_slot[l] * ca->n_blocks * ca->block_size * KVD * m->esize;
        void *kc = (char *)ca->kcache + layer_off, *vc = (char *)ca->vcache + layer_off;
        kv_write(m->be, kc, vc, ACT(m, a->k), ACT(m, a->v), IACT(m, m->tok_slot), IACT(m, m->pos), m->T, KVD,
                 ca->block_table, ca->max_blocks, ca->block_size);
        if (ca->mode == MODEL_CACHE_DECODE || ca->continuing) {
            attention_decode(m->be, ACT(m, a->o_core), ACT(m, a->q), kc, vc, IACT(m, m->tok_slot), IACT(m, m->tok_len),
                             m->T, H, KV, D, ca->block_table, ca->max_blocks, ca->block_size, c->sliding_window);
            return;
        }
    }
    op_seqs_t seqs = {IACT(m, m->cu_seqlens), m->h_cu, m->nseq, m->T, m->max_len};
    attention_forward(m->be, ACT(m, a->o_core), STAT(m, a->lse), ACT(m, a->q), ACT(m, a->k), ACT(m, a->v), &seqs, H,
                      KV, D, c->sliding_window);
}

void model_softmax_forward(model_t *m, int l, void *out, model_scratch_t *s) {
    const model_config_t *c = &m->cfg;
    backend_t *b = m->be;
    const int T = m->T, C = c->hidden_size, H = c->n_heads, KV = c->n_kv_heads, D = c->head_dim;
    const int A = H * D, KVD = KV * D;
    const model_layer_acts_t *a = &m->layer[l];
    const layer_params_t *p = &m->table.layers[l];
    const void *h = ACT(m, a->h);
    // q and k before RoPE: kept only where a cheap recompute rotates them again, else in the scratch
    const size_t mark = s->used;
    void *q_pre = a->q_pre == MODEL_PIECE_SCRATCH ? model_scratch_take(s, (size_t)T * A, m->esize) : ACT(m, a->q_pre);
    void *k_pre = a->k_pre == MODEL_PIECE_SCRATCH ? model_scratch_take(s, (size_t)T * KVD, m->esize)
                                                  : ACT(m, a->k_pre);

    matmul(b, q_pre, h, WP(m, p->wq), T, A, C, 0, 1, 1.0f, 0.0f);
    matmul(b, k_pre, h, WP(m, p->wk), T, KVD, C, 0, 1, 1.0f, 0.0f);
    matmul(b, ACT(m, a->v), h, WP(m, p->wv), T, KVD, C, 0, 1, 1.0f, 0.0f);
    rope_batch(m, ACT(m, a->q), q_pre, H, 0);
    rope_batch(m, ACT(m, a->k), k_pre, KV, 0);
    s->used = mark;
    core_forward(m, l);
    matmul(b, out, ACT(m, a->o_core), WP(m, p->wo), T, C, A, 0, 1, 1.0f, 0.0f);
}

void model_softmax_recompute(model_t *m, int l) {
    const model_config_t *c = &m->cfg;
    const model_layer_acts_t *a = &m->layer[l];
    CISPO_ASSERT(a->q_pre != MODEL_PIECE_SCRATCH && a->k_pre != MODEL_PIECE_SCRATCH);  // kept under CHEAP
    rope_batch(m, ACT(m, a->q), ACT(m, a->q_pre), c->n_heads, 0);
    rope_batch(m, ACT(m, a->k), ACT(m, a->k_pre), c->n_kv_heads, 0);
}

void model_softmax_backward(model_t *m, int l, const void *dout, void *din, model_scratch_t *s) {
    const model_config_t *c = &m->cfg;
    backend_t *b = m->be;
    const int T = m->T, C = c->hidden_size, H = c->n_heads, KV = c->n_kv_heads, D = c->head_dim;
    const int A = H * D, KVD = KV * D;
    const model_layer_acts_t *a = &m->layer[l];
    const layer_params_t *p = &m->table.layers[l];
    const void *h = ACT(m, a->h);
    const size_t TA = (size_t)T * A, TKV = (size_t)T * KVD, es = m->esize;
    op_seqs_t seqs = {IACT(m, m->cu_seqlens), m->h_cu, m->nseq, m->T, m->max_len};
    size_t mark = s->used;

    void *d_o = model_scratch_take(s, TA, es);
    matmul(b, d_o, dout, WP(m, p->wo), T, A, C, 0, 0, 1.0f, 0.0f);
    matmul_wgrad(b, GP(m, p->wo), dout, ACT(m, a->o_core), C, A, T, m->grad_write);
    void *dq = model_scratch_take(s, TA, es), *dk = model_scratch_take(s, TKV, es), *dv = model_scratch_take(s, TKV, es);
    attention_backward(b, dq, dk, dv, d_o, ACT(m, a->o_core), STAT(m, a->lse), ACT(m, a->q), ACT(m, a->k),
                       ACT(m, a->v), &seqs, H, KV, D, c->sliding_window, OP_WRITE);
    void *dq_pre = model_scratch_take(s, TA, es), *dk_pre = model_scratch_take(s, TKV, es);
    rope_batch(m, dq_pre, dq, H, 1);
    rope_batch(m, dk_pre, dk, KV, 1);
    matmul(b, din, dq_pre, WP(m, p->wq), T, C, A, 0, 0, 1.0f, 1.0f);
    matmul(b, din, dk_pre, WP(m, p->wk), T, C, KVD, 0, 0, 1.0f, 1.0f);
    matmul(b, din, dv, WP(m, p->wv), T, C, KVD, 0, 0, 1.0f, 1.0f);
    matmul_wgrad(b, GP(m, p->wq), dq_pre, h, A, C, T, m->grad_write);
    matmul_wgrad(b, GP(m, p->wk), dk_pre, h, KVD, C, T, m->grad_write);
    matmul_wgrad(b, GP(m, p->wv), dv, h, KVD, C, T, m->grad_write);
    s->used = mark;
}
