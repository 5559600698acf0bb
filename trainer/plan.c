// trainer/plan.c — parallel layout, memory per GPU, communication and step time of an RL run (plan.h).
// defines: plan_load_model, plan_gpus, plan_gpu_find, plan_input_default, plan_layer_params, plan_layer_act_bytes, plan_make
#include "trainer/plan.h"

#include <math.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "base/common.h"
#include "trainer/paths.h"

static int exists(const char *p, int want_dir) {
    struct stat sb;
    return stat(p, &sb) == 0 && (want_dir ? S_ISDIR(sb.st_mode) : S_ISREG(sb.st_mode));
}

int plan_load_model(const char *spec, model_config_t *cfg, char *shown, size_t n) {
    char path[4096 + 16];
    if (strlen(spec) + sizeof "/config.json" > 4096) return cispo_fail("--model %.64s...: path too long", spec);
    char resolved[4096];
    paths_model_spec(spec, resolved, sizeof resolved);  // tiny -> configs/models/tiny.yaml, as every command
    if (exists(resolved, 1)) (void)!snprintf(path, sizeof path, "%s/config.json", resolved);
    else if (exists(resolved, 0)) (void)!snprintf(path, sizeof path, "%s", resolved);
    else
        return cispo_fail("--model %s: no such file, directory or preset (presets live in configs/models/NAME.yaml of "
                          "the source tree or the install's share/cispo; set CISPO_SRC to the source tree when running "
                          "a binary from elsewhere)",
                          spec);
    snprintf(shown, n, "%.4000s", path);
    return model_config_load(cfg, path);
}

// Data sheets (NVIDIA H100/H800/H200 SXM): HBM 80 GB at 3.35 TB/s (H100, H800), 141 GB at 4.8 TB/s
// (H200); NVLink 900 GB/s bidirectional per GPU (H100, H200), 400 GB/s on the H800; a node of 8 GPUs
// with 8 x 400 Gb/s InfiniBand NICs (the MiniMax-M1 cluster's fabric as issue 16 states it), so 50 GB/s
// per GPU each way. copy_tbs: the copy rate bench/NOTES.md measured on an H100 80GB HBM3 (2944 GB/s,
// 88% of 3.35), the same fraction of the H200's 4.8 TB/s (not measured).
const plan_gpu_t plan_gpus[] = {
    {"H800", 80, 3.35, 2.944, 200, 50, 8, &cost_gpus[0]},
    {"H100", 80, 3.35, 2.944, 450, 50, 8, &cost_gpus[1]},
    {"H200", 141, 4.8, 4.218, 450, 50, 8, &cost_gpus[3]},
    {NULL, 0, 0, 0, 0, 0, 0, NULL},
};

const plan_gpu_t *plan_gpu_find(const char *name) {
    if (!name) return NULL;
    for (const plan_gpu_t *g = plan_gpus; g->name; g++)
        if (!strcasecmp(g->name, name)) return g;
    return NULL;
}

plan_input_t plan_input_default(void) {
    cost_run_t r = cost_run_default();
    plan_input_t in = {.gpus = 512,
                       .gpu = &plan_gpus[0],
                       .zero = 1,
                       .recompute = -1,
                       .max_len = 1024 + 81920,
                       .batch = r.prompts_per_step * r.samples_per_prompt,
                       .prompt_len = r.prompt_len,
                       .gen_len = r.gen_len,
                       .updates = 1,
                       .mfu = 0.4,
                       .reserve_gb = 3};
    return in;
}

void plan_layer_params(const model_config_t *c, int l, double *dense, double *expert) {
    double C = c->hidden_size, A = model_attn_width(c), KVD = (double)c->n_kv_heads * c->head_dim;
    double E = c->n_experts, F = c->intermediate_size;
    double attn = c->layer_kind[l] == LAYER_LIGHTNING ? 3 * A * C + A * C + A + C * A  // qkv, gate, norm, out
                                                      : A * C + 2 * KVD * C + C * A;   // q, k, v, o
    *dense = C + attn + C + E * C;  // input norm, attention, post norm, router
    *expert = E * 3 * F * C;        // w1, w3 [F, C] and w2 [C, F] of each expert
}

