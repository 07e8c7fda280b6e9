/* kernels/cpu ops of the HyperDAS hypernetwork: cross_attention,
 * position_head, householder (orthogonal parametrisation and ReflectSelect's
 * reflection), intervention (ReflectSelect / DAS / MaskSelect / full
 * patch), sparsity_loss, selection, adamw, grad_clip.
 *
 * Method, as tests/test_kernels_cpu.c: each op has a naive fp64
 * re-implementation here, written from the formula (for the position head:
 * the explicit per-head logits of the summed pair key, mean, mask, softmax;
 * for the Householder product: the d x d reflectors multiplied out).  The
 * fp32 forward must match it, and the fp32 backward must match CENTRAL
 * FINITE DIFFERENCES of the fp64 op for the loss sum(c * out) with fixed
 * random c.  Step 1e-5 in double: truncation ~h^2 and rounding ~1e-16/h are
 * both below 1e-9, far below fp32 resolution, so the FD value is exact to
 * the digits that matter.
 *
 * Errors are max|got - want| / max|want| over a tensor.  Tolerances:
 *   FWD_TOL  = 1e-5  fp32 forward vs fp64 (measured 1e-8..3e-7: reductions
 *                    over <= 64 terms, softmaxes, a chain of 8 reflectors)
 *   GRAD_TOL = 1e-5  fp32 backward vs fp64 FD (measured 3e-8..4e-7)
 *   ORTHO_TOL = 1e-5 for R^T R = I and R'^T R' = I (fp32 products of d = 24)
 * so there is >= 20x headroom for libm/BLAS differences, while a real bug
 * (a wrong sign, index or missing term) shows up as an error near 1.
 * Every measured error is printed as a TAP comment. */
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
#include <sys/mman.h>

#include "cpu/adamw.h"
#include "cpu/cross_attention.h"
#include "cpu/grad_clip.h"
#include "cpu/householder.h"
#include "cpu/intervention.h"
#include "cpu/position_head.h"
#include "cpu/rope.h"
#include "cpu/selection.h"
#include "cpu/sparsity_loss.h"
#include "formats/safetensors.h"

#define FWD_TOL 1e-5
#define GRAD_TOL 1e-5
#define ORTHO_TOL 1e-5
#define FD_STEP 1e-5

/* ---- helpers ---- */

static double dot64(const double *a, const double *b, size_t n)
{
    double s = 0.0;
    for (size_t i = 0; i < n; i++) s += a[i] * b[i];
    return s;
}

/* This file's step and tolerance for the shared check (tests/fd_check.h). */
static void fd_check(const char *what, double *p, size_t n, LossFn loss, void *ctx,
                     const float *analytic)
{
    fd_check_step(what, p, n, loss, ctx, analytic, FD_STEP, GRAD_TOL);
}

/* fp64 rotate-half RoPE of one head vector by angle pos * inv_freq (fp32
 * angles, as the kernels tabulate them) */
static void ref_rope_vec(double *x, int pos, const float *inv_freq, int hd)
{
    int half = hd / 2;
    for (int i = 0; i < half; i++) {
        float ang = (float)pos * inv_freq[i];
        double c = cosf(ang), s = sinf(ang);
        double a = x[i], b = x[i + half];
        x[i] = a * c - b * s;
        x[i + half] = b * c + a * s;
    }
}

/* ---- cross-attention ---- */

typedef struct {
    double *q, *k, *v, *g;
    const int *qm, *km;
    int b, Tq, Tk, H, Hkv, hd;
} XCtx;

static void ref_cross(double *out, const XCtx *c)
{
    const int H = c->H, Hkv = c->Hkv, hd = c->hd, Tq = c->Tq, Tk = c->Tk;
    double *s = malloc((size_t)Tk * sizeof *s);
    for (int r = 0; r < c->b; r++)
        for (int h = 0; h < H; h++)
            for (int i = 0; i < Tq; i++) {
                double *o = out + ((size_t)(r * Tq + i) * H + h) * hd;
                for (int e = 0; e < hd; e++) o[e] = 0;
                if (c->qm && !c->qm[r * Tq + i]) continue;
                int kvh = h / (H / Hkv);
                const double *q = c->q + ((size_t)(r * Tq + i) * H + h) * hd;
                double mx = -INFINITY;
                for (int j = 0; j < Tk; j++) {
                    if (c->km && !c->km[r * Tk + j]) continue;
                    s[j] = dot64(q, c->k + ((size_t)(r * Tk + j) * Hkv + kvh) * hd, hd) /
                           sqrt((double)hd);
                    if (s[j] > mx) mx = s[j];
                }
                if (mx == -INFINITY) continue;
                double sum = 0;
                for (int j = 0; j < Tk; j++)
                    if (!c->km || c->km[r * Tk + j]) sum += exp(s[j] - mx);
                for (int j = 0; j < Tk; j++) {
                    if (c->km && !c->km[r * Tk + j]) continue;
                    double p = exp(s[j] - mx) / sum;
                    const double *v = c->v + ((size_t)(r * Tk + j) * Hkv + kvh) * hd;
                    for (int e = 0; e < hd; e++) o[e] += p * v[e];
                }
            }
    free(s);
}
static double cross_loss(void *p)
{
    XCtx *c = p;
    size_t n = (size_t)c->b * c->Tq * c->H * c->hd;
    double *y = malloc(n * sizeof *y);
    ref_cross(y, c);
    double l = dot64(y, c->g, n);
    free(y);
    return l;
}

