// tests/test_datasets.c — data records and JSONL loading (datasets/): our records and verl-style
// records, every kind of bad line (reported as file:line with the key), shuffling by seed, sharding
// by rank, the held-out split by id hash, the plain prompt template, and the synthetic arithmetic
// task (answers re-derived here by an independent evaluator; `cispo gen-data` splits disjoint).
// Run: build/test_datasets (from the repo root; CISPO_BIN names the cispo binary for the CLI part).
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/common.h"
#include "datasets/dataset.h"
#include "datasets/synth.h"
#include "model/chat_template.h"
#include <cjson/cJSON.h>
#include "tests/testutil.h"

static char tmpdir[] = "/tmp/cispo_test_datasets_XXXXXX";

static const char *write_file(const char *name, const char *text) {
    static char path[4][512];
    static int k = 0;
    char *p = path[k++ % 4];
    snprintf(p, 512, "%s/%s", tmpdir, name);
    FILE *f = fopen(p, "w");
    fputs(text, f);
    fclose(f);
    return p;
}

static int streq(const char *a, const char *b) { return a && b && !strcmp(a, b); }

static void test_records(void) {
    const char *text =
        "{\"id\": \"a1\", \"prompt\": \"Compute 2+3.\", \"verifier\": \"math\", \"answer\": \"5\", \"meta\": {\"level\": 1}}\n"
        "\n"
        "{\"id\": 7, \"messages\": [{\"role\": \"system\", \"content\": \"Be brief.\"}, {\"role\": \"user\", \"content\": \"Hi?\"}],"
        " \"verifier\": \"exact\", \"answer\": 42}\n"
        "{\"id\": \"c1\", \"prompt\": [{\"role\": \"user\", \"content\": \"Add two numbers.\"}], \"verifier\": \"code\","
        " \"tests\": [{\"stdin\": \"1 2\\n\", \"stdout\": \"3\\n\"}], \"fn_name\": null}\n"
        "   \n"
        "{\"prompt\": \"Say yes.\", \"verifier\": \"regex\", \"answer\": \"^yes$\", \"response\": \"yes\"}\n"
        "{\"id\": \"inf\", \"prompt\": \"Square of 3?\", \"answer\": \"9\"}\n"
        "{\"id\": \"inf2\", \"prompt\": \"Echo\", \"tests\": [{\"input\": [1], \"output\": 1}], \"fn_name\": \"echo\"}\n";
    const char *path = write_file("good.jsonl", text);
    dataset_t d;
    dataset_opts_t o = dataset_opts_default();
    int rc = dataset_load(path, &o, &d);
    if (!test_check(rc == 0, "good file loads: %s", datasets_last_error())) return;
    test_check(d.n == 6 && d.n_read == 6, "6 records (blank lines skipped), got %zu", d.n);
    data_record_t *r = d.recs;
    test_check(streq(r[0].id, "a1") && streq(r[0].prompt, "Compute 2+3.") && streq(r[0].verifier, "math") &&
               streq(r[0].answer, "5") && streq(r[0].meta_json, "{\"level\":1}"), "record 1 fields");
    test_check(streq(r[1].id, "7") && !r[1].prompt && r[1].n_messages == 2 && streq(r[1].messages[0].role, "system") &&
               streq(r[1].messages[1].content, "Hi?") && streq(r[1].answer, "42") && streq(r[1].verifier, "exact"),
               "record 2: numeric id and answer, messages key");
    test_check(streq(r[2].verifier, "code") && r[2].n_messages == 1 && r[2].tests_json &&
               strstr(r[2].tests_json, "\"stdout\":\"3\\n\"") && !r[2].fn_name, "record 3: code tests, prompt as messages");
    test_check(streq(r[3].id, "good.jsonl:6") && streq(r[3].response, "yes") && streq(r[3].answer, "^yes$"),
               "record 4: id from file:line (%s), response", r[3].id);
    test_check(streq(r[4].verifier, "math"), "an answer without a verifier means math (%s)", r[4].verifier);
    test_check(streq(r[5].verifier, "code") && streq(r[5].fn_name, "echo"), "tests without a verifier mean code");

    // Template: text and single user message alike; a conversation gets role labels.
    char *t0 = record_prompt_text(&r[0]), *t1 = record_prompt_text(&r[1]), *t2 = record_prompt_text(&r[2]);
    test_check(streq(t0, "Compute 2+3.\n"), "template of a text prompt: '%s'", t0);
    test_check(streq(t1, "System: Be brief.\nUser: Hi?\nAssistant:\n"), "template of a conversation: '%s'", t1);
    test_check(streq(t2, "Add two numbers.\n"), "template of a single user message: '%s'", t2);
    free(t0); free(t1); free(t2);

    // JSON round trip.
    for (size_t i = 0; i < d.n; i++) {
        char *js = record_to_json(&r[i]);
        data_record_t b;
        int ok = record_parse_line(js, "roundtrip", "x", &b) == 0;
        ok = ok && streq(b.id, r[i].id) && streq(b.verifier, r[i].verifier) && b.n_messages == r[i].n_messages &&
             (!r[i].prompt || streq(b.prompt, r[i].prompt)) && (!r[i].answer || streq(b.answer, r[i].answer)) &&
             (!r[i].tests_json || streq(b.tests_json, r[i].tests_json)) && (!r[i].meta_json || streq(b.meta_json, r[i].meta_json));
        test_check(ok, "record %zu survives record_to_json and back: %s", i, js);
        if (ok) record_free(&b);
        free(js);
    }
    dataset_free(&d);
}

