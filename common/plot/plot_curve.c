#include "plot/plot_curve.h"
#include "base/error.h"
#include "plot/svg.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

/* The "tab10" colours of matplotlib, which most readers already know. */
static const char *const palette[10] = {"#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd",
                                        "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"};

const char *curve_colour(int i)
{
    return palette[((i % 10) + 10) % 10];
}

CurveTicks curve_ticks(double lo, double hi, int target)
{
    CurveTicks t;
    if (!isfinite(lo) || !isfinite(hi) || lo > hi) { lo = 0; hi = 1; }
    if (hi - lo < 1e-12 * (fabs(lo) + fabs(hi)) || hi == lo) {
        double pad = fabs(lo) > 0 ? fabs(lo) * 0.1 : 1;
        lo -= pad;
        hi += pad;
    }
    double raw = (hi - lo) / (target > 0 ? target : 5);
    double mag = pow(10, floor(log10(raw)));
    double norm = raw / mag;
    t.step = (norm < 1.5 ? 1 : norm < 3 ? 2 : norm < 7 ? 5 : 10) * mag;
    t.lo = floor(lo / t.step + 1e-9) * t.step;
    t.hi = ceil(hi / t.step - 1e-9) * t.step;
    return t;
}

/* A tick value with just the decimals its step needs (0.1 not 0.1000000001). */
static void tick_text(double v, double step, char *out, size_t size)
{
    int decimals = step >= 1 ? 0 : (int)ceil(-log10(step) - 1e-9);
    if (decimals > 10) decimals = 10;
    if (fabs(v) < step * 1e-6) v = 0;   /* no "-0" */
    snprintf(out, size, "%.*f", decimals, v);
}

typedef struct {
    double left;      /* x of the plot area's left edge */
    CurveTicks x;     /* the x axis, shared by every panel */
} Frame;

#define LEFT 74.0
#define PLOT_W 640.0
#define PANEL_H 330.0
#define PLOT_TOP 34.0     /* panel title above the plot area */
#define PLOT_H 250.0
#define LEGEND_CHAR 6.6

static void data_range(const CurveSeries *s, int n_series, int use_y, double *lo, double *hi)
{
    *lo = INFINITY;
    *hi = -INFINITY;
    for (int i = 0; i < n_series; i++)
        for (int k = 0; k < s[i].n; k++) {
            double v = use_y ? s[i].y[k] : s[i].x[k];
            if (!isfinite(v) || (use_y && !isfinite(s[i].x[k])) || (!use_y && !isfinite(s[i].y[k]))) continue;
            if (v < *lo) *lo = v;
            if (v > *hi) *hi = v;
        }
}

static double map(double v, double lo, double hi, double a, double b)
{
    return a + (v - lo) / (hi - lo) * (b - a);
}

static void draw_series(SvgDoc *d, const CurveSeries *s, const Frame *F, double top, CurveTicks y)
{
    const char *colour = curve_colour(s->colour);
    double bottom = top + PLOT_H;
    int open = 0;
    for (int k = 0; k <= s->n; k++) {
        int ok = k < s->n && isfinite(s->x[k]) && isfinite(s->y[k]);
        if (!ok) {
            if (open) fputs("\"/>\n", d->f);
            open = 0;
            continue;
        }
        if (!open) {
            fprintf(d->f, "<polyline class=\"series\" fill=\"none\" stroke=\"%s\" stroke-width=\"1.6\"%s", colour,
                    s->dashed ? " stroke-dasharray=\"6 3\"" : "");
            if (s->opacity > 0 && s->opacity < 1) fprintf(d->f, " stroke-opacity=\"%.2f\"", s->opacity);
            fputs(" points=\"", d->f);
            open = 1;
        }
        fprintf(d->f, "%.2f,%.2f ", map(s->x[k], F->x.lo, F->x.hi, F->left, F->left + PLOT_W),
                map(s->y[k], y.lo, y.hi, bottom, top));
    }
    if (!s->markers) return;
    for (int k = 0; k < s->n; k++)
        if (isfinite(s->x[k]) && isfinite(s->y[k]))
            fprintf(d->f, "<circle class=\"point\" cx=\"%.2f\" cy=\"%.2f\" r=\"3\" fill=\"%s\"/>\n",
                    map(s->x[k], F->x.lo, F->x.hi, F->left, F->left + PLOT_W), map(s->y[k], y.lo, y.hi, bottom, top),
                    colour);
}