static void check_cross(const char *name, int b, int Tq, int Tk, const int *qm, const int *km)
{
    const int H = 4, Hkv = 2, hd = 8;
    const size_t nq = (size_t)b * Tq * H * hd, nkv = (size_t)b * Tk * Hkv * hd;
    float *q = rand_vec(nq, 1.5f), *k = rand_vec(nkv, 1.5f), *v = rand_vec(nkv, 1);
    float *g = rand_vec(nq, 1), *y = zeros(nq), *att = zeros((size_t)b * H * Tq * Tk);
    XCtx c = {to_f64(q, nq), to_f64(k, nkv), to_f64(v, nkv), to_f64(g, nq), qm, km, b, Tq, Tk,
              H, Hkv, hd};
    double *yr = malloc(nq * sizeof *yr);
    ref_cross(yr, &c);
    cross_attention_forward(y, att, q, k, v, qm, km, b, Tq, Tk, H, Hkv, hd);
    char label[96];
    snprintf(label, sizeof label, "cross-attention %s forward", name);
    expect_close(label, y, yr, nq, FWD_TOL);
    float *dq = zeros(nq), *dk = zeros(nkv), *dv = zeros(nkv);
    cross_attention_backward(dq, dk, dv, g, att, q, k, v, b, Tq, Tk, H, Hkv, hd);
    snprintf(label, sizeof label, "cross-attention %s dq", name);
    fd_check(label, c.q, nq, cross_loss, &c, dq);
    snprintf(label, sizeof label, "cross-attention %s dk", name);
    fd_check(label, c.k, nkv, cross_loss, &c, dk);
    snprintf(label, sizeof label, "cross-attention %s dv", name);
    fd_check(label, c.v, nkv, cross_loss, &c, dv);
    /* masked keys and padded queries: exactly no gradient, no NaN */
    for (size_t i = 0; i < nq; i++) assert_true(isfinite(y[i]));
    for (int r = 0; km && r < b; r++)
        for (int j = 0; j < Tk; j++)
            if (!km[r * Tk + j])
                for (int e = 0; e < Hkv * hd; e++) {
                    assert_true(dk[((size_t)r * Tk + j) * Hkv * hd + e] == 0.0f);
                    assert_true(dv[((size_t)r * Tk + j) * Hkv * hd + e] == 0.0f);
                }
    free(q), free(k), free(v), free(g), free(y), free(att), free(yr), free(dq), free(dk),
        free(dv);
    free(c.q), free(c.k), free(c.v), free(c.g);
}

static void cross_attention_matches_fp64_and_fd(void **state)
{
    (void)state;
    /* 3 rows: queries left padded by 0, 2, 1; keys with holes, one row with
     * a single visible key */
    int qm[3 * 4] = {1, 1, 1, 1, 0, 0, 1, 1, 0, 1, 1, 1};
    int km[3 * 7] = {1, 1, 0, 1, 1, 0, 1, 0, 0, 0, 0, 1, 0, 0, 1, 1, 1, 1, 1, 1, 0};
    check_cross("masked", 3, 4, 7, qm, km);
    check_cross("no masks", 2, 3, 5, NULL, NULL);
}

/* ---- position head ---- */

typedef struct {
    double *q, *kb, *ks, *kself, *g;
    const int *mb, *ms;
    const float *inv_freq;
    int b, S, B, H, Hkv, hd;
} PhCtx;

/* Straight from hyperdas(7) 3.5: per pair, k = kb[t] + ks[s] (self row: kself[t]),
 * rotated at its pair position; per-head logits q_h . k / sqrt(hd); mean
 * over heads; mask; softmax down each column. */
static void ref_head(double *W, const PhCtx *c)
{
    const int S = c->S, B = c->B, H = c->H, Hkv = c->Hkv, hd = c->hd, kvd = Hkv * hd;
    double *key = malloc((size_t)kvd * sizeof *key), *lg = malloc((size_t)(S + 1) * B * sizeof *lg);
    for (int r = 0; r < c->b; r++) {
        int count = 0;
        for (int s = 0; s <= S; s++)
            for (int t = 0; t < B; t++) {
                int vis = s == S || (c->ms[r * S + s] && c->mb[r * B + t]);
                count += vis;
                int pos = vis ? count : 0;
                for (int i = 0; i < kvd; i++)
                    key[i] = s == S ? c->kself[((size_t)r * B + t) * kvd + i]
                                    : c->kb[((size_t)r * B + t) * kvd + i] +
                                          c->ks[((size_t)r * S + s) * kvd + i];
                for (int g = 0; g < Hkv; g++) ref_rope_vec(key + g * hd, pos, c->inv_freq, hd);
                double mean = 0;
                for (int h = 0; h < H; h++)
                    mean += dot64(c->q + ((size_t)r * H + h) * hd, key + (h / (H / Hkv)) * hd, hd) /
                            sqrt((double)hd);
                mean /= H;
                lg[s * B + t] = vis ? mean : -INFINITY;
            }
        for (int t = 0; t < B; t++) {
            double mx = -INFINITY, sum = 0;
            for (int s = 0; s <= S; s++) mx = fmax(mx, lg[s * B + t]);
            for (int s = 0; s <= S; s++) sum += exp(lg[s * B + t] - mx);
            for (int s = 0; s <= S; s++)
                W[((size_t)r * (S + 1) + s) * B + t] = exp(lg[s * B + t] - mx) / sum;
        }
    }
    free(key), free(lg);
}
static double head_loss(void *p)
{
    PhCtx *c = p;
    size_t n = (size_t)c->b * (c->S + 1) * c->B;
    double *W = malloc(n * sizeof *W);
    ref_head(W, c);
    double l = dot64(W, c->g, n);
    free(W);
    return l;
}

