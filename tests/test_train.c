// tests/test_train.c — pieces of the training loops: the LR schedule, AdamW with global-norm clipping,
// micro-batch packing (packed log-probs and gradients equal one sequence at a time), the seeded data
// order and its cursor, the metrics line, the run-config cross-key checks, and the scoring pool
// (verdicts land in job order; an unknown verifier is a failed verdict, never a silent zero; workers started
// from a multi-threaded process are fresh single-threaded images that run the code sandbox; a stuck worker never
// holds up the pool's end).
#include <dirent.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/common.h"
#include "kernels/cpu/ops_cpu.h"
#include "model/model.h"
#include "model/seq_logprob.h"
#include "tests/testshell.h"
#include "tests/testutil.h"
#include "trainer/optim.h"
#include "trainer/run_config.h"
#include "trainer/reward_pool.h"
#include "trainer/train_batch.h"
#include "trainer/train_data.h"
#include "trainer/train_metrics.h"

#define NEAR(got, want, tol, what) \
    test_check(fabs((double)(got) - (double)(want)) <= (tol), "%s: %.17g vs %.17g", what, (double)(got), (double)(want))

static void test_schedule(void) {
    optim_config_t c = {.lr = 1e-3, .warmup = 4, .schedule = LR_COSINE, .total = 14, .min_ratio = 0.1};
    NEAR(optim_lr(&c, 0), 0.25e-3, 1e-15, "warmup starts at lr/warmup");
    NEAR(optim_lr(&c, 3), 1e-3, 1e-15, "warmup ends at lr");
    NEAR(optim_lr(&c, 9), 0.55e-3, 1e-12, "cosine halfway is the mean of peak and floor");
    NEAR(optim_lr(&c, 14), 0.1e-3, 1e-15, "cosine ends at the floor");
    NEAR(optim_lr(&c, 100), 0.1e-3, 1e-15, "and stays there");
    c.schedule = LR_LINEAR;
    NEAR(optim_lr(&c, 9), 0.55e-3, 1e-12, "linear halfway");
    c.schedule = LR_CONSTANT;
    NEAR(optim_lr(&c, 100), 1e-3, 1e-15, "constant after warmup");
}

static void test_adamw_clip(void) {
    const size_t n = 1000;
    uint64_t s = 3;
    float *p = cispo_malloc(n * 4), *g = cispo_malloc(n * 4), *p2 = cispo_malloc(n * 4), *g2 = cispo_malloc(n * 4);
    float *m2 = cispo_calloc(n, 4), *v2 = cispo_calloc(n, 4);
    test_fill(p, n, &s, -1, 1);
    test_fill(g, n, &s, -1, 1);
    memcpy(p2, p, n * 4);
    optim_config_t c = {.lr = 1e-2, .beta1 = 0.9, .beta2 = 0.95, .eps = 1e-15, .weight_decay = 0.1, .grad_clip = 0.5};
    optim_t o;
    optim_init(&o, &c, n);
    double norm = optim_grad_norm(g, n);
    double lr;
    double got = optim_step(&o, p, g, &lr);
    TEST_LE(fabs((double)(got) - (norm)), 1e-9 * norm, "optim_step returns the norm before clipping");
    TEST_LE(fabs(optim_grad_norm(g, n) - norm), 0.0, "the gradient is left as it was (the clip is the step's factor)");
    // the same update by hand: the AdamW op at step 1 reading the gradient times grad_clip / norm
    memcpy(g2, g, n * 4);
    adamw_step_cpu(p2, m2, v2, g2, (float)(0.5 / (norm + 1e-30)), n, 1e-2f, 0.9f, 0.95f, 1e-15f, 0.1f, 1);
    TEST_LE(test_max_abs_diff(p, p2, n), 0.0, "optim_step = adamw_step_cpu with the clip's factor (max diff %.3g)",
            test_max_abs_diff(p, p2, n));
    test_check(o.t == 1 && lr == 1e-2, "update counter and rate");
    // below the clip the gradient is left alone
    for (size_t i = 0; i < n; i++) g[i] = 1e-4f;
    float before = g[0];
    optim_step(&o, p, g, NULL);
    test_check(g[0] == before, "no clipping below the threshold");
    optim_free(&o);
    free(p), free(g), free(p2), free(g2), free(m2), free(v2);
}

