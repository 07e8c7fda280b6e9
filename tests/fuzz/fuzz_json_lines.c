/* libFuzzer harness for hd-cat --to-records: the input is a file of JSON
 * lines, each parsed by json_line_to_record and, as hd-cat does, checked
 * with record_check.  Any line gives a record or one clean error, never a
 * crash, leak or UB.  A record also survives the way back and forth: its
 * JSON view (full tensors) read again gives a record whose own view reads
 * back to the same bytes (the first pass may normalise, e.g. 1.0 -> 1). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "stream/json_view.h"
#include "stream/records.h"

/* text -> packed record in sb (cleared first); -1 when it is refused. */
static int to_record(const char *text, size_t len, msgpack_sbuffer *sb)
{
    msgpack_packer pk;
    msgpack_sbuffer_clear(sb);
    msgpack_packer_init(&pk, sb, msgpack_sbuffer_write);
    return json_line_to_record(text, len, &pk);
}

/* The packed record's JSON view (malloc'd, *len bytes); NULL when the
 * bytes are not one whole msgpack value or the view refuses it. */
static char *view_of(const msgpack_sbuffer *sb, size_t *len)
{
    msgpack_unpacked u;
    msgpack_unpacked_init(&u);
    size_t off = 0;
    char *text = NULL;
    if (msgpack_unpack_next(&u, sb->data, sb->size, &off) != MSGPACK_UNPACK_SUCCESS || off != sb->size)
        abort();   /* json_line_to_record packed something that is not one value */
    FILE *out = open_memstream(&text, len);
    JsonViewOptions opt = {.full_tensors = 1, .n_first = 4};
    int rc = out ? json_view_write(out, &u.data, &opt) : -1;
    if (out) fclose(out);
    msgpack_unpacked_destroy(&u);
    if (rc < 0) {
        free(text);
        return NULL;
    }
    return text;
}

static void one_line(const char *line, size_t len)
{
    msgpack_sbuffer a, b;
    msgpack_sbuffer_init(&a);
    msgpack_sbuffer_init(&b);
    if (to_record(line, len, &a) == 0) {
        msgpack_unpacked u;
        msgpack_unpacked_init(&u);
        if (msgpack_unpack_next(&u, a.data, a.size, NULL) == MSGPACK_UNPACK_SUCCESS)
            (void)record_check(&u.data);
        msgpack_unpacked_destroy(&u);

        size_t n1, n2;
        char *v1 = view_of(&a, &n1);
        if (v1 && to_record(v1, n1, &a) == 0) {
            char *v2 = view_of(&a, &n2);
            if (!v2 || to_record(v2, n2, &b) != 0) abort();   /* its own view must read back */
            if (a.size != b.size || memcmp(a.data, b.data, a.size) != 0) abort();
            free(v2);
        }
        free(v1);
    }
    msgpack_sbuffer_destroy(&a);
    msgpack_sbuffer_destroy(&b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* lines as hd-cat reads them: split at '\n' (hd-cat skips blank ones) */
    const char *p = (const char *)data, *end = p + size;
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t len = (size_t)((nl ? nl : end) - p);
        one_line(p, len);
        p += len + 1;
    }
    return 0;
}
