// rl/code_verifier.c — the "code" verifier (code_verifier.h).
// defines: code_extract_block, code_verifier_config_from_env, code_verify_with, code_verify
#include <ctype.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "base/common.h"
#include "rl/code_verifier.h"
#include "sandbox/base64.h"
#include "sandbox/jail.h"
#include "sandbox/judge.h"
#include "sandbox/pool.h"
#include "sandbox/runner.h"

// ---- extraction ----

static const char *lang_of_tag(const char *tag, size_t n) {
    char t[16];
    if (n >= sizeof t) return NULL;
    for (size_t i = 0; i < n; i++) t[i] = (char)tolower((unsigned char)tag[i]);
    t[n] = 0;
    if (!n || !strcmp(t, "python") || !strcmp(t, "py") || !strcmp(t, "python3")) return "python";
    if (!strcmp(t, "cpp") || !strcmp(t, "c++") || !strcmp(t, "cc") || !strcmp(t, "cxx")) return "cpp";
    if (!strcmp(t, "c")) return "c";
    // the sandbox's other languages, under SandboxFusion's names
    if (!strcmp(t, "javascript") || !strcmp(t, "js") || !strcmp(t, "node") || !strcmp(t, "nodejs")) return "nodejs";
    if (!strcmp(t, "go") || !strcmp(t, "golang")) return "go";
    if (!strcmp(t, "rust") || !strcmp(t, "rs")) return "rust";
    if (!strcmp(t, "java")) return "java";
    if (!strcmp(t, "bash") || !strcmp(t, "sh") || !strcmp(t, "shell")) return "bash";
    return NULL;
}

static char *last_block(const char *s, char *lang, size_t lang_n) {
    char *best = NULL;
    const char *p = s;
    for (;;) {
        const char *open = strstr(p, "```");
        if (!open) break;
        const char *tag = open + 3, *eol = strchr(tag, '\n');
        if (!eol) break;
        while (tag < eol && (*tag == ' ' || *tag == '\t')) tag++;  // "``` python"
        size_t tn = 0;  // the first word: "```python title=x"
        while (tag + tn < eol && !isspace((unsigned char)tag[tn])) tn++;
        const char *body = eol + 1, *close = strstr(body, "```");
        if (!close) break;
        const char *l = lang_of_tag(tag, tn);
        if (l) {
            free(best);
            size_t n = (size_t)(close - body);
            best = cispo_malloc(n + 1);
            memcpy(best, body, n);
            best[n] = 0;
            snprintf(lang, lang_n, "%s", l);
        }
        p = close + 3;
    }
    return best;
}

char *code_extract_block(const char *response, char *lang, size_t lang_n) {
    if (!response) return NULL;
    const char *think = NULL, *q = response;
    while ((q = strstr(q, "</think>"))) think = q, q += 8;
    char *code = think ? last_block(think, lang, lang_n) : NULL;
    return code ? code : last_block(response, lang, lang_n);
}

// ---- configuration ----

int code_verifier_config_from_env(code_verifier_config_t *cfg) {
    memset(cfg, 0, sizeof *cfg);
    cfg->workers = 2;
    cfg->run_timeout = 10;
    cfg->memory_mb = 512;
    const char *url = getenv("CISPO_CODE_SANDBOX_URL");
    if (url && url[0]) {
        if (sandbox_client_from_env(&cfg->client)) return -1;
        cfg->remote = 1;
    }
    double w = cfg->workers, mem = cfg->memory_mb;
    if (http_env_number("CISPO_CODE_WORKERS", 1, 1024, &w) || http_env_number("CISPO_CODE_RUN_TIMEOUT", 0.1, 300, &cfg->run_timeout) ||
        http_env_number("CISPO_CODE_MEMORY_MB", 16, 16384, &mem))
        return -1;
    cfg->workers = (int)w;
    cfg->memory_mb = (int)mem;
    return 0;
}

// ---- local pool ----

static sandbox_pool_t *pool;
static pid_t pool_pid;  // the process that made it: a forked child makes its own
static char pool_err[1200];
static pthread_mutex_t pool_mu = PTHREAD_MUTEX_INITIALIZER;

static sandbox_pool_t *local_pool(int workers) {
    pthread_mutex_lock(&pool_mu);
    if (pool && pool_pid != getpid()) pool = NULL;  // the parent's workers answer the parent only
    if (!pool && !pool_err[0]) {
        const char *risk = getenv("CISPO_CODE_ALLOW_UNCONFINED");
        if (risk && !strcmp(risk, "1")) {  // the user accepts reduced isolation (see sandbox/README.md)
            jail_options_t o = *jail_get_options();
            o.allow_unconfined = 1;
            jail_set_options(&o);
        }
        pool = sandbox_pool_create(workers, pool_err, sizeof pool_err);
        pool_pid = getpid();
    }
    pthread_mutex_unlock(&pool_mu);
    return pool;
}

