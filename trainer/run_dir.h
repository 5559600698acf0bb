// trainer/run_dir.h — a run directory's life: claiming it (a fresh start, a resume, or a refusal that
// names the ways out), checking that a resumed run keeps its configuration, listing and rotating
// checkpoints, and stopping cleanly on SIGINT/SIGTERM.
// defines: run_dir_claim, run_dir_check_config, run_dir_checkpoints, run_dir_ckpt_path, run_dir_clear,
//          run_dir_set_command, run_dir_record_launch, run_stop_install, run_stop_requested, run_stop_restore
#ifndef CISPO_TRAINER_RUN_DIR_H
#define CISPO_TRAINER_RUN_DIR_H

#include <stddef.h>

#include "trainer/run_config.h"

// Decides how a run starts in c->out. resume "" : a directory already holding a run is refused (resume
// with resume=auto, or choose another out, or overwrite=true) unless c->overwrite, which clears it;
// "auto": the latest checkpoint, or a fresh start when there is none (the directory's leftovers
// cleared); a path: that checkpoint. ckpt gets the checkpoint to resume from, "" for a fresh start.
// 0 or -1 + message.
int run_dir_claim(const run_config_t *c, char *ckpt, size_t cap);
// A resumed run against the configuration its directory recorded (out/config.yaml): the keys that
// change what is computed must be equal unless c->allow_config_change. 0 or -1 + message listing them.
int run_dir_check_config(const run_config_t *c);
// Steps of out/ckpt-<step>.h5, ascending; returns how many (*steps malloc'ed, free it).
int run_dir_checkpoints(const char *out, long **steps);
void run_dir_ckpt_path(char *buf, size_t cap, const char *out, long step);
// Removes what a run wrote into out (only the run's own file names; other files stay).
void run_dir_clear(const char *out);

// The command line of this process (cmd_train and cmd_demo give theirs before train_run; argv[0] is the
// subcommand).
void run_dir_set_command(int argc, char **argv);
// Appends this launch to out/runs.jsonl, one JSON object a line (the report's "What ran"): start (UTC,
// ISO 8601), command, overrides (the options given on the command line), config, cwd, host, commit (the
// source tree's `git rev-parse HEAD` when cispo runs from a git checkout, "+ uncommitted changes" when it
// has them), resumed_from (the checkpoint a resume continues, else ""). 0 or -1 + message.
int run_dir_record_launch(const run_config_t *c, const char *config_path, const char *resumed_from);

// SIGINT/SIGTERM: the first asks the run to stop after its current step (the loop checkpoints and
// exits); a second exits at once (every file is written beside its name and renamed, so nothing
// already written is damaged). Handlers are inherited by forked workers, which ignore the signal and
// are stopped by the trainer.
void run_stop_install(void);
// The signal received (SIGINT or SIGTERM), or 0.
int run_stop_requested(void);
void run_stop_restore(void);

#endif