static void draw_axes(SvgDoc *d, const Frame *F, double top, CurveTicks y, const char *x_label, const char *y_label)
{
    double bottom = top + PLOT_H, right = F->left + PLOT_W;
    SvgTextStyle tick = {.size = 11, .anchor = "end", .fill = "#333"};
    char text[64];
    for (int i = 0; y.lo + i * y.step <= y.hi + y.step * 1e-6; i++) {
        double v = y.lo + i * y.step, py = map(v, y.lo, y.hi, bottom, top);
        svg_line(d, F->left, py, right, py, "#e4e4e4", 1, NULL);
        svg_line(d, F->left - 4, py, F->left, py, "#333", 1, NULL);
        tick_text(v, y.step, text, sizeof text);
        svg_text(d, F->left - 7, py + 4, &tick, text);
    }
    tick.anchor = "middle";
    for (int i = 0; F->x.lo + i * F->x.step <= F->x.hi + F->x.step * 1e-6; i++) {
        double v = F->x.lo + i * F->x.step, px = map(v, F->x.lo, F->x.hi, F->left, right);
        svg_line(d, px, top, px, bottom, "#f0f0f0", 1, NULL);
        svg_line(d, px, bottom, px, bottom + 4, "#333", 1, NULL);
        tick_text(v, F->x.step, text, sizeof text);
        svg_text(d, px, bottom + 17, &tick, text);
    }
    svg_rect(d, F->left, top, PLOT_W, PLOT_H, NULL, "#333", 1, "frame", NULL);
    SvgTextStyle label = {.size = 12, .anchor = "middle"};
    svg_text(d, F->left + PLOT_W / 2, bottom + 34, &label, x_label);
    label.rotate = -90;
    if (y_label) svg_text(d, 18, top + PLOT_H / 2, &label, y_label);
}

static void draw_legend(SvgDoc *d, const CurvePanel *p, const Frame *F, double top)
{
    double x = F->left + PLOT_W + 18, y = top + 8;
    SvgTextStyle st = {.size = 11};
    for (int i = 0; i < p->n_series; i++) {
        const CurveSeries *s = &p->series[i];
        if (!s->name) continue;
        const char *colour = curve_colour(s->colour);
        svg_line(d, x, y, x + 26, y, colour, 2, s->dashed ? "6 3" : NULL);
        if (s->markers) fprintf(d->f, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"3\" fill=\"%s\"/>\n", x + 13, y, colour);
        svg_text(d, x + 32, y + 4, &st, s->name);
        y += 16;
    }
}

static double legend_width(const CurvePanel *panels, int n_panels)
{
    size_t w = 10;
    for (int p = 0; p < n_panels; p++)
        for (int i = 0; i < panels[p].n_series; i++)
            if (panels[p].series[i].name && utf8_char_count(panels[p].series[i].name) > w)
                w = utf8_char_count(panels[p].series[i].name);
    return 18 + 32 + w * LEGEND_CHAR + 16;
}

int curve_write_svg(const char *path, const char *title, const char *x_label, const CurvePanel *panels,
                    int n_panels)
{
    Frame F;
    F.left = LEFT;
    double xlo = INFINITY, xhi = -INFINITY;
    for (int p = 0; p < n_panels; p++) {
        double lo, hi;
        data_range(panels[p].series, panels[p].n_series, 0, &lo, &hi);
        if (lo < xlo) xlo = lo;
        if (hi > xhi) xhi = hi;
    }
    F.x = curve_ticks(xlo, xhi, 8);
    /* the legend may hold many entries: a panel grows to fit them */
    double panel_h[8] = {0}, y = 44;
    for (int p = 0; p < n_panels && p < 8; p++) {
        double legend_h = PLOT_TOP + 16.0 * panels[p].n_series + 20;
        panel_h[p] = PANEL_H > legend_h ? PANEL_H : legend_h;
        y += panel_h[p];
    }
    double width = F.left + PLOT_W + legend_width(panels, n_panels);
    if (title && width < 32 + utf8_char_count(title) * 8.4) width = 32 + utf8_char_count(title) * 8.4;
    SvgDoc d;
    if (svg_open(&d, path, ceil(width), ceil(y + 10)) < 0) return -1;
    SvgTextStyle head = {.size = 15, .bold = 1};
    if (title) svg_text(&d, 16, 24, &head, title);
    double top = 44;
    for (int p = 0; p < n_panels && p < 8; p++) {
        const CurvePanel *P = &panels[p];
        CurveTicks yt;
        if (P->fixed_y) {
            yt = curve_ticks(P->y_min, P->y_max, 5);
        } else {
            double lo, hi;
            data_range(P->series, P->n_series, 1, &lo, &hi);
            yt = curve_ticks(lo, hi, 6);
        }
        SvgTextStyle pt = {.size = 13, .bold = 1};
        if (P->title) svg_text(&d, F.left, top + 18, &pt, P->title);
        double plot_top = top + PLOT_TOP;
        draw_axes(&d, &F, plot_top, yt, x_label, P->y_label);
        for (int i = 0; i < P->n_series; i++) draw_series(&d, &P->series[i], &F, plot_top, yt);
        draw_legend(&d, P, &F, plot_top);
        top += panel_h[p];
    }
    return svg_close(&d);
}
