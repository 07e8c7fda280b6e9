#include "score/score_summary.h"
#include "base/error.h"
#include "stream/msgpack_util.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ---- storage: a tree split > domain > target attribute, each level a
 * small array searched linearly in first-seen order (a few dozen names at
 * most per level, so no hashing). */

/* A growable array of structs whose first member is `char *name`: the C
 * standard lets a pointer to a struct be read as a pointer to its first
 * member, which is what named_array_get relies on. */
typedef struct {
    void *items;
    int n, cap;
} NamedArray;

typedef struct {
    char *name;
    long n, correct;
} Tally;

typedef struct {
    char *name;              /* queried attribute B */
    NamedArray templates;    /* Tally per base template */
} QueriedGroup;

typedef struct {
    char *name;              /* target attribute A */
    long n_causal, correct_causal;
    long n_isolate, correct_isolate;
    long n_changed, correct_changed;
    NamedArray cause_templates;   /* Tally per base template (causal examples) */
    NamedArray queried;           /* QueriedGroup per B (isolation examples) */
} AttributeAcc;

typedef struct {
    char *name;
    NamedArray attributes;   /* AttributeAcc */
} DomainAcc;

typedef struct {
    char *name;
    NamedArray domains;      /* DomainAcc */
} SplitAcc;

struct ScoreSummary {
    NamedArray splits;       /* SplitAcc */
    ScoreItem *items;        /* every example, for resampling; ids owned */
    int n_items, cap_items;
};

static char *item_name(const NamedArray *a, size_t elem_size, int i)
{
    return *(char **)((char *)a->items + (size_t)i * elem_size);
}

/* The element called `name`, appended (zeroed, name copied) when absent;
 * *index (may be NULL) gets its position, which never changes.  The
 * pointer is valid until the next append to the same array. */
static void *named_array_get(NamedArray *a, size_t elem_size, const char *name, int *index)
{
    for (int i = 0; i < a->n; i++)
        if (strcmp(item_name(a, elem_size, i), name) == 0) {
            if (index) *index = i;
            return (char *)a->items + (size_t)i * elem_size;
        }
    if (index) *index = a->n;
    if (a->n == a->cap) {
        a->cap = a->cap ? 2 * a->cap : 4;
        a->items = hd_realloc(a->items, (size_t)a->cap * elem_size);
    }
    void *e = (char *)a->items + (size_t)a->n * elem_size;
    memset(e, 0, elem_size);
    *(char **)e = hd_strdup(name);
    a->n++;
    return e;
}

/* Frees every element's name (and, through free_inner, what it owns). */
static void named_array_free(NamedArray *a, size_t elem_size, void (*free_inner)(void *))
{
    for (int i = 0; i < a->n; i++) {
        void *e = (char *)a->items + (size_t)i * elem_size;
        if (free_inner) free_inner(e);
        free(*(char **)e);
    }
    free(a->items);
    memset(a, 0, sizeof *a);
}

static void queried_free(void *p)
{
    named_array_free(&((QueriedGroup *)p)->templates, sizeof(Tally), NULL);
}

static void attribute_free(void *p)
{
    AttributeAcc *a = p;
    named_array_free(&a->cause_templates, sizeof(Tally), NULL);
    named_array_free(&a->queried, sizeof(QueriedGroup), queried_free);
}

static void domain_free(void *p)
{
    named_array_free(&((DomainAcc *)p)->attributes, sizeof(AttributeAcc), attribute_free);
}

static void split_free(void *p)
{
    named_array_free(&((SplitAcc *)p)->domains, sizeof(DomainAcc), domain_free);
}

ScoreSummary *score_summary_new(void)
{
    return hd_calloc(1, sizeof(ScoreSummary));
}

void score_summary_free(ScoreSummary *s)
{
    if (!s) return;
    named_array_free(&s->splits, sizeof(SplitAcc), split_free);
    for (int i = 0; i < s->n_items; i++) free((char *)s->items[i].id);
    free(s->items);
    free(s);
}

