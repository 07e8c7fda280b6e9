/* GGUF reader: parsing with bounds checks, typed metadata access and
 * tensor dequantisation. */
#include "formats/gguf.h"

#include <stdlib.h>
#include <string.h>

#include "cpu/dequant.h"
#include "base/error.h"

#define GGUF_DEFAULT_ALIGNMENT 32

/* A read position that never passes `end`; every read checks first. */
typedef struct {
    const unsigned char *p, *end;
} Cursor;

static size_t left(const Cursor *c) { return (size_t)(c->end - c->p); }

static int take(Cursor *c, size_t n, const unsigned char **out)
{
    if (n > left(c)) return hd_fail("file ends early (truncated?)");
    *out = c->p;
    c->p += n;
    return 0;
}

static uint64_t le(const unsigned char *p, int nbytes)
{
    uint64_t v = 0;
    for (int i = nbytes - 1; i >= 0; i--) v = v << 8 | p[i];
    return v;
}

static int read_u32(Cursor *c, uint32_t *v)
{
    const unsigned char *p = NULL;
    if (take(c, 4, &p)) return -1;
    *v = (uint32_t)le(p, 4);
    return 0;
}

static int read_u64(Cursor *c, uint64_t *v)
{
    const unsigned char *p = NULL;
    if (take(c, 8, &p)) return -1;
    *v = le(p, 8);
    return 0;
}

static int read_string(Cursor *c, GgufString *s)
{
    uint64_t n;
    const unsigned char *p = NULL;
    if (read_u64(c, &n)) return -1;
    if (n > left(c)) return hd_fail("string of %llu bytes runs past the end of the file", (unsigned long long)n);
    take(c, (size_t)n, &p);
    s->ptr = (const char *)p;
    s->len = (size_t)n;
    return 0;
}

static const char *const value_type_names[GGUF_VALUE_TYPE_COUNT] = {
    "UINT8", "INT8", "UINT16", "INT16", "UINT32", "INT32", "FLOAT32",
    "BOOL",  "STRING", "ARRAY", "UINT64", "INT64", "FLOAT64"};

const char *gguf_value_type_name(GgufValueType t)
{
    return (unsigned)t < GGUF_VALUE_TYPE_COUNT ? value_type_names[t] : "unknown";
}

/* Bytes of a numeric (or bool) value; 0 for strings, arrays, unknown. */
static size_t scalar_size(GgufValueType t)
{
    switch (t) {
    case GGUF_UINT8: case GGUF_INT8: case GGUF_BOOL: return 1;
    case GGUF_UINT16: case GGUF_INT16: return 2;
    case GGUF_UINT32: case GGUF_INT32: case GGUF_FLOAT32: return 4;
    case GGUF_UINT64: case GGUF_INT64: case GGUF_FLOAT64: return 8;
    default: return 0;
    }
}

static int is_signed(GgufValueType t) { return t == GGUF_INT8 || t == GGUF_INT16 || t == GGUF_INT32 || t == GGUF_INT64; }
static int is_float(GgufValueType t) { return t == GGUF_FLOAT32 || t == GGUF_FLOAT64; }

/* Decodes one packed scalar into the union used by GgufKV. */
static void decode_scalar(GgufValueType t, const unsigned char *p, GgufKV *kv)
{
    size_t n = scalar_size(t);
    uint64_t raw = le(p, (int)n);
    if (t == GGUF_FLOAT32) {
        float f;
        uint32_t u = (uint32_t)raw;
        memcpy(&f, &u, 4);
        kv->v.f = f;
    } else if (t == GGUF_FLOAT64) {
        memcpy(&kv->v.f, &raw, 8);
    } else if (is_signed(t)) {
        int shift = 64 - 8 * (int)n;   /* sign-extend */
        kv->v.i = (int64_t)(raw << shift) >> shift;
    } else {
        kv->v.u = raw;
    }
}

