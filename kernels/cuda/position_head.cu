/* The pair-scoring head on the GPU (kernels/cpu/position_head.c; the
 * mathematics is in kernels/cpu/position_head.h).  Per batch row: the pair
 * positions (a running count over the flat pair index) and the grouped
 * query sums are small serial or per-element kernels; each pair's logit is
 * one thread's rotated dot product; each base column's softmax is one
 * thread's loop over the S+1 rows (sum in double, as the CPU twin).  The
 * backward keeps every pair's dlogit in scratch and then sums the rotated
 * keys (dq) and the inverse-rotated query sums (dkb, dks, dkself) with one
 * thread per output element, so no two threads add to the same value.
 * RoPE angles are pos * inv_freq in fp32 as on the CPU; CUDA's cosf/sinf
 * agree with glibc's to an ulp or two, so results agree to fp32 rounding.
 * Scratch: slot 0 the positions and query sums, slot 1 the dlogits. */
#include <math.h>

#include "cuda/cuda_hypernet_ops.h"

extern "C" {
#include "kernel_error.h"
}

struct HeadShape {
    int b, S, B, H, Hkv, hd, kvd, P;
    float scale; /* 1 / (sqrt(hd) H) */
};

/* one thread per batch row: pos[r, f] as position_head_pair_positions */
__global__ void head_positions_kernel(int *pos, const int *mb, const int *ms, HeadShape s)
{
    const int r = blockIdx.x * blockDim.x + threadIdx.x;
    if (r >= s.b) return;
    const int *mbr = mb + (size_t)r * s.B, *msr = ms + (size_t)r * s.S;
    int *p = pos + (size_t)r * s.P, count = 0;
    for (int si = 0; si <= s.S; si++)
        for (int t = 0; t < s.B; t++) {
            const int visible = si == s.S ? 1 : (msr[si] != 0 && mbr[t] != 0);
            count += visible;
            p[(size_t)si * s.B + t] = visible ? count : 0;
        }
}

/* qsum[r, g*hd + i] = sum of the query heads of group g, head order */
__global__ void head_qsum_kernel(float *qsum, const float *q, HeadShape s)
{
    const size_t n = (size_t)s.b * s.kvd;
    for (size_t j = blockIdx.x * (size_t)blockDim.x + threadIdx.x; j < n;
         j += (size_t)gridDim.x * blockDim.x) {
        const size_t r = j / s.kvd, e = j % s.kvd, g = e / s.hd, i = e % s.hd;
        const int group = s.H / s.Hkv;
        float acc = 0.0f;
        for (int h = (int)g * group; h < ((int)g + 1) * group; h++)
            acc += q[(r * s.H + h) * s.hd + i];
        qsum[j] = acc;
    }
}

/* element e of the unrotated key of pair (si, t) of row r */
__device__ inline float pair_key_at(const float *kb, const float *ks, const float *kself, size_t r,
                                    int si, int t, int e, const HeadShape &s)
{
    if (si == s.S) return kself[(r * s.B + t) * s.kvd + e];
    return kb[(r * s.B + t) * s.kvd + e] + ks[(r * s.S + si) * s.kvd + e];
}

__global__ void head_logits_kernel(float *lg, const float *qsum, const int *pos, const float *kb,
                                   const float *ks, const float *kself, const int *mb,
                                   const int *ms, const float *inv_freq, HeadShape s)
{
    const size_t n = (size_t)s.b * s.P;
    const int half = s.hd / 2;
    for (size_t j = blockIdx.x * (size_t)blockDim.x + threadIdx.x; j < n;
         j += (size_t)gridDim.x * blockDim.x) {
        const size_t r = j / s.P, f = j % s.P;
        const int si = (int)(f / s.B), t = (int)(f % s.B);
        if (si < s.S && !(ms[r * s.S + si] && mb[r * s.B + t])) {
            lg[j] = -INFINITY;
            continue;
        }
        const float p = (float)pos[j];
        const float *qs = qsum + r * s.kvd;
        float acc = 0.0f;
        for (int g = 0; g < s.Hkv; g++)
            for (int i = 0; i < half; i++) {
                const float angle = p * inv_freq[i];
                const float c = cosf(angle), sn = sinf(angle);
                const int e = g * s.hd + i;
                const float a = pair_key_at(kb, ks, kself, r, si, t, e, s);
                const float bb = pair_key_at(kb, ks, kself, r, si, t, e + half, s);
                acc += qs[e] * (a * c - bb * sn) + qs[e + half] * (bb * c + a * sn);
            }
        lg[j] = acc * s.scale;
    }
}

