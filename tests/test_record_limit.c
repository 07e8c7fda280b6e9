/* The record size limit (HD_MAX_RECORD): sizes parse, the byte scan finds
 * record boundaries and declared sizes however the bytes are split, the
 * reader refuses a record that declares more than the limit before its
 * bytes arrive, and the writer refuses to make one. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/error.h"
#include "stream/header.h"
#include "stream/msgpack_util.h"
#include "stream/record_limit.h"
#include "stream/records.h"

static void sizes_parse(void **state)
{
    (void)state;
    uint64_t v;
    assert_int_equal(record_limit_parse("65536", &v), 0);
    assert_true(v == 65536);
    assert_int_equal(record_limit_parse("4G", &v), 0);
    assert_true(v == (uint64_t)4 << 30);
    assert_int_equal(record_limit_parse("512m", &v), 0);
    assert_true(v == (uint64_t)512 << 20);
    assert_int_equal(record_limit_parse("2T", &v), 0);
    assert_true(v == (uint64_t)2 << 40);
    const char *bad[] = {"", "0", "-1", "x", "1.5G", "4GB", "4 G", "G", "99999999999999999999"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        if (record_limit_parse(bad[i], &v) == 0) fail_msg("'%s' parsed", bad[i]);
    char text[32];
    record_limit_format((uint64_t)1 << 30, text, sizeof text);
    assert_string_equal(text, "1 GiB");
    record_limit_format(1000, text, sizeof text);
    assert_string_equal(text, "1000 bytes");
    unsetenv("HD_MAX_RECORD");
    assert_int_equal(record_limit_get(&v), 0);
    assert_true(v == RECORD_LIMIT_DEFAULT);
    setenv("HD_MAX_RECORD", "lots", 1);
    assert_int_equal(record_limit_get(&v), -1);
    assert_non_null(strstr(hd_last_error(), "HD_MAX_RECORD: expected a size"));
    assert_null(record_reader_open("/dev/null"));
    unsetenv("HD_MAX_RECORD");
}

/* Records of every msgpack type, packed by msgpack-c. */
static void pack_every_type(msgpack_sbuffer *sb)
{
    msgpack_packer pk;
    msgpack_sbuffer_init(sb);
    msgpack_packer_init(&pk, sb, msgpack_sbuffer_write);
    for (int r = 0; r < 3; r++) {
        msgpack_pack_map(&pk, 12);
        mp_pack_str(&pk, "t"); mp_pack_str(&pk, "x");
        mp_pack_str(&pk, "i"); msgpack_pack_int64(&pk, -5000000000LL * r);
        mp_pack_str(&pk, "u"); msgpack_pack_uint64(&pk, 70000u * (unsigned)r);
        mp_pack_str(&pk, "f"); msgpack_pack_float(&pk, 1.5f);
        mp_pack_str(&pk, "d"); msgpack_pack_double(&pk, 2.5);
        mp_pack_str(&pk, "n"); msgpack_pack_nil(&pk);
        mp_pack_str(&pk, "b"); msgpack_pack_true(&pk);
        char big[300];
        memset(big, 'a', sizeof big);
        mp_pack_str(&pk, "s"); mp_pack_strn(&pk, big, 40 + 100 * (size_t)r);
        mp_pack_str(&pk, "bin"); msgpack_pack_bin(&pk, 70000);
        for (int k = 0; k < 70000; k++) msgpack_sbuffer_write(sb, "z", 1);
        mp_pack_str(&pk, "e"); msgpack_pack_ext(&pk, 3, 7); msgpack_pack_ext_body(&pk, "abc", 3);
        mp_pack_str(&pk, "a"); msgpack_pack_array(&pk, 20);
        for (int k = 0; k < 20; k++) msgpack_pack_int(&pk, k * 1000);
        mp_pack_str(&pk, "m"); msgpack_pack_map(&pk, 1); mp_pack_str(&pk, "k"); msgpack_pack_array(&pk, 0);
    }
}

/* The scan counts the records msgpack-c counts, fed in any chunks, and
 * a limit just under a record's size stops it at that record. */
static void scan_finds_records_in_any_chunks(void **state)
{
    (void)state;
    msgpack_sbuffer sb;
    pack_every_type(&sb);
    size_t size0 = 0;
    msgpack_unpacked u;
    msgpack_unpacked_init(&u);
    assert_int_equal(msgpack_unpack_next(&u, sb.data, sb.size, &size0), MSGPACK_UNPACK_SUCCESS);
    msgpack_unpacked_destroy(&u);
    const size_t chunks[] = {1, 2, 3, 7, 4096, sb.size};
    for (size_t c = 0; c < sizeof chunks / sizeof *chunks; c++) {
        RecordScan s;
        record_scan_init(&s, 1 << 20);
        for (size_t i = 0; i < sb.size; i += chunks[c])
            assert_int_equal(record_scan_feed(&s, (const unsigned char *)sb.data + i,
                                              sb.size - i < chunks[c] ? sb.size - i : chunks[c]), 0);
        assert_int_equal(s.records, 3);
        /* the first record is size0 bytes: a limit of one byte less stops it */
        record_scan_init(&s, size0 - 1);
        int rc = 0;
        for (size_t i = 0; i < sb.size && rc == 0; i += chunks[c])
            rc = record_scan_feed(&s, (const unsigned char *)sb.data + i,
                                  sb.size - i < chunks[c] ? sb.size - i : chunks[c]);
        assert_int_equal(rc, -1);
        assert_int_equal(s.records, 0);
        record_scan_init(&s, size0);
        assert_int_equal(record_scan_feed(&s, (const unsigned char *)sb.data, size0), 0);
        assert_int_equal(s.records, 1);
    }
    msgpack_sbuffer_destroy(&sb);
}

