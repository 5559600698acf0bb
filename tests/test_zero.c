// tests/test_zero.c — ZeRO-1 in the optimizer (trainer/optim.h) across real ranks: run alone (a world of
// one) and under mpirun -np 2, 3 and 4 (tests/cmake/mpi.cmake). Each rank has its own gradients; the
// sharded optimizer (reduce-scatter, global norm from the shards, clip, AdamW on the shard, all-gather)
// is compared over three steps with the unsharded AdamW on the summed gradient, which every rank computes
// itself:
//   - gradients that sum exactly in any order (multiples of 2^-10): bit-identical parameters and moments;
//   - any gradients: within fp32 reduction-order tolerance, with clipping active;
//   - parameter counts not divisible by the world, and smaller than it (ranks with empty shards);
//   - after every step the parameters are bit-identical on all ranks;
//   - the same with the master kept in shards by the optimizer (optim_keep_master: AdamW on the shard, the
//     working copy all-gathered), and the shards gathered on rank 0 are the parameters;
//   - a non-finite gradient on one rank skips the update on every rank;
//   - checkpoint moments: gathered to rank 0 they are the whole moments; loaded from the whole moments, a
//     world of 1, 2, 3, 5 or 7 ranks takes exactly its shards (a state saved on N ranks resumes on M).
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "base/common.h"
#include "tests/testdist.h"
#include "tests/testutil.h"
#include "trainer/dist.h"
#include "trainer/optim.h"

static optim_config_t config(void) {
    optim_config_t c = {0};
    c.lr = 1e-2, c.beta1 = 0.9, c.beta2 = 0.95, c.eps = 1e-15, c.weight_decay = 0.1, c.grad_clip = 1.0;
    c.warmup = 2;
    return c;
}

// Rank r's gradient of step s: every rank can make any rank's, so each computes the sum itself.
static void grad_of(float *g, size_t n, int rank, int step, int exact) {
    uint64_t seed = 1000 + 31 * (uint64_t)rank + 7 * (uint64_t)step;
    test_fill(g, n, &seed, -2, 2);
    if (exact)
        for (size_t i = 0; i < n; i++) g[i] = (float)((int)(g[i] * 1024)) / 1024;
}

