// sandbox/jail.c — the caller's side of a jail: probes the host, creates the namespaces and the
// cgroup, maps the sandbox users, releases the init, collects its reports under an overall
// deadline, and reaps it.
// defines: jail_probe, jail_set_options, jail_get_options, jail_check_ready, jail_run,
//          jail_result_free, jail_idle, jail_idle_end
#include <errno.h>
#include <fcntl.h>
#include <linux/seccomp.h>
#include <net/if.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "sandbox/jail_internal.h"

// Host uids the namespace's root and sandbox user map to when we are root: unprivileged ids that
// own nothing on the host, so RLIMIT_NPROC applies and no host file is theirs. Each thread's jails
// get a pair of their own (base + 2 x thread id; thread ids are below 2^22), so the kernel's
// per-user quotas (pipe buffers, inotify, ...) are not shared between jails that run at once.
#define HOST_UID_BASE 1879048192u

static const int ns_flags = CLONE_NEWUSER | CLONE_NEWPID | CLONE_NEWNS | CLONE_NEWNET | CLONE_NEWIPC | CLONE_NEWUTS;

void jail_fmt(char *buf, size_t n, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, n, fmt, ap);
    va_end(ap);
}

static jail_host_t host;
static pthread_once_t probe_once_ctl = PTHREAD_ONCE_INIT;
static jail_options_t options = {.allow_unconfined = 0, .use_cgroups = 1};

static void add_missing(const char *what) {
    size_t k = strlen(host.missing);
    if (k) jail_copy(host.missing + k, sizeof host.missing - k, "; "), k = strlen(host.missing);
    jail_copy(host.missing + k, sizeof host.missing - k, what);
}

static int pretend_missing(const char *feature) {
    const char *e = getenv("CISPO_SANDBOX_PRETEND_MISSING");  // tests of the refusal path
    return e && strstr(e, feature);
}

static void probe(void) {
    host.is_root = geteuid() == 0;
    pid_t pid = (pid_t)syscall(SYS_clone, ns_flags | CLONE_NEWCGROUP | SIGCHLD, NULL, NULL, NULL, 0);
    if (pid == 0) _exit(0);
    if (pid > 0) {
        int st;
        while (waitpid(pid, &st, 0) < 0 && errno == EINTR) {}
        host.userns = WIFEXITED(st) && WEXITSTATUS(st) == 0;
    }
    if (pretend_missing("userns")) host.userns = 0;
    if (!host.userns)
        add_missing("user namespaces are not available (kernel.unprivileged_userns_clone=0, "
                    "user.max_user_namespaces=0 or a container policy): no PID/mount/network isolation");
    char err[256] = "";
    if (jail_seccomp_prog(err, sizeof err)) {
        pid = fork();
        if (pid == 0) {
            _exit(prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) || prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, jail_seccomp_prog(err, sizeof err)));
        }
        int st = 1;
        if (pid > 0) while (waitpid(pid, &st, 0) < 0 && errno == EINTR) {}
        host.seccomp = pid > 0 && WIFEXITED(st) && WEXITSTATUS(st) == 0;
        if (!host.seccomp) jail_fmt(err, sizeof err, "the kernel refused a seccomp filter (CONFIG_SECCOMP_FILTER off?)");
    }
    if (pretend_missing("seccomp")) host.seccomp = 0, jail_fmt(err, sizeof err, "pretended missing");
    if (!host.seccomp) {
        char m[320];
        jail_fmt(m, sizeof m, "seccomp is not available (%s): no syscall filter", err);
        add_missing(m);
    }
    char why[1400] = "";
    int v = jail_cgroup_probe(why, sizeof why);
    if (pretend_missing("cgroup")) v = 0, jail_fmt(why, sizeof why, "pretended missing");
    host.cgroup_v2 = v == 2;
    host.cgroup_v1 = v == 1;
    if (!v) {
        char m[1500];
        jail_fmt(m, sizeof m, "no usable cgroup memory+pids controllers (%s): no limit on the jail's total memory", why);
        add_missing(m);
    }
}

const jail_host_t *jail_probe(void) {
    pthread_once(&probe_once_ctl, probe);
    return &host;
}

