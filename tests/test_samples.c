// tests/test_samples.c — rollout samples in HDF5: append, reopen and continue, truncate after a step
// (resume), every column read back through the HDF5 API (through the index's links, as h5py reads
// them), a step of more rows than one batch (every field checked), buffered rows dropped by a truncate,
// and crash safety: a writer killed with SIGKILL at random points always leaves an index that opens,
// lists only complete steps, and continues.
#include <dirent.h>
#include <hdf5.h>
#include <signal.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "base/common.h"
#include "tests/testutil.h"
#include "trainer/samples.h"

static int add(samples_writer_t *w, int step, int i) {
    int32_t pt[3] = {1, 2, 3}, tk[4] = {10 + i, 11, 12, 13};
    float lp[4] = {-0.5f * i, -1, -2, -3};
    char comp[64];
    snprintf(comp, sizeof comp, "answer \\boxed{%d} ünïcode", i);
    sample_record_t r = {.step = step, .prompt = "Compute 2+3.", .completion = comp, .prompt_tokens = pt, .n_prompt = 3,
                         .tokens = tk, .logp = lp, .n_tokens = 1 + i % 4, .reward = (float)(i % 2), .correct = i % 2,
                         .stop = i % 4, .extracted = "5", .reason = "equal"};
    return samples_append(w, &r);
}

// Rows of the committed steps, read through the index's links: -1 when the index cannot be read.
static long read_back(const char *path) {
    hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    if (f < 0) return -1;
    hid_t d = H5Dopen2(f, "steps", H5P_DEFAULT);
    int32_t steps[256];
    hid_t sp = H5Dget_space(d);
    hssize_t n = H5Sget_simple_extent_npoints(sp);
    H5Sclose(sp);
    long rows = 0;
    if (n > 256 || (n > 0 && H5Dread(d, H5T_NATIVE_INT32, H5S_ALL, H5S_ALL, H5P_DEFAULT, steps) < 0)) rows = -1;
    H5Dclose(d);
    for (hssize_t i = 0; i < n && rows >= 0; i++) {
        char name[64];
        snprintf(name, sizeof name, "step-%06d/step", steps[i]);
        hid_t s = H5Dopen2(f, name, H5P_DEFAULT);
        if (s < 0) {
            rows = -1;
            break;
        }
        hid_t ssp = H5Dget_space(s);
        rows += (long)H5Sget_simple_extent_npoints(ssp);
        H5Sclose(ssp);
        H5Dclose(s);
    }
    H5Fclose(f);
    return rows;
}

// Row i of the batch tests: strings and arrays of varied lengths (empty ones included, completions long
// enough that the writer's copy buffer grows within a batch), the reason NULL for some.
enum { BIG_ROWS = 600, BIG_STEP = 5 };
static char big_prompt[BIG_ROWS][64], big_comp[BIG_ROWS][3100], big_ext[BIG_ROWS][16], big_reason[BIG_ROWS][16];

static void big_strings(int i) {
    int np = i % 7 ? (i * 13) % 50 : 0, nc = i % 11 ? (i * 37) % 3000 : 0;
    for (int j = 0; j < np; j++) big_prompt[i][j] = (char)('a' + (i + j) % 26);
    big_prompt[i][np] = 0;
    for (int j = 0; j < nc; j++) big_comp[i][j] = (char)('A' + (i * 3 + j) % 26);
    big_comp[i][nc] = 0;
    if (nc > 20) memcpy(big_comp[i] + nc - 10, "ünïcode", sizeof "ünïcode");  // 9 bytes + NUL
    snprintf(big_ext[i], sizeof big_ext[i], i % 5 ? "%d" : "", i);
    snprintf(big_reason[i], sizeof big_reason[i], "r%d", i);
}
static int big_n_prompt(int i) { return i % 9; }
static int big_n_tokens(int i) { return (i * 7) % 23; }
static int32_t big_ptok(int i, int j) { return i * 100 + j; }
static int32_t big_tok(int i, int j) { return i * 1000 + j; }
static float big_logp(int i, int j) { return -(float)(i + j) / 64; }

