#include "cpu/softmax_xent.h"

#include <math.h>
#include <stddef.h>

void softmax_xent_forward(float *losses, float *probs, const float *logits, const int *targets,
                          int N, int V)
{
#pragma omp parallel for schedule(static)
    for (int n = 0; n < N; n++) {
        const float *x = logits + (size_t)n * V;
        float mx = -INFINITY;
        for (int i = 0; i < V; i++)
            if (x[i] > mx) mx = x[i];
        double sum = 0.0;
        for (int i = 0; i < V; i++) sum += expf(x[i] - mx);
        float lse = mx + (float)log(sum);
        int t = targets ? targets[n] : -1;
        if (losses) losses[n] = (t >= 0 && t < V) ? lse - x[t] : 0.0f;
        if (probs) {
            float *p = probs + (size_t)n * V;
            float inv = (float)(1.0 / sum);
            for (int i = 0; i < V; i++) p[i] = expf(x[i] - mx) * inv;
        }
    }
}

void softmax_xent_backward(float *dlogits, const float *dlosses, const float *probs,
                           const int *targets, int N, int V)
{
#pragma omp parallel for schedule(static)
    for (int n = 0; n < N; n++) {
        int t = targets[n];
        if (t < 0 || t >= V) continue;
        float g = dlosses ? dlosses[n] : 1.0f;
        const float *p = probs + (size_t)n * V;
        float *d = dlogits + (size_t)n * V;
        for (int i = 0; i < V; i++) d[i] += g * p[i];
        d[t] -= g;
    }
}