int score_summary_add(ScoreSummary *s, const ScoreOutcome *o)
{
    const char *names[] = {o->split, o->domain, o->target_attribute, o->queried_attribute,
                           o->base_template};
    const char *keys[] = {"split", "domain", "target_attribute", "queried_attribute",
                          "base_template"};
    for (int i = 0; i < 5; i++)
        if (!names[i]) return hd_fail("score outcome: %s missing", keys[i]);
    if ((o->is_causal != 0 && o->is_causal != 1) || (o->correct != 0 && o->correct != 1) ||
        o->base_pred_correct < -1 || o->base_pred_correct > 1)
        return hd_fail("score outcome: is_causal/correct/base_pred_correct out of range");

    ScoreItem item = {.id = o->id ? hd_strdup(o->id) : NULL, .correct = o->correct};
    SplitAcc *sp = named_array_get(&s->splits, sizeof(SplitAcc), o->split, &item.split);
    DomainAcc *d = named_array_get(&sp->domains, sizeof(DomainAcc), o->domain, &item.domain);
    AttributeAcc *a = named_array_get(&d->attributes, sizeof(AttributeAcc), o->target_attribute,
                                      &item.attribute);
    item.stratum = !o->is_causal ? SCORE_ISOLATE
                   : o->base_pred_correct == 0 ? SCORE_CHANGED : SCORE_CAUSAL_OTHER;
    if (s->n_items == s->cap_items) {
        s->cap_items = s->cap_items ? 2 * s->cap_items : 64;
        s->items = hd_realloc(s->items, (size_t)s->cap_items * sizeof *s->items);
    }
    s->items[s->n_items++] = item;
    Tally *t;
    if (o->is_causal) {
        a->n_causal++;
        a->correct_causal += o->correct;
        /* The flip rate counts only examples whose unintervened answer is
         * known to differ from the label; unknown (-1) stays out. */
        if (o->base_pred_correct == 0) {
            a->n_changed++;
            a->correct_changed += o->correct;
        }
        t = named_array_get(&a->cause_templates, sizeof(Tally), o->base_template, NULL);
    } else {
        a->n_isolate++;
        a->correct_isolate += o->correct;
        QueriedGroup *q =
            named_array_get(&a->queried, sizeof(QueriedGroup), o->queried_attribute, NULL);
        t = named_array_get(&q->templates, sizeof(Tally), o->base_template, NULL);
    }
    t->n++;
    t->correct += o->correct;
    return 0;
}

/* ---- reading a `score` record */

static int get_str(const msgpack_object *rec, const char *key, char **out)
{
    const msgpack_object *v = mp_map_get(rec, key);
    if (!v) return hd_fail("score record: key '%s' missing", key);
    if (v->type != MSGPACK_OBJECT_STR) return hd_fail("score record: '%s' is not a string", key);
    *out = mp_strdup(v);
    return 0;
}

void score_outcome_release(ScoreOutcome *o)
{
    free((char *)o->split);
    free((char *)o->domain);
    free((char *)o->target_attribute);
    free((char *)o->queried_attribute);
    free((char *)o->base_template);
    free((char *)o->id);
    o->split = o->domain = o->target_attribute = o->queried_attribute = o->base_template = NULL;
    o->id = NULL;
}

int score_outcome_from_record(ScoreOutcome *o, const msgpack_object *rec)
{
    memset(o, 0, sizeof *o);
    if (!rec || rec->type != MSGPACK_OBJECT_MAP) return hd_fail("score record: not a map");

    const msgpack_object *kind = mp_map_get(rec, "kind");
    if (!kind) return hd_fail("score record: key 'kind' missing");
    if (mp_is_str(kind, "causal")) o->is_causal = 1;
    else if (mp_is_str(kind, "isolate")) o->is_causal = 0;
    else return hd_fail("score record: 'kind' is not \"causal\" or \"isolate\"");

    const msgpack_object *c = mp_map_get(rec, "correct");
    if (!c) return hd_fail("score record: key 'correct' missing");
    if (c->type != MSGPACK_OBJECT_BOOLEAN) return hd_fail("score record: 'correct' is not a bool");
    o->correct = c->via.boolean ? 1 : 0;

    const msgpack_object *b = mp_map_get(rec, "base_pred_correct");
    if (!b) return hd_fail("score record: key 'base_pred_correct' missing");
    if (b->type == MSGPACK_OBJECT_NIL) o->base_pred_correct = -1;
    else if (b->type == MSGPACK_OBJECT_BOOLEAN) o->base_pred_correct = b->via.boolean ? 1 : 0;
    else return hd_fail("score record: 'base_pred_correct' is not a bool or nil");

    /* The id only pairs examples across summaries: optional. */
    const msgpack_object *id = mp_map_get(rec, "id");
    if (id && id->type != MSGPACK_OBJECT_STR && id->type != MSGPACK_OBJECT_NIL)
        return hd_fail("score record: 'id' is not a string or nil");

    char *split = NULL, *domain = NULL, *target = NULL, *queried = NULL, *tmpl = NULL;
    if (get_str(rec, "split", &split) || get_str(rec, "domain", &domain) ||
        get_str(rec, "target_attribute", &target) || get_str(rec, "queried_attribute", &queried) ||
        get_str(rec, "base_template", &tmpl)) {
        free(split), free(domain), free(target), free(queried), free(tmpl);
        return -1;
    }
    o->split = split;
    o->domain = domain;
    o->target_attribute = target;
    o->queried_attribute = queried;
    o->base_template = tmpl;
    o->id = id && id->type == MSGPACK_OBJECT_STR ? mp_strdup(id) : NULL;
    return 0;
}

