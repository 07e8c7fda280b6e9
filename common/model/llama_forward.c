/* The Llama forward (see llama_forward.h), written once against the op
 * table of compute.h: the CPU runs it on host memory, the GPU on device
 * memory (llama_cuda.c supplies the view of its bf16 weights). */
#include "model/llama_forward.h"
#include "model/llama_load.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "compute.h"
#include "cpu/rope.h"
#include "base/error.h"
#include "model/llama_forward_internal.h"
#include "model/llama_pack.h"

/* ---- sizes and the one activation buffer ---- */

/* Floats of one LlamaLayerActs for N rows and att_floats attention probabilities. */
static size_t layer_acts_floats(const Dims *D, size_t N, size_t att_floats)
{
    return N * (1 + (size_t)D->qd + 2 * (size_t)D->kvd + D->qd + D->d + 1 + 2 * (size_t)D->F) +
           att_floats;
}

static void layer_acts_carve(LlamaLayerActs *s, float **cur, const Dims *D, size_t N,
                             size_t att_floats)
{
    s->rstd1 = carve(cur, N);
    s->q = carve(cur, N * D->qd);
    s->k = carve(cur, N * D->kvd);
    s->v = carve(cur, N * D->kvd);
    s->att = carve(cur, att_floats);
    s->att_out = carve(cur, N * D->qd);
    s->resid_mid = carve(cur, N * D->d);
    s->rstd2 = carve(cur, N);
    s->gate = carve(cur, N * D->F);
    s->up = carve(cur, N * D->F);
}

static int config_valid(const LlamaConfig *c)
{
    if (c->hidden_size < 1 || c->n_layers < 1 || c->n_heads < 1 || c->n_kv_heads < 1 ||
        c->head_dim < 2 || c->head_dim % 2 || c->intermediate_size < 1 || c->vocab_size < 1)
        return hd_fail("llama config: non-positive size (d=%d layers=%d heads=%d/%d hd=%d)",
                       c->hidden_size, c->n_layers, c->n_heads, c->n_kv_heads, c->head_dim);
    if (c->n_heads % c->n_kv_heads)
        return hd_fail("llama config: %d query heads are not a multiple of %d kv heads",
                       c->n_heads, c->n_kv_heads);
    return 0;
}

/* The floats of the one activation buffer (see llama_acts_create_on). */
static size_t acts_floats(const LlamaConfig *cfg, int max_b, int max_T, int keep_from)
{
    const Dims D = dims_of(cfg);
    const size_t N = (size_t)max_b * max_T;
    const size_t att = (size_t)max_b * D.H * max_T * max_T;
    const size_t n_kept = (size_t)(cfg->n_layers - keep_from);
    return 2 * N * (D.hd / 2)                          /* rope cos, sin */
           + (size_t)(D.L + 1) * N * D.d               /* residual stream */
           + N * D.d + N                               /* final norm out, rstd */
           + (n_kept + 1) * layer_acts_floats(&D, N, att) /* kept + transient */
           + N * D.d + N * D.F + N * D.d;              /* scratch: normed, act, branch */
}

size_t llama_acts_bytes(const LlamaConfig *cfg, int max_b, int max_T, int keep_from,
                        int n_logit_rows)
{
    if (keep_from < 0 || keep_from > cfg->n_layers) keep_from = cfg->n_layers;
    const Dims D = dims_of(cfg);
    const size_t N = (size_t)max_b * max_T;
    return (acts_floats(cfg, max_b, max_T, keep_from) +
            (size_t)n_logit_rows * ((size_t)D.V + D.d)) * sizeof(float) +
           2 * N * sizeof(int) + llama_backward_scratch_bytes(cfg, max_b, max_T);
}

LlamaActivations *llama_acts_create(const LlamaConfig *cfg, int max_b, int max_T, int keep_from)
{
    return llama_acts_create_on(compute_cpu(), cfg, max_b, max_T, keep_from);
}