/* one thread per (row, base column): softmax down the S+1 rows */
__global__ void head_softmax_kernel(float *W, const float *lg, HeadShape s)
{
    const size_t n = (size_t)s.b * s.B;
    for (size_t j = blockIdx.x * (size_t)blockDim.x + threadIdx.x; j < n;
         j += (size_t)gridDim.x * blockDim.x) {
        const size_t r = j / s.B, t = j % s.B;
        const float *l = lg + r * s.P + t;
        float *w = W + r * s.P + t;
        float mx = -INFINITY;
        for (int si = 0; si <= s.S; si++) mx = fmaxf(mx, l[(size_t)si * s.B]);
        double sum = 0.0;
        for (int si = 0; si <= s.S; si++) {
            const float x = l[(size_t)si * s.B];
            const float e = x == -INFINITY ? 0.0f : expf(x - mx);
            w[(size_t)si * s.B] = e;
            sum += e;
        }
        const float inv = (float)(1.0 / sum);
        for (int si = 0; si <= s.S; si++) w[(size_t)si * s.B] *= inv;
    }
}

static int check_shape(const char *who, int b, int S, int B, int H, int Hkv, int hd, HeadShape *s)
{
    if (b < 0 || S < 0 || B < 0 || H <= 0 || Hkv <= 0 || H % Hkv || hd <= 0 || hd % 2)
        return hd_fail("%s: bad shape b=%d S=%d B=%d heads=%d kv_heads=%d head_dim=%d", who, b, S,
                       B, H, Hkv, hd);
    *s = HeadShape{b, S, B, H, Hkv, hd, Hkv * hd, (S + 1) * B,
                   1.0f / ((float)sqrt((double)hd) * (float)H)};
    return 0;
}

/* positions and query sums into scratch slot 0: pos [b, P] ints, then qsum [b, kvd] */
static int prepare(const HeadShape &s, const float *q, const int *mb, const int *ms, int **pos,
                   float **qsum, const char *who)
{
    size_t pos_floats = ((size_t)s.b * s.P + 3) / 4 * 4; /* keep qsum 16-byte aligned */
    float *mem = (float *)hd_cuda_scratch(0, (pos_floats + (size_t)s.b * s.kvd) * sizeof(float));
    if (!mem) return -1;
    *pos = (int *)mem;
    *qsum = mem + pos_floats;
    head_positions_kernel<<<(s.b + 31) / 32, 32>>>(*pos, mb, ms, s);
    if (hd_cuda_launched(who)) return -1;
    head_qsum_kernel<<<hd_cuda_grid_for((size_t)s.b * s.kvd, 256), 256>>>(*qsum, q, s);
    return hd_cuda_launched(who);
}

extern "C" int position_head_forward_cuda(float *W, float *logits, const float *q, const float *kb,
                                          const float *ks, const float *kself, const int *mb,
                                          const int *ms, const float *inv_freq, int b, int S,
                                          int B, int n_heads, int n_kv_heads, int head_dim)
{
    const char *who = "position_head_forward_cuda";
    HeadShape s;
    if (check_shape(who, b, S, B, n_heads, n_kv_heads, head_dim, &s)) return -1;
    if (b == 0 || B == 0) return 0;
    if (!logits) return hd_fail("%s: the logits buffer is required on the GPU", who);
    int *pos;
    float *qsum;
    if (prepare(s, q, mb, ms, &pos, &qsum, who)) return -1;
    const size_t n = (size_t)b * s.P;
    head_logits_kernel<<<hd_cuda_grid_for(n, 128), 128>>>(logits, qsum, pos, kb, ks, kself, mb, ms,
                                                          inv_freq, s);
    if (hd_cuda_launched(who)) return -1;
    head_softmax_kernel<<<hd_cuda_grid_for((size_t)b * B, 128), 128>>>(W, logits, s);
    return hd_cuda_launched(who);
}

