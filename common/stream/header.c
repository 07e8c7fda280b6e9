#include "stream/header.h"
#include "base/cli.h"
#include "base/error.h"
#include "stream/msgpack_util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* ISO-8601 UTC time of now, or of SOURCE_DATE_EPOCH when it is set, so that
 * two runs with the same inputs can produce the same bytes. */
static void created_time(char out[32])
{
    time_t t = time(NULL);
    const char *sde = getenv("SOURCE_DATE_EPOCH");
    if (sde && *sde) {
        char *end;
        long long v = strtoll(sde, &end, 10);
        if (*end == 0 && v >= 0) t = (time_t)v;
    }
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(out, 32, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

#define HEADER_PAIRS 9

/* The HEADER_PAIRS standard pairs. */
static void pack_fields(msgpack_packer *pk, const char *kind, const msgpack_object *const *inputs,
                        int n_inputs)
{
    char created[32];
    created_time(created);
    mp_pack_str(pk, "t");
    mp_pack_str(pk, "header");
    mp_pack_str(pk, "format");
    mp_pack_str(pk, "hyperdas");
    mp_pack_str(pk, "version");
    msgpack_pack_int(pk, HD_FORMAT_VERSION);
    mp_pack_str(pk, "kind");
    mp_pack_str(pk, kind);
    mp_pack_str(pk, "tool");
    mp_pack_str(pk, hd_progname);
    mp_pack_str(pk, "tool_version");
    mp_pack_str(pk, HD_VERSION);
    mp_pack_str(pk, "argv");
    int argc = hd_cli_argc();
    char **argv = hd_cli_argv();
    msgpack_pack_array(pk, argc);
    for (int i = 0; i < argc; i++) mp_pack_str(pk, argv[i]);
    mp_pack_str(pk, "created");
    mp_pack_str(pk, created);
    mp_pack_str(pk, "inputs");
    msgpack_pack_array(pk, n_inputs);
    for (int i = 0; i < n_inputs; i++) msgpack_pack_object(pk, *inputs[i]);
}

void header_begin(MapWriter *m, msgpack_packer *pk, const char *kind,
                  const msgpack_object *const *inputs, int n_inputs)
{
    map_begin(m, pk);
    pack_fields(map_pairs(m, HEADER_PAIRS), kind, inputs, n_inputs);
}

int header_pack(msgpack_packer *pk, const char *kind, const msgpack_object *const *inputs, int n_inputs)
{
    MapWriter m;
    header_begin(&m, pk, kind, inputs, n_inputs);
    return map_end(&m);
}

int header_check(const msgpack_object *h)
{
    if (!mp_is_str(mp_map_get(h, "format"), "hyperdas"))
        return hd_fail("header: format is not 'hyperdas'");
    int64_t v;
    if (mp_get_int64(mp_map_get(h, "version"), &v) < 0)
        return hd_fail("header: no integer 'version'");
    if (v < 1 || v > HD_FORMAT_VERSION)
        return hd_fail("unsupported stream version %lld (this build reads version %d)",
                       (long long)v, HD_FORMAT_VERSION);
    return 0;
}
