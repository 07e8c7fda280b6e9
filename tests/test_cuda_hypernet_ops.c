/* Parity of the hypernetwork's CUDA ops (kernels/cuda/cuda_hypernet_ops.h)
 * with their CPU twins, on the same random inputs.  Without a usable GPU
 * every test reports itself skipped; built without nvcc, the program holds
 * one skipped test.
 *
 * Tolerances.  AdamW, the sparsity loss, the selection modes and the
 * Householder ops (the reflection in explicitly rounded intrinsics, the
 * orthogonal parametrisation through the host) compute
 * exactly the CPU's operations in the CPU's order: bit for bit.  The
 * gradient norm sums in double in another order: relative 1e-12.  The
 * intervention's products are per-element fp32 dot products where the CPU
 * calls sgemm, cross-attention sums in warp trees and uses CUDA's expf, the
 * position head uses CUDA's cosf/sinf/expf, the strided matmul is cuBLAS
 * against OpenBLAS (sums of 40 terms), the tempered sigmoid uses CUDA's expf:
 * the usual fp32 tolerance of tests/test_cuda_kernels.c,
 * |gpu - cpu| <= 1e-5 |cpu| + 1e-5 rms(cpu) (sums of at most d = 48 terms
 * here, each rounding at 2^-24). */
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
#include "cpu/adamw.h"
#include "cpu/cross_attention.h"
#include "cpu/grad_clip.h"
#include "cpu/householder.h"
#include "cpu/intervention.h"
#include "cpu/matmul.h"
#include "cpu/position_head.h"
#include "cpu/selection.h"
#include "cpu/sigmoid.h"
#include "cpu/sparsity_loss.h"
#include "cuda/cuda_hypernet_ops.h"
#include "cuda/cuda_ops.h"
#include "base/error.h"

#include "cuda_test_util.h"

static void adamw_matches_cpu_bitwise(void **state)
{
    (void)state;
    require_gpu();
    const size_t n = 100003;
    float *p = random_floats(n, -1, 1), *m = calloc(n, sizeof *m), *v = calloc(n, sizeof *v);
    float *p_g = device_floats(p, n), *m_g = device_floats(m, n), *v_g = device_floats(v, n);
    /* two spans with their own lr and decay, and a gap no span covers */
    AdamWSpan spans[2] = {{0, 60000, 3e-3f, 0.01f, 0}, {60010, n - 60010, 1e-2f, 0.0f, 0}};
    AdamWConfig cfg = adamw_default_config();
    for (int step = 1; step <= 3; step++) {
        float *g = random_floats(n, -2, 2);
        for (size_t i = 0; i < n; i += 7) g[i] = 0.0f; /* some moments stay 0 */
        float *g_g = device_floats(g, n);
        float scale = step == 2 ? 0.37f : 1.0f; /* a clipped step */
        adamw_step(p, g, scale, m, v, spans, 2, &cfg, step);
        op_ok(adamw_step_cuda(p_g, g_g, scale, m_g, v_g, spans, 2, &cfg, step));
        hd_cuda_free(g_g);
        free(g);
    }
    float *gp = download_floats(p_g, n), *gm = download_floats(m_g, n), *gv = download_floats(v_g, n);
    expect_bitwise("adamw params", gp, p, n * sizeof *p);
    expect_bitwise("adamw first moments", gm, m, n * sizeof *m);
    expect_bitwise("adamw second moments", gv, v, n * sizeof *v);
    hd_cuda_free(p_g), hd_cuda_free(m_g), hd_cuda_free(v_g);
    free(p), free(m), free(v), free(gp), free(gm), free(gv);
}

static void grad_norm_matches_cpu(void **state)
{
    (void)state;
    require_gpu();
    const size_t sizes[] = {1, 255, 257, 1000003};
    for (size_t c = 0; c < sizeof sizes / sizeof sizes[0]; c++) {
        const size_t n = sizes[c];
        float *g = random_floats(n, -3, 3), *g_g = device_floats(g, n);
        double want = grad_norm(g, n), got = -1, again = -1;
        op_ok(grad_norm_cuda(g_g, n, &got));
        op_ok(grad_norm_cuda(g_g, n, &again));
        print_message("# grad norm of %zu: gpu %.17g cpu %.17g\n", n, got, want);
        assert_true(fabs(got - want) <= 1e-12 * want);
        assert_true(got == again); /* the same tree every run */
        hd_cuda_free(g_g);
        free(g);
    }
}

