/* Cause / Isolate / Disentangle summaries (hyperdas(7)
 * 9.3 to 9.5): small outcome sets whose expected numbers are worked out
 * by hand in the comments, the packed `summary` record read back, the
 * `score` record parser, and the text table. */
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
#include "score/score_report.h"
#include "score/score_summary.h"

#define EPS 1e-12

/* Adds n examples of one kind, the first n_correct of them correct. */
static void add_many(ScoreSummary *s, const char *split, const char *domain, const char *target,
                     const char *queried, const char *tmpl, int is_causal, int n, int n_correct,
                     int base_pred_correct)
{
    for (int i = 0; i < n; i++) {
        ScoreOutcome o = {.split = split, .domain = domain, .target_attribute = target,
                          .queried_attribute = queried, .base_template = tmpl,
                          .is_causal = is_causal, .correct = i < n_correct,
                          .base_pred_correct = base_pred_correct};
        assert_int_equal(score_summary_add(s, &o), 0);
    }
}

static void causal(ScoreSummary *s, const char *domain, const char *attr, const char *tmpl, int n,
                   int n_correct)
{
    add_many(s, "test", domain, attr, attr, tmpl, 1, n, n_correct, -1);
}

static void isolate(ScoreSummary *s, const char *domain, const char *attr, const char *queried,
                    const char *tmpl, int n, int n_correct)
{
    add_many(s, "test", domain, attr, queried, tmpl, 0, n, n_correct, -1);
}

static const ScoreRow *find_row(const ScoreRow *rows, int n, const char *domain, const char *attr)
{
    for (int i = 0; i < n; i++)
        if (strcmp(rows[i].domain, domain) == 0 && strcmp(rows[i].attribute, attr) == 0)
            return &rows[i];
    fail_msg("no row (%s, %s)", domain, attr);
    return NULL;
}

static void assert_nil(double v)
{
    assert_true(isnan(v));
}

/* One attribute, causal only, two templates of unequal size:
 *   T1: 3 of 3 correct (1.0), T2: 0 of 1 (0.0)
 *   micro cause = 3/4 = 0.75, macro cause = (1.0 + 0.0) / 2 = 0.5.
 * No isolation: isolate and disentangle nil (not 0 and cause: nothing
 * was measured), micro and macro.  The domain mean has no attribute with
 * isolation: isolate and disentangle nil there too. */
static void micro_and_macro_differ(void **state)
{
    (void)state;
    ScoreSummary *s = score_summary_new();
    causal(s, "city", "Country", "T1 %s", 3, 3);
    causal(s, "city", "Country", "T2 %s", 1, 0);
    int n = 0;
    ScoreRow *rows = score_summary_rows(s, 0, &n);
    assert_int_equal(n, 3);   /* attribute, domain mean, overall */
    assert_string_equal(rows[0].domain, "city");
    assert_string_equal(rows[0].attribute, "Country");
    assert_int_equal(rows[0].n_causal, 4);
    assert_int_equal(rows[0].n_isolate, 0);
    assert_float_equal(rows[0].cause, 0.75, EPS);
    assert_float_equal(rows[0].cause_macro, 0.5, EPS);
    assert_nil(rows[0].isolate);
    assert_nil(rows[0].isolate_macro);
    assert_nil(rows[0].disentangle);
    assert_nil(rows[0].disentangle_macro);

    assert_string_equal(rows[1].domain, "city");
    assert_string_equal(rows[1].attribute, "(mean)");
    assert_float_equal(rows[1].cause, 0.75, EPS);
    assert_nil(rows[1].isolate);
    assert_nil(rows[1].disentangle);
    assert_float_equal(rows[1].cause_macro, 0.5, EPS);
    assert_nil(rows[1].disentangle_macro);

    assert_string_equal(rows[2].domain, "(all)");
    assert_string_equal(rows[2].attribute, "(mean)");
    assert_float_equal(rows[2].cause, 0.75, EPS);
    assert_int_equal(rows[2].n_causal, 4);
    free(rows);
    score_summary_free(s);
}

