/* Building a Tokenizer (helpers shared by the tokenizer.json and GGUF
 * loaders), freeing it, and the id/string lookups. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/error.h"
#include "tokenizer/tokenizer_internal.h"
#include "base/unicode.h"

/* Ids above this are refused: a malformed file must not make us allocate
 * gigabytes of tables. */
#define MAX_TOKEN_ID (1 << 21)

static const char METASPACE[] = "\xE2\x96\x81"; /* U+2581 */

Tokenizer *tokenizer_alloc(const char *name)
{
    static uint64_t next_serial = 1;
    Tokenizer *t = hd_calloc(1, sizeof *t);
    t->serial = __atomic_fetch_add(&next_serial, 1, __ATOMIC_RELAXED);
    t->name = hd_strdup(name ? name : "tokenizer");
    t->bos_id = t->eos_id = t->unk_id = t->pad_id = -1;
    return t;
}

/* Ids usually arrive in increasing order: grow the tables geometrically. */
static void grow_ids(Tokenizer *t, size_t n)
{
    if (n <= t->n_ids) return;
    if (n > t->ids_cap) {
        size_t cap = t->ids_cap ? t->ids_cap : 1024;
        while (cap < n) cap *= 2;
        t->token_text = hd_realloc(t->token_text, cap * sizeof *t->token_text);
        t->token_text_len = hd_realloc(t->token_text_len, cap * sizeof *t->token_text_len);
        t->special = hd_realloc(t->special, cap);
        t->in_model = hd_realloc(t->in_model, cap);
        t->ids_cap = cap;
    }
    for (size_t i = t->n_ids; i < n; i++) {
        t->token_text[i] = NULL;
        t->token_text_len[i] = 0;
        t->special[i] = 0;
        t->in_model[i] = 0;
    }
    t->n_ids = n;
}

int tokenizer_set_token(Tokenizer *t, int32_t id, const char *text, size_t len)
{
    if (id < 0 || id >= MAX_TOKEN_ID) return hd_fail("token id %d is out of range", id);
    grow_ids(t, (size_t)id + 1);
    free(t->token_text[id]);
    t->token_text[id] = hd_strndup(text, len);
    t->token_text_len[id] = (uint32_t)len;
    t->in_model[id] = 1;
    if (!t->token_to_id.slots) strmap_init(&t->token_to_id, 1024);
    strmap_put(&t->token_to_id, text, len, id);
    return 0;
}

int tokenizer_add_added(Tokenizer *t, int32_t id, const char *content, size_t len, int special,
                        int lstrip, int rstrip, int normalized)
{
    if (id < 0 || id >= MAX_TOKEN_ID) return hd_fail("added token id %d is out of range", id);
    if (len == 0) return 0; /* HF ignores empty added tokens */
    grow_ids(t, (size_t)id + 1);
    for (size_t i = 0; i < t->n_added; i++) {
        AddedToken *a = &t->added[i];
        if (a->len == len && memcmp(a->content, content, len) == 0) {
            a->id = id;
            a->special |= special != 0;
            a->lstrip = lstrip != 0;
            a->rstrip = rstrip != 0;
            a->normalized = normalized != 0;
            return 0;
        }
    }
    t->added = hd_realloc(t->added, (t->n_added + 1) * sizeof *t->added);
    t->added[t->n_added++] = (AddedToken){id, hd_strndup(content, len), len, special != 0,
                                          lstrip != 0, rstrip != 0, normalized != 0};
    return 0;
}

int32_t tokenizer_next_added_id(const Tokenizer *t, const char *content, size_t len, size_t n_model)
{
    int32_t max = -1;
    for (size_t i = 0; i < t->n_added; i++) {
        if (t->added[i].len == len && memcmp(t->added[i].content, content, len) == 0) return t->added[i].id;
        if (t->added[i].id > max) max = t->added[i].id;
    }
    int32_t in_model = t->token_to_id.slots ? strmap_get(&t->token_to_id, content, len) : -1;
    if (in_model >= 0) return in_model;
    if (max < 0) return (int32_t)n_model;
    return (size_t)max >= n_model || n_model == 0 ? max + 1 : (int32_t)n_model;
}

