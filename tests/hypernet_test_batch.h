/* The tiny random target, the hand-made batch with its target states
 * computed by the C target, and the finite-difference step of the
 * hypernetwork tests (test_hypernet.c, test_hypernet_das.c).  Static
 * inline functions (no unused-function warning where a test uses only some):
 * each test program includes this once, after <cmocka.h>. */
#ifndef HD_TESTS_HYPERNET_TEST_BATCH_H
#define HD_TESTS_HYPERNET_TEST_BATCH_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/error.h"
#include "hypernet/hypernet.h"
#include "model/llama_forward.h"
#include "model/llama_load.h"

static uint64_t rng_state = 0x6A09E667F3BCC909ULL;
static inline float urand(void) /* uniform in [-1, 1) */
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (float)((rng_state >> 11) * (1.0 / 9007199254740992.0) * 2.0 - 1.0);
}

/* ---- a batch with target states computed by the C target ---- */

typedef struct {
    int b, E, B, S, nl, d;
    int *instr_ids, *instr_mask, *base_ids, *base_attn, *base_intv, *src_ids, *src_attn,
        *src_intv, *labels, *is_causal, *base_pos, *src_pos;
    float *base_states, *src_states, *src_ys;
    HnBatch batch;
} Batch;

static inline void batch_alloc(Batch *x, int b, int E, int B, int S, const LlamaConfig *c)
{
    memset(x, 0, sizeof *x);
    x->b = b, x->E = E, x->B = B, x->S = S, x->nl = c->n_layers + 1, x->d = c->hidden_size;
    x->instr_ids = calloc((size_t)b * E, sizeof(int));
    x->instr_mask = calloc((size_t)b * E, sizeof(int));
    x->base_ids = calloc((size_t)b * B, sizeof(int));
    x->base_attn = calloc((size_t)b * B, sizeof(int));
    x->base_intv = calloc((size_t)b * B, sizeof(int));
    x->labels = calloc((size_t)b * B, sizeof(int));
    x->src_ids = calloc((size_t)b * S, sizeof(int));
    x->src_attn = calloc((size_t)b * S, sizeof(int));
    x->src_intv = calloc((size_t)b * S, sizeof(int));
    x->is_causal = calloc((size_t)b, sizeof(int));
    x->base_pos = calloc((size_t)b, sizeof(int));
    x->src_pos = calloc((size_t)b, sizeof(int));
    x->base_states = calloc((size_t)b * B * x->nl * x->d, sizeof(float));
    x->src_states = calloc((size_t)b * S * x->nl * x->d, sizeof(float));
    x->src_ys = calloc((size_t)b * S * x->d, sizeof(float));
}

static inline void batch_free(Batch *x)
{
    free(x->instr_ids), free(x->instr_mask), free(x->base_ids), free(x->base_attn);
    free(x->base_intv), free(x->labels), free(x->src_ids), free(x->src_attn), free(x->src_intv);
    free(x->is_causal), free(x->base_pos), free(x->src_pos), free(x->base_states);
    free(x->src_states), free(x->src_ys);
}

/* Runs the target on base and source (cumsum positions) to fill the state
 * stacks, and on the source with positions 0..S-1 up to layer L for Ys. */
