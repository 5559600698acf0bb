// trainer/cmd_cost.c — `cispo cost`: FLOPs per token of a model (forward and training, with
// attention's context term), the FLOPs of a generation, and an RL run's GPU-hours, days and dollars
// (trainer/cost.h); the run's time from `cispo plan`'s step time (trainer/plan.h) when the GPU is one the
// planner knows, from MFU assumptions otherwise. Optionally compares with DeepSeek-R1 at several lengths.
//   cispo cost --model minimax-m1 --gpus 512 --gpu H800 --gen-len 40000 --compare deepseek-r1
// defines: cmd_cost
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/common.h"
#include "model/config.h"
#include "trainer/commands.h"
#include "trainer/cost.h"
#include "trainer/keyconf.h"
#include "trainer/plan.h"

typedef struct {
    char model[4096], compare[32], gpu[32];
    cost_run_t run;
    double days;
} cost_opts_t;

#define O(f) offsetof(cost_opts_t, f)
static const keyconf_key_t cost_keys[] = {
    {"model", KEY_STRING, O(model), 0, 0, NULL, "",
     "a preset name (tiny, bench-1b, minimax-m1: configs/models/NAME.yaml), a .yaml preset, a config.json, an HF "
     "model directory, or deepseek-r1 (built in)", 4096},
    {"prompt-len", KEY_DOUBLE, O(run.prompt_len), 0, 1e9, NULL, "0", "mean prompt tokens", 0},
    {"gen-len", KEY_DOUBLE, O(run.gen_len), 1, 1e9, NULL, "1", "mean generated tokens", 0},
    {"gpus", KEY_INT, O(run.n_gpus), 1, 1e7, NULL, "1", "GPUs of the run", 0},
    {"gpu", KEY_STRING, O(gpu), 0, 0, NULL, "", "GPU type, for its peak dense BF16 rate (see the list below)", 32},
    {"mfu-rollout", KEY_DOUBLE, O(run.mfu_rollout), 1e-4, 1, NULL, "0.1", "fraction of peak while generating (an assumption)", 0},
    {"mfu-train", KEY_DOUBLE, O(run.mfu_train), 1e-4, 1, NULL, "0.1", "fraction of peak while training (an assumption)", 0},
    {"price", KEY_DOUBLE, O(run.price_per_gpu_hour), 0, 1e6, NULL, "0", "dollars per GPU-hour", 0},
    {"prompts", KEY_DOUBLE, O(run.prompts_per_step), 1, 1e9, NULL, "1", "prompts per step", 0},
    {"samples", KEY_DOUBLE, O(run.samples_per_prompt), 1, 1e6, NULL, "1", "samples per prompt", 0},
    {"steps", KEY_DOUBLE, O(run.steps), 0, 1e9, NULL, "0", "RL steps", 0},
    {"days", KEY_DOUBLE, O(days), 0, 1e6, NULL, "0", "also price the GPUs held for D days (a fixed reservation; 0: no)", 0},
    {"compare", KEY_STRING, O(compare), 0, 0, NULL, "", "deepseek-r1: FLOPs ratio to DeepSeek-R1 by generation length", 32},
};
#undef O

static const keyconf_cli_t cost_cli = {
    "cispo cost",
    "cispo cost --model MODEL [options]",
    "  FLOPs per token of a model (forward and training), of a generation, and an RL run's GPU-hours, days\n"
    "  and dollars. FLOPs count 2 per multiply-add over the matmuls; training = 3 x forward; MFU values are\n"
    "  assumptions.",
    cost_keys, sizeof cost_keys / sizeof cost_keys[0], 0};

// The defaults come from cost_run_default() (trainer/cost.c), not the table.
static void cost_opts_default(cost_opts_t *o) {
    keyconf_defaults(o, cost_keys, cost_cli.n_keys);
    o->run = cost_run_default();
    snprintf(o->gpu, sizeof o->gpu, "%s", o->run.gpu->name);
}

