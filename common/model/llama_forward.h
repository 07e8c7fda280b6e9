/* The forward pass of a Llama model over a left-padded batch, its
 * activations, and the activation backward of a range of layers.
 *
 * Everything is fp32 on the CPU: every projection is one cblas_sgemm over
 * all b*T rows (kernels/cpu/matmul), the rest are the OpenMP kernels of
 * kernels/cpu.  This file only orchestrates; it knows the model's shapes,
 * the kernels know none.
 *
 * Batch layout.  Token ids, the attention mask and position ids are [b, T]
 * row-major; activations are [b, T, width], i.e. N = b*T rows.  Prompts of
 * different lengths share a batch by LEFT padding: mask 1 = real token,
 * 0 = pad.  Attention is causal and never looks at a pad key.  Position ids
 * default to cumsum(mask)*mask - 1 per row (the HyperDAS rule: first real
 * token 0, pads -1, used as is by RoPE); a caller may pass its own (e.g.
 * 0..T-1 including pads, as HyperDAS's third source run does).  Values at
 * pad positions are finite but meaningless (a pad's attention output is 0);
 * compare and consume real positions only.
 *
 * Residual stream.  llama_residual(a, l) is the stream entering layer l:
 * l = 0 the embeddings, l = n_layers the raw output of the last layer.  The
 * Hugging Face `hidden_states` tuple is llama_hidden_state(a, l): the same
 * for l < n_layers, and the FINAL-NORM output for l = n_layers.
 *
 * Intervening at layer L.  Run layers [0, L) with from = 0, edit (or
 * replace) llama_residual(a, L), then run [L, n_layers) with from = L; or
 * pass your own residual as resid_in.  Layers below L are never rerun.
 *
 * What is kept for the backward.  Layers l >= keep_from (chosen at creation)
 * keep their internals (LlamaLayerActs: 2*ffn + 2*H*hd + d + 2*Hkv*hd + H*T
 * + 2 floats per token; SmolLM2 at T = 48: 5.6k floats, 22 KiB per token and
 * layer); layers below share one transient set, and a backward through such
 * a layer first recomputes it from llama_residual(a, l) (one extra layer
 * forward).  The RMSNorm outputs and silu(gate)*up are never stored: the
 * activation backward does not need them, and with weight gradients they
 * are recomputed (elementwise, cheap).  The residual stream entering every
 * layer is always kept (d floats per token and layer). */
#ifndef HD_LLAMA_FORWARD_H
#define HD_LLAMA_FORWARD_H

#include "model/llama_model.h"

typedef struct Compute Compute; /* compute.h */

/* One decoder layer's internals for N = b*T rows. */
typedef struct {
    float *rstd1;     /* [N] of the attention RMSNorm */
    float *q;         /* [N, H*hd] after RoPE */
    float *k;         /* [N, Hkv*hd] after RoPE */
    float *v;         /* [N, Hkv*hd] */
    float *att;       /* [b, H, T, Tk] softmax probabilities (Tk = T without a cache) */
    float *att_out;   /* [N, H*hd] attention output, input of o_proj */
    float *resid_mid; /* [N, d] residual after the attention block */
    float *rstd2;     /* [N] of the MLP RMSNorm */
    float *gate;      /* [N, ffn] gate_proj output */
    float *up;        /* [N, ffn] up_proj output */
} LlamaLayerActs;

/* Transient buffers shared by all layers of one forward. */
typedef struct {
    float *normed;    /* [N, d] RMSNorm output feeding q/k/v, then gate/up */
    float *act;       /* [N, ffn] silu(gate) * up, input of down_proj */
    float *branch;    /* [N, d] o_proj / down_proj output before the residual add */
} LlamaLayerScratch;

/* Where a layer's attention finds its keys and values.  Without a cache
 * (k == NULL) they are the layer's own k/v rows.  With a cache, the layer
 * appends its Tq new rows at time `start` of k/v [b, cap, Hkv*hd] and
 * attends over times [0, start + Tq); mask is [b, cap]. */
typedef struct {
    float *k, *v;
    const int *mask;
    int start, cap;
} LlamaKV;

/* A decoder layer's weights as a backend (compute.h) keeps them: the norms
 * fp32; the matrices whatever that backend's frozen_matmul reads (fp32 on
 * the CPU, bf16 bits on the GPU). */
typedef struct {
    const float *attn_norm, *ffn_norm;
    const void *wq, *wk, *wv, *wo, *w_gate, *w_up, *w_down;
} LlamaLayerView;

