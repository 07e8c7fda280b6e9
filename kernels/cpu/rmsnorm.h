/* RMSNorm (Llama): out = weight * x / sqrt(mean(x^2) + eps), per row of d.
 *
 * Same order of operations as Hugging Face LlamaRMSNorm in fp32: the row is
 * first scaled by rstd, then multiplied by the weight.  The forward saves
 * rstd per row because the backward needs it and it costs one float a row. */
#ifndef HD_KERNELS_CPU_RMSNORM_H
#define HD_KERNELS_CPU_RMSNORM_H

/* out[N, d], rstd[N] (may be NULL when no backward will follow). */
void rmsnorm_forward(float *out, float *rstd, const float *inp, const float *weight, int N, int d,
                     float eps);

/* With xhat = inp * rstd and g = dout * weight:
 *   dinp    += rstd * (g - xhat * mean(g * xhat))
 *   dweight += sum over rows of dout * xhat
 * dinp or dweight may be NULL. */
void rmsnorm_backward(float *dinp, float *dweight, const float *dout, const float *inp,
                      const float *weight, const float *rstd, int N, int d);

#endif
