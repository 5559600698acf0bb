// tests/test_loss.c — CISPO, GRPO/PPO-clip, DAPO and GSPO against hand-computed values, the
// advantages, and the logits gradient of the fused LM head driven by the CISPO dlogp, checked
// against finite differences.  Run: ctest -R test_loss
#include <math.h>

#include "kernels/cpu/ops_cpu.h"
#include "rl/loss.h"
#include "tests/testutil.h"

static int near(double a, double b, double tol) { return fabs(a - b) <= tol * (1 + fabs(b)); }

static void test_cispo_clipping(void) {
    // five tokens, one sequence: ratios 1, e^.5 (above), e^-.5 (below), e^.5 with A<0, e^-.5 with A>0
    float logp[5] = {-1.0f, -0.5f, -1.5f, -0.5f, -1.5f};
    float old[5] = {-1.0f, -1.0f, -1.0f, -1.0f, -1.0f};
    float adv[5] = {1, 1, -2, -2, 1};
    int32_t off[2] = {0, 5};
    const double N = 10, up = exp(0.5), dn = exp(-0.5);
    loss_config_t c;
    loss_config_defaults(&c, LOSS_CISPO);
    test_check(c.eps_low == 1.0 && c.eps_high == 4.0, "cispo defaults eps_low 1.0, eps_high 4.0");
    c.eps_low = 0.2;
    c.eps_high = 0.28;
    float g[5];
    loss_stats_t st = {0};
    double loss = policy_loss(&c, logp, old, NULL, NULL, adv, off, 1, N, g, &st);
    // w = clip(r, 0.8, 1.28): 1, 1.28, 0.8, 1.28, 0.8; g = -w A / N (w detached)
    const double w[5] = {1, 1.28, 0.8, 1.28, 0.8};
    double want_loss = 0;
    for (int t = 0; t < 5; t++) {
        TEST_LE(fabs(g[t] - (-w[t] * adv[t] / N)), 1e-7, "cispo token %d: dlogp %g want %g", t, g[t], -w[t] * adv[t] / N);
        want_loss -= w[t] * adv[t] * logp[t] / N;
    }
    test_check(near(loss, want_loss, 1e-9), "cispo loss %g want %g", loss, want_loss);
    test_check(st.clip_high == 2 && st.clip_low == 2 && st.masked == 0, "cispo clip counts high %g low %g masked %g",
               st.clip_high, st.clip_low, st.masked);
    test_check(near(st.weight_max, up, 1e-9), "max weight %g", st.weight_max);

    // Eq. 7 mask drops A>0 & r>1+eps_high (token 1) and A<0 & r<1-eps_low (token 2) only
    c.eq7_mask = 1;
    loss_stats_t st2 = {0};
    policy_loss(&c, logp, old, NULL, NULL, adv, off, 1, N, g, &st2);
    test_check(g[1] == 0 && g[2] == 0 && st2.masked == 2, "eq7 mask drops tokens 1 and 2");
    test_check(fabs(g[3] - (-1.28 * -2 / N)) < 1e-7 && fabs(g[4] - (-0.8 / N)) < 1e-7,
               "eq7 mask keeps A<0 above and A>0 below (%g %g)", g[3], g[4]);

    // detached weight: an unclipped token's gradient is -r A / N, not -(r A + r A logp) / N
    float lp1[1] = {-2.0f}, old1[1] = {(float)(-2.0 - log(1.1))}, a1[1] = {1.5f};
    int32_t off1[2] = {0, 1};
    c.eq7_mask = 0;
    loss_stats_t st3 = {0};
    policy_loss(&c, lp1, old1, NULL, NULL, a1, off1, 1, 4, g, &st3);
    double r = exp((double)lp1[0] - (double)old1[0]);
    test_check(fabs(g[0] - (-r * 1.5 / 4)) < 1e-6, "detached weight: dlogp %g want %g (not %g)", g[0], -r * 1.5 / 4,
               -(r * 1.5 + r * 1.5 * -2.0) / 4);

    // PPO-clip (GRPO): clipped tokens lose their gradient
    loss_config_defaults(&c, LOSS_GRPO);
    loss_stats_t st4 = {0};
    loss = policy_loss(&c, logp, old, NULL, NULL, adv, off, 1, N, g, &st4);
    double want[5] = {-1 / N, 0, 0, -(up * -2) / N, -(dn * 1) / N};
    for (int t = 0; t < 5; t++) TEST_LE(fabs(g[t] - want[t]), 1e-7, "grpo token %d: dlogp %g want %g", t, g[t], want[t]);
    double obj = 1 * 1 + 1.2 * 1 + 0.8 * -2 + up * -2 + dn * 1;  // min(rA, clip(r)A) per token
    test_check(near(loss, -obj / N, 1e-9), "grpo loss %g want %g", loss, -obj / N);
    test_check(st4.masked == 2, "grpo masks 2 tokens (%g)", st4.masked);

    // DAPO: clip-higher 0.2 / 0.28
    loss_config_defaults(&c, LOSS_DAPO);
    test_check(c.eps_low == 0.2 && c.eps_high == 0.28, "dapo defaults");
}

