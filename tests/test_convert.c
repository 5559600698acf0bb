// tests/test_convert.c — `cispo convert` and HF directory import: HF -> .h5 -> HF gives the same
// safetensors bytes tensor by tensor (for directories cispo wrote and for the transformers-written
// parity fixtures, decay buffers and tied embeddings included), sharded-index input, and
// transformers' fused expert names. Exports are complete directories: generation_config.json always;
// with a tokenizer (--tokenizer, or the one the checkpoint's run names in its config.yaml) tokenizer.json,
// tokenizer_config.json with the chat template, and the tokenizer's eos/bos/pad ids in config.json; a
// tokenizer larger than the model's vocabulary is refused. (tests/parity/check_export.py loads exports
// in transformers.)
//   ctest -R test_convert        (needs CISPO_BIN; run from the repo root)
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "base/common.h"
#include "model/config.h"
#include "model/hf.h"
#include "model/params.h"
#include "model/safetensors.h"
#include "testutil.h"

static char tmpdir[256];

static const char *small_config =
    "{\"model_type\":\"minimax\",\"vocab_size\":29,\"hidden_size\":12,\"num_hidden_layers\":3,"
    "\"num_attention_heads\":3,\"head_dim\":4,\"num_key_value_heads\":1,\"intermediate_size\":10,"
    "\"num_local_experts\":4,\"num_experts_per_tok\":2,\"block_size\":4,"
    "\"layer_types\":[\"linear_attention\",\"full_attention\",\"linear_attention\"]}";

static int is_buffer(const char *name) {
    return strstr(name, "slope_rate") || strstr(name, "_decay") || strstr(name, "inv_freq");
}