// model/model.c plan_activations, per token of one layer (without the arenas' alignment padding: at most
// 63 elements a piece, nothing per token).
double plan_layer_act_bytes(const model_config_t *c, int l, double es) {
    double C = c->hidden_size, A = model_attn_width(c), KVD = (double)c->n_kv_heads * c->head_dim;
    double H = c->n_heads, E = c->n_experts, K = c->n_experts_per_tok, F = c->intermediate_size;
    double na = 4 * C + E + K * (2 * C + 3 * F);  // h, x1, h2, output; logits; xe, h13, act, ye
    double st = 2 + E + K, ni = 2 * K;            // rstd_in, rstd_post, probs, topk_w; topk_idx, perm
    if (c->layer_kind[l] == LAYER_LIGHTNING) na += 9 * A, st += 1;  // qkv_pre 3A, q k v, o_core, gate_pre, gated
    else na += 2 * A + 2 * KVD, st += H;  // q, o_core; k, v; lse (q, k before RoPE: in the scratch)
    return na * es + 4 * st + 4 * ni;
}

// ---- measured kernel rates (bench/NOTES.md, "Final", NVIDIA H100 80GB HBM3) ----
// Lightning attention at D = 128, seconds per (token, head, layer): M1 widths H = 64 at T = 64K fwd 2.679
// ms, fwd+bwd 10.348 ms; bench-1b H = 8: 0.578 and 2.228 ms. The plan takes the point nearest to the
// heads one GPU runs (H / tp). H800 has the H100's SMs and HBM; the H200 is assumed no faster.
static void lightning_rate(double heads_per_gpu, double *fwd, double *fwd_bwd) {
    int wide = heads_per_gpu >= 36;
    double H = wide ? 64 : 8;
    *fwd = (wide ? 2.679e-3 : 0.578e-3) / 65536 / H;
    *fwd_bwd = (wide ? 10.348e-3 : 2.228e-3) / 65536 / H;
}

static int fail(const char *msg) { return cispo_fail("%s", msg); }

static double ceil_div(double a, double b) { return ceil(a / b - 1e-9); }

