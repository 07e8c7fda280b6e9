/* Where the engine's ops run: one table of functions per kind of memory.
 *
 * compute_cpu() is kernels/cpu on host memory; compute_cuda() is the
 * kernels/cuda twins on device memory.  The orchestration that strings ops
 * together -- a Llama decoder layer and its backward (llama_forward.c), the
 * hypernetwork's step (hypernet_forward.c, hypernet_backward.c) -- is
 * written once against this table, so the GPU runs the very sequence of
 * ops that the CPU tests check against PyTorch, and the only GPU-specific
 * code is the kernels themselves (each tested against its CPU twin) and
 * this file's adapters.
 *
 * Every op has its kernels' signature (see kernels/cpu/X.h for the
 * mathematics; backward ops ADD into their outputs; NULL skips a gradient),
 * with every pointer in this backend's memory, except where a comment says
 * host.  Ops return nothing: the CPU ones cannot fail, and a failing GPU op
 * (bad launch, cuBLAS error) records its message and turns every later op
 * into a no-op until K->status() reports it: check it after each stage, not
 * after each op.  GPU execution is asynchronous; download() waits.
 *
 * The frozen target's weight matrices are `const void *`: fp32 on the CPU,
 * bf16 bits on the GPU (matmul_forward_bf16w_cuda), as each backend keeps
 * them. */
#ifndef HD_COMPUTE_H
#define HD_COMPUTE_H

#include <stddef.h>

#include "cpu/adamw.h"
#include "cpu/selection.h"

typedef struct Compute Compute;

struct Compute {
    const char *name; /* "cpu" or "cuda" */
    int on_device;    /* 1: pointers are not readable from the host */

    /* ---- memory ---- */
    void *(*alloc)(size_t bytes); /* zeroed; NULL after hd_fail (0 bytes: NULL, no failure) */
    void (*release)(void *p);
    void (*upload)(void *dst, const void *host_src, size_t bytes); /* dst == src: nothing */
    void (*download)(void *host_dst, const void *src, size_t bytes);
    void (*copy)(void *dst, const void *src, size_t bytes);
    void (*zero)(void *dst, size_t bytes);
    /* 0, or -1 after hd_fail() with the first failure since the last call
     * (which clears it).  Waits for queued GPU work. */
    int (*status)(void);

    /* ---- the trainable side (fp32 weights) ---- */
    void (*matmul_forward)(float *out, const float *inp, const float *weight, const float *bias,
                           int N, int C, int OC);
    void (*matmul_backward)(float *dinp, float *dweight, float *dbias, const float *dout,
                            const float *inp, const float *weight, int N, int C, int OC);
    /* out[N, OC] = inp[N, C] @ W^T where W's rows are ldw floats apart (a
     * column block of a wider matrix); dweight += dout^T @ inp at that
     * stride. */
    void (*matmul_forward_strided)(float *out, const float *inp, const float *weight, int ldw,
                                   int N, int C, int OC);
    void (*matmul_backward_strided)(float *dweight, const float *dout, const float *inp, int ldw,
                                    int N, int C, int OC);

    /* ---- the frozen target's projections: no weight gradient ---- */
    void (*frozen_matmul_forward)(float *out, const float *inp, const void *weight, int N, int C,
                                  int OC);
    void (*frozen_matmul_backward)(float *dinp, const float *dout, const void *weight, int N,
                                   int C, int OC);

    /* ---- elementwise and per-row ---- */
    void (*embedding_forward)(float *out, const int *ids, const float *table, int N, int V, int d);
    void (*embedding_backward)(float *dtable, const float *dout, const int *ids, int N, int V,
                               int d);
    void (*rmsnorm_forward)(float *out, float *rstd, const float *inp, const float *weight, int N,
                            int d, float eps);
    void (*rmsnorm_backward)(float *dinp, float *dweight, const float *dout, const float *inp,
                             const float *weight, const float *rstd, int N, int d);
    void (*rope_forward)(float *x, const float *cos, const float *sin, int N, int n_heads,
                         int head_dim);
    void (*rope_backward)(float *dinp, const float *dout, const float *cos, const float *sin,
                          int N, int n_heads, int head_dim);
    void (*swiglu_forward)(float *out, const float *gate, const float *up, size_t n);
    void (*swiglu_backward)(float *dgate, float *dup, const float *dout, const float *gate,
                            const float *up, size_t n);
    void (*residual_forward)(float *out, const float *a, const float *b, size_t n);
    /* out = 1 / (1 + exp(-in / temperature)); din += dout out (1 - out) / temperature */
    void (*sigmoid_forward)(float *out, const float *in, float temperature, size_t n);
    void (*sigmoid_backward)(float *din, const float *dout, const float *out, float temperature,
                             size_t n);
    void (*softmax_xent_forward)(float *losses, float *probs, const float *logits,
                                 const int *targets, int N, int V);
    void (*softmax_xent_backward)(float *dlogits, const float *dlosses, const float *probs,
                                  const int *targets, int N, int V);

