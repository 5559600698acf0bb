// tests/gpu/test_nccl_ep.c — the NCCL path on one GPU (a single-rank communicator, no mpirun): the
// collectives and the MoE exchange on device buffers (trainer/dist_nccl.h), and expert parallelism on the
// CUDA backend through them, against the same model without it:
//   - all-reduce, ZeRO-1 reduce-scatter and all-gather, and the optimizer's piece sums and all-gathers
//     (dist_nccl_pieces_*), of a world of one leave the buffer as it was, with
//     odd sizes (the calls, groups and streams run; the sums over ranks are test_ep's, on the CPU);
//   - grouped send/receive to this rank's own blocks, in an order that permutes the rows;
//   - the tiny-d64 preset (heads the CUDA kernels take) with its experts behind the NCCL transport: log-probs, aux loss and every gradient
//     equal the model without it (the same kernels on the same rows), moe_ep_serve ends at once;
//   - three AdamW steps of the EP optimizer (dense and expert parts, with and without ZeRO-1) equal the
//     whole-buffer optimizer on the GPU.
// Run from the repo root on a machine with a GPU and NCCL: build*/tests/test_nccl_ep (ctest -L gpu).
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "base/common.h"
#include "kernels/ops.h"
#include "model/config.h"
#include "model/model.h"
#include "model/moe_ep.h"
#include "tests/testutil.h"
#include "trainer/dist.h"
#include "trainer/dist_ep.h"
#include "trainer/dist_nccl.h"
#include "trainer/optim.h"

static backend_t gpu;

static void check_collectives(dist_nccl_t *c) {
    const size_t sizes[] = {1, 1001, 4099};
    for (int k = 0; k < 3; k++) {
        size_t n = sizes[k];
        float *h = cispo_malloc(n * sizeof(float)), *back = cispo_malloc(n * sizeof(float));
        uint64_t seed = 3 + (uint64_t)k;
        test_fill(h, n, &seed, -1, 1);
        float *d = backend_alloc(&gpu, n * sizeof(float));
        backend_upload(&gpu, d, h, n * sizeof(float));
        int rc = dist_nccl_allreduce_sum_f32(c, d, n) || dist_nccl_reduce_scatter_sum_f32(c, d, n) ||
                 dist_nccl_allgather_f32(c, d, n);
        backend_download(&gpu, back, d, n * sizeof(float));
        test_check(!rc && !memcmp(h, back, n * sizeof(float)), "n %zu: all-reduce, reduce-scatter and all-gather of "
                   "one rank keep the buffer: %s", n, rc ? cispo_last_error() : "");
        // the backward's per-range reductions on the side stream, after a kernel of the compute stream wrote
        // the buffer (scale by 2), then the wait: a rank's sum of its own doubled values, in both modes
        for (int zero = 0; zero < 2; zero++) {
            scale_f32(&gpu, d, 2.0f, n);
            size_t off[2] = {n / 3, 0}, len[2] = {n - n / 3, n / 3};
            rc = dist_nccl_grads_start(c, d, off, len, 2, n, zero) || dist_nccl_grads_wait(c);
            scale_f32(&gpu, d, 0.5f, n);  // ordered after the reductions by the wait
            backend_download(&gpu, back, d, n * sizeof(float));
            test_check(!rc && !memcmp(h, back, n * sizeof(float)), "n %zu: per-range gradient reductions on the "
                       "side stream (%s) keep one rank's buffer: %s", n, zero ? "ZeRO-1" : "all-reduce",
                       rc ? cispo_last_error() : "");
        }
        // the optimizer's piece collectives: two pieces of the buffer in the other order of the concatenation,
        // summed in both modes and gathered in fp32 and as 2-byte elements
        dist_nccl_piece_t pc[2] = {{n / 3, 0, n - n / 3}, {0, n - n / 3, n / 3}};
        rc = dist_nccl_pieces_sum(c, d, pc, 2, n, 0) || dist_nccl_pieces_sum(c, d, pc, 2, n, 1) ||
             dist_nccl_pieces_gather(c, d, sizeof(float), pc, 2, n) || dist_nccl_pieces_gather(c, d, 2, pc, 2, n);
        backend_download(&gpu, back, d, n * sizeof(float));
        test_check(!rc && !memcmp(h, back, n * sizeof(float)), "n %zu: piece sums and all-gathers (fp32 and 2-byte) "
                   "keep one rank's buffer: %s", n, rc ? cispo_last_error() : "");
        backend_free(&gpu, d);
        free(h), free(back);
    }
    // rows 0..4 (3 floats each) sent as blocks [0, 2) and [2, 5), received at [3, 5) and [0, 3)
    float rows[15], got[15];
    for (int i = 0; i < 15; i++) rows[i] = (float)i;
    float *s = backend_alloc(&gpu, sizeof rows), *r = backend_alloc(&gpu, sizeof rows);
    backend_upload(&gpu, s, rows, sizeof rows);
    moe_ep_block_t sb[2] = {{0, 0, 2}, {0, 2, 3}}, rb[2] = {{0, 3, 2}, {0, 0, 3}};
    int rc = dist_nccl_exchange(c, s, sb, 2, r, rb, 2, 3 * sizeof(float));
    backend_download(&gpu, got, r, sizeof got);
    int ok = !rc;
    for (int i = 0; i < 5 && ok; i++) {
        int from = i < 3 ? i + 2 : i - 3;  // received row i came from sent row `from`
        for (int j = 0; j < 3; j++) ok &= got[3 * i + j] == rows[3 * from + j];
    }
    test_check(ok, "grouped send/receive to this rank's blocks permutes the rows as asked: %s",
               rc ? cispo_last_error() : "");
    backend_free(&gpu, s), backend_free(&gpu, r);
}

