// trainer/cmd_plan.c — `cispo plan`: the planned parallel layout of a model on N GPUs, what each GPU holds
// for training and for rollout (GB), the communication of one RL step and the predicted step time
// (trainer/plan.h; docs/performance.md "Planning a run").
//   cispo plan --model minimax-m1 --gpus 512 --gpu h800
// defines: cmd_plan
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/common.h"
#include "model/config.h"
#include "trainer/commands.h"
#include "trainer/keyconf.h"
#include "trainer/plan.h"

typedef struct {
    char model[4096], gpu[32];
    plan_input_t in;
    int recompute;
} plan_opts_t;

#define O(f) offsetof(plan_opts_t, f)
static const keyconf_key_t plan_keys[] = {
    {"model", KEY_STRING, O(model), 0, 0, NULL, "",
     "a preset name (tiny, bench-1b, minimax-m1: configs/models/NAME.yaml), a .yaml preset, a config.json or an HF "
     "model directory", 4096},
    {"gpus", KEY_INT, O(in.gpus), 1, 1e7, NULL, "1", "GPUs of the run", 0},
    {"gpu", KEY_STRING, O(gpu), 0, 0, NULL, "", "h800, h100 or h200", 32},
    {"max-len", KEY_DOUBLE, O(in.max_len), 1, 1e8, NULL, "1", "longest sample, prompt + generation (the context a rollout slot reserves)", 0},
    {"micro-tokens", KEY_DOUBLE, O(in.micro_tokens), 0, 1e9, NULL, "0", "tokens per micro-batch (0: max-len)", 0},
    {"batch", KEY_DOUBLE, O(in.batch), 1, 1e9, NULL, "1", "samples per RL step (prompts x samples per prompt)", 0},
    {"prompt-len", KEY_DOUBLE, O(in.prompt_len), 0, 1e8, NULL, "0", "mean prompt tokens (step time)", 0},
    {"gen-len", KEY_DOUBLE, O(in.gen_len), 1, 1e8, NULL, "1", "mean generated tokens (step time)", 0},
    {"updates", KEY_INT, O(in.updates), 1, 1e6, NULL, "1", "optimizer updates per RL step", 0},
    {"ep", KEY_INT, O(in.ep), 0, 1e6, NULL, "0", "expert-parallel group size (0: the largest dividing experts and dp)", 0},
    {"tp", KEY_INT, O(in.tp), 0, 64, NULL, "0", "tensor-parallel degree inside a node (0: chosen)", 0},
    {"pp", KEY_INT, O(in.pp), 0, 1024, NULL, "0", "pipeline stages (0: chosen)", 0},
    {"zero", KEY_INT, O(in.zero), 0, 1, NULL, "1", "1: ZeRO-1 (fp32 master and AdamW moments sharded over data-parallel ranks)", 0},
    {"recompute", KEY_BOOL, O(recompute), 0, 0, NULL, "false", "recompute activations in the backward (not given: on only when needed to fit)", 0},
    {"mfu", KEY_DOUBLE, O(in.mfu), 1e-3, 1, NULL, "0.4", "fraction of peak assumed for the matmuls not measured yet", 0},
    {"reserve", KEY_DOUBLE, O(in.reserve_gb), 0, 1e4, NULL, "3", "GB per GPU outside the model (CUDA context, NCCL and cuBLAS buffers)", 0},
};
#undef O

static const keyconf_cli_t plan_cli = {
    "cispo plan",
    "cispo plan --model MODEL --gpus N --gpu h800|h100|h200 [options]",
    "  The planned parallel layout (tensor x pipeline x data parallel, experts split over ep), memory per GPU\n"
    "  for training and rollout in GB (10^9 bytes), communication per RL step at the fabric's bandwidth and the\n"
    "  predicted step time. Tensor and pipeline parallelism (tp, pp) are a planned layout, not built yet; expert\n"
    "  parallelism, ZeRO-1 and activation recompute run (run keys ep, zero, recompute).",
    plan_keys, sizeof plan_keys / sizeof plan_keys[0], 0};

