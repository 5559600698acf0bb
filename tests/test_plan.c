// tests/test_plan.c — the run planner (trainer/plan.h): per-GPU memory of the tiny preset checked by hand
// (one layer's parameters, master, moments and gradients; one token's activations, and the activation
// formula against what model_create allocates), MiniMax-M1 on 512 H800s (fits under 80 GB, its parts sum,
// shards x ranks = totals), the communication volumes by hand, and `cispo plan`'s output and errors.
//   ./test_plan          (from the repo root; TEST_VERBOSE=1 prints every check)
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/common.h"
#include "model/model.h"
#include "testutil.h"
#include "trainer/plan.h"

static int load_preset(const char *name, model_config_t *cfg) {
    const char *src = getenv("CISPO_SRC");
    char path[4096];
    snprintf(path, sizeof path, "%s/configs/models/%s.yaml", src && *src ? src : ".", name);
    return test_check(model_config_load(cfg, path) == 0, "load %s: %s", path, cispo_last_error()) ? 0 : -1;
}

#define EQ(got, want, what) test_check((got) == (want), "%s: %.17g (want %.17g)", what, (double)(got), (double)(want))
#define REL(got, want, tol, what) \
    test_check(fabs((got) / (want)-1) <= (tol), "%s: %.9g vs %.9g (rel tol %g)", what, (double)(got), (double)(want), (double)(tol))

