// trainer/train_metrics.c — named step metrics to JSONL and TensorBoard (train_metrics.h).
#include "trainer/train_metrics.h"

#include <math.h>
#include <string.h>

#include "base/common.h"

void metrics_clear(metrics_t *m) { m->n = 0; }

void metrics_set(metrics_t *m, const char *name, double value) {
    for (int i = 0; i < m->n; i++)
        if (!strcmp(m->name[i], name)) {
            m->value[i] = value;
            return;
        }
    CISPO_ASSERT(m->n < METRICS_MAX && strlen(name) < sizeof m->name[0]);
    strcpy(m->name[m->n], name);
    m->value[m->n++] = value;
}

double metrics_get(const metrics_t *m, const char *name, double def) {
    for (int i = 0; i < m->n; i++)
        if (!strcmp(m->name[i], name)) return m->value[i];
    return def;
}

int metrics_is_clock(const char *name) {
    size_t n = strlen(name);
    return !strncmp(name, "time_", 5) || (n > 6 && !strcmp(name + n - 6, "_per_s")) || !strcmp(name, "eta_s");
}

void metrics_write_jsonl(FILE *f, int step, const metrics_t *m) {
    fprintf(f, "{\"step\": %d", step);
    for (int i = 0; i < m->n; i++) {
        if (isfinite(m->value[i])) fprintf(f, ", \"%s\": %.17g", m->name[i], m->value[i]);
        else fprintf(f, ", \"%s\": null", m->name[i]);
    }
    fputs("}\n", f);
    fflush(f);
}

void metrics_write_tb(tblog_t *tb, const char *prefix, int step, const metrics_t *m) {
    if (!tb || !tb->f) return;
    char tag[128];
    for (int i = 0; i < m->n; i++) {
        if (!isfinite(m->value[i])) continue;
        snprintf(tag, sizeof tag, "%s/%s", prefix, m->name[i]);
        tblog_scalar(tb, tag, step, m->value[i]);
    }
    tblog_flush(tb);
}
