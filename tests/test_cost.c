// tests/test_cost.c — the cost model (trainer/cost.h): FLOPs per token against values computed by hand
// from docs/model.md's formulas on the tiny and bench-1b presets, MiniMax-M1's totals as docs/model.md states
// them, DeepSeek-R1's MLA + MoE count, sequence sums, the run estimate, MiniMax-M1's two cost claims,
// and the `cispo cost` command's output (with the run at `cispo plan`'s step time).
//   ./test_cost          (from the repo root; TEST_VERBOSE=1 prints every check)
//
// MiniMax-M1 report claims reproduced here:
//  (a) "512 H800 GPUs for three weeks ... a rental cost of $534,700": 512 * 21 * 24 = 258,048
//      GPU-hours, so the implied price is $2.072 per GPU-hour; at $2 the estimate is $516,096 (3.5%
//      under). Checked: implied price in [2.00, 2.10], $2 estimate within 5% of the claim.
//  (b) "less than 50% of the FLOPs of DeepSeek-R1 at a generation length of 64K tokens and about 25% at
//      100K": read as the FLOPs of the token generated at that length (context t = L). Ours: 29.0% at
//      64K, 22.2% at 100K. Checked: < 50% at 64K, 25% +- 5 points at 100K. Summed over the whole
//      generation (the other reading) the figures are 44.5% and 34.4%: under 50% at 64K still, but not
//      "about 25%" at 100K; printed, not asserted.
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/common.h"
#include "model/config.h"
#include "testutil.h"
#include "trainer/cost.h"

static int load_preset(const char *name, model_config_t *cfg) {
    const char *src = getenv("CISPO_SRC");
    char path[4096];
    snprintf(path, sizeof path, "%s/configs/models/%s.yaml", src && *src ? src : ".", name);
    return test_check(model_config_load(cfg, path) == 0, "load %s: %s", path, cispo_last_error()) ? 0 : -1;
}

#define EQ(got, want, what) test_check((got) == (want), "%s: %.17g (want %.17g)", what, (double)(got), (double)(want))
#define REL(got, want, tol, what) \
    test_check(fabs((got) / (want)-1) <= (tol), "%s: %.6g vs %.6g (rel tol %g)", what, (double)(got), (double)(want), (double)(tol))

static void test_tiny(void) {
    model_config_t cfg;
    if (load_preset("tiny", &cfg)) return;
    cost_flops_t f;
    cost_flops_minimax(&cfg, &f);
    // tiny: V=512, C=64, N=4 (l=0..2 lightning, l=3 softmax), H=4, D=16, A=64, KV=2, E=4, K=2, F=64.
    // lightning: 2*64*(3*64+64) + 2*64*64 = 32768 + 8192 = 40960 projections, 4*4*16*16 = 4096 state
    // softmax:   2*64*(64 + 2*2*16) + 2*64*64 = 16384 + 8192 = 24576, + 4*64 = 256 per unit of context
    // MoE:       2*64*4 + 2*6*64*64 = 512 + 49152 = 49664 per layer; LM head 2*64*512 = 65536
    test_check(f.n_linear == 3 && f.n_softmax == 1 && f.n_layers == 4, "tiny: 3 lightning + 1 softmax");
    EQ(f.attn_proj, 3 * 40960.0 + 24576, "tiny attention projections");
    EQ(f.attn_core, 3 * 4096.0, "tiny lightning state");
    EQ(f.mlp, 4 * 49664.0, "tiny MoE");
    EQ(f.lm_head, 65536.0, "tiny LM head");
    EQ(f.base, 423936.0, "tiny total at t=0");
    EQ(f.per_ctx, 256.0, "tiny per unit of context");
    EQ(cost_forward_at(&f, 1000), 423936.0 + 256000, "tiny forward at t=1000");
    // 3 prompt + 5 generated: contexts t = 1..8, sum t = 36.
    EQ(cost_forward_sequence(&f, 3, 5), 8 * 423936.0 + 256.0 * 36, "tiny sequence of 3 + 5 tokens");
}

static void test_bench_1b(void) {
    model_config_t cfg;
    if (load_preset("bench-1b", &cfg)) return;
    cost_flops_t f;
    cost_flops_minimax(&cfg, &f);
    // bench-1b: V=32768, C=1024, N=16 (softmax at l=7,15), H=8, D=128, A=1024, KV=1, E=32, K=2, F=1024.
    // lightning: 2*1024*4096 + 2*1024*1024 = 10485760 projections, 4*8*128*128 = 524288 state
    // softmax:   2*1024*(1024 + 2*128) + 2*1024*1024 = 4718592, + 4*1024 per unit of context
    // MoE:       2*1024*32 + 2*6*1024*1024 = 12648448 per layer; LM head 2*1024*32768 = 67108864
    test_check(f.n_linear == 14 && f.n_softmax == 2, "bench-1b: 14 lightning + 2 softmax");
    EQ(f.attn_proj, 14 * 10485760.0 + 2 * 4718592.0, "bench-1b attention projections");
    EQ(f.attn_core, 14 * 524288.0, "bench-1b lightning state");
    EQ(f.mlp, 16 * 12648448.0, "bench-1b MoE");
    EQ(f.lm_head, 67108864.0, "bench-1b LM head");
    EQ(f.base, 433061888.0, "bench-1b total at t=0");
    EQ(f.per_ctx, 8192.0, "bench-1b per unit of context");
    // Training a 4096-token sequence: 3 * (4096 * base + 8192 * 4096*4097/2).
    EQ(COST_TRAIN_FACTOR * cost_forward_sequence(&f, 4096, 0), 3 * (4096 * 433061888.0 + 8192.0 * 4096 * 4097 / 2),
       "bench-1b training FLOPs of a 4096-token sequence");
}

