#include "ravel/ravel_query.h"
#include "base/error.h"
#include "stream/map_writer.h"
#include "base/rng.h"

#include <stdio.h>
#include <stdlib.h>

static int emit_cell(const RavelPools *p, int a, long long cell, long long index, RavelQueryFn fn, void *ctx,
                     const int *ents)
{
    const RavelDomain *d = p->d;
    int n_t = p->n_templates[a];
    RavelQuery q = {
        .d = d,
        .split = ravel_output_split_name(&p->spec),
        .attribute = a,
        .template = p->templates[a][cell % n_t],
        .entity = ents[cell / n_t],
        .index = index,
    };
    char *prompt = ravel_fill_template(d->templates[q.template].text, d->entities[q.entity].name, NULL);
    q.prompt = prompt;
    q.answer = d->entities[q.entity].values[a];
    q.answer_sep = ravel_answer_sep(prompt);
    int rc = fn(ctx, &q);
    free(prompt);
    return rc;
}

int ravel_queries_generate(const RavelPools *p, int a, long long wanted, uint64_t seed, RavelQueryFn fn,
                           void *ctx, long long *n_cells)
{
    const RavelDomain *d = p->d;
    int *ents = hd_malloc((size_t)(p->n_entities ? p->n_entities : 1) * sizeof *ents);
    int n_e = 0;
    for (int i = 0; i < p->n_entities; i++)
        if (d->entities[p->entities[i]].values[a]) ents[n_e++] = p->entities[i];
    /* cell = entity rank * templates + template rank: canonical order is
     * template-major, so walk it that way when emitting everything */
    long long n_t = p->n_templates[a], total = (long long)n_e * n_t;
    *n_cells = total;
    int rc = 0;
    if (wanted < 0 || wanted >= total) {
        long long index = 0;
        for (long long t = 0; t < n_t && rc == 0; t++)
            for (long long e = 0; e < n_e && rc == 0; e++) rc = emit_cell(p, a, e * n_t + t, index++, fn, ctx, ents);
    } else {
        Rng rng;
        rng_seed(&rng, ravel_stream_key(seed, d->name, ravel_output_split_name(&p->spec), d->attributes[a].name,
                                        "query", "-"));
        long long *perm = hd_malloc((size_t)total * sizeof *perm);
        for (long long i = 0; i < total; i++) perm[i] = i;
        for (long long k = 0; k < wanted && rc == 0; k++) {
            long long j = k + (long long)rng_uniform(&rng, (uint64_t)(total - k));
            long long c = perm[j];
            perm[j] = perm[k];
            perm[k] = c;
            rc = emit_cell(p, a, c, k, fn, ctx, ents);
        }
        free(perm);
    }
    free(ents);
    return rc < 0 ? -1 : 0;
}

void ravel_query_pack(msgpack_packer *pk, const RavelQuery *q)
{
    const RavelDomain *d = q->d;
    const char *attr = d->attributes[q->attribute].name;
    char id[1024];
    snprintf(id, sizeof id, "%s/%s/%s/%lld", d->name, q->split, attr, q->index);
    MapWriter m;
    map_begin(&m, pk);
    map_str(&m, "t", "query");
    map_str(&m, "id", id);
    map_str(&m, "domain", d->name);
    map_str(&m, "split", q->split);
    map_str(&m, "attribute", attr);
    map_str(&m, "template", d->templates[q->template].text);
    map_str(&m, "entity", d->entities[q->entity].name);
    map_str(&m, "prompt", q->prompt);
    map_str(&m, "answer_sep", q->answer_sep);
    map_str(&m, "answer", q->answer);
    map_end(&m);
}
