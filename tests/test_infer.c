// tests/test_infer.c — the inference engine against the training forward: for each parity fixture,
// prefill a prompt and decode the rest of the token file one token at a time; the decode log-probs
// must equal the training forward's at every position (max |diff| printed; for "dynamic" and
// "longrope" RoPE, which depend on the sequence length, up to the length where they start to: see
// below). Also: several sequences
// of different lengths decoded together in arbitrary slots give the same numbers as one at a time,
// and rollout_generate is deterministic per seed whatever the batch around it.
#include <dirent.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "base/common.h"
#include "kernels/ops.h"
#include "model/hf.h"
#include "model/infer.h"
#include "model/seq_logprob.h"
#include "rl/rollout.h"
#include "tests/testutil.h"

static double log_softmax_at(const float *logits, int V, int tok) {
    double mx = -INFINITY, z = 0;
    for (int i = 0; i < V; i++) mx = logits[i] > mx ? logits[i] : mx;
    for (int i = 0; i < V; i++) z += exp((double)logits[i] - mx);
    return (double)logits[tok] - mx - log(z);
}

// Decode against the training forward on one model: prompts of 1, 3 and n_cmp/2 tokens in slot 2 of
// 4, then three sequences of different lengths together in slots 3, 0, 1. ref [n-1]: the training
// forward's log-probs of ids. Returns the largest |difference| over every decoded position.
static double decode_vs_forward(model_t *m, const int32_t *ids, int n, int n_cmp, const float *ref) {
    const int V = m->cfg.vocab_size;
    float *logits = cispo_malloc(sizeof(float) * V * 4);
    double worst = 0;
    // prompts of 1, 3 and n/2 tokens, in slot 2 of 4 (other slots idle)
    int plens[3] = {1, 3, n_cmp / 2};
    for (int c = 0; c < 3; c++) {
        infer_t *e = infer_create(m, 4, n + 4);
        int slot = 2, p = plens[c];
        const int32_t *pr = ids;
        test_check(infer_prefill(e, &slot, &pr, &p, 1, logits) == 0, "prefill: %s", cispo_last_error());
        double d = fabs(log_softmax_at(logits, V, ids[p]) - ref[p - 1]);
        worst = d > worst ? d : worst;
        for (int t = p; t < n_cmp - 1; t++) {
            test_check(infer_decode(e, &slot, &ids[t], 1, logits) == 0, "decode: %s", cispo_last_error());
            d = fabs(log_softmax_at(logits, V, ids[t + 1]) - ref[t]);
            worst = d > worst ? d : worst;
        }
        infer_free(e);
    }
    // three sequences (prefixes of different lengths) decoded together in slots 3, 0, 1
    infer_t *e = infer_create(m, 4, n + 4);
    int slots[3] = {3, 0, 1}, lens[3] = {2, 5, 1};
    const int32_t *pp[3] = {ids, ids, ids};
    infer_prefill(e, slots, pp, lens, 3, logits);
    double dj = 0;
    for (int j = 0; j < 3; j++) dj = fmax(dj, fabs(log_softmax_at(logits + j * V, V, ids[lens[j]]) - ref[lens[j] - 1]));
    int pos[3] = {2, 5, 1};
    for (int step = 0; step < n_cmp - 6; step++) {
        int32_t toks[3];
        for (int j = 0; j < 3; j++) toks[j] = ids[pos[j]];
        infer_decode(e, slots, toks, 3, logits);
        for (int j = 0; j < 3; j++) {
            dj = fmax(dj, fabs(log_softmax_at(logits + j * V, V, ids[pos[j] + 1]) - ref[pos[j]]));
            pos[j]++;
        }
    }
    infer_free(e);
    free(logits);
    return fmax(worst, dj);
}

