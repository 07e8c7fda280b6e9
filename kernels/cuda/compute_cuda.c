/* The GPU row of the op table (compute.h): each entry calls its
 * kernels/cuda twin and keeps the first failure (see compute.h: later ops
 * do nothing until status() reports it, so one bad launch does not become
 * a cascade of messages about garbage). */
#include <stdio.h>
#include <stdint.h>

#include "compute.h"
#include "kernel_error.h"

#ifdef HD_CUDA

#include "cuda/cuda_hypernet_ops.h"
#include "cuda/cuda_ops.h"

static int failed;
static char first_error[1024];

/* rc of a kernels/cuda call: 0, or -1 with hd_last_error() set */
static void note(int rc)
{
    if (rc == 0 || failed) return;
    failed = 1;
    snprintf(first_error, sizeof first_error, "%s", hd_last_error());
}

static int cu_status(void)
{
    if (!failed) note(hd_cuda_sync());
    if (!failed) return 0;
    failed = 0;
    return hd_fail("%s", first_error);
}

static void *cu_alloc(size_t bytes)
{
    if (bytes == 0) return NULL;
    void *p = hd_cuda_malloc(bytes);
    if (p && hd_cuda_zero(p, bytes)) {
        hd_cuda_free(p);
        return NULL;
    }
    return p;
}

static void cu_upload(void *dst, const void *src, size_t bytes)
{
    if (!failed && bytes) note(hd_cuda_upload(dst, src, bytes));
}

static void cu_download(void *dst, const void *src, size_t bytes)
{
    if (!failed && bytes) note(hd_cuda_download(dst, src, bytes));
}

static void cu_copy(void *dst, const void *src, size_t bytes)
{
    if (!failed && bytes && dst != src) note(hd_cuda_copy(dst, src, bytes));
}

static void cu_zero(void *dst, size_t bytes)
{
    if (!failed && bytes) note(hd_cuda_zero(dst, bytes));
}

static void cu_matmul_forward(float *out, const float *inp, const float *weight,
                              const float *bias, int N, int C, int OC)
{
    if (!failed) note(matmul_forward_cuda(out, inp, weight, bias, N, C, OC));
}

static void cu_matmul_backward(float *dinp, float *dweight, float *dbias, const float *dout,
                               const float *inp, const float *weight, int N, int C, int OC)
{
    if (!failed) note(matmul_backward_cuda(dinp, dweight, dbias, dout, inp, weight, N, C, OC));
}

static void cu_matmul_forward_strided(float *out, const float *inp, const float *weight, int ldw,
                                      int N, int C, int OC)
{
    if (!failed) note(matmul_forward_strided_cuda(out, inp, weight, ldw, N, C, OC));
}

static void cu_matmul_backward_strided(float *dweight, const float *dout, const float *inp,
                                       int ldw, int N, int C, int OC)
{
    if (!failed) note(matmul_backward_strided_cuda(dweight, dout, inp, ldw, N, C, OC));
}

static void cu_frozen_matmul_forward(float *out, const float *inp, const void *weight, int N,
                                     int C, int OC)
{
    if (!failed) note(matmul_forward_bf16w_cuda(out, inp, weight, NULL, N, C, OC));
}

static void cu_frozen_matmul_backward(float *dinp, const float *dout, const void *weight, int N,
                                      int C, int OC)
{
    if (!failed) note(matmul_backward_bf16w_cuda(dinp, dout, weight, N, C, OC));
}

static void cu_embedding_forward(float *out, const int *ids, const float *table, int N, int V,
                                 int d)
{
    if (!failed) note(embedding_forward_cuda(out, ids, table, N, V, d));
}

static void cu_embedding_backward(float *dtable, const float *dout, const int *ids, int N, int V,
                                  int d)
{
    if (!failed) note(embedding_backward_cuda(dtable, dout, ids, N, V, d));
}

static void cu_rmsnorm_forward(float *out, float *rstd, const float *inp, const float *weight,
                               int N, int d, float eps)
{
    if (!failed) note(rmsnorm_forward_cuda(out, rstd, inp, weight, N, d, eps));
}

static void cu_rmsnorm_backward(float *dinp, float *dweight, const float *dout, const float *inp,
                                const float *weight, const float *rstd, int N, int d)
{
    if (!failed) note(rmsnorm_backward_cuda(dinp, dweight, dout, inp, weight, rstd, N, d));
}

static void cu_rope_forward(float *x, const float *cos, const float *sin, int N, int n_heads,
                            int head_dim)
{
    if (!failed) note(rope_forward_cuda(x, cos, sin, N, n_heads, head_dim));
}

static void cu_rope_backward(float *dinp, const float *dout, const float *cos, const float *sin,
                             int N, int n_heads, int head_dim)
{
    if (!failed) note(rope_backward_cuda(dinp, dout, cos, sin, N, n_heads, head_dim));
}

static void cu_swiglu_forward(float *out, const float *gate, const float *up, size_t n)
{
    if (!failed) note(swiglu_forward_cuda(out, gate, up, n));
}