/* A record that declares 4 GB (a bin32 header), or 2^31 values (an
 * array32 header), is refused from its first bytes. */
static void declared_sizes_are_refused_at_once(void **state)
{
    (void)state;
    RecordScan s;
    record_scan_init(&s, RECORD_LIMIT_DEFAULT);
    const unsigned char bin[] = {0x82, 0xa1, 't', 0xa1, 'x', 0xa1, 'd', 0xc6, 0xff, 0xff, 0xff, 0xf0};
    assert_int_equal(record_scan_feed(&s, bin, sizeof bin), -1);
    record_scan_init(&s, RECORD_LIMIT_DEFAULT);
    const unsigned char arr[] = {0x81, 0xa1, 'a', 0xdd, 0x80, 0x00, 0x00, 0x00};
    assert_int_equal(record_scan_feed(&s, arr, sizeof arr), -1);
    /* an array whose values would take more memory as objects than the limit */
    record_scan_init(&s, 1 << 20);
    const unsigned char arr2[] = {0x81, 0xa1, 'a', 0xdd, 0x00, 0x01, 0x00, 0x00};   /* 65536 values */
    assert_int_equal(record_scan_feed(&s, arr2, sizeof arr2), -1);
    record_scan_init(&s, 1 << 20);
    const unsigned char arr3[] = {0x81, 0xa1, 'a', 0xdc, 0x01, 0x00};                /* 256 values */
    assert_int_equal(record_scan_feed(&s, arr3, sizeof arr3), 0);
}

static char tmp_path[] = "/tmp/test_record_limit_XXXXXX";

/* Header, a record with an n-byte bin, end. */
static void write_stream(size_t n)
{
    msgpack_sbuffer sb;
    msgpack_packer pk;
    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    header_pack(&pk, "test", NULL, 0);
    msgpack_pack_map(&pk, 2);
    mp_pack_str(&pk, "t"); mp_pack_str(&pk, "blob");
    mp_pack_str(&pk, "x"); msgpack_pack_bin(&pk, n);
    for (size_t i = 0; i < n; i++) msgpack_sbuffer_write(&sb, "q", 1);
    msgpack_pack_map(&pk, 2);
    mp_pack_str(&pk, "t"); mp_pack_str(&pk, "end");
    mp_pack_str(&pk, "count"); msgpack_pack_int(&pk, 1);
    FILE *f = fopen(tmp_path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(sb.data, 1, sb.size, f), sb.size);
    fclose(f);
    msgpack_sbuffer_destroy(&sb);
}

static int read_all(void)
{
    RecordReader *r = record_reader_open(tmp_path);
    assert_non_null(r);
    const msgpack_object *rec;
    int rc;
    while ((rc = record_reader_next(r, &rec)) == 1) {}
    record_reader_close(r);
    return rc;
}

static void reader_and_writer_keep_the_limit(void **state)
{
    (void)state;
    int fd = mkstemp(tmp_path);
    assert_true(fd >= 0);
    close(fd);
    setenv("HD_MAX_RECORD", "1M", 1);
    write_stream((1 << 20) - 100);              /* fits: the record is 1 MiB - 100 + 15 bytes */
    assert_int_equal(read_all(), 0);
    write_stream(2 << 20);
    assert_int_equal(read_all(), -1);
    assert_non_null(strstr(hd_last_error(), "record 2: larger than the record size limit of 1 MiB "
                                            "(HD_MAX_RECORD raises it)"));
    /* the whole stream in one read: the record is still named right */
    setenv("HD_MAX_RECORD", "1K", 1);
    write_stream(2000);
    assert_int_equal(read_all(), -1);
    assert_non_null(strstr(hd_last_error(), "record 2: larger than the record size limit of 1 KiB"));
    setenv("HD_MAX_RECORD", "1M", 1);
    /* the writer refuses to make the record a reader would refuse */
    RecordWriter *w = record_writer_open(tmp_path, 0);
    assert_non_null(w);
    msgpack_packer *pk = record_writer_packer(w);
    header_pack(pk, "test", NULL, 0);
    assert_int_equal(record_writer_end_record(w), 0);
    msgpack_pack_map(pk, 1);
    mp_pack_str(pk, "t");
    msgpack_pack_bin(pk, 2 << 20);
    char *zeros = calloc(2 << 20, 1);
    msgpack_pack_bin_body(pk, zeros, 2 << 20);
    free(zeros);
    assert_int_equal(record_writer_end_record(w), -1);
    assert_non_null(strstr(hd_last_error(), ": record 2: 2097160 bytes, larger than the record size limit of 1 MiB"));
    record_writer_abort(w);
    unsetenv("HD_MAX_RECORD");
    write_stream(2 << 20);
    assert_int_equal(read_all(), 0);
    unlink(tmp_path);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(sizes_parse),
        cmocka_unit_test(scan_finds_records_in_any_chunks),
        cmocka_unit_test(declared_sizes_are_refused_at_once),
        cmocka_unit_test(reader_and_writer_keep_the_limit),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
