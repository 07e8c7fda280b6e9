/* Parity of every CUDA op (kernels/cuda) with its CPU twin (kernels/cpu):
 * the same random inputs through both, forward and backward, compared with
 * a tolerance stated and justified at each test.
 *
 * Without a usable GPU every test reports itself skipped (never passed).
 * Built without nvcc at all, the program holds one test, skipped.
 *
 * The usual tolerance for the fp32 ops is
 *     |gpu - cpu| <= 1e-5 |cpu| + 1e-5 rms(cpu)
 * i.e. 1e-5 relative to the element or to the array's typical size,
 * whichever is larger.  Why 1e-5: both sides compute the same formula in
 * fp32; what differs is the order of summation in reductions (dot
 * products, row sums), fused multiply-adds on the GPU, and expf (CUDA's is
 * within 2 ulp, glibc's within 1).  Each of these perturbs a result by a
 * few units of 2^-24 = 6e-8 of the magnitudes summed; reductions over K
 * terms grow that like sqrt(K) in practice, to ~1e-6 for the K <= 600 used
 * here.  1e-5 leaves a tenfold margin and still catches a real mistake
 * (a wrong index or transposition gives O(1) errors; TF32 math in cuBLAS
 * gives ~5e-4).  The rms term stands in for cancellation: an element that
 * is a difference of large terms near zero carries the large terms'
 * absolute error.  Ops that compute exactly the same operations are
 * checked bit for bit. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifdef HD_CUDA
#include "cpu/attention.h"
#include "cpu/dequant.h"
#include "cpu/embedding.h"
#include "cpu/matmul.h"
#include "cpu/residual.h"
#include "cpu/rmsnorm.h"
#include "cpu/rope.h"
#include "cpu/softmax_xent.h"
#include "cpu/swiglu.h"
#include "cuda/cuda_ops.h"
#include "base/error.h"
#include "float16.h"
#include "base/rng.h"

#include "cuda_test_util.h"

/* ================================ tests ================================ */

static void device_is_usable(void **state)
{
    (void)state;
    require_gpu();
    assert_true(hd_cuda_available());
    print_message("# device: %s\n", hd_cuda_device_name());
    assert_true(strlen(hd_cuda_device_name()) > 0);
}

/* fp32 GEMM through cuBLAS with TF32 off.  Odd sizes on purpose: no
 * dimension is a multiple of a tile. */
static void matmul_fp32_matches_cpu(void **state)
{
    (void)state;
    require_gpu();
    const int N = 67, C = 131, OC = 97;
    float *x = random_floats((size_t)N * C, -1, 1), *w = random_floats((size_t)OC * C, -1, 1);
    float *bias = random_floats(OC, -1, 1), *dout = random_floats((size_t)N * OC, -1, 1);
    float *out = hd_malloc((size_t)N * OC * sizeof *out);
    matmul_forward(out, x, w, bias, N, C, OC);
    float *dx = grad_init((size_t)N * C), *dw = grad_init((size_t)OC * C), *db = grad_init(OC);
    float *dx_g = device_floats(dx, (size_t)N * C), *dw_g = device_floats(dw, (size_t)OC * C);
    float *db_g = device_floats(db, OC);
    matmul_backward(dx, dw, db, dout, x, w, N, C, OC);

    float *x_g = device_floats(x, (size_t)N * C), *w_g = device_floats(w, (size_t)OC * C);
    float *bias_g = device_floats(bias, OC), *dout_g = device_floats(dout, (size_t)N * OC);
    float *out_g = hd_cuda_malloc((size_t)N * OC * sizeof(float));
    op_ok(matmul_forward_cuda(out_g, x_g, w_g, bias_g, N, C, OC));
    op_ok(matmul_backward_cuda(dx_g, dw_g, db_g, dout_g, x_g, w_g, N, C, OC));
    float *o = download_floats(out_g, (size_t)N * OC), *gx = download_floats(dx_g, (size_t)N * C);
    float *gw = download_floats(dw_g, (size_t)OC * C), *gb = download_floats(db_g, OC);
    expect_fp32("matmul out", o, out, (size_t)N * OC);
    expect_fp32("matmul dinp", gx, dx, (size_t)N * C);
    expect_fp32("matmul dweight", gw, dw, (size_t)OC * C);
    expect_fp32("matmul dbias", gb, db, OC);

    /* No bias, and the NULL gradients are skipped (dinp alone). */
    float *dx2 = grad_init((size_t)N * C);
    float *dx2_g = device_floats(dx2, (size_t)N * C);
    matmul_forward(out, x, w, NULL, N, C, OC);
    matmul_backward(dx2, NULL, NULL, dout, x, w, N, C, OC);
    op_ok(matmul_forward_cuda(out_g, x_g, w_g, NULL, N, C, OC));
    op_ok(matmul_backward_cuda(dx2_g, NULL, NULL, dout_g, x_g, w_g, N, C, OC));
    free(o);
    free(gx);
    o = download_floats(out_g, (size_t)N * OC);
    gx = download_floats(dx2_g, (size_t)N * C);
    expect_fp32("matmul out (no bias)", o, out, (size_t)N * OC);
    expect_fp32("matmul dinp only", gx, dx2, (size_t)N * C);

    hd_cuda_free(x_g), hd_cuda_free(w_g), hd_cuda_free(bias_g), hd_cuda_free(dout_g);
    hd_cuda_free(out_g), hd_cuda_free(dx_g), hd_cuda_free(dw_g), hd_cuda_free(db_g);
    hd_cuda_free(dx2_g);
    free(x), free(w), free(bias), free(dout), free(out), free(dx), free(dw), free(db), free(dx2);
    free(o), free(gx), free(gw), free(gb);
}