/* Target Country; causal 2 of 2 on one template (cause 1.0, macro 1.0).
 * Isolation, queried Continent: C1 4 of 4 (1.0), C2 1 of 2 (0.5) -> 0.75;
 *            queried Language:  L1 0 of 2 (0.0)               -> 0.0.
 *   micro isolate = (4 + 1 + 0) / 8 = 0.625
 *   macro isolate = (0.75 + 0.0) / 2 = 0.375 (each queried attribute
 *     weighs the same; a plain mean over the three templates would give
 *     0.5, a pooled one 0.625)
 *   disentangle = (1 + 0.625) / 2 = 0.8125, macro (1 + 0.375) / 2 = 0.6875 */
static void isolate_macro_over_queried_attributes(void **state)
{
    (void)state;
    ScoreSummary *s = score_summary_new();
    causal(s, "city", "Country", "K1 %s", 2, 2);
    isolate(s, "city", "Country", "Continent", "C1 %s", 4, 4);
    isolate(s, "city", "Country", "Language", "L1 %s", 2, 0);
    isolate(s, "city", "Country", "Continent", "C2 %s", 2, 1);
    int n = 0;
    ScoreRow *rows = score_summary_rows(s, 0, &n);
    const ScoreRow *r = find_row(rows, n, "city", "Country");
    assert_int_equal(r->n_causal, 2);
    assert_int_equal(r->n_isolate, 8);
    assert_float_equal(r->cause, 1.0, EPS);
    assert_float_equal(r->isolate, 0.625, EPS);
    assert_float_equal(r->disentangle, 0.8125, EPS);
    assert_float_equal(r->cause_macro, 1.0, EPS);
    assert_float_equal(r->isolate_macro, 0.375, EPS);
    assert_float_equal(r->disentangle_macro, 0.6875, EPS);
    free(rows);
    score_summary_free(s);
}

/* Flip rate.  Country, causal, (base_pred_correct, correct):
 *   (1,1) (0,1) (0,0) (0,1) (-1,0)  -> n_causal 5, cause 3/5 = 0.6
 *   changed = the three with base_pred_correct 0: 2 of 3 correct.
 * An isolation example with base_pred_correct 0 does not count.
 * Continent: causal, all already right unintervened -> n_changed 0, nil.
 * Domain mean: cause_changed over attributes with n_changed > 0 = 2/3,
 * n_changed summed = 3. */
static void changed_examples(void **state)
{
    (void)state;
    ScoreSummary *s = score_summary_new();
    add_many(s, "test", "city", "Country", "Country", "T", 1, 1, 1, 1);
    add_many(s, "test", "city", "Country", "Country", "T", 1, 1, 1, 0);
    add_many(s, "test", "city", "Country", "Country", "T", 1, 1, 0, 0);
    add_many(s, "test", "city", "Country", "Country", "T", 1, 1, 1, 0);
    add_many(s, "test", "city", "Country", "Country", "T", 1, 1, 0, -1);
    add_many(s, "test", "city", "Country", "Language", "L", 0, 1, 1, 0);
    add_many(s, "test", "city", "Continent", "Continent", "T", 1, 2, 1, 1);
    int n = 0;
    ScoreRow *rows = score_summary_rows(s, 0, &n);
    assert_int_equal(n, 4);
    const ScoreRow *country = find_row(rows, n, "city", "Country");
    assert_int_equal(country->n_causal, 5);
    assert_float_equal(country->cause, 0.6, EPS);
    assert_int_equal(country->n_changed, 3);
    assert_float_equal(country->cause_changed, 2.0 / 3.0, EPS);
    const ScoreRow *continent = find_row(rows, n, "city", "Continent");
    assert_int_equal(continent->n_changed, 0);
    assert_nil(continent->cause_changed);
    const ScoreRow *mean = find_row(rows, n, "city", "(mean)");
    assert_int_equal(mean->n_changed, 3);
    assert_float_equal(mean->cause_changed, 2.0 / 3.0, EPS);
    free(rows);
    score_summary_free(s);
}

/* Domain city with three targets (one template each, so macro = micro):
 *   Country:   causal 2/4 = 0.5,  isolation (queried Continent) 3/4 = 0.75
 *   Continent: no causal (cause nil, disentangle nil), isolation 1/2 = 0.5
 *   Language:  causal 1/1 = 1.0,  no isolation (isolate, disentangle nil)
 * Domain mean: cause = (0.5 + 1.0) / 2 = 0.75 (Continent left out);
 *   isolate = (0.75 + 0.5) / 2 = 0.625 (Language left out);
 *   disentangle = (0.75 + 0.625) / 2 = 0.6875;
 *   n_causal 5, n_isolate 6. */
