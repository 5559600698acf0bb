// bench/generate_bench.c — the generation engine on a backend (model/infer.h, rl/rollout.h): random
// prompts of P tokens, N new tokens each (no EOS), batch B, sampling at temperature 1 on the device.
// Prints per configuration: decode tokens/s, time per decode step, bytes a decode step moves (weights
// read once: dense weights + the experts the batch's tokens touch + the LM head; lightning states read
// and written; KV read at the mean cached length), the measured device-to-device copy bandwidth and
// the fraction of it the step reaches.
// With --ops, each configuration also gets the per-op time of a decode step: the same batch op by op (no
// CUDA graph) with every op synchronised and timed (backend_t.prof), 33 new tokens less 1 (the prefill and
// first step cancel), divided by the 32 steps; the rest of the unprofiled step time is the host's.
// --skinny-narrow: the decode expert products through the 32-k skinny tiles instead of the wide-k ones
// (backend_tuning_t.gg_skinny_wide = -1), for comparison. --decode-unfused: the decode step's separate products
// (backend_tuning_t.decode_fused = -1) instead of a lightning layer's one q|k|v|gate product with
// lightning_decode_qkv and an MoE layer's grouped_matmul_glu (the default on CUDA). --skinny-loop: the wide-k
// tiles on a persistent grid (gg_skinny_wide = 2). --dense-skinny M: linear layers of at most M rows through the
// wide-k tiles instead of cuBLAS (dense_skinny). --no-decode-route: the router's product and moe_route_forward
// after each post-attention norm (decode_route = -1) instead of residual_rmsnorm_route (the default on CUDA).
// --variants A,B,...: each configuration once per variant, in turn, in this one process (one model set-up for
// all), --rounds R times over, then a table of each variant's median ms a step and the ratio of the first
// variant's to it. A variant is a name of variant_knobs below, or several joined by '+' (loop+dense64); "base"
// is the tuning above. The lines of a variant's runs start "cispo generate [name] ...".
//   generate_bench --model configs/models/bench-1b.yaml --prompt 128 --new 256,4096 --batch 1,16,64,256 [--device cuda]
//                  [--ops] [--skinny-narrow] [--skinny-loop] [--decode-unfused] [--no-decode-route] [--dense-skinny M]
//                  [--variants base,noroute,... [--rounds R]]
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/common.h"
#include "kernels/ops.h"
#include "model/infer.h"
#include "rl/rollout.h"

static int parse_list(const char *s, int *v, int cap) {
    int n = 0;
    while (*s && n < cap) {
        v[n++] = atoi(s);
        const char *c = strchr(s, ',');
        if (!c) break;
        s = c + 1;
    }
    return n;
}

// The tuning a variant name sets (generate_bench --variants; bench/decode_ab.sh): 0, or -1 for an unknown name.
static int variant_knob(const char *name, backend_tuning_t *t) {
    if (!strcmp(name, "base")) return 0;
    if (!strcmp(name, "unfused")) return t->decode_fused = -1, 0;      // separate decode products
    if (!strcmp(name, "noroute")) return t->decode_route = -1, 0;      // the router after the norm
    if (!strcmp(name, "loop")) return t->gg_skinny_wide = 2, 0;        // the wide-k tiles on a persistent grid
    if (!strcmp(name, "narrow")) return t->gg_skinny_wide = -1, 0;     // the 32-k skinny tiles
    if (!strcmp(name, "dense64")) return t->dense_skinny = 64, 0;      // linear layers through the wide-k tiles
    if (!strcmp(name, "dense256")) return t->dense_skinny = 256, 0;
    if (!strcmp(name, "gate")) return t->decode_gate = 1, 0;           // the output norm in the decode kernel
    if (!strcmp(name, "sort")) return t->decode_sort = 1, 0;           // the routes sorted in the norm
    if (!strcmp(name, "sc1")) return t->sample_cluster = 1, 0;         // the sampler's CTAs a row
    if (!strcmp(name, "sc2")) return t->sample_cluster = 2, 0;
    if (!strcmp(name, "sc4")) return t->sample_cluster = 4, 0;
    if (!strcmp(name, "sc8")) return t->sample_cluster = 8, 0;
    return -1;
}

