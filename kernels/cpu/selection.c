#include "cpu/selection.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static const char *const mode_names[] = {"soft", "column_argmax", "bidding_argmax",
                                         "global_argmax", "groundtruth", "random"};

/* SplitMix64 finaliser: the random control's draws must be reproducible
 * and differ between examples, so they hash the example's own W. */
static uint64_t mix64(uint64_t x)
{
    x += 0x9e3779b97f4a7c15ULL;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
    return x ^ (x >> 31);
}

/* One visible source row and one visible base column of W, uniformly:
 * source rows with some weight, base columns not forced onto the self row. */
static void random_pair(float *o, const float *w, int S, int B)
{
    uint64_t h = (uint64_t)S * 1000003u + (uint64_t)B;
    for (int i = 0; i < (S + 1) * B; i++) {
        uint32_t bits;
        memcpy(&bits, &w[i], 4);
        h = mix64(h ^ bits);
    }
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

int selection_mode_from_name(const char *name)
{
    if (!name) return -1;
    if (!strcmp(name, "soft") || !strcmp(name, "default") || !strcmp(name, "none"))
        return SELECT_SOFT;
    for (int i = 0; i < (int)(sizeof mode_names / sizeof *mode_names); i++)
        if (!strcmp(name, mode_names[i])) return i;
    return -1;
}

const char *selection_mode_name(SelectionMode mode)
{
    if ((int)mode < 0 || (int)mode >= (int)(sizeof mode_names / sizeof *mode_names)) return "?";
    return mode_names[mode];
}

/* Each column of w [S+1, B] becomes one-hot at its first maximum. */
static void column_one_hot(float *out, const float *w, int S, int B)
{
    for (int t = 0; t < B; t++) {
        int best = 0;
        for (int s = 1; s <= S; s++)
            if (w[(size_t)s * B + t] > w[(size_t)best * B + t]) best = s;
        for (int s = 0; s <= S; s++) out[(size_t)s * B + t] = s == best ? 1.0f : 0.0f;
    }
}

static void self_only(float *out, int S, int B)
{
    memset(out, 0, (size_t)(S + 1) * B * sizeof *out);
    for (int t = 0; t < B; t++) out[(size_t)S * B + t] = 1.0f;
}

void selection_forward(float *out, const float *W, SelectionMode mode, float threshold,
                       const int *src_pos, const int *base_pos, int b, int S, int B)
{
    const size_t P = (size_t)(S + 1) * B;
    if (mode == SELECT_SOFT) {
        if (out != W) memcpy(out, W, (size_t)b * P * sizeof *out);
        return;
    }
    float *tmp = mode == SELECT_BIDDING_ARGMAX ? malloc(P * sizeof *tmp) : NULL;
    for (int r = 0; r < b; r++) {
        const float *w = W + r * P;
        float *o = out + r * P;
        switch (mode) {
        case SELECT_COLUMN_ARGMAX:
            column_one_hot(o, w, S, B);
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
            column_one_hot(o, tmp, S, B);
            break;
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
        default:
            memcpy(o, w, P * sizeof *o);
        }
    }
    free(tmp);
}
