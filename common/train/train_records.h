/* The records of hd-train's log (hd-train(1)): a `step` record per
 * optimizer step and an `eval` record per selection mode and evaluation,
 * read back by hd-plot (train_log.h). */
#ifndef HD_TRAIN_RECORDS_H
#define HD_TRAIN_RECORDS_H

#include "hypernet/hn_eval.h"
#include "hypernet/hypernet.h"
#include "stream/records.h"

/* b examples padded to shape[3] (instruction, base, source lengths), the
 * step's wall time secs, of which input_secs went to assembling the batch
 * and preparing and uploading its inputs.  -1 when the writer fails. */
int train_record_step(RecordWriter *log, long step, long epoch, const HnLoss *loss, float sp_w,
                      double lr, double gnorm, int b, const int shape[3], double secs,
                      double input_secs);

/* Cause, Isolate and Disentangle of mode at step; a rate of a kind without
 * examples is nil, never 0.  -1 when the writer fails. */
int train_record_eval(RecordWriter *log, long step, const char *mode, const EvalCounts *c,
                      long eval_tokens);

#endif
