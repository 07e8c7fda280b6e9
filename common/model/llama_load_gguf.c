/* The GGUF loader: llama.* metadata -> LlamaConfig, blk.N.* tensors ->
 * Hugging Face-oriented fp32 views.
 *
 * Why the Q/K rows move: llama.cpp's converter permutes the rows of attn_q
 * and attn_k so that its RoPE can rotate adjacent pairs (2i, 2i+1); Hugging
 * Face rotates element i with i + hd/2.  Moving the rows back at load time
 * lets one rotate-half kernel serve both sources. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/error.h"
#include "model/hf_config.h"
#include "model/llama_load.h"

size_t gguf_rope_row(size_t hf_row, int head_dim)
{
    size_t hd = (size_t)head_dim, half = hd / 2;
    size_t head = hf_row / hd, r = hf_row % hd;
    size_t j = r / half, i = r % half;
    return head * hd + 2 * i + j;
}

static int get_int_key(const GgufFile *g, const char *key, int required, int fallback, int *out)
{
    int64_t v;
    if (!gguf_find_kv(g, key) && !required) {
        *out = fallback;
        return 0;
    }
    if (gguf_get_int(g, key, &v) != 0) return -1;
    if (v < 0 || v > (1 << 30)) return hd_fail("%s: metadata '%s' = %lld is out of range", g->path, key, (long long)v);
    *out = (int)v;
    return 0;
}

static int get_float_key(const GgufFile *g, const char *key, double fallback, float *out)
{
    double v = fallback;
    if (gguf_find_kv(g, key) && gguf_get_float(g, key, &v) != 0) return -1;
    *out = (float)v;
    return 0;
}

/* llama.cpp multiplies each RoPE wavelength by rope_freqs[j]; the Llama 3.1
 * converter writes those factors instead of the rope_scaling parameters.
 * Recognise the published parameter sets by recomputing their factors. */
static int match_llama3_rope_freqs(LlamaConfig *c, const GgufFile *g, const GgufTensor *t)
{
    int half = c->head_dim / 2;
    if (t->n_dims != 1 || t->ne[0] != (uint64_t)half || t->type != GGML_F32)
        return hd_fail("%s: rope_freqs.weight is not an F32 vector of %d", g->path, half);
    float *have = hd_malloc((size_t)half * sizeof(float));
    gguf_tensor_to_f32(t, have);
    static const float candidates[][4] = {{8, 1, 4, 8192}, {32, 1, 4, 8192}, {16, 1, 4, 8192}};
    int found = 0;
    for (size_t k = 0; k < sizeof candidates / sizeof candidates[0] && !found; k++) {
        LlamaConfig trial = *c;
        trial.rope_scaling = ROPE_SCALING_LLAMA3;
        trial.rope_factor = candidates[k][0];
        trial.rope_low_freq_factor = candidates[k][1];
        trial.rope_high_freq_factor = candidates[k][2];
        trial.rope_original_max_position = (int)candidates[k][3];
        LlamaConfig plain = *c;
        plain.rope_scaling = ROPE_SCALING_NONE;
        float scaled[1024], base[1024];
        if (half > 1024) break;
        llama_config_rope_inv_freq(&trial, scaled);
        llama_config_rope_inv_freq(&plain, base);
        found = 1;
        for (int j = 0; j < half && found; j++) {
            double factor = base[j] / scaled[j];
            found = fabs(factor - have[j]) <= 1e-3 * fabs(factor);
        }
        if (found) *c = trial;
    }
    free(have);
    if (!found) return hd_fail("%s: rope_freqs.weight matches no known llama3 rope_scaling parameters", g->path);
    return 0;
}

