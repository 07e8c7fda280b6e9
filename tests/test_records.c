/* The record stream: round trips of every dtype and codec, gzip, truncation
 * at every byte offset, corrupt tensors, headers, the end count, atomic
 * output, and a stream written by Python's msgpack + numpy. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "base/error.h"
#include "float16.h"
#include "stream/header.h"
#include "stream/json_view.h"
#include "stream/msgpack_util.h"
#include "stream/records.h"
#include "stream/tensor.h"

static char tmpdir[256];

static int setup(void **state)
{
    (void)state;
    strcpy(tmpdir, "/tmp/hd-test-records-XXXXXX");
    return mkdtemp(tmpdir) ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf %s", tmpdir);
    return system(cmd);
}

static char *path_in_tmp(const char *name)
{
    static char p[512];
    snprintf(p, sizeof p, "%s/%s", tmpdir, name);
    return p;
}

static const DType all_dtypes[] = {DTYPE_F32, DTYPE_BF16, DTYPE_F16, DTYPE_I32, DTYPE_I64, DTYPE_U8};

/* Fills raw bytes of a tensor with values exactly representable in dtype. */
static void fill_values(DType dt, size_t n, void *raw, double *expect)
{
    for (size_t i = 0; i < n; i++) {
        double v = ((double)(i * 37 % 101) - 50.0) / 4.0;   /* multiples of 0.25 */
        unsigned char *p = (unsigned char *)raw + i * dtype_size(dt);
        switch (dt) {
        case DTYPE_F32: { float f = (float)v; memcpy(p, &f, 4); break; }
        case DTYPE_BF16: { uint16_t h = f32_to_bf16((float)v); memcpy(p, &h, 2); break; }
        case DTYPE_F16: { uint16_t h = f32_to_f16((float)v); memcpy(p, &h, 2); break; }
        case DTYPE_I32: { int32_t x = (int32_t)(v * 4) * 1000; memcpy(p, &x, 4); v = x; break; }
        case DTYPE_I64: { int64_t x = (int64_t)(v * 4) * 3000000000LL; memcpy(p, &x, 8); v = (double)x; break; }
        case DTYPE_U8: { uint8_t x = (uint8_t)(i * 7); *p = x; v = x; break; }
        default: break;
        }
        expect[i] = v;
    }
}

/* Writes one stream holding a tensor of every dtype, raw and zlib. */
static void write_all_dtypes(const char *path, int gzip)
{
    RecordWriter *w = record_writer_open(path, gzip);
    assert_non_null(w);
    msgpack_packer *pk = record_writer_packer(w);
    MapWriter h;
    header_begin(&h, pk, "test", NULL, 0);
    map_str(&h, "extra", "value");
    assert_int_equal(map_end(&h), 0);
    assert_int_equal(record_writer_end_record(w), 0);
    for (int level = 0; level <= 6; level += 6)
        for (int d = 0; d < DTYPE_COUNT; d++) {
            int64_t shape[3] = {2, 3, 7};
            size_t n = 42;
            unsigned char raw[42 * 8];
            double expect[42];
            fill_values(all_dtypes[d], n, raw, expect);
            msgpack_pack_map(pk, 3);
            mp_pack_str(pk, "t");
            mp_pack_str(pk, "acts");
            mp_pack_str(pk, "level");
            msgpack_pack_int(pk, level);
            mp_pack_str(pk, "x");
            assert_int_equal(tensor_pack(pk, all_dtypes[d], 3, shape, raw, level), 0);
            assert_int_equal(record_writer_end_record(w), 0);
        }
    assert_int_equal(record_writer_close(w), 0);
}

static void check_all_dtypes(const char *path)
{
    RecordReader *r = record_reader_open(path);
    assert_non_null(r);
    const msgpack_object *rec;
    assert_int_equal(record_reader_next(r, &rec), 1);
    assert_true(mp_is_str(mp_map_get(rec, "t"), "header"));
    assert_true(mp_is_str(mp_map_get(rec, "extra"), "value"));
    for (int level = 0; level <= 6; level += 6)
        for (int d = 0; d < DTYPE_COUNT; d++) {
            assert_int_equal(record_reader_next(r, &rec), 1);
            Tensor t;
            assert_int_equal(tensor_from_record(rec, "x", &t), 0);
            assert_int_equal(t.dtype, all_dtypes[d]);
            assert_int_equal(t.ndim, 3);
            assert_int_equal(t.shape[2], 7);
            unsigned char raw[42 * 8];
            double expect[42];
            fill_values(all_dtypes[d], 42, raw, expect);
            for (size_t i = 0; i < 42; i++) assert_true(tensor_get_f64(&t, i) == expect[i]);
            assert_memory_equal(t.data, raw, 42 * dtype_size(all_dtypes[d]));
            tensor_release(&t);
        }
    assert_int_equal(record_reader_next(r, &rec), 1);       /* the end record */
    assert_true(mp_is_str(mp_map_get(rec, "t"), "end"));
    assert_int_equal(record_reader_next(r, &rec), 0);
    record_reader_close(r);
}

