#include "ravel_plan.h"
#include "error.h"

#include <stdio.h>

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