// Three steps of ZeRO-1 against the unsharded optimizer on the summed gradient. keep: the optimizer keeps its
// shard of the master (optim_keep_master) and the parameters are read from the working copy it all-gathers.
static void check_steps(dist_t *d, size_t n, int exact, int keep) {
    optim_config_t c = config();
    float *p = cispo_malloc((n + 1) * sizeof(float)), *pr = cispo_malloc((n + 1) * sizeof(float));
    float *g = cispo_malloc((n + 1) * sizeof(float)), *gs = cispo_malloc((n + 1) * sizeof(float));
    float *gr = cispo_malloc((n + 1) * sizeof(float)), *w = cispo_malloc((n + 1) * sizeof(float));
    uint64_t seed = 5;
    test_fill(p, n, &seed, -1, 1);  // the same parameters on every rank
    memcpy(pr, p, n * sizeof(float));
    memcpy(w, p, n * sizeof(float));
    optim_t z, ref;
    optim_init_zero(&z, backend_host(), &c, n, NULL, d);
    optim_init(&ref, &c, n);
    if (keep) {
        int kept = optim_keep_master(&z, p, w);
        test_check(kept == (d->world > 1), "n %zu, world %d: the optimizer keeps the master only when sharded", n,
                   d->world);
        memset(p, 0xff, n * sizeof(float));  // the model's master is gone: NaNs, never read again
        if (!kept) memcpy(p, w, n * sizeof(float));
    }
    float *cur = keep && z.keeps_master ? w : p;  // the parameters every rank computes with
    int ok_norm = 1, ok_same = 1;
    double worst_norm = 0;
    for (int s = 0; s < 3; s++) {
        memset(gs, 0, n * sizeof(float));
        for (int r = 0; r < d->world; r++) {
            grad_of(gr, n, r, s, exact);
            for (size_t i = 0; i < n; i++) gs[i] += gr[i];
        }
        grad_of(g, n, d->rank, s, exact);
        test_check(dist_reduce_scatter_sum_f32(d, g, n) == 0, "reduce-scatter: %s", cispo_last_error());
        double lr_z, lr_r;
        double nz = optim_step(&z, z.keeps_master ? NULL : p, g, &lr_z), nr = optim_step(&ref, pr, gs, &lr_r);
        double dn = fabs(nz - nr) / (nr > 0 ? nr : 1);
        worst_norm = dn > worst_norm ? dn : worst_norm;
        ok_norm &= (exact ? nz == nr : dn <= 1e-6) && lr_z == lr_r && (n < 1000 || nr > c.grad_clip);
        ok_same &= test_same_on_all_ranks(d, cur, n);
    }
    const char *how = keep ? ", master kept in shards" : "";
    test_check(ok_norm, "n %zu, world %d%s%s: the global norms agree (worst relative difference %.3g) and clip",
               n, d->world, exact ? ", exact sums" : "", how, worst_norm);
    test_check(ok_same, "n %zu, world %d%s: parameters bit-identical on all ranks after every step", n, d->world, how);
    test_check(z.t == 3 && ref.t == 3, "n %zu: three updates taken (%d, %d)", n, z.t, ref.t);
    double dp = test_max_rel_diff(cur, pr, n, 1e-3);
    if (exact)
        test_check(memcmp(cur, pr, n * sizeof(float)) == 0, "n %zu, world %d, exact sums%s: parameters after 3 steps "
                   "equal unsharded AdamW bit for bit (max rel diff %.3g)", n, d->world, how, dp);
    else
        TEST_LE(dp, 2e-6, "n %zu, world %d%s: parameters after 3 steps equal unsharded AdamW within fp32 summation order "
                "(max rel diff %.3g)", n, d->world, how, dp);
    // the whole master meets on rank 0: the kept shards gathered, or the parameters themselves
    float *full = d->rank == 0 ? cispo_malloc((n + 1) * sizeof(float)) : NULL;
    test_check(optim_gather_params(&z, cur, full, 0) == 0, "gather of the master: %s", cispo_last_error());
    if (d->rank == 0)
        test_check(!memcmp(full, cur, n * sizeof(float)), "n %zu, world %d%s: the master gathered on rank 0 is the "
                   "parameters every rank holds", n, d->world, how);
    free(full);
    // the moments meet on rank 0 as the whole moments
    float *m = d->rank == 0 ? cispo_malloc((n + 1) * sizeof(float)) : NULL;
    float *v = d->rank == 0 ? cispo_malloc((n + 1) * sizeof(float)) : NULL;
    test_check(optim_gather_moments(&z, m, v, 0) == 0, "gather of the moments: %s", cispo_last_error());
    if (d->rank == 0) {
        double dm = test_max_rel_diff(m, ref.m, n, 1e-3), dv = test_max_rel_diff(v, ref.v, n, 1e-3);
        if (exact)
            test_check(!memcmp(m, ref.m, n * sizeof(float)) && !memcmp(v, ref.v, n * sizeof(float)),
                       "n %zu, world %d, exact sums: gathered moments equal the unsharded ones bit for bit", n, d->world);
        else
            test_check(dm <= 1e-5 && dv <= 1e-5, "n %zu, world %d: gathered moments m (%.3g) and v (%.3g) equal the "
                       "unsharded ones", n, d->world, dm, dv);
    }
    free(m), free(v);
    optim_free(&z), optim_free(&ref);
    free(p), free(pr), free(g), free(gs), free(gr), free(w);
}

