/* A batch for the hypernetwork (common/hypernet/hypernet.h) assembled from acts
 * records (cache-acts): instruction, base and source left-padded to the
 * longest of the batch, the target's cached hidden states transposed to
 * [b, T, Lt+1, d] in fp32, and the masks of hyperdas(7) 2.2:
 *   base positions G may write: BOS up to and including the last entity token
 *   source positions G may read: the same for the source
 *   labels: the label tokens (after base_prompt_len), -100 elsewhere.
 * The acts records must hold every hidden state (cache-acts --layers all). */
#ifndef HD_TRAIN_BATCH_H
#define HD_TRAIN_BATCH_H

#include <msgpack.h>

#include "hypernet/hypernet.h"

typedef struct {
    HnBatch hb;                /* views into the buffers below */
    int cap_b, cap_E, cap_B, cap_S;
    int *instr_ids, *instr_mask;
    int *base_ids, *base_attn_mask, *base_intv_mask, *labels;
    int *src_intv_mask, *is_causal, *base_entity_pos, *src_entity_pos;
    float *base_states, *src_states;
    int n_states, d;           /* Lt + 1 and the target's width */
    int n_label_tokens;
    /* Pads instruction, base and source to at least these lengths (0: the
     * longest record's).  A rank's share of a data-parallel batch takes the
     * whole batch's lengths: the selection head's pair positions count the
     * padded base columns (position_head.h), so padding is part of the
     * maths and the share must be padded as the whole batch would be. */
    int pad_to[3];
} TrainBatch;

void train_batch_init(TrainBatch *tb, int n_states, int d);
void train_batch_free(TrainBatch *tb);

/* Fills the batch from recs[0..b).  -1 with a message naming the record
 * (index into recs) and the field when a record does not fit: missing
 * fields, hidden states of another model (shape), missing layers, NaN. */
int train_batch_fill(TrainBatch *tb, const msgpack_object *const *recs, int b, int *bad_index);

/* The instruction, base and source lengths of one acts record (what
 * train_batch_fill would pad to); -1 with a message when they are missing. */
int train_batch_lengths(const msgpack_object *rec, int len[3]);

#endif
