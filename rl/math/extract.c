// rl/math/extract.c — finds the final answer in a model response (and in a gold string).
// defines: mv_extract_response, mv_extract_gold
//
// Order (docs/verifiers.md): text after the last </think>; the last \boxed{}/\fbox{} (neighbouring
// boxes joined when only "and", "or", commas or symbols separate them: "\boxed{1} and \boxed{2}");
// the text after the last "answer is" / "Answer:" phrase; the last LaTeX span $..$, $$..$$, \(..\),
// \[..\] (neighbours joined by and/or/commas); the whole response when it is short and looks like
// math rather than prose; the last number (separators, decimal commas, percent, currency).
// Every candidate found is returned, best first; the caller keeps the first that parses.
// All scans are linear in the response length; PCRE2 patterns carry match limits.
#include <ctype.h>
#include <pthread.h>
#include <string.h>

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include "base/utf8.h"
#include "rl/math/mv_internal.h"

#define JOIN " \\text{ and } "  // the parser reads this as an unordered-list separator

static pcre2_code *re_phrase, *re_final, *re_number, *re_choice, *re_correct;
static pthread_once_t re_once = PTHREAD_ONCE_INIT;

static pcre2_code *compile(const char *pat) {
    int err;
    PCRE2_SIZE off;
    pcre2_code *re = pcre2_compile((PCRE2_SPTR)pat, PCRE2_ZERO_TERMINATED, PCRE2_UTF | PCRE2_NO_UTF_CHECK, &err, &off, NULL);
    if (re) pcre2_jit_compile(re, PCRE2_JIT_COMPLETE);
    return re;
}

static void compile_all(void) {
    // "the answer is 5", "Answer: 5", "final answer = 5"; not "the answer is correct"
    re_phrase = compile("(?i)(?:final\\s+answer|\\banswer)(?:\\s+(?:is|would\\s+be|will\\s+be|should\\s+be))?\\s*(?:is\\b|:|=|\\bis\\b)"
                        "(?!\\s*(?:correct|right|wrong|incorrect|reasonable|consistent|valid|indeed|not|also|as\\s+follows)\\b)");
    re_final = compile("(?i)final\\s+answer");
    // a self-correction that restates the answer: "Wait, actually no, it is 4", "Sorry, it should be 4"
    re_correct = compile("(?i)\\b(?:actually|no|oops|sorry|correction|mistake|mistaken|wrong|incorrect|instead|rather)\\b[^.\\n]{0,80}?"
                         "\\b(?:it\\s+is|it's|is\\s+actually|should\\s+be|must\\s+be|would\\s+be|answer\\s+is|equals|is)\\s+");
    re_number = compile(
        "(?<![\\w.\\\\^_])-?(?:\\d+\\s*/\\s*\\d+(?!\\d|[.,]\\d)|\\d{1,3}(?:(?:,|\\s|\\\\,|\\{,\\})\\d{3})+(?![\\d])(?:\\.\\d+)?|"
        "\\d+(?:[.,]\\d+)?|\\.\\d+)(?:\\s*(?:\\\\?%|percent|pct))?");
    // multiple choice: "(B)", "option B", "answer is B", "choice: B", "**B**"
    re_choice = compile("(?:\\(([A-J])\\)|(?i:option|choice|answer)\\s*(?:is\\s*)?:?\\s*\\**\\(?([A-J])\\b|\\*\\*([A-J])\\*\\*)");
}

// Last match of re in s[0..n): sets [*b, *e); 0 when none.
static int last_match(pcre2_code *re, const char *s, size_t n, size_t *b, size_t *e) {
    if (!re) return 0;
    pcre2_match_data *md = pcre2_match_data_create_from_pattern(re, NULL);
    pcre2_match_context *mc = pcre2_match_context_create(NULL);
    pcre2_set_match_limit(mc, 1000000);
    size_t off = 0;
    int found = 0;
    while (off <= n) {
        int rc = pcre2_match(re, (PCRE2_SPTR)s, n, off, PCRE2_NO_UTF_CHECK, md, mc);
        if (rc < 0) break;
        PCRE2_SIZE *ov = pcre2_get_ovector_pointer(md);
        *b = ov[0];
        *e = ov[1];
        found = 1;
        off = ov[1] > ov[0] ? ov[1] : ov[0] + 1;
        // stay on a UTF-8 boundary
        while (off < n && utf8_is_cont((unsigned char)s[off])) off++;
    }
    pcre2_match_context_free(mc);
    pcre2_match_data_free(md);
    return found;
}

