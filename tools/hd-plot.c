/* hd-plot: pictures of what hyperdas did, as SVG files for a browser.
 *
 *   hd-plot --heatmaps DIR [SCORES...]   selection weights of hd-score records
 *   hd-plot --curve FILE.svg [LOGS...]   loss and evaluation curves of hd-train logs
 *   hd-plot --learning-curve FILE.svg SIZE=SCORES...   scores against training size
 *
 * Reads stdin when no file (or "-") is given; gzip input is detected.  The
 * whole input is read and checked before anything is written, so bad input
 * leaves no new file behind; every file is written atomically. */
#include "plot/aligned_mean.h"
#include "base/cli.h"
#include "base/error.h"
#include "stream/msgpack_util.h"
#include "base/outfile.h"
#include "plot/plot_curve.h"
#include "plot/plot_heatmap.h"
#include "plot/plot_learning.h"
#include "stream/records.h"
#include "score/score_example.h"
#include "plot/svg.h"
#include "train/train_log.h"

#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static void usage(void)
{
    printf(
        "Usage: hd-plot --heatmaps DIR [options] [SCORES...]\n"
        "       hd-plot --curve FILE.svg [options] [LOGS...]\n"
        "       hd-plot --learning-curve FILE.svg [options] SIZE=SCORES...\n"
        "Draw SVG pictures of hyperdas streams.  FILE '-' or none is stdin; gzip is\n"
        "detected.\n"
        "\n"
        "  --heatmaps DIR  from hd-score 'score' records: DIR/ID.MODE.svg, the selection\n"
        "                  weights of one example (rows: source tokens and (self),\n"
        "                  columns: base tokens); DIR/mean.ATTRIBUTE.MODE.svg, the mean\n"
        "                  over all examples aligned on the entity's last token; and\n"
        "                  DIR/index.html linking them all\n"
        "  --max N         at most N per-example heatmaps (default 50; the means use\n"
        "                  every record)\n"
        "  --mode M        only records of selection mode M (e.g. soft)\n"
        "  --curve FILE    from hd-train logs: loss and pred_loss against step, and\n"
        "                  cause and isolate of each 'eval' mode in a second panel;\n"
        "                  several logs are overlaid, named by their file names\n"
        "  --smooth N      moving average over N steps of the loss curves (default 1:\n"
        "                  none); the raw curve stays, faint\n"
        "  --learning-curve FILE\n"
        "                  from hd-score summaries (score files or --summarize output),\n"
        "                  each argument SIZE=FILE with the training-set size of its\n"
        "                  runs: Disentangle, Cause, Isolate and the flip rate of the\n"
        "                  overall row against SIZE, one line per method/mode (rule),\n"
        "                  95%% intervals dashed where the summaries have them\n"
        "  --split S       the summaries' split for --learning-curve (default test)\n"
        "  --x-label L     x axis label for --learning-curve (default 'training pairs')\n"
        "  -h, --help      this text\n"
        "      --version   version\n");
}

typedef struct {
    const char *heatmaps_dir, *curve_path, *learning_path, *mode, *split, *x_label;
    long long max_examples, smooth;
} Options;

static char *path_join(const char *dir, const char *name)
{
    size_t n = strlen(dir) + strlen(name) + 2;
    char *p = hd_malloc(n);
    snprintf(p, n, "%s/%s", dir, name);
    return p;
}

/* A file-name-safe form: letters, digits, '_' and '-' kept, everything
 * else (including '.', so the parts of "ID.MODE.svg" never run together)
 * becomes '_', one per character. */
static void sanitise(const char *s, char *out, size_t size)
{
    size_t k = 0;
    for (; *s && k + 1 < size; s++) {
        unsigned char c = (unsigned char)*s;
        if ((c & 0xc0) == 0x80) continue;   /* continuation byte: already replaced */
        int keep = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '-';
        out[k++] = keep ? (char)c : '_';
    }
    if (k == 0) out[k++] = '_';
    out[k] = 0;
}

/* ------------------------------------------------------------ heatmaps */

typedef struct {
    char *attribute, *mode;
    AlignedMean mean;
    char *file;
} MeanGroup;

typedef struct {
    ScoreExample ex;
    char *file;
} Shown;

typedef struct {
    MeanGroup *groups;
    int n_groups;
    Shown *shown;
    int n_shown;
    long long n_records;
} HeatmapInput;

