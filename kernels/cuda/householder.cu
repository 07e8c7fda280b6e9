/* The Householder ops on the GPU (kernels/cpu/householder.c; the
 * mathematics is in kernels/cpu/householder.h).
 *
 * The orthogonal parametrisation R = base @ Q(X) runs once per training
 * step, on tensors of d x k (Llama-3-8B: 4096 x 128): its chain of k
 * reflectors is sequential and runs in double.  Its _cuda twins copy X
 * (and base, dR) to the host, call the CPU twins, and copy the result back,
 * so they are the CPU's bit for bit; the cost is two copies of d*k floats
 * (2 MB) and base @ Q on the host once per step.  A device version is left
 * for when profiles on a GPU say it matters.
 *
 * ReflectSelect's reflection R' = R - 2 v (v^T R) is per example and per
 * step, on b x d x k values: device kernels.  Every product and sum is an
 * explicitly rounded intrinsic and the sums run in the CPU's order, so the
 * results are the CPU's bit for bit as well. */
#include <math.h>
#include <stdlib.h>

#include "cuda/cuda_hypernet_ops.h"

extern "C" {
#include "cpu/householder.h"
#include "kernel_error.h"
}

/* ---- the orthogonal parametrisation, through the host ---- */

static float *host_copy(const float *dev, size_t n)
{
    float *h = (float *)malloc((n ? n : 1) * sizeof *h);
    if (!h) {
        hd_fail("householder: out of host memory");
        return NULL;
    }
    if (hd_cuda_download(h, dev, n * sizeof *h)) {
        free(h);
        return NULL;
    }
    return h;
}

extern "C" int householder_orthogonal_forward_cuda(float *R, const float *X, const float *base,
                                                   int d, int k)
{
    const size_t n = (size_t)d * k;
    float *x = host_copy(X, n), *b = base ? host_copy(base, (size_t)d * d) : NULL;
    float *r = (float *)malloc(n * sizeof *r);
    int rc = -1;
    if (x && (b || !base) && r) {
        householder_orthogonal_forward(r, x, b, d, k);
        rc = hd_cuda_upload(R, r, n * sizeof *r);
    } else if (!r) {
        hd_fail("householder: out of host memory");
    }
    free(x), free(b), free(r);
    return rc;
}

extern "C" int householder_orthogonal_backward_cuda(float *dX, const float *dR, const float *X,
                                                    const float *base, int d, int k)
{
    const size_t n = (size_t)d * k;
    float *x = host_copy(X, n), *g = host_copy(dR, n), *dx = host_copy(dX, n);
    float *b = base ? host_copy(base, (size_t)d * d) : NULL;
    int rc = -1;
    if (x && g && dx && (b || !base)) {
        householder_orthogonal_backward(dx, g, x, b, d, k); /* adds into dx */
        rc = hd_cuda_upload(dX, dx, n * sizeof *dx);
    }
    free(x), free(g), free(dx), free(b);
    return rc;
}

/* ---- ReflectSelect's reflection ---- */

/* one thread per row: |u| in double, v = u / |u| */
__global__ void reflect_normalise_kernel(float *v, float *unorm, const float *u, int b, int d)
{
    const int r = blockIdx.x * blockDim.x + threadIdx.x;
    if (r >= b) return;
    const float *ur = u + (size_t)r * d;
    double ss = 0.0;
    for (int i = 0; i < d; i++) ss = __dadd_rn(ss, __dmul_rn((double)ur[i], (double)ur[i]));
    const float n = (float)sqrt(ss);
    unorm[r] = n;
    for (int i = 0; i < d; i++) v[(size_t)r * d + i] = __fdiv_rn(ur[i], n);
}

/* out[r,c] = sum_i M_r[i,c] v[r,i], i ascending (M_r = M + r * M_stride) */
__global__ void reflect_vt_kernel(float *out, const float *M, size_t M_stride, const float *v,
                                  int b, int d, int k)
{
    const size_t n = (size_t)b * k;
    for (size_t j = blockIdx.x * (size_t)blockDim.x + threadIdx.x; j < n;
         j += (size_t)gridDim.x * blockDim.x) {
        const size_t r = j / k, c = j % k;
        const float *Mr = M + r * M_stride, *vr = v + r * d;
        float acc = 0.0f;
        for (int i = 0; i < d; i++) acc = __fadd_rn(acc, __fmul_rn(Mr[(size_t)i * k + c], vr[i]));
        out[j] = acc;
    }
}

/* Rp[r,i,c] = R[i,c] - (2 v[r,i]) w[r,c] */
__global__ void reflect_apply_kernel(float *Rp, const float *R, const float *v, const float *w,
                                     int b, int d, int k)
{
    const size_t n = (size_t)b * d * k;
    for (size_t j = blockIdx.x * (size_t)blockDim.x + threadIdx.x; j < n;
         j += (size_t)gridDim.x * blockDim.x) {
        const size_t r = j / ((size_t)d * k), i = j / k % d, c = j % k;
        const float x = __fmul_rn(2.0f, v[r * d + i]);
        Rp[j] = __fsub_rn(R[i * k + c], __fmul_rn(x, w[r * k + c]));
    }
}

