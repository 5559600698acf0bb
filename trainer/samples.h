// trainer/samples.h — rollout samples of a run in HDF5, one row per sample across the run: step, prompt,
// completion, prompt and completion token ids, log pi_old of each completion token, reward, verdict,
// stop reason. Rows are appended step by step, and a killed process never leaves an unreadable file.
// defines: sample_record_t, samples_writer_t, samples_open, samples_append, samples_commit,
//          samples_truncate_after, samples_count, samples_last_failure, samples_close
//
// Layout (crash-safe: every file is written beside its final name and renamed over it when complete):
//   run_dir/samples.h5                the index: attributes format = "cispo-samples", version = 2;
//                                     datasets steps int32 [n], rows int64 [n] (the committed steps and
//                                     their row counts); an external link /step-<NNNNNN> per step to
//   run_dir/samples/step-<NNNNNN>.h5  one step's rows as 1-D datasets (length = the step's samples):
//     step int32, reward float32, correct int8, stop int8 (rl/rollout.h stop_reason), failed int8,
//     prompt / completion / extracted / reason: variable-length UTF-8 strings,
//     prompt_tokens / tokens: variable-length int32, logp: variable-length float32 (aligned with tokens).
// A step's file is written while the step runs and committed (synced, renamed, then the index rewritten
// and renamed) when the next step's first row arrives, on samples_commit, or on close. In h5py:
//   f = h5py.File("samples.h5"); [f[f"step-{s:06d}/completion"][:] for s in f["steps"][:]]
#ifndef CISPO_TRAINER_SAMPLES_H
#define CISPO_TRAINER_SAMPLES_H

#include <stdint.h>

typedef struct {
    int step;
    const char *prompt, *completion;
    const int32_t *prompt_tokens;
    int n_prompt;
    const int32_t *tokens;      // completion tokens
    const float *logp;          // [n_tokens] log pi_old
    int n_tokens;
    float reward;
    int correct, failed, stop;
    const char *extracted, *reason;  // the verifier's verdict
} sample_record_t;

typedef struct samples_writer samples_writer_t;

// Creates path (an empty index, stale step files removed) or, with append = 1 and an existing index,
// continues it. NULL + cispo_fail on error.
samples_writer_t *samples_open(const char *path, int append);
// Adds a row to the step being written (a row of a new step commits the previous step first).
int samples_append(samples_writer_t *w, const sample_record_t *r);
// Makes the rows appended so far durable: the open step's file and the index. 0 or -1 + message.
int samples_commit(samples_writer_t *w);
// Drops rows with step > last_step (a resumed run rewrites the steps after its checkpoint).
int samples_truncate_after(samples_writer_t *w, int last_step);
long samples_count(const samples_writer_t *w);
// The reason of the first failed verdict among the rows of the latest step appended ("" when none).
const char *samples_last_failure(const samples_writer_t *w);
// Commits and closes (w may be NULL). 0 or -1 + message.
int samples_close(samples_writer_t *w);

#endif
