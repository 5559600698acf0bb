// trainer/report.c — a run directory -> run_dir/report.html (report.h): what ran (runs.jsonl), the RL
// curves (metrics.jsonl), the SFT curves (sft_metrics.jsonl), and a few rollout samples with their
// verdicts at each evaluation step (samples/step-<NNNNNN>.h5). Each metrics line is a JSON object with
// "step" and numeric fields; a field may be absent on some steps (held-out accuracy, measured every k
// steps): its plot connects the steps that have it.
#include "trainer/report.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <hdf5.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/common.h"

#define MAX_SERIES 96
#define SAMPLES_PER_EVAL 3

typedef struct {
    char name[64];
    double *x, *y;
    int n, cap;
} series_t;

typedef struct {
    series_t s[MAX_SERIES];
    int n, rows;
} log_t;

// Plotted first, in this order, when present (first matching name of each group).
static const char *const preferred[][3] = {
    {"reward_mean", "reward", NULL},           {"accuracy", "acc", NULL},
    {"response_len_mean", "len_mean", "length"}, {"clip_frac", "clip_frac_high", "clip_fraction"},
    {"heldout_accuracy", "eval_accuracy", NULL}, {"loss", NULL, NULL},
};
// Never plotted: identifiers and clocks.
static int skipped(const char *k) {
    return !strcmp(k, "step") || !strcmp(k, "time") || !strcmp(k, "wall_time") || !strcmp(k, "timestamp") ||
           !strcmp(k, "eta_s");
}

static series_t *series_get(log_t *g, const char *name) {
    for (int i = 0; i < g->n; i++)
        if (!strcmp(g->s[i].name, name)) return &g->s[i];
    if (g->n >= MAX_SERIES) return NULL;
    series_t *r = &g->s[g->n++];
    memset(r, 0, sizeof *r);
    snprintf(r->name, sizeof r->name, "%s", name);
    return r;
}

static void series_add(series_t *s, double x, double y) {
    if (s->n == s->cap) {
        s->cap = s->cap ? 2 * s->cap : 64;
        s->x = cispo_realloc(s->x, sizeof(double) * (size_t)s->cap);
        s->y = cispo_realloc(s->y, sizeof(double) * (size_t)s->cap);
    }
    s->x[s->n] = x;
    s->y[s->n] = y;
    s->n++;
}

static void log_free(log_t *g) {
    for (int i = 0; i < g->n; i++) free(g->s[i].x), free(g->s[i].y);
    g->n = 0;
}

// Reads a JSONL metrics log (missing: an empty log; a torn last line of a crashed run is skipped).
static void log_read(log_t *g, const char *path) {
    memset(g, 0, sizeof *g);
    FILE *in = fopen(path, "r");
    if (!in) return;
    char *line = NULL;
    size_t cap = 0;
    while (getline(&line, &cap, in) > 0) {
        cJSON *o = cJSON_Parse(line);
        if (!o) continue;
        cJSON *st = cJSON_GetObjectItemCaseSensitive(o, "step");
        if (cJSON_IsNumber(st)) {
            g->rows++;
            for (cJSON *it = o->child; it; it = it->next)
                if (cJSON_IsNumber(it) && it->string && !skipped(it->string) && isfinite(it->valuedouble)) {
                    series_t *sr = series_get(g, it->string);
                    if (sr) series_add(sr, st->valuedouble, it->valuedouble);
                }
        }
        cJSON_Delete(o);
    }
    free(line);
    fclose(in);
}

static void html_escape(FILE *f, const char *s) {
    for (; s && *s; s++) {
        if (*s == '<') fputs("&lt;", f);
        else if (*s == '>') fputs("&gt;", f);
        else if (*s == '&') fputs("&amp;", f);
        else if (*s == '\'') fputs("&#39;", f);
        else fputc(*s, f);
    }
}

// ---- axes ----

// A tick spacing of 1, 2 or 5 x 10^k giving about `target` intervals over range.
static double nice_step(double range, int target) {
    double raw = range / target, mag = pow(10, floor(log10(raw))), r = raw / mag;
    return (r < 1.5 ? 1 : r < 3 ? 2 : r < 7 ? 5 : 10) * mag;
}