static void sparsity_loss_matches_cpu_bitwise(void **state)
{
    (void)state;
    require_gpu();
    const int b = 3, S = 7, B = 9;
    const size_t n = (size_t)b * (S + 1) * B;
    /* rows of 9 weights in [0, 0.25]: row sums around 1, some above */
    float *W = random_floats(n, 0, 0.25f), *dW = grad_init(n);
    float *W_g = device_floats(W, n), *dW_g = device_floats(dW, n);
    float want = sparsity_loss_forward(W, b, S, B), got = -1;
    op_ok(sparsity_loss_forward_cuda(&got, W_g, b, S, B));
    print_message("# sparsity loss gpu %.9g cpu %.9g\n", got, want);
    assert_true(want > 0.0f);
    assert_memory_equal(&got, &want, sizeof got);
    sparsity_loss_backward(dW, W, 0.7f, b, S, B);
    op_ok(sparsity_loss_backward_cuda(dW_g, W_g, 0.7f, b, S, B));
    float *gdW = download_floats(dW_g, n);
    expect_bitwise("sparsity dW", gdW, dW, n * sizeof *dW);
    hd_cuda_free(W_g), hd_cuda_free(dW_g);
    free(W), free(dW), free(gdW);
}

/* One configuration of the intervention: R per row (stride d*k), shared
 * (stride 0) or none, with or without MaskSelect's mask. */
static void check_intervention(const char *what, int per_row, int with_R, int with_mask)
{
    const int b = 3, S = 5, B = 7, d = 48, k = 8;
    const size_t nd = (size_t)b * B * d, nk = (size_t)b * B * k, nW = (size_t)b * (S + 1) * B;
    const size_t R_stride = per_row ? (size_t)d * k : 0, nR = per_row ? (size_t)b * d * k : (size_t)d * k;
    float *xb = random_floats(nd, -1, 1), *Ys = random_floats((size_t)b * S * d, -1, 1);
    float *W = random_floats(nW, 0, 0.3f), *R = with_R ? random_floats(nR, -0.5f, 0.5f) : NULL;
    float *mask = with_mask ? random_floats((size_t)b * k, 0, 1) : NULL;
    float *out = calloc(nd, sizeof *out), *diff = calloc(nd, sizeof *diff);
    float *proj = calloc(nk, sizeof *proj), *work = calloc((size_t)B * (2 * k + d), sizeof *work);
    intervention_forward(out, diff, proj, xb, Ys, W, R, R_stride, mask, b, S, B, d, k, work);

    float *xb_g = device_floats(xb, nd), *Ys_g = device_floats(Ys, (size_t)b * S * d);
    float *W_g = device_floats(W, nW), *R_g = with_R ? device_floats(R, nR) : NULL;
    float *mask_g = with_mask ? device_floats(mask, (size_t)b * k) : NULL;
    float *out_g = device_floats(out, nd), *diff_g = device_floats(diff, nd);
    float *proj_g = device_floats(proj, nk);
    op_ok(intervention_forward_cuda(out_g, diff_g, proj_g, xb_g, Ys_g, W_g, R_g, R_stride, mask_g,
                                    b, S, B, d, k));
    char name[96];
    float *got = download_floats(out_g, nd);
    snprintf(name, sizeof name, "%s out", what);
    expect_fp32(name, got, out, nd);
    free(got);
    got = download_floats(diff_g, nd);
    snprintf(name, sizeof name, "%s diff", what);
    expect_fp32(name, got, diff, nd);
    free(got);
    if (with_R) {
        got = download_floats(proj_g, nk);
        snprintf(name, sizeof name, "%s proj", what);
        expect_fp32(name, got, proj, nk);
        free(got);
    }

    /* backward from the CPU's forward state on both sides */
    float *dout = random_floats(nd, -1, 1), *dW = grad_init(nW), *dxb = grad_init(nd);
    float *dR = with_R ? grad_init(nR) : NULL, *dmask = with_mask ? grad_init((size_t)b * k) : NULL;
    float *dout_g = device_floats(dout, nd), *dW_g = device_floats(dW, nW);
    float *dxb_g = device_floats(dxb, nd), *dR_g = with_R ? device_floats(dR, nR) : NULL;
    float *dmask_g = with_mask ? device_floats(dmask, (size_t)b * k) : NULL;
    hd_cuda_upload(diff_g, diff, nd * sizeof *diff);
    hd_cuda_upload(proj_g, proj, nk * sizeof *proj);
    intervention_backward(dW, dR, dmask, dxb, dout, diff, proj, xb, Ys, W, R, R_stride, mask, b, S,
                          B, d, k, work);
    op_ok(intervention_backward_cuda(dW_g, dR_g, dmask_g, dxb_g, dout_g, diff_g, proj_g, xb_g,
                                     Ys_g, W_g, R_g, R_stride, mask_g, b, S, B, d, k));
    struct { const char *name; float *dev, *want; size_t n; } grads[] = {
        {"dW", dW_g, dW, nW}, {"dxb", dxb_g, dxb, nd}, {"dR", dR_g, dR, nR},
        {"dmask", dmask_g, dmask, (size_t)b * k}};
    for (size_t i = 0; i < sizeof grads / sizeof grads[0]; i++) {
        if (!grads[i].dev) continue;
        got = download_floats(grads[i].dev, grads[i].n);
        snprintf(name, sizeof name, "%s %s", what, grads[i].name);
        expect_fp32(name, got, grads[i].want, grads[i].n);
        free(got);
    }
    float *devs[] = {xb_g, Ys_g, W_g, R_g, mask_g, out_g, diff_g, proj_g,
                     dout_g, dW_g, dxb_g, dR_g, dmask_g};
    for (size_t i = 0; i < sizeof devs / sizeof devs[0]; i++) hd_cuda_free(devs[i]);
    float *hosts[] = {xb, Ys, W, R, mask, out, diff, proj, work, dout, dW, dxb, dR, dmask};
    for (size_t i = 0; i < sizeof hosts / sizeof hosts[0]; i++) free(hosts[i]);
}

