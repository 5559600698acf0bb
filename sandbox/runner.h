// sandbox/runner.h — running a program in a language (Python 3, C, C++, JavaScript on Node, Go,
// Rust, Java, bash) inside one jail: writes the source, compiles it there under its own limits, runs
// it once on stdin or once per test, judges the tests, and reports everything as one JSON object.
// defines: sandbox_execute, sandbox_execute_text, sandbox_lang_known, sandbox_lang_list,
//          sandbox_lang_available, sandbox_harness_py, sandbox_set_python
//
// Request (JSON object; field names follow SandboxFusion where they overlap):
//   language         "python" (python3) | "c" | "cpp" (c++) | "nodejs" (javascript, js, node) | "go"
//                    (golang) | "rust" (rs) | "java" (the class Main, in Main.java) | "bash" (sh, shell)
//   code             the program
//   stdin            input of the single run (when there are no tests)
//   tests            [{"stdin","stdout"}...]  or, with fn_name, [{"input","output"}...] (call-based)
//   fn_name          function (or Solution method) called by call-based tests (Python only)
//   run_timeout      seconds per run (default 10); compile_timeout (default 10)
//   memory_limit_MB  the program's memory: its step cgroup's limit (plus the work tmpfs and 64 MiB),
//                    and the address-space limit per process, or for Node, Go and Java (whose
//                    runtimes reserve far more address space than they use) the V8 / JVM heap
//                    size instead (default 512, at most 16384)
//   files            {"relative/path": "base64"} written to the work dir first
//   fetch_files      ["relative/path"] copied back after the last run (regular files only)
//   stop_on_failure  true: the first failing test stops the rest (default false)
// Result (JSON object):
//   status     Accepted | WrongAnswer (tests) / Finished (single run, exit 0) | RuntimeError |
//              TimeLimitExceeded | MemoryLimitExceeded | OutputLimitExceeded | CompileError | SandboxError
//   message    one line for SandboxError and CompileError
//   compile    {status, exit_code, signal, time, stdout, stderr} or null
//   run        the single run, or the first failing test's run: {status, exit_code, signal, time,
//              cpu_time, memory_kb, stdout, stderr}
//   tests      [{index, passed, status, time, memory_kb, reason}], passed, total (tests only)
//   files      {"path": "base64"} fetched
//   setup_time seconds spent creating the jail
#ifndef CISPO_SANDBOX_RUNNER_H
#define CISPO_SANDBOX_RUNNER_H

#include <cjson/cJSON.h>

// Never NULL: errors in the request are reported as {"status": "SandboxError", "message": ...}.
// Caller deletes the result.
cJSON *sandbox_execute(const cJSON *req);
// Same, request and result as JSON text (the pool's wire format). Caller frees.
char *sandbox_execute_text(const char *req_json);
int sandbox_lang_known(const char *lang);
// The languages, for messages: "python, c, cpp, nodejs, go, rust, java, bash".
const char *sandbox_lang_list(void);
// Whether this host has the toolchain of a known language (1), or why not (0, why filled: the
// missing path and the Debian package that brings it).
int sandbox_lang_available(const char *lang, char *why, size_t n);
// Whether JSON text holds a \u0000 escape (refused: cJSON would cut the string there).
int sandbox_json_has_nul(const char *s, size_t n);

// The Python program that runs one call-based test (harness_py.c): solution.py in its working
// directory, {"fn", "args"} on stdin, the JSON of the return value on stdout. Also sent to remote
// SandboxFusion services, with solution.py as a request file.
extern const char sandbox_harness_py[];

// Interpreter used for Python programs (default /usr/bin/python3; must live under a directory the
// jail binds: /usr, /bin, /lib).
void sandbox_set_python(const char *path);

#endif
