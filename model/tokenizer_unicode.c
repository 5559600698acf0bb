// model/tokenizer_unicode.c — the tokenizer's character classes at Unicode 16.0 (model/tokenizer_unicode.h).
#define PCRE2_CODE_UNIT_WIDTH 8
#include "model/tokenizer_unicode.h"

#include <pcre2.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "base/buf.h"
#include "base/common.h"
#include "model/tokenizer_unicode_table.h"

// 1 when \p{sc:name} compiles: name is a script.
static int is_script_name(const char *name, size_t n) {
    char pat[96];
    if (n + 8 > sizeof pat || memchr(name, ':', n) || memchr(name, '=', n) || memchr(name, '^', n)) return 0;
    snprintf(pat, sizeof pat, "\\p{sc:%.*s}", (int)n, name);
    int err;
    PCRE2_SIZE off;
    pcre2_code *re = pcre2_compile((PCRE2_SPTR)pat, PCRE2_ZERO_TERMINATED, PCRE2_UTF | PCRE2_UCP, &err, &off, NULL);
    pcre2_code_free(re);
    return re != NULL;
}

// The general categories a property name stands for, as a prefix ("L" matches Lu..Lo) or a list of
// two-letter names; NULL when the name is not a general category (a script, White_Space, ...).
static const char *category_of(const char *name, size_t n) {
    static const struct { const char *name, *cats; } longs[] = {
        {"Letter", "L"}, {"Cased_Letter", "Lu Ll Lt"}, {"LC", "Lu Ll Lt"}, {"L&", "Lu Ll Lt"},
        {"Uppercase_Letter", "Lu"}, {"Lowercase_Letter", "Ll"}, {"Titlecase_Letter", "Lt"},
        {"Modifier_Letter", "Lm"}, {"Other_Letter", "Lo"}, {"Mark", "M"}, {"Combining_Mark", "M"},
        {"Nonspacing_Mark", "Mn"}, {"Spacing_Mark", "Mc"}, {"Enclosing_Mark", "Me"}, {"Number", "N"},
        {"Decimal_Number", "Nd"}, {"Digit", "Nd"}, {"Letter_Number", "Nl"}, {"Other_Number", "No"},
        {"Punctuation", "P"}, {"Connector_Punctuation", "Pc"}, {"Dash_Punctuation", "Pd"},
        {"Open_Punctuation", "Ps"}, {"Close_Punctuation", "Pe"}, {"Initial_Punctuation", "Pi"},
        {"Final_Punctuation", "Pf"}, {"Other_Punctuation", "Po"}, {"Symbol", "S"}, {"Math_Symbol", "Sm"},
        {"Currency_Symbol", "Sc"}, {"Modifier_Symbol", "Sk"}, {"Other_Symbol", "So"},
        {"Alphabetic", "L Nl"}, {"Alpha", "L Nl"},
    };
    for (size_t i = 0; i < sizeof longs / sizeof *longs; i++)
        if (strlen(longs[i].name) == n && !strncasecmp(longs[i].name, name, n)) return longs[i].cats;
    static const char *const shorts[] = {"L", "M", "N", "P", "S", "Z", "C"};
    for (size_t i = 0; i < sizeof shorts / sizeof *shorts; i++)
        if (n == 1 && name[0] == shorts[i][0]) return shorts[i];
    for (size_t i = 0; i < sizeof tok_uni_cat_names / sizeof *tok_uni_cat_names; i++)
        if (n == 2 && !memcmp(name, tok_uni_cat_names[i], 2)) return tok_uni_cat_names[i];
    return NULL;
}

// Appends the new code points whose category is in cats ("L Nl": L* or Nl) as \x{lo}-\x{hi} items.
static int append_new_ranges(buf_t *b, const char *cats) {
    int count = 0;
    for (size_t i = 0; i < sizeof tok_uni_new / sizeof *tok_uni_new; i++) {
        const char *cat = tok_uni_cat_names[tok_uni_new[i].cat];
        int hit = 0;
        for (const char *c = cats; *c && !hit; c += strcspn(c, " "), c += *c == ' ') {
            size_t k = strcspn(c, " ");
            hit = k == 1 ? cat[0] == c[0] : (k == 2 && !memcmp(cat, c, 2));
        }
        if (!hit) continue;
        if (tok_uni_new[i].lo == tok_uni_new[i].hi) buf_printf(b, "\\x{%X}", tok_uni_new[i].lo);
        else buf_printf(b, "\\x{%X}-\\x{%X}", tok_uni_new[i].lo, tok_uni_new[i].hi);
        count++;
    }
    return count;
}

