/* safetensors reader: header parsing and validation, dtype conversion. */
#include "formats/safetensors.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "base/error.h"
#include "float16.h"

/* The Rust reference refuses headers above 100 MB; a larger one is a
 * corrupt length field, not a model. */
#define ST_MAX_HEADER (100u * 1000 * 1000)

static const struct {
    const char *name;
    size_t size;
} dtype_info[ST_DTYPE_COUNT] = {
    [ST_F64] = {"F64", 8},  [ST_F32] = {"F32", 4}, [ST_F16] = {"F16", 2},
    [ST_BF16] = {"BF16", 2}, [ST_I64] = {"I64", 8}, [ST_I32] = {"I32", 4},
    [ST_I16] = {"I16", 2},  [ST_I8] = {"I8", 1},   [ST_U8] = {"U8", 1},
    [ST_BOOL] = {"BOOL", 1},
};

const char *st_dtype_name(StDtype t) { return t < ST_DTYPE_COUNT ? dtype_info[t].name : "?"; }
size_t st_dtype_size(StDtype t) { return t < ST_DTYPE_COUNT ? dtype_info[t].size : 0; }

static int parse_dtype(const char *s, StDtype *out)
{
    for (int t = 0; t < ST_DTYPE_COUNT; t++)
        if (strcmp(s, dtype_info[t].name) == 0) {
            *out = (StDtype)t;
            return 0;
        }
    return -1;
}

static int compare_tensor_names(const void *a, const void *b)
{
    return strcmp(((const StTensor *)a)->name, ((const StTensor *)b)->name);
}

/* Parses one header entry into t (name already set). */
static int parse_entry(StTensor *t, json_t *entry, size_t buffer_size, size_t *begin)
{
    if (!json_is_object(entry)) return hd_fail("tensor '%s': header entry is not an object", t->name);
    json_t *dt = json_object_get(entry, "dtype"), *shape = json_object_get(entry, "shape"),
           *offs = json_object_get(entry, "data_offsets");
    if (!json_is_string(dt) || !json_is_array(shape) || !json_is_array(offs))
        return hd_fail("tensor '%s': header entry needs dtype, shape and data_offsets", t->name);
    if (parse_dtype(json_string_value(dt), &t->dtype) != 0)
        return hd_fail("tensor '%s': unsupported dtype '%s'", t->name, json_string_value(dt));
    size_t nd = json_array_size(shape);
    if (nd > ST_MAX_DIMS) return hd_fail("tensor '%s': %zu dimensions (at most %d)", t->name, nd, ST_MAX_DIMS);
    t->ndim = (int)nd;
    size_t numel = 1;
    for (size_t i = 0; i < nd; i++) {
        json_t *v = json_array_get(shape, i);
        if (!json_is_integer(v) || json_integer_value(v) < 0)
            return hd_fail("tensor '%s': shape[%zu] is not a non-negative integer", t->name, i);
        t->shape[i] = json_integer_value(v);
        if (__builtin_mul_overflow(numel, (size_t)t->shape[i], &numel))
            return hd_fail("tensor '%s': shape overflows", t->name);
    }
    t->numel = numel;
    if (__builtin_mul_overflow(numel, st_dtype_size(t->dtype), &t->nbytes))
        return hd_fail("tensor '%s': byte size overflows", t->name);
    json_t *b = json_array_get(offs, 0), *e = json_array_get(offs, 1);
    if (json_array_size(offs) != 2 || !json_is_integer(b) || !json_is_integer(e))
        return hd_fail("tensor '%s': data_offsets is not [begin, end]", t->name);
    json_int_t bi = json_integer_value(b), ei = json_integer_value(e);
    if (bi < 0 || ei < bi || (unsigned long long)ei > buffer_size)
        return hd_fail("tensor '%s': data_offsets [%lld, %lld] outside the %zu-byte data buffer",
                       t->name, (long long)bi, (long long)ei, buffer_size);
    if ((size_t)(ei - bi) != t->nbytes)
        return hd_fail("tensor '%s': dtype %s and shape need %zu bytes but data_offsets span %lld",
                       t->name, st_dtype_name(t->dtype), t->nbytes, (long long)(ei - bi));
    *begin = (size_t)bi;
    return 0;
}

