/* A msgpack map that counts its own keys.  The pairs are packed into a
 * scratch buffer; map_end writes the map header with the number of keys
 * actually added, then the pairs, in the order they were added.  So no
 * caller hand-counts a map's size, and a key added under a condition is
 * counted by adding it.
 *
 *   MapWriter m;
 *   map_begin(&m, pk);
 *   map_str(&m, "kind", "pairs");
 *   msgpack_pack_array(map_key(&m, "n"), 0);  (any value: one object)
 *   map_end(&m);
 *
 * A map inside the map: map_begin(&inner, map_key(&m, "filter")). */
#ifndef HD_MAP_WRITER_H
#define HD_MAP_WRITER_H

#include <msgpack.h>
#include <stdint.h>

typedef struct {
    msgpack_packer *out; /* where map_end writes the map */
    msgpack_sbuffer buf; /* the pairs so far */
    msgpack_packer pk;   /* packs into buf */
    uint32_t n;          /* pairs so far */
} MapWriter;

void map_begin(MapWriter *m, msgpack_packer *out);
/* Packs key and counts the pair; the caller packs exactly one value into
 * the packer returned. */
msgpack_packer *map_key(MapWriter *m, const char *key);
/* n pairs that a function packs itself (its contract says how many, e.g.
 * the header's standard fields): the packer to hand it. */
msgpack_packer *map_pairs(MapWriter *m, uint32_t n);
/* A string value, nil when v is NULL. */
void map_str(MapWriter *m, const char *key, const char *v);
void map_int64(MapWriter *m, const char *key, int64_t v);
void map_uint64(MapWriter *m, const char *key, uint64_t v);
void map_double(MapWriter *m, const char *key, double v);
void map_bool(MapWriter *m, const char *key, int v);
/* A record rewritten as another type: "t": new_type, then every key of
 * rec except "t" and the n_skip keys in skip, in rec's order; the caller
 * adds its own keys after them.  Unknown keys are carried over, as
 * hyperdas-records(5) RECORDS requires of tools that forward records. */
void map_record_rewrite(MapWriter *m, const msgpack_object *rec, const char *new_type,
                        const char *const *skip, int n_skip);
/* Writes the map (header with the count, then the pairs) to out and frees
 * the scratch buffer; 0, or -1 when out's writer failed. */
int map_end(MapWriter *m);

#endif