// Tool use in a conversation: an assistant turn with tool_calls (content null), a tool turn with its call id,
// the record's tool definitions; every field survives record_to_json and reaches a chat template.
static void test_tool_messages(void) {
    const char *line =
        "{\"id\": \"t1\", \"answer\": \"8\", \"tools\": [{\"type\": \"function\", \"function\": {\"name\": \"calc\", "
        "\"parameters\": {\"type\": \"object\"}}}], \"messages\": [{\"role\": \"user\", \"content\": \"3+5?\"}, "
        "{\"role\": \"assistant\", \"content\": null, \"tool_calls\": [{\"id\": \"c1\", \"type\": \"function\", "
        "\"function\": {\"name\": \"calc\", \"arguments\": {\"expr\": \"3+5\"}}}]}, "
        "{\"role\": \"tool\", \"tool_call_id\": \"c1\", \"name\": \"calc\", \"content\": \"8\"}]}";
    data_record_t r;
    if (!test_check(record_parse_line(line, "tools.jsonl", "1", &r) == 0, "tool-use record parses: %s", datasets_last_error()))
        return;
    test_check(r.n_messages == 3 && streq(r.messages[1].role, "assistant") && streq(r.messages[1].content, "") &&
                   r.messages[1].json && strstr(r.messages[1].json, "\"tool_calls\"") && streq(r.messages[2].role, "tool") &&
                   r.messages[2].json && strstr(r.messages[2].json, "\"tool_call_id\":\"c1\"") && !r.messages[0].json &&
                   r.tools_json && strstr(r.tools_json, "\"calc\""),
               "assistant tool_calls, the tool turn's fields and the tool definitions are kept");
    char *txt = record_prompt_text(&r);
    test_check(streq(txt, "User: 3+5?\nAssistant: \nTool: 8\nAssistant:\n"), "plain template labels the tool turn: '%s'", txt);
    free(txt);
    char *js = record_to_json(&r);
    data_record_t b;
    int ok = record_parse_line(js, "roundtrip", "1", &b) == 0;
    test_check(ok && b.n_messages == 3 && streq(b.messages[1].json, r.messages[1].json) &&
                   streq(b.messages[2].json, r.messages[2].json) && streq(b.tools_json, r.tools_json),
               "tool-use record survives record_to_json and back: %s", js);
    // a chat template sees the calls, the call id and the tools
    chat_template_t *ct = chat_template_from_string(
        "{% for t in tools %}[tool {{ t.function.name }}]{% endfor %}{% for m in messages %}<{{ m.role }}>"
        "{% if m.tool_calls %}{% for c in m.tool_calls %}call {{ c.function.name }}({{ c.function.arguments.expr }})"
        "{% endfor %}{% elif m.role == 'tool' %}{{ m.tool_call_id }}={{ m.content }}{% else %}{{ m.content }}{% endif %}"
        "{% endfor %}",
        "test");
    cJSON *msgs = cJSON_CreateArray(), *tools = cJSON_Parse(r.tools_json);
    for (int i = 0; i < r.n_messages; i++) cJSON_AddItemToArray(msgs, record_message_json(&r.messages[i]));
    char *out = ct ? chat_template_render(ct, msgs, tools, 0, NULL) : NULL;
    test_check(out && streq(out, "[tool calc]<user>3+5?<assistant>call calc(3+5)<tool>c1=8"), "template renders the calls: '%s'",
               out ? out : cispo_last_error());
    free(out);
    cJSON_Delete(msgs), cJSON_Delete(tools);
    chat_template_free(ct);
    if (ok) record_free(&b);
    free(js);
    record_free(&r);
}

