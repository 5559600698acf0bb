// trainer/checkpoint.c — HDF5 checkpoints (layout in checkpoint.h): atomic save, validated load.
// defines: checkpoint_save, checkpoint_load, checkpoint_free
#include "trainer/checkpoint.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <hdf5.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/common.h"

#define CHECKPOINT_FORMAT "cispo-checkpoint"
#define CHECKPOINT_VERSION 1

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

int checkpoint_save(const char *path, const model_config_t *cfg, const param_table_t *table, const float *params,
                    const float *m, const float *v, int64_t step, const uint64_t *rng, int n_rng,
                    const char *extra_json) {
    CISPO_ASSERT((m == NULL) == (v == NULL));
    CISPO_ASSERT(n_rng >= 0 && (rng || n_rng == 0));
    size_t plen = strlen(path);
    char *tmp = cispo_malloc(plen + 5);
    memcpy(tmp, path, plen);
    memcpy(tmp + plen, ".tmp", 5);
    h5_quiet_t q = h5_quiet_begin();
    int rc = 0;
    hid_t f = H5Fcreate(tmp, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    if (f < 0) {
        rc = cispo_fail("%s: cannot create (directory missing or not writable?)", tmp);
        goto out;
    }
    char *exact = config_to_exact_json(cfg), *hf = model_config_to_json(cfg);
    if (write_attr_string(f, "format", CHECKPOINT_FORMAT) || write_attr_int(f, "version", CHECKPOINT_VERSION) ||
        write_string(f, "config", exact) || write_string(f, "config_hf", hf))
        rc = cispo_fail("%s: cannot write the config (disk full?)", tmp);
    free(exact);
    free(hf);
    if (!rc) rc = write_tensors(f, "/params", table, params, tmp);
    if (!rc && m) rc = write_tensors(f, "/optim/m", table, m, tmp);
    if (!rc && v) rc = write_tensors(f, "/optim/v", table, v, tmp);
    hsize_t nr = (hsize_t)n_rng;
    if (!rc && (write_array(f, "step", H5T_STD_I64LE, H5T_NATIVE_INT64, 0, NULL, &step) ||
                write_array(f, "rng", H5T_STD_U64LE, H5T_NATIVE_UINT64, 1, &nr, rng)))
        rc = cispo_fail("%s: cannot write step/rng (disk full?)", tmp);
    if (!rc && extra_json && write_string(f, "extra", extra_json))
        rc = cispo_fail("%s: cannot write /extra (disk full?)", tmp);
    if (H5Fclose(f) < 0 && !rc) rc = cispo_fail("%s: cannot close (disk full?)", tmp);
    if (!rc && fsync_path(tmp)) rc = cispo_fail("%s: fsync failed: %s", tmp, strerror(errno));
    if (!rc && rename(tmp, path)) rc = cispo_fail("%s: cannot rename %s over it: %s", path, tmp, strerror(errno));
    if (rc) unlink(tmp);
out:
    h5_quiet_end(q);
    free(tmp);
    return rc;
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
static int read_tensors(hid_t f, const char *group, const param_table_t *t, float *buf, const char *path) {
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
        else if (info.nlinks != (hsize_t)t->n_entries) {
            // Name one dataset the table does not know.
            char name[256] = "?";
            for (hsize_t i = 0; i < info.nlinks; i++) {
                char nm[256];
                if (H5Lget_name_by_idx(g, ".", H5_INDEX_NAME, H5_ITER_INC, i, nm, sizeof nm, H5P_DEFAULT) > 0 &&
                    param_table_find(t, nm) < 0) {
                    snprintf(name, sizeof name, "%s", nm);
                    break;
                }
            }
            rc = cispo_fail("%s: dataset '%s/%s' is not a parameter of the stored config", path, group, name);
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

static int read_header(hid_t f, const char *path) {
    int ok = H5Aexists(f, "format") > 0;
    char fmt[64] = "";
    if (ok) {
        hid_t a = H5Aopen(f, "format", H5P_DEFAULT);
        hid_t mt = H5Tcopy(H5T_C_S1);
        H5Tset_size(mt, sizeof fmt);
        hid_t at = H5Aget_type(a);
        ok = a >= 0 && H5Tget_class(at) == H5T_STRING && H5Tis_variable_str(at) <= 0 && H5Tget_size(at) < sizeof fmt &&
             H5Aread(a, mt, fmt) >= 0 && !strcmp(fmt, CHECKPOINT_FORMAT);
        H5Tclose(at);
        H5Tclose(mt);
        if (a >= 0) H5Aclose(a);
    }
    if (!ok) return cispo_fail("%s: not a cispo checkpoint (no attribute format = \"%s\")", path, CHECKPOINT_FORMAT);
    int version = 0;
    hid_t a = H5Aexists(f, "version") > 0 ? H5Aopen(f, "version", H5P_DEFAULT) : -1;
    if (a < 0 || H5Aread(a, H5T_NATIVE_INT, &version) < 0) version = -1;
    if (a >= 0) H5Aclose(a);
    if (version != CHECKPOINT_VERSION)
        return cispo_fail("%s: checkpoint format version %d, this cispo reads version %d", path, version,
                          CHECKPOINT_VERSION);
    return 0;
}

int checkpoint_load(const char *path, checkpoint_t *ck) {
    memset(ck, 0, sizeof *ck);
    if (access(path, R_OK)) return cispo_fail("%s: cannot open: %s", path, strerror(errno));
    h5_quiet_t q = h5_quiet_begin();
    int rc = 0;
    hid_t f = -1;
    if (H5Fis_hdf5(path) <= 0) {
        rc = cispo_fail("%s: not an HDF5 file (or its superblock is damaged)", path);
        goto out;
    }
    f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    if (f < 0) {
        rc = cispo_fail("%s: cannot open as HDF5 (truncated or damaged file?)", path);
        goto out;
    }
    if ((rc = read_header(f, path))) goto out;
    char *cfg_text;
    if ((rc = read_string(f, "config", path, 1, &cfg_text))) goto out;
    rc = config_from_exact_json(&ck->cfg, cfg_text, path);
    free(cfg_text);
    if (rc) goto out;
    // The fields /config does not hold (rope type and its parameters, sliding window, activation, pad
    // id, ...) come from the HF config.json text stored beside it.
    char *hf_text = NULL;
    if ((rc = read_string(f, "config_hf", path, 0, &hf_text))) goto out;
    if (hf_text) {
        char origin[1100];
        snprintf(origin, sizeof origin, "%s:/config_hf", path);
        rc = model_config_take_variants(&ck->cfg, hf_text, origin);
        free(hf_text);
        if (rc) goto out;
    }
    param_table_build(&ck->table, &ck->cfg);
    ck->params = cispo_malloc(ck->table.n_floats * sizeof(float));
    if ((rc = read_tensors(f, "/params", &ck->table, ck->params, path))) goto out;
    if (H5Lexists(f, "optim", H5P_DEFAULT) > 0) {
        ck->m = cispo_malloc(ck->table.n_floats * sizeof(float));
        ck->v = cispo_malloc(ck->table.n_floats * sizeof(float));
        if ((rc = read_tensors(f, "/optim/m", &ck->table, ck->m, path))) goto out;
        if ((rc = read_tensors(f, "/optim/v", &ck->table, ck->v, path))) goto out;
    }
    if ((rc = read_scalar_i64(f, "step", &ck->step, path))) goto out;
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

void checkpoint_free(checkpoint_t *ck) {
    if (ck->table.entries) param_table_free(&ck->table);
    free(ck->params);
    free(ck->m);
    free(ck->v);
    free(ck->rng);
    free(ck->extra_json);
    memset(ck, 0, sizeof *ck);
}
