// base/rng.h — the one random number generator: splitmix64 streams, their uniform and normal draws,
// and the FNV-1a hash that turns names into seeds.
// defines: rng_next, rng_mix64, rng_unit, rng_uniform, rng_uniform_pos, rng_below, rng_fill_normal, rng_fnv1a,
//          rng_fnv1a_str
//
// A stream is one uint64_t of state; every function that draws takes its address. splitmix64
// (Steele, Lea & Flood, "Fast splittable pseudorandom number generators", OOPSLA 2014) is used for
// everything: any seed, including 0, gives a full-period stream, so a stream per (seed, record) or
// per (seed, tensor name) is just a mixed seed. Checkpoints, synthetic data, samples and demo
// results depend on these exact numbers: change nothing here without changing every expected value.
#ifndef CISPO_BASE_RNG_H
#define CISPO_BASE_RNG_H

#include <stddef.h>
#include <stdint.h>

// The splitmix64 step: advances *state by the golden-ratio increment and returns its mix.
uint64_t rng_next(uint64_t *state);
// splitmix64's output function alone (a bijective avalanche of z; rng_next(&s) == rng_mix64(s + golden)).
uint64_t rng_mix64(uint64_t z);
// The top 53 bits of x as a double in [0, 1) (for hashes used as uniform numbers).
double rng_unit(uint64_t x);
// Uniform double in [0, 1) from the top 53 bits of one draw.
double rng_uniform(uint64_t *state);
// Uniform double in (0, 1] (for log()).
double rng_uniform_pos(uint64_t *state);
// rng_next(state) % n (n > 0; the modulo bias, below 2^-40 for the n used here, is kept for
// reproducibility with the existing data).
uint64_t rng_below(uint64_t *state, uint64_t n);
// x[i] ~ normal(0, std), Box-Muller on pairs of draws (two values per pair: cos then sin).
void rng_fill_normal(float *x, size_t n, double std, uint64_t *state);
// 64-bit FNV-1a of n bytes (no final mixing: apply rng_mix64 when low bits must be well spread).
uint64_t rng_fnv1a(const void *p, size_t n);
uint64_t rng_fnv1a_str(const char *s);

#endif