static int read_value(Cursor *c, GgufKV *kv)
{
    const unsigned char *p = NULL;
    if (kv->type == GGUF_STRING) return read_string(c, &kv->str);
    if (kv->type == GGUF_ARRAY) {
        uint32_t et;
        if (read_u32(c, &et) || read_u64(c, &kv->n)) return -1;
        kv->elem_type = (GgufValueType)et;
        if (et == GGUF_ARRAY) return hd_fail("nested arrays are not supported");
        if (et == GGUF_STRING) {
            if (kv->n > left(c) / 8) return hd_fail("array of %llu strings runs past the end of the file", (unsigned long long)kv->n);
            kv->strs = hd_calloc(kv->n ? (size_t)kv->n : 1, sizeof(GgufString));
            for (uint64_t i = 0; i < kv->n; i++)
                if (read_string(c, &kv->strs[i])) return -1;
            return 0;
        }
        size_t es = scalar_size((GgufValueType)et);
        if (es == 0) return hd_fail("array of unknown value type %u", et);
        if (kv->n > left(c) / es) return hd_fail("array of %llu values runs past the end of the file", (unsigned long long)kv->n);
        take(c, (size_t)kv->n * es, &kv->elems);
        return 0;
    }
    size_t n = scalar_size(kv->type);
    if (n == 0) return hd_fail("unknown value type %u", (unsigned)kv->type);
    if (take(c, n, &p)) return -1;
    decode_scalar(kv->type, p, kv);
    return 0;
}

/* ---- ggml tensor types ---- */

static const char *const ggml_names[] = {
    "F32", "F16", "Q4_0", "Q4_1", "Q4_2", "Q4_3", "Q5_0", "Q5_1", "Q8_0", "Q8_1", "Q2_K", "Q3_K",
    "Q4_K", "Q5_K", "Q6_K", "Q8_K", "IQ2_XXS", "IQ2_XS", "IQ3_XXS", "IQ1_S", "IQ4_NL", "IQ3_S",
    "IQ2_S", "IQ4_XS", "I8", "I16", "I32", "I64", "F64", "IQ1_M", "BF16", "Q4_0_4_4", "Q4_0_4_8",
    "Q4_0_8_8", "TQ1_0", "TQ2_0"};

const char *ggml_type_name(uint32_t t)
{
    return t < sizeof ggml_names / sizeof ggml_names[0] ? ggml_names[t] : "unknown";
}

int ggml_block_size(GgmlType t)
{
    switch (t) {
    case GGML_F32: case GGML_F16: case GGML_BF16: return 1;
    case GGML_Q4_0: case GGML_Q4_1: case GGML_Q8_0: return 32;
    default: return 0;
    }
}

size_t ggml_block_bytes(GgmlType t)
{
    switch (t) {
    case GGML_F32: return 4;
    case GGML_F16: case GGML_BF16: return 2;
    case GGML_Q4_0: return Q4_0_BLOCK_BYTES;
    case GGML_Q4_1: return Q4_1_BLOCK_BYTES;
    case GGML_Q8_0: return Q8_0_BLOCK_BYTES;
    default: return 0;
    }
}

static int read_tensor_info(Cursor *c, GgufTensor *t)
{
    GgufString name;
    uint32_t nd, type;
    if (read_string(c, &name)) return -1;
    t->name = hd_strndup(name.ptr, name.len);
    if (read_u32(c, &nd)) return -1;
    if (nd > GGUF_MAX_DIMS) return hd_fail("tensor '%s': %u dimensions (at most %d)", t->name, nd, GGUF_MAX_DIMS);
    t->n_dims = (int)nd;
    for (int i = 0; i < GGUF_MAX_DIMS; i++) t->ne[i] = 1;
    size_t numel = 1;
    for (uint32_t i = 0; i < nd; i++) {
        if (read_u64(c, &t->ne[i])) return -1;
        if (t->ne[i] > (uint64_t)INT64_MAX || __builtin_mul_overflow(numel, (size_t)t->ne[i], &numel))
            return hd_fail("tensor '%s': dimensions overflow", t->name);
    }
    if (read_u32(c, &type) || read_u64(c, &t->offset)) return -1;
    t->type = (GgmlType)type;
    int bs = ggml_block_size(t->type);
    if (bs == 0) {
        if (strcmp(ggml_type_name(type), "unknown") == 0)
            return hd_fail("tensor '%s': unknown ggml type %u", t->name, type);
        return hd_fail("tensor '%s': ggml type %s (%u) is not supported (F32, F16, BF16, Q4_0, Q4_1, Q8_0 are)",
                       t->name, ggml_type_name(type), type);
    }
    if (t->ne[0] % (uint64_t)bs != 0)
        return hd_fail("tensor '%s': row length %llu is not a multiple of the %s block size %d", t->name,
                       (unsigned long long)t->ne[0], ggml_type_name(type), bs);
    t->numel = numel;
    if (__builtin_mul_overflow(numel / (size_t)bs, ggml_block_bytes(t->type), &t->nbytes))
        return hd_fail("tensor '%s': byte size overflows", t->name);
    return 0;
}

