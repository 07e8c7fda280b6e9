#include "model/llama_generate.h"
#include "model/llama_load.h"

#include <stdlib.h>
#include <string.h>

#include "cpu/embedding.h"
#include "cpu/matmul.h"
#include "cpu/rmsnorm.h"
#include "cpu/rope.h"
#include "base/error.h"
#include "model/llama_forward_internal.h"

LlamaKVCache *llama_kv_create(const LlamaConfig *cfg, int max_b, int max_step, int cap)
{
    if (max_b < 1 || max_step < 1 || cap < max_step) {
        hd_fail("llama kv cache: bad sizes (rows %d, step %d, capacity %d)", max_b, max_step, cap);
        return NULL;
    }
    if (cfg->n_layers < 1 || cfg->hidden_size < 1 || cfg->n_heads < 1 || cfg->n_kv_heads < 1 ||
        cfg->head_dim < 2 || cfg->head_dim % 2 || cfg->n_heads % cfg->n_kv_heads ||
        cfg->vocab_size < 1 || cfg->intermediate_size < 1) {
        hd_fail("llama kv cache: invalid model configuration");
        return NULL;
    }
    const size_t d = cfg->hidden_size, F = cfg->intermediate_size, V = cfg->vocab_size;
    const size_t qd = (size_t)cfg->n_heads * cfg->head_dim;
    const size_t kvd = (size_t)cfg->n_kv_heads * cfg->head_dim, half = cfg->head_dim / 2;
    const size_t N = (size_t)max_b * max_step;
    const size_t cache = (size_t)cfg->n_layers * max_b * cap * kvd;
    const size_t att = (size_t)max_b * cfg->n_heads * max_step * cap;
    size_t total = 2 * cache + half + 2 * N * half                  /* cache, rope */
                   + N * (1 + qd + 2 * kvd + qd + d + 1 + 2 * F) + att /* step internals */
                   + N * d + N * F + N * d                            /* scratch */
                   + 2 * N * d + (size_t)max_b * d + (size_t)max_b * V; /* x, x_next, last, logits */
    LlamaKVCache *c = hd_calloc(1, sizeof *c);
    c->cfg = *cfg;
    c->max_b = max_b;
    c->max_step = max_step;
    c->cap = cap;
    c->mask = hd_calloc((size_t)max_b * cap, sizeof *c->mask);
    c->n_real = hd_calloc((size_t)max_b, sizeof *c->n_real);
    c->pos = hd_calloc(N, sizeof *c->pos);
    c->mem = malloc(total * sizeof(float));
    if (!c->mem) {
        hd_fail("llama kv cache: cannot allocate %.1f MiB", total * 4.0 / 1048576.0);
        llama_kv_free(c);
        return NULL;
    }
    float *cur = c->mem;
    c->k = carve(&cur, cache);
    c->v = carve(&cur, cache);
    c->inv_freq = carve(&cur, half);
    c->rope_cos = carve(&cur, N * half);
    c->rope_sin = carve(&cur, N * half);
    c->step.rstd1 = carve(&cur, N);
    c->step.q = carve(&cur, N * qd);
    c->step.k = carve(&cur, N * kvd);
    c->step.v = carve(&cur, N * kvd);
    c->step.att = carve(&cur, att);
    c->step.att_out = carve(&cur, N * qd);
    c->step.resid_mid = carve(&cur, N * d);
    c->step.rstd2 = carve(&cur, N);
    c->step.gate = carve(&cur, N * F);
    c->step.up = carve(&cur, N * F);
    c->scratch.normed = carve(&cur, N * d);
    c->scratch.act = carve(&cur, N * F);
    c->scratch.branch = carve(&cur, N * d);
    c->x = carve(&cur, N * d);
    c->x_next = carve(&cur, N * d);
    c->last = carve(&cur, (size_t)max_b * d);
    c->logits = carve(&cur, (size_t)max_b * V);
    rope_inv_freq(c->inv_freq, cfg->head_dim, cfg->rope_theta,
                  cfg->rope_scaling == ROPE_SCALING_LLAMA3, cfg->rope_factor,
                  cfg->rope_low_freq_factor, cfg->rope_high_freq_factor,
                  cfg->rope_original_max_position);
    return c;
}

void llama_kv_free(LlamaKVCache *c)
{
    if (!c) return;
    free(c->mask);
    free(c->n_real);
    free(c->pos);
    free(c->mem);
    free(c);
}

void llama_kv_reset(LlamaKVCache *c)
{
    c->b = 0;
    c->len = 0;
    c->step_T = 0;
    memset(c->mask, 0, (size_t)c->max_b * c->cap * sizeof *c->mask);
    memset(c->n_real, 0, (size_t)c->max_b * sizeof *c->n_real);
}

