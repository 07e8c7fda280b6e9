#include "plot/plot_learning.h"
#include "base/error.h"
#include "stream/msgpack_util.h"
#include "plot/plot_curve.h"
#include "stream/records.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { METRIC_DISENTANGLE, METRIC_CAUSE, METRIC_ISOLATE, METRIC_FLIP, N_METRICS };
static const char *const metric_key[N_METRICS] = {"disentangle", "cause", "isolate", "cause_changed"};
static const char *const metric_title[N_METRICS] = {
    "Disentangle (mean of Cause and Isolate)", "Cause", "Isolate",
    "Flip rate (Cause where the unintervened model is wrong)"};

typedef struct {
    double x, v[N_METRICS], lo[N_METRICS], hi[N_METRICS];
} Point;

typedef struct {
    char *name;          /* method/mode (rule) */
    Point *points;
    int n;
} Series;

struct LearningCurve {
    char *split;
    Series *series;
    int n_series;
};

LearningCurve *learning_curve_new(const char *split)
{
    LearningCurve *lc = hd_calloc(1, sizeof *lc);
    lc->split = hd_strdup(split);
    return lc;
}

void learning_curve_free(LearningCurve *lc)
{
    if (!lc) return;
    for (int i = 0; i < lc->n_series; i++) {
        free(lc->series[i].name);
        free(lc->series[i].points);
    }
    free(lc->series);
    free(lc->split);
    free(lc);
}

static Series *series_get(LearningCurve *lc, const char *name)
{
    for (int i = 0; i < lc->n_series; i++)
        if (strcmp(lc->series[i].name, name) == 0) return &lc->series[i];
    lc->series = hd_realloc(lc->series, (size_t)(lc->n_series + 1) * sizeof *lc->series);
    Series *s = &lc->series[lc->n_series++];
    memset(s, 0, sizeof *s);
    s->name = hd_strdup(name);
    return s;
}

/* A number (any msgpack numeric type) or NAN for nil and absent. */
static double number(const msgpack_object *o)
{
    if (!o) return NAN;
    switch (o->type) {
    case MSGPACK_OBJECT_FLOAT32:
    case MSGPACK_OBJECT_FLOAT64: return o->via.f64;
    case MSGPACK_OBJECT_POSITIVE_INTEGER: return (double)o->via.u64;
    case MSGPACK_OBJECT_NEGATIVE_INTEGER: return (double)o->via.i64;
    default: return NAN;
    }
}

static const msgpack_object *overall_row(const msgpack_object *rows)
{
    if (!rows || rows->type != MSGPACK_OBJECT_ARRAY) return NULL;
    for (uint32_t i = 0; i < rows->via.array.size; i++) {
        const msgpack_object *r = &rows->via.array.ptr[i];
        if (mp_is_str(mp_map_get(r, "domain"), "(all)") && mp_is_str(mp_map_get(r, "attribute"), "(mean)")) return r;
    }
    return NULL;
}

static void copy_name(char *out, size_t size, const msgpack_object *o)
{
    if (o && o->type == MSGPACK_OBJECT_STR) snprintf(out, size, "%.*s", (int)o->via.str.size, o->via.str.ptr);
    else snprintf(out, size, "-");
}

