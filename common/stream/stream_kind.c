#include "stream/stream_kind.h"
#include "base/error.h"
#include "stream/msgpack_util.h"
#include "stream/records.h"

#include <string.h>
#include <sys/stat.h>

static int check(const char *where, const msgpack_object *h, const char *want)
{
    const msgpack_object *kind = mp_map_get(h, "kind");
    if (!kind || kind->type != MSGPACK_OBJECT_STR || mp_is_str(kind, want)) return 0;
    return hd_fail("%s: expected %s %s stream, got %.*s", where, strchr("aeiou", want[0]) ? "an" : "a", want,
                   (int)kind->via.str.size, kind->via.str.ptr);
}

int stream_kind_check_file(const char *path, const char *want)
{
    struct stat st;
    if (!path || !strcmp(path, "-") || stat(path, &st) != 0 || !S_ISREG(st.st_mode)) return 0;
    RecordReader *r = record_reader_open(path);
    if (!r) return 0;
    const msgpack_object *rec;
    int rc = 0;
    if (record_reader_next(r, &rec) == 1 && mp_is_str(mp_map_get(rec, "t"), "header"))
        rc = check(path, rec, want);
    record_reader_close(r);
    return rc;
}

int stream_kind_check_headers(const char *where, const msgpack_object *const *headers, int n,
                              const char *want)
{
    for (int i = 0; i < n; i++)
        if (check(where, headers[i], want) < 0) return -1;
    return 0;
}