    /* ---- attention ---- */
    void (*attention_forward)(float *out, float *att, const float *q, const float *k,
                              const float *v, const int *key_mask, int b, int Tq, int Tk,
                              int Tcap, int n_heads, int n_kv_heads, int head_dim);
    void (*attention_backward)(float *dq, float *dk, float *dv, const float *dout,
                               const float *att, const float *q, const float *k, const float *v,
                               int b, int Tq, int Tk, int Tcap, int n_heads, int n_kv_heads,
                               int head_dim);
    void (*cross_attention_forward)(float *out, float *att, const float *q, const float *k,
                                    const float *v, const int *q_mask, const int *k_mask, int b,
                                    int Tq, int Tk, int n_heads, int n_kv_heads, int head_dim);
    void (*cross_attention_backward)(float *dq, float *dk, float *dv, const float *dout,
                                     const float *att, const float *q, const float *k,
                                     const float *v, int b, int Tq, int Tk, int n_heads,
                                     int n_kv_heads, int head_dim);

    /* ---- the hypernetwork's head, selection, subspace, intervention ---- */
    void (*position_head_forward)(float *W, float *logits, const float *q, const float *kb,
                                  const float *ks, const float *kself, const int *mb,
                                  const int *ms, const float *inv_freq, int b, int S, int B,
                                  int n_heads, int n_kv_heads, int head_dim);
    void (*position_head_backward)(float *dq, float *dkb, float *dks, float *dkself,
                                   const float *dW, const float *W, const float *q,
                                   const float *kb, const float *ks, const float *kself,
                                   const int *mb, const int *ms, const float *inv_freq, int b,
                                   int S, int B, int n_heads, int n_kv_heads, int head_dim);
    void (*selection_forward)(float *out, const float *W, SelectionMode mode, float threshold,
                              const int *src_pos, const int *base_pos, int b, int S, int B);
    /* *loss is host memory */
    void (*sparsity_loss_forward)(float *loss, const float *W, int b, int S, int B);
    void (*sparsity_loss_backward)(float *dW, const float *W, float dloss, int b, int S, int B);
    void (*householder_orthogonal_forward)(float *R, const float *X, const float *base, int d,
                                           int k);
    void (*householder_orthogonal_backward)(float *dX, const float *dR, const float *X,
                                            const float *base, int d, int k);
    void (*reflect_forward)(float *Rp, float *v, float *unorm, const float *u, const float *R,
                            int b, int d, int k);
    void (*reflect_backward)(float *du, float *dR, const float *dRp, const float *v,
                             const float *unorm, const float *R, int b, int d, int k);
    /* work: B*(2k + d) floats of scratch (the CPU's; the GPU keeps its own) */
    void (*intervention_forward)(float *out, float *diff, float *proj, const float *xb,
                                 const float *Ys, const float *W, const float *R, size_t R_stride,
                                 const float *mask, int b, int S, int B, int d, int k,
                                 float *work);
    void (*intervention_backward)(float *dW, float *dR, float *dmask, float *dxb,
                                  const float *dout, const float *diff, const float *proj,
                                  const float *xb, const float *Ys, const float *W,
                                  const float *R, size_t R_stride, const float *mask, int b,
                                  int S, int B, int d, int k, float *work);

    /* ---- the optimiser ---- */
    /* *norm is host memory */
    void (*grad_norm)(double *norm, const float *g, size_t n);
    /* spans are host memory */
    void (*adamw_step)(float *params, const float *grads, float grad_scale, float *m, float *v,
                       const AdamWSpan *spans, int n_spans, const AdamWConfig *cfg, long step);
};

const Compute *compute_cpu(void);
/* For tests of the device path without a device: the CPU ops, but
 * reporting on_device = 1, so that callers treat the memory as a device's
 * (separate buffers, inputs staged on the host and uploaded, results
 * downloaded).  Bit for bit the CPU's results when the data movement is
 * right. */
const Compute *compute_cpu_staged(void);
/* The GPU ($HD_CUDA_DEVICE, else device 0); NULL with a message when the
 * build has no CUDA or the machine no usable GPU. */
const Compute *compute_cuda(void);
/* on != 0: the GPU's fp32 GEMMs (the hypernetwork's projections, the
 * attention products) run on TF32 tensor cores (~8x on an H100, ~5e-4
 * relative input rounding); off, the default, keeps parity with the CPU.
 * -1 with a message in a build without CUDA. */
int compute_cuda_tf32(int on);
/* "cpu" -> compute_cpu(), "cuda" -> compute_cuda(); NULL with a message. */
const Compute *compute_by_name(const char *name);

#endif