void jail_set_options(const jail_options_t *opt) { options = *opt; }

const jail_options_t *jail_get_options(void) { return &options; }

int jail_check_ready(char *why, size_t n) {
    const jail_host_t *h = jail_probe();
    int full = h->userns && h->seccomp && (h->cgroup_v1 || h->cgroup_v2 || !options.use_cgroups);
    if (full) return jail_copy(why, n, ""), 0;
    if (options.allow_unconfined) {
        jail_fmt(why, n, "running with reduced isolation (accepted): %s", h->missing);
        return 0;
    }
    jail_fmt(why, n, "refusing to run untrusted code without full isolation: %s. Fix the host, or pass "
             "--allow-unconfined to accept the risk", h->missing);
    return -1;
}

static int write_proc(pid_t pid, const char *file, const char *val) {
    char p[64];
    jail_fmt(p, sizeof p, "/proc/%d/%s", (int)pid, file);
    int fd = open(p, O_WRONLY | O_CLOEXEC);
    if (fd < 0) return -1;
    ssize_t w = write(fd, val, strlen(val));
    close(fd);
    return w == (ssize_t)strlen(val) ? 0 : -1;
}

static int map_users(pid_t pid, int as_root, char *err, size_t n) {
    char map[128];
    if (as_root) {
        unsigned base = HOST_UID_BASE + 2u * ((unsigned)syscall(SYS_gettid) & 0x3fffffu);
        jail_fmt(map, sizeof map, "0 %u 1\n1000 %u 1\n", base, base + 1);
        if (write_proc(pid, "uid_map", map) || write_proc(pid, "gid_map", map))
            return snprintf(err, n, "writing the uid/gid maps of the jail: %s", strerror(errno)), -1;
        return 0;
    }
    // unprivileged: the only id we may map is our own; groups cannot be changed inside
    if (write_proc(pid, "setgroups", "deny")) return snprintf(err, n, "writing setgroups of the jail: %s", strerror(errno)), -1;
    jail_fmt(map, sizeof map, "0 %u 1\n", (unsigned)geteuid());
    if (write_proc(pid, "uid_map", map)) return snprintf(err, n, "writing the uid map of the jail: %s", strerror(errno)), -1;
    jail_fmt(map, sizeof map, "0 %u 1\n", (unsigned)getegid());
    if (write_proc(pid, "gid_map", map)) return snprintf(err, n, "writing the gid map of the jail: %s", strerror(errno)), -1;
    return 0;
}

static volatile sig_atomic_t cancel_flag;
static void on_cancel(int sig) { (void)sig, cancel_flag = 1; }

void jail_cancel_arm(void) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_cancel;  // no SA_RESTART: a poll below returns at once
    sigemptyset(&sa.sa_mask);
    sigaction(SIGUSR1, &sa, NULL);
    cancel_flag = 0;
}

// Reads exactly n bytes before the deadline. 0 ok, -1 EOF/error, -2 deadline, -3 cancelled
// (jail_cancel_arm).
static int read_full(int fd, void *buf, size_t n, double deadline) {
    char *p = buf;
    while (n) {
        if (cancel_flag) return -3;
        double left = deadline - jail_now();
        if (left <= 0) return -2;
        struct pollfd pfd = {fd, POLLIN, 0};
        if (left > 0.1) left = 0.1;  // the flag is checked again at least this often
        int k = poll(&pfd, 1, (int)(left * 1000) + 1);
        if (k < 0 && errno == EINTR) continue;
        if (k == 0) continue;
        ssize_t r = read(fd, p, n);
        if (r < 0 && (errno == EINTR || errno == EAGAIN)) continue;
        if (r <= 0) return -1;
        p += r;
        n -= (size_t)r;
    }
    return 0;
}

static int fail(jail_result_t *res, const char *prefix, const char *arg) {
    char buf[1024];
    jail_fmt(buf, sizeof buf, "%s%s", prefix, arg);
    res->ok = 0;
    jail_copy(res->error, sizeof res->error, buf);
    return -1;
}

