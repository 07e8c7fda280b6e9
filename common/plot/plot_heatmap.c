#include "plot/plot_heatmap.h"
#include "base/error.h"
#include "plot/svg.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Nine points of matplotlib's viridis, linearly interpolated: dark for 0,
 * yellow for 1, readable in grey print and by colour-blind readers. */
static const unsigned char scale[9][3] = {
    {0x44, 0x01, 0x54}, {0x47, 0x2d, 0x7b}, {0x3b, 0x52, 0x8b}, {0x2c, 0x72, 0x8e}, {0x21, 0x91, 0x8c},
    {0x28, 0xae, 0x80}, {0x5e, 0xc9, 0x62}, {0xad, 0xdc, 0x30}, {0xfd, 0xe7, 0x25}};

void heatmap_colour(double v, char out[8])
{
    if (!(v > 0)) v = 0;    /* also NaN: callers draw NaN cells grey themselves */
    if (v > 1) v = 1;
    double pos = v * 8;
    int i = (int)pos;
    if (i > 7) i = 7;
    double f = pos - i;
    int rgb[3];
    for (int c = 0; c < 3; c++) rgb[c] = (int)lround(scale[i][c] + f * (scale[i + 1][c] - scale[i][c]));
    snprintf(out, 8, "#%02x%02x%02x", rgb[0], rgb[1], rgb[2]);
}

/* Label text is monospace 11px: about 6.7px per character. */
#define LABEL_SIZE 11.0
#define LABEL_CHAR 6.7
#define NODATA_FILL "#d9d9d9"
#define MARK_STROKE "#e8171b"

static double widest(char *const *labels, int n)
{
    size_t w = 0;
    for (int i = 0; i < n; i++) {
        size_t k = utf8_char_count(labels[i]);
        if (k > w) w = k;
    }
    return (double)w * LABEL_CHAR;
}

typedef struct {
    double cell;            /* cell side */
    double x0, y0;          /* top-left corner of the grid */
    double grid_w, grid_h;
    double gap;             /* extra space before the last row */
    double legend_x;
    double width, height;
    int n_title;
} Layout;

static double row_top(const Heatmap *h, const Layout *L, int r)
{
    return L->y0 + r * L->cell + (h->separate_last_row && r == h->rows - 1 ? L->gap : 0);
}

static Layout layout(const Heatmap *h)
{
    Layout L;
    int longest = h->rows > h->cols ? h->rows : h->cols;
    L.cell = 640.0 / (longest > 0 ? longest : 1);
    if (L.cell > 26) L.cell = 26;
    if (L.cell < 12) L.cell = 12;
    L.gap = h->separate_last_row ? 5 : 0;
    L.n_title = 0;
    double title_w = 0;
    while (L.n_title < 4 && h->title[L.n_title]) {
        double w = utf8_char_count(h->title[L.n_title]) * (L.n_title == 0 ? 8.4 : 7.0);
        if (w > title_w) title_w = w;
        L.n_title++;
    }
    double title_h = 14 + 18.0 * L.n_title;
    L.x0 = 34 + widest(h->row_labels, h->rows) + 8;
    L.y0 = title_h + 22 + widest(h->col_labels, h->cols) + 8;
    L.grid_w = h->cols * L.cell;
    L.grid_h = h->rows * L.cell + L.gap;
    L.legend_x = L.x0 + L.grid_w + 28;
    double note_w = h->mark_note ? 30 + utf8_char_count(h->mark_note) * 6.5 : 0;
    double legend_w = note_w > 90 ? note_w : 90;
    L.width = L.legend_x + legend_w + 16;
    if (L.width < title_w + 32) L.width = title_w + 32;
    double bar_h = L.grid_h < 120 ? 120 : L.grid_h > 240 ? 240 : L.grid_h;
    double legend_h = bar_h + 56;   /* the bar, "no data" and the mark note */
    L.height = L.y0 + (L.grid_h > legend_h ? L.grid_h : legend_h) + 20;
    return L;
}

static void draw_titles(SvgDoc *d, const Heatmap *h, const Layout *L)
{
    for (int i = 0; i < L->n_title; i++) {
        SvgTextStyle st = {.size = i == 0 ? 14 : 12, .bold = i == 0};
        svg_text(d, 16, 24 + 18.0 * i, &st, h->title[i]);
    }
}