static void intervention_matches_cpu(void **state)
{
    (void)state;
    require_gpu();
    check_intervention("reflect (R per row)", 1, 1, 0);
    check_intervention("das (shared R)", 0, 1, 0);
    check_intervention("mask (shared R, mask)", 0, 1, 1);
    check_intervention("none (whole vector)", 0, 0, 0);
}

static void selection_matches_cpu_bitwise(void **state)
{
    (void)state;
    require_gpu();
    const int b = 4, S = 6, B = 9;
    const size_t P = (size_t)(S + 1) * B, n = (size_t)b * P;
    float *W = random_floats(n, 0, 1);
    for (int r = 0; r < b; r++) /* columns as distributions, as the head makes them */
        for (int t = 0; t < B; t++) {
            double sum = 0;
            for (int s = 0; s <= S; s++) sum += W[r * P + (size_t)s * B + t];
            for (int s = 0; s <= S; s++) W[r * P + (size_t)s * B + t] /= (float)sum;
        }
    W[P + 2] = W[P + 3]; /* a tie in row 1 */
    const int src[4] = {2, 5, 0, 9}, base[4] = {8, 0, 4, 1}; /* the last one out of range */
    float *W_g = device_floats(W, n), *out_g = device_floats(W, n);
    int *src_g = to_device(src, sizeof src), *base_g = to_device(base, sizeof base);
    float *want = malloc(n * sizeof *want);
    for (int mode = SELECT_SOFT; mode <= SELECT_RANDOM; mode++) {
        selection_forward(want, W, (SelectionMode)mode, 0.1f, src, base, b, S, B);
        op_ok(selection_forward_cuda(out_g, W_g, (SelectionMode)mode, 0.1f, src_g, base_g, b, S, B));
        float *got = download_floats(out_g, n);
        expect_bitwise(selection_mode_name((SelectionMode)mode), got, want, n * sizeof *got);
        free(got);
    }
    hd_cuda_free(W_g), hd_cuda_free(out_g), hd_cuda_free(src_g), hd_cuda_free(base_g);
    free(W), free(want);
}

