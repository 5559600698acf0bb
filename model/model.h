// model/model.h — the MiniMax hybrid MoE network (docs/model.md), written once against the op API
// (kernels/ops.h) for every backend: forward and backward over packed sequences, every parameter's
// gradient, and the same forward with caches for prefill and decode (model/infer.h).
// defines: model_t, model_layer_acts_t, model_cache_t, model_create, model_create_on, model_create_experts,
//          MODEL_RECOMPUTE, MODEL_FORWARD_ONLY, MODEL_NO_MASTER, model_activation_bytes, model_free,
//          model_forward, model_forward_cached, model_stage_cached, model_run_cached, model_logprobs,
//          model_backward, model_zero_grad, model_zero_grad_deferred, model_grads_settle,
//          model_sync_weights, model_load_params, model_drop_master, model_routes, model_rope_inv_freq, model_rope_by_length, MODEL_CACHE_PREFILL,
//          MODEL_CACHE_DECODE, model_grad_hook_t, model_grad_ranges
//
// Use (one micro-batch):
//     model_t *m = model_create(&cfg, params_or_NULL, max_tokens);   // the CPU reference backend
//     model_forward(m, ids, cu_seqlens, nseq, T);        // positions restart at 0 in each sequence
//     model_logprobs(m, targets, logp, entropy_or_NULL); // logp[t] = log p(targets[t] | ids[..t]); -1: none
//     model_zero_grad(m);                                // gradients accumulate across micro-batches
//     model_backward(m, dlogp, aux_coef);                // dlogp[t] = dLoss/dlogp[t]; grads += dLoss/dparams
// ids, cu_seqlens, targets, logp, entropy and dlogp are host arrays on every backend.
// Cross-entropy over n targets is dlogp = -1/n; CISPO is dlogp = -w*A/N_tokens (rl/loss).
//
// Load-balancing loss: model_forward (not the cached forward of prefill and decode) leaves m->aux_loss = sum over layers of each layer's
// moe_aux_loss (E * sum_e f_e * P_e of that layer's tokens). model_backward adds the gradient of
// aux_coef * m->aux_loss; pass cfg.router_aux_loss_coef to train with it, 0 to leave it out. (transformers
// instead pools the counts and probabilities of all layers before the product; its CausalLM loss adds it
// only with output_router_logits, which the parity fixtures leave off.)
//
// Memory (all in the backend's memory): fp32 parameters (the master copy) and gradients (fp32, or bf16 when
// the backend's grad_dtype says so at model_create), one flat buffer each (params.h layout); the
// weights' working copy in the backend's activation dtype (the master itself when that is fp32);
// activations planned once from max_tokens in three arenas (activation dtype, fp32 statistics, int32),
// plus one scratch arena for the backward pass.
// Nothing is allocated per call. With MODEL_RECOMPUTE (model_create_experts) the arenas keep each layer's
// input, routes and load-balancing loss only, plus one layer's pieces that every layer reuses: the backward
// runs each layer's forward again from its input just before that layer's backward (about one more forward's
// FLOPs; the gradients are the same bits), and prefill or decode need no more than that anyway.
#ifndef CISPO_MODEL_MODEL_H
#define CISPO_MODEL_MODEL_H

#include <stddef.h>
#include <stdint.h>

#include "kernels/backend.h"
#include "model/config.h"
#include "model/params.h"

// A piece of model_layer_acts_t that is not kept: the op that makes it takes it from the scratch.
#define MODEL_PIECE_SCRATCH ((size_t)-1)

