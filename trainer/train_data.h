// trainer/train_data.h — prompt sets for training and evaluation (datasets/ records: JSONL files or
// the synthetic arithmetic task), with a held-out split, tokenized; the seeded data order.
// defines: arith_task_t, train_records_t, train_set_load, train_set_load_records, train_set_tokenize, train_set_free,
//          data_cursor_take
#ifndef CISPO_TRAINER_TRAIN_DATA_H
#define CISPO_TRAINER_TRAIN_DATA_H

#include <stddef.h>
#include <stdint.h>

#include "datasets/record.h"
#include "model/tokenizer.h"
#include "trainer/train.h"

typedef struct {
    uint64_t seed;        // problem stream (the run seed)
    int dmin, dmax;       // difficulty range of datasets/synth.h's arithmetic (1..5)
    double heldout_frac;  // fraction of ids in the held-out split
} arith_task_t;

// How JSONL records become prompts (all NULL: plain prompts, the default fields).
typedef struct {
    const char *chat_template;  // run key chat_template: auto | none | a file (NULL: none)
    const char *tokenizer;      // where "auto" looks: the tokenizer.json's directory, else model (a directory)
    const char *model;
    record_fields_t fields;     // run keys prompt_key, answer_key, response_key, id_key, tests_key
} train_records_t;

// spec: a JSONL path, "arithmetic" or "arithmetic_tools" (datasets/synth.h). With a chat template (task->chat_template), every JSONL prompt
// is rendered by it as transformers' apply_chat_template(messages, add_generation_prompt=True) (a text
// prompt is one user message); a conversation ending in an assistant turn without a "response" gives
// that turn as the SFT demonstration (the template's rendering of it, its end-of-turn token left to the
// EOS that tokenizing appends), so SFT trains on the assistant's tokens only. n: records wanted (0: all, or the synthetic default 20000 / 200).
// heldout: which split to take of the synthetic task, or of a JSONL file that other_spec (the other
// set's spec, may be NULL) names too; a file of its own is taken whole. 0 or -1 (+ message).
int train_set_load(train_set_t *set, const char *spec, int n, const arith_task_t *task, int heldout,
                   const char *other_spec);
// The same with the records' chat template and field mapping (rec may be NULL).
int train_set_load_records(train_set_t *set, const char *spec, int n, const arith_task_t *task, int heldout,
                           const char *other_spec, const train_records_t *rec);
// Tokenizes prompts (with the tokenizer's special-token template) and demonstrations (+ EOS).
// With tools (multi-turn tool use; NULL or tools->tools NULL: none), a demonstration's tool calls are
// run and the results that follow them in the text are tokenized apart and masked from the SFT loss
// (demo_mask), as the rollout feeds them; a result that differs from the tool's output stays trained.
int train_set_tokenize(train_set_t *set, const tokenizer_t *tok, int32_t eos_id, int max_prompt,
                       const rollout_tools_t *tools);
void train_set_free(train_set_t *set);
// The next count record indices in data order: epochs are permutations drawn from (seed, stream,
// epoch), so the cursor (epoch, position) is all the state a checkpoint needs.
void data_cursor_take(data_cursor_t *c, uint64_t seed, uint64_t stream, int n, int count, int *out);

#endif
