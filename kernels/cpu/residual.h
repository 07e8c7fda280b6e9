/* The residual connection: out = a + b, element by element.  Its backward
 * hands the same gradient to both branches. */
#ifndef HD_KERNELS_CPU_RESIDUAL_H
#define HD_KERNELS_CPU_RESIDUAL_H

#include <stddef.h>

/* out[n] = a[n] + b[n]; out may equal a or b. */
void residual_forward(float *out, const float *a, const float *b, size_t n);

/* da[n] += dout[n]; db[n] += dout[n] (either may be NULL). */
void residual_backward(float *da, float *db, const float *dout, size_t n);

#endif
