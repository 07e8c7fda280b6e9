/* The summaries of one hd-score run or --summarize: one per (method, mode,
 * rule) group in first-seen order, the unintervened model's (fed from the
 * first group's examples: the acts records' own judgement), each with an
 * optional twin judged on the first N label tokens only (--also-first,
 * the paper's comparable rule), and what is written and printed from them:
 * summary records, tables, the comparison and the paired comparisons. */
#ifndef HD_SCORE_GROUPS_H
#define HD_SCORE_GROUPS_H

#include "stream/records.h"
#include "score/score_report.h"
#include "score/score_stats.h"
#include "score/score_summary.h"

#include <msgpack.h>
#include <stdio.h>

typedef struct {
    char *method, *mode, *rule;
    long eval_tokens;          /* the records' own: 0 = every label token */
    ScoreSummary *sum;
    /* The same examples judged on their first N label tokens; NULL when
     * --also-first is off or the records already compare N or fewer. */
    ScoreSummary *first;
} ScoreGroup;

typedef struct {
    ScoreGroup *g;
    int n, cap;
    ScoreGroup unintervened;   /* none / unintervened, teacher-forced by cache-acts */
    int first_n;               /* N of --also-first; 0: off */
} ScoreGroups;

void score_groups_init(ScoreGroups *gs, int first_n);
void score_groups_free(ScoreGroups *gs);

/* The index of group (method, mode, rule), added when new (eval_tokens
 * is then its records'). */
int score_groups_find(ScoreGroups *gs, const char *method, const char *mode, const char *rule,
                      long eval_tokens);

/* Counts one example of group g: oc in its summary; first_correct (1, 0,
 * or -1 unknown) in its first-N twin with first_base_correct as the
 * unintervened answer's; and, for group 0, the unintervened model's
 * answers (oc->base_pred_correct, first_base_correct) in its summaries.
 * -1 (hd_fail) when score_summary_add refuses oc. */
int score_groups_add(ScoreGroups *gs, int g, const ScoreOutcome *oc, int first_correct,
                      int first_base_correct);

/* Judgement on the first n label tokens from token ids: *correct from
 * pred (-1 when fewer predictions than the tokens to compare), and
 * *base_correct from base_pred (NULL: unknown) or, failing that, 1 when
 * the whole label was already right unintervened (base_pred_correct 1),
 * else -1 (unknown). */
void score_first_tokens(const int *pred, int n_pred, const int *label, int n_label,
                        const int *base_pred, int n_base, int base_pred_correct, int n,
                        int *correct, int *base_correct);

/* The same from a `score` record's pred_ids, label_ids, base_pred_ids
 * (optional) and base_pred_correct; *correct -1 when they are missing. */
void score_first_tokens_from_record(const msgpack_object *rec, int n, int *correct,
                                    int *base_correct);

/* The same from an acts record (label_ids, base_pred_ids,
 * base_pred_correct) and the predictions of its score record. */
void score_first_tokens_from_acts(const msgpack_object *acts, const int *pred, int n_pred, int n,
                                  int *correct, int *base_correct);

/* Checks the --compare specs: each "A:B", A and B "method/mode" naming a
 * group ("none/unintervened": the unintervened model).  -1 (hd_fail
 * naming the first bad one and the groups there are) otherwise. */
int score_groups_check_compare(const ScoreGroups *gs, char *const *compare, int n_compare);

/* Writes the summary records of every group (and, with first_records, of
 * the first-N twins, as eval_tokens N) to out (may be NULL).  With table
 * (may be NULL) prints there each group's table, the comparison (every
 * group, its twin, the unintervened model) and the paired comparisons:
 * the --compare pairs, or by default the first mode of each method
 * against the first of every other method, then every group against the
 * unintervened model; with their first-N twins too when both have one.
 * -1 (hd_fail) when writing fails or a --compare name is unknown. */
int score_groups_report(const ScoreGroups *gs, RecordWriter *out, FILE *table, int first_records,
                        const ScoreBootstrap *b, char *const *compare, int n_compare);

#endif
