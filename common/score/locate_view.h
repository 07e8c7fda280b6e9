/* hd-locate's text view of one score record: the selection matrix as a
 * table with one row per base position (what it keeps, what it takes from
 * each source token, and from which one the most), the base and source
 * prompts with each token shaded by its weight, and the predictions.
 *
 * Shading: with colour, a cell's or token's background is the colour
 * hd-plot's heatmaps give the same value (heatmap_colour); without, the
 * table shows the numbers alone and each prompt line gets a line of
 * shade characters ( ░▒▓█) under it. */
#ifndef HD_LOCATE_VIEW_H
#define HD_LOCATE_VIEW_H

#include <stdio.h>

#include "score/score_example.h"

typedef struct {
    const char *checkpoint;  /* the step directory */
    long long step;
    const char *method;
    int layer;               /* the intervention layer */
    const char *instruction, *base, *source;
    const char *label;       /* as judged (printable form) */
    const char *base_pred;   /* the unintervened model's prediction */
} LocateInfo;

/* The value a token line is shaded by: for base position t the share it
 * takes from the source (1 - the keep row), for source token s the most
 * it gives one base position. */
double locate_base_patched(const ScoreExample *e, int t);
double locate_source_sent(const ScoreExample *e, int s);

/* The source row that gives base position t the most weight, or e->S
 * when the keep row outweighs every source token. */
int locate_top_source(const ScoreExample *e, int t);

void locate_view_print(FILE *f, const ScoreExample *e, const LocateInfo *info, int colour);

#endif
