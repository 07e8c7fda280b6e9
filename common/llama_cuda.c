/* The target's forward on the GPU: llama_layer_forward (llama_forward.c)
 * op for op with the kernels/cuda twins.  See llama_cuda.h. */
#include "llama_cuda.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "llama_load.h"

void llama_cuda_describe(const LlamaCuda *g, char *out, size_t size)
{
    snprintf(out, size, "%s%s", g ? "cuda: " : "cpu", llama_cuda_device(g));
}

#ifdef HD_CUDA

#include "cpu/rope.h"
#include "cuda/cuda_ops.h"
#include "float16.h"

typedef struct {
    float *attn_norm, *ffn_norm;                           /* [d] fp32 */
    uint16_t *wq, *wk, *wv, *wo, *w_gate, *w_up, *w_down;  /* bf16 bits */
} LayerOnDevice;

struct LlamaCuda {
    LlamaConfig cfg;
    char device[256];
    /* weights: one bf16 buffer for the matrices, one fp32 buffer for the
     * embedding and the norms (views below point into them) */
    uint16_t *matrices;
    float *vectors;
    float *tok_embed, *final_norm;
    LayerOnDevice *layers;
    /* activations for batches of up to cap_N tokens, cap_T per row */
    int cap_N, cap_b, cap_T;
    float *act_mem;
    float *resid;                    /* [(L+1), N, d]: every block, downloaded */
    float *normed, *rstd, *q, *k, *v, *att, *att_out, *mid, *gate, *up, *act, *branch;
    float *final_normed, *final_rstd, *cos, *sin;
    int *ids, *mask;
};

static size_t layer_matrix_count(const LlamaConfig *c)
{
    size_t d = (size_t)c->hidden_size, qd = (size_t)c->n_heads * c->head_dim;
    size_t kvd = (size_t)c->n_kv_heads * c->head_dim, F = (size_t)c->intermediate_size;
    return qd * d + 2 * kvd * d + d * qd + 3 * F * d;
}

/* n fp32 host values as bf16 at dst (device), through a host buffer. */
static int upload_bf16(uint16_t *dst, const float *src, size_t n, uint16_t *host)
{
    for (size_t i = 0; i < n; i++) host[i] = f32_to_bf16(src[i]);
    return hd_cuda_upload(dst, host, n * sizeof *host);
}

