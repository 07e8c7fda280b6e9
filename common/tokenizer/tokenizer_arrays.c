/* tokenizer_from_arrays: a Tokenizer from GGUF tokenizer metadata given as
 * plain arrays.  It assembles the same pipeline a tokenizer.json would
 * describe:
 *
 *   model "gpt2":  byte-level BPE; pre-tokenizer by tokenizer.ggml.pre
 *                  ("smollm": digits split off one by one, then the GPT-2
 *                  pattern, as SmolLM2's own tokenizer.json and llama.cpp
 *                  do; "llama-bpe"/"llama3": the Llama 3 pattern with
 *                  ignore_merges; "default"/"gpt2": the GPT-2 pattern);
 *                  ByteLevel decoder.
 *   model "llama": SentencePiece-style BPE with byte fallback; U+2581
 *                  prepended (add_space_prefix) and replacing spaces;
 *                  merges from the array, or derived from the scores exactly
 *                  as transformers' GGUF converter does; decoder U+2581 ->
 *                  ' ', <0xXX> -> byte, leading space stripped.
 *
 * Note: transformers 4.46 turns a "gpt2" GGUF vocabulary into a plain
 * GPT-2 ByteLevel pre-tokenizer and ignores tokenizer.ggml.pre, so for
 * SmolLM2 it does not split digits off; the model was trained with the
 * split, and this follows the model (see tests/ref/gen_tokenizer_fixtures.py). */
#include <stdlib.h>
#include <string.h>

#include "base/error.h"
#include "tokenizer/tokenizer_internal.h"
#include "base/unicode.h"

enum { TYPE_NORMAL = 1, TYPE_UNKNOWN = 2, TYPE_CONTROL = 3, TYPE_USER_DEFINED = 4 };

static const char METASPACE[] = "\xE2\x96\x81";

static size_t tok_len(const TokenizerArrays *a, size_t i)
{
    return a->token_lens ? a->token_lens[i] : strlen(a->tokens[i]);
}

/* ---- merges from scores (transformers' GGUFTokenizerSkeleton) ------------ */

typedef struct {
    int32_t left, right; /* ids (the last id of a repeated string, like the dict) */
    float score, score_l, score_r;
    size_t order;        /* for a stable sort */
} Candidate;

static int cmp_local(const void *pa, const void *pb)
{
    const Candidate *a = pa, *b = pb;
    if (a->score_l != b->score_l) return a->score_l > b->score_l ? -1 : 1;
    if (a->score_r != b->score_r) return a->score_r > b->score_r ? -1 : 1;
    return a->order < b->order ? -1 : a->order > b->order;
}

static int cmp_global(const void *pa, const void *pb)
{
    const Candidate *a = pa, *b = pb;
    if (a->score != b->score) return a->score > b->score ? -1 : 1;
    return a->order < b->order ? -1 : a->order > b->order;
}

/* Every split of every token into two tokens, ranked by the token's score
 * (highest first), then by the parts' scores. */
