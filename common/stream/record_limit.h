/* The record size limit: no record of a stream may be larger than
 * HD_MAX_RECORD bytes (default 1 GiB; "4G", "512M", "65536K" or plain
 * bytes), so that a corrupt or hostile stream (a gzip member that
 * expands to a 4 GB string) fails at once with a clear message instead of
 * growing the reader's buffers until memory runs out.
 *
 * The reader learns a record's size from what its msgpack headers
 * declare, before the bytes arrive: RecordScan walks the raw bytes as
 * they are read, keeping only counts (bytes still to skip, values still
 * to come), and reports the first record whose declared size passes the
 * limit.  A declared size is a lower bound (each value is at least one
 * byte), so a record is never refused that fits. */
#ifndef HD_RECORD_LIMIT_H
#define HD_RECORD_LIMIT_H

#include <stddef.h>
#include <stdint.h>

#define RECORD_LIMIT_DEFAULT ((uint64_t)1 << 30)

/* The limit: HD_MAX_RECORD when set, else the default.  -1 (hd_fail)
 * when HD_MAX_RECORD is not a size. */
int record_limit_get(uint64_t *limit);
/* Parses "N", "NK", "NM", "NG", "NT" (powers of 1024); -1 when not a
 * positive size. */
int record_limit_parse(const char *text, uint64_t *out);
/* "1 GiB", "512 MiB", "1000 bytes": the limit for messages. */
void record_limit_format(uint64_t bytes, char *out, size_t size);

typedef struct {
    uint64_t limit;
    uint64_t skip;        /* payload bytes still to pass over */
    uint64_t pending;     /* values still to come in the current record */
    uint64_t rec_bytes;   /* bytes of the current record seen */
    uint64_t rec_values;  /* values its containers declared */
    unsigned char type;   /* a str/bin/ext/array/map whose length is being read */
    int head_have, head_need;
    uint64_t head_value;
    long long records;    /* records completed */
    int off;              /* bytes it does not understand: leave them to msgpack */
    size_t stop;          /* after a feed: the bytes of it msgpack-c may see */
} RecordScan;

void record_scan_init(RecordScan *s, uint64_t limit);
/* Feeds the next n bytes of the stream.  0, or -1 when the record
 * numbered s->records + 1 (1-based) declares more than the limit; the
 * scan then stops, and s->stop is the number of bytes before the one that
 * declared too much: msgpack-c must not be given that byte, since it
 * allocates an array's or map's objects as soon as it reads the header. */
int record_scan_feed(RecordScan *s, const unsigned char *p, size_t n);

#endif
