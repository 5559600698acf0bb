// rl/math/normalize.c — string-level cleanup of one extracted answer before parsing.
// defines: mv_normalize, mv_is_known_command, mv_unit_canon
//
// - Unicode forms to LaTeX (unicode.c); "\\frac" written with a doubled backslash to "\frac".
// - \dfrac \tfrac \cfrac -> \frac, \dbinom \tbinom -> \binom; \left \right \big.. \displaystyle dropped.
// - thousands separators: 1,000  1{,}000  1,\!000  1\,000  1~000  1 000 -> 1000.
// - degrees (^\circ, ^{\circ}, \degree), dollars (\$, $) and trailing units (\text{ cm}, \mbox{units},
//   "miles", "cm^2") dropped; percent words (%, percent, pct) -> \%.
// - spacing commands (\, \; \: \! \quad ~) -> ' '; trailing punctuation dropped.
// - the unit the answer ends with, canonical ("5 meters" and "5\text{ m}": m; "3 sq ft": ft^2), and
//   degree marks (deg) are reported beside the text for the comparison; in an answer with a
//   trigonometric function a degree mark becomes \degree (pi/180 inside the function's argument).
#include <ctype.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include "rl/math/mv_internal.h"

// Commands the parser knows; "\\name" with one of these names is read as "\name".
static const char *const kKnown[] = {
    "frac", "dfrac", "tfrac", "cfrac", "sqrt", "boxed", "fbox", "text", "textbf", "textit", "textrm", "textnormal",
    "mathrm", "mathbf", "mathit", "mathbb", "mathcal", "mbox", "operatorname", "left", "right", "cdot", "times", "div",
    "pm", "mp", "pi", "infty", "inf", "le", "leq", "leqslant", "ge", "geq", "geqslant", "ne", "neq", "approx", "in", "notin",
    "cup", "cap", "setminus", "sin", "cos", "tan", "sec", "csc", "cot", "arcsin", "arccos", "arctan", "sinh",
    "cosh", "tanh", "log", "ln", "lg", "exp", "binom", "dbinom", "tbinom", "choose", "alpha", "beta", "gamma",
    "delta", "epsilon", "varepsilon", "zeta", "eta", "theta", "vartheta", "iota", "kappa", "lambda", "mu", "nu",
    "xi", "rho", "sigma", "tau", "upsilon", "phi", "varphi", "chi", "psi", "omega", "Gamma", "Delta", "Theta",
    "Lambda", "Xi", "Pi", "Sigma", "Phi", "Psi", "Omega", "begin", "end", "circ", "degree", "quad", "qquad", "dots",
    "ldots", "cdots", "sum", "prod", "lim", "int", "emptyset", "varnothing", "lt", "gt", "neg", "not", "overline",
    "vec", "hat", "bar", "displaystyle", "to", "rightarrow", "Rightarrow", "implies", "iff", "mid", "lbrace", "rbrace",
    "langle", "rangle", "lvert", "rvert", "vert", "lfloor", "rfloor", "lceil", "rceil", "angle", "triangle", "perp",
    "parallel", "equiv", "sim", "cong", "wedge", "vee", "land", "lor", "max", "min", "gcd", "det", "mod", "pmod",
    "bmod", "ge", "dagger", "prime", "tilde", "bmatrix", "pmatrix", "hline", "big", "Big", "bigl", "bigr", "Bigl",
    "Bigr", "textstyle", "limits", "nolimits", "imath", "infin", "cr",
};

int mv_is_known_command(const char *name, size_t n) {
    for (size_t i = 0; i < sizeof kKnown / sizeof kKnown[0]; i++)
        if (strlen(kKnown[i]) == n && !memcmp(kKnown[i], name, n)) return 1;
    return 0;
}

static int name_is(const char *s, size_t n, const char *lit) { return strlen(lit) == n && !memcmp(s, lit, n); }

