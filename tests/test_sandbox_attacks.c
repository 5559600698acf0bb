// tests/test_sandbox_attacks.c — the security suite: every attack of docs/verifiers.md
// (tests/sandbox/attacks.json, programs in tests/sandbox/attacks/) runs in the sandbox and must be
// contained with the right verdict and an unchanged host:
//   - the verdict is one the manifest allows (time limit for loops, compile error for compile bombs...)
//   - no output, and no fetched file, holds the canary secret, the host environment secret, or the
//     word ESCAPED (each attack prints it when a step of the attack succeeds)
//   - the canary file outside is intact, and nothing new appeared next to it or at the host paths
//     the attacks write to
//   - no sandbox process survives the run (checked again after a pause for the daemon attack)
//   - a host process the attacks try to kill is alive; a host port they connect to saw nothing
// Positive controls (a correct program passes, stdin and call-based) keep the suite from passing
// vacuously. Run from the repo root (ctest does): ./build/test_sandbox_attacks [name-filter...]
// (an attack runs when its name holds any of the filters)
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "sandbox/base64.h"
#include "sandbox/jail.h"
#include "sandbox/pool.h"
#include "sandbox/runner.h"
#include "tests/testutil.h"

static char canary_dir[64], canary_path[128], secret[64], env_secret[64];
static struct stat canary_st;
static int listen_fd, listen_port;
static pid_t sentinel;
static sandbox_pool_t *pool;  // attacks go through the pre-forked workers, as in production

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static char *read_text(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *s = malloc((size_t)n + 1);
    if (fread(s, 1, (size_t)n, f) != (size_t)n) n = 0;
    s[n] = 0;
    fclose(f);
    return s;
}

static void setup_host(void) {
    uint64_t seed = (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 32);
    snprintf(secret, sizeof secret, "CANARY-%016llx", (unsigned long long)test_rng_next(&seed));
    snprintf(env_secret, sizeof env_secret, "HOSTENV-%016llx", (unsigned long long)test_rng_next(&seed));
    setenv("CISPO_TEST_HOST_SECRET", env_secret, 1);
    snprintf(canary_dir, sizeof canary_dir, "/tmp/cispo-canary-XXXXXX");
    if (!mkdtemp(canary_dir)) perror("mkdtemp"), exit(1);
    chmod(canary_dir, 0755);
    snprintf(canary_path, sizeof canary_path, "%s/secret.txt", canary_dir);
    FILE *f = fopen(canary_path, "w");
    fprintf(f, "%s\n", secret);
    fclose(f);
    chmod(canary_path, 0644);  // world-readable on purpose: only the jail may stop the read
    stat(canary_path, &canary_st);
    // an inheritable descriptor to the secret: the jail must not pass it on
    if (open(canary_path, O_RDONLY) < 0) perror("open canary"), exit(1);
    listen_fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t al = sizeof a;
    if (bind(listen_fd, (struct sockaddr *)&a, sizeof a) || listen(listen_fd, 16) ||
        getsockname(listen_fd, (struct sockaddr *)&a, &al))
        perror("listen"), exit(1);
    listen_port = ntohs(a.sin_port);
    sentinel = fork();
    if (sentinel == 0) {
        for (;;) pause();
    }
}

static void teardown_host(void) {
    kill(sentinel, SIGKILL);
    waitpid(sentinel, NULL, 0);
    unlink(canary_path);
    rmdir(canary_dir);
}

// Parent of a process, from /proc/<pid>/stat (0 when it is gone).
static int parent_of(int pid) {
    char path[64], buf[512];
    snprintf(path, sizeof path, "/proc/%d/stat", pid);
    int fd = open(path, O_RDONLY);
    if (fd < 0) return 0;
    ssize_t r = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (r <= 0) return 0;
    buf[r] = 0;
    const char *p = strrchr(buf, ')');  // the command name may hold spaces and parentheses
    int ppid = 0;
    return p && sscanf(p + 1, " %*c %d", &ppid) == 1 ? ppid : 0;
}

