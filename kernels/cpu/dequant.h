/* Weight formats -> float32: the half-precision types and the three
 * llama.cpp block quantisations our models ship in.
 *
 * Block layouts (ggml, little-endian, packed, no padding):
 *   Q4_0: 32 values in 18 bytes {f16 d; u8 qs[16]};
 *         value j (j<16) = ((qs[j] & 15) - 8)·d, value j+16 = ((qs[j] >> 4) - 8)·d
 *   Q4_1: 32 values in 20 bytes {f16 d; f16 m; u8 qs[16]};
 *         value j = (qs[j] & 15)·d + m, value j+16 = (qs[j] >> 4)·d + m
 *   Q8_0: 32 values in 34 bytes {f16 d; i8 qs[32]}; value j = qs[j]·d
 * The arithmetic order (d·q, then + m) is the one gguf-py and ggml use, so
 * the results are bit-identical to theirs. Sources may be unaligned. */
#ifndef HD_DEQUANT_H
#define HD_DEQUANT_H

#include <stddef.h>

enum { QK4_0 = 32, QK4_1 = 32, QK8_0 = 32 };
enum { Q4_0_BLOCK_BYTES = 18, Q4_1_BLOCK_BYTES = 20, Q8_0_BLOCK_BYTES = 34 };

/* n values; for the block types n must be a multiple of 32. */
void dequant_f16(const void *src, float *dst, size_t n);
void dequant_bf16(const void *src, float *dst, size_t n);
void dequant_q4_0(const void *src, float *dst, size_t n);
void dequant_q4_1(const void *src, float *dst, size_t n);
void dequant_q8_0(const void *src, float *dst, size_t n);

#endif
