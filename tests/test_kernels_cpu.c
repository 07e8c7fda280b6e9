/* kernels/cpu: every op's forward and backward.
 *
 * Two independent references:
 *  1. fp64 re-implementations of each op written here, naively from the
 *     formula.  The fp32 forward must match them, and the fp32 backward must
 *     match CENTRAL FINITE DIFFERENCES of the fp64 op (step 1e-5 in double:
 *     truncation ~h^2 and rounding ~1e-16/h are both below 1e-9, so the FD
 *     value is exact to far more digits than an fp32 gradient has).
 *  2. tests/fixtures/ops/ops.safetensors from PyTorch / transformers
 *     (tests/ref/gen_ops_fixtures.py): outputs and autograd gradients in
 *     fp64 from the same fp32 inputs.
 *
 * Errors are measured as max|got - want| / max|want| over a tensor.
 * Tolerances: FWD_TOL = GRAD_TOL = 1e-5.  An fp32 op rounds each product
 * and sum at ~6e-8 relative; with the reductions used here (up to 64 terms,
 * chained through softmax or the norm) the measured errors are 3e-8..3e-7
 * (every one is printed as a TAP comment), so the bounds leave 30x
 * headroom for platform differences in expf/sinf and BLAS summation order,
 * while a real bug (wrong sign, wrong index, missing term) shows up as an
 * error near 1. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "fd_check.h"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cpu/attention.h"
#include "cpu/embedding.h"
#include "cpu/matmul.h"
#include "cpu/residual.h"
#include "cpu/rmsnorm.h"
#include "cpu/rope.h"
#include "cpu/softmax_xent.h"
#include "cpu/swiglu.h"
#include "formats/safetensors.h"

#define FWD_TOL 1e-5
#define GRAD_TOL 1e-5
#define FD_STEP 1e-5

/* ---- helpers ---- */


/* This file's step and tolerance for the shared check (tests/fd_check.h). */
static void fd_check(const char *what, double *p, size_t n, LossFn loss, void *ctx,
                     const float *analytic)
{
    fd_check_step(what, p, n, loss, ctx, analytic, FD_STEP, GRAD_TOL);
}

static double dot64(const double *a, const double *b, size_t n)
{
    double s = 0.0;
    for (size_t i = 0; i < n; i++) s += a[i] * b[i];
    return s;
}

/* ---- matmul ---- */

typedef struct {
    double *x, *w, *b, *g;
    int N, C, OC;
} MatmulCtx;

static void ref_matmul(double *y, const double *x, const double *w, const double *b, int N, int C,
                       int OC)
{
    for (int n = 0; n < N; n++)
        for (int o = 0; o < OC; o++) {
            double s = b ? b[o] : 0.0;
            for (int c = 0; c < C; c++) s += x[n * C + c] * w[o * C + c];
            y[n * OC + o] = s;
        }
}
static double matmul_loss(void *p)
{
    MatmulCtx *c = p;
    double *y = malloc((size_t)c->N * c->OC * sizeof *y);
    ref_matmul(y, c->x, c->w, c->b, c->N, c->C, c->OC);
    double l = dot64(y, c->g, (size_t)c->N * c->OC);
    free(y);
    return l;
}

