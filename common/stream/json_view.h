/* Records as JSON text, the human view of a stream (hd-cat), and the way
 * back: JSON lines to msgpack records (hd-cat --to-records).
 *
 * Mapping, both directions:
 *   msgpack nil/bool/int/float/str/array/map  <->  JSON null/bool/number/string/array/object
 *   a tensor map                                ->  {"dtype","shape","min","max","mean","first"}
 *                                                   (summary), or with full=1
 *                                                   {"dtype","shape","data":[numbers]}
 *   {"dtype","shape","data":[numbers]}          ->  a tensor (zlib again if "codec":"zlib")
 *   bin                                        <->  {"$bin": "<base64>"}
 *   ext                                        <->  {"$ext": type, "$bin": "<base64>"}
 * Floats are printed so that they read back to the same value (%.9g for
 * float32, %.17g for float64); NaN and infinities, which JSON lacks, are
 * the strings "NaN", "Infinity", "-Infinity" (read back inside tensor data).
 * Strings that are not valid UTF-8 are written with U+FFFD for each
 * maximal ill-formed subpart, so the output is always valid JSON. */
#ifndef HD_JSON_VIEW_H
#define HD_JSON_VIEW_H

#include <msgpack.h>
#include <stdio.h>

typedef struct {
    int full_tensors;     /* print every tensor value instead of a summary */
    int n_first;          /* values shown in a tensor summary */
} JsonViewOptions;

/* Writes one record as one line of JSON (no newline added). */
int json_view_write(FILE *out, const msgpack_object *rec, const JsonViewOptions *opt);

/* Parses one line of JSON and packs it as a msgpack record. */
int json_line_to_record(const char *line, size_t len, msgpack_packer *pk);

#endif
