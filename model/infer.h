// model/infer.h — inference with per-sequence caches: prefill prompts (whole or in chunks), then
// decode one token per sequence per step, for sequences of different lengths in fixed slots
// (continuous batching: a finished sequence frees its slot and KV blocks, a waiting prompt takes them),
// and sample the next tokens on the backend.
// defines: infer_t, infer_capacity_t, infer_create, infer_create_paged, infer_free, infer_prefill,
//          infer_prefill_chunk, infer_decode, infer_release, infer_reserve, infer_blocks_for,
//          infer_blocks_free, infer_blocks_short, infer_sample_begin, infer_sample_reset_run, infer_sample_save,
//          infer_sample_restore, infer_sample, infer_capacity, infer_report, INFER_BLOCK_SIZE
//
// Caches (in the model's backend memory): fp32 lightning states [lightning layers, slots, H, D, D]
// (independent of context length), and for the softmax layers a paged KV cache: one pool of
// fixed-size blocks (INFER_BLOCK_SIZE positions) per layer shared by all slots, a block table per slot,
// blocks mapped as a sequence grows and returned when its slot is released. Prefill and decode are
// the training forward (model_forward_cached): the same layer functions with the cache swapped in for
// the two decode-specific pieces (lightning's recurrent step over the slot's state, attention over the
// slot's pages), so every config option acts on decode exactly as on training. Logits come from the
// fp32 LM head into backend memory; infer_sample picks tokens there (kernels/ops.h sample_tokens) and
// brings back ids, log-probs and done flags only.
//
// Expert parallelism (m->ep, model/moe_ep.h): every prefill and decode is a round of the EP group (the
// routed rows go to their experts' ranks and back), matched in order with the group's other forwards, and
// the decode step runs op by op (the exchange reads the routed counts on the host: no CUDA graph).
//
// Blocks: a slot may reserve blocks ahead (infer_reserve) so that growth up to a length never finds
// the pool empty. The rollout engine reserves only a prompt's blocks when it admits it and maps the
// rest on demand; before a decode step it asks infer_blocks_short how many blocks the step lacks and,
// when the pool cannot supply them, preempts sequences (releases them, to be recomputed later:
// rl/rollout.h). A write into a position whose block cannot be mapped fails with a message naming the
// slot and the pool.
#ifndef CISPO_MODEL_INFER_H
#define CISPO_MODEL_INFER_H

#include <stdint.h>
#include <stdio.h>

#include "kernels/ops.h"
#include "model/model.h"

#define INFER_BLOCK_SIZE 16  // positions of a KV block

typedef struct {
    model_t *m;          // weights in place (the policy being trained: no copy, no sync)
    model_cache_t cache; // slots, states, KV pools and block table (model.h)
    int max_slots, max_ctx;
    int block_size, n_blocks, max_blocks;  // as in cache
    int32_t *len;        // [max_slots] tokens in the cache of each slot (host)
    int32_t *table;      // [max_slots][max_blocks] host copy of the block table (-1: unmapped)
    int32_t *mapped;     // [max_slots] blocks mapped to each slot
    int32_t *reserved;   // [max_slots] blocks each slot may map without asking (>= mapped, or 0)
    int32_t *free_list;  // [n_blocks] stack of free pool blocks
    int n_free, n_promised;  // free blocks; of them, promised to slots by reservations
    float *logits;       // [max_slots, V] fp32 in backend memory (the LM head's output rows)
    int n_rows;          // rows of logits the last prefill or decode left
    sample_slot_t *samp; // [max_slots] sampling parameters and stop state (backend memory)
    int32_t *out;        // [3 * max_slots] backend memory: tokens, log-prob bits, done codes
    int32_t *out_host;   // the same on the host
    int32_t *slot_dev;   // [max_slots] the slots of the rows to sample
    // CUDA graphs of the decode step (forward + LM head), one per batch size n, captured on first use
    // and replayed after the step's inputs are staged. On by default on CUDA (CISPO_CUDA_GRAPHS=0
    // turns them off; so do RoPE types whose frequencies depend on the position, expert parallelism, and a
    // failed capture).
    int use_graphs;
    void **graphs;       // [max_slots + 1], NULL where not captured yet
    const void *graph_ws;  // the workspace arena the graphs were captured with (a new one drops them)
    long graph_steps;    // decode steps run by a graph replay
    long preemptions;    // sequences the rollout engine preempted on this engine (all its runs)
} infer_t;

