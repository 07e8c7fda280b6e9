#include "cpu/rmsnorm.h"

#include <math.h>
#include <stddef.h>

void rmsnorm_forward(float *out, float *rstd, const float *inp, const float *weight, int N, int d,
                     float eps)
{
#pragma omp parallel for schedule(static) if ((long)N * d > 32768)
    for (int n = 0; n < N; n++) {
        const float *x = inp + (size_t)n * d;
        float *o = out + (size_t)n * d;
        /* The sum of squares in double: d reaches 4096 and the extra
         * precision is free next to the matmuls around it. */
        double ss = 0.0;
        for (int i = 0; i < d; i++) ss += (double)x[i] * x[i];
        float r = 1.0f / sqrtf((float)(ss / d) + eps);
        for (int i = 0; i < d; i++) o[i] = weight[i] * (x[i] * r);
        if (rstd) rstd[n] = r;
    }
}

void rmsnorm_backward(float *dinp, float *dweight, const float *dout, const float *inp,
                      const float *weight, const float *rstd, int N, int d)
{
    if (dinp) {
#pragma omp parallel for schedule(static) if ((long)N * d > 32768)
        for (int n = 0; n < N; n++) {
            const float *x = inp + (size_t)n * d;
            const float *g = dout + (size_t)n * d;
            float *dx = dinp + (size_t)n * d;
            float r = rstd[n];
            double dot = 0.0; /* sum of (dout*w) * xhat */
            for (int i = 0; i < d; i++) dot += (double)(g[i] * weight[i]) * (x[i] * r);
            float mean = (float)(dot / d);
            for (int i = 0; i < d; i++) {
                float xhat = x[i] * r;
                dx[i] += r * (g[i] * weight[i] - xhat * mean);
            }
        }
    }
    if (dweight) {
        /* Parallel over columns, so that no two threads add to the same dweight[i]. */
#pragma omp parallel for schedule(static) if ((long)N * d > 32768)
        for (int i = 0; i < d; i++) {
            double s = 0.0;
            for (int n = 0; n < N; n++)
                s += (double)dout[(size_t)n * d + i] * (inp[(size_t)n * d + i] * rstd[n]);
            dweight[i] += (float)s;
        }
    }
}
