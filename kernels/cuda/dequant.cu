/* Weight formats -> float32 on the GPU, bit-identical to kernels/cpu/dequant.c.
 *
 * The raw file bytes are uploaded as they are and expanded here, so a
 * quantised model crosses the PCIe bus at its small size.  One thread per
 * output value: writes are coalesced, and the few bytes of a block header
 * that 32 neighbouring threads share come from L1.  Bytes are read one at a
 * time because the 18-, 20- and 34-byte blocks leave the f16 scales
 * unaligned.  The half -> float conversion is done in integers, exactly as
 * kernels/float16.c does, so that even NaN payloads come out the same. */
#include "cuda/cuda_ops.h"

extern "C" {
#include "cpu/dequant.h"
#include "kernel_error.h"
}

__device__ inline unsigned int read_u16(const unsigned char *p)
{
    return (unsigned int)p[0] | ((unsigned int)p[1] << 8);
}

__device__ inline float f16_bits_to_f32(unsigned int h)
{
    unsigned int sign = (h & 0x8000u) << 16, exp = (h >> 10) & 0x1fu, man = h & 0x3ffu, u;
    if (exp == 0x1f) {
        u = sign | 0x7f800000u | (man << 13); /* inf or NaN */
    } else if (exp != 0) {
        u = sign | ((exp + 112) << 23) | (man << 13); /* rebias 15 -> 127 */
    } else if (man == 0) {
        u = sign;
    } else {
        /* subnormal half: shift the leading 1 up to bit 10 (e shifts past the first) */
        int shifts = __clz(man) - 21; /* man < 0x400 has at least 22 leading zeros */
        int e = shifts - 1;
        man <<= shifts;
        u = sign | ((unsigned int)(112 - e) << 23) | ((man & 0x3ffu) << 13);
    }
    return __uint_as_float(u);
}

__device__ inline float bf16_bits_to_f32(unsigned int h) { return __uint_as_float(h << 16); }

__global__ void dequant_f16_kernel(const unsigned char *src, float *dst, size_t n)
{
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n;
         i += (size_t)gridDim.x * blockDim.x)
        dst[i] = f16_bits_to_f32(read_u16(src + 2 * i));
}

__global__ void dequant_bf16_kernel(const unsigned char *src, float *dst, size_t n)
{
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n;
         i += (size_t)gridDim.x * blockDim.x)
        dst[i] = bf16_bits_to_f32(read_u16(src + 2 * i));
}

/* Within a block of 32: value j < 16 is the low nibble of qs[j], value
 * j >= 16 the high nibble of qs[j - 16]. */
__global__ void dequant_q4_0_kernel(const unsigned char *src, float *dst, size_t n)
{
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n;
         i += (size_t)gridDim.x * blockDim.x) {
        const unsigned char *b = src + (i / QK4_0) * Q4_0_BLOCK_BYTES;
        const int j = (int)(i % QK4_0);
        const float d = f16_bits_to_f32(read_u16(b));
        const unsigned int q = b[2 + (j % 16)];
        const int nib = j < 16 ? (int)(q & 15) : (int)(q >> 4);
        dst[i] = (float)(nib - 8) * d;
    }
}

__global__ void dequant_q4_1_kernel(const unsigned char *src, float *dst, size_t n)
{
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n;
         i += (size_t)gridDim.x * blockDim.x) {
        const unsigned char *b = src + (i / QK4_1) * Q4_1_BLOCK_BYTES;
        const int j = (int)(i % QK4_1);
        const float d = f16_bits_to_f32(read_u16(b));
        const float m = f16_bits_to_f32(read_u16(b + 2));
        const unsigned int q = b[4 + (j % 16)];
        const int nib = j < 16 ? (int)(q & 15) : (int)(q >> 4);
        /* __fmul_rn/__fadd_rn: no fused multiply-add, so d*q rounds first, as on the CPU */
        dst[i] = __fadd_rn(__fmul_rn((float)nib, d), m);
    }
}

__global__ void dequant_q8_0_kernel(const unsigned char *src, float *dst, size_t n)
{
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n;
         i += (size_t)gridDim.x * blockDim.x) {
        const unsigned char *b = src + (i / QK8_0) * Q8_0_BLOCK_BYTES;
        const float d = f16_bits_to_f32(read_u16(b));
        const signed char q = (signed char)b[2 + i % QK8_0];
        dst[i] = (float)q * d;
    }
}

/* Round to nearest even in integers, NaN kept quiet: f32_to_bf16 of float16.h. */
__global__ void f32_to_bf16_kernel(uint16_t *dst, const float *src, size_t n)
{
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n;
         i += (size_t)gridDim.x * blockDim.x) {
        unsigned int u = __float_as_uint(src[i]);
        if ((u & 0x7fffffffu) > 0x7f800000u) {
            dst[i] = (uint16_t)((u >> 16) | 0x40u);
        } else {
            u += 0x7fffu + ((u >> 16) & 1u);
            dst[i] = (uint16_t)(u >> 16);
        }
    }
}

typedef void (*DequantKernel)(const unsigned char *, float *, size_t);

static int launch(DequantKernel kernel, const void *src, float *dst, size_t n, size_t block,
                  const char *who)
{
    if (n % block) return hd_fail("%s: %zu values is not a multiple of %zu", who, n, block);
    if (n == 0) return 0;
    kernel<<<hd_cuda_grid_for(n, 256), 256>>>((const unsigned char *)src, dst, n);
    return hd_cuda_launched(who);
}

extern "C" int dequant_f16_cuda(const void *src, float *dst, size_t n)
{
    return launch(dequant_f16_kernel, src, dst, n, 1, "dequant_f16_cuda");
}

extern "C" int dequant_bf16_cuda(const void *src, float *dst, size_t n)
{
    return launch(dequant_bf16_kernel, src, dst, n, 1, "dequant_bf16_cuda");
}

extern "C" int dequant_q4_0_cuda(const void *src, float *dst, size_t n)
{
    return launch(dequant_q4_0_kernel, src, dst, n, QK4_0, "dequant_q4_0_cuda");
}

extern "C" int dequant_q4_1_cuda(const void *src, float *dst, size_t n)
{
    return launch(dequant_q4_1_kernel, src, dst, n, QK4_1, "dequant_q4_1_cuda");
}

extern "C" int dequant_q8_0_cuda(const void *src, float *dst, size_t n)
{
    return launch(dequant_q8_0_kernel, src, dst, n, QK8_0, "dequant_q8_0_cuda");
}

extern "C" int f32_to_bf16_cuda(uint16_t *dst, const float *src, size_t n)
{
    if (n == 0) return 0;
    f32_to_bf16_kernel<<<hd_cuda_grid_for(n, 256), 256>>>(dst, src, n);
    return hd_cuda_launched("f32_to_bf16_cuda");
}