// Does the answer apply a trigonometric function (\sin 30^\circ)? Then its degree marks scale the
// arguments (the parser reads \degree as pi/180 inside a trig argument); elsewhere they are a unit.
static int has_trig(const char *s, size_t n) {
    static const char *const fn[] = {"sin", "cos", "tan", "sec", "csc", "cot"};
    for (size_t i = 0; i + 3 <= n; i++) {
        if (i > 0 && isalpha((unsigned char)s[i - 1])) continue;  // \arcsin is not a trig function of an angle
        for (size_t f = 0; f < 6; f++)
            if (!memcmp(s + i, fn[f], 3) && (i + 3 == n || !isalpha((unsigned char)s[i + 3]))) return 1;
    }
    return 0;
}

// A degree mark: kept as "\degree" in a trigonometric answer, else dropped and counted in *deg.
static void put_degree(buf_t *out, int trig, int *deg) {
    if (trig) buf_puts(out, "\\degree ");
    else (*deg)++;
}

// ---- pass 1: commands, spacing, degrees, dollars ----
static void pass_commands(const char *s, size_t n, buf_t *out, int *deg) {
    size_t i = 0;
    int trig = has_trig(s, n);
    while (i < n) {
        char c = s[i];
        if (c == '$') {
            i++;
            continue;
        }
        if (c == '~') {
            buf_putc(out, ' ');
            i++;
            continue;
        }
        if (c == '^') {  // ^\circ, ^{\circ}, ^{\circ}C: degrees
            size_t k = i + 1;
            while (k < n && s[k] == ' ') k++;
            int brace = k < n && s[k] == '{';
            if (brace) k++;
            while (k < n && s[k] == ' ') k++;
            if (k + 5 <= n && !memcmp(s + k, "\\circ", 5) && (k + 5 == n || !isalpha((unsigned char)s[k + 5]))) {
                k += 5;
                while (k < n && s[k] == ' ') k++;
                if (brace && k < n && s[k] == '}') k++;
                put_degree(out, trig, deg);
                i = k;
                continue;
            }
        }
        if (c != '\\') {
            buf_putc(out, c);
            i++;
            continue;
        }
        // a command
        size_t k = i + 1;
        if (k < n && s[k] == '\\') {  // "\\frac" (escaped once too often) vs the row separator "\\"
            size_t e = k + 1;
            while (e < n && isalpha((unsigned char)s[e])) e++;
            if (e > k + 1 && mv_is_known_command(s + k + 1, e - k - 1) && !name_is(s + k + 1, e - k - 1, "end") &&
                !name_is(s + k + 1, e - k - 1, "hline")) {
                i = k;  // drop one backslash, read the command next round
                continue;
            }
            buf_puts(out, "\\\\");
            i = k + 1;
            continue;
        }
        size_t e = k;
        while (e < n && isalpha((unsigned char)s[e])) e++;
        if (e == k) {  // one-character command
            if (k >= n) {
                i = k;
                continue;
            }
            char d = s[k];
            if (d == '$') {
                i = k + 1;
                continue;
            }
            if (d == '!' && out->n >= 2 && out->s[out->n - 1] == ',' && isdigit((unsigned char)out->s[out->n - 2])) {
                // 11,\! 111: a thousands comma with a negative space
                size_t q = k + 1;
                while (q < n && s[q] == ' ') q++;
                if (q + 3 <= n && isdigit((unsigned char)s[q]) && isdigit((unsigned char)s[q + 1]) && isdigit((unsigned char)s[q + 2]) &&
                    (q + 3 == n || !isdigit((unsigned char)s[q + 3]))) {
                    out->n--;
                    out->s[out->n] = 0;
                    i = q;
                    continue;
                }
            }
            if (d == ',' || d == '!' || d == ';' || d == ':' || d == ' ' || d == '>') {
                // between digit groups (1\,000) a thin space is a separator: keep the digits together
                int thousands = d != '!' && out->n > 0 && isdigit((unsigned char)out->s[out->n - 1]) && k + 4 <= n &&
                                isdigit((unsigned char)s[k + 1]) && isdigit((unsigned char)s[k + 2]) &&
                                isdigit((unsigned char)s[k + 3]) && (k + 4 == n || !isdigit((unsigned char)s[k + 4]));
                if (!thousands && d != '!') buf_putc(out, ' ');
                i = k + 1;
                continue;
            }
            buf_putc(out, '\\');
            buf_putc(out, d);
            i = k + 1;
            continue;
        }
        const char *nm = s + k;
        size_t len = e - k;
        if (name_is(nm, len, "left") || name_is(nm, len, "right") || name_is(nm, len, "bigl") || name_is(nm, len, "bigr") ||
            name_is(nm, len, "Bigl") || name_is(nm, len, "Bigr") || name_is(nm, len, "big") || name_is(nm, len, "Big") ||
            name_is(nm, len, "biggl") || name_is(nm, len, "biggr") || name_is(nm, len, "displaystyle") ||
            name_is(nm, len, "textstyle") || name_is(nm, len, "limits") || name_is(nm, len, "nolimits")) {
            if ((name_is(nm, len, "left") || name_is(nm, len, "right")) && e < n && s[e] == '.') e++;  // \left. is nothing
            buf_putc(out, ' ');
            i = e;
            continue;
        }
        if (name_is(nm, len, "quad") || name_is(nm, len, "qquad") || name_is(nm, len, "hline")) {
            buf_putc(out, ' ');
            i = e;
            continue;
        }
        if (name_is(nm, len, "circ") || name_is(nm, len, "degree")) {
            put_degree(out, trig, deg);
            i = e;
            continue;
        }
        if (name_is(nm, len, "dfrac") || name_is(nm, len, "tfrac") || name_is(nm, len, "cfrac")) {
            buf_puts(out, "\\frac");
            i = e;
            continue;
        }
        if (name_is(nm, len, "dbinom") || name_is(nm, len, "tbinom")) {
            buf_puts(out, "\\binom");
            i = e;
            continue;
        }
        buf_append(out, s + i, e - i);
        i = e;
    }
}