static int fail_verdict(verdict_t *out, const char *why) {
    out->failed = 1;
    out->correct = 0;
    out->reward = 0;
    size_t n = strlen(why);  // cut to the verdict's reason field
    if (n >= sizeof out->reason) n = sizeof out->reason - 1;
    memcpy(out->reason, why, n);
    out->reason[n] = 0;
    return -1;
}

static int verify_local(const code_verifier_config_t *cfg, const char *lang, const char *code, cJSON *tests,
                        const char *fn_name, verdict_t *out) {
    sandbox_pool_t *p = local_pool(cfg->workers);
    if (!p) {
        char why[1300];
        snprintf(why, sizeof why, "code sandbox: %s", pool_err);
        return fail_verdict(out, why);
    }
    cJSON *req = cJSON_CreateObject();
    cJSON_AddStringToObject(req, "language", lang);
    cJSON_AddStringToObject(req, "code", code);
    cJSON_AddItemReferenceToObject(req, "tests", tests);
    if (fn_name) cJSON_AddStringToObject(req, "fn_name", fn_name);
    cJSON_AddNumberToObject(req, "run_timeout", cfg->run_timeout);
    cJSON_AddNumberToObject(req, "memory_limit_MB", cfg->memory_mb);
    cJSON_AddTrueToObject(req, "stop_on_failure");  // the reward is all-or-nothing
    char *text = cJSON_PrintUnformatted(req);
    cJSON_Delete(req);
    char *res_text = sandbox_pool_run(p, text);
    free(text);
    cJSON *res = cJSON_Parse(res_text ? res_text : "");
    free(res_text);
    const cJSON *st = cJSON_GetObjectItemCaseSensitive(res, "status");
    if (!cJSON_IsString(st)) {
        cJSON_Delete(res);
        return fail_verdict(out, "code sandbox: the worker returned no result");
    }
    if (!strcmp(st->valuestring, "SandboxError")) {
        char why[256];
        const cJSON *m = cJSON_GetObjectItemCaseSensitive(res, "message");
        snprintf(why, sizeof why, "code sandbox: %s", cJSON_IsString(m) ? m->valuestring : "sandbox error");
        cJSON_Delete(res);
        return fail_verdict(out, why);
    }
    out->correct = !strcmp(st->valuestring, "Accepted");
    out->reward = out->correct ? 1.0 : 0.0;
    const cJSON *passed = cJSON_GetObjectItemCaseSensitive(res, "passed"), *total = cJSON_GetObjectItemCaseSensitive(res, "total");
    const char *first_reason = "";
    for (const cJSON *t = cJSON_GetObjectItemCaseSensitive(res, "tests") ? cJSON_GetObjectItemCaseSensitive(res, "tests")->child : NULL; t; t = t->next)
        if (!cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(t, "passed"))) {
            const cJSON *r = cJSON_GetObjectItemCaseSensitive(t, "reason");
            first_reason = cJSON_IsString(r) ? r->valuestring : "";
            break;
        }
    snprintf(out->reason, sizeof out->reason, "%s: %d/%d tests passed%s%s", st->valuestring,
             cJSON_IsNumber(passed) ? passed->valueint : 0, cJSON_IsNumber(total) ? total->valueint : cJSON_GetArraySize(tests),
             first_reason[0] ? "; " : "", first_reason);
    cJSON_Delete(res);
    return 0;
}

// ---- remote service: one /run_code per test, judged here ----

