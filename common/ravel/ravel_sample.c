#include "ravel/ravel_sample.h"
#include "base/error.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const split_type_names[] = {"context", "entity", "both"};
static const char *const prompts_names[] = {"ravel", "wikipedia", "both"};

const char *ravel_split_type_name(RavelSplitType t) { return split_type_names[t]; }
const char *ravel_prompts_name(RavelPromptKinds p) { return prompts_names[p]; }
const char *ravel_kind_name(RavelKind k) { return k == RAVEL_CAUSAL ? "causal" : "isolate"; }

int ravel_split_type_parse(const char *s)
{
    for (int i = 0; i < 3; i++)
        if (strcmp(s, split_type_names[i]) == 0) return i;
    return -1;
}

int ravel_prompts_parse(const char *s)
{
    for (int i = 0; i < 3; i++)
        if (strcmp(s, prompts_names[i]) == 0) return i;
    return -1;
}

int ravel_in_split(const RavelSplitSpec *s, int item)
{
    if (item == s->split) return 1;
    return s->val_as_test && s->split == RAVEL_TEST && item == RAVEL_VAL;
}

const char *ravel_output_split_name(const RavelSplitSpec *s)
{
    return ravel_split_name(s->split);
}

/* ------------------------------------------------------------ pools */

int ravel_pools_init(RavelPools *p, const RavelDomain *d, const RavelSplitSpec *spec)
{
    memset(p, 0, sizeof *p);
    p->d = d;
    p->spec = *spec;
    int split_entities = spec->split_type != RAVEL_SPLIT_CONTEXT;
    int split_templates = spec->split_type != RAVEL_SPLIT_ENTITY;

    p->entities = hd_calloc(d->n_entities, sizeof(int));
    for (int e = 0; e < d->n_entities; e++)
        if (!split_entities || ravel_in_split(spec, d->entities[e].split)) p->entities[p->n_entities++] = e;

    p->templates = hd_calloc(d->n_attributes, sizeof *p->templates);
    p->n_templates = hd_calloc(d->n_attributes, sizeof *p->n_templates);
    p->source_attributes = hd_calloc(d->n_attributes, sizeof(int));
    for (int a = 0; a < d->n_attributes; a++) {
        const RavelAttribute *at = &d->attributes[a];
        p->templates[a] = hd_calloc(at->n_templates ? at->n_templates : 1, sizeof(int));
        for (int i = 0; i < at->n_templates; i++) {
            int t = at->templates[i];
            if (!split_templates || ravel_in_split(spec, d->templates[t].split))
                p->templates[a][p->n_templates[a]++] = t;
        }
        if (p->n_templates[a] > 0) p->source_attributes[p->n_source_attributes++] = a;
    }

    p->wiki = hd_calloc(d->n_entities, sizeof *p->wiki);
    p->n_wiki = hd_calloc(d->n_entities, sizeof *p->n_wiki);
    for (int e = 0; e < d->n_entities; e++) {
        const RavelEntity *ent = &d->entities[e];
        p->wiki[e] = hd_calloc(ent->n_wiki ? ent->n_wiki : 1, sizeof(int));
        for (int i = 0; i < ent->n_wiki; i++)
            if (!split_templates || ravel_in_split(spec, d->wiki[ent->wiki[i]].split))
                p->wiki[e][p->n_wiki[e]++] = ent->wiki[i];
    }

    const char *what = spec->val_as_test && spec->split == RAVEL_TEST ? "val or test" : ravel_split_name(spec->split);
    if (p->n_entities == 0)
        return hd_fail("%s: no entity of split '%s'", d->paths[RAVEL_FILE_ENTITY_TO_SPLIT], what);
    if (p->n_source_attributes == 0)
        return hd_fail("%s: no template of split '%s'", d->paths[RAVEL_FILE_PROMPT_TO_SPLIT], what);
    return 0;
}

