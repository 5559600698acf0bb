// rl/sampler.h — next-token sampling: temperature, top-k, top-p, greedy; seeded per sequence.
// defines: sampler_config_t, sampler_rng_seed, sampler_next
#ifndef CISPO_RL_SAMPLER_H
#define CISPO_RL_SAMPLER_H

#include <stdint.h>

typedef struct {
    double temperature;  // > 0; 1 samples the policy itself
    double top_p;        // (0, 1]; 1 = off
    int top_k;           // 0 = off
    int greedy;          // argmax (ties: lowest id)
} sampler_config_t;

// Per-sequence generator state from (run seed, sequence id): the same pair always gives the same
// samples, whatever else is in the batch.
uint64_t sampler_rng_seed(uint64_t seed, uint64_t sequence_id);
double sampler_uniform(uint64_t *state);

// Picks the next token from logits [V] (fp32, from the LM head). Writes *logp = log pi(token) and
// *prob = pi(token) under the policy (softmax of the untempered logits, accumulated in double): this
// is the log pi_old the trainer's importance weights use. scratch: 2*V floats.
int sampler_next(const float *logits, int V, const sampler_config_t *cfg, uint64_t *rng, float *scratch,
                 float *logp, float *prob);

#endif
