// trainer/samples.c — rollout samples as one HDF5 file per step under an index (layout in samples.h).
// Why not one file appended in place: HDF5 updates its metadata in place, so a process killed during
// an append (Ctrl-C, kill -9, a preemption) leaves a file the library cannot open. Here the only
// writes to a file that may already be read are renames of complete, synced files.
// defines: samples_open, samples_append, samples_commit, samples_truncate_after, samples_count, samples_last_failure, samples_close
#include "trainer/samples.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <hdf5.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/common.h"

#define SAMPLES_FORMAT "cispo-samples"
#define SAMPLES_VERSION 2

enum { F_STEP, F_REWARD, F_CORRECT, F_STOP, F_FAILED, F_PROMPT, F_COMPLETION, F_EXTRACTED, F_REASON, F_PTOK, F_TOK,
       F_LOGP, F_COUNT };
static const char *const field_names[F_COUNT] = {"step",   "reward",    "correct",   "stop",   "failed",
                                                 "prompt", "completion", "extracted", "reason", "prompt_tokens",
                                                 "tokens", "logp"};
enum { N_VAR = F_COUNT - F_PROMPT };  // the strings and arrays, copied per row

// Rows are written a batch at a time: one H5Dset_extent and one H5Dwrite per field for the batch. A row at
// a time cost 12 of each per sample, and HDF5 clears a chunk-sized block on every variable-length write.
#define BATCH_ROWS 256                  // = the chunk, so full batches fill whole chunks
#define BATCH_BYTES ((size_t)64 << 20)  // of copied strings and arrays: memory stays bounded for long rollouts

