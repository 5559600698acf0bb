// tests/test_dist.c — MPI collectives and ZeRO-1 across real ranks. Run under mpirun with 1, 2 or 3
// ranks (tests/cmake/mpi.cmake): sums and broadcasts of sizes that do not divide evenly; a ZeRO-1
// AdamW step (reduce-scatter gradients, update own shard, all-gather) equals the plain step on the
// all-reduced gradient bit for bit on every rank (gradients chosen so that sums are exact in any
// order: MPI does not promise one order for all-reduce and reduce). The groups of expert parallelism:
// dist_split into groups with their own ranks and collectives, the sum to one rank, the all-gather of
// ints, and block exchanges (two in flight at once, matched in the order posted; blocks of zero bytes).
// A failed command's end (dist_fail), launched by the world of one under mpirun -np 3 (CISPO_MPIEXEC): when
// every rank fails the job ends without MPI_Abort; a rank that fails alone, its peers waiting for it in an
// all-reduce, stops the job with its exit status instead of hanging.
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/common.h"
#include "kernels/cpu/ops_cpu.h"
#include "tests/testshell.h"
#include "tests/testutil.h"
#include "trainer/dist.h"

// The ranks of `test_dist --fail alone|all`: the last rank (alone) or every rank fails with status 3.
static int fail_mode(dist_t *d, const char *mode) {
    int alone = !strcmp(mode, "alone");
    if (alone && d->rank != d->world - 1) {
        float x = 1;
        dist_allreduce_sum_f32(d, &x, 1);  // waits for the failed rank: only MPI_Abort ends it
        printf("rank %d: the all-reduce returned\n", d->rank);
        return 0;
    }
    fprintf(stderr, "rank %d: failing (%s)\n", d->rank, mode);
    dist_fail(d, 3);
    dist_finalize(d);
    return 3;
}

static void test_fail_launch(void) {
    const char *mpi = getenv("CISPO_MPIEXEC");
    char self[512], cmd[1400];
    static char out[1 << 16];
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    if (!mpi || n <= 0) {
        printf("test_dist: CISPO_MPIEXEC unset, the failure launches skipped\n");
        return;
    }
    self[n] = 0;
    for (int alone = 0; alone < 2; alone++) {
        snprintf(cmd, sizeof cmd, "'%s' --oversubscribe -np 3 '%s' --fail %s", mpi, self, alone ? "alone" : "all");
        double t0 = cispo_now();
        int rc = test_run_shell(cmd, out, sizeof out);
        double took = cispo_now() - t0;
        if (alone)
            test_check(rc == 3 && strstr(out, "rank 2: failing") &&
                       strstr(out, "rank 2 failed, and not every rank did") && !strstr(out, "all-reduce returned") &&
                       took < DIST_FAIL_WAIT_S + 60,
                       "a rank failing alone stops the job with its status (rc %d, %.1f s): %s", rc, took, out);
        else
            test_check(rc == 3 && strstr(out, "rank 0: failing") && strstr(out, "rank 2: failing") &&
                       !strstr(out, "not every rank did") && !strstr(out, "MPI_ABORT"),
                       "every rank failing ends the job without an abort (rc %d): %s", rc, out);
    }
}

