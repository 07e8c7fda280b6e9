#include "ravel/ravel_record.h"
#include "stream/msgpack_util.h"

#include <stdio.h>

static void pack_span(msgpack_packer *pk, const size_t span[2])
{
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
    msgpack_pack_map(pk, RAVEL_PAIR_KEYS);
    mp_pack_kv(pk, "t", "pair");
    mp_pack_kv(pk, "id", id);
    mp_pack_kv(pk, "domain", d->name);
    mp_pack_kv(pk, "split", ctx->split);
    mp_pack_kv(pk, "split_type", ctx->split_type);
    mp_pack_kv(pk, "kind", kind);
    mp_pack_kv(pk, "target_attribute", target);
    mp_pack_kv(pk, "queried_attribute", d->attributes[r->queried].name);
    mp_pack_kv(pk, "base_entity", p->base_entity);
    mp_pack_kv(pk, "source_entity", p->source_entity);
    mp_pack_kv(pk, "base_template", p->base_template);
    mp_pack_kv(pk, "source_template", p->source_template);
    mp_pack_kv(pk, "source_template_kind", r->source_wiki ? "wikipedia" : "attribute");
    mp_pack_kv(pk, "source_template_attribute", p->source_template_attribute);
    mp_pack_kv(pk, "base_input", p->base_input);
    mp_pack_kv(pk, "source_input", p->source_input);
    mp_pack_str(pk, "base_prefix");
    mp_pack_strn(pk, p->base_input, p->base_span[1]);
    mp_pack_kv(pk, "base_suffix", p->base_input + p->base_span[1]);
    mp_pack_str(pk, "source_prefix");
    mp_pack_strn(pk, p->source_input, p->source_span[1]);
    mp_pack_kv(pk, "source_suffix", p->source_input + p->source_span[1]);
    mp_pack_str(pk, "base_entity_span");
    pack_span(pk, p->base_span);
    mp_pack_str(pk, "source_entity_span");
    pack_span(pk, p->source_span);
    mp_pack_kv(pk, "label", p->label);
    mp_pack_kv(pk, "base_label", p->base_label);
    mp_pack_kv(pk, "inv_label", p->inv_label);
    mp_pack_kv(pk, "source_label", p->source_label);
    mp_pack_kv(pk, "answer_sep", p->answer_sep);
    mp_pack_kv(pk, "verify_input", p->verify_input);
    mp_pack_kv(pk, "instruction", p->instruction);
    mp_pack_str(pk, "filtered");
    if (ctx->filtered) msgpack_pack_true(pk);
    else msgpack_pack_false(pk);
    mp_pack_str(pk, "seed");
    msgpack_pack_uint64(pk, ctx->seed);
}

