// base/common.h — error reporting and check macros shared by every folder.
// defines: cispo_fail, cispo_last_error, CHECK_ALLOC, CHECK_FOPEN, CISPO_ASSERT, cispo_malloc
//
// Two kinds of failure:
//  - bad input (a file, a key, a request): the function records one line naming what and where with
//    cispo_fail(...) and returns -1 (or NULL); the caller passes it up; the CLI prints it and exits 1.
//  - broken invariants and exhausted memory: the check macros print file:line and abort.
#ifndef CISPO_BASE_COMMON_H
#define CISPO_BASE_COMMON_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#if defined(__GNUC__)
#define CISPO_PRINTF(a, b) __attribute__((format(printf, a, b)))
#else
#define CISPO_PRINTF(a, b)
#endif

// Records the error message (thread-local) and returns -1, so `return cispo_fail(...)` reads well.
int cispo_fail(const char *fmt, ...) CISPO_PRINTF(1, 2);
// The last message recorded on this thread ("" if none).
const char *cispo_last_error(void);
void cispo_clear_error(void);

void cispo_die(const char *file, int line, const char *what, const char *hint);

#define CISPO_ASSERT(cond)                                                    \
    do {                                                                      \
        if (!(cond)) cispo_die(__FILE__, __LINE__, #cond, "internal invariant"); \
    } while (0)
#define CHECK_ALLOC(ptr)                                                      \
    do {                                                                      \
        if ((ptr) == NULL) cispo_die(__FILE__, __LINE__, #ptr, "out of memory"); \
    } while (0)

// malloc/calloc that abort on failure (sizes are size_t products, never int).
void *cispo_malloc(size_t n);
void *cispo_calloc(size_t count, size_t size);
void *cispo_realloc(void *p, size_t n);
char *cispo_strdup(const char *s);

// Reads a whole file into a NUL-terminated buffer; NULL + cispo_fail on error. *len may be NULL.
char *cispo_read_file(const char *path, size_t *len);

// Monotonic seconds.
double cispo_now(void);

#endif
