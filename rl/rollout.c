// rl/rollout.c — continuous batching over the inference engine's slots: admit waiting prompts into
// free slots (one batched prefill), decode one token for every active sequence, sample, apply the
// stop rules (EOS, stop strings, length budget, repetition early-truncation), free finished slots.
// With tools, a completed call is run and its result fed back as context tokens (rl/rollout.h).
#include "rl/rollout.h"

#include <stdlib.h>
#include <string.h>

#include "base/common.h"

typedef struct {
    int seq;        // index of the prompt it serves, -1 when free
    uint64_t rng;
    int32_t next;   // the token to feed at the next decode step
    int run;        // consecutive tokens with probability > rep_p
    int32_t *forced;  // [n_forced] tool-output tokens still to feed (tools only)
    int n_forced, at_forced;
    int turn_start;   // first token of the policy's current turn
} slot_t;

void rollout_sample_free(rollout_sample_t *s) {
    free(s->tokens);
    free(s->logp);
    free(s->mask);
    s->tokens = NULL;
    s->logp = NULL;
    s->mask = NULL;
}

// Records token tok for slot s; returns 1 when the sequence is finished.
static int take_token(const rollout_config_t *cfg, slot_t *s, rollout_sample_t *o, int32_t tok, float lp, float pr) {
    o->tokens[o->n_tokens] = tok;
    o->logp[o->n_tokens] = lp;
    if (o->mask) o->mask[o->n_tokens] = 1;
    o->n_tokens++;
    s->next = tok;
    s->run = pr > cfg->rep_p ? s->run + 1 : 0;
    if (cfg->eos_id >= 0 && tok == cfg->eos_id) return o->stop = STOP_EOS, 1;
    if (cfg->stop_check && cfg->stop_check(cfg->stop_ctx, o->tokens, o->n_tokens)) return o->stop = STOP_STRING, 1;
    if (cfg->rep_n > 0 && s->run >= cfg->rep_n) return o->stop = STOP_REPETITION, 1;
    if (o->n_tokens >= cfg->max_new_tokens) return o->stop = STOP_LENGTH, 1;
    return 0;
}

// Feeds the next tool-output token of slot s as context: mask 0, log pi_old 0, no sampling. Returns 1
// when the length budget ends the sequence.
static int force_token(const rollout_config_t *cfg, slot_t *s, rollout_sample_t *o) {
    int32_t tok = s->forced[s->at_forced++];
    o->tokens[o->n_tokens] = tok;
    o->logp[o->n_tokens] = 0.0f;
    o->mask[o->n_tokens] = 0;
    o->n_tokens++;
    s->next = tok;
    s->run = 0;
    if (s->at_forced == s->n_forced) free(s->forced), s->forced = NULL, s->n_forced = s->at_forced = 0;
    if (o->n_tokens >= cfg->max_new_tokens) return o->stop = STOP_LENGTH, 1;
    return 0;
}

// After a sampled token: when the turn's text now holds a complete call, runs it and queues its
// result's tokens. Returns 1 when the turn budget ends the sequence.
static int tool_turn(const rollout_config_t *cfg, slot_t *s, rollout_sample_t *o) {
    const rollout_tools_t *tl = cfg->tools;
    const char *close = tl->format->call_close;
    // cheap test first: a call can only just have completed on a token holding close's last byte
    char *last = tokenizer_decode(tl->tok, o->tokens + o->n_tokens - 1, 1, TOKENIZER_SKIP_SPECIAL | TOKENIZER_LOSSY, NULL);
    int maybe = last && strchr(last, close[strlen(close) - 1]);
    free(last);
    if (!maybe) return 0;
    char *text = tokenizer_decode(tl->tok, o->tokens + s->turn_start, (size_t)(o->n_tokens - s->turn_start),
                                  TOKENIZER_SKIP_SPECIAL | TOKENIZER_LOSSY, NULL);
    tool_call_t call;
    size_t end;
    int found = text && tool_call_parse(tl->format, text, &call, &end);
    free(text);
    if (!found) return 0;
    if (o->n_tool_calls >= tl->max_calls) {
        tool_call_free(&call);
        return o->stop = STOP_TOOL_BUDGET, 1;
    }
    char *result;
    o->n_tool_errors += tools_run(tl->tools, &call, &result);
    o->n_tool_calls++;
    char *shown = tl->render ? tl->render(tl->render_ctx, call.name ? call.name : "", result) : NULL;
    if (!shown) shown = tool_result_plain(tl->format, result);
    token_ids_t ids = {0};
    if (tokenizer_encode(tl->tok, shown, strlen(shown), &ids, 0)) token_ids_free(&ids), o->n_tool_errors++;
    free(shown), free(result);
    tool_call_free(&call);
    s->forced = ids.ids, s->n_forced = (int)ids.n, s->at_forced = 0;
    if (s->n_forced == 0) free(s->forced), s->forced = NULL;
    s->turn_start = o->answer_from = o->n_tokens + s->n_forced;
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
        out[i].mask = cfg->tools ? cispo_malloc((size_t)cfg->max_new_tokens) : NULL;
        out[i].n_tool_calls = out[i].n_tool_errors = out[i].answer_from = 0;
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
            slots[s].turn_start = 0;
            free(slots[s].forced);  // left by a sequence the length budget ended inside a tool result
            slots[s].forced = NULL, slots[s].n_forced = slots[s].at_forced = 0;
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
                if (take_token(cfg, s, &out[s->seq], tok, lp, pr) || (cfg->tools && tool_turn(cfg, s, &out[s->seq])))
                    s->seq = -1;
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
            st.decode_tokens++;
            if (s->forced) {  // a tool result is context: fed, not sampled (the logits are not used)
                if (force_token(cfg, s, &out[s->seq])) s->seq = -1, active--;
                continue;
            }
            float lp, pr;
            int tok = sampler_next(logits + (size_t)j * V, V, &cfg->sampler, &s->rng, scratch, &lp, &pr);
            if (take_token(cfg, s, &out[s->seq], tok, lp, pr) || (cfg->tools && tool_turn(cfg, s, &out[s->seq])))
                s->seq = -1, active--;
        }
    }
    for (int s = 0; s < B; s++) free(slots[s].forced);
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