// A tick label with as many digits as the spacing needs: 0.25, 1.5, 300, 12k, 1.5e-05.
static void tick_label(char *buf, size_t cap, double v, double step) {
    if (fabs(v) < step * 1e-6) v = 0;
    double a = fabs(v);
    if (a >= 1e4 && step >= 1000) {
        int d = step >= 1e3 * 10 || fmod(v, 1e3) == 0 ? 0 : 1;
        if (a >= 1e6) snprintf(buf, cap, "%.*fM", step >= 1e6 ? 0 : 1, v / 1e6);
        else snprintf(buf, cap, "%.*fk", d, v / 1e3);
    } else if (step >= 1) snprintf(buf, cap, "%.0f", v);
    else if (step >= 1e-4) snprintf(buf, cap, "%.*f", (int)ceil(-log10(step) - 1e-9), v);
    else snprintf(buf, cap, "%.*e", (int)fmax(0, ceil(log10(fmax(a, step) / step) - 1e-9)), v);
}

// TensorBoard's smoothing: a debiased exponential moving average with weight w.
static void ema(const double *y, double *out, int n, double w) {
    double last = 0;
    for (int i = 0; i < n; i++) {
        last = last * w + (1 - w) * y[i];
        out[i] = last / (1 - pow(w, i + 1));
    }
}

static void polyline(FILE *f, const double *x, const double *y, int n, double x0, double x1, double y0, double y1,
                     const char *style) {
    const double W = 400, H = 230, L = 56, R = 12, T = 26, B = 40;
    fprintf(f, "<polyline fill='none' %s points='", style);
    for (int i = 0; i < n; i++)
        fprintf(f, "%.1f,%.1f ", L + (W - L - R) * (x[i] - x0) / (x1 - x0), T + (H - T - B) * (1 - (y[i] - y0) / (y1 - y0)));
    fprintf(f, "'/>\n");
}

static void plot(FILE *f, const series_t *s) {
    const double W = 400, H = 230, L = 56, R = 12, T = 26, B = 40;
    double x0 = INFINITY, x1 = -INFINITY, y0 = INFINITY, y1 = -INFINITY;
    for (int i = 0; i < s->n; i++) {
        x0 = fmin(x0, s->x[i]), x1 = fmax(x1, s->x[i]);
        y0 = fmin(y0, s->y[i]), y1 = fmax(y1, s->y[i]);
    }
    if (x1 == x0) x0 -= 1, x1 += 1;
    if (y1 == y0) {  // a flat series: centre it
        double pad = fabs(y0) > 0 ? fabs(y0) * 0.1 : 1;
        y0 -= pad, y1 += pad;
    }
    double ys = nice_step(y1 - y0, 4), xs = fmax(1, nice_step(x1 - x0, 5));
    y0 = floor(y0 / ys + 1e-9) * ys, y1 = ceil(y1 / ys - 1e-9) * ys;
    // noisy curves: the raw series faint, its moving average on top
    double w = s->n >= 200 ? 0.95 : s->n >= 60 ? 0.9 : s->n >= 20 ? 0.8 : 0;
    fprintf(f, "<svg width='%g' height='%g' xmlns='http://www.w3.org/2000/svg' font-family='sans-serif'>\n", W, H);
    fprintf(f, "<rect x='%g' y='%g' width='%g' height='%g' fill='#fafafa' stroke='#ccc'/>\n", L, T, W - L - R, H - T - B);
    fprintf(f, "<text x='%g' y='17' font-size='13'>", L);
    html_escape(f, s->name);
    fprintf(f, " (last %.4g)</text>\n", s->n ? s->y[s->n - 1] : NAN);
    if (w > 0) fprintf(f, "<text x='%g' y='17' font-size='10' text-anchor='end' fill='#777'>EMA %.2g, raw faint</text>\n", W - R, w);
    char lab[64];
    for (int k = 0; k < 64; k++) {  // y ticks
        double v = y0 + k * ys;
        if (v > y1 + ys * 1e-6) break;
        double py = T + (H - T - B) * (1 - (v - y0) / (y1 - y0));
        tick_label(lab, sizeof lab, v, ys);
        fprintf(f, "<text x='%g' y='%.1f' font-size='10' text-anchor='end'>%s</text>\n", L - 4, py + 3, lab);
        fprintf(f, "<line x1='%g' x2='%g' y1='%.1f' y2='%.1f' stroke='#e4e4e4'/>\n", L, W - R, py, py);
    }
    for (double v = ceil(x0 / xs - 1e-9) * xs; v <= x1 + xs * 1e-6; v += xs) {  // x ticks
        double px = L + (W - L - R) * (v - x0) / (x1 - x0);
        tick_label(lab, sizeof lab, v, xs);
        fprintf(f, "<line x1='%.1f' x2='%.1f' y1='%g' y2='%g' stroke='#999'/>\n", px, px, H - B, H - B + 4);
        fprintf(f, "<text x='%.1f' y='%g' font-size='10' text-anchor='middle'>%s</text>\n", px, H - B + 15, lab);
    }
    fprintf(f, "<text x='%g' y='%g' font-size='10' text-anchor='middle' fill='#555'>step</text>\n", L + (W - L - R) / 2,
            H - 6);
    if (w > 0) {
        double *sm = cispo_malloc(sizeof(double) * (size_t)s->n);
        ema(s->y, sm, s->n, w);
        polyline(f, s->x, s->y, s->n, x0, x1, y0, y1, "class='raw' stroke='#1f5fbf' stroke-opacity='0.25' stroke-width='1'");
        polyline(f, s->x, sm, s->n, x0, x1, y0, y1, "class='ema' stroke='#1f5fbf' stroke-width='1.8'");
        free(sm);
    } else {
        polyline(f, s->x, s->y, s->n, x0, x1, y0, y1, "stroke='#1f5fbf' stroke-width='1.6'");
        for (int i = 0; s->n <= 12 && i < s->n; i++)  // few points: mark them
            fprintf(f, "<circle cx='%.1f' cy='%.1f' r='2.5' fill='#1f5fbf'/>\n", L + (W - L - R) * (s->x[i] - x0) / (x1 - x0),
                    T + (H - T - B) * (1 - (s->y[i] - y0) / (y1 - y0)));
    }
    fprintf(f, "</svg>\n");
}

