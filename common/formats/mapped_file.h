/* A whole file mapped read-only into memory, for the model loaders: the
 * weights stay in the page cache and are read in place, never copied in
 * full just to be parsed. */
#ifndef HD_MAPPED_FILE_H
#define HD_MAPPED_FILE_H

#include <stddef.h>

typedef struct {
    const unsigned char *data;
    size_t size;
} MappedFile;

/* -1 (hd_fail, naming the path) when it cannot be opened or mapped.  An
 * empty file maps to data == NULL, size == 0 (the parsers reject it). */
int mapped_file_open(MappedFile *m, const char *path);
void mapped_file_close(MappedFile *m);

#endif