static void round_trip_every_dtype_and_codec(void **state)
{
    (void)state;
    write_all_dtypes(path_in_tmp("plain.msgpack"), 0);
    check_all_dtypes(path_in_tmp("plain.msgpack"));
}

static void round_trip_gzip_stream(void **state)
{
    (void)state;
    write_all_dtypes(path_in_tmp("stream.msgpack.gz"), 0);   /* .gz name => gzip */
    FILE *f = fopen(path_in_tmp("stream.msgpack.gz"), "rb");
    unsigned char magic[2];
    assert_int_equal(fread(magic, 1, 2, f), 2);
    fclose(f);
    assert_int_equal(magic[0], 0x1f);
    assert_int_equal(magic[1], 0x8b);
    check_all_dtypes(path_in_tmp("stream.msgpack.gz"));
}

static unsigned char *slurp(const char *path, size_t *n)
{
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    fseek(f, 0, SEEK_END);
    *n = (size_t)ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *b = malloc(*n + 1);
    assert_int_equal(fread(b, 1, *n, f), *n);
    fclose(f);
    return b;
}

static void spit(const char *path, const void *b, size_t n)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(b, 1, n, f), n);
    fclose(f);
}

/* Reads a whole stream: returns records read, or -1 - records on error. */
static long long read_stream(const char *path)
{
    RecordReader *r = record_reader_open(path);
    assert_non_null(r);
    const msgpack_object *rec;
    long long n = 0;
    int rc;
    while ((rc = record_reader_next(r, &rec)) == 1) n++;
    record_reader_close(r);
    return rc < 0 ? -1 - n : n;
}

/* Cut the stream after every byte: every cut is an error naming the file
 * and the record, a cut between records too (the end record is missing),
 * so that no cut stream reads as a short complete one. */
static void truncation_at_every_offset(void **state)
{
    (void)state;
    write_all_dtypes(path_in_tmp("full.msgpack"), 0);
    size_t n;
    unsigned char *b = slurp(path_in_tmp("full.msgpack"), &n);
    /* record boundaries, by parsing the buffer with msgpack itself */
    size_t bounds[64], nb = 0, off = 0;
    msgpack_unpacked u;
    msgpack_unpacked_init(&u);
    bounds[nb++] = 0;
    while (msgpack_unpack_next(&u, (const char *)b, n, &off) == MSGPACK_UNPACK_SUCCESS) bounds[nb++] = off;
    msgpack_unpacked_destroy(&u);
    assert_int_equal(bounds[nb - 1], n);
    char *cut = strdup(path_in_tmp("cut.msgpack"));
    for (size_t k = 0; k < n; k++) {
        spit(cut, b, k);
        long long got = read_stream(cut);
        long long whole = -1;
        for (size_t i = 0; i < nb; i++)
            if (bounds[i] == k) whole = (long long)i;
        assert_true(got < 0);
        char want[128];
        if (whole == 0) {
            assert_int_equal(got, -1);
            snprintf(want, sizeof want, "cut.msgpack: empty input: no header record");
        } else if (whole > 0) {
            assert_int_equal(got, -1 - whole);   /* every whole record was returned */
            snprintf(want, sizeof want, "cut.msgpack: truncated: no end record after %lld record%s", whole,
                     whole == 1 ? "" : "s");
        } else {
            snprintf(want, sizeof want, "cut.msgpack: record %lld: truncated record", -got);
        }
        if (!strstr(hd_last_error(), want)) fail_msg("cut at %zu: '%s' lacks '%s'", k, hd_last_error(), want);
    }
    assert_int_equal(read_stream(path_in_tmp("full.msgpack")), (long long)nb - 1);
    free(cut);
    free(b);
}

