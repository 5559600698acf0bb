// tests/test_remote_reward.c — the remote reward verifiers (genrm: LLM judge over OpenAI-compatible
// chat completions; remote: a reward service) and their HTTP client, over real HTTP on loopback
// against tests/remote/fake_judge.py (started here with $CISPO_PYTHON, python3 otherwise, on a free
// port). Covers: scoring, the request's shape, retries then success, retries exhausted (failed verdict
// with the reason), Retry-After honoured, timeout honoured, dropped connections, garbage replies
// (failed, never 0), 4xx not retried, score parsing and prompt templates, configuration from the
// environment and the registry entries.
//   ./test_remote_reward          (from the repo root; TEST_VERBOSE=1 prints every check)
#include <cjson/cJSON.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "base/common.h"
#include "rl/genrm.h"
#include "rl/http_client.h"
#include "rl/remote_reward.h"
#include "rl/verifier.h"
#include "testutil.h"

// ---- the fake server ----

static pid_t server_pid = -1;
static int server_stdin = -1;
static char base_url[64];

static int server_start(void) {
    const char *py = getenv("CISPO_PYTHON");
    const char *src = getenv("CISPO_SRC");
    char script[4096];
    snprintf(script, sizeof script, "%s/tests/remote/fake_judge.py", src && *src ? src : ".");
    int in[2], out[2];
    if (pipe(in) || pipe(out)) return -1;
    server_pid = fork();
    if (server_pid < 0) return -1;
    if (server_pid == 0) {
        dup2(in[0], 0), dup2(out[1], 1);
        close(in[0]), close(in[1]), close(out[0]), close(out[1]);
        const char *exe = py && *py ? py : "python3";
        execlp(exe, exe, script, (char *)NULL);
        fprintf(stderr, "cannot run %s: set CISPO_PYTHON to a Python 3 interpreter\n", exe);
        _exit(127);
    }
    close(in[0]), close(out[1]);
    server_stdin = in[1];
    FILE *f = fdopen(out[0], "r");
    int port = 0;
    if (!f || fscanf(f, "port %d", &port) != 1 || port <= 0) {
        if (f) fclose(f);
        return -1;
    }
    fclose(f);
    snprintf(base_url, sizeof base_url, "http://127.0.0.1:%d", port);
    return 0;
}

static void server_stop(void) {
    if (server_stdin >= 0) close(server_stdin);  // the server exits when its stdin closes
    if (server_pid > 0) {
        kill(server_pid, SIGTERM);
        waitpid(server_pid, NULL, 0);
    }
}

static char *url_of(const char *path) {
    static char buf[8][128];
    static int k;
    char *u = buf[k++ % 8];
    snprintf(u, 128, "%s%s", base_url, path);
    return u;
}

// POSTs a control or stats request; returns the parsed reply (caller deletes) or NULL.
static cJSON *server_call(const char *path, const char *json) {
    http_options_t o = http_options_default();
    o.timeout_s = 10, o.max_attempts = 1;
    http_response_t r;
    cJSON *doc = NULL;
    if (http_post_json(url_of(path), json, &o, &r) == 0) doc = cJSON_Parse(r.body);
    else printf("control call failed: %s\n", cispo_last_error());
    http_response_free(&r);
    return doc;
}

static void control(const char *json) { cJSON_Delete(server_call("/_control", json)); }

static int server_requests(void) {
    cJSON *s = server_call("/_stats", "{}");
    cJSON *n = s ? cJSON_GetObjectItem(s, "requests") : NULL;
    int v = cJSON_IsNumber(n) ? n->valueint : -1;
    cJSON_Delete(s);
    return v;
}

// ---- helpers ----

static genrm_config_t judge_config(void) {
    genrm_config_t c = genrm_config_default();
    c.url = cispo_strdup(url_of("/v1/chat/completions"));
    c.model = cispo_strdup("judge-7b");
    c.http.timeout_s = 10;
    c.http.max_attempts = 4;
    c.http.backoff_s = 0.01, c.http.backoff_max_s = 0.05;  // fast retries: the schedule is not under test here
    return c;
}

static const char *Q = "What is 6 * 7?";

