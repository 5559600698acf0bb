// tests/test_rl_objective.c — the corners of the RL objective and its optimizer (docs/rl.md): updates
// with a non-finite gradient norm are skipped and counted, log-ratios clamped before exp, PPO's dual
// clip, the Eq. 7 mask with its own bounds, GSPO's clip and mask counts on the sequence ratio, failed
// verifications out of the group statistics, DAPO's accuracy rule for dynamic sampling, the global
// minibatch split, the KL estimators and the entropy bonus, the M1 defaults (repetition truncation, a
// learning rate that must be set for a real model), the length curriculum; then one short `cispo train`
// run with all of them on (per-step budget, KL to the reference, sampling warnings).
// Run: ctest -R test_rl_objective
#include <cjson/cJSON.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/common.h"
#include "rl/loss.h"
#include "tests/testshell.h"
#include "tests/testutil.h"
#include "trainer/optim.h"
#include "trainer/run_config.h"
#include "trainer/train.h"

static int near(double a, double b, double tol) { return fabs(a - b) <= tol * (1 + fabs(b)); }

// ---- 1. non-finite gradients, log-ratio clamp, dual clip ----
static void test_nonfinite(void) {
    enum { n = 64 };
    float p[n], g[n], p0[n];
    uint64_t s = 5;
    test_fill(p, n, &s, -1, 1);
    memcpy(p0, p, sizeof p);
    optim_config_t c = {.lr = 1e-2, .beta1 = 0.9, .beta2 = 0.95, .eps = 1e-15, .grad_clip = 1.0};
    optim_t o;
    optim_init(&o, &c, n);
    const float bad[2] = {NAN, INFINITY};
    for (int k = 0; k < 2; k++) {
        test_fill(g, n, &s, -1, 1);
        g[7] = bad[k];
        double gn = optim_step(&o, p, g, NULL);
        int moments_zero = 1;
        for (int i = 0; i < n; i++) moments_zero &= o.m[i] == 0 && o.v[i] == 0;
        test_check(!isfinite(gn) && !memcmp(p, p0, sizeof p) && moments_zero && o.t == 0,
                   "%s gradient: update skipped (norm %g, t %d, weights and moments untouched)", k ? "inf" : "NaN", gn,
                   o.t);
    }
    test_fill(g, n, &s, -1, 1);
    double gn = optim_step(&o, p, g, NULL);
    int finite = 1;
    for (int i = 0; i < n; i++) finite &= isfinite(p[i]);
    test_check(isfinite(gn) && o.t == 1 && finite && memcmp(p, p0, sizeof p), "a finite gradient then updates (t %d)", o.t);
    optim_free(&o);

    // the streak: max_nonfinite_updates skipped in a row stop the run, a finite norm resets it
    static train_t t;
    memset(&t, 0, sizeof t);
    t.cfg.max_nonfinite_updates = 3;
    int r1 = train_note_update(&t, NAN, "RL step 1, update 1"), r2 = train_note_update(&t, INFINITY, "RL step 1, update 2");
    int r3 = train_note_update(&t, 0.5, "RL step 1, update 3");
    test_check(!r1 && !r2 && !r3 && t.nonfinite_streak == 0, "two skipped then a finite norm: the run goes on");
    train_note_update(&t, NAN, "x");
    train_note_update(&t, NAN, "x");
    int r = train_note_update(&t, NAN, "RL step 4, update 2");
    test_check(r == -1 && strstr(cispo_last_error(), "RL step 4, update 2") &&
                   strstr(cispo_last_error(), "max_nonfinite_updates"),
               "three in a row stop the run: %s", cispo_last_error());

    // PPO/GRPO and GSPO: a log-ratio of 100 with A < 0 gives a finite gradient (clamped before exp)
    float lp[2] = {-0.5f, -0.5f}, old[2] = {-100.5f, -100.5f}, adv[2] = {-1, -1}, d[2];
    int32_t off1[2] = {0, 1}, off2[2] = {0, 2};
    const int kinds[3] = {LOSS_GRPO, LOSS_DAPO, LOSS_GSPO};
    for (int k = 0; k < 3; k++) {
        loss_config_t lc;
        loss_config_defaults(&lc, kinds[k]);
        loss_stats_t st = {0};
        double l = policy_loss(&lc, lp, old, NULL, NULL, adv, kinds[k] == LOSS_GSPO ? off2 : off1, 1, 2, d, &st);
        test_check(isfinite(l) && isfinite(d[0]) && isfinite(st.weight_max) && near(st.weight_max, exp(LOSS_LOG_RATIO_MAX), 1e-9),
                   "%s: log-ratio 100 clamped to %g (loss %g, dlogp %g)", loss_kind_name(kinds[k]), LOSS_LOG_RATIO_MAX, l, d[0]);
    }
    // dual clip: A < 0 and r > c: the objective is c*A, no gradient; r < c keeps PPO's gradient
    loss_config_t lc;
    loss_config_defaults(&lc, LOSS_GRPO);
    lc.clip_ratio_c = 3;
    float lp2[2] = {(float)log(4.0), (float)log(2.0)}, old2[2] = {0, 0}, a2[2] = {-1, -1}, d2[2];
    int32_t off3[3] = {0, 1, 2};
    loss_stats_t st = {0};
    double l = policy_loss(&lc, lp2, old2, NULL, NULL, a2, off3, 2, 2, d2, &st);
    test_check(d2[0] == 0 && near(d2[1], 2.0 / 2, 1e-6) && st.masked == 1 && near(l, -(3 * -1 + 2 * -1) / 2.0, 1e-6),
               "dual clip c=3: r=4 masked (dlogp %g), r=2 active (%g), loss %g", d2[0], d2[1], l);
}

