#include "score/score_stats.h"
#include "base/error.h"
#include "base/rng.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ---- the examples of one split, grouped by stratum
 *
 * Stratum k is attribute row k / SCORE_N_STRATA (the rows' order of the
 * summary the strata come from) and kind k % SCORE_N_STRATA.  Each holds
 * its examples' outcomes, two bytes per example (A's and, when paired,
 * B's), so that a resampled index gives both outcomes of one example. */
typedef struct {
    int n_domains, n_attr_all;
    int *n_attr;            /* attribute rows per domain */
    int *first;             /* row of each domain's first attribute */
    int *len, *cap;         /* per stratum */
    unsigned char **x;      /* per stratum: 2 * len outcomes */
} Strata;

static int strata_count(const Strata *st)
{
    return st->n_attr_all * SCORE_N_STRATA;
}

static int strata_rows(const Strata *st)
{
    return st->n_attr_all + st->n_domains + 1;
}

/* The layout of split `split` of s (which must exist), no examples yet. */
static void strata_init(Strata *st, const ScoreSummary *s, int split)
{
    memset(st, 0, sizeof *st);
    st->n_domains = score_summary_n_domains(s, split);
    st->n_attr = hd_calloc((size_t)st->n_domains + 1, sizeof *st->n_attr);
    st->first = hd_calloc((size_t)st->n_domains + 1, sizeof *st->first);
    for (int d = 0; d < st->n_domains; d++) {
        st->first[d] = st->n_attr_all;
        st->n_attr_all += st->n_attr[d] = score_summary_n_attributes(s, split, d);
    }
    int n = strata_count(st) + 1;
    st->len = hd_calloc((size_t)n, sizeof *st->len);
    st->cap = hd_calloc((size_t)n, sizeof *st->cap);
    st->x = hd_calloc((size_t)n, sizeof *st->x);
}

static void strata_push(Strata *st, const ScoreItem *it, int a, int b)
{
    int k = (st->first[it->domain] + it->attribute) * SCORE_N_STRATA + (int)it->stratum;
    if (st->len[k] == st->cap[k]) {
        st->cap[k] = st->cap[k] ? 2 * st->cap[k] : 16;
        st->x[k] = hd_realloc(st->x[k], (size_t)st->cap[k] * 2);
    }
    st->x[k][2 * st->len[k]] = (unsigned char)a;
    st->x[k][2 * st->len[k] + 1] = (unsigned char)b;
    st->len[k]++;
}

static void strata_free(Strata *st)
{
    for (int k = 0; k < strata_count(st); k++) free(st->x[k]);
    free(st->x);
    free(st->len);
    free(st->cap);
    free(st->n_attr);
    free(st->first);
}

/* Counts per attribute row of every example (rng NULL: the point
 * estimate) or of one bootstrap replicate (rng: each stratum of n
 * examples drawn n times with replacement).  cb may be NULL. */
static void strata_counts(const Strata *st, Rng *rng, ScoreCounts *ca, ScoreCounts *cb)
{
    memset(ca, 0, (size_t)st->n_attr_all * sizeof *ca);
    if (cb) memset(cb, 0, (size_t)st->n_attr_all * sizeof *cb);
    for (int k = 0; k < strata_count(st); k++) {
        int row = k / SCORE_N_STRATA, n = st->len[k];
        ScoreStratum kind = (ScoreStratum)(k % SCORE_N_STRATA);
        for (int i = 0; i < n; i++) {
            int j = rng ? (int)rng_uniform(rng, (uint64_t)n) : i;
            score_counts_add(&ca[row], kind, st->x[k][2 * j]);
            if (cb) score_counts_add(&cb[row], kind, st->x[k][2 * j + 1]);
        }
    }
}

/* The rows (attribute rows, domain means, overall) from the counts. */
static void rows_from_counts(const Strata *st, const ScoreCounts *c, ScoreRow *rows)
{
    for (int r = 0; r < st->n_attr_all; r++) rows[r] = score_row_micro(&c[r]);
    score_rows_add_means(rows, st->n_attr, st->n_domains);
}

/* One stream per split, so that a split's intervals do not depend on what
 * other splits the input holds. */
static void seed_for(Rng *rng, const ScoreBootstrap *b, const char *split)
{
    rng_seed(rng, b->seed ^ fnv1a64(split, strlen(split)));
}

static int find_split(const ScoreSummary *s, const char *split)
{
    for (int i = 0; i < score_summary_n_splits(s); i++)
        if (strcmp(score_summary_split(s, i), split) == 0) return i;
    return -1;
}

/* ---- percentiles */

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

double score_percentile(const double *sorted, int n, double p)
{
    if (n <= 0) return NAN;
    double h = (n - 1) * p;
    int i = (int)floor(h);
    if (i >= n - 1) return sorted[n - 1];
    return sorted[i] + (h - i) * (sorted[i + 1] - sorted[i]);
}

static const ScoreCi NIL_CI = {NAN, NAN};

