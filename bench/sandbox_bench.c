// bench/sandbox_bench.c — throughput and per-run overhead of the sandbox, measured in one run:
//   1. a trivial Python program (`pass`) through the worker pool, one client, versus bare
//      fork+exec launches of the same interpreter on the same program (`python3 -c pass`),
//      interleaved in rounds so load changes on the machine hit both alike; per-run overhead =
//      pool latency - bare latency (medians of the rounds), in wall time and in CPU time (user +
//      system of all processes involved: the CPU figure barely moves when other work shares the
//      machine, the wall figure does);
//   2. saturated throughput: as many clients as workers, runs/s of the pool vs bare launches from
//      the same number of threads;
//   3. concurrency sweep: C concurrent judged runs (a stdin/stdout test with a 1 s wall/CPU limit)
//      through a pool of C workers, for C = 1, 2, 4, ... 256 — runs/s and how many verdicts were
//      right (Accepted for the correct program, WrongAnswer for the wrong one); past some C the
//      machine cannot start every interpreter within the limit and verdicts turn into time limits.
// Build: cmake target sandbox_bench (tests/cmake/sandbox.cmake). Run: build/sandbox_bench [rounds]
#include <pthread.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "sandbox/jail.h"
#include "sandbox/pool.h"

extern char **environ;

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(double *v, int n) {
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

static const char *python = "/usr/bin/python3";

// CPU seconds of our reaped children (and theirs): the bare launches, or the pool's workers with
// the jails they reaped once the pool is destroyed.
static double children_cpu(void) {
    struct rusage ru;
    getrusage(RUSAGE_CHILDREN, &ru);
    return (double)ru.ru_utime.tv_sec + 1e-6 * (double)ru.ru_utime.tv_usec + (double)ru.ru_stime.tv_sec +
           1e-6 * (double)ru.ru_stime.tv_usec;
}

// A bare launch in a session of its own, as each sandboxed program is (setsid): with the
// scheduler's autogroups on (kernel.sched_autogroup_enabled), a session is a scheduling group, and
// launches sharing the benchmark's session would get less of a busy machine than the jails.
static void bare_run(void) {
    char *argv[] = {(char *)python, "-c", "pass", NULL};
    posix_spawnattr_t at;
    posix_spawnattr_init(&at);
    posix_spawnattr_setflags(&at, POSIX_SPAWN_SETSID);
    pid_t pid;
    if (posix_spawn(&pid, python, NULL, &at, argv, environ) == 0) waitpid(pid, NULL, 0);
    posix_spawnattr_destroy(&at);
}

static const char *trivial_req = "{\"language\":\"python\",\"code\":\"pass\"}";

static int pool_run_ok(sandbox_pool_t *p, const char *req, const char *want) {
    char *res = sandbox_pool_run(p, req);
    cJSON *r = cJSON_Parse(res ? res : "");
    const cJSON *st = cJSON_GetObjectItem(r, "status");
    int ok = cJSON_IsString(st) && !strcmp(st->valuestring, want);
    if (!ok && getenv("BENCH_VERBOSE")) fprintf(stderr, "unexpected result: %.300s\n", res ? res : "(null)");
    cJSON_Delete(r);
    free(res);
    return ok;
}

typedef struct {
    sandbox_pool_t *pool;  // NULL: bare launches
    int runs, ok, judged, id;
} client_t;

static const char *good_req =
    "{\"language\":\"python\",\"code\":\"a,b=map(int,input().split())\\nprint(a+b)\\n\",\"run_timeout\":1,"
    "\"tests\":[{\"stdin\":\"20 22\",\"stdout\":\"42\"}]}";
static const char *bad_req =
    "{\"language\":\"python\",\"code\":\"a,b=map(int,input().split())\\nprint(a-b)\\n\",\"run_timeout\":1,"
    "\"tests\":[{\"stdin\":\"20 22\",\"stdout\":\"42\"}]}";

static void *client(void *arg) {
    client_t *c = arg;
    for (int i = 0; i < c->runs; i++) {
        if (!c->pool) bare_run(), c->ok++;
        else if (!c->judged) c->ok += pool_run_ok(c->pool, trivial_req, "Finished");
        else c->ok += (i + c->id) % 2 ? pool_run_ok(c->pool, bad_req, "WrongAnswer") : pool_run_ok(c->pool, good_req, "Accepted");
    }
    return NULL;
}

// runs/s of n clients doing `runs` runs each; *all_ok = every verdict right
static double parallel(sandbox_pool_t *pool, int n, int runs, int judged, int *all_ok, int *n_ok) {
    pthread_t th[512];
    client_t cl[512];
    double t0 = now();
    for (int i = 0; i < n; i++) {
        cl[i] = (client_t){pool, runs, 0, judged, i};
        pthread_create(&th[i], NULL, client, &cl[i]);
    }
    int ok = 0;
    for (int i = 0; i < n; i++) pthread_join(th[i], NULL), ok += cl[i].ok;
    double dt = now() - t0;
    *all_ok = ok == n * runs;
    if (n_ok) *n_ok = ok;
    return n * runs / dt;
}

int main(int argc, char **argv) {
    int rounds = argc > 1 ? atoi(argv[1]) : 10, per_round = 20;
    char why[1200];
    if (jail_check_ready(why, sizeof why) != 0) {
        fprintf(stderr, "sandbox_bench: %s\n", why);
        return 1;
    }
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    const jail_host_t *h = jail_probe();
    printf("sandbox_bench: %ld cores, cgroup %s, interpreter %s\n", cores, h->cgroup_v2 ? "v2" : h->cgroup_v1 ? "v1" : "none", python);

    // 1. latency, one client, interleaved rounds
    char err[1200];
    sandbox_pool_t *pool = sandbox_pool_create(1, err, sizeof err);
    if (!pool) return fprintf(stderr, "sandbox_bench: %s\n", err), 1;
    for (int i = 0; i < 5; i++) bare_run(), pool_run_ok(pool, trivial_req, "Finished");  // warm caches
    sandbox_pool_destroy(pool);
    // latency: runs alternate one bare, one pooled, so both meet the same load; medians of the
    // single runs and of the paired differences. CPU: per round (the pool's CPU is counted once
    // its workers are reaped), medians of the rounds.
    enum { MAXR = 64, MAXN = MAXR * 20 };
    static double bare_one[MAXN], pool_one[MAXN], diff_one[MAXN];
    double bare_cpu[MAXR], pool_cpu[MAXR];
    int ok = 1, k = 0;
    if (rounds > MAXR) rounds = MAXR;
    for (int r = 0; r < rounds; r++) {
        double c0 = children_cpu();
        for (int i = 0; i < per_round; i++) bare_run();
        double c1 = children_cpu();
        pool = sandbox_pool_create(1, err, sizeof err);
        for (int i = 0; i < per_round; i++) ok &= pool_run_ok(pool, trivial_req, "Finished");
        sandbox_pool_destroy(pool);
        double c2 = children_cpu();
        bare_cpu[r] = (c1 - c0) * 1e3 / per_round;
        pool_cpu[r] = (c2 - c1) * 1e3 / per_round;
    }
    pool = sandbox_pool_create(1, err, sizeof err);
    for (int r = 0; r < rounds; r++)
        for (int i = 0; i < per_round; i++, k++) {
            double t0 = now();
            bare_run();
            double t1 = now();
            ok &= pool_run_ok(pool, trivial_req, "Finished");
            double t2 = now();
            bare_one[k] = (t1 - t0) * 1e3;
            pool_one[k] = (t2 - t1) * 1e3;
            diff_one[k] = pool_one[k] - bare_one[k];
        }
    sandbox_pool_destroy(pool);
    double b = median(bare_one, k), p = median(pool_one, k), d = median(diff_one, k);
    double bc = median(bare_cpu, rounds), pc = median(pool_cpu, rounds);
    printf("\n1. one client, %d runs of `python3 -c pass` each way, alternating (medians)\n", k);
    printf("   %-16s %10s %10s %12s\n", "", "wall ms", "runs/s", "CPU ms/run");
    printf("   %-16s %10.2f %10.1f %12.2f\n", "bare fork+exec", b, 1e3 / b, bc);
    printf("   %-16s %10.2f %10.1f %12.2f   (all verdicts right: %s)\n", "sandbox pool", p, 1e3 / p, pc, ok ? "yes" : "NO");
    printf("   %-16s %10.2f %10s %12.2f   (wall: median of the paired differences)\n", "overhead/run", d, "", pc - bc);

    // 2. saturated: as many clients as cores, blocks alternating bare and pool
    int n = (int)cores;
    int ok2 = 1, okb;
    double bare_tp[MAXR], pool_tp[MAXR];
    pool = sandbox_pool_create(n, err, sizeof err);
    for (int r = 0; r < rounds; r++) {
        bare_tp[r] = parallel(NULL, n, per_round / n, 0, &okb, NULL);
        pool_tp[r] = parallel(pool, n, per_round / n, 0, &okb, NULL);
        ok2 &= okb;
    }
    sandbox_pool_destroy(pool);
    double bt = median(bare_tp, rounds), pt = median(pool_tp, rounds);
    printf("\n2. %d clients (one per core), `pass`, %d alternating blocks (medians)\n", n, rounds);
    printf("   bare fork+exec  %7.1f runs/s\n   sandbox pool    %7.1f runs/s  (%.0f%% of bare; all right: %s)\n", bt, pt,
           100 * pt / bt, ok2 ? "yes" : "NO");

    // 3. concurrency sweep with judged runs
    printf("\n3. concurrent judged runs (half correct, half wrong; 1 s limit), pool of C workers\n");
    printf("   %4s %10s %14s\n", "C", "runs/s", "right verdicts");
    for (int c = 1; c <= 256; c *= 2) {
        pool = sandbox_pool_create(c, err, sizeof err);
        if (!pool) {
            printf("   %4d  cannot start: %s\n", c, err);
            break;
        }
        int runs = c < 8 ? 16 : c < 64 ? 4 : 2, right = 0;
        double tp = parallel(pool, c, runs, 1, &ok2, &right);
        sandbox_pool_destroy(pool);
        printf("   %4d %10.1f %8d / %-5d\n", c, tp, right, c * runs);
        fflush(stdout);
    }
    return 0;
}
