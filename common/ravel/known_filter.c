#include "ravel/known_filter.h"
#include "base/error.h"
#include "stream/msgpack_util.h"
#include "stream/records.h"
#include "base/rng.h"

#include <stdlib.h>
#include <string.h>

typedef struct {
    char *prompt;
    char *answer;        /* NULL: the record named no answer */
    uint64_t hash;       /* of the prompt */
    int n_true, n_false;
} KnownEntry;

struct KnownFilter {
    KnownEntry *slots;   /* open addressing, linear probing; prompt NULL = empty */
    size_t cap, used;
    long long records, correct;
    char *model;
    msgpack_unpacked *headers;
    char **header_bytes;       /* what the header copies point into */
    const msgpack_object **header_ptrs;
    int n_headers;
};

/* Several entries may share a prompt (different answers): lookups walk the
 * probe sequence and compare both strings. */
static KnownEntry *find_slot(const KnownFilter *f, const char *prompt, const char *answer, uint64_t h)
{
    size_t i = h & (f->cap - 1);
    for (;;) {
        KnownEntry *e = &f->slots[i];
        if (!e->prompt) return e;
        if (e->hash == h && strcmp(e->prompt, prompt) == 0 &&
            ((!e->answer && !answer) || (e->answer && answer && strcmp(e->answer, answer) == 0)))
            return e;
        i = (i + 1) & (f->cap - 1);
    }
}

static void grow(KnownFilter *f)
{
    size_t old_cap = f->cap;
    KnownEntry *old = f->slots;
    f->cap = old_cap ? old_cap * 2 : 1024;
    f->slots = hd_calloc(f->cap, sizeof *f->slots);
    for (size_t i = 0; i < old_cap; i++)
        if (old[i].prompt) *find_slot(f, old[i].prompt, old[i].answer, old[i].hash) = old[i];
    free(old);
}

static void add(KnownFilter *f, char *prompt, char *answer, int correct)
{
    if ((f->used + 1) * 4 > f->cap * 3) grow(f);
    uint64_t h = fnv1a64(prompt, strlen(prompt));
    KnownEntry *e = find_slot(f, prompt, answer, h);
    if (e->prompt) {
        free(prompt);
        free(answer);
    } else {
        e->prompt = prompt;
        e->answer = answer;
        e->hash = h;
        f->used++;
    }
    if (correct) e->n_true++;
    else e->n_false++;
}

static int entry_says_correct(const KnownEntry *e) { return e->prompt && e->n_true > 0 && e->n_false == 0; }

int known_filter_correct(const KnownFilter *f, const char *prompt, const char *answer)
{
    if (!f->cap) return 0;
    uint64_t h = fnv1a64(prompt, strlen(prompt));
    const KnownEntry *exact = find_slot(f, prompt, answer, h);
    const KnownEntry *any = find_slot(f, prompt, NULL, h);
    /* A false anywhere for this prompt and answer (or for the prompt as a
     * whole) wins over a true. */
    if ((exact->prompt && exact->n_false) || (any->prompt && any->n_false)) return 0;
    return entry_says_correct(exact) || entry_says_correct(any);
}

int known_filter_lookup(const KnownFilter *f, const char *prompt, const char *answer)
{
    if (!f->cap) return -1;
    uint64_t h = fnv1a64(prompt, strlen(prompt));
    const KnownEntry *exact = find_slot(f, prompt, answer, h);
    const KnownEntry *any = find_slot(f, prompt, NULL, h);
    if (!exact->prompt && !any->prompt) return -1;
    return known_filter_correct(f, prompt, answer);
}

KnownFilter *known_filter_new(void)
{
    return hd_calloc(1, sizeof(KnownFilter));
}

void known_filter_add(KnownFilter *f, const char *prompt, const char *answer, int correct)
{
    add(f, hd_strdup(prompt), answer ? hd_strdup(answer) : NULL, correct);
}

/* A deep copy of a header, so it outlives the reader.  The unpacked
 * object points into the packed bytes, so those are kept too. */
static void keep_header(KnownFilter *f, const msgpack_object *h)
{
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    msgpack_pack_object(&pk, *h);
    f->headers = hd_realloc(f->headers, (f->n_headers + 1) * sizeof *f->headers);
    f->header_bytes = hd_realloc(f->header_bytes, (f->n_headers + 1) * sizeof *f->header_bytes);
    msgpack_unpacked *u = &f->headers[f->n_headers];
    size_t size = sb.size, off = 0;
    char *bytes = msgpack_sbuffer_release(&sb);
    f->header_bytes[f->n_headers++] = bytes;
    msgpack_unpacked_init(u);
    msgpack_unpack_next(u, bytes, size, &off);
}

