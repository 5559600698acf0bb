// kernels/cuda/wgmma.cuh — Hopper's warpgroup tensor-core instruction (wgmma.mma_async, sm_90a) for the
// kernels that use it (kernels/cuda/gemm_wgmma.cuh, kernels/cuda/attention_wgmma.cuh): shared-memory
// matrix descriptors, the fences, commit and wait, and the instruction at the shapes those kernels take; and
// the TMA loads, mbarriers and host-side tensor maps that feed them.
// defines: WG_DEVICE, wg_index, wg_warp, wg_desc, wg_desc_at, wg_fence, wg_commit, wg_wait, wg_fence_proxy,
//          wg_fence_regs, wg_fence_frags, wg_mma_ss_256, wg_mma_ss_128, wg_mma_ss_64, wg_mma_rs_128, WgtMap,
//          wgt_mbar_init, wgt_mbar_init_fence, wgt_mbar_expect_tx, wgt_mbar_wait, wgt_mbar_arrive,
//          wgt_mbar_arrive_remote, wgt_load_2d, wgt_load_3d, wgt_load_2d_mc, wgt_load_3d_mc, wgt_store_3d,
//          wgt_store_2d, wgt_bulk_commit, wgt_bulk_wait_read, wg_setmaxnreg_inc, wg_setmaxnreg_dec, env_knob, tma_off,
//          tensor_map_encoder, tensor_map
//
// A warpgroup is 4 warps (128 threads) issuing together; its accumulator tile is 64 x N, warp w holding rows
// 16w .. 16w+15 in mma.sync's C layout per 8 columns: accumulator e of a thread is row 16w + lane/4 +
// 8 ((e/2) & 1), column 8 (e/4) + 2 (lane & 3) + (e & 1). Operands in shared memory use the 128-byte swizzle
// (16-byte chunk c of a 128-byte row r stored at chunk c ^ (r & 7), tiles 1024-byte aligned):
//   K-major (rows m, k contiguous): rows of 64 k at 128 bytes; stride offset 1024 (8 rows); a 16-wide K step
//     starts 32 bytes further.
//   MN-major (k rows, m contiguous): panels of 64 m, each row k of a panel 128 bytes; leading offset = the
//     panel stride, stride offset 1024 (8 k rows); a K step starts 2048 bytes further.
// Off sm_90a (WG_DEVICE unset: another architecture's pass) the wrappers compile to nothing; the host
// launches these kernels only where they were built for the card.
#ifndef CISPO_KERNELS_CUDA_WGMMA_CUH
#define CISPO_KERNELS_CUDA_WGMMA_CUH

#include <cudaTypedefs.h>  // the driver API types of cuTensorMapEncodeTiled (found at run time, no libcuda link)
#include <stdint.h>
#include <stdlib.h>

#if defined(__CUDA_ARCH__) && defined(__CUDA_ARCH_FEAT_SM90_ALL)
#define WG_DEVICE 1
#endif