LlamaCuda *llama_cuda_create(const LlamaModel *m)
{
    if (!m || !m->params) {
        hd_fail("llama cuda: no model");
        return NULL;
    }
    const LlamaConfig *c = &m->cfg;
    if (llama_model_check_layers(m, 0, c->n_layers)) return NULL;
    if (!hd_cuda_available() || hd_cuda_init(-1)) return NULL;
    LlamaCuda *g = hd_calloc(1, sizeof *g);
    g->cfg = *c;
    snprintf(g->device, sizeof g->device, "%s", hd_cuda_device_name());
    const size_t L = (size_t)c->n_layers, d = (size_t)c->hidden_size, V = (size_t)c->vocab_size;
    const size_t qd = (size_t)c->n_heads * c->head_dim, kvd = (size_t)c->n_kv_heads * c->head_dim;
    const size_t F = (size_t)c->intermediate_size, per_layer = layer_matrix_count(c);
    g->matrices = hd_cuda_malloc(L * per_layer * sizeof(uint16_t));
    g->vectors = hd_cuda_malloc((V * d + (2 * L + 1) * d) * sizeof(float));
    g->layers = hd_calloc(L, sizeof *g->layers);
    /* the largest matrix, converted on the host one at a time */
    size_t biggest = F * d > qd * d ? F * d : qd * d;
    uint16_t *host = malloc(biggest * sizeof *host);
    if (!g->matrices || !g->vectors || !host) {
        if (!host) hd_fail("llama cuda: out of host memory");
        free(host);
        llama_cuda_free(g);
        return NULL;
    }
    int rc = 0;
    g->tok_embed = g->vectors;
    rc |= hd_cuda_upload(g->tok_embed, m->tok_embed, V * d * sizeof(float));
    float *vec = g->vectors + V * d;
    uint16_t *mat = g->matrices;
    for (size_t l = 0; l < L && rc == 0; l++) {
        const LlamaLayerWeights *w = &m->layers[l];
        LayerOnDevice *o = &g->layers[l];
        o->attn_norm = vec, vec += d;
        o->ffn_norm = vec, vec += d;
        rc |= hd_cuda_upload(o->attn_norm, w->attn_norm, d * sizeof(float));
        rc |= hd_cuda_upload(o->ffn_norm, w->ffn_norm, d * sizeof(float));
        struct { uint16_t **view; const float *src; size_t n; } mats[] = {
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
    if (rc == 0) rc |= hd_cuda_upload(g->final_norm, m->final_norm, d * sizeof(float));
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
    hd_cuda_free(g->matrices);
    hd_cuda_free(g->vectors);
    hd_cuda_free(g->act_mem);
    hd_cuda_free(g->ids);
    hd_cuda_free(g->mask);
    free(g->layers);
    free(g);
}

const char *llama_cuda_device(const LlamaCuda *g)
{
    return g ? g->device : "";
}

/* Device activations for b x T tokens, grown when a batch needs more. */
static int ensure_activations(LlamaCuda *g, int b, int T)
{
    const int N = b * T;
    if (g->act_mem && N <= g->cap_N && b <= g->cap_b && T <= g->cap_T) return 0;
    const LlamaConfig *c = &g->cfg;
    int cb = b > g->cap_b ? b : g->cap_b, cT = T > g->cap_T ? T : g->cap_T;
    size_t cN = (size_t)cb * cT;
    const size_t d = (size_t)c->hidden_size, qd = (size_t)c->n_heads * c->head_dim;
    const size_t kvd = (size_t)c->n_kv_heads * c->head_dim, F = (size_t)c->intermediate_size;
    const size_t half = (size_t)c->head_dim / 2, L = (size_t)c->n_layers;
    const size_t att = (size_t)cb * c->n_heads * cT * cT;
    size_t sizes[] = {
        (L + 1) * cN * d, /* resid */
        cN * d, cN,       /* normed, rstd */
        cN * qd, cN * kvd, cN * kvd, att, cN * qd, /* q k v att att_out */
        cN * d, cN * F, cN * F, cN * F, cN * d,    /* mid gate up act branch */
        cN * d, cN, cN * half, cN * half,          /* final_normed final_rstd cos sin */
    };
    size_t total = 0;
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) total += sizes[i];
    hd_cuda_free(g->act_mem);
    hd_cuda_free(g->ids);
    hd_cuda_free(g->mask);
    g->act_mem = hd_cuda_malloc(total * sizeof(float));
    g->ids = hd_cuda_malloc(cN * sizeof(int));
    g->mask = hd_cuda_malloc(cN * sizeof(int));
    if (!g->act_mem || !g->ids || !g->mask) {
        g->cap_N = g->cap_b = g->cap_T = 0;
        return -1;
    }
    float **views[] = {&g->resid, &g->normed, &g->rstd, &g->q, &g->k, &g->v, &g->att,
                       &g->att_out, &g->mid, &g->gate, &g->up, &g->act, &g->branch,
                       &g->final_normed, &g->final_rstd, &g->cos, &g->sin};
    float *p = g->act_mem;
    for (size_t i = 0; i < sizeof views / sizeof views[0]; i++) {
        *views[i] = p;
        p += sizes[i];
    }
    g->cap_N = (int)cN;
    g->cap_b = cb;
    g->cap_T = cT;
    return 0;
}

/* One decoder layer, as llama_layer_forward without a KV cache. */
static int layer_forward(LlamaCuda *g, int l, float *x_out, const float *x_in, int b, int T)
{
    const LlamaConfig *c = &g->cfg;
    const LayerOnDevice *w = &g->layers[l];
    const int N = b * T, d = c->hidden_size, H = c->n_heads, Hkv = c->n_kv_heads;
    const int hd = c->head_dim, qd = H * hd, kvd = Hkv * hd, F = c->intermediate_size;
    const float eps = c->rms_norm_eps;
    if (rmsnorm_forward_cuda(g->normed, g->rstd, x_in, w->attn_norm, N, d, eps) ||
        matmul_forward_bf16w_cuda(g->q, g->normed, w->wq, NULL, N, d, qd) ||
        matmul_forward_bf16w_cuda(g->k, g->normed, w->wk, NULL, N, d, kvd) ||
        matmul_forward_bf16w_cuda(g->v, g->normed, w->wv, NULL, N, d, kvd) ||
        rope_forward_cuda(g->q, g->cos, g->sin, N, H, hd) ||
        rope_forward_cuda(g->k, g->cos, g->sin, N, Hkv, hd) ||
        attention_forward_cuda(g->att_out, g->att, g->q, g->k, g->v, g->mask, b, T, T, T, H, Hkv,
                               hd) ||
        matmul_forward_bf16w_cuda(g->branch, g->att_out, w->wo, NULL, N, qd, d) ||
        residual_forward_cuda(g->mid, x_in, g->branch, (size_t)N * d) ||
        rmsnorm_forward_cuda(g->normed, g->rstd, g->mid, w->ffn_norm, N, d, eps) ||
        matmul_forward_bf16w_cuda(g->gate, g->normed, w->w_gate, NULL, N, d, F) ||
        matmul_forward_bf16w_cuda(g->up, g->normed, w->w_up, NULL, N, d, F) ||
        swiglu_forward_cuda(g->act, g->gate, g->up, (size_t)N * F) ||
        matmul_forward_bf16w_cuda(g->branch, g->act, w->w_down, NULL, N, F, d) ||
        residual_forward_cuda(x_out, g->mid, g->branch, (size_t)N * d)) {
        char why[512];
        snprintf(why, sizeof why, "%s", hd_last_error());
        return hd_fail("llama cuda: layer %d: %s", l, why);
    }
    return 0;
}

int llama_cuda_forward(LlamaCuda *g, LlamaActivations *a, const int *ids, const int *mask, int b,
                       int T)
{
    if (!g) return hd_fail("llama cuda forward: no model");
    const LlamaConfig *c = &g->cfg;
    if (llama_check_batch(c, a, mask, b, T) || llama_check_ids(ids, b, T, c->vocab_size))
        return -1;
    const int N = b * T, d = c->hidden_size, L = c->n_layers, half = c->head_dim / 2;
    if (ensure_activations(g, b, T)) return -1;

    /* host side, as llama_forward_range leaves it */
    memset(a->layer_done, 0, (size_t)L);
    a->final_done = 0;
    a->b = b;
    a->T = T;
    for (int i = 0; i < N; i++) a->mask[i] = mask ? mask[i] : 1;
    llama_positions_from_mask(a->pos, a->mask, b, T);
    rope_angles(a->rope_cos, a->rope_sin, a->pos, a->inv_freq, N, half);

    const size_t block = (size_t)N * d;
    if (hd_cuda_upload(g->ids, ids, (size_t)N * sizeof(int)) ||
        hd_cuda_upload(g->mask, a->mask, (size_t)N * sizeof(int)) ||
        hd_cuda_upload(g->cos, a->rope_cos, (size_t)N * half * sizeof(float)) ||
        hd_cuda_upload(g->sin, a->rope_sin, (size_t)N * half * sizeof(float)) ||
        embedding_forward_cuda(g->resid, g->ids, g->tok_embed, N, c->vocab_size, d))
        return -1;
    for (int l = 0; l < L; l++)
        if (layer_forward(g, l, g->resid + (size_t)(l + 1) * block, g->resid + (size_t)l * block, b,
                          T))
            return -1;
    if (rmsnorm_forward_cuda(g->final_normed, g->final_rstd, g->resid + (size_t)L * block,
                             g->final_norm, N, d, c->rms_norm_eps))
        return -1;
    for (int l = 0; l <= L; l++)
        if (hd_cuda_download(llama_residual(a, l), g->resid + (size_t)l * block,
                             block * sizeof(float)))
            return -1;
    if (hd_cuda_download(a->final_normed, g->final_normed, block * sizeof(float)) ||
        hd_cuda_download(a->final_rstd, g->final_rstd, (size_t)N * sizeof(float)) ||
        hd_cuda_sync())
        return -1;
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

#endif
