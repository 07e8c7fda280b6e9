/* tokenizer_encode: added tokens first, then normalization, pre-tokenization
 * and BPE of the text between them, then the post-processor's template. */
#include <stdlib.h>
#include <string.h>

#include "base/error.h"
#include "tokenizer/tokenizer_internal.h"
#include "base/unicode.h"

/* Words repeat a lot (" the", " of", a city name in every template), and
 * a word's BPE result never depends on its context, so each TokenList
 * keeps the results of the words it has seen, like HF's BPE cache.  The
 * cache belongs to one tokenizer (checked by serial number) and is simply
 * emptied when it is full. */
#define CACHE_MAX_WORD 64
#define CACHE_MAX_WORDS 65536

typedef struct {
    uint64_t owner;        /* serial of the tokenizer the entries belong to */
    StrMap map;            /* word -> entry */
    uint32_t *sym_off, *sym_n; /* entry -> its symbols in the pools */
    size_t n_entries, cap_entries;
    int32_t *id, *start, *len; /* symbol pools */
    size_t n_syms, cap_syms;
} WordCache;

typedef struct {
    PretokScratch pre;
    BpeScratch bpe;
    WordCache cache;
} EncodeScratch;

static void cache_free(WordCache *c)
{
    if (c->map.slots) strmap_free(&c->map);
    free(c->sym_off);
    free(c->sym_n);
    free(c->id);
    free(c->start);
    free(c->len);
    memset(c, 0, sizeof *c);
}

static void cache_reset(WordCache *c, uint64_t owner)
{
    if (c->map.slots) strmap_free(&c->map);
    strmap_init(&c->map, 4096);
    c->n_entries = c->n_syms = 0;
    c->owner = owner;
}

static void cache_add(WordCache *c, const uint8_t *word, size_t len, const BpeScratch *b)
{
    if (c->n_entries == CACHE_MAX_WORDS) cache_reset(c, c->owner);
    if (c->n_entries == c->cap_entries) {
        c->cap_entries = c->cap_entries ? c->cap_entries * 2 : 1024;
        c->sym_off = hd_realloc(c->sym_off, c->cap_entries * sizeof *c->sym_off);
        c->sym_n = hd_realloc(c->sym_n, c->cap_entries * sizeof *c->sym_n);
    }
    if (c->n_syms + b->out_n > c->cap_syms) {
        while (c->n_syms + b->out_n > c->cap_syms) c->cap_syms = c->cap_syms ? c->cap_syms * 2 : 4096;
        c->id = hd_realloc(c->id, c->cap_syms * sizeof *c->id);
        c->start = hd_realloc(c->start, c->cap_syms * sizeof *c->start);
        c->len = hd_realloc(c->len, c->cap_syms * sizeof *c->len);
    }
    size_t e = c->n_entries++;
    c->sym_off[e] = (uint32_t)c->n_syms;
    c->sym_n[e] = (uint32_t)b->out_n;
    if (b->out_n) { /* a word whose units were all dropped has none */
        memcpy(c->id + c->n_syms, b->out_id, b->out_n * sizeof *c->id);
        memcpy(c->start + c->n_syms, b->out_start, b->out_n * sizeof *c->start);
        memcpy(c->len + c->n_syms, b->out_len, b->out_n * sizeof *c->len);
    }
    c->n_syms += b->out_n;
    strmap_put(&c->map, word, len, (int32_t)e);
}

void token_list_free(TokenList *list)
{
    free(list->ids);
    free(list->start);
    free(list->end);
    if (list->scratch) {
        EncodeScratch *s = list->scratch;
        pretok_scratch_free(&s->pre);
        bpe_scratch_free(&s->bpe);
        cache_free(&s->cache);
        free(s);
    }
    memset(list, 0, sizeof *list);
}

static void push_token(TokenList *out, int32_t id, int32_t start, int32_t end)
{
    if (out->n == out->cap) {
        out->cap = out->cap ? out->cap * 2 : 64;
        out->ids = hd_realloc(out->ids, out->cap * sizeof *out->ids);
        out->start = hd_realloc(out->start, out->cap * sizeof *out->start);
        out->end = hd_realloc(out->end, out->cap * sizeof *out->end);
    }
    out->ids[out->n] = id;
    out->start[out->n] = start;
    out->end[out->n] = end;
    out->n++;
}

/* Length of the whitespace characters (Rust's char::is_whitespace) that
 * end text[from..at), scanning backwards. */
static size_t whitespace_before(const uint8_t *text, size_t from, size_t at)
{
    size_t start = at;
    while (start > from) {
        size_t k = start - 1;
        while (k > from && (text[k] & 0xC0) == 0x80) k--;
        uint32_t cp;
        if (!utf8_decode(text + k, start - k, &cp) || !unicode_is_whitespace(cp)) break;
        start = k;
    }
    return at - start;
}

static size_t whitespace_after(const uint8_t *text, size_t len, size_t at)
{
    size_t end = at;
    while (end < len) {
        uint32_t cp;
        int n = utf8_decode(text + end, len - end, &cp);
        if (!n || !unicode_is_whitespace(cp)) break;
        end += (size_t)n;
    }
    return end - at;
}

/* The leftmost added token of this pass (HF matches the tokens with
 * normalized=false first, then the others inside what is left) at or after
 * `from`, the longest one there (aho-corasick LeftmostLongest); returns its
 * index in t->added or -1. */
