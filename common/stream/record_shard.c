#include "stream/record_shard.h"
#include "base/dist.h"
#include "base/error.h"
#include "stream/msgpack_util.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* Digits only (no sign, no spaces), at most INT_MAX; the end in *end. */
static int parse_digits(const char *p, const char **end, int *out)
{
    long long v = 0;
    const char *q = p;
    while (*q >= '0' && *q <= '9') {
        v = v * 10 + (*q - '0');
        if (v > INT_MAX) return -1;
        q++;
    }
    if (q == p) return -1;
    *end = q;
    *out = (int)v;
    return 0;
}

int record_shard_parse(const char *spec, RecordShard *s)
{
    const char *p = spec, *q;
    int i, n;
    if (parse_digits(p, &q, &i) < 0 || *q != '/' || parse_digits(q + 1, &p, &n) < 0 || *p)
        return hd_fail("--shard: expected I/N (e.g. 0/4), got '%s'", spec);
    if (n < 1) return hd_fail("--shard %s: N must be at least 1", spec);
    if (i >= n) return hd_fail("--shard %s: I must be below N (shards 0 to %d)", spec, n - 1);
    s->index = i;
    s->count = n;
    return 0;
}

/* floor(i * k / n) without overflowing: k = q*n + r gives i*q + floor(i*r/n),
 * and i*r < n*n fits in 64 bits. */
static long long block_start(long long k, long long i, long long n)
{
    return i * (k / n) + i * (k % n) / n;
}

void record_shard_block(long long n_units, const RecordShard *s, long long *first, long long *end)
{
    *first = block_start(n_units, s->index, s->count);
    *end = block_start(n_units, (long long)s->index + 1, s->count);
}

int record_shard_from_launcher(RecordShard *s, const char *output, char **output_name)
{
    int rank, size;
    const char *by;
    int got = dist_launcher(&rank, &size, &by);
    if (got <= 0) return got;
    if (size == 1) return 0; /* mpirun -np 1: the whole input */
    if (!output || strcmp(output, "-") == 0)
        return hd_fail("started as rank %d of %d by %s: give -o FILE (each rank writes "
                       "FILE.shard-I-of-%d), the ranks cannot share one stdout",
                       rank, size, by, size);
    int width = snprintf(NULL, 0, "%d", size);
    if (asprintf(output_name, "%s.shard-%0*d-of-%d", output, width, rank, size) < 0)
        return hd_fail("out of memory");
    s->index = rank;
    s->count = size;
    return 1;
}

int shard_units_next(ShardUnits *u, int is_batched)
{
    int starts = u->run % u->b.batch == 0;
    if (is_batched) {
        u->run++;
    } else if (u->b.other_ends_batch) {
        starts = 1;
        u->run = 0;
    }
    return starts;
}

int record_shard_check_inputs(char *const *files, int n)
{
    if (n == 0) return hd_fail("--shard reads its input twice: name the input files (not stdin)");
    for (int i = 0; i < n; i++) {
        struct stat st;
        if (strcmp(files[i], "-") == 0)
            return hd_fail("--shard reads its input twice: name the input files (not stdin)");
        if (stat(files[i], &st) == 0 && !S_ISREG(st.st_mode))
            return hd_fail("--shard reads its input twice: %s is not a regular file", files[i]);
    }
    return 0;
}

int record_shard_range(char **files, int n, const RecordShard *s, const ShardBatching *b,
                       ShardRange *r)
{
    memset(r, 0, sizeof *r);
    RecordInput *in = record_input_open(files, n);
    if (!in) return -1;
    ShardUnits u = {.b = *b};
    long long *starts = NULL, cap = 0;   /* the record index where each unit begins */
    const msgpack_object *rec;
    int rc;
    while ((rc = record_input_next(in, &rec)) > 0) {
        int is_batched = mp_is_str(mp_map_get(rec, "t"), b->batched);
        if (shard_units_next(&u, is_batched)) {
            if (r->n_units == cap) {
                cap = cap ? 2 * cap : 1024;
                starts = hd_realloc(starts, (size_t)cap * sizeof *starts);
            }
            starts[r->n_units++] = r->n_records;
        }
        r->n_batched += is_batched;
        r->n_records++;
    }
    record_input_close(in);
    if (rc < 0) {
        free(starts);
        return -1;
    }
    long long u0, u1;
    record_shard_block(r->n_units, s, &u0, &u1);
    r->first = u0 < r->n_units ? starts[u0] : r->n_records;
    r->end = u1 < r->n_units ? starts[u1] : r->n_records;
    free(starts);
    return 0;
}

RecordInput *record_shard_open(char **files, int n, const RecordShard *s, const ShardBatching *b,
                               ShardRange *r)
{
    memset(r, 0, sizeof *r);
    if (s && record_shard_range(files, n, s, b, r) < 0) return NULL;
    RecordInput *in = record_input_open(files, n);
    if (in && s) record_input_set_range(in, r->first, r->end);
    return in;
}

void record_shard_pack(MapWriter *h, const RecordShard *s)
{
    msgpack_packer *pk = map_key(h, "shard");
    msgpack_pack_array(pk, 2);
    msgpack_pack_int(pk, s->index);
    msgpack_pack_int(pk, s->count);
}
