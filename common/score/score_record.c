#include "score/score_record.h"
#include "base/error.h"
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
static void pack_copy(msgpack_packer *pk, const msgpack_object *rec, const char *key)
{
    mp_pack_str(pk, key);
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

    msgpack_packer *pk = record_writer_packer(out);
    msgpack_pack_map(pk, 25);
    mp_pack_str(pk, "t"); mp_pack_str(pk, "score");
    static const char *const copied[] = {"id", "domain", "split", "kind", "target_attribute",
                                         "queried_attribute", "base_template", "label",
                                         "base_pred_correct"};
    for (int i = 0; i < 9; i++) pack_copy(pk, rec, copied[i]);
    mp_pack_str(pk, "method"); mp_pack_str(pk, method);
    mp_pack_str(pk, "mode"); mp_pack_str(pk, mode);
    mp_pack_str(pk, "rule"); mp_pack_str(pk, rule);
    mp_pack_str(pk, "eval_tokens"); msgpack_pack_int64(pk, eval_tokens);
    char *pred_text = tokenizer_decode(s->target.tok, j->pred, (size_t)j->n_pred, 0, NULL);
    /* decoded as HF decodes (invalid bytes become U+FFFD): UTF-8, checked anyway */
    mp_pack_str(pk, "prediction"); mp_pack_text(pk, pred_text ? pred_text : "", pred_text ? strlen(pred_text) : 0);
    free(pred_text);
    mp_pack_str(pk, "label_ids");
    pack_ids(pk, &label_ids);
    mp_pack_str(pk, "pred_ids");
    msgpack_pack_array(pk, (size_t)j->n_pred);
    for (int i = 0; i < j->n_pred; i++) msgpack_pack_int(pk, j->pred[i]);
    /* the unintervened model's tokens, so that --summarize can judge it on
     * the first N label tokens too (--also-first) */
    mp_pack_str(pk, "base_pred_ids");
    if (has_base_pred) pack_ids(pk, &base_pred);
    else msgpack_pack_nil(pk);
    mp_pack_str(pk, "correct");
    if (j->correct) msgpack_pack_true(pk);
    else msgpack_pack_false(pk);
    mp_pack_str(pk, "base_tokens"); pack_token_strings(pk, s->target.tok, &base_ids);
    mp_pack_str(pk, "source_tokens"); pack_token_strings(pk, s->target.tok, &src_ids);
    mp_pack_str(pk, "base_entity_pos"); msgpack_pack_int(pk, h->base_entity_pos[j->row] - bpad);
    mp_pack_str(pk, "source_entity_pos"); msgpack_pack_int(pk, h->src_entity_pos[j->row] - spad);
    /* the selection used, without the batch's padding: rows = the real
     * source tokens then "self", columns = the real base tokens */
    float *w = hd_malloc((size_t)(ns + 1) * nb * sizeof *w);
    for (int r = 0; r <= ns; r++) {
        int src_row = r < ns ? spad + r : S;
        memcpy(w + (size_t)r * nb, W + (size_t)src_row * B + bpad, (size_t)nb * sizeof *w);
    }
    int64_t shape[2] = {ns + 1, nb};
    mp_pack_str(pk, "weights");
    tensor_pack(pk, DTYPE_F32, 2, shape, w, 0);
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
    mp_pack_str(pk, "chosen");
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
    return record_writer_end_record(out);
}
