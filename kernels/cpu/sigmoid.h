/* The logistic function with a temperature, MaskSelect's soft mask over
 * the k rotated directions (hyperdas(7) 5.3): m = 1 / (1 + exp(-u / tau)).
 * The backward ADDS, as every kernels/cpu backward: du += dm m (1 - m) / tau,
 * from the forward's output (no need to keep u). */
#ifndef HD_KERNELS_CPU_SIGMOID_H
#define HD_KERNELS_CPU_SIGMOID_H

#include <stddef.h>

void sigmoid_forward(float *out, const float *in, float temperature, size_t n);
void sigmoid_backward(float *din, const float *dout, const float *out, float temperature,
                      size_t n);

#endif
