// rl/rollout.h — batched generation with continuous batching and the stop rules of docs/rl.md.
// defines: rollout_config_t, rollout_sample_t, rollout_generate, rollout_sample_free, stop reasons
#ifndef CISPO_RL_ROLLOUT_H
#define CISPO_RL_ROLLOUT_H

#include <stdint.h>

#include "model/infer.h"
#include "rl/sampler.h"

enum stop_reason { STOP_EOS = 0, STOP_LENGTH = 1, STOP_STRING = 2, STOP_REPETITION = 3 };

typedef struct {
    int max_new_tokens;      // length budget
    int eos_id;              // -1: none
    sampler_config_t sampler;
    int rep_n;               // repetition early-truncation (M1): stop once rep_n consecutive tokens
    double rep_p;            //   each had probability > rep_p; rep_n = 0 turns it off
    // stop strings: called after each token with the generated tokens so far; returns 1 to stop
    // (the trainer decodes with its tokenizer and looks for its stop strings). NULL: none.
    int (*stop_check)(void *ctx, const int32_t *tokens, int n);
    void *stop_ctx;
} rollout_config_t;

typedef struct {
    int32_t *tokens;         // [n_tokens] generated ids (the EOS, when reached, is included)
    float *logp;             // [n_tokens] log pi_old of each generated token (fp32 LM head)
    int n_tokens;
    int stop;                // enum stop_reason
} rollout_sample_t;

typedef struct {
    double prefill_s, decode_s;  // wall time in prefill / decode
    long decode_tokens;          // tokens produced
    int max_batch;               // most sequences decoded together
} rollout_stats_t;

// Generates a completion for each of n prompts, seeds[i] seeding sequence i's sampler (same seed,
// same samples). Uses all of e's slots, admitting waiting prompts as sequences finish. out[n] is
// filled (free with rollout_sample_free). Returns 0 or -1 (+ message).
int rollout_generate(infer_t *e, const rollout_config_t *cfg, const int32_t *const *prompts, const int *prompt_lens,
                     const uint64_t *seeds, int n, rollout_sample_t *out, rollout_stats_t *stats);
void rollout_sample_free(rollout_sample_t *s);

#endif
