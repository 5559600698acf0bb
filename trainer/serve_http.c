// trainer/serve_http.c — the HTTP side of `cispo serve` (serve.h): libmicrohttpd with one thread per
// connection, routing, body size limit, waiting for the engine, and server-sent events for streams.
// defines: serve_http_run
//
// Routes: GET /v1/models, GET /v1/models/{id}, GET /health, POST /v1/completions,
// POST /v1/chat/completions. A stream is a response whose reader blocks on the request's condition
// variable until the engine has something new; when the client goes away libmicrohttpd frees the
// reader, which cancels the request so that its slots are freed at the engine's next step.
#include <arpa/inet.h>
#include <errno.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "base/common.h"
#include "trainer/serve.h"

enum route { ROUTE_COMPLETIONS = 1, ROUTE_CHAT = 2 };

typedef struct {
    buf_t body;
    int too_big, route;
} upload_t;

typedef struct {
    const serve_config_t *s;
    serve_request_t *r;
    serve_stream_t st;
    buf_t pending;  // events not yet taken by the client
    size_t pos;
    char id[64];
    long created;
} stream_t;

static unsigned long long next_id;

static enum MHD_Result reply(struct MHD_Connection *c, unsigned code, char *body, const char *type) {
    struct MHD_Response *r = MHD_create_response_from_buffer(strlen(body), body, MHD_RESPMEM_MUST_FREE);
    if (!r) return free(body), MHD_NO;
    MHD_add_response_header(r, "Content-Type", type);
    enum MHD_Result ok = MHD_queue_response(c, code, r);
    MHD_destroy_response(r);
    return ok;
}

static enum MHD_Result reply_error(struct MHD_Connection *c, const serve_error_t *e) {
    return reply(c, (unsigned)e->status, serve_api_error_json(e), "application/json");
}

static enum MHD_Result error_now(struct MHD_Connection *c, int status, const char *param, const char *code, const char *msg) {
    serve_error_t e = {.status = status, .type = status == 503 ? "server_error" : "invalid_request_error", .param = param,
                       .code = code};
    snprintf(e.message, sizeof e.message, "%s", msg);
    return reply_error(c, &e);
}

static ssize_t stream_read(void *cls, uint64_t pos, char *out, size_t max) {
    (void)pos;
    stream_t *t = cls;
    if (t->pos == t->pending.n) {
        buf_clear(&t->pending);
        t->pos = 0;
        serve_engine_lock(t->s->engine);
        while (!serve_api_stream(t->s, t->r, &t->st, t->id, t->created, &t->pending) && t->pending.n == 0)
            serve_engine_wait(t->s->engine, t->r);
        serve_engine_unlock(t->s->engine);
        if (t->pending.n == 0) return MHD_CONTENT_READER_END_OF_STREAM;
    }
    size_t n = t->pending.n - t->pos < max ? t->pending.n - t->pos : max;
    memcpy(out, t->pending.s + t->pos, n);
    t->pos += n;
    return (ssize_t)n;
}

static void stream_free(void *cls) {
    stream_t *t = cls;
    serve_request_release(t->s->engine, t->r);
    buf_free(&t->pending);
    free(t->st.sent), free(t->st.sent_tokens), free(t->st.began), free(t->st.ended);
    free(t);
}

