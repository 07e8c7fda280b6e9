/* Tokenizer: text <-> token ids, identical to Hugging Face `tokenizers`.
 *
 * Two kinds of model are supported, the ones hyperdas's models use:
 *
 *  - byte-level BPE (GPT-2 family: Llama 3 / 3.1, SmolLM2): the text is
 *    split by a pre-tokenizer regex (PCRE2 with JIT, Unicode properties;
 *    \s is read as HF's Oniguruma reads it, the White_Space property, and
 *    the Digits step knows the Unicode 15 digits as Rust's is_numeric
 *    does: tokenizer.c, tokenizer_internal.h) and each piece's bytes are
 *    merged by BPE;
 *  - SentencePiece-style BPE with byte fallback (Llama 2): a normalizer
 *    prepends U+2581 and turns spaces into U+2581, characters outside the
 *    vocabulary become <0xXX> byte tokens.
 *
 * Sources:
 *  - tokenizer_load_json(): a Hugging Face tokenizer.json, optionally with
 *    its tokenizer_config.json (bos_token, eos_token, add_bos_token,
 *    add_eos_token).  Supported components: model BPE; normalizer Prepend /
 *    Replace (string patterns) / Sequence; pre_tokenizer Split (regex,
 *    "Isolated") / ByteLevel / Digits / Sequence; post_processor
 *    TemplateProcessing / ByteLevel / RobertaProcessing / BertProcessing /
 *    Sequence; decoder ByteLevel / Replace / ByteFallback / Fuse / Strip /
 *    Sequence.  Anything else fails with a message naming the component,
 *    never a silent approximation.
 *  - tokenizer_from_arrays(): the plain arrays of GGUF metadata
 *    (tokenizer.ggml.*), for the GGUF reader.
 *
 * Encoding (tokenizer_encode), in HF's order:
 *  1. added and special tokens written in the text (e.g. "<|eot_id|>",
 *     "<s>") are matched first, leftmost-longest, and become their ids, as
 *     HF does by default (with add_special or not);
 *     (tokens with normalized=true in a second pass, as HF does);
 *  2. every stretch between them is normalized, pre-tokenized and BPE'd;
 *  3. if add_special, the post-processor's template adds its tokens around
 *     the result: Llama 3.1 and Llama 2 add BOS (<|begin_of_text|>, <s>),
 *     the Llama 3 tokenizer.json adds nothing, SmolLM2 from GGUF adds
 *     nothing (tokenizer.ggml.add_bos_token is false).
 *
 * Offsets: every token gets a byte range [start, end) of the input text.
 * It is the range of the input characters its bytes came from, widened to
 * whole UTF-8 characters: exactly HF's offsets, converted to bytes.
 *  - a byte-level token holding only some bytes of a character (an emoji
 *    split in two tokens) covers the whole character, so such neighbours
 *    share the character's range (ranges may overlap there, never elsewhere);
 *  - Llama 2's U+2581 standing for a space covers that space; the U+2581
 *    that the normalizer prepends covers the stretch's first character, so a
 *    lone "▁" token before a digit has that digit's range;
 *  - a special token matched in the text covers its text; tokens added by
 *    the post-processor (BOS) have the empty range [0, 0);
 *  - ranges are never trimmed of spaces (HF's trim_offsets is ignored);
 *  - as in HF, a token's range inside a word is the sum of the byte lengths
 *    of the tokens before it, which is its true position except in a
 *    vocabulary lacking some characters with no unknown token or byte
 *    fallback (the character is then dropped and later ranges shift).
 * To find the last token of a byte span [a, b) of the text: the last token
 * with start < b and end > a.
 *
 * Added tokens: their ids are derived as HF derives them when it loads a
 * tokenizer.json (an id already in the vocabulary, else the next one after
 * it); in every well-formed file these are the ids written in the file.
 *
 * Threads and speed: a Tokenizer is read-only after it is built, so several
 * threads may encode with one Tokenizer at once, each with its own
 * TokenList.  A TokenList keeps a cache of the words it has tokenized (like
 * HF's BPE cache), so reusing one TokenList for many texts is much faster
 * (about 1-3 microseconds for a RAVEL prompt).
 *
 * Errors follow common/base/error.h: functions return -1 or NULL after hd_fail(). */
#ifndef HD_TOKENIZER_H
#define HD_TOKENIZER_H

#include <stddef.h>
#include <stdint.h>

typedef struct Tokenizer Tokenizer;

/* ---- Building ---------------------------------------------------------- */

/* Loads tokenizer.json; config_path (tokenizer_config.json) may be NULL.
 * With a config, bos_token / eos_token give tokenizer_bos_id/eos_id and an
 * add_bos_token / add_eos_token key, when present, decides what add_special
 * adds (as transformers' LlamaTokenizerFast does).  Without one, BOS is the
 * token the post-processor puts first (if any) and EOS is unknown (-1). */
Tokenizer *tokenizer_load_json(const char *path, const char *config_path);

/* The same from tokenizer.json text already in memory (name is used in
 * error messages); config_json may be NULL. */