// t = base with the knobs of variant v ("a+b+..."); 0, or -1 naming the unknown part
static int variant_tuning(const char *v, const backend_tuning_t *base, backend_tuning_t *t) {
    char buf[128], *save = NULL;
    snprintf(buf, sizeof buf, "%s", v);
    *t = *base;
    for (char *k = strtok_r(buf, "+", &save); k; k = strtok_r(NULL, "+", &save))
        if (variant_knob(k, t))
            return fprintf(stderr, "generate_bench: unknown variant '%s' (base, unfused, noroute, loop, narrow, dense64, "
                                   "dense256, gate, sort, sc1, sc2, sc4, sc8, or several joined by '+')\n", k), -1;
    return 0;
}

static int cmp_double(const void *a, const void *b) {
    const double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

// bytes per second of a device-to-device copy of 1 GiB (a read and a write per byte: 2 GiB moved)
static double copy_bandwidth(backend_t *b) {
    const size_t n = (size_t)1 << 30;
    void *x = backend_alloc(b, n), *y = backend_alloc(b, n);
    backend_copy(b, y, x, n);
    backend_sync(b);
    double t0 = cispo_now();
    for (int i = 0; i < 5; i++) backend_copy(b, y, x, n);
    backend_sync(b);
    double dt = (cispo_now() - t0) / 5;
    backend_free(b, x), backend_free(b, y);
    return 2.0 * n / dt;
}

int main(int argc, char **argv) {
    const char *model = "configs/models/bench-1b.yaml", *dev = "cuda";
    int P = 128, news[8] = {256, 4096}, nn = 2, batches[8] = {1, 16, 64, 256}, nb = 4, ops = 0, narrow = 0, unfused = 0,
        loop = 0, dense = 0, unrouted = 0, rounds = 1, nv = 1;
    enum { MAXV = 16 };
    char vlist[512] = "base", *vname[MAXV] = {vlist};
    for (int i = 1; i < argc; i += 2) {
        if (!strcmp(argv[i], "--ops") || !strcmp(argv[i], "--skinny-narrow") || !strcmp(argv[i], "--decode-unfused") ||
            !strcmp(argv[i], "--skinny-loop") || !strcmp(argv[i], "--no-decode-route")) {
            *(!strcmp(argv[i], "--ops")             ? &ops
              : !strcmp(argv[i], "--skinny-narrow") ? &narrow
              : !strcmp(argv[i], "--skinny-loop")   ? &loop
              : !strcmp(argv[i], "--no-decode-route") ? &unrouted
                                                    : &unfused) = 1,
                i--;
            continue;
        }
        if (i + 1 >= argc) return fprintf(stderr, "generate_bench: %s needs a value\n", argv[i]), 2;
        if (!strcmp(argv[i], "--model")) model = argv[i + 1];
        else if (!strcmp(argv[i], "--prompt")) P = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--new")) nn = parse_list(argv[i + 1], news, 8);
        else if (!strcmp(argv[i], "--batch")) nb = parse_list(argv[i + 1], batches, 8);
        else if (!strcmp(argv[i], "--device")) dev = argv[i + 1];
        else if (!strcmp(argv[i], "--dense-skinny")) dense = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--rounds")) rounds = atoi(argv[i + 1]) > 0 ? atoi(argv[i + 1]) : 1;
        else if (!strcmp(argv[i], "--variants")) {
            snprintf(vlist, sizeof vlist, "%s", argv[i + 1]);
            char *save = NULL;
            nv = 0;
            for (char *v = strtok_r(vlist, ",", &save); v && nv < MAXV; v = strtok_r(NULL, ",", &save)) vname[nv++] = v;
            if (!nv) return fprintf(stderr, "generate_bench: --variants needs at least one name\n"), 2;
        }
        else return fprintf(stderr, "generate_bench: unknown option %s\n", argv[i]), 2;
    }
    model_config_t cfg;
    if (model_config_load(&cfg, model)) return fprintf(stderr, "generate_bench: %s\n", cispo_last_error()), 1;
    backend_t be;
    const int cuda = !strcmp(dev, "cuda");
    if (backend_init(&be, cuda ? BACKEND_CUDA : BACKEND_CPU, 0, cuda ? DTYPE_BF16 : DTYPE_F32))
        return fprintf(stderr, "generate_bench: %s\n", cispo_last_error()), 1;
    if (narrow) be.tune.gg_skinny_wide = -1, printf("decode expert products: the 32-k skinny tiles (--skinny-narrow)\n");
    if (unfused) be.tune.decode_fused = -1, printf("decode: separate q, k, v, gate and expert products (--decode-unfused)\n");
    if (unrouted)
        be.tune.decode_route = -1, printf("decode: the router's product and routes after the norm (--no-decode-route)\n");
    if (loop) be.tune.gg_skinny_wide = 2, printf("decode expert products: the wide-k tiles on a persistent grid\n");
    if (dense > 0)
        be.tune.dense_skinny = dense, printf("linear layers of at most %d rows: the wide-k tiles (--dense-skinny)\n", dense);
    const backend_tuning_t base_tune = be.tune;
    for (int v = 0; v < nv; v++) {
        backend_tuning_t t;
        if (variant_tuning(vname[v], &base_tune, &t)) return 2;
    }
    int maxb = 1, maxn = 1;
    for (int i = 0; i < nb; i++) maxb = batches[i] > maxb ? batches[i] : maxb;
    for (int i = 0; i < nn; i++) maxn = news[i] > maxn ? news[i] : maxn;
    const int plan = P * maxb < 16384 ? P * maxb : 16384;  // prefill step budget (chunked beyond)
    model_t *m = model_create_experts(&be, &cfg, NULL, plan > maxb ? plan : maxb, 0, cfg.n_experts, MODEL_FORWARD_ONLY);
    param_table_t *t = &m->table;
    float *host = cispo_malloc(t->n_floats * sizeof(float));
    param_init_hf(host, t, &cfg, 1);
    model_load_params(m, host);
    free(host);
    const double bw = copy_bandwidth(&be);
    printf("device %s, copy bandwidth %.0f GB/s\n", backend_name(be.kind), bw / 1e9);
    const size_t es = m->esize;
    const int E = cfg.n_experts, K = cfg.n_experts_per_tok, C = cfg.hidden_size, F = cfg.intermediate_size;
    const size_t expert = (size_t)3 * F * C * es;
    const size_t all_w = t->n_floats * es, experts_all = (size_t)cfg.n_layers * E * expert;
    infer_capacity_t cap = infer_capacity(&cfg, es, P + maxn, 0);
    const int labelled = nv > 1 || rounds > 1;
    double *ms = cispo_calloc((size_t)rounds * nv * nn * nb, sizeof(double));  // [round][variant][new][batch]
    for (int r = 0; r < rounds * nn * nb * nv; r++) {  // rounds, then lengths, then batches, then variants in turn
        const int iv = r % nv, ib = r / nv % nb, in = r / (nv * nb) % nn, rd = r / (nv * nb * nn);
        const int B = batches[ib], N = news[in];
        uint64_t s = 7 + (uint64_t)in * 1000003u + (uint64_t)B;  // the same prompts for every variant and round
        variant_tuning(vname[iv], &base_tune, &be.tune);
        char label[160] = "";
        if (labelled) snprintf(label, sizeof label, "[%s] ", vname[iv]);
        infer_t *e = infer_create(m, B, P + N + 1);
        if (ib == 0 && in == 0 && iv == 0 && rd == 0) infer_report(e, stdout);
        int32_t *pb = cispo_malloc(sizeof(int32_t) * (size_t)B * P);
        const int32_t **pp = cispo_malloc(sizeof(*pp) * (size_t)B);
        int *pl = cispo_malloc(sizeof(int) * (size_t)B);
        uint64_t *seeds = cispo_malloc(sizeof(uint64_t) * (size_t)B);
        for (size_t i = 0; i < (size_t)B * P; i++) {
            s = s * 6364136223846793005ull + 1442695040888963407ull;
            pb[i] = (int32_t)((s >> 33) % (uint64_t)cfg.vocab_size);
        }
        for (int i = 0; i < B; i++) pp[i] = pb + (size_t)i * P, pl[i] = P, seeds[i] = sampler_rng_seed(1, (uint64_t)i);
        rollout_config_t rc = {.max_new_tokens = N, .eos_id = -1, .sampler = {.temperature = 1.0, .top_p = 1.0}};
        rollout_sample_t *out = cispo_malloc(sizeof(*out) * (size_t)B);
        rollout_stats_t st;
        if (rollout_generate(e, &rc, pp, pl, seeds, B, out, &st)) {
            fprintf(stderr, "generate_bench: %s\n", cispo_last_error());
            return 1;
        }
        for (int i = 0; i < B; i++) rollout_sample_free(&out[i]);
        const double steps = (double)st.decode_tokens / B, per_step = st.decode_s / steps;
        // experts touched by B tokens routing to K of E each (uniform routing): E (1 - (1 - K/E)^B)
        double touched = E;
        for (int i = 0; i < B; i++) touched *= 1.0 - (double)K / E;
        touched = E - touched;
        const double weights = (double)(all_w - experts_all) + cfg.n_layers * touched * expert;
        const double state = 2.0 * B * cap.state_bytes, kv = (double)B * (P + N / 2.0) * cap.kv_token_bytes;
        const double bytes = weights + state + kv;
        printf("cispo generate %sP=%d N=%d B=%d: %.0f tokens/s, %.3f ms/step, %.1f MB/step (weights %.1f, states %.1f, "
               "KV %.1f), %.1f%% of copy bandwidth, prefill %.2f s\n",
               label, P, N, B, st.decode_tokens / st.decode_s, 1e3 * per_step, bytes / 1e6, weights / 1e6,
               state / 1e6, kv / 1e6, 100.0 * bytes / per_step / bw, st.prefill_s);
        ms[(((size_t)rd * nv + iv) * nn + in) * nb + ib] = 1e3 * per_step;
        fflush(stdout);
        if (ops && be.kind != BACKEND_CUDA) printf("  (--ops: per-op times are collected on CUDA only)\n");
        if (ops && be.kind == BACKEND_CUDA) {  // per-op time of a decode step: (prefill + 33 steps) - (prefill + 1 step), op by op
            static double prof[2][2 * OP_COUNT];
            for (int k = 0; k < 2; k++) {
                infer_t *eo = infer_create(m, B, P + 34);
                eo->use_graphs = 0;
                rollout_config_t ro = rc;
                ro.max_new_tokens = k ? 33 : 1;
                memset(prof[k], 0, sizeof prof[k]);
                be.prof = prof[k];
                int orc = rollout_generate(eo, &ro, pp, pl, seeds, B, out, NULL);
                be.prof = NULL;
                infer_free(eo);
                if (orc) return fprintf(stderr, "generate_bench: %s\n", cispo_last_error()), 1;
                for (int i = 0; i < B; i++) rollout_sample_free(&out[i]);
            }
            double sum = 0;
            for (int o = 0; o < OP_COUNT; o++) sum += (prof[1][2 * o] - prof[0][2 * o]) / 32;
            printf("  per decode step, op by op (synchronised each): %.3f ms in ops of the %.3f ms step "
                   "(the rest: host work, copies and launches)\n", 1e3 * sum, 1e3 * per_step);
            for (int o = 0; o < OP_COUNT; o++) {
                const double t = (prof[1][2 * o] - prof[0][2 * o]) / 32, calls = (prof[1][2 * o + 1] - prof[0][2 * o + 1]) / 32;
                if (calls > 0) printf("    %-26s %8.4f ms %5.1f%%  (%.0f calls)\n", op_name(o), 1e3 * t, 100 * t / sum, calls);
            }
            fflush(stdout);
        }
        free(out), free(pb), free(pp), free(pl), free(seeds);
        infer_free(e);
    }
    be.tune = base_tune;
    if (labelled) {  // each variant's median over the rounds, and the first variant's over it (> 1: faster)
        printf("== ms a step (median of %d round%s), and %s's over the variant's (> 1: faster)\n%-20s", rounds,
               rounds > 1 ? "s" : "", vname[0], "variant");
        for (int in = 0; in < nn; in++)
            for (int ib = 0; ib < nb; ib++) printf("  N=%d B=%-12d", news[in], batches[ib]);
        printf("\n");
        double *x = cispo_malloc(sizeof(double) * (size_t)rounds), first[64];
        for (int iv = 0; iv < nv; iv++) {
            printf("%-20s", vname[iv]);
            for (int in = 0; in < nn; in++)
                for (int ib = 0; ib < nb; ib++) {
                    for (int rd = 0; rd < rounds; rd++) x[rd] = ms[(((size_t)rd * nv + iv) * nn + in) * nb + ib];
                    qsort(x, (size_t)rounds, sizeof(double), cmp_double);
                    const double med = rounds % 2 ? x[rounds / 2] : (x[rounds / 2 - 1] + x[rounds / 2]) / 2;
                    const int col = in * nb + ib;
                    if (iv == 0 && col < 64) first[col] = med;
                    printf("  %7.3f (%5.3fx)  ", med, col < 64 && med > 0 ? first[col] / med : 0.0);
                }
            printf("\n");
        }
        free(x);
    }
    free(ms);
    model_free(m);
    backend_release(&be);
    return 0;
}
