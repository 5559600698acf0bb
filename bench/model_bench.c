// bench/model_bench.c — training throughput of the whole model on one backend: forward, fp32 LM-head
// log-probs and backward over one packed sequence of T tokens (optionally the AdamW step), random
// weights (without --optim a bf16 working copy and fp32 gradients, no fp32 master: MODEL_NO_MASTER;
// --grad-bf16: the gradients in bf16, the run key grad_dtype=bf16, 2 bytes a parameter as the peer's).
// Prints tokens/s, TFLOP/s, MFU and device memory, and with --ops where the step's time goes per op
// (each op synchronised: the shares are right, the sum exceeds the step time).
//   model_bench --model configs/models/bench-1b.yaml --T 4096,16384 [--optim] [--reps 5] [--ops]
//               [--device cuda|cpu] [--peak 790] [--layers N] [--recompute | --recompute-cheap] [--grad-bf16]
//               [--no-attn-tma] [--no-wgrad-tma] [--no-wgrad-inflight] [--no-attn-pingpong] [--no-attn-bwd-overlap]
// For comparison with the defaults: --no-attn-tma: the attention forward on cp.async, the warpgroups' ping-pong
// without each one's softmax beside its own products (backend_tuning_t attn_fwd_tma = -1); --no-wgrad-tma: the
// expert weight gradient on cp.async with each k step's wgmmas in flight (wg_wgrad_tma = -1); --no-wgrad-inflight
// (with --no-wgrad-tma): the cp.async weight gradient waiting for each k step's wgmmas (wg_wgrad_inflight = -1);
// --no-attn-pingpong (with --no-attn-tma): the cp.async forward's warpgroups issuing together (attn_fwd_pingpong
// = -1). --no-attn-bwd-overlap: the attention backward's dQ atomics after dV's and dK's products, a barrier a query
// tile (attn_bwd_overlap = -1).
// --recompute plans the activations with MODEL_RECOMPUTE (each layer's forward runs again in the backward),
// --recompute-cheap with MODEL_RECOMPUTE_CHEAP (the backward makes the pieces again that need no GEMM).
// FLOPs, as the transformers peer script counts them (bench/train_device.sh runs both): 6 x the
// matmul parameters a token touches (attention projections, K experts, router, LM head) x T, plus
// causal softmax attention forward+backward 3 x 2 x 2 x T^2/2 x A per softmax layer. The lightning
// core's own FLOPs are not counted (as in the peer's formula).
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/common.h"
#include "base/rng.h"
#include "kernels/ops.h"
#include "model/model.h"
#include "trainer/optim.h"

static double active_params(const model_config_t *c) {
    const double C = c->hidden_size, A = (double)c->n_heads * c->head_dim, KVD = (double)c->n_kv_heads * c->head_dim;
    const double F = c->intermediate_size, K = c->n_experts_per_tok, E = c->n_experts, V = c->vocab_size;
    double p = V * C;
    for (int l = 0; l < c->n_layers; l++) {
        p += c->layer_kind[l] == LAYER_LIGHTNING ? 3 * A * C + A * C + C * A : A * C + 2 * KVD * C + C * A;
        p += K * 3 * C * F + E * C;
    }
    return p;
}

static double step_flops(const model_config_t *c, int T) {
    int nsoft = 0;
    for (int l = 0; l < c->n_layers; l++) nsoft += c->layer_kind[l] == LAYER_SOFTMAX;
    const double A = (double)c->n_heads * c->head_dim;
    return 6 * active_params(c) * T + nsoft * 3.0 * 2 * 2 * (double)T * T * A / 2;
}