static int compare_kv(const void *a, const void *b) { return strcmp(((const GgufKV *)a)->key, ((const GgufKV *)b)->key); }
static int compare_tensor(const void *a, const void *b)
{
    return strcmp(((const GgufTensor *)a)->name, ((const GgufTensor *)b)->name);
}
static int compare_offset(const void *a, const void *b)
{
    const GgufTensor *x = *(GgufTensor *const *)a, *y = *(GgufTensor *const *)b;
    return x->offset < y->offset ? -1 : x->offset > y->offset;
}

/* Data offsets: aligned, inside the file, no two tensors sharing bytes. */
static int place_tensors(GgufFile *g, const unsigned char *base, size_t size, size_t data_start)
{
    size_t avail = data_start <= size ? size - data_start : 0;
    GgufTensor **order = hd_calloc(g->n_tensors ? (size_t)g->n_tensors : 1, sizeof *order);
    int rc = 0;
    for (int i = 0; i < g->n_tensors && rc == 0; i++) {
        GgufTensor *t = &g->tensors[i];
        order[i] = t;
        if (t->offset % g->alignment != 0)
            rc = hd_fail("tensor '%s': offset %llu is not a multiple of the alignment %u", t->name,
                         (unsigned long long)t->offset, g->alignment);
        else if (t->offset > avail || t->nbytes > avail - t->offset)
            rc = hd_fail("tensor '%s': data [%llu, +%zu) goes beyond the end of the file (truncated?)", t->name,
                         (unsigned long long)t->offset, t->nbytes);
        else
            t->data = base + data_start + t->offset;
    }
    if (rc == 0) {
        qsort(order, (size_t)g->n_tensors, sizeof *order, compare_offset);
        for (int i = 1; i < g->n_tensors; i++)
            if (order[i - 1]->nbytes && order[i]->nbytes && order[i]->offset < order[i - 1]->offset + order[i - 1]->nbytes) {
                rc = hd_fail("tensors '%s' and '%s' overlap", order[i - 1]->name, order[i]->name);
                break;
            }
    }
    free(order);
    return rc;
}