// Whether pid descends from this test process. We are a child subreaper (main), so anything
// orphaned below us, an escaped process included, is re-parented to us and stays in our tree;
// jails of other programs on the same host are not counted.
static int ours(int pid) {
    for (int i = 0; i < 64 && pid > 1; i++) {
        pid = parent_of(pid);
        if (pid == (int)getpid()) return 1;
    }
    return 0;
}

// Processes left by our jails: (as root) owned by the host uids the jails map their users to, or
// (not root) ours in another PID namespace — less each namespace's pid 1, the jail's own init.
static int count_jail_processes(void) {
    char self_ns[64] = "", path[300], ns[64], buf[4096];
    ssize_t k = readlink("/proc/self/ns/pid", self_ns, sizeof self_ns - 1);
    if (k > 0) self_ns[k] = 0;
    DIR *d = opendir("/proc");
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] < '0' || e->d_name[0] > '9') continue;
        snprintf(path, sizeof path, "/proc/%s/ns/pid", e->d_name);
        k = readlink(path, ns, sizeof ns - 1);
        int other_ns = 0;
        if (k > 0) ns[k] = 0, other_ns = strcmp(ns, self_ns) != 0;
        snprintf(path, sizeof path, "/proc/%s/status", e->d_name);
        int fd = open(path, O_RDONLY);
        if (fd < 0) continue;
        ssize_t r = read(fd, buf, sizeof buf - 1);
        close(fd);
        if (r <= 0) continue;
        buf[r] = 0;
        const char *u = strstr(buf, "\nUid:");
        unsigned uid = u ? (unsigned)strtoul(u + 5, NULL, 10) : 0;
        // pid 1 of a jail's namespace is the jail's init, our code (an idle worker keeps one ready
        // for its next job); what an attack could leave behind runs under it
        const char *nspid = strstr(buf, "\nNSpid:");
        if (nspid) {
            const char *eol = strchr(nspid + 1, '\n'), *last = eol;
            while (last > nspid && last[-1] != '\t' && last[-1] != ' ') last--;
            if (eol && atoi(last) == 1 && strcmp(e->d_name, "1")) continue;
        }
        // as root, each thread's jails map to a pair of host uids of their own from 1879048192 up
        int jail_uid = (uid >= 1879048192u && uid < 1879048192u + (2u << 22)) || (other_ns && uid == geteuid() && geteuid() != 0);
        if (jail_uid && ours(atoi(e->d_name))) {
            n++;
            if (getenv("TEST_VERBOSE")) printf("  jail process %s (uid %u)\n", e->d_name, uid);
        }
    }
    closedir(d);
    return n;
}

static int dir_entries(const char *dir) {
    DIR *d = opendir(dir);
    int n = 0;
    struct dirent *e;
    while (d && (e = readdir(d)))
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) n++;
    if (d) closedir(d);
    return n;
}

// RFC 3629 UTF-8: no overlongs, no surrogates, nothing above U+10FFFF.
static int utf8_valid(const char *s) {
    const unsigned char *p = (const unsigned char *)s;
    while (*p) {
        unsigned c = *p;
        int n = c < 0x80 ? 0 : (c & 0xE0) == 0xC0 ? 1 : (c & 0xF0) == 0xE0 ? 2 : (c & 0xF8) == 0xF0 ? 3 : -1;
        if (n < 0 || (n == 1 && c < 0xC2) || (n == 3 && c > 0xF4)) return 0;
        unsigned cp = n ? c & (0x3Fu >> n) : c;
        for (int i = 1; i <= n; i++) {
            if ((p[i] & 0xC0) != 0x80) return 0;
            cp = cp << 6 | (p[i] & 0x3Fu);
        }
        if ((n == 2 && (cp < 0x800 || (cp >= 0xD800 && cp <= 0xDFFF))) || (n == 3 && (cp < 0x10000 || cp > 0x10FFFF))) return 0;
        p += n + 1;
    }
    return 1;
}