static void matmul_matches_fp64_and_fd(void **state)
{
    (void)state;
    const int N = 6, C = 20, OC = 9;
    float *x = rand_vec(N * C, 1), *w = rand_vec(OC * C, 0.5f), *b = rand_vec(OC, 1);
    float *g = rand_vec(N * OC, 1), *y = zeros(N * OC);
    MatmulCtx c = {to_f64(x, N * C), to_f64(w, OC * C), to_f64(b, OC), to_f64(g, N * OC), N, C, OC};
    double *yr = malloc(N * OC * sizeof *yr);
    ref_matmul(yr, c.x, c.w, c.b, N, C, OC);
    matmul_forward(y, x, w, b, N, C, OC);
    expect_close("matmul forward", y, yr, N * OC, FWD_TOL);

    float *dx = zeros(N * C), *dw = zeros(OC * C), *db = zeros(OC);
    matmul_backward(dx, dw, db, g, x, w, N, C, OC);
    fd_check("matmul dx", c.x, N * C, matmul_loss, &c, dx);
    fd_check("matmul dw", c.w, OC * C, matmul_loss, &c, dw);
    fd_check("matmul db", c.b, OC, matmul_loss, &c, db);

    /* gradients accumulate: a second call doubles them */
    float *dx2 = zeros(N * C);
    memcpy(dx2, dx, N * C * sizeof *dx2);
    matmul_backward(dx2, NULL, NULL, g, x, w, N, C, OC);
    for (int i = 0; i < N * C; i++) assert_float_equal(dx2[i], 2 * dx[i], 1e-5 * (1 + fabsf(dx[i])));
    free(x), free(w), free(b), free(g), free(y), free(yr), free(dx), free(dw), free(db), free(dx2);
    free(c.x), free(c.w), free(c.b), free(c.g);
}

/* ---- embedding ---- */

static void embedding_gathers_and_scatters(void **state)
{
    (void)state;
    const int V = 11, d = 5, N = 7;
    float *table = rand_vec(V * d, 1), *out = zeros(N * d), *g = rand_vec(N * d, 1);
    int ids[7] = {3, 0, 10, 3, 7, -1, 11}; /* repeated id, and two out of range */
    embedding_forward(out, ids, table, N, V, d);
    for (int n = 0; n < N; n++)
        for (int i = 0; i < d; i++) {
            float want = (ids[n] >= 0 && ids[n] < V) ? table[ids[n] * d + i] : 0.0f;
            assert_true(out[n * d + i] == want);
        }
    float *dt = zeros(V * d);
    embedding_backward(dt, g, ids, N, V, d);
    for (int v = 0; v < V; v++)
        for (int i = 0; i < d; i++) {
            double want = 0;
            for (int n = 0; n < N; n++)
                if (ids[n] == v) want += g[n * d + i];
            assert_float_equal(dt[v * d + i], want, 1e-6);
        }
    free(table), free(out), free(g), free(dt);
}

/* ---- residual ---- */

static void residual_adds_and_splits_gradient(void **state)
{
    (void)state;
    const size_t n = 100;
    float *a = rand_vec(n, 1), *b = rand_vec(n, 1), *o = zeros(n), *g = rand_vec(n, 1);
    float *da = zeros(n), *db = zeros(n);
    residual_forward(o, a, b, n);
    residual_backward(da, db, g, n);
    for (size_t i = 0; i < n; i++) {
        assert_true(o[i] == a[i] + b[i]);
        assert_true(da[i] == g[i] && db[i] == g[i]);
    }
    residual_forward(a, a, b, n); /* in place */
    for (size_t i = 0; i < n; i++) assert_true(a[i] == o[i]);
    free(a), free(b), free(o), free(g), free(da), free(db);
}

/* ---- rmsnorm ---- */

typedef struct {
    double *x, *w, *g;
    int N, d;
    double eps;
} NormCtx;

static void ref_rmsnorm(double *y, const double *x, const double *w, int N, int d, double eps)
{
    for (int n = 0; n < N; n++) {
        double ss = 0;
        for (int i = 0; i < d; i++) ss += x[n * d + i] * x[n * d + i];
        double r = 1.0 / sqrt(ss / d + eps);
        for (int i = 0; i < d; i++) y[n * d + i] = w[i] * x[n * d + i] * r;
    }
}
static double norm_loss(void *p)
{
    NormCtx *c = p;
    double *y = malloc((size_t)c->N * c->d * sizeof *y);
    ref_rmsnorm(y, c->x, c->w, c->N, c->d, c->eps);
    double l = dot64(y, c->g, (size_t)c->N * c->d);
    free(y);
    return l;
}