static MeanGroup *group_for(HeatmapInput *in, const char *attribute, const char *mode)
{
    for (int i = 0; i < in->n_groups; i++)
        if (strcmp(in->groups[i].attribute, attribute) == 0 && strcmp(in->groups[i].mode, mode) == 0)
            return &in->groups[i];
    in->groups = hd_realloc(in->groups, (size_t)(in->n_groups + 1) * sizeof *in->groups);
    MeanGroup *g = &in->groups[in->n_groups++];
    g->attribute = hd_strdup(attribute);
    g->mode = hd_strdup(mode);
    g->file = NULL;
    aligned_mean_init(&g->mean);
    return g;
}

static void read_scores(int nfiles, char **files, const Options *o, HeatmapInput *in)
{
    for (int i = 0; i < nfiles; i++) {
        RecordReader *r = record_reader_open(files[i]);
        if (!r) hd_die("%s", hd_last_error());
        const msgpack_object *rec;
        int rc;
        while ((rc = record_reader_next(r, &rec)) == 1) {
            if (!mp_is_str(mp_map_get(rec, "t"), "score")) continue;   /* header, end, summary, ... */
            ScoreExample ex;
            if (score_example_parse(rec, &ex) < 0)
                hd_die("%s: record %lld: %s", record_reader_path(r), record_reader_index(r), hd_last_error());
            if (o->mode && strcmp(ex.mode, o->mode) != 0) {
                score_example_free(&ex);
                continue;
            }
            in->n_records++;
            MeanGroup *g = group_for(in, ex.attribute, ex.mode);
            aligned_mean_add(&g->mean, ex.weights, ex.S, ex.B, ex.source_entity, ex.base_entity);
            if (in->n_shown < o->max_examples) {
                in->shown = hd_realloc(in->shown, (size_t)(in->n_shown + 1) * sizeof *in->shown);
                in->shown[in->n_shown].ex = ex;
                in->shown[in->n_shown].file = NULL;
                in->n_shown++;
            } else {
                score_example_free(&ex);
            }
        }
        if (rc < 0) hd_die("%s", hd_last_error());
        record_reader_close(r);
    }
}

/* "ID.MODE.svg", with "+2", "+3", ... after the id when two examples would
 * share a name ('+' is never part of a sanitised id). */
static char *example_file_name(const HeatmapInput *in, int upto, const ScoreExample *ex)
{
    char id[128], mode[64], name[256];
    sanitise(ex->id, id, sizeof id);
    sanitise(ex->mode, mode, sizeof mode);
    for (int copy = 1;; copy++) {
        if (copy == 1) snprintf(name, sizeof name, "%s.%s.svg", id, mode);
        else snprintf(name, sizeof name, "%s+%d.%s.svg", id, copy, mode);
        int taken = 0;
        for (int i = 0; i < upto && !taken; i++) taken = strcmp(in->shown[i].file, name) == 0;
        if (!taken) return hd_strdup(name);
    }
}

static void write_example(const char *dir, Shown *sh)
{
    char *path = path_join(dir, sh->file);
    if (score_example_svg(&sh->ex, path) < 0) hd_die("%s", hd_last_error());
    free(path);
}

/* "e-3", "e", "e+4": an offset from the entity's last token. */
static char *offset_label(int offset)
{
    char buf[24];
    if (offset == 0) snprintf(buf, sizeof buf, "e");
    else snprintf(buf, sizeof buf, "e%+d", offset);
    return hd_strdup(buf);
}

