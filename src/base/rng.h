/*
 * rng.h — the project's one random number generator: xoshiro256**, seeded
 * through splitmix64. Small, fast, and the same numbers on every machine, so
 * a seed fixes a sampler's draws and a synthetic model's bytes. Each user
 * holds its own state: there is no global generator.
 */
#ifndef RACKLLM_RNG_H
#define RACKLLM_RNG_H

#include <stdint.h>

typedef struct rl_rng {
    uint64_t s[4];
} rl_rng;

static inline uint64_t rl_splitmix64(uint64_t *x) {
    uint64_t z = (*x += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* Seeds from one number (the state is never all zero). */
static inline void rl_rng_seed(rl_rng *r, uint64_t seed) {
    uint64_t x = seed;
    for (int i = 0; i < 4; i++) r->s[i] = rl_splitmix64(&x);
}

static inline uint64_t rl_rotl64(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

static inline uint64_t rl_rng_next(rl_rng *r) {
    uint64_t *s = r->s;
    uint64_t result = rl_rotl64(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rl_rotl64(s[3], 45);
    return result;
}

/* Uniform in [0, 1), 53 random bits. */
static inline double rl_rng_uniform(rl_rng *r) { return (double)(rl_rng_next(r) >> 11) * 0x1.0p-53; }

#endif