static void position_head_matches_fp64_and_fd(void **state)
{
    (void)state;
    const int b = 2, S = 3, B = 4, H = 4, Hkv = 2, hd = 8, kvd = Hkv * hd;
    int mb[2 * 4] = {1, 1, 0, 1, 0, 1, 1, 0};
    int ms[2 * 3] = {1, 0, 1, 0, 0, 1};
    float inv_freq[4];
    rope_inv_freq(inv_freq, hd, 10000.0f, 0, 0, 0, 0, 0);
    const size_t nq = (size_t)b * H * hd, nkb = (size_t)b * B * kvd, nks = (size_t)b * S * kvd;
    const size_t nW = (size_t)b * (S + 1) * B;
    float *q = rand_vec(nq, 1.5f), *kb = rand_vec(nkb, 1.5f), *ks = rand_vec(nks, 1.5f);
    float *kself = rand_vec(nkb, 1.5f), *g = rand_vec(nW, 1);
    PhCtx c = {to_f64(q, nq), to_f64(kb, nkb), to_f64(ks, nks), to_f64(kself, nkb),
               to_f64(g, nW), mb, ms, inv_freq, b, S, B, H, Hkv, hd};
    double *Wr = malloc(nW * sizeof *Wr);
    ref_head(Wr, &c);
    float *W = zeros(nW), *lg = zeros(nW);
    position_head_forward(W, lg, q, kb, ks, kself, mb, ms, inv_freq, b, S, B, H, Hkv, hd);
    expect_close("position head W", W, Wr, nW, FWD_TOL);
    /* columns sum to 1; masked pairs exactly 0; masked base columns one-hot on the self row */
    for (int r = 0; r < b; r++)
        for (int t = 0; t < B; t++) {
            double sum = 0;
            for (int s = 0; s <= S; s++) {
                float w = W[((size_t)r * (S + 1) + s) * B + t];
                sum += w;
                if (s < S && !(ms[r * S + s] && mb[r * B + t])) assert_true(w == 0.0f);
            }
            assert_float_equal(sum, 1.0, 1e-6);
            if (!mb[r * B + t]) assert_true(W[((size_t)r * (S + 1) + S) * B + t] == 1.0f);
        }
    float *dq = zeros(nq), *dkb = zeros(nkb), *dks = zeros(nks), *dkself = zeros(nkb);
    position_head_backward(dq, dkb, dks, dkself, g, W, q, kb, ks, kself, mb, ms, inv_freq, b, S,
                           B, H, Hkv, hd);
    fd_check("position head dq", c.q, nq, head_loss, &c, dq);
    fd_check("position head dkb", c.kb, nkb, head_loss, &c, dkb);
    fd_check("position head dks", c.ks, nks, head_loss, &c, dks);
    fd_check("position head dkself", c.kself, nkb, head_loss, &c, dkself);
    int pos[4 * 4];
    position_head_pair_positions(pos, mb, ms, S, B); /* row 0 */
    int want[16] = {1, 2, 0, 3, 0, 0, 0, 0, 4, 5, 0, 6, 7, 8, 9, 10};
    assert_memory_equal(pos, want, sizeof want);
    free(q), free(kb), free(ks), free(kself), free(g), free(W), free(lg), free(Wr), free(dq);
    free(dkb), free(dks), free(dkself), free(c.q), free(c.kb), free(c.ks), free(c.kself), free(c.g);
}

/* ---- Householder: the orthogonal parametrisation ---- */

typedef struct {
    double *X, *g;
    const float *base;
    int d, k;
} HhCtx;

/* Multiplies the d x d reflectors out in full, then base @ (.)[:, :k] * sign. */
static void ref_householder(double *R, const HhCtx *c)
{
    const int d = c->d, k = c->k;
    double *P = calloc((size_t)d * d, sizeof *P), *T = malloc((size_t)d * d * sizeof *T);
    double *v = malloc((size_t)d * sizeof *v);
    for (int i = 0; i < d; i++) P[i * d + i] = 1;
    for (int j = 0; j < k; j++) { /* P <- P H_j */
        double nn = 1;
        for (int i = 0; i < d; i++) {
            v[i] = i < j ? 0 : i == j ? 1 : c->X[i * k + j];
            if (i > j) nn += v[i] * v[i];
        }
        double tau = 2.0 / nn;
        for (int i = 0; i < d; i++)
            for (int m = 0; m < d; m++) T[i * d + m] = P[i * d + m];
        for (int i = 0; i < d; i++) {
            double pv = 0;
            for (int m = 0; m < d; m++) pv += T[i * d + m] * v[m];
            for (int m = 0; m < d; m++) P[i * d + m] = T[i * d + m] - tau * pv * v[m];
        }
    }
    for (int i = 0; i < d; i++)
        for (int j = 0; j < k; j++) {
            double s = 0;
            for (int m = 0; m < d; m++) s += (double)c->base[i * d + m] * P[m * d + j];
            R[i * k + j] = s * (double)(int)c->X[j * k + j];
        }
    free(P), free(T), free(v);
}
static double hh_loss(void *p)
{
    HhCtx *c = p;
    size_t n = (size_t)c->d * c->k;
    double *R = malloc(n * sizeof *R);
    ref_householder(R, c);
    double l = dot64(R, c->g, n);
    free(R);
    return l;
}

/* A random orthogonal d x d matrix (Gram-Schmidt in double). */
static float *rand_orthogonal(int d)
{
    double *A = malloc((size_t)d * d * sizeof *A);
    for (int i = 0; i < d * d; i++) A[i] = urand();
    for (int j = 0; j < d; j++) { /* column j */
        for (int pass = 0; pass < 2; pass++)
            for (int m = 0; m < j; m++) {
                double s = 0;
                for (int i = 0; i < d; i++) s += A[i * d + j] * A[i * d + m];
                for (int i = 0; i < d; i++) A[i * d + j] -= s * A[i * d + m];
            }
        double n = 0;
        for (int i = 0; i < d; i++) n += A[i * d + j] * A[i * d + j];
        for (int i = 0; i < d; i++) A[i * d + j] /= sqrt(n);
    }
    float *Q = malloc((size_t)d * d * sizeof *Q);
    for (int i = 0; i < d * d; i++) Q[i] = (float)A[i];
    free(A);
    return Q;
}

