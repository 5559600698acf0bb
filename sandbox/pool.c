// sandbox/pool.c — pre-forked sandbox workers (pool.h).
// defines: sandbox_pool_create, sandbox_pool_run, sandbox_pool_run_watch, sandbox_pool_size, sandbox_pool_worker_pid,
//          sandbox_pool_destroy
//
// Wire format on each worker's socket: a request or reply is a u64 length then that many bytes of
// JSON text. Workers die with the pool's process (PR_SET_PDEATHSIG) and exit on EOF. The kernel
// sends the parent-death signal when the forking *thread* ends, so every worker is forked by the
// pool's own spawner thread, which lives as long as the pool: a worker replaced by a request's
// thread, or a pool made by a short-lived thread, would otherwise die with that thread.
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "base/fdio.h"
#include "sandbox/jail.h"
#include "sandbox/pool.h"
#include "sandbox/runner.h"

typedef struct {
    pid_t pid;
    int fd;
    int busy;
} worker_t;

struct sandbox_pool {
    worker_t *w;
    int n;
    pthread_mutex_t mu;
    pthread_cond_t idle;
    // the spawner thread: one request at a time (callers hold mu, or are the creator)
    pthread_t spawner;
    int spawner_up;
    pthread_mutex_t smu;
    pthread_cond_t scv;
    int req_i, req_pending, req_done, req_rc, req_errno, stop;
};

static int send_text(int fd, const char *s) {
    uint64_t n = strlen(s);
    return fdio_send_all(fd, &n, sizeof n) || fdio_send_all(fd, s, n) ? -1 : 0;
}

static int pfd_ready(int fd) {
    struct pollfd pfd = {fd, POLLIN, 0};
    return poll(&pfd, 1, 0) > 0;
}

static char *recv_text(int fd) {
    uint64_t n;
    if (fdio_read_all(fd, &n, sizeof n) || n > ((uint64_t)1 << 32)) return NULL;
    char *s = malloc(n + 1);
    if (!s || fdio_read_all(fd, s, n)) {
        free(s);
        return NULL;
    }
    s[n] = 0;
    return s;
}

__attribute__((noreturn)) static void worker_main(int fd) {
    signal(SIGPIPE, SIG_IGN);
    jail_cancel_arm();  // SIGUSR1 from the pool: the request's client went away
    for (;;) {
        jail_idle();  // reap the last jail, make the next one ahead, while no request waits
        char *req = recv_text(fd);
        if (!req) jail_idle_end(), exit(0);  // the pool closed our socket
        jail_cancel_arm();  // a cancel of the previous request (already answered) does not count
        char *res = sandbox_execute_text(req);
        free(req);
        int bad = !res || send_text(fd, res);
        free(res);
        if (bad) jail_idle_end(), exit(0);
    }
}

static int spawn(sandbox_pool_t *p, int i) {
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv)) return -1;
    pid_t parent = getpid();
    fflush(NULL);  // or the worker would write the parent's buffered output again
    pid_t pid = fork();
    if (pid < 0) {
        close(sv[0]);
        close(sv[1]);
        return -1;
    }
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
        if (getppid() != parent) _exit(0);
        close(sv[0]);
        for (int k = 0; k < p->n; k++)  // the other workers' sockets belong to the pool
            if (p->w[k].fd >= 0) close(p->w[k].fd);
        worker_main(sv[1]);
    }
    close(sv[1]);
    p->w[i] = (worker_t){pid, sv[0], 0};
    return 0;
}

static void *spawner_main(void *arg) {
    sandbox_pool_t *p = arg;
    pthread_mutex_lock(&p->smu);
    for (;;) {
        while (!p->req_pending && !p->stop) pthread_cond_wait(&p->scv, &p->smu);
        if (p->stop) break;
        p->req_pending = 0;
        p->req_rc = spawn(p, p->req_i);
        p->req_errno = errno;
        p->req_done = 1;
        pthread_cond_broadcast(&p->scv);
    }
    pthread_mutex_unlock(&p->smu);
    return NULL;
}

