// tests/fuzz/fuzz_math.c — libFuzzer target for the math checker: extraction, normalisation, the
// LaTeX parser and the comparisons. Input: "gold<TAB>response" (no tab: the input is the response
// and also, parsed on its own, the gold). Every call must return a verdict without a crash, a
// sanitizer report or a hang (-timeout catches those).
//   CC=clang-14 cmake -S . -B build-fuzz -DCISPO_FUZZ=ON -DCISPO_CUDA=OFF && cmake --build build-fuzz --target fuzz_math
//   build-fuzz/fuzz_math -max_total_time=600 -timeout=2 tests/fuzz/corpus_math
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "rl/math/math_verify.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char *s = malloc(size + 1);
    if (!s) return 0;
    memcpy(s, data, size);
    s[size] = 0;  // an embedded NUL simply ends the strings early
    verdict_t v;
    char *tab = strchr(s, '\t');
    if (tab) {
        *tab = 0;
        math_verify(s, tab + 1, &v);
        math_verify(tab + 1, s, &v);
        math_opts_t o = {.strict = 0, .set_relation = 0, .lenient_decimals = 0};
        math_verify_opts(s, tab + 1, &o, &v);
    } else {
        math_verify(s, s, &v);
        math_verify("1", s, &v);
    }
    char buf[64];
    math_extract_answer(s, buf, sizeof buf);
    free(s);
    return 0;
}
