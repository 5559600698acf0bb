// trainer/cmd_gendata.c — `cispo gen-data`: writes a synthetic task as JSONL records.
//   cispo gen-data --task arith --n N --seed S [--split train|heldout|all] [--difficulty D|A-B]
//                  [--heldout-frac F] [--chat] [--repeats] [--out FILE]
// Records are distinct (by id) unless --repeats (a repeated problem's id then gets "-<draw>" appended:
// ids are unique in a data set; the split is the problem's own); the split keeps only ids on that side of
// datasets' held-out hash, so train and heldout files never share a problem. Each record carries the
// worked demonstration in "response" (SFT) and the gold answer for the math verifier; with --chat the
// prompt is a conversation instead: the problem as the user's message, the demonstration as the
// assistant's (what a chat template renders, docs/model.md "Chat templates").
// defines: cmd_gendata
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/common.h"
#include "datasets/dataset.h"
#include "datasets/synth.h"
#include "trainer/commands.h"
#include "trainer/keyconf.h"

typedef struct {
    char task[32], difficulty[32], out[4096];
    long long n, seed;
    int split;  // 0 train, 1 heldout, 2 all
    double heldout_frac;
    int chat, repeats;
} gendata_opts_t;

#define O(f) offsetof(gendata_opts_t, f)
static const keyconf_key_t gendata_keys[] = {
    {"task", KEY_STRING, O(task), 0, 0, NULL, "", "the synthetic task (arith)", 32},
    {"n", KEY_INT64, O(n), 0, 1e9, NULL, "0", "records to write (required; distinct unless --repeats)", 0},
    {"seed", KEY_INT64, O(seed), 0, 9.2e18, NULL, "0", "seed of the task generator (required)", 0},
    {"split", KEY_CHOICE, O(split), 0, 0, "train|heldout|all", "all", "keep the ids of one side of the held-out hash", 0},
    {"difficulty", KEY_STRING, O(difficulty), 0, 0, NULL, "1-2", "D or A-B (1 = two or three operations on single digits)", 32},
    {"heldout-frac", KEY_DOUBLE, O(heldout_frac), 0, 1, NULL, "0.1", "fraction of ids in the held-out split (as dataset_load uses)", 0},
    {"out", KEY_STRING, O(out), 0, 0, NULL, "", "output JSONL file (empty: stdout)", 4096},
    {"chat", KEY_BOOL, O(chat), 0, 1, NULL, "false", "prompt as chat messages: user problem, assistant demonstration", 0},
    {"repeats", KEY_BOOL, O(repeats), 0, 1, NULL, "false", "keep every draw of the split, repeats included (the stream train_data=arithmetic trains on)", 0},
};
#undef O

static const keyconf_cli_t gendata_cli = {
    "cispo gen-data",
    "cispo gen-data --task arith --n N --seed S [--split train|heldout|all] [--difficulty D|A-B]\n"
    "                      [--heldout-frac F] [--chat] [--repeats] [--out FILE]",
    "  Writes N records as JSONL (distinct unless --repeats); train and heldout files never share a problem.",
    gendata_keys, sizeof gendata_keys / sizeof gendata_keys[0], 0};

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
    gendata_opts_t o;
    keyconf_defaults(&o, gendata_keys, gendata_cli.n_keys);
    o.heldout_frac = dataset_opts_default().heldout_frac;
    unsigned char given[sizeof gendata_keys / sizeof gendata_keys[0]] = {0};
    int prc = keyconf_parse_cli(&gendata_cli, &o, argc, argv, NULL, NULL, given);
    if (prc) {
        if (prc < 0) fprintf(stderr, "cispo gen-data: %s\n", cispo_last_error());
        return prc < 0 ? 2 : 0;
    }
    const char *task = o.task[0] ? o.task : NULL, *out_path = o.out[0] ? o.out : NULL;
    const char *split = o.split == 0 ? "train" : o.split == 1 ? "heldout" : "all";
    long n = (long)o.n;
    unsigned long long seed = (unsigned long long)o.seed;
    double frac = o.heldout_frac;
    if (!task || strcmp(task, "arith")) {
        fprintf(stderr, "cispo gen-data: --task %s: unknown task (tasks: arith)\n", task ? task : "(missing)");
        return 2;
    }
    if (!given[1] || !given[2]) {
        fprintf(stderr, "cispo gen-data: --n and --seed are required (`cispo gen-data --help`)\n");
        return 2;
    }
    char *end;
    int dmin = (int)strtol(o.difficulty, &end, 10), dmax = dmin;
    if (end != o.difficulty && *end == '-') dmax = (int)strtol(end + 1, &end, 10);
    if (end == o.difficulty || *end || dmin < 1 || dmax > SYNTH_ARITH_MAX_DIFFICULTY || dmin > dmax) {
        fprintf(stderr, "cispo gen-data: --difficulty '%s': expected D or A-B within 1..%d\n", o.difficulty,
                SYNTH_ARITH_MAX_DIFFICULTY);
        return 2;
    }
    int want = o.split == 2 ? -1 : o.split;

    const char *slash = out_path ? strrchr(out_path, '/') : NULL;
    if (slash && slash != out_path) {  // the output's folder, made as `mkdir -p` would
        char dir[4096];
        snprintf(dir, sizeof dir, "%.*s", (int)(slash - out_path), out_path);
        if (cispo_mkdir_p(dir)) {
            fprintf(stderr, "cispo gen-data: --out %s: %s\n", out_path, cispo_last_error());
            return 1;
        }
    }
    FILE *out = out_path ? fopen(out_path, "w") : stdout;
    if (!out) { fprintf(stderr, "cispo gen-data: --out %s: cannot create: %s\n", out_path, strerror(errno)); return 1; }
    idset_t seen = {0};
    long written = 0;
    uint64_t index = 0, max_tries = (uint64_t)n * 200 + 10000, last_new = 0;
    double t0 = cispo_now(), t_shown = t0;
    // A million draws in a row without a new distinct problem: the difficulty range is exhausted.
    for (; written < n && index < max_tries && index - last_new < 1000000; index++) {
        if ((index & 0xffff) == 0 && cispo_now() - t_shown > 2) {
            t_shown = cispo_now();
            fprintf(stderr, "cispo gen-data: %ld of %ld records (%.0f s)\n", written, n, t_shown - t0);
        }
        data_record_t r;
        synth_arith(seed, index, dmin, dmax, &r);
        int held = dataset_is_heldout(r.id, frac);
        int fresh = (want < 0 || held == want) && idset_add(&seen, r.id);
        if (fresh || ((want < 0 || held == want) && o.repeats)) {
            if (!fresh) {  // a repeat: ids must stay unique in a data set, so the draw number is appended
                char id[96];
                snprintf(id, sizeof id, "%s-%llu", r.id, (unsigned long long)index);
                free(r.id);
                r.id = cispo_strdup(id);
            }
            if (o.chat) {  // the problem and its demonstration as a conversation
                r.messages = cispo_calloc(2, sizeof *r.messages);
                r.messages[0].role = cispo_strdup("user"), r.messages[0].content = r.prompt;
                r.messages[1].role = cispo_strdup("assistant"), r.messages[1].content = r.response;
                r.n_messages = 2, r.prompt = r.response = NULL;
            }
            char *line = record_to_json(&r);
            fprintf(out, "%s\n", line);
            free(line);
            written++;
            last_new = index;
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