// Memory of every stage under p's layout; sets p->fits and p->rollout_fits.
static void plan_memory(plan_t *p) {
    const model_config_t *c = &p->cfg;
    const plan_input_t *in = &p->in;
    const double es = 2, C = c->hidden_size, V = c->vocab_size, tp = p->tp, mem = in->gpu->mem_gb * PLAN_GB;
    const double HDD = (double)c->n_heads * c->head_dim * c->head_dim, KVD = (double)c->n_kv_heads * c->head_dim;
    const double T = in->micro_tokens, n_mean = in->prompt_len + in->gen_len;
    const double reserve = in->reserve_gb * PLAN_GB;
    // micro-batches of one update in one pipeline: its samples' tokens over micro_tokens
    double micro = ceil_div(in->batch / in->updates / p->dp * n_mean, T);
    if (micro < 1) micro = 1;
    int base = c->n_layers / p->pp, extra = c->n_layers % p->pp, at = 0;
    p->fits = p->rollout_fits = 1;
    p->heaviest = 0;
    p->acts_full_peak = p->acts_recompute_peak = 0;
    double conc[3] = {INFINITY, INFINITY, INFINITY};
    for (int s = 0; s < p->pp; s++) {
        plan_stage_t *g = &p->stage[s];
        memset(g, 0, sizeof *g);
        g->first = at;
        g->n_layers = base + (s < extra);
        g->has_embed = s == 0;
        g->has_head = s == p->pp - 1;
        double full_tok = 0, ckpt_tok = 0, max_layer = 0;
        for (int l = at; l < at + g->n_layers; l++) {
            double d, e;
            plan_layer_params(c, l, &d, &e);
            g->dense += d, g->expert += e;
            if (c->layer_kind[l] == LAYER_LIGHTNING) g->n_lin++;
            else g->n_soft++;
            double a = plan_layer_act_bytes(c, l, es);
            // recompute (model/model.c plan_activations) keeps each layer's input, rstd and routes; the
            // rest of a layer lives in one region as large as the largest layer's
            double kept = C * es + 4 + 4.0 * c->n_experts_per_tok;
            full_tok += a;
            ckpt_tok += kept;
            if (a - kept > max_layer) max_layer = a - kept;
        }
        at += g->n_layers;
        if (g->has_embed) g->dense += V * C;
        if (g->has_head) g->dense += C + (c->tie_word_embeddings && p->pp == 1 ? 0 : V * C);
        // per token, beside the layers: the stage's input x, ids/pos/targets/slots/cu_seqlens; the last
        // stage's final norm output and its fp32 statistics (rstd, lse, logp, entropy, dlogp)
        double glob = C * es + 6 * 4 + (g->has_head ? C * es + 5 * 4 : 0);
        double per_model = g->n_layers * (4 + 4.0 * (c->n_experts + 1));  // aux, offsets
        g->p_dense = g->dense / tp;
        g->p_expert = g->expert / (tp * p->ep);
        g->weights = 2 * (g->p_dense + g->p_expert);
        g->master = 4 * (g->p_dense / (in->zero ? p->dp : 1) + g->p_expert / (in->zero ? p->edp : 1));
        g->moments = 2 * g->master;
        g->grads = 4 * (g->p_dense + g->p_expert);
        g->in_flight = p->pp - s < micro ? p->pp - s : micro;
        g->acts_full = g->in_flight * (T * (full_tok + glob) / tp + per_model);
        g->acts_recompute = g->in_flight * (T * (ckpt_tok + glob) / tp + per_model) + T * max_layer / tp;
        g->acts = p->recompute ? g->acts_recompute : g->acts_full;
        // model/model.c n_scratch: six [T, C] buffers plus the largest sub-block's scratch
        double F = c->intermediate_size, S = T * c->n_experts_per_tok, A = model_attn_width(c);
        double moe = S * (2 * C + 3 * F) * es + T * c->n_experts * es + S * 4 + 8 * 256;
        double lin = T * A * 13 * es + 16 * 256;
        double soft = T * (3 * A + 3 * KVD) * es + 8 * 256;
        double sub = moe > lin ? moe : lin;
        if (soft > sub) sub = soft;
        g->scratch = (6 * (T * C * es + 256) + sub) / tp;
        g->train_total = g->weights + g->master + g->moments + g->grads + g->acts + g->scratch + reserve;
        if (g->train_total > mem) p->fits = 0;
        if (g->train_total > p->stage[p->heaviest].train_total) p->heaviest = s;
        if (g->acts_full > p->acts_full_peak) p->acts_full_peak = g->acts_full;
        if (g->acts_recompute > p->acts_recompute_peak) p->acts_recompute_peak = g->acts_recompute;
        // rollout on the same GPUs: the training state and one micro-batch arena stay allocated
        double arena = p->recompute ? g->acts_recompute / g->in_flight : g->acts_full / g->in_flight;
        g->resident = g->weights + g->master + g->moments + g->grads + arena + g->scratch + reserve;
        g->cache_room = mem - g->resident;
        double ctx[3] = {in->prompt_len + 40960, in->prompt_len + 81920, in->max_len};
        double *ps[3] = {&g->per_seq_40k, &g->per_seq_80k, &g->per_seq_max};
        for (int i = 0; i < 3; i++) {
            // infer_create: K and V of the softmax layers for max_ctx, fp32 lightning states (one per lightning
            // layer, and the prefill's staged final and initial states), a logits row
            *ps[i] = (g->n_soft * 2 * KVD * es * ctx[i] + (g->n_lin + (g->n_lin ? 2 : 0)) * HDD * 4 +
                      (g->has_head ? V * 4 : 0)) / tp;
            double k = g->cache_room > 0 ? floor(g->cache_room / *ps[i]) : 0;
            if (k < conc[i]) conc[i] = k;
        }
    }
    p->conc_40k = conc[0], p->conc_80k = conc[1], p->conc_max = conc[2];
    p->conc_40k_all = conc[0] * p->dp, p->conc_80k_all = conc[1] * p->dp, p->conc_max_all = conc[2] * p->dp;
    if (p->conc_max < 1) p->rollout_fits = 0;
}

