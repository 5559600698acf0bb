// trainer/report.h — the run report: run_dir/report.html, a self-contained page (inline SVG, no
// scripts, no network) with one plot per metric of run_dir/metrics.jsonl over steps. Reward,
// accuracy, response length and clip fraction come first; every other numeric metric follows.
// defines: report_write
#ifndef CISPO_TRAINER_REPORT_H
#define CISPO_TRAINER_REPORT_H

// title: shown at the top (e.g. the run name and config file). Returns 0 or -1 (+ message).
int report_write(const char *run_dir, const char *title);

#endif
