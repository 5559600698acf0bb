// sandbox/base64.c — RFC 4648 base64 (see base64.h).
// defines: sandbox_b64_encode, sandbox_b64_decode
#include <stdlib.h>
#include <string.h>

#include "sandbox/base64.h"

static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

char *sandbox_b64_encode(const char *data, size_t len) {
    const unsigned char *d = (const unsigned char *)data;
    char *out = malloc(4 * ((len + 2) / 3) + 1), *o = out;
    if (!out) return NULL;
    size_t i = 0;
    for (; i + 2 < len; i += 3) {
        unsigned v = (unsigned)d[i] << 16 | (unsigned)d[i + 1] << 8 | d[i + 2];
        *o++ = alphabet[v >> 18], *o++ = alphabet[(v >> 12) & 63], *o++ = alphabet[(v >> 6) & 63], *o++ = alphabet[v & 63];
    }
    if (i < len) {
        unsigned v = (unsigned)d[i] << 16 | (i + 1 < len ? (unsigned)d[i + 1] << 8 : 0);
        *o++ = alphabet[v >> 18], *o++ = alphabet[(v >> 12) & 63];
        *o++ = i + 1 < len ? alphabet[(v >> 6) & 63] : '=';
        *o++ = '=';
    }
    *o = 0;
    return out;
}

char *sandbox_b64_decode(const char *text, size_t *len) {
    size_t n = strlen(text);
    char *out = malloc(n / 4 * 3 + 4);
    if (!out) return NULL;
    unsigned acc = 0;
    int bits = 0;
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        char c = text[i];
        if (c == '=' || c == ' ' || c == '\n' || c == '\r' || c == '\t') continue;
        const char *p = c ? strchr(alphabet, c) : NULL;
        if (!p) {
            free(out);
            return NULL;
        }
        acc = acc << 6 | (unsigned)(p - alphabet);
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out[k++] = (char)((acc >> bits) & 255);
        }
    }
    out[k] = 0;
    *len = k;
    return out;
}
