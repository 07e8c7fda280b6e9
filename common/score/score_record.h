/* The `score` record hd-score writes for one example and selection mode:
 * the acts record's identity fields, the prediction and label token ids,
 * the unintervened model's tokens, the tokens in their printable form and
 * the selection matrix actually used, without the batch's padding.
 * score_example.h reads it back for display. */
#ifndef HD_SCORE_RECORD_H
#define HD_SCORE_RECORD_H

#include "hypernet/hn_session.h"
#include "stream/records.h"

typedef struct {
    const msgpack_object *rec; /* the acts record */
    int row;                   /* its row in the batch */
    int correct;
    const int *pred;           /* predicted ids at its label positions */
    int n_pred;
} ScoreJudged;

/* Writes the score record of j, judged in session s with the selection of
 * view v.  -1 (hd_fail) when a token tensor of the acts record is
 * malformed (nothing is written then) or the writer fails. */
int score_record_write(RecordWriter *out, const HnSession *s, const HnView *v,
                       const ScoreJudged *j, const char *mode, const char *method,
                       const char *rule, long eval_tokens);

#endif