int score_summary_add_record(ScoreSummary *s, const msgpack_object *rec)
{
    ScoreOutcome o;
    if (score_outcome_from_record(&o, rec)) return -1;
    int rc = score_summary_add(s, &o);
    score_outcome_release(&o);
    return rc;
}

int score_summary_n_splits(const ScoreSummary *s)
{
    return s->splits.n;
}

const char *score_summary_split(const ScoreSummary *s, int i)
{
    if (i < 0 || i >= s->splits.n) return NULL;
    return ((SplitAcc *)s->splits.items)[i].name;
}

/* ---- rows */

static double ratio(long correct, long n)
{
    return n > 0 ? (double)correct / (double)n : NAN;
}

/* Mean of the per-template accuracies (hyperdas(7) 9.4; RAVEL rounds each to 2
 * decimals, the contract asks for no rounding). */
static double template_mean(const NamedArray *templates)
{
    const Tally *t = templates->items;
    if (templates->n == 0) return NAN;
    double sum = 0;
    for (int i = 0; i < templates->n; i++) sum += ratio(t[i].correct, t[i].n);
    return sum / templates->n;
}

/* Disentangle = mean of cause and isolate, nil unless both exist.  (hyperdas(7)
 * 14.34: an earlier rule reported a missing Isolate as 0 and Disentangle as Cause: a
 * row without isolation examples then looked measured when it was not,
 * issue 13.) */
static double disentangle(double cause, double isolate)
{
    if (isnan(cause) || isnan(isolate)) return NAN;
    return (cause + isolate) / 2;
}

void score_counts_add(ScoreCounts *c, ScoreStratum stratum, int correct)
{
    if (stratum == SCORE_ISOLATE) {
        c->n_isolate++;
        c->correct_isolate += correct;
        return;
    }
    c->n_causal++;
    c->correct_causal += correct;
    if (stratum == SCORE_CHANGED) {
        c->n_changed++;
        c->correct_changed += correct;
    }
}

ScoreRow score_row_micro(const ScoreCounts *c)
{
    ScoreRow r = {.n_causal = c->n_causal, .n_isolate = c->n_isolate, .n_changed = c->n_changed,
                  .cause_macro = NAN, .isolate_macro = NAN, .disentangle_macro = NAN};
    r.cause = ratio(c->correct_causal, c->n_causal);
    r.isolate = ratio(c->correct_isolate, c->n_isolate);
    r.disentangle = disentangle(r.cause, r.isolate);
    r.cause_changed = ratio(c->correct_changed, c->n_changed);
    return r;
}

static ScoreRow attribute_row(const char *domain, const AttributeAcc *a)
{
    ScoreCounts c = {a->n_causal, a->correct_causal, a->n_isolate, a->correct_isolate,
                     a->n_changed, a->correct_changed};
    ScoreRow r = score_row_micro(&c);
    r.domain = domain;
    r.attribute = a->name;
    r.cause_macro = template_mean(&a->cause_templates);
    /* Isolate macro: each queried attribute B weighs the same, whatever
     * its number of templates or examples. */
    if (a->queried.n > 0) {
        const QueriedGroup *q = a->queried.items;
        double sum = 0;
        for (int i = 0; i < a->queried.n; i++) sum += template_mean(&q[i].templates);
        r.isolate_macro = sum / a->queried.n;
    }
    r.disentangle_macro = disentangle(r.cause_macro, r.isolate_macro);
    return r;
}

/* Running mean that skips nil values. */
typedef struct {
    double sum;
    int n;
} Mean;

static void mean_add(Mean *m, double v)
{
    if (!isnan(v)) {
        m->sum += v;
        m->n++;
    }
}

static double mean_value(const Mean *m)
{
    return m->n ? m->sum / m->n : NAN;
}

/* A "(mean)" row over `rows`: each rate is the mean of the rows that have
 * it (a row without causal examples has no cause, one without isolation
 * examples no isolate, so neither counts as 0); Disentangle is that of
 * the two means, not a mean of Disentangles; counts are summed. */