static void householder_matches_cpu_bitwise(void **state)
{
    (void)state;
    require_gpu();
    const int d = 24, k = 5, b = 3;
    const size_t n = (size_t)d * k;
    /* the orthogonal parametrisation: X's strictly lower part random, the
     * diagonal -1 (its sign), a random fixed base */
    float *X = random_floats(n, -0.4f, 0.4f), *base = random_floats((size_t)d * d, -1, 1);
    for (int j = 0; j < k; j++) X[(size_t)j * k + j] = -1.0f;
    float *R = malloc(n * sizeof *R), *dR = random_floats(n, -1, 1), *dX = grad_init(n);
    float *X_g = device_floats(X, n), *base_g = device_floats(base, (size_t)d * d);
    float *R_g = device_floats(dR, n), *dR_g = device_floats(dR, n), *dX_g = device_floats(dX, n);
    householder_orthogonal_forward(R, X, base, d, k);
    op_ok(householder_orthogonal_forward_cuda(R_g, X_g, base_g, d, k));
    float *got = download_floats(R_g, n);
    expect_bitwise("orthogonal R", got, R, n * sizeof *R);
    free(got);
    householder_orthogonal_backward(dX, dR, X, base, d, k);
    op_ok(householder_orthogonal_backward_cuda(dX_g, dR_g, X_g, base_g, d, k));
    got = download_floats(dX_g, n);
    expect_bitwise("orthogonal dX", got, dX, n * sizeof *dX);
    free(got);

    /* ReflectSelect's reflection of that R, per example */
    const size_t nb = (size_t)b * d * k;
    float *u = random_floats((size_t)b * d, -1, 1), *Rp = malloc(nb * sizeof *Rp);
    float *v = malloc((size_t)b * d * sizeof *v), *unorm = malloc((size_t)b * sizeof *unorm);
    float *u_g = device_floats(u, (size_t)b * d), *Rp_g = device_floats(Rp, nb);
    float *v_g = device_floats(u, (size_t)b * d), *unorm_g = device_floats(u, (size_t)b);
    reflect_forward(Rp, v, unorm, u, R, b, d, k);
    op_ok(reflect_forward_cuda(Rp_g, v_g, unorm_g, u_g, R_g, b, d, k));
    struct { const char *name; float *dev, *want; size_t n; } fw[] = {
        {"reflect R'", Rp_g, Rp, nb}, {"reflect v", v_g, v, (size_t)b * d},
        {"reflect |u|", unorm_g, unorm, (size_t)b}};
    for (size_t i = 0; i < sizeof fw / sizeof fw[0]; i++) {
        got = download_floats(fw[i].dev, fw[i].n);
        expect_bitwise(fw[i].name, got, fw[i].want, fw[i].n * sizeof *got);
        free(got);
    }
    float *dRp = random_floats(nb, -1, 1), *du = grad_init((size_t)b * d), *dR2 = grad_init(n);
    float *dRp_g = device_floats(dRp, nb), *du_g = device_floats(du, (size_t)b * d);
    float *dR2_g = device_floats(dR2, n);
    reflect_backward(du, dR2, dRp, v, unorm, R, b, d, k);
    op_ok(reflect_backward_cuda(du_g, dR2_g, dRp_g, v_g, unorm_g, R_g, b, d, k));
    got = download_floats(du_g, (size_t)b * d);
    expect_bitwise("reflect du", got, du, (size_t)b * d * sizeof *got);
    free(got);
    got = download_floats(dR2_g, n);
    expect_bitwise("reflect dR", got, dR2, n * sizeof *got);
    free(got);
    float *devs[] = {X_g, base_g, R_g, dR_g, dX_g, u_g, Rp_g, v_g, unorm_g, dRp_g, du_g, dR2_g};
    for (size_t i = 0; i < sizeof devs / sizeof devs[0]; i++) hd_cuda_free(devs[i]);
    float *hosts[] = {X, base, R, dR, dX, u, Rp, v, unorm, dRp, du, dR2};
    for (size_t i = 0; i < sizeof hosts / sizeof hosts[0]; i++) free(hosts[i]);
}

/* Three batch rows: row 0 with a padded query and every fifth key hidden,
 * row 1 with all its keys hidden (the "no visible key" path: zeros, never
 * NaN), row 2 like row 0 but every query real. */