/* The bf16-weight GEMM against the fp32 CPU product with the same (bf16)
 * weights.  The GPU rounds the activations to bf16 (unit roundoff 2^-9);
 * products of two bf16 numbers are exact in fp32 and the accumulation is
 * fp32, so each term x_k w_k carries a relative error of at most 2^-9, and
 *     |err_i| <= 2^-9 sum_k |x_k w_k|            (rigorous; we allow 2^-8)
 * The errors of the terms are independent, so in practice
 *     |err_i| ~ 2^-9/sqrt(3) sqrt(sum_k (x_k w_k)^2) ~ 2^-9 sqrt(K) |x||w| / sqrt(3):
 * relative to the typical output (~sqrt(K) |x||w|) about 1.1e-3, whatever K.
 * Checked: every element against the rigorous bound, and
 * rms(err) / rms(out) <= 2^-8 for the whole array (3.5x the expected 1.1e-3;
 * fp32-accumulated bf16 can't get under ~1e-3, and a wrong layout gives ~1). */
static void expect_bf16_product(const char *what, const float *got, const float *want,
                                const float *abs_sum, size_t n)
{
    double worst = 0.0, err2 = 0.0;
    size_t bad = 0, worst_i = 0;
    for (size_t i = 0; i < n; i++) {
        double err = fabs((double)got[i] - want[i]);
        double bound = 0x1.0p-8 * abs_sum[i] + 1e-30;
        err2 += err * err;
        if (err / bound > worst) worst = err / bound, worst_i = i;
        if (!(err <= bound)) bad++;
    }
    double rel = sqrt(err2 / n) / rms(want, n);
    print_message("# %-26s rms(err)/rms(out) %.3g (bound %.3g)  worst err/bound %.3f\n", what,
                  rel, 0x1.0p-8, worst);
    if (bad)
        fail_msg("%s: %zu of %zu values beyond 2^-8 sum|x w|; worst [%zu] got %.9g want %.9g",
                 what, bad, n, worst_i, got[worst_i], want[worst_i]);
    if (!(rel <= 0x1.0p-8)) fail_msg("%s: rms relative error %.3g above 2^-8", what, rel);
}

