/* Causal GQA attention with a key padding mask on the GPU, with the same
 * contract as kernels/cpu/attention.h: the probabilities att [b, H, Tq, Tk]
 * are written in full and the backward reads them.
 *
 * Two paths, the same results to fp32 rounding:
 *   - direct (this file), for few queries per head (a generation step, a
 *     short prompt): one block per (query i, head h, batch row r).  Its
 *     four warps take the keys in turn, each score a warp-wide dot product
 *     (lanes split head_dim, so a key row is read coalesced) written
 *     straight into the att row; then max, exp and sum over the row, and
 *     out_i = sum_j p_j v_j with lanes over head_dim again.  K and V rows
 *     are re-read by every query of a head, from L2.
 *   - gemm (attention_gemm.cu), from ATT_GEMM_MIN_TQ queries up: the
 *     products are batched cuBLAS SGEMMs (fp32, no TF32) and only the
 *     masked softmax is a kernel of ours.  It wastes the causal half of the
 *     score square but runs at GEMM speed.
 * $HD_CUDA_ATTENTION=direct or =gemm forces one (tests and benchmarks).
 *
 * Backward of the direct path, two kernels so that nobody needs atomics:
 *   per query  (i, h, r): dp_j = dout_i . v_j, then ds_j = p_j (dp_j - sum_k
 *              p_k dp_k) / sqrt(hd) into a scratch row, and dq_i += sum_j ds_j k_j;
 *   per key    (j, kvh, r): dv_j += sum over (h in group, i) p_ij dout_i and
 *              dk_j += sum ds_ij q_i; each block owns its dk/dv row. */
#include <math.h>

#include <stdlib.h>
#include <string.h>

#include "cuda/attention_shape.cuh"
#include "cuda/cuda_ops.h"
#include "cuda/reduce.cuh"

extern "C" {
#include "kernel_error.h"
}

enum { ATT_WARPS = 4, ATT_THREADS = ATT_WARPS * 32, ATT_MAX_HD = 256, ATT_DIMS_PER_LANE = 8 };
/* From this many queries per head on, the GEMM path.  Measured on an H100
 * (bench/bench_cuda_kernels.c): at Tq = 128 and 512 the GEMM path is 5-12x
 * faster, at Tq = 1 the direct kernel is 1.3-6x faster; the crossover in
 * between was not measured, 16 is a guess. */
enum { ATT_GEMM_MIN_TQ = 16 };

/* sum_j w[j] row_j over the keys j <= last with w[j] != 0, for one head
 * vector of hd floats: warps take keys in turn, lanes take dimensions
 * (lane + 32 t, hence hd <= 32 * ATT_DIMS_PER_LANE), and the warps' partial
 * sums meet in shared memory.  emit(d, sum) is called once per dimension. */
template <typename Emit>
__device__ inline void weighted_row_sum(const float *w, const float *base, size_t row_stride,
                                        int last, int hd, float (*part)[ATT_MAX_HD], Emit emit)
{
    const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
    float acc[ATT_DIMS_PER_LANE];
#pragma unroll
    for (int t = 0; t < ATT_DIMS_PER_LANE; t++) acc[t] = 0.0f;
    for (int j = warp; j <= last; j += ATT_WARPS) {
        const float wj = w[j];
        if (wj == 0.0f) continue; /* masked, or no weight (as the CPU twin skips) */
        const float *row = base + (size_t)j * row_stride;
#pragma unroll
        for (int t = 0; t < ATT_DIMS_PER_LANE; t++) {
            const int d = lane + 32 * t;
            if (d < hd) acc[t] += wj * row[d];
        }
    }
#pragma unroll
    for (int t = 0; t < ATT_DIMS_PER_LANE; t++) {
        const int d = lane + 32 * t;
        if (d < hd) part[warp][d] = acc[t];
    }
    __syncthreads();
    for (int d = threadIdx.x; d < hd; d += blockDim.x) {
        float s = 0.0f;
        for (int w2 = 0; w2 < ATT_WARPS; w2++) s += part[w2][d];
        emit(d, s);
    }
}