LlamaActivations *llama_acts_create_on(const Compute *K, const LlamaConfig *cfg, int max_b,
                                       int max_T, int keep_from)
{
    if (!K) {
        hd_fail("llama activations: no backend");
        return NULL;
    }
    if (config_valid(cfg)) return NULL;
    if (max_b < 1 || max_T < 1) {
        hd_fail("llama activations: bad batch capacity %d x %d", max_b, max_T);
        return NULL;
    }
    if (keep_from < 0 || keep_from > cfg->n_layers) keep_from = cfg->n_layers;
    Dims D = dims_of(cfg);
    size_t N = (size_t)max_b * max_T;
    size_t att = (size_t)max_b * D.H * max_T * max_T;
    size_t total = acts_floats(cfg, max_b, max_T, keep_from);

    LlamaActivations *a = hd_calloc(1, sizeof *a);
    a->cfg = *cfg;
    a->K = K;
    a->max_b = max_b;
    a->max_T = max_T;
    a->keep_from = keep_from;
    a->mask = hd_calloc(N, sizeof *a->mask);
    a->pos = hd_calloc(N, sizeof *a->pos);
    a->inv_freq = hd_calloc((size_t)D.hd / 2, sizeof *a->inv_freq);
    a->layer_done = hd_calloc((size_t)D.L, 1);
    a->layers = hd_calloc((size_t)D.L, sizeof *a->layers);
    a->mem = K->alloc(total * sizeof(float));
    if (!a->mem) {
        hd_fail("llama activations: cannot allocate %.1f MiB (%s) for %d x %d tokens",
                total * 4.0 / 1048576.0, K->name, max_b, max_T);
        llama_acts_free(a);
        return NULL;
    }
    float *cur = a->mem;
    a->rope_cos = carve(&cur, N * (D.hd / 2));
    a->rope_sin = carve(&cur, N * (D.hd / 2));
    a->residual = carve(&cur, (size_t)(D.L + 1) * N * D.d);
    a->final_normed = carve(&cur, N * D.d);
    a->final_rstd = carve(&cur, N);
    layer_acts_carve(&a->transient, &cur, &D, N, att);
    for (int l = 0; l < D.L; l++) {
        if (l < keep_from)
            a->layers[l] = a->transient;
        else
            layer_acts_carve(&a->layers[l], &cur, &D, N, att);
    }
    a->scratch.normed = carve(&cur, N * D.d);
    a->scratch.act = carve(&cur, N * D.F);
    a->scratch.branch = carve(&cur, N * D.d);
    if (K->on_device) { /* host staging for what is computed here */
        a->mask_k = K->alloc(N * sizeof(int));
        a->ids_k = K->alloc(N * sizeof(int));
        a->cos_host = hd_malloc(N * (D.hd / 2) * sizeof(float));
        a->sin_host = hd_malloc(N * (D.hd / 2) * sizeof(float));
        if (!a->mask_k || !a->ids_k) {
            llama_acts_free(a);
            return NULL;
        }
    } else {
        a->mask_k = a->mask;
        a->cos_host = a->rope_cos;
        a->sin_host = a->rope_sin;
    }

    rope_inv_freq(a->inv_freq, D.hd, cfg->rope_theta, cfg->rope_scaling == ROPE_SCALING_LLAMA3,
                  cfg->rope_factor, cfg->rope_low_freq_factor, cfg->rope_high_freq_factor,
                  cfg->rope_original_max_position);
    return a;
}

void llama_acts_free(LlamaActivations *a)
{
    if (!a) return;
    const Compute *K = a->K;
    if (K->on_device) {
        K->release(a->mask_k);
        K->release(a->ids_k);
        free(a->cos_host);
        free(a->sin_host);
    }
    free(a->mask);
    free(a->pos);
    free(a->inv_freq);
    free(a->layer_done);
    free(a->layers);
    K->release(a->mem);
    K->release(a->logits);
    K->release(a->logit_in);
    free(a->logit_rows);
    K->release(a->grad_mem);
    free(a);
}

float *llama_residual(const LlamaActivations *a, int l)
{
    if (!a || l < 0 || l > a->cfg.n_layers) return NULL;
    return a->residual + (size_t)l * a->max_b * a->max_T * a->cfg.hidden_size;
}

float *llama_hidden_state(const LlamaActivations *a, int l)
{
    if (a && l == a->cfg.n_layers) return a->final_normed;
    return llama_residual(a, l);
}

/* ---- the model as a backend holds it ---- */

LlamaView llama_view_cpu(const LlamaModel *m)
{
    LlamaView v = {0};
    v.K = compute_cpu();
    if (!m) return v;
    v.cfg = m->cfg;
    v.tok_embed = m->tok_embed;
    v.final_norm = m->final_norm;
    v.lm_head = m->lm_head;
    v.host = m;
    return v;
}