static int first_match(pcre2_code *re, const char *s, size_t n, size_t *b, size_t *e) {
    if (!re) return 0;
    pcre2_match_data *md = pcre2_match_data_create_from_pattern(re, NULL);
    int rc = pcre2_match(re, (PCRE2_SPTR)s, n, 0, PCRE2_NO_UTF_CHECK, md, NULL);
    if (rc >= 0) {
        PCRE2_SIZE *ov = pcre2_get_ovector_pointer(md);
        *b = ov[0];
        *e = ov[1];
    }
    pcre2_match_data_free(md);
    return rc >= 0;
}

// ---- \boxed ----

// Content of the brace group starting at s[i] == '{'; returns the index after the closing brace,
// or 0 when unbalanced. [*cb, *ce) is the content.
static size_t brace_group(const char *s, size_t n, size_t i, size_t *cb, size_t *ce) {
    int depth = 0;
    for (size_t j = i; j < n; j++) {
        if (s[j] == '\\' && j + 1 < n) {
            j++;
            continue;
        }
        if (s[j] == '{') depth++;
        else if (s[j] == '}' && --depth == 0) {
            *cb = i + 1;
            *ce = j;
            return j + 1;
        }
    }
    return 0;
}

typedef struct {
    size_t start, end;    // the whole \boxed{...}
    size_t cb, ce;        // its content
} box_t;

// The box whose command starts at p (s[p] == '\\'); 0 when malformed.
static int box_at(const char *s, size_t n, size_t p, box_t *bx) {
    size_t k = p + 1;
    while (k < n && isalpha((unsigned char)s[k])) k++;
    while (k < n && s[k] == ' ') k++;
    bx->start = p;
    if (k < n && s[k] == '{') {
        size_t after = brace_group(s, n, k, &bx->cb, &bx->ce);
        if (!after) return 0;
        bx->end = after;
        return bx->ce > bx->cb;
    }
    // \boxed 5: one token
    size_t e = k;
    while (e < n && !isspace((unsigned char)s[e]) && s[e] != '$' && s[e] != '}') e++;
    bx->cb = k;
    bx->ce = e;
    bx->end = e;
    return e > k;
}

static int is_box_cmd(const char *s, size_t n, size_t p) {
    if (s[p] != '\\') return 0;
    if (p + 6 <= n && !memcmp(s + p, "\\boxed", 6) && (p + 6 == n || !isalpha((unsigned char)s[p + 6]))) return 1;
    if (p + 5 <= n && !memcmp(s + p, "\\fbox", 5) && (p + 5 == n || !isalpha((unsigned char)s[p + 5]))) return 1;
    return 0;
}

// The gap between two answers joins them when it is short and holds only a connector word
// (and, or) or no letters at all ("\boxed{1}\boxed{2}", "$1$, $2$", "\) and \(").
static int joinable_gap(const char *s, size_t b, size_t e, int max_words) {
    if (e < b || e - b > 48) return 0;
    int letters = 0, connector = 0;
    for (size_t i = b; i < e; i++) {
        if (s[i] == '\\') {  // a command in the gap: \text, \quad, \(, \) are fine, others not
            size_t k = i + 1;
            while (k < e && isalpha((unsigned char)s[k])) k++;
            if (k - i - 1 > 0 && !(k - i - 1 == 4 && !memcmp(s + i + 1, "text", 4)) &&
                !(k - i - 1 == 4 && !memcmp(s + i + 1, "quad", 4)) && !(k - i - 1 == 5 && !memcmp(s + i + 1, "qquad", 5)))
                return 0;
            i = k - 1;
            continue;
        }
        if (isalpha((unsigned char)s[i])) {
            size_t k = i;
            while (k < e && isalpha((unsigned char)s[k])) k++;
            if ((k - i == 3 && !strncasecmp(s + i, "and", 3)) || (k - i == 2 && !strncasecmp(s + i, "or", 2))) connector = 1;
            else letters++;
            i = k - 1;
        }
    }
    return letters == 0 || (connector && letters <= max_words);
}