static void rmsnorm_matches_fp64_and_fd(void **state)
{
    (void)state;
    const int N = 5, d = 32;
    float *x = rand_vec(N * d, 2), *w = rand_vec(d, 1), *g = rand_vec(N * d, 1);
    float *y = zeros(N * d), *rstd = zeros(N);
    NormCtx c = {to_f64(x, N * d), to_f64(w, d), to_f64(g, N * d), N, d, 1e-5};
    double *yr = malloc(N * d * sizeof *yr);
    ref_rmsnorm(yr, c.x, c.w, N, d, c.eps);
    rmsnorm_forward(y, rstd, x, w, N, d, 1e-5f);
    expect_close("rmsnorm forward", y, yr, N * d, FWD_TOL);
    float *dx = zeros(N * d), *dw = zeros(d);
    rmsnorm_backward(dx, dw, g, x, w, rstd, N, d);
    fd_check("rmsnorm dx", c.x, N * d, norm_loss, &c, dx);
    fd_check("rmsnorm dw", c.w, d, norm_loss, &c, dw);
    free(x), free(w), free(g), free(y), free(rstd), free(yr), free(dx), free(dw);
    free(c.x), free(c.w), free(c.g);
}

/* ---- rope ---- */

typedef struct {
    double *x, *g;
    const float *cos, *sin;
    int N, H, hd;
} RopeCtx;

static void ref_rope(double *y, const double *x, const float *cos, const float *sin, int N, int H,
                     int hd)
{
    int h2 = hd / 2;
    for (int n = 0; n < N; n++)
        for (int h = 0; h < H; h++) {
            const double *v = x + (n * H + h) * hd;
            double *o = y + (n * H + h) * hd;
            for (int i = 0; i < h2; i++) {
                double c = cos[n * h2 + i], s = sin[n * h2 + i];
                o[i] = v[i] * c - v[i + h2] * s;
                o[i + h2] = v[i + h2] * c + v[i] * s;
            }
        }
}
static double rope_loss(void *p)
{
    RopeCtx *c = p;
    size_t n = (size_t)c->N * c->H * c->hd;
    double *y = malloc(n * sizeof *y);
    ref_rope(y, c->x, c->cos, c->sin, c->N, c->H, c->hd);
    double l = dot64(y, c->g, n);
    free(y);
    return l;
}

static void rope_matches_fp64_and_fd(void **state)
{
    (void)state;
    const int N = 5, H = 3, hd = 16, n = N * H * hd;
    int pos[5] = {-1, 0, 3, 100, 4000};
    float inv_freq[8], cs[5 * 8], sn[5 * 8];
    rope_inv_freq(inv_freq, hd, 10000.0f, 0, 0, 0, 0, 0);
    for (int i = 0; i < 8; i++)
        assert_float_equal(inv_freq[i], pow(10000.0, -2.0 * i / hd), 1e-6 * inv_freq[i]);
    rope_angles(cs, sn, pos, inv_freq, N, hd / 2);
    for (int k = 0; k < N; k++)
        for (int i = 0; i < 8; i++) {
            double angle = (double)((float)pos[k] * inv_freq[i]);
            assert_float_equal(cs[k * 8 + i], cos(angle), 1e-6);
            assert_float_equal(sn[k * 8 + i], sin(angle), 1e-6);
        }
    float *x = rand_vec(n, 1), *g = rand_vec(n, 1), *y = zeros(n);
    RopeCtx c = {to_f64(x, n), to_f64(g, n), cs, sn, N, H, hd};
    double *yr = malloc(n * sizeof *yr);
    ref_rope(yr, c.x, cs, sn, N, H, hd);
    memcpy(y, x, n * sizeof *y);
    rope_forward(y, cs, sn, N, H, hd);
    expect_close("rope forward", y, yr, n, FWD_TOL);
    float *dx = zeros(n);
    rope_backward(dx, g, cs, sn, N, H, hd);
    fd_check("rope dx", c.x, n, rope_loss, &c, dx);
    free(x), free(g), free(y), free(yr), free(dx), free(c.x), free(c.g);
}

/* ---- attention ---- */

typedef struct {
    double *q, *k, *v, *g;
    const int *mask;
    int b, Tq, Tk, Tcap, H, Hkv, hd;
} AttCtx;

