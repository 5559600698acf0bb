// datasets/synth.h — synthetic reasoning tasks whose answers the math checker grades.
// defines: synth_arith, synth_arith_tools, SYNTH_ARITH_MAX_DIFFICULTY, SYNTH_TOOLS_DEMO_FRAC
//
// arith: multi-step integer arithmetic with + - * (multiplication first, then left to right), e.g.
//   prompt    "Compute 7+5*3-4."
//   response  "= 7+15-4\n= 22-4\n= 18\nThe answer is \boxed{18}."
// Each line of the worked chain performs exactly one operation and rewrites the whole remaining
// expression, so every step depends only on the line above it: a tiny model (C=64, 4 layers) can
// learn it from a few minutes of SFT, and the final \boxed{} answer is what the math verifier grades.
// Difficulty d: operations = 1 + d for d <= 3 (so 2-3 operations at d = 1-2), 4 at d >= 4; operands
// 1..9 for d <= 2, 1..19 at d = 3-4, 1..99 at d = 5. At d <= 2 a problem has one multiplication at
// most, so every value in the chain lies in -89..99.
#ifndef CISPO_DATASETS_SYNTH_H
#define CISPO_DATASETS_SYNTH_H

#include <stdint.h>

#include "datasets/record.h"

#define SYNTH_ARITH_MAX_DIFFICULTY 5

// arith_tools: arithmetic on operands too large for a tiny model to compute, which it can delegate to
// the calculator tool (rl/tools.h, format "demo"), e.g.
//   prompt    "Compute 347*29+5."
//   response  "<<calculator 347*29+5>>\n= 10068\nThe answer is \boxed{10068}."   (tool demonstration)
//             "The answer is \boxed{10068}."                                     (direct demonstration)
// The "\n= 10068\n" line is the tool's result as a multi-turn rollout appends it. 1-2 operations,
// operands 10..999. A fraction SYNTH_TOOLS_DEMO_FRAC of the demonstrations use the tool: after SFT
// the model calls it some of the time, and RL has to discover that calling it is what gets rewarded.
#define SYNTH_TOOLS_DEMO_FRAC 0.25

// Fills *out (a new record: free with record_free) with problem `index` of the stream `seed`, its
// difficulty drawn uniformly from [dmin, dmax] (1..SYNTH_ARITH_MAX_DIFFICULTY). The same (seed, index,
// dmin, dmax) always gives the same record. The id is "arith-" + a hash of the prompt, so the same
// problem has the same id (and held-out split) whichever seed produced it. meta holds task,
// difficulty and ops; response holds the worked demonstration.
void synth_arith(uint64_t seed, uint64_t index, int dmin, int dmax, data_record_t *out);
// Problem `index` of the tool task's stream `seed` (same contract as synth_arith; id "arith-tools-" +
// a hash of the prompt; meta holds task, ops and whether the demonstration calls the tool).
void synth_arith_tools(uint64_t seed, uint64_t index, data_record_t *out);

#endif