static int fail_rec(const RecordReader *r, const char *what)
{
    return hd_fail("%s: record %lld: %s", record_reader_path(r), record_reader_index(r), what);
}

static int read_known(KnownFilter *f, RecordReader *r, const msgpack_object *rec)
{
    const msgpack_object *prompt = mp_map_get(rec, "prompt");
    const msgpack_object *answer = mp_map_get(rec, "answer");
    const msgpack_object *correct = mp_map_get(rec, "correct");
    const msgpack_object *model = mp_map_get(rec, "model");
    if (!prompt || prompt->type != MSGPACK_OBJECT_STR)
        return fail_rec(r, "known record has no string 'prompt'");
    if (answer && answer->type != MSGPACK_OBJECT_STR && answer->type != MSGPACK_OBJECT_NIL)
        return fail_rec(r, "known record: 'answer' is not a string");
    if (!correct || correct->type != MSGPACK_OBJECT_BOOLEAN)
        return fail_rec(r, "known record has no boolean 'correct'");
    if (model && model->type == MSGPACK_OBJECT_STR) {
        char *m = mp_strdup(model);
        if (!f->model) f->model = m;
        else {
            int same = strcmp(f->model, m) == 0;
            if (!same) {
                hd_fail("%s: record %lld: model '%s' differs from the stream's model '%s'",
                        record_reader_path(r), record_reader_index(r), m, f->model);
                free(m);
                return -1;
            }
            free(m);
        }
    } else if (model && model->type != MSGPACK_OBJECT_NIL) {
        return fail_rec(r, "known record: 'model' is not a string");
    }
    if (memchr(prompt->via.str.ptr, 0, prompt->via.str.size))
        return fail_rec(r, "known record: 'prompt' contains a NUL byte");
    if (answer && answer->type == MSGPACK_OBJECT_STR && memchr(answer->via.str.ptr, 0, answer->via.str.size))
        return fail_rec(r, "known record: 'answer' contains a NUL byte");
    add(f, mp_strdup(prompt), answer ? mp_strdup(answer) : NULL, correct->via.boolean);
    f->records++;
    if (correct->via.boolean) f->correct++;
    return 0;
}

KnownFilter *known_filter_load(const char *path)
{
    RecordReader *r = record_reader_open(path);
    if (!r) return NULL;
    /* other records are skipped below, so a stream of another kind (pairs
     * where known records were meant) would filter out everything */
    record_reader_expect_kind(r, "known");
    KnownFilter *f = hd_calloc(1, sizeof *f);
    const msgpack_object *rec;
    int rc;
    while ((rc = record_reader_next(r, &rec)) == 1) {
        size_t n;
        const char *t = mp_record_type(rec, &n);
        if (n == 6 && memcmp(t, "header", 6) == 0) keep_header(f, rec);
        else if (n == 5 && memcmp(t, "known", 5) == 0 && read_known(f, r, rec) < 0) rc = -1;
        if (rc < 0) break;
    }
    record_reader_close(r);
    if (rc < 0) {
        known_filter_free(f);
        return NULL;
    }
    f->header_ptrs = hd_calloc(f->n_headers ? f->n_headers : 1, sizeof *f->header_ptrs);
    for (int i = 0; i < f->n_headers; i++) f->header_ptrs[i] = &f->headers[i].data;
    return f;
}

long long known_filter_records(const KnownFilter *f) { return f->records; }
long long known_filter_n_correct(const KnownFilter *f) { return f->correct; }
const char *known_filter_model(const KnownFilter *f) { return f->model; }
int known_filter_n_headers(const KnownFilter *f) { return f->n_headers; }
const msgpack_object *const *known_filter_headers(const KnownFilter *f) { return f->header_ptrs; }

void known_filter_free(KnownFilter *f)
{
    if (!f) return;
    for (size_t i = 0; i < f->cap; i++) {
        free(f->slots[i].prompt);
        free(f->slots[i].answer);
    }
    free(f->slots);
    for (int i = 0; i < f->n_headers; i++) {
        msgpack_unpacked_destroy(&f->headers[i]);
        free(f->header_bytes[i]);
    }
    free(f->headers);
    free(f->header_bytes);
    free(f->header_ptrs);
    free(f->model);
    free(f);
}
