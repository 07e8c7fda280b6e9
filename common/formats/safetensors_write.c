/* safetensors writer (hypernetwork checkpoints, fixtures).  The format's
 * rules that Python's reader enforces: the header is followed directly by
 * the data buffer, tensors tile it with no gaps, and (since safetensors
 * 0.3) the header length is padded with spaces to a multiple of 8 so that
 * the data buffer starts aligned. */
#include "formats/safetensors.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/error.h"

void st_writer_init(StWriter *w) { memset(w, 0, sizeof *w); }

/* Appends one tensor; its bytes are copied when `copy`, else borrowed. */
static int add_tensor(StWriter *w, const char *name, StDtype dtype, int ndim, const int64_t *shape,
                      const void *data, int copy)
{
    if (!name[0] || strcmp(name, "__metadata__") == 0)
        return hd_fail("safetensors writer: invalid tensor name '%s'", name);
    if (dtype >= ST_DTYPE_COUNT || ndim < 0 || ndim > ST_MAX_DIMS)
        return hd_fail("safetensors writer: tensor '%s': bad dtype or rank", name);
    for (int i = 0; i < w->n_tensors; i++)
        if (strcmp(w->tensors[i].name, name) == 0)
            return hd_fail("safetensors writer: tensor '%s' added twice", name);
    size_t numel = 1;
    for (int i = 0; i < ndim; i++) {
        if (shape[i] < 0 || __builtin_mul_overflow(numel, (size_t)shape[i], &numel))
            return hd_fail("safetensors writer: tensor '%s': bad shape", name);
    }
    if (w->n_tensors == w->cap_tensors) {
        w->cap_tensors = w->cap_tensors ? 2 * w->cap_tensors : 16;
        w->tensors = hd_realloc(w->tensors, (size_t)w->cap_tensors * sizeof(StTensor));
        w->owned = hd_realloc(w->owned, (size_t)w->cap_tensors);
    }
    w->owned[w->n_tensors] = (unsigned char)(copy != 0);
    StTensor *t = &w->tensors[w->n_tensors++];
    memset(t, 0, sizeof *t);
    t->name = hd_strdup(name);
    t->dtype = dtype;
    t->ndim = ndim;
    for (int i = 0; i < ndim; i++) t->shape[i] = shape[i];
    t->numel = numel;
    t->nbytes = numel * st_dtype_size(dtype);
    if (copy) {
        unsigned char *bytes = hd_malloc(t->nbytes ? t->nbytes : 1);
        if (t->nbytes) memcpy(bytes, data, t->nbytes);
        t->data = bytes;
    } else {
        t->data = data;
    }
    return 0;
}

int st_writer_add(StWriter *w, const char *name, StDtype dtype, int ndim, const int64_t *shape,
                  const void *data)
{
    return add_tensor(w, name, dtype, ndim, shape, data, 1);
}

int st_writer_add_f32(StWriter *w, const char *name, int ndim, const int64_t *shape, const float *data)
{
    return add_tensor(w, name, ST_F32, ndim, shape, data, 1);
}

int st_writer_add_f32_borrowed(StWriter *w, const char *name, int ndim, const int64_t *shape,
                               const float *data)
{
    return add_tensor(w, name, ST_F32, ndim, shape, data, 0);
}

void st_writer_set_metadata(StWriter *w, const char *key, const char *value)
{
    for (int i = 0; i < w->n_meta; i++)
        if (strcmp(w->meta_keys[i], key) == 0) {
            free(w->meta_values[i]);
            w->meta_values[i] = hd_strdup(value);
            return;
        }
    w->meta_keys = hd_realloc(w->meta_keys, (size_t)(w->n_meta + 1) * sizeof(char *));
    w->meta_values = hd_realloc(w->meta_values, (size_t)(w->n_meta + 1) * sizeof(char *));
    w->meta_keys[w->n_meta] = hd_strdup(key);
    w->meta_values[w->n_meta] = hd_strdup(value);
    w->n_meta++;
}

static char *build_header(const StWriter *w, size_t *len)
{
    json_t *root = json_object();
    if (w->n_meta) {
        json_t *meta = json_object();
        for (int i = 0; i < w->n_meta; i++) json_object_set_new(meta, w->meta_keys[i], json_string(w->meta_values[i]));
        json_object_set_new(root, "__metadata__", meta);
    }
    size_t offset = 0;
    for (int i = 0; i < w->n_tensors; i++) {
        const StTensor *t = &w->tensors[i];
        json_t *shape = json_array();
        for (int d = 0; d < t->ndim; d++) json_array_append_new(shape, json_integer(t->shape[d]));
        json_t *offs = json_array();
        json_array_append_new(offs, json_integer((json_int_t)offset));
        json_array_append_new(offs, json_integer((json_int_t)(offset + t->nbytes)));
        json_t *entry = json_object();
        json_object_set_new(entry, "dtype", json_string(st_dtype_name(t->dtype)));
        json_object_set_new(entry, "shape", shape);
        json_object_set_new(entry, "data_offsets", offs);
        json_object_set_new(root, t->name, entry);
        offset += t->nbytes;
    }
    char *text = json_dumps(root, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(root);
    if (!text) return NULL;
    size_t n = strlen(text), padded = (n + 7) / 8 * 8;
    char *out = hd_malloc(padded + 1);
    memcpy(out, text, n);
    memset(out + n, ' ', padded - n);
    out[padded] = 0;
    free(text);
    *len = padded;
    return out;
}

int st_writer_save(const StWriter *w, const char *path)
{
    size_t hlen;
    char *header = build_header(w, &hlen);
    if (!header) return hd_fail("%s: cannot encode the safetensors header (invalid UTF-8 name?)", path);
    size_t tn = strlen(path) + 5;
    char *tmp = hd_malloc(tn);
    snprintf(tmp, tn, "%s.tmp", path);
    FILE *fp = fopen(tmp, "wb");
    int rc = 0;
    if (!fp) {
        rc = hd_fail("%s: cannot create: %s", tmp, strerror(errno));
        goto done;
    }
    unsigned char len8[8];
    for (int i = 0; i < 8; i++) len8[i] = (unsigned char)((uint64_t)hlen >> (8 * i));
    int ok = fwrite(len8, 1, 8, fp) == 8 && fwrite(header, 1, hlen, fp) == hlen;
    for (int i = 0; ok && i < w->n_tensors; i++)
        ok = fwrite(w->tensors[i].data, 1, w->tensors[i].nbytes, fp) == w->tensors[i].nbytes;
    if (fclose(fp) != 0) ok = 0;
    if (!ok) {
        rc = hd_fail("%s: write failed: %s", tmp, strerror(errno));
        remove(tmp);
    } else if (rename(tmp, path) != 0) {
        rc = hd_fail("%s: cannot rename %s into place: %s", path, tmp, strerror(errno));
        remove(tmp);
    }
done:
    free(tmp);
    free(header);
    return rc;
}

void st_writer_free(StWriter *w)
{
    for (int i = 0; i < w->n_tensors; i++) {
        free(w->tensors[i].name);
        if (w->owned[i]) free((void *)w->tensors[i].data);
    }
    free(w->tensors);
    free(w->owned);
    for (int i = 0; i < w->n_meta; i++) {
        free(w->meta_keys[i]);
        free(w->meta_values[i]);
    }
    free(w->meta_keys);
    free(w->meta_values);
    memset(w, 0, sizeof *w);
}
