/* SVG documents written by hand, for plots a person opens in a browser.
 *
 * A document goes to its file atomically (common/base/outfile.h): it appears
 * under its final name only when svg_close() succeeds, so a failed run
 * never leaves half a picture behind.  Every piece of text is XML-escaped
 * here, so callers pass plain (UTF-8) strings and never think about '<'.
 *
 * Coordinates are user units (pixels), origin top left, y growing down. */
#ifndef HD_SVG_H
#define HD_SVG_H

#include "base/outfile.h"

#include <stddef.h>
#include <stdio.h>

typedef struct {
    OutFile out;
    FILE *f;
} SvgDoc;

/* Opens path ("-" is stdout) and writes the XML prolog and the <svg> element
 * of the given size with a white background; -1 (hd_fail) on error. */
int svg_open(SvgDoc *d, const char *path, double width, double height);
/* Writes </svg> and moves the file into place; -1 (hd_fail) on a write error. */
int svg_close(SvgDoc *d);
/* Drops the document: the temporary file is removed. */
void svg_abort(SvgDoc *d);

/* Writes s[0..n) escaped for XML text and attribute values (& < > " '). */
void xml_escape(FILE *f, const char *s, size_t n);
void xml_escape_str(FILE *f, const char *s);

/* Text at (x, y) (the baseline).  anchor: "start", "middle" or "end";
 * rotate: degrees about (x, y), 0 for none; font: NULL for the document's
 * sans-serif, or e.g. "monospace".  The text is escaped. */
typedef struct {
    double size;
    const char *anchor;
    int bold;
    double rotate;
    const char *font;
    const char *fill;   /* NULL: black */
} SvgTextStyle;
void svg_text(SvgDoc *d, double x, double y, const SvgTextStyle *style, const char *text);

/* A rectangle; fill/stroke NULL for "none".  tooltip, when not NULL, is
 * shown by browsers on hover (a <title> child). */
void svg_rect(SvgDoc *d, double x, double y, double w, double h, const char *fill,
              const char *stroke, double stroke_width, const char *cls, const char *tooltip);
/* A line; dash NULL for solid, e.g. "6 3" for dashed. */
void svg_line(SvgDoc *d, double x1, double y1, double x2, double y2, const char *stroke,
              double width, const char *dash);

/* A printable form of arbitrary token text for labels: a space becomes
 * U+2423 OPEN BOX, newline, tab and carriage return become the two
 * characters \n \t \r, other control characters and bytes that are not
 * valid UTF-8 become \xNN, so every label is visible and the SVG stays
 * valid XML.  At most max_chars characters are kept (then "..." as one
 * ellipsis character); 0 keeps everything.  Returns an hd_malloc string. */
char *visible_text(const char *s, size_t n, size_t max_chars);
/* Number of characters (code points) in a UTF-8 string: label widths. */
size_t utf8_char_count(const char *s);

#endif
