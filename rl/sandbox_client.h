// rl/sandbox_client.h — client of a SandboxFusion-compatible service (`cispo sandbox serve`, or
// SandboxFusion itself): POST <url>/run_code through rl/http_client (libcurl: per-attempt timeout,
// retries with exponential backoff on connection errors, 429 and 5xx). A 200 answer whose status is
// SandboxError (the service's own fault) is retried too, like SandboxFusion's Python client does.
// defines: sandbox_client_t, sandbox_client_default, sandbox_client_from_env, sandbox_run_t,
//          sandbox_client_run, sandbox_run_free
#ifndef CISPO_RL_SANDBOX_CLIENT_H
#define CISPO_RL_SANDBOX_CLIENT_H

#include "rl/http_client.h"

typedef struct {
    const char *url;          // base URL, e.g. http://127.0.0.1:8080 (the client appends /run_code)
    http_options_t http;      // timeout per attempt, attempts, backoff
    int sandbox_error_attempts;  // attempts when the service answers status SandboxError (default 3)
} sandbox_client_t;

sandbox_client_t sandbox_client_default(const char *url);
// From the environment: CISPO_CODE_SANDBOX_URL (required here), CISPO_CODE_SANDBOX_TIMEOUT
// (seconds per attempt, default 60), CISPO_CODE_SANDBOX_RETRIES (retries after the first attempt,
// default 3). Returns 0, or -1 with cispo_last_error() naming the variable.
int sandbox_client_from_env(sandbox_client_t *c);

typedef struct {
    // what the service reported (SandboxFusion fields)
    char status[32];          // Success | Failed
    char run_status[32];      // run_result.status: Finished | TimeLimitExceeded | Error ("" when absent)
    char compile_status[32];  // compile_result.status ("" when there was no compile step)
    int return_code;          // run_result.return_code (-1000 when absent)
    int compile_return_code;
    double execution_time;
    char *stdout_text, *stderr_text;  // run_result's (malloc'ed, "" when absent)
    char *compile_stderr;
} sandbox_run_t;

// One run: language "python" | "cpp" | "c" (what the service accepts), code, stdin (may be NULL),
// files: NULL or a JSON object text {"path": "base64"}. Returns 0 with *out filled when the
// service ran the code (whatever the program did); -1 when it could not (connection, HTTP error,
// SandboxError after the attempts, a malformed answer), cispo_last_error() saying which.
int sandbox_client_run(const sandbox_client_t *c, const char *language, const char *code, const char *stdin_text,
                       const char *files_json, double run_timeout, double compile_timeout, int memory_mb,
                       sandbox_run_t *out);
void sandbox_run_free(sandbox_run_t *r);

#endif