static int merges_from_scores(Tokenizer *t, const TokenizerArrays *a)
{
    /* string -> last id, and the score of that string (last one wins, as
     * in the Python dict {t: scores[i]}) */
    StrMap last;
    strmap_init(&last, a->n_tokens);
    for (size_t i = 0; i < a->n_tokens; i++) strmap_put(&last, a->tokens[i], tok_len(a, i), (int32_t)i);
    Candidate *all = NULL;
    size_t n_all = 0, cap_all = 0;
    Candidate *local = NULL;
    size_t cap_local = 0;
    for (size_t i = 0; i < a->n_tokens; i++) {
        const char *s = a->tokens[i];
        size_t len = tok_len(a, i);
        if (strmap_get(&last, s, len) != (int32_t)i) {
            /* A repeated string is visited once, at its first position,
             * with the last score: skip the later copies... */
            int32_t first = -1;
            for (size_t k = 0; k < i && first < 0; k++)
                if (tok_len(a, k) == len && memcmp(a->tokens[k], s, len) == 0) first = (int32_t)k;
            if (first >= 0) continue;
        }
        size_t n_local = 0;
        for (size_t cut = 1; cut < len; cut++) {
            if (((uint8_t)s[cut] & 0xC0) == 0x80) continue; /* split between characters only */
            int32_t l = strmap_get(&last, s, cut), r = strmap_get(&last, s + cut, len - cut);
            if (l < 0 || r < 0) continue;
            if (n_local == cap_local) local = hd_realloc(local, (cap_local = cap_local * 2 + 16) * sizeof *local);
            int32_t self = strmap_get(&last, s, len);
            local[n_local] = (Candidate){l, r, a->scores[self], a->scores[l], a->scores[r], n_local};
            n_local++;
        }
        if (n_local > 1) qsort(local, n_local, sizeof *local, cmp_local);
        for (size_t k = 0; k < n_local; k++) {
            if (n_all == cap_all) all = hd_realloc(all, (cap_all = cap_all * 2 + 1024) * sizeof *all);
            all[n_all] = local[k];
            all[n_all].order = n_all;
            n_all++;
        }
    }
    if (n_all > 1) qsort(all, n_all, sizeof *all, cmp_global);
    int rc = 0;
    for (size_t k = 0; k < n_all && rc == 0; k++) {
        const Candidate *c = &all[k];
        rc = tokenizer_add_merge(t, a->tokens[c->left], tok_len(a, (size_t)c->left), a->tokens[c->right],
                                 tok_len(a, (size_t)c->right), (int32_t)k);
    }
    free(all);
    free(local);
    strmap_free(&last);
    return rc;
}

/* ---- assembly ------------------------------------------------------------- */

static int set_pre(Tokenizer *t, const char *pre)
{
    if (!pre || !strcmp(pre, "default") || !strcmp(pre, "gpt2") || !strcmp(pre, "gpt-2"))
        return tokenizer_add_pre_regex(t, PATTERN_GPT2);
    if (!strcmp(pre, "smollm"))
        return tokenizer_add_pre_regex(t, PATTERN_DIGIT) || tokenizer_add_pre_regex(t, PATTERN_GPT2) ? -1 : 0;
    if (!strcmp(pre, "llama-bpe") || !strcmp(pre, "llama3") || !strcmp(pre, "llama-v3")) {
        t->bpe.ignore_merges = 1; /* set again after finish_vocab */
        return tokenizer_add_pre_regex(t, PATTERN_LLAMA3);
    }
    return hd_fail("tokenizer.ggml.pre '%s' is not supported (smollm, llama-bpe, default)", pre);
}

