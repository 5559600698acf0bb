// sandbox/runner.c — languages, tests and the JSON result of one sandboxed execution (runner.h).
// defines: sandbox_execute, sandbox_execute_text, sandbox_lang_known, sandbox_lang_list, sandbox_lang_available,
//          sandbox_set_python
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "sandbox/base64.h"
#include "sandbox/jail.h"
#include "sandbox/judge.h"
#include "sandbox/runner.h"

#define MAX_TESTS 512
#define MAX_FILES 64

// Seconds rounded to 0.1 ms for the report (no libm: the sandbox library links only its own deps).
static double round4(double s) { return (double)(long long)(s * 1e4 + 0.5) / 1e4; }

static char python_path[256] = "/usr/bin/python3";

void sandbox_set_python(const char *path) { snprintf(python_path, sizeof python_path, "%s", path); }

// ---- languages ----
// Each runs from one source file in /work. Compiled ones build /work/main (Java: Main.class) in a
// compile step with its own limits; the run steps then execute it. Toolchains are the host's,
// under the jail's read-only /usr: their paths are resolved on the host (Debian reaches java and
// cc through /etc/alternatives, which the jail does not have).
typedef enum { LANG_NONE, LANG_PYTHON, LANG_C, LANG_CPP, LANG_NODE, LANG_GO, LANG_RUST, LANG_JAVA, LANG_BASH } lang_t;

typedef struct {
    lang_t id;
    const char *names;     // accepted spellings, space-separated; the first as SandboxFusion writes it
    const char *src;       // the program's file in /work
    const char *tool;      // the compiler or interpreter on the host ("" for python: python_path)
    const char *package;   // the Debian package that brings it (for the error when it is missing)
    int reserves_as;       // the runtime reserves far more address space than it uses: its memory is
                           // held by the cgroup, not RLIMIT_AS
} lang_info_t;

static const lang_info_t langs[] = {
    {LANG_PYTHON, "python python3", "main.py", "", "python3", 0},
    {LANG_C, "c", "main.c", "/usr/bin/gcc", "gcc", 0},
    {LANG_CPP, "cpp c++", "main.cpp", "/usr/bin/g++", "g++", 0},
    {LANG_NODE, "nodejs javascript js node", "main.js", "/usr/bin/node", "nodejs", 1},
    {LANG_GO, "go golang", "main.go", "/usr/bin/go", "golang-go", 1},
    {LANG_RUST, "rust rs", "main.rs", "/usr/bin/rustc", "rustc", 0},
    {LANG_JAVA, "java", "Main.java", "/usr/bin/javac", "default-jdk-headless", 1},
    {LANG_BASH, "bash sh shell", "main.sh", "/usr/bin/bash", "bash", 0},
};

static const lang_info_t *lang_of(const char *s) {
    if (!s || !s[0] || strchr(s, ' ')) return NULL;
    size_t n = strlen(s);
    for (size_t i = 0; i < sizeof langs / sizeof langs[0]; i++)
        for (const char *p = langs[i].names; (p = strstr(p, s)); p += n)
            if ((p == langs[i].names || p[-1] == ' ') && (p[n] == 0 || p[n] == ' ')) return &langs[i];
    return NULL;
}

int sandbox_lang_known(const char *lang) { return lang_of(lang) != NULL; }

const char *sandbox_lang_list(void) { return "python, c, cpp, nodejs, go, rust, java, bash"; }

// A host path the jail can reach as it is: resolved (no /etc/alternatives on the way) and under
// /usr. 0, or -1 with why.
static int tool_path(const char *path, const char *package, char *out, size_t n, char *why, size_t wn) {
    char real[PATH_MAX];
    if (!realpath(path, real)) {
        snprintf(why, wn, "this host has no %s (%s): install the Debian package %s", path, strerror(errno), package);
        return -1;
    }
    if (strncmp(real, "/usr/", 5) || strlen(real) >= n) {
        snprintf(why, wn, "%s resolves to %.200s, outside the /usr the jail binds", path, real);
        return -1;
    }
    memcpy(out, real, strlen(real) + 1);
    return 0;
}