// Packed micro-batches give each sequence the log-probs and gradients it has alone.
static void test_micro(void) {
    model_config_t cfg;
    if (!test_check(model_config_load(&cfg, "configs/models/tiny.yaml") == 0, "tiny preset: %s", cispo_last_error()))
        return;
    model_t *m = model_create(&cfg, NULL, 64);
    param_init_hf(m->params, &m->table, &cfg, 7);
    int32_t toks[40];
    uint64_t s = 11;
    for (int i = 0; i < 40; i++) toks[i] = (int32_t)(test_rng_next(&s) % 512);
    train_seq_t seqs[3] = {{.prompt = toks, .n_prompt = 5, .resp = toks + 5, .n_resp = 7},
                           {.prompt = toks + 12, .n_prompt = 3, .resp = toks + 15, .n_resp = 9},
                           {.prompt = toks + 24, .n_prompt = 8, .resp = toks + 32, .n_resp = 6}};
    micro_t *mb;
    int nmb = micro_plan(seqs, 3, 24, &mb);
    // lengths 11, 11, 13: [0,1] fits 22 <= 24, then [2]
    test_check(nmb == 2 && mb[0].count == 2 && mb[0].T == 22 && mb[1].first == 2 && mb[1].n_resp == 6, "micro_plan packs");
    free(mb);
    test_check(micro_plan(seqs, 3, 12, &mb) == -1 && strstr(cispo_last_error(), "micro_tokens"),
               "a sequence longer than micro_tokens is an error: %s", cispo_last_error());
    nmb = micro_plan(seqs, 3, 64, &mb);
    test_check(nmb == 1 && mb[0].n_resp == 22, "all in one micro-batch");
    float lp[22], d[22];
    micro_forward(m, seqs, &mb[0], lp, NULL);
    for (int i = 0; i < 22; i++) d[i] = (float)(0.1 * (i % 5) - 0.2);
    model_zero_grad(m);
    micro_backward(m, seqs, &mb[0], d, 0.0f);
    size_t np = m->table.n_floats;
    float *g_packed = cispo_malloc(np * 4), *g_one = cispo_calloc(np, 4);
    memcpy(g_packed, m->grads, np * 4);
    double worst = 0;
    int r = 0;
    for (int q = 0; q < 3; q++) {  // one sequence at a time through model_seq_logprobs
        int32_t full[20];
        int n = seqs[q].n_prompt + seqs[q].n_resp;
        memcpy(full, seqs[q].prompt, 4 * seqs[q].n_prompt);
        memcpy(full + seqs[q].n_prompt, seqs[q].resp, 4 * seqs[q].n_resp);
        float ref[20], dd[20] = {0};
        model_seq_logprobs(m, full, n, ref);
        for (int j = 0; j < seqs[q].n_resp; j++) {
            worst = fmax(worst, fabs(ref[seqs[q].n_prompt - 1 + j] - lp[r + j]));
            dd[seqs[q].n_prompt - 1 + j] = d[r + j];
        }
        model_zero_grad(m);
        model_backward(m, dd, 0.0f);
        for (size_t i = 0; i < np; i++) g_one[i] += ((float *)m->grads)[i];
        r += seqs[q].n_resp;
    }
    TEST_LE(worst, 2e-5, "packed response log-probs equal one-at-a-time scoring (max diff %.3g)", worst);
    double rel = test_rel_l2(g_packed, g_one, np);
    TEST_LE(rel, 1e-5, "packed gradient equals the sum of per-sequence gradients (rel %.3g)", rel);
    free(mb), free(g_packed), free(g_one);
    model_free(m);
}

