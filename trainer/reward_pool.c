// trainer/reward_pool.c — verifier workers over socket pairs (reward_pool.h).
// Wire format, trainer -> worker: seven length-prefixed strings (verifier, gold, response, tests_json,
// fn_name, question, meta_json; length -1 = NULL). Worker -> trainer: one verdict_t (plain data, same binary).
//
// A worker is this same program started again: fork, then execve of /proc/self/exe with the socket's
// descriptor in CISPO_VERIFIER_WORKER, which worker_entry (a constructor) reads before main. A bare fork
// would leave the worker running verifiers in a copy of a multi-threaded process (MPI's progress threads,
// BLAS's pool), where POSIX allows only async-signal-safe calls: a lock that another thread held at the fork
// stays held in the copy for ever. Between fork and execve the child calls only async-signal-safe functions.
#include "trainer/reward_pool.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "base/common.h"
#include "base/fdio.h"

#define WORKER_ENV "CISPO_VERIFIER_WORKER"

extern char **environ;

typedef struct {
    pid_t pid;
    int fd;          // trainer's end of the socket pair
    int job;         // index of the job in flight, -1 when idle
    double started;  // when that job was sent
} worker_t;

struct reward_pool {
    int n;
    double timeout_s;
    worker_t *w;
};

static int write_str(int fd, const char *s) {
    int32_t len = s ? (int32_t)strlen(s) : -1;
    if (fdio_send_all(fd, &len, sizeof len)) return -1;
    return len > 0 ? fdio_send_all(fd, s, (size_t)len) : 0;
}

// NULL for length -1; *ok = 0 on EOF or error.
static char *read_str(int fd, int *ok) {
    int32_t len;
    if (fdio_read_all(fd, &len, sizeof len) || len < -1) return *ok = 0, NULL;
    if (len < 0) return NULL;
    char *s = cispo_malloc((size_t)len + 1);
    if (len > 0 && fdio_read_all(fd, s, (size_t)len)) return free(s), *ok = 0, NULL;
    s[len] = 0;
    return s;
}

static void verify_one(const char *name, const verify_request_t *req, verdict_t *out) {
    memset(out, 0, sizeof *out);
    const verifier_t *v = name ? verifier_find(name) : NULL;
    if (!v) {
        out->failed = 1;
        snprintf(out->reason, sizeof out->reason, "unknown verifier '%s'", name ? name : "(none)");
        return;
    }
    if (v->verify(req, out) && !out->failed) out->failed = 1;
}

// ---- worker process: read a request, verify, answer; exit when the trainer closes its end ----
static void ignore_stop(int sig) { (void)sig; }

static void worker_main(int fd) {
    signal(SIGPIPE, SIG_IGN);
    // Ctrl-C and SIGTERM reach the whole process group: the trainer finishes its step, scoring included, and
    // then closes the sockets. Caught rather than ignored, so that the programs the code sandbox runs start
    // with the default actions.
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = ignore_stop;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESTART;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    for (;;) {
        int ok = 1;
        char *f[7];
        for (int i = 0; i < 7; i++) f[i] = read_str(fd, &ok);
        if (!ok) _exit(0);
        verify_request_t req = {.gold = f[1], .response = f[2], .tests_json = f[3], .fn_name = f[4],
                                .question = f[5], .meta_json = f[6]};
        verdict_t out;
        verify_one(f[0], &req, &out);
        for (int i = 0; i < 7; i++) free(f[i]);
        if (fdio_send_all(fd, &out, sizeof out)) _exit(0);
    }
}

// A process started with WORKER_ENV set to a socket's descriptor serves that socket and exits, before
// main runs: whatever program this object is linked into (cispo, a test) can start workers of itself.
__attribute__((constructor)) static void worker_entry(void) {
    const char *s = getenv(WORKER_ENV);
    if (!s) return;
    char *end;
    errno = 0;
    long fd = strtol(s, &end, 10);
    struct stat st;
    if (errno || end == s || *end || fd < 0 || fd > INT_MAX || fstat((int)fd, &st) || !S_ISSOCK(st.st_mode)) {
        fprintf(stderr, "cispo: %s=%s is not the descriptor of a verifier worker's socket (the variable is set "
                "by the trainer for the workers it starts; unset it)\n", WORKER_ENV, s);
        _exit(2);
    }
    unsetenv(WORKER_ENV);  // not for the verifiers' own children (the code sandbox)
    prctl(PR_SET_NAME, "cispo-verifier");  // as ps and top name it (execve named it "exe")
    worker_main((int)fd);
}

