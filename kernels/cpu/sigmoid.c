#include "cpu/sigmoid.h"

#include <math.h>

void sigmoid_forward(float *out, const float *in, float temperature, size_t n)
{
    for (size_t i = 0; i < n; i++) out[i] = 1.0f / (1.0f + expf(-in[i] / temperature));
}

void sigmoid_backward(float *din, const float *dout, const float *out, float temperature,
                      size_t n)
{
    for (size_t i = 0; i < n; i++) din[i] += dout[i] * out[i] * (1.0f - out[i]) / temperature;
}
