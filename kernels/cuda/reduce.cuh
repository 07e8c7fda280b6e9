/* Reductions shared by the kernels: within a warp, within a block, and the
 * deterministic two-pass column sum that the weight gradients of rmsnorm
 * and the bias gradient of matmul need.
 *
 * Why not atomics for column sums: atomicAdd makes the summation order,
 * and so the last bits of a gradient, change from run to run.  A fixed
 * tree (partial sums over row chunks, then one pass over the partials)
 * costs one small extra kernel and keeps training runs reproducible. */
#ifndef HD_KERNELS_CUDA_REDUCE_CUH
#define HD_KERNELS_CUDA_REDUCE_CUH

#include <math.h>

#include "cuda/cuda_common.h"

template <typename T> __device__ inline T warp_sum(T v)
{
    for (int offset = 16; offset > 0; offset /= 2) v += __shfl_xor_sync(0xffffffffu, v, offset);
    return v;
}

__device__ inline float warp_max(float v)
{
    for (int offset = 16; offset > 0; offset /= 2)
        v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, offset));
    return v;
}

/* Sum over the block, returned to every thread.  blockDim.x must be a
 * multiple of 32 (at most 1024); `shared` holds 32 values.  Contains
 * __syncthreads(), so every thread of the block must call it. */
template <typename T> __device__ inline T block_sum(T v, T *shared)
{
    const int lane = threadIdx.x % 32, warp = threadIdx.x / 32, nwarps = blockDim.x / 32;
    v = warp_sum(v);
    __syncthreads(); /* the previous use of `shared` is over */
    if (lane == 0) shared[warp] = v;
    __syncthreads();
    T total = lane < nwarps ? shared[lane] : T(0);
    return warp_sum(total);
}

__device__ inline float block_max(float v, float *shared)
{
    const int lane = threadIdx.x % 32, warp = threadIdx.x / 32, nwarps = blockDim.x / 32;
    v = warp_max(v);
    __syncthreads();
    if (lane == 0) shared[warp] = v;
    __syncthreads();
    float m = lane < nwarps ? shared[lane] : -INFINITY;
    return warp_max(m);
}

/* dst[i] += sum over n < N of term(n, i), for i < D, where term is a device
 * functor (row, column) -> float.  Pass 1: a grid of (column tiles of 32,
 * row chunks) writes one double partial per (chunk, column); pass 2 adds the
 * partials in chunk order.  Partials live in scratch slot `slot`. */
enum { COLSUM_ROWS_PER_CHUNK = 256 };

template <typename Term>
__global__ void column_partials_kernel(double *partials, Term term, int N, int D)
{
    __shared__ double acc[8][33];
    const int i = blockIdx.x * 32 + threadIdx.x, chunk = blockIdx.y;
    const int n0 = chunk * COLSUM_ROWS_PER_CHUNK;
    const int n1 = min(N, n0 + COLSUM_ROWS_PER_CHUNK);
    double s = 0.0;
    if (i < D)
        for (int n = n0 + threadIdx.y; n < n1; n += blockDim.y) s += (double)term(n, i);
    acc[threadIdx.y][threadIdx.x] = s;
    __syncthreads();
    if (threadIdx.y == 0 && i < D) {
        for (int r = 1; r < (int)blockDim.y; r++) s += acc[r][threadIdx.x];
        partials[(size_t)chunk * D + i] = s;
    }
}

/* A template only so that each .cu file gets its own copy (kernels cannot
 * be linked across files without relocatable device code). */
template <typename Term>
__global__ void column_partials_finish_kernel(float *dst, const double *partials, int chunks,
                                              int D)
{
    const int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= D) return;
    double s = 0.0;
    for (int c = 0; c < chunks; c++) s += partials[(size_t)c * D + i];
    dst[i] += (float)s;
}

template <typename Term>
int column_sums_add(float *dst, Term term, int N, int D, int slot, const char *who)
{
    if (N <= 0 || D <= 0) return 0;
    const int chunks = (N + COLSUM_ROWS_PER_CHUNK - 1) / COLSUM_ROWS_PER_CHUNK;
    double *partials = (double *)hd_cuda_scratch(slot, (size_t)chunks * D * sizeof(double));
    if (!partials) return -1;
    dim3 grid((D + 31) / 32, chunks), block(32, 8);
    column_partials_kernel<<<grid, block>>>(partials, term, N, D);
    if (hd_cuda_launched(who)) return -1;
    column_partials_finish_kernel<Term><<<(D + 255) / 256, 256>>>(dst, partials, chunks, D);
    return hd_cuda_launched(who);
}

#endif
