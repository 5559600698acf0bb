// tests/test_train_mpi.c — data-parallel `cispo train` under mpirun -np 2 against the same run in one
// process: the run completes, the ranks end with identical parameters (the trainer checks it and says
// so), rank 0 alone writes the logs, the first SFT loss agrees to fp tolerance (the same global gradient
// summed in another order), the held-out accuracy after SFT agrees, the RL steps log global counts and
// the entropy over the same samples (global sampling seeds),
// a run halted under two ranks resumes in one process, and `cispo eval` under two ranks reproduces the
// held-out accuracy (sampled) of one process exactly. CISPO_MPIEXEC: the mpirun to launch with.
#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "base/common.h"
#include "tests/testutil.h"

static char out_buf[1 << 20];

// Runs a shell command; stdout + stderr into out_buf. Returns the exit status.
static int run(const char *cmd) { return test_run_shell(cmd, out_buf, sizeof out_buf); }

// Value of key in the line of a JSONL log whose step is `step`; NAN when absent. *lines gets the line count.
static double log_value(const char *path, int step, const char *key, int *lines) {
    char *text = cispo_read_file(path, NULL);
    double v = NAN;
    *lines = 0;
    if (!text) return v;
    for (char *p = text, *nl; *p; p = nl ? nl + 1 : p + strlen(p)) {
        nl = strchr(p, '\n');
        if (nl) *nl = 0;
        (*lines)++;
        cJSON *j = cJSON_Parse(p);
        const cJSON *s = cJSON_GetObjectItem(j, "step"), *x = cJSON_GetObjectItem(j, key);
        if (cJSON_IsNumber(s) && s->valueint == step && cJSON_IsNumber(x)) v = x->valuedouble;
        cJSON_Delete(j);
    }
    free(text);
    return v;
}

static int count(const char *hay, const char *needle) {
    int n = 0;
    for (const char *p = hay; (p = strstr(p, needle)); p++) n++;
    return n;
}

// sft_batch 5 and 3 prompts per step: the ranks' slices differ in size (3+2 records, 2+1 groups)
static const char *args =
    "model=configs/models/tiny.yaml tokenizer=configs/tokenizers/demo/tokenizer.json train_data=arithmetic "
    "eval_data=arithmetic train_size=100 eval_size=9 sft_steps=3 sft_batch=5 steps=2 prompts_per_step=3 "
    "group_size=4 minibatches=2 max_new_tokens=12 save_every=0 reward_workers=1 seed=5 report=false";

// 300 SFT updates on the easiest problems: enough for a few held-out answers to come out right
static const char *sft_args =
    "model=configs/models/tiny.yaml tokenizer=configs/tokenizers/demo/tokenizer.json train_data=arithmetic "
    "eval_data=arithmetic task_dmin=1 task_dmax=1 train_size=200 eval_size=15 sft_steps=300 sft_batch=15 "
    "sft_lr=3e-3 sft_warmup=5 steps=1 prompts_per_step=3 group_size=4 max_new_tokens=32 save_every=0 "
    "reward_workers=1 seed=5 report=false samples=false quiet=true";

