// trainer/report.h — the run report: run_dir/report.html, a self-contained page (inline SVG, no
// scripts, no network). At the top, what ran: each launch of the run (runs.jsonl: start time, command
// line, overrides, config, directory, host, the source commit, the checkpoint a resume continued).
// Then one plot per metric of metrics.jsonl over RL steps (reward, accuracy, response length, clip
// fraction and held-out accuracy first) and of sft_metrics.jsonl (the SFT loss first), with readable
// ticks; a noisy curve (20 points or more) is drawn as its moving average over the raw curve in a faint
// line. Last, a few rollout samples with their verdicts at each RL step that had a held-out evaluation.
// defines: report_write
#ifndef CISPO_TRAINER_REPORT_H
#define CISPO_TRAINER_REPORT_H

// title: shown at the top (e.g. the run name and config file). Returns 0 or -1 (+ message).
int report_write(const char *run_dir, const char *title);

#endif