static void cross_attention_matches_cpu(void **state)
{
    (void)state;
    require_gpu();
    const int b = 3, Tq = 5, Tk = 37, H = 4, Hkv = 2, hd = 16;
    const size_t nq = (size_t)b * Tq * H * hd, nk = (size_t)b * Tk * Hkv * hd;
    const size_t na = (size_t)b * H * Tq * Tk;
    float *q = random_floats(nq, -1, 1), *k = random_floats(nk, -1, 1), *v = random_floats(nk, -1, 1);
    int qm[3 * 5], km[3 * 37];
    for (int i = 0; i < b * Tq; i++) qm[i] = i != 3; /* row 0, query 3 padded */
    for (int j = 0; j < b * Tk; j++) km[j] = j / Tk == 1 ? 0 : (j % 5 != 2); /* row 1: none */
    float *out = malloc(nq * sizeof *out), *att = malloc(na * sizeof *att);
    cross_attention_forward(out, att, q, k, v, qm, km, b, Tq, Tk, H, Hkv, hd);
    float *q_g = device_floats(q, nq), *k_g = device_floats(k, nk), *v_g = device_floats(v, nk);
    int *qm_g = to_device(qm, sizeof qm), *km_g = to_device(km, sizeof km);
    float *out_g = device_floats(q, nq), *att_g = device_floats(att, na);
    op_ok(cross_attention_forward_cuda(out_g, att_g, q_g, k_g, v_g, qm_g, km_g, b, Tq, Tk, H, Hkv,
                                       hd));
    float *got = download_floats(out_g, nq);
    expect_fp32("cross-attention out", got, out, nq);
    free(got);
    got = download_floats(att_g, na);
    expect_fp32("cross-attention att", got, att, na);
    free(got);

    float *dout = random_floats(nq, -1, 1), *dq = grad_init(nq), *dk = grad_init(nk), *dv = grad_init(nk);
    float *dout_g = device_floats(dout, nq), *dq_g = device_floats(dq, nq);
    float *dk_g = device_floats(dk, nk), *dv_g = device_floats(dv, nk);
    hd_cuda_upload(att_g, att, na * sizeof *att); /* both from the CPU's probabilities */
    cross_attention_backward(dq, dk, dv, dout, att, q, k, v, b, Tq, Tk, H, Hkv, hd);
    op_ok(cross_attention_backward_cuda(dq_g, dk_g, dv_g, dout_g, att_g, q_g, k_g, v_g, b, Tq, Tk,
                                        H, Hkv, hd));
    struct { const char *name; float *dev, *want; size_t n; } g[] = {
        {"cross-attention dq", dq_g, dq, nq}, {"cross-attention dk", dk_g, dk, nk},
        {"cross-attention dv", dv_g, dv, nk}};
    for (size_t i = 0; i < sizeof g / sizeof g[0]; i++) {
        got = download_floats(g[i].dev, g[i].n);
        expect_fp32(g[i].name, got, g[i].want, g[i].n);
        free(got);
    }
    float *devs[] = {q_g, k_g, v_g, out_g, att_g, dout_g, dq_g, dk_g, dv_g};
    for (size_t i = 0; i < sizeof devs / sizeof devs[0]; i++) hd_cuda_free(devs[i]);
    hd_cuda_free(qm_g), hd_cuda_free(km_g);
    float *hosts[] = {q, k, v, out, att, dout, dq, dk, dv};
    for (size_t i = 0; i < sizeof hosts / sizeof hosts[0]; i++) free(hosts[i]);
}

/* Two rows with masked source and base positions (so some pairs are
 * masked and the pair positions skip them), GQA 4/2 heads, head_dim 8. */
