#include "hypernet/train_batch.h"
#include "base/error.h"
#include "stream/msgpack_util.h"
#include "stream/tensor.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

void train_batch_init(TrainBatch *tb, int n_states, int d)
{
    memset(tb, 0, sizeof *tb);
    tb->n_states = n_states;
    tb->d = d;
}

void train_batch_free(TrainBatch *tb)
{
    int *ints[] = {tb->instr_ids, tb->instr_mask, tb->base_ids, tb->base_attn_mask,
                   tb->base_intv_mask, tb->labels, tb->src_intv_mask, tb->is_causal,
                   tb->base_entity_pos, tb->src_entity_pos};
    for (size_t i = 0; i < sizeof ints / sizeof *ints; i++) free(ints[i]);
    free(tb->base_states);
    free(tb->src_states);
    memset(tb, 0, sizeof *tb);
}

typedef struct {
    Tensor instr, base, src, base_h, src_h;
    int64_t prompt_len, base_ent, src_ent;
    int causal;
} Decoded;

static void release(Decoded *x)
{
    tensor_release(&x->instr);
    tensor_release(&x->base);
    tensor_release(&x->src);
    tensor_release(&x->base_h);
    tensor_release(&x->src_h);
}

static int get_int(const msgpack_object *rec, const char *key, int64_t *v)
{
    if (mp_get_int64(mp_map_get(rec, key), v) < 0) return hd_fail("acts record has no integer '%s'", key);
    return 0;
}

static int decode(const TrainBatch *tb, const msgpack_object *rec, Decoded *x)
{
    memset(x, 0, sizeof *x);
    if (tensor_from_record(rec, "instruction_ids", &x->instr) < 0 ||
        tensor_from_record(rec, "base_ids", &x->base) < 0 ||
        tensor_from_record(rec, "source_ids", &x->src) < 0 ||
        tensor_from_record(rec, "base_hidden", &x->base_h) < 0 ||
        tensor_from_record(rec, "source_hidden", &x->src_h) < 0 ||
        get_int(rec, "base_prompt_len", &x->prompt_len) < 0 ||
        get_int(rec, "base_entity_pos", &x->base_ent) < 0 ||
        get_int(rec, "source_entity_pos", &x->src_ent) < 0)
        return -1;
    const msgpack_object *kind = mp_map_get(rec, "kind");
    if (!mp_is_str(kind, "causal") && !mp_is_str(kind, "isolate"))
        return hd_fail("acts record has no kind 'causal' or 'isolate'");
    x->causal = mp_is_str(kind, "causal");
    Tensor *ids[3] = {&x->instr, &x->base, &x->src};
    for (int i = 0; i < 3; i++)
        if (ids[i]->dtype != DTYPE_I32 || ids[i]->ndim != 1 || ids[i]->numel == 0)
            return hd_fail("acts record: token ids must be a non-empty i32 vector");
    int64_t B = x->base.shape[0], S = x->src.shape[0];
    const Tensor *hs[2] = {&x->base_h, &x->src_h};
    const int64_t lens[2] = {B, S};
    for (int i = 0; i < 2; i++) {
        if (hs[i]->ndim != 3 || hs[i]->shape[1] != lens[i] || hs[i]->shape[2] != tb->d)
            return hd_fail("acts record: %s hidden states have shape [%lld, %lld, %lld], expected "
                           "[%d, %lld, %d] for this model", i ? "source" : "base",
                           (long long)hs[i]->shape[0], (long long)hs[i]->shape[1],
                           (long long)hs[i]->shape[2], tb->n_states, (long long)lens[i], tb->d);
        if (hs[i]->shape[0] != tb->n_states)
            return hd_fail("acts record holds %lld hidden states, the hypernetwork needs all %d "
                           "(run cache-acts --layers all)", (long long)hs[i]->shape[0], tb->n_states);
    }
    if (x->prompt_len < 1 || x->prompt_len >= B)
        return hd_fail("acts record: base_prompt_len %lld leaves no label token", (long long)x->prompt_len);
    if (x->base_ent < 0 || x->base_ent >= x->prompt_len || x->src_ent < 0 || x->src_ent >= S)
        return hd_fail("acts record: entity position out of range");
    return 0;
}

