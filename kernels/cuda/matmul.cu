/* Dense projections on the GPU: cuBLAS does the GEMMs, this file does the
 * bias and its gradient, and the row-major <-> column-major bookkeeping.
 *
 * cuBLAS is column-major.  A row-major [R, K] array read column-major is its
 * transpose [K, R], so out[N, OC] = inp[N, C] W[OC, C]^T becomes, in cuBLAS
 * terms, out^T (OC x N) = W (viewed C x OC, transposed) * inp^T (C x N). */
#include <cuda_bf16.h>

#include "cuda/cuda_ops.h"
#include "cuda/reduce.cuh"

extern "C" {
#include "kernel_error.h"
}

__global__ void add_bias_kernel(float *out, const float *bias, size_t rows, int OC)
{
    const size_t n = rows * (size_t)OC;
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n;
         i += (size_t)gridDim.x * blockDim.x)
        out[i] += bias[i % OC];
}

static int add_bias(float *out, const float *bias, int N, int OC)
{
    size_t n = (size_t)N * OC;
    add_bias_kernel<<<hd_cuda_grid_for(n, 256), 256>>>(out, bias, (size_t)N, OC);
    return hd_cuda_launched("matmul bias");
}

/* The bias gradient: column sums of dout [N, OC]. */
struct DoutColumn {
    const float *dout;
    int OC;
    __device__ float operator()(int n, int o) const { return dout[(size_t)n * OC + o]; }
};

static int check_shape(const char *who, int N, int C, int OC)
{
    if (N < 0 || C < 0 || OC < 0) return hd_fail("%s: negative shape N=%d C=%d OC=%d", who, N, C, OC);
    return 0;
}

extern "C" int matmul_forward_cuda(float *out, const float *inp, const float *weight,
                                   const float *bias, int N, int C, int OC)
{
    if (check_shape("matmul_forward_cuda", N, C, OC)) return -1;
    if (N == 0 || OC == 0) return 0;
    if (C == 0) {
        if (hd_cuda_zero(out, (size_t)N * OC * sizeof *out)) return -1;
    } else {
        cublasHandle_t h = hd_cublas();
        if (!h) return -1;
        const float one = 1.0f, zero = 0.0f;
        if (hd_cublas_check(cublasSgemm(h, CUBLAS_OP_T, CUBLAS_OP_N, OC, N, C, &one, weight, C,
                                        inp, C, &zero, out, OC),
                            "matmul_forward_cuda"))
            return -1;
    }
    return bias ? add_bias(out, bias, N, OC) : 0;
}

extern "C" int matmul_backward_cuda(float *dinp, float *dweight, float *dbias, const float *dout,
                                    const float *inp, const float *weight, int N, int C, int OC)
{
    if (check_shape("matmul_backward_cuda", N, C, OC)) return -1;
    if (N == 0 || C == 0 || OC == 0) return 0;
    cublasHandle_t h = hd_cublas();
    if (!h) return -1;
    const float one = 1.0f;
    /* dinp [N, C] += dout [N, OC] W [OC, C]:  dinp^T (C x N) += W^T (C x OC) dout^T (OC x N) */
    if (dinp && hd_cublas_check(cublasSgemm(h, CUBLAS_OP_N, CUBLAS_OP_N, C, N, OC, &one, weight,
                                            C, dout, OC, &one, dinp, C),
                                "matmul_backward_cuda dinp"))
        return -1;
    /* dW [OC, C] += dout^T inp:  dW^T (C x OC) += inp^T (C x N) dout (N x OC) */
    if (dweight && hd_cublas_check(cublasSgemm(h, CUBLAS_OP_N, CUBLAS_OP_T, C, OC, N, &one, inp,
                                               C, dout, OC, &one, dweight, C),
                                   "matmul_backward_cuda dweight"))
        return -1;
    if (dbias)
        return column_sums_add(dbias, DoutColumn{dout, OC}, N, OC, 0, "matmul_backward_cuda dbias");
    return 0;
}

/* ---- bf16 weights ---- */

__global__ void round_to_bf16_kernel(__nv_bfloat16 *dst, const float *src, size_t n)
{
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n;
         i += (size_t)gridDim.x * blockDim.x)
        dst[i] = __float2bfloat16_rn(src[i]);
}