int sandbox_lang_available(const char *lang, char *why, size_t n) {
    const lang_info_t *L = lang_of(lang);
    char path[PATH_MAX];
    if (!L) return snprintf(why, n, "unknown language '%.60s': use %s", lang ? lang : "", sandbox_lang_list()), 0;
    if (L->id == LANG_PYTHON) return access(python_path, X_OK) == 0 ? 1 : (snprintf(why, n, "no %s", python_path), 0);
    if (tool_path(L->tool, L->package, path, sizeof path, why, n)) return 0;
    if (L->id == LANG_JAVA && tool_path("/usr/bin/java", L->package, path, sizeof path, why, n)) return 0;
    return 1;
}

// What a run's argv and environment point into: kept until the jail has run.
typedef struct {
    char tool[PATH_MAX], java[PATH_MAX], cc[PATH_MAX], linker[PATH_MAX + 16];
    char heap[48], cpus[48], jcpus[48], gomax[48];
    const char *compile_argv[24], *run_argv[16], *compile_env[8], *run_env[8];
} cmds_t;

// The CPUs a jail's processes get together (its cpu quota rounded up; 1 without a quota): the
// runtimes size their thread pools by it instead of the host's core count, which would spend the
// process limit.
static int jail_cpus(void) {
    double c = jail_get_options()->cpus;
    int n = c <= 0 ? 1 : (int)(c + 0.999);
    return n < 1 ? 1 : n > 64 ? 64 : n;
}

// The compile and run commands of a language. Returns NULL, or what keeps it from running here.
static const char *lang_commands(const lang_info_t *L, cmds_t *c, size_t mem, int call_based, char *why, size_t wn) {
    const char **ca = c->compile_argv, **ra = c->run_argv, **ce = c->compile_env, **re = c->run_env;
    if (L->id != LANG_PYTHON && tool_path(L->tool, L->package, c->tool, sizeof c->tool, why, wn)) return why;
    int cpus = jail_cpus();
    size_t mem_mb = mem >> 20 ? mem >> 20 : 1;
    switch (L->id) {
    case LANG_PYTHON:
        *ra++ = python_path;
        if (call_based) *ra++ = "-B";
        *ra++ = "main.py";
        break;
    case LANG_C:
    case LANG_CPP:
        *ca++ = c->tool, *ca++ = "-O2", *ca++ = L->id == LANG_C ? "-std=gnu11" : "-std=gnu++17", *ca++ = "-pipe";
        *ca++ = "-o", *ca++ = "main", *ca++ = L->src;
        if (L->id == LANG_C) *ca++ = "-lm";
        *ra++ = "/work/main";
        break;
    case LANG_NODE:
        // V8's heap held to the limit: a heap that outgrows it ends in V8's own out-of-memory
        // report instead of the cgroup's kill (buffers outside the heap meet the cgroup). Its stack
        // as deep as the main thread's may grow (as far as the memory allows): V8's default of
        // under 1 MiB ends judged recursions of ~10^4 calls.
        snprintf(c->heap, sizeof c->heap, "--max-old-space-size=%zu", mem_mb);
        *ra++ = c->tool, *ra++ = c->heap, *ra++ = "--stack-size=65500", *ra++ = L->src;
        break;
    case LANG_GO:
        // no cgo (no C compiler run, the standard library as built); threads for the jail's CPUs
        snprintf(c->gomax, sizeof c->gomax, "GOMAXPROCS=%d", cpus);
        *ce++ = "CGO_ENABLED=0", *ce++ = "GOPROXY=off", *ce++ = "GOFLAGS=-buildvcs=false", *ce++ = c->gomax;
        *ca++ = c->tool, *ca++ = "build", *ca++ = "-o", *ca++ = "main", *ca++ = L->src;
        *re++ = c->gomax;
        *ra++ = "/work/main";
        break;
    case LANG_RUST:
        if (tool_path("/usr/bin/cc", "gcc", c->cc, sizeof c->cc, why, wn)) return why;
        snprintf(c->linker, sizeof c->linker, "linker=%s", c->cc);
        *ca++ = c->tool, *ca++ = "-O", *ca++ = "--edition", *ca++ = "2021", *ca++ = "-C", *ca++ = c->linker;
        *ca++ = "-C", *ca++ = "codegen-units=1", *ca++ = "-o", *ca++ = "main", *ca++ = L->src;
        *ra++ = "/work/main";
        break;
    case LANG_JAVA:
        if (tool_path("/usr/bin/java", L->package, c->java, sizeof c->java, why, wn)) return why;
        // one JVM per step: serial GC and thread pools for the jail's CPUs (the host's core count
        // would spend the process limit), no perf-data file in /tmp; the heap held to the limit,
        // so that outgrowing it is the JVM's OutOfMemoryError
        snprintf(c->jcpus, sizeof c->jcpus, "-J-XX:ActiveProcessorCount=%d", cpus);
        *ca++ = c->tool, *ca++ = "-J-Xmx1g", *ca++ = "-J-XX:+UseSerialGC", *ca++ = c->jcpus, *ca++ = "-J-XX:TieredStopAtLevel=1";
        *ca++ = "-J-XX:-UsePerfData", *ca++ = "-encoding", *ca++ = "UTF-8", *ca++ = L->src;
        snprintf(c->heap, sizeof c->heap, "-Xmx%zum", mem_mb);
        snprintf(c->cpus, sizeof c->cpus, "-XX:ActiveProcessorCount=%d", cpus);
        *ra++ = c->java, *ra++ = c->heap, *ra++ = "-Xss64m", *ra++ = "-XX:+UseSerialGC", *ra++ = c->cpus;
        *ra++ = "-XX:-UsePerfData", *ra++ = "-cp", *ra++ = "/work", *ra++ = "Main";
        break;
    case LANG_BASH:
        *ra++ = c->tool, *ra++ = L->src;
        break;
    default: return snprintf(why, wn, "no commands for this language"), why;
    }
    *ca = *ra = *ce = *re = NULL;
    return NULL;
}