// The worker's environment: the trainer's (the remote verifiers' settings are there, trainer/train_setup.c),
// WORKER_ENV naming the socket, and one BLAS thread: the worker stays single-threaded, so that its own
// forks (the code sandbox) are safe too. The caller frees the array and *own, its one string of our own.
static char **worker_environ(int fd, char **own) {
    size_t n = 0;
    while (environ && environ[n]) n++;
    char **env = cispo_malloc((n + 3) * sizeof *env);
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        if (strncmp(environ[i], WORKER_ENV "=", strlen(WORKER_ENV) + 1) &&
            strncmp(environ[i], "OPENBLAS_NUM_THREADS=", 21))
            env[k++] = environ[i];
    *own = cispo_malloc(64);
    snprintf(*own, 64, "%s=%d", WORKER_ENV, fd);
    env[k++] = *own;
    env[k++] = "OPENBLAS_NUM_THREADS=1";
    env[k] = NULL;
    return env;
}

static int spawn(reward_pool_t *p, int i) {
    int sv[2], ep[2];  // the socket pair; a pipe on which the child reports a failed execve
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv))
        return cispo_fail("reward pool: socketpair: %s", strerror(errno));
    if (pipe2(ep, O_CLOEXEC)) {
        close(sv[0]), close(sv[1]);
        return cispo_fail("reward pool: pipe: %s", strerror(errno));
    }
    char *own, **env = worker_environ(sv[1], &own);
    char *argv[] = {"cispo-verifier-worker", NULL};
    pid_t pid = fork();  // (the child flushes no stdio buffer: it execs or _exits)
    if (pid == 0) {  // async-signal-safe calls only, up to execve
        int err = fcntl(sv[1], F_SETFD, 0) ? errno : 0;
        if (!err) execve("/proc/self/exe", argv, env), err = errno;
        ssize_t w = write(ep[1], &err, sizeof err);
        (void)w;
        _exit(127);
    }
    int fork_err = errno;
    free(own), free(env);
    close(sv[1]), close(ep[1]);
    int err = 0;
    if (pid > 0 && fdio_read_all(ep[0], &err, sizeof err) == 0) {  // execve failed: the child said why
        close(ep[0]), close(sv[0]);
        waitpid(pid, NULL, 0);
        return cispo_fail("reward pool: cannot start a verifier worker (execve /proc/self/exe): %s", strerror(err));
    }
    close(ep[0]);
    if (pid < 0) {
        close(sv[0]);
        return cispo_fail("reward pool: fork: %s", strerror(fork_err));
    }
    p->w[i] = (worker_t){.pid = pid, .fd = sv[0], .job = -1};
    return 0;
}

// Closes worker w's socket and kills it.
static void reap(worker_t *w) {
    if (w->fd >= 0) close(w->fd);
    if (w->pid > 0) {
        kill(w->pid, SIGKILL);
        waitpid(w->pid, NULL, 0);
    }
    w->fd = -1, w->pid = 0, w->job = -1;
}

reward_pool_t *reward_pool_create(int n_workers, double timeout_s) {
    reward_pool_t *p = cispo_calloc(1, sizeof *p);
    p->n = n_workers;
    p->timeout_s = timeout_s > 0 ? timeout_s : 60;
    p->w = cispo_calloc((size_t)(n_workers > 0 ? n_workers : 1), sizeof(worker_t));
    for (int i = 0; i < n_workers; i++) p->w[i].fd = -1;
    for (int i = 0; i < n_workers; i++)
        if (spawn(p, i)) {
            reward_pool_free(p);
            return NULL;
        }
    return p;
}

