/* One batch row of the hard selection modes (selection.h), shared by the CPU
 * op (selection.c) and its CUDA twin (kernels/cuda/selection.cu, one thread
 * per row), so that both run the same comparisons, tie rule and random
 * control hash: the GPU's selections are the CPU's by construction.  Under
 * nvcc the functions are compiled for host and device (SELECTION_ROW_FN);
 * memcpy and memset exist in device code. */
#ifndef HD_KERNELS_CPU_SELECTION_ROW_H
#define HD_KERNELS_CPU_SELECTION_ROW_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "cpu/selection.h"

#ifdef __CUDACC__
#define SELECTION_ROW_FN static inline __host__ __device__
#else
#define SELECTION_ROW_FN static inline
#endif

/* SplitMix64 finaliser: the random control's draws must be reproducible
 * and differ between examples, so they hash the example's own W. */
SELECTION_ROW_FN uint64_t selection_mix64(uint64_t x)
{
    x += 0x9e3779b97f4a7c15ULL;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
    return x ^ (x >> 31);
}

/* One visible source row and one visible base column of w, uniformly:
 * source rows with some weight, base columns not forced onto the self row. */
SELECTION_ROW_FN void selection_random_pair(float *o, const float *w, int S, int B)
{
    uint64_t h = (uint64_t)S * 1000003u + (uint64_t)B;
    for (int i = 0; i < (S + 1) * B; i++) {
        uint32_t bits;
        memcpy(&bits, &w[i], 4);
        h = selection_mix64(h ^ bits);
    }
    int n_src = 0, n_base = 0;
    for (int s = 0; s < S; s++) {
        int any = 0;
        for (int t = 0; t < B && !any; t++) any = w[(size_t)s * B + t] > 0.0f;
        n_src += any;
    }
    for (int t = 0; t < B; t++) n_base += w[(size_t)S * B + t] < 1.0f;
    if (n_src == 0 || n_base == 0) return;
    int ks = (int)(selection_mix64(h) % (uint64_t)n_src);
    int kt = (int)(selection_mix64(h + 1) % (uint64_t)n_base);
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

/* Each column of w [S+1, B] becomes one-hot at its first maximum. */
SELECTION_ROW_FN void selection_column_one_hot(float *out, const float *w, int S, int B)
{
    for (int t = 0; t < B; t++) {
        int best = 0;
        for (int s = 1; s <= S; s++)
            if (w[(size_t)s * B + t] > w[(size_t)best * B + t]) best = s;
        for (int s = 0; s <= S; s++) out[(size_t)s * B + t] = s == best ? 1.0f : 0.0f;
    }
}

SELECTION_ROW_FN void selection_self_only(float *out, int S, int B)
{
    memset(out, 0, (size_t)(S + 1) * B * sizeof *out);
    for (int t = 0; t < B; t++) out[(size_t)S * B + t] = 1.0f;
}

/* o = the selection of one row's w [S+1, B] under a hard mode (soft and
 * unknown modes copy w).  src_pos/base_pos: groundtruth's pair (-1: none);
 * tmp [S+1, B]: bidding's scratch. */
SELECTION_ROW_FN void selection_row(float *o, const float *w, SelectionMode mode, float threshold,
                                    int src_pos, int base_pos, int S, int B, float *tmp)
{
    const size_t P = (size_t)(S + 1) * B;
    switch (mode) {
    case SELECT_COLUMN_ARGMAX:
        selection_column_one_hot(o, w, S, B);
        break;
    case SELECT_BIDDING_ARGMAX:
        memset(tmp, 0, P * sizeof *tmp);
        for (int s = 0; s < S; s++) { /* each source row bids for its best column */
            int best = 0;
            for (int t = 1; t < B; t++)
                if (w[(size_t)s * B + t] > w[(size_t)s * B + best]) best = t;
            tmp[(size_t)s * B + best] = w[(size_t)s * B + best];
        }
        for (int t = 0; t < B; t++) {
            float self = w[(size_t)S * B + t];
            tmp[(size_t)S * B + t] = self > threshold ? self : threshold;
        }
        selection_column_one_hot(o, tmp, S, B);
        break;
    case SELECT_GLOBAL_ARGMAX: {
        size_t best = 0;
        for (size_t f = 1; f < (size_t)S * B; f++)
            if (w[f] > w[best]) best = f;
        selection_self_only(o, S, B);
        if (S > 0) {
            size_t s = best / B, t = best % B;
            o[s * B + t] = 1.0f;
            o[(size_t)S * B + t] = 0.0f;
        }
        break;
    }
    case SELECT_GROUNDTRUTH:
        selection_self_only(o, S, B);
        if (src_pos >= 0 && src_pos < S && base_pos >= 0 && base_pos < B) {
            o[(size_t)src_pos * B + base_pos] = 1.0f;
            o[(size_t)S * B + base_pos] = 0.0f;
        }
        break;
    case SELECT_RANDOM:
        selection_self_only(o, S, B);
        selection_random_pair(o, w, S, B);
        break;
    default:
        memcpy(o, w, P * sizeof *o);
    }
}

#endif
