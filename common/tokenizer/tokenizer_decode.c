/* tokenizer_decode: HF's decoders (ByteLevel, Replace, ByteFallback, Fuse,
 * Strip) run in order over the list of token strings, then joined. */
#include <stdlib.h>
#include <string.h>

#include "base/error.h"
#include "tokenizer/tokenizer_internal.h"
#include "base/unicode.h"

typedef struct {
    char *p;
    size_t len;
} Piece;

typedef struct {
    Piece *v;
    size_t n, cap;
} PieceList;

static void list_push(PieceList *l, char *p, size_t len)
{
    if (l->n == l->cap) {
        l->cap = l->cap ? l->cap * 2 : 16;
        l->v = hd_realloc(l->v, l->cap * sizeof *l->v);
    }
    l->v[l->n++] = (Piece){p, len};
}

static void list_free(PieceList *l)
{
    for (size_t i = 0; i < l->n; i++) free(l->v[i].p);
    free(l->v);
    memset(l, 0, sizeof *l);
}

static char *dup_bytes(const void *p, size_t n)
{
    char *d = hd_malloc(n + 1);
    if (n) memcpy(d, p, n);
    d[n] = 0;
    return d;
}

/* "<0xXX>" -> the byte, else -1.  Like HF: exactly 6 bytes, and the two
 * characters parsed by Rust's u8::from_str_radix(_, 16), which also takes
 * a leading '+'. */
static int byte_token_value(const char *s, size_t len)
{
    if (len != 6 || memcmp(s, "<0x", 3) != 0 || s[5] != '>') return -1;
    int v = 0;
    for (int i = 3; i < 5; i++) {
        char c = s[i];
        int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10
                : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
        if (d < 0) {
            if (i == 3 && c == '+') continue;
            return -1;
        }
        v = v * 16 + d;
    }
    return v;
}

static char *replace_all(const char *s, size_t len, const DecStep *d, size_t *out_len)
{
    size_t cap = len + 1;
    if (d->content_len > d->pattern_len && d->pattern_len)
        cap = len / d->pattern_len * d->content_len + len + 1;
    char *out = hd_malloc(cap);
    size_t i = 0, o = 0;
    while (i < len) {
        if (d->pattern_len && i + d->pattern_len <= len && memcmp(s + i, d->pattern, d->pattern_len) == 0) {
            memcpy(out + o, d->content, d->content_len);
            o += d->content_len;
            i += d->pattern_len;
        } else {
            out[o++] = s[i++];
        }
    }
    out[o] = 0;
    *out_len = o;
    return out;
}

/* Byte-level characters back to bytes; a token with any character outside
 * the alphabet is kept as its own UTF-8 bytes (HF does the same). */
static size_t byte_level_bytes(const char *s, size_t len, char *out)
{
    /* Check first, convert second: out may be s itself. */
    for (size_t i = 0; i < len;) {
        uint32_t cp;
        int n = utf8_decode((const uint8_t *)s + i, len - i, &cp);
        if (!n || byte_level_byte(cp) < 0) {
            memmove(out, s, len);
            return len;
        }
        i += (size_t)n;
    }
    size_t o = 0;
    for (size_t i = 0; i < len;) {
        uint32_t cp;
        i += (size_t)utf8_decode((const uint8_t *)s + i, len - i, &cp);
        out[o++] = (char)byte_level_byte(cp);
    }
    return o;
}

static void step_byte_level(PieceList *l)
{
    size_t total = 0;
    for (size_t i = 0; i < l->n; i++) total += l->v[i].len;
    char *raw = hd_malloc(total + 1);
    size_t o = 0;
    for (size_t i = 0; i < l->n; i++) o += byte_level_bytes(l->v[i].p, l->v[i].len, raw + o);
    char *text = hd_malloc(3 * o + 1);
    size_t n = utf8_lossy_copy((const uint8_t *)raw, o, (uint8_t *)text);
    text[n] = 0;
    free(raw);
    list_free(l);
    list_push(l, text, n);
}

static void flush_bytes(PieceList *out, const uint8_t *bytes, size_t n)
{
    if (n == 0) return;
    if (utf8_first_invalid(bytes, n) == n) {
        list_push(out, dup_bytes(bytes, n), n);
    } else { /* HF: one U+FFFD per byte of the whole group */
        for (size_t i = 0; i < n; i++) list_push(out, dup_bytes("\xEF\xBF\xBD", 3), 3);
    }
}

static void step_byte_fallback(PieceList *l)
{
    PieceList out = {0};
    uint8_t *bytes = hd_malloc(l->n + 1);
    size_t nb = 0;
    for (size_t i = 0; i < l->n; i++) {
        int b = byte_token_value(l->v[i].p, l->v[i].len);
        if (b >= 0) {
            bytes[nb++] = (uint8_t)b;
            free(l->v[i].p);
            continue;
        }
        flush_bytes(&out, bytes, nb);
        nb = 0;
        list_push(&out, l->v[i].p, l->v[i].len);
    }
    flush_bytes(&out, bytes, nb);
    free(bytes);
    free(l->v);
    *l = out;
}