static void write_mean(const char *dir, MeanGroup *g)
{
    const AlignedMean *m = &g->mean;
    int rows = aligned_mean_rows(m) + 1, cols = aligned_mean_cols(m);
    double *values = hd_malloc((size_t)rows * cols * sizeof *values);
    aligned_mean_result(m, values);
    char **row_labels = hd_malloc((size_t)rows * sizeof *row_labels);
    char **col_labels = hd_malloc((size_t)cols * sizeof *col_labels);
    for (int r = 0; r < rows - 1; r++) row_labels[r] = offset_label(m->row_lo + r);
    row_labels[rows - 1] = hd_strdup("(self)");
    for (int c = 0; c < cols; c++) col_labels[c] = offset_label(m->col_lo + c);
    char line1[512];
    snprintf(line1, sizeof line1, "mean of %ld examples: %s, mode %s", m->n_examples, g->attribute, g->mode);
    Heatmap h = {.rows = rows, .cols = cols, .values = values, .counts = m->count, .row_labels = row_labels,
                 .col_labels = col_labels, .mark_row = rows > 1 ? -m->row_lo : -1, .mark_col = -m->col_lo,
                 .mark_note = "entity's last token (e)", .separate_last_row = 1,
                 .title = {line1, "aligned on the entity's last token; each cell is the mean over the examples that have it",
                           NULL},
                 .row_axis = "source offset", .col_axis = "base offset"};
    char *path = path_join(dir, g->file);
    if (heatmap_write_svg(&h, path) < 0) hd_die("%s", hd_last_error());
    free(path);
    for (int i = 0; i < rows; i++) free(row_labels[i]);
    for (int i = 0; i < cols; i++) free(col_labels[i]);
    free(row_labels);
    free(col_labels);
    free(values);
}

static int group_order(const void *a, const void *b)
{
    const MeanGroup *x = a, *y = b;
    int c = strcmp(x->attribute, y->attribute);
    return c ? c : strcmp(x->mode, y->mode);
}

static void write_index(const char *dir, const HeatmapInput *in, const Options *o)
{
    char *path = path_join(dir, "index.html");
    OutFile out;
    if (outfile_open(&out, path, 0) < 0) hd_die("%s", hd_last_error());
    FILE *f = fdopen(dup(out.fd), "w");
    if (!f) hd_die("%s: cannot write", path);
    fputs("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\"/>\n"
          "<title>hd-plot: selection weights</title>\n"
          "<style>body{font-family:sans-serif;margin:2em;max-width:80em}"
          "img{max-width:100%;border:1px solid #ccc}li{margin:2px 0}.no{color:#b00}.yes{color:#070}</style>\n"
          "</head>\n<body>\n<h1>Selection weights</h1>\n", f);
    fprintf(f, "<p>%lld score records", in->n_records);
    if (o->mode) {
        fputs(" of mode ", f);
        xml_escape_str(f, o->mode);
    }
    fprintf(f, "; %d per-example heatmaps (at most %lld).  Rows: source tokens and (self), "
               "columns: base tokens; the entity's last token is outlined.</p>\n", in->n_shown, o->max_examples);
    for (int i = 0; i < in->n_groups; i++) {
        const MeanGroup *g = &in->groups[i];
        int first = i == 0 || strcmp(in->groups[i - 1].attribute, g->attribute) != 0;
        int last = i + 1 == in->n_groups || strcmp(in->groups[i + 1].attribute, g->attribute) != 0;
        if (first) {
            fputs("<h2>", f);
            xml_escape_str(f, g->attribute);
            fputs("</h2>\n", f);
        }
        fputs("<h3>Mean, mode ", f);
        xml_escape_str(f, g->mode);
        fprintf(f, " (n = %ld)</h3>\n<p><a href=\"", g->mean.n_examples);
        xml_escape_str(f, g->file);
        fputs("\"><img src=\"", f);
        xml_escape_str(f, g->file);
        fputs("\" alt=\"mean heatmap\"/></a></p>\n", f);
        if (!last) continue;
        int any = 0;
        for (int k = 0; k < in->n_shown; k++) {
            const ScoreExample *e = &in->shown[k].ex;
            if (strcmp(e->attribute, g->attribute) != 0) continue;
            if (!any) fputs("<h3>Examples</h3>\n<ul>\n", f);
            any = 1;
            fputs("<li><a href=\"", f);
            xml_escape_str(f, in->shown[k].file);
            fputs("\">", f);
            xml_escape_str(f, e->id);
            fputs("</a> ", f);
            xml_escape_str(f, e->mode);
            fputs(", ", f);
            xml_escape_str(f, e->kind);
            fputs(": label ", f);
            xml_escape_str(f, e->label);
            fputs(", prediction ", f);
            xml_escape_str(f, e->prediction);
            fprintf(f, " <span class=\"%s\">%s</span></li>\n", e->correct == 1 ? "yes" : "no",
                    e->correct < 0 ? "?" : e->correct ? "correct" : "wrong");
        }
        if (any) fputs("</ul>\n", f);
    }
    fputs("</body>\n</html>\n", f);
    if (ferror(f) | (fclose(f) != 0)) hd_die("%s: write error", path);
    if (outfile_commit(&out) < 0) hd_die("%s", hd_last_error());
    free(path);
}