// The preferred plots first, then every other series in the order met.
static void plots(FILE *f, const log_t *g) {
    int shown[MAX_SERIES] = {0};
    for (size_t p = 0; p < sizeof preferred / sizeof preferred[0]; p++)
        for (int k = 0; k < 3 && preferred[p][k]; k++) {
            int hit = -1;
            for (int i = 0; i < g->n; i++)
                if (!shown[i] && !strcmp(g->s[i].name, preferred[p][k])) hit = i;
            if (hit >= 0) {
                plot(f, &g->s[hit]);
                shown[hit] = 1;
                break;
            }
        }
    for (int i = 0; i < g->n; i++)
        if (!shown[i]) plot(f, &g->s[i]);
}

// ---- what ran ----

static void launches(FILE *f, const char *run_dir) {
    char path[1100];
    snprintf(path, sizeof path, "%s/runs.jsonl", run_dir);
    char *text = cispo_read_file(path, NULL);
    if (!text) return;
    static const char *const fields[][2] = {{"start", "started"},      {"command", "command"}, {"overrides", "overrides"},
                                            {"config", "config"},      {"cwd", "directory"},   {"host", "host"},
                                            {"commit", "commit"},      {"resumed_from", "resumed from"}};
    fprintf(f, "<h3>What ran</h3>\n<table style='border-collapse:collapse;font-size:13px' class='runs'>\n");
    int k = 0;
    for (char *p = text, *nl; *p; p = nl + 1) {
        nl = strchr(p, '\n');
        if (!nl) break;
        *nl = 0;
        cJSON *o = cJSON_Parse(p);
        if (!o) continue;
        fprintf(f, "<tr><th colspan='2' style='text-align:left;padding-top:6px'>%s %d</th></tr>\n",
                k ? "continued, launch" : "launch", k + 1);
        for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++) {
            const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, fields[i][0]);
            if (!cJSON_IsString(v) || !v->valuestring[0]) continue;
            fprintf(f, "<tr><td style='color:#555;padding-right:12px;vertical-align:top'>%s</td><td><code>", fields[i][1]);
            html_escape(f, v->valuestring);
            fprintf(f, "</code></td></tr>\n");
        }
        cJSON_Delete(o);
        k++;
    }
    fprintf(f, "</table>\n");
    free(text);
}

// ---- samples at the evaluation steps ----

