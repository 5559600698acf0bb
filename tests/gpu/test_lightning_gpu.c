// tests/gpu/test_lightning_gpu.c — lightning attention CUDA kernels against the fp32 CPU reference.
// Run on a GPU machine: ctest --test-dir build-gpu -L gpu -R lightning (TEST_VERBOSE=1 prints every check).
//
// Each case draws fresh random bf16 inputs (the CPU reference gets the same values in fp32), poisons
// every GPU output with NaN bytes first (so an unwritten element fails), and compares by
// ||gpu - cpu|| / ||cpu||: forward o and final state, backward dq, dk, dv and dL/dstate_in, and
// decode steps continuing a GPU prefill. bf16 operands land between 1e-3 and 1e-2; NaN never passes.
// Cases cover T = 1..65536, lengths that are not multiples of the 64-token tile, empty sequences,
// packed batches of mixed lengths, H in {1, 8, 64}, D in {64, 128}, with and without initial state,
// and both the one-CTA-per-sequence path and the segmented path (few heads and sequences).
#include <cuda_runtime_api.h>

#include "base/common.h"
#include "kernels/cuda/lightning.h"
#include "kernels/cpu/ops_cpu.h"
#include "tests/testutil.h"

#define TOL 1e-2

#define CUDA_OK(call)                                                                        \
    do {                                                                                     \
        cudaError_t e_ = (call);                                                             \
        if (e_ != cudaSuccess) {                                                             \
            fprintf(stderr, "%s:%d: %s: %s\n", __FILE__, __LINE__, #call, cudaGetErrorString(e_)); \
            exit(2);                                                                         \
        }                                                                                    \
    } while (0)
#define CALL_OK(call)                                                                        \
    do {                                                                                     \
        if ((call) != 0) {                                                                   \
            fprintf(stderr, "%s:%d: %s failed: %s\n", __FILE__, __LINE__, #call, cispo_last_error()); \
            exit(2);                                                                         \
        }                                                                                    \
    } while (0)

static uint16_t f2bf(float f) {  // round to nearest even
    uint32_t u;
    memcpy(&u, &f, 4);
    u += 0x7fffu + ((u >> 16) & 1u);
    return (uint16_t)(u >> 16);
}
static float bf2f(uint16_t b) {
    uint32_t u = (uint32_t)b << 16;
    float f;
    memcpy(&f, &u, 4);
    return f;
}

static uint64_t rng = 0x5eed1234abcdull;

// n random bf16 values in [-a, a]: host fp32 copy (exactly the bf16 values) and a device copy.
static uint16_t *rand_bf16(float *host, size_t n, float a) {
    uint16_t *tmp = cispo_malloc(n * sizeof(uint16_t) + 2);
    for (size_t i = 0; i < n; i++) {
        tmp[i] = f2bf((float)test_uniform(&rng, -a, a));
        host[i] = bf2f(tmp[i]);
    }
    uint16_t *d = NULL;
    CUDA_OK(cudaMalloc((void **)&d, n * sizeof(uint16_t) + 2));
    CUDA_OK(cudaMemcpy(d, tmp, n * sizeof(uint16_t), cudaMemcpyHostToDevice));
    free(tmp);
    return d;
}
static void *dev_poisoned(size_t bytes) {
    void *d = NULL;
    CUDA_OK(cudaMalloc(&d, bytes ? bytes : 16));
    CUDA_OK(cudaMemset(d, 0xff, bytes ? bytes : 16));  // bf16 0xffff and fp32 0xffffffff are NaN
    return d;
}
static void *dev_copy(const void *h, size_t bytes) {
    void *d = NULL;
    CUDA_OK(cudaMalloc(&d, bytes ? bytes : 16));
    if (bytes) CUDA_OK(cudaMemcpy(d, h, bytes, cudaMemcpyHostToDevice));
    return d;
}
static float *bf16_to_host(const uint16_t *d, size_t n) {
    uint16_t *tmp = cispo_malloc(n * sizeof(uint16_t) + 2);
    CUDA_OK(cudaMemcpy(tmp, d, n * sizeof(uint16_t), cudaMemcpyDeviceToHost));
    float *h = cispo_malloc(n * sizeof(float) + 4);
    for (size_t i = 0; i < n; i++) h[i] = bf2f(tmp[i]);
    free(tmp);
    return h;
}
static float *f32_to_host(const float *d, size_t n) {
    float *h = cispo_malloc(n * sizeof(float) + 4);
    CUDA_OK(cudaMemcpy(h, d, n * sizeof(float), cudaMemcpyDeviceToHost));
    return h;
}

static void check_rel(const char *what, const char *name, const float *gpu, const float *ref, size_t n) {
    double e = test_rel_l2(gpu, ref, n);
    TEST_LE(e, TOL, "%s %s: rel L2 %.3e (n=%zu)", name, what, e, n);
}

// One forward + backward case: sequence lengths lens[nseq], H heads of dim D, slopes of `layer` of 8.
static void run_case(const char *name, const int *lens, int nseq, int H, int D, int with_state, int cpu_block,
                     int layer) {
    int32_t *cu = cispo_malloc((size_t)(nseq + 1) * sizeof(int32_t));
    cu[0] = 0;
    for (int s = 0; s < nseq; s++) cu[s + 1] = cu[s] + lens[s];
    const int T = cu[nseq];
    const size_t n = (size_t)T * H * D, ns = (size_t)nseq * H * D * D;
    float *slopes = cispo_malloc((size_t)H * sizeof(float));
    lightning_slopes(slopes, H, layer, 8, 0);

    float *q = cispo_malloc(n * 4 + 4), *k = cispo_malloc(n * 4 + 4), *v = cispo_malloc(n * 4 + 4);
    float *dout = cispo_malloc(n * 4 + 4), *s_in = NULL;
    uint16_t *dq_ = rand_bf16(q, n, 1.0f), *dk_ = rand_bf16(k, n, 1.0f), *dv_ = rand_bf16(v, n, 1.0f);
    uint16_t *ddo = rand_bf16(dout, n, 1.0f);
    float *d_sin = NULL;
    if (with_state) {
        s_in = cispo_malloc(ns * 4);
        test_fill(s_in, ns, &rng, -2.0, 2.0);
        d_sin = dev_copy(s_in, ns * 4);
    }
    int32_t *d_cu = dev_copy(cu, (size_t)(nseq + 1) * 4);
    float *d_slopes = dev_copy(slopes, (size_t)H * 4);
    size_t wsb = lightning_workspace_bytes_cuda(T, nseq, H, D);
    void *ws = wsb ? dev_poisoned(wsb) : NULL;

    // ---- forward
    uint16_t *d_o = dev_poisoned(n * 2);
    float *d_sout = dev_poisoned(ns * 4);
    CALL_OK(lightning_forward_cuda(d_o, d_sout, dq_, dk_, dv_, d_sin, d_slopes, d_cu, nseq, H, D, 64, T, ws, wsb, 0));
    CUDA_OK(cudaDeviceSynchronize());
    float *o_ref = cispo_calloc(n + 1, 4), *s_ref = cispo_calloc(ns, 4);
    lightning_forward_cpu(o_ref, s_ref, q, k, v, s_in, slopes, cu, nseq, H, D, cpu_block);
    float *o_gpu = bf16_to_host(d_o, n), *s_gpu = f32_to_host(d_sout, ns);
    check_rel("forward o", name, o_gpu, o_ref, n);
    check_rel("forward state_out", name, s_gpu, s_ref, ns);

    // ---- backward (GPU writes; the CPU accumulates into zeros)
    uint16_t *g_dq = dev_poisoned(n * 2), *g_dk = dev_poisoned(n * 2), *g_dv = dev_poisoned(n * 2);
    float *g_ds = with_state ? dev_poisoned(ns * 4) : NULL;
    if (ws) CUDA_OK(cudaMemset(ws, 0xff, wsb));
    CALL_OK(lightning_backward_cuda(g_dq, g_dk, g_dv, g_ds, ddo, dq_, dk_, dv_, d_sin, d_slopes, d_cu, nseq, H, D, 64,
                                    T, ws, wsb, 0));
    CUDA_OK(cudaDeviceSynchronize());
    float *rdq = cispo_calloc(n + 1, 4), *rdk = cispo_calloc(n + 1, 4), *rdv = cispo_calloc(n + 1, 4);
    float *rds = with_state ? cispo_calloc(ns, 4) : NULL;
    lightning_backward_cpu(rdq, rdk, rdv, rds, dout, q, k, v, s_in, slopes, cu, nseq, H, D, cpu_block);
    float *hdq = bf16_to_host(g_dq, n), *hdk = bf16_to_host(g_dk, n), *hdv = bf16_to_host(g_dv, n);
    check_rel("backward dq", name, hdq, rdq, n);
    check_rel("backward dk", name, hdk, rdk, n);
    check_rel("backward dv", name, hdv, rdv, n);
    if (with_state) {
        float *hds = f32_to_host(g_ds, ns);
        check_rel("backward dstate_in", name, hds, rds, ns);
        free(hds);
        free(rds);
        cudaFree(g_ds);
    }
    printf("%s: T=%d nseq=%d H=%d D=%d state=%d workspace=%zu B done\n", name, T, nseq, H, D, with_state, wsb);
    fflush(stdout);

    free(hdq); free(hdk); free(hdv); free(rdq); free(rdk); free(rdv);
    free(o_gpu); free(s_gpu); free(o_ref); free(s_ref);
    cudaFree(g_dq); cudaFree(g_dk); cudaFree(g_dv); cudaFree(d_o); cudaFree(d_sout);
    cudaFree(dq_); cudaFree(dk_); cudaFree(dv_); cudaFree(ddo); cudaFree(d_cu); cudaFree(d_slopes);
    if (ws) cudaFree(ws);
    if (d_sin) cudaFree(d_sin);
    free(s_in); free(q); free(k); free(v); free(dout); free(slopes); free(cu);
}

// Prefill on the GPU (forward with state_out), then `steps` decode steps continuing from that state;
// the CPU does the same with its forward and decode. Compares every step's o and the final state.
static void run_decode_case(const char *name, const int *lens, int nseq, int H, int D, int steps) {
    int32_t *cu = cispo_malloc((size_t)(nseq + 1) * sizeof(int32_t));
    cu[0] = 0;
    for (int s = 0; s < nseq; s++) cu[s + 1] = cu[s] + lens[s];
    const int T = cu[nseq];
    const size_t n = (size_t)T * H * D, ns = (size_t)nseq * H * D * D, nd = (size_t)nseq * H * D;
    float *slopes = cispo_malloc((size_t)H * sizeof(float));
    lightning_slopes(slopes, H, 3, 8, 1);
    float *q = cispo_malloc(n * 4 + 4), *k = cispo_malloc(n * 4 + 4), *v = cispo_malloc(n * 4 + 4);
    uint16_t *dq_ = rand_bf16(q, n, 1.0f), *dk_ = rand_bf16(k, n, 1.0f), *dv_ = rand_bf16(v, n, 1.0f);
    int32_t *d_cu = dev_copy(cu, (size_t)(nseq + 1) * 4);
    float *d_slopes = dev_copy(slopes, (size_t)H * 4);
    size_t wsb = lightning_workspace_bytes_cuda(T, nseq, H, D);
    void *ws = wsb ? dev_poisoned(wsb) : NULL;
    uint16_t *d_o = dev_poisoned(n * 2 + 2);
    float *d_state = dev_poisoned(ns * 4);
    CALL_OK(lightning_forward_cuda(d_o, d_state, dq_, dk_, dv_, NULL, d_slopes, d_cu, nseq, H, D, 64, T, ws, wsb, 0));
    float *o_ref = cispo_calloc(n + 1, 4), *s_ref = cispo_calloc(ns, 4);
    lightning_forward_cpu(o_ref, s_ref, q, k, v, NULL, slopes, cu, nseq, H, D, 256);

    float *tq = cispo_malloc(nd * 4), *tk = cispo_malloc(nd * 4), *tv = cispo_malloc(nd * 4);
    float *to_ref = cispo_malloc(nd * 4);
    double worst = 0;
    for (int st = 0; st < steps; st++) {
        uint16_t *gq = rand_bf16(tq, nd, 1.0f), *gk = rand_bf16(tk, nd, 1.0f), *gv = rand_bf16(tv, nd, 1.0f);
        uint16_t *go = dev_poisoned(nd * 2);
        CALL_OK(lightning_decode_cuda(go, d_state, gq, gk, gv, d_slopes, nseq, H, D, 0));
        CUDA_OK(cudaDeviceSynchronize());
        lightning_decode_cpu(to_ref, s_ref, tq, tk, tv, slopes, nseq, H, D);
        float *to = bf16_to_host(go, nd);
        double e = test_rel_l2(to, to_ref, nd);
        if (e > worst) worst = e;  // test_rel_l2 maps NaN to INFINITY
        free(to);
        cudaFree(gq); cudaFree(gk); cudaFree(gv); cudaFree(go);
    }
    TEST_LE(worst, TOL, "%s decode o (worst of %d steps): rel L2 %.3e", name, steps, worst);
    float *s_gpu = f32_to_host(d_state, ns);
    check_rel("decode final state", name, s_gpu, s_ref, ns);
    printf("%s: prefill T=%d nseq=%d H=%d D=%d + %d decode steps done\n", name, T, nseq, H, D, steps);
    fflush(stdout);
    free(s_gpu); free(tq); free(tk); free(tv); free(to_ref); free(o_ref); free(s_ref);
    cudaFree(d_o); cudaFree(d_state); cudaFree(dq_); cudaFree(dk_); cudaFree(dv_); cudaFree(d_cu); cudaFree(d_slopes);
    if (ws) cudaFree(ws);
    free(q); free(k); free(v); free(slopes); free(cu);
}

// A bad head_dim must be refused with a message, not launched.
static void check_bad_args(void) {
    int rc = lightning_forward_cuda((uint16_t *)16, NULL, (uint16_t *)16, (uint16_t *)16, (uint16_t *)16, NULL,
                                    (float *)16, (int32_t *)16, 1, 8, 96, 64, 128, NULL, 0, 0);
    test_check(rc == -1 && strstr(cispo_last_error(), "D=96") != NULL, "D=96 refused: rc=%d msg='%s'", rc,
               cispo_last_error());
}

int main(void) {
    int ndev = 0;
    if (cudaGetDeviceCount(&ndev) != cudaSuccess || ndev == 0) {
        printf("test_lightning_gpu: no CUDA device: this test needs a GPU (label gpu)\n");
        return 1;
    }
    struct cudaDeviceProp prop;
    CUDA_OK(cudaGetDeviceProperties(&prop, 0));
    printf("device: %s (sm_%d%d, %d SMs)\n", prop.name, prop.major, prop.minor, prop.multiProcessorCount);

    check_bad_args();
    { int l[] = {1};                  run_case("T1_H1_D64", l, 1, 1, 64, 0, 64, 0); }
    { int l[] = {1};                  run_case("T1_H8_D128_state", l, 1, 8, 128, 1, 256, 2); }
    { int l[] = {100};                run_case("T100_H8_D128_state", l, 1, 8, 128, 1, 64, 1); }
    { int l[] = {63, 1, 0, 64, 65, 200, 1000, 7};
                                      run_case("packed8_H8_D64_state", l, 8, 8, 64, 1, 256, 4); }
    { int l[] = {1000, 1500, 517};    run_case("packed3_H64_D128_state", l, 3, 64, 128, 1, 256, 0); }
    { int l[] = {4096};               run_case("T4096_H64_D128_state", l, 1, 64, 128, 1, 256, 3); }
    { int l[] = {777, 1234, 2000, 1};  run_case("packed4_H64_D64", l, 4, 64, 64, 0, 64, 7); }
    { int l[] = {16384};              run_case("T16384_H8_D128_state", l, 1, 8, 128, 1, 256, 0); }
    { int l[] = {65536};              run_case("T65536_H1_D128_state", l, 1, 1, 128, 1, 256, 0); }
    { int l[] = {40000, 25000, 536};  run_case("packed3_T65536_H1_D64", l, 3, 1, 64, 0, 64, 5); }
    { int l[] = {65535};              run_case("T65535_H8_D64_state", l, 1, 8, 64, 1, 256, 6); }
    { int l[] = {5, 64, 300, 1, 129, 1000, 70}; run_decode_case("decode7_H8_D128", l, 7, 8, 128, 6); }
    { int l[] = {33, 200, 1};         run_decode_case("decode3_H64_D64", l, 3, 64, 64, 4); }
    { int l[] = {4000};               run_decode_case("decode1_H1_D128", l, 1, 1, 128, 3); }
    return test_finish("test_lightning_gpu");
}
