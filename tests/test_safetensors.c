// tests/test_safetensors.c — the safetensors reader/writer and HF directory import against bad input.
//   ctest -R test_safetensors        (needs CISPO_BIN for the CLI checks; run from the repo root)
// Round trip (bit-exact, sorted names, 8-byte aligned header, no temporary left), F16/BF16/F64
// conversion, then every malformed file or directory: each must fail with one line naming the file
// and the tensor or key, and `cispo convert` must exit 1 with that line (no crash).
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "base/common.h"
#include "model/config.h"
#include "model/hf.h"
#include "model/params.h"
#include "model/safetensors.h"
#include "testutil.h"

static char tmpdir[256];

static void write_bytes(const char *path, const void *data, size_t n) {
    FILE *f = fopen(path, "wb");
    CHECK_ALLOC(f);
    fwrite(data, 1, n, f);
    fclose(f);
}

// A safetensors file from a header string and n data bytes (a pattern, contents irrelevant).
static void write_raw(const char *path, const char *header, size_t data_len) {
    size_t hl = strlen(header);
    uint8_t *buf = cispo_calloc(8 + hl + data_len, 1);
    for (int i = 0; i < 8; i++) buf[i] = (uint8_t)((uint64_t)hl >> (8 * i));
    memcpy(buf + 8, header, hl);
    for (size_t i = 0; i < data_len; i++) buf[8 + hl + i] = (uint8_t)(i * 7);
    write_bytes(path, buf, 8 + hl + data_len);
    free(buf);
}

static int one_line(const char *s) { return s[0] && !strchr(s, '\n'); }

// Expects st_open to fail with a message containing every `want` fragment.
static void expect_open_fails(const char *what, const char *path, const char *want1, const char *want2) {
    st_file_t f;
    int rc = st_open(&f, path);
    const char *msg = cispo_last_error();
    test_check(rc == -1, "%s: rejected", what);
    if (rc == 0) {
        st_close(&f);
        return;
    }
    test_check(one_line(msg), "%s: one-line message: %s", what, msg);
    test_check(strstr(msg, path) != NULL, "%s: message names the file: %s", what, msg);
    test_check(!want1 || strstr(msg, want1), "%s: message mentions '%s': %s", what, want1 ? want1 : "", msg);
    test_check(!want2 || strstr(msg, want2), "%s: message mentions '%s': %s", what, want2 ? want2 : "", msg);
}

static void test_round_trip(void) {
    uint64_t s = 1;
    float a[6], b[3], c[1], d[1];
    test_fill(a, 6, &s, -2, 2);
    test_fill(b, 3, &s, -2, 2);
    c[0] = 3.5f;
    a[1] = -0.0f;  // sign of zero must survive
    st_write_tensor_t w[] = {
        {"zeta.weight", 2, {2, 3}, a},
        {"alpha.bias", 1, {3}, b},
        {"scalar", 0, {0}, c},
        {"empty", 2, {0, 4}, d},
        {"quote\"and\\slash", 1, {1}, c},
    };
    char path[512];
    snprintf(path, sizeof path, "%s/rt.safetensors", tmpdir);
    test_check(st_write_f32(path, w, 5) == 0, "write: %s", cispo_last_error());
    char tmp[600];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    test_check(access(tmp, F_OK) != 0, "no temporary file left after writing");

    st_file_t f;
    if (!test_check(st_open(&f, path) == 0, "reopen: %s", cispo_last_error())) return;
    test_check(f.header.n_tensors == 5, "5 tensors read back (got %d)", f.header.n_tensors);
    test_check(f.header.data_start % 8 == 0, "data section 8-byte aligned (starts at %llu)",
               (unsigned long long)f.header.data_start);
    // The header lists names sorted and offsets ascending, like the reference writer.
    for (int i = 1; i < f.header.n_tensors; i++) {
        test_check(strcmp(f.header.tensors[i - 1].name, f.header.tensors[i].name) < 0, "names sorted at %d", i);
        test_check(f.header.tensors[i - 1].end == f.header.tensors[i].begin, "offsets contiguous at %d", i);
    }
    for (int k = 0; k < 5; k++) {
        int i = st_find(&f, w[k].name);
        if (!test_check(i >= 0, "tensor '%s' found", w[k].name)) continue;
        const st_tensor_t *t = &f.header.tensors[i];
        test_check(t->dtype == ST_F32 && t->ndim == w[k].ndim, "'%s': F32, rank %d", w[k].name, w[k].ndim);
        size_t n = 1;
        for (int dd = 0; dd < w[k].ndim; dd++) {
            test_check(t->shape[dd] == w[k].shape[dd], "'%s' dim %d", w[k].name, dd);
            n *= (size_t)w[k].shape[dd];
        }
        float got[8] = {0};
        test_check(st_read_f32(&f, i, got) == 0, "read '%s'", w[k].name);
        test_check(memcmp(got, w[k].data, n * sizeof(float)) == 0, "'%s' bit-identical", w[k].name);
    }
    st_close(&f);

    // Duplicate names are refused by the writer too.
    st_write_tensor_t dup[] = {{"x", 1, {1}, c}, {"x", 1, {1}, c}};
    test_check(st_write_f32(path, dup, 2) == -1 && strstr(cispo_last_error(), "'x'"), "writer rejects duplicates: %s",
               cispo_last_error());
}

