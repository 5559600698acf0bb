// rl/rollout.c — the generation engine: continuous batching over the inference engine's slots with a
// paged KV pool: admit waiting prompts into free slots when their blocks can be promised, prefill in
// chunks under a per-step token budget, decode one token for every sequence past its prompt, sample on
// the backend, apply the stop rules (EOS, repetition early-truncation and the length budget on the
// backend; stop strings here), free finished slots and their blocks.
// With tools, a completed call is run and its result fed back as context tokens (rl/rollout.h).
#include "rl/rollout.h"

#include <stdlib.h>
#include <string.h>

#include "base/common.h"

typedef struct {
    int seq;        // index of the prompt it serves, -1 when free
    int fed;        // prompt tokens prefilled so far (< the prompt's length: still in prefill)
    int32_t next;   // the token to feed at the next decode step
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

// Records token tok for slot s, sampled on the backend with stop code `done` (SAMPLE_DONE_*: EOS,
// repetition and the length budget, judged there); returns 1 when the sequence is finished. The order
// of the rules is EOS, stop string, repetition, length.
static int take_token(const rollout_config_t *cfg, slot_t *s, rollout_sample_t *o, int32_t tok, float lp, int done) {
    o->tokens[o->n_tokens] = tok;
    o->logp[o->n_tokens] = lp;
    if (o->mask) o->mask[o->n_tokens] = 1;
    o->n_tokens++;
    s->next = tok;
    if (done == SAMPLE_DONE_EOS) return o->stop = STOP_EOS, 1;
    if (cfg->stop_check && cfg->stop_check(cfg->stop_ctx, o->tokens, o->n_tokens)) return o->stop = STOP_STRING, 1;
    if (done == SAMPLE_DONE_REPETITION) return o->stop = STOP_REPETITION, 1;
    if (done == SAMPLE_DONE_LENGTH || o->n_tokens >= cfg->max_new_tokens) return o->stop = STOP_LENGTH, 1;
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

static void sample_params(const rollout_config_t *cfg, uint64_t seed, sample_slot_t *p) {
    memset(p, 0, sizeof *p);
    p->seed = seed;
    p->temperature = cfg->sampler.temperature;
    p->top_p = cfg->sampler.top_p;
    p->top_k = cfg->sampler.top_k;
    p->greedy = cfg->sampler.greedy;
    p->tempered_logp = cfg->sampler.tempered_logp;
    p->eos_id = cfg->eos_id;
    p->rep_n = cfg->rep_n;
    p->rep_p = cfg->rep_p;
    // with tools the budget counts the fed tool tokens too: the host judges it
    p->max_new = cfg->tools ? 0x7fffffff : cfg->max_new_tokens;
}

// Frees slot s of a finished sequence: its KV blocks go back to the pool at once.
static void finish(infer_t *e, slot_t *slots, int s, int *active) {
    slots[s].seq = -1;
    infer_release(e, s);
    (*active)--;
}

int rollout_generate(infer_t *e, const rollout_config_t *cfg, const int32_t *const *prompts, const int *prompt_lens,
                     const uint64_t *seeds, int n, rollout_sample_t *out, rollout_stats_t *stats) {
    const int B = e->max_slots;
    if (cfg->max_new_tokens < 1) return cispo_fail("rollout: max_new_tokens must be >= 1");
    const int chunk = cfg->prefill_chunk > 0 && cfg->prefill_chunk < e->m->max_tokens ? cfg->prefill_chunk
                                                                                     : e->m->max_tokens;
    for (int i = 0; i < n; i++) {
        if (prompt_lens[i] < 1) return cispo_fail("rollout: prompt %d is empty", i);
        if (prompt_lens[i] + cfg->max_new_tokens > e->max_ctx)
            return cispo_fail("rollout: prompt %d (%d tokens) + %d new tokens exceed the context of %d", i,
                              prompt_lens[i], cfg->max_new_tokens, e->max_ctx);
        const int need = infer_blocks_for(e, prompt_lens[i] + cfg->max_new_tokens);
        if (need > e->n_blocks)
            return cispo_fail("rollout: prompt %d (%d tokens) + %d new tokens need %d KV blocks of %d tokens, the pool "
                              "has %d",
                              i, prompt_lens[i], cfg->max_new_tokens, need, e->block_size, e->n_blocks);
    }
    for (int i = 0; i < n; i++) {
        out[i].tokens = cispo_malloc(sizeof(int32_t) * (size_t)cfg->max_new_tokens);
        out[i].logp = cispo_malloc(sizeof(float) * (size_t)cfg->max_new_tokens);
        out[i].n_tokens = 0;
        out[i].stop = STOP_LENGTH;
        out[i].mask = cfg->tools ? cispo_malloc((size_t)cfg->max_new_tokens) : NULL;
        out[i].n_tool_calls = out[i].n_tool_errors = out[i].answer_from = 0;
    }
    slot_t *slots = cispo_calloc((size_t)B, sizeof(slot_t));
    for (int s = 0; s < B; s++) slots[s].seq = -1, infer_release(e, s);
    int *ids = cispo_malloc(sizeof(int) * (size_t)B), *lens = cispo_malloc(sizeof(int) * (size_t)B);
    int *order = cispo_malloc(sizeof(int) * (size_t)B), *admitted = cispo_calloc((size_t)B, sizeof(int));
    const int32_t **pp = cispo_malloc(sizeof(*pp) * (size_t)B);
    int32_t *toks = cispo_malloc(sizeof(int32_t) * (size_t)B), *picked = cispo_malloc(sizeof(int32_t) * (size_t)B);
    int32_t *done = cispo_malloc(sizeof(int32_t) * (size_t)B);
    float *lps = cispo_malloc(sizeof(float) * (size_t)B);
    int next_prompt = 0, active = 0, rc = 0, tick = 0;
    rollout_stats_t st = {0};
    while (next_prompt < n || active > 0) {
        // admit waiting prompts into free slots while the pool can promise their whole length
        for (int s = 0; s < B && next_prompt < n; s++) {
            if (slots[s].seq >= 0) continue;
            if (infer_reserve(e, s, prompt_lens[next_prompt] + cfg->max_new_tokens)) {
                st.waits++;
                break;  // the pool is full: it waits for a finished sequence's blocks
            }
            slot_t *sl = &slots[s];
            sl->seq = next_prompt;
            sl->fed = 0;
            sl->turn_start = 0;
            free(sl->forced);  // left by a sequence the length budget ended inside a tool result
            sl->forced = NULL, sl->n_forced = sl->at_forced = 0;
            sample_slot_t sp;
            sample_params(cfg, seeds[next_prompt], &sp);
            infer_sample_begin(e, s, &sp);
            admitted[s] = ++tick;
            next_prompt++, active++;
        }
        // one prefill step of at most `chunk` tokens, oldest admissions first; the sequences whose
        // prompt this step completes go first in the batch (their rows are the ones sampled)
        int k = 0, budget = chunk;
        for (int s = 0; s < B; s++)
            if (slots[s].seq >= 0 && slots[s].fed < prompt_lens[slots[s].seq]) order[k++] = s;
        for (int i = 1; i < k; i++)  // insertion sort by admission
            for (int j = i; j > 0 && admitted[order[j]] < admitted[order[j - 1]]; j--) {
                int x = order[j];
                order[j] = order[j - 1], order[j - 1] = x;
            }
        int np = 0, ncomplete = 0;
        for (int i = 0; i < k && budget > 0; i++) {
            slot_t *sl = &slots[order[i]];
            int left = prompt_lens[sl->seq] - sl->fed, take = left < budget ? left : budget;
            budget -= take;
            ids[np] = order[i], lens[np] = take, pp[np] = prompts[sl->seq] + sl->fed, np++;
            if (take == left) ncomplete++;
        }
        for (int i = 0, w = 0; i < np; i++)  // stable partition: completing sequences first
            if (slots[ids[i]].fed + lens[i] == prompt_lens[slots[ids[i]].seq]) {
                int a = ids[i], l = lens[i];
                const int32_t *q = pp[i];
                for (int j = i; j > w; j--) ids[j] = ids[j - 1], lens[j] = lens[j - 1], pp[j] = pp[j - 1];
                ids[w] = a, lens[w] = l, pp[w] = q, w++;
            }
        if (np > 0) {
            double t0 = cispo_now();
            if ((rc = infer_prefill_chunk(e, ids, pp, lens, np, NULL))) break;
            for (int i = 0; i < np; i++) slots[ids[i]].fed += lens[i];
            if (ncomplete > 0) infer_sample(e, ids, ncomplete, picked, lps, done);
            st.prefill_s += cispo_now() - t0;
            for (int j = 0; j < ncomplete; j++) {
                slot_t *sl = &slots[ids[j]];
                if (take_token(cfg, sl, &out[sl->seq], picked[j], lps[j], done[j]) ||
                    (cfg->tools && tool_turn(cfg, sl, &out[sl->seq])))
                    finish(e, slots, ids[j], &active);
            }
        }
        // one decode step for every sequence past its prompt: sampled rows first, tool-fed rows after
        int m = 0, ms = 0;
        for (int s = 0; s < B; s++)
            if (slots[s].seq >= 0 && slots[s].fed == prompt_lens[slots[s].seq] && !slots[s].forced)
                ids[m] = s, toks[m] = slots[s].next, m++;
        ms = m;
        for (int s = 0; s < B; s++)
            if (slots[s].seq >= 0 && slots[s].fed == prompt_lens[slots[s].seq] && slots[s].forced)
                ids[m] = s, toks[m] = slots[s].next, m++;
        if (m == 0) continue;
        if (m > st.max_batch) st.max_batch = m;
        double t0 = cispo_now();
        if ((rc = infer_decode(e, ids, toks, m, NULL))) break;
        if (ms > 0) infer_sample(e, ids, ms, picked, lps, done);
        st.decode_s += cispo_now() - t0;
        st.decode_tokens += m;
        for (int j = 0; j < m; j++) {
            slot_t *sl = &slots[ids[j]];
            if (j >= ms) {  // a tool result is context: fed, not sampled
                if (force_token(cfg, sl, &out[sl->seq])) finish(e, slots, ids[j], &active);
                else if (!sl->forced) infer_sample_reset_run(e, ids[j]);  // the policy's turn starts afresh
                continue;
            }
            if (take_token(cfg, sl, &out[sl->seq], picked[j], lps[j], done[j]) ||
                (cfg->tools && tool_turn(cfg, sl, &out[sl->seq])))
                finish(e, slots, ids[j], &active);
        }
    }
    for (int s = 0; s < B; s++) {
        free(slots[s].forced);
        infer_release(e, s);
    }
    free(slots);
    free(ids);
    free(lens);
    free(order);
    free(admitted);
    free(pp);
    free(toks);
    free(picked);
    free(done);
    free(lps);
    if (stats) *stats = st;
    if (rc)
        for (int i = 0; i < n; i++) rollout_sample_free(&out[i]);
    return rc;
}
