/* Hash maps for vocabulary and merge ranks, and the BPE merge loop of one
 * word.  See bpe.h. */
#include "tokenizer/bpe.h"

#include <stdlib.h>
#include <string.h>

#include "base/error.h"
#include "base/unicode.h"

/* ---- StrMap ---------------------------------------------------------- */

static uint64_t mix64(uint64_t h)
{
    h ^= h >> 32;
    h *= 0xd6e8feb86659fd93ULL;
    h ^= h >> 32;
    h *= 0xd6e8feb86659fd93ULL;
    h ^= h >> 32;
    return h;
}

/* Eight bytes at a time (keys are short: most are one word), then a final
 * avalanche so that the low bits used for the slot depend on every byte. */
static uint64_t hash_bytes(const void *key, size_t len)
{
    const uint8_t *p = key;
    uint64_t h = 0x9E3779B97F4A7C15ULL ^ (len * 0xff51afd7ed558ccdULL);
    while (len >= 8) {
        uint64_t w;
        memcpy(&w, p, 8);
        h = (h ^ w) * 0xbf58476d1ce4e5b9ULL;
        h ^= h >> 31;
        p += 8;
        len -= 8;
    }
    uint64_t w = 0;
    for (size_t i = 0; i < len; i++) w |= (uint64_t)p[i] << (8 * i);
    h = (h ^ w) * 0x94d049bb133111ebULL;
    return mix64(h);
}

static size_t pow2_at_least(size_t n)
{
    size_t c = 16;
    while (c < n) c <<= 1;
    return c;
}

void strmap_init(StrMap *m, size_t expected)
{
    memset(m, 0, sizeof *m);
    size_t slots = pow2_at_least(expected * 2 + 1);
    m->slots = hd_calloc(slots, sizeof *m->slots);
    m->mask = slots - 1;
    m->cap = expected > 8 ? expected : 8;
    m->key_hash = hd_malloc(m->cap * sizeof *m->key_hash);
    m->key_off = hd_malloc(m->cap * sizeof *m->key_off);
    m->key_len = hd_malloc(m->cap * sizeof *m->key_len);
    m->value = hd_malloc(m->cap * sizeof *m->value);
    m->arena_cap = m->cap * 8;
    m->arena = hd_malloc(m->arena_cap);
}

void strmap_free(StrMap *m)
{
    free(m->slots);
    free(m->key_hash);
    free(m->key_off);
    free(m->key_len);
    free(m->value);
    free(m->arena);
    memset(m, 0, sizeof *m);
}

/* A slot holds the entry index + 1 in its low 32 bits and the top 32 bits
 * of the key's hash above them, so that most probes that miss are settled
 * without touching the key. */
static uint64_t slot_value(uint64_t h, size_t e) { return (h & 0xFFFFFFFF00000000ULL) | (uint64_t)(e + 1); }

static void strmap_grow_slots(StrMap *m)
{
    size_t slots = (m->mask + 1) * 2;
    free(m->slots);
    m->slots = hd_calloc(slots, sizeof *m->slots);
    m->mask = slots - 1;
    for (size_t e = 0; e < m->n; e++) {
        size_t i = m->key_hash[e] & m->mask;
        while (m->slots[i]) i = (i + 1) & m->mask;
        m->slots[i] = slot_value(m->key_hash[e], e);
    }
}

/* Slot holding key, or the empty slot where it would go. */
static size_t strmap_find(const StrMap *m, const void *key, size_t len, uint64_t h)
{
    size_t i = h & m->mask;
    uint64_t tag = h & 0xFFFFFFFF00000000ULL;
    for (;;) {
        uint64_t v = m->slots[i];
        if (v == 0) return i;
        if ((v & 0xFFFFFFFF00000000ULL) == tag) {
            size_t e = (uint32_t)v - 1;
            if (m->key_len[e] == len && memcmp(m->arena + m->key_off[e], key, len) == 0) return i;
        }
        i = (i + 1) & m->mask;
    }
}