static char *substitute(const char *s) {
    char port[16], pid[16];
    snprintf(port, sizeof port, "%d", listen_port);
    snprintf(pid, sizeof pid, "%d", (int)sentinel);
    const char *keys[] = {"{CANARY_DIR}", "{CANARY}", "{PORT}", "{HOST_PID}"};
    const char *vals[] = {canary_dir, canary_path, port, pid};
    char *out = malloc(strlen(s) + 1024), *o = out;
    while (*s) {
        int hit = 0;
        for (int i = 0; i < 4 && !hit; i++)
            if (!strncmp(s, keys[i], strlen(keys[i]))) {
                o += sprintf(o, "%s", vals[i]);
                s += strlen(keys[i]);
                hit = 1;
            }
        if (!hit) *o++ = *s++;
    }
    *o = 0;
    return out;
}

static void host_checks(const char *name) {
    struct stat st;
    char *now = read_text(canary_path);
    test_check(now && !strncmp(now, secret, strlen(secret)) && stat(canary_path, &st) == 0 &&
                   st.st_mtime == canary_st.st_mtime && st.st_size == canary_st.st_size,
               "%s: the canary file is intact", name);
    free(now);
    test_check(dir_entries(canary_dir) == 1, "%s: nothing was written next to the canary", name);
    const char *paths[] = {"/etc/written_by_sandbox", "/usr/written_by_sandbox", "/written_by_sandbox",
                           "/work/written_by_sandbox", "/tmp/written_by_sandbox"};
    for (size_t i = 0; i < sizeof paths / sizeof paths[0]; i++)
        test_check(access(paths[i], F_OK) != 0, "%s: host path %s was not created", name, paths[i]);
    // a finished jail's init may still be exiting for a moment (the worker reaps it after
    // answering); a survivor is still there two seconds later
    int left = count_jail_processes();
    for (int i = 0; i < 40 && left; i++) usleep(50000), left = count_jail_processes();
    test_check(left == 0, "%s: no sandbox process survives", name);
    int status;
    test_check(waitpid(sentinel, &status, WNOHANG) == 0 && kill(sentinel, 0) == 0, "%s: the host sentinel process is alive", name);
    int c = accept(listen_fd, NULL, NULL);
    test_check(c < 0 && (errno == EAGAIN || errno == EWOULDBLOCK), "%s: the host port saw no connection", name);
    if (c >= 0) close(c);
}

