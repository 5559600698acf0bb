// model/hf.c — Hugging Face model directories: config.json + model.safetensors, or a sharded
// model.safetensors.index.json, into the flat fp32 parameter buffer, and back.
// defines: hf_load_dir, hf_save_dir, hf_export_dir
//
// Accepted tensor names (docs/model.md "Weight names"): the checkpoint's per-expert names
// (block_sparse_moe.experts.{e}.w{1,2,3}.weight, block_sparse_moe.gate.weight) and transformers'
// fused in-memory names (mlp.experts.gate_up_proj [E,2F,C] = [w1; w3] per expert,
// mlp.experts.down_proj [E,C,F], mlp.gate.weight). The lightning decay buffers and rotary inv_freq
// are constants recomputed from the config, so they are skipped whatever their dtype.
#include "model/hf.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/common.h"
#include "model/safetensors.h"
#include "model/tokenizer.h"

static char *path_join(const char *dir, const char *name) {
    size_t a = strlen(dir), b = strlen(name);
    char *p = cispo_malloc(a + b + 2);
    memcpy(p, dir, a);
    p[a] = '/';
    memcpy(p + a + 1, name, b + 1);
    return p;
}

static int file_exists(const char *path) {
    struct stat sb;
    return stat(path, &sb) == 0 && S_ISREG(sb.st_mode);
}

// ---- loading ----

typedef struct {
    const param_table_t *t;
    float *params;
    unsigned char *filled;  // [n_entries]: set once a tensor supplied the entry
    const char *origin;     // file named in errors about the current tensor
} loader_t;

static int is_ignored(const char *name) {
    static const char *const suffixes[] = {".self_attn.slope_rate", ".self_attn.query_decay", ".self_attn.key_decay",
                                           ".self_attn.diagonal_decay", "rotary_emb.inv_freq"};
    size_t n = strlen(name);
    for (size_t i = 0; i < sizeof suffixes / sizeof *suffixes; i++) {
        size_t k = strlen(suffixes[i]);
        if (n >= k && !strcmp(name + n - k, suffixes[i])) return 1;
    }
    return 0;
}

static void shape_str(char *buf, size_t cap, int ndim, const int64_t *shape) {
    size_t o = (size_t)snprintf(buf, cap, "[");
    for (int d = 0; d < ndim && o < cap; d++) o += (size_t)snprintf(buf + o, cap - o, "%s%lld", d ? "," : "", (long long)shape[d]);
    if (o < cap) snprintf(buf + o, cap - o, "]");
}

// The entry `pname` takes n floats from src; a second supplier of the same entry is an error
// (e.g. a file holding both the fused and the per-expert names).
static int fill_entry(loader_t *L, const char *pname, const char *tname, const float *src, size_t n) {
    int k = param_table_find(L->t, pname);
    if (k < 0) return cispo_fail("%s: tensor '%s': expert weights for '%s', which this config does not have", L->origin, tname, pname);
    const param_entry_t *e = &L->t->entries[k];
    CISPO_ASSERT(e->numel == n);
    if (L->filled[k]) return cispo_fail("%s: tensor '%s': supplies '%s' a second time", L->origin, tname, pname);
    memcpy(L->params + e->offset, src, n * sizeof(float));
    L->filled[k] = 1;
    return 0;
}

