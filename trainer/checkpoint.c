// trainer/checkpoint.c — HDF5 checkpoints (layout in checkpoint.h): atomic save, validated load, of one
// file or of an index and its shards (expert parallelism), resharded on load.
// defines: checkpoint_save, checkpoint_load, checkpoint_load_ep, checkpoint_read_config, checkpoint_free,
//          checkpoint_shard_path, checkpoint_save_shard, checkpoint_save_index, checkpoint_remove, checkpoint_link
#include "trainer/checkpoint.h"

#include <cjson/cJSON.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <hdf5.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/common.h"
#include "model/moe_ep.h"

#define CHECKPOINT_FORMAT "cispo-checkpoint"
#define CHECKPOINT_VERSION 1        // one file holding everything
#define CHECKPOINT_INDEX_VERSION 2  // an index: the state without the tensors, which its shards hold
#define SHARD_FORMAT "cispo-checkpoint-shard"
#define SHARD_VERSION 1

// ---- the config, exactly ----
// config.json (model_config_to_json) speaks only the HF flavour and drops rotary_dim and postnorm, so
// the checkpoint keeps every field of model_config_t under its own name. A field added to
// model_config_t must be added here too (loading then requires it: older checkpoints say so).

typedef struct {
    const char *key;
    size_t off;
    int is_double;
} cfg_field_t;

#define I(f) {#f, offsetof(model_config_t, f), 0}
#define D(f) {#f, offsetof(model_config_t, f), 1}
static const cfg_field_t cfg_fields[] = {
    I(flavour), I(vocab_size), I(hidden_size), I(n_layers), I(n_heads), I(head_dim), I(n_kv_heads),
    I(intermediate_size), I(n_experts), I(n_experts_per_tok), I(block_size), I(rotary_dim), D(rope_theta),
    D(rms_norm_eps), D(router_aux_loss_coef), I(tie_word_embeddings), I(max_position_embeddings),
    D(linear_alpha), D(linear_beta), D(full_alpha), D(full_beta), D(mlp_alpha), D(mlp_beta), I(bos_token_id),
    I(eos_token_id), I(postnorm), I(n_eos), D(initializer_range),
};
#undef I
#undef D

static char *config_to_exact_json(const model_config_t *c) {
    cJSON *o = cJSON_CreateObject();
    for (size_t i = 0; i < sizeof cfg_fields / sizeof *cfg_fields; i++) {
        const char *p = (const char *)c + cfg_fields[i].off;
        double v = cfg_fields[i].is_double ? *(const double *)p : (double)*(const int *)p;
        cJSON_AddNumberToObject(o, cfg_fields[i].key, v);  // cJSON prints doubles with 17 digits when needed
    }
    cJSON_AddItemToObject(o, "layer_kind", cJSON_CreateIntArray(c->layer_kind, c->n_layers));
    cJSON_AddItemToObject(o, "eos_token_ids", cJSON_CreateIntArray(c->eos_token_ids, c->n_eos));
    char *s = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    CHECK_ALLOC(s);
    char *out = cispo_strdup(s);
    cJSON_free(s);
    return out;
}

static int int_array(const cJSON *a, int *dst, int n, int cap, const char *origin, const char *key) {
    if (!cJSON_IsArray(a) || cJSON_GetArraySize(a) != n || n > cap)
        return cispo_fail("%s: /config key '%s': expected an array of %d integers", origin, key, n);
    int i = 0;
    for (const cJSON *x = a->child; x; x = x->next, i++) {
        if (!cJSON_IsNumber(x) || x->valuedouble != (double)(int)x->valuedouble)
            return cispo_fail("%s: /config key '%s': entry %d is not an integer", origin, key, i);
        dst[i] = (int)x->valuedouble;
    }
    return 0;
}

static int config_from_exact_json(model_config_t *c, const char *text, const char *origin) {
    memset(c, 0, sizeof *c);
    cJSON *o = cJSON_Parse(text);
    if (!cJSON_IsObject(o)) {
        cJSON_Delete(o);
        return cispo_fail("%s: /config is not a JSON object", origin);
    }
    int rc = 0;
    for (size_t i = 0; i < sizeof cfg_fields / sizeof *cfg_fields && !rc; i++) {
        const cJSON *x = cJSON_GetObjectItemCaseSensitive(o, cfg_fields[i].key);
        char *p = (char *)c + cfg_fields[i].off;
        if (!cJSON_IsNumber(x))
            rc = cispo_fail("%s: /config key '%s': missing or not a number (checkpoint from another cispo version?)",
                            origin, cfg_fields[i].key);
        else if (cfg_fields[i].is_double) *(double *)p = x->valuedouble;
        else if (x->valuedouble != (double)(int)x->valuedouble)
            rc = cispo_fail("%s: /config key '%s': %.17g is not an integer", origin, cfg_fields[i].key, x->valuedouble);
        else *(int *)p = (int)x->valuedouble;
    }
    if (!rc && (c->n_layers < 1 || c->n_layers > MODEL_MAX_LAYERS))
        rc = cispo_fail("%s: /config key 'n_layers': %d out of range (1..%d)", origin, c->n_layers, MODEL_MAX_LAYERS);
    if (!rc)
        rc = int_array(cJSON_GetObjectItemCaseSensitive(o, "layer_kind"), c->layer_kind, c->n_layers, MODEL_MAX_LAYERS,
                       origin, "layer_kind");
    if (!rc && (c->n_eos < 0 || c->n_eos > (int)(sizeof c->eos_token_ids / sizeof *c->eos_token_ids)))
        rc = cispo_fail("%s: /config key 'n_eos': %d out of range", origin, c->n_eos);
    if (!rc)
        rc = int_array(cJSON_GetObjectItemCaseSensitive(o, "eos_token_ids"), c->eos_token_ids, c->n_eos,
                       (int)(sizeof c->eos_token_ids / sizeof *c->eos_token_ids), origin, "eos_token_ids");
    cJSON_Delete(o);
    if (!rc) rc = model_config_validate(c, origin);
    return rc;
}