void strmap_put(StrMap *m, const void *key, size_t len, int32_t value)
{
    uint64_t h = hash_bytes(key, len);
    size_t i = strmap_find(m, key, len, h);
    if (m->slots[i]) {
        m->value[(uint32_t)m->slots[i] - 1] = value;
        return;
    }
    if (m->n == m->cap) {
        m->cap *= 2;
        m->key_hash = hd_realloc(m->key_hash, m->cap * sizeof *m->key_hash);
        m->key_off = hd_realloc(m->key_off, m->cap * sizeof *m->key_off);
        m->key_len = hd_realloc(m->key_len, m->cap * sizeof *m->key_len);
        m->value = hd_realloc(m->value, m->cap * sizeof *m->value);
    }
    if (m->arena_len + len + 1 > m->arena_cap) {
        while (m->arena_len + len + 1 > m->arena_cap) m->arena_cap *= 2;
        m->arena = hd_realloc(m->arena, m->arena_cap);
    }
    if (len) memcpy(m->arena + m->arena_len, key, len);
    size_t e = m->n++;
    m->key_hash[e] = h;
    m->key_off[e] = m->arena_len;
    m->key_len[e] = (uint32_t)len;
    m->value[e] = value;
    m->arena_len += len;
    m->slots[i] = slot_value(h, e);
    if (m->n * 2 > m->mask + 1) strmap_grow_slots(m);
}

int32_t strmap_get(const StrMap *m, const void *key, size_t len)
{
    if (!m->slots) return -1;
    uint64_t h = hash_bytes(key, len);
    uint64_t v = m->slots[strmap_find(m, key, len, h)];
    return v ? m->value[(uint32_t)v - 1] : -1;
}

/* ---- PairMap --------------------------------------------------------- */

static uint64_t pair_key(int32_t left, int32_t right)
{
    return ((uint64_t)(uint32_t)left << 32) | (uint32_t)right;
}

/* Fibonacci hashing: the top bits of key * 2^64/phi depend on every bit
 * of both ids. */
static size_t pair_slot(uint64_t key, unsigned shift)
{
    return (size_t)((key * 0x9E3779B97F4A7C15ULL) >> shift);
}

void pairmap_init(PairMap *m, size_t expected)
{
    size_t slots = pow2_at_least(expected * 2 + 1);
    m->keys = hd_malloc(slots * sizeof *m->keys);
    memset(m->keys, 0xFF, slots * sizeof *m->keys);
    m->rank = hd_malloc(slots * sizeof *m->rank);
    m->merged = hd_malloc(slots * sizeof *m->merged);
    m->mask = slots - 1;
    m->shift = 64;
    for (size_t c = slots; c > 1; c >>= 1) m->shift--;
    m->n = 0;
}

void pairmap_free(PairMap *m)
{
    free(m->keys);
    free(m->rank);
    free(m->merged);
    memset(m, 0, sizeof *m);
}

static void pairmap_grow(PairMap *m)
{
    PairMap old = *m;
    pairmap_init(m, (old.mask + 1));
    for (size_t i = 0; i <= old.mask; i++)
        if (old.keys[i] != UINT64_MAX)
            pairmap_put(m, (int32_t)(old.keys[i] >> 32), (int32_t)(uint32_t)old.keys[i],
                        old.rank[i], old.merged[i]);
    pairmap_free(&old);
}

void pairmap_put(PairMap *m, int32_t left, int32_t right, int32_t rank, int32_t merged)
{
    uint64_t key = pair_key(left, right);
    size_t i = pair_slot(key, m->shift);
    while (m->keys[i] != UINT64_MAX && m->keys[i] != key) i = (i + 1) & m->mask;
    if (m->keys[i] == UINT64_MAX) m->n++;
    m->keys[i] = key;
    m->rank[i] = rank;
    m->merged[i] = merged;
    if (m->n * 2 > m->mask + 1) pairmap_grow(m);
}

