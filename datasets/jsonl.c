// datasets/jsonl.c — loading a JSONL data set: every line a record (datasets/record.c), errors as
// file:line, then the held-out split by id hash, a seeded shuffle and the rank's shard.
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/common.h"
#include "base/rng.h"
#include "datasets/dataset.h"

dataset_opts_t dataset_opts_default(void) {
    return (dataset_opts_t){DATASET_SPLIT_ALL, 0.1, 0, 0, 0, 1, {0}};
}

int dataset_is_heldout(const char *id, double frac) {
    // FNV-1a alone leaves the low bits poorly mixed: the avalanche first, then the top 53 bits.
    return rng_unit(rng_mix64(rng_fnv1a_str(id))) < frac;
}

void dataset_free(dataset_t *d) {
    for (size_t i = 0; i < d->n; i++) record_free(&d->recs[i]);
    free(d->recs);
    memset(d, 0, sizeof *d);
}

// Duplicate ids: a sorted index of the ids, neighbours compared.
static const data_record_t *sort_base;
static int cmp_id(const void *a, const void *b) {
    return strcmp(sort_base[*(const size_t *)a].id, sort_base[*(const size_t *)b].id);
}

int dataset_load(const char *path, const dataset_opts_t *opts, dataset_t *out) {
    memset(out, 0, sizeof *out);
    if (opts->world < 1 || opts->rank < 0 || opts->rank >= opts->world)
        return cispo_fail("%s: rank %d of world %d is not a valid shard", path, opts->rank, opts->world);
    FILE *f = fopen(path, "rb");
    if (!f) return cispo_fail("%s: cannot open: %s", path, strerror(errno));
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    char *line = NULL, where[1024], default_id[512];
    size_t cap = 0, n = 0, rcap = 0;
    ssize_t len;
    long lineno = 0;
    data_record_t *recs = NULL;
    long *lines = NULL;  // [n] the line of each record, for messages
    int rc = 0;
    while ((len = getline(&line, &cap, f)) >= 0) {
        lineno++;
        while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r')) line[--len] = 0;
        size_t k = 0;
        while (line[k] == ' ' || line[k] == '\t') k++;
        if (!line[k]) continue;
        snprintf(where, sizeof where, "%s:%ld", path, lineno);
        snprintf(default_id, sizeof default_id, "%s:%ld", base, lineno);
        if (n == rcap) {
            rcap = rcap ? 2 * rcap : 256;
            recs = cispo_realloc(recs, rcap * sizeof *recs);
            lines = cispo_realloc(lines, rcap * sizeof *lines);
        }
        if (lineno == 1 && len >= 4 && !memcmp(line, "PAR1", 4)) {
            rc = cispo_fail("%s: a Parquet file; convert it to JSONL first: python3 -c \"import pandas as p; "
                            "p.read_parquet('%s').to_json('%s.jsonl', orient='records', lines=True, force_ascii=False)\" "
                            "(docs/rl.md \"Data records\")", path, path, path);
            break;
        }
        if (record_parse_line_fields(line, where, default_id, &opts->fields, &recs[n])) { rc = -1; break; }
        lines[n++] = lineno;
    }
    free(line);
    fclose(f);
    out->n_read = n;
    if (!rc && n > 1) {
        size_t *idx = cispo_malloc(n * sizeof *idx);
        for (size_t i = 0; i < n; i++) idx[i] = i;
        sort_base = recs;
        qsort(idx, n, sizeof *idx, cmp_id);
        for (size_t i = 1; i < n && !rc; i++)
            if (!strcmp(recs[idx[i]].id, recs[idx[i - 1]].id)) {
                size_t a = idx[i] < idx[i - 1] ? idx[i] : idx[i - 1], b = idx[i] ^ idx[i - 1] ^ a;
                rc = cispo_fail("%s:%ld: key 'id': '%s' is already the id of line %ld (ids must be unique)", path,
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
            size_t j = (size_t)rng_below(&s, i);
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