static int read_config(LlamaConfig *c, const GgufFile *g)
{
    memset(c, 0, sizeof *c);
    char *arch = NULL;
    if (gguf_get_string(g, "general.architecture", &arch) != 0) return -1;
    int is_llama = strcmp(arch, "llama") == 0;
    if (!is_llama) hd_fail("%s: general.architecture is '%s', not 'llama'", g->path, arch);
    free(arch);
    if (!is_llama) return -1;
    if (get_int_key(g, "llama.block_count", 1, 0, &c->n_layers) ||
        get_int_key(g, "llama.embedding_length", 1, 0, &c->hidden_size) ||
        get_int_key(g, "llama.feed_forward_length", 1, 0, &c->intermediate_size) ||
        get_int_key(g, "llama.attention.head_count", 1, 0, &c->n_heads) ||
        get_int_key(g, "llama.context_length", 0, 2048, &c->max_position_embeddings))
        return -1;
    if (c->n_heads == 0) return hd_fail("%s: llama.attention.head_count is 0", g->path);
    int rope_dim;
    if (get_int_key(g, "llama.attention.head_count_kv", 0, c->n_heads, &c->n_kv_heads) ||
        get_int_key(g, "llama.attention.key_length", 0, c->hidden_size / c->n_heads, &c->head_dim) ||
        get_int_key(g, "llama.rope.dimension_count", 0, c->head_dim, &rope_dim) ||
        get_float_key(g, "llama.rope.freq_base", 10000.0, &c->rope_theta) ||
        get_float_key(g, "llama.attention.layer_norm_rms_epsilon", 1e-5, &c->rms_norm_eps))
        return -1;
    if (rope_dim != c->head_dim)
        return hd_fail("%s: llama.rope.dimension_count %d != head_dim %d (partial RoPE is not supported)", g->path,
                       rope_dim, c->head_dim);
    const GgufKV *st = gguf_find_kv(g, "llama.rope.scaling.type");
    if (st && st->type == GGUF_STRING && !(st->str.len == 4 && memcmp(st->str.ptr, "none", 4) == 0))
        return hd_fail("%s: llama.rope.scaling.type '%.*s' is not supported", g->path, (int)st->str.len, st->str.ptr);

    const GgufTensor *embed = gguf_find_tensor(g, "token_embd.weight");
    if (!embed) return hd_fail("%s: no tensor 'token_embd.weight'", g->path);
    if (get_int_key(g, "llama.vocab_size", 0, (int)(embed->ne[1] < (1u << 30) ? embed->ne[1] : 0), &c->vocab_size))
        return -1;
    c->tie_word_embeddings = gguf_find_tensor(g, "output.weight") == NULL;

    int bos, eos, eot;
    if (get_int_key(g, "tokenizer.ggml.bos_token_id", 0, -1, &bos) ||
        get_int_key(g, "tokenizer.ggml.eos_token_id", 0, -1, &eos) ||
        get_int_key(g, "tokenizer.ggml.eot_token_id", 0, -1, &eot))
        return -1;
    c->bos_token_id = bos;
    c->eos_token_id = eos;
    if (eos >= 0) c->eos_token_ids[c->n_eos_token_ids++] = eos;
    if (eot >= 0 && eot != eos) c->eos_token_ids[c->n_eos_token_ids++] = eot;
    if (llama_config_validate(c, g->path) != 0) return -1;
    const GgufTensor *rf = gguf_find_tensor(g, "rope_freqs.weight");
    if (rf && match_llama3_rope_freqs(c, g, rf) != 0) return -1;
    return 0;
}

int llama_config_from_gguf(LlamaConfig *cfg, const GgufFile *g)
{
    if (read_config(cfg, g) != 0) return -1;
    const char *slash = strrchr(g->path, '/');
    char id[256];
    snprintf(id, sizeof id, "%s", slash ? slash + 1 : g->path);
    size_t n = strlen(id);
    if (n > 5 && strcmp(id + n - 5, ".gguf") == 0) id[n - 5] = 0;
    llama_config_finish(cfg, id);
    return 0;
}

/* Checks a tensor is ne = {cols, rows} (a vector when rows == 0), the
 * shape the llama.* metadata implies. */
static const GgufTensor *find_shaped(const GgufFile *g, const char *name, uint64_t cols, uint64_t rows)
{
    const GgufTensor *t = gguf_find_tensor(g, name);
    if (!t) {
        hd_fail("%s: no tensor '%s'", g->path, name);
        return NULL;
    }
    int want_dims = rows ? 2 : 1;
    if (t->n_dims != want_dims || t->ne[0] != cols || (rows && t->ne[1] != rows)) {
        hd_fail("%s: tensor '%s' has ne [%llu, %llu], but the llama.* metadata implies [%llu, %llu] "
                "(ne[0] innermost)",
                g->path, name, (unsigned long long)t->ne[0], (unsigned long long)t->ne[1],
                (unsigned long long)cols, (unsigned long long)(rows ? rows : 1));
        return NULL;
    }
    return t;
}

