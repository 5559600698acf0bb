// datasets/util.h — helpers private to datasets/: error recording and checked allocation (datasets/
// stands alone, so it does not use base/common.h).
// defines: ds_fail, ds_malloc, ds_realloc, ds_strdup, ds_strndup, ds_hash64
#ifndef CISPO_DATASETS_UTIL_H
#define CISPO_DATASETS_UTIL_H

#include <stddef.h>
#include <stdint.h>

// Records one line for datasets_last_error() and returns -1.
int ds_fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
// Allocation that aborts with a message on exhaustion (never returns NULL).
void *ds_malloc(size_t n);
void *ds_realloc(void *p, size_t n);
char *ds_strdup(const char *s);       // NULL stays NULL
char *ds_strndup(const char *s, size_t n);
// 64-bit FNV-1a of s, with a final avalanche (splitmix64) so that low bits are well mixed.
uint64_t ds_hash64(const char *s);

#endif
