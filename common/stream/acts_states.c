#include "stream/acts_states.h"
#include "base/error.h"
#include "stream/map_writer.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ---- the index: open addressing over 64-bit keys, load kept under 1/2 */

void states_index_init(StatesIndex *ix) { memset(ix, 0, sizeof *ix); }

void states_index_free(StatesIndex *ix)
{
    free(ix->key);
    free(ix->off);
    free(ix->len);
    free(ix->used);
    memset(ix, 0, sizeof *ix);
}

static size_t slot_of(const StatesIndex *ix, uint64_t key)
{
    /* the keys are hashes already: their low bits spread well */
    size_t i = (size_t)(key & (ix->cap - 1));
    while (ix->used[i] && ix->key[i] != key) i = (i + 1) & (ix->cap - 1);
    return i;
}

int states_index_find(const StatesIndex *ix, uint64_t key, uint64_t *off, uint64_t *len)
{
    if (!ix->cap) return 0;
    size_t i = slot_of(ix, key);
    if (!ix->used[i]) return 0;
    if (off) *off = ix->off[i];
    if (len) *len = ix->len[i];
    return 1;
}

static void grow(StatesIndex *ix)
{
    StatesIndex bigger = {0};
    bigger.cap = ix->cap ? 2 * ix->cap : 1024;
    bigger.key = hd_malloc(bigger.cap * sizeof *bigger.key);
    bigger.off = hd_malloc(bigger.cap * sizeof *bigger.off);
    bigger.len = hd_malloc(bigger.cap * sizeof *bigger.len);
    bigger.used = hd_calloc(bigger.cap, 1);
    for (size_t i = 0; i < ix->cap; i++)
        if (ix->used[i]) states_index_put(&bigger, ix->key[i], ix->off[i], ix->len[i]);
    states_index_free(ix);
    *ix = bigger;
}

void states_index_put(StatesIndex *ix, uint64_t key, uint64_t off, uint64_t len)
{
    if (2 * (ix->n + 1) > ix->cap) grow(ix);
    size_t i = slot_of(ix, key);
    if (ix->used[i]) return;
    ix->used[i] = 1;
    ix->key[i] = key;
    ix->off[i] = off;
    ix->len[i] = len;
    ix->n++;
}

/* ---- keys */

static uint64_t fnv1a(uint64_t h, const void *p, size_t n)
{
    const unsigned char *b = p;
    for (size_t i = 0; i < n; i++) {
        h ^= b[i];
        h *= 0x100000001b3ULL;
    }
    return h;
}

static uint64_t fnv1a_i32(uint64_t h, int32_t v)
{
    /* little-endian bytes whatever the host, so keys travel between machines */
    unsigned char b[4] = {(unsigned char)v, (unsigned char)(v >> 8), (unsigned char)(v >> 16),
                          (unsigned char)(v >> 24)};
    return fnv1a(h, b, 4);
}

uint64_t states_key(const char *model_id, DType dtype, const int *layers, int n_layers,
                    const int32_t *ids, int n)
{
    uint64_t h = 0xcbf29ce484222325ULL;
    h = fnv1a(h, model_id, strlen(model_id) + 1);
    const char *dt = dtype_name(dtype);
    h = fnv1a(h, dt, strlen(dt) + 1);
    h = fnv1a_i32(h, n_layers);
    for (int i = 0; i < n_layers; i++) h = fnv1a_i32(h, layers[i]);
    h = fnv1a_i32(h, n);
    for (int i = 0; i < n; i++) h = fnv1a_i32(h, ids[i]);
    return h;
}

void states_key_format(uint64_t key, char out[17]) { snprintf(out, 17, "%016" PRIx64, key); }

int states_key_get(const msgpack_object *rec, const char *field, uint64_t *key)
{
    const msgpack_object *o = mp_map_get(rec, field);
    if (!o || o->type != MSGPACK_OBJECT_STR || o->via.str.size != 16)
        return hd_fail("'%s' is not a states key (16 hex digits)", field);
    uint64_t k = 0;
    for (int i = 0; i < 16; i++) {
        char c = o->via.str.ptr[i];
        int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
        if (d < 0) return hd_fail("'%s' is not a states key (16 hex digits)", field);
        k = k << 4 | (uint64_t)d;
    }
    *key = k;
    return 0;
}

int acts_record_is_shared(const msgpack_object *rec)
{
    return mp_map_get(rec, "base_states") != NULL || mp_map_get(rec, "source_states") != NULL;
}

int states_record_check(const msgpack_object *rec, uint64_t *key)
{
    if (states_key_get(rec, "key", key) < 0) return -1;
    const msgpack_object *ids = mp_map_get(rec, "ids"), *hidden = mp_map_get(rec, "hidden");
    if (!ids || tensor_check(ids) < 0) return hd_fail("states record: no valid tensor 'ids'");
    if (!hidden || tensor_check(hidden) < 0)
        return hd_fail("states record: no valid tensor 'hidden'");
    return 0;
}