static void test_parse_score(void) {
    struct {
        const char *reply;
        int ok;
        double score;
    } cases[] = {
        {"The answer matches.\nScore: 10", 1, 10},
        {"Score: 3\nOn reflection...\nScore: 7", 1, 7},    // the last one wins
        {"**Score:** 8/10", 1, 8},
        {"final score = 0.5", 1, 0.5},
        {"SCORE:9", 1, 9},
        {"Rating: [[6]]", 1, 6},
        {"[[2]] then [[ 4 ]]", 1, 4},
        {"  9.\n", 1, 9},
        {"**7**", 1, 7},
        {"YES", 1, 10},
        {"no.", 1, 0},
        {" Yes ", 1, 10},
        {"<think>Score: 2 seems low</think>\nScore: 9", 1, 9},  // reasoning skipped
        {"<think>Score: 2 and then the budget ran out", 0, 0},  // cut off inside the reasoning
        {"I think the response is fine.", 0, 0},
        {"", 0, 0},
        {"Score: high", 0, 0},
        {"Yes, the answer is 42", 0, 0},  // YES only as the whole reply
        {"42 is the answer", 0, 0},       // a bare number only as the whole reply
        {"Score: inf", 0, 0},
        {"underscore: 5", 0, 0},          // "score" must start a word
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        double s = -99;
        int rc = genrm_parse_score(cases[i].reply, 0, 10, &s);
        if (cases[i].ok)
            test_check(rc == 0 && s == cases[i].score, "parse '%s' -> %g (got rc %d, %g)", cases[i].reply,
                       cases[i].score, rc, s);
        else
            test_check(rc == -1, "parse '%s' is unparseable (got rc %d, %g)", cases[i].reply, rc, s);
    }
    double s;
    test_check(genrm_parse_score("YES", 1, 5, &s) == 0 && s == 5, "YES is the top of a 1..5 scale");
    test_check(genrm_parse_score("NO", 1, 5, &s) == 0 && s == 1, "NO is the bottom of a 1..5 scale");
}

static void test_render(void) {
    char *p = genrm_render_prompt("Q={question} R={reference} A={response} {other} {{x}} [[Y]]", "q", "r", "{reference}");
    test_check(!strcmp(p, "Q=q R=r A={reference} {other} {{x}} [[Y]]"),
               "placeholders filled once, substituted text not expanded, other braces kept: '%s'", p);
    free(p);
    p = genrm_render_prompt(NULL, Q, "42", "It is 42");
    test_check(strstr(p, "[Question]\nWhat is 6 * 7?\n") && strstr(p, "[Reference answer]\n42\n") &&
                   strstr(p, "[Response]\nIt is 42\n") && strstr(p, "Score: X") && !strchr(p, '{'),
               "default template holds question, reference, response and asks for Score: X");
    free(p);
    p = genrm_render_prompt("{response}|{question}", NULL, NULL, NULL);
    test_check(!strcmp(p, "|"), "NULL values render empty: '%s'", p);
    free(p);
}

static void test_judge_scores(void) {
    genrm_config_t c = judge_config();
    c.api_key = cispo_strdup("sk-test-123");
    control("{\"require_key\": \"sk-test-123\"}");
    verdict_t v;
    int rc = genrm_judge(&c, Q, "42", "6 * 7 = 42", &v);
    test_check(rc == 0 && !v.failed && v.reward == 1.0 && v.correct, "judge: right answer -> reward 1 (rc %d, %g, %s)",
               rc, v.reward, v.reason);
    test_check(strstr(v.extracted, "Score: 10") != NULL, "extracted holds the judge's reply: '%s'", v.extracted);
    cJSON *s = server_call("/_stats", "{}");
    cJSON *body = cJSON_GetObjectItem(s, "last_body");
    cJSON *msgs = cJSON_GetObjectItem(body, "messages");
    cJSON *m0 = cJSON_GetArrayItem(msgs, 0);
    const char *content = cJSON_GetStringValue(cJSON_GetObjectItem(m0, "content"));
    test_check(!strcmp(cJSON_GetStringValue(cJSON_GetObjectItem(body, "model")), "judge-7b") &&
                   cJSON_GetObjectItem(body, "temperature")->valuedouble == 0 &&
                   cJSON_GetObjectItem(body, "max_tokens")->valueint == 1024 && cJSON_GetArraySize(msgs) == 1 &&
                   !strcmp(cJSON_GetStringValue(cJSON_GetObjectItem(m0, "role")), "user"),
               "request: model, one user message, temperature 0, max_tokens 1024");
    test_check(content && strstr(content, Q) && strstr(content, "[Response]\n6 * 7 = 42\n"),
               "request: the prompt carries the question and the response");
    test_check(!strcmp(cJSON_GetStringValue(cJSON_GetObjectItem(s, "last_auth")), "Bearer sk-test-123"),
               "request: Authorization: Bearer <key>");
    cJSON_Delete(s);

    rc = genrm_judge(&c, Q, "42", "6 * 7 = 48", &v);
    test_check(rc == 0 && !v.failed && v.reward == 0.0 && !v.correct, "judge: wrong answer -> reward 0, not failed (%s)",
               v.reason);
    rc = genrm_judge(&c, Q, "42", "maybe 42 or 48", &v);
    test_check(rc == 0 && !v.failed && v.reward == 0.5 && v.correct, "judge: score 5 of 10 -> reward 0.5, correct at 0.5 (%g)",
               v.reward);
    c.correct_at = 0.8;
    rc = genrm_judge(&c, Q, "42", "maybe 42 or 48", &v);
    test_check(rc == 0 && v.reward == 0.5 && !v.correct, "judge: reward 0.5 below correct_at 0.8 -> not correct");

    free(c.api_key);
    c.api_key = NULL;
    rc = genrm_judge(&c, Q, "42", "6 * 7 = 42", &v);
    test_check(rc == -1 && v.failed && strstr(v.reason, "HTTP 401") && strstr(v.reason, "1 attempt(s)"),
               "judge: missing key -> 401, not retried, failed: %s", v.reason);
    genrm_config_free(&c);
    control("{}");
}

