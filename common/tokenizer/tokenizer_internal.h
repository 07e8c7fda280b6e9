/* The Tokenizer structure, shared by the files that build it
 * (tokenizer_json.c, tokenizer_arrays.c, tokenizer.c) and the ones that
 * use it (tokenizer_pretok.c, tokenizer_encode.c, tokenizer_decode.c).
 * Not part of the public API: include tokenizer.h instead. */
#ifndef HD_TOKENIZER_INTERNAL_H
#define HD_TOKENIZER_INTERNAL_H

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include "tokenizer/bpe.h"
#include "tokenizer/tokenizer.h"

/* The pre-tokenizer patterns, written as in the tokenizer.json files. */
#define PATTERN_GPT2 "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+"
#define PATTERN_LLAMA3                                                                        \
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| "               \
    "?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"

/* HF's Digits pre-tokenizer is Rust's char::is_numeric, not a regex: in
 * tokenizers 0.20.3 it knows Unicode 15, whose new digits and numerals
 * (Kawi U+11F50-59, Kaktovik U+1D2C0-D3, Nag Mundari U+1E4F0-F9) PCRE2
 * 10.42 (Debian 12, Unicode 14 tables) leaves out of \p{N}.  They are
 * listed here (a no-op with a PCRE2 that knows them).  HF's regexes run on
 * Oniguruma, whose tables are Unicode 14 too, so \p{N} stays as it is in
 * the Split and ByteLevel patterns. */
#define PATTERN_DIGIT "[\\p{N}\\x{11F50}-\\x{11F59}\\x{1D2C0}-\\x{1D2D3}\\x{1E4F0}-\\x{1E4F9}]"

/* A token matched in the input text before anything else.  One entry per
 * content string: a repeated entry updates the flags (HF keeps the last
 * AddedToken for an id, and a content is special if any entry was). */
typedef struct {
    int32_t id;
    char *content;
    size_t len;
    int special, lstrip, rstrip;
    int normalized; /* matched in a second pass, after the others (HF) */
} AddedToken;

/* Normalizer steps, applied in order to each stretch of text between
 * added tokens. */
typedef enum { NORM_PREPEND, NORM_REPLACE } NormKind;
typedef struct {
    NormKind kind;
    char *pattern, *content; /* PREPEND uses content only */
    size_t pattern_len, content_len;
} NormStep;

/* Every pre-tokenizer step is a regex split that keeps both the matches
 * and the text between them as pieces (HF's "Isolated" behaviour):
 * Split(regex), ByteLevel(use_regex) with the GPT-2 pattern, Digits with
 * \p{N} (individual) or \p{N}+. */
typedef struct {
    pcre2_code *re;
    int jit;       /* JIT-compiled: use pcre2_jit_match */
    char *pattern; /* for messages */
} PreStep;

typedef enum { DEC_BYTE_LEVEL, DEC_REPLACE, DEC_BYTE_FALLBACK, DEC_FUSE, DEC_STRIP } DecKind;
typedef struct {
    DecKind kind;
    char *pattern, *content; /* REPLACE */
    size_t pattern_len, content_len;
    uint32_t strip_char;     /* STRIP */
    int strip_start, strip_stop;
} DecStep;

struct Tokenizer {
    char *name;            /* file name for messages */
    uint64_t serial;       /* unique per Tokenizer built: keys TokenList caches */
    Bpe bpe;
    int byte_level;        /* pieces are BPE'd as raw bytes (see bpe.h) */
    size_t n_ids;          /* one more than the largest id */
    size_t ids_cap;        /* allocated entries of the per-id tables */
    char **token_text;     /* id -> the model's token string, NULL if none */
    uint32_t *token_text_len;
    int32_t *added_of_id;  /* id -> index in added[], -1: none (added text wins) */
    char **token_bytes;    /* id -> decoded bytes of the token alone */
    uint32_t *token_bytes_len;
    uint8_t *special;      /* id -> special added token */
    uint8_t *in_model;     /* id -> part of the BPE model's vocabulary */
    StrMap token_to_id;    /* token string -> id, added tokens winning */

    AddedToken *added;     /* in the order they were added */
    size_t n_added;
    size_t *match_order;   /* indices into added[], longest content first */
    uint8_t added_first_byte[2][256]; /* [normalized]: some added token starts with this byte */