// 1.23 G / 4.56 T / ... with a fixed width.
static const char *si(double x, char *buf) {
    static const char *units[] = {"", "K", "M", "G", "T", "P", "E", "Z"};
    int u = 0;
    while (x >= 1000 && u < 7) x /= 1000, u++;
    sprintf(buf, "%7.2f %s", x, units[u]);
    return buf;
}

static void print_breakdown(const char *name, const cost_flops_t *f, int is_mla) {
    char a[32];
    printf("%s: %d layers", name, f->n_layers);
    if (!is_mla) printf(" (%d lightning, %d softmax)", f->n_linear, f->n_softmax);
    else printf(" (MLA attention in every layer)");
    printf("\n\nFLOPs per token, forward (2 per multiply-add, matmuls):\n");
    printf("  %-28s %12s  %s\n", "component", "FLOP", "share at t=0");
    printf("  %-28s %12s  %5.1f%%\n", "attention projections", si(f->attn_proj, a), 100 * f->attn_proj / f->base);
    if (!is_mla) printf("  %-28s %12s  %5.1f%%\n", "lightning state (4*H*D^2)", si(f->attn_core, a), 100 * f->attn_core / f->base);
    printf("  %-28s %12s  %5.1f%%\n", is_mla ? "dense FFN + MoE" : "MoE (router + K experts)", si(f->mlp, a), 100 * f->mlp / f->base);
    printf("  %-28s %12s  %5.1f%%\n", "LM head", si(f->lm_head, a), 100 * f->lm_head / f->base);
    printf("  %-28s %12s\n", "total at context 0", si(f->base, a));
    printf("  %-28s %12.4g  (%s)\n", "+ per token of context t", f->per_ctx,
           is_mla ? "2*H*(d_qk + d_v) per layer" : "4*A per softmax layer");
}

static void print_contexts(const cost_flops_t *f, double gen_len) {
    double ts[] = {1024, 4096, 16384, 32768, 65536, 100000, 0};
    int n = 6;
    if (gen_len > 0) ts[n++] = gen_len;
    char a[32], b[32];
    printf("\nFLOPs of one token at context t:\n");
    printf("  %10s %12s %14s  %s\n", "t", "forward", "training (3x)", "context share");
    for (int i = 0; i < n; i++) {
        double fw = cost_forward_at(f, ts[i]);
        printf("  %10.0f %12s %14s  %5.1f%%%s\n", ts[i], si(fw, a), si(COST_TRAIN_FACTOR * fw, b),
               100 * f->per_ctx * ts[i] / fw, i == 6 ? "   <- end of a mean sample (prompt + generated)" : "");
    }
}

static void print_run(const cost_flops_t *f, const cost_run_t *r) {
    cost_estimate_t e;
    cost_estimate_run(f, r, &e);
    char a[32], b[32], c[32];
    double seq = cost_forward_sequence(f, r->prompt_len, r->gen_len);
    printf("\nOne sample (%.0f prompt + %.0f generated tokens): forward %sFLOP (%sFLOP per token on average), "
           "training %sFLOP\n",
           r->prompt_len, r->gen_len, si(seq, a), si(seq / (r->prompt_len + r->gen_len), b), si(COST_TRAIN_FACTOR * seq, c));
    printf("\nRL run: %d x %s (%.1f TFLOP/s dense BF16 each), MFU %.0f%% rollout / %.0f%% train, $%.2f per GPU-hour\n",
           r->n_gpus, r->gpu->name, r->gpu->peak_tflops, 100 * r->mfu_rollout, 100 * r->mfu_train, r->price_per_gpu_hour);
    printf("  %.0f steps x %.0f prompts x %.0f samples\n", r->steps, r->prompts_per_step, r->samples_per_prompt);
    printf("  %-22s %14s %14s\n", "", "rollout", "train");
    printf("  %-22s %14s %14s\n", "FLOP per step", si(e.rollout_flops, a), si(e.train_flops, b));
    printf("  %-22s %14.4g %14.4g\n", "GPU-hours", e.gpu_hours_rollout, e.gpu_hours_train);
    printf("  %-22s %14.4g\n", "GPU-hours total", e.gpu_hours);
    printf("  %-22s %14.4g\n", "wall days", e.wall_days);
    printf("  %-22s %14.2f\n", "dollars", e.dollars);
}

