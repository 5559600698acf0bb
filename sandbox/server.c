// sandbox/server.c — SandboxFusion-compatible HTTP service (server.h).
// defines: sandbox_serve, sandbox_sf_response
//
// One thread per connection (libmicrohttpd), each blocking on the worker pool, so a slow run or a
// slow client only holds its own thread; the pool bounds how many jails run at once.
#include <arpa/inet.h>
#include <errno.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/buf.h"
#include "sandbox/pool.h"
#include "sandbox/runner.h"
#include "sandbox/server.h"

typedef struct {
    sandbox_pool_t *pool;
    size_t max_body;
} server_t;

typedef struct {
    buf_t body;
    int too_big;
} upload_t;

static enum MHD_Result reply(struct MHD_Connection *c, unsigned code, const char *body, const char *type) {
    struct MHD_Response *r = MHD_create_response_from_buffer(strlen(body), (void *)body, MHD_RESPMEM_MUST_COPY);
    if (!r) return MHD_NO;
    MHD_add_response_header(r, "Content-Type", type);
    enum MHD_Result ok = MHD_queue_response(c, code, r);
    MHD_destroy_response(r);
    return ok;
}

static enum MHD_Result reply_error(struct MHD_Connection *c, unsigned code, const char *msg) {
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "status", "SandboxError");
    cJSON_AddStringToObject(o, "message", msg);
    char *s = cJSON_PrintUnformatted(o);
    enum MHD_Result r = reply(c, code, s, "application/json");
    free(s);
    cJSON_Delete(o);
    return r;
}

static const char *sf_status(const char *ours) {
    if (!strcmp(ours, "TimeLimitExceeded")) return "TimeLimitExceeded";
    if (!strcmp(ours, "Finished") || !strcmp(ours, "RuntimeError")) return "Finished";
    return "Error";  // memory, output limits
}

static cJSON *sf_command(const cJSON *step) {
    if (!cJSON_IsObject(step)) return cJSON_CreateNull();
    cJSON *o = cJSON_CreateObject();
    const cJSON *st = cJSON_GetObjectItemCaseSensitive(step, "status");
    const cJSON *ec = cJSON_GetObjectItemCaseSensitive(step, "exit_code"), *sig = cJSON_GetObjectItemCaseSensitive(step, "signal");
    const char *s = cJSON_IsString(st) ? st->valuestring : "Error";
    cJSON_AddStringToObject(o, "status", sf_status(s));
    cJSON_AddNumberToObject(o, "execution_time", cJSON_GetObjectItemCaseSensitive(step, "time")->valuedouble);
    cJSON_AddNumberToObject(o, "cpu_time", cJSON_GetObjectItemCaseSensitive(step, "cpu_time")->valuedouble);
    if (ec && ec->valueint >= 0) cJSON_AddNumberToObject(o, "return_code", ec->valueint);
    else if (sig && sig->valueint > 0) cJSON_AddNumberToObject(o, "return_code", -sig->valueint);  // Python's convention
    else cJSON_AddNullToObject(o, "return_code");
    cJSON_AddStringToObject(o, "stdout", cJSON_GetObjectItemCaseSensitive(step, "stdout")->valuestring);
    cJSON_AddStringToObject(o, "stderr", cJSON_GetObjectItemCaseSensitive(step, "stderr")->valuestring);
    return o;
}

cJSON *sandbox_sf_response(const cJSON *result) {
    cJSON *o = cJSON_CreateObject();
    const cJSON *st = cJSON_GetObjectItemCaseSensitive(result, "status");
    const cJSON *msg = cJSON_GetObjectItemCaseSensitive(result, "message");
    const char *s = cJSON_IsString(st) ? st->valuestring : "SandboxError";
    const cJSON *run = cJSON_GetObjectItemCaseSensitive(result, "run");
    const char *top = !strcmp(s, "SandboxError") ? "SandboxError" : !strcmp(s, "Finished") ? "Success" : "Failed";
    cJSON_AddStringToObject(o, "status", top);
    cJSON_AddStringToObject(o, "message", cJSON_IsString(msg) ? msg->valuestring : "");
    cJSON_AddItemToObject(o, "compile_result", sf_command(cJSON_GetObjectItemCaseSensitive(result, "compile")));
    cJSON_AddItemToObject(o, "run_result", sf_command(run));
    cJSON_AddNullToObject(o, "executor_pod_name");
    const cJSON *files = cJSON_GetObjectItemCaseSensitive(result, "files");
    cJSON_AddItemToObject(o, "files", cJSON_IsObject(files) ? cJSON_Duplicate(files, 1) : cJSON_CreateObject());
    return o;
}

