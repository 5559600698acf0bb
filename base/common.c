// base/common.c — error recording, checked allocation, small file helpers.
#include "base/common.h"

#include <errno.h>
#include <stdarg.h>
#include <string.h>
#include <time.h>

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

void cispo_die(const char *file, int line, const char *what, const char *hint) {
    fprintf(stderr, "cispo: fatal: %s:%d: %s (%s)\n", file, line, what, hint);
    abort();
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

char *cispo_strdup(const char *s) {
    size_t n = strlen(s) + 1;
    char *d = cispo_malloc(n);
    memcpy(d, s, n);
    return d;
}

char *cispo_read_file(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) {
        cispo_fail("%s: cannot open: %s", path, strerror(errno));
        return NULL;
    }
    size_t cap = 1 << 16, n = 0;
    char *buf = cispo_malloc(cap);
    for (;;) {
        if (n + 1 >= cap) buf = cispo_realloc(buf, cap *= 2);
        size_t got = fread(buf + n, 1, cap - n - 1, f);
        n += got;
        if (got == 0) break;
    }
    int err = ferror(f);
    fclose(f);
    if (err) {
        free(buf);
        cispo_fail("%s: read error", path);
        return NULL;
    }
    buf[n] = 0;
    if (len) *len = n;
    return buf;
}

double cispo_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}
