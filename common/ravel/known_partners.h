/* Partners drawn among known prompts (ravel-pairs --known-partners), for
 * the strict filter on domains with many entities.
 *
 * The strict filter asks three prompts of a record to be known: the
 * verification prompt (the cell the known-first sampler walks), the base
 * prompt and the source prompt.  Drawn from the whole pool, a partner
 * entity almost never has its prompt known when the model knows a few
 * dozen of thousands of entities (city: 3,552).  So the lists are built
 * once per group from the known table:
 *   per base template, the entities whose base prompt is known (the causal
 *     base entity: the base prompt of a causal record is the base template
 *     with it, queried attribute == target);
 *   per entity of the pool, the attribute templates (any source attribute)
 *     whose prompt with it is known (the source prompt);
 * and a partner is drawn uniformly among those that make a valid pair. */
#ifndef HD_RAVEL_KNOWN_PARTNERS_H
#define HD_RAVEL_KNOWN_PARTNERS_H

#include "ravel/ravel_plan.h"

typedef struct KnownPartners KnownPartners;

/* Asks `known` about every (base template, pool entity) of the group and
 * every (source template, pool entity). */
KnownPartners *known_partners_build(const RavelGroup *g, RavelKnownFn known, void *ctx);
void known_partners_free(KnownPartners *kp);

/* A record around the known cell (base_template, verified entity) with
 * partners from the lists, from g's generator: 1 drawn, 0 no valid
 * partner exists for this cell. */
int known_partners_draw(RavelGroup *g, const KnownPartners *kp, int base_template, int verify_entity,
                        RavelDraw *out);

#endif
