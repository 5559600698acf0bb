// trainer/train_data.c — the prompt sets of a run, from datasets/: JSONL records (ours or verl's) or
// the synthetic arithmetic task (or its tool-use variant), tokenized once; and the seeded data order.
// defines: train_set_load, train_set_tokenize, train_set_free, data_cursor_take
//
// The held-out split is datasets/' hash of the record id (synthetic ids hash the prompt), so no
// held-out problem ever appears in training, whatever the sizes.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>
#include <sys/stat.h>

#include "datasets/dataset.h"
#include "model/chat_template.h"
#include "datasets/synth.h"
#include "base/buf.h"
#include "base/common.h"
#include "base/rng.h"
#include "trainer/train.h"
#include "trainer/train_data.h"

// One RNG step from state z (base/rng.h): the hash behind every existing split and data order.
static uint64_t mix64(uint64_t z) { return rng_next(&z); }

// The record id's FNV-1a, mixed: the held-out split.
static uint64_t hash_str(const char *s) { return mix64(rng_fnv1a_str(s)); }

// Moves a datasets/ record into an example (the record's strings are taken over or freed).
static void take_record(train_example_t *e, data_record_t *r) {
    memset(e, 0, sizeof *e);
    e->prompt = record_prompt_text(r);
    e->answer = r->answer, r->answer = NULL;
    e->verifier = r->verifier, r->verifier = NULL;
    e->demo = r->response, r->response = NULL;
    e->tests_json = r->tests_json, r->tests_json = NULL;
    e->fn_name = r->fn_name, r->fn_name = NULL;
    record_free(r);
}

// Synthetic arithmetic (datasets/synth.h): problems of the stream drawn in order, each kept in the
// split its id hashes to; held-out problems are also kept distinct from each other. tools: the tool-use
// variant (synth_arith_tools).
static int load_arith(train_set_t *set, const arith_task_t *task, int n, int heldout, int tools) {
    set->ex = cispo_calloc((size_t)n, sizeof(train_example_t));
    set->n = 0;
    uint64_t *seen = cispo_malloc(sizeof(uint64_t) * (size_t)n);
    for (uint64_t k = 0; set->n < n; k++) {
        if (k > (uint64_t)n * 200 + 100000) {
            free(seen);
            return cispo_fail("synthetic task: only %d distinct held-out problems at difficulty %d..%d; lower "
                              "eval_size or raise task_dmax", set->n, task->dmin, task->dmax);
        }
        data_record_t r;
        if (tools) synth_arith_tools(task->seed, k, &r);
        else synth_arith(task->seed, k, task->dmin, task->dmax, &r);
        if (dataset_is_heldout(r.id, task->heldout_frac) != heldout) {
            record_free(&r);
            continue;
        }
        uint64_t h = hash_str(r.id);
        int dup = 0;
        for (int i = 0; heldout && i < set->n && !dup; i++) dup = seen[i] == h;
        if (dup) {
            record_free(&r);
            continue;
        }
        seen[set->n] = h;
        take_record(&set->ex[set->n++], &r);
    }
    free(seen);
    return 0;
}

static int is_dir(const char *p) {
    struct stat sb;
    return p && p[0] && stat(p, &sb) == 0 && S_ISDIR(sb.st_mode);
}

// The run's chat template: none, the tokenizer's (auto), or a file. 0 with *out (NULL: plain), or -1.
static int load_template(const train_records_t *task, chat_template_t **out) {
    *out = NULL;
    const char *spec = task->chat_template;
    if (!spec || !spec[0] || !strcmp(spec, "none")) return 0;
    if (strcmp(spec, "auto")) return (*out = chat_template_load_file(spec)) ? 0 : -1;
    char dir[4096] = "";
    if (task->tokenizer && task->tokenizer[0]) {
        snprintf(dir, sizeof dir, "%s", task->tokenizer);
        char *slash = strrchr(dir, '/');
        if (slash) *slash = 0;
        else snprintf(dir, sizeof dir, ".");
    } else if (is_dir(task->model)) {
        snprintf(dir, sizeof dir, "%s", task->model);
    }
    if (!dir[0]) return 0;
    return chat_template_load_dir(dir, out) < 0 ? -1 : 0;
}

static cJSON *messages_json(const data_record_t *r, int n) {
    cJSON *arr = cJSON_CreateArray();
    if (r->prompt) {
        cJSON *m = cJSON_CreateObject();
        cJSON_AddStringToObject(m, "role", "user");
        cJSON_AddStringToObject(m, "content", r->prompt);
        cJSON_AddItemToArray(arr, m);
    }
    for (int i = 0; i < n; i++) cJSON_AddItemToArray(arr, record_message_json(&r->messages[i]));
    return arr;
}

