/* The read loop of the model-side tools (hd-filter, cache-acts): pair
 * records are copied and tokenised and handed to the tool a window at a
 * time, so that it can batch them and run each distinct sequence once;
 * any other record type is written through unchanged, in stream order. */
#ifndef HD_PAIR_WINDOW_H
#define HD_PAIR_WINDOW_H

#include "stream/msgpack_util.h"
#include "acts/pair_tokens.h"
#include "stream/record_input.h"
#include "stream/records.h"
#include "model/target_model.h"

typedef struct {
    MpCopy copy;
    const msgpack_object *rec;   /* the pair record (a copy, valid during the call) */
    PairTokens tokens;
} PairItem;

/* Gets each full window and the last partial one; it writes its output
 * records itself.  The items are freed when it returns. */
typedef void (*PairWindowFn)(void *ctx, PairItem *items, int n);

/* Reads every record of `in`.  -1 with a message naming the file and
 * record on bad input; the windows already handed over stay written. */
int pair_window_run(RecordInput *in, const TargetModel *t, RecordWriter *out, int window,
                    PairWindowFn fn, void *ctx);

#endif