// Fused expert tensors: gate_up_proj [E, 2F, C] (rows [0,F) = w1, [F,2F) = w3), down_proj [E, C, F].
static int load_fused(loader_t *L, const st_file_t *f, int i, int layer, int is_gate_up) {
    const st_tensor_t *st = &f->header.tensors[i];
    // Expected shape from the per-expert entries of expert 0.
    char w1[PARAM_NAME_MAX], w2[PARAM_NAME_MAX];
    snprintf(w1, sizeof w1, "model.layers.%d.block_sparse_moe.experts.0.w1.weight", layer);
    snprintf(w2, sizeof w2, "model.layers.%d.block_sparse_moe.experts.0.w2.weight", layer);
    int k1 = param_table_find(L->t, w1), k2 = param_table_find(L->t, w2);
    if (k1 < 0 || k2 < 0) return cispo_fail("%s: tensor '%s': layer %d is not in this config", L->origin, st->name, layer);
    int64_t E = 0;
    for (;; E++) {
        char nm[PARAM_NAME_MAX];
        snprintf(nm, sizeof nm, "model.layers.%d.block_sparse_moe.experts.%lld.w1.weight", layer, (long long)E);
        if (param_table_find(L->t, nm) < 0) break;
    }
    const param_entry_t *e1 = &L->t->entries[k1], *e2 = &L->t->entries[k2];
    int64_t want[3] = {E, is_gate_up ? 2 * e1->shape[0] : e2->shape[0], is_gate_up ? e1->shape[1] : e2->shape[1]};
    if (st->ndim != 3 || st->shape[0] != want[0] || st->shape[1] != want[1] || st->shape[2] != want[2]) {
        char got[96], exp[96];
        shape_str(got, sizeof got, st->ndim, st->shape);
        shape_str(exp, sizeof exp, 3, want);
        return cispo_fail("%s: tensor '%s': shape %s but config.json needs %s", L->origin, st->name, got, exp);
    }
    float *buf = cispo_malloc((size_t)st->numel * sizeof(float));
    int rc = st_read_f32(f, i, buf);
    size_t per = (size_t)(want[1] * want[2]);  // floats per expert
    for (int64_t e = 0; e < E && !rc; e++) {
        char nm[PARAM_NAME_MAX];
        const float *src = buf + (size_t)e * per;
        if (is_gate_up) {
            snprintf(nm, sizeof nm, "model.layers.%d.block_sparse_moe.experts.%lld.w1.weight", layer, (long long)e);
            rc = fill_entry(L, nm, st->name, src, per / 2);
            snprintf(nm, sizeof nm, "model.layers.%d.block_sparse_moe.experts.%lld.w3.weight", layer, (long long)e);
            if (!rc) rc = fill_entry(L, nm, st->name, src + per / 2, per / 2);
        } else {
            snprintf(nm, sizeof nm, "model.layers.%d.block_sparse_moe.experts.%lld.w2.weight", layer, (long long)e);
            rc = fill_entry(L, nm, st->name, src, per);
        }
    }
    free(buf);
    return rc;
}

static int load_tensor(loader_t *L, const st_file_t *f, int i) {
    const st_tensor_t *st = &f->header.tensors[i];
    const char *name = st->name;
    if (is_ignored(name)) return 0;

    // model.layers.{l}.mlp.* is transformers' in-memory naming of block_sparse_moe.*
    int layer = -1, pos = 0;
    char pname[PARAM_NAME_MAX + 32];
    snprintf(pname, sizeof pname, "%s", name);
    if (sscanf(name, "model.layers.%d.mlp.%n", &layer, &pos) == 1 && pos > 0 && layer >= 0) {
        const char *rest = name + pos;
        if (!strcmp(rest, "experts.gate_up_proj")) return load_fused(L, f, i, layer, 1);
        if (!strcmp(rest, "experts.down_proj")) return load_fused(L, f, i, layer, 0);
        snprintf(pname, sizeof pname, "model.layers.%d.block_sparse_moe.%s", layer, rest);
    }

    int k = strlen(pname) < PARAM_NAME_MAX ? param_table_find(L->t, pname) : -1;
    if (k < 0) {
        // A tied model has no lm_head of its own; an exported copy is harmless if it has the right shape.
        int emb = param_table_find(L->t, "model.embed_tokens.weight");
        if (!strcmp(name, "lm_head.weight") && emb >= 0 && L->t->lm_head == L->t->embed && st->ndim == 2 &&
            st->shape[0] == L->t->entries[emb].shape[0] && st->shape[1] == L->t->entries[emb].shape[1])
            return 0;
        return cispo_fail("%s: tensor '%s': not a parameter of the model config.json describes (extra tensor, or "
                          "config.json has the wrong sizes)",
                          L->origin, name);
    }
    const param_entry_t *e = &L->t->entries[k];
    int same = st->ndim == e->ndim;
    for (int d = 0; same && d < e->ndim; d++) same = st->shape[d] == e->shape[d];
    if (!same) {
        char got[96], exp[96];
        shape_str(got, sizeof got, st->ndim, st->shape);
        shape_str(exp, sizeof exp, e->ndim, e->shape);
        return cispo_fail("%s: tensor '%s': shape %s but config.json needs %s", L->origin, name, got, exp);
    }
    if (L->filled[k]) return cispo_fail("%s: tensor '%s': given twice (per-expert and fused names?)", L->origin, name);
    if (st_read_f32(f, i, L->params + e->offset)) return -1;
    L->filled[k] = 1;
    return 0;
}

