// rl/math/unicode.c — Unicode math forms to ASCII LaTeX, so the parser only sees one spelling:
// ½ -> \frac{1}{2}, − -> -, × -> \times, π -> \pi, ≤ -> \le, x² -> x^{2}, √ -> \sqrt, fullwidth
// digits -> digits (NFKC through utf8proc), NBSP and thin spaces -> ' '.
// defines: mv_unicode_to_latex
#include <string.h>
#include <utf8proc.h>

#include "rl/math/mv_internal.h"

typedef struct {
    int32_t cp;
    const char *latex;
} uni_map;

// Symbols whose compatibility decomposition is wrong or missing for math.
static const uni_map kMap[] = {
    {0x2212, "-"},  {0x2013, "-"},  {0x2014, "-"},  {0x2010, "-"},  {0x2011, "-"},
    {0x00D7, "\\times "}, {0x22C5, "\\cdot "}, {0x00B7, "\\cdot "}, {0x2219, "\\cdot "}, {0x00F7, "\\div "},
    {0x2215, "/"},  {0x2044, "/"},  {0x00B1, "\\pm "}, {0x2213, "\\mp "},
    {0x2264, "\\le "}, {0x2265, "\\ge "}, {0x2266, "\\le "}, {0x2267, "\\ge "}, {0x2A7D, "\\le "}, {0x2A7E, "\\ge "},
    {0x2260, "\\ne "}, {0x2248, "\\approx "}, {0x2245, "\\approx "}, {0x2261, "="},
    {0x221E, "\\infty "}, {0x221A, "\\sqrt "}, {0x221B, "\\sqrt[3]"}, {0x221C, "\\sqrt[4]"},
    {0x2208, "\\in "}, {0x222A, "\\cup "}, {0x2229, "\\cap "}, {0x2205, "\\emptyset "}, {0x2216, "\\setminus "},
    {0x00B0, "^{\\circ}"}, {0x2032, "'"}, {0x2026, "\\ldots "}, {0x22EF, "\\cdots "},
    {0x03C0, "\\pi "}, {0x03B8, "\\theta "}, {0x03B1, "\\alpha "}, {0x03B2, "\\beta "}, {0x03B3, "\\gamma "},
    {0x03B4, "\\delta "}, {0x03BB, "\\lambda "}, {0x03BC, "\\mu "}, {0x03C3, "\\sigma "}, {0x03C6, "\\phi "},
    {0x03C9, "\\omega "}, {0x0394, "\\Delta "}, {0x03A9, "\\Omega "}, {0x03B5, "\\epsilon "},
    {0x00BD, "\\frac{1}{2}"}, {0x2153, "\\frac{1}{3}"}, {0x2154, "\\frac{2}{3}"}, {0x00BC, "\\frac{1}{4}"},
    {0x00BE, "\\frac{3}{4}"}, {0x2155, "\\frac{1}{5}"}, {0x2156, "\\frac{2}{5}"}, {0x2157, "\\frac{3}{5}"},
    {0x2158, "\\frac{4}{5}"}, {0x2159, "\\frac{1}{6}"}, {0x215A, "\\frac{5}{6}"}, {0x215B, "\\frac{1}{8}"},
    {0x215C, "\\frac{3}{8}"}, {0x215D, "\\frac{5}{8}"}, {0x215E, "\\frac{7}{8}"}, {0x2150, "\\frac{1}{7}"},
    {0x2151, "\\frac{1}{9}"}, {0x2152, "\\frac{1}{10}"},
    {0x00A0, " "},  {0x2009, " "},  {0x202F, " "},  {0x2002, " "},  {0x2003, " "},  {0x200A, " "},
    {0x200B, ""},   {0xFEFF, ""},   {0x2061, ""},   {0x2062, ""},
    {0x201C, "\""}, {0x201D, "\""}, {0x2018, "'"},  {0x2019, "'"},
    {0x20AC, "\\$"}, {0x00A3, "\\$"}, {0x00A5, "\\$"}, {0x20B9, "\\$"},
};

static const char *lookup(int32_t cp) {
    for (size_t i = 0; i < sizeof kMap / sizeof kMap[0]; i++)
        if (kMap[i].cp == cp) return kMap[i].latex;
    return NULL;
}

// Superscript and subscript digits/signs: the digit they stand for, or -1.
static int script_char(int32_t cp, int *is_sup) {
    static const int32_t sup[] = {0x2070, 0x00B9, 0x00B2, 0x00B3, 0x2074, 0x2075, 0x2076, 0x2077, 0x2078, 0x2079};
    for (int d = 0; d < 10; d++) {
        if (cp == sup[d]) { *is_sup = 1; return '0' + d; }
        if (cp == 0x2080 + d) { *is_sup = 0; return '0' + d; }
    }
    if (cp == 0x207B) { *is_sup = 1; return '-'; }
    if (cp == 0x208B) { *is_sup = 0; return '-'; }
    if (cp == 0x207A) { *is_sup = 1; return '+'; }
    return -1;
}

void mv_unicode_to_latex(const char *s, size_t n, buf_t *out) {
    const utf8proc_uint8_t *p = (const utf8proc_uint8_t *)s;
    size_t i = 0;
    while (i < n) {
        if (p[i] < 0x80) {
            size_t j = i;
            while (j < n && p[j] < 0x80) j++;
            buf_append(out, s + i, j - i);
            i = j;
            continue;
        }
        utf8proc_int32_t cp;
        utf8proc_ssize_t len = utf8proc_iterate(p + i, (utf8proc_ssize_t)(n - i), &cp);
        if (len <= 0) {  // invalid byte: drop it
            i++;
            continue;
        }
        int is_sup = 0, c = script_char(cp, &is_sup);
        if (c >= 0) {  // a run of superscripts becomes one ^{...}
            buf_puts(out, is_sup ? "^{" : "_{");
            while (c >= 0) {
                buf_putc(out, (char)c);
                i += (size_t)len;
                if (i >= n) break;
                int sup2 = 0;
                len = utf8proc_iterate(p + i, (utf8proc_ssize_t)(n - i), &cp);
                if (len <= 0) break;
                c = script_char(cp, &sup2);
                if (sup2 != is_sup) c = -1;
            }
            buf_putc(out, '}');
            continue;
        }
        const char *m = lookup(cp);
        if (m) {
            buf_puts(out, m);
        } else {
            // NFKC compatibility form (fullwidth digits and letters, ligatures); keep the
            // original when the decomposition is not plain ASCII (CJK text stays text).
            utf8proc_int32_t dec[8];
            int last = 0;
            utf8proc_ssize_t nd = utf8proc_decompose_char(cp, dec, 8, UTF8PROC_COMPAT, &last);
            int ascii = nd > 0 && nd <= 8;
            for (utf8proc_ssize_t k = 0; ascii && k < nd; k++)
                if (dec[k] >= 0x80) ascii = 0;
            if (ascii) {
                for (utf8proc_ssize_t k = 0; k < nd; k++) buf_putc(out, (char)dec[k]);
            } else {
                buf_append(out, s + i, (size_t)len);
            }
        }
        i += (size_t)len;
    }
}