static void check_model(dist_nccl_t *c, const model_config_t *cfg) {
    const int T = 20, max_tokens = 32;
    model_t *m = model_create_on(&gpu, cfg, NULL, max_tokens), *ref = model_create_on(&gpu, cfg, NULL, max_tokens);
    const size_t n = m->table.n_floats;
    float *p = cispo_malloc(n * sizeof(float));
    param_init_hf(p, &m->table, cfg, 7);
    backend_upload(&gpu, m->params, p, n * sizeof(float));
    backend_upload(&gpu, ref->params, p, n * sizeof(float));
    model_sync_weights(m), model_sync_weights(ref);
    moe_ep_comm_t comm;
    dist_nccl_ep_comm(c, &comm);
    test_check(moe_ep_attach(m, &comm) == 0, "attach the NCCL transport: %s", cispo_last_error());
    int32_t ids[20], targets[20], cu[3] = {0, 12, 20};
    float dlogp[20], lp[20], lr[20];
    uint64_t seed = 11;
    for (int t = 0; t < T; t++) {
        ids[t] = (int32_t)(test_rng_next(&seed) % (uint64_t)cfg->vocab_size);
        targets[t] = (int32_t)(test_rng_next(&seed) % (uint64_t)cfg->vocab_size);
        dlogp[t] = -1.0f / T;
    }
    model_zero_grad(m), model_zero_grad(ref);
    model_forward(m, ids, cu, 2, T);
    model_logprobs(m, targets, lp, NULL);
    model_backward(m, dlogp, 0.01f);
    moe_ep_serve(m, 1);
    model_forward(ref, ids, cu, 2, T);
    model_logprobs(ref, targets, lr, NULL);
    model_backward(ref, dlogp, 0.01f);
    double dl = test_max_abs_diff(lp, lr, T);
    TEST_LE(dl, 1e-6, "log-probs with the experts behind NCCL equal the model without (max |diff| %.3g)", dl);
    TEST_LE(fabs(m->aux_loss - ref->aux_loss), 1e-6, "load-balancing loss %.9g vs %.9g", m->aux_loss, ref->aux_loss);
    float *g1 = cispo_malloc(n * sizeof(float)), *g2 = cispo_malloc(n * sizeof(float));
    backend_download(&gpu, g1, m->grads, n * sizeof(float));
    backend_download(&gpu, g2, ref->grads, n * sizeof(float));
    double dg = test_rel_l2(g1, g2, n);
    TEST_LE(dg, 1e-6, "every gradient equals the model without the transport (rel %.3g)", dg);

    // the EP optimizer (world of one: the dense and expert parts, whole or ZeRO-1) against the whole buffer's
    dist_ep_t g;
    test_check(dist_ep_init(&g, dist_world(), 1) == 0, "grid of one: %s", cispo_last_error());
    optim_config_t oc = {0};
    oc.lr = 1e-3, oc.beta1 = 0.9, oc.beta2 = 0.95, oc.eps = 1e-8, oc.weight_decay = 0.1, oc.grad_clip = 0.5;
    for (int zero = 0; zero < 2; zero++) {
        backend_upload(&gpu, m->params, p, n * sizeof(float));
        backend_upload(&gpu, ref->params, p, n * sizeof(float));
        model_sync_weights(m), model_sync_weights(ref);
        optim_t oe, ow;
        optim_init_ep(&oe, &gpu, &oc, &m->table, cfg, m->wparams == (void *)m->params ? NULL : m->wparams, &g, zero);
        optim_init_on(&ow, &gpu, &oc, n, ref->wparams == (void *)ref->params ? NULL : ref->wparams);
        for (int s = 0; s < 3; s++) {
            backend_upload(&gpu, m->grads, g2, n * sizeof(float));
            backend_upload(&gpu, ref->grads, g2, n * sizeof(float));
            test_check(optim_reduce_grads(&oe, m->grads) == 0, "reduce: %s", cispo_last_error());
            optim_step(&oe, m->params, m->grads, NULL);
            optim_step(&ow, ref->params, ref->grads, NULL);
        }
        backend_download(&gpu, g1, m->params, n * sizeof(float));
        float *q = cispo_malloc(n * sizeof(float));
        backend_download(&gpu, q, ref->params, n * sizeof(float));
        double dp = test_max_abs_diff(g1, q, n);
        TEST_LE(dp, 1e-6, "zero=%d: 3 AdamW steps of the EP optimizer equal the whole buffer's (max |diff| %.3g)",
                zero, dp);
        free(q);
        optim_free(&oe), optim_free(&ow);
    }
    dist_ep_free(&g);
    free(p), free(g1), free(g2);
    model_free(m), model_free(ref);
}

int main(void) {
    if (!dist_nccl_available()) {
        printf("test_nccl_ep: this build has no NCCL\n");
        return test_check(0, "NCCL in the build"), test_finish("test_nccl_ep");
    }
    if (backend_available(BACKEND_CUDA) < 1 || backend_init(&gpu, BACKEND_CUDA, 0, DTYPE_BF16)) {
        test_check(0, "a GPU: %s", cispo_last_error());
        return test_finish("test_nccl_ep");
    }
    dist_nccl_t *c = dist_nccl_init(dist_world(), &gpu);
    if (!test_check(c != NULL, "single-rank NCCL communicator: %s", cispo_last_error())) return test_finish("test_nccl_ep");
    check_collectives(c);
    model_config_t cfg;
    if (test_check(model_config_load(&cfg, "configs/models/tiny-d64.yaml") == 0, "tiny-d64 preset: %s", cispo_last_error())) {
        check_model(c, &cfg);
        cfg.n_experts = 5;  // an odd expert count
        check_model(c, &cfg);
    }
    dist_nccl_free(c);
    backend_release(&gpu);
    return test_finish("test_nccl_ep");
}
