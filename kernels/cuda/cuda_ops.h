/* The CUDA twins of kernels/cpu: the same ops under the same names with a
 * _cuda suffix, the same argument order and meaning, and the same
 * conventions (row-major layouts, backward ADDS into its outputs, NULL
 * skips a gradient).  See each kernels/cpu/X.h for the mathematics; the
 * comments here only say what differs.
 *
 * What differs everywhere:
 *   - every pointer is device memory (hd_cuda_malloc / hd_cuda_upload);
 *   - every op returns int: 0, or -1 after hd_fail() on a bad argument or a
 *     failed launch.  Execution is asynchronous (cuda_common.h): a fault
 *     inside a kernel shows at the next hd_cuda_sync().
 * Results agree with the CPU twins to fp32 rounding (tests/test_cuda_kernels.c
 * states each tolerance), not bit for bit, except where noted: different
 * summation orders, and CUDA's expf differs from glibc's by an ulp or two. */
#ifndef HD_KERNELS_CUDA_OPS_H
#define HD_KERNELS_CUDA_OPS_H

#include <stddef.h>
#include <stdint.h>

#include "cuda/cuda_common.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- matmul.cu: cuBLAS SGEMM, fp32 in and out, TF32 off ---- */
int matmul_forward_cuda(float *out, const float *inp, const float *weight, const float *bias,
                        int N, int C, int OC);
int matmul_backward_cuda(float *dinp, float *dweight, float *dbias, const float *dout,
                         const float *inp, const float *weight, int N, int C, int OC);
/* A weight whose rows are ldw floats apart (kernels/cpu/matmul.h) */
int matmul_forward_strided_cuda(float *out, const float *inp, const float *weight, int ldw, int N,
                                int C, int OC);
int matmul_backward_strided_cuda(float *dweight, const float *dout, const float *inp, int ldw,
                                 int N, int C, int OC);

/* The frozen target model's projections: weight [OC, C] in bf16 (raw bits),
 * activations fp32.  The activations (dout in the backward) are rounded to
 * bf16 on the way in, then one cublasGemmEx multiplies bf16 x bf16 with
 * fp32 accumulation and fp32 output: as PyTorch does with a bf16 model.
 * Relative error against the fp32 product with the same bf16 weights is
 * bounded by 2^-8 per term (the input rounding), about 2^-9 sqrt(K) times
 * the typical term in practice.  The backward is dinp only: frozen weights
 * take no gradient. */
int matmul_forward_bf16w_cuda(float *out, const float *inp, const uint16_t *weight,
                              const float *bias, int N, int C, int OC);
int matmul_backward_bf16w_cuda(float *dinp, const float *dout, const uint16_t *weight, int N,
                               int C, int OC);

/* ---- embedding.cu ---- */
int embedding_forward_cuda(float *out, const int *ids, const float *table, int N, int V, int d);
/* Repeated ids are summed with atomicAdd, so the order of the additions
 * (and the last bits of such rows) may differ from run to run. */
int embedding_backward_cuda(float *dtable, const float *dout, const int *ids, int N, int V, int d);

/* ---- rmsnorm.cu ---- */
int rmsnorm_forward_cuda(float *out, float *rstd, const float *inp, const float *weight, int N,
                         int d, float eps);
int rmsnorm_backward_cuda(float *dinp, float *dweight, const float *dout, const float *inp,
                          const float *weight, const float *rstd, int N, int d);

/* ---- rope.cu (rope_inv_freq and rope_angles stay on the host: upload
 * their cos/sin tables) ---- */
int rope_forward_cuda(float *x, const float *cos, const float *sin, int N, int n_heads,
                      int head_dim);
int rope_backward_cuda(float *dinp, const float *dout, const float *cos, const float *sin, int N,
                       int n_heads, int head_dim);

/* ---- attention.cu (+ attention_gemm.cu): att saved in full, as the CPU
 * twin does.  head_dim at most 256.  Below 16 queries per head a direct
 * kernel, from 16 up batched cuBLAS SGEMMs around a masked-softmax kernel;
 * $HD_CUDA_ATTENTION=direct|gemm forces one.  The backward needs a scratch
 * buffer the size of att. ---- */
int attention_forward_cuda(float *out, float *att, const float *q, const float *k, const float *v,
                           const int *key_mask, int b, int Tq, int Tk, int Tcap, int n_heads,
                           int n_kv_heads, int head_dim);
int attention_backward_cuda(float *dq, float *dk, float *dv, const float *dout, const float *att,
                            const float *q, const float *k, const float *v, int b, int Tq, int Tk,
                            int Tcap, int n_heads, int n_kv_heads, int head_dim);

/* ---- swiglu.cu ---- */
int swiglu_forward_cuda(float *out, const float *gate, const float *up, size_t n);
int swiglu_backward_cuda(float *dgate, float *dup, const float *dout, const float *gate,
                         const float *up, size_t n);

/* ---- residual.cu ---- */
int residual_forward_cuda(float *out, const float *a, const float *b, size_t n);
int residual_backward_cuda(float *da, float *db, const float *dout, size_t n);

/* ---- softmax_xent.cu ---- */
int softmax_xent_forward_cuda(float *losses, float *probs, const float *logits,
                              const int *targets, int N, int V);
int softmax_xent_backward_cuda(float *dlogits, const float *dlosses, const float *probs,
                               const int *targets, int N, int V);

/* ---- dequant.cu: bit-identical to the CPU twins.  src is device memory
 * holding the raw GGUF/safetensors bytes; it need not be aligned. ---- */
int dequant_f16_cuda(const void *src, float *dst, size_t n);
int dequant_bf16_cuda(const void *src, float *dst, size_t n);
int dequant_q4_0_cuda(const void *src, float *dst, size_t n);
int dequant_q4_1_cuda(const void *src, float *dst, size_t n);
int dequant_q8_0_cuda(const void *src, float *dst, size_t n);
/* The way down, for the bf16 weights of the frozen model: round to nearest
 * even, NaN stays NaN (as f32_to_bf16 in kernels/float16.h). */
int f32_to_bf16_cuda(uint16_t *dst, const float *src, size_t n);

#ifdef __cplusplus
}
#endif

#endif
