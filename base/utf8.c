// base/utf8.c — UTF-8 at the byte level (utf8.h).
#include "base/utf8.h"

int utf8_decode(const char *str, size_t n, uint32_t *cp) {
    const unsigned char *s = (const unsigned char *)str;
    if (n == 0) return 0;
    unsigned c = s[0];
    if (c < 0x80) {
        *cp = c;
        return 1;
    }
    int len = c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : c >= 0xC2 ? 2 : 0;  // 0xC0, 0xC1 only start overlong forms
    if (len == 0 || c > 0xF4 || (size_t)len > n) return 0;
    uint32_t v = c & (0x3F >> (len - 1));
    for (int i = 1; i < len; i++) {
        if (!utf8_is_cont(s[i])) return 0;
        v = (v << 6) | (s[i] & 0x3F);
    }
    if ((len == 3 && v < 0x800) || (len == 4 && (v < 0x10000 || v > 0x10FFFF)) || (v >= 0xD800 && v < 0xE000))
        return 0;
    *cp = v;
    return len;
}

int utf8_encode(uint32_t cp, char out[4]) {
    if (cp < 0x80) {
        out[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        out[0] = (char)(0xC0 | (cp >> 6));
        out[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = (char)(0xE0 | (cp >> 12));
        out[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        out[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    out[0] = (char)(0xF0 | (cp >> 18));
    out[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    out[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
    out[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

int utf8_valid(const char *s, size_t n, size_t *bad_at) {
    for (size_t i = 0; i < n;) {
        uint32_t cp;
        int l = utf8_decode(s + i, n - i, &cp);
        if (l <= 0) {
            if (bad_at) *bad_at = i;
            return 0;
        }
        i += (size_t)l;
    }
    return 1;
}

void utf8_append_lossy(buf_t *b, const char *s, size_t n) {
    for (size_t i = 0; i < n;) {
        uint32_t cp;
        int l = utf8_decode(s + i, n - i, &cp);
        if (l > 0) {
            buf_append(b, s + i, (size_t)l);
            i += (size_t)l;
            continue;
        }
        // The longest prefix of a valid sequence is swallowed by one replacement character: the second
        // byte's range depends on the lead byte (Unicode Table 3-7, well-formed byte sequences).
        unsigned c0 = (unsigned char)s[i];
        size_t need = c0 >= 0xF0 ? 4 : c0 >= 0xE0 ? 3 : c0 >= 0xC2 ? 2 : 1, k = 1;
        if (c0 <= 0xF4 && need > 1) {
            unsigned lo = 0x80, hi = 0xBF;
            if (c0 == 0xE0) lo = 0xA0;
            else if (c0 == 0xED) hi = 0x9F;
            else if (c0 == 0xF0) lo = 0x90;
            else if (c0 == 0xF4) hi = 0x8F;
            while (k < need && i + k < n) {
                unsigned cb = (unsigned char)s[i + k];
                if (cb < lo || cb > hi) break;
                lo = 0x80;
                hi = 0xBF;
                k++;
            }
        }
        buf_append(b, "\xEF\xBF\xBD", 3);
        i += k;
    }
}
