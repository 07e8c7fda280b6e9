/* Byte-pair encoding of one pre-tokenized word, the way Hugging Face
 * `tokenizers` (models/bpe) does it, plus the two hash maps it needs.
 *
 * A word is a byte string.  Its initial symbols are its "units": single
 * bytes for byte-level vocabularies (GPT-2, Llama 3, SmolLM2), whose vocab
 * keys are stored here as the raw bytes they stand for, or UTF-8 characters
 * for SentencePiece-style vocabularies (Llama 2), whose keys are the text
 * itself with U+2581 for spaces.  A unit missing from the vocabulary becomes
 * byte tokens "<0xXX>" when byte_fallback is on, otherwise the unknown token
 * (consecutive unknowns fused into one when fuse_unk is on).  Then, like
 * HF, the adjacent pair with the lowest merge rank is merged, leftmost first,
 * until no adjacent pair has a merge; a priority queue over (rank, position)
 * with lazy invalidation keeps this O(n log n) for long words. */
#ifndef HD_BPE_H
#define HD_BPE_H

#include <stddef.h>
#include <stdint.h>

/* Byte string -> int32 map (open addressing, keys copied into an arena).
 * Inserting an existing key replaces its value. */
typedef struct {
    uint64_t *slots;   /* hash tag | entry index + 1, 0 = empty; capacity mask + 1 */
    size_t mask;
    uint64_t *key_hash;
    size_t *key_off;
    uint32_t *key_len;
    int32_t *value;
    size_t n, cap;     /* entries used / allocated */
    char *arena;
    size_t arena_len, arena_cap;
} StrMap;

void strmap_init(StrMap *m, size_t expected);
void strmap_free(StrMap *m);
void strmap_put(StrMap *m, const void *key, size_t len, int32_t value);
/* The value for key, or -1 when absent. */
int32_t strmap_get(const StrMap *m, const void *key, size_t len);

/* (left id, right id) -> (rank, merged id). */
typedef struct {
    uint64_t *keys;    /* (left << 32 | right), UINT64_MAX = empty */
    int32_t *rank;
    int32_t *merged;
    size_t mask, n;
    unsigned shift;    /* 64 - log2(capacity) */
} PairMap;

void pairmap_init(PairMap *m, size_t expected);
void pairmap_free(PairMap *m);
void pairmap_put(PairMap *m, int32_t left, int32_t right, int32_t rank, int32_t merged);
/* 1 and *rank, *merged filled when the pair has a merge, else 0. */
int pairmap_get(const PairMap *m, int32_t left, int32_t right, int32_t *rank, int32_t *merged);

typedef struct {
    StrMap vocab;          /* unit/word bytes -> id (see top of file) */
    PairMap merges;
    int byte_units;        /* 1: units are bytes; 0: UTF-8 characters */
    int32_t byte_unit_id[256];       /* byte_units: id of each single byte, -1 if none */
    int byte_fallback;
    int32_t byte_fallback_id[256];   /* id of "<0xXX>", -1 if absent */
    int32_t unk_id;        /* -1: none (an unknown unit is then dropped, as HF does) */
    int fuse_unk;
    int ignore_merges;     /* a word found whole in the vocab is one token */
} Bpe;

/* Reusable buffers for bpe_encode_word (one per thread). */
typedef struct {
    int32_t *id, *len, *prev, *next; /* symbols: id, byte length, links */
    size_t cap;
    struct BpeQueueItem *heap;
    size_t heap_n, heap_cap;
    /* Result: out_n tokens, each an id and a byte range [start, start+len)
     * of the word; like HF, start is the sum of the lengths before it. */
    int32_t *out_id, *out_start, *out_len;
    size_t out_n, out_cap;
} BpeScratch;

void bpe_init(Bpe *b, size_t vocab_expected, size_t merges_expected);
void bpe_free(Bpe *b);
void bpe_scratch_free(BpeScratch *s);

/* Tokenizes word[0..len) into s->out_*; returns the number of tokens. */
size_t bpe_encode_word(const Bpe *b, const uint8_t *word, size_t len, BpeScratch *s);

#endif