// The fields of POST /run_code the worker gets; anything else a client sends stays here (it used to
// be printed again and parsed again by the worker: megabytes of unknown fields cost gigabytes).
static const char *const run_code_fields[] = {"code", "language", "stdin", "compile_timeout", "run_timeout", "memory_limit_MB",
                                              "files", "fetch_files"};

static enum MHD_Result run_code(server_t *s, struct MHD_Connection *c, upload_t *u) {
    if (sandbox_json_has_nul(u->body.s ? u->body.s : "", u->body.n))
        return reply_error(c, MHD_HTTP_BAD_REQUEST, "NUL characters (\\u0000) in the request's strings are not supported");
    cJSON *req = cJSON_ParseWithLength(u->body.s ? u->body.s : "", u->body.n);
    buf_free(&u->body);  // parsed: the body's bytes are not needed twice
    if (!req || !cJSON_IsObject(req)) {
        cJSON_Delete(req);
        return reply_error(c, MHD_HTTP_BAD_REQUEST, "request body is not a JSON object");
    }
    const cJSON *lang = cJSON_GetObjectItemCaseSensitive(req, "language"), *code = cJSON_GetObjectItemCaseSensitive(req, "code");
    char msg[200];
    enum MHD_Result r;
    if (!cJSON_IsString(code)) r = reply_error(c, MHD_HTTP_BAD_REQUEST, "missing 'code' (a string)");
    else if (!cJSON_IsString(lang)) r = reply_error(c, MHD_HTTP_BAD_REQUEST, "missing 'language' (python, c or cpp)");
    else if (!sandbox_lang_known(lang->valuestring)) {
        snprintf(msg, sizeof msg, "unsupported language '%.60s': this sandbox runs python, c and cpp", lang->valuestring);
        r = reply_error(c, MHD_HTTP_BAD_REQUEST, msg);
    } else {
        cJSON *known = cJSON_CreateObject();  // /run_code is one plain run: no tests, no fn_name
        for (size_t i = 0; i < sizeof run_code_fields / sizeof run_code_fields[0]; i++) {
            cJSON *v = cJSON_DetachItemFromObjectCaseSensitive(req, run_code_fields[i]);
            if (v) cJSON_AddItemToObject(known, run_code_fields[i], v);
        }
        char *text = cJSON_PrintUnformatted(known);
        cJSON_Delete(known);
        char *res = sandbox_pool_run(s->pool, text);
        free(text);
        cJSON *result = res ? cJSON_Parse(res) : NULL;
        free(res);
        const cJSON *rs = cJSON_GetObjectItemCaseSensitive(result, "status");
        const cJSON *bad = cJSON_GetObjectItemCaseSensitive(result, "bad_request");
        if (!result) r = reply_error(c, MHD_HTTP_INTERNAL_SERVER_ERROR, "the sandbox worker returned no result");
        else if (cJSON_IsTrue(bad) && cJSON_IsString(rs)) {
            r = reply_error(c, MHD_HTTP_BAD_REQUEST, cJSON_GetObjectItemCaseSensitive(result, "message")->valuestring);
        } else {
            cJSON *sf = sandbox_sf_response(result);
            char *out = cJSON_PrintUnformatted(sf);
            r = reply(c, MHD_HTTP_OK, out, "application/json");
            free(out);
            cJSON_Delete(sf);
        }
        cJSON_Delete(result);
    }
    cJSON_Delete(req);
    return r;
}