// F16 (normal, subnormal, inf, negative), BF16 and F64 to fp32.
static void test_conversions(void) {
    char path[512];
    snprintf(path, sizeof path, "%s/dtypes.safetensors", tmpdir);
    const char *hdr = "{\"h\":{\"dtype\":\"F16\",\"shape\":[4],\"data_offsets\":[0,8]},"
                      "\"b\":{\"dtype\":\"BF16\",\"shape\":[2],\"data_offsets\":[8,12]},"
                      "\"d\":{\"dtype\":\"F64\",\"shape\":[1],\"data_offsets\":[12,20]},"
                      "\"i\":{\"dtype\":\"I64\",\"shape\":[1],\"data_offsets\":[20,28]}}";
    size_t hl = strlen(hdr);
    uint8_t buf[1024] = {0};
    for (int i = 0; i < 8; i++) buf[i] = (uint8_t)((uint64_t)hl >> (8 * i));
    memcpy(buf + 8, hdr, hl);
    uint8_t *data = buf + 8 + hl;  // deliberately unaligned for the F64 read
    uint16_t h[4] = {0x3C00, 0xC000, 0x0001, 0x7C00};  // 1, -2, 2^-24, +inf
    uint16_t bf[2] = {0x3F80, 0xC0A0};                 // 1, -5
    double dv = 0.1;
    int64_t iv = 7;
    memcpy(data, h, 8);
    memcpy(data + 8, bf, 4);
    memcpy(data + 12, &dv, 8);
    memcpy(data + 20, &iv, 8);
    write_bytes(path, buf, 8 + hl + 28);
    st_file_t f;
    if (!test_check(st_open(&f, path) == 0, "open mixed dtypes: %s", cispo_last_error())) return;
    float out[4];
    test_check(st_read_f32(&f, st_find(&f, "h"), out) == 0, "read F16");
    test_check(out[0] == 1.0f && out[1] == -2.0f && out[2] == ldexpf(1.0f, -24) && isinf(out[3]) && out[3] > 0,
               "F16 values %g %g %g %g", out[0], out[1], out[2], out[3]);
    test_check(st_read_f32(&f, st_find(&f, "b"), out) == 0 && out[0] == 1.0f && out[1] == -5.0f, "BF16 values %g %g",
               out[0], out[1]);
    test_check(st_read_f32(&f, st_find(&f, "d"), out) == 0 && out[0] == (float)0.1, "F64 value %.9g", out[0]);
    int rc = st_read_f32(&f, st_find(&f, "i"), out);
    const char *msg = cispo_last_error();
    test_check(rc == -1 && strstr(msg, "'i'") && strstr(msg, "unsupported dtype 'I64'") && strstr(msg, path) &&
                   one_line(msg),
               "I64 refused naming file, tensor and dtype: %s", msg);
    st_close(&f);
}