static void test_verl(void) {
    const char *text =
        "{\"data_source\": \"openai/gsm8k\", \"prompt\": [{\"role\": \"user\", \"content\": \"Natalia sold 48 clips...\"}],"
        " \"ability\": \"math\", \"reward_model\": {\"ground_truth\": \"72\", \"style\": \"rule\"},"
        " \"extra_info\": {\"index\": 0, \"split\": \"train\"}}\n"
        "{\"data_source\": \"codecontests\", \"prompt\": [{\"role\": \"user\", \"content\": \"Read n, print n+1.\"}],"
        " \"reward_model\": {\"ground_truth\": \"{\\\"inputs\\\": [\\\"1\\\\n\\\", \\\"5\\\\n\\\"], \\\"outputs\\\": [\\\"2\\\\n\\\", \\\"6\\\\n\\\"]}\", \"style\": \"rule\"}}\n"
        "{\"data_source\": \"chat\", \"prompt\": [{\"role\": \"user\", \"content\": \"Write a poem.\"}],"
        " \"reward_model\": {\"ground_truth\": \"a good poem\", \"style\": \"model\"}}\n"
        "{\"data_source\": \"aime\", \"prompt\": [{\"role\": \"user\", \"content\": \"Find x.\"}],"
        " \"reward_model\": {\"ground_truth\": 204, \"style\": \"rule\"}}\n";
    const char *path = write_file("verl.jsonl", text);
    dataset_t d;
    dataset_opts_t o = dataset_opts_default();
    if (!test_check(dataset_load(path, &o, &d) == 0, "verl file loads: %s", datasets_last_error())) return;
    data_record_t *r = d.recs;
    test_check(d.n == 4, "4 verl records");
    test_check(streq(r[0].verifier, "math") && streq(r[0].answer, "72") && streq(r[0].data_source, "openai/gsm8k") &&
               r[0].n_messages == 1 && r[0].meta_json && strstr(r[0].meta_json, "\"split\":\"train\""),
               "verl math: ground truth -> answer, extra_info -> meta");
    test_check(streq(r[1].verifier, "code") && r[1].tests_json &&
               streq(r[1].tests_json, "[{\"stdin\":\"1\\n\",\"stdout\":\"2\\n\"},{\"stdin\":\"5\\n\",\"stdout\":\"6\\n\"}]"),
               "verl code: inputs/outputs -> tests (%s)", r[1].tests_json ? r[1].tests_json : "null");
    test_check(streq(r[2].verifier, "genrm") && streq(r[2].answer, "a good poem"), "verl style model -> genrm");
    test_check(streq(r[3].answer, "204"), "numeric ground truth -> \"204\"");
    test_check(streq(r[0].id, "verl.jsonl:1"), "a verl record without id gets file:line (%s)", r[0].id);
    dataset_free(&d);
}