/* The 95% interval of n replicate values (sorted in place); nil when the
 * point estimate is: the strata keep every replicate's nil pattern equal
 * to the point estimate's, so there is nothing else to skip. */
static ScoreCi interval(double point, double *values, int n)
{
    if (isnan(point) || n <= 0) return NIL_CI;
    qsort(values, (size_t)n, sizeof *values, cmp_double);
    ScoreCi ci = {score_percentile(values, n, 0.025), score_percentile(values, n, 0.975)};
    return ci;
}

/* ---- one summary's intervals */

enum { N_METRICS = 4 };

static double metric(const ScoreRow *r, int m)
{
    switch (m) {
    case 0: return r->cause;
    case 1: return r->isolate;
    case 2: return r->disentangle;
    default: return r->cause_changed;
    }
}

static ScoreCi *metric_ci(ScoreRowCi *ci, int m)
{
    switch (m) {
    case 0: return &ci->cause;
    case 1: return &ci->isolate;
    case 2: return &ci->disentangle;
    default: return &ci->cause_changed;
    }
}

ScoreRowCi *score_stats_row_ci(const ScoreSummary *s, int split_index, const ScoreBootstrap *b,
                               int *n_rows)
{
    if (split_index < 0 || split_index >= score_summary_n_splits(s)) return NULL;
    Strata st;
    strata_init(&st, s, split_index);
    int n_items = 0;
    const ScoreItem *items = score_summary_items(s, &n_items);
    for (int i = 0; i < n_items; i++)
        if (items[i].split == split_index) strata_push(&st, &items[i], items[i].correct, 0);

    const int n = strata_rows(&st), B = b ? b->n : 0;
    ScoreRowCi *ci = hd_malloc((size_t)n * sizeof *ci);
    for (int r = 0; r < n; r++)
        for (int m = 0; m < N_METRICS; m++) *metric_ci(&ci[r], m) = NIL_CI;
    *n_rows = n;
    if (B <= 0) {
        strata_free(&st);
        return ci;
    }
    ScoreCounts *counts = hd_calloc((size_t)st.n_attr_all + 1, sizeof *counts);
    ScoreRow *point = hd_calloc((size_t)n, sizeof *point), *rows = hd_calloc((size_t)n, sizeof *rows);
    strata_counts(&st, NULL, counts, NULL);
    rows_from_counts(&st, counts, point);
    /* values[(r * N_METRICS + m) * B + rep] */
    double *values = hd_malloc((size_t)n * N_METRICS * (size_t)B * sizeof *values);
    Rng rng;
    seed_for(&rng, b, score_summary_split(s, split_index));
    for (int rep = 0; rep < B; rep++) {
        strata_counts(&st, &rng, counts, NULL);
        rows_from_counts(&st, counts, rows);
        for (int r = 0; r < n; r++)
            for (int m = 0; m < N_METRICS; m++)
                values[((size_t)r * N_METRICS + m) * B + rep] = metric(&rows[r], m);
    }
    for (int r = 0; r < n; r++)
        for (int m = 0; m < N_METRICS; m++)
            *metric_ci(&ci[r], m) = interval(metric(&point[r], m),
                                             values + ((size_t)r * N_METRICS + m) * B, B);
    free(values);
    free(rows);
    free(point);
    free(counts);
    strata_free(&st);
    return ci;
}

/* ---- McNemar */

double score_mcnemar_exact(long b, long c)
{
    if (b < 0 || c < 0) return NAN;
    const long n = b + c, k_max = b < c ? b : c;
    if (n == 0) return 1.0;
    /* log C(n, k) grows with k up to n / 2, so the last term (k_max) is the
     * largest: sum the terms relative to it, then scale back. */
    double log_max = 0;
    for (long k = 0; k < k_max; k++) log_max += log((double)(n - k)) - log((double)(k + 1));
    double sum = 0, log_c = 0;
    for (long k = 0; k <= k_max; k++) {
        sum += exp(log_c - log_max);
        log_c += log((double)(n - k)) - log((double)(k + 1));
    }
    double p = exp(log(2.0) + log_max + log(sum) - (double)n * log(2.0));
    return p < 1.0 ? p : 1.0;
}

/* ---- paired comparison */

typedef struct {
    const char *id;
    int index;              /* into the summary's items */
} Keyed;

static int cmp_keyed(const void *a, const void *b)
{
    const Keyed *x = a, *y = b;
    int c = strcmp(x->id, y->id);
    return c ? c : (x->index > y->index) - (x->index < y->index);
}

/* The items of one split that have an id, sorted by (id, position). */
static Keyed *keyed_items(const ScoreSummary *s, int split, int *n)
{
    int n_items = 0;
    const ScoreItem *items = score_summary_items(s, &n_items);
    Keyed *k = hd_malloc(((size_t)n_items + 1) * sizeof *k);
    *n = 0;
    for (int i = 0; i < n_items; i++)
        if (items[i].split == split && items[i].id) k[(*n)++] = (Keyed){items[i].id, i};
    qsort(k, (size_t)*n, sizeof *k, cmp_keyed);
    return k;
}