static int add_big(samples_writer_t *w, int step, int i) {
    int32_t pt[16], tk[32];
    float lp[32];
    for (int j = 0; j < big_n_prompt(i); j++) pt[j] = big_ptok(i, j);
    for (int j = 0; j < big_n_tokens(i); j++) tk[j] = big_tok(i, j), lp[j] = big_logp(i, j);
    big_strings(i);
    sample_record_t r = {.step = step, .prompt = big_prompt[i], .completion = big_comp[i], .prompt_tokens = pt,
                         .n_prompt = big_n_prompt(i), .tokens = tk, .logp = lp, .n_tokens = big_n_tokens(i),
                         .reward = 0.25f * (float)i, .correct = i % 2, .stop = i % 4, .failed = i % 10 == 3,
                         .extracted = big_ext[i], .reason = i % 3 == 1 ? NULL : big_reason[i]};
    int rc = samples_append(w, &r);
    memset(pt, 0x55, sizeof pt), memset(tk, 0x55, sizeof tk), memset(lp, 0x55, sizeof lp);  // the writer copied them
    memset(big_comp[i], 'x', strlen(big_comp[i]));
    return rc;
}

// Reads dataset name of f (n rows of memory type t) into buf; 0 or -1.
static int read_col(hid_t f, const char *name, hid_t t, long n, void *buf) {
    hid_t d = H5Dopen2(f, name, H5P_DEFAULT);
    if (d < 0) return -1;
    hid_t sp = H5Dget_space(d);
    int ok = H5Sget_simple_extent_npoints(sp) == n && H5Dread(d, t, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf) >= 0;
    H5Sclose(sp);
    H5Dclose(d);
    return ok ? 0 : -1;
}

// Every field of step BIG_STEP's rows read back through the index at path and checked: mismatches, or -1.
static int check_big(const char *path, int rows) {
    hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    if (f < 0) return -1;
    char name[64];
    int32_t *step = malloc(sizeof(int32_t) * (size_t)rows);
    float *reward = malloc(sizeof(float) * (size_t)rows);
    int8_t *flag[3];
    char **str[4];
    hvl_t *vl[3];
    for (int k = 0; k < 3; k++) flag[k] = malloc((size_t)rows), vl[k] = malloc(sizeof(hvl_t) * (size_t)rows);
    for (int k = 0; k < 4; k++) str[k] = malloc(sizeof(char *) * (size_t)rows);
    hid_t st = H5Tcopy(H5T_C_S1);
    H5Tset_size(st, H5T_VARIABLE);
    H5Tset_cset(st, H5T_CSET_UTF8);
    hid_t vi = H5Tvlen_create(H5T_NATIVE_INT32), vf = H5Tvlen_create(H5T_NATIVE_FLOAT);
    const char *flags[3] = {"correct", "stop", "failed"}, *strs[4] = {"prompt", "completion", "extracted", "reason"},
               *vls[3] = {"prompt_tokens", "tokens", "logp"};
    int bad = 0;
#define COL(field) (snprintf(name, sizeof name, "step-%06d/%s", BIG_STEP, field), name)
    bad += read_col(f, COL("step"), H5T_NATIVE_INT32, rows, step) < 0;
    bad += read_col(f, COL("reward"), H5T_NATIVE_FLOAT, rows, reward) < 0;
    for (int k = 0; k < 3; k++) bad += read_col(f, COL(flags[k]), H5T_NATIVE_INT8, rows, flag[k]) < 0;
    for (int k = 0; k < 4; k++) bad += read_col(f, COL(strs[k]), st, rows, str[k]) < 0;
    for (int k = 0; k < 3; k++) bad += read_col(f, COL(vls[k]), k == 2 ? vf : vi, rows, vl[k]) < 0;
#undef COL
    for (int i = 0; i < rows && !bad; i++) {
        big_strings(i);
        int row_bad = step[i] != BIG_STEP || reward[i] != 0.25f * (float)i || flag[0][i] != i % 2 ||
                      flag[1][i] != i % 4 || flag[2][i] != (i % 10 == 3) || strcmp(str[0][i], big_prompt[i]) ||
                      strcmp(str[1][i], big_comp[i]) || strcmp(str[2][i], big_ext[i]) ||
                      strcmp(str[3][i], i % 3 == 1 ? "" : big_reason[i]) ||
                      vl[0][i].len != (size_t)big_n_prompt(i) || vl[1][i].len != (size_t)big_n_tokens(i) ||
                      vl[2][i].len != (size_t)big_n_tokens(i);
        for (int j = 0; j < big_n_prompt(i) && !row_bad; j++) row_bad = ((int32_t *)vl[0][i].p)[j] != big_ptok(i, j);
        for (int j = 0; j < big_n_tokens(i) && !row_bad; j++)
            row_bad = ((int32_t *)vl[1][i].p)[j] != big_tok(i, j) || ((float *)vl[2][i].p)[j] != big_logp(i, j);
        if (row_bad && bad++ < 3) printf("row %d of step %d differs\n", i, BIG_STEP);
    }
    hsize_t n = (hsize_t)rows;
    hid_t sp = H5Screate_simple(1, &n, NULL);
    for (int k = 0; k < 4; k++) H5Dvlen_reclaim(st, sp, H5P_DEFAULT, str[k]), free(str[k]);
    for (int k = 0; k < 3; k++) H5Dvlen_reclaim(k == 2 ? vf : vi, sp, H5P_DEFAULT, vl[k]), free(vl[k]), free(flag[k]);
    H5Sclose(sp);
    H5Tclose(st), H5Tclose(vi), H5Tclose(vf);
    free(step), free(reward);
    H5Fclose(f);
    return bad;
}

