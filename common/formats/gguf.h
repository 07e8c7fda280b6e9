/* GGUF (llama.cpp's model file, versions 2 and 3), read in place.
 *
 * Layout (little-endian): "GGUF", u32 version, u64 n_tensors, u64 n_kv;
 * n_kv metadata pairs {string key, u32 type, value}; n_tensors infos
 * {string name, u32 n_dims, u64 ne[n_dims], u32 ggml type, u64 offset};
 * padding to general.alignment (default 32); the data section.  A string
 * is {u64 length, bytes} with no terminating NUL; an array is {u32 element
 * type, u64 count, elements}.  Tensor dimensions are innermost first:
 * ne[0] is the row length, so a Hugging Face [out, in] matrix is
 * ne = {in, out}.
 *
 * Everything is checked while parsing (counts against the bytes left,
 * strings and arrays inside the file, known tensor types, offsets aligned,
 * in range and not overlapping), so the accessors below never read out of
 * bounds.  Errors name the file and the key or tensor. */
#ifndef HD_GGUF_H
#define HD_GGUF_H

#include <stddef.h>
#include <stdint.h>

#include "formats/mapped_file.h"

typedef enum {
    GGUF_UINT8 = 0, GGUF_INT8 = 1, GGUF_UINT16 = 2, GGUF_INT16 = 3, GGUF_UINT32 = 4,
    GGUF_INT32 = 5, GGUF_FLOAT32 = 6, GGUF_BOOL = 7, GGUF_STRING = 8, GGUF_ARRAY = 9,
    GGUF_UINT64 = 10, GGUF_INT64 = 11, GGUF_FLOAT64 = 12, GGUF_VALUE_TYPE_COUNT
} GgufValueType;

/* The ggml tensor types we can dequantise (ggml's numbering). */
typedef enum {
    GGML_F32 = 0, GGML_F16 = 1, GGML_Q4_0 = 2, GGML_Q4_1 = 3, GGML_Q8_0 = 8, GGML_BF16 = 30
} GgmlType;

#define GGUF_MAX_DIMS 4

typedef struct {
    const char *ptr;   /* inside the mapping, NOT NUL-terminated */
    size_t len;
} GgufString;

typedef struct {
    char *key;                 /* NUL-terminated copy */
    GgufValueType type;
    /* scalars, whatever their width (bools as 0/1, floats in f) */
    union {
        uint64_t u;
        int64_t i;
        double f;
    } v;
    GgufString str;            /* GGUF_STRING */
    GgufValueType elem_type;   /* GGUF_ARRAY */
    uint64_t n;                /* GGUF_ARRAY: element count */
    const unsigned char *elems;   /* GGUF_ARRAY of numbers: packed elements */
    GgufString *strs;          /* GGUF_ARRAY of strings: n entries (allocated) */
} GgufKV;

typedef struct {
    char *name;
    int n_dims;
    uint64_t ne[GGUF_MAX_DIMS];   /* ne[0] innermost; unused dims are 1 */
    GgmlType type;
    uint64_t offset;              /* from the start of the data section */
    size_t numel, nbytes;
    const unsigned char *data;
} GgufTensor;

typedef struct {
    char *path;
    MappedFile map;
    uint32_t version;
    uint32_t alignment;
    GgufKV *kvs;
    int n_kvs;
    GgufTensor *tensors;
    int n_tensors;
} GgufFile;

int gguf_open(GgufFile *g, const char *path);
/* Same on a caller's buffer (fuzzing); the buffer must outlive g. */
int gguf_parse(GgufFile *g, const void *buf, size_t size, const char *name);
void gguf_close(GgufFile *g);

const char *gguf_value_type_name(GgufValueType t);
/* "Q4_1" etc.; also names the ggml types we do not support. */
const char *ggml_type_name(uint32_t type);
/* Elements per block and bytes per block; 0 for unsupported types. */
int ggml_block_size(GgmlType t);
size_t ggml_block_bytes(GgmlType t);

/* Lookups: NULL when absent (no message set). */
const GgufKV *gguf_find_kv(const GgufFile *g, const char *key);
const GgufTensor *gguf_find_tensor(const GgufFile *g, const char *name);

/* Typed getters: -1 with a message naming file and key when the key is
 * missing or has an incompatible type.  Integers of any width convert
 * (range-checked) to int64; both float types and integers to double. */
int gguf_get_int(const GgufFile *g, const char *key, int64_t *out);
int gguf_get_float(const GgufFile *g, const char *key, double *out);
int gguf_get_bool(const GgufFile *g, const char *key, int *out);
/* A NUL-terminated copy (free it). */
int gguf_get_string(const GgufFile *g, const char *key, char **out);
/* An array with elements of `elem_type` (GGUF_STRING or a number type). */
int gguf_get_array(const GgufFile *g, const char *key, GgufValueType elem_type, const GgufKV **out);
/* Element i of a numeric array as int64 / double. */
int64_t gguf_array_int(const GgufKV *kv, uint64_t i);
double gguf_array_float(const GgufKV *kv, uint64_t i);

/* Dequantises a whole tensor to float32, out[numel] in ggml order (row
 * ne[0] contiguous). */
void gguf_tensor_to_f32(const GgufTensor *t, float *out);
/* Rows [row0, row0+nrows) of a tensor seen as ne[0]-long rows. */
void gguf_tensor_rows_to_f32(const GgufTensor *t, size_t row0, size_t nrows, float *out);

#endif
