/* The HyperDAS intervention on the GPU (kernels/cpu/intervention.c; the
 * formulas are in kernels/cpu/intervention.h):
 *
 *   diff = W[:S]^T Ys + (W[S,t] - 1) xb      proj = diff R      out = xb + (m . proj) R^T
 *
 * The CPU runs each product as an sgemm per batch row; here every output
 * element is one thread's dot product over the summed index.  B, S are
 * tens and k is 128: the largest product (Llama-3-8B, b 16, B 64, d 4096)
 * is half a GFLOP, so plain loops cost a fraction of a millisecond and
 * leave nothing to get wrong.  Temporaries: scratch slot 0 holds
 * g = dout R and its masked forms [b, B, k]; slot 1 holds ddiff [b, B, d]. */
#include "cuda/cuda_hypernet_ops.h"

/* diff[r,t,i] = (W[r,S,t] - 1) xb[r,t,i] + sum_s W[r,s,t] Ys[r,s,i] */
__global__ void mix_kernel(float *diff, const float *xb, const float *Ys, const float *W, int b,
                           int S, int B, int d)
{
    const size_t n = (size_t)b * B * d, P = (size_t)(S + 1) * B;
    for (size_t j = blockIdx.x * (size_t)blockDim.x + threadIdx.x; j < n;
         j += (size_t)gridDim.x * blockDim.x) {
        const size_t r = j / ((size_t)B * d), t = j / d % B, i = j % d;
        const float *w = W + r * P;
        float acc = (w[(size_t)S * B + t] - 1.0f) * xb[j];
        for (int s = 0; s < S; s++) acc += w[(size_t)s * B + t] * Ys[(r * S + s) * d + i];
        diff[j] = acc;
    }
}

/* out[r,t,c] = sum_i x[r,t,i] R_r[i,c]  (x [b, B, d], out [b, B, k]) */
__global__ void times_R_kernel(float *out, const float *x, const float *R, size_t R_stride,
                               int b, int B, int d, int k)
{
    const size_t n = (size_t)b * B * k;
    for (size_t j = blockIdx.x * (size_t)blockDim.x + threadIdx.x; j < n;
         j += (size_t)gridDim.x * blockDim.x) {
        const size_t r = j / ((size_t)B * k), t = j / k % B, c = j % k;
        const float *Rr = R + r * R_stride, *xr = x + (r * B + t) * d;
        float acc = 0.0f;
        for (int i = 0; i < d; i++) acc += xr[i] * Rr[(size_t)i * k + c];
        out[j] = acc;
    }
}

/* out[r,t,i] = base[r,t,i] + sum_c (mask? y[r,t,c] m[r,c] : y[r,t,c]) R_r[i,c];
 * base NULL: no base term */
__global__ void times_Rt_kernel(float *out, const float *base, const float *y, const float *R,
                                size_t R_stride, const float *mask, int b, int B, int d, int k)
{
    const size_t n = (size_t)b * B * d;
    for (size_t j = blockIdx.x * (size_t)blockDim.x + threadIdx.x; j < n;
         j += (size_t)gridDim.x * blockDim.x) {
        const size_t r = j / ((size_t)B * d), t = j / d % B, i = j % d;
        const float *Rr = R + r * R_stride + (size_t)i * k, *yr = y + (r * B + t) * k;
        const float *m = mask ? mask + r * k : NULL;
        float acc = 0.0f;
        for (int c = 0; c < k; c++) acc += (m ? yr[c] * m[c] : yr[c]) * Rr[c];
        out[j] = (base ? base[j] : 0.0f) + acc;
    }
}

__global__ void add_kernel(float *out, const float *a, const float *b, size_t n)
{
    for (size_t j = blockIdx.x * (size_t)blockDim.x + threadIdx.x; j < n;
         j += (size_t)gridDim.x * blockDim.x) out[j] = a[j] + b[j];
}

extern "C" int intervention_forward_cuda(float *out, float *diff, float *proj, const float *xb,
                                         const float *Ys, const float *W, const float *R,
                                         size_t R_stride, const float *mask, int b, int S, int B,
                                         int d, int k)
{
    const size_t nd = (size_t)b * B * d, nk = (size_t)b * B * k;
    if (nd == 0) return 0;
    mix_kernel<<<hd_cuda_grid_for(nd, 256), 256>>>(diff, xb, Ys, W, b, S, B, d);
    if (hd_cuda_launched("intervention_forward_cuda (mix)")) return -1;
    if (!R) { /* the whole vector patched: out = xb + diff */
        add_kernel<<<hd_cuda_grid_for(nd, 256), 256>>>(out, xb, diff, nd);
        return hd_cuda_launched("intervention_forward_cuda (patch)");
    }
    times_R_kernel<<<hd_cuda_grid_for(nk, 256), 256>>>(proj, diff, R, R_stride, b, B, d, k);
    if (hd_cuda_launched("intervention_forward_cuda (proj)")) return -1;
    times_Rt_kernel<<<hd_cuda_grid_for(nd, 256), 256>>>(out, xb, proj, R, R_stride, mask, b, B, d,
                                                        k);
    return hd_cuda_launched("intervention_forward_cuda (out)");
}

/* dmask[r,c] += sum_t g[r,t,c] proj[r,t,c] */
__global__ void dmask_kernel(float *dmask, const float *g, const float *proj, int b, int B, int k)
{
    const size_t n = (size_t)b * k;
    for (size_t j = blockIdx.x * (size_t)blockDim.x + threadIdx.x; j < n;
         j += (size_t)gridDim.x * blockDim.x) {
        const size_t r = j / k, c = j % k;
        float acc = 0.0f;
        for (int t = 0; t < B; t++) acc += g[(r * B + t) * k + c] * proj[(r * B + t) * k + c];
        dmask[j] += acc;
    }
}

