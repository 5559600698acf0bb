// trainer/samples.h — rollout samples of a run in one HDF5 file (run_dir/samples.h5), one row per
// sample across the run: step, prompt, completion, prompt and completion token ids, log pi_old of
// each completion token, reward, verdict, stop reason. Rows are appended step by step.
// defines: sample_record_t, samples_writer_t, samples_open, samples_append, samples_close, samples_count
//
// Datasets (all 1-D, extendible, length = number of samples):
//   step int32, reward float32, correct int8, stop int8 (rl/rollout.h stop_reason), failed int8,
//   prompt / completion / extracted / reason: variable-length UTF-8 strings,
//   prompt_tokens / tokens: variable-length int32, logp: variable-length float32 (aligned with tokens).
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

// Creates path (or, with append = 1 and an existing file, continues it). NULL + cispo_fail on error.
samples_writer_t *samples_open(const char *path, int append);
int samples_append(samples_writer_t *w, const sample_record_t *r);
// Drops rows with step > last_step (a resumed run rewrites the steps after its checkpoint).
int samples_truncate_after(samples_writer_t *w, int last_step);
long samples_count(const samples_writer_t *w);
int samples_close(samples_writer_t *w);

#endif
