/* libFuzzer harness for the record reader, the tensor decoder, the JSON view
 * and the JSON-lines parser: any input must give records or one clean
 * error, never a crash, a leak or undefined behaviour. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "stream/json_view.h"
#include "stream/record_limit.h"
#include "stream/records.h"
#include "stream/tensor.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char path[] = "/tmp/fuzz-records-XXXXXX";
    int fd = mkstemp(path);
    if (fd < 0) return 0;
    if (write(fd, data, size) != (ssize_t)size) { close(fd); unlink(path); return 0; }
    close(fd);
    RecordReader *r = record_reader_open(path);
    if (r) {
        FILE *null = fopen("/dev/null", "w");
        JsonViewOptions opt = {.full_tensors = 1, .n_first = 4};
        const msgpack_object *rec;
        while (record_reader_next(r, &rec) == 1) json_view_write(null, rec, &opt);
        fclose(null);
        record_reader_close(r);
    }
    unlink(path);

    /* The reader's size scan must find the record boundaries msgpack-c
     * finds: over the whole values msgpack-c parses from the start, fed
     * in two pieces split anywhere, it counts the same records.  msgpack-c
     * is given only the bytes before any header that declares more than
     * the input could hold (it would allocate for that at once). */
    RecordScan scan;
    record_scan_init(&scan, 24 * (uint64_t)size + 24);
    record_scan_feed(&scan, data, size);
    size_t safe = scan.stop, off = 0, n_ok = 0, good = 0;
    msgpack_unpacked u;
    msgpack_unpacked_init(&u);
    while (msgpack_unpack_next(&u, (const char *)data, safe, &off) == MSGPACK_UNPACK_SUCCESS) {
        n_ok++;
        good = off;
    }
    msgpack_unpacked_destroy(&u);
    record_scan_init(&scan, (uint64_t)1 << 40);
    size_t cut = good ? data[0] % (good + 1) : 0;
    int rc = record_scan_feed(&scan, data, cut);
    if (rc == 0) rc = record_scan_feed(&scan, data + cut, good - cut);
    if (rc == 0 && !scan.off && scan.records != (long long)n_ok) abort();

    msgpack_sbuffer sb;
    msgpack_packer pk;
    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    json_line_to_record((const char *)data, size, &pk);
    msgpack_sbuffer_destroy(&sb);
    return 0;
}