static double orthonormality_err(const float *R, int d, int k)
{
    double worst = 0;
    for (int a = 0; a < k; a++)
        for (int c = 0; c < k; c++) {
            double s = 0;
            for (int i = 0; i < d; i++) s += (double)R[i * k + a] * R[i * k + c];
            worst = fmax(worst, fabs(s - (a == c)));
        }
    return worst;
}

static void householder_matches_fp64_and_fd(void **state)
{
    (void)state;
    const int d = 24, k = 6;
    const size_t n = (size_t)d * k;
    float *base = rand_orthogonal(d);
    float *X = rand_vec(n, 0.5f); /* the upper part and diagonal must not matter but the sign */
    /* int() -> -1; not exactly -1, where a +h step would truncate to 0 */
    for (int j = 0; j < k; j++) X[j * k + j] = j % 2 ? -1.2f : -1.7f;
    float *g = rand_vec(n, 1), *R = zeros(n);
    HhCtx c = {to_f64(X, n), to_f64(g, n), base, d, k};
    double *Rr = malloc(n * sizeof *Rr);
    ref_householder(Rr, &c);
    householder_orthogonal_forward(R, X, base, d, k);
    expect_close("householder R", R, Rr, n, FWD_TOL);
    double oe = orthonormality_err(R, d, k);
    print_message("# householder R^T R - I                   max abs %.2e (tol %.0e)\n", oe,
                  ORTHO_TOL);
    assert_true(oe <= ORTHO_TOL);
    float *dX = zeros(n);
    householder_orthogonal_backward(dX, g, X, base, d, k);
    fd_check("householder dX", c.X, n, hh_loss, &c, dX);
    for (int i = 0; i < d; i++) /* on and above the diagonal: no gradient at all */
        for (int j = i; j < k; j++) assert_true(dX[i * k + j] == 0.0f);
    /* X = -I: R is the first k columns of the base */
    memset(X, 0, n * sizeof *X);
    for (int j = 0; j < k; j++) X[j * k + j] = -1.0f;
    householder_orthogonal_forward(R, X, base, d, k);
    for (int i = 0; i < d; i++)
        for (int j = 0; j < k; j++) assert_float_equal(R[i * k + j], base[i * d + j], 1e-6);
    /* no base: the plain product */
    householder_orthogonal_forward(R, X, NULL, d, k);
    for (int i = 0; i < d; i++)
        for (int j = 0; j < k; j++) assert_float_equal(R[i * k + j], i == j, 1e-7);
    free(base), free(X), free(g), free(R), free(Rr), free(dX), free(c.X), free(c.g);
}

/* ---- ReflectSelect's reflection ---- */

typedef struct {
    double *u, *R, *g;
    int b, d, k;
} RfCtx;

static void ref_reflect(double *Rp, const RfCtx *c)
{
    const int d = c->d, k = c->k;
    for (int r = 0; r < c->b; r++) {
        const double *u = c->u + (size_t)r * d;
        double n = sqrt(dot64(u, u, d));
        for (int i = 0; i < d; i++) /* (I - 2 v v^T) R, the reflector built in full */
            for (int j = 0; j < k; j++) {
                double s = 0;
                for (int m = 0; m < d; m++)
                    s += ((i == m) - 2 * (u[i] / n) * (u[m] / n)) * c->R[m * k + j];
                Rp[((size_t)r * d + i) * k + j] = s;
            }
    }
}
static double reflect_loss(void *p)
{
    RfCtx *c = p;
    size_t n = (size_t)c->b * c->d * c->k;
    double *Rp = malloc(n * sizeof *Rp);
    ref_reflect(Rp, c);
    double l = dot64(Rp, c->g, n);
    free(Rp);
    return l;
}

static void reflect_matches_fp64_and_fd(void **state)
{
    (void)state;
    const int b = 3, d = 16, k = 5;
    const size_t nu = (size_t)b * d, nR = (size_t)d * k, nRp = (size_t)b * d * k;
    float *base = rand_orthogonal(d), *R = malloc(nR * sizeof *R);
    for (int i = 0; i < d; i++) /* an orthonormal R: the first k columns */
        for (int j = 0; j < k; j++) R[i * k + j] = base[i * d + j];
    float *u = rand_vec(nu, 2.0f), *g = rand_vec(nRp, 1);
    RfCtx c = {to_f64(u, nu), to_f64(R, nR), to_f64(g, nRp), b, d, k};
    double *ref = malloc(nRp * sizeof *ref);
    ref_reflect(ref, &c);
    float *Rp = zeros(nRp), *v = zeros(nu), *un = zeros(b);
    reflect_forward(Rp, v, un, u, R, b, d, k);
    expect_close("reflect R'", Rp, ref, nRp, FWD_TOL);
    double oe = 0;
    for (int r = 0; r < b; r++) oe = fmax(oe, orthonormality_err(Rp + (size_t)r * d * k, d, k));
    print_message("# reflect R'^T R' - I                     max abs %.2e (tol %.0e)\n", oe,
                  ORTHO_TOL);
    assert_true(oe <= ORTHO_TOL);
    float *du = zeros(nu), *dR = zeros(nR);
    reflect_backward(du, dR, g, v, un, R, b, d, k);
    fd_check("reflect du", c.u, nu, reflect_loss, &c, du);
    fd_check("reflect dR", c.R, nR, reflect_loss, &c, dR);
    free(base), free(R), free(u), free(g), free(ref), free(Rp), free(v), free(un), free(du),
        free(dR), free(c.u), free(c.R), free(c.g);
}

/* ---- intervention ---- */

typedef struct {
    double *xb, *Ys, *W, *R, *mask, *g;
    size_t R_stride;
    int b, S, B, d, k;
} IvCtx;

