/* The CUDA twins of the hypernetwork's CPU ops (kernels/cpu: adamw,
 * grad_clip, sparsity_loss, intervention, selection, householder,
 * cross_attention, position_head, sigmoid), with the
 * conventions of cuda_ops.h: same names with a _cuda suffix, same argument
 * order and meaning, device pointers, 0 or -1 after hd_fail(), asynchronous
 * execution.  What differs is said at each function.
 *
 * Written before a GPU was available to this project's later sessions:
 * tests/test_cuda_hypernet_ops.c compares each with its CPU twin and is
 * skipped on a machine without a GPU; bench/NOTES.md says which runs have
 * happened. */
#ifndef HD_KERNELS_CUDA_HYPERNET_OPS_H
#define HD_KERNELS_CUDA_HYPERNET_OPS_H

#include <stddef.h>

#include "cuda/cuda_common.h"

#ifdef __cplusplus
extern "C" {
#endif

#include "cpu/adamw.h"
#include "cpu/selection.h"

/* ---- adamw.cu: bit for bit the CPU's (no fused multiply-adds: every
 * product and sum is rounded as the CPU rounds it).  spans are host
 * memory. ---- */
int adamw_update_cuda(float *p, const float *g, float grad_scale, float *m, float *v, size_t n,
                      float lr, float weight_decay, const AdamWConfig *cfg, long step);
int adamw_step_cuda(float *params, const float *grads, float grad_scale, float *m, float *v,
                    const AdamWSpan *spans, int n_spans, const AdamWConfig *cfg, long step);

/* ---- grad_clip.cu: the L2 norm of n device values into *norm (host),
 * accumulated in double over a fixed tree: the same on every run, equal to
 * the CPU's up to double rounding.  Synchronises. ---- */
int grad_norm_cuda(const float *g, size_t n, double *norm);

/* ---- sparsity_loss.cu: bit for bit the CPU's (each row sum in double in
 * the CPU's order).  The forward writes the loss to *loss (host) and
 * synchronises. ---- */
int sparsity_loss_forward_cuda(float *loss, const float *W, int b, int S, int B);
int sparsity_loss_backward_cuda(float *dW, const float *W, float dloss, int b, int S, int B);

/* ---- intervention.cu: the products as plain per-element loops (the CPU
 * uses sgemm): fp32 sums in another order, so agreement is to fp32
 * rounding.  No `work` argument: the temporaries live in the CUDA scratch
 * buffers.  R_stride as on the CPU: d*k (ReflectSelect, one R per row) or
 * 0 (one shared R; dR then sums over the rows). ---- */
int intervention_forward_cuda(float *out, float *diff, float *proj, const float *xb,
                              const float *Ys, const float *W, const float *R, size_t R_stride,
                              const float *mask, int b, int S, int B, int d, int k);
int intervention_backward_cuda(float *dW, float *dR, float *dmask, float *dxb, const float *dout,
                               const float *diff, const float *proj, const float *xb,
                               const float *Ys, const float *W, const float *R, size_t R_stride,
                               const float *mask, int b, int S, int B, int d, int k);

/* ---- selection.cu: one thread per batch row runs the CPU's own per-row
 * code (kernels/cpu/selection_row.h), so the result is identical.
 * src_pos/base_pos are device memory [b] (read by groundtruth only; NULL
 * allowed). ---- */
int selection_forward_cuda(float *out, const float *W, SelectionMode mode, float threshold,
                           const int *src_pos, const int *base_pos, int b, int S, int B);

/* ---- householder.cu: bit for bit the CPU's.  The orthogonal
 * parametrisation (once per step, a sequential chain of k reflectors in
 * double) runs on the host between two copies of d*k floats; the per-example
 * reflection runs on the device. ---- */
int householder_orthogonal_forward_cuda(float *R, const float *X, const float *base, int d, int k);
int householder_orthogonal_backward_cuda(float *dX, const float *dR, const float *X,
                                         const float *base, int d, int k);
int reflect_forward_cuda(float *Rp, float *v, float *unorm, const float *u, const float *R, int b,
                         int d, int k);
int reflect_backward_cuda(float *du, float *dR, const float *dRp, const float *v,
                          const float *unorm, const float *R, int b, int d, int k);

/* ---- cross_attention.cu: fp32 agreement (warp-tree dot products and
 * CUDA's expf).  The backward's temporaries live in scratch slot 0. ---- */
int cross_attention_forward_cuda(float *out, float *att, const float *q, const float *k,
                                 const float *v, const int *q_mask, const int *k_mask, int b,
                                 int Tq, int Tk, int n_heads, int n_kv_heads, int head_dim);
int cross_attention_backward_cuda(float *dq, float *dk, float *dv, const float *dout,
                                  const float *att, const float *q, const float *k, const float *v,
                                  int b, int Tq, int Tk, int n_heads, int n_kv_heads, int head_dim);

/* ---- position_head.cu: fp32 agreement (CUDA's cosf/sinf/expf, other
 * summation orders).  logits is required here (the CPU twin allows NULL).
 * mb, ms, inv_freq are device memory.  Scratch slots 0 and 1. ---- */
int position_head_forward_cuda(float *W, float *logits, const float *q, const float *kb,
                               const float *ks, const float *kself, const int *mb, const int *ms,
                               const float *inv_freq, int b, int S, int B, int n_heads,
                               int n_kv_heads, int head_dim);
int position_head_backward_cuda(float *dq, float *dkb, float *dks, float *dkself, const float *dW,
                                const float *W, const float *q, const float *kb, const float *ks,
                                const float *kself, const int *mb, const int *ms,
                                const float *inv_freq, int b, int S, int B, int n_heads,
                                int n_kv_heads, int head_dim);

/* ---- sigmoid.cu: MaskSelect's tempered logistic, CUDA's expf ---- */
int sigmoid_forward_cuda(float *out, const float *in, float temperature, size_t n);
int sigmoid_backward_cuda(float *din, const float *dout, const float *out, float temperature,
                          size_t n);

#ifdef __cplusplus
}
#endif

#endif