/* A gzip stream cut anywhere never crashes and is never read as complete. */
static void truncated_gzip_is_an_error(void **state)
{
    (void)state;
    write_all_dtypes(path_in_tmp("full.msgpack.gz"), 0);
    size_t n;
    unsigned char *b = slurp(path_in_tmp("full.msgpack.gz"), &n);
    long long full = read_stream(path_in_tmp("full.msgpack.gz"));
    assert_int_equal(full, 14);
    char *cut = strdup(path_in_tmp("cut.msgpack.gz"));
    for (size_t k = 1; k < n; k += 7) {
        spit(cut, b, k);
        long long got = read_stream(cut);
        assert_true(got != full);
        if (got < 0) assert_non_null(strstr(hd_last_error(), "cut.msgpack.gz: record "));
    }
    free(cut);
    free(b);
}

static void expect_error(const void *bytes, size_t n, const char *needle)
{
    char *p = path_in_tmp("bad.msgpack");
    spit(p, bytes, n);
    assert_true(read_stream(p) < 0);
    if (!strstr(hd_last_error(), needle)) fail_msg("error '%s' lacks '%s'", hd_last_error(), needle);
}

static void pack_into(msgpack_sbuffer *sb, msgpack_packer *pk)
{
    msgpack_sbuffer_init(sb);
    msgpack_packer_init(pk, sb, msgpack_sbuffer_write);
}

/* A buffer that starts with a valid header (record 1). */
static void pack_with_header(msgpack_sbuffer *sb, msgpack_packer *pk)
{
    pack_into(sb, pk);
    header_pack(pk, "test", NULL, 0);
}

static void corrupt_records_are_errors(void **state)
{
    (void)state;
    msgpack_sbuffer sb;
    msgpack_packer pk;
    /* tensor whose byte count disagrees with its shape */
    pack_with_header(&sb, &pk);
    msgpack_pack_map(&pk, 2);
    mp_pack_str(&pk, "t"); mp_pack_str(&pk, "acts");
    mp_pack_str(&pk, "h");
    msgpack_pack_map(&pk, 3);
    mp_pack_str(&pk, "dtype"); mp_pack_str(&pk, "f32");
    mp_pack_str(&pk, "shape"); msgpack_pack_array(&pk, 2); msgpack_pack_int(&pk, 2); msgpack_pack_int(&pk, 3);
    mp_pack_str(&pk, "data"); msgpack_pack_bin(&pk, 20); msgpack_pack_bin_body(&pk, "01234567890123456789", 20);
    expect_error(sb.data, sb.size, "record 2: h: tensor data has 20 bytes, shape and dtype need 24");
    msgpack_sbuffer_destroy(&sb);
    /* a record that is not a map */
    pack_into(&sb, &pk);
    msgpack_pack_array(&pk, 1); msgpack_pack_int(&pk, 1);
    expect_error(sb.data, sb.size, "record 1: record is not a map");
    msgpack_sbuffer_destroy(&sb);
    /* unsupported version in the header */
    pack_into(&sb, &pk);
    msgpack_pack_map(&pk, 3);
    mp_pack_str(&pk, "t"); mp_pack_str(&pk, "header");
    mp_pack_str(&pk, "format"); mp_pack_str(&pk, "hyperdas");
    mp_pack_str(&pk, "version"); msgpack_pack_int(&pk, 7);
    expect_error(sb.data, sb.size, "record 1: unsupported stream version 7");
    msgpack_sbuffer_destroy(&sb);
    /* unknown dtype, zlib data that is not zlib */
    pack_with_header(&sb, &pk);
    msgpack_pack_map(&pk, 2);
    mp_pack_str(&pk, "t"); mp_pack_str(&pk, "acts");
    mp_pack_str(&pk, "h");
    msgpack_pack_map(&pk, 3);
    mp_pack_str(&pk, "dtype"); mp_pack_str(&pk, "f64");
    mp_pack_str(&pk, "shape"); msgpack_pack_array(&pk, 0);
    mp_pack_str(&pk, "data"); msgpack_pack_bin(&pk, 8); msgpack_pack_bin_body(&pk, "01234567", 8);
    expect_error(sb.data, sb.size, "unknown tensor dtype 'f64'");
    msgpack_sbuffer_destroy(&sb);
    /* an end record whose count disagrees: records were lost */
    pack_with_header(&sb, &pk);
    msgpack_pack_map(&pk, 1); mp_pack_str(&pk, "t"); mp_pack_str(&pk, "pair");
    msgpack_pack_map(&pk, 2); mp_pack_str(&pk, "t"); mp_pack_str(&pk, "end");
    mp_pack_str(&pk, "count"); msgpack_pack_int(&pk, 5);
    expect_error(sb.data, sb.size, "record 3: end record counts 5 records, the stream has 1");
    msgpack_sbuffer_destroy(&sb);
    /* data with no header before it: at the start, and after an end record */
    pack_into(&sb, &pk);
    msgpack_pack_map(&pk, 1); mp_pack_str(&pk, "t"); mp_pack_str(&pk, "pair");
    expect_error(sb.data, sb.size, "bad.msgpack: record 1: the stream has no header");
    msgpack_sbuffer_destroy(&sb);
    pack_with_header(&sb, &pk);
    msgpack_pack_map(&pk, 2); mp_pack_str(&pk, "t"); mp_pack_str(&pk, "end");
    mp_pack_str(&pk, "count"); msgpack_pack_int(&pk, 0);
    msgpack_pack_map(&pk, 1); mp_pack_str(&pk, "t"); mp_pack_str(&pk, "pair");
    expect_error(sb.data, sb.size, "record 3: a record after the end record, with no header before it");
    msgpack_sbuffer_destroy(&sb);
    /* a second header before the first segment's end: that segment was cut */
    pack_with_header(&sb, &pk);
    header_pack(&pk, "test", NULL, 0);
    expect_error(sb.data, sb.size, "record 2: a header before the end record of the stream before it");
    msgpack_sbuffer_destroy(&sb);
    /* plain garbage */
    expect_error("\xc1\xc1\xc1", 3, "record 1: not a msgpack value");
}

