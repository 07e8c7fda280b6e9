#include "score/score_report.h"
#include "base/error.h"
#include "stream/map_writer.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ---- the `summary` record */

static void pack_rate(MapWriter *m, const char *key, double v)
{
    msgpack_packer *pk = map_key(m, key);
    if (isnan(v)) msgpack_pack_nil(pk);
    else msgpack_pack_double(pk, v);
}

static void pack_ci(MapWriter *m, const char *key, ScoreCi ci)
{
    msgpack_packer *pk = map_key(m, key);
    if (isnan(ci.lo) || isnan(ci.hi)) {
        msgpack_pack_nil(pk);
        return;
    }
    msgpack_pack_array(pk, 2);
    msgpack_pack_double(pk, ci.lo);
    msgpack_pack_double(pk, ci.hi);
}

static void pack_row(msgpack_packer *pk, const ScoreRow *r, const ScoreRowCi *ci)
{
    MapWriter m;
    map_begin(&m, pk);
    map_str(&m, "domain", r->domain);
    map_str(&m, "attribute", r->attribute);
    map_int64(&m, "n_causal", r->n_causal);
    map_int64(&m, "n_isolate", r->n_isolate);
    pack_rate(&m, "cause", r->cause);
    pack_rate(&m, "isolate", r->isolate);
    pack_rate(&m, "disentangle", r->disentangle);
    pack_rate(&m, "cause_macro", r->cause_macro);
    pack_rate(&m, "isolate_macro", r->isolate_macro);
    pack_rate(&m, "disentangle_macro", r->disentangle_macro);
    map_int64(&m, "n_changed", r->n_changed);
    pack_rate(&m, "cause_changed", r->cause_changed);
    pack_ci(&m, "cause_ci", ci->cause);
    pack_ci(&m, "isolate_ci", ci->isolate);
    pack_ci(&m, "disentangle_ci", ci->disentangle);
    pack_ci(&m, "cause_changed_ci", ci->cause_changed);
    map_end(&m);
}

void score_summary_pack(const ScoreSummary *s, int split_index, msgpack_packer *pk,
                        const char *method, const char *mode, const char *rule, int eval_tokens,
                        const ScoreBootstrap *b)
{
    int n_rows = 0, n_ci = 0;
    ScoreRow *rows = score_summary_rows(s, split_index, &n_rows);
    ScoreRowCi *ci = score_stats_row_ci(s, split_index, b, &n_ci);
    if (!rows || !ci || n_ci != n_rows) n_rows = 0;   /* split out of range: no rows */
    MapWriter m, boot;
    map_begin(&m, pk);
    map_str(&m, "t", "summary");
    map_str(&m, "split", score_summary_split(s, split_index));
    map_str(&m, "method", method);
    map_str(&m, "mode", mode);
    map_str(&m, "rule", rule);
    msgpack_pack_int(map_key(&m, "eval_tokens"), eval_tokens);
    map_begin(&boot, map_key(&m, "bootstrap"));
    map_int64(&boot, "n", b ? b->n : 0);
    msgpack_packer *seed = map_key(&boot, "seed");
    if (b) msgpack_pack_uint64(seed, b->seed);
    else msgpack_pack_nil(seed);
    map_end(&boot);
    msgpack_packer *rows_pk = map_key(&m, "rows");
    msgpack_pack_array(rows_pk, (size_t)n_rows);
    for (int i = 0; i < n_rows; i++) pack_row(rows_pk, &rows[i], &ci[i]);
    map_end(&m);
    free(ci);
    free(rows);
}

/* ---- aligned text tables: cells first, so that each column can be as
 * wide as its widest cell; names left-aligned, numbers right-aligned. */

enum { CELL = 128 };   /* longer names are cut */

typedef struct {
    int cols, rows, cap;
    char (*cell)[CELL];
} Table;

/* A new empty row; its cells are "" until written. */
static char (*table_row(Table *t))[CELL]
{
    if (t->rows == t->cap) {
        t->cap = t->cap ? 2 * t->cap : 16;
        t->cell = hd_realloc(t->cell, (size_t)t->cap * (size_t)t->cols * sizeof *t->cell);
    }
    char (*row)[CELL] = t->cell + (size_t)t->rows++ * (size_t)t->cols;
    memset(row, 0, (size_t)t->cols * sizeof *row);
    return row;
}

