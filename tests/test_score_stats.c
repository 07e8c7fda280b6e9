/* Bootstrap intervals, paired comparisons and McNemar's test of hd-score
 * (issue 13): what the intervals must satisfy whatever the draws (the
 * point estimate inside, degenerate strata degenerate, nil where there is
 * no estimate, the same numbers for the same seed), McNemar's exact p
 * against values worked out by hand or with exact integers, and pairing
 * by example id. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/error.h"
#include "stream/msgpack_util.h"
#include "score/score_groups.h"
#include "score/score_stats.h"
#include "score/score_summary.h"

#define EPS 1e-12

/* Adds n examples of one kind with ids PREFIX0.., the first n_correct correct. */
static void add_many(ScoreSummary *s, const char *domain, const char *attr, int is_causal,
                     int base_pred_correct, int n, int n_correct, const char *prefix)
{
    for (int i = 0; i < n; i++) {
        char id[64];
        snprintf(id, sizeof id, "%s%d", prefix, i);
        ScoreOutcome o = {.split = "test", .domain = domain, .target_attribute = attr,
                          .queried_attribute = attr, .base_template = "T %s",
                          .is_causal = is_causal, .correct = i < n_correct,
                          .base_pred_correct = base_pred_correct, .id = id};
        assert_int_equal(score_summary_add(s, &o), 0);
    }
}

static void assert_nil_ci(ScoreCi ci)
{
    assert_true(isnan(ci.lo) && isnan(ci.hi));
}

static void assert_ci(ScoreCi ci, double lo, double hi)
{
    assert_float_equal(ci.lo, lo, EPS);
    assert_float_equal(ci.hi, hi, EPS);
}

/* A set with some spread: Country causal 12/30 (6 of them with the base
 * answer wrong, 3 right), isolation 20/25; Continent causal 9/10, no
 * isolation; a second domain with one attribute. */
static ScoreSummary *spread_set(void)
{
    ScoreSummary *s = score_summary_new();
    add_many(s, "city", "Country", 1, 0, 6, 3, "cc");
    add_many(s, "city", "Country", 1, 1, 24, 9, "co");
    add_many(s, "city", "Country", 0, 1, 25, 20, "ci");
    add_many(s, "city", "Continent", 1, -1, 10, 9, "kc");
    add_many(s, "nobel", "Field", 1, 0, 8, 2, "fc");
    add_many(s, "nobel", "Field", 0, 1, 8, 5, "fi");
    return s;
}

static const ScoreCi *metric(const ScoreRowCi *ci, int m)
{
    const ScoreCi *all[] = {&ci->cause, &ci->isolate, &ci->disentangle, &ci->cause_changed};
    return all[m];
}

static double point(const ScoreRow *r, int m)
{
    double all[] = {r->cause, r->isolate, r->disentangle, r->cause_changed};
    return all[m];
}

static void interval_contains_point_estimate(void **state)
{
    (void)state;
    ScoreSummary *s = spread_set();
    ScoreBootstrap b = {1000, 42};
    int n_rows = 0, n_ci = 0;
    ScoreRow *rows = score_summary_rows(s, 0, &n_rows);
    ScoreRowCi *ci = score_stats_row_ci(s, 0, &b, &n_ci);
    assert_int_equal(n_ci, n_rows);
    assert_int_equal(n_rows, 3 + 2 + 1);
    for (int r = 0; r < n_rows; r++)
        for (int m = 0; m < 4; m++) {
            double p = point(&rows[r], m);
            const ScoreCi *c = metric(&ci[r], m);
            if (isnan(p)) {
                assert_nil_ci(*c);
                continue;
            }
            if (!(c->lo <= p && p <= c->hi && c->lo >= 0 && c->hi <= 1))
                fail_msg("row %d metric %d: %g outside [%g, %g]", r, m, p, c->lo, c->hi);
        }
    /* Country's Cause 12/30 varies: the interval is not a point. */
    assert_true(ci[0].cause.lo < ci[0].cause.hi);
    free(ci);
    free(rows);
    score_summary_free(s);
}

