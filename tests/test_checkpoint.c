// tests/test_checkpoint.c — HDF5 checkpoints: save/load round trip bit-identical (parameters, AdamW
// moments, step, RNG state, extra JSON, every config field including original-flavour ones), atomic
// writing (no .tmp left, an existing checkpoint replaced whole), and clear errors for truncated,
// foreign, incomplete or mis-shaped files. Sharded: an index and 3 shards of arbitrary runs read back whole
// and as each EP rank's part (ep 2, 3), linked and removed with its shards; a gap, an overlap, a run past
// the model, a shard without moments and a missing shard are named.
//   ctest -R test_checkpoint
#include <hdf5.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "base/common.h"
#include "model/config.h"
#include "model/params.h"
#include "trainer/checkpoint.h"
#include "testutil.h"

static char tmpdir[256];

// Original flavour on purpose: rotary_dim != head_dim, postnorm, M1-style residual factors, an eos
// list: config.json (HF flavour) could not carry all of this, the checkpoint must.
static const char *orig_config =
    "{\"model_type\":\"minimax_m1\",\"vocab_size\":41,\"hidden_size\":16,\"num_hidden_layers\":3,"
    "\"num_attention_heads\":2,\"head_dim\":8,\"num_key_value_heads\":2,\"intermediate_size\":10,"
    "\"num_local_experts\":3,\"num_experts_per_tok\":2,\"block_size\":4,\"rotary_dim\":4,\"rope_theta\":10000000,"
    "\"attn_type_list\":[0,1,0],\"postnorm\":true,\"rms_norm_eps\":1e-5,"
    "\"layernorm_full_attention_alpha\":2.449489742783178,\"layernorm_full_attention_beta\":1.0,"
    "\"layernorm_linear_attention_alpha\":2.449489742783178,\"layernorm_linear_attention_beta\":0.7,"
    "\"layernorm_mlp_alpha\":1.3333333333333333,\"layernorm_mlp_beta\":1.0,\"eos_token_id\":[2,7],"
    "\"bos_token_id\":1,\"tie_word_embeddings\":false}";

static void check_cfg_equal(const model_config_t *a, const model_config_t *b) {
#define SAME(f) test_check(a->f == b->f, "config field " #f " survives (%g vs %g)", (double)a->f, (double)b->f)
    SAME(flavour); SAME(vocab_size); SAME(hidden_size); SAME(n_layers); SAME(n_heads); SAME(head_dim);
    SAME(n_kv_heads); SAME(intermediate_size); SAME(n_experts); SAME(n_experts_per_tok); SAME(block_size);
    SAME(rotary_dim); SAME(rope_theta); SAME(rms_norm_eps); SAME(router_aux_loss_coef); SAME(tie_word_embeddings);
    SAME(max_position_embeddings); SAME(linear_alpha); SAME(linear_beta); SAME(full_alpha); SAME(full_beta);
    SAME(mlp_alpha); SAME(mlp_beta); SAME(bos_token_id); SAME(eos_token_id); SAME(postnorm); SAME(n_eos);
    SAME(initializer_range);
#undef SAME
    for (int l = 0; l < a->n_layers && l < b->n_layers; l++) test_check(a->layer_kind[l] == b->layer_kind[l], "layer_kind[%d]", l);
    for (int i = 0; i < a->n_eos && i < b->n_eos; i++) test_check(a->eos_token_ids[i] == b->eos_token_ids[i], "eos id %d", i);
}

static int file_exists(const char *p) { return access(p, F_OK) == 0; }

// Expects checkpoint_load(path) to fail with one line naming the file and the fragment.
// Loading path fails with one line naming the file `named` (path itself, or one of its shards).
static void expect_load_fails_in(const char *what, const char *path, const char *named, const char *want) {
    checkpoint_t ck;
    int rc = checkpoint_load(path, &ck);
    const char *msg = cispo_last_error();
    test_check(rc == -1, "%s: rejected", what);
    if (rc == 0) {
        checkpoint_free(&ck);
        return;
    }
    test_check(ck.params == NULL && ck.table.entries == NULL, "%s: nothing left allocated", what);
    test_check(msg[0] && !strchr(msg, '\n'), "%s: one line: %s", what, msg);
    test_check(strstr(msg, named) != NULL, "%s: names the file: %s", what, msg);
    test_check(!want || strstr(msg, want), "%s: mentions '%s': %s", what, want ? want : "", msg);
    // The CLI: exit status 1 (no crash) and the same line on stderr.
    const char *bin = getenv("CISPO_BIN");
    if (!bin) return;
    char cmd[2048], errp[512];
    snprintf(errp, sizeof errp, "%s/stderr.txt", tmpdir);
    snprintf(cmd, sizeof cmd, "'%s' convert '%s' '%s/out_dir' >/dev/null 2>'%s'", bin, path, tmpdir, errp);
    int st = system(cmd);
    test_check(WIFEXITED(st) && WEXITSTATUS(st) == 1, "%s: cispo convert exits 1 (status %d)", what, st);
    char *err = cispo_read_file(errp, NULL);
    test_check(err && strstr(err, msg) && strchr(err, '\n') == err + strlen(err) - 1, "%s: cispo convert prints it: %s",
               what, err ? err : "");
    free(err);
}

