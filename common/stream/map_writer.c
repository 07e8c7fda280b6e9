#include "stream/map_writer.h"
#include "stream/msgpack_util.h"

void map_begin(MapWriter *m, msgpack_packer *out)
{
    m->out = out;
    m->n = 0;
    msgpack_sbuffer_init(&m->buf);
    msgpack_packer_init(&m->pk, &m->buf, msgpack_sbuffer_write);
}

msgpack_packer *map_key(MapWriter *m, const char *key)
{
    m->n++;
    mp_pack_str(&m->pk, key);
    return &m->pk;
}

msgpack_packer *map_pairs(MapWriter *m, uint32_t n)
{
    m->n += n;
    return &m->pk;
}

void map_str(MapWriter *m, const char *key, const char *v)
{
    mp_pack_str_or_nil(map_key(m, key), v);
}

void map_int64(MapWriter *m, const char *key, int64_t v)
{
    msgpack_pack_int64(map_key(m, key), v);
}

void map_uint64(MapWriter *m, const char *key, uint64_t v)
{
    msgpack_pack_uint64(map_key(m, key), v);
}

void map_double(MapWriter *m, const char *key, double v)
{
    msgpack_pack_double(map_key(m, key), v);
}

void map_bool(MapWriter *m, const char *key, int v)
{
    msgpack_packer *pk = map_key(m, key);
    if (v) msgpack_pack_true(pk);
    else msgpack_pack_false(pk);
}

static int skipped(const msgpack_object *k, const char *const *skip, int n_skip)
{
    if (mp_is_str(k, "t")) return 1;
    for (int i = 0; i < n_skip; i++)
        if (mp_is_str(k, skip[i])) return 1;
    return 0;
}

void map_record_rewrite(MapWriter *m, const msgpack_object *rec, const char *new_type,
                        const char *const *skip, int n_skip)
{
    map_str(m, "t", new_type);
    for (uint32_t i = 0; i < rec->via.map.size; i++) {
        const msgpack_object_kv *kv = &rec->via.map.ptr[i];
        if (skipped(&kv->key, skip, n_skip)) continue;
        msgpack_pack_object(map_pairs(m, 1), kv->key);
        msgpack_pack_object(&m->pk, kv->val);
    }
}

int map_end(MapWriter *m)
{
    int rc = msgpack_pack_map(m->out, m->n);
    if (rc == 0 && m->buf.size > 0) rc = m->out->callback(m->out->data, m->buf.data, m->buf.size);
    msgpack_sbuffer_destroy(&m->buf);
    return rc < 0 ? -1 : 0;
}
