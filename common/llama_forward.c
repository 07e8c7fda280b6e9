#include "llama_forward.h"
#include "llama_load.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cpu/attention.h"
#include "cpu/embedding.h"
#include "cpu/matmul.h"
#include "cpu/residual.h"
#include "cpu/rmsnorm.h"
#include "cpu/rope.h"
#include "cpu/swiglu.h"
#include "error.h"

/* ---- sizes and the one activation buffer ---- */

typedef struct {
    int d, H, Hkv, hd, F, L, V;
    int qd, kvd; /* H*hd, Hkv*hd */
} Dims;

static Dims dims_of(const LlamaConfig *c)
{
    Dims D = {c->hidden_size, c->n_heads,    c->n_kv_heads, c->head_dim, c->intermediate_size,
              c->n_layers,    c->vocab_size, 0,             0};
    D.qd = D.H * D.hd;
    D.kvd = D.Hkv * D.hd;
    return D;
}

/* Floats of one LlamaLayerActs for N rows and att_floats attention probabilities. */
static size_t layer_acts_floats(const Dims *D, size_t N, size_t att_floats)
{
    return N * (1 + (size_t)D->qd + 2 * (size_t)D->kvd + D->qd + D->d + 1 + 2 * (size_t)D->F) +
           att_floats;
}