static void ref_attention(double *out, const AttCtx *c)
{
    const int H = c->H, Hkv = c->Hkv, hd = c->hd, Tq = c->Tq, Tk = c->Tk, Tcap = c->Tcap;
    double *s = malloc((size_t)Tk * sizeof *s);
    for (int r = 0; r < c->b; r++)
        for (int h = 0; h < H; h++)
            for (int i = 0; i < Tq; i++) {
                int kvh = h / (H / Hkv), last = Tk - Tq + i;
                const double *q = c->q + ((r * Tq + i) * H + h) * hd;
                double mx = -INFINITY;
                for (int j = 0; j <= last; j++) {
                    if (c->mask && !c->mask[r * Tcap + j]) continue;
                    const double *k = c->k + ((r * Tcap + j) * Hkv + kvh) * hd;
                    s[j] = dot64(q, k, hd) / sqrt((double)hd);
                    if (s[j] > mx) mx = s[j];
                }
                double *o = out + ((r * Tq + i) * H + h) * hd;
                for (int e = 0; e < hd; e++) o[e] = 0;
                if (mx == -INFINITY) continue;
                double sum = 0;
                for (int j = 0; j <= last; j++)
                    if (!c->mask || c->mask[r * Tcap + j]) sum += exp(s[j] - mx);
                for (int j = 0; j <= last; j++) {
                    if (c->mask && !c->mask[r * Tcap + j]) continue;
                    double p = exp(s[j] - mx) / sum;
                    const double *v = c->v + ((r * Tcap + j) * Hkv + kvh) * hd;
                    for (int e = 0; e < hd; e++) o[e] += p * v[e];
                }
            }
    free(s);
}
static double att_loss(void *p)
{
    AttCtx *c = p;
    size_t n = (size_t)c->b * c->Tq * c->H * c->hd;
    double *y = malloc(n * sizeof *y);
    ref_attention(y, c);
    double l = dot64(y, c->g, n);
    free(y);
    return l;
}

/* Tq = Tk = Tcap is the plain forward; Tq < Tk <= Tcap is a KV-cache step. */
static void check_attention(const char *name, int b, int Tq, int Tk, int Tcap, const int *mask)
{
    const int H = 4, Hkv = 2, hd = 8;
    const size_t nq = (size_t)b * Tq * H * hd, nkv = (size_t)b * Tcap * Hkv * hd;
    float *q = rand_vec(nq, 1.5f), *k = rand_vec(nkv, 1.5f), *v = rand_vec(nkv, 1);
    float *g = rand_vec(nq, 1), *y = zeros(nq), *att = zeros((size_t)b * H * Tq * Tk);
    AttCtx c = {to_f64(q, nq), to_f64(k, nkv), to_f64(v, nkv), to_f64(g, nq), mask,
                b,             Tq,             Tk,             Tcap,          H,
                Hkv,           hd};
    double *yr = malloc(nq * sizeof *yr);
    ref_attention(yr, &c);
    attention_forward(y, att, q, k, v, mask, b, Tq, Tk, Tcap, H, Hkv, hd);
    char label[80];
    snprintf(label, sizeof label, "attention %s forward", name);
    expect_close(label, y, yr, nq, FWD_TOL);

    float *dq = zeros(nq), *dk = zeros(nkv), *dv = zeros(nkv);
    attention_backward(dq, dk, dv, g, att, q, k, v, b, Tq, Tk, Tcap, H, Hkv, hd);
    snprintf(label, sizeof label, "attention %s dq", name);
    fd_check(label, c.q, nq, att_loss, &c, dq);
    snprintf(label, sizeof label, "attention %s dk", name);
    fd_check(label, c.k, nkv, att_loss, &c, dk);
    snprintf(label, sizeof label, "attention %s dv", name);
    fd_check(label, c.v, nkv, att_loss, &c, dv);
    /* cache slots beyond Tk are neither read nor written */
    for (int r = 0; r < b; r++)
        for (size_t i = (size_t)(r * Tcap + Tk) * Hkv * hd; i < (size_t)(r + 1) * Tcap * Hkv * hd; i++)
            assert_true(dk[i] == 0.0f && dv[i] == 0.0f);
    free(q), free(k), free(v), free(g), free(y), free(att), free(yr), free(dq), free(dk), free(dv);
    free(c.q), free(c.k), free(c.v), free(c.g);
}