static void make_dir(const char *dir)
{
    if (mkdir(dir, 0777) == 0 || errno == EEXIST) {
        struct stat st;
        if (stat(dir, &st) == 0 && S_ISDIR(st.st_mode)) return;
        hd_die("%s: not a directory", dir);
    }
    hd_die("%s: cannot create: %s", dir, strerror(errno));
}

static void heatmaps(int nfiles, char **files, const Options *o)
{
    HeatmapInput in = {0};
    read_scores(nfiles, files, o, &in);
    if (in.n_records == 0) {
        if (o->mode) hd_die("no score records of mode '%s' in the input", o->mode);
        hd_die("no score records in the input");
    }
    make_dir(o->heatmaps_dir);
    for (int i = 0; i < in.n_shown; i++) {
        in.shown[i].file = example_file_name(&in, i, &in.shown[i].ex);
        write_example(o->heatmaps_dir, &in.shown[i]);
    }
    qsort(in.groups, (size_t)in.n_groups, sizeof *in.groups, group_order);
    for (int i = 0; i < in.n_groups; i++) {
        char attribute[128], mode[64], name[256];
        sanitise(in.groups[i].attribute, attribute, sizeof attribute);
        sanitise(in.groups[i].mode, mode, sizeof mode);
        /* two groups may sanitise alike ("a b" and "a_b"): number the later ones */
        snprintf(name, sizeof name, "mean.%s.%s.svg", attribute, mode);
        for (int k = 0, copy = 1; k < i; k++)
            if (strcmp(in.groups[k].file, name) == 0) {
                snprintf(name, sizeof name, "mean.%s+%d.%s.svg", attribute, ++copy, mode);
                k = -1;
            }
        in.groups[i].file = hd_strdup(name);
        write_mean(o->heatmaps_dir, &in.groups[i]);
    }
    write_index(o->heatmaps_dir, &in, o);
    for (int i = 0; i < in.n_shown; i++) {
        score_example_free(&in.shown[i].ex);
        free(in.shown[i].file);
    }
    for (int i = 0; i < in.n_groups; i++) {
        aligned_mean_free(&in.groups[i].mean);
        free(in.groups[i].attribute);
        free(in.groups[i].mode);
        free(in.groups[i].file);
    }
    free(in.shown);
    free(in.groups);
}

/* ------------------------------------------------------------ curves */

/* Trailing moving average over the last `window` points (the finite ones). */
static void smooth(const double *y, int n, int window, double *out)
{
    for (int i = 0; i < n; i++) {
        double sum = 0;
        int k = 0;
        for (int j = i - window + 1 < 0 ? 0 : i - window + 1; j <= i; j++)
            if (isfinite(y[j])) { sum += y[j]; k++; }
        out[i] = isfinite(y[i]) && k ? sum / k : NAN;
    }
}

/* Every array the series point into, freed together at the end. */
typedef struct {
    void **items;
    int n;
} Pool;

static void *pool_keep(Pool *p, void *item)
{
    p->items = hd_realloc(p->items, (size_t)(p->n + 1) * sizeof *p->items);
    return p->items[p->n++] = item;
}

static double *pool_array(Pool *p, int n)
{
    return pool_keep(p, hd_malloc((size_t)(n ? n : 1) * sizeof(double)));
}

static char *series_name(Pool *names, int n_runs, const char *run, const char *what)
{
    size_t len = strlen(run) + strlen(what) + 4;
    char *s = hd_malloc(len);
    if (n_runs > 1) snprintf(s, len, "%s: %s", run, what);
    else snprintf(s, len, "%s", what);
    return pool_keep(names, s);
}