static void matmul_bf16_weights_match_cpu(void **state)
{
    (void)state;
    require_gpu();
    const int N = 64, C = 256, OC = 96;
    float *x = random_floats((size_t)N * C, -1, 1), *dout = random_floats((size_t)N * OC, -1, 1);
    float *bias = random_floats(OC, -1, 1);
    uint16_t *w16 = hd_malloc((size_t)OC * C * sizeof *w16);
    float *w = hd_malloc((size_t)OC * C * sizeof *w);
    for (size_t i = 0; i < (size_t)OC * C; i++) {
        w16[i] = f32_to_bf16(uniform(-1, 1));
        w[i] = bf16_to_f32(w16[i]);
    }
    /* CPU references and the bounds' sum |x||w| (from the same GEMM on |.|). */
    float *out = hd_malloc((size_t)N * OC * sizeof *out), *dx = grad_init((size_t)N * C);
    float *dx0 = copy_floats(dx, (size_t)N * C);
    matmul_forward(out, x, w, bias, N, C, OC);
    matmul_backward(dx, NULL, NULL, dout, x, w, N, C, OC);
    float *ax = hd_malloc((size_t)N * C * sizeof *ax), *aw = hd_malloc((size_t)OC * C * sizeof *aw);
    float *ag = hd_malloc((size_t)N * OC * sizeof *ag);
    for (size_t i = 0; i < (size_t)N * C; i++) ax[i] = fabsf(x[i]);
    for (size_t i = 0; i < (size_t)OC * C; i++) aw[i] = fabsf(w[i]);
    for (size_t i = 0; i < (size_t)N * OC; i++) ag[i] = fabsf(dout[i]);
    float *sum_out = hd_malloc((size_t)N * OC * sizeof *sum_out);
    float *sum_dx = hd_calloc((size_t)N * C, sizeof *sum_dx);
    matmul_forward(sum_out, ax, aw, NULL, N, C, OC);
    matmul_backward(sum_dx, NULL, NULL, ag, ax, aw, N, C, OC);

    float *x_g = device_floats(x, (size_t)N * C), *dout_g = device_floats(dout, (size_t)N * OC);
    float *bias_g = device_floats(bias, OC), *dx_g = device_floats(dx0, (size_t)N * C);
    uint16_t *w_g = to_device(w16, (size_t)OC * C * sizeof *w16);
    float *out_g = hd_cuda_malloc((size_t)N * OC * sizeof(float));
    op_ok(matmul_forward_bf16w_cuda(out_g, x_g, w_g, bias_g, N, C, OC));
    op_ok(matmul_backward_bf16w_cuda(dx_g, dout_g, w_g, N, C, OC));
    float *o = download_floats(out_g, (size_t)N * OC), *gx = download_floats(dx_g, (size_t)N * C);
    /* Remove the bias / the initial gradient before the relative check:
     * they are exact on both sides and would flatter the ratio. */
    for (size_t i = 0; i < (size_t)N * OC; i++) {
        o[i] -= bias[i % OC];
        out[i] -= bias[i % OC];
    }
    for (size_t i = 0; i < (size_t)N * C; i++) {
        gx[i] -= dx0[i];
        dx[i] -= dx0[i];
    }
    expect_bf16_product("bf16w matmul out", o, out, sum_out, (size_t)N * OC);
    expect_bf16_product("bf16w matmul dinp", gx, dx, sum_dx, (size_t)N * C);

    hd_cuda_free(x_g), hd_cuda_free(dout_g), hd_cuda_free(bias_g), hd_cuda_free(dx_g);
    hd_cuda_free(w_g), hd_cuda_free(out_g);
    free(x), free(dout), free(bias), free(w16), free(w), free(out), free(dx), free(dx0);
    free(ax), free(aw), free(ag), free(sum_out), free(sum_dx), free(o), free(gx);
}

/* Forward: a copy, bit for bit.  Backward: repeated ids sum in another
 * order (atomics), a few additions of values < 4: the usual tolerance. */
static void embedding_matches_cpu(void **state)
{
    (void)state;
    require_gpu();
    const int V = 50, d = 37, N = 41;
    int ids[41];
    for (int n = 0; n < N; n++) ids[n] = (int)rng_uniform(&g_rng, 12); /* many repeats */
    ids[3] = -1;  /* out of range: zero row, no gradient */
    ids[7] = V;
    ids[8] = V - 1;
    float *table = random_floats((size_t)V * d, -1, 1), *dout = random_floats((size_t)N * d, -1, 1);
    float *out = hd_malloc((size_t)N * d * sizeof *out), *dt = grad_init((size_t)V * d);
    float *dt_g = device_floats(dt, (size_t)V * d);
    embedding_forward(out, ids, table, N, V, d);
    embedding_backward(dt, dout, ids, N, V, d);

    int *ids_g = to_device(ids, sizeof ids);
    float *table_g = device_floats(table, (size_t)V * d), *dout_g = device_floats(dout, (size_t)N * d);
    float *out_g = hd_cuda_malloc((size_t)N * d * sizeof(float));
    op_ok(embedding_forward_cuda(out_g, ids_g, table_g, N, V, d));
    op_ok(embedding_backward_cuda(dt_g, dout_g, ids_g, N, V, d));
    float *o = download_floats(out_g, (size_t)N * d), *g = download_floats(dt_g, (size_t)V * d);
    expect_bitwise("embedding out", o, out, (size_t)N * d * sizeof *o);
    expect_fp32("embedding dtable", g, dt, (size_t)V * d);

    hd_cuda_free(ids_g), hd_cuda_free(table_g), hd_cuda_free(dout_g), hd_cuda_free(out_g);
    hd_cuda_free(dt_g);
    free(table), free(dout), free(out), free(dt), free(o), free(g);
}