static enum MHD_Result handler(void *cls, struct MHD_Connection *c, const char *url, const char *method,
                               const char *version, const char *data, size_t *data_size, void **con_cls) {
    (void)version;
    server_t *s = cls;
    upload_t *u = *con_cls;
    int is_post = !strcmp(method, "POST");
    if (!u) {
        if (!strcmp(url, "/v1/ping") || !strcmp(url, "/ping")) {
            if (strcmp(method, "GET")) return reply_error(c, MHD_HTTP_METHOD_NOT_ALLOWED, "use GET /v1/ping");
            return reply(c, MHD_HTTP_OK, "\"pong\"", "application/json");
        }
        if (strcmp(url, "/run_code")) return reply_error(c, MHD_HTTP_NOT_FOUND, "unknown path: the API is POST /run_code and GET /v1/ping");
        if (!is_post) return reply_error(c, MHD_HTTP_METHOD_NOT_ALLOWED, "use POST /run_code with a JSON body");
        const char *cl = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
        if (cl && strtoull(cl, NULL, 10) > s->max_body) {
            char msg[120];
            snprintf(msg, sizeof msg, "request body of %s bytes is over the limit of %zu bytes", cl, s->max_body);
            return reply_error(c, MHD_HTTP_CONTENT_TOO_LARGE, msg);
        }
        *con_cls = u = calloc(1, sizeof *u);
        return u ? MHD_YES : MHD_NO;
    }
    if (*data_size) {  // a chunk of the body
        if (!u->too_big && u->body.n + *data_size > s->max_body) u->too_big = 1;
        if (!u->too_big) buf_append(&u->body, data, *data_size);
        *data_size = 0;
        return MHD_YES;
    }
    if (u->too_big) return reply_error(c, MHD_HTTP_CONTENT_TOO_LARGE, "request body is over the size limit");
    return run_code(s, c, u);
}

static void completed(void *cls, struct MHD_Connection *c, void **con_cls, enum MHD_RequestTerminationCode toe) {
    (void)cls, (void)c, (void)toe;
    upload_t *u = *con_cls;
    if (u) buf_free(&u->body), free(u);
    *con_cls = NULL;
}

int sandbox_serve(const sandbox_server_opts_t *o) {
    char err[1200];
    signal(SIGPIPE, SIG_IGN);
    // block the stop signals before any thread starts, so only sigwait below sees them
    sigset_t stop;
    sigemptyset(&stop);
    sigaddset(&stop, SIGINT);
    sigaddset(&stop, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &stop, NULL);
    sandbox_pool_t *pool = sandbox_pool_create(o->workers, err, sizeof err);
    if (!pool) {
        fprintf(stderr, "cispo sandbox serve: %s\n", err);
        return 1;
    }
    server_t s = {pool, o->max_body ? o->max_body : (16u << 20)};
    struct sockaddr_in addr;
    memset(&addr, 0, sizeof addr);
    addr.sin_family = AF_INET;
    addr.sin_port = htons((uint16_t)o->port);
    if (inet_pton(AF_INET, o->bind ? o->bind : "127.0.0.1", &addr.sin_addr) != 1) {
        fprintf(stderr, "cispo sandbox serve: --bind %s is not an IPv4 address\n", o->bind);
        sandbox_pool_destroy(pool);
        return 1;
    }
    struct MHD_Daemon *d = MHD_start_daemon(
        MHD_USE_THREAD_PER_CONNECTION | MHD_USE_POLL_INTERNAL_THREAD | MHD_USE_ERROR_LOG, (uint16_t)o->port, NULL, NULL,
        handler, &s, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&addr, MHD_OPTION_NOTIFY_COMPLETED, completed, NULL,
        MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)(o->client_timeout > 0 ? o->client_timeout : 30),
        MHD_OPTION_CONNECTION_LIMIT, (unsigned)(o->max_connections > 0 ? o->max_connections : 256), MHD_OPTION_END);
    if (!d) {
        fprintf(stderr, "cispo sandbox serve: cannot listen on %s:%d (%s): is the port in use?\n", o->bind, o->port, strerror(errno));
        sandbox_pool_destroy(pool);
        return 1;
    }
    fprintf(stderr, "cispo sandbox serve: listening on http://%s:%d with %d workers (POST /run_code, GET /v1/ping)\n",
            o->bind, o->port, sandbox_pool_size(pool));
    int sig;
    sigwait(&stop, &sig);
    fprintf(stderr, "cispo sandbox serve: signal %d, stopping\n", sig);
    MHD_stop_daemon(d);
    sandbox_pool_destroy(pool);
    return 0;
}
