/* Shared by the kernel tests: reproducible random inputs, comparison of an
 * fp32 result with an fp64 reference, and the check of an fp32 analytic
 * gradient against central differences of an fp64 loss.  Include after
 * <cmocka.h>. */
#ifndef HD_TESTS_FD_CHECK_H
#define HD_TESTS_FD_CHECK_H

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

/* xorshift64: the same inputs on every run and machine. */
static uint64_t rng_state = 0x9E3779B97F4A7C15ULL;
static inline float urand(void) /* uniform in [-1, 1) */
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (float)((rng_state >> 11) * (1.0 / 9007199254740992.0) * 2.0 - 1.0);
}

static inline float *rand_vec(size_t n, float scale)
{
    float *v = malloc(n * sizeof *v);
    for (size_t i = 0; i < n; i++) v[i] = scale * urand();
    return v;
}

static inline double *to_f64(const float *x, size_t n)
{
    double *v = malloc(n * sizeof *v);
    for (size_t i = 0; i < n; i++) v[i] = x[i];
    return v;
}

static inline float *zeros(size_t n)
{
    return calloc(n, sizeof(float));
}

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