static void position_head_matches_cpu(void **state)
{
    (void)state;
    require_gpu();
    const int b = 2, S = 4, B = 6, H = 4, Hkv = 2, hd = 8, kvd = Hkv * hd;
    const size_t P = (size_t)(S + 1) * B, nW = (size_t)b * P;
    float *q = random_floats((size_t)b * H * hd, -1, 1), *kb = random_floats((size_t)b * B * kvd, -1, 1);
    float *ks = random_floats((size_t)b * S * kvd, -1, 1), *kself = random_floats((size_t)b * B * kvd, -1, 1);
    const int mb[2 * 6] = {1, 1, 0, 1, 1, 1, 0, 0, 1, 1, 1, 1};
    const int ms[2 * 4] = {1, 0, 1, 1, 1, 1, 1, 0};
    const float inv_freq[4] = {1.0f, 0.1f, 0.01f, 0.001f};
    float *W = malloc(nW * sizeof *W), *lg = malloc(nW * sizeof *lg);
    position_head_forward(W, lg, q, kb, ks, kself, mb, ms, inv_freq, b, S, B, H, Hkv, hd);
    float *q_g = device_floats(q, (size_t)b * H * hd), *kb_g = device_floats(kb, (size_t)b * B * kvd);
    float *ks_g = device_floats(ks, (size_t)b * S * kvd), *kself_g = device_floats(kself, (size_t)b * B * kvd);
    int *mb_g = to_device(mb, sizeof mb), *ms_g = to_device(ms, sizeof ms);
    float *if_g = device_floats(inv_freq, 4), *W_g = device_floats(W, nW), *lg_g = device_floats(W, nW);
    op_ok(position_head_forward_cuda(W_g, lg_g, q_g, kb_g, ks_g, kself_g, mb_g, ms_g, if_g, b, S, B,
                                     H, Hkv, hd));
    float *got = download_floats(W_g, nW);
    expect_fp32("position head W", got, W, nW);
    free(got);
    got = download_floats(lg_g, nW);
    int n_masked = 0; /* masked pairs: -inf on both sides, then out of the rms */
    for (size_t i = 0; i < nW; i++) {
        assert_int_equal(isinf(got[i]) && got[i] < 0, isinf(lg[i]) && lg[i] < 0);
        if (isinf(lg[i])) got[i] = lg[i] = 0.0f, n_masked++;
    }
    assert_true(n_masked > 0);
    expect_fp32("position head logits", got, lg, nW);
    free(got);

    float *dW = random_floats(nW, -1, 1), *dq = grad_init((size_t)b * H * hd);
    float *dkb = grad_init((size_t)b * B * kvd), *dks = grad_init((size_t)b * S * kvd);
    float *dkself = grad_init((size_t)b * B * kvd);
    float *dW_g = device_floats(dW, nW), *dq_g = device_floats(dq, (size_t)b * H * hd);
    float *dkb_g = device_floats(dkb, (size_t)b * B * kvd), *dks_g = device_floats(dks, (size_t)b * S * kvd);
    float *dkself_g = device_floats(dkself, (size_t)b * B * kvd);
    hd_cuda_upload(W_g, W, nW * sizeof *W); /* both from the CPU's weights */
    position_head_backward(dq, dkb, dks, dkself, dW, W, q, kb, ks, kself, mb, ms, inv_freq, b, S, B,
                           H, Hkv, hd);
    op_ok(position_head_backward_cuda(dq_g, dkb_g, dks_g, dkself_g, dW_g, W_g, q_g, kb_g, ks_g,
                                      kself_g, mb_g, ms_g, if_g, b, S, B, H, Hkv, hd));
    struct { const char *name; float *dev, *want; size_t n; } g[] = {
        {"position head dq", dq_g, dq, (size_t)b * H * hd},
        {"position head dkb", dkb_g, dkb, (size_t)b * B * kvd},
        {"position head dks", dks_g, dks, (size_t)b * S * kvd},
        {"position head dkself", dkself_g, dkself, (size_t)b * B * kvd}};
    for (size_t i = 0; i < sizeof g / sizeof g[0]; i++) {
        got = download_floats(g[i].dev, g[i].n);
        expect_fp32(g[i].name, got, g[i].want, g[i].n);
        free(got);
    }
    float *devs[] = {q_g, kb_g, ks_g, kself_g, if_g, W_g, lg_g, dW_g, dq_g, dkb_g, dks_g, dkself_g};
    for (size_t i = 0; i < sizeof devs / sizeof devs[0]; i++) hd_cuda_free(devs[i]);
    hd_cuda_free(mb_g), hd_cuda_free(ms_g);
    float *hosts[] = {q, kb, ks, kself, W, lg, dW, dq, dkb, dks, dkself};
    for (size_t i = 0; i < sizeof hosts / sizeof hosts[0]; i++) free(hosts[i]);
}

