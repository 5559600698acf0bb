// tests/test_chat_template.c — the Jinja2 subset and chat templates (model/jinja.h, model/chat_template.h)
// against jinja2 configured as transformers' apply_chat_template: every case of tests/chat/fixtures.jsonl
// (written by tests/chat/make_fixtures.py from the models' templates in tests/chat/templates/ and the demo
// tokenizer's) renders to the same bytes, or fails with the same raise_exception message; Python's
// semantics the templates meet (JSON floats, Unicode whitespace, sorting, str.format, Markup, generators,
// filter blocks, jinja2's error texts); unsupported constructs fail naming the construct and its
// line:column; chat templates load from a model directory; the SFT split of a conversation; the demo's
// arithmetic stream as chat records loads to the plain demo's prompts and demonstrations.
// Run: ./build/tests/test_chat_template (from the source tree), TEST_VERBOSE=1 for every check.
#define _POSIX_C_SOURCE 200809L  // setenv
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/common.h"
#include "model/chat_template.h"
#include "datasets/dataset.h"
#include "datasets/record.h"
#include "datasets/synth.h"
#include "model/jinja.h"
#include "trainer/train_data.h"
#include "testutil.h"

#define MAX_TEMPLATES 128

static void show_diff(const char *want, const char *got) {
    size_t i = 0;
    while (want[i] && want[i] == got[i]) i++;
    size_t from = i > 60 ? i - 60 : 0;
    printf("    first difference at byte %zu\n    want: ...%.120s\n    got:  ...%.120s\n", i, want + from, got + from);
}

static void test_fixtures(void) {
    size_t len;
    char *text = cispo_read_file("tests/chat/fixtures.jsonl", &len);
    if (!test_check(text != NULL, "read tests/chat/fixtures.jsonl: %s", cispo_last_error())) return;
    struct { char name[64]; jinja_template_t *t; int n, ok, shown; } tm[MAX_TEMPLATES];
    int n_tm = 0, line = 0;
    for (char *p = text, *nl; *p; p = nl + 1) {
        nl = strchr(p, '\n');
        int last = !nl;
        if (!nl) nl = p + strlen(p);
        *nl = 0;
        if (!*p) {
            if (last) break;
            continue;
        }
        line++;
        cJSON *c = jinja_json_parse(p);
        const char *name = cJSON_GetStringValue(cJSON_GetObjectItem(c, "template"));
        int k = 0;
        while (k < n_tm && strcmp(tm[k].name, name)) k++;
        if (k == n_tm && !test_check(n_tm < MAX_TEMPLATES, "at most %d templates in the fixtures", MAX_TEMPLATES)) {
            cJSON_Delete(c);
            break;
        }
        if (k == n_tm) {
            char path[256];
            if (!strcmp(name, "demo")) snprintf(path, sizeof path, "configs/tokenizers/demo/chat_template.jinja");
            else snprintf(path, sizeof path, "tests/chat/templates/%s.jinja", name);
            size_t sl;
            char *src = cispo_read_file(path, &sl);
            snprintf(tm[k].name, sizeof tm[k].name, "%s", name);
            tm[k].t = src ? jinja_parse(src, sl, path) : NULL;
            tm[k].n = tm[k].ok = tm[k].shown = 0;
            test_check(tm[k].t != NULL, "parse %s: %s", path, cispo_last_error());
            free(src);
            n_tm++;
        }
        tm[k].n++;
        if (!tm[k].t) {
            cJSON_Delete(c);
            if (last) break;
            continue;
        }
        const cJSON *vars = cJSON_GetObjectItem(c, "vars");
        const char *want = cJSON_GetStringValue(cJSON_GetObjectItem(c, "expected"));
        const char *want_err = cJSON_GetStringValue(cJSON_GetObjectItem(c, "error"));
        char *got = jinja_render(tm[k].t, vars, NULL);
        int ok;
        if (want) ok = got && !strcmp(got, want);
        else ok = !got && strstr(cispo_last_error(), want_err ? want_err : "") != NULL;
        tm[k].ok += ok;
        if (!ok && tm[k].shown++ < 2) {  // the first two failures of each template
            printf("FAIL fixtures line %d (%s): %s\n", line, name, got ? "text differs" : cispo_last_error());
            if (got && want) show_diff(want, got);
            if (!want) printf("    expected an error containing: %s\n", want_err);
        }
        free(got);
        cJSON_Delete(c);
        if (last) break;
    }
    for (int k = 0; k < n_tm; k++) {
        test_check(tm[k].ok == tm[k].n, "template %-12s %3d/%3d cases render as jinja2 does", tm[k].name, tm[k].ok, tm[k].n);
        jinja_free(tm[k].t);
    }
    test_check(line >= 300, "fixtures hold %d cases (at least 300)", line);
    free(text);
}

