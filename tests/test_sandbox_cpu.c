// tests/test_sandbox_cpu.c — CPU isolation between jails that run at once (issue 18, finding 7):
// each jail has its own cpu cgroup with a quota of one CPU (jail_options_t.cpus), so a hog with
// many processes cannot take the cores from a neighbour. Two pool workers: a fixed CPU workload is
// timed alone, then next to an 8-process hog; the quota is read back from the hog's cgroup (cgroup
// v1's cpu hierarchy; on a v2 host that part is skipped) and the neighbour's slowdown must stay
// under a generous bound (without the cgroup, 9 busy processes on 2 cores make it about 4.5x).
#include <dirent.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "sandbox/pool.h"
#include "tests/testutil.h"

static const char *neighbour =
    "{\"language\":\"c\",\"run_timeout\":20,\"code\":\"#include <stdio.h>\\nint main(void) { volatile unsigned long x = 0;\\n"
    "for (unsigned long i = 0; i < 800000000ul; i++) x += i * i;\\nprintf(\\\"%lu\\\\n\\\", (unsigned long)(x & 1)); return 0; }\\n\"}";

// 8 processes, each in a session of its own: the kernel's autogroups (one per session) would
// otherwise share the cores between the two jails already
static const char *hog =
    "{\"language\":\"c\",\"run_timeout\":20,\"code\":\"#include <time.h>\\n#include <unistd.h>\\n#include <sys/wait.h>\\n"
    "static double now(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return t.tv_sec + t.tv_nsec * 1e-9; }\\n"
    "int main(void) { for (int i = 0; i < 8; i++) if (fork() == 0) { setsid(); double t0 = now(); volatile unsigned long x = 0;\\n"
    "while (now() - t0 < 6) x++; _exit(0); }\\nwhile (wait(0) > 0) {} return 0; }\\n\"}";

static double run_time(sandbox_pool_t *p, const char *req, char *status, size_t n) {
    char *out = sandbox_pool_run(p, req);
    cJSON *r = cJSON_Parse(out);
    const cJSON *run = cJSON_GetObjectItem(r, "run"), *st = cJSON_GetObjectItem(r, "status");
    const cJSON *t = cJSON_GetObjectItem(run, "time");
    snprintf(status, n, "%s", cJSON_IsString(st) ? st->valuestring : "?");
    double v = cJSON_IsNumber(t) ? t->valuedouble : -1;
    if (getenv("TEST_VERBOSE") || v < 0) printf("%.400s\n", out);
    cJSON_Delete(r);
    free(out);
    return v;
}

static void *run_hog(void *p) {
    char st[64];
    double t = run_time(p, hog, st, sizeof st);
    test_check(t > 0 && !strcmp(st, "Finished"), "the hog ran (%s, %.2f s)", st, t);
    return NULL;
}

// The dir of our cgroup in the v1 cpu hierarchy, or -1 (no such hierarchy: a v2 host).
static int cpu_base(char *out, size_t n) {
    FILE *f = fopen("/proc/self/cgroup", "r");
    char line[1024], path[512] = "";
    while (f && fgets(line, sizeof line, f)) {
        line[strcspn(line, "\n")] = 0;
        char *c1 = strchr(line, ':'), *c2 = c1 ? strchr(c1 + 1, ':') : NULL;
        if (!c2) continue;
        *c2 = 0;
        for (char *t = strtok(c1 + 1, ","); t; t = strtok(NULL, ","))
            if (!strcmp(t, "cpu")) snprintf(path, sizeof path, "%s", c2 + 1);
    }
    if (f) fclose(f);
    if (!path[0]) return -1;
    f = fopen("/proc/self/mountinfo", "r");
    int found = -1;
    while (f && found < 0 && fgets(line, sizeof line, f)) {
        char root[512], mnt[512], fs[64], src[256], opts[1024] = "";
        const char *sep = strstr(line, " - ");
        if (!sep || sscanf(line, "%*s %*s %*s %511s %511s", root, mnt) != 2) continue;
        if (sscanf(sep + 3, "%63s %255s %1023s", fs, src, opts) < 3 || strcmp(fs, "cgroup")) continue;
        for (char *t = strtok(opts, ","); t; t = strtok(NULL, ","))
            if (!strcmp(t, "cpu")) {
                const char *rest = strcmp(root, "/") && !strncmp(path, root, strlen(root)) ? path + strlen(root) : path;
                snprintf(out, n, "%s%s", mnt, strcmp(rest, "/") ? rest : "");
                found = 0;
            }
    }
    if (f) fclose(f);
    return found;
}

