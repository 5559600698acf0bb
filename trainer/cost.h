// trainer/cost.h — the compute and money cost of a model and of an RL run: FLOPs per token from
// docs/model.md's "FLOPs per token" section (for any MiniMax-style config), the same for DeepSeek-V3/R1's
// MLA + MoE architecture (for comparison), sums over a generation, and a GPU-hours / days / dollars
// estimate of an RL run.
// defines: cost_flops_t, cost_mla_config_t, COST_DEEPSEEK_R1, cost_flops_minimax, cost_flops_mla,
//          cost_forward_at, cost_forward_sequence, COST_TRAIN_FACTOR, cost_gpu_t, cost_gpus,
//          cost_gpu_find, cost_run_t, cost_estimate_t, cost_run_default, cost_estimate_run, cost_dollars
//
// Convention: 2 FLOPs per multiply-add, matmuls only (norms, activations, softmax, RoPE are < 1% and
// left out, as in docs/model.md). A token at context t (t = the number of keys it attends to, itself
// included) costs
//     F(t) = base + per_ctx * t
// where per_ctx comes only from softmax attention (lightning attention's recurrent form is constant
// in t). Training costs COST_TRAIN_FACTOR = 3 x forward (backward = 2 x forward: the gradients with
// respect to the inputs and to the weights each cost one forward).
#ifndef CISPO_TRAINER_COST_H
#define CISPO_TRAINER_COST_H

#include "model/config.h"

#define COST_TRAIN_FACTOR 3.0

typedef struct {
    double attn_proj;   // attention projections, all layers (q/k/v/gate/out; MLA's down/up projections)
    double attn_core;   // attention work independent of context (lightning: 4*H*D^2 per layer)
    double mlp;         // FFN / MoE: router + the experts a token runs through (+ dense FFN layers)
    double lm_head;     // 2*C*V
    double base;        // attn_proj + attn_core + mlp + lm_head
    double per_ctx;     // FLOPs per unit of context t: the softmax layers' q.k and p.v products
    int n_layers, n_linear, n_softmax;  // n_linear: lightning layers (constant cost in t)
} cost_flops_t;

// MiniMax hybrid (docs/model.md "FLOPs per token"), with C, A = H*D, KV, E, K, F, V from cfg:
//   lightning layer: 2*C*(3A + A) + 2*A*C + 4*H*D^2
//   softmax layer:   2*C*(A + 2*KV*D) + 2*A*C, plus 4*A*t at context t
//   MoE block:       2*C*E + K*6*C*F          LM head: 2*C*V
void cost_flops_minimax(const model_config_t *cfg, cost_flops_t *out);

// DeepSeek-V3/R1 style: multi-head latent attention (MLA) and DeepSeekMoE.
typedef struct {
    const char *name;
    int vocab_size, hidden_size, n_layers, n_dense_layers, n_heads;
    int q_lora_rank, kv_lora_rank, qk_nope_head_dim, qk_rope_head_dim, v_head_dim;
    int dense_intermediate_size;   // FFN width of the first n_dense_layers
    int n_routed_experts, n_shared_experts, experts_per_tok, moe_intermediate_size;
} cost_mla_config_t;

// DeepSeek-R1 (config.json of deepseek-ai/DeepSeek-R1, the DeepSeek-V3 architecture): 61 layers,
// hidden 7168, 128 heads, q_lora_rank 1536, kv_lora_rank 512, qk_nope 128, qk_rope 64, v_head 128,
// first 3 layers dense (intermediate 18432), 58 MoE layers with 256 routed experts of 2048 and 1
// shared, 8 routed per token, vocab 129280. 37 B active parameters per token.
extern const cost_mla_config_t COST_DEEPSEEK_R1;

// Per layer, with d_qk = qk_nope + qk_rope and the projections computed in the explicit (training /
// prefill) form, as the MLA paper writes them (DeepSeek-V2 report, section 2.1.2-2.1.3):
//   q_a: 2*C*q_lora   q_b: 2*q_lora*H*d_qk   kv_a: 2*C*(kv_lora + qk_rope)
//   kv_b: 2*kv_lora*H*(qk_nope + v_head)   o: 2*H*v_head*C
//   scores q.k over d_qk and values p.v over v_head at context t: 2*H*d_qk*t + 2*H*v_head*t
//     = 4*H*(d_qk + v_head)/2 * t
// FFN: dense layers 6*C*F_dense; MoE layers 2*C*E (router) + (K + shared)*6*C*F_moe. LM head 2*C*V.
// The multi-token-prediction module is not part of generation and is left out.
void cost_flops_mla(const cost_mla_config_t *m, cost_flops_t *out);

// Forward FLOPs of one token at context t.
double cost_forward_at(const cost_flops_t *f, double t);
// Forward FLOPs of a whole sequence: prompt_len prompt tokens then gen_len generated ones, i.e. the
// sum of F(t) over t = 1 .. prompt_len + gen_len (prefill and decoding do the same matmuls):
//   n*base + per_ctx * n(n+1)/2,  n = prompt_len + gen_len.
double cost_forward_sequence(const cost_flops_t *f, double prompt_len, double gen_len);

// Peak dense (no sparsity) BF16 tensor throughput from the vendors' data sheets.
typedef struct {
    const char *name;
    double peak_tflops;
} cost_gpu_t;
extern const cost_gpu_t cost_gpus[];  // ends with {NULL, 0}
// Case-insensitive lookup ("h800", "H100", ...); NULL when unknown.
const cost_gpu_t *cost_gpu_find(const char *name);

// An RL run: each step generates prompts_per_step * samples_per_prompt responses, then trains on all
// of them once (minibatch updates split the batch; they do not repeat it).
typedef struct {
    int n_gpus;
    const cost_gpu_t *gpu;
    double mfu_rollout;      // fraction of peak reached while generating (decoding is memory-bound)
    double mfu_train;        // fraction of peak reached while training
    double price_per_gpu_hour;
    double prompts_per_step, samples_per_prompt;
    double prompt_len;       // mean prompt tokens
    double gen_len;          // mean generated tokens
    double steps;
} cost_run_t;

typedef struct {
    double rollout_flops, train_flops;     // per step
    double gpu_hours_rollout, gpu_hours_train, gpu_hours;  // whole run
    double wall_days;                      // gpu_hours / n_gpus / 24
    double dollars;                        // gpu_hours * price
} cost_estimate_t;

// Defaults: 64 x H800, MFU 0.15 rollout / 0.35 train, $2 per GPU-hour, 512 prompts x 16 samples,
// prompts of 1024 and responses of 32768 tokens, 100 steps.
cost_run_t cost_run_default(void);
// The estimate from the model's FLOPs (f) and the run. Sequence lengths are taken at their means
// (the context term makes long samples cost more than the mean suggests: a lower bound).
void cost_estimate_run(const cost_flops_t *f, const cost_run_t *run, cost_estimate_t *out);
// n_gpus GPUs held for days at price per GPU-hour.
double cost_dollars(int n_gpus, double days, double price_per_gpu_hour);

#endif