static int verify_remote(const code_verifier_config_t *cfg, const char *lang, const char *code, cJSON *tests,
                         const char *fn_name, verdict_t *out) {
    int n = cJSON_GetArraySize(tests), passed = 0, i = 0;
    char why[200] = "";
    char *files_json = NULL;
    if (fn_name) {  // the harness is the program; the solution travels as a request file
        char *b = sandbox_b64_encode(code, strlen(code));
        files_json = cispo_malloc(strlen(b) + 32);
        sprintf(files_json, "{\"solution.py\":\"%s\"}", b);
        free(b);
    }
    const char *failed_status = NULL;
    for (const cJSON *t = tests->child; t; t = t->next, i++) {
        char *in = NULL;
        const char *want_text = NULL;
        const cJSON *want_json = NULL;
        if (fn_name) {
            in = judge_call_input(fn_name, cJSON_GetObjectItemCaseSensitive(t, "input"), why, sizeof why);
            want_json = cJSON_GetObjectItemCaseSensitive(t, "output");
        } else {
            const cJSON *si = cJSON_GetObjectItemCaseSensitive(t, "stdin"), *so = cJSON_GetObjectItemCaseSensitive(t, "stdout");
            if (!si) si = cJSON_GetObjectItemCaseSensitive(t, "input");
            if (!so) so = cJSON_GetObjectItemCaseSensitive(t, "output");
            if (cJSON_IsString(si) && cJSON_IsString(so)) in = cispo_strdup(si->valuestring), want_text = so->valuestring;
            else snprintf(why, sizeof why, "test %d needs string stdin and stdout", i);
        }
        if (!in || (fn_name && !want_json)) {
            free(in);
            free(files_json);
            char msg[256];
            snprintf(msg, sizeof msg, "code verifier: the record's tests are malformed: %s", why);
            return fail_verdict(out, msg);
        }
        sandbox_run_t r;
        int rc = sandbox_client_run(&cfg->client, fn_name ? "python" : lang, fn_name ? sandbox_harness_py : code, in,
                                    files_json, cfg->run_timeout, 10, cfg->memory_mb, &r);
        free(in);
        if (rc != 0) {
            free(files_json);
            return fail_verdict(out, cispo_last_error());
        }
        int ok = 0;
        if (r.compile_status[0] && (strcmp(r.compile_status, "Finished") || r.compile_return_code != 0)) {
            failed_status = "CompileError";
            snprintf(why, sizeof why, "compilation failed");
        } else if (strcmp(r.run_status, "Finished")) {
            failed_status = !strcmp(r.run_status, "TimeLimitExceeded") ? "TimeLimitExceeded" : "RuntimeError";
            snprintf(why, sizeof why, "run status %s", r.run_status);
        } else if (r.return_code != 0) {
            failed_status = "RuntimeError";
            snprintf(why, sizeof why, "exit code %d", r.return_code);
        } else {
            ok = fn_name ? judge_call_output(r.stdout_text, want_json, why, sizeof why)
                         : judge_tokens(r.stdout_text, strlen(r.stdout_text), want_text, strlen(want_text), why, sizeof why);
            if (!ok) failed_status = "WrongAnswer";
        }
        sandbox_run_free(&r);
        if (!ok) break;  // the reward is all-or-nothing
        passed++;
    }
    free(files_json);
    out->correct = passed == n;
    out->reward = out->correct ? 1.0 : 0.0;
    snprintf(out->reason, sizeof out->reason, "%s: %d/%d tests passed%s%s", out->correct ? "Accepted" : failed_status, passed, n,
             why[0] && !out->correct ? "; " : "", out->correct ? "" : why);
    return 0;
}

int code_verify_with(const code_verifier_config_t *cfg, const verify_request_t *req, verdict_t *out) {
    memset(out, 0, sizeof *out);
    if (!req->tests_json) return fail_verdict(out, "code verifier: the record has no tests");
    cJSON *tests = cJSON_Parse(req->tests_json);
    if (!cJSON_IsArray(tests) || cJSON_GetArraySize(tests) == 0) {
        cJSON_Delete(tests);
        return fail_verdict(out, "code verifier: the record's tests are not a non-empty JSON array");
    }
    char lang[16];
    char *code = code_extract_block(req->response, lang, sizeof lang);
    if (!code) {  // a verdict, not a failure: the response has nothing to run
        cJSON_Delete(tests);
        snprintf(out->reason, sizeof out->reason, "no fenced code block in a language the sandbox runs (python, c, cpp, javascript, go, rust, java, bash) in the response");
        return 0;
    }
    snprintf(out->extracted, sizeof out->extracted, "%s", code);
    const char *fn = req->fn_name && req->fn_name[0] ? req->fn_name : NULL;
    int rc;
    if (fn && strcmp(lang, "python")) {
        out->correct = 0;
        snprintf(out->reason, sizeof out->reason, "call-based tests need Python; the code block is %s", lang);
        rc = 0;
    } else {
        rc = cfg->remote ? verify_remote(cfg, lang, code, tests, fn, out) : verify_local(cfg, lang, code, tests, fn, out);
    }
    free(code);
    cJSON_Delete(tests);
    return rc;
}

int code_verify(const verify_request_t *req, verdict_t *out) {
    code_verifier_config_t cfg;
    if (code_verifier_config_from_env(&cfg)) {
        memset(out, 0, sizeof *out);
        return fail_verdict(out, cispo_last_error());
    }
    return code_verify_with(&cfg, req, out);
}
