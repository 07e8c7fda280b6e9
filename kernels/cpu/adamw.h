/* AdamW (Loshchilov & Hutter): Adam with decoupled weight decay and bias
 * correction, in the order of PyTorch's single-tensor implementation
 * (torch/optim/adamw.py, the path it takes for CPU tensors):
 *
 *   p  *= 1 - lr * wd
 *   m  += (1 - beta1) (g - m)          (exp_avg.lerp_(g, 1 - beta1))
 *   v   = beta2 v + (1 - beta2) g^2
 *   p  -= lr / (1 - beta1^t) * m / (sqrt(v) / sqrt(1 - beta2^t) + eps)
 *
 * with t the 1-based step count.  Scalars are computed in double, as
 * Python does, then used in fp32.
 *
 * Parameter groups: a model's parameters live in one buffer; each span
 * [offset, offset + count) of it gets its own lr and weight decay (HyperDAS:
 * 4e-5 / 0.01 for the hypernetwork, 1e-3 / 0 for the rotation).  Parts of
 * the buffer in no span (frozen buffers) are not touched. */
#ifndef HD_KERNELS_CPU_ADAMW_H
#define HD_KERNELS_CPU_ADAMW_H

#include <stddef.h>

typedef struct {
    float beta1, beta2, eps;
} AdamWConfig;

/* PyTorch's defaults: 0.9, 0.999, 1e-8. */
AdamWConfig adamw_default_config(void);

/* One step on n values; step >= 1 is the count including this one.  The
 * gradient used is g * grad_scale (the clipping coefficient of
 * grad_clip_coef, so that clipping needs no pass writing the gradients;
 * 1 = g as it is).  m and v are written only where they change, so moments
 * that stay zero (rows of an embedding no batch has used) cost no memory. */
void adamw_update(float *p, const float *g, float grad_scale, float *m, float *v, size_t n,
                  float lr, float weight_decay, const AdamWConfig *cfg, long step);

/* The update on a span whose g, m and v are all zero: p *= 1 - lr * wd,
 * bit for bit what adamw_update gives there. */
void adamw_decay(float *p, size_t n, float lr, float weight_decay);

/* decay_only: the caller knows that g, m and v are all zero on the span
 * (embedding rows no batch has used), where the rule reduces to
 * p *= 1 - lr * wd, the same bits (m / (sqrt(v) / c + eps) = 0).  The
 * update then reads and writes p alone instead of p, g, m and v: on
 * SmolLM2's hypernetwork the embedding is 38% (8 layers) to 53% (4 layers)
 * of the values the optimiser touches. */
typedef struct {
    size_t offset, count;
    float lr, weight_decay;
    int decay_only;
} AdamWSpan;

/* adamw_update on every span of one buffer (params, grads, m, v share the
 * layout). */
void adamw_step(float *params, const float *grads, float grad_scale, float *m, float *v,
                const AdamWSpan *spans, int n_spans, const AdamWConfig *cfg, long step);

#endif