__global__ void __launch_bounds__(ATT_THREADS)
attention_forward_kernel(float *out, float *att, const float *q, const float *k, const float *v,
                         const int *key_mask, AttShape s)
{
    __shared__ float qs[ATT_MAX_HD];
    __shared__ float red[32];
    __shared__ float part[ATT_WARPS][ATT_MAX_HD];
    const int i = blockIdx.x, h = blockIdx.y, r = blockIdx.z;
    const int kvh = h / (s.H / s.Hkv);
    const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
    const size_t kv_row = (size_t)s.Hkv * s.hd;
    const float *qi = q + q_offset(s, r, i, h);
    const float *kb = k + kv_offset(s, r, 0, kvh), *vb = v + kv_offset(s, r, 0, kvh);
    const int *m = key_mask ? key_mask + (size_t)r * s.Tcap : nullptr;
    float *p = att + att_offset(s, r, h, i);
    float *o = out + q_offset(s, r, i, h);
    const int last = s.Tk - s.Tq + i; /* causal: keys 0..last */

    for (int d = threadIdx.x; d < s.hd; d += blockDim.x) qs[d] = qi[d];
    __syncthreads();

    /* Scores, one warp per key; a masked key is marked -inf for now. */
    float mx = -INFINITY;
    for (int j = warp; j <= last; j += ATT_WARPS) {
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
    mx = block_max(mx, red); /* its barrier also publishes the p[j] just written */

    if (mx == -INFINITY) { /* no visible key (a left pad): zeros, never NaN */
        for (int j = threadIdx.x; j < s.Tk; j += blockDim.x) p[j] = 0.0f;
        for (int d = threadIdx.x; d < s.hd; d += blockDim.x) o[d] = 0.0f;
        return;
    }
    float sum = 0.0f;
    for (int j = threadIdx.x; j < s.Tk; j += blockDim.x) {
        const float e = j <= last ? expf(p[j] - mx) : 0.0f; /* expf(-inf) = 0 for masked keys */
        p[j] = e;
        sum += e;
    }
    sum = block_sum(sum, red);
    const float inv = 1.0f / sum;
    for (int j = threadIdx.x; j <= last; j += blockDim.x) p[j] *= inv;
    __syncthreads();

    weighted_row_sum(p, vb, kv_row, last, s.hd, part, [&](int d, float val) { o[d] = val; });
}

/* Per query: ds row (into scratch, same layout as att) and dq. */
__global__ void __launch_bounds__(ATT_THREADS)
attention_backward_query_kernel(float *dq, float *ds_all, const float *dout, const float *att,
                                const float *k, const float *v, AttShape s)
{
    __shared__ float gs[ATT_MAX_HD];
    __shared__ float red[32];
    __shared__ float part[ATT_WARPS][ATT_MAX_HD];
    const int i = blockIdx.x, h = blockIdx.y, r = blockIdx.z;
    const int kvh = h / (s.H / s.Hkv);
    const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
    const size_t kv_row = (size_t)s.Hkv * s.hd;
    const float *go = dout + q_offset(s, r, i, h);
    const float *kb = k + kv_offset(s, r, 0, kvh), *vb = v + kv_offset(s, r, 0, kvh);
    const float *p = att + att_offset(s, r, h, i);
    float *ds = ds_all + att_offset(s, r, h, i);
    const int last = s.Tk - s.Tq + i;

    for (int d = threadIdx.x; d < s.hd; d += blockDim.x) gs[d] = go[d];
    __syncthreads();

    /* out_i = sum_j p_j v_j  =>  dp_j = dout_i . v_j, parked in ds[j] for now */
    float pdp = 0.0f;
    for (int j = warp; j <= last; j += ATT_WARPS) {
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
    /* softmax backward: ds_j = p_j (dp_j - sum_k p_k dp_k); score = q.k / div */
    for (int j = threadIdx.x; j < s.Tk; j += blockDim.x) {
        const float pj = j <= last ? p[j] : 0.0f;
        ds[j] = pj != 0.0f ? pj * (ds[j] - pdp) / s.div : 0.0f;
    }
    __syncthreads();
    if (!dq) return;
    float *dqi = dq + q_offset(s, r, i, h);
    weighted_row_sum(ds, kb, kv_row, last, s.hd, part, [&](int d, float val) { dqi[d] += val; });
}

/* Per key (j, kvh, r): dv_j and dk_j, summed over the queries of the group's
 * heads that see key j.  One thread per dimension. */
__global__ void attention_backward_key_kernel(float *dk, float *dv, const float *ds_all,
                                              const float *dout, const float *att, const float *q,
                                              AttShape s)
{
    const int j = blockIdx.x, kvh = blockIdx.y, r = blockIdx.z;
    const int group = s.H / s.Hkv;
    const int first_i = max(0, j - (s.Tk - s.Tq)); /* queries that see j: t0 + i >= j */
    for (int d = threadIdx.x; d < s.hd; d += blockDim.x) {
        float acc_v = 0.0f, acc_k = 0.0f;
        for (int h = kvh * group; h < (kvh + 1) * group; h++) {
            for (int i = first_i; i < s.Tq; i++) {
                const size_t a = att_offset(s, r, h, i) + j;
                const float pij = att[a];
                if (pij == 0.0f) continue;
                const size_t qo = q_offset(s, r, i, h);
                acc_v += pij * dout[qo + d];
                if (dk) acc_k += ds_all[a] * q[qo + d];
            }
        }
        const size_t ko = kv_offset(s, r, j, kvh);
        if (dv) dv[ko + d] += acc_v;
        if (dk) dk[ko + d] += acc_k;
    }
}

static int check_shape(const char *who, int b, int Tq, int Tk, int Tcap, int H, int Hkv, int hd,
                       AttShape *s)
{
    if (b < 0 || Tq < 0 || Tk < Tq || Tcap < Tk || H <= 0 || Hkv <= 0 || H % Hkv || hd <= 0)
        return hd_fail("%s: bad shape b=%d Tq=%d Tk=%d Tcap=%d heads=%d kv_heads=%d head_dim=%d "
                       "(need Tq <= Tk <= Tcap, heads a multiple of kv_heads)",
                       who, b, Tq, Tk, Tcap, H, Hkv, hd);
    if (hd > ATT_MAX_HD) return hd_fail("%s: head_dim %d, at most %d", who, hd, ATT_MAX_HD);
    if (b > 65535 || H > 65535)
        return hd_fail("%s: %d batch rows x %d heads: at most 65535 each", who, b, H);
    *s = AttShape{b, Tq, Tk, Tcap, H, Hkv, hd, (float)sqrt((double)hd)};
    return 0;
}

static int use_gemm_path(int Tq)
{
    const char *force = getenv("HD_CUDA_ATTENTION");
    if (force && !strcmp(force, "direct")) return 0;
    if (force && !strcmp(force, "gemm")) return 1;
    return Tq >= ATT_GEMM_MIN_TQ;
}

extern "C" int attention_forward_cuda(float *out, float *att, const float *q, const float *k,
                                      const float *v, const int *key_mask, int b, int Tq, int Tk,
                                      int Tcap, int n_heads, int n_kv_heads, int head_dim)
{
    AttShape s;
    if (check_shape("attention_forward_cuda", b, Tq, Tk, Tcap, n_heads, n_kv_heads, head_dim, &s))
        return -1;
    if (b == 0 || Tq == 0) return 0;
    if (use_gemm_path(Tq)) return attention_forward_gemm(out, att, q, k, v, key_mask, s);
    dim3 grid(Tq, n_heads, b);
    attention_forward_kernel<<<grid, ATT_THREADS>>>(out, att, q, k, v, key_mask, s);
    return hd_cuda_launched("attention_forward_cuda");
}

extern "C" int attention_backward_cuda(float *dq, float *dk, float *dv, const float *dout,
                                       const float *att, const float *q, const float *k,
                                       const float *v, int b, int Tq, int Tk, int Tcap,
                                       int n_heads, int n_kv_heads, int head_dim)
{
    const char *who = "attention_backward_cuda";
    AttShape s;
    if (check_shape(who, b, Tq, Tk, Tcap, n_heads, n_kv_heads, head_dim, &s)) return -1;
    if (b == 0 || Tq == 0 || (!dq && !dk && !dv)) return 0;
    if (use_gemm_path(Tq)) return attention_backward_gemm(dq, dk, dv, dout, att, q, k, v, s);
    float *ds = nullptr;
    if (dq || dk) {
        ds = (float *)hd_cuda_scratch(0, (size_t)b * n_heads * Tq * Tk * sizeof(float));
        if (!ds) return hd_fail_prefix("%s: ", who);
        dim3 grid(Tq, n_heads, b);
        attention_backward_query_kernel<<<grid, ATT_THREADS>>>(dq, ds, dout, att, k, v, s);
        if (hd_cuda_launched(who)) return -1;
    }
    if (dk || dv) {
        dim3 grid(Tk, n_kv_heads, b);
        int threads = (head_dim + 31) / 32 * 32;
        attention_backward_key_kernel<<<grid, threads>>>(dk, dv, ds, dout, att, q, s);
        if (hd_cuda_launched(who)) return -1;
    }
    return 0;
}