// Offsets of one layer's saved activations, sized for max_tokens tokens, in elements of the arena
// they live in: activation dtype (m->acts) unless marked "stats" (fp32, m->stats) or "int" (int32,
// m->iacts). T = tokens of the current batch; slots = T*K.
typedef struct {
    size_t x_in;        // [T, C]  layer input (x[0] = embeddings; x[l+1] = output of layer l)
    size_t rstd_in;     // stats [T] 1/rms of x_in
    size_t h;           // [T, C]  rmsnorm(x_in, w_in)
    // lightning
    size_t qkv_pre;     // [T, 3A] h Wqkv^T, per head [q | k | v], before the activation
    size_t q, k, v;     // lightning: [T, H, D] after the activation; softmax: q [T,H,D], k, v [T,KV,D] (q, k after RoPE)
    size_t o_core;      // [T, A]  attention core output (lightning or softmax)
    size_t rstd_o;      // stats [T] lightning output-norm statistics
    size_t gate_pre;    // [T, A]  h Wgate^T
    size_t gated;       // [T, A]  sigmoid(gate_pre) * rmsnorm_A(o_core) (input of out_proj; the norm's output
                        //         itself is not kept: rmsnorm_gate_backward recomputes it)
    // softmax
    size_t q_pre;       // [T, A]    h Wq^T before RoPE (MODEL_PIECE_SCRATCH: not kept, in the forward's scratch;
                        //           only MODEL_RECOMPUTE_CHEAP keeps it, to rotate it again)
    size_t k_pre;       // [T, KV*D] h Wk^T before RoPE (likewise)
    size_t lse;         // stats [T, H] attention log-sum-exp
    // block middle
    size_t x1;          // [T, C]  alpha * residual + beta * attn(h)
    size_t rstd_post;   // stats [T]
    size_t h2;          // [T, C]  rmsnorm(x1, w_post)
    // MoE
    size_t logits;      // [T, E]  router logits
    size_t probs;       // stats [T, E] softmax
    size_t topk_w;      // stats [T, K] renormalised weights
    size_t aux;         // stats [1] the layer's load-balancing loss
    size_t xe;          // [T*K, C]   dispatched inputs (expert order)
    size_t h13;         // [T*K, 2F]  [x W1^T | x W3^T] per row
    size_t act;         // [T*K, F]   act(h1) * h3
    size_t ye;          // [T*K, C]   expert outputs
    size_t topk_idx;    // int [T, K]
    size_t perm;        // int [T*K] dispatched row -> slot
    size_t offsets;     // int [E+1] rows of each expert
} model_layer_acts_t;

// Caches of prefill and decode (model/infer.h owns them): the forward then runs the same layers with
// the two decode-specific pieces swapped in: lightning's recurrent step over per-slot fp32 states,
// and softmax attention over a paged KV cache. The KV pool of each softmax layer is n_blocks blocks
// of block_size positions shared by all slots; block_table maps slot s's b-th block of positions to
// a pool block (kernels/ops.h kv_write). Blocks must be mapped for every position a batch writes.
#define MODEL_CACHE_PREFILL 1  // sequences start at start_host[i] of their slot (0, or after earlier chunks)
#define MODEL_CACHE_DECODE 2   // one token per sequence at position len[slot]; caches grow by one
typedef struct {
    int mode;
    int continuing;     // prefill only: some sequence starts after earlier chunks (start_host[i] > 0)
    int max_slots, max_ctx, n_lin, n_soft;
    int block_size, n_blocks, max_blocks;  // positions a block; blocks in each pool; blocks a slot (ceil(max_ctx / block_size))
    int layer_slot[MODEL_MAX_LAYERS];  // index of layer l among the layers of its kind
    float *lin_state;   // [n_lin][max_slots][H][D][D] fp32
    float *state_stage; // [max_slots][H][D][D] fp32: final states of a prefill before they go to their slots
    float *state_init;  // [max_slots][H][D][D] fp32: initial states of a continuing prefill chunk
    void *kcache;       // [n_soft][n_blocks][block_size][KV*D] activation dtype (the paged pools)
    void *vcache;       // same
    int32_t *block_table;       // [max_slots][max_blocks] int32 in backend memory (-1: unmapped)
    const int32_t *slot_host;   // [nseq] slot of each sequence of the batch
    const int32_t *start_host;  // [nseq] position of each sequence's first token (0 for a fresh prefill)
} model_cache_t;