static void test_data_order(void) {
    const int n = 37;
    data_cursor_t c = {0, 0};
    int seen[37] = {0}, a[100], b[100];
    data_cursor_take(&c, 5, 2, n, 37, a);
    for (int i = 0; i < 37; i++) seen[a[i]]++;
    int once = 1;
    for (int i = 0; i < n; i++) once &= seen[i] == 1;
    test_check(once && c.epoch == 0 && c.cursor == 37, "an epoch visits every record once");
    data_cursor_take(&c, 5, 2, n, 10, a);
    test_check(c.epoch == 1 && c.cursor == 10, "the next epoch starts (cursor %llu/%llu)", (unsigned long long)c.epoch,
               (unsigned long long)c.cursor);
    // resuming from a saved cursor continues the same order
    data_cursor_t c1 = {0, 0}, c2;
    data_cursor_take(&c1, 9, 1, n, 50, a);
    c2 = c1;
    data_cursor_take(&c1, 9, 1, n, 30, a);
    data_cursor_take(&c2, 9, 1, n, 30, b);
    test_check(!memcmp(a, b, sizeof(int) * 30), "a copied cursor continues identically");
    data_cursor_t c3 = {0, 0};
    data_cursor_take(&c3, 10, 1, n, 37, b);
    data_cursor_t c4 = {0, 0};
    data_cursor_take(&c4, 9, 1, n, 37, a);
    test_check(memcmp(a, b, sizeof(int) * 37) != 0, "another seed, another order");
}

static void test_metrics(void) {
    metrics_t m;
    metrics_clear(&m);
    metrics_set(&m, "reward_mean", 0.1);
    metrics_set(&m, "time_step_s", 2.5);
    metrics_set(&m, "entropy", NAN);
    metrics_set(&m, "reward_mean", 1.0 / 3.0);
    FILE *f = tmpfile();
    metrics_write_jsonl(f, 7, &m);
    rewind(f);
    char line[256] = "";
    if (!fgets(line, sizeof line, f)) line[0] = 0;
    fclose(f);
    test_check(!strcmp(line, "{\"step\": 7, \"reward_mean\": 0.33333333333333331, \"time_step_s\": 2.5, \"entropy\": null}\n"),
               "metrics line (exact doubles, replaced value, null for NaN): %s", line);
    test_check(metrics_is_clock("time_step_s") && metrics_is_clock("rollout_tok_per_s") && metrics_is_clock("eta_s") &&
                   !metrics_is_clock("reward_mean") && !metrics_is_clock("per_s"),
               "clock fields");
}

static void test_config(void) {
    run_config_t c;
    test_check(run_config_load(&c, NULL, NULL, 0) == 0, "defaults are valid: %s", cispo_last_error());
    test_check(c.beta2 == 0.95 && c.adam_eps == 1e-15 && c.loss == 0 && c.eps_low == -1, "docs/rl.md defaults");
    char *o1[] = {"minibatches=300", "prompts_per_step=4", "group_size=8"};
    test_check(run_config_load(&c, NULL, o1, 3) == -1 && strstr(cispo_last_error(), "minibatches"),
               "more updates than samples: %s", cispo_last_error());
    char *o2[] = {"warmpu=3"};
    test_check(run_config_load(&c, NULL, o2, 1) == -1 && strstr(cispo_last_error(), "warmup"),
               "unknown key names the near one: %s", cispo_last_error());
    char *o3[] = {"loss=ppo2"};
    test_check(run_config_load(&c, NULL, o3, 1) == -1 && strstr(cispo_last_error(), "cispo|grpo|dapo|gspo"),
               "loss choices: %s", cispo_last_error());
    char *o4[] = {"group_size=1"};
    test_check(run_config_load(&c, NULL, o4, 1) == -1 && strstr(cispo_last_error(), "group_size"),
               "group of one: %s", cispo_last_error());
    char *o5[] = {"task_dmin=3", "task_dmax=2"};
    test_check(run_config_load(&c, NULL, o5, 2) == -1 && strstr(cispo_last_error(), "task_dmin"), "difficulty range");
}

// The verifier workers among our children: their pids (up to cap) and how many there are; *single = 1 when
// each has one thread.
static int pool_workers(pid_t *pids, int cap, int *single) {
    int n = 0;
    *single = 1;
    DIR *d = opendir("/proc");
    for (struct dirent *e; d && (e = readdir(d));) {
        char buf[4096];
        if (test_proc_read(e->d_name, "status", buf, sizeof buf)) continue;
        const char *pp = strstr(buf, "\nPPid:"), *th = strstr(buf, "\nThreads:");
        if (strncmp(buf, "Name:\tcispo-verifier", 20) || !pp || atoi(pp + 7) != (int)getpid()) continue;
        if (!th || atoi(th + 10) != 1) *single = 0;
        if (n < cap) pids[n] = (pid_t)atoi(e->d_name);
        n++;
    }
    if (d) closedir(d);
    return n;
}