static ScoreRow mean_row(const char *domain, const char *attribute, const ScoreRow *rows, int n)
{
    ScoreRow r = {.domain = domain, .attribute = attribute};
    Mean cause = {0}, isolate = {0}, cause_macro = {0}, isolate_macro = {0}, changed = {0};
    for (int i = 0; i < n; i++) {
        const ScoreRow *x = &rows[i];
        r.n_causal += x->n_causal;
        r.n_isolate += x->n_isolate;
        r.n_changed += x->n_changed;
        mean_add(&cause, x->cause);
        mean_add(&cause_macro, x->cause_macro);
        mean_add(&isolate, x->isolate);
        mean_add(&isolate_macro, x->isolate_macro);
        mean_add(&changed, x->cause_changed);
    }
    r.cause = mean_value(&cause);
    r.isolate = mean_value(&isolate);
    r.cause_macro = mean_value(&cause_macro);
    r.isolate_macro = mean_value(&isolate_macro);
    r.cause_changed = mean_value(&changed);
    r.disentangle = disentangle(r.cause, r.isolate);
    r.disentangle_macro = disentangle(r.cause_macro, r.isolate_macro);
    return r;
}

void score_rows_add_means(ScoreRow *rows, const int *n_attr, int n_domains)
{
    int n_attr_all = 0;
    for (int i = 0; i < n_domains; i++) n_attr_all += n_attr[i];
    /* Domain means over that domain's attribute rows (contiguous). */
    int first = 0, k = n_attr_all;
    for (int i = 0; i < n_domains; i++) {
        const char *name = n_attr[i] > 0 ? rows[first].domain : NULL;
        rows[k++] = mean_row(name, "(mean)", rows + first, n_attr[i]);
        first += n_attr[i];
    }
    /* The overall row averages the domain means, not the attributes, so
     * every domain weighs the same (HDF gather_main_table). */
    rows[k] = mean_row("(all)", "(mean)", rows + n_attr_all, n_domains);
}

static const SplitAcc *split_at(const ScoreSummary *s, int split)
{
    return split >= 0 && split < s->splits.n ? &((const SplitAcc *)s->splits.items)[split] : NULL;
}

static const DomainAcc *domain_at(const ScoreSummary *s, int split, int domain)
{
    const SplitAcc *sp = split_at(s, split);
    if (!sp || domain < 0 || domain >= sp->domains.n) return NULL;
    return &((const DomainAcc *)sp->domains.items)[domain];
}

ScoreRow *score_summary_rows(const ScoreSummary *s, int split_index, int *n_rows)
{
    const SplitAcc *sp = split_at(s, split_index);
    if (!sp) return NULL;
    const DomainAcc *d = sp->domains.items;
    int n_attr_all = 0;
    int *n_attr = hd_calloc((size_t)sp->domains.n + 1, sizeof *n_attr);
    for (int i = 0; i < sp->domains.n; i++) n_attr_all += n_attr[i] = d[i].attributes.n;
    int n = n_attr_all + sp->domains.n + 1;
    ScoreRow *rows = hd_calloc((size_t)n, sizeof *rows);
    int k = 0;
    for (int i = 0; i < sp->domains.n; i++) {
        const AttributeAcc *a = d[i].attributes.items;
        for (int j = 0; j < d[i].attributes.n; j++) rows[k++] = attribute_row(d[i].name, &a[j]);
    }
    score_rows_add_means(rows, n_attr, sp->domains.n);
    free(n_attr);
    *n_rows = n;
    return rows;
}

const ScoreItem *score_summary_items(const ScoreSummary *s, int *n)
{
    *n = s->n_items;
    return s->items;
}

int score_summary_n_domains(const ScoreSummary *s, int split)
{
    const SplitAcc *sp = split_at(s, split);
    return sp ? sp->domains.n : -1;
}

int score_summary_n_attributes(const ScoreSummary *s, int split, int domain)
{
    const DomainAcc *d = domain_at(s, split, domain);
    return d ? d->attributes.n : -1;
}

const char *score_summary_domain(const ScoreSummary *s, int split, int domain)
{
    const DomainAcc *d = domain_at(s, split, domain);
    return d ? d->name : NULL;
}

const char *score_summary_attribute(const ScoreSummary *s, int split, int domain, int attribute)
{
    const DomainAcc *d = domain_at(s, split, domain);
    if (!d || attribute < 0 || attribute >= d->attributes.n) return NULL;
    return ((const AttributeAcc *)d->attributes.items)[attribute].name;
}
