/* Shared hidden states: an acts stream that stores each distinct token
 * sequence's hidden states once.
 *
 * An acts record of SmolLM2 with every layer is about 1.8 MB, nearly all of
 * it the hidden states of its base and source sequences, and a known-first
 * pair set reuses each known prompt many times (8,000 physical_object
 * pairs hold 15,992 sequences, 6,187 of them distinct).  So cache-acts
 * writes a sequence's states once, as a `states` record
 *
 *     {t: "states", key: K, ids: i32[n], hidden: [layers, n, d]}
 *
 * just before the first acts record that names it, and acts records carry
 * base_states: K and source_states: K in place of the base_hidden and
 * source_hidden tensors.  K is 16 hex digits of a 64-bit FNV-1a hash of the
 * model id, the dtype, the layer list and the token ids, so streams of one
 * model concatenated with cat stay consistent (a key defined twice keeps
 * its first definition).  A reader checks the states' ids against the acts
 * record's ids: a hash collision is an error, never a wrong example.
 *
 * Readers see self-contained records: record_input resolves references as
 * it reads (the states go to an unlinked temporary file, one copy each,
 * found again by key), and acts_set (hd-train's spool) keeps the shared
 * form on disk and resolves at read time.  The format is in
 * hyperdas-records(5). */
#ifndef HD_ACTS_STATES_H
#define HD_ACTS_STATES_H

#include <msgpack.h>
#include <stddef.h>
#include <stdint.h>

#include "stream/msgpack_util.h"
#include "stream/tensor.h"

/* Where each states record lies in some file: key -> [off, off + len). */
typedef struct {
    uint64_t *key, *off, *len;
    unsigned char *used;
    size_t cap, n;
} StatesIndex;

void states_index_init(StatesIndex *ix);
void states_index_free(StatesIndex *ix);
/* 1 with *off, *len set if key is indexed, else 0. */
int states_index_find(const StatesIndex *ix, uint64_t key, uint64_t *off, uint64_t *len);
/* Indexes key (a key already there keeps its first place). */
void states_index_put(StatesIndex *ix, uint64_t key, uint64_t off, uint64_t len);

uint64_t states_key(const char *model_id, DType dtype, const int *layers, int n_layers,
                    const int32_t *ids, int n);
void states_key_format(uint64_t key, char out[17]);
/* The key of a states record, or under field of an acts record; -1 with a
 * message if it is not 16 hex digits. */
int states_key_get(const msgpack_object *rec, const char *field, uint64_t *key);

/* True if rec is an acts record that names shared states. */
int acts_record_is_shared(const msgpack_object *rec);
/* A states record: checks its fields (key, ids, hidden) and returns its key. */
int states_record_check(const msgpack_object *rec, uint64_t *key);

/* The self-contained form of a shared acts record: the states named by its
 * base_states and source_states are read from fd at the places ix gives
 * and put back as base_hidden and source_hidden.  *res points into out
 * (destroy with mp_copy_destroy).  -1 with a message on a missing key,
 * unreadable states or ids that do not match. */
int states_resolve(const StatesIndex *ix, int fd, const msgpack_object *acts, MpCopy *out,
                   const msgpack_object **res);

/* Reads the bytes [off, off + n) of fd into a fresh buffer (hd_malloc);
 * NULL with a message naming path on a short or failed read. */
char *states_pread(int fd, uint64_t off, size_t n, const char *path);
/* Appends all n bytes at the end offset *at of fd and advances *at. */
int states_pwrite(int fd, const char *p, size_t n, uint64_t *at, const char *path);
/* Packs rec into sb (cleared first) and appends those bytes at the end
 * offset *at of fd, advancing *at; *where is where they start.  The one
 * way the states store (record_input) and hd-train's spool (acts_set) gain
 * a record, so the offsets their indexes hold are msgpack-c's packing. */
int states_append_record(int fd, msgpack_sbuffer *sb, const msgpack_object *rec, uint64_t *at,
                         uint64_t *where, const char *path);

#endif