static void corrupt_zlib_tensor_fails_on_decode(void **state)
{
    (void)state;
    msgpack_sbuffer sb;
    msgpack_packer pk;
    pack_into(&sb, &pk);
    msgpack_pack_map(&pk, 5);
    mp_pack_str(&pk, "dtype"); mp_pack_str(&pk, "u8");
    mp_pack_str(&pk, "shape"); msgpack_pack_array(&pk, 1); msgpack_pack_int(&pk, 4);
    mp_pack_str(&pk, "codec"); mp_pack_str(&pk, "zlib");
    mp_pack_str(&pk, "nbytes"); msgpack_pack_int(&pk, 4);
    mp_pack_str(&pk, "data"); msgpack_pack_bin(&pk, 4); msgpack_pack_bin_body(&pk, "junk", 4);
    msgpack_unpacked u;
    msgpack_unpacked_init(&u);
    assert_int_equal(msgpack_unpack_next(&u, sb.data, sb.size, NULL), MSGPACK_UNPACK_SUCCESS);
    Tensor t;
    assert_int_equal(tensor_check(&u.data), 0);
    assert_int_equal(tensor_decode(&u.data, &t), -1);
    assert_non_null(strstr(hd_last_error(), "zlib tensor data is corrupt"));
    msgpack_unpacked_destroy(&u);
    msgpack_sbuffer_destroy(&sb);
}

/* Concatenated streams (`cat a b`): two segments, each end count checked,
 * and the last one must be whole too. */
static void concatenated_streams_read_as_one(void **state)
{
    (void)state;
    write_all_dtypes(path_in_tmp("a.msgpack"), 0);
    size_t n;
    unsigned char *b = slurp(path_in_tmp("a.msgpack"), &n);
    unsigned char *two = malloc(2 * n);
    memcpy(two, b, n);
    memcpy(two + n, b, n);
    spit(path_in_tmp("ab.msgpack"), two, 2 * n);
    assert_int_equal(read_stream(path_in_tmp("ab.msgpack")), 28);
    /* the second segment without its end record (14 bytes: count 12) */
    spit(path_in_tmp("ab.msgpack"), two, 2 * n - 14);
    assert_int_equal(read_stream(path_in_tmp("ab.msgpack")), -1 - 27);
    assert_non_null(strstr(hd_last_error(), "ab.msgpack: truncated: no end record after 27 records"));
    free(two);
    free(b);
}

/* An aborted file output leaves nothing under the final name and keeps an
 * older complete file intact. */