// ---- HDF5 helpers ----
// HDF5 prints its own error stack to stderr by default; we report one line instead, so the
// automatic printing is switched off for the duration of each public call.

typedef struct {
    H5E_auto2_t func;
    void *data;
} h5_quiet_t;

static h5_quiet_t h5_quiet_begin(void) {
    h5_quiet_t q;
    H5Eget_auto2(H5E_DEFAULT, &q.func, &q.data);
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
    return q;
}
static void h5_quiet_end(h5_quiet_t q) { H5Eset_auto2(H5E_DEFAULT, q.func, q.data); }

static int write_string(hid_t loc, const char *name, const char *s) {
    hid_t type = H5Tcopy(H5T_C_S1);
    H5Tset_size(type, strlen(s) + 1);
    H5Tset_strpad(type, H5T_STR_NULLTERM);
    hid_t space = H5Screate(H5S_SCALAR);
    hid_t ds = H5Dcreate2(loc, name, type, space, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    herr_t st = ds < 0 ? -1 : H5Dwrite(ds, type, H5S_ALL, H5S_ALL, H5P_DEFAULT, s);
    if (ds >= 0) H5Dclose(ds);
    H5Sclose(space);
    H5Tclose(type);
    return st < 0 ? -1 : 0;
}

static int write_array(hid_t loc, const char *name, hid_t file_type, hid_t mem_type, int ndim, const hsize_t *dims,
                       const void *data) {
    hid_t space = ndim ? H5Screate_simple(ndim, dims, NULL) : H5Screate(H5S_SCALAR);
    hid_t ds = H5Dcreate2(loc, name, file_type, space, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    hsize_t n = 1;
    for (int d = 0; d < ndim; d++) n *= dims[d];
    herr_t st = ds < 0 ? -1 : (n ? H5Dwrite(ds, mem_type, H5S_ALL, H5S_ALL, H5P_DEFAULT, data) : 0);
    if (ds >= 0) H5Dclose(ds);
    H5Sclose(space);
    return st < 0 ? -1 : 0;
}

static int write_attr_string(hid_t loc, const char *name, const char *s) {
    hid_t type = H5Tcopy(H5T_C_S1);
    H5Tset_size(type, strlen(s) + 1);
    hid_t space = H5Screate(H5S_SCALAR);
    hid_t a = H5Acreate2(loc, name, type, space, H5P_DEFAULT, H5P_DEFAULT);
    herr_t st = a < 0 ? -1 : H5Awrite(a, type, s);
    if (a >= 0) H5Aclose(a);
    H5Sclose(space);
    H5Tclose(type);
    return st < 0 ? -1 : 0;
}

static int write_attr_int(hid_t loc, const char *name, int v) {
    hid_t space = H5Screate(H5S_SCALAR);
    hid_t a = H5Acreate2(loc, name, H5T_STD_I32LE, space, H5P_DEFAULT, H5P_DEFAULT);
    herr_t st = a < 0 ? -1 : H5Awrite(a, H5T_NATIVE_INT, &v);
    if (a >= 0) H5Aclose(a);
    H5Sclose(space);
    return st < 0 ? -1 : 0;
}

// One float32 dataset per parameter under group `group` ("/params", "/optim/m", ...).
static int write_tensors(hid_t file, const char *group, const param_table_t *t, const float *buf, const char *path) {
    hid_t lcpl = H5Pcreate(H5P_LINK_CREATE);
    H5Pset_create_intermediate_group(lcpl, 1);
    hid_t g = H5Gcreate2(file, group, lcpl, H5P_DEFAULT, H5P_DEFAULT);
    H5Pclose(lcpl);
    if (g < 0) return cispo_fail("%s: cannot create group '%s'", path, group);
    int rc = 0;
    for (int k = 0; k < t->n_entries && !rc; k++) {
        const param_entry_t *e = &t->entries[k];
        hsize_t dims[2] = {(hsize_t)e->shape[0], (hsize_t)e->shape[1]};
        if (write_array(g, e->name, H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, e->ndim, dims, buf + e->offset))
            rc = cispo_fail("%s: cannot write dataset '%s/%s' (disk full?)", path, group, e->name);
    }
    H5Gclose(g);
    return rc;
}

static int fsync_path(const char *path) {
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return -1;
    int rc = fsync(fd);
    close(fd);
    return rc;
}

static char *tmp_of(const char *path) {
    size_t plen = strlen(path);
    char *tmp = cispo_malloc(plen + 5);
    memcpy(tmp, path, plen);
    memcpy(tmp + plen, ".tmp", 5);
    return tmp;
}

// Closes f (written as tmp), syncs it and renames it over path; on any failure (rc set before, or here)
// the temporary file goes. Returns rc.
static int commit_file(hid_t f, const char *tmp, const char *path, int rc) {
    if (H5Fclose(f) < 0 && !rc) rc = cispo_fail("%s: cannot close (disk full?)", tmp);
    if (!rc && fsync_path(tmp)) rc = cispo_fail("%s: fsync failed: %s", tmp, strerror(errno));
    if (!rc && rename(tmp, path)) rc = cispo_fail("%s: cannot rename %s over it: %s", path, tmp, strerror(errno));
    if (rc) unlink(tmp);
    return rc;
}

// format/version attributes, config, step, RNG state and run state: what a single file and an index share.
static int write_state(hid_t f, const char *tmp, int version, const model_config_t *cfg, int64_t step,
                       const uint64_t *rng, int n_rng, const char *extra_json) {
    char *exact = config_to_exact_json(cfg), *hf = model_config_to_json(cfg);
    int rc = 0;
    if (write_attr_string(f, "format", CHECKPOINT_FORMAT) || write_attr_int(f, "version", version) ||
        write_string(f, "config", exact) || write_string(f, "config_hf", hf))
        rc = cispo_fail("%s: cannot write the config (disk full?)", tmp);
    free(exact);
    free(hf);
    hsize_t nr = (hsize_t)n_rng;
    if (!rc && (write_array(f, "step", H5T_STD_I64LE, H5T_NATIVE_INT64, 0, NULL, &step) ||
                write_array(f, "rng", H5T_STD_U64LE, H5T_NATIVE_UINT64, 1, &nr, rng)))
        rc = cispo_fail("%s: cannot write step/rng (disk full?)", tmp);
    if (!rc && extra_json && write_string(f, "extra", extra_json))
        rc = cispo_fail("%s: cannot write /extra (disk full?)", tmp);
    return rc;
}

// Removes the shard files of the checkpoint at path (checkpoint_shard_path's names, and their temporary
// files) except those of a checkpoint of keep shards (keep < 1: every one).
static void remove_shards(const char *path, int keep) {
    char dir[1100], stem[600];
    const char *slash = strrchr(path, '/');
    if (slash) snprintf(dir, sizeof dir, "%.*s", (int)(slash - path), path), snprintf(stem, sizeof stem, "%s", slash + 1);
    else snprintf(dir, sizeof dir, "."), snprintf(stem, sizeof stem, "%s", path);
    size_t sl = strlen(stem);
    if (sl > 3 && !strcmp(stem + sl - 3, ".h5")) stem[sl -= 3] = 0;
    DIR *d = opendir(dir[0] ? dir : "/");
    struct dirent *e;
    while (d && (e = readdir(d))) {
        int k, n, used = 0;
        if (strncmp(e->d_name, stem, sl) || sscanf(e->d_name + sl, ".shard-%d-of-%d.h5%n", &k, &n, &used) != 2 || !used)
            continue;
        const char *rest = e->d_name + sl + used;
        if ((rest[0] && strcmp(rest, ".tmp")) || (keep > 0 && n == keep && !rest[0])) continue;
        char p[2200];
        snprintf(p, sizeof p, "%s/%s", dir[0] ? dir : "", e->d_name);
        unlink(p);
    }
    if (d) closedir(d);
}

int checkpoint_save(const char *path, const model_config_t *cfg, const param_table_t *table, const float *params,
                    const float *m, const float *v, int64_t step, const uint64_t *rng, int n_rng,
                    const char *extra_json) {
    CISPO_ASSERT((m == NULL) == (v == NULL));
    CISPO_ASSERT(n_rng >= 0 && (rng || n_rng == 0));
    CISPO_ASSERT(table->n_floats == table->n_full);  // one file holds the whole model
    char *tmp = tmp_of(path);
    h5_quiet_t q = h5_quiet_begin();
    int rc = 0;
    hid_t f = H5Fcreate(tmp, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    if (f < 0) {
        rc = cispo_fail("%s: cannot create (directory missing or not writable?)", tmp);
        goto out;
    }
    rc = write_state(f, tmp, CHECKPOINT_VERSION, cfg, step, rng, n_rng, extra_json);
    if (!rc) rc = write_tensors(f, "/params", table, params, tmp);
    if (!rc && m) rc = write_tensors(f, "/optim/m", table, m, tmp);
    if (!rc && v) rc = write_tensors(f, "/optim/v", table, v, tmp);
    rc = commit_file(f, tmp, path, rc);
    if (!rc) remove_shards(path, 0);  // a sharded checkpoint this file replaced
out:
    h5_quiet_end(q);
    free(tmp);
    return rc;
}

void checkpoint_shard_path(char *buf, size_t cap, const char *index_path, int shard, int n_shards) {
    size_t n = strlen(index_path);
    if (n > 3 && !strcmp(index_path + n - 3, ".h5")) n -= 3;
    snprintf(buf, cap, "%.*s.shard-%05d-of-%05d.h5", (int)n, index_path, shard, n_shards);
}

int checkpoint_save_shard(const char *index_path, int shard, int n_shards, int64_t step, const int64_t *runs,
                          int n_runs, const float *params, const float *m, const float *v) {
    CISPO_ASSERT((m == NULL) == (v == NULL) && n_runs >= 0 && shard >= 0 && shard < n_shards);
    char path[1200];
    checkpoint_shard_path(path, sizeof path, index_path, shard, n_shards);
    char *tmp = tmp_of(path);
    h5_quiet_t q = h5_quiet_begin();
    int rc = 0;
    hsize_t total = 0;
    for (int i = 0; i < n_runs; i++) total += (hsize_t)runs[2 * i + 1];
    hid_t f = H5Fcreate(tmp, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    if (f < 0) {
        rc = cispo_fail("%s: cannot create (directory missing or not writable?)", tmp);
        goto out;
    }
    hsize_t rd[2] = {(hsize_t)n_runs, 2};
    if (write_attr_string(f, "format", SHARD_FORMAT) || write_attr_int(f, "version", SHARD_VERSION) ||
        write_attr_int(f, "shard", shard) || write_attr_int(f, "shards", n_shards) ||
        write_array(f, "step", H5T_STD_I64LE, H5T_NATIVE_INT64, 0, NULL, &step) ||
        write_array(f, "runs", H5T_STD_I64LE, H5T_NATIVE_INT64, 2, rd, runs) ||
        write_array(f, "params", H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, 1, &total, params))
        rc = cispo_fail("%s: cannot write the shard (disk full?)", tmp);
    if (!rc && m) {
        hid_t lcpl = H5Pcreate(H5P_LINK_CREATE);
        H5Pset_create_intermediate_group(lcpl, 1);
        hid_t g = H5Gcreate2(f, "/optim", lcpl, H5P_DEFAULT, H5P_DEFAULT);
        H5Pclose(lcpl);
        if (g < 0 || write_array(g, "m", H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, 1, &total, m) ||
            write_array(g, "v", H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, 1, &total, v))
            rc = cispo_fail("%s: cannot write the moments (disk full?)", tmp);
        if (g >= 0) H5Gclose(g);
    }
    rc = commit_file(f, tmp, path, rc);
out:
    h5_quiet_end(q);
    free(tmp);
    return rc;
}

int checkpoint_save_index(const char *path, int n_shards, int moments, const model_config_t *cfg, int64_t step,
                          const uint64_t *rng, int n_rng, const char *extra_json) {
    CISPO_ASSERT(n_shards >= 1 && n_rng >= 0 && (rng || n_rng == 0));
    char *tmp = tmp_of(path);
    h5_quiet_t q = h5_quiet_begin();
    int rc = 0;
    hid_t f = H5Fcreate(tmp, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    if (f < 0) {
        rc = cispo_fail("%s: cannot create (directory missing or not writable?)", tmp);
        goto out;
    }
    rc = write_state(f, tmp, CHECKPOINT_INDEX_VERSION, cfg, step, rng, n_rng, extra_json);
    if (!rc && (write_attr_int(f, "shards", n_shards) || write_attr_int(f, "moments", moments != 0)))
        rc = cispo_fail("%s: cannot write the index (disk full?)", tmp);
    rc = commit_file(f, tmp, path, rc);
    if (!rc) remove_shards(path, n_shards);  // those of an earlier save of this step on another number of ranks
out:
    h5_quiet_end(q);
    free(tmp);
    return rc;
}

int checkpoint_remove(const char *path) {
    int rc = unlink(path) && errno != ENOENT ? cispo_fail("%s: cannot remove: %s", path, strerror(errno)) : 0;
    remove_shards(path, 0);
    return rc;
}

// Hard link src as dst through dst.tmp (an existing dst is replaced in one rename).
static int link_over(const char *src, const char *dst) {
    char *tmp = tmp_of(dst);
    unlink(tmp);
    int rc = link(src, tmp) || rename(tmp, dst) ? cispo_fail("cannot link %s as %s: %s", src, dst, strerror(errno)) : 0;
    if (rc) unlink(tmp);
    free(tmp);
    return rc;
}

static int read_int_attr(hid_t f, const char *name, int *out);

int checkpoint_link(const char *src, const char *dst) {
    int shards = 0;
    h5_quiet_t q = h5_quiet_begin();
    hid_t f = H5Fis_hdf5(src) > 0 ? H5Fopen(src, H5F_ACC_RDONLY, H5P_DEFAULT) : -1;
    if (f >= 0) {
        if (read_int_attr(f, "shards", &shards)) shards = 0;
        H5Fclose(f);
    }
    h5_quiet_end(q);
    char a[1200], b[1200];
    for (int k = 0; k < shards; k++) {  // the shards first: the index, last, makes the link whole
        checkpoint_shard_path(a, sizeof a, src, k, shards);
        checkpoint_shard_path(b, sizeof b, dst, k, shards);
        if (link_over(a, b)) return -1;
    }
    if (link_over(src, dst)) return -1;
    remove_shards(dst, shards);
    return 0;
}

// ---- loading ----

// A string dataset into a new buffer (*out); a missing dataset is an error only when required
// (then *out stays NULL and 0 is returned).
static int read_string(hid_t f, const char *name, const char *path, int required, char **out_p) {
    *out_p = NULL;
    if (H5Lexists(f, name, H5P_DEFAULT) <= 0)
        return required ? cispo_fail("%s: dataset '/%s' missing (not a cispo checkpoint?)", path, name) : 0;
    hid_t ds = H5Dopen2(f, name, H5P_DEFAULT);
    hid_t type = ds < 0 ? -1 : H5Dget_type(ds);
    char *out = NULL;
    if (type < 0 || H5Tget_class(type) != H5T_STRING) {
        cispo_fail("%s: dataset '/%s' is not a string", path, name);
    } else if (H5Tis_variable_str(type) > 0) {  // as h5py writes str by default
        hid_t mt = H5Tcopy(H5T_C_S1);
        H5Tset_size(mt, H5T_VARIABLE);
        char *s = NULL;
        if (H5Dread(ds, mt, H5S_ALL, H5S_ALL, H5P_DEFAULT, &s) < 0 || !s)
            cispo_fail("%s: dataset '/%s': read failed (file truncated?)", path, name);
        else {
            out = cispo_strdup(s);
            H5free_memory(s);
        }
        H5Tclose(mt);
    } else {
        size_t n = H5Tget_size(type);
        hid_t mt = H5Tcopy(H5T_C_S1);
        H5Tset_size(mt, n + 1);  // room for a terminator whatever the stored padding
        H5Tset_strpad(mt, H5T_STR_NULLTERM);
        out = cispo_calloc(n + 2, 1);
        if (H5Dread(ds, mt, H5S_ALL, H5S_ALL, H5P_DEFAULT, out) < 0) {
            free(out);
            out = NULL;
            cispo_fail("%s: dataset '/%s': read failed (file truncated?)", path, name);
        }
        H5Tclose(mt);
    }
    if (type >= 0) H5Tclose(type);
    if (ds >= 0) H5Dclose(ds);
    else cispo_fail("%s: dataset '/%s' cannot be opened (file truncated?)", path, name);
    *out_p = out;
    return out ? 0 : -1;
}

// Reads group/<name> for every entry into buf, checking presence, class and shape; then checks the
// group holds nothing else (a parameter the config does not know means the config is wrong).
// t may hold some experts only (checkpoint_load_ep): the group then holds `all` entries, the whole model's.
static int read_tensors(hid_t f, const char *group, const param_table_t *t, int all, const model_config_t *cfg,
                        float *buf, const char *path) {
    if (H5Lexists(f, group, H5P_DEFAULT) <= 0)
        return cispo_fail("%s: group '%s' missing (not a cispo checkpoint?)", path, group);
    hid_t g = H5Gopen2(f, group, H5P_DEFAULT);
    if (g < 0) return cispo_fail("%s: group '%s' cannot be opened (file truncated?)", path, group);
    int rc = 0;
    for (int k = 0; k < t->n_entries && !rc; k++) {
        const param_entry_t *e = &t->entries[k];
        if (H5Lexists(g, e->name, H5P_DEFAULT) <= 0) {
            rc = cispo_fail("%s: dataset '%s/%s' missing (the stored config needs it)", path, group, e->name);
            break;
        }
        hid_t ds = H5Dopen2(g, e->name, H5P_DEFAULT);
        if (ds < 0) {
            rc = cispo_fail("%s: dataset '%s/%s' cannot be opened (file truncated?)", path, group, e->name);
            break;
        }
        hid_t type = H5Dget_type(ds), space = H5Dget_space(ds);
        hsize_t dims[8] = {0};
        int nd = space < 0 ? -1 : H5Sget_simple_extent_ndims(space);
        if (nd >= 0 && nd <= 8) H5Sget_simple_extent_dims(space, dims, NULL);
        int same = nd == e->ndim;
        for (int d = 0; same && d < nd; d++) same = dims[d] == (hsize_t)e->shape[d];
        if (type < 0 || H5Tget_class(type) != H5T_FLOAT) {
            rc = cispo_fail("%s: dataset '%s/%s' is not floating point", path, group, e->name);
        } else if (!same) {
            char got[96] = "[", want[96] = "[";
            for (int d = 0; d < nd && d < 8; d++)
                snprintf(got + strlen(got), sizeof got - strlen(got), "%s%llu", d ? "," : "", (unsigned long long)dims[d]);
            for (int d = 0; d < e->ndim; d++)
                snprintf(want + strlen(want), sizeof want - strlen(want), "%s%lld", d ? "," : "", (long long)e->shape[d]);
            rc = cispo_fail("%s: dataset '%s/%s' has shape %s] but the stored config needs %s]", path, group, e->name, got,
                            want);
        } else if (H5Dread(ds, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf + e->offset) < 0) {
            rc = cispo_fail("%s: dataset '%s/%s': read failed (file truncated?)", path, group, e->name);
        }
        if (type >= 0) H5Tclose(type);
        if (space >= 0) H5Sclose(space);
        H5Dclose(ds);
    }
    if (!rc) {
        H5G_info_t info;
        if (H5Gget_info(g, &info) < 0) rc = cispo_fail("%s: group '%s' unreadable (file truncated?)", path, group);
        else if (info.nlinks != (hsize_t)all) {
            // Name one dataset the whole model's table does not know.
            param_table_t w;
            param_table_build(&w, cfg);
            char name[256] = "?";
            for (hsize_t i = 0; i < info.nlinks; i++) {
                char nm[256];
                if (H5Lget_name_by_idx(g, ".", H5_INDEX_NAME, H5_ITER_INC, i, nm, sizeof nm, H5P_DEFAULT) > 0 &&
                    param_table_find(&w, nm) < 0) {
                    snprintf(name, sizeof name, "%s", nm);
                    break;
                }
            }
            param_table_free(&w);
            rc = name[0] == '?' ? cispo_fail("%s: group '%s' holds %llu datasets, the stored config has %d parameters",
                                             path, group, (unsigned long long)info.nlinks, all)
                                : cispo_fail("%s: dataset '%s/%s' is not a parameter of the stored config", path,
                                             group, name);
        }
    }
    H5Gclose(g);
    return rc;
}

static int read_scalar_i64(hid_t f, const char *name, int64_t *out, const char *path) {
    if (H5Lexists(f, name, H5P_DEFAULT) <= 0) return cispo_fail("%s: dataset '/%s' missing", path, name);
    hid_t ds = H5Dopen2(f, name, H5P_DEFAULT);
    if (ds < 0) return cispo_fail("%s: dataset '/%s' cannot be opened (file truncated?)", path, name);
    hid_t space = H5Dget_space(ds);
    int ok = H5Sget_simple_extent_npoints(space) == 1 &&
             H5Dread(ds, H5T_NATIVE_INT64, H5S_ALL, H5S_ALL, H5P_DEFAULT, out) >= 0;
    H5Sclose(space);
    H5Dclose(ds);
    return ok ? 0 : cispo_fail("%s: dataset '/%s' is not one integer", path, name);
}

static int read_rng(hid_t f, checkpoint_t *ck, const char *path) {
    if (H5Lexists(f, "rng", H5P_DEFAULT) <= 0) return cispo_fail("%s: dataset '/rng' missing", path);
    hid_t ds = H5Dopen2(f, "rng", H5P_DEFAULT);
    if (ds < 0) return cispo_fail("%s: dataset '/rng' cannot be opened (file truncated?)", path);
    hid_t space = H5Dget_space(ds), type = H5Dget_type(ds);
    int rc = 0;
    hssize_t n = H5Sget_simple_extent_npoints(space);
    if (H5Sget_simple_extent_ndims(space) != 1 || H5Tget_class(type) != H5T_INTEGER || n < 0 || n > (1 << 30)) {
        rc = cispo_fail("%s: dataset '/rng' is not a 1-D integer array", path);
    } else if (n > 0) {
        ck->rng = cispo_malloc((size_t)n * sizeof *ck->rng);
        if (H5Dread(ds, H5T_NATIVE_UINT64, H5S_ALL, H5S_ALL, H5P_DEFAULT, ck->rng) < 0)
            rc = cispo_fail("%s: dataset '/rng': read failed (file truncated?)", path);
    }
    ck->n_rng = (int)n;
    H5Tclose(type);
    H5Sclose(space);
    H5Dclose(ds);
    return rc;
}

static int read_int_attr(hid_t f, const char *name, int *out) {
    hid_t a = H5Aexists(f, name) > 0 ? H5Aopen(f, name, H5P_DEFAULT) : -1;
    int ok = a >= 0 && H5Aread(a, H5T_NATIVE_INT, out) >= 0;
    if (a >= 0) H5Aclose(a);
    return ok ? 0 : -1;
}

// The format attribute is `format` and the version one of lo..hi: *version. 0 or -1 (+ message).
static int read_header(hid_t f, const char *path, const char *format, int lo, int hi, int *version) {
    int ok = H5Aexists(f, "format") > 0;
    char fmt[64] = "";
    if (ok) {
        hid_t a = H5Aopen(f, "format", H5P_DEFAULT);
        hid_t mt = H5Tcopy(H5T_C_S1);
        H5Tset_size(mt, sizeof fmt);
        hid_t at = H5Aget_type(a);
        ok = a >= 0 && H5Tget_class(at) == H5T_STRING && H5Tis_variable_str(at) <= 0 && H5Tget_size(at) < sizeof fmt &&
             H5Aread(a, mt, fmt) >= 0 && !strcmp(fmt, format);
        H5Tclose(at);
        H5Tclose(mt);
        if (a >= 0) H5Aclose(a);
    }
    if (!ok) return cispo_fail("%s: not a cispo %s (no attribute format = \"%s\")", path,
                               strcmp(format, SHARD_FORMAT) ? "checkpoint" : "checkpoint shard", format);
    if (read_int_attr(f, "version", version)) *version = -1;
    if (*version < lo || *version > hi)
        return lo == hi ? cispo_fail("%s: %s format version %d, this cispo reads version %d", path, format, *version, lo)
                        : cispo_fail("%s: %s format version %d, this cispo reads versions %d to %d", path, format,
                                     *version, lo, hi);
    return 0;
}

// A 1-D or [n, 2] dataset's element count (0 when absent: *present 0). -1 on a damaged one.
static hssize_t dataset_points(hid_t f, const char *name, int *present) {
    *present = H5Lexists(f, name, H5P_DEFAULT) > 0;
    if (!*present) return 0;
    hid_t ds = H5Dopen2(f, name, H5P_DEFAULT);
    if (ds < 0) return -1;
    hid_t sp = H5Dget_space(ds);
    hssize_t n = sp < 0 ? -1 : H5Sget_simple_extent_npoints(sp);
    if (sp >= 0) H5Sclose(sp);
    H5Dclose(ds);
    return n;
}

// len floats of the 1-D dataset name from element at into dst.
static int read_floats_at(hid_t f, const char *name, hsize_t at, hsize_t len, float *dst) {
    hid_t ds = H5Dopen2(f, name, H5P_DEFAULT);
    if (ds < 0) return -1;
    hid_t fs = H5Dget_space(ds), ms = H5Screate_simple(1, &len, NULL);
    int ok = fs >= 0 && H5Sselect_hyperslab(fs, H5S_SELECT_SET, &at, NULL, &len, NULL) >= 0 &&
             H5Dread(ds, H5T_NATIVE_FLOAT, ms, fs, H5P_DEFAULT, dst) >= 0;
    H5Sclose(ms);
    if (fs >= 0) H5Sclose(fs);
    H5Dclose(ds);
    return ok ? 0 : -1;
}

typedef struct {
    size_t off, len;
    int shard;
} piece_t;

static int piece_cmp(const void *a, const void *b) {
    const piece_t *x = a, *y = b;
    return x->off < y->off ? -1 : x->off > y->off;
}

// Shard k of the index at path into ck's buffers: the runs of the whole layout it holds, intersected with
// the spans ck's table needs; each piece read goes to pieces (*np of them).
static int read_shard(const char *path, int k, int n_shards, int moments, checkpoint_t *ck, const param_span_t *sp,
                      int ns, piece_t **pieces, size_t *np, size_t *cap) {
    char sp_path[1200];
    checkpoint_shard_path(sp_path, sizeof sp_path, path, k, n_shards);
    if (access(sp_path, R_OK))
        return cispo_fail("%s: shard %d of the %d of checkpoint %s: cannot open: %s (a checkpoint is complete only "
                          "with every shard beside its index)", sp_path, k, n_shards, path, strerror(errno));
    if (H5Fis_hdf5(sp_path) <= 0) return cispo_fail("%s: not an HDF5 file (or its superblock is damaged)", sp_path);
    hid_t f = H5Fopen(sp_path, H5F_ACC_RDONLY, H5P_DEFAULT);
    if (f < 0) return cispo_fail("%s: cannot open as HDF5 (truncated or damaged file?)", sp_path);
    int rc = 0, version, shard = -1, shards = -1, present;
    int64_t step = -1, *runs = NULL;
    if ((rc = read_header(f, sp_path, SHARD_FORMAT, SHARD_VERSION, SHARD_VERSION, &version))) goto out;
    if (read_int_attr(f, "shard", &shard) || read_int_attr(f, "shards", &shards) || shard != k || shards != n_shards) {
        rc = cispo_fail("%s: holds shard %d of %d, the index %s wants shard %d of %d", sp_path, shard, shards, path, k,
                        n_shards);
        goto out;
    }
    if ((rc = read_scalar_i64(f, "step", &step, sp_path))) goto out;
    if (step != ck->step) {
        rc = cispo_fail("%s: a shard of step %lld, its index %s is of step %lld (left by another save?)", sp_path,
                        (long long)step, path, (long long)ck->step);
        goto out;
    }
    hssize_t nr2 = dataset_points(f, "runs", &present), total = 0;
    if (nr2 < 0 || nr2 % 2 || !present) {
        rc = cispo_fail("%s: dataset '/runs' missing or damaged", sp_path);
        goto out;
    }
    const size_t nr = (size_t)nr2 / 2;
    runs = cispo_malloc((nr ? nr : 1) * 2 * sizeof(int64_t));
    if (nr) {
        hid_t ds = H5Dopen2(f, "runs", H5P_DEFAULT);
        int bad = ds < 0 || H5Dread(ds, H5T_NATIVE_INT64, H5S_ALL, H5S_ALL, H5P_DEFAULT, runs) < 0;
        if (ds >= 0) H5Dclose(ds);
        if (bad) {
            rc = cispo_fail("%s: dataset '/runs': read failed (file truncated?)", sp_path);
            goto out;
        }
    }
    for (size_t i = 0; i < nr; i++) {
        int64_t a = runs[2 * i], len = runs[2 * i + 1];
        if (a < 0 || len < 1 || (uint64_t)(a + len) > ck->table.n_full || (i && a < runs[2 * i - 2] + runs[2 * i - 1])) {
            rc = cispo_fail("%s: run %zu of '/runs' (%lld, %lld) is not an ascending run inside the model's %zu "
                            "floats", sp_path, i, (long long)a, (long long)len, ck->table.n_full);
            goto out;
        }
        total += len;
    }
    const char *names[3] = {"params", "optim/m", "optim/v"};
    for (int d = 0; d < (moments ? 3 : 1); d++) {
        hssize_t n = dataset_points(f, names[d], &present);
        if (!present || n != total) {
            rc = cispo_fail("%s: dataset '/%s' %s (its runs hold %lld floats)", sp_path, names[d],
                            present ? "has another length" : "missing", (long long)total);
            goto out;
        }
    }
    // the runs (ascending) against the spans needed (ascending in the whole layout too)
    size_t j = 0, pos = 0;
    for (size_t i = 0; i < nr; pos += (size_t)runs[2 * i + 1], i++) {
        const size_t a = (size_t)runs[2 * i], b = a + (size_t)runs[2 * i + 1];
        while (j < (size_t)ns && sp[j].full + sp[j].len <= a) j++;
        for (size_t q = j; q < (size_t)ns && sp[q].full < b; q++) {
            const size_t lo = sp[q].full > a ? sp[q].full : a, hi = sp[q].full + sp[q].len < b ? sp[q].full + sp[q].len : b;
            if (hi <= lo) continue;
            const size_t local = sp[q].off + (lo - sp[q].full);
            float *dst[3] = {ck->params, ck->m, ck->v};
            for (int d = 0; d < (moments ? 3 : 1); d++)
                if (read_floats_at(f, names[d], pos + (lo - a), hi - lo, dst[d] + local)) {
                    rc = cispo_fail("%s: dataset '/%s': read failed (file truncated?)", sp_path, names[d]);
                    goto out;
                }
            if (*np == *cap) *cap = *cap ? 2 * *cap : 64, *pieces = cispo_realloc(*pieces, *cap * sizeof **pieces);
            (*pieces)[(*np)++] = (piece_t){local, hi - lo, k};
        }
    }
out:
    free(runs);
    if (H5Fclose(f) < 0 && !rc) rc = cispo_fail("%s: close failed (file damaged?)", sp_path);
    return rc;
}

// The name of the tensor holding element `at` of t's buffer.
static const char *tensor_at(const param_table_t *t, size_t at) {
    for (int i = 0; i < t->n_entries; i++)
        if (at >= t->entries[i].offset && at < t->entries[i].offset + t->entries[i].numel) return t->entries[i].name;
    return "?";
}

// Every shard of the index at path, then a check that each element of ck's table was read exactly once.
static int read_shards(const char *path, int n_shards, int moments, checkpoint_t *ck) {
    param_span_t *sp;
    int ns = param_table_spans(&ck->table, &ck->cfg, &sp), rc = 0;
    piece_t *pieces = NULL;
    size_t np = 0, cap = 0;
    for (int k = 0; k < n_shards && !rc; k++) rc = read_shard(path, k, n_shards, moments, ck, sp, ns, &pieces, &np, &cap);
    free(sp);
    if (!rc) {
        qsort(pieces, np, sizeof *pieces, piece_cmp);
        size_t at = 0;
        for (size_t i = 0; i <= np && !rc; i++) {
            const size_t next = i < np ? pieces[i].off : ck->table.n_floats;
            if (next > at)
                rc = cispo_fail("%s: no shard holds %s (elements %zu..%zu of this rank's %zu): the shards do not make "
                                "the whole model", path, tensor_at(&ck->table, at), at, next - 1, ck->table.n_floats);
            else if (next < at)
                rc = cispo_fail("%s: %s is in two shards (shard %d and one before it)", path,
                                tensor_at(&ck->table, next), pieces[i].shard);
            else if (i < np)
                at = next + pieces[i].len;
        }
    }
    free(pieces);
    return rc;
}

// Opens a checkpoint file or index (*f, its format version) and reads its model config; on failure -1 with the
// message set and *f closed (or never opened).
static int open_with_config(const char *path, hid_t *f, int *version, model_config_t *cfg) {
    *f = -1;
    if (access(path, R_OK)) return cispo_fail("%s: cannot open: %s", path, strerror(errno));
    if (H5Fis_hdf5(path) <= 0) return cispo_fail("%s: not an HDF5 file (or its superblock is damaged)", path);
    *f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    if (*f < 0) return cispo_fail("%s: cannot open as HDF5 (truncated or damaged file?)", path);
    char *cfg_text = NULL, *hf_text = NULL;
    int rc = read_header(*f, path, CHECKPOINT_FORMAT, CHECKPOINT_VERSION, CHECKPOINT_INDEX_VERSION, version);
    if (!rc) rc = read_string(*f, "config", path, 1, &cfg_text);
    if (!rc) rc = config_from_exact_json(cfg, cfg_text, path);
    // The fields /config does not hold (rope type and its parameters, sliding window, activation, pad
    // id, ...) come from the HF config.json text stored beside it.
    if (!rc) rc = read_string(*f, "config_hf", path, 0, &hf_text);
    if (!rc && hf_text) {
        char origin[1100];
        snprintf(origin, sizeof origin, "%s:/config_hf", path);
        rc = model_config_take_variants(cfg, hf_text, origin);
    }
    free(cfg_text);
    free(hf_text);
    if (rc) H5Fclose(*f), *f = -1;
    return rc;
}

int checkpoint_read_config(const char *path, model_config_t *cfg) {
    h5_quiet_t q = h5_quiet_begin();
    hid_t f;
    int version, rc = open_with_config(path, &f, &version, cfg);
    if (f >= 0 && H5Fclose(f) < 0 && !rc) rc = cispo_fail("%s: close failed (file damaged?)", path);
    h5_quiet_end(q);
    return rc;
}

int checkpoint_load_ep(const char *path, int ep, int ep_rank, checkpoint_t *ck) {
    memset(ck, 0, sizeof *ck);
    CISPO_ASSERT(ep >= 1 && ep_rank >= 0 && ep_rank < ep);
    h5_quiet_t q = h5_quiet_begin();
    int version = 0;
    hid_t f;
    int rc = open_with_config(path, &f, &version, &ck->cfg);
    if (rc) goto out;
    int lo, hi;
    moe_ep_range(ck->cfg.n_experts, ep, ep_rank, &lo, &hi);
    param_table_build_experts(&ck->table, &ck->cfg, lo, hi);
    // the whole model's entry count: the held ones and three tensors per layer of every other expert
    const int all = ck->table.n_entries + 3 * ck->cfg.n_layers * (ck->cfg.n_experts - (hi - lo));
    if ((rc = read_scalar_i64(f, "step", &ck->step, path))) goto out;
    ck->params = cispo_malloc(ck->table.n_floats * sizeof(float));
    if (version == CHECKPOINT_VERSION) {
        if ((rc = read_tensors(f, "/params", &ck->table, all, &ck->cfg, ck->params, path))) goto out;
        if (H5Lexists(f, "optim", H5P_DEFAULT) > 0) {
            ck->m = cispo_malloc(ck->table.n_floats * sizeof(float));
            ck->v = cispo_malloc(ck->table.n_floats * sizeof(float));
            if ((rc = read_tensors(f, "/optim/m", &ck->table, all, &ck->cfg, ck->m, path))) goto out;
            if ((rc = read_tensors(f, "/optim/v", &ck->table, all, &ck->cfg, ck->v, path))) goto out;
        }
    } else {
        int shards = 0, moments = 0;
        if (read_int_attr(f, "shards", &shards) || shards < 1 || read_int_attr(f, "moments", &moments)) {
            rc = cispo_fail("%s: a checkpoint index without its attributes 'shards' (>= 1) and 'moments'", path);
            goto out;
        }
        if (moments) {
            ck->m = cispo_malloc(ck->table.n_floats * sizeof(float));
            ck->v = cispo_malloc(ck->table.n_floats * sizeof(float));
        }
        if ((rc = read_shards(path, shards, moments, ck))) goto out;
        ck->n_shards = shards;
    }
    if ((rc = read_rng(f, ck, path))) goto out;
    rc = read_string(f, "extra", path, 0, &ck->extra_json);
out:
    if (f >= 0 && H5Fclose(f) < 0 && !rc) rc = cispo_fail("%s: close failed (file damaged?)", path);
    h5_quiet_end(q);
    if (rc) {
        char msg[1024];
        snprintf(msg, sizeof msg, "%s", cispo_last_error());
        checkpoint_free(ck);
        cispo_fail("%s", msg);
    }
    return rc;
}

int checkpoint_load(const char *path, checkpoint_t *ck) { return checkpoint_load_ep(path, 1, 0, ck); }

void checkpoint_free(checkpoint_t *ck) {
    if (ck->table.entries) param_table_free(&ck->table);
    free(ck->params);
    free(ck->m);
    free(ck->v);
    free(ck->rng);
    free(ck->extra_json);
    memset(ck, 0, sizeof *ck);
}
