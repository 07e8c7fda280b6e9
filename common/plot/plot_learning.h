/* A learning curve: how the overall scores of hd-score change with the
 * size of the training set.  Each input is a stream holding `summary`
 * records (an hd-score output or hd-score --summarize) of runs trained on
 * one size; the curve has one series per (method, mode, rule) and four
 * panels: Disentangle, Cause, Isolate and the flip rate (Cause on the
 * causal examples the unintervened model got wrong), each point the
 * overall ("(all)", "(mean)") row of the chosen split.  Where the summary
 * carries 95% intervals (cause_ci, ...), they are drawn as faint dashed
 * lines in the series' colour. */
#ifndef HD_PLOT_LEARNING_H
#define HD_PLOT_LEARNING_H

typedef struct LearningCurve LearningCurve;

/* split: the summaries' split to plot (e.g. "test"). */
LearningCurve *learning_curve_new(const char *split);
/* Adds every summary of `split` in the stream at path as points at x.
 * -1 (hd_fail "PATH: record N: what") on bad input or when the stream has
 * no summary of the split. */
int learning_curve_add_file(LearningCurve *lc, double x, const char *path);
/* Writes the SVG atomically; -1 (hd_fail) on error. */
int learning_curve_write_svg(const LearningCurve *lc, const char *path, const char *title, const char *x_label);
void learning_curve_free(LearningCurve *lc);

#endif