static void attention_matches_fp64_and_fd(void **state)
{
    (void)state;
    /* left padding of 0, 2 and 6 (a row that is all pads) */
    int mask[3 * 6] = {1, 1, 1, 1, 1, 1, 0, 0, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0};
    check_attention("causal+pad", 3, 6, 6, 6, mask);
    check_attention("no mask", 2, 5, 5, 5, NULL);
    /* two new queries against a cache of 5 keys, room for 7 */
    int cmask[2 * 7] = {0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1};
    check_attention("cache step", 2, 2, 5, 7, cmask);
}

static void attention_pad_rows_are_zero_not_nan(void **state)
{
    (void)state;
    const int b = 1, T = 4, H = 2, hd = 4;
    int mask[4] = {0, 0, 1, 1};
    float *q = rand_vec(T * H * hd, 1e3f), *k = rand_vec(T * H * hd, 1e3f);
    float *v = rand_vec(T * H * hd, 1), *y = zeros(T * H * hd), *att = zeros(H * T * T);
    attention_forward(y, att, q, k, v, mask, b, T, T, T, H, H, hd);
    for (int i = 0; i < T * H * hd; i++) assert_true(isfinite(y[i]));
    for (int i = 0; i < 2 * H * hd; i++) assert_true(y[i] == 0.0f); /* tokens 0, 1 are pads */
    for (int h = 0; h < H; h++)
        for (int i = 2; i < T; i++) { /* real rows: probabilities sum to 1, pads get 0 */
            const float *p = att + (h * T + i) * T;
            assert_true(p[0] == 0.0f && p[1] == 0.0f);
            assert_float_equal(p[2] + p[3], 1.0, 1e-6);
        }
    free(q), free(k), free(v), free(y), free(att);
}

/* ---- swiglu ---- */

typedef struct {
    double *gate, *up, *g;
    size_t n;
} SwiCtx;

static double swiglu_loss(void *p)
{
    SwiCtx *c = p;
    double l = 0;
    for (size_t i = 0; i < c->n; i++) {
        double x = c->gate[i];
        l += c->g[i] * x / (1.0 + exp(-x)) * c->up[i];
    }
    return l;
}

static void swiglu_matches_fp64_and_fd(void **state)
{
    (void)state;
    const size_t n = 200;
    float *gate = rand_vec(n, 8), *up = rand_vec(n, 1), *g = rand_vec(n, 1), *y = zeros(n);
    SwiCtx c = {to_f64(gate, n), to_f64(up, n), to_f64(g, n), n};
    double *yr = malloc(n * sizeof *yr);
    for (size_t i = 0; i < n; i++) yr[i] = c.gate[i] / (1.0 + exp(-c.gate[i])) * c.up[i];
    swiglu_forward(y, gate, up, n);
    expect_close("swiglu forward", y, yr, n, FWD_TOL);
    float *dg = zeros(n), *du = zeros(n);
    swiglu_backward(dg, du, g, gate, up, n);
    fd_check("swiglu dgate", c.gate, n, swiglu_loss, &c, dg);
    fd_check("swiglu dup", c.up, n, swiglu_loss, &c, du);
    /* extreme gates stay finite */
    float big[2] = {-1e30f, 1e30f}, one[2] = {1, 1}, o[2];
    swiglu_forward(o, big, one, 2);
    assert_true(o[0] == 0.0f && isfinite(o[1]));
    free(gate), free(up), free(g), free(y), free(yr), free(dg), free(du);
    free(c.gate), free(c.up), free(c.g);
}

/* ---- softmax cross-entropy ---- */

typedef struct {
    double *logits, *w;
    const int *targets;
    int N, V;
} XentCtx;