// ---- 2. Eq. 7 mask bounds separate from CISPO's weight clip ----
static void test_eq7(void) {
    loss_config_t c;
    loss_config_defaults(&c, LOSS_CISPO);
    test_check(c.eps_low == 1.0 && c.eps_high == 4.0 && c.mask_eps_low == 0.2 && c.mask_eps_high == 0.28,
               "CISPO: weight clip 1 / 4, Eq. 7 mask 0.2 / 0.28");
    c.eq7_mask = 1;
    // r = 1.5 with A > 0 (masked: > 1.28), r = 0.5 with A < 0 (masked: < 0.8), r = 0.9 with A < 0 (kept),
    // r = 1.5 with A < 0 (kept)
    float lp[4] = {(float)log(1.5), (float)log(0.5), (float)log(0.9), (float)log(1.5)}, old[4] = {0, 0, 0, 0};
    float adv[4] = {1, -1, -1, -1}, d[4];
    int32_t off[2] = {0, 4};
    loss_stats_t st = {0};
    policy_loss(&c, lp, old, NULL, NULL, adv, off, 1, 4, d, &st);
    test_check(d[0] == 0 && d[1] == 0 && st.masked == 2, "Eq. 7 masks r=1.5 (A>0) and r=0.5 (A<0) under CISPO's defaults");
    test_check(near(d[2], 0.9 / 4, 1e-6) && near(d[3], 1.5 / 4, 1e-6),
               "the kept tokens keep CISPO's unclipped weight (%g %g)", d[2], d[3]);
    run_config_t rc;
    test_check(run_config_load(&rc, NULL, NULL, 0) == 0 && rc.eq7_eps_low == 0.2 && rc.eq7_eps_high == 0.28 &&
                   rc.clip_ratio_c == 0,
               "keys eq7_eps_low/high 0.2/0.28, clip_ratio_c off");
}

// ---- 3. dynamic sampling reads the verifier's accuracy ----
static void test_dynamic_sampling(void) {
    // seven right answers and one right answer in the soft-overlong zone: the shaped rewards differ, the
    // accuracy does not; std normalisation would make the tiny penalty a full-size advantage
    float reward[8] = {1, 1, 1, 1, 1, 1, 1, 0.99f}, acc[8] = {1, 1, 1, 1, 1, 1, 1, 1};
    test_check(group_has_signal(reward, 8) && !group_has_signal_valid(acc, NULL, 8),
               "the group has reward signal but no accuracy signal");
    run_config_t rc;
    test_check(run_config_load(&rc, NULL, NULL, 0) == 0 && rc.dynamic_sampling_metric == DS_METRIC_ACCURACY,
               "dynamic_sampling_metric defaults to accuracy (DAPO's rule)");
    char *o[] = {"dynamic_sampling_metric=reward"};
    test_check(run_config_load(&rc, NULL, o, 1) == 0 && rc.dynamic_sampling_metric == DS_METRIC_REWARD, "reward by key");
}

