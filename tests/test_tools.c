// tests/test_tools.c — multi-turn tool use (docs/rl.md "Tool use"): call parsing (valid, malformed,
// unknown tool -> an error result, never a crash), the exact calculator, tool-output tokens masked from
// the loss and from log pi_old, multi-turn rollouts deterministic per seed and equal alone or batched,
// and a CI-sized run of configs/tools_demo.yaml that logs the tool metrics.
//   ctest --test-dir build -R test_tools    (from the source tree: it reads configs/)
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "base/common.h"
#include "datasets/synth.h"
#include "rl/rollout.h"
#include "rl/tools.h"
#include "tests/testutil.h"
#include "trainer/train.h"
#include "trainer/train_batch.h"
#include "trainer/train_data.h"

static void check_calc(const char *expr, const char *want) {
    char buf[256];
    int rc = tool_calculator(expr, buf, sizeof buf);
    if (want) test_check(rc == 0 && !strcmp(buf, want), "calculator %s = %s (got %s)", expr, want, buf);
    else test_check(rc == -1 && buf[0], "calculator %s is an error (got %s)", expr, buf);
}

static void test_parse(void) {
    const tool_format_t *h = tool_format_find("hermes"), *d = tool_format_find("demo");
    test_check(h && d && !tool_format_find("nope"), "formats hermes and demo exist, unknown ones do not");
    tool_call_t c;
    size_t end = 0;
    const char *t1 = "let me see <tool_call>\n{\"name\": \"calculator\", \"arguments\": {\"expression\": \"2+3\"}}\n</tool_call> tail";
    test_check(tool_call_parse(h, t1, &c, &end) == 1 && c.name && !strcmp(c.name, "calculator") && !strcmp(c.args, "2+3") &&
               !strcmp(t1 + end, " tail"), "hermes call parsed (name, arguments, end)");
    tool_call_free(&c);
    test_check(tool_call_parse(h, "<tool_call>{\"name\": \"calculator\"", &c, &end) == 0, "an unfinished call is no call yet");
    test_check(tool_call_parse(h, "<tool_call>{name: calculator}</tool_call>", &c, &end) == 1 && !c.name && c.args,
               "malformed JSON: a call without a name, the reason kept");
    tools_t reg;
    test_check(tools_create(&reg, "calculator, python", "", 5, 64) == 0 && reg.n == 2, "registry of two tools");
    test_check(tools_create(&reg, "calculator,shell", "", 5, 64) == -1 && strstr(cispo_last_error(), "shell"),
               "an unknown tool in the run key is refused by name");
    tools_create(&reg, "calculator,python", "", 5, 64);
    char *res;
    test_check(tools_run(&reg, &c, &res) == 1 && !strncmp(res, "error: malformed", 16), "malformed call -> error result: %s", res);
    free(res);
    tool_call_free(&c);
    test_check(tool_call_parse(d, "<<calculator 347*29+5>>", &c, &end) == 1 && !strcmp(c.name, "calculator") &&
               !strcmp(c.args, "347*29+5"), "demo call parsed");
    test_check(tools_run(&reg, &c, &res) == 0 && !strcmp(res, "10068"), "calculator runs: %s", res);
    free(res);
    tool_call_free(&c);
    tool_call_parse(d, "<<search cats>>", &c, &end);
    test_check(tools_run(&reg, &c, &res) == 1 && strstr(res, "unknown tool 'search'") && strstr(res, "calculator"),
               "unknown tool -> error result naming the tools: %s", res);
    free(res);
    tool_call_free(&c);
    tool_call_parse(d, "<<calculator 2+>>", &c, &end);
    test_check(tools_run(&reg, &c, &res) == 1 && !strncmp(res, "error: calculator", 17), "a bad expression -> error result");
    free(res);
    tool_call_free(&c);
    tool_call_parse(d, "<<python print(1)>>", &c, &end);
    test_check(tools_run(&reg, &c, &res) == 1 && strstr(res, "code_sandbox_url"), "python without a sandbox -> error result");
    free(res);
    tool_call_free(&c);
    test_check(tool_call_parse(d, "<< 2+3>>", &c, &end) == 1 && !c.name, "demo call without a name is malformed");
    tool_call_free(&c);
    char *p = tool_result_plain(d, "42");
    test_check(!strcmp(p, "\n= 42\n"), "plain result of the demo format");
    free(p);
    check_calc("347*29+5", "10068");
    check_calc("1/3+1/6", "1/2");
    check_calc("2^10 - 3*(4-1)", "1015");
    check_calc("-(2.5*4)", "-10");
    check_calc("999999999*999999999", "999999998000000001");
    check_calc("1/0", NULL);
    check_calc("2+", NULL);
    check_calc("9223372036854775807*10", NULL);
    check_calc("2 x 3", NULL);
}