static int load_file(loader_t *L, const st_file_t *f) {
    L->origin = f->path;
    for (int i = 0; i < f->header.n_tensors; i++)
        if (load_tensor(L, f, i)) return -1;
    return 0;
}

// A shard name from the index must stay inside the model directory.
static int shard_name_ok(const char *s) { return s[0] && s[0] != '/' && !strstr(s, ".."); }

static int load_sharded(loader_t *L, const char *dir, const char *index_path) {
    char *text = cispo_read_file(index_path, NULL);
    if (!text) return -1;
    cJSON *root = cJSON_Parse(text);
    free(text);
    if (!root) return cispo_fail("%s: not valid JSON", index_path);
    int rc = 0, n_shards = 0;
    char **shards = NULL;
    st_file_t *files = NULL;
    const cJSON *wm = cJSON_GetObjectItemCaseSensitive(root, "weight_map");
    if (!cJSON_IsObject(wm)) {
        rc = cispo_fail("%s: key 'weight_map': missing or not an object of tensor name -> shard file", index_path);
        goto done;
    }
    // The distinct shard files, in first-seen order.
    for (const cJSON *m = wm->child; m; m = m->next) {
        if (!cJSON_IsString(m) || !shard_name_ok(m->valuestring)) {
            rc = cispo_fail("%s: key 'weight_map.%s': not a shard file name inside the model directory", index_path, m->string);
            goto done;
        }
        int s = 0;
        while (s < n_shards && strcmp(shards[s], m->valuestring)) s++;
        if (s == n_shards) {
            shards = cispo_realloc(shards, (size_t)(n_shards + 1) * sizeof *shards);
            shards[n_shards++] = m->valuestring;
        }
    }
    files = cispo_calloc((size_t)(n_shards ? n_shards : 1), sizeof *files);
    for (int s = 0; s < n_shards && !rc; s++) {
        char *p = path_join(dir, shards[s]);
        rc = st_open(&files[s], p);
        free(p);
    }
    // Every tensor the index names must be in the shard it names.
    for (const cJSON *m = wm->child; m && !rc; m = m->next) {
        int s = 0;
        while (strcmp(shards[s], m->valuestring)) s++;
        if (st_find(&files[s], m->string) < 0)
            rc = cispo_fail("%s: tensor '%s': the index puts it in '%s', which does not hold it", index_path, m->string,
                            shards[s]);
    }
    for (int s = 0; s < n_shards && !rc; s++) rc = load_file(L, &files[s]);
    if (!rc) L->origin = index_path;
done:
    if (files)
        for (int s = 0; s < n_shards; s++) st_close(&files[s]);
    free(files);
    free(shards);
    cJSON_Delete(root);
    return rc;
}

int hf_load_dir(const char *dir, model_config_t *cfg, param_table_t *table, float **params) {
    *params = NULL;
    memset(table, 0, sizeof *table);
    struct stat sb;
    if (stat(dir, &sb) || !S_ISDIR(sb.st_mode)) return cispo_fail("%s: not a model directory (expected config.json + model.safetensors)", dir);
    char *cfg_path = path_join(dir, "config.json");
    int rc = model_config_load(cfg, cfg_path);
    if (!rc) rc = model_config_validate(cfg, cfg_path);
    free(cfg_path);
    if (rc) return -1;

    param_table_build(table, cfg);
    loader_t L = {.t = table, .params = cispo_calloc(table->n_floats, sizeof(float)),
                  .filled = cispo_calloc((size_t)table->n_entries, 1)};
    char *single = path_join(dir, "model.safetensors"), *index = path_join(dir, "model.safetensors.index.json");
    // transformers prefers the single file when both exist; so do we.
    if (file_exists(single)) {
        st_file_t f;
        rc = st_open(&f, single);
        if (!rc) {
            rc = load_file(&L, &f);
            st_close(&f);
            L.origin = single;
        }
    } else if (file_exists(index)) {
        rc = load_sharded(&L, dir, index);
    } else {
        rc = cispo_fail("%s: no model.safetensors or model.safetensors.index.json (only safetensors weights are read)", dir);
    }

    if (!rc) {
        int lm = param_table_find(table, "lm_head.weight"), emb = param_table_find(table, "model.embed_tokens.weight");
        if (lm >= 0 && !L.filled[lm] && cfg->tie_word_embeddings && emb >= 0 && L.filled[emb]) {
            memcpy(L.params + table->entries[lm].offset, L.params + table->entries[emb].offset,
                   table->entries[lm].numel * sizeof(float));
            L.filled[lm] = 1;
        }
        for (int k = 0; k < table->n_entries && !rc; k++)
            if (!L.filled[k])
                rc = cispo_fail("%s: tensor '%s': missing (config.json describes it; the weights do not hold it)",
                                L.origin, table->entries[k].name);
    }
    free(single);
    free(index);
    free(L.filled);
    if (rc) {
        free(L.params);
        param_table_free(table);
        return -1;
    }
    *params = L.params;
    return 0;
}

