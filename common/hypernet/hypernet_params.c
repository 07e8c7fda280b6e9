/* The hypernetwork's parameters: configuration checks, the one buffer and
 * its named views, the reference's names, initialisation (the gradient's
 * bookkeeping and AdamW's spans: hypernet_grads.c). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cpu/householder.h"
#include "cpu/rope.h"
#include "base/error.h"
#include "hypernet/hypernet.h"
#include "hypernet/orthogonal.h"
#include "base/rng.h"

static const char *const subspace_names[] = {"none", "reflect", "das", "mask"};

int hn_subspace_from_name(const char *name)
{
    if (!name) return -1;
    for (int i = 0; i < 4; i++)
        if (!strcmp(name, subspace_names[i])) return i;
    if (!strcmp(name, "ReflectSelect")) return HN_SUBSPACE_REFLECT;
    if (!strcmp(name, "DAS")) return HN_SUBSPACE_DAS;
    if (!strcmp(name, "MaskSelect")) return HN_SUBSPACE_MASK;
    return -1;
}

const char *hn_subspace_name(HnSubspace s)
{
    return (int)s >= 0 && (int)s < 4 ? subspace_names[s] : "?";
}

static const char *const method_names[] = {"hyperdas", "das"};

int hn_method_from_name(const char *name)
{
    if (!name) return -1;
    if (!strcmp(name, "hyperdas")) return HN_METHOD_HYPERDAS;
    if (!strcmp(name, "das") || !strcmp(name, "mdas")) return HN_METHOD_DAS;
    return -1;
}

const char *hn_method_name(HnMethod m)
{
    return (int)m >= 0 && (int)m < 2 ? method_names[m] : "?";
}

HypernetConfig hypernet_default_config(const LlamaConfig *t)
{
    HypernetConfig c;
    memset(&c, 0, sizeof c);
    c.n_layers = t->n_layers < 8 ? t->n_layers : 8;
    c.intervention_layer = t->n_layers - 1 < 15 ? t->n_layers - 1 : 15;
    c.das_dim = t->hidden_size < 128 ? t->hidden_size : 128;
    c.subspace = HN_SUBSPACE_REFLECT;
    c.sub_ffn = t->intermediate_size;
    c.sub_rms_eps = 1e-5f;
    return c;
}

HnOptions hn_default_options(void)
{
    /* global counts 0: the batch is the whole batch (one process) */
    HnOptions o = {0.0f, 3.5f, 0.5f, SELECT_SOFT, 0.1f, 50.0f, 0, 0};
    return o;
}

/* ---- layout ---- */

/* Adds one tensor to the table; data/grad are set once the buffers exist. */
static void add_param(Hypernet *hn, char **name_cur, size_t *off, const char *name, int ndim,
                      int64_t rows, int64_t cols, HnGroup group)
{
    HnParam *p = &hn->info[hn->n_info++];
    size_t len = strlen(name) + 1;
    memcpy(*name_cur, name, len);
    p->name = *name_cur;
    *name_cur += len;
    p->ndim = ndim;
    p->shape[0] = rows;
    p->shape[1] = ndim == 2 ? cols : 0;
    p->numel = (size_t)rows * (ndim == 2 ? (size_t)cols : 1);
    p->group = group;
    if (group == HN_GROUP_BUFFER) {
        p->offset = (size_t)-1;
    } else {
        p->offset = *off;
        *off += p->numel;
    }
}

