#include "stream/tensor.h"
#include "base/error.h"
#include "float16.h"
#include "stream/msgpack_util.h"

#include <string.h>
#include <zlib.h>

static const char *const dtype_names[DTYPE_COUNT] = {"f32", "bf16", "f16", "i32", "i64", "u8"};
static const size_t dtype_sizes[DTYPE_COUNT] = {4, 2, 2, 4, 8, 1};

const char *dtype_name(DType t) { return dtype_names[t]; }
size_t dtype_size(DType t) { return dtype_sizes[t]; }

int dtype_parse(const char *name, size_t len, DType *out)
{
    for (int i = 0; i < DTYPE_COUNT; i++)
        if (strlen(dtype_names[i]) == len && memcmp(dtype_names[i], name, len) == 0) {
            *out = (DType)i;
            return 0;
        }
    return hd_fail("unknown tensor dtype '%.*s'", (int)(len > 32 ? 32 : len), name);
}

int tensor_pack(msgpack_packer *pk, DType dtype, int ndim, const int64_t *shape,
                const void *data, int zlib_level)
{
    size_t numel = 1;
    for (int i = 0; i < ndim; i++) numel *= (size_t)shape[i];
    size_t nbytes = numel * dtype_size(dtype);
    void *packed = NULL;
    size_t packed_len = nbytes;
    if (zlib_level > 0) {
        uLongf cap = compressBound(nbytes);
        packed = hd_malloc(cap);
        if (compress2(packed, &cap, data, nbytes, zlib_level) != Z_OK) {
            free(packed);
            return hd_fail("zlib compression failed");
        }
        packed_len = cap;
    }
    /* counted here rather than by a MapWriter: the data is the bulk of
     * every acts stream, and a MapWriter would copy it once more */
    msgpack_pack_map(pk, zlib_level > 0 ? 5 : 3);
    mp_pack_str(pk, "dtype");
    mp_pack_str(pk, dtype_name(dtype));
    mp_pack_str(pk, "shape");
    msgpack_pack_array(pk, ndim);
    for (int i = 0; i < ndim; i++) msgpack_pack_int64(pk, shape[i]);
    if (zlib_level > 0) {
        mp_pack_str(pk, "codec");
        mp_pack_str(pk, "zlib");
        mp_pack_str(pk, "nbytes");
        msgpack_pack_uint64(pk, nbytes);
    }
    mp_pack_str(pk, "data");
    msgpack_pack_bin(pk, packed_len);
    msgpack_pack_bin_body(pk, packed ? packed : data, packed_len);
    free(packed);
    return 0;
}

int tensor_looks_like(const msgpack_object *o)
{
    return o->type == MSGPACK_OBJECT_MAP && mp_map_get(o, "dtype") && mp_map_get(o, "shape") &&
           mp_map_get(o, "data");
}

/* Shared by check and decode: header fields and the expected raw size. */
static int parse_meta(const msgpack_object *o, Tensor *t, int *zlib, const msgpack_object **data)
{
    memset(t, 0, sizeof *t);
    if (o->type != MSGPACK_OBJECT_MAP) return hd_fail("tensor is not a map");
    const msgpack_object *dt = mp_map_get(o, "dtype");
    const msgpack_object *sh = mp_map_get(o, "shape");
    *data = mp_map_get(o, "data");
    if (!dt || dt->type != MSGPACK_OBJECT_STR) return hd_fail("tensor has no string 'dtype'");
    if (dtype_parse(dt->via.str.ptr, dt->via.str.size, &t->dtype) < 0) return -1;
    if (!sh || sh->type != MSGPACK_OBJECT_ARRAY) return hd_fail("tensor has no 'shape' array");
    if (sh->via.array.size > TENSOR_MAX_DIMS)
        return hd_fail("tensor has %u dimensions (at most %d)", sh->via.array.size, TENSOR_MAX_DIMS);
    if (!*data || (*data)->type != MSGPACK_OBJECT_BIN) return hd_fail("tensor has no binary 'data'");
    t->ndim = (int)sh->via.array.size;
    size_t numel = 1;
    for (int i = 0; i < t->ndim; i++) {
        const msgpack_object *d = &sh->via.array.ptr[i];
        if (d->type != MSGPACK_OBJECT_POSITIVE_INTEGER || d->via.u64 > ((uint64_t)1 << 40))
            return hd_fail("tensor shape[%d] is not a valid size", i);
        t->shape[i] = (int64_t)d->via.u64;
        if (t->shape[i] && numel > ((size_t)1 << 42) / (size_t)t->shape[i])
            return hd_fail("tensor shape is too large");
        numel *= (size_t)t->shape[i];
    }
    t->numel = numel;
    t->nbytes = numel * dtype_size(t->dtype);
    const msgpack_object *codec = mp_map_get(o, "codec");
    *zlib = 0;
    if (codec && codec->type != MSGPACK_OBJECT_NIL) {
        if (!mp_is_str(codec, "zlib")) return hd_fail("tensor codec is not 'zlib'");
        *zlib = 1;
        int64_t nb;
        if (mp_get_int64(mp_map_get(o, "nbytes"), &nb) < 0)
            return hd_fail("zlib tensor has no integer 'nbytes'");
        if ((size_t)nb != t->nbytes)
            return hd_fail("tensor nbytes %lld disagrees with shape and dtype (%zu bytes)",
                           (long long)nb, t->nbytes);
    } else if ((*data)->via.bin.size != t->nbytes) {
        return hd_fail("tensor data has %u bytes, shape and dtype need %zu",
                       (*data)->via.bin.size, t->nbytes);
    }
    return 0;
}