// ---- saving ----

static int mkdir_p(const char *dir) {
    char *p = cispo_strdup(dir);
    int rc = 0;
    for (char *s = p + 1;; s++) {
        if (*s == '/' || !*s) {
            char c = *s;
            *s = 0;
            if (mkdir(p, 0777) && errno != EEXIST) {
                rc = cispo_fail("%s: cannot create directory: %s", p, strerror(errno));
                break;
            }
            *s = c;
            if (!c) break;
        }
    }
    free(p);
    if (!rc) {
        struct stat sb;
        if (stat(dir, &sb) || !S_ISDIR(sb.st_mode)) rc = cispo_fail("%s: exists and is not a directory", dir);
    }
    return rc;
}

static int write_text_atomic(const char *path, const char *text) {
    size_t n = strlen(path);
    char *tmp = cispo_malloc(n + 5);
    memcpy(tmp, path, n);
    memcpy(tmp + n, ".tmp", 5);
    FILE *f = fopen(tmp, "w");
    int rc = 0;
    if (!f) rc = cispo_fail("%s: cannot create: %s", tmp, strerror(errno));
    else {
        size_t len = strlen(text);
        int ok = fwrite(text, 1, len, f) == len && fflush(f) == 0 && fsync(fileno(f)) == 0;
        if (fclose(f) || !ok) {
            unlink(tmp);
            rc = cispo_fail("%s: write failed (disk full?)", tmp);
        } else if (rename(tmp, path)) {
            rc = cispo_fail("%s: cannot rename %s over it: %s", path, tmp, strerror(errno));
            unlink(tmp);
        }
    }
    free(tmp);
    return rc;
}

int hf_save_dir(const char *dir, const model_config_t *cfg, const param_table_t *table, const float *params) {
    if (mkdir_p(dir)) return -1;
    // A sharded index left in the directory would make other loaders (vLLM reads the index to pick
    // files) take the old shards instead of the new model.safetensors; refuse rather than delete.
    char *stale = path_join(dir, "model.safetensors.index.json");
    int has_index = file_exists(stale);
    free(stale);
    if (has_index)
        return cispo_fail("%s: holds model.safetensors.index.json (a sharded checkpoint); export into a new or empty "
                          "directory so that loaders do not mix old shards with the new weights",
                          dir);
    char *json = model_config_to_json(cfg);
    if (!json) return cispo_fail("%s: cannot express the config as config.json", dir);
    char *cfg_path = path_join(dir, "config.json");
    size_t jl = strlen(json);
    char *text = cispo_malloc(jl + 2);  // config files end with a newline
    memcpy(text, json, jl);
    if (!jl || json[jl - 1] != '\n') text[jl++] = '\n';
    text[jl] = 0;
    int rc = write_text_atomic(cfg_path, text);
    free(text);
    free(json);
    free(cfg_path);
    if (rc) return -1;

    st_write_tensor_t *w = cispo_calloc((size_t)(table->n_entries ? table->n_entries : 1), sizeof *w);
    int n = 0;
    for (int k = 0; k < table->n_entries; k++) {
        const param_entry_t *e = &table->entries[k];
        // transformers writes no lm_head for tied embeddings.
        if (cfg->tie_word_embeddings && !strcmp(e->name, "lm_head.weight")) continue;
        w[n].name = e->name;
        w[n].ndim = e->ndim;
        for (int d = 0; d < e->ndim; d++) w[n].shape[d] = e->shape[d];
        w[n].data = params + e->offset;
        n++;
    }
    char *st_path = path_join(dir, "model.safetensors");
    rc = st_write_f32(st_path, w, n);
    free(st_path);
    free(w);
    return rc;
}

// ---- complete exports: generation config and tokenizer files ----

