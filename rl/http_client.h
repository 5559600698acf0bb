// rl/http_client.h — JSON over HTTP POST (libcurl) for the remote reward verifiers (genrm, remote):
// one call = up to max_attempts attempts, each bounded by a timeout, with exponential backoff and
// jitter between them.
// defines: http_options_t, http_response_t, http_options_default, http_post_json, http_response_free,
//          http_env_number, http_snippet
//
// What is retried (transient by nature): connection errors (refused, reset, empty reply, DNS,
// timeout), HTTP 429 and HTTP 5xx. What is not: any other 4xx (a bad request stays bad; retrying
// it only burns the budget) and 2xx/3xx.
// Wait before retry k (k = 1, 2, ...): d = min(backoff_max_s, backoff_s * 2^(k-1)), drawn uniformly
// from [d/2, d] ("equal jitter": spreads the retries of many workers hitting one server). A 429 or
// 5xx with a Retry-After header (seconds or HTTP date) waits what the server asked instead, capped
// at retry_after_max_s.
#ifndef CISPO_RL_HTTP_CLIENT_H
#define CISPO_RL_HTTP_CLIENT_H

#include <stddef.h>

typedef struct {
    double timeout_s;          // per attempt, connect + request + response (default 60)
    double connect_timeout_s;  // per attempt, TCP/TLS connect only (default 10; capped at timeout_s)
    int max_attempts;          // >= 1: the first try plus the retries (default 4)
    double backoff_s;          // base of the exponential backoff (default 0.5)
    double backoff_max_s;      // cap of one backoff wait (default 30)
    double retry_after_max_s;  // cap on a server's Retry-After (default 120)
    const char *bearer_token;  // sent as "Authorization: Bearer <token>" when not NULL or ""
} http_options_t;

typedef struct {
    long status;       // HTTP status of the last attempt; 0 when no response came (connection error)
    char *body;        // body of the last response (NUL-terminated, malloc'ed), or NULL
    size_t body_len;
    int attempts;      // attempts made
} http_response_t;

// The defaults listed above.
http_options_t http_options_default(void);

// POSTs body (JSON text) to url with Content-Type: application/json. Returns 0 when an attempt got
// a 2xx answer (out->body holds it). Otherwise -1 with cispo_last_error() =
//   "POST <url>: <what> after <n> attempt(s): <last failure>"
// e.g. "...: failed after 1 attempt(s): HTTP 400 (not retried): {\"error\": ...}" or "...: no HTTP
// answer after 4 attempt(s): Timeout was reached: Operation timed out after 2000 milliseconds ...";
// out still holds the last status and body for the caller to inspect. Safe to call from several
// threads at once.
int http_post_json(const char *url, const char *body, const http_options_t *opt, http_response_t *out);

void http_response_free(http_response_t *r);

// Helpers shared by the remote verifiers.
// Reads the number in environment variable name into *v when it is set and non-empty. Returns 0
// (unset leaves *v alone), or -1 naming the variable, its value and the range [lo, hi] it must be in.
int http_env_number(const char *name, double lo, double hi, double *v);
// The start of text as one printable line of at most n-1 chars ("..." when cut; "" for NULL).
void http_snippet(char *dst, size_t n, const char *text);

#endif
