// kernels/cuda/cluster.cuh — thread block clusters (compute capability 9): the CTA's rank and the cluster's size,
// the cluster barrier, and loads from another CTA's shared memory (distributed shared memory). A kernel launched
// with a cluster dimension (cudaLaunchAttributeClusterDimension) reduces over its cluster by leaving a value in
// its own shared memory, cl_sync(), and reading every rank's with cl_load_*; a CTA whose shared memory another
// may still read must cl_sync() once more before it exits.
// defines: cl_size, cl_rank, cl_sync, cl_map, cl_load_f32, cl_load_f64
#ifndef CISPO_KERNELS_CUDA_CLUSTER_CUH
#define CISPO_KERNELS_CUDA_CLUSTER_CUH

static __device__ __forceinline__ unsigned cl_size(void) {
    unsigned r;
    asm volatile("mov.u32 %0, %%cluster_nctarank;" : "=r"(r));
    return r;
}
static __device__ __forceinline__ unsigned cl_rank(void) {
    unsigned r;
    asm volatile("mov.u32 %0, %%cluster_ctarank;" : "=r"(r));
    return r;
}
// every thread of every CTA of the cluster; release / acquire: shared-memory writes before it are seen after it
static __device__ __forceinline__ void cl_sync(void) {
    asm volatile("barrier.cluster.arrive.aligned;\n\tbarrier.cluster.wait.aligned;" ::: "memory");
}
// *x as CTA `rank` of the cluster holds it (x: this CTA's address of the same shared variable)
static __device__ __forceinline__ unsigned cl_map(const void *x, unsigned rank) {
    unsigned a = (unsigned)__cvta_generic_to_shared(x), ra;
    asm volatile("mapa.shared::cluster.u32 %0, %1, %2;" : "=r"(ra) : "r"(a), "r"(rank));
    return ra;
}
static __device__ __forceinline__ double cl_load_f64(const double *x, unsigned rank) {
    double v;
    asm volatile("ld.shared::cluster.f64 %0, [%1];" : "=d"(v) : "r"(cl_map(x, rank)) : "memory");
    return v;
}
static __device__ __forceinline__ float cl_load_f32(const float *x, unsigned rank) {
    float v;
    asm volatile("ld.shared::cluster.f32 %0, [%1];" : "=f"(v) : "r"(cl_map(x, rank)) : "memory");
    return v;
}

#endif
