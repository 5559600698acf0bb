// tests/test_sandbox_judge.c — output comparison of judged runs: token-wise stdout comparison with
// the float tolerance, structural JSON comparison of call-based results, the accepted shapes of
// expected outputs and inputs, and base64 round trips of request files.
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "sandbox/base64.h"
#include "sandbox/judge.h"
#include "tests/testutil.h"

static void tokens(const char *got, const char *want, int expect) {
    char why[200] = "";
    int r = judge_tokens(got, strlen(got), want, strlen(want), why, sizeof why);
    test_check(r == expect, "tokens '%s' vs '%s' -> %d (want %d) %s", got, want, r, expect, why);
}

static void call(const char *got, const char *want_json, int expect) {
    char why[200] = "";
    cJSON *w = cJSON_Parse(want_json);
    int r = judge_call_output(got, w, why, sizeof why);
    test_check(r == expect, "call result %s vs %s -> %d (want %d) %s", got ? got : "NULL", want_json, r, expect, why);
    cJSON_Delete(w);
}

static void input(const char *in_json, const char *want) {
    char why[200] = "";
    cJSON *in = cJSON_Parse(in_json);
    char *got = judge_call_input("f", in, why, sizeof why);
    test_check(want ? got && !strcmp(got, want) : got == NULL, "call input %s -> %s (want %s) %s", in_json, got ? got : "NULL",
               want ? want : "NULL", why);
    free(got);
    cJSON_Delete(in);
}

int main(void) {
    // whitespace never matters, tokens do
    tokens("3\n", "3", 1);
    tokens("1 2 3", "1\n2\n3\n", 1);
    tokens("  a   b\r\n", "a b", 1);
    tokens("", "", 1);
    tokens("\n\n", "", 1);
    tokens("3 4", "3", 0);
    tokens("3", "3 4", 0);
    tokens("abc", "abd", 0);
    tokens("Yes", "YES", 0);
    // numbers within 1e-6 relative (absolute below 1) when both are plain decimals
    tokens("1.0000001", "1", 1);
    tokens("1000000.5", "1000000", 1);
    tokens("1.001", "1", 0);
    tokens("0.0000001", "0", 1);
    tokens("0.00001", "0", 0);
    tokens("1e6", "1000000", 1);
    tokens("-0", "0", 1);
    tokens("3.14159265", "3.141592", 1);
    tokens("3.1415", "3.1416", 0);
    tokens("1,000", "1000", 0);
    tokens("0x10", "16", 0);
    tokens("inf", "1e999", 0);
    tokens("nan", "nan", 1);
    tokens("12345678901234567890", "12345678901234567891", 0);  // integers are exact at any length
    tokens("123456789012345678901234567890", "123456789012345678901234567890", 1);
    tokens("007", "7", 1);
    tokens("-0", "+0", 1);
    tokens("-5", "5", 0);
    tokens("5.0", "5", 1);
    // call-based results: JSON text made inside the sandbox, compared structurally outside
    call("6", "6", 1);
    call("6.0000000001", "6", 1);
    call("[1, 2]", "[1,2]", 1);
    call("[1, 2]", "[2,1]", 0);
    call("[1, 2]", "\"[1, 2]\"", 1);  // LiveCodeBench: the value as JSON text
    call("[1, 2]", "[[1,2]]", 1);     // APPS: wrapped in a list
    call("\"abc\"", "\"abc\"", 1);
    call("\"4\"", "\"4\"", 1);        // a string result equal to the expected string
    call("4", "\"4\"", 1);            // ... or to the JSON it holds
    call("true", "1", 0);
    call("1", "true", 0);
    call("null", "0", 0);
    call("{\"a\": 1, \"b\": [true]}", "{\"b\": [true], \"a\": 1}", 1);
    call("{\"a\": 1}", "{\"a\": 1, \"b\": 2}", 0);
    call("", "1", 0);
    call(NULL, "1", 0);
    call("1 2", "1", 0);              // trailing garbage is not a value
    call("NaN", "1", 0);
    // inputs
    input("[1, [2, 3]]", "{\"fn\":\"f\",\"args\":[1,[2,3]]}");
    input("\"[1, 2]\\n3\\n\"", "{\"fn\":\"f\",\"args\":[[1,2],3]}");
    input("\"\\\"abc\\\"\"", "{\"fn\":\"f\",\"args\":[\"abc\"]}");
    input("\"[1, 2\\n3\"", NULL);
    input("{\"a\": 1}", NULL);
    // base64
    const char *samples[] = {"", "f", "fo", "foo", "foob", "fooba", "foobar", "\x01\xff\x80\n"};
    const char *enc[] = {"", "Zg==", "Zm8=", "Zm9v", "Zm9vYg==", "Zm9vYmE=", "Zm9vYmFy", NULL};
    for (size_t i = 0; i < sizeof samples / sizeof samples[0]; i++) {
        char *e = sandbox_b64_encode(samples[i], strlen(samples[i]));
        size_t n;
        char *d = sandbox_b64_decode(e, &n);
        test_check(d && n == strlen(samples[i]) && !memcmp(d, samples[i], n) && (!enc[i] || !strcmp(e, enc[i])),
                   "base64 round trip of sample %zu (%s)", i, e);
        free(e);
        free(d);
    }
    size_t n;
    test_check(sandbox_b64_decode("Zm9v*", &n) == NULL, "base64: a bad character is an error");
    return test_finish("test_sandbox_judge");
}