static void test_token_normalisation(void) {
    // sequences of 2 and 6 tokens, r = 1: each token weighs 1/8 (token-level), not 1/(2 len)
    float lp[8], old[8], adv[8], g[8];
    for (int t = 0; t < 8; t++) {
        lp[t] = old[t] = -0.7f;
        adv[t] = t < 2 ? 1.0f : -1.0f;
    }
    int32_t off[3] = {0, 2, 8};
    loss_config_t c;
    loss_config_defaults(&c, LOSS_CISPO);
    loss_stats_t st = {0};
    policy_loss(&c, lp, old, NULL, NULL, adv, off, 2, 8, g, &st);
    for (int t = 0; t < 8; t++)
        TEST_LE(fabs(g[t] - (t < 2 ? -0.125 : 0.125)), 1e-8, "token-level normalisation token %d: %g", t, g[t]);
    test_check(st.n_tokens == 8, "token count");
    // the same tokens split over two calls (minibatch pieces) with the global normaliser agree
    float g2[8];
    loss_stats_t st2 = {0};
    int32_t offa[2] = {0, 2}, offb[2] = {0, 6};
    policy_loss(&c, lp, old, NULL, NULL, adv, offa, 1, 8, g2, &st2);
    policy_loss(&c, lp + 2, old + 2, NULL, NULL, adv + 2, offb, 1, 8, g2 + 2, &st2);
    test_check(test_max_abs_diff(g, g2, 8) == 0 && near(st.loss, st2.loss, 1e-12), "split across minibatch pieces");
}

static void test_gspo(void) {
    // one sequence of 2 tokens, log ratios +0.1, -0.3: s = exp(-0.1)
    float lp[2] = {-1.0f, -2.0f}, old[2] = {-1.1f, -1.7f}, adv[2] = {2, 2}, g[2];
    int32_t off[2] = {0, 2};
    loss_config_t c;
    loss_config_defaults(&c, LOSS_GSPO);
    c.eps_low = c.eps_high = 0.2;
    loss_stats_t st = {0};
    policy_loss(&c, lp, old, NULL, NULL, adv, off, 1, 1, g, &st);
    double s = exp(((-1.0 + 1.1) + (-2.0 + 1.7)) / 2);
    for (int t = 0; t < 2; t++) TEST_LE(fabs(g[t] - (-s * 2 / 2)), 1e-6, "gspo token %d %g want %g", t, g[t], -s);
}

