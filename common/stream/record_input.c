#include "stream/record_input.h"
#include "stream/acts_states.h"
#include "base/error.h"
#include "stream/msgpack_util.h"
#include "stream/records.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct RecordInput {
    char **files;
    int n_files, current;
    RecordReader *reader;
    const msgpack_object *pending;   /* read ahead at open, not yet returned */
    int pending_rc;
    long long index, first, end;     /* data records read; the range returned */
    /* headers: deep copies, since a reader's objects die with it */
    MpCopy **copies;
    const msgpack_object **headers;
    int n_headers;
    char where[600];
    /* shared hidden states: kept (keep_states) or stored and resolved */
    int keep_states;
    StatesIndex states;
    int states_fd;                   /* the unlinked store, -1 until needed */
    uint64_t states_end;
    msgpack_sbuffer packed;          /* scratch: one states record's bytes */
    MpCopy resolved;                 /* the last resolved acts record */
    int has_resolved;
};

static int store_states(RecordInput *in, const msgpack_object *rec)
{
    uint64_t key;
    if (states_record_check(rec, &key) < 0) return -1;
    if (states_index_find(&in->states, key, NULL, NULL)) return 0;  /* cat of streams */
    if (in->states_fd < 0) {
        const char *dir = getenv("TMPDIR");
        char path[4096];
        snprintf(path, sizeof path, "%s/hyperdas-states.XXXXXX", dir && *dir ? dir : "/tmp");
        in->states_fd = mkstemp(path);
        if (in->states_fd < 0)
            return hd_fail("cannot create a temporary file for shared states in %s: %s",
                           dir && *dir ? dir : "/tmp", strerror(errno));
        unlink(path);  /* gone with the process, whatever happens */
    }
    uint64_t at;
    if (states_append_record(in->states_fd, &in->packed, rec, &in->states_end, &at,
                             "the temporary states file") < 0)
        return -1;
    states_index_put(&in->states, key, at, in->packed.size);
    return 0;
}

/* A data record as the caller sees it: states stored, shared acts resolved.
 * 1 to return *rec, 0 to read on, -1 on error. */
static int take(RecordInput *in, const msgpack_object **rec)
{
    if (in->keep_states) return 1;
    const msgpack_object *t = mp_map_get(*rec, "t");
    if (mp_is_str(t, "states")) return store_states(in, *rec) < 0 ? -1 : 0;
    if (!mp_is_str(t, "acts") || !acts_record_is_shared(*rec)) return 1;
    if (in->has_resolved) mp_copy_destroy(&in->resolved);
    in->has_resolved = 0;
    if (states_resolve(&in->states, in->states_fd, *rec, &in->resolved, rec) < 0) return -1;
    in->has_resolved = 1;
    return 1;
}

static void keep_header(RecordInput *in, const msgpack_object *h)
{
    /* Each copy lives in its own allocation, so growing the arrays never
     * moves an object a caller already holds. */
    in->copies = hd_realloc(in->copies, (size_t)(in->n_headers + 1) * sizeof *in->copies);
    in->headers = hd_realloc(in->headers, (size_t)(in->n_headers + 1) * sizeof *in->headers);
    MpCopy *c = hd_malloc(sizeof *c);
    in->copies[in->n_headers] = c;
    in->headers[in->n_headers] = mp_copy_init(c, h);
    in->n_headers++;
}

/* Next data record across all files, keeping headers on the way. */
static int advance(RecordInput *in, const msgpack_object **rec)
{
    for (;;) {
        if (!in->reader) {
            if (in->current >= in->n_files) return 0;
            in->reader = record_reader_open(in->files[in->current]);
            if (!in->reader) return -1;
        }
        int rc = record_reader_next(in->reader, rec);
        if (rc < 0) return -1;
        if (rc == 0) {
            record_reader_close(in->reader);
            in->reader = NULL;
            in->current++;
            continue;
        }
        const msgpack_object *t = mp_map_get(*rec, "t");
        if (mp_is_str(t, "header")) { keep_header(in, *rec); continue; }
        if (mp_is_str(t, "end")) continue;
        snprintf(in->where, sizeof in->where, "%s: record %lld", record_reader_path(in->reader),
                 record_reader_index(in->reader));
        rc = take(in, rec);
        if (rc < 0) return hd_fail_prefix("%s: ", in->where);
        if (rc > 0) return 1;
    }
}


static RecordInput *open_input(char **files, int n, int keep_states)
{
    static char *stdin_only[] = {"-"};
    RecordInput *in = hd_calloc(1, sizeof *in);
    in->keep_states = keep_states;
    in->states_fd = -1;
    states_index_init(&in->states);
    msgpack_sbuffer_init(&in->packed);
    in->files = n > 0 ? files : stdin_only;
    in->n_files = n > 0 ? n : 1;
    in->end = LLONG_MAX;
    in->pending_rc = advance(in, &in->pending);
    if (in->pending_rc < 0) {
        record_input_close(in);
        return NULL;
    }
    return in;
}

RecordInput *record_input_open(char **files, int n) { return open_input(files, n, 0); }
RecordInput *record_input_open_shared(char **files, int n) { return open_input(files, n, 1); }

static int next_any(RecordInput *in, const msgpack_object **rec)
{
    if (in->pending_rc != 2) {       /* the read-ahead record first */
        int rc = in->pending_rc;
        *rec = in->pending;
        in->pending_rc = 2;
        return rc;
    }
    return advance(in, rec);
}

int record_input_next(RecordInput *in, const msgpack_object **rec)
{
    for (;;) {
        if (in->index >= in->end) return 0;
        int rc = next_any(in, rec);
        if (rc <= 0) return rc;
        if (in->index++ >= in->first) return 1;
    }
}

void record_input_set_range(RecordInput *in, long long first, long long end)
{
    in->first = first;
    in->end = end;
}

int record_input_n_headers(const RecordInput *in) { return in->n_headers; }
const msgpack_object *const *record_input_headers(const RecordInput *in) { return in->headers; }
const char *record_input_where(const RecordInput *in) { return in->where; }

void record_input_close(RecordInput *in)
{
    if (!in) return;
    record_reader_close(in->reader);
    for (int i = 0; i < in->n_headers; i++) {
        mp_copy_destroy(in->copies[i]);
        free(in->copies[i]);
    }
    free(in->copies);
    free(in->headers);
    if (in->has_resolved) mp_copy_destroy(&in->resolved);
    if (in->states_fd >= 0) close(in->states_fd);
    states_index_free(&in->states);
    msgpack_sbuffer_destroy(&in->packed);
    free(in);
}