// A request the sandbox cannot run as given: reported as SandboxError with bad_request (the HTTP
// server answers 400 for those).
static cJSON *error_result(const char *status, const char *msg) {
    cJSON *r = cJSON_CreateObject();
    cJSON_AddStringToObject(r, "status", status);
    cJSON_AddStringToObject(r, "message", msg);
    cJSON_AddBoolToObject(r, "bad_request", 1);
    return r;
}

static cJSON *fault_result(const char *msg) {
    cJSON *r = cJSON_CreateObject();
    cJSON_AddStringToObject(r, "status", "SandboxError");
    cJSON_AddStringToObject(r, "message", msg);
    return r;
}

// Output as the result shows it: valid UTF-8 (strict JSON parsers refuse anything else), each byte
// that does not start a valid sequence, and each NUL (a C string would end there), shown as U+FFFD;
// nothing after them is lost.
static char *utf8_clean(const char *s, size_t n) {
    char *o = malloc(3 * n + 1), *q = o;
    if (!o) return NULL;
    const unsigned char *p = (const unsigned char *)s;
    for (size_t i = 0; i < n;) {
        unsigned c = p[i];
        int k = c == 0 ? -1 : c < 0x80 ? 0 : c >= 0xC2 && c <= 0xDF ? 1 : (c & 0xF0) == 0xE0 ? 2 : c >= 0xF0 && c <= 0xF4 ? 3 : -1;
        if (k > 0) {
            unsigned cp = c & (0x3Fu >> k);
            for (int j = 1; j <= k && k > 0; j++) {
                if (i + (size_t)j >= n || (p[i + j] & 0xC0) != 0x80) k = -1;
                else cp = cp << 6 | (p[i + j] & 0x3Fu);
            }
            if ((k == 2 && (cp < 0x800 || (cp >= 0xD800 && cp <= 0xDFFF))) || (k == 3 && (cp < 0x10000 || cp > 0x10FFFF))) k = -1;
        }
        if (k < 0) {
            memcpy(q, "\xEF\xBF\xBD", 3), q += 3, i++;
        } else {
            memcpy(q, p + i, (size_t)k + 1), q += k + 1, i += (size_t)k + 1;
        }
    }
    *q = 0;
    return o;
}