// The run at the planner's step time (trainer/plan.h): the same GPUs, batch and lengths.
static void print_planned_run(const model_config_t *cfg, const cost_run_t *r) {
    const plan_gpu_t *g = plan_gpu_find(r->gpu->name);
    if (!g) {
        printf("\n(no step-time plan for %s: `cispo plan` knows H800, H100, H200; the MFU figures above stand)\n",
               r->gpu->name);
        return;
    }
    plan_input_t in = plan_input_default();
    in.gpus = r->n_gpus, in.gpu = g, in.batch = r->prompts_per_step * r->samples_per_prompt;
    in.prompt_len = r->prompt_len, in.gen_len = r->gen_len;
    if (in.max_len < r->prompt_len + r->gen_len) in.max_len = r->prompt_len + r->gen_len;
    plan_t *p = cispo_malloc(sizeof *p);
    if (plan_make(cfg, &in, p)) {
        printf("\n(no step-time plan: %s)\n", cispo_last_error());
    } else if (!p->fits || !p->rollout_fits) {
        printf("\n(no planned layout of %d x %s fits this model: see `cispo plan`; the MFU figures above stand)\n",
               r->n_gpus, g->name);
    } else {
        double hours = r->steps * p->t_step * r->n_gpus / 3600;
        printf("\nRL run at `cispo plan`'s step time (planned layout tp %d x pp %d x dp %d, ep %d; max_len %.0f):\n",
               p->tp, p->pp, p->dp, p->ep, in.max_len);
        printf("  step %.1f s = rollout %.1f + training %.1f + communication %.1f (not overlapped)\n", p->t_step,
               p->t_rollout, p->t_train, p->t_comm);
        printf("  %-22s %14.4g\n", "GPU-hours total", hours);
        printf("  %-22s %14.4g\n", "wall days", hours / r->n_gpus / 24);
        printf("  %-22s %14.2f\n", "dollars", hours * r->price_per_gpu_hour);
    }
    free(p);
}

static void print_compare(const char *name, const cost_flops_t *f, const cost_flops_t *ref, double prompt_len) {
    double ls[] = {8192, 16384, 32768, 65536, 100000, 131072};
    char a[32], b[32];
    printf("\n%s vs DeepSeek-R1 (%s per token at t = 0, + %.4g per token of context):\n", name, si(ref->base, a),
           ref->per_ctx);
    printf("  %10s %14s %14s %8s %14s %14s %8s\n", "gen length", "token at L", "R1 token at L", "ratio", "whole gen",
           "R1 whole gen", "ratio");
    for (size_t i = 0; i < sizeof ls / sizeof ls[0]; i++) {
        double t = prompt_len + ls[i];
        double x = cost_forward_at(f, t), y = cost_forward_at(ref, t);
        double X = cost_forward_sequence(f, prompt_len, ls[i]), Y = cost_forward_sequence(ref, prompt_len, ls[i]);
        char c[32], d[32];
        printf("  %10.0f %14s %14s %7.1f%% %14s %14s %7.1f%%\n", ls[i], si(x, a), si(y, b), 100 * x / y, si(X, c),
               si(Y, d), 100 * X / Y);
    }
    // where the per-token ratio crosses 25% (it falls with L: lightning is flat in t, MLA grows)
    double lo = 1, hi = 1e7;
    for (int i = 0; i < 200; i++) {
        double mid = 0.5 * (lo + hi);
        if (cost_forward_at(f, prompt_len + mid) / cost_forward_at(ref, prompt_len + mid) > 0.25) lo = mid;
        else hi = mid;
    }
    double tok = cost_forward_at(f, prompt_len + 1e5) / cost_forward_at(ref, prompt_len + 1e5);
    double gen = cost_forward_sequence(f, prompt_len, 1e5) / cost_forward_sequence(ref, prompt_len, 1e5);
    printf("  token at L: FLOPs of the one token generated at context L (per-token); whole gen: FLOPs of all L\n"
           "  tokens, which equals the token at about L/2 (the mean context). At 100K: %.1f%% per-token, %.1f%% whole\n"
           "  generation. MiniMax-M1's report (\"about 25%% at 100K\", read off its figure; no formula given)\n"
           "  matches the per-token reading (25%% is crossed at L = %.0fK here); the whole-generation sum is\n"
           "  the per-token ratio at half the length, so it stays higher.\n",
           100 * tok, 100 * gen, lo < 1e7 - 1 ? lo / 1000 : 0);
}