int pairmap_get(const PairMap *m, int32_t left, int32_t right, int32_t *rank, int32_t *merged)
{
    uint64_t key = pair_key(left, right);
    size_t i = pair_slot(key, m->shift);
    for (;;) {
        uint64_t k = m->keys[i];
        if (k == key) {
            *rank = m->rank[i];
            *merged = m->merged[i];
            return 1;
        }
        if (k == UINT64_MAX) return 0;
        i = (i + 1) & m->mask;
    }
}

/* ---- Bpe ------------------------------------------------------------- */

void bpe_init(Bpe *b, size_t vocab_expected, size_t merges_expected)
{
    memset(b, 0, sizeof *b);
    strmap_init(&b->vocab, vocab_expected);
    pairmap_init(&b->merges, merges_expected);
    for (int i = 0; i < 256; i++) b->byte_unit_id[i] = b->byte_fallback_id[i] = -1;
    b->unk_id = -1;
}

void bpe_free(Bpe *b)
{
    strmap_free(&b->vocab);
    pairmap_free(&b->merges);
}

typedef struct BpeQueueItem {
    int32_t rank, pos, merged;
} BpeQueueItem;

void bpe_scratch_free(BpeScratch *s)
{
    free(s->id);
    free(s->len);
    free(s->prev);
    free(s->next);
    free(s->heap);
    free(s->out_id);
    free(s->out_start);
    free(s->out_len);
    memset(s, 0, sizeof *s);
}

static void scratch_reserve(BpeScratch *s, size_t n)
{
    if (n <= s->cap) return;
    size_t cap = s->cap ? s->cap : 64;
    while (cap < n) cap *= 2;
    s->id = hd_realloc(s->id, cap * sizeof *s->id);
    s->len = hd_realloc(s->len, cap * sizeof *s->len);
    s->prev = hd_realloc(s->prev, cap * sizeof *s->prev);
    s->next = hd_realloc(s->next, cap * sizeof *s->next);
    s->out_id = hd_realloc(s->out_id, cap * sizeof *s->out_id);
    s->out_start = hd_realloc(s->out_start, cap * sizeof *s->out_start);
    s->out_len = hd_realloc(s->out_len, cap * sizeof *s->out_len);
    s->cap = s->out_cap = cap;
}

static int queue_less(const BpeQueueItem *a, const BpeQueueItem *b)
{
    return a->rank != b->rank ? a->rank < b->rank : a->pos < b->pos;
}

static void queue_push(BpeScratch *s, BpeQueueItem item)
{
    if (s->heap_n == s->heap_cap) {
        s->heap_cap = s->heap_cap ? s->heap_cap * 2 : 64;
        s->heap = hd_realloc(s->heap, s->heap_cap * sizeof *s->heap);
    }
    size_t i = s->heap_n++;
    while (i > 0) {
        size_t parent = (i - 1) / 2;
        if (!queue_less(&item, &s->heap[parent])) break;
        s->heap[i] = s->heap[parent];
        i = parent;
    }
    s->heap[i] = item;
}

static BpeQueueItem queue_pop(BpeScratch *s)
{
    BpeQueueItem top = s->heap[0];
    BpeQueueItem last = s->heap[--s->heap_n];
    size_t i = 0, n = s->heap_n;
    for (;;) {
        size_t child = 2 * i + 1;
        if (child >= n) break;
        if (child + 1 < n && queue_less(&s->heap[child + 1], &s->heap[child])) child++;
        if (!queue_less(&s->heap[child], &last)) break;
        s->heap[i] = s->heap[child];
        i = child;
    }
    if (n) s->heap[i] = last;
    return top;
}

static void push_pair(const Bpe *b, BpeScratch *s, int32_t pos)
{
    int32_t nxt = s->next[pos];
    if (nxt < 0) return;
    int32_t rank, merged;
    if (pairmap_get(&b->merges, s->id[pos], s->id[nxt], &rank, &merged))
        queue_push(s, (BpeQueueItem){rank, pos, merged});
}

static size_t add_symbol(BpeScratch *s, size_t n, int32_t id, int32_t len)
{
    s->id[n] = id;
    s->len[n] = len;
    return n + 1;
}