// Told by model_backward when some parameters' gradients are final for this pass: layer l's (layer = l,
// as soon as its backward is done, from the last layer to the first), then the rest (layer = -1: embedding,
// final norm, LM head) at the end. off/len: the n ranges of the flat buffer, in floats, that they occupy
// (model_grad_ranges). On a device backend the gradients are final in stream order: the kernels that wrote
// them were launched, not necessarily finished.
typedef void (*model_grad_hook_t)(void *ctx, int layer, const size_t *off, const size_t *len, int n);

typedef struct {
    model_config_t cfg;
    param_table_t table;
    backend_t *be;      // the backend every op runs on (not owned)
    float *params;      // [table.n_floats] fp32 master; owned unless passed to model_create
    void *wparams;      // working copy in be->act_dtype (== params when that is fp32)
    void *grads;        // [table.n_floats] in grad_dtype, same layout; accumulated by model_backward
    int grad_dtype;     // be->grad_dtype when created: DTYPE_F32, or DTYPE_BF16 (CUDA, grad_dtype=bf16)
    size_t gsize;       // bytes of one gradient element
    int owns_params;
    int max_tokens;
    size_t esize;       // bytes of one activation element
    float *slopes;      // [N, H] lightning decay rates (zero rows for softmax layers)

    // activations of the last forward (one allocation each)
    char *acts;         // activation dtype
    float *stats;       // fp32
    int32_t *iacts;     // int32
    size_t n_acts, n_stats, n_iacts;
    model_layer_acts_t layer[MODEL_MAX_LAYERS];
    size_t x_final;     // [T, C] x[N], input of the final norm
    size_t rstd_final;  // stats [T]
    size_t h_final;     // [T, C] final hidden (input of the LM head)
    size_t lm_lse;      // stats [T] LM-head log-sum-exp
    size_t logp;        // stats [T] log-probs of the last model_logprobs
    size_t entropy;     // stats [T]
    size_t dlogp;       // stats [T] the backward's input
    size_t ids, pos, cu_seqlens, targets;   // int: [T], [T], [nseq+1], [T]
    size_t tok_slot, tok_len;               // int [T]: cache slot and cached length of each token
    size_t route_count;                     // int: 0 between launches (residual_rmsnorm_route's count, whose
                                            // last CTA sorts the routes: backend_tuning_t.decode_sort)
    size_t stage;                           // int: where ids, cu_seqlens, pos (and with a cache tok_slot,
                                            // tok_len) lie, packed for the batch's T and nseq so that one
                                            // upload brings them (the offsets above point into it)
    int32_t *h_cu, *h_pos;                  // host copies of cu_seqlens and pos
    int T, nseq, max_len;
    int have_logprobs;  // model_logprobs ran after the last forward (targets and lse saved)
    float aux_loss;     // sum over layers of the load-balancing loss of the last forward
    float logit_scale;  // log-probs are of softmax(logit_scale * x W^T): 1, or 1 / the rollout temperature
                        // in RL (verl's convention; docs/rl.md "Temperature and truncation")
    model_cache_t *cache;  // set during a cached forward only
    struct moe_ep *ep;     // expert parallelism (model/moe_ep.h): NULL, or the group the experts are split over
    model_grad_hook_t grad_hook;  // NULL, or told as model_backward finishes each layer's gradients (the
    void *grad_hook_ctx;          // trainer arms it for the last micro-batch of an update, to reduce early)
    // Routing replay: NULL, or host [n_layers][T][K] experts that model_forward's MoE layers use instead of
    // their own top-K (the weights are still this forward's probabilities of them, renormalised; gradients
    // flow through them as usual). Taken from another forward with model_routes: the CPU reference run with
    // the GPU's routes, or a training forward with its rollout's, so that two evaluations that round
    // differently cannot pick different experts at a near-tie of the router. Set it around model_forward only.
    const int32_t *route_replay;
    int recompute;      // MODEL_RECOMPUTE_OFF, _FULL (the layers share one region of activations) or _CHEAP_MODE
                        // (only the cheap pieces share one): plan_activations
    int forward_only;   // MODEL_FORWARD_ONLY: grads NULL, and params NULL unless the activations are fp32
    int recomputing;    // inside model_backward's recompute of a layer (the MoE replays its saved routes)
    int grad_write;     // the next model_backward writes the gradients of the weights one op covers whole
                        // (model_zero_grad_deferred); OP_WRITE or OP_ACCUMULATE as the wgrad ops take it

    // backward scratch (one allocation, bytes)
    char *scratch;
    size_t n_scratch;
} model_t;