    NormStep *norm;
    size_t n_norm;
    int prefix_space;      /* ByteLevel add_prefix_space as the first step */
    PreStep *pre;
    size_t n_pre;
    /* No pre-tokenizer and no merge can join a symbol ending in another
     * character to one starting with U+2581: a word may then be cut before
     * every such U+2581 and the pieces BPE'd separately, with the same
     * result and far less work on long Llama 2 texts. */
    int split_before_metaspace;
    int merge_crosses_metaspace;

    int32_t *prefix_ids, *suffix_ids; /* what add_special puts around the text */
    size_t n_prefix, n_suffix;
    int32_t bos_id, eos_id, unk_id, pad_id;

    int has_decoder;
    DecStep *dec;
    size_t n_dec;
};

/* tokenizer.c: construction helpers shared by both loaders. */
Tokenizer *tokenizer_alloc(const char *name);
/* Records id -> token string (ids beyond the current size grow the tables). */
int tokenizer_set_token(Tokenizer *t, int32_t id, const char *text, size_t len);
int tokenizer_add_added(Tokenizer *t, int32_t id, const char *content, size_t len, int special,
                        int lstrip, int rstrip, int normalized);
/* The id HF gives an added token: its id if already added or in the model
 * vocabulary, else the next free one after the model's n_model entries. */
int32_t tokenizer_next_added_id(const Tokenizer *t, const char *content, size_t len, size_t n_model);
/* The string of a token as HF's id_to_token gives it (added first). */
const char *tokenizer_token_string(const Tokenizer *t, int32_t id, size_t *len);
int tokenizer_add_pre_regex(Tokenizer *t, const char *pattern);
void tokenizer_add_norm(Tokenizer *t, NormKind kind, const char *pattern, size_t plen,
                        const char *content, size_t clen);
DecStep *tokenizer_add_dec(Tokenizer *t, DecKind kind);
/* Builds the BPE vocabulary (byte-level keys converted back to bytes), the
 * per-token decoded bytes, the added-token index and the optimisations.
 * Call after all tokens, added tokens and flags are set, before merges. */
int tokenizer_finish_vocab(Tokenizer *t);
/* Adds merge (left, right) with this rank; fails if a part or the merged
 * token is not in the vocabulary. */
int tokenizer_add_merge(Tokenizer *t, const char *left, size_t llen, const char *right,
                        size_t rlen, int32_t rank);
/* Final checks after merges: decides split_before_metaspace. */
int tokenizer_finish(Tokenizer *t);
/* tokenizer_decode.c: fills token_bytes (what each token decodes to alone). */
void tokenizer_build_token_bytes(Tokenizer *t);
void tokenizer_set_template(Tokenizer *t, const int32_t *prefix, size_t n_prefix,
                            const int32_t *suffix, size_t n_suffix);

/* tokenizer_pretok.c: normalization and pre-tokenization scratch. */
typedef struct {
    /* The bytes that were pre-tokenized: the input itself when there is no
     * normalizer (identity: offsets are the byte positions widened to whole
     * characters), else text, with per-byte source ranges. */
    const uint8_t *seg;
    size_t seg_len;
    int identity;
    int32_t base;        /* offset of seg in the input (identity) */
    uint8_t *text;       /* normalized bytes */
    int32_t *orig_start, *orig_end; /* per normalized byte: its source character */
    size_t n, cap;
    uint8_t *tmp_text;   /* the other half of each normalizer step */
    int32_t *tmp_orig_start, *tmp_orig_end;
    int32_t *piece_start, *piece_end; /* pieces of text, in order */
    size_t n_pieces, pieces_cap;
    int32_t *tmp_start, *tmp_end;
    size_t tmp_cap;
    pcre2_match_data *match;
} PretokScratch;

void pretok_scratch_free(PretokScratch *s);
/* Normalizes src[0..len) (located at byte offset base of the input text),
 * then splits it into pieces of s->seg. */
int pretok_segment(const Tokenizer *t, const uint8_t *src, size_t len, int32_t base,
                   PretokScratch *s);
/* The input byte range [*start, *end) that seg[a..b) comes from. */
static inline void pretok_source_range(const PretokScratch *s, size_t a, size_t b, int32_t *start,
                                       int32_t *end)
{
    if (s->identity) {
        while (a > 0 && (s->seg[a] & 0xC0) == 0x80) a--;
        while (b < s->seg_len && (s->seg[b] & 0xC0) == 0x80) b++;
        *start = s->base + (int32_t)a;
        *end = s->base + (int32_t)b;
    } else {
        *start = s->orig_start[a];
        *end = s->orig_end[b - 1];
    }
}

#endif
