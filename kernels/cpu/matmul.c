#include "cpu/matmul.h"

#include <cblas.h>
#include <string.h>

/* Below this many rows, one sgemv per row beats sgemm: OpenBLAS's sgemm
 * packs the whole weight matrix before multiplying, which for a single
 * token (a generation step) costs more than the product itself.  Measured
 * with OpenBLAS 0.3.21 on Zen, 1536 x 576 weights: 1 row 0.25 ms by sgemm,
 * 0.044 ms by sgemv; at 4 rows and a 49152-row LM head the two are even. */
#define GEMV_MAX_ROWS 3

void matmul_forward(float *out, const float *inp, const float *weight, const float *bias,
                    int N, int C, int OC)
{
    if (N <= 0 || OC <= 0) return;
    if (C <= 0) {
        memset(out, 0, (size_t)N * OC * sizeof *out);
    } else if (N <= GEMV_MAX_ROWS) {
        for (int n = 0; n < N; n++)
            cblas_sgemv(CblasRowMajor, CblasNoTrans, OC, C, 1.0f, weight, C, inp + (size_t)n * C,
                        1, 0.0f, out + (size_t)n * OC, 1);
    } else {
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, N, OC, C, 1.0f, inp, C, weight, C,
                    0.0f, out, OC);
    }
    if (bias) {
#pragma omp parallel for schedule(static) if ((long)N * OC > 65536)
        for (int n = 0; n < N; n++)
            for (int o = 0; o < OC; o++) out[(size_t)n * OC + o] += bias[o];
    }
}

void matmul_backward(float *dinp, float *dweight, float *dbias, const float *dout,
                     const float *inp, const float *weight, int N, int C, int OC)
{
    if (N <= 0 || OC <= 0 || C <= 0) return;
    if (dinp && N <= GEMV_MAX_ROWS) { /* row n: dinp_n += W^T dout_n */
        for (int n = 0; n < N; n++)
            cblas_sgemv(CblasRowMajor, CblasTrans, OC, C, 1.0f, weight, C, dout + (size_t)n * OC,
                        1, 1.0f, dinp + (size_t)n * C, 1);
    } else if (dinp) { /* [N, C] += [N, OC] @ [OC, C] */
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, N, C, OC, 1.0f, dout, OC, weight,
                    C, 1.0f, dinp, C);
    }
    if (dweight) /* [OC, C] += [OC, N] @ [N, C] */
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, OC, C, N, 1.0f, dout, OC, inp, C,
                    1.0f, dweight, C);
    if (dbias) {
        /* Columns are independent, so parallelising over them needs no reduction. */
#pragma omp parallel for schedule(static) if ((long)N * OC > 65536)
        for (int o = 0; o < OC; o++) {
            double s = 0.0;
            for (int n = 0; n < N; n++) s += dout[(size_t)n * OC + o];
            dbias[o] += (float)s;
        }
    }
}

void matmul_forward_strided(float *out, const float *inp, const float *weight, int ldw, int N,
                            int C, int OC)
{
    if (N <= 0 || OC <= 0 || C <= 0) return;
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, N, OC, C, 1.0f, inp, C, weight, ldw,
                0.0f, out, OC);
}

void matmul_backward_strided(float *dweight, const float *dout, const float *inp, int ldw, int N,
                             int C, int OC)
{
    if (N <= 0 || OC <= 0 || C <= 0) return;
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, OC, C, N, 1.0f, dout, OC, inp, C, 1.0f,
                dweight, ldw);
}