/* dl[r, f] = W (dW - sum_u W_u dW_u) * scale on visible pairs with W != 0,
 * else 0; one thread per (row, base column) */
__global__ void head_dlogit_kernel(float *dl, const float *W, const float *dW, const int *mb,
                                   const int *ms, HeadShape s)
{
    const size_t n = (size_t)s.b * s.B;
    for (size_t j = blockIdx.x * (size_t)blockDim.x + threadIdx.x; j < n;
         j += (size_t)gridDim.x * blockDim.x) {
        const size_t r = j / s.B, t = j % s.B;
        const float *w = W + r * s.P + t, *dw = dW + r * s.P + t;
        double wdw = 0.0;
        for (int si = 0; si <= s.S; si++) wdw += (double)w[(size_t)si * s.B] * dw[(size_t)si * s.B];
        for (int si = 0; si <= s.S; si++) {
            const size_t f = (size_t)si * s.B;
            const bool masked = si < s.S && !(ms[r * s.S + si] && mb[r * s.B + t]);
            dl[r * s.P + f + t] =
                (w[f] == 0.0f || masked) ? 0.0f : w[f] * (dw[f] - (float)wdw) * s.scale;
        }
    }
}

/* dq[r, h*hd + i] += sum over pairs of dl * (rotated key)[g(h)*hd + i] */
__global__ void head_dq_kernel(float *dq, const float *dl, const int *pos, const float *kb,
                               const float *ks, const float *kself, const float *inv_freq,
                               HeadShape s)
{
    const size_t n = (size_t)s.b * s.kvd;
    const int half = s.hd / 2, group = s.H / s.Hkv;
    for (size_t j = blockIdx.x * (size_t)blockDim.x + threadIdx.x; j < n;
         j += (size_t)gridDim.x * blockDim.x) {
        const size_t r = j / s.kvd;
        const int e = (int)(j % s.kvd), g = e / s.hd, i = e % s.hd, i0 = i % half;
        const int ea = g * s.hd + i0, eb = ea + half; /* the rotated pair of dims */
        float acc = 0.0f;
        for (int f = 0; f < s.P; f++) {
            const float d = dl[r * s.P + f];
            if (d == 0.0f) continue;
            const int si = f / s.B, t = f % s.B;
            const float angle = (float)pos[r * s.P + f] * inv_freq[i0];
            const float c = cosf(angle), sn = sinf(angle);
            const float a = pair_key_at(kb, ks, kself, r, si, t, ea, s);
            const float bb = pair_key_at(kb, ks, kself, r, si, t, eb, s);
            acc += d * (i < half ? a * c - bb * sn : bb * c + a * sn);
        }
        for (int h = g * group; h < (g + 1) * group; h++) dq[(r * s.H + h) * s.hd + i] += acc;
    }
}

/* element e of the key gradient of pair f: R(-pos) (dl * qsum) */
__device__ inline float dkey_at(const float *qs, float d, float p, const float *inv_freq, int e,
                                const HeadShape &s)
{
    const int half = s.hd / 2, g = e / s.hd, i = e % s.hd, i0 = i % half;
    const float angle = p * inv_freq[i0];
    const float c = cosf(angle), sn = -sinf(angle);
    const float a = d * qs[g * s.hd + i0], bb = d * qs[g * s.hd + i0 + half];
    return i < half ? a * c - bb * sn : bb * c + a * sn;
}