static void build_domain_mean_set(ScoreSummary *s)
{
    causal(s, "city", "Country", "K %s", 4, 2);
    isolate(s, "city", "Country", "Continent", "C %s", 4, 3);
    isolate(s, "city", "Continent", "Country", "K %s", 2, 1);
    causal(s, "city", "Language", "L %s", 1, 1);
}

static void domain_mean_leaves_out_empty_attributes(void **state)
{
    (void)state;
    ScoreSummary *s = score_summary_new();
    build_domain_mean_set(s);
    int n = 0;
    ScoreRow *rows = score_summary_rows(s, 0, &n);
    assert_int_equal(n, 5);
    /* Contract order: attributes (first seen), domain mean, overall. */
    assert_string_equal(rows[0].attribute, "Country");
    assert_string_equal(rows[1].attribute, "Continent");
    assert_string_equal(rows[2].attribute, "Language");
    assert_string_equal(rows[3].attribute, "(mean)");
    assert_string_equal(rows[4].domain, "(all)");

    assert_nil(rows[1].cause);
    assert_nil(rows[1].cause_macro);
    assert_nil(rows[1].disentangle);
    assert_float_equal(rows[1].isolate, 0.5, EPS);
    assert_nil(rows[2].isolate);
    assert_nil(rows[2].isolate_macro);
    assert_nil(rows[2].disentangle);

    const ScoreRow *m = &rows[3];
    assert_int_equal(m->n_causal, 5);
    assert_int_equal(m->n_isolate, 6);
    assert_float_equal(m->cause, 0.75, EPS);
    assert_float_equal(m->isolate, 0.625, EPS);
    assert_float_equal(m->disentangle, 0.6875, EPS);
    assert_float_equal(m->cause_macro, 0.75, EPS);
    assert_float_equal(m->isolate_macro, 0.625, EPS);
    assert_float_equal(m->disentangle_macro, 0.6875, EPS);
    assert_nil(m->cause_changed);   /* no example with a known base answer */
    free(rows);
    score_summary_free(s);
}

/* Two domains:
 *   city:  X causal 1/2 = 0.5, isolation (queried Y) 1/1 = 1.0; Y causal 1/1 = 1.0
 *          -> city cause mean 0.75, isolate mean 1.0
 *   nobel: Z causal 0/4 = 0.0, no isolation -> cause 0.0, isolate and
 *          disentangle nil
 * Overall (mean of the domain means): cause (0.75 + 0.0) / 2 = 0.375
 *   (not the attribute mean 0.5 nor the pooled 2/7); isolate 1.0 (nobel has
 *   nothing to average); disentangle (0.375 + 1.0) / 2 = 0.6875;
 *   n_causal 7, n_isolate 1. */
static void overall_row_over_domains(void **state)
{
    (void)state;
    ScoreSummary *s = score_summary_new();
    causal(s, "city", "X", "x %s", 2, 1);
    causal(s, "nobel", "Z", "z %s", 4, 0);
    isolate(s, "city", "X", "Y", "y %s", 1, 1);
    causal(s, "city", "Y", "y %s", 1, 1);
    int n = 0;
    ScoreRow *rows = score_summary_rows(s, 0, &n);
    assert_int_equal(n, 6);
    assert_string_equal(rows[0].domain, "city");
    assert_string_equal(rows[0].attribute, "X");
    assert_string_equal(rows[1].attribute, "Y");
    assert_string_equal(rows[2].domain, "nobel");
    assert_string_equal(rows[3].domain, "city");
    assert_string_equal(rows[3].attribute, "(mean)");
    assert_string_equal(rows[4].domain, "nobel");
    assert_string_equal(rows[4].attribute, "(mean)");
    assert_float_equal(rows[3].cause, 0.75, EPS);
    assert_float_equal(rows[3].isolate, 1.0, EPS);
    assert_float_equal(rows[4].cause, 0.0, EPS);
    assert_nil(rows[4].isolate);
    assert_nil(rows[4].disentangle);

    const ScoreRow *all = &rows[5];
    assert_string_equal(all->domain, "(all)");
    assert_string_equal(all->attribute, "(mean)");
    assert_int_equal(all->n_causal, 7);
    assert_int_equal(all->n_isolate, 1);
    assert_float_equal(all->cause, 0.375, EPS);
    assert_float_equal(all->isolate, 1.0, EPS);
    assert_float_equal(all->disentangle, 0.6875, EPS);
    assert_float_equal(all->cause_macro, 0.375, EPS);
    free(rows);
    score_summary_free(s);
}

