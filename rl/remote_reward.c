// rl/remote_reward.c — reward from a user's HTTP service (remote_reward.h).
// defines: remote_reward_config_default, remote_reward_config_from_env, remote_reward_config_free,
//          remote_reward_score, remote_reward_verify
#include "rl/remote_reward.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/common.h"

remote_reward_config_t remote_reward_config_default(void) {
    remote_reward_config_t c = {0};
    c.correct_at = 0.5;
    c.http = http_options_default();
    return c;
}

void remote_reward_config_free(remote_reward_config_t *c) {
    free(c->url), free(c->api_key);
    c->url = c->api_key = NULL;
}

int remote_reward_config_from_env(remote_reward_config_t *c) {
    *c = remote_reward_config_default();
    const char *url = getenv("CISPO_REMOTE_REWARD_URL");
    if (!url || !*url)
        return cispo_fail("remote reward: CISPO_REMOTE_REWARD_URL is not set: set it to the reward service's URL, "
                          "e.g. http://rm-host:9000/score");
    const char *key_var = getenv("CISPO_REMOTE_REWARD_API_KEY_ENV");
    const char *key = key_var && *key_var ? getenv(key_var) : NULL;
    if (key_var && *key_var && !(key && *key))
        return cispo_fail("remote reward: CISPO_REMOTE_REWARD_API_KEY_ENV names '%s', which is unset or empty: "
                          "export the token in it, or unset CISPO_REMOTE_REWARD_API_KEY_ENV", key_var);
    double retries = c->http.max_attempts - 1;
    if (http_env_number("CISPO_REMOTE_REWARD_CORRECT_AT", -1e30, 1e30, &c->correct_at) ||
        http_env_number("CISPO_REMOTE_REWARD_TIMEOUT", 1e-3, 1e5, &c->http.timeout_s) ||
        http_env_number("CISPO_REMOTE_REWARD_RETRIES", 0, 100, &retries))
        return -1;
    c->http.max_attempts = (int)retries + 1;
    c->url = cispo_strdup(url);
    if (key && *key) c->api_key = cispo_strdup(key);
    return 0;
}

// A failed verdict: reported with its reason, never a reward (the reason is cut to fit verdict_t).
static int failed(verdict_t *out, const char *fmt, ...) CISPO_PRINTF(2, 3);
static int failed(verdict_t *out, const char *fmt, ...) {
    out->failed = 1, out->correct = 0, out->reward = 0;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(out->reason, sizeof out->reason, fmt, ap);
    va_end(ap);
    return -1;
}

static cJSON *string_or_null(const char *s) { return s ? cJSON_CreateString(s) : cJSON_CreateNull(); }

int remote_reward_score(const remote_reward_config_t *cfg, const verify_request_t *req, verdict_t *out) {
    memset(out, 0, sizeof *out);
    if (!cfg->url) return failed(out, "remote reward: no URL configured");
    cJSON *meta = NULL;
    if (req->meta_json && *req->meta_json) {
        meta = cJSON_Parse(req->meta_json);
        if (!meta) return failed(out, "remote reward: the record's meta is not valid JSON: %.120s", req->meta_json);
    }
    cJSON *q = cJSON_CreateObject();
    cJSON_AddItemToObject(q, "prompt", string_or_null(req->question));
    cJSON_AddItemToObject(q, "response", string_or_null(req->response ? req->response : ""));
    cJSON_AddItemToObject(q, "answer", string_or_null(req->gold));
    cJSON_AddItemToObject(q, "meta", meta ? meta : cJSON_CreateNull());
    char *body = cJSON_PrintUnformatted(q);
    CHECK_ALLOC(body);
    cJSON_Delete(q);

    http_options_t http = cfg->http;
    http.bearer_token = cfg->api_key;
    http_response_t res;
    int rc = http_post_json(cfg->url, body, &http, &res);
    free(body);
    if (rc) {
        http_response_free(&res);
        return failed(out, "remote reward: %s", cispo_last_error());
    }
    char snip[160];
    http_snippet(snip, sizeof snip, res.body);
    cJSON *doc = cJSON_ParseWithLength(res.body ? res.body : "", res.body_len);
    http_response_free(&res);
    cJSON *reward = cJSON_IsObject(doc) ? cJSON_GetObjectItemCaseSensitive(doc, "reward") : NULL;
    if (!cJSON_IsNumber(reward) || !isfinite(reward->valuedouble)) {
        cJSON_Delete(doc);
        return failed(out,
                      !doc ? "remote reward: %s: reply is not JSON: %s"
                      : !reward ? "remote reward: %s: reply has no \"reward\": %s"
                                : "remote reward: %s: \"reward\" is not a finite number: %s",
                      cfg->url, snip);
    }
    out->reward = reward->valuedouble;
    out->correct = out->reward >= cfg->correct_at;
    cJSON *correct = cJSON_GetObjectItemCaseSensitive(doc, "correct");
    if (cJSON_IsBool(correct)) out->correct = cJSON_IsTrue(correct);
    else if (cJSON_IsNumber(correct)) out->correct = correct->valuedouble != 0;
    else if (correct && !cJSON_IsNull(correct)) {
        cJSON_Delete(doc);
        return failed(out, "remote reward: %s: \"correct\" is neither a bool nor a number: %s", cfg->url, snip);
    }
    cJSON *reason = cJSON_GetObjectItemCaseSensitive(doc, "reason");
    if (cJSON_IsString(reason)) snprintf(out->reason, sizeof out->reason, "%s", reason->valuestring);
    else snprintf(out->reason, sizeof out->reason, "remote reward %g", out->reward);
    cJSON_Delete(doc);
    return 0;
}

int remote_reward_verify(const verify_request_t *req, verdict_t *out) {
    remote_reward_config_t cfg;
    if (remote_reward_config_from_env(&cfg)) {
        memset(out, 0, sizeof *out);
        return failed(out, "%s", cispo_last_error());
    }
    int rc = remote_reward_score(&cfg, req, out);
    remote_reward_config_free(&cfg);
    return rc;
}
