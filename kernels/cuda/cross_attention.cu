/* Cross-attention on the GPU (kernels/cpu/cross_attention.c; layouts and
 * masking rules in kernels/cpu/cross_attention.h): a few instruction
 * tokens (queries) attend over long key sequences (every layer's state of
 * every base or source token), not causal, with a query mask and a key
 * mask.  One block per (query, head, batch row) computes the scores (a warp
 * per key), the softmax and the output; the backward first makes each
 * query's ds row and dq the same way, then one block per (key, kv head,
 * batch row) sums dk and dv over the queries of its heads, so no two
 * threads ever add to the same value (no atomics: the same bits every run). */
#include <math.h>

#include "cuda/cuda_hypernet_ops.h"
#include "cuda/reduce.cuh"

extern "C" {
#include "kernel_error.h"
}

enum { XATT_WARPS = 4, XATT_THREADS = XATT_WARPS * 32, XATT_MAX_HD = 256 };

struct XAttShape {
    int b, Tq, Tk, H, Hkv, hd;
    float div; /* sqrt(head_dim), in double first, as the CPU twin */
};

__device__ inline size_t xq_offset(const XAttShape &s, int r, int i, int h)
{
    return ((size_t)r * s.Tq + i) * s.H * s.hd + (size_t)h * s.hd;
}
__device__ inline size_t xkv_offset(const XAttShape &s, int r, int j, int kvh)
{
    return ((size_t)r * s.Tk + j) * s.Hkv * s.hd + (size_t)kvh * s.hd;
}
__device__ inline size_t xatt_offset(const XAttShape &s, int r, int h, int i)
{
    return (((size_t)r * s.H + h) * s.Tq + i) * s.Tk;
}

__global__ void __launch_bounds__(XATT_THREADS)
cross_attention_forward_kernel(float *out, float *att, const float *q, const float *k,
                               const float *v, const int *q_mask, const int *k_mask, XAttShape s)
{
    __shared__ float qs[XATT_MAX_HD];
    __shared__ float red[32];
    const int i = blockIdx.x, h = blockIdx.y, r = blockIdx.z;
    const int kvh = h / (s.H / s.Hkv);
    const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
    const size_t kv_row = (size_t)s.Hkv * s.hd;
    const float *kb = k + xkv_offset(s, r, 0, kvh), *vb = v + xkv_offset(s, r, 0, kvh);
    const int *m = k_mask ? k_mask + (size_t)r * s.Tk : nullptr;
    float *p = att + xatt_offset(s, r, h, i);
    float *o = out + xq_offset(s, r, i, h);

    if (q_mask && !q_mask[(size_t)r * s.Tq + i]) { /* a padded query: zeros */
        for (int j = threadIdx.x; j < s.Tk; j += blockDim.x) p[j] = 0.0f;
        for (int d = threadIdx.x; d < s.hd; d += blockDim.x) o[d] = 0.0f;
        return;
    }
    const float *qi = q + xq_offset(s, r, i, h);
    for (int d = threadIdx.x; d < s.hd; d += blockDim.x) qs[d] = qi[d];
    __syncthreads();

    float mx = -INFINITY;
    for (int j = warp; j < s.Tk; j += XATT_WARPS) {
        if (m && !m[j]) {
            if (lane == 0) p[j] = -INFINITY;
            continue;
        }
        const float *kj = kb + (size_t)j * kv_row;
        float dot = 0.0f;
        for (int d = lane; d < s.hd; d += 32) dot += qs[d] * kj[d];
        const float score = warp_sum(dot) / s.div;
        if (lane == 0) p[j] = score;
        mx = fmaxf(mx, score);
    }
    mx = block_max(mx, red); /* its barrier also publishes the scores */
    if (mx == -INFINITY) { /* no visible key: zeros, never NaN */
        for (int j = threadIdx.x; j < s.Tk; j += blockDim.x) p[j] = 0.0f;
        for (int d = threadIdx.x; d < s.hd; d += blockDim.x) o[d] = 0.0f;
        return;
    }
    float sum = 0.0f;
    for (int j = threadIdx.x; j < s.Tk; j += blockDim.x) {
        const float e = expf(p[j] - mx); /* masked: expf(-inf) = 0 */
        p[j] = e;
        sum += e;
    }
    sum = block_sum(sum, red);
    const float inv = 1.0f / sum;
    for (int j = threadIdx.x; j < s.Tk; j += blockDim.x) p[j] *= inv;
    __syncthreads();
    for (int d = threadIdx.x; d < s.hd; d += blockDim.x) {
        float acc = 0.0f;
        for (int j = 0; j < s.Tk; j++) {
            const float pj = p[j];
            if (pj != 0.0f) acc += pj * vb[(size_t)j * kv_row + d];
        }
        o[d] = acc;
    }
}

