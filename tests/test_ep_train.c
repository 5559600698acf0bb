// tests/test_ep_train.c — `cispo train` with expert parallelism (run key ep) under mpirun, against the same
// run without it on the same ranks (the data slices and micro-batches are then the same, so only fp32
// summation order differs):
//   - 4 ranks, ep=2 x dp=2 (and with zero=0, and ep=4): the run announces what a rank holds (its experts
//     only: fewer parameters than the model), completes SFT and RL with identical replicas, SFT losses and the
//     checkpoint after 3 SFT updates (parameters and both AdamW moments) agree with ep=1, and the RL steps'
//     rollouts (response lengths, rewards) are ep=1's;
//   - the checkpoint of an EP run is an index and one shard per rank (trainer/checkpoint.h);
//   - resharding: a run halted after 1 SFT update on 4 ranks (ep 2 x dp 2, sharded) resumes on 1, 2 (ep 2),
//     3 (ep 3, 4 experts over 3 ranks) and 6 ranks (ep 2 x dp 3), and a single-file checkpoint of the ep=1
//     run resumes with those ep too, each taking step 2; every checkpoint equals the one the ep=1 run, saved
//     on 4 ranks and resumed on the same number, writes;
//   - the KL term's reference read from a sharded checkpoint (its experts only under EP) gives ep=1's kl_ref;
//   - cispo eval (alone and under mpirun with ep 2, 3), generate and convert read a sharded checkpoint and give
//     what they give on its HF export;
//   - a missing, stale or damaged shard stops a resume with a message naming the shard file;
//   - an ep that does not divide the world stops the run with a message naming both.
// CISPO_BIN, CISPO_MPIEXEC: the program and the mpirun to launch with (tests/cmake/ep.cmake).
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/common.h"
#include "tests/testshell.h"
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

// The value of key in the metrics.jsonl line of RL step `step` of run dir (NAN when absent).
static double rl_metric(const char *dir, int step, const char *key) {
    char path[700], head[40], k[64];
    snprintf(path, sizeof path, "%.600s/metrics.jsonl", dir);
    char *text = cispo_read_file(path, NULL);
    snprintf(head, sizeof head, "{\"step\": %d, ", step);
    snprintf(k, sizeof k, "\"%s\": ", key);
    double v = NAN;
    for (const char *line = text; line && *line;) {
        const char *nl = strchr(line, '\n');
        if (!strncmp(line, head, strlen(head))) {
            const char *p = strstr(line, k);
            if (p && (!nl || p < nl)) v = strtod(p + strlen(k), NULL);
        }
        line = nl ? nl + 1 : NULL;
    }
    free(text);
    return v;
}

static int exists(const char *path) { return access(path, F_OK) == 0; }