/* Rows of very different scales (1e-2 .. 1e2), d not a multiple of 32. */
static void rmsnorm_matches_cpu(void **state)
{
    (void)state;
    require_gpu();
    const int N = 33, d = 577;
    const float eps = 1e-5f;
    float *x = random_floats((size_t)N * d, -1, 1);
    for (int n = 0; n < N; n++) {
        float scale = powf(10.0f, -2.0f + 4.0f * n / (N - 1));
        for (int i = 0; i < d; i++) x[(size_t)n * d + i] *= scale;
    }
    float *w = random_floats(d, 0.5f, 1.5f), *dout = random_floats((size_t)N * d, -1, 1);
    float *out = hd_malloc((size_t)N * d * sizeof *out), *rstd = hd_malloc(N * sizeof *rstd);
    float *dx = grad_init((size_t)N * d), *dw = grad_init(d);
    float *dx_g = device_floats(dx, (size_t)N * d), *dw_g = device_floats(dw, d);
    rmsnorm_forward(out, rstd, x, w, N, d, eps);
    rmsnorm_backward(dx, dw, dout, x, w, rstd, N, d);

    float *x_g = device_floats(x, (size_t)N * d), *w_g = device_floats(w, d);
    float *dout_g = device_floats(dout, (size_t)N * d);
    float *out_g = hd_cuda_malloc((size_t)N * d * sizeof(float)), *rstd_g = hd_cuda_malloc(N * sizeof(float));
    op_ok(rmsnorm_forward_cuda(out_g, rstd_g, x_g, w_g, N, d, eps));
    op_ok(rmsnorm_backward_cuda(dx_g, dw_g, dout_g, x_g, w_g, rstd_g, N, d));
    float *o = download_floats(out_g, (size_t)N * d), *r = download_floats(rstd_g, N);
    float *gx = download_floats(dx_g, (size_t)N * d), *gw = download_floats(dw_g, d);
    /* rstd spans 1e-2..1e2 across rows: relative only, not the rms term. */
    expect_close("rmsnorm rstd", r, rstd, N, 1e-5, 0.0);
    expect_fp32("rmsnorm out", o, out, (size_t)N * d);
    expect_fp32("rmsnorm dinp", gx, dx, (size_t)N * d);
    expect_fp32("rmsnorm dweight", gw, dw, d);

    hd_cuda_free(x_g), hd_cuda_free(w_g), hd_cuda_free(dout_g), hd_cuda_free(out_g);
    hd_cuda_free(rstd_g), hd_cuda_free(dx_g), hd_cuda_free(dw_g);
    free(x), free(w), free(dout), free(out), free(rstd), free(dx), free(dw);
    free(o), free(r), free(gx), free(gw);
}

/* Positions as HyperDAS makes them: -1 for left pads, large ones too. */
static void rope_matches_cpu(void **state)
{
    (void)state;
    require_gpu();
    const int N = 19, H = 5, hd = 64, half = hd / 2;
    int pos[19];
    for (int n = 0; n < N; n++) pos[n] = n < 3 ? -1 : n * 211;
    float inv_freq[32], *cosv = hd_malloc((size_t)N * half * sizeof *cosv);
    float *sinv = hd_malloc((size_t)N * half * sizeof *sinv);
    rope_inv_freq(inv_freq, hd, 500000.0f, 1, 8.0f, 1.0f, 4.0f, 8192);
    rope_angles(cosv, sinv, pos, inv_freq, N, half);
    const size_t n = (size_t)N * H * hd;
    float *x = random_floats(n, -2, 2), *dout = random_floats(n, -1, 1), *dx = grad_init(n);
    float *x_g = device_floats(x, n), *dout_g = device_floats(dout, n), *dx_g = device_floats(dx, n);
    float *cos_g = device_floats(cosv, (size_t)N * half), *sin_g = device_floats(sinv, (size_t)N * half);
    rope_forward(x, cosv, sinv, N, H, hd);
    rope_backward(dx, dout, cosv, sinv, N, H, hd);
    op_ok(rope_forward_cuda(x_g, cos_g, sin_g, N, H, hd));
    op_ok(rope_backward_cuda(dx_g, dout_g, cos_g, sin_g, N, H, hd));
    float *gx = download_floats(x_g, n), *gd = download_floats(dx_g, n);
    expect_fp32("rope forward (in place)", gx, x, n);
    expect_fp32("rope dinp", gd, dx, n);
    assert_int_equal(rope_forward_cuda(x_g, cos_g, sin_g, N, H, 63), -1); /* odd head_dim */

    hd_cuda_free(x_g), hd_cuda_free(dout_g), hd_cuda_free(dx_g), hd_cuda_free(cos_g);
    hd_cuda_free(sin_g);
    free(cosv), free(sinv), free(x), free(dout), free(dx), free(gx), free(gd);
}