// Random weights straight into a working copy without a master (MODEL_NO_MASTER): norms 1, every other
// tensor normal(0, initializer_range) drawn from one pool of 2^24 bf16 values, each tensor from its own offset
// in it. A timing needs weights of the right scale, not 87 GB of fresh fp32 values on the host (the M1 slice).
static void fill_working_copy(model_t *m, const model_config_t *cfg) {
    const size_t pool_n = (size_t)1 << 24, es = m->esize;
    float *f = cispo_malloc(pool_n * sizeof(float));
    uint64_t s = 7;
    rng_fill_normal(f, pool_n, cfg->initializer_range > 0 ? cfg->initializer_range : 0.02, &s);
    uint16_t *pool = cispo_malloc(2 * pool_n * sizeof(uint16_t)), *ones = cispo_malloc(pool_n * sizeof(uint16_t));
    for (size_t i = 0; i < pool_n; i++) pool[i] = pool[pool_n + i] = f32_to_bf16(f[i]), ones[i] = f32_to_bf16(1.0f);
    free(f);
    for (int e = 0; e < m->table.n_entries; e++) {
        const param_entry_t *pe = &m->table.entries[e];
        size_t at = rng_fnv1a_str(pe->name) % pool_n;
        for (size_t i = 0; i < pe->numel; i += pool_n) {
            const size_t n = pe->numel - i < pool_n ? pe->numel - i : pool_n;
            const uint16_t *src = pe->ndim == 1 ? ones : pool + at;
            backend_upload(m->be, (char *)m->wparams + (pe->offset + i) * es, src, n * es);
            at = (at + 104729) % pool_n;
        }
    }
    backend_sync(m->be);
    free(pool), free(ones);
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

int main(int argc, char **argv) {
    const char *model_path = "configs/models/bench-1b.yaml", *Ts = "4096", *device = "cuda";
    int reps = 5, with_optim = 0, ops = 0, layers = 0, recompute = 0, grad_bf16 = 0, inflight = 0, pingpong = 0, tma = 0, wgrad_tma = 0,
        bwd_ovl = 0;
    double peak = 790;  // measured bf16 matmul TFLOP/s of the H200 (docs/performance.md)
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--model") && i + 1 < argc) model_path = argv[++i];
        else if (!strcmp(argv[i], "--T") && i + 1 < argc) Ts = argv[++i];
        else if (!strcmp(argv[i], "--reps") && i + 1 < argc) reps = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--device") && i + 1 < argc) device = argv[++i];
        else if (!strcmp(argv[i], "--peak") && i + 1 < argc) peak = atof(argv[++i]);
        else if (!strcmp(argv[i], "--layers") && i + 1 < argc) layers = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--optim")) with_optim = 1;
        else if (!strcmp(argv[i], "--ops")) ops = 1;
        else if (!strcmp(argv[i], "--recompute")) recompute = MODEL_RECOMPUTE;
        else if (!strcmp(argv[i], "--recompute-cheap")) recompute = MODEL_RECOMPUTE_CHEAP;
        else if (!strcmp(argv[i], "--grad-bf16")) grad_bf16 = 1;
        else if (!strcmp(argv[i], "--no-wgrad-inflight")) inflight = 1;
        else if (!strcmp(argv[i], "--no-attn-pingpong")) pingpong = 1;
        else if (!strcmp(argv[i], "--no-attn-tma")) tma = 1;
        else if (!strcmp(argv[i], "--no-wgrad-tma")) wgrad_tma = 1;
        else if (!strcmp(argv[i], "--no-attn-bwd-overlap")) bwd_ovl = 1;
        else {
            fprintf(stderr, "model_bench: unknown argument '%s' (see the header of bench/model_bench.c)\n", argv[i]);
            return 2;
        }
    }
    if (reps < 1) reps = 1;
    model_config_t cfg;
    if (model_config_load(&cfg, model_path)) return fprintf(stderr, "model_bench: %s\n", cispo_last_error()), 1;
    if (layers > 0 && layers <= MODEL_MAX_LAYERS) {  // a slice: softmax at l % 4 == 3 (l = 1 when two layers), as the peer
        cfg.n_layers = layers;
        for (int l = 0; l < layers; l++)
            cfg.layer_kind[l] = l % 4 == 3 || (layers == 2 && l == 1) ? LAYER_SOFTMAX : LAYER_LIGHTNING;
    }
    backend_t be;
    int cuda = !strcmp(device, "cuda");
    if (backend_init(&be, cuda ? BACKEND_CUDA : BACKEND_CPU, 0, cuda ? DTYPE_BF16 : DTYPE_F32))
        return fprintf(stderr, "model_bench: %s\n", cispo_last_error()), 1;
    if (grad_bf16 && !cuda) return fprintf(stderr, "model_bench: --grad-bf16 needs --device cuda\n"), 2;
    if (grad_bf16) be.grad_dtype = DTYPE_BF16;
    if (inflight) be.tune.wg_wgrad_inflight = -1, printf("expert weight gradient: each step's wgmmas waited for\n");
    if (pingpong) be.tune.attn_fwd_pingpong = -1, printf("attention forward: the warpgroups issuing together\n");
    if (tma) be.tune.attn_fwd_tma = -1, printf("attention forward: on cp.async (--no-attn-tma)\n");
    if (wgrad_tma) be.tune.wg_wgrad_tma = -1, printf("expert weight gradient: on cp.async (--no-wgrad-tma)\n");
    if (bwd_ovl) be.tune.attn_bwd_overlap = -1, printf("attention backward: dQ's atomics after dV's and dK's products\n");
    double prof[2 * OP_COUNT];
    for (const char *p = Ts; *p;) {
        int T = atoi(p);
        while (*p && *p != ',') p++;
        if (*p == ',') p++;
        if (T < 2) continue;
        size_t free0 = 0, total = 0, free1 = 0;
        backend_mem_info(&be, &free0, &total);
        // without the optimizer step no fp32 master is needed, as the peer holds none: bf16 weights and fp32
        // gradients only
        const int flags = recompute | (with_optim ? 0 : MODEL_NO_MASTER);
        model_t *m = model_create_experts(&be, &cfg, NULL, T, 0, cfg.n_experts, flags);
        const size_t np = m->table.n_floats;
        if (m->params) {
            float *host = cispo_malloc(np * sizeof(float));
            param_init_hf(host, &m->table, &cfg, 1);
            backend_upload(&be, m->params, host, np * sizeof(float));
            free(host);
            model_sync_weights(m);
        } else {
            fill_working_copy(m, &cfg);
        }
        optim_t opt = {0};
        optim_config_t oc = {.lr = 1e-4, .total = 1, .min_ratio = 1, .beta1 = 0.9, .beta2 = 0.95, .eps = 1e-15,
                             .weight_decay = 0.1, .grad_clip = 1.0};
        if (with_optim) optim_init_on(&opt, &be, &oc, np, m->wparams == (void *)m->params ? NULL : m->wparams);
        int32_t *ids = cispo_malloc(sizeof(int32_t) * T), *tg = cispo_malloc(sizeof(int32_t) * T), cu[2] = {0, T};
        uint64_t s = 42;
        for (int t = 0; t < T; t++) ids[t] = (int32_t)(rng_next(&s) % (uint64_t)cfg.vocab_size);
        for (int t = 0; t < T; t++) tg[t] = t + 1 < T ? ids[t + 1] : -1;
        float *logp = cispo_malloc(sizeof(float) * T), *d = cispo_malloc(sizeof(float) * T);
        for (int t = 0; t < T; t++) d[t] = tg[t] >= 0 ? -1.0f / (T - 1) : 0.0f;
        double *times = cispo_malloc(sizeof(double) * (size_t)reps);
        for (int r = -2; r < reps + (ops ? 1 : 0); r++) {  // two warm-up steps; with --ops one profiled step
            if (r == reps) {
                memset(prof, 0, sizeof prof);
                be.prof = prof;
            }
            backend_sync(&be);
            double t0 = cispo_now();
            if (model_forward(m, ids, cu, 1, T)) return fprintf(stderr, "model_bench: %s\n", cispo_last_error()), 1;
            model_logprobs(m, tg, logp, NULL);
            model_zero_grad_deferred(m);  // as the trainer: the backward writes the gradients
            model_backward(m, d, 0.001f);
            if (with_optim) optim_step(&opt, m->params, m->grads, NULL);
            backend_sync(&be);
            if (r >= 0 && r < reps) times[r] = cispo_now() - t0;
            be.prof = NULL;
        }
        backend_mem_info(&be, &free1, &total);
        qsort(times, (size_t)reps, sizeof(double), cmp_double);
        double dt = times[reps / 2], fl = step_flops(&cfg, T);
        printf("cispo %s %s T=%d%s%s%s: %.4f s/step (median of %d), %.0f tokens/s, %.1f TFLOP/s, MFU %.1f%% of %.0f, "
               "device memory %.1f GiB\n",
               model_path, device, T, with_optim ? " +AdamW" : " fwd+bwd",
               recompute == MODEL_RECOMPUTE ? " recompute" : recompute ? " recompute-cheap" : "",
               grad_bf16 ? " grad-bf16" : "", dt, reps,
               T / dt, fl / dt / 1e12,
               100 * fl / dt / (peak * 1e12), peak, (double)(free0 - free1) / (1 << 30));
        if (ops) {
            double sum = 0;
            for (int o = 0; o < OP_COUNT; o++) sum += prof[2 * o];
            printf("  per op (synchronised each; %.4f s in all):\n", sum);
            for (int o = 0; o < OP_COUNT; o++)
                if (prof[2 * o + 1] > 0)
                    printf("    %-26s %8.3f ms %5.1f%%  (%.0f calls)\n", op_name(o), 1e3 * prof[2 * o],
                           100 * prof[2 * o] / sum, prof[2 * o + 1]);
        }
        if (with_optim) optim_free(&opt);
        model_free(m);
        free(ids), free(tg), free(logp), free(d), free(times);
    }
    backend_release(&be);
    return 0;
}
