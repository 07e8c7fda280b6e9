/* The DAS rotation's random orthogonal base (orthogonal.h): Q of the QR
 * decomposition of a Gaussian matrix with R's diagonal positive, as
 * torch's _make_orthogonal.  That Q is unique, so the test states the
 * properties that pin it down (Q^T Q = I; Q^T A upper triangular with a
 * positive diagonal) and compares it with Gram-Schmidt (twice) in double,
 * the way it was computed before the blocked QR (which took minutes at
 * d = 4096).  Tolerances: QR in double, rounded to float, so entries within
 * 1e-6 of the Gram-Schmidt Q and of orthonormality (float rounding is 6e-8
 * a value; d terms add up to ~sqrt(d) of it). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "base/rng.h"
#include "hypernet/orthogonal.h"

static void gaussian_matrix(double *A, int d, uint64_t seed)
{
    Rng r;
    rng_seed(&r, seed);
    for (size_t i = 0; i < (size_t)d * d; i++) { /* Box-Muller */
        double u1 = (rng_next(&r) >> 11) * 0x1.0p-53, u2 = (rng_next(&r) >> 11) * 0x1.0p-53;
        A[i] = sqrt(-2.0 * log(u1 + 0x1.0p-60)) * cos(2.0 * M_PI * u2);
    }
}

/* column-major A (d x d) -> row-major Q, modified Gram-Schmidt twice */
static void gram_schmidt(double *Q, const double *A, int d)
{
    double *C = malloc((size_t)d * d * sizeof *C);
    memcpy(C, A, (size_t)d * d * sizeof *C);
    for (int j = 0; j < d; j++) {
        double *a = C + (size_t)j * d;
        for (int pass = 0; pass < 2; pass++)
            for (int p = 0; p < j; p++) {
                const double *q = C + (size_t)p * d;
                double dot = 0.0;
                for (int i = 0; i < d; i++) dot += q[i] * a[i];
                for (int i = 0; i < d; i++) a[i] -= dot * q[i];
            }
        double n = 0.0;
        for (int i = 0; i < d; i++) n += a[i] * a[i];
        for (int i = 0; i < d; i++) a[i] /= sqrt(n);
    }
    for (int i = 0; i < d; i++)
        for (int j = 0; j < d; j++) Q[(size_t)i * d + j] = C[(size_t)j * d + i];
    free(C);
}

static void check_size(int d, uint64_t seed)
{
    double *A = malloc((size_t)d * d * sizeof *A), *A0 = malloc((size_t)d * d * sizeof *A0);
    double *G = malloc((size_t)d * d * sizeof *G);
    float *Q = malloc((size_t)d * d * sizeof *Q);
    gaussian_matrix(A0, d, seed);
    memcpy(A, A0, (size_t)d * d * sizeof *A);
    assert_int_equal(orthogonal_from_gaussian(Q, A, d), 0);
    gram_schmidt(G, A0, d);
    double worst_gs = 0.0, worst_orth = 0.0, worst_lower = 0.0, min_diag = INFINITY;
    for (int i = 0; i < d; i++)
        for (int j = 0; j < d; j++) {
            worst_gs = fmax(worst_gs, fabs(Q[(size_t)i * d + j] - G[(size_t)i * d + j]));
            double qq = 0.0, qa = 0.0; /* (Q^T Q)[i][j], (Q^T A)[i][j] */
            for (int r = 0; r < d; r++) {
                qq += (double)Q[(size_t)r * d + i] * Q[(size_t)r * d + j];
                qa += (double)Q[(size_t)r * d + i] * A0[(size_t)j * d + r];
            }
            worst_orth = fmax(worst_orth, fabs(qq - (i == j)));
            if (i > j) worst_lower = fmax(worst_lower, fabs(qa));
            if (i == j) min_diag = fmin(min_diag, qa);
        }
    assert_true(worst_gs <= 1e-6);
    assert_true(worst_orth <= 1e-6);
    assert_true(worst_lower <= 1e-5 * sqrt((double)d)); /* |A|'s entries are ~1 */
    assert_true(min_diag > 0.0);
    free(Q);
    free(G);
    free(A0);
    free(A);
}

static void qr_q_is_the_gram_schmidt_q(void **state)
{
    (void)state;
    check_size(1, 1);
    check_size(7, 2);
    check_size(64, 3);
    check_size(200, 4); /* past LAPACK's block size (32 or 64): the blocked path */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(qr_q_is_the_gram_schmidt_q),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
