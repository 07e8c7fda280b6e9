/* Householder reflections, the two places HyperDAS uses them (hyperdas(7) 5.3, 5.4).
 *
 * 1. The orthogonal parametrisation of the DAS matrix R [d, k] (k <= d), as
 *    torch.nn.utils.parametrizations.orthogonal builds it for a tall matrix
 *    with the default Householder map and use_trivialization=True:
 *        v_j   = (0, .., 0, 1, X[j+1, j], .., X[d-1, j])   (column j of X below
 *                the diagonal, with an implicit unit diagonal)
 *        tau_j = 2 / (1 + sum_{i>j} X[i,j]^2)              (= 2 / |v_j|^2: an
 *                exact reflector H_j = I - tau_j v_j v_j^T)
 *        Q     = (H_0 H_1 .. H_{k-1})[:, :k]                (LAPACK orgqr)
 *        Q[:, j] *= (int)X[j, j]                           (the diagonal of X
 *                only carries a sign, -1 at init; it gets no gradient)
 *        R     = base @ Q                                  (base [d, d] is a
 *                fixed orthogonal buffer, "Q0")
 *    X [d, k] is the trained tensor; only its strictly lower part matters to
 *    R, so dX is zero on and above the diagonal.  X = -I gives R = base[:, :k].
 *    The backward never stores the k intermediate products: a reflector is
 *    its own inverse, so it walks the chain again, undoing one at a time.
 *
 * 2. ReflectSelect's per-example reflection of R:
 *        v  = u / |u|                  (u [b, d], the instruction's vector)
 *        R' = (I - 2 v v^T) R = R - 2 v (v^T R)      [b, d, k]
 *    The d x d reflector is never built. */
#ifndef HD_KERNELS_CPU_HOUSEHOLDER_H
#define HD_KERNELS_CPU_HOUSEHOLDER_H

/* R [d, k]; base may be NULL (identity).  The reflector chain runs in
 * double (O(d k^2), small next to base @ Q, one sgemm). */
void householder_orthogonal_forward(float *R, const float *X, const float *base, int d, int k);

/* dX [d, k] += dL/dX given dR = dL/dR. */
void householder_orthogonal_backward(float *dX, const float *dR, const float *X,
                                     const float *base, int d, int k);

/* Rp [b, d, k] = R - 2 v (v^T R) with v = u / |u| per row; v [b, d] and
 * unorm [b] (= |u|) are kept for the backward.  A zero u gives v = NaN, as
 * in the reference; the caller checks the loss for finiteness. */
void reflect_forward(float *Rp, float *v, float *unorm, const float *u, const float *R, int b,
                     int d, int k);

/* du [b, d] += dL/du and dR [d, k] += dL/dR (summed over the batch) given
 * dRp = dL/dR' [b, d, k]; either may be NULL. */
void reflect_backward(float *du, float *dR, const float *dRp, const float *v, const float *unorm,
                      const float *R, int b, int d, int k);

#endif