Tokenizer *tokenizer_load_json_text(const char *json, size_t len, const char *config_json,
                                    size_t config_len, const char *name);

/* GGUF tokenizer metadata as plain C arrays.  Every pointer is borrowed for
 * the duration of the call only. */
typedef struct {
    const char *model;         /* tokenizer.ggml.model: "gpt2" (byte-level BPE)
                                  or "llama" (SentencePiece-style BPE) */
    const char *pre;           /* tokenizer.ggml.pre: "smollm", "llama-bpe" / "llama3",
                                  "default" / "gpt2"; NULL means "default" */
    size_t n_tokens;
    const char *const *tokens; /* tokenizer.ggml.tokens: id i is tokens[i] */
    const uint32_t *token_lens;/* byte length of each token, or NULL: NUL-terminated */
    const float *scores;       /* tokenizer.ggml.scores or NULL (llama without
                                  merges needs them to rank merges) */
    const int32_t *token_types;/* tokenizer.ggml.token_type or NULL: 1 normal,
                                  2 unknown, 3 control, 4 user-defined, 5 unused, 6 byte */
    size_t n_merges;
    const char *const *merges; /* tokenizer.ggml.merges "left right", rank = index; may be
                                  NULL for "llama" (derived from scores as transformers does) */
    const uint32_t *merge_lens;/* byte length of each merge, or NULL */
    int32_t bos_id, eos_id;    /* tokenizer.ggml.bos_token_id / eos_token_id, -1 absent */
    int32_t unk_id, pad_id;    /* tokenizer.ggml.unknown_token_id / padding_token_id, -1 */
    int add_bos, add_eos;      /* tokenizer.ggml.add_bos_token / add_eos_token:
                                  1, 0, or -1 when absent (then: llama adds BOS, gpt2 not) */
    int add_space_prefix;      /* tokenizer.ggml.add_space_prefix, -1 absent (llama: 1) */
} TokenizerArrays;

/* Control (3), unknown (2) and user-defined (4) tokens are matched in text
 * (as llama.cpp does); the first two are special (skipped by decode with
 * skip_special).  A "gpt2" vocabulary is
 * byte-level; "smollm" splits every digit off first, then applies the GPT-2
 * pattern; "llama-bpe"/"llama3" uses the Llama 3 pattern. */
Tokenizer *tokenizer_from_arrays(const TokenizerArrays *a, const char *name);

void tokenizer_free(Tokenizer *t);

/* ---- Encoding ---------------------------------------------------------- */

/* The result of tokenizer_encode; reuse one across calls to avoid
 * allocations.  Zero-initialise it ({0}) before first use. */
typedef struct {
    int32_t *ids;
    int32_t *start, *end;  /* byte offsets into the input, see top of file */
    size_t n, cap;
    void *scratch;         /* private working memory */
} TokenList;

void token_list_free(TokenList *list);

/* Encodes text[0..len).  The text must be valid UTF-8 (as any Python str
 * is); otherwise -1 with a message giving the first bad byte.  Embedded
 * NUL bytes are ordinary characters.  Returns 0. */
int tokenizer_encode(const Tokenizer *t, const char *text, size_t len, int add_special,
                     TokenList *out);

/* ---- Decoding and lookups ---------------------------------------------- */

/* Decodes ids to a NUL-terminated UTF-8 string (malloc'd; *len without the
 * NUL when len is not NULL), as HF's decode: the tokenizer's decoder turns
 * byte-level characters or <0xXX> tokens back into bytes, invalid UTF-8 is
 * replaced by U+FFFD like Rust's from_utf8_lossy, Llama 2's leading space is
 * stripped.  skip_special drops special tokens.  Unknown ids are skipped. */
char *tokenizer_decode(const Tokenizer *t, const int32_t *ids, size_t n, int skip_special,
                       size_t *len);

/* The raw bytes one token stands for when decoded on its own, for
 * streaming output (byte-level: the bytes; Llama 2: U+2581 -> ' ', <0xXX>
 * -> that byte); NULL for an unknown id.  Valid while t lives. */
const char *tokenizer_token_bytes(const Tokenizer *t, int32_t id, size_t *len);

/* The token's string as in tokenizer.json (e.g. "Ġworld", "▁Hello"), or
 * NULL for an unknown id.  Valid while t lives. */
const char *tokenizer_id_to_token(const Tokenizer *t, int32_t id);

/* Id of a token string (added tokens first, then the vocabulary), -1 if none. */
int32_t tokenizer_token_to_id(const Tokenizer *t, const char *token);

/* One more than the largest id, added tokens included. */
size_t tokenizer_vocab_size(const Tokenizer *t);
int tokenizer_is_special(const Tokenizer *t, int32_t id);
int32_t tokenizer_bos_id(const Tokenizer *t); /* -1 when unknown */
int32_t tokenizer_eos_id(const Tokenizer *t);
/* Whether encode with add_special puts BOS first. */
int tokenizer_adds_bos(const Tokenizer *t);

#endif
