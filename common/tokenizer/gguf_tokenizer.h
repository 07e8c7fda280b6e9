/* The tokenizer stored in a GGUF file (tokenizer.ggml.* metadata), built
 * with tokenizer_from_arrays (tokenizer.h). */
#ifndef HD_GGUF_TOKENIZER_H
#define HD_GGUF_TOKENIZER_H

#include "formats/gguf.h"
#include "tokenizer/tokenizer.h"

/* Reads tokenizer.ggml.{model, pre, tokens, scores, token_type, merges,
 * bos/eos/unknown/padding_token_id, add_bos_token, add_eos_token,
 * add_space_prefix}; only model and tokens are required.  NULL with a
 * message naming the file and key when one is missing or mistyped. */
Tokenizer *tokenizer_from_gguf(const GgufFile *g);
/* Opens the file, builds the tokenizer, closes the file. */
Tokenizer *tokenizer_load_gguf(const char *path);

#endif
