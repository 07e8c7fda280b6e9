/* Token embedding lookup on the GPU.  One thread per output element of a
 * row-major [N, d] block, so neighbouring threads copy neighbouring floats. */
#include "cuda/cuda_ops.h"

extern "C" {
#include "kernel_error.h"
}

__global__ void embedding_forward_kernel(float *out, const int *ids, const float *table, int N,
                                         int V, int d)
{
    const size_t n_all = (size_t)N * d;
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n_all;
         i += (size_t)gridDim.x * blockDim.x) {
        const size_t n = i / d, c = i % d;
        const int id = ids[n];
        out[i] = (id >= 0 && id < V) ? table[(size_t)id * d + c] : 0.0f;
    }
}

/* Scatter-add: two tokens with the same id add to the same row, hence the
 * atomics.  An embedding gradient is only taken for trainable tables, which
 * are small next to the rest of a step. */
__global__ void embedding_backward_kernel(float *dtable, const float *dout, const int *ids, int N,
                                          int V, int d)
{
    const size_t n_all = (size_t)N * d;
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n_all;
         i += (size_t)gridDim.x * blockDim.x) {
        const size_t n = i / d, c = i % d;
        const int id = ids[n];
        if (id >= 0 && id < V) atomicAdd(dtable + (size_t)id * d + c, dout[i]);
    }
}

static int check_shape(const char *who, int N, int V, int d)
{
    if (N < 0 || V < 0 || d < 0) return hd_fail("%s: negative shape N=%d V=%d d=%d", who, N, V, d);
    return 0;
}

extern "C" int embedding_forward_cuda(float *out, const int *ids, const float *table, int N, int V,
                                      int d)
{
    if (check_shape("embedding_forward_cuda", N, V, d)) return -1;
    const size_t n = (size_t)N * d;
    if (n == 0) return 0;
    embedding_forward_kernel<<<hd_cuda_grid_for(n, 256), 256>>>(out, ids, table, N, V, d);
    return hd_cuda_launched("embedding_forward_cuda");
}

extern "C" int embedding_backward_cuda(float *dtable, const float *dout, const int *ids, int N,
                                       int V, int d)
{
    if (check_shape("embedding_backward_cuda", N, V, d)) return -1;
    const size_t n = (size_t)N * d;
    if (n == 0 || !dtable) return 0;
    embedding_backward_kernel<<<hd_cuda_grid_for(n, 256), 256>>>(dtable, dout, ids, N, V, d);
    return hd_cuda_launched("embedding_backward_cuda");
}