static int parse_metadata(StFile *f, json_t *meta)
{
    if (!json_is_object(meta)) return hd_fail("__metadata__ is not an object");
    size_t n = json_object_size(meta);
    f->meta_keys = hd_calloc(n ? n : 1, sizeof(char *));
    f->meta_values = hd_calloc(n ? n : 1, sizeof(char *));
    const char *key;
    json_t *v;
    json_object_foreach(meta, key, v) {
        if (!json_is_string(v)) return hd_fail("__metadata__ '%s' is not a string", key);
        f->meta_keys[f->n_meta] = hd_strdup(key);
        f->meta_values[f->n_meta] = hd_strdup(json_string_value(v));
        f->n_meta++;
    }
    /* sort by key (insertion sort: metadata is a handful of entries) */
    for (int i = 1; i < f->n_meta; i++)
        for (int j = i; j > 0 && strcmp(f->meta_keys[j - 1], f->meta_keys[j]) > 0; j--) {
            char *k = f->meta_keys[j], *val = f->meta_values[j];
            f->meta_keys[j] = f->meta_keys[j - 1];
            f->meta_values[j] = f->meta_values[j - 1];
            f->meta_keys[j - 1] = k;
            f->meta_values[j - 1] = val;
        }
    return 0;
}

typedef struct {
    size_t begin, end;
    int index;
} Extent;

static int compare_extents(const void *a, const void *b)
{
    const Extent *x = a, *y = b;
    return x->begin < y->begin ? -1 : x->begin > y->begin ? 1 : (x->end > y->end) - (x->end < y->end);
}

static int parse_header(StFile *f, const unsigned char *buf, size_t size)
{
    if (size < 8) return hd_fail("%zu bytes, too short for a safetensors header", size);
    uint64_t n = 0;
    for (int i = 7; i >= 0; i--) n = n << 8 | buf[i];
    if (n > ST_MAX_HEADER) return hd_fail("header length %llu is implausible (corrupt file?)", (unsigned long long)n);
    if (n > size - 8)
        return hd_fail("header length %llu goes beyond the end of the file (%zu bytes)",
                       (unsigned long long)n, size);
    json_error_t err;
    json_t *root = json_loadb((const char *)buf + 8, (size_t)n, JSON_REJECT_DUPLICATES, &err);
    if (!root) return hd_fail("header is not valid JSON: %s (at byte %d)", err.text, err.position);
    int rc = 0;
    if (!json_is_object(root)) {
        rc = hd_fail("header is not a JSON object");
        goto done;
    }
    const unsigned char *data = buf + 8 + n;
    size_t buffer_size = size - 8 - (size_t)n;
    size_t count = json_object_size(root);
    f->tensors = hd_calloc(count ? count : 1, sizeof(StTensor));
    Extent *ext = hd_calloc(count ? count : 1, sizeof(Extent));
    const char *key;
    json_t *v;
    json_object_foreach(root, key, v) {
        if (strcmp(key, "__metadata__") == 0) {
            if ((rc = parse_metadata(f, v)) != 0) break;
            continue;
        }
        StTensor *t = &f->tensors[f->n_tensors];
        t->name = hd_strdup(key);
        f->n_tensors++;
        size_t begin = 0;
        if ((rc = parse_entry(t, v, buffer_size, &begin)) != 0) break;
        t->data = data + begin;
        ext[f->n_tensors - 1] = (Extent){begin, begin + t->nbytes, f->n_tensors - 1};
    }
    if (rc == 0) {
        qsort(ext, (size_t)f->n_tensors, sizeof *ext, compare_extents);
        /* sorted by begin, a tensor overlaps an earlier one iff it starts
         * before the furthest end seen so far (empty tensors overlap nothing) */
        size_t far_end = 0;
        int far_index = -1;
        for (int i = 0; i < f->n_tensors; i++) {
            if (ext[i].end == ext[i].begin) continue;
            if (far_index >= 0 && ext[i].begin < far_end) {
                rc = hd_fail("tensors '%s' and '%s' overlap in the data buffer",
                             f->tensors[ext[far_index].index].name, f->tensors[ext[i].index].name);
                break;
            }
            far_end = ext[i].end;
            far_index = i;
        }
    }
    free(ext);
    if (rc == 0) qsort(f->tensors, (size_t)f->n_tensors, sizeof(StTensor), compare_tensor_names);
done:
    json_decref(root);
    return rc;
}

int st_parse(StFile *f, const void *buf, size_t size, const char *name)
{
    memset(f, 0, sizeof *f);
    f->path = hd_strdup(name);
    if (parse_header(f, buf, size) != 0) return hd_fail_prefix("%s: ", name);
    return 0;
}

int st_open(StFile *f, const char *path)
{
    memset(f, 0, sizeof *f);
    MappedFile m;
    if (mapped_file_open(&m, path) != 0) {
        f->path = hd_strdup(path);
        return -1;
    }
    int rc = st_parse(f, m.data, m.size, path);
    f->map = m;
    return rc;
}