static int put_boxes(const char *s, size_t n, buf_t *out) {
    // find the last box command by scanning backwards for '\'
    box_t boxes[16];
    int nb = 0;
    size_t p = n;
    int tries = 0;
    while (p > 0 && tries < 64) {
        p--;
        if (nb > 0 && p + 64 < boxes[nb - 1].start) break;  // a joinable gap is at most 48 bytes
        if (s[p] == '\\' && is_box_cmd(s, n, p)) {
            tries++;
            box_t bx;
            if (box_at(s, n, p, &bx)) {
                if (nb > 0 && (bx.end > boxes[nb - 1].start || !joinable_gap(s, bx.end, boxes[nb - 1].start, 3))) {
                    if (bx.end <= boxes[nb - 1].start) break;
                    continue;  // nested inside the later box: ignore
                }
                boxes[nb++] = bx;
                if (nb == 16) break;
            }
        }
    }
    if (nb == 0) return 0;
    for (int i = nb - 1; i >= 0; i--) {
        buf_append(out, s + boxes[i].cb, boxes[i].ce - boxes[i].cb);
        if (i > 0) buf_puts(out, JOIN);
    }
    buf_putc(out, 0);
    return 1;
}

// ---- LaTeX spans ----

typedef struct {
    size_t start, end, cb, ce;
} span_t;

// Scans math spans left to right; keeps the last 8 (ring). Returns how many were found in total.
static int scan_spans(const char *s, size_t n, span_t *ring, int cap, int keep_first) {
    int count = 0;
    size_t i = 0;
    while (i < n) {
        char c = s[i];
        size_t open_len = 0;
        const char *close = NULL;
        if (c == '\\' && i + 1 < n && (s[i + 1] == '(' || s[i + 1] == '[')) {
            open_len = 2;
            close = s[i + 1] == '(' ? "\\)" : "\\]";
        } else if (c == '\\') {
            i += 2;  // an escaped character (\$) never opens a span
            continue;
        } else if (c == '$') {
            if (i + 1 < n && s[i + 1] == '$') {
                open_len = 2;
                close = "$$";
            } else {
                open_len = 1;
                close = "$";
            }
        }
        if (!close) {
            i++;
            continue;
        }
        size_t cl = strlen(close), j = i + open_len, found = 0;
        while (j + cl <= n) {
            if (s[j] == '\\' && cl == 1) {  // \$ inside $..$
                j += 2;
                continue;
            }
            if (cl == 1 && s[j] == '\n' && j + 1 < n && s[j + 1] == '\n') break;  // inline $ never spans paragraphs
            if (!memcmp(s + j, close, cl)) {
                found = 1;
                break;
            }
            if (s[j] == '\\' && cl == 2 && close[0] == '\\' && j + 1 < n && s[j + 1] == '\\') {
                j += 2;  // a row separator \\ is not \]
                continue;
            }
            j++;
        }
        if (!found) {
            i += open_len;
            continue;
        }
        span_t sp = {i, j + cl, i + open_len, j};
        ring[count % cap] = sp;
        count++;
        if (keep_first && count == cap) break;
        i = j + cl;
    }
    return count;
}

static int nonblank(const char *s, size_t b, size_t e) {
    for (size_t i = b; i < e; i++)
        if (!isspace((unsigned char)s[i])) return 1;
    return 0;
}