static volatile int spin_stop;
static void *spin(void *arg) {
    (void)arg;
    while (!spin_stop) free(malloc(64));  // another thread in the allocator, as MPI's progress threads may be
    return NULL;
}

static void test_pool(void) {
    pthread_t th;
    int spinning = pthread_create(&th, NULL, spin, NULL) == 0;
    reward_pool_t *p = reward_pool_create(3, 10.0);
    if (!test_check(p != NULL, "pool: %s", cispo_last_error())) return;
    enum { N = 40 };
    reward_job_t jobs[N];
    char gold[N][16], resp[N][64];
    for (int i = 0; i < N; i++) {
        snprintf(gold[i], sizeof gold[i], "%d", i);
        snprintf(resp[i], sizeof resp[i], "so the answer is \\boxed{%d}.", i % 3 ? i : i + 1);  // every third wrong
        jobs[i] = (reward_job_t){i == 17 ? "no-such-verifier" : "math", {.gold = gold[i], .response = resp[i]}};
    }
    verdict_t v[N], w[N];
    int failed = reward_pool_run(p, jobs, N, v);
    test_check(failed == 1 && v[17].failed && strstr(v[17].reason, "no-such-verifier"),
               "an unknown verifier is one failed verdict (%d failed; %s)", failed, v[17].reason);
    int right = 1;
    for (int i = 0; i < N; i++)
        if (i != 17) right &= v[i].correct == (i % 3 != 0) && !v[i].failed && v[i].reward == (i % 3 != 0);
    test_check(right, "verdicts land in job order");
    reward_pool_run(p, jobs, N, w);  // the pool is reusable, and in-process scoring agrees
    reward_pool_t *q = reward_pool_create(0, 10.0);
    verdict_t u[N];
    reward_pool_run(q, jobs, N, u);
    int same = 1;
    for (int i = 0; i < N; i++) same &= w[i].correct == v[i].correct && u[i].correct == v[i].correct;
    test_check(same, "second batch and in-process scoring agree");
    reward_pool_free(q);
    pid_t pids[8];
    int single, n = pool_workers(pids, 8, &single);
    test_check(n == 3 && single, "the pool's 3 workers, started beside a busy thread, are fresh images of this "
               "program with one thread each (%d found)", n);
    // the code verifier from a worker: its sandbox forks and runs the program (right, then wrong)
    const char *tests = "[{\"stdin\":\"1 2\",\"stdout\":\"3\"}]";
    reward_job_t code[2] = {{"code", {.response = "```python\nprint(sum(map(int, input().split())))\n```",
                                      .tests_json = tests}},
                            {"code", {.response = "```python\nprint(4)\n```", .tests_json = tests}}};
    verdict_t cv[2];
    int cf = reward_pool_run(p, code, 2, cv);
    test_check(cf == 0 && cv[0].correct && !cv[1].correct, "code verdicts from a worker: right %d (%s), wrong %d (%s)",
               cv[0].correct, cv[0].reason, cv[1].correct, cv[1].reason);
    // a worker that never answers the end of its socket is killed: the pool's end does not wait on it
    if (n >= 1) kill(pids[0], SIGSTOP);
    double t0 = cispo_now();
    reward_pool_free(p);
    double took = cispo_now() - t0;
    test_check(took < 10 && pool_workers(pids, 8, &single) == 0, "a stopped worker is killed at the pool's end "
               "(%.2f s; workers left: %d)", took, pool_workers(pids, 8, &single));
    spin_stop = 1;
    if (spinning) pthread_join(th, NULL);
}

int main(void) {
    test_schedule();
    test_adamw_clip();
    test_micro();
    test_data_order();
    test_metrics();
    test_config();
    test_pool();
    return test_finish("test_train");
}
