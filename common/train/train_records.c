#include "train/train_records.h"
#include "stream/msgpack_util.h"

#include <math.h>

/* A rate, or nil when it has no examples (NAN). */
static void pack_rate(msgpack_packer *pk, double v)
{
    if (isnan(v)) msgpack_pack_nil(pk);
    else msgpack_pack_double(pk, v);
}

int train_record_step(RecordWriter *log, long step, long epoch, const HnLoss *loss, float sp_w,
                      double lr, double gnorm, int b, const int shape[3], double secs)
{
    const long tokens = (long)b * (shape[0] + shape[1] + shape[2]);
    msgpack_packer *pk = record_writer_packer(log);
    msgpack_pack_map(pk, 14);
    mp_pack_str(pk, "t"); mp_pack_str(pk, "step");
    mp_pack_str(pk, "step"); msgpack_pack_int64(pk, step);
    mp_pack_str(pk, "epoch"); msgpack_pack_int64(pk, epoch);
    mp_pack_str(pk, "loss"); msgpack_pack_double(pk, loss->total);
    mp_pack_str(pk, "pred_loss"); msgpack_pack_double(pk, loss->pred);
    mp_pack_str(pk, "sparsity_loss"); msgpack_pack_double(pk, loss->sparsity);
    mp_pack_str(pk, "sparsity_weight"); msgpack_pack_double(pk, sp_w);
    mp_pack_str(pk, "lr"); msgpack_pack_double(pk, lr);
    mp_pack_str(pk, "grad_norm"); msgpack_pack_double(pk, gnorm);
    mp_pack_str(pk, "examples"); msgpack_pack_int(pk, b);
    /* the padded lengths: instruction, base, source (what the step cost depends on) */
    mp_pack_str(pk, "shape");
    msgpack_pack_array(pk, 3);
    for (int i = 0; i < 3; i++) msgpack_pack_int(pk, shape[i]);
    mp_pack_str(pk, "label_tokens"); msgpack_pack_int(pk, loss->n_label_tokens);
    mp_pack_str(pk, "tokens_per_s"); msgpack_pack_double(pk, secs > 0 ? tokens / secs : 0);
    mp_pack_str(pk, "seconds"); msgpack_pack_double(pk, secs);
    return record_writer_end_record(log);
}

int train_record_eval(RecordWriter *log, long step, const char *mode, const EvalCounts *c,
                      long eval_tokens)
{
    msgpack_packer *pk = record_writer_packer(log);
    msgpack_pack_map(pk, 10);
    mp_pack_str(pk, "t"); mp_pack_str(pk, "eval");
    mp_pack_str(pk, "step"); msgpack_pack_int64(pk, step);
    mp_pack_str(pk, "mode"); mp_pack_str(pk, mode);
    mp_pack_str(pk, "n_causal"); msgpack_pack_int64(pk, c->n_causal);
    mp_pack_str(pk, "n_isolate"); msgpack_pack_int64(pk, c->n_isolate);
    mp_pack_str(pk, "cause"); pack_rate(pk, eval_cause(c));
    mp_pack_str(pk, "isolate"); pack_rate(pk, eval_isolate(c));
    mp_pack_str(pk, "disentangle"); pack_rate(pk, eval_disentangle(c));
    mp_pack_str(pk, "loss"); msgpack_pack_double(pk, c->n_batches ? c->loss_sum / c->n_batches : 0);
    mp_pack_str(pk, "eval_tokens"); msgpack_pack_int64(pk, eval_tokens);
    return record_writer_end_record(log);
}