static void cu_swiglu_backward(float *dgate, float *dup, const float *dout, const float *gate,
                               const float *up, size_t n)
{
    if (!failed) note(swiglu_backward_cuda(dgate, dup, dout, gate, up, n));
}

static void cu_residual_forward(float *out, const float *a, const float *b, size_t n)
{
    if (!failed) note(residual_forward_cuda(out, a, b, n));
}

static void cu_sigmoid_forward(float *out, const float *in, float temperature, size_t n)
{
    if (!failed) note(sigmoid_forward_cuda(out, in, temperature, n));
}

static void cu_sigmoid_backward(float *din, const float *dout, const float *out,
                                float temperature, size_t n)
{
    if (!failed) note(sigmoid_backward_cuda(din, dout, out, temperature, n));
}

static void cu_softmax_xent_forward(float *losses, float *probs, const float *logits,
                                    const int *targets, int N, int V)
{
    if (!failed) note(softmax_xent_forward_cuda(losses, probs, logits, targets, N, V));
}

static void cu_softmax_xent_backward(float *dlogits, const float *dlosses, const float *probs,
                                     const int *targets, int N, int V)
{
    if (!failed) note(softmax_xent_backward_cuda(dlogits, dlosses, probs, targets, N, V));
}

static void cu_attention_forward(float *out, float *att, const float *q, const float *k,
                                 const float *v, const int *key_mask, int b, int Tq, int Tk,
                                 int Tcap, int H, int Hkv, int hd)
{
    if (!failed)
        note(attention_forward_cuda(out, att, q, k, v, key_mask, b, Tq, Tk, Tcap, H, Hkv, hd));
}

static void cu_attention_backward(float *dq, float *dk, float *dv, const float *dout,
                                  const float *att, const float *q, const float *k,
                                  const float *v, int b, int Tq, int Tk, int Tcap, int H, int Hkv,
                                  int hd)
{
    if (!failed)
        note(attention_backward_cuda(dq, dk, dv, dout, att, q, k, v, b, Tq, Tk, Tcap, H, Hkv,
                                     hd));
}

static void cu_cross_attention_forward(float *out, float *att, const float *q, const float *k,
                                       const float *v, const int *q_mask, const int *k_mask,
                                       int b, int Tq, int Tk, int H, int Hkv, int hd)
{
    if (!failed)
        note(cross_attention_forward_cuda(out, att, q, k, v, q_mask, k_mask, b, Tq, Tk, H, Hkv,
                                          hd));
}

static void cu_cross_attention_backward(float *dq, float *dk, float *dv, const float *dout,
                                        const float *att, const float *q, const float *k,
                                        const float *v, int b, int Tq, int Tk, int H, int Hkv,
                                        int hd)
{
    if (!failed)
        note(cross_attention_backward_cuda(dq, dk, dv, dout, att, q, k, v, b, Tq, Tk, H, Hkv,
                                           hd));
}

static void cu_position_head_forward(float *W, float *logits, const float *q, const float *kb,
                                     const float *ks, const float *kself, const int *mb,
                                     const int *ms, const float *inv_freq, int b, int S, int B,
                                     int H, int Hkv, int hd)
{
    if (!failed)
        note(position_head_forward_cuda(W, logits, q, kb, ks, kself, mb, ms, inv_freq, b, S, B,
                                        H, Hkv, hd));
}

static void cu_position_head_backward(float *dq, float *dkb, float *dks, float *dkself,
                                      const float *dW, const float *W, const float *q,
                                      const float *kb, const float *ks, const float *kself,
                                      const int *mb, const int *ms, const float *inv_freq, int b,
                                      int S, int B, int H, int Hkv, int hd)
{
    if (!failed)
        note(position_head_backward_cuda(dq, dkb, dks, dkself, dW, W, q, kb, ks, kself, mb, ms,
                                         inv_freq, b, S, B, H, Hkv, hd));
}

static void cu_selection_forward(float *out, const float *W, SelectionMode mode, float threshold,
                                 const int *src_pos, const int *base_pos, int b, int S, int B)
{
    if (!failed) note(selection_forward_cuda(out, W, mode, threshold, src_pos, base_pos, b, S, B));
}

static void cu_sparsity_loss_forward(float *loss, const float *W, int b, int S, int B)
{
    if (!failed) note(sparsity_loss_forward_cuda(loss, W, b, S, B));
}

static void cu_sparsity_loss_backward(float *dW, const float *W, float dloss, int b, int S, int B)
{
    if (!failed) note(sparsity_loss_backward_cuda(dW, W, dloss, b, S, B));
}

static void cu_householder_orthogonal_forward(float *R, const float *X, const float *base, int d,
                                              int k)
{
    if (!failed) note(householder_orthogonal_forward_cuda(R, X, base, d, k));
}

static void cu_householder_orthogonal_backward(float *dX, const float *dR, const float *X,
                                               const float *base, int d, int k)
{
    if (!failed) note(householder_orthogonal_backward_cuda(dX, dR, X, base, d, k));
}

