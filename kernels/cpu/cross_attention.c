#include "cpu/cross_attention.h"

#include "cpu/vec.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Plain loops rather than sgemm, for the reason given in attention.c: the
 * per (row, head) products are small (tens of queries), and OpenBLAS called
 * from inside OpenMP threads would oversubscribe the cores.  The key
 * sequences here are long (hundreds of token x layer states), so every
 * (row, head) pair is enough work for a thread. */

void cross_attention_forward(float *out, float *att, const float *q, const float *k,
                             const float *v, const int *q_mask, const int *k_mask, int b, int Tq,
                             int Tk, int n_heads, int n_kv_heads, int head_dim)
{
    const int H = n_heads, hd = head_dim, group = n_heads / n_kv_heads;
    const size_t q_row = (size_t)H * hd, kv_row = (size_t)n_kv_heads * hd;
    const float div = (float)sqrt((double)hd); /* transformers: / math.sqrt(head_dim) */

#pragma omp parallel for collapse(2) schedule(dynamic, 1) if ((long)b * H * Tq * Tk * hd > (1L << 20))
    for (int r = 0; r < b; r++) {
        for (int h = 0; h < H; h++) {
            const int kvh = h / group;
            const float *kb = k + (size_t)r * Tk * kv_row + (size_t)kvh * hd;
            const float *vb = v + (size_t)r * Tk * kv_row + (size_t)kvh * hd;
            const int *km = k_mask ? k_mask + (size_t)r * Tk : NULL;
            for (int i = 0; i < Tq; i++) {
                float *p = att + (((size_t)r * H + h) * Tq + i) * Tk;
                float *o = out + ((size_t)r * Tq + i) * q_row + (size_t)h * hd;
                memset(o, 0, (size_t)hd * sizeof *o);
                if (q_mask && !q_mask[(size_t)r * Tq + i]) {
                    memset(p, 0, (size_t)Tk * sizeof *p);
                    continue;
                }
                const float *qi = q + ((size_t)r * Tq + i) * q_row + (size_t)h * hd;
                float mx = -INFINITY;
                for (int j = 0; j < Tk; j++) {
                    if (km && !km[j]) continue;
                    float s = vec_dot(qi, kb + (size_t)j * kv_row, hd) / div;
                    p[j] = s;
                    if (s > mx) mx = s;
                }
                if (mx == -INFINITY) { /* no visible key */
                    memset(p, 0, (size_t)Tk * sizeof *p);
                    continue;
                }
                float sum = 0.0f;
                for (int j = 0; j < Tk; j++) {
                    if (km && !km[j]) {
                        p[j] = 0.0f;
                        continue;
                    }
                    p[j] = expf(p[j] - mx);
                    sum += p[j];
                }
                float inv = 1.0f / sum;
                for (int j = 0; j < Tk; j++) {
                    if (p[j] == 0.0f) continue;
                    p[j] *= inv;
                    vec_axpy(o, p[j], vb + (size_t)j * kv_row, hd);
                }
            }
        }
    }
}

void cross_attention_backward(float *dq, float *dk, float *dv, const float *dout,
                              const float *att, const float *q, const float *k, const float *v,
                              int b, int Tq, int Tk, int n_heads, int n_kv_heads, int head_dim)
{
    const int H = n_heads, Hkv = n_kv_heads, hd = head_dim, group = n_heads / n_kv_heads;
    const size_t q_row = (size_t)H * hd, kv_row = (size_t)Hkv * hd;
    const float div = (float)sqrt((double)hd);

#pragma omp parallel if ((long)b * H * Tq * Tk * hd > (1L << 20))
    {
        /* dp_j = dout_i . v_j for one query row: the softmax backward needs
         * sum_j p_j dp_j before any ds_j. */
        float *dp = malloc((size_t)(Tk > 0 ? Tk : 1) * sizeof *dp);
#pragma omp for collapse(2) schedule(dynamic, 1)
        for (int r = 0; r < b; r++) {
            for (int kvh = 0; kvh < Hkv; kvh++) {
                const size_t kv_off = (size_t)r * Tk * kv_row + (size_t)kvh * hd;
                const float *kb = k + kv_off, *vb = v + kv_off;
                float *dkb = dk ? dk + kv_off : NULL, *dvb = dv ? dv + kv_off : NULL;
                for (int h = kvh * group; h < (kvh + 1) * group; h++) {
                    for (int i = 0; i < Tq; i++) {
                        const size_t q_off = ((size_t)r * Tq + i) * q_row + (size_t)h * hd;
                        const float *qi = q + q_off, *go = dout + q_off;
                        const float *p = att + (((size_t)r * H + h) * Tq + i) * Tk;
                        /* out_i = sum_j p_j v_j => dv_j += p_j dout_i */
                        float pdp = 0.0f;
                        for (int j = 0; j < Tk; j++) {
                            if (p[j] == 0.0f) continue; /* masked, or nothing to pass back */
                            dp[j] = vec_dot(go, vb + (size_t)j * kv_row, hd);
                            pdp += p[j] * dp[j];
                            if (dvb) vec_axpy(dvb + (size_t)j * kv_row, p[j], go, hd);
                        }
                        /* ds_j = p_j (dp_j - sum_k p_k dp_k); score = q.k / div */
                        for (int j = 0; j < Tk; j++) {
                            if (p[j] == 0.0f) continue;
                            float ds = p[j] * (dp[j] - pdp) / div;
                            if (dq) vec_axpy(dq + q_off, ds, kb + (size_t)j * kv_row, hd);
                            if (dkb) vec_axpy(dkb + (size_t)j * kv_row, ds, qi, hd);
                        }
                    }
                }
            }
        }
        free(dp);
    }
}