static double ref_xent_row(const double *x, int t, int V)
{
    double mx = x[0];
    for (int i = 1; i < V; i++)
        if (x[i] > mx) mx = x[i];
    double s = 0;
    for (int i = 0; i < V; i++) s += exp(x[i] - mx);
    return mx + log(s) - x[t];
}
static double xent_loss(void *p)
{
    XentCtx *c = p;
    double l = 0;
    for (int n = 0; n < c->N; n++)
        if (c->targets[n] >= 0) l += c->w[n] * ref_xent_row(c->logits + n * c->V, c->targets[n], c->V);
    return l;
}

static void softmax_xent_matches_fp64_and_fd(void **state)
{
    (void)state;
    const int N = 4, V = 30;
    int targets[4] = {5, -100, 29, 0};
    float *logits = rand_vec(N * V, 6), *w = rand_vec(N, 1), *probs = zeros(N * V);
    float losses[4];
    XentCtx c = {to_f64(logits, N * V), to_f64(w, N), targets, N, V};
    softmax_xent_forward(losses, probs, logits, targets, N, V);
    double want[4];
    for (int n = 0; n < N; n++) want[n] = targets[n] >= 0 ? ref_xent_row(c.logits + n * V, targets[n], V) : 0;
    expect_close("softmax_xent loss", losses, want, N, FWD_TOL);
    for (int n = 0; n < N; n++) {
        double s = 0;
        for (int i = 0; i < V; i++) s += probs[n * V + i];
        assert_float_equal(s, 1.0, 1e-5);
    }
    float *dl = zeros(N * V);
    softmax_xent_backward(dl, w, probs, targets, N, V);
    fd_check("softmax_xent dlogits", c.logits, N * V, xent_loss, &c, dl);
    for (int i = 0; i < V; i++) assert_true(dl[1 * V + i] == 0.0f); /* ignored row */
    /* probabilities may be written over the logits */
    float *inplace = malloc(N * V * sizeof *inplace);
    memcpy(inplace, logits, N * V * sizeof *inplace);
    softmax_xent_forward(NULL, inplace, inplace, targets, N, V);
    for (int i = 0; i < N * V; i++) assert_float_equal(inplace[i], probs[i], 1e-7);
    free(logits), free(w), free(probs), free(dl), free(inplace), free(c.logits), free(c.w);
}

/* ---- PyTorch / transformers references ---- */

#define OPS_FIXTURE "tests/fixtures/ops/ops.safetensors"

static StFile ops;

static float *fx(const char *name, size_t *n)
{
    const StTensor *t = st_find(&ops, name);
    if (!t) fail_msg("%s: no tensor %s", OPS_FIXTURE, name);
    float *v = malloc(t->numel * sizeof *v);
    st_tensor_to_f32(t, v);
    if (n) *n = t->numel;
    return v;
}
static double *fx64(const char *name, size_t *n)
{
    size_t m;
    float *v = fx(name, &m);
    double *d = to_f64(v, m);
    free(v);
    if (n) *n = m;
    return d;
}
static int *fxi(const char *name)
{
    size_t n;
    float *v = fx(name, &n);
    int *r = malloc(n * sizeof *r);
    for (size_t i = 0; i < n; i++) r[i] = (int)v[i];
    free(v);
    return r;
}
/* fp64 reference tensors are read through fp32 here: 6e-8 relative, far
 * below the tolerances. */

static int open_ops(void **state)
{
    (void)state;
    if (st_open(&ops, OPS_FIXTURE)) {
        print_error("%s\n", "cannot open " OPS_FIXTURE);
        return -1;
    }
    return 0;
}
static int close_ops(void **state)
{
    (void)state;
    st_close(&ops);
    return 0;
}

static void torch_matmul(void **state)
{
    (void)state;
    size_t n;
    float *x = fx("mm_x", NULL), *w = fx("mm_w", NULL), *b = fx("mm_b", NULL), *g = fx("mm_dy", NULL);
    double *y = fx64("mm_y_f64", &n), *dx = fx64("mm_dx_f64", NULL), *dw = fx64("mm_dw_f64", NULL),
           *db = fx64("mm_db_f64", NULL);
    float out[35], gx[60] = {0}, gw[84] = {0}, gb[7] = {0};
    matmul_forward(out, x, w, b, 5, 12, 7);
    expect_close("torch F.linear forward", out, y, 35, FWD_TOL);
    matmul_backward(gx, gw, gb, g, x, w, 5, 12, 7);
    expect_close("torch F.linear dx", gx, dx, 60, GRAD_TOL);
    expect_close("torch F.linear dw", gw, dw, 84, GRAD_TOL);
    expect_close("torch F.linear db", gb, db, 7, GRAD_TOL);
    free(x), free(w), free(b), free(g), free(y), free(dx), free(dw), free(db);
}

