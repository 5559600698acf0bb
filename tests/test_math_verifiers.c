// tests/test_math_verifiers.c — the verifier table (rl/verifier.c) and the rule verifiers behind it:
// "math" (through the table), "exact" (normalised final answer or whole response) and "regex"
// (PCRE2 pattern in the gold; a bad pattern is a failed verdict, not a wrong one).
//   ctest -R test_math_verifiers
#include <string.h>

#include "rl/verifier.h"
#include "tests/testutil.h"

static verdict_t run(const char *name, const char *gold, const char *resp, int *rc) {
    verdict_t v;
    memset(&v, 0, sizeof v);
    const verifier_t *ver = verifier_find(name);
    verify_request_t req = {0};
    req.gold = gold;
    req.response = resp;
    *rc = ver ? ver->verify(&req, &v) : -2;
    return v;
}

static void expect(const char *name, const char *gold, const char *resp, int correct) {
    int rc;
    verdict_t v = run(name, gold, resp, &rc);
    test_check(rc == 0 && v.correct == correct && !v.failed && v.reward == (correct ? 1.0 : 0.0),
               "%s: gold=%s response=%s -> correct %d (want %d), rc %d, extracted '%s', %s", name, gold, resp, v.correct, correct,
               rc, v.extracted, v.reason);
}

int main(void) {
    test_check(verifier_find("math") != NULL, "math registered");
    test_check(verifier_find("exact") != NULL, "exact registered");
    test_check(verifier_find("regex") != NULL, "regex registered");
    test_check(verifier_find("nope") == NULL, "unknown name -> NULL");
    test_check(verifier_find(NULL) == NULL, "NULL name -> NULL");

    expect("math", "\\frac{1}{2}", "The answer is $\\boxed{0.5}$.", 1);
    expect("math", "\\frac{1}{2}", "The answer is $\\boxed{0.25}$.", 0);

    // exact: case, width and whitespace folded; final answer or whole response
    expect("exact", "Paris", "The capital is \\boxed{paris}.", 1);
    expect("exact", "Paris", "  PARIS  ", 1);
    expect("exact", "New York", "new   york.", 1);
    expect("exact", "ＡＢＣ", "abc", 1);  // fullwidth letters (NFKC)
    expect("exact", "Paris", "\\boxed{Lyon}", 0);
    expect("exact", "1/2", "\\boxed{0.5}", 0);  // exact means string equality, not math

    // regex: searched after </think>; extracted = match
    expect("regex", "\\b4[0-9]\\b", "<think>39</think> It is 42.", 1);
    expect("regex", "^yes$", "no", 0);
    expect("regex", "(?i)answer:\\s*B", "<think>answer: B</think>Answer: C", 0);
    {
        int rc;
        verdict_t v = run("regex", "\\d+", "x = 123 and 45", &rc);
        test_check(rc == 0 && !strcmp(v.extracted, "123"), "regex extracted '%s'", v.extracted);
        v = run("regex", "(unclosed", "anything", &rc);
        test_check(rc == -1 && v.failed == 1 && v.correct == 0 && strstr(v.reason, "bad pattern"), "bad pattern -> failed: %s", v.reason);
        v = run("exact", NULL, "x", &rc);
        test_check(rc == -1 && v.failed == 1, "exact without gold -> failed");
        v = run("regex", "(a+)+$", "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaab", &rc);
        test_check(v.correct == 0, "catastrophic pattern ends (%s)", v.reason);
    }
    return test_finish("test_math_verifiers");
}
