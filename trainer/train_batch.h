// trainer/train_batch.h — packing (prompt, response) sequences into micro-batches for the training
// forward/backward: one packed sequence per sample, input = prompt + response[:-1], target at each
// response position, no target (-1) on the prompt. A response mask keeps tokens the policy did not
// choose (tool output in multi-turn rollouts) as context only: they are inputs, carry no loss and are
// not scored, so the loss sees the policy's tokens alone.
// defines: train_seq_t, micro_t, train_seq_n_train, micro_plan, micro_forward, micro_backward
//
// Both SFT (cross-entropy on demonstrations) and RL (policy loss on sampled responses) go through
// here: the loss only decides dlogp, the per-response-token dLoss/dlogp.
#ifndef CISPO_TRAINER_TRAIN_BATCH_H
#define CISPO_TRAINER_TRAIN_BATCH_H

#include <stdint.h>

#include "model/model.h"

typedef struct {
    const int32_t *prompt;  // [n_prompt] >= 1 token
    int n_prompt;
    const int32_t *resp;    // [n_resp] >= 1 token: the tokens scored and trained
    int n_resp;
    const unsigned char *mask;  // [n_resp] 1: scored and trained, 0: context only; NULL: all scored
    // routing replay (rollout_sample_t.routes): [n_layers][routes_stride][K] experts of each fed position,
    // rows [0, routes_n) set; NULL: the forward routes by itself. A micro-batch replays when every one of its
    // sequences has routes covering its n_prompt + n_resp - 1 fed tokens.
    const int32_t *routes;
    int routes_stride, routes_n;
} train_seq_t;

typedef struct {
    int first, count;       // sequences [first, first + count) of the list
    int T;                  // packed tokens
    int n_resp;             // scored response tokens (sum of train_seq_n_train)
} micro_t;

// The response tokens of q that are scored and trained.
int train_seq_n_train(const train_seq_t *q);

// Splits seqs[0, n) into consecutive micro-batches of at most max_tokens packed tokens each.
// *out is malloc'ed; returns the number of micro-batches, or -1 when one sequence alone is too long.
int micro_plan(const train_seq_t *seqs, int n, int max_tokens, micro_t **out);
// Forward of one micro-batch; logp [mb->n_resp] and entropy [mb->n_resp] (or NULL) of the scored
// response tokens in sequence order. Returns 0 or -1 (+ message).
int micro_forward(model_t *m, const train_seq_t *seqs, const micro_t *mb, float *logp, float *entropy);
// Backward of the last micro_forward with dlogp [mb->n_resp] (scored response tokens in order): grads +=.
void micro_backward(model_t *m, const train_seq_t *seqs, const micro_t *mb, const float *dlogp, float aux_coef);

#endif