// The last span, joined with the spans before it that sit behind connector gaps.
static int put_spans(const char *s, size_t n, buf_t *out, int join_all) {
    span_t ring[8];
    int count = scan_spans(s, n, ring, 8, 0);
    if (count == 0) return 0;
    int have = count < 8 ? count : 8, last = (count - 1) % 8, first = last, used = 1;
    while (!nonblank(s, ring[first].cb, ring[first].ce)) {  // skip empty spans
        if (used == have) return 0;
        first = (first + 7) % 8;
        last = first;
        used++;
    }
    while (used < have) {
        int prev = (first + 7) % 8;
        if (!join_all && !joinable_gap(s, ring[prev].end, ring[first].start, 0)) break;
        if (!nonblank(s, ring[prev].cb, ring[prev].ce)) break;
        first = prev;
        used++;
    }
    for (int k = first;; k = (k + 1) % 8) {
        buf_append(out, s + ring[k].cb, ring[k].ce - ring[k].cb);
        if (k == last) break;
        buf_puts(out, JOIN);
    }
    buf_putc(out, 0);
    return 1;
}

// The first span of s and the spans after it behind connector gaps ("is $1$ and $2$.").
static int put_first_spans(const char *s, size_t n, buf_t *out) {
    span_t ring[8];
    int count = scan_spans(s, n, ring, 8, 1);
    if (count == 0) return 0;
    int first = 0, used = 1;
    if (!nonblank(s, ring[first].cb, ring[first].ce)) return 0;
    buf_append(out, s + ring[first].cb, ring[first].ce - ring[first].cb);
    for (int k = first + 1; k < count && used < 8; k++, used++) {
        if (!joinable_gap(s, ring[k - 1].end, ring[k].start, 0) || !nonblank(s, ring[k].cb, ring[k].ce)) break;
        buf_puts(out, JOIN);
        buf_append(out, s + ring[k].cb, ring[k].ce - ring[k].cb);
    }
    buf_putc(out, 0);
    return 1;
}

static int looks_like_math(const char *s, size_t n);

// ---- answer phrases ----

// The value stated at s[e..): the spans that follow at once, else the rest of the sentence when it
// reads as math; else, when loose, the first number of the sentence ("6 apples"). 0 when none.
static int put_value(const char *s, size_t n, size_t e, buf_t *out, int loose) {
    // the segment: to the end of the line or the end of the sentence
    size_t j = e;
    while (j < n && s[j] != '\n') {
        if (s[j] == '.' && (j + 1 == n || isspace((unsigned char)s[j + 1])) && !(j > e && isdigit((unsigned char)s[j - 1]) && j + 1 < n && isdigit((unsigned char)s[j + 1])))
            break;
        if (s[j] == '$' || (s[j] == '\\' && j + 1 < n && (s[j + 1] == '(' || s[j + 1] == '['))) {
            // a span right after the phrase: take the spans of the segment
            if (!loose && nonblank(s, e, j)) return 0;
            size_t k = j;
            while (k < n && !(s[k] == '\n' && k + 1 < n && s[k + 1] == '\n')) k++;
            return put_first_spans(s + j, k - j, out);
        }
        j++;
    }
    while (e < j && (isspace((unsigned char)s[e]) || s[e] == '*' || s[e] == ':')) e++;
    while (j > e && (isspace((unsigned char)s[j - 1]) || s[j - 1] == '*' || s[j - 1] == '.' || s[j - 1] == ',')) j--;
    if (j <= e) return 0;
    if (!looks_like_math(s + e, j - e)) {
        // "The answer is 6 apples": the first number of the phrase; a correction must start with it
        size_t b2, e2;
        if (!first_match(re_number, s + e, j - e, &b2, &e2) || (!loose && b2 > 0)) return 0;
        j = e + e2;
        e = e + b2;
    }
    buf_append(out, s + e, j - e);
    buf_putc(out, 0);
    return 1;
}

