// rl/remote_reward.h — the "remote" verifier: a reward computed by a user's own HTTP service (a
// learned reward model, a custom checker, anything that speaks this small JSON protocol).
// defines: remote_reward_config_t, remote_reward_config_default, remote_reward_config_from_env,
//          remote_reward_config_free, remote_reward_score, remote_reward_verify
//
// Protocol: one POST to the configured URL (through http_client: timeout, retries with backoff) with
//   {"prompt": "<question text>", "response": "<model response>", "answer": "<gold or null>",
//    "meta": {<the record's meta object>} or null}
// answered by a 2xx JSON object
//   {"reward": <finite number>, "correct": <bool or 0/1, optional>, "reason": "<text, optional>"}.
// Without "correct", the verdict is correct when reward >= correct_at. Every failure (connection,
// HTTP status, attempts exhausted, a body that is not such an object, a reward that is missing, not a
// number or not finite) is a FAILED verdict whose reason says which; it never becomes a reward.
//
// Configuration from the environment (read at each call of the registry's verifier, so forked
// scoring workers see what the trainer was started with):
//   CISPO_REMOTE_REWARD_URL          the service's full URL, e.g. http://rm-host:9000/score (required)
//   CISPO_REMOTE_REWARD_API_KEY_ENV  NAME of a variable holding a bearer token (default: none sent)
//   CISPO_REMOTE_REWARD_CORRECT_AT   threshold when the service sends no "correct" (default 0.5)
//   CISPO_REMOTE_REWARD_TIMEOUT      seconds per attempt (default 60)
//   CISPO_REMOTE_REWARD_RETRIES      retries after the first attempt (default 3)
#ifndef CISPO_RL_REMOTE_REWARD_H
#define CISPO_RL_REMOTE_REWARD_H

#include "rl/http_client.h"
#include "rl/verifier.h"

typedef struct {
    char *url;           // malloc'ed, owned
    char *api_key;       // or NULL
    double correct_at;
    http_options_t http; // bearer_token is set from api_key per call
} remote_reward_config_t;

remote_reward_config_t remote_reward_config_default(void);
// From the CISPO_REMOTE_REWARD_* variables: 0, or -1 naming the variable and what to set.
int remote_reward_config_from_env(remote_reward_config_t *cfg);
void remote_reward_config_free(remote_reward_config_t *cfg);

// Scores one response. Fills *out; returns 0, or -1 with out->failed = 1 and out->reason naming the
// URL and the failure.
int remote_reward_score(const remote_reward_config_t *cfg, const verify_request_t *req, verdict_t *out);

// The registry's "remote" entry (rl/verifier.c): configuration from the environment, read at each call.
int remote_reward_verify(const verify_request_t *req, verdict_t *out);

#endif
