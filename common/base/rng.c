#include "base/rng.h"

/* SplitMix64 (Steele, Lea & Flood 2014; constants as in Vigna's reference
 * splitmix64.c): add the golden-ratio increment, then mix the result with
 * two xor-shift-multiply rounds and a final xor-shift. */
uint64_t splitmix64_next(uint64_t *state)
{
    uint64_t z = (*state += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

/* xoshiro256** must not start from the all-zero state; SplitMix64 never
 * yields four zeros in a row, which is why the authors recommend it here. */
void rng_seed(Rng *r, uint64_t key)
{
    uint64_t sm = key;
    for (int i = 0; i < 4; i++) r->s[i] = splitmix64_next(&sm);
}

static inline uint64_t rotl(uint64_t x, int k)
{
    return (x << k) | (x >> (64 - k));
}

/* xoshiro256** 1.0: output = rotl(s1 * 5, 7) * 9, then the linear
 * xor/shift/rotate update of the four state words. */
uint64_t rng_next(Rng *r)
{
    uint64_t *s = r->s;
    uint64_t result = rotl(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return result;
}

/* Plain rejection: 2^64 mod n values at the top of the range would make
 * `x mod n` favour small results, so they are redrawn.  (0 - n) % n is
 * 2^64 mod n in unsigned 64-bit arithmetic.  At most half of all draws are
 * rejected (n > 2^63), usually almost none.  Every call consumes at least
 * one output, also for n == 1, so the draw order never depends on pool sizes. */
uint64_t rng_uniform(Rng *r, uint64_t n)
{
    if (n == 0) return 0;
    uint64_t excess = (0 - n) % n;
    uint64_t x = rng_next(r);
    if (excess)
        while (x >= 0 - excess) x = rng_next(r);
    return x % n;
}

/* FNV-1a, 64-bit: xor each byte into the hash, then multiply by the FNV
 * prime 2^40 + 2^8 + 0xb3. */
uint64_t fnv1a64_update(uint64_t h, const void *data, size_t n)
{
    const unsigned char *p = data;
    for (size_t i = 0; i < n; i++) {
        h ^= p[i];
        h *= 0x100000001b3ULL;
    }
    return h;
}

uint64_t fnv1a64(const void *data, size_t n)
{
    return fnv1a64_update(FNV1A64_INIT, data, n);
}
