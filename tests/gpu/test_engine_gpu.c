// tests/gpu/test_engine_gpu.c — the generation engine on the CUDA backend (bf16 activations, paged KV
// cache, sampling on the device) against the CPU engine and the GPU training forward:
//  1. greedy generation equals the CPU engine's wherever the CPU's top-two logit margin exceeds
//     GREEDY_MARGIN (the bf16 bound below): the first step where the two differ must have a margin
//     within the bound (after it the contexts differ and nothing more is compared). On every HF parity
//     fixture's configuration (heads widened to 64 with random weights: tests/gpu/widen.h) and on the
//     tiny preset widened (both flavours, postnorm false, partial rotary, a window);
//  2. decode log-probs of >= 100K sampled tokens against the GPU training forward of the same tokens:
//     max and mean |diff|, Pearson correlation of the probabilities >= 0.999; and both against the CPU
//     fp32 forward of the same tokens: decode is as exact as the training forward (mean and max |diff|
//     to fp32 within DECODE_VS_FWD times the forward's, plus a floor);
//  3. continuous batching with mixed lengths, chunked prefill and a KV pool too small for all
//     sequences at once (sequences wait, finish out of order, every block comes back): the log-probs
//     against the GPU training forward (max |diff| within twice part 2's), and the tokens against each
//     sequence generated alone with its seed: bf16 sums differ with the batch shape (cuBLAS picks its
//     kernels by size) and with prefill chunking, so the two runs may part where the draw falls near a
//     boundary of the sampling distribution. Rule: tokens are equal up to the first difference, and there
//     both runs' tokens are picked by the fp32 CPU distribution of that context for some draw within
//     TIE_EPS of the step's draw u (a near-tie of the sampler; a mixed-up batch parts at a random u), or
//     within twice the largest probability error the engine was measured to make on this model in part 2
//     (|p_decode - p_fp32| over >= 100K tokens): a parting must be explainable by rounding that large (the
//     distribution function at a boundary moves by at most the total variation, half the summed |dp| of
//     all tokens, which on these peaked distributions is a few of the largest single errors);
//  4. a sequence longer than the pool fails with a message instead of waiting forever;
//  5. the decode step replayed as CUDA graphs (one per batch size) gives the same tokens and log-probs
//     bit for bit as the same steps run op by op;
//  6. the fused lightning decode step (backend_tuning_t.decode_fused) against the separate products: the same
//     tokens up to a near-tie, log-probs within part 2's bound;
//  7. the linear layers through the wide-k tiles (dense_skinny) likewise, and the expert products on a persistent
//     grid (gg_skinny_wide 2) against the default grid: the same bits;
//  8. the router in the post-attention norm (decode_route) against its separate product, and 9. the lightning
//     output's norm and gate in the decode kernel (decode_gate) against rmsnorm_gate_forward after it: as 6;
// 10. the routes sorted in the post-attention norm, the gated product gathering its rows (decode_sort) against
//     moe_dispatch: the same bits.
// Run from the repo root on a machine with a GPU: build*/tests/test_engine_gpu (ctest -L gpu).
#include <dirent.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "base/common.h"
#include "kernels/ops.h"
#include "model/hf.h"
#include "model/infer.h"
#include "model/model.h"
#include "model/seq_logprob.h"
#include "rl/rollout.h"
#include "tests/gpu/widen.h"
#include "tests/testutil.h"

static backend_t gpu;

// A bf16 model's logits differ from the fp32 reference's by up to about 0.08 per token on these
// fixtures (test_model_gpu's TOL_LOGP_MAX): two logits closer than twice that may swap order.
#define GREEDY_MARGIN 0.16
#define PEARSON_MIN 0.999    // correlation of the probabilities exp(logp), decode vs the GPU training forward
#define DECODE_VS_FWD 1.5    // decode's |dlogp| to fp32 within this factor of the training forward's ...
#define DECODE_FLOOR 1e-3    // ... plus this (mean) and 10x this (max)
#define TIE_EPS 0.02         // where batched and alone part: both tokens drawn within this of the step's u