// The directory part of a file path ("." when it has none); caller frees.
static char *dir_of(const char *path) {
    const char *slash = strrchr(path, '/');
    if (!slash) return cispo_strdup(".");
    size_t n = slash == path ? 1 : (size_t)(slash - path);
    char *d = cispo_malloc(n + 1);
    memcpy(d, path, n);
    d[n] = 0;
    return d;
}

// Parses dir/name as a JSON object; NULL when the file is absent. *bad set when it exists but is no
// JSON object (the error names the file).
static cJSON *read_json_beside(const char *dir, const char *name, int *bad) {
    char *p = path_join(dir, name);
    cJSON *j = NULL;
    *bad = 0;
    if (file_exists(p)) {
        char *text = cispo_read_file(p, NULL);
        j = text ? cJSON_Parse(text) : NULL;
        free(text);
        if (!cJSON_IsObject(j)) {
            cJSON_Delete(j);
            j = NULL;
            *bad = 1;
            cispo_fail("%s: not a JSON object", p);
        }
    }
    free(p);
    return j;
}

static int write_json_atomic(const char *dir, const char *name, const cJSON *j) {
    char *text = cJSON_Print(j), *p = path_join(dir, name);
    size_t n = strlen(text);
    char *t = cispo_malloc(n + 2);
    memcpy(t, text, n);
    memcpy(t + n, "\n", 2);
    int rc = write_text_atomic(p, t);
    free(t);
    free(p);
    cJSON_free(text);
    return rc;
}

static void json_set(cJSON *o, const char *key, cJSON *v) {
    if (cJSON_GetObjectItemCaseSensitive(o, key)) cJSON_ReplaceItemInObjectCaseSensitive(o, key, v);
    else cJSON_AddItemToObject(o, key, v);
}

static cJSON *id_or_null(int id) { return id >= 0 ? cJSON_CreateNumber(id) : cJSON_CreateNull(); }

// The special-token ids of the export: the tokenizer's where it names them (tokenizer_config.json or
// its added tokens), the model config's otherwise. EOS keeps the config's further ids that are special
// tokens of the tokenizer (Llama 3's <|eot_id|> beside <|end_of_text|>).
static void export_ids(model_config_t *c, const tokenizer_t *tok) {
    int32_t eos = tokenizer_eos_id(tok);
    if (eos >= 0) {
        int ids[8] = {eos}, n = 1;
        for (int i = 0; i < c->n_eos && n < 8; i++)
            if (c->eos_token_ids[i] != eos && tokenizer_is_special(tok, c->eos_token_ids[i])) ids[n++] = c->eos_token_ids[i];
        memcpy(c->eos_token_ids, ids, sizeof ids);
        c->n_eos = n;
        c->eos_token_id = eos;
    }
    c->bos_token_id = tokenizer_bos_id(tok);
    if (!c->has_pad_token && tokenizer_pad_id(tok) >= 0) {
        c->has_pad_token = 1;
        c->pad_token_id = tokenizer_pad_id(tok);
    }
}

// generation_config.json: the tokenizer directory's (sampling defaults a model ships) with the ids set.
static int save_generation_config(const char *dir, const model_config_t *c, const char *tok_dir) {
    int bad = 0;
    cJSON *g = tok_dir ? read_json_beside(tok_dir, "generation_config.json", &bad) : NULL;
    if (bad) return -1;
    if (!g) g = cJSON_CreateObject();
    json_set(g, "bos_token_id", id_or_null(c->bos_token_id));
    json_set(g, "eos_token_id", c->n_eos > 1 ? cJSON_CreateIntArray(c->eos_token_ids, c->n_eos) : id_or_null(c->n_eos ? c->eos_token_ids[0] : -1));
    if (c->has_pad_token) json_set(g, "pad_token_id", cJSON_CreateNumber(c->pad_token_id));
    int rc = write_json_atomic(dir, "generation_config.json", g);
    cJSON_Delete(g);
    return rc;
}

// A chat template file as tokenizer_config.json's "chat_template" value: a .jinja file's text, or a
// tokenizer_config.json's own value (a string, or a list of named templates). NULL with the error set.
static cJSON *chat_template_json(const char *path) {
    size_t n = strlen(path);
    char *text = cispo_read_file(path, NULL);
    if (!text) return NULL;
    if (n < 5 || strcmp(path + n - 5, ".json")) {
        cJSON *s = cJSON_CreateString(text);
        free(text);
        return s;
    }
    cJSON *cfg = cJSON_Parse(text);
    free(text);
    cJSON *t = cJSON_DetachItemFromObjectCaseSensitive(cfg, "chat_template");
    cJSON_Delete(cfg);
    if (!cJSON_IsString(t) && !cJSON_IsArray(t)) {
        cJSON_Delete(t);
        return cispo_fail("%s: no \"chat_template\" (a string or a list of named templates)", path), NULL;
    }
    return t;
}

