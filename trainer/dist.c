// trainer/dist.c — MPI collectives for data parallelism and ZeRO-1 (trainer/dist.h). Errors name
// the host and rank, as the collective libraries' own tools do.
#include "trainer/dist.h"

#include <limits.h>
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/common.h"

// The communicator of d: its own group (dist_split) or the world.
static MPI_Comm comm_of(const dist_t *d) { return d->has_comm ? MPI_Comm_f2c(d->comm) : MPI_COMM_WORLD; }

static int mpi_fail(const dist_t *d, const char *what, int rc) {
    char msg[MPI_MAX_ERROR_STRING] = "";
    int len = 0;
    MPI_Error_string(rc, msg, &len);
    return cispo_fail("%s rank %d/%d: %s failed: %s", d->host, d->rank, d->world, what, msg);
}

// A copy of the world on which only failed commands meet (dist_fail), apart from the run's collectives.
static MPI_Comm fail_comm = MPI_COMM_NULL;

int dist_init(dist_t *d, int *argc, char ***argv) {
    memset(d, 0, sizeof *d);
    gethostname(d->host, sizeof d->host - 1);
    int inited = 0;
    MPI_Initialized(&inited);
    if (!inited) {
        int provided;
        if (MPI_Init_thread(argc, argv, MPI_THREAD_FUNNELED, &provided) != MPI_SUCCESS)
            return cispo_fail("%s: MPI_Init failed (is the MPI runtime installed? see scripts/deps.sh)", d->host);
        d->we_initialised = 1;
    }
    MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
    MPI_Comm_rank(MPI_COMM_WORLD, &d->rank);
    MPI_Comm_size(MPI_COMM_WORLD, &d->world);
    if (d->world > 1 && fail_comm == MPI_COMM_NULL && MPI_Comm_dup(MPI_COMM_WORLD, &fail_comm) != MPI_SUCCESS)
        return cispo_fail("%s: MPI_Comm_dup of the world failed", d->host);
    return 0;
}

dist_t *dist_world(void) {
    static dist_t world = {.rank = 0, .world = 1};
    return &world;
}