static model_t *gpu_model(const model_config_t *cfg, const float *params, int max_tokens) {
    model_t *m = model_create_on(&gpu, cfg, NULL, max_tokens);
    backend_upload(&gpu, m->params, params, m->table.n_floats * sizeof(float));
    model_sync_weights(m);
    return m;
}

static void set_unfused(backend_tuning_t *t) { t->decode_fused = -1; }
static void set_dense(backend_tuning_t *t) { t->dense_skinny = 256; }
static void set_loop(backend_tuning_t *t) { t->gg_skinny_wide = 2; }
static void set_unrouted(backend_tuning_t *t) { t->decode_route = -1; }
static void set_gate(backend_tuning_t *t) { t->decode_gate = 1; }
static void set_sort(backend_tuning_t *t) { t->decode_sort = 1; }

// Rollouts of the same prompts and seeds with a tuning knob set (set) and with the defaults. exact: a kernel
// choice with the same sums, so the same tokens and log-probs bit for bit; else the runs may part at a near-tie
// and up to there the log-probs agree within bound.
static void knob_rollouts(model_t *m, const char *what, void (*set)(backend_tuning_t *), int exact, double bound,
                          const rollout_config_t *rc, const int32_t *const *pp, const int *pl, const uint64_t *seeds,
                          int n) {
    enum { MAXN = 32 };
    CISPO_ASSERT(n <= MAXN);
    rollout_sample_t kn[MAXN], df[MAXN];
    infer_t *ek = infer_create(m, 8, 260), *ed = infer_create(m, 8, 260);
    const backend_tuning_t keep = gpu.tune;
    set(&gpu.tune);
    int krc = rollout_generate(ek, rc, pp, pl, seeds, n, kn, NULL);
    gpu.tune = keep;
    int drc = rollout_generate(ed, rc, pp, pl, seeds, n, df, NULL);
    test_check(krc == 0 && drc == 0, "%s: rollouts with and without: %s", what, cispo_last_error());
    int same = 0, bits = 0;
    long common = 0;
    double maxd = 0;
    for (int i = 0; i < n && krc == 0 && drc == 0; i++) {
        int j = 0;
        for (; j < kn[i].n_tokens && j < df[i].n_tokens && kn[i].tokens[j] == df[i].tokens[j]; j++)
            maxd = fmax(maxd, fabs((double)kn[i].logp[j] - df[i].logp[j]));
        common += j;
        same += j == kn[i].n_tokens && j == df[i].n_tokens;
        bits += j == kn[i].n_tokens && j == df[i].n_tokens &&
                !memcmp(kn[i].logp, df[i].logp, sizeof(float) * (size_t)kn[i].n_tokens);
    }
    for (int i = 0; i < n && krc == 0; i++) rollout_sample_free(&kn[i]);
    for (int i = 0; i < n && drc == 0; i++) rollout_sample_free(&df[i]);
    printf("%s: %d of %d sequences equal to the defaults' (%d bit for bit), %ld tokens in common, max |dlogp| %.3g "
           "there\n", what, same, n, bits, common, maxd);
    if (exact) {
        test_check(bits == n, "%s: the same tokens and log-probs bit for bit (%d of %d sequences)", what, bits, n);
    } else {
        TEST_LE(maxd, bound, "%s: log-probs against the defaults': max |dlogp| %.3g over %ld tokens", what, maxd, common);
        test_check(common > 0, "%s: the rollouts share tokens (%ld)", what, common);
    }
    infer_free(ek), infer_free(ed);
}

// top1 - top2 of logits [V]
static double margin(const float *z, int V) {
    double a = -INFINITY, b = -INFINITY;
    for (int i = 0; i < V; i++)
        if (z[i] > a) b = a, a = z[i];
        else if (z[i] > b) b = z[i];
    return a - b;
}

