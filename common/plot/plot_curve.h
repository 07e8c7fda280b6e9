/* Line plots as an SVG file: one or more panels stacked vertically, all on
 * the same x axis (training step), each with its own y axis, ticks, grid,
 * title and legend.  hd-plot draws loss curves and evaluation scores with
 * it.  Each series is a <polyline class="series"> (several when non-finite
 * values break it), with <circle class="point"> markers when asked. */
#ifndef HD_PLOT_CURVE_H
#define HD_PLOT_CURVE_H

typedef struct {
    const char *name;       /* legend text; NULL leaves the series out of the legend */
    const double *x, *y;    /* n points; a non-finite y leaves a gap in the line */
    int n;
    int colour;             /* index into the palette (curve_colour) */
    int dashed;
    int markers;            /* a dot at every point */
    double opacity;         /* 0 means opaque */
} CurveSeries;

typedef struct {
    const char *title, *y_label;
    const CurveSeries *series;
    int n_series;
    int fixed_y;            /* draw y from y_min to y_max instead of the data's range */
    double y_min, y_max;
} CurvePanel;

/* Writes the panels (at most 8) to path atomically ("-" is stdout); the x
 * axis is labelled x_label.  -1 (hd_fail) on a write error. */
int curve_write_svg(const char *path, const char *title, const char *x_label, const CurvePanel *panels,
                    int n_panels);

/* Ten distinguishable colours, repeating: "#rrggbb". */
const char *curve_colour(int i);

/* Axis ticks: a step of 1, 2 or 5 times a power of ten giving about
 * `target` intervals over [lo, hi], and the range widened to multiples of
 * it.  A zero-width range is widened first. */
typedef struct {
    double lo, hi, step;
} CurveTicks;
CurveTicks curve_ticks(double lo, double hi, int target);

#endif