static void step_fuse(PieceList *l)
{
    size_t total = 0;
    for (size_t i = 0; i < l->n; i++) total += l->v[i].len;
    char *all = hd_malloc(total + 1);
    size_t o = 0;
    for (size_t i = 0; i < l->n; i++) {
        memcpy(all + o, l->v[i].p, l->v[i].len);
        o += l->v[i].len;
    }
    all[o] = 0;
    list_free(l);
    list_push(l, all, o);
}

/* Up to strip_start copies of the character at the start, strip_stop at
 * the end, of every token. */
static void step_strip(PieceList *l, const DecStep *d)
{
    uint8_t enc[4];
    size_t clen = (size_t)utf8_encode(d->strip_char, enc);
    for (size_t i = 0; i < l->n; i++) {
        Piece *p = &l->v[i];
        size_t a = 0, b = p->len;
        for (int k = 0; k < d->strip_start && a + clen <= b && memcmp(p->p + a, enc, clen) == 0; k++)
            a += clen;
        for (int k = 0; k < d->strip_stop && b >= a + clen && memcmp(p->p + b - clen, enc, clen) == 0; k++)
            b -= clen;
        memmove(p->p, p->p + a, b - a);
        p->len = b - a;
        p->p[p->len] = 0;
    }
}

static void run_decoder(const Tokenizer *t, PieceList *l)
{
    for (size_t k = 0; k < t->n_dec; k++) {
        const DecStep *d = &t->dec[k];
        switch (d->kind) {
        case DEC_BYTE_LEVEL: step_byte_level(l); break;
        case DEC_BYTE_FALLBACK: step_byte_fallback(l); break;
        case DEC_FUSE: step_fuse(l); break;
        case DEC_STRIP: step_strip(l, d); break;
        case DEC_REPLACE:
            for (size_t i = 0; i < l->n; i++) {
                size_t n;
                char *r = replace_all(l->v[i].p, l->v[i].len, d, &n);
                free(l->v[i].p);
                l->v[i] = (Piece){r, n};
            }
            break;
        }
    }
}

char *tokenizer_decode(const Tokenizer *t, const int32_t *ids, size_t n, int skip_special,
                       size_t *out_len)
{
    PieceList l = {0};
    for (size_t i = 0; i < n; i++) {
        int32_t id = ids[i];
        size_t len;
        const char *s = tokenizer_token_string(t, id, &len);
        if (!s) continue;
        if (skip_special && t->special[id]) continue;
        list_push(&l, dup_bytes(s, len), len);
    }
    if (t->has_decoder) run_decoder(t, &l);
    /* HF joins the decoder's output with ""; with no decoder, tokens with " ". */
    size_t total = 0;
    for (size_t i = 0; i < l.n; i++) total += l.v[i].len + 1;
    char *out = hd_malloc(total + 1);
    size_t o = 0;
    for (size_t i = 0; i < l.n; i++) {
        if (!t->has_decoder && i > 0) out[o++] = ' ';
        memcpy(out + o, l.v[i].p, l.v[i].len);
        o += l.v[i].len;
    }
    out[o] = 0;
    list_free(&l);
    if (out_len) *out_len = o;
    return out;
}

/* What one token decodes to on its own, before any lossy UTF-8 repair and
 * without Strip: the bytes a streaming printer should write. */
void tokenizer_build_token_bytes(Tokenizer *t)
{
    t->token_bytes = hd_calloc(t->n_ids, sizeof *t->token_bytes);
    t->token_bytes_len = hd_calloc(t->n_ids, sizeof *t->token_bytes_len);
    for (size_t id = 0; id < t->n_ids; id++) {
        size_t len;
        const char *s = tokenizer_token_string(t, (int32_t)id, &len);
        if (!s) continue;
        char *cur = dup_bytes(s, len);
        for (size_t k = 0; k < t->n_dec; k++) {
            const DecStep *d = &t->dec[k];
            if (d->kind == DEC_REPLACE) {
                size_t n;
                char *r = replace_all(cur, len, d, &n);
                free(cur);
                cur = r;
                len = n;
            } else if (d->kind == DEC_BYTE_FALLBACK) {
                int b = byte_token_value(cur, len);
                if (b >= 0) {
                    cur[0] = (char)b;
                    len = 1;
                }
            } else if (d->kind == DEC_BYTE_LEVEL) {
                len = byte_level_bytes(cur, len, cur);
            }
        }
        cur[len] = 0;
        t->token_bytes[id] = cur;
        t->token_bytes_len[id] = (uint32_t)len;
    }
}

const char *tokenizer_token_bytes(const Tokenizer *t, int32_t id, size_t *len)
{
    if (id < 0 || (size_t)id >= t->n_ids || !t->token_bytes[id]) return NULL;
    if (len) *len = t->token_bytes_len[id];
    return t->token_bytes[id];
}