static void cu_reflect_forward(float *Rp, float *v, float *unorm, const float *u, const float *R,
                               int b, int d, int k)
{
    if (!failed) note(reflect_forward_cuda(Rp, v, unorm, u, R, b, d, k));
}

static void cu_reflect_backward(float *du, float *dR, const float *dRp, const float *v,
                                const float *unorm, const float *R, int b, int d, int k)
{
    if (!failed) note(reflect_backward_cuda(du, dR, dRp, v, unorm, R, b, d, k));
}

static void cu_intervention_forward(float *out, float *diff, float *proj, const float *xb,
                                    const float *Ys, const float *W, const float *R,
                                    size_t R_stride, const float *mask, int b, int S, int B,
                                    int d, int k, float *work)
{
    (void)work;
    if (!failed)
        note(intervention_forward_cuda(out, diff, proj, xb, Ys, W, R, R_stride, mask, b, S, B, d,
                                       k));
}

static void cu_intervention_backward(float *dW, float *dR, float *dmask, float *dxb,
                                     const float *dout, const float *diff, const float *proj,
                                     const float *xb, const float *Ys, const float *W,
                                     const float *R, size_t R_stride, const float *mask, int b,
                                     int S, int B, int d, int k, float *work)
{
    (void)work;
    if (!failed)
        note(intervention_backward_cuda(dW, dR, dmask, dxb, dout, diff, proj, xb, Ys, W, R,
                                        R_stride, mask, b, S, B, d, k));
}

static void cu_grad_norm(double *norm, const float *g, size_t n)
{
    if (!failed) note(grad_norm_cuda(g, n, norm));
}

static void cu_adamw_step(float *params, const float *grads, float grad_scale, float *m,
                          float *v, const AdamWSpan *spans, int n_spans, const AdamWConfig *cfg,
                          long step)
{
    if (!failed)
        note(adamw_step_cuda(params, grads, grad_scale, m, v, spans, n_spans, cfg, step));
}

static const Compute cuda = {
    .name = "cuda",
    .on_device = 1,
    .alloc = cu_alloc,
    .release = hd_cuda_free,
    .upload = cu_upload,
    .download = cu_download,
    .copy = cu_copy,
    .zero = cu_zero,
    .status = cu_status,
    .matmul_forward = cu_matmul_forward,
    .matmul_backward = cu_matmul_backward,
    .matmul_forward_strided = cu_matmul_forward_strided,
    .matmul_backward_strided = cu_matmul_backward_strided,
    .frozen_matmul_forward = cu_frozen_matmul_forward,
    .frozen_matmul_backward = cu_frozen_matmul_backward,
    .embedding_forward = cu_embedding_forward,
    .embedding_backward = cu_embedding_backward,
    .rmsnorm_forward = cu_rmsnorm_forward,
    .rmsnorm_backward = cu_rmsnorm_backward,
    .rope_forward = cu_rope_forward,
    .rope_backward = cu_rope_backward,
    .swiglu_forward = cu_swiglu_forward,
    .swiglu_backward = cu_swiglu_backward,
    .residual_forward = cu_residual_forward,
    .sigmoid_forward = cu_sigmoid_forward,
    .sigmoid_backward = cu_sigmoid_backward,
    .softmax_xent_forward = cu_softmax_xent_forward,
    .softmax_xent_backward = cu_softmax_xent_backward,
    .attention_forward = cu_attention_forward,
    .attention_backward = cu_attention_backward,
    .cross_attention_forward = cu_cross_attention_forward,
    .cross_attention_backward = cu_cross_attention_backward,
    .position_head_forward = cu_position_head_forward,
    .position_head_backward = cu_position_head_backward,
    .selection_forward = cu_selection_forward,
    .sparsity_loss_forward = cu_sparsity_loss_forward,
    .sparsity_loss_backward = cu_sparsity_loss_backward,
    .householder_orthogonal_forward = cu_householder_orthogonal_forward,
    .householder_orthogonal_backward = cu_householder_orthogonal_backward,
    .reflect_forward = cu_reflect_forward,
    .reflect_backward = cu_reflect_backward,
    .intervention_forward = cu_intervention_forward,
    .intervention_backward = cu_intervention_backward,
    .grad_norm = cu_grad_norm,
    .adamw_step = cu_adamw_step,
};

const Compute *compute_cuda(void)
{
    if (!hd_cuda_available()) return NULL;
    /* the first use picks the device; later ones keep whichever was picked
     * (dist_nccl_init chooses one per rank) */
    if (!*hd_cuda_device_name() && hd_cuda_init(-1)) return NULL;
    return &cuda;
}

int compute_cuda_tf32(int on)
{
    return hd_cuda_set_tf32(on);
}

#else /* built without CUDA */

int compute_cuda_tf32(int on)
{
    (void)on;
    return hd_fail("this build has no CUDA (nvcc was not found, or make CUDA=0): "
                   "rebuild with the CUDA toolkit installed for --device cuda");
}

const Compute *compute_cuda(void)
{
    hd_fail("this build has no CUDA (nvcc was not found, or make CUDA=0): "
            "rebuild with the CUDA toolkit installed for --device cuda");
    return NULL;
}

#endif
