// rl/sampler.h — next-token sampling: temperature, top-k, top-p, greedy; seeded per sequence.
// defines: sampler_config_t, sampler_rng_seed, sampler_uniform, sampler_next, sampler_pick, sampler_draw
//
// Truncation follows HF's and vLLM's order: temperature, then top-k, then top-p over the top-k
// tokens renormalised. The kept tokens are selected through a heap (O(V + n log V) for n kept
// tokens), never by sorting the whole vocabulary.
#ifndef CISPO_RL_SAMPLER_H
#define CISPO_RL_SAMPLER_H

#include <stdint.h>

typedef struct {
    double temperature;  // > 0; 1 samples the policy itself
    double top_p;        // (0, 1]; 1 = off
    int top_k;           // 0 = off
    int greedy;          // argmax (ties: lowest id)
    int tempered_logp;   // 1: *logp is under softmax(logits / temperature), untruncated (verl's
                         //    convention: the trainer divides its logits by the same temperature);
                         // 0: under the untempered policy softmax(logits)
} sampler_config_t;

// Per-sequence generator state from (run seed, sequence id): the same pair always gives the same
// samples, whatever else is in the batch.
uint64_t sampler_rng_seed(uint64_t seed, uint64_t sequence_id);
double sampler_uniform(uint64_t *state);

// Picks the next token from logits [V] (fp32, from the LM head). Writes *logp = log pi(token) and
// *prob = pi(token) (accumulated in double), pi the untempered policy or, with tempered_logp, the
// tempered one: this is the log pi_old the trainer's importance weights use, and *prob is what the
// repetition rule reads. scratch: 2*V floats.
int sampler_next(const float *logits, int V, const sampler_config_t *cfg, uint64_t *rng, float *scratch,
                 float *logp, float *prob);
// The same pick with the uniform u in [0, 1) given (ignored when greedy): the rule kernels/ops.h's
// sample_tokens applies on the device with u = sample_uniform(seed, step).
int sampler_pick(const float *logits, int V, const sampler_config_t *cfg, double u, float *scratch, float *logp,
                 float *prob);
// Inverse-CDF draw from probabilities p [V] (summing to about 1) with u in [0, 1): the first i whose
// cumulative sum exceeds u. When float rounding leaves the sum short of u, the most probable token
// (lowest id on ties), never a token of probability 0.
int sampler_draw(const float *p, int V, double u);

#endif
