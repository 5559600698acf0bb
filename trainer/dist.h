// trainer/dist.h — distributed setup over MPI (launch with mpirun or srun; a plain start is a world
// of one). On the CPU path MPI carries the collectives: gradient all-reduce for data parallelism and
// ZeRO-1 optimizer sharding (reduce-scatter gradients, each rank updates its shard of the flat
// parameter buffer, all-gather the parameters; trainer/optim.h), and the gather of the shards to one
// rank for a checkpoint.
// defines: dist_t, dist_init, dist_finalize, dist_fail, dist_allreduce_sum_f32, dist_allreduce_sum_f64,
//          dist_broadcast_f32, dist_broadcast_bytes, dist_shard_range, dist_reduce_scatter_sum_f32, dist_allgather_f32, dist_allgather_bytes,
//          dist_gather_shards_f32, dist_world, dist_launched, dist_start, dist_allreduce_max_f64,
//          dist_split, dist_group_free, dist_reduce_sum_f32, dist_allgather_i32, dist_sendrecv_blocks,
//          dist_pending_t, dist_post_blocks, dist_wait_blocks, dist_reqs_t, dist_iallreduce_sum_f32, dist_wait
#ifndef CISPO_TRAINER_DIST_H
#define CISPO_TRAINER_DIST_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
    int rank, world;
    char host[64];
    int we_initialised;  // MPI_Init was called by dist_init (so dist_finalize finalises)
    int has_comm, comm;  // a group of dist_split: its communicator (MPI's Fortran handle); else the world
} dist_t;

int dist_init(dist_t *d, int *argc, char ***argv);
// The process's world for the trainer (rank 0 of 1 until a command calls dist_init on it).
dist_t *dist_world(void);
// Whether an MPI launcher (mpirun, srun) started this process: commands initialise MPI only then, so a
// plain start runs exactly as a program without MPI.
int dist_launched(void);
// What a command calls first: dist_init on dist_world() when launched, else nothing (a world of one).
// quiet: ranks other than 0 send their standard output to /dev/null. 0 or -1 (+ message).
int dist_start(int *argc, char ***argv, int quiet);
// In-place maximum over all ranks.
int dist_allreduce_max_f64(dist_t *d, double *buf, size_t n);
void dist_finalize(dist_t *d);
// The end of a command that failed on this rank: when every rank fails (they meet within DIST_FAIL_WAIT_S
// seconds) it returns, and the job ends normally; else a rank that failed alone, whose peers would wait for
// it in a collective for ever, stops the whole job with exit status code (MPI_Abort). Nothing in a world of one.
#define DIST_FAIL_WAIT_S 10
void dist_fail(dist_t *d, int code);
// In-place sums over all ranks (any n: chunked below MPI's int counts).
int dist_allreduce_sum_f32(dist_t *d, float *buf, size_t n);
int dist_allreduce_sum_f64(dist_t *d, double *buf, size_t n);
int dist_broadcast_f32(dist_t *d, float *buf, size_t n, int root);
int dist_broadcast_bytes(dist_t *d, void *buf, size_t bytes, int root);
// The contiguous range [begin, end) of an n-element flat buffer that rank r owns under ZeRO-1
// (balanced: sizes differ by at most one element).
void dist_shard_range(int world, int rank, size_t n, size_t *begin, size_t *end);
// buf [n] on every rank: afterwards this rank's shard of buf holds the sum over ranks of that shard
// (the rest of buf is left as it was).
int dist_reduce_scatter_sum_f32(dist_t *d, float *buf, size_t n);
// buf [n]: every rank's shard, as held by its owner, copied to all ranks.
int dist_allgather_f32(dist_t *d, float *buf, size_t n);
// The same for n elements of esize bytes each (the shards counted in elements): a bf16 working copy.
int dist_allgather_bytes(dist_t *d, void *buf, size_t n, size_t esize);
// Every rank's shard of an n-element buffer to root: mine [this rank's shard size] on every rank, full [n]
// on root (NULL elsewhere), which gets each shard at its place. A world of one copies mine to full.
int dist_gather_shards_f32(dist_t *d, const float *mine, float *full, size_t n, int root);

// A group of d's ranks: those passing the same color form one group, ranked by key (a collective of d).
// out's rank and world are within the group; its collectives run over the group only. 0 or -1.
int dist_split(dist_t *d, int color, int key, dist_t *out);
void dist_group_free(dist_t *g);
// buf [n]: the sum over ranks lands in root's buf (the others' buf are left as they were).
int dist_reduce_sum_f32(dist_t *d, float *buf, size_t n, int root);
// every rank's mine [n] to all: all [world * n], rank r's at all + r * n.
int dist_allgather_i32(dist_t *d, const int32_t *mine, int32_t *all, int n);
// Point-to-point exchange of byte blocks: block k of sends goes to rank speer[k] (sbytes[k] bytes at
// send + soff[k]), block k of receives comes from rpeer[k]; the blocks between a pair match in order and in
// size. Any sizes (chunked below MPI's int counts). 0 or -1.
int dist_sendrecv_blocks(dist_t *d, const char *send, const int *speer, const size_t *soff, const size_t *sbytes,
                         int ns, char *recv, const int *rpeer, const size_t *roff, const size_t *rbytes, int nr);
// The same in two halves: post returns the exchange in flight (NULL + message on failure), wait completes
// it (0 or -1) and frees it. The buffers must stay as they are until the wait; several may be in flight,
// matched between each pair of ranks in the order they were posted.
typedef struct dist_pending dist_pending_t;
dist_pending_t *dist_post_blocks(dist_t *d, const char *send, const int *speer, const size_t *soff,
                                 const size_t *sbytes, int ns, char *recv, const int *rpeer, const size_t *roff,
                                 const size_t *rbytes, int nr);
int dist_wait_blocks(dist_pending_t *q);
// Nonblocking in-place sums over all ranks (MPI_Iallreduce, any n: chunked below MPI's int counts): the
// request is appended to *q (a new set when *q is NULL); buf must stay untouched until dist_wait(*q).
// Every rank issues the same sums in the same order, and no other collective of d may come between an
// issue on one rank and the matching issue on another. 0 or -1 (+ message).
typedef struct dist_reqs dist_reqs_t;
int dist_iallreduce_sum_f32(dist_t *d, float *buf, size_t n, dist_reqs_t **q);
// Completes every sum of q and frees it (NULL: nothing to wait for). 0 or -1 (+ message).
int dist_wait(dist_reqs_t *q);

#endif