// A tiny random policy and the demo tokenizer.
static model_t *tiny_model(model_config_t *cfg, float **params) {
    if (train_load_model("configs/models/tiny.yaml", 7, cfg, params)) return NULL;
    return model_create(cfg, *params, 512);
}

// Masked tokens: the forward returns log-probs of the scored tokens only, equal to the unmasked
// forward's at those positions; the backward leaves context tokens without gradient.
static void test_mask(model_t *m) {
    int32_t prompt[4] = {10, 20, 30, 40}, resp[8] = {50, 60, 70, 80, 90, 100, 110, 0};
    unsigned char mask[8] = {1, 1, 0, 0, 0, 1, 1, 1};
    train_seq_t full = {.prompt = prompt, .n_prompt = 4, .resp = resp, .n_resp = 8},
                masked = {.prompt = prompt, .n_prompt = 4, .resp = resp, .n_resp = 8, .mask = mask};
    test_check(train_seq_n_train(&masked) == 5 && train_seq_n_train(&full) == 8, "scored tokens counted");
    micro_t *mf, *mm;
    micro_plan(&full, 1, 64, &mf);
    micro_plan(&masked, 1, 64, &mm);
    test_check(mf[0].T == mm[0].T && mm[0].n_resp == 5, "context tokens are packed as inputs, not scored");
    float lf[8], lm[5], dm[5] = {1, 2, 3, 4, 5}, df[8] = {1, 2, 0, 0, 0, 3, 4, 5};
    micro_forward(m, &full, mf, lf, NULL);
    micro_forward(m, &masked, mm, lm, NULL);
    int same = 1;
    for (int j = 0, r = 0; j < 8; j++)
        if (mask[j]) same &= lm[r++] == lf[j];
    test_check(same, "masked forward = the full forward at the scored positions");
    size_t n = m->table.n_floats;
    float *g1 = cispo_malloc(n * sizeof(float));
    model_zero_grad(m);
    micro_forward(m, &full, mf, lf, NULL);
    micro_backward(m, &full, mf, df, 0);
    memcpy(g1, m->grads, n * sizeof(float));
    model_zero_grad(m);
    micro_forward(m, &masked, mm, lm, NULL);
    micro_backward(m, &masked, mm, dm, 0);
    test_check(test_max_abs_diff(g1, m->grads, n) == 0, "masked backward = full backward with zero dlogp on context");
    free(g1), free(mf), free(mm);
}

// A format whose calls a random policy writes often: a call is the text between "a" and "e".
static const tool_format_t busy = {"busy", "a", "e", TOOL_BODY_NAME_ARGS, " [", "]"};

static int equal_samples(const rollout_sample_t *a, const rollout_sample_t *b) {
    return a->n_tokens == b->n_tokens && a->stop == b->stop && a->n_tool_calls == b->n_tool_calls &&
           !memcmp(a->tokens, b->tokens, sizeof(int32_t) * (size_t)a->n_tokens) &&
           !memcmp(a->mask, b->mask, (size_t)a->n_tokens) && !memcmp(a->logp, b->logp, sizeof(float) * (size_t)a->n_tokens);
}

