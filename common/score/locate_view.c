#include "score/locate_view.h"
#include "base/error.h"
#include "plot/plot_heatmap.h"
#include "plot/svg.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static double weight(const ScoreExample *e, int row, int col)
{
    return e->weights[(size_t)row * e->B + col];
}

double locate_base_patched(const ScoreExample *e, int t)
{
    double v = 1 - weight(e, e->S, t);
    return v < 0 ? 0 : v;
}

double locate_source_sent(const ScoreExample *e, int s)
{
    double m = 0;
    for (int t = 0; t < e->B; t++)
        if (weight(e, s, t) > m) m = weight(e, s, t);
    return m;
}

/* Ties go to the keep row, then to the first source row: the rule of the
 * score record's "chosen" pairs. */
int locate_top_source(const ScoreExample *e, int t)
{
    int best = e->S;
    for (int s = 0; s < e->S; s++)
        if (weight(e, s, t) > weight(e, best, t)) best = s;
    return best;
}

/* ---- shading ---- */

static void colour_on(FILE *f, double v)
{
    char hex[8];
    heatmap_colour(v, hex);
    unsigned r, g, b;
    sscanf(hex + 1, "%2x%2x%2x", &r, &g, &b);
    /* dark text on the bright (yellow, green) end of the scale */
    int dark = 0.299 * r + 0.587 * g + 0.114 * b > 140;
    fprintf(f, "\033[48;2;%u;%u;%um\033[38;5;%dm", r, g, b, dark ? 16 : 231);
}

static void colour_off(FILE *f)
{
    fputs("\033[0m", f);
}

static const char *shade_char(double v)
{
    static const char *const shades[] = {" ", "\u2591", "\u2592", "\u2593", "\u2588"};
    if (!(v > 0.05)) return shades[0];
    int i = 1 + (int)(v * 4);
    return shades[i > 4 ? 4 : i];
}

/* A token as it reads inside its prompt: the printable form with the
 * open-box space shown as a space again. */
static char *inline_text(const char *visible)
{
    char *s = hd_strdup(visible);
    char *w = s;
    for (const char *p = s; *p;) {
        if (strncmp(p, "\u2423", 3) == 0) {
            *w++ = ' ';
            p += 3;
        } else {
            *w++ = *p++;
        }
    }
    *w = 0;
    return s;
}

/* One prompt as its tokens, each shaded by value(t); without colour a
 * second line of shade characters as wide as each token. */
static void token_line(FILE *f, const char *name, char *const *tokens, int n, const double *value,
                       const char *note, int colour)
{
    fprintf(f, "%-12s ", name);
    for (int i = 0; i < n; i++) {
        char *t = inline_text(tokens[i]);
        if (colour) colour_on(f, value[i]);
        fputs(t, f);
        if (colour) colour_off(f);
        free(t);
    }
    fprintf(f, "   (%s)\n", note);
    if (colour) return;
    fprintf(f, "%-12s ", "");
    for (int i = 0; i < n; i++) {
        char *t = inline_text(tokens[i]);
        size_t w = utf8_char_count(t);
        for (size_t k = 0; k < w; k++) fputs(shade_char(value[i]), f);
        free(t);
    }
    fputc('\n', f);
}

/* A cell: the weight in percent ("." below half a percent), 4 wide. */
static void cell(FILE *f, double v, int colour)
{
    char buf[24];
    int pct = v > 1 ? 100 : (int)lround(v * 100);   /* weights are in [0, 1] */
    if (pct <= 0) snprintf(buf, sizeof buf, "   .");
    else snprintf(buf, sizeof buf, "%4d", pct);
    if (colour) colour_on(f, v);
    fputs(buf, f);
    if (colour) colour_off(f);
}

/* Pads a label to `width` characters (labels are cut to 24 by
 * score_example, so the widths stay small). */
static void padded(FILE *f, const char *s, int width)
{
    fputs(s, f);
    for (int k = (int)utf8_char_count(s); k < width; k++) fputc(' ', f);
}

void locate_view_print(FILE *f, const ScoreExample *e, const LocateInfo *in, int colour)
{
    fprintf(f, "%-12s %s (%s, step %lld, layer %d), mode %s\n", "checkpoint", in->checkpoint, in->method,
            in->step, in->layer, e->mode);
    fprintf(f, "%-12s %s\n%-12s %s\n%-12s %s\n\n", "instruction", in->instruction, "base", in->base, "source",
            in->source);

    /* source columns up to the last one that gives anything (at least to
     * the entity): the hypernetwork reads no source token after the
     * entity, so the rest would be columns of zeros */
    int n_cols = e->source_entity + 1;
    for (int s = 0; s < e->S; s++)
        if (locate_source_sent(e, s) > 0 && s + 1 > n_cols) n_cols = s + 1;
    if (n_cols > e->S) n_cols = e->S;
    int width = 4;
    for (int t = 0; t < e->B; t++)
        if ((int)utf8_char_count(e->base_tokens[t]) > width) width = (int)utf8_char_count(e->base_tokens[t]);
    fprintf(f, "selection, in %% of each base position: the source token it takes, and what it keeps\n");
    fprintf(f, "%4s  ", "pos");
    padded(f, "base token", width);
    fprintf(f, "  keep |");
    for (int s = 0; s < n_cols; s++) fprintf(f, "%4d", s);
    fprintf(f, " | from source\n");
    for (int t = 0; t < e->B; t++) {
        fprintf(f, "%4d%s ", t, t == e->base_entity ? "*" : " ");
        padded(f, e->base_tokens[t], width);
        fputs("  ", f);
        cell(f, weight(e, e->S, t), colour);
        fputs(" |", f);
        for (int s = 0; s < n_cols; s++) cell(f, weight(e, s, t), colour);
        int top = locate_top_source(e, t);
        fputs(" |", f);
        if (top < e->S) fprintf(f, " %d %s (%ld%%)", top, e->source_tokens[top], lround(weight(e, top, t) * 100));
        fputc('\n', f);
    }
    fprintf(f, "source tokens:");
    for (int s = 0; s < n_cols; s++) fprintf(f, "  %d%s %s", s, s == e->source_entity ? "*" : "", e->source_tokens[s]);
    fprintf(f, "%s\n(* the entity's last token; keep is hd-plot's \"(self)\" row)\n\n",
            n_cols < e->S ? "  (the rest give nothing)" : "");

    double *v = hd_malloc((size_t)(e->B > e->S ? e->B : e->S) * sizeof *v);
    for (int t = 0; t < e->B; t++) v[t] = locate_base_patched(e, t);
    token_line(f, "base", e->base_tokens, e->B, v, "shaded by the share patched in", colour);
    for (int s = 0; s < e->S; s++) v[s] = locate_source_sent(e, s);
    token_line(f, "source", e->source_tokens, e->S, v, "shaded by the most given to one position", colour);
    free(v);

    fprintf(f, "\n%-12s %s\n", "label", in->label);
    fprintf(f, "%-12s %s\n", "base pred", in->base_pred);
    fprintf(f, "%-12s %s (%s)\n", "intervened", e->prediction,
            e->correct < 0 ? "?" : e->correct ? "the label" : "not the label");
}
