#include "stream/records.h"
#include "base/cli.h"
#include "base/error.h"
#include "stream/header.h"
#include "stream/map_writer.h"
#include "stream/msgpack_util.h"
#include "base/outfile.h"
#include "stream/record_limit.h"
#include "stream/tensor.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

/* ---------------------------------------------------------------- reading */

struct RecordReader {
    gzFile gz;
    char *path;                 /* for messages */
    msgpack_unpacker unpacker;
    msgpack_unpacked current;
    msgpack_unpacked header;    /* header of the current segment */
    int have_header;
    long long index;            /* records returned so far */
    long long segment_records;  /* data records since the last header */
    int in_segment;             /* a header was read, its end record not yet */
    int at_eof;
    RecordScan scan;            /* declared record sizes against the limit */
    long long over_limit;       /* number of the record that declares more, or 0 */
    char *kinds;                /* record_reader_expect_kind, or NULL */
};

/* record_expect_kind: for readers without kinds of their own */
static const char *default_kinds;

void record_expect_kind(const char *kinds) { default_kinds = kinds; }

void record_reader_expect_kind(RecordReader *r, const char *kinds)
{
    free(r->kinds);
    r->kinds = kinds ? hd_strdup(kinds) : NULL;
}

/* A header's kind against "a|b|c": 0, or -1 with "expected a KIND stream,
 * got KIND2" (the alternatives joined by "or"). */
static int check_kind(const char *kinds, const msgpack_object *header)
{
    const msgpack_object *k = mp_map_get(header, "kind");
    const char *got = k && k->type == MSGPACK_OBJECT_STR ? k->via.str.ptr : NULL;
    size_t got_len = got ? k->via.str.size : 0;
    for (const char *p = kinds; got;) {
        size_t n = strcspn(p, "|");
        if (n == got_len && memcmp(p, got, n) == 0) return 0;
        if (!p[n]) break;
        p += n + 1;
    }
    char want[256] = "";
    for (const char *p = kinds; *p;) {
        size_t n = strcspn(p, "|");
        snprintf(want + strlen(want), sizeof want - strlen(want), "%s%.*s", p == kinds ? "" : " or ", (int)n, p);
        p += n + (p[n] != 0);
    }
    const char *article = strchr("aeiou", kinds[0]) ? "an" : "a";
    if (!got) return hd_fail("expected %s %s stream, got a header without a kind", article, want);
    return hd_fail("expected %s %s stream, got %.*s", article, want, (int)(got_len > 64 ? 64 : got_len), got);
}

RecordReader *record_reader_open(const char *path)
{
    int stdin_input = !path || strcmp(path, "-") == 0;
    int fd = stdin_input ? dup(STDIN_FILENO) : open(path, O_RDONLY);
    if (fd < 0) {
        hd_fail("%s: %s", stdin_input ? "stdin" : path, strerror(errno));
        return NULL;
    }
    uint64_t limit;
    if (record_limit_get(&limit) < 0) {
        close(fd);
        return NULL;
    }
    /* A 128 KB read buffer (zlib holds three times that) pays on the big
     * streams of activations; a small file gets one of its own size, at
     * least zlib's 8 KB default: a reader opened per small file (a score
     * file, a fuzzer's input) then costs no large allocation. */
    unsigned gz_buf = 1u << 17;
    struct stat st;
    if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && st.st_size < (off_t)gz_buf)
        gz_buf = st.st_size < 8192 ? 8192u : (unsigned)st.st_size;
    RecordReader *r = hd_calloc(1, sizeof *r);
    r->path = hd_strdup(stdin_input ? "stdin" : path);
    record_scan_init(&r->scan, limit);
    /* gzread reads gzip-compressed and plain data alike: the magic bytes
     * decide, which is exactly the transparent detection hyperdas-records(5) asks. */
    r->gz = gzdopen(fd, "rb");
    if (!r->gz) {
        close(fd);
        hd_fail("%s: cannot open", r->path);
        free(r->path);
        free(r);
        return NULL;
    }
    gzbuffer(r->gz, gz_buf);
    if (!msgpack_unpacker_init(&r->unpacker, 1 << 16)) hd_die("out of memory");
    msgpack_unpacked_init(&r->current);
    msgpack_unpacked_init(&r->header);
    return r;
}