static void test_rollout(model_t *m, const tokenizer_t *tok) {
    tools_t reg;
    tools_create(&reg, "calculator", "", 5, 64);
    rollout_tools_t rt = {.tools = &reg, .format = &busy, .tok = tok, .max_calls = 3};
    rollout_config_t rc = {.max_new_tokens = 48, .eos_id = -1, .sampler = {.temperature = 1.5, .top_p = 1.0}, .tools = &rt};
    int32_t p0[3] = {1, 2, 3}, p1[2] = {4, 5}, p2[4] = {6, 7, 8, 9};
    const int32_t *prompts[3] = {p0, p1, p2};
    int plen[3] = {3, 2, 4};
    uint64_t seeds[3] = {sampler_rng_seed(11, 0), sampler_rng_seed(11, 1), sampler_rng_seed(11, 2)};
    rollout_sample_t a[3], b[3], one[3];
    infer_t *e2 = infer_create(m, 2, 64);  // 2 slots for 3 prompts: one waits, then joins
    test_check(rollout_generate(e2, &rc, prompts, plen, seeds, 3, a, NULL) == 0, "multi-turn rollout: %s", cispo_last_error());
    test_check(rollout_generate(e2, &rc, prompts, plen, seeds, 3, b, NULL) == 0, "again");
    infer_free(e2);
    infer_t *e1 = infer_create(m, 1, 64);
    for (int i = 0; i < 3; i++) rollout_generate(e1, &rc, prompts + i, plen + i, seeds + i, 1, &one[i], NULL);
    infer_free(e1);
    int calls = 0, det = 1, alone = 1, masked_ok = 1, ctx = 0;
    for (int i = 0; i < 3; i++) {
        calls += a[i].n_tool_calls;
        det &= equal_samples(&a[i], &b[i]);
        alone &= equal_samples(&a[i], &one[i]);
        for (int j = 0; j < a[i].n_tokens; j++)
            if (!a[i].mask[j]) masked_ok &= a[i].logp[j] == 0.0f, ctx++;
        test_check(a[i].answer_from <= a[i].n_tokens + 64, "answer_from in range");
    }
    printf("multi-turn rollout: %d tool calls, %d tool-output tokens in 3 samples\n", calls, ctx);
    test_check(calls > 0 && ctx > 0, "the random policy made tool calls and got results back");
    test_check(det, "multi-turn rollout is deterministic per seed");
    test_check(alone, "multi-turn rollout: the same samples alone or batched");
    test_check(masked_ok, "tool-output tokens carry no log pi_old (0)");
    // the tool output is the rendered result, token for token
    int found = 0;
    for (int i = 0; i < 3 && !found; i++) {
        int j = 0;
        while (j < a[i].n_tokens && a[i].mask[j]) j++;
        if (j == a[i].n_tokens) continue;
        int k = j;
        while (k < a[i].n_tokens && !a[i].mask[k]) k++;
        char *txt = tokenizer_decode(tok, a[i].tokens + j, (size_t)(k - j), TOKENIZER_LOSSY, NULL);
        found = txt && !strncmp(txt, " [error: ", 9) && txt[strlen(txt) - 1] == ']';
        if (!found) printf("  tool output: \"%s\"\n", txt ? txt : "");
        free(txt);
    }
    test_check(found, "a tool output is the plain-rendered error result of a malformed or unknown call");
    // single turn: no mask, no tool fields
    rc.tools = NULL;
    rollout_sample_t s;
    infer_t *e = infer_create(m, 1, 64);
    rollout_generate(e, &rc, prompts, plen, seeds, 1, &s, NULL);
    infer_free(e);
    test_check(!s.mask && !s.n_tool_calls && !s.answer_from, "without tools the rollout is single-turn");
    rollout_sample_free(&s);
    for (int i = 0; i < 3; i++) rollout_sample_free(&a[i]), rollout_sample_free(&b[i]), rollout_sample_free(&one[i]);
}

// The demonstration tokenizes as the rollout builds it: policy text, the tool's result, policy text.
static void test_demo_tokens(const tokenizer_t *tok) {
    data_record_t r;
    int checked = 0, same = 1;
    for (uint64_t k = 0; k < 200; k++) {
        synth_arith_tools(1, k, &r);
        const char *close = strstr(r.response, ">>");
        if (close) {
            const char *ans = strstr(r.response, "The answer");
            token_ids_t whole = {0}, parts = {0};
            tokenizer_encode(tok, r.response, strlen(r.response), &whole, 0);
            tokenizer_encode(tok, r.response, (size_t)(close + 2 - r.response), &parts, 0);
            tokenizer_encode(tok, close + 2, (size_t)(ans - close - 2), &parts, 0);
            tokenizer_encode(tok, ans, strlen(ans), &parts, 0);
            same &= whole.n == parts.n && !memcmp(whole.ids, parts.ids, sizeof(int32_t) * whole.n);
            checked++;
            token_ids_free(&whole), token_ids_free(&parts);
        }
        record_free(&r);
    }
    test_check(checked > 20 && same, "tool demonstrations tokenize as policy text + result + answer (%d checked)", checked);
}

