/* Tensors inside records (hyperdas-records(5) TENSORS): a map
 * {"dtype", "shape", "data"} with row-major little-endian bytes, optionally
 * {"codec": "zlib", "nbytes": raw size} with zlib-compressed data. */
#ifndef HD_TENSOR_H
#define HD_TENSOR_H

#include <msgpack.h>
#include <stddef.h>
#include <stdint.h>

typedef enum { DTYPE_F32, DTYPE_BF16, DTYPE_F16, DTYPE_I32, DTYPE_I64, DTYPE_U8, DTYPE_COUNT } DType;

#define TENSOR_MAX_DIMS 8

const char *dtype_name(DType t);
size_t dtype_size(DType t);
/* Looks a dtype name up; -1 (hd_fail) if unknown. */
int dtype_parse(const char *name, size_t len, DType *out);

/* A decoded tensor.  data points into the record when it was stored raw,
 * or into `owned` when it had to be decompressed; either way it may be
 * unaligned, so element access goes through tensor_get_f64/tensor_to_f32. */
typedef struct {
    DType dtype;
    int ndim;
    int64_t shape[TENSOR_MAX_DIMS];
    size_t numel;
    size_t nbytes;
    const void *data;
    void *owned;
} Tensor;

/* Packs a tensor map; zlib_level 0 stores it raw, 1..9 compresses. */
int tensor_pack(msgpack_packer *pk, DType dtype, int ndim, const int64_t *shape,
                const void *data, int zlib_level);

/* True if o looks like a tensor map (has dtype, shape and data keys). */
int tensor_looks_like(const msgpack_object *o);
/* Validates dtype, shape and byte count without decompressing. */
int tensor_check(const msgpack_object *o);
/* Validates and decodes (decompressing zlib data); release with tensor_release. */
int tensor_decode(const msgpack_object *o, Tensor *t);
void tensor_release(Tensor *t);

double tensor_get_f64(const Tensor *t, size_t i);
/* Converts every element to float32 into out[numel]. */
void tensor_to_f32(const Tensor *t, float *out);
/* Converts elements [start, start + n) to float32 into out[n]: the same
 * values as tensor_get_f64 gives, cast to float (exact for f32, bf16 and
 * f16), with a plain loop per dtype instead of a call per element. */
void tensor_span_to_f32(const Tensor *t, size_t start, size_t n, float *out);

/* Finds the tensor under `key` of a record and decodes it; -1 with a
 * message naming the key when it is missing or malformed. */
int tensor_from_record(const msgpack_object *rec, const char *key, Tensor *t);

#endif