namespace {

// shared-memory matrix descriptor: start address, leading and stride byte offsets, 128-byte swizzle
__device__ __forceinline__ uint64_t wg_desc(uint32_t addr, uint32_t lbo, uint32_t sbo) {
    return (uint64_t)((addr & 0x3FFFF) >> 4) | ((uint64_t)(lbo >> 4) << 16) | ((uint64_t)(sbo >> 4) << 32) |
           (1ull << 62);
}
// the descriptor d moved `bytes` further (a multiple of 16): one add to its address field, which cannot carry out
// since shared-memory addresses stay below 256 KiB; the same bits as wg_desc at the moved address, without
// recomputing the fields (an unrolled loop's constant offsets from one base descriptor)
__device__ __forceinline__ uint64_t wg_desc_at(uint64_t d, uint32_t bytes) { return d + (bytes >> 4); }

// before the first wgmma of a batch: the registers it reads or accumulates into were written by other
// instructions
__device__ __forceinline__ void wg_fence() {
#ifdef WG_DEVICE
    asm volatile("wgmma.fence.sync.aligned;\n" ::: "memory");
#endif
}
__device__ __forceinline__ void wg_commit() {
#ifdef WG_DEVICE
    asm volatile("wgmma.commit_group.sync.aligned;\n" ::: "memory");
#endif
}
// until at most N committed batches of this warpgroup are in flight
template <int N>
__device__ __forceinline__ void wg_wait() {
#ifdef WG_DEVICE
    asm volatile("wgmma.wait_group.sync.aligned %0;\n" ::"n"(N) : "memory");
#endif
}
// The thread's warpgroup and its warp within it, as a shuffle from lane 0, so that the compiler knows them to be
// warp-uniform and keeps what is computed from them (the wgmma descriptors, shared-memory bases) in uniform registers
// instead of building it per thread and moving it over (R2UR). Every lane of the warp must be active at the call.
// The attention kernels take them: the backward's loop fell from 579 to 439 SASS instructions a warp a tile, and it
// ran at 505-510 against 495-499 TFLOP/s at T 16384, H 64, KV 8 on an H100 (three passes alternated; the forward
// +0.6%). The expert products' kernels gained nothing beyond the passes' spread (+-1.5%) and keep threadIdx.x >> 7.
__device__ __forceinline__ int wg_index() { return __shfl_sync(0xffffffffu, (int)(threadIdx.x >> 7), 0); }
__device__ __forceinline__ int wg_warp() { return __shfl_sync(0xffffffffu, (int)((threadIdx.x >> 5) & 3), 0); }

// this thread's generic-proxy writes to shared memory (cp.async, stores) made visible to wgmma's reads
__device__ __forceinline__ void wg_fence_proxy() {
#ifdef WG_DEVICE
    asm volatile("fence.proxy.async.shared::cta;\n" ::: "memory");
#endif
}
// keeps the compiler from moving reads or writes of these registers across an asynchronous wgmma (after
// the wait: A fragments stay untouched until the wgmma that reads them is done)
template <int N>
__device__ __forceinline__ void wg_fence_regs(float d[N]) {
#pragma unroll
    for (int i = 0; i < N; i++) asm volatile("" : "+f"(d[i])::"memory");
}
template <int N>
__device__ __forceinline__ void wg_fence_frags(uint32_t a[][4]) {
#pragma unroll
    for (int i = 0; i < N; i++)
#pragma unroll
        for (int e = 0; e < 4; e++) asm volatile("" : "+r"(a[i][e])::"memory");
}

// d (this warpgroup's 64 x 256) += A (64 x 16) B (16 x 256), both from shared memory; TA, TB: MN-major (1) or
// K-major (0)
template <int TA, int TB>
__device__ __forceinline__ void wg_mma_ss_256(float d[128], uint64_t da, uint64_t db) {
#ifdef WG_DEVICE
    asm volatile(
        "{\n.reg .pred p;\nsetp.ne.b32 p, %130, 0;\n"
        "wgmma.mma_async.sync.aligned.m64n256k16.f32.bf16.bf16 {"
        "%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, %16, %17, %18, %19, %20, "
        "%21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31, %32, %33, %34, %35, %36, %37, %38, %39, "
        "%40, %41, %42, %43, %44, %45, %46, %47, %48, %49, %50, %51, %52, %53, %54, %55, %56, %57, %58, "
        "%59, %60, %61, %62, %63, %64, %65, %66, %67, %68, %69, %70, %71, %72, %73, %74, %75, %76, %77, "
        "%78, %79, %80, %81, %82, %83, %84, %85, %86, %87, %88, %89, %90, %91, %92, %93, %94, %95, %96, "
        "%97, %98, %99, %100, %101, %102, %103, %104, %105, %106, %107, %108, %109, %110, %111, %112, "
        "%113, %114, %115, %116, %117, %118, %119, %120, %121, %122, %123, %124, %125, %126, %127 "
        "}, %128, %129, p, 1, 1, %131, %132;\n}\n"
        : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]), "+f"(d[7]),
          "+f"(d[8]), "+f"(d[9]), "+f"(d[10]), "+f"(d[11]), "+f"(d[12]), "+f"(d[13]), "+f"(d[14]), "+f"(d[15]),
          "+f"(d[16]), "+f"(d[17]), "+f"(d[18]), "+f"(d[19]), "+f"(d[20]), "+f"(d[21]), "+f"(d[22]), "+f"(d[23]),
          "+f"(d[24]), "+f"(d[25]), "+f"(d[26]), "+f"(d[27]), "+f"(d[28]), "+f"(d[29]), "+f"(d[30]), "+f"(d[31]),
          "+f"(d[32]), "+f"(d[33]), "+f"(d[34]), "+f"(d[35]), "+f"(d[36]), "+f"(d[37]), "+f"(d[38]), "+f"(d[39]),
          "+f"(d[40]), "+f"(d[41]), "+f"(d[42]), "+f"(d[43]), "+f"(d[44]), "+f"(d[45]), "+f"(d[46]), "+f"(d[47]),
          "+f"(d[48]), "+f"(d[49]), "+f"(d[50]), "+f"(d[51]), "+f"(d[52]), "+f"(d[53]), "+f"(d[54]), "+f"(d[55]),
          "+f"(d[56]), "+f"(d[57]), "+f"(d[58]), "+f"(d[59]), "+f"(d[60]), "+f"(d[61]), "+f"(d[62]), "+f"(d[63]),
          "+f"(d[64]), "+f"(d[65]), "+f"(d[66]), "+f"(d[67]), "+f"(d[68]), "+f"(d[69]), "+f"(d[70]), "+f"(d[71]),
          "+f"(d[72]), "+f"(d[73]), "+f"(d[74]), "+f"(d[75]), "+f"(d[76]), "+f"(d[77]), "+f"(d[78]), "+f"(d[79]),
          "+f"(d[80]), "+f"(d[81]), "+f"(d[82]), "+f"(d[83]), "+f"(d[84]), "+f"(d[85]), "+f"(d[86]), "+f"(d[87]),
          "+f"(d[88]), "+f"(d[89]), "+f"(d[90]), "+f"(d[91]), "+f"(d[92]), "+f"(d[93]), "+f"(d[94]), "+f"(d[95]),
          "+f"(d[96]), "+f"(d[97]), "+f"(d[98]), "+f"(d[99]), "+f"(d[100]), "+f"(d[101]), "+f"(d[102]), "+f"(d[103]),
          "+f"(d[104]), "+f"(d[105]), "+f"(d[106]), "+f"(d[107]), "+f"(d[108]), "+f"(d[109]), "+f"(d[110]), "+f"(d[111]),
          "+f"(d[112]), "+f"(d[113]), "+f"(d[114]), "+f"(d[115]), "+f"(d[116]), "+f"(d[117]), "+f"(d[118]), "+f"(d[119]),
          "+f"(d[120]), "+f"(d[121]), "+f"(d[122]), "+f"(d[123]), "+f"(d[124]), "+f"(d[125]), "+f"(d[126]), "+f"(d[127])
        : "l"(da), "l"(db), "r"(1), "n"(TA), "n"(TB));