/* ---- file access */

char *states_pread(int fd, uint64_t off, size_t n, const char *path)
{
    char *buf = hd_malloc(n ? n : 1);
    size_t got = 0;
    while (got < n) {
        ssize_t k = pread(fd, buf + got, n - got, (off_t)(off + got));
        if (k < 0 && errno == EINTR) continue;
        if (k <= 0) {
            free(buf);
            hd_fail("%s: read error at byte %" PRIu64 ": %s", path, off + got,
                    k < 0 ? strerror(errno) : "unexpected end of file");
            return NULL;
        }
        got += (size_t)k;
    }
    return buf;
}

int states_pwrite(int fd, const char *p, size_t n, uint64_t *at, const char *path)
{
    while (n > 0) {
        ssize_t k = pwrite(fd, p, n, (off_t)*at);
        if (k < 0 && errno == EINTR) continue;
        if (k <= 0) return hd_fail("%s: write error: %s", path, strerror(errno));
        p += k;
        n -= (size_t)k;
        *at += (uint64_t)k;
    }
    return 0;
}

int states_append_record(int fd, msgpack_sbuffer *sb, const msgpack_object *rec, uint64_t *at,
                         uint64_t *where, const char *path)
{
    msgpack_sbuffer_clear(sb);
    msgpack_packer pk;
    msgpack_packer_init(&pk, sb, msgpack_sbuffer_write);
    msgpack_pack_object(&pk, *rec);
    *where = *at;
    return states_pwrite(fd, sb->data, sb->size, at, path);
}

/* ---- resolving */

typedef struct {
    char *bytes;
    msgpack_unpacked u;
} Loaded;

/* The states record under field's key, read and checked against the acts
 * record's ids under ids_field. */
static int load(const StatesIndex *ix, int fd, const msgpack_object *acts, const char *field,
                const char *ids_field, Loaded *l)
{
    uint64_t key, off, len;
    if (states_key_get(acts, field, &key) < 0) return -1;
    char hex[17];
    states_key_format(key, hex);
    if (!states_index_find(ix, key, &off, &len))
        return hd_fail("%s %s: no states record with this key earlier in the stream", field, hex);
    if (!(l->bytes = states_pread(fd, off, (size_t)len, "the states store"))) return -1;
    msgpack_unpacked_init(&l->u);
    size_t pos = 0;
    if (msgpack_unpack_next(&l->u, l->bytes, (size_t)len, &pos) != MSGPACK_UNPACK_SUCCESS)
        return hd_fail("%s %s: the stored states record cannot be read", field, hex);
    if (!mp_map_get(&l->u.data, "hidden"))
        return hd_fail("%s %s: the states record has no 'hidden'", field, hex);
    Tensor want, have;
    if (tensor_from_record(acts, ids_field, &want) < 0) return -1;
    if (tensor_from_record(&l->u.data, "ids", &have) < 0) {
        tensor_release(&want);
        return -1;
    }
    int same = want.dtype == have.dtype && want.nbytes == have.nbytes &&
               memcmp(want.data, have.data, want.nbytes) == 0;
    tensor_release(&want);
    tensor_release(&have);
    if (!same) return hd_fail("%s %s: the states record holds other token ids than %s", field, hex,
                              ids_field);
    return 0;
}

static void unload(Loaded *l)
{
    if (!l->bytes) return;
    msgpack_unpacked_destroy(&l->u);
    free(l->bytes);
    l->bytes = NULL;
}

int states_resolve(const StatesIndex *ix, int fd, const msgpack_object *acts, MpCopy *out,
                   const msgpack_object **res)
{
    Loaded base = {0}, src = {0};
    if (load(ix, fd, acts, "base_states", "base_ids", &base) < 0 ||
        load(ix, fd, acts, "source_states", "source_ids", &src) < 0) {
        unload(&base);
        unload(&src);
        return -1;
    }
    static const char *const skip[] = {"base_states", "source_states"};
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    MapWriter m;
    map_begin(&m, &pk);
    map_record_rewrite(&m, acts, "acts", skip, 2);
    msgpack_pack_object(map_key(&m, "base_hidden"), *mp_map_get(&base.u.data, "hidden"));
    msgpack_pack_object(map_key(&m, "source_hidden"), *mp_map_get(&src.u.data, "hidden"));
    /* into memory, as the packs above: a short write leaves bytes that do
     * not unpack, caught just below */
    map_end(&m);
    unload(&base);
    unload(&src);
    size_t size = sb.size, pos = 0;
    out->bytes = msgpack_sbuffer_release(&sb);
    msgpack_unpacked_init(&out->unpacked);
    if (msgpack_unpack_next(&out->unpacked, out->bytes, size, &pos) != MSGPACK_UNPACK_SUCCESS)
        hd_die("internal error: cannot re-read a resolved acts record");
    *res = &out->unpacked.data;
    return 0;
}
