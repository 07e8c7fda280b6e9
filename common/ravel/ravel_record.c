#include "ravel/ravel_record.h"
#include "stream/msgpack_util.h"

#include <stdio.h>

static void pack_span(msgpack_packer *pk, const size_t span[2])
{
    msgpack_pack_array(pk, 2);
    msgpack_pack_uint64(pk, span[0]);
    msgpack_pack_uint64(pk, span[1]);
}

static void pack_kv(msgpack_packer *pk, const char *k, const char *v)
{
    mp_pack_str(pk, k);
    mp_pack_str_or_nil(pk, v);
}

void ravel_pair_pack(msgpack_packer *pk, const RavelDomain *d, const RavelDraw *r, const RavelPair *p,
                     const RavelPairContext *ctx, long long index)
{
    const char *kind = ravel_kind_name(r->kind), *target = d->attributes[r->target].name;
    char id[1024];
    snprintf(id, sizeof id, "%s/%s/%s/%s/%lld", d->name, ctx->split, target, kind, index);
    msgpack_pack_map(pk, RAVEL_PAIR_KEYS);
    pack_kv(pk, "t", "pair");
    pack_kv(pk, "id", id);
    pack_kv(pk, "domain", d->name);
    pack_kv(pk, "split", ctx->split);
    pack_kv(pk, "split_type", ctx->split_type);
    pack_kv(pk, "kind", kind);
    pack_kv(pk, "target_attribute", target);
    pack_kv(pk, "queried_attribute", d->attributes[r->queried].name);
    pack_kv(pk, "base_entity", p->base_entity);
    pack_kv(pk, "source_entity", p->source_entity);
    pack_kv(pk, "base_template", p->base_template);
    pack_kv(pk, "source_template", p->source_template);
    pack_kv(pk, "source_template_kind", r->source_wiki ? "wikipedia" : "attribute");
    pack_kv(pk, "source_template_attribute", p->source_template_attribute);
    pack_kv(pk, "base_input", p->base_input);
    pack_kv(pk, "source_input", p->source_input);
    mp_pack_str(pk, "base_prefix");
    mp_pack_strn(pk, p->base_input, p->base_span[1]);
    pack_kv(pk, "base_suffix", p->base_input + p->base_span[1]);
    mp_pack_str(pk, "source_prefix");
    mp_pack_strn(pk, p->source_input, p->source_span[1]);
    pack_kv(pk, "source_suffix", p->source_input + p->source_span[1]);
    mp_pack_str(pk, "base_entity_span");
    pack_span(pk, p->base_span);
    mp_pack_str(pk, "source_entity_span");
    pack_span(pk, p->source_span);
    pack_kv(pk, "label", p->label);
    pack_kv(pk, "base_label", p->base_label);
    pack_kv(pk, "inv_label", p->inv_label);
    pack_kv(pk, "source_label", p->source_label);
    pack_kv(pk, "answer_sep", p->answer_sep);
    pack_kv(pk, "verify_input", p->verify_input);
    pack_kv(pk, "instruction", p->instruction);
    mp_pack_str(pk, "filtered");
    if (ctx->filtered) msgpack_pack_true(pk);
    else msgpack_pack_false(pk);
    mp_pack_str(pk, "seed");
    msgpack_pack_uint64(pk, ctx->seed);
}

