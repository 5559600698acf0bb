// sandbox/pool.h — a pool of pre-forked sandbox workers: single-threaded processes, started once,
// each running one request at a time (a whole jail: compile + tests), so a multi-threaded caller
// (the HTTP server, the reward workers) never forks itself per run.
// defines: sandbox_pool_t, sandbox_pool_create, sandbox_pool_run, sandbox_pool_destroy,
//          sandbox_pool_size, sandbox_pool_worker_pid, sandbox_pool_run_watch
#ifndef CISPO_SANDBOX_POOL_H
#define CISPO_SANDBOX_POOL_H

#include <stddef.h>

typedef struct sandbox_pool sandbox_pool_t;

// A worker that dies is replaced; a request it had not received yet goes to the replacement.
// Starts n workers (n >= 1). NULL with err filled when the jail cannot run on this host (see
// jail_check_ready) or a worker cannot start.
sandbox_pool_t *sandbox_pool_create(int n, char *err, size_t errn);
// Runs one request (JSON text, see runner.h) on the next idle worker, blocking until it is done.
// Thread-safe. Returns the result JSON text (caller frees); a worker that dies mid-run is
// replaced and the request answered with a SandboxError result.
char *sandbox_pool_run(sandbox_pool_t *p, const char *req_json);
// The same, for a request whose client may go away: watch_fd is the client's socket (or -1). When
// its peer hangs up (POLLRDHUP: closed, reset, or its writing half shut) before the result, the
// request is cancelled — dropped while it waits for a worker, its jail killed while it runs (the
// worker stays) — and NULL is returned.
char *sandbox_pool_run_watch(sandbox_pool_t *p, const char *req_json, int watch_fd);
int sandbox_pool_size(const sandbox_pool_t *p);
// Process id of worker i (0 <= i < size), or -1 when it is lost: for monitoring and tests.
int sandbox_pool_worker_pid(sandbox_pool_t *p, int i);
void sandbox_pool_destroy(sandbox_pool_t *p);

#endif
