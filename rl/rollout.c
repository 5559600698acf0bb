// rl/rollout.c — continuous batching over the inference engine's slots: admit waiting prompts into
// free slots (one batched prefill), decode one token for every active sequence, sample, apply the
// stop rules (EOS, stop strings, length budget, repetition early-truncation), free finished slots.
#include "rl/rollout.h"

#include <stdlib.h>
#include <string.h>

#include "base/common.h"

typedef struct {
    int seq;        // index of the prompt it serves, -1 when free
    uint64_t rng;
    int32_t next;   // the token to feed at the next decode step
    int run;        // consecutive tokens with probability > rep_p
} slot_t;

void rollout_sample_free(rollout_sample_t *s) {
    free(s->tokens);
    free(s->logp);
    s->tokens = NULL;
    s->logp = NULL;
}

// Records token tok for slot s; returns 1 when the sequence is finished.
static int take_token(const rollout_config_t *cfg, slot_t *s, rollout_sample_t *o, int32_t tok, float lp, float pr) {
    o->tokens[o->n_tokens] = tok;
    o->logp[o->n_tokens] = lp;
    o->n_tokens++;
    s->next = tok;
    s->run = pr > cfg->rep_p ? s->run + 1 : 0;
    if (cfg->eos_id >= 0 && tok == cfg->eos_id) return o->stop = STOP_EOS, 1;
    if (cfg->stop_check && cfg->stop_check(cfg->stop_ctx, o->tokens, o->n_tokens)) return o->stop = STOP_STRING, 1;
    if (cfg->rep_n > 0 && s->run >= cfg->rep_n) return o->stop = STOP_REPETITION, 1;
    if (o->n_tokens >= cfg->max_new_tokens) return o->stop = STOP_LENGTH, 1;
    return 0;
}

int rollout_generate(infer_t *e, const rollout_config_t *cfg, const int32_t *const *prompts, const int *prompt_lens,
                     const uint64_t *seeds, int n, rollout_sample_t *out, rollout_stats_t *stats) {
    const int V = e->m->cfg.vocab_size, B = e->max_slots;
    if (cfg->max_new_tokens < 1) return cispo_fail("rollout: max_new_tokens must be >= 1");
    for (int i = 0; i < n; i++) {
        if (prompt_lens[i] < 1) return cispo_fail("rollout: prompt %d is empty", i);
        if (prompt_lens[i] + cfg->max_new_tokens > e->max_ctx)
            return cispo_fail("rollout: prompt %d (%d tokens) + %d new tokens exceed the context of %d", i,
                              prompt_lens[i], cfg->max_new_tokens, e->max_ctx);
        if (prompt_lens[i] > e->m->max_tokens)
            return cispo_fail("rollout: prompt %d (%d tokens) exceeds the prefill budget of %d", i, prompt_lens[i],
                              e->m->max_tokens);
        out[i].tokens = cispo_malloc(sizeof(int32_t) * (size_t)cfg->max_new_tokens);
        out[i].logp = cispo_malloc(sizeof(float) * (size_t)cfg->max_new_tokens);
        out[i].n_tokens = 0;
        out[i].stop = STOP_LENGTH;
    }
    slot_t *slots = cispo_calloc((size_t)B, sizeof(slot_t));
    for (int s = 0; s < B; s++) slots[s].seq = -1;
    float *logits = cispo_malloc(sizeof(float) * (size_t)B * V);
    float *scratch = cispo_malloc(sizeof(float) * 2 * (size_t)V);
    int *ids = cispo_malloc(sizeof(int) * (size_t)B), *lens = cispo_malloc(sizeof(int) * (size_t)B);
    const int32_t **pp = cispo_malloc(sizeof(*pp) * (size_t)B);
    int32_t *toks = cispo_malloc(sizeof(int32_t) * (size_t)B);
    int next_prompt = 0, active = 0, rc = 0;
    rollout_stats_t st = {0};
    while (next_prompt < n || active > 0) {
        // admit waiting prompts into free slots, as many as the prefill budget takes
        int k = 0, budget = e->m->max_tokens;
        for (int s = 0; s < B && next_prompt < n; s++) {
            if (slots[s].seq >= 0) continue;
            if (prompt_lens[next_prompt] > budget) break;
            budget -= prompt_lens[next_prompt];
            slots[s].seq = next_prompt;
            slots[s].rng = seeds[next_prompt];
            slots[s].run = 0;
            ids[k] = s;
            pp[k] = prompts[next_prompt];
            lens[k] = prompt_lens[next_prompt];
            k++, next_prompt++;
        }
        if (k > 0) {
            double t0 = cispo_now();
            if ((rc = infer_prefill(e, ids, pp, lens, k, logits))) break;
            st.prefill_s += cispo_now() - t0;
            for (int j = 0; j < k; j++) {
                slot_t *s = &slots[ids[j]];
                float lp, pr;
                int tok = sampler_next(logits + (size_t)j * V, V, &cfg->sampler, &s->rng, scratch, &lp, &pr);
                if (take_token(cfg, s, &out[s->seq], tok, lp, pr)) s->seq = -1;
                else active++;
            }
        }
        // one decode step for every active sequence
        int m = 0;
        for (int s = 0; s < B; s++)
            if (slots[s].seq >= 0) ids[m] = s, toks[m] = slots[s].next, m++;
        if (m == 0) continue;
        if (m > st.max_batch) st.max_batch = m;
        double t0 = cispo_now();
        if ((rc = infer_decode(e, ids, toks, m, logits))) break;
        st.decode_s += cispo_now() - t0;
        for (int j = 0; j < m; j++) {
            slot_t *s = &slots[ids[j]];
            float lp, pr;
            int tok = sampler_next(logits + (size_t)j * V, V, &cfg->sampler, &s->rng, scratch, &lp, &pr);
            st.decode_tokens++;
            if (take_token(cfg, s, &out[s->seq], tok, lp, pr)) s->seq = -1, active--;
        }
    }
    free(slots);
    free(logits);
    free(scratch);
    free(ids);
    free(lens);
    free(pp);
    free(toks);
    if (stats) *stats = st;
    if (rc)
        for (int i = 0; i < n; i++) rollout_sample_free(&out[i]);
    return rc;
}