/* out = xb + (ysrc - xb) R R^T with the projector built in full (m . on
 * the k coordinates for MaskSelect); R NULL: out = ysrc. */
static void ref_intervene(double *out, const IvCtx *c)
{
    const int S = c->S, B = c->B, d = c->d, k = c->k;
    double *diff = malloc((size_t)d * sizeof *diff);
    for (int r = 0; r < c->b; r++)
        for (int t = 0; t < B; t++) {
            const double *x = c->xb + ((size_t)r * B + t) * d;
            const double *w = c->W + (size_t)r * (S + 1) * B;
            for (int i = 0; i < d; i++) {
                double ys = w[S * B + t] * x[i];
                for (int s = 0; s < S; s++) ys += w[s * B + t] * c->Ys[((size_t)r * S + s) * d + i];
                diff[i] = ys - x[i];
            }
            double *o = out + ((size_t)r * B + t) * d;
            if (!c->R) {
                for (int i = 0; i < d; i++) o[i] = x[i] + diff[i];
                continue;
            }
            const double *R = c->R + r * c->R_stride;
            for (int i = 0; i < d; i++) {
                double s = 0;
                for (int m = 0; m < d; m++) {
                    double P = 0; /* (R diag(mask) R^T)[i, m] */
                    for (int j = 0; j < k; j++)
                        P += R[i * k + j] * (c->mask ? c->mask[r * k + j] : 1.0) * R[m * k + j];
                    s += diff[m] * P;
                }
                o[i] = x[i] + s;
            }
        }
    free(diff);
}
static double iv_loss(void *p)
{
    IvCtx *c = p;
    size_t n = (size_t)c->b * c->B * c->d;
    double *o = malloc(n * sizeof *o);
    ref_intervene(o, c);
    double l = dot64(o, c->g, n);
    free(o);
    return l;
}

static void check_intervention(const char *name, int per_row_R, int with_R, int with_mask)
{
    const int b = 2, S = 3, B = 4, d = 10, k = 3;
    const size_t nx = (size_t)b * B * d, ny = (size_t)b * S * d, nW = (size_t)b * (S + 1) * B;
    const size_t nR = (per_row_R ? (size_t)b : 1) * d * k, nm = (size_t)b * k;
    const size_t stride = per_row_R ? (size_t)d * k : 0;
    float *xb = rand_vec(nx, 1), *Ys = rand_vec(ny, 1), *W = rand_vec(nW, 1);
    for (size_t i = 0; i < nW; i++) W[i] = fabsf(W[i]); /* any weights work for the algebra */
    float *R = rand_vec(nR, 0.6f), *mask = rand_vec(nm, 1), *g = rand_vec(nx, 1);
    for (size_t i = 0; i < nm; i++) mask[i] = 0.5f + 0.5f * mask[i];
    IvCtx c = {to_f64(xb, nx), to_f64(Ys, ny), to_f64(W, nW), with_R ? to_f64(R, nR) : NULL,
               with_mask ? to_f64(mask, nm) : NULL, to_f64(g, nx), stride, b, S, B, d, k};
    double *ref = malloc(nx * sizeof *ref);
    ref_intervene(ref, &c);
    float *out = zeros(nx), *diff = zeros(nx), *proj = zeros((size_t)b * B * k);
    float *work = zeros((size_t)B * (2 * k + d));
    const float *Rk = with_R ? R : NULL, *mk = with_mask ? mask : NULL;
    intervention_forward(out, diff, proj, xb, Ys, W, Rk, stride, mk, b, S, B, d, k, work);
    char label[96];
    snprintf(label, sizeof label, "intervention %s forward", name);
    expect_close(label, out, ref, nx, FWD_TOL);
    float *dW = zeros(nW), *dR = zeros(nR), *dm = zeros(nm), *dxb = zeros(nx);
    intervention_backward(dW, with_R ? dR : NULL, with_mask ? dm : NULL, dxb, g, diff, proj, xb,
                          Ys, W, Rk, stride, mk, b, S, B, d, k, work);
    snprintf(label, sizeof label, "intervention %s dW", name);
    fd_check(label, c.W, nW, iv_loss, &c, dW);
    snprintf(label, sizeof label, "intervention %s dxb", name);
    fd_check(label, c.xb, nx, iv_loss, &c, dxb);
    if (with_R) {
        snprintf(label, sizeof label, "intervention %s dR", name);
        fd_check(label, c.R, nR, iv_loss, &c, dR);
    }
    if (with_mask) {
        snprintf(label, sizeof label, "intervention %s dmask", name);
        fd_check(label, c.mask, nm, iv_loss, &c, dm);
    }
    free(xb), free(Ys), free(W), free(R), free(mask), free(g), free(ref), free(out), free(diff);
    free(proj), free(work), free(dW), free(dR), free(dm), free(dxb);
    free(c.xb), free(c.Ys), free(c.W), free(c.R), free(c.mask), free(c.g);
}

static void intervention_matches_fp64_and_fd(void **state)
{
    (void)state;
    check_intervention("ReflectSelect", 1, 1, 0);
    check_intervention("DAS", 0, 1, 0);
    check_intervention("MaskSelect", 0, 1, 1);
    check_intervention("full patch", 0, 0, 0);
}

/* A column that keeps the base (W[S,t] = 1) leaves that position untouched. */
static void intervention_self_column_is_identity(void **state)
{
    (void)state;
    const int b = 1, S = 2, B = 2, d = 6, k = 2;
    float *xb = rand_vec(B * d, 1), *Ys = rand_vec(S * d, 1), *R = rand_vec(d * k, 1);
    float W[3 * 2] = {0.5f, 0, 0.25f, 0, 0.25f, 1}; /* column 1 is all self */
    float out[2 * 6], diff[2 * 6], proj[2 * 2], work[2 * (4 + 6)];
    intervention_forward(out, diff, proj, xb, Ys, W, R, 0, NULL, b, S, B, d, k, work);
    for (int i = 0; i < d; i++) assert_true(out[d + i] == xb[d + i]);
    free(xb), free(Ys), free(R);
}

