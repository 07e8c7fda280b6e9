/* Deterministic random numbers for sampling (hyperdas(7) 10.8).
 *
 * Every draw in the project's data sampling comes from here, so that a seed
 * gives the same bytes on every platform: integer arithmetic only, no
 * rand(), no floating point.
 *
 *   SplitMix64   expands one 64-bit key into the 256-bit generator state;
 *   xoshiro256** (Blackman & Vigna 2018) is the generator itself;
 *   FNV-1a-64    hashes a byte string into a stream key, so that every
 *                sampling group gets its own independent stream;
 *   rng_uniform  draws an integer in [0, n) by rejection, never by a bare
 *                modulo (which would favour small values). */
#ifndef HD_RNG_H
#define HD_RNG_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
    uint64_t s[4];
} Rng;

/* One SplitMix64 step: advances *state and returns the next output. */
uint64_t splitmix64_next(uint64_t *state);

/* Seeds xoshiro256** with four consecutive SplitMix64 outputs of key. */
void rng_seed(Rng *r, uint64_t key);
/* The next 64-bit xoshiro256** output. */
uint64_t rng_next(Rng *r);
/* Uniform integer in [0, n), n >= 1; consumes one or more outputs (n == 0
 * returns 0 and consumes none). */
uint64_t rng_uniform(Rng *r, uint64_t n);

/* FNV-1a-64: start with FNV1A64_INIT, feed bytes with fnv1a64_update. */
#define FNV1A64_INIT 0xcbf29ce484222325ULL
uint64_t fnv1a64_update(uint64_t h, const void *data, size_t n);
uint64_t fnv1a64(const void *data, size_t n);

#endif
