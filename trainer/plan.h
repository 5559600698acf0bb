// trainer/plan.h — the planned parallel layout of a MiniMax-style model on a GPU cluster, its memory per
// GPU for training and rollout, the communication of one RL step and the predicted step time
// (`cispo plan`, docs/performance.md "Planning a run").
// defines: plan_load_model, plan_gpu_t, plan_gpus, plan_gpu_find, plan_input_t, plan_input_default, plan_stage_t, plan_t,
//          plan_layer_params, plan_layer_act_bytes, plan_make, PLAN_GB
//
// Memory follows what the code allocates per parameter (model/model.c, trainer/optim.c): a bf16
// working copy (2 bytes), the fp32 master (4), fp32 gradients (4) and two fp32 AdamW moments (8).
// ZeRO-1 shards the master and the moments over the data-parallel ranks that hold the same tensor
// (non-expert tensors over dp, expert tensors over dp/ep); gradients stay whole (the reduce-scatter
// writes into the full buffer). Activations are model/model.c's plan_activations per token, the
// scratch its n_scratch, rollout caches model/infer.c's infer_create (fp32 lightning states, bf16 K and
// V reserved for max_ctx per slot, an fp32 logits row per slot).
//
// PLANNED LAYOUT: tensor parallelism with sequence parallelism (tp) and pipeline stages (pp) are not built
// yet (issue 16); the plan sizes them as designed. Expert parallelism (run key ep), ZeRO-1 of the master
// and the moments (zero) and activation recompute (recompute: model.h MODEL_RECOMPUTE) run.
//
// Layout: world = tp x pp x dp; ranks are numbered tp fastest, then dp, then pp, so a TP group sits in
// one node and a DP (and EP) group strides across nodes. tp splits every non-expert tensor and each
// expert's F dimension (vectors too, an O(C) simplification) and, with sequence parallelism, every
// activation; pp splits the layers (stage 0 also holds the embedding, the last stage the final norm
// and LM head); ep splits each MoE layer's experts within the dp ranks of a stage.
#ifndef CISPO_TRAINER_PLAN_H
#define CISPO_TRAINER_PLAN_H

#include "model/config.h"
#include "trainer/cost.h"

#include <stddef.h>

#define PLAN_GB 1e9  // memory in GB (10^9 bytes), as the issue and the data sheets state capacity

// The config of --model SPEC: a preset name (configs/models/NAME.yaml), a .yaml, a config.json or an HF
// directory; shown gets the file read. -1 + message naming the spec when there is none.
int plan_load_model(const char *spec, model_config_t *cfg, char *shown, size_t n);

// A GPU model and the fabric of a node (docs/performance.md "Planning a run" gives the sources).
typedef struct {
    const char *name;       // "H800"
    double mem_gb;          // HBM capacity, GB
    double hbm_tbs;         // HBM bandwidth from the data sheet, TB/s
    double copy_tbs;        // copy rate used for memory-bound decoding (measured on an H100, scaled by hbm)
    double nvlink_gbs;      // NVLink per GPU, one direction, GB/s
    double ib_gbs;          // InfiniBand per GPU, one direction, GB/s (8 x 400 Gb/s NICs per node of 8)
    int gpus_per_node;
    const cost_gpu_t *compute;  // peak dense BF16 (trainer/cost.h)
} plan_gpu_t;
extern const plan_gpu_t plan_gpus[];  // ends with {NULL}
const plan_gpu_t *plan_gpu_find(const char *name);  // case-insensitive; NULL when unknown

typedef struct {
    int gpus;
    const plan_gpu_t *gpu;
    int tp, pp, ep;          // 0: chosen (the fitting tp x pp with the shortest step; ep the largest that divides)
    int zero;                // 1: ZeRO-1 (master and moments sharded); 0: replicated
    int recompute;           // 1 on, 0 off, -1 chosen (off when it fits)
    double max_len;          // longest sample (prompt + generation): the context rollout reserves per slot
    double micro_tokens;     // tokens per micro-batch (0: max_len: a sample is never split)
    double batch;            // samples per RL step
    double prompt_len, gen_len;  // mean prompt and generated tokens (step time)
    int updates;             // optimizer updates per RL step (minibatches)
    double mfu;              // assumed fraction of peak for the matmuls no benchmark has measured yet
    double reserve_gb;       // per GPU, outside the model: CUDA context, cuBLAS/NCCL buffers, fragmentation
} plan_input_t;

// gpus 512 x H800, ZeRO-1, max_len 81920 + 1024, micro_tokens = max_len, batch 8192 (512 prompts x 16
// samples), prompt 1024 and generation 32768 mean (cost_run_default), 1 update, mfu 0.4, reserve 3 GB.
plan_input_t plan_input_default(void);

// Parameters of layer l: non-expert (norms, attention, router) and expert (E x 3 x F x C).
void plan_layer_params(const model_config_t *c, int l, double *dense, double *expert);
// Bytes per token that plan_activations keeps for layer l at activation size esize: activations
// (esize), fp32 statistics and int32 routing indices.
double plan_layer_act_bytes(const model_config_t *c, int l, double esize);

// One pipeline stage as one GPU of it holds it (all bytes per GPU).
typedef struct {
    int first, n_layers, n_lin, n_soft, has_embed, has_head;
    double dense, expert;                 // parameters of the stage (whole, before tp/ep)
    double p_dense, p_expert;             // parameters on one GPU
    double weights, master, moments, grads;
    double acts_full, acts_recompute;     // the activations of the micro-batches in flight
    double acts, scratch, train_total;    // with the chosen recompute
    double in_flight;                     // micro-batches whose activations stage 0.. keeps (1F1B: pp - s)
    double per_seq_40k, per_seq_80k, per_seq_max;  // rollout caches per sequence at 40K, 80K, max_len
    double resident;                      // what stays allocated during rollout (training state + arena)
    double cache_room;                    // mem - resident - reserve
} plan_stage_t;

typedef struct {
    plan_input_t in;
    model_config_t cfg;
    cost_flops_t flops;
    int tp, pp, dp, ep, edp, recompute, fits, rollout_fits;
    double n_dense, n_expert, n_params;   // whole model
    plan_stage_t stage[MODEL_MAX_LAYERS];
    int heaviest;                         // stage with the largest train_total
    double acts_full_peak, acts_recompute_peak;  // the heaviest stage under each choice
    // rollout: sequences decoded at once, per replica (tp x pp GPUs) and in all
    double conc_40k, conc_80k, conc_max, conc_40k_all, conc_80k_all, conc_max_all;
    // communication per RL step, bytes per GPU and seconds
    double grad_rs_bytes, param_ag_bytes, a2a_train_bytes, a2a_roll_bytes, tp_bytes, pp_bytes;
    double grad_rs_s, param_ag_s, a2a_train_s, a2a_roll_s, tp_s, pp_s;
    int dp_over_ib, ep_over_ib, tp_over_ib;
    // step time, seconds
    double t_prefill, t_decode, t_decode_mem, t_decode_flop, decode_steps, waves;
    double t_train_matmul, t_train_lightning, bubble, t_train;
    double t_rollout, t_comm, t_step;
    double train_flops_step, roll_flops_step;
} plan_t;

// Builds the plan of cfg under in. Returns 0; -1 with cispo_last_error() for input that cannot be laid
// out (gpus not a multiple of tp x pp, ep not dividing the experts or the data-parallel degree, pp not
// dividing the layers, ...). A plan that does not fit sets fits = 0 (and says so when printed).
int plan_make(const model_config_t *cfg, const plan_input_t *in, plan_t *p);

#endif
