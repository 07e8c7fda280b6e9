/* Shared by the Llama engine's files (llama_forward.c, llama_backward.c,
 * llama_generate.c) only. */
#ifndef HD_LLAMA_FORWARD_INTERNAL_H
#define HD_LLAMA_FORWARD_INTERNAL_H

#include "model/llama_forward.h"

typedef struct {
    int d, H, Hkv, hd, F, L, V;
    int qd, kvd; /* H*hd, Hkv*hd */
} Dims;

static inline Dims dims_of(const LlamaConfig *c)
{
    Dims D = {c->hidden_size, c->n_heads,    c->n_kv_heads, c->head_dim, c->intermediate_size,
              c->n_layers,    c->vocab_size, 0,             0};
    D.qd = D.H * D.hd;
    D.kvd = D.Hkv * D.hd;
    return D;
}

/* The next n floats of a buffer being carved into arrays. */
static inline float *carve(float **cursor, size_t n)
{
    float *p = *cursor;
    *cursor += n;
    return p;
}

/* v and a exist, have the same shapes and the same backend. */
int llama_check_view(const LlamaView *v, const LlamaActivations *a);
/* The view's layers [from, to) are there (not released, on the CPU). */
int llama_view_check_layers(const LlamaView *v, int from, int to);

#endif