static void test_judge_template_file(void) {
    char path[] = "/tmp/cispo_genrm_tpl_XXXXXX";
    int fd = mkstemp(path);
    const char *tpl = "Question: {question}\nGold: {reference}\nAnswer: {response}\nReply YES or NO.\n";
    test_check(fd >= 0 && write(fd, tpl, strlen(tpl)) == (ssize_t)strlen(tpl), "write a template file");
    close(fd);
    setenv("CISPO_GENRM_URL", base_url, 1);  // base URL: /v1/chat/completions is appended
    setenv("CISPO_GENRM_MODEL", "judge-7b", 1);
    setenv("CISPO_GENRM_TEMPLATE", path, 1);
    setenv("CISPO_GENRM_SCALE", "0:1", 1);
    setenv("CISPO_GENRM_TIMEOUT", "10", 1);
    genrm_config_t c;
    int rc = genrm_config_from_env(&c);
    test_check(rc == 0 && !strcmp(c.url, url_of("/v1/chat/completions")) && c.scale_max == 1 &&
                   c.http.timeout_s == 10 && c.http.max_attempts == 4 && c.template_text,
               "config from env: URL completed, scale, timeout, attempts, template (%s)", rc ? cispo_last_error() : "");
    if (rc == 0) {
        verdict_t v;
        rc = genrm_judge(&c, Q, "42", "so 42", &v);
        test_check(rc == 0 && v.reward == 1 && v.correct && !strcmp(v.extracted, "YES"), "template file: YES -> reward 1 (%s)", v.reason);
        rc = genrm_judge(&c, Q, "42", "so 41", &v);
        test_check(rc == 0 && v.reward == 0 && !v.correct && !v.failed, "template file: NO -> reward 0, not failed");
        genrm_config_free(&c);
    }
    // Through the registry object, configuration from the environment.
    verify_request_t req = {.gold = "42", .response = "so 42", .question = Q};
    verdict_t v;
    rc = genrm_verify(&req, &v);
    test_check(rc == 0 && v.reward == 1, "genrm_verify from env: reward 1 (%s)", v.reason);

    // Bad configuration: the message names the variable.
    setenv("CISPO_GENRM_SCALE", "10:0", 1);
    test_check(genrm_config_from_env(&c) == -1 && strstr(cispo_last_error(), "CISPO_GENRM_SCALE"),
               "bad scale named: %s", cispo_last_error());
    setenv("CISPO_GENRM_SCALE", "0:1", 1);
    setenv("CISPO_GENRM_RETRIES", "many", 1);
    test_check(genrm_config_from_env(&c) == -1 && strstr(cispo_last_error(), "CISPO_GENRM_RETRIES='many'"),
               "bad retries named: %s", cispo_last_error());
    unsetenv("CISPO_GENRM_RETRIES");
    FILE *f = fopen(path, "w");
    fputs("Grade this: {question}\n", f);
    fclose(f);
    test_check(genrm_config_from_env(&c) == -1 && strstr(cispo_last_error(), "{response}"),
               "template without {response} refused: %s", cispo_last_error());
    unlink(path);
    test_check(genrm_config_from_env(&c) == -1 && strstr(cispo_last_error(), "CISPO_GENRM_TEMPLATE") &&
                   strstr(cispo_last_error(), path),
               "missing template file named: %s", cispo_last_error());
    unsetenv("CISPO_GENRM_TEMPLATE");
    unsetenv("CISPO_GENRM_URL");
    rc = genrm_verify(&req, &v);
    test_check(rc == -1 && v.failed && strstr(v.reason, "CISPO_GENRM_URL"), "no URL: failed verdict naming the variable: %s",
               v.reason);
    unsetenv("CISPO_GENRM_MODEL"), unsetenv("CISPO_GENRM_SCALE"), unsetenv("CISPO_GENRM_TIMEOUT");
}