void reward_pool_free(reward_pool_t *p) {
    if (!p) return;
    for (int i = 0; i < p->n; i++)  // closing the socket ends the worker's loop
        if (p->w[i].fd >= 0) close(p->w[i].fd), p->w[i].fd = -1;
    // A worker still busy after two seconds (a verification in flight when the run stopped) is killed:
    // the trainer's exit never waits on one.
    double until = cispo_now() + 2.0;
    for (int i = 0; i < p->n; i++) {
        worker_t *w = &p->w[i];
        while (w->pid > 0) {
            if (waitpid(w->pid, NULL, WNOHANG) != 0) w->pid = 0;  // exited (or, -1, not ours to wait for)
            else if (cispo_now() >= until) reap(w);
            else usleep(2000);
        }
    }
    free(p->w);
    free(p);
}

static void fail_verdict(verdict_t *v, const char *why) {
    memset(v, 0, sizeof *v);
    v->failed = 1;
    snprintf(v->reason, sizeof v->reason, "%s", why);
}

// A worker died or hung: its job fails, and a fresh worker takes its place.
static void replace(reward_pool_t *p, int i, verdict_t *out, const char *why) {
    if (p->w[i].job >= 0) fail_verdict(&out[p->w[i].job], why);
    reap(&p->w[i]);
    if (spawn(p, i)) fprintf(stderr, "cispo: %s (scoring continues with fewer workers)\n", cispo_last_error());
}

int reward_pool_run(reward_pool_t *p, const reward_job_t *jobs, int n, verdict_t *out) {
    if (p->n == 0) {
        for (int i = 0; i < n; i++) verify_one(jobs[i].verifier, &jobs[i].req, &out[i]);
    } else {
        int next = 0, done = 0;
        struct pollfd *pfd = cispo_malloc(sizeof *pfd * (size_t)p->n);
        int *who = cispo_malloc(sizeof(int) * (size_t)p->n);
        while (done < n) {
            for (int i = 0; i < p->n && next < n; i++) {  // hand out work to idle workers
                worker_t *w = &p->w[i];
                if (w->fd < 0 || w->job >= 0) continue;
                const reward_job_t *j = &jobs[next];
                w->job = next++;
                w->started = cispo_now();
                if (write_str(w->fd, j->verifier) || write_str(w->fd, j->req.gold) ||
                    write_str(w->fd, j->req.response) || write_str(w->fd, j->req.tests_json) ||
                    write_str(w->fd, j->req.fn_name) || write_str(w->fd, j->req.question) ||
                    write_str(w->fd, j->req.meta_json)) {
                    replace(p, i, out, "verifier worker exited");
                    done++;
                }
            }
            int np = 0;
            for (int i = 0; i < p->n; i++)
                if (p->w[i].fd >= 0 && p->w[i].job >= 0) pfd[np] = (struct pollfd){p->w[i].fd, POLLIN, 0}, who[np++] = i;
            if (np == 0) {
                if (next < n) {  // no worker left alive: reward the rest here rather than hang
                    for (; next < n; next++, done++) verify_one(jobs[next].verifier, &jobs[next].req, &out[next]);
                }
                continue;
            }
            int r = poll(pfd, (nfds_t)np, 100);
            if (r < 0 && errno != EINTR) break;
            double now = cispo_now();
            for (int k = 0; k < np; k++) {
                worker_t *w = &p->w[who[k]];
                if (pfd[k].revents & (POLLIN | POLLHUP | POLLERR)) {
                    verdict_t v;
                    if (fdio_read_all(w->fd, &v, sizeof v)) {
                        replace(p, who[k], out, "verifier worker crashed");
                    } else {
                        v.extracted[sizeof v.extracted - 1] = 0;
                        v.reason[sizeof v.reason - 1] = 0;
                        out[w->job] = v;
                        w->job = -1;
                    }
                    done++;
                } else if (now - w->started > p->timeout_s) {
                    replace(p, who[k], out, "verifier timed out");
                    done++;
                }
            }
        }
        free(pfd);
        free(who);
    }
    int failed = 0;
    for (int i = 0; i < n; i++) failed += out[i].failed != 0;
    return failed;
}