static enum MHD_Result generate(const serve_config_t *s, struct MHD_Connection *c, upload_t *u) {
    serve_error_t e;
    serve_request_t *r = serve_api_parse(s, u->body.s ? u->body.s : "", u->body.n, u->route == ROUTE_CHAT, &e);
    buf_free(&u->body);
    if (!r) return reply_error(c, &e);
    char msg[200];
    if (serve_engine_submit(s->engine, r, msg, sizeof msg)) {
        serve_request_release(NULL, r);
        return error_now(c, 503, NULL, "service_unavailable", msg);
    }
    char id[64];
    snprintf(id, sizeof id, "%s-%08lx%012llx", r->chat ? "chatcmpl" : "cmpl", (unsigned long)s->created & 0xffffffffUL,
             __atomic_add_fetch(&next_id, 1, __ATOMIC_RELAXED));
    long created = (long)time(NULL);
    if (r->stream) {
        stream_t *t = cispo_calloc(1, sizeof *t);
        t->s = s, t->r = r, t->created = created;
        snprintf(t->id, sizeof t->id, "%s", id);
        buf_init(&t->pending);
        t->st.sent = cispo_calloc((size_t)r->n_choices, sizeof(size_t));
        t->st.sent_tokens = cispo_calloc((size_t)r->n_choices, sizeof(int));
        t->st.began = cispo_calloc((size_t)r->n_choices, 1);
        t->st.ended = cispo_calloc((size_t)r->n_choices, 1);
        struct MHD_Response *resp = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 16384, stream_read, t, stream_free);
        if (!resp) return stream_free(t), MHD_NO;
        MHD_add_response_header(resp, "Content-Type", "text/event-stream");
        MHD_add_response_header(resp, "Cache-Control", "no-cache");
        enum MHD_Result ok = MHD_queue_response(c, MHD_HTTP_OK, resp);
        MHD_destroy_response(resp);
        return ok;
    }
    serve_engine_lock(s->engine);
    while (r->n_finished < r->n_choices) serve_engine_wait(s->engine, r);
    serve_engine_unlock(s->engine);
    // finished: the engine no longer touches r
    int failed = 0;
    for (int i = 0; i < r->n_choices; i++) failed |= r->ch[i].finish == SERVE_FINISH_ERROR;
    enum MHD_Result res;
    if (failed) res = error_now(c, 503, NULL, "service_unavailable", r->error[0] ? r->error : "generation failed");
    else res = reply(c, MHD_HTTP_OK, serve_api_response(s, r, id, created), "application/json");
    serve_request_release(s->engine, r);
    return res;
}

static enum MHD_Result handler(void *cls, struct MHD_Connection *c, const char *url, const char *method,
                               const char *version, const char *data, size_t *data_size, void **con_cls) {
    (void)version;
    const serve_config_t *s = cls;
    upload_t *u = *con_cls;
    if (!u) {
        int get = !strcmp(method, "GET"), post = !strcmp(method, "POST");
        int route = !strcmp(url, "/v1/completions") ? ROUTE_COMPLETIONS : !strcmp(url, "/v1/chat/completions") ? ROUTE_CHAT : 0;
        if (!strcmp(url, "/v1/models") || !strncmp(url, "/v1/models/", 11) || !strcmp(url, "/health")) {
            if (!get) return error_now(c, 405, NULL, "method_not_allowed", "use GET for this path");
            if (!strcmp(url, "/health")) return reply(c, MHD_HTTP_OK, cispo_strdup("{}"), "application/json");
            char *body = serve_api_models(s, url[10] == '/' ? url + 11 : NULL);
            if (!body) {
                char msg[400];
                snprintf(msg, sizeof msg, "The model `%.200s` does not exist: this server serves `%s`.", url + 11, s->model_name);
                return error_now(c, 404, "model", "model_not_found", msg);
            }
            return reply(c, MHD_HTTP_OK, body, "application/json");
        }
        if (!route) {
            char msg[400];
            snprintf(msg, sizeof msg, "Unknown path %.200s: this server has GET /v1/models, POST /v1/completions and POST "
                                      "/v1/chat/completions.", url);
            return error_now(c, 404, NULL, "unknown_url", msg);
        }
        if (!post) return error_now(c, 405, NULL, "method_not_allowed", "use POST with a JSON body for this path");
        const char *cl = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
        if (cl && strtoull(cl, NULL, 10) > s->max_body) {
            char msg[200];
            snprintf(msg, sizeof msg, "The request body of %.30s bytes is over this server's limit of %zu bytes (--max-body).",
                     cl, s->max_body);
            return error_now(c, 413, NULL, "request_too_large", msg);
        }
        *con_cls = u = calloc(1, sizeof *u);
        if (!u) return MHD_NO;
        u->route = route;
        return MHD_YES;
    }
    if (*data_size) {  // a chunk of the body
        if (!u->too_big && u->body.n + *data_size > s->max_body) u->too_big = 1;
        if (!u->too_big) buf_append(&u->body, data, *data_size);
        *data_size = 0;
        return MHD_YES;
    }
    if (u->too_big) {
        char msg[200];
        snprintf(msg, sizeof msg, "The request body is over this server's limit of %zu bytes (--max-body).", s->max_body);
        return error_now(c, 413, NULL, "request_too_large", msg);
    }
    return generate(s, c, u);
}