// A NaN on one rank's gradient: every rank skips, nothing changes.
static void check_nonfinite(dist_t *d) {
    const size_t n = 37;
    optim_config_t c = config();
    float p[37], p0[37], g[37];
    uint64_t seed = 9;
    test_fill(p, n, &seed, -1, 1);
    memcpy(p0, p, sizeof p);
    optim_t z;
    optim_init_zero(&z, backend_host(), &c, n, NULL, d);
    grad_of(g, n, d->rank, 0, 0);
    dist_reduce_scatter_sum_f32(d, g, n);
    optim_step(&z, p, g, NULL);
    memcpy(p0, p, sizeof p);
    float m0 = z.hi > z.lo ? z.m[0] : 0;
    grad_of(g, n, d->rank, 1, 0);
    if (d->rank == d->world - 1) g[n - 1] = NAN;  // in the last rank's own shard, unseen by the others
    dist_reduce_scatter_sum_f32(d, g, n);
    double gn = optim_step(&z, p, g, NULL);
    test_check(!isfinite(gn) && z.t == 1 && !memcmp(p, p0, sizeof p) && (z.hi == z.lo || z.m[0] == m0),
               "rank %d/%d: a NaN in rank %d's gradient skips the update everywhere (norm %g, t %d)", d->rank, d->world,
               d->world - 1, gn, z.t);
    optim_free(&z);
}

// Whole moments loaded into worlds of other sizes: each rank's shard is its slice; the shards tile [0, n).
static void check_reshard(void) {
    const size_t n = 11;
    float m[11], v[11];
    for (size_t i = 0; i < n; i++) m[i] = (float)i + 0.25f, v[i] = (float)(100 + i);
    optim_config_t c = config();
    const int worlds[] = {1, 2, 3, 5, 7, 13};
    for (int w = 0; w < 6; w++) {
        size_t covered = 0;
        int ok = 1;
        for (int r = 0; r < worlds[w]; r++) {
            dist_t fake = {.rank = r, .world = worlds[w]};  // only its shape: loading is no collective
            optim_t o;
            optim_init_zero(&o, backend_host(), &c, n, NULL, &fake);
            optim_load_moments(&o, m, v);
            ok &= o.lo == covered && o.hi >= o.lo;
            for (size_t i = o.lo; i < o.hi; i++) ok &= o.m[i - o.lo] == m[i] && o.v[i - o.lo] == v[i];
            covered = o.hi;
            optim_free(&o);
        }
        test_check(ok && covered == n, "moments of 11 parameters load as the shards of a world of %d", worlds[w]);
    }
}

int main(int argc, char **argv) {
    dist_t d;
    if (dist_init(&d, &argc, &argv)) {
        printf("%s\n", cispo_last_error());
        return 1;
    }
    // uneven shards (1001 and 4099 divide by none of 2, 3, 4), fewer parameters than ranks (1, 2, 3)
    const size_t sizes[] = {1001, 4099, 3, 2, 1};
    for (int k = 0; k < 5; k++) {
        check_steps(&d, sizes[k], 1, 0);
        check_steps(&d, sizes[k], 0, 0);
        check_steps(&d, sizes[k], 1, 1);
        check_steps(&d, sizes[k], 0, 1);
    }
    check_nonfinite(&d);
    check_reshard();
    // the trainer's switch: optim_init_on shards once optim_use_zero named the ranks, and not after NULL
    optim_config_t c = config();
    optim_t o;
    optim_use_zero(&d);
    optim_init_on(&o, backend_host(), &c, 1001, NULL);
    size_t b, e;
    dist_shard_range(d.world, d.rank, 1001, &b, &e);
    test_check(o.lo == (d.world > 1 ? b : 0) && o.hi == (d.world > 1 ? e : 1001) && (o.dp != NULL) == (d.world > 1),
               "optim_use_zero: optim_init_on holds the shard [%zu, %zu)", o.lo, o.hi);
    optim_free(&o);
    optim_use_zero(NULL);
    optim_init_on(&o, backend_host(), &c, 1001, NULL);
    test_check(o.lo == 0 && o.hi == 1001 && !o.dp, "optim_use_zero(NULL): whole moments again");
    optim_free(&o);
    int rc = test_finish(d.world > 1 ? "test_zero (mpi)" : "test_zero");
    dist_finalize(&d);
    return rc;
}