// Plans memory for micro-batches of up to max_tokens tokens on the CPU reference backend. params: a
// buffer laid out by param_table_build(cfg) that the model uses in place (not owned), or NULL to
// allocate a zeroed one (fill it with param_init_hf or a loader). cfg must have passed
// model_config_validate.
model_t *model_create(const model_config_t *cfg, float *params, int max_tokens);
// The same on any backend: params (backend memory, fp32) or NULL. The working copy is refreshed from
// the master by the optimizer step (adamw_step) and by model_sync_weights after loading.
model_t *model_create_on(backend_t *be, const model_config_t *cfg, float *params, int max_tokens);
// The same holding only experts [e_lo, e_hi) of every MoE layer (param_table_build_experts: params, grads,
// the working copy and every optimizer state shrink to them): the model of one rank under expert
// parallelism, which runs once moe_ep_attach gave it the group that owns the others (a forward without one
// fails). e_lo 0, e_hi n_experts, flags 0 is model_create_on. flags, or-ed:
//   MODEL_RECOMPUTE     activation recompute (see "Memory" above);
//   MODEL_RECOMPUTE_CHEAP  selective recompute: each layer keeps what GEMMs and attention cores produced
//                       (and its input, statistics and routes); the pieces cheap to make again (the norm
//                       outputs, activations, rotated q and k, the gate product, the dispatched rows) share
//                       one region and the backward makes a layer's again before its backward, with no
//                       GEMM: about 40% less activation memory for a few elementwise passes; same bits;
//   MODEL_FORWARD_ONLY  a model that never runs a backward (generation, serving, log-probs, a KL reference):
//                       no gradients, the activations as MODEL_RECOMPUTE plans them, and on a backend whose
//                       activation dtype is not fp32 no fp32 master either (params must be NULL; m->params
//                       stays NULL and the working copy is all: 2 bytes a parameter in bf16 instead of 10).
//                       Load it with model_load_params.
//   MODEL_NO_MASTER     a model that trains without an fp32 master of its own (a forward+backward with no
//                       optimizer step, as bench/model_bench times it): on a backend whose activation dtype
//                       is not fp32, the working copy and the fp32 gradients only (6 bytes a parameter in
//                       bf16 instead of 10). params must be NULL; load it with model_load_params.
#define MODEL_RECOMPUTE 1
#define MODEL_FORWARD_ONLY 2
#define MODEL_RECOMPUTE_CHEAP 4
#define MODEL_NO_MASTER 8
enum { MODEL_RECOMPUTE_OFF = 0, MODEL_RECOMPUTE_FULL = 1, MODEL_RECOMPUTE_CHEAP_MODE = 2 };  // model_t.recompute
model_t *model_create_experts(backend_t *be, const model_config_t *cfg, float *params, int max_tokens, int e_lo,
                              int e_hi, int flags);
void model_free(model_t *m);
// Bytes of the activation arenas and the scratch that model_create_experts would plan for max_tokens tokens
// with elements of esize bytes and these flags (0 or MODEL_RECOMPUTE), allocating nothing.
size_t model_activation_bytes(const model_config_t *cfg, int max_tokens, size_t esize, int flags);

// Forward over T packed tokens: ids [T] in [0, V), cu_seqlens [nseq+1] (0 = c_0 < ... <= c_nseq = T,
// empty sequences allowed). Returns 0, or -1 with cispo_last_error() when the batch is invalid.
int model_forward(model_t *m, const int32_t *ids, const int32_t *cu_seqlens, int nseq, int T);
// The same forward with caches (cache->mode: prefill or decode; see model_cache_t).
int model_forward_cached(model_t *m, const int32_t *ids, const int32_t *cu_seqlens, int nseq, int T,
                         model_cache_t *cache);