// Emits a class item (e.g. "\p{L}") widened by the new code points of cats: inside a class the ranges
// join it; outside, [item ranges] or, negated, [^item ranges] with item the positive form.
static void emit_widened(buf_t *b, const char *item, size_t n, const char *positive, size_t pn, const char *cats,
                         int negated, int in_class) {
    buf_t r = {0};
    if (!cats || !append_new_ranges(&r, cats) || (negated && in_class)) {
        buf_append(b, item, n);
    } else if (in_class) {
        buf_append(b, item, n);
        buf_append(b, r.s, r.n);
    } else {
        buf_puts(b, negated ? "[^" : "[");
        buf_append(b, positive, pn);
        buf_append(b, r.s, r.n);
        buf_puts(b, "]");
    }
    buf_free(&r);
}

char *tok_unicode_regex(const char *pat) {
    buf_t b = {0};
    int depth = 0;          // nesting of [...] classes
    const char *open = NULL; // just after the latest '[' or '[^': a ']' there is a literal
    for (const char *p = pat; *p; p++) {
        if (p[0] == '\\' && p[1]) {
            const char *close = (p[1] == 'p' || p[1] == 'P') && p[2] == '{' ? strchr(p + 3, '}') : NULL;
            if (p[1] == 's') buf_append(&b, "\\p{White_Space}", 15);
            else if (p[1] == 'S') buf_append(&b, "\\P{White_Space}", 15);
            else if (p[1] == 'd' || p[1] == 'D') emit_widened(&b, p, 2, "\\d", 2, "Nd", p[1] == 'D', depth > 0);
            else if (close) {
                const char *name = p + 3;
                size_t n = (size_t)(close - name);
                int neg = p[1] == 'P';
                if (n && name[0] == '^') name++, n--, neg = !neg;
                const char *cats = category_of(name, n);
                if (cats) {
                    char pos[128];
                    snprintf(pos, sizeof pos, "\\p{%.*s}", (int)n, name);
                    emit_widened(&b, p, (size_t)(close - p) + 1, pos, strlen(pos), cats, neg, depth > 0);
                } else if (is_script_name(p + 3, (size_t)(close - p - 3))) {
                    buf_append(&b, p, 3);
                    buf_append(&b, "sc:", 3);
                    buf_append(&b, p + 3, (size_t)(close - p - 3) + 1);
                } else {
                    buf_append(&b, p, (size_t)(close - p) + 1);
                }
                p = close;
                continue;
            } else buf_append(&b, p, 2);
            p++;
            continue;
        }
        if (p[0] == '[' && depth > 0 && p[1] == ':') {  // a POSIX class [:alpha:] inside a class
            const char *end = strstr(p + 2, ":]");
            if (end) {
                buf_append(&b, p, (size_t)(end + 2 - p));
                p = end + 1;
                continue;
            }
        }
        if (p[0] == '[') {
            depth++;
            buf_append(&b, p, 1);
            if (p[1] == '^') buf_append(&b, ++p, 1);
            open = p + 1;
            continue;
        }
        if (p[0] == ']' && depth > 0 && p != open) depth--;
        buf_append(&b, p, 1);
    }
    return buf_take(&b, NULL);
}

int tok_unicode_is_punct(uint32_t cp) {
    size_t lo = 0, hi = sizeof tok_uni_punct / sizeof *tok_uni_punct;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (cp < tok_uni_punct[mid].lo) hi = mid;
        else if (cp > tok_uni_punct[mid].hi) lo = mid + 1;
        else return 1;
    }
    return 0;
}

uint32_t tok_unicode_lower_new(uint32_t cp) {
    for (size_t i = 0; i < sizeof tok_uni_lower / sizeof *tok_uni_lower; i++)
        if (tok_uni_lower[i].cp == cp) return tok_uni_lower[i].lower;
    return 0;
}
