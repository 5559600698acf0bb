// datasets/synth.h — synthetic reasoning tasks whose answers the math checker grades.
// defines: synth_arith, SYNTH_ARITH_MAX_DIFFICULTY
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

// Fills *out (a new record: free with record_free) with problem `index` of the stream `seed`, its
// difficulty drawn uniformly from [dmin, dmax] (1..SYNTH_ARITH_MAX_DIFFICULTY). The same (seed, index,
// dmin, dmax) always gives the same record. The id is "arith-" + a hash of the prompt, so the same
// problem has the same id (and held-out split) whichever seed produced it. meta holds task,
// difficulty and ops; response holds the worked demonstration.
void synth_arith(uint64_t seed, uint64_t index, int dmin, int dmax, data_record_t *out);

#endif