int main(void) {
    const char *bin = getenv("CISPO_BIN"), *mpi = getenv("CISPO_MPIEXEC");
    if (!test_check(bin && mpi, "CISPO_BIN and CISPO_MPIEXEC set (tests/cmake/mpi.cmake)")) return test_finish("test_train_mpi");
    char dir[] = "/tmp/cispo_test_train_mpi_XXXXXX";
    if (!test_check(mkdtemp(dir) != NULL, "temporary directory")) return test_finish("test_train_mpi");
    char cmd[8192], a[600], b[600];

    snprintf(cmd, sizeof cmd, "'%s' train %s out=%s/one", bin, args, dir);
    int rc1 = run(cmd);
    test_check(rc1 == 0, "one-process run: %s", out_buf);
    snprintf(cmd, sizeof cmd, "'%s' --oversubscribe -np 2 '%s' train %s out=%s/two", mpi, bin, args, dir);
    int rc2 = run(cmd);
    test_check(rc2 == 0, "two-rank run: %s", out_buf);
    test_check(strstr(out_buf, "parameters identical on all 2 ranks") != NULL, "ranks agree on the parameters: %s",
               out_buf);
    test_check(count(out_buf, "held-out accuracy before RL") == 2 && count(out_buf, "step    1/2") == 1,
               "rank 0 alone prints: %s", out_buf);

    int la, lb;
    snprintf(a, sizeof a, "%s/one/sft_metrics.jsonl", dir);
    snprintf(b, sizeof b, "%s/two/sft_metrics.jsonl", dir);
    double l1 = log_value(a, 1, "loss", &la), l2 = log_value(b, 1, "loss", &lb);
    test_check(isfinite(l1) && fabs(l1 - l2) <= 1e-5 * fmax(1, fabs(l1)), "first SFT loss: one %.9g, two ranks %.9g",
               l1, l2);
    test_check(la == 3 && lb == 3, "one SFT log line per step (one process %d, two ranks %d)", la, lb);
    double t1 = log_value(a, 1, "tokens", &la), t2 = log_value(b, 1, "tokens", &lb);
    test_check(t1 > 0 && t1 == t2, "SFT tokens of step 1 are the global count: %g vs %g", t1, t2);
    double s1 = log_value(a, 3, "loss", &la), s2 = log_value(b, 3, "loss", &lb);
    test_check(fabs(s1 - s2) <= 1e-4 * fmax(1, fabs(s1)), "third SFT loss: %.9g vs %.9g", s1, s2);

    snprintf(a, sizeof a, "%s/one/metrics.jsonl", dir);
    snprintf(b, sizeof b, "%s/two/metrics.jsonl", dir);
    double h1 = log_value(a, 0, "heldout_accuracy", &la), h2 = log_value(b, 0, "heldout_accuracy", &lb);
    test_check(isfinite(h1) && fabs(h1 - h2) < 1e-9, "held-out accuracy after SFT: %g vs %g", h1, h2);
    test_check(la == 3 && lb == 3, "one RL log line per step (one process %d, two ranks %d)", la, lb);
    // the same samples (global seeds) from nearly the same parameters: the same mean entropy of the policy
    double n1 = log_value(a, 1, "entropy", &la), n2 = log_value(b, 1, "entropy", &lb);
    test_check(n1 > 0 && fabs(n1 - n2) <= 1e-4 * n1, "RL step 1 entropy over all samples: %.9g vs %.9g", n1, n2);
    double g2 = log_value(b, 1, "samples_generated", &lb), k2 = log_value(b, 1, "groups_kept", &lb);
    test_check(g2 == 12 && k2 == 3, "RL step logs the global samples (%g of 12) and groups (%g of 3)", g2, k2);
    double u2 = log_value(b, 2, "updates", &lb), e2 = log_value(b, 2, "heldout_accuracy", &lb);
    test_check(u2 == 2 && e2 >= 0 && e2 <= 1, "RL step 2: %g updates, held-out %g", u2, e2);

    // halted under two ranks after step 4 (SFT 3 + RL 1), resumed in one process from the full checkpoint
    snprintf(cmd, sizeof cmd, "'%s' --oversubscribe -np 2 '%s' train %s out=%s/halt halt_after=4", mpi, bin, args, dir);
    test_check(run(cmd) == 0 && strstr(out_buf, "halted after step 4"), "two-rank run halts: %s", out_buf);
    snprintf(cmd, sizeof cmd, "'%s' train %s out=%s/halt resume=auto", bin, args, dir);
    test_check(run(cmd) == 0 && strstr(out_buf, "RL step 1"), "resumed in one process: %s", out_buf);
    snprintf(b, sizeof b, "%s/halt/metrics.jsonl", dir);
    double r2 = log_value(b, 2, "updates", &lb);
    test_check(r2 == 2 && lb == 3, "the resumed run logs RL step 2 (%d lines)", lb);

    // held-out accuracy of one set of parameters (an SFT-trained checkpoint that gets some right), sampled:
    // two ranks decode their slices with the global seeds and must reproduce one process exactly
    snprintf(cmd, sizeof cmd, "'%s' train %s out=%s/sft", bin, sft_args, dir);
    test_check(run(cmd) == 0, "SFT run for the evaluation: %s", out_buf);
    const char *eval_args = "tokenizer=configs/tokenizers/demo/tokenizer.json eval_data=arithmetic task_dmin=1 "
                            "task_dmax=1 eval_size=15 max_new_tokens=32 seed=5 eval_greedy=false eval_samples=3";
    double acc[2] = {NAN, NAN}, len[2] = {NAN, NAN};
    for (int k = 0; k < 2; k++) {
        snprintf(cmd, sizeof cmd, "%s%s%s'%s' eval model=%s/sft/ckpt-000301.h5 %s", k ? "'" : "", k ? mpi : "",
                 k ? "' --oversubscribe -np 2 " : "", bin, dir, eval_args);
        int ok = run(cmd) == 0 && count(out_buf, "\"accuracy\"") == 1;
        cJSON *j = ok ? cJSON_Parse(strstr(out_buf, "{")) : NULL;
        const cJSON *x = cJSON_GetObjectItem(j, "accuracy"), *y = cJSON_GetObjectItem(j, "mean_len");
        if (cJSON_IsNumber(x) && cJSON_IsNumber(y)) acc[k] = x->valuedouble, len[k] = y->valuedouble;
        test_check(ok && j, "cispo eval (%d rank%s) prints one line: %s", k + 1, k ? "s" : "", out_buf);
        cJSON_Delete(j);
    }
    test_check(acc[0] > 0 && acc[0] == acc[1] && len[0] == len[1],
               "held-out accuracy of one checkpoint: one process %.17g (len %.17g), two ranks %.17g (len %.17g)",
               acc[0], len[0], acc[1], len[1]);

    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd)) fprintf(stderr, "could not remove %s\n", dir);
    return test_finish("test_train_mpi");
}
