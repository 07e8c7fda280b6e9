/* RMSNorm on the GPU: one block per row for the forward and for dinp, the
 * deterministic column sum of reduce.cuh for dweight.  The order of
 * operations is kernels/cpu/rmsnorm.c's: sum of squares in double, the row
 * scaled by rstd first, then by the weight. */
#include "cuda/cuda_ops.h"
#include "cuda/reduce.cuh"

extern "C" {
#include "kernel_error.h"
}

enum { RMSNORM_THREADS = 256 };

__global__ void rmsnorm_forward_kernel(float *out, float *rstd, const float *inp,
                                       const float *weight, int d, float eps)
{
    __shared__ double shared[32];
    const size_t row = blockIdx.x;
    const float *x = inp + row * d;
    float *o = out + row * d;
    double ss = 0.0;
    for (int i = threadIdx.x; i < d; i += blockDim.x) ss += (double)x[i] * x[i];
    ss = block_sum(ss, shared);
    const float r = 1.0f / sqrtf((float)(ss / d) + eps);
    for (int i = threadIdx.x; i < d; i += blockDim.x) o[i] = weight[i] * (x[i] * r);
    if (rstd && threadIdx.x == 0) rstd[row] = r;
}

/* dinp += rstd * (g - xhat * mean(g * xhat)) with g = dout * weight. */
__global__ void rmsnorm_backward_dinp_kernel(float *dinp, const float *dout, const float *inp,
                                             const float *weight, const float *rstd, int d)
{
    __shared__ double shared[32];
    const size_t row = blockIdx.x;
    const float *x = inp + row * d, *g = dout + row * d;
    float *dx = dinp + row * d;
    const float r = rstd[row];
    double dot = 0.0;
    for (int i = threadIdx.x; i < d; i += blockDim.x) dot += (double)(g[i] * weight[i]) * (x[i] * r);
    dot = block_sum(dot, shared);
    const float mean = (float)(dot / d);
    for (int i = threadIdx.x; i < d; i += blockDim.x) {
        const float xhat = x[i] * r;
        dx[i] += r * (g[i] * weight[i] - xhat * mean);
    }
}

/* dweight[i] += sum over rows of dout * xhat. */
struct RmsnormWeightTerm {
    const float *dout, *inp, *rstd;
    int d;
    __device__ double operator()(int n, int i) const
    {
        const size_t at = (size_t)n * d + i;
        return (double)dout[at] * (inp[at] * rstd[n]);
    }
};

static int check_shape(const char *who, int N, int d)
{
    if (N < 0 || d < 0) return hd_fail("%s: negative shape N=%d d=%d", who, N, d);
    return 0;
}

extern "C" int rmsnorm_forward_cuda(float *out, float *rstd, const float *inp, const float *weight,
                                    int N, int d, float eps)
{
    if (check_shape("rmsnorm_forward_cuda", N, d)) return -1;
    if (N == 0 || d == 0) return 0;
    rmsnorm_forward_kernel<<<N, RMSNORM_THREADS>>>(out, rstd, inp, weight, d, eps);
    return hd_cuda_launched("rmsnorm_forward_cuda");
}

extern "C" int rmsnorm_backward_cuda(float *dinp, float *dweight, const float *dout,
                                     const float *inp, const float *weight, const float *rstd,
                                     int N, int d)
{
    if (check_shape("rmsnorm_backward_cuda", N, d)) return -1;
    if (N == 0 || d == 0) return 0;
    if (dinp) {
        rmsnorm_backward_dinp_kernel<<<N, RMSNORM_THREADS>>>(dinp, dout, inp, weight, rstd, d);
        if (hd_cuda_launched("rmsnorm_backward_cuda dinp")) return -1;
    }
    if (dweight)
        return column_sums_add(dweight, RmsnormWeightTerm{dout, inp, rstd, d}, N, d, 0,
                               "rmsnorm_backward_cuda dweight");
    return 0;
}
