// base/buf.h — the growable byte buffer: append bytes or printf output, then take the string.
// defines: buf_t, buf_init, buf_reserve, buf_append, buf_puts, buf_putc, buf_printf, buf_clear, buf_take,
//          buf_free
//
//   buf_t b = {0};                       // or buf_init(&b) when b.s must be "" from the start
//   buf_printf(&b, "%d tokens", n);
//   char *text = buf_take(&b, &len);     // the caller frees text; b is empty again
//
// The contents are always NUL-terminated once anything was appended (binary data may hold NULs;
// n is the length). Allocation failures abort (base/common.h).
#ifndef CISPO_BASE_BUF_H
#define CISPO_BASE_BUF_H

#include <stddef.h>

#include "base/common.h"

typedef struct {
    char *s;     // [cap] contents, s[n] == 0; NULL until the first append or buf_init
    size_t n;    // bytes held, not counting the terminating NUL
    size_t cap;  // bytes allocated
} buf_t;

void buf_init(buf_t *b);                            // empty, with b->s == ""
void buf_reserve(buf_t *b, size_t extra);           // room for `extra` more bytes (and the NUL)
void buf_append(buf_t *b, const void *p, size_t n);
void buf_puts(buf_t *b, const char *s);
void buf_putc(buf_t *b, char c);
int buf_printf(buf_t *b, const char *fmt, ...) CISPO_PRINTF(2, 3);  // bytes appended
void buf_clear(buf_t *b);                           // length 0, memory kept
char *buf_take(buf_t *b, size_t *len);              // the contents (never NULL; *len may be NULL); b emptied
void buf_free(buf_t *b);

#endif