/* The initial symbols, with HF's handling of units not in the vocabulary:
 * byte fallback first, then the unknown token.  A pending unknown is only
 * flushed by a known unit, not by byte-fallback tokens, exactly as HF's
 * merge_word does (it cannot matter when all 256 byte tokens exist). */
static size_t initial_symbols(const Bpe *b, const uint8_t *word, size_t len, BpeScratch *s)
{
    size_t n = 0;
    int32_t unk_start = -1, unk_len = 0;
    size_t i = 0;
    while (i < len) {
        int ulen = b->byte_units ? 1 : utf8_char_len(word + i, len - i);
        int32_t id = b->byte_units ? b->byte_unit_id[word[i]] : strmap_get(&b->vocab, word + i, (size_t)ulen);
        if (id >= 0) {
            if (unk_start >= 0) {
                n = add_symbol(s, n, b->unk_id, unk_len);
                unk_start = -1;
            }
            n = add_symbol(s, n, id, ulen);
        } else {
            int fell_back = 0;
            if (b->byte_fallback) {
                fell_back = 1;
                for (int k = 0; k < ulen; k++)
                    if (b->byte_fallback_id[word[i + k]] < 0) fell_back = 0;
                if (fell_back)
                    for (int k = 0; k < ulen; k++)
                        n = add_symbol(s, n, b->byte_fallback_id[word[i + k]], 1);
            }
            if (!fell_back && b->unk_id >= 0) {
                if (unk_start >= 0 && b->fuse_unk) {
                    unk_len += ulen;
                } else {
                    if (unk_start >= 0) n = add_symbol(s, n, b->unk_id, unk_len);
                    unk_start = (int32_t)i;
                    unk_len = ulen;
                }
            }
        }
        i += (size_t)ulen;
    }
    if (unk_start >= 0) n = add_symbol(s, n, b->unk_id, unk_len);
    return n;
}

size_t bpe_encode_word(const Bpe *b, const uint8_t *word, size_t len, BpeScratch *s)
{
    scratch_reserve(s, len + 1);
    s->out_n = 0;
    if (len == 0) return 0;
    if (b->ignore_merges) {
        int32_t id = strmap_get(&b->vocab, word, len);
        if (id >= 0) {
            s->out_id[0] = id;
            s->out_start[0] = 0;
            s->out_len[0] = (int32_t)len;
            return s->out_n = 1;
        }
    }
    size_t n = initial_symbols(b, word, len, s);
    for (size_t i = 0; i < n; i++) {
        s->prev[i] = (int32_t)i - 1;
        s->next[i] = i + 1 < n ? (int32_t)i + 1 : -1;
    }
    s->heap_n = 0;
    for (size_t i = 0; i + 1 < n; i++) push_pair(b, s, (int32_t)i);
    while (s->heap_n) {
        BpeQueueItem top = queue_pop(s);
        int32_t pos = top.pos;
        /* Lazy invalidation: skip entries whose pair no longer exists. */
        if (s->len[pos] == 0 || s->next[pos] < 0) continue;
        int32_t right = s->next[pos];
        int32_t rank, merged;
        if (!pairmap_get(&b->merges, s->id[pos], s->id[right], &rank, &merged) || merged != top.merged)
            continue;
        s->id[pos] = merged;
        s->len[pos] += s->len[right];
        s->len[right] = 0;
        s->next[pos] = s->next[right];
        if (s->next[pos] >= 0) s->prev[s->next[pos]] = pos;
        if (s->prev[pos] >= 0) push_pair(b, s, s->prev[pos]);
        push_pair(b, s, pos);
    }
    /* Like HF, a token's offset is the sum of the lengths before it: the
     * same as its position unless units were dropped (unknown, no unk). */
    size_t out = 0;
    int32_t at = 0;
    for (int32_t i = n ? 0 : -1; i >= 0; i = s->next[i]) {
        s->out_id[out] = s->id[i];
        s->out_start[out] = at;
        s->out_len[out] = s->len[i];
        at += s->len[i];
        out++;
    }
    return s->out_n = out;
}