static void test_bad_lines(void) {
    struct { const char *line, *want; } cases[] = {
        {"{\"id\": \"x\", \"prompt\": \"p\", \"answer\": \"1\"", "not valid JSON"},
        {"[1, 2]", "not a JSON object"},
        {"{\"id\": \"x\", \"answer\": \"1\"}", "key 'prompt': missing"},
        {"{\"id\": \"x\", \"prompt\": 5, \"answer\": \"1\"}", "key 'prompt': expected"},
        {"{\"id\": \"x\", \"prompt\": \"p\", \"verifier\": \"magic\", \"answer\": \"1\"}", "key 'verifier': 'magic'"},
        {"{\"id\": \"x\", \"prompt\": \"p\", \"verifier\": \"math\"}", "key 'answer': missing"},
        {"{\"id\": \"x\", \"prompt\": \"p\", \"verifier\": \"code\"}", "key 'tests': missing"},
        {"{\"id\": \"x\", \"prompt\": \"p\"}", "key 'verifier': missing"},
        {"{\"id\": \"x\", \"prompt\": [{\"role\": \"robot\", \"content\": \"hi\"}], \"answer\": \"1\"}", "key 'prompt[0].role'"},
        {"{\"id\": \"x\", \"prompt\": [], \"answer\": \"1\"}", "key 'prompt': the message list is empty"},
        {"{\"id\": \"x\", \"prompt\": [{\"role\": \"user\", \"content\": null}], \"answer\": \"1\"}", "key 'prompt[0].content'"},
        {"{\"id\": \"x\", \"prompt\": [{\"role\": \"user\", \"content\": \"q\"}, {\"role\": \"assistant\", \"tool_calls\": 3}], "
         "\"answer\": \"1\"}", "key 'prompt[1].content'"},
        {"{\"id\": \"x\", \"prompt\": [{\"role\": \"user\", \"content\": \"q\"}, {\"role\": \"assistant\", \"content\": \"a\", "
         "\"tool_calls\": {}}], \"answer\": \"1\"}", "key 'prompt[1].tool_calls'"},
        {"{\"id\": \"x\", \"prompt\": \"p\", \"answer\": \"1\", \"tools\": {\"name\": \"f\"}}", "key 'tools'"},
        {"{\"id\": \"x\", \"prompt\": \"p\", \"tests\": [{\"stdin\": \"1\"}]}", "key 'tests[0]'"},
        {"{\"id\": [1], \"prompt\": \"p\", \"answer\": \"1\"}", "key 'id'"},
        {"{\"id\": \"x\", \"prompt\": \"p\", \"answer\": \"1\", \"meta\": 3}", "key 'meta'"},
        {"{\"prompt\": [{\"role\": \"user\", \"content\": \"q\"}], \"reward_model\": {\"ground_truth\": \"1\", \"style\": \"vibes\"}}",
         "key 'reward_model.style'"},
        {"{\"data_source\": \"apps\", \"prompt\": [{\"role\": \"user\", \"content\": \"q\"}], \"reward_model\": {\"ground_truth\": \"not json\"}}",
         "key 'reward_model.ground_truth'"},
    };
    const char *good = "{\"id\": \"g%d\", \"prompt\": \"p\", \"answer\": \"1\"}\n";
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        // Two good lines, a blank line, then the bad one at line 4.
        char text[2048];
        int k = snprintf(text, sizeof text, good, 1);
        k += snprintf(text + k, sizeof text - (size_t)k, good, 2);
        snprintf(text + k, sizeof text - (size_t)k, "\n%s\n", cases[i].line);
        const char *path = write_file("bad.jsonl", text);
        dataset_t d;
        dataset_opts_t o = dataset_opts_default();
        int rc = dataset_load(path, &o, &d);
        char where[600];
        snprintf(where, sizeof where, "%s:4: ", path);
        const char *err = datasets_last_error();
        test_check(rc == -1 && strstr(err, where) && strstr(err, cases[i].want) && !strchr(err, '\n'),
                   "bad line %zu: error '%s' names %s and '%s'", i, err, where, cases[i].want);
    }
    const char *dup = write_file("dup.jsonl", "{\"id\": \"a\", \"prompt\": \"p\", \"answer\": \"1\"}\n"
                                              "{\"id\": \"b\", \"prompt\": \"p\", \"answer\": \"1\"}\n"
                                              "{\"id\": \"a\", \"prompt\": \"q\", \"answer\": \"2\"}\n");
    dataset_t d;
    dataset_opts_t o = dataset_opts_default();
    char where[600];
    snprintf(where, sizeof where, "%s:3: key 'id': 'a' is already the id of line 1", dup);
    test_check(dataset_load(dup, &o, &d) == -1 && strstr(datasets_last_error(), where), "duplicate id: '%s'",
               datasets_last_error());
    test_check(dataset_load("/nonexistent/x.jsonl", &o, &d) == -1 && strstr(datasets_last_error(), "/nonexistent/x.jsonl"),
               "missing file named: %s", datasets_last_error());
    o.rank = 3, o.world = 2;
    test_check(dataset_load(dup, &o, &d) == -1 && strstr(datasets_last_error(), "rank 3 of world 2"), "bad shard refused");
}