// ---- pass 2: regular-expression rewrites ----
typedef struct {
    const char *pat, *rep;
} rewrite_t;

static const rewrite_t kRewrites[] = {
    // thousands: 1{,}000 and 1,\!000 anywhere between digit groups
    {"(?<=\\d)\\s*(?:\\{\\s*,\\s*\\}|,\\\\!)\\s*(?=\\d{3}(?!\\d))", ""},
    // percent spellings
    {"(?<=[\\d}.)])\\s*(?:\\\\%|%|(?i:percentage|percent|pct)\\b)", "\\%"},
    // units after a number: \text{ cm}^2, \mbox{units}, \mathrm{kg}
    {"(?<=[\\d}.)%])\\s*\\\\(?:text|textnormal|textrm|textbf|mbox|mathrm|mathbf|textit)\\s*\\{\\s*(?!(?:and|or)\\s*\\})[A-Za-z][A-Za-z .\\/]*\\}"
     "(?:\\s*\\^\\s*\\{?[23]\\}?)?",
     ""},
    // plain unit words after a number (no single letters: 5m may be 5*m)
    {"(?<=[\\d}.)])\\s*(?i:units?|cm|mm|km|meters?|metres?|miles?|mi|feet|foot|ft|inch(?:es)?|in\\.|yards?|kg|grams?|"
     "lbs?|pounds?|ounces?|oz|seconds?|secs?|minutes?|mins?|hours?|hrs?|days?|weeks?|months?|years?|dollars?|cents?|"
     "yuan|euros?|degrees?|liters?|litres?|ml|mph|sq\\.?\\s*(?:units|ft|m|cm)|square\\s+(?:units|feet|meters|cm|inches)|"
     "cubic\\s+(?:units|feet|meters|cm|inches))(?:\\^\\{?[23]\\}?|[23](?!\\d))?(?![A-Za-z])",
     ""},
    // trailing words after a number: "15 apples", "3 ways" (not function names or connectors)
    {"(?<=[\\d}])\\s+(?!(?:sin|cos|tan|sec|csc|cot|log|ln|exp|and|or|pi|sqrt)\\b)[A-Za-z]{3,}(?:\\s+[A-Za-z]+)*\\s*$", ""},
};
#define N_REWRITES (sizeof kRewrites / sizeof kRewrites[0])