static void test_bad_files(void) {
    char p[512];
    const char *ok_hdr = "{\"model.norm.weight\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}";

    snprintf(p, sizeof p, "%s/short.safetensors", tmpdir);
    write_bytes(p, "\x05\x00\x00", 3);
    expect_open_fails("3-byte file", p, "too short", NULL);

    snprintf(p, sizeof p, "%s/empty.safetensors", tmpdir);
    write_bytes(p, "", 0);
    expect_open_fails("empty file", p, "too short", NULL);

    snprintf(p, sizeof p, "%s/hdrlen.safetensors", tmpdir);
    uint8_t big[16] = {0xff, 0x10, 0, 0, 0, 0, 0, 0, '{', '}'};
    write_bytes(p, big, 10);
    expect_open_fails("header length past the end", p, "header length 4351 past the end", NULL);

    snprintf(p, sizeof p, "%s/huge.safetensors", tmpdir);
    uint8_t huge[16] = {0, 0, 0, 0, 0, 0, 0, 0x80, '{', '}'};
    write_bytes(p, huge, 10);
    expect_open_fails("absurd header length", p, "100 MB", NULL);

    snprintf(p, sizeof p, "%s/truncated.safetensors", tmpdir);
    write_raw(p, ok_hdr, 5);  // 8 bytes promised, 5 present
    expect_open_fails("truncated data", p, "'model.norm.weight'", "past the end");

    snprintf(p, sizeof p, "%s/past.safetensors", tmpdir);
    write_raw(p, "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
                 "\"model.norm.weight\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,16]}}",
              12);
    expect_open_fails("offsets past the end", p, "'model.norm.weight'", "[8,16] past the end");

    snprintf(p, sizeof p, "%s/overlap.safetensors", tmpdir);
    write_raw(p, "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
                 "\"model.norm.weight\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}",
              12);
    expect_open_fails("overlapping offsets", p, "'model.norm.weight'", "overlap tensor 'a'");

    snprintf(p, sizeof p, "%s/gap.safetensors", tmpdir);
    write_raw(p, "{\"model.norm.weight\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}", 12);
    expect_open_fails("gap before a tensor", p, "'model.norm.weight'", "gap of 4 bytes");

    snprintf(p, sizeof p, "%s/trailing.safetensors", tmpdir);
    write_raw(p, ok_hdr, 12);
    expect_open_fails("bytes after the last tensor", p, "4 bytes of data after", NULL);

    snprintf(p, sizeof p, "%s/backwards.safetensors", tmpdir);
    write_raw(p, "{\"model.norm.weight\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,4]}}", 8);
    expect_open_fails("end before start", p, "'model.norm.weight': data_offsets [8,4] end before start", NULL);

    snprintf(p, sizeof p, "%s/size.safetensors", tmpdir);
    write_raw(p, "{\"model.norm.weight\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,8]}}", 8);
    expect_open_fails("size != numel * dtype size", p, "'model.norm.weight'", "hold 8 bytes but F32 [3] needs 12");

    snprintf(p, sizeof p, "%s/dtype.safetensors", tmpdir);
    write_raw(p, "{\"model.norm.weight\":{\"dtype\":\"F7\",\"shape\":[2],\"data_offsets\":[0,8]}}", 8);
    expect_open_fails("unknown dtype", p, "'model.norm.weight'", "unsupported dtype 'F7'");

    snprintf(p, sizeof p, "%s/json.safetensors", tmpdir);
    write_raw(p, "{\"model.norm.weight\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}", 8);
    expect_open_fails("bad JSON", p, "not valid JSON", NULL);

    snprintf(p, sizeof p, "%s/notobj.safetensors", tmpdir);
    write_raw(p, "{\"model.norm.weight\":[1,2]}", 0);
    expect_open_fails("entry not an object", p, "'model.norm.weight'", "not a JSON object");

    snprintf(p, sizeof p, "%s/dup.safetensors", tmpdir);
    write_raw(p, "{\"model.norm.weight\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
                 "\"model.norm.weight\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}",
              8);
    expect_open_fails("duplicate names", p, "'model.norm.weight'", "twice");

    snprintf(p, sizeof p, "%s/negshape.safetensors", tmpdir);
    write_raw(p, "{\"model.norm.weight\":{\"dtype\":\"F32\",\"shape\":[-2],\"data_offsets\":[0,8]}}", 8);
    expect_open_fails("negative dim", p, "'model.norm.weight'", "shape[0]");

    snprintf(p, sizeof p, "%s/meta.safetensors", tmpdir);
    write_raw(p, "{\"__metadata__\":{\"format\":3}}", 0);
    expect_open_fails("non-string metadata", p, "__metadata__ key 'format'", NULL);

    snprintf(p, sizeof p, "%s/metaok.safetensors", tmpdir);
    write_raw(p, "{\"__metadata__\":{\"format\":\"pt\"},\"x\":{\"dtype\":\"F32\",\"shape\":[],\"data_offsets\":[0,4]}}    ", 4);
    st_file_t f;
    test_check(st_open(&f, p) == 0, "__metadata__ and trailing header spaces accepted: %s", cispo_last_error());
    st_close(&f);
}