static float *carve(float **cursor, size_t n)
{
    float *p = *cursor;
    *cursor += n;
    return p;
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

LlamaActivations *llama_acts_create(const LlamaConfig *cfg, int max_b, int max_T, int keep_from)
{
    if (config_valid(cfg)) return NULL;
    if (max_b < 1 || max_T < 1) {
        hd_fail("llama activations: bad batch capacity %d x %d", max_b, max_T);
        return NULL;
    }
    if (keep_from < 0 || keep_from > cfg->n_layers) keep_from = cfg->n_layers;
    Dims D = dims_of(cfg);
    size_t N = (size_t)max_b * max_T;
    size_t att = (size_t)max_b * D.H * max_T * max_T;
    size_t n_kept = (size_t)(cfg->n_layers - keep_from);
    size_t total = (size_t)(D.hd / 2)                 /* inv_freq */
                   + 2 * N * (D.hd / 2)               /* rope cos, sin */
                   + (size_t)(D.L + 1) * N * D.d      /* residual stream */
                   + N * D.d + N                      /* final norm out, rstd */
                   + (n_kept + 1) * layer_acts_floats(&D, N, att) /* kept + transient */
                   + N * D.d + N * D.F + N * D.d;     /* scratch: normed, act, branch */

    LlamaActivations *a = hd_calloc(1, sizeof *a);
    a->cfg = *cfg;
    a->max_b = max_b;
    a->max_T = max_T;
    a->keep_from = keep_from;
    a->mask = hd_calloc(N, sizeof *a->mask);
    a->pos = hd_calloc(N, sizeof *a->pos);
    a->layer_done = hd_calloc((size_t)D.L, 1);
    a->layers = hd_calloc((size_t)D.L, sizeof *a->layers);
    a->mem = malloc(total * sizeof(float));
    if (!a->mem) {
        hd_fail("llama activations: cannot allocate %.1f MiB for %d x %d tokens",
                total * 4.0 / 1048576.0, max_b, max_T);
        llama_acts_free(a);
        return NULL;
    }
    float *cur = a->mem;
    a->inv_freq = carve(&cur, (size_t)D.hd / 2);
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

    rope_inv_freq(a->inv_freq, D.hd, cfg->rope_theta, cfg->rope_scaling == ROPE_SCALING_LLAMA3,
                  cfg->rope_factor, cfg->rope_low_freq_factor, cfg->rope_high_freq_factor,
                  cfg->rope_original_max_position);
    return a;
}

void llama_acts_free(LlamaActivations *a)
{
    if (!a) return;
    free(a->mask);
    free(a->pos);
    free(a->layer_done);
    free(a->layers);
    free(a->mem);
    free(a->logits);
    free(a->logit_in);
    free(a->logit_rows);
    free(a->grad_mem);
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

/* ---- forward ---- */

void llama_layer_forward(const LlamaModel *m, int layer, float *x_out, const float *x_in,
                         LlamaLayerActs *s, const LlamaLayerScratch *scratch,
                         const float *rope_cos, const float *rope_sin, const int *mask,
                         const LlamaKV *kv, int b, int Tq)
{
    const LlamaConfig *c = &m->cfg;
    const Dims D = dims_of(c);
    const LlamaLayerWeights *w = &m->layers[layer];
    const int N = b * Tq;
    float *normed = scratch->normed;

    /* attention block */
    rmsnorm_forward(normed, s->rstd1, x_in, w->attn_norm, N, D.d, c->rms_norm_eps);
    matmul_forward(s->q, normed, w->wq, NULL, N, D.d, D.qd);
    matmul_forward(s->k, normed, w->wk, NULL, N, D.d, D.kvd);
    matmul_forward(s->v, normed, w->wv, NULL, N, D.d, D.kvd);
    rope_forward(s->q, rope_cos, rope_sin, N, D.H, D.hd);
    rope_forward(s->k, rope_cos, rope_sin, N, D.Hkv, D.hd);
    if (kv && kv->k) {
        /* Append the new keys/values to the cache, then attend over all of it. */
        for (int r = 0; r < b; r++)
            for (int i = 0; i < Tq; i++) {
                size_t dst = ((size_t)r * kv->cap + kv->start + i) * D.kvd;
                size_t src = ((size_t)r * Tq + i) * D.kvd;
                memcpy(kv->k + dst, s->k + src, (size_t)D.kvd * sizeof(float));
                memcpy(kv->v + dst, s->v + src, (size_t)D.kvd * sizeof(float));
            }
        attention_forward(s->att_out, s->att, s->q, kv->k, kv->v, kv->mask, b, Tq,
                          kv->start + Tq, kv->cap, D.H, D.Hkv, D.hd);
    } else {
        attention_forward(s->att_out, s->att, s->q, s->k, s->v, mask, b, Tq, Tq, Tq, D.H, D.Hkv,
                          D.hd);
    }
    matmul_forward(scratch->branch, s->att_out, w->wo, NULL, N, D.qd, D.d);
    residual_forward(s->resid_mid, x_in, scratch->branch, (size_t)N * D.d);

    /* MLP block */
    rmsnorm_forward(normed, s->rstd2, s->resid_mid, w->ffn_norm, N, D.d, c->rms_norm_eps);
    matmul_forward(s->gate, normed, w->w_gate, NULL, N, D.d, D.F);
    matmul_forward(s->up, normed, w->w_up, NULL, N, D.d, D.F);
    swiglu_forward(scratch->act, s->gate, s->up, (size_t)N * D.F);
    matmul_forward(scratch->branch, scratch->act, w->w_down, NULL, N, D.F, D.d);
    residual_forward(x_out, s->resid_mid, scratch->branch, (size_t)N * D.d);
}

static int same_shapes(const LlamaConfig *x, const LlamaConfig *y)
{
    return x->hidden_size == y->hidden_size && x->n_layers == y->n_layers &&
           x->n_heads == y->n_heads && x->n_kv_heads == y->n_kv_heads &&
           x->head_dim == y->head_dim && x->intermediate_size == y->intermediate_size &&
           x->vocab_size == y->vocab_size;
}

static int check_model(const LlamaModel *m, const LlamaActivations *a)
{
    if (!m || !a) return hd_fail("llama forward: no model or no activations");
    if (!same_shapes(&m->cfg, &a->cfg))
        return hd_fail("llama forward: activations were sized for another model configuration");
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
    if (llama_check_batch(&m->cfg, a, mask, b, T)) return -1;
    const Dims D = dims_of(&m->cfg);
    if (from < 0 || to > D.L || from > to)
        return hd_fail("llama forward: bad layer range [%d, %d) of %d layers", from, to, D.L);
    if (llama_model_check_layers(m, from, to)) return -1;
    const size_t N = (size_t)b * T;
    if (from == 0) {
        if (!ids) return hd_fail("llama forward: no token ids for a run from layer 0");
        if (llama_model_check_embedding(m) || llama_check_ids(ids, b, T, D.V)) return -1;
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
    rope_angles(a->rope_cos, a->rope_sin, a->pos, a->inv_freq, (int)N, D.hd / 2);

    if (from == 0) {
        embedding_forward(llama_residual(a, 0), ids, m->tok_embed, (int)N, D.V, D.d);
    } else {
        float *x = llama_residual(a, from);
        if (resid_in && resid_in != x) memcpy(x, resid_in, N * D.d * sizeof *x);
        for (size_t i = 0; i < N * D.d; i++)
            if (!isfinite(x[i]))
                return hd_fail("llama forward: residual entering layer %d is not finite at row "
                               "%zu, token %zu",
                               from, i / D.d / T, i / D.d % T);
    }

    for (int l = from; l < to; l++) {
        llama_layer_forward(m, l, llama_residual(a, l + 1), llama_residual(a, l), &a->layers[l],
                            &a->scratch, a->rope_cos, a->rope_sin, a->mask, NULL, b, T);
        a->layer_done[l] = 1;
    }
    if (to == D.L) {
        rmsnorm_forward(a->final_normed, a->final_rstd, llama_residual(a, D.L), m->final_norm,
                        (int)N, D.d, m->cfg.rms_norm_eps);
        a->final_done = 1;
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
    if (check_model(m, a)) return -1;
    if (!a->final_done)
        return hd_fail("llama logits: the forward has not reached the last layer on this batch");
    const Dims D = dims_of(&m->cfg);
    const int N = a->b * a->T;
    if (!rows) n_rows = N;
    if (n_rows < 1) return hd_fail("llama logits: no rows asked for");
    for (int i = 0; rows && i < n_rows; i++)
        if (rows[i] < 0 || rows[i] >= N)
            return hd_fail("llama logits: row %d outside the batch of %d x %d", rows[i], a->b,
                           a->T);
    if (n_rows > a->logit_cap) {
        free(a->logits);
        free(a->logit_in);
        free(a->logit_rows);
        a->logits = malloc((size_t)n_rows * D.V * sizeof(float));
        a->logit_in = malloc((size_t)n_rows * D.d * sizeof(float));
        a->logit_rows = malloc((size_t)n_rows * sizeof(int));
        if (!a->logits || !a->logit_in || !a->logit_rows) {
            a->logit_cap = 0;
            return hd_fail("llama logits: cannot allocate %.1f MiB for %d rows",
                           (double)n_rows * D.V * 4 / 1048576.0, n_rows);
        }
        a->logit_cap = n_rows;
    }
    a->n_logit_rows = n_rows;
    for (int i = 0; i < n_rows; i++) a->logit_rows[i] = rows ? rows[i] : i;
    const float *in = a->final_normed; /* all rows: no gather needed */
    if (rows) {
        for (int i = 0; i < n_rows; i++)
            memcpy(a->logit_in + (size_t)i * D.d, a->final_normed + (size_t)rows[i] * D.d,
                   D.d * sizeof(float));
        in = a->logit_in;
    }
    matmul_forward(a->logits, in, m->lm_head, NULL, n_rows, D.d, D.V);
    return 0;
}

/* ---- backward ---- */

/* The backward's scratch: gradients of one layer's internals. */
typedef struct {
    float *dnormed;    /* [N, d] */
    float *dact;       /* [N, F] */
    float *dgate;      /* [N, F] */
    float *dup;        /* [N, F] */
    float *datt;       /* [N, qd] dL/d att_out, later dL/dq before RoPE */
    float *dq_rot;     /* [N, qd] */
    float *dk_rot;     /* [N, kvd] */
    float *dk;         /* [N, kvd] */
    float *dv;         /* [N, kvd] */
    float *recomputed; /* [N, d] output of a recomputed layer (discarded) */
} LayerGrads;

static LayerGrads layer_grads(LlamaActivations *a)
{
    const Dims D = dims_of(&a->cfg);
    const size_t N = (size_t)a->max_b * a->max_T;
    size_t total = N * (2 * (size_t)D.d + 3 * (size_t)D.F + 2 * (size_t)D.qd + 3 * (size_t)D.kvd);
    if (!a->grad_mem) a->grad_mem = hd_malloc(total * sizeof(float));
    LayerGrads g;
    float *cur = a->grad_mem;
    g.dnormed = carve(&cur, N * D.d);
    g.dact = carve(&cur, N * D.F);
    g.dgate = carve(&cur, N * D.F);
    g.dup = carve(&cur, N * D.F);
    g.datt = carve(&cur, N * D.qd);
    g.dq_rot = carve(&cur, N * D.qd);
    g.dk_rot = carve(&cur, N * D.kvd);
    g.dk = carve(&cur, N * D.kvd);
    g.dv = carve(&cur, N * D.kvd);
    g.recomputed = carve(&cur, N * D.d);
    return g;
}

static void zero(float *p, size_t n)
{
    memset(p, 0, n * sizeof *p);
}

/* dx: dL/dx_out on entry, dL/dx_in on return (x_out = x_in + attn + mlp). */
static void layer_backward(const LlamaModel *m, int layer, float *dx, const float *x_in,
                           const LlamaLayerActs *s, const LlamaLayerWeights *gw,
                           LlamaActivations *a, const LayerGrads *g)
{
    const LlamaConfig *c = &m->cfg;
    const Dims D = dims_of(c);
    const LlamaLayerWeights *w = &m->layers[layer];
    const int b = a->b, T = a->T, N = b * T;
    const size_t Nd = (size_t)N * D.d, NF = (size_t)N * D.F;
    float *normed = a->scratch.normed, *act = a->scratch.act;
    /* Inputs of the projections are only needed for weight gradients; they
     * are recomputed from what the forward kept. */
    const int want_w = gw != NULL;

    /* MLP: x_out = resid_mid + down(silu(gate) * up), gate/up = W norm(resid_mid) */
    if (want_w) swiglu_forward(act, s->gate, s->up, NF);
    zero(g->dact, NF);
    matmul_backward(g->dact, want_w ? gw->w_down : NULL, NULL, dx, act, w->w_down, N, D.F, D.d);
    zero(g->dgate, NF);
    zero(g->dup, NF);
    swiglu_backward(g->dgate, g->dup, g->dact, s->gate, s->up, NF);
    if (want_w) rmsnorm_forward(normed, NULL, s->resid_mid, w->ffn_norm, N, D.d, c->rms_norm_eps);
    zero(g->dnormed, Nd);
    matmul_backward(g->dnormed, want_w ? gw->w_gate : NULL, NULL, g->dgate, normed, w->w_gate, N,
                    D.d, D.F);
    matmul_backward(g->dnormed, want_w ? gw->w_up : NULL, NULL, g->dup, normed, w->w_up, N, D.d,
                    D.F);
    /* dx passes the residual unchanged and gains the norm's share: now dL/d resid_mid */
    rmsnorm_backward(dx, want_w ? gw->ffn_norm : NULL, g->dnormed, s->resid_mid, w->ffn_norm,
                     s->rstd2, N, D.d);

    /* attention: resid_mid = x_in + o(attention(rope(q), rope(k), v)) */
    zero(g->datt, (size_t)N * D.qd);
    matmul_backward(g->datt, want_w ? gw->wo : NULL, NULL, dx, s->att_out, w->wo, N, D.qd, D.d);
    zero(g->dq_rot, (size_t)N * D.qd);
    zero(g->dk_rot, (size_t)N * D.kvd);
    zero(g->dv, (size_t)N * D.kvd);
    attention_backward(g->dq_rot, g->dk_rot, g->dv, g->datt, s->att, s->q, s->k, s->v, b, T, T,
                       T, D.H, D.Hkv, D.hd);
    float *dq = g->datt; /* att_out's gradient is spent: reuse its buffer */
    zero(dq, (size_t)N * D.qd);
    zero(g->dk, (size_t)N * D.kvd);
    rope_backward(dq, g->dq_rot, a->rope_cos, a->rope_sin, N, D.H, D.hd);
    rope_backward(g->dk, g->dk_rot, a->rope_cos, a->rope_sin, N, D.Hkv, D.hd);
    if (want_w) rmsnorm_forward(normed, NULL, x_in, w->attn_norm, N, D.d, c->rms_norm_eps);
    zero(g->dnormed, Nd);
    matmul_backward(g->dnormed, want_w ? gw->wq : NULL, NULL, dq, normed, w->wq, N, D.d, D.qd);
    matmul_backward(g->dnormed, want_w ? gw->wk : NULL, NULL, g->dk, normed, w->wk, N, D.d,
                    D.kvd);
    matmul_backward(g->dnormed, want_w ? gw->wv : NULL, NULL, g->dv, normed, w->wv, N, D.d,
                    D.kvd);
    rmsnorm_backward(dx, want_w ? gw->attn_norm : NULL, g->dnormed, x_in, w->attn_norm, s->rstd1,
                     N, D.d);
}

int llama_backward_range(const LlamaModel *m, LlamaActivations *a, float *dresid, int from,
                         int to, const LlamaLayerWeights *grads)
{
    if (check_model(m, a)) return -1;
    const int L = m->cfg.n_layers;
    if (from < 0 || to > L || from > to)
        return hd_fail("llama backward: bad layer range [%d, %d) of %d layers", from, to, L);
    if (llama_model_check_layers(m, from, to)) return -1;
    for (int l = from; l < to; l++)
        if (!a->layer_done[l])
            return hd_fail("llama backward: layer %d has not been run forward on this batch", l);
    if (from == to) return 0;
    LayerGrads g = layer_grads(a);
    for (int l = to - 1; l >= from; l--) {
        const LlamaLayerActs *s = &a->layers[l];
        if (l < a->keep_from) {
            /* Not kept: rerun the layer from its input into the transient set. */
            llama_layer_forward(m, l, g.recomputed, llama_residual(a, l), &a->transient,
                                &a->scratch, a->rope_cos, a->rope_sin, a->mask, NULL, a->b, a->T);
            s = &a->transient;
        }
        layer_backward(m, l, dresid, llama_residual(a, l), s, grads ? &grads[l] : NULL, a, &g);
    }
    return 0;
}

int llama_backward_final_norm(const LlamaModel *m, LlamaActivations *a, const float *dnormed,
                              float *dresid)
{
    if (check_model(m, a)) return -1;
    if (!a->final_done)
        return hd_fail("llama backward: the forward has not reached the final norm on this batch");
    const int L = m->cfg.n_layers;
    rmsnorm_backward(dresid, NULL, dnormed, llama_residual(a, L), m->final_norm, a->final_rstd,
                     a->b * a->T, m->cfg.hidden_size);
    return 0;
}

int llama_backward_logits(const LlamaModel *m, LlamaActivations *a, const float *dlogits,
                          float *dnormed)
{
    if (check_model(m, a)) return -1;
    if (!a->final_done || a->n_logit_rows < 1)
        return hd_fail("llama backward: no logits were computed on this batch");
    const Dims D = dims_of(&m->cfg);
    /* logit_in (the gathered forward input) is not needed any more with a
     * frozen LM head: it receives the gathered gradient. */
    float *tmp = a->logit_in;
    zero(tmp, (size_t)a->n_logit_rows * D.d);
    matmul_backward(tmp, NULL, NULL, dlogits, NULL, m->lm_head, a->n_logit_rows, D.d, D.V);
    for (int i = 0; i < a->n_logit_rows; i++) {
        float *dst = dnormed + (size_t)a->logit_rows[i] * D.d;
        const float *src = tmp + (size_t)i * D.d;
        for (int j = 0; j < D.d; j++) dst[j] += src[j];
    }
    return 0;
}