static void test_retries(void) {
    genrm_config_t c = judge_config();
    verdict_t v;
    control("{\"fail\": 2, \"mode\": \"status\", \"status\": 500}");
    int rc = genrm_judge(&c, Q, "42", "42", &v);
    test_check(rc == 0 && v.reward == 1 && server_requests() == 3, "two 500s then success: 3 requests, reward 1 (%s)", v.reason);

    control("{\"fail\": 2, \"mode\": \"drop\"}");
    rc = genrm_judge(&c, Q, "42", "42", &v);
    test_check(rc == 0 && v.reward == 1 && server_requests() == 3, "two dropped connections then success (%s)", v.reason);

    // Backoff: the server refuses (HTTP 400) a request that follows the previous one within 0.1 s.
    // With backoff_s = 0.3 the waits are drawn from [0.15, 0.3] then [0.3, 0.6]: accepted; with
    // 1 ms a retry inside 0.5 s is refused, which shows the check can fail.
    control("{\"fail\": 2, \"mode\": \"status\", \"status\": 500, \"min_gap\": 0.1}");
    c.http.backoff_s = 0.3, c.http.backoff_max_s = 1;
    rc = genrm_judge(&c, Q, "42", "42", &v);
    test_check(rc == 0 && v.reward == 1 && server_requests() == 3, "exponential backoff waits between retries (%s)", v.reason);
    control("{\"fail\": 2, \"mode\": \"status\", \"status\": 500, \"min_gap\": 0.5}");
    c.http.backoff_s = 0.001, c.http.backoff_max_s = 0.002;
    rc = genrm_judge(&c, Q, "42", "42", &v);
    test_check(rc == -1 && strstr(v.reason, "min_gap") && server_requests() == 2,
               "a 1 ms backoff is refused by the min_gap server: %s", v.reason);
    c.http.backoff_s = 0.01, c.http.backoff_max_s = 0.05;

    // Retry-After: the server refuses (HTTP 400, not retryable) a retry that comes back early, so
    // success here means the client waited what the server asked, not its own 10 ms backoff.
    control("{\"fail\": 1, \"mode\": \"status\", \"status\": 429, \"retry_after\": \"1\"}");
    rc = genrm_judge(&c, Q, "42", "42", &v);
    test_check(rc == 0 && v.reward == 1 && server_requests() == 2, "429 with Retry-After: 1 honoured, then success (%s)", v.reason);
    control("{\"fail\": 1, \"mode\": \"status\", \"status\": 503, \"retry_after\": \"1\"}");
    c.http.retry_after_max_s = 0.05;  // a cap below what the server asks: the early retry is refused
    rc = genrm_judge(&c, Q, "42", "42", &v);
    test_check(rc == -1 && v.failed && strstr(v.reason, "Retry-After"), "Retry-After capped by retry_after_max_s: %s", v.reason);
    c.http.retry_after_max_s = 120;

    control("{\"fail\": 100, \"mode\": \"status\", \"status\": 503}");
    c.http.max_attempts = 3;
    rc = genrm_judge(&c, Q, "42", "42", &v);
    test_check(rc == -1 && v.failed && v.reward == 0 && !v.correct, "503 forever: failed verdict");
    test_check(strstr(v.reason, "3 attempt(s)") && strstr(v.reason, "HTTP 503") && strstr(v.reason, c.url),
               "reason names URL, attempts and last failure: %s", v.reason);
    test_check(server_requests() == 3, "503 forever: exactly max_attempts = 3 requests");

    control("{\"fail\": 100, \"mode\": \"status\", \"status\": 400}");
    c.http.max_attempts = 5;
    rc = genrm_judge(&c, Q, "42", "42", &v);
    test_check(rc == -1 && v.failed && strstr(v.reason, "HTTP 400 (not retried)") && strstr(v.reason, "1 attempt(s)"),
               "400: failed, not retried: %s", v.reason);
    test_check(server_requests() == 1, "400: one request only");
    control("{\"fail\": 100, \"mode\": \"status\", \"status\": 404}");
    rc = genrm_judge(&c, Q, "42", "42", &v);
    test_check(rc == -1 && server_requests() == 1, "404: one request only");
    control("{\"fail\": 100, \"mode\": \"status\", \"status\": 429}");
    c.http.max_attempts = 2;
    rc = genrm_judge(&c, Q, "42", "42", &v);
    test_check(rc == -1 && server_requests() == 2 && strstr(v.reason, "HTTP 429"), "429 is retried: %s", v.reason);

    control("{\"fail\": 100, \"mode\": \"drop\"}");
    rc = genrm_judge(&c, Q, "42", "42", &v);
    test_check(rc == -1 && v.failed && strstr(v.reason, "no HTTP answer after 2 attempt(s)"),
               "dropped every time: failed: %s", v.reason);
    genrm_config_free(&c);
    control("{}");
}

