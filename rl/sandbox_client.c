// rl/sandbox_client.c — SandboxFusion /run_code client (sandbox_client.h).
// defines: sandbox_client_default, sandbox_client_from_env, sandbox_client_run, sandbox_run_free
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "base/common.h"
#include "rl/sandbox_client.h"

sandbox_client_t sandbox_client_default(const char *url) {
    sandbox_client_t c = {url, http_options_default(), 3};
    return c;
}

int sandbox_client_from_env(sandbox_client_t *c) {
    const char *url = getenv("CISPO_CODE_SANDBOX_URL");
    if (!url || !url[0])
        return cispo_fail("code sandbox: CISPO_CODE_SANDBOX_URL is not set: set it to a SandboxFusion-compatible "
                          "service (e.g. http://127.0.0.1:8080 from `cispo sandbox serve`)");
    *c = sandbox_client_default(url);
    double t = c->http.timeout_s, retries = c->http.max_attempts - 1;
    if (http_env_number("CISPO_CODE_SANDBOX_TIMEOUT", 0.1, 3600, &t) || http_env_number("CISPO_CODE_SANDBOX_RETRIES", 0, 100, &retries))
        return -1;
    c->http.timeout_s = t;
    c->http.max_attempts = 1 + (int)retries;
    return 0;
}

static void copy_field(char *dst, size_t n, const cJSON *o, const char *k) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    snprintf(dst, n, "%s", cJSON_IsString(v) ? v->valuestring : "");
}

static char *dup_field(const cJSON *o, const char *k) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    return cispo_strdup(cJSON_IsString(v) ? v->valuestring : "");
}

static int int_field(const cJSON *o, const char *k) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsNumber(v) ? v->valueint : -1000;
}

int sandbox_client_run(const sandbox_client_t *c, const char *language, const char *code, const char *stdin_text,
                       const char *files_json, double run_timeout, double compile_timeout, int memory_mb,
                       sandbox_run_t *out) {
    memset(out, 0, sizeof *out);
    cJSON *req = cJSON_CreateObject();
    cJSON_AddStringToObject(req, "code", code);
    cJSON_AddStringToObject(req, "language", language);
    if (stdin_text) cJSON_AddStringToObject(req, "stdin", stdin_text);
    cJSON_AddNumberToObject(req, "run_timeout", run_timeout);
    cJSON_AddNumberToObject(req, "compile_timeout", compile_timeout);
    if (memory_mb > 0) cJSON_AddNumberToObject(req, "memory_limit_MB", memory_mb);
    cJSON *files = files_json ? cJSON_Parse(files_json) : NULL;
    cJSON_AddItemToObject(req, "files", files ? files : cJSON_CreateObject());
    char *body = cJSON_PrintUnformatted(req);
    cJSON_Delete(req);
    char url[1024];
    snprintf(url, sizeof url, "%s%s", c->url, strstr(c->url, "/run_code") ? "" : "/run_code");
    // the service's own timeouts come first; give each attempt room for them
    http_options_t h = c->http;
    if (h.timeout_s < run_timeout + compile_timeout + 10) h.timeout_s = run_timeout + compile_timeout + 10;
    int rc = -1;
    for (int attempt = 1; attempt <= (c->sandbox_error_attempts > 0 ? c->sandbox_error_attempts : 1); attempt++) {
        http_response_t r;
        if (http_post_json(url, body, &h, &r) != 0) {  // http_client already retried what was transient
            http_response_free(&r);
            break;
        }
        cJSON *resp = cJSON_Parse(r.body ? r.body : "");
        char snippet[160];
        http_snippet(snippet, sizeof snippet, r.body);
        http_response_free(&r);
        if (!cJSON_IsObject(resp)) {
            cJSON_Delete(resp);
            cispo_fail("POST %s: the answer is not a JSON object: %s", url, snippet);
            break;
        }
        copy_field(out->status, sizeof out->status, resp, "status");
        if (!strcmp(out->status, "SandboxError") || (strcmp(out->status, "Success") && strcmp(out->status, "Failed"))) {
            const cJSON *m = cJSON_GetObjectItemCaseSensitive(resp, "message");
            cispo_fail("POST %s: the service answered status '%s' (%s) after %d attempt(s)", url, out->status,
                       cJSON_IsString(m) ? m->valuestring : "no message", attempt);
            cJSON_Delete(resp);
            if (attempt < c->sandbox_error_attempts) usleep((useconds_t)(h.backoff_s * 1e6 * attempt));
            continue;
        }
        const cJSON *run = cJSON_GetObjectItemCaseSensitive(resp, "run_result");
        const cJSON *comp = cJSON_GetObjectItemCaseSensitive(resp, "compile_result");
        copy_field(out->run_status, sizeof out->run_status, run, "status");
        copy_field(out->compile_status, sizeof out->compile_status, comp, "status");
        out->return_code = int_field(run, "return_code");
        out->compile_return_code = int_field(comp, "return_code");
        const cJSON *et = cJSON_GetObjectItemCaseSensitive(run, "execution_time");
        out->execution_time = cJSON_IsNumber(et) ? et->valuedouble : 0;
        out->stdout_text = dup_field(run, "stdout");
        out->stderr_text = dup_field(run, "stderr");
        out->compile_stderr = dup_field(comp, "stderr");
        cJSON_Delete(resp);
        rc = 0;
        break;
    }
    free(body);
    return rc;
}

void sandbox_run_free(sandbox_run_t *r) {
    free(r->stdout_text);
    free(r->stderr_text);
    free(r->compile_stderr);
    memset(r, 0, sizeof *r);
}
