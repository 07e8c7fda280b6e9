/* Shared by tests/test_llama_forward.c and tests/test_llama_generate.c: a
 * tiny random Llama model, a left-padded batch for it, error measures and
 * fixture readers.  Everything is static inline so that a test file that
 * uses only part of it compiles without unused-function warnings.
 * Include it after <cmocka.h>: the helpers assert and print through cmocka. */
#ifndef HD_TESTS_LLAMA_TEST_MODELS_H
#define HD_TESTS_LLAMA_TEST_MODELS_H

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model/llama_load.h"
#include "model/llama_model.h"
#include "formats/safetensors.h"

static uint64_t rng_state __attribute__((unused)) = 0x2545F4914F6CDD1DULL;
static inline float urand(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (float)((rng_state >> 11) * (1.0 / 9007199254740992.0) * 2.0 - 1.0);
}

/* ---- a tiny random model and its fp64 twin ---- */

static inline LlamaConfig tiny_config(void)
{
    LlamaConfig c;
    memset(&c, 0, sizeof c);
    c.vocab_size = 40;
    c.hidden_size = 32;
    c.intermediate_size = 48;
    c.n_layers = 3;
    c.n_heads = 4;
    c.n_kv_heads = 2;
    c.head_dim = 8;
    c.max_position_embeddings = 8192;
    c.rms_norm_eps = 1e-5f;
    c.rope_theta = 10000.0f;
    c.rope_scaling = ROPE_SCALING_LLAMA3;
    c.rope_factor = 8.0f;
    c.rope_low_freq_factor = 1.0f;
    c.rope_high_freq_factor = 4.0f;
    c.rope_original_max_position = 16; /* small, so the scaling bites at hd 8 */
    c.bos_token_id = 1;
    c.eos_token_id = 2;
    snprintf(c.model_id, sizeof c.model_id, "tiny-random");
    return c;
}

static inline void fill(float *p, size_t n, float scale, float offset)
{
    for (size_t i = 0; i < n; i++) p[i] = offset + scale * urand();
}

static inline void tiny_model(LlamaModel *m)
{
    LlamaConfig c = tiny_config();
    assert_int_equal(llama_model_alloc(m, &c), 0);
    size_t d = c.hidden_size, q = c.n_heads * c.head_dim, kv = c.n_kv_heads * c.head_dim,
           F = c.intermediate_size;
    fill(m->tok_embed, c.vocab_size * d, 1.0f, 0);
    for (int l = 0; l < c.n_layers; l++) {
        LlamaLayerWeights *w = &m->layers[l];
        fill(w->attn_norm, d, 0.2f, 1.0f);
        fill(w->ffn_norm, d, 0.2f, 1.0f);
        fill(w->wq, q * d, 0.4f, 0);
        fill(w->wk, kv * d, 0.4f, 0);
        fill(w->wv, kv * d, 0.3f, 0);
        fill(w->wo, d * q, 0.3f, 0);
        fill(w->w_gate, F * d, 0.3f, 0);
        fill(w->w_up, F * d, 0.3f, 0);
        fill(w->w_down, d * F, 0.3f, 0);
    }
    fill(m->final_norm, d, 0.2f, 1.0f);
    fill(m->lm_head, c.vocab_size * d, 0.5f, 0);
}

/* ---- a padded batch ---- */

enum { B = 3, T = 7 };
__attribute__((unused)) static const int batch_len[B] = {7, 5, 1}; /* left pads: 0, 2, 6 */
__attribute__((unused)) static int batch_ids[B * T], batch_mask[B * T];

static inline void make_batch(void)
{
    for (int r = 0; r < B; r++)
        for (int t = 0; t < T; t++) {
            int real = t >= T - batch_len[r];
            batch_mask[r * T + t] = real;
            batch_ids[r * T + t] = real ? (t == T - batch_len[r] ? 1 : 3 + (r * 7 + t * 5) % 37) : 0;
        }
}

static inline double rel_err_masked(const float *got, const double *want, const int *mask, int N, int w)
{
    double num = 0, den = 0;
    for (int n = 0; n < N; n++) {
        if (mask && !mask[n]) continue;
        for (int i = 0; i < w; i++) {
            double g = got[(size_t)n * w + i], e = fabs(g - want[(size_t)n * w + i]);
            if (!isfinite(g)) return INFINITY;
            if (e > num) num = e;
            if (fabs(want[(size_t)n * w + i]) > den) den = fabs(want[(size_t)n * w + i]);
        }
    }
    return den > 0 ? num / den : num;
}

static inline void expect_le(const char *what, double err, double tol)
{
    print_message("# %-44s max rel err %.2e (tol %.0e)\n", what, err, tol);
    if (!(err <= tol)) fail_msg("%s: relative error %.3e above %.1e", what, err, tol);
}

#define TINY_DIR "tests/fixtures/tiny-llama-f32"

static inline float *st_f32(const StFile *f, const char *name, size_t *n)
{
    const StTensor *t = st_find(f, name);
    if (!t) fail_msg("%s: no tensor %s", f->path ? f->path : "fixture", name);
    float *v = malloc(t->numel * sizeof *v);
    st_tensor_to_f32(t, v);
    if (n) *n = t->numel;
    return v;
}
static inline int *st_int(const StFile *f, const char *name, size_t *n)
{
    size_t k;
    float *v = st_f32(f, name, &k);
    int *r = malloc(k * sizeof *r);
    for (size_t i = 0; i < k; i++) r[i] = (int)v[i];
    free(v);
    if (n) *n = k;
    return r;
}
static inline double *st_f64(const StFile *f, const char *name)
{
    size_t n;
    float *v = st_f32(f, name, &n);
    double *d = malloc(n * sizeof *d);
    for (size_t i = 0; i < n; i++) d[i] = v[i];
    free(v);
    return d;
}

#endif
