/* The input side of a stream-processing tool: the files named on the
 * command line (or stdin) read one after another as one stream of data
 * records.  Headers and `end` records are not returned as data; the
 * headers are kept for the provenance `inputs` of the tool's own header.
 * Opening reads ahead to the first data record of the first file, so the
 * leading headers are known before the tool writes its header. */
#ifndef HD_RECORD_INPUT_H
#define HD_RECORD_INPUT_H

#include <msgpack.h>

typedef struct RecordInput RecordInput;

/* files[0..n) ("-" is stdin); n == 0 reads stdin.
 *
 * Shared hidden states (acts_states.h): `states` records are not returned;
 * they are kept in an unlinked temporary file ($TMPDIR, else /tmp), and an
 * acts record that names them is returned in its self-contained form. */
RecordInput *record_input_open(char **files, int n);
/* The same, but states records are returned as data records and acts
 * records as they are (hd-train's spool keeps the shared form). */
RecordInput *record_input_open_shared(char **files, int n);
/* 1 and the next data record (valid until the next call), 0 at the end of
 * the last file, -1 on error ("FILE: record N: what"). */
int record_input_next(RecordInput *in, const msgpack_object **rec);
/* Returns only the data records numbered [first, end) (0-based, counted
 * over all files; --shard I/N): those before are read and dropped, and
 * reading stops at `end` without looking at the rest.  Call it before the
 * first record_input_next. */
void record_input_set_range(RecordInput *in, long long first, long long end);
/* Headers seen so far (at open: those before the first data record). */
int record_input_n_headers(const RecordInput *in);
const msgpack_object *const *record_input_headers(const RecordInput *in);
/* "FILE: record N" context of the last record returned, for messages. */
const char *record_input_where(const RecordInput *in);
void record_input_close(RecordInput *in);

#endif