LlamaLayerView llama_view_layer(const LlamaView *v, int l)
{
    if (v->layers) return v->layers[l];
    if (llama_model_layer_packed(v->host, l)) return llama_packed_layer(v->host, l);
    const LlamaLayerWeights *w = &v->host->layers[l];
    LlamaLayerView lv = {w->attn_norm, w->ffn_norm, w->wq,     w->wk,  w->wv,
                         w->wo,        w->w_gate,   w->w_up,   w->w_down};
    return lv;
}

int llama_view_check_layers(const LlamaView *v, int from, int to)
{
    if (v->host) return llama_model_check_layers(v->host, from, to);
    for (int l = from; l < to; l++)
        if (!v->layers[l].wq)
            return hd_fail("llama forward: layer %d is not on the %s", l, v->K->name);
    return 0;
}

/* ---- forward ---- */

void llama_layer_forward(const LlamaModel *m, int layer, float *x_out, const float *x_in,
                         LlamaLayerActs *s, const LlamaLayerScratch *scratch,
                         const float *rope_cos, const float *rope_sin, const int *mask,
                         const LlamaKV *kv, int b, int Tq)
{
    LlamaView v = llama_view_cpu(m);
    LlamaLayerView w = llama_view_layer(&v, layer);
    llama_layer_forward_on(v.K, &m->cfg, &w, x_out, x_in, s, scratch, rope_cos, rope_sin, mask,
                           kv, b, Tq);
}

void llama_layer_forward_on(const Compute *K, const LlamaConfig *c, const LlamaLayerView *w,
                            float *x_out, const float *x_in, LlamaLayerActs *s,
                            const LlamaLayerScratch *scratch, const float *rope_cos,
                            const float *rope_sin, const int *mask, const LlamaKV *kv, int b,
                            int Tq)
{
    const Dims D = dims_of(c);
    const int N = b * Tq;
    float *normed = scratch->normed;

    /* attention block */
    K->rmsnorm_forward(normed, s->rstd1, x_in, w->attn_norm, N, D.d, c->rms_norm_eps);
    K->frozen_matmul_forward(s->q, normed, w->wq, N, D.d, D.qd);
    K->frozen_matmul_forward(s->k, normed, w->wk, N, D.d, D.kvd);
    K->frozen_matmul_forward(s->v, normed, w->wv, N, D.d, D.kvd);
    K->rope_forward(s->q, rope_cos, rope_sin, N, D.H, D.hd);
    K->rope_forward(s->k, rope_cos, rope_sin, N, D.Hkv, D.hd);
    if (kv && kv->k) {
        /* Append the new keys/values to the cache, then attend over all of it. */
        const size_t row = (size_t)D.kvd * sizeof(float);
        for (int r = 0; r < b; r++)
            for (int i = 0; i < Tq; i++) {
                size_t dst = ((size_t)r * kv->cap + kv->start + i) * D.kvd;
                size_t src = ((size_t)r * Tq + i) * D.kvd;
                K->copy(kv->k + dst, s->k + src, row);
                K->copy(kv->v + dst, s->v + src, row);
            }
        K->attention_forward(s->att_out, s->att, s->q, kv->k, kv->v, kv->mask, b, Tq,
                             kv->start + Tq, kv->cap, D.H, D.Hkv, D.hd);
    } else {
        K->attention_forward(s->att_out, s->att, s->q, s->k, s->v, mask, b, Tq, Tq, Tq, D.H,
                             D.Hkv, D.hd);
    }
    K->frozen_matmul_forward(scratch->branch, s->att_out, w->wo, N, D.qd, D.d);
    K->residual_forward(s->resid_mid, x_in, scratch->branch, (size_t)N * D.d);

    /* MLP block */
    K->rmsnorm_forward(normed, s->rstd2, s->resid_mid, w->ffn_norm, N, D.d, c->rms_norm_eps);
    K->frozen_matmul_forward(s->gate, normed, w->w_gate, N, D.d, D.F);
    K->frozen_matmul_forward(s->up, normed, w->w_up, N, D.d, D.F);
    K->swiglu_forward(scratch->act, s->gate, s->up, (size_t)N * D.F);
    K->frozen_matmul_forward(scratch->branch, scratch->act, w->w_down, N, D.F, D.d);
    K->residual_forward(x_out, s->resid_mid, scratch->branch, (size_t)N * D.d);
}

static int same_shapes(const LlamaConfig *x, const LlamaConfig *y)
{
    return x->hidden_size == y->hidden_size && x->n_layers == y->n_layers &&
           x->n_heads == y->n_heads && x->n_kv_heads == y->n_kv_heads &&
           x->head_dim == y->head_dim && x->intermediate_size == y->intermediate_size &&
           x->vocab_size == y->vocab_size;
}