// ---- 5. failed verifications stay out of the group's statistics ----
static void test_failed_verdicts(void) {
    float r[4] = {1, 0, 0, 1}, a[4], ref[3] = {1, 0, 1}, ar[3];
    unsigned char ok[4] = {1, 1, 0, 1};  // sample 2 failed: reward 0 is no verdict
    adv_config_t c = {ADV_GROUP_NORM, 1e-6};
    advantages_group_valid(a, r, ok, 1, 4, &c);
    advantages_group(ar, ref, 1, 3, &c);  // the group of the three valid samples alone
    test_check(a[2] == 0 && near(a[0], ar[0], 1e-6) && near(a[1], ar[1], 1e-6) && near(a[3], ar[2], 1e-6),
               "failed sample: advantage 0, the others as the valid group alone (%g %g %g vs %g %g %g)", a[0], a[1],
               a[3], ar[0], ar[1], ar[2]);
    float same[4] = {1, 1, 0, 1};
    test_check(!group_has_signal_valid(same, ok, 4), "a failed verdict's 0 is no signal among equal valid rewards");
    unsigned char one[4] = {0, 0, 0, 1};
    advantages_group_valid(a, r, one, 1, 4, &c);
    test_check(a[0] == 0 && a[3] == 0, "a group with one valid sample has no advantage");
}

// ---- 6. updates split by global index ----
static void test_global_split(void) {
    // two ranks with 8 samples each, 16 updates: the old per-rank split left every other update empty
    // on both ranks (an AdamW step on a zero gradient); by global index each update has one sample
    const int U = 16;
    int ok = 1;
    for (int u = 0; u < U; u++) {
        int total = 0;
        for (int r = 0; r < 2; r++) {
            int lo, hi;
            rl_minibatch_slice(8L * r, 8, 16, U, u, &lo, &hi);
            total += hi - lo;
        }
        ok &= total == 1;
    }
    test_check(ok, "every global update holds one sample");
    // uneven ranks (3 and 10 samples, 4 updates): the slices tile each rank's samples exactly once
    int seen[13] = {0};
    for (int u = 0; u < 4; u++)
        for (int r = 0; r < 2; r++) {
            int lo, hi, off = r ? 3 : 0, n = r ? 10 : 3;
            rl_minibatch_slice(off, n, 13, 4, u, &lo, &hi);
            for (int i = lo; i < hi; i++) seen[off + i]++;
        }
    int once = 1;
    for (int i = 0; i < 13; i++) once &= seen[i] == 1;
    test_check(once, "uneven ranks: each sample in exactly one update");
    int lo, hi;
    rl_minibatch_slice(0, 10, 10, 4, 1, &lo, &hi);
    test_check(lo == 2 && hi == 5, "one rank: the old split n*u/U (%d %d)", lo, hi);
}

// ---- 8. GSPO counts on the sequence ratio; masked alike for every kind ----
static void test_gspo_counts(void) {
    // token log-ratios +0.5 and -0.5: the sequence ratio is 1, nothing is clipped at the sequence level
    float lp[2] = {-0.5f, -1.5f}, old[2] = {-1.0f, -1.0f}, adv[2] = {1, 1}, d[2];
    int32_t off[2] = {0, 2};
    loss_config_t c;
    loss_config_defaults(&c, LOSS_GSPO);
    loss_stats_t st = {0};
    policy_loss(&c, lp, old, NULL, NULL, adv, off, 1, 1, d, &st);
    test_check(st.clip_low == 0 && st.clip_high == 0 && near(st.weight_sum, 2.0, 1e-9) && st.masked == 0,
               "GSPO: clip counts on the sequence ratio (low %g high %g, weights %g)", st.clip_low, st.clip_high,
               st.weight_sum);
    // a sequence ratio above the clip with A > 0: both tokens clipped and masked
    float lp2[2] = {-0.9f, -0.9f};
    loss_stats_t st2 = {0};
    policy_loss(&c, lp2, old, NULL, NULL, adv, off, 1, 1, d, &st2);
    test_check(st2.clip_high == 2 && st2.masked == 2 && d[0] == 0, "GSPO: a clipped sequence counts its tokens");
    // A = 0 inside the bounds: zero gradient, but nothing masked (as GRPO counts it)
    float zero[2] = {0, 0};
    const int kinds[2] = {LOSS_GSPO, LOSS_GRPO};
    for (int k = 0; k < 2; k++) {
        loss_config_defaults(&c, kinds[k]);
        loss_stats_t s3 = {0};
        policy_loss(&c, old, old, NULL, NULL, zero, off, 1, 2, d, &s3);
        test_check(s3.masked == 0 && d[0] == 0, "%s: A = 0 at r = 1 is not masked (%g)", loss_kind_name(kinds[k]), s3.masked);
    }
}

