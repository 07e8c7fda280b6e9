/* Rotary position embedding on the GPU, the "rotate-half" layout of
 * kernels/cpu/rope.h.  The cos/sin tables [N, hd/2] are computed on the
 * host (rope_angles) and uploaded once per batch: they are tiny, and
 * computing them there keeps a single definition of the angles.
 * One thread per rotated pair (token, head, i < hd/2). */
#include "cuda/cuda_ops.h"

extern "C" {
#include "kernel_error.h"
}

__global__ void rope_forward_kernel(float *x, const float *cos, const float *sin, int N, int H,
                                    int hd)
{
    const int half = hd / 2;
    const size_t pairs = (size_t)N * H * half;
    for (size_t p = blockIdx.x * (size_t)blockDim.x + threadIdx.x; p < pairs;
         p += (size_t)gridDim.x * blockDim.x) {
        const size_t i = p % half, nh = p / half, n = nh / H;
        float *v = x + nh * hd;
        const float c = cos[n * half + i], s = sin[n * half + i];
        const float a = v[i], b = v[i + half];
        v[i] = a * c - b * s;
        v[i + half] = b * c + a * s;
    }
}

/* The rotation by -angle: the transpose of the forward's orthogonal map. */
__global__ void rope_backward_kernel(float *dinp, const float *dout, const float *cos,
                                     const float *sin, int N, int H, int hd)
{
    const int half = hd / 2;
    const size_t pairs = (size_t)N * H * half;
    for (size_t p = blockIdx.x * (size_t)blockDim.x + threadIdx.x; p < pairs;
         p += (size_t)gridDim.x * blockDim.x) {
        const size_t i = p % half, nh = p / half, n = nh / H;
        const float *g = dout + nh * hd;
        float *d = dinp + nh * hd;
        const float c = cos[n * half + i], s = sin[n * half + i];
        const float ga = g[i], gb = g[i + half];
        d[i] += ga * c + gb * s;
        d[i + half] += gb * c - ga * s;
    }
}

static int check_shape(const char *who, int N, int H, int hd)
{
    if (N < 0 || H < 0 || hd < 0 || hd % 2)
        return hd_fail("%s: bad shape N=%d heads=%d head_dim=%d (head_dim must be even)", who, N,
                       H, hd);
    return 0;
}

extern "C" int rope_forward_cuda(float *x, const float *cos, const float *sin, int N, int n_heads,
                                 int head_dim)
{
    if (check_shape("rope_forward_cuda", N, n_heads, head_dim)) return -1;
    const size_t pairs = (size_t)N * n_heads * (head_dim / 2);
    if (pairs == 0) return 0;
    rope_forward_kernel<<<hd_cuda_grid_for(pairs, 256), 256>>>(x, cos, sin, N, n_heads, head_dim);
    return hd_cuda_launched("rope_forward_cuda");
}

extern "C" int rope_backward_cuda(float *dinp, const float *dout, const float *cos,
                                  const float *sin, int N, int n_heads, int head_dim)
{
    if (check_shape("rope_backward_cuda", N, n_heads, head_dim)) return -1;
    const size_t pairs = (size_t)N * n_heads * (head_dim / 2);
    if (pairs == 0 || !dinp) return 0;
    rope_backward_kernel<<<hd_cuda_grid_for(pairs, 256), 256>>>(dinp, dout, cos, sin, N, n_heads,
                                                                 head_dim);
    return hd_cuda_launched("rope_backward_cuda");
}