// The .tmp files left in dir (a discarded step leaves none).
static int count_tmp(const char *dir) {
    DIR *d = opendir(dir);
    struct dirent *e;
    int n = d ? 0 : -1;
    while (d && (e = readdir(d))) {
        size_t len = strlen(e->d_name);
        n += len > 4 && !strcmp(e->d_name + len - 4, ".tmp");
    }
    if (d) closedir(d);
    return n;
}

int main(void) {
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
    char dir[] = "/tmp/cispo_test_samples_XXXXXX", path[128];
    if (!test_check(mkdtemp(dir) != NULL, "temporary directory")) return test_finish("test_samples");
    snprintf(path, sizeof path, "%s/samples.h5", dir);
    samples_writer_t *w = samples_open(path, 0);
    if (!test_check(w != NULL, "create: %s", cispo_last_error())) return test_finish("test_samples");
    for (int i = 0; i < 6; i++) add(w, i / 2, i);  // steps 0,0,1,1,2,2
    test_check(samples_close(w) == 0, "close");
    w = samples_open(path, 1);
    test_check(w && samples_count(w) == 6, "reopen for append: %ld rows", w ? samples_count(w) : -1L);
    test_check(samples_truncate_after(w, 1) == 0 && samples_count(w) == 4, "truncate after step 1 leaves 4 rows");
    add(w, 2, 7);
    test_check(samples_count(w) == 5, "append after truncate");
    samples_close(w);

    hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    int32_t steps[3];
    hid_t d = H5Dopen2(f, "steps", H5P_DEFAULT);
    H5Dread(d, H5T_NATIVE_INT32, H5S_ALL, H5S_ALL, H5P_DEFAULT, steps);
    H5Dclose(d);
    test_check(steps[0] == 0 && steps[1] == 1 && steps[2] == 2, "index of steps");
    int32_t st1[2];
    d = H5Dopen2(f, "step-000001/step", H5P_DEFAULT);
    test_check(d >= 0 && H5Dread(d, H5T_NATIVE_INT32, H5S_ALL, H5S_ALL, H5P_DEFAULT, st1) >= 0 && st1[0] == 1 && st1[1] == 1,
               "step column through the link");
    H5Dclose(d);
    char *comp[2];
    hid_t st = H5Tcopy(H5T_C_S1);
    H5Tset_size(st, H5T_VARIABLE);
    H5Tset_cset(st, H5T_CSET_UTF8);
    d = H5Dopen2(f, "step-000000/completion", H5P_DEFAULT);
    H5Dread(d, st, H5S_ALL, H5S_ALL, H5P_DEFAULT, comp);
    test_check(!strcmp(comp[1], "answer \\boxed{1} ünïcode"), "completion strings (%s)", comp[1]);
    hid_t sp = H5Dget_space(d);
    H5Dvlen_reclaim(st, sp, H5P_DEFAULT, comp);
    H5Sclose(sp);
    H5Dclose(d);
    d = H5Dopen2(f, "step-000002/completion", H5P_DEFAULT);
    char *c2[1] = {NULL};
    hid_t sp2 = H5Dget_space(d);
    test_check(H5Sget_simple_extent_npoints(sp2) == 1 && H5Dread(d, st, H5S_ALL, H5S_ALL, H5P_DEFAULT, c2) >= 0 &&
                   !strcmp(c2[0], "answer \\boxed{7} ünïcode"),
               "the rewritten step holds only the new row");
    H5Dvlen_reclaim(st, sp2, H5P_DEFAULT, c2);
    H5Sclose(sp2);
    H5Dclose(d);
    hvl_t lp[2];
    hid_t vt = H5Tvlen_create(H5T_NATIVE_FLOAT);
    d = H5Dopen2(f, "step-000001/logp", H5P_DEFAULT);
    H5Dread(d, vt, H5S_ALL, H5S_ALL, H5P_DEFAULT, lp);
    test_check(lp[1].len == 4 && ((float *)lp[1].p)[0] == -1.5f, "logp variable-length rows");
    sp = H5Dget_space(d);
    H5Dvlen_reclaim(vt, sp, H5P_DEFAULT, lp);
    H5Sclose(sp);
    H5Dclose(d);
    float rw[2];
    d = H5Dopen2(f, "step-000000/reward", H5P_DEFAULT);
    H5Dread(d, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, rw);
    H5Dclose(d);
    test_check(rw[0] == 0 && rw[1] == 1, "reward column");
    H5Tclose(vt);
    H5Tclose(st);
    H5Fclose(f);
    char stale[160];
    snprintf(stale, sizeof stale, "%s/samples/step-000003.h5", dir);
    test_check(access(stale, F_OK) != 0, "truncated steps' files removed");

    // ---- batches: more rows than one batch in a step, every field read back ----
    char big[160], bigdir[160];
    snprintf(big, sizeof big, "%s/big.h5", dir);
    snprintf(bigdir, sizeof bigdir, "%s/big", dir);
    w = samples_open(big, 0);
    int append_bad = 0;
    for (int i = 0; w && i < BIG_ROWS; i++) {
        append_bad += add_big(w, BIG_STEP, i) != 0;
        if (i == 299) test_check(samples_count(w) == 300, "count includes buffered rows (%ld)", samples_count(w));
    }
    test_check(w && append_bad == 0, "%d rows in one step: %s", BIG_ROWS, append_bad ? cispo_last_error() : "ok");
    test_check(w && !strcmp(samples_last_failure(w), "r3"), "first failed reason (%s)", w ? samples_last_failure(w) : "");
    test_check(w && samples_commit(w) == 0 && samples_count(w) == BIG_ROWS, "commit of a step of several batches");
    for (int i = 0; w && i < 3; i++) add(w, BIG_STEP + 1, i);
    test_check(w && samples_count(w) == BIG_ROWS + 3 && samples_close(w) == 0, "close flushes the last batch");
    test_check(read_back(big) == BIG_ROWS + 3, "index rows %ld", read_back(big));
    test_check(check_big(big, BIG_ROWS) == 0, "every field of %d rows read back", BIG_ROWS);

    // ---- buffered rows of a step dropped by samples_truncate_after ----
    w = samples_open(big, 0);
    for (int i = 0; w && i < 10; i++) add(w, 0, i);
    test_check(w && samples_commit(w) == 0 && samples_count(w) == 10, "step 0 committed");
    for (int i = 0; w && i < 300; i++) add_big(w, 1, i);  // one batch written, 44 rows buffered
    test_check(w && samples_count(w) == 310 && samples_truncate_after(w, 0) == 0 && samples_count(w) == 10,
               "truncate drops a step written in part and buffered (%ld)", w ? samples_count(w) : -1L);
    for (int i = 0; w && i < 5; i++) add_big(w, 1, i);  // buffered only
    test_check(w && samples_truncate_after(w, 0) == 0 && samples_count(w) == 10, "truncate drops buffered rows");
    test_check(count_tmp(bigdir) == 0, "the dropped step's file removed (%d .tmp)", count_tmp(bigdir));
    for (int i = 0; w && i < 2; i++) add(w, 1, 20 + i);
    test_check(w && samples_close(w) == 0 && read_back(big) == 12, "rewritten step holds only its new rows (%ld)",
               read_back(big));
    hid_t bf = H5Fopen(big, H5F_ACC_RDONLY, H5P_DEFAULT);
    int64_t bigrows[2] = {0, 0};
    int32_t s1[2] = {0, 0};
    test_check(read_col(bf, "rows", H5T_NATIVE_INT64, 2, bigrows) == 0 && bigrows[0] == 10 && bigrows[1] == 2 &&
                   read_col(bf, "step-000001/step", H5T_NATIVE_INT32, 2, s1) == 0 && s1[0] == 1 && s1[1] == 1,
               "index rows %ld, %ld", (long)bigrows[0], (long)bigrows[1]);
    H5Fclose(bf);

    // ---- crash safety: SIGKILL at random moments of a writer appending 40 steps of 50 rows ----
    uint64_t seed = (uint64_t)time(NULL);
    int bad = 0;
    // rows after the last round's append: what a child killed before it rewrote the index leaves (round 0: what
    // the cases above left in the file)
    long prev_final = read_back(path);
    for (int round = 0; round < 8; round++) {
        pid_t pid = fork();
        if (pid == 0) {
            samples_writer_t *cw = samples_open(path, 0);
            for (int s = 0; cw && s < 40; s++)
                for (int i = 0; i < 50; i++) add(cw, s, i);
            samples_close(cw);
            _exit(0);
        }
        usleep((useconds_t)(2000 + test_rng_next(&seed) % 150000));
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
        long rows = read_back(path);
        w = samples_open(path, 1);
        long n = w ? samples_count(w) : -1;
        // whole steps of the child, or (killed before it truncated the file) the previous round's file
        if (rows < 0 || !w || rows != n || (rows % 50 && rows != prev_final))
            bad++, printf("round %d: index rows %ld, writer %ld\n", round, rows, n);
        if (w) test_check(add(w, 99, 1) == 0 && samples_close(w) == 0, "a killed file continues");
        prev_final = read_back(path);
    }
    test_check(bad == 0, "8 kills: the index always opens and lists only complete steps (%d bad)", bad);

    // not an HDF5 file: a clear error, no crash
    FILE *badf = fopen(path, "w");
    fputs("not hdf5", badf);
    fclose(badf);
    test_check(samples_open(path, 1) == NULL && strstr(cispo_last_error(), path), "bad file: %s", cispo_last_error());
    char cmd[160];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (test_failures == 0 && system(cmd)) {}
    return test_finish("test_samples");
}
