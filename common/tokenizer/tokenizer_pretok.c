/* Normalization and pre-tokenization of one stretch of text (the text
 * between two added tokens), keeping for every normalized byte the range
 * of the input character it came from, so that token offsets can be
 * mapped back to the input the way HF's alignments do. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base/error.h"
#include "tokenizer/tokenizer_internal.h"
#include "base/unicode.h"

void pretok_scratch_free(PretokScratch *s)
{
    free(s->text);
    free(s->orig_start);
    free(s->orig_end);
    free(s->piece_start);
    free(s->piece_end);
    free(s->tmp_start);
    free(s->tmp_end);
    free(s->tmp_text);
    free(s->tmp_orig_start);
    free(s->tmp_orig_end);
    if (s->match) pcre2_match_data_free(s->match);
    memset(s, 0, sizeof *s);
}

static void reserve_text(PretokScratch *s, size_t n)
{
    if (n <= s->cap) return;
    size_t cap = s->cap ? s->cap : 256;
    while (cap < n) cap *= 2;
    s->text = hd_realloc(s->text, cap);
    s->orig_start = hd_realloc(s->orig_start, cap * sizeof *s->orig_start);
    s->orig_end = hd_realloc(s->orig_end, cap * sizeof *s->orig_end);
    s->tmp_text = hd_realloc(s->tmp_text, cap);
    s->tmp_orig_start = hd_realloc(s->tmp_orig_start, cap * sizeof *s->tmp_orig_start);
    s->tmp_orig_end = hd_realloc(s->tmp_orig_end, cap * sizeof *s->tmp_orig_end);
    s->cap = cap;
}

static void swap_text(PretokScratch *s)
{
    uint8_t *t = s->text;
    s->text = s->tmp_text;
    s->tmp_text = t;
    int32_t *a = s->orig_start;
    s->orig_start = s->tmp_orig_start;
    s->tmp_orig_start = a;
    a = s->orig_end;
    s->orig_end = s->tmp_orig_end;
    s->tmp_orig_end = a;
}

/* A normalizer may lengthen the text (Replace " " by U+2581 triples it,
 * Prepend adds a few bytes), but a chain of Replace steps whose contents
 * hold their own patterns grows it exponentially: a 30-byte text became a
 * 32 GiB allocation under a crafted tokenizer.json (fuzz_tokenizer_json).
 * No real tokenizer comes near this bound; one that passes it is refused,
 * before anything is allocated, instead of exhausting memory. */
enum { NORM_GROWTH_MAX = 64, NORM_GROWTH_SLACK = 4096 };

static int too_long(const Tokenizer *t, size_t len, size_t n)
{
    size_t limit = len * NORM_GROWTH_MAX + NORM_GROWTH_SLACK;
    if (n <= limit && n <= (size_t)INT32_MAX / 2) return 0;
    if (n <= limit) /* offsets are int32_t */
        return hd_fail("%s: the normalizer grows a %zu-byte text past %zu bytes, more than offsets can hold",
                       t->name, len, (size_t)INT32_MAX / 2);
    return hd_fail("%s: the normalizer grows a %zu-byte text past %zu bytes (%d times its length and "
                   "%d bytes); refusing it", t->name, len, limit, NORM_GROWTH_MAX, NORM_GROWTH_SLACK);
}

/* Inserts content before the first byte; the new bytes are aligned with
 * the first character, as HF's NormalizedString::prepend does. */
static int prepend(const Tokenizer *t, size_t len, PretokScratch *s, const char *content, size_t clen)
{
    if (s->n == 0) return 0;
    if (too_long(t, len, s->n + clen)) return -1;
    reserve_text(s, s->n + clen);
    int32_t a = s->orig_start[0], b = s->orig_end[0];
    memcpy(s->tmp_text, content, clen);
    memcpy(s->tmp_text + clen, s->text, s->n);
    for (size_t i = 0; i < clen; i++) {
        s->tmp_orig_start[i] = a;
        s->tmp_orig_end[i] = b;
    }
    memcpy(s->tmp_orig_start + clen, s->orig_start, s->n * sizeof *s->orig_start);
    memcpy(s->tmp_orig_end + clen, s->orig_end, s->n * sizeof *s->orig_end);
    s->n += clen;
    swap_text(s);
    return 0;
}

/* Replaces every occurrence of pattern (left to right, not overlapping);
 * the replacement bytes span the characters they replace.  len is the
 * stretch's length before normalization, for the growth bound. */
static int replace(const Tokenizer *t, size_t len, PretokScratch *s, const char *pattern, size_t plen,
                   const char *content, size_t clen)
{
    if (plen == 0 || s->n < plen) return 0;
    size_t out = s->n;
    if (clen > plen) { /* count the matches: the exact length, not a worst case */
        size_t hits = 0;
        for (size_t i = 0; i + plen <= s->n;)
            if (memcmp(s->text + i, pattern, plen) == 0) {
                hits++;
                i += plen;
            } else {
                i++;
            }
        out = s->n + hits * (clen - plen);
        if (too_long(t, len, out)) return -1;
    }
    reserve_text(s, out);
    size_t i = 0, o = 0;
    while (i < s->n) {
        if (i + plen <= s->n && memcmp(s->text + i, pattern, plen) == 0) {
            int32_t a = s->orig_start[i], b = s->orig_end[i + plen - 1];
            for (size_t k = 0; k < clen; k++) {
                s->tmp_text[o] = (uint8_t)content[k];
                s->tmp_orig_start[o] = a;
                s->tmp_orig_end[o] = b;
                o++;
            }
            i += plen;
        } else {
            s->tmp_text[o] = s->text[i];
            s->tmp_orig_start[o] = s->orig_start[i];
            s->tmp_orig_end[o] = s->orig_end[i];
            o++;
            i++;
        }
    }
    s->n = o;
    swap_text(s);
    return 0;
}