static void check_fixture(const char *dir, double *worst_all) {
    model_config_t cfg;
    param_table_t table;
    float *params = NULL;
    if (!test_check(hf_load_dir(dir, &cfg, &table, &params) == 0, "%s: load: %s", dir, cispo_last_error())) return;
    char path[1024];
    snprintf(path, sizeof path, "%s/tokens.txt", dir);
    int32_t *ids;
    int n;
    if (!test_check(model_read_token_file(path, cfg.vocab_size, 2, &ids, &n) == 0, "%s", cispo_last_error())) return;
    // "dynamic" and "longrope" RoPE depend on the length (model/model.h): decode, like transformers'
    // generate, rotates each new key with the frequencies of its own length, the training forward all
    // keys with those of the whole sequence. They agree while the length stays where the frequencies do
    // not change (max_position_embeddings, original_max_position_embeddings); the greedy check below
    // covers the growth against transformers.
    int n_cmp = n;
    if (model_rope_by_length(&cfg)) {
        int lim = cfg.rope.type == ROPE_DYNAMIC ? cfg.max_position_embeddings : cfg.rope.original_max_pos;
        n_cmp = lim < n ? lim : n;
        test_check(n_cmp >= 10, "%s: %d positions before the rope changes, the checks below need 10", dir, n_cmp);
    }
    model_t *m = model_create(&cfg, params, 2 * n);
    float *ref = cispo_malloc(sizeof(float) * n);
    model_seq_logprobs(m, ids, n_cmp, ref);
    const int V = cfg.vocab_size;
    double worst = decode_vs_forward(m, ids, n, n_cmp, ref);
    float *logits = cispo_malloc(sizeof(float) * V * 4);
    printf("%-60s decode vs training forward: max |dlogp| = %.3g\n", dir, worst);
    TEST_LE(worst, 2e-5, "%s: decode log-probs equal the training forward's (max diff %.3g)", dir, worst);
    *worst_all = fmax(*worst_all, worst);

    // rollout: the same seed gives the same completion alone or among other prompts
    rollout_config_t rc = {.max_new_tokens = 6, .eos_id = -1, .sampler = {.temperature = 1.0, .top_p = 0.9, .top_k = 0}};
    const int32_t *prompts[3] = {ids, ids + 1, ids + 2};
    int plen[3] = {3, 2, 4};
    uint64_t seeds[3] = {sampler_rng_seed(5, 0), sampler_rng_seed(5, 1), sampler_rng_seed(5, 2)};
    rollout_sample_t all[3], one[1];
    infer_t *e3 = infer_create(m, 2, n + 8);  // 2 slots for 3 prompts: one waits, then joins
    test_check(rollout_generate(e3, &rc, prompts, plen, seeds, 3, all, NULL) == 0, "rollout: %s", cispo_last_error());
    infer_free(e3);
    infer_t *e1 = infer_create(m, 1, n + 8);
    test_check(rollout_generate(e1, &rc, prompts + 2, plen + 2, seeds + 2, 1, one, NULL) == 0, "rollout alone");
    infer_free(e1);
    int same = one[0].n_tokens == all[2].n_tokens && !memcmp(one[0].tokens, all[2].tokens, sizeof(int32_t) * one[0].n_tokens);
    test_check(same, "%s: seeded rollout is independent of the batch", dir);
    double dl = 0;  // rollout log pi_old equals the training forward of prompt + completion
    {
        int tot = plen[2] + all[2].n_tokens;
        int32_t *seq = cispo_malloc(sizeof(int32_t) * tot);
        memcpy(seq, prompts[2], sizeof(int32_t) * plen[2]);
        memcpy(seq + plen[2], all[2].tokens, sizeof(int32_t) * all[2].n_tokens);
        float *lp = cispo_malloc(sizeof(float) * tot);
        model_seq_logprobs(m, seq, tot, lp);
        for (int t = 0; t < all[2].n_tokens; t++) dl = fmax(dl, fabs(lp[plen[2] - 1 + t] - all[2].logp[t]));
        free(seq);
        free(lp);
    }
    TEST_LE(dl, 2e-5, "%s: rollout log pi_old vs training forward max diff %.3g", dir, dl);
    for (int j = 0; j < 3; j++) rollout_sample_free(&all[j]);

    // verl's convention at temperature 0.7: the sampler's tempered log pi_old equals the training
    // forward with logit_scale 1/0.7, and differs from the untempered forward
    {
        rollout_config_t rt = {.max_new_tokens = 8, .eos_id = -1,
                               .sampler = {.temperature = 0.7, .top_p = 1.0, .top_k = 0, .tempered_logp = 1}};
        rollout_sample_t one_t;
        infer_t *et = infer_create(m, 1, n + 12);
        test_check(rollout_generate(et, &rt, prompts, plen, seeds, 1, &one_t, NULL) == 0, "tempered rollout");
        infer_free(et);
        int tot = plen[0] + one_t.n_tokens;
        int32_t *seq = cispo_malloc(sizeof(int32_t) * tot);
        memcpy(seq, prompts[0], sizeof(int32_t) * plen[0]);
        memcpy(seq + plen[0], one_t.tokens, sizeof(int32_t) * one_t.n_tokens);
        float *lp = cispo_malloc(sizeof(float) * tot), *lp1 = cispo_malloc(sizeof(float) * tot);
        model_seq_logprobs(m, seq, tot, lp1);
        m->logit_scale = 1.0f / 0.7f;
        model_seq_logprobs(m, seq, tot, lp);
        m->logit_scale = 1.0f;
        double dt = 0, du = 0;
        for (int t = 0; t < one_t.n_tokens; t++) {
            dt = fmax(dt, fabs(lp[plen[0] - 1 + t] - one_t.logp[t]));
            du = fmax(du, fabs(lp1[plen[0] - 1 + t] - one_t.logp[t]));
        }
        TEST_LE(dt, 2e-5, "%s: tempered log pi_old vs the forward with logit_scale 1/T: max diff %.3g", dir, dt);
        test_check(du > 1e-3, "%s: and it is not the untempered policy's (max diff %.3g)", dir, du);
        free(seq), free(lp), free(lp1);
        rollout_sample_free(&one_t);
    }

    // greedy continuation equals transformers' generate() (greedy.txt: prompt line, continuation line,
    // and in fixtures made since it was added, a third line with the log-prob of each chosen token at
    // its step: decode numerics, compared at 1e-4)
    snprintf(path, sizeof path, "%s/greedy.txt", dir);
    char *g = cispo_read_file(path, NULL);
    if (test_check(g != NULL, "%s present", path)) {
        char *nl = strchr(g, '\n');
        int32_t *gp, *gc;
        int np, nc;
        if (nl) *nl = 0;
        char *line3 = nl ? strchr(nl + 1, '\n') : NULL;
        if (line3) *line3++ = 0;
        if (test_check(nl && model_parse_tokens(g, path, cfg.vocab_size, 1, &gp, &np) == 0 &&
                           model_parse_tokens(nl + 1, path, cfg.vocab_size, 1, &gc, &nc) == 0,
                       "%s parses", path)) {
            rollout_config_t gr = {.max_new_tokens = nc, .eos_id = -1, .sampler = {.greedy = 1}};
            infer_t *eg = infer_create(m, 1, np + nc + 1);
            rollout_sample_t out;
            const int32_t *gpp = gp;
            uint64_t gs = 1;
            test_check(rollout_generate(eg, &gr, &gpp, &np, &gs, 1, &out, NULL) == 0, "greedy rollout");
            int match = out.n_tokens == nc && !memcmp(out.tokens, gc, sizeof(int32_t) * nc);
            test_check(match, "%s: greedy continuation of %d tokens equals transformers'", dir, nc);
            if (line3 && *line3) {
                double dg = 0;
                int cnt = 0;
                char *q = line3, *end;
                for (;;) {
                    double v = strtod(q, &end);
                    if (end == q) break;
                    if (cnt < out.n_tokens) dg = fmax(dg, fabs(v - out.logp[cnt]));
                    cnt++;
                    q = end;
                }
                test_check(cnt == nc && match, "%s: greedy.txt line 3 has %d log-probs for %d tokens", dir, cnt, nc);
                TEST_LE(dg, 1e-4, "%s: greedy step log-probs vs transformers' generate: max |diff| %.3g", dir, dg);
                printf("%-60s greedy step log-probs vs transformers: max |dlogp| = %.3g\n", dir, dg);
            }
            rollout_sample_free(&out);
            infer_free(eg);
            free(gp);
            free(gc);
        }
        free(g);
    }
    rollout_sample_free(&one[0]);
    model_free(m);
    free(params);
    param_table_free(&table);
    free(ids);
    free(ref);
    free(logits);
}


