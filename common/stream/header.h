/* The stream header (hyperdas-records(5) HEADER): format, version, kind,
 * tool, tool_version, argv, created, inputs.  `created` honours
 * SOURCE_DATE_EPOCH so that output can be byte-reproducible. */
#ifndef HD_HEADER_H
#define HD_HEADER_H

#include <msgpack.h>

#include "stream/map_writer.h"

#define HD_FORMAT_VERSION 1

/* Packs a header map holding the eight standard fields followed by
 * n_extra key/value pairs that the caller packs next.  inputs are the
 * headers of the upstream streams (may be NULL when n_inputs is 0). */
void header_pack_begin(msgpack_packer *pk, const char *kind,
                       const msgpack_object *const *inputs, int n_inputs, int n_extra);

/* The same header as a MapWriter that counts the fields the caller adds
 * after the standard ones; map_end(m) writes it to pk. */
void header_begin(MapWriter *m, msgpack_packer *pk, const char *kind,
                  const msgpack_object *const *inputs, int n_inputs);

/* Checks a header record: format "hyperdas" and a supported version. */
int header_check(const msgpack_object *h);

#endif