int learning_curve_add_file(LearningCurve *lc, double x, const char *path)
{
    RecordReader *r = record_reader_open(path);
    if (!r) return -1;
    const msgpack_object *rec;
    int rc, found = 0;
    while ((rc = record_reader_next(r, &rec)) == 1) {
        if (!mp_is_str(mp_map_get(rec, "t"), "summary") || !mp_is_str(mp_map_get(rec, "split"), lc->split)) continue;
        const msgpack_object *row = overall_row(mp_map_get(rec, "rows"));
        if (!row) {
            rc = hd_fail("%s: record %lld: summary without an overall ((all), (mean)) row", record_reader_path(r),
                         record_reader_index(r));
            break;
        }
        char method[64], mode[64], rule[64], name[256];
        copy_name(method, sizeof method, mp_map_get(rec, "method"));
        copy_name(mode, sizeof mode, mp_map_get(rec, "mode"));
        copy_name(rule, sizeof rule, mp_map_get(rec, "rule"));
        snprintf(name, sizeof name, "%s/%s (%s)", method, mode, rule);
        Series *s = series_get(lc, name);
        s->points = hd_realloc(s->points, (size_t)(s->n + 1) * sizeof *s->points);
        Point *p = &s->points[s->n++];
        p->x = x;
        for (int m = 0; m < N_METRICS; m++) {
            char key[64];
            p->v[m] = number(mp_map_get(row, metric_key[m]));
            snprintf(key, sizeof key, "%s_ci", metric_key[m]);
            const msgpack_object *ci = mp_map_get(row, key);
            int have = ci && ci->type == MSGPACK_OBJECT_ARRAY && ci->via.array.size == 2;
            p->lo[m] = have ? number(&ci->via.array.ptr[0]) : NAN;
            p->hi[m] = have ? number(&ci->via.array.ptr[1]) : NAN;
        }
        found++;
    }
    if (rc == 0 && !found)
        rc = hd_fail("%s: no summary record of split '%s' (hd-score output or hd-score --summarize)",
                     record_reader_path(r), lc->split);
    record_reader_close(r);
    return rc < 0 ? -1 : 0;
}

static int by_x(const void *a, const void *b)
{
    double x = ((const Point *)a)->x, y = ((const Point *)b)->x;
    return (x > y) - (x < y);
}

int learning_curve_write_svg(const LearningCurve *lc, const char *path, const char *title, const char *x_label)
{
    if (lc->n_series == 0) return hd_fail("no summary to plot");
    int ns = lc->n_series;
    /* per panel: the series, then its interval bounds (no legend entry) */
    CurveSeries *cs = hd_calloc((size_t)N_METRICS * ns * 3, sizeof *cs);
    int total = 0;
    for (int i = 0; i < ns; i++) total += lc->series[i].n;
    double *xs = hd_malloc((size_t)(total ? total : 1) * sizeof *xs);
    double *vals = hd_malloc((size_t)(total ? total : 1) * N_METRICS * 3 * sizeof *vals);
    CurvePanel panels[N_METRICS];
    int off = 0;
    for (int i = 0; i < ns; i++) {
        Series *s = &lc->series[i];
        qsort(s->points, (size_t)s->n, sizeof *s->points, by_x);
        for (int k = 0; k < s->n; k++) xs[off + k] = s->points[k].x;
        for (int m = 0; m < N_METRICS; m++)
            for (int b = 0; b < 3; b++) {
                double *y = vals + ((size_t)(m * 3 + b) * total + off);
                for (int k = 0; k < s->n; k++) {
                    const Point *p = &s->points[k];
                    y[k] = 100.0 * (b == 0 ? p->v[m] : b == 1 ? p->lo[m] : p->hi[m]);
                }
                CurveSeries *c = &cs[(m * ns + i) * 3 + b];
                c->name = b == 0 ? s->name : NULL;
                c->x = xs + off;
                c->y = y;
                c->n = s->n;
                c->colour = i;
                c->dashed = b > 0;
                c->markers = b == 0;
                c->opacity = b > 0 ? 0.45 : 0;
            }
        off += s->n;
    }
    for (int m = 0; m < N_METRICS; m++)
        panels[m] = (CurvePanel){.title = metric_title[m], .y_label = "%", .series = &cs[m * ns * 3],
                                 .n_series = ns * 3, .fixed_y = 1, .y_min = 0, .y_max = 100};
    int rc = curve_write_svg(path, title, x_label, panels, N_METRICS);
    free(cs);
    free(xs);
    free(vals);
    return rc;
}