// Renders src with vars (JSON text); returns the text or NULL (message in cispo_last_error()).
static char *render(const char *src, const char *vars_json) {
    jinja_template_t *t = jinja_parse(src, strlen(src), "t");
    if (!t) return NULL;
    cJSON *v = jinja_json_parse(vars_json ? vars_json : "{}");
    char *out = jinja_render(t, v, NULL);
    cJSON_Delete(v);
    jinja_free(t);
    return out;
}

static void expect_text(const char *src, const char *vars, const char *want) {
    char *got = render(src, vars);
    test_check(got && !strcmp(got, want), "%s -> '%s' (got '%s'%s%s)", src, want, got ? got : "NULL", got ? "" : ": ",
               got ? "" : cispo_last_error());
    free(got);
}

static void expect_error(const char *src, const char *vars, const char *want) {
    char *got = render(src, vars);
    test_check(!got && strstr(cispo_last_error(), want), "%s fails with '%s' (got '%s')", src, want,
               got ? got : cispo_last_error());
    free(got);
}

static void test_errors_and_whitespace(void) {
    // whitespace control as transformers configures jinja2
    expect_text("a\n  {% if true %}\n  b\n  {% endif %}\nc\n", NULL, "a\n  b\nc");
    expect_text("a  {%+ if true %}b{% endif +%}\nc", NULL, "a  b\nc");
    expect_text("x {{- ' y ' -}} z", NULL, "x y z");
    expect_text("{# c #}\n  {# d #}\nq", NULL, "q");
    expect_text("{{ 'a' }}  {% if 1 %}b{% endif %}", NULL, "a  b");
    // numbers keep the JSON text's int/float distinction (jinja2 renders json.loads' 1.0 as 1.0)
    expect_text("{{ a }} {{ b }} {{ c }} {{ d | tojson }} {{ e }}", "{\"a\": 1.0, \"b\": 1, \"c\": -0.0, \"d\": [2e3, \"1.0\"], \"e\": 1E2}",
                "1.0 1 -0.0 [2000.0, \"1.0\"] 100.0");
    // Python's whitespace is Unicode's: strip, trim and split remove U+00A0, U+3000, ...
    expect_text("[{{ s | trim }}] [{{ s.rstrip() }}] {{ s.split() | length }}", "{\"s\": \"\u00a0a\u3000b \u2003\"}",
                "[a\u3000b] [\u00a0a\u3000b] 2");
    expect_text("{{ 'èaé'.strip('é') }}|{{ 'xxéax'.strip('xé') }}", NULL, "èa|a");  // characters, not bytes
    // strftime_now reads SOURCE_DATE_EPOCH (UTC) when it is set
    expect_text("{{ strftime_now('%Y-%m-%d %H:%M') }}", NULL, "2026-03-07 09:05");
    // sorting, aggregation and formatting as jinja2 does them
    expect_text("{% for k, v in d | dictsort %}{{ k }}={{ v }};{% endfor %}|{{ d | dictsort(by='value', reverse=true) | first }}",
                "{\"d\": {\"b\": 2, \"B\": 0, \"a\": 1}}", "a=1;b=2;B=0;|('b', 2)");
    expect_text("{{ ['b', 'A', 'a', 'C'] | sort | join }} {{ [3, 1.5, 2] | sort(reverse=true) | join(',') }} "
                "{{ xs | sort(attribute='n') | map(attribute='id') | join }}",
                "{\"xs\": [{\"n\": 2, \"id\": \"x\"}, {\"n\": 1, \"id\": \"y\"}, {\"n\": 2, \"id\": \"z\"}]}", "AabC 3,2,1.5 yxz");
    expect_text("{{ ['a', 'B', 'A', 'b'] | unique | join }} {{ [4, 2, 9] | min }} {{ ['x', 'Y'] | max }} [{{ [] | max }}]",
                NULL, "aB 2 Y []");
    expect_text("{{ '<{}|{}|{n!r}|{{x}}>'.format(1.5, none, n='q') }} {{ '{1}{0}{1}'.format('a', 'b') }}", NULL,
                "<1.5|None|'q'|{x}> bab");
    expect_error("{{ '{}{0}'.format(1) }}", NULL, "cannot switch from automatic field numbering to manual field specification");
    expect_error("{{ '{0}{}'.format(1) }}", NULL, "cannot switch from manual field specification to automatic field numbering");
    expect_error("{{ '{:>4}'.format(1) }}", NULL, "t:1:18: str.format: unsupported format spec '>4'");
    expect_text("{{ d.items() | list }} {{ (1,) }} {{ (1, 'a') == [1, 'a'] }} {{ d | dictsort | tojson }}", "{\"d\": {\"a\": 1}}",
                "[('a', 1)] (1,) False [[\"a\", 1]]");  // tuples
    // a Markup (|safe) escapes the plain strings added to it; jinja2's `if seq:` in select and map
    expect_text("{{ 'a<'|safe + x + '&'|safe }} {{ x + 'b' }} {{ none | selectattr('t') | list | length }}",
                "{\"x\": \"\\\"<'>\"}", "a<&#34;&lt;&#39;&gt;& \"<'>b 0");
    // jinja2's own messages, so that a caller sees the same error either way
    expect_error("{% set _ = xs.append(1) %}", "{\"xs\": []}", "access to attribute 'append' of 'list' object is unsafe.");
    expect_error("{{ d.x + 'a' }}", "{\"d\": {}}", "'dict object' has no attribute 'x' (operand of '+')");
    expect_error("{{ xs[3] ~ xs[3].y }}", "{\"xs\": [1]}", "list object has no element 3 (reading its attribute 'y')");
    // map and select give generators: true even when empty, used up by one loop, no len, index or JSON
    expect_text("{% set g = xs | selectattr('a') %}{{ 'y' if g else 'n' }}{{ 'y' if [] | select else 'n' }} "
                "{% for x in g %}{{ x.a }}{% endfor %}|{% for x in g %}{{ x.a }}{% endfor %}| {{ xs | map(attribute='a') | list }} "
                "{{ xs | map(attribute='a') is sequence }} {{ xs | map(attribute='a') | first }} [{{ (xs | select)[0] }}]",
                "{\"xs\": [{\"a\": 1}, {\"a\": 0}, {\"a\": 2}]}", "yy 12|| [1, 0, 2] False 1 []");
    expect_error("{{ xs | select | length }}", "{\"xs\": [1]}", "object of type 'generator' has no len()");
    expect_error("{{ xs | map('string') | tojson }}", "{\"xs\": [1]}", "Object of type generator is not JSON serializable");
    expect_error("{{ xs | select | last }}", "{\"xs\": [1]}", "'generator' object is not reversible");
    // filter blocks and filtered set blocks
    expect_text("{% filter upper %}a{{ x }}b{% endfilter %}|{% filter replace('A', '-') | trim %}  xAy {% endfilter %}|"
                "{% set s | title %}hello {{ x }}{% endset %}{{ s }}", "{\"x\": \"q\"}", "AQB|x-y|Hello Q");
    expect_text("{% filter upper %}{% filter lower %}AbC{% endfilter %}d{% endfilter %}", NULL, "ABCD");
    expect_error("{% filter upper %}x", NULL, "t:1:4: 'filter' block is not closed by 'endfilter'");
    // unsupported constructs name themselves and where they are
    expect_error("ok\n{% include 'x.jinja' %}", NULL, "t:2:4: unsupported statement 'include'");
    expect_error("{{ x | wordcount }}", "{\"x\": \"a\"}", "t:1:6: unsupported filter 'wordcount'");
    expect_error("{{ x is prime }}", "{\"x\": 1}", "unsupported test 'prime'");
    expect_error("{{ x.splitlines() }}", "{\"x\": \"a\"}", "t:1:16: unsupported method 'splitlines' of a str");
    expect_error("{% for x in y %}", NULL, "t:1:4: 'for' block is not closed by 'endfor'");
    expect_error("{% endif %}", NULL, "'endif' without an open block");
    expect_error("{{ 'abc }}", NULL, "unterminated string literal");
    expect_error("{{ raise_exception('bad role') }}", NULL, "t:1:19: raise_exception: bad role");
    expect_error("{{ x.y }}", NULL, "'x' is undefined");
    expect_error("{% set x.y = 1 %}", "{\"x\": {}}", "not a namespace() object");
    expect_error("{{ 'a' + 1 }}", NULL, "unsupported operand types for '+': str and int");
}

