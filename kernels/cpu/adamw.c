#include "cpu/adamw.h"

#include <math.h>

AdamWConfig adamw_default_config(void)
{
    AdamWConfig c = {0.9f, 0.999f, 1e-8f};
    return c;
}

void adamw_update(float *p, const float *g, float *m, float *v, size_t n, float lr,
                  float weight_decay, const AdamWConfig *cfg, long step)
{
    if (step < 1) step = 1;
    const double b1 = cfg->beta1, b2 = cfg->beta2;
    const float decay = (float)(1.0 - (double)lr * weight_decay);
    const float one_minus_b1 = (float)(1.0 - b1), one_minus_b2 = (float)(1.0 - b2);
    const float beta2 = cfg->beta2, eps = cfg->eps;
    const double bc1 = 1.0 - pow(b1, (double)step), bc2 = 1.0 - pow(b2, (double)step);
    const float step_size = (float)((double)lr / bc1);
    const float bc2_sqrt = (float)sqrt(bc2);
#pragma omp parallel for schedule(static) if (n > 65536)
    for (size_t i = 0; i < n; i++) {
        float gi = g[i];
        float pi = p[i] * decay;
        float mi = m[i] + one_minus_b1 * (gi - m[i]);
        float vi = v[i] * beta2 + one_minus_b2 * gi * gi;
        float denom = sqrtf(vi) / bc2_sqrt + eps;
        p[i] = pi - step_size * (mi / denom);
        m[i] = mi;
        v[i] = vi;
    }
}

void adamw_step(float *params, const float *grads, float *m, float *v, const AdamWSpan *spans,
                int n_spans, const AdamWConfig *cfg, long step)
{
    for (int i = 0; i < n_spans; i++) {
        size_t o = spans[i].offset;
        adamw_update(params + o, grads + o, m + o, v + o, spans[i].count, spans[i].lr,
                     spans[i].weight_decay, cfg, step);
    }
}