/* One attention problem through both sides: att, out, dq, dk, dv.
 * mask_kind 0: no mask (NULL); 1: row r has r*5 left pads (those queries
 * see no key); 2: left pads plus holes in the middle. */
static void attention_case(const char *name, int b, int Tq, int Tk, int Tcap, int H, int Hkv,
                           int hd, int mask_kind)
{
    const size_t nq = (size_t)b * Tq * H * hd, nkv = (size_t)b * Tcap * Hkv * hd;
    const size_t natt = (size_t)b * H * Tq * Tk;
    /* A spread of 2.5 gives peaked and flat softmax rows alike. */
    float *q = random_floats(nq, -2.5f, 2.5f), *k = random_floats(nkv, -2.5f, 2.5f);
    float *v = random_floats(nkv, -1, 1), *dout = random_floats(nq, -1, 1);
    int *mask = NULL;
    if (mask_kind) {
        mask = hd_malloc((size_t)b * Tcap * sizeof *mask);
        for (int r = 0; r < b; r++)
            for (int j = 0; j < Tcap; j++)
                mask[(size_t)r * Tcap + j] = j >= r * 5 && !(mask_kind == 2 && j % 7 == 3);
    }
    float *out = hd_malloc(nq * sizeof *out), *att = hd_malloc(natt * sizeof *att);
    float *dq = grad_init(nq), *dk = grad_init(nkv), *dv = grad_init(nkv);
    float *dq_g = device_floats(dq, nq), *dk_g = device_floats(dk, nkv), *dv_g = device_floats(dv, nkv);
    attention_forward(out, att, q, k, v, mask, b, Tq, Tk, Tcap, H, Hkv, hd);
    attention_backward(dq, dk, dv, dout, att, q, k, v, b, Tq, Tk, Tcap, H, Hkv, hd);

    float *q_g = device_floats(q, nq), *k_g = device_floats(k, nkv), *v_g = device_floats(v, nkv);
    float *dout_g = device_floats(dout, nq);
    int *mask_g = mask ? to_device(mask, (size_t)b * Tcap * sizeof *mask) : NULL;
    float *out_g = hd_cuda_malloc(nq * sizeof(float)), *att_g = hd_cuda_malloc(natt * sizeof(float));
    op_ok(attention_forward_cuda(out_g, att_g, q_g, k_g, v_g, mask_g, b, Tq, Tk, Tcap, H, Hkv, hd));
    op_ok(attention_backward_cuda(dq_g, dk_g, dv_g, dout_g, att_g, q_g, k_g, v_g, b, Tq, Tk, Tcap,
                                  H, Hkv, hd));
    float *o = download_floats(out_g, nq), *a = download_floats(att_g, natt);
    float *gq = download_floats(dq_g, nq), *gk = download_floats(dk_g, nkv);
    float *gv = download_floats(dv_g, nkv);
    char label[80];
    snprintf(label, sizeof label, "%s att", name);
    expect_fp32(label, a, att, natt);
    snprintf(label, sizeof label, "%s out", name);
    expect_fp32(label, o, out, nq);
    snprintf(label, sizeof label, "%s dq", name);
    expect_fp32(label, gq, dq, nq);
    snprintf(label, sizeof label, "%s dk", name);
    expect_fp32(label, gk, dk, nkv);
    snprintf(label, sizeof label, "%s dv", name);
    expect_fp32(label, gv, dv, nkv);

    hd_cuda_free(q_g), hd_cuda_free(k_g), hd_cuda_free(v_g), hd_cuda_free(dout_g);
    hd_cuda_free(mask_g), hd_cuda_free(out_g), hd_cuda_free(att_g);
    hd_cuda_free(dq_g), hd_cuda_free(dk_g), hd_cuda_free(dv_g);
    free(q), free(k), free(v), free(dout), free(mask), free(out), free(att);
    free(dq), free(dk), free(dv), free(o), free(a), free(gq), free(gk), free(gv);
}

/* Each case runs through both paths of attention.cu: the direct kernel
 * and the batched-GEMM one (forced with $HD_CUDA_ATTENTION). */
static void attention_both_paths(const char *name, int b, int Tq, int Tk, int Tcap, int H,
                                 int Hkv, int hd, int mask_kind)
{
    const char *paths[] = {"direct", "gemm"};
    for (int p = 0; p < 2; p++) {
        char label[48];
        snprintf(label, sizeof label, "%s %s", name, paths[p]);
        setenv("HD_CUDA_ATTENTION", paths[p], 1);
        attention_case(label, b, Tq, Tk, Tcap, H, Hkv, hd, mask_kind);
    }
    unsetenv("HD_CUDA_ATTENTION");
}