// Original-flavour configs (no HF fixture exists for them): postnorm false (the residual is the
// un-normed input), rotary_dim 64 of head_dim 128, the original slope formula, random weights.
static void check_original(const char *name, int postnorm, int rotary_dim, int window, int act, double *worst_all) {
    char path[4096];
    const char *src = getenv("CISPO_SRC");
    snprintf(path, sizeof path, "%s/configs/models/tiny.yaml", src ? src : ".");
    model_config_t cfg;
    if (!test_check(model_config_load(&cfg, path) == 0, "tiny preset: %s", cispo_last_error())) return;
    cfg.flavour = MODEL_FLAVOUR_ORIGINAL;
    cfg.head_dim = 128;
    cfg.n_heads = 2;
    cfg.n_kv_heads = 1;
    cfg.rotary_dim = rotary_dim;
    cfg.postnorm = postnorm;
    cfg.sliding_window = window;
    cfg.hidden_act = act;
    cfg.n_layers = 4;
    for (int l = 0; l < 4; l++) cfg.layer_kind[l] = l % 2 ? LAYER_SOFTMAX : LAYER_LIGHTNING;  // two of each
    if (!test_check(model_config_validate(&cfg, name) == 0, "%s: %s", name, cispo_last_error())) return;
    const int n = 40;
    model_t *m = model_create(&cfg, NULL, 2 * n);
    param_init_hf(m->params, &m->table, &cfg, 17);
    for (size_t i = 0; i < m->table.n_floats; i++) m->params[i] *= 3.0f;  // larger weights: visible mixing
    int32_t ids[40];
    uint64_t st = 99;
    for (int i = 0; i < n; i++) {
        st = st * 6364136223846793005ull + 1442695040888963407ull;
        ids[i] = (int32_t)((st >> 33) % (uint64_t)cfg.vocab_size);
    }
    float ref[40];
    test_check(model_seq_logprobs(m, ids, n, ref) == 0, "%s: forward: %s", name, cispo_last_error());
    double worst = decode_vs_forward(m, ids, n, n, ref);
    printf("%-60s decode vs training forward: max |dlogp| = %.3g\n", name, worst);
    TEST_LE(worst, 1e-5, "%s: decode log-probs equal the training forward's (max diff %.3g)", name, worst);
    *worst_all = fmax(*worst_all, worst);
    model_free(m);
}

