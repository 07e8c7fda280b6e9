/* The target on the GPU: its weights uploaded in bf16, and the forward of
 * llama_forward.c run through the CUDA row of the op table (compute.h).
 * See llama_cuda.h. */
#include "model/llama_cuda.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/error.h"
#include "model/llama_load.h"

/* The two weight buffers of llama_cuda_create_from, in elements: bf16
 * matrices of layers [first_layer, N) and the LM head; fp32 embedding (a
 * run from layer 0 only), the uploaded layers' two norms, the final norm. */
static size_t layer_matrix_count(const LlamaConfig *c)
{
    size_t d = (size_t)c->hidden_size, qd = (size_t)c->n_heads * c->head_dim;
    size_t kvd = (size_t)c->n_kv_heads * c->head_dim, F = (size_t)c->intermediate_size;
    return qd * d + 2 * kvd * d + d * qd + 3 * F * d;
}

static size_t matrix_elements(const LlamaConfig *c, int first_layer)
{
    return (size_t)(c->n_layers - first_layer) * layer_matrix_count(c) +
           (size_t)c->vocab_size * c->hidden_size;
}

static size_t vector_elements(const LlamaConfig *c, int first_layer)
{
    const size_t embed = first_layer == 0 ? (size_t)c->vocab_size * c->hidden_size : 0;
    return embed + (2 * (size_t)(c->n_layers - first_layer) + 1) * c->hidden_size;
}

size_t llama_cuda_bytes(const LlamaConfig *c, int first_layer)
{
    return matrix_elements(c, first_layer) * sizeof(uint16_t) +
           vector_elements(c, first_layer) * sizeof(float);
}

void llama_cuda_describe(const LlamaCuda *g, char *out, size_t size)
{
    snprintf(out, size, "%s%s", g ? "cuda: " : "cpu", llama_cuda_device(g));
}

#ifdef HD_CUDA

#include "compute.h"
#include "cuda/cuda_ops.h"
#include "float16.h"

struct LlamaCuda {
    LlamaConfig cfg;
    char device[256];
    const Compute *K;
    /* weights: one bf16 buffer for the matrices and the LM head, one fp32
     * buffer for the embedding and the norms (views below point into them) */
    uint16_t *matrices;
    float *vectors;
    uint16_t *lm_head;
    float *tok_embed, *final_norm;
    LlamaLayerView *layers;
    /* device activations of the last forward, grown when a batch needs more */
    LlamaActivations *acts;
};

/* n fp32 host values as bf16 at dst (device), through a host buffer. */
static int upload_bf16(uint16_t *dst, const float *src, size_t n, uint16_t *host)
{
    for (size_t i = 0; i < n; i++) host[i] = f32_to_bf16(src[i]);
    return hd_cuda_upload(dst, host, n * sizeof *host);
}

LlamaCuda *llama_cuda_create(const LlamaModel *m)
{
    return llama_cuda_create_from(m, 0);
}

LlamaCuda *llama_cuda_create_from(const LlamaModel *m, int first_layer)
{
    if (!m || !m->params) {
        hd_fail("llama cuda: no model");
        return NULL;
    }
    const LlamaConfig *c = &m->cfg;
    if (first_layer < 0 || first_layer > c->n_layers) {
        hd_fail("llama cuda: first layer %d outside [0, %d]", first_layer, c->n_layers);
        return NULL;
    }
    const int with_embedding = first_layer == 0;
    if (llama_model_check_layers(m, first_layer, c->n_layers) ||
        (with_embedding && llama_model_check_embedding(m)))
        return NULL;
    const Compute *K = compute_cuda();
    if (!K) return NULL;
    LlamaCuda *g = hd_calloc(1, sizeof *g);
    g->cfg = *c;
    g->K = K;
    snprintf(g->device, sizeof g->device, "%s", hd_cuda_device_name());
    const size_t L = (size_t)c->n_layers, d = (size_t)c->hidden_size, V = (size_t)c->vocab_size;
    const size_t qd = (size_t)c->n_heads * c->head_dim, kvd = (size_t)c->n_kv_heads * c->head_dim;
    const size_t F = (size_t)c->intermediate_size, n_embed = with_embedding ? V * d : 0;
    g->matrices = hd_cuda_malloc(matrix_elements(c, first_layer) * sizeof(uint16_t));
    g->vectors = hd_cuda_malloc(vector_elements(c, first_layer) * sizeof(float));
    g->layers = hd_calloc(L, sizeof *g->layers);
    /* the largest matrix, converted on the host one at a time */
    size_t biggest = F * d > qd * d ? F * d : qd * d;
    if (V * d > biggest) biggest = V * d;
    uint16_t *host = malloc(biggest * sizeof *host);
    if (!g->matrices || !g->vectors || !host) {
        if (!host) hd_fail("llama cuda: out of host memory");
        free(host);
        llama_cuda_free(g);
        return NULL;
    }
    int rc = 0;
    g->tok_embed = with_embedding ? g->vectors : NULL;
    if (with_embedding) rc |= hd_cuda_upload(g->tok_embed, m->tok_embed, V * d * sizeof(float));
    float *vec = g->vectors + n_embed;
    uint16_t *mat = g->matrices;
    for (size_t l = (size_t)first_layer; l < L && rc == 0; l++) {
        /* through the CPU view, so that a packed layer is converted first */
        const LlamaView cpu = llama_view_cpu(m);
        const LlamaLayerView wv = llama_view_layer(&cpu, (int)l), *w = &wv;
        LlamaLayerView *o = &g->layers[l];
        float *attn_norm = vec, *ffn_norm = vec + d;
        vec += 2 * d;
        o->attn_norm = attn_norm;
        o->ffn_norm = ffn_norm;
        rc |= hd_cuda_upload(attn_norm, w->attn_norm, d * sizeof(float));
        rc |= hd_cuda_upload(ffn_norm, w->ffn_norm, d * sizeof(float));
        struct { const void **view; const float *src; size_t n; } mats[] = {
            {&o->wq, w->wq, qd * d},         {&o->wk, w->wk, kvd * d},
            {&o->wv, w->wv, kvd * d},        {&o->wo, w->wo, d * qd},
            {&o->w_gate, w->w_gate, F * d},  {&o->w_up, w->w_up, F * d},
            {&o->w_down, w->w_down, d * F},
        };
        for (size_t i = 0; i < sizeof mats / sizeof mats[0] && rc == 0; i++) {
            *mats[i].view = mat;
            rc |= upload_bf16(mat, mats[i].src, mats[i].n, host);
            mat += mats[i].n;
        }
    }
    g->final_norm = vec;
    g->lm_head = mat;
    if (rc == 0) rc |= hd_cuda_upload(g->final_norm, m->final_norm, d * sizeof(float));
    if (rc == 0) rc |= upload_bf16(g->lm_head, m->lm_head, V * d, host);
    free(host);
    if (rc != 0) {
        llama_cuda_free(g);
        return NULL;
    }
    return g;
}

