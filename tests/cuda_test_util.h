/* Shared by the CUDA parity tests (test_cuda_kernels.c,
 * test_cuda_hypernet_ops.c): whether a GPU is there, random inputs, device
 * copies that fail the test with the library's message, and the
 * comparisons with their printed worst case.  Include after <cmocka.h>,
 * inside #ifdef HD_CUDA.  Everything is static and marked unused, so that
 * a file using part of it compiles without warnings. */
#ifndef HD_TESTS_CUDA_TEST_UTIL_H
#define HD_TESTS_CUDA_TEST_UTIL_H

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cuda/cuda_common.h"
#include "base/error.h"
#include "base/rng.h"

#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wunused-function"

static int g_gpu;          /* a device is there */
static int g_init_failed;  /* it is there but hd_cuda_init failed: a real failure */
static char g_init_error[512];

static void require_gpu(void)
{
    if (!g_gpu) skip();
    if (g_init_failed) fail_msg("hd_cuda_init: %s", g_init_error);
}

/* ---- random inputs ---- */

static Rng g_rng;

static float uniform(float lo, float hi)
{
    double u = (double)(rng_next(&g_rng) >> 11) * 0x1.0p-53;
    return (float)(lo + (hi - lo) * u);
}

static float *random_floats(size_t n, float lo, float hi)
{
    float *x = hd_malloc((n ? n : 1) * sizeof *x);
    for (size_t i = 0; i < n; i++) x[i] = uniform(lo, hi);
    return x;
}

static float *copy_floats(const float *x, size_t n)
{
    float *y = hd_malloc((n ? n : 1) * sizeof *y);
    memcpy(y, x, n * sizeof *y);
    return y;
}

/* ---- device helpers: every failure is a test failure with the message ---- */

static void *to_device(const void *host, size_t bytes)
{
    void *d = hd_cuda_malloc(bytes);
    if (!d) fail_msg("%s", hd_last_error());
    if (hd_cuda_upload(d, host, bytes)) fail_msg("%s", hd_last_error());
    return d;
}

static float *device_floats(const float *host, size_t n) { return to_device(host, n * sizeof(float)); }

static void to_host(void *host, const void *dev, size_t bytes)
{
    if (hd_cuda_download(host, dev, bytes)) fail_msg("%s", hd_last_error());
}

static float *download_floats(const float *dev, size_t n)
{
    float *h = hd_malloc((n ? n : 1) * sizeof *h);
    to_host(h, dev, n * sizeof *h);
    return h;
}

static void op_ok(int rc)
{
    if (rc) fail_msg("%s", hd_last_error());
    if (hd_cuda_sync()) fail_msg("%s", hd_last_error());
}

/* ---- comparison ---- */

static double rms(const float *x, size_t n)
{
    double s = 0.0;
    for (size_t i = 0; i < n; i++) s += (double)x[i] * x[i];
    return n ? sqrt(s / n) : 0.0;
}

/* Fails unless |got - want| <= rtol |want| + atol for every element (NaN
 * must meet NaN).  Prints the largest error and its ratio to the bound. */
static void expect_close(const char *what, const float *got, const float *want, size_t n,
                         double rtol, double atol)
{
    double max_abs = 0.0, worst = 0.0, max_rel = 0.0;
    size_t bad = 0, worst_i = 0;
    for (size_t i = 0; i < n; i++) {
        if (isnan(want[i]) || isnan(got[i])) {
            if (!(isnan(want[i]) && isnan(got[i]))) bad++, worst_i = i, worst = INFINITY;
            continue;
        }
        double err = fabs((double)got[i] - want[i]);
        if (got[i] == want[i]) err = 0.0; /* equal infinities */
        double bound = rtol * fabs(want[i]) + atol;
        double ratio = bound > 0 ? err / bound : (err > 0 ? INFINITY : 0.0);
        if (err > max_abs) max_abs = err;
        if (want[i] != 0.0f && err / fabs(want[i]) > max_rel) max_rel = err / fabs(want[i]);
        if (ratio > worst) worst = ratio, worst_i = i;
        if (err > bound) bad++;
    }
    print_message("# %-26s max|err| %.3g  max rel %.3g  worst err/bound %.3f  (%zu values)\n",
                  what, max_abs, max_rel, worst, n);
    if (bad)
        fail_msg("%s: %zu of %zu values out of tolerance; worst [%zu] got %.9g want %.9g", what,
                 bad, n, worst_i, got[worst_i], want[worst_i]);
}

/* The usual fp32 tolerance (see the top of the file). */
static void expect_fp32(const char *what, const float *got, const float *want, size_t n)
{
    expect_close(what, got, want, n, 1e-5, 1e-5 * rms(want, n));
}

static void expect_bitwise(const char *what, const void *got, const void *want, size_t bytes)
{
    const unsigned char *a = got, *b = want;
    size_t diff = 0, first = 0;
    for (size_t i = 0; i < bytes; i++)
        if (a[i] != b[i] && diff++ == 0) first = i;
    print_message("# %-26s %zu of %zu bytes differ\n", what, diff, bytes);
    if (diff) fail_msg("%s: %zu bytes differ, first at byte %zu", what, diff, first);
}

/* The backward ops add into their outputs: every gradient buffer starts
 * with the same random values on both sides, which checks the += too. */
static float *grad_init(size_t n) { return random_floats(n, -0.5f, 0.5f); }

/* Seeds the inputs and finds the GPU: without one every test skips; one
 * that is there but cannot be initialised fails every test. */
static void cuda_test_start(uint64_t seed)
{
    rng_seed(&g_rng, seed);
    g_gpu = hd_cuda_available();
    if (!g_gpu) {
        printf("# no GPU, every test skipped: %s\n", hd_last_error());
    } else if (hd_cuda_init(-1)) {
        g_init_failed = 1;
        snprintf(g_init_error, sizeof g_init_error, "%s", hd_last_error());
    }
}

static void cuda_test_end(void)
{
    if (g_gpu && !g_init_failed) hd_cuda_shutdown();
}

#pragma GCC diagnostic pop

#endif
