#include "hypernet/orthogonal.h"

#include <stdlib.h>

#include "base/error.h"

/* LAPACK through OpenBLAS, which the build links already; Debian ships no
 * LAPACKE header beside it, so the Fortran entry points are declared here. */
void dgeqrf_(const int *m, const int *n, double *a, const int *lda, double *tau, double *work,
             const int *lwork, int *info);
void dorgqr_(const int *m, const int *n, const int *k, double *a, const int *lda, const double *tau,
             double *work, const int *lwork, int *info);

int orthogonal_from_gaussian(float *Q, double *A, int d)
{
    double *tau = malloc((size_t)d * sizeof *tau);
    double *sign = malloc((size_t)d * sizeof *sign);
    double *work = NULL;
    int info = 0, lwork = -1, rc = -1;
    double query = 0.0, query2 = 0.0;
    if (!tau || !sign) goto done;
    /* workspace queries: the blocked algorithms want a few columns of it */
    dgeqrf_(&d, &d, A, &d, tau, &query, &lwork, &info);
    if (info == 0) dorgqr_(&d, &d, &d, A, &d, tau, &query2, &lwork, &info);
    if (info != 0) {
        hd_fail("orthogonal init: LAPACK workspace query failed (info %d)", info);
        goto done;
    }
    lwork = (int)(query > query2 ? query : query2);
    if (lwork < d) lwork = d;
    if (!(work = malloc((size_t)lwork * sizeof *work))) goto done;
    dgeqrf_(&d, &d, A, &d, tau, work, &lwork, &info);
    if (info != 0) {
        hd_fail("orthogonal init: dgeqrf failed (info %d)", info);
        goto done;
    }
    /* R sits on and above the diagonal: Q's column j takes the sign of R[j][j] */
    for (int j = 0; j < d; j++) sign[j] = A[(size_t)j * d + j] < 0.0 ? -1.0 : 1.0;
    dorgqr_(&d, &d, &d, A, &d, tau, work, &lwork, &info);
    if (info != 0) {
        hd_fail("orthogonal init: dorgqr failed (info %d)", info);
        goto done;
    }
    for (int i = 0; i < d; i++)
        for (int j = 0; j < d; j++) Q[(size_t)i * d + j] = (float)(sign[j] * A[(size_t)j * d + i]);
    rc = 0;
done:
    if (rc < 0 && info == 0) hd_fail("orthogonal init: out of memory (d = %d)", d);
    free(work);
    free(sign);
    free(tau);
    return rc;
}
