// sandbox/jail_internal.h — pieces of the jail shared between its files (not a public API).
// defines: jail_seccomp_prog, jail_cgroup_t, jail_cgroup_create, jail_cgroup_attach, jail_cgroup_attach_step,
//          jail_cgroup_set_mem, jail_cgroup_set_step_mem, jail_cgroup_peak_kb, jail_cgroup_oom_kills,
//          jail_cgroup_destroy,
//          jail_init_main, the init -> caller wire messages
#ifndef CISPO_SANDBOX_JAIL_INTERNAL_H
#define CISPO_SANDBOX_JAIL_INTERNAL_H

#include <linux/filter.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

#include "sandbox/jail.h"

// The compiled seccomp program (built once per process with libseccomp, loaded in each sandboxed
// child with prctl). NULL + err filled when libseccomp cannot build it.
const struct sock_fprog *jail_seccomp_prog(char *err, size_t n);

// ---- cgroups (v2 when it has memory + pids, else v1 memory + pids) ----
typedef struct {
    int version;              // 0: none, 1 or 2
    char mem_dir[640];        // v2: the one dir; v1: the memory controller dir
    char pids_dir[640];       // v1 only
    char step_dir[660];       // <mem_dir>/step: the processes of the running step
    char init_dir[660];       // v2: <mem_dir>/init, the init's (v1: mem_dir itself)
    int peak_valid;           // the peak counter covers only the current jail (v2 cannot reset it)
    size_t mem_limit, step_limit;  // the memory limits now set
    char cpu_dir[640];        // v1: the cpu controller's dir ("" without one); v2: mem_dir when it has cpu
    long cpu_quota_us;        // per cfs period (100 ms); 0: no quota
} jail_cgroup_t;
// Creates a cgroup for one jail with the given limits. Returns 0, or -1 (cg->version = 0) with err.
int jail_cgroup_create(jail_cgroup_t *cg, size_t mem_bytes, int pids_max, char *err, size_t n);
int jail_cgroup_attach(const jail_cgroup_t *cg, pid_t pid);
long jail_cgroup_peak_kb(const jail_cgroup_t *cg);
// Memory limits (and, on v1, socket-buffer limits, which v1 does not count as memory) of the whole
// jail, and of its steps' sub-cgroup (set between steps; each step's processes are moved there
// by jail_cgroup_attach_step, the init stays above). 0 or -1.
int jail_cgroup_set_mem(jail_cgroup_t *cg, size_t mem_bytes);
int jail_cgroup_set_step_mem(jail_cgroup_t *cg, size_t mem_bytes);
int jail_cgroup_attach_step(const jail_cgroup_t *cg, pid_t pid);
long jail_cgroup_oom_kills(const jail_cgroup_t *cg);
void jail_cgroup_destroy(jail_cgroup_t *cg);
// The calling thread's cgroup for its next jail, limits set (see cgroup.c); NULL + err on failure.
// Not to be destroyed by the caller.
jail_cgroup_t *jail_cgroup_acquire(size_t mem_bytes, int pids_max, char *err, size_t n);
// Which cgroup support the host has: 2, 1 or 0, with the reason in why when 0.
int jail_cgroup_probe(char *why, size_t n);

// ---- init (pid 1 of the jail) -> caller messages, over a pipe ----
// BEGIN: a step's process is forked and waits; the caller sets the steps' cgroup's memory limit to
// this step's and moves the process into it (away from the init), then writes one byte to the
// init's sync pipe to let it start.
enum { JAIL_MSG_STEP = 1, JAIL_MSG_FILE = 2, JAIL_MSG_FAIL = 3, JAIL_MSG_DONE = 4, JAIL_MSG_STARTED = 5, JAIL_MSG_READY = 6,
       JAIL_MSG_BEGIN = 7 };
typedef struct {
    uint32_t type, step;
    uint64_t len;             // payload bytes that follow
} jail_msg_t;
typedef struct {
    int32_t status, exit_code, signal, pad;
    double wall_s, cpu_s;
    int64_t max_rss_kb;
    uint64_t out_len, err_len;  // the bytes follow this struct: stdout then stderr
} jail_wire_step_t;

// Body of the init process; never returns. ctl: the write end of the message pipe; sync: the read
// end the caller writes one byte to once the uid maps and cgroup are in place, and once per step
// after a BEGIN.
typedef struct {
    const jail_spec_t *spec;  // NULL for a jail made ahead of its job: read from job_fd
    int ctl_fd, sync_fd, job_fd;
    int confined;             // 0: unconfined fallback (no namespaces, host temp dir)
    int map_users;            // 1: root host — sandbox uid 1000 exists in the namespace
    const char *work_host_dir;  // unconfined only: the host directory used as the work dir
    double t_start;
} jail_init_args_t;
void jail_init_main(const jail_init_args_t *a) __attribute__((noreturn));

double jail_now(void);

// A job for a jail created ahead of it (jail_job.c): written by the caller, read by the init.
int jail_job_write(int fd, const jail_spec_t *spec);
jail_spec_t *jail_job_read(int fd);  // NULL on a broken stream

// snprintf whose truncation is intended (bounded messages and paths). A function of our own, so
// the compiler's truncation analysis of snprintf stays on for the rest of the code.
void jail_fmt(char *buf, size_t n, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

// Bounded string copy that always terminates (truncating silently is the intent where used).
static inline void jail_copy(char *dst, size_t n, const char *src) {
    size_t k = 0;
    if (!n) return;
    while (src[k] && k + 1 < n) k++;
    for (size_t i = 0; i < k; i++) dst[i] = src[i];
    dst[k] = 0;
}

#endif