int llama_check_view(const LlamaView *v, const LlamaActivations *a)
{
    if (!v || !a) return hd_fail("llama forward: no model or no activations");
    if (!same_shapes(&v->cfg, &a->cfg))
        return hd_fail("llama forward: activations were sized for another model configuration");
    if (v->K != a->K)
        return hd_fail("llama forward: the model is on %s, the activations on %s", v->K->name,
                       a->K->name);
    return 0;
}
int llama_check_batch(const LlamaConfig *cfg, const LlamaActivations *a, const int *mask, int b,
                      int T)
{
    if (!a) return hd_fail("llama forward: no activations");
    if (!same_shapes(cfg, &a->cfg))
        return hd_fail("llama forward: activations were sized for another model configuration");
    if (b < 1 || T < 1 || b > a->max_b || T > a->max_T)
        return hd_fail("llama forward: batch %d x %d outside the capacity %d x %d", b, T,
                       a->max_b, a->max_T);
    const size_t N = (size_t)b * T;
    for (size_t i = 0; mask && i < N; i++)
        if (mask[i] != 0 && mask[i] != 1)
            return hd_fail("llama forward: attention mask value %d at row %zu, token %zu "
                           "(expected 0 or 1)",
                           mask[i], i / T, i % T);
    return 0;
}

int llama_check_ids(const int *ids, int b, int T, int V)
{
    const size_t N = (size_t)b * T;
    for (size_t i = 0; i < N; i++)
        if (ids[i] < 0 || ids[i] >= V)
            return hd_fail("llama forward: token id %d at row %zu, token %zu outside the "
                           "vocabulary of %d",
                           ids[i], i / T, i % T, V);
    return 0;
}

void llama_positions_from_mask(int *pos, const int *mask, int b, int T)
{
    for (int r = 0; r < b; r++) {
        int count = 0;
        for (int t = 0; t < T; t++) {
            int real = mask[(size_t)r * T + t];
            count += real;
            pos[(size_t)r * T + t] = real ? count - 1 : -1;
        }
    }
}

int llama_forward_range(const LlamaModel *m, LlamaActivations *a, const int *ids,
                        const float *resid_in, const int *mask, const int *pos, int b, int T,
                        int from, int to)
{
    if (!m) return hd_fail("llama forward: no model");
    LlamaView v = llama_view_cpu(m);
    return llama_view_forward_range(&v, a, ids, resid_in, mask, pos, b, T, from, to);
}

int llama_view_forward_range(const LlamaView *v, LlamaActivations *a, const int *ids,
                             const float *resid_in, const int *mask, const int *pos, int b,
                             int T, int from, int to)
{
    if (!v || !v->K) return hd_fail("llama forward: no model");
    if (llama_check_batch(&v->cfg, a, mask, b, T)) return -1;
    if (llama_check_view(v, a)) return -1;
    const Compute *K = v->K;
    const Dims D = dims_of(&v->cfg);
    if (from < 0 || to > D.L || from > to)
        return hd_fail("llama forward: bad layer range [%d, %d) of %d layers", from, to, D.L);
    if (llama_view_check_layers(v, from, to)) return -1;
    const size_t N = (size_t)b * T;
    if (from == 0) {
        if (!ids) return hd_fail("llama forward: no token ids for a run from layer 0");
        if (v->host && llama_model_check_embedding(v->host)) return -1;
        if (!v->tok_embed) return hd_fail("llama forward: the embedding is not on the %s", K->name);
        if (llama_check_ids(ids, b, T, D.V)) return -1;
    }

    /* A new batch invalidates every stored layer; a run of [from, to)
     * invalidates everything above `to`, whose inputs have changed. */
    if (from == 0 || b != a->b || T != a->T) memset(a->layer_done, 0, (size_t)D.L);
    for (int l = to; l < D.L; l++) a->layer_done[l] = 0;
    a->final_done = 0;
    a->b = b;
    a->T = T;

    for (size_t i = 0; i < N; i++) a->mask[i] = mask ? mask[i] : 1;
    if (pos)
        memcpy(a->pos, pos, N * sizeof *pos);
    else
        llama_positions_from_mask(a->pos, a->mask, b, T);
    const size_t half = (size_t)D.hd / 2;
    rope_angles(a->cos_host, a->sin_host, a->pos, a->inv_freq, (int)N, (int)half);
    K->upload(a->rope_cos, a->cos_host, N * half * sizeof(float));
    K->upload(a->rope_sin, a->sin_host, N * half * sizeof(float));
    K->upload(a->mask_k, a->mask, N * sizeof(int));

    if (from == 0) {
        const int *ids_k = ids;
        if (K->on_device) {
            K->upload(a->ids_k, ids, N * sizeof(int));
            ids_k = a->ids_k;
        }
        K->embedding_forward(llama_residual(a, 0), ids_k, v->tok_embed, (int)N, D.V, D.d);
    } else {
        float *x = llama_residual(a, from);
        if (resid_in && resid_in != x) K->copy(x, resid_in, N * D.d * sizeof *x);
        for (size_t i = 0; !K->on_device && i < N * D.d; i++)
            if (!isfinite(x[i]))
                return hd_fail("llama forward: residual entering layer %d is not finite at row "
                               "%zu, token %zu",
                               from, i / D.d / T, i / D.d % T);
    }

    for (int l = from; l < to; l++) {
        LlamaLayerView w = llama_view_layer(v, l);
        llama_layer_forward_on(K, &v->cfg, &w, llama_residual(a, l + 1), llama_residual(a, l),
                               &a->layers[l], &a->scratch, a->rope_cos, a->rope_sin, a->mask_k,
                               NULL, b, T);
        a->layer_done[l] = 1;
    }
    if (to == D.L) {
        K->rmsnorm_forward(a->final_normed, a->final_rstd, llama_residual(a, D.L), v->final_norm,
                           (int)N, D.d, v->cfg.rms_norm_eps);
        a->final_done = 1;
    }
    if (K->status()) {
        for (int l = from; l < to; l++) a->layer_done[l] = 0;
        a->final_done = 0;
        return hd_fail_prefix("llama forward: ");
    }
    return 0;
}