// ---- HF directories ----

static const char *small_config =
    "{\"model_type\":\"minimax\",\"vocab_size\":37,\"hidden_size\":16,\"num_hidden_layers\":2,"
    "\"num_attention_heads\":2,\"head_dim\":8,\"num_key_value_heads\":1,\"intermediate_size\":12,"
    "\"num_local_experts\":3,\"num_experts_per_tok\":2,\"block_size\":4,"
    "\"layer_types\":[\"linear_attention\",\"full_attention\"],\"tie_word_embeddings\":false}";

static void write_text(const char *path, const char *text) { write_bytes(path, text, strlen(text)); }

// A model directory with random weights; returns the table (caller frees) and params.
static int make_model_dir(const char *dir, model_config_t *cfg, param_table_t *t, float **params) {
    if (model_config_from_json_text(cfg, small_config, "small_config")) return -1;
    param_table_build(t, cfg);
    *params = cispo_malloc(t->n_floats * sizeof(float));
    uint64_t s = 42;
    test_fill(*params, t->n_floats, &s, -1, 1);
    return hf_save_dir(dir, cfg, t, *params);
}

// Rewrites dir/model.safetensors from the table with one change: tensor `drop` left out, tensor
// `reshape` given shape [1, numel], an `extra` tensor added, or `as_i64` stored with dtype I64.
static void write_variant(const char *dir, const param_table_t *t, const float *params, const char *drop,
                          const char *reshape, const char *extra) {
    st_write_tensor_t *w = cispo_calloc((size_t)t->n_entries + 1, sizeof *w);
    int n = 0;
    for (int k = 0; k < t->n_entries; k++) {
        const param_entry_t *e = &t->entries[k];
        if (drop && !strcmp(e->name, drop)) continue;
        w[n].name = e->name;
        w[n].ndim = e->ndim;
        w[n].shape[0] = e->shape[0];
        w[n].shape[1] = e->shape[1];
        if (reshape && !strcmp(e->name, reshape)) {
            w[n].ndim = 2;
            w[n].shape[0] = 1;
            w[n].shape[1] = (int64_t)e->numel;
        }
        w[n].data = params + e->offset;
        n++;
    }
    if (extra) w[n++] = (st_write_tensor_t){extra, 1, {4}, params};
    char p[512];
    snprintf(p, sizeof p, "%s/model.safetensors", dir);
    CISPO_ASSERT(st_write_f32(p, w, n) == 0);
    free(w);
}