static void draw_labels(SvgDoc *d, const Heatmap *h, const Layout *L)
{
    SvgTextStyle row = {.size = LABEL_SIZE, .anchor = "end", .font = "monospace"};
    for (int r = 0; r < h->rows; r++) {
        row.bold = r == h->mark_row;
        svg_text(d, L->x0 - 6, row_top(h, L, r) + L->cell / 2 + 4, &row, h->row_labels[r]);
    }
    /* column labels stand upright above the grid, reading upwards */
    SvgTextStyle col = {.size = LABEL_SIZE, .anchor = "start", .font = "monospace", .rotate = -90};
    for (int c = 0; c < h->cols; c++) {
        col.bold = c == h->mark_col;
        svg_text(d, L->x0 + c * L->cell + L->cell / 2 + 4, L->y0 - 6, &col, h->col_labels[c]);
    }
    SvgTextStyle axis = {.size = 12, .anchor = "middle", .fill = "#444"};
    if (h->col_axis) svg_text(d, L->x0 + L->grid_w / 2, L->y0 - widest(h->col_labels, h->cols) - 16, &axis, h->col_axis);
    axis.rotate = -90;
    if (h->row_axis) svg_text(d, 18, L->y0 + L->grid_h / 2, &axis, h->row_axis);
}

static void draw_cells(SvgDoc *d, const Heatmap *h, const Layout *L, int *any_nodata)
{
    fputs("<g shape-rendering=\"crispEdges\">\n", d->f);
    char colour[8], tip[1024];
    for (int r = 0; r < h->rows; r++)
        for (int c = 0; c < h->cols; c++) {
            double v = h->values[(size_t)r * h->cols + c];
            int nodata = isnan(v);
            if (nodata) *any_nodata = 1;
            heatmap_colour(v, colour);
            int k = snprintf(tip, sizeof tip, "%s \xe2\x86\x92 %s: ", h->row_labels[r], h->col_labels[c]);
            if (k < 0 || (size_t)k >= sizeof tip) k = 0;
            if (nodata) snprintf(tip + k, sizeof tip - (size_t)k, "no data");
            else if (h->counts)
                snprintf(tip + k, sizeof tip - (size_t)k, "%.4f (n=%ld)", v, h->counts[(size_t)r * h->cols + c]);
            else snprintf(tip + k, sizeof tip - (size_t)k, "%.4f", v);
            svg_rect(d, L->x0 + c * L->cell, row_top(h, L, r), L->cell, L->cell, nodata ? NODATA_FILL : colour,
                     NULL, 0, nodata ? "cell nodata" : "cell", tip);
        }
    fputs("</g>\n", d->f);
    if (h->mark_row >= 0 && h->mark_row < h->rows)
        svg_rect(d, L->x0, row_top(h, L, h->mark_row), L->grid_w, L->cell, NULL, MARK_STROKE, 2, "mark", NULL);
    if (h->mark_col >= 0 && h->mark_col < h->cols)
        svg_rect(d, L->x0 + h->mark_col * L->cell, L->y0, L->cell, L->grid_h, NULL, MARK_STROKE, 2, "mark", NULL);
}

static void draw_legend(SvgDoc *d, const Heatmap *h, const Layout *L, int any_nodata)
{
    double x = L->legend_x, y = L->y0, bar_h = L->grid_h < 120 ? 120 : L->grid_h > 240 ? 240 : L->grid_h;
    /* the gradient runs bottom (0) to top (1), through the same nine colours */
    fputs("<defs><linearGradient id=\"scale\" x1=\"0\" y1=\"1\" x2=\"0\" y2=\"0\">\n", d->f);
    for (int i = 0; i <= 8; i++) {
        char colour[8];
        heatmap_colour(i / 8.0, colour);
        fprintf(d->f, "<stop offset=\"%.3f\" stop-color=\"%s\"/>\n", i / 8.0, colour);
    }
    fputs("</linearGradient></defs>\n", d->f);
    svg_rect(d, x, y, 14, bar_h, "url(#scale)", "#888", 0.5, "legend", NULL);
    SvgTextStyle st = {.size = 11};
    for (int i = 0; i <= 4; i++) {
        double ty = y + bar_h - bar_h * i / 4.0;
        svg_line(d, x + 14, ty, x + 18, ty, "#444", 1, NULL);
        char text[16];
        snprintf(text, sizeof text, "%.2f", i / 4.0);
        svg_text(d, x + 21, ty + 4, &st, text);
    }
    double ny = y + bar_h + 20;
    if (any_nodata) {
        svg_rect(d, x, ny - 10, 14, 12, NODATA_FILL, NULL, 0, NULL, NULL);
        svg_text(d, x + 21, ny, &st, "no data");
        ny += 18;
    }
    if (h->mark_note && (h->mark_row >= 0 || h->mark_col >= 0)) {
        svg_rect(d, x, ny - 10, 14, 12, NULL, MARK_STROKE, 2, NULL, NULL);
        svg_text(d, x + 21, ny, &st, h->mark_note);
    }
}

int heatmap_write_svg(const Heatmap *h, const char *path)
{
    Layout L = layout(h);
    SvgDoc d;
    if (svg_open(&d, path, ceil(L.width), ceil(L.height)) < 0) return -1;
    int any_nodata = 0;
    draw_titles(&d, h, &L);
    draw_labels(&d, h, &L);
    draw_cells(&d, h, &L, &any_nodata);
    draw_legend(&d, h, &L, any_nodata);
    return svg_close(&d);
}
