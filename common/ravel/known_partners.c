#include "ravel/known_partners.h"
#include "base/error.h"

#include <stdlib.h>
#include <string.h>

typedef struct {
    int attribute, template;
} SourcePrompt;

struct KnownPartners {
    int *rank_of_template;       /* d->templates index -> base template rank, -1 */
    int *base_start, *base_ent;  /* per base template rank: known base entities (ids) */
    int *rank_of_entity;         /* d->entities index -> pool rank in g->ent, -1 */
    int *src_start;              /* per pool rank: its known source prompts in src */
    SourcePrompt *src;
    int *sources, n_sources;     /* entity ids with at least one */
    int *scratch;                /* candidates of one draw */
};

/* Appends to a growing int array. */
static void push(int **a, int *n, int *cap, int v)
{
    if (*n == *cap) *a = hd_realloc(*a, (size_t)(*cap = *cap ? 2 * *cap : 256) * sizeof **a);
    (*a)[(*n)++] = v;
}

KnownPartners *known_partners_build(const RavelGroup *g, RavelKnownFn known, void *ctx)
{
    const RavelPools *p = g->p;
    const RavelDomain *d = p->d;
    KnownPartners *kp = hd_calloc(1, sizeof *kp);
    kp->rank_of_template = hd_malloc((size_t)(d->n_templates ? d->n_templates : 1) * sizeof *kp->rank_of_template);
    for (int t = 0; t < d->n_templates; t++) kp->rank_of_template[t] = -1;
    kp->rank_of_entity = hd_malloc((size_t)(d->n_entities ? d->n_entities : 1) * sizeof *kp->rank_of_entity);
    for (int e = 0; e < d->n_entities; e++) kp->rank_of_entity[e] = -1;
    for (int i = 0; i < g->n_ent; i++) kp->rank_of_entity[g->ent[i]] = i;
    kp->scratch = hd_malloc((size_t)(g->n_ent ? g->n_ent : 1) * sizeof *kp->scratch);

    int n = 0, cap = 0;
    kp->base_start = hd_malloc((size_t)(g->n_base_templates + 1) * sizeof *kp->base_start);
    for (int t = 0; t < g->n_base_templates; t++) {
        kp->rank_of_template[g->base_templates[t]] = t;
        kp->base_start[t] = n;
        if (g->kind != RAVEL_CAUSAL) continue;   /* an isolation base prompt is the cell itself */
        for (int i = 0; i < g->n_ent; i++)
            if (ravel_prompt_known(d, g->base_templates[t], g->ent[i], g->queried, known, ctx))
                push(&kp->base_ent, &n, &cap, g->ent[i]);
    }
    kp->base_start[g->n_base_templates] = n;

    int m = 0, mcap = 0, ns = 0, nscap = 0;
    kp->src_start = hd_malloc((size_t)(g->n_ent + 1) * sizeof *kp->src_start);
    for (int i = 0; i < g->n_ent; i++) {
        int e = g->ent[i];
        kp->src_start[i] = m;
        for (int k = 0; k < p->n_source_attributes; k++) {
            int a = p->source_attributes[k];
            for (int j = 0; j < p->n_templates[a]; j++)
                if (ravel_prompt_known(d, p->templates[a][j], e, a, known, ctx)) {
                    if (m == mcap) kp->src = hd_realloc(kp->src, (size_t)(mcap = mcap ? 2 * mcap : 256) * sizeof *kp->src);
                    kp->src[m++] = (SourcePrompt){a, p->templates[a][j]};
                }
        }
        if (m > kp->src_start[i]) push(&kp->sources, &ns, &nscap, e);
    }
    kp->src_start[g->n_ent] = m;
    kp->n_sources = ns;
    return kp;
}

void known_partners_free(KnownPartners *kp)
{
    if (!kp) return;
    free(kp->rank_of_template);
    free(kp->base_start);
    free(kp->base_ent);
    free(kp->rank_of_entity);
    free(kp->src_start);
    free(kp->src);
    free(kp->sources);
    free(kp->scratch);
    free(kp);
}

int known_partners_draw(RavelGroup *g, const KnownPartners *kp, int base_template, int verify_entity,
                        RavelDraw *out)
{
    memset(out, 0, sizeof *out);
    out->kind = g->kind;
    out->target = g->target;
    out->queried = g->queried;
    out->base_template = base_template;
    int m = 0;
    if (g->kind == RAVEL_CAUSAL) {
        /* the cell is the base template with the source entity */
        int t = kp->rank_of_template[base_template];
        if (t < 0) return 0;
        out->e2 = verify_entity;
        for (int k = kp->base_start[t]; k < kp->base_start[t + 1]; k++)
            if (ravel_group_pair_valid(g, kp->base_ent[k], verify_entity)) kp->scratch[m++] = kp->base_ent[k];
        if (m == 0) return 0;
        out->e1 = kp->scratch[rng_uniform(&g->rng, (uint64_t)m)];
    } else {
        /* the cell is the base prompt itself */
        out->e1 = verify_entity;
        for (int k = 0; k < kp->n_sources; k++)
            if (ravel_group_pair_valid(g, verify_entity, kp->sources[k])) kp->scratch[m++] = kp->sources[k];
        if (m == 0) return 0;
        out->e2 = kp->scratch[rng_uniform(&g->rng, (uint64_t)m)];
    }
    int r = kp->rank_of_entity[out->e2];
    int ns = r < 0 ? 0 : kp->src_start[r + 1] - kp->src_start[r];
    if (ns == 0) return 0;
    int k = kp->src_start[r] + (int)rng_uniform(&g->rng, (uint64_t)ns);
    out->source_attribute = kp->src[k].attribute;
    out->source_template = kp->src[k].template;
    out->source_wiki = 0;
    return 1;
}
