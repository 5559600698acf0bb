// model/seq_logprob.h — per-token log-probs of a token sequence under the model, and the
// whitespace-separated token-id files that `cispo logprobs` and the parity tests read.
// defines: model_read_token_file, model_parse_tokens, model_parse_tokens_from, model_seq_logprobs
#ifndef CISPO_MODEL_SEQ_LOGPROB_H
#define CISPO_MODEL_SEQ_LOGPROB_H

#include <stdint.h>

#include "model/model.h"

// Reads ids t0..tn-1 (decimal, separated by whitespace) from path. Every id must be in [0, vocab_size)
// and there must be at least min_tokens of them. *ids is malloc'ed (caller frees). Returns 0, or -1
// with cispo_last_error() naming the file, the line and the token number.
int model_read_token_file(const char *path, int vocab_size, int min_tokens, int32_t **ids, int *n);
// The same on text in memory; origin names it in errors.
int model_parse_tokens(const char *text, const char *origin, int vocab_size, int min_tokens, int32_t **ids, int *n);
// The same, the text starting on line first_line of its origin (error messages count from there).
int model_parse_tokens_from(const char *text, const char *origin, int first_line, int vocab_size, int min_tokens,
                            int32_t **ids, int *n);

// One sequence of n >= 2 tokens (n <= the model's max_tokens): logp[i] = log p(ids[i+1] | ids[0..i])
// for i in [0, n-1). Leaves the forward and log-probs in m, ready for model_backward with dlogp [n]
// (entry n-1 has no target). Returns 0 or -1 (+ message).
int model_seq_logprobs(model_t *m, const int32_t *ids, int n, float *logp);

#endif