// One attack program in one language: name, lang and file come from the manifest entry, or from
// one language of its "langs".
static void run_attack(const cJSON *a, const char *src, const char *name, const char *lang, const char *file) {
    char path[512];
    snprintf(path, sizeof path, "%s/tests/sandbox/attacks/%s", src, file);
    char *code = read_text(path);
    if (!test_check(code != NULL, "%s: read %s", name, path)) return;
    cJSON *req = cJSON_CreateObject();
    cJSON_AddStringToObject(req, "language", lang);
    cJSON_AddStringToObject(req, "code", code);
    free(code);
    const cJSON *in = cJSON_GetObjectItem(a, "stdin");
    if (cJSON_IsString(in)) {
        char *s = substitute(in->valuestring);
        cJSON_AddStringToObject(req, "stdin", s);
        free(s);
    }
    const cJSON *t = cJSON_GetObjectItem(a, "timeout"), *ct = cJSON_GetObjectItem(a, "compile_timeout");
    const cJSON *mem = cJSON_GetObjectItem(a, "memory");
    // Under an emulated CPU (tests/sandbox/cgroup2_vm.sh sets CISPO_TEST_EMULATED) an attack that must meet
    // another limit (memory, processes) gets four times its time limit, which only guards against a hang
    // there: filling 64 MiB of shared memory one page fault at a time can take longer than 5 s in the VM.
    int time_verdict = 0;
    const cJSON *ex = cJSON_GetObjectItem(a, "expect"), *v;
    cJSON_ArrayForEach(v, ex) time_verdict |= cJSON_IsString(v) && !strcmp(v->valuestring, "TimeLimitExceeded");
    const double run_timeout = (cJSON_IsNumber(t) ? t->valuedouble : 5) *
                               (getenv("CISPO_TEST_EMULATED") && *getenv("CISPO_TEST_EMULATED") && !time_verdict ? 4 : 1);
    cJSON_AddNumberToObject(req, "run_timeout", run_timeout);
    cJSON_AddNumberToObject(req, "compile_timeout", cJSON_IsNumber(ct) ? ct->valuedouble : 20);
    cJSON_AddNumberToObject(req, "memory_limit_MB", cJSON_IsNumber(mem) ? mem->valuedouble : 256);
    const char *copy[] = {"tests", "fn_name"};
    for (int i = 0; i < 2; i++)
        if (cJSON_GetObjectItem(a, copy[i])) cJSON_AddItemToObject(req, copy[i], cJSON_Duplicate(cJSON_GetObjectItem(a, copy[i]), 1));
    if (cJSON_GetObjectItem(a, "fetch")) cJSON_AddItemToObject(req, "fetch_files", cJSON_Duplicate(cJSON_GetObjectItem(a, "fetch"), 1));

    double t0 = now_s();
    char *req_text = cJSON_PrintUnformatted(req);
    char *res_text = sandbox_pool_run(pool, req_text);
    cJSON *res = cJSON_Parse(res_text);
    free(req_text);
    double dt = now_s() - t0;
    // strict JSON parsers reject bytes that are not UTF-8: whatever the program printed, the
    // result must be valid UTF-8 text
    test_check(utf8_valid(res_text), "%s: the result is valid UTF-8", name);
    const cJSON *maxmb = cJSON_GetObjectItem(a, "max_result_mb");
    if (cJSON_IsNumber(maxmb))
        test_check(strlen(res_text) <= (size_t)(maxmb->valuedouble * 1048576.0), "%s: the result is at most %g MiB (%.1f MiB)", name,
                   maxmb->valuedouble, (double)strlen(res_text) / 1048576.0);
    free(res_text);
    char *text = cJSON_PrintUnformatted(res);
    const char *status = cJSON_GetObjectItem(res, "status")->valuestring;
    int allowed = 0;
    const cJSON *exp = cJSON_GetObjectItem(a, "expect");
    for (const cJSON *e = exp->child; e; e = e->next) allowed |= !strcmp(e->valuestring, status);
    if (!test_check(allowed, "%s: verdict %s is one of the expected", name, status)) printf("  result: %.1500s\n", text);
    const cJSON *ce = cJSON_GetObjectItem(a, "compile_expect");
    if (cJSON_IsString(ce)) {
        const cJSON *cs = cJSON_GetObjectItem(cJSON_GetObjectItem(res, "compile"), "status");
        test_check(cJSON_IsString(cs) && !strcmp(cs->valuestring, ce->valuestring), "%s: the compile step ended with %s (%s)", name,
                   ce->valuestring, cJSON_IsString(cs) ? cs->valuestring : "no compile step");
    }
    const cJSON *run = cJSON_GetObjectItem(res, "run");
    const char *streams[] = {"stdout_contains", "stderr_contains"};
    for (int i = 0; i < 2; i++) {
        const cJSON *want = cJSON_GetObjectItem(a, streams[i]);
        if (!cJSON_IsString(want)) continue;
        const cJSON *got = cJSON_GetObjectItem(run, i ? "stderr" : "stdout");
        if (!test_check(cJSON_IsString(got) && strstr(got->valuestring, want->valuestring), "%s: %.6s shows '%s'", name,
                        streams[i], want->valuestring))
            printf("  result: %.1500s\n", text);
    }
    const cJSON *cmin = cJSON_GetObjectItem(a, "cpu_time_min");
    if (cJSON_IsNumber(cmin)) {
        const cJSON *ct = cJSON_GetObjectItem(run, "cpu_time");
        test_check(cJSON_IsNumber(ct) && ct->valuedouble >= cmin->valuedouble, "%s: cpu_time %.3f s counts the children (>= %g s)", name,
                   cJSON_IsNumber(ct) ? ct->valuedouble : -1.0, cmin->valuedouble);
    }
    // fetched files are base64 in the result: decode them for the content checks
    char *all = strdup(text);
    const cJSON *files = cJSON_GetObjectItem(res, "files");
    for (const cJSON *f = files ? files->child : NULL; f; f = f->next) {
        size_t len;
        char *d = sandbox_b64_decode(f->valuestring, &len);
        if (d) {
            all = realloc(all, strlen(all) + len + 2);
            strcat(all, "\n");
            strncat(all, d, len);
            free(d);
        }
    }
    test_check(!strstr(all, secret), "%s: the canary secret did not leak", name);
    test_check(!strstr(all, env_secret), "%s: the host environment did not leak", name);
    if (!test_check(!strstr(all, "ESCAPED"), "%s: no attack step succeeded", name)) printf("  result: %.1500s\n", text);
    if (cJSON_IsTrue(cJSON_GetObjectItem(a, "fetched_none")))
        test_check(cJSON_GetArraySize(files) == 0, "%s: no planted file was copied back (%d were)", name, cJSON_GetArraySize(files));
    const cJSON *linger = cJSON_GetObjectItem(a, "linger");
    if (cJSON_IsNumber(linger)) sleep((unsigned)linger->valueint);
    host_checks(name);
    printf("%-24s %-20s %6.2f s\n", name, status, dt);
    fflush(stdout);
    free(all);
    free(text);
    cJSON_Delete(res);
    cJSON_Delete(req);
}