// The last stated answer: the value after the last "answer is" phrase, or after a self-correction
// that follows it ("The answer is 2. Wait, actually no, it is 4." -> 4): the final word wins.
static int put_phrase(const char *s, size_t n, buf_t *out) {
    size_t b, e;
    if (!last_match(re_phrase, s, n, &b, &e)) return 0;
    // "Final Answer: The volume of $V$ is 120": the value follows the last " is " of the sentence
    {
        int in_math = 0;
        for (size_t k = e; k < n && s[k] != '\n'; k++) {
            if (s[k] == '$') in_math = !in_math;
            if (!in_math && s[k] == '.' && (k + 1 == n || isspace((unsigned char)s[k + 1]))) break;
            if (!in_math && k + 4 <= n && !memcmp(s + k, " is ", 4)) e = k + 4;
        }
    }
    size_t cb, ce, mark = out->n;
    if (last_match(re_correct, s + e, n - e, &cb, &ce)) {
        if (put_value(s, n, e + ce, out, 0)) return 1;
        out->n = mark;
    }
    return put_value(s, n, e, out, 1);
}

// Short text that reads like a math answer rather than a sentence: at most one word of two or
// more letters outside LaTeX commands and connectors.
static int looks_like_math(const char *s, size_t n) {
    if (n == 0 || n > 300) return 0;
    int words = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '\\') {
            while (i + 1 < n && isalpha((unsigned char)s[i + 1])) i++;
            continue;
        }
        if (isalpha((unsigned char)s[i])) {
            size_t k = i;
            while (k < n && isalpha((unsigned char)s[k])) k++;
            if (k - i >= 2 && !((k - i == 3 && !strncasecmp(s + i, "and", 3)) || (k - i == 2 && !strncasecmp(s + i, "or", 2))))
                words++;
            i = k - 1;
        }
    }
    if (words == 0) return nonblank(s, 0, n);
    // one word and nothing else but spacing and \text{}: a text answer ("odd", "\text{odd}")
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '\\') {
            size_t k = i + 1;
            while (k < n && isalpha((unsigned char)s[k])) k++;
            if (!(k - i - 1 >= 4 && !strncmp(s + i + 1, "text", 4))) return 0;
            i = k - 1;
            continue;
        }
        if (!isalpha((unsigned char)s[i]) && !isspace((unsigned char)s[i]) && !strchr("{}()$.", s[i])) return 0;
    }
    return words == 1;
}

static int put_number(const char *s, size_t n, buf_t *out) {
    // numbers are local: search a window before the last digit instead of the whole response
    size_t last = n;
    while (last > 0 && !isdigit((unsigned char)s[last - 1])) last--;
    if (last == 0) return 0;
    size_t w = last > 512 ? last - 512 : 0;
    while (w > 0 && utf8_is_cont((unsigned char)s[w])) w++;
    size_t b, e;
    if (!last_match(re_number, s + w, n - w, &b, &e)) return 0;
    b += w;
    e += w;
    buf_append(out, s + b, e - b);
    buf_putc(out, 0);
    return 1;
}

// The part of the response to read: after the last </think> (when anything follows it), and at
// most the last MV_MAX_TAIL bytes, starting at a paragraph break (inline math never spans one), so
// that every later scan is bounded whatever the response length.
size_t mv_extract_region(const char *s, size_t n) {
    size_t b = 0;
    const char *tag = "</think>";
    for (size_t p = n; p >= 8; p--) {
        if (s[p - 8] == '<' && !memcmp(s + p - 8, tag, 8)) {
            if (nonblank(s, p, n)) b = p;
            break;
        }
    }
    if (n - b > MV_MAX_TAIL) {
        b = n - MV_MAX_TAIL;
        for (size_t q = b; q + 1 < n && q < b + 4096; q++)
            if (s[q] == '\n' && s[q + 1] == '\n') {
                b = q + 2;
                break;
            }
        while (b < n && utf8_is_cont((unsigned char)s[b])) b++;
    }
    return b;
}