static int fail_at(RecordReader *r, long long n, const char *what)
{
    /* `what` may be the current error message itself: copy it first. */
    char copy[768];
    snprintf(copy, sizeof copy, "%s", what);
    return hd_fail("%s: record %lld: %s", r->path, n, copy);
}

/* Refills the unpacker: 1 data added, 0 end of input, -1 error. */
static int refill(RecordReader *r)
{
    if (!msgpack_unpacker_reserve_buffer(&r->unpacker, 1 << 16)) hd_die("out of memory");
    int got = gzread(r->gz, msgpack_unpacker_buffer(&r->unpacker),
                     (unsigned)msgpack_unpacker_buffer_capacity(&r->unpacker));
    if (got < 0) {
        int code;
        const char *msg = gzerror(r->gz, &code);
        return fail_at(r, r->index + 1, code == Z_ERRNO ? strerror(errno) : msg);
    }
    if (got == 0) {
        int code;
        gzerror(r->gz, &code);
        if (code != Z_OK && code != Z_STREAM_END)
            return fail_at(r, r->index + 1, "truncated or corrupt gzip stream");
        return 0;
    }
    /* Sizes are checked as the bytes arrive, before the unpacker grows its
     * buffer for them: a record declaring more than the limit stops the
     * reading at the next refill, with at most this chunk buffered, and
     * the unpacker never sees the header that declares too much. */
    if (record_scan_feed(&r->scan, (const unsigned char *)msgpack_unpacker_buffer(&r->unpacker),
                         (size_t)got) < 0)
        r->over_limit = r->scan.records + 1;
    msgpack_unpacker_buffer_consumed(&r->unpacker, r->scan.stop);
    return 1;
}

/* Walks a record for tensor maps and validates each (dtype, shape, size). */
static int check_tensors(const msgpack_object *o, int depth)
{
    if (depth > 64) return hd_fail("record nested too deeply");
    if (o->type == MSGPACK_OBJECT_MAP) {
        if (tensor_looks_like(o)) return tensor_check(o);
        for (uint32_t i = 0; i < o->via.map.size; i++)
            if (check_tensors(&o->via.map.ptr[i].val, depth + 1) < 0) {
                const msgpack_object *k = &o->via.map.ptr[i].key;
                if (k->type == MSGPACK_OBJECT_STR)
                    hd_fail_prefix("%.*s: ", (int)(k->via.str.size > 64 ? 64 : k->via.str.size),
                                   k->via.str.ptr);
                return -1;
            }
    } else if (o->type == MSGPACK_OBJECT_ARRAY) {
        for (uint32_t i = 0; i < o->via.array.size; i++)
            if (check_tensors(&o->via.array.ptr[i], depth + 1) < 0) return -1;
    }
    return 0;
}

int record_check(const msgpack_object *rec)
{
    if (rec->type != MSGPACK_OBJECT_MAP) return hd_fail("record is not a map");
    for (uint32_t i = 0; i < rec->via.map.size; i++)
        if (rec->via.map.ptr[i].key.type != MSGPACK_OBJECT_STR)
            return hd_fail("record has a key that is not a string");
    if (!mp_record_type(rec, NULL)) return hd_fail("record has no string type key 't'");
    if (mp_is_str(mp_map_get(rec, "t"), "header") && header_check(rec) < 0) return -1;
    return check_tensors(rec, 0);
}

static int validate(RecordReader *r, const msgpack_object *rec)
{
    long long n = r->index;
    if (record_check(rec) < 0) return fail_at(r, n, hd_last_error());
    int is_header = mp_is_str(mp_map_get(rec, "t"), "header");
    /* Every segment is header ... end: a record outside one means the
     * stream lost its start, or the segment before lost its end. */
    if (!r->in_segment && !is_header)
        return fail_at(r, n, r->index == 1 ? "the stream has no header (it must start with one)"
                                           : "a record after the end record, with no header before it");
    if (r->in_segment && is_header)
        return fail_at(r, n, "a header before the end record of the stream before it (truncated stream?)");
    const char *kinds = r->kinds ? r->kinds : default_kinds;
    if (is_header && kinds && check_kind(kinds, rec) < 0) return fail_at(r, n, hd_last_error());
    if (mp_is_str(mp_map_get(rec, "t"), "end")) {
        int64_t count;
        if (mp_get_int64(mp_map_get(rec, "count"), &count) < 0)
            return fail_at(r, n, "end record has no integer 'count'");
        if (count != r->segment_records) {
            char msg[128];
            snprintf(msg, sizeof msg, "end record counts %lld records, the stream has %lld",
                     (long long)count, r->segment_records);
            return fail_at(r, n, msg);
        }
    }
    return 0;
}

