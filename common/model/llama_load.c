/* LlamaModel allocation and the Hugging Face safetensors loader. */
#include "model/llama_load.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/error.h"
#include "model/hf_config.h"
#include "model/llama_pack.h"
#include "formats/safetensors.h"

size_t llama_param_count(const LlamaConfig *c)
{
    size_t d = (size_t)c->hidden_size, q = (size_t)c->n_heads * (size_t)c->head_dim;
    size_t kv = (size_t)c->n_kv_heads * (size_t)c->head_dim, ffn = (size_t)c->intermediate_size;
    size_t V = (size_t)c->vocab_size;
    size_t per_layer = 2 * d + q * d + 2 * kv * d + d * q + 3 * ffn * d;
    return V * d + (size_t)c->n_layers * per_layer + d + (c->tie_word_embeddings ? 0 : V * d);
}

int llama_model_alloc(LlamaModel *m, const LlamaConfig *cfg)
{
    memset(m, 0, sizeof *m);
    if (llama_config_validate(cfg, cfg->model_id) != 0) return -1;
    m->cfg = *cfg;
    m->n_params = llama_param_count(cfg);
    m->params = calloc(m->n_params, sizeof(float));
    if (!m->params)
        return hd_fail("%s: cannot allocate %zu MB for the fp32 weights", cfg->model_id, m->n_params * 4 >> 20);
    m->layers = hd_calloc((size_t)cfg->n_layers, sizeof(LlamaLayerWeights));
    size_t d = (size_t)cfg->hidden_size, q = (size_t)cfg->n_heads * (size_t)cfg->head_dim;
    size_t kv = (size_t)cfg->n_kv_heads * (size_t)cfg->head_dim, ffn = (size_t)cfg->intermediate_size;
    float *p = m->params;
    m->tok_embed = p, p += (size_t)cfg->vocab_size * d;
    for (int l = 0; l < cfg->n_layers; l++) {
        LlamaLayerWeights *w = &m->layers[l];
        w->attn_norm = p, p += d;
        w->wq = p, p += q * d;
        w->wk = p, p += kv * d;
        w->wv = p, p += kv * d;
        w->wo = p, p += d * q;
        w->ffn_norm = p, p += d;
        w->w_gate = p, p += ffn * d;
        w->w_up = p, p += ffn * d;
        w->w_down = p, p += d * ffn;
    }
    m->final_norm = p, p += d;
    if (cfg->tie_word_embeddings) {
        m->lm_head = m->tok_embed;
    } else {
        m->lm_head = p, p += (size_t)cfg->vocab_size * d;
    }
    return 0;
}

/* Drops the whole pages inside [lo, hi) of the parameter buffer.  It is
 * private anonymous memory (calloc), so this is safe: the pages would read
 * back as zeros.  A failure only means the memory stays resident; nothing
 * reads it either way. */
void llama_release_pages(const void *lo_p, const void *hi_p)
{
    const uintptr_t page = (uintptr_t)sysconf(_SC_PAGESIZE);
    uintptr_t lo = ((uintptr_t)lo_p + page - 1) & ~(page - 1), hi = (uintptr_t)hi_p & ~(page - 1);
    if (hi > lo) (void)madvise((void *)lo, hi - lo, MADV_DONTNEED);
}

void llama_model_release_layers(LlamaModel *m, int from, int to)
{
    if (!m->params || from < 0 || to > m->cfg.n_layers || from >= to) return;
    const size_t d = (size_t)m->cfg.hidden_size, ffn = (size_t)m->cfg.intermediate_size;
    /* the layers lie back to back in the one buffer (llama_model_alloc) */
    llama_release_pages(m->layers[from].attn_norm, m->layers[to - 1].w_down + d * ffn);
    memset(&m->layers[from], 0, (size_t)(to - from) * sizeof *m->layers);
}

int llama_model_release_embedding(LlamaModel *m)
{
    if (!m->params || !m->tok_embed || m->tok_embed == m->lm_head) return 0;
    llama_release_pages(m->tok_embed, m->tok_embed + (size_t)m->cfg.vocab_size * m->cfg.hidden_size);
    m->tok_embed = NULL;
    return 1;
}

int llama_model_check_embedding(const LlamaModel *m)
{
    if (!m->tok_embed)
        return hd_fail("%s: the token embedding was released (this tool keeps only the layers "
                       "it runs)",
                       m->cfg.model_id);
    return 0;
}

int llama_model_check_layers(const LlamaModel *m, int from, int to)
{
    for (int l = from; l < to; l++)
        if (!m->layers[l].attn_norm)
            return hd_fail("%s: the weights of layer %d were released (this tool keeps only the "
                           "layers it runs)",
                           m->cfg.model_id, l);
    return 0;
}

void llama_model_free(LlamaModel *m)
{
    llama_model_free_packed(m);
    free(m->params);
    free(m->layers);
    memset(m, 0, sizeof *m);
}

/* ---- Hugging Face directory ---- */

/* dst NULL: only checks that the tensor is there with this shape and a
 * float dtype, reading nothing (the check before any big allocation). */