/* q_combine's halves: a [d, 2d] weight read as two [d, d] blocks */
static void strided_matmul_matches_cpu(void **state)
{
    (void)state;
    require_gpu();
    const int N = 13, C = 40, OC = 40, ldw = 2 * C;
    float *in = random_floats((size_t)N * C, -1, 1), *W = random_floats((size_t)OC * ldw, -1, 1);
    float *dout = random_floats((size_t)N * OC, -1, 1), *dW = grad_init((size_t)OC * ldw);
    float *in_g = device_floats(in, (size_t)N * C), *W_g = device_floats(W, (size_t)OC * ldw);
    float *dout_g = device_floats(dout, (size_t)N * OC), *dW_g = device_floats(dW, (size_t)OC * ldw);
    float *out = hd_malloc((size_t)N * OC * sizeof *out);
    float *out_g = device_floats(out, (size_t)N * OC);
    for (int half = 0; half < 2; half++) {
        matmul_forward_strided(out, in, W + half * C, ldw, N, C, OC);
        op_ok(matmul_forward_strided_cuda(out_g, in_g, W_g + half * C, ldw, N, C, OC));
        float *got = download_floats(out_g, (size_t)N * OC);
        expect_fp32(half ? "strided out (source half)" : "strided out (base half)", got, out,
                    (size_t)N * OC);
        free(got);
        matmul_backward_strided(dW + half * C, dout, in, ldw, N, C, OC);
        op_ok(matmul_backward_strided_cuda(dW_g + half * C, dout_g, in_g, ldw, N, C, OC));
    }
    float *gdW = download_floats(dW_g, (size_t)OC * ldw);
    expect_fp32("strided dW (both halves)", gdW, dW, (size_t)OC * ldw);
    hd_cuda_free(in_g), hd_cuda_free(W_g), hd_cuda_free(dout_g), hd_cuda_free(dW_g);
    hd_cuda_free(out_g);
    free(in), free(W), free(dout), free(dW), free(out), free(gdW);
}

static void sigmoid_matches_cpu(void **state)
{
    (void)state;
    require_gpu();
    const size_t n = 1000;
    const float tau = 0.37f;
    float *u = random_floats(n, -6, 6), *dm = random_floats(n, -1, 1), *du = grad_init(n);
    float *m = hd_malloc(n * sizeof *m);
    float *u_g = device_floats(u, n), *dm_g = device_floats(dm, n), *du_g = device_floats(du, n);
    float *m_g = device_floats(u, n);
    sigmoid_forward(m, u, tau, n);
    op_ok(sigmoid_forward_cuda(m_g, u_g, tau, n));
    float *gm = download_floats(m_g, n);
    expect_fp32("sigmoid", gm, m, n);
    sigmoid_backward(du, dm, m, tau, n);
    op_ok(sigmoid_backward_cuda(du_g, dm_g, m_g, tau, n));
    float *gdu = download_floats(du_g, n);
    expect_fp32("sigmoid du", gdu, du, n);
    hd_cuda_free(u_g), hd_cuda_free(dm_g), hd_cuda_free(du_g), hd_cuda_free(m_g);
    free(u), free(dm), free(du), free(m), free(gm), free(gdu);
}

int main(void)
{
    cuda_test_start(20261125);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(adamw_matches_cpu_bitwise),
        cmocka_unit_test(grad_norm_matches_cpu),
        cmocka_unit_test(sparsity_loss_matches_cpu_bitwise),
        cmocka_unit_test(intervention_matches_cpu),
        cmocka_unit_test(selection_matches_cpu_bitwise),
        cmocka_unit_test(householder_matches_cpu_bitwise),
        cmocka_unit_test(cross_attention_matches_cpu),
        cmocka_unit_test(position_head_matches_cpu),
        cmocka_unit_test(strided_matmul_matches_cpu),
        cmocka_unit_test(sigmoid_matches_cpu),
    };
    int failed = cmocka_run_group_tests_name("cuda_hypernet_ops", tests, NULL, NULL);
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
    return cmocka_run_group_tests_name("cuda_hypernet_ops", tests, NULL, NULL);
}

#endif
