/* Cause / Isolate / Disentangle summaries of scored interventions: the
 * `summary` records of hyperdas-records(5) SUMMARY (hyperdas(7) 9.3
 * micro averages, 9.4 RAVEL macro averages per base template, the
 * "changed" flip rate, per-domain and overall mean rows).
 *
 * Feed one ScoreOutcome per scored example, then ask for the rows of each
 * split.  Splits, domains, attributes, queried attributes and templates
 * keep the order in which they were first seen, so output is
 * deterministic for a given input order.  Every example is also kept as
 * one small item (its stratum and outcome) for the bootstrap intervals and
 * paired comparisons of score_stats.h; the records and tables are made by
 * score_report.h. */
#ifndef HD_SCORE_SUMMARY_H
#define HD_SCORE_SUMMARY_H

#include <msgpack.h>
#include <stdio.h>

typedef struct {
    const char *split, *domain;
    const char *target_attribute;    /* the attribute the intervention is about */
    const char *queried_attribute;   /* what the base prompt asks (== target when causal) */
    const char *base_template;       /* groups examples for the macro averages */
    int is_causal;                   /* 1 causal, 0 isolation */
    int correct;                     /* 1 or 0 */
    int base_pred_correct;           /* unintervened model already right: 1, 0, or -1 unknown */
    const char *id;                  /* the example's id, which pairs it with the same example
                                      * in another summary (score_stats.h); NULL: none */
} ScoreOutcome;

/* One row of a summary.  Rates are fractions in [0, 1]; NAN stands for nil
 * (nothing to average: a rate of a kind with no examples is nil, never 0,
 * and Disentangle is nil unless both Cause and Isolate exist).  domain/attribute point into the summary (or are
 * the literals "(all)" / "(mean)") and live as long as it does. */
typedef struct {
    const char *domain, *attribute;
    long n_causal, n_isolate, n_changed;
    double cause, isolate, disentangle;                     /* micro, hyperdas(7) 9.3 */
    double cause_macro, isolate_macro, disentangle_macro;   /* RAVEL macro, hyperdas(7) 9.4 */
    double cause_changed;                                   /* accuracy on n_changed */
} ScoreRow;

typedef struct ScoreSummary ScoreSummary;

ScoreSummary *score_summary_new(void);
void score_summary_free(ScoreSummary *s);

/* Counts one example; the strings are copied.  -1 (hd_fail) when a string
 * is NULL or a flag is out of range. */
int score_summary_add(ScoreSummary *s, const ScoreOutcome *o);

/* Reads the fields of a `score` record into o.  msgpack strings are not
 * NUL-terminated, so the strings are copies (hd_strndup) that
 * score_outcome_release frees.  -1 (hd_fail naming the key) when a key is
 * missing or has the wrong type; nothing is then left to release. */
int score_outcome_from_record(ScoreOutcome *o, const msgpack_object *rec);
void score_outcome_release(ScoreOutcome *o);
/* from_record + add + release in one step. */
int score_summary_add_record(ScoreSummary *s, const msgpack_object *rec);

int score_summary_n_splits(const ScoreSummary *s);
const char *score_summary_split(const ScoreSummary *s, int i);

/* The rows of one split, in contract order: one per (domain, target
 * attribute), then one "(mean)" per domain, then ("(all)", "(mean)").
 * A new array (free() it); *n_rows gets its length.  NULL when the index
 * is out of range. */
ScoreRow *score_summary_rows(const ScoreSummary *s, int split_index, int *n_rows);

/* ---- what the bootstrap (score_stats.h) needs: every example kept as one
 * small item, and the micro rates computed from counts by the same code
 * that makes the point estimates. */

/* Resampling strata within a (split, domain, target attribute): causal
 * examples whose unintervened answer was wrong (the flip rate's subset),
 * the other causal examples, isolation examples. */
typedef enum { SCORE_CHANGED = 0, SCORE_CAUSAL_OTHER = 1, SCORE_ISOLATE = 2 } ScoreStratum;
enum { SCORE_N_STRATA = 3 };

typedef struct {
    const char *id;                  /* NULL when the outcome had none */
    int split, domain, attribute;    /* indices, first-seen order (the rows' order) */
    ScoreStratum stratum;
    int correct;                     /* 1 or 0 */
} ScoreItem;

/* Every example added, in order; *n gets the count.  Valid until the next add. */
const ScoreItem *score_summary_items(const ScoreSummary *s, int *n);
/* The tree's shape and names; -1 / NULL when an index is out of range. */
int score_summary_n_domains(const ScoreSummary *s, int split);
int score_summary_n_attributes(const ScoreSummary *s, int split, int domain);
const char *score_summary_domain(const ScoreSummary *s, int split, int domain);
const char *score_summary_attribute(const ScoreSummary *s, int split, int domain, int attribute);

/* The correct/total counts behind one attribute row's micro rates. */
typedef struct {
    long n_causal, correct_causal, n_isolate, correct_isolate, n_changed, correct_changed;
} ScoreCounts;

/* Adds one example of a stratum to c. */
void score_counts_add(ScoreCounts *c, ScoreStratum stratum, int correct);

/* An attribute row from counts: the counts and the micro rates (cause,
 * isolate, disentangle, cause_changed); names NULL, macro rates nil. */
ScoreRow score_row_micro(const ScoreCounts *c);

/* The mean rows after the attribute rows: rows holds n_attr[0] + ... +
 * n_attr[n_domains - 1] attribute rows, domain by domain, and room for
 * n_domains + 1 more, which get one "(mean)" row per domain and the
 * ("(all)", "(mean)") row (as score_summary_rows lays them out). */
void score_rows_add_means(ScoreRow *rows, const int *n_attr, int n_domains);

#endif