// The prompt (and, for a conversation ending in an assistant turn, the demonstration) of a record
// through the chat template. 0, or -1 naming the record.
static int render_record(const chat_template_t *ct, data_record_t *r, train_example_t *e) {
    int n = r->n_messages, last_asst = n > 0 && !strcmp(r->messages[n - 1].role, "assistant") && !r->response;
    cJSON *ctx = messages_json(r, last_asst ? n - 1 : n), *tools = r->tools_json ? cJSON_Parse(r->tools_json) : NULL;
    e->prompt = chat_template_render(ct, ctx, tools, 1, NULL);
    cJSON_Delete(ctx);
    if (!e->prompt || !last_asst) {
        cJSON_Delete(tools);
        return e->prompt ? 0 : cispo_fail("record '%s': chat template: %s", r->id, cispo_last_error());
    }
    ctx = messages_json(r, n);
    char *full = chat_template_render(ct, ctx, tools, 0, NULL);
    cJSON_Delete(ctx);
    cJSON_Delete(tools);
    if (!full) return cispo_fail("record '%s': chat template: %s", r->id, cispo_last_error());
    size_t np = strlen(e->prompt);
    if (!strncmp(full, e->prompt, np)) {
        // the assistant turn as the template writes it, less its end-of-turn token (EOS is appended)
        size_t k = strlen(full);
        while (k > np && (full[k - 1] == '\n' || full[k - 1] == ' ')) k--;
        size_t ne = ct->eos_token ? strlen(ct->eos_token) : 0;
        if (ne && k >= np + ne && !strncmp(full + k - ne, ct->eos_token, ne)) k -= ne;
        e->demo = cispo_strndup(full + np, k - np);
    } else {  // a template that rewrites earlier turns (e.g. drops reasoning): the turn's own text
        e->demo = cispo_strdup(r->messages[n - 1].content);
    }
    free(full);
    return 0;
}

// A JSONL file (datasets/dataset.h): the whole file, or one side of its hash split when the same file
// serves for training and evaluation.
static int load_jsonl(train_set_t *set, const char *path, int limit, dataset_split_t split, double frac,
                      const train_records_t *rec) {
    static const train_records_t plain = {0};
    if (!rec) rec = &plain;
    dataset_opts_t o = dataset_opts_default();
    o.split = split;
    o.heldout_frac = frac;
    o.fields = rec->fields;
    chat_template_t *ct;
    if (load_template(rec, &ct)) return -1;
    dataset_t d;
    if (dataset_load(path, &o, &d)) return chat_template_free(ct), -1;  // datasets_last_error() is cispo_last_error()
    if (d.n == 0) {
        dataset_free(&d);
        chat_template_free(ct);
        return cispo_fail("%s: no records%s", path, split == DATASET_SPLIT_ALL ? "" : " in this split");
    }
    int n = limit > 0 && (size_t)limit < d.n ? limit : (int)d.n;
    set->ex = cispo_calloc((size_t)n, sizeof(train_example_t));
    int rc = 0;
    for (int i = 0; i < n; i++) {
        if (ct && !rc) {
            train_example_t *e = &set->ex[i];
            rc = render_record(ct, &d.recs[i], e);
            char *p = e->prompt, *dm = e->demo;
            take_record(e, &d.recs[i]);  // the record's plain prompt replaced by the rendered one
            free(e->prompt);
            e->prompt = p ? p : cispo_strdup("");
            if (dm) free(e->demo), e->demo = dm;
        } else {
            take_record(&set->ex[i], &d.recs[i]);
        }
        set->n = i + 1;
    }
    for (size_t i = (size_t)n; i < d.n; i++) record_free(&d.recs[i]);
    free(d.recs);
    chat_template_free(ct);
    return rc;
}

int train_set_load(train_set_t *set, const char *spec, int n, const arith_task_t *task, int heldout,
                   const char *other_spec) {
    return train_set_load_records(set, spec, n, task, heldout, other_spec, NULL);
}

int train_set_load_records(train_set_t *set, const char *spec, int n, const arith_task_t *task, int heldout,
                           const char *other_spec, const train_records_t *rec) {
    memset(set, 0, sizeof *set);
    int tools = !strcmp(spec, "arithmetic_tools");
    if (tools || !strcmp(spec, "arithmetic"))
        return load_arith(set, task, n > 0 ? n : (heldout ? 200 : 20000), heldout, tools);
    dataset_split_t split = DATASET_SPLIT_ALL;
    if (other_spec && !strcmp(spec, other_spec)) split = heldout ? DATASET_SPLIT_HELDOUT : DATASET_SPLIT_TRAIN;
    return load_jsonl(set, spec, n, split, task->heldout_frac, rec);
}

// Appends text[0..n) to d, each token with mask value m (mask grown alongside when non-NULL).
static int encode_part(const tokenizer_t *tok, const char *text, size_t n, token_ids_t *d, buf_t *mask,
                       unsigned char m) {
    size_t before = d->n;
    if (n && tokenizer_encode(tok, text, n, d, 0)) return -1;
    for (size_t i = before; i < d->n; i++) buf_append(mask, &m, 1);
    return 0;
}

