#include "stream/record_limit.h"
#include "base/error.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <msgpack.h>
#include <stdio.h>
#include <stdlib.h>

/* Far above any memory, and far enough below 2^64 that the scan's sums
 * (bytes seen + payload still to come + values still to come) cannot wrap. */
#define LIMIT_MAX ((uint64_t)1 << 60)

int record_limit_parse(const char *text, uint64_t *out)
{
    if (!isdigit((unsigned char)text[0])) return -1;
    char *end;
    errno = 0;
    unsigned long long v = strtoull(text, &end, 10);
    if (errno) return -1;
    int shift = 0;
    switch (toupper((unsigned char)*end)) {
    case 'K': shift = 10; end++; break;
    case 'M': shift = 20; end++; break;
    case 'G': shift = 30; end++; break;
    case 'T': shift = 40; end++; break;
    default: break;
    }
    if (*end || v == 0 || v > (LIMIT_MAX >> shift)) return -1;
    *out = (uint64_t)v << shift;
    return 0;
}

int record_limit_get(uint64_t *limit)
{
    const char *env = getenv("HD_MAX_RECORD");
    *limit = RECORD_LIMIT_DEFAULT;
    if (!env || !*env) return 0;
    if (record_limit_parse(env, limit) < 0)
        return hd_fail("HD_MAX_RECORD: expected a size in bytes such as 4G, 512M or 65536, got '%.40s'", env);
    return 0;
}

void record_limit_format(uint64_t bytes, char *out, size_t size)
{
    static const char *const units[] = {"TiB", "GiB", "MiB", "KiB"};
    for (int i = 0; i < 4; i++) {
        int shift = 40 - 10 * i;
        if (bytes >= ((uint64_t)1 << shift) && bytes % ((uint64_t)1 << shift) == 0) {
            snprintf(out, size, "%" PRIu64 " %s", bytes >> shift, units[i]);
            return;
        }
    }
    snprintf(out, size, "%" PRIu64 " bytes", bytes);
}

void record_scan_init(RecordScan *s, uint64_t limit)
{
    *s = (RecordScan){.limit = limit};
}

/* msgpack-c gives every value of an array or map a msgpack_object as soon
 * as it reads the container's header: the record's tree costs that much
 * memory before its bytes arrive, so it counts against the limit too. */
static int over(const RecordScan *s)
{
    return s->rec_bytes + s->skip + s->pending > s->limit ||
           s->rec_values > s->limit / sizeof(msgpack_object);
}

/* A length-prefixed value: its length has been read. */
static void apply_length(RecordScan *s, uint64_t len)
{
    unsigned char b = s->type;
    if (b == 0xc7 || b == 0xc8 || b == 0xc9) s->skip = len + 1;          /* ext: type byte + data */
    else if (b == 0xdc || b == 0xdd) s->pending += len, s->rec_values += len;
    else if (b == 0xde || b == 0xdf) s->pending += 2 * len, s->rec_values += 2 * len;
    else s->skip = len;                                                    /* str, bin */
}

/* One type byte: what follows it. */
static void start_value(RecordScan *s, unsigned char b)
{
    static const unsigned char fixed[] = {   /* 0xc0..0xdf: payload bytes, 0xff: a length follows */
        0, 0xfe, 0, 0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 4, 8, 1, 2, 4, 8,
        1, 2, 4, 8, 2, 3, 5, 9, 17, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
    static const unsigned char length_bytes[] = {   /* for the 0xff entries above */
        [0x04] = 1, [0x05] = 2, [0x06] = 4, [0x07] = 1, [0x08] = 2, [0x09] = 4,
        [0x19] = 1, [0x1a] = 2, [0x1b] = 4, [0x1c] = 2, [0x1d] = 4, [0x1e] = 2, [0x1f] = 4};
    if (b <= 0x7f || b >= 0xe0) return;                                   /* fixint */
    if (b <= 0x8f) { s->pending += 2u * (b & 0x0f); s->rec_values += 2u * (b & 0x0f); return; }
    if (b <= 0x9f) { s->pending += b & 0x0f; s->rec_values += b & 0x0f; return; }
    if (b <= 0xbf) { s->skip = b & 0x1f; return; }                        /* fixstr */
    unsigned char f = fixed[b - 0xc0];
    if (f == 0xfe) { s->off = 1; return; }                                /* 0xc1: never used */
    if (f != 0xff) { s->skip = f; return; }
    s->type = b;
    s->head_need = length_bytes[b - 0xc0];
    s->head_have = 0;
    s->head_value = 0;
}

int record_scan_feed(RecordScan *s, const unsigned char *p, size_t n)
{
    size_t i = 0;
    s->stop = n;
    while (i < n && !s->off) {
        size_t at = i;
        if (s->skip) {
            uint64_t take = s->skip < n - i ? s->skip : n - i;
            s->skip -= take;
            s->rec_bytes += take;
            i += take;
        } else if (s->head_need) {
            s->head_value = s->head_value << 8 | p[i++];
            s->rec_bytes++;
            if (++s->head_have == s->head_need) {
                s->head_need = 0;
                apply_length(s, s->head_value);
            }
        } else {
            if (s->pending == 0) {   /* a new record: one value, the map */
                s->pending = 1;
                s->rec_bytes = s->rec_values = 0;
            }
            s->pending--;
            s->rec_bytes++;
            start_value(s, p[i++]);
        }
        if (over(s)) {
            s->off = 1;
            s->stop = at;
            return -1;
        }
        if (!s->skip && !s->head_need && s->pending == 0) s->records++;
    }
    return 0;
}