/* val: Country 1/2 = 0.5; test: Country 3/3 = 1.0, added interleaved.
 * Splits keep first-seen order (val, test) and their own counts. */
static void splits_kept_apart(void **state)
{
    (void)state;
    ScoreSummary *s = score_summary_new();
    add_many(s, "val", "city", "Country", "Country", "T", 1, 1, 1, -1);
    add_many(s, "test", "city", "Country", "Country", "T", 1, 2, 2, -1);
    add_many(s, "val", "city", "Country", "Country", "T", 1, 1, 0, -1);
    add_many(s, "test", "city", "Country", "Country", "T", 1, 1, 1, -1);
    assert_int_equal(score_summary_n_splits(s), 2);
    assert_string_equal(score_summary_split(s, 0), "val");
    assert_string_equal(score_summary_split(s, 1), "test");
    assert_null(score_summary_split(s, 2));
    int n = 0;
    ScoreRow *val = score_summary_rows(s, 0, &n);
    assert_int_equal(val[0].n_causal, 2);
    assert_float_equal(val[0].cause, 0.5, EPS);
    free(val);
    ScoreRow *test = score_summary_rows(s, 1, &n);
    assert_int_equal(test[0].n_causal, 3);
    assert_float_equal(test[0].cause, 1.0, EPS);
    free(test);
    assert_null(score_summary_rows(s, 2, &n));
    assert_null(score_summary_rows(s, -1, &n));
    score_summary_free(s);
}

static void add_rejects_missing_strings(void **state)
{
    (void)state;
    ScoreSummary *s = score_summary_new();
    ScoreOutcome o = {.split = "test", .domain = "city", .target_attribute = "Country",
                      .queried_attribute = NULL, .base_template = "T", .is_causal = 1,
                      .correct = 1, .base_pred_correct = -1};
    assert_int_equal(score_summary_add(s, &o), -1);
    assert_non_null(strstr(hd_last_error(), "queried_attribute"));
    o.queried_attribute = "Country";
    o.correct = 2;
    assert_int_equal(score_summary_add(s, &o), -1);
    assert_int_equal(score_summary_n_splits(s), 0);
    score_summary_free(s);
}

/* ---- the packed summary record */

static const msgpack_object *get(const msgpack_object *m, const char *key)
{
    const msgpack_object *v = mp_map_get(m, key);
    if (!v) fail_msg("key '%s' missing", key);
    return v;
}

static void assert_str(const msgpack_object *m, const char *key, const char *want)
{
    const msgpack_object *v = get(m, key);
    assert_int_equal(v->type, MSGPACK_OBJECT_STR);
    assert_int_equal(v->via.str.size, strlen(want));
    assert_memory_equal(v->via.str.ptr, want, strlen(want));
}

static void assert_int_key(const msgpack_object *m, const char *key, int64_t want)
{
    int64_t v = -12345;
    assert_int_equal(mp_get_int64(get(m, key), &v), 0);
    assert_int_equal(v, want);
}

static void assert_double_key(const msgpack_object *m, const char *key, double want)
{
    const msgpack_object *v = get(m, key);
    assert_int_equal(v->type, MSGPACK_OBJECT_FLOAT64);
    assert_float_equal(v->via.f64, want, EPS);
}

static void assert_nil_key(const msgpack_object *m, const char *key)
{
    assert_int_equal(get(m, key)->type, MSGPACK_OBJECT_NIL);
}

