/* The random orthogonal matrix that initialises the DAS rotation's base
 * (das.rotate.Q0), as torch's _make_orthogonal makes it: Q of the QR
 * decomposition of a Gaussian matrix, with R's diagonal made positive. */
#ifndef HD_ORTHOGONAL_H
#define HD_ORTHOGONAL_H

/* Q (row-major d x d, float) from A (column-major d x d, double, the
 * Gaussian draws; overwritten).  The factorisation is LAPACK's blocked
 * Householder QR (dgeqrf, dorgqr), a few seconds at Llama-3-8B's d = 4096
 * where column-by-column Gram-Schmidt took minutes; both give the one Q
 * whose R has a positive diagonal, to double rounding.  -1 (hd_fail) if
 * LAPACK fails or memory runs out. */
int orthogonal_from_gaussian(float *Q, double *A, int d);

#endif
