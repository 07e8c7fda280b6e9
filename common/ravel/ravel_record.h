/* The `pair` record of hyperdas-records(5) PAIR: one counterfactual
 * example as a msgpack map, keys in the order hyperdas-records(5) lists them. */
#ifndef HD_RAVEL_RECORD_H
#define HD_RAVEL_RECORD_H

#include <msgpack.h>
#include <stdint.h>

#include "ravel/ravel_sample.h"

typedef struct {
    const char *split;        /* output split name */
    const char *split_type;   /* context, entity or both */
    int filtered;             /* a model filter was applied */
    uint64_t seed;
} RavelPairContext;

/* Packs one record; index is its 0-based number within (domain, split,
 * target attribute, kind), which makes the id. */
void ravel_pair_pack(msgpack_packer *pk, const RavelDomain *d, const RavelDraw *draw, const RavelPair *pair,
                     const RavelPairContext *ctx, long long index);

#endif
