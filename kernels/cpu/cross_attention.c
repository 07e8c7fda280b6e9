#include "cpu/cross_attention.h"

#include <cblas.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Each (batch row, kv head) is a few small matrix products: the group's
 * query heads share their keys and values, so their queries, packed as
 * rows (head in the group, query), make one [group*Tq, hd] matrix against
 * the row's [Tk, hd] keys.  The key sequences are long (token x layer
 * states, about 2,000 per row in the study), so sgemm runs these products
 * 3-4x faster than per-key dot products did (profile of a HyperDAS step:
 * the two loops were 28% of it).  The (row, kv head) items are spread
 * over the OpenMP threads; OpenBLAS's OpenMP build (the one the Makefile
 * links) runs a call made inside a parallel region on the calling thread
 * only, so the cores are not oversubscribed. */

/* Per-thread scratch of a few hundred KB; kernels/ has no error channel,
 * so running out of memory here stops the process with a message. */
static float *scratch(size_t n)
{
    float *p = malloc((n ? n : 1) * sizeof *p);
    if (!p) {
        fputs("cross-attention: out of memory\n", stderr);
        abort();
    }
    return p;
}

/* dst[(g*Tq + i)*hd + c] = src[i*ld + g*hd + c]: the group's heads of every
 * query, one row each. */
static void pack_group(float *dst, const float *src, int Tq, int group, size_t ld, int hd)
{
    for (int g = 0; g < group; g++)
        for (int i = 0; i < Tq; i++)
            memcpy(dst + ((size_t)g * Tq + i) * hd, src + (size_t)i * ld + (size_t)g * hd,
                   (size_t)hd * sizeof *dst);
}

/* The inverse of pack_group; adds when add is set. */
static void unpack_group(float *dst, const float *src, int Tq, int group, size_t ld, int hd,
                         int add)
{
    for (int g = 0; g < group; g++)
        for (int i = 0; i < Tq; i++) {
            float *o = dst + (size_t)i * ld + (size_t)g * hd;
            const float *s = src + ((size_t)g * Tq + i) * hd;
            if (add)
                for (int c = 0; c < hd; c++) o[c] += s[c];
            else
                memcpy(o, s, (size_t)hd * sizeof *o);
        }
}

/* One row of scores -> probabilities in place: masked keys and a padded
 * query get 0, and so does a query that sees no key at all. */
static void softmax_row(float *p, int Tk, const int *km, int query_real)
{
    float mx = -INFINITY;
    if (query_real)
        for (int j = 0; j < Tk; j++)
            if ((!km || km[j]) && p[j] > mx) mx = p[j];
    if (mx == -INFINITY) {
        memset(p, 0, (size_t)Tk * sizeof *p);
        return;
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
    for (int j = 0; j < Tk; j++) p[j] *= inv;
}

void cross_attention_forward(float *out, float *att, const float *q, const float *k,
                             const float *v, const int *q_mask, const int *k_mask, int b, int Tq,
                             int Tk, int n_heads, int n_kv_heads, int head_dim)
{
    const int H = n_heads, Hkv = n_kv_heads, hd = head_dim, group = n_heads / n_kv_heads;
    const int gT = group * Tq;
    const size_t q_row = (size_t)H * hd, kv_row = (size_t)Hkv * hd;
    /* transformers: scores / math.sqrt(head_dim); as sgemm's alpha this is
     * the same rounding whenever head_dim is a power of 4 (64, 128). */
    const float scale = (float)(1.0 / sqrt((double)hd));
    if (b <= 0 || Tq <= 0) return;
    if (Tk <= 0) {
        memset(out, 0, (size_t)b * Tq * q_row * sizeof *out);
        return;
    }

#pragma omp parallel if ((long)b * H * Tq * Tk * hd > (1L << 20))
    {
        float *pack = scratch((size_t)gT * hd);
#pragma omp for collapse(2) schedule(dynamic, 1)
        for (int r = 0; r < b; r++) {
            for (int kvh = 0; kvh < Hkv; kvh++) {
                const size_t kv_off = (size_t)r * Tk * kv_row + (size_t)kvh * hd;
                const float *qr = q + (size_t)r * Tq * q_row + (size_t)kvh * group * hd;
                float *outr = out + (size_t)r * Tq * q_row + (size_t)kvh * group * hd;
                float *P = att + ((size_t)r * H + (size_t)kvh * group) * Tq * Tk;
                const int *km = k_mask ? k_mask + (size_t)r * Tk : NULL;
                const int *qm = q_mask ? q_mask + (size_t)r * Tq : NULL;
                /* S = Q K^T / sqrt(hd), straight into this group's rows of att */
                pack_group(pack, qr, Tq, group, q_row, hd);
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, gT, Tk, hd, scale, pack, hd,
                            k + kv_off, (int)kv_row, 0.0f, P, Tk);
                for (int row = 0; row < gT; row++)
                    softmax_row(P + (size_t)row * Tk, Tk, km, !qm || qm[row % Tq]);
                /* O = P V: rows of P that are all 0 give 0 */
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, gT, hd, Tk, 1.0f, P, Tk,
                            v + kv_off, (int)kv_row, 0.0f, pack, hd);
                unpack_group(outr, pack, Tq, group, q_row, hd, 0);
            }
        }
        free(pack);
    }
}

