// rl/rollout.c — the generation engine: continuous batching over the inference engine's slots with a
// paged KV pool: admit waiting prompts into free slots when their prompt's blocks can be promised,
// prefill in chunks under a per-step token budget, decode one token for every sequence past its prompt
// (blocks mapped on demand; a dry pool preempts the newest sequence, recomputed later), sample on the
// backend, apply the stop rules (EOS, repetition early-truncation and the length budget on the
// backend; stop strings here), free finished slots and their blocks.
// With tools, a completed call is run and its result fed back as context tokens (rl/rollout.h).
#include "rl/rollout.h"

#include <stdlib.h>
#include <string.h>

#include "base/common.h"
#include "model/moe_ep.h"

typedef struct {
    int seq;        // index of the prompt it serves, -1 when free
    const int32_t *src;  // the context to prefill: the prompt, or after a preemption ctx
    int src_len;
    int32_t *ctx;   // a preempted sequence's prompt + the tokens it had fed (owned), or NULL
    int resume;     // 1: src is a recomputed context (its end is decoded, not sampled)
    int fed;        // context tokens prefilled so far (< src_len: still in prefill)
    int32_t next;   // the token to feed at the next decode step
    int32_t *forced;  // [n_forced] tool-output tokens still to feed (tools only)
    int n_forced, at_forced;
    int turn_start;   // first token of the policy's current turn
} slot_t;

void rollout_sample_free(rollout_sample_t *s) {
    free(s->tokens);
    free(s->logp);
    free(s->mask);
    free(s->routes);
    s->tokens = NULL;
    s->logp = NULL;
    s->mask = NULL;
    s->routes = NULL;
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
    free(slots[s].ctx), slots[s].ctx = NULL;
    infer_release(e, s);
    (*active)--;
}

// The decode batch: every sequence past its context, sampled rows first (*ms of them), tool-fed rows
// after. Returns its size.
static int decode_batch(const slot_t *slots, int B, int *ids, int32_t *toks, int *ms) {
    int m = 0;
    for (int pass = 0; pass < 2; pass++) {
        for (int s = 0; s < B; s++)
            if (slots[s].seq >= 0 && slots[s].fed == slots[s].src_len && !slots[s].forced == !pass)
                ids[m] = s, toks[m] = slots[s].next, m++;
        if (pass == 0) *ms = m;
    }
    return m;
}

// Routing replay: after a forward over the batch's tokens (nb sequences in slots ids[], lens[i] tokens each
// starting at context position at[i], packed in that order), each sequence keeps the routes of the positions
// it had not recorded yet (a recomputed context after a preemption keeps the first ones).
static void record_routes(infer_t *e, const slot_t *slots, rollout_sample_t *out, const int *ids, const int *lens,
                          const int *at, int nb, int32_t *buf) {
    const model_t *m = e->m;
    const int L = m->cfg.n_layers, K = m->cfg.n_experts_per_tok;
    for (int l = 0; l < L; l++) {
        model_routes(m, l, buf);
        for (int i = 0, row = 0; i < nb; row += lens[i], i++) {
            rollout_sample_t *o = &out[slots[ids[i]].seq];
            for (int j = 0; j < lens[i]; j++) {
                const int p = at[i] + j;
                if (p < o->routes_n) continue;
                memcpy(o->routes + ((size_t)l * o->routes_stride + p) * K, buf + (size_t)(row + j) * K,
                       sizeof(int32_t) * (size_t)K);
            }
        }
    }
    for (int i = 0; i < nb; i++) {
        rollout_sample_t *o = &out[slots[ids[i]].seq];
        if (at[i] + lens[i] > o->routes_n) o->routes_n = at[i] + lens[i];
    }
}