/* A full forward with GQA (3 query heads per kv head) and left pads. */
static void attention_full_matches_cpu(void **state)
{
    (void)state;
    require_gpu();
    attention_both_paths("attn full", 2, 37, 37, 37, 6, 2, 64, 1);
    attention_both_paths("attn nomask", 1, 20, 20, 20, 4, 1, 32, 0);
}

/* Queries at the end of a longer key line in a larger cache (Tq < Tk <
 * Tcap), head_dim 128, masked holes; and one generation step (Tq = 1). */
static void attention_cached_matches_cpu(void **state)
{
    (void)state;
    require_gpu();
    attention_both_paths("attn tail", 2, 5, 29, 33, 4, 4, 128, 2);
    attention_both_paths("attn step", 3, 1, 17, 24, 8, 2, 64, 2);
}

static void attention_rejects_bad_shapes(void **state)
{
    (void)state;
    require_gpu();
    float *dummy = hd_cuda_malloc(16);
    assert_int_equal(attention_forward_cuda(dummy, dummy, dummy, dummy, dummy, NULL, 1, 1, 1, 1,
                                            1, 1, 512),
                     -1);
    assert_non_null(strstr(hd_last_error(), "head_dim"));
    assert_int_equal(attention_forward_cuda(dummy, dummy, dummy, dummy, dummy, NULL, 1, 1, 1, 1,
                                            6, 4, 64),
                     -1);
    hd_cuda_free(dummy);
}

/* Gates from -12 to 12 cover the saturated ends of the sigmoid; the last
 * two elements are the extremes (exp overflows: -0 and the identity). */
static void swiglu_matches_cpu(void **state)
{
    (void)state;
    require_gpu();
    const size_t n = 10007;
    float *gate = random_floats(n, -12, 12), *up = random_floats(n, -1, 1);
    gate[n - 2] = -100.0f;
    gate[n - 1] = 100.0f;
    float *dout = random_floats(n, -1, 1), *out = hd_malloc(n * sizeof *out);
    float *dg = grad_init(n), *du = grad_init(n);
    float *dg_g = device_floats(dg, n), *du_g = device_floats(du, n);
    swiglu_forward(out, gate, up, n);
    swiglu_backward(dg, du, dout, gate, up, n);
    float *gate_g = device_floats(gate, n), *up_g = device_floats(up, n);
    float *dout_g = device_floats(dout, n), *out_g = hd_cuda_malloc(n * sizeof(float));
    op_ok(swiglu_forward_cuda(out_g, gate_g, up_g, n));
    op_ok(swiglu_backward_cuda(dg_g, du_g, dout_g, gate_g, up_g, n));
    float *o = download_floats(out_g, n), *g1 = download_floats(dg_g, n), *g2 = download_floats(du_g, n);
    expect_fp32("swiglu out", o, out, n);
    expect_fp32("swiglu dgate", g1, dg, n);
    expect_fp32("swiglu dup", g2, du, n);
    hd_cuda_free(gate_g), hd_cuda_free(up_g), hd_cuda_free(dout_g), hd_cuda_free(out_g);
    hd_cuda_free(dg_g), hd_cuda_free(du_g);
    free(gate), free(up), free(dout), free(out), free(dg), free(du), free(o), free(g1), free(g2);
}

/* One IEEE addition per element on both sides: bit for bit. */
static void residual_matches_cpu(void **state)
{
    (void)state;
    require_gpu();
    const size_t n = 100003;
    float *a = random_floats(n, -3, 3), *b = random_floats(n, -3, 3), *dout = random_floats(n, -1, 1);
    float *out = hd_malloc(n * sizeof *out), *da = grad_init(n), *db = grad_init(n);
    float *a_g = device_floats(a, n), *b_g = device_floats(b, n), *dout_g = device_floats(dout, n);
    float *da_g = device_floats(da, n), *db_g = device_floats(db, n);
    residual_forward(out, a, b, n);
    residual_backward(da, db, dout, n);
    op_ok(residual_forward_cuda(a_g, a_g, b_g, n)); /* in place: out == a */
    op_ok(residual_backward_cuda(da_g, db_g, dout_g, n));
    float *o = download_floats(a_g, n), *g1 = download_floats(da_g, n), *g2 = download_floats(db_g, n);
    expect_bitwise("residual out", o, out, n * sizeof *o);
    expect_bitwise("residual da", g1, da, n * sizeof *g1);
    expect_bitwise("residual db", g2, db, n * sizeof *g2);
    hd_cuda_free(a_g), hd_cuda_free(b_g), hd_cuda_free(dout_g), hd_cuda_free(da_g), hd_cuda_free(db_g);
    free(a), free(b), free(dout), free(out), free(da), free(db), free(o), free(g1), free(g2);
}