static void same_seed_same_intervals(void **state)
{
    (void)state;
    ScoreSummary *s = spread_set();
    ScoreBootstrap b = {500, 7}, other = {500, 8};
    int n1 = 0, n2 = 0, n3 = 0;
    ScoreRowCi *c1 = score_stats_row_ci(s, 0, &b, &n1);
    ScoreRowCi *c2 = score_stats_row_ci(s, 0, &b, &n2);
    ScoreRowCi *c3 = score_stats_row_ci(s, 0, &other, &n3);
    assert_int_equal(n1, n2);
    int differs = 0;
    for (int r = 0; r < n1; r++)
        for (int m = 0; m < 4; m++) {
            const ScoreCi *x = metric(&c1[r], m), *y = metric(&c2[r], m), *z = metric(&c3[r], m);
            if (isnan(x->lo)) {
                assert_true(isnan(y->lo));
                continue;
            }
            /* bit for bit, not merely close */
            assert_memory_equal(x, y, sizeof *x);
            differs |= x->lo != z->lo || x->hi != z->hi;
        }
    assert_true(differs);   /* another seed, other draws */
    free(c1);
    free(c2);
    free(c3);
    score_summary_free(s);
}

/* All-correct strata give [1, 1]; and because replicates keep every
 * stratum's count, a domain mean over an all-correct and an all-wrong
 * attribute is 0.5 in every replicate (pooled resampling would move it),
 * and Cause over an all-correct changed subset and all-wrong other causal
 * examples stays 4/10. */
static void degenerate_strata_give_points(void **state)
{
    (void)state;
    ScoreSummary *s = score_summary_new();
    add_many(s, "city", "Country", 1, 0, 4, 4, "a");    /* changed, all correct */
    add_many(s, "city", "Country", 1, 1, 6, 0, "b");    /* other causal, all wrong */
    add_many(s, "city", "Country", 0, 1, 5, 5, "c");    /* isolation, all correct */
    add_many(s, "city", "Language", 1, 1, 7, 0, "d");   /* causal, all wrong */
    ScoreBootstrap b = {200, 1};
    int n = 0;
    ScoreRowCi *ci = score_stats_row_ci(s, 0, &b, &n);
    assert_int_equal(n, 4);
    assert_ci(ci[0].cause_changed, 1, 1);
    assert_ci(ci[0].isolate, 1, 1);
    assert_ci(ci[0].cause, 0.4, 0.4);
    assert_ci(ci[0].disentangle, 0.7, 0.7);
    assert_ci(ci[1].cause, 0, 0);
    assert_ci(ci[2].cause, 0.2, 0.2);          /* (0.4 + 0) / 2 */
    assert_ci(ci[2].cause_changed, 1, 1);      /* Language has no changed examples */
    free(ci);
    score_summary_free(s);
}

static void nil_for_empty_strata(void **state)
{
    (void)state;
    ScoreSummary *s = score_summary_new();
    add_many(s, "city", "Continent", 1, 1, 5, 3, "a");   /* no isolation, none changed */
    add_many(s, "city", "Timezone", 0, 1, 4, 2, "b");    /* no causal */
    ScoreBootstrap b = {100, 3};
    int n = 0;
    ScoreRowCi *ci = score_stats_row_ci(s, 0, &b, &n);
    assert_int_equal(n, 4);
    assert_false(isnan(ci[0].cause.lo));
    assert_nil_ci(ci[0].isolate);
    assert_nil_ci(ci[0].disentangle);
    assert_nil_ci(ci[0].cause_changed);
    assert_nil_ci(ci[1].cause);
    assert_nil_ci(ci[1].disentangle);
    assert_false(isnan(ci[1].isolate.lo));
    /* the domain mean has both, from different attributes */
    assert_false(isnan(ci[2].disentangle.lo));
    assert_nil_ci(ci[2].cause_changed);
    free(ci);
    /* no replicates: nothing but nil */
    ScoreBootstrap off = {0, 3};
    ci = score_stats_row_ci(s, 0, &off, &n);
    for (int r = 0; r < n; r++)
        for (int m = 0; m < 4; m++) assert_nil_ci(*metric(&ci[r], m));
    free(ci);
    assert_null(score_stats_row_ci(s, 1, &b, &n));
    score_summary_free(s);
}

static void percentile_interpolates(void **state)
{
    (void)state;
    const double x[] = {1, 2, 3, 4};
    assert_float_equal(score_percentile(x, 4, 0.5), 2.5, EPS);
    assert_float_equal(score_percentile(x, 4, 0.0), 1, EPS);
    assert_float_equal(score_percentile(x, 4, 1.0), 4, EPS);
    assert_float_equal(score_percentile(x, 4, 0.025), 1.075, EPS);
    assert_true(isnan(score_percentile(x, 0, 0.5)));
}