static void add_output(cJSON *o, const char *key, const char *s, size_t n) {
    char *t = utf8_clean(s ? s : "", s ? n : 0);
    cJSON_AddStringToObject(o, key, t ? t : "");
    free(t);
}

// Whether JSON text holds a \u0000 escape: cJSON would end that string there, silently (a file
// name "a\u0000b" would become "a"), so such requests are refused instead.
int sandbox_json_has_nul(const char *s, size_t n) {
    for (size_t i = 0; i + 5 < n; i++) {
        if (s[i] != '\\') continue;
        if (!strncmp(s + i + 1, "u0000", 5)) return 1;
        i++;  // an escaped character, possibly a backslash: it cannot start another escape
    }
    return 0;
}

static double num_field(const cJSON *o, const char *k, double def) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsNumber(v) && v->valuedouble > 0 ? v->valuedouble : def;
}

static const char *str_field(const cJSON *o, const char *k) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

// One judged test: what the run gets on stdin and what it must print / return.
typedef struct {
    char *stdin_data;          // owned
    const char *want_text;     // stdin/stdout tests
    const cJSON *want_json;    // call-based tests
    int judged, passed;
    const char *status;
    char reason[200];
} test_t;

typedef struct {
    test_t *tests;
    int n_tests, first_run_step, stop_on_failure, failed_at;
    int call_based;
    jail_step_result_t *kept;  // the step whose output is still held
} judge_ctx_t;

// A failed run that says it ran out of memory: under RLIMIT_AS an allocation fails inside the
// program (Python raises MemoryError, C++ throws std::bad_alloc, Rust aborts with "memory
// allocation of N bytes failed", bash's xmalloc gives up), and a runtime held to a heap size
// reports its own (the JVM's OutOfMemoryError, V8's heap limit; their traces follow the line), so
// the status comes from its words. Spoofing it only turns one failure into another.
static int ran_out_of_memory(const jail_step_result_t *s) {
    if (!s->err || !s->err_len) return 0;
    const char *last = s->err + s->err_len;
    while (last > s->err && (last[-1] == '\n' || last[-1] == ' ')) last--;
    while (last > s->err && last[-1] != '\n') last--;
    if (!strncmp(last, "MemoryError", 11) || strstr(last, "std::bad_alloc") || strstr(last, "cannot allocate") ||
        (!strncmp(last, "memory allocation of ", 21) && strstr(last, " failed")))
        return 1;
    // Rust's abort message from several threads at once: their writes interleave ("memory allocation of memory
    // allocation of N bytes failed\n bytes failed"), so the last line need not hold the whole of it
    const char *ra = strstr(s->err, "memory allocation of ");
    if (ra && strstr(ra, " bytes failed")) return 1;
    // (the JVM also names a thread it could not start an OutOfMemoryError: that is the process limit)
    for (const char *p = s->err; (p = strstr(p, "java.lang.OutOfMemoryError")); p += 26)
        if (strncmp(p + 26, ": unable to create native thread", 32)) return 1;
    return strstr(s->err, "JavaScript heap out of memory") || strstr(s->err, "fatal error: runtime: out of memory");
}

static const char *step_status_name(const jail_step_result_t *s) {
    switch (s->status) {
    case JAIL_STEP_EXITED: return s->exit_code == 0 ? "Finished" : ran_out_of_memory(s) ? "MemoryLimitExceeded" : "RuntimeError";
    case JAIL_STEP_SIGNALED: return (s->signal == SIGABRT || s->signal == SIGTRAP) && ran_out_of_memory(s) ? "MemoryLimitExceeded" : "RuntimeError";
    case JAIL_STEP_TIME_LIMIT: return "TimeLimitExceeded";
    case JAIL_STEP_MEMORY_LIMIT: return "MemoryLimitExceeded";
    case JAIL_STEP_OUTPUT_LIMIT: return "OutputLimitExceeded";
    default: return "NotRun";
    }
}