// tiny: V=512, C=64, N=4 (l=0..2 lightning, l=3 softmax), H=4, D=16, A=64, KV=2 (KVD=32), E=4, K=2, F=64.
static void test_tiny_by_hand(void) {
    model_config_t cfg;
    if (load_preset("tiny", &cfg)) return;
    // One lightning layer: norms 64 + 64; qkv 3*64*64 = 12288, gate 4096, out norm 64, out 4096; router
    // 4*64 = 256: 20928 non-expert. Experts 4 x (w1, w3 64x64 + w2 64x64) = 4 * 3 * 4096 = 49152.
    double d, e;
    plan_layer_params(&cfg, 0, &d, &e);
    EQ(d, 20928.0, "tiny lightning layer: non-expert parameters");
    EQ(e, 49152.0, "tiny lightning layer: expert parameters");
    // softmax layer: q 4096, k and v 32*64 = 2048 each, o 4096, + norms 128 + router 256 = 12672
    plan_layer_params(&cfg, 3, &d, &e);
    EQ(d, 12672.0, "tiny softmax layer: non-expert parameters");
    // One token of a lightning layer, bf16 (2 bytes): activations 4C + E + K(2C + 3F) + 9A =
    // 256 + 4 + 640 + 576 = 1476 -> 2952 bytes; fp32 rstd_in, rstd_o, rstd_post, probs (4), topk_w (2):
    // 9 -> 36; int32 topk_idx, perm: 4 -> 16. 3004 bytes.
    EQ(plan_layer_act_bytes(&cfg, 0, 2), 3004.0, "tiny lightning layer: bytes per token (bf16)");
    // softmax: 4C + E + K(2C+3F) + 2A + 2KVD = 900 + 128 + 64 = 1092 -> 2184; fp32 rstd x2, probs 4,
    // topk_w 2, lse H=4: 12 -> 48; int32 16. 2248 bytes.
    EQ(plan_layer_act_bytes(&cfg, 3, 2), 2248.0, "tiny softmax layer: bytes per token (bf16)");

    // The formula against the code: model_create's arenas on the CPU (fp32) for 100 tokens.
    const int T = 100;
    model_t *m = model_create(&cfg, NULL, T);
    double code = 4.0 * ((double)m->n_acts + m->n_stats + m->n_iacts);
    double per_tok = 0;
    for (int l = 0; l < 4; l++) per_tok += plan_layer_act_bytes(&cfg, l, 4);
    per_tok += 2 * 64 * 4 + 6 * 4 + 5 * 4;  // x[0], h_final; ids..cu_seqlens; rstd_final..dlogp
    double plan = T * per_tok + 4 * (4 + 4 * 5) + 4;  // aux and offsets per layer; cu_seqlens' extra entry
    // the arenas start each piece on 64 elements (model/model.c bump): at most 63 elements of padding a piece,
    // 26 pieces a layer and 13 more
    const double pad = 63.0 * 4 * (26 * 4 + 13);
    test_check(code >= plan && code <= plan + pad,
               "activation bytes of 100 tokens: plan formula %.0f = model_create's arenas %.0f less their alignment "
               "padding (at most %.0f)", plan, code, pad);
    EQ((double)m->table.n_floats, 3 * 20928.0 + 12672 + 4 * 49152.0 + 2 * 512 * 64 + 64, "tiny: parameter table size");
    model_free(m);
    // With activation recompute: each layer keeps its input, rstd_in and routes (64 + 1 + 2 fp32-sized
    // elements a token); the rest of a layer is one region, sized for the largest layer; one offsets array.
    {
        model_t *mr = model_create_experts(backend_host(), &cfg, NULL, T, 0, cfg.n_experts, MODEL_RECOMPUTE);
        double code_r = 4.0 * ((double)mr->n_acts + mr->n_stats + mr->n_iacts), kept = 4 * (64 + 1 + 2), big = 0;
        for (int l = 0; l < 4; l++) big = fmax(big, plan_layer_act_bytes(&cfg, l, 4) - kept);
        double plan_r = T * (4 * kept + big + 2 * 64 * 4 + 6 * 4 + 5 * 4) + 4 * 4 + 4 * 5 + 4;
        const double pad_r = 63.0 * 4 * (3 * 4 + 23 + 13);
        test_check(code_r >= plan_r && code_r <= plan_r + pad_r,
                   "recompute: activation bytes of 100 tokens: plan formula %.0f = model_create's arenas %.0f less "
                   "their alignment padding (at most %.0f)", plan_r, code_r, pad_r);
        model_free(mr);
    }

    // Every piece of the arenas starts on 64 elements whatever the sizes (the CUDA kernels' 16-byte vector
    // loads): an odd token count and an odd expert count (Tm * E odd) once shifted the pieces after it.
    {
        model_config_t odd = cfg;
        odd.n_experts = 5, odd.n_experts_per_tok = 3;
        model_t *mo = model_create(&odd, NULL, 37);
        int aligned = 1;
        for (int l = 0; l < odd.n_layers; l++) {
            const model_layer_acts_t *a = &mo->layer[l];
            const size_t act[] = {a->x_in, a->h, a->q, a->k, a->v, a->o_core, a->x1, a->h2, a->logits, a->xe, a->h13,
                                  a->act, a->ye};
            const size_t st[] = {a->rstd_in, a->rstd_post, a->probs, a->topk_w};
            const size_t ni[] = {a->topk_idx, a->perm, a->offsets};
            for (size_t i = 0; i < sizeof act / sizeof act[0]; i++) aligned &= act[i] % 64 == 0;
            for (size_t i = 0; i < sizeof st / sizeof st[0]; i++) aligned &= st[i] % 64 == 0;
            for (size_t i = 0; i < sizeof ni / sizeof ni[0]; i++) aligned &= ni[i] % 64 == 0;
        }
        aligned &= mo->h_final % 64 == 0 && mo->ids % 64 == 0 && mo->cu_seqlens % 64 == 0 && mo->logp % 64 == 0;
        test_check(aligned, "arena pieces start on 64 elements with 37 tokens and 5 experts (3 per token)");
        model_free(mo);
    }

    // 4 GPUs, tp 1, pp 1, ep 2 (dp 4, each expert on dp/ep = 2 GPUs), ZeRO-1, recompute off, 64 tokens.
    plan_input_t in = plan_input_default();
    in.gpus = 4, in.tp = 1, in.pp = 1, in.ep = 2, in.recompute = 0;
    in.max_len = 64, in.micro_tokens = 64, in.batch = 8, in.prompt_len = 16, in.gen_len = 32, in.reserve_gb = 0;
    plan_t *p = cispo_malloc(sizeof *p);
    if (!test_check(plan_make(&cfg, &in, p) == 0, "tiny plan: %s", cispo_last_error())) return free(p);
    const plan_stage_t *s = &p->stage[0];
    test_check(p->tp == 1 && p->pp == 1 && p->dp == 4 && p->ep == 2 && p->edp == 2, "tiny layout 1 x 1 x 4, ep 2");
    // Per GPU: non-expert 3*20928 + 12672 + embed 32768 + final norm 64 + lm_head 32768 = 141056, whole;
    // experts 4 layers x 49152 / ep 2 = 98304. One layer of it (l = 0): 20928 + 24576 = 45504 parameters:
    // bf16 91008 bytes, fp32 grads 182016, master 4*(20928/4 + 24576/2) = 70080, moments 140160.
    EQ(s->p_dense, 141056.0, "tiny per GPU: non-expert parameters");
    EQ(s->p_expert, 98304.0, "tiny per GPU: expert parameters (4 x 49152 / ep 2)");
    EQ(s->weights, 2 * 239360.0, "tiny per GPU: bf16 working copy");
    EQ(s->grads, 4 * 239360.0, "tiny per GPU: fp32 gradients (whole)");
    EQ(s->master, 4 * (141056.0 / 4 + 98304.0 / 2), "tiny per GPU: master shard (other /dp 4, experts /edp 2)");
    EQ(s->moments, 2 * s->master, "tiny per GPU: two moments, same shard");
    // activations of one 64-token micro-batch: 64 x (3*3004 + 2248 + x[0] 128 + ids.. 24 + h_final 128 + 20)
    // + aux/offsets 4 x 24
    EQ(s->acts, 64 * (3 * 3004.0 + 2248 + 300) + 96, "tiny per GPU: activations of one micro-batch");
    // recompute: each layer's input (C bf16) + the widest layer once
    // recompute: each layer's input (C bf16), rstd_in and routes (K int32): 140 bytes a token; the widest layer's
    // rest once
    EQ(s->acts_recompute, 64 * (4 * 140.0 + 300) + 96 + 64 * (3004.0 - 140), "tiny per GPU: activations with recompute");
    EQ(s->train_total, s->weights + s->master + s->moments + s->grads + s->acts + s->scratch, "tiny total = sum of parts");
    // communication by hand: gradients 4 bytes x (3/4 x 141056 + 1/2 x 98304); bf16 all-gather half that;
    // all-to-all: 8 x 48 tokens / 4 GPUs x K 2 x C 64 x 2 bytes x (1/2) x 2 (dispatch, combine) x 4 layers x 2
    EQ(p->grad_rs_bytes, 4 * (0.75 * 141056 + 0.5 * 98304), "tiny gradient reduce-scatter bytes");
    EQ(p->param_ag_bytes, 2 * (0.75 * 141056 + 0.5 * 98304), "tiny parameter all-gather bytes");
    EQ(p->a2a_train_bytes, 96 * 2 * 64 * 2 * 0.5 * 2 * 4 * 2.0, "tiny MoE all-to-all bytes, training");
    free(p);
}

