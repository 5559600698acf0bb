// tests/test_fault.c — a run survives what happens to real runs. Runs `$CISPO_BIN train` on a tiny,
// fast config (a few seconds) that checkpoints every step:
//   - kill -9 of the whole process group at a random moment (rollout, scoring, update, checkpoint or
//     samples write), then `resume=auto`, again and again until the run finishes: 20 times, and every
//     time the directory resumes and the final metrics.jsonl / sft_metrics.jsonl equal the
//     uninterrupted run's bit for bit (clock fields aside) with the same rollout sample count;
//   - SIGINT (as Ctrl-C sends it, to the process group) and SIGTERM: exit 130 / 143, a checkpoint and a
//     message saying how to continue; a second SIGINT exits at once; each continues to identical metrics;
//   - disk full while a checkpoint is written (RLIMIT_FSIZE): the save fails with a message and the
//     previous checkpoint is intact.
// CISPO_FAULT_KILLS overrides the number of kill rounds.
#include <cjson/cJSON.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "base/common.h"
#include "model/config.h"
#include "model/params.h"
#include "tests/testutil.h"
#include "trainer/checkpoint.h"
#include "trainer/samples.h"
#include "trainer/train_metrics.h"

static const char *common =
    "model=configs/models/tiny.yaml tokenizer=configs/tokenizers/demo/tokenizer.json "
    "eval_data=arithmetic eval_size=6 sft_steps=3 sft_batch=8 steps=4 prompts_per_step=2 "
    "group_size=4 minibatches=2 max_new_tokens=12 lr_schedule=cosine warmup=1 sft_warmup=1 eval_every=2 "
    "reward_workers=1 quiet=true report=false seed=7 save_every=1 keep_checkpoints=2";
static char data[160];

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + 1e-9 * ts.tv_nsec;
}

// Starts `cispo train` in a process group of its own (as a shell job is); returns its pid.
static pid_t start(const char *out, const char *extra) {
    char cmd[4096];
    snprintf(cmd, sizeof cmd, "exec '%s' train %s train_data=%s out=%s %s >> %s.log 2>&1", getenv("CISPO_BIN"), common,
             data, out, extra, out);
    pid_t pid = fork();
    if (pid == 0) {
        setpgid(0, 0);
        execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
        _exit(127);
    }
    setpgid(pid, pid);
    return pid;
}

