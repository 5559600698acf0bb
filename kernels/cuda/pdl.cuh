// kernels/cuda/pdl.cuh — programmatic dependent launch (compute capability 9): a kernel launched through
// PDL_CONFIG may be scheduled while the kernel before it on the stream still runs, so the launch latency and
// the block dispatch of a chain of small kernels (a decode step: about 250 of them) overlap the kernel before.
// Such a kernel must call pdl_wait() in every thread before it reads what an earlier kernel wrote or writes
// anything (the wait returns once the kernel before it has completed and its memory is visible; the kernels
// before that one are then complete too, since every such kernel waited in turn); it may do only work that
// depends on no earlier kernel before the wait. pdl_trigger() after the wait lets the next kernel be scheduled
// (without it the next starts as this one's blocks exit). CISPO_NO_PDL=1 in the environment launches them the
// usual way (for comparison); the wait is then a no-op.
// defines: pdl_wait, pdl_trigger, pdl_enabled, pdl_config, PDL_CONFIG, PDL_LAUNCH
#ifndef CISPO_KERNELS_CUDA_PDL_CUH
#define CISPO_KERNELS_CUDA_PDL_CUH

#include <cuda_runtime.h>
#include <stdlib.h>

static __device__ __forceinline__ void pdl_wait(void) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
    asm volatile("griddepcontrol.wait;" ::: "memory");
#endif
}

static __device__ __forceinline__ void pdl_trigger(void) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
    asm volatile("griddepcontrol.launch_dependents;" ::: "memory");
#endif
}

// 1 where the current device has compute capability 9 or more and CISPO_NO_PDL is unset (asked once)
static inline int pdl_enabled(void) {
    static int on = -1;
    if (on < 0) {
        int dev = 0, major = 0;
        const char *no = getenv("CISPO_NO_PDL");
        on = cudaGetDevice(&dev) == cudaSuccess &&
             cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, dev) == cudaSuccess && major >= 9 &&
             !(no && no[0] && no[0] != '0');
    }
    return on;
}

static inline cudaLaunchConfig_t pdl_config(dim3 grid, dim3 block, size_t smem, cudaStream_t st,
                                            cudaLaunchAttribute *attr) {
    cudaLaunchConfig_t c;
    c.gridDim = grid, c.blockDim = block, c.dynamicSmemBytes = smem, c.stream = st;
    attr->id = cudaLaunchAttributeProgrammaticStreamSerialization;
    attr->val.programmaticStreamSerializationAllowed = pdl_enabled();
    c.attrs = attr, c.numAttrs = 1;
    return c;
}

// PDL_CONFIG(cfg, grid, block, smem, stream); then cudaLaunchKernelEx(&cfg, kernel, args...) in place of
// kernel<<<grid, block, smem, stream>>>(args...)
#define PDL_CONFIG(cfg, grid, block, smem, st)                                                                        \
    cudaLaunchAttribute cfg##_attr;                                                                                  \
    const cudaLaunchConfig_t cfg = pdl_config(grid, block, smem, st, &cfg##_attr)

// PDL_LAUNCH(grid, block, smem, stream, kernel, args...): the same in one statement (the launch's error is
// left for cudaGetLastError, as <<<>>> leaves it)
#define PDL_LAUNCH(grid, block, smem, st, ...)                                                                        \
    do {                                                                                                             \
        PDL_CONFIG(pdl_cfg_, grid, block, smem, st);                                                                 \
        (void)cudaLaunchKernelEx(&pdl_cfg_, __VA_ARGS__);                                                            \
    } while (0)

#endif
