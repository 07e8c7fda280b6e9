/* One `score` record (hyperdas-records(5) SCORE) read back for display: the
 * strings, the tokens in their printable form, and the selection weights,
 * checked against each other so that a plot never draws nonsense. */
#ifndef HD_SCORE_EXAMPLE_H
#define HD_SCORE_EXAMPLE_H

#include <msgpack.h>

typedef struct {
    /* Every string is in its printable form (svg.h visible_text): spaces and
     * control characters shown, tokens cut to 24 characters, the others to 80. */
    char *id, *mode, *attribute, *kind;   /* attribute = target_attribute; "?" when absent */
    char *label, *prediction;             /* "?" when absent */
    int correct;                          /* 1, 0, or -1 when absent / nil */
    int S, B;                             /* source and base token counts */
    char **source_tokens, **base_tokens;  /* printable forms, S and B of them */
    int source_entity, base_entity;       /* source_entity_pos, base_entity_pos */
    float *weights;                       /* [S + 1, B] row-major; last row = self */
} ScoreExample;

/* Fills e from a score record.  Required: id, weights, base_tokens,
 * source_tokens, base_entity_pos, source_entity_pos; weights must be 2-D
 * [S+1, B] with finite values and the positions inside their token arrays.
 * -1 (hd_fail, a message without file or record: the caller adds them). */
int score_example_parse(const msgpack_object *rec, ScoreExample *e);
void score_example_free(ScoreExample *e);

/* The heatmap of one example as an SVG file (plot_heatmap.h): rows the
 * source tokens and "(self)", columns the base tokens, each labelled with
 * its index, the entities' last tokens outlined, the id, mode, target,
 * kind, label and prediction as the title.  What hd-plot --heatmaps draws
 * per example, and hd-locate --svg.  -1 (hd_fail) on a write error. */
int score_example_svg(const ScoreExample *e, const char *path);

#endif
