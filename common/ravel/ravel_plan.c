#include "ravel/ravel_plan.h"
#include "ravel/known_partners.h"
#include "base/error.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

long long ravel_causal_wanted(long long n, long long iso_p, long long iso_q)
{
    if (n < 0) return -1;
    return n * iso_q / (iso_p + iso_q);
}

long long ravel_isolate_wanted(long long n, long long iso_p, long long iso_q, int n_isolate,
                               long long causal_basis, long long available)
{
    if (n_isolate <= 0) return 0;
    if (n >= 0) return n * iso_p / (iso_p + iso_q) / n_isolate;
    long long w = causal_basis * iso_p / (iso_q * n_isolate);
    return w < available ? w : available;
}

/* Judges one draw; builds its texts into *pair when anyone needs them. */
static int judge(const RavelGroup *g, const RavelDraw *draw, RavelPair *pair, int need_texts,
                 RavelAcceptFn accept, void *ctx)
{
    ravel_pair_clear(pair);
    if (need_texts) ravel_pair_fill(pair, g->p->d, draw);
    return accept ? accept(ctx, draw, pair) : RAVEL_KEEP;
}

int ravel_group_generate(RavelGroup *g, int exhaustive, long long wanted, int refill,
                         RavelAcceptFn accept, RavelEmitFn emit, void *ctx, long long *index,
                         RavelGroupCount *count)
{
    count->wanted = wanted;
    count->drawn = count->kept = 0;
    if (!accept) refill = 0;
    int need_texts = accept || emit;
    RavelDraw draw;
    RavelPair pair = {0};
    int rc = 0;
    if (!exhaustive) {
        if (wanted > 0 && g->n_pairs == 0) return ravel_group_fail(g, "no valid pair exists in this split");
        long long max_draws = refill ? wanted * 1000 + 1000000 : wanted;
        while ((refill ? count->kept : count->drawn) < wanted) {
            if (count->drawn >= max_draws) {
                char msg[160];
                snprintf(msg, sizeof msg, "--refill: only %lld of %lld records passed the filter in %lld draws",
                         count->kept, wanted, count->drawn);
                rc = ravel_group_fail(g, msg);
                break;
            }
            if ((rc = ravel_group_draw(g, &draw)) < 0) break;
            count->drawn++;
            if (judge(g, &draw, &pair, need_texts, accept, ctx) != RAVEL_KEEP) continue;
            if (emit && (rc = emit(ctx, &draw, &pair, *index)) < 0) break;
            (*index)++;
            count->kept++;
        }
    } else {
        for (;;) {
            if (wanted >= 0 && (refill ? count->kept : count->drawn) >= wanted) break;
            int got = ravel_group_next(g, &draw);
            if (got < 0) rc = -1;
            if (got <= 0) break;
            count->drawn++;
            int verdict = judge(g, &draw, &pair, need_texts, accept, ctx);
            for (int t = 0; refill && verdict == RAVEL_DROP_SOURCE && t < RAVEL_REFILL_SOURCE_TRIES; t++) {
                if ((rc = ravel_group_redraw_source(g, &draw)) < 0) break;
                verdict = judge(g, &draw, &pair, need_texts, accept, ctx);
            }
            if (rc < 0) break;
            if (verdict != RAVEL_KEEP) continue;
            if (emit && (rc = emit(ctx, &draw, &pair, *index)) < 0) break;
            (*index)++;
            count->kept++;
        }
    }
    ravel_pair_clear(&pair);
    return rc < 0 ? -1 : 0;
}

/* ---- known-first drawing ---- */

typedef struct {
    int template, entity;
} Cell;

int ravel_prompt_known(const RavelDomain *d, int template, int entity, int attribute, RavelKnownFn known,
                       void *ctx)
{
    const char *value = d->entities[entity].values[attribute];
    if (!value) return 0;
    char *prompt = ravel_fill_template(d->templates[template].text, d->entities[entity].name, NULL);
    int yes = known(ctx, prompt, value);
    free(prompt);
    return yes;
}