/* Two items stand for the same example only when they agree on where it
 * counts: a mismatch means the ids do not identify examples. */
static int same_place(const ScoreSummary *a, const ScoreItem *x, const ScoreSummary *b,
                      const ScoreItem *y)
{
    return x->stratum == y->stratum &&
           strcmp(score_summary_domain(a, x->split, x->domain),
                  score_summary_domain(b, y->split, y->domain)) == 0 &&
           strcmp(score_summary_attribute(a, x->split, x->domain, x->attribute),
                  score_summary_attribute(b, y->split, y->domain, y->attribute)) == 0;
}

/* Pushes every matched example into st (A's outcome, B's outcome) and
 * counts them and McNemar's discordant flips into out. */
static void match_examples(const ScoreSummary *a, int ia, const ScoreSummary *b, int ib,
                           Strata *st, ScorePaired *out)
{
    int na = 0, nb = 0, n_items_a = 0, n_items_b = 0;
    const ScoreItem *items_a = score_summary_items(a, &n_items_a);
    const ScoreItem *items_b = score_summary_items(b, &n_items_b);
    Keyed *ka = keyed_items(a, ia, &na), *kb = keyed_items(b, ib, &nb);
    for (int i = 0, j = 0; i < na && j < nb;) {
        int c = strcmp(ka[i].id, kb[j].id);
        if (c < 0) { i++; continue; }
        if (c > 0) { j++; continue; }
        const ScoreItem *x = &items_a[ka[i++].index], *y = &items_b[kb[j++].index];
        if (!same_place(a, x, b, y)) continue;
        strata_push(st, x, x->correct, y->correct);
        out->n_matched++;
        if (x->stratum == SCORE_ISOLATE) out->n_isolate++;
        else out->n_causal++;
        if (x->stratum == SCORE_CHANGED) {
            out->n_changed++;
            out->b += x->correct && !y->correct;
            out->c += !x->correct && y->correct;
        }
    }
    free(ka);
    free(kb);
}

/* A's and B's overall rows from their counts: the three differences. */
static void differences(const Strata *st, const ScoreCounts *ca, const ScoreCounts *cb,
                        ScoreRow *ra, ScoreRow *rb, double d[3])
{
    rows_from_counts(st, ca, ra);
    rows_from_counts(st, cb, rb);
    const int last = strata_rows(st) - 1;   /* ("(all)", "(mean)") */
    d[0] = ra[last].disentangle - rb[last].disentangle;   /* nil - x stays nil */
    d[1] = ra[last].cause - rb[last].cause;
    d[2] = ra[last].cause_changed - rb[last].cause_changed;
}

void score_stats_paired(const ScoreSummary *a, const ScoreSummary *b, const char *split,
                        const ScoreBootstrap *bs, ScorePaired *out)
{
    memset(out, 0, sizeof *out);
    out->d_disentangle = out->d_cause = out->d_flip = NAN;
    out->ci_disentangle = out->ci_cause = out->ci_flip = NIL_CI;
    out->p = 1.0;
    int ia = find_split(a, split), ib = find_split(b, split);
    if (ia < 0 || ib < 0) return;
    Strata st;
    strata_init(&st, a, ia);
    match_examples(a, ia, b, ib, &st, out);
    out->p = score_mcnemar_exact(out->b, out->c);

    const int n = strata_rows(&st), B = bs ? bs->n : 0;
    ScoreCounts *ca = hd_calloc((size_t)st.n_attr_all + 1, sizeof *ca);
    ScoreCounts *cb = hd_calloc((size_t)st.n_attr_all + 1, sizeof *cb);
    ScoreRow *ra = hd_calloc((size_t)n, sizeof *ra), *rb = hd_calloc((size_t)n, sizeof *rb);
    double d[3];
    strata_counts(&st, NULL, ca, cb);
    differences(&st, ca, cb, ra, rb, d);
    out->d_disentangle = d[0], out->d_cause = d[1], out->d_flip = d[2];
    if (B > 0 && out->n_matched > 0) {
        double *values = hd_malloc(3 * (size_t)B * sizeof *values);
        Rng rng;
        seed_for(&rng, bs, split);
        for (int rep = 0; rep < B; rep++) {
            strata_counts(&st, &rng, ca, cb);
            differences(&st, ca, cb, ra, rb, d);
            for (int m = 0; m < 3; m++) values[(size_t)m * B + rep] = d[m];
        }
        out->ci_disentangle = interval(out->d_disentangle, values, B);
        out->ci_cause = interval(out->d_cause, values + B, B);
        out->ci_flip = interval(out->d_flip, values + 2 * (size_t)B, B);
        free(values);
    }
    free(ra);
    free(rb);
    free(ca);
    free(cb);
    strata_free(&st);
}
