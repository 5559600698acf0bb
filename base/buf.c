// base/buf.c — the growable byte buffer (buf.h).
#include "base/buf.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

void buf_init(buf_t *b) {
    b->s = NULL;
    b->n = b->cap = 0;
    buf_reserve(b, 0);
}

void buf_reserve(buf_t *b, size_t extra) {
    if (extra > (size_t)-1 / 2 - b->n) cispo_die(__FILE__, __LINE__, "buf_reserve", "size overflow");
    size_t need = b->n + extra + 1;
    if (need <= b->cap) return;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < need) cap *= 2;  // doubling keeps appends amortised O(1)
    b->s = cispo_realloc(b->s, cap);
    b->cap = cap;
    b->s[b->n] = 0;
}

void buf_append(buf_t *b, const void *p, size_t n) {
    buf_reserve(b, n);
    if (n) memcpy(b->s + b->n, p, n);
    b->n += n;
    b->s[b->n] = 0;
}

void buf_puts(buf_t *b, const char *s) { buf_append(b, s, strlen(s)); }
void buf_putc(buf_t *b, char c) { buf_append(b, &c, 1); }

int buf_printf(buf_t *b, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    char small[256];
    int k = vsnprintf(small, sizeof small, fmt, ap);
    va_end(ap);
    if (k < 0) cispo_die(__FILE__, __LINE__, fmt, "vsnprintf failed (bad format)");
    if ((size_t)k < sizeof small) {
        buf_append(b, small, (size_t)k);
        return k;
    }
    buf_reserve(b, (size_t)k);
    va_start(ap, fmt);
    vsnprintf(b->s + b->n, (size_t)k + 1, fmt, ap);
    va_end(ap);
    b->n += (size_t)k;
    return k;
}

void buf_clear(buf_t *b) {
    b->n = 0;
    if (b->s) b->s[0] = 0;
}

char *buf_take(buf_t *b, size_t *len) {
    if (!b->s) buf_reserve(b, 0);
    char *s = b->s;
    if (len) *len = b->n;
    b->s = NULL;
    b->n = b->cap = 0;
    return s;
}

void buf_free(buf_t *b) {
    free(b->s);
    b->s = NULL;
    b->n = b->cap = 0;
}