void ravel_pools_free(RavelPools *p)
{
    if (!p->d) return;
    for (int a = 0; a < p->d->n_attributes; a++) free(p->templates ? p->templates[a] : NULL);
    for (int e = 0; e < p->d->n_entities; e++) free(p->wiki ? p->wiki[e] : NULL);
    free(p->templates);
    free(p->n_templates);
    free(p->wiki);
    free(p->n_wiki);
    free(p->entities);
    free(p->source_attributes);
    memset(p, 0, sizeof *p);
}

/* ------------------------------------------------------------ groups */

uint64_t ravel_stream_key(uint64_t seed, const char *domain, const char *split, const char *target,
                          const char *kind, const char *queried)
{
    unsigned char le[8];
    for (int i = 0; i < 8; i++) le[i] = (unsigned char)(seed >> (8 * i));
    uint64_t h = fnv1a64_update(FNV1A64_INIT, le, 8);
    const char *parts[5] = {domain, split, target, kind, queried};
    for (int i = 0; i < 5; i++) {
        h = fnv1a64_update(h, "", 1);   /* the "\0" separator */
        h = fnv1a64_update(h, parts[i], strlen(parts[i]));
    }
    return h;
}

static int source_eligible(const RavelGroup *g, int e2)
{
    return g->p->spec.prompts != RAVEL_PROMPTS_WIKIPEDIA || g->p->n_wiki[e2] > 0;
}