/* dR_r[i,c] += sum_t diff[r,t,i] (m.g)[r,t,c] + dout[r,t,i] (m.proj)[r,t,c];
 * with R_stride 0 one dR [d, k] takes the sum over all rows r */
__global__ void dR_kernel(float *dR, const float *diff, const float *g, const float *dout,
                          const float *proj, const float *mask, size_t R_stride, int b, int B,
                          int d, int k)
{
    const int n_mats = R_stride ? b : 1;
    const size_t n = (size_t)n_mats * d * k;
    for (size_t j = blockIdx.x * (size_t)blockDim.x + threadIdx.x; j < n;
         j += (size_t)gridDim.x * blockDim.x) {
        const size_t mat = j / ((size_t)d * k), i = j / k % d, c = j % k;
        const int r0 = R_stride ? (int)mat : 0, r1 = R_stride ? (int)mat + 1 : b;
        float acc = 0.0f;
        for (int r = r0; r < r1; r++) {
            const float m = mask ? mask[(size_t)r * k + c] : 1.0f;
            for (int t = 0; t < B; t++) {
                const size_t row = (size_t)r * B + t;
                acc += diff[row * d + i] * (g[row * k + c] * m) + dout[row * d + i] * (proj[row * k + c] * m);
            }
        }
        dR[mat * R_stride + i * k + c] += acc;
    }
}

/* dW[r,s,t] += Ys[r,s] . ddiff[r,t] (s < S); dW[r,S,t] += ddiff[r,t] . xb[r,t] */
__global__ void dW_kernel(float *dW, const float *ddiff, const float *Ys, const float *xb, int b,
                          int S, int B, int d)
{
    const size_t P = (size_t)(S + 1) * B, n = (size_t)b * P;
    for (size_t j = blockIdx.x * (size_t)blockDim.x + threadIdx.x; j < n;
         j += (size_t)gridDim.x * blockDim.x) {
        const size_t r = j / P, s = j % P / B, t = j % B;
        const float *dd = ddiff + (r * B + t) * d;
        const float *other = s < (size_t)S ? Ys + (r * S + s) * d : xb + (r * B + t) * d;
        float acc = 0.0f;
        for (int i = 0; i < d; i++) acc += other[i] * dd[i];
        dW[j] += acc;
    }
}

/* dxb[r,t,i] += dout + (W[r,S,t] - 1) ddiff */
__global__ void dxb_kernel(float *dxb, const float *dout, const float *ddiff, const float *W,
                           int b, int S, int B, int d)
{
    const size_t n = (size_t)b * B * d, P = (size_t)(S + 1) * B;
    for (size_t j = blockIdx.x * (size_t)blockDim.x + threadIdx.x; j < n;
         j += (size_t)gridDim.x * blockDim.x) {
        const size_t r = j / ((size_t)B * d), t = j / d % B;
        dxb[j] += dout[j] + (W[r * P + (size_t)S * B + t] - 1.0f) * ddiff[j];
    }
}

extern "C" int intervention_backward_cuda(float *dW, float *dR, float *dmask, float *dxb,
                                          const float *dout, const float *diff, const float *proj,
                                          const float *xb, const float *Ys, const float *W,
                                          const float *R, size_t R_stride, const float *mask,
                                          int b, int S, int B, int d, int k)
{
    const size_t nd = (size_t)b * B * d, nk = (size_t)b * B * k;
    if (nd == 0) return 0;
    const char *who = "intervention_backward_cuda";
    const float *ddiff = dout; /* without R: dL/d diff = dout */
    if (R) {
        float *g = (float *)hd_cuda_scratch(0, nk * sizeof(float));
        float *dd = (float *)hd_cuda_scratch(1, nd * sizeof(float));
        if (!g || !dd) return -1;
        times_R_kernel<<<hd_cuda_grid_for(nk, 256), 256>>>(g, dout, R, R_stride, b, B, d, k);
        if (hd_cuda_launched(who)) return -1;
        if (dmask && mask) {
            dmask_kernel<<<hd_cuda_grid_for((size_t)b * k, 256), 256>>>(dmask, g, proj, b, B, k);
            if (hd_cuda_launched(who)) return -1;
        }
        /* ddiff = (m . g) R^T */
        times_Rt_kernel<<<hd_cuda_grid_for(nd, 256), 256>>>(dd, NULL, g, R, R_stride, mask, b, B,
                                                            d, k);
        if (hd_cuda_launched(who)) return -1;
        if (dR) {
            const size_t n = (size_t)(R_stride ? b : 1) * d * k;
            dR_kernel<<<hd_cuda_grid_for(n, 256), 256>>>(dR, diff, g, dout, proj, mask, R_stride, b,
                                                         B, d, k);
            if (hd_cuda_launched(who)) return -1;
        }
        ddiff = dd;
    }
    if (dW) {
        const size_t n = (size_t)b * (S + 1) * B;
        dW_kernel<<<hd_cuda_grid_for(n, 256), 256>>>(dW, ddiff, Ys, xb, b, S, B, d);
        if (hd_cuda_launched(who)) return -1;
    }
    if (dxb) {
        dxb_kernel<<<hd_cuda_grid_for(nd, 256), 256>>>(dxb, dout, ddiff, W, b, S, B, d);
        if (hd_cuda_launched(who)) return -1;
    }
    return 0;
}
