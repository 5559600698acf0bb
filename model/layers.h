// model/layers.h — the sub-blocks of a decoder layer, used by model/model.c (internal to model/):
// lightning attention, softmax attention and the MoE block. Each forward reads the layer's normed
// input from the saved activations, saves what its backward needs, and writes its branch output
// out [T, C]; each backward takes dout [T, C], accumulates its parameters' gradients into m->grads and
// the input gradient into din [T, C] (+=).
// defines: model_scratch_t, model_scratch_take, model_lightning_{forward,backward},
//          model_softmax_{forward,backward}, model_moe_{forward,backward}, model_*_scratch_floats
#ifndef CISPO_MODEL_LAYERS_H
#define CISPO_MODEL_LAYERS_H

#include <stddef.h>

#include "model/model.h"

// A bump allocator over the model's scratch arena; callers save `used` and restore it when done.
typedef struct {
    float *base;
    size_t used, cap;
} model_scratch_t;

float *model_scratch_take(model_scratch_t *s, size_t n);        // uninitialised
float *model_scratch_take_zero(model_scratch_t *s, size_t n);   // zeroed

// lightning layer (docs/model.md): qkv = act(h Wqkv^T) (act = hidden_act, silu in MiniMax) -> per-head
// q, k, v -> lightning core -> rmsnorm over A (eps 1e-6) -> sigmoid(h Wgate^T) gate -> Wout
void model_lightning_forward(model_t *m, int l, float *out, model_scratch_t *s);
void model_lightning_backward(model_t *m, int l, const float *dout, float *din, model_scratch_t *s);
// softmax layer: q, k, v projections, RoPE over R dims, causal GQA attention, o_proj
void model_softmax_forward(model_t *m, int l, float *out, model_scratch_t *s);
void model_softmax_backward(model_t *m, int l, const float *dout, float *din, model_scratch_t *s);
// MoE block: router softmax, top-K renormalised, SwiGLU experts, weighted sum. Returns the layer's
// load-balancing loss; the backward adds aux_coef times its gradient.
float model_moe_forward(model_t *m, int l, float *out, model_scratch_t *s);
void model_moe_backward(model_t *m, int l, const float *dout, float *din, float aux_coef, model_scratch_t *s);

// Scratch floats each one needs (forward and backward) for T tokens.
size_t model_lightning_scratch_floats(const model_config_t *c, size_t T);
size_t model_softmax_scratch_floats(const model_config_t *c, size_t T);
size_t model_moe_scratch_floats(const model_config_t *c, size_t T);

#endif