/* ---- sparsity loss and its schedule ---- */

typedef struct {
    double *W;
    int b, S, B;
} SpCtx;

static double sp_loss(void *p)
{
    SpCtx *c = p;
    double total = 0;
    for (int r = 0; r < c->b; r++)
        for (int s = 0; s < c->S; s++) {
            double sum = 0;
            for (int t = 0; t < c->B; t++) sum += c->W[((size_t)r * (c->S + 1) + s) * c->B + t];
            if (sum > 1) total += sum;
        }
    return total / c->b;
}

static void sparsity_loss_matches_formula_and_fd(void **state)
{
    (void)state;
    const int b = 2, S = 3, B = 4;
    const size_t n = (size_t)b * (S + 1) * B;
    /* row sums well away from 1 (FD must not cross the jump): 0.4, 1.6, 2.0 / 0.8, 1.2, 0.2 */
    const float rows[2][3] = {{0.4f, 1.6f, 2.0f}, {0.8f, 1.2f, 0.2f}};
    float *W = zeros(n);
    for (int r = 0; r < b; r++)
        for (int s = 0; s <= S; s++)
            for (int t = 0; t < B; t++)
                W[((size_t)r * (S + 1) + s) * B + t] =
                    s < S ? rows[r][s] / B * (1.0f + 0.1f * (t - 1.5f)) : 0.7f;
    SpCtx c = {to_f64(W, n), b, S, B};
    float got = sparsity_loss_forward(W, b, S, B);
    double want = sp_loss(&c);
    print_message("# sparsity loss %.7f, want %.7f\n", got, want);
    assert_true(fabs(got - want) <= 1e-6 * fabs(want));
    assert_true(fabs(want - (1.6 + 2.0 + 1.2) / 2) < 1e-6);
    float *dW = zeros(n);
    sparsity_loss_backward(dW, W, 1.0f, b, S, B);
    fd_check("sparsity dW", c.W, n, sp_loss, &c, dW);
    free(W), free(dW), free(c.W);
}

static void sparsity_schedule_matches_torch_linspace(void **state)
{
    (void)state;
    /* torch.linspace(0.15, 1.5, 11) zeroed below int(0.5 * 10) = 5 */
    const double want[11] = {0, 0, 0, 0, 0, 0.825, 0.96, 1.095, 1.23, 1.365, 1.5};
    for (int s = 0; s <= 10; s++) {
        float w = sparsity_weight(s, 10, 0.15f, 1.5f, 0.5f, 0);
        assert_true(fabs(w - want[s]) < 1e-6);
    }
    /* the fixture run: total 2, no warm-up */
    assert_true(fabsf(sparsity_weight(0, 2, 0.15f, 1.5f, 0.0f, 0) - 0.15f) < 1e-7f);
    assert_true(fabsf(sparsity_weight(1, 2, 0.15f, 1.5f, 0.0f, 0) - 0.825f) < 1e-7f);
    /* bf16 storage: 0.825 -> 0.82421875 */
    assert_true(sparsity_weight(1, 2, 0.15f, 1.5f, 0.0f, 1) == 0.82421875f);
}

/* ---- selection modes ---- */

static void selection_modes_by_hand(void **state)
{
    (void)state;
    /* S = 2, B = 3; rows s0, s1, self */
    const float W[9] = {0.5f, 0.2f, 0.45f, /* s0 */
                        0.3f, 0.75f, 0.45f, /* s1: bids for column 1 */
                        0.2f, 0.05f, 0.1f}; /* self: 0.05 and 0.1 are floored to 0.1 */
    float out[9];
    selection_forward(out, W, SELECT_COLUMN_ARGMAX, 0.1f, NULL, NULL, 1, 2, 3);
    const float col[9] = {1, 0, 1, 0, 1, 0, 0, 0, 0}; /* column 2: tie 0.45/0.45 -> s0 */
    assert_memory_equal(out, col, sizeof col);
    selection_forward(out, W, SELECT_BIDDING_ARGMAX, 0.1f, NULL, NULL, 1, 2, 3);
    /* s0 bids for column 0 (0.5), s1 for column 1 (0.75); column 2 keeps the base */
    const float bid[9] = {1, 0, 0, 0, 1, 0, 0, 0, 1};
    assert_memory_equal(out, bid, sizeof bid);
    selection_forward(out, W, SELECT_GLOBAL_ARGMAX, 0.1f, NULL, NULL, 1, 2, 3);
    const float glob[9] = {0, 0, 0, 0, 1, 0, 1, 0, 1};
    assert_memory_equal(out, glob, sizeof glob);
    int sp = 1, bp = 2;
    selection_forward(out, W, SELECT_GROUNDTRUTH, 0.1f, &sp, &bp, 1, 2, 3);
    const float gt[9] = {0, 0, 0, 0, 0, 1, 1, 1, 0};
    assert_memory_equal(out, gt, sizeof gt);
    selection_forward(out, W, SELECT_SOFT, 0.1f, NULL, NULL, 1, 2, 3);
    assert_memory_equal(out, W, sizeof out);
    assert_int_equal(selection_mode_from_name("bidding_argmax"), SELECT_BIDDING_ARGMAX);
    assert_int_equal(selection_mode_from_name("default"), SELECT_SOFT);
    assert_int_equal(selection_mode_from_name("nope"), -1);
}

/* tests/fixtures/hyperdas/hard_modes.safetensors: the reference's hand-made
 * W with ties and self weights below the bidding threshold. */
/* The random-position control: exactly one visible (source, base) pair per
 * example, masked rows and columns never chosen, the same draw for the same
 * W, and draws that move when W does. */