// End of the last box (0 when none).
static size_t last_box_end(const char *s, size_t n) {
    for (size_t p = n; p > 0;) {
        p--;
        if (s[p] == '\\' && is_box_cmd(s, n, p)) {
            box_t bx;
            if (box_at(s, n, p, &bx)) return bx.end;
        }
    }
    return 0;
}

static size_t last_span_end(const char *s, size_t n) {
    span_t ring[8];
    int count = scan_spans(s, n, ring, 8, 0);
    return count ? ring[(count - 1) % 8].end : 0;
}

static size_t last_number_end(const char *s, size_t n) {
    size_t last = n;
    while (last > 0 && !isdigit((unsigned char)s[last - 1])) last--;
    return last;
}

// The order of the extraction levels for one response. Boxes come first unless a "final answer"
// phrase follows the last box ("... \\boxed{255} ... The final answer is $10,455$."); between the last span
// and the last number, the one further right comes first (Math-Verify's rule for equal priority).
void mv_extract_order(const char *s, size_t sn, int order[MV_EXTRACT_LEVELS]) {
    pthread_once(&re_once, compile_all);
    size_t box = last_box_end(s, sn), pb = 0, pe = 0;
    int phrase_after = box > 0 && last_match(re_final, s, sn, &pb, &pe) && pb >= box;
    int number_first = last_number_end(s, sn) > last_span_end(s, sn);
    int k = 0;
    order[k++] = phrase_after ? MV_X_PHRASE : MV_X_BOX;
    order[k++] = phrase_after ? MV_X_BOX : MV_X_PHRASE;
    order[k++] = MV_X_WHOLE;
    order[k++] = number_first ? MV_X_NUMBER : MV_X_SPAN;
    order[k++] = number_first ? MV_X_SPAN : MV_X_NUMBER;
}

int mv_extract_response(const char *s, size_t sn, int kind, buf_t *out) {
    pthread_once(&re_once, compile_all);
    switch (kind) {
    case MV_X_BOX: return put_boxes(s, sn, out);
    case MV_X_PHRASE: return put_phrase(s, sn, out);
    case MV_X_SPAN: return put_spans(s, sn, out, 0);
    case MV_X_WHOLE:
        if (!looks_like_math(s, sn)) return 0;
        buf_append(out, s, sn);
        buf_putc(out, 0);
        return 1;
    case MV_X_NUMBER: return put_number(s, sn, out);
    default: return -1;
    }
}

char mv_extract_choice(const char *resp, size_t n) {
    pthread_once(&re_once, compile_all);
    size_t b = mv_extract_region(resp, n);
    if (!re_choice) return 0;
    pcre2_match_data *md = pcre2_match_data_create_from_pattern(re_choice, NULL);
    size_t off = b;
    char letter = 0;
    while (off < n) {
        int rc = pcre2_match(re_choice, (PCRE2_SPTR)resp, n, off, PCRE2_NO_UTF_CHECK, md, NULL);
        if (rc < 0) break;
        PCRE2_SIZE *ov = pcre2_get_ovector_pointer(md);
        for (int g = 1; g < rc; g++)
            if (ov[2 * g] != PCRE2_UNSET) letter = resp[ov[2 * g]];
        off = ov[1] > ov[0] ? ov[1] : ov[0] + 1;
    }
    pcre2_match_data_free(md);
    return letter;
}

int mv_extract_gold(const char *gold, size_t n, buf_t *out) {
    pthread_once(&re_once, compile_all);
    int count = put_boxes(gold, n, out);
    if (!count && n <= 200) count += put_spans(gold, n, out, 1);  // "$1$ and $2$": every span
    if (!count && n > 200) {  // a whole worked solution as the gold: read it like a response
        int order[MV_EXTRACT_LEVELS];
        size_t b = mv_extract_region(gold, n);
        mv_extract_order(gold + b, n - b, order);
        for (int level = 0; level < MV_EXTRACT_LEVELS && !count; level++)
            count += mv_extract_response(gold + b, n - b, order[level], out) == 1;
    }
    buf_append(out, gold, n);  // the whole gold is always a candidate
    buf_putc(out, 0);
    return count + 1;
}