// ---- 9. KL estimators and the entropy bonus ----
static void test_kl_entropy(void) {
    const float lp[1] = {-1.0f}, ref[1] = {-1.4f}, old[1] = {-1.0f}, adv[1] = {0};
    int32_t off[2] = {0, 1};
    const double dd = -1.0 - -1.4;
    const double want[3] = {dd, 0.5 * dd * dd, exp(-dd) + dd - 1}, dwant[3] = {1, dd, 1 - exp(-dd)};
    test_check(kl_kind_parse("k1") == KL_K1 && kl_kind_parse("k3") == KL_K3 && kl_kind_parse("k4") == -1, "kl names");
    for (int k = 0; k < 3; k++) {
        loss_config_t c;
        loss_config_defaults(&c, LOSS_CISPO);
        c.kl_coef = 0.5;
        c.kl_kind = k;
        loss_stats_t st = {0};
        float d[1];
        double l = policy_loss(&c, lp, old, ref, NULL, adv, off, 1, 2, d, &st);
        test_check(near(st.kl_ref_sum, want[k], 1e-6) && near(l, 0.5 * want[k] / 2, 1e-6) &&
                       near(d[0], 0.5 * dwant[k] / 2, 1e-6),
                   "k%d: KL %g (want %g), dlogp %g (want %g)", k + 1, st.kl_ref_sum, want[k], d[0], 0.5 * dwant[k] / 2);
    }
    loss_config_t c;
    loss_config_defaults(&c, LOSS_CISPO);
    test_check(c.kl_kind == KL_K3 && c.kl_coef == 0 && c.entropy_coef == 0, "KL and entropy off by default (k3 when on)");
    // entropy bonus: loss -= c H / N; dlogp += c (logp + H) / N (score-function form)
    const float H[1] = {0.8f};
    c.entropy_coef = 0.1;
    loss_stats_t st = {0};
    float d[1];
    double l = policy_loss(&c, lp, old, NULL, H, adv, off, 1, 2, d, &st);
    test_check(near(l, -0.1 * 0.8 / 2, 1e-6) && near(d[0], 0.1 * (-1.0 + 0.8) / 2, 1e-6) && near(st.entropy_sum, 0.8, 1e-6),
               "entropy bonus: loss %g dlogp %g", l, d[0]);
    // the score-function gradient of the entropy equals the exact one in expectation: over a small
    // softmax, sum_y p_y (logp_y + H) dlogp_y/dz equals -dH/dz
    const double z[3] = {0.3, -0.2, 1.1};
    double m = 0, p[3], Hx = 0;
    for (int i = 0; i < 3; i++) m += exp(z[i]);
    for (int i = 0; i < 3; i++) p[i] = exp(z[i]) / m, Hx -= p[i] * log(p[i]);
    double worst = 0;
    for (int j = 0; j < 3; j++) {
        double est = 0;
        for (int y = 0; y < 3; y++) est += p[y] * (log(p[y]) + Hx) * ((y == j) - p[j]);
        double exact = -p[j] * (log(p[j]) + Hx);  // dH/dz_j
        worst = fmax(worst, fabs(-est - exact));
    }
    TEST_LE(worst, 1e-12, "entropy score-function gradient matches dH/dz in expectation (%.2g)", worst);
}

// ---- 10. M1 defaults ----
static void test_defaults(void) {
    run_config_t c;
    test_check(run_config_load(&c, NULL, NULL, 0) == 0 && c.rep_n == 3000 && c.rep_p == 0.99 && c.lr == -1,
               "repetition truncation on by default (3000 tokens above 0.99); lr unset (-1)");
    double lr;
    test_check(train_phase_lr(&c, 340000, 2, &lr) == 0 && lr == 1e-3 && train_phase_lr(&c, 340000, 1, &lr) == 0 &&
                   lr == 3e-3,
               "the tiny model takes the demo's rates");
    test_check(train_phase_lr(&c, 1000000000, 2, &lr) == -1 && strstr(cispo_last_error(), "key 'lr' is required"),
               "a 1 B model must set lr: %s", cispo_last_error());
    c.lr = 1e-6;
    test_check(train_phase_lr(&c, 1000000000, 2, &lr) == 0 && lr == 1e-6, "an explicit lr is taken as it is");
    char *o[] = {"lr=-0.5"};
    test_check(run_config_load(&c, NULL, o, 1) == -1 && strstr(cispo_last_error(), "'lr'"), "lr=-0.5 is refused");
}

