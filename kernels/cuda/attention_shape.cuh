/* What the two attention paths share: the shape, the offsets of a head's
 * rows in the row-major layouts of kernels/cpu/attention.h, and the entry
 * points of the cuBLAS path (attention_gemm.cu) that attention.cu picks
 * for longer query blocks. */
#ifndef HD_KERNELS_CUDA_ATTENTION_SHAPE_CUH
#define HD_KERNELS_CUDA_ATTENTION_SHAPE_CUH

#include <stddef.h>

struct AttShape {
    int b, Tq, Tk, Tcap, H, Hkv, hd;
    float div; /* sqrt(head_dim), computed in double as transformers does */
};

/* Start of the head vector of query (r, i, h), of key/value (r, j, kvh),
 * and of the att row (r, h, i). */
__host__ __device__ inline size_t q_offset(const AttShape &s, int r, int i, int h)
{
    return ((size_t)r * s.Tq + i) * s.H * s.hd + (size_t)h * s.hd;
}
__host__ __device__ inline size_t kv_offset(const AttShape &s, int r, int j, int kvh)
{
    return ((size_t)r * s.Tcap + j) * s.Hkv * s.hd + (size_t)kvh * s.hd;
}
__host__ __device__ inline size_t att_offset(const AttShape &s, int r, int h, int i)
{
    return (((size_t)r * s.H + h) * s.Tq + i) * s.Tk;
}

/* The cuBLAS path: 0, or -1 after hd_fail.  Same arguments as the public ops. */
int attention_forward_gemm(float *out, float *att, const float *q, const float *k, const float *v,
                           const int *key_mask, const AttShape &s);
int attention_backward_gemm(float *dq, float *dk, float *dv, const float *dout, const float *att,
                            const float *q, const float *k, const float *v, const AttShape &s);

#endif