static void positive_controls(void) {
    // a correct program passes: the suite cannot pass by failing everything
    const char *req_stdin =
        "{\"language\":\"python\",\"code\":\"a,b=map(int,input().split())\\nprint(a+b)\\n\","
        "\"tests\":[{\"stdin\":\"1 2\\n\",\"stdout\":\"3\\n\"},{\"stdin\":\"10 -4\",\"stdout\":\"6\"}]}";
    const char *req_call =
        "{\"language\":\"python\",\"code\":\"def add(a, b):\\n    return a + b\\n\",\"fn_name\":\"add\","
        "\"tests\":[{\"input\":[1,2],\"output\":3},{\"input\":\"2.5\\n0.25\",\"output\":\"2.75\"}]}";
    const char *req_c =
        "{\"language\":\"c\",\"code\":\"#include <stdio.h>\\nint main(){int a,b;scanf(\\\"%d %d\\\",&a,&b);printf(\\\"%d\\\\n\\\",a+b);}\","
        "\"tests\":[{\"stdin\":\"1 2\",\"stdout\":\"3\"}]}";
    const char *reqs[] = {req_stdin, req_call, req_c};
    const char *names[] = {"control_stdin", "control_call", "control_c"};
    for (int i = 0; i < 6; i++) {  // in this process, then through the pool
        char *out = i < 3 ? sandbox_execute_text(reqs[i % 3]) : sandbox_pool_run(pool, reqs[i % 3]);
        cJSON *r = cJSON_Parse(out);
        const cJSON *st = cJSON_GetObjectItem(r, "status");
        if (!test_check(cJSON_IsString(st) && !strcmp(st->valuestring, "Accepted"), "%s: a correct program is Accepted", names[i % 3]))
            printf("  result: %.1000s\n", out);
        printf("%-24s %-20s %s\n", names[i % 3], cJSON_IsString(st) ? st->valuestring : "?", i < 3 ? "direct" : "pool");
        free(out);
        cJSON_Delete(r);
        host_checks(names[i % 3]);
    }
}

// Issue 18.8: two jails that run at once must not share a host uid (the kernel's per-user quotas,
// pipe buffers among them, would be shared: one jail shrank the other's new pipes to 8 KiB).
static void *uid_map_of_a_jail(void *out) {
    const char *req = "{\"language\":\"python\",\"code\":\"import time\\nprint(open('/proc/self/uid_map').read().split())\\n"
                      "time.sleep(1)\\n\"}";
    *(char **)out = sandbox_pool_run(pool, req);
    return NULL;
}