static void mcnemar_exact_values(void **state)
{
    (void)state;
    assert_float_equal(score_mcnemar_exact(7, 0), 2.0 / 128, EPS);   /* 0.015625 */
    assert_float_equal(score_mcnemar_exact(0, 7), 0.015625, EPS);
    assert_float_equal(score_mcnemar_exact(5, 5), 1.0, EPS);
    assert_float_equal(score_mcnemar_exact(10, 2), 0.03857421875, EPS);   /* 2 * 79 / 4096 */
    assert_float_equal(score_mcnemar_exact(30, 10), 0.0022214337732293643, 1e-12);
    assert_float_equal(score_mcnemar_exact(0, 0), 1.0, EPS);
    assert_float_equal(score_mcnemar_exact(1, 0), 1.0, EPS);
    /* thousands of discordant pairs: 2^-2900 alone underflows a double;
     * the exact value (Python integers) is 0.06598734966518381 */
    assert_float_equal(score_mcnemar_exact(1500, 1400), 0.06598734966518381, 1e-10);
    double tiny = score_mcnemar_exact(863, 0);   /* 2^-862 = 3.25e-260 */
    assert_true(tiny > 3.2e-260 && tiny < 3.3e-260);
}

/* A summary and a copy of it: every difference 0, interval [0, 0]. */
static void paired_identical_is_zero(void **state)
{
    (void)state;
    ScoreSummary *a = spread_set(), *b = spread_set();
    ScoreBootstrap bs = {300, 42};
    ScorePaired p;
    score_stats_paired(a, b, "test", &bs, &p);
    assert_int_equal(p.n_matched, 30 + 25 + 10 + 16);
    assert_int_equal(p.n_changed, 6 + 8);
    assert_float_equal(p.d_disentangle, 0, 0);
    assert_ci(p.ci_disentangle, 0, 0);
    assert_ci(p.ci_cause, 0, 0);
    assert_ci(p.ci_flip, 0, 0);
    assert_int_equal(p.b, 0);
    assert_int_equal(p.c, 0);
    assert_float_equal(p.p, 1.0, EPS);
    score_stats_paired(a, b, "val", &bs, &p);   /* a split neither has */
    assert_int_equal(p.n_matched, 0);
    assert_true(isnan(p.d_cause));
    assert_nil_ci(p.ci_cause);
    score_summary_free(a);
    score_summary_free(b);
}

/* A: Country causal, base wrong, ids x0..x9, x0..x6 correct (7/10).
 * B: the same ids in reverse order, x0 and x7 correct, plus y0 (B only);
 *    A has z0 (A only, isolation).
 * Matched: the 10 x's.  b = A right & B wrong = x1..x6 = 6, c = x7 = 1;
 * Cause A 0.7, B 0.2: d_cause = d_flip = +0.5; no isolation among the
 * matched, so Disentangle is nil on both sides. */
static void paired_matches_by_id(void **state)
{
    (void)state;
    ScoreSummary *a = score_summary_new(), *b = score_summary_new();
    add_many(a, "city", "Country", 1, 0, 10, 7, "x");
    add_many(a, "city", "Country", 0, 1, 1, 1, "z");
    for (int i = 9; i >= 0; i--) {
        char id[16];
        snprintf(id, sizeof id, "x%d", i);
        ScoreOutcome o = {.split = "test", .domain = "city", .target_attribute = "Country",
                          .queried_attribute = "Country", .base_template = "T", .is_causal = 1,
                          .correct = i == 0 || i == 7, .base_pred_correct = 0, .id = id};
        assert_int_equal(score_summary_add(b, &o), 0);
    }
    add_many(b, "city", "Country", 1, 0, 1, 1, "y");
    ScoreBootstrap bs = {400, 5};
    ScorePaired p;
    score_stats_paired(a, b, "test", &bs, &p);
    assert_int_equal(p.n_matched, 10);
    assert_int_equal(p.n_isolate, 0);
    assert_int_equal(p.b, 6);
    assert_int_equal(p.c, 1);
    assert_float_equal(p.p, score_mcnemar_exact(6, 1), EPS);
    assert_float_equal(p.p, 2.0 * 8 / 128, EPS);
    assert_float_equal(p.d_cause, 0.5, EPS);
    assert_float_equal(p.d_flip, 0.5, EPS);
    assert_true(isnan(p.d_disentangle));
    assert_nil_ci(p.ci_disentangle);
    assert_true(p.ci_cause.lo <= 0.5 && 0.5 <= p.ci_cause.hi && p.ci_cause.lo < p.ci_cause.hi);
    score_summary_free(a);
    score_summary_free(b);
}

