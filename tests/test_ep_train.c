// tests/test_ep_train.c — `cispo train` with expert parallelism (run key ep) under mpirun, against the same
// run without it on the same ranks (the data slices and micro-batches are then the same, so only fp32
// summation order differs):
//   - 4 ranks, ep=2 x dp=2 (and with zero=0): the run completes SFT and RL with identical parameters on all
//     ranks; SFT losses and the checkpoint after 3 SFT updates (parameters and both AdamW moments) agree
//     with ep=1;
//   - resharding: a run halted after 1 SFT update on 4 ranks (ep 2 x dp 2) resumes on 1, 2 (ep 2), 3 (ep 3,
//     4 experts over 3 ranks) and 6 ranks (ep 2 x dp 3), each taking step 2; every checkpoint equals the one
//     the ep=1 run, saved on 4 ranks and resumed on the same number, writes;
//   - an ep that does not divide the world stops the run with a message naming both.
// The checkpoint is one whole-layout file (trainer/checkpoint.h), the same a CUDA run writes and reads.
// CISPO_BIN, CISPO_MPIEXEC: the program and the mpirun to launch with (tests/cmake/ep.cmake).
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/common.h"
#include "tests/testutil.h"
#include "trainer/checkpoint.h"

static char out_buf[1 << 20];

static int run(const char *cmd) { return test_run_shell(cmd, out_buf, sizeof out_buf); }

// Largest |a - b| / (1e-3 + |b|) over the parameters and both moments of two checkpoints.
static double ckpt_diff(const char *a, const char *b) {
    checkpoint_t x, y;
    if (checkpoint_load(a, &x)) return INFINITY;
    if (checkpoint_load(b, &y)) return checkpoint_free(&x), INFINITY;
    double w = x.table.n_floats == y.table.n_floats && x.m && y.m ? 0 : INFINITY;
    for (size_t i = 0; isfinite(w) && i < x.table.n_floats; i++) {
        const float xs[3] = {x.params[i], x.m[i], x.v[i]}, ys[3] = {y.params[i], y.m[i], y.v[i]};
        for (int k = 0; k < 3; k++) {
            double d = fabs((double)xs[k] - ys[k]) / (1e-3 + fabs((double)ys[k]));
            if (!(d <= w)) w = d;
        }
    }
    checkpoint_free(&x), checkpoint_free(&y);
    return w;
}

static double sft_loss(const char *dir, int step) {
    char path[700];
    snprintf(path, sizeof path, "%.600s/sft_metrics.jsonl", dir);
    char *text = cispo_read_file(path, NULL);
    double v = NAN;
    char key[32];
    snprintf(key, sizeof key, "{\"step\": %d, \"loss\": ", step);
    const char *p = text ? strstr(text, key) : NULL;
    if (p) v = strtod(p + strlen(key), NULL);
    free(text);
    return v;
}

static const char *args =
    "model=configs/models/tiny.yaml tokenizer=configs/tokenizers/demo/tokenizer.json train_data=arithmetic "
    "eval_data=arithmetic train_size=100 eval_size=9 sft_steps=3 sft_batch=7 steps=2 prompts_per_step=4 "
    "group_size=4 minibatches=2 max_new_tokens=12 save_every=0 reward_workers=1 seed=5 report=false samples=false";

