// rl/rollout.h — batched generation with continuous batching and the stop rules of docs/rl.md.
// defines: rollout_config_t, rollout_tools_t, rollout_sample_t, rollout_generate, rollout_sample_free, stop reasons
//
// Multi-turn tool use (cfg->tools set; docs/rl.md "Tool use"): when the text a sequence generated since
// its last tool result holds a complete call, the call is parsed and run, its result rendered and
// tokenized, and those tokens are fed to the sequence as context (one per decode step, no sampling),
// after which the policy continues. Tool-output tokens are in the sample with mask 0 and log pi_old 0:
// they are not policy actions. Tools are deterministic, so a sample depends only on its seed, alone or
// batched. Without tools the path is the single-turn one, token for token.
#ifndef CISPO_RL_ROLLOUT_H
#define CISPO_RL_ROLLOUT_H

#include <stdint.h>

#include "model/infer.h"
#include "model/tokenizer.h"
#include "rl/sampler.h"
#include "rl/tools.h"

// STOP_TOOL_BUDGET: the policy made one call more than max_calls allows
enum stop_reason { STOP_EOS = 0, STOP_LENGTH = 1, STOP_STRING = 2, STOP_REPETITION = 3, STOP_TOOL_BUDGET = 4 };

typedef struct {
    const tools_t *tools;          // the registry
    const tool_format_t *format;   // how calls are written
    const tokenizer_t *tok;        // decodes the policy's text, encodes the results
    int max_calls;                 // tool calls per sample (the turn budget)
    // the text appended for a result (a chat template's tool turn); NULL, or a NULL return: the format's
    // plain result. A new string.
    char *(*render)(void *ctx, const char *tool, const char *result);
    void *render_ctx;
} rollout_tools_t;

typedef struct {
    int max_new_tokens;      // length budget
    int eos_id;              // -1: none
    sampler_config_t sampler;
    int rep_n;               // repetition early-truncation (M1): stop once rep_n consecutive tokens
    double rep_p;            //   each had probability > rep_p; rep_n = 0 turns it off
    // stop strings: called after each token with the generated tokens so far; returns 1 to stop
    // (the trainer decodes with its tokenizer and looks for its stop strings). NULL: none.
    int (*stop_check)(void *ctx, const int32_t *tokens, int n);
    void *stop_ctx;
    const rollout_tools_t *tools;  // NULL: single turn
    int prefill_chunk;       // prompt tokens prefilled per engine step (chunked prefill, so a long prompt
                             // does not stall the decoding sequences); 0: the model's max_tokens
    int record_routes;       // keep the experts each fed token was routed to (rollout_sample_t.routes), for
                             // the training forward to replay (routing replay: docs/rl.md)
} rollout_config_t;

typedef struct {
    int32_t *tokens;         // [n_tokens] generated ids (the EOS, when reached, is included)
    float *logp;             // [n_tokens] log pi_old of each generated token (fp32 LM head)
    int n_tokens;
    int stop;                // enum stop_reason
    // multi-turn tool use only (zero / NULL otherwise):
    unsigned char *mask;     // [n_tokens] 1: sampled by the policy, 0: tool output (context)
    int n_tool_calls, n_tool_errors;
    int answer_from;         // first token of the final turn (after the last tool result)
    // with record_routes: routes [n_layers][routes_stride][K] of every token fed to the model, by position in
    // the context (the prompt, then each generated token but the last); rows [0, routes_n) are set. A token
    // recomputed after a preemption keeps the routes it had when it was first fed. NULL otherwise.
    int32_t *routes;
    int routes_stride, routes_n;
} rollout_sample_t;

typedef struct {
    double prefill_s, decode_s;  // wall time in prefill / decode
    long decode_tokens;          // tokens produced
    int max_batch;               // most sequences decoded together
    int max_running;             // most sequences holding slots at once (in prefill or decode)
    long waits;                  // admissions deferred because the KV pool could not hold the context
    long preemptions;            // sequences preempted (blocks and slot freed, recomputed on re-admission)
} rollout_stats_t;

// Generates a completion for each of n prompts, seeds[i] seeding sequence i's sampler (draw j of sequence i
// is sample_uniform(seeds[i], j): same seed, same samples, alone or batched). The engine: each step admits
// waiting prompts into free slots while the KV pool can promise their prompt's blocks and, while others
// run, keep a watermark (1% of the pool, at least one block) free for growth (otherwise they wait),
// prefills at most prefill_chunk prompt tokens (oldest sequences first, a long prompt over several steps),
// and decodes one token for every sequence past its prompt, its blocks mapped as it grows. When a decode
// step needs more blocks than the pool has free, the most recently admitted sequence (by first admission)
// is preempted: its slot and blocks are freed and it goes back to the front of the queue with its tokens,
// log-probs, sampler state (the draw counter and repetition run) and tool state; re-admitted, its prompt
// and the tokens it had fed are prefilled again (recompute: KV and lightning states) and it decodes on with
// the draws it would have had without the preemption (same seed and step; the rebuilt cache equals the
// first up to rounding, as a chunked prefill does). The oldest running sequence is never the victim while
// another runs; a sequence that cannot fit alone in the whole pool (prompt + max_new_tokens) is an error.
// Tokens are sampled on the model's backend (kernels/ops.h sample_tokens, with EOS, repetition and the
// length budget judged there), so only ids, log-probs and done flags come to the host, where stop strings
// and tool calls are checked. A finished sequence frees its slot and KV blocks at once. out[n] is filled
// (free with rollout_sample_free). Returns 0 or -1 (+ message).
// Expert parallelism (the model's experts split over an EP group, model/moe_ep.h): a collective of the
// group. Every rank calls it, with its own prompts (n may be 0); each prefill and decode step exchanges the
// routed rows with the ranks' steps of the moment, and a rank whose sequences are done (or that failed)
// serves its experts to the others until every rank is done. The tokens are those of one process.
int rollout_generate(infer_t *e, const rollout_config_t *cfg, const int32_t *const *prompts, const int *prompt_lens,
                     const uint64_t *seeds, int n, rollout_sample_t *out, rollout_stats_t *stats);
void rollout_sample_free(rollout_sample_t *s);

#endif