/* The table in the reference's order (tests/fixtures/hyperdas/README.md 2). */
static void build_table(Hypernet *hn, size_t *total)
{
    const LlamaConfig *t = &hn->target;
    const HypernetConfig *c = &hn->cfg;
    const int64_t d = t->hidden_size, qd = (int64_t)t->n_heads * t->head_dim;
    const int64_t kvd = (int64_t)t->n_kv_heads * t->head_dim, F = t->intermediate_size;
    const int64_t V = t->vocab_size, k = c->das_dim, SF = c->sub_ffn;
    char *cur = hn->names, buf[128];
    size_t off = 0;
    const int has_g = c->method == HN_METHOD_HYPERDAS;
    if (has_g) add_param(hn, &cur, &off, "hyper.embed_tokens.weight", 2, V, d, HN_GROUP_MAIN);
    static const char *const blocks[3] = {"self_attn", "src_cross_attn", "base_cross_attn"};
    static const char *const norms[3] = {"input_layernorm", "src_cross_attn_layernorm",
                                         "base_cross_attn_layernorm"};
    for (int i = 0; i < c->n_layers; i++) {
        for (int bl = 0; bl < 3; bl++) {
            snprintf(buf, sizeof buf, "hyper.layers.%d.%s.weight", i, norms[bl]);
            add_param(hn, &cur, &off, buf, 1, d, 0, HN_GROUP_MAIN);
            const char *proj = "qkvo";
            for (int m = 0; m < 4; m++) {
                snprintf(buf, sizeof buf, "hyper.layers.%d.%s.%c_proj.weight", i, blocks[bl],
                         proj[m]);
                int64_t rows = m == 0 ? qd : m == 3 ? d : kvd, cols = m == 3 ? qd : d;
                add_param(hn, &cur, &off, buf, 2, rows, cols, HN_GROUP_MAIN);
            }
        }
        snprintf(buf, sizeof buf, "hyper.layers.%d.post_attention_layernorm.weight", i);
        add_param(hn, &cur, &off, buf, 1, d, 0, HN_GROUP_MAIN);
        snprintf(buf, sizeof buf, "hyper.layers.%d.mlp.gate_proj.weight", i);
        add_param(hn, &cur, &off, buf, 2, F, d, HN_GROUP_MAIN);
        snprintf(buf, sizeof buf, "hyper.layers.%d.mlp.up_proj.weight", i);
        add_param(hn, &cur, &off, buf, 2, F, d, HN_GROUP_MAIN);
        snprintf(buf, sizeof buf, "hyper.layers.%d.mlp.down_proj.weight", i);
        add_param(hn, &cur, &off, buf, 2, d, F, HN_GROUP_MAIN);
    }
    if (has_g) {
        add_param(hn, &cur, &off, "hyper.norm.weight", 1, d, 0, HN_GROUP_MAIN);
        add_param(hn, &cur, &off, "head.q_proj.weight", 2, qd, d, HN_GROUP_MAIN);
        add_param(hn, &cur, &off, "head.k_proj.weight", 2, kvd, d, HN_GROUP_MAIN);
        add_param(hn, &cur, &off, "head.q_combine.weight", 2, d, 2 * d, HN_GROUP_MAIN);
    }
    if (c->subspace != HN_SUBSPACE_NONE)
        add_param(hn, &cur, &off, "das.rotate.X", 2, d, k, HN_GROUP_ROTATE);
    if (c->subspace == HN_SUBSPACE_REFLECT || c->subspace == HN_SUBSPACE_MASK) {
        const int reflect = c->subspace == HN_SUBSPACE_REFLECT;
        const char *pre = reflect ? "das.rv_" : "das.mask_";
        HnGroup mlp_group = reflect ? HN_GROUP_MAIN : HN_GROUP_MASK;
        snprintf(buf, sizeof buf, "%snorm.weight", pre);
        add_param(hn, &cur, &off, buf, 1, d, 0, HN_GROUP_MAIN);
        snprintf(buf, sizeof buf, "%smlp.gate_proj.weight", pre);
        add_param(hn, &cur, &off, buf, 2, SF, d, mlp_group);
        snprintf(buf, sizeof buf, "%smlp.up_proj.weight", pre);
        add_param(hn, &cur, &off, buf, 2, SF, d, mlp_group);
        snprintf(buf, sizeof buf, "%smlp.down_proj.weight", pre);
        add_param(hn, &cur, &off, buf, 2, reflect ? d : k, SF, mlp_group);
    }
    if (c->subspace != HN_SUBSPACE_NONE)
        add_param(hn, &cur, &off, "das.rotate.Q0", 2, d, d, HN_GROUP_BUFFER);
    *total = off;
}