static int cost_main(cost_opts_t *o) {
    const char *model = o->model[0] ? o->model : NULL, *compare = o->compare[0] ? o->compare : NULL;
    cost_run_t run = o->run;
    double days = o->days;
    run.gpu = cost_gpu_find(o->gpu);
    if (!run.gpu) {
        fprintf(stderr, "cispo cost: --gpu %s: unknown GPU; known:", o->gpu);
        for (const cost_gpu_t *g = cost_gpus; g->name; g++) fprintf(stderr, " %s", g->name);
        fprintf(stderr, "\n");
        return 2;
    }
    if (!model) {
        fprintf(stderr, "cispo cost: --model is required (`cispo cost --help`)\n");
        return 2;
    }
    if (compare && strcmp(compare, "deepseek-r1")) {
        fprintf(stderr, "cispo cost: --compare %s: only deepseek-r1 is built in\n", compare);
        return 2;
    }
    cost_flops_t f, r1;
    model_config_t cfg;
    cost_flops_mla(&COST_DEEPSEEK_R1, &r1);
    char shown[4096];
    int is_mla = !strcmp(model, "deepseek-r1");
    if (is_mla) {
        f = r1;
        snprintf(shown, sizeof shown, "deepseek-r1 (built in: MLA + MoE, 37B active)");
    } else {
        if (plan_load_model(model, &cfg, shown, sizeof shown)) {
            fprintf(stderr, "cispo cost: %s\n", cispo_last_error());
            return 1;
        }
        cost_flops_minimax(&cfg, &f);
    }
    print_breakdown(shown, &f, is_mla);
    print_contexts(&f, run.prompt_len + run.gen_len);
    print_run(&f, &run);
    if (!is_mla) print_planned_run(&cfg, &run);
    if (days > 0) {
        double hours = run.n_gpus * days * 24;
        cost_estimate_t e;
        cost_estimate_run(&f, &run, &e);
        printf("\nReservation: %d x %s for %g days = %.0f GPU-hours at $%.2f = $%.0f (the run above fits %.2f times)\n",
               run.n_gpus, run.gpu->name, days, hours, run.price_per_gpu_hour,
               cost_dollars(run.n_gpus, days, run.price_per_gpu_hour), e.gpu_hours > 0 ? hours / e.gpu_hours : 0);
    }
    if (compare) print_compare(is_mla ? "deepseek-r1" : model, &f, &r1, 0);
    return 0;
}

int cmd_cost(int argc, char **argv) {
    cost_opts_t *o = cispo_calloc(1, sizeof *o);
    cost_opts_default(o);
    int prc = keyconf_parse_cli(&cost_cli, o, argc, argv, NULL, NULL, NULL);
    if (prc == 1) {
        printf("\nknown GPUs (--gpu):");
        for (const cost_gpu_t *g = cost_gpus; g->name; g++) printf(" %s", g->name);
        printf("\n");
    }
    if (prc) {
        if (prc < 0) fprintf(stderr, "cispo cost: %s\n", cispo_last_error());
        free(o);
        return prc < 0 ? 2 : 0;
    }
    int rc = cost_main(o);
    free(o);
    return rc;
}
