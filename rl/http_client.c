// rl/http_client.c — JSON POST with timeout, retries, exponential backoff + jitter (http_client.h).
// defines: http_options_default, http_post_json, http_response_free, http_env_number, http_snippet
#include "rl/http_client.h"

#include <curl/curl.h>
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "base/buf.h"
#include "base/common.h"
#include "base/rng.h"

// A response larger than this is not a reward or a judge's reply: stop reading, fail the attempt.
#define HTTP_BODY_MAX ((size_t)16 << 20)

http_options_t http_options_default(void) {
    http_options_t o = {.timeout_s = 60,
                        .connect_timeout_s = 10,
                        .max_attempts = 4,
                        .backoff_s = 0.5,
                        .backoff_max_s = 30,
                        .retry_after_max_s = 120,
                        .bearer_token = NULL};
    return o;
}

void http_response_free(http_response_t *r) {
    if (!r) return;
    free(r->body);
    r->body = NULL;
    r->body_len = 0;
}

// curl_global_init is not thread-safe: run it once per process.
static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static CURLcode curl_init_rc;
static void curl_init_once(void) { curl_init_rc = curl_global_init(CURL_GLOBAL_DEFAULT); }

typedef struct {
    buf_t b;
    int overflow;
} body_t;

static size_t on_body(char *p, size_t size, size_t n, void *user) {
    body_t *r = user;
    size_t add = size * n;
    if (r->b.n + add > HTTP_BODY_MAX) {
        r->overflow = 1;
        return 0;  // makes curl stop with CURLE_WRITE_ERROR
    }
    buf_append(&r->b, p, add);
    return add;
}

// Jitter source: per thread, seeded from the clock, the pid and the thread's own address, so forked
// workers started in the same microsecond still spread out.
static double jitter_uniform(void) {
    static _Thread_local uint64_t s;
    if (!s) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        s = ((uint64_t)ts.tv_nsec * 0x9E3779B97F4A7C15ull) ^ ((uint64_t)getpid() << 32) ^ (uint64_t)(uintptr_t)&s;
    }
    return rng_uniform(&s);
}

static void sleep_s(double s) {
    if (s <= 0) return;
    struct timespec ts = {(time_t)s, (long)((s - (double)(time_t)s) * 1e9)};
    while (nanosleep(&ts, &ts) != 0) {
    }
}

void http_snippet(char *dst, size_t n, const char *text) {
    if (!n) return;
    size_t i = 0;
    for (; text && text[i] && i + 1 < n; i++) dst[i] = (unsigned char)text[i] < 32 ? ' ' : text[i];
    dst[i] = 0;
    if (text && text[i] && n > 4) strcpy(dst + n - 4, "...");
}

int http_env_number(const char *name, double lo, double hi, double *v) {
    const char *s = getenv(name);
    if (!s || !*s) return 0;
    char *end;
    errno = 0;
    double x = strtod(s, &end);
    if (end == s || *end || errno || !(x >= lo && x <= hi))
        return cispo_fail("%s='%s': expected a number in [%g, %g]", name, s, lo, hi);
    *v = x;
    return 0;
}

int http_post_json(const char *url, const char *body, const http_options_t *opt_in, http_response_t *out) {
    memset(out, 0, sizeof *out);
    http_options_t opt = opt_in ? *opt_in : http_options_default();
    if (!url || !*url) return cispo_fail("HTTP POST: no URL given");
    if (opt.max_attempts < 1) opt.max_attempts = 1;
    if (opt.timeout_s <= 0) return cispo_fail("POST %s: timeout must be > 0 s (got %g)", url, opt.timeout_s);
    double connect_s = opt.connect_timeout_s > 0 && opt.connect_timeout_s < opt.timeout_s ? opt.connect_timeout_s
                                                                                           : opt.timeout_s;
    pthread_once(&curl_once, curl_init_once);
    if (curl_init_rc != CURLE_OK) return cispo_fail("POST %s: libcurl init failed: %s", url, curl_easy_strerror(curl_init_rc));

    CURL *h = curl_easy_init();
    if (!h) return cispo_fail("POST %s: curl_easy_init failed", url);
    struct curl_slist *headers = curl_slist_append(NULL, "Content-Type: application/json");
    headers = curl_slist_append(headers, "Accept: application/json");
    headers = curl_slist_append(headers, "Expect:");  // no 100-continue round trip for big bodies
    char auth[1024];
    if (opt.bearer_token && *opt.bearer_token) {
        snprintf(auth, sizeof auth, "Authorization: Bearer %s", opt.bearer_token);
        headers = curl_slist_append(headers, auth);
    }
    CHECK_ALLOC(headers);

    char last[512] = "";    // the last failure, for the message
    int retryable = 1, rc = -1;
    for (int attempt = 1; attempt <= opt.max_attempts && retryable; attempt++) {
        body_t b = {0};
        char errbuf[CURL_ERROR_SIZE] = "";
        curl_easy_reset(h);
        curl_easy_setopt(h, CURLOPT_URL, url);
        curl_easy_setopt(h, CURLOPT_HTTPHEADER, headers);
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, body ? body : "");
        curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)(body ? strlen(body) : 0));
        curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
        curl_easy_setopt(h, CURLOPT_WRITEDATA, &b);
        curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);
        curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, (long)(opt.timeout_s * 1000));
        curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, (long)(connect_s * 1000));
        curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);  // no SIGALRM for DNS timeouts: threads and workers
        curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L);
        curl_easy_setopt(h, CURLOPT_USERAGENT, "cispo-http/1");

        CURLcode cc = curl_easy_perform(h);
        out->attempts = attempt;
        free(out->body);
        out->body = b.b.s, out->body_len = b.b.n, out->status = 0;
        double wait = -1;  // < 0: the backoff schedule decides
        if (cc != CURLE_OK) {
            if (b.overflow)
                snprintf(last, sizeof last, "response body over %zu MiB", HTTP_BODY_MAX >> 20), retryable = 0;
            else
                snprintf(last, sizeof last, "%s%s%s", curl_easy_strerror(cc), errbuf[0] ? ": " : "", errbuf);
        } else {
            curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &out->status);
            if (out->status >= 200 && out->status < 300) {
                rc = 0;
                break;
            }
            char snip[200];
            http_snippet(snip, sizeof snip, b.b.s);
            retryable = out->status == 429 || out->status >= 500;
            snprintf(last, sizeof last, "HTTP %ld%s: %s", out->status, retryable ? "" : " (not retried)",
                     snip[0] ? snip : "(empty body)");
            // libcurl reports 0 both for "Retry-After: 0" and for no header: 0 falls back to the backoff.
            curl_off_t ra = 0;
            if (retryable && curl_easy_getinfo(h, CURLINFO_RETRY_AFTER, &ra) == CURLE_OK && ra > 0)
                wait = (double)ra < opt.retry_after_max_s ? (double)ra : opt.retry_after_max_s;
        }
        if (!retryable || attempt == opt.max_attempts) break;
        if (wait < 0) {
            double d = opt.backoff_s;
            for (int k = 1; k < attempt && d < opt.backoff_max_s; k++) d *= 2;
            if (d > opt.backoff_max_s) d = opt.backoff_max_s;
            wait = d * (0.5 + 0.5 * jitter_uniform());
        }
        sleep_s(wait);
    }
    curl_slist_free_all(headers);
    curl_easy_cleanup(h);
    if (rc == 0) return 0;
    return cispo_fail("POST %s: %s after %d attempt(s): %s", url,
                      out->status ? "failed" : "no HTTP answer", out->attempts, last);
}