/* A GPT-2-sized vocabulary (odd V), ignored rows (-100, and V itself), a
 * weighted and an unweighted backward, and probs written over the logits. */
static void softmax_xent_matches_cpu(void **state)
{
    (void)state;
    require_gpu();
    const int N = 6, V = 50257;
    const size_t n = (size_t)N * V;
    int targets[6] = {17, -100, V - 1, 0, V, 31337};
    float *logits = random_floats(n, -8, 8), *dlosses = random_floats(N, 0.5f, 2);
    float *losses = hd_malloc(N * sizeof *losses), *probs = hd_malloc(n * sizeof *probs);
    float *dl = grad_init(n), *dl2 = grad_init(n);
    float *dl_g = device_floats(dl, n), *dl2_g = device_floats(dl2, n);
    softmax_xent_forward(losses, probs, logits, targets, N, V);
    softmax_xent_backward(dl, dlosses, probs, targets, N, V);
    softmax_xent_backward(dl2, NULL, probs, targets, N, V);

    float *logits_g = device_floats(logits, n), *dlosses_g = device_floats(dlosses, N);
    int *t_g = to_device(targets, sizeof targets);
    float *losses_g = hd_cuda_malloc(N * sizeof(float)), *probs_g = hd_cuda_malloc(n * sizeof(float));
    op_ok(softmax_xent_forward_cuda(losses_g, probs_g, logits_g, t_g, N, V));
    op_ok(softmax_xent_backward_cuda(dl_g, dlosses_g, probs_g, t_g, N, V));
    op_ok(softmax_xent_backward_cuda(dl2_g, NULL, probs_g, t_g, N, V));
    float *gl = download_floats(losses_g, N), *gp = download_floats(probs_g, n);
    float *g1 = download_floats(dl_g, n), *g2 = download_floats(dl2_g, n);
    expect_fp32("xent losses", gl, losses, N);
    assert_true(gl[1] == 0.0f && gl[4] == 0.0f); /* ignored rows */
    expect_fp32("xent probs", gp, probs, n);
    expect_fp32("xent dlogits (weighted)", g1, dl, n);
    expect_fp32("xent dlogits (dlosses NULL)", g2, dl2, n);
    /* In place: probs over the logits, losses still from the logits. */
    op_ok(softmax_xent_forward_cuda(losses_g, logits_g, logits_g, t_g, N, V));
    free(gl), free(gp);
    gl = download_floats(losses_g, N);
    gp = download_floats(logits_g, n);
    expect_fp32("xent losses (in place)", gl, losses, N);
    expect_fp32("xent probs (in place)", gp, probs, n);

    hd_cuda_free(logits_g), hd_cuda_free(dlosses_g), hd_cuda_free(t_g), hd_cuda_free(losses_g);
    hd_cuda_free(probs_g), hd_cuda_free(dl_g), hd_cuda_free(dl2_g);
    free(logits), free(dlosses), free(losses), free(probs), free(dl), free(dl2);
    free(gl), free(gp), free(g1), free(g2);
}

/* Random bytes in every format, bit for bit.  Block scales are drawn
 * finite: a NaN scale times a quant gives a NaN whose payload the CPU keeps
 * and the GPU canonicalises, a difference no real file exercises.  The
 * source starts at an odd device address, as a tensor inside a mapped
 * GGUF file may. */
static void random_f16_finite(unsigned char *p)
{
    uint16_t h;
    do h = (uint16_t)rng_next(&g_rng);
    while (((h >> 10) & 0x1f) == 0x1f);
    p[0] = (unsigned char)(h & 0xff);
    p[1] = (unsigned char)(h >> 8);
}

static void dequant_case(const char *what, int (*gpu)(const void *, float *, size_t),
                         void (*cpu)(const void *, float *, size_t), size_t n, size_t block_bytes,
                         size_t block_values, size_t scale_count)
{
    const size_t bytes = n / block_values * block_bytes;
    unsigned char *src = hd_malloc(bytes + 1);
    for (size_t i = 0; i < bytes + 1; i++) src[i] = (unsigned char)rng_next(&g_rng);
    if (scale_count)
        for (size_t blk = 0; blk < n / block_values; blk++)
            for (size_t s = 0; s < scale_count; s++) random_f16_finite(src + 1 + blk * block_bytes + 2 * s);
    float *want = hd_malloc(n * sizeof *want);
    cpu(src + 1, want, n);
    unsigned char *src_g = to_device(src, bytes + 1);
    float *dst_g = hd_cuda_malloc(n * sizeof(float));
    op_ok(gpu(src_g + 1, dst_g, n));
    float *got = download_floats(dst_g, n);
    expect_bitwise(what, got, want, n * sizeof *got);
    hd_cuda_free(src_g), hd_cuda_free(dst_g);
    free(src), free(want), free(got);
}

