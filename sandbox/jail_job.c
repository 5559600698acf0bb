// sandbox/jail_job.c — a jail_spec_t over a pipe, for jails created ahead of their job (a pool
// worker keeps one ready): the caller writes the job, the waiting init reads it.
// defines: jail_job_write, jail_job_read
//
// Format: counts and lengths as u32/u64, then the bytes; limits as the raw jail_limits_t (same
// binary on both ends: the init is a clone of the caller).
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "sandbox/jail_internal.h"

typedef struct {
    int fd, bad;
} wr_t;

static void put(wr_t *w, const void *p, size_t n) {
    const char *c = p;
    while (!w->bad && n) {
        ssize_t k = write(w->fd, c, n);
        if (k < 0 && errno == EINTR) continue;
        if (k <= 0) w->bad = 1;
        else c += k, n -= (size_t)k;
    }
}
static void put_u64(wr_t *w, uint64_t v) { put(w, &v, sizeof v); }
static void put_bytes(wr_t *w, const void *p, size_t n) { put_u64(w, n), put(w, p, n); }
static void put_str(wr_t *w, const char *s) { put_bytes(w, s ? s : "", s ? strlen(s) : 0); }

int jail_job_write(int fd, const jail_spec_t *s) {
    wr_t w = {fd, 0};
    put_u64(&w, (uint64_t)s->n_files);
    for (int i = 0; i < s->n_files; i++) {
        put_str(&w, s->files[i].name);
        put_bytes(&w, s->files[i].data ? s->files[i].data : "", s->files[i].data ? s->files[i].len : 0);
        put_u64(&w, (uint64_t)s->files[i].mode);
    }
    put_u64(&w, (uint64_t)s->n_steps);
    for (int i = 0; i < s->n_steps; i++) {
        const jail_step_t *st = &s->steps[i];
        uint64_t argc = 0;
        while (st->argv[argc]) argc++;
        put_u64(&w, argc);
        for (uint64_t k = 0; k < argc; k++) put_str(&w, st->argv[k]);
        put_bytes(&w, st->stdin_data ? st->stdin_data : "", st->stdin_data ? st->stdin_len : 0);
        put(&w, &st->lim, sizeof st->lim);
        put_u64(&w, (uint64_t)st->stop_unless_ok);
        put_u64(&w, (uint64_t)st->fresh_work);
        uint64_t envc = 0;
        while (st->env && st->env[envc]) envc++;
        put_u64(&w, envc);
        for (uint64_t k = 0; k < envc; k++) put_str(&w, st->env[k]);
    }
    put_u64(&w, (uint64_t)s->n_fetch);
    for (int i = 0; i < s->n_fetch; i++) put_str(&w, s->fetch[i]);
    put_u64(&w, s->work_bytes);
    put_u64(&w, (uint64_t)s->work_inodes);
    put_u64(&w, s->fetch_cap);
    put_u64(&w, s->fetch_total_cap);
    return w.bad ? -1 : 0;
}

typedef struct {
    int fd, bad;
} rd_t;

static void get(rd_t *r, void *p, size_t n) {
    char *c = p;
    while (!r->bad && n) {
        ssize_t k = read(r->fd, c, n);
        if (k < 0 && errno == EINTR) continue;
        if (k <= 0) r->bad = 1;
        else c += k, n -= (size_t)k;
    }
}
static uint64_t get_u64(rd_t *r) {
    uint64_t v = 0;
    get(r, &v, sizeof v);
    return v;
}
// a NUL-terminated copy; lengths are bounded so a broken stream cannot ask for everything
static char *get_bytes(rd_t *r, size_t *len) {
    uint64_t n = get_u64(r);
    if (r->bad || n > ((uint64_t)1 << 32)) return r->bad = 1, NULL;
    char *p = malloc(n + 1);
    if (!p) return r->bad = 1, NULL;
    get(r, p, n);
    p[n] = 0;
    if (len) *len = n;
    return p;
}

jail_spec_t *jail_job_read(int fd) {
    rd_t r = {fd, 0};
    jail_spec_t *s = calloc(1, sizeof *s);
    if (!s) return NULL;
    uint64_t nf = get_u64(&r);
    if (nf > 4096) return NULL;
    jail_file_t *files = calloc(nf + 1, sizeof *files);
    for (uint64_t i = 0; !r.bad && i < nf; i++) {
        files[i].name = get_bytes(&r, NULL);
        files[i].data = get_bytes(&r, &files[i].len);
        files[i].mode = (int)get_u64(&r);
    }
    uint64_t ns = get_u64(&r);
    if (r.bad || ns > 100000) return NULL;
    jail_step_t *steps = calloc(ns + 1, sizeof *steps);
    for (uint64_t i = 0; !r.bad && i < ns; i++) {
        uint64_t argc = get_u64(&r);
        if (argc > 4096) return NULL;
        const char **argv = calloc(argc + 1, sizeof *argv);
        for (uint64_t k = 0; !r.bad && k < argc; k++) argv[k] = get_bytes(&r, NULL);
        steps[i].argv = argv;
        steps[i].stdin_data = get_bytes(&r, &steps[i].stdin_len);
        get(&r, &steps[i].lim, sizeof steps[i].lim);
        steps[i].stop_unless_ok = (int)get_u64(&r);
        steps[i].fresh_work = (int)get_u64(&r);
        uint64_t envc = get_u64(&r);
        if (envc > 16) return NULL;
        const char **env = calloc(envc + 1, sizeof *env);
        for (uint64_t k = 0; !r.bad && k < envc; k++) env[k] = get_bytes(&r, NULL);
        steps[i].env = env;
    }
    uint64_t nfe = get_u64(&r);
    if (r.bad || nfe > 4096) return NULL;
    const char **fetch = calloc(nfe + 1, sizeof *fetch);
    for (uint64_t i = 0; !r.bad && i < nfe; i++) fetch[i] = get_bytes(&r, NULL);
    s->work_bytes = (size_t)get_u64(&r);
    s->work_inodes = (int)get_u64(&r);
    s->fetch_cap = (size_t)get_u64(&r);
    s->fetch_total_cap = (size_t)get_u64(&r);
    if (r.bad) return NULL;
    s->files = files, s->n_files = (int)nf;
    s->steps = steps, s->n_steps = (int)ns;
    s->fetch = fetch, s->n_fetch = (int)nfe;
    return s;
}
