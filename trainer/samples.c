// trainer/samples.c — rollout samples appended to extendible HDF5 datasets (trainer/samples.h).
#include "trainer/samples.h"

#include <hdf5.h>
#include <string.h>
#include <unistd.h>

#include "base/common.h"

enum { F_STEP, F_REWARD, F_CORRECT, F_STOP, F_FAILED, F_PROMPT, F_COMPLETION, F_EXTRACTED, F_REASON, F_PTOK, F_TOK,
       F_LOGP, F_COUNT };
static const char *const field_names[F_COUNT] = {"step",   "reward",    "correct",   "stop",   "failed",
                                                 "prompt", "completion", "extracted", "reason", "prompt_tokens",
                                                 "tokens", "logp"};

struct samples_writer {
    hid_t file;
    hid_t dset[F_COUNT];
    hid_t type[F_COUNT];  // memory types (vlen ones created here)
    long n;
    char path[1024];
};

static hid_t field_type(int f) {
    switch (f) {
    case F_STEP: return H5Tcopy(H5T_NATIVE_INT32);
    case F_REWARD: return H5Tcopy(H5T_NATIVE_FLOAT);
    case F_CORRECT:
    case F_STOP:
    case F_FAILED: return H5Tcopy(H5T_NATIVE_INT8);
    case F_PTOK:
    case F_TOK: return H5Tvlen_create(H5T_NATIVE_INT32);
    case F_LOGP: return H5Tvlen_create(H5T_NATIVE_FLOAT);
    default: {
        hid_t t = H5Tcopy(H5T_C_S1);
        H5Tset_size(t, H5T_VARIABLE);
        H5Tset_cset(t, H5T_CSET_UTF8);
        return t;
    }
    }
}

static int fail_close(samples_writer_t *w, const char *what) {
    cispo_fail("%s: %s", w->path, what);
    for (int f = 0; f < F_COUNT; f++) {
        if (w->dset[f] > 0) H5Dclose(w->dset[f]);
        if (w->type[f] > 0) H5Tclose(w->type[f]);
    }
    if (w->file > 0) H5Fclose(w->file);
    free(w);
    return -1;
}

samples_writer_t *samples_open(const char *path, int append) {
    samples_writer_t *w = cispo_calloc(1, sizeof *w);
    snprintf(w->path, sizeof w->path, "%s", path);
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);  // errors are reported through cispo_fail, not HDF5's stack dump
    int exists = access(path, F_OK) == 0;
    if (append && exists) {
        w->file = H5Fopen(path, H5F_ACC_RDWR, H5P_DEFAULT);
        if (w->file < 0) return fail_close(w, "cannot open the samples file for appending (not HDF5?)"), NULL;
        for (int f = 0; f < F_COUNT; f++) {
            w->type[f] = field_type(f);
            w->dset[f] = H5Dopen2(w->file, field_names[f], H5P_DEFAULT);
            if (w->dset[f] < 0) {
                char msg[128];
                snprintf(msg, sizeof msg, "dataset '%s' missing", field_names[f]);
                return fail_close(w, msg), NULL;
            }
        }
        hid_t sp = H5Dget_space(w->dset[F_STEP]);
        hsize_t dim;
        H5Sget_simple_extent_dims(sp, &dim, NULL);
        H5Sclose(sp);
        w->n = (long)dim;
        return w;
    }
    w->file = H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    if (w->file < 0) return fail_close(w, "cannot create the samples file"), NULL;
    hsize_t dim = 0, maxdim = H5S_UNLIMITED, chunk = 256;
    hid_t space = H5Screate_simple(1, &dim, &maxdim);
    hid_t dcpl = H5Pcreate(H5P_DATASET_CREATE);
    H5Pset_chunk(dcpl, 1, &chunk);
    for (int f = 0; f < F_COUNT; f++) {
        w->type[f] = field_type(f);
        w->dset[f] = H5Dcreate2(w->file, field_names[f], w->type[f], space, H5P_DEFAULT, dcpl, H5P_DEFAULT);
        if (w->dset[f] < 0) {
            H5Pclose(dcpl);
            H5Sclose(space);
            return fail_close(w, "cannot create a dataset"), NULL;
        }
    }
    H5Pclose(dcpl);
    H5Sclose(space);
    return w;
}