static int generate(infer_t *e, const rollout_config_t *cfg, const int32_t *const *prompts, const int *prompt_lens,
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
        out[i].routes = NULL, out[i].routes_stride = out[i].routes_n = 0;
        if (cfg->record_routes) {
            const model_config_t *mc = &e->m->cfg;
            out[i].routes_stride = prompt_lens[i] + cfg->max_new_tokens;
            out[i].routes = cispo_malloc(sizeof(int32_t) * (size_t)mc->n_layers * (size_t)out[i].routes_stride *
                                         (size_t)mc->n_experts_per_tok);
        }
    }
    // routing replay: one layer's routes of a forward, and each batch row's first context position
    int32_t *route_buf = cfg->record_routes ? cispo_malloc(sizeof(int32_t) * (size_t)e->m->max_tokens *
                                                           (size_t)e->m->cfg.n_experts_per_tok)
                                            : NULL;
    int *route_at = cispo_malloc(sizeof(int) * (size_t)B), *ones = cispo_malloc(sizeof(int) * (size_t)B);
    for (int s = 0; s < B; s++) ones[s] = 1;
    slot_t *slots = cispo_calloc((size_t)B, sizeof(slot_t));
    for (int s = 0; s < B; s++) slots[s].seq = -1, infer_release(e, s);
    int *ids = cispo_malloc(sizeof(int) * (size_t)B), *lens = cispo_malloc(sizeof(int) * (size_t)B);
    int *order = cispo_malloc(sizeof(int) * (size_t)B);
    const int32_t **pp = cispo_malloc(sizeof(*pp) * (size_t)B);
    int32_t *toks = cispo_malloc(sizeof(int32_t) * (size_t)B), *picked = cispo_malloc(sizeof(int32_t) * (size_t)B);
    int32_t *done = cispo_malloc(sizeof(int32_t) * (size_t)B);
    float *lps = cispo_malloc(sizeof(float) * (size_t)B);
    // the waiting queue (queue[head..n-1]; a preempted sequence goes back in front of it), each
    // sequence's first admission (its age), and what a preempted one left: its slot's host state and its
    // sampler's state (the draw counter and the repetition run)
    const size_t nn = n > 0 ? (size_t)n : 1;
    int *queue = cispo_malloc(sizeof(int) * nn), *age = cispo_calloc(nn, sizeof(int));
    slot_t *held = cispo_calloc(nn, sizeof(slot_t));
    sample_slot_t *held_samp = cispo_calloc(nn, sizeof(sample_slot_t));
    for (int i = 0; i < n; i++) queue[i] = i;
    const int watermark = (e->n_blocks + 99) / 100;  // blocks kept free for growth when admitting (1%)
    int head = 0, active = 0, rc = 0, tick = 0;
    rollout_stats_t st = {0};
    while (head < n || active > 0) {
        // admit waiting sequences into free slots while the pool holds their context (the prompt, or
        // for a preempted sequence the prompt and its tokens so far) and a watermark to grow into
        for (int s = 0; s < B && head < n; s++) {
            if (slots[s].seq >= 0) continue;
            const int i = queue[head];
            const int resume = out[i].n_tokens > 0;
            const int src_len = prompt_lens[i] + (resume ? out[i].n_tokens - 1 : 0);
            if ((active > 0 && infer_blocks_for(e, src_len) + watermark > infer_blocks_free(e)) ||
                infer_reserve(e, s, src_len)) {
                st.waits++;
                break;  // the pool is full: it waits for blocks a finished or preempted sequence returns
            }
            slot_t *sl = &slots[s];
            free(sl->forced);  // left by a sequence the length budget ended inside a tool result
            sl->forced = NULL, sl->n_forced = sl->at_forced = 0;
            if (resume) {  // recompute: prefill the prompt and every token it fed, then decode its next
                *sl = held[i];
                held[i].forced = NULL;
                sl->ctx = cispo_malloc(sizeof(int32_t) * (size_t)src_len);
                memcpy(sl->ctx, prompts[i], sizeof(int32_t) * (size_t)prompt_lens[i]);
                memcpy(sl->ctx + prompt_lens[i], out[i].tokens, sizeof(int32_t) * (size_t)(out[i].n_tokens - 1));
                sl->src = sl->ctx;
                infer_sample_restore(e, s, &held_samp[i]);
            } else {
                sl->turn_start = 0;
                sl->ctx = NULL;
                sl->src = prompts[i];
                sample_slot_t sp;
                sample_params(cfg, seeds[i], &sp);
                infer_sample_begin(e, s, &sp);
                if (!age[i]) age[i] = ++tick;  // a sequence preempted in its prompt keeps its age
            }
            sl->seq = i;
            sl->fed = 0;
            sl->src_len = src_len;
            sl->resume = resume;
            head++, active++;
        }
        if (active > st.max_running) st.max_running = active;
        // one prefill step of at most `chunk` tokens, oldest sequences first; the fresh prompts this step
        // completes go first in the batch (their rows are the ones sampled; a recomputed context goes on
        // to decode its next token instead)
        int k = 0, budget = chunk;
        for (int s = 0; s < B; s++)
            if (slots[s].seq >= 0 && slots[s].fed < slots[s].src_len) order[k++] = s;
        for (int i = 1; i < k; i++)  // insertion sort by age
            for (int j = i; j > 0 && age[slots[order[j]].seq] < age[slots[order[j - 1]].seq]; j--) {
                int x = order[j];
                order[j] = order[j - 1], order[j - 1] = x;
            }
        int np = 0, ncomplete = 0;
        for (int i = 0; i < k && budget > 0; i++) {
            slot_t *sl = &slots[order[i]];
            int left = sl->src_len - sl->fed, take = left < budget ? left : budget;
            budget -= take;
            ids[np] = order[i], lens[np] = take, pp[np] = sl->src + sl->fed, np++;
            if (take == left && !sl->resume) ncomplete++;
        }
        for (int i = 0, w = 0; i < np; i++)  // stable partition: completing fresh prompts first
            if (slots[ids[i]].fed + lens[i] == slots[ids[i]].src_len && !slots[ids[i]].resume) {
                int a = ids[i], l = lens[i];
                const int32_t *q = pp[i];
                for (int j = i; j > w; j--) ids[j] = ids[j - 1], lens[j] = lens[j - 1], pp[j] = pp[j - 1];
                ids[w] = a, lens[w] = l, pp[w] = q, w++;
            }
        if (np > 0) {
            double t0 = cispo_now();
            if ((rc = infer_prefill_chunk(e, ids, pp, lens, np, NULL))) break;
            if (route_buf) {
                for (int i = 0; i < np; i++) route_at[i] = slots[ids[i]].fed;
                record_routes(e, slots, out, ids, lens, route_at, np, route_buf);
            }
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
        // one decode step for every sequence past its context. When the step needs more new blocks than
        // the pool has free, the newest sequence (latest first admission) is preempted: its blocks and slot
        // are freed and it goes back to the front of the queue with its tokens, sampler state and tool
        // state, to be recomputed when it is admitted again. The oldest is never preempted while another
        // runs, and alone it fits, so every sequence finishes.
        int m, ms = 0;
        for (;;) {
            m = decode_batch(slots, B, ids, toks, &ms);
            int short_by = 0;
            for (int j = 0; j < m; j++) short_by += infer_blocks_short(e, ids[j], e->len[ids[j]] + 1);
            if (short_by <= infer_blocks_free(e)) break;
            int v = -1;
            for (int s = 0; s < B; s++)
                if (slots[s].seq >= 0 && (v < 0 || age[slots[s].seq] > age[slots[v].seq])) v = s;
            const int i = slots[v].seq;
            if (out[i].n_tokens > 0) {  // recomputed on re-admission; otherwise it simply starts again
                held[i] = slots[v];
                held[i].ctx = NULL;
                infer_sample_save(e, v, &held_samp[i]);
                slots[v].forced = NULL;  // the tool output still to feed goes with the sequence
            }
            finish(e, slots, v, &active);
            queue[--head] = i;
            st.preemptions++, e->preemptions++;
        }
        if (m == 0) continue;
        if (m > st.max_batch) st.max_batch = m;
        double t0 = cispo_now();
        if (route_buf)  // the token each sequence feeds sits at its cached length
            for (int j = 0; j < m; j++) route_at[j] = e->len[ids[j]];
        if ((rc = infer_decode(e, ids, toks, m, NULL))) break;
        if (route_buf) record_routes(e, slots, out, ids, ones, route_at, m, route_buf);
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
        free(slots[s].ctx);
        infer_release(e, s);
    }
    for (int i = 0; i < n; i++) free(held[i].forced);  // left only when an error ended the run
    free(slots);
    free(ids);
    free(lens);
    free(order);
    free(pp);
    free(toks);
    free(picked);
    free(done);
    free(lps);
    free(queue);
    free(age);
    free(held);
    free(held_samp);
    free(route_buf), free(route_at), free(ones);
    if (stats) *stats = st;
    if (rc)
        for (int i = 0; i < n; i++) rollout_sample_free(&out[i]);
    return rc;
}

int rollout_generate(infer_t *e, const rollout_config_t *cfg, const int32_t *const *prompts, const int *prompt_lens,
                     const uint64_t *seeds, int n, rollout_sample_t *out, rollout_stats_t *stats) {
    int rc = generate(e, cfg, prompts, prompt_lens, seeds, n, out, stats);
    // expert parallelism: the group's ranks still generating need this rank's experts, done or failed
    moe_ep_serve(e->m, 0);
    return rc;
}