static int run_cli(const char *src, const char *dst) {
    const char *bin = getenv("CISPO_BIN");
    if (!bin) return -1;
    char cmd[2048];
    snprintf(cmd, sizeof cmd, "'%s' convert '%s' '%s' >/dev/null", bin, src, dst);
    int st = system(cmd);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

// Every non-buffer tensor of a appears in b with the same dtype, shape and data bytes, and b holds
// nothing else.
static void compare_st(const char *what, const char *pa, const char *pb) {
    st_file_t a, b;
    if (!test_check(st_open(&a, pa) == 0, "%s: open %s: %s", what, pa, cispo_last_error())) return;
    if (!test_check(st_open(&b, pb) == 0, "%s: open %s: %s", what, pb, cispo_last_error())) {
        st_close(&a);
        return;
    }
    int n = 0, bad = 0;
    for (int i = 0; i < a.header.n_tensors; i++) {
        const st_tensor_t *ta = &a.header.tensors[i];
        if (is_buffer(ta->name)) continue;
        n++;
        int j = st_find(&b, ta->name);
        if (j < 0) {
            bad += !test_check(0, "%s: tensor '%s' missing from the export", what, ta->name);
            continue;
        }
        const st_tensor_t *tb = &b.header.tensors[j];
        int same = ta->dtype == tb->dtype && ta->ndim == tb->ndim && ta->end - ta->begin == tb->end - tb->begin;
        for (int d = 0; same && d < ta->ndim; d++) same = ta->shape[d] == tb->shape[d];
        same = same && memcmp(a.map + a.header.data_start + ta->begin, b.map + b.header.data_start + tb->begin,
                              (size_t)(ta->end - ta->begin)) == 0;
        bad += !test_check(same, "%s: tensor '%s' bytes identical", what, ta->name);
    }
    test_check(b.header.n_tensors == n, "%s: export holds exactly the %d weights (has %d)", what, n, b.header.n_tensors);
    test_check(!bad && n > 0, "%s: %d tensors bit-identical after HF -> h5 -> HF", what, n);
    st_close(&a);
    st_close(&b);
}

static void round_trip_dir(const char *what, const char *src) {
    char h5[512], out[512], pa[600], pb[600];
    snprintf(h5, sizeof h5, "%s/%s.h5", tmpdir, what);
    snprintf(out, sizeof out, "%s/%s_out", tmpdir, what);
    test_check(run_cli(src, h5) == 0, "%s: cispo convert %s %s", what, src, h5);
    test_check(run_cli(h5, out) == 0, "%s: cispo convert %s %s", what, h5, out);
    snprintf(pa, sizeof pa, "%s/model.safetensors", src);
    snprintf(pb, sizeof pb, "%s/model.safetensors", out);
    compare_st(what, pa, pb);
    // The exported config describes the same model.
    model_config_t ca, cb;
    snprintf(pa, sizeof pa, "%s/config.json", src);
    snprintf(pb, sizeof pb, "%s/config.json", out);
    if (test_check(model_config_load(&ca, pa) == 0 && model_config_load(&cb, pb) == 0, "%s: both configs load: %s", what,
                   cispo_last_error())) {
        param_table_t ta, tb;
        param_table_build(&ta, &ca);
        param_table_build(&tb, &cb);
        test_check(ta.n_floats == tb.n_floats && ta.n_entries == tb.n_entries && ca.n_layers == cb.n_layers &&
                       ca.tie_word_embeddings == cb.tie_word_embeddings && ca.rms_norm_eps == cb.rms_norm_eps &&
                       ca.rope_theta == cb.rope_theta && ca.block_size == cb.block_size &&
                       !memcmp(ca.layer_kind, cb.layer_kind, sizeof(int) * (size_t)ca.n_layers) &&
                       ca.linear_alpha == cb.linear_alpha && ca.full_beta == cb.full_beta && ca.mlp_alpha == cb.mlp_alpha,
                   "%s: exported config.json describes the same model", what);
        param_table_free(&ta);
        param_table_free(&tb);
    }
}

static float *random_model(model_config_t *cfg, param_table_t *t) {
    CISPO_ASSERT(model_config_from_json_text(cfg, small_config, "small_config") == 0);
    param_table_build(t, cfg);
    float *p = cispo_malloc(t->n_floats * sizeof(float));
    uint64_t s = 99;
    test_fill(p, t->n_floats, &s, -1, 1);
    return p;
}

static void expect_same_params(const char *what, const char *dir, const param_table_t *t, const float *params) {
    model_config_t c;
    param_table_t t2;
    float *p2;
    if (!test_check(hf_load_dir(dir, &c, &t2, &p2) == 0, "%s: loads: %s", what, cispo_last_error())) return;
    test_check(t2.n_floats == t->n_floats && memcmp(p2, params, t->n_floats * sizeof(float)) == 0,
               "%s: parameters bit-identical to the source", what);
    free(p2);
    param_table_free(&t2);
}

static void write_text(const char *path, const char *text) {
    FILE *f = fopen(path, "w");
    CHECK_ALLOC(f);
    fputs(text, f);
    fclose(f);
}

static void copy_config(const char *from_dir, const char *to_dir) {
    char a[600], b[600];
    snprintf(a, sizeof a, "%s/config.json", from_dir);
    snprintf(b, sizeof b, "%s/config.json", to_dir);
    char *text = cispo_read_file(a, NULL);
    CISPO_ASSERT(text);
    write_text(b, text);
    free(text);
}

// The same weights in 3 shards + model.safetensors.index.json.
static void test_sharded(const char *src, const param_table_t *t, const float *params) {
    char dir[512], p[600];
    snprintf(dir, sizeof dir, "%s/sharded", tmpdir);
    CISPO_ASSERT(mkdir(dir, 0777) == 0);
    copy_config(src, dir);
    st_write_tensor_t *w = cispo_calloc((size_t)t->n_entries, sizeof *w);
    size_t cap = 1 << 16, len = 0;
    char *index = cispo_malloc(cap);
    len += (size_t)snprintf(index, cap, "{\"metadata\": {\"total_size\": %zu}, \"weight_map\": {", t->n_floats * 4);
    for (int shard = 0; shard < 3; shard++) {
        int n = 0;
        char fname[64];
        snprintf(fname, sizeof fname, "model-%05d-of-00003.safetensors", shard + 1);
        for (int k = shard; k < t->n_entries; k += 3) {  // interleaved, so every shard holds every kind
            const param_entry_t *e = &t->entries[k];
            w[n++] = (st_write_tensor_t){e->name, e->ndim, {e->shape[0], e->shape[1]}, params + e->offset};
            len += (size_t)snprintf(index + len, cap - len, "%s\"%s\": \"%s\"", len > 60 ? ", " : "", e->name, fname);
            CISPO_ASSERT(len < cap);
        }
        snprintf(p, sizeof p, "%s/%s", dir, fname);
        CISPO_ASSERT(st_write_f32(p, w, n) == 0);
    }
    snprintf(index + len, cap - len, "}}");
    snprintf(p, sizeof p, "%s/model.safetensors.index.json", dir);
    write_text(p, index);
    expect_same_params("sharded", dir, t, params);

    // Through the CLI: sharded dir -> h5 -> single-file dir, same bytes as the single-file source.
    char h5[600], out[600], pa[700], pb[700];
    snprintf(h5, sizeof h5, "%s/sharded.h5", tmpdir);
    snprintf(out, sizeof out, "%s/sharded_out", tmpdir);
    test_check(run_cli(dir, h5) == 0 && run_cli(h5, out) == 0, "sharded: CLI round trip");
    snprintf(pa, sizeof pa, "%s/model.safetensors", src);
    snprintf(pb, sizeof pb, "%s/model.safetensors", out);
    compare_st("sharded", pa, pb);

    // The index naming a tensor its shard does not hold.
    char *broken = cispo_strdup(index);
    char *at = strstr(broken, "model-00002-of-00003");
    CISPO_ASSERT(at);
    at[10] = '3';  // first tensor of shard 2 now claims shard 3
    write_text(p, broken);
    model_config_t c;
    param_table_t t2;
    float *p2;
    int rc = hf_load_dir(dir, &c, &t2, &p2);
    test_check(rc == -1 && strstr(cispo_last_error(), "index.json") && strstr(cispo_last_error(), "does not hold it"),
               "index/shard disagreement reported: %s", cispo_last_error());
    free(broken);
    free(index);
    free(w);
}

// transformers' in-memory names: mlp.experts.gate_up_proj [E,2F,C] = [w1; w3], mlp.experts.down_proj
// [E,C,F], mlp.gate.weight; plus decay buffers and a rotary inv_freq that must be ignored.
static void test_fused(const char *src, const model_config_t *cfg, const param_table_t *t, const float *params) {
    char dir[512], p[600];
    snprintf(dir, sizeof dir, "%s/fused", tmpdir);
    CISPO_ASSERT(mkdir(dir, 0777) == 0);
    copy_config(src, dir);
    int E = cfg->n_experts, F = cfg->intermediate_size, C = cfg->hidden_size;
    size_t per = (size_t)F * (size_t)C;
    int nl = cfg->n_layers;
    st_write_tensor_t *w = cispo_calloc((size_t)t->n_entries + 8 * (size_t)nl, sizeof *w);
    float **bufs = cispo_calloc((size_t)nl * 2, sizeof *bufs);
    char (*names)[PARAM_NAME_MAX] = cispo_calloc((size_t)nl * 6, PARAM_NAME_MAX);
    static const float junk[64] = {1, 2, 3};
    int n = 0, gate_up0 = -1;
    for (int k = 0; k < t->n_entries; k++) {
        const param_entry_t *e = &t->entries[k];
        if (strstr(e->name, ".block_sparse_moe.")) continue;
        w[n++] = (st_write_tensor_t){e->name, e->ndim, {e->shape[0], e->shape[1]}, params + e->offset};
    }
    for (int l = 0; l < nl; l++) {
        const layer_params_t *lp = &t->layers[l];
        float *gu = bufs[2 * l] = cispo_malloc((size_t)E * 2 * per * sizeof(float));
        float *dn = bufs[2 * l + 1] = cispo_malloc((size_t)E * per * sizeof(float));
        for (int e = 0; e < E; e++) {
            memcpy(gu + (size_t)e * 2 * per, params + lp->w1 + (size_t)e * per, per * sizeof(float));
            memcpy(gu + (size_t)e * 2 * per + per, params + lp->w3 + (size_t)e * per, per * sizeof(float));
            memcpy(dn + (size_t)e * per, params + lp->w2 + (size_t)e * per, per * sizeof(float));
        }
        char *n0 = names[6 * l], *n1 = names[6 * l + 1], *n2 = names[6 * l + 2], *n3 = names[6 * l + 3];
        snprintf(n0, PARAM_NAME_MAX, "model.layers.%d.mlp.experts.gate_up_proj", l);
        snprintf(n1, PARAM_NAME_MAX, "model.layers.%d.mlp.experts.down_proj", l);
        snprintf(n2, PARAM_NAME_MAX, "model.layers.%d.mlp.gate.weight", l);
        snprintf(n3, PARAM_NAME_MAX, "model.layers.%d.self_attn.slope_rate", l);
        if (l == 0) gate_up0 = n;
        w[n++] = (st_write_tensor_t){n0, 3, {E, 2 * F, C}, gu};
        w[n++] = (st_write_tensor_t){n1, 3, {E, C, F}, dn};
        w[n++] = (st_write_tensor_t){n2, 2, {E, C}, params + lp->router};
        w[n++] = (st_write_tensor_t){n3, 3, {cfg->n_heads, 1, 1}, junk};
    }
    w[n++] = (st_write_tensor_t){"model.rotary_emb.inv_freq", 1, {2}, junk};
    snprintf(p, sizeof p, "%s/model.safetensors", dir);
    CISPO_ASSERT(st_write_f32(p, w, n) == 0);
    expect_same_params("fused names", dir, t, params);

    char h5[600], out[600], pa[700], pb[700];
    snprintf(h5, sizeof h5, "%s/fused.h5", tmpdir);
    snprintf(out, sizeof out, "%s/fused_out", tmpdir);
    test_check(run_cli(dir, h5) == 0 && run_cli(h5, out) == 0, "fused: CLI round trip");
    snprintf(pa, sizeof pa, "%s/model.safetensors", src);
    snprintf(pb, sizeof pb, "%s/model.safetensors", out);
    compare_st("fused -> per-expert export", pa, pb);

    // Fused and per-expert names for the same weights: refused, naming the tensor.
    const param_entry_t *w1 = &t->entries[param_table_find(t, "model.layers.0.block_sparse_moe.experts.0.w1.weight")];
    w[n++] = (st_write_tensor_t){w1->name, 2, {w1->shape[0], w1->shape[1]}, params + w1->offset};
    CISPO_ASSERT(st_write_f32(p, w, n) == 0);
    model_config_t c;
    param_table_t t2;
    float *p2;
    int rc = hf_load_dir(dir, &c, &t2, &p2);
    test_check(rc == -1 && strstr(cispo_last_error(), "experts.0.w1.weight"), "both namings refused: %s",
               cispo_last_error());

    // A fused tensor of the wrong shape.
    n -= 1;
    w[gate_up0].shape[0] = 2 * E;  // layer 0's gate_up_proj claims [2E, F, C]: the same byte count
    w[gate_up0].shape[1] = F;
    CISPO_ASSERT(st_write_f32(p, w, n) == 0);
    rc = hf_load_dir(dir, &c, &t2, &p2);
    test_check(rc == -1 && strstr(cispo_last_error(), "gate_up_proj") && strstr(cispo_last_error(), "needs [4,20,12]"),
               "mis-shaped fused tensor refused: %s", cispo_last_error());

    for (int i = 0; i < 2 * nl; i++) free(bufs[i]);
    free(bufs);
    free(names);
    free(w);
}

static int run_cmd(const char *cmd) {
    int st = system(cmd);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static cJSON *read_json(const char *dir, const char *name) {
    char p[1024];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    char *text = cispo_read_file(p, NULL);
    cJSON *j = text ? cJSON_Parse(text) : NULL;
    free(text);
    return j;
}

static int json_int(const cJSON *o, const char *key) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsNumber(v) ? (int)v->valuedouble : cJSON_IsNull(v) ? -1 : -2;
}

// A run directory's checkpoint exports with the run's tokenizer and chat template (config.yaml beside
// it names them, as `cispo train` writes it); a tokenizer with more ids than the model is refused.
static void test_export_tokenizer(const char *small_h5) {
    const char *bin = getenv("CISPO_BIN");
    char cwd[512], run[600], cmd[4096], out[700], yaml[700];
    CISPO_ASSERT(getcwd(cwd, sizeof cwd) != NULL);
    snprintf(run, sizeof run, "%s/run", tmpdir);
    snprintf(out, sizeof out, "%s/run_export", tmpdir);
    snprintf(cmd, sizeof cmd, "mkdir -p '%s' && '%s' convert tiny '%s/ckpt-000010.h5' >/dev/null", run, bin, run);
    if (!test_check(run_cmd(cmd) == 0, "tiny preset to a checkpoint")) return;
    snprintf(yaml, sizeof yaml, "%s/config.yaml", run);
    FILE *f = fopen(yaml, "w");
    CISPO_ASSERT(f != NULL);
    fprintf(f, "model: tiny\ntokenizer: %s/configs/tokenizers/demo/tokenizer.json\nchat_template: auto\nlr: 0.001\n", cwd);
    fclose(f);
    snprintf(cmd, sizeof cmd, "'%s' convert '%s/ckpt-000010.h5' '%s' >/dev/null", bin, run, out);
    if (!test_check(run_cmd(cmd) == 0, "export of a run's checkpoint")) return;
    char *a = cispo_read_file("configs/tokenizers/demo/tokenizer.json", NULL), *b = NULL;
    char p[800];
    snprintf(p, sizeof p, "%s/tokenizer.json", out);
    b = cispo_read_file(p, NULL);
    test_check(a && b && !strcmp(a, b), "the run's tokenizer.json is exported byte for byte");
    free(a);
    free(b);
    char *tmpl = cispo_read_file("configs/tokenizers/demo/chat_template.jinja", NULL);
    cJSON *tc = read_json(out, "tokenizer_config.json"), *cfg = read_json(out, "config.json"),
          *gen = read_json(out, "generation_config.json");
    const cJSON *ct = cJSON_GetObjectItemCaseSensitive(tc, "chat_template");
    test_check(tmpl && cJSON_IsString(ct) && !strcmp(ct->valuestring, tmpl),
               "tokenizer_config.json carries the chat template of chat_template.jinja");
    const cJSON *eos = cJSON_GetObjectItemCaseSensitive(tc, "eos_token");
    test_check(cJSON_IsString(eos) && !strcmp(eos->valuestring, "<|endoftext|>"), "tokenizer_config.json eos_token kept");
    // the demo tokenizer: eos <|endoftext|> = 0, no BOS (bos_token null), pad <|endoftext|>
    test_check(json_int(cfg, "eos_token_id") == 0 && json_int(cfg, "bos_token_id") == -1 &&
                   json_int(cfg, "pad_token_id") == 0,
               "config.json eos/bos/pad = the tokenizer's 0/null/0: %d/%d/%d", json_int(cfg, "eos_token_id"),
               json_int(cfg, "bos_token_id"), json_int(cfg, "pad_token_id"));
    test_check(json_int(gen, "eos_token_id") == 0 && json_int(gen, "bos_token_id") == -1 && json_int(gen, "pad_token_id") == 0,
               "generation_config.json eos/bos/pad = 0/null/0");
    cJSON_Delete(tc);
    cJSON_Delete(cfg);
    cJSON_Delete(gen);
    free(tmpl);

    // A tokenizer with more ids (701) than the model (vocab_size 29) is not the model's.
    char errp[700];
    snprintf(errp, sizeof errp, "%s/tok_err.txt", tmpdir);
    snprintf(cmd, sizeof cmd, "'%s' convert '%s' '%s/too_big' --tokenizer tests/tokenizer/mistral.json >/dev/null 2>'%s'",
             bin, small_h5, tmpdir, errp);
    int rc = run_cmd(cmd);
    char *err = cispo_read_file(errp, NULL);
    test_check(rc == 1 && err && strstr(err, "mistral.json") && strstr(err, "vocab_size is 29"),
               "a tokenizer larger than the model refused: %s", err ? err : "");
    free(err);
    // Without a tokenizer the export still has generation_config.json with the config's ids.
    snprintf(p, sizeof p, "%s/random_out", tmpdir);
    gen = read_json(p, "generation_config.json");
    test_check(gen && json_int(gen, "eos_token_id") == 2, "export without a tokenizer: generation_config.json eos %d",
               json_int(gen, "eos_token_id"));
    cJSON_Delete(gen);
}

int main(void) {
    snprintf(tmpdir, sizeof tmpdir, "/tmp/cispo_test_convert_XXXXXX");
    CISPO_ASSERT(mkdtemp(tmpdir) != NULL);
    if (!test_check(getenv("CISPO_BIN") != NULL, "CISPO_BIN is set")) return test_finish("test_convert");

    model_config_t cfg;
    param_table_t t;
    float *params = random_model(&cfg, &t);
    char src[512];
    snprintf(src, sizeof src, "%s/src", tmpdir);
    test_check(hf_save_dir(src, &cfg, &t, params) == 0, "hf_save_dir: %s", cispo_last_error());
    round_trip_dir("random", src);
    test_sharded(src, &t, params);
    test_fused(src, &cfg, &t, params);

    // Directories written by transformers' save_pretrained (decay buffers present; one tied).
    static const char *fixtures[] = {"basic", "wide_heads", "deep", "block_large_tied", "defaults"};
    for (size_t i = 0; i < sizeof fixtures / sizeof *fixtures; i++) {
        char dir[512];
        snprintf(dir, sizeof dir, "tests/fixtures/parity/%s", fixtures[i]);
        round_trip_dir(fixtures[i], dir);
    }
    // Exporting over a sharded directory is refused (loaders that follow the index would mix files).
    char sharded[512], h5[600], errp[600], cmd[2048];
    snprintf(sharded, sizeof sharded, "%s/sharded", tmpdir);
    snprintf(h5, sizeof h5, "%s/random.h5", tmpdir);
    snprintf(errp, sizeof errp, "%s/stderr.txt", tmpdir);
    snprintf(cmd, sizeof cmd, "'%s' convert '%s' '%s' >/dev/null 2>'%s'", getenv("CISPO_BIN"), h5, sharded, errp);
    int st = system(cmd);
    char *err = cispo_read_file(errp, NULL);
    test_check(WIFEXITED(st) && WEXITSTATUS(st) == 1 && err && strstr(err, "model.safetensors.index.json"),
               "export into a sharded directory refused: %s", err ? err : "");
    free(err);

    test_export_tokenizer(h5);

    char tied[600];
    snprintf(tied, sizeof tied, "%s/block_large_tied_out/model.safetensors", tmpdir);
    st_file_t f;
    if (test_check(st_open(&f, tied) == 0, "open tied export")) {
        test_check(st_find(&f, "lm_head.weight") < 0, "tied export has no lm_head.weight (as transformers writes it)");
        st_close(&f);
    }

    free(params);
    param_table_free(&t);
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    if (system(cmd) != 0) printf("note: could not remove %s\n", tmpdir);
    return test_finish("test_convert");
}
