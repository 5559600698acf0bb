// datasets/util.c — error recording, checked allocation and the id hash for datasets/.
#include "datasets/util.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "datasets/record.h"

static _Thread_local char last_error[1024];

int ds_fail(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(last_error, sizeof last_error, fmt, ap);
    va_end(ap);
    return -1;
}

const char *datasets_last_error(void) { return last_error; }

static void oom(size_t n) {
    fprintf(stderr, "cispo: fatal: datasets: out of memory allocating %zu bytes\n", n);
    abort();
}

void *ds_malloc(size_t n) {
    void *p = malloc(n ? n : 1);
    if (!p) oom(n);
    return p;
}

void *ds_realloc(void *p, size_t n) {
    void *q = realloc(p, n ? n : 1);
    if (!q) oom(n);
    return q;
}

char *ds_strndup(const char *s, size_t n) {
    char *d = ds_malloc(n + 1);
    memcpy(d, s, n);
    d[n] = 0;
    return d;
}

char *ds_strdup(const char *s) { return s ? ds_strndup(s, strlen(s)) : NULL; }

uint64_t ds_hash64(const char *s) {
    uint64_t h = 1469598103934665603ull;
    for (; *s; s++) h = (h ^ (unsigned char)*s) * 1099511628211ull;
    h ^= h >> 30; h *= 0xBF58476D1CE4E5B9ull;
    h ^= h >> 27; h *= 0x94D049BB133111EBull;
    return h ^ (h >> 31);
}
