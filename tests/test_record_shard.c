/* --shard I/N (common/record_shard): the spec parser, the block arithmetic
 * (the N blocks tile [0, K) in order, sizes within one, no overflow for
 * huge K), where batches start, the first pass over real files (two files,
 * records of other types), the range it puts on a RecordInput, and the
 * refusal of stdin and pipes; the shard and file name a launcher (mpirun,
 * srun) gives without --shard. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/error.h"
#include "stream/header.h"
#include "stream/msgpack_util.h"
#include "stream/record_input.h"
#include "stream/record_shard.h"
#include "stream/records.h"

static char tmpdir[256];

static int make_tmpdir(void **state)
{
    (void)state;
    strcpy(tmpdir, "/tmp/hd-test-record-shard-XXXXXX");
    return mkdtemp(tmpdir) ? 0 : -1;
}

static int remove_tmpdir(void **state)
{
    (void)state;
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf %s", tmpdir);
    return system(cmd) == 0 ? 0 : -1;
}

static const char *path_in_tmp(const char *name, char *buf, size_t cap)
{
    snprintf(buf, cap, "%s/%s", tmpdir, name);
    return buf;
}

static void parse_accepts_i_of_n(void **state)
{
    (void)state;
    RecordShard s;
    assert_int_equal(record_shard_parse("0/1", &s), 0);
    assert_int_equal(s.index, 0);
    assert_int_equal(s.count, 1);
    assert_int_equal(record_shard_parse("7/12", &s), 0);
    assert_int_equal(s.index, 7);
    assert_int_equal(s.count, 12);
    assert_int_equal(record_shard_parse("2147483646/2147483647", &s), 0);
    assert_int_equal(s.index, 2147483646);
}

static void parse_refuses_the_rest(void **state)
{
    (void)state;
    static const char *const bad[] = {"3/3", "-1/2", "1/0", "0/0", "x", "", "/", "1/", "/2",
                                      "1/2x", "+1/2", " 1/2", "1 /2", "1/ 2", "1/2/3", "1.0/2",
                                      "0/2147483648", "99999999999/1"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        RecordShard s = {-5, -5};
        assert_int_equal(record_shard_parse(bad[i], &s), -1);
        assert_non_null(strstr(hd_last_error(), "--shard"));
        assert_int_equal(s.index, -5); /* untouched */
    }
    assert_non_null(strstr(hd_last_error(), "99999999999/1"));
}

/* floor(i*k/n) computed directly, for k small enough. */
static long long naive_start(long long k, int i, int n) { return i * k / n; }

static void blocks_tile_the_units(void **state)
{
    (void)state;
    for (long long k = 0; k <= 40; k++)
        for (int n = 1; n <= 12; n++) {
            long long prev_end = 0;
            for (int i = 0; i < n; i++) {
                RecordShard s = {i, n};
                long long first, end;
                record_shard_block(k, &s, &first, &end);
                assert_int_equal(first, prev_end);           /* in order, no gap */
                assert_int_equal(first, naive_start(k, i, n));
                assert_true(end - first == k / n || end - first == k / n + 1);
                prev_end = end;
            }
            assert_int_equal(prev_end, k);                   /* all of them */
        }
}

static void blocks_of_huge_counts_do_not_overflow(void **state)
{
    (void)state;
    /* i*k overflows 64 bits here; the result must still be floor(i*k/n) */
    const long long k = 4611686018427387903LL; /* 2^62 - 1 */
    RecordShard s = {1000000006, 1000000007};
    long long first, end;
    record_shard_block(k, &s, &first, &end);
    unsigned __int128 want = (unsigned __int128)k * 1000000006u / 1000000007u;
    assert_true(first == (long long)want);
    assert_int_equal(end, k);
    s.index = 0;
    record_shard_block(k, &s, &first, &end);
    assert_int_equal(first, 0);
    want = (unsigned __int128)k / 1000000007u;
    assert_true(end == (long long)want);
}

static void units_start_on_batches(void **state)
{
    (void)state;
    /* cache-acts: batch 3, another record type closes the open batch */
    ShardUnits u = {.b = {"pair", 3, 1}};
    const int pairs[] = {1, 1, 1, 1, 0, 1, 1, 1, 1, 0, 0, 1};
    const int starts[] = {1, 0, 0, 1, 1, 1, 0, 0, 1, 1, 1, 1};
    for (int i = 0; i < 12; i++) assert_int_equal(shard_units_next(&u, pairs[i]), starts[i]);
    /* hd-score: batch 2, other records pass by without ending a batch */
    ShardUnits v = {.b = {"acts", 2, 0}};
    const int acts[] = {1, 0, 1, 1, 0, 0, 1, 1};
    const int vstarts[] = {1, 0, 0, 1, 0, 0, 0, 1};
    for (int i = 0; i < 8; i++) assert_int_equal(shard_units_next(&v, acts[i]), vstarts[i]);
}

