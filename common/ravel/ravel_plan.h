/* How many records each sampling group gets, and the loop that draws them
 * through an optional model filter (hyperdas(7) 10.5, 10.6, 10.8).
 *
 * Counts.  For one target attribute A with k isolation attributes and the
 * ratio isolation:causal = P:Q (default 1:1, hyperdas(7) 10.5):
 *   -n N  (sampled)   causal = N*Q/(P+Q); each isolation attribute gets
 *                     (N*P/(P+Q)) / k, rounded down (HyperDAS: N//2 and
 *                     N//(2k));
 *   all   (exhaustive) causal = every base prompt of A that exists (see
 *                     RavelGroup); each isolation attribute B gets
 *                     min(base prompts of B, C*P/(Q*k)) distinct base
 *                     prompts, where C is A's causal count.
 *
 * Filter and refill.  The filter judges a record after it is drawn and
 * consumes no random numbers.  Without --refill the counts above are
 * counts of *drawn* records and the filter only drops (the HyperDAS way;
 * the kept counts drift).  With --refill they are counts of *kept*
 * records: sampled groups keep drawing until enough pass (at most
 * 1000*wanted + 10^6 draws, else an error); exhaustive groups walk on
 * through their base prompts, and a record that fails only because of its
 * source side gets up to RAVEL_REFILL_SOURCE_TRIES fresh sources for the
 * same base prompt.  In exhaustive mode C is then A's kept causal count. */
#ifndef HD_RAVEL_PLAN_H
#define HD_RAVEL_PLAN_H

#include "ravel/ravel_sample.h"

#define RAVEL_REFILL_SOURCE_TRIES 256

/* Verdict of a filter on one record. */
enum { RAVEL_KEEP = 0, RAVEL_DROP_BASE = 1, RAVEL_DROP_SOURCE = 2 };

/* Returns RAVEL_KEEP or the side that failed. */
typedef int (*RavelAcceptFn)(void *ctx, const RavelDraw *draw, const RavelPair *pair);
/* Called for each kept record with its 0-based index; -1 stops with an error. */
typedef int (*RavelEmitFn)(void *ctx, const RavelDraw *draw, const RavelPair *pair, long long index);

typedef struct {
    long long wanted;    /* -1: all base prompts */
    long long drawn;     /* records drawn (candidates) */
    long long kept;      /* records that passed and were emitted */
} RavelGroupCount;

/* Causal and per-isolation-attribute counts for one target (see above);
 * n < 0 means exhaustive.  causal_basis is, in exhaustive mode, the
 * causal count C (unused when sampled). */
long long ravel_causal_wanted(long long n, long long iso_p, long long iso_q);
long long ravel_isolate_wanted(long long n, long long iso_p, long long iso_q, int n_isolate,
                               long long causal_basis, long long available);

/* Draws the group's records.  accept may be NULL (keep all); emit may be
 * NULL (count only).  Texts are built only when accept or emit needs them.
 * *index counts emitted records across the calls of one (target, kind). */
int ravel_group_generate(RavelGroup *g, int exhaustive, long long wanted, int refill,
                         RavelAcceptFn accept, RavelEmitFn emit, void *ctx, long long *index,
                         RavelGroupCount *count);

/* Known-first drawing (ravel-pairs --from-known).  Instead of drawing
 * records and throwing away those whose verification prompt the model does
 * not know (most of them on a small model), the group's cells are
 * enumerated first: every (base template, verified entity) of the split
 * whose verification prompt `known` accepts with its answer (the base
 * template filled with the source entity for causal records, with the base
 * entity for isolation ones; hyperdas(7) 10.6).  Records are then built
 * around the cells: the cells in a random order (one pass is a uniform
 * sample without replacement), each with a freshly drawn partner entity
 * and source template, and `accept` still judges the result (the strict
 * filter may reject a partner: up to RAVEL_REFILL_SOURCE_TRIES new ones,
 * then the cell is dropped).  wanted < 0: every cell once.  wanted larger
 * than the cells: further passes, each in a new order, with new partners;
 * a pass that keeps nothing ends the group short (the caller reports it;
 * no error).  Only g's own generator is used, so a group's records do not
 * depend on another group. */
typedef int (*RavelKnownFn)(void *ctx, const char *prompt, const char *answer);

/* `known` on the template filled with the entity, answered by its value of
 * the attribute; 0 when it has none. */
int ravel_prompt_known(const RavelDomain *d, int template, int entity, int attribute, RavelKnownFn known,
                       void *ctx);

typedef struct {
    long long cells;            /* known verification prompts of the group */
    long long cells_used;       /* of which at least one record was built on */
    long long passes;           /* passes over the cells */
    int base_entities, source_entities, base_templates, source_templates;   /* distinct, in kept records */
} RavelKnownStats;

/* known_partners: the partners are drawn among known prompts too, for the
 * strict filter (ravel-pairs --known-partners): a causal record's base
 * entity among the entities whose base prompt (the cell's template with
 * them) is known, an isolation record's source entity among those with a
 * known attribute source prompt, and the source template among the
 * attribute templates whose prompt with the source entity is known (no
 * Wikipedia sources: their prompt has no label to check).  A cell with no
 * such partner is dropped.  Without it, partners are drawn from the whole
 * pool and the strict filter rejects nearly all of them on a domain with
 * thousands of entities. */
int ravel_group_generate_known(RavelGroup *g, long long wanted, RavelKnownFn known, int known_partners,
                               RavelAcceptFn accept, RavelEmitFn emit, void *ctx, long long *index,
                               RavelGroupCount *count, RavelKnownStats *stats);

#endif
