// trainer/run_dir.c — claiming a run directory, the resumed configuration check, checkpoint listing,
// and the stop signals (run_dir.h).
// defines: run_dir_claim, run_dir_check_config, run_dir_checkpoints, run_dir_ckpt_path, run_dir_clear,
//          run_dir_set_command, run_dir_record_launch, run_stop_install, run_stop_requested, run_stop_restore
#include "trainer/run_dir.h"

#include <cjson/cJSON.h>
#include <dirent.h>
#include <limits.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "base/buf.h"
#include "base/common.h"
#include "trainer/paths.h"

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
                                        "samples.h5.tmp", "report.html", "ckpt-best.h5", "best.json", "runs.jsonl",
                                        NULL};

static int is_run_file(const char *name) {
    for (int i = 0; run_files[i]; i++)
        if (!strcmp(name, run_files[i])) return 1;
    long s;
    char tail[8];
    // ckpt-<step>.h5 and its shards (ckpt-<step>.shard-<k>-of-<n>.h5), and the shards of ckpt-best.h5
    return sscanf(name, "ckpt-%ld.%7s", &s, tail) == 2 || !strncmp(name, "ckpt-best.shard-", 16);
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

// Keys that may differ when a run is resumed: where and how it is written and watched, not what it computes
// (ep splits the experts over the ranks as their number does: results change only in fp32 summation order).
static const char *const free_keys[] = {"out", "resume", "halt_after", "quiet", "report", "save_every", "save_minutes",
                                        "keep_checkpoints", "reward_workers", "overwrite", "allow_config_change",
                                        "samples", "max_verifier_failed", "ep", "memory_check", "dry_run", NULL};

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

// ---- the launch record ----

static char *launch_command, *launch_overrides;

// An argument as a shell reads it back: bare when it is plain, else in single quotes.
static void shell_word(buf_t *b, const char *a) {
    int plain = a[0] != 0;
    for (const char *c = a; *c && plain; c++) plain = strchr("/._-=+,:@%", *c) || (*c >= '0' && *c <= '9') ||
                                                      (*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z');
    if (plain) {
        buf_append(b, a, strlen(a));
        return;
    }
    buf_append(b, "'", 1);
    for (const char *c = a; *c; c++)
        if (*c == '\'') buf_append(b, "'\\''", 4);
        else buf_append(b, c, 1);
    buf_append(b, "'", 1);
}

void run_dir_set_command(int argc, char **argv) {
    buf_t cmd, ov;
    buf_init(&cmd), buf_init(&ov);
    buf_append(&cmd, "cispo", 5);
    for (int i = 0; i < argc; i++) {
        buf_append(&cmd, " ", 1);
        shell_word(&cmd, argv[i]);
        // the options: every argument after the subcommand but a bare one (the config file)
        size_t name = strspn(argv[i], "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-");
        int option = i > 0 && (argv[i][0] == '-' || (name > 0 && argv[i][name] == '=') ||
                               (i > 1 && argv[i - 1][0] == '-' && argv[i - 1][1] == '-' && !strchr(argv[i - 1], '=')));
        if (option) {
            if (ov.n) buf_append(&ov, " ", 1);
            shell_word(&ov, argv[i]);
        }
    }
    free(launch_command), free(launch_overrides);
    launch_command = buf_take(&cmd, NULL);
    launch_overrides = buf_take(&ov, NULL);
}

// The source tree's commit when cispo runs from a git checkout ("" otherwise).
static void source_commit(char *out, size_t cap) {
    char root[PATH_MAX], git[PATH_MAX + 8], cmd[2 * PATH_MAX + 128];
    out[0] = 0;
    if (paths_find_root(root, sizeof root)) return;
    snprintf(git, sizeof git, "%s/.git", root);
    if (access(git, F_OK)) return;
    snprintf(cmd, sizeof cmd, "git -C '%s' rev-parse HEAD 2>/dev/null", root);
    FILE *p = popen(cmd, "r");
    if (!p) return;
    if (!fgets(out, (int)cap, p)) out[0] = 0;
    pclose(p);
    out[strcspn(out, "\n")] = 0;
    snprintf(cmd, sizeof cmd, "git -C '%s' status --porcelain --untracked-files=no 2>/dev/null", root);
    char line[16];
    if (out[0] && (p = popen(cmd, "r"))) {
        if (fgets(line, sizeof line, p)) strncat(out, " + uncommitted changes", cap - strlen(out) - 1);
        pclose(p);
    }
}

int run_dir_record_launch(const run_config_t *c, const char *config_path, const char *resumed_from) {
    char when[64], host[256] = "", cwd[PATH_MAX] = "", commit[256], config[PATH_MAX] = "", path[1100];
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", &tm);
    gethostname(host, sizeof host - 1);
    if (!getcwd(cwd, sizeof cwd)) cwd[0] = 0;
    if (config_path && !realpath(config_path, config)) snprintf(config, sizeof config, "%s", config_path);
    source_commit(commit, sizeof commit);
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "start", when);
    cJSON_AddStringToObject(o, "command", launch_command ? launch_command : "");
    cJSON_AddStringToObject(o, "overrides", launch_overrides ? launch_overrides : "");
    cJSON_AddStringToObject(o, "config", config);
    cJSON_AddStringToObject(o, "cwd", cwd);
    cJSON_AddStringToObject(o, "host", host);
    cJSON_AddStringToObject(o, "commit", commit);
    cJSON_AddStringToObject(o, "resumed_from", resumed_from ? resumed_from : "");
    char *line = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    snprintf(path, sizeof path, "%s/runs.jsonl", c->out);
    FILE *f = fopen(path, "a");
    int rc = 0;
    if (f) {
        fprintf(f, "%s\n", line);
        rc = ferror(f);
        rc |= fclose(f);
    }
    if (!f || rc) rc = cispo_fail("cannot write %s: %s", path, strerror(errno));
    cJSON_free(line);
    return rc;
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