#else
    (void)d, (void)da, (void)db;
#endif
}

// d (this warpgroup's 64 x 128) += A (64 x 16) B (16 x 128), both from shared memory; TA, TB: MN-major (1) or
// K-major (0)
template <int TA, int TB>
__device__ __forceinline__ void wg_mma_ss_128(float d[64], uint64_t da, uint64_t db) {
#ifdef WG_DEVICE
    asm volatile(
        "{\n.reg .pred p;\nsetp.ne.b32 p, %66, 0;\n"
        "wgmma.mma_async.sync.aligned.m64n128k16.f32.bf16.bf16 {"
        "%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, %16, %17, %18, %19, %20, "
        "%21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31, %32, %33, %34, %35, %36, %37, %38, %39, "
        "%40, %41, %42, %43, %44, %45, %46, %47, %48, %49, %50, %51, %52, %53, %54, %55, %56, %57, %58, "
        "%59, %60, %61, %62, %63 "
        "}, %64, %65, p, 1, 1, %67, %68;\n}\n"
        : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]), "+f"(d[7]),
          "+f"(d[8]), "+f"(d[9]), "+f"(d[10]), "+f"(d[11]), "+f"(d[12]), "+f"(d[13]), "+f"(d[14]), "+f"(d[15]),
          "+f"(d[16]), "+f"(d[17]), "+f"(d[18]), "+f"(d[19]), "+f"(d[20]), "+f"(d[21]), "+f"(d[22]), "+f"(d[23]),
          "+f"(d[24]), "+f"(d[25]), "+f"(d[26]), "+f"(d[27]), "+f"(d[28]), "+f"(d[29]), "+f"(d[30]), "+f"(d[31]),
          "+f"(d[32]), "+f"(d[33]), "+f"(d[34]), "+f"(d[35]), "+f"(d[36]), "+f"(d[37]), "+f"(d[38]), "+f"(d[39]),
          "+f"(d[40]), "+f"(d[41]), "+f"(d[42]), "+f"(d[43]), "+f"(d[44]), "+f"(d[45]), "+f"(d[46]), "+f"(d[47]),
          "+f"(d[48]), "+f"(d[49]), "+f"(d[50]), "+f"(d[51]), "+f"(d[52]), "+f"(d[53]), "+f"(d[54]), "+f"(d[55]),
          "+f"(d[56]), "+f"(d[57]), "+f"(d[58]), "+f"(d[59]), "+f"(d[60]), "+f"(d[61]), "+f"(d[62]), "+f"(d[63])
        : "l"(da), "l"(db), "r"(1), "n"(TA), "n"(TB));