static void curve(int nfiles, char **files, const Options *o)
{
    TrainLog *runs = hd_calloc((size_t)nfiles, sizeof *runs);
    int any_steps = 0, n_eval_series = 0;
    for (int i = 0; i < nfiles; i++) {
        if (train_log_read(files[i], &runs[i]) < 0) hd_die("%s", hd_last_error());
        any_steps |= runs[i].steps.n > 0;
        n_eval_series += runs[i].n_modes;
    }
    if (!any_steps && !n_eval_series) hd_die("no 'step' or 'eval' records in the input");
    Pool pool = {0};
    CurveSeries *loss = hd_calloc((size_t)nfiles * 4, sizeof *loss);
    CurveSeries *eval = hd_calloc((size_t)n_eval_series * 2 + 1, sizeof *eval);
    int n_loss = 0, n_eval = 0, colour = 0;
    for (int i = 0; i < nfiles; i++) {
        const LogPoints *s = &runs[i].steps;
        if (s->n == 0) continue;
        double *x = pool_array(&pool, s->n), *l = pool_array(&pool, s->n), *p = pool_array(&pool, s->n);
        for (int k = 0; k < s->n; k++) { x[k] = s->p[k].step; l[k] = s->p[k].a; p[k] = s->p[k].b; }
        if (o->smooth > 1) {
            /* the raw curves stay visible behind the smoothed ones */
            loss[n_loss++] = (CurveSeries){.x = x, .y = l, .n = s->n, .colour = i, .opacity = 0.25};
            loss[n_loss++] = (CurveSeries){.x = x, .y = p, .n = s->n, .colour = i, .dashed = 1, .opacity = 0.25};
            double *ls = pool_array(&pool, s->n), *ps = pool_array(&pool, s->n);
            smooth(l, s->n, (int)o->smooth, ls);
            smooth(p, s->n, (int)o->smooth, ps);
            l = ls;
            p = ps;
        }
        loss[n_loss++] = (CurveSeries){.name = series_name(&pool, nfiles, runs[i].name, "loss"), .x = x, .y = l,
                                       .n = s->n, .colour = i};
        loss[n_loss++] = (CurveSeries){.name = series_name(&pool, nfiles, runs[i].name, "pred_loss"), .x = x,
                                       .y = p, .n = s->n, .colour = i, .dashed = 1};
    }
    for (int i = 0; i < nfiles; i++)
        for (int m = 0; m < runs[i].n_modes; m++, colour++) {
            const LogPoints *s = &runs[i].evals[m].points;
            double *x = pool_array(&pool, s->n), *c = pool_array(&pool, s->n), *v = pool_array(&pool, s->n);
            for (int k = 0; k < s->n; k++) { x[k] = s->p[k].step; c[k] = s->p[k].a; v[k] = s->p[k].b; }
            char what[96];
            snprintf(what, sizeof what, "%s cause", runs[i].evals[m].mode);
            eval[n_eval++] = (CurveSeries){.name = series_name(&pool, nfiles, runs[i].name, what), .x = x, .y = c,
                                           .n = s->n, .colour = colour, .markers = 1};
            snprintf(what, sizeof what, "%s isolate", runs[i].evals[m].mode);
            eval[n_eval++] = (CurveSeries){.name = series_name(&pool, nfiles, runs[i].name, what), .x = x, .y = v,
                                           .n = s->n, .colour = colour, .dashed = 1, .markers = 1};
        }
    char loss_title[96];
    if (o->smooth > 1) snprintf(loss_title, sizeof loss_title, "training loss (moving average over %lld steps)", o->smooth);
    else snprintf(loss_title, sizeof loss_title, "training loss");
    CurvePanel panels[2];
    int n_panels = 0;
    if (n_loss) panels[n_panels++] = (CurvePanel){.title = loss_title, .y_label = "loss", .series = loss, .n_series = n_loss};
    if (n_eval)
        panels[n_panels++] = (CurvePanel){.title = "evaluation: cause (solid) and isolate (dashed)", .y_label = "accuracy",
                                          .series = eval, .n_series = n_eval, .fixed_y = 1, .y_min = 0, .y_max = 1};
    char title[512];
    if (nfiles == 1) snprintf(title, sizeof title, "hd-train log: %s", runs[0].name);
    else snprintf(title, sizeof title, "hd-train logs: %d runs", nfiles);
    if (curve_write_svg(o->curve_path, title, "step", panels, n_panels) < 0) hd_die("%s", hd_last_error());
    for (int i = 0; i < pool.n; i++) free(pool.items[i]);
    free(pool.items);
    for (int i = 0; i < nfiles; i++) train_log_free(&runs[i]);
    free(runs);
    free(loss);
    free(eval);
}

