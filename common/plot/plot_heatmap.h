/* A heatmap as an SVG file: a matrix of values in 0..1 drawn as coloured
 * cells with a label per row and column, one marked row and column, a
 * colour scale legend and a few title lines.  hd-plot draws selection
 * weights with it (rows = source tokens + "(self)", columns = base tokens).
 *
 * Each cell is a <rect class="cell"> (class "cell nodata" when its value is
 * NaN, drawn grey) with a hover tooltip giving its labels and value. */
#ifndef HD_PLOT_HEATMAP_H
#define HD_PLOT_HEATMAP_H

typedef struct {
    int rows, cols;
    const double *values;        /* rows * cols, row-major; NaN: no data */
    const long *counts;          /* optional rows * cols: examples behind a cell (tooltips) */
    char *const *row_labels;     /* shown as given: pass visible_text() forms */
    char *const *col_labels;
    int mark_row, mark_col;      /* outlined, with bold labels; -1 for none */
    const char *mark_note;       /* legend line explaining the outline, or NULL */
    int separate_last_row;       /* a gap before the last row (the "(self)" row) */
    const char *title[4];        /* title lines, the first bold; NULL ends early */
    const char *row_axis, *col_axis;
} Heatmap;

/* Writes the heatmap to path atomically; -1 (hd_fail) on a write error. */
int heatmap_write_svg(const Heatmap *h, const char *path);

/* The colour of v (clamped to 0..1) on a viridis-like scale, "#rrggbb". */
void heatmap_colour(double v, char out[8]);

#endif