/* A score record's id is what pairs it: optional (nil or absent: the
 * example cannot be paired), but never of another type. */
static void outcome_id_from_record(void **state)
{
    (void)state;
    for (int id_type = 0; id_type < 3; id_type++) {
        msgpack_sbuffer sb;
        msgpack_sbuffer_init(&sb);
        msgpack_packer pk;
        msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
        msgpack_pack_map(&pk, 9);
        const char *keys[] = {"split", "domain", "target_attribute", "queried_attribute",
                              "base_template", "kind"};
        const char *values[] = {"test", "city", "Country", "Country", "T", "causal"};
        for (int k = 0; k < 6; k++) {
            mp_pack_str(&pk, keys[k]);
            mp_pack_str(&pk, values[k]);
        }
        mp_pack_str(&pk, "correct");
        msgpack_pack_true(&pk);
        mp_pack_str(&pk, "base_pred_correct");
        msgpack_pack_false(&pk);
        mp_pack_str(&pk, "id");
        if (id_type == 0) mp_pack_str(&pk, "city/test/Country/causal/4");
        else if (id_type == 1) msgpack_pack_nil(&pk);
        else msgpack_pack_int(&pk, 5);
        msgpack_unpacked u;
        msgpack_unpacked_init(&u);
        size_t off = 0;
        assert_int_equal(msgpack_unpack_next(&u, sb.data, sb.size, &off), MSGPACK_UNPACK_SUCCESS);
        ScoreOutcome o;
        int rc = score_outcome_from_record(&o, &u.data);
        if (id_type == 2) {
            assert_int_equal(rc, -1);
            assert_non_null(strstr(hd_last_error(), "'id'"));
        } else {
            assert_int_equal(rc, 0);
            if (id_type == 0) assert_string_equal(o.id, "city/test/Country/causal/4");
            else assert_null(o.id);
            ScoreSummary *s = score_summary_new();
            assert_int_equal(score_summary_add(s, &o), 0);
            int n = 0;
            const ScoreItem *it = score_summary_items(s, &n);
            assert_int_equal(n, 1);
            assert_int_equal(it[0].stratum, SCORE_CHANGED);
            if (id_type == 0) assert_string_equal(it[0].id, "city/test/Country/causal/4");
            else assert_null(it[0].id);
            score_summary_free(s);
            score_outcome_release(&o);
        }
        msgpack_unpacked_destroy(&u);
        msgpack_sbuffer_destroy(&sb);
    }
}

/* The first-N judgement (--also-first) from token ids. */
static void first_tokens_judgement(void **state)
{
    (void)state;
    const int label[] = {1, 2, 3, 4}, near[] = {1, 2, 3, 9}, off[] = {1, 7, 3, 4};
    int c, bc;
    score_first_tokens(near, 4, label, 4, off, 4, 0, 3, &c, &bc);
    assert_int_equal(c, 1);    /* wrong only after the third token */
    assert_int_equal(bc, 0);
    score_first_tokens(off, 4, label, 4, near, 4, 0, 3, &c, &bc);
    assert_int_equal(c, 0);
    assert_int_equal(bc, 1);
    /* too few predictions to tell; no base tokens: known only when the
     * whole label was right */
    score_first_tokens(near, 2, label, 4, NULL, 0, 1, 3, &c, &bc);
    assert_int_equal(c, -1);
    assert_int_equal(bc, 1);
    score_first_tokens(near, 2, label, 2, NULL, 0, 0, 3, &c, &bc);
    assert_int_equal(c, 1);    /* a two-token label needs two */
    assert_int_equal(bc, -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(interval_contains_point_estimate),
        cmocka_unit_test(same_seed_same_intervals),
        cmocka_unit_test(degenerate_strata_give_points),
        cmocka_unit_test(nil_for_empty_strata),
        cmocka_unit_test(percentile_interpolates),
        cmocka_unit_test(mcnemar_exact_values),
        cmocka_unit_test(paired_identical_is_zero),
        cmocka_unit_test(paired_matches_by_id),
        cmocka_unit_test(outcome_id_from_record),
        cmocka_unit_test(first_tokens_judgement),
    };
    return cmocka_run_group_tests_name("score_stats", tests, NULL, NULL);
}
