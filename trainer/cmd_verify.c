// trainer/cmd_verify.c — `cispo verify`: run a reward verifier on one answer or a TSV of pairs.
//   cispo verify --gold G --answer A [--verifier math|exact|regex] [--reason]
//   cispo verify --tsv FILE [--verifier NAME] [--reason] [--quiet] [--non-strict] [--no-set-relation]
//                [--lenient-decimals]
// TSV lines are `gold<TAB>response[<TAB>expected 0/1[<TAB>...]]`; a first line starting with "gold" is a
// header. Fields may hold \t and \n escapes for tab and newline, except where the backslash starts a
// LaTeX command (\times, \neq, \text stay as written). Output: one line per pair, `1` or `0`, a tab and
// the extracted answer (a third column with the reason under --reason); then a summary line with the
// count, the correct fraction, the agreement with an expected column when present, verdicts/s
// (verification time only, one thread) and the slowest single verdict.
// defines: cmd_verify
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/common.h"
#include "rl/math/math_verify.h"
#include "rl/math/mv_internal.h"
#include "rl/verifier.h"
#include "trainer/commands.h"
#include "trainer/keyconf.h"

typedef struct {
    char gold[1 << 16], answer[1 << 16], tsv[4096], verifier[64];
    int reason, quiet, non_strict, no_set_relation, lenient_decimals;
} verify_opts_t;

#define O(f) offsetof(verify_opts_t, f)
static const keyconf_key_t verify_keys[] = {
    {"gold", KEY_STRING, O(gold), 0, 0, NULL, "", "the reference answer", 1 << 16},
    {"answer", KEY_STRING, O(answer), 0, 0, NULL, "", "the response to judge", 1 << 16},
    {"tsv", KEY_STRING, O(tsv), 0, 0, NULL, "", "a file of gold<TAB>response[<TAB>expected 0/1] lines (- for stdin)", 4096},
    {"verifier", KEY_STRING, O(verifier), 0, 0, NULL, "math", "the verifier: math, exact or regex", 64},
    {"reason", KEY_BOOL, O(reason), 0, 0, NULL, "false", "a third column with the verdict's reason", 0},
    {"quiet", KEY_BOOL, O(quiet), 0, 0, NULL, "false", "only the summary line", 0},
    {"non-strict", KEY_BOOL, O(non_strict), 0, 0, NULL, "false", "math: variables matched by position, not by name (f(x) = f(y))", 0},
    {"no-set-relation", KEY_BOOL, O(no_set_relation), 0, 0, NULL, "false", "math: a gold set never matches a relation (x \\in [a,b] vs a \\le x \\le b)", 0},
    {"lenient-decimals", KEY_BOOL, O(lenient_decimals), 0, 0, NULL, "false",
     "math: a rounded decimal for an irrational gold is right within its printed precision (3.14 for \\pi)", 0},
};
#undef O

static const keyconf_cli_t verify_cli = {
    "cispo verify",
    "cispo verify --gold G --answer A [--verifier math|exact|regex] [--reason]\n"
    "       cispo verify --tsv FILE [--verifier NAME] [--reason] [--quiet] [--non-strict] [--no-set-relation] [--lenient-decimals]",
    "  TSV: gold<TAB>response[<TAB>expected 0/1], \\t and \\n escapes allowed, header line 'gold...' skipped.\n"
    "  Prints `1|0<TAB>extracted` per pair, then a summary line (correct, agreement, verdicts/s).",
    verify_keys, sizeof verify_keys / sizeof verify_keys[0], 0};

// Decodes \t and \n escapes in place, leaving LaTeX commands such as \times and \neq alone.
static void decode_escapes(char *s) {
    size_t w = 0;
    for (size_t i = 0; s[i]; i++) {
        if (s[i] == '\\' && s[i + 1] == '\\') {  // an escaped backslash run is copied as is
            s[w++] = s[i++];
            s[w++] = s[i];
            continue;
        }
        if (s[i] == '\\' && (s[i + 1] == 't' || s[i + 1] == 'n')) {
            size_t e = i + 1;
            while ((s[e] >= 'a' && s[e] <= 'z') || (s[e] >= 'A' && s[e] <= 'Z')) e++;
            if (!mv_is_known_command(s + i + 1, e - i - 1)) {
                s[w++] = s[i + 1] == 't' ? '\t' : '\n';
                i++;
                continue;
            }
        }
        s[w++] = s[i];
    }
    s[w] = 0;
}

// One output field: tabs and newlines shown as \t and \n so each verdict stays on one line.
static void print_field(const char *s) {
    for (; *s; s++) {
        if (*s == '\t') fputs("\\t", stdout);
        else if (*s == '\n') fputs("\\n", stdout);
        else if (*s != '\r') putchar(*s);
    }
}

typedef struct {
    const verifier_t *v;
    math_opts_t opts;
    int math, reason, quiet;
    long n, correct, failed, with_expected, agree;
    double seconds, slowest;
} run_t;