static void concurrent_jails_distinct_uids(void) {
    if (geteuid() != 0) return;  // without root every jail maps to our own uid: nothing to choose
    pthread_t th[2];
    char *out[2] = {NULL, NULL};
    for (int i = 0; i < 2; i++) pthread_create(&th[i], NULL, uid_map_of_a_jail, &out[i]);
    for (int i = 0; i < 2; i++) pthread_join(th[i], NULL);
    cJSON *r0 = cJSON_Parse(out[0]), *r1 = cJSON_Parse(out[1]);
    const cJSON *o0 = cJSON_GetObjectItem(cJSON_GetObjectItem(r0, "run"), "stdout"), *o1 = cJSON_GetObjectItem(cJSON_GetObjectItem(r1, "run"), "stdout");
    int ok = cJSON_IsString(o0) && cJSON_IsString(o1) && strstr(o0->valuestring, "1000") && strcmp(o0->valuestring, o1->valuestring) != 0;
    if (!test_check(ok, "concurrent jails map to different host uids")) printf("  %s\n  %s\n", out[0], out[1]);
    printf("%-24s %s\n", "distinct_uids", ok ? "ok" : "SHARED");
    cJSON_Delete(r0);
    cJSON_Delete(r1);
    free(out[0]);
    free(out[1]);
    host_checks("distinct_uids");
}

static int selected(const char *name, int argc, char **argv) {
    for (int i = 1; i < argc; i++)
        if (strstr(name, argv[i])) return 1;
    return argc < 2;
}

int main(int argc, char **argv) {
    const char *src = getenv("CISPO_SRC") ? getenv("CISPO_SRC") : ".";
    char why[1200];
    if (jail_check_ready(why, sizeof why) != 0) {
        // the suite is the proof of containment: a host that cannot contain must fail it loudly
        test_check(0, "the sandbox cannot run on this host: %s", why);
        return test_finish("test_sandbox_attacks");
    }
    char path[512];
    snprintf(path, sizeof path, "%s/tests/sandbox/attacks.json", src);
    char *text = read_text(path);
    cJSON *m = text ? cJSON_Parse(text) : NULL;
    free(text);
    if (!test_check(m != NULL, "read %s", path)) return test_finish("test_sandbox_attacks");
    prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0);  // orphans below us stay countable (see ours())
    setup_host();
    char err[1200];
    pool = sandbox_pool_create(2, err, sizeof err);
    if (!test_check(pool != NULL, "sandbox pool: %s", pool ? "" : err)) return test_finish("test_sandbox_attacks");
    positive_controls();
    if (selected("distinct_uids", argc, argv)) concurrent_jails_distinct_uids();
    // CI installs every language's toolchain and sets CISPO_REQUIRE_LANGS=1 (scripts/test.sh): a
    // missing one fails there; elsewhere its attacks are skipped, each with a note
    const char *req_env = getenv("CISPO_REQUIRE_LANGS");
    int require_langs = req_env && !strcmp(req_env, "1");
    int n = 0, skipped = 0;
    for (const cJSON *a = cJSON_GetObjectItem(m, "attacks")->child; a; a = a->next) {
        const char *base = cJSON_GetObjectItem(a, "name")->valuestring;
        const cJSON *langs = cJSON_GetObjectItem(a, "langs");
        if (!langs) {
            if (!selected(base, argc, argv)) continue;
            run_attack(a, src, base, cJSON_GetObjectItem(a, "lang")->valuestring, cJSON_GetObjectItem(a, "file")->valuestring);
            n++;
            continue;
        }
        for (const cJSON *l = langs->child; l; l = l->next) {
            char name[128], why[600];
            snprintf(name, sizeof name, "%s_%s", base, l->string);
            if (!selected(name, argc, argv)) continue;
            if (!sandbox_lang_available(l->string, why, sizeof why)) {
                if (require_langs) test_check(0, "%s: %s (CISPO_REQUIRE_LANGS=1)", name, why);
                else printf("%-24s SKIPPED: %s (CISPO_REQUIRE_LANGS=1 makes this a failure)\n", name, why);
                skipped++;
                continue;
            }
            run_attack(a, src, name, l->string, l->valuestring);
            n++;
        }
    }
    if (skipped) printf("%d attacks skipped for missing toolchains\n", skipped);
    printf("%d attacks run\n", n);
    if (argc == 1) test_check(n >= 60, "the suite has at least 60 attacks (%d)", n);
    sandbox_pool_destroy(pool);
    teardown_host();
    cJSON_Delete(m);
    return test_finish("test_sandbox_attacks");
}
