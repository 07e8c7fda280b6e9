#include "cpu/householder.h"

#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ---- the orthogonal parametrisation ---- */

static double tau_of(const float *X, int j, int d, int k)
{
    double s = 0.0;
    for (int i = j + 1; i < d; i++) s += (double)X[(size_t)i * k + j] * X[(size_t)i * k + j];
    return 2.0 / (1.0 + s);
}

/* v_j^T M for M [d, k] (double): w[c] = M[j,c] + sum_{i>j} X[i,j] M[i,c]. */
static void vt_times(double *w, const double *M, const float *X, int j, int d, int k)
{
    for (int c = 0; c < k; c++) w[c] = M[(size_t)j * k + c];
    for (int i = j + 1; i < d; i++) {
        double x = X[(size_t)i * k + j];
        if (x == 0.0) continue;
        const double *m = M + (size_t)i * k;
        for (int c = 0; c < k; c++) w[c] += x * m[c];
    }
}

/* M <- (I - tau v_j v_j^T) M; w is scratch [k]. */
static void apply_reflector(double *M, const float *X, int j, double tau, int d, int k, double *w)
{
    vt_times(w, M, X, j, d, k);
    for (int c = 0; c < k; c++) M[(size_t)j * k + c] -= tau * w[c];
    for (int i = j + 1; i < d; i++) {
        double x = tau * X[(size_t)i * k + j];
        if (x == 0.0) continue;
        double *m = M + (size_t)i * k;
        for (int c = 0; c < k; c++) m[c] -= x * w[c];
    }
}

/* M = (H_0 .. H_{k-1})[:, :k]: the reflectors applied to I[:, :k], last first. */
static void reflector_product(double *M, const float *X, int d, int k, double *w)
{
    memset(M, 0, (size_t)d * k * sizeof *M);
    for (int j = 0; j < k; j++) M[(size_t)j * k + j] = 1.0;
    for (int j = k - 1; j >= 0; j--) apply_reflector(M, X, j, tau_of(X, j, d, k), d, k, w);
}

/* torch: Q * X.diagonal().int() -- truncation toward zero, as a float */
static float diag_sign(const float *X, int j, int k)
{
    return (float)(int)X[(size_t)j * k + j];
}

void householder_orthogonal_forward(float *R, const float *X, const float *base, int d, int k)
{
    double *M = malloc((size_t)d * k * sizeof *M);
    double *w = malloc((size_t)k * sizeof *w);
    reflector_product(M, X, d, k, w);
    float *Q = base ? malloc((size_t)d * k * sizeof *Q) : R;
    for (int i = 0; i < d; i++)
        for (int c = 0; c < k; c++)
            Q[(size_t)i * k + c] = (float)M[(size_t)i * k + c] * diag_sign(X, c, k);
    if (base) {
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, d, k, d, 1.0f, base, d, Q, k, 0.0f,
                    R, k);
        free(Q);
    }
    free(w);
    free(M);
}

void householder_orthogonal_backward(float *dX, const float *dR, const float *X,
                                     const float *base, int d, int k)
{
    double *M = malloc((size_t)d * k * sizeof *M);
    double *G = malloc((size_t)d * k * sizeof *G);
    double *w = malloc((size_t)k * sizeof *w);
    double *gv = malloc((size_t)k * sizeof *gv);
    float *dQ = malloc((size_t)d * k * sizeof *dQ);
    if (base) /* R = base Q  =>  dQ = base^T dR */
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, d, k, d, 1.0f, base, d, dR, k, 0.0f,
                    dQ, k);
    else
        memcpy(dQ, dR, (size_t)d * k * sizeof *dQ);
    for (int i = 0; i < d; i++)
        for (int c = 0; c < k; c++)
            G[(size_t)i * k + c] = (double)dQ[(size_t)i * k + c] * diag_sign(X, c, k);
    reflector_product(M, X, d, k, w);

    /* The forward applied H_{k-1} first and H_0 last; walk back from H_0.
     * For M_after = M_before - tau v w^T with w = M_before^T v and
     * G = dL/dM_after:
     *   dL/dv   = -tau (G w + M_before G^T v)
     *   dL/dtau = -v^T G w,   tau = 2/(1+|a|^2) => dtau/da_i = -tau^2 a_i
     *   dL/dM_before = H G */
    for (int j = 0; j < k; j++) {
        double tau = tau_of(X, j, d, k);
        apply_reflector(M, X, j, tau, d, k, w); /* M_after -> M_before (H_j H_j = I) */
        vt_times(w, M, X, j, d, k);             /* w = M_before^T v */
        vt_times(gv, G, X, j, d, k);            /* gv = G^T v */
        double dtau = 0.0;
        for (int c = 0; c < k; c++) dtau -= gv[c] * w[c];
        for (int i = j + 1; i < d; i++) {
            const double *g = G + (size_t)i * k, *m = M + (size_t)i * k;
            double s = 0.0;
            for (int c = 0; c < k; c++) s += g[c] * w[c] + m[c] * gv[c];
            double a = X[(size_t)i * k + j];
            dX[(size_t)i * k + j] += (float)(-tau * s - dtau * tau * tau * a);
        }
        /* G <- H_j G, reusing gv = G^T v */
        for (int c = 0; c < k; c++) G[(size_t)j * k + c] -= tau * gv[c];
        for (int i = j + 1; i < d; i++) {
            double x = tau * X[(size_t)i * k + j];
            if (x == 0.0) continue;
            double *g = G + (size_t)i * k;
            for (int c = 0; c < k; c++) g[c] -= x * gv[c];
        }
    }
    free(dQ);
    free(gv);
    free(w);
    free(G);
    free(M);
}

