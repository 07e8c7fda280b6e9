/* The frozen target as the GPU holds it (common/model/llama_cuda.c): every
 * layer's weight matrices rounded to bf16 in place, and the LM head too
 * when asked (an untied one; a tied head is the fp32 embedding on the
 * CPU).  Tests round the CPU's copy first, so that CPU and GPU multiply
 * the same weights and differ only by the GPU's rounding of activations. */
#ifndef HD_TESTS_BF16_WEIGHTS_H
#define HD_TESTS_BF16_WEIGHTS_H

#include <stddef.h>

#include "float16.h"
#include "model/llama_model.h"

static inline void round_to_bf16(float *p, size_t n)
{
    for (size_t j = 0; j < n; j++) p[j] = bf16_to_f32(f32_to_bf16(p[j]));
}

static inline void llama_round_matrices_to_bf16(LlamaModel *m, int with_head)
{
    const LlamaConfig *c = &m->cfg;
    size_t d = c->hidden_size, q = (size_t)c->n_heads * c->head_dim;
    size_t kv = (size_t)c->n_kv_heads * c->head_dim, F = c->intermediate_size;
    for (int l = 0; l < c->n_layers; l++) {
        LlamaLayerWeights *w = &m->layers[l];
        round_to_bf16(w->wq, q * d);
        round_to_bf16(w->wk, kv * d);
        round_to_bf16(w->wv, kv * d);
        round_to_bf16(w->wo, d * q);
        round_to_bf16(w->w_gate, F * d);
        round_to_bf16(w->w_up, F * d);
        round_to_bf16(w->w_down, d * F);
    }
    if (with_head && m->lm_head != m->tok_embed) round_to_bf16(m->lm_head, (size_t)c->vocab_size * d);
}

#endif
