// model/layers.h — the sub-blocks of a decoder layer, used by model/model.c (internal to model/):
// lightning attention, softmax attention and the MoE block. Each forward reads the layer's normed
// input from the saved activations, saves what its backward needs, and writes its branch output
// out [T, C]; each backward takes dout [T, C], accumulates its parameters' gradients into m->grads and
// the input gradient into din [T, C] (+=). Training, prefill and decode all run these; with a cache
// (m->cache) the attention layers swap in the decode-specific cores.
// defines: model_scratch_t, model_scratch_take, model_lightning_forward, model_lightning_backward,
//          model_softmax_forward, model_softmax_backward, model_moe_post_norm, model_moe_forward, model_moe_backward,
//          model_lightning_recompute, model_softmax_recompute, model_moe_recompute,
//          model_lightning_scratch_bytes, model_softmax_scratch_bytes, model_moe_scratch_bytes,
//          ACT, STAT, IACT, WP, GP
#ifndef CISPO_MODEL_LAYERS_H
#define CISPO_MODEL_LAYERS_H

#include <stddef.h>

#include "model/model.h"

// Pointers into the model's arenas from planned offsets (elements of each arena).
#define ACT(m, off) ((void *)((m)->acts + (size_t)(off) * (m)->esize))
#define STAT(m, off) ((m)->stats + (off))
#define IACT(m, off) ((m)->iacts + (off))
#define WP(m, off) ((const void *)((const char *)(m)->wparams + (size_t)(off) * (m)->esize))  // working weights
#define GP(m, off) ((void *)((char *)(m)->grads + (size_t)(off) * (m)->gsize))  // gradients (grad_dtype)

// A bump allocator over the model's scratch arena (bytes); callers save `used` and restore it when done.
typedef struct {
    char *base;
    size_t used, cap;
} model_scratch_t;

// n elements of `bytes_per` bytes each (m->esize for activation-dtype tensors, 4 for fp32), 256-byte
// aligned, uninitialised.
void *model_scratch_take(model_scratch_t *s, size_t n, size_t bytes_per);

// lightning layer (docs/model.md): qkv = act(h Wqkv^T) (act = hidden_act, silu in MiniMax) -> per-head
// q, k, v -> lightning core -> rmsnorm over A (eps 1e-6) -> sigmoid(h Wgate^T) gate -> Wout
void model_lightning_forward(model_t *m, int l, void *out, model_scratch_t *s);
void model_lightning_backward(model_t *m, int l, const void *dout, void *din, model_scratch_t *s);
// softmax layer: q, k, v projections, RoPE over R dims, causal GQA attention, o_proj
void model_softmax_forward(model_t *m, int l, void *out, model_scratch_t *s);
void model_softmax_backward(model_t *m, int l, const void *dout, void *din, model_scratch_t *s);
// The post-attention norm of layer l: x1 = alpha r + beta branch, h2 = rmsnorm(x1) (residual_rmsnorm); in a decode
// step whose backend asks for it (backend_tuning_t.decode_route), with the router's logits and the routes in the
// same launch (residual_rmsnorm_route), which model_moe_forward then does not make again.
void model_moe_post_norm(model_t *m, int l, const void *r, const void *branch, float alpha, float beta);
// MoE block: router softmax, top-K renormalised, gated experts, up to the experts' outputs (ye); the weighted
// sum joins the residual stream in the caller's moe_combine_rmsnorm. Leaves the layer's load-balancing loss in
// its stats slot; the backward adds aux_coef times its gradient.
void model_moe_forward(model_t *m, int l, model_scratch_t *s);
void model_moe_backward(model_t *m, int l, const void *dout, void *din, float aux_coef, model_scratch_t *s);

// MODEL_RECOMPUTE_CHEAP: a sub-block's cheap pieces made again from what it kept (model.c
// layer_recompute_cheap): lightning q, k, v, gated; softmax the rotated q, k; MoE the dispatched rows
// and the gated activation (not under expert parallelism, whose backward reads neither).
void model_lightning_recompute(model_t *m, int l);
void model_softmax_recompute(model_t *m, int l);
void model_moe_recompute(model_t *m, int l);

// Scratch bytes each one needs (forward and backward) for T tokens with elements of esize bytes.
size_t model_lightning_scratch_bytes(const model_config_t *c, size_t T, size_t esize);
size_t model_softmax_scratch_bytes(const model_config_t *c, size_t T, size_t esize);
size_t model_moe_scratch_bytes(const model_config_t *c, size_t T, size_t esize);

#endif
