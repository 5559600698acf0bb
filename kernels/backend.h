// kernels/backend.h — the backend context every op runs in, and the memory it owns.
// defines: backend_t, backend_kind_t, backend_tuning_t, decode_fused_on, decode_route_on, dtype_t, dtype_size, dtype_name,
//          backend_name, backend_available, backend_init, backend_release, backend_host, backend_alloc, backend_free, backend_zero,
//          backend_copy, backend_upload, backend_download, backend_sync, backend_mem_info, backend_ws_reserve,
//          backend_ws_take, backend_ws_room, backend_ws_mark, backend_ws_reset, backend_fill_f32, backend_read_f32,
//          backend_takes_head_dim, backend_open
//
// One context per device and stream. Model, rollout and trainer code hold a backend_t and pass it as
// the first argument of every op (kernels/ops.h); pointers given to ops live in the context's memory
// (host memory for BACKEND_CPU, device memory for BACKEND_CUDA) and are allocated with backend_alloc.
// The CPU backend is the fp32 reference: activation dtype DTYPE_F32 only. The CUDA backend keeps
// activations and the working copy of the weights in DTYPE_BF16; norm and attention statistics, lightning
// states and optimizer state are always fp32. Gradients of parameters are in grad_dtype: fp32 (every
// backend's default), or bf16 on CUDA (the run key grad_dtype: half the memory; each op sums in fp32 and
// rounds once as it adds into the gradient).
//
// Workspace: one arena per context, sized once (backend_ws_reserve, from the ops' *_workspace_bytes
// functions) before a step; ops take their scratch from it (backend_ws_take) and give it back
// (backend_ws_reset to a mark), so nothing is allocated per call.
#ifndef CISPO_KERNELS_BACKEND_H
#define CISPO_KERNELS_BACKEND_H

#include <stddef.h>
#include <stdint.h>

typedef enum { BACKEND_CPU = 0, BACKEND_CUDA = 1, BACKEND_COUNT } backend_kind_t;
typedef enum { DTYPE_F32 = 0, DTYPE_BF16 = 1, DTYPE_COUNT } dtype_t;

size_t dtype_size(int dtype);
const char *dtype_name(int dtype);
const char *backend_name(int kind);

