#include "hypernet/checkpoint.h"
#include "base/error.h"
#include "formats/safetensors.h"

#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* dir + "/" + file into out; -1 when it does not fit. */
static int join(char *out, size_t size, const char *dir, const char *file)
{
    size_t a = strlen(dir), b = strlen(file);
    if (a + 1 + b + 1 > size) return hd_fail("%s/%s: path too long", dir, file);
    memcpy(out, dir, a);
    out[a] = '/';
    memcpy(out + a + 1, file, b + 1);
    return 0;
}

static int write_text(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    if (!f) return hd_fail("%s: %s", path, strerror(errno));
    int bad = fputs(text, f) < 0;
    if (fflush(f) != 0 || fsync(fileno(f)) != 0) bad = 1;
    if (fclose(f) != 0 || bad) return hd_fail("%s: write error", path);
    return 0;
}

static int add_tensor(StWriter *w, const char *prefix, const HnParam *p, const float *data)
{
    char name[512];
    snprintf(name, sizeof name, "%s%s", prefix, p->name);
    /* borrowed: the training state is not copied a second time to save it */
    return st_writer_add_f32_borrowed(w, name, p->ndim, p->shape, data);
}

static int save_tensors(const char *step_dir, const Hypernet *hn, const float *m, const float *v)
{
    char path[PATH_MAX];
    StWriter w;
    st_writer_init(&w);
    st_writer_set_metadata(&w, "format", "pt");
    int rc = 0;
    for (int i = 0; i < hypernet_param_count(hn) && rc == 0; i++)
        rc = add_tensor(&w, "", hypernet_param(hn, i), hypernet_param(hn, i)->data);
    if (rc == 0) rc = join(path, sizeof path, step_dir, "model.safetensors");
    if (rc == 0) rc = st_writer_save(&w, path);
    st_writer_free(&w);
    if (rc < 0 || !m) return rc;
    st_writer_init(&w);
    for (int i = 0; i < hypernet_param_count(hn) && rc == 0; i++) {
        const HnParam *p = hypernet_param(hn, i);
        if (!p->grad) continue;   /* a buffer has no moments */
        rc = add_tensor(&w, "m.", p, m + p->offset);
        if (rc == 0) rc = add_tensor(&w, "v.", p, v + p->offset);
    }
    if (rc == 0) rc = join(path, sizeof path, step_dir, "optimizer.safetensors");
    if (rc == 0) rc = st_writer_save(&w, path);
    st_writer_free(&w);
    return rc;
}

static void remove_dir(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d) return;
    struct dirent *e;
    char path[PATH_MAX];
    while ((e = readdir(d)))
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) {
            snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
            unlink(path);
        }
    closedir(d);
    rmdir(dir);
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Removes the oldest step directories beyond `keep`. */
static void prune(const char *dir, int keep)
{
    DIR *d = opendir(dir);
    if (!d) return;
    char **names = NULL;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)))
        if (strncmp(e->d_name, "step-", 5) == 0) {
            names = hd_realloc(names, (size_t)(n + 1) * sizeof *names);
            names[n++] = hd_strdup(e->d_name);
        }
    closedir(d);
    qsort(names, (size_t)n, sizeof *names, cmp_str);
    char path[PATH_MAX];
    for (int i = 0; i < n; i++) {
        if (i < n - keep) {
            snprintf(path, sizeof path, "%s/%s", dir, names[i]);
            remove_dir(path);
        }
        free(names[i]);
    }
    free(names);
}

int checkpoint_save(const char *dir, const Hypernet *hn, const float *adam_m, const float *adam_v,
                    const TrainState *st, const char *config_json, int keep)
{
    if (mkdir(dir, 0755) != 0 && errno != EEXIST) return hd_fail("%s: %s", dir, strerror(errno));
    char name[64], tmp[PATH_MAX], final[PATH_MAX], path[PATH_MAX];
    snprintf(name, sizeof name, "step-%08ld", st->step);
    snprintf(tmp, sizeof tmp, "%s/.tmp-%s.%d", dir, name, (int)getpid());
    snprintf(final, sizeof final, "%s/%s", dir, name);
    remove_dir(tmp);
    if (mkdir(tmp, 0755) != 0) return hd_fail("%s: %s", tmp, strerror(errno));
    char state[512];
    snprintf(state, sizeof state,
             "{\"step\": %ld, \"epoch\": %ld, \"cursor\": %ld, \"seed\": %" PRIu64 "}\n", st->step,
             st->epoch, st->cursor, st->seed);
    int rc = save_tensors(tmp, hn, adam_m, adam_v);
    if (rc == 0) rc = join(path, sizeof path, tmp, "config.json");
    if (rc == 0) rc = write_text(path, config_json);
    if (rc == 0) rc = join(path, sizeof path, tmp, "state.json");
    if (rc == 0) rc = write_text(path, state);
    if (rc == 0) {
        remove_dir(final);   /* a stale copy of the same step from an earlier run */
        if (rename(tmp, final) != 0) rc = hd_fail("%s: %s", final, strerror(errno));
    }
    if (rc < 0) {
        remove_dir(tmp);
        return -1;
    }
    /* Point `latest` at the new step with one atomic rename. */
    char link_tmp[PATH_MAX], link[PATH_MAX];
    snprintf(link_tmp, sizeof link_tmp, "%s/.latest.%d", dir, (int)getpid());
    snprintf(link, sizeof link, "%s/latest", dir);
    unlink(link_tmp);
    if (symlink(name, link_tmp) != 0 || rename(link_tmp, link) != 0)
        return hd_fail("%s: cannot update: %s", link, strerror(errno));
    prune(dir, keep < 1 ? 1 : keep);
    return 0;
}