static void selection_random_control(void **state)
{
    (void)state;
    enum { b = 40, S = 5, B = 6 };
    float W[b * (S + 1) * B], out[b * (S + 1) * B], again[b * (S + 1) * B];
    for (int r = 0; r < b; r++)
        for (int t = 0; t < B; t++) {
            float *w = W + (size_t)r * (S + 1) * B;
            int masked_col = t == 0;                 /* base column 0 is not writable */
            float sum = 0;
            for (int s = 0; s < S; s++) {
                /* source row 4 is masked: weight 0 */
                float v = masked_col || s == 4 ? 0.0f : 0.05f + 0.01f * (float)((r * 7 + s * 3 + t) % 11);
                w[s * B + t] = v;
                sum += v;
            }
            w[S * B + t] = 1.0f - sum;
        }
    selection_forward(out, W, SELECT_RANDOM, 0.1f, NULL, NULL, b, S, B);
    selection_forward(again, W, SELECT_RANDOM, 0.1f, NULL, NULL, b, S, B);
    assert_memory_equal(out, again, sizeof out);
    int distinct_cols = 0, seen[B] = {0};
    for (int r = 0; r < b; r++) {
        const float *o = out + (size_t)r * (S + 1) * B;
        int picks = 0;
        for (int t = 0; t < B; t++) {
            float col = 0;
            for (int s = 0; s <= S; s++) col += o[s * B + t];
            assert_true(col == 1.0f);                  /* every column one-hot */
            for (int s = 0; s < S; s++)
                if (o[s * B + t] == 1.0f) {
                    picks++;
                    assert_true(t != 0 && s != 4);     /* only visible positions */
                    if (!seen[t]++) distinct_cols++;
                }
        }
        assert_int_equal(picks, 1);
    }
    assert_true(distinct_cols >= 3);                   /* the draw depends on W */
}

static void selection_modes_match_reference(void **state)
{
    (void)state;
    StFile f;
    const char *path = "tests/fixtures/hyperdas/hard_modes.safetensors";
    if (st_open(&f, path) != 0) {
        st_close(&f);
        skip();
    }
    const StTensor *tw = st_find(&f, "W");
    assert_non_null(tw);
    assert_int_equal(tw->ndim, 3);
    const int b = (int)tw->shape[0], S = (int)tw->shape[1] - 1, B = (int)tw->shape[2];
    float *W = malloc(tw->numel * sizeof *W), *want = malloc(tw->numel * sizeof *W);
    float *out = malloc(tw->numel * sizeof *W);
    st_tensor_to_f32(tw, W);
    int bp[16], sp[16];
    float tmp[16];
    st_tensor_to_f32(st_find(&f, "base_entity_pos"), tmp);
    for (int r = 0; r < b; r++) bp[r] = (int)tmp[r];
    st_tensor_to_f32(st_find(&f, "src_entity_pos"), tmp);
    for (int r = 0; r < b; r++) sp[r] = (int)tmp[r];
    const char *names[4] = {"column_argmax", "bidding_argmax", "global_argmax", "groundtruth"};
    const SelectionMode modes[4] = {SELECT_COLUMN_ARGMAX, SELECT_BIDDING_ARGMAX,
                                    SELECT_GLOBAL_ARGMAX, SELECT_GROUNDTRUTH};
    for (int m = 0; m < 4; m++) {
        const StTensor *t = st_find(&f, names[m]);
        assert_non_null(t);
        st_tensor_to_f32(t, want);
        selection_forward(out, W, modes[m], 0.1f, sp, bp, b, S, B);
        print_message("# hard mode %s vs reference: %s\n", names[m],
                      memcmp(out, want, tw->numel * sizeof *out) ? "DIFFERS" : "identical");
        assert_memory_equal(out, want, tw->numel * sizeof *out);
    }
    free(W), free(want), free(out);
    st_close(&f);
}

/* ---- AdamW and clipping ---- */

static void adamw_matches_fp64_reference(void **state)
{
    (void)state;
    const size_t n = 40;
    float *p = rand_vec(n, 1), *m = zeros(n), *v = zeros(n);
    double *pr = to_f64(p, n), *mr = calloc(n, sizeof *mr), *vr = calloc(n, sizeof *vr);
    /* two groups: [0, 25) lr 1e-2 wd 0.1, [25, 40) lr 1e-1 wd 0 */
    AdamWSpan spans[2] = {{0, 25, 1e-2f, 0.1f, 0}, {25, 15, 1e-1f, 0.0f, 0}};
    AdamWConfig cfg = adamw_default_config();
    for (int step = 1; step <= 3; step++) {
        float *g = rand_vec(n, step == 2 ? 1e-3f : 1.0f);
        adamw_step(p, g, 1.0f, m, v, spans, 2, &cfg, step);
        for (size_t i = 0; i < n; i++) {
            double lr = i < 25 ? 1e-2 : 1e-1, wd = i < 25 ? 0.1 : 0.0;
            pr[i] *= 1 - lr * wd;
            mr[i] = 0.9 * mr[i] + 0.1 * g[i];
            vr[i] = 0.999 * vr[i] + 0.001 * (double)g[i] * g[i];
            double denom = sqrt(vr[i]) / sqrt(1 - pow(0.999, step)) + 1e-8;
            pr[i] -= lr / (1 - pow(0.9, step)) * mr[i] / denom;
        }
        free(g);
    }
    expect_close("adamw params after 3 steps", p, pr, n, 1e-6);
    free(p), free(m), free(v), free(pr), free(mr), free(vr);
}

/* A decay_only span (zero g, m, v) gives the bits of the full rule, on the
 * threaded path too (n > 65536), and reads and writes neither g nor m nor
 * v (here NaN: read, they would make p NaN). */