/* Prints the table; the first n_left columns are names. */
static void table_print(FILE *f, Table *t, int n_left)
{
    int *width = hd_calloc((size_t)t->cols, sizeof *width);
    for (int r = 0; r < t->rows; r++)
        for (int c = 0; c < t->cols; c++) {
            int w = (int)strlen(t->cell[(size_t)r * t->cols + c]);
            if (w > width[c]) width[c] = w;
        }
    for (int r = 0; r < t->rows; r++)
        for (int c = 0; c < t->cols; c++) {
            const char *cell = t->cell[(size_t)r * t->cols + c];
            if (c < n_left) fprintf(f, "%-*s", width[c], cell);
            else fprintf(f, "%*s", width[c], cell);
            fputs(c + 1 < t->cols ? "  " : "\n", f);
        }
    free(width);
    free(t->cell);
    memset(t, 0, sizeof *t);
}

static void table_head(Table *t, const char *const *head)
{
    char (*row)[CELL] = table_row(t);
    for (int c = 0; c < t->cols; c++) snprintf(row[c], CELL, "%s", head[c]);
}

/* A rate in percent, "-" when nil, its interval after it when known. */
static void rate_cell(char *cell, double v, ScoreCi ci)
{
    if (isnan(v)) snprintf(cell, CELL, "-");
    else if (isnan(ci.lo) || isnan(ci.hi)) snprintf(cell, CELL, "%.1f", 100.0 * v);
    else snprintf(cell, CELL, "%.1f [%.1f, %.1f]", 100.0 * v, 100.0 * ci.lo, 100.0 * ci.hi);
}

/* A difference in points, signed. */
static void diff_cell(char *cell, double v, ScoreCi ci)
{
    if (isnan(v)) snprintf(cell, CELL, "-");
    else if (isnan(ci.lo) || isnan(ci.hi)) snprintf(cell, CELL, "%+.1f", 100.0 * v);
    else snprintf(cell, CELL, "%+.1f [%+.1f, %+.1f]", 100.0 * v, 100.0 * ci.lo, 100.0 * ci.hi);
}

static const ScoreCi NO_CI = {NAN, NAN};   /* the macro rates have no interval */

enum { TABLE_COLS = 12 };
static const char *const table_heads[TABLE_COLS] = {
    "split", "domain", "attribute", "n_causal", "n_isolate", "cause", "isolate", "disentangle",
    "cause_changed(n_changed)", "cause_macro", "isolate_macro", "disentangle_macro"};

static void row_cells(char cells[][CELL], const char *split, const ScoreRow *r,
                      const ScoreRowCi *ci)
{
    snprintf(cells[0], CELL, "%s", split);
    snprintf(cells[1], CELL, "%s", r->domain);
    snprintf(cells[2], CELL, "%s", r->attribute);
    snprintf(cells[3], CELL, "%ld", r->n_causal);
    snprintf(cells[4], CELL, "%ld", r->n_isolate);
    rate_cell(cells[5], r->cause, ci->cause);
    rate_cell(cells[6], r->isolate, ci->isolate);
    rate_cell(cells[7], r->disentangle, ci->disentangle);
    char rate[CELL];
    rate_cell(rate, r->cause_changed, ci->cause_changed);
    snprintf(cells[8], CELL, "%.64s (%ld)", rate, r->n_changed);
    rate_cell(cells[9], r->cause_macro, NO_CI);
    rate_cell(cells[10], r->isolate_macro, NO_CI);
    rate_cell(cells[11], r->disentangle_macro, NO_CI);
}

void score_summary_print_table(const ScoreSummary *s, FILE *f, const char *title,
                               const ScoreBootstrap *b)
{
    Table t = {.cols = TABLE_COLS};
    table_head(&t, table_heads);
    for (int i = 0; i < score_summary_n_splits(s); i++) {
        int n_rows = 0, n_ci = 0;
        ScoreRow *rows = score_summary_rows(s, i, &n_rows);
        ScoreRowCi *ci = score_stats_row_ci(s, i, b, &n_ci);
        for (int j = 0; j < n_rows; j++) row_cells(table_row(&t), score_summary_split(s, i), &rows[j], &ci[j]);
        free(ci);
        free(rows);
    }
    if (title) fprintf(f, "%s\n", title);
    table_print(f, &t, 3);
}