static double bw(const plan_t *p, int over_ib) { return (over_ib ? p->in.gpu->ib_gbs : p->in.gpu->nvlink_gbs) * 1e9; }

static void plan_time(plan_t *p) {
    const model_config_t *c = &p->cfg;
    const plan_input_t *in = &p->in;
    const cost_flops_t *f = &p->flops;
    const double gpus = in->gpus, peak = in->gpu->compute->peak_tflops * 1e12, es = 2, C = c->hidden_size;
    const double n = in->prompt_len + in->gen_len, rc = p->recompute, K = c->n_experts_per_tok;
    const double tokens = in->batch * n, gpn = in->gpu->gpus_per_node;
    const double stage_layers = (double)c->n_layers / p->pp;
    const double KVD = (double)c->n_kv_heads * c->head_dim, HDD = (double)c->n_heads * c->head_dim * c->head_dim;
    // ---- communication, bytes each GPU sends ----
    p->tp_over_ib = p->tp > gpn;
    p->dp_over_ib = p->dp > 1 && p->tp * p->dp > gpn;
    p->ep_over_ib = p->ep > 1 && p->tp * p->ep > gpn;
    const plan_stage_t *h = &p->stage[p->heaviest];
    double rs_d = (p->dp - 1.0) / p->dp * h->p_dense, rs_e = (p->edp - 1.0) / p->edp * h->p_expert;
    if (in->zero) {
        p->grad_rs_bytes = in->updates * 4 * (rs_d + rs_e);   // reduce-scatter fp32 gradients
        p->param_ag_bytes = in->updates * 2 * (rs_d + rs_e);  // all-gather the updated bf16 parameters
    } else {
        p->grad_rs_bytes = in->updates * 2 * 4 * (rs_d + rs_e);  // all-reduce = reduce-scatter + all-gather
        p->param_ag_bytes = 0;
    }
    // MoE: each GPU's tokens (T / tp with sequence parallelism), K copies each, to the other ep - 1
    // ranks and back (dispatch + combine); backward sends the same again; recompute a third time
    double a2a_layer = tokens / (p->dp * p->tp) * K * C * es * (p->ep - 1.0) / p->ep * 2;
    p->a2a_train_bytes = a2a_layer * stage_layers * (2 + rc);
    p->a2a_roll_bytes = a2a_layer * stage_layers;
    // tensor + sequence parallelism: per layer and pass, all-gather and reduce-scatter of [T, C] around
    // attention and around the MoE block; the TP group's tokens are tokens / dp
    double tp_layer = 4 * (p->tp - 1.0) / p->tp * tokens / p->dp * C * es;
    p->tp_bytes = tp_layer * stage_layers * (2 + rc + 1);  // training passes + the rollout forward
    p->pp_bytes = p->pp > 1 ? tokens / p->dp * C * es * 2 / p->tp : 0;
    p->grad_rs_s = p->grad_rs_bytes / bw(p, p->dp_over_ib);
    p->param_ag_s = p->param_ag_bytes / bw(p, p->dp_over_ib);
    p->a2a_train_s = p->a2a_train_bytes / bw(p, p->ep_over_ib);
    p->a2a_roll_s = p->a2a_roll_bytes / bw(p, p->ep_over_ib);
    p->tp_s = p->tp_bytes / bw(p, p->tp_over_ib);
    p->pp_s = p->pp_bytes / bw(p, p->tp * p->dp >= gpn);
    p->t_comm = p->grad_rs_s + p->param_ag_s + p->a2a_train_s + p->a2a_roll_s + p->tp_s + p->pp_s;

    // ---- training: matmuls at the assumed MFU, the lightning core at its measured rate ----
    double seq = cost_forward_sequence(f, in->prompt_len, in->gen_len);
    double core = n * f->attn_core;  // lightning core FLOPs of one sample's forward
    p->train_flops_step = in->batch * (COST_TRAIN_FACTOR + rc) * seq;
    p->t_train_matmul = in->batch * (COST_TRAIN_FACTOR + rc) * (seq - core) / (gpus * peak * in->mfu);
    double r_fwd, r_fb;
    lightning_rate((double)c->n_heads / p->tp, &r_fwd, &r_fb);
    p->t_train_lightning = tokens * f->n_linear * c->n_heads * (r_fb + rc * r_fwd) / gpus;
    double micro = ceil_div(in->batch / in->updates / p->dp * n, in->micro_tokens);
    p->bubble = p->pp > 1 ? (p->pp - 1.0) / (micro + p->pp - 1.0) : 0;
    p->t_train = (p->t_train_matmul + p->t_train_lightning) / (1 - p->bubble);

    // ---- rollout: prefill at the assumed MFU; decoding bounded by bytes (measured copy rate) or FLOPs ----
    p->roll_flops_step = in->batch * seq;
    p->t_prefill = in->batch * cost_forward_sequence(f, in->prompt_len, 0) / (gpus * peak * in->mfu);
    double active = in->batch / p->dp < p->conc_max ? in->batch / p->dp : p->conc_max;  // per replica
    if (active < 1) active = 1;
    p->waves = ceil_div(in->batch / p->dp, active);
    p->decode_steps = p->waves * in->gen_len;
    double ctx = in->prompt_len + in->gen_len / 2;  // mean context while decoding
    double bytes = 0;
    for (int s = 0; s < p->pp; s++) {  // the slowest stage sets the pipeline's pace
        const plan_stage_t *g = &p->stage[s];
        // with pp stages the replica's sequences go through in pp groups, each reading the stage's weights
        double b = p->pp * g->weights + active * (2 * g->n_lin * HDD * 4 + g->n_soft * 2 * KVD * es * ctx) / p->tp;
        if (b > bytes) bytes = b;
    }
    p->t_decode_mem = bytes / (in->gpu->copy_tbs * 1e12);
    p->t_decode_flop = active * p->dp * cost_forward_at(f, ctx) / (gpus * peak * in->mfu);
    p->t_decode = p->decode_steps * (p->t_decode_mem > p->t_decode_flop ? p->t_decode_mem : p->t_decode_flop);
    p->t_rollout = p->t_prefill + p->t_decode;
    p->t_step = p->t_rollout + p->t_train + p->t_comm;  // nothing overlapped: rollout, training, communication
}

