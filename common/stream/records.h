/* The record stream of hyperdas-records(5): msgpack maps one after another,
 * optionally gzip-compressed as a whole.
 *
 * Reading: gzip is detected by its magic bytes (zlib's gz* reads plain
 * data transparently).  Every error message names the file and the record
 * number: "FILE: record N: what".  A stream may be the concatenation of
 * several streams (`cat a b`): each header starts a new segment, and an
 * `end` record's count is checked against its own segment.  Every segment
 * must be whole: input that does not start with a header, or that ends
 * (or starts its next header) before a segment's end record, is an error
 * ("FILE: truncated: no end record after N records"), so that a cut
 * stream is never taken for a short complete one.  A reader closed before
 * the end (hd-cat --head, --shard ranges) checks nothing it did not read.
 * No record may be larger than HD_MAX_RECORD (record_limit.h): a reader
 * refuses one from the header that declares it, a writer refuses to make
 * one.
 *
 * Writing: to stdout (refused when it is a terminal) or to a file written
 * under a temporary name and renamed by record_writer_close(), so a killed
 * run never leaves a half file under the final name (a FIFO or device is
 * written in place: outfile.h).  Each record is packed with the packer,
 * then record_writer_end_record() is called. */
#ifndef HD_RECORDS_H
#define HD_RECORDS_H

#include <msgpack.h>

typedef struct RecordReader RecordReader;

/* path "-" or NULL is stdin. */
RecordReader *record_reader_open(const char *path);
/* 1: *rec is the next record (valid until the next call); 0: end of input
 * after an end record; -1: error (hd_last_error() says "FILE: record N:
 * what", or "FILE: truncated: ..." / "FILE: empty input: ..." at the end). */
int record_reader_next(RecordReader *r, const msgpack_object **rec);
/* The stream kinds the reader accepts, '|'-separated ("known",
 * "pairs|queries"): a header of another kind (of any segment) is an error
 * "FILE: record N: expected a known stream, got pairs", so that input of
 * the wrong kind is never read as an empty or pass-through result.  Call
 * it before the first record; NULL accepts any kind. */
void record_reader_expect_kind(RecordReader *r, const char *kinds);
/* The same for every reader that has no kinds of its own, the ones a
 * RecordInput opens included, checked at each header from now on (kinds
 * must outlive the readers; NULL: any). */
void record_expect_kind(const char *kinds);
/* The header of the current segment, or NULL if the stream has none yet. */
const msgpack_object *record_reader_header(const RecordReader *r);
const char *record_reader_path(const RecordReader *r);   /* "-" shown as "stdin" */
long long record_reader_index(const RecordReader *r);    /* 1-based number of the last record */
void record_reader_close(RecordReader *r);
/* What the reader checks of every record by itself (a map with string
 * keys and a string 't', a valid header, every tensor's dtype, shape and
 * size), for records made elsewhere (hd-cat --to-records): -1 with the
 * reader's message, without "FILE: record N: ". */
int record_check(const msgpack_object *rec);

typedef struct RecordWriter RecordWriter;

/* path "-" or NULL is stdout.  gzip: compress the whole stream (also
 * chosen automatically when path ends in ".gz"). */
RecordWriter *record_writer_open(const char *path, int gzip);
msgpack_packer *record_writer_packer(RecordWriter *w);
/* Marks the end of one packed record: writes it out and counts it. */
int record_writer_end_record(RecordWriter *w);
/* Copies a record read from another stream unchanged. */
int record_writer_write_object(RecordWriter *w, const msgpack_object *rec);
long long record_writer_count(const RecordWriter *w);
/* Writes the closing `end` record, flushes, and renames a file into place. */
int record_writer_close(RecordWriter *w);
/* Drops a file output (removes the temporary file); for error paths. */
void record_writer_abort(RecordWriter *w);

#endif
