// trainer/train_metrics.h — one step's metrics as an ordered list of named numbers, written to
// metrics.jsonl (one JSON object per line, exact doubles), TensorBoard scalars, and the console line.
// defines: metrics_t, metrics_clear, metrics_set, metrics_get, metrics_write_jsonl, metrics_write_tb,
//          metrics_is_clock
//
// Names that carry wall-clock values start with "time_" or end in "_per_s" or are "eta_s"
// (metrics_is_clock): everything else must repeat bit for bit when a run is resumed.
#ifndef CISPO_TRAINER_TRAIN_METRICS_H
#define CISPO_TRAINER_TRAIN_METRICS_H

#include <stdio.h>

#include "trainer/tblog.h"

#define METRICS_MAX 96

typedef struct {
    int n;
    char name[METRICS_MAX][40];
    double value[METRICS_MAX];
} metrics_t;

void metrics_clear(metrics_t *m);
// Sets (or replaces) a metric; non-finite values are kept and written as null in JSON.
void metrics_set(metrics_t *m, const char *name, double value);
// The value of name, or def when absent.
double metrics_get(const metrics_t *m, const char *name, double def);
int metrics_is_clock(const char *name);
// {"step": step, name: value, ...}\n, doubles printed with 17 significant digits.
void metrics_write_jsonl(FILE *f, int step, const metrics_t *m);
// Every metric as a scalar "prefix/name" at step (tb may be NULL).
void metrics_write_tb(tblog_t *tb, const char *prefix, int step, const metrics_t *m);

#endif
