/* The DAS rotation's random orthogonal base at a target's hidden size:
 * orthogonal_from_gaussian (LAPACK's blocked Householder QR) against the
 * column-by-column Gram-Schmidt with two dgemv passes that hypernet_init
 * used before (kept here as the baseline), on the same Gaussian matrix,
 * in one run.  At d = 4096 (Llama-3-8B) the baseline streams the growing
 * Q once per column and pass, about 1 TB of memory traffic.
 *
 *   bin/bench/bench_orthogonal [D]        (default 4096; OpenBLAS threads
 *                                          as OPENBLAS_NUM_THREADS says)
 *
 * Prints both times, their ratio, the largest difference of the two Qs and
 * how many of the floats differ. */
#include <cblas.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/cli.h"
#include "base/error.h"
#include "base/rng.h"
#include "hypernet/orthogonal.h"

static void gram_schmidt(float *Q, double *A, int d)
{
    double *proj = malloc((size_t)d * sizeof *proj);
    for (int j = 0; j < d; j++) {
        double *a = A + (size_t)j * d;
        for (int pass = 0; pass < 2 && j > 0; pass++) {
            cblas_dgemv(CblasColMajor, CblasTrans, d, j, 1.0, A, d, a, 1, 0.0, proj, 1);
            cblas_dgemv(CblasColMajor, CblasNoTrans, d, j, -1.0, A, d, proj, 1, 1.0, a, 1);
        }
        double n = cblas_dnrm2(d, a, 1);
        for (int i = 0; i < d; i++) a[i] /= n;
    }
    for (int i = 0; i < d; i++)
        for (int j = 0; j < d; j++) Q[(size_t)i * d + j] = (float)A[(size_t)j * d + i];
    free(proj);
}

int main(int argc, char **argv)
{
    const int d = argc > 1 ? atoi(argv[1]) : 4096;
    if (d < 1) hd_die("usage: bench_orthogonal [D >= 1]");
    const size_t n = (size_t)d * d;
    double *A0 = malloc(n * sizeof *A0), *A = malloc(n * sizeof *A);
    float *Qgs = malloc(n * sizeof *Qgs), *Qqr = malloc(n * sizeof *Qqr);
    if (!A0 || !A || !Qgs || !Qqr) hd_die("bench_orthogonal: out of memory");
    Rng r;
    rng_seed(&r, 42);
    for (size_t i = 0; i < n; i++) {
        double u1 = ((rng_next(&r) >> 11) + 1) * 0x1.0p-53, u2 = (rng_next(&r) >> 11) * 0x1.0p-53;
        A0[i] = sqrt(-2.0 * log(u1)) * cos(2.0 * M_PI * u2);
    }
    memcpy(A, A0, n * sizeof *A);
    double t0 = hd_now_seconds();
    gram_schmidt(Qgs, A, d);
    double t1 = hd_now_seconds();
    memcpy(A, A0, n * sizeof *A);
    double t2 = hd_now_seconds();
    if (orthogonal_from_gaussian(Qqr, A, d) < 0) hd_die("%s", hd_last_error());
    double t3 = hd_now_seconds();
    double worst = 0.0;
    size_t differ = 0;
    for (size_t i = 0; i < n; i++) {
        worst = fmax(worst, fabs((double)Qgs[i] - Qqr[i]));
        differ += Qgs[i] != Qqr[i];
    }
    printf("bench_orthogonal: d %d: Gram-Schmidt (before) %.2f s, blocked QR (now) %.2f s, ratio %.1f; "
           "max |Q diff| %.3g, %zu of %zu floats differ\n",
           d, t1 - t0, t3 - t2, (t1 - t0) / (t3 - t2), worst, differ, n);
    free(Qqr);
    free(Qgs);
    free(A);
    free(A0);
    return 0;
}