const char *tokenizer_token_string(const Tokenizer *t, int32_t id, size_t *len)
{
    if (id < 0 || (size_t)id >= t->n_ids) return NULL;
    int32_t a = t->added_of_id[id];
    if (a >= 0) {
        *len = t->added[a].len;
        return t->added[a].content;
    }
    *len = t->token_text_len[id];
    return t->token_text[id];
}

/* HF's pre-tokenizer regexes run on Oniguruma, whose \s is the Unicode
 * White_Space property.  PCRE2's \s under UCP also matches U+180E (it is
 * in PCRE2's fixed list of horizontal spaces, though it left White_Space
 * in Unicode 6.3), which changes the pieces of "420    \u180ewith" for
 * Llama 3 and SmolLM2.  So \s and \S, in a class or not, are rewritten as
 * \p{White_Space} and \P{White_Space}; other escapes, and \Q...\E, are
 * copied as they are.  Returns a malloc'd pattern. */
static char *white_space_as_oniguruma(const char *pattern)
{
    size_t n = strlen(pattern);
    char *out = hd_malloc(8 * n + 1), *o = out; /* "\s" (2) -> "\p{White_Space}" (15) */
    for (size_t i = 0; i < n; i++) {
        if (pattern[i] != '\\' || i + 1 == n) {
            *o++ = pattern[i];
            continue;
        }
        char c = pattern[++i];
        if (c == 's' || c == 'S') {
            o += sprintf(o, "\\%c{White_Space}", c == 's' ? 'p' : 'P');
        } else if (c == 'Q') { /* literal text up to \E */
            const char *e = strstr(pattern + i + 1, "\\E");
            size_t end = e ? (size_t)(e - pattern) + 2 : n;
            memcpy(o, pattern + i - 1, end - (i - 1));
            o += end - (i - 1);
            i = end - 1;
        } else {
            *o++ = '\\';
            *o++ = c;
        }
    }
    *o = 0;
    return out;
}

int tokenizer_add_pre_regex(Tokenizer *t, const char *pattern)
{
    int err;
    PCRE2_SIZE at;
    char *onig = white_space_as_oniguruma(pattern);
    pcre2_code *re = pcre2_compile((PCRE2_SPTR)onig, PCRE2_ZERO_TERMINATED, PCRE2_UTF | PCRE2_UCP,
                                   &err, &at, NULL);
    free(onig);
    if (!re) {
        PCRE2_UCHAR msg[256];
        pcre2_get_error_message(err, msg, sizeof msg);
        return hd_fail("pre-tokenizer regex /%s/ does not compile at offset %zu: %s", pattern,
                       (size_t)at, (char *)msg);
    }
    int jit = pcre2_jit_compile(re, PCRE2_JIT_COMPLETE) == 0;
    t->pre = hd_realloc(t->pre, (t->n_pre + 1) * sizeof *t->pre);
    t->pre[t->n_pre++] = (PreStep){re, jit, hd_strdup(pattern)};
    return 0;
}

void tokenizer_add_norm(Tokenizer *t, NormKind kind, const char *pattern, size_t plen,
                        const char *content, size_t clen)
{
    t->norm = hd_realloc(t->norm, (t->n_norm + 1) * sizeof *t->norm);
    t->norm[t->n_norm++] = (NormStep){kind, pattern ? hd_strndup(pattern, plen) : NULL,
                                      hd_strndup(content, clen), plen, clen};
}

DecStep *tokenizer_add_dec(Tokenizer *t, DecKind kind)
{
    t->dec = hd_realloc(t->dec, (t->n_dec + 1) * sizeof *t->dec);
    DecStep *d = &t->dec[t->n_dec++];
    memset(d, 0, sizeof *d);
    d->kind = kind;
    t->has_decoder = 1;
    return d;
}

void tokenizer_set_template(Tokenizer *t, const int32_t *prefix, size_t n_prefix,
                            const int32_t *suffix, size_t n_suffix)
{
    free(t->prefix_ids);
    free(t->suffix_ids);
    t->prefix_ids = hd_malloc((n_prefix + 1) * sizeof *t->prefix_ids);
    t->suffix_ids = hd_malloc((n_suffix + 1) * sizeof *t->suffix_ids);
    if (n_prefix) memcpy(t->prefix_ids, prefix, n_prefix * sizeof *prefix);
    if (n_suffix) memcpy(t->suffix_ids, suffix, n_suffix * sizeof *suffix);
    t->n_prefix = n_prefix;
    t->n_suffix = n_suffix;
}