void hn_bind_weights(const Hypernet *hn, HnWeights *w, float *base)
{
    int i = 0;
    const HnParam *P = hn->info;
#define NEXT() (base + P[i++].offset)
    const int has_g = hn->cfg.method == HN_METHOD_HYPERDAS;
    w->tok_embed = w->final_norm = w->head_wq = w->head_wk = w->head_combine = NULL;
    if (has_g) w->tok_embed = NEXT();
    for (int l = 0; l < hn->cfg.n_layers; l++) {
        HnLayerWeights *lw = &w->layers[l];
        HnAttnWeights *blk[3] = {&lw->self_attn, &lw->src_cross, &lw->base_cross};
        for (int bl = 0; bl < 3; bl++) {
            blk[bl]->norm = NEXT();
            blk[bl]->wq = NEXT();
            blk[bl]->wk = NEXT();
            blk[bl]->wv = NEXT();
            blk[bl]->wo = NEXT();
        }
        lw->post_norm = NEXT();
        lw->w_gate = NEXT();
        lw->w_up = NEXT();
        lw->w_down = NEXT();
    }
    if (has_g) {
        w->final_norm = NEXT();
        w->head_wq = NEXT();
        w->head_wk = NEXT();
        w->head_combine = NEXT();
    }
    w->rot_x = w->sub_norm = w->sub_gate = w->sub_up = w->sub_down = NULL;
    if (hn->cfg.subspace != HN_SUBSPACE_NONE) w->rot_x = NEXT();
    if (hn->cfg.subspace == HN_SUBSPACE_REFLECT || hn->cfg.subspace == HN_SUBSPACE_MASK) {
        w->sub_norm = NEXT();
        w->sub_gate = NEXT();
        w->sub_up = NEXT();
        w->sub_down = NEXT();
    }
#undef NEXT
}

/* Points the views of w and the table's data or grad at buffer `base`
 * (params or grads), in table order. */
static void bind_views(Hypernet *hn, HnWeights *w, float *base, int is_grad)
{
    hn_bind_weights(hn, w, base);
    for (int j = 0; j < hn->n_info; j++) {
        HnParam *p = &hn->info[j];
        if (p->group == HN_GROUP_BUFFER) {
            if (!is_grad) p->data = hn->rot_base;
            continue;
        }
        if (is_grad)
            p->grad = base + p->offset;
        else
            p->data = base + p->offset;
    }
}

static int config_check(const HypernetConfig *c, const LlamaConfig *t)
{
    if (t->hidden_size < 1 || t->n_layers < 1 || t->n_heads < 1 || t->n_kv_heads < 1 ||
        t->head_dim < 2 || t->head_dim % 2 || t->n_heads % t->n_kv_heads || t->vocab_size < 1 ||
        t->intermediate_size < 1)
        return hd_fail("hypernet: the target's configuration is invalid");
    if (c->method == HN_METHOD_DAS) {
        if (c->n_layers != 0 || c->subspace != HN_SUBSPACE_DAS)
            return hd_fail("hypernet: the DAS method has no hypernetwork layers and the das "
                           "subspace (got %d layers, subspace %s)",
                           c->n_layers, hn_subspace_name(c->subspace));
    } else if (c->method != HN_METHOD_HYPERDAS) {
        return hd_fail("hypernet: unknown method %d", (int)c->method);
    } else if (c->n_layers < 1 || c->n_layers > t->n_layers)
        return hd_fail("hypernet: %d hypernetwork layers, expected 1..%d (the target's depth)",
                       c->n_layers, t->n_layers);
    if (c->intervention_layer < 1 || c->intervention_layer > t->n_layers - 1)
        return hd_fail("hypernet: intervention layer %d outside 1..%d (layer 0 would need the "
                       "embedding hook, only supported without a subspace module in the original; "
                       "hs[%d] is the final-norm output)",
                       c->intervention_layer, t->n_layers - 1, t->n_layers);
    if ((int)c->subspace < 0 || (int)c->subspace > HN_SUBSPACE_MASK)
        return hd_fail("hypernet: unknown subspace module %d", (int)c->subspace);
    if (c->subspace != HN_SUBSPACE_NONE && (c->das_dim < 1 || c->das_dim > t->hidden_size))
        return hd_fail("hypernet: DAS dimension %d outside 1..%d", c->das_dim, t->hidden_size);
    if ((c->subspace == HN_SUBSPACE_REFLECT || c->subspace == HN_SUBSPACE_MASK) &&
        c->sub_ffn < 1)
        return hd_fail("hypernet: subspace MLP width %d", c->sub_ffn);
    return 0;
}