// ---- 11. length curriculum ----
static void test_schedule(void) {
    run_config_t c;
    char *o[] = {"max_new_tokens=8192", "max_new_tokens_schedule=0:4096,100:8192"};
    test_check(run_config_load(&c, NULL, o, 2) == 0, "schedule parses: %s", cispo_last_error());
    test_check(run_config_max_new_tokens(&c, 0) == 4096 && run_config_max_new_tokens(&c, 99) == 4096 &&
                   run_config_max_new_tokens(&c, 100) == 8192 && run_config_max_new_tokens(&c, 500) == 8192,
               "4096 for steps 1-100, 8192 after");
    char *o2[] = {"max_new_tokens=48", "max_new_tokens_schedule=10:24"};
    test_check(run_config_load(&c, NULL, o2, 2) == 0 && run_config_max_new_tokens(&c, 0) == 48 &&
                   run_config_max_new_tokens(&c, 10) == 24,
               "max_new_tokens before the first entry");
    const char *bad[][2] = {{"max_new_tokens_schedule=0:4096,100:99999", "raise max_new_tokens"},
                            {"max_new_tokens_schedule=0:16,0:32", "steps must increase"},
                            {"max_new_tokens_schedule=0-16", "step:tokens"}};
    for (int i = 0; i < 3; i++) {
        char *ob[] = {"max_new_tokens=8192", (char *)bad[i][0]};
        test_check(run_config_load(&c, NULL, ob, 2) == -1 && strstr(cispo_last_error(), bad[i][1]), "%s: %s", bad[i][0],
                   cispo_last_error());
    }
}

// ---- a short run with the length curriculum, KL to the reference, entropy bonus and truncated sampling ----
static void test_run(void) {
    const char *bin = getenv("CISPO_BIN");
    if (!test_check(bin != NULL, "CISPO_BIN set (run through ctest)")) return;
    char dir[] = "/tmp/cispo_test_rl_objective_XXXXXX";
    if (!test_check(mkdtemp(dir) != NULL, "temporary directory")) return;
    static char out[1 << 20];
    char cmd[4096], path[600];
    snprintf(cmd, sizeof cmd,
             "'%s' train model=configs/models/tiny.yaml tokenizer=configs/tokenizers/demo/tokenizer.json "
             "train_data=arithmetic eval_data=arithmetic train_size=100 eval_size=8 sft_steps=2 sft_batch=8 steps=3 "
             "prompts_per_step=2 group_size=4 minibatches=2 max_new_tokens=12 max_new_tokens_schedule=0:5,2:12 "
             "kl_coef=0.05 entropy_coef=0.01 top_p=0.9 reward_workers=0 report=false samples=false seed=4 out=%s/run",
             bin, dir);
    int rc = test_run_shell(cmd, out, sizeof out);
    test_check(rc == 0, "the run exits 0:\n%s", out);
    test_check(strstr(out, "top_p=0.9") && strstr(out, "biased"), "truncated sampling is warned about");
    snprintf(path, sizeof path, "%s/run/metrics.jsonl", dir);
    char *m = cispo_read_file(path, NULL);
    const int want_budget[4] = {0, 5, 5, 12};
    int lines = 0;
    for (char *p = m, *nl; p && *p; p = nl + 1) {
        if (!(nl = strchr(p, '\n'))) break;
        *nl = 0;
        cJSON *o = cJSON_Parse(p);
        int step = o ? cJSON_GetObjectItem(o, "step")->valueint : -1;
        if (step >= 1 && step <= 3) {
            const cJSON *b = cJSON_GetObjectItem(o, "max_new_tokens"), *len = cJSON_GetObjectItem(o, "response_len_max");
            const cJSON *kl = cJSON_GetObjectItem(o, "kl_ref"), *sk = cJSON_GetObjectItem(o, "skipped_updates");
            const cJSON *rep = cJSON_GetObjectItem(o, "rep_n");
            test_check(b && b->valueint == want_budget[step] && len && len->valueint <= want_budget[step],
                       "step %d: budget %d logged, longest response %d", step, b ? b->valueint : -1,
                       len ? len->valueint : -1);
            test_check(rep && rep->valueint == (3000 * want_budget[step] + 11) / 12, "step %d: rep_n follows the budget (%d)",
                       step, rep ? rep->valueint : -1);
            test_check(kl && kl->valuedouble >= 0 && kl->valuedouble < 0.05 && sk && sk->valueint == 0,
                       "step %d: KL to the reference %g, skipped updates %d", step, kl ? kl->valuedouble : -1,
                       sk ? sk->valueint : -1);
            lines++;
        }
        cJSON_Delete(o);
    }
    free(m);
    test_check(lines == 3, "three RL steps logged (%d)", lines);
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (test_failures == 0 && system(cmd)) {}
}

int main(void) {
    test_nonfinite();
    test_eq7();
    test_dynamic_sampling();
    test_failed_verdicts();
    test_global_split();
    test_gspo_counts();
    test_kl_entropy();
    test_defaults();
    test_schedule();
    test_run();
    return test_finish("test_rl_objective");
}
