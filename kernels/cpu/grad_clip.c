#include "cpu/grad_clip.h"

#include <math.h>

double grad_norm(const float *g, size_t n)
{
    double ss = 0.0;
#pragma omp parallel for reduction(+ : ss) schedule(static) if (n > 65536)
    for (size_t i = 0; i < n; i++) ss += (double)g[i] * g[i];
    return sqrt(ss);
}

float grad_clip_coef(double norm, double max_norm)
{
    double coef = max_norm / (norm + 1e-6);
    return coef < 1.0 ? (float)coef : 1.0f;
}