void cross_attention_backward(float *dq, float *dk, float *dv, const float *dout,
                              const float *att, const float *q, const float *k, const float *v,
                              int b, int Tq, int Tk, int n_heads, int n_kv_heads, int head_dim)
{
    const int H = n_heads, Hkv = n_kv_heads, hd = head_dim, group = n_heads / n_kv_heads;
    const int gT = group * Tq;
    const size_t q_row = (size_t)H * hd, kv_row = (size_t)Hkv * hd;
    const float scale = (float)(1.0 / sqrt((double)hd));
    if (b <= 0 || Tq <= 0 || Tk <= 0) return;

    /* Each thread owns whole (row, kv head) items, hence the dk and dv rows
     * it adds to. */
#pragma omp parallel if ((long)b * H * Tq * Tk * hd > (1L << 20))
    {
        float *gp = scratch((size_t)gT * hd); /* dout, packed */
        float *qp = scratch((size_t)gT * hd); /* q packed, then dq's part */
        float *ds = scratch((size_t)gT * Tk); /* dL/dp, then dL/dscore */
#pragma omp for collapse(2) schedule(dynamic, 1)
        for (int r = 0; r < b; r++) {
            for (int kvh = 0; kvh < Hkv; kvh++) {
                const size_t kv_off = (size_t)r * Tk * kv_row + (size_t)kvh * hd;
                const size_t q_off = (size_t)r * Tq * q_row + (size_t)kvh * group * hd;
                const float *P = att + ((size_t)r * H + (size_t)kvh * group) * Tq * Tk;
                pack_group(gp, dout + q_off, Tq, group, q_row, hd);
                /* out = P V => dV += P^T dout */
                if (dv)
                    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, Tk, hd, gT, 1.0f, P, Tk,
                                gp, hd, 1.0f, dv + kv_off, (int)kv_row);
                if (!dq && !dk) continue;
                /* dP = dout V^T; ds = p (dp - sum_k p_k dp_k) / sqrt(hd).  A
                 * masked key or padded query has p = 0, hence ds = 0. */
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, gT, Tk, hd, 1.0f, gp, hd,
                            v + kv_off, (int)kv_row, 0.0f, ds, Tk);
                for (int row = 0; row < gT; row++) {
                    const float *p = P + (size_t)row * Tk;
                    float *d = ds + (size_t)row * Tk;
                    float pdp = 0.0f;
                    for (int j = 0; j < Tk; j++) pdp += p[j] * d[j];
                    for (int j = 0; j < Tk; j++)
                        d[j] = p[j] == 0.0f ? 0.0f : p[j] * (d[j] - pdp) * scale;
                }
                /* score = q.k * scale => dq += ds K, dK += ds^T q */
                if (dk) {
                    pack_group(qp, q + q_off, Tq, group, q_row, hd);
                    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, Tk, hd, gT, 1.0f, ds, Tk,
                                qp, hd, 1.0f, dk + kv_off, (int)kv_row);
                }
                if (dq) {
                    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, gT, hd, Tk, 1.0f, ds,
                                Tk, k + kv_off, (int)kv_row, 0.0f, qp, hd);
                    unpack_group(dq + q_off, qp, Tq, group, q_row, hd, 1);
                }
            }
        }
        free(gp), free(qp), free(ds);
    }
}