static void plan_opts_default(plan_opts_t *o) {
    keyconf_defaults(o, plan_keys, plan_cli.n_keys);
    o->in = plan_input_default();
    snprintf(o->gpu, sizeof o->gpu, "%s", o->in.gpu->name);
}

static double gb(double bytes) { return bytes / PLAN_GB; }

static void print_plan(const plan_t *p, const char *shown) {
    const model_config_t *c = &p->cfg;
    const plan_input_t *in = &p->in;
    const plan_gpu_t *g = in->gpu;
    printf("%s on %d x %s (%.0f GB, %.2f TB/s HBM, NVLink %.0f GB/s and InfiniBand %.0f GB/s per GPU each way, "
           "%d per node)\n",
           shown, in->gpus, g->name, g->mem_gb, g->hbm_tbs, g->nvlink_gbs, g->ib_gbs, g->gpus_per_node);
    printf("model: %.2f B parameters (%.2f B in %d x %d experts, %.2f B other), %d layers (%d lightning, %d softmax)\n",
           p->n_params / 1e9, p->n_expert / 1e9, c->n_layers, c->n_experts, p->n_dense / 1e9, c->n_layers,
           p->flops.n_linear, p->flops.n_softmax);
    printf("\nPLANNED LAYOUT: tensor/sequence and pipeline parallelism are not built; expert\n"
           "parallelism (each rank holds its own experts only), ZeRO-1 (master and moments) and activation recompute run.\n");
    printf("  tp %d x pp %d x dp %d = %d GPUs; ep %d: %d of the %d experts of each layer per GPU (split %d ways by tp),\n"
           "  each expert on %d GPU group(s) (dp/ep); ZeRO-%d; micro-batch %.0f tokens; recompute %s\n",
           p->tp, p->pp, p->dp, in->gpus, p->ep, c->n_experts / p->ep, c->n_experts, p->tp, p->edp, in->zero,
           in->micro_tokens, p->recompute ? "on" : "off");
    const plan_stage_t *h = &p->stage[p->heaviest];
    printf("\nTraining, per GPU (stage %d of %d, layers %d-%d: %d lightning, %d softmax)           GB\n", p->heaviest,
           p->pp, h->first, h->first + h->n_layers - 1, h->n_lin, h->n_soft);
    printf("  parameters held: %.3f B other / tp + %.3f B expert / (tp x ep) = %.3f B\n", h->p_dense / 1e9,
           h->p_expert / 1e9, (h->p_dense + h->p_expert) / 1e9);
    printf("  %-62s %8.2f\n", "bf16 working copy (2 bytes each)", gb(h->weights));
    char lbl[128];
    if (in->zero) snprintf(lbl, sizeof lbl, "fp32 master, ZeRO-1 shard (other /%d, experts /%d)", p->dp, p->edp);
    else snprintf(lbl, sizeof lbl, "fp32 master (replicated)");
    printf("  %-62s %8.2f\n", lbl, gb(h->master));
    printf("  %-62s %8.2f\n", "AdamW moments m, v (2 x fp32, same shards)", gb(h->moments));
    printf("  %-62s %8.2f\n", "fp32 gradients (whole; reduce-scattered each update)", gb(h->grads));
    snprintf(lbl, sizeof lbl, "activations, %.0f micro-batch(es) in flight, recompute %s", h->in_flight,
             p->recompute ? "on" : "off");
    printf("  %-62s %8.2f   (recompute %s: %.2f)\n", lbl, gb(h->acts), p->recompute ? "off" : "on",
           gb(p->recompute ? h->acts_full : h->acts_recompute));
    printf("  %-62s %8.2f\n", "scratch (model n_scratch)", gb(h->scratch));
    printf("  %-62s %8.2f\n", "reserve (CUDA context, NCCL/cuBLAS buffers)", in->reserve_gb);
    printf("  %-62s %8.2f   of %.0f: %s\n", "total", gb(h->train_total), g->mem_gb, p->fits ? "fits" : "DOES NOT FIT");

    printf("\nRollout, per GPU (on the training GPUs: the training state stays allocated, as the trainer does today)\n");
    printf("  %-62s %8.2f\n", "resident: weights, master, moments, grads, one arena, scratch, reserve", gb(h->resident));
    printf("  %-62s %8.2f\n", "room for caches", gb(h->cache_room));
    const double KVD = (double)c->n_kv_heads * c->head_dim, HDD = (double)c->n_heads * c->head_dim * c->head_dim;
    double lin = (h->n_lin + (h->n_lin ? 2 : 0)) * HDD * 4 / p->tp;  // + a prefill's staged final and initial states
    printf("  per sequence (lightning states %.1f MB fp32 + K,V bf16 %.0f bytes per token of context, reserved for\n"
           "  the whole context; no paging):\n",
           lin / 1e6, h->n_soft * 2 * KVD * 2 / p->tp);
    printf("    %-16s %8.3f GB   %6.0f sequences per replica of %d GPUs, %7.0f in all\n", "40K generation",
           gb(h->per_seq_40k), p->conc_40k, p->tp * p->pp, p->conc_40k_all);
    printf("    %-16s %8.3f GB   %6.0f sequences per replica of %d GPUs, %7.0f in all\n", "80K generation",
           gb(h->per_seq_80k), p->conc_80k, p->tp * p->pp, p->conc_80k_all);
    printf("    %-16s %8.3f GB   %6.0f sequences per replica, %7.0f in all%s\n", "--max-len", gb(h->per_seq_max),
           p->conc_max, p->conc_max_all, p->rollout_fits ? "" : "   DOES NOT FIT");

    printf("\nCommunication per RL step, per GPU (sent, at the link rate)         GB        s\n");
    const char *dp_link = p->dp_over_ib ? "IB" : "NVLink", *ep_link = p->ep_over_ib ? "IB" : "NVLink";
    snprintf(lbl, sizeof lbl, "%s over dp %d (%s)", in->zero ? "gradient reduce-scatter, fp32" : "gradient all-reduce, fp32",
             p->dp, dp_link);
    printf("  %-60s %8.2f %8.2f\n", lbl, gb(p->grad_rs_bytes), p->grad_rs_s);
    if (in->zero) {
        snprintf(lbl, sizeof lbl, "bf16 parameter all-gather over dp %d (%s)", p->dp, dp_link);
        printf("  %-60s %8.2f %8.2f\n", lbl, gb(p->param_ag_bytes), p->param_ag_s);
    }
    snprintf(lbl, sizeof lbl, "MoE all-to-all, training (ep %d, %s)", p->ep, ep_link);
    printf("  %-60s %8.2f %8.2f\n", lbl, gb(p->a2a_train_bytes), p->a2a_train_s);
    snprintf(lbl, sizeof lbl, "MoE all-to-all, rollout (ep %d, %s)", p->ep, ep_link);
    printf("  %-60s %8.2f %8.2f\n", lbl, gb(p->a2a_roll_bytes), p->a2a_roll_s);
    if (p->tp > 1) {
        snprintf(lbl, sizeof lbl, "tensor/sequence parallel gathers and scatters (tp %d, %s)", p->tp,
                 p->tp_over_ib ? "IB" : "NVLink");
        printf("  %-60s %8.2f %8.2f\n", lbl, gb(p->tp_bytes), p->tp_s);
    }
    if (p->pp > 1) printf("  %-60s %8.2f %8.2f\n", "pipeline activations and their gradients", gb(p->pp_bytes), p->pp_s);
    printf("  %-60s %8s %8.2f\n", "total", "", p->t_comm);

    printf("\nStep time: %.0f samples of %.0f + %.0f tokens (means), %d update(s)                  s\n", in->batch,
           in->prompt_len, in->gen_len, in->updates);
    printf("  %-70s %8.1f\n", "rollout prefill (matmuls at the assumed MFU)", p->t_prefill);
    snprintf(lbl, sizeof lbl, "rollout decode: %.0f wave(s) x %.0f steps x %.2f ms (%s-bound)", p->waves, in->gen_len,
             1e3 * (p->t_decode_mem > p->t_decode_flop ? p->t_decode_mem : p->t_decode_flop),
             p->t_decode_mem > p->t_decode_flop ? "memory" : "compute");
    printf("  %-70s %8.1f\n", lbl, p->t_decode);
    snprintf(lbl, sizeof lbl, "training matmuls, %.2f EFLOP at %.0f%% MFU (assumed: not measured)",
             (p->train_flops_step - p->in.batch * (COST_TRAIN_FACTOR + p->recompute) *
                                        (in->prompt_len + in->gen_len) * p->flops.attn_core) / 1e18,
             100 * in->mfu);
    printf("  %-70s %8.1f\n", lbl, p->t_train_matmul);
    printf("  %-70s %8.1f\n", "training lightning core (measured rate, bench/NOTES.md)", p->t_train_lightning);
    if (p->pp > 1) printf("  %-70s %7.1f%%\n", "pipeline bubble (1F1B)", 100 * p->bubble);
    printf("  %-70s %8.1f\n", "communication (not overlapped yet)", p->t_comm);
    printf("  %-70s %8.1f\n", "step", p->t_step);
    printf("  decode per step: bytes %.2f ms at the measured copy rate (%.2f TB/s) vs FLOPs %.2f ms; the longest\n"
           "  sample, not the mean, ends a wave: a lower bound.\n",
           1e3 * p->t_decode_mem, g->copy_tbs, 1e3 * p->t_decode_flop);
    if (!p->fits || !p->rollout_fits)
        printf("\nNo planned layout fits: raise --gpus, give --recompute, or lower --max-len.\n");
}

