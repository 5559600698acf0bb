// sandbox/jail.h — runs untrusted programs in a throw-away Linux jail and reports what they did.
// defines: jail_limits_t, jail_step_t, jail_file_t, jail_spec_t, jail_step_result_t, jail_result_t,
//          jail_run, jail_result_free, jail_name_ok, jail_host_t, jail_probe, jail_options_t,
//          jail_set_options, jail_get_options, jail_check_ready, jail_idle, jail_idle_end,
//          jail_cancel_arm
//
// One jail = one set of fresh namespaces (user, PID, mount, network, IPC, UTS, cgroup) around a
// minimal read-only root (host /usr and the /bin,/lib symlinks bound read-only, /dev/{null,zero,
// full,random,urandom}, a fresh /proc) and a private tmpfs work dir /work. Inside it a small init
// process (pid 1 of the namespace, our code) runs the steps one after another — e.g. "compile",
// then one run per test — each as a fresh child with its own rlimits, credentials (uid 1000, no
// capabilities, no_new_privs), a seccomp filter and an empty environment. Between steps and at the
// end the init kills every process left in the namespace and reaps them; when the init exits the
// kernel tears the namespace down, so nothing outlives the jail. The caller's process enforces an
// overall deadline and kills the init if it is passed, and sets the cgroup's memory limit to each
// step's own before the step starts.
#ifndef CISPO_SANDBOX_JAIL_H
#define CISPO_SANDBOX_JAIL_H

#include <stddef.h>

typedef struct {
    double wall_s;        // wall-clock limit; the whole step is killed when it passes
    double cpu_s;         // RLIMIT_CPU of each process (SIGXCPU, then SIGKILL one second later)
    size_t mem_bytes;     // RLIMIT_AS of each process; also sizes the cgroup memory limit
    size_t fsize_bytes;   // RLIMIT_FSIZE: the largest file a process may write
    int nofile;           // RLIMIT_NOFILE
    int nproc;            // RLIMIT_NPROC: processes + threads of the sandbox user in this jail
    size_t out_cap;       // bytes of stdout and of stderr kept; more is OutputLimitExceeded
    int as_unlimited;     // 1: no RLIMIT_AS; the step's cgroup alone holds its memory (runtimes that
                          // reserve far more address space than they use: Go, the JVM, V8)
} jail_limits_t;

typedef struct {
    const char *const *argv;  // argv[0]: absolute path inside the jail (e.g. /usr/bin/python3)
    const char *stdin_data;   // may be NULL (empty stdin)
    size_t stdin_len;
    jail_limits_t lim;
    int stop_unless_ok;       // 1: skip the later steps unless this one exits 0 (a compile step)
    int fresh_work;           // 1: /work starts as it was before the first such step (the tests of a
                              // request: none sees what another left, nor a rewritten harness)
    const char *const *env;   // NAME=value entries added to the step's fixed environment (at most
                              // 16; NULL-terminated; may be NULL)
} jail_step_t;

typedef struct {
    const char *name;         // relative path under /work: no "..", no leading '/'
    const char *data;
    size_t len;
    int mode;                 // e.g. 0644; 0755 for scripts
} jail_file_t;

typedef enum {
    JAIL_STEP_NOT_RUN = 0,    // skipped: an earlier step stopped the chain, or the jail failed first
    JAIL_STEP_EXITED,         // exited on its own (exit_code says how)
    JAIL_STEP_SIGNALED,       // killed by a signal it raised or received (not a limit of ours)
    JAIL_STEP_TIME_LIMIT,     // wall-clock or CPU limit
    JAIL_STEP_MEMORY_LIMIT,   // the cgroup memory limit fired (OOM kill)
    JAIL_STEP_OUTPUT_LIMIT,   // stdout or stderr passed out_cap
} jail_step_status_t;

typedef struct {
    jail_step_status_t status;
    int exit_code;            // when EXITED
    int signal;               // when SIGNALED or killed by a limit (SIGKILL, SIGXCPU)
    double wall_s, cpu_s;     // wall time of the step, CPU time of every process of the step
    long max_rss_kb;          // peak RSS of the main process (or of a reaped child, whichever is larger)
    char *out, *err;          // NUL-terminated, at most out_cap bytes each
    size_t out_len, err_len;
} jail_step_result_t;

typedef struct {
    char *name;
    char *data;
    size_t len;
} jail_fetched_t;

