/* The cuBLAS path of attention (see attention.cu for when it is used).
 *
 * Per (batch row r, query head h) the products are small dense GEMMs whose
 * operands are strided views of the row-major tensors: head h's queries are
 * Tq rows of hd floats, H*hd apart; its kv head's keys Tk rows, Hkv*hd
 * apart; its att block a dense Tq x Tk matrix.  The heads of one batch row
 * are not at a single stride from each other under GQA (h -> h / group), so
 * the batches are described by pointer arrays (cublasSgemmBatched), built
 * on the device by a small kernel.
 *
 *   forward:  S = Q K^T        (GEMM, into att)
 *             P = softmax(S / sqrt(hd)) with causal + padding mask  (kernel)
 *             O = P V          (GEMM)
 *   backward: dP = dO V^T      (GEMM, into scratch)
 *             dS = P (dP - rowsum(P dP)) / sqrt(hd)                 (kernel)
 *             dQ += dS K,  dK += dS^T Q,  dV += P^T dO              (GEMMs)
 * dK and dV gather from all the query heads of a group: one batched call
 * per head of the group, each batch writing distinct kv heads, so no two
 * GEMMs of a call ever add to the same rows.
 *
 * cuBLAS is column-major: a row-major [R, C] block with row stride ld is,
 * to cuBLAS, its transpose (C x R, leading dimension ld). */
#include <math.h>

#include "cuda/attention_shape.cuh"
#include "cuda/cuda_ops.h"
#include "cuda/reduce.cuh"

extern "C" {
#include "kernel_error.h"
}

/* Where operand matrix number (r, head) starts: base + r * r_stride +
 * head * head_stride, head being the query head h or its kv head. */
struct BatchOperand {
    const float *base;
    size_t r_stride, head_stride;
    int by_kv_head;
};

/* Batch entry e = r * X + x stands for query head h = x * hmul + hadd. */
__global__ void build_pointers_kernel(const float **ptrs, BatchOperand A, BatchOperand B,
                                      BatchOperand C, int count, int X, int hmul, int hadd,
                                      int group)
{
    const int e = blockIdx.x * blockDim.x + threadIdx.x;
    if (e >= count) return;
    const int r = e / X, h = (e % X) * hmul + hadd, kvh = h / group;
    const BatchOperand ops[3] = {A, B, C};
    for (int t = 0; t < 3; t++) {
        const size_t head = ops[t].by_kv_head ? kvh : h;
        ptrs[(size_t)t * count + e] = ops[t].base + r * ops[t].r_stride + head * ops[t].head_stride;
    }
}

/* C_e = op(A_e) op(B_e) + beta C_e for the b * X batch entries. */
static int batched_gemm(cublasOperation_t ta, cublasOperation_t tb, int m, int n, int k,
                        BatchOperand A, int lda, BatchOperand B, int ldb, BatchOperand C, int ldc,
                        float beta, const AttShape &s, int X, int hmul, int hadd, const char *who)
{
    cublasHandle_t handle = hd_cublas();
    if (!handle) return -1;
    const int count = s.b * X;
    const float **ptrs = (const float **)hd_cuda_scratch(1, 3 * (size_t)count * sizeof(float *));
    if (!ptrs) return -1;
    build_pointers_kernel<<<(count + 255) / 256, 256>>>(ptrs, A, B, C, count, X, hmul, hadd,
                                                       s.H / s.Hkv);
    if (hd_cuda_launched(who)) return -1;
    const float one = 1.0f;
    return hd_cublas_check(cublasSgemmBatched(handle, ta, tb, m, n, k, &one, ptrs, lda,
                                              ptrs + count, ldb, &beta,
                                              (float **)(ptrs + 2 * (size_t)count), ldc, count),
                           who);
}

/* One warp per att row (r, h, i): scores -> probabilities in place.  Same
 * order of operations as the CPU twin: score / div, max over the visible
 * keys, expf(score - max), sum, times 1 / sum.  A row with no visible key
 * becomes zeros. */
enum { ROWS_PER_BLOCK = 4 };

__global__ void softmax_rows_kernel(float *att, const int *key_mask, AttShape s)
{
    const size_t rows = (size_t)s.b * s.H * s.Tq;
    const size_t row = (size_t)blockIdx.x * ROWS_PER_BLOCK + threadIdx.x / 32;
    if (row >= rows) return;
    const int lane = threadIdx.x % 32;
    const int i = (int)(row % s.Tq), r = (int)(row / ((size_t)s.Tq * s.H));
    const int last = s.Tk - s.Tq + i;
    const int *m = key_mask ? key_mask + (size_t)r * s.Tcap : nullptr;
    float *p = att + row * s.Tk;
    float mx = -INFINITY;
    for (int j = lane; j < s.Tk; j += 32) {
        const bool visible = j <= last && (!m || m[j]);
        const float score = visible ? p[j] / s.div : -INFINITY;
        p[j] = score;
        mx = fmaxf(mx, score);
    }
    mx = warp_max(mx);
    if (mx == -INFINITY) {
        for (int j = lane; j < s.Tk; j += 32) p[j] = 0.0f;
        return;
    }
    float sum = 0.0f;
    for (int j = lane; j < s.Tk; j += 32) {
        const float e = expf(p[j] - mx); /* 0 for the -inf of hidden keys */
        p[j] = e;
        sum += e;
    }
    const float inv = 1.0f / warp_sum(sum);
    for (int j = lane; j < s.Tk; j += 32) p[j] *= inv;
}