// Runs `cispo <args>`; expects exit status 1 (not a signal) and one stderr line holding the fragments.
static void expect_cli_fails(const char *what, const char *args, const char *want1, const char *want2) {
    const char *bin = getenv("CISPO_BIN");
    if (!bin) return;  // counted once in main
    char cmd[2048], errp[512];
    snprintf(errp, sizeof errp, "%s/stderr.txt", tmpdir);
    snprintf(cmd, sizeof cmd, "'%s' %s >/dev/null 2>'%s'", bin, args, errp);
    int st = system(cmd);
    test_check(WIFEXITED(st) && WEXITSTATUS(st) == 1, "%s: cispo exits 1 (status %d)", what, st);
    char *err = cispo_read_file(errp, NULL);
    if (!err) return;
    size_t n = strlen(err);
    test_check(n > 0 && err[n - 1] == '\n' && memchr(err, '\n', n - 1) == NULL, "%s: one stderr line: %s", what, err);
    test_check(!want1 || strstr(err, want1), "%s: stderr mentions '%s': %s", what, want1 ? want1 : "", err);
    test_check(!want2 || strstr(err, want2), "%s: stderr mentions '%s': %s", what, want2 ? want2 : "", err);
    free(err);
}

// hf_load_dir must fail with one line holding the fragments; the CLI too.
static void expect_load_fails(const char *what, const char *dir, const char *want1, const char *want2) {
    model_config_t cfg;
    param_table_t t;
    float *params = NULL;
    int rc = hf_load_dir(dir, &cfg, &t, &params);
    const char *msg = cispo_last_error();
    test_check(rc == -1 && params == NULL, "%s: hf_load_dir rejects", what);
    if (rc == 0) {
        free(params);
        param_table_free(&t);
        return;
    }
    test_check(one_line(msg), "%s: one line: %s", what, msg);
    test_check(!want1 || strstr(msg, want1), "%s: mentions '%s': %s", what, want1 ? want1 : "", msg);
    test_check(!want2 || strstr(msg, want2), "%s: mentions '%s': %s", what, want2 ? want2 : "", msg);
    char args[1024], label[256];
    snprintf(args, sizeof args, "convert '%s' '%s/out.h5'", dir, tmpdir);
    snprintf(label, sizeof label, "%s (cispo convert)", what);
    expect_cli_fails(label, args, want1, want2);
    snprintf(args, sizeof args, "score --model '%s' --tokens '%s/tokens.txt'", dir, tmpdir);
    snprintf(label, sizeof label, "%s (cispo score)", what);
    expect_cli_fails(label, args, want1, want2);
}