static void judge_test(judge_ctx_t *c, test_t *t, const jail_step_result_t *s) {
    t->judged = 1;
    const char *st = step_status_name(s);
    if (strcmp(st, "Finished")) {
        t->status = st;
        if (s->status == JAIL_STEP_SIGNALED) snprintf(t->reason, sizeof t->reason, "killed by signal %d", s->signal);
        else if (s->status == JAIL_STEP_EXITED) snprintf(t->reason, sizeof t->reason, "exit code %d", s->exit_code);
        else snprintf(t->reason, sizeof t->reason, "%s", st);
        return;
    }
    int ok = c->call_based ? judge_call_output(s->out, t->want_json, t->reason, sizeof t->reason)
                           : judge_tokens(s->out, s->out_len, t->want_text, strlen(t->want_text), t->reason, sizeof t->reason);
    t->passed = ok;
    t->status = ok ? "Accepted" : "WrongAnswer";
}

static void drop_output(jail_step_result_t *r) {
    free(r->out);
    free(r->err);
    r->out = r->err = NULL;
    r->out_len = r->err_len = 0;
}

// Judges each test as it finishes. Only the output the result shows is kept (the first failing
// test's, else the latest): up to 512 tests x 2 streams x the output cap would not fit otherwise.
static int on_step(void *ctx, int step, jail_step_result_t *r) {
    judge_ctx_t *c = ctx;
    int i = step - c->first_run_step;
    if (i < 0 || i >= c->n_tests) return 0;
    judge_test(c, &c->tests[i], r);
    int first_failure = !c->tests[i].passed && c->failed_at < 0;
    if (first_failure) c->failed_at = i;
    if (c->failed_at >= 0 && !first_failure) drop_output(r);
    else {
        if (c->kept) drop_output(c->kept);
        c->kept = r;
    }
    return c->stop_on_failure && !c->tests[i].passed;
}

static cJSON *step_json(const jail_step_result_t *s, int with_output) {
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "status", step_status_name(s));
    cJSON_AddNumberToObject(o, "exit_code", s->status == JAIL_STEP_EXITED ? s->exit_code : -1);
    cJSON_AddNumberToObject(o, "signal", s->signal);
    cJSON_AddNumberToObject(o, "time", round4(s->wall_s));
    cJSON_AddNumberToObject(o, "cpu_time", round4(s->cpu_s));
    cJSON_AddNumberToObject(o, "memory_kb", (double)s->max_rss_kb);
    if (with_output) {
        add_output(o, "stdout", s->out, s->out_len);
        add_output(o, "stderr", s->err, s->err_len);  // "" for outputs dropped after judging
    }
    return o;
}

typedef struct {
    jail_file_t files[MAX_FILES + 2];
    char *owned[MAX_FILES + 2];
    int n;
    const char *fetch[MAX_FILES];
    int n_fetch;
} files_t;

static const char *collect_files(const cJSON *req, files_t *f) {
    const cJSON *files = cJSON_GetObjectItemCaseSensitive(req, "files");
    if (files && !cJSON_IsNull(files)) {
        if (!cJSON_IsObject(files)) return "'files' must be an object {path: base64}";
        for (const cJSON *e = files->child; e; e = e->next) {
            if (cJSON_IsNull(e)) continue;
            if (!cJSON_IsString(e)) return "'files' values must be base64 strings";
            if (f->n >= MAX_FILES) return "too many files (at most 64)";
            if (!jail_name_ok(e->string)) return "'files' names must be plain relative paths (no '..', no leading '/')";
            size_t len;
            char *d = sandbox_b64_decode(e->valuestring, &len);
            if (!d) return "a 'files' value is not valid base64";
            f->owned[f->n] = d;
            f->files[f->n++] = (jail_file_t){e->string, d, len, 0644};
        }
    }
    const cJSON *fetch = cJSON_GetObjectItemCaseSensitive(req, "fetch_files");
    if (fetch && !cJSON_IsNull(fetch)) {
        if (!cJSON_IsArray(fetch)) return "'fetch_files' must be an array of paths";
        for (const cJSON *e = fetch->child; e; e = e->next) {
            if (!cJSON_IsString(e)) return "'fetch_files' entries must be strings";
            if (f->n_fetch >= MAX_FILES) return "too many fetch_files (at most 64)";
            // names that could leave the work dir are simply never fetched (see jail_init.c)
            f->fetch[f->n_fetch++] = e->valuestring;
        }
    }
    return NULL;
}

