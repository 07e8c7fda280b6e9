#include "cpu/adamw.h"

#include <math.h>

AdamWConfig adamw_default_config(void)
{
    AdamWConfig c = {0.9f, 0.999f, 1e-8f};
    return c;
}

void adamw_update(float *p, const float *g, float grad_scale, float *m, float *v, size_t n,
                  float lr, float weight_decay, const AdamWConfig *cfg, long step)
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
        /* the same fp32 product as clipping g in place first would give */
        float gi = grad_scale == 1.0f ? g[i] : g[i] * grad_scale;
        float m0 = m[i], v0 = v[i];
        float pi = p[i] * decay;
        float mi = m0 + one_minus_b1 * (gi - m0);
        float vi = v0 * beta2 + one_minus_b2 * gi * gi;
        float denom = sqrtf(vi) / bc2_sqrt + eps;
        p[i] = pi - step_size * (mi / denom);
        /* Moments are stored only when they change: those of embedding rows
         * no batch has used stay 0 and their pages are never written, so the
         * kernel does not make them resident (a third of SmolLM2's
         * hypernetwork is its embedding).  NaN compares unequal: stored. */
        if (mi != m0) m[i] = mi;
        if (vi != v0) v[i] = vi;
    }
}

void adamw_decay(float *p, size_t n, float lr, float weight_decay)
{
    /* the factor computed as adamw_update computes it */
    const float decay = (float)(1.0 - (double)lr * weight_decay);
    if (decay == 1.0f) return;
#pragma omp parallel for schedule(static) if (n > 65536)
    for (size_t i = 0; i < n; i++) p[i] *= decay;
}

void adamw_step(float *params, const float *grads, float grad_scale, float *m, float *v,
                const AdamWSpan *spans, int n_spans, const AdamWConfig *cfg, long step)
{
    for (int i = 0; i < n_spans; i++) {
        size_t o = spans[i].offset;
        if (spans[i].decay_only) {
            adamw_decay(params + o, spans[i].count, spans[i].lr, spans[i].weight_decay);
            continue;
        }
        adamw_update(params + o, grads + o, grad_scale, m + o, v + o, spans[i].count, spans[i].lr,
                     spans[i].weight_decay, cfg, step);
    }
}
