// bench/precision_bench.c — M1's train/rollout precision finding on our engine: a short SFT of a model
// (default bench-1b on the demo's arithmetic task, on the GPU), then rollouts of the training prompts sampled
// twice, once with the fp32 LM head and once with its logits rounded to bf16 (the output of a bf16 head:
// backend_tuning_t.lmhead_bf16), each compared with the training forward (fp32 head) on the same tokens:
// Pearson correlation of the token probabilities, mean and max |log-prob difference|; then a third time with
// the fp32 head and routing replay (the training forward uses the experts the rollout chose: docs/rl.md
// "Routing replay"), which leaves only the arithmetic differences of decode and the training forward. With --pairs FILE
// it also writes "head rollout_p train_p" lines (every token, up to --max-pairs per head) for the scatter plot
// of bench/precision_plot.py.
//   precision_bench [--config configs/demo.yaml] [--samples 512] [--pairs FILE] [key=value ...]
// key=value are run keys over the config (defaults here: model=configs/models/bench-1b.yaml device=cuda
// sft_steps=300 max_new_tokens=256 temperature=1).
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/common.h"
#include "kernels/ops.h"
#include "model/seq_logprob.h"
#include "rl/rollout.h"
#include "trainer/train.h"

typedef struct {
    double n, sx, sy, sxx, syy, sxy, sad, mad;
} corr_t;

static void corr_add(corr_t *c, double lx, double ly) {
    double x = exp(lx), y = exp(ly), d = fabs(lx - ly);
    c->n++, c->sx += x, c->sy += y, c->sxx += x * x, c->syy += y * y, c->sxy += x * y, c->sad += d;
    if (d > c->mad) c->mad = d;
}

static double corr_pearson(const corr_t *c) {
    double vx = c->sxx - c->sx * c->sx / c->n, vy = c->syy - c->sy * c->sy / c->n, cv = c->sxy - c->sx * c->sy / c->n;
    return vx > 0 && vy > 0 ? cv / sqrt(vx * vy) : 1.0;
}