static void *grow(void *p, size_t n, size_t size) { return hd_realloc(p, (n ? n : 1) * size); }

static void reserve(TrainBatch *tb, int b, int E, int B, int S)
{
    if (b <= tb->cap_b && E <= tb->cap_E && B <= tb->cap_B && S <= tb->cap_S) return;
    tb->cap_b = b > tb->cap_b ? b : tb->cap_b;
    tb->cap_E = E > tb->cap_E ? E : tb->cap_E;
    tb->cap_B = B > tb->cap_B ? B : tb->cap_B;
    tb->cap_S = S > tb->cap_S ? S : tb->cap_S;
    size_t nb = (size_t)tb->cap_b, nE = nb * tb->cap_E, nB = nb * tb->cap_B, nS = nb * tb->cap_S;
    tb->instr_ids = grow(tb->instr_ids, nE, sizeof(int));
    tb->instr_mask = grow(tb->instr_mask, nE, sizeof(int));
    tb->base_ids = grow(tb->base_ids, nB, sizeof(int));
    tb->base_attn_mask = grow(tb->base_attn_mask, nB, sizeof(int));
    tb->base_intv_mask = grow(tb->base_intv_mask, nB, sizeof(int));
    tb->labels = grow(tb->labels, nB, sizeof(int));
    tb->src_intv_mask = grow(tb->src_intv_mask, nS, sizeof(int));
    tb->is_causal = grow(tb->is_causal, nb, sizeof(int));
    tb->base_entity_pos = grow(tb->base_entity_pos, nb, sizeof(int));
    tb->src_entity_pos = grow(tb->src_entity_pos, nb, sizeof(int));
    tb->base_states = grow(tb->base_states, nB * tb->n_states * tb->d, sizeof(float));
    tb->src_states = grow(tb->src_states, nS * tb->n_states * tb->d, sizeof(float));
}

/* [nL, T, d] of the record into rows pad.. of [T_batch, nL, d].  Each
 * (token, layer) row is one span conversion; the rows are independent, so
 * threads share them.  At Llama-3-8B's shapes a batch holds 130 M values;
 * converted a value at a time, a SmolLM2 batch took 38 ms of the host's
 * work in a step that the GPU spends mostly waiting on the host for. */
static int transpose_states(const Tensor *h, float *dst, int pad, int n_states, int d)
{
    const int64_t T = h->shape[1];
    const size_t row = (size_t)n_states * d;
    const long n_rows = (long)T * n_states;
    int bad = 0;
#pragma omp parallel for schedule(static) reduction(| : bad) if (n_rows * d > 65536)
    for (long k = 0; k < n_rows; k++) {
        const int64_t t = k / n_states;
        const int l = (int)(k % n_states);
        float *out = dst + (size_t)(pad + t) * row + (size_t)l * d;
        tensor_span_to_f32(h, ((size_t)l * T + (size_t)t) * d, (size_t)d, out);
        for (int j = 0; j < d; j++) bad |= !isfinite(out[j]);
    }
    if (bad) return hd_fail("acts record: non-finite hidden state");
    return 0;
}

static void left_pad_ids(int *dst, int *mask, const Tensor *ids, int T)
{
    int n = (int)ids->numel, pad = T - n;
    for (int t = 0; t < T; t++) {
        dst[t] = t < pad ? 0 : (int)tensor_get_f64(ids, (size_t)(t - pad));
        if (mask) mask[t] = t >= pad;
    }
}

int train_batch_lengths(const msgpack_object *rec, int len[3])
{
    static const char *const fields[3] = {"instruction_ids", "base_ids", "source_ids"};
    for (int i = 0; i < 3; i++) {
        Tensor t;
        if (tensor_from_record(rec, fields[i], &t) < 0) return -1;
        len[i] = (int)t.numel;
        tensor_release(&t);
    }
    return 0;
}