/* --learning-curve: SIZE=FILE arguments. */
static void learning(int nfiles, char **files, const Options *o)
{
    LearningCurve *lc = learning_curve_new(o->split);
    for (int i = 0; i < nfiles; i++) {
        char *eq = strchr(files[i], '='), *end = NULL;
        double x = eq ? strtod(files[i], &end) : NAN;
        if (!eq || end != eq || !isfinite(x))
            hd_usage_error("--learning-curve: expected SIZE=FILE (e.g. 2000=hd-2000.scores), got '%s'", files[i]);
        if (learning_curve_add_file(lc, x, eq + 1) < 0) hd_die("%s", hd_last_error());
    }
    char title[256];
    snprintf(title, sizeof title, "learning curve (%s split, overall rows)", o->split);
    if (learning_curve_write_svg(lc, o->learning_path, title, o->x_label) < 0) hd_die("%s", hd_last_error());
    learning_curve_free(lc);
}

int main(int argc, char **argv)
{
    hd_cli_init(argc, argv, "hd-plot");
    Options o = {.max_examples = 50, .smooth = 1, .split = "test", .x_label = "training pairs"};
    int max_given = 0, smooth_given = 0, learning_given = 0;
    enum { OPT_HEATMAPS = 256, OPT_CURVE, OPT_MAX, OPT_MODE, OPT_SMOOTH, OPT_LEARNING, OPT_SPLIT, OPT_XLABEL,
           OPT_VERSION };
    static const struct option longopts[] = {
        {"heatmaps", required_argument, 0, OPT_HEATMAPS}, {"curve", required_argument, 0, OPT_CURVE},
        {"max", required_argument, 0, OPT_MAX},           {"mode", required_argument, 0, OPT_MODE},
        {"smooth", required_argument, 0, OPT_SMOOTH},     {"help", no_argument, 0, 'h'},
        {"learning-curve", required_argument, 0, OPT_LEARNING}, {"split", required_argument, 0, OPT_SPLIT},
        {"x-label", required_argument, 0, OPT_XLABEL},
        {"version", no_argument, 0, OPT_VERSION},         {0, 0, 0, 0}};
    int c;
    while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
        switch (c) {
        case OPT_HEATMAPS: o.heatmaps_dir = optarg; break;
        case OPT_CURVE: o.curve_path = optarg; break;
        case OPT_MAX: o.max_examples = hd_cli_parse_count("--max", optarg); max_given = 1; break;
        case OPT_MODE: o.mode = optarg; break;
        case OPT_SMOOTH: o.smooth = hd_cli_parse_count("--smooth", optarg); smooth_given = 1; break;
        case OPT_LEARNING: o.learning_path = optarg; break;
        case OPT_SPLIT: o.split = optarg; learning_given = 1; break;
        case OPT_XLABEL: o.x_label = optarg; learning_given = 1; break;
        case 'h': usage(); return 0;
        case OPT_VERSION: hd_cli_print_version(); return 0;
        default: hd_usage_error("unknown option");
        }
    }
    if ((o.heatmaps_dir != NULL) + (o.curve_path != NULL) + (o.learning_path != NULL) != 1)
        hd_usage_error("give exactly one of --heatmaps DIR, --curve FILE.svg and --learning-curve FILE.svg");
    if (learning_given && !o.learning_path) hd_usage_error("--split and --x-label apply to --learning-curve only");
    if (o.learning_path && (max_given || o.mode || smooth_given))
        hd_usage_error("--max, --mode and --smooth do not apply to --learning-curve");
    if (o.learning_path) {
        if (optind == argc) hd_usage_error("--learning-curve needs SIZE=FILE arguments");
        learning(argc - optind, argv + optind, &o);
        return 0;
    }
    if (o.curve_path && (max_given || o.mode)) hd_usage_error("--max and --mode apply to --heatmaps only");
    if (o.heatmaps_dir && smooth_given) hd_usage_error("--smooth applies to --curve only");
    if (o.smooth < 1) hd_usage_error("--smooth: expected at least 1");
    if (o.smooth > 1000000) hd_usage_error("--smooth: at most 1000000");
    if (o.max_examples > 1000000) o.max_examples = 1000000;
    static char *stdin_only[] = {"-"};
    int nfiles = argc - optind;
    char **files = nfiles > 0 ? argv + optind : stdin_only;
    if (nfiles == 0) nfiles = 1;
    if (o.heatmaps_dir) heatmaps(nfiles, files, &o);
    else curve(nfiles, files, &o);
    return 0;
}