int main(void) {
    const char *root = "tests/fixtures/parity";
    DIR *d = opendir(root);
    if (!test_check(d != NULL, "open %s (run from the repo root)", root)) return test_finish("test_infer");
    struct dirent *de;
    int count = 0;
    double worst = 0;
    while ((de = readdir(d))) {
        if (de->d_name[0] == '.') continue;
        char dir[1024];
        snprintf(dir, sizeof dir, "%s/%s", root, de->d_name);
        char cfgp[1100];
        snprintf(cfgp, sizeof cfgp, "%s/config.json", dir);
        FILE *f = fopen(cfgp, "r");
        if (!f) continue;
        fclose(f);
        check_fixture(dir, &worst);
        count++;
    }
    closedir(d);
    test_check(count >= 5, "found %d fixtures", count);
    check_original("original flavour, postnorm false, rotary_dim 64", 0, 64, 0, ACT_SILU, &worst);
    check_original("original flavour, postnorm true, rotary_dim 64", 1, 64, 0, ACT_SILU, &worst);
    check_original("original flavour, postnorm false, rotary_dim 128, window 5, gelu", 0, 128, 5, ACT_GELU, &worst);
    printf("decode vs training forward, all fixtures: max |dlogp| = %.3g\n", worst);
    return test_finish("test_infer");
}