/* build_domain_mean_set packed and read back with msgpack-c. */
static void packed_summary_reads_back(void **state)
{
    (void)state;
    ScoreSummary *s = score_summary_new();
    build_domain_mean_set(s);
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    ScoreBootstrap b = {0, 7};   /* no replicates: every interval nil */
    score_summary_pack(s, 0, &pk, "hyperdas", "soft", NULL, 3, &b);

    msgpack_unpacked u;
    msgpack_unpacked_init(&u);
    size_t off = 0;
    assert_int_equal(msgpack_unpack_next(&u, sb.data, sb.size, &off), MSGPACK_UNPACK_SUCCESS);
    assert_int_equal(off, sb.size);   /* exactly one object */
    const msgpack_object *rec = &u.data;
    assert_int_equal(rec->type, MSGPACK_OBJECT_MAP);
    assert_str(rec, "t", "summary");
    assert_str(rec, "split", "test");
    assert_str(rec, "method", "hyperdas");
    assert_str(rec, "mode", "soft");
    assert_nil_key(rec, "rule");
    assert_int_key(rec, "eval_tokens", 3);
    const msgpack_object *boot = get(rec, "bootstrap");
    assert_int_key(boot, "n", 0);
    assert_int_key(boot, "seed", 7);
    const msgpack_object *rows = get(rec, "rows");
    assert_int_equal(rows->type, MSGPACK_OBJECT_ARRAY);
    assert_int_equal(rows->via.array.size, 5);

    const msgpack_object *country = &rows->via.array.ptr[0];
    assert_int_equal(country->via.map.size, 16);
    assert_str(country, "domain", "city");
    assert_str(country, "attribute", "Country");
    assert_int_key(country, "n_causal", 4);
    assert_int_key(country, "n_isolate", 4);
    assert_double_key(country, "cause", 0.5);
    assert_double_key(country, "isolate", 0.75);
    assert_double_key(country, "disentangle", 0.625);
    assert_double_key(country, "cause_macro", 0.5);
    assert_double_key(country, "isolate_macro", 0.75);
    assert_double_key(country, "disentangle_macro", 0.625);
    assert_int_key(country, "n_changed", 0);
    assert_nil_key(country, "cause_changed");
    assert_nil_key(country, "cause_ci");
    assert_nil_key(country, "isolate_ci");
    assert_nil_key(country, "disentangle_ci");
    assert_nil_key(country, "cause_changed_ci");

    const msgpack_object *continent = &rows->via.array.ptr[1];
    assert_str(continent, "attribute", "Continent");
    assert_nil_key(continent, "cause");
    assert_nil_key(continent, "cause_macro");
    assert_nil_key(continent, "disentangle");
    assert_double_key(continent, "isolate", 0.5);

    const msgpack_object *mean = &rows->via.array.ptr[3];
    assert_str(mean, "domain", "city");
    assert_str(mean, "attribute", "(mean)");
    assert_int_key(mean, "n_causal", 5);
    assert_int_key(mean, "n_isolate", 6);
    assert_double_key(mean, "cause", 0.75);
    assert_double_key(mean, "isolate", 0.625);
    assert_double_key(mean, "disentangle", 0.6875);

    const msgpack_object *all = &rows->via.array.ptr[4];
    assert_str(all, "domain", "(all)");
    assert_str(all, "attribute", "(mean)");
    assert_double_key(all, "disentangle", 0.6875);
    assert_int_key(all, "n_isolate", 6);

    msgpack_unpacked_destroy(&u);
    msgpack_sbuffer_destroy(&sb);
    score_summary_free(s);
}

/* ---- score_outcome_from_record */

enum { OMIT_NONE = -1 };
static const char *const record_keys[] = {"split", "domain", "kind", "target_attribute",
                                          "queried_attribute", "base_template", "correct",
                                          "base_pred_correct"};
enum { N_RECORD_KEYS = 8 };

/* A `score` record (only the fields the summary reads, plus a few it
 * ignores), with key `omit` left out and key `wrong` given an int value. */
static void pack_score_record(msgpack_sbuffer *sb, int omit, int wrong, int base_pred)
{
    msgpack_packer pk;
    msgpack_packer_init(&pk, sb, msgpack_sbuffer_write);
    msgpack_pack_map(&pk, 3 + N_RECORD_KEYS - (omit >= 0));
    mp_pack_str(&pk, "t");
    mp_pack_str(&pk, "score");
    mp_pack_str(&pk, "id");
    mp_pack_str(&pk, "city/test/Country/isolate/3");
    const char *values[] = {"test", "city", "isolate", "Country", "Continent", "%s is in"};
    for (int k = 0; k < N_RECORD_KEYS; k++) {
        if (k == omit) continue;
        mp_pack_str(&pk, record_keys[k]);
        if (k == wrong) msgpack_pack_int(&pk, 1);
        else if (k < 6) mp_pack_str(&pk, values[k]);
        else if (k == 6) msgpack_pack_true(&pk);
        else if (base_pred < 0) msgpack_pack_nil(&pk);
        else if (base_pred) msgpack_pack_true(&pk);
        else msgpack_pack_false(&pk);
    }
    mp_pack_str(&pk, "label");
    mp_pack_str(&pk, "Europe");
}