// Fills the layout fields for tp, pp, ep, recompute; -1 + message when they cannot be laid out.
static int plan_layout(plan_t *p, int tp, int pp, int ep, int rc) {
    const model_config_t *c = &p->cfg;
    const plan_input_t *in = &p->in;
    if (tp < 1 || pp < 1) return fail("tp and pp must be at least 1");
    if (tp > in->gpu->gpus_per_node)
        return cispo_fail("--tp %d: tensor parallelism beyond one node (%d GPUs) is not planned", tp,
                          in->gpu->gpus_per_node);
    if (pp > c->n_layers) return cispo_fail("--pp %d: more pipeline stages than the %d layers", pp, c->n_layers);
    if (in->gpus % (tp * pp))
        return cispo_fail("--gpus %d is not a multiple of tp x pp = %d x %d", in->gpus, tp, pp);
    int dp = in->gpus / (tp * pp);
    if (ep == 0) {  // the largest that divides both the experts and the data-parallel degree
        for (ep = c->n_experts; ep > 1; ep--)
            if (c->n_experts % ep == 0 && dp % ep == 0) break;
    }
    if (c->n_experts % ep)
        return cispo_fail("--ep %d does not divide the %d experts of each MoE layer", ep, c->n_experts);
    if (dp % ep)
        return cispo_fail("--ep %d does not divide the data-parallel degree %d (gpus %d / tp %d / pp %d): the "
                          "gpus must be a multiple of tp x pp x ep",
                          ep, dp, in->gpus, tp, pp);
    p->tp = tp, p->pp = pp, p->dp = dp, p->ep = ep, p->edp = dp / ep, p->recompute = rc;
    plan_memory(p);
    plan_time(p);
    return 0;
}

