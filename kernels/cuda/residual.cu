/* The residual connection on the GPU: out = a + b, and its backward that
 * hands dout to both branches.  Pure bandwidth: one float in, one out per
 * element per operand, so the kernels are plain grid-stride loops. */
#include "cuda/cuda_ops.h"

__global__ void residual_forward_kernel(float *out, const float *a, const float *b, size_t n)
{
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n;
         i += (size_t)gridDim.x * blockDim.x)
        out[i] = a[i] + b[i];
}

/* Both gradients in one pass, so dout is read once. */
__global__ void residual_backward_kernel(float *da, float *db, const float *dout, size_t n)
{
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n;
         i += (size_t)gridDim.x * blockDim.x) {
        const float g = dout[i];
        if (da) da[i] += g;
        if (db) db[i] += g;
    }
}

extern "C" int residual_forward_cuda(float *out, const float *a, const float *b, size_t n)
{
    if (n == 0) return 0;
    residual_forward_kernel<<<hd_cuda_grid_for(n, 256), 256>>>(out, a, b, n);
    return hd_cuda_launched("residual_forward_cuda");
}

extern "C" int residual_backward_cuda(float *da, float *db, const float *dout, size_t n)
{
    if (n == 0 || (!da && !db)) return 0;
    residual_backward_kernel<<<hd_cuda_grid_for(n, 256), 256>>>(da, db, dout, n);
    return hd_cuda_launched("residual_backward_cuda");
}