// Tuning knobs of the CUDA kernels (0 = the kernel chooses): set on a context, passed to the
// kernels by the op dispatch. Benchmarks and experiments set them; nothing else needs to.
typedef struct {
    int lightning_cps;        // chunks per segment of the lightning scan: > 0 that many, -1 never segment
    int lightning_prof_skip;  // benchmarks only: scan stages left out (results are wrong when set)
    int attn_fwd_rows;        // 16-row blocks per warp in the attention forward (1 or 2)
    int attn_fwd_pingpong;    // 0 (the default) or 1: the wgmma attention forward's two warpgroups take turns issuing
                              // their products, one's softmax beside the other's wgmmas (the same bits; 366 against
                              // 275 TFLOP/s at T 16384, H 64 on an H100); -1: both issue together
    int attn_fwd_tma;         // 0 (the default) or 1: the wgmma attention forward with the ping-pong and each
                              // warpgroup's softmax beside its own products together, Q, K, V loaded by the TMA onto
                              // mbarriers by a third warpgroup of their own, no __syncthreads a step (the same bits;
                              // 548 against 367 TFLOP/s at T 16384, H 64 on an H100); -1: fwd_wg_kernel on cp.async
                              // (attn_fwd_pingpong)
    int gg_skinny_wide;       // decode-sized expert products (a few rows a group, W_g [n, k]): 0 or 1 through the
                              // wide-k tiles of kernels/cuda/gemm_skinny.cuh, 2 those on a persistent grid (each
                              // CTA's pipeline runs on from tile to tile), -1 the 32-k skinny tiles (the same bits; 2 was
                              // slower in the decode step on an H100: 2.484 against 2.360 ms at batch 64)
    int dense_skinny;         // > 0: matmul's linear layers (W [n, k]) of at most this many rows through the wide-k
                              // tiles instead of cuBLAS (decode's projections: 5-7 us a cuBLAS call for 2-6 MB of
                              // weights; their weight stages load before the PDL wait; bench-1b's decode step on an
                              // H100 at 256 rows: 2.188 against 2.167-2.185 ms at batch 64, 0.823 against
                              // 0.828-0.833 at batch 1); 0 (the default): cuBLAS always
    int decode_fused;         // 0 (the default: on for CUDA, off for the CPU) or 1: a lightning layer's decode step takes q|k|v and the gate from one product (their
                              // weights are adjacent) and q, k, v straight from it (lightning_decode_qkv, the gate
                              // read in place), and an MoE layer's the gated activation from both expert products
                              // in one (grouped_matmul_glu): three launches fewer a layer, the same sums (bench-1b,
                              // batch 64: 2.250 against 2.360 ms a step on an H100); -1: qkv_split, separate
                              // products, glu_forward
    int decode_route;         // 0 (the default: on for CUDA, off for the CPU) or 1: a decode step's post-attention
                              // norm computes the MoE router's logits and routes too (residual_rmsnorm_route: one
                              // launch a layer instead of three; the logits' fp32 sums in another order than
                              // cuBLAS's; bench-1b on an H100: 2.180 against 2.234 ms a step at batch 64, 0.824
                              // against 0.875 at batch 1); -1: residual_rmsnorm, the router's product,
                              // moe_route_forward
    int attn_bwd_overlap;     // 0 (the default) or 1: the wgmma attention backward issues a query tile's dQ products
                              // first and adds dQ into its fp32 buffer while dV's and dK's products run, its buffers
                              // deep enough that no barrier ends a tile (the same bits; 335 against 302 TFLOP/s at
                              // T 16384, H 64, 194 against 177 at T 4096, H 8 on an H100); -1: dV and dK first, all
                              // waited for before the atomics, a barrier after each tile
    int decode_sort;          // 1: a decode step's post-attention norm with the router (decode_route) also sorts the
                              // routes by expert (its last CTA: moe_dispatch's perm and offsets), and the gated
                              // expert product reads its rows through perm: no moe_dispatch launch and no copy of
                              // the rows; 0 (the default): moe_dispatch (bench-1b on an H100: 2.323 against 2.218 ms a step
                              // at batch 64, 0.811 against 0.796 at batch 1)
    int decode_gate;          // 1: a lightning layer's decode step normalises and gates its output in the decode
                              // kernel (lightning_decode_qkv_gate: a cluster of the heads' CTAs a sequence, H <= 8; the
                              // norm's sum in another order than rmsnorm_gate_forward's), one launch a layer fewer;
                              // 0 (the default): rmsnorm_gate_forward after it (bench-1b on an H100: 2.311 against 2.218 ms a
                              // step at batch 64)
    int wg_wgrad_inflight;    // 0 (the default) or 1: the expert weight gradient's wgmma kernel keeps each k step's
                              // wgmmas in flight while the next step's issue (loads 2 steps ahead instead of 3; the
                              // same sums and bits; 433 against 396 TFLOP/s at M1's W1 on an H100); -1: each step
                              // waited for
    int wg_wgrad_tma;         // 0 (the default) or 1: the expert weight gradient's wgmma kernel takes both operands
                              // through the TMA (wgt_wgrad; the group's tail rows zeroed in shared memory; the same
                              // bits; 542 against 433 TFLOP/s at M1's W1 on an H100); -1: cp.async (wg_wgrad_inflight)
    int sample_cluster;       // CTAs a row of sample_tokens on CUDA: 0 (the default) 8, 4 or 2 while each keeps >= 2048
                              // ids and the rows' clusters fill at most half the SMs, else 1; 1, 2, 4 or 8: that
                              // many (the same tokens up to a draw within rounding of a boundary; bench-1b's decode
                              // step on an H100: 8 at batch 1 0.812 against 0.845 ms, at batch 64 2.261 against 2.182)
    int lmhead_bf16;          // experiments only: lmhead_logits rounds its logits to bf16, the output of a bf16
                              // LM head (the train/rollout mismatch M1 fixed with an fp32 head; docs/performance.md)
} backend_tuning_t;

typedef struct {
    int kind;         // backend_kind_t
    int device;       // CUDA device ordinal (0 on the CPU)
    int act_dtype;    // dtype of activations, activation gradients and the weights' working copy
    int grad_dtype;   // dtype of parameter gradients (the weight-gradient ops' output, the optimizer's input):
                      // DTYPE_F32 from backend_init; DTYPE_BF16 set by the caller, CUDA only
    void *stream;     // cudaStream_t of every op (NULL: the default stream); unused on the CPU
    void *blas;       // cublasHandle_t bound to stream; unused on the CPU (OpenBLAS needs none)
    char *ws;         // workspace arena (backend memory)
    size_t ws_bytes, ws_used;
    backend_tuning_t tune;
    // Profiling (benchmarks): when not NULL, every CUDA op synchronises before and after itself and adds
    // its seconds to prof[2*op] and 1 to prof[2*op + 1] (op ids of kernels/ops.h; 2 * OP_COUNT doubles).
    double *prof;
} backend_t;