static void test_m1_and_r1(cost_flops_t *m1, cost_flops_t *r1) {
    model_config_t cfg;
    if (load_preset("minimax-m1", &cfg)) return;
    cost_flops_minimax(&cfg, m1);
    // docs/model.md: "about 94.6 GFLOP + 3.28e5*t per decoded token".
    REL(m1->base, 94.6e9, 1e-3, "M1 per token at t=0 ~ 94.6 GFLOP (docs/model.md)");
    EQ(m1->per_ctx, 10 * 4 * 8192.0, "M1 per unit of context: 10 softmax layers x 4A");
    // 2 x active parameters is the usual shortcut (M1: 45.9 B active); the lightning state update is
    // the only term that is not a weight multiply.
    REL(m1->base, 2 * 45.9e9, 0.05, "M1 per token ~ 2 x 45.9 B active parameters");

    cost_flops_mla(&COST_DEEPSEEK_R1, r1);
    // Per layer, MLA: 2*7168*1536 + 2*1536*128*192 + 2*7168*576 + 2*512*128*256 + 2*128*128*7168 = 374210560
    // dense FFN 6*7168*18432 = 792723456; MoE 2*7168*256 + 9*6*7168*2048 = 796393472; head 2*7168*129280
    EQ(r1->attn_proj, 61 * 374210560.0, "R1 MLA projections");
    EQ(r1->mlp, 3 * 792723456.0 + 58 * 796393472.0, "R1 dense FFN + MoE");
    EQ(r1->lm_head, 1853358080.0, "R1 LM head");
    EQ(r1->base, 73249193984.0, "R1 per token at t=0");
    EQ(r1->per_ctx, 61 * 2 * 128 * (192.0 + 128), "R1 per unit of context: 61 x 2H(d_qk + d_v)");
    REL(r1->base, 2 * 37e9, 0.03, "R1 per token ~ 2 x 37 B active parameters");
}

static void test_m1_claims(const cost_flops_t *m1, const cost_flops_t *r1) {
    // (a) 512 H800 for three weeks, $534,700.
    double hours = 512 * 21 * 24.0, claim = 534700;
    double implied = claim / hours;
    printf("claim (a): 512 GPUs x 3 weeks = %.0f GPU-hours; $534,700 implies $%.4f per GPU-hour; at $2: $%.0f\n", hours,
           implied, cost_dollars(512, 21, 2.0));
    test_check(implied >= 2.0 && implied <= 2.1, "claim (a): implied price $%.4f per GPU-hour is ~$2", implied);
    EQ(cost_dollars(512, 21, 2.0), 516096.0, "claim (a): 512 x 21 days x 24 h x $2");
    REL(cost_dollars(512, 21, 2.0), claim, 0.05, "claim (a): $2 estimate within 5% of $534,700");

    // (b) FLOPs vs DeepSeek-R1 by generation length.
    double tok64 = cost_forward_at(m1, 65536) / cost_forward_at(r1, 65536);
    double tok100 = cost_forward_at(m1, 100000) / cost_forward_at(r1, 100000);
    double gen64 = cost_forward_sequence(m1, 0, 65536) / cost_forward_sequence(r1, 0, 65536);
    double gen100 = cost_forward_sequence(m1, 0, 100000) / cost_forward_sequence(r1, 0, 100000);
    printf("claim (b): M1 / R1 FLOPs, token at L: %.1f%% (64K), %.1f%% (100K); whole generation: %.1f%% (64K), "
           "%.1f%% (100K)\n",
           100 * tok64, 100 * tok100, 100 * gen64, 100 * gen100);
    test_check(tok64 < 0.5, "claim (b): under 50%% of R1 at 64K (%.3f)", tok64);
    test_check(fabs(tok100 - 0.25) <= 0.05, "claim (b): about 25%% of R1 at 100K (%.3f, tolerance 5 points)", tok100);
    test_check(gen64 < 0.5, "claim (b), whole generation: under 50%% at 64K as well (%.3f)", gen64);
    // The ratio falls with length: lightning layers' cost is flat, R1's attention grows with t.
    test_check(cost_forward_at(m1, 8192) / cost_forward_at(r1, 8192) > tok64 && tok64 > tok100,
               "M1/R1 ratio falls as the generation grows");
}

