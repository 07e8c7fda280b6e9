#include "train/acts_set.h"
#include "stream/acts_states.h"
#include "base/error.h"
#include "stream/msgpack_util.h"
#include "stream/record_input.h"
#include "stream/records.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct ActsSet {
    char *path;
    int fd;
    uint64_t *start, *len;  /* acts record i is bytes [start[i], start[i] + len[i]) */
    size_t count, cap;
    StatesIndex states;     /* the states records among them (shared form) */
    MpCopy *headers;
    const msgpack_object **header_ptrs;
    int n_headers;
};

static void add_acts(ActsSet *s, uint64_t at, uint64_t n)
{
    if (s->count == s->cap) {
        s->cap = s->cap ? 2 * s->cap : 1024;
        s->start = hd_realloc(s->start, s->cap * sizeof *s->start);
        s->len = hd_realloc(s->len, s->cap * sizeof *s->len);
    }
    s->start[s->count] = at;
    s->len[s->count] = n;
    s->count++;
}

static ActsSet *set_new(const char *spool_path)
{
    ActsSet *s = hd_calloc(1, sizeof *s);
    s->path = hd_strdup(spool_path);
    s->fd = -1;
    states_index_init(&s->states);
    return s;
}

/* Indexes one record of the spool, an acts or a states record, that lies at
 * [at, at + n).  Other records are not in the spool. */
static int index_record(ActsSet *s, const msgpack_object *rec, uint64_t at, uint64_t n)
{
    const msgpack_object *t = mp_map_get(rec, "t");
    if (mp_is_str(t, "acts")) {
        /* a reference is checked now, while the input's name and record
         * number are known, not when the record is first drawn */
        static const char *const fields[] = {"base_states", "source_states"};
        for (int f = 0; f < 2 && acts_record_is_shared(rec); f++) {
            uint64_t key;
            char hex[17];
            if (states_key_get(rec, fields[f], &key) < 0) return -1;
            states_key_format(key, hex);
            if (!states_index_find(&s->states, key, NULL, NULL))
                return hd_fail("%s %s: no states record with this key earlier in the stream",
                               fields[f], hex);
        }
        add_acts(s, at, n);
        return 0;
    }
    uint64_t key;
    if (states_record_check(rec, &key) < 0) return -1;
    states_index_put(&s->states, key, at, n);
    return 0;
}

ActsSet *acts_set_build(char **files, int n, const char *spool_path)
{
    /* the shared form is spooled as it is: one copy of each sequence's
     * states, resolved when a record is read */
    RecordInput *in = record_input_open_shared(files, n);
    if (!in) return NULL;
    ActsSet *s = set_new(spool_path);
    s->fd = open(spool_path, O_RDWR | O_CREAT | O_TRUNC, 0644);
    if (s->fd < 0) {
        hd_fail("%s: cannot create the spool: %s", spool_path, strerror(errno));
        record_input_close(in);
        acts_set_close(s);
        return NULL;
    }
    /* The spool holds records only, back to back, packed by msgpack-c, so
     * re-packing a record read from it gives exactly its bytes.  A record
     * is written before it is indexed: when indexing refuses it, the
     * caller drops the whole spool (train_spool_build), so its bytes are
     * never read. */
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    uint64_t at = 0;
    const msgpack_object *rec;
    int rc;
    while ((rc = record_input_next(in, &rec)) == 1) {
        const msgpack_object *t = mp_map_get(rec, "t");
        if (!mp_is_str(t, "acts") && !mp_is_str(t, "states")) continue;
        uint64_t here;
        if (states_append_record(s->fd, &sb, rec, &at, &here, spool_path) < 0) {
            rc = -1;
            break;
        }
        if (index_record(s, rec, here, sb.size) < 0) {
            hd_fail_prefix("%s: ", record_input_where(in));
            rc = -1;
            break;
        }
    }
    msgpack_sbuffer_destroy(&sb);
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
    /* The spool is bare records (no header, no end record): it is read with
     * a plain unpacker over a growing window of the file, not with the
     * stream reader, which requires both. */
    ActsSet *s = set_new(spool_path);
    s->fd = open(spool_path, O_RDONLY);
    if (s->fd < 0) {
        hd_fail("%s: %s", spool_path, strerror(errno));
        acts_set_close(s);
        return NULL;
    }
    size_t cap = 4 << 20, have = 0, pos = 0;   /* window: file bytes [base, base + have) */
    uint64_t base = 0;
    char *buf = hd_malloc(cap);
    msgpack_unpacked u;
    msgpack_unpacked_init(&u);
    int rc = 0;
    for (;;) {
        size_t off = pos;
        msgpack_unpack_return r = have > pos ? msgpack_unpack_next(&u, buf, have, &off)
                                             : MSGPACK_UNPACK_CONTINUE;
        if (r == MSGPACK_UNPACK_SUCCESS) {
            if (index_record(s, &u.data, base + pos, off - pos) < 0) {
                hd_fail_prefix("%s: record at byte %llu: ", spool_path,
                               (unsigned long long)(base + pos));
                rc = -1;
                break;
            }
            pos = off;
            continue;
        }
        if (r != MSGPACK_UNPACK_CONTINUE) {
            rc = hd_fail("%s: corrupt spool at byte %llu", spool_path,
                         (unsigned long long)(base + pos));
            break;
        }
        /* need more bytes: drop what is parsed, grow if one record fills it */
        memmove(buf, buf + pos, have - pos);
        base += pos;
        have -= pos;
        pos = 0;
        if (have == cap) buf = hd_realloc(buf, cap *= 2);
        ssize_t k = read(s->fd, buf + have, cap - have);
        if (k < 0 && errno == EINTR) continue;
        if (k < 0) {
            rc = hd_fail("%s: read error: %s", spool_path, strerror(errno));
            break;
        }
        if (k == 0) {
            if (have) rc = hd_fail("%s: the spool ends inside a record", spool_path);
            break;
        }
        have += (size_t)k;
    }
    msgpack_unpacked_destroy(&u);
    free(buf);
    if (rc < 0) {
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
    size_t n = (size_t)s->len[i];
    /* The record is unpacked in place: its buffer becomes the copy's own. */
    char *buf = states_pread(s->fd, s->start[i], n, s->path);
    if (!buf) return hd_fail_prefix("%s: record %zu: ", s->path, i + 1);
    msgpack_unpacked_init(&c->unpacked);
    size_t off = 0;
    if (msgpack_unpack_next(&c->unpacked, buf, n, &off) != MSGPACK_UNPACK_SUCCESS || off != n) {
        msgpack_unpacked_destroy(&c->unpacked);
        free(buf);
        return hd_fail("%s: record %zu: corrupt spool", s->path, i + 1);
    }
    c->bytes = buf;
    *rec = &c->unpacked.data;
    if (!acts_record_is_shared(*rec)) return 0;
    MpCopy shared = *c;
    int rc = states_resolve(&s->states, s->fd, &shared.unpacked.data, c, rec);
    mp_copy_destroy(&shared);
    if (rc < 0) {
        memset(c, 0, sizeof *c);
        return hd_fail_prefix("%s: record %zu: ", s->path, i + 1);
    }
    return 0;
}

void acts_set_close(ActsSet *s)
{
    if (!s) return;
    if (s->fd >= 0) close(s->fd);
    for (int i = 0; i < s->n_headers; i++) mp_copy_destroy(&s->headers[i]);
    free(s->headers);
    free(s->header_ptrs);
    free(s->start);
    free(s->len);
    states_index_free(&s->states);
    free(s->path);
    free(s);
}
