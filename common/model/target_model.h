/* The frozen target model a tool runs: Llama weights plus their tokenizer,
 * from a GGUF file or a Hugging Face directory, and the conventions every
 * model-side tool shares (which BOS to prepend, what to record in headers).
 *
 * Default model: $HD_MODEL, else the embedded SmolLM2 that `make model`
 * puts at models/SmolLM2-135M-Instruct.Q4_1.gguf beside the build (found
 * from the executable: bin/../models/...), else the installed copy under
 * HD_DATADIR/models. */
#ifndef HD_TARGET_MODEL_H
#define HD_TARGET_MODEL_H

#include <msgpack.h>

#include "model/llama_model.h"
#include "stream/map_writer.h"
#include "tokenizer/tokenizer.h"

typedef struct {
    LlamaModel model;
    Tokenizer *tok;
    char *path;
    /* Every sequence is [bos] + tokens(text) with no tokens added by the
     * tokenizer itself (HyperDAS's single-BOS rule, hyperdas(7) 2.2,
     * 14.1); -1 when the model has no BOS or --no-bos was given. */
    int32_t bos_id;
    /* target_model_limit_tokens: 0 when there is no limit */
    int max_tokens;
    size_t max_text_bytes;
} TargetModel;

/* Resolves the model path: `given` when not NULL, else the default above.
 * NULL with a message saying how to get the default when none exists. */
const char *target_model_resolve(const char *given);

/* Loads weights and tokenizer.  use_bos = 0 drops the BOS. */
int target_model_load(TargetModel *t, const char *path, int use_bos);
void target_model_free(TargetModel *t);

/* Adds the header fields model (path), model_id, config_hash, n_layers,
 * hidden_size, bos_id to a header begun with header_begin. */
void target_model_pack_info(MapWriter *h, const TargetModel *t);

/* From here on target_model_encode refuses a sequence of more than
 * max_tokens tokens (BOS included), and refuses before tokenising a text
 * too long to fit in them: one of more bytes than max_tokens times the
 * longest token of the vocabulary (the tokenizer's time and memory grow
 * with the text, and a hostile record may hold megabytes).  The bound is
 * safe: a text within it is always tokenised and counted. */
void target_model_limit_tokens(TargetModel *t, int max_tokens);
/* -1 with that message when a text of len bytes is over the bound. */
int target_model_check_length(const TargetModel *t, size_t len);
/* -1 with a message naming `option` when n tokens are more than the model's
 * max_position_embeddings, or than TARGET_MAX_TOKENS whatever the config
 * says (positions beyond it were never trained, and the buffers sized by
 * them are allocated whole). */
#define TARGET_MAX_TOKENS (1 << 20)
int target_model_check_max_len(const TargetModel *t, long long n, const char *option);

/* Encodes [bos] + tokens(text); returns a malloc'd array and its length,
 * and, when starts/ends are not NULL, each token's byte range in text
 * (the BOS gets [0,0)).  -1 with a message on invalid UTF-8, or when the
 * text is over the target_model_limit_tokens limit. */
int target_model_encode(const TargetModel *t, const char *text, size_t len, int32_t **ids,
                        int *n, int32_t **starts, int32_t **ends);

#endif