// Worker i forked by the spawner thread (see the top of the file). 0, or -1 with errno set.
static int spawn_worker(sandbox_pool_t *p, int i) {
    pthread_mutex_lock(&p->smu);
    p->req_i = i, p->req_done = 0, p->req_pending = 1;
    pthread_cond_broadcast(&p->scv);
    while (!p->req_done) pthread_cond_wait(&p->scv, &p->smu);
    int rc = p->req_rc, e = p->req_errno;
    pthread_mutex_unlock(&p->smu);
    errno = e;
    return rc;
}

sandbox_pool_t *sandbox_pool_create(int n, char *err, size_t errn) {
    char why[1200];
    if (jail_check_ready(why, sizeof why) != 0) {
        snprintf(err, errn, "%s", why);
        return NULL;
    }
    if (n < 1) n = 1;
    sandbox_pool_t *p = calloc(1, sizeof *p);
    p->w = calloc((size_t)n, sizeof *p->w);
    p->n = n;
    for (int i = 0; i < n; i++) p->w[i].fd = -1;
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->idle, NULL);
    pthread_mutex_init(&p->smu, NULL);
    pthread_cond_init(&p->scv, NULL);
    int e = pthread_create(&p->spawner, NULL, spawner_main, p);
    if (e) {
        snprintf(err, errn, "starting the sandbox pool's spawner thread: %s", strerror(e));
        sandbox_pool_destroy(p);
        return NULL;
    }
    p->spawner_up = 1;
    for (int i = 0; i < n; i++)
        if (spawn_worker(p, i)) {
            snprintf(err, errn, "starting sandbox worker %d: %s", i, strerror(errno));
            sandbox_pool_destroy(p);
            return NULL;
        }
    return p;
}

int sandbox_pool_size(const sandbox_pool_t *p) { return p->n; }

int sandbox_pool_worker_pid(sandbox_pool_t *p, int i) {
    if (i < 0 || i >= p->n) return -1;
    pthread_mutex_lock(&p->mu);
    int pid = p->w[i].fd >= 0 ? (int)p->w[i].pid : -1;
    pthread_mutex_unlock(&p->mu);
    return pid;
}

// Whether the peer of socket fd went away (closed, reset, or shut its writing half).
static int hung_up(int fd) {
    struct pollfd pfd = {fd, POLLRDHUP, 0};
    return fd >= 0 && poll(&pfd, 1, 0) > 0 && (pfd.revents & (POLLRDHUP | POLLHUP | POLLERR | POLLNVAL));
}

// Waits for worker i's reply, or for watch_fd to hang up (1).
static int wait_reply(sandbox_pool_t *p, int i, int watch_fd) {
    for (;;) {
        struct pollfd pfd[2] = {{p->w[i].fd, POLLIN, 0}, {watch_fd, POLLRDHUP, 0}};
        int k = poll(pfd, watch_fd >= 0 ? 2 : 1, -1);
        if (k < 0 && errno == EINTR) continue;
        if (k < 0 || pfd[0].revents) return 0;  // a reply, or a dead worker: recv_text tells
        if (pfd[1].revents) return 1;
    }
}

char *sandbox_pool_run(sandbox_pool_t *p, const char *req_json) { return sandbox_pool_run_watch(p, req_json, -1); }

