/* Frozen layers kept packed, converted one layer at a time (llama_pack.h). */
#include "model/llama_pack.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "base/error.h"
#include "formats/gguf.h"
#include "formats/safetensors.h"
#include "model/llama_load.h"

enum { N_MATS = 7 }; /* wq wk wv wo w_gate w_up w_down, LlamaLayerView's order */

/* One matrix as its file stores it; bytes NULL: kept in fp32 as loaded. */
typedef struct {
    unsigned char *bytes;
    int from_gguf;      /* 1: gt describes bytes, 0: st does */
    GgufTensor gt;
    StTensor st;
    int rope_head_dim;  /* GGUF Q/K: stored in llama.cpp's RoPE row order */
    size_t rows, cols;
} PackedMatrix;

struct LlamaPacked {
    int from, to;
    PackedMatrix *mats;      /* [(to - from) * N_MATS] */
    float *scratch;          /* one layer's seven matrices in fp32 */
    size_t offset[N_MATS];   /* each matrix's place in scratch */
    int scratch_layer;       /* the layer scratch holds, -1 none */
};

static float **layer_mat(LlamaLayerWeights *w, int i)
{
    float **p[N_MATS] = {&w->wq, &w->wk, &w->wv, &w->wo, &w->w_gate, &w->w_up, &w->w_down};
    return p[i];
}

static unsigned char *copy_bytes(const void *src, size_t n)
{
    unsigned char *b = hd_malloc(n ? n : 1);
    memcpy(b, src, n);
    return b;
}

static int pack_gguf(PackedMatrix *mats, const LlamaModel *m, const char *path, int from, int to)
{
    static const char *names[N_MATS] = {"attn_q", "attn_k", "attn_v", "attn_output",
                                        "ffn_gate", "ffn_up", "ffn_down"};
    GgufFile g;
    if (gguf_open(&g, path) != 0) return -1;
    int rc = 0;
    for (int l = from; l < to && rc == 0; l++)
        for (int i = 0; i < N_MATS && rc == 0; i++) {
            char name[96];
            snprintf(name, sizeof name, "blk.%d.%s.weight", l, names[i]);
            const GgufTensor *t = gguf_find_tensor(&g, name);
            if (!t) {
                rc = hd_fail("%s: no tensor '%s' (the file changed since it was loaded?)", path, name);
                break;
            }
            PackedMatrix *p = &mats[(size_t)(l - from) * N_MATS + i];
            p->rows = t->n_dims > 1 ? (size_t)t->ne[1] : 1;
            p->cols = (size_t)t->ne[0];
            if (t->nbytes >= t->numel * sizeof(float)) continue; /* F32: nothing to gain */
            p->from_gguf = 1;
            p->gt = *t;
            p->gt.name = NULL;
            p->bytes = copy_bytes(t->data, t->nbytes);
            p->gt.data = p->bytes;
            p->rope_head_dim = i < 2 ? m->cfg.head_dim : 0;
        }
    gguf_close(&g);
    return rc;
}

static int pack_hf(PackedMatrix *mats, const char *dir, int from, int to)
{
    static const char *names[N_MATS] = {"self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj",
                                        "self_attn.o_proj", "mlp.gate_proj", "mlp.up_proj",
                                        "mlp.down_proj"};
    StCheckpoint ck;
    if (st_checkpoint_open(&ck, dir) != 0) {
        st_checkpoint_close(&ck);
        return -1;
    }
    int rc = 0;
    for (int l = from; l < to && rc == 0; l++)
        for (int i = 0; i < N_MATS && rc == 0; i++) {
            char name[128];
            snprintf(name, sizeof name, "model.layers.%d.%s.weight", l, names[i]);
            const StFile *file = NULL;
            const StTensor *t = st_checkpoint_find(&ck, name, &file);
            if (!t || t->ndim != 2) {
                rc = hd_fail("%s: no 2-d tensor '%s' (the checkpoint changed since it was loaded?)", dir, name);
                break;
            }
            PackedMatrix *p = &mats[(size_t)(l - from) * N_MATS + i];
            p->rows = (size_t)t->shape[0];
            p->cols = (size_t)t->shape[1];
            if (t->nbytes >= t->numel * sizeof(float)) continue; /* F32, F64 */
            p->st = *t;
            p->st.name = NULL;
            p->bytes = copy_bytes(t->data, t->nbytes);
            p->st.data = p->bytes;
        }
    st_checkpoint_close(&ck);
    return rc;
}

static void free_mats(PackedMatrix *mats, size_t n)
{
    for (size_t i = 0; mats && i < n; i++) free(mats[i].bytes);
    free(mats);
}

