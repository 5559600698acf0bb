// base/rng.c — splitmix64 streams and FNV-1a (rng.h).
#include "base/rng.h"

#include <math.h>
#include <string.h>

#define GOLDEN_GAMMA 0x9E3779B97F4A7C15ull  // 2^64 / golden ratio, odd
#define TWO_POW_M53 (1.0 / 9007199254740992.0)

uint64_t rng_mix64(uint64_t z) {
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

uint64_t rng_next(uint64_t *state) { return rng_mix64(*state += GOLDEN_GAMMA); }

double rng_unit(uint64_t x) { return (double)(x >> 11) * TWO_POW_M53; }

double rng_uniform(uint64_t *state) { return rng_unit(rng_next(state)); }

double rng_uniform_pos(uint64_t *state) { return ((double)(rng_next(state) >> 11) + 1.0) * TWO_POW_M53; }

uint64_t rng_below(uint64_t *state, uint64_t n) { return rng_next(state) % n; }

void rng_fill_normal(float *x, size_t n, double std, uint64_t *state) {
    const double two_pi = 6.283185307179586476925286766559;
    for (size_t i = 0; i < n; i += 2) {
        double u1 = rng_uniform_pos(state);  // (0, 1]: log never sees 0
        double u2 = rng_uniform(state);
        double r = sqrt(-2.0 * log(u1));
        x[i] = (float)(std * r * cos(two_pi * u2));
        if (i + 1 < n) x[i + 1] = (float)(std * r * sin(two_pi * u2));
    }
}

uint64_t rng_fnv1a(const void *p, size_t n) {
    const unsigned char *s = p;
    uint64_t h = 1469598103934665603ull;  // FNV-1a offset basis and prime
    for (size_t i = 0; i < n; i++) h = (h ^ s[i]) * 1099511628211ull;
    return h;
}

uint64_t rng_fnv1a_str(const char *s) { return rng_fnv1a(s, strlen(s)); }
