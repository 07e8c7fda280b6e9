/* Verification queries: the prompts a model must know for pairs to pass
 * the HyperDAS filter, asked once each instead of once per pair
 * (ravel-pairs --queries | hd-filter -> `known` records).
 *
 * Every record of a group rests on one verification prompt: an attribute
 * template of the split filled with one entity, answered by that entity's
 * value of the template's attribute (hyperdas(7) 10.6).  The strict
 * filter's base and source prompts are of the same form.  So the prompts
 * worth asking for attribute a are the cells (template of a in the split,
 * entity of the split's pool with a value for a).  A random pair sample
 * repeats few of them (17,613 distinct verification prompts in 18,000 city
 * pairs), so asking the cells directly, then drawing pairs among the known
 * ones (ravel-pairs --from-known), costs one forward per cell instead of
 * one per candidate pair.
 *
 * The `query` record (one map):
 *   t "query", id "DOMAIN/SPLIT/ATTRIBUTE/N", domain, split, attribute,
 *   template, entity, prompt (template filled with entity), answer_sep,
 *   answer (the entity's value, no separator in front). */
#ifndef HD_RAVEL_QUERY_H
#define HD_RAVEL_QUERY_H

#include <msgpack.h>

#include "ravel/ravel_sample.h"

typedef struct {
    const RavelDomain *d;
    const char *split;     /* output split name */
    int attribute, template, entity;
    const char *prompt, *answer, *answer_sep;
    long long index;       /* 0-based within (domain, split, attribute) */
} RavelQuery;

/* Called per query; -1 stops with an error. */
typedef int (*RavelQueryFn)(void *ctx, const RavelQuery *q);

/* The cells of attribute a in the pools' split: every cell in canonical
 * order (templates, then entities) when wanted < 0 or wanted >= the
 * number of cells, else a uniform sample of `wanted` cells without
 * replacement (a prefix of one random order seeded from (seed, domain,
 * split, attribute, "query"), so a larger -n extends a smaller one).
 * *n_cells gets the number of cells that exist.  -1 on error. */
int ravel_queries_generate(const RavelPools *p, int a, long long wanted, uint64_t seed, RavelQueryFn fn,
                           void *ctx, long long *n_cells);

void ravel_query_pack(msgpack_packer *pk, const RavelQuery *q);

#endif
