#include "score/score_record.h"
#include "base/error.h"
#include "stream/map_writer.h"
#include "stream/msgpack_util.h"
#include "stream/tensor.h"
#include "tokenizer/tokenizer.h"

#include <stdlib.h>
#include <string.h>

/* The bytes each token stands for: a byte-level token may hold part of a
 * character (b'\xc2'), which goes out as a bin, not as a str that is not
 * UTF-8 (mp_pack_text). */
static void pack_token_strings(msgpack_packer *pk, const Tokenizer *tok, const Tensor *ids)
{
    msgpack_pack_array(pk, ids->numel);
    for (size_t i = 0; i < ids->numel; i++) {
        size_t len = 0;
        const char *s = tokenizer_token_bytes(tok, (int32_t)tensor_get_f64(ids, i), &len);
        mp_pack_text(pk, s ? s : "", s ? len : 0);
    }
}

/* Copies a record's field (or nil) into the score record; a str that is
 * not UTF-8 becomes a bin, as everywhere in a score record. */
static void pack_copy(MapWriter *m, const msgpack_object *rec, const char *key)
{
    msgpack_packer *pk = map_key(m, key);
    const msgpack_object *v = mp_map_get(rec, key);
    if (v && v->type == MSGPACK_OBJECT_STR) mp_pack_text(pk, v->via.str.ptr, v->via.str.size);
    else if (v) msgpack_pack_object(pk, *v);
    else msgpack_pack_nil(pk);
}

/* The ids of a tensor as a msgpack array of ints. */
static void pack_ids(msgpack_packer *pk, const Tensor *ids)
{
    msgpack_pack_array(pk, ids->numel);
    for (size_t i = 0; i < ids->numel; i++) msgpack_pack_int64(pk, (int64_t)tensor_get_f64(ids, i));
}

int score_record_write(RecordWriter *out, const HnSession *s, const HnView *v,
                       const ScoreJudged *j, const char *mode, const char *method,
                       const char *rule, long eval_tokens)
{
    const msgpack_object *rec = j->rec;
    /* every tensor decoded before the first byte is packed, so that a bad
     * one leaves no half record behind */
    Tensor base_ids = {0}, src_ids = {0}, label_ids = {0}, base_pred = {0};
    const int has_base_pred = mp_map_get(rec, "base_pred_ids") != NULL;
    if (tensor_from_record(rec, "base_ids", &base_ids) < 0 ||
        tensor_from_record(rec, "source_ids", &src_ids) < 0 ||
        tensor_from_record(rec, "label_ids", &label_ids) < 0 ||
        (has_base_pred && tensor_from_record(rec, "base_pred_ids", &base_pred) < 0)) {
        tensor_release(&base_ids);
        tensor_release(&src_ids);
        tensor_release(&label_ids);
        return -1;
    }
    const HnBatch *h = &s->tb.hb;
    const int B = h->B, S = h->S, nb = (int)base_ids.numel, ns = (int)src_ids.numel;
    const int bpad = B - nb, spad = S - ns;
    const float *W = v->W_used + (size_t)j->row * (S + 1) * B;

    MapWriter m;
    map_begin(&m, record_writer_packer(out));
    map_str(&m, "t", "score");
    static const char *const copied[] = {"id", "domain", "split", "kind", "target_attribute",
                                         "queried_attribute", "base_template", "label",
                                         "base_pred_correct"};
    for (size_t i = 0; i < sizeof copied / sizeof *copied; i++) pack_copy(&m, rec, copied[i]);
    map_str(&m, "method", method);
    map_str(&m, "mode", mode);
    map_str(&m, "rule", rule);
    map_int64(&m, "eval_tokens", eval_tokens);
    char *pred_text = tokenizer_decode(s->target.tok, j->pred, (size_t)j->n_pred, 0, NULL);
    /* decoded as HF decodes (invalid bytes become U+FFFD): UTF-8, checked anyway */
    mp_pack_text(map_key(&m, "prediction"), pred_text ? pred_text : "", pred_text ? strlen(pred_text) : 0);
    free(pred_text);
    pack_ids(map_key(&m, "label_ids"), &label_ids);
    msgpack_packer *pk = map_key(&m, "pred_ids");
    msgpack_pack_array(pk, (size_t)j->n_pred);
    for (int i = 0; i < j->n_pred; i++) msgpack_pack_int(pk, j->pred[i]);
    /* the unintervened model's tokens, so that --summarize can judge it on
     * the first N label tokens too (--also-first) */
    pk = map_key(&m, "base_pred_ids");
    if (has_base_pred) pack_ids(pk, &base_pred);
    else msgpack_pack_nil(pk);
    map_bool(&m, "correct", j->correct);
    pack_token_strings(map_key(&m, "base_tokens"), s->target.tok, &base_ids);
    pack_token_strings(map_key(&m, "source_tokens"), s->target.tok, &src_ids);
    msgpack_pack_int(map_key(&m, "base_entity_pos"), h->base_entity_pos[j->row] - bpad);
    msgpack_pack_int(map_key(&m, "source_entity_pos"), h->src_entity_pos[j->row] - spad);
    /* the selection used, without the batch's padding: rows = the real
     * source tokens then "self", columns = the real base tokens */
    float *w = hd_malloc((size_t)(ns + 1) * nb * sizeof *w);
    for (int r = 0; r <= ns; r++) {
        int src_row = r < ns ? spad + r : S;
        memcpy(w + (size_t)r * nb, W + (size_t)src_row * B + bpad, (size_t)nb * sizeof *w);
    }
    int64_t shape[2] = {ns + 1, nb};
    tensor_pack(map_key(&m, "weights"), DTYPE_F32, 2, shape, w, 0);
    /* chosen: the (source, base) pairs where a source row carries the most
     * weight of its base column */
    int n_chosen = 0;
    int *chosen = hd_malloc((size_t)nb * 2 * sizeof *chosen);
    for (int t = 0; t < nb; t++) {
        int best = ns;
        for (int r = 0; r < ns; r++)
            if (w[(size_t)r * nb + t] > w[(size_t)best * nb + t]) best = r;
        if (best < ns) {
            chosen[2 * n_chosen] = best;
            chosen[2 * n_chosen + 1] = t;
            n_chosen++;
        }
    }
    pk = map_key(&m, "chosen");
    msgpack_pack_array(pk, (size_t)n_chosen);
    for (int i = 0; i < n_chosen; i++) {
        msgpack_pack_array(pk, 2);
        msgpack_pack_int(pk, chosen[2 * i]);
        msgpack_pack_int(pk, chosen[2 * i + 1]);
    }
    free(chosen);
    free(w);
    tensor_release(&base_ids);
    tensor_release(&src_ids);
    tensor_release(&label_ids);
    tensor_release(&base_pred);
    if (map_end(&m) < 0) return hd_fail("cannot pack a score record");
    return record_writer_end_record(out);
}
