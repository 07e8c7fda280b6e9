/* What a summary looks like outside: the `summary` record and the text
 * tables of hd-score, each rate with its bootstrap interval
 * (score_stats.h), and the table of paired comparisons. */
#ifndef HD_SCORE_REPORT_H
#define HD_SCORE_REPORT_H

#include "score/score_stats.h"
#include "score/score_summary.h"

#include <msgpack.h>
#include <stdio.h>

/* Packs one `summary` record (a map) for that split.  method/mode/rule may
 * be NULL (packed as nil).  Every row carries cause_ci, isolate_ci,
 * disentangle_ci and cause_changed_ci ([lo, hi] fractions, nil without an
 * estimate or without bootstrap), the record `bootstrap` {n, seed}
 * (b NULL: n 0, seed nil). */
void score_summary_pack(const ScoreSummary *s, int split_index, msgpack_packer *pk,
                        const char *method, const char *mode, const char *rule, int eval_tokens,
                        const ScoreBootstrap *b);

/* Aligned text table of every split's rows, percent with one decimal, "-"
 * for nil, each micro rate followed by its interval ("54.0 [42.1, 65.3]")
 * when b asks for one; title (may be NULL) printed first. */
void score_summary_print_table(const ScoreSummary *s, FILE *f, const char *title,
                               const ScoreBootstrap *b);

/* The overall ("(all)", "(mean)") row of each of n summaries, one line per
 * summary and split, labelled keys[i] = {method, mode, rule}: the
 * side-by-side view of `make demo` (flip = cause_changed), with intervals
 * as in the table. */
void score_summary_print_comparison(FILE *f, ScoreSummary *const *sum, const char *const keys[][3],
                                    int n, const ScoreBootstrap *b);

/* One paired comparison: A and B with their names ("method/mode") and
 * which label tokens were compared ("all", "first 3"). */
typedef struct {
    const ScoreSummary *a, *b;
    const char *name_a, *name_b, *tokens;
} ScorePairSpec;

/* score_stats_paired of each pair on every split of its A, one aligned
 * line each: differences in points, intervals, McNemar's b, c and p. */
void score_print_paired(FILE *f, const ScorePairSpec *pairs, int n, const ScoreBootstrap *b);

#endif