// tokenizer.json (copied) and tokenizer_config.json: the source's, with the chat template (the override,
// else the source's chat_template.jinja when its config has none), a tokenizer class, the special tokens
// by name where it does not name them, and no auto_map (custom tokenizer code is not exported).
static int save_tokenizer_files(const char *dir, const tokenizer_t *tok, const model_config_t *c,
                                const char *chat_template_path) {
    const char *src = tokenizer_path(tok);
    char *tok_dir = dir_of(src);
    size_t len;
    char *text = cispo_read_file(src, &len), *dst = path_join(dir, "tokenizer.json");
    int rc = text ? write_text_atomic(dst, text) : -1;
    free(text);
    free(dst);
    int bad = 0;
    cJSON *tc = rc ? NULL : read_json_beside(tok_dir, "tokenizer_config.json", &bad);
    if (bad) rc = -1;
    cJSON *tmpl = NULL;  // the chat template to set, when it is not the config's own
    if (!rc && chat_template_path) {
        if (!(tmpl = chat_template_json(chat_template_path))) rc = -1;
    } else if (!rc && !cJSON_GetObjectItemCaseSensitive(tc, "chat_template")) {
        char *jinja = path_join(tok_dir, "chat_template.jinja");
        if (file_exists(jinja) && !(tmpl = chat_template_json(jinja))) rc = -1;
        free(jinja);
    }
    if (!rc) {
        if (!tc) tc = cJSON_CreateObject();
        if (tmpl) json_set(tc, "chat_template", tmpl);
        tmpl = NULL;
        if (!cJSON_GetObjectItemCaseSensitive(tc, "tokenizer_class"))
            cJSON_AddStringToObject(tc, "tokenizer_class", "PreTrainedTokenizerFast");
        cJSON_DeleteItemFromObjectCaseSensitive(tc, "auto_map");
        // names from the tokenizer only: naming a model config's id here (a pad id that is an ordinary
        // token) would make transformers treat that vocabulary entry as special and split text at it
        const struct { const char *key; int id; } named[] = {
            {"bos_token", tokenizer_bos_id(tok)}, {"eos_token", tokenizer_eos_id(tok)}, {"pad_token", tokenizer_pad_id(tok)}};
        for (size_t i = 0; i < sizeof named / sizeof *named; i++) {
            const char *name = named[i].id >= 0 ? tokenizer_id_to_token(tok, named[i].id) : NULL;
            if (name && !cJSON_GetObjectItemCaseSensitive(tc, named[i].key)) cJSON_AddStringToObject(tc, named[i].key, name);
        }
        rc = write_json_atomic(dir, "tokenizer_config.json", tc);
    }
    cJSON_Delete(tc);
    cJSON_Delete(tmpl);
    if (!rc) rc = save_generation_config(dir, c, tok_dir);
    free(tok_dir);
    return rc;
}

int hf_export_dir(const char *dir, const model_config_t *cfg, const param_table_t *table, const float *params,
                  const char *tokenizer_path, const char *chat_template_path) {
    model_config_t c = *cfg;
    tokenizer_t *tok = NULL;
    if (tokenizer_path) {
        if (!(tok = tokenizer_load(tokenizer_path))) return -1;
        if (tokenizer_vocab_size(tok) > cfg->vocab_size) {
            int n = tokenizer_vocab_size(tok);
            tokenizer_free(tok);
            return cispo_fail("%s: the tokenizer has %d ids but the model's vocab_size is %d: not the model's tokenizer",
                              tokenizer_path, n, cfg->vocab_size);
        }
        export_ids(&c, tok);
    } else if (chat_template_path) {
        return cispo_fail("%s: a chat template is exported with a tokenizer: give the tokenizer.json too", chat_template_path);
    }
    int rc = hf_save_dir(dir, &c, table, params);
    if (!rc) rc = tok ? save_tokenizer_files(dir, tok, &c, chat_template_path) : save_generation_config(dir, &c, NULL);
    tokenizer_free(tok);
    return rc;
}
