#include "cpu/intervention.h"

#include <cblas.h>
#include <string.h>

/* One small sgemm per batch row and product: B and S are tens, d and k are
 * the model's, so each product is a few MFLOP and OpenBLAS threads it
 * itself. */

void intervention_forward(float *out, float *diff, float *proj, const float *xb, const float *Ys,
                          const float *W, const float *R, size_t R_stride, const float *mask,
                          int b, int S, int B, int d, int k, float *work)
{
    const size_t Bd = (size_t)B * d, P = (size_t)(S + 1) * B;
    for (int r = 0; r < b; r++) {
        const float *x = xb + r * Bd, *ys = Ys + (size_t)r * S * d, *w = W + r * P;
        float *df = diff + r * Bd, *o = out + r * Bd;
        /* diff = W[:S]^T Ys + (W[S,t] - 1) xb[t] */
        for (int t = 0; t < B; t++) {
            float c = w[(size_t)S * B + t] - 1.0f;
            for (int i = 0; i < d; i++) df[(size_t)t * d + i] = c * x[(size_t)t * d + i];
        }
        if (S > 0)
            cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, B, d, S, 1.0f, w, B, ys, d, 1.0f,
                        df, d);
        if (!R) { /* full-vector patch: out = ysrc = xb + diff */
            for (size_t i = 0; i < Bd; i++) o[i] = x[i] + df[i];
            continue;
        }
        const float *Rr = R + r * R_stride;
        float *pj = proj + (size_t)r * B * k;
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, B, k, d, 1.0f, df, d, Rr, k, 0.0f,
                    pj, k);
        memcpy(o, x, Bd * sizeof *o);
        if (mask) { /* out = xb + (m . proj) R^T, the masked proj in work */
            const float *m = mask + (size_t)r * k;
            for (int t = 0; t < B; t++)
                for (int c = 0; c < k; c++) work[(size_t)t * k + c] = pj[(size_t)t * k + c] * m[c];
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, B, d, k, 1.0f, work, k, Rr, k,
                        1.0f, o, d);
        } else {
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, B, d, k, 1.0f, pj, k, Rr, k,
                        1.0f, o, d);
        }
    }
}

void intervention_backward(float *dW, float *dR, float *dmask, float *dxb, const float *dout,
                           const float *diff, const float *proj, const float *xb, const float *Ys,
                           const float *W, const float *R, size_t R_stride, const float *mask,
                           int b, int S, int B, int d, int k, float *work)
{
    const size_t Bd = (size_t)B * d, P = (size_t)(S + 1) * B;
    float *g = work;                         /* [B, k]  dout R */
    float *gm = work + (size_t)B * k;        /* [B, k]  m . g = dL/dproj, then m . proj */
    float *ddiff = work + (size_t)2 * B * k; /* [B, d]  dL/d diff (= dL/d ysrc) */
    for (int r = 0; r < b; r++) {
        const float *go = dout + r * Bd, *df = diff + r * Bd, *x = xb + r * Bd;
        const float *ys = Ys + (size_t)r * S * d, *w = W + r * P;
        if (!R) { /* out = ysrc */
            memcpy(ddiff, go, Bd * sizeof *ddiff);
        } else {
            const float *Rr = R + r * R_stride, *pj = proj + (size_t)r * B * k;
            const float *m = mask ? mask + (size_t)r * k : NULL;
            /* out = xb + (m . proj) R^T, proj = diff R */
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, B, k, d, 1.0f, go, d, Rr, k,
                        0.0f, g, k);
            if (dmask && m) {
                float *dm = dmask + (size_t)r * k;
                for (int t = 0; t < B; t++)
                    for (int c = 0; c < k; c++) dm[c] += g[(size_t)t * k + c] * pj[(size_t)t * k + c];
            }
            for (size_t i = 0; i < (size_t)B * k; i++) gm[i] = m ? g[i] * m[i % k] : g[i];
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, B, d, k, 1.0f, gm, k, Rr, k, 0.0f,
                        ddiff, d);
            if (dR) {
                float *dRr = dR + r * R_stride;
                /* dR += diff^T (m . g) + dout^T (m . proj) */
                cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, d, k, B, 1.0f, df, d, gm, k,
                            1.0f, dRr, k);
                for (size_t i = 0; i < (size_t)B * k; i++) gm[i] = m ? pj[i] * m[i % k] : pj[i];
                cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, d, k, B, 1.0f, go, d, gm, k,
                            1.0f, dRr, k);
            }
        }
        /* diff = W[:S]^T Ys + (W[S,t] - 1) xb[t] */
        if (dW) {
            float *dw = dW + r * P;
            if (S > 0) /* dW[s,t] += Ys[s] . ddiff[t] */
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, S, B, d, 1.0f, ys, d, ddiff,
                            d, 1.0f, dw, B);
            for (int t = 0; t < B; t++) {
                float s = 0.0f;
                for (int i = 0; i < d; i++) s += ddiff[(size_t)t * d + i] * x[(size_t)t * d + i];
                dw[(size_t)S * B + t] += s;
            }
        }
        if (dxb) {
            float *dx = dxb + r * Bd;
            for (int t = 0; t < B; t++) {
                float c = w[(size_t)S * B + t] - 1.0f;
                for (int i = 0; i < d; i++) {
                    size_t j = (size_t)t * d + i;
                    dx[j] += go[j] + c * ddiff[j];
                }
            }
        }
    }
}
