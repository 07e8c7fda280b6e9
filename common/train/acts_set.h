/* The training examples of hd-train: acts records (cache-acts) held on disk
 * and read in any order, so that an epoch can be shuffled and a second
 * epoch needs no second pass over a pipe.
 *
 * Every input (files, stdin, gzip or not) is copied once, record by record,
 * into one uncompressed spool file whose record offsets are kept in memory;
 * a record is then read back with one pread.  Memory stays at one batch of
 * records whatever the data size (an acts record of SmolLM2 with every
 * layer is about 1.8 MB).  Shared hidden states (acts_states.h) stay shared
 * in the spool, each `states` record once, and a record is resolved to its
 * self-contained form when it is read.  The spool is named by the caller
 * (hd-train puts it in its checkpoint directory, so --resume can reuse it). */
#ifndef HD_ACTS_SET_H
#define HD_ACTS_SET_H

#include <stddef.h>
#include <stdint.h>

#include "stream/msgpack_util.h"

typedef struct ActsSet ActsSet;

/* Reads files[0..n) (n == 0: stdin) and spools their acts and states
 * records into spool_path; other record types are skipped.  NULL with a message naming
 * the input file and record on bad input. */
ActsSet *acts_set_build(char **files, int n, const char *spool_path);
/* Reopens an existing spool (its offsets are found by reading it once). */
ActsSet *acts_set_open_spool(const char *spool_path);
size_t acts_set_count(const ActsSet *s);
/* Record i (0-based) into c (destroy with mp_copy_destroy); -1 on error. */
int acts_set_get(ActsSet *s, size_t i, MpCopy *c, const msgpack_object **rec);
/* The input headers seen while spooling (none for a reopened spool). */
int acts_set_n_headers(const ActsSet *s);
const msgpack_object *const *acts_set_headers(const ActsSet *s);
const char *acts_set_spool_path(const ActsSet *s);
void acts_set_close(ActsSet *s);

#endif