// One init process: its pid, the read end of its message pipe, the write end of its job pipe (a
// jail made ahead of its job), and the cgroup it was put in.
typedef struct {
    pid_t pid;
    int ctl, job, sync;  // sync: one byte lets the init start, then each step after its BEGIN
    char cg_dir[640];
} jail_proc_t;
#define JAIL_PROC_NONE ((jail_proc_t){0, -1, -1, -1, ""})

static void proc_close(jail_proc_t *jp) {
    if (jp->ctl >= 0) close(jp->ctl);
    if (jp->job >= 0) close(jp->job);
    if (jp->sync >= 0) close(jp->sync);
    *jp = JAIL_PROC_NONE;
}

static __thread jail_proc_t spare = {0, -1, -1, -1, ""};  // made by jail_idle, used by the next jail_run
#define MAX_PENDING 16
static __thread pid_t pending[MAX_PENDING];           // inits that reported DONE, not yet reaped
static __thread int n_pending;
static __thread int defer_reaping;                    // set by jail_idle: the thread calls it between jails
static __thread size_t last_cg_mem;                   // cgroup limits of the last jail: the next
static __thread int last_cg_pids;                     // one made ahead starts with them

// Reaps finished inits: those done tearing down (block = 0), or all of them (block = 1). A
// namespace's teardown waits on the kernel (RCU grace periods for its mounts), which is why it is
// not waited for between jobs.
static void reap_pending(int block) {
    int k = 0;
    for (int i = 0; i < n_pending; i++) {
        pid_t r;
        do r = waitpid(pending[i], NULL, block ? 0 : WNOHANG);
        while (r < 0 && errno == EINTR);
        if (r == 0) pending[k++] = pending[i];  // still exiting
    }
    n_pending = k;
}

// Clones an init in new namespaces, maps its users, puts it in cg, releases it. spec NULL: it
// builds the root and then waits for its job on jp->job.
static int spawn(jail_proc_t *jp, const jail_spec_t *spec, int confined, const char *tmpdir, const jail_cgroup_t *cg,
                 char *err, size_t errn) {
    const jail_host_t *h = jail_probe();
    int ctl[2], sync[2], job[2] = {-1, -1};
    if (pipe2(ctl, O_CLOEXEC) || pipe2(sync, O_CLOEXEC) || (!spec && pipe2(job, O_CLOEXEC)))
        return jail_fmt(err, errn, "pipe: %s", strerror(errno)), -1;
    jail_init_args_t args = {spec, ctl[1], sync[0], job[0], confined, confined && h->is_root, tmpdir, jail_now()};
    int flags = confined ? ns_flags : 0;
    pid_t pid = (pid_t)syscall(SYS_clone, flags | SIGCHLD, NULL, NULL, NULL, 0);
    if (pid == 0) {
        close(ctl[0]);
        close(sync[1]);
        if (job[1] >= 0) close(job[1]);
        jail_init_main(&args);
    }
    close(ctl[1]);
    close(sync[0]);
    if (job[0] >= 0) close(job[0]);
    if (pid < 0) {
        close(ctl[0]);
        close(sync[1]);
        if (job[1] >= 0) close(job[1]);
        return jail_fmt(err, errn, "clone of the jail failed: %s", strerror(errno)), -1;
    }
    int rc = 0;
    if (confined && map_users(pid, h->is_root, err, errn)) rc = -1;
    if (rc == 0 && cg->version && jail_cgroup_attach(cg, pid)) {
        jail_fmt(err, errn, "moving the jail into its cgroup: %s", strerror(errno));
        rc = -1;
    }
    if (rc == 0 && write(sync[1], "g", 1) != 1) jail_fmt(err, errn, "releasing the jail: %s", strerror(errno)), rc = -1;
    if (rc != 0) {
        kill(pid, SIGKILL);
        while (waitpid(pid, NULL, 0) < 0 && errno == EINTR) {}
        close(ctl[0]);
        close(sync[1]);
        if (job[1] >= 0) close(job[1]);
        return -1;
    }
    jp->pid = pid;
    jp->ctl = ctl[0];
    jp->job = job[1];
    jp->sync = sync[1];
    jail_copy(jp->cg_dir, sizeof jp->cg_dir, cg->mem_dir);
    return 0;
}

