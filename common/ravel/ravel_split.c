/* The hash split of a domain that ships no split files (ravel_data.h).
 *
 * A ranking by a hash of the names, not a per-item coin flip: a concept of
 * a few dozen entities and a handful of templates per attribute would
 * often get an empty val or test split from coin flips, and a ranking cut
 * at exact counts never does.  Templates are ranked per attribute, so
 * that every attribute has templates in every split (the context split,
 * the default, pools templates by split). */
#include "ravel/ravel_data.h"
#include "base/error.h"
#include "base/rng.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

void ravel_hash_split_counts(int n, const RavelHashSplit *hs, int *n_val, int *n_test)
{
    int t = (int)floor(n * hs->test + 0.5), v = (int)floor(n * hs->val + 0.5);
    if (hs->test > 0 && t == 0) t = 1;
    if (hs->val > 0 && v == 0) v = 1;
    /* train keeps one: val gives way first (test is what results report) */
    while (t + v > n - 1 && v > 0) v--;
    while (t + v > n - 1 && t > 0) t--;
    *n_val = v;
    *n_test = t;
}

typedef struct {
    uint64_t h;
    const char *name;
    int *split;
} Ranked;

static int cmp_ranked(const void *a, const void *b)
{
    const Ranked *x = a, *y = b;
    if (x->h != y->h) return x->h < y->h ? -1 : 1;
    return strcmp(x->name, y->name);
}

static void assign(Ranked *r, int n, const RavelHashSplit *hs)
{
    qsort(r, (size_t)n, sizeof *r, cmp_ranked);
    int n_val, n_test;
    ravel_hash_split_counts(n, hs, &n_val, &n_test);
    for (int i = 0; i < n; i++)
        *r[i].split = i < n_test ? RAVEL_TEST : i < n_test + n_val ? RAVEL_VAL : RAVEL_TRAIN;
}

static Ranked rank_of(const char *name, int *split)
{
    Ranked r = {fnv1a64(name, strlen(name)), name, split};
    return r;
}

void ravel_hash_split_entities(RavelDomain *d, const RavelHashSplit *hs)
{
    Ranked *r = hd_calloc(d->n_entities ? (size_t)d->n_entities : 1, sizeof *r);
    for (int e = 0; e < d->n_entities; e++) r[e] = rank_of(d->entities[e].name, &d->entities[e].split);
    assign(r, d->n_entities, hs);
    free(r);
}

void ravel_hash_split_templates(RavelDomain *d, const RavelHashSplit *hs)
{
    Ranked *r = hd_calloc(d->n_templates ? (size_t)d->n_templates : 1, sizeof *r);
    for (int a = 0; a < d->n_attributes; a++) {
        int n = 0;
        for (int t = 0; t < d->n_templates; t++)
            if (d->templates[t].attribute == a) r[n++] = rank_of(d->templates[t].text, &d->templates[t].split);
        assign(r, n, hs);
    }
    free(r);
}
