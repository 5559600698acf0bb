// sandbox/server.h — the SandboxFusion-compatible HTTP service over the worker pool (libmicrohttpd).
// defines: sandbox_server_opts_t, sandbox_serve, sandbox_sf_response
//   POST /run_code  {code, language, stdin, compile_timeout, run_timeout, memory_limit_MB, files,
//                    fetch_files} -> {status: Success|Failed|SandboxError, message, compile_result,
//                    run_result: {status: Finished|TimeLimitExceeded|Error, execution_time,
//                    return_code, stdout, stderr}, executor_pod_name, files}
//   GET  /v1/ping   -> "pong"
// Bad requests get 400 (malformed JSON, unknown language, missing code), 413 (body over
// max_body), 404/405; idle or slow connections are closed after client_timeout seconds, and those
// whose body takes longer than body_timeout seconds. A request whose client goes away is dropped.
#ifndef CISPO_SANDBOX_SERVER_H
#define CISPO_SANDBOX_SERVER_H

#include <stddef.h>

#include <cjson/cJSON.h>

typedef struct {
    int port;
    int workers;            // pool size
    const char *bind;       // address to listen on (default 127.0.0.1)
    size_t max_body;        // bytes (default 16 MiB)
    int client_timeout;     // seconds a connection may stay idle (default 30)
    int max_connections;    // open connections in all (default 1024)
    int max_per_ip;         // open connections from one client address (default 256)
    double body_timeout;    // seconds from the end of the headers to the end of the body (default 60)
    int http_threads;       // threads polling the connections (default 2)
} sandbox_server_opts_t;

// Serves until SIGINT or SIGTERM. Returns the exit status (1 when it cannot start).
int sandbox_serve(const sandbox_server_opts_t *o);

// SandboxFusion's response object from one of our results (runner.h). Caller deletes.
cJSON *sandbox_sf_response(const cJSON *result);

#endif
