// base/common.h — error reporting, check macros and checked allocation shared by every folder.
// defines: cispo_fail, cispo_last_error, cispo_clear_error, cispo_die, cispo_die_status, cispo_set_rank,
//          cispo_rank, cispo_local_ranks, CISPO_ASSERT, CHECK_ALLOC, CUDA_CHECK, CUBLAS_CHECK, NCCL_CHECK, MPI_CHECK,
//          cispo_malloc, cispo_calloc, cispo_realloc, cispo_strdup, cispo_read_file, cispo_mkdir_p,
//          cispo_now, cispo_host_memory
//
// Two kinds of failure:
//  - bad input (a file, a key, a request): the function records one line naming what and where with
//    cispo_fail(...) and returns -1 (or NULL); the caller passes it up; the CLI prints it and exits 1.
//  - broken invariants, exhausted memory and failed library calls: the check macros print the failing
//    statement, file:line, the host and the MPI rank (a multi-node job's log interleaves every rank's
//    output, so a line without them cannot be traced back), then abort.
#ifndef CISPO_BASE_COMMON_H
#define CISPO_BASE_COMMON_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#if defined(__GNUC__)
#define CISPO_PRINTF(a, b) __attribute__((format(printf, a, b)))
#define CISPO_NORETURN __attribute__((noreturn))
#else
#define CISPO_PRINTF(a, b)
#define CISPO_NORETURN
#endif

// Records the error message (thread-local) and returns -1, so `return cispo_fail(...)` reads well.
int cispo_fail(const char *fmt, ...) CISPO_PRINTF(1, 2);
// The last message recorded on this thread ("" if none).
const char *cispo_last_error(void);
void cispo_clear_error(void);

// The rank printed by the check macros. Until cispo_set_rank is called it is read from the launcher's
// environment (OMPI_COMM_WORLD_RANK, PMI_RANK, SLURM_PROCID), else 0: base/ needs no MPI header.
void cispo_set_rank(int rank);
int cispo_rank(void);
// The ranks the launcher started on this host (Open MPI's, MPICH's or Slurm's environment), 1 when none says.
int cispo_local_ranks(void);

// "cispo: fatal: file:line: what (hint) [host h, rank r]" on stderr, then abort().
CISPO_NORETURN void cispo_die(const char *file, int line, const char *what, const char *hint);
// The same for a library call `stmt` of `lib` that returned `code` (errstr: the library's text, may be NULL).
CISPO_NORETURN void cispo_die_status(const char *file, int line, const char *stmt, const char *lib, long code,
                                     const char *errstr);

#define CISPO_ASSERT(cond)                                                       \
    do {                                                                         \
        if (!(cond)) cispo_die(__FILE__, __LINE__, #cond, "internal invariant"); \
    } while (0)
#define CHECK_ALLOC(ptr)                                                         \
    do {                                                                         \
        if ((ptr) == NULL) cispo_die(__FILE__, __LINE__, #ptr, "out of memory"); \
    } while (0)

// Library calls. Each macro names the library's own status type, success value and error-string
// function, so it compiles only where that library's header is included (cuda_runtime_api.h,
// cublas_v2.h, nccl.h, mpi.h) — which every caller of those libraries includes anyway — while base/
// itself includes none of them.
#define CUDA_CHECK(call)                                                                                  \
    do {                                                                                                  \
        cudaError_t cispo_rc_ = (call);                                                                   \
        if (cispo_rc_ != cudaSuccess)                                                                     \
            cispo_die_status(__FILE__, __LINE__, #call, "CUDA", (long)cispo_rc_, cudaGetErrorString(cispo_rc_)); \
    } while (0)
#define CUBLAS_CHECK(call)                                                                       \
    do {                                                                                         \
        cublasStatus_t cispo_rc_ = (call);                                                       \
        if (cispo_rc_ != CUBLAS_STATUS_SUCCESS)                                                  \
            cispo_die_status(__FILE__, __LINE__, #call, "cuBLAS", (long)cispo_rc_,               \
                             cublasGetStatusString(cispo_rc_));                                  \
    } while (0)
#define NCCL_CHECK(call)                                                                                  \
    do {                                                                                                  \
        ncclResult_t cispo_rc_ = (call);                                                                  \
        if (cispo_rc_ != ncclSuccess)                                                                     \
            cispo_die_status(__FILE__, __LINE__, #call, "NCCL", (long)cispo_rc_, ncclGetErrorString(cispo_rc_)); \
    } while (0)
#define MPI_CHECK(call)                                                                              \
    do {                                                                                             \
        int cispo_rc_ = (call);                                                                      \
        if (cispo_rc_ != MPI_SUCCESS) {                                                              \
            char cispo_msg_[MPI_MAX_ERROR_STRING + 1] = "";                                          \
            int cispo_len_ = 0;                                                                      \
            if (MPI_Error_string(cispo_rc_, cispo_msg_, &cispo_len_) != MPI_SUCCESS) cispo_msg_[0] = 0; \
            cispo_die_status(__FILE__, __LINE__, #call, "MPI", (long)cispo_rc_, cispo_msg_);         \
        }                                                                                            \
    } while (0)

// malloc/calloc that abort on failure (sizes are size_t products, never int).
void *cispo_malloc(size_t n);
void *cispo_calloc(size_t count, size_t size);
void *cispo_realloc(void *p, size_t n);
char *cispo_strdup(const char *s);
char *cispo_strndup(const char *s, size_t n);

// Reads a whole file into a NUL-terminated buffer; NULL + cispo_fail on error. *len may be NULL.
char *cispo_read_file(const char *path, size_t *len);
// Creates directory path and its missing parents (mkdir -p). 0, or -1 with cispo_fail naming the one
// that could not be made.
int cispo_mkdir_p(const char *path);

// Monotonic seconds.
double cispo_now(void);

// The host memory this process may still use (*avail: MemAvailable of /proc/meminfo, or less when a cgroup's
// memory.max leaves less) and the host's total (*total: MemTotal, or the cgroup's limit when lower), in bytes.
// 0, or -1 where neither can be read (then both are 0).
int cispo_host_memory(size_t *avail, size_t *total);

#endif
