/* Building a LlamaModel (llama_model.h) from the files models ship in:
 *
 *  (a) a Hugging Face directory: config.json plus model.safetensors, or
 *      shards and model.safetensors.index.json; F32, BF16 or F16 weights;
 *  (b) a GGUF file of general.architecture "llama" (F32/F16/BF16/Q4_0/
 *      Q4_1/Q8_0 tensors): configuration from the llama.* keys, RoPE row
 *      permutation of attn_q / attn_k undone, tied embeddings when
 *      output.weight is absent, llama3 rope scaling recognised from the
 *      rope_freqs tensor the converter writes for Llama 3.1/3.2.
 *
 * Both give the same thing: every weight converted to fp32 in one buffer
 * in Hugging Face orientation ([out, in] row-major).  The source files are
 * memory-mapped, so nothing is read twice and only the fp32 buffer is
 * allocated.
 *
 * Memory, and Llama-3-8B (16 GB bf16 -> 32 GB fp32): the fp32 copy is the
 * simple path and is right for SmolLM2 (0.54 GB) and the tiny test models.
 * hd-train keeps the frozen layers it runs as the file stores them and
 * converts one decoder layer at a time into a one-layer fp32 scratch
 * (llama_pack.h): only where views point changes, not the forward pass's
 * interface.  The other tools still hold every layer they run in fp32. */
#ifndef HD_LLAMA_LOAD_H
#define HD_LLAMA_LOAD_H

#include "formats/gguf.h"
#include "model/llama_model.h"

/* Parameter buffer layout, in this order: tok_embed [V,d]; per layer
 * attn_norm [d], wq [H*hd,d], wk [Hkv*hd,d], wv [Hkv*hd,d], wo [d,H*hd],
 * ffn_norm [d], w_gate [ffn,d], w_up [ffn,d], w_down [d,ffn]; final_norm
 * [d]; lm_head [V,d] only when untied.  Number of floats in that layout. */
size_t llama_param_count(const LlamaConfig *cfg);

/* Allocates a zeroed parameter buffer for cfg and points the views into
 * it; -1 if the configuration is invalid. */
int llama_model_alloc(LlamaModel *m, const LlamaConfig *cfg);
void llama_model_free(LlamaModel *m);

/* Gives the memory of layers [from, to)'s weights back to the operating
 * system, for a tool that will never run those layers again: hd-train, whose
 * hypernetwork has copied the layers it starts from and which afterwards
 * runs only layers [L, N) (half of SmolLM2's layers, 14 of Llama-3-8B's 32 GB
 * in fp32).  The layers' views become NULL; running one is then an error
 * (llama_model_check_layers), never a silent use of zeros. */
void llama_model_release_layers(LlamaModel *m, int from, int to);

/* Gives the whole pages inside [lo, hi) of the parameter buffer back to the
 * system (what the two release functions and llama_pack.c use); the
 * partial pages at either end stay. */
void llama_release_pages(const void *lo, const void *hi);

/* The same for the token embedding when the model has a separate LM head
 * (untied, as Llama-3-8B: 2 GB in fp32); a tied embedding is the LM head and
 * stays.  Returns 1 when released.  Running layer 0 is then an error. */
int llama_model_release_embedding(LlamaModel *m);

/* 0 when layers [from, to) all have their weights, else -1 with a message
 * naming the first released one; llama_model_check_embedding likewise for
 * the token embedding (a forward from token ids needs it). */
int llama_model_check_embedding(const LlamaModel *m);
int llama_model_check_layers(const LlamaModel *m, int from, int to);

int llama_load_hf(LlamaModel *m, const char *dir);
int llama_load_gguf(LlamaModel *m, const char *path);
/* A directory is a Hugging Face checkpoint, a file a GGUF. */
int llama_load(LlamaModel *m, const char *path);

/* The configuration alone, from an open GGUF (model_id from its path). */
int llama_config_from_gguf(LlamaConfig *cfg, const GgufFile *g);

/* GGUF row index that holds Hugging Face row `hf_row` of a Q or K
 * projection (within each head, GGUF row 2i+j is HF row j*(hd/2)+i). */
size_t gguf_rope_row(size_t hf_row, int head_dim);

#endif