static void adamw_decay_only_is_the_full_rule(void **state)
{
    (void)state;
    const size_t n = 70001;
    float *p1 = rand_vec(n, 3), *p2 = malloc(n * sizeof *p2), *p0 = malloc(n * sizeof *p0);
    float *g = zeros(n), *m = zeros(n), *v = zeros(n), *nan3 = malloc(3 * n * sizeof *nan3);
    p1[0] = -0.0f, p1[1] = 0.0f, p1[2] = 1e-40f; /* signed zeros, a subnormal */
    memcpy(p2, p1, n * sizeof *p2);
    memcpy(p0, p1, n * sizeof *p0);
    for (size_t i = 0; i < 3 * n; i++) nan3[i] = NAN;
    AdamWConfig cfg = adamw_default_config();
    for (int step = 1; step <= 3; step++) {
        AdamWSpan full = {0, n, 3e-3f * (float)step, 0.01f, 0}, decay = full;
        decay.decay_only = 1;
        adamw_step(p1, g, 0.25f, m, v, &full, 1, &cfg, step);
        adamw_step(p2, nan3, 0.25f, nan3 + n, nan3 + 2 * n, &decay, 1, &cfg, step);
        assert_memory_equal(p1, p2, n * sizeof *p1);
    }
    for (size_t i = 0; i < n; i++) assert_true(m[i] == 0.0f && v[i] == 0.0f);
    for (size_t i = 0; i < 3 * n; i++) assert_true(isnan(nan3[i]));
    assert_true(p1[5] != p0[5]); /* the decay did change the values */
    free(p0), free(p1), free(p2), free(g), free(m), free(v), free(nan3);
}

static void grad_clip_coef_is_torchs(void **state)
{
    (void)state;
    float g[4] = {3, 0, 4, 0};
    assert_float_equal(grad_norm(g, 4), 5.0, 1e-12);
    assert_true(grad_clip_coef(5.0, 10.0) == 1.0f); /* below the limit: no scaling */
    assert_true(grad_clip_coef(5.0, 1.0) == (float)(1.0 / (5.0 + 1e-6)));
    assert_true(grad_clip_coef(4.0, 4.0) == (float)(4.0 / (4.0 + 1e-6)));   /* just below 1 */
}

/* AdamW with grad_scale c gives bit for bit what clipping the gradients in
 * place (g *= c) and then stepping with scale 1 gives. */
static void adamw_grad_scale_equals_clipping_first(void **state)
{
    (void)state;
    const size_t n = 1000;
    float *p1 = rand_vec(n, 1), *p2 = malloc(n * sizeof *p2), *g = rand_vec(n, 30);
    float *gc = malloc(n * sizeof *gc);
    float *m1 = zeros(n), *v1 = zeros(n), *m2 = zeros(n), *v2 = zeros(n);
    memcpy(p2, p1, n * sizeof *p1);
    AdamWSpan span = {0, n, 3e-3f, 0.01f, 0};
    AdamWConfig cfg = adamw_default_config();
    for (int step = 1; step <= 3; step++) {
        float c = grad_clip_coef(grad_norm(g, n), 4.0);
        assert_true(c < 1.0f);
        for (size_t i = 0; i < n; i++) gc[i] = g[i] * c;
        adamw_step(p1, g, c, m1, v1, &span, 1, &cfg, step);
        adamw_step(p2, gc, 1.0f, m2, v2, &span, 1, &cfg, step);
    }
    assert_memory_equal(p1, p2, n * sizeof *p1);
    assert_memory_equal(m1, m2, n * sizeof *m1);
    assert_memory_equal(v1, v2, n * sizeof *v1);
    free(p1), free(p2), free(g), free(gc), free(m1), free(v1), free(m2), free(v2);
}

/* Moments that stay zero (zero gradient, zero moments) are never written:
 * they live here in read-only pages, so a store would end the test with
 * SIGSEGV.  The parameters still get their weight decay. */
static void adamw_never_writes_moments_that_stay_zero(void **state)
{
    (void)state;
    const size_t n = 4096, bytes = n * sizeof(float);
    float *ro = mmap(NULL, 2 * bytes, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    assert_true(ro != MAP_FAILED);
    float *p = rand_vec(n, 1), *p0 = malloc(bytes), *g = zeros(n);
    memcpy(p0, p, bytes);
    AdamWSpan span = {0, n, 1e-2f, 0.1f, 0};
    AdamWConfig cfg = adamw_default_config();
    adamw_step(p, g, 0.5f, ro, ro + n, &span, 1, &cfg, 1);
    for (size_t i = 0; i < n; i++) assert_true(p[i] == p0[i] * (float)(1.0 - 1e-2 * 0.1));
    munmap(ro, 2 * bytes);
    free(p), free(p0), free(g);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(cross_attention_matches_fp64_and_fd),
        cmocka_unit_test(position_head_matches_fp64_and_fd),
        cmocka_unit_test(householder_matches_fp64_and_fd),
        cmocka_unit_test(reflect_matches_fp64_and_fd),
        cmocka_unit_test(intervention_matches_fp64_and_fd),
        cmocka_unit_test(intervention_self_column_is_identity),
        cmocka_unit_test(sparsity_loss_matches_formula_and_fd),
        cmocka_unit_test(sparsity_schedule_matches_torch_linspace),
        cmocka_unit_test(selection_modes_by_hand),
        cmocka_unit_test(selection_modes_match_reference),
        cmocka_unit_test(selection_random_control),
        cmocka_unit_test(adamw_matches_fp64_reference),
        cmocka_unit_test(adamw_decay_only_is_the_full_rule),
        cmocka_unit_test(grad_clip_coef_is_torchs),
        cmocka_unit_test(adamw_grad_scale_equals_clipping_first),
        cmocka_unit_test(adamw_never_writes_moments_that_stay_zero),
    };
    return cmocka_run_group_tests_name("hypernet_ops", tests, NULL, NULL);
}
