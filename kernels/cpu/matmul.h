/* Dense projection y = x W^T (+ bias), the workhorse of every Llama layer.
 *
 * W is stored [out, in] row-major (Hugging Face nn.Linear orientation), x is
 * a batch of N rows of length in.  Both directions are single cblas_sgemm
 * calls: OpenBLAS is the fastest fp32 GEMM we have on a CPU, and giving it
 * all N rows at once (not one token at a time) is what makes it fast.
 *
 * Backward convention for every op in kernels/cpu: gradients are ADDED to the
 * output buffers (+=), as in llm.c, so that the gradients of a tensor that
 * feeds several consumers simply sum; zero a buffer first for a plain
 * gradient.  Any gradient pointer may be NULL to skip that gradient. */
#ifndef HD_KERNELS_CPU_MATMUL_H
#define HD_KERNELS_CPU_MATMUL_H

/* out[N, OC] = inp[N, C] @ weight[OC, C]^T + bias[OC] (bias may be NULL). */
void matmul_forward(float *out, const float *inp, const float *weight, const float *bias,
                    int N, int C, int OC);

/* dinp[N, C] += dout @ weight; dweight[OC, C] += dout^T @ inp;
 * dbias[OC] += column sums of dout.  dinp, dweight, dbias may be NULL. */
void matmul_backward(float *dinp, float *dweight, float *dbias, const float *dout,
                     const float *inp, const float *weight, int N, int C, int OC);

/* The same product with a weight whose rows are ldw >= C floats apart: a
 * column block [OC, C] of a wider matrix (the hypernetwork's q_combine
 * [d, 2d] takes concat(base, source) as two halves).  No bias; the
 * backward is the weight's gradient only, dweight[o, c] (stride ldw) +=
 * sum_n dout[n, o] inp[n, c].  N <= 3 rows still go through sgemm. */
void matmul_forward_strided(float *out, const float *inp, const float *weight, int ldw, int N,
                            int C, int OC);
void matmul_backward_strided(float *dweight, const float *dout, const float *inp, int ldw, int N,
                             int C, int OC);

#endif