static long read_long(const char *dir, const char *file) {
    char p[1500];
    snprintf(p, sizeof p, "%s/%s", dir, file);
    FILE *f = fopen(p, "r");
    long v = -2;
    if (f && fscanf(f, "%ld", &v) != 1) v = -2;
    if (f) fclose(f);
    return v;
}

static int count_lines(const char *dir, const char *file) {
    char p[1500], line[64];
    snprintf(p, sizeof p, "%s/%s", dir, file);
    FILE *f = fopen(p, "r");
    int n = 0;
    while (f && fgets(line, sizeof line, f)) n++;
    if (f) fclose(f);
    return n;
}

// The cpu cgroup of a jail of one of the pool's workers with at least 8 tasks in it (the hog's):
// its quota, or -3 when none is found.
static long hog_quota(sandbox_pool_t *p, const char *base, int *tasks) {
    DIR *d = opendir(base);
    struct dirent *e;
    long q = -3;
    while (d && (e = readdir(d))) {
        int pid;
        if (sscanf(e->d_name, "cispo-jail-%d-", &pid) != 1) continue;
        if (pid != sandbox_pool_worker_pid(p, 0) && pid != sandbox_pool_worker_pid(p, 1)) continue;
        char dir[1400];
        snprintf(dir, sizeof dir, "%.1000s/%.255s", base, e->d_name);
        int n = count_lines(dir, "tasks");
        if (n >= 8) *tasks = n, q = read_long(dir, "cpu.cfs_quota_us");
    }
    if (d) closedir(d);
    return q;
}

int main(void) {
    char err[1200], st[64];
    sandbox_pool_t *p = sandbox_pool_create(2, err, sizeof err);
    if (!test_check(p != NULL, "pool: %s", p ? "" : err)) return test_finish("test_sandbox_cpu");
    run_time(p, neighbour, st, sizeof st);  // warm: compiler pages in the cache
    double alone = run_time(p, neighbour, st, sizeof st), a2 = run_time(p, neighbour, st, sizeof st);
    if (a2 > 0 && a2 < alone) alone = a2;
    test_check(alone > 0 && !strcmp(st, "Finished"), "the neighbour alone: %.2f s (%s)", alone, st);

    pthread_t th;
    pthread_create(&th, NULL, run_hog, p);
    char base[1024];
    int have_v1 = cpu_base(base, sizeof base) == 0, tasks = 0;
    long quota = -3;
    for (int i = 0; i < 30 && quota == -3; i++) {  // until the hog runs (its compile first), 1.5 s at most
        usleep(50000);
        if (have_v1) quota = hog_quota(p, base, &tasks);
    }
    if (have_v1) test_check(quota == 100000, "the hog's jail (%d tasks) has a cpu quota of 1 CPU: cfs_quota_us %ld", tasks, quota);
    else printf("no cgroup v1 cpu hierarchy: the quota is not read back here\n");
    double loaded = run_time(p, neighbour, st, sizeof st);
    pthread_join(th, NULL);
    double slowdown = alone > 0 ? loaded / alone : 99;
    printf("neighbour: %.2f s alone, %.2f s next to the hog (x%.2f)\n", alone, loaded, slowdown);
    // 1.0 on an idle host (1 CPU each); 2.5 leaves room for other load on a shared 2-core host
    test_check(loaded > 0 && slowdown < 2.5, "a neighbour of an 8-process hog is slowed x%.2f (< 2.5)", slowdown);
    sandbox_pool_destroy(p);
    return test_finish("test_sandbox_cpu");
}
