/* How sure is a Cause / Isolate / Disentangle / flip rate (issue 13)?
 *
 * Percentile bootstrap intervals: examples are resampled with replacement
 * within their stratum (split, domain, target attribute, and kind:
 * causal with the unintervened answer wrong, other causal, isolation;
 * score_summary.h ScoreStratum), so every replicate has the point
 * estimate's counts in every row, and its rows (attribute rates, then the
 * means over attributes and domains) are computed by the same code as the
 * point estimate (score_row_micro, score_rows_add_means).  Without the
 * strata a replicate could lose an attribute's only isolation example and
 * change which rows its means average.
 *
 * Paired comparison of two summaries over the same examples (matched by
 * split and id): the bootstrap of the differences A - B, each replicate
 * resampling matched examples (both outcomes at once) within the same
 * strata, and McNemar's exact test on the flips.
 *
 * Draws come from common/base/rng.h, seeded from the seed and the split's name:
 * the same seed and input order give the same intervals on every platform. */
#ifndef HD_SCORE_STATS_H
#define HD_SCORE_STATS_H

#include "score/score_summary.h"

#include <stdint.h>

typedef struct {
    int n;              /* replicates; 0: no intervals */
    uint64_t seed;
} ScoreBootstrap;

#define SCORE_BOOTSTRAP_DEFAULT_N 1000
#define SCORE_BOOTSTRAP_DEFAULT_SEED 42

/* A 95% interval (the 2.5th and 97.5th percentiles); NAN, NAN = nil. */
typedef struct {
    double lo, hi;
} ScoreCi;

typedef struct {
    ScoreCi cause, isolate, disentangle, cause_changed;
} ScoreRowCi;

/* The intervals of every row of one split, in the order of
 * score_summary_rows (*n_rows gets the count; free() the array).  An
 * interval is nil where the point estimate is nil or b is NULL or
 * b->n == 0.  NULL when the split index is out of range. */
ScoreRowCi *score_stats_row_ci(const ScoreSummary *s, int split_index, const ScoreBootstrap *b,
                               int *n_rows);

/* The value below which a fraction p of sorted[0..n) lies, interpolated
 * linearly between order statistics (numpy's default, "type 7"); NAN when
 * n == 0. */
double score_percentile(const double *sorted, int n, double p);

/* McNemar's exact two-sided test on the discordant pairs b and c:
 * p = min(1, 2 * sum_{k <= min(b, c)} C(b + c, k) / 2^(b + c)), summed in
 * log space so that b + c in the thousands neither under- nor overflows. */
double score_mcnemar_exact(long b, long c);

/* A against B on one split, over the examples both have. */
typedef struct {
    long n_matched;                       /* examples paired by (split, id) */
    long n_causal, n_isolate, n_changed;  /* of them, by kind */
    /* A - B on the overall ("(all)", "(mean)") rows of the matched
     * examples (nil when either side's rate is), and their intervals */
    double d_disentangle, d_cause, d_flip;
    ScoreCi ci_disentangle, ci_cause, ci_flip;
    /* McNemar on the matched causal examples whose unintervened answer was
     * wrong: b = A correct and B wrong, c = the reverse */
    long b, c;
    double p;
} ScorePaired;

/* Pairs the examples of split `split` of a and b by id (the k-th
 * occurrence of an id in a with its k-th in b; examples without id are
 * left out, and so are pairs whose domain, target attribute or stratum
 * disagree) and fills out.  Strata and rows follow a's order.  n_matched
 * 0 when the split is in only one of them (rates nil, p 1). */
void score_stats_paired(const ScoreSummary *a, const ScoreSummary *b, const char *split,
                        const ScoreBootstrap *bs, ScorePaired *out);

#endif
