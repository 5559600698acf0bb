// tests/test_resume.c — resuming continues exactly: a run of SFT + RL steps, and the same run halted
// twice (in the middle of SFT and in the middle of RL, halt_after) and continued with resume=auto,
// write the same metrics.jsonl and sft_metrics.jsonl lines bit for bit (wall-clock fields aside) and
// the same number of rollout samples. A directory holding a run is not started over silently: a fresh
// run into it is refused, resume=auto on an empty one starts, and a resume with changed keys is refused
// naming them. A run with recompute=true or cheap (and a KL reference) writes the same lines as one without.
// Runs `$CISPO_BIN train` (from the repo root, as ctest does).
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/common.h"
#include "tests/testutil.h"
#include "trainer/samples.h"
#include "trainer/train_metrics.h"

// Training prompts scored by the regex verifier with a pattern a random policy matches now and then, so
// rewards (and advantages, and gradients) are not all zero; SFT demonstrations come with the records.
static const char *common =
    "model=configs/models/tiny.yaml tokenizer=configs/tokenizers/demo/tokenizer.json "
    "eval_data=arithmetic eval_size=12 sft_steps=4 sft_batch=8 steps=4 prompts_per_step=3 "
    "group_size=4 minibatches=2 max_new_tokens=16 lr_schedule=cosine warmup=2 sft_warmup=2 eval_every=2 "
    "reward_workers=2 quiet=true report=false seed=5";

static char data[128];

static int train(const char *out, const char *extra) {
    char cmd[4096];
    snprintf(cmd, sizeof cmd, "'%s' train %s train_data=%s out=%s %s > %s.log 2>&1", getenv("CISPO_BIN"), common, data,
             out, extra, out);
    int rc = system(cmd);
    if (rc) {
        snprintf(cmd, sizeof cmd, "cat %s.log", out);
        if (system(cmd)) {}
    }
    return rc;
}

// The lines of a JSONL log with the clock fields removed, re-printed (exact doubles kept).
static int read_lines(const char *path, char ***lines) {
    char *text = cispo_read_file(path, NULL);
    int n = 0;
    *lines = NULL;
    if (!text) return -1;
    for (char *p = text, *nl; *p; p = nl ? nl + 1 : p + strlen(p)) {
        nl = strchr(p, '\n');
        if (nl) *nl = 0;
        cJSON *o = cJSON_Parse(p);
        if (!o) continue;
        for (cJSON *it = o->child, *next; it; it = next) {
            next = it->next;
            if (metrics_is_clock(it->string)) cJSON_DeleteItemFromObjectCaseSensitive(o, it->string);
        }
        *lines = cispo_realloc(*lines, sizeof(char *) * (size_t)(n + 1));
        char *s = cJSON_PrintUnformatted(o);
        (*lines)[n++] = cispo_strdup(s);
        cJSON_free(s);
        cJSON_Delete(o);
    }
    free(text);
    return n;
}

static void compare_as(const char *a_path, const char *b_path, int want, const char *what) {
    char **a, **b;
    int na = read_lines(a_path, &a), nb = read_lines(b_path, &b);
    test_check(na == want && nb == want, "%s: %d lines, %s %d (want %d)", a_path, na, what, nb, want);
    int same = na == nb, first = -1;
    for (int i = 0; i < na && i < nb; i++)
        if (strcmp(a[i], b[i])) {
            same = 0;
            if (first < 0) first = i;
        }
    if (first >= 0) printf("first difference, line %d:\n  %s\n  %s\n", first + 1, a[first], b[first]);
    test_check(same, "%s: every line of the %s equals the uninterrupted run's", b_path, what);
    for (int i = 0; i < na; i++) free(a[i]);
    for (int i = 0; i < nb; i++) free(b[i]);
    free(a), free(b);
}

static void compare(const char *a_path, const char *b_path, int want) { compare_as(a_path, b_path, want, "resumed run"); }

static long sample_rows(const char *path) {
    samples_writer_t *w = samples_open(path, 1);
    if (!w) return -1;
    long n = samples_count(w);
    samples_close(w);
    return n;
}

