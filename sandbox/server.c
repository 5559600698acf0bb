// sandbox/server.c — SandboxFusion-compatible HTTP service (server.h).
// defines: sandbox_serve, sandbox_sf_response
//
// libmicrohttpd polls every connection from a few threads (epoll where there is one), so idle or
// slow clients hold no thread; a connection's limits: an idle timeout, a deadline for its whole
// request body, and counts per client address and in all. A complete request is handed to one of
// `workers` runner threads and its connection suspended until the result is there; a runner
// watches the client's socket meanwhile, and a client that goes away has its request dropped (or
// its jail killed, when it runs), so abandoned requests do not hold workers.
#include <arpa/inet.h>
#include <errno.h>
#include <pthread.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/buf.h"
#include "sandbox/pool.h"
#include "sandbox/runner.h"
#include "sandbox/server.h"

typedef struct upload upload_t;

typedef struct {
    sandbox_pool_t *pool;
    size_t max_body;
    double body_timeout;
    pthread_mutex_t mu;
    pthread_cond_t more;
    upload_t *head, *tail;  // complete requests waiting for a runner
    int stopping;
} server_t;

struct upload {
    buf_t body;
    int too_big;
    double t0;                // when the headers were complete
    int state;                // 0 reading, 1 with a runner (connection suspended), 2 result there
    char *req, *res;          // the worker's request; its result (NULL: cancelled)
    int sock;                 // the client's socket
    struct MHD_Connection *c;
    upload_t *next;
};

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

// libmicrohttpd's messages (a line per dropped connection), at most 20 a second: many slow or
// abandoned clients must not flood the log
static void mhd_log(void *cls, const char *fmt, va_list ap) {
    static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
    static double second;
    static int lines, dropped;
    (void)cls;
    pthread_mutex_lock(&mu);
    double t = now_s();
    if (t - second >= 1.0) {
        if (dropped) fprintf(stderr, "cispo sandbox serve: %d more libmicrohttpd messages not shown\n", dropped);
        second = t, lines = 0, dropped = 0;
    }
    if (lines++ < 20) fputs("cispo sandbox serve: ", stderr), vfprintf(stderr, fmt, ap);
    else dropped++;
    pthread_mutex_unlock(&mu);
}

// A runner: takes complete requests in turn, runs each on the pool while watching its client, and
// resumes its connection. When the server stops, the requests still waiting are dropped.
static void *runner(void *arg) {
    server_t *s = arg;
    pthread_mutex_lock(&s->mu);
    for (;;) {
        while (!s->head && !s->stopping) pthread_cond_wait(&s->more, &s->mu);
        upload_t *u = s->head;
        if (!u) break;
        s->head = u->next;
        if (!s->head) s->tail = NULL;
        int stopping = s->stopping;
        pthread_mutex_unlock(&s->mu);
        u->res = stopping ? NULL : sandbox_pool_run_watch(s->pool, u->req, u->sock);
        free(u->req);
        u->req = NULL;
        u->state = 2;
        MHD_resume_connection(u->c);  // u may be freed from here on
        pthread_mutex_lock(&s->mu);
    }
    pthread_mutex_unlock(&s->mu);
    return NULL;
}

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