/* Unpacks the record in sb and runs score_outcome_from_record on it. */
static int parse_packed(msgpack_sbuffer *sb, ScoreOutcome *o)
{
    msgpack_unpacked u;
    msgpack_unpacked_init(&u);
    size_t off = 0;
    assert_int_equal(msgpack_unpack_next(&u, sb->data, sb->size, &off), MSGPACK_UNPACK_SUCCESS);
    int rc = score_outcome_from_record(o, &u.data);
    msgpack_unpacked_destroy(&u);   /* o holds copies, so this is safe */
    return rc;
}

static void outcome_from_good_record(void **state)
{
    (void)state;
    for (int base_pred = -1; base_pred <= 1; base_pred++) {
        msgpack_sbuffer sb;
        msgpack_sbuffer_init(&sb);
        pack_score_record(&sb, OMIT_NONE, OMIT_NONE, base_pred);
        ScoreOutcome o;
        assert_int_equal(parse_packed(&sb, &o), 0);
        assert_string_equal(o.split, "test");
        assert_string_equal(o.domain, "city");
        assert_string_equal(o.target_attribute, "Country");
        assert_string_equal(o.queried_attribute, "Continent");
        assert_string_equal(o.base_template, "%s is in");
        assert_int_equal(o.is_causal, 0);
        assert_int_equal(o.correct, 1);
        assert_int_equal(o.base_pred_correct, base_pred);
        assert_string_equal(o.id, "city/test/Country/isolate/3");   /* pairs examples */
        score_outcome_release(&o);
        assert_null(o.split);
        assert_null(o.id);
        msgpack_sbuffer_destroy(&sb);
    }
}

static void outcome_from_bad_records(void **state)
{
    (void)state;
    for (int k = 0; k < N_RECORD_KEYS; k++) {
        for (int wrong = 0; wrong <= 1; wrong++) {
            msgpack_sbuffer sb;
            msgpack_sbuffer_init(&sb);
            pack_score_record(&sb, wrong ? OMIT_NONE : k, wrong ? k : OMIT_NONE, 0);
            ScoreOutcome o;
            assert_int_equal(parse_packed(&sb, &o), -1);
            char quoted[64];
            snprintf(quoted, sizeof quoted, "'%s'", record_keys[k]);
            if (!strstr(hd_last_error(), quoted))
                fail_msg("key %s %s: error '%s' does not name it", record_keys[k],
                         wrong ? "wrong type" : "missing", hd_last_error());
            msgpack_sbuffer_destroy(&sb);
        }
    }
    /* An unknown kind, and something that is no map at all. */
    msgpack_object not_map = {.type = MSGPACK_OBJECT_NIL};
    ScoreOutcome o;
    assert_int_equal(score_outcome_from_record(&o, &not_map), -1);

    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    msgpack_pack_map(&pk, 1);
    mp_pack_str(&pk, "kind");
    mp_pack_str(&pk, "causal_and_more");
    assert_int_equal(parse_packed(&sb, &o), -1);
    assert_non_null(strstr(hd_last_error(), "'kind'"));
    msgpack_sbuffer_destroy(&sb);
}

static void add_record_counts_it(void **state)
{
    (void)state;
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    pack_score_record(&sb, OMIT_NONE, OMIT_NONE, 1);
    msgpack_unpacked u;
    msgpack_unpacked_init(&u);
    size_t off = 0;
    assert_int_equal(msgpack_unpack_next(&u, sb.data, sb.size, &off), MSGPACK_UNPACK_SUCCESS);
    ScoreSummary *s = score_summary_new();
    assert_int_equal(score_summary_add_record(s, &u.data), 0);
    int n = 0;
    ScoreRow *rows = score_summary_rows(s, 0, &n);
    assert_string_equal(rows[0].attribute, "Country");
    assert_int_equal(rows[0].n_isolate, 1);
    assert_float_equal(rows[0].isolate, 1.0, EPS);
    free(rows);
    score_summary_free(s);
    msgpack_unpacked_destroy(&u);
    msgpack_sbuffer_destroy(&sb);
}

/* ---- the text table */

/* Splits a line into its whitespace-separated words. */
static int words(char *line, char **out, int max)
{
    int n = 0;
    for (char *w = strtok(line, " "); w && n < max; w = strtok(NULL, " ")) out[n++] = w;
    return n;
}