static void completed(void *cls, struct MHD_Connection *c, void **con_cls, enum MHD_RequestTerminationCode toe) {
    (void)cls, (void)c, (void)toe;
    upload_t *u = *con_cls;
    if (u) buf_free(&u->body), free(u);
    *con_cls = NULL;
}

// SIGINT and SIGTERM write a byte here, which a watcher thread reads. A handler rather than sigwait: BLAS
// worker threads, started before any mask could be set, would otherwise take the signal with its default
// action.
static int stop_pipe[2] = {-1, -1};

static void on_stop(int sig) {
    unsigned char b = (unsigned char)sig;
    ssize_t w = write(stop_pipe[1], &b, 1);
    (void)w;
}

// Waits for a stop signal (or a byte 0 from serve_http_run itself), then stops the engine loop.
static void *stop_watch(void *arg) {
    const serve_config_t *s = arg;
    unsigned char sig = 0;
    for (;;) {
        ssize_t n = read(stop_pipe[0], &sig, 1);
        if (n == 1 || (n < 0 && errno != EINTR)) break;
    }
    if (sig) fprintf(stderr, "cispo serve: signal %d, stopping\n", sig);
    serve_engine_stop(s->engine);
    return NULL;
}

int serve_http_run(const serve_config_t *s, const char *host, int port) {
    struct sockaddr_in addr;
    memset(&addr, 0, sizeof addr);
    addr.sin_family = AF_INET;
    addr.sin_port = htons((uint16_t)port);
    if (inet_pton(AF_INET, !strcmp(host, "localhost") ? "127.0.0.1" : host, &addr.sin_addr) != 1) {
        fprintf(stderr, "cispo serve: --host %s is not an IPv4 address\n", host);
        return 1;
    }
    if (pipe(stop_pipe)) {
        fprintf(stderr, "cispo serve: pipe: %s\n", strerror(errno));
        return 1;
    }
    struct sigaction sa, old_int, old_term;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_stop;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, &old_int);
    sigaction(SIGTERM, &sa, &old_term);
    signal(SIGPIPE, SIG_IGN);
    struct MHD_Daemon *d = MHD_start_daemon(
        MHD_USE_THREAD_PER_CONNECTION | MHD_USE_POLL_INTERNAL_THREAD | MHD_USE_ERROR_LOG, (uint16_t)port, NULL, NULL,
        handler, (void *)s, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&addr, MHD_OPTION_NOTIFY_COMPLETED, completed, NULL,
        MHD_OPTION_CONNECTION_TIMEOUT, 600u, MHD_OPTION_CONNECTION_LIMIT, 1024u, MHD_OPTION_END);
    int rc = 0;
    if (!d) {
        fprintf(stderr, "cispo serve: cannot listen on %s:%d (%s): is the port in use?\n", host, port, strerror(errno));
        rc = 1;
    } else {
        fprintf(stderr, "cispo serve: serving %s on http://%s:%d/v1 (GET /v1/models, POST /v1/completions, POST "
                        "/v1/chat/completions)\n", s->model_name, host, port);
        pthread_t watch;
        if (pthread_create(&watch, NULL, stop_watch, (void *)s)) {
            fprintf(stderr, "cispo serve: cannot start a thread: %s\n", strerror(errno));
            rc = 1;
        } else {
            // the engine runs here until a signal stops it; it fails what is waiting or running, so that
            // handlers blocked on it return and libmicrohttpd can join their threads
            serve_engine_run(s->engine);
            pthread_join(watch, NULL);
        }
        MHD_stop_daemon(d);
    }
    sigaction(SIGINT, &old_int, NULL);
    sigaction(SIGTERM, &old_term, NULL);
    close(stop_pipe[0]), close(stop_pipe[1]);
    stop_pipe[0] = stop_pipe[1] = -1;
    return rc;
}