Hypernet *hypernet_create(const HypernetConfig *cfg, const LlamaConfig *target)
{
    if (!cfg || !target) {
        hd_fail("hypernet: no configuration");
        return NULL;
    }
    if (config_check(cfg, target)) return NULL;
    Hypernet *hn = hd_calloc(1, sizeof *hn);
    hn->cfg = *cfg;
    if (hn->cfg.sub_rms_eps <= 0) hn->cfg.sub_rms_eps = 1e-5f;
    if (hn->cfg.subspace == HN_SUBSPACE_NONE) hn->cfg.das_dim = 0;
    hn->target = *target;
    int max_info = 1 + cfg->n_layers * 19 + 1 + 3 + 6;
    hn->info = hd_calloc((size_t)max_info, sizeof *hn->info);
    hn->names = hd_calloc((size_t)max_info, 96);
    hn->w.layers = hd_calloc((size_t)cfg->n_layers, sizeof(HnLayerWeights));
    hn->g.layers = hd_calloc((size_t)cfg->n_layers, sizeof(HnLayerWeights));
    size_t total = 0;
    build_table(hn, &total);
    hn->n_params = total;
    hn->params = calloc(total, sizeof(float));
    hn->grads = calloc(total, sizeof(float));
    const size_t d = (size_t)target->hidden_size;
    if (cfg->subspace != HN_SUBSPACE_NONE) hn->rot_base = calloc(d * d, sizeof(float));
    if (!hn->params || !hn->grads || (cfg->subspace != HN_SUBSPACE_NONE && !hn->rot_base)) {
        hd_fail("hypernet: cannot allocate %.1f MiB of parameters and gradients",
                total * 8.0 / 1048576.0);
        hypernet_free(hn);
        return NULL;
    }
    bind_views(hn, &hn->w, hn->params, 0);
    bind_views(hn, &hn->g, hn->grads, 1);
    hn->embed_row_dirty = hd_calloc((size_t)target->vocab_size, 1);
    hn->embed_dirty_rows = hd_malloc((size_t)target->vocab_size * sizeof(int));
    hn->embed_row_moved = hd_calloc((size_t)target->vocab_size, 1);
    hn->inv_freq = hd_malloc((size_t)(target->head_dim / 2) * sizeof(float));
    rope_inv_freq(hn->inv_freq, target->head_dim, target->rope_theta,
                  target->rope_scaling == ROPE_SCALING_LLAMA3, target->rope_factor,
                  target->rope_low_freq_factor, target->rope_high_freq_factor,
                  target->rope_original_max_position);
    return hn;
}

void hypernet_free(Hypernet *hn)
{
    if (!hn) return;
    free(hn->params);
    free(hn->grads);
    free(hn->rot_base);
    free(hn->inv_freq);
    free(hn->info);
    free(hn->names);
    free(hn->w.layers);
    free(hn->g.layers);
    free(hn->embed_row_dirty);
    free(hn->embed_dirty_rows);
    free(hn->embed_row_moved);
    free(hn);
}