/* ---- several summaries side by side */

enum { COMPARISON_COLS = 10 };
static const char *const comparison_heads[COMPARISON_COLS] = {
    "split", "method", "mode", "rule", "cause", "isolate", "disent.", "flip", "n_causal", "n_iso"};

void score_summary_print_comparison(FILE *f, ScoreSummary *const *sum, const char *const keys[][3],
                                    int n, const ScoreBootstrap *b)
{
    fprintf(f, "\ncomparison (overall rows, %%; flip = cause on examples the unintervened model "
               "got wrong%s)\n", b && b->n > 0 ? "; [95% bootstrap interval]" : "");
    Table t = {.cols = COMPARISON_COLS};
    table_head(&t, comparison_heads);
    for (int m = 0; m < n; m++)
        for (int i = 0; i < score_summary_n_splits(sum[m]); i++) {
            int n_rows = 0, n_ci = 0;
            ScoreRow *rows = score_summary_rows(sum[m], i, &n_rows);
            ScoreRowCi *ci = score_stats_row_ci(sum[m], i, b, &n_ci);
            const ScoreRow *r = &rows[n_rows - 1];   /* ("(all)", "(mean)") */
            const ScoreRowCi *c = &ci[n_rows - 1];
            char (*cells)[CELL] = table_row(&t);
            snprintf(cells[0], CELL, "%s", score_summary_split(sum[m], i));
            for (int k = 0; k < 3; k++) snprintf(cells[1 + k], CELL, "%s", keys[m][k]);
            rate_cell(cells[4], r->cause, c->cause);
            rate_cell(cells[5], r->isolate, c->isolate);
            rate_cell(cells[6], r->disentangle, c->disentangle);
            rate_cell(cells[7], r->cause_changed, c->cause_changed);
            snprintf(cells[8], CELL, "%ld", r->n_causal);
            snprintf(cells[9], CELL, "%ld", r->n_isolate);
            free(ci);
            free(rows);
        }
    table_print(f, &t, 4);
}

/* ---- paired comparisons */

enum { PAIRED_COLS = 11 };
static const char *const paired_heads[PAIRED_COLS] = {
    "split", "A", "B", "tokens", "n", "d_disent", "d_cause", "d_flip", "b", "c", "mcnemar_p"};

void score_print_paired(FILE *f, const ScorePairSpec *pairs, int n, const ScoreBootstrap *b)
{
    if (n <= 0) return;
    fprintf(f, "\npaired (A - B on the examples both scored, points%s; McNemar exact p on the "
               "flips: b = A right, B wrong)\n",
            b && b->n > 0 ? "; [95% paired bootstrap interval]" : "");
    Table t = {.cols = PAIRED_COLS};
    table_head(&t, paired_heads);
    for (int k = 0; k < n; k++) {
        const ScorePairSpec *ps = &pairs[k];
        for (int i = 0; i < score_summary_n_splits(ps->a); i++) {
            const char *split = score_summary_split(ps->a, i);
            ScorePaired p;
            score_stats_paired(ps->a, ps->b, split, b, &p);
            char (*cells)[CELL] = table_row(&t);
            snprintf(cells[0], CELL, "%s", split);
            snprintf(cells[1], CELL, "%s", ps->name_a);
            snprintf(cells[2], CELL, "%s", ps->name_b);
            snprintf(cells[3], CELL, "%s", ps->tokens);
            snprintf(cells[4], CELL, "%ld", p.n_matched);
            diff_cell(cells[5], p.d_disentangle, p.ci_disentangle);
            diff_cell(cells[6], p.d_cause, p.ci_cause);
            diff_cell(cells[7], p.d_flip, p.ci_flip);
            snprintf(cells[8], CELL, "%ld", p.b);
            snprintf(cells[9], CELL, "%ld", p.c);
            snprintf(cells[10], CELL, "%.4g", p.p);
        }
    }
    table_print(f, &t, 4);
}
