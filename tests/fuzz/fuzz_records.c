/* libFuzzer harness for the record reader, the tensor decoder, the JSON view
 * and the JSON-lines parser: any input must give records or one clean
 * error, never a crash, a leak or undefined behaviour. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "json_view.h"
#include "records.h"
#include "tensor.h"

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

    msgpack_sbuffer sb;
    msgpack_packer pk;
    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    json_line_to_record((const char *)data, size, &pk);
    msgpack_sbuffer_destroy(&sb);
    return 0;
}