int llama_forward(const LlamaModel *m, LlamaActivations *a, const int *ids, const int *mask,
                  const int *pos, int b, int T)
{
    return llama_forward_range(m, a, ids, NULL, mask, pos, b, T, 0, m ? m->cfg.n_layers : 0);
}

int llama_forward_logits(const LlamaModel *m, LlamaActivations *a, const int *rows, int n_rows)
{
    if (!m) return hd_fail("llama forward: no model or no activations");
    LlamaView v = llama_view_cpu(m);
    return llama_view_forward_logits(&v, a, rows, n_rows);
}

int llama_view_forward_logits(const LlamaView *v, LlamaActivations *a, const int *rows,
                              int n_rows)
{
    if (llama_check_view(v, a)) return -1;
    if (!a->final_done)
        return hd_fail("llama logits: the forward has not reached the last layer on this batch");
    const Compute *K = v->K;
    const Dims D = dims_of(&v->cfg);
    const int N = a->b * a->T;
    if (!rows) n_rows = N;
    if (n_rows < 1) return hd_fail("llama logits: no rows asked for");
    for (int i = 0; rows && i < n_rows; i++)
        if (rows[i] < 0 || rows[i] >= N)
            return hd_fail("llama logits: row %d outside the batch of %d x %d", rows[i], a->b,
                           a->T);
    if (n_rows > a->logit_cap) {
        K->release(a->logits);
        K->release(a->logit_in);
        free(a->logit_rows);
        a->logits = K->alloc((size_t)n_rows * D.V * sizeof(float));
        a->logit_in = K->alloc((size_t)n_rows * D.d * sizeof(float));
        a->logit_rows = malloc((size_t)n_rows * sizeof(int));
        if (!a->logits || !a->logit_in || !a->logit_rows) {
            a->logit_cap = 0;
            return hd_fail("llama logits: cannot allocate %.1f MiB (%s) for %d rows",
                           (double)n_rows * D.V * 4 / 1048576.0, K->name, n_rows);
        }
        a->logit_cap = n_rows;
    }
    a->n_logit_rows = n_rows;
    for (int i = 0; i < n_rows; i++) a->logit_rows[i] = rows ? rows[i] : i;
    const float *in = a->final_normed; /* all rows: no gather needed */
    if (rows) {
        for (int i = 0; i < n_rows; i++)
            K->copy(a->logit_in + (size_t)i * D.d, a->final_normed + (size_t)rows[i] * D.d,
                    D.d * sizeof(float));
        in = a->logit_in;
    }
    K->frozen_matmul_forward(a->logits, in, v->lm_head, n_rows, D.d, D.V);
    if (K->status()) return hd_fail_prefix("llama logits: ");
    return 0;
}