int llama_kv_step(const LlamaModel *m, LlamaKVCache *c, const int *ids, const int *mask, int b,
                  int Tq)
{
    const LlamaConfig *cfg = &m->cfg;
    if (cfg->hidden_size != c->cfg.hidden_size || cfg->n_layers != c->cfg.n_layers ||
        cfg->vocab_size != c->cfg.vocab_size || cfg->n_kv_heads != c->cfg.n_kv_heads ||
        cfg->head_dim != c->cfg.head_dim || cfg->n_heads != c->cfg.n_heads ||
        cfg->intermediate_size != c->cfg.intermediate_size)
        return hd_fail("llama kv cache: sized for another model configuration");
    if (b < 1 || b > c->max_b || Tq < 1 || Tq > c->max_step)
        return hd_fail("llama kv cache: step of %d x %d outside the capacity %d x %d", b, Tq,
                       c->max_b, c->max_step);
    if (c->len > 0 && b != c->b)
        return hd_fail("llama kv cache: batch of %d rows fed to a cache holding %d", b, c->b);
    if (c->len + Tq > c->cap)
        return hd_fail("llama kv cache: full (%d of %d time steps used, %d more asked)", c->len,
                       c->cap, Tq);
    const int V = cfg->vocab_size, d = cfg->hidden_size, N = b * Tq;
    for (int i = 0; i < N; i++) {
        if (ids[i] < 0 || ids[i] >= V)
            return hd_fail("llama kv cache: token id %d at row %d outside the vocabulary of %d",
                           ids[i], i / Tq, V);
        if (mask && mask[i] != 0 && mask[i] != 1)
            return hd_fail("llama kv cache: mask value %d at row %d (expected 0 or 1)", mask[i],
                           i / Tq);
    }
    if (llama_model_check_embedding(m) || llama_model_check_layers(m, 0, cfg->n_layers)) return -1;
    c->b = b;
    for (int r = 0; r < b; r++)
        for (int i = 0; i < Tq; i++) {
            int real = mask ? mask[r * Tq + i] : 1;
            c->mask[(size_t)r * c->cap + c->len + i] = real;
            c->n_real[r] += real;
            c->pos[r * Tq + i] = real ? c->n_real[r] - 1 : -1;
        }
    rope_angles(c->rope_cos, c->rope_sin, c->pos, c->inv_freq, N, cfg->head_dim / 2);
    embedding_forward(c->x, ids, m->tok_embed, N, V, d);
    const size_t layer_block = (size_t)c->max_b * c->cap * cfg->n_kv_heads * cfg->head_dim;
    for (int l = 0; l < cfg->n_layers; l++) {
        LlamaKV kv = {c->k + l * layer_block, c->v + l * layer_block, c->mask, c->len, c->cap};
        llama_layer_forward(m, l, c->x_next, c->x, &c->step, &c->scratch, c->rope_cos,
                            c->rope_sin, NULL, &kv, b, Tq);
        float *t = c->x;
        c->x = c->x_next;
        c->x_next = t;
    }
    c->len += Tq;
    c->step_T = Tq;
    /* Only each row's last token needs the final norm and the LM head. */
    for (int r = 0; r < b; r++)
        memcpy(c->scratch.normed + (size_t)r * d, c->x + ((size_t)r * Tq + Tq - 1) * d,
               (size_t)d * sizeof(float));
    rmsnorm_forward(c->last, NULL, c->scratch.normed, m->final_norm, b, d, cfg->rms_norm_eps);
    matmul_forward(c->logits, c->last, m->lm_head, NULL, b, d, V);
    return 0;
}

/* Offset (floats) of layer l, row r, time t in the cache's k or v. */
static size_t kv_at(const LlamaKVCache *c, int l, int r, int t)
{
    const size_t kvd = (size_t)c->cfg.n_kv_heads * c->cfg.head_dim;
    return (((size_t)l * c->max_b + r) * c->cap + t) * kvd;
}

int llama_kv_save_row(const LlamaKVCache *c, int r, int n, float *k, float *v)
{
    if (r < 0 || r >= c->b || n < 0 || n > c->len)
        return hd_fail("llama kv cache: save %d steps of row %d (have %d rows, %d steps)", n, r, c->b, c->len);
    const size_t step = (size_t)n * c->cfg.n_kv_heads * c->cfg.head_dim;
    for (int l = 0; l < c->cfg.n_layers; l++) {
        memcpy(k + l * step, c->k + kv_at(c, l, r, c->len - n), step * sizeof(float));
        memcpy(v + l * step, c->v + kv_at(c, l, r, c->len - n), step * sizeof(float));
    }
    return 0;
}