// The cached forward in two halves: model_stage_cached checks the batch and brings its index arrays
// to the backend (host work and uploads, and the workspace sized), model_run_cached runs its ops only
// (no host reads or uploads: with a cache it can be captured as a CUDA graph and replayed for the
// next batch of the same shape once that batch is staged).
int model_stage_cached(model_t *m, const int32_t *ids, const int32_t *cu_seqlens, int nseq, int T,
                       const model_cache_t *cache);
void model_run_cached(model_t *m, model_cache_t *cache);
// Per-token log-probs of targets [T] (-1 = no target: logp 0) under the last forward; entropy [T] or NULL.
// With m->logit_scale s != 1 they are of softmax(s z) (z the logits), and model_backward follows.
void model_logprobs(model_t *m, const int32_t *targets, float *logp, float *entropy);
// Backward of the last forward + model_logprobs: grads += dLoss/dparams for
// Loss = sum_t dlogp[t] * logp[t] + aux_coef * aux_loss (the gradient, as a linear functional).
// With m->grad_hook set it is called once per layer and once for the rest (model_grad_hook_t).
void model_backward(model_t *m, const float *dlogp, float aux_coef);
// The ranges of the flat buffer (floats) holding layer's parameters (0 <= layer < n_layers; one range: a
// layer's tensors are contiguous in params.h's layout) or, for layer -1, every other parameter (embedding,
// then final norm and LM head: two ranges). Over layers n_layers-1 .. 0 and -1 they cover the buffer
// exactly once. Returns the count (1 or 2); off and len hold up to 2.
int model_grad_ranges(const model_t *m, int layer, size_t off[2], size_t len[2]);
void model_zero_grad(model_t *m);
// model_zero_grad without the pass over the whole buffer: the next model_backward writes the gradients of
// every linear and expert weight instead of adding to them (an expert without tokens gets zeros), and only
// the rest (norms, embedding, LM head: a few percent) is zeroed now. Until that backward m->grads is not
// zero: call model_grads_settle before reading it when no backward may have run (a rank without
// micro-batches). Under expert parallelism it is model_zero_grad.
void model_zero_grad_deferred(model_t *m);
void model_grads_settle(model_t *m);
// The experts the last forward routed layer l's tokens to: idx [m->T][K] (host), read from the backend.
void model_routes(const model_t *m, int layer, int32_t *idx);
// Copies the fp32 master into the working copy (after params were loaded or changed outside the
// optimizer); nothing to do when the activation dtype is fp32 or there is no master.
void model_sync_weights(model_t *m);
// Every parameter's fp32 value from host memory (params.h layout): into the master and the working copy,
// or straight into the working copy of a MODEL_FORWARD_ONLY model without a master.
void model_load_params(model_t *m, const float *host);
// The model lets go of its fp32 master (an optimizer keeps the master's shards: optim_keep_master): m->params
// becomes NULL; in fp32 the buffer stays as the working copy, else it is freed. The weights are unchanged.
void model_drop_master(model_t *m);

// RoPE frequencies of the softmax layers (model/layer_softmax.c), per transformers' rope type:
// inv_freq [rotary_dim / 2] and *scale (attention_scaling, multiplies cos and sin) for a sequence whose
// largest position is seq_len - 1. Only "dynamic" and "longrope" depend on seq_len (model_rope_by_length);
// a packed batch gets them per sequence, as transformers would compute each sequence alone on a fresh
// model (its rotary embedding keeps the longest length seen across calls; cispo has no such state).
// Decode of a token at position p uses seq_len = p + 1, as transformers' generate does step by step,
// so for those two types cached keys keep the frequencies of the step that wrote them.
void model_rope_inv_freq(const model_config_t *c, int seq_len, float *inv_freq, float *scale);
int model_rope_by_length(const model_config_t *c);

#endif
