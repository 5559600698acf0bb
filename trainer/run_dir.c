// trainer/run_dir.c — claiming a run directory, the resumed configuration check, checkpoint listing,
// and the stop signals (run_dir.h).
// defines: run_dir_claim, run_dir_check_config, run_dir_checkpoints, run_dir_ckpt_path, run_dir_clear,
//          run_stop_install, run_stop_requested, run_stop_restore
#include "trainer/run_dir.h"

#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/buf.h"
#include "base/common.h"

int run_dir_checkpoints(const char *out, long **steps) {
    DIR *d = opendir(out);
    int n = 0;
    buf_t b;  // longs, appended as bytes
    buf_init(&b);
    struct dirent *e;
    while (d && (e = readdir(d))) {
        long s;
        char tail[8];
        if (sscanf(e->d_name, "ckpt-%ld.%7s", &s, tail) == 2 && !strcmp(tail, "h5")) {
            buf_append(&b, &s, sizeof s);
            n++;
        }
    }
    if (d) closedir(d);
    *steps = (long *)(void *)buf_take(&b, NULL);
    for (int i = 1; i < n; i++)  // insertion sort: a handful of files
        for (int j = i; j > 0 && (*steps)[j - 1] > (*steps)[j]; j--) {
            long x = (*steps)[j];
            (*steps)[j] = (*steps)[j - 1], (*steps)[j - 1] = x;
        }
    return n;
}

void run_dir_ckpt_path(char *buf, size_t cap, const char *out, long step) {
    snprintf(buf, cap, "%s/ckpt-%06ld.h5", out, step);
}

// The run's own files: what run_dir_clear removes and what makes a directory "hold a run".
static const char *const run_files[] = {"config.yaml", "metrics.jsonl", "sft_metrics.jsonl", "samples.h5",
                                        "samples.h5.tmp", "report.html", "ckpt-best.h5", "best.json", NULL};

static int is_run_file(const char *name) {
    for (int i = 0; run_files[i]; i++)
        if (!strcmp(name, run_files[i])) return 1;
    long s;
    char tail[8];
    return sscanf(name, "ckpt-%ld.%7s", &s, tail) == 2;
}

// Removes the files of dir whose names start with prefix (a run's own subdirectories).
static void clear_subdir(const char *dir, const char *prefix) {
    DIR *d = opendir(dir);
    struct dirent *e;
    while (d && (e = readdir(d)))
        if (!strncmp(e->d_name, prefix, strlen(prefix))) {
            char p[2200];
            snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
            unlink(p);
        }
    if (d) closedir(d);
}

void run_dir_clear(const char *out) {
    DIR *d = opendir(out);
    struct dirent *e;
    while (d && (e = readdir(d)))
        if (is_run_file(e->d_name)) {
            char p[2200];
            snprintf(p, sizeof p, "%s/%s", out, e->d_name);
            unlink(p);
        }
    if (d) closedir(d);
    char sub[1100];
    snprintf(sub, sizeof sub, "%s/tb", out);
    clear_subdir(sub, "events.out.tfevents.");
    snprintf(sub, sizeof sub, "%s/samples", out);
    clear_subdir(sub, "step-");
}

// How many of the run's own files out holds (0: empty, missing, or only other files).
static int run_files_in(const char *out) {
    DIR *d = opendir(out);
    int n = 0;
    struct dirent *e;
    while (d && (e = readdir(d))) n += is_run_file(e->d_name);
    if (d) closedir(d);
    return n;
}

