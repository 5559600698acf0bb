// rl/math/verify.c — the math checker's entry points: extract, normalise, parse, compare, report.
// defines: math_opts_default, math_verify, math_verify_opts, math_extract_answer
#include <ctype.h>
#include <stdio.h>
#include <string.h>

#include "rl/math/math_verify.h"
#include "rl/math/mv_internal.h"

const math_opts_t math_opts_default = {1, 1};

// Normalises and parses candidate i of a '\0'-separated list; the first that parses wins.
// *first_norm gets the normalised first candidate (for the report when nothing parses).
static mv_node *first_parsed(mv_arena *a, const mv_buf *cands, int count, mv_buf *norm, mv_buf *first_norm) {
    const char *c = cands->s;
    for (int i = 0; i < count; i++) {
        size_t n = strlen(c);
        if (n <= MV_MAX_ANSWER) {
            mv_normalize(c, n, norm);
            if (i == 0 || first_norm->n == 0) {
                first_norm->n = 0;
                mv_buf_putn(first_norm, norm->s, norm->n);
            }
            if (norm->n > 0) {
                mv_node *x = mv_parse(a, norm->s);
                if (x) return x;
                a->overflow = 0;
            }
        }
        c += n + 1;
    }
    norm->n = 0;
    norm->s[0] = 0;
    return NULL;
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
    mv_arena a;
    mv_arena_init(&a);
    mv_buf gc, pc, gnorm, pnorm, gfirst, pfirst;
    mv_buf_init(&gc);
    mv_buf_init(&pc);
    mv_buf_init(&gnorm);
    mv_buf_init(&pnorm);
    mv_buf_init(&gfirst);
    mv_buf_init(&pfirst);

    int ng = mv_extract_gold(gold, strlen(gold), &gc);
    int np = mv_extract_response(response, strlen(response), &pc);
    mv_node *g = first_parsed(&a, &gc, ng, &gnorm, &gfirst);
    mv_node *p = np ? first_parsed(&a, &pc, np, &pnorm, &pfirst) : NULL;
    const char *pshown = p ? pnorm.s : pfirst.s;
    const char *gshown = g ? gnorm.s : gfirst.s;
    set_text(out->extracted, sizeof out->extracted, pshown);

    int correct = 0;
    const char *reason;
    char gl = choice_letter(gshown, 0);
    if (gl) {
        // multiple choice: the letter of the first candidate that names one
        char pl = 0;
        const char *c = pc.s;
        mv_buf tmp;
        mv_buf_init(&tmp);
        for (int i = 0; i < np && !pl; i++) {
            size_t n = strlen(c);
            if (n <= MV_MAX_ANSWER) {
                mv_normalize(c, n, &tmp);
                pl = choice_letter(tmp.s, 1);
            }
            c += n + 1;
        }
        mv_buf_free(&tmp);
        if (!pl) pl = mv_extract_choice(response, strlen(response));
        correct = pl == gl;
        reason = correct ? "equal: same choice letter" : pl ? "different: another choice letter" : "different: no choice letter";
        if (pl) {
            char letter[2] = {pl, 0};
            set_text(out->extracted, sizeof out->extracted, letter);
        }
    } else if (np == 0) {
        reason = "no answer found in the response";
    } else if (!p) {
        reason = "the extracted answer could not be parsed";
        correct = gshown[0] && !strcmp(gshown, pshown);
        if (correct) reason = "equal: same text (unparsed)";
    } else if (!g) {
        correct = gshown[0] && !strcmp(gshown, pshown);
        reason = correct ? "equal: same text (gold unparsed)" : "different: gold could not be parsed; texts differ";
    } else {
        mv_cmp_ctx ctx = {opts->strict, opts->set_relation, NULL};
        correct = mv_equal(&ctx, &a, g, p);
        reason = ctx.why ? ctx.why : (correct ? "equal" : "different");
        if (!correct && !strcmp(gnorm.s, pnorm.s)) {
            correct = 1;
            reason = "equal: same text";
        }
    }
    out->correct = correct;
    out->reward = correct ? 1.0 : 0.0;
    set_text(out->reason, sizeof out->reason, reason);

    mv_buf_free(&gc);
    mv_buf_free(&pc);
    mv_buf_free(&gnorm);
    mv_buf_free(&pnorm);
    mv_buf_free(&gfirst);
    mv_buf_free(&pfirst);
    mv_arena_free(&a);
    return 0;
}

int math_verify(const char *gold, const char *response, verdict_t *out) {
    return math_verify_opts(gold, response, &math_opts_default, out);
}

int math_extract_answer(const char *response, char *buf, size_t cap) {
    if (!response || !buf || cap == 0) return 0;
    mv_arena a;
    mv_arena_init(&a);
    mv_buf pc, norm, first;
    mv_buf_init(&pc);
    mv_buf_init(&norm);
    mv_buf_init(&first);
    int np = mv_extract_response(response, strlen(response), &pc);
    mv_node *p = np ? first_parsed(&a, &pc, np, &norm, &first) : NULL;
    set_text(buf, cap, p ? norm.s : first.s);
    int found = np > 0;
    mv_buf_free(&pc);
    mv_buf_free(&norm);
    mv_buf_free(&first);
    mv_arena_free(&a);
    return found;
}
