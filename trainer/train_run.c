// trainer/train_run.c — a whole run: run directory (resolved config, metrics.jsonl, sft_metrics.jsonl,
// TensorBoard events under tb/, rollout samples, checkpoints, report.html), the SFT warm start,
// held-out accuracy before RL, the RL steps with a console line each, held-out accuracy after RL.
// Resuming restores parameters, moments, counters and data cursors, and cuts the logs back to the
// checkpoint's step, so the continued run writes what an uninterrupted run would have.
// Data parallel (world > 1, trainer/dist.h): every rank runs the loop with the same data cursors and
// global metrics; only rank 0 writes the run directory (metrics, TensorBoard, samples of its own slice,
// checkpoints, report) and prints; the others stay quiet. At the end the ranks check that they hold the
// same parameters. A checkpoint is the full state, so a run resumes with any number of ranks.
// defines: train_run, train_latest_checkpoint
#include <cjson/cJSON.h>
#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/buf.h"
#include "base/common.h"
#include "trainer/checkpoint.h"
#include "trainer/dist.h"
#include "trainer/report.h"
#include "trainer/train.h"

static int mkdir_p(const char *path) {
    char tmp[1024];
    snprintf(tmp, sizeof tmp, "%s", path);
    for (char *p = tmp + 1; *p; p++)
        if (*p == '/') {
            *p = 0;
            if (mkdir(tmp, 0755) && errno != EEXIST) return cispo_fail("cannot create %s: %s", tmp, strerror(errno));
            *p = '/';
        }
    if (mkdir(tmp, 0755) && errno != EEXIST) return cispo_fail("cannot create %s: %s", tmp, strerror(errno));
    return 0;
}