static int build(Tokenizer *t, const TokenizerArrays *a)
{
    int spm;
    if (!a->model) return hd_fail("tokenizer.ggml.model is missing");
    if (!strcmp(a->model, "gpt2")) spm = 0;
    else if (!strcmp(a->model, "llama")) spm = 1;
    else return hd_fail("tokenizer.ggml.model '%s' is not supported (gpt2, llama)", a->model);
    if (!a->tokens || a->n_tokens == 0) return hd_fail("tokenizer.ggml.tokens is missing or empty");
    if (a->n_tokens > (1u << 21)) return hd_fail("tokenizer.ggml.tokens: %zu tokens is too many", a->n_tokens);
    for (size_t i = 0; i < a->n_tokens; i++) {
        if (!a->tokens[i]) return hd_fail("tokenizer.ggml.tokens[%zu] is missing", i);
        size_t len = tok_len(a, i);
        if (utf8_first_invalid((const uint8_t *)a->tokens[i], len) != len)
            return hd_fail("tokenizer.ggml.tokens[%zu] is not valid UTF-8", i);
        if (tokenizer_set_token(t, (int32_t)i, a->tokens[i], len)) return -1;
    }
    for (size_t i = 0; i < a->n_tokens; i++) {
        int type = a->token_types ? a->token_types[i] : TYPE_NORMAL;
        int special = type == TYPE_CONTROL || type == TYPE_UNKNOWN;
        if ((special || type == TYPE_USER_DEFINED) && tok_len(a, i) > 0 &&
            tokenizer_add_added(t, (int32_t)i, a->tokens[i], tok_len(a, i), special, 0, 0, 0))
            return -1;
    }
    int add_space_prefix = a->add_space_prefix >= 0 ? a->add_space_prefix : spm;
    if (spm) {
        if (add_space_prefix) tokenizer_add_norm(t, NORM_PREPEND, NULL, 0, METASPACE, 3);
        tokenizer_add_norm(t, NORM_REPLACE, " ", 1, METASPACE, 3);
    } else {
        t->byte_level = 1;
        if (set_pre(t, a->pre)) return -1;
    }
    int ignore_merges = t->bpe.ignore_merges;
    if (tokenizer_finish_vocab(t)) return -1;
    t->bpe.ignore_merges = ignore_merges;
    if (spm) {
        t->bpe.byte_fallback = 1;
        t->bpe.fuse_unk = 1;
    }
    int32_t unk = a->unk_id;
    if (a->token_types)
        for (size_t i = 0; i < a->n_tokens && unk < 0 && spm; i++)
            if (a->token_types[i] == TYPE_UNKNOWN) unk = (int32_t)i;
    if (unk >= (int32_t)a->n_tokens) return hd_fail("tokenizer.ggml.unknown_token_id %d is out of range", unk);
    t->unk_id = unk;
    /* transformers' GGUF converter for Llama-architecture files gives the
     * BPE model tokenizer.ggml.unknown_token_id as its unknown token (fused)
     * whatever the vocabulary: SmolLM2's, which lacks the byte-level
     * characters of bytes 0x04, 0x06, 0x13, 0x14, 0x16 and 0x1D, gives them
     * <|endoftext|> (id 0) rather than dropping them. */
    if (spm || unk >= 0) {
        t->bpe.unk_id = unk;
        t->bpe.fuse_unk = 1;
    }

    if (a->merges) {
        for (size_t i = 0; i < a->n_merges; i++) {
            const char *m = a->merges[i];
            if (!m) return hd_fail("tokenizer.ggml.merges[%zu] is missing", i);
            size_t len = a->merge_lens ? a->merge_lens[i] : strlen(m);
            const char *sp = memchr(m, ' ', len);
            if (!sp) return hd_fail("tokenizer.ggml.merges[%zu] '%.*s' has no space", i, (int)len, m);
            if (tokenizer_add_merge(t, m, (size_t)(sp - m), sp + 1, len - (size_t)(sp - m) - 1, (int32_t)i))
                return hd_fail_prefix("tokenizer.ggml.merges: ");
        }
    } else if (spm) {
        if (!a->scores) return hd_fail("a llama vocabulary needs tokenizer.ggml.merges or tokenizer.ggml.scores");
        if (merges_from_scores(t, a)) return hd_fail_prefix("merges from scores: ");
    } else {
        return hd_fail("tokenizer.ggml.merges is missing");
    }

    for (int k = 0; k < 2; k++) {
        int32_t id = k ? a->eos_id : a->bos_id;
        if (id >= (int32_t)a->n_tokens)
            return hd_fail("tokenizer.ggml.%s_token_id %d is out of range", k ? "eos" : "bos", id);
    }
    t->bos_id = a->bos_id;
    t->eos_id = a->eos_id;
    t->pad_id = a->pad_id;
    int add_bos = a->add_bos >= 0 ? a->add_bos : spm;
    int add_eos = a->add_eos >= 0 ? a->add_eos : 0;
    int32_t bos = a->bos_id, eos = a->eos_id;
    tokenizer_set_template(t, &bos, add_bos && bos >= 0, &eos, add_eos && eos >= 0);

    if (spm) {
        DecStep *d = tokenizer_add_dec(t, DEC_REPLACE);
        d->pattern = hd_strndup(METASPACE, 3);
        d->pattern_len = 3;
        d->content = hd_strdup(" ");
        d->content_len = 1;
        tokenizer_add_dec(t, DEC_BYTE_FALLBACK);
        tokenizer_add_dec(t, DEC_FUSE);
        if (add_space_prefix) {
            d = tokenizer_add_dec(t, DEC_STRIP);
            d->strip_char = ' ';
            d->strip_start = 1;
        }
    } else {
        tokenizer_add_dec(t, DEC_BYTE_LEVEL);
    }
    return tokenizer_finish(t);
}

Tokenizer *tokenizer_from_arrays(const TokenizerArrays *a, const char *name)
{
    Tokenizer *t = tokenizer_alloc(name ? name : "GGUF tokenizer");
    if (build(t, a)) {
        hd_fail_prefix("%s: ", t->name);
        tokenizer_free(t);
        return NULL;
    }
    return t;
}