// What fits: the capacity planner's numbers for one model and maximum sequence length.
typedef struct {
    size_t state_bytes;     // fixed per sequence: n_lin * H * D * D * 4 (fp32 lightning states)
    size_t kv_token_bytes;  // per cached token: 2 * n_soft * KV * D * act bytes
    size_t seq_bytes;       // one sequence of max_len tokens: state + KV in whole blocks + a logits row
    long sequences;         // sequences of max_len that fit in `bytes`
} infer_capacity_t;
infer_capacity_t infer_capacity(const model_config_t *c, size_t act_bytes, int max_len, size_t bytes);

// max_ctx: longest prompt + generation a slot may hold; prefill batches are limited by the model's
// max_tokens (model_create). infer_create makes a pool that holds every slot at max_ctx (it never
// runs out); infer_create_paged a pool of n_blocks blocks (0: that same size).
infer_t *infer_create(model_t *m, int max_slots, int max_ctx);
infer_t *infer_create_paged(model_t *m, int max_slots, int max_ctx, int n_blocks);
void infer_free(infer_t *e);
// Prints the cache plan: slots, pool, bytes per sequence, and how many sequences of max_ctx tokens
// would fit in the backend's free memory; then the preemptions so far, when there were any.
void infer_report(const infer_t *e, FILE *f);

int infer_blocks_for(const infer_t *e, int tokens);   // blocks that hold `tokens` positions
int infer_blocks_free(const infer_t *e);              // free blocks not promised to a slot
// Blocks slot would have to take from the free, unpromised ones to hold `tokens` positions (its
// mapped and promised blocks count).
int infer_blocks_short(const infer_t *e, int slot, int tokens);
// Promises slot the blocks for `tokens` positions in all (those mapped count). Returns 0, or 1 when
// the pool cannot promise them now (nothing changes: the caller waits for a release).
int infer_reserve(infer_t *e, int slot, int tokens);
// Empties a slot: its blocks go back to the pool, its promise lapses, its length is 0.
void infer_release(infer_t *e, int slot);

// Prefills n prompts into the given slots (released first: whatever they held is replaced). prompts: n
// pointers to token arrays of lengths lens[i] >= 1, sum(lens) <= the model's max_tokens, lens[i] <=
// max_ctx. logits_last [n, V] (host, or NULL): the next-token logits after each prompt; they also stay
// in backend memory for infer_sample. Returns 0 or -1 (+ message).
int infer_prefill(infer_t *e, const int *slots, const int32_t *const *prompts, const int *lens, int n,
                  float *logits_last);
// The same, appending each chunk to its slot's cache (chunked prefill: a long prompt in pieces).
int infer_prefill_chunk(infer_t *e, const int *slots, const int32_t *const *chunks, const int *lens, int n,
                        float *logits_last);
// Appends one token to each of n slots; logits [n, V] (host, or NULL) of the next token. On CUDA the
// step after staging is a CUDA graph replay (infer_t.use_graphs).
int infer_decode(infer_t *e, const int *slots, const int32_t *tokens, int n, float *logits);

// Sets a slot's sampling parameters and resets its stop state (n_gen = run = 0).
void infer_sample_begin(infer_t *e, int slot, const sample_slot_t *params);
// Copies a slot's sampling parameters and stop state (n_gen, run) to the host, and back: a sequence
// moved out of its slot and later into another continues its draws (draw n_gen next) and its run.
void infer_sample_save(infer_t *e, int slot, sample_slot_t *state);
void infer_sample_restore(infer_t *e, int slot, const sample_slot_t *state);
// Restarts a slot's repetition run (tokens fed as context break a run of sampled ones).
void infer_sample_reset_run(infer_t *e, int slot);
// Samples the next token of each of the n rows the last prefill or decode left (row i belongs to
// slots[i]) with kernels/ops.h sample_tokens; tok, logp, done [n] on the host (done: SAMPLE_DONE_*).
void infer_sample(infer_t *e, const int *slots, int n, int32_t *tok, float *logp, int32_t *done);

#endif