void jail_idle(void) {
    defer_reaping = 1;
    reap_pending(0);
    const jail_host_t *h = jail_probe();
    if (spare.pid > 0 || !(h->userns && h->seccomp)) return;
    char err[256];
    jail_cgroup_t none = {0}, *cgp = &none;
    if (options.use_cgroups && (h->cgroup_v1 || h->cgroup_v2)) {
        cgp = jail_cgroup_acquire(last_cg_mem ? last_cg_mem : (768u << 20), last_cg_pids ? last_cg_pids : 80, err, sizeof err);
        if (!cgp) return;
    }
    if (!jail_seccomp_prog(err, sizeof err)) return;
    if (spawn(&spare, NULL, 1, "", cgp, err, sizeof err)) spare = JAIL_PROC_NONE;
}

void jail_idle_end(void) {
    reap_pending(1);
    if (spare.pid > 0) {
        kill(spare.pid, SIGKILL);
        while (waitpid(spare.pid, NULL, 0) < 0 && errno == EINTR) {}
    }
    proc_close(&spare);
}

// A step's process is forked and waiting (JAIL_MSG_BEGIN): hold the step to its own memory (the
// compile step's is larger than the program's), move its process into the steps' cgroup, away
// from the init (see cgroup.c), and let the init start it.
static int begin_step(const jail_proc_t *jp, jail_cgroup_t *cg, const jail_limits_t *l, size_t work_bytes, char *err, size_t n) {
    if (cg->version) {
        size_t mem = (l->mem_bytes ? l->mem_bytes : (512u << 20)) + (work_bytes ? work_bytes : (64u << 20)) + (64u << 20);
        if (jail_cgroup_set_step_mem(cg, mem)) return jail_fmt(err, n, "setting the memory limit of a step: %s", strerror(errno)), -1;
        char path[96], buf[64];
        jail_fmt(path, sizeof path, "/proc/%d/task/%d/children", (int)jp->pid, (int)jp->pid);
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        ssize_t k = fd >= 0 ? read(fd, buf, sizeof buf - 1) : -1;
        if (fd >= 0) close(fd);
        pid_t child = k > 0 ? (buf[k] = 0, (pid_t)atoi(buf)) : 0;  // its only child: the last step's are reaped
        if (child <= 0 || jail_cgroup_attach_step(cg, child))
            return jail_fmt(err, n, "moving a step into its cgroup (%s): %s", path, strerror(errno)), -1;
    }
    if (write(jp->sync, "g", 1) != 1) return jail_fmt(err, n, "starting a step: %s", strerror(errno)), -1;
    return 0;
}