static int parse(GgufFile *g, const unsigned char *buf, size_t size)
{
    Cursor c = {buf, buf + size};
    const unsigned char *magic = NULL;
    uint64_t n_tensors, n_kv;
    if (size < 4 || memcmp(buf, "GGUF", 4) != 0) return hd_fail("not a GGUF file (bad magic)");
    take(&c, 4, &magic);
    if (read_u32(&c, &g->version)) return -1;
    if (g->version == 1) return hd_fail("GGUF version 1 is not supported (re-convert the model)");
    if (g->version != 2 && g->version != 3)
        return hd_fail("GGUF version %u is not supported (big-endian file?)", g->version);
    if (read_u64(&c, &n_tensors) || read_u64(&c, &n_kv)) return -1;
    /* every pair takes at least 13 bytes, every tensor info at least 24 */
    if (n_kv > left(&c) / 13 || n_tensors > left(&c) / 24)
        return hd_fail("header claims %llu keys and %llu tensors, more than the file can hold (truncated?)",
                       (unsigned long long)n_kv, (unsigned long long)n_tensors);
    g->kvs = hd_calloc(n_kv ? (size_t)n_kv : 1, sizeof(GgufKV));
    for (uint64_t i = 0; i < n_kv; i++) {
        GgufKV *kv = &g->kvs[g->n_kvs];
        GgufString key;
        uint32_t type;
        if (read_string(&c, &key)) return hd_fail_prefix("metadata pair %llu: ", (unsigned long long)i);
        kv->key = hd_strndup(key.ptr, key.len);
        g->n_kvs++;
        if (read_u32(&c, &type)) return hd_fail_prefix("metadata '%s': ", kv->key);
        kv->type = (GgufValueType)type;
        if (read_value(&c, kv)) return hd_fail_prefix("metadata '%s': ", kv->key);
    }
    qsort(g->kvs, (size_t)g->n_kvs, sizeof(GgufKV), compare_kv);
    for (int i = 1; i < g->n_kvs; i++)
        if (strcmp(g->kvs[i - 1].key, g->kvs[i].key) == 0) return hd_fail("metadata key '%s' appears twice", g->kvs[i].key);

    g->alignment = GGUF_DEFAULT_ALIGNMENT;
    const GgufKV *al = gguf_find_kv(g, "general.alignment");
    if (al) {
        if (al->type != GGUF_UINT32 || al->v.u == 0 || (al->v.u & (al->v.u - 1)) != 0)
            return hd_fail("general.alignment must be a UINT32 power of two");
        g->alignment = (uint32_t)al->v.u;
    }

    g->tensors = hd_calloc(n_tensors ? (size_t)n_tensors : 1, sizeof(GgufTensor));
    for (uint64_t i = 0; i < n_tensors; i++) {
        g->n_tensors++;
        if (read_tensor_info(&c, &g->tensors[i])) {
            if (!g->tensors[i].name) return hd_fail_prefix("tensor info %llu: ", (unsigned long long)i);
            return -1;
        }
    }
    qsort(g->tensors, (size_t)g->n_tensors, sizeof(GgufTensor), compare_tensor);
    for (int i = 1; i < g->n_tensors; i++)
        if (strcmp(g->tensors[i - 1].name, g->tensors[i].name) == 0)
            return hd_fail("tensor '%s' appears twice", g->tensors[i].name);
    size_t header_end = (size_t)(c.p - buf);
    size_t data_start = (header_end + g->alignment - 1) / g->alignment * g->alignment;
    if (g->n_tensors > 0 && data_start > size) return hd_fail("file ends before its data section (truncated?)");
    return place_tensors(g, buf, size, data_start);
}

int gguf_parse(GgufFile *g, const void *buf, size_t size, const char *name)
{
    memset(g, 0, sizeof *g);
    g->path = hd_strdup(name);
    if (parse(g, buf, size) != 0) return hd_fail_prefix("%s: ", name);
    return 0;
}

int gguf_open(GgufFile *g, const char *path)
{
    memset(g, 0, sizeof *g);
    MappedFile m;
    if (mapped_file_open(&m, path) != 0) {
        g->path = hd_strdup(path);
        return -1;
    }
    int rc = gguf_parse(g, m.data, m.size, path);
    g->map = m;
    return rc;
}

void gguf_close(GgufFile *g)
{
    for (int i = 0; i < g->n_kvs; i++) {
        free(g->kvs[i].key);
        free(g->kvs[i].strs);
    }
    free(g->kvs);
    for (int i = 0; i < g->n_tensors; i++) free(g->tensors[i].name);
    free(g->tensors);
    free(g->path);
    mapped_file_close(&g->map);
    memset(g, 0, sizeof *g);
}

const GgufKV *gguf_find_kv(const GgufFile *g, const char *key)
{
    if (!g->kvs) return NULL;
    GgufKV k = {.key = (char *)key};
    return bsearch(&k, g->kvs, (size_t)g->n_kvs, sizeof(GgufKV), compare_kv);
}

const GgufTensor *gguf_find_tensor(const GgufFile *g, const char *name)
{
    if (!g->tensors) return NULL;
    GgufTensor k = {.name = (char *)name};
    return bsearch(&k, g->tensors, (size_t)g->n_tensors, sizeof(GgufTensor), compare_tensor);
}

static const GgufKV *need(const GgufFile *g, const char *key)
{
    const GgufKV *kv = gguf_find_kv(g, key);
    if (!kv) hd_fail("%s: missing metadata '%s'", g->path, key);
    return kv;
}

static int wrong_type(const GgufFile *g, const GgufKV *kv, const char *want)
{
    return hd_fail("%s: metadata '%s' has type %s, expected %s", g->path, kv->key, gguf_value_type_name(kv->type), want);
}