int ravel_group_pair_valid(const RavelGroup *g, int e1, int e2)
{
    const int *v1 = g->p->d->entities[e1].value_ids, *v2 = g->p->d->entities[e2].value_ids;
    if (v1[g->queried] == v2[g->queried]) return 0;
    if (g->require_diff_target && v1[g->target] == v2[g->target]) return 0;
    return source_eligible(g, e2);
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static long long count_key(const uint64_t *keys, int n, uint64_t k)
{
    /* first index >= k and first index > k in a sorted array */
    int lo = 0, hi = n;
    while (lo < hi) {
        int mid = lo + (hi - lo) / 2;
        if (keys[mid] < k) lo = mid + 1;
        else hi = mid;
    }
    int first = lo;
    hi = n;
    while (lo < hi) {
        int mid = lo + (hi - lo) / 2;
        if (keys[mid] <= k) lo = mid + 1;
        else hi = mid;
    }
    return lo - first;
}

/* Counts, for every e1 of the pool, its valid partners by inclusion-
 * exclusion over value counts (O(n log n) instead of all n^2 pairs):
 * partners = eligible - same B value [- same A value + same A and B]. */
static void count_partners(RavelGroup *g)
{
    const RavelDomain *d = g->p->d;
    int nq = d->attributes[g->queried].n_values, na = d->attributes[g->target].n_values;
    int diff_target = g->require_diff_target && g->target != g->queried;
    long long *cnt_q = hd_calloc(nq, sizeof *cnt_q);
    long long *cnt_a = hd_calloc(na, sizeof *cnt_a);
    uint64_t *cnt_qa_keys = hd_calloc(g->n_ent, sizeof *cnt_qa_keys);
    long long eligible = 0;
    for (int i = 0; i < g->n_ent; i++) {
        int e = g->ent[i];
        if (!source_eligible(g, e)) continue;
        const int *v = d->entities[e].value_ids;
        cnt_q[v[g->queried]]++;
        cnt_a[v[g->target]]++;
        cnt_qa_keys[eligible++] = (uint64_t)v[g->queried] * (uint64_t)na + (uint64_t)v[g->target];
    }
    qsort(cnt_qa_keys, eligible, sizeof *cnt_qa_keys, cmp_u64);
    g->valid_e1 = hd_calloc(g->n_ent, sizeof(int));
    g->n_valid_e1 = 0;
    long long pairs = 0;
    for (int i = 0; i < g->n_ent; i++) {
        int e = g->ent[i];
        const int *v = d->entities[e].value_ids;
        long long partners = eligible - cnt_q[v[g->queried]];
        if (diff_target)
            partners -= cnt_a[v[g->target]] -
                        count_key(cnt_qa_keys, (int)eligible,
                                  (uint64_t)v[g->queried] * (uint64_t)na + (uint64_t)v[g->target]);
        if (partners > 0) {
            g->valid_e1[g->n_valid_e1++] = e;
            pairs += partners;
        }
    }
    g->n_base_prompts = (long long)g->n_valid_e1 * g->n_base_templates;
    g->n_pairs = pairs * g->n_base_templates;
    free(cnt_q);
    free(cnt_a);
    free(cnt_qa_keys);
}

int ravel_group_init(RavelGroup *g, const RavelPools *p, RavelKind kind, int target, int queried,
                     int require_diff_target, uint64_t seed)
{
    const RavelDomain *d = p->d;
    memset(g, 0, sizeof *g);
    g->p = p;
    g->kind = kind;
    g->target = target;
    g->queried = kind == RAVEL_CAUSAL ? target : queried;
    g->require_diff_target = kind == RAVEL_ISOLATE && require_diff_target;
    const char *split = ravel_output_split_name(&p->spec);
    const char *tname = d->attributes[target].name, *qname = d->attributes[g->queried].name;
    if (!d->attributes[target].has_values)
        return hd_fail("%s: attribute '%s' has no values", d->paths[RAVEL_FILE_ENTITY_ATTRIBUTES], tname);
    if (!d->attributes[g->queried].has_values)
        return hd_fail("%s: attribute '%s' has no values", d->paths[RAVEL_FILE_ENTITY_ATTRIBUTES], qname);
    g->base_templates = p->templates[g->queried];
    g->n_base_templates = p->n_templates[g->queried];
    if (g->n_base_templates == 0)
        return hd_fail("%s: attribute '%s' has no template of split '%s'",
                       d->paths[RAVEL_FILE_PROMPT_TO_SPLIT], qname, split);
    g->stream_key = ravel_stream_key(seed, d->name, split, tname, ravel_kind_name(kind),
                                     kind == RAVEL_CAUSAL ? "-" : qname);
    rng_seed(&g->rng, g->stream_key);
    g->ent = hd_calloc(p->n_entities, sizeof(int));
    for (int i = 0; i < p->n_entities; i++) {
        int e = p->entities[i];
        if (d->entities[e].values[target] && d->entities[e].values[g->queried]) g->ent[g->n_ent++] = e;
    }
    count_partners(g);
    if (g->n_base_prompts > (long long)UINT32_MAX)
        return hd_fail("%s/%s/%s: too many base prompts (%lld)", d->name, split, qname, g->n_base_prompts);
    return 0;
}

void ravel_group_free(RavelGroup *g)
{
    free(g->ent);
    free(g->valid_e1);
    free(g->perm);
    memset(g, 0, sizeof *g);
}

int ravel_group_fail(const RavelGroup *g, const char *what)
{
    const RavelDomain *d = g->p->d;
    return hd_fail("%s/%s/%s/%s/%s: %s", d->name, ravel_output_split_name(&g->p->spec),
                   d->attributes[g->target].name, ravel_kind_name(g->kind),
                   d->attributes[g->queried].name, what);
}

/* Source attribute (hyperdas(7) 10.3): -1 means a wiki template of e2. */
static int draw_source_attribute(RavelGroup *g, int e2)
{
    const RavelPools *p = g->p;
    if (p->spec.prompts == RAVEL_PROMPTS_WIKIPEDIA) return -1;
    uint64_t n = (uint64_t)p->n_source_attributes;
    if (p->spec.prompts == RAVEL_PROMPTS_BOTH && p->n_wiki[e2] > 0) {
        uint64_t u = rng_uniform(&g->rng, n + 1);
        return u == n ? -1 : p->source_attributes[u];
    }
    return p->source_attributes[rng_uniform(&g->rng, n)];
}

static void draw_source_template(RavelGroup *g, RavelDraw *out)
{
    const RavelPools *p = g->p;
    if (out->source_attribute < 0) {
        out->source_wiki = 1;
        out->source_template = p->wiki[out->e2][rng_uniform(&g->rng, (uint64_t)p->n_wiki[out->e2])];
    } else {
        int a = out->source_attribute;
        out->source_wiki = 0;
        out->source_template = p->templates[a][rng_uniform(&g->rng, (uint64_t)p->n_templates[a])];
    }
}

static void start_draw(const RavelGroup *g, RavelDraw *out)
{
    memset(out, 0, sizeof *out);
    out->kind = g->kind;
    out->target = g->target;
    out->queried = g->queried;
}

int ravel_group_draw(RavelGroup *g, RavelDraw *out)
{
    if (g->n_pairs == 0) return ravel_group_fail(g, "no valid pair exists in this split");
    start_draw(g, out);
    long tries = 0;
    do {
        if (++tries > RAVEL_MAX_TRIES) return ravel_group_fail(g, "no valid entity pair found in 1000000 tries");
        out->e1 = g->ent[rng_uniform(&g->rng, (uint64_t)g->n_ent)];
        out->e2 = g->ent[rng_uniform(&g->rng, (uint64_t)g->n_ent)];
    } while (!ravel_group_pair_valid(g, out->e1, out->e2));
    out->source_attribute = draw_source_attribute(g, out->e2);
    out->base_template = g->base_templates[rng_uniform(&g->rng, (uint64_t)g->n_base_templates)];
    draw_source_template(g, out);
    return 0;
}

/* Draws the free entity of a record whose other entity is fixed (e2 when
 * source_side, else e1) until the pair is valid, then the source attribute
 * and template. */
static int draw_other(RavelGroup *g, RavelDraw *io, int source_side)
{
    long tries = 0;
    do {
        if (++tries > RAVEL_MAX_TRIES)
            return ravel_group_fail(g, source_side ? "no valid source entity found in 1000000 tries"
                                                   : "no valid base entity found in 1000000 tries");
        int e = g->ent[rng_uniform(&g->rng, (uint64_t)g->n_ent)];
        if (source_side) io->e2 = e;
        else io->e1 = e;
    } while (!ravel_group_pair_valid(g, io->e1, io->e2));
    io->source_attribute = draw_source_attribute(g, io->e2);
    draw_source_template(g, io);
    return 0;
}

static int draw_partner(RavelGroup *g, RavelDraw *io)
{
    return draw_other(g, io, 1);
}

int ravel_group_next(RavelGroup *g, RavelDraw *out)
{
    if (g->next >= g->n_base_prompts) return 0;
    if (!g->perm) {
        g->perm = hd_malloc((size_t)g->n_base_prompts * sizeof *g->perm);
        for (long long i = 0; i < g->n_base_prompts; i++) g->perm[i] = (uint32_t)i;
    }
    /* One step of Fisher-Yates: the prefix perm[0..next] is a uniform
     * sample without replacement, whatever the final length. */
    long long k = g->next++;
    long long j = k + (long long)rng_uniform(&g->rng, (uint64_t)(g->n_base_prompts - k));
    uint32_t bp = g->perm[j];
    g->perm[j] = g->perm[k];
    g->perm[k] = bp;
    start_draw(g, out);
    out->e1 = g->valid_e1[bp / (uint32_t)g->n_base_templates];
    out->base_template = g->base_templates[bp % (uint32_t)g->n_base_templates];
    return draw_partner(g, out) < 0 ? -1 : 1;
}

int ravel_group_redraw_source(RavelGroup *g, RavelDraw *io)
{
    return draw_partner(g, io);
}

int ravel_group_draw_around(RavelGroup *g, int base_template, int verify_entity, RavelDraw *out)
{
    start_draw(g, out);
    out->base_template = base_template;
    if (g->kind == RAVEL_ISOLATE) {
        out->e1 = verify_entity;
        return draw_partner(g, out);
    }
    /* causal: the verified prompt is the base template with the source
     * entity, so e2 is fixed and the base entity is drawn */
    out->e2 = verify_entity;
    return draw_other(g, out, 0);
}

void ravel_group_verify_entities(const RavelGroup *g, unsigned char *ok)
{
    const RavelDomain *d = g->p->d;
    memset(ok, 0, (size_t)d->n_entities);
    if (g->kind == RAVEL_ISOLATE) {
        /* the verified entity is the base: it needs one valid partner */
        for (int i = 0; i < g->n_valid_e1; i++) ok[g->valid_e1[i]] = 1;
        return;
    }
    /* the verified entity is the source: eligible, and some base entity
     * of the pool has another value of A (causal: A == B) */
    int na = d->attributes[g->target].n_values;
    long long *cnt = hd_calloc((size_t)na, sizeof *cnt);
    for (int i = 0; i < g->n_ent; i++) cnt[d->entities[g->ent[i]].value_ids[g->target]]++;
    for (int i = 0; i < g->n_ent; i++) {
        int e = g->ent[i];
        ok[e] = source_eligible(g, e) && cnt[d->entities[e].value_ids[g->target]] < g->n_ent;
    }
    free(cnt);
}

/* ------------------------------------------------------------ texts */

char *ravel_fill_template(const char *templ, const char *entity, size_t *slot)
{
    const char *s = strstr(templ, "%s");
    size_t pre = s ? (size_t)(s - templ) : strlen(templ);
    const char *post = s ? s + 2 : templ + pre;
    size_t ne = strlen(entity), np = strlen(post);
    char *out = hd_malloc(pre + ne + np + 1);
    memcpy(out, templ, pre);
    memcpy(out + pre, entity, ne);
    memcpy(out + pre + ne, post, np + 1);
    if (slot) *slot = pre;
    return out;
}

const char *ravel_answer_sep(const char *text)
{
    size_t n = strlen(text);
    char last = n ? text[n - 1] : 0;
    return last == ' ' || last == '"' || last == '\'' || last == '(' ? "" : " ";
}

void ravel_pair_fill(RavelPair *out, const RavelDomain *d, const RavelDraw *r)
{
    memset(out, 0, sizeof *out);
    const RavelEntity *e1 = &d->entities[r->e1], *e2 = &d->entities[r->e2];
    out->base_entity = e1->name;
    out->source_entity = e2->name;
    out->base_template = d->templates[r->base_template].text;
    out->source_template = r->source_wiki ? d->wiki[r->source_template].text : d->templates[r->source_template].text;
    out->source_template_attribute = r->source_wiki ? NULL : d->attributes[r->source_attribute].name;
    size_t slot;
    out->base_input = ravel_fill_template(out->base_template, e1->name, &slot);
    out->base_span[0] = slot;
    out->base_span[1] = slot + strlen(e1->name);
    out->source_input = ravel_fill_template(out->source_template, e2->name, &slot);
    out->source_span[0] = slot;
    out->source_span[1] = slot + strlen(e2->name);
    out->label = r->kind == RAVEL_CAUSAL ? e2->values[r->target] : e1->values[r->queried];
    out->base_label = e1->values[r->queried];
    out->inv_label = e2->values[r->queried];
    out->source_label = r->source_wiki ? NULL : e2->values[r->source_attribute];
    out->answer_sep = ravel_answer_sep(out->base_input);
    out->verify_input = r->kind == RAVEL_CAUSAL ? ravel_fill_template(out->base_template, e2->name, NULL)
                                                : hd_strdup(out->base_input);
    const char *a = d->attributes[r->target].name;
    size_t n = strlen(e1->name) + strlen(e2->name) + strlen(a) + 7;
    out->instruction = hd_malloc(n);
    snprintf(out->instruction, n, "%s ; %s - %s", e1->name, e2->name, a);
}

void ravel_pair_clear(RavelPair *p)
{
    free(p->base_input);
    free(p->source_input);
    free(p->verify_input);
    free(p->instruction);
    memset(p, 0, sizeof *p);
}