// The demo tokenizer's template, and chat records through it (trainer/train_data.h).
static void test_demo_template_and_records(void) {
    chat_template_t *ct = NULL;
    int rc = chat_template_load_dir("configs/tokenizers/demo", &ct);
    if (!test_check(rc == 0 && ct, "load configs/tokenizers/demo's chat template: %s", cispo_last_error())) return;
    test_check(ct->eos_token && !strcmp(ct->eos_token, "<|endoftext|>") && !ct->bos_token,
               "special tokens from tokenizer_config.json (eos <|endoftext|>, no bos)");
    cJSON *msgs = cJSON_Parse("[{\"role\": \"user\", \"content\": \"Compute 1+2.\"}]");
    char *s = chat_template_render(ct, msgs, NULL, 1, NULL);
    test_check(s && !strcmp(s, "Compute 1+2.\n"), "a lone user message renders as the plain prompt (got '%s')", s ? s : "NULL");
    free(s);
    cJSON_Delete(msgs);
    chat_template_free(ct);
    test_check(chat_template_load_dir("tests/chat", &ct) == 1 && !ct, "a directory without a template: none");

    const char *path = "/tmp/cispo_test_chat_records.jsonl";
    FILE *f = fopen(path, "w");
    fprintf(f, "{\"id\": \"c1\", \"prompt\": [{\"role\": \"system\", \"content\": \"Be brief.\"}, {\"role\": \"user\", "
               "\"content\": \"1+1?\"}, {\"role\": \"assistant\", \"content\": \"\\\\boxed{2}\"}], \"answer\": \"2\"}\n");
    fprintf(f, "{\"id\": \"c2\", \"problem\": \"2+2?\", \"answer\": \"4\"}\n");
    fclose(f);
    arith_task_t task = {.seed = 1, .dmin = 1, .dmax = 2, .heldout_frac = 0.1};
    train_records_t rec = {.chat_template = "auto", .tokenizer = "configs/tokenizers/demo/tokenizer.json"};
    train_set_t set;
    rc = train_set_load_records(&set, path, 0, &task, 0, NULL, &rec);
    if (test_check(rc == 0 && set.n == 2, "chat records load through the template: %s", cispo_last_error())) {
        test_check(!strcmp(set.ex[0].prompt, "System: Be brief.\nUser: 1+1?\nAssistant:\n"),
                   "the prompt is the conversation before the assistant turn, with the generation prompt (got '%s')",
                   set.ex[0].prompt);
        test_check(set.ex[0].demo && !strcmp(set.ex[0].demo, "\\boxed{2}"),
                   "the assistant turn is the SFT demonstration, its end token left to EOS (got '%s')",
                   set.ex[0].demo ? set.ex[0].demo : "NULL");
        test_check(!strcmp(set.ex[1].prompt, "2+2?\n"), "a text prompt is one user message (got '%s')", set.ex[1].prompt);
    }
    train_set_free(&set);
    rec.chat_template = "none";
    rc = train_set_load_records(&set, path, 0, &task, 0, NULL, &rec);
    test_check(rc == 0 && set.n == 2 && !strncmp(set.ex[0].prompt, "System: Be brief.\nUser: 1+1?\nAssistant: ", 40),
               "chat_template=none keeps the plain prompt text");
    train_set_free(&set);
    remove(path);
}

