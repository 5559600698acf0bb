// rl/math/verify.c — the math checker's entry points: extract, normalise, parse, compare, report.
// defines: math_opts_default, math_verify, math_verify_opts, math_extract_answer
#include <ctype.h>
#include <stdio.h>
#include <string.h>

#include "rl/math/math_verify.h"
#include "rl/math/mv_internal.h"

const math_opts_t math_opts_default = {1, 1, 0};

// Normalises and parses one candidate into *norm; NULL when it does not parse. *limit is set when
// the candidate hit a size limit (then no later candidate is tried: the answer is too large).
static mv_node *parse_candidate(mv_arena *a, const char *c, size_t n, buf_t *norm, int *limit, char unit[MV_UNIT_CAP]) {
    if (n > MV_MAX_ANSWER) {
        *limit = 1;
        return NULL;
    }
    mv_normalize(c, n, norm, unit);
    if (norm->n == 0) return NULL;
    mv_node *x = mv_parse(a, norm->s);
    if (!x && a->overflow) *limit = 1;
    a->overflow = 0;
    return x;
}

static void keep_first(buf_t *first, const buf_t *norm) {
    if (first->n == 0) buf_append(first, norm->s, norm->n);
}

// Gold: every candidate of mv_extract_gold in order.
static mv_node *parse_gold(mv_arena *a, const char *gold, buf_t *norm, buf_t *first, char unit[MV_UNIT_CAP]) {
    buf_t cands;
    buf_init(&cands);
    int count = mv_extract_gold(gold, strlen(gold), &cands), limit = 0;
    mv_node *x = NULL;
    const char *c = cands.s;
    for (int i = 0; i < count && !x && !limit; i++) {
        size_t n = strlen(c);
        x = parse_candidate(a, c, n, norm, &limit, unit);
        keep_first(first, norm);
        c += n + 1;
    }
    buf_free(&cands);
    if (!x) norm->n = 0, norm->s[0] = 0;
    return x;
}

// Response: extraction levels on demand, the first candidate that parses wins.
static mv_node *parse_response(mv_arena *a, const char *resp, buf_t *norm, buf_t *first, int *found, int *limit,
                               char unit[MV_UNIT_CAP]) {
    buf_t cand;
    buf_init(&cand);
    size_t len = strlen(resp);
    mv_node *x = NULL;
    *found = 0;
    int order[MV_EXTRACT_LEVELS];
    size_t b = mv_extract_region(resp, len);
    mv_extract_order(resp + b, len - b, order);
    for (int level = 0; level < MV_EXTRACT_LEVELS && !x && !*limit; level++) {
        cand.n = 0;
        if (mv_extract_response(resp + b, len - b, order[level], &cand) != 1) continue;
        (*found)++;
        x = parse_candidate(a, cand.s, strlen(cand.s), norm, limit, unit);
        keep_first(first, norm);
    }
    buf_free(&cand);
    if (!x) norm->n = 0, norm->s[0] = 0;
    return x;
}

// A multiple-choice letter: "B", "(B)", "\text{(B)}", "\textbf{B}", "B) 42", "**B**"; 0 when none.
static char choice_letter(const char *s, int allow_tail) {
    for (;;) {
        while (*s == ' ' || *s == '(' || *s == '[' || *s == '{' || *s == '*') s++;
        if (*s == '\\') {
            const char *e = s + 1;
            while (isalpha((unsigned char)*e)) e++;
            s = e;
            continue;
        }
        break;
    }
    if (!isalpha((unsigned char)s[0]) || isalpha((unsigned char)s[1])) return 0;
    if (!allow_tail && !isupper((unsigned char)s[0])) return 0;  // a gold "a" is a variable, not a choice
    if (allow_tail && !isupper((unsigned char)s[0]) && s[1]) return 0;
    char c = (char)toupper((unsigned char)s[0]);
    if (c < 'A' || c > 'J') return 0;
    const char *t = s + 1;
    while (*t == ')' || *t == ']' || *t == '}' || *t == '*' || *t == ' ' || *t == '.' || *t == ':') t++;
    if (*t && !allow_tail) return 0;
    if (*t && !(t > s + 1 && (t[-1] == ')' || t[-1] == ':' || t[-1] == '.' || t[-1] == ' '))) return 0;
    return c;
}

// Both answers name a unit, and not the same one ("5 meters" vs "5 cm"): the same text is not enough.
static int units_conflict(const char *gu, const char *pu) { return gu[0] && pu[0] && strcmp(gu, pu); }

static void set_text(char *dst, size_t cap, const char *src) {
    size_t n = strlen(src);
    if (n >= cap) n = cap - 1;
    memcpy(dst, src, n);
    dst[n] = 0;
}