static void test_advantages(void) {
    float r[8] = {1, 0, 0, 1, 1, 1, 1, 1}, a[8];
    adv_config_t c = {ADV_GROUP_NORM, 1e-6};
    advantages_group(a, r, 2, 4, &c);
    double std = sqrt(1.0 / 3.0);
    TEST_LE(fabs(a[0] - 0.5 / (std + 1e-6)), 1e-6, "group norm + %g", a[0]);
    TEST_LE(fabs(a[1] + 0.5 / (std + 1e-6)), 1e-6, "group norm - %g", a[1]);
    test_check(a[4] == 0 && a[7] == 0, "zero-variance group has zero advantage");
    test_check(group_has_signal(r, 4) && !group_has_signal(r + 4, 4), "dynamic sampling signal");
    c.kind = ADV_GROUP_NO_STD;
    advantages_group(a, r, 1, 4, &c);
    TEST_LE(fabs(a[0] - 0.5) + fabs(a[1] + 0.5), 1e-7, "no-std advantages");
    c.kind = ADV_RLOO;
    advantages_group(a, r, 1, 4, &c);
    TEST_LE(fabs(a[0] - 2.0 / 3.0) + fabs(a[1] + 2.0 / 3.0), 1e-6, "rloo advantages %g %g", a[0], a[1]);
    test_check(reward_overlong_penalty(80, 100, 20) == 0.0f && reward_overlong_penalty(90, 100, 20) == -0.5f &&
                   reward_overlong_penalty(100, 100, 20) == -1.0f && reward_overlong_penalty(130, 100, 20) == -1.0f,
               "overlong shaping");
    test_check(loss_kind_parse("cispo") == LOSS_CISPO && loss_kind_parse("ppo") == LOSS_GRPO &&
                   loss_kind_parse("dapo") == LOSS_DAPO && loss_kind_parse("x") == -1,
               "loss names");
}

// The gradient w.r.t. the LM-head input, from CISPO's dlogp through the fused kernel, against central
// differences of L(x) = -(1/N) sum_t w_t A_t logp_t(x) with the weights w held (detached).
static void test_logits_gradient(void) {
    enum { T = 5, C = 6, V = 11 };
    uint64_t seed = 7;
    float x[T * C], w[V * C], logp[T], lse[T], old[T], adv[T], g[T], dx[T * C] = {0}, dw[V * C] = {0};
    int32_t tg[T] = {3, 0, 10, 7, 7}, off[2] = {0, T};
    test_fill(x, T * C, &seed, -1, 1);
    test_fill(w, V * C, &seed, -1, 1);
    lmhead_logprob_forward_cpu(logp, lse, NULL, x, w, tg, T, C, V, 2);
    for (int t = 0; t < T; t++) {
        old[t] = logp[t] + (float)test_uniform(&seed, -0.6, 0.6);
        adv[t] = (float)test_uniform(&seed, -1.5, 1.5);
    }
    loss_config_t c;
    loss_config_defaults(&c, LOSS_CISPO);
    c.eps_low = 0.1;
    c.eps_high = 0.2;  // some tokens clipped
    loss_stats_t st = {0};
    policy_loss(&c, logp, old, NULL, NULL, adv, off, 1, T, g, &st);
    double wt[T];
    for (int t = 0; t < T; t++) wt[t] = fmin(fmax(exp((double)logp[t] - old[t]), 0.9), 1.2);
    lmhead_logprob_backward_cpu(dx, dw, g, x, w, tg, lse, T, C, V, 2);
    double worst = 0;
    for (int i = 0; i < T * C; i++) {
        const float h = 1e-2f;
        float keep = x[i], lp2[T];
        double l[2];
        for (int s = 0; s < 2; s++) {
            x[i] = keep + (s ? -h : h);
            lmhead_logprob_forward_cpu(lp2, lse, NULL, x, w, tg, T, C, V, 2);
            l[s] = 0;
            for (int t = 0; t < T; t++) l[s] -= wt[t] * adv[t] * lp2[t] / T;
        }
        x[i] = keep;
        double fd = (l[0] - l[1]) / (2 * h);
        double err = fabs(fd - dx[i]) / (1e-3 + fabs(fd));
        if (err > worst) worst = err;
    }
    TEST_LE(worst, 2e-2, "logits gradient vs finite differences: worst relative error %.2e", worst);
}

int main(void) {
    test_cispo_clipping();
    test_token_normalisation();
    test_gspo();
    test_advantages();
    test_logits_gradient();
    return test_finish("test_loss");
}
