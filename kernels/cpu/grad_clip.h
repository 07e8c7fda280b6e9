/* Gradient clipping by the global L2 norm, as torch.nn.utils.clip_grad_norm_:
 *   norm = sqrt(sum of every gradient squared)
 *   g   *= min(1, max_norm / (norm + 1e-6))
 * HyperDAS clips all trainable parameters together at 4.0.  The scaling itself
 * happens inside AdamW (adamw_step's grad_scale). */
#ifndef HD_KERNELS_CPU_GRAD_CLIP_H
#define HD_KERNELS_CPU_GRAD_CLIP_H

#include <stddef.h>

/* The L2 norm of n values, accumulated in double. */
double grad_norm(const float *g, size_t n);

/* The factor clipping multiplies the gradients by: min(1, max_norm /
 * (norm + 1e-6)) in fp32.  hd-train hands it to adamw_step instead of
 * scaling the gradients in place. */
float grad_clip_coef(double norm, double max_norm);

#endif
