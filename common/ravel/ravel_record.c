#include "ravel/ravel_record.h"
#include "stream/map_writer.h"
#include "stream/msgpack_util.h"

#include <stdio.h>

static void pack_span(MapWriter *m, const char *key, const size_t span[2])
{
    msgpack_packer *pk = map_key(m, key);
    msgpack_pack_array(pk, 2);
    msgpack_pack_uint64(pk, span[0]);
    msgpack_pack_uint64(pk, span[1]);
}

void ravel_pair_pack(msgpack_packer *pk, const RavelDomain *d, const RavelDraw *r, const RavelPair *p,
                     const RavelPairContext *ctx, long long index)
{
    const char *kind = ravel_kind_name(r->kind), *target = d->attributes[r->target].name;
    char id[1024];
    snprintf(id, sizeof id, "%s/%s/%s/%s/%lld", d->name, ctx->split, target, kind, index);
    MapWriter m;
    map_begin(&m, pk);
    map_str(&m, "t", "pair");
    map_str(&m, "id", id);
    map_str(&m, "domain", d->name);
    map_str(&m, "split", ctx->split);
    map_str(&m, "split_type", ctx->split_type);
    map_str(&m, "kind", kind);
    map_str(&m, "target_attribute", target);
    map_str(&m, "queried_attribute", d->attributes[r->queried].name);
    map_str(&m, "base_entity", p->base_entity);
    map_str(&m, "source_entity", p->source_entity);
    map_str(&m, "base_template", p->base_template);
    map_str(&m, "source_template", p->source_template);
    map_str(&m, "source_template_kind", r->source_wiki ? "wikipedia" : "attribute");
    map_str(&m, "source_template_attribute", p->source_template_attribute);
    map_str(&m, "base_input", p->base_input);
    map_str(&m, "source_input", p->source_input);
    mp_pack_strn(map_key(&m, "base_prefix"), p->base_input, p->base_span[1]);
    map_str(&m, "base_suffix", p->base_input + p->base_span[1]);
    mp_pack_strn(map_key(&m, "source_prefix"), p->source_input, p->source_span[1]);
    map_str(&m, "source_suffix", p->source_input + p->source_span[1]);
    pack_span(&m, "base_entity_span", p->base_span);
    pack_span(&m, "source_entity_span", p->source_span);
    map_str(&m, "label", p->label);
    map_str(&m, "base_label", p->base_label);
    map_str(&m, "inv_label", p->inv_label);
    map_str(&m, "source_label", p->source_label);
    map_str(&m, "answer_sep", p->answer_sep);
    map_str(&m, "verify_input", p->verify_input);
    map_str(&m, "instruction", p->instruction);
    map_bool(&m, "filtered", ctx->filtered);
    map_uint64(&m, "seed", ctx->seed);
    map_end(&m);
}

