/* The hard selection modes on the GPU (kernels/cpu/selection.c): one
 * thread per batch row runs the CPU's algorithm on that row.  Evaluation
 * only, b rows of (S+1) x B values, so a serial row is microseconds, and
 * the result is the CPU's exactly (same comparisons, same tie rule, the
 * same hash for the random control).  The bidding mode's temporary rows
 * live in scratch slot 0. */
#include <stdint.h>

#include "cuda/cuda_hypernet_ops.h"

__device__ static uint64_t mix64(uint64_t x)
{
    x += 0x9e3779b97f4a7c15ULL;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
    return x ^ (x >> 31);
}

__device__ static void self_only(float *o, int S, int B)
{
    for (int i = 0; i < S * B; i++) o[i] = 0.0f;
    for (int t = 0; t < B; t++) o[(size_t)S * B + t] = 1.0f;
}

__device__ static void column_one_hot(float *o, const float *w, int S, int B)
{
    for (int t = 0; t < B; t++) {
        int best = 0;
        for (int s = 1; s <= S; s++)
            if (w[(size_t)s * B + t] > w[(size_t)best * B + t]) best = s;
        for (int s = 0; s <= S; s++) o[(size_t)s * B + t] = s == best ? 1.0f : 0.0f;
    }
}

__device__ static void random_pair(float *o, const float *w, int S, int B)
{
    uint64_t h = (uint64_t)S * 1000003u + (uint64_t)B;
    for (int i = 0; i < (S + 1) * B; i++) h = mix64(h ^ (uint64_t)__float_as_uint(w[i]));
    int n_src = 0, n_base = 0;
    for (int s = 0; s < S; s++) {
        int any = 0;
        for (int t = 0; t < B && !any; t++) any = w[(size_t)s * B + t] > 0.0f;
        n_src += any;
    }
    for (int t = 0; t < B; t++) n_base += w[(size_t)S * B + t] < 1.0f;
    if (n_src == 0 || n_base == 0) return;
    int ks = (int)(mix64(h) % (uint64_t)n_src), kt = (int)(mix64(h + 1) % (uint64_t)n_base);
    int s_pick = -1, t_pick = -1;
    for (int s = 0; s < S && s_pick < 0; s++) {
        int any = 0;
        for (int t = 0; t < B && !any; t++) any = w[(size_t)s * B + t] > 0.0f;
        if (any && ks-- == 0) s_pick = s;
    }
    for (int t = 0; t < B && t_pick < 0; t++)
        if (w[(size_t)S * B + t] < 1.0f && kt-- == 0) t_pick = t;
    o[(size_t)s_pick * B + t_pick] = 1.0f;
    o[(size_t)S * B + t_pick] = 0.0f;
}

__global__ void selection_kernel(float *out, const float *W, int mode, float threshold,
                                 const int *src_pos, const int *base_pos, int b, int S, int B,
                                 float *tmp_all)
{
    const int r = blockIdx.x * blockDim.x + threadIdx.x;
    if (r >= b) return;
    const size_t P = (size_t)(S + 1) * B;
    const float *w = W + r * P;
    float *o = out + r * P;
    switch (mode) {
    case SELECT_COLUMN_ARGMAX:
        column_one_hot(o, w, S, B);
        break;
    case SELECT_BIDDING_ARGMAX: {
        float *tmp = tmp_all + r * P;
        for (size_t i = 0; i < P; i++) tmp[i] = 0.0f;
        for (int s = 0; s < S; s++) {
            int best = 0;
            for (int t = 1; t < B; t++)
                if (w[(size_t)s * B + t] > w[(size_t)s * B + best]) best = t;
            tmp[(size_t)s * B + best] = w[(size_t)s * B + best];
        }
        for (int t = 0; t < B; t++) {
            float self = w[(size_t)S * B + t];
            tmp[(size_t)S * B + t] = self > threshold ? self : threshold;
        }
        column_one_hot(o, tmp, S, B);
        break;
    }
    case SELECT_GLOBAL_ARGMAX: {
        size_t best = 0;
        for (size_t f = 1; f < (size_t)S * B; f++)
            if (w[f] > w[best]) best = f;
        self_only(o, S, B);
        if (S > 0) {
            size_t s = best / B, t = best % B;
            o[s * B + t] = 1.0f;
            o[(size_t)S * B + t] = 0.0f;
        }
        break;
    }
    case SELECT_GROUNDTRUTH: {
        self_only(o, S, B);
        int s = src_pos ? src_pos[r] : -1, t = base_pos ? base_pos[r] : -1;
        if (s >= 0 && s < S && t >= 0 && t < B) {
            o[(size_t)s * B + t] = 1.0f;
            o[(size_t)S * B + t] = 0.0f;
        }
        break;
    }
    case SELECT_RANDOM:
        self_only(o, S, B);
        random_pair(o, w, S, B);
        break;
    default: /* soft: a copy */
        for (size_t i = 0; i < P; i++) o[i] = w[i];
    }
}

extern "C" int selection_forward_cuda(float *out, const float *W, SelectionMode mode,
                                      float threshold, const int *src_pos, const int *base_pos,
                                      int b, int S, int B)
{
    const size_t P = (size_t)(S + 1) * B;
    if (b <= 0 || P == 0) return 0;
    if (mode == SELECT_SOFT) return out == W ? 0 : hd_cuda_copy(out, W, (size_t)b * P * sizeof *out);
    float *tmp = NULL;
    if (mode == SELECT_BIDDING_ARGMAX && !(tmp = (float *)hd_cuda_scratch(0, (size_t)b * P * sizeof *tmp)))
        return -1;
    selection_kernel<<<(b + 31) / 32, 32>>>(out, W, (int)mode, threshold, src_pos, base_pos, b, S,
                                            B, tmp);
    return hd_cuda_launched("selection_forward_cuda");
}
