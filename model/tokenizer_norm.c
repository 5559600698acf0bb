// model/tokenizer_norm.c — tokenizer.json normalizers (model/tokenizer_norm.h).
// Lowercase follows Rust's char::to_lowercase (per character, no final-sigma rule): utf8proc's simple
// mapping, except U+0130 which lowercases to "i" + U+0307, and the capitals new in Unicode 15-16
// (model/tokenizer_unicode.h: Rust's tables are at 16.0).
#define PCRE2_CODE_UNIT_WIDTH 8
#include "model/tokenizer_norm.h"

#include <pcre2.h>
#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>

#include "base/buf.h"
#include "base/common.h"
#include "base/utf8.h"
#include "model/tokenizer_unicode.h"

enum { NZ_NFC, NZ_NFD, NZ_NFKC, NZ_NFKD, NZ_LOWER, NZ_STRIP, NZ_REPLACE, NZ_PREPEND };

typedef struct {
    int kind;
    int left, right;      // Strip
    char *literal;        // Replace (String pattern) / Prepend text
    pcre2_code *re;       // Replace (Regex pattern)
    char *content;        // Replace
} nz_step_t;

struct tok_normalizer {
    nz_step_t *steps;
    int n;
};

void tok_normalizer_free(tok_normalizer_t *nz) {
    if (!nz) return;
    for (int i = 0; i < nz->n; i++) {
        free(nz->steps[i].literal);
        free(nz->steps[i].content);
        pcre2_code_free(nz->steps[i].re);
    }
    free(nz->steps);
    free(nz);
}

static int load_step(tok_normalizer_t *nz, const cJSON *j, const char *path, const char *key) {
    const cJSON *ty = cJSON_GetObjectItemCaseSensitive(j, "type");
    if (!cJSON_IsString(ty)) return cispo_fail("%s: key '%s.type': missing or not a string", path, key);
    const char *type = ty->valuestring;
    if (!strcmp(type, "Sequence")) {
        const cJSON *list = cJSON_GetObjectItemCaseSensitive(j, "normalizers");
        if (!cJSON_IsArray(list)) return cispo_fail("%s: key '%s.normalizers': missing or not a list", path, key);
        int i = 0;
        for (const cJSON *it = list->child; it; it = it->next, i++) {
            char sub[256];
            snprintf(sub, sizeof sub, "%s.normalizers[%d]", key, i);
            if (load_step(nz, it, path, sub)) return -1;
        }
        return 0;
    }
    nz_step_t s = {0};
    if (!strcmp(type, "NFC")) s.kind = NZ_NFC;
    else if (!strcmp(type, "NFD")) s.kind = NZ_NFD;
    else if (!strcmp(type, "NFKC")) s.kind = NZ_NFKC;
    else if (!strcmp(type, "NFKD")) s.kind = NZ_NFKD;
    else if (!strcmp(type, "Lowercase")) s.kind = NZ_LOWER;
    else if (!strcmp(type, "Strip")) {
        s.kind = NZ_STRIP;
        s.left = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(j, "strip_left"));
        s.right = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(j, "strip_right"));
    } else if (!strcmp(type, "Prepend")) {
        const cJSON *p = cJSON_GetObjectItemCaseSensitive(j, "prepend");
        if (!cJSON_IsString(p)) return cispo_fail("%s: key '%s.prepend': missing or not a string", path, key);
        s.kind = NZ_PREPEND;
        s.literal = cispo_strdup(p->valuestring);
    } else if (!strcmp(type, "Replace")) {
        const cJSON *pat = cJSON_GetObjectItemCaseSensitive(j, "pattern");
        const cJSON *con = cJSON_GetObjectItemCaseSensitive(j, "content");
        const cJSON *str = pat ? cJSON_GetObjectItemCaseSensitive(pat, "String") : NULL;
        const cJSON *rx = pat ? cJSON_GetObjectItemCaseSensitive(pat, "Regex") : NULL;
        if (!cJSON_IsString(con)) return cispo_fail("%s: key '%s.content': missing or not a string", path, key);
        s.kind = NZ_REPLACE;
        s.content = cispo_strdup(con->valuestring);
        if (cJSON_IsString(str) && str->valuestring[0]) {
            s.literal = cispo_strdup(str->valuestring);
        } else if (cJSON_IsString(rx)) {
            int err;
            PCRE2_SIZE off;
            char *rw = tok_unicode_regex(rx->valuestring);
            s.re = pcre2_compile((PCRE2_SPTR)rw, PCRE2_ZERO_TERMINATED, PCRE2_UTF | PCRE2_UCP, &err, &off, NULL);
            free(rw);
            if (!s.re) {
                free(s.content);
                return cispo_fail("%s: key '%s.pattern.Regex': regex '%s' does not compile at offset %zu", path, key,
                                  rx->valuestring, (size_t)off);
            }
        } else {
            free(s.content);
            return cispo_fail("%s: key '%s.pattern': needs a non-empty String or a Regex", path, key);
        }
    } else {
        return cispo_fail("%s: key '%s.type': normalizer '%s' is not supported (NFC, NFD, NFKC, NFKD, Lowercase, "
                          "Strip, Replace, Prepend, Sequence)",
                          path, key, type);
    }
    nz->steps = cispo_realloc(nz->steps, sizeof(nz_step_t) * (size_t)(nz->n + 1));
    nz->steps[nz->n++] = s;
    return 0;
}

int tok_normalizer_load(tok_normalizer_t **out, const cJSON *section, const char *path) {
    *out = NULL;
    if (!section || cJSON_IsNull(section)) return 0;
    if (!cJSON_IsObject(section)) return cispo_fail("%s: key 'normalizer': not an object", path);
    tok_normalizer_t *nz = cispo_calloc(1, sizeof *nz);
    if (load_step(nz, section, path, "normalizer")) {
        tok_normalizer_free(nz);
        return -1;
    }
    if (nz->n == 0) {
        tok_normalizer_free(nz);
        return 0;
    }
    *out = nz;
    return 0;
}