static cJSON *execute(const cJSON *req, judge_ctx_t *jc, files_t *fl, jail_step_t *steps, cmds_t *cmds) {
    if (!cJSON_IsObject(req)) return error_result("SandboxError", "request must be a JSON object");
    const char *lang_s = str_field(req, "language"), *code = str_field(req, "code");
    const lang_info_t *L = lang_of(lang_s);
    char msg[600];
    if (!lang_s) return snprintf(msg, sizeof msg, "missing 'language' (%s)", sandbox_lang_list()), error_result("SandboxError", msg);
    if (!L) {
        snprintf(msg, sizeof msg, "unknown language '%.60s': use %s", lang_s, sandbox_lang_list());
        return error_result("SandboxError", msg);
    }
    lang_t lang = L->id;
    if (!code) return error_result("SandboxError", "missing 'code' (a string)");
    const cJSON *tests = cJSON_GetObjectItemCaseSensitive(req, "tests");
    const char *fn_name = str_field(req, "fn_name");
    if (tests && cJSON_IsNull(tests)) tests = NULL;
    if (tests && !cJSON_IsArray(tests)) return error_result("SandboxError", "'tests' must be an array");
    if (fn_name && !fn_name[0]) fn_name = NULL;
    if (fn_name && lang != LANG_PYTHON) return error_result("SandboxError", "call-based tests (fn_name) need language python");
    if (fn_name && !tests) return error_result("SandboxError", "fn_name given without tests");
    int n_tests = tests ? cJSON_GetArraySize(tests) : 0;
    if (n_tests > MAX_TESTS) return error_result("SandboxError", "too many tests (at most 512)");
    if (tests && n_tests == 0) return error_result("SandboxError", "'tests' is empty");
    double run_t = num_field(req, "run_timeout", 10), compile_t = num_field(req, "compile_timeout", 10);
    double mem_mb = num_field(req, "memory_limit_MB", 512);
    if (run_t > 300 || compile_t > 300) return error_result("SandboxError", "timeouts are capped at 300 s");
    // checked as a double: converting an out-of-range one to an integer is undefined (1e30 used to
    // come out as 0, no limit at all)
    if (!(mem_mb <= 16384)) return error_result("SandboxError", "memory_limit_MB is capped at 16384");
    size_t mem = (size_t)(mem_mb * 1048576.0);
    const cJSON *sof = cJSON_GetObjectItemCaseSensitive(req, "stop_on_failure");
    jc->stop_on_failure = cJSON_IsTrue(sof);
    const char *err = collect_files(req, fl);
    if (err) return error_result("SandboxError", err);

    // the program is main.<ext>; a call-based solution is solution.py, run by the harness as main.py
    // (the same layout a remote SandboxFusion service gets: harness as code, solution as a file)
    const char *src = L->src;
    for (int i = 0; i < fl->n; i++)
        if (!strcmp(fl->files[i].name, src) || (fn_name && !strcmp(fl->files[i].name, "solution.py"))) {
            snprintf(msg, sizeof msg, "'files' may not replace the program's own file %s", fl->files[i].name);
            return error_result("SandboxError", msg);
        }
    if (fn_name) {
        fl->files[fl->n++] = (jail_file_t){"solution.py", code, strlen(code), 0644};
        fl->files[fl->n++] = (jail_file_t){src, sandbox_harness_py, strlen(sandbox_harness_py), 0644};
    } else {
        fl->files[fl->n++] = (jail_file_t){src, code, strlen(code), 0644};
    }

    if (lang_commands(L, cmds, mem, fn_name != NULL, msg, sizeof msg)) return error_result("SandboxError", msg);
    int n_steps = 0;
    const char *const *run_argv = cmds->run_argv;
    // Runtimes that reserve address space far beyond their use (Go, the JVM, V8) would fail under
    // RLIMIT_AS: their steps are held by the step cgroup (the limit + the work tmpfs + 64 MiB, see
    // jail.c) and their own heap caps. Without a cgroup, RLIMIT_AS stays, 4 GiB above the limit.
    const jail_host_t *host = jail_probe();
    int cgroup = jail_get_options()->use_cgroups && (host->cgroup_v1 || host->cgroup_v2);
    int as_free = L->reserves_as && cgroup;
    size_t as_mem = L->reserves_as && !cgroup ? mem + ((size_t)4 << 30) : mem;
    jail_limits_t run_lim = {run_t, run_t, as_mem, 64u << 20, 64, 64, 1u << 20, as_free};
    int compiled = cmds->compile_argv[0] != NULL;
    if (compiled) {
        // the compiler gets its own limits: more memory and processes than the program, its own timeout
        size_t cm = mem > (2048u << 20) ? mem : (2048u << 20);
        if (L->reserves_as && !cgroup) cm += (size_t)4 << 30;
        jail_limits_t cl = {compile_t, compile_t, cm, 64u << 20, 64, 32, 64u << 10, as_free};
        steps[n_steps++] = (jail_step_t){cmds->compile_argv, NULL, 0, cl, 1, 0, cmds->compile_env};
    }
    jc->first_run_step = n_steps;
    jc->call_based = fn_name != NULL;
    jc->failed_at = -1;
    if (!tests) {
        const char *in = str_field(req, "stdin");
        steps[n_steps++] = (jail_step_t){run_argv, in, in ? strlen(in) : 0, run_lim, 0, 0, cmds->run_env};
    } else {
        jc->tests = calloc((size_t)n_tests, sizeof *jc->tests);
        jc->n_tests = n_tests;
        int i = 0;
        for (const cJSON *t = tests->child; t; t = t->next, i++) {
            test_t *tt = &jc->tests[i];
            if (!cJSON_IsObject(t)) return snprintf(msg, sizeof msg, "test %d is not an object", i), error_result("SandboxError", msg);
            jail_limits_t l = run_lim;
            if (fn_name) {
                const cJSON *in = cJSON_GetObjectItemCaseSensitive(t, "input"), *out = cJSON_GetObjectItemCaseSensitive(t, "output");
                char why[200];
                if (!in || !out) return snprintf(msg, sizeof msg, "test %d: call-based tests need 'input' and 'output'", i), error_result("SandboxError", msg);
                tt->stdin_data = judge_call_input(fn_name, in, why, sizeof why);
                if (!tt->stdin_data) return snprintf(msg, sizeof msg, "test %d: %s", i, why), error_result("SandboxError", msg);
                tt->want_json = out;
            } else {
                const char *in = str_field(t, "stdin"), *out = str_field(t, "stdout");
                if (!in) in = str_field(t, "input");
                if (!out) out = str_field(t, "output");
                if (!in || !out) return snprintf(msg, sizeof msg, "test %d: needs string 'stdin' and 'stdout'", i), error_result("SandboxError", msg);
                tt->stdin_data = strdup(in);
                tt->want_text = out;
                size_t need = 2 * strlen(out) + 4096;  // room for a wrong but long answer to be judged
                if (need > l.out_cap) l.out_cap = need;
            }
            steps[n_steps++] = (jail_step_t){run_argv, tt->stdin_data, strlen(tt->stdin_data), l, 0, 1, cmds->run_env};
        }
    }

    size_t files_bytes = 0;
    for (int i = 0; i < fl->n; i++) files_bytes += fl->files[i].len;
    jail_spec_t spec = {0};
    spec.files = fl->files;
    spec.n_files = fl->n;
    spec.steps = steps;
    spec.n_steps = n_steps;
    spec.work_bytes = (64u << 20) + files_bytes;
    spec.work_inodes = 1024;
    spec.fetch = fl->fetch;
    spec.n_fetch = fl->n_fetch;
    spec.fetch_cap = 4u << 20;
    spec.fetch_total_cap = 16u << 20;
    spec.on_step = on_step;
    spec.ctx = jc;
    jail_result_t jr;
    jail_run(&spec, &jr);
    if (!jr.ok) {
        cJSON *r = fault_result(jr.error);
        jail_result_free(&jr);
        return r;
    }

    cJSON *r = cJSON_CreateObject();
    const char *status = "Finished";
    const char *message = "";
    cJSON_AddItemToObject(r, "compile", compiled ? step_json(&jr.steps[0], 1) : cJSON_CreateNull());
    int built = !compiled || (jr.steps[0].status == JAIL_STEP_EXITED && jr.steps[0].exit_code == 0);
    if (!built) {
        status = "CompileError";
        message = jr.steps[0].status == JAIL_STEP_TIME_LIMIT ? "compile time limit exceeded" : "compilation failed";
    } else if (!tests) {
        status = step_status_name(&jr.steps[jc->first_run_step]);
        cJSON_AddItemToObject(r, "run", step_json(&jr.steps[jc->first_run_step], 1));
    } else {
        cJSON *arr = cJSON_AddArrayToObject(r, "tests");
        int passed = 0, shown = -1;
        for (int i = 0; i < n_tests; i++) {
            test_t *t = &jc->tests[i];
            const jail_step_result_t *s = &jr.steps[jc->first_run_step + i];
            cJSON *o = cJSON_CreateObject();
            cJSON_AddNumberToObject(o, "index", i);
            cJSON_AddBoolToObject(o, "passed", t->passed);
            cJSON_AddStringToObject(o, "status", t->judged ? t->status : "NotRun");
            cJSON_AddNumberToObject(o, "time", round4(s->wall_s));
            cJSON_AddNumberToObject(o, "memory_kb", (double)s->max_rss_kb);
            cJSON_AddStringToObject(o, "reason", t->judged ? t->reason : "skipped after an earlier failure");
            cJSON_AddItemToArray(arr, o);
            passed += t->passed;
            if (shown < 0 && !t->passed) shown = i;
        }
        if (shown < 0) shown = n_tests - 1;
        cJSON_AddNumberToObject(r, "passed", passed);
        cJSON_AddNumberToObject(r, "total", n_tests);
        status = passed == n_tests ? "Accepted" : jc->tests[shown].judged ? jc->tests[shown].status : "NotRun";
        cJSON_AddItemToObject(r, "run", step_json(&jr.steps[jc->first_run_step + shown], 1));
    }
    cJSON_AddStringToObject(r, "status", status);
    cJSON_AddStringToObject(r, "message", message);
    cJSON_AddNumberToObject(r, "setup_time", round4(jr.setup_s));
    cJSON_AddNumberToObject(r, "peak_memory_kb", (double)jr.peak_mem_kb);
    cJSON *files = cJSON_AddObjectToObject(r, "files");
    for (int i = 0; i < jr.n_fetched; i++) {
        char *b = sandbox_b64_encode(jr.fetched[i].data, jr.fetched[i].len);
        if (b) cJSON_AddStringToObject(files, jr.fetched[i].name, b);
        free(b);
    }
    jail_result_free(&jr);
    return r;
}

