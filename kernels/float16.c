#include "float16.h"

float f16_to_f32(uint16_t h)
{
    uint32_t sign = (uint32_t)(h & 0x8000) << 16;
    uint32_t exp = (h >> 10) & 0x1f;
    uint32_t man = h & 0x3ff;
    uint32_t u;
    if (exp == 0x1f) {
        u = sign | 0x7f800000 | (man << 13);             /* inf or NaN */
    } else if (exp != 0) {
        u = sign | ((exp + 112) << 23) | (man << 13);    /* normal: rebias 15 -> 127 */
    } else if (man == 0) {
        u = sign;                                        /* signed zero */
    } else {
        /* subnormal half: normalise the mantissa into a float32 normal */
        int e = -1;
        do { man <<= 1; e++; } while (!(man & 0x400));
        u = sign | ((uint32_t)(112 - e) << 23) | ((man & 0x3ff) << 13);
    }
    float f;
    memcpy(&f, &u, 4);
    return f;
}

uint16_t f32_to_f16(float f)
{
    uint32_t u;
    memcpy(&u, &f, 4);
    uint16_t sign = (uint16_t)((u >> 16) & 0x8000);
    uint32_t absu = u & 0x7fffffff;
    if (absu > 0x7f800000) return sign | 0x7e00;                 /* NaN */
    if (absu >= 0x477ff000) return sign | 0x7c00;                /* rounds to inf */
    if (absu < 0x38800000) {                                     /* half subnormal or zero */
        if (absu < 0x33000000) return sign;                      /* below half of min subnormal */
        uint32_t exp = absu >> 23;
        uint32_t man = (absu & 0x7fffff) | 0x800000;
        int shift = 126 - (int)exp;                              /* 14..24 */
        uint32_t half = man >> shift;
        uint32_t rem = man & ((1u << shift) - 1);
        uint32_t mid = 1u << (shift - 1);
        if (rem > mid || (rem == mid && (half & 1))) half++;
        return sign | (uint16_t)half;
    }
    uint32_t r = absu - 0x38000000;                              /* rebias 127 -> 15 */
    r += 0xfff + ((r >> 13) & 1);                                /* nearest even */
    return sign | (uint16_t)(r >> 13);
}
