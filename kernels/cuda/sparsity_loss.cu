/* The source-selection sparsity penalty on the GPU
 * (kernels/cpu/sparsity_loss.c).  One thread per (row, source token) sums
 * its B weights in double in the CPU's order; the forward then adds the
 * rows above 1 in the CPU's order (r, then s) in one thread: b*S is a few
 * hundred values, and the result is the CPU's bit for bit. */
#include "cuda/cuda_hypernet_ops.h"

/* over[r*S + s] = the row sum when it exceeds 1, else 0 */
__global__ void sparsity_rows_kernel(double *over, const float *W, int b, int S, int B)
{
    const int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= b * S) return;
    const int r = i / S, s = i % S;
    const float *w = W + (size_t)r * (S + 1) * B + (size_t)s * B;
    double sum = 0.0;
    for (int t = 0; t < B; t++) sum += w[t];
    over[i] = sum > 1.0 ? sum : 0.0;
}

__global__ void sparsity_total_kernel(float *loss, const double *over, int b, int S)
{
    double total = 0.0;
    for (int i = 0; i < b * S; i++) total += over[i]; /* rows at 0 add nothing */
    *loss = (float)(total / b);
}

__global__ void sparsity_backward_kernel(float *dW, const double *over, float g, int b, int S,
                                         int B)
{
    const size_t n = (size_t)b * S * B;
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n;
         i += (size_t)gridDim.x * blockDim.x) {
        const size_t row = i / B; /* r*S + s */
        const int r = (int)(row / S), s = (int)(row % S), t = (int)(i % B);
        if (over[row] > 0.0) dW[(size_t)r * (S + 1) * B + (size_t)s * B + t] += g;
    }
}

static double *row_sums(const float *W, int b, int S, int B)
{
    double *over = (double *)hd_cuda_scratch(0, ((size_t)b * S + 1) * sizeof(double));
    if (!over) return NULL;
    const int n = b * S;
    sparsity_rows_kernel<<<(n + 255) / 256, 256>>>(over, W, b, S, B);
    return hd_cuda_launched("sparsity_loss (row sums)") ? NULL : over;
}

extern "C" int sparsity_loss_forward_cuda(float *loss, const float *W, int b, int S, int B)
{
    *loss = 0.0f;
    if (b <= 0 || S <= 0 || B <= 0) return 0;
    double *over = row_sums(W, b, S, B);
    if (!over) return -1;
    float *dev = (float *)(over + (size_t)b * S); /* the spare slot */
    sparsity_total_kernel<<<1, 1>>>(dev, over, b, S);
    if (hd_cuda_launched("sparsity_loss_forward_cuda")) return -1;
    return hd_cuda_download(loss, dev, sizeof *loss);
}

extern "C" int sparsity_loss_backward_cuda(float *dW, const float *W, float dloss, int b, int S,
                                           int B)
{
    if (b <= 0 || S <= 0 || B <= 0) return 0;
    double *over = row_sums(W, b, S, B);
    if (!over) return -1;
    const float g = dloss / (float)b;
    const size_t n = (size_t)b * S * B;
    sparsity_backward_kernel<<<hd_cuda_grid_for(n, 256), 256>>>(dW, over, g, b, S, B);
    return hd_cuda_launched("sparsity_loss_backward_cuda");
}