cJSON *sandbox_execute(const cJSON *req) {
    judge_ctx_t jc = {0};
    files_t fl;
    memset(&fl, 0, sizeof fl);
    jail_step_t *steps = calloc(MAX_TESTS + 2, sizeof *steps);
    cmds_t *cmds = calloc(1, sizeof *cmds);
    cJSON *r = steps && cmds ? execute(req, &jc, &fl, steps, cmds) : fault_result("out of memory");
    free(cmds);
    for (int i = 0; i < jc.n_tests; i++) free(jc.tests[i].stdin_data);
    free(jc.tests);
    for (int i = 0; i < fl.n; i++) free(fl.owned[i]);
    free(steps);
    return r;
}

char *sandbox_execute_text(const char *req_json) {
    if (sandbox_json_has_nul(req_json, strlen(req_json))) {
        cJSON *r = error_result("SandboxError", "NUL characters (\\u0000) in the request's strings are not supported");
        char *text = cJSON_PrintUnformatted(r);
        cJSON_Delete(r);
        return text;
    }
    cJSON *req = cJSON_Parse(req_json);
    cJSON *r = req ? sandbox_execute(req) : error_result("SandboxError", "request is not valid JSON");
    char *text = cJSON_PrintUnformatted(r);
    cJSON_Delete(r);
    cJSON_Delete(req);
    return text;
}