int main(void) {
    const char *bin = getenv("CISPO_BIN"), *mpi = getenv("CISPO_MPIEXEC");
    if (!test_check(bin && mpi, "CISPO_BIN and CISPO_MPIEXEC set (tests/cmake/ep.cmake)")) return test_finish("test_ep_train");
    char dir[] = "/tmp/cispo_test_ep_train_XXXXXX";
    if (!test_check(mkdtemp(dir) != NULL, "temporary directory")) return test_finish("test_ep_train");
    char cmd[8192], a[700], b[700];

    // whole runs on 4 ranks: ep 2 x dp 2 against ep 1, and the checkpoints after the 3 SFT updates
    const char *runs[][2] = {{"ep1", "ep=1"}, {"ep2", "ep=2"}, {"ep2z0", "ep=2 zero=0"}, {"ep4", "ep=4"}};
    for (int k = 0; k < 4; k++) {
        snprintf(cmd, sizeof cmd, "'%s' --oversubscribe -np 4 '%s' train %s out=%s/%s %s halt_after=3", mpi, bin, args,
                 dir, runs[k][0], runs[k][1]);
        test_check(run(cmd) == 0 && strstr(out_buf, "halted after step 3"), "4 ranks, %s: SFT halts: %s", runs[k][1],
                   out_buf);
        if (k) test_check(strstr(out_buf, "expert parallelism: 4 ranks") != NULL, "%s: the grid is announced: %s",
                          runs[k][1], out_buf);
    }
    snprintf(a, sizeof a, "%s/ep1", dir);
    for (int k = 1; k < 4; k++) {
        snprintf(b, sizeof b, "%s/%s", dir, runs[k][0]);
        double l1 = sft_loss(a, 1), l2 = sft_loss(b, 1), l3 = sft_loss(a, 3), l4 = sft_loss(b, 3);
        test_check(isfinite(l1) && fabs(l1 - l2) <= 1e-5 * fabs(l1) && fabs(l3 - l4) <= 1e-4 * fabs(l3),
                   "%s: SFT losses of steps 1 and 3 equal ep=1's (%.9g %.9g, %.9g %.9g)", runs[k][1], l1, l2, l3, l4);
        snprintf(a, sizeof a, "%s/ep1/ckpt-000003.h5", dir);
        snprintf(b, sizeof b, "%s/%s/ckpt-000003.h5", dir, runs[k][0]);
        double dz = ckpt_diff(b, a);
        test_check(dz <= 1e-4, "%s: parameters and moments after 3 AdamW updates equal ep=1's (max rel diff %.3g)",
                   runs[k][1], dz);
        snprintf(a, sizeof a, "%s/ep1", dir);
    }
    // RL on with the split experts: the ep=2 run goes on to the end
    snprintf(cmd, sizeof cmd, "'%s' --oversubscribe -np 4 '%s' train %s out=%s/ep2 ep=2 resume=auto", mpi, bin, args, dir);
    test_check(run(cmd) == 0 && strstr(out_buf, "parameters identical on all 4 ranks") && strstr(out_buf, "step    2/2"),
               "4 ranks, ep=2: SFT and RL complete, parameters identical on all ranks: %s", out_buf);

    // resharding: saved on 4 ranks (ep 2 x dp 2) after step 1, resumed on 1, 2, 3 and 6 ranks for step 2
    for (int e = 0; e < 2; e++) {
        snprintf(cmd, sizeof cmd, "'%s' --oversubscribe -np 4 '%s' train %s out=%s/save%d ep=%d halt_after=1", mpi,
                 bin, args, dir, e, e ? 2 : 1);
        test_check(run(cmd) == 0 && strstr(out_buf, "halted after step 1"), "ep=%d: 4 ranks halt after step 1: %s",
                   e ? 2 : 1, out_buf);
    }
    const int np[] = {1, 2, 3, 6}, ep[] = {1, 2, 3, 2};
    for (int k = 0; k < 4; k++) {
        for (int e = 0; e < 2; e++) {
            char launch[700] = "";
            if (np[k] > 1) snprintf(launch, sizeof launch, "'%s' --oversubscribe -np %d ", mpi, np[k]);
            snprintf(cmd, sizeof cmd, "rm -rf '%s/res%d_%d' && cp -r '%s/save%d' '%s/res%d_%d' && %s'%s' train %s "
                     "out=%s/res%d_%d ep=%d resume=auto halt_after=2", dir, e, np[k], dir, e, dir, e, np[k], launch,
                     bin, args, dir, e, np[k], e ? ep[k] : 1);
            test_check(run(cmd) == 0 && strstr(out_buf, "resumed from") && strstr(out_buf, "halted after step 2"),
                       "saved on 4 ranks with ep=%d, resumed on %d with ep=%d: %s", e ? 2 : 1, np[k], e ? ep[k] : 1,
                       out_buf);
        }
        snprintf(a, sizeof a, "%s/res0_%d/ckpt-000002.h5", dir, np[k]);
        snprintf(b, sizeof b, "%s/res1_%d/ckpt-000002.h5", dir, np[k]);
        double dz = ckpt_diff(b, a);
        test_check(dz <= 1e-4, "saved on 4 ranks (ep 2 x dp 2), resumed on %d (ep %d): parameters and moments after "
                   "step 2 equal the unsplit run's (max rel diff %.3g)", np[k], ep[k], dz);
    }

    // a grid that does not fit the world
    snprintf(cmd, sizeof cmd, "'%s' --oversubscribe -np 2 '%s' train %s out=%s/bad ep=3", mpi, bin, args, dir);
    test_check(run(cmd) != 0 && strstr(out_buf, "key 'ep': 3 does not divide the 2 ranks"),
               "ep=3 on 2 ranks is refused: %s", out_buf);

    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd)) fprintf(stderr, "could not remove %s\n", dir);
    return test_finish("test_ep_train");
}