/* A byte-level token string back to the bytes it stands for; 0 if some
 * character is outside the byte-level alphabet. */
static int byte_level_to_bytes(const char *text, size_t len, char *out, size_t *out_len)
{
    size_t i = 0, o = 0;
    while (i < len) {
        uint32_t cp;
        int n = utf8_decode((const uint8_t *)text + i, len - i, &cp);
        if (n == 0) return 0;
        int b = byte_level_byte(cp);
        if (b < 0) return 0;
        out[o++] = (char)b;
        i += (size_t)n;
    }
    *out_len = o;
    return 1;
}

static int cmp_added(const void *a, const void *b, void *base)
{
    const AddedToken *added = base;
    const AddedToken *x = &added[*(const size_t *)a], *y = &added[*(const size_t *)b];
    if (x->len != y->len) return x->len > y->len ? -1 : 1;
    return x->id < y->id ? -1 : x->id > y->id;
}

int tokenizer_finish_vocab(Tokenizer *t)
{
    size_t n_model = 0;
    for (size_t id = 0; id < t->n_ids; id++) n_model += t->in_model[id];
    bpe_init(&t->bpe, n_model, 1024);
    if (!t->token_to_id.slots) strmap_init(&t->token_to_id, 16);
    t->bpe.byte_units = t->byte_level;
    size_t buf_cap = 64;
    char *buf = hd_malloc(buf_cap);
    for (size_t id = 0; id < t->n_ids; id++) {
        const char *text = t->token_text[id];
        size_t len = t->token_text_len[id];
        if (!text || !t->in_model[id]) continue;
        if (t->byte_level) {
            if (len > buf_cap) buf = hd_realloc(buf, buf_cap = len * 2);
            size_t raw_len;
            /* Tokens that are not pure byte-level text can never come out
             * of BPE over bytes; they stay out of the BPE vocabulary. */
            if (byte_level_to_bytes(text, len, buf, &raw_len))
                strmap_put(&t->bpe.vocab, buf, raw_len, (int32_t)id);
        } else {
            strmap_put(&t->bpe.vocab, text, len, (int32_t)id);
        }
    }
    free(buf);
    for (size_t i = 0; i < t->n_added; i++)
        strmap_put(&t->token_to_id, t->added[i].content, t->added[i].len, t->added[i].id);
    for (int b = 0; b < 256; b++) {
        char unit = (char)b, name[8];
        if (t->byte_level) t->bpe.byte_unit_id[b] = strmap_get(&t->bpe.vocab, &unit, 1);
        snprintf(name, sizeof name, "<0x%02X>", b);
        t->bpe.byte_fallback_id[b] = strmap_get(&t->bpe.vocab, name, 6);
    }
    /* id -> added token (the last one given that id wins, as in HF) */
    t->added_of_id = hd_malloc((t->n_ids + 1) * sizeof *t->added_of_id);
    for (size_t id = 0; id < t->n_ids; id++) t->added_of_id[id] = -1;
    for (size_t i = 0; i < t->n_added; i++) {
        t->added_of_id[t->added[i].id] = (int32_t)i;
        if (t->added[i].special) t->special[t->added[i].id] = 1;
    }
    /* Leftmost-longest matching tries longer tokens first. */
    t->match_order = hd_malloc((t->n_added + 1) * sizeof *t->match_order);
    for (size_t i = 0; i < t->n_added; i++) t->match_order[i] = i;
    qsort_r(t->match_order, t->n_added, sizeof *t->match_order, cmp_added, t->added);
    memset(t->added_first_byte, 0, sizeof t->added_first_byte);
    for (size_t i = 0; i < t->n_added; i++)
        t->added_first_byte[t->added[i].normalized][(uint8_t)t->added[i].content[0]] = 1;
    return 0;
}

/* The raw-bytes key a merge part has in the BPE vocabulary. */
static int32_t merge_part_id(Tokenizer *t, const char *s, size_t len, char *buf, size_t *raw_len)
{
    if (!t->byte_level) {
        memcpy(buf, s, len);
        *raw_len = len;
        return strmap_get(&t->bpe.vocab, s, len);
    }
    if (!byte_level_to_bytes(s, len, buf, raw_len)) return -1;
    return strmap_get(&t->bpe.vocab, buf, *raw_len);
}