static void test_run_estimate(const cost_flops_t *m1) {
    cost_run_t r = cost_run_default();
    r.n_gpus = 512, r.gpu = cost_gpu_find("h800");
    r.mfu_rollout = 0.1, r.mfu_train = 0.4, r.price_per_gpu_hour = 2;
    r.prompts_per_step = 100, r.samples_per_prompt = 10, r.prompt_len = 1000, r.gen_len = 9000, r.steps = 20;
    test_check(r.gpu && r.gpu->peak_tflops == 989.4, "H800 peak dense BF16 989.4 TFLOP/s");
    cost_estimate_t e;
    cost_estimate_run(m1, &r, &e);
    // by hand: sequence of n = 10000 tokens: n*base + per_ctx*n(n+1)/2; 1000 samples per step.
    double seq = 10000 * m1->base + m1->per_ctx * 10000.0 * 10001 / 2;
    REL(e.rollout_flops, 1000 * seq, 1e-12, "rollout FLOPs per step");
    REL(e.train_flops, 3000 * seq, 1e-12, "training FLOPs per step = 3 x forward");
    double peak = 989.4e12;
    double gh = 20 * (1000 * seq / (peak * 0.1) + 3000 * seq / (peak * 0.4)) / 3600;
    REL(e.gpu_hours, gh, 1e-12, "GPU-hours");
    REL(e.wall_days, gh / 512 / 24, 1e-12, "wall days");
    REL(e.dollars, 2 * gh, 1e-12, "dollars");
    test_check(cost_gpu_find("A100") && cost_gpu_find("A100")->peak_tflops == 312 && cost_gpu_find("H200") &&
                   cost_gpu_find("H100") && !cost_gpu_find("X100"),
               "GPU table: A100 312, H100, H200 present; unknown names refused");
}

// Runs `cispo cost ARGS` and returns its exit status; out receives stdout + stderr.
static int run_cost(const char *bin, const char *args, char *out, size_t cap) {
    char cmd[4096];
    snprintf(cmd, sizeof cmd, "'%s' cost %s 2>&1", bin, args);
    FILE *p = popen(cmd, "r");
    size_t n = p ? fread(out, 1, cap - 1, p) : 0;
    out[n] = 0;
    return p ? pclose(p) : -1;
}

// The command prints the same numbers.
static void test_command(void) {
    const char *bin = getenv("CISPO_BIN");
    if (!test_check(bin && *bin, "CISPO_BIN is set (ctest sets it)")) return;
    size_t cap = 1 << 16;
    char *out = cispo_malloc(cap);
    int rc = run_cost(bin, "--model tiny --gpus 8 --gpu A100 --compare deepseek-r1", out, cap);
    test_check(rc == 0 && strstr(out, "4 layers (3 lightning, 1 softmax)") && strstr(out, "423.94 K") &&
                   strstr(out, "8 x A100 (312.0 TFLOP/s") && strstr(out, "vs DeepSeek-R1"),
               "cispo cost --model tiny: layer split, 423.94 K per token, the run and the comparison (rc %d)", rc);
    rc = run_cost(bin, "--model minimax-m1 --gpus 512 --gpu H800 --days 21 --price 2", out, cap);
    test_check(rc == 0 && strstr(out, "94.64 G") && strstr(out, "258048 GPU-hours at $2.00 = $516096"),
               "cispo cost prices M1's reservation: 512 x H800 x 21 days at $2 = $516096 (rc %d)", rc);
    rc = run_cost(bin, "--model minimax-m1 --gpus 512 --gpu H800 --compare deepseek-r1", out, cap);
    test_check(rc == 0 && strstr(out, "at `cispo plan`'s step time") && strstr(out, "22.2% per-token, 34.4% whole") &&
                   strstr(out, "not overlapped"),
               "cispo cost M1: run at the plan's step time; 100K figure labelled per-token vs whole generation (rc %d)", rc);
    rc = run_cost(bin, "--model no-such-model", out, cap);
    test_check(rc != 0 && strstr(out, "no-such-model") && strstr(out, "configs/models"), "unknown model: exit != 0, named");
    rc = run_cost(bin, "--model tiny --gpu X100", out, cap);
    test_check(rc != 0 && strstr(out, "X100") && strstr(out, "H800"), "unknown GPU: exit != 0, known ones listed");
    free(out);
}

int main(void) {
    cost_flops_t m1 = {0}, r1 = {0};
    test_tiny();
    test_bench_1b();
    test_m1_and_r1(&m1, &r1);
    if (m1.base > 0 && r1.base > 0) {
        test_m1_claims(&m1, &r1);
        test_run_estimate(&m1);
    }
    test_command();
    return test_finish("test_cost");
}
