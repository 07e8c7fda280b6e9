#include "cpu/sparsity_loss.h"

#include <stdint.h>
#include <string.h>

static double row_sum(const float *w, int s, int B)
{
    double sum = 0.0;
    for (int t = 0; t < B; t++) sum += w[(size_t)s * B + t];
    return sum;
}

float sparsity_loss_forward(const float *W, int b, int S, int B)
{
    const size_t P = (size_t)(S + 1) * B;
    double total = 0.0;
    for (int r = 0; r < b; r++)
        for (int s = 0; s < S; s++) {
            double rs = row_sum(W + r * P, s, B);
            if (rs > 1.0) total += rs;
        }
    return b > 0 ? (float)(total / b) : 0.0f;
}

void sparsity_loss_backward(float *dW, const float *W, float dloss, int b, int S, int B)
{
    const size_t P = (size_t)(S + 1) * B;
    if (b <= 0) return;
    float g = dloss / (float)b;
    for (int r = 0; r < b; r++)
        for (int s = 0; s < S; s++)
            if (row_sum(W + r * P, s, B) > 1.0)
                for (int t = 0; t < B; t++) dW[r * P + (size_t)s * B + t] += g;
}

static float round_bf16(float x)
{
    uint32_t u;
    memcpy(&u, &x, 4);
    if ((u & 0x7f800000u) == 0x7f800000u) return x; /* inf, NaN */
    u += 0x7fffu + ((u >> 16) & 1u);
    u &= 0xffff0000u;
    memcpy(&x, &u, 4);
    return x;
}

float sparsity_weight(long step, long total_steps, float start, float end, float warm_up_ratio,
                      int bf16)
{
    if (total_steps < 0 || step < 0 || step > total_steps) return 0.0f;
    long warm = (long)(warm_up_ratio * (double)total_steps);
    if (step < warm) return 0.0f;
    float v;
    long steps = total_steps + 1;
    if (steps == 1) {
        v = start;
    } else {
        /* aten/src/ATen/native/cpu/RangeFactoriesKernel.cpp: step computed in
         * the output type, the first half counted from start, the second
         * half back from end. */
        float inc = (end - start) / (float)(steps - 1);
        long half = steps / 2;
        v = step < half ? start + inc * (float)step : end - inc * (float)(steps - step - 1);
    }
    return bf16 ? round_bf16(v) : v;
}