// Greedy continuation of prompt [np] on the CPU engine and the GPU engine, compared under the margin rule.
static void greedy_compare(const char *dir, const model_config_t *cfg, float *params, const int32_t *prompt, int np) {
    const int V = cfg->vocab_size, NEW = 48;
    rollout_config_t rc = {.max_new_tokens = NEW, .eos_id = -1, .sampler = {.greedy = 1}};
    const int32_t *pp = prompt;
    uint64_t seed = 1;
    rollout_sample_t cpu_out, gpu_out;
    cpu_out.n_tokens = gpu_out.n_tokens = 0;
    // the CPU engine, and its logits along its own tokens (the margins)
    model_t *mc = model_create(cfg, params, np + NEW);
    infer_t *ec = infer_create(mc, 1, np + NEW + 1);
    test_check(rollout_generate(ec, &rc, &pp, &np, &seed, 1, &cpu_out, NULL) == 0, "cpu greedy: %s", cispo_last_error());
    double *marg = cispo_malloc(sizeof(double) * NEW);
    float *z = cispo_malloc(sizeof(float) * V);
    int slot = 0;
    infer_prefill(ec, &slot, &pp, &np, 1, z);
    for (int t = 0; t < cpu_out.n_tokens; t++) {
        marg[t] = margin(z, V);
        if (t + 1 < cpu_out.n_tokens) infer_decode(ec, &slot, &cpu_out.tokens[t], 1, z);
    }
    infer_free(ec);
    model_free(mc);
    model_t *mg = gpu_model(cfg, params, np + NEW);
    infer_t *eg = infer_create(mg, 1, np + NEW + 1);
    test_check(rollout_generate(eg, &rc, &pp, &np, &seed, 1, &gpu_out, NULL) == 0, "gpu greedy: %s", cispo_last_error());
    infer_free(eg);
    model_free(mg);
    int first = -1, above = 0;
    for (int t = 0; t < cpu_out.n_tokens && t < gpu_out.n_tokens; t++) {
        if (gpu_out.tokens[t] != cpu_out.tokens[t]) {
            first = t;
            break;
        }
        above += marg[t] > GREEDY_MARGIN;
    }
    printf("%-50s greedy: %d/%d tokens equal, %d of them above the margin%s\n", dir, first < 0 ? cpu_out.n_tokens : first,
           cpu_out.n_tokens, above, first < 0 ? "" : " (then a near-tie)");
    test_check(first < 0 || marg[first] <= GREEDY_MARGIN,
               "%s: GPU greedy == CPU greedy wherever the top-two margin exceeds %.2f (first difference at step %d, "
               "margin %.3g)",
               dir, GREEDY_MARGIN, first, first >= 0 ? marg[first] : 0.0);
    rollout_sample_free(&cpu_out), rollout_sample_free(&gpu_out);
    free(marg), free(z);
}

// An HF parity fixture: greedy.txt's prompt (line 1).
static int greedy_fixture(const char *dir, const model_config_t *cfg, float *params) {
    char path[1200];
    snprintf(path, sizeof path, "%s/greedy.txt", dir);
    char *g = cispo_read_file(path, NULL);
    if (!g) return 0;
    char *nl = strchr(g, '\n');
    if (nl) *nl = 0;
    int32_t *prompt;
    int np;
    const int ok = model_parse_tokens(g, path, cfg->vocab_size, 1, &prompt, &np) == 0;
    free(g);
    if (!test_check(ok, "%s parses", path)) return 0;
    greedy_compare(dir, cfg, params, prompt, np);
    free(prompt);
    return 1;
}

// A tiny-preset model with random weights (scaled up: peaked, varied distributions), two lightning and
// two softmax layers, head_dim 64 (a width real models have; the GPU kernels take 16, 32, 64 or 128).
static int tiny_config(model_config_t *cfg) {
    if (!test_check(model_config_load(cfg, "configs/models/tiny.yaml") == 0, "tiny: %s", cispo_last_error())) return -1;
    cfg->head_dim = 64;
    cfg->rotary_dim = 64;
    cfg->n_heads = 2;
    cfg->n_kv_heads = 1;
    cfg->n_layers = 4;
    for (int l = 0; l < 4; l++) cfg->layer_kind[l] = l % 2 ? LAYER_SOFTMAX : LAYER_LIGHTNING;
    return model_config_validate(cfg, "tiny");
}