#else
    (void)d, (void)da, (void)db;
#endif
}

// d (this warpgroup's 64 x 64) += A (64 x 16) B (16 x 64), both from shared memory; TA, TB as above
template <int TA, int TB>
__device__ __forceinline__ void wg_mma_ss_64(float d[32], uint64_t da, uint64_t db) {
#ifdef WG_DEVICE
    asm volatile(
        "{\n.reg .pred p;\nsetp.ne.b32 p, %34, 0;\n"
        "wgmma.mma_async.sync.aligned.m64n64k16.f32.bf16.bf16 {"
        "%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, %16, %17, %18, %19, %20, "
        "%21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31 "
        "}, %32, %33, p, 1, 1, %35, %36;\n}\n"
        : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]), "+f"(d[7]),
          "+f"(d[8]), "+f"(d[9]), "+f"(d[10]), "+f"(d[11]), "+f"(d[12]), "+f"(d[13]), "+f"(d[14]), "+f"(d[15]),
          "+f"(d[16]), "+f"(d[17]), "+f"(d[18]), "+f"(d[19]), "+f"(d[20]), "+f"(d[21]), "+f"(d[22]), "+f"(d[23]),
          "+f"(d[24]), "+f"(d[25]), "+f"(d[26]), "+f"(d[27]), "+f"(d[28]), "+f"(d[29]), "+f"(d[30]), "+f"(d[31])
        : "l"(da), "l"(db), "r"(1), "n"(TA), "n"(TB));
#else
    (void)d, (void)da, (void)db;
#endif
}

// d (this warpgroup's 64 x 128) += A (64 x 16, registers: a warp's 16 rows in mma.sync's A fragment layout)
// B (16 x 128, shared memory; TB: MN-major (1) or K-major (0))
template <int TB>
__device__ __forceinline__ void wg_mma_rs_128(float d[64], const uint32_t a[4], uint64_t db) {
#ifdef WG_DEVICE
    asm volatile(
        "{\n.reg .pred p;\nsetp.ne.b32 p, %69, 0;\n"
        "wgmma.mma_async.sync.aligned.m64n128k16.f32.bf16.bf16 {"
        "%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, %16, %17, %18, %19, %20, "
        "%21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31, %32, %33, %34, %35, %36, %37, %38, %39, "
        "%40, %41, %42, %43, %44, %45, %46, %47, %48, %49, %50, %51, %52, %53, %54, %55, %56, %57, %58, "
        "%59, %60, %61, %62, %63 "
        "}, {%64, %65, %66, %67}, %68, p, 1, 1, %70;\n}\n"
        : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]), "+f"(d[7]),
          "+f"(d[8]), "+f"(d[9]), "+f"(d[10]), "+f"(d[11]), "+f"(d[12]), "+f"(d[13]), "+f"(d[14]), "+f"(d[15]),
          "+f"(d[16]), "+f"(d[17]), "+f"(d[18]), "+f"(d[19]), "+f"(d[20]), "+f"(d[21]), "+f"(d[22]), "+f"(d[23]),
          "+f"(d[24]), "+f"(d[25]), "+f"(d[26]), "+f"(d[27]), "+f"(d[28]), "+f"(d[29]), "+f"(d[30]), "+f"(d[31]),
          "+f"(d[32]), "+f"(d[33]), "+f"(d[34]), "+f"(d[35]), "+f"(d[36]), "+f"(d[37]), "+f"(d[38]), "+f"(d[39]),
          "+f"(d[40]), "+f"(d[41]), "+f"(d[42]), "+f"(d[43]), "+f"(d[44]), "+f"(d[45]), "+f"(d[46]), "+f"(d[47]),
          "+f"(d[48]), "+f"(d[49]), "+f"(d[50]), "+f"(d[51]), "+f"(d[52]), "+f"(d[53]), "+f"(d[54]), "+f"(d[55]),
          "+f"(d[56]), "+f"(d[57]), "+f"(d[58]), "+f"(d[59]), "+f"(d[60]), "+f"(d[61]), "+f"(d[62]), "+f"(d[63])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "l"(db), "r"(1), "n"(TB));
