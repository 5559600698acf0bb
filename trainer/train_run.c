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
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/buf.h"
#include "base/common.h"
#include "model/moe_ep.h"
#include "trainer/checkpoint.h"
#include "trainer/dist.h"
#include "trainer/report.h"
#include "trainer/run_dir.h"
#include "trainer/train.h"

int train_latest_checkpoint(const char *out, char *path, size_t cap) {
    long *steps;
    int n = run_dir_checkpoints(out, &steps);
    if (n > 0) run_dir_ckpt_path(path, cap, out, steps[n - 1]);
    free(steps);
    return n > 0 ? 0 : cispo_fail("no checkpoint (ckpt-<step>.h5) in %s", out);
}

// The samples of the steps done so far made durable: before any checkpoint, so that a checkpoint of step
// s always has the samples of step s (a resume truncates to the checkpoint and never re-creates them).
static void commit_samples(train_t *t) {
    if (t->samples && samples_commit(t->samples)) {
        fprintf(stderr, "cispo: %s (samples no longer written)\n", cispo_last_error());
        samples_close(t->samples);
        t->samples = NULL;
    }
}

static double last_save_time;
static long last_saved_step = -1;

// A checkpoint of the current step, then rotation: of the steps up to this one the keep_checkpoints
// newest stay (a newer step, left by another run, is never deleted; ckpt-best.h5 is a link of its own).
// Every rank comes here together: under ZeRO-1 each sends rank 0 its shard of the moments.
static int save_checkpoint(train_t *t) {
    long step = t->sft_done + t->rl_done;
    last_save_time = cispo_now();
    if (step == last_saved_step) return 0;
    char path[1100];
    run_dir_ckpt_path(path, sizeof path, t->cfg.out, step);
    if (dist_world()->rank != 0) {
        last_saved_step = step;
        return train_save(t, path);
    }
    commit_samples(t);
    if (t->metrics) fflush(t->metrics), fflush(t->sft_metrics);
    if (train_save(t, path)) return -1;
    last_saved_step = step;
    long *steps;
    int n = run_dir_checkpoints(t->cfg.out, &steps), upto = 0;
    while (upto < n && steps[upto] <= step) upto++;
    for (int i = 0; t->cfg.keep_checkpoints > 0 && i < upto - t->cfg.keep_checkpoints; i++) {
        run_dir_ckpt_path(path, sizeof path, t->cfg.out, steps[i]);
        checkpoint_remove(path);  // the index first, then its shards
    }
    free(steps);
    return 0;
}

// Held-out accuracy acc at this step is the best so far: its checkpoint is linked as ckpt-best.h5
// (and best.json says which step and accuracy), written beside and renamed over.
static double best_heldout = -1;
static int save_best(train_t *t, double acc) {
    if (acc <= best_heldout) return 0;
    best_heldout = acc;
    if (save_checkpoint(t)) return -1;
    if (dist_world()->rank != 0) return 0;
    char src[1100], tmp[1100], dst[1100];
    long step = t->sft_done + t->rl_done;
    run_dir_ckpt_path(src, sizeof src, t->cfg.out, step);
    snprintf(dst, sizeof dst, "%s/ckpt-best.h5", t->cfg.out);
    if (checkpoint_link(src, dst)) return -1;  // a sharded checkpoint's shards too
    snprintf(tmp, sizeof tmp, "%s/best.json.tmp", t->cfg.out);
    snprintf(dst, sizeof dst, "%s/best.json", t->cfg.out);
    FILE *f = fopen(tmp, "w");
    if (!f) return cispo_fail("cannot write %s: %s", tmp, strerror(errno));
    fprintf(f, "{\"step\": %ld, \"rl_step\": %d, \"heldout_accuracy\": %.17g}\n", step, t->rl_done, acc);
    if (fclose(f) || rename(tmp, dst)) return cispo_fail("cannot write %s: %s", dst, strerror(errno));
    return 0;
}

// The best held-out accuracy of the run so far (best.json), when it was reached at or before step.
static void load_best(const char *out, int rl_step) {
    char path[1100];
    snprintf(path, sizeof path, "%s/best.json", out);
    char *text = cispo_read_file(path, NULL);
    cJSON *o = text ? cJSON_Parse(text) : NULL;
    const cJSON *s = cJSON_GetObjectItem(o, "rl_step"), *a = cJSON_GetObjectItem(o, "heldout_accuracy");
    best_heldout = -1;
    if (cJSON_IsNumber(s) && cJSON_IsNumber(a) && s->valueint <= rl_step) best_heldout = a->valuedouble;
    cJSON_Delete(o);
    free(text);
}