int plan_make(const model_config_t *cfg, const plan_input_t *in, plan_t *p) {
    memset(p, 0, sizeof *p);
    p->cfg = *cfg;
    p->in = *in;
    if (!in->gpu) return fail("no GPU given");
    if (in->gpus < 1) return fail("--gpus must be at least 1");
    if (in->micro_tokens <= 0) p->in.micro_tokens = in->max_len;
    if (p->in.micro_tokens < in->max_len)
        return cispo_fail("--micro-tokens %.0f is below --max-len %.0f: a sample is never split across "
                          "micro-batches (no context parallelism)",
                          p->in.micro_tokens, in->max_len);
    if (in->prompt_len + in->gen_len > in->max_len)
        return cispo_fail("--prompt-len + --gen-len (%.0f) exceed --max-len %.0f", in->prompt_len + in->gen_len,
                          in->max_len);
    if (in->updates < 1 || in->batch < 1) return fail("--batch and --updates must be at least 1");
    cost_flops_minimax(cfg, &p->flops);
    for (int l = 0; l < cfg->n_layers; l++) {
        double d, e;
        plan_layer_params(cfg, l, &d, &e);
        p->n_dense += d, p->n_expert += e;
    }
    p->n_dense += (double)cfg->vocab_size * cfg->hidden_size * (cfg->tie_word_embeddings ? 1 : 2) + cfg->hidden_size;
    p->n_params = p->n_dense + p->n_expert;
    int rcs[2] = {in->recompute < 0 ? 0 : in->recompute, in->recompute < 0 ? 1 : in->recompute};
    if (in->tp && in->pp) {  // fully given: one layout (recompute chosen unless given)
        for (int i = 0; i < 2; i++) {
            if (plan_layout(p, in->tp, in->pp, in->ep, rcs[i])) return -1;
            if (p->fits && p->rollout_fits) break;
        }
        return 0;
    }
    // every tp x pp (powers of two, tp inside a node) with recompute off and on: the fitting layout with
    // the shortest predicted step; none fitting, the last tried (fits = 0)
    const char *why = NULL;
    char msg[512] = "";
    int best[3] = {0, 0, 0};
    double best_t = INFINITY;
    for (int k = 1; k <= in->gpus; k *= 2) {
        for (int tp = in->gpu->gpus_per_node; tp >= 1; tp /= 2) {
            if (k % tp || (in->tp && tp != in->tp)) continue;
            int pp = k / tp;
            if ((in->pp && pp != in->pp) || pp > cfg->n_layers || in->gpus % k) continue;
            for (int i = 0; i < 2; i++) {
                if (plan_layout(p, tp, pp, in->ep, rcs[i])) {
                    snprintf(msg, sizeof msg, "%s", cispo_last_error());
                    why = msg;
                    break;
                }
                if (p->fits && p->rollout_fits && p->t_step < best_t) {
                    best_t = p->t_step;
                    best[0] = tp, best[1] = pp, best[2] = rcs[i];
                }
            }
        }
    }
    if (best[0]) return plan_layout(p, best[0], best[1], in->ep, best[2]);
    if (p->tp == 0) return cispo_fail("no layout of %d GPUs: %s", in->gpus, why ? why : "nothing divides them");
    return 0;  // the last candidate tried, fits = 0
}