int main(int argc, char **argv) {
    if (!dist_launched()) test_fail_launch();  // before this process starts MPI as a world of one
    dist_t d;
    if (dist_init(&d, &argc, &argv)) {
        printf("%s\n", cispo_last_error());
        return 1;
    }
    if (argc == 3 && !strcmp(argv[1], "--fail")) return fail_mode(&d, argv[2]);
    enum { N = 1001 };
    float a[N], want[N];
    for (int i = 0; i < N; i++) {
        a[i] = (float)(d.rank + 1) * 0.5f + (float)i;
        want[i] = 0;
        for (int r = 0; r < d.world; r++) want[i] += (float)(r + 1) * 0.5f + (float)i;
    }
    test_check(dist_allreduce_sum_f32(&d, a, N) == 0, "all-reduce: %s", cispo_last_error());
    test_check(memcmp(a, want, sizeof a) == 0, "rank %d: all-reduce sums", d.rank);
    double x[3] = {d.rank, 1, -2.5 * d.rank};
    dist_allreduce_sum_f64(&d, x, 3);
    double w0 = d.world * (d.world - 1) / 2.0;
    test_check(x[0] == w0 && x[1] == d.world && x[2] == -2.5 * w0, "rank %d: f64 all-reduce", d.rank);
    float b[7];
    for (int i = 0; i < 7; i++) b[i] = d.rank == d.world - 1 ? (float)i * 3 : -1;
    dist_broadcast_f32(&d, b, 7, d.world - 1);
    test_check(b[6] == 18 && b[0] == 0, "rank %d: broadcast from the last rank", d.rank);

    // shard ranges cover [0, N) exactly once, balanced
    size_t covered = 0, prev_end = 0, lo = N, hi = 0;
    for (int r = 0; r < d.world; r++) {
        size_t s, e;
        dist_shard_range(d.world, r, N, &s, &e);
        test_check(s == prev_end, "shards are contiguous");
        prev_end = e;
        covered += e - s;
        lo = e - s < lo ? e - s : lo;
        hi = e - s > hi ? e - s : hi;
    }
    test_check(covered == N && hi - lo <= 1, "shards cover the buffer, balanced");

    // ZeRO-1 AdamW step vs the replicated step
    uint64_t seed = 11;
    float p[N], m[N] = {0}, v[N] = {0}, g[N], p2[N], m2[N] = {0}, v2[N] = {0}, g2[N];
    test_fill(p, N, &seed, -1, 1);  // same parameters on every rank (same seed)
    memcpy(p2, p, sizeof p);
    uint64_t gs = 100 + (uint64_t)d.rank;
    test_fill(g, N, &gs, -1, 1);    // different gradients per rank, multiples of 2^-10 so that sums
    for (int i = 0; i < N; i++) g[i] = (float)((int)(g[i] * 1024)) / 1024;  // are exact in any order
    memcpy(g2, g, sizeof g);
    dist_allreduce_sum_f32(&d, g2, N);
    adamw_step_cpu(p2, m2, v2, g2, 1.0f, N, 1e-2f, 0.9f, 0.95f, 1e-15f, 0.1f, 1);
    size_t s, e;
    dist_shard_range(d.world, d.rank, N, &s, &e);
    test_check(dist_reduce_scatter_sum_f32(&d, g, N) == 0, "reduce-scatter");
    adamw_step_cpu(p + s, m + s, v + s, g + s, 1.0f, e - s, 1e-2f, 0.9f, 0.95f, 1e-15f, 0.1f, 1);
    test_check(dist_allgather_f32(&d, p, N) == 0, "all-gather");
    test_check(memcmp(p, p2, sizeof p) == 0, "rank %d/%d: ZeRO-1 step equals the replicated step bit for bit", d.rank,
               d.world);

    // groups: even and odd world ranks; sums within a group only
    dist_t grp;
    test_check(dist_split(&d, d.rank % 2, d.rank, &grp) == 0, "split: %s", cispo_last_error());
    int gsize = d.world == 1 ? 1 : (d.world + (d.rank % 2 ? 0 : 1)) / 2;
    test_check(grp.world == gsize && grp.rank == d.rank / 2, "rank %d: group rank %d of %d (want %d of %d)", d.rank,
               grp.rank, grp.world, d.rank / 2, gsize);
    double gx = d.rank, gw = 0;
    for (int r = d.rank % 2; r < d.world; r += 2) gw += r;
    dist_allreduce_sum_f64(&grp, &gx, 1);
    test_check(gx == gw, "rank %d: all-reduce within the group gives %g (want %g)", d.rank, gx, gw);
    float rs[5];
    for (int i = 0; i < 5; i++) rs[i] = (float)(d.rank + i);
    test_check(dist_reduce_sum_f32(&d, rs, 5, d.world - 1) == 0, "reduce: %s", cispo_last_error());
    if (d.rank == d.world - 1) test_check(rs[4] == (float)(w0 + 4 * d.world), "reduce to the last rank: %g", rs[4]);
    int32_t mine[2] = {d.rank, -d.rank}, all[2 * 8];
    if (d.world <= 8) {
        test_check(dist_allgather_i32(&d, mine, all, 2) == 0, "all-gather of ints: %s", cispo_last_error());
        int ok = 1;
        for (int r = 0; r < d.world; r++) ok &= all[2 * r] == r && all[2 * r + 1] == -r;
        test_check(ok, "rank %d: all-gather of ints in rank order", d.rank);
    }
    // every rank sends rank r (r + 1) bytes of value 10 * me + r, as two exchanges in flight
    {
        const int W = d.world;
        char *sendb = cispo_malloc((size_t)W * W + 1), *recvb = cispo_calloc((size_t)W * W + 1, 1);
        int *sp = cispo_malloc(sizeof(int) * (size_t)(W + 1)), *rp = cispo_malloc(sizeof(int) * (size_t)(W + 1));
        size_t *so = cispo_malloc(sizeof(size_t) * (size_t)(W + 1)), *sn = cispo_malloc(sizeof(size_t) * (size_t)(W + 1));
        size_t *ro = cispo_malloc(sizeof(size_t) * (size_t)(W + 1)), *rn = cispo_malloc(sizeof(size_t) * (size_t)(W + 1));
        for (int r = 0; r < W; r++) {
            sp[r] = r, so[r] = (size_t)r * W, sn[r] = (size_t)r + 1;
            memset(sendb + so[r], 10 * d.rank + r, sn[r]);
            rp[r] = r, ro[r] = (size_t)r * W, rn[r] = (size_t)d.rank + 1;  // what rank r sends here
        }
        // the first half of the peers in one exchange, the rest in a second, both in flight
        int h = W / 2;
        dist_pending_t *q1 = dist_post_blocks(&d, sendb, sp, so, sn, h, recvb, rp, ro, rn, h);
        dist_pending_t *q2 = dist_post_blocks(&d, sendb, sp + h, so + h, sn + h, W - h, recvb, rp + h, ro + h, rn + h, W - h);
        int rc2 = dist_wait_blocks(q2), rc1 = dist_wait_blocks(q1);
        int ok = !rc1 && !rc2;
        for (int r = 0; r < W && ok; r++)
            for (size_t k = 0; k < rn[r]; k++) ok &= recvb[ro[r] + k] == (char)(10 * r + d.rank);
        test_check(ok, "rank %d: two block exchanges in flight deliver every peer's bytes: %s", d.rank,
                   ok ? "" : cispo_last_error());
        free(sendb), free(recvb), free(sp), free(rp), free(so), free(sn), free(ro), free(rn);
    }
    dist_group_free(&grp);
    int rc = test_finish(d.world > 1 ? "test_dist (mpi)" : "test_dist");
    dist_finalize(&d);
    return rc;
}