/* ---- ReflectSelect's reflection ---- */

void reflect_forward(float *Rp, float *v, float *unorm, const float *u, const float *R, int b,
                     int d, int k)
{
#pragma omp parallel for schedule(static) if ((long)b * d * k > 65536)
    for (int r = 0; r < b; r++) {
        const float *ur = u + (size_t)r * d;
        float *vr = v + (size_t)r * d;
        double ss = 0.0;
        for (int i = 0; i < d; i++) ss += (double)ur[i] * ur[i];
        float n = (float)sqrt(ss);
        unorm[r] = n;
        for (int i = 0; i < d; i++) vr[i] = ur[i] / n;
        /* w = R^T v, then R' = R - 2 v w^T */
        float *w = malloc((size_t)k * sizeof *w);
        memset(w, 0, (size_t)k * sizeof *w);
        for (int i = 0; i < d; i++) {
            const float *Ri = R + (size_t)i * k;
            float x = vr[i];
            for (int c = 0; c < k; c++) w[c] += Ri[c] * x;
        }
        float *out = Rp + (size_t)r * d * k;
        for (int i = 0; i < d; i++) {
            const float *Ri = R + (size_t)i * k;
            float x = 2.0f * vr[i];
            for (int c = 0; c < k; c++) out[(size_t)i * k + c] = Ri[c] - x * w[c];
        }
        free(w);
    }
}

void reflect_backward(float *du, float *dR, const float *dRp, const float *v, const float *unorm,
                      const float *R, int b, int d, int k)
{
    /* R' = R - 2 v w^T, w = R^T v:
     *   z = dR'^T v;  dR += dR' - 2 v z^T;  dv = -2 (dR' w + R z);
     *   v = u/|u|  =>  du = (dv - v (v . dv)) / |u| */
    float *z = malloc((size_t)b * k * sizeof *z);
#pragma omp parallel for schedule(static) if ((long)b * d * k > 65536)
    for (int r = 0; r < b; r++) {
        const float *vr = v + (size_t)r * d, *g = dRp + (size_t)r * d * k;
        float *zr = z + (size_t)r * k;
        float *w = calloc((size_t)k, sizeof *w);
        memset(zr, 0, (size_t)k * sizeof *zr);
        for (int i = 0; i < d; i++)
            for (int c = 0; c < k; c++) {
                zr[c] += g[(size_t)i * k + c] * vr[i];
                w[c] += R[(size_t)i * k + c] * vr[i];
            }
        if (du) {
            float *dv = malloc((size_t)d * sizeof *dv);
            double vdv = 0.0;
            for (int i = 0; i < d; i++) {
                float s = 0.0f;
                for (int c = 0; c < k; c++)
                    s += g[(size_t)i * k + c] * w[c] + R[(size_t)i * k + c] * zr[c];
                dv[i] = -2.0f * s;
                vdv += (double)vr[i] * dv[i];
            }
            float *dur = du + (size_t)r * d;
            for (int i = 0; i < d; i++) dur[i] += (dv[i] - vr[i] * (float)vdv) / unorm[r];
            free(dv);
        }
        free(w);
    }
    if (dR) {
#pragma omp parallel for schedule(static) if ((long)b * d * k > 65536)
        for (int i = 0; i < d; i++) {
            float *dRi = dR + (size_t)i * k;
            for (int r = 0; r < b; r++) {
                const float *g = dRp + ((size_t)r * d + i) * k, *zr = z + (size_t)r * k;
                float x = 2.0f * v[(size_t)r * d + i];
                for (int c = 0; c < k; c++) dRi[c] += g[c] - x * zr[c];
            }
        }
    }
    free(z);
}
