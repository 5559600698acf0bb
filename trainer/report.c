// trainer/report.c — run_dir/metrics.jsonl -> run_dir/report.html with inline SVG line plots.
// Each metrics line is a JSON object with "step" and numeric fields; a field may be absent on some
// steps (e.g. held-out accuracy, measured every k steps): its plot connects the steps that have it.
#include "trainer/report.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "base/common.h"

#define MAX_SERIES 64

typedef struct {
    char name[64];
    double *x, *y;
    int n, cap;
} series_t;

// Plotted first, in this order, when present (first matching name of each group).
static const char *const preferred[][3] = {
    {"reward_mean", "reward", NULL},           {"accuracy", "acc", NULL},
    {"response_len_mean", "len_mean", "length"}, {"clip_frac", "clip_frac_high", "clip_fraction"},
    {"heldout_accuracy", "eval_accuracy", NULL},
};
// Never plotted: identifiers and clocks.
static int skipped(const char *k) {
    return !strcmp(k, "step") || !strcmp(k, "time") || !strcmp(k, "wall_time") || !strcmp(k, "timestamp") ||
           !strcmp(k, "eta_s");
}

static series_t *series_get(series_t *s, int *n, const char *name) {
    for (int i = 0; i < *n; i++)
        if (!strcmp(s[i].name, name)) return &s[i];
    if (*n >= MAX_SERIES) return NULL;
    series_t *r = &s[(*n)++];
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

static void html_escape(FILE *f, const char *s) {
    for (; *s; s++) {
        if (*s == '<') fputs("&lt;", f);
        else if (*s == '>') fputs("&gt;", f);
        else if (*s == '&') fputs("&amp;", f);
        else fputc(*s, f);
    }
}

static void plot(FILE *f, const series_t *s) {
    const double W = 360, H = 200, L = 52, R = 10, T = 24, B = 30;
    double x0 = INFINITY, x1 = -INFINITY, y0 = INFINITY, y1 = -INFINITY;
    for (int i = 0; i < s->n; i++) {
        x0 = fmin(x0, s->x[i]), x1 = fmax(x1, s->x[i]);
        y0 = fmin(y0, s->y[i]), y1 = fmax(y1, s->y[i]);
    }
    if (x1 == x0) x1 = x0 + 1;
    if (y1 == y0) {  // a flat series: centre it
        double pad = fabs(y0) > 0 ? fabs(y0) * 0.1 : 1;
        y0 -= pad, y1 += pad;
    }
    fprintf(f, "<svg width='%g' height='%g' xmlns='http://www.w3.org/2000/svg'>\n", W, H);
    fprintf(f, "<rect x='%g' y='%g' width='%g' height='%g' fill='#fafafa' stroke='#ccc'/>\n", L, T, W - L - R, H - T - B);
    fprintf(f, "<text x='%g' y='16' font-size='13' font-family='sans-serif'>", L);
    html_escape(f, s->name);
    fprintf(f, " (last %.4g)</text>\n", s->n ? s->y[s->n - 1] : NAN);
    // enough significant digits that the three ticks of a narrow range differ
    double mag = fmax(fabs(y0), fabs(y1));
    int digits = 3;
    if (mag > 0 && y1 > y0) digits = (int)fmin(10, fmax(3, ceil(log10(mag / (y1 - y0))) + 2));
    for (int k = 0; k <= 2; k++) {  // y ticks at min, mid, max
        double v = y0 + (y1 - y0) * k / 2, py = T + (H - T - B) * (1 - k / 2.0);
        fprintf(f, "<text x='%g' y='%g' font-size='10' text-anchor='end' font-family='sans-serif'>%.*g</text>\n", L - 4,
                py + 3, digits, v);
        fprintf(f, "<line x1='%g' x2='%g' y1='%g' y2='%g' stroke='#e4e4e4'/>\n", L, W - R, py, py);
    }
    fprintf(f, "<text x='%g' y='%g' font-size='10' font-family='sans-serif'>step %.0f</text>\n", L, H - 10, x0);
    fprintf(f, "<text x='%g' y='%g' font-size='10' text-anchor='end' font-family='sans-serif'>step %.0f</text>\n", W - R,
            H - 10, x1);
    fprintf(f, "<polyline fill='none' stroke='#1f5fbf' stroke-width='1.6' points='");
    for (int i = 0; i < s->n; i++)
        fprintf(f, "%.1f,%.1f ", L + (W - L - R) * (s->x[i] - x0) / (x1 - x0),
                T + (H - T - B) * (1 - (s->y[i] - y0) / (y1 - y0)));
    fprintf(f, "'/>\n");
    if (s->n == 1)
        fprintf(f, "<circle cx='%g' cy='%g' r='3' fill='#1f5fbf'/>\n", L + (W - L - R) / 2, T + (H - T - B) / 2);
    fprintf(f, "</svg>\n");
}

int report_write(const char *run_dir, const char *title) {
    char path[1100], out[1100], tmp[1110];
    snprintf(path, sizeof path, "%s/metrics.jsonl", run_dir);
    snprintf(out, sizeof out, "%s/report.html", run_dir);
    snprintf(tmp, sizeof tmp, "%s.tmp", out);
    FILE *in = fopen(path, "r");
    if (!in) return cispo_fail("%s: cannot open: %s", path, strerror(errno));
    series_t s[MAX_SERIES];
    int ns = 0, lineno = 0, rows = 0;
    char *line = NULL;
    size_t cap = 0;
    while (getline(&line, &cap, in) > 0) {
        lineno++;
        cJSON *o = cJSON_Parse(line);
        if (!o) continue;  // a torn last line of a crashed run: skip it
        cJSON *st = cJSON_GetObjectItemCaseSensitive(o, "step");
        if (cJSON_IsNumber(st)) {
            rows++;
            for (cJSON *it = o->child; it; it = it->next)
                if (cJSON_IsNumber(it) && it->string && !skipped(it->string) && isfinite(it->valuedouble)) {
                    series_t *sr = series_get(s, &ns, it->string);
                    if (sr) series_add(sr, st->valuedouble, it->valuedouble);
                }
        }
        cJSON_Delete(o);
    }
    free(line);
    fclose(in);
    FILE *f = fopen(tmp, "w");
    if (!f) return cispo_fail("%s: cannot create: %s", tmp, strerror(errno));
    fprintf(f, "<!DOCTYPE html>\n<html><head><meta charset='utf-8'><title>cispo run report</title></head>\n"
               "<body style='font-family:sans-serif;margin:20px'>\n<h2>");
    html_escape(f, title && *title ? title : run_dir);
    fprintf(f, "</h2>\n<p>%d steps logged in metrics.jsonl; %d metrics.</p>\n<div>\n", rows, ns);
    int shown[MAX_SERIES] = {0};
    for (size_t g = 0; g < sizeof preferred / sizeof preferred[0]; g++)
        for (int k = 0; k < 3 && preferred[g][k]; k++) {
            int hit = -1;
            for (int i = 0; i < ns; i++)
                if (!shown[i] && !strcmp(s[i].name, preferred[g][k])) hit = i;
            if (hit >= 0) {
                plot(f, &s[hit]);
                shown[hit] = 1;
                break;
            }
        }
    for (int i = 0; i < ns; i++)
        if (!shown[i]) plot(f, &s[i]);
    fprintf(f, "</div>\n</body></html>\n");
    int bad = ferror(f);
    bad |= fclose(f);
    for (int i = 0; i < ns; i++) free(s[i].x), free(s[i].y);
    if (bad || rename(tmp, out)) return cispo_fail("%s: write failed", out);
    return 0;
}