static enum MHD_Result answer(struct MHD_Connection *c, char *res) {
    cJSON *result = res ? cJSON_Parse(res) : NULL;
    free(res);
    const cJSON *rs = cJSON_GetObjectItemCaseSensitive(result, "status");
    const cJSON *bad = cJSON_GetObjectItemCaseSensitive(result, "bad_request");
    enum MHD_Result r;
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
    return r;
}

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
    else if (!cJSON_IsString(lang)) {
        snprintf(msg, sizeof msg, "missing 'language' (%s)", sandbox_lang_list());
        r = reply_error(c, MHD_HTTP_BAD_REQUEST, msg);
    } else if (!sandbox_lang_known(lang->valuestring)) {
        snprintf(msg, sizeof msg, "unsupported language '%.60s': this sandbox runs %s", lang->valuestring, sandbox_lang_list());
        r = reply_error(c, MHD_HTTP_BAD_REQUEST, msg);
    } else {
        cJSON *known = cJSON_CreateObject();  // /run_code is one plain run: no tests, no fn_name
        for (size_t i = 0; i < sizeof run_code_fields / sizeof run_code_fields[0]; i++) {
            cJSON *v = cJSON_DetachItemFromObjectCaseSensitive(req, run_code_fields[i]);
            if (v) cJSON_AddItemToObject(known, run_code_fields[i], v);
        }
        u->req = cJSON_PrintUnformatted(known);
        cJSON_Delete(known);
        const union MHD_ConnectionInfo *ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
        u->sock = ci ? ci->connect_fd : -1;
        u->c = c;
        pthread_mutex_lock(&s->mu);
        if (s->stopping) {  // the runners are gone: a suspended connection would never resume
            pthread_mutex_unlock(&s->mu);
            r = reply_error(c, MHD_HTTP_SERVICE_UNAVAILABLE, "the sandbox service is stopping");
        } else {
            u->state = 1;
            // suspended before a runner can take it; the handler is called again once resumed
            MHD_suspend_connection(c);
            u->next = NULL;
            if (s->tail) s->tail->next = u;
            else s->head = u;
            s->tail = u;
            pthread_cond_signal(&s->more);
            pthread_mutex_unlock(&s->mu);
            r = MHD_YES;
        }
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
        if (!u) return MHD_NO;
        u->t0 = now_s();
        u->sock = -1;
        return MHD_YES;
    }
    if (u->state == 2) {  // resumed with the result; NULL: the client went away
        char *res = u->res;
        u->res = NULL;
        return res ? answer(c, res) : MHD_NO;
    }
    if (u->state == 1) return MHD_YES;  // not expected while suspended
    if (s->body_timeout > 0 && now_s() - u->t0 > s->body_timeout) return MHD_NO;  // a body sent too slowly: closed
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
    if (u) buf_free(&u->body), free(u->req), free(u->res), free(u);
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
    server_t s = {.pool = pool, .max_body = o->max_body ? o->max_body : (16u << 20),
                  .body_timeout = o->body_timeout > 0 ? o->body_timeout : 60};
    pthread_mutex_init(&s.mu, NULL);
    pthread_cond_init(&s.more, NULL);
    unsigned max_conn = (unsigned)(o->max_connections > 0 ? o->max_connections : 1024);
    struct rlimit rl;  // each connection is a descriptor: room for them, the workers' and MHD's own
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < (rlim_t)max_conn + 64 + 2 * (rlim_t)sandbox_pool_size(pool)) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
        if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < (rlim_t)max_conn + 64 + 2 * (rlim_t)sandbox_pool_size(pool)) {
            fprintf(stderr, "cispo sandbox serve: the descriptor limit (%llu) is too low for --max-connections %u\n",
                    (unsigned long long)rl.rlim_cur, max_conn);
            sandbox_pool_destroy(pool);
            return 1;
        }
    }
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
        MHD_USE_AUTO_INTERNAL_THREAD | MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ITC | MHD_USE_ERROR_LOG, (uint16_t)o->port, NULL, NULL,
        handler, &s, MHD_OPTION_EXTERNAL_LOGGER, mhd_log, NULL, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&addr, MHD_OPTION_NOTIFY_COMPLETED, completed, NULL,
        MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)(o->client_timeout > 0 ? o->client_timeout : 30),
        MHD_OPTION_CONNECTION_LIMIT, max_conn,
        MHD_OPTION_PER_IP_CONNECTION_LIMIT, (unsigned)(o->max_per_ip > 0 ? o->max_per_ip : 256),
        MHD_OPTION_THREAD_POOL_SIZE, (unsigned)(o->http_threads > 0 ? o->http_threads : 2), MHD_OPTION_END);
    int nr = sandbox_pool_size(pool), started = 0;
    pthread_t *runners = d ? calloc((size_t)nr, sizeof *runners) : NULL;
    for (int i = 0; runners && i < nr; i++) started += pthread_create(&runners[started], NULL, runner, &s) == 0;
    if (d && started == 0) {
        MHD_stop_daemon(d);
        d = NULL;
    }
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
    MHD_socket lsock = MHD_quiesce_daemon(d);  // no new connections; runs under way finish, waiting requests are dropped
    pthread_mutex_lock(&s.mu);
    s.stopping = 1;
    pthread_cond_broadcast(&s.more);
    pthread_mutex_unlock(&s.mu);
    for (int i = 0; i < started; i++) pthread_join(runners[i], NULL);
    free(runners);
    MHD_stop_daemon(d);
    if (lsock != MHD_INVALID_SOCKET) close(lsock);
    sandbox_pool_destroy(pool);
    return 0;
}