static void test_bad_dirs(void) {
    char dir[512], p[600];
    snprintf(dir, sizeof dir, "%s/model", tmpdir);
    model_config_t cfg;
    param_table_t t;
    float *params = NULL;
    if (!test_check(make_model_dir(dir, &cfg, &t, &params) == 0, "make model dir: %s", cispo_last_error())) return;
    snprintf(p, sizeof p, "%s/model.safetensors", dir);
    char tok[600];
    snprintf(tok, sizeof tok, "%s/tokens.txt", tmpdir);
    write_text(tok, "1 5 9 2\n");

    // Sanity: the untouched directory loads and matches bit for bit.
    model_config_t c2;
    param_table_t t2;
    float *p2;
    if (test_check(hf_load_dir(dir, &c2, &t2, &p2) == 0, "good dir loads: %s", cispo_last_error())) {
        test_check(t2.n_floats == t.n_floats && memcmp(p2, params, t.n_floats * 4) == 0, "good dir bit-identical");
        free(p2);
        param_table_free(&t2);
    }

    const char *victim = "model.layers.1.self_attn.k_proj.weight";
    write_variant(dir, &t, params, victim, NULL, NULL);
    expect_load_fails("missing tensor", dir, p, "'model.layers.1.self_attn.k_proj.weight': missing");

    write_variant(dir, &t, params, NULL, victim, NULL);
    expect_load_fails("mis-shaped tensor", dir, victim, "shape [1,128] but config.json needs [8,16]");

    write_variant(dir, &t, params, NULL, NULL, "model.layers.0.self_attn.bogus.weight");
    expect_load_fails("unknown extra tensor", dir, "'model.layers.0.self_attn.bogus.weight'", "not a parameter");

    write_variant(dir, &t, params, NULL, NULL, "model.layers.0.self_attn.slope_rate");
    model_config_t c3;
    param_table_t t3;
    float *p3;
    if (test_check(hf_load_dir(dir, &c3, &t3, &p3) == 0, "decay buffer ignored: %s", cispo_last_error())) {
        test_check(memcmp(p3, params, t.n_floats * 4) == 0, "weights intact beside an ignored buffer");
        free(p3);
        param_table_free(&t3);
    }

    // A tensor stored as I64 (hand-written: header + 8 bytes).
    write_raw(p, "{\"model.norm.weight\":{\"dtype\":\"I64\",\"shape\":[16],\"data_offsets\":[0,128]}}", 128);
    expect_load_fails("unsupported dtype", dir, "'model.norm.weight'", "unsupported dtype 'I64'");
    write_raw(p, "{\"model.norm.weight\":{\"dtype\":\"F8_E4M3\",\"shape\":[16],\"data_offsets\":[0,16]}}", 16);
    expect_load_fails("F8 dtype", dir, "'model.norm.weight'", "unsupported dtype 'F8_E4M3'");

    // A truncated safetensors file inside a model directory.
    write_variant(dir, &t, params, NULL, NULL, NULL);
    size_t len;
    char *whole = cispo_read_file(p, &len);
    write_bytes(p, whole, len - 100);
    free(whole);
    expect_load_fails("truncated model.safetensors", dir, p, "past the end of the data section");

    // config.json problems.
    write_variant(dir, &t, params, NULL, NULL, NULL);
    char cfgp[600];
    snprintf(cfgp, sizeof cfgp, "%s/config.json", dir);
    write_text(cfgp, "{\"model_type\": \"minimax\", \"vocab_size\": 37,,}");
    expect_load_fails("malformed config.json", dir, cfgp, NULL);
    write_text(cfgp, "{\"model_type\": \"llama\", \"vocab_size\": 37}");
    expect_load_fails("unknown model_type", dir, cfgp, "model_type");
    write_text(cfgp, "{\"model_type\": \"minimax\", \"vocab_size\": \"many\"}");
    expect_load_fails("wrong-typed key", dir, cfgp, "vocab_size");
    unlink(cfgp);
    expect_load_fails("missing config.json", dir, cfgp, NULL);

    // No weights at all.
    write_text(cfgp, small_config);
    unlink(p);
    expect_load_fails("no weights", dir, dir, "model.safetensors");

    // A bad sharded index.
    char idx[600];
    snprintf(idx, sizeof idx, "%s/model.safetensors.index.json", dir);
    write_text(idx, "{\"weight_map\": {\"model.norm.weight\": \"../../etc/passwd\"}}");
    expect_load_fails("index escaping the directory", dir, idx, "model.norm.weight");
    write_text(idx, "{\"metadata\": {}}");
    expect_load_fails("index without weight_map", dir, idx, "weight_map");

    free(params);
    param_table_free(&t);
}

int main(void) {
    snprintf(tmpdir, sizeof tmpdir, "/tmp/cispo_test_st_XXXXXX");
    CISPO_ASSERT(mkdtemp(tmpdir) != NULL);
    test_check(getenv("CISPO_BIN") != NULL, "CISPO_BIN is set (the CLI checks need it)");
    test_round_trip();
    test_conversions();
    test_bad_files();
    test_bad_dirs();
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    if (system(cmd) != 0) printf("note: could not remove %s\n", tmpdir);
    return test_finish("test_safetensors");
}