/* A stream of records of type types[i] with "i" = first + i. */
static void write_stream(const char *path, const char *const *types, int n, int first)
{
    RecordWriter *w = record_writer_open(path, 0);
    assert_non_null(w);
    msgpack_packer *pk = record_writer_packer(w);
    header_pack(pk, "test", NULL, 0);
    assert_int_equal(record_writer_end_record(w), 0);
    for (int i = 0; i < n; i++) {
        msgpack_pack_map(pk, 2);
        mp_pack_str(pk, "t");
        mp_pack_str(pk, types[i]);
        mp_pack_str(pk, "i");
        msgpack_pack_int(pk, first + i);
        assert_int_equal(record_writer_end_record(w), 0);
    }
    assert_int_equal(record_writer_close(w), 0);
}

/* The "i" of every record the shard's input returns, into got. */
static int read_shard(char **files, int n, const RecordShard *s, const ShardBatching *b,
                      ShardRange *r, int *got)
{
    RecordInput *in = record_shard_open(files, n, s, b, r);
    assert_non_null(in);
    const msgpack_object *rec;
    int k = 0, rc;
    while ((rc = record_input_next(in, &rec)) > 0) {
        int64_t v;
        assert_int_equal(mp_get_int64(mp_map_get(rec, "i"), &v), 0);
        got[k++] = (int)v;
    }
    assert_int_equal(rc, 0);
    record_input_close(in);
    return k;
}

static void shards_of_two_files_concatenate(void **state)
{
    (void)state;
    /* 10 data records over two files; with batch 2 of "pair" and other
     * types ending a batch, units start at 0, 2, 3 (note), 4, 6, 8 */
    static const char *const a[] = {"pair", "pair", "pair", "note", "pair"};
    static const char *const b[] = {"pair", "pair", "pair", "pair", "pair"};
    char pa[300], pb[300];
    char *files[] = {(char *)path_in_tmp("a", pa, sizeof pa), (char *)path_in_tmp("b", pb, sizeof pb)};
    write_stream(files[0], a, 5, 0);
    write_stream(files[1], b, 5, 5);
    ShardBatching how = {"pair", 2, 1};
    static const long long first[] = {0, 3, 6}, end[] = {3, 6, 10};
    int next = 0;
    for (int i = 0; i < 3; i++) {
        RecordShard s = {i, 3};
        ShardRange r;
        int got[10];
        int k = read_shard(files, 2, &s, &how, &r, got);
        assert_int_equal(r.n_records, 10);
        assert_int_equal(r.n_batched, 9);
        assert_int_equal(r.n_units, 6);
        assert_int_equal(r.first, first[i]);
        assert_int_equal(r.end, end[i]);
        assert_int_equal(k, end[i] - first[i]);
        for (int j = 0; j < k; j++) assert_int_equal(got[j], next++);
    }
    assert_int_equal(next, 10);
    /* no shard: everything, range zeroed */
    ShardRange r;
    int got[10];
    assert_int_equal(read_shard(files, 2, NULL, &how, &r, got), 10);
    assert_int_equal(r.n_records, 0);
    /* more shards than units: the first ones are empty */
    RecordShard s = {0, 7};
    assert_int_equal(read_shard(files, 2, &s, &how, &r, got), 0);
    s.index = 6;
    assert_int_equal(read_shard(files, 2, &s, &how, &r, got), 2);
    assert_int_equal(got[0], 8);
}

static void bad_input_is_named(void **state)
{
    (void)state;
    char p[300];
    const char *path = path_in_tmp("cut", p, sizeof p);
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    fputs("\x82\xa1t\xa4pair", f); /* a map of 2 that ends after one pair */
    fclose(f);
    char *files[] = {(char *)path};
    RecordShard s = {0, 2};
    ShardBatching how = {"pair", 2, 1};
    ShardRange r;
    assert_null(record_shard_open(files, 1, &s, &how, &r));
    assert_non_null(strstr(hd_last_error(), "cut"));
    char *missing[] = {(char *)path_in_tmp("missing", p, sizeof p)};
    assert_int_equal(record_shard_range(missing, 1, &s, &how, &r), -1);
    assert_non_null(strstr(hd_last_error(), "missing"));
}