void st_close(StFile *f)
{
    for (int i = 0; i < f->n_tensors; i++) free(f->tensors[i].name);
    free(f->tensors);
    for (int i = 0; i < f->n_meta; i++) {
        free(f->meta_keys[i]);
        free(f->meta_values[i]);
    }
    free(f->meta_keys);
    free(f->meta_values);
    free(f->path);
    mapped_file_close(&f->map);
    memset(f, 0, sizeof *f);
}

const StTensor *st_find(const StFile *f, const char *name)
{
    if (!f->tensors) return NULL;
    StTensor key = {.name = (char *)name};
    return bsearch(&key, f->tensors, (size_t)f->n_tensors, sizeof(StTensor), compare_tensor_names);
}

const char *st_metadata(const StFile *f, const char *key)
{
    for (int i = 0; i < f->n_meta; i++)
        if (strcmp(f->meta_keys[i], key) == 0) return f->meta_values[i];
    return NULL;
}

/* n elements of dtype from p into out */
static void convert_f32(StDtype dtype, const unsigned char *p, size_t n, float *out)
{
    switch (dtype) {
    case ST_F32: memcpy(out, p, n * 4); break;
    case ST_F64:
        for (size_t i = 0; i < n; i++) {
            double d;
            memcpy(&d, p + 8 * i, 8);
            out[i] = (float)d;
        }
        break;
    case ST_F16:
        for (size_t i = 0; i < n; i++) out[i] = f16_to_f32((uint16_t)(p[2 * i] | p[2 * i + 1] << 8));
        break;
    case ST_BF16:
        for (size_t i = 0; i < n; i++) out[i] = bf16_to_f32((uint16_t)(p[2 * i] | p[2 * i + 1] << 8));
        break;
    case ST_I64:
        for (size_t i = 0; i < n; i++) {
            int64_t v;
            memcpy(&v, p + 8 * i, 8);
            out[i] = (float)v;
        }
        break;
    case ST_I32:
        for (size_t i = 0; i < n; i++) {
            int32_t v;
            memcpy(&v, p + 4 * i, 4);
            out[i] = (float)v;
        }
        break;
    case ST_I16:
        for (size_t i = 0; i < n; i++) {
            int16_t v;
            memcpy(&v, p + 2 * i, 2);
            out[i] = (float)v;
        }
        break;
    case ST_I8:
        for (size_t i = 0; i < n; i++) out[i] = (float)(int8_t)p[i];
        break;
    case ST_U8:
    case ST_BOOL:
    default:
        for (size_t i = 0; i < n; i++) out[i] = (float)p[i];
        break;
    }
}

/* A model loads as fp32 (32 GB for Llama-3-8B): the time goes to the
 * kernel's zeroing of the fresh pages written and to the conversion, both
 * of which threads share when each converts its own chunks (same bits). */
void st_tensor_to_f32(const StTensor *t, float *out)
{
    const size_t chunk = (size_t)1 << 20, n = t->numel, size = st_dtype_size(t->dtype);
    const long n_chunks = (long)((n + chunk - 1) / chunk);
    const unsigned char *p = t->data;
#pragma omp parallel for schedule(static) if (n_chunks > 1)
    for (long c = 0; c < n_chunks; c++) {
        size_t from = (size_t)c * chunk, len = n - from < chunk ? n - from : chunk;
        convert_f32(t->dtype, p + from * size, len, out + from);
    }
}

static void format_shape(char *buf, size_t cap, int ndim, const int64_t *shape)
{
    size_t k = (size_t)snprintf(buf, cap, "[");
    for (int i = 0; i < ndim && k < cap; i++)
        k += (size_t)snprintf(buf + k, cap - k, i ? ", %lld" : "%lld", (long long)shape[i]);
    if (k < cap) snprintf(buf + k, cap - k, "]");
}

int st_read_f32(const StFile *f, const char *name, int ndim, const int64_t *shape, float *out)
{
    const StTensor *t = st_find(f, name);
    if (!t) return hd_fail("%s: no tensor '%s'", f->path, name);
    int same = t->ndim == ndim;
    for (int i = 0; same && i < ndim; i++) same = t->shape[i] == shape[i];
    if (!same) {
        char got[128], want[128];
        format_shape(got, sizeof got, t->ndim, t->shape);
        format_shape(want, sizeof want, ndim, shape);
        return hd_fail("%s: tensor '%s' has shape %s, expected %s", f->path, name, got, want);
    }
    st_tensor_to_f32(t, out);
    return 0;
}