#else
    (void)d, (void)a, (void)db;
#endif
}

// ---- the tensor memory accelerator (TMA) and mbarriers (kernels/cuda/gemm_wgmma.cuh's wgt_forward,
// kernels/cuda/attention_wgmma.cuh's fwd_wg_tma_kernel) ----
__device__ __forceinline__ void wgt_mbar_init(uint32_t bar, int count) {
#ifdef WG_DEVICE
    asm volatile("mbarrier.init.shared::cta.b64 [%0], %1;\n" ::"r"(bar), "r"(count) : "memory");
#endif
}
__device__ __forceinline__ void wgt_mbar_init_fence() {
#ifdef WG_DEVICE
    asm volatile("fence.mbarrier_init.release.cluster;\n" ::: "memory");
#endif
}
__device__ __forceinline__ void wgt_mbar_expect_tx(uint32_t bar, uint32_t bytes) {
#ifdef WG_DEVICE
    asm volatile("mbarrier.arrive.expect_tx.shared::cta.b64 _, [%0], %1;\n" ::"r"(bar), "r"(bytes) : "memory");
#endif
}
__device__ __forceinline__ void wgt_mbar_wait(uint32_t bar, uint32_t parity) {
#ifdef WG_DEVICE
    uint32_t done = 0;
    while (!done)
        asm volatile("{\n.reg .pred p;\nmbarrier.try_wait.parity.shared::cta.b64 p, [%1], %2;\nselp.u32 %0, 1, 0, p;\n}\n"
                     : "=r"(done)
                     : "r"(bar), "r"(parity)
                     : "memory");
#endif
}
__device__ __forceinline__ void wgt_load_2d(uint32_t dst, const void *map, uint32_t bar, int x, int y) {
#ifdef WG_DEVICE
    asm volatile("cp.async.bulk.tensor.2d.shared::cluster.global.mbarrier::complete_tx::bytes [%0], [%1, {%3, %4}], "
                 "[%2];\n" ::"r"(dst),
                 "l"((uint64_t)map), "r"(bar), "r"(x), "r"(y)
                 : "memory");
#endif
}
__device__ __forceinline__ void wgt_load_3d(uint32_t dst, const void *map, uint32_t bar, int x, int y, int z) {
#ifdef WG_DEVICE
    asm volatile("cp.async.bulk.tensor.3d.shared::cluster.global.mbarrier::complete_tx::bytes [%0], [%1, {%3, %4, "
                 "%5}], [%2];\n" ::"r"(dst),
                 "l"((uint64_t)map), "r"(bar), "r"(x), "r"(y), "r"(z)
                 : "memory");
#endif
}

// a plain arrival (an "empty" barrier: the stage's readers are done with it)
__device__ __forceinline__ void wgt_mbar_arrive(uint32_t bar) {
#ifdef WG_DEVICE
    asm volatile("mbarrier.arrive.shared::cta.b64 _, [%0];\n" ::"r"(bar) : "memory");
#endif
}