/* The frozen model as one backend holds it.  On the CPU it is the
 * LlamaModel itself (llama_view_cpu); the GPU's comes from llama_cuda.h.
 * Every function below that takes a LlamaModel runs on the CPU through
 * llama_view_cpu; the llama_view_* ones run wherever the view lives. */
typedef struct {
    const Compute *K;
    LlamaConfig cfg;
    const float *tok_embed;        /* [V, d] fp32 */
    const float *final_norm;       /* [d] */
    const void *lm_head;           /* [V, d] as frozen_matmul reads it */
    const LlamaModel *host;        /* CPU: layer l is host->layers[l] */
    const LlamaLayerView *layers;  /* otherwise: [n_layers] */
} LlamaView;

LlamaView llama_view_cpu(const LlamaModel *m);

typedef struct {
    LlamaConfig cfg;
    const Compute *K;       /* where the activation buffers live */
    int max_b, max_T, keep_from;
    int b, T;               /* shape of the current batch */
    int *mask;              /* [b*T] 1 = real token (host) */
    int *pos;               /* [b*T] position ids (host) */
    float *inv_freq;        /* [hd/2] (host) */
    float *rope_cos, *rope_sin; /* [b*T, hd/2] */
    /* K's copies of host values (on the CPU the same memory) */
    int *mask_k, *ids_k;    /* [b*T] */
    float *cos_host, *sin_host; /* [b*T, hd/2] computed here, uploaded to rope_cos/sin */
    float *residual;        /* (n_layers+1) blocks of [max_b*max_T, d] */
    float *final_normed;    /* [b*T, d] final RMSNorm output = HF hs[n_layers] */
    float *final_rstd;      /* [b*T] */
    LlamaLayerActs *layers; /* [n_layers]; those below keep_from alias `transient` */
    LlamaLayerActs transient;
    LlamaLayerScratch scratch;
    unsigned char *layer_done; /* [n_layers] internals valid for the current batch */
    int final_done;
    /* logits of the last llama_forward_logits call */
    float *logits;          /* [n_logit_rows, vocab] */
    float *logit_in;        /* [n_logit_rows, d] gathered final-norm rows */
    int *logit_rows;        /* flat row indices r*T + t (host) */
    int n_logit_rows, logit_cap;
    /* backward scratch, allocated on first use */
    float *grad_mem;
    float *mem;             /* the one activation buffer (K's memory) the arrays live in */
} LlamaActivations;

/* Room for batches up to max_b x max_T; layers >= keep_from keep their
 * internals for a backward (keep_from = n_layers: forward only).  NULL with a
 * message on bad sizes. */
LlamaActivations *llama_acts_create(const LlamaConfig *cfg, int max_b, int max_T, int keep_from);
/* The same in K's memory: every float array (residual, layers, final norm,
 * logits, RoPE tables, the backward's scratch) lives there; mask, pos,
 * inv_freq, layer_done and logit_rows stay on the host.  A forward on a
 * device leaves its results there: llama_residual() and the others are
 * then device pointers. */
LlamaActivations *llama_acts_create_on(const Compute *K, const LlamaConfig *cfg, int max_b,
                                       int max_T, int keep_from);
void llama_acts_free(LlamaActivations *a);
/* What llama_acts_create_on allocates in its backend's memory, plus the
 * logits of n_logit_rows rows and the backward's scratch (both allocated
 * on first use): for planning a device's memory. */
size_t llama_acts_bytes(const LlamaConfig *cfg, int max_b, int max_T, int keep_from,
                        int n_logit_rows);
size_t llama_backward_scratch_bytes(const LlamaConfig *cfg, int max_b, int max_T);

/* Runs layers [from, to).
 *   from == 0: ids [b*T] are embedded into llama_residual(a, 0).
 *   from > 0:  resid_in [b*T, d] is copied into llama_residual(a, from);
 *              NULL uses what is there (the output of an earlier call,
 *              possibly edited in place).
 * mask [b*T] of 0/1 (NULL = all real); pos [b*T] (NULL = cumsum rule).
 * When to == n_layers the final RMSNorm is applied too.
 * -1 with a message on bad ids, mask values, shapes or a non-finite
 * residual. */
int llama_forward_range(const LlamaModel *m, LlamaActivations *a, const int *ids,
                        const float *resid_in, const int *mask, const int *pos, int b, int T,
                        int from, int to);

/* The same on any backend: v->K must be a->K, ids/resid_in/mask/pos are
 * host memory except resid_in on a device (v->K's memory).  On a device
 * the residual entering `from` is not checked for non-finite values. */
int llama_view_forward_range(const LlamaView *v, LlamaActivations *a, const int *ids,
                             const float *resid_in, const int *mask, const int *pos, int b,
                             int T, int from, int to);