/* The scan found a record declaring more than the limit; the records
 * before it, whole in the buffer, have been returned. */
static int fail_over_limit(RecordReader *r)
{
    char lim[32], msg[160];
    record_limit_format(r->scan.limit, lim, sizeof lim);
    snprintf(msg, sizeof msg, "larger than the record size limit of %s (HD_MAX_RECORD raises it)", lim);
    return fail_at(r, r->over_limit, msg);
}

/* End of input: clean only after a complete segment (header ... end). */
static int at_end(RecordReader *r)
{
    if (msgpack_unpacker_message_size(&r->unpacker) > 0)
        return fail_at(r, r->index + 1, "truncated record at end of input");
    if (r->index == 0) return hd_fail("%s: empty input: no header record", r->path);
    if (r->in_segment)
        return hd_fail("%s: truncated: no end record after %lld record%s", r->path, r->index,
                       r->index == 1 ? "" : "s");
    return 0;
}

int record_reader_next(RecordReader *r, const msgpack_object **rec)
{
    for (;;) {
        msgpack_unpack_return ret = msgpack_unpacker_next(&r->unpacker, &r->current);
        if (ret == MSGPACK_UNPACK_SUCCESS) {
            r->index++;
            if (r->over_limit && r->index >= r->over_limit) return fail_over_limit(r);
            const msgpack_object *o = &r->current.data;
            if (validate(r, o) < 0) return -1;
            if (mp_is_str(mp_map_get(o, "t"), "header")) {
                /* Keep the header alive: swap it into its own slot. */
                msgpack_unpacked_destroy(&r->header);
                r->header = r->current;
                msgpack_unpacked_init(&r->current);
                r->have_header = 1;
                r->in_segment = 1;
                r->segment_records = 0;
                *rec = &r->header.data;
                return 1;
            }
            if (mp_is_str(mp_map_get(o, "t"), "end")) {
                r->in_segment = 0;
                r->segment_records = 0;
            } else {
                r->segment_records++;
            }
            *rec = o;
            return 1;
        }
        if (ret == MSGPACK_UNPACK_PARSE_ERROR)
            return fail_at(r, r->index + 1, "not a msgpack value (corrupt stream?)");
        if (ret == MSGPACK_UNPACK_NOMEM_ERROR)
            return fail_at(r, r->index + 1, "record too large for memory");
        /* MSGPACK_UNPACK_CONTINUE: need more bytes */
        if (r->over_limit) return fail_over_limit(r);   /* no refill: the buffer stays small */
        if (r->at_eof) return at_end(r) < 0 ? -1 : 0;
        int got = refill(r);
        if (got < 0) return -1;
        if (got == 0) {
            r->at_eof = 1;
            return at_end(r) < 0 ? -1 : 0;
        }
    }
}

const msgpack_object *record_reader_header(const RecordReader *r)
{
    return r->have_header ? &r->header.data : NULL;
}

const char *record_reader_path(const RecordReader *r) { return r->path; }
long long record_reader_index(const RecordReader *r) { return r->index; }

void record_reader_close(RecordReader *r)
{
    if (!r) return;
    gzclose(r->gz);
    msgpack_unpacked_destroy(&r->current);
    msgpack_unpacked_destroy(&r->header);
    msgpack_unpacker_destroy(&r->unpacker);
    free(r->kinds);
    free(r->path);
    free(r);
}

/* ---------------------------------------------------------------- writing */

struct RecordWriter {
    OutFile out;
    gzFile gz;                  /* non-NULL when compressing */
    msgpack_sbuffer buf;        /* records packed but not yet written */
    msgpack_packer pk;
    size_t record_start;        /* offset in buf where the current record began */
    long long count;            /* records written, header excluded */
    int saw_first;
    double last_flush;
    uint64_t limit;             /* record size limit: what a reader accepts */
};

static int ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && strcmp(s + n - m, suffix) == 0;
}