void llama_cuda_free(LlamaCuda *g)
{
    if (!g) return;
    llama_acts_free(g->acts);
    hd_cuda_free(g->matrices);
    hd_cuda_free(g->vectors);
    free(g->layers);
    free(g);
}

const char *llama_cuda_device(const LlamaCuda *g)
{
    return g ? g->device : "";
}

LlamaView llama_cuda_view(const LlamaCuda *g)
{
    LlamaView v = {0};
    v.K = g->K;
    v.cfg = g->cfg;
    v.tok_embed = g->tok_embed;
    v.final_norm = g->final_norm;
    v.lm_head = g->lm_head;
    v.layers = g->layers;
    return v;
}

int llama_cuda_forward(LlamaCuda *g, LlamaActivations *a, const int *ids, const int *mask, int b,
                       int T)
{
    if (!g) return hd_fail("llama cuda forward: no model");
    const LlamaConfig *c = &g->cfg;
    /* the host activations that receive the results; the ids, the mask and
     * the embedding's presence are checked by the forward itself */
    if (llama_check_batch(c, a, mask, b, T)) return -1;
    const int N = b * T, L = c->n_layers;
    if (!g->acts || b > g->acts->max_b || T > g->acts->max_T) {
        int cb = g->acts && g->acts->max_b > b ? g->acts->max_b : b;
        int cT = g->acts && g->acts->max_T > T ? g->acts->max_T : T;
        llama_acts_free(g->acts);
        /* keep_from = L: one transient set of layer internals, no backward */
        g->acts = llama_acts_create_on(g->K, c, cb, cT, L);
        if (!g->acts) return -1;
    }
    LlamaView v = llama_cuda_view(g);
    if (llama_view_forward_range(&v, g->acts, ids, NULL, mask, NULL, b, T, 0, L)) return -1;

    /* host side, as llama_forward_range leaves it: every residual block and
     * the final norm; the layers' internals stay behind */
    memset(a->layer_done, 0, (size_t)L);
    a->final_done = 0;
    a->b = b;
    a->T = T;
    const size_t half = (size_t)c->head_dim / 2;
    memcpy(a->mask, g->acts->mask, (size_t)N * sizeof(int));
    memcpy(a->pos, g->acts->pos, (size_t)N * sizeof(int));
    memcpy(a->rope_cos, g->acts->cos_host, (size_t)N * half * sizeof(float));
    memcpy(a->rope_sin, g->acts->sin_host, (size_t)N * half * sizeof(float));
    const size_t block = (size_t)N * c->hidden_size * sizeof(float);
    for (int l = 0; l <= L; l++)
        g->K->download(llama_residual(a, l), llama_residual(g->acts, l), block);
    g->K->download(a->final_normed, g->acts->final_normed, block);
    g->K->download(a->final_rstd, g->acts->final_rstd, (size_t)N * sizeof(float));
    if (g->K->status()) return hd_fail_prefix("llama cuda forward: ");
    a->final_done = 1;
    return 0;
}

#else /* built without CUDA */

static int no_cuda(void)
{
    return hd_fail("this build has no CUDA (nvcc was not found, or make CUDA=0): "
                   "rebuild with the CUDA toolkit installed for --device cuda");
}

LlamaCuda *llama_cuda_create(const LlamaModel *m)
{
    (void)m;
    no_cuda();
    return NULL;
}

void llama_cuda_free(LlamaCuda *g) { (void)g; }

const char *llama_cuda_device(const LlamaCuda *g)
{
    (void)g;
    return "";
}

int llama_cuda_forward(LlamaCuda *g, LlamaActivations *a, const int *ids, const int *mask, int b,
                       int T)
{
    (void)g, (void)a, (void)ids, (void)mask, (void)b, (void)T;
    return no_cuda();
}

LlamaView llama_cuda_view(const LlamaCuda *g)
{
    (void)g;
    LlamaView v = {0};
    return v;
}

LlamaCuda *llama_cuda_create_from(const LlamaModel *m, int first_layer)
{
    (void)m, (void)first_layer;
    no_cuda();
    return NULL;
}

#endif