static int load_hf_tensor(const StCheckpoint *ck, const char *name, int ndim, int64_t rows, int64_t cols, float *dst)
{
    const StFile *file = NULL;
    const StTensor *t = st_checkpoint_find(ck, name, &file);
    if (!t) return hd_fail("%s: no tensor '%s' in the checkpoint", ck->dir, name);
    if (t->dtype != ST_F32 && t->dtype != ST_BF16 && t->dtype != ST_F16 && t->dtype != ST_F64)
        return hd_fail("%s: tensor '%s' has dtype %s, expected a float type", file->path, name, st_dtype_name(t->dtype));
    int64_t shape[2] = {rows, cols};
    if (dst) return st_read_f32(file, name, ndim, shape, dst);
    int same = t->ndim == ndim;
    for (int i = 0; same && i < ndim; i++) same = t->shape[i] == shape[i];
    if (!same) {
        char got[96] = "", want[96] = "";
        for (int i = 0, k = 0; i < t->ndim && k < 80; i++)
            k += snprintf(got + k, sizeof got - (size_t)k, i ? ", %lld" : "%lld", (long long)t->shape[i]);
        for (int i = 0, k = 0; i < ndim; i++)
            k += snprintf(want + k, sizeof want - (size_t)k, i ? ", %lld" : "%lld", (long long)shape[i]);
        return hd_fail("%s: tensor '%s' has shape [%s], but config.json implies [%s]", file->path, name, got, want);
    }
    return 0;
}

/* m NULL: checks every tensor's shape against the config (nothing read). */
static int load_hf_weights(const LlamaConfig *c, LlamaModel *m, const StCheckpoint *ck)
{
    int64_t d = c->hidden_size, q = (int64_t)c->n_heads * c->head_dim, kv = (int64_t)c->n_kv_heads * c->head_dim;
    int64_t ffn = c->intermediate_size, V = c->vocab_size;
    if (load_hf_tensor(ck, "model.embed_tokens.weight", 2, V, d, m ? m->tok_embed : NULL) ||
        load_hf_tensor(ck, "model.norm.weight", 1, d, 0, m ? m->final_norm : NULL))
        return -1;
    if (!c->tie_word_embeddings && load_hf_tensor(ck, "lm_head.weight", 2, V, d, m ? m->lm_head : NULL)) return -1;
    static const LlamaLayerWeights none;
    for (int l = 0; l < c->n_layers; l++) {
        const LlamaLayerWeights *w = m ? &m->layers[l] : &none;
        struct {
            const char *suffix;
            int ndim;
            int64_t rows, cols;
            float *dst;
        } parts[] = {
            {"input_layernorm.weight", 1, d, 0, w->attn_norm},
            {"self_attn.q_proj.weight", 2, q, d, w->wq},
            {"self_attn.k_proj.weight", 2, kv, d, w->wk},
            {"self_attn.v_proj.weight", 2, kv, d, w->wv},
            {"self_attn.o_proj.weight", 2, d, q, w->wo},
            {"post_attention_layernorm.weight", 1, d, 0, w->ffn_norm},
            {"mlp.gate_proj.weight", 2, ffn, d, w->w_gate},
            {"mlp.up_proj.weight", 2, ffn, d, w->w_up},
            {"mlp.down_proj.weight", 2, d, ffn, w->w_down},
        };
        for (size_t k = 0; k < sizeof parts / sizeof parts[0]; k++) {
            char name[128];
            snprintf(name, sizeof name, "model.layers.%d.%s", l, parts[k].suffix);
            if (load_hf_tensor(ck, name, parts[k].ndim, parts[k].rows, parts[k].cols, parts[k].dst)) return -1;
        }
    }
    return 0;
}

int llama_load_hf(LlamaModel *m, const char *dir)
{
    memset(m, 0, sizeof *m);
    LlamaConfig cfg;
    if (hf_config_load(&cfg, dir) != 0) return -1;
    StCheckpoint ck;
    if (st_checkpoint_open(&ck, dir) != 0) {
        st_checkpoint_close(&ck);
        return -1;
    }
    /* Every tensor's shape against the config before the fp32 buffer is
     * allocated: a config that implies more weights than the shards hold
     * (a wrong or edited config.json) fails here, naming the file, rather
     * than after trying to allocate gigabytes. */
    int rc = load_hf_weights(&cfg, NULL, &ck);
    if (rc != 0) hd_fail_prefix("%s/config.json does not match the weights: ", dir);
    if (rc == 0) rc = llama_model_alloc(m, &cfg);
    if (rc == 0) rc = load_hf_weights(&cfg, m, &ck);
    st_checkpoint_close(&ck);
    if (rc != 0) llama_model_free(m);
    return rc;
}

int llama_load(LlamaModel *m, const char *path)
{
    struct stat st;
    if (stat(path, &st) != 0) {
        memset(m, 0, sizeof *m);
        return hd_fail("%s: no such file or directory", path);
    }
    return S_ISDIR(st.st_mode) ? llama_load_hf(m, path) : llama_load_gguf(m, path);
}
