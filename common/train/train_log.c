#include "train/train_log.h"
#include "base/error.h"
#include "stream/msgpack_util.h"
#include "stream/records.h"
#include "plot/svg.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static void points_add(LogPoints *s, double step, double a, double b)
{
    if (s->n == s->cap) {
        s->cap = s->cap ? 2 * s->cap : 64;
        s->p = hd_realloc(s->p, (size_t)s->cap * sizeof *s->p);
    }
    s->p[s->n] = (LogPoint){step, a, b, s->n};
    s->n++;
}

static int point_order(const void *x, const void *y)
{
    const LogPoint *a = x, *b = y;
    if (a->step != b->step) return a->step < b->step ? -1 : 1;
    return a->order < b->order ? -1 : a->order > b->order;
}

/* A number under key (int or float; nil is NaN, a gap in the plot). */
static int number_field(const msgpack_object *rec, const char *what, const char *key, double *out)
{
    const msgpack_object *v = mp_map_get(rec, key);
    if (!v) return hd_fail("%s record has no '%s'", what, key);
    switch (v->type) {
    case MSGPACK_OBJECT_FLOAT32:
    case MSGPACK_OBJECT_FLOAT64: *out = v->via.f64; return 0;
    case MSGPACK_OBJECT_POSITIVE_INTEGER: *out = (double)v->via.u64; return 0;
    case MSGPACK_OBJECT_NEGATIVE_INTEGER: *out = (double)v->via.i64; return 0;
    case MSGPACK_OBJECT_NIL: *out = NAN; return 0;
    default: return hd_fail("'%s' is not a number", key);
    }
}

static int read_record(const msgpack_object *rec, int is_step, TrainLog *log)
{
    const char *what = is_step ? "step" : "eval";
    int64_t step;
    if (mp_get_int64(mp_map_get(rec, "step"), &step) < 0) return hd_fail("%s record has no integer 'step'", what);
    double a, b;
    if (is_step) {
        if (number_field(rec, what, "loss", &a) < 0 || number_field(rec, what, "pred_loss", &b) < 0) return -1;
        points_add(&log->steps, (double)step, a, b);
        return 0;
    }
    const msgpack_object *mode = mp_map_get(rec, "mode");
    if (!mode || mode->type != MSGPACK_OBJECT_STR) return hd_fail("eval record has no string 'mode'");
    if (number_field(rec, what, "cause", &a) < 0 || number_field(rec, what, "isolate", &b) < 0) return -1;
    char *name = visible_text(mode->via.str.ptr, mode->via.str.size, 40);
    int m = 0;
    while (m < log->n_modes && strcmp(log->evals[m].mode, name) != 0) m++;
    if (m == log->n_modes) {
        log->evals = hd_realloc(log->evals, (size_t)(m + 1) * sizeof *log->evals);
        log->evals[m] = (LogEvalMode){.mode = name};
        log->n_modes++;
    } else {
        free(name);
    }
    points_add(&log->evals[m].points, (double)step, a, b);
    return 0;
}

int train_log_read(const char *path, TrainLog *log)
{
    memset(log, 0, sizeof *log);
    RecordReader *r = record_reader_open(path);
    if (!r) return -1;
    log->name = hd_strdup(record_reader_path(r));
    const msgpack_object *rec;
    int rc;
    while ((rc = record_reader_next(r, &rec)) == 1) {
        const msgpack_object *t = mp_map_get(rec, "t");
        int is_step = mp_is_str(t, "step");
        if (!is_step && !mp_is_str(t, "eval")) continue;
        if (read_record(rec, is_step, log) < 0) {
            hd_fail_prefix("%s: record %lld: ", record_reader_path(r), record_reader_index(r));
            rc = -1;
            break;
        }
    }
    record_reader_close(r);
    if (rc < 0) {
        train_log_free(log);
        return -1;
    }
    if (log->steps.n > 1) qsort(log->steps.p, (size_t)log->steps.n, sizeof(LogPoint), point_order);
    for (int m = 0; m < log->n_modes; m++)
        if (log->evals[m].points.n > 1)
            qsort(log->evals[m].points.p, (size_t)log->evals[m].points.n, sizeof(LogPoint), point_order);
    return 0;
}

void train_log_free(TrainLog *log)
{
    free(log->name);
    free(log->steps.p);
    for (int m = 0; m < log->n_modes; m++) {
        free(log->evals[m].mode);
        free(log->evals[m].points.p);
    }
    free(log->evals);
    memset(log, 0, sizeof *log);
}