// A demonstration with tool calls: the text up to and including each call (trained), then the call's
// result when the text continues with exactly what the tool returns (masked), and so on.
static int encode_demo_tools(const tokenizer_t *tok, const char *demo, const rollout_tools_t *tl, token_ids_t *d,
                             buf_t *mask, int *masked) {
    size_t pos = 0, len = strlen(demo);
    *masked = 0;
    for (;;) {
        tool_call_t call;
        size_t end = 0;
        if (tool_call_parse(tl->format, demo + pos, &call, &end) != 1) break;
        char *res = NULL, *plain = NULL;
        if (call.name) tools_run(tl->tools, &call, &res);
        if (res) plain = tool_result_plain(tl->format, res);
        tool_call_free(&call);
        size_t call_end = pos + end, np = plain ? strlen(plain) : 0;
        int follows = plain && call_end + np <= len && !memcmp(demo + call_end, plain, np);
        int rc = encode_part(tok, demo + pos, call_end - pos, d, mask, 1);
        if (!rc && follows) rc = encode_part(tok, plain, np, d, mask, 0), *masked = 1;
        free(res), free(plain);
        if (rc) return -1;
        pos = call_end + (follows ? np : 0);
    }
    return encode_part(tok, demo + pos, len - pos, d, mask, 1);
}

int train_set_tokenize(train_set_t *set, const tokenizer_t *tok, int32_t eos_id, int max_prompt,
                       const rollout_tools_t *tools) {
    for (int i = 0; i < set->n; i++) {
        train_example_t *e = &set->ex[i];
        token_ids_t ids = {0};
        if (tokenizer_encode(tok, e->prompt, strlen(e->prompt), &ids, TOKENIZER_ADD_SPECIAL)) return -1;
        if (ids.n == 0) return cispo_fail("record %d: the prompt encodes to no tokens", i + 1);
        if ((int)ids.n > max_prompt)
            return cispo_fail("record %d: prompt of %zu tokens exceeds %d (raise micro_tokens or shorten it)", i + 1,
                              ids.n, max_prompt);
        e->ids = ids.ids, e->n_ids = (int)ids.n;
        token_ids_t d = {0};
        char buf[600];
        const char *demo = e->demo;
        if (!demo && e->answer) snprintf(buf, sizeof buf, "%s", e->answer), demo = buf;  // no demonstration: the answer
        buf_t mask;
        buf_init(&mask);
        int masked = 0;
        if (demo && tools && tools->tools && tools->format) {
            if (encode_demo_tools(tok, demo, tools, &d, &mask, &masked)) return buf_free(&mask), -1;
        } else if (demo && tokenizer_encode(tok, demo, strlen(demo), &d, 0)) {
            return buf_free(&mask), -1;
        }
        if (eos_id >= 0) {
            token_ids_push(&d, eos_id);
            unsigned char one = 1;
            buf_append(&mask, &one, 1);
        }
        e->demo_ids = d.ids, e->n_demo = (int)d.n;
        if (masked) e->demo_mask = (unsigned char *)buf_take(&mask, NULL);
        else buf_free(&mask);
    }
    return 0;
}

void train_set_free(train_set_t *set) {
    for (int i = 0; i < set->n; i++) {
        train_example_t *e = &set->ex[i];
        free(e->prompt), free(e->answer), free(e->verifier), free(e->demo), free(e->ids), free(e->demo_ids);
        free(e->demo_mask);
        free(e->tests_json), free(e->fn_name);
    }
    free(set->ex);
    set->ex = NULL;
    set->n = 0;
}

// ---- data order ----
static void epoch_perm(int *perm, int n, uint64_t seed, uint64_t stream, uint64_t epoch) {
    uint64_t s = mix64(mix64(seed ^ (stream << 56)) + epoch);
    for (int i = 0; i < n; i++) perm[i] = i;
    for (int i = n - 1; i > 0; i--) {  // Fisher-Yates
        s = mix64(s);
        int j = (int)(s % (uint64_t)(i + 1));
        int tmp = perm[i];
        perm[i] = perm[j], perm[j] = tmp;
    }
}

void data_cursor_take(data_cursor_t *c, uint64_t seed, uint64_t stream, int n, int count, int *out) {
    int *perm = cispo_malloc(sizeof(int) * (size_t)n);
    epoch_perm(perm, n, seed, stream, c->epoch);
    for (int k = 0; k < count; k++) {
        if (c->cursor >= (uint64_t)n) {
            c->epoch++, c->cursor = 0;
            epoch_perm(perm, n, seed, stream, c->epoch);
        }
        out[k] = perm[c->cursor++];
    }
    free(perm);
}
