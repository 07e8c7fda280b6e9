#include "train/train_records.h"
#include "base/error.h"
#include "stream/map_writer.h"

#include <math.h>

/* A rate, or nil when it has no examples (NAN). */
static void pack_rate(MapWriter *m, const char *key, double v)
{
    msgpack_packer *pk = map_key(m, key);
    if (isnan(v)) msgpack_pack_nil(pk);
    else msgpack_pack_double(pk, v);
}

int train_record_step(RecordWriter *log, long step, long epoch, const HnLoss *loss, float sp_w,
                      double lr, double gnorm, int b, const int shape[3], double secs,
                      double input_secs)
{
    const long tokens = (long)b * (shape[0] + shape[1] + shape[2]);
    MapWriter m;
    map_begin(&m, record_writer_packer(log));
    map_str(&m, "t", "step");
    map_int64(&m, "step", step);
    map_int64(&m, "epoch", epoch);
    map_double(&m, "loss", loss->total);
    map_double(&m, "pred_loss", loss->pred);
    map_double(&m, "sparsity_loss", loss->sparsity);
    map_double(&m, "sparsity_weight", sp_w);
    map_double(&m, "lr", lr);
    map_double(&m, "grad_norm", gnorm);
    msgpack_pack_int(map_key(&m, "examples"), b);
    /* the padded lengths: instruction, base, source (what the step cost depends on) */
    msgpack_packer *pk = map_key(&m, "shape");
    msgpack_pack_array(pk, 3);
    for (int i = 0; i < 3; i++) msgpack_pack_int(pk, shape[i]);
    msgpack_pack_int(map_key(&m, "label_tokens"), loss->n_label_tokens);
    map_double(&m, "tokens_per_s", secs > 0 ? tokens / secs : 0);
    map_double(&m, "seconds", secs);
    map_double(&m, "input_seconds", input_secs);
    if (map_end(&m) < 0) return hd_fail("cannot pack a step record");
    return record_writer_end_record(log);
}

int train_record_eval(RecordWriter *log, long step, const char *mode, const EvalCounts *c,
                      long eval_tokens)
{
    MapWriter m;
    map_begin(&m, record_writer_packer(log));
    map_str(&m, "t", "eval");
    map_int64(&m, "step", step);
    map_str(&m, "mode", mode);
    map_int64(&m, "n_causal", c->n_causal);
    map_int64(&m, "n_isolate", c->n_isolate);
    pack_rate(&m, "cause", eval_cause(c));
    pack_rate(&m, "isolate", eval_isolate(c));
    pack_rate(&m, "disentangle", eval_disentangle(c));
    map_double(&m, "loss", c->n_batches ? c->loss_sum / c->n_batches : 0);
    map_int64(&m, "eval_tokens", eval_tokens);
    if (map_end(&m) < 0) return hd_fail("cannot pack an eval record");
    return record_writer_end_record(log);
}