// A file of n numbered records for the order tests.
static const char *numbered_file(int n) {
    size_t cap = (size_t)n * 64 + 1;
    char *text = malloc(cap), *w = text;
    for (int i = 0; i < n; i++) w += sprintf(w, "{\"id\": \"r%d\", \"prompt\": \"p%d\", \"answer\": \"%d\"}\n", i, i, i);
    const char *p = write_file("num.jsonl", text);
    free(text);
    return p;
}

static int id_num(const data_record_t *r) { return atoi(r->id + 1); }

static void test_shuffle_shard_split(void) {
    const int N = 2000;
    const char *path = numbered_file(N);
    dataset_opts_t o = dataset_opts_default();
    dataset_t a, b, c;
    o.shuffle = 1, o.seed = 11;
    dataset_load(path, &o, &a);
    dataset_load(path, &o, &b);
    o.seed = 12;
    dataset_load(path, &o, &c);
    int same_ab = a.n == b.n, same_ac = 1, moved = 0;
    int *seen = calloc((size_t)N, sizeof(int));
    for (size_t i = 0; i < a.n; i++) {
        same_ab &= id_num(&a.recs[i]) == id_num(&b.recs[i]);
        same_ac &= id_num(&a.recs[i]) == id_num(&c.recs[i]);
        moved += id_num(&a.recs[i]) != (int)i;
        seen[id_num(&a.recs[i])]++;
    }
    int perm = a.n == (size_t)N;
    for (int i = 0; i < N; i++) perm &= seen[i] == 1;
    test_check(same_ab, "same seed, same order");
    test_check(!same_ac, "another seed, another order");
    test_check(perm, "the shuffle is a permutation");
    test_check(moved > N * 9 / 10, "the shuffle moves most records (%d of %d)", moved, N);

    // Shards of world 3 after the same shuffle: disjoint, covering, interleaved from the shuffled order.
    memset(seen, 0, (size_t)N * sizeof(int));
    size_t sizes[3];
    int order_ok = 1;
    for (int r = 0; r < 3; r++) {
        dataset_t s;
        o.seed = 11, o.rank = r, o.world = 3;
        dataset_load(path, &o, &s);
        sizes[r] = s.n;
        for (size_t i = 0; i < s.n; i++) {
            seen[id_num(&s.recs[i])]++;
            order_ok &= id_num(&s.recs[i]) == id_num(&a.recs[i * 3 + (size_t)r]);
        }
        dataset_free(&s);
    }
    int cover = 1;
    for (int i = 0; i < N; i++) cover &= seen[i] == 1;
    test_check(cover, "3 shards are disjoint and cover the data");
    test_check(sizes[0] == 667 && sizes[1] == 667 && sizes[2] == 666, "shard sizes 667/667/666 (%zu/%zu/%zu)", sizes[0],
               sizes[1], sizes[2]);
    test_check(order_ok, "shard r holds records r, r+3, ... of the shuffled order");

    // Held-out split: by id hash, disjoint, covering, about heldout_frac, independent of seed and shard.
    dataset_t tr, ho;
    o = dataset_opts_default();
    o.split = DATASET_SPLIT_TRAIN;
    dataset_load(path, &o, &tr);
    o.split = DATASET_SPLIT_HELDOUT;
    dataset_load(path, &o, &ho);
    memset(seen, 0, (size_t)N * sizeof(int));
    int hash_ok = 1;
    for (size_t i = 0; i < tr.n; i++) seen[id_num(&tr.recs[i])]++, hash_ok &= !dataset_is_heldout(tr.recs[i].id, 0.1);
    for (size_t i = 0; i < ho.n; i++) seen[id_num(&ho.recs[i])] += 2, hash_ok &= dataset_is_heldout(ho.recs[i].id, 0.1);
    cover = 1;
    for (int i = 0; i < N; i++) cover &= seen[i] == 1 || seen[i] == 2;
    test_check(cover && tr.n + ho.n == (size_t)N, "train and heldout partition the data (%zu + %zu)", tr.n, ho.n);
    test_check(hash_ok, "each record is on the side its id hash says");
    // Binomial(2000, 0.1): mean 200, sd 13.4; 140..260 is a 4.5-sigma band.
    test_check(ho.n >= 140 && ho.n <= 260, "held-out fraction near 0.1: %zu of %d", ho.n, N);
    test_check(tr.n_read == (size_t)N, "n_read counts the file (%zu)", tr.n_read);
    int stable = 1;
    for (size_t i = 0; i < ho.n; i++) stable &= dataset_is_heldout(ho.recs[i].id, 0.1) == 1;
    test_check(stable && dataset_is_heldout("r0", 0.0) == 0 && dataset_is_heldout("r0", 1.0) == 1, "frac 0 and 1 are exact");
    dataset_free(&tr); dataset_free(&ho);
    dataset_free(&a); dataset_free(&b); dataset_free(&c);
    free(seen);
}

