// tests/test_samples.c — rollout samples in HDF5: append, reopen and continue, truncate after a step
// (resume), every column read back through the HDF5 API (through the index's links, as h5py reads
// them), and crash safety: a writer killed with SIGKILL at random points always leaves an index that
// opens, lists only complete steps, and continues.
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

    // ---- crash safety: SIGKILL at random moments of a writer appending 40 steps of 50 rows ----
    uint64_t seed = (uint64_t)time(NULL);
    int bad = 0;
    long prev_final = -1;  // rows after the last round's append: what a child killed before it reopened leaves
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
