/* Fused softmax + cross-entropy over the vocabulary on the GPU: one block
 * per row, two passes over it.  Pass 1 keeps, per thread, a running
 * maximum and the sum of exp(x - running max) in double (rescaled when the
 * maximum grows: the "online softmax"), and the block combines them; pass 2
 * writes the probabilities.  The CPU twin reads the row three times (max,
 * sum, write); here the row (200-500 KB, too many rows in flight for L2)
 * is read twice.  The sum is in double as on the CPU: V reaches 128k, and
 * a float sum would lose the small terms. */
#include "cuda/cuda_ops.h"
#include "cuda/reduce.cuh"

extern "C" {
#include "kernel_error.h"
}

enum { XENT_THREADS = 512 };

__global__ void softmax_xent_forward_kernel(float *losses, float *probs, const float *logits,
                                            const int *targets, int V)
{
    __shared__ float fshared[32];
    __shared__ double dshared[32];
    const size_t row = blockIdx.x;
    const float *x = logits + row * V;
    float m = -INFINITY; /* this thread's running maximum */
    double sum = 0.0;     /* sum of expf(x - m) over this thread's elements */
    for (int i = threadIdx.x; i < V; i += blockDim.x) {
        const float xi = x[i];
        if (xi > m) {
            sum *= expf(m - xi); /* 0 while m is still -inf */
            m = xi;
        }
        if (xi != -INFINITY) sum += expf(xi - m);
    }
    const float mx = block_max(m, fshared);
    sum = block_sum(m == -INFINITY ? 0.0 : sum * expf(m - mx), dshared);
    const int t = targets ? targets[row] : -1;
    /* Read the target's logit before pass 2 may overwrite it (probs == logits). */
    if (losses && threadIdx.x == 0) {
        const float lse = mx + (float)log(sum);
        losses[row] = (t >= 0 && t < V) ? lse - x[t] : 0.0f;
    }
    if (!probs) return;
    __syncthreads();
    float *p = probs + row * V;
    const float inv = (float)(1.0 / sum);
    for (int i = threadIdx.x; i < V; i += blockDim.x) p[i] = expf(x[i] - mx) * inv;
}

/* dlogits += g * (probs - onehot(target)), rows with a negative target skipped.
 * Grid: (rows, chunks of a row). */
__global__ void softmax_xent_backward_kernel(float *dlogits, const float *dlosses,
                                             const float *probs, const int *targets, int V)
{
    const size_t row = blockIdx.x;
    const int t = targets[row];
    if (t < 0 || t >= V) return;
    const float g = dlosses ? dlosses[row] : 1.0f;
    const float *p = probs + row * V;
    float *d = dlogits + row * V;
    for (int i = blockIdx.y * blockDim.x + threadIdx.x; i < V; i += gridDim.y * blockDim.x) {
        float v = d[i] + g * p[i];
        if (i == t) v -= g; /* two roundings, as the CPU twin's d[t] -= g after the loop */
        d[i] = v;
    }
}

static int check_shape(const char *who, int N, int V)
{
    if (N < 0 || V < 0) return hd_fail("%s: negative shape N=%d V=%d", who, N, V);
    return 0;
}

extern "C" int softmax_xent_forward_cuda(float *losses, float *probs, const float *logits,
                                         const int *targets, int N, int V)
{
    if (check_shape("softmax_xent_forward_cuda", N, V)) return -1;
    if (N == 0 || V == 0 || (!losses && !probs)) return 0;
    softmax_xent_forward_kernel<<<N, XENT_THREADS>>>(losses, probs, logits, targets, V);
    return hd_cuda_launched("softmax_xent_forward_cuda");
}

extern "C" int softmax_xent_backward_cuda(float *dlogits, const float *dlosses, const float *probs,
                                          const int *targets, int N, int V)
{
    if (check_shape("softmax_xent_backward_cuda", N, V)) return -1;
    if (N == 0 || V == 0 || !dlogits) return 0;
    const int threads = 256;
    int chunks = (V + threads * 4 - 1) / (threads * 4); /* 4 elements per thread */
    if (chunks > 65535) chunks = 65535;
    dim3 grid(N, chunks);
    softmax_xent_backward_kernel<<<grid, threads>>>(dlogits, dlosses, probs, targets, V);
    return hd_cuda_launched("softmax_xent_backward_cuda");
}
