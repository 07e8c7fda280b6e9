/* Hugging Face config.json of a Llama-family model -> LlamaConfig, and the
 * source-independent parts of a configuration: validation, a canonical
 * text form whose SHA-256 is the config_hash, and the RoPE frequencies.
 *
 * Accepted: model_type "llama" (Llama 2, 3, 3.1, 3.2, SmolLM2 ...), SiLU
 * activation, no attention/MLP biases, rope_scaling null, "default" or
 * "llama3".  Defaults follow transformers' LlamaConfig: num_key_value_heads
 * = num_attention_heads, head_dim = hidden_size / num_attention_heads,
 * rope_theta 10000, rms_norm_eps 1e-6, tie_word_embeddings false.
 * bos_token_id / eos_token_id may be an integer, a list (Llama 3.1
 * instruct: three stop ids) or null. */
#ifndef HD_HF_CONFIG_H
#define HD_HF_CONFIG_H

#include <stddef.h>

#include "model/llama_model.h"

/* Parses config.json text; `name` is used in messages and as model_id. */
int hf_config_parse(LlamaConfig *cfg, const char *text, size_t len, const char *name);
/* Reads DIR/config.json (or the file itself when path names a file);
 * model_id becomes the directory's base name. */
int hf_config_load(LlamaConfig *cfg, const char *path);

/* Checks the sizes agree with each other (heads divide, head_dim even,
 * everything positive and small enough that sizes cannot overflow). */
int llama_config_validate(const LlamaConfig *cfg, const char *name);

/* One line per field, fixed order, floats as %.9g (exact for float32):
 * equal configurations give equal text whatever file they came from. */
int llama_config_canonical(const LlamaConfig *cfg, char *buf, size_t cap);
/* Fills cfg->config_hash = sha256(canonical text) and cfg->model_id. */
void llama_config_finish(LlamaConfig *cfg, const char *model_id);

/* RoPE inverse frequencies inv_freq[j], j < head_dim/2, exactly as
 * transformers computes them: theta^(-2j/head_dim), then for rope_scaling
 * "llama3" low frequencies divided by factor, high ones kept, and the band
 * between interpolated (smooth factor).  Bit-identical to transformers
 * 4.46 (float32 arithmetic in its order of operations). */
void llama_config_rope_inv_freq(const LlamaConfig *cfg, float *inv_freq);

#endif
