#include "plot/svg.h"
#include "base/error.h"
#include "base/unicode.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int svg_open(SvgDoc *d, const char *path, double width, double height)
{
    memset(d, 0, sizeof *d);
    if (outfile_open(&d->out, path, 0) < 0) return -1;
    /* A FILE on a copy of the descriptor: fclose() flushes and closes the
     * copy, and outfile_commit() still owns (and syncs) the original. */
    int fd = dup(d->out.fd);
    d->f = fd >= 0 ? fdopen(fd, "w") : NULL;
    if (!d->f) {
        if (fd >= 0) close(fd);
        int rc = hd_fail("%s: cannot write", outfile_name(&d->out));
        outfile_abort(&d->out);
        return rc;
    }
    fprintf(d->f,
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
            "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%.0f\" height=\"%.0f\" "
            "viewBox=\"0 0 %.0f %.0f\" font-family=\"sans-serif\">\n"
            "<rect x=\"0\" y=\"0\" width=\"%.0f\" height=\"%.0f\" fill=\"white\"/>\n",
            width, height, width, height, width, height);
    return 0;
}

int svg_close(SvgDoc *d)
{
    fputs("</svg>\n", d->f);
    int bad = ferror(d->f);
    if (fclose(d->f) != 0) bad = 1;
    d->f = NULL;
    if (bad) {
        int rc = hd_fail("%s: write error", outfile_name(&d->out));
        outfile_abort(&d->out);
        return rc;
    }
    return outfile_commit(&d->out);
}

void svg_abort(SvgDoc *d)
{
    if (d->f) fclose(d->f);
    d->f = NULL;
    outfile_abort(&d->out);
}

void xml_escape(FILE *f, const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        switch (s[i]) {
        case '&': fputs("&amp;", f); break;
        case '<': fputs("&lt;", f); break;
        case '>': fputs("&gt;", f); break;
        case '"': fputs("&quot;", f); break;
        case '\'': fputs("&apos;", f); break;
        default: fputc(s[i], f);
        }
    }
}

void xml_escape_str(FILE *f, const char *s)
{
    xml_escape(f, s, strlen(s));
}

void svg_text(SvgDoc *d, double x, double y, const SvgTextStyle *st, const char *text)
{
    fprintf(d->f, "<text x=\"%.1f\" y=\"%.1f\" font-size=\"%.1f\"", x, y, st->size);
    if (st->anchor && strcmp(st->anchor, "start") != 0) fprintf(d->f, " text-anchor=\"%s\"", st->anchor);
    if (st->bold) fputs(" font-weight=\"bold\"", d->f);
    if (st->font) fprintf(d->f, " font-family=\"%s\"", st->font);
    if (st->fill) fprintf(d->f, " fill=\"%s\"", st->fill);
    if (st->rotate != 0) fprintf(d->f, " transform=\"rotate(%.1f %.1f %.1f)\"", st->rotate, x, y);
    /* xml:space keeps the spaces of labels such as "mode: soft   label: x" */
    fputs(" xml:space=\"preserve\">", d->f);
    xml_escape_str(d->f, text);
    fputs("</text>\n", d->f);
}

void svg_rect(SvgDoc *d, double x, double y, double w, double h, const char *fill,
              const char *stroke, double stroke_width, const char *cls, const char *tooltip)
{
    fprintf(d->f, "<rect x=\"%.2f\" y=\"%.2f\" width=\"%.2f\" height=\"%.2f\" fill=\"%s\"", x, y, w, h,
            fill ? fill : "none");
    if (stroke) fprintf(d->f, " stroke=\"%s\" stroke-width=\"%.1f\"", stroke, stroke_width);
    if (cls) fprintf(d->f, " class=\"%s\"", cls);
    if (tooltip) {
        fputs("><title>", d->f);
        xml_escape_str(d->f, tooltip);
        fputs("</title></rect>\n", d->f);
    } else {
        fputs("/>\n", d->f);
    }
}

void svg_line(SvgDoc *d, double x1, double y1, double x2, double y2, const char *stroke,
              double width, const char *dash)
{
    fprintf(d->f, "<line x1=\"%.2f\" y1=\"%.2f\" x2=\"%.2f\" y2=\"%.2f\" stroke=\"%s\" stroke-width=\"%.1f\"",
            x1, y1, x2, y2, stroke, width);
    if (dash) fprintf(d->f, " stroke-dasharray=\"%s\"", dash);
    fputs("/>\n", d->f);
}

/* ------------------------------------------------------------ label text */

/* Characters XML 1.0 forbids or that would be invisible in a label. */
static int needs_escape(uint32_t cp)
{
    return cp < 0x20 || (cp >= 0x7f && cp < 0xa0) || cp == 0xfffe || cp == 0xffff;
}

char *visible_text(const char *s, size_t n, size_t max_chars)
{
    /* worst case: every byte becomes the four characters \xNN */
    char *out = hd_malloc(4 * n + 8);
    size_t len = 0, chars = 0, cut_len = 0;
    const uint8_t *p = (const uint8_t *)s;
    size_t i = 0;
    while (i < n) {
        if (max_chars && chars < max_chars) cut_len = len;   /* where an ellipsis would go */
        uint32_t cp;
        int k = utf8_decode(p + i, n - i, &cp);
        if (k == 0) {                       /* not UTF-8: show the byte */
            len += (size_t)sprintf(out + len, "\\x%02X", p[i]);
            chars += 4;
            k = 1;
        } else if (cp == ' ') {
            memcpy(out + len, "\xe2\x90\xa3", 3);   /* U+2423 OPEN BOX */
            len += 3;
            chars++;
        } else if (cp == '\n' || cp == '\t' || cp == '\r') {
            out[len++] = '\\';
            out[len++] = cp == '\n' ? 'n' : cp == '\t' ? 't' : 'r';
            chars += 2;
        } else if (needs_escape(cp)) {
            len += (size_t)(cp < 0x100 ? sprintf(out + len, "\\x%02X", (unsigned)cp)
                                       : sprintf(out + len, "\\u%04X", (unsigned)cp));
            chars += cp < 0x100 ? 4 : 6;
        } else {
            memcpy(out + len, p + i, (size_t)k);
            len += (size_t)k;
            chars++;
        }
        i += (size_t)k;
        if (max_chars && chars > max_chars) {
            memcpy(out + cut_len, "\xe2\x80\xa6", 3);    /* U+2026 HORIZONTAL ELLIPSIS */
            len = cut_len + 3;
            break;
        }
    }
    out[len] = 0;
    return out;
}

size_t utf8_char_count(const char *s)
{
    size_t n = 0;
    for (; *s; s++)
        if (((unsigned char)*s & 0xc0) != 0x80) n++;
    return n;
}