/* One warp per row: dp (in ds) -> ds = p (dp - sum_k p_k dp_k) / div. */
__global__ void softmax_backward_rows_kernel(float *ds, const float *att, AttShape s)
{
    const size_t rows = (size_t)s.b * s.H * s.Tq;
    const size_t row = (size_t)blockIdx.x * ROWS_PER_BLOCK + threadIdx.x / 32;
    if (row >= rows) return;
    const int lane = threadIdx.x % 32;
    const float *p = att + row * s.Tk;
    float *d = ds + row * s.Tk;
    float pdp = 0.0f;
    for (int j = lane; j < s.Tk; j += 32)
        if (p[j] != 0.0f) pdp += p[j] * d[j];
    pdp = warp_sum(pdp);
    for (int j = lane; j < s.Tk; j += 32) {
        const float pj = p[j];
        d[j] = pj != 0.0f ? pj * (d[j] - pdp) / s.div : 0.0f;
    }
}

static unsigned int row_blocks(const AttShape &s)
{
    const size_t rows = (size_t)s.b * s.H * s.Tq;
    return (unsigned int)((rows + ROWS_PER_BLOCK - 1) / ROWS_PER_BLOCK);
}

/* The operands, as batch descriptions.  Strides in floats. */
static BatchOperand q_like(const float *base, const AttShape &s)   /* q, dout, out, dq */
{
    return BatchOperand{base, (size_t)s.Tq * s.H * s.hd, (size_t)s.hd, 0};
}
static BatchOperand kv_like(const float *base, const AttShape &s)  /* k, v, dk, dv */
{
    return BatchOperand{base, (size_t)s.Tcap * s.Hkv * s.hd, (size_t)s.hd, 1};
}
static BatchOperand att_like(const float *base, const AttShape &s) /* att, ds */
{
    return BatchOperand{base, (size_t)s.H * s.Tq * s.Tk, (size_t)s.Tq * s.Tk, 0};
}

int attention_forward_gemm(float *out, float *att, const float *q, const float *k, const float *v,
                           const int *key_mask, const AttShape &s)
{
    const char *who = "attention_forward_cuda (gemm)";
    const int ldq = s.H * s.hd, ldkv = s.Hkv * s.hd;
    /* S^T (Tk x Tq) = K (Tk x hd) Q^T (hd x Tq) */
    if (batched_gemm(CUBLAS_OP_T, CUBLAS_OP_N, s.Tk, s.Tq, s.hd, kv_like(k, s), ldkv, q_like(q, s),
                     ldq, att_like(att, s), s.Tk, 0.0f, s, s.H, 1, 0, who))
        return -1;
    softmax_rows_kernel<<<row_blocks(s), ROWS_PER_BLOCK * 32>>>(att, key_mask, s);
    if (hd_cuda_launched(who)) return -1;
    /* O^T (hd x Tq) = V^T (hd x Tk) P^T (Tk x Tq) */
    return batched_gemm(CUBLAS_OP_N, CUBLAS_OP_N, s.hd, s.Tq, s.Tk, kv_like(v, s), ldkv,
                        att_like(att, s), s.Tk, q_like(out, s), ldq, 0.0f, s, s.H, 1, 0, who);
}

int attention_backward_gemm(float *dq, float *dk, float *dv, const float *dout, const float *att,
                            const float *q, const float *k, const float *v, const AttShape &s)
{
    const char *who = "attention_backward_cuda (gemm)";
    const int ldq = s.H * s.hd, ldkv = s.Hkv * s.hd, group = s.H / s.Hkv;
    float *ds = nullptr;
    if (dq || dk) {
        ds = (float *)hd_cuda_scratch(0, (size_t)s.b * s.H * s.Tq * s.Tk * sizeof(float));
        if (!ds) return hd_fail_prefix("%s: ", who);
        /* dP^T (Tk x Tq) = V (Tk x hd) dO^T (hd x Tq) */
        if (batched_gemm(CUBLAS_OP_T, CUBLAS_OP_N, s.Tk, s.Tq, s.hd, kv_like(v, s), ldkv,
                         q_like(dout, s), ldq, att_like(ds, s), s.Tk, 0.0f, s, s.H, 1, 0, who))
            return -1;
        softmax_backward_rows_kernel<<<row_blocks(s), ROWS_PER_BLOCK * 32>>>(ds, att, s);
        if (hd_cuda_launched(who)) return -1;
    }
    /* dQ^T (hd x Tq) += K^T (hd x Tk) dS^T (Tk x Tq) */
    if (dq && batched_gemm(CUBLAS_OP_N, CUBLAS_OP_N, s.hd, s.Tq, s.Tk, kv_like(k, s), ldkv,
                           att_like(ds, s), s.Tk, q_like(dq, s), ldq, 1.0f, s, s.H, 1, 0, who))
        return -1;
    /* per head g of each group, batched over (r, kv head):
     *   dK^T (hd x Tk) += Q^T (hd x Tq) dS (Tq x Tk)
     *   dV^T (hd x Tk) += dO^T (hd x Tq) P (Tq x Tk) */
    for (int g = 0; g < group; g++) {
        if (dk && batched_gemm(CUBLAS_OP_N, CUBLAS_OP_T, s.hd, s.Tk, s.Tq, q_like(q, s), ldq,
                               att_like(ds, s), s.Tk, kv_like(dk, s), ldkv, 1.0f, s, s.Hkv, group,
                               g, who))
            return -1;
        if (dv && batched_gemm(CUBLAS_OP_N, CUBLAS_OP_T, s.hd, s.Tk, s.Tq, q_like(dout, s), ldq,
                               att_like(att, s), s.Tk, kv_like(dv, s), ldkv, 1.0f, s, s.Hkv,
                               group, g, who))
            return -1;
    }
    return 0;
}