typedef struct jail_spec jail_spec_t;
struct jail_spec {
    const jail_file_t *files;
    int n_files;
    const jail_step_t *steps;
    int n_steps;
    size_t work_bytes;        // size of the /work tmpfs (disk quota of the run)
    int work_inodes;          // files + directories /work may hold
    const char *const *fetch; // files to copy back from /work after the last step (regular files only)
    int n_fetch;
    size_t fetch_cap;         // bytes per fetched file
    size_t fetch_total_cap;   // bytes of all fetched files together (0: 4 x fetch_cap); a file
                              // asked for twice, or under another name (a hard link), comes once
    // Called in the caller's process after each step finishes; returning nonzero stops the jail
    // (the remaining steps stay NOT_RUN). It may free r->out / r->err (setting them NULL) once it
    // has judged them, so hundreds of tests do not keep their outputs. May be NULL.
    int (*on_step)(void *ctx, int step, jail_step_result_t *r);
    void *ctx;
};

typedef struct {
    int ok;                       // 1: the jail ran (steps may still have failed); 0: sandbox fault
    char error[512];              // when !ok: what went wrong in the sandbox itself
    jail_step_result_t *steps;    // n_steps entries
    int n_steps;
    jail_fetched_t *fetched;
    int n_fetched;
    long peak_mem_kb;             // cgroup peak memory of the whole jail, or -1 without cgroups
    double setup_s;               // time from the call to the first step starting
} jail_result_t;

// Whether a file name from a request is a plain relative path under /work: no leading '/', no
// "." or ".." components, no empty components, no control characters, at most 200 bytes.
int jail_name_ok(const char *name);

// Runs the steps of spec in a new jail. Returns 0 when the jail ran (res->ok = 1), -1 on a sandbox
// fault (res->ok = 0, res->error says what). res is always filled and must be freed.
int jail_run(const jail_spec_t *spec, jail_result_t *res);
void jail_result_free(jail_result_t *res);

// ---- host features ----
typedef struct {
    int is_root;              // euid 0 with CAP_SETUID: maps the sandbox users to unprivileged host uids
    int userns;               // can create user namespaces (with PID, mount, net, IPC, UTS, cgroup ns)
    int seccomp;              // seccomp filters load
    int cgroup_v2;            // cgroup v2 memory + pids controllers usable
    int cgroup_v1;            // cgroup v1 memory + pids hierarchies writable (fallback)
    char missing[1024];       // what is missing, one phrase per feature, "" when all present
} jail_host_t;

// Probes the host once (cached). Never fails; read ->missing.
const jail_host_t *jail_probe(void);

typedef struct {
    // Run even when user namespaces or seccomp are missing: the program then runs with rlimits,
    // a private temporary directory and a process-group kill only. Never the default.
    int allow_unconfined;
    int use_cgroups;          // 1 (default): use cgroup memory + pids limits when the host has them
    double cpus;              // CPU quota of each jail (its cpu cgroup: every process and thread of
                              // it together), in CPUs: 0 means 1; below 0, no quota (a cpu cgroup
                              // per jail still shares the cores equally between jails)
} jail_options_t;
void jail_set_options(const jail_options_t *opt);
const jail_options_t *jail_get_options(void);

// For the same kind of process, between jobs: reaps the last jail (its teardown then happens off
// the next caller's clock) and makes the next one ahead — namespaces created, root built, waiting
// in this thread's cgroup — so jail_run only hands it the job. The first call also switches the
// thread to that mode: jail_run leaves a finished jail for jail_idle to reap instead of waiting
// for its teardown, and makes the next jail while the current one runs.
void jail_idle(void);
// Before such a process exits: kills the jail made ahead and reaps everything, so no init is left
// for the host's pid 1 to reap.
void jail_idle_end(void);

// Cancelling a jail from outside its process (a pool worker's, see pool.c): jail_cancel_arm
// installs a SIGUSR1 handler (without SA_RESTART) and clears the flag; a SIGUSR1 after it makes the
// running jail_run, or the next one until the next arm, kill its jail at once and fail with
// "cancelled". Single-threaded processes only (the signal goes to any thread).
void jail_cancel_arm(void);

// Whether jail_run will run confined, or refuse (and why) — one line for the user.
int jail_check_ready(char *why, size_t n);

#endif