static char **read_strings(hid_t file, const char *name, hsize_t n) {
    hid_t d;
    H5E_BEGIN_TRY { d = H5Dopen2(file, name, H5P_DEFAULT); } H5E_END_TRY;
    if (d < 0) return NULL;
    hid_t t = H5Tcopy(H5T_C_S1);
    H5Tset_size(t, H5T_VARIABLE);
    H5Tset_cset(t, H5T_CSET_UTF8);
    char **v = cispo_calloc(n, sizeof(char *));
    hid_t sp = H5Dget_space(d);
    if (H5Dread(d, t, H5S_ALL, H5S_ALL, H5P_DEFAULT, v) < 0) free(v), v = NULL;
    // copy out so that the HDF5 buffers go back at once
    char **copy = v ? cispo_calloc(n, sizeof(char *)) : NULL;
    for (hsize_t i = 0; v && i < n; i++) copy[i] = cispo_strdup(v[i] ? v[i] : "");
    if (v) H5Dvlen_reclaim(t, sp, H5P_DEFAULT, v);
    free(v);
    H5Sclose(sp), H5Tclose(t), H5Dclose(d);
    return copy;
}

static int read_small(hid_t file, const char *name, hid_t type, void *out) {
    hid_t d;
    H5E_BEGIN_TRY { d = H5Dopen2(file, name, H5P_DEFAULT); } H5E_END_TRY;
    if (d < 0) return -1;
    herr_t rc = H5Dread(d, type, H5S_ALL, H5S_ALL, H5P_DEFAULT, out);
    H5Dclose(d);
    return rc < 0 ? -1 : 0;
}

static void free_strings(char **v, hsize_t n) {
    for (hsize_t i = 0; v && i < n; i++) free(v[i]);
    free(v);
}

// Up to SAMPLES_PER_EVAL rows of step s: a correct one and wrong ones when there are both.
static void step_samples(FILE *f, const char *run_dir, int step, double heldout) {
    char path[1100];
    snprintf(path, sizeof path, "%s/samples/step-%06d.h5", run_dir, step);
    hid_t file;
    H5E_BEGIN_TRY { file = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT); } H5E_END_TRY;
    if (file < 0) return;
    hid_t d;
    H5E_BEGIN_TRY { d = H5Dopen2(file, "reward", H5P_DEFAULT); } H5E_END_TRY;
    hsize_t n = 0;
    if (d >= 0) {
        hid_t sp = H5Dget_space(d);
        n = (hsize_t)H5Sget_simple_extent_npoints(sp);
        H5Sclose(sp), H5Dclose(d);
    }
    float *reward = n ? cispo_calloc(n, sizeof(float)) : NULL;
    int8_t *correct = n ? cispo_calloc(n, 1) : NULL, *failed = n ? cispo_calloc(n, 1) : NULL;
    char **prompt = NULL, **completion = NULL, **extracted = NULL, **reason = NULL;
    int ok = n > 0 && !read_small(file, "reward", H5T_NATIVE_FLOAT, reward) &&
             !read_small(file, "correct", H5T_NATIVE_INT8, correct) && !read_small(file, "failed", H5T_NATIVE_INT8, failed) &&
             (prompt = read_strings(file, "prompt", n)) && (completion = read_strings(file, "completion", n)) &&
             (extracted = read_strings(file, "extracted", n)) && (reason = read_strings(file, "reason", n));
    if (ok) {
        int pick[SAMPLES_PER_EVAL], np = 0;
        for (hsize_t i = 0; i < n && np < 1; i++)
            if (correct[i] && !failed[i]) pick[np++] = (int)i;
        for (hsize_t i = 0; i < n && np < SAMPLES_PER_EVAL; i++) {
            int dup = 0;
            for (int j = 0; j < np; j++) dup |= pick[j] == (int)i;
            if (!dup && (!correct[i] || failed[i] || np + (hsize_t)SAMPLES_PER_EVAL > n)) pick[np++] = (int)i;
        }
        fprintf(f, "<h4>RL step %d (held-out accuracy %.1f%%): %d of the step's %d rollout samples</h4>\n", step,
                100 * heldout, np, (int)n);
        fprintf(f, "<table class='samples' style='border-collapse:collapse;font-size:12px;margin-bottom:10px'>\n"
                   "<tr><th>prompt</th><th>completion</th><th>verdict</th><th>reward</th></tr>\n");
        for (int j = 0; j < np; j++) {
            int i = pick[j];
            const char *cell = "style='border:1px solid #ddd;padding:4px;vertical-align:top'";
            fprintf(f, "<tr><td %s><pre style='margin:0;white-space:pre-wrap'>", cell);
            html_escape(f, prompt[i]);
            fprintf(f, "</pre></td><td %s><pre style='margin:0;white-space:pre-wrap'>", cell);
            html_escape(f, completion[i]);
            fprintf(f, "</pre></td><td %s>", cell);
            if (failed[i]) {
                fprintf(f, "<b style='color:#a60'>failed</b>: ");
                html_escape(f, reason[i]);
            } else {
                fprintf(f, "<b style='color:%s'>%s</b>", correct[i] ? "#080" : "#b00", correct[i] ? "correct" : "wrong");
                if (extracted[i][0]) fprintf(f, " (answer <code>"), html_escape(f, extracted[i]), fprintf(f, "</code>)");
                if (reason[i][0]) fprintf(f, "; "), html_escape(f, reason[i]);
            }
            fprintf(f, "</td><td %s>%.3g</td></tr>\n", cell, reward[i]);
        }
        fprintf(f, "</table>\n");
    }
    free_strings(prompt, n), free_strings(completion, n), free_strings(extracted, n), free_strings(reason, n);
    free(reward), free(correct), free(failed);
    H5Fclose(file);
}