char *checkpoint_latest(const char *dir)
{
    char link[PATH_MAX], target[PATH_MAX];
    snprintf(link, sizeof link, "%s/latest", dir);
    ssize_t n = readlink(link, target, sizeof target - 1);
    if (n <= 0) {
        /* a step directory given directly */
        snprintf(link, sizeof link, "%s/state.json", dir);
        if (access(link, R_OK) == 0) return hd_strdup(dir);
        hd_fail("%s: not a checkpoint directory (no 'latest' link, no state.json)", dir);
        return NULL;
    }
    target[n] = 0;
    char *out = hd_malloc(strlen(dir) + strlen(target) + 2);
    sprintf(out, "%s/%s", dir, target);
    return out;
}

static int load_file(const char *step_dir, const char *file, const char *prefix, Hypernet *hn,
                     float *dest, int buffers_too)
{
    char path[PATH_MAX], name[512];
    snprintf(path, sizeof path, "%s/%s", step_dir, file);
    StFile f;
    if (st_open(&f, path) < 0) return -1;
    int rc = 0;
    for (int i = 0; i < hypernet_param_count(hn) && rc == 0; i++) {
        const HnParam *p = hypernet_param(hn, i);
        if (!p->grad && !buffers_too) continue;
        snprintf(name, sizeof name, "%s%s", prefix, p->name);
        float *out = dest ? dest + p->offset : p->data;
        if (!p->grad) out = p->data;   /* a buffer lives outside the flat arrays */
        rc = st_read_f32(&f, name, p->ndim, p->shape, out);
    }
    st_close(&f);
    return rc;
}

int checkpoint_state_parse(TrainState *st, const char *text, size_t len, const char *path)
{
    json_error_t err;
    json_t *j = json_loadb(text, len, 0, &err);
    if (!j) return hd_fail("%s: line %d: %s", path, err.line, err.text);
    json_t *step = json_object_get(j, "step"), *epoch = json_object_get(j, "epoch");
    json_t *cursor = json_object_get(j, "cursor"), *seed = json_object_get(j, "seed");
    int ok = json_is_integer(step) && json_is_integer(epoch) && json_is_integer(cursor) &&
             json_is_integer(seed);
    if (!ok) {
        json_decref(j);
        return hd_fail("%s: missing step, epoch, cursor or seed", path);
    }
    /* a negative one would index before the data order (perm[cursor + i]) */
    const char *const names[4] = {"step", "epoch", "cursor", "seed"};
    const json_t *const values[4] = {step, epoch, cursor, seed};
    for (int i = 0; i < 4; i++)
        if (json_integer_value(values[i]) < 0) {
            long long v = json_integer_value(values[i]);
            json_decref(j);
            return hd_fail("%s: %s is %lld; it must be >= 0", path, names[i], v);
        }
    st->step = (long)json_integer_value(step);
    st->epoch = (long)json_integer_value(epoch);
    st->cursor = (long)json_integer_value(cursor);
    st->seed = (uint64_t)json_integer_value(seed);
    json_decref(j);
    return 0;
}

/* The whole of a small text file (malloc'd, *len bytes), or NULL with a message. */
static char *read_text(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        hd_fail("%s: %s", path, strerror(errno));
        return NULL;
    }
    char *text = NULL, chunk[4096];
    size_t n = 0, got;
    while ((got = fread(chunk, 1, sizeof chunk, f)) > 0) {
        text = hd_realloc(text, n + got);
        memcpy(text + n, chunk, got);
        n += got;
    }
    int bad = ferror(f);
    fclose(f);
    if (bad) {
        free(text);
        hd_fail("%s: read error", path);
        return NULL;
    }
    *len = n;
    return text ? text : hd_strdup("");
}

int checkpoint_load(const char *step_dir, Hypernet *hn, float *adam_m, float *adam_v,
                    TrainState *st)
{
    if (load_file(step_dir, "model.safetensors", "", hn, NULL, 1) < 0) return -1;
    if (adam_m && (load_file(step_dir, "optimizer.safetensors", "m.", hn, adam_m, 0) < 0 ||
                   load_file(step_dir, "optimizer.safetensors", "v.", hn, adam_v, 0) < 0))
        return -1;
    if (!st) return 0;
    char path[PATH_MAX];
    if (join(path, sizeof path, step_dir, "state.json") < 0) return -1;
    /* read here and parsed from memory, so the parser is the one fuzzed */
    size_t len;
    char *text = read_text(path, &len);
    if (!text) return -1;
    int rc = checkpoint_state_parse(st, text, len, path);
    free(text);
    return rc;
}