static void run_one(run_t *r, const char *gold, const char *answer, int expected) {
    verdict_t out;
    verify_request_t req = {0};
    req.gold = gold;
    req.response = answer;
    double t0 = cispo_now();
    if (r->math) math_verify_opts(gold, answer, &r->opts, &out);
    else r->v->verify(&req, &out);
    double dt = cispo_now() - t0;
    r->seconds += dt;
    if (dt > r->slowest) r->slowest = dt;
    r->n++;
    r->correct += out.correct;
    r->failed += out.failed;
    if (expected >= 0) {
        r->with_expected++;
        r->agree += out.correct == expected;
    }
    if (r->quiet) return;
    printf("%d\t", out.correct);
    print_field(out.extracted);
    if (r->reason) {
        putchar('\t');
        print_field(out.reason);
    }
    putchar('\n');
}

static int run_tsv(run_t *r, const char *path) {
    FILE *f = !strcmp(path, "-") ? stdin : fopen(path, "r");
    if (!f) {
        fprintf(stderr, "cispo verify: cannot open '%s' (check the path)\n", path);
        return 1;
    }
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    long lineno = 0;
    while ((len = getline(&line, &cap, f)) >= 0) {
        lineno++;
        while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r')) line[--len] = 0;
        if (lineno == 1 && !strncmp(line, "gold", 4)) continue;
        if (len == 0) continue;
        char *tab = strchr(line, '\t');
        if (!tab) {
            fprintf(stderr, "cispo verify: %s:%ld: expected gold<TAB>response, found no tab (escape tabs inside fields as \\t)\n", path,
                    lineno);
            free(line);
            if (f != stdin) fclose(f);
            return 1;
        }
        *tab = 0;
        char *resp = tab + 1, *rest = strchr(resp, '\t');
        int expected = -1;
        if (rest) {
            *rest++ = 0;
            if ((rest[0] == '0' || rest[0] == '1') && (rest[1] == 0 || rest[1] == '\t')) expected = rest[0] - '0';
        }
        decode_escapes(line);
        decode_escapes(resp);
        run_one(r, line, resp, expected);
    }
    free(line);
    if (f != stdin) fclose(f);
    return 0;
}

static int verify_main(const verify_opts_t *o) {
    const char *gold = o->gold[0] ? o->gold : NULL, *answer = o->answer[0] ? o->answer : NULL;
    const char *tsv = o->tsv[0] ? o->tsv : NULL, *name = o->verifier;
    run_t r = {0};
    r.opts = math_opts_default;
    r.reason = o->reason, r.quiet = o->quiet;
    if (o->non_strict) r.opts.strict = 0;
    if (o->no_set_relation) r.opts.set_relation = 0;
    if (o->lenient_decimals) r.opts.lenient_decimals = 1;
    r.v = verifier_find(name);
    if (!r.v) {
        fprintf(stderr, "cispo verify: no verifier named '%s' (try math, exact or regex)\n", name);
        return 2;
    }
    r.math = !strcmp(name, "math");
    if (tsv && (gold || answer)) {
        fprintf(stderr, "cispo verify: give either --tsv FILE or --gold and --answer, not both\n");
        return 2;
    }
    // one-time setup (regular-expression compilation, MPFR constants) is not a verdict's cost
    verdict_t warm;
    math_verify("\\frac{1}{2}", "\\boxed{0.5}", &warm);
    if (tsv) {
        int rc = run_tsv(&r, tsv);
        if (rc) return rc;
    } else if (gold && answer) {
        run_one(&r, gold, answer, -1);
    } else {
        keyconf_print_help(stderr, &verify_cli, NULL);
        return 2;
    }
    printf("# %ld verdicts: %ld correct (%.2f%%), %ld failed", r.n, r.correct, r.n ? 100.0 * (double)r.correct / (double)r.n : 0.0,
           r.failed);
    if (r.with_expected)
        printf(", agreement with expected %ld/%ld (%.2f%%)", r.agree, r.with_expected, 100.0 * (double)r.agree / (double)r.with_expected);
    printf(", %.4f s, %.0f verdicts/s, slowest %.3f ms\n", r.seconds, r.seconds > 0 ? (double)r.n / r.seconds : 0.0, 1e3 * r.slowest);
    return 0;
}

int cmd_verify(int argc, char **argv) {
    verify_opts_t *o = cispo_calloc(1, sizeof *o);
    keyconf_defaults(o, verify_keys, verify_cli.n_keys);
    int prc = keyconf_parse_cli(&verify_cli, o, argc, argv, NULL, NULL, NULL);
    if (prc) {
        if (prc < 0) fprintf(stderr, "cispo verify: %s\n", cispo_last_error());
        free(o);
        return prc < 0 ? 2 : 0;
    }
    int rc = verify_main(o);
    free(o);
    return rc;
}
