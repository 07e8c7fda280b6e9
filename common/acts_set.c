#include "acts_set.h"
#include "error.h"
#include "msgpack_util.h"
#include "record_input.h"
#include "records.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct ActsSet {
    char *path;
    int fd;
    uint64_t *offset;   /* [count + 1]: record i is bytes [offset[i], offset[i+1]) */
    size_t count, cap;
    MpCopy *headers;
    const msgpack_object **header_ptrs;
    int n_headers;
};

static void add_offset(ActsSet *s, uint64_t off)
{
    if (s->count + 2 > s->cap) {
        s->cap = s->cap ? 2 * s->cap : 1024;
        s->offset = hd_realloc(s->offset, s->cap * sizeof *s->offset);
    }
    s->offset[s->count + 1] = off;
    s->count++;
}

static int write_all(int fd, const char *p, size_t n, const char *path)
{
    while (n > 0) {
        ssize_t k = write(fd, p, n);
        if (k < 0 && errno == EINTR) continue;
        if (k <= 0) return hd_fail("%s: write error: %s", path, strerror(errno));
        p += k;
        n -= (size_t)k;
    }
    return 0;
}

static ActsSet *set_new(const char *spool_path)
{
    ActsSet *s = hd_calloc(1, sizeof *s);
    s->path = hd_strdup(spool_path);
    s->fd = -1;
    s->cap = 1024;
    s->offset = hd_malloc(s->cap * sizeof *s->offset);
    s->offset[0] = 0;
    return s;
}

/* Packs one record to learn its size in the spool and records its end
 * offset; with write_fd >= 0 also appends the bytes.  The spool holds
 * records only, back to back, packed by msgpack-c, so re-packing a record
 * read from it gives exactly its bytes. */
typedef struct {
    msgpack_sbuffer sb;
    msgpack_packer pk;
    uint64_t at;
} Measure;

static int measure_add(ActsSet *s, Measure *m, const msgpack_object *rec, int write_fd)
{
    msgpack_sbuffer_clear(&m->sb);
    msgpack_pack_object(&m->pk, *rec);
    if (write_fd >= 0 && write_all(write_fd, m->sb.data, m->sb.size, s->path) < 0) return -1;
    m->at += m->sb.size;
    add_offset(s, m->at);
    return 0;
}

static void measure_init(Measure *m)
{
    msgpack_sbuffer_init(&m->sb);
    msgpack_packer_init(&m->pk, &m->sb, msgpack_sbuffer_write);
    m->at = 0;
}

ActsSet *acts_set_build(char **files, int n, const char *spool_path)
{
    RecordInput *in = record_input_open(files, n);
    if (!in) return NULL;
    ActsSet *s = set_new(spool_path);
    s->fd = open(spool_path, O_RDWR | O_CREAT | O_TRUNC, 0644);
    if (s->fd < 0) {
        hd_fail("%s: cannot create the spool: %s", spool_path, strerror(errno));
        record_input_close(in);
        acts_set_close(s);
        return NULL;
    }
    Measure m;
    measure_init(&m);
    const msgpack_object *rec;
    int rc;
    while ((rc = record_input_next(in, &rec)) == 1)
        if (mp_is_str(mp_map_get(rec, "t"), "acts") && measure_add(s, &m, rec, s->fd) < 0) {
            rc = -1;
            break;
        }
    msgpack_sbuffer_destroy(&m.sb);
    if (rc == 0) {
        s->n_headers = record_input_n_headers(in);
        s->headers = hd_calloc((size_t)s->n_headers + 1, sizeof *s->headers);
        s->header_ptrs = hd_calloc((size_t)s->n_headers + 1, sizeof *s->header_ptrs);
        for (int i = 0; i < s->n_headers; i++)
            s->header_ptrs[i] = mp_copy_init(&s->headers[i], record_input_headers(in)[i]);
    }
    record_input_close(in);
    if (rc < 0) {
        acts_set_close(s);
        return NULL;
    }
    return s;
}

ActsSet *acts_set_open_spool(const char *spool_path)
{
    RecordReader *r = record_reader_open(spool_path);
    if (!r) return NULL;
    ActsSet *s = set_new(spool_path);
    s->fd = open(spool_path, O_RDONLY);
    Measure m;
    measure_init(&m);
    const msgpack_object *rec;
    int rc;
    while ((rc = record_reader_next(r, &rec)) == 1) measure_add(s, &m, rec, -1);
    msgpack_sbuffer_destroy(&m.sb);
    record_reader_close(r);
    if (rc < 0 || s->fd < 0) {
        if (s->fd < 0) hd_fail("%s: %s", spool_path, strerror(errno));
        acts_set_close(s);
        return NULL;
    }
    return s;
}

size_t acts_set_count(const ActsSet *s) { return s->count; }
int acts_set_n_headers(const ActsSet *s) { return s->n_headers; }
const msgpack_object *const *acts_set_headers(const ActsSet *s) { return s->header_ptrs; }
const char *acts_set_spool_path(const ActsSet *s) { return s->path; }

int acts_set_get(ActsSet *s, size_t i, MpCopy *c, const msgpack_object **rec)
{
    if (i >= s->count) return hd_fail("%s: no record %zu", s->path, i + 1);
    size_t n = (size_t)(s->offset[i + 1] - s->offset[i]);
    /* The record is unpacked in place: its buffer becomes the copy's own. */
    char *buf = hd_malloc(n);
    size_t got = 0;
    while (got < n) {
        ssize_t k = pread(s->fd, buf + got, n - got, (off_t)(s->offset[i] + got));
        if (k < 0 && errno == EINTR) continue;
        if (k <= 0) {
            free(buf);
            return hd_fail("%s: record %zu: read error", s->path, i + 1);
        }
        got += (size_t)k;
    }
    msgpack_unpacked_init(&c->unpacked);
    size_t off = 0;
    if (msgpack_unpack_next(&c->unpacked, buf, n, &off) != MSGPACK_UNPACK_SUCCESS || off != n) {
        msgpack_unpacked_destroy(&c->unpacked);
        free(buf);
        return hd_fail("%s: record %zu: corrupt spool", s->path, i + 1);
    }
    c->bytes = buf;
    *rec = &c->unpacked.data;
    return 0;
}

void acts_set_close(ActsSet *s)
{
    if (!s) return;
    if (s->fd >= 0) close(s->fd);
    for (int i = 0; i < s->n_headers; i++) mp_copy_destroy(&s->headers[i]);
    free(s->headers);
    free(s->header_ptrs);
    free(s->offset);
    free(s->path);
    free(s);
}