static pcre2_code *re_rw[N_REWRITES];
static pthread_once_t rw_once = PTHREAD_ONCE_INIT;

static void compile_rewrites(void) {
    for (size_t i = 0; i < N_REWRITES; i++) {
        int err;
        PCRE2_SIZE off;
        re_rw[i] = pcre2_compile((PCRE2_SPTR)kRewrites[i].pat, PCRE2_ZERO_TERMINATED, 0, &err, &off, NULL);
        if (re_rw[i]) pcre2_jit_compile(re_rw[i], PCRE2_JIT_COMPLETE);
    }
}

static void apply_rewrite(size_t idx, buf_t *b, buf_t *tmp, pcre2_match_data *md) {
    if (!re_rw[idx]) return;
    // cheap pre-check: most rewrites need a digit in the string
    size_t need = b->n * 2 + 64;
    if (tmp->cap < need) {
        buf_free(tmp);
        tmp->cap = need;
        tmp->s = malloc(need);
        tmp->n = 0;
        if (!tmp->s) abort();
    }
    PCRE2_SIZE outlen = tmp->cap;
    int rc = pcre2_substitute(re_rw[idx], (PCRE2_SPTR)b->s, b->n, 0, PCRE2_SUBSTITUTE_GLOBAL, md, NULL,
                              (PCRE2_SPTR)kRewrites[idx].rep, PCRE2_ZERO_TERMINATED, (PCRE2_UCHAR *)tmp->s, &outlen);
    if (rc <= 0) return;  // no match (or error): keep b
    b->n = 0;
    buf_append(b, tmp->s, outlen);
}

// 1,000,000 and 1 000 000: a run of 1-3 digits and then only 3-digit groups behind one kind of
// separator, not part of a longer number; the separators are dropped.
static void fix_thousands(buf_t *b) {
    char *s = b->s;
    size_t n = b->n, w = 0, i = 0;
    while (i < n) {
        if (isdigit((unsigned char)s[i]) && (i == 0 || !(isdigit((unsigned char)s[i - 1]) || s[i - 1] == '.' || s[i - 1] == ','))) {
            size_t j = i;
            while (j < n && isdigit((unsigned char)s[j])) j++;
            if (j - i <= 3 && s[i] != '0' && j < n && (s[j] == ',' || s[j] == ' ')) {
                char sep = s[j];
                size_t k = j, groups = 0;
                while (k + 3 < n && s[k] == sep && isdigit((unsigned char)s[k + 1]) && isdigit((unsigned char)s[k + 2]) &&
                       isdigit((unsigned char)s[k + 3]) && (k + 4 == n || !isdigit((unsigned char)s[k + 4]))) {
                    k += 4;
                    groups++;
                }
                int clean_end = k == n || !(s[k] == sep && k + 1 < n && isdigit((unsigned char)s[k + 1]));
                // (12,102) and [1,500]: a pair inside brackets, not a thousands separator
                size_t pb = i, pa = k;
                while (pb > 0 && s[pb - 1] == ' ') pb--;
                while (pa < n && s[pa] == ' ') pa++;
                int bracketed = sep == ',' && ((pb > 0 && strchr("([,;", s[pb - 1])) || (pa < n && strchr(")],;", s[pa])));
                if (bracketed && !(pb > 0 && s[pb - 1] == '{')) clean_end = 0;
                if (groups > 0 && clean_end && !(sep == ' ' && k < n && s[k] == '.')) {
                    for (size_t t = i; t < k; t++)
                        if (s[t] != sep) s[w++] = s[t];
                    i = k;
                    continue;
                }
            }
            while (i < j) s[w++] = s[i++];
            continue;
        }
        s[w++] = s[i++];
    }
    b->n = w;
    s[w] = 0;
}

// ---- units: the spellings of one unit are one unit ----
typedef struct {
    const char *canon, *names;  // names: '|'-separated, lowercase
} unit_t;

