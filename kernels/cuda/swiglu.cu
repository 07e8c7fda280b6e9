/* The gated activation of the Llama MLP on the GPU: out = silu(gate) * up.
 * Same formulas, in the same order, as kernels/cpu/swiglu.c; expf is
 * CUDA's accurate one (no --use_fast_math), within 2 ulp of glibc's. */
#include "cuda/cuda_ops.h"

__global__ void swiglu_forward_kernel(float *out, const float *gate, const float *up, size_t n)
{
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n;
         i += (size_t)gridDim.x * blockDim.x) {
        const float g = gate[i];
        /* x / (1 + exp(-x)): for x -> -inf the quotient is a clean -0, never NaN. */
        out[i] = g / (1.0f + expf(-g)) * up[i];
    }
}

__global__ void swiglu_backward_kernel(float *dgate, float *dup, const float *dout,
                                       const float *gate, const float *up, size_t n)
{
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n;
         i += (size_t)gridDim.x * blockDim.x) {
        const float g = gate[i];
        const float sig = 1.0f / (1.0f + expf(-g));
        if (dgate) dgate[i] += dout[i] * up[i] * sig * (1.0f + g * (1.0f - sig));
        if (dup) dup[i] += dout[i] * (g * sig);
    }
}

extern "C" int swiglu_forward_cuda(float *out, const float *gate, const float *up, size_t n)
{
    if (n == 0) return 0;
    swiglu_forward_kernel<<<hd_cuda_grid_for(n, 256), 256>>>(out, gate, up, n);
    return hd_cuda_launched("swiglu_forward_cuda");
}

extern "C" int swiglu_backward_cuda(float *dgate, float *dup, const float *dout, const float *gate,
                                    const float *up, size_t n)
{
    if (n == 0 || (!dgate && !dup)) return 0;
    swiglu_backward_kernel<<<hd_cuda_grid_for(n, 256), 256>>>(dgate, dup, dout, gate, up, n);
    return hd_cuda_launched("swiglu_backward_cuda");
}