static inline void batch_encode(Batch *x, const LlamaModel *m, int L)
{
    const int nl = x->nl, d = x->d, b = x->b;
    LlamaActivations *a = llama_acts_create(&m->cfg, b, x->B > x->S ? x->B : x->S, m->cfg.n_layers);
    assert_non_null(a);
    for (int kind = 0; kind < 2; kind++) {
        int T = kind ? x->S : x->B;
        const int *ids = kind ? x->src_ids : x->base_ids, *mask = kind ? x->src_attn : x->base_attn;
        float *out = kind ? x->src_states : x->base_states;
        assert_int_equal(llama_forward(m, a, ids, mask, NULL, b, T), 0);
        for (int l = 0; l < nl; l++) {
            const float *hs = llama_hidden_state(a, l);
            for (int i = 0; i < b * T; i++)
                memcpy(out + ((size_t)i * nl + l) * d, hs + (size_t)i * d, d * sizeof(float));
        }
    }
    int *pos = malloc((size_t)b * x->S * sizeof(int));
    for (int r = 0; r < b; r++)
        for (int t = 0; t < x->S; t++) pos[r * x->S + t] = t;
    assert_int_equal(llama_forward_range(m, a, x->src_ids, NULL, x->src_attn, pos, b, x->S, 0, L), 0);
    memcpy(x->src_ys, llama_residual(a, L), (size_t)b * x->S * d * sizeof(float));
    free(pos);
    llama_acts_free(a);
    HnBatch *h = &x->batch;
    h->b = b, h->E = x->E, h->B = x->B, h->S = x->S;
    h->instr_ids = x->instr_ids, h->instr_mask = x->instr_mask;
    h->base_attn_mask = x->base_attn, h->base_intv_mask = x->base_intv;
    h->src_intv_mask = x->src_intv, h->labels = x->labels, h->is_causal = x->is_causal;
    h->base_states = x->base_states, h->src_states = x->src_states, h->src_ys = x->src_ys;
    h->base_entity_pos = x->base_pos, h->src_entity_pos = x->src_pos;
}


static inline void tiny_target(LlamaModel *m)
{
    LlamaConfig c;
    memset(&c, 0, sizeof c);
    c.vocab_size = 32, c.hidden_size = 16, c.intermediate_size = 24, c.n_layers = 3;
    c.n_heads = 4, c.n_kv_heads = 2, c.head_dim = 4, c.max_position_embeddings = 128;
    c.rms_norm_eps = 1e-5f, c.rope_theta = 10000.0f, c.bos_token_id = 1, c.eos_token_id = 2;
    snprintf(c.model_id, sizeof c.model_id, "tiny-random");
    assert_int_equal(llama_model_alloc(m, &c), 0);
    for (size_t i = 0; i < m->n_params; i++) m->params[i] = 0.4f * urand();
    for (int l = 0; l < c.n_layers; l++)
        for (int i = 0; i < c.hidden_size; i++) {
            m->layers[l].attn_norm[i] = 1.0f + 0.2f * urand();
            m->layers[l].ffn_norm[i] = 1.0f + 0.2f * urand();
        }
    for (int i = 0; i < c.hidden_size; i++) m->final_norm[i] = 1.0f + 0.2f * urand();
}

static inline void tiny_batch(Batch *x, const LlamaModel *m, int L)
{
    const int b = 3, E = 5, B = 7, S = 6, V = m->cfg.vocab_size;
    batch_alloc(x, b, E, B, S, &m->cfg);
    const int ipad[3] = {0, 2, 1}, bpad[3] = {0, 2, 1}, spad[3] = {1, 0, 3};
    const int bvis[3] = {4, 3, 2}, svis[3] = {3, 4, 1}, nlab[3] = {1, 2, 2};
    for (int r = 0; r < b; r++) {
        for (int t = 0; t < E; t++) {
            int real = t >= ipad[r];
            x->instr_mask[r * E + t] = real;
            x->instr_ids[r * E + t] = real ? 3 + (int)((urand() + 1) * 14) % (V - 3) : 2;
        }
        for (int t = 0; t < B; t++) {
            int real = t >= bpad[r];
            x->base_attn[r * B + t] = real;
            x->base_ids[r * B + t] = real ? 3 + (int)((urand() + 1) * 14) % (V - 3) : 2;
            x->base_intv[r * B + t] = real && t < bpad[r] + bvis[r];
            x->labels[r * B + t] = t >= B - nlab[r] ? x->base_ids[r * B + t] : -100;
        }
        for (int t = 0; t < S; t++) {
            int real = t >= spad[r];
            x->src_attn[r * S + t] = real;
            x->src_ids[r * S + t] = real ? 3 + (int)((urand() + 1) * 14) % (V - 3) : 2;
            x->src_intv[r * S + t] = real && t < spad[r] + svis[r];
        }
        x->is_causal[r] = r == 0;
        x->base_pos[r] = bpad[r] + bvis[r] - 1;
        x->src_pos[r] = spad[r] + svis[r] - 1;
    }
    batch_encode(x, m, L);
}