// Independent evaluator: multiplication first, then + and - left to right.
static long eval_expr(const char *s, int *ok) {
    long nums[16];
    char ops[16];
    int n = 0, k = 0;
    char *end;
    nums[n++] = strtol(s, &end, 10);
    *ok = end != s;
    s = end;
    while (*s == '+' || *s == '-' || *s == '*') {
        ops[k++] = *s++;
        nums[n++] = strtol(s, &end, 10);
        if (end == s) *ok = 0;
        s = end;
    }
    long terms[16];
    char sign[16];
    int t = 0;
    terms[0] = nums[0];
    for (int i = 0; i < k; i++) {
        if (ops[i] == '*') terms[t] *= nums[i + 1];
        else { sign[t++] = ops[i]; terms[t] = nums[i + 1]; }
    }
    long v = terms[0];
    for (int i = 0; i < t; i++) v = sign[i] == '+' ? v + terms[i + 1] : v - terms[i + 1];
    return v;
}

static void test_synth(void) {
    int bad_answer = 0, bad_chain = 0, one_step = 1, bounded = 1, n = 3000;
    int count_ops[5] = {0};
    for (int i = 0; i < n; i++) {
        data_record_t r;
        synth_arith(42, (uint64_t)i, 1, 2, &r);
        int ok;
        long v = eval_expr(r.prompt + strlen("Compute "), &ok);
        char want[64];
        snprintf(want, sizeof want, "%ld", v);
        bad_answer += !ok || !streq(r.answer, want);
        // Every "= expr" line evaluates to the answer and has one operation fewer than the line above.
        int prev_ops = 0;
        for (const char *c = r.prompt; *c; c++) prev_ops += (*c == '+' || *c == '*' || (*c == '-' && c[-1] >= '0' && c[-1] <= '9'));
        count_ops[prev_ops < 5 ? prev_ops : 4]++;
        const char *line = r.response;
        while (!strncmp(line, "= ", 2)) {
            long lv = eval_expr(line + 2, &ok);
            bad_chain += !ok || lv != v;
            int ops = 0;
            const char *e = strchr(line, '\n');
            for (const char *c = line + 3; c < e; c++) ops += (*c == '+' || *c == '*' || (*c == '-' && c[-1] >= '0' && c[-1] <= '9'));
            // Values: digit runs, negative only at the start of the line (elsewhere '-' is an operator).
            for (const char *c = line + 2; c < e;) {
                int neg = c == line + 2 && *c == '-';
                if (neg) c++;
                if (*c < '0' || *c > '9') { c++; continue; }
                long x = 0;
                while (c < e && *c >= '0' && *c <= '9') x = 10 * x + (*c++ - '0');
                bounded &= (neg ? -x : x) >= -89 && (neg ? -x : x) <= 99;
            }
            one_step &= ops == prev_ops - 1;
            prev_ops = ops;
            line = e + 1;
        }
        char tail[64];
        snprintf(tail, sizeof tail, "The answer is \\boxed{%ld}.", v);
        bad_chain += strcmp(line, tail) != 0 || prev_ops != 0;
        data_record_t again;
        synth_arith(42, (uint64_t)i, 1, 2, &again);
        one_step &= streq(again.response, r.response) && streq(again.id, r.id);
        record_free(&again);
        record_free(&r);
    }
    test_check(bad_answer == 0, "every answer matches an independent evaluation (%d wrong of %d)", bad_answer, n);
    test_check(bad_chain == 0, "every chain line equals the answer and ends in \\boxed{} (%d bad)", bad_chain);
    test_check(one_step, "each chain line does one operation; same (seed, index) gives the same record");
    test_check(bounded, "difficulty 1-2 keeps every value within -89..99");
    test_check(count_ops[2] > n / 4 && count_ops[3] > n / 4 && count_ops[2] + count_ops[3] == n,
               "difficulty 1-2 gives 2 or 3 operations (%d, %d)", count_ops[2], count_ops[3]);
    data_record_t a, b;
    int differ = 0;
    for (int i = 0; i < 20; i++) {
        synth_arith(1, (uint64_t)i, 1, 2, &a);
        synth_arith(2, (uint64_t)i, 1, 2, &b);
        differ += !streq(a.prompt, b.prompt);
        record_free(&a); record_free(&b);
    }
    test_check(differ >= 15, "different seeds give different problems (%d of 20 differ)", differ);
    synth_arith(3, 5, 5, 5, &a);
    test_check(strstr(a.meta_json, "\"difficulty\":5") && strstr(a.meta_json, "\"ops\":4"), "difficulty 5 has 4 ops: %s",
               a.meta_json);
    record_free(&a);
}

