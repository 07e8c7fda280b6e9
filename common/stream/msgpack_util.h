/* Small helpers over msgpack-c: pack strings, look keys up in maps.  Kept
 * apart from the record stream so that tensor, header and tool code can
 * share them. */
#ifndef HD_MSGPACK_UTIL_H
#define HD_MSGPACK_UTIL_H

#include <msgpack.h>
#include <stdint.h>

void mp_pack_str(msgpack_packer *pk, const char *s);
void mp_pack_strn(msgpack_packer *pk, const char *s, size_t n);
/* A string or nil when s is NULL. */
void mp_pack_str_or_nil(msgpack_packer *pk, const char *s);
/* A key and its string value (nil when v is NULL): one pair of a map. */
void mp_pack_kv(msgpack_packer *pk, const char *k, const char *v);
/* Text that may not be valid UTF-8 (a token's bytes can hold part of a
 * character): a str when it is valid, else a bin with the same bytes, so
 * that every str of a stream is UTF-8 (Python's msgpack raw=False, jq and
 * JSON readers decode str as UTF-8 and fail on anything else). */
void mp_pack_text(msgpack_packer *pk, const char *s, size_t n);

/* The value under a string key of a map, or NULL (also when m is no map). */
const msgpack_object *mp_map_get(const msgpack_object *m, const char *key);
int mp_is_str(const msgpack_object *o, const char *s);
/* A NUL-terminated copy of a string object (hd_malloc), or NULL. */
char *mp_strdup(const msgpack_object *o);
/* Integer value of an int object; returns -1 (hd_fail) if o is not an int. */
int mp_get_int64(const msgpack_object *o, int64_t *out);
/* The record type, the string under "t", or NULL. */
const char *mp_record_type(const msgpack_object *rec, size_t *len);

/* A deep copy of an object that outlives the buffer it came from (msgpack-c
 * objects point into their unpack buffer, so the copy keeps its own). */
typedef struct {
    msgpack_unpacked unpacked;
    char *bytes;
} MpCopy;
const msgpack_object *mp_copy_init(MpCopy *c, const msgpack_object *o);
void mp_copy_destroy(MpCopy *c);

#endif
