// tests/test_samples.c — rollout samples in HDF5: append, reopen and continue, truncate after a
// step (resume), and every column read back through the HDF5 API with its values.
#include <hdf5.h>
#include <string.h>
#include <unistd.h>

#include "base/common.h"
#include "tests/testutil.h"
#include "trainer/samples.h"

static void add(samples_writer_t *w, int step, int i) {
    int32_t pt[3] = {1, 2, 3}, tk[4] = {10 + i, 11, 12, 13};
    float lp[4] = {-0.5f * i, -1, -2, -3};
    char comp[64];
    snprintf(comp, sizeof comp, "answer \\boxed{%d} ünïcode", i);
    sample_record_t r = {.step = step, .prompt = "Compute 2+3.", .completion = comp, .prompt_tokens = pt, .n_prompt = 3,
                         .tokens = tk, .logp = lp, .n_tokens = 1 + i % 4, .reward = (float)(i % 2), .correct = i % 2,
                         .stop = i % 4, .extracted = "5", .reason = "equal"};
    test_check(samples_append(w, &r) == 0, "append: %s", cispo_last_error());
}

int main(void) {
    const char *path = "/tmp/cispo_test_samples.h5";
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
    int32_t steps[5];
    hid_t d = H5Dopen2(f, "step", H5P_DEFAULT);
    H5Dread(d, H5T_NATIVE_INT32, H5S_ALL, H5S_ALL, H5P_DEFAULT, steps);
    H5Dclose(d);
    test_check(steps[0] == 0 && steps[3] == 1 && steps[4] == 2, "step column");
    char *comp[5];
    hid_t st = H5Tcopy(H5T_C_S1);
    H5Tset_size(st, H5T_VARIABLE);
    H5Tset_cset(st, H5T_CSET_UTF8);
    d = H5Dopen2(f, "completion", H5P_DEFAULT);
    H5Dread(d, st, H5S_ALL, H5S_ALL, H5P_DEFAULT, comp);
    test_check(!strcmp(comp[1], "answer \\boxed{1} ünïcode") && !strcmp(comp[4], "answer \\boxed{7} ünïcode"),
               "completion strings (%s)", comp[4]);
    hid_t sp = H5Dget_space(d);
    H5Dvlen_reclaim(st, sp, H5P_DEFAULT, comp);
    H5Sclose(sp);
    H5Dclose(d);
    hvl_t lp[5];
    hid_t vt = H5Tvlen_create(H5T_NATIVE_FLOAT);
    d = H5Dopen2(f, "logp", H5P_DEFAULT);
    H5Dread(d, vt, H5S_ALL, H5S_ALL, H5P_DEFAULT, lp);
    test_check(lp[3].len == 4 && ((float *)lp[3].p)[0] == -1.5f && lp[4].len == 4 && ((float *)lp[4].p)[0] == -3.5f,
               "logp variable-length rows");
    sp = H5Dget_space(d);
    H5Dvlen_reclaim(vt, sp, H5P_DEFAULT, lp);
    H5Sclose(sp);
    H5Dclose(d);
    float rw[5];
    d = H5Dopen2(f, "reward", H5P_DEFAULT);
    H5Dread(d, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, rw);
    H5Dclose(d);
    test_check(rw[1] == 1 && rw[2] == 0 && rw[4] == 1, "reward column");
    H5Tclose(vt);
    H5Tclose(st);
    H5Fclose(f);
    // not an HDF5 file: a clear error, no crash
    FILE *bad = fopen(path, "w");
    fputs("not hdf5", bad);
    fclose(bad);
    test_check(samples_open(path, 1) == NULL && strstr(cispo_last_error(), path), "bad file: %s", cispo_last_error());
    unlink(path);
    return test_finish("test_samples");
}