int main(int argc, char **argv) {
    const char *config = "configs/demo.yaml", *pairs = NULL;
    int samples = 512;
    long max_pairs = 200000;
    char *over[64];
    int n_over = 0;
    over[n_over++] = "model=configs/models/bench-1b.yaml";
    over[n_over++] = "device=cuda";
    over[n_over++] = "sft_steps=300";
    over[n_over++] = "max_new_tokens=256";
    over[n_over++] = "temperature=1";
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--config") && i + 1 < argc) config = argv[++i];
        else if (!strcmp(argv[i], "--samples") && i + 1 < argc) samples = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--pairs") && i + 1 < argc) pairs = argv[++i];
        else if (!strcmp(argv[i], "--max-pairs") && i + 1 < argc) max_pairs = atol(argv[++i]);
        else if (strchr(argv[i], '=') && n_over < 64) over[n_over++] = argv[i];
        else return fprintf(stderr, "precision_bench: unknown option %s\n", argv[i]), 2;
    }
    run_config_t cfg;
    if (run_config_load(&cfg, config, over, n_over)) return fprintf(stderr, "precision_bench: %s\n", cispo_last_error()), 1;
    train_t t;
    if (train_open(&t, &cfg)) return fprintf(stderr, "precision_bench: %s\n", cispo_last_error()), 1;
    printf("model %s on %s (%s activations), %d SFT steps of %d\n", cfg.model, backend_name(t.be.kind),
           dtype_name(t.be.act_dtype), cfg.sft_steps, cfg.sft_batch);
    double t0 = cispo_now();
    metrics_t mt;
    for (int s = 0; s < cfg.sft_steps; s++) {
        if (train_sft_step(&t, &mt)) return fprintf(stderr, "precision_bench: %s\n", cispo_last_error()), 1;
        if ((s + 1) % 50 == 0 || s + 1 == cfg.sft_steps)
            printf("sft %d: loss %.4f (%.0f s)\n", s + 1, metrics_get(&mt, "loss", 0), cispo_now() - t0), fflush(stdout);
    }
    if (samples > t.train.n) samples = t.train.n;
    const int32_t **pp = cispo_malloc(sizeof(*pp) * (size_t)samples);
    int *pl = cispo_malloc(sizeof(int) * (size_t)samples);
    uint64_t *seeds = cispo_malloc(sizeof(uint64_t) * (size_t)samples);
    for (int i = 0; i < samples; i++)
        pp[i] = t.train.ex[i].ids, pl[i] = t.train.ex[i].n_ids, seeds[i] = sampler_rng_seed(cfg.seed, (uint64_t)i);
    rollout_config_t rc = {.max_new_tokens = cfg.max_new_tokens, .eos_id = t.eos_id,
                           .sampler = {.temperature = cfg.temperature, .top_p = 1.0}};
    FILE *pf = pairs ? fopen(pairs, "w") : NULL;
    if (pairs && !pf) return fprintf(stderr, "precision_bench: cannot write %s\n", pairs), 1;
    float *lp = cispo_malloc(sizeof(float) * (size_t)t.m->max_tokens);
    int32_t *seq = cispo_malloc(sizeof(int32_t) * (size_t)t.m->max_tokens);
    rollout_sample_t *out = cispo_malloc(sizeof(*out) * (size_t)samples);
    const int L = t.m->cfg.n_layers, K = t.m->cfg.n_experts_per_tok;
    int32_t *replay = cispo_malloc(sizeof(int32_t) * (size_t)L * (size_t)t.m->max_tokens * (size_t)K);
    static const char *const label[3] = {"fp32", "bf16", "fp32+replay"};
    for (int pass = 0; pass < 3; pass++) {
        const int head = pass == 1, replaying = pass == 2;
        t.be.tune.lmhead_bf16 = head;
        rc.record_routes = replaying;
        rollout_stats_t st;
        if (rollout_generate(t.engine, &rc, pp, pl, seeds, samples, out, &st))
            return fprintf(stderr, "precision_bench: %s\n", cispo_last_error()), 1;
        t.be.tune.lmhead_bf16 = 0;  // the training forward: fp32 head
        corr_t c = {0};
        long written = 0;
        for (int i = 0; i < samples; i++) {
            int n = pl[i] + out[i].n_tokens;
            if (n > t.m->max_tokens) return fprintf(stderr, "precision_bench: sample %d longer than max_tokens\n", i), 1;
            memcpy(seq, pp[i], sizeof(int32_t) * (size_t)pl[i]);
            memcpy(seq + pl[i], out[i].tokens, sizeof(int32_t) * (size_t)out[i].n_tokens);
            if (replaying && out[i].n_tokens > 0) {  // the fed tokens' routes; the last token (never fed) the one before's
                for (int l = 0; l < L; l++)
                    for (int p = 0; p < n; p++) {
                        const int src = p < out[i].routes_n ? p : out[i].routes_n - 1;
                        memcpy(replay + ((size_t)l * n + p) * K, out[i].routes + ((size_t)l * out[i].routes_stride + src) * K,
                               sizeof(int32_t) * (size_t)K);
                    }
                t.m->route_replay = replay;
            }
            int bad = out[i].n_tokens > 0 && model_seq_logprobs(t.m, seq, n, lp);
            t.m->route_replay = NULL;
            if (bad) return fprintf(stderr, "precision_bench: %s\n", cispo_last_error()), 1;
            for (int j = 0; j < out[i].n_tokens; j++) {
                double r = out[i].logp[j], tr = lp[pl[i] - 1 + j];
                corr_add(&c, r, tr);
                if (pf && written < max_pairs) fprintf(pf, "%s %.7g %.7g\n", label[pass], exp(r), exp(tr)), written++;
            }
            rollout_sample_free(&out[i]);
        }
        printf("rollout head %s vs training forward (fp32 head): %d samples, %.0f tokens, probability Pearson %.6f, "
               "|dlogp| mean %.3e max %.3e (decode %.0f tokens/s)\n",
               label[pass], samples, c.n, corr_pearson(&c), c.sad / c.n, c.mad, st.decode_tokens / st.decode_s);
        fflush(stdout);
    }
    if (pf) fclose(pf);
    free(out), free(seq), free(lp), free(pp), free(pl), free(seeds), free(replay);
    train_close(&t);
    return 0;
}
