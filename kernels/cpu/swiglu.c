#include "cpu/swiglu.h"

#include <math.h>

void swiglu_forward(float *out, const float *gate, const float *up, size_t n)
{
    /* x / (1 + exp(-x)) as PyTorch's CPU silu: for x -> -inf, exp overflows
     * to inf and the quotient is a clean -0, never NaN. */
#pragma omp parallel for schedule(static) if (n > 262144)
    for (size_t i = 0; i < n; i++) {
        float g = gate[i];
        out[i] = g / (1.0f + expf(-g)) * up[i];
    }
}

void swiglu_backward(float *dgate, float *dup, const float *dout, const float *gate,
                     const float *up, size_t n)
{
#pragma omp parallel for schedule(static) if (n > 262144)
    for (size_t i = 0; i < n; i++) {
        float g = gate[i];
        float sig = 1.0f / (1.0f + expf(-g));
        float silu = g * sig;
        if (dgate) dgate[i] += dout[i] * up[i] * sig * (1.0f + g * (1.0f - sig));
        if (dup) dup[i] += dout[i] * silu;
    }
}
