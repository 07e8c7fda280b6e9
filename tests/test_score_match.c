/* The correctness rules of hyperdas(7) 9.1 and 9.2: the text fallback (prefix
 * after stripping leading whitespace, byte-exact) and the token rules
 * (all label tokens, or RAVEL's first n). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "score/score_match.h"

static void text_exact_and_prefix(void **state)
{
    (void)state;
    assert_int_equal(score_match_text("Paris", "Paris"), 1);
    /* The continuation may go on after the answer. */
    assert_int_equal(score_match_text("Paris, France", "Paris"), 1);
    /* Only a prefix is checked, so a longer word still matches (this is
     * why the mode is marked approximate). */
    assert_int_equal(score_match_text("Parisian", "Paris"), 1);
    assert_int_equal(score_match_text("Lyon", "Paris"), 0);
}

static void text_leading_whitespace(void **state)
{
    (void)state;
    /* Generated text usually starts with the space of the next token. */
    assert_int_equal(score_match_text(" Paris is", "Paris"), 1);
    assert_int_equal(score_match_text("Paris", " Paris"), 1);
    assert_int_equal(score_match_text("\n\t  Paris", "  Paris"), 1);
    /* Inner whitespace is not normalised: byte-exact. */
    assert_int_equal(score_match_text("New  York", "New York"), 0);
    assert_int_equal(score_match_text(" New York City", "New York"), 1);
    /* Trailing whitespace of the label is part of the label. */
    assert_int_equal(score_match_text("Paris", "Paris "), 0);
}

static void text_case_sensitive(void **state)
{
    (void)state;
    assert_int_equal(score_match_text("paris", "Paris"), 0);
    assert_int_equal(score_match_text("PARIS", "Paris"), 0);
    assert_int_equal(score_match_text(" Europe", "europe"), 0);
}

static void text_label_longer_or_empty(void **state)
{
    (void)state;
    assert_int_equal(score_match_text("Par", "Paris"), 0);
    assert_int_equal(score_match_text("", "Paris"), 0);
    assert_int_equal(score_match_text("   ", "Paris"), 0);
    /* An empty label would be a prefix of everything: never correct. */
    assert_int_equal(score_match_text("Paris", ""), 0);
    assert_int_equal(score_match_text("Paris", "  \t"), 0);
    assert_int_equal(score_match_text("", ""), 0);
    assert_int_equal(score_match_text(NULL, "Paris"), 0);
    assert_int_equal(score_match_text("Paris", NULL), 0);
}

static void tokens_all_label_tokens(void **state)
{
    (void)state;
    const int label[] = {5, 6, 7};
    const int same[] = {5, 6, 7}, last_wrong[] = {5, 6, 8}, first_wrong[] = {9, 6, 7};
    const int longer[] = {5, 6, 7, 9};
    assert_int_equal(score_match_tokens(same, 3, label, 3, 0), 1);
    assert_int_equal(score_match_tokens(last_wrong, 3, label, 3, 0), 0);
    assert_int_equal(score_match_tokens(first_wrong, 3, label, 3, 0), 0);
    /* Predictions past the label are not looked at. */
    assert_int_equal(score_match_tokens(longer, 4, label, 3, 0), 1);
    /* Too few predictions: incorrect, not an out-of-bounds read. */
    assert_int_equal(score_match_tokens(same, 2, label, 3, 0), 0);
    assert_int_equal(score_match_tokens(NULL, 0, label, 3, 0), 0);
    /* n < 0 is treated as "all tokens". */
    assert_int_equal(score_match_tokens(last_wrong, 3, label, 3, -1), 0);
    assert_int_equal(score_match_tokens(same, 3, label, 3, -1), 1);
}

static void tokens_first_n(void **state)
{
    (void)state;
    /* A five-token answer judged on its first three tokens. */
    const int label[] = {1, 2, 3, 4, 5};
    const int first3[] = {1, 2, 3}, tail_wrong[] = {1, 2, 3, 9, 9}, third_wrong[] = {1, 2, 9, 4, 5};
    assert_int_equal(score_match_tokens(first3, 3, label, 5, 3), 1);
    assert_int_equal(score_match_tokens(tail_wrong, 5, label, 5, 3), 1);
    assert_int_equal(score_match_tokens(tail_wrong, 5, label, 5, 0), 0);
    assert_int_equal(score_match_tokens(third_wrong, 5, label, 5, 3), 0);
    assert_int_equal(score_match_tokens(third_wrong, 5, label, 5, 2), 1);
    assert_int_equal(score_match_tokens(first3, 2, label, 5, 3), 0);
    /* n = 1: only the first token. */
    const int other_after_first[] = {1, 7, 7, 7, 7};
    assert_int_equal(score_match_tokens(other_after_first, 5, label, 5, 1), 1);
}

static void tokens_label_shorter_than_n(void **state)
{
    (void)state;
    /* A two-token label with n = 3 needs only its own two tokens. */
    const int label[] = {1, 2};
    const int exact[] = {1, 2}, extra[] = {1, 2, 77}, short_pred[] = {1}, wrong[] = {1, 3, 77};
    assert_int_equal(score_match_tokens(exact, 2, label, 2, 3), 1);
    assert_int_equal(score_match_tokens(extra, 3, label, 2, 3), 1);
    assert_int_equal(score_match_tokens(short_pred, 1, label, 2, 3), 0);
    assert_int_equal(score_match_tokens(wrong, 3, label, 2, 3), 0);
}

static void tokens_empty_label(void **state)
{
    (void)state;
    const int pred[] = {1, 2, 3};
    assert_int_equal(score_match_tokens(pred, 3, pred, 0, 0), 0);
    assert_int_equal(score_match_tokens(pred, 3, pred, 0, 3), 0);
    assert_int_equal(score_match_tokens(pred, 3, NULL, 0, 0), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(text_exact_and_prefix),     cmocka_unit_test(text_leading_whitespace),
        cmocka_unit_test(text_case_sensitive),       cmocka_unit_test(text_label_longer_or_empty),
        cmocka_unit_test(tokens_all_label_tokens),   cmocka_unit_test(tokens_first_n),
        cmocka_unit_test(tokens_label_shorter_than_n), cmocka_unit_test(tokens_empty_label),
    };
    return cmocka_run_group_tests_name("score_match", tests, NULL, NULL);
}
