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

#include "llama_model.h"
#include "tokenizer.h"

typedef struct {
    LlamaModel model;
    Tokenizer *tok;
    char *path;
    /* Every sequence is [bos] + tokens(text) with no tokens added by the
     * tokenizer itself (HyperDAS's single-BOS rule, spec hyperdas.md 2.2
     * (a)); -1 when the model has no BOS or --no-bos was given. */
    int32_t bos_id;
} TargetModel;

/* Resolves the model path: `given` when not NULL, else the default above.
 * NULL with a message saying how to get the default when none exists. */
const char *target_model_resolve(const char *given);

/* Loads weights and tokenizer.  use_bos = 0 drops the BOS. */
int target_model_load(TargetModel *t, const char *path, int use_bos);
void target_model_free(TargetModel *t);

/* Number of key/value pairs target_model_pack_info writes. */
#define TARGET_MODEL_INFO_PAIRS 6
/* Header fields: model (path), model_id, config_hash, n_layers,
 * hidden_size, bos_id. */
void target_model_pack_info(msgpack_packer *pk, const TargetModel *t);

/* Encodes [bos] + tokens(text); returns a malloc'd array and its length,
 * and, when starts/ends are not NULL, each token's byte range in text
 * (the BOS gets [0,0)).  -1 with a message on invalid UTF-8. */
int target_model_encode(const TargetModel *t, const char *text, size_t len, int32_t **ids,
                        int *n, int32_t **starts, int32_t **ends);

#endif