static void dequant_matches_cpu_bitwise(void **state)
{
    (void)state;
    require_gpu();
    const size_t n = 32 * 1001;
    dequant_case("dequant f16", dequant_f16_cuda, dequant_f16, n, 2, 1, 0);
    dequant_case("dequant bf16", dequant_bf16_cuda, dequant_bf16, n, 2, 1, 0);
    dequant_case("dequant q4_0", dequant_q4_0_cuda, dequant_q4_0, n, Q4_0_BLOCK_BYTES, QK4_0, 1);
    dequant_case("dequant q4_1", dequant_q4_1_cuda, dequant_q4_1, n, Q4_1_BLOCK_BYTES, QK4_1, 2);
    dequant_case("dequant q8_0", dequant_q8_0_cuda, dequant_q8_0, n, Q8_0_BLOCK_BYTES, QK8_0, 1);
    /* A count that is not whole blocks is refused with a message. */
    float *dst_g = hd_cuda_malloc(64 * sizeof(float));
    assert_int_equal(dequant_q4_0_cuda(dst_g, dst_g, 33), -1);
    assert_non_null(strstr(hd_last_error(), "multiple of 32"));
    hd_cuda_free(dst_g);
}

/* f32 -> bf16 rounding: random bit patterns (NaNs and infinities
 * included) and exact ties, bit for bit against float16.h. */
static void f32_to_bf16_matches_cpu(void **state)
{
    (void)state;
    require_gpu();
    const size_t n = 65536;
    uint32_t *bits = hd_malloc(n * sizeof *bits);
    for (size_t i = 0; i < n; i++) bits[i] = (uint32_t)rng_next(&g_rng);
    for (size_t i = 0; i < 256; i++) bits[i] = (bits[i] & 0xffff0000u) | 0x8000u; /* ties */
    bits[256] = 0x7f800000u, bits[257] = 0xff800000u, bits[258] = 0x7f7fffffu; /* inf, -inf, max */
    float *src = hd_malloc(n * sizeof *src);
    memcpy(src, bits, n * sizeof *src);
    uint16_t *want = hd_malloc(n * sizeof *want), *got = hd_malloc(n * sizeof *got);
    for (size_t i = 0; i < n; i++) want[i] = f32_to_bf16(src[i]);
    float *src_g = device_floats(src, n);
    uint16_t *dst_g = hd_cuda_malloc(n * sizeof *dst_g);
    op_ok(f32_to_bf16_cuda(dst_g, src_g, n));
    to_host(got, dst_g, n * sizeof *got);
    expect_bitwise("f32_to_bf16", got, want, n * sizeof *got);
    hd_cuda_free(src_g), hd_cuda_free(dst_g);
    free(bits), free(src), free(want), free(got);
}

int main(void)
{
    cuda_test_start(20250101);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(device_is_usable),
        cmocka_unit_test(matmul_fp32_matches_cpu),
        cmocka_unit_test(matmul_bf16_weights_match_cpu),
        cmocka_unit_test(embedding_matches_cpu),
        cmocka_unit_test(rmsnorm_matches_cpu),
        cmocka_unit_test(rope_matches_cpu),
        cmocka_unit_test(attention_full_matches_cpu),
        cmocka_unit_test(attention_cached_matches_cpu),
        cmocka_unit_test(attention_rejects_bad_shapes),
        cmocka_unit_test(swiglu_matches_cpu),
        cmocka_unit_test(residual_matches_cpu),
        cmocka_unit_test(softmax_xent_matches_cpu),
        cmocka_unit_test(dequant_matches_cpu_bitwise),
        cmocka_unit_test(f32_to_bf16_matches_cpu),
    };
    int failed = cmocka_run_group_tests_name("cuda_kernels", tests, NULL, NULL);
    cuda_test_end();
    return failed;
}

#else /* built without nvcc */

static void cuda_not_built(void **state)
{
    (void)state;
    print_message("# built without CUDA (no nvcc): nothing to compare\n");
    skip();
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(cuda_not_built)};
    return cmocka_run_group_tests_name("cuda_kernels", tests, NULL, NULL);
}

#endif
