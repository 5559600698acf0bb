// rl/verifier.c — the table of reward verifiers and the rule verifiers that fit in a few lines.
// defines: verifier_find (and the "math", "exact", "regex" entries)
//
// - math:  rl/math/ (extraction, normalisation, exact/numeric/structural equivalence).
// - exact: the response's final answer (as the math extractor finds it) or the whole response,
//          NFKC-casefolded with whitespace collapsed, equals the gold normalised the same way.
// - regex: the gold is a PCRE2 pattern; correct when it matches somewhere in the response (after
//          the last </think>); extracted = the matched text. A bad pattern is a failed verdict.
// A new verifier is one line in kVerifiers (and its declaration above it).
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include "rl/math/math_verify.h"
#include "rl/verifier.h"

static void copy_text(char *dst, size_t cap, const char *src, size_t n) {
    if (n >= cap) n = cap - 1;
    memcpy(dst, src, n);
    dst[n] = 0;
}

// ---- math ----
static int verify_math(const verify_request_t *req, verdict_t *out) {
    return math_verify(req->gold, req->response, out);
}

// ---- exact ----

// NFKC + casefold, whitespace runs -> one space, trimmed, trailing '.' dropped. Caller frees.
static char *exact_normalize(const char *s) {
    utf8proc_uint8_t *m = NULL;
    utf8proc_ssize_t n = utf8proc_map((const utf8proc_uint8_t *)s, 0, &m,
                                      UTF8PROC_NULLTERM | UTF8PROC_STABLE | UTF8PROC_COMPOSE | UTF8PROC_COMPAT | UTF8PROC_CASEFOLD);
    if (n < 0) {  // not UTF-8: compare the bytes
        m = (utf8proc_uint8_t *)strdup(s);
        if (!m) return NULL;
        n = (utf8proc_ssize_t)strlen(s);
    }
    char *r = (char *)m;
    size_t w = 0;
    int space = 0;
    for (utf8proc_ssize_t i = 0; i < n; i++) {
        char c = r[i];
        if (c == ' ' || c == '\t' || c == '\n' || c == '\r') {
            space = w > 0;
            continue;
        }
        if (space) r[w++] = ' ';
        space = 0;
        r[w++] = c;
    }
    while (w > 0 && (r[w - 1] == '.' || r[w - 1] == ' ')) w--;
    r[w] = 0;
    return r;
}

static int verify_exact(const verify_request_t *req, verdict_t *out) {
    memset(out, 0, sizeof *out);
    if (!req->gold || !req->response) {
        out->failed = 1;
        snprintf(out->reason, sizeof out->reason, "exact verifier needs both a gold answer and a response");
        return -1;
    }
    char ans[512];
    math_extract_answer(req->response, ans, sizeof ans);
    char *g = exact_normalize(req->gold), *a = exact_normalize(ans), *r = exact_normalize(req->response);
    if (!g || !a || !r) {
        free(g), free(a), free(r);
        out->failed = 1;
        snprintf(out->reason, sizeof out->reason, "exact verifier: out of memory");
        return -1;
    }
    int by_answer = g[0] && !strcmp(g, a), by_whole = g[0] && !strcmp(g, r);
    out->correct = by_answer || by_whole;
    out->reward = out->correct ? 1.0 : 0.0;
    copy_text(out->extracted, sizeof out->extracted, by_whole && !by_answer ? r : a, strlen(by_whole && !by_answer ? r : a));
    snprintf(out->reason, sizeof out->reason, "%s", by_answer ? "equal: final answer matches" : by_whole ? "equal: response matches"
                                                                                                         : "different: normalised strings differ");
    free(g), free(a), free(r);
    return 0;
}

// ---- regex ----
static int verify_regex(const verify_request_t *req, verdict_t *out) {
    memset(out, 0, sizeof *out);
    if (!req->gold || !req->response) {
        out->failed = 1;
        snprintf(out->reason, sizeof out->reason, "regex verifier needs a pattern (gold) and a response");
        return -1;
    }
    int err;
    PCRE2_SIZE off;
    pcre2_code *re = pcre2_compile((PCRE2_SPTR)req->gold, PCRE2_ZERO_TERMINATED, PCRE2_UTF | PCRE2_MATCH_INVALID_UTF, &err, &off, NULL);
    if (!re) {
        PCRE2_UCHAR msg[160];
        pcre2_get_error_message(err, msg, sizeof msg);
        out->failed = 1;
        snprintf(out->reason, sizeof out->reason, "regex verifier: bad pattern at offset %zu: %s (fix the gold pattern)", (size_t)off,
                 (const char *)msg);
        return -1;
    }
    const char *s = req->response, *tag = NULL;
    for (const char *t = strstr(s, "</think>"); t; t = strstr(t + 1, "</think>")) tag = t;
    if (tag) s = tag + 8;
    pcre2_match_data *md = pcre2_match_data_create_from_pattern(re, NULL);
    pcre2_match_context *mc = pcre2_match_context_create(NULL);
    pcre2_set_match_limit(mc, 5000000);
    pcre2_set_depth_limit(mc, 10000);
    int rc = pcre2_match(re, (PCRE2_SPTR)s, strlen(s), 0, 0, md, mc);
    if (rc >= 0) {
        PCRE2_SIZE *ov = pcre2_get_ovector_pointer(md);
        out->correct = 1;
        copy_text(out->extracted, sizeof out->extracted, s + ov[0], ov[1] - ov[0]);
        snprintf(out->reason, sizeof out->reason, "equal: pattern matches");
    } else if (rc == PCRE2_ERROR_NOMATCH) {
        snprintf(out->reason, sizeof out->reason, "different: pattern does not match");
    } else {
        out->failed = 1;
        snprintf(out->reason, sizeof out->reason, "regex verifier: matching stopped (error %d: match limit?)", rc);
    }
    out->reward = out->correct ? 1.0 : 0.0;
    pcre2_match_context_free(mc);
    pcre2_match_data_free(md);
    pcre2_code_free(re);
    return out->failed ? -1 : 0;
}

// ---- the table: one line per verifier ----
int genrm_verify(const verify_request_t *req, verdict_t *out);         // rl/genrm.c: LLM judge
int remote_reward_verify(const verify_request_t *req, verdict_t *out); // rl/remote_reward.c: reward service
int code_verify(const verify_request_t *req, verdict_t *out);          // rl/code_verifier.c: sandboxed tests
static const verifier_t kVerifiers[] = {
    {"math", verify_math},
    {"exact", verify_exact},
    {"regex", verify_regex},
    {"genrm", genrm_verify},
    {"remote", remote_reward_verify},
    {"code", code_verify},
};

const verifier_t *verifier_find(const char *name) {
    if (!name) return NULL;
    for (size_t i = 0; i < sizeof kVerifiers / sizeof kVerifiers[0]; i++)
        if (!strcmp(kVerifiers[i].name, name)) return &kVerifiers[i];
    return NULL;
}