static void eval_samples(FILE *f, const char *run_dir, const log_t *rl) {
    const series_t *h = NULL;
    for (int i = 0; i < rl->n; i++)
        if (!strcmp(rl->s[i].name, "heldout_accuracy")) h = &rl->s[i];
    if (!h) return;
    fprintf(f, "<h3>Samples at the evaluations</h3>\n<p style='font-size:13px'>A few rollout samples of each RL step "
               "that ended with a held-out evaluation, with their verdicts (samples/step-&lt;step&gt;.h5 has them all).</p>\n");
    for (int i = 0; i < h->n; i++)
        if (h->x[i] > 0) step_samples(f, run_dir, (int)h->x[i], h->y[i]);
}

int report_write(const char *run_dir, const char *title) {
    char path[1100], out[1100], tmp[1110];
    snprintf(path, sizeof path, "%s/metrics.jsonl", run_dir);
    snprintf(out, sizeof out, "%s/report.html", run_dir);
    snprintf(tmp, sizeof tmp, "%s.tmp", out);
    FILE *probe = fopen(path, "r");
    if (!probe) return cispo_fail("%s: cannot open: %s", path, strerror(errno));
    fclose(probe);
    log_t *rl = cispo_calloc(1, sizeof *rl), *sft = cispo_calloc(1, sizeof *sft);
    log_read(rl, path);
    snprintf(path, sizeof path, "%s/sft_metrics.jsonl", run_dir);
    log_read(sft, path);
    FILE *f = fopen(tmp, "w");
    if (!f) {
        log_free(rl), log_free(sft), free(rl), free(sft);
        return cispo_fail("%s: cannot create: %s", tmp, strerror(errno));
    }
    fprintf(f, "<!DOCTYPE html>\n<html><head><meta charset='utf-8'><title>cispo run report</title></head>\n"
               "<body style='font-family:sans-serif;margin:20px'>\n<h2>");
    html_escape(f, title && *title ? title : run_dir);
    fprintf(f, "</h2>\n");
    launches(f, run_dir);
    fprintf(f, "<h3>RL</h3>\n<p>%d steps logged in metrics.jsonl; %d metrics.</p>\n<div>\n", rl->rows, rl->n);
    plots(f, rl);
    fprintf(f, "</div>\n");
    if (sft->rows) {
        fprintf(f, "<h3>SFT warm start</h3>\n<p>%d updates logged in sft_metrics.jsonl.</p>\n<div class='sft'>\n", sft->rows);
        plots(f, sft);
        fprintf(f, "</div>\n");
    }
    eval_samples(f, run_dir, rl);
    fprintf(f, "</body></html>\n");
    int bad = ferror(f);
    bad |= fclose(f);
    log_free(rl), log_free(sft), free(rl), free(sft);
    if (bad || rename(tmp, out)) return cispo_fail("%s: write failed", out);
    return 0;
}