int tensor_check(const msgpack_object *o)
{
    Tensor t;
    int zlib;
    const msgpack_object *data;
    return parse_meta(o, &t, &zlib, &data);
}

int tensor_decode(const msgpack_object *o, Tensor *t)
{
    int zlib;
    const msgpack_object *data;
    if (parse_meta(o, t, &zlib, &data) < 0) return -1;
    if (!zlib) {
        t->data = data->via.bin.ptr;
        return 0;
    }
    t->owned = hd_malloc(t->nbytes);
    uLongf got = t->nbytes;
    int rc = uncompress(t->owned, &got, (const Bytef *)data->via.bin.ptr, data->via.bin.size);
    if (rc != Z_OK || got != t->nbytes) {
        tensor_release(t);
        return hd_fail("zlib tensor data is corrupt (%s)", rc == Z_OK ? "wrong size" : zError(rc));
    }
    t->data = t->owned;
    return 0;
}

void tensor_release(Tensor *t)
{
    free(t->owned);
    t->owned = NULL;
    t->data = NULL;
}

double tensor_get_f64(const Tensor *t, size_t i)
{
    const unsigned char *p = (const unsigned char *)t->data + i * dtype_size(t->dtype);
    switch (t->dtype) {
    case DTYPE_F32: { float v; memcpy(&v, p, 4); return v; }
    case DTYPE_BF16: { uint16_t v; memcpy(&v, p, 2); return bf16_to_f32(v); }
    case DTYPE_F16: { uint16_t v; memcpy(&v, p, 2); return f16_to_f32(v); }
    case DTYPE_I32: { int32_t v; memcpy(&v, p, 4); return v; }
    case DTYPE_I64: { int64_t v; memcpy(&v, p, 8); return (double)v; }
    case DTYPE_U8: return *p;
    default: return 0;
    }
}

void tensor_span_to_f32(const Tensor *t, size_t start, size_t n, float *out)
{
    const unsigned char *p = (const unsigned char *)t->data + start * dtype_size(t->dtype);
    switch (t->dtype) {
    case DTYPE_F32:
        memcpy(out, p, n * 4);
        return;
    case DTYPE_BF16:
        for (size_t i = 0; i < n; i++) {
            uint16_t v;
            memcpy(&v, p + 2 * i, 2);
            out[i] = bf16_to_f32(v);
        }
        return;
    case DTYPE_F16:
        for (size_t i = 0; i < n; i++) {
            uint16_t v;
            memcpy(&v, p + 2 * i, 2);
            out[i] = f16_to_f32(v);
        }
        return;
    default:
        for (size_t i = 0; i < n; i++) out[i] = (float)tensor_get_f64(t, start + i);
    }
}

void tensor_to_f32(const Tensor *t, float *out)
{
    tensor_span_to_f32(t, 0, t->numel, out);
}

int tensor_from_record(const msgpack_object *rec, const char *key, Tensor *t)
{
    const msgpack_object *o = mp_map_get(rec, key);
    if (!o) return hd_fail("record has no tensor '%s'", key);
    if (tensor_decode(o, t) < 0) return hd_fail_prefix("%s: ", key);
    return 0;
}