static const unit_t kUnits[] = {
    {"m", "m|meter|meters|metre|metres"},          {"cm", "cm|centimeter|centimeters|centimetre|centimetres"},
    {"mm", "mm|millimeter|millimeters|millimetre|millimetres"}, {"km", "km|kilometer|kilometers|kilometre|kilometres"},
    {"ft", "ft|foot|feet"},                        {"in", "in|inch|inches"},
    {"yd", "yd|yd.|yard|yards"},                   {"mi", "mi|mile|miles"},
    {"kg", "kg|kilogram|kilograms|kilo|kilos"},    {"g", "g|gram|grams"},
    {"lb", "lb|lbs|pound|pounds"},                 {"oz", "oz|ounce|ounces"},
    {"s", "s|sec|secs|second|seconds"},            {"min", "min|mins|minute|minutes"},
    {"h", "h|hr|hrs|hour|hours"},                  {"day", "day|days"},
    {"week", "week|weeks"},                        {"yr", "yr|yrs|year|years"},
    {"l", "l|liter|liters|litre|litres"},          {"ml", "ml|milliliter|milliliters|millilitre|millilitres"},
    {"dollar", "dollar|dollars"},                  {"cent", "cent|cents"},
    {"deg", "deg|degree|degrees"},                 {"rad", "rad|rads|radian|radians"},
    {"mph", "mph|miles per hour"},
};

static const char *unit_canon(const char *w, size_t n) {
    for (size_t u = 0; u < sizeof kUnits / sizeof kUnits[0]; u++)
        for (const char *nm = kUnits[u].names; *nm;) {
            const char *bar = strchr(nm, '|');
            size_t len = bar ? (size_t)(bar - nm) : strlen(nm);
            if (len == n && !strncasecmp(nm, w, n)) return kUnits[u].canon;
            nm += len + (bar != NULL);
        }
    return NULL;
}

int mv_unit_canon(const char *name, char unit[MV_UNIT_CAP]) {
    const char *c = unit_canon(name, strlen(name));
    if (!c) return 0;
    snprintf(unit, MV_UNIT_CAP, "%s", c);
    return 1;
}

// The unit written at the end of an answer after a number ("5 meters", "5\text{ m}", "12 \text{cm}^2",
// "3 square feet"): its canonical name into unit ("m", "cm^2", "ft^2"), and the offset where its
// text starts; 0 when the answer does not end in a known unit.
static int trailing_unit(const char *s, size_t n, char unit[MV_UNIT_CAP], size_t *start) {
    size_t e = n;
    int power = 1;
    while (e > 0 && s[e - 1] == ' ') e--;
    // ^2, ^{2}, ^3
    if (e >= 2 && (s[e - 1] == '2' || s[e - 1] == '3' || (e >= 4 && s[e - 1] == '}' && (s[e - 2] == '2' || s[e - 2] == '3') && s[e - 3] == '{'))) {
        size_t k = s[e - 1] == '}' ? e - 3 : e - 1;
        while (k > 0 && s[k - 1] == ' ') k--;
        if (k > 0 && s[k - 1] == '^') {
            power = s[s[e - 1] == '}' ? e - 2 : e - 1] - '0';
            e = k - 1;
            while (e > 0 && s[e - 1] == ' ') e--;
        }
    }
    size_t wb, we, b;
    if (e > 0 && s[e - 1] == '}') {  // \text{ m}, \mathrm{~cm}
        size_t k = e - 1;
        while (k > 0 && s[k - 1] != '{' && s[k - 1] != '}') k--;
        if (k == 0 || s[k - 1] != '{') return 0;
        wb = k;
        we = e - 1;
        size_t c = k - 1;
        while (c > 0 && isalpha((unsigned char)s[c - 1])) c--;
        if (c == 0 || s[c - 1] != '\\') return 0;
        static const char *const cmds[] = {"text", "textnormal", "textrm", "textbf", "mbox", "mathrm", "mathbf", "textit"};
        int ok = 0;
        for (size_t i = 0; i < sizeof cmds / sizeof cmds[0]; i++) ok |= strlen(cmds[i]) == k - 1 - c && !memcmp(s + c, cmds[i], k - 1 - c);
        if (!ok) return 0;
        b = c - 1;
    } else {  // plain words: "5 meters", "3 square feet"
        we = e;
        wb = e;
        while (wb > 0 && (isalpha((unsigned char)s[wb - 1]) || s[wb - 1] == ' ' || s[wb - 1] == '.')) wb--;
        b = wb;
    }
    while (wb < we && (s[wb] == ' ' || s[wb] == '~')) wb++;
    while (we > wb && (s[we - 1] == ' ' || s[we - 1] == '.')) we--;
    // the unit follows a number
    size_t q = b;
    while (q > 0 && s[q - 1] == ' ') q--;
    if (q == 0 || !(isdigit((unsigned char)s[q - 1]) || s[q - 1] == '}' || s[q - 1] == ')')) return 0;
    // square feet, sq ft, sq. ft, cubic meters
    static const struct {
        const char *w;
        int p;
    } pre[] = {{"square ", 2}, {"sq. ", 2}, {"sq ", 2}, {"cubic ", 3}};
    for (size_t i = 0; i < sizeof pre / sizeof pre[0]; i++) {
        size_t l = strlen(pre[i].w);
        if (we - wb > l && !strncasecmp(s + wb, pre[i].w, l)) {
            wb += l;
            power = pre[i].p;
            break;
        }
    }
    const char *c = unit_canon(s + wb, we - wb);
    if (!c) return 0;
    if (power > 1) snprintf(unit, MV_UNIT_CAP, "%s^%d", c, power);
    else snprintf(unit, MV_UNIT_CAP, "%s", c);
    *start = b;
    return 1;
}