// `cispo gen-data`: N distinct records, train and heldout disjoint, every record loads.
static void test_gendata_cli(void) {
    const char *bin = getenv("CISPO_BIN");
    if (!test_check(bin != NULL, "CISPO_BIN set (ctest sets it)")) return;
    char cmd[1024], tr[600], ho[600];
    snprintf(tr, sizeof tr, "%s/train.jsonl", tmpdir);
    snprintf(ho, sizeof ho, "%s/heldout.jsonl", tmpdir);
    snprintf(cmd, sizeof cmd, "%s gen-data --task arith --n 500 --seed 3 --split train --out %s", bin, tr);
    test_check(system(cmd) == 0, "gen-data train ran");
    snprintf(cmd, sizeof cmd, "%s gen-data --task arith --n 100 --seed 3 --split heldout > %s", bin, ho);
    test_check(system(cmd) == 0, "gen-data heldout ran");
    snprintf(cmd, sizeof cmd, "%s gen-data --task arith --n 5 --seed 3 --difficulty 9 2>/dev/null", bin);
    test_check(system(cmd) != 0, "gen-data refuses difficulty 9");
    dataset_t a, b;
    dataset_opts_t o = dataset_opts_default();
    if (!test_check(dataset_load(tr, &o, &a) == 0 && dataset_load(ho, &o, &b) == 0, "gen-data output loads: %s",
                    datasets_last_error()))
        return;
    test_check(a.n == 500 && b.n == 100, "gen-data wrote 500 + 100 records (%zu, %zu)", a.n, b.n);
    int disjoint = 1, sides = 1;
    for (size_t i = 0; i < a.n; i++) {
        sides &= !dataset_is_heldout(a.recs[i].id, 0.1);
        for (size_t j = 0; j < b.n; j++) disjoint &= strcmp(a.recs[i].prompt, b.recs[j].prompt) != 0;
    }
    for (size_t j = 0; j < b.n; j++) sides &= dataset_is_heldout(b.recs[j].id, 0.1);
    test_check(disjoint, "no held-out problem appears in train");
    test_check(sides, "each file holds only its side of the split");
    o.split = DATASET_SPLIT_HELDOUT;
    dataset_t c;
    dataset_load(tr, &o, &c);
    test_check(c.n == 0, "loading the train file with split heldout keeps nothing (%zu)", c.n);
    dataset_free(&c);
    test_check(a.recs[0].response && streq(a.recs[0].verifier, "math"), "records carry the demonstration and verifier");
    dataset_free(&a);
    dataset_free(&b);
}