long long llama_model_pack_layers(LlamaModel *m, const char *path, int from, int to)
{
    if (!m->params || from < 0 || to > m->cfg.n_layers || from >= to)
        return hd_fail("llama_model_pack_layers: no layers [%d, %d) in %s", from, to, m->cfg.model_id);
    if (m->packed) return hd_fail("%s: the layers are packed already", m->cfg.model_id);
    struct stat sb;
    if (stat(path, &sb) != 0) return hd_fail("%s: no such file or directory", path);
    const size_t n = (size_t)(to - from) * N_MATS;
    PackedMatrix *mats = hd_calloc(n, sizeof *mats);
    int rc = S_ISDIR(sb.st_mode) ? pack_hf(mats, path, from, to) : pack_gguf(mats, m, path, from, to);
    /* the file must still be the one the model came from */
    for (size_t i = 0; rc == 0 && i < n; i++) {
        const int l = from + (int)(i / N_MATS);
        const LlamaConfig *c = &m->cfg;
        const size_t d = (size_t)c->hidden_size, q = (size_t)c->n_heads * c->head_dim;
        const size_t kv = (size_t)c->n_kv_heads * c->head_dim, F = (size_t)c->intermediate_size;
        const size_t shape[N_MATS][2] = {{q, d}, {kv, d}, {kv, d}, {d, q}, {F, d}, {F, d}, {d, F}};
        const int k = (int)(i % N_MATS);
        if (mats[i].rows != shape[k][0] || mats[i].cols != shape[k][1])
            rc = hd_fail("%s: layer %d's weights have another shape than the model loaded from it", path, l);
    }
    int any = 0;
    for (size_t i = 0; rc == 0 && i < n; i++) any |= mats[i].bytes != NULL;
    if (rc != 0 || !any) {
        free_mats(mats, n);
        return rc != 0 ? -1 : 0;
    }
    LlamaPacked *pk = hd_calloc(1, sizeof *pk);
    pk->from = from, pk->to = to, pk->mats = mats, pk->scratch_layer = -1;
    size_t floats = 0;
    for (int i = 0; i < N_MATS; i++) pk->offset[i] = floats, floats += mats[i].rows * mats[i].cols;
    pk->scratch = hd_malloc(floats * sizeof(float));
    long long unpacked = 0;
    for (int l = from; l < to; l++) {
        LlamaLayerWeights *w = &m->layers[l];
        if (!w->attn_norm) continue; /* released: stays so */
        for (int i = 0; i < N_MATS; i++) {
            const PackedMatrix *p = &mats[(size_t)(l - from) * N_MATS + i];
            float **v = layer_mat(w, i);
            if (!p->bytes) continue;
            llama_release_pages(*v, *v + p->rows * p->cols);
            unpacked += (long long)(p->rows * p->cols * sizeof(float));
            *v = NULL;
        }
    }
    m->packed = pk;
    return unpacked;
}

int llama_model_layer_packed(const LlamaModel *m, int l)
{
    const LlamaPacked *pk = m->packed;
    /* a released layer has no norms either (llama_model_release_layers) */
    return pk && l >= pk->from && l < pk->to && m->layers[l].attn_norm;
}

/* The loader's conversion of one matrix (llama_load_gguf.c load_plain /
 * load_rope_permuted, llama_load.c st_read_f32), into dst. */
static void unpack(const PackedMatrix *p, float *dst)
{
    if (!p->from_gguf) {
        st_tensor_to_f32(&p->st, dst);
    } else if (p->rope_head_dim) {
        for (size_t r = 0; r < p->rows; r++)
            gguf_tensor_rows_to_f32(&p->gt, gguf_rope_row(r, p->rope_head_dim), 1, dst + r * p->cols);
    } else {
        gguf_tensor_to_f32(&p->gt, dst);
    }
}

LlamaLayerView llama_packed_layer(const LlamaModel *m, int l)
{
    LlamaPacked *pk = m->packed;
    LlamaLayerWeights w = m->layers[l];
    const PackedMatrix *mats = &pk->mats[(size_t)(l - pk->from) * N_MATS];
    if (pk->scratch_layer != l) {
        /* the seven conversions are independent: one thread each */
#pragma omp parallel for schedule(dynamic, 1)
        for (int i = 0; i < N_MATS; i++)
            if (mats[i].bytes) unpack(&mats[i], pk->scratch + pk->offset[i]);
        pk->scratch_layer = l;
    }
    for (int i = 0; i < N_MATS; i++)
        if (mats[i].bytes) *layer_mat(&w, i) = pk->scratch + pk->offset[i];
    LlamaLayerView lv = {w.attn_norm, w.ffn_norm, w.wq, w.wk, w.wv, w.wo, w.w_gate, w.w_up, w.w_down};
    return lv;
}

size_t llama_model_packed_bytes(const LlamaModel *m)
{
    const LlamaPacked *pk = m->packed;
    size_t n = 0;
    for (size_t i = 0; pk && i < (size_t)(pk->to - pk->from) * N_MATS; i++)
        if (pk->mats[i].bytes) n += pk->mats[i].from_gguf ? pk->mats[i].gt.nbytes : pk->mats[i].st.nbytes;
    return n;
}

void llama_model_free_packed(LlamaModel *m)
{
    LlamaPacked *pk = m->packed;
    if (!pk) return;
    free_mats(pk->mats, (size_t)(pk->to - pk->from) * N_MATS);
    free(pk->scratch);
    free(pk);
    m->packed = NULL;
}