static void test_timeout(void) {
    genrm_config_t c = judge_config();
    c.http.timeout_s = 0.5;
    c.http.max_attempts = 2;
    control("{\"fail\": 100, \"mode\": \"hang\", \"hang_s\": 30}");
    verdict_t v;
    double t0 = cispo_now();
    int rc = genrm_judge(&c, Q, "42", "42", &v);
    double dt = cispo_now() - t0;
    test_check(rc == -1 && v.failed && strstr(v.reason, "Timeout was reached") && strstr(v.reason, "2 attempt(s)"),
               "hanging server: failed with the timeout named: %s", v.reason);
    // Two attempts of 0.5 s against a server that would hang 30 s each: the call must end long
    // before one hang would (a bound on correctness, not a speed measurement).
    test_check(dt < 15, "hanging server: the call ended after %.1f s, before the 30 s hang", dt);
    test_check(server_requests() == 2, "hanging server: both attempts made");
    control("{\"fail\": 1, \"mode\": \"hang\", \"hang_s\": 30}");
    rc = genrm_judge(&c, Q, "42", "42", &v);
    test_check(rc == 0 && v.reward == 1, "one hang, then the retry succeeds (%s)", v.reason);
    genrm_config_free(&c);
    control("{}");
}

static void test_garbage(void) {
    genrm_config_t c = judge_config();
    verdict_t v;
    control("{\"fail\": 100, \"mode\": \"garbage\"}");
    int rc = genrm_judge(&c, Q, "42", "42", &v);
    test_check(rc == -1 && v.failed && strstr(v.reason, "not JSON") && strstr(v.reason, "upstream"),
               "garbage body: failed, quoted: %s", v.reason);
    control("{\"reply\": \"I believe the response is mostly fine.\"}");
    rc = genrm_judge(&c, Q, "42", "42", &v);
    test_check(rc == -1 && v.failed && v.reward == 0 && strstr(v.reason, "no score") && strstr(v.reason, "mostly fine"),
               "unparseable reply: failed (not a 0 reward): %s", v.reason);
    control("{\"reply\": \"Score: 12\"}");
    rc = genrm_judge(&c, Q, "42", "42", &v);
    test_check(rc == -1 && v.failed && strstr(v.reason, "outside the scale"), "score off the scale: failed: %s", v.reason);
    control("{\"reply\": \"<think>Let me compare 42 and 42. Score: 10 if\"}");
    rc = genrm_judge(&c, Q, "42", "42", &v);
    test_check(rc == -1 && v.failed && strstr(v.reason, "CISPO_GENRM_MAX_TOKENS"), "reply cut inside <think>: failed, hint given: %s",
               v.reason);
    control("{\"reply\": \"<think>compare</think>\\n[[8]]\"}");
    rc = genrm_judge(&c, Q, "42", "42", &v);
    test_check(rc == 0 && v.reward == 0.8, "reasoning then [[8]] -> 0.8 (%s)", v.reason);
    control("{\"fail\": 100, \"mode\": \"no_reward\"}");
    rc = genrm_judge(&c, Q, "42", "42", &v);
    test_check(rc == -1 && v.failed && strstr(v.reason, "choices[0].message.content"), "JSON without choices: failed: %s", v.reason);
    genrm_config_free(&c);
    control("{}");
}