RecordWriter *record_writer_open(const char *path, int gzip)
{
    uint64_t limit;
    if (record_limit_get(&limit) < 0) return NULL;
    RecordWriter *w = hd_calloc(1, sizeof *w);
    w->limit = limit;
    if (outfile_open(&w->out, path, 1) < 0) {
        free(w);
        return NULL;
    }
    if (gzip || (path && ends_with(path, ".gz"))) {
        int fd = dup(w->out.fd);
        w->gz = fd >= 0 ? gzdopen(fd, "wb6") : NULL;
        if (!w->gz) {
            if (fd >= 0) close(fd);
            hd_fail("%s: cannot start gzip output", outfile_name(&w->out));
            outfile_abort(&w->out);
            free(w);
            return NULL;
        }
    }
    msgpack_sbuffer_init(&w->buf);
    msgpack_packer_init(&w->pk, &w->buf, msgpack_sbuffer_write);
    w->last_flush = hd_now_seconds();
    return w;
}

msgpack_packer *record_writer_packer(RecordWriter *w) { return &w->pk; }
long long record_writer_count(const RecordWriter *w) { return w->count; }

static int write_all(RecordWriter *w, const char *p, size_t n)
{
    if (w->gz) {
        while (n > 0) {
            unsigned chunk = n > (1u << 30) ? (1u << 30) : (unsigned)n;
            if (gzwrite(w->gz, p, chunk) != (int)chunk) break;
            p += chunk;
            n -= chunk;
        }
        if (n == 0) return 0;
    } else {
        while (n > 0) {
            ssize_t k = write(w->out.fd, p, n);
            if (k < 0 && errno == EINTR) continue;
            if (k <= 0) break;
            p += k;
            n -= (size_t)k;
        }
        if (n == 0) return 0;
    }
    /* The reader went away: leave quietly, as a closed pipe should. */
    if (errno == EPIPE) _exit(141);
    return hd_fail("%s: write error: %s", outfile_name(&w->out), strerror(errno));
}

static int flush(RecordWriter *w)
{
    if (w->buf.size == 0) return 0;
    int rc = write_all(w, w->buf.data, w->buf.size);
    msgpack_sbuffer_clear(&w->buf);
    w->record_start = 0;
    w->last_flush = hd_now_seconds();
    return rc;
}

int record_writer_end_record(RecordWriter *w)
{
    /* A record no reader would take is refused here, where it is made. */
    uint64_t size = w->buf.size - w->record_start;
    if (size > w->limit) {
        char lim[32];
        record_limit_format(w->limit, lim, sizeof lim);
        w->buf.size = w->record_start;
        return hd_fail("%s: record %lld: %" PRIu64 " bytes, larger than the record size limit of %s "
                       "(HD_MAX_RECORD raises it)", outfile_name(&w->out), w->count + 1 + w->saw_first,
                       size, lim);
    }
    /* The first record of a stream is its header; count the rest. */
    if (w->saw_first) w->count++;
    w->saw_first = 1;
    w->record_start = w->buf.size;
    /* Batch small records, but never hold output back for long, so that a
     * slow producer still streams to its consumer. */
    if (w->buf.size >= (1u << 18) || hd_now_seconds() - w->last_flush > 0.2) return flush(w);
    return 0;
}

int record_writer_write_object(RecordWriter *w, const msgpack_object *rec)
{
    if (msgpack_pack_object(&w->pk, *rec) != 0)
        return hd_fail("%s: cannot pack record", outfile_name(&w->out));
    return record_writer_end_record(w);
}

int record_writer_close(RecordWriter *w)
{
    int rc = 0;
    MapWriter m;
    map_begin(&m, &w->pk);
    map_str(&m, "t", "end");
    map_int64(&m, "count", w->count);
    rc = map_end(&m) < 0 ? hd_fail("%s: cannot pack the end record", outfile_name(&w->out)) : 0;
    if (flush(w) < 0) rc = -1;
    if (w->gz && gzclose(w->gz) != Z_OK && rc == 0)
        rc = hd_fail("%s: gzip write error", outfile_name(&w->out));
    w->gz = NULL;
    if (rc == 0) rc = outfile_commit(&w->out);
    else outfile_abort(&w->out);
    msgpack_sbuffer_destroy(&w->buf);
    free(w);
    return rc;
}

void record_writer_abort(RecordWriter *w)
{
    if (!w) return;
    /* Whole records already packed still go out to a pipe: a consumer
     * downstream keeps every complete record it was sent. */
    if (outfile_is_stream(&w->out)) {
        w->buf.size = w->record_start;
        flush(w);
    }
    if (w->gz) gzclose(w->gz);
    outfile_abort(&w->out);
    msgpack_sbuffer_destroy(&w->buf);
    free(w);
}