// Steps of the checkpoints out/ckpt-<step>.h5, ascending; returns how many (*steps malloc'ed).
static int list_checkpoints(const char *out, long **steps) {
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

static void ckpt_path(char *buf, size_t cap, const char *out, long step) {
    snprintf(buf, cap, "%s/ckpt-%06ld.h5", out, step);
}

int train_latest_checkpoint(const char *out, char *path, size_t cap) {
    long *steps;
    int n = list_checkpoints(out, &steps);
    if (n > 0) ckpt_path(path, cap, out, steps[n - 1]);
    free(steps);
    return n > 0 ? 0 : cispo_fail("resume=auto: no checkpoint (ckpt-<step>.h5) in %s", out);
}

static int save_checkpoint(train_t *t) {
    if (dist_world()->rank != 0) return 0;
    char path[1100];
    long step = t->sft_done + t->rl_done;
    ckpt_path(path, sizeof path, t->cfg.out, step);
    if (train_save(t, path)) return -1;
    long *steps;
    int n = list_checkpoints(t->cfg.out, &steps);
    for (int i = 0; t->cfg.keep_checkpoints > 0 && i < n - t->cfg.keep_checkpoints; i++) {
        ckpt_path(path, sizeof path, t->cfg.out, steps[i]);
        unlink(path);
    }
    free(steps);
    return 0;
}

// Keeps the lines of a JSONL log whose "step" is <= last (a resumed run rewrites the rest).
static int truncate_log(const char *path, int last) {
    char *text = cispo_read_file(path, NULL);
    if (!text) return 0;  // no log yet
    char tmp[1100];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    FILE *f = fopen(tmp, "w");
    if (!f) return free(text), cispo_fail("cannot write %s: %s", tmp, strerror(errno));
    for (char *p = text, *nl; *p; p = nl ? nl + 1 : p + strlen(p)) {
        nl = strchr(p, '\n');
        if (nl) *nl = 0;
        int step;
        if (sscanf(p, "{\"step\": %d", &step) == 1 && step <= last) fprintf(f, "%s\n", p);
    }
    free(text);
    if (fclose(f) || rename(tmp, path)) return cispo_fail("cannot rewrite %s: %s", path, strerror(errno));
    return 0;
}

static int resume(train_t *t, const char *spec) {
    char path[1100];
    if (!strcmp(spec, "auto")) {
        if (train_latest_checkpoint(t->cfg.out, path, sizeof path)) return -1;
    } else {
        snprintf(path, sizeof path, "%s", spec);
    }
    checkpoint_t ck;
    if (checkpoint_load(path, &ck)) return -1;
    int rc = 0;
    cJSON *x = ck.extra_json ? cJSON_Parse(ck.extra_json) : NULL;
    const char *need[] = {"sft_done", "rl_done", "opt_phase", "opt_t"};
    int have = x != NULL;
    for (int i = 0; i < 4 && have; i++) have = cJSON_IsNumber(cJSON_GetObjectItem(x, need[i]));
    if (ck.table.n_floats != t->m->table.n_floats || !have || ck.n_rng != 4) {
        rc = cispo_fail("%s: not a checkpoint of this run's model and trainer (different model config, or no "
                        "run state): resume from a ckpt-<step>.h5 that `cispo train` wrote for this config", path);
    } else {
        train_upload(t, t->m->params, ck.params, ck.table.n_floats);
        model_sync_weights(t->m);
        t->sft_done = cJSON_GetObjectItem(x, "sft_done")->valueint;
        t->rl_done = cJSON_GetObjectItem(x, "rl_done")->valueint;
        int phase = cJSON_GetObjectItem(x, "opt_phase")->valueint;
        const cJSON *hb = cJSON_GetObjectItem(x, "heldout_before");
        t->heldout_before = hb ? hb->valuedouble : NAN;
        if (phase) {
            train_use_optimizer(t, phase);
            if (!ck.m) rc = cispo_fail("%s: no optimizer moments in the checkpoint", path);
            else {
                train_upload(t, t->opt.m, ck.m, ck.table.n_floats);
                train_upload(t, t->opt.v, ck.v, ck.table.n_floats);
                t->opt.t = cJSON_GetObjectItem(x, "opt_t")->valueint;
            }
        }
        t->sft_data = (data_cursor_t){ck.rng[0], ck.rng[1]};
        t->rl_data = (data_cursor_t){ck.rng[2], ck.rng[3]};
        if (!rc && dist_world()->rank == 0) printf("resumed from %s: SFT step %d, RL step %d\n", path, t->sft_done, t->rl_done);
    }
    cJSON_Delete(x);
    checkpoint_free(&ck);
    return rc;
}

static void fmt_duration(char *buf, size_t cap, double s) {
    if (!isfinite(s) || s < 0) s = 0;
    long v = (long)(s + 0.5);
    if (v >= 3600) snprintf(buf, cap, "%ldh%02ldm", v / 3600, v / 60 % 60);
    else snprintf(buf, cap, "%ldm%02lds", v / 60, v % 60);
}

static void console_rl(const train_t *t, const metrics_t *mt) {
    char eta[32];
    fmt_duration(eta, sizeof eta, metrics_get(mt, "eta_s", 0));
    printf("step %4d/%d | reward %.3f | acc %5.1f%% | len %5.1f | clip %5.2f%% | %7.0f tok/s | %.2f s | ETA %s",
           t->rl_done, t->cfg.steps, metrics_get(mt, "reward_mean", 0), 100 * metrics_get(mt, "accuracy", 0),
           metrics_get(mt, "response_len_mean", 0), 100 * metrics_get(mt, "clip_frac", 0),
           metrics_get(mt, "rollout_tok_per_s", 0), metrics_get(mt, "time_step_s", 0), eta);
    double h = metrics_get(mt, "heldout_accuracy", NAN);
    if (isfinite(h)) printf(" | held-out %.1f%%", 100 * h);
    printf("\n");
    fflush(stdout);
}

static int open_outputs(train_t *t, int resumed) {
    const run_config_t *c = &t->cfg;
    if (dist_world()->rank != 0) return 0;
    char path[1100];
    snprintf(path, sizeof path, "%s/config.yaml", c->out);
    FILE *f = fopen(path, "w");
    if (!f) return cispo_fail("cannot write %s: %s", path, strerror(errno));
    fprintf(f, "# resolved configuration of this run (every key; `cispo train %s` repeats it)\n", path);
    keyconf_dump(f, c, run_config_keys, run_config_n_keys);
    fclose(f);
    snprintf(path, sizeof path, "%s/metrics.jsonl", c->out);
    if (resumed && truncate_log(path, t->rl_done)) return -1;
    if (!(t->metrics = fopen(path, resumed ? "a" : "w"))) return cispo_fail("cannot write %s: %s", path, strerror(errno));
    snprintf(path, sizeof path, "%s/sft_metrics.jsonl", c->out);
    if (resumed && truncate_log(path, t->sft_done)) return -1;
    if (!(t->sft_metrics = fopen(path, resumed ? "a" : "w"))) return cispo_fail("cannot write %s: %s", path, strerror(errno));
    snprintf(path, sizeof path, "%s/tb", c->out);
    if (mkdir_p(path) || tblog_open(&t->tb, path)) return -1;
    if (c->samples) {
        snprintf(path, sizeof path, "%s/samples.h5", c->out);
        if (!(t->samples = samples_open(path, resumed))) return -1;
        if (resumed && samples_truncate_after(t->samples, t->rl_done)) return -1;
    }
    return 0;
}

static void close_outputs(train_t *t) {
    if (t->metrics) fclose(t->metrics);
    if (t->sft_metrics) fclose(t->sft_metrics);
    if (t->tb.f) tblog_close(&t->tb);
    if (t->samples) samples_close(t->samples);
    t->metrics = t->sft_metrics = NULL;
    t->samples = NULL;
}

// halt_after: the run stops here as if preempted (a checkpoint follows; resume=auto continues).
static int halted(train_t *t) {
    if (t->cfg.halt_after <= 0 || t->sft_done + t->rl_done < t->cfg.halt_after) return 0;
    if (dist_world()->rank == 0) printf("halted after step %d (halt_after); continue with resume=auto\n", t->sft_done + t->rl_done);
    return 1;
}

// Writes a metrics line on rank 0 (the only rank with the files open).
static void log_metrics(train_t *t, FILE *f, const char *prefix, int step, const metrics_t *mt) {
    if (!f) return;
    metrics_write_jsonl(f, step, mt);
    metrics_write_tb(&t->tb, prefix, step, mt);
}

// world > 1: every rank must hold rank 0's parameters bit for bit (the same global gradients and AdamW
// steps); a difference is a bug, reported rather than written into checkpoints silently.
static int check_ranks_agree(train_t *t) {
    dist_t *dw = dist_world();
    if (dw->world == 1) return 0;
    size_t n = t->m->table.n_floats;
    float *p0 = cispo_malloc(sizeof(float) * n), *mine = cispo_malloc(sizeof(float) * n);
    train_download(t, mine, t->m->params, n);
    memcpy(p0, mine, sizeof(float) * n);
    double diff = 0;
    if (dist_broadcast_f32(dw, p0, n, 0)) return free(p0), free(mine), -1;
    for (size_t i = 0; i < n; i++) diff += memcmp(&p0[i], &mine[i], sizeof(float)) != 0;
    free(p0);
    free(mine);
    if (dist_allreduce_sum_f64(dw, &diff, 1)) return -1;
    if (diff > 0) return cispo_fail("data parallel: %.0f parameters differ from rank 0's after training", diff);
    if (dw->rank == 0) printf("parameters identical on all %d ranks\n", dw->world);
    return 0;
}

static int run(train_t *t, const char *config_path, double *before, double *after) {
    const run_config_t *c = &t->cfg;
    metrics_t mt;
    const int rank0 = dist_world()->rank == 0;
    if (rank0 && mkdir_p(c->out)) return -1;
    int resumed = c->resume[0] != 0;
    if (resumed && resume(t, c->resume)) return -1;
    if (open_outputs(t, resumed)) return -1;
    t->t_start = cispo_now();
    // ---- SFT warm start ----
    if (rank0 && t->sft_done < c->sft_steps) printf("SFT: %d updates of %d demonstrations\n", c->sft_steps, c->sft_batch);
    int sft_first = t->sft_done;
    while (t->sft_done < c->sft_steps) {
        if (train_sft_step(t, &mt)) return -1;
        log_metrics(t, t->sft_metrics, "sft", t->sft_done, &mt);
        int every = c->sft_steps >= 20 ? c->sft_steps / 10 : 1;
        if (rank0 && !c->quiet && (t->sft_done % every == 0 || t->sft_done == c->sft_steps)) {
            char eta[32];
            double per = (cispo_now() - t->t_start) / (t->sft_done - sft_first);
            fmt_duration(eta, sizeof eta, per * (c->sft_steps - t->sft_done));
            printf("sft %4d/%d | loss %.4f | grad %.3f | lr %.2e | %7.0f tok/s | ETA %s\n", t->sft_done, c->sft_steps,
                   metrics_get(&mt, "loss", 0), metrics_get(&mt, "grad_norm", 0), metrics_get(&mt, "lr", 0),
                   metrics_get(&mt, "train_tok_per_s", 0), eta);
            fflush(stdout);
        }
        if (c->save_every > 0 && (t->sft_done + t->rl_done) % c->save_every == 0 && save_checkpoint(t)) return -1;
        if (halted(t)) return save_checkpoint(t);
    }
    // ---- held-out accuracy before RL ----
    if (!isfinite(t->heldout_before)) {
        double acc, len;
        if (train_evaluate(t, &acc, &len)) return -1;
        t->heldout_before = acc;
        metrics_clear(&mt);
        metrics_set(&mt, "heldout_accuracy", acc);
        metrics_set(&mt, "heldout_len_mean", len);
        log_metrics(t, t->metrics, "rl", 0, &mt);
        if (rank0)
            printf("held-out accuracy before RL: %.1f%% (%d problems, %s)\n", 100 * acc, t->eval.n,
                   c->eval_greedy ? "greedy" : "sampled");
        fflush(stdout);
    }
    // ---- RL ----
    if (rank0 && t->rl_done < c->steps)
        printf("RL (%s): %d steps of %d prompts x %d samples, %d updates each\n", loss_kind_name(c->loss), c->steps,
               c->prompts_per_step, c->group_size, c->minibatches);
    double rl_t0 = cispo_now();
    int rl_first = t->rl_done;
    double last_eval = t->heldout_before;
    while (t->rl_done < c->steps) {
        if (train_rl_step(t, &mt)) return -1;
        int s = t->rl_done;
        if (s == c->steps || (c->eval_every > 0 && s % c->eval_every == 0)) {
            double acc, len;
            if (train_evaluate(t, &acc, &len)) return -1;
            metrics_set(&mt, "heldout_accuracy", acc);
            metrics_set(&mt, "heldout_len_mean", len);
            last_eval = acc;
        }
        metrics_set(&mt, "eta_s", (cispo_now() - rl_t0) / (s - rl_first) * (c->steps - s));
        log_metrics(t, t->metrics, "rl", s, &mt);
        if (rank0 && !c->quiet) console_rl(t, &mt);
        if (c->save_every > 0 && (t->sft_done + s) % c->save_every == 0 && save_checkpoint(t)) return -1;
        if (halted(t)) return save_checkpoint(t);
    }
    if (!resumed || c->steps > rl_first || c->sft_steps > sft_first)
        if (save_checkpoint(t)) return -1;
    if (check_ranks_agree(t)) return -1;
    if (rank0)
        printf("held-out accuracy before RL: %.1f%%, after RL: %.1f%%\n", 100 * t->heldout_before, 100 * last_eval);
    if (before) *before = t->heldout_before;
    if (after) *after = last_eval;
    close_outputs(t);
    if (rank0 && c->report) {
        char title[1200];
        snprintf(title, sizeof title, "%s (%s)", config_path ? config_path : c->out, loss_kind_name(c->loss));
        if (report_write(c->out, title)) return -1;
        printf("report: %s/report.html\n", c->out);
    }
    return 0;
}

int train_run(const run_config_t *cfg, const char *config_path, double *before, double *after) {
    train_t t;
    int rc = train_open(&t, cfg);
    if (!rc) rc = run(&t, config_path, before, after);
    close_outputs(&t);
    train_close(&t);
    return rc;
}