int jail_run(const jail_spec_t *spec, jail_result_t *res) {
    double t0 = jail_now();
    reap_pending(n_pending == MAX_PENDING);
    memset(res, 0, sizeof *res);
    res->n_steps = spec->n_steps;
    res->steps = calloc((size_t)(spec->n_steps > 0 ? spec->n_steps : 1), sizeof *res->steps);
    res->peak_mem_kb = -1;
    if (!res->steps) return fail(res, "", "out of memory");
    char why[700];
    if (jail_check_ready(why, sizeof why) != 0) return fail(res, "", why);
    const jail_host_t *h = jail_probe();
    int confined = h->userns && h->seccomp;
    char err[256];
    if (!jail_seccomp_prog(err, sizeof err) && confined) return fail(res, "seccomp: ", err);

    // limits of the whole jail: the largest step plus the work tmpfs, and room for the init's own
    // pages above what a step may use (each step is held to its own, see begin_step)
    size_t mem = 0;
    int nproc = 0;
    double total_wall = 5.0;
    for (int i = 0; i < spec->n_steps; i++) {
        const jail_limits_t *l = &spec->steps[i].lim;
        if (l->mem_bytes > mem) mem = l->mem_bytes;
        if (l->nproc > nproc) nproc = l->nproc;
        total_wall += (l->wall_s > 0 ? l->wall_s : 10.0) + 1.0;
    }
    jail_cgroup_t none = {0}, *cgp = &none;
    if (options.use_cgroups && (h->cgroup_v1 || h->cgroup_v2)) {
        size_t work = spec->work_bytes ? spec->work_bytes : (64u << 20);
        last_cg_mem = (mem ? mem : (512u << 20)) + work + (128u << 20);
        last_cg_pids = (nproc ? nproc : 32) + 16;
        cgp = jail_cgroup_acquire(last_cg_mem, last_cg_pids, err, sizeof err);
        if (!cgp) return fail(res, "cgroup: ", err);
    }
    if (spare.pid > 0 && strcmp(spare.cg_dir, cgp->mem_dir)) {  // its cgroup was replaced: unusable
        kill(spare.pid, SIGKILL);
        while (waitpid(spare.pid, NULL, 0) < 0 && errno == EINTR) {}
        proc_close(&spare);
    }
    const jail_cgroup_t cg = *cgp;  // the thread keeps it for its next jail
    long oom_before = jail_cgroup_oom_kills(&cg);

    char tmpdir[64] = "";
    if (!confined) {  // accepted reduced isolation: a private host directory stands in for /work
        jail_fmt(tmpdir, sizeof tmpdir, "/tmp/cispo-work-XXXXXX");
        if (!mkdtemp(tmpdir)) return fail(res, "mkdtemp: ", strerror(errno));
    }
    jail_proc_t jp = JAIL_PROC_NONE;
    if (confined && spare.pid > 0 && !strcmp(spare.cg_dir, cg.mem_dir)) {
        // a jail made ahead, root built, waiting in this thread's cgroup: hand it the job
        jp = spare;
        spare = JAIL_PROC_NONE;
        int bad = jail_job_write(jp.job, spec);
        close(jp.job);
        jp.job = -1;
        if (bad) {  // it died while waiting: make a fresh one below
            kill(jp.pid, SIGKILL);
            while (waitpid(jp.pid, NULL, 0) < 0 && errno == EINTR) {}
            proc_close(&jp);
        }
    }
    if (!jp.pid && spawn(&jp, spec, confined, tmpdir, &cg, err, sizeof err)) return fail(res, "", err);
    pid_t pid = jp.pid;
    if (defer_reaping && confined && spare.pid == 0 && spawn(&spare, NULL, 1, "", &cg, err, sizeof err))
        spare = JAIL_PROC_NONE;  // the next one, made while this one runs; optional
    int ctl = jp.ctl;  // the init's messages

    double deadline = t0 + total_wall;
    int done = 0, stopped = 0, next_step = 0;
    res->ok = 1;
    while (!done) {
        jail_msg_t m;
        int r = read_full(ctl, &m, sizeof m, deadline);
        if (r == -2) {  // the overall deadline: the init itself is stuck
            if (next_step < spec->n_steps) res->steps[next_step].status = JAIL_STEP_TIME_LIMIT;
            break;
        }
        if (r == -3) {  // cancelled (its client went away): the kill below ends the whole jail
            res->ok = 0, jail_fmt(res->error, sizeof res->error, "cancelled");
            break;
        }
        if (r == -1) {
            // an init killed for memory (it never should be: see spawn) is still the program's doing
            if (!stopped && jail_cgroup_oom_kills(&cg) > oom_before && next_step < spec->n_steps)
                res->steps[next_step].status = JAIL_STEP_MEMORY_LIMIT;
            else if (!stopped) res->ok = 0, jail_fmt(res->error, sizeof res->error, "the jail init died without a report");
            break;
        }
        if (m.len > ((size_t)1 << 31)) {
            res->ok = 0, jail_fmt(res->error, sizeof res->error, "bad message from the jail init");
            break;
        }
        char *payload = malloc(m.len + 1);
        if (!payload || (m.len && read_full(ctl, payload, m.len, deadline) != 0)) {
            free(payload);
            res->ok = 0, jail_fmt(res->error, sizeof res->error, "truncated message from the jail init");
            break;
        }
        payload[m.len] = 0;
        if (m.type == JAIL_MSG_READY) {
            // a jail made ahead announces itself first; nothing to do
        } else if (m.type == JAIL_MSG_BEGIN && m.step < (uint32_t)spec->n_steps) {
            if (begin_step(&jp, cgp, &spec->steps[m.step].lim, spec->work_bytes, res->error, sizeof res->error)) {
                free(payload);
                res->ok = 0;
                break;
            }
        } else if (m.type == JAIL_MSG_STARTED) {
            res->setup_s = jail_now() - t0;
        } else if (m.type == JAIL_MSG_FAIL) {
            res->ok = 0;
            jail_fmt(res->error, sizeof res->error, "jail setup: %s", payload);
            done = 1;
        } else if (m.type == JAIL_MSG_DONE) {
            done = 1;
        } else if (m.type == JAIL_MSG_STEP && m.step < (uint32_t)spec->n_steps && m.len >= sizeof(jail_wire_step_t)) {
            jail_wire_step_t w;
            memcpy(&w, payload, sizeof w);
            if (sizeof w + w.out_len + w.err_len != m.len) {
                free(payload);
                res->ok = 0, jail_fmt(res->error, sizeof res->error, "inconsistent step message from the jail init");
                break;
            }
            jail_step_result_t *s = &res->steps[m.step];
            s->status = (jail_step_status_t)w.status;
            s->exit_code = w.exit_code;
            s->signal = w.signal;
            s->wall_s = w.wall_s;
            s->cpu_s = w.cpu_s;
            s->max_rss_kb = (long)w.max_rss_kb;
            s->out = malloc(w.out_len + 1);
            s->err = malloc(w.err_len + 1);
            if (s->out) memcpy(s->out, payload + sizeof w, w.out_len), s->out[w.out_len] = 0, s->out_len = w.out_len;
            if (s->err) memcpy(s->err, payload + sizeof w + w.out_len, w.err_len), s->err[w.err_len] = 0, s->err_len = w.err_len;
            long oom = jail_cgroup_oom_kills(&cg);
            if (oom > oom_before && (s->status == JAIL_STEP_SIGNALED || s->status == JAIL_STEP_EXITED)) s->status = JAIL_STEP_MEMORY_LIMIT;
            oom_before = oom;
            next_step = (int)m.step + 1;
            if (spec->on_step && spec->on_step(spec->ctx, (int)m.step, s)) {
                stopped = 1;
                free(payload);
                break;
            }
        } else if (m.type == JAIL_MSG_FILE && m.len >= 4) {
            uint32_t nl;
            memcpy(&nl, payload, 4);
            if ((size_t)nl + 4 <= m.len) {
                jail_fetched_t *f = realloc(res->fetched, (size_t)(res->n_fetched + 1) * sizeof *f);
                if (f) {
                    res->fetched = f;
                    f = &f[res->n_fetched++];
                    f->name = strndup(payload + 4, nl);
                    f->len = m.len - 4 - nl;
                    f->data = malloc(f->len + 1);
                    if (f->data) memcpy(f->data, payload + 4 + nl, f->len), f->data[f->len] = 0;
                }
            }
        }
        free(payload);
    }
    if (done && res->ok && defer_reaping) {
        pending[n_pending++] = pid;  // it is exiting on its own; reaped later, off the caller's clock
    } else {
        kill(pid, SIGKILL);  // a no-op after a clean finish; otherwise the whole namespace goes with it
        while (waitpid(pid, NULL, 0) < 0 && errno == EINTR) {}
    }
    proc_close(&jp);
    res->peak_mem_kb = jail_cgroup_peak_kb(&cg);
    if (tmpdir[0]) {
        char cmd[128];  // our own mkdtemp dir; the processes that wrote into it are dead
        jail_fmt(cmd, sizeof cmd, "rm -rf -- '%s'", tmpdir);
        if (system(cmd) != 0) {}
    }
    return res->ok ? 0 : -1;
}

void jail_result_free(jail_result_t *res) {
    for (int i = 0; i < res->n_steps && res->steps; i++) free(res->steps[i].out), free(res->steps[i].err);
    free(res->steps);
    for (int i = 0; i < res->n_fetched; i++) free(res->fetched[i].name), free(res->fetched[i].data);
    free(res->fetched);
    memset(res, 0, sizeof *res);
}