static void test_m1(void) {
    model_config_t cfg;
    if (load_preset("minimax-m1", &cfg)) return;
    plan_input_t in = plan_input_default();  // 512 x H800, max_len 1024 + 81920
    plan_t *p = cispo_malloc(sizeof *p);
    if (!test_check(plan_make(&cfg, &in, p) == 0, "M1 plan: %s", cispo_last_error())) return free(p);
    REL(p->n_params, 456e9, 0.01, "M1: 456 B parameters");
    test_check(p->fits && p->rollout_fits, "M1 on 512 H800: the planned layout fits");
    test_check(p->tp * p->pp * p->dp == 512 && p->dp % p->ep == 0 && 32 % p->ep == 0, "M1 layout: tp %d pp %d dp %d ep %d",
               p->tp, p->pp, p->dp, p->ep);
    double master = 0, moments = 0, held = 0, held_expert = 0;
    for (int s = 0; s < p->pp; s++) {
        const plan_stage_t *g = &p->stage[s];
        test_check(g->train_total < 80e9, "M1 stage %d: %.2f GB < 80", s, g->train_total / 1e9);
        REL(g->train_total, g->weights + g->master + g->moments + g->grads + g->acts + g->scratch + 3e9, 1e-12,
            "M1 stage total = sum of parts");
        REL(g->weights, 2 * (g->p_dense + g->p_expert), 1e-12, "bf16 copy = 2 bytes x held");
        REL(g->grads, 4 * (g->p_dense + g->p_expert), 1e-12, "gradients = 4 bytes x held");
        master += g->master * p->tp * p->dp, moments += g->moments * p->tp * p->dp;
        held += g->p_dense * p->tp, held_expert += g->p_expert * p->tp * p->ep;
        test_check(g->per_seq_80k > g->per_seq_40k && g->cache_room > 0, "M1 stage %d: rollout room", s);
    }
    // shards x ranks = totals: ZeRO-1 keeps exactly one fp32 master and two moments of every parameter
    REL(master, 4 * p->n_params, 1e-9, "M1: master shards over all GPUs = 4 bytes x parameters");
    REL(moments, 8 * p->n_params, 1e-9, "M1: moment shards over all GPUs = 8 bytes x parameters");
    REL(held, p->n_dense, 1e-9, "M1: non-expert parameters over one replica's stages x tp = all of them");
    REL(held_expert, p->n_expert, 1e-9, "M1: expert parameters over stages x tp x ep = all of them");
    test_check(p->conc_80k >= 1 && p->conc_40k > p->conc_80k, "M1 rollout: %.0f sequences at 40K, %.0f at 80K",
               p->conc_40k, p->conc_80k);
    REL(p->t_step, p->t_prefill + p->t_decode + p->t_train + p->t_comm, 1e-12, "M1 step = rollout + train + comm");
    // the M1 layer: one expert (3 x 9216 x 6144 = 169.9 M) per GPU at ep 32, split by tp
    double d, e;
    plan_layer_params(&cfg, 0, &d, &e);
    EQ(e, 32 * 3 * 9216.0 * 6144, "M1 layer: 32 experts of 3 x F x C");
    EQ(d, 2 * 6144 + 5 * 8192.0 * 6144 + 8192 + 32 * 6144, "M1 lightning layer: non-expert parameters (qkv 3AC, gate AC, out CA)");
    free(p);

    // ZeRO off: master and moments replicated, gradients all-reduced (twice the reduce-scatter's bytes)
    in.zero = 0, in.tp = 8, in.pp = 2, in.ep = 32, in.recompute = 1;
    plan_t *q = cispo_malloc(sizeof *q);
    if (test_check(plan_make(&cfg, &in, q) == 0, "M1 plan without ZeRO: %s", cispo_last_error())) {
        const plan_stage_t *g = &q->stage[0];
        REL(g->master, 4 * (g->p_dense + g->p_expert), 1e-12, "no ZeRO: whole master per GPU");
        test_check(q->param_ag_bytes == 0 && q->grad_rs_bytes > 0, "no ZeRO: no parameter all-gather");
    }
    free(q);
}

