/* Shared by the kernel tests: compare an fp32 result with an fp64
 * reference, and check an fp32 analytic gradient against central
 * differences of an fp64 loss.  Include after <cmocka.h>. */
#ifndef HD_TESTS_FD_CHECK_H
#define HD_TESTS_FD_CHECK_H

#include <math.h>
#include <stdio.h>
#include <stdlib.h>

/* max |got - want| over max |want| (the tensor's scale), INFINITY on a
 * non-finite value. */
static inline double rel_err(const float *got, const double *want, size_t n)
{
    double num = 0.0, den = 0.0;
    for (size_t i = 0; i < n; i++) {
        if (!isfinite(got[i])) return INFINITY;
        double e = fabs(got[i] - want[i]);
        if (e > num) num = e;
        if (fabs(want[i]) > den) den = fabs(want[i]);
    }
    return den > 0 ? num / den : num;
}

static inline void expect_close(const char *what, const float *got, const double *want, size_t n,
                                double tol)
{
    double e = rel_err(got, want, n);
    print_message("# %-40s max rel err %.2e (tol %.0e)\n", what, e, tol);
    if (!(e <= tol)) fail_msg("%s: relative error %.3e above %.1e", what, e, tol);
}

/* Central differences (step h) of loss() w.r.t. every element of p, a
 * double array the loss reads through ctx, against the analytic gradient. */
typedef double (*LossFn)(void *ctx);
static inline void fd_check_step(const char *what, double *p, size_t n, LossFn loss, void *ctx,
                                 const float *analytic, double h, double tol)
{
    double *fd = malloc(n * sizeof *fd);
    for (size_t i = 0; i < n; i++) {
        double keep = p[i];
        p[i] = keep + h;
        double up = loss(ctx);
        p[i] = keep - h;
        double down = loss(ctx);
        p[i] = keep;
        fd[i] = (up - down) / (2 * h);
    }
    char label[160];
    snprintf(label, sizeof label, "%.120s vs finite diff", what);
    expect_close(label, analytic, fd, n, tol);
    free(fd);
}

#endif