// Public data sets load as they are published, or with a field mapping.
static void test_field_mapping(void) {
    data_record_t r;
    // MATH-500: problem, solution, answer, unique_id
    int ok = record_parse_line("{\"problem\": \"What is $1+1$?\", \"solution\": \"$\\\\boxed{2}$\", \"answer\": \"2\", "
                               "\"subject\": \"Algebra\", \"level\": 1, \"unique_id\": \"test/algebra/1.json\"}", "m", "x", &r) == 0;
    test_check(ok && streq(r.prompt, "What is $1+1$?") && streq(r.answer, "2") && streq(r.id, "test/algebra/1.json") &&
               streq(r.verifier, "math"), "MATH-500 record: problem, answer, unique_id (%s)", ok ? r.id : datasets_last_error());
    record_free(&r);
    // GSM8K: question, answer "... #### 72"
    ok = record_parse_line("{\"question\": \"Natalia sold clips?\", \"answer\": \"48/2 = 24\\nso 48+24 = 72\\n#### 72\"}", "g", "g:1", &r) == 0;
    test_check(ok && streq(r.answer, "72") && r.response && strstr(r.response, "48+24") && streq(r.id, "g:1"),
               "GSM8K record: the gold answer after ####, the worked solution as demonstration (%s)",
               ok ? r.answer : datasets_last_error());
    record_free(&r);
    // AIME-style capitalised keys
    ok = record_parse_line("{\"ID\": \"2024-I-1\", \"Problem\": \"Find x.\", \"Answer\": 204}", "a", "x", &r) == 0;
    test_check(ok && streq(r.answer, "204") && streq(r.id, "2024-I-1"), "AIME record: ID, Problem, Answer (number)");
    record_free(&r);
    // code_contests: description + public_tests {input: [...], output: [...]} through a mapping
    record_fields_t f = {.prompt_key = "description", .tests_key = "public_tests", .id_key = "name"};
    ok = record_parse_line_fields("{\"name\": \"1A\", \"description\": \"Sum two ints.\", \"public_tests\": "
                                  "{\"input\": [\"1 2\\n\"], \"output\": [\"3\\n\"]}}", "c", "x", &f, &r) == 0;
    test_check(ok && streq(r.verifier, "code") && r.tests_json && strstr(r.tests_json, "\"stdin\":\"1 2\\n\"") &&
               streq(r.id, "1A"), "code_contests record via prompt_key/tests_key/id_key (%s)", ok ? r.tests_json : datasets_last_error());
    record_free(&r);
    // a nested answer key and a missing mapped key
    record_fields_t g = {.prompt_key = "q", .answer_key = "meta.gold"};
    ok = record_parse_line_fields("{\"q\": \"Say 5\", \"meta\": {\"gold\": 5}}", "n", "x", &g, &r) == 0;
    test_check(ok && streq(r.answer, "5"), "a dotted answer_key reads a nested field");
    record_free(&r);
    ok = record_parse_line_fields("{\"question\": \"Say 5\", \"answer\": 5}", "f.jsonl:3", "x", &g, &r) == 0;
    test_check(!ok && strstr(datasets_last_error(), "f.jsonl:3: key 'q' (prompt_key): missing"), "a missing mapped key is named: %s",
               datasets_last_error());
    // verl's parquet: refused with the conversion recipe
    const char *pq = write_file("train.parquet", "PAR1\x15\x04binary");
    dataset_t d;
    dataset_opts_t o = dataset_opts_default();
    ok = dataset_load(pq, &o, &d) == 0;
    test_check(!ok && strstr(datasets_last_error(), "a Parquet file; convert it to JSONL") &&
               strstr(datasets_last_error(), "read_parquet"), "a Parquet file is refused with the conversion: %s",
               datasets_last_error());
}

int main(void) {
    if (!mkdtemp(tmpdir)) { perror("mkdtemp"); return 1; }
    test_records();
    test_tool_messages();
    test_verl();
    test_bad_lines();
    test_shuffle_shard_split();
    test_synth();
    test_gendata_cli();
    test_field_mapping();
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf %s", tmpdir);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", tmpdir);
    return test_finish("test_datasets");
}
