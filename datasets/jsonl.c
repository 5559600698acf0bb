// datasets/jsonl.c — loading a JSONL data set: every line a record (datasets/record.c), errors as
// file:line, then the held-out split by id hash, a seeded shuffle and the rank's shard.
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "datasets/dataset.h"
#include "datasets/util.h"

dataset_opts_t dataset_opts_default(void) {
    return (dataset_opts_t){DATASET_SPLIT_ALL, 0.1, 0, 0, 0, 1};
}

int dataset_is_heldout(const char *id, double frac) {
    // The top 53 bits as a uniform number in [0, 1).
    double u = (double)(ds_hash64(id) >> 11) * (1.0 / 9007199254740992.0);
    return u < frac;
}

void dataset_free(dataset_t *d) {
    for (size_t i = 0; i < d->n; i++) record_free(&d->recs[i]);
    free(d->recs);
    memset(d, 0, sizeof *d);
}

static uint64_t splitmix64(uint64_t *s) {
    uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

// Duplicate ids: a sorted index of the ids, neighbours compared.
static const data_record_t *sort_base;
static int cmp_id(const void *a, const void *b) {
    return strcmp(sort_base[*(const size_t *)a].id, sort_base[*(const size_t *)b].id);
}

// Reads one line (any length) from f into *buf; returns its length, or -1 at end of file.
static long read_line(FILE *f, char **buf, size_t *cap) {
    size_t n = 0;
    int c;
    while ((c = fgetc(f)) != EOF && c != '\n') {
        if (n + 2 > *cap) *buf = ds_realloc(*buf, *cap = *cap ? 2 * *cap : 4096);
        (*buf)[n++] = (char)c;
    }
    if (c == EOF && n == 0) return -1;
    if (!*buf) *buf = ds_malloc(*cap = 1);
    (*buf)[n] = 0;
    if (n && (*buf)[n - 1] == '\r') (*buf)[--n] = 0;
    return (long)n;
}

int dataset_load(const char *path, const dataset_opts_t *opts, dataset_t *out) {
    memset(out, 0, sizeof *out);
    if (opts->world < 1 || opts->rank < 0 || opts->rank >= opts->world)
        return ds_fail("%s: rank %d of world %d is not a valid shard", path, opts->rank, opts->world);
    FILE *f = fopen(path, "rb");
    if (!f) return ds_fail("%s: cannot open: %s", path, strerror(errno));
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    char *line = NULL, where[1024], default_id[512];
    size_t cap = 0, n = 0, rcap = 0;
    long len, lineno = 0;
    data_record_t *recs = NULL;
    long *lines = NULL;  // [n] the line of each record, for messages
    int rc = 0;
    while ((len = read_line(f, &line, &cap)) >= 0) {
        lineno++;
        size_t k = 0;
        while (line[k] == ' ' || line[k] == '\t') k++;
        if (!line[k]) continue;
        snprintf(where, sizeof where, "%s:%ld", path, lineno);
        snprintf(default_id, sizeof default_id, "%s:%ld", base, lineno);
        if (n == rcap) {
            rcap = rcap ? 2 * rcap : 256;
            recs = ds_realloc(recs, rcap * sizeof *recs);
            lines = ds_realloc(lines, rcap * sizeof *lines);
        }
        if (record_parse_line(line, where, default_id, &recs[n])) { rc = -1; break; }
        lines[n++] = lineno;
    }
    free(line);
    fclose(f);
    out->n_read = n;
    if (!rc && n > 1) {
        size_t *idx = ds_malloc(n * sizeof *idx);
        for (size_t i = 0; i < n; i++) idx[i] = i;
        sort_base = recs;
        qsort(idx, n, sizeof *idx, cmp_id);
        for (size_t i = 1; i < n && !rc; i++)
            if (!strcmp(recs[idx[i]].id, recs[idx[i - 1]].id)) {
                size_t a = idx[i] < idx[i - 1] ? idx[i] : idx[i - 1], b = idx[i] ^ idx[i - 1] ^ a;
                rc = ds_fail("%s:%ld: key 'id': '%s' is already the id of line %ld (ids must be unique)", path,
                             lines[b], recs[a].id, lines[a]);
            }
        free(idx);
    }
    free(lines);
    if (rc) {
        for (size_t i = 0; i < n; i++) record_free(&recs[i]);
        free(recs);
        return -1;
    }
    // Split, then shuffle, then shard: every rank sees the same order and takes every world-th record.
    size_t kept = 0;
    for (size_t i = 0; i < n; i++) {
        int held = dataset_is_heldout(recs[i].id, opts->heldout_frac);
        int keep = opts->split == DATASET_SPLIT_ALL || (opts->split == DATASET_SPLIT_HELDOUT) == held;
        if (keep) recs[kept++] = recs[i];
        else record_free(&recs[i]);
    }
    if (opts->shuffle) {
        uint64_t s = opts->seed;
        for (size_t i = kept; i > 1; i--) {  // Fisher-Yates
            size_t j = (size_t)(splitmix64(&s) % i);
            data_record_t t = recs[i - 1];
            recs[i - 1] = recs[j];
            recs[j] = t;
        }
    }
    size_t mine = 0;
    for (size_t i = 0; i < kept; i++) {
        if (i % (size_t)opts->world == (size_t)opts->rank) recs[mine++] = recs[i];
        else record_free(&recs[i]);
    }
    out->recs = recs;
    out->n = mine;
    return 0;
}