extern "C" int reflect_forward_cuda(float *Rp, float *v, float *unorm, const float *u,
                                    const float *R, int b, int d, int k)
{
    if (b <= 0) return 0;
    float *w = (float *)hd_cuda_scratch(0, (size_t)b * k * sizeof *w);
    if (!w) return -1;
    reflect_normalise_kernel<<<(b + 31) / 32, 32>>>(v, unorm, u, b, d);
    if (hd_cuda_launched("reflect_forward_cuda (normalise)")) return -1;
    reflect_vt_kernel<<<hd_cuda_grid_for((size_t)b * k, 128), 128>>>(w, R, 0, v, b, d, k);
    if (hd_cuda_launched("reflect_forward_cuda (R^T v)")) return -1;
    reflect_apply_kernel<<<hd_cuda_grid_for((size_t)b * d * k, 256), 256>>>(Rp, R, v, w, b, d, k);
    return hd_cuda_launched("reflect_forward_cuda");
}

/* dv[r,i] = -2 sum_c (g[r,i,c] w[r,c] + R[i,c] z[r,c]), c ascending */
__global__ void reflect_dv_kernel(float *dv, const float *dRp, const float *R, const float *w,
                                  const float *z, int b, int d, int k)
{
    const size_t n = (size_t)b * d;
    for (size_t j = blockIdx.x * (size_t)blockDim.x + threadIdx.x; j < n;
         j += (size_t)gridDim.x * blockDim.x) {
        const size_t r = j / d, i = j % d;
        const float *g = dRp + j * k, *Ri = R + i * k, *wr = w + r * k, *zr = z + r * k;
        float s = 0.0f;
        for (int c = 0; c < k; c++)
            s = __fadd_rn(s, __fadd_rn(__fmul_rn(g[c], wr[c]), __fmul_rn(Ri[c], zr[c])));
        dv[j] = __fmul_rn(-2.0f, s);
    }
}

/* one thread per row: vdv = v . dv in double, then du += (dv - v vdv) / |u| */
__global__ void reflect_du_kernel(float *du, const float *dv, const float *v, const float *unorm,
                                  int b, int d)
{
    const int r = blockIdx.x * blockDim.x + threadIdx.x;
    if (r >= b) return;
    const float *vr = v + (size_t)r * d, *dvr = dv + (size_t)r * d;
    double vdv = 0.0;
    for (int i = 0; i < d; i++) vdv = __dadd_rn(vdv, __dmul_rn((double)vr[i], (double)dvr[i]));
    const float f = (float)vdv;
    float *dur = du + (size_t)r * d;
    for (int i = 0; i < d; i++)
        dur[i] = __fadd_rn(dur[i], __fdiv_rn(__fsub_rn(dvr[i], __fmul_rn(vr[i], f)), unorm[r]));
}

/* dR[i,c] += sum_r (g[r,i,c] - (2 v[r,i]) z[r,c]), r ascending */
__global__ void reflect_dR_kernel(float *dR, const float *dRp, const float *v, const float *z,
                                  int b, int d, int k)
{
    const size_t n = (size_t)d * k;
    for (size_t j = blockIdx.x * (size_t)blockDim.x + threadIdx.x; j < n;
         j += (size_t)gridDim.x * blockDim.x) {
        const size_t i = j / k, c = j % k;
        float acc = dR[j];
        for (int r = 0; r < b; r++) {
            const float x = __fmul_rn(2.0f, v[(size_t)r * d + i]);
            acc = __fadd_rn(acc, __fsub_rn(dRp[((size_t)r * d + i) * k + c],
                                           __fmul_rn(x, z[(size_t)r * k + c])));
        }
        dR[j] = acc;
    }
}

extern "C" int reflect_backward_cuda(float *du, float *dR, const float *dRp, const float *v,
                                     const float *unorm, const float *R, int b, int d, int k)
{
    if (b <= 0 || (!du && !dR)) return 0;
    const char *who = "reflect_backward_cuda";
    float *zw = (float *)hd_cuda_scratch(0, (size_t)2 * b * k * sizeof *zw);
    if (!zw) return -1;
    float *z = zw, *w = zw + (size_t)b * k;
    reflect_vt_kernel<<<hd_cuda_grid_for((size_t)b * k, 128), 128>>>(z, dRp, (size_t)d * k, v, b,
                                                                     d, k);
    if (hd_cuda_launched(who)) return -1;
    if (du) {
        float *dv = (float *)hd_cuda_scratch(1, (size_t)b * d * sizeof *dv);
        if (!dv) return -1;
        reflect_vt_kernel<<<hd_cuda_grid_for((size_t)b * k, 128), 128>>>(w, R, 0, v, b, d, k);
        if (hd_cuda_launched(who)) return -1;
        reflect_dv_kernel<<<hd_cuda_grid_for((size_t)b * d, 128), 128>>>(dv, dRp, R, w, z, b, d,
                                                                         k);
        if (hd_cuda_launched(who)) return -1;
        reflect_du_kernel<<<(b + 31) / 32, 32>>>(du, dv, v, unorm, b, d);
        if (hd_cuda_launched(who)) return -1;
    }
    if (dR) {
        reflect_dR_kernel<<<hd_cuda_grid_for((size_t)d * k, 256), 256>>>(dR, dRp, v, z, b, d, k);
        if (hd_cuda_launched(who)) return -1;
    }
    return 0;
}
