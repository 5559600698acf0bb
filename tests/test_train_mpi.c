// tests/test_train_mpi.c — data-parallel `cispo train` under mpirun -np 2 against the same run in one
// process: the run completes, the ranks end with identical parameters (the trainer checks it and says
// so), rank 0 alone writes the logs, the first SFT loss agrees to fp tolerance (the same global gradient
// summed in another order), the held-out accuracy after SFT agrees, the RL steps log global counts and
// the entropy over the same samples (global sampling seeds),
// a run halted under two ranks resumes in one process, and `cispo eval` under two ranks reproduces the
// held-out accuracy (sampled) of one process exactly. ZeRO-1 (the key `zero`, on by default): the
// checkpoint after SFT of a two-rank run with zero=1 has the parameters and AdamW moments of zero=0 (fp32
// summation order apart), and an SFT run with sharded moments saved on 2 ranks resumes on 3, and saved on 3
// resumes in one process, as the same run with whole moments does. CISPO_MPIEXEC: the mpirun to launch with.
#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "base/common.h"
#include "tests/testshell.h"
#include "tests/testutil.h"
#include "trainer/checkpoint.h"

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

// Largest |a - b| / (1e-3 + |b|) over the parameters and both moments of two checkpoints; INFINITY when
// either does not load or has no moments.
static double ckpt_diff(const char *a, const char *b) {
    checkpoint_t x, y;
    if (checkpoint_load(a, &x)) return INFINITY;
    if (checkpoint_load(b, &y)) return checkpoint_free(&x), INFINITY;
    double w = x.table.n_floats == y.table.n_floats && x.m && y.m ? 0 : INFINITY;
    for (size_t i = 0; isfinite(w) && i < x.table.n_floats; i++) {
        const float xs[3] = {x.params[i], x.m[i], x.v[i]}, ys[3] = {y.params[i], y.m[i], y.v[i]};
        for (int k = 0; k < 3; k++) {
            double d = fabs((double)xs[k] - ys[k]) / (1e-3 + fabs((double)ys[k]));
            if (!(d <= w)) w = d;
        }
    }
    checkpoint_free(&x), checkpoint_free(&y);
    return w;
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

    // ZeRO-1 against whole moments: two ranks, the checkpoint after the 3 SFT updates
    for (int z = 0; z < 2; z++) {
        snprintf(cmd, sizeof cmd, "'%s' --oversubscribe -np 2 '%s' train %s out=%s/zero%d zero=%d halt_after=3", mpi,
                 bin, args, dir, z, z);
        test_check(run(cmd) == 0 && strstr(out_buf, "halted after step 3"), "two ranks, zero=%d, halt: %s", z, out_buf);
    }
    snprintf(a, sizeof a, "%s/zero0/ckpt-000003.h5", dir);
    snprintf(b, sizeof b, "%s/zero1/ckpt-000003.h5", dir);
    double dz = ckpt_diff(b, a);
    test_check(dz <= 1e-4, "zero=1 vs zero=0 after 3 AdamW updates on 2 ranks: parameters and moments agree "
               "(max rel diff %.3g)", dz);
    // sharded moments across rank counts, mid-SFT (the moments are in use): saved on 2 ranks after step 1,
    // resumed on 3 for step 2, saved there and resumed in one process for step 3; the same with whole
    // moments (zero=0) must give the same checkpoint (rank counts change the micro-batches, so only runs over
    // the same rank counts compare)
    for (int z = 0; z < 2; z++) {
        snprintf(cmd, sizeof cmd, "'%s' --oversubscribe -np 2 '%s' train %s out=%s/reshard%d zero=%d halt_after=1", mpi,
                 bin, args, dir, z, z);
        test_check(run(cmd) == 0 && strstr(out_buf, "halted after step 1"), "zero=%d: 2 ranks halt after step 1: %s",
                   z, out_buf);
        snprintf(cmd, sizeof cmd, "'%s' --oversubscribe -np 3 '%s' train %s out=%s/reshard%d zero=%d resume=auto "
                 "halt_after=2", mpi, bin, args, dir, z, z);
        test_check(run(cmd) == 0 && strstr(out_buf, "resumed from") && strstr(out_buf, "halted after step 2"),
                   "zero=%d: saved on 2 ranks, resumed on 3: %s", z, out_buf);
        snprintf(cmd, sizeof cmd, "'%s' train %s out=%s/reshard%d zero=%d resume=auto halt_after=3", bin, args, dir, z, z);
        test_check(run(cmd) == 0 && strstr(out_buf, "resumed from") && strstr(out_buf, "halted after step 3"),
                   "zero=%d: saved on 3 ranks, resumed in one process: %s", z, out_buf);
    }
    snprintf(a, sizeof a, "%s/reshard0/ckpt-000003.h5", dir);
    snprintf(b, sizeof b, "%s/reshard1/ckpt-000003.h5", dir);
    dz = ckpt_diff(b, a);
    test_check(dz <= 1e-4, "SFT resumed 2 -> 3 -> 1 ranks: sharded moments (zero=1) give the parameters and moments "
               "of whole ones (zero=0) after 3 updates (max rel diff %.3g)", dz);
    snprintf(cmd, sizeof cmd, "'%s' train %s out=%s/reshard1 resume=auto", bin, args, dir);
    test_check(run(cmd) == 0, "the resharded run finishes RL: %s", out_buf);
    snprintf(b, sizeof b, "%s/reshard1/metrics.jsonl", dir);
    double z2 = log_value(b, 2, "updates", &lb);
    test_check(z2 == 2 && lb == 3, "the run resumed three times logs RL step 2 (%d lines)", lb);

    // held-out accuracy of one set of parameters (an SFT-trained checkpoint that gets some right), sampled:
    // two ranks decode their slices with the global seeds and must reproduce one process exactly
    snprintf(cmd, sizeof cmd, "'%s' train %s out=%s/sft", bin, sft_args, dir);
    test_check(run(cmd) == 0, "SFT run for the evaluation: %s", out_buf);
    const char *eval_args = "tokenizer=configs/tokenizers/demo/tokenizer.json eval_data=arithmetic task_dmin=1 "
                            "task_dmax=1 eval_size=15 max_new_tokens=32 seed=5 eval_greedy=false eval_samples=8";
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
