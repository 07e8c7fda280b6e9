/* SHA-256 (FIPS 180-4), for provenance: data-file checksums in headers,
 * model config hashes, and checking downloaded model files. */
#ifndef HD_SHA256_H
#define HD_SHA256_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
    uint32_t state[8];
    uint64_t length;      /* bytes hashed so far */
    uint8_t block[64];
    size_t fill;
} Sha256;

void sha256_init(Sha256 *s);
void sha256_update(Sha256 *s, const void *data, size_t n);
void sha256_final(Sha256 *s, uint8_t digest[32]);
/* Lower-case hex of the digest of one buffer: out holds 65 bytes. */
void sha256_hex(const void *data, size_t n, char out[65]);
/* Same for a whole file; -1 (hd_fail) when it cannot be read. */
int sha256_file_hex(const char *path, char out[65]);

#endif