static void table_has_expected_rows(void **state)
{
    (void)state;
    ScoreSummary *s = score_summary_new();
    /* Two splits: test = build_domain_mean_set; val = Country with a
     * flip-rate: 3 causal with base answer wrong, 2 correct -> 66.7 (3). */
    build_domain_mean_set(s);
    add_many(s, "val", "city", "Country", "Country", "T", 1, 3, 2, 0);
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    assert_non_null(f);
    score_summary_print_table(s, f, "# scores", NULL);
    fclose(f);

    /* Rows as words; "cause_changed(n_changed)" cells hold a space, so
     * "66.7 (3)" is two words. */
    const char *want[][13] = {
        {"#", "scores"},
        {"split", "domain", "attribute", "n_causal", "n_isolate", "cause", "isolate",
         "disentangle", "cause_changed(n_changed)", "cause_macro", "isolate_macro",
         "disentangle_macro"},
        {"test", "city", "Country", "4", "4", "50.0", "75.0", "62.5", "-", "(0)", "50.0", "75.0", "62.5"},
        {"test", "city", "Continent", "0", "2", "-", "50.0", "-", "-", "(0)", "-", "50.0", "-"},
        {"test", "city", "Language", "1", "0", "100.0", "-", "-", "-", "(0)", "100.0", "-", "-"},
        {"test", "city", "(mean)", "5", "6", "75.0", "62.5", "68.8", "-", "(0)", "75.0", "62.5", "68.8"},
        {"test", "(all)", "(mean)", "5", "6", "75.0", "62.5", "68.8", "-", "(0)", "75.0", "62.5", "68.8"},
        {"val", "city", "Country", "3", "0", "66.7", "-", "-", "66.7", "(3)", "66.7", "-", "-"},
        {"val", "city", "(mean)", "3", "0", "66.7", "-", "-", "66.7", "(3)", "66.7", "-", "-"},
        {"val", "(all)", "(mean)", "3", "0", "66.7", "-", "-", "66.7", "(3)", "66.7", "-", "-"},
    };
    int n_want = (int)(sizeof want / sizeof want[0]);
    size_t table_width = 0;
    long header_attr_start = -1, header_n_causal_end = -1;
    int line_no = 0;
    for (char *line = buf, *next; line && *line; line = next, line_no++) {
        next = strchr(line, '\n');
        assert_non_null(next);
        *next++ = '\0';
        assert_true(line_no < n_want);
        /* Aligned: the last column is right-aligned, so every table line
         * (header included) has the same length. */
        if (line_no >= 1) {
            if (table_width == 0) table_width = strlen(line);
            assert_int_equal(strlen(line), table_width);
        }
        char *w[16];
        int nw = words(line, w, 16);
        int n_expect = 0;
        while (n_expect < 13 && want[line_no][n_expect]) n_expect++;
        assert_int_equal(nw, n_expect);
        for (int i = 0; i < nw; i++) assert_string_equal(w[i], want[line_no][i]);
        /* Names start in the same column (left-aligned), numbers end in
         * the same column (right-aligned): attribute and n_causal. */
        if (line_no >= 1) {
            long attr_start = w[2] - line, n_causal_end = (w[3] - line) + (long)strlen(w[3]);
            if (line_no == 1) header_attr_start = attr_start, header_n_causal_end = n_causal_end;
            assert_int_equal(attr_start, header_attr_start);
            assert_int_equal(n_causal_end, header_n_causal_end);
        }
    }
    assert_int_equal(line_no, n_want);
    free(buf);
    score_summary_free(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(micro_and_macro_differ),
        cmocka_unit_test(isolate_macro_over_queried_attributes),
        cmocka_unit_test(changed_examples),
        cmocka_unit_test(domain_mean_leaves_out_empty_attributes),
        cmocka_unit_test(overall_row_over_domains),
        cmocka_unit_test(splits_kept_apart),
        cmocka_unit_test(add_rejects_missing_strings),
        cmocka_unit_test(packed_summary_reads_back),
        cmocka_unit_test(outcome_from_good_record),
        cmocka_unit_test(outcome_from_bad_records),
        cmocka_unit_test(add_record_counts_it),
        cmocka_unit_test(table_has_expected_rows),
    };
    return cmocka_run_group_tests_name("score_summary", tests, NULL, NULL);
}