char *sandbox_pool_run_watch(sandbox_pool_t *p, const char *req_json, int watch_fd) {
    pthread_mutex_lock(&p->mu);
    int i;
    for (;;) {
        if (hung_up(watch_fd)) {
            pthread_mutex_unlock(&p->mu);
            return NULL;
        }
        int lost = 0;
        for (i = 0; i < p->n; i++) lost += p->w[i].fd < 0;
        if (lost == p->n) {  // every worker died and none could be restarted
            pthread_mutex_unlock(&p->mu);
            return strdup("{\"status\":\"SandboxError\",\"message\":\"no sandbox worker is left: they died and could not be restarted\"}");
        }
        for (i = 0; i < p->n && p->w[i].busy; i++) {}
        if (i < p->n) break;
        if (watch_fd < 0) pthread_cond_wait(&p->idle, &p->mu);
        else {  // look at the client now and then while waiting
            struct timespec ts;
            clock_gettime(CLOCK_REALTIME, &ts);
            ts.tv_nsec += 200000000;
            if (ts.tv_nsec >= 1000000000) ts.tv_sec++, ts.tv_nsec -= 1000000000;
            pthread_cond_timedwait(&p->idle, &p->mu, &ts);
        }
    }
    p->w[i].busy = 1;
    pthread_mutex_unlock(&p->mu);

    char *res = NULL;
    int sent = 0, cancelled = 0;
    for (int attempt = 0; attempt < 2 && !res; attempt++) {
        sent = send_text(p->w[i].fd, req_json) == 0;
        if (sent && watch_fd >= 0 && wait_reply(p, i, watch_fd)) {
            // the client went away: the worker kills the jail and answers at once (jail.c)
            // (again every 200 ms: one that came before the worker took the request is forgotten; 5 s
            // without an answer and the worker is replaced below)
            cancelled = 1;
            for (int k = 0; k < 25 && !pfd_ready(p->w[i].fd); k++) {
                kill(p->w[i].pid, SIGUSR1);
                struct pollfd pfd = {p->w[i].fd, POLLIN, 0};
                while (poll(&pfd, 1, 200) < 0 && errno == EINTR) {}
            }
        }
        if (sent && (!cancelled || pfd_ready(p->w[i].fd))) res = recv_text(p->w[i].fd);
        if (res) break;
        pthread_mutex_lock(&p->mu);  // the worker died: replace it
        close(p->w[i].fd);
        kill(p->w[i].pid, SIGKILL);
        while (waitpid(p->w[i].pid, NULL, 0) < 0 && errno == EINTR) {}
        p->w[i].fd = -1;
        int lost = spawn_worker(p, i) != 0;  // lost for good (fd -1, left busy): the others carry on
        p->w[i].busy = 1;              // the new worker is still this call's
        pthread_mutex_unlock(&p->mu);
        if (lost || sent) break;  // a request that reached a worker is not run twice
    }
    pthread_mutex_lock(&p->mu);
    if (cancelled) free(res), res = NULL;
    else if (!res)
        res = strdup(sent ? "{\"status\":\"SandboxError\",\"message\":\"the sandbox worker died during the run\"}"
                          : "{\"status\":\"SandboxError\",\"message\":\"no sandbox worker could take the request\"}");
    if (p->w[i].fd >= 0) p->w[i].busy = 0;
    pthread_cond_broadcast(&p->idle);  // waiters also need to see a worker lost for good
    pthread_mutex_unlock(&p->mu);
    return res;
}

void sandbox_pool_destroy(sandbox_pool_t *p) {
    if (!p) return;
    for (int i = 0; i < p->n; i++)
        if (p->w[i].fd >= 0) close(p->w[i].fd);  // EOF: the worker exits
    for (int i = 0; i < p->n; i++)
        if (p->w[i].pid > 0) while (waitpid(p->w[i].pid, NULL, 0) < 0 && errno == EINTR) {}
    if (p->spawner_up) {
        pthread_mutex_lock(&p->smu);
        p->stop = 1;
        pthread_cond_broadcast(&p->scv);
        pthread_mutex_unlock(&p->smu);
        pthread_join(p->spawner, NULL);
    }
    pthread_mutex_destroy(&p->mu);
    pthread_cond_destroy(&p->idle);
    pthread_mutex_destroy(&p->smu);
    pthread_cond_destroy(&p->scv);
    free(p->w);
    free(p);
}