int train_batch_fill(TrainBatch *tb, const msgpack_object *const *recs, int b, int *bad_index)
{
    Decoded *x = hd_calloc((size_t)b, sizeof *x);
    int E = tb->pad_to[0] > 1 ? tb->pad_to[0] : 1, B = tb->pad_to[1] > 1 ? tb->pad_to[1] : 1,
        S = tb->pad_to[2] > 1 ? tb->pad_to[2] : 1, rc = 0;
    for (int i = 0; i < b && rc == 0; i++) {
        if (decode(tb, recs[i], &x[i]) < 0) {
            *bad_index = i;
            rc = -1;
            break;
        }
        if ((int)x[i].instr.numel > E) E = (int)x[i].instr.numel;
        if ((int)x[i].base.numel > B) B = (int)x[i].base.numel;
        if ((int)x[i].src.numel > S) S = (int)x[i].src.numel;
    }
    if (rc == 0) {
        reserve(tb, b, E, B, S);
        size_t srow = (size_t)tb->n_states * tb->d;
        memset(tb->base_states, 0, (size_t)b * B * srow * sizeof(float));
        memset(tb->src_states, 0, (size_t)b * S * srow * sizeof(float));
        tb->n_label_tokens = 0;
        for (int i = 0; i < b && rc == 0; i++) {
            int bpad = B - (int)x[i].base.numel, spad = S - (int)x[i].src.numel;
            left_pad_ids(tb->instr_ids + (size_t)i * E, tb->instr_mask + (size_t)i * E, &x[i].instr, E);
            left_pad_ids(tb->base_ids + (size_t)i * B, tb->base_attn_mask + (size_t)i * B, &x[i].base, B);
            for (int t = 0; t < B; t++) {
                int pos = t - bpad;   /* position in the record's sequence */
                tb->base_intv_mask[i * B + t] = pos >= 0 && pos <= x[i].base_ent;
                tb->labels[i * B + t] = pos >= x[i].prompt_len ? tb->base_ids[i * B + t] : -100;
                tb->n_label_tokens += pos >= x[i].prompt_len;
            }
            for (int t = 0; t < S; t++) {
                int pos = t - spad;
                tb->src_intv_mask[i * S + t] = pos >= 0 && pos <= x[i].src_ent;
            }
            tb->is_causal[i] = x[i].causal;
            tb->base_entity_pos[i] = bpad + (int)x[i].base_ent;
            tb->src_entity_pos[i] = spad + (int)x[i].src_ent;
            if (transpose_states(&x[i].base_h, tb->base_states + (size_t)i * B * srow, bpad,
                                 tb->n_states, tb->d) < 0 ||
                transpose_states(&x[i].src_h, tb->src_states + (size_t)i * S * srow, spad,
                                 tb->n_states, tb->d) < 0) {
                *bad_index = i;
                rc = -1;
            }
        }
    }
    for (int i = 0; i < b; i++) release(&x[i]);
    free(x);
    if (rc < 0) return -1;
    HnBatch *h = &tb->hb;
    memset(h, 0, sizeof *h);
    h->b = b;
    h->E = E;
    h->B = B;
    h->S = S;
    h->instr_ids = tb->instr_ids;
    h->instr_mask = tb->instr_mask;
    h->base_attn_mask = tb->base_attn_mask;
    h->base_intv_mask = tb->base_intv_mask;
    h->src_intv_mask = tb->src_intv_mask;
    h->labels = tb->labels;
    h->is_causal = tb->is_causal;
    h->base_states = tb->base_states;
    h->src_states = tb->src_states;
    h->src_ys = NULL;
    h->base_entity_pos = tb->base_entity_pos;
    h->src_entity_pos = tb->src_entity_pos;
    return 0;
}