static void torch_rmsnorm(void **state)
{
    (void)state;
    float *x = fx("rn_x", NULL), *w = fx("rn_w", NULL), *g = fx("rn_dy", NULL);
    double *y = fx64("rn_y_f64", NULL), *y32 = fx64("rn_y_f32", NULL), *dx = fx64("rn_dx_f64", NULL),
           *dw = fx64("rn_dw_f64", NULL);
    float out[320], rstd[5], gx[320] = {0}, gw[64] = {0};
    rmsnorm_forward(out, rstd, x, w, 5, 64, 1e-5f);
    expect_close("torch LlamaRMSNorm forward", out, y, 320, FWD_TOL);
    expect_close("torch LlamaRMSNorm fp32 module", out, y32, 320, FWD_TOL);
    rmsnorm_backward(gx, gw, g, x, w, rstd, 5, 64);
    expect_close("torch LlamaRMSNorm dx", gx, dx, 320, GRAD_TOL);
    expect_close("torch LlamaRMSNorm dw", gw, dw, 64, GRAD_TOL);
    free(x), free(w), free(g), free(y), free(y32), free(dx), free(dw);
}

static void torch_rope(void **state)
{
    (void)state;
    float f[64];
    double *want = fx64("rope_inv_freq_llama3", NULL);
    rope_inv_freq(f, 16, 500000.0f, 1, 8.0f, 1.0f, 4.0f, 8192);
    expect_close("torch inv_freq llama3 hd16", f, want, 8, 1e-6);
    free(want);
    want = fx64("rope_inv_freq_llama3_128", NULL);
    rope_inv_freq(f, 128, 500000.0f, 1, 8.0f, 1.0f, 4.0f, 8192);
    expect_close("torch inv_freq llama3 hd128", f, want, 64, 1e-6);
    free(want);
    want = fx64("rope_inv_freq_default", NULL);
    rope_inv_freq(f, 64, 100000.0f, 0, 0, 0, 0, 0);
    expect_close("torch inv_freq default hd64", f, want, 32, 1e-6);
    free(want);

    int *pos = fxi("rope_pos");
    float *x = fx("rope_x", NULL), *g = fx("rope_dy", NULL);
    double *y = fx64("rope_y_f64", NULL), *y32 = fx64("rope_y_f32", NULL), *dx = fx64("rope_dx_f64", NULL);
    float inv[8], cs[48], sn[48], gx[288] = {0};
    rope_inv_freq(inv, 16, 500000.0f, 1, 8.0f, 1.0f, 4.0f, 8192);
    rope_angles(cs, sn, pos, inv, 6, 8);
    rope_forward(x, cs, sn, 6, 3, 16);
    expect_close("torch apply_rotary_pos_emb", x, y, 288, FWD_TOL);
    expect_close("torch apply_rotary_pos_emb fp32", x, y32, 288, FWD_TOL);
    rope_backward(gx, g, cs, sn, 6, 3, 16);
    expect_close("torch apply_rotary_pos_emb dx", gx, dx, 288, GRAD_TOL);
    free(pos), free(x), free(g), free(y), free(y32), free(dx);
}

