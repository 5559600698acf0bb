// rl/code_verifier.h — the "code" reward verifier: takes the last fenced code block of a response
// and runs it against the record's tests, in the local sandbox pool or on a remote
// SandboxFusion-compatible service. Correct only when every test passes; a sandbox that cannot run
// (host without isolation, service down after its retries, malformed answers) gives a FAILED
// verdict, never a silent 0.
// defines: code_extract_block, code_verifier_config_t, code_verifier_config_from_env,
//          code_verify_with, code_verify
//
// Tests (verify_request_t.tests_json): [{"stdin","stdout"}...], or with fn_name (Python only)
// [{"input","output"}...] — input a JSON array of arguments or a string of JSON lines, output the
// value (see sandbox/judge.h for the accepted shapes).
// Environment (read at each call of the registry's entry, so forked scoring workers see it):
//   CISPO_CODE_SANDBOX_URL      a SandboxFusion-compatible service; unset: the local pool
//   CISPO_CODE_SANDBOX_TIMEOUT  seconds per HTTP attempt (default 60); CISPO_CODE_SANDBOX_RETRIES (3)
//   CISPO_CODE_WORKERS          size of the local pool (default 2; created on first use)
//   CISPO_CODE_RUN_TIMEOUT      seconds per test run (default 10); CISPO_CODE_MEMORY_MB (default 512)
//   CISPO_CODE_ALLOW_UNCONFINED 1: run locally even where the host lacks isolation (see
//                               sandbox/README.md); otherwise such a host gives failed verdicts
#ifndef CISPO_RL_CODE_VERIFIER_H
#define CISPO_RL_CODE_VERIFIER_H

#include <stddef.h>

#include "rl/sandbox_client.h"
#include "rl/verifier.h"

// The last fenced block (```lang ... ```) whose tag is a language we run (python/py/python3,
// cpp/c++/cc/cxx, c) or empty (taken as Python), looked for after the last </think> first.
// Returns the code (caller frees) and writes "python", "cpp" or "c" into lang; NULL when none.
char *code_extract_block(const char *response, char *lang, size_t lang_n);

typedef struct {
    int remote;               // 1: use client; 0: the local pool
    sandbox_client_t client;
    int workers;
    double run_timeout;
    int memory_mb;
} code_verifier_config_t;

// 0, or -1 with cispo_last_error() naming the variable that is wrong.
int code_verifier_config_from_env(code_verifier_config_t *cfg);

int code_verify_with(const code_verifier_config_t *cfg, const verify_request_t *req, verdict_t *out);
// The registry's "code" entry (rl/verifier.c).
int code_verify(const verify_request_t *req, verdict_t *out);

#endif
