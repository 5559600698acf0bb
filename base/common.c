// base/common.c — error recording, fatal checks that name host and rank, checked allocation, file reading.
#include "base/common.h"

#include <errno.h>
#include <stdarg.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "base/buf.h"

static _Thread_local char last_error[1024];

int cispo_fail(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(last_error, sizeof last_error, fmt, ap);
    va_end(ap);
    return -1;
}

const char *cispo_last_error(void) { return last_error; }
void cispo_clear_error(void) { last_error[0] = 0; }

// -1: not set, read from the environment at the first fatal error.
static int rank_set = -1;

void cispo_set_rank(int rank) { rank_set = rank; }

int cispo_rank(void) {
    if (rank_set >= 0) return rank_set;
    static const char *vars[] = {"OMPI_COMM_WORLD_RANK", "PMI_RANK", "SLURM_PROCID"};
    for (size_t i = 0; i < sizeof vars / sizeof vars[0]; i++) {
        const char *v = getenv(vars[i]);
        char *end;
        if (v && *v) {
            long r = strtol(v, &end, 10);
            if (*end == 0 && r >= 0 && r <= 1 << 30) return (int)r;
        }
    }
    return 0;
}

int cispo_local_ranks(void) {
    static const char *vars[] = {"OMPI_COMM_WORLD_LOCAL_SIZE", "MPI_LOCALNRANKS", "SLURM_NTASKS_PER_NODE"};
    for (size_t i = 0; i < sizeof vars / sizeof vars[0]; i++) {
        const char *v = getenv(vars[i]);
        long n = v ? strtol(v, NULL, 10) : 0;  // Slurm's may read "2(x3)": its leading count
        if (n >= 1 && n <= 1 << 20) return (int)n;
    }
    return 1;
}

// One fprintf so that ranks writing to a shared stderr do not interleave within the line.
static CISPO_NORETURN void die_line(const char *file, int line, const char *msg) {
    char host[256] = "?";
    if (gethostname(host, sizeof host - 1)) snprintf(host, sizeof host, "?");
    host[sizeof host - 1] = 0;
    fprintf(stderr, "cispo: fatal: %s:%d: %s [host %s, rank %d]\n", file, line, msg, host, cispo_rank());
    fflush(stderr);
    abort();
}

void cispo_die(const char *file, int line, const char *what, const char *hint) {
    char msg[1024];
    snprintf(msg, sizeof msg, "%s (%s)", what, hint);
    die_line(file, line, msg);
}

void cispo_die_status(const char *file, int line, const char *stmt, const char *lib, long code, const char *errstr) {
    char msg[1024];
    snprintf(msg, sizeof msg, "%s failed: %s error %ld (%s)", stmt, lib, code, errstr && *errstr ? errstr : "no text");
    die_line(file, line, msg);
}

void *cispo_malloc(size_t n) {
    void *p = malloc(n ? n : 1);
    if (!p) cispo_die(__FILE__, __LINE__, "malloc", "out of memory");
    return p;
}

void *cispo_calloc(size_t count, size_t size) {
    void *p = calloc(count ? count : 1, size ? size : 1);
    if (!p) cispo_die(__FILE__, __LINE__, "calloc", "out of memory");
    return p;
}

void *cispo_realloc(void *p, size_t n) {
    void *q = realloc(p, n ? n : 1);
    if (!q) cispo_die(__FILE__, __LINE__, "realloc", "out of memory");
    return q;
}

char *cispo_strndup(const char *s, size_t n) {
    char *d = cispo_malloc(n + 1);
    memcpy(d, s, n);
    d[n] = 0;
    return d;
}

// NULL stays NULL (optional fields copy through unchanged).
char *cispo_strdup(const char *s) { return s ? cispo_strndup(s, strlen(s)) : NULL; }

char *cispo_read_file(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) {
        cispo_fail("%s: cannot open: %s", path, strerror(errno));
        return NULL;
    }
    buf_t b = {0};
    for (;;) {
        buf_reserve(&b, 1 << 16);
        size_t got = fread(b.s + b.n, 1, b.cap - b.n - 1, f);
        b.n += got;
        if (got == 0) break;
    }
    b.s[b.n] = 0;
    int err = ferror(f);
    fclose(f);
    if (err) {
        buf_free(&b);
        cispo_fail("%s: read error", path);
        return NULL;
    }
    return buf_take(&b, len);
}

double cispo_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

// The number after `key` in a file of "key value" lines (/proc/meminfo: kB), or a file holding one number
// (cgroup: bytes, or "max"); -1 when absent or unlimited.
static long long read_number(const char *path, const char *key) {
    FILE *f = fopen(path, "r");
    if (!f) return -1;
    char line[256];
    long long v = -1;
    const size_t kn = key ? strlen(key) : 0;
    while (fgets(line, sizeof line, f)) {
        if (key && strncmp(line, key, kn)) continue;
        char *end;
        long long x = strtoll(line + kn, &end, 10);
        if (end != line + kn) v = x;
        break;
    }
    fclose(f);
    return v;
}

int cispo_host_memory(size_t *avail, size_t *total) {
    long long a = read_number("/proc/meminfo", "MemAvailable:"), t = read_number("/proc/meminfo", "MemTotal:");
    *avail = a > 0 ? (size_t)a * 1024 : 0;
    *total = t > 0 ? (size_t)t * 1024 : 0;
    // a container's limit: cgroup v2, else v1 (v1's "no limit" is a huge number, above MemTotal)
    // (its usage counts the page cache; the inactive part of it is given back on demand)
    long long lim = read_number("/sys/fs/cgroup/memory.max", NULL);
    long long use = read_number("/sys/fs/cgroup/memory.current", NULL);
    long long cache = read_number("/sys/fs/cgroup/memory.stat", "inactive_file ");
    if (lim < 0) {
        lim = read_number("/sys/fs/cgroup/memory/memory.limit_in_bytes", NULL);
        use = read_number("/sys/fs/cgroup/memory/memory.usage_in_bytes", NULL);
        cache = read_number("/sys/fs/cgroup/memory/memory.stat", "total_inactive_file ");
    }
    if (use > 0 && cache > 0 && cache < use) use -= cache;
    if (lim > 0 && (!*total || (size_t)lim < *total)) {
        const size_t room = use >= 0 && use < lim ? (size_t)(lim - use) : 0;
        *total = (size_t)lim;
        if (!*avail || room < *avail) *avail = room;
    }
    return *total ? 0 : -1;
}

int cispo_mkdir_p(const char *path) {
    char tmp[4096];
    if (!path || !*path || strlen(path) >= sizeof tmp) return cispo_fail("cannot create directory '%s': empty or too long", path ? path : "");
    snprintf(tmp, sizeof tmp, "%s", path);
    for (char *p = tmp + 1; *p; p++)
        if (*p == '/') {
            *p = 0;
            if (mkdir(tmp, 0755) && errno != EEXIST) return cispo_fail("cannot create %s: %s", tmp, strerror(errno));
            *p = '/';
        }
    if (mkdir(tmp, 0755) && errno != EEXIST) return cispo_fail("cannot create %s: %s", tmp, strerror(errno));
    return 0;
}