static int plan_main(plan_opts_t *o, const unsigned char *given) {
    o->in.gpu = plan_gpu_find(o->gpu);
    if (!o->in.gpu) {
        fprintf(stderr, "cispo plan: --gpu %s: unknown GPU; known:", o->gpu);
        for (const plan_gpu_t *g = plan_gpus; g->name; g++) fprintf(stderr, " %s", g->name);
        fprintf(stderr, "\n");
        return 2;
    }
    if (!o->model[0]) {
        fprintf(stderr, "cispo plan: --model is required (`cispo plan --help`)\n");
        return 2;
    }
    int rc_idx = -1;
    for (int i = 0; i < plan_cli.n_keys; i++)
        if (!strcmp(plan_keys[i].name, "recompute")) rc_idx = i;
    o->in.recompute = given[rc_idx] ? o->recompute : -1;
    model_config_t cfg;
    char shown[4096];
    if (plan_load_model(o->model, &cfg, shown, sizeof shown)) {
        fprintf(stderr, "cispo plan: %s\n", cispo_last_error());
        return 1;
    }
    plan_t *p = cispo_malloc(sizeof *p);
    int rc = plan_make(&cfg, &o->in, p);
    if (rc) fprintf(stderr, "cispo plan: %s\n", cispo_last_error());
    else print_plan(p, o->model);
    int fits = !rc && p->fits && p->rollout_fits;
    free(p);
    return rc ? 2 : fits ? 0 : 1;
}

int cmd_plan(int argc, char **argv) {
    plan_opts_t *o = cispo_calloc(1, sizeof *o);
    unsigned char given[sizeof plan_keys / sizeof plan_keys[0]] = {0};
    plan_opts_default(o);
    int prc = keyconf_parse_cli(&plan_cli, o, argc, argv, NULL, NULL, given);
    if (prc) {
        if (prc < 0) fprintf(stderr, "cispo plan: %s\n", cispo_last_error());
        free(o);
        return prc < 0 ? 2 : 0;
    }
    int rc = plan_main(o, given);
    free(o);
    return rc;
}
