// tests/test_verify_cli.c — `cispo verify` end to end: --gold/--answer, --tsv with a header line,
// \t and \n escapes (LaTeX commands such as \times and \neq left alone), the summary line with the
// agreement against an expected column, --lenient-decimals, --verifier, and the errors a user can act on.
//   ctest -R test_verify_cli        (needs CISPO_BIN, set by ctest)
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tests/testutil.h"

// Runs a shell command; returns its exit status and its stdout (caller frees).
static int run(const char *cmd, char **out) {
    FILE *p = popen(cmd, "r");
    if (!p) return -1;
    size_t cap = 1 << 16, n = 0;
    char *buf = malloc(cap);
    size_t k;
    while ((k = fread(buf + n, 1, cap - n - 1, p)) > 0) {
        n += k;
        if (n + 1 >= cap) buf = realloc(buf, cap *= 2);
    }
    buf[n] = 0;
    *out = buf;
    int st = pclose(p);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

int main(void) {
    const char *bin = getenv("CISPO_BIN");
    if (!test_check(bin != NULL, "CISPO_BIN is set")) return test_finish("test_verify_cli");
    char cmd[4096], *out;
    int rc;

    snprintf(cmd, sizeof cmd, "%s verify --gold '\\frac12' --answer 'So the answer is $\\boxed{0.5}$.'", bin);
    rc = run(cmd, &out);
    test_check(rc == 0 && !strncmp(out, "1\t0.5\n", 6) && strstr(out, "# 1 verdicts: 1 correct"), "single pair: rc %d out '%s'", rc, out);
    free(out);

    snprintf(cmd, sizeof cmd, "%s verify --gold 3 --answer 'x = \\boxed{4}' --reason", bin);
    rc = run(cmd, &out);
    test_check(rc == 0 && !strncmp(out, "0\t4\tdifferent", 13), "wrong pair with reason: '%s'", out);
    free(out);

    // TSV: header, escapes, a LaTeX \times and \neq that must stay, expected column, blank line
    char path[] = "/tmp/cispo_verify_cli_XXXXXX";
    int fd = mkstemp(path);
    FILE *f = fdopen(fd, "w");
    fprintf(f, "gold\tresponse\texpected\n");
    fprintf(f, "42\t<think>maybe 41</think>\\n\\nThe answer is \\\\boxed{42}.\t1\n");
    fprintf(f, "6\tWe have $2 \\times 3$ so\\tthe result is $6$\t1\n");
    fprintf(f, "(-\\infty,0) \\cup (0,\\infty)\t\\boxed{x \\neq 0}\t1\n");
    fprintf(f, "7\tThe answer is 8.\t1\n");
    fprintf(f, "\n");
    fprintf(f, "\\text{odd}\t\\boxed{\\text{odd}}\n");
    fclose(f);
    snprintf(cmd, sizeof cmd, "%s verify --tsv %s", bin, path);
    rc = run(cmd, &out);
    test_check(rc == 0, "tsv run rc %d", rc);
    const char *want[] = {"1\t42\n", "1\t6\n", "1\tx \\neq 0\n", "0\t8\n", "1\t\\text{odd}\n"};
    char *line = out;
    for (int i = 0; i < 5; i++) {
        test_check(!strncmp(line, want[i], strlen(want[i])), "tsv line %d: '%.*s' want '%s'", i + 1, (int)strcspn(line, "\n"), line, want[i]);
        line = strchr(line, '\n');
        if (!line) break;
        line++;
    }
    test_check(line && strstr(line, "# 5 verdicts: 4 correct") && strstr(line, "agreement with expected 3/4") && strstr(line, "verdicts/s"),
               "summary: '%s'", line ? line : "(none)");
    free(out);

    // a rounded decimal for an irrational gold: wrong by default, right under --lenient-decimals
    snprintf(cmd, sizeof cmd, "%s verify --gold '\\pi' --answer '\\boxed{3.14}' --reason", bin);
    rc = run(cmd, &out);
    test_check(rc == 0 && strstr(out, "0\t3.14\tdifferent: a rounded decimal") == out, "pi vs 3.14 by default: '%s'", out);
    free(out);
    snprintf(cmd, sizeof cmd, "%s verify --gold '\\pi' --answer '\\boxed{3.14}' --lenient-decimals", bin);
    rc = run(cmd, &out);
    test_check(rc == 0 && !strncmp(out, "1\t3.14\n", 7), "pi vs 3.14 --lenient-decimals: '%s'", out);
    free(out);
    snprintf(cmd, sizeof cmd, "%s verify --gold '\\pi' --answer '\\boxed{3.15}' --lenient-decimals", bin);
    rc = run(cmd, &out);
    test_check(rc == 0 && !strncmp(out, "0\t3.15\n", 7), "pi vs 3.15 --lenient-decimals: '%s'", out);
    free(out);

    // another verifier through the same command
    snprintf(cmd, sizeof cmd, "%s verify --verifier exact --gold Paris --answer '\\boxed{paris}'", bin);
    rc = run(cmd, &out);
    test_check(rc == 0 && !strncmp(out, "1\tparis", 7), "exact verifier: '%s'", out);
    free(out);

    // errors: unknown verifier (2), missing tab (1 with file:line), unreadable file (1)
    snprintf(cmd, sizeof cmd, "%s verify --verifier nope --gold 1 --answer 1 2>&1", bin);
    rc = run(cmd, &out);
    test_check(rc == 2 && strstr(out, "no verifier named 'nope'"), "unknown verifier: rc %d '%s'", rc, out);
    free(out);
    f = fopen(path, "w");
    fprintf(f, "gold\tresponse\n1\t1\nno tab here\n");
    fclose(f);
    snprintf(cmd, sizeof cmd, "%s verify --tsv %s 2>&1", bin, path);
    rc = run(cmd, &out);
    test_check(rc == 1 && strstr(out, ":3: expected gold<TAB>response"), "missing tab: rc %d '%s'", rc, out);
    free(out);
    snprintf(cmd, sizeof cmd, "%s verify --tsv /nonexistent/pairs.tsv 2>&1", bin);
    rc = run(cmd, &out);
    test_check(rc == 1 && strstr(out, "cannot open"), "missing file: rc %d", rc);
    free(out);
    snprintf(cmd, sizeof cmd, "%s verify 2>&1", bin);
    rc = run(cmd, &out);
    test_check(rc == 2 && strstr(out, "usage"), "no arguments: usage, rc %d", rc);
    free(out);
    unlink(path);
    return test_finish("test_verify_cli");
}
