// trainer/cost.c — FLOPs per token, sequence sums and RL run estimates (cost.h).
// defines: COST_DEEPSEEK_R1, cost_flops_minimax, cost_flops_mla, cost_forward_at, cost_forward_sequence,
//          cost_gpus, cost_gpu_find, cost_run_default, cost_estimate_run, cost_dollars
#include "trainer/cost.h"

#include <string.h>
#include <strings.h>

void cost_flops_minimax(const model_config_t *cfg, cost_flops_t *out) {
    memset(out, 0, sizeof *out);
    // doubles from the start: M1's products overflow int
    double C = cfg->hidden_size, H = cfg->n_heads, D = cfg->head_dim, A = H * D, KV = cfg->n_kv_heads;
    double E = cfg->n_experts, K = cfg->n_experts_per_tok, F = cfg->intermediate_size, V = cfg->vocab_size;
    out->n_layers = cfg->n_layers;
    for (int l = 0; l < cfg->n_layers; l++) {
        if (cfg->layer_kind[l] == LAYER_SOFTMAX) {
            out->n_softmax++;
            out->attn_proj += 2 * C * (A + 2 * KV * D) + 2 * A * C;  // q, k, v; o
            out->per_ctx += 4 * A;                                   // q.k and p.v: 2*A*t each
        } else {
            out->n_linear++;
            out->attn_proj += 2 * C * (3 * A + A) + 2 * A * C;  // qkv and output gate; out_proj
            out->attn_core += 4 * H * D * D;                     // S = lam*S + k^T v; o = q S
        }
        out->mlp += 2 * C * E + K * 6 * C * F;  // router; K SwiGLU experts (w1, w3, w2)
    }
    out->lm_head = 2 * C * V;
    out->base = out->attn_proj + out->attn_core + out->mlp + out->lm_head;
}

const cost_mla_config_t COST_DEEPSEEK_R1 = {
    .name = "deepseek-r1",
    .vocab_size = 129280,
    .hidden_size = 7168,
    .n_layers = 61,
    .n_dense_layers = 3,
    .n_heads = 128,
    .q_lora_rank = 1536,
    .kv_lora_rank = 512,
    .qk_nope_head_dim = 128,
    .qk_rope_head_dim = 64,
    .v_head_dim = 128,
    .dense_intermediate_size = 18432,
    .n_routed_experts = 256,
    .n_shared_experts = 1,
    .experts_per_tok = 8,
    .moe_intermediate_size = 2048,
};

void cost_flops_mla(const cost_mla_config_t *m, cost_flops_t *out) {
    memset(out, 0, sizeof *out);
    double C = m->hidden_size, H = m->n_heads, Rq = m->q_lora_rank, Rkv = m->kv_lora_rank;
    double dn = m->qk_nope_head_dim, dr = m->qk_rope_head_dim, dv = m->v_head_dim, dqk = dn + dr;
    double attn = 2 * C * Rq              // q_a_proj
                  + 2 * Rq * H * dqk      // q_b_proj
                  + 2 * C * (Rkv + dr)    // kv_a_proj_with_mqa (latent + the shared rope key)
                  + 2 * Rkv * H * (dn + dv)  // kv_b_proj (keys' nope part and values, all heads)
                  + 2 * H * dv * C;       // o_proj
    out->n_layers = m->n_layers;
    out->n_softmax = m->n_layers;
    out->attn_proj = attn * m->n_layers;
    out->per_ctx = (2 * H * dqk + 2 * H * dv) * m->n_layers;  // = 4*H*(dqk + dv)/2 per layer
    double dense = 6 * C * m->dense_intermediate_size;
    double moe = 2 * C * m->n_routed_experts + (m->experts_per_tok + m->n_shared_experts) * 6 * C * m->moe_intermediate_size;
    out->mlp = dense * m->n_dense_layers + moe * (m->n_layers - m->n_dense_layers);
    out->lm_head = 2 * C * m->vocab_size;
    out->base = out->attn_proj + out->attn_core + out->mlp + out->lm_head;
}

double cost_forward_at(const cost_flops_t *f, double t) { return f->base + f->per_ctx * t; }

double cost_forward_sequence(const cost_flops_t *f, double prompt_len, double gen_len) {
    double n = prompt_len + gen_len;
    return n * f->base + f->per_ctx * n * (n + 1) / 2;
}

// Dense BF16 tensor-core peaks (data sheets; sparsity doubles these and is never what training gets).
// H800 is the H100 SXM die with a cut interconnect: the same compute. H200 is H100 SXM compute with
// more, faster memory.
const cost_gpu_t cost_gpus[] = {
    {"H800", 989.4},  {"H100", 989.4}, {"H100-PCIe", 756.0}, {"H200", 989.4}, {"H20", 148.0},
    {"A100", 312.0},  {"A800", 312.0}, {"B200", 2250.0},     {"L40S", 362.1}, {"MI300X", 1307.4},
    {NULL, 0},
};

const cost_gpu_t *cost_gpu_find(const char *name) {
    if (!name) return NULL;
    for (const cost_gpu_t *g = cost_gpus; g->name; g++)
        if (!strcasecmp(g->name, name)) return g;
    return NULL;
}

cost_run_t cost_run_default(void) {
    cost_run_t r = {.n_gpus = 64,
                    .gpu = &cost_gpus[0],
                    .mfu_rollout = 0.15,
                    .mfu_train = 0.35,
                    .price_per_gpu_hour = 2.0,
                    .prompts_per_step = 512,
                    .samples_per_prompt = 16,
                    .prompt_len = 1024,
                    .gen_len = 32768,
                    .steps = 100};
    return r;
}

void cost_estimate_run(const cost_flops_t *f, const cost_run_t *run, cost_estimate_t *out) {
    memset(out, 0, sizeof *out);
    double samples = run->prompts_per_step * run->samples_per_prompt;
    double seq = cost_forward_sequence(f, run->prompt_len, run->gen_len);
    out->rollout_flops = samples * seq;
    out->train_flops = samples * COST_TRAIN_FACTOR * seq;
    double peak = run->gpu->peak_tflops * 1e12;  // FLOP/s per GPU
    out->gpu_hours_rollout = run->steps * out->rollout_flops / (peak * run->mfu_rollout) / 3600;
    out->gpu_hours_train = run->steps * out->train_flops / (peak * run->mfu_train) / 3600;
    out->gpu_hours = out->gpu_hours_rollout + out->gpu_hours_train;
    out->wall_days = out->gpu_hours / run->n_gpus / 24;
    out->dollars = out->gpu_hours * run->price_per_gpu_hour;
}

double cost_dollars(int n_gpus, double days, double price_per_gpu_hour) {
    return n_gpus * days * 24 * price_per_gpu_hour;
}
