/* MaskSelect's tempered logistic on the GPU: kernels/cpu/sigmoid.c's
 * formulas in its order; CUDA's expf is within 2 ulp of glibc's. */
#include "cuda/cuda_hypernet_ops.h"

__global__ void sigmoid_forward_kernel(float *out, const float *in, float temperature, size_t n)
{
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n;
         i += (size_t)gridDim.x * blockDim.x)
        out[i] = 1.0f / (1.0f + expf(-in[i] / temperature));
}

__global__ void sigmoid_backward_kernel(float *din, const float *dout, const float *out,
                                        float temperature, size_t n)
{
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n;
         i += (size_t)gridDim.x * blockDim.x)
        din[i] += dout[i] * out[i] * (1.0f - out[i]) / temperature;
}

extern "C" int sigmoid_forward_cuda(float *out, const float *in, float temperature, size_t n)
{
    if (n == 0) return 0;
    sigmoid_forward_kernel<<<hd_cuda_grid_for(n, 256), 256>>>(out, in, temperature, n);
    return hd_cuda_launched("sigmoid_forward_cuda");
}

extern "C" int sigmoid_backward_cuda(float *din, const float *dout, const float *out,
                                     float temperature, size_t n)
{
    if (n == 0) return 0;
    sigmoid_backward_kernel<<<hd_cuda_grid_for(n, 256), 256>>>(din, dout, out, temperature, n);
    return hd_cuda_launched("sigmoid_backward_cuda");
}
