/* The global gradient norm on the GPU (kernels/cpu/grad_clip.c): squares
 * summed in double, first per block over a grid-stride slice, then the
 * block partials in block order by one block.  The grid size depends only
 * on n, so the sum's order, and the result, are the same on every run. */
#include <math.h>

#include "cuda/cuda_hypernet_ops.h"
#include "cuda/reduce.cuh"

enum { NORM_BLOCK = 256, NORM_MAX_BLOCKS = 1024 };

__global__ void sum_squares_kernel(double *partial, const float *g, size_t n)
{
    __shared__ double shared[32];
    double s = 0.0;
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n;
         i += (size_t)gridDim.x * blockDim.x)
        s += (double)g[i] * g[i];
    s = block_sum(s, shared);
    if (threadIdx.x == 0) partial[blockIdx.x] = s;
}

__global__ void sum_partials_kernel(double *out, const double *partial, int n)
{
    __shared__ double shared[32];
    double s = 0.0;
    for (int i = threadIdx.x; i < n; i += blockDim.x) s += partial[i];
    s = block_sum(s, shared);
    if (threadIdx.x == 0) *out = s;
}

extern "C" int grad_norm_cuda(const float *g, size_t n, double *norm)
{
    *norm = 0.0;
    if (n == 0) return 0;
    size_t want = (n + NORM_BLOCK - 1) / NORM_BLOCK;
    int blocks = (int)(want < NORM_MAX_BLOCKS ? want : NORM_MAX_BLOCKS);
    double *partial = (double *)hd_cuda_scratch(0, (size_t)(blocks + 1) * sizeof(double));
    if (!partial) return -1;
    sum_squares_kernel<<<blocks, NORM_BLOCK>>>(partial, g, n);
    if (hd_cuda_launched("grad_norm_cuda")) return -1;
    sum_partials_kernel<<<1, NORM_BLOCK>>>(partial + blocks, partial, blocks);
    if (hd_cuda_launched("grad_norm_cuda (partials)")) return -1;
    double ss = 0.0;
    if (hd_cuda_download(&ss, partial + blocks, sizeof ss)) return -1;
    *norm = sqrt(ss);
    return 0;
}