typedef struct {
    Hypernet *hn;
    HnActs *acts;
    const LlamaModel *target;
    const HnBatch *batch;
    HnOptions opt;
} Step;

static inline double step_loss(Step *s)
{
    HnLoss l;
    if (hypernet_forward(s->hn, s->acts, s->target, s->batch, &s->opt, &l) != 0)
        fail_msg("forward: %s", hd_last_error());
    return l.total;
}

/* Richardson: (8 (L(h) - L(-h)) - (L(2h) - L(-2h))) / 12h along dir (n values at p). */
static inline double fd_along(Step *s, float *p, const float *dir, size_t n, double h)
{
    float *keep = malloc(n * sizeof *keep);
    memcpy(keep, p, n * sizeof *keep);
    double L[4];
    const double steps[4] = {h, -h, 2 * h, -2 * h};
    for (int i = 0; i < 4; i++) {
        for (size_t j = 0; j < n; j++) p[j] = keep[j] + (float)(steps[i] * dir[j]);
        L[i] = step_loss(s);
    }
    memcpy(p, keep, n * sizeof *keep);
    free(keep);
    return (8 * (L[0] - L[1]) - (L[2] - L[3])) / (12 * h);
}

/* X's diagonal (a sign, truncated by int()) and upper part are not
 * parameters of R: keep them out of the perturbations. */
static inline int x_free(const HnParam *p, size_t i)
{
    if (strcmp(p->name, "das.rotate.X")) return 1;
    size_t k = (size_t)p->shape[1];
    return i / k > i % k;
}

/* The tiny HyperDAS hypernetwork several tests share, with its target and
 * batch: tiny_target, Lh = 2, L = 1, k = 4, sub-FFN width 12, a sharp head
 * (std 0.3: some source rows' weights sum above 1, so the sparsity term and
 * its gradient are not zero), and tiny_batch encoded at L. */
static inline Hypernet *tiny_hypernet(LlamaModel *m, Batch *x)
{
    tiny_target(m);
    HypernetConfig cfg = hypernet_default_config(&m->cfg);
    cfg.n_layers = 2, cfg.intervention_layer = 1, cfg.das_dim = 4, cfg.sub_ffn = 12;
    Hypernet *hn = hypernet_create(&cfg, &m->cfg);
    if (!hn) fail_msg("%s", hd_last_error());
    assert_int_equal(hypernet_init(hn, m, 0, 0.3f, 5), 0);
    tiny_batch(x, m, cfg.intervention_layer);
    return hn;
}

/* A DAS-method hypernetwork on the tiny target (intervention layer L, k
 * directions) whose X is moved off its initial -I in its free part (below
 * the diagonal, whose sign int() truncates), so that R is not just Q0's
 * first columns. */
static inline Hypernet *das_test_hypernet(const LlamaModel *m, int L, int k)
{
    HypernetConfig cfg = hypernet_default_config(&m->cfg);
    cfg.method = HN_METHOD_DAS, cfg.n_layers = 0, cfg.subspace = HN_SUBSPACE_DAS;
    cfg.intervention_layer = L, cfg.das_dim = k;
    Hypernet *hn = hypernet_create(&cfg, &m->cfg);
    if (!hn) fail_msg("%s", hd_last_error());
    assert_int_equal(hypernet_init(hn, m, 0, 0.02f, 5), 0);
    const HnParam *x = hypernet_param_find(hn, "das.rotate.X");
    for (size_t i = 0; i < x->numel; i++)
        if (x_free(x, i)) x->data[i] += 0.3f * urand();
    return hn;
}

#endif