// The demo from chat-format records (configs/demo_chat.yaml): the arithmetic stream written as
// conversations (the problem as the user's message, the worked solution as the assistant's, as
// `cispo gen-data --chat --repeats` writes them) loads through the demo template to exactly the prompts,
// demonstrations and answers that `train_data: arithmetic` trains on.
static void test_demo_chat_records_match_plain(void) {
    enum { N = 400 };
    arith_task_t task = {.seed = 1, .dmin = 1, .dmax = 2, .heldout_frac = 0.1};
    train_set_t plain, chat;
    if (!test_check(train_set_load(&plain, "arithmetic", N, &task, 0, NULL) == 0, "arithmetic loads: %s",
                    cispo_last_error()))
        return;
    const char *path = "/tmp/cispo_test_chat_arith.jsonl";
    FILE *f = fopen(path, "w");
    int written = 0;
    for (uint64_t k = 0; written < N; k++) {
        data_record_t r;
        synth_arith(task.seed, k, task.dmin, task.dmax, &r);
        if (dataset_is_heldout(r.id, task.heldout_frac)) {
            record_free(&r);
            continue;
        }
        char id[96];
        snprintf(id, sizeof id, "%s-%llu", r.id, (unsigned long long)k);  // repeats keep unique ids
        free(r.id);
        r.id = cispo_strdup(id);
        r.messages = cispo_calloc(2, sizeof *r.messages);
        r.messages[0].role = cispo_strdup("user"), r.messages[0].content = r.prompt;
        r.messages[1].role = cispo_strdup("assistant"), r.messages[1].content = r.response;
        r.n_messages = 2, r.prompt = r.response = NULL;
        char *line = record_to_json(&r);
        fprintf(f, "%s\n", line);
        free(line);
        record_free(&r);
        written++;
    }
    fclose(f);
    train_records_t rec = {.chat_template = "auto", .tokenizer = "configs/tokenizers/demo/tokenizer.json"};
    int rc = train_set_load_records(&chat, path, 0, &task, 0, NULL, &rec);
    if (test_check(rc == 0 && chat.n == N, "%d chat records load through the demo template: %s", N,
                   rc ? cispo_last_error() : "")) {
        int same = 0, first_bad = -1;
        for (int i = 0; i < N; i++) {
            const train_example_t *a = &plain.ex[i], *b = &chat.ex[i];
            int eq = !strcmp(a->prompt, b->prompt) && a->demo && b->demo && !strcmp(a->demo, b->demo) &&
                     !strcmp(a->answer, b->answer);
            same += eq;
            if (!eq && first_bad < 0) first_bad = i;
        }
        test_check(same == N, "the chat records give the plain demo's prompts, demonstrations and answers (%d/%d; "
                   "first difference at record %d: '%s' vs '%s')", same, N, first_bad,
                   first_bad >= 0 ? plain.ex[first_bad].prompt : "", first_bad >= 0 ? chat.ex[first_bad].prompt : "");
    }
    train_set_free(&plain);
    train_set_free(&chat);
    remove(path);
}

