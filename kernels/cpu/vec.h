/* The two vector loops the attention kernels are made of, shared so that
 * causal self-attention and cross-attention vectorise the same way
 * (`omp simd` reductions over head_dim). */
#ifndef HD_KERNELS_CPU_VEC_H
#define HD_KERNELS_CPU_VEC_H

static inline float vec_dot(const float *a, const float *b, int n)
{
    float s = 0.0f;
#pragma omp simd reduction(+ : s)
    for (int i = 0; i < n; i++) s += a[i] * b[i];
    return s;
}

/* y += a * x */
static inline void vec_axpy(float *y, float a, const float *x, int n)
{
#pragma omp simd
    for (int i = 0; i < n; i++) y[i] += a * x[i];
}

#endif
