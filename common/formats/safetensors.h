/* safetensors: the Hugging Face weight format, read in place and written.
 *
 * Layout: u64 little-endian N, then N bytes of JSON header
 *   {"NAME": {"dtype": "F32", "shape": [2, 3], "data_offsets": [begin, end]},
 *    ..., "__metadata__": {"key": "string value"}}
 * then the data buffer; offsets are relative to its start, row-major
 * little-endian.  The reader maps the file and checks every tensor before
 * anyone touches it: header inside the file, offsets inside the buffer and
 * not overlapping, byte count == numel x dtype size.  A malformed file is
 * one hd_fail() message naming the file and the tensor.
 *
 * Sharded checkpoints (model.safetensors.index.json, "weight_map": name ->
 * shard file) open as one StCheckpoint that finds a tensor in any shard. */
#ifndef HD_SAFETENSORS_H
#define HD_SAFETENSORS_H

#include <stddef.h>
#include <stdint.h>

#include "formats/mapped_file.h"

typedef enum {
    ST_F64, ST_F32, ST_F16, ST_BF16, ST_I64, ST_I32, ST_I16, ST_I8, ST_U8, ST_BOOL,
    ST_DTYPE_COUNT
} StDtype;

#define ST_MAX_DIMS 8

const char *st_dtype_name(StDtype t);
size_t st_dtype_size(StDtype t);

typedef struct {
    char *name;
    StDtype dtype;
    int ndim;
    int64_t shape[ST_MAX_DIMS];
    size_t numel;
    size_t nbytes;
    const unsigned char *data;   /* inside the mapping; may be unaligned */
} StTensor;

typedef struct {
    char *path;                  /* for messages */
    MappedFile map;              /* empty when parsed from a caller's buffer */
    StTensor *tensors;           /* sorted by name */
    int n_tensors;
    char **meta_keys, **meta_values;   /* "__metadata__", sorted by key */
    int n_meta;
} StFile;

/* Maps and validates a file; release with st_close (also after failure). */
int st_open(StFile *f, const char *path);
/* Same checks on a buffer the caller keeps alive (fuzzing, tests). */
int st_parse(StFile *f, const void *buf, size_t size, const char *name);
void st_close(StFile *f);

/* NULL when absent (no message set). */
const StTensor *st_find(const StFile *f, const char *name);
const char *st_metadata(const StFile *f, const char *key);

/* Converts any float or integer tensor to float32, out[t->numel]. */
void st_tensor_to_f32(const StTensor *t, float *out);
/* Finds `name`, checks it has exactly this shape and converts it to f32;
 * -1 with a message naming the file, the tensor and both shapes. */
int st_read_f32(const StFile *f, const char *name, int ndim, const int64_t *shape, float *out);

/* A checkpoint directory: model.safetensors, or model.safetensors.index.json
 * and the shards it names. */
typedef struct {
    char *dir;
    StFile *files;
    int n_files;
} StCheckpoint;

int st_checkpoint_open(StCheckpoint *c, const char *dir);
void st_checkpoint_close(StCheckpoint *c);
/* NULL when no shard holds it; *file (if not NULL) gets the shard. */
const StTensor *st_checkpoint_find(const StCheckpoint *c, const char *name, const StFile **file);

/* Writer: collects tensors and metadata, then writes one file with the
 * header padded by spaces to a multiple of 8 bytes and the tensors packed in
 * the order they were added, readable by Python's safetensors.  Tensors are
 * copied when added, or borrowed (st_writer_add_f32_borrowed: the caller
 * keeps the data unchanged until st_writer_save returns), which is how a
 * checkpoint of a large model is written without a second copy of it in
 * memory. */
typedef struct {
    StTensor *tensors;
    unsigned char *owned;        /* [n_tensors] 1: data is the writer's malloc'd copy */
    int n_tensors, cap_tensors;
    char **meta_keys, **meta_values;
    int n_meta;
} StWriter;

void st_writer_init(StWriter *w);
/* -1 on a duplicate or empty name, a bad shape or a reserved name. */
int st_writer_add(StWriter *w, const char *name, StDtype dtype, int ndim, const int64_t *shape,
                  const void *data);
int st_writer_add_f32(StWriter *w, const char *name, int ndim, const int64_t *shape,
                      const float *data);
int st_writer_add_f32_borrowed(StWriter *w, const char *name, int ndim, const int64_t *shape,
                               const float *data);
/* Sets (or replaces) one "__metadata__" string. */
void st_writer_set_metadata(StWriter *w, const char *key, const char *value);
/* Writes PATH.tmp and renames it over PATH; -1 with a message on I/O error. */
int st_writer_save(const StWriter *w, const char *path);
void st_writer_free(StWriter *w);

#endif
