// tests/test_dist.c — MPI collectives and ZeRO-1 across real ranks. Run under mpirun with 1, 2 or 3
// ranks (tests/cmake/mpi.cmake): sums and broadcasts of sizes that do not divide evenly; a ZeRO-1
// AdamW step (reduce-scatter gradients, update own shard, all-gather) equals the plain step on the
// all-reduced gradient bit for bit on every rank (gradients chosen so that sums are exact in any
// order: MPI does not promise one order for all-reduce and reduce).
#include <string.h>

#include "base/common.h"
#include "kernels/cpu/ops_cpu.h"
#include "tests/testutil.h"
#include "trainer/dist.h"

int main(int argc, char **argv) {
    dist_t d;
    if (dist_init(&d, &argc, &argv)) {
        printf("%s\n", cispo_last_error());
        return 1;
    }
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
    adamw_step_cpu(p2, m2, v2, g2, N, 1e-2f, 0.9f, 0.95f, 1e-15f, 0.1f, 1);
    size_t s, e;
    dist_shard_range(d.world, d.rank, N, &s, &e);
    test_check(dist_reduce_scatter_sum_f32(&d, g, N) == 0, "reduce-scatter");
    adamw_step_cpu(p + s, m + s, v + s, g + s, e - s, 1e-2f, 0.9f, 0.95f, 1e-15f, 0.1f, 1);
    test_check(dist_allgather_f32(&d, p, N) == 0, "all-gather");
    test_check(memcmp(p, p2, sizeof p) == 0, "rank %d/%d: ZeRO-1 step equals the replicated step bit for bit", d.rank,
               d.world);
    int rc = test_finish(d.world > 1 ? "test_dist (mpi)" : "test_dist");
    dist_finalize(&d);
    return rc;
}