int hypernet_param_count(const Hypernet *hn)
{
    return hn ? hn->n_info : 0;
}

const HnParam *hypernet_param(const Hypernet *hn, int i)
{
    return hn && i >= 0 && i < hn->n_info ? &hn->info[i] : NULL;
}

const HnParam *hypernet_param_find(const Hypernet *hn, const char *name)
{
    for (int i = 0; hn && name && i < hn->n_info; i++)
        if (!strcmp(hn->info[i].name, name)) return &hn->info[i];
    return NULL;
}

void hypernet_rotation(const Hypernet *hn, float *R)
{
    householder_orthogonal_forward(R, hn->w.rot_x, hn->rot_base, hn->target.hidden_size,
                                   hn->cfg.das_dim);
}

/* ---- initialisation ---- */

static double uniform01(Rng *r)
{
    return ((rng_next(r) >> 11) + 0.5) * (1.0 / 9007199254740992.0);
}

static double gaussian(Rng *r)
{
    /* Box-Muller; one draw per call keeps the stream simple */
    double u1 = uniform01(r), u2 = uniform01(r);
    return sqrt(-2.0 * log(u1)) * cos(2.0 * 3.14159265358979323846 * u2);
}

/* PyTorch's nn.Linear default (kaiming_uniform, a = sqrt(5)): U(+-1/sqrt(in)). */
static void linear_default(float *w, size_t rows, size_t cols, Rng *r)
{
    double bound = 1.0 / sqrt((double)cols);
    for (size_t i = 0; i < rows * cols; i++) w[i] = (float)((2.0 * uniform01(r) - 1.0) * bound);
}

static void fill(float *w, size_t n, float v)
{
    for (size_t i = 0; i < n; i++) w[i] = v;
}

/* A random orthogonal d x d matrix (orthogonal.h), from d * d Gaussian
 * draws taken column by column. */
static int random_orthogonal(float *Q, int d, Rng *r)
{
    double *A = malloc((size_t)d * d * sizeof *A); /* column-major: column j at A + j*d */
    if (!A) return hd_fail("orthogonal init: out of memory (d = %d)", d);
    for (size_t i = 0; i < (size_t)d * d; i++) A[i] = gaussian(r);
    int rc = orthogonal_from_gaussian(Q, A, d);
    free(A);
    return rc;
}

static void copy_attn(HnAttnWeights *dst, const LlamaLayerWeights *src, const LlamaConfig *t)
{
    size_t d = t->hidden_size, qd = (size_t)t->n_heads * t->head_dim;
    size_t kvd = (size_t)t->n_kv_heads * t->head_dim;
    memcpy(dst->norm, src->attn_norm, d * sizeof(float));
    memcpy(dst->wq, src->wq, qd * d * sizeof(float));
    memcpy(dst->wk, src->wk, kvd * d * sizeof(float));
    memcpy(dst->wv, src->wv, kvd * d * sizeof(float));
    memcpy(dst->wo, src->wo, d * qd * sizeof(float));
}

static void scratch_attn(HnAttnWeights *w, const LlamaConfig *t, Rng *r)
{
    size_t d = t->hidden_size, qd = (size_t)t->n_heads * t->head_dim;
    size_t kvd = (size_t)t->n_kv_heads * t->head_dim;
    fill(w->norm, d, 1.0f);
    linear_default(w->wq, qd, d, r);
    linear_default(w->wk, kvd, d, r);
    linear_default(w->wv, kvd, d, r);
    linear_default(w->wo, d, qd, r);
}

static int same_target_shapes(const LlamaConfig *a, const LlamaConfig *b)
{
    return a->hidden_size == b->hidden_size && a->n_heads == b->n_heads &&
           a->n_kv_heads == b->n_kv_heads && a->head_dim == b->head_dim &&
           a->intermediate_size == b->intermediate_size && a->vocab_size == b->vocab_size &&
           a->n_layers == b->n_layers;
}

