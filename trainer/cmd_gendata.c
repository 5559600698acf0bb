// trainer/cmd_gendata.c — `cispo gen-data`: writes a synthetic task as JSONL records.
//   cispo gen-data --task arith --n N --seed S [--split train|heldout|all] [--difficulty D|A-B]
//                  [--heldout-frac F] [--out FILE]
// Records are distinct (by id); the split keeps only ids on that side of datasets' held-out hash, so
// train and heldout files never share a problem. Each record carries the worked demonstration in
// "response" (SFT) and the gold answer for the math verifier.
// defines: cmd_gendata
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "datasets/dataset.h"
#include "datasets/synth.h"

static void usage(FILE *f) {
    fprintf(f, "usage: cispo gen-data --task arith --n N --seed S [--split train|heldout|all] [--difficulty D|A-B]\n"
               "                      [--heldout-frac F] [--out FILE]\n"
               "  writes N distinct records as JSONL (stdout by default). --difficulty 1-%d (default 1-2: two or\n"
               "  three operations on single digits); --split keeps the ids of one side of the held-out hash\n"
               "  (default all; --heldout-frac default 0.1, as dataset_load uses).\n", SYNTH_ARITH_MAX_DIFFICULTY);
}

// A set of ids seen so far (open addressing over the id hashes' strings).
typedef struct {
    char **slot;
    size_t cap, n;
} idset_t;

static int idset_add(idset_t *s, const char *id) {  // 1 if new
    if (2 * (s->n + 1) > s->cap) {
        idset_t g = {calloc(s->cap ? 2 * s->cap : 1024, sizeof(char *)), s->cap ? 2 * s->cap : 1024, 0};
        if (!g.slot) { fprintf(stderr, "cispo gen-data: out of memory\n"); exit(1); }
        for (size_t i = 0; i < s->cap; i++)
            if (s->slot[i]) idset_add(&g, s->slot[i]), free(s->slot[i]);
        free(s->slot);
        *s = g;
    }
    size_t h = 5381;
    for (const char *p = id; *p; p++) h = h * 33 + (unsigned char)*p;
    size_t i = h & (s->cap - 1);
    for (; s->slot[i]; i = (i + 1) & (s->cap - 1))
        if (!strcmp(s->slot[i], id)) return 0;
    s->slot[i] = strdup(id);
    s->n++;
    return 1;
}

int cmd_gendata(int argc, char **argv) {
    const char *task = NULL, *split = "all", *out_path = NULL;
    long n = -1;
    unsigned long long seed = 0;
    int have_seed = 0, dmin = 1, dmax = 2;
    double frac = dataset_opts_default().heldout_frac;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) { usage(stdout); return 0; }
        if (!v) { fprintf(stderr, "cispo gen-data: '%s' needs a value (or is unknown)\n", a); usage(stderr); return 2; }
        char *end = NULL;
        if (!strcmp(a, "--task")) task = v;
        else if (!strcmp(a, "--n")) n = strtol(v, &end, 10);
        else if (!strcmp(a, "--seed")) { seed = strtoull(v, &end, 10); have_seed = 1; }
        else if (!strcmp(a, "--split")) split = v;
        else if (!strcmp(a, "--heldout-frac")) frac = strtod(v, &end);
        else if (!strcmp(a, "--out")) out_path = v;
        else if (!strcmp(a, "--difficulty")) {
            dmin = (int)strtol(v, &end, 10);
            dmax = dmin;
            if (*end == '-') dmax = (int)strtol(end + 1, &end, 10);
        } else { fprintf(stderr, "cispo gen-data: unknown argument '%s'\n", a); usage(stderr); return 2; }
        if (end && *end) { fprintf(stderr, "cispo gen-data: %s: '%s' is not a number\n", a, v); return 2; }
        i++;
    }
    if (!task || strcmp(task, "arith")) {
        fprintf(stderr, "cispo gen-data: --task %s: unknown task (tasks: arith)\n", task ? task : "(missing)");
        return 2;
    }
    if (n < 0 || !have_seed) { fprintf(stderr, "cispo gen-data: --n and --seed are required\n"); usage(stderr); return 2; }
    if (dmin < 1 || dmax > SYNTH_ARITH_MAX_DIFFICULTY || dmin > dmax) {
        fprintf(stderr, "cispo gen-data: --difficulty must be D or A-B within 1..%d\n", SYNTH_ARITH_MAX_DIFFICULTY);
        return 2;
    }
    int want = !strcmp(split, "all") ? -1 : !strcmp(split, "train") ? 0 : !strcmp(split, "heldout") ? 1 : -2;
    if (want == -2) { fprintf(stderr, "cispo gen-data: --split %s: expected train, heldout or all\n", split); return 2; }
    if (!(frac >= 0 && frac <= 1)) { fprintf(stderr, "cispo gen-data: --heldout-frac must be in [0, 1]\n"); return 2; }

    FILE *out = out_path ? fopen(out_path, "w") : stdout;
    if (!out) { fprintf(stderr, "cispo gen-data: %s: cannot create\n", out_path); return 1; }
    idset_t seen = {0};
    long written = 0;
    uint64_t index = 0, max_tries = (uint64_t)n * 200 + 10000;
    for (; written < n && index < max_tries; index++) {
        data_record_t r;
        synth_arith(seed, index, dmin, dmax, &r);
        int held = dataset_is_heldout(r.id, frac);
        if ((want < 0 || held == want) && idset_add(&seen, r.id)) {
            char *line = record_to_json(&r);
            fprintf(out, "%s\n", line);
            free(line);
            written++;
        }
        record_free(&r);
    }
    for (size_t i = 0; i < seen.cap; i++) free(seen.slot[i]);
    free(seen.slot);
    int bad = ferror(out);
    if (out != stdout) bad |= fclose(out) != 0;
    if (bad) { fprintf(stderr, "cispo gen-data: write error on %s\n", out_path ? out_path : "stdout"); return 1; }
    if (written < n) {
        fprintf(stderr, "cispo gen-data: only %ld distinct %s problems at difficulty %d-%d after %llu draws: ask for "
                        "fewer or raise --difficulty\n", written, split, dmin, dmax, (unsigned long long)index);
        return 1;
    }
    return 0;
}
