/* The kind of a record stream (its header's `kind`: pairs, acts, scores,
 * log, ...), so that a tool given a stream of another kind says so in one
 * line instead of skipping every record and reporting "0 examples". */
#ifndef HD_STREAM_KIND_H
#define HD_STREAM_KIND_H

#include <msgpack.h>

/* -1 with "PATH: expected an acts stream, got pairs" when path is a
 * regular file whose first record is a header of another kind than want;
 * 0 otherwise.  Only regular files are read (their first record), so that
 * a pipe or process substitution is left whole for the real reading; a
 * stream that cannot be read is left to that reading to report. */
int stream_kind_check_file(const char *path, const char *want);

/* The same for headers already read from `where` (record_input_headers):
 * every one must be of kind want. */
int stream_kind_check_headers(const char *where, const msgpack_object *const *headers, int n,
                              const char *want);

#endif