/* Per query: its ds row (scratch, att's layout) and dq. */
__global__ void __launch_bounds__(XATT_THREADS)
cross_attention_backward_query_kernel(float *dq, float *ds_all, const float *dout,
                                      const float *att, const float *k, const float *v,
                                      XAttShape s)
{
    __shared__ float gs[XATT_MAX_HD];
    __shared__ float red[32];
    const int i = blockIdx.x, h = blockIdx.y, r = blockIdx.z;
    const int kvh = h / (s.H / s.Hkv);
    const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
    const size_t kv_row = (size_t)s.Hkv * s.hd;
    const float *go = dout + xq_offset(s, r, i, h);
    const float *kb = k + xkv_offset(s, r, 0, kvh), *vb = v + xkv_offset(s, r, 0, kvh);
    const float *p = att + xatt_offset(s, r, h, i);
    float *ds = ds_all + xatt_offset(s, r, h, i);

    for (int d = threadIdx.x; d < s.hd; d += blockDim.x) gs[d] = go[d];
    __syncthreads();
    /* dp_j = dout_i . v_j, parked in ds[j] */
    float pdp = 0.0f;
    for (int j = warp; j < s.Tk; j += XATT_WARPS) {
        const float pj = p[j];
        if (pj == 0.0f) continue;
        const float *vj = vb + (size_t)j * kv_row;
        float dot = 0.0f;
        for (int d = lane; d < s.hd; d += 32) dot += gs[d] * vj[d];
        const float dp = warp_sum(dot);
        if (lane == 0) {
            ds[j] = dp;
            pdp += pj * dp;
        }
    }
    pdp = block_sum(pdp, red);
    for (int j = threadIdx.x; j < s.Tk; j += blockDim.x) {
        const float pj = p[j];
        ds[j] = pj != 0.0f ? pj * (ds[j] - pdp) / s.div : 0.0f;
    }
    __syncthreads();
    if (!dq) return;
    float *dqi = dq + xq_offset(s, r, i, h);
    for (int d = threadIdx.x; d < s.hd; d += blockDim.x) {
        float acc = 0.0f;
        for (int j = 0; j < s.Tk; j++) {
            const float dsj = ds[j];
            if (dsj != 0.0f) acc += dsj * kb[(size_t)j * kv_row + d];
        }
        dqi[d] += acc;
    }
}

/* Per key (j, kv head, row): dv_j and dk_j over every query of the group's
 * heads.  One thread per dimension. */
__global__ void cross_attention_backward_key_kernel(float *dk, float *dv, const float *ds_all,
                                                    const float *dout, const float *att,
                                                    const float *q, XAttShape s)
{
    const int j = blockIdx.x, kvh = blockIdx.y, r = blockIdx.z;
    const int group = s.H / s.Hkv;
    for (int d = threadIdx.x; d < s.hd; d += blockDim.x) {
        float acc_v = 0.0f, acc_k = 0.0f;
        for (int h = kvh * group; h < (kvh + 1) * group; h++)
            for (int i = 0; i < s.Tq; i++) {
                const size_t a = xatt_offset(s, r, h, i) + j;
                const float pij = att[a];
                if (pij == 0.0f) continue;
                const size_t qo = xq_offset(s, r, i, h);
                acc_v += pij * dout[qo + d];
                if (dk) acc_k += ds_all[a] * q[qo + d];
            }
        const size_t ko = xkv_offset(s, r, j, kvh);
        if (dv) dv[ko + d] += acc_v;
        if (dk) dk[ko + d] += acc_k;
    }
}

static int check_shape(const char *who, int b, int Tq, int Tk, int H, int Hkv, int hd,
                       XAttShape *s)
{
    if (b < 0 || Tq < 0 || Tk < 0 || H <= 0 || Hkv <= 0 || H % Hkv || hd <= 0)
        return hd_fail("%s: bad shape b=%d Tq=%d Tk=%d heads=%d kv_heads=%d head_dim=%d", who, b,
                       Tq, Tk, H, Hkv, hd);
    if (hd > XATT_MAX_HD) return hd_fail("%s: head_dim %d, at most %d", who, hd, XATT_MAX_HD);
    if (b > 65535 || H > 65535 || Hkv > 65535)
        return hd_fail("%s: %d batch rows x %d heads: at most 65535 each", who, b, H);
    *s = XAttShape{b, Tq, Tk, H, Hkv, hd, (float)sqrt((double)hd)};
    return 0;
}

extern "C" int cross_attention_forward_cuda(float *out, float *att, const float *q, const float *k,
                                            const float *v, const int *q_mask, const int *k_mask,
                                            int b, int Tq, int Tk, int n_heads, int n_kv_heads,
                                            int head_dim)
{
    XAttShape s;
    if (check_shape("cross_attention_forward_cuda", b, Tq, Tk, n_heads, n_kv_heads, head_dim, &s))
        return -1;
    if (b == 0 || Tq == 0) return 0;
    dim3 grid(Tq, n_heads, b);
    cross_attention_forward_kernel<<<grid, XATT_THREADS>>>(out, att, q, k, v, q_mask, k_mask, s);
    return hd_cuda_launched("cross_attention_forward_cuda");
}

extern "C" int cross_attention_backward_cuda(float *dq, float *dk, float *dv, const float *dout,
                                             const float *att, const float *q, const float *k,
                                             const float *v, int b, int Tq, int Tk, int n_heads,
                                             int n_kv_heads, int head_dim)
{
    const char *who = "cross_attention_backward_cuda";
    XAttShape s;
    if (check_shape(who, b, Tq, Tk, n_heads, n_kv_heads, head_dim, &s)) return -1;
    if (b == 0 || Tq == 0 || Tk == 0 || (!dq && !dk && !dv)) return 0;
    float *ds = (float *)hd_cuda_scratch(0, (size_t)b * n_heads * Tq * Tk * sizeof(float));
    if (!ds) return -1;
    if (dq || dk) {
        dim3 grid(Tq, n_heads, b);
        cross_attention_backward_query_kernel<<<grid, XATT_THREADS>>>(dq, ds, dout, att, k, v, s);
        if (hd_cuda_launched(who)) return -1;
    }
    if (dk || dv) {
        dim3 grid(Tk, n_kv_heads, b);
        int threads = (head_dim + 31) / 32 * 32;
        cross_attention_backward_key_kernel<<<grid, threads>>>(dk, dv, ds, dout, att, q, s);
        if (hd_cuda_launched(who)) return -1;
    }
    return 0;
}