int dist_launched(void) {
    const char *vars[] = {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_RANK", "MPI_LOCALNRANKS"};
    for (int i = 0; i < 4; i++)
        if (getenv(vars[i])) return 1;
    return 0;
}

int dist_start(int *argc, char ***argv, int quiet) {
    if (!dist_launched()) {
        // srun without a PMI plugin starts N independent single-rank runs that would overwrite each
        // other's run directory: refuse rather than train N unrelated policies
        const char *nt = getenv("SLURM_NTASKS"), *pid = getenv("SLURM_PROCID");
        if (nt && atoi(nt) > 1 && pid)
            return cispo_fail("started by srun as task %s of %s without MPI ranks: launch with `srun --mpi=pmix` "
                              "(or pmi2) so the tasks form one data-parallel job, or with mpirun",
                              pid, nt);
        return 0;
    }
    if (dist_init(dist_world(), argc, argv)) return -1;
    if (quiet && dist_world()->rank != 0 && !freopen("/dev/null", "w", stdout))
        return cispo_fail("rank %d: cannot open /dev/null for standard output", dist_world()->rank);
    return 0;
}

int dist_allreduce_max_f64(dist_t *d, double *buf, size_t n) {
    if (d->world == 1) return 0;
    int rc = MPI_Allreduce(MPI_IN_PLACE, buf, (int)n, MPI_DOUBLE, MPI_MAX, comm_of(d));
    return rc == MPI_SUCCESS ? 0 : mpi_fail(d, "all-reduce (max)", rc);
}

void dist_finalize(dist_t *d) {
    int fin = 0;
    MPI_Finalized(&fin);
    if (d->we_initialised && !fin) MPI_Finalize();
    d->we_initialised = 0;
}

void dist_fail(dist_t *d, int code) {
    int fin = 0;
    MPI_Finalized(&fin);
    if (d->world == 1 || fin || fail_comm == MPI_COMM_NULL) return;
    fflush(stdout), fflush(stderr);
    MPI_Request req;
    int done = 0;
    if (MPI_Ibarrier(fail_comm, &req) == MPI_SUCCESS) {
        for (double until = cispo_now() + DIST_FAIL_WAIT_S; !done && cispo_now() < until;) {
            if (MPI_Test(&req, &done, MPI_STATUS_IGNORE) != MPI_SUCCESS) break;
            if (!done) usleep(1000);
        }
    }
    if (done) return;  // every rank failed: each has said why, and the job ends normally
    fprintf(stderr, "cispo: rank %d failed, and not every rank did within %d s: stopping the job (a rank that "
            "goes on would wait for this one for ever)\n", d->rank, DIST_FAIL_WAIT_S);
    MPI_Abort(MPI_COMM_WORLD, code);
}

#define CHUNK ((size_t)1 << 28)  // elements per call: below INT_MAX

int dist_allreduce_sum_f32(dist_t *d, float *buf, size_t n) {
    if (d->world == 1) return 0;
    for (size_t o = 0; o < n; o += CHUNK) {
        int c = (int)(n - o < CHUNK ? n - o : CHUNK);
        int rc = MPI_Allreduce(MPI_IN_PLACE, buf + o, c, MPI_FLOAT, MPI_SUM, comm_of(d));
        if (rc != MPI_SUCCESS) return mpi_fail(d, "all-reduce", rc);
    }
    return 0;
}

int dist_allreduce_sum_f64(dist_t *d, double *buf, size_t n) {
    if (d->world == 1) return 0;
    for (size_t o = 0; o < n; o += CHUNK) {
        int c = (int)(n - o < CHUNK ? n - o : CHUNK);
        int rc = MPI_Allreduce(MPI_IN_PLACE, buf + o, c, MPI_DOUBLE, MPI_SUM, comm_of(d));
        if (rc != MPI_SUCCESS) return mpi_fail(d, "all-reduce", rc);
    }
    return 0;
}

int dist_broadcast_f32(dist_t *d, float *buf, size_t n, int root) {
    if (d->world == 1) return 0;
    for (size_t o = 0; o < n; o += CHUNK) {
        int c = (int)(n - o < CHUNK ? n - o : CHUNK);
        int rc = MPI_Bcast(buf + o, c, MPI_FLOAT, root, comm_of(d));
        if (rc != MPI_SUCCESS) return mpi_fail(d, "broadcast", rc);
    }
    return 0;
}

int dist_broadcast_bytes(dist_t *d, void *buf, size_t bytes, int root) {
    if (d->world == 1) return 0;
    for (size_t o = 0; o < bytes; o += CHUNK) {
        int c = (int)(bytes - o < CHUNK ? bytes - o : CHUNK);
        int rc = MPI_Bcast((char *)buf + o, c, MPI_BYTE, root, comm_of(d));
        if (rc != MPI_SUCCESS) return mpi_fail(d, "broadcast", rc);
    }
    return 0;
}

void dist_shard_range(int world, int rank, size_t n, size_t *begin, size_t *end) {
    size_t base = n / (size_t)world, extra = n % (size_t)world, r = (size_t)rank;
    *begin = r * base + (r < extra ? r : extra);
    *end = *begin + base + (r < extra ? 1 : 0);
}

// Reduce-scatter as one reduce per owner's range (every rank computes the same ranges, so all make the
// same calls); chunked so that counts fit MPI's ints.
int dist_reduce_scatter_sum_f32(dist_t *d, float *buf, size_t n) {
    if (d->world == 1) return 0;
    for (int r = 0; r < d->world; r++) {
        size_t b, e;
        dist_shard_range(d->world, r, n, &b, &e);
        for (size_t o = b; o < e; o += CHUNK) {
            int c = (int)(e - o < CHUNK ? e - o : CHUNK);
            int rc = d->rank == r ? MPI_Reduce(MPI_IN_PLACE, buf + o, c, MPI_FLOAT, MPI_SUM, r, comm_of(d))
                                  : MPI_Reduce(buf + o, NULL, c, MPI_FLOAT, MPI_SUM, r, comm_of(d));
            if (rc != MPI_SUCCESS) return mpi_fail(d, "reduce-scatter", rc);
        }
    }
    return 0;
}

int dist_allgather_f32(dist_t *d, float *buf, size_t n) {
    if (d->world == 1) return 0;
    for (int r = 0; r < d->world; r++) {
        size_t b, e;
        dist_shard_range(d->world, r, n, &b, &e);
        if (e > b && dist_broadcast_f32(d, buf + b, e - b, r)) return -1;
    }
    return 0;
}

int dist_allgather_bytes(dist_t *d, void *buf, size_t n, size_t esize) {
    if (d->world == 1) return 0;
    for (int r = 0; r < d->world; r++) {
        size_t b, e;
        dist_shard_range(d->world, r, n, &b, &e);
        char *p = (char *)buf + b * esize;
        for (size_t o = 0, bytes = (e - b) * esize; o < bytes; o += CHUNK) {
            int c = (int)(bytes - o < CHUNK ? bytes - o : CHUNK);
            int rc = MPI_Bcast(p + o, c, MPI_BYTE, r, comm_of(d));
            if (rc != MPI_SUCCESS) return mpi_fail(d, "all-gather", rc);
        }
    }
    return 0;
}

// Point-to-point, one message per chunk of each shard (a pair's messages arrive in order), so that a
// shard of any size goes below MPI's int counts and root needs no second buffer.
int dist_gather_shards_f32(dist_t *d, const float *mine, float *full, size_t n, int root) {
    size_t b, e;
    dist_shard_range(d->world, d->rank, n, &b, &e);
    if (d->rank == root && e > b && full + b != mine) memmove(full + b, mine, (e - b) * sizeof(float));
    if (d->world == 1) return 0;
    for (int r = 0; r < d->world; r++) {
        if (r == root || (d->rank != root && d->rank != r)) continue;
        dist_shard_range(d->world, r, n, &b, &e);
        for (size_t o = b; o < e; o += CHUNK) {
            int c = (int)(e - o < CHUNK ? e - o : CHUNK);
            int rc = d->rank == root ? MPI_Recv(full + o, c, MPI_FLOAT, r, 17, comm_of(d), MPI_STATUS_IGNORE)
                                     : MPI_Send(mine + (o - b), c, MPI_FLOAT, root, 17, comm_of(d));
            if (rc != MPI_SUCCESS) return mpi_fail(d, "gather of the shards", rc);
        }
    }
    return 0;
}

int dist_split(dist_t *d, int color, int key, dist_t *out) {
    *out = *d;
    out->we_initialised = 0;
    if (d->world == 1) return out->has_comm = 0, 0;
    MPI_Comm c;
    int rc = MPI_Comm_split(comm_of(d), color, key, &c);
    if (rc != MPI_SUCCESS) return mpi_fail(d, "split of the communicator", rc);
    MPI_Comm_set_errhandler(c, MPI_ERRORS_RETURN);
    MPI_Comm_rank(c, &out->rank);
    MPI_Comm_size(c, &out->world);
    out->has_comm = 1;
    out->comm = (int)MPI_Comm_c2f(c);
    return 0;
}

void dist_group_free(dist_t *g) {
    int fin = 0;
    MPI_Finalized(&fin);
    if (g->has_comm && !fin) {
        MPI_Comm c = MPI_Comm_f2c(g->comm);
        MPI_Comm_free(&c);
    }
    g->has_comm = 0;
}

int dist_reduce_sum_f32(dist_t *d, float *buf, size_t n, int root) {
    if (d->world == 1) return 0;
    for (size_t o = 0; o < n; o += CHUNK) {
        int c = (int)(n - o < CHUNK ? n - o : CHUNK);
        int rc = d->rank == root ? MPI_Reduce(MPI_IN_PLACE, buf + o, c, MPI_FLOAT, MPI_SUM, root, comm_of(d))
                                 : MPI_Reduce(buf + o, NULL, c, MPI_FLOAT, MPI_SUM, root, comm_of(d));
        if (rc != MPI_SUCCESS) return mpi_fail(d, "reduce", rc);
    }
    return 0;
}

int dist_allgather_i32(dist_t *d, const int32_t *mine, int32_t *all, int n) {
    if (d->world == 1) {
        memmove(all, mine, (size_t)n * sizeof(int32_t));
        return 0;
    }
    int rc = MPI_Allgather(mine, n, MPI_INT32_T, all, n, MPI_INT32_T, comm_of(d));
    return rc == MPI_SUCCESS ? 0 : mpi_fail(d, "all-gather", rc);
}

#define BCHUNK ((size_t)1 << 30)  // bytes per message: below INT_MAX

struct dist_pending {
    dist_t *d;
    int n;
    MPI_Request req[];
};

dist_pending_t *dist_post_blocks(dist_t *d, const char *send, const int *speer, const size_t *soff,
                                 const size_t *sbytes, int ns, char *recv, const int *rpeer, const size_t *roff,
                                 const size_t *rbytes, int nr) {
    size_t nmsg = 0;
    for (int k = 0; k < ns; k++) nmsg += (sbytes[k] + BCHUNK - 1) / BCHUNK;
    for (int k = 0; k < nr; k++) nmsg += (rbytes[k] + BCHUNK - 1) / BCHUNK;
    dist_pending_t *q = cispo_malloc(sizeof *q + (nmsg ? nmsg : 1) * sizeof(MPI_Request));
    q->d = d, q->n = 0;
    if (d->world == 1) {  // every block is this rank's own: the k-th send is the k-th receive
        if (ns != nr) return free(q), cispo_fail("exchange within one rank: %d blocks sent, %d received", ns, nr), NULL;
        for (int k = 0; k < ns; k++) {
            if (sbytes[k] != rbytes[k])
                return free(q), cispo_fail("exchange within one rank: block %d of %zu bytes sent, %zu received", k,
                                           sbytes[k], rbytes[k]), NULL;
            memmove(recv + roff[k], send + soff[k], sbytes[k]);
        }
        return q;
    }
    int rc = MPI_SUCCESS;
    // receives first, so that every send finds its receive posted
    for (int k = 0; k < nr && rc == MPI_SUCCESS; k++)
        for (size_t o = 0; o < rbytes[k] && rc == MPI_SUCCESS; o += BCHUNK) {
            int c = (int)(rbytes[k] - o < BCHUNK ? rbytes[k] - o : BCHUNK);
            rc = MPI_Irecv(recv + roff[k] + o, c, MPI_BYTE, rpeer[k], 23, comm_of(d), &q->req[q->n]);
            if (rc == MPI_SUCCESS) q->n++;
        }
    for (int k = 0; k < ns && rc == MPI_SUCCESS; k++)
        for (size_t o = 0; o < sbytes[k] && rc == MPI_SUCCESS; o += BCHUNK) {
            int c = (int)(sbytes[k] - o < BCHUNK ? sbytes[k] - o : BCHUNK);
            rc = MPI_Isend(send + soff[k] + o, c, MPI_BYTE, speer[k], 23, comm_of(d), &q->req[q->n]);
            if (rc == MPI_SUCCESS) q->n++;
        }
    if (rc != MPI_SUCCESS) {
        if (q->n) MPI_Waitall(q->n, q->req, MPI_STATUSES_IGNORE);
        free(q);
        mpi_fail(d, "posting the exchange", rc);
        return NULL;
    }
    return q;
}

int dist_wait_blocks(dist_pending_t *q) {
    if (!q) return -1;
    int rc = q->n ? MPI_Waitall(q->n, q->req, MPI_STATUSES_IGNORE) : MPI_SUCCESS;
    dist_t *d = q->d;
    free(q);
    return rc == MPI_SUCCESS ? 0 : mpi_fail(d, "exchange", rc);
}

int dist_sendrecv_blocks(dist_t *d, const char *send, const int *speer, const size_t *soff, const size_t *sbytes,
                         int ns, char *recv, const int *rpeer, const size_t *roff, const size_t *rbytes, int nr) {
    return dist_wait_blocks(dist_post_blocks(d, send, speer, soff, sbytes, ns, recv, rpeer, roff, rbytes, nr));
}

struct dist_reqs {
    dist_t *d;
    int n, cap;
    MPI_Request *req;
};

int dist_iallreduce_sum_f32(dist_t *d, float *buf, size_t n, dist_reqs_t **q) {
    if (!*q) {
        *q = cispo_calloc(1, sizeof **q);
        (*q)->d = d;
    }
    dist_reqs_t *r = *q;
    if (d->world == 1) return 0;
    for (size_t o = 0; o < n; o += CHUNK) {
        int c = (int)(n - o < CHUNK ? n - o : CHUNK);
        if (r->n == r->cap) {
            r->cap = r->cap ? 2 * r->cap : 16;
            r->req = cispo_realloc(r->req, (size_t)r->cap * sizeof(MPI_Request));
        }
        int rc = MPI_Iallreduce(MPI_IN_PLACE, buf + o, c, MPI_FLOAT, MPI_SUM, comm_of(d), &r->req[r->n]);
        if (rc != MPI_SUCCESS) return mpi_fail(d, "all-reduce (nonblocking)", rc);
        r->n++;
    }
    return 0;
}

int dist_wait(dist_reqs_t *q) {
    if (!q) return 0;
    int rc = q->n ? MPI_Waitall(q->n, q->req, MPI_STATUSES_IGNORE) : MPI_SUCCESS;
    dist_t *d = q->d;
    free(q->req);
    free(q);
    return rc == MPI_SUCCESS ? 0 : mpi_fail(d, "all-reduce (nonblocking)", rc);
}