// SFT on tool demonstrations: the tool's result inside a demonstration is context (mask 0), exactly
// the tokens "\n= value\n" the rollout feeds back; the call and the answer are trained. A result that
// is not what the tool returns stays trained (it is the demonstrator's text, not the tool's).
static void test_demo_mask(const tokenizer_t *tok) {
    tools_t reg;
    tools_create(&reg, "calculator", "", 5, 64);
    rollout_tools_t tl = {.tools = &reg, .format = tool_format_find("demo")};
    train_example_t ex[2];
    memset(ex, 0, sizeof ex);
    ex[0].prompt = cispo_strdup("Compute 347*29+5.");
    ex[0].demo = cispo_strdup("<<calculator 347*29+5>>\n= 10068\nThe answer is \\boxed{10068}.");
    ex[1].prompt = cispo_strdup("Compute 2+3.");
    ex[1].demo = cispo_strdup("<<calculator 2+3>>\n= 6\nThe answer is \\boxed{6}.");  // not the tool's result
    train_set_t set = {ex, 2};
    if (!test_check(train_set_tokenize(&set, tok, 0, 256, &tl) == 0, "tokenize: %s", cispo_last_error())) return;
    const train_example_t *e = &ex[0];
    int ok = e->demo_mask != NULL, zeros = 0, first0 = -1;
    for (int j = 0; ok && j < e->n_demo; j++)
        if (!e->demo_mask[j]) zeros++, first0 = first0 < 0 ? j : first0;
    char *res = ok && zeros ? tokenizer_decode(tok, e->demo_ids + first0, (size_t)zeros, 0, NULL) : NULL;
    test_check(res && !strcmp(res, "\n= 10068\n"), "the masked tokens are the tool's result (%s)", res ? res : "none");
    test_check(ok && e->demo_mask[e->n_demo - 1] == 1 && e->demo_mask[0] == 1, "the call, the answer and EOS are trained");
    test_check(ex[1].demo_mask == NULL, "a result the tool would not give is the demonstrator's text: trained");
    free(res);
    // the packed SFT batch scores the trained tokens only
    train_seq_t q = {.prompt = e->ids, .n_prompt = e->n_ids, .resp = e->demo_ids, .n_resp = e->n_demo,
                     .mask = e->demo_mask};
    test_check(train_seq_n_train(&q) == e->n_demo - zeros, "SFT scores %d of %d demonstration tokens",
               train_seq_n_train(&q), e->n_demo);
    for (int i = 0; i < 2; i++)
        free(ex[i].prompt), free(ex[i].demo), free(ex[i].ids), free(ex[i].demo_ids), free(ex[i].demo_mask);
}

// A CI-sized run of configs/tools_demo.yaml: SFT, then RL steps that log the tool metrics.
static void test_demo_config(void) {
    run_config_t c;
    char *ov[] = {"model=configs/models/tiny.yaml", "tokenizer=configs/tokenizers/demo/tokenizer.json", "sft_steps=30",
                  "steps=2", "eval_size=10", "train_size=400", "reward_workers=0", "prompts_per_step=4"};
    if (!test_check(run_config_load(&c, "configs/tools_demo.yaml", ov, 8) == 0, "tools_demo.yaml loads: %s", cispo_last_error()))
        return;
    train_t t;
    if (!test_check(train_open(&t, &c) == 0, "train_open: %s", cispo_last_error())) return;
    metrics_t mt = {0};
    int ok = 1;
    for (int i = 0; i < c.sft_steps && ok; i++) ok = train_sft_step(&t, &mt) == 0;
    double acc;
    ok = ok && train_evaluate(&t, &acc, NULL) == 0;
    for (int i = 0; i < c.steps && ok; i++) ok = train_rl_step(&t, &mt) == 0;
    test_check(ok, "the tool demo trains: %s", ok ? "" : cispo_last_error());
    double rate = metrics_get(&mt, "tool_use_rate", -1), calls = metrics_get(&mt, "tool_calls_per_sample", -1);
    printf("tools demo (CI size): tool_use_rate %.3f, tool_calls_per_sample %.3f, tool_errors %.0f, accuracy %.3f\n", rate,
           calls, metrics_get(&mt, "tool_errors", -1), metrics_get(&mt, "accuracy", -1));
    test_check(rate >= 0 && rate <= 1 && calls >= rate && metrics_get(&mt, "tool_errors", -1) >= 0,
               "tool metrics logged per step");
    train_close(&t);
}

int main(void) {
    test_parse();
    model_config_t cfg;
    float *params = NULL;
    model_t *m = tiny_model(&cfg, &params);
    tokenizer_t *tok = tokenizer_load("configs/tokenizers/demo/tokenizer.json");
    if (test_check(m && tok, "tiny model and demo tokenizer: %s", cispo_last_error())) {
        test_mask(m);
        test_rollout(m, tok);
        test_demo_tokens(tok);
        test_demo_mask(tok);
    }
    if (m) model_free(m);
    free(params);
    if (tok) tokenizer_free(tok);
    test_demo_config();
    return test_finish("test_tools");
}