static void expect_load_fails(const char *what, const char *path, const char *want) {
    expect_load_fails_in(what, path, path, want);
}

int main(void) {
    snprintf(tmpdir, sizeof tmpdir, "/tmp/cispo_test_ckpt_XXXXXX");
    CISPO_ASSERT(mkdtemp(tmpdir) != NULL);
    test_check(getenv("CISPO_BIN") != NULL, "CISPO_BIN is set (the CLI checks need it)");
    model_config_t cfg;
    if (model_config_from_json_text(&cfg, orig_config, "orig_config")) {
        printf("config: %s\n", cispo_last_error());
        return 1;
    }
    param_table_t t;
    param_table_build(&t, &cfg);
    size_t n = t.n_floats;
    float *params = cispo_malloc(n * 4), *m = cispo_malloc(n * 4), *v = cispo_malloc(n * 4);
    uint64_t s = 7;
    test_fill(params, n, &s, -1, 1);
    test_fill(m, n, &s, -1e-3, 1e-3);
    test_fill(v, n, &s, 0, 1e-6);
    params[3] = -0.0f;
    v[5] = 1e-45f;  // a subnormal must survive too
    uint64_t rng[5] = {0x0123456789abcdefull, 0xffffffffffffffffull, 0, 42, 0x8000000000000000ull};
    const char *extra = "{\"epoch\": 3, \"data_cursor\": 1234567, \"note\": \"r\\u00e9sum\\u00e9\"}";

    char path[512], tmp[600];
    snprintf(path, sizeof path, "%s/ckpt.h5", tmpdir);
    snprintf(tmp, sizeof tmp, "%s.tmp", path);

    // ---- full round trip ----
    test_check(checkpoint_save(path, &cfg, &t, params, m, v, 123456789012345ll, rng, 5, extra) == 0, "save: %s",
               cispo_last_error());
    test_check(file_exists(path) && !file_exists(tmp), "checkpoint written, no .tmp left behind");
    checkpoint_t ck;
    if (test_check(checkpoint_load(path, &ck) == 0, "load: %s", cispo_last_error())) {
        check_cfg_equal(&cfg, &ck.cfg);
        test_check(ck.table.n_floats == n && ck.table.n_entries == t.n_entries, "same table (%zu floats)", ck.table.n_floats);
        test_check(memcmp(ck.params, params, n * 4) == 0, "params bit-identical");
        test_check(ck.m && memcmp(ck.m, m, n * 4) == 0, "first moment bit-identical");
        test_check(ck.v && memcmp(ck.v, v, n * 4) == 0, "second moment bit-identical");
        test_check(ck.step == 123456789012345ll, "step %lld", (long long)ck.step);
        test_check(ck.n_rng == 5 && memcmp(ck.rng, rng, sizeof rng) == 0, "RNG state bit-identical");
        test_check(ck.extra_json && !strcmp(ck.extra_json, extra), "extra JSON identical: %s", ck.extra_json);
        for (int k = 0; k < t.n_entries; k++)
            if (strcmp(ck.table.entries[k].name, t.entries[k].name) || ck.table.entries[k].offset != t.entries[k].offset) {
                test_check(0, "entry %d (%s) same name and offset", k, t.entries[k].name);
                break;
            }
        checkpoint_free(&ck);
    }

    // ---- overwrite an existing checkpoint, no moments, no rng, no extra ----
    params[0] = 12.5f;
    test_check(checkpoint_save(path, &cfg, &t, params, NULL, NULL, 7, NULL, 0, NULL) == 0, "re-save: %s",
               cispo_last_error());
    test_check(!file_exists(tmp), "no .tmp left after replacing");
    if (test_check(checkpoint_load(path, &ck) == 0, "reload: %s", cispo_last_error())) {
        test_check(ck.params[0] == 12.5f && memcmp(ck.params, params, n * 4) == 0, "new params replaced the old file");
        test_check(ck.m == NULL && ck.v == NULL, "no moments when saved without");
        test_check(ck.n_rng == 0 && ck.rng == NULL && ck.extra_json == NULL && ck.step == 7, "empty rng, no extra, step 7");
        checkpoint_free(&ck);
    }

    // ---- a failed save leaves nothing behind ----
    char nodir[600];
    snprintf(nodir, sizeof nodir, "%s/no/such/dir/ckpt.h5", tmpdir);
    int rc = checkpoint_save(nodir, &cfg, &t, params, NULL, NULL, 0, NULL, 0, NULL);
    test_check(rc == -1 && strstr(cispo_last_error(), "no/such/dir"), "save into a missing directory fails: %s",
               cispo_last_error());

    // ---- damaged files ----
    test_check(checkpoint_save(path, &cfg, &t, params, m, v, 1, rng, 5, extra) == 0, "save again");
    size_t len;
    char *whole = cispo_read_file(path, &len);
    CISPO_ASSERT(whole);
    char bad[600];
    snprintf(bad, sizeof bad, "%s/truncated.h5", tmpdir);
    FILE *f = fopen(bad, "wb");
    fwrite(whole, 1, len / 2, f);
    fclose(f);
    expect_load_fails("truncated .h5 (half)", bad, "truncated");
    f = fopen(bad, "wb");
    fwrite(whole, 1, 100, f);
    fclose(f);
    expect_load_fails("truncated .h5 (100 bytes)", bad, NULL);
    f = fopen(bad, "wb");
    fwrite(whole, 1, len - 1, f);
    fclose(f);
    expect_load_fails("truncated .h5 (one byte short)", bad, NULL);
    free(whole);

    snprintf(bad, sizeof bad, "%s/text.h5", tmpdir);
    f = fopen(bad, "w");
    fputs("this is not HDF5\n", f);
    fclose(f);
    expect_load_fails("not HDF5", bad, "not an HDF5 file");

    snprintf(bad, sizeof bad, "%s/absent.h5", tmpdir);
    expect_load_fails("missing file", bad, "No such file");

    // HDF5 but not ours.
    snprintf(bad, sizeof bad, "%s/foreign.h5", tmpdir);
    hid_t h = H5Fcreate(bad, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    H5Fclose(h);
    expect_load_fails("foreign HDF5", bad, "not a cispo checkpoint");

    // A parameter dataset deleted, then one replaced by a mis-shaped one, then an unknown one added.
    const char *victim = "model.layers.1.self_attn.q_proj.weight";
    char dsname[256];
    snprintf(dsname, sizeof dsname, "/params/%s", victim);
    test_check(checkpoint_save(path, &cfg, &t, params, m, v, 1, rng, 5, extra) == 0, "save for surgery");
    h = H5Fopen(path, H5F_ACC_RDWR, H5P_DEFAULT);
    H5Ldelete(h, dsname, H5P_DEFAULT);
    H5Fclose(h);
    expect_load_fails("missing dataset", path, victim);

    h = H5Fopen(path, H5F_ACC_RDWR, H5P_DEFAULT);
    hsize_t dims[2] = {3, 5};
    hid_t sp = H5Screate_simple(2, dims, NULL);
    hid_t ds = H5Dcreate2(h, dsname, H5T_IEEE_F32LE, sp, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    H5Dclose(ds);
    H5Sclose(sp);
    H5Fclose(h);
    expect_load_fails("mis-shaped dataset", path, "has shape [3,5] but the stored config needs [16,16]");

    test_check(checkpoint_save(path, &cfg, &t, params, m, v, 1, rng, 5, extra) == 0, "save for surgery 2");
    h = H5Fopen(path, H5F_ACC_RDWR, H5P_DEFAULT);
    sp = H5Screate_simple(1, dims, NULL);
    ds = H5Dcreate2(h, "/optim/v/model.layers.9.extra.weight", H5T_IEEE_F32LE, sp, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    H5Dclose(ds);
    H5Sclose(sp);
    H5Fclose(h);
    expect_load_fails("unknown dataset", path, "/optim/v/model.layers.9.extra.weight");

    test_check(checkpoint_save(path, &cfg, &t, params, m, v, 1, rng, 5, extra) == 0, "save for surgery 3");
    h = H5Fopen(path, H5F_ACC_RDWR, H5P_DEFAULT);
    H5Ldelete(h, "/optim/m", H5P_DEFAULT);
    H5Fclose(h);
    expect_load_fails("moments half missing", path, "/optim/m");

    // ---- sharded: an index and 3 shards, each holding runs of the whole layout (cut anywhere) ----
    test_check(checkpoint_save(path, &cfg, &t, params, m, v, 1, rng, 5, extra) == 0, "one file before the index");
    const size_t cut[4] = {0, n / 3 + 7, 2 * n / 3 + 1, n};
    for (int k = 0; k < 3; k++) {  // shard k: its piece as two runs (a gap-free split at the middle)
        const size_t a = cut[k], mid = (cut[k] + cut[k + 1]) / 2, b = cut[k + 1];
        int64_t runs[4] = {(int64_t)a, (int64_t)(mid - a), (int64_t)mid, (int64_t)(b - mid)};
        test_check(checkpoint_save_shard(path, k, 3, 9, runs, 2, params + a, m + a, v + a) == 0, "shard %d: %s", k,
                   cispo_last_error());
    }
    test_check(checkpoint_save_index(path, 3, 1, &cfg, 9, rng, 5, extra) == 0, "index: %s", cispo_last_error());
    char shard1[700];
    checkpoint_shard_path(shard1, sizeof shard1, path, 1, 3);
    test_check(strstr(shard1, "ckpt.shard-00001-of-00003.h5") && file_exists(shard1), "shard file %s", shard1);
    if (test_check(checkpoint_load(path, &ck) == 0, "sharded load: %s", cispo_last_error())) {
        test_check(ck.n_shards == 3 && ck.step == 9 && ck.table.n_floats == n && !memcmp(ck.params, params, n * 4) &&
                       ck.m && !memcmp(ck.m, m, n * 4) && !memcmp(ck.v, v, n * 4) && ck.n_rng == 5 &&
                       !strcmp(ck.extra_json, extra),
                   "the shards read back whole: parameters, moments, step, RNG, run state bit-identical");
        checkpoint_free(&ck);
    }
    // one EP rank's part: the dense tensors and experts [lo, hi) only, each the whole model's
    for (int ep = 2; ep <= 3; ep++)
        for (int r = 0; r < ep; r++) {
            if (!test_check(checkpoint_load_ep(path, ep, r, &ck) == 0, "load for EP rank %d of %d: %s", r, ep,
                            cispo_last_error()))
                continue;
            param_span_t *spn;
            int nsp = param_table_spans(&ck.table, &ck.cfg, &spn), ok = ck.table.n_floats < n;
            for (int i = 0; i < nsp; i++)
                ok &= !memcmp(ck.params + spn[i].off, params + spn[i].full, spn[i].len * 4) &&
                      !memcmp(ck.v + spn[i].off, v + spn[i].full, spn[i].len * 4);
            test_check(ok, "EP rank %d of %d: experts [%d, %d), %zu of %zu floats, the whole model's values", r, ep,
                       ck.table.e_lo, ck.table.e_hi, ck.table.n_floats, n);
            free(spn);
            checkpoint_free(&ck);
        }
    // linked (as ckpt-best.h5 is) and removed
    char best[600], best1[700];
    snprintf(best, sizeof best, "%s/best.h5", tmpdir);
    checkpoint_shard_path(best1, sizeof best1, best, 1, 3);
    test_check(checkpoint_link(path, best) == 0 && file_exists(best1), "linked with its shards: %s", cispo_last_error());
    test_check(checkpoint_load(best, &ck) == 0 && !memcmp(ck.params, params, n * 4), "the link loads: %s",
               cispo_last_error());
    checkpoint_free(&ck);
    test_check(checkpoint_remove(best) == 0 && !file_exists(best) && !file_exists(best1), "removed with its shards");
    // a gap (an element no shard holds) and an overlap (one two hold), each named
    int64_t short_run[2] = {(int64_t)cut[1], (int64_t)(cut[2] - cut[1] - 5)};
    checkpoint_save_shard(path, 1, 3, 9, short_run, 1, params + cut[1], m + cut[1], v + cut[1]);
    expect_load_fails("a shard short of its piece", path, "no shard holds");
    int64_t long_run[2] = {(int64_t)cut[1] - 3, (int64_t)(cut[2] - cut[1] + 3)};
    checkpoint_save_shard(path, 1, 3, 9, long_run, 1, params + cut[1] - 3, m + cut[1] - 3, v + cut[1] - 3);
    expect_load_fails("two shards holding the same elements", path, "is in two shards");
    int64_t bad_run[2] = {(int64_t)n - 2, 5};
    checkpoint_save_shard(path, 1, 3, 9, bad_run, 1, params, m, v);
    expect_load_fails_in("a run past the model", path, shard1, "ascending run inside");
    int64_t runs1[2] = {(int64_t)cut[1], (int64_t)(cut[2] - cut[1])};
    checkpoint_save_shard(path, 1, 3, 9, runs1, 1, params + cut[1], NULL, NULL);  // no moments, the index wants them
    expect_load_fails_in("a shard without the moments", path, shard1, "optim/m");
    unlink(shard1);
    expect_load_fails("a missing shard", path, "shard-00001-of-00003.h5");
    // a single file saved over the index takes its shards away
    test_check(checkpoint_save(path, &cfg, &t, params, m, v, 1, rng, 5, extra) == 0, "one file again");
    checkpoint_shard_path(shard1, sizeof shard1, path, 0, 3);
    test_check(!file_exists(shard1), "the former shards are gone with the index");

    free(params);
    free(m);
    free(v);
    param_table_free(&t);
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    if (system(cmd) != 0) printf("note: could not remove %s\n", tmpdir);
    return test_finish("test_checkpoint");
}
