// model/infer.h — inference with per-sequence caches: prefill a batch of prompts, then decode one
// token per sequence per step, for sequences of different lengths in fixed slots (continuous
// batching: a finished sequence frees its slot, a waiting prompt is prefilled into it).
// defines: infer_t, infer_create, infer_free, infer_prefill, infer_decode
//
// Caches per slot (in the model's backend memory): fp32 lightning states [lightning layers, H, D, D]
// (independent of context length) and a KV cache [softmax layers, max_ctx, KV, D] for the softmax
// layers only. Prefill and decode are the training forward (model_forward_cached): the same layer
// functions with the cache swapped in for the two decode-specific pieces (lightning's recurrent step
// over the slot's state, attention over the slot's KV cache), so every config option acts on decode
// exactly as on training. Logits come from the fp32 LM head.
#ifndef CISPO_MODEL_INFER_H
#define CISPO_MODEL_INFER_H

#include <stdint.h>

#include "model/model.h"

typedef struct {
    model_t *m;          // weights in place (the policy being trained: no copy, no sync)
    model_cache_t cache; // slots, states and KV caches (model.h)
    int max_slots, max_ctx;
    int32_t *len;        // [max_slots] tokens in the cache of each slot (host)
    float *logits;       // [max_slots, V] fp32 in backend memory (the LM head's output)
} infer_t;

// max_ctx: longest prompt + generation a slot may hold; prefill batches are limited by the model's
// max_tokens (model_create).
infer_t *infer_create(model_t *m, int max_slots, int max_ctx);
void infer_free(infer_t *e);

// Prefills n prompts into the given slots (replacing whatever they held). prompts: n pointers to
// token arrays of lengths lens[i] >= 1, sum(lens) <= the model's max_tokens, lens[i] <= max_ctx.
// logits_last [n, V]: the next-token logits after each prompt. Returns 0 or -1 (+ message).
int infer_prefill(infer_t *e, const int *slots, const int32_t *const *prompts, const int *lens, int n,
                  float *logits_last);
// Appends one token to each of n slots and returns the next-token logits [n, V].
int infer_decode(infer_t *e, const int *slots, const int32_t *tokens, int n, float *logits);

#endif