// How far from the draw u = sample_uniform(seed, t) of generated token t a draw must move for the fp32 CPU
// distribution after prompt + toks[0..t) to pick each of tokens a and b (sampler_pick, the sampling op's
// rule): the larger of the two distances, searched on a grid of 1e-4 up to 0.1 (beyond: 1).
static double tie_distance(model_t *mc, const sampler_config_t *sc, const int32_t *prompt, int np, const int32_t *toks,
                           int t, uint64_t seed, int a, int b) {
    const int V = mc->cfg.vocab_size, n = np + t;
    int32_t *ctx = cispo_malloc(sizeof(int32_t) * (size_t)n);
    memcpy(ctx, prompt, sizeof(int32_t) * (size_t)np);
    memcpy(ctx + np, toks, sizeof(int32_t) * (size_t)t);
    float *z = cispo_malloc(sizeof(float) * V), *scratch = cispo_malloc(sizeof(float) * 2 * V);
    infer_t *e = infer_create(mc, 1, n + 2);
    const int32_t *cp = ctx;
    int slot = 0;
    CISPO_ASSERT(infer_prefill(e, &slot, &cp, &n, 1, z) == 0);
    infer_free(e);
    const double u = sample_uniform(seed, (uint64_t)t);
    double da = 1, db = 1;
    for (int k = 0; k <= 1000 && (da > 0.5 || db > 0.5); k++)
        for (int sgn = -1; sgn <= 1; sgn += 2) {
            const double v = u + sgn * 1e-4 * k;
            if (v < 0 || v >= 1) continue;
            float lp, pr;
            const int got = sampler_pick(z, V, sc, v, scratch, &lp, &pr);
            if (got == a && da > 0.5) da = 1e-4 * k;
            if (got == b && db > 0.5) db = 1e-4 * k;
        }
    free(ctx), free(z), free(scratch);
    return fmax(da, db);
}

static int stop_mod7(void *ctx, const int32_t *tokens, int n) {
    (void)ctx;
    return n >= 3 && tokens[n - 1] % 7 == 0;
}

