/* libFuzzer harness for what hd-plot trusts in a `score` record: parse one
 * msgpack record as a score example and, when it is accepted, add it to an
 * entity-aligned mean twice.  Checked: every accepted example's printable
 * strings are valid UTF-8 without control characters (so the SVG stays
 * valid XML), and every mean cell lies between the smallest and the
 * largest weight.  Any input gives that or one clean error. */
#include <msgpack.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "plot/aligned_mean.h"
#include "score/score_example.h"
#include "plot/svg.h"
#include "base/unicode.h"
#include "stream/record_limit.h"

static void check_printable(const char *s)
{
    size_t n = strlen(s);
    if (utf8_first_invalid((const uint8_t *)s, n) != n) abort();
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f) abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* the raw bytes as a label: whatever they are, the result is printable */
    char *label = visible_text((const char *)data, size < 256 ? size : 256, 12);
    check_printable(label);
    if (utf8_char_count(label) > 12) abort();
    free(label);

    msgpack_unpacked u;
    msgpack_unpacked_init(&u);
    /* as the tools' reader does (fuzz_records checks it): msgpack-c sees no
     * header that declares more values than the input could hold, since it
     * allocates for them at once (a 29-byte map header took 2 GB and 2 s) */
    RecordScan scan;
    record_scan_init(&scan, 24 * (uint64_t)size + 24);
    record_scan_feed(&scan, data, size);
    if (msgpack_unpack_next(&u, (const char *)data, scan.stop, NULL) != MSGPACK_UNPACK_SUCCESS) {
        msgpack_unpacked_destroy(&u);
        return 0;
    }
    ScoreExample e;
    if (score_example_parse(&u.data, &e) == 0) {
        check_printable(e.id);
        check_printable(e.mode);
        check_printable(e.label);
        for (int i = 0; i < e.S; i++) check_printable(e.source_tokens[i]);
        for (int i = 0; i < e.B; i++) check_printable(e.base_tokens[i]);
        float lo = e.weights[0], hi = e.weights[0];
        for (size_t i = 0; i < (size_t)(e.S + 1) * e.B; i++) {
            if (e.weights[i] < lo) lo = e.weights[i];
            if (e.weights[i] > hi) hi = e.weights[i];
        }
        AlignedMean m;
        aligned_mean_init(&m);
        aligned_mean_add(&m, e.weights, e.S, e.B, e.source_entity, e.base_entity);
        /* the same matrix again, aligned as if its entity were the first token */
        aligned_mean_add(&m, e.weights, e.S, e.B, 0, 0);
        size_t cells = (size_t)(aligned_mean_rows(&m) + 1) * aligned_mean_cols(&m);
        double *mean = malloc(cells * sizeof *mean);
        aligned_mean_result(&m, mean);
        for (size_t i = 0; i < cells; i++)
            if (mean[i] == mean[i] && (mean[i] < lo - 1e-3 * (hi - lo + 1) || mean[i] > hi + 1e-3 * (hi - lo + 1)))
                abort();
        free(mean);
        aligned_mean_free(&m);
    }
    score_example_free(&e);
    msgpack_unpacked_destroy(&u);
    return 0;
}
