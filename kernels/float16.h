/* IEEE half (f16) and bfloat16 <-> float32, bit-exact in both directions
 * for every finite value, with round-to-nearest-even on the way down.
 * Shared by the record tensors, the model loaders and the kernels. */
#ifndef HD_FLOAT16_H
#define HD_FLOAT16_H

#include <stdint.h>
#include <string.h>

static inline float bf16_to_f32(uint16_t h)
{
    uint32_t u = (uint32_t)h << 16;
    float f;
    memcpy(&f, &u, 4);
    return f;
}

static inline uint16_t f32_to_bf16(float f)
{
    uint32_t u;
    memcpy(&u, &f, 4);
    if ((u & 0x7fffffff) > 0x7f800000) return (uint16_t)((u >> 16) | 0x40); /* quiet NaN */
    u += 0x7fff + ((u >> 16) & 1);   /* round to nearest, ties to even */
    return (uint16_t)(u >> 16);
}

float f16_to_f32(uint16_t h);
uint16_t f32_to_f16(float f);

#endif