static int is_ws(utf8proc_int32_t c) {  // Rust's char::is_whitespace (Unicode White_Space)
    return (c >= 9 && c <= 13) || c == 32 || c == 0x85 || c == 0xA0 || c == 0x1680 || (c >= 0x2000 && c <= 0x200A) ||
           c == 0x2028 || c == 0x2029 || c == 0x202F || c == 0x205F || c == 0x3000;
}

// One step on b (in place through a second buffer). Returns 0, or -1 on invalid UTF-8.
static int apply_step(const nz_step_t *s, buf_t *b) {
    buf_t o = {0};
    buf_append(&o, "", 0);
    switch (s->kind) {
    case NZ_NFC:
    case NZ_NFD:
    case NZ_NFKC:
    case NZ_NFKD: {
        int opt = UTF8PROC_STABLE | (s->kind == NZ_NFC || s->kind == NZ_NFKC ? UTF8PROC_COMPOSE : UTF8PROC_DECOMPOSE) |
                  (s->kind >= NZ_NFKC ? UTF8PROC_COMPAT : 0);
        utf8proc_uint8_t *dst = NULL;
        utf8proc_ssize_t n = utf8proc_map((const utf8proc_uint8_t *)b->s, (utf8proc_ssize_t)b->n, &dst, opt);
        if (n < 0) {
            free(o.s);
            return -1;
        }
        buf_append(&o, (const char *)dst, (size_t)n);
        free(dst);
        break;
    }
    case NZ_LOWER:
    case NZ_STRIP: {
        size_t i = 0, start = 0, end = b->n;
        if (s->kind == NZ_STRIP) {  // find the first and last non-whitespace characters
            size_t first = b->n, last = 0;
            while (i < b->n) {
                utf8proc_int32_t c;
                utf8proc_ssize_t l = utf8proc_iterate((const utf8proc_uint8_t *)b->s + i, (utf8proc_ssize_t)(b->n - i), &c);
                if (l <= 0) return free(o.s), -1;
                if (!is_ws(c)) {
                    if (first == b->n) first = i;
                    last = i + (size_t)l;
                }
                i += (size_t)l;
            }
            // all whitespace: first = n, last = 0, so either strip empties the text
            start = s->left ? first : 0;
            end = s->right ? last : b->n;
            if (end < start) end = start;
            buf_append(&o, b->s + start, end - start);
            break;
        }
        while (i < b->n) {
            utf8proc_int32_t c;
            utf8proc_ssize_t l = utf8proc_iterate((const utf8proc_uint8_t *)b->s + i, (utf8proc_ssize_t)(b->n - i), &c);
            if (l <= 0) return free(o.s), -1;
            i += (size_t)l;
            if (c == 0x130) {
                buf_append(&o, "i\xCC\x87", 3);
                continue;
            }
            utf8proc_uint8_t enc[4];
            uint32_t newer = tok_unicode_lower_new((uint32_t)c);  // utf8proc's tables predate Unicode 16
            utf8proc_ssize_t k = utf8proc_encode_char(newer ? (utf8proc_int32_t)newer : utf8proc_tolower(c), enc);
            buf_append(&o, (const char *)enc, (size_t)k);
        }
        break;
    }
    case NZ_PREPEND:
        if (b->n) buf_append(&o, s->literal, strlen(s->literal));
        buf_append(&o, b->s, b->n);
        break;
    case NZ_REPLACE:
        if (s->literal) {
            size_t pl = strlen(s->literal), i = 0;
            while (i < b->n) {
                const char *hit = b->n - i >= pl ? memmem(b->s + i, b->n - i, s->literal, pl) : NULL;
                if (!hit) {
                    buf_append(&o, b->s + i, b->n - i);
                    break;
                }
                buf_append(&o, b->s + i, (size_t)(hit - (b->s + i)));
                buf_append(&o, s->content, strlen(s->content));
                i = (size_t)(hit - b->s) + pl;
            }
        } else {
            pcre2_match_data *md = pcre2_match_data_create_from_pattern(s->re, NULL);
            size_t i = 0;
            while (i <= b->n) {
                int rc = pcre2_match(s->re, (PCRE2_SPTR)b->s, b->n, i, 0, md, NULL);
                if (rc < 0) break;
                PCRE2_SIZE *ov = pcre2_get_ovector_pointer(md);
                buf_append(&o, b->s + i, ov[0] - i);
                buf_append(&o, s->content, strlen(s->content));
                if (ov[1] == ov[0]) {  // empty match: copy one character and move on
                    if (ov[1] >= b->n) {
                        i = b->n + 1;
                        break;
                    }
                    size_t l = 1;
                    while (ov[1] + l < b->n && utf8_is_cont((unsigned char)b->s[ov[1] + l])) l++;
                    buf_append(&o, b->s + ov[1], l);
                    i = ov[1] + l;
                } else {
                    i = ov[1];
                }
            }
            if (i < b->n) buf_append(&o, b->s + i, b->n - i);
            pcre2_match_data_free(md);
        }
        break;
    }
    free(b->s);
    *b = o;
    return 0;
}

char *tok_normalizer_apply(const tok_normalizer_t *nz, const char *s, size_t n, size_t *out_len) {
    buf_t b = {0};
    buf_append(&b, s, n);
    for (int i = 0; i < nz->n; i++)
        if (apply_step(&nz->steps[i], &b)) {
            free(b.s);
            return NULL;
        }
    *out_len = b.n;
    return b.s;
}