int main(void) {
    setvbuf(stdout, NULL, _IOLBF, 0);  // lines reach the log even when a CUDA error aborts the run
    if (backend_available(BACKEND_CUDA) < 1 || backend_init(&gpu, BACKEND_CUDA, 0, DTYPE_BF16)) {
        test_check(0, "a CUDA device (this test runs on a GPU machine): %s", cispo_last_error());
        return test_finish("test_engine_gpu");
    }
    // 1. greedy on every HF fixture's configuration (widened to heads of 64 when narrower) and on the tiny
    //    preset widened (HF and original flavour, random weights scaled up)
    const char *root = "tests/fixtures/parity";
    DIR *d = opendir(root);
    if (!test_check(d != NULL, "open %s (run from the repo root)", root)) return test_finish("test_engine_gpu");
    struct dirent *de;
    int nfix = 0;
    while ((de = readdir(d))) {
        if (de->d_name[0] == '.') continue;
        char dir[1024];
        snprintf(dir, sizeof dir, "%s/%s", root, de->d_name);
        model_config_t fc;
        param_table_t ft;
        float *fp = NULL;
        if (hf_load_dir(dir, &fc, &ft, &fp)) continue;
        const int wide = test_widen_heads(&fc, &ft, &fp, 93);
        if (test_check(wide >= 0, "%s widened: %s", dir, cispo_last_error())) nfix += greedy_fixture(dir, &fc, fp);
        free(fp);
        param_table_free(&ft);
    }
    closedir(d);
    for (int v = 0; v < 4; v++) {
        model_config_t wc;
        if (model_config_load(&wc, "configs/models/tiny.yaml")) break;
        wc.flavour = v < 2 ? MODEL_FLAVOUR_HF : MODEL_FLAVOUR_ORIGINAL;
        wc.head_dim = v % 2 ? 128 : 64;
        wc.rotary_dim = v == 3 ? 64 : wc.head_dim;
        wc.postnorm = v != 2;
        wc.sliding_window = v == 3 ? 9 : 0;
        wc.n_heads = 2, wc.n_kv_heads = 1, wc.n_layers = 4;
        for (int l = 0; l < 4; l++) wc.layer_kind[l] = l % 2 ? LAYER_SOFTMAX : LAYER_LIGHTNING;
        char name[96];
        snprintf(name, sizeof name, "tiny %s D=%d%s", v < 2 ? "HF" : "original", wc.head_dim, v == 3 ? " window 9" : "");
        if (!test_check(model_config_validate(&wc, name) == 0, "%s: %s", name, cispo_last_error())) continue;
        param_table_t wt;
        param_table_build(&wt, &wc);
        float *wp = cispo_malloc(wt.n_floats * sizeof(float));
        param_init_hf(wp, &wt, &wc, 40 + (uint64_t)v);
        for (size_t i = 0; i < wt.n_floats; i++) wp[i] *= 3.0f;
        int32_t prompt[20];
        uint64_t ps = 60 + (uint64_t)v;
        for (int i = 0; i < 20; i++) prompt[i] = (int32_t)(test_rng_next(&ps) % (uint64_t)wc.vocab_size);
        greedy_compare(name, &wc, wp, prompt, 20);
        nfix++;
        free(wp);
        param_table_free(&wt);
    }
    test_check(nfix >= 4, "%d models compared greedily", nfix);

    model_config_t cfg;
    if (tiny_config(&cfg)) return test_finish("test_engine_gpu");
    param_table_t table;
    param_table_build(&table, &cfg);
    float *params = cispo_malloc(table.n_floats * sizeof(float));
    param_init_hf(params, &table, &cfg, 29);
    for (size_t i = 0; i < table.n_floats; i++) params[i] *= 3.0f;
    const int V = cfg.vocab_size;
    double p_noise = 0;  // part 2's largest probability error of decode against fp32 (part 3's other bound)
    double fwd_max = 0;  // part 2's largest |dlogp| of decode against the GPU training forward

    // 2. >= 100K decoded tokens against the GPU training forward
    {
        enum { NS = 64, PL = 32, NEW = 1600 };
        model_t *m = gpu_model(&cfg, params, PL + NEW);
        infer_t *e = infer_create(m, NS, PL + NEW + 1);
        infer_report(e, stdout);
        int32_t *pb = cispo_malloc(sizeof(int32_t) * NS * PL);
        const int32_t *pp[NS];
        int pl[NS];
        uint64_t seeds[NS], s = 5;
        for (int i = 0; i < NS * PL; i++) pb[i] = (int32_t)(test_rng_next(&s) % (uint64_t)V);
        for (int i = 0; i < NS; i++) pp[i] = pb + i * PL, pl[i] = PL, seeds[i] = sampler_rng_seed(3, (uint64_t)i);
        rollout_config_t rc = {.max_new_tokens = NEW, .eos_id = -1, .sampler = {.temperature = 1.0, .top_p = 1.0}};
        rollout_sample_t out[NS];
        rollout_stats_t st;
        test_check(rollout_generate(e, &rc, pp, pl, seeds, NS, out, &st) == 0, "gpu rollout: %s", cispo_last_error());
        printf("gpu engine: %ld tokens decoded in %.2f s (%.0f tokens/s at batch %d)\n", st.decode_tokens, st.decode_s,
               st.decode_tokens / st.decode_s, st.max_batch);
        infer_free(e);
        double mx = 0, sum = 0, sa = 0, sb = 0, saa = 0, sbb = 0, sab = 0;
        double dmx = 0, dsum = 0, fmx = 0, fsum = 0;  // decode and forward against the CPU fp32 forward
        long cnt = 0, worst_at = -1;
        int32_t *seq = cispo_malloc(sizeof(int32_t) * (PL + NEW));
        float *lp = cispo_malloc(sizeof(float) * (PL + NEW)), *lc = cispo_malloc(sizeof(float) * (PL + NEW));
        model_t *mc = model_create(&cfg, params, PL + NEW);
        for (int i = 0; i < NS; i++) {
            memcpy(seq, pp[i], sizeof(int32_t) * PL);
            memcpy(seq + PL, out[i].tokens, sizeof(int32_t) * out[i].n_tokens);
            model_seq_logprobs(m, seq, PL + out[i].n_tokens, lp);
            model_seq_logprobs(mc, seq, PL + out[i].n_tokens, lc);
            for (int t = 0; t < out[i].n_tokens; t++) {
                const double a = out[i].logp[t], b = lp[PL - 1 + t], c = lc[PL - 1 + t], dd = fabs(a - b);
                if (dd > mx) mx = dd, worst_at = t;
                sum += dd, cnt++;
                dmx = fmax(dmx, fabs(a - c)), dsum += fabs(a - c), fmx = fmax(fmx, fabs(b - c)), fsum += fabs(b - c);
                p_noise = fmax(p_noise, fabs(exp(a) - exp(c)));
                const double pa = exp(a), pb2 = exp(b);
                sa += pa, sb += pb2, saa += pa * pa, sbb += pb2 * pb2, sab += pa * pb2;
            }
            rollout_sample_free(&out[i]);
        }
        model_free(mc);
        const double n = (double)cnt, cov = sab / n - (sa / n) * (sb / n);
        const double r = cov / sqrt((saa / n - (sa / n) * (sa / n)) * (sbb / n - (sb / n) * (sb / n)));
        printf("decode vs GPU training forward over %ld tokens: max |dlogp| %.3g (at generated token %ld), mean %.3g, "
               "Pearson(p) %.6f\n", cnt, mx, worst_at, sum / n, r);
        printf("against the CPU fp32 forward: decode max %.3g mean %.3g; GPU training forward max %.3g mean %.3g; "
               "largest |p_decode - p_fp32| %.3g\n", dmx, dsum / n, fmx, fsum / n, p_noise);
        fwd_max = mx;
        test_check(cnt >= 100000, "%ld tokens compared (>= 100K)", cnt);
        test_check(r >= PEARSON_MIN, "Pearson correlation of probabilities %.6f >= %.3f", r, PEARSON_MIN);
        TEST_LE(dsum / n, DECODE_VS_FWD * fsum / n + DECODE_FLOOR, "decode as exact as the training forward: mean |dlogp| "
                "to fp32 %.3g (forward's %.3g)", dsum / n, fsum / n);
        TEST_LE(dmx, DECODE_VS_FWD * fmx + 10 * DECODE_FLOOR, "decode as exact as the training forward: max |dlogp| to "
                "fp32 %.3g (forward's %.3g)", dmx, fmx);
        free(seq), free(lp), free(lc), free(pb);
        model_free(m);
    }

    // 3. continuous batching, chunked prefill, a full pool; 4. a sequence the pool can never hold
    {
        enum { NP = 24 };
        model_t *m = gpu_model(&cfg, params, 256);
        int32_t *pb[NP];
        const int32_t *pp[NP];
        int pl[NP];
        uint64_t seeds[NP], s = 17;
        for (int i = 0; i < NP; i++) {
            pl[i] = 2 + (i * 37) % 180;
            pb[i] = cispo_malloc(sizeof(int32_t) * (size_t)pl[i]);
            for (int j = 0; j < pl[i]; j++) pb[i][j] = (int32_t)(test_rng_next(&s) % (uint64_t)V);
            pp[i] = pb[i], seeds[i] = sampler_rng_seed(8, (uint64_t)i);
        }
        rollout_config_t rc = {.max_new_tokens = 64, .eos_id = -1, .sampler = {.temperature = 0.9, .top_p = 0.95, .top_k = 100},
                               .stop_check = stop_mod7, .prefill_chunk = 48};
        rollout_sample_t all[NP], one;
        rollout_stats_t st;
        infer_t *e = infer_create_paged(m, 8, 260, 40);  // 40 blocks: about three long sequences at once
        test_check(rollout_generate(e, &rc, pp, pl, seeds, NP, all, &st) == 0, "batched: %s", cispo_last_error());
        test_check(st.waits + st.preemptions > 0 && infer_blocks_free(e) == 40,
                   "the pool filled (%ld waits, %ld preemptions) and every block came back", st.waits, st.preemptions);
        infer_free(e);
        int same = 0, ties = 0, shared = 0, total = 0;
        double worst_tie = 0, tie_limit = fmax(TIE_EPS, 2 * p_noise), reuse_max = 0;
        model_t *mc = model_create(&cfg, params, 260);
        int32_t *seq = cispo_malloc(sizeof(int32_t) * 260);
        float *lp = cispo_malloc(sizeof(float) * 260);
        for (int i = 0; i < NP; i++) {
            // the batched run's log-probs (sequences in reused slots and blocks, prefilled in chunks beside
            // others' decode) against the GPU training forward of the same tokens, as in part 2
            memcpy(seq, pp[i], sizeof(int32_t) * (size_t)pl[i]);
            memcpy(seq + pl[i], all[i].tokens, sizeof(int32_t) * (size_t)all[i].n_tokens);
            model_seq_logprobs(m, seq, pl[i] + all[i].n_tokens, lp);
            for (int t = 0; t < all[i].n_tokens; t++)
                reuse_max = fmax(reuse_max, fabs((double)all[i].logp[t] - lp[pl[i] - 1 + t]));
            rollout_config_t r1 = rc;
            r1.prefill_chunk = 0;
            infer_t *e1 = infer_create(m, 1, 260);
            test_check(rollout_generate(e1, &r1, &pp[i], &pl[i], &seeds[i], 1, &one, NULL) == 0, "alone");
            infer_free(e1);
            int t = 0;
            while (t < one.n_tokens && t < all[i].n_tokens && one.tokens[t] == all[i].tokens[t]) t++;
            shared += t, total += one.n_tokens;
            if (t == one.n_tokens && t == all[i].n_tokens) {
                same++;
            } else if (t < one.n_tokens && t < all[i].n_tokens) {
                const double d = tie_distance(mc, &rc.sampler, pp[i], pl[i], one.tokens, t, seeds[i], one.tokens[t],
                                              all[i].tokens[t]);
                worst_tie = fmax(worst_tie, d);
                ties += d <= tie_limit;
                if (d > tie_limit)
                    printf("sequence %d parts at token %d (%d vs %d): the draw is %.3g from picking both\n", i, t,
                           one.tokens[t], all[i].tokens[t], d);
            } else {
                printf("sequence %d: the same %d tokens, then one run stopped and the other did not\n", i, t);
            }
            rollout_sample_free(&one), rollout_sample_free(&all[i]);
        }
        model_free(mc);
        free(seq), free(lp);
        printf("continuous batching: %d of %d sequences equal their run alone, %d part at a near-tie (worst %.3g of "
               "the draw); %d of %d tokens before the parting\n", same, NP, ties, worst_tie, shared, total);
        printf("continuous batching: decode vs GPU training forward max |dlogp| %.3g (part 2's %.3g)\n", reuse_max,
               fwd_max);
        TEST_LE(reuse_max, fmax(2 * fwd_max, 0.1), "log-probs of sequences in reused slots against the training "
                "forward: max |dlogp| %.3g (part 2's %.3g)", reuse_max, fwd_max);
        test_check(same + ties == NP, "batched == alone up to near-ties of the sampler (%d equal + %d near-ties of %d; "
                   "worst %.3g, limit %.3g)", same, ties, NP, worst_tie, tie_limit);
        rollout_config_t big = rc;
        big.max_new_tokens = 80;
        infer_t *es = infer_create_paged(m, 2, 260, 4);
        test_check(rollout_generate(es, &big, &pp[1], &pl[1], &seeds[1], 1, &one, NULL) == -1 &&
                       strstr(cispo_last_error(), "KV blocks"),
                   "a sequence larger than the pool fails naming it: %s", cispo_last_error());
        infer_free(es);

        // 5. CUDA graphs against op-by-op decode: the same kernels, so the same bits
        rollout_sample_t gr[NP], ea[NP];
        infer_t *eg = infer_create(m, 8, 260), *ee = infer_create(m, 8, 260);
        ee->use_graphs = 0;
        test_check(eg->use_graphs, "the engine uses CUDA graphs by default on CUDA");
        test_check(rollout_generate(eg, &rc, pp, pl, seeds, NP, gr, NULL) == 0 &&
                       rollout_generate(ee, &rc, pp, pl, seeds, NP, ea, NULL) == 0,
                   "graph and eager rollouts: %s", cispo_last_error());
        int gsame = 0;
        for (int i = 0; i < NP; i++) {
            gsame += gr[i].n_tokens == ea[i].n_tokens && !memcmp(gr[i].tokens, ea[i].tokens, sizeof(int32_t) * gr[i].n_tokens) &&
                     !memcmp(gr[i].logp, ea[i].logp, sizeof(float) * gr[i].n_tokens);
            rollout_sample_free(&gr[i]), rollout_sample_free(&ea[i]);
        }
        printf("CUDA graphs: %ld decode steps replayed; %d of %d sequences identical to op-by-op decode\n",
               eg->graph_steps, gsame, NP);
        test_check(eg->graph_steps > 0 && ee->graph_steps == 0, "graph replays happened (%ld)", eg->graph_steps);
        test_check(gsame == NP, "graph decode == op-by-op decode, bit for bit (%d of %d sequences)", gsame, NP);
        infer_free(eg), infer_free(ee);

        // 6. the separate decode products (backend_tuning_t.decode_fused -1) against the fused step of the
        // defaults (one q|k|v|gate product, lightning_decode_qkv; both expert products and the gated activation
        // in one): cuBLAS may sum the wider product in another order, so the runs may part at a near-tie; up to
        // there the log-probs agree within part 2's bound
        const double bound = fmax(2 * fwd_max, 0.1);
        knob_rollouts(m, "separate decode products", set_unfused, 0, bound, &rc, pp, pl, seeds, NP);
        // 7. the linear layers of a few rows through the wide-k tiles (dense_skinny; other sums than cuBLAS's:
        // as 6), and the expert products on a persistent grid (gg_skinny_wide 2: the same sums, so the same bits)
        knob_rollouts(m, "linear layers through the wide-k tiles", set_dense, 0, bound, &rc, pp, pl, seeds, NP);
        knob_rollouts(m, "expert products on a persistent grid", set_loop, 1, 0, &rc, pp, pl, seeds, NP);
        // 8. the router's product (cuBLAS) and moe_route_forward after the post-attention norm (decode_route -1)
        // against the defaults' residual_rmsnorm_route (the logits' sums in another order: as 6)
        knob_rollouts(m, "router after the post-attention norm", set_unrouted, 0, bound, &rc, pp, pl, seeds, NP);
        // 9. the lightning output's norm and gate in the decode kernel (decode_gate; the norm's sum in another order)
        knob_rollouts(m, "output norm in the lightning decode kernel", set_gate, 0, bound, &rc, pp, pl, seeds, NP);
        // 10. the routes sorted by the post-attention norm's last CTA, the gated product gathering its rows
        // (decode_sort): the same sums as moe_dispatch's copy, so the same bits
        knob_rollouts(m, "routes sorted in the norm", set_sort, 1, 0, &rc, pp, pl, seeds, NP);
        for (int i = 0; i < NP; i++) free(pb[i]);
        model_free(m);
    }
    free(params);
    param_table_free(&table);
    backend_release(&gpu);
    return test_finish("test_engine_gpu");
}
