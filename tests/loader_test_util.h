/* Helpers shared by the model-loader tests (test_safetensors, test_gguf,
 * test_llama_load): a scratch directory, writing bytes to a file, and
 * checking that an error message mentions what it must. Header-only:
 * every function is static and each test includes it once. */
#ifndef HD_LOADER_TEST_UTIL_H
#define HD_LOADER_TEST_UTIL_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/error.h"
#include "formats/gguf.h"

static char scratch_dir[64];

/* A fresh directory under /tmp, removed by scratch_cleanup(). */
static __attribute__((unused)) int scratch_setup(void **state)
{
    (void)state;
    snprintf(scratch_dir, sizeof scratch_dir, "/tmp/hd_loader_XXXXXX");
    return mkdtemp(scratch_dir) ? 0 : -1;
}

static __attribute__((unused)) int scratch_cleanup(void **state)
{
    (void)state;
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", scratch_dir);
    return system(cmd) == 0 ? 0 : -1;
}

/* scratch_dir/NAME into buf (static storage rotates over 4 buffers). */
static __attribute__((unused)) const char * scratch_path(const char *name)
{
    static char bufs[4][256];
    static int k;
    char *b = bufs[k++ % 4];
    snprintf(b, 256, "%s/%s", scratch_dir, name);
    return b;
}

static __attribute__((unused)) void write_bytes(const char *path, const void *data, size_t n)
{
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(data, 1, n, f) != n || fclose(f) != 0) {
        fprintf(stderr, "cannot write %s\n", path);
        exit(1);
    }
}

/* Reads a whole file; NULL if it cannot. */
static __attribute__((unused)) unsigned char * read_bytes(const char *path, size_t *n)
{
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long len = ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *buf = malloc(len > 0 ? (size_t)len : 1);
    *n = fread(buf, 1, (size_t)len, f);
    fclose(f);
    return buf;
}

static __attribute__((unused)) int file_exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0;
}

/* The last error must mention every given fragment (NULL-terminated). */
#define assert_error_mentions(...) assert_error_mentions_((const char *[]){__VA_ARGS__, NULL})
static __attribute__((unused)) void assert_error_mentions_(const char **parts)
{
    const char *msg = hd_last_error();
    for (; *parts; parts++) {
        if (!strstr(msg, *parts)) {
            fprintf(stderr, "error message '%s' does not mention '%s'\n", msg, *parts);
            fail();
        }
    }
    if (strchr(msg, '\n')) {
        fprintf(stderr, "error message spans lines: '%s'\n", msg);
        fail();
    }
}

/* ---- a GGUF builder: little-endian values appended to a growable buffer ---- */

typedef struct {
    unsigned char *b;
    size_t n, cap;
} Buf;

static __attribute__((unused)) void put(Buf *o, const void *p, size_t n)
{
    if (o->n + n > o->cap) {
        o->cap = 2 * (o->n + n) + 64;
        o->b = realloc(o->b, o->cap);
    }
    memcpy(o->b + o->n, p, n);
    o->n += n;
}
static __attribute__((unused)) void put_le(Buf *o, uint64_t v, int nbytes)
{
    for (int i = 0; i < nbytes; i++) {
        unsigned char c = (unsigned char)(v >> (8 * i));
        put(o, &c, 1);
    }
}
static __attribute__((unused)) void put_u32(Buf *o, uint32_t v) { put_le(o, v, 4); }
static __attribute__((unused)) void put_u64(Buf *o, uint64_t v) { put_le(o, v, 8); }
static __attribute__((unused)) void put_str(Buf *o, const char *s)
{
    put_u64(o, strlen(s));
    put(o, s, strlen(s));
}
static __attribute__((unused)) void put_f32(Buf *o, float f)
{
    uint32_t u;
    memcpy(&u, &f, 4);
    put_u32(o, u);
}
static __attribute__((unused)) void put_header(Buf *o, uint32_t version, uint64_t n_tensors, uint64_t n_kv)
{
    put(o, "GGUF", 4);
    put_u32(o, version);
    put_u64(o, n_tensors);
    put_u64(o, n_kv);
}
static __attribute__((unused)) void put_key(Buf *o, const char *key, uint32_t type)
{
    put_str(o, key);
    put_u32(o, type);
}
static __attribute__((unused)) void put_tensor(Buf *o, const char *name, int nd, const uint64_t *ne, uint32_t type, uint64_t offset)
{
    put_str(o, name);
    put_u32(o, (uint32_t)nd);
    for (int i = 0; i < nd; i++) put_u64(o, ne[i]);
    put_u32(o, type);
    put_u64(o, offset);
}
static __attribute__((unused)) void pad_to(Buf *o, size_t alignment)
{
    while (o->n % alignment) put(o, "", 1);
}

#endif