// Keeps the complete lines of a JSONL log whose "step" is <= last (a resumed run rewrites the rest; a
// line cut short by a kill is dropped).
static int truncate_log(const char *path, int last) {
    char *text = cispo_read_file(path, NULL);
    if (!text) return 0;  // no log yet
    char tmp[1100];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    FILE *f = fopen(tmp, "w");
    if (!f) return free(text), cispo_fail("cannot write %s: %s", tmp, strerror(errno));
    for (char *p = text, *nl; *p; p = nl ? nl + 1 : p + strlen(p)) {
        nl = strchr(p, '\n');
        if (!nl) break;  // no newline: the write was cut short
        *nl = 0;
        int step;
        if (sscanf(p, "{\"step\": %d", &step) == 1 && step <= last && nl > p && nl[-1] == '}') fprintf(f, "%s\n", p);
    }
    free(text);
    if (fclose(f) || rename(tmp, path)) return cispo_fail("cannot rewrite %s: %s", path, strerror(errno));
    return 0;
}

// The TensorBoard events of a resumed run: the old event files go and one file is written again from
// the (cut back) JSONL logs, so no step appears twice and files do not pile up.
static void replay_log_tb(tblog_t *tb, const char *path, const char *prefix) {
    char *text = cispo_read_file(path, NULL);
    for (char *p = text, *nl; p && *p; p = nl + 1) {
        nl = strchr(p, '\n');
        if (!nl) break;
        *nl = 0;
        cJSON *o = cJSON_Parse(p);
        const cJSON *st = cJSON_GetObjectItem(o, "step");
        if (cJSON_IsNumber(st)) {
            metrics_t mt;
            metrics_clear(&mt);
            for (const cJSON *it = o->child; it; it = it->next)
                if (cJSON_IsNumber(it) && strcmp(it->string, "step")) metrics_set(&mt, it->string, it->valuedouble);
            metrics_write_tb(tb, prefix, st->valueint, &mt);
        }
        cJSON_Delete(o);
    }
    free(text);
}