/* Whole model: llama_forward_range(m, a, ids, NULL, mask, pos, b, T, 0, n_layers). */
int llama_forward(const LlamaModel *m, LlamaActivations *a, const int *ids, const int *mask,
                  const int *pos, int b, int T);

/* The LM head at the chosen flat rows (r*T + t) of the final-norm output, or
 * at all b*T rows when rows is NULL: a->logits [n_rows, vocab].  Needs a
 * forward that reached n_layers.  The vocabulary projection dominates the
 * cost of small models, so ask only for the rows you need. */
int llama_forward_logits(const LlamaModel *m, LlamaActivations *a, const int *rows, int n_rows);
int llama_view_forward_logits(const LlamaView *v, LlamaActivations *a, const int *rows,
                              int n_rows);

/* [b*T, d] views; l in [0, n_layers], NULL when out of range. */
/* The checks of a batch before a forward (llama_forward_range, and
 * llama_cuda_forward on the GPU): activations sized for cfg, b x T within
 * their capacity, mask values 0 or 1 (mask may be NULL); token ids inside
 * the vocabulary of V.  -1 with a message naming the row and token. */
int llama_check_batch(const LlamaConfig *cfg, const LlamaActivations *a, const int *mask, int b,
                      int T);
int llama_check_ids(const int *ids, int b, int T, int V);

/* HyperDAS's rule for positions when none are given: (number of real tokens
 * up to here) - 1 on real tokens, -1 on pads. */
void llama_positions_from_mask(int *pos, const int *mask, int b, int T);

float *llama_residual(const LlamaActivations *a, int l);
float *llama_hidden_state(const LlamaActivations *a, int l);

/* One decoder layer: x_out = x_in + attn(norm(x_in)), then + mlp(norm(.)).
 * rope_cos/sin are [b*Tq, hd/2].  kv NULL: plain causal self-attention over
 * the Tq rows with key mask `mask` [b*Tq].  Exposed for llama_generate. */
void llama_layer_forward(const LlamaModel *m, int layer, float *x_out, const float *x_in,
                         LlamaLayerActs *s, const LlamaLayerScratch *scratch,
                         const float *rope_cos, const float *rope_sin, const int *mask,
                         const LlamaKV *kv, int b, int Tq);
/* The same with a layer's weights as backend K keeps them; every pointer in
 * K's memory.  On the GPU, check K->status() afterwards. */
void llama_layer_forward_on(const Compute *K, const LlamaConfig *c, const LlamaLayerView *w,
                            float *x_out, const float *x_in, LlamaLayerActs *s,
                            const LlamaLayerScratch *scratch, const float *rope_cos,
                            const float *rope_sin, const int *mask, const LlamaKV *kv, int b,
                            int Tq);
/* Layer l of a view. */
LlamaLayerView llama_view_layer(const LlamaView *v, int l);

/* ---- backward (activations; weights frozen unless grads are given) ----
 * All gradient buffers are [b*T, width] and ADDED to (zero them first). */

/* dnormed += dlogits @ lm_head, scattered to the rows of the last
 * llama_forward_logits call; dlogits is [n_logit_rows, vocab]. */
int llama_backward_logits(const LlamaModel *m, LlamaActivations *a, const float *dlogits,
                          float *dnormed);

/* dresid (w.r.t. llama_residual(a, n_layers)) += final RMSNorm backward. */
int llama_backward_final_norm(const LlamaModel *m, LlamaActivations *a, const float *dnormed,
                              float *dresid);

/* In place: dresid holds dL/d llama_residual(a, to) on entry and
 * dL/d llama_residual(a, from) on return.  Layers [from, to) must have been
 * run forward on the current batch.  grads: NULL for frozen weights, or an
 * array of n_layers LlamaLayerWeights whose buffers receive += weight
 * gradients (a NULL member skips that tensor). */
int llama_backward_range(const LlamaModel *m, LlamaActivations *a, float *dresid, int from,
                         int to, const LlamaLayerWeights *grads);

/* The three on any backend (buffers in v->K's memory).  Weight gradients
 * need fp32 weights: grads must be NULL on a device. */
int llama_view_backward_logits(const LlamaView *v, LlamaActivations *a, const float *dlogits,
                               float *dnormed);
int llama_view_backward_final_norm(const LlamaView *v, LlamaActivations *a,
                                   const float *dnormed, float *dresid);
int llama_view_backward_range(const LlamaView *v, LlamaActivations *a, float *dresid, int from,
                              int to, const LlamaLayerWeights *grads);

#endif