static void atomic_output(void **state)
{
    (void)state;
    char *p = strdup(path_in_tmp("atomic.msgpack"));
    spit(p, "old", 3);
    RecordWriter *w = record_writer_open(p, 0);
    assert_non_null(w);
    header_pack(record_writer_packer(w), "test", NULL, 0);
    record_writer_end_record(w);
    record_writer_abort(w);
    size_t n;
    unsigned char *b = slurp(p, &n);
    assert_int_equal(n, 3);
    free(b);
    char cmd[600];
    snprintf(cmd, sizeof cmd, "test -z \"$(ls %s | grep tmp)\"", tmpdir);
    assert_int_equal(system(cmd), 0);
    w = record_writer_open(p, 0);
    header_pack(record_writer_packer(w), "test", NULL, 0);
    record_writer_end_record(w);
    assert_int_equal(record_writer_close(w), 0);
    assert_int_equal(read_stream(p), 2);
    free(p);
    assert_null(record_writer_open("/nonexistent-dir/x.msgpack", 0));
    assert_non_null(strstr(hd_last_error(), "/nonexistent-dir/x.msgpack: cannot create"));
}

static void source_date_epoch_sets_created(void **state)
{
    (void)state;
    setenv("SOURCE_DATE_EPOCH", "86400", 1);
    msgpack_sbuffer sb;
    msgpack_packer pk;
    pack_into(&sb, &pk);
    header_pack(&pk, "test", NULL, 0);
    msgpack_unpacked u;
    msgpack_unpacked_init(&u);
    assert_int_equal(msgpack_unpack_next(&u, sb.data, sb.size, NULL), MSGPACK_UNPACK_SUCCESS);
    assert_true(mp_is_str(mp_map_get(&u.data, "created"), "1970-01-02T00:00:00Z"));
    assert_int_equal(header_check(&u.data), 0);
    msgpack_unpacked_destroy(&u);
    msgpack_sbuffer_destroy(&sb);
    unsetenv("SOURCE_DATE_EPOCH");
}

/* A stream written by Python's msgpack + numpy (tests/ref/gen_records_fixture.py). */
static void reads_python_written_stream(void **state)
{
    (void)state;
    json_error_t err;
    json_t *expected = json_load_file("tests/fixtures/records/python.expected.json", 0, &err);
    assert_non_null(expected);
    RecordReader *r = record_reader_open("tests/fixtures/records/python.msgpack");
    assert_non_null(r);
    const msgpack_object *rec;
    assert_int_equal(record_reader_next(r, &rec), 1);
    assert_true(mp_is_str(mp_map_get(rec, "kind"), "acts"));
    assert_non_null(record_reader_header(r));
    for (size_t i = 0; i < json_array_size(expected); i++) {
        json_t *e = json_array_get(expected, i);
        assert_int_equal(record_reader_next(r, &rec), 1);
        assert_true(mp_is_str(mp_map_get(rec, "id"), json_string_value(json_object_get(e, "id"))));
        Tensor t;
        assert_int_equal(tensor_from_record(rec, "tensor", &t), 0);
        assert_string_equal(dtype_name(t.dtype), json_string_value(json_object_get(e, "dtype")));
        json_t *vals = json_object_get(e, "values");
        assert_int_equal(t.numel, json_array_size(vals));
        for (size_t k = 0; k < t.numel; k++)
            assert_true(tensor_get_f64(&t, k) == json_real_value(json_array_get(vals, k)) ||
                        tensor_get_f64(&t, k) == (double)json_integer_value(json_array_get(vals, k)));
        tensor_release(&t);
    }
    assert_int_equal(record_reader_next(r, &rec), 1);
    assert_true(mp_is_str(mp_map_get(rec, "t"), "mystery_type"));   /* passed through */
    assert_int_equal(record_reader_next(r, &rec), 1);
    assert_true(mp_is_str(mp_map_get(rec, "t"), "end"));
    assert_int_equal(record_reader_next(r, &rec), 0);
    record_reader_close(r);
    json_decref(expected);
}

static void missing_file_is_an_error(void **state)
{
    (void)state;
    assert_null(record_reader_open("/nonexistent/file.msgpack"));
    assert_string_equal(hd_last_error(), "/nonexistent/file.msgpack: No such file or directory");
}

/* A map key that is not a string is shown as the JSON text of the key; a
 * key nested in such a key must not be escaped once more per level, or the
 * output doubles with each level (an 888-byte fuzz input printed 68 MB). */
