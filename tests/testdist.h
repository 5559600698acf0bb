// tests/testdist.h — helpers of the tests that run under mpirun (tests/cmake/mpi.cmake, ep.cmake).
// defines: test_same_on_all_ranks
#ifndef CISPO_TESTS_TESTDIST_H
#define CISPO_TESTS_TESTDIST_H

#include <stdlib.h>
#include <string.h>

#include "base/common.h"
#include "trainer/dist.h"

// Whether p [n] is the same bits on every rank of d (against rank 0's broadcast). A collective of d.
static inline int test_same_on_all_ranks(dist_t *d, const float *p, size_t n) {
    float *p0 = cispo_malloc((n ? n : 1) * sizeof(float));
    memcpy(p0, p, n * sizeof(float));
    dist_broadcast_f32(d, p0, n, 0);
    double differ = memcmp(p0, p, n * sizeof(float)) != 0;
    free(p0);
    dist_allreduce_sum_f64(d, &differ, 1);
    return differ == 0;
}

#endif
