// trainer/reward_pool.h — rewards computed in parallel worker processes (docs/rl.md step 3): a small pool of
// workers (this program started again, trainer/reward_pool.c), one socket pair each; the trainer hands out one request per idle worker and
// collects verdicts as they come. A worker that crashes or overruns its time is killed and replaced,
// and its request gets a failed verdict (reported, never rewarded silently).
// defines: reward_job_t, reward_pool_t, reward_pool_create, reward_pool_free, reward_pool_run
//
// Workers run verifier_find(job->verifier)->verify in their own address space, so a slow code
// verifier or a pathological math answer never stalls or corrupts the trainer.
#ifndef CISPO_TRAINER_REWARD_POOL_H
#define CISPO_TRAINER_REWARD_POOL_H

#include "rl/verifier.h"

typedef struct {
    const char *verifier;   // registry name: "math", "exact", "regex", "code", ...
    verify_request_t req;   // gold, response, tests_json, fn_name (NULL fields allowed)
} reward_job_t;

typedef struct reward_pool reward_pool_t;

// n_workers >= 1 processes; timeout_s bounds one verification (the worker is killed past it).
// n_workers == 0 computes rewards in the calling process (for debugging). NULL + message when a worker cannot
// be started (fork or exec).
reward_pool_t *reward_pool_create(int n_workers, double timeout_s);
// Closes the sockets, which ends the workers; one still running after two seconds is killed.
void reward_pool_free(reward_pool_t *p);
// Runs n jobs; out[i] is job i's verdict whatever order the workers finish in. Returns the number
// of failed verdicts (unknown verifier, verifier error, crash, timeout).
int reward_pool_run(reward_pool_t *p, const reward_job_t *jobs, int n, verdict_t *out);

#endif