static void nested_map_keys_print_in_linear_size(void **state)
{
    (void)state;
    enum { DEPTH = 24 };
    msgpack_sbuffer sb;
    msgpack_packer pk;
    pack_into(&sb, &pk);
    /* {{{... {"a\"": 1} ...: 1}: 1}: 1}, DEPTH maps deep, each the key of the next */
    for (int i = 0; i < DEPTH; i++) msgpack_pack_map(&pk, 1);
    mp_pack_str(&pk, "a\\\"");
    for (int i = 0; i < DEPTH; i++) msgpack_pack_int(&pk, 1);
    msgpack_unpacked u;
    msgpack_unpacked_init(&u);
    assert_int_equal(msgpack_unpack_next(&u, sb.data, sb.size, NULL), MSGPACK_UNPACK_SUCCESS);
    char *text = NULL;
    size_t len = 0;
    FILE *mem = open_memstream(&text, &len);
    JsonViewOptions opt = {.n_first = 4};
    assert_int_equal(json_view_write(mem, &u.data, &opt), 0);
    fclose(mem);
    /* linear: a few bytes per level (escaping once), not 2^DEPTH */
    if (len > 64 * DEPTH) fail_msg("%d nested keys printed %zu bytes", DEPTH, len);
    json_error_t err;
    json_t *j = json_loadb(text, len, 0, &err);
    if (!j) fail_msg("not JSON (%s): %.200s", err.text, text);
    json_decref(j);
    free(text);
    msgpack_unpacked_destroy(&u);
    msgpack_sbuffer_destroy(&sb);
}

static void float16_conversions_are_exact(void **state)
{
    (void)state;
    /* every half value survives f16 -> f32 -> f16 */
    for (uint32_t h = 0; h < 65536; h++) {
        float f = f16_to_f32((uint16_t)h);
        if (f != f) continue;   /* NaN payloads need not survive */
        assert_int_equal(f32_to_f16(f), h);
    }
    assert_int_equal(f32_to_f16(65520.0f), 0x7c00);        /* rounds to inf */
    assert_int_equal(f32_to_f16(5.96046448e-08f), 0x0001); /* smallest subnormal */
    assert_int_equal(f32_to_bf16(1.00390625f), 0x3f80);    /* tie to even */
    assert_int_equal(f32_to_bf16(1.01171875f), 0x3f82);    /* tie to even, upward */
}

/* tensor_span_to_f32 (the training batch's conversion) gives, for every
 * dtype, offset and length, the bits of (float)tensor_get_f64, NaNs
 * aside (a NaN only has to stay a NaN); the 16-bit types are tried on all
 * 65,536 patterns, read from an odd address as a record's data may be. */
static void span_conversion_is_the_element_reads(void **state)
{
    (void)state;
    const size_t n = 65536;
    unsigned char *raw = malloc(n * 8 + 1);
    float *got = malloc(n * sizeof *got);
    for (int d = 0; d < DTYPE_COUNT; d++) {
        const size_t w = dtype_size(all_dtypes[d]);
        for (size_t i = 0; i < n; i++) {
            uint64_t v = w == 2 ? i : (uint64_t)i * 2654435761u ^ (uint64_t)i << 40;
            memcpy(raw + 1 + i * w, &v, w);   /* little-endian: the low bytes */
        }
        Tensor t = {.dtype = all_dtypes[d], .ndim = 1, .shape = {(int64_t)n}, .numel = n,
                    .nbytes = n * w, .data = raw + 1};
        const size_t spans[][2] = {{0, n}, {1, 7}, {12345, 576}, {n - 3, 3}};
        for (size_t k = 0; k < sizeof spans / sizeof *spans; k++) {
            tensor_span_to_f32(&t, spans[k][0], spans[k][1], got);
            for (size_t i = 0; i < spans[k][1]; i++) {
                float want = (float)tensor_get_f64(&t, spans[k][0] + i);
                if (want != want) {
                    assert_true(got[i] != got[i]);
                    continue;
                }
                assert_memory_equal(&got[i], &want, sizeof want);
            }
        }
    }
    free(raw);
    free(got);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(round_trip_every_dtype_and_codec),
        cmocka_unit_test(span_conversion_is_the_element_reads),
        cmocka_unit_test(round_trip_gzip_stream),
        cmocka_unit_test(truncation_at_every_offset),
        cmocka_unit_test(truncated_gzip_is_an_error),
        cmocka_unit_test(corrupt_records_are_errors),
        cmocka_unit_test(corrupt_zlib_tensor_fails_on_decode),
        cmocka_unit_test(concatenated_streams_read_as_one),
        cmocka_unit_test(atomic_output),
        cmocka_unit_test(source_date_epoch_sets_created),
        cmocka_unit_test(reads_python_written_stream),
        cmocka_unit_test(missing_file_is_an_error),
        cmocka_unit_test(nested_map_keys_print_in_linear_size),
        cmocka_unit_test(float16_conversions_are_exact),
    };
    return cmocka_run_group_tests_name("records", tests, setup, teardown);
}