/* The group's known cells, in canonical order (templates, then entities). */
static Cell *known_cells(const RavelGroup *g, RavelKnownFn known, void *ctx, long long *n_out)
{
    const RavelDomain *d = g->p->d;
    unsigned char *ok = hd_malloc((size_t)d->n_entities);
    ravel_group_verify_entities(g, ok);
    long long n = 0, cap = 0;
    Cell *cells = NULL;
    for (int t = 0; t < g->n_base_templates; t++) {
        for (int e = 0; e < d->n_entities; e++) {
            if (!ok[e] || !ravel_prompt_known(d, g->base_templates[t], e, g->queried, known, ctx)) continue;
            if (n == cap) cells = hd_realloc(cells, (size_t)(cap = cap ? 2 * cap : 256) * sizeof *cells);
            cells[n++] = (Cell){g->base_templates[t], e};
        }
    }
    free(ok);
    *n_out = n;
    return cells;
}

static int count_marked(const unsigned char *m, int n)
{
    int c = 0;
    for (int i = 0; i < n; i++) c += m[i];
    return c;
}

int ravel_group_generate_known(RavelGroup *g, long long wanted, RavelKnownFn known, int known_partners,
                               RavelAcceptFn accept, RavelEmitFn emit, void *ctx, long long *index,
                               RavelGroupCount *count, RavelKnownStats *stats)
{
    const RavelDomain *d = g->p->d;
    memset(stats, 0, sizeof *stats);
    count->wanted = wanted;
    count->drawn = count->kept = 0;
    long long n = 0;
    Cell *cells = known_cells(g, known, ctx, &n);
    stats->cells = n;
    KnownPartners *kp = known_partners && n > 0 ? known_partners_build(g, known, ctx) : NULL;
    unsigned char *used = hd_calloc((size_t)(n ? n : 1), 1), *dead = hd_calloc((size_t)(n ? n : 1), 1);
    unsigned char *be = hd_calloc((size_t)d->n_entities, 1), *se = hd_calloc((size_t)d->n_entities, 1);
    unsigned char *bt = hd_calloc((size_t)d->n_templates, 1);
    unsigned char *st = hd_calloc((size_t)(d->n_templates + d->n_wiki + 1), 1);
    RavelDraw draw;
    RavelPair pair = {0};
    int rc = 0;
    while (rc == 0 && n > 0 && (wanted < 0 ? stats->passes < 1 : count->kept < wanted)) {
        stats->passes++;
        long long kept_before = count->kept;
        for (long long k = 0; k < n && rc == 0; k++) {
            if (wanted >= 0 && count->kept >= wanted) break;
            /* Fisher-Yates, one step per cell: a new order every pass */
            long long j = k + (long long)rng_uniform(&g->rng, (uint64_t)(n - k));
            Cell c = cells[j];
            cells[j] = cells[k];
            cells[k] = c;
            unsigned char u = used[j], x = dead[j];
            used[j] = used[k], dead[j] = dead[k];
            used[k] = u, dead[k] = x;
            if (dead[k]) continue;
            int verdict = -1;
            for (int t = 0; t < RAVEL_REFILL_SOURCE_TRIES && verdict != RAVEL_KEEP; t++) {
                if (kp) {
                    if (!known_partners_draw(g, kp, c.template, c.entity, &draw)) break;
                } else if ((rc = ravel_group_draw_around(g, c.template, c.entity, &draw)) < 0) {
                    break;
                }
                count->drawn++;
                ravel_pair_clear(&pair);
                ravel_pair_fill(&pair, d, &draw);
                verdict = accept ? accept(ctx, &draw, &pair) : RAVEL_KEEP;
            }
            if (rc < 0) break;
            if (verdict != RAVEL_KEEP) {
                dead[k] = 1;
                continue;
            }
            if (emit && (rc = emit(ctx, &draw, &pair, *index)) < 0) break;
            (*index)++;
            count->kept++;
            used[k] = 1;
            be[draw.e1] = se[draw.e2] = bt[draw.base_template] = 1;
            st[draw.source_wiki ? d->n_templates + draw.source_template : draw.source_template] = 1;
        }
        if (count->kept == kept_before) break;   /* every cell is dead: the group ends short */
    }
    for (long long k = 0; k < n; k++) stats->cells_used += used[k];
    stats->base_entities = count_marked(be, d->n_entities);
    stats->source_entities = count_marked(se, d->n_entities);
    stats->base_templates = count_marked(bt, d->n_templates);
    stats->source_templates = count_marked(st, d->n_templates + d->n_wiki);
    ravel_pair_clear(&pair);
    known_partners_free(kp);
    free(cells);
    free(used);
    free(dead);
    free(be);
    free(se);
    free(bt);
    free(st);
    return rc < 0 ? -1 : 0;
}