struct samples_writer {
    char path[1024];     // the index, run_dir/samples.h5
    char dir[1024];      // the step files, run_dir/samples
    char dir_name[256];  // its last component (the index links relative to its own directory)
    // committed steps, ascending
    int *steps;
    long *rows;
    int n_steps, cap_steps;
    // the step being written (seg < 0: none)
    hid_t seg;
    hid_t dset[F_COUNT];
    hid_t type[F_COUNT];
    int seg_step;
    long seg_n;         // rows written to its file
    char failure[256];  // the first failed verdict's reason in the latest step
    // rows appended after those, buffered: written as one batch (flush_rows), their strings and arrays
    // copied into b_data (the caller's pointers die with the call) at the offsets b_off
    int b_n;
    int32_t b_step[BATCH_ROWS];
    float b_reward[BATCH_ROWS];
    int8_t b_flag[3][BATCH_ROWS];     // F_CORRECT, F_STOP, F_FAILED
    size_t b_off[N_VAR][BATCH_ROWS];  // [f - F_PROMPT]: F_PROMPT .. F_LOGP
    size_t b_len[N_VAR][BATCH_ROWS];  // elements of the arrays (F_PTOK .. F_LOGP)
    char *b_data;
    size_t b_used, b_cap;
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

static void step_file(const samples_writer_t *w, int step, const char *suffix, char *buf, size_t cap) {
    snprintf(buf, cap, "%s/step-%06d.h5%s", w->dir, step, suffix);
}

static int fsync_file(const char *path) {
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return -1;
    int rc = fsync(fd);
    close(fd);
    return rc;
}

// The index, written to <path>.tmp and renamed over path.
static int write_index(samples_writer_t *w) {
    char tmp[1100];
    snprintf(tmp, sizeof tmp, "%s.tmp", w->path);
    hid_t f = H5Fcreate(tmp, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    if (f < 0) return cispo_fail("%s: cannot create (directory missing or not writable?)", tmp);
    int ok = 1;
    hid_t sp = H5Screate(H5S_SCALAR), st = H5Tcopy(H5T_C_S1);
    H5Tset_size(st, sizeof SAMPLES_FORMAT);
    hid_t a = H5Acreate2(f, "format", st, sp, H5P_DEFAULT, H5P_DEFAULT);
    ok &= a >= 0 && H5Awrite(a, st, SAMPLES_FORMAT) >= 0;
    if (a >= 0) H5Aclose(a);
    int version = SAMPLES_VERSION;
    a = H5Acreate2(f, "version", H5T_STD_I32LE, sp, H5P_DEFAULT, H5P_DEFAULT);
    ok &= a >= 0 && H5Awrite(a, H5T_NATIVE_INT, &version) >= 0;
    if (a >= 0) H5Aclose(a);
    H5Tclose(st);
    H5Sclose(sp);
    hsize_t n = (hsize_t)w->n_steps;
    sp = H5Screate_simple(1, &n, NULL);
    hid_t d = H5Dcreate2(f, "steps", H5T_STD_I32LE, sp, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    ok &= d >= 0 && (n == 0 || H5Dwrite(d, H5T_NATIVE_INT, H5S_ALL, H5S_ALL, H5P_DEFAULT, w->steps) >= 0);
    if (d >= 0) H5Dclose(d);
    d = H5Dcreate2(f, "rows", H5T_STD_I64LE, sp, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    ok &= d >= 0 && (n == 0 || H5Dwrite(d, H5T_NATIVE_LONG, H5S_ALL, H5S_ALL, H5P_DEFAULT, w->rows) >= 0);
    if (d >= 0) H5Dclose(d);
    H5Sclose(sp);
    for (int i = 0; i < w->n_steps && ok; i++) {
        char link[32], target[300];
        snprintf(link, sizeof link, "step-%06d", w->steps[i]);
        snprintf(target, sizeof target, "%s/step-%06d.h5", w->dir_name, w->steps[i]);
        ok &= H5Lcreate_external(target, "/", f, link, H5P_DEFAULT, H5P_DEFAULT) >= 0;
    }
    ok &= H5Fclose(f) >= 0;
    if (ok && fsync_file(tmp)) ok = 0;
    if (!ok) return unlink(tmp), cispo_fail("%s: cannot write the samples index (disk full?)", tmp);
    if (rename(tmp, w->path)) return unlink(tmp), cispo_fail("%s: cannot rename %s over it: %s", w->path, tmp, strerror(errno));
    return 0;
}

static void close_segment(samples_writer_t *w) {
    for (int f = 0; f < F_COUNT; f++) {
        if (w->dset[f] >= 0) H5Dclose(w->dset[f]);
        if (w->type[f] >= 0) H5Tclose(w->type[f]);
        w->dset[f] = w->type[f] = -1;
    }
    if (w->seg >= 0) H5Fclose(w->seg);
    w->seg = -1;
    w->b_n = 0, w->b_used = 0;  // buffered rows belong to the closed step
}

static int open_segment(samples_writer_t *w, int step) {
    char tmp[1100];
    step_file(w, step, ".tmp", tmp, sizeof tmp);
    w->seg = H5Fcreate(tmp, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    if (w->seg < 0) return cispo_fail("%s: cannot create (directory missing or not writable?)", tmp);
    hsize_t dim = 0, maxdim = H5S_UNLIMITED, chunk = 256;
    hid_t space = H5Screate_simple(1, &dim, &maxdim);
    hid_t dcpl = H5Pcreate(H5P_DATASET_CREATE);
    H5Pset_chunk(dcpl, 1, &chunk);
    int rc = 0;
    for (int f = 0; f < F_COUNT && !rc; f++) {
        w->type[f] = field_type(f);
        w->dset[f] = H5Dcreate2(w->seg, field_names[f], w->type[f], space, H5P_DEFAULT, dcpl, H5P_DEFAULT);
        if (w->dset[f] < 0) rc = cispo_fail("%s: cannot create dataset '%s'", tmp, field_names[f]);
    }
    H5Pclose(dcpl);
    H5Sclose(space);
    w->seg_step = step;
    w->seg_n = 0;
    w->failure[0] = 0;
    if (rc) close_segment(w), unlink(tmp);
    return rc;
}

// Drops the step being written (its file was never renamed, so nothing else refers to it).
static void discard_segment(samples_writer_t *w) {
    if (w->seg < 0) return;
    close_segment(w);
    char tmp[1100];
    step_file(w, w->seg_step, ".tmp", tmp, sizeof tmp);
    unlink(tmp);
}

// Writes the buffered rows after the step file's seg_n rows. On failure the step is dropped: its file's
// datasets may now differ in length, and it was never renamed, so nothing refers to it.
static int flush_rows(samples_writer_t *w) {
    if (w->b_n == 0) return 0;
    hsize_t start = (hsize_t)w->seg_n, count = (hsize_t)w->b_n, newdim = start + count;
    const char *str[BATCH_ROWS];
    hvl_t vl[BATCH_ROWS];
    hid_t ms = H5Screate_simple(1, &count, NULL);
    int ok = ms >= 0;
    for (int f = 0; f < F_COUNT && ok; f++) {
        const void *buf;
        int v = f - F_PROMPT;
        switch (f) {
        case F_STEP: buf = w->b_step; break;
        case F_REWARD: buf = w->b_reward; break;
        case F_CORRECT:
        case F_STOP:
        case F_FAILED: buf = w->b_flag[f - F_CORRECT]; break;
        case F_PTOK:
        case F_TOK:
        case F_LOGP:  // pointers made now: b_data may have moved since the row was copied
            for (int i = 0; i < w->b_n; i++)
                vl[i] = (hvl_t){w->b_len[v][i], w->b_len[v][i] ? w->b_data + w->b_off[v][i] : NULL};
            buf = vl;
            break;
        default:
            for (int i = 0; i < w->b_n; i++) str[i] = w->b_data + w->b_off[v][i];
            buf = str;
        }
        hid_t fs = -1;
        ok = H5Dset_extent(w->dset[f], &newdim) >= 0 && (fs = H5Dget_space(w->dset[f])) >= 0 &&
             H5Sselect_hyperslab(fs, H5S_SELECT_SET, &start, NULL, &count, NULL) >= 0 &&
             H5Dwrite(w->dset[f], w->type[f], ms, fs, H5P_DEFAULT, buf) >= 0;
        if (fs >= 0) H5Sclose(fs);
    }
    if (ms >= 0) H5Sclose(ms);
    if (!ok) {
        char tmp[1100];
        step_file(w, w->seg_step, ".tmp", tmp, sizeof tmp);
        cispo_fail("%s: cannot write samples %ld to %ld of step %d (disk full?)", tmp, w->seg_n,
                   w->seg_n + w->b_n - 1, w->seg_step);
        discard_segment(w);
        return -1;
    }
    w->seg_n += w->b_n;
    w->b_n = 0, w->b_used = 0;
    if (w->b_cap > 2 * BATCH_BYTES) free(w->b_data), w->b_data = NULL, w->b_cap = 0;  // after a huge row
    return 0;
}

int samples_commit(samples_writer_t *w) {
    if (!w || w->seg < 0) return 0;
    if (flush_rows(w)) return -1;
    int step = w->seg_step;
    long n = w->seg_n;
    int ok = H5Fflush(w->seg, H5F_SCOPE_LOCAL) >= 0;
    close_segment(w);
    char tmp[1100], dst[1100];
    step_file(w, step, ".tmp", tmp, sizeof tmp);
    step_file(w, step, "", dst, sizeof dst);
    if (!ok || fsync_file(tmp)) return unlink(tmp), cispo_fail("%s: cannot write (disk full?)", tmp);
    if (rename(tmp, dst)) return unlink(tmp), cispo_fail("%s: cannot rename %s over it: %s", dst, tmp, strerror(errno));
    int i = 0;
    while (i < w->n_steps && w->steps[i] < step) i++;
    if (i < w->n_steps && w->steps[i] == step) {
        w->rows[i] = n;
    } else {
        if (w->n_steps == w->cap_steps) {
            w->cap_steps = w->cap_steps ? 2 * w->cap_steps : 64;
            w->steps = cispo_realloc(w->steps, sizeof *w->steps * (size_t)w->cap_steps);
            w->rows = cispo_realloc(w->rows, sizeof *w->rows * (size_t)w->cap_steps);
        }
        memmove(w->steps + i + 1, w->steps + i, sizeof *w->steps * (size_t)(w->n_steps - i));
        memmove(w->rows + i + 1, w->rows + i, sizeof *w->rows * (size_t)(w->n_steps - i));
        w->steps[i] = step, w->rows[i] = n;
        w->n_steps++;
    }
    return write_index(w);
}

static void writer_free(samples_writer_t *w) {
    close_segment(w);
    free(w->b_data);
    free(w->steps);
    free(w->rows);
    free(w);
}

// Removes the step files (and leftovers of interrupted writes) that the index does not list.
static void remove_unlisted(samples_writer_t *w) {
    DIR *d = opendir(w->dir);
    struct dirent *e;
    while (d && (e = readdir(d))) {
        int step, len = 0;
        if (sscanf(e->d_name, "step-%d.h5%n", &step, &len) != 1 || len == 0) continue;
        int listed = 0;
        for (int i = 0; i < w->n_steps && !listed; i++) listed = w->steps[i] == step;
        if (!listed || e->d_name[len]) {  // unlisted, or a .tmp
            char p[1400];
            snprintf(p, sizeof p, "%s/%s", w->dir, e->d_name);
            unlink(p);
        }
    }
    if (d) closedir(d);
}

static int read_index(samples_writer_t *w) {
    if (H5Fis_hdf5(w->path) <= 0)
        return cispo_fail("%s: not an HDF5 file: not a samples index (move it away, or start the run afresh)", w->path);
    hid_t f = H5Fopen(w->path, H5F_ACC_RDONLY, H5P_DEFAULT);
    if (f < 0) return cispo_fail("%s: cannot open the samples index (damaged?)", w->path);
    int rc = 0, version = 0;
    hid_t a = H5Aexists(f, "version") > 0 ? H5Aopen(f, "version", H5P_DEFAULT) : -1;
    if (a < 0 || H5Aread(a, H5T_NATIVE_INT, &version) < 0) version = 0;
    if (a >= 0) H5Aclose(a);
    if (version != SAMPLES_VERSION)
        rc = cispo_fail("%s: samples format version %d, this cispo appends to version %d (a file from an older cispo: "
                        "move it away to continue the run)", w->path, version, SAMPLES_VERSION);
    hid_t ds = rc ? -1 : H5Dopen2(f, "steps", H5P_DEFAULT), dr = rc ? -1 : H5Dopen2(f, "rows", H5P_DEFAULT);
    if (!rc && (ds < 0 || dr < 0)) rc = cispo_fail("%s: datasets 'steps'/'rows' missing", w->path);
    if (!rc) {
        hid_t sp = H5Dget_space(ds);
        hssize_t n = H5Sget_simple_extent_npoints(sp);
        H5Sclose(sp);
        w->n_steps = w->cap_steps = (int)n;
        w->steps = cispo_malloc(sizeof *w->steps * (size_t)(n + 1));
        w->rows = cispo_malloc(sizeof *w->rows * (size_t)(n + 1));
        if (n > 0 && (H5Dread(ds, H5T_NATIVE_INT, H5S_ALL, H5S_ALL, H5P_DEFAULT, w->steps) < 0 ||
                      H5Dread(dr, H5T_NATIVE_LONG, H5S_ALL, H5S_ALL, H5P_DEFAULT, w->rows) < 0))
            rc = cispo_fail("%s: cannot read the index", w->path);
    }
    if (ds >= 0) H5Dclose(ds);
    if (dr >= 0) H5Dclose(dr);
    H5Fclose(f);
    return rc;
}

samples_writer_t *samples_open(const char *path, int append) {
    samples_writer_t *w = cispo_calloc(1, sizeof *w);
    w->seg = -1;
    for (int f = 0; f < F_COUNT; f++) w->dset[f] = w->type[f] = -1;
    snprintf(w->path, sizeof w->path, "%s", path);
    snprintf(w->dir, sizeof w->dir, "%s", path);
    size_t len = strlen(w->dir);
    if (len > 3 && !strcmp(w->dir + len - 3, ".h5")) w->dir[len - 3] = 0;
    else snprintf(w->dir + len, sizeof w->dir - len, ".d");
    const char *slash = strrchr(w->dir, '/'), *name = slash ? slash + 1 : w->dir;
    if (strlen(name) >= sizeof w->dir_name) {  // longer than a file name may be
        cispo_fail("samples file %s: the name of its step folder '%s' is too long", path, name);
        writer_free(w);
        return NULL;
    }
    memcpy(w->dir_name, name, strlen(name) + 1);
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);  // errors are reported through cispo_fail, not HDF5's stack dump
    if (mkdir(w->dir, 0755) && errno != EEXIST) {
        cispo_fail("cannot create %s: %s", w->dir, strerror(errno));
        writer_free(w);
        return NULL;
    }
    if (append && access(path, F_OK) == 0) {
        if (read_index(w)) return writer_free(w), NULL;
    } else if (write_index(w)) {
        return writer_free(w), NULL;
    }
    remove_unlisted(w);
    return w;
}

// Copies n bytes into the batch's data at an offset aligned to align (a power of 2); returns the offset.
static size_t stash(samples_writer_t *w, const void *p, size_t n, size_t align) {
    size_t off = (w->b_used + align - 1) & ~(align - 1);
    if (off + n > w->b_cap) {
        size_t cap = w->b_cap ? w->b_cap : (size_t)1 << 16;
        while (cap < off + n) cap *= 2;
        w->b_data = cispo_realloc(w->b_data, cap);
        w->b_cap = cap;
    }
    if (n) memcpy(w->b_data + off, p, n);
    w->b_used = off + n;
    return off;
}

int samples_append(samples_writer_t *w, const sample_record_t *r) {
    if (w->seg >= 0 && w->seg_step != r->step && samples_commit(w)) return -1;
    if (w->seg < 0 && open_segment(w, r->step)) return -1;
    int i = w->b_n;
    w->b_step[i] = r->step;
    w->b_reward[i] = r->reward;
    w->b_flag[0][i] = (int8_t)r->correct;
    w->b_flag[1][i] = (int8_t)r->stop;
    w->b_flag[2][i] = (int8_t)r->failed;
    const char *strs[4] = {r->prompt ? r->prompt : "", r->completion ? r->completion : "",
                           r->extracted ? r->extracted : "", r->reason ? r->reason : ""};
    for (int k = 0; k < 4; k++) w->b_off[k][i] = stash(w, strs[k], strlen(strs[k]) + 1, 1);  // F_PROMPT .. F_REASON
    size_t np = r->n_prompt > 0 ? (size_t)r->n_prompt : 0, nt = r->n_tokens > 0 ? (size_t)r->n_tokens : 0;
    const void *arr[3] = {r->prompt_tokens, r->tokens, r->logp};
    size_t len[3] = {np, nt, nt}, elem[3] = {sizeof(int32_t), sizeof(int32_t), sizeof(float)};
    for (int k = 0; k < 3; k++) {
        int v = F_PTOK - F_PROMPT + k;
        w->b_len[v][i] = len[k];
        w->b_off[v][i] = stash(w, arr[k], len[k] * elem[k], elem[k]);
    }
    w->b_n++;
    if (r->failed && !w->failure[0]) snprintf(w->failure, sizeof w->failure, "%s", r->reason ? r->reason : "");
    return w->b_n == BATCH_ROWS || w->b_used >= BATCH_BYTES ? flush_rows(w) : 0;
}

int samples_truncate_after(samples_writer_t *w, int last_step) {
    if (w->seg >= 0 && w->seg_step > last_step) discard_segment(w);
    int keep = 0;
    while (keep < w->n_steps && w->steps[keep] <= last_step) keep++;
    if (keep == w->n_steps) return 0;
    int old_n = w->n_steps;
    w->n_steps = keep;
    if (write_index(w)) return w->n_steps = old_n, -1;  // the index first: it never names a missing file
    for (int i = keep; i < old_n; i++) {
        char p[1100];
        step_file(w, w->steps[i], "", p, sizeof p);
        unlink(p);
    }
    return 0;
}

long samples_count(const samples_writer_t *w) {
    long n = w->seg >= 0 ? w->seg_n + w->b_n : 0;  // buffered rows included
    for (int i = 0; i < w->n_steps; i++) n += w->rows[i];
    return n;
}

const char *samples_last_failure(const samples_writer_t *w) { return w->failure; }

int samples_close(samples_writer_t *w) {
    if (!w) return 0;
    int rc = samples_commit(w);
    writer_free(w);
    return rc;
}