static void torch_attention(void **state)
{
    (void)state;
    const int b = 2, T = 5, H = 4, Hkv = 2, hd = 8;
    float *q = fx("att_q", NULL), *k = fx("att_k", NULL), *v = fx("att_v", NULL), *g = fx("att_dy", NULL);
    int *mask = fxi("att_mask");
    double *y = fx64("att_y_f64", NULL), *dq = fx64("att_dq_f64", NULL), *dk = fx64("att_dk_f64", NULL),
           *dv = fx64("att_dv_f64", NULL);
    float out[320], att[200], gq[320] = {0}, gk[160] = {0}, gv[160] = {0};
    attention_forward(out, att, q, k, v, mask, b, T, T, T, H, Hkv, hd);
    /* compare real query rows only (HF's pad rows attend uniformly to everything) */
    for (int r = 0; r < b; r++)
        for (int t = 0; t < T; t++)
            if (!mask[r * T + t])
                for (int e = 0; e < H * hd; e++) out[(r * T + t) * H * hd + e] = (float)y[(r * T + t) * H * hd + e];
    expect_close("torch eager attention forward", out, y, 320, FWD_TOL);
    attention_backward(gq, gk, gv, g, att, q, k, v, b, T, T, T, H, Hkv, hd);
    expect_close("torch eager attention dq", gq, dq, 320, GRAD_TOL);
    expect_close("torch eager attention dk", gk, dk, 160, GRAD_TOL);
    expect_close("torch eager attention dv", gv, dv, 160, GRAD_TOL);
    free(q), free(k), free(v), free(g), free(mask), free(y), free(dq), free(dk), free(dv);
}

static void torch_swiglu_and_xent(void **state)
{
    (void)state;
    float *gt = fx("sw_g", NULL), *up = fx("sw_u", NULL), *g = fx("sw_dy", NULL);
    double *y = fx64("sw_y_f64", NULL), *dg = fx64("sw_dg_f64", NULL), *du = fx64("sw_du_f64", NULL);
    float out[168], gg[168] = {0}, gu[168] = {0};
    swiglu_forward(out, gt, up, 168);
    expect_close("torch silu(g)*u forward", out, y, 168, FWD_TOL);
    swiglu_backward(gg, gu, g, gt, up, 168);
    expect_close("torch silu(g)*u dg", gg, dg, 168, GRAD_TOL);
    expect_close("torch silu(g)*u du", gu, du, 168, GRAD_TOL);
    free(gt), free(up), free(g), free(y), free(dg), free(du);

    float *logits = fx("xe_logits", NULL), *dloss = fx("xe_dloss", NULL);
    int *targets = fxi("xe_targets");
    double *loss = fx64("xe_loss_f64", NULL), *dl = fx64("xe_dlogits_f64", NULL);
    float l[4], probs[200], gl[200] = {0};
    softmax_xent_forward(l, probs, logits, targets, 4, 50);
    expect_close("torch cross_entropy loss", l, loss, 4, FWD_TOL);
    softmax_xent_backward(gl, dloss, probs, targets, 4, 50);
    expect_close("torch cross_entropy dlogits", gl, dl, 200, GRAD_TOL);
    free(logits), free(dloss), free(targets), free(loss), free(dl);
}

int main(void)
{
    const struct CMUnitTest fd_tests[] = {
        cmocka_unit_test(matmul_matches_fp64_and_fd),
        cmocka_unit_test(embedding_gathers_and_scatters),
        cmocka_unit_test(residual_adds_and_splits_gradient),
        cmocka_unit_test(rmsnorm_matches_fp64_and_fd),
        cmocka_unit_test(rope_matches_fp64_and_fd),
        cmocka_unit_test(attention_matches_fp64_and_fd),
        cmocka_unit_test(attention_pad_rows_are_zero_not_nan),
        cmocka_unit_test(swiglu_matches_fp64_and_fd),
        cmocka_unit_test(softmax_xent_matches_fp64_and_fd),
    };
    const struct CMUnitTest torch_tests[] = {
        cmocka_unit_test(torch_matmul),        cmocka_unit_test(torch_rmsnorm),
        cmocka_unit_test(torch_rope),          cmocka_unit_test(torch_attention),
        cmocka_unit_test(torch_swiglu_and_xent),
    };
    int failed = cmocka_run_group_tests_name("kernels_cpu", fd_tests, NULL, NULL);
    failed += cmocka_run_group_tests_name("kernels_cpu_vs_torch", torch_tests, open_ops, close_ops);
    return failed;
}