static void test_remote_service(void) {
    remote_reward_config_t c = remote_reward_config_default();
    c.url = cispo_strdup(url_of("/reward"));
    c.http.timeout_s = 10, c.http.backoff_s = 0.01, c.http.backoff_max_s = 0.05;
    verdict_t v;
    verify_request_t req = {.gold = "42", .response = "it is 42", .question = Q, .meta_json = "{\"weight\": 1}"};
    int rc = remote_reward_score(&c, &req, &v);
    test_check(rc == 0 && !v.failed && v.reward == 1 && v.correct && strstr(v.reason, "final token"),
               "remote: right -> reward 1, the service's reason kept (%s)", v.reason);
    cJSON *s = server_call("/_stats", "{}");
    cJSON *b = cJSON_GetObjectItem(s, "last_body");
    test_check(!strcmp(cJSON_GetStringValue(cJSON_GetObjectItem(b, "prompt")), Q) &&
                   !strcmp(cJSON_GetStringValue(cJSON_GetObjectItem(b, "response")), "it is 42") &&
                   !strcmp(cJSON_GetStringValue(cJSON_GetObjectItem(b, "answer")), "42") &&
                   cJSON_GetObjectItem(cJSON_GetObjectItem(b, "meta"), "weight")->valuedouble == 1 &&
                   cJSON_IsNull(cJSON_GetObjectItem(s, "last_auth")),
               "remote request: prompt, response, answer, meta; no Authorization without a key");
    cJSON_Delete(s);
    req.response = "it is 41";
    rc = remote_reward_score(&c, &req, &v);
    test_check(rc == 0 && !v.failed && v.reward == 0 && !v.correct, "remote: wrong -> reward 0, not failed");
    req.response = "it is 42", req.meta_json = "{\"weight\": 0.25, \"omit_correct\": true}";
    rc = remote_reward_score(&c, &req, &v);
    test_check(rc == 0 && v.reward == 0.25 && !v.correct, "remote: meta passed (0.25), no \"correct\": threshold 0.5 decides");
    c.correct_at = 0.2;
    rc = remote_reward_score(&c, &req, &v);
    test_check(rc == 0 && v.correct, "remote: 0.25 >= correct_at 0.2 -> correct");
    req.meta_json = NULL, req.gold = NULL;
    rc = remote_reward_score(&c, &req, &v);
    test_check(rc == 0 && v.reward == 0, "remote: null answer and meta accepted");
    req.gold = "42", req.meta_json = "{broken";
    rc = remote_reward_score(&c, &req, &v);
    test_check(rc == -1 && v.failed && strstr(v.reason, "meta is not valid JSON"), "remote: bad meta refused: %s", v.reason);
    req.meta_json = NULL;

    control("{\"fail\": 2, \"mode\": \"status\", \"status\": 502}");
    rc = remote_reward_score(&c, &req, &v);
    test_check(rc == 0 && v.reward == 1 && server_requests() == 3, "remote: two 502s then success");
    control("{\"fail\": 100, \"mode\": \"no_reward\"}");
    rc = remote_reward_score(&c, &req, &v);
    test_check(rc == -1 && v.failed && strstr(v.reason, "no \"reward\""), "remote: reply without reward: failed: %s", v.reason);
    control("{\"fail\": 100, \"mode\": \"garbage\"}");
    rc = remote_reward_score(&c, &req, &v);
    test_check(rc == -1 && v.failed && strstr(v.reason, "not JSON"), "remote: garbage: failed: %s", v.reason);
    control("{\"fail\": 100, \"mode\": \"status\", \"status\": 422}");
    rc = remote_reward_score(&c, &req, &v);
    test_check(rc == -1 && v.failed && strstr(v.reason, "HTTP 422 (not retried)") && server_requests() == 1,
               "remote: 422 not retried: %s", v.reason);
    control("{}");

    // Registry object, configuration from the environment.
    setenv("CISPO_REMOTE_REWARD_URL", url_of("/reward"), 1);
    setenv("CISPO_REMOTE_REWARD_API_KEY_ENV", "CISPO_TEST_RM_TOKEN", 1);
    setenv("CISPO_TEST_RM_TOKEN", "rm-secret", 1);
    control("{\"require_key\": \"rm-secret\"}");
    rc = remote_reward_verify(&req, &v);
    test_check(rc == 0 && v.reward == 1,
               "remote_reward_verify from env, bearer token from the named variable (%s)", v.reason);
    unsetenv("CISPO_TEST_RM_TOKEN");
    rc = remote_reward_verify(&req, &v);
    test_check(rc == -1 && v.failed && strstr(v.reason, "CISPO_TEST_RM_TOKEN"), "key variable unset: named: %s", v.reason);
    unsetenv("CISPO_REMOTE_REWARD_API_KEY_ENV"), unsetenv("CISPO_REMOTE_REWARD_URL");
    control("{}");
    remote_reward_config_free(&c);
}