// backend_tuning_t.decode_fused as the model reads it: 1 on, -1 off, 0 on for CUDA only (the CPU's decode stays the
// separate products its tests were written against)
static inline int decode_fused_on(const backend_t *b) {
    return b->tune.decode_fused > 0 || (b->tune.decode_fused == 0 && b->kind == BACKEND_CUDA);
}

// backend_tuning_t.decode_route as the model reads it: 1 on, -1 off, 0 on for CUDA only (as decode_fused_on)
static inline int decode_route_on(const backend_t *b) {
    return b->tune.decode_route > 0 || (b->tune.decode_route == 0 && b->kind == BACKEND_CUDA);
}

// Whether a backend is compiled in and has a device: the number of devices (1 for the CPU), 0 if none.
int backend_available(int kind);
// Sets up a context: kind, device ordinal, activation dtype. Returns 0, or -1 with cispo_last_error()
// when the backend is not compiled in, has no such device, or does not support the dtype.
int backend_init(backend_t *b, int kind, int device, int act_dtype);
void backend_release(backend_t *b);
// Whether a backend's attention kernels (lightning, softmax, decode) take heads of this width: the CPU
// any, CUDA 16, 32, 64 and 128 (their tiles are compiled for those; lightning's 16 and 32 run zero-padded to 64).
int backend_takes_head_dim(int kind, int head_dim);
// Opens the backend a command asked for (want: BACKEND_CPU, BACKEND_CUDA, or -1 for auto) for a model of
// this head_dim on device ordinal `device`: CPU in fp32, CUDA in bf16. Auto takes CUDA when a GPU is
// visible and its kernels take the model, else the CPU; then *note (when not NULL) is set to why not CUDA
// (NULL when CUDA was taken or no GPU is there). Asked for CUDA that cannot run it: -1, the message naming
// `what` (the key or option that asked) and the reason. 0 or -1 (+ message).
int backend_open(backend_t *b, int want, int device, int head_dim, const char *what, const char **note);
// A process-wide CPU context (fp32) for host-side work (the optimizer on host tensors, tests).
backend_t *backend_host(void);

// Memory of the context (zeroed on allocation). Aborts with a message naming the size on failure.
void *backend_alloc(backend_t *b, size_t bytes);
void backend_free(backend_t *b, void *p);
void backend_zero(backend_t *b, void *p, size_t bytes);
void backend_copy(backend_t *b, void *dst, const void *src, size_t bytes);       // within the backend
void backend_upload(backend_t *b, void *dst, const void *host_src, size_t bytes); // host -> backend
void backend_download(backend_t *b, void *host_dst, const void *src, size_t bytes); // backend -> host (syncs)
void backend_sync(backend_t *b);
// Free and total bytes of the context's memory (0, 0 on the CPU, where the OS decides).
void backend_mem_info(backend_t *b, size_t *free_bytes, size_t *total_bytes);
// Convenience for tests and small transfers: n fp32 values from/to host into/out of a backend
// tensor of dtype `dtype` (converted: bf16 rounds to nearest even).
void backend_fill_f32(backend_t *b, void *dst, int dtype, const float *host, size_t n);
void backend_read_f32(backend_t *b, float *host, const void *src, int dtype, size_t n);

// Workspace: grows the arena to at least `bytes` (never inside a step: it may reallocate).
void backend_ws_reserve(backend_t *b, size_t bytes);
// Takes `bytes` (256-byte aligned) from the arena; aborts when the arena was sized too small.
void *backend_ws_take(backend_t *b, size_t bytes);
// Up to `want` bytes: as many as backend_ws_take can still give (an op whose scratch only makes it faster).
size_t backend_ws_room(const backend_t *b, size_t want);
size_t backend_ws_mark(const backend_t *b);
void backend_ws_reset(backend_t *b, size_t mark);

// bf16 <-> fp32 on the host (round to nearest even; NaN stays NaN).
uint16_t f32_to_bf16(float x);
float bf16_to_f32(uint16_t h);

#endif