// adam_eps 1e-8, not M1's 1e-15: AdamW's first updates divide each gradient element by its own magnitude, so with
// eps 1e-15 an element whose gradient is only summation noise (~1e-12, summed in another order with the experts
// split) moves by +-lr either way, and the two runs' weights part by far more than fp32 rounding after one
// update (on one CPU: RL step 2's kl_ref 5% apart, entropy 5e-6; with 1e-8, 5e-5 and 3e-9)
static const char *args =
    "model=configs/models/tiny.yaml tokenizer=configs/tokenizers/demo/tokenizer.json train_data=arithmetic "
    "eval_data=arithmetic train_size=100 eval_size=9 sft_steps=3 sft_batch=7 steps=2 prompts_per_step=4 "
    "group_size=4 minibatches=2 max_new_tokens=12 save_every=0 reward_workers=1 seed=5 report=false samples=false "
    "adam_eps=1e-8";

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
        if (k) test_check(strstr(out_buf, "expert parallelism: 4 ranks") && strstr(out_buf, "of the model's 337664 "
                          "parameters") && !strstr(out_buf, "holds experts [0, 4)"),
                          "%s: the grid is announced, a rank holding some experts only: %s", runs[k][1], out_buf);
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
    // the EP runs' checkpoints: an index and one shard per rank; ep=1's one file
    for (int k = 0; k < 4; k++) {
        char sh[800];
        snprintf(a, sizeof a, "%s/%s/ckpt-000003.h5", dir, runs[k][0]);
        snprintf(sh, sizeof sh, "%s/%s/ckpt-000003.shard-00003-of-00004.h5", dir, runs[k][0]);
        test_check(exists(a) && exists(sh) == (k > 0), "%s: the checkpoint is %s", runs[k][1],
                   k ? "an index and 4 shards" : "one file");
    }
    // RL on with the split experts: the ep=2 and ep=1 runs go on to the end; the rollouts are the same
    for (int k = 0; k < 2; k++) {
        snprintf(cmd, sizeof cmd, "'%s' --oversubscribe -np 4 '%s' train %s out=%s/%s %s resume=auto", mpi, bin, args,
                 dir, runs[k][0], runs[k][1]);
        test_check(run(cmd) == 0 && strstr(out_buf, "parameters identical on all 4 ranks") && strstr(out_buf, "step    2/2"),
                   "4 ranks, %s: SFT and RL complete, replicas identical on all ranks: %s", runs[k][1], out_buf);
    }
    snprintf(a, sizeof a, "%s/ep1", dir), snprintf(b, sizeof b, "%s/ep2", dir);
    for (int st = 1; st <= 2; st++) {
        // the mean entropy over the sampled tokens tells the tokens apart (summation order aside)
        const char *keys[] = {"response_len_mean", "reward_mean", "entropy"};
        for (int q = 0; q < 3; q++) {
            double x = rl_metric(a, st, keys[q]), y = rl_metric(b, st, keys[q]);
            test_check(isfinite(x) && fabs(x - y) <= (q == 2 ? 1e-6 * fabs(x) : 0), "RL step %d: %s %.9g with ep=2 "
                       "(rollouts with the experts split) is ep=1's %.9g", st, keys[q], y, x);
        }
    }

    // resharding: saved on 4 ranks (ep 2 x dp 2) after step 1, resumed on 1, 2, 3 and 6 ranks for step 2
    for (int e = 0; e < 2; e++) {
        snprintf(cmd, sizeof cmd, "'%s' --oversubscribe -np 4 '%s' train %s out=%s/save%d ep=%d halt_after=1", mpi,
                 bin, args, dir, e, e ? 2 : 1);
        test_check(run(cmd) == 0 && strstr(out_buf, "halted after step 1"), "ep=%d: 4 ranks halt after step 1: %s",
                   e ? 2 : 1, out_buf);
    }
    // e = 0: ep=1 throughout (one file); 1: saved sharded with ep=2, resumed with ep[k]; 2: the one file of
    // e = 0 resumed with ep[k]
    const int np[] = {1, 2, 3, 6}, ep[] = {1, 2, 3, 2};
    for (int k = 0; k < 4; k++) {
        for (int e = 0; e < 3; e++) {
            if (e == 2 && ep[k] == 1) continue;
            char launch[700] = "";
            if (np[k] > 1) snprintf(launch, sizeof launch, "'%s' --oversubscribe -np %d ", mpi, np[k]);
            snprintf(cmd, sizeof cmd, "rm -rf '%s/res%d_%d' && cp -r '%s/save%d' '%s/res%d_%d' && %s'%s' train %s "
                     "out=%s/res%d_%d ep=%d resume=auto halt_after=2", dir, e, np[k], dir, e == 1, dir, e, np[k],
                     launch, bin, args, dir, e, np[k], e ? ep[k] : 1);
            test_check(run(cmd) == 0 && strstr(out_buf, "resumed from") && strstr(out_buf, "halted after step 2"),
                       "saved on 4 ranks with ep=%d, resumed on %d with ep=%d: %s", e == 1 ? 2 : 1, np[k],
                       e ? ep[k] : 1, out_buf);
        }
        for (int e = 1; e < 3; e++) {
            if (e == 2 && ep[k] == 1) continue;
            snprintf(a, sizeof a, "%s/res0_%d/ckpt-000002.h5", dir, np[k]);
            snprintf(b, sizeof b, "%s/res%d_%d/ckpt-000002.h5", dir, e, np[k]);
            double dz = ckpt_diff(b, a);
            test_check(dz <= 1e-4, "saved on 4 ranks (%s), resumed on %d (ep %d): parameters and moments after step 2 "
                       "equal the unsplit run's (max rel diff %.3g)", e == 1 ? "ep 2 x dp 2, sharded" : "ep 1, one file",
                       np[k], ep[k], dz);
        }
    }

    // the KL term's frozen reference under EP (kl_ref is a mean of small log-prob differences: fp32 sums move it
    // by ~1e-4 relative): read from the sharded checkpoint (its experts only), its
    // forwards and the log pi_old recompute served apart; 3 prompts of 4 samples over 4 ranks
    for (int e = 1; e <= 2; e++) {
        snprintf(cmd, sizeof cmd, "'%s' --oversubscribe -np 4 '%s' train %s out=%s/kl%d ep=%d sft_steps=0 "
                 "prompts_per_step=3 kl_coef=0.1 old_logprobs=recompute ref_model=%s/save1/ckpt-000001.h5", mpi, bin,
                 args, dir, e, e, dir);
        test_check(run(cmd) == 0 && strstr(out_buf, "parameters identical on all 4 ranks"), "KL reference, ep=%d: %s",
                   e, out_buf);
    }
    // both steps: step 2's after an update whose sums differ in order between the splits (see args' adam_eps)
    snprintf(a, sizeof a, "%s/kl1", dir), snprintf(b, sizeof b, "%s/kl2", dir);
    for (int st = 1; st <= 2; st++) {
        double x = rl_metric(a, st, "kl_ref"), y = rl_metric(b, st, "kl_ref");
        test_check(x > 0 && fabs(x - y) <= 2e-3 * x, "RL step %d: kl_ref %.9g against the sharded reference with "
                   "ep=2 is ep=1's %.9g", st, y, x);
    }

    // the commands that read a model: on the sharded checkpoint as on its HF export
    char ck[700], hf[700], outs[4][4096];
    snprintf(ck, sizeof ck, "%s/save1/ckpt-000001.h5", dir);
    snprintf(hf, sizeof hf, "%s/save1_hf", dir);
    snprintf(cmd, sizeof cmd, "'%s' convert '%s' '%s'", bin, ck, hf);
    test_check(run(cmd) == 0 && strstr(out_buf, "337664 parameters"), "convert reads the shards: %s", out_buf);
    const char *eval_args = "tokenizer=configs/tokenizers/demo/tokenizer.json eval_data=arithmetic eval_size=9 "
                            "max_new_tokens=12 reward_workers=1 seed=5 eval_greedy=false eval_samples=2";
    const char *how[4] = {"", "", "--oversubscribe -np 2", "--oversubscribe -np 3"};
    for (int q = 0; q < 4; q++) {
        char launch[700] = "";
        if (q >= 2) snprintf(launch, sizeof launch, "'%s' %s ", mpi, how[q]);
        snprintf(cmd, sizeof cmd, "%s'%s' eval model='%s' %s %s", launch, bin, q == 1 ? hf : ck, eval_args,
                 q == 2 ? "ep=2" : q == 3 ? "ep=3" : "");
        test_check(run(cmd) == 0 && strstr(out_buf, "\"mean_len\""), "eval %d: %s", q, out_buf);
        const char *j = strstr(out_buf, "{\"accuracy\"");
        snprintf(outs[q], sizeof outs[q], "%.*s", j ? (int)strcspn(j, ",\n") + 40 : 0, j ? j : "");
    }
    for (int q = 1; q < 4; q++)
        test_check(outs[0][0] && !strcmp(outs[0], outs[q]), "eval of the sharded checkpoint (%s) == %s (%s)", outs[0],
                   q == 1 ? "of its HF export" : q == 2 ? "under mpirun -np 2 with ep=2" : "under mpirun -np 3 with ep=3",
                   outs[q]);
    snprintf(a, sizeof a, "%s/prompt.txt", dir);
    FILE *pf = fopen(a, "w");
    if (pf) fputs("5 17 33 2 9\n", pf), fclose(pf);
    for (int q = 0; q < 2; q++) {
        snprintf(cmd, sizeof cmd, "'%s' generate --model '%s' --prompt-tokens '%s' --max-new 10 --seed 3 --no-eos", bin,
                 q ? hf : ck, a);
        test_check(run(cmd) == 0, "generate %d: %s", q, out_buf);
        snprintf(outs[q], sizeof outs[q], "%.4000s", out_buf);
    }
    test_check(!strcmp(outs[0], outs[1]) && strlen(outs[0]) > 10, "generate on the sharded checkpoint == on its HF "
               "export: %s", outs[0]);

    // bad shards: each resume is refused, the message naming the file
    const char *damage[3][2] = {{"rm '%s'", "cannot open"},
                                {"cp '%s/ep2/ckpt-000003.shard-00001-of-00004.h5' '%s'", "of step 3"},
                                {"head -c 2000 '%s/save1/ckpt-000001.shard-00000-of-00004.h5' > '%s.x' && mv '%s.x' '%s'",
                                 "damaged"}};
    for (int q = 0; q < 3; q++) {
        char shard[800], fix[3000];
        snprintf(shard, sizeof shard, "%s/bad%d/ckpt-000001.shard-00001-of-00004.h5", dir, q);
        if (q == 0) snprintf(fix, sizeof fix, damage[0][0], shard);
        else if (q == 1) snprintf(fix, sizeof fix, damage[1][0], dir, shard);
        else snprintf(fix, sizeof fix, damage[2][0], dir, shard, shard, shard);
        snprintf(cmd, sizeof cmd, "rm -rf '%s/bad%d' && cp -r '%s/save1' '%s/bad%d' && %s && '%s' --oversubscribe -np 2 "
                 "'%s' train %s out=%s/bad%d ep=2 resume=auto halt_after=2", dir, q, dir, dir, q, fix, mpi, bin, args,
                 dir, q);
        test_check(run(cmd) != 0 && strstr(out_buf, shard) && strstr(out_buf, damage[q][1]),
                   "a %s shard stops the resume, naming it: %s", q == 0 ? "missing" : q == 1 ? "stale" : "damaged",
                   out_buf);
    }

    // a grid that does not fit the world
    snprintf(cmd, sizeof cmd, "'%s' --oversubscribe -np 2 '%s' train %s out=%s/bad ep=3", mpi, bin, args, dir);
    test_check(run(cmd) != 0 && strstr(out_buf, "key 'ep': 3 does not divide the 2 ranks"),
               "ep=3 on 2 ranks is refused: %s", out_buf);

    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd)) fprintf(stderr, "could not remove %s\n", dir);
    return test_finish("test_ep_train");
}
