/* The test harness itself: cmocka links, error messages compose. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <string.h>

#include "base/error.h"
#include "base/sha256.h"

static void fail_prefix_composes(void **state)
{
    (void)state;
    assert_int_equal(hd_fail("record %d: bad", 3), -1);
    hd_fail_prefix("%s: ", "a.msgpack");
    assert_string_equal(hd_last_error(), "a.msgpack: record 3: bad");
}

/* FIPS 180-4 examples and a two-block message crossing the padding edge. */
static void sha256_known_answers(void **state)
{
    (void)state;
    char hex[65];
    sha256_hex("abc", 3, hex);
    assert_string_equal(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    sha256_hex("", 0, hex);
    assert_string_equal(hex, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    const char *m = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
    sha256_hex(m, strlen(m), hex);
    assert_string_equal(hex, "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(fail_prefix_composes),
                                        cmocka_unit_test(sha256_known_answers)};
    return cmocka_run_group_tests_name("smoke", tests, NULL, NULL);
}