int llama_kv_start_rows(LlamaKVCache *c, int b, int len)
{
    if (b < 1 || b > c->max_b || len < 0 || len > c->cap)
        return hd_fail("llama kv cache: %d rows of %d steps outside the capacity %d x %d", b, len, c->max_b, c->cap);
    llama_kv_reset(c);
    c->b = b;
    c->len = len;
    return 0;
}

int llama_kv_load_row(LlamaKVCache *c, int r, int n, const float *k, const float *v)
{
    if (r < 0 || r >= c->b || n < 0 || n > c->len)
        return hd_fail("llama kv cache: load %d steps into row %d (have %d rows, %d steps)", n, r, c->b, c->len);
    const size_t step = (size_t)n * c->cfg.n_kv_heads * c->cfg.head_dim;
    for (int l = 0; l < c->cfg.n_layers; l++) {
        memcpy(c->k + kv_at(c, l, r, c->len - n), k + l * step, step * sizeof(float));
        memcpy(c->v + kv_at(c, l, r, c->len - n), v + l * step, step * sizeof(float));
    }
    int *mask = c->mask + (size_t)r * c->cap;
    for (int t = 0; t < c->len; t++) mask[t] = t >= c->len - n;
    c->n_real[r] = n;
    return 0;
}

int llama_kv_logits_rows(const LlamaModel *m, const LlamaKVCache *c, const int *rows, int n,
                         float *logits)
{
    const int d = c->cfg.hidden_size, N = c->b * c->step_T;
    if (c->step_T < 1) return hd_fail("llama kv cache: no step to read logits from");
    if (n < 1) return 0;
    float *in = hd_malloc((size_t)n * d * sizeof *in), *normed = hd_malloc((size_t)n * d * sizeof *normed);
    for (int i = 0; i < n; i++) {
        if (rows[i] < 0 || rows[i] >= N) {
            free(in);
            free(normed);
            return hd_fail("llama kv cache: row %d outside the last step's %d", rows[i], N);
        }
        memcpy(in + (size_t)i * d, c->x + (size_t)rows[i] * d, (size_t)d * sizeof(float));
    }
    rmsnorm_forward(normed, NULL, in, m->final_norm, n, d, c->cfg.rms_norm_eps);
    matmul_forward(logits, normed, m->lm_head, NULL, n, d, c->cfg.vocab_size);
    free(in);
    free(normed);
    return 0;
}

int llama_argmax(const float *x, int n)
{
    int best = 0;
    for (int i = 1; i < n; i++)
        if (x[i] > x[best]) best = i;
    return best;
}

int llama_generate_greedy(const LlamaModel *m, const int *ids, const int *mask, int b, int T,
                          int n_new, const int *stop_ids, int n_stop, int *out)
{
    if (n_new < 1 || b < 1 || T < 1)
        return hd_fail("llama generate: bad sizes (%d rows of %d tokens, %d new)", b, T, n_new);
    if (m->cfg.max_position_embeddings > 0 && (long long)T + n_new > m->cfg.max_position_embeddings)
        return hd_fail("llama generate: %d prompt tokens plus %d new ones are beyond the model's "
                       "max_position_embeddings %d",
                       T, n_new, m->cfg.max_position_embeddings);
    LlamaKVCache *c = llama_kv_create(&m->cfg, b, T, T + n_new);
    if (!c) return -1;
    int *next = hd_calloc((size_t)b, sizeof *next); /* a stopped row keeps feeding its last token */
    unsigned char *stopped = hd_calloc((size_t)b, 1);
    int rc = llama_kv_step(m, c, ids, mask, b, T);
    for (int s = 0; rc == 0 && s < n_new; s++) {
        int running = 0;
        for (int r = 0; r < b; r++) {
            if (stopped[r]) {
                out[(size_t)r * n_new + s] = -1;
                continue;
            }
            int tok = llama_argmax(c->logits + (size_t)r * m->cfg.vocab_size, m->cfg.vocab_size);
            out[(size_t)r * n_new + s] = tok;
            next[r] = tok;
            for (int k = 0; k < n_stop; k++)
                if (tok == stop_ids[k]) stopped[r] = 1;
            running += !stopped[r];
        }
        if (!running) { /* every row has stopped: the rest is -1 */
            for (int r = 0; r < b; r++)
                for (int t = s + 1; t < n_new; t++) out[(size_t)r * n_new + t] = -1;
            break;
        }
        if (s + 1 < n_new) rc = llama_kv_step(m, c, next, NULL, b, 1);
    }
    free(next);
    free(stopped);
    llama_kv_free(c);
    return rc;
}