// ---- clusters of two CTAs sharing an operand (kernels/cuda/gemm_wgmma.cuh's wgpc_forward) ----
// A plain arrival on the mbarrier at bar's offset (this CTA's address) in CTA `rank` of the cluster, with the
// instruction's default release at CTA scope: a release at cluster scope on every consumer warp's arrival costs
// a third of the kernel's rate (bench/NOTES.md), and the stage it frees was read by wgmmas already waited for.
__device__ __forceinline__ void wgt_mbar_arrive_remote(uint32_t bar, unsigned rank) {
#ifdef WG_DEVICE
    asm volatile("{\n.reg .b32 ra;\nmapa.shared::cluster.u32 ra, %0, %1;\n"
                 "mbarrier.arrive.shared::cluster.b64 _, [ra];\n}\n" ::"r"(bar),
                 "r"(rank)
                 : "memory");
#else
    (void)bar, (void)rank;
#endif
}
// wgt_load_2d / wgt_load_3d multicast: the box lands at the same shared-memory offset (dst, this CTA's address) in
// every CTA of the cluster whose rank's bit is set in mask, each completing its bytes on its own mbarrier at bar's
// offset
__device__ __forceinline__ void wgt_load_2d_mc(uint32_t dst, const void *map, uint32_t bar, int x, int y,
                                               uint16_t mask) {
#ifdef WG_DEVICE
    asm volatile("cp.async.bulk.tensor.2d.shared::cluster.global.mbarrier::complete_tx::bytes.multicast::cluster "
                 "[%0], [%1, {%4, %5}], [%2], %3;\n" ::"r"(dst),
                 "l"((uint64_t)map), "r"(bar), "h"(mask), "r"(x), "r"(y)
                 : "memory");
#else
    (void)dst, (void)map, (void)bar, (void)x, (void)y, (void)mask;
#endif
}
__device__ __forceinline__ void wgt_load_3d_mc(uint32_t dst, const void *map, uint32_t bar, int x, int y, int z,
                                               uint16_t mask) {
#ifdef WG_DEVICE
    asm volatile("cp.async.bulk.tensor.3d.shared::cluster.global.mbarrier::complete_tx::bytes.multicast::cluster "
                 "[%0], [%1, {%4, %5, %6}], [%2], %3;\n" ::"r"(dst),
                 "l"((uint64_t)map), "r"(bar), "h"(mask), "r"(x), "r"(y), "r"(z)
                 : "memory");
#else
    (void)dst, (void)map, (void)bar, (void)x, (void)y, (void)z, (void)mask;
#endif
}

// A box of shared memory at src written to the tensor of map at (x, y, z) by the TMA, or added to it (add: an
// element-wise reduction in the L2, fp32 adds rounded to nearest); committed as one bulk group by the caller
// (wgt_bulk_commit), whose shared memory stays untouched until wgt_bulk_wait_read says the TMA has read it.
__device__ __forceinline__ void wgt_store_3d(const void *map, uint32_t src, int x, int y, int z, int add) {
#ifdef WG_DEVICE
    if (add)
        asm volatile("cp.reduce.async.bulk.tensor.3d.global.shared::cta.add.tile.bulk_group [%0, {%2, %3, %4}], [%1];\n"
                     ::"l"((uint64_t)map), "r"(src), "r"(x), "r"(y), "r"(z)
                     : "memory");
    else
        asm volatile("cp.async.bulk.tensor.3d.global.shared::cta.tile.bulk_group [%0, {%2, %3, %4}], [%1];\n"
                     ::"l"((uint64_t)map), "r"(src), "r"(x), "r"(y), "r"(z)
                     : "memory");
#endif
}
// A box of shared memory at src written to the 2-d tensor of map at (x, y) by the TMA (a bulk group as above)
__device__ __forceinline__ void wgt_store_2d(const void *map, uint32_t src, int x, int y) {
#ifdef WG_DEVICE
    asm volatile("cp.async.bulk.tensor.2d.global.shared::cta.tile.bulk_group [%0, {%2, %3}], [%1];\n" ::"l"(
                     (uint64_t)map),
                 "r"(src), "r"(x), "r"(y)
                 : "memory");
#endif
}
__device__ __forceinline__ void wgt_bulk_commit() {
#ifdef WG_DEVICE
    asm volatile("cp.async.bulk.commit_group;\n" ::: "memory");
#endif
}
// until all but the N most recent bulk groups this thread committed have read their shared memory
template <int N>
__device__ __forceinline__ void wgt_bulk_wait_read() {
#ifdef WG_DEVICE
    asm volatile("cp.async.bulk.wait_group.read %0;\n" ::"n"(N) : "memory");
#endif
}

