// datasets/synth.c — the synthetic arithmetic task and its tool-use variant (see datasets/synth.h for
// the formats and the difficulty levels).
#include "datasets/synth.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/common.h"
#include "base/rng.h"

#define MAX_OPS 4

static int uniform(uint64_t *s, int lo, int hi) { return lo + (int)rng_below(s, (uint64_t)(hi - lo + 1)); }

// Writes nums[0] ops[0] nums[1] ... into w (no spaces); returns the length written.
static int write_expr(char *w, const long *nums, const char *ops, int n_ops) {
    int k = sprintf(w, "%ld", nums[0]);
    for (int i = 0; i < n_ops; i++) k += sprintf(w + k, "%c%ld", ops[i], nums[i + 1]);
    return k;
}

void synth_arith(uint64_t seed, uint64_t index, int dmin, int dmax, data_record_t *out) {
    memset(out, 0, sizeof *out);
    // One independent stream per (seed, index): any record can be regenerated alone.
    uint64_t s = seed * 0xD1B54A32D192ED03ull ^ (index + 1) * 0x9E3779B97F4A7C15ull;
    rng_next(&s);
    if (dmin < 1) dmin = 1;
    if (dmax > SYNTH_ARITH_MAX_DIFFICULTY) dmax = SYNTH_ARITH_MAX_DIFFICULTY;
    if (dmax < dmin) dmax = dmin;
    int d = uniform(&s, dmin, dmax);
    int n_ops = d + 1 < MAX_OPS ? d + 1 : MAX_OPS;
    int top = d <= 2 ? 9 : d <= 4 ? 19 : 99;
    long nums[MAX_OPS + 1];
    char ops[MAX_OPS] = {0};
    for (int i = 0; i <= n_ops; i++) nums[i] = uniform(&s, 1, top);
    // At d <= 2 one multiplication at most, so every intermediate value stays within two digits
    // (-89..99): a product of single digits is a fact a tiny model can memorise, a product of products is not.
    int n_mul = 0;
    for (int i = 0; i < n_ops; i++) {
        ops[i] = "+-*"[uniform(&s, 0, d <= 2 && n_mul ? 1 : 2)];
        n_mul += ops[i] == '*';
    }

    char prompt[128], resp[1024], *w = resp;
    int k = sprintf(prompt, "Compute ");
    k += write_expr(prompt + k, nums, ops, n_ops);
    strcpy(prompt + k, ".");
    // The worked chain: the leftmost '*' first, else the leftmost operation; one per line.
    int n = n_ops;
    while (n > 0) {
        int at = 0;
        for (int i = 0; i < n; i++)
            if (ops[i] == '*') { at = i; break; }
        long a = nums[at], b = nums[at + 1];
        long v = ops[at] == '*' ? a * b : ops[at] == '+' ? a + b : a - b;
        nums[at] = v;
        memmove(&nums[at + 1], &nums[at + 2], (size_t)(n - at - 1) * sizeof *nums);
        memmove(&ops[at], &ops[at + 1], (size_t)(n - at - 1));
        n--;
        w += sprintf(w, "= ");
        w += write_expr(w, nums, ops, n);
        w += sprintf(w, "\n");
    }
    sprintf(w, "The answer is \\boxed{%ld}.", nums[0]);

    char id[64], answer[32], meta[128];
    snprintf(id, sizeof id, "arith-%016llx", (unsigned long long)rng_mix64(rng_fnv1a_str(prompt)));
    snprintf(answer, sizeof answer, "%ld", nums[0]);
    snprintf(meta, sizeof meta, "{\"task\":\"arith\",\"difficulty\":%d,\"ops\":%d}", d, n_ops);
    out->id = cispo_strdup(id);
    out->prompt = cispo_strdup(prompt);
    out->verifier = cispo_strdup("math");
    out->answer = cispo_strdup(answer);
    out->response = cispo_strdup(resp);
    out->meta_json = cispo_strdup(meta);
}

// The value of nums/ops with * before + and - (left to right).
static long eval_expr(const long *nums, const char *ops, int n_ops) {
    long sum = 0, term = nums[0];
    int sign = 1;
    for (int i = 0; i < n_ops; i++) {
        if (ops[i] == '*') {
            term *= nums[i + 1];
            continue;
        }
        sum += sign * term;
        sign = ops[i] == '+' ? 1 : -1;
        term = nums[i + 1];
    }
    return sum + sign * term;
}

void synth_arith_tools(uint64_t seed, uint64_t index, data_record_t *out) {
    memset(out, 0, sizeof *out);
    uint64_t s = seed * 0xA24BAED4963EE407ull ^ (index + 1) * 0x9FB21C651E98DF25ull;
    rng_next(&s);
    int n_ops = uniform(&s, 1, 2);
    long nums[3] = {0, 0, 0};
    char ops[2] = {'+', '+'};
    for (int i = 0; i <= n_ops; i++) nums[i] = uniform(&s, 10, 999);
    for (int i = 0; i < n_ops; i++) ops[i] = "+-*"[uniform(&s, 0, 2)];
    int use_tool = rng_unit(rng_next(&s)) < SYNTH_TOOLS_DEMO_FRAC;
    long v = eval_expr(nums, ops, n_ops);

    char expr[64], prompt[96], resp[256], id[64], answer[32], meta[128];
    write_expr(expr, nums, ops, n_ops);
    snprintf(prompt, sizeof prompt, "Compute %s.", expr);
    if (use_tool)
        snprintf(resp, sizeof resp, "<<calculator %s>>\n= %ld\nThe answer is \\boxed{%ld}.", expr, v, v);
    else
        snprintf(resp, sizeof resp, "The answer is \\boxed{%ld}.", v);
    snprintf(id, sizeof id, "arith-tools-%016llx", (unsigned long long)rng_mix64(rng_fnv1a_str(prompt)));
    snprintf(answer, sizeof answer, "%ld", v);
    snprintf(meta, sizeof meta, "{\"task\":\"arith_tools\",\"ops\":%d,\"tool_demo\":%s}", n_ops,
             use_tool ? "true" : "false");
    out->id = cispo_strdup(id);
    out->prompt = cispo_strdup(prompt);
    out->verifier = cispo_strdup("math");
    out->answer = cispo_strdup(answer);
    out->response = cispo_strdup(resp);
    out->meta_json = cispo_strdup(meta);
}
