/* The HyperDAS intervention at the target's hidden state hs[L] (hyperdas(7) 5.2,
 * 5.3), one batch row r at a time, base positions t < B:
 *
 *   ysrc[t] = sum_{s<S} W[s,t] Ys[s] + W[S,t] xb[t]     (the mixed source)
 *   diff[t] = ysrc[t] - xb[t]
 *   proj[t] = diff[t] R_r                                 [k]
 *   out[t]  = xb[t] + (m_r (.) proj[t]) R_r^T
 *
 * which is xb + (ysrc - xb) R R^T in factored form (the d x d projector is
 * never built).  R_r is the row's own matrix (ReflectSelect: R' [b, d, k],
 * R_stride = d*k) or one shared matrix (DAS and MaskSelect: R [d, k],
 * R_stride = 0); m [b, k] is MaskSelect's soft mask (NULL: all ones).  With
 * R == NULL (no subspace module) the whole vector is patched: out = ysrc.
 *
 * Layouts: xb, out, diff [b, B, d]; Ys [b, S, d]; W [b, S+1, B]; proj
 * [b, B, k].  diff and proj are kept for the backward.  xb and Ys are
 * constants of the training step (target states), but dxb is offered. */
#ifndef HD_KERNELS_CPU_INTERVENTION_H
#define HD_KERNELS_CPU_INTERVENTION_H

#include <stddef.h>

/* proj may be NULL when R is NULL; work (B*k floats) is read only with a
 * mask. */
void intervention_forward(float *out, float *diff, float *proj, const float *xb, const float *Ys,
                          const float *W, const float *R, size_t R_stride, const float *mask,
                          int b, int S, int B, int d, int k, float *work);

/* dW [b, S+1, B], dR (same layout as R: [b,d,k] or [d,k] summed over rows),
 * dmask [b, k], dxb [b, B, d] += gradients given dout [b, B, d]; any may be
 * NULL.  work: B*(2k + d) floats of scratch. */
void intervention_backward(float *dW, float *dR, float *dmask, float *dxb, const float *dout,
                           const float *diff, const float *proj, const float *xb, const float *Ys,
                           const float *W, const float *R, size_t R_stride, const float *mask,
                           int b, int S, int B, int d, int k, float *work);

#endif