int math_verify_opts(const char *gold, const char *response, const math_opts_t *opts, verdict_t *out) {
    if (!out) return -1;
    memset(out, 0, sizeof *out);
    if (!gold || !response) {
        out->failed = 1;
        set_text(out->reason, sizeof out->reason, "math verifier needs both a gold answer and a response");
        return -1;
    }
    if (!opts) opts = &math_opts_default;
    mv_work_reset();
    // A moderate exponent range (|x| < 2^(2^24)) makes MPFR report overflow at once instead of
    // computing huge intermediates; the caller's range is restored before returning.
    mpfr_exp_t emax = mpfr_get_emax(), emin = mpfr_get_emin();
    mpfr_set_emax(1L << 24);
    mpfr_set_emin(-(1L << 24));
    mv_arena a;
    mv_arena_init(&a);
    buf_t gnorm, pnorm, gfirst, pfirst;
    buf_init(&gnorm);
    buf_init(&pnorm);
    buf_init(&gfirst);
    buf_init(&pfirst);

    int np = 0, limit = 0;
    char gunit[MV_UNIT_CAP] = "", punit[MV_UNIT_CAP] = "";
    mv_node *g = parse_gold(&a, gold, &gnorm, &gfirst, gunit);
    mv_node *p = parse_response(&a, response, &pnorm, &pfirst, &np, &limit, punit);
    const char *pshown = p ? pnorm.s : pfirst.s;
    const char *gshown = g ? gnorm.s : gfirst.s;  // first: the best candidate, parsed or not
    set_text(out->extracted, sizeof out->extracted, pshown);

    int correct = 0;
    const char *reason;
    char gl = choice_letter(gshown, 0);
    if (gl) {
        // multiple choice: the letter of the first candidate that names one
        char pl = 0;
        buf_t cand, tmp;
        buf_init(&cand);
        buf_init(&tmp);
        size_t len = strlen(response);
        int order[MV_EXTRACT_LEVELS];
        size_t b = mv_extract_region(response, len);
        mv_extract_order(response + b, len - b, order);
        for (int level = 0; level < MV_EXTRACT_LEVELS && !pl; level++) {
            cand.n = 0;
            if (mv_extract_response(response + b, len - b, order[level], &cand) != 1 || cand.n > MV_MAX_ANSWER) continue;
            mv_normalize(cand.s, strlen(cand.s), &tmp, NULL);
            pl = choice_letter(tmp.s, 1);
        }
        buf_free(&cand);
        buf_free(&tmp);
        if (!pl) pl = mv_extract_choice(response, strlen(response));
        correct = pl == gl;
        reason = correct ? "equal: same choice letter" : pl ? "different: another choice letter" : "different: no choice letter";
        if (pl) {
            char letter[2] = {pl, 0};
            set_text(out->extracted, sizeof out->extracted, letter);
        }
    } else if (np > 0 && gfirst.n > 0 && !strcmp(gfirst.s, pfirst.s) && !units_conflict(gunit, punit)) {
        correct = 1;  // the best candidates read the same, whether or not they parse
        reason = "equal: same text";
    } else if (np == 0) {
        reason = "no answer found in the response";
    } else if (limit) {
        reason = "different: the answer exceeds the size limits";
    } else if (!p) {
        reason = "the extracted answer could not be parsed";
        correct = gshown[0] && !strcmp(gshown, pshown);
        if (correct) reason = "equal: same text (unparsed)";
    } else if (!g) {
        correct = gshown[0] && !strcmp(gshown, pshown);
        reason = correct ? "equal: same text (gold unparsed)" : "different: gold could not be parsed; texts differ";
    } else {
        mv_cmp_ctx ctx = {opts->strict, opts->set_relation, opts->lenient_decimals, NULL, gunit, punit};
        correct = mv_equal(&ctx, &a, g, p);
        reason = ctx.why ? ctx.why : (correct ? "equal" : "different");
        if (!correct && !strcmp(gnorm.s, pnorm.s) && !units_conflict(gunit, punit)) {
            correct = 1;
            reason = "equal: same text";
        }
    }
    out->correct = correct;
    out->reward = correct ? 1.0 : 0.0;
    set_text(out->reason, sizeof out->reason, reason);

    buf_free(&gnorm);
    buf_free(&pnorm);
    buf_free(&gfirst);
    buf_free(&pfirst);
    mv_arena_free(&a);
    mpfr_set_emax(emax);
    mpfr_set_emin(emin);
    return 0;
}

int math_verify(const char *gold, const char *response, verdict_t *out) {
    return math_verify_opts(gold, response, &math_opts_default, out);
}

int math_extract_answer(const char *response, char *buf, size_t cap) {
    if (!response || !buf || cap == 0) return 0;
    mv_arena a;
    mv_arena_init(&a);
    buf_t norm, first;
    buf_init(&norm);
    buf_init(&first);
    int np = 0, limit = 0;
    char unit[MV_UNIT_CAP];
    mv_node *p = parse_response(&a, response, &norm, &first, &np, &limit, unit);
    set_text(buf, cap, p ? norm.s : first.s);
    buf_free(&norm);
    buf_free(&first);
    mv_arena_free(&a);
    return np > 0;
}
