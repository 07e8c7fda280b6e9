/* Gradient clipping by the global L2 norm, as torch.nn.utils.clip_grad_norm_:
 *   norm = sqrt(sum of every gradient squared)
 *   g   *= min(1, max_norm / (norm + 1e-6))
 * HyperDAS clips all trainable parameters together at 4.0. */
#ifndef HD_KERNELS_CPU_GRAD_CLIP_H
#define HD_KERNELS_CPU_GRAD_CLIP_H

#include <stddef.h>

/* The L2 norm of n values, accumulated in double. */
double grad_norm(const float *g, size_t n);

/* Scales g in place when its norm exceeds max_norm; returns the norm
 * before clipping. */
double grad_clip(float *g, size_t n, double max_norm);

#endif