/* src rounded into scratch slot `slot`; NULL on failure. */
static const __nv_bfloat16 *bf16_copy(const float *src, size_t n, int slot, const char *who)
{
    __nv_bfloat16 *dst = (__nv_bfloat16 *)hd_cuda_scratch(slot, n * sizeof(__nv_bfloat16));
    if (!dst) return nullptr;
    round_to_bf16_kernel<<<hd_cuda_grid_for(n, 256), 256>>>(dst, src, n);
    return hd_cuda_launched(who) ? nullptr : dst;
}

extern "C" int matmul_forward_bf16w_cuda(float *out, const float *inp, const uint16_t *weight,
                                         const float *bias, int N, int C, int OC)
{
    const char *who = "matmul_forward_bf16w_cuda";
    if (check_shape(who, N, C, OC)) return -1;
    if (N == 0 || OC == 0) return 0;
    if (C == 0) {
        if (hd_cuda_zero(out, (size_t)N * OC * sizeof *out)) return -1;
        return bias ? add_bias(out, bias, N, OC) : 0;
    }
    cublasHandle_t h = hd_cublas();
    if (!h) return -1;
    const __nv_bfloat16 *x = bf16_copy(inp, (size_t)N * C, 0, who);
    if (!x) return -1;
    const float one = 1.0f, zero = 0.0f;
    if (hd_cublas_check(cublasGemmEx(h, CUBLAS_OP_T, CUBLAS_OP_N, OC, N, C, &one, weight,
                                     CUDA_R_16BF, C, x, CUDA_R_16BF, C, &zero, out, CUDA_R_32F,
                                     OC, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT),
                        who))
        return -1;
    return bias ? add_bias(out, bias, N, OC) : 0;
}

extern "C" int matmul_backward_bf16w_cuda(float *dinp, const float *dout, const uint16_t *weight,
                                          int N, int C, int OC)
{
    const char *who = "matmul_backward_bf16w_cuda";
    if (check_shape(who, N, C, OC)) return -1;
    if (N == 0 || C == 0 || OC == 0 || !dinp) return 0;
    cublasHandle_t h = hd_cublas();
    if (!h) return -1;
    const __nv_bfloat16 *g = bf16_copy(dout, (size_t)N * OC, 0, who);
    if (!g) return -1;
    const float one = 1.0f;
    return hd_cublas_check(cublasGemmEx(h, CUBLAS_OP_N, CUBLAS_OP_N, C, N, OC, &one, weight,
                                        CUDA_R_16BF, C, g, CUDA_R_16BF, OC, &one, dinp,
                                        CUDA_R_32F, C, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT),
                           who);
}

extern "C" int matmul_forward_strided_cuda(float *out, const float *inp, const float *weight,
                                           int ldw, int N, int C, int OC)
{
    const char *who = "matmul_forward_strided_cuda";
    if (check_shape(who, N, C, OC)) return -1;
    if (ldw < C) return hd_fail("%s: row stride %d below the width %d", who, ldw, C);
    if (N == 0 || OC == 0 || C == 0) return 0;
    cublasHandle_t h = hd_cublas();
    if (!h) return -1;
    const float one = 1.0f, zero = 0.0f;
    return hd_cublas_check(cublasSgemm(h, CUBLAS_OP_T, CUBLAS_OP_N, OC, N, C, &one, weight, ldw,
                                       inp, C, &zero, out, OC),
                           who);
}

extern "C" int matmul_backward_strided_cuda(float *dweight, const float *dout, const float *inp,
                                            int ldw, int N, int C, int OC)
{
    const char *who = "matmul_backward_strided_cuda";
    if (check_shape(who, N, C, OC)) return -1;
    if (ldw < C) return hd_fail("%s: row stride %d below the width %d", who, ldw, C);
    if (N == 0 || OC == 0 || C == 0) return 0;
    cublasHandle_t h = hd_cublas();
    if (!h) return -1;
    const float one = 1.0f;
    /* dW^T (C x OC, leading dimension ldw) += inp^T (C x N) dout (N x OC) */
    return hd_cublas_check(cublasSgemm(h, CUBLAS_OP_N, CUBLAS_OP_T, C, OC, N, &one, inp, C, dout,
                                       OC, &one, dweight, ldw),
                           who);
}
