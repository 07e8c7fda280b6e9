/* The test harness itself: cmocka links, error messages compose. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <string.h>

#include "error.h"

static void fail_prefix_composes(void **state)
{
    (void)state;
    assert_int_equal(hd_fail("record %d: bad", 3), -1);
    hd_fail_prefix("%s: ", "a.msgpack");
    assert_string_equal(hd_last_error(), "a.msgpack: record 3: bad");
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(fail_prefix_composes)};
    return cmocka_run_group_tests_name("smoke", tests, NULL, NULL);
}
