/* Frozen decoder layers kept as the weight file stores them.
 *
 * hd-train runs the target's layers [L, N) with weights that never change;
 * in fp32 they are the largest block of its memory that no gradient needs
 * (SmolLM2 at L = 15: 212 MB; Llama-3-8B at L = 16: 14 GB).  Packed, each
 * matrix keeps its file's bytes (Q4_1 0.625 bytes a weight, BF16/F16 2)
 * and is converted back to fp32 one layer at a time when a pass reaches
 * it, into one layer's scratch, by the loader's own conversion: the same
 * fp32 values as the loaded model, so the same results bit for bit.  The
 * price is that conversion once per layer per pass (a forward and a
 * backward each step); matrices stored in 4 bytes or more (F32, F64) are
 * not worth it and stay as loaded.
 *
 * Not for the GPU path: llama_cuda_create_from reads fp32 layers. */
#ifndef HD_LLAMA_PACK_H
#define HD_LLAMA_PACK_H

#include <stddef.h>

#include "model/llama_forward.h"
#include "model/llama_model.h"

/* Packs layers [from, to) of m, loaded from `path` (the GGUF file or
 * Hugging Face directory it was loaded from): copies each matrix's stored
 * bytes, then gives the whole pages of its fp32 copy back to the system.
 * Layers that were released stay released.  Returns the fp32 bytes the
 * packed matrices no longer hold (0: nothing worth packing, m unchanged),
 * -1 with a message on error (m unchanged). */
long long llama_model_pack_layers(LlamaModel *m, const char *path, int from, int to);

/* 1 when layer l is packed (llama_view_layer then goes through
 * llama_packed_layer). */
int llama_model_layer_packed(const LlamaModel *m, int l);

/* Layer l's weights in fp32, converting the packed matrices into the
 * model's one-layer scratch unless they are already there: the views stay
 * valid until a different packed layer is asked for. */
LlamaLayerView llama_packed_layer(const LlamaModel *m, int l);

/* Bytes the packed matrices hold (0 when none is packed): for logs. */
size_t llama_model_packed_bytes(const LlamaModel *m);

/* Frees what llama_model_pack_layers allocated (llama_model_free calls it). */
void llama_model_free_packed(LlamaModel *m);

#endif