// configs/demo_chat.yaml is configs/demo.yaml with chat-record data: every other key must stay equal, or
// docs/demo-results.md's comparison of the two stops holding.
static int config_keys(const char *path, char keys[][2][128], int cap) {
    FILE *f = fopen(path, "r");
    if (!f) return -1;
    char line[512];
    int n = 0;
    while (fgets(line, sizeof line, f) && n < cap) {
        char *c = strchr(line, '#');
        if (c) *c = 0;
        char *colon = strchr(line, ':');
        if (!colon || line[0] == ' ') continue;
        *colon = 0;
        char *v = colon + 1;
        while (*v == ' ') v++;
        v[strcspn(v, " \r\n")] = 0;
        snprintf(keys[n][0], sizeof keys[n][0], "%.127s", line);
        snprintf(keys[n][1], sizeof keys[n][1], "%.127s", v);
        n++;
    }
    fclose(f);
    return n;
}

static void test_demo_chat_config(void) {
    static char a[64][2][128], b[64][2][128];
    int na = config_keys("configs/demo.yaml", a, 64), nb = config_keys("configs/demo_chat.yaml", b, 64);
    if (!test_check(na > 10 && nb > 10, "read configs/demo.yaml (%d keys) and configs/demo_chat.yaml (%d keys)", na, nb)) return;
    // the data: the synthetic task's keys there, the chat records' here
    static const char *const data_keys[] = {"train_data", "eval_data", "task_dmin", "task_dmax", "out", "chat_template", NULL};
    int same = 1;
    for (int pass = 0; pass < 2; pass++) {
        char (*x)[2][128] = pass ? b : a, (*y)[2][128] = pass ? a : b;
        int nx = pass ? nb : na, ny = pass ? na : nb;
        for (int i = 0; i < nx; i++) {
            int skip = 0;
            for (int k = 0; data_keys[k]; k++) skip |= !strcmp(x[i][0], data_keys[k]);
            if (skip) continue;
            int j = 0;
            while (j < ny && strcmp(y[j][0], x[i][0])) j++;
            if (j == ny || strcmp(y[j][1], x[i][1])) {
                printf("    %s: '%s' in one config, '%s' in the other\n", x[i][0], x[i][1], j < ny ? y[j][1] : "(absent)");
                same = 0;
            }
        }
    }
    test_check(same, "configs/demo_chat.yaml equals configs/demo.yaml but for its data keys");
}

int main(void) {
    setenv("SOURCE_DATE_EPOCH", "1772874300", 1);  // make_fixtures.py's FIXED_NOW, 2026-03-07 09:05:00 UTC
    test_fixtures();
    test_demo_template_and_records();
    test_demo_chat_records_match_plain();
    test_demo_chat_config();
    test_errors_and_whitespace();
    return test_finish("test_chat_template");
}
