// tests/testshell.h — test_run_shell: a shell command run by a C test, its output captured, its time bounded.
// A command still running after TEST_SHELL_LIMIT_S seconds is a hang: what each of its processes and threads
// waits on is written into its output (ps: state and kernel wait channel; gdb's stacks where gdb is installed),
// then the command and every process below it are killed, so that the hang fails its own check with the
// evidence, rather than the whole test's time limit with none. Processes below it are found by parent pid:
// mpirun puts each rank in a process group of its own, so a process group would miss them.
#ifndef CISPO_TESTS_TESTSHELL_H
#define CISPO_TESTS_TESTSHELL_H

#include <dirent.h>
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#ifndef TEST_SHELL_LIMIT_S
#define TEST_SHELL_LIMIT_S 300
#endif

static inline double test_shell_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

// /proc/<pid>/<file> (pid: a /proc entry's name) into buf, NUL-terminated: 0, or -1 when it cannot be read.
static inline int test_proc_read(const char *pid, const char *file, char *buf, size_t cap) {
    char path[300];
    snprintf(path, sizeof path, "/proc/%.200s/%.60s", pid, file);
    FILE *f = fopen(path, "r");
    if (!f) return -1;
    size_t len = fread(buf, 1, cap - 1, f);
    fclose(f);
    buf[len] = 0;
    return 0;
}

// Process root and every live process below it (by parent pid), root first: their count (at most cap).
static inline int test_shell_tree(pid_t root, pid_t *pids, int cap) {
    int n = 1, grew = 1;
    pids[0] = root;
    while (grew && n < cap) {
        grew = 0;
        DIR *d = opendir("/proc");
        for (struct dirent *e; d && n < cap && (e = readdir(d));) {
            char buf[512];
            if (e->d_name[0] < '0' || e->d_name[0] > '9' || test_proc_read(e->d_name, "stat", buf, sizeof buf))
                continue;
            const char *rp = strrchr(buf, ')');  // the name may hold spaces and parentheses
            int ppid = 0;
            char state;
            if (!rp || sscanf(rp + 1, " %c %d", &state, &ppid) != 2) continue;
            const pid_t pid = (pid_t)atoi(e->d_name);
            int in = 0, parent = 0;
            for (int i = 0; i < n; i++) in |= pids[i] == pid, parent |= pids[i] == (pid_t)ppid;
            if (!in && parent) pids[n++] = pid, grew = 1;
        }
        if (d) closedir(d);
    }
    return n;
}

// Appends k bytes of buf to out (*n bytes used of cap, NUL-terminated), as many as fit; the rest is dropped.
static inline void test_shell_keep(char *out, size_t *n, size_t cap, const char *buf, size_t k) {
    size_t take = *n + 1 < cap ? (k < cap - 1 - *n ? k : cap - 1 - *n) : 0;
    memcpy(out + *n, buf, take);
    *n += take;
    out[*n] = 0;
}

// Appends what shell command sh_cmd prints to out (*n bytes used of cap).
static inline void test_shell_append(char *out, size_t *n, size_t cap, const char *sh_cmd) {
    FILE *p = popen(sh_cmd, "r");
    if (!p) return;
    char buf[4096];
    size_t k;
    while ((k = fread(buf, 1, sizeof buf, p)) > 0) test_shell_keep(out, n, cap, buf, k);
    pclose(p);
}

// The evidence of a hang below root, into out: every thread's state and kernel wait channel, then gdb's stacks
// of the first processes (where gdb is installed).
static inline void test_shell_evidence(pid_t root, char *out, size_t *n, size_t cap) {
    pid_t pids[256];
    int np = test_shell_tree(root, pids, 256);
    char list[2048] = "", cmd[2400];
    for (int i = 0, at = 0; i < np && at < (int)sizeof list - 16; i++)
        at += snprintf(list + at, sizeof list - (size_t)at, "%s%d", i ? "," : "", (int)pids[i]);
    snprintf(cmd, sizeof cmd, "echo; echo '[still running after %d s: its processes and threads]'; "
             "ps -L -o pid,ppid,lwp,stat,wchan:32,etimes,args -p %s 2>&1", TEST_SHELL_LIMIT_S, list);
    test_shell_append(out, n, cap, cmd);
    for (int i = 1, shown = 0; i < np && shown < 8; i++) {  // (not the shell, nor the MPI launcher)
        char id[16], comm[64] = "";
        snprintf(id, sizeof id, "%d", (int)pids[i]);
        if (test_proc_read(id, "comm", comm, sizeof comm)) comm[0] = 0;
        if (!strncmp(comm, "mpirun", 6) || !strncmp(comm, "mpiexec", 7) || !strncmp(comm, "orterun", 7)) continue;
        snprintf(cmd, sizeof cmd, "command -v gdb >/dev/null && { echo '[gdb: process %d]'; timeout 30 gdb -batch "
                 "-p %d -ex 'thread apply all bt 12' 2>/dev/null | grep -E '^(#|Thread)'; }", (int)pids[i], (int)pids[i]);
        test_shell_append(out, n, cap, cmd);
        shown++;
    }
}

// Runs a shell command with stderr joined to stdout; the output (truncated to cap-1 bytes, the rest read and
// dropped, so that the command never blocks on a full pipe) goes to out. Returns the exit status, -1 when the
// command could not run or died on a signal, 124 when it was killed as hung (the evidence and a line saying so
// end out).
static inline int test_run_shell(const char *cmd, char *out, size_t cap) {
    int pfd[2];
    if (cap < 1 || pipe(pfd)) return -1;
    fflush(stdout), fflush(stderr);
    pid_t pid = fork();
    if (pid < 0) {
        close(pfd[0]), close(pfd[1]);
        return -1;
    }
    if (pid == 0) {
        dup2(pfd[1], 1), dup2(pfd[1], 2);
        close(pfd[0]), close(pfd[1]);
        execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
        _exit(127);
    }
    close(pfd[1]);
    size_t n = 0;
    out[0] = 0;
    const double deadline = test_shell_now() + TEST_SHELL_LIMIT_S;
    double killed_at = -1;
    for (;;) {
        const double left = (killed_at < 0 ? deadline : killed_at + 10) - test_shell_now();
        if (left <= 0) {
            if (killed_at >= 0) break;  // something below it keeps the pipe open even now: stop reading
            test_shell_evidence(pid, out, &n, cap);
            for (int round = 0; round < 3; round++) {  // (a process may fork while the others are killed)
                pid_t pids[256];
                int np = test_shell_tree(pid, pids, 256);
                for (int i = np - 1; i >= 0; i--) kill(pids[i], SIGKILL);
            }
            killed_at = test_shell_now();
            continue;
        }
        struct pollfd q = {pfd[0], POLLIN, 0};
        int r = poll(&q, 1, (int)(left * 1000) + 1);
        if (r <= 0) continue;  // time, or EINTR
        char buf[4096];
        ssize_t k = read(pfd[0], buf, sizeof buf);
        if (k < 0 && errno == EINTR) continue;
        if (k <= 0) break;
        test_shell_keep(out, &n, cap, buf, (size_t)k);
    }
    close(pfd[0]);
    int st = 0;
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR) {
    }
    if (killed_at >= 0) {
        if (n + 64 < cap) snprintf(out + n, cap - n, "\n[killed: still running after %d s]\n", TEST_SHELL_LIMIT_S);
        return 124;
    }
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

#endif
