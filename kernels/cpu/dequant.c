#include "cpu/dequant.h"

#include <stdint.h>

#include "float16.h"

static uint16_t read_u16(const uint8_t *p) { return (uint16_t)(p[0] | (p[1] << 8)); }

void dequant_f16(const void *src, float *dst, size_t n)
{
    const uint8_t *p = src;
    for (size_t i = 0; i < n; i++) dst[i] = f16_to_f32(read_u16(p + 2 * i));
}

void dequant_bf16(const void *src, float *dst, size_t n)
{
    const uint8_t *p = src;
    for (size_t i = 0; i < n; i++) dst[i] = bf16_to_f32(read_u16(p + 2 * i));
}

void dequant_q4_0(const void *src, float *dst, size_t n)
{
    const uint8_t *b = src;
    for (size_t blk = 0; blk < n / QK4_0; blk++, b += Q4_0_BLOCK_BYTES, dst += QK4_0) {
        const float d = f16_to_f32(read_u16(b));
        const uint8_t *qs = b + 2;
        float q[QK4_0];
        for (int j = 0; j < QK4_0 / 2; j++) q[j] = (float)((qs[j] & 15) - 8), q[j + QK4_0 / 2] = (float)((qs[j] >> 4) - 8);
        for (int j = 0; j < QK4_0; j++) dst[j] = q[j] * d;
    }
}

void dequant_q4_1(const void *src, float *dst, size_t n)
{
    const uint8_t *b = src;
    for (size_t blk = 0; blk < n / QK4_1; blk++, b += Q4_1_BLOCK_BYTES, dst += QK4_1) {
        const float d = f16_to_f32(read_u16(b)), m = f16_to_f32(read_u16(b + 2));
        const uint8_t *qs = b + 4;
        /* the nibbles first, then one straight pass the compiler vectorises
         * (twice the speed of the interleaved loop; the same d*q + m) */
        float q[QK4_1];
        for (int j = 0; j < QK4_1 / 2; j++) q[j] = (float)(qs[j] & 15), q[j + QK4_1 / 2] = (float)(qs[j] >> 4);
        for (int j = 0; j < QK4_1; j++) dst[j] = q[j] * d + m;
    }
}

void dequant_q8_0(const void *src, float *dst, size_t n)
{
    const uint8_t *b = src;
    for (size_t blk = 0; blk < n / QK8_0; blk++, b += Q8_0_BLOCK_BYTES, dst += QK8_0) {
        float d = f16_to_f32(read_u16(b));
        const int8_t *qs = (const int8_t *)(b + 2);
        for (int j = 0; j < QK8_0; j++) dst[j] = (float)qs[j] * d;
    }
}