/* G from the target (or from scratch) and the head's random init. */
static void init_g_and_head(Hypernet *hn, const LlamaModel *target, int from_scratch,
                            float head_std, Rng *rng)
{
    const LlamaConfig *t = &target->cfg;
    const size_t d = t->hidden_size, F = t->intermediate_size, V = t->vocab_size;
    HnWeights *w = &hn->w;
    memcpy(w->tok_embed, target->tok_embed, V * d * sizeof(float));
    memcpy(w->final_norm, target->final_norm, d * sizeof(float));
    for (int l = 0; l < hn->cfg.n_layers; l++) {
        HnLayerWeights *lw = &w->layers[l];
        const LlamaLayerWeights *src = &target->layers[l];
        if (from_scratch) {
            scratch_attn(&lw->self_attn, t, rng);
            scratch_attn(&lw->src_cross, t, rng);
            scratch_attn(&lw->base_cross, t, rng);
            fill(lw->post_norm, d, 1.0f);
            linear_default(lw->w_gate, F, d, rng);
            linear_default(lw->w_up, F, d, rng);
            linear_default(lw->w_down, d, F, rng);
        } else {
            /* hyperdas(7) 3.1, 14.8: both cross blocks start as copies of the
             * layer's self-attention and input norm, then train independently */
            copy_attn(&lw->self_attn, src, t);
            copy_attn(&lw->src_cross, src, t);
            copy_attn(&lw->base_cross, src, t);
            memcpy(lw->post_norm, src->ffn_norm, d * sizeof(float));
            memcpy(lw->w_gate, src->w_gate, F * d * sizeof(float));
            memcpy(lw->w_up, src->w_up, F * d * sizeof(float));
            memcpy(lw->w_down, src->w_down, d * F * sizeof(float));
        }
    }
    const size_t qd = (size_t)t->n_heads * t->head_dim, kvd = (size_t)t->n_kv_heads * t->head_dim;
    for (size_t i = 0; i < qd * d; i++) w->head_wq[i] = (float)(head_std * gaussian(rng));
    for (size_t i = 0; i < kvd * d; i++) w->head_wk[i] = (float)(head_std * gaussian(rng));
    for (size_t i = 0; i < d * 2 * d; i++) w->head_combine[i] = (float)(head_std * gaussian(rng));
}

int hypernet_init(Hypernet *hn, const LlamaModel *target, int from_scratch, float head_std,
                  uint64_t seed)
{
    if (!hn || !target) return hd_fail("hypernet init: no hypernetwork or no target");
    const LlamaConfig *t = &target->cfg;
    if (!same_target_shapes(t, &hn->target))
        return hd_fail("hypernet init: the target's shapes differ from those the hypernetwork "
                       "was created for");
    const size_t d = t->hidden_size;
    Rng rng;
    rng_seed(&rng, seed);
    HnWeights *w = &hn->w;
    if (hn->cfg.method == HN_METHOD_HYPERDAS) init_g_and_head(hn, target, from_scratch, head_std, &rng);
    if (hn->cfg.subspace != HN_SUBSPACE_NONE) {
        const int k = hn->cfg.das_dim;
        memset(w->rot_x, 0, d * (size_t)k * sizeof(float));
        for (int j = 0; j < k; j++) w->rot_x[(size_t)j * k + j] = -1.0f;
        if (random_orthogonal(hn->rot_base, (int)d, &rng) < 0) return -1;
    }
    if (w->sub_norm) {
        const size_t SF = hn->cfg.sub_ffn;
        const size_t out = hn->cfg.subspace == HN_SUBSPACE_REFLECT ? d : (size_t)hn->cfg.das_dim;
        fill(w->sub_norm, d, 1.0f);
        linear_default(w->sub_gate, SF, d, &rng);
        linear_default(w->sub_up, SF, d, &rng);
        linear_default(w->sub_down, out, SF, &rng);
    }
    return 0;
}
