#include "stream/msgpack_util.h"
#include "base/error.h"
#include "base/unicode.h"

#include <stdlib.h>
#include <string.h>

void mp_pack_strn(msgpack_packer *pk, const char *s, size_t n)
{
    msgpack_pack_str(pk, n);
    msgpack_pack_str_body(pk, s, n);
}

void mp_pack_str(msgpack_packer *pk, const char *s)
{
    mp_pack_strn(pk, s, strlen(s));
}

void mp_pack_str_or_nil(msgpack_packer *pk, const char *s)
{
    if (s) mp_pack_str(pk, s);
    else msgpack_pack_nil(pk);
}

void mp_pack_kv(msgpack_packer *pk, const char *k, const char *v)
{
    mp_pack_str(pk, k);
    mp_pack_str_or_nil(pk, v);
}

void mp_pack_text(msgpack_packer *pk, const char *s, size_t n)
{
    if (utf8_first_invalid((const uint8_t *)s, n) == n) {
        mp_pack_strn(pk, s, n);
        return;
    }
    msgpack_pack_bin(pk, n);
    msgpack_pack_bin_body(pk, s, n);
}

static int key_is(const msgpack_object *k, const char *key, size_t n)
{
    return k->type == MSGPACK_OBJECT_STR && k->via.str.size == n &&
           memcmp(k->via.str.ptr, key, n) == 0;
}

const msgpack_object *mp_map_get(const msgpack_object *m, const char *key)
{
    if (!m || m->type != MSGPACK_OBJECT_MAP) return NULL;
    size_t n = strlen(key);
    for (uint32_t i = 0; i < m->via.map.size; i++)
        if (key_is(&m->via.map.ptr[i].key, key, n)) return &m->via.map.ptr[i].val;
    return NULL;
}

int mp_is_str(const msgpack_object *o, const char *s)
{
    return o && key_is(o, s, strlen(s));
}

char *mp_strdup(const msgpack_object *o)
{
    if (!o || o->type != MSGPACK_OBJECT_STR) return NULL;
    return hd_strndup(o->via.str.ptr, o->via.str.size);
}

int mp_get_int64(const msgpack_object *o, int64_t *out)
{
    if (o && o->type == MSGPACK_OBJECT_POSITIVE_INTEGER) {
        if (o->via.u64 > (uint64_t)INT64_MAX) return hd_fail("integer %llu out of range",
                                                             (unsigned long long)o->via.u64);
        *out = (int64_t)o->via.u64;
        return 0;
    }
    if (o && o->type == MSGPACK_OBJECT_NEGATIVE_INTEGER) {
        *out = o->via.i64;
        return 0;
    }
    return hd_fail("expected an integer");
}

const char *mp_record_type(const msgpack_object *rec, size_t *len)
{
    const msgpack_object *t = mp_map_get(rec, "t");
    if (!t || t->type != MSGPACK_OBJECT_STR) return NULL;
    if (len) *len = t->via.str.size;
    return t->via.str.ptr;
}

const msgpack_object *mp_copy_init(MpCopy *c, const msgpack_object *o)
{
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    msgpack_pack_object(&pk, *o);
    size_t size = sb.size, off = 0;
    c->bytes = msgpack_sbuffer_release(&sb);
    msgpack_unpacked_init(&c->unpacked);
    if (msgpack_unpack_next(&c->unpacked, c->bytes, size, &off) != MSGPACK_UNPACK_SUCCESS)
        hd_die("internal error: cannot re-read a packed object");
    return &c->unpacked.data;
}

void mp_copy_destroy(MpCopy *c)
{
    msgpack_unpacked_destroy(&c->unpacked);
    free(c->bytes);
    c->bytes = NULL;
}