int run_dir_claim(const run_config_t *c, char *ckpt, size_t cap) {
    ckpt[0] = 0;
    long *steps;
    int n = run_dir_checkpoints(c->out, &steps);
    long latest = n ? steps[n - 1] : -1;
    free(steps);
    if (!strcmp(c->resume, "auto")) {
        if (n) return run_dir_ckpt_path(ckpt, cap, c->out, latest), 0;
        if (run_files_in(c->out)) {
            printf("resume=auto: no checkpoint in %s yet: starting the run from the beginning\n", c->out);
            run_dir_clear(c->out);
        }
        return 0;
    }
    if (c->resume[0]) return snprintf(ckpt, cap, "%s", c->resume), 0;
    if (!run_files_in(c->out)) return 0;
    if (c->overwrite) {
        printf("overwrite=true: replacing the run in %s\n", c->out);
        run_dir_clear(c->out);
        return 0;
    }
    char what[160] = "no checkpoint yet";
    if (n) snprintf(what, sizeof what, "%d checkpoint%s, the latest at step %ld", n, n > 1 ? "s" : "", latest);
    return cispo_fail("run directory %s already holds a run (%s): continue it with resume=auto, or start a new "
                      "one with out=ANOTHER_DIR (overwrite=true replaces it)", c->out, what);
}

// Keys that may differ when a run is resumed: where and how it is written and watched, not what it computes.
static const char *const free_keys[] = {"out", "resume", "halt_after", "quiet", "report", "save_every", "save_minutes",
                                        "keep_checkpoints", "reward_workers", "overwrite", "allow_config_change",
                                        "samples", "max_verifier_failed", NULL};

int run_dir_check_config(const run_config_t *c) {
    char path[1100];
    snprintf(path, sizeof path, "%s/config.yaml", c->out);
    if (access(path, R_OK)) return 0;  // resumed from a checkpoint of another directory: nothing recorded here
    run_config_t *old = cispo_calloc(1, sizeof *old);
    int rc = keyconf_defaults(old, run_config_keys, run_config_n_keys);
    if (!rc) rc = keyconf_apply_yaml(old, run_config_keys, run_config_n_keys, path);
    if (rc) {
        free(old);
        return cispo_fail("%s: cannot read the run's recorded configuration (%s)", path, cispo_last_error());
    }
    char changed[2048] = "";
    int n = 0;
    for (int i = 0; i < run_config_n_keys; i++) {
        const keyconf_key_t *k = &run_config_keys[i];
        int skip = 0;
        for (int j = 0; free_keys[j] && !skip; j++) skip = !strcmp(free_keys[j], k->name);
        if (skip) continue;
        char a[1200], b[1200];
        keyconf_format(a, sizeof a, old, k);
        keyconf_format(b, sizeof b, c, k);
        if (strcmp(a, b)) {
            size_t len = strlen(changed);
            if (len + 64 < sizeof changed)
                snprintf(changed + len, sizeof changed - len, "%s%s %.400s -> %.400s", n ? ", " : "", k->name, a, b);
            n++;
        }
    }
    free(old);
    if (!n) return 0;
    if (c->allow_config_change) {
        printf("resume: continuing with a changed configuration (allow_config_change=true): %s\n", changed);
        return 0;
    }
    return cispo_fail("resume: %d key%s differ%s from the run's configuration (%s): %s. The resumed run would "
                      "not continue the same run: put %s back, or pass allow_config_change=true",
                      n, n > 1 ? "s" : "", n > 1 ? "" : "s", path, changed, n > 1 ? "them" : "it");
}

// ---- stop signals ----

static volatile sig_atomic_t stop_signal;
static pid_t stop_owner;
static struct sigaction old_int, old_term;

static void on_stop(int sig) {
    if (getpid() != stop_owner) return;  // a forked worker: the trainer decides when it stops
    if (stop_signal) {
        static const char msg[] = "\ncispo: second signal: exiting now (checkpoints and samples already written are intact)\n";
        ssize_t w = write(2, msg, sizeof msg - 1);
        (void)w;
        _exit(128 + sig);
    }
    stop_signal = sig;
    static const char msg[] = "\ncispo: stopping after this step (a checkpoint follows; a second signal exits at once)\n";
    ssize_t w = write(2, msg, sizeof msg - 1);
    (void)w;
}

void run_stop_install(void) {
    stop_signal = 0;
    stop_owner = getpid();
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_stop;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESTART;
    sigaction(SIGINT, &sa, &old_int);
    sigaction(SIGTERM, &sa, &old_term);
}

int run_stop_requested(void) { return stop_signal; }

void run_stop_restore(void) {
    sigaction(SIGINT, &old_int, NULL);
    sigaction(SIGTERM, &old_term, NULL);
}