static int wait_rc(pid_t pid) {
    int st;
    waitpid(pid, &st, 0);
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
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

// 1 when dir's logs and sample count equal the reference run's.
static int same_as_reference(const char *ref, const char *dir) {
    const char *logs[] = {"metrics.jsonl", "sft_metrics.jsonl"};
    int same = 1;
    for (int k = 0; k < 2; k++) {
        char pa[512], pb[512], **a, **b;
        snprintf(pa, sizeof pa, "%s/%s", ref, logs[k]);
        snprintf(pb, sizeof pb, "%s/%s", dir, logs[k]);
        int na = read_lines(pa, &a), nb = read_lines(pb, &b);
        if (na != nb || na <= 0) same = 0, printf("%s: %d lines, reference %d\n", pb, nb, na);
        for (int i = 0; i < na && i < nb; i++)
            if (strcmp(a[i], b[i])) {
                if (same) printf("%s line %d differs:\n  %s\n  %s\n", pb, i + 1, a[i], b[i]);
                same = 0;
            }
        for (int i = 0; i < na; i++) free(a[i]);
        for (int i = 0; i < nb; i++) free(b[i]);
        free(a), free(b);
    }
    long rows[2] = {-1, -1};
    const char *dirs[2] = {ref, dir};
    for (int k = 0; k < 2; k++) {
        char p[512];
        snprintf(p, sizeof p, "%s/samples.h5", dirs[k]);
        samples_writer_t *w = samples_open(p, 1);
        if (w) rows[k] = samples_count(w), samples_close(w);
    }
    if (rows[0] != rows[1] || rows[0] <= 0) same = 0, printf("%s: %ld sample rows, reference %ld\n", dir, rows[1], rows[0]);
    return same;
}

static int count_substr(const char *path, const char *needle) {
    char *t = cispo_read_file(path, NULL);
    int n = 0;
    for (char *p = t; p && (p = strstr(p, needle)); p++) n++;
    free(t);
    return n;
}

// Disk full during a checkpoint write: the previous checkpoint stays loadable and nothing half-written remains.
static void disk_full(const char *dir) {
    model_config_t cfg;
    if (!test_check(model_config_load(&cfg, "configs/models/tiny.yaml") == 0, "tiny config: %s", cispo_last_error()))
        return;
    param_table_t t;
    param_table_build(&t, &cfg);
    float *p = cispo_malloc(sizeof(float) * t.n_floats);
    param_init_hf(p, &t, &cfg, 1);
    char path[256];
    snprintf(path, sizeof path, "%s/ckpt-000001.h5", dir);
    uint64_t rng[4] = {1, 2, 3, 4};
    test_check(checkpoint_save(path, &cfg, &t, p, p, p, 1, rng, 4, "{}") == 0, "first checkpoint");
    pid_t pid = fork();
    if (pid == 0) {
        signal(SIGXFSZ, SIG_IGN);  // a write past the limit fails with EFBIG, as on a full disk
        struct rlimit rl = {64 << 10, 64 << 10};
        setrlimit(RLIMIT_FSIZE, &rl);
        for (size_t i = 0; i < t.n_floats; i++) p[i] += 1;
        int rc = checkpoint_save(path, &cfg, &t, p, p, p, 2, rng, 4, "{}");
        printf("disk full: %s\n", rc ? cispo_last_error() : "saved?");
        _exit(rc ? 0 : 1);
    }
    test_check(wait_rc(pid) == 0, "a checkpoint write past the file-size limit fails with a message");
    checkpoint_t ck;
    int ok = checkpoint_load(path, &ck) == 0;
    test_check(ok && ck.step == 1 && ck.params[0] == p[0], "the previous checkpoint is intact after the failed write");
    if (ok) checkpoint_free(&ck);
    char tmp[300];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    test_check(access(tmp, F_OK) != 0, "no half-written file left");
    free(p);
    param_table_free(&t);
}

int main(void) {
    if (!test_check(getenv("CISPO_BIN") != NULL, "CISPO_BIN is set (run through ctest)")) return test_finish("test_fault");
    char dir[] = "/tmp/cispo_test_fault_XXXXXX", ref[96], out[128];
    if (!test_check(mkdtemp(dir) != NULL, "temporary directory")) return test_finish("test_fault");
    snprintf(data, sizeof data, "%s/prompts.jsonl", dir);
    FILE *f = fopen(data, "w");
    for (int i = 0; i < 40; i++)
        fprintf(f, "{\"prompt\": \"Say %d.\", \"verifier\": \"regex\", \"answer\": \"[0-9e]\", \"response\": \"%d\"}\n", i, i);
    fclose(f);
    disk_full(dir);

    snprintf(ref, sizeof ref, "%s/ref", dir);
    double t0 = now();
    if (!test_check(wait_rc(start(ref, "")) == 0, "uninterrupted reference run")) return test_finish("test_fault");
    double t_run = now() - t0;
    printf("reference run: %.2f s\n", t_run);

    // ---- kill -9 at random moments ----
    int rounds = getenv("CISPO_FAULT_KILLS") ? atoi(getenv("CISPO_FAULT_KILLS")) : 20;
    uint64_t seed = (uint64_t)time(NULL);
    printf("kill seed %llu\n", (unsigned long long)seed);
    int kills = 0, identical = 0, r = 0;
    for (; r < rounds; r++) {
        snprintf(out, sizeof out, "%s/k%d", dir, r);
        int done = 0, launches = 0, killed = 0;
        // a kill, then continue with resume=auto until the run finishes; a second kill in half the rounds
        int kills_here = 1 + (r % 2);
        while (!done && launches < 12) {
            pid_t pid = start(out, "resume=auto");
            launches++;
            if (kills_here > 0) {
                // the first kill lands within the reference run's time; a run that finished first is started afresh
                usleep((useconds_t)(test_uniform(&seed, 0.02, killed ? 0.9 : 0.7) * t_run * 1e6));
                kill(-pid, SIGKILL);
                int rc = wait_rc(pid);
                if (rc == 0 && !killed) {
                    char p[256];
                    snprintf(p, sizeof p, "rm -rf '%s'", out);
                    if (system(p)) {}
                } else if (rc == 0) {
                    done = 1;  // it finished before the second kill
                } else {
                    kills++, kills_here--, killed++;
                }
            } else {
                int rc = wait_rc(pid);
                done = rc == 0;
                if (!done) {
                    char p[256];
                    snprintf(p, sizeof p, "cat %s.log", out);
                    if (system(p)) {}
                    break;
                }
            }
        }
        int same = done && killed && same_as_reference(ref, out);
        identical += same;
        test_check(same, "round %d: killed and resumed (%d launches) to the reference metrics", r, launches);
    }
    printf("%d kill -9 rounds (%d kills): %d resumed to identical metrics\n", r, kills, identical);
    test_check(identical == rounds, "every killed run resumed to the uninterrupted run's metrics");

    // ---- SIGINT, SIGTERM, and a second signal ----
    const int sigs[3] = {SIGINT, SIGTERM, SIGINT};
    for (int k = 0; k < 3; k++) {
        snprintf(out, sizeof out, "%s/sig%d", dir, k);
        pid_t pid = start(out, "");
        // once the first checkpoint exists the run has its handler (installed before its setup) and is in its
        // steps; a signal during startup would meet the default action, which is not what is tested here
        char first[1200];
        snprintf(first, sizeof first, "%s/ckpt-%06d.h5", out, 1);
        struct stat stf;
        for (double t0s = now(); stat(first, &stf) != 0 && now() - t0s < 60;) usleep(2000);
        kill(-pid, sigs[k]);
        if (k == 2) usleep(1000), kill(-pid, SIGINT);  // well inside the step the first one lets finish
        int rc = wait_rc(pid);
        char log[160];
        snprintf(log, sizeof log, "%s.log", out);
        if (rc == 0) {
            printf("signal %d arrived after the run ended; not tested this time\n", k);
            continue;
        }
        test_check(rc == 128 + sigs[k], "signal %d: exit status %d (want %d)", k, rc, 128 + sigs[k]);
        if (k < 2)
            test_check(count_substr(log, "resume=auto") == 1 && count_substr(log, "written. Continue with: cispo train") == 1,
                       "signal %d: the message says where the checkpoint is and how to continue", k);
        else if (count_substr(log, "exiting now") == 0 && count_substr(log, "written. Continue with: cispo train") == 1)
            printf("the first signal's checkpoint was written before the second arrived; not tested this time\n");
        else
            test_check(count_substr(log, "exiting now") == 1, "a second signal exits at once");
        test_check(wait_rc(start(out, "resume=auto")) == 0 && same_as_reference(ref, out),
                   "signal %d: resumed to the reference metrics", k);
    }
    printf("total %.1f s\n", now() - t0);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (test_failures == 0 && system(cmd)) {}
    return test_finish("test_fault");
}