int main(void) {
    if (!test_check(getenv("CISPO_BIN") != NULL, "CISPO_BIN is set (run through ctest)")) return test_finish("test_resume");
    char dir[] = "/tmp/cispo_test_resume_XXXXXX", A[64], B[64];
    if (!test_check(mkdtemp(dir) != NULL, "temporary directory")) return test_finish("test_resume");
    snprintf(A, sizeof A, "%s/a", dir);  // a directory of its own: other builds may run this test at once
    snprintf(B, sizeof B, "%s/b", dir);
    snprintf(data, sizeof data, "%s/prompts.jsonl", dir);
    FILE *f = fopen(data, "w");
    for (int i = 0; i < 40; i++)
        fprintf(f, "{\"prompt\": \"Say %d.\", \"verifier\": \"regex\", \"answer\": \"[0-9e]\", \"response\": \"%d\"}\n", i, i);
    fclose(f);
    test_check(train(A, "") == 0, "uninterrupted run");
    test_check(train(B, "halt_after=2") == 0, "run halted in SFT (step 2)");
    test_check(train(B, "halt_after=6 resume=auto") == 0, "resumed, halted in RL (step 6 = RL step 2)");
    test_check(train(B, "resume=auto") == 0, "resumed to the end");
    char pa[256], pb[256];
    snprintf(pa, sizeof pa, "%s/metrics.jsonl", A);
    snprintf(pb, sizeof pb, "%s/metrics.jsonl", B);
    compare(pa, pb, 5);  // held-out accuracy at step 0, then 4 RL steps
    snprintf(pa, sizeof pa, "%s/sft_metrics.jsonl", A);
    snprintf(pb, sizeof pb, "%s/sft_metrics.jsonl", B);
    compare(pa, pb, 4);
    // activation recompute changes no bit of a CPU run (the gradients are the same), with a KL reference (a
    // forward-only model) too
    {
        char R[96], K[96], Q[96];
        snprintf(R, sizeof R, "%s/recompute", dir);
        snprintf(Q, sizeof Q, "%s/cheap", dir);
        snprintf(K, sizeof K, "%s/kl", dir);
        test_check(train(R, "kl_coef=0.01 recompute=true") == 0, "run with recompute=true and a KL reference");
        test_check(train(Q, "kl_coef=0.01 recompute=cheap") == 0, "run with recompute=cheap and a KL reference");
        test_check(train(K, "kl_coef=0.01") == 0, "the same run without recompute");
        const char *files[2] = {"metrics.jsonl", "sft_metrics.jsonl"};
        for (int k = 0; k < 2; k++) {
            snprintf(pa, sizeof pa, "%s/%s", K, files[k]);
            snprintf(pb, sizeof pb, "%s/%s", R, files[k]);
            compare_as(pa, pb, k ? 4 : 5, "recompute=true run");
            snprintf(pb, sizeof pb, "%s/%s", Q, files[k]);
            compare_as(pa, pb, k ? 4 : 5, "recompute=cheap run");
        }
    }
    snprintf(pa, sizeof pa, "%s/samples.h5", A);
    snprintf(pb, sizeof pb, "%s/samples.h5", B);
    long ra = sample_rows(pa), rb = sample_rows(pb);
    test_check(ra == 4 * 3 * 4 && rb == ra, "rollout samples: %ld rows, resumed %ld (want 48)", ra, rb);
    // the metrics carry the docs/rl.md quantities
    char **l;
    snprintf(pa, sizeof pa, "%s/metrics.jsonl", A);
    int n = read_lines(pa, &l);
    if (n >= 2) {
        const char *need[] = {"reward_mean", "accuracy", "response_len_mean", "clip_frac", "agree_pearson",
                              "agree_max_abs", "entropy", "kl_old", "grad_norm", "lr", "weight_max", "accuracy_regex"};
        for (size_t k = 0; k < sizeof need / sizeof *need; k++)
            test_check(strstr(l[1], need[k]) != NULL, "metrics line has %s", need[k]);
        test_check(strstr(l[2], "heldout_accuracy") != NULL, "held-out accuracy every eval_every steps");
        int varied = 0;  // some step had rewards that differ within a group: the updates were not empty
        for (int i = 1; i < n; i++) {
            cJSON *o = cJSON_Parse(l[i]);
            const cJSON *sd = cJSON_GetObjectItem(o, "groups_signal_frac");
            varied |= sd && sd->valuedouble > 0;
            cJSON_Delete(o);
        }
        test_check(varied, "some step had groups with a learning signal");
    }
    for (int i = 0; i < n; i++) free(l[i]);
    free(l);

    // ---- the run directory: never started over silently ----
    char log[300], C[96];
    snprintf(log, sizeof log, "%s.log", A);
    test_check(train(A, "") != 0, "a fresh run into a directory holding a run is refused");
    char *t = cispo_read_file(log, NULL);
    test_check(t && strstr(t, "already holds a run") && strstr(t, "resume=auto") && strstr(t, "out="),
               "the refusal names the ways out: %s", t ? t : "");
    free(t);
    snprintf(pa, sizeof pa, "%s/metrics.jsonl", A);
    test_check(read_lines(pa, &l) == 5, "the refused run left the metrics alone");
    for (int i = 0; i < 5; i++) free(l[i]);
    free(l);
    snprintf(C, sizeof C, "%s/c", dir);
    test_check(train(C, "resume=auto steps=1 sft_steps=1") == 0, "resume=auto on an empty directory starts the run");
    test_check(train(C, "resume=auto steps=2 sft_steps=1 lr=0.002") != 0, "resume with a changed key is refused");
    snprintf(log, sizeof log, "%s.log", C);
    t = cispo_read_file(log, NULL);
    test_check(t && strstr(t, "lr ") && strstr(t, "-> 0.002") && strstr(t, "steps 1 -> 2") && strstr(t, "allow_config_change=true"),
               "the refusal lists the changed keys: %s", t ? t : "");
    free(t);
    test_check(train(C, "resume=auto steps=2 sft_steps=1 lr=0.002 allow_config_change=true") == 0,
               "allow_config_change=true continues");
    test_check(train(C, "steps=2 sft_steps=1 overwrite=true") == 0, "overwrite=true starts over");
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (test_failures == 0 && system(cmd)) {}
    return test_finish("test_resume");
}
