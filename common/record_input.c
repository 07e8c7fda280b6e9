#include "record_input.h"
#include "error.h"
#include "msgpack_util.h"
#include "records.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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
};

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
        return 1;
    }
}


RecordInput *record_input_open(char **files, int n)
{
    static char *stdin_only[] = {"-"};
    RecordInput *in = hd_calloc(1, sizeof *in);
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
    free(in);
}