int gguf_get_int(const GgufFile *g, const char *key, int64_t *out)
{
    const GgufKV *kv = need(g, key);
    if (!kv) return -1;
    if (is_signed(kv->type)) *out = kv->v.i;
    else if (scalar_size(kv->type) && !is_float(kv->type) && kv->type != GGUF_BOOL && kv->v.u <= (uint64_t)INT64_MAX)
        *out = (int64_t)kv->v.u;
    else return wrong_type(g, kv, "an integer");
    return 0;
}

int gguf_get_float(const GgufFile *g, const char *key, double *out)
{
    const GgufKV *kv = need(g, key);
    if (!kv) return -1;
    if (is_float(kv->type)) *out = kv->v.f;
    else if (is_signed(kv->type)) *out = (double)kv->v.i;
    else if (scalar_size(kv->type) && kv->type != GGUF_BOOL) *out = (double)kv->v.u;
    else return wrong_type(g, kv, "a number");
    return 0;
}

int gguf_get_bool(const GgufFile *g, const char *key, int *out)
{
    const GgufKV *kv = need(g, key);
    if (!kv) return -1;
    if (kv->type != GGUF_BOOL) return wrong_type(g, kv, "BOOL");
    *out = kv->v.u != 0;
    return 0;
}

int gguf_get_string(const GgufFile *g, const char *key, char **out)
{
    const GgufKV *kv = need(g, key);
    if (!kv) return -1;
    if (kv->type != GGUF_STRING) return wrong_type(g, kv, "STRING");
    *out = hd_strndup(kv->str.ptr, kv->str.len);
    return 0;
}

int gguf_get_array(const GgufFile *g, const char *key, GgufValueType elem_type, const GgufKV **out)
{
    const GgufKV *kv = need(g, key);
    if (!kv) return -1;
    if (kv->type != GGUF_ARRAY) return wrong_type(g, kv, "ARRAY");
    if (kv->elem_type != elem_type)
        return hd_fail("%s: metadata '%s' is an array of %s, expected %s", g->path, key,
                       gguf_value_type_name(kv->elem_type), gguf_value_type_name(elem_type));
    *out = kv;
    return 0;
}

int64_t gguf_array_int(const GgufKV *kv, uint64_t i)
{
    GgufKV tmp;
    decode_scalar(kv->elem_type, kv->elems + i * scalar_size(kv->elem_type), &tmp);
    if (is_float(kv->elem_type))   /* truncate; out-of-range values saturate */
        return tmp.v.f >= 9.2e18 ? INT64_MAX : tmp.v.f <= -9.2e18 ? INT64_MIN : tmp.v.f == tmp.v.f ? (int64_t)tmp.v.f : 0;
    return is_signed(kv->elem_type) ? tmp.v.i : (int64_t)tmp.v.u;
}

double gguf_array_float(const GgufKV *kv, uint64_t i)
{
    GgufKV tmp;
    decode_scalar(kv->elem_type, kv->elems + i * scalar_size(kv->elem_type), &tmp);
    if (is_float(kv->elem_type)) return tmp.v.f;
    return is_signed(kv->elem_type) ? (double)tmp.v.i : (double)tmp.v.u;
}

void gguf_tensor_rows_to_f32(const GgufTensor *t, size_t row0, size_t nrows, float *out)
{
    size_t row_len = (size_t)t->ne[0];
    size_t row_bytes = row_len / (size_t)ggml_block_size(t->type) * ggml_block_bytes(t->type);
    const unsigned char *src = t->data + row0 * row_bytes;
    size_t n = nrows * row_len;
    switch (t->type) {
    case GGML_F32: memcpy(out, src, n * 4); break;
    case GGML_F16: dequant_f16(src, out, n); break;
    case GGML_BF16: dequant_bf16(src, out, n); break;
    case GGML_Q4_0: dequant_q4_0(src, out, n); break;
    case GGML_Q4_1: dequant_q4_1(src, out, n); break;
    case GGML_Q8_0: dequant_q8_0(src, out, n); break;
    }
}

void gguf_tensor_to_f32(const GgufTensor *t, float *out)
{
    size_t row_len = (size_t)t->ne[0];
    gguf_tensor_rows_to_f32(t, 0, row_len ? t->numel / row_len : 0, out);
}