static void reserve_pieces(PretokScratch *s, size_t n)
{
    if (n <= s->pieces_cap) return;
    size_t cap = s->pieces_cap ? s->pieces_cap : 64;
    while (cap < n) cap *= 2;
    s->piece_start = hd_realloc(s->piece_start, cap * sizeof *s->piece_start);
    s->piece_end = hd_realloc(s->piece_end, cap * sizeof *s->piece_end);
    s->tmp_start = hd_realloc(s->tmp_start, cap * sizeof *s->tmp_start);
    s->tmp_end = hd_realloc(s->tmp_end, cap * sizeof *s->tmp_end);
    s->pieces_cap = cap;
}

static void push_tmp_piece(PretokScratch *s, size_t *n, size_t a, size_t b)
{
    if (a >= b) return; /* HF drops empty pieces */
    reserve_pieces(s, *n + 1);
    s->tmp_start[*n] = (int32_t)a;
    s->tmp_end[*n] = (int32_t)b;
    (*n)++;
}

/* One regex split step over every current piece: the matches and the
 * stretches between them all become pieces ("Isolated"). */
static int split_step(const PreStep *step, PretokScratch *s)
{
    size_t n_new = 0;
    for (size_t p = 0; p < s->n_pieces; p++) {
        const uint8_t *subject = s->seg + s->piece_start[p];
        size_t len = (size_t)(s->piece_end[p] - s->piece_start[p]);
        size_t base = (size_t)s->piece_start[p], pos = 0, last = 0;
        while (pos <= len) {
            int rc;
            if (step->jit)
                rc = pcre2_jit_match(step->re, subject, len, pos, PCRE2_NO_UTF_CHECK, s->match, NULL);
            else
                rc = pcre2_match(step->re, subject, len, pos, PCRE2_NO_UTF_CHECK, s->match, NULL);
            if (rc == PCRE2_ERROR_JIT_STACKLIMIT) /* very long runs: the interpreter uses the heap */
                rc = pcre2_match(step->re, subject, len, pos, PCRE2_NO_UTF_CHECK | PCRE2_NO_JIT,
                                 s->match, NULL);
            if (rc == PCRE2_ERROR_NOMATCH) break;
            if (rc < 0) {
                PCRE2_UCHAR msg[256];
                pcre2_get_error_message(rc, msg, sizeof msg);
                int32_t at, end;
                pretok_source_range(s, base + pos, base + pos + 1, &at, &end);
                return hd_fail("pre-tokenizer regex /%s/ failed at byte %d: %s", step->pattern, at,
                               (char *)msg);
            }
            PCRE2_SIZE *ov = pcre2_get_ovector_pointer(s->match);
            size_t ms = ov[0], me = ov[1];
            if (me <= ms) { /* an empty match: step over one character */
                if (ms >= len) break;
                pos = ms + (size_t)utf8_char_len(subject + ms, len - ms);
                continue;
            }
            push_tmp_piece(s, &n_new, base + last, base + ms);
            push_tmp_piece(s, &n_new, base + ms, base + me);
            last = pos = me;
        }
        push_tmp_piece(s, &n_new, base + last, base + len);
    }
    int32_t *a = s->piece_start, *b = s->piece_end;
    s->piece_start = s->tmp_start;
    s->piece_end = s->tmp_end;
    s->tmp_start = a;
    s->tmp_end = b;
    s->n_pieces = n_new;
    return 0;
}

int pretok_segment(const Tokenizer *t, const uint8_t *src, size_t len, int32_t base,
                   PretokScratch *s)
{
    s->identity = t->n_norm == 0 && !t->prefix_space;
    s->base = base;
    if (s->identity) {
        s->seg = src;
        s->seg_len = len;
    } else {
        reserve_text(s, len + 16);
        memcpy(s->text, src, len);
        s->n = len;
        /* Every byte starts aligned with its whole character: this is what
         * widens a token that splits a character to the character. */
        for (size_t i = 0; i < len;) {
            int clen = utf8_char_len(src + i, len - i);
            for (int k = 0; k < clen; k++) {
                s->orig_start[i + k] = base + (int32_t)i;
                s->orig_end[i + k] = base + (int32_t)i + clen;
            }
            i += (size_t)clen;
        }
        for (size_t i = 0; i < t->n_norm; i++) {
            const NormStep *st = &t->norm[i];
            int rc = st->kind == NORM_PREPEND
                         ? prepend(t, len, s, st->content, st->content_len)
                         : replace(t, len, s, st->pattern, st->pattern_len, st->content, st->content_len);
            if (rc) return -1;
        }
        if (t->prefix_space && s->n > 0 && s->text[0] != ' ' && prepend(t, len, s, " ", 1)) return -1;
        s->seg = s->text;
        s->seg_len = s->n;
    }

    reserve_pieces(s, 1);
    s->n_pieces = 0;
    if (s->seg_len > 0) {
        s->piece_start[0] = 0;
        s->piece_end[0] = (int32_t)s->seg_len;
        s->n_pieces = 1;
    }
    if (t->n_pre && !s->match) s->match = pcre2_match_data_create(1, NULL);
    for (size_t i = 0; i < t->n_pre; i++)
        if (split_step(&t->pre[i], s)) return -1;
    return 0;
}
