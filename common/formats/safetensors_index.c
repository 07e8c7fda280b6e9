/* Checkpoint directories: one model.safetensors, or shards listed by
 * model.safetensors.index.json ({"metadata": ..., "weight_map": {tensor:
 * shard file}}), the layout transformers' save_pretrained writes. */
#include "formats/safetensors.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/error.h"

static char *join_path(const char *dir, const char *name)
{
    size_t n = strlen(dir) + strlen(name) + 2;
    char *p = hd_malloc(n);
    snprintf(p, n, "%s/%s", dir, name);
    return p;
}

/* A shard name from the index must stay inside the directory. */
static int safe_shard_name(const char *s)
{
    return s[0] && !strchr(s, '/') && strcmp(s, ".") != 0 && strcmp(s, "..") != 0;
}

static int open_single(StCheckpoint *c, const char *path)
{
    c->files = hd_calloc(1, sizeof(StFile));
    c->n_files = 1;
    return st_open(&c->files[0], path);
}

/* Opens every distinct shard the weight map names, then checks that each
 * listed tensor really is in the shard the index says. */
static int open_from_index(StCheckpoint *c, const char *index_path, json_t *map)
{
    size_t n = json_object_size(map);
    if (n == 0) return hd_fail("%s: weight_map is empty", index_path);
    c->files = hd_calloc(n, sizeof(StFile));
    const char *tensor;
    json_t *v;
    json_object_foreach(map, tensor, v) {
        if (!json_is_string(v) || !safe_shard_name(json_string_value(v)))
            return hd_fail("%s: weight_map['%s'] is not a file name in this directory", index_path, tensor);
        const char *shard = json_string_value(v);
        int k = 0;
        char *path = join_path(c->dir, shard);
        while (k < c->n_files && strcmp(c->files[k].path, path) != 0) k++;
        if (k == c->n_files) {
            c->n_files++;
            if (access(path, F_OK) != 0) {
                c->files[k].path = path;
                return hd_fail("%s: missing shard '%s' (listed for tensor '%s')", index_path, shard, tensor);
            }
            int rc = st_open(&c->files[k], path);
            free(path);
            if (rc != 0) return -1;
        } else {
            free(path);
        }
        if (!st_find(&c->files[k], tensor))
            return hd_fail("%s: tensor '%s' is listed in '%s' but that shard does not hold it",
                           index_path, tensor, shard);
    }
    return 0;
}

int st_checkpoint_open(StCheckpoint *c, const char *dir)
{
    memset(c, 0, sizeof *c);
    c->dir = hd_strdup(dir);
    char *index_path = join_path(dir, "model.safetensors.index.json");
    char *single_path = join_path(dir, "model.safetensors");
    int rc;
    if (access(index_path, F_OK) == 0) {
        json_error_t err;
        json_t *root = json_load_file(index_path, JSON_REJECT_DUPLICATES, &err);
        json_t *map = root ? json_object_get(root, "weight_map") : NULL;
        if (!root)
            rc = hd_fail("%s: not valid JSON: %s (line %d)", index_path, err.text, err.line);
        else if (!json_is_object(map))
            rc = hd_fail("%s: no \"weight_map\" object", index_path);
        else
            rc = open_from_index(c, index_path, map);
        json_decref(root);
    } else if (access(single_path, F_OK) == 0) {
        rc = open_single(c, single_path);
    } else {
        rc = hd_fail("%s: neither model.safetensors nor model.safetensors.index.json is there", dir);
    }
    free(index_path);
    free(single_path);
    return rc;
}

void st_checkpoint_close(StCheckpoint *c)
{
    for (int i = 0; i < c->n_files; i++) st_close(&c->files[i]);
    free(c->files);
    free(c->dir);
    memset(c, 0, sizeof *c);
}

const StTensor *st_checkpoint_find(const StCheckpoint *c, const char *name, const StFile **file)
{
    for (int i = 0; i < c->n_files; i++) {
        const StTensor *t = st_find(&c->files[i], name);
        if (t) {
            if (file) *file = &c->files[i];
            return t;
        }
    }
    return NULL;
}