static int resume(train_t *t, const char *path) {
    checkpoint_t ck;
    const moe_ep_comm_t *ec = moe_ep_comm(t->m);  // expert parallelism: this rank's experts only
    if (checkpoint_load_ep(path, ec ? ec->size : 1, ec ? ec->rank : 0, &ck)) return -1;
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
                optim_load_moments(&t->opt, ck.m, ck.v);  // this rank's shard under ZeRO-1, whatever the saving world
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
    char path[1100], log[1100], sft_log[1100];
    snprintf(path, sizeof path, "%s/config.yaml.tmp", c->out);
    FILE *f = fopen(path, "w");
    if (!f) return cispo_fail("cannot write %s: %s", path, strerror(errno));
    fprintf(f, "# resolved configuration of this run (every key; `cispo train %s/config.yaml` repeats it, with\n"
               "# resume=auto it continues it)\n", c->out);
    keyconf_dump(f, c, run_config_keys, run_config_n_keys);
    char dst[1100];
    snprintf(dst, sizeof dst, "%s/config.yaml", c->out);
    if (fclose(f) || rename(path, dst)) return cispo_fail("cannot write %s: %s", dst, strerror(errno));
    snprintf(log, sizeof log, "%s/metrics.jsonl", c->out);
    // the held-out line of step 0 belongs to the checkpoint only when it holds heldout_before
    if (resumed && truncate_log(log, isfinite(t->heldout_before) ? t->rl_done : -1)) return -1;
    if (!(t->metrics = fopen(log, resumed ? "a" : "w"))) return cispo_fail("cannot write %s: %s", log, strerror(errno));
    snprintf(sft_log, sizeof sft_log, "%s/sft_metrics.jsonl", c->out);
    if (resumed && truncate_log(sft_log, t->sft_done)) return -1;
    if (!(t->sft_metrics = fopen(sft_log, resumed ? "a" : "w")))
        return cispo_fail("cannot write %s: %s", sft_log, strerror(errno));
    snprintf(path, sizeof path, "%s/tb", c->out);
    if (cispo_mkdir_p(path)) return -1;
    DIR *d = opendir(path);  // one events file per run: a resumed run writes its logs into a new one
    for (struct dirent *e; d && (e = readdir(d));)
        if (!strncmp(e->d_name, "events.out.tfevents.", 20)) {
            char p[1400];
            snprintf(p, sizeof p, "%s/%s", path, e->d_name);
            unlink(p);
        }
    if (d) closedir(d);
    if (tblog_open(&t->tb, path)) return -1;
    if (resumed) {
        replay_log_tb(&t->tb, sft_log, "sft");
        replay_log_tb(&t->tb, log, "rl");
        tblog_flush(&t->tb);
    }
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

// How many of n elements of es bytes differ from those of rank 0 of group g (broadcast from there).
static double differ_from_first(dist_t *g, const void *mine, size_t n, size_t es) {
    char *p0 = cispo_malloc(es * (n ? n : 1));
    memcpy(p0, mine, es * n);
    double diff = 0;
    if (dist_broadcast_bytes(g, p0, n * es, 0)) diff = (double)n + 1;
    for (size_t i = 0; i < n && diff <= (double)n; i++) diff += memcmp(p0 + i * es, (const char *)mine + i * es, es) != 0;
    free(p0);
    return diff;
}

// world > 1: every rank must hold rank 0's parameters bit for bit (the same global gradients and AdamW
// steps); a difference is a bug, reported rather than written into checkpoints silently. Under expert
// parallelism the ranks of a DP group hold the same experts (the whole buffers compare) and the ranks of an
// EP group the same dense parameters.
static int check_ranks_agree(train_t *t) {
    dist_t *dw = dist_world();
    if (dw->world == 1) return 0;
    // the weights every rank computes with (the working copy: under ZeRO-1 the fp32 master lives in shards)
    const size_t n = t->m->table.n_floats, es = t->m->esize;
    char *mine = cispo_malloc(es * n);
    backend_download(&t->be, mine, t->m->wparams, es * n);
    double diff;
    if (t->opt.ep) {
        dist_ep_t *g = t->opt.ep;
        diff = differ_from_first(&g->dp_group, mine, n, es);
        const optim_part_t *pt = &t->opt.part[0];  // the dense part, in its order
        char *dense = cispo_malloc(es * (pt->n ? pt->n : 1));
        size_t at = 0;
        for (int i = 0; i < pt->nr; at += pt->r[i].len, i++) memcpy(dense + at * es, mine + pt->r[i].off * es, pt->r[i].len * es);
        diff += differ_from_first(&g->ep_group, dense, pt->n, es);
        free(dense);
    } else if (moe_ep_comm(t->m)) {
        diff = 0;  // expert parallelism and no optimizer: nothing was updated
    } else {
        diff = differ_from_first(dw, mine, n, es);
    }
    free(mine);
    if (dist_allreduce_sum_f64(dw, &diff, 1)) return -1;
    if (diff > 0) return cispo_fail("data parallel: %.0f parameters differ from rank 0's after training", diff);
    if (dw->rank == 0) printf("parameters identical on all %d ranks\n", dw->world);
    return 0;
}

// The signal that asks the run to stop (every rank agrees: the ranks stop after the same step), or 0.
static int stop_signal_agreed(void) {
    double sig = run_stop_requested();
    dist_t *dw = dist_world();
    if (dw->world > 1 && dist_allreduce_sum_f64(dw, &sig, 1)) return 0;
    return sig > 0 ? (run_stop_requested() ? run_stop_requested() : SIGTERM) : 0;
}

// After a step: a checkpoint when save_every or save_minutes says so; a stop (signal or halt_after)
// writes one and ends the run: returns 1 (rc 0 halted, -1 interrupted + message), else 0 (rc 0) or -1.
static int after_step(train_t *t, int *rc) {
    const run_config_t *c = &t->cfg;
    long step = t->sft_done + t->rl_done;
    *rc = 0;
    commit_samples(t);
    int sig = stop_signal_agreed();
    int due = (c->save_every > 0 && step % c->save_every == 0) ||
              (c->save_minutes > 0 && cispo_now() - last_save_time >= 60 * c->save_minutes);
    if (c->save_minutes > 0 && dist_world()->world > 1) {  // the ranks' clocks decide together (a save is collective)
        double d = due;
        if (dist_allreduce_max_f64(dist_world(), &d, 1)) return *rc = -1, 1;
        due = d > 0;
    }
    int halt = !sig && halted(t);
    if ((due || sig || halt) && save_checkpoint(t)) return *rc = -1, 1;
    if (sig) {
        char ckpt[1100];
        run_dir_ckpt_path(ckpt, sizeof ckpt, c->out, step);
        *rc = cispo_fail("stopped by %s after step %ld (SFT %d, RL %d); checkpoint %s written. Continue with: cispo "
                         "train %s/config.yaml resume=auto", sig == SIGINT ? "SIGINT" : "SIGTERM", step, t->sft_done,
                         t->rl_done, ckpt, c->out);
        return 1;
    }
    return halt;
}

static int run(train_t *t, const char *config_path, const char *ckpt, double *before, double *after) {
    const run_config_t *c = &t->cfg;
    metrics_t mt;
    const int rank0 = dist_world()->rank == 0;
    int resumed = ckpt[0] != 0, rc;
    if (resumed && (run_dir_check_config(c) || resume(t, ckpt))) return -1;
    if (open_outputs(t, resumed)) return -1;
    t->t_start = last_save_time = cispo_now();
    last_saved_step = resumed ? t->sft_done + t->rl_done : -1;
    load_best(c->out, resumed ? t->rl_done : -1);
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
        if (t->metrics) fflush(t->sft_metrics);
        if (after_step(t, &rc)) return rc;
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
        int s = t->rl_done, evaluated = 0;
        if (s == c->steps || (c->eval_every > 0 && s % c->eval_every == 0)) {
            double acc, len;
            if (train_evaluate(t, &acc, &len)) return -1;
            metrics_set(&mt, "heldout_accuracy", acc);
            metrics_set(&mt, "heldout_len_mean", len);
            last_eval = acc;
            evaluated = 1;
        }
        metrics_set(&mt, "eta_s", (cispo_now() - rl_t0) / (s - rl_first) * (c->steps - s));
        log_metrics(t, t->metrics, "rl", s, &mt);
        if (t->metrics) fflush(t->metrics);
        if (rank0 && !c->quiet) console_rl(t, &mt);
        double failed = metrics_get(&mt, "verifier_failed", 0), n = metrics_get(&mt, "samples_generated", 0);
        if (c->max_verifier_failed < 1 && n > 0 && failed / n > c->max_verifier_failed) {
            const char *why = t->samples ? samples_last_failure(t->samples) : NULL;
            return cispo_fail("RL step %d: %.0f of %.0f verdicts failed (the verifier could not run), more than "
                              "max_verifier_failed=%g; first reason: %s. Fix the verifier (keys remote_reward_url, "
                              "genrm_url, genrm_model, code_sandbox_url, verifier_timeout) and continue with "
                              "resume=auto", s, failed, n, c->max_verifier_failed, why && why[0] ? why : "see samples.h5");
        }
        if (evaluated && s < c->steps && save_best(t, last_eval)) return -1;
        if (after_step(t, &rc)) return rc;
    }
    if (!resumed || c->steps > rl_first || c->sft_steps > sft_first)
        if (save_checkpoint(t) || save_best(t, last_eval)) return -1;
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
    char ckpt[1100] = "";
    const int rank0 = dist_world()->rank == 0, existed = !access(cfg->out, F_OK);
    if (cfg->dry_run) {  // everything train_open checks, and the run directory left as it is
        train_t t;
        const int rc = train_open(&t, cfg), n_train = t.train.n, n_eval = t.eval.n;
        if (rc >= 0 && rank0) printf("%s\n", t.mem_plan);
        train_close(&t);
        if (rc < 0) return -1;
        if (rank0)
            printf("dry_run: the keys, model config, tokenizer, %d training and %d held-out records, verifiers and "
                   "memory plan hold; nothing was loaded or trained, and %s was not touched\n", n_train, n_eval,
                   cfg->out);
        return 0;
    }
    if (rank0 && cispo_mkdir_p(cfg->out)) return -1;
    if (run_dir_claim(cfg, ckpt, sizeof ckpt)) return -1;
    if (rank0 && run_dir_record_launch(cfg, config_path, ckpt)) return -1;
    run_stop_install();  // before the reward workers are forked: they inherit it and leave the stop to the trainer
    train_t t;
    int rc = train_open(&t, cfg);
    // the CPU's memory plan, or what the GPU holds now that it is allocated (not in train_open: `cispo eval`'s
    // output is its JSON line alone)
    if (!rc && t.be.kind == BACKEND_CPU && rank0) printf("%s\n", t.mem_plan);
    else if (!rc) train_memory_report(&t);
    // a new run that could not start (bad data, too little memory, ...) leaves no run behind to block the next try
    if (rc && !ckpt[0] && rank0) {
        run_dir_clear(cfg->out);
        if (!existed) rmdir(cfg->out);
    }
    if (!rc) rc = run(&t, config_path, ckpt, before, after);
    close_outputs(&t);
    train_close(&t);
    run_stop_restore();
    return rc;
}