// Register reallocation between the warpgroups of a warp-specialized kernel (setmaxnreg, sm_90a): a warpgroup
// that only issues loads gives registers back (dec) so that the ones running wgmmas can take more (inc). Every
// warp of the warpgroup executes it; N is a multiple of 8 in [24, 256].
template <int N>
__device__ __forceinline__ void wg_setmaxnreg_inc() {
#ifdef WG_DEVICE
    asm volatile("setmaxnreg.inc.sync.aligned.u32 %0;\n" ::"n"(N));
#endif
}
template <int N>
__device__ __forceinline__ void wg_setmaxnreg_dec() {
#ifdef WG_DEVICE
    asm volatile("setmaxnreg.dec.sync.aligned.u32 %0;\n" ::"n"(N));
#endif
}

// The tensor maps are CUtensorMap (64-byte aligned, 128 bytes), passed by value.
struct __align__(64) WgtMap {
    unsigned char bytes[128];
};

// A kernel choice from the environment (for comparison on the card): the digit that variable `name` starts with
// where it is 0 .. hi, else dflt. Callers keep the answer in a static.
inline int env_knob(const char *name, int dflt, int hi) {
    const char *e = getenv(name);
    return e && e[0] >= '0' && e[0] <= '0' + hi ? e[0] - '0' : dflt;
}

// CISPO_NO_TMA=1 in the environment: the kernels that would load through the TMA use cp.async instead (for
// comparison)
inline int tma_off(void) {
    static int off = -1;
    if (off < 0) off = env_knob("CISPO_NO_TMA", 0, 1);
    return off;
}

// The driver's tensor-map encoder, looked up once through the runtime (NULL where the driver lacks it).
inline PFN_cuTensorMapEncodeTiled_v12000 tensor_map_encoder(void) {
    static int looked = 0;
    static PFN_cuTensorMapEncodeTiled_v12000 fn = NULL;
    if (!looked) {
        looked = 1;
        void *p = NULL;
        cudaDriverEntryPointQueryResult q;
        if (cudaGetDriverEntryPointByVersion("cuTensorMapEncodeTiled", &p, 12000, cudaEnableDefault, &q) ==
                cudaSuccess &&
            q == cudaDriverEntryPointSuccess)
            fn = (PFN_cuTensorMapEncodeTiled_v12000)p;
        else
            (void)cudaGetLastError();
    }
    return fn;
}

// A tensor map of `rank` dims of bf16 (f32: fp32) elements (dims[0] contiguous; strides in bytes of dims 1..),
// boxes of `box` elements, 128-byte swizzle, zeros out of range (a load; a store writes only the box's part in
// range). 0, or -1 where the encoder refuses (the caller falls back).
inline int tensor_map(WgtMap *m, const void *base, int rank, const cuuint64_t *dims, const cuuint64_t *strides,
                      const cuuint32_t *box, int f32 = 0) {
    PFN_cuTensorMapEncodeTiled_v12000 enc = tensor_map_encoder();
    if (!enc) return -1;
    const cuuint32_t es[3] = {1, 1, 1};
    CUresult r = enc((CUtensorMap *)m, f32 ? CU_TENSOR_MAP_DATA_TYPE_FLOAT32 : CU_TENSOR_MAP_DATA_TYPE_BFLOAT16,
                     (cuuint32_t)rank, (void *)base, dims, strides, box, es, CU_TENSOR_MAP_INTERLEAVE_NONE,
                     CU_TENSOR_MAP_SWIZZLE_128B, CU_TENSOR_MAP_L2_PROMOTION_L2_256B, CU_TENSOR_MAP_FLOAT_OOB_FILL_NONE);
    return r == CUDA_SUCCESS ? 0 : -1;
}

}  // namespace

#endif