// Writes one element at row w->n of field f.
static int put(samples_writer_t *w, int f, const void *value) {
    hsize_t newdim = (hsize_t)w->n + 1, start = (hsize_t)w->n, one = 1;
    if (H5Dset_extent(w->dset[f], &newdim) < 0) return -1;
    hid_t fs = H5Dget_space(w->dset[f]);
    H5Sselect_hyperslab(fs, H5S_SELECT_SET, &start, NULL, &one, NULL);
    hid_t ms = H5Screate_simple(1, &one, NULL);
    herr_t rc = H5Dwrite(w->dset[f], w->type[f], ms, fs, H5P_DEFAULT, value);
    H5Sclose(ms);
    H5Sclose(fs);
    return rc < 0 ? -1 : 0;
}

int samples_append(samples_writer_t *w, const sample_record_t *r) {
    int32_t step = r->step;
    float reward = r->reward;
    int8_t correct = (int8_t)r->correct, stop = (int8_t)r->stop, failed = (int8_t)r->failed;
    const char *strs[4] = {r->prompt ? r->prompt : "", r->completion ? r->completion : "",
                           r->extracted ? r->extracted : "", r->reason ? r->reason : ""};
    hvl_t ptok = {(size_t)r->n_prompt, (void *)r->prompt_tokens}, tok = {(size_t)r->n_tokens, (void *)r->tokens},
          lp = {(size_t)r->n_tokens, (void *)r->logp};
    int rc = put(w, F_STEP, &step) | put(w, F_REWARD, &reward) | put(w, F_CORRECT, &correct) | put(w, F_STOP, &stop) |
             put(w, F_FAILED, &failed) | put(w, F_PROMPT, &strs[0]) | put(w, F_COMPLETION, &strs[1]) |
             put(w, F_EXTRACTED, &strs[2]) | put(w, F_REASON, &strs[3]) | put(w, F_PTOK, &ptok) |
             put(w, F_TOK, &tok) | put(w, F_LOGP, &lp);
    if (rc) return cispo_fail("%s: cannot append sample %ld (disk full?)", w->path, w->n);
    w->n++;
    return 0;
}

int samples_truncate_after(samples_writer_t *w, int last_step) {
    if (w->n == 0) return 0;
    int32_t *steps = cispo_malloc(sizeof(int32_t) * (size_t)w->n);
    if (H5Dread(w->dset[F_STEP], H5T_NATIVE_INT32, H5S_ALL, H5S_ALL, H5P_DEFAULT, steps) < 0) {
        free(steps);
        return cispo_fail("%s: cannot read the step column", w->path);
    }
    long keep = w->n;
    while (keep > 0 && steps[keep - 1] > last_step) keep--;
    free(steps);
    if (keep == w->n) return 0;
    hsize_t dim = (hsize_t)keep;
    for (int f = 0; f < F_COUNT; f++)
        if (H5Dset_extent(w->dset[f], &dim) < 0) return cispo_fail("%s: cannot truncate '%s'", w->path, field_names[f]);
    w->n = keep;
    return 0;
}

long samples_count(const samples_writer_t *w) { return w->n; }

int samples_close(samples_writer_t *w) {
    if (!w) return 0;
    int rc = 0;
    for (int f = 0; f < F_COUNT; f++) {
        H5Dclose(w->dset[f]);
        H5Tclose(w->type[f]);
    }
    if (H5Fclose(w->file) < 0) rc = cispo_fail("%s: close failed", w->path);
    free(w);
    return rc;
}