int tokenizer_add_merge(Tokenizer *t, const char *left, size_t llen, const char *right,
                        size_t rlen, int32_t rank)
{
    char stack[256];
    char *buf = llen + rlen <= sizeof stack ? stack : hd_malloc(llen + rlen);
    size_t lraw, rraw;
    int32_t l = merge_part_id(t, left, llen, buf, &lraw);
    int32_t r = l < 0 ? -1 : merge_part_id(t, right, rlen, buf + lraw, &rraw);
    int32_t merged = r < 0 ? -1 : strmap_get(&t->bpe.vocab, buf, lraw + rraw);
    if (buf != stack) free(buf);
    if (l < 0 || r < 0 || merged < 0)
        return hd_fail("merge %d '%.*s %.*s': %s is not in the vocabulary", rank + 1, (int)llen,
                       left, (int)rlen, right,
                       l < 0 ? "the left part" : r < 0 ? "the right part" : "the merged token");
    /* HF keeps the last rank of a repeated merge (it fills a hash map). */
    pairmap_put(&t->bpe.merges, l, r, rank, merged);
    if (rlen >= 3 && memcmp(right, METASPACE, 3) == 0 &&
        !(llen >= 3 && memcmp(left + llen - 3, METASPACE, 3) == 0))
        t->merge_crosses_metaspace = 1;
    return 0;
}

int tokenizer_finish(Tokenizer *t)
{
    t->split_before_metaspace = t->n_pre == 0 && !t->byte_level && !t->bpe.ignore_merges &&
                                !t->merge_crosses_metaspace &&
                                strmap_get(&t->bpe.vocab, METASPACE, 3) >= 0;
    if (!t->prefix_ids) tokenizer_set_template(t, NULL, 0, NULL, 0);
    tokenizer_build_token_bytes(t);
    return 0;
}

void tokenizer_free(Tokenizer *t)
{
    if (!t) return;
    for (size_t i = 0; i < t->n_ids; i++) {
        free(t->token_text[i]);
        if (t->token_bytes) free(t->token_bytes[i]);
    }
    free(t->token_text);
    free(t->token_text_len);
    free(t->token_bytes);
    free(t->token_bytes_len);
    free(t->special);
    free(t->in_model);
    free(t->added_of_id);
    free(t->match_order);
    strmap_free(&t->token_to_id);
    bpe_free(&t->bpe);
    for (size_t i = 0; i < t->n_added; i++) free(t->added[i].content);
    free(t->added);
    for (size_t i = 0; i < t->n_norm; i++) {
        free(t->norm[i].pattern);
        free(t->norm[i].content);
    }
    free(t->norm);
    for (size_t i = 0; i < t->n_pre; i++) {
        pcre2_code_free(t->pre[i].re);
        free(t->pre[i].pattern);
    }
    free(t->pre);
    for (size_t i = 0; i < t->n_dec; i++) {
        free(t->dec[i].pattern);
        free(t->dec[i].content);
    }
    free(t->dec);
    free(t->prefix_ids);
    free(t->suffix_ids);
    free(t->name);
    free(t);
}

/* ---- Lookups ------------------------------------------------------------ */

const char *tokenizer_id_to_token(const Tokenizer *t, int32_t id)
{
    size_t len;
    return tokenizer_token_string(t, id, &len);
}

int32_t tokenizer_token_to_id(const Tokenizer *t, const char *token)
{
    return strmap_get(&t->token_to_id, token, strlen(token));
}

size_t tokenizer_vocab_size(const Tokenizer *t) { return t->n_ids; }

int tokenizer_is_special(const Tokenizer *t, int32_t id)
{
    return id >= 0 && (size_t)id < t->n_ids && t->special[id];
}

int32_t tokenizer_bos_id(const Tokenizer *t) { return t->bos_id; }
int32_t tokenizer_eos_id(const Tokenizer *t) { return t->eos_id; }

int tokenizer_adds_bos(const Tokenizer *t)
{
    return t->bos_id >= 0 && t->n_prefix > 0 && t->prefix_ids[0] == t->bos_id;
}
