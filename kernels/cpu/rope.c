#include "cpu/rope.h"

#include <math.h>
#include <stddef.h>

void rope_inv_freq(float *inv_freq, int head_dim, float theta, int llama3_scaling, float factor,
                   float low_freq_factor, float high_freq_factor, int original_max_position)
{
    int half = head_dim / 2;
    for (int i = 0; i < half; i++) {
        /* transformers: 1.0 / (base ** (arange(0, dim, 2).float() / dim)), all fp32 */
        float expo = (float)(2 * i) / (float)head_dim;
        inv_freq[i] = 1.0f / powf(theta, expo);
    }
    if (!llama3_scaling) return;
    float old_len = (float)original_max_position;
    float low_freq_wavelen = old_len / low_freq_factor;
    float high_freq_wavelen = old_len / high_freq_factor;
    const float two_pi = (float)(2.0 * 3.14159265358979323846);
    for (int i = 0; i < half; i++) {
        float f = inv_freq[i];
        float wavelen = two_pi / f;
        /* Long wavelengths (low frequencies) are stretched by factor. */
        float scaled = wavelen > low_freq_wavelen ? f / factor : f;
        int medium = !(wavelen < high_freq_wavelen) && !(wavelen > low_freq_wavelen);
        if (medium) {
            float smooth = (old_len / wavelen - low_freq_factor) / (high_freq_factor - low_freq_factor);
            scaled = (1.0f - smooth) * scaled / factor + smooth * scaled;
        }
        inv_freq[i] = scaled;
    }
}

void rope_angles(float *cos_out, float *sin_out, const int *pos, const float *inv_freq, int N,
                 int half)
{
#pragma omp parallel for schedule(static) if ((long)N * half > 16384)
    for (int n = 0; n < N; n++) {
        float p = (float)pos[n];
        for (int i = 0; i < half; i++) {
            float angle = p * inv_freq[i];
            cos_out[(size_t)n * half + i] = cosf(angle);
            sin_out[(size_t)n * half + i] = sinf(angle);
        }
    }
}

void rope_forward(float *x, const float *cos, const float *sin, int N, int n_heads, int head_dim)
{
    int half = head_dim / 2;
#pragma omp parallel for schedule(static) if ((long)N * n_heads * head_dim > 32768)
    for (int n = 0; n < N; n++) {
        const float *c = cos + (size_t)n * half;
        const float *s = sin + (size_t)n * half;
        for (int h = 0; h < n_heads; h++) {
            float *v = x + ((size_t)n * n_heads + h) * head_dim;
            for (int i = 0; i < half; i++) {
                float a = v[i], b = v[i + half];
                v[i] = a * c[i] - b * s[i];
                v[i + half] = b * c[i] + a * s[i];
            }
        }
    }
}

void rope_backward(float *dinp, const float *dout, const float *cos, const float *sin, int N,
                   int n_heads, int head_dim)
{
    int half = head_dim / 2;
#pragma omp parallel for schedule(static) if ((long)N * n_heads * head_dim > 32768)
    for (int n = 0; n < N; n++) {
        const float *c = cos + (size_t)n * half;
        const float *s = sin + (size_t)n * half;
        for (int h = 0; h < n_heads; h++) {
            size_t off = ((size_t)n * n_heads + h) * head_dim;
            const float *g = dout + off;
            float *d = dinp + off;
            for (int i = 0; i < half; i++) {
                float ga = g[i], gb = g[i + half];
                d[i] += ga * c[i] + gb * s[i];
                d[i + half] += gb * c[i] - ga * s[i];
            }
        }
    }
}