/* dkb[r, t] += sum_{s<S} dkey(s, t); dkself[r, t] += dkey(S, t) */
__global__ void head_dkb_kernel(float *dkb, float *dkself, const float *dl, const float *qsum,
                                const int *pos, const float *inv_freq, HeadShape s)
{
    const size_t n = (size_t)s.b * s.B * s.kvd;
    for (size_t j = blockIdx.x * (size_t)blockDim.x + threadIdx.x; j < n;
         j += (size_t)gridDim.x * blockDim.x) {
        const size_t r = j / ((size_t)s.B * s.kvd);
        const int t = (int)(j / s.kvd % s.B), e = (int)(j % s.kvd);
        const float *qs = qsum + r * s.kvd;
        if (dkb) {
            float acc = 0.0f;
            for (int si = 0; si < s.S; si++) {
                const size_t f = r * s.P + (size_t)si * s.B + t;
                if (dl[f] != 0.0f) acc += dkey_at(qs, dl[f], (float)pos[f], inv_freq, e, s);
            }
            dkb[j] += acc;
        }
        if (dkself) {
            const size_t f = r * s.P + (size_t)s.S * s.B + t;
            if (dl[f] != 0.0f) dkself[j] += dkey_at(qs, dl[f], (float)pos[f], inv_freq, e, s);
        }
    }
}

/* dks[r, s] += sum_t dkey(s, t) */
__global__ void head_dks_kernel(float *dks, const float *dl, const float *qsum, const int *pos,
                                const float *inv_freq, HeadShape s)
{
    const size_t n = (size_t)s.b * s.S * s.kvd;
    for (size_t j = blockIdx.x * (size_t)blockDim.x + threadIdx.x; j < n;
         j += (size_t)gridDim.x * blockDim.x) {
        const size_t r = j / ((size_t)s.S * s.kvd);
        const int si = (int)(j / s.kvd % s.S), e = (int)(j % s.kvd);
        const float *qs = qsum + r * s.kvd;
        float acc = 0.0f;
        for (int t = 0; t < s.B; t++) {
            const size_t f = r * s.P + (size_t)si * s.B + t;
            if (dl[f] != 0.0f) acc += dkey_at(qs, dl[f], (float)pos[f], inv_freq, e, s);
        }
        dks[j] += acc;
    }
}

extern "C" int position_head_backward_cuda(float *dq, float *dkb, float *dks, float *dkself,
                                           const float *dW, const float *W, const float *q,
                                           const float *kb, const float *ks, const float *kself,
                                           const int *mb, const int *ms, const float *inv_freq,
                                           int b, int S, int B, int n_heads, int n_kv_heads,
                                           int head_dim)
{
    const char *who = "position_head_backward_cuda";
    HeadShape s;
    if (check_shape(who, b, S, B, n_heads, n_kv_heads, head_dim, &s)) return -1;
    if (b == 0 || B == 0 || (!dq && !dkb && !dks && !dkself)) return 0;
    int *pos;
    float *qsum;
    if (prepare(s, q, mb, ms, &pos, &qsum, who)) return -1;
    float *dl = (float *)hd_cuda_scratch(1, (size_t)b * s.P * sizeof(float));
    if (!dl) return -1;
    head_dlogit_kernel<<<hd_cuda_grid_for((size_t)b * B, 128), 128>>>(dl, W, dW, mb, ms, s);
    if (hd_cuda_launched(who)) return -1;
    if (dq) {
        head_dq_kernel<<<hd_cuda_grid_for((size_t)b * s.kvd, 128), 128>>>(dq, dl, pos, kb, ks,
                                                                          kself, inv_freq, s);
        if (hd_cuda_launched(who)) return -1;
    }
    if (dkb || dkself) {
        head_dkb_kernel<<<hd_cuda_grid_for((size_t)b * B * s.kvd, 256), 256>>>(
            dkb, dkself, dl, qsum, pos, inv_freq, s);
        if (hd_cuda_launched(who)) return -1;
    }
    if (dks && S > 0) {
        head_dks_kernel<<<hd_cuda_grid_for((size_t)b * S * s.kvd, 256), 256>>>(dks, dl, qsum, pos,
                                                                               inv_freq, s);
        if (hd_cuda_launched(who)) return -1;
    }
    return 0;
}