/* dst NULL: only the shape check. */
static int load_plain(const GgufFile *g, const char *name, uint64_t cols, uint64_t rows, float *dst)
{
    const GgufTensor *t = find_shaped(g, name, cols, rows);
    if (!t) return -1;
    if (dst) gguf_tensor_to_f32(t, dst);
    return 0;
}

/* A Q or K projection: row by row, each into its Hugging Face place (dst
 * NULL: only the shape check). */
static int load_rope_permuted(const GgufFile *g, const char *name, uint64_t cols, uint64_t rows, int head_dim, float *dst)
{
    const GgufTensor *t = find_shaped(g, name, cols, rows);
    if (!t) return -1;
    for (size_t r = 0; dst && r < rows; r++) gguf_tensor_rows_to_f32(t, gguf_rope_row(r, head_dim), 1, dst + r * cols);
    return 0;
}

/* m NULL: checks every tensor's shape against the metadata (nothing read). */
static int load_gguf_weights(const LlamaConfig *c, LlamaModel *m, const GgufFile *g)
{
    uint64_t d = (uint64_t)c->hidden_size, q = (uint64_t)c->n_heads * (uint64_t)c->head_dim;
    uint64_t kv = (uint64_t)c->n_kv_heads * (uint64_t)c->head_dim, ffn = (uint64_t)c->intermediate_size;
    uint64_t V = (uint64_t)c->vocab_size;
    if (load_plain(g, "token_embd.weight", d, V, m ? m->tok_embed : NULL) ||
        load_plain(g, "output_norm.weight", d, 0, m ? m->final_norm : NULL))
        return -1;
    if (!c->tie_word_embeddings && load_plain(g, "output.weight", d, V, m ? m->lm_head : NULL)) return -1;
    static const LlamaLayerWeights none;
    char name[96];
#define BLK(suffix) (snprintf(name, sizeof name, "blk.%d." suffix, l), name)
    for (int l = 0; l < c->n_layers; l++) {
        const LlamaLayerWeights *w = m ? &m->layers[l] : &none;
        if (load_plain(g, BLK("attn_norm.weight"), d, 0, w->attn_norm) ||
            load_rope_permuted(g, BLK("attn_q.weight"), d, q, c->head_dim, w->wq) ||
            load_rope_permuted(g, BLK("attn_k.weight"), d, kv, c->head_dim, w->wk) ||
            load_plain(g, BLK("attn_v.weight"), d, kv, w->wv) ||
            load_plain(g, BLK("attn_output.weight"), q, d, w->wo) ||
            load_plain(g, BLK("ffn_norm.weight"), d, 0, w->ffn_norm) ||
            load_plain(g, BLK("ffn_gate.weight"), d, ffn, w->w_gate) ||
            load_plain(g, BLK("ffn_up.weight"), d, ffn, w->w_up) ||
            load_plain(g, BLK("ffn_down.weight"), ffn, d, w->w_down))
            return -1;
    }
#undef BLK
    return 0;
}

int llama_load_gguf(LlamaModel *m, const char *path)
{
    memset(m, 0, sizeof *m);
    GgufFile g;
    LlamaConfig cfg;
    int rc = gguf_open(&g, path);
    if (rc == 0) rc = llama_config_from_gguf(&cfg, &g);
    /* Every tensor's shape against the metadata before the fp32 buffer is
     * allocated (as llama_load_hf does with config.json): metadata that
     * implies more weights than the file holds (an edited or mislabelled
     * GGUF) fails here, naming the file and tensor, rather than after
     * trying to allocate gigabytes. */
    if (rc == 0) rc = load_gguf_weights(&cfg, NULL, &g);
    if (rc == 0) rc = llama_model_alloc(m, &cfg);
    if (rc == 0) {
        rc = load_gguf_weights(&cfg, m, &g);
        if (rc != 0) llama_model_free(m);
    }
    gguf_close(&g);
    return rc;
}