static int run_plan(const char *bin, const char *args, char *out, size_t cap) {
    char cmd[4096];
    snprintf(cmd, sizeof cmd, "'%s' plan %s 2>&1", bin, args);
    FILE *f = popen(cmd, "r");
    size_t n = f ? fread(out, 1, cap - 1, f) : 0;
    out[n] = 0;
    int st = f ? pclose(f) : -1;
    return st >= 0 && WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static void test_command(void) {
    const char *bin = getenv("CISPO_BIN");
    if (!test_check(bin && *bin, "CISPO_BIN is set (ctest sets it)")) return;
    size_t cap = 1 << 16;
    char *out = cispo_malloc(cap);
    int rc = run_plan(bin, "--model minimax-m1 --gpus 512 --gpu h800", out, cap);
    test_check(rc == 0 && strstr(out, "PLANNED LAYOUT") && strstr(out, "fits") && strstr(out, "80K generation") &&
                   strstr(out, "reduce-scatter") && strstr(out, "all-to-all") && strstr(out, "assumed: not measured") &&
                   !strstr(out, "DOES NOT FIT"),
               "cispo plan minimax-m1 512 h800: layout, fits, rollout, communication, step (rc %d)\n%s", rc, out);
    rc = run_plan(bin, "--model minimax-m1 --gpus 512 --gpu x100", out, cap);
    test_check(rc == 2 && strstr(out, "x100") && strstr(out, "H800") && strstr(out, "H200"), "unknown GPU: named, known listed");
    rc = run_plan(bin, "--model minimax-m1 --gpus 100 --gpu h800 --ep 32 --tp 1 --pp 1", out, cap);
    test_check(rc == 2 && strstr(out, "--ep 32 does not divide the data-parallel degree 100"), "gpus not divisible by ep: %s", out);
    rc = run_plan(bin, "--model minimax-m1 --gpus 512 --gpu h800 --ep 12", out, cap);
    test_check(rc == 2 && strstr(out, "--ep 12 does not divide the 32 experts"), "ep not dividing the experts: %s", out);
    rc = run_plan(bin, "--model no-such-model --gpus 8 --gpu h100", out, cap);
    test_check(rc == 1 && strstr(out, "no-such-model") && strstr(out, "configs/models"), "unknown model: named");
    rc = run_plan(bin, "--model minimax-m1 --gpus 8 --gpu h800", out, cap);
    test_check(rc == 1 && strstr(out, "DOES NOT FIT"), "M1 on 8 GPUs: says it does not fit, exit 1");
    free(out);
}

int main(void) {
    test_tiny_by_hand();
    test_m1();
    test_command();
    return test_finish("test_plan");
}