// Several threads judging at once (http_client claims thread safety; scoring may run threaded).
typedef struct {
    const genrm_config_t *cfg;
    const char *response;
    verdict_t v;
    int rc;
} judge_job_t;

static void *judge_thread(void *arg) {
    judge_job_t *j = arg;
    j->rc = genrm_judge(j->cfg, Q, "42", j->response, &j->v);
    return NULL;
}

static void test_threads(void) {
    genrm_config_t c = judge_config();
    control("{\"fail\": 3, \"mode\": \"status\", \"status\": 500}");  // some threads retry
    enum { NT = 8 };
    judge_job_t jobs[NT];
    pthread_t th[NT];
    for (int i = 0; i < NT; i++) {
        jobs[i] = (judge_job_t){.cfg = &c, .response = i % 2 ? "so 42" : "so 41"};
        pthread_create(&th[i], NULL, judge_thread, &jobs[i]);
    }
    int ok = 1;
    for (int i = 0; i < NT; i++) {
        pthread_join(th[i], NULL);
        ok &= jobs[i].rc == 0 && !jobs[i].v.failed && jobs[i].v.reward == (i % 2 ? 1.0 : 0.0);
    }
    test_check(ok, "8 threads judging at once (3 injected 500s among them): every verdict right");
    test_check(server_requests() == NT + 3, "8 judgements + 3 retries = 11 requests (%d)", server_requests());
    genrm_config_free(&c);
    control("{}");
}

static void test_unreachable(void) {
    // A port nobody listens on: bind-free guess is racy, so use the server's port after it stops.
    remote_reward_config_t c = remote_reward_config_default();
    c.url = cispo_strdup(url_of("/reward"));
    c.http.timeout_s = 5, c.http.max_attempts = 3, c.http.backoff_s = 0.01, c.http.backoff_max_s = 0.02;
    verify_request_t req = {.gold = "42", .response = "42"};
    verdict_t v;
    int rc = remote_reward_score(&c, &req, &v);
    test_check(rc == -1 && v.failed && strstr(v.reason, "no HTTP answer after 3 attempt(s)") && strstr(v.reason, c.url),
               "no server: failed after 3 attempts, URL named: %s", v.reason);
    remote_reward_config_free(&c);
}

static void test_registry(void) {
    // The registry lives in rl/verifier.c; the names must resolve to these objects.
    const verifier_t *g = verifier_find("genrm"), *r = verifier_find("remote");
    test_check(g && g->verify == genrm_verify, "verifier_find(\"genrm\") is genrm_verify");
    test_check(r && r->verify == remote_reward_verify, "verifier_find(\"remote\") is remote_reward_verify");
}

int main(void) {
    setenv("no_proxy", "127.0.0.1,localhost", 1);  // loopback calls must not go through a proxy
    setenv("NO_PROXY", "127.0.0.1,localhost", 1);
    test_parse_score();
    test_render();
    if (!test_check(server_start() == 0, "start tests/remote/fake_judge.py (CISPO_PYTHON=%s)",
                    getenv("CISPO_PYTHON") ? getenv("CISPO_PYTHON") : "unset: python3")) {
        server_stop();
        return test_finish("test_remote_reward");
    }
    test_judge_scores();
    test_judge_template_file();
    test_retries();
    test_timeout();
    test_garbage();
    test_remote_service();
    test_threads();
    server_stop();
    test_unreachable();
    test_registry();
    return test_finish("test_remote_reward");
}