static void stdin_and_pipes_are_refused(void **state)
{
    (void)state;
    assert_int_equal(record_shard_check_inputs(NULL, 0), -1);
    assert_non_null(strstr(hd_last_error(), "stdin"));
    char p[300], q[300];
    char *files[] = {(char *)path_in_tmp("a2", p, sizeof p), "-"};
    static const char *const one[] = {"pair"};
    write_stream(files[0], one, 1, 0);
    assert_int_equal(record_shard_check_inputs(files, 1), 0);
    assert_int_equal(record_shard_check_inputs(files, 2), -1);
    assert_non_null(strstr(hd_last_error(), "stdin"));
    files[1] = (char *)path_in_tmp("fifo", q, sizeof q);
    assert_int_equal(mkfifo(files[1], 0600), 0);
    assert_int_equal(record_shard_check_inputs(files, 2), -1);
    assert_non_null(strstr(hd_last_error(), "fifo is not a regular file"));
    files[1] = tmpdir; /* a directory */
    assert_int_equal(record_shard_check_inputs(files, 2), -1);
    files[1] = (char *)path_in_tmp("not-there", q, sizeof q);
    assert_int_equal(record_shard_check_inputs(files, 2), 0); /* opening names it */
}

/* Every launcher variable dist_launcher reads, cleared between cases. */
static void clear_launcher_env(void)
{
    const char *vars[] = {"OMPI_COMM_WORLD_RANK", "OMPI_COMM_WORLD_SIZE", "PMI_RANK",
                          "PMI_SIZE", "SLURM_PROCID", "SLURM_STEP_NUM_TASKS", "SLURM_NTASKS"};
    for (size_t i = 0; i < sizeof vars / sizeof vars[0]; i++) unsetenv(vars[i]);
}

static void launcher_gives_the_shard_and_the_file(void **state)
{
    (void)state;
    RecordShard s = {0, 1};
    char *name = NULL;
    clear_launcher_env();
    assert_int_equal(record_shard_from_launcher(&s, "out.acts", &name), 0); /* a plain process */

    setenv("OMPI_COMM_WORLD_RANK", "3", 1), setenv("OMPI_COMM_WORLD_SIZE", "12", 1);
    assert_int_equal(record_shard_from_launcher(&s, "out/x.acts", &name), 1);
    assert_int_equal(s.index, 3);
    assert_int_equal(s.count, 12);
    assert_string_equal(name, "out/x.acts.shard-03-of-12"); /* sorts in rank order */
    free(name);
    assert_int_equal(record_shard_from_launcher(&s, NULL, &name), -1); /* one shared stdout */
    assert_non_null(strstr(hd_last_error(), "rank 3 of 12 by mpirun (Open MPI): give -o FILE"));
    assert_int_equal(record_shard_from_launcher(&s, "-", &name), -1);
    setenv("OMPI_COMM_WORLD_SIZE", "1", 1); /* mpirun -np 1: not sharded */
    setenv("OMPI_COMM_WORLD_RANK", "0", 1);
    assert_int_equal(record_shard_from_launcher(&s, NULL, &name), 0);

    clear_launcher_env(); /* a Slurm batch script is no task of a step */
    setenv("SLURM_PROCID", "0", 1), setenv("SLURM_NTASKS", "4", 1);
    assert_int_equal(record_shard_from_launcher(&s, "a", &name), 0);
    setenv("SLURM_STEP_NUM_TASKS", "4", 1), setenv("SLURM_PROCID", "2", 1); /* srun's task */
    assert_int_equal(record_shard_from_launcher(&s, "a", &name), 1);
    assert_string_equal(name, "a.shard-2-of-4");
    assert_true(s.index == 2 && s.count == 4);
    free(name);

    clear_launcher_env(); /* values that are no rank of a size */
    setenv("PMI_RANK", "4", 1), setenv("PMI_SIZE", "4", 1);
    assert_int_equal(record_shard_from_launcher(&s, "a", &name), -1);
    assert_non_null(strstr(hd_last_error(), "PMI_RANK=4 and PMI_SIZE=4"));
    setenv("PMI_RANK", "x1", 1);
    assert_int_equal(record_shard_from_launcher(&s, "a", &name), -1);
    assert_non_null(strstr(hd_last_error(), "PMI_RANK='x1'"));
    clear_launcher_env();
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(parse_accepts_i_of_n),
        cmocka_unit_test(parse_refuses_the_rest),
        cmocka_unit_test(blocks_tile_the_units),
        cmocka_unit_test(blocks_of_huge_counts_do_not_overflow),
        cmocka_unit_test(units_start_on_batches),
        cmocka_unit_test(shards_of_two_files_concatenate),
        cmocka_unit_test(bad_input_is_named),
        cmocka_unit_test(stdin_and_pipes_are_refused),
        cmocka_unit_test(launcher_gives_the_shard_and_the_file),
    };
    return cmocka_run_group_tests_name("record_shard", tests, make_tmpdir, remove_tmpdir);
}
