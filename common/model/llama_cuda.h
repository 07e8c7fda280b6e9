/* The frozen target on the GPU: the weight matrices (and the LM head) in
 * bf16 on the device and everything else in fp32, as PyTorch runs a bf16
 * model: each projection rounds its input to bf16 and accumulates in fp32
 * (matmul_forward_bf16w_cuda).  The embedding table and the norms stay
 * fp32.  The forward and backward are llama_forward.c's own, through the
 * CUDA row of the op table (compute.h), on llama_cuda_view().
 *
 * llama_cuda_forward serves cache-acts --device cuda.
 *
 * The results land in ordinary host LlamaActivations: every residual block
 * (llama_hidden_state 0..N) and the final norm, as the CPU forward leaves
 * them, so that the readers of hidden states and llama_forward_logits
 * (on the host, for the few answer rows) work unchanged.  The layers'
 * internals stay on the device and are overwritten layer by layer: there
 * is no backward after this forward.
 *
 * Without CUDA in the build (make CUDA=0, no nvcc) every function fails
 * with a message saying so. */
#ifndef HD_LLAMA_CUDA_H
#define HD_LLAMA_CUDA_H

#include <stddef.h>

#include "model/llama_forward.h"
#include "model/llama_model.h"

typedef struct LlamaCuda LlamaCuda;

/* Picks the device ($HD_CUDA_DEVICE, else 0) and uploads m's weights:
 * matrices rounded to bf16 (round to nearest even), the embedding and the
 * norms in fp32.  NULL with a message (no GPU, out of device memory, a
 * model whose layers were released). */
LlamaCuda *llama_cuda_create(const LlamaModel *m);
/* The same for a run that starts at first_layer (hd-train, hd-score: the
 * target's layers [L, N)): only layers [first_layer, N), the final norm
 * and the LM head go up, and the embedding only when first_layer is 0
 * (Llama-3-8B at L = 15: 8.6 GB less). */
LlamaCuda *llama_cuda_create_from(const LlamaModel *m, int first_layer);
/* The device bytes of llama_cuda_create_from's weights (any build). */
size_t llama_cuda_bytes(const LlamaConfig *c, int first_layer);
void llama_cuda_free(LlamaCuda *g);
/* The model as the llama_view_* functions and hypernet_forward_view take
 * it; with activations from llama_acts_create_on(compute_cuda(), ...).
 * Valid while g lives. */
LlamaView llama_cuda_view(const LlamaCuda *g);
/* "NVIDIA H100 80GB HBM3 (sm_90, 132 SMs)", for provenance. */
const char *llama_cuda_device(const LlamaCuda *g);
/* What ran a forward, for a header's "device": "cpu" when g is NULL, else
 * "cuda: " and the device's name. */
void llama_cuda_describe(const LlamaCuda *g, char *out, size_t size);

/* llama_forward(m, a, ids, mask, NULL, b, T) on the GPU: positions from
 * the mask (HyperDAS's rule), every layer, the final norm; a's residual
 * blocks, final_normed, final_rstd, mask, pos and RoPE tables hold the
 * results.  -1 with a message on bad input (as the CPU forward checks it)
 * or a CUDA failure. */
int llama_cuda_forward(LlamaCuda *g, LlamaActivations *a, const int *ids, const int *mask, int b,
                       int T);

#endif