void mv_normalize(const char *s, size_t n, buf_t *out, char unit[MV_UNIT_CAP]) {
    pthread_once(&rw_once, compile_rewrites);
    buf_t uni, tmp;
    buf_init(&uni);
    mv_unicode_to_latex(s, n, &uni);
    out->n = 0;
    out->s[0] = 0;
    int deg = 0;
    pass_commands(uni.s, uni.n, out, &deg);
    buf_free(&uni);
    if (unit) unit[0] = 0;

    int has_digit = 0;
    for (size_t i = 0; i < out->n && !has_digit; i++) has_digit = isdigit((unsigned char)out->s[i]);
    if (has_digit || strchr(out->s, '%')) {
        fix_thousands(out);
        // a trailing unit counts when the rewrites below drop it (a bare "5 m" stays a product)
        char u[MV_UNIT_CAP];
        size_t ustart = 0, tail_len = 0;
        char tail[64];
        if (unit && trailing_unit(out->s, out->n, u, &ustart) && out->n - ustart < sizeof tail) {
            tail_len = out->n - ustart;
            memcpy(tail, out->s + ustart, tail_len);
        }
        buf_init(&tmp);
        pcre2_match_data *md = pcre2_match_data_create(8, NULL);
        for (size_t i = 0; i < N_REWRITES; i++) apply_rewrite(i, out, &tmp, md);
        pcre2_match_data_free(md);
        buf_free(&tmp);
        if (tail_len && (out->n < tail_len || memcmp(out->s + out->n - tail_len, tail, tail_len)))
            snprintf(unit, MV_UNIT_CAP, "%s", u);
    }
    if (unit && !unit[0] && deg) snprintf(unit, MV_UNIT_CAP, "deg");
    // trailing punctuation and spacing; leading spaces
    while (out->n > 0) {
        char c = out->s[out->n - 1];
        if (c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '.' || c == ',' || c == ';')
            out->n--;
        else if (out->n >= 2 && c == '\\' && out->s[out->n - 2] == '\\')
            out->n -= 2;
        else
            break;
    }
    out->s[out->n] = 0;
    size_t lead = 0;
    while (lead < out->n && isspace((unsigned char)out->s[lead])) lead++;
    if (lead) {
        memmove(out->s, out->s + lead, out->n - lead + 1);
        out->n -= lead;
    }
}
