// tests/test_math_pairs.c — the math checker against tests/data/math_pairs.tsv (cases from
// Math-Verify's and the MATH grader's test suites; columns gold, prediction, expected, category,
// source). Prints agreement per category and every disagreement; requires >= 97% overall.
// The source column names the options a case was written for (strict=False,
// allow_set_relation_comp=False); those rows run with the same options.
//   ctest -R test_math_pairs      (run from the repository root)
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rl/math/math_verify.h"
#include "tests/testutil.h"

#define MAX_CATS 64

typedef struct {
    char name[64];
    int n, agree;
} cat_t;

int main(void) {
    const char *src = getenv("CISPO_SRC");
    char path[1024];
    snprintf(path, sizeof path, "%s/tests/data/math_pairs.tsv", src ? src : ".");
    FILE *f = fopen(path, "r");
    if (!test_check(f != NULL, "open %s", path)) return test_finish("test_math_pairs");
    cat_t cats[MAX_CATS];
    int ncat = 0, total = 0, agree = 0;
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    int lineno = 0;
    while ((len = getline(&line, &cap, f)) >= 0) {
        lineno++;
        while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r')) line[--len] = 0;
        if (lineno == 1) continue;  // header
        char *field[5] = {0};
        char *p = line;
        for (int i = 0; i < 5 && p; i++) {
            field[i] = p;
            p = strchr(p, '\t');
            if (p) *p++ = 0;
        }
        if (!field[3]) {
            test_check(0, "%s:%d: expected 5 tab-separated columns", path, lineno);
            continue;
        }
        math_opts_t opts = math_opts_default;
        if (field[4] && strstr(field[4], "strict=False")) opts.strict = 0;
        if (field[4] && strstr(field[4], "allow_set_relation_comp=False")) opts.set_relation = 0;
        verdict_t v;
        math_verify_opts(field[0], field[1], &opts, &v);
        int expected = atoi(field[2]), ok = v.correct == expected;
        total++;
        agree += ok;
        int c = 0;
        while (c < ncat && strcmp(cats[c].name, field[3])) c++;
        if (c == ncat && ncat < MAX_CATS) {
            snprintf(cats[ncat].name, sizeof cats[ncat].name, "%s", field[3]);
            cats[ncat].n = cats[ncat].agree = 0;
            ncat++;
        }
        if (c < ncat) {
            cats[c].n++;
            cats[c].agree += ok;
        }
        if (!ok)
            printf("disagree line %d [%s]: gold=%s | pred=%s | expected %d got %d | extracted=%s | %s\n", lineno, field[3], field[0],
                   field[1], expected, v.correct, v.extracted, v.reason);
    }
    free(line);
    fclose(f);
    printf("%-40s %5s %6s\n", "category", "cases", "agree");
    for (int c = 0; c < ncat; c++)
        printf("%-40s %5d %5.1f%%\n", cats[c].name, cats[c].n, 100.0 * cats[c].agree / cats[c].n);
    double rate = total ? (double)agree / total : 0;
    printf("overall: %d/%d = %.2f%%\n", agree, total, 100 * rate);
    test_check(total >= 150, "all %d cases read", total);
    test_check(rate >= 0.97, "agreement %.2f%% >= 97%%", 100 * rate);
    return test_finish("test_math_pairs");
}
