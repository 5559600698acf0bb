// sandbox/judge.h — deciding whether a program's output is right: token-wise comparison of
// stdout for stdin/stdout tests, structural JSON comparison for call-based tests.
// defines: judge_tokens, judge_json_values, judge_call_output, judge_call_input
#ifndef CISPO_SANDBOX_JUDGE_H
#define CISPO_SANDBOX_JUDGE_H

#include <stddef.h>

#include <cjson/cJSON.h>

// 1 when got and want hold the same whitespace-separated tokens: equal as strings; or both
// integers, equal exactly at any length ("007" = "7", "-0" = "0"); or both plain decimal numbers,
// at least one not an integer, within 1e-6 relative (absolute below 1). Writes a short reason on
// mismatch.
int judge_tokens(const char *got, size_t got_len, const char *want, size_t want_len, char *why, size_t n);

// Structural equality of two JSON values (numbers within 1e-6 relative, arrays in order, objects by
// key). Types must agree: true is not 1, "1" is not 1.
int judge_json_values(const cJSON *a, const cJSON *b);

// Call-based verdict: got is the JSON text the harness wrote (the serialized return value, made
// inside the sandbox), want is the test's "output" as given by the data set: a JSON value, a string
// holding JSON text (LiveCodeBench), or a one-element list wrapping the value (APPS/TACO).
int judge_call_output(const char *got, const cJSON *want, char *why, size_t n);

// What the call harness (harness_py.c) reads on stdin for one call-based test, as JSON text
// {"fn": fn_name, "args": [a, b, ...]}: "input" is either a JSON array of arguments, or a string
// with one JSON value per line (LiveCodeBench). NULL when the input is neither (why says so).
// The caller frees the result.
char *judge_call_input(const char *fn_name, const cJSON *input, char *why, size_t n);

#endif
