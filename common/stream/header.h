/* The stream header (hyperdas-records(5) HEADER): format, version, kind,
 * tool, tool_version, argv, created, inputs.  `created` honours
 * SOURCE_DATE_EPOCH so that output can be byte-reproducible. */
#ifndef HD_HEADER_H
#define HD_HEADER_H

#include <msgpack.h>

#include "stream/map_writer.h"

#define HD_FORMAT_VERSION 1

/* Begins a header map with the standard fields; the caller adds its own
 * after them (the MapWriter counts them) and map_end(m) writes it to pk.
 * inputs are the headers of the upstream streams (may be NULL when
 * n_inputs is 0). */
void header_begin(MapWriter *m, msgpack_packer *pk, const char *kind,
                  const msgpack_object *const *inputs, int n_inputs);

/* A whole header of only the standard fields; 0, or -1 when pk's writer
 * failed (map_end). */
int header_pack(msgpack_packer *pk, const char *kind, const msgpack_object *const *inputs, int n_inputs);

/* Checks a header record: format "hyperdas" and a supported version. */
int header_check(const msgpack_object *h);

#endif