static long find_added(const Tokenizer *t, int pass, const uint8_t *text, size_t len, size_t from,
                       size_t *ms, size_t *me)
{
    if (t->n_added == 0) return -1;
    for (size_t i = from; i < len; i++) {
        if (!t->added_first_byte[pass][text[i]]) continue;
        for (size_t k = 0; k < t->n_added; k++) { /* longest first */
            const AddedToken *a = &t->added[t->match_order[k]];
            if (a->normalized == pass && a->len <= len - i && (uint8_t)a->content[0] == text[i] &&
                memcmp(a->content, text + i, a->len) == 0) {
                *ms = i;
                *me = i + a->len;
                if (a->lstrip) *ms -= whitespace_before(text, from, i);
                if (a->rstrip) *me += whitespace_after(text, len, *me);
                return (long)t->match_order[k];
            }
        }
    }
    return -1;
}

/* BPE of one word of the normalized text, with offsets mapped back. */
static void encode_word(const Tokenizer *t, EncodeScratch *s, size_t a, size_t b, TokenList *out)
{
    PretokScratch *p = &s->pre;
    const uint8_t *word = p->seg + a;
    size_t len = b - a;
    const int32_t *id, *start, *slen;
    size_t n;
    int32_t e = len <= CACHE_MAX_WORD ? strmap_get(&s->cache.map, word, len) : -1;
    if (e >= 0) {
        n = s->cache.sym_n[e];
        if (n == 0) return; /* all its units dropped; the arrays may not exist yet */
        id = s->cache.id + s->cache.sym_off[e];
        start = s->cache.start + s->cache.sym_off[e];
        slen = s->cache.len + s->cache.sym_off[e];
    } else {
        n = bpe_encode_word(&t->bpe, word, len, &s->bpe);
        if (len <= CACHE_MAX_WORD) cache_add(&s->cache, word, len, &s->bpe);
        id = s->bpe.out_id;
        start = s->bpe.out_start;
        slen = s->bpe.out_len;
    }
    for (size_t i = 0; i < n; i++) {
        size_t na = a + (size_t)start[i];
        int32_t from, to;
        pretok_source_range(p, na, na + (size_t)slen[i], &from, &to);
        push_token(out, id[i], from, to);
    }
}

static int is_metaspace(const uint8_t *p) { return p[0] == 0xE2 && p[1] == 0x96 && p[2] == 0x81; }

static int encode_stretch(const Tokenizer *t, EncodeScratch *s, const uint8_t *text, size_t a,
                          size_t b, TokenList *out)
{
    if (a >= b) return 0;
    if (pretok_segment(t, text + a, b - a, (int32_t)a, &s->pre)) return -1;
    PretokScratch *p = &s->pre;
    for (size_t k = 0; k < p->n_pieces; k++) {
        size_t ps = (size_t)p->piece_start[k], pe = (size_t)p->piece_end[k];
        if (!t->split_before_metaspace) {
            encode_word(t, s, ps, pe, out);
            continue;
        }
        /* Cut before each U+2581 that follows another character (see
         * split_before_metaspace in tokenizer_internal.h). */
        size_t word = ps;
        for (size_t i = ps + 1; i + 3 <= pe; i++) {
            /* 0xE2 is always a lead byte, so a match falls between characters. */
            if (is_metaspace(p->seg + i) && !(i >= ps + 3 && is_metaspace(p->seg + i - 3))) {
                encode_word(t, s, word, i, out);
                word = i;
            }
        }
        encode_word(t, s, word, pe, out);
    }
    return 0;
}

/* text[a..b) between two pass-1 matches: pass-2 added tokens, then the rest. */
static int encode_between(const Tokenizer *t, EncodeScratch *s, const uint8_t *text, size_t a, size_t b,
                          TokenList *out)
{
    size_t pos = a;
    while (pos < b) {
        size_t ms = b, me = b;
        long k = find_added(t, 1, text, b, pos, &ms, &me);
        if (encode_stretch(t, s, text, pos, k < 0 ? b : ms, out)) return -1;
        if (k < 0) break;
        push_token(out, t->added[k].id, (int32_t)ms, (int32_t)me);
        pos = me;
    }
    return 0;
}

int tokenizer_encode(const Tokenizer *t, const char *text_in, size_t len, int add_special,
                     TokenList *out)
{
    const uint8_t *text = (const uint8_t *)text_in;
    out->n = 0;
    if (len > (size_t)INT32_MAX / 4) return hd_fail("%s: text of %zu bytes is too long", t->name, len);
    size_t bad = utf8_first_invalid(text, len);
    if (bad < len) return hd_fail("%s: text is not valid UTF-8 at byte %zu", t->name, bad);
    if (!out->scratch) out->scratch = hd_calloc(1, sizeof(EncodeScratch));
    EncodeScratch *s = out->scratch;
    if (!s->cache.map.slots || s->cache.owner != t->serial) cache_reset(&s->cache, t->serial);
    if (add_special)
        for (size_t i = 0; i < t->n_prefix; i++) push_token(out, t->prefix_ids[i], 0, 0);
    size_t pos = 0;
    while (pos < len) {
        size_t ms = len, me = len;
        long k = find_added(t, 0, text, len, pos, &ms, &me);
        if (encode_between(t, s, text, pos, k < 0 ? len : ms, out)) return -1;
        if (k < 0) break;
        push_token(out, t->added[k].id, (int32_t)ms, (int32_t)me);
        pos = me;
    }
    if (add_special)
        for (size_t i = 0; i < t->n_suffix; i++) push_token(out, t->suffix_ids[i], 0, 0);
    return 0;
}
