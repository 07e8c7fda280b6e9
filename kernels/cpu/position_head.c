#include "cpu/position_head.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

void position_head_pair_positions(int *pos, const int *mb, const int *ms, int S, int B)
{
    int count = 0;
    for (int s = 0; s <= S; s++)
        for (int t = 0; t < B; t++) {
            int visible = s == S ? 1 : (ms[s] != 0 && mb[t] != 0);
            count += visible;
            pos[(size_t)s * B + t] = visible ? count : 0;
        }
}

/* The unrotated key of pair (s, t): kb[t] + ks[s], or kself[t] on the self row. */
static void pair_key(float *k, const float *kb, const float *ks, const float *kself, int s, int t,
                     int S, int kvd)
{
    if (s == S) {
        memcpy(k, kself + (size_t)t * kvd, (size_t)kvd * sizeof *k);
        return;
    }
    const float *a = kb + (size_t)t * kvd, *c = ks + (size_t)s * kvd;
    for (int i = 0; i < kvd; i++) k[i] = a[i] + c[i];
}

/* In place rotate-half RoPE of n_heads vectors by pos * inv_freq (sign = +1),
 * or its inverse (sign = -1). */
static void rotate(float *x, int pos, int sign, const float *inv_freq, int n_heads, int hd)
{
    const int half = hd / 2;
    for (int i = 0; i < half; i++) {
        float angle = (float)pos * inv_freq[i]; /* fp32, as rope_angles */
        float c = cosf(angle), s = sign * sinf(angle);
        for (int h = 0; h < n_heads; h++) {
            float *v = x + (size_t)h * hd;
            float a = v[i], b = v[i + half];
            v[i] = a * c - b * s;
            v[i + half] = b * c + a * s;
        }
    }
}

/* qsum[g] = sum of the query heads that read kv head g: the head mean of
 * q_h . k_{g(h)} is (1/H) sum_g qsum_g . k_g. */
static void group_sum(float *qsum, const float *q, int H, int Hkv, int hd)
{
    const int group = H / Hkv;
    memset(qsum, 0, (size_t)Hkv * hd * sizeof *qsum);
    for (int h = 0; h < H; h++) {
        const float *qh = q + (size_t)h * hd;
        float *g = qsum + (size_t)(h / group) * hd;
        for (int i = 0; i < hd; i++) g[i] += qh[i];
    }
}

static float dotf(const float *a, const float *b, int n)
{
    float s = 0.0f;
    for (int i = 0; i < n; i++) s += a[i] * b[i];
    return s;
}

void position_head_forward(float *W, float *logits, const float *q, const float *kb,
                           const float *ks, const float *kself, const int *mb, const int *ms,
                           const float *inv_freq, int b, int S, int B, int n_heads,
                           int n_kv_heads, int head_dim)
{
    const int H = n_heads, Hkv = n_kv_heads, hd = head_dim, kvd = Hkv * hd;
    const int P = (S + 1) * B;
    const float scale = 1.0f / ((float)sqrt((double)hd) * (float)H);

#pragma omp parallel for schedule(dynamic, 1) if (b > 1 && (long)P * kvd > 4096)
    for (int r = 0; r < b; r++) {
        float *qsum = malloc((size_t)kvd * sizeof *qsum);
        float *key = malloc((size_t)kvd * sizeof *key);
        int *pos = malloc((size_t)P * sizeof *pos);
        float *lg = logits ? logits + (size_t)r * P : malloc((size_t)P * sizeof *lg);
        float *w = W + (size_t)r * P;
        const int *mbr = mb + (size_t)r * B, *msr = ms + (size_t)r * S;
        group_sum(qsum, q + (size_t)r * H * hd, H, Hkv, hd);
        position_head_pair_positions(pos, mbr, msr, S, B);
        const float *kbr = kb + (size_t)r * B * kvd, *ksr = ks + (size_t)r * S * kvd;
        const float *kselfr = kself + (size_t)r * B * kvd;
        for (int s = 0; s <= S; s++)
            for (int t = 0; t < B; t++) {
                size_t f = (size_t)s * B + t;
                if (s < S && !(msr[s] && mbr[t])) {
                    lg[f] = -INFINITY;
                    continue;
                }
                pair_key(key, kbr, ksr, kselfr, s, t, S, kvd);
                rotate(key, pos[f], +1, inv_freq, Hkv, hd);
                lg[f] = dotf(qsum, key, kvd) * scale;
            }
        /* softmax down each base column over the S+1 rows */
        for (int t = 0; t < B; t++) {
            float mx = -INFINITY;
            for (int s = 0; s <= S; s++)
                if (lg[(size_t)s * B + t] > mx) mx = lg[(size_t)s * B + t];
            double sum = 0.0;
            for (int s = 0; s <= S; s++) {
                float l = lg[(size_t)s * B + t];
                float e = l == -INFINITY ? 0.0f : expf(l - mx);
                w[(size_t)s * B + t] = e;
                sum += e;
            }
            float inv = (float)(1.0 / sum);
            for (int s = 0; s <= S; s++) w[(size_t)s * B + t] *= inv;
        }
        if (!logits) free(lg);
        free(pos);
        free(key);
        free(qsum);
    }
}

void position_head_backward(float *dq, float *dkb, float *dks, float *dkself, const float *dW,
                            const float *W, const float *q, const float *kb, const float *ks,
                            const float *kself, const int *mb, const int *ms,
                            const float *inv_freq, int b, int S, int B, int n_heads,
                            int n_kv_heads, int head_dim)
{
    const int H = n_heads, Hkv = n_kv_heads, hd = head_dim, kvd = Hkv * hd, group = H / Hkv;
    const int P = (S + 1) * B;
    const float scale = 1.0f / ((float)sqrt((double)hd) * (float)H);

    /* Each batch row owns its rows of every gradient buffer. */
#pragma omp parallel for schedule(dynamic, 1) if (b > 1 && (long)P * kvd > 4096)
    for (int r = 0; r < b; r++) {
        float *qsum = malloc((size_t)kvd * sizeof *qsum);
        float *dqsum = calloc((size_t)kvd, sizeof *dqsum);
        float *key = malloc((size_t)kvd * sizeof *key);
        float *dkey = malloc((size_t)kvd * sizeof *dkey);
        int *pos = malloc((size_t)P * sizeof *pos);
        const float *w = W + (size_t)r * P, *dw = dW + (size_t)r * P;
        const int *mbr = mb + (size_t)r * B, *msr = ms + (size_t)r * S;
        group_sum(qsum, q + (size_t)r * H * hd, H, Hkv, hd);
        position_head_pair_positions(pos, mbr, msr, S, B);
        const float *kbr = kb + (size_t)r * B * kvd, *ksr = ks + (size_t)r * S * kvd;
        const float *kselfr = kself + (size_t)r * B * kvd;
        for (int t = 0; t < B; t++) {
            /* softmax: dlogit_s = W_s (dW_s - sum_u W_u dW_u) */
            double wdw = 0.0;
            for (int s = 0; s <= S; s++) wdw += (double)w[(size_t)s * B + t] * dw[(size_t)s * B + t];
            for (int s = 0; s <= S; s++) {
                size_t f = (size_t)s * B + t;
                if (w[f] == 0.0f) continue; /* masked (or underflowed): no gradient */
                if (s < S && !(msr[s] && mbr[t])) continue;
                float dl = w[f] * (dw[f] - (float)wdw) * scale;
                /* logit = scale * qsum . R(pos) key */
                pair_key(key, kbr, ksr, kselfr, s, t, S, kvd);
                rotate(key, pos[f], +1, inv_freq, Hkv, hd);
                for (int i = 0; i < kvd; i++) {
                    dqsum[i] += dl * key[i];
                    dkey[i] = dl * qsum[i];
                }
                rotate(dkey, pos[f], -1, inv_freq, Hkv, hd); /* R^T = R(-pos) */
                if (s == S) {
                    if (dkself) {
                        float *d = dkself + ((size_t)r * B + t) * kvd;
                        for (int i = 0; i < kvd; i++) d[i] += dkey[i];
                    }
                } else {
                    if (dkb) {
                        float *d = dkb + ((size_t)r * B + t) * kvd;
                        for (int i = 0; i < kvd; i++) d[i] += dkey[i];
                    }
                    if (dks) {
                        float *d = dks + ((size_t)r * S + s) * kvd;
                        for (int i = 0; i < kvd; i++) d[i] += dkey[i];
                    }
                }
            }
        }
        if (dq) {
            float *d = dq + (size_t)r * H * hd;
            for (int h = 0; h < H; h++)
                for (int i = 0; i < hd; i++) d[(size_t)h * hd + i] += dqsum[(size_t)(h / group) * hd + i];
        }
        free(pos);
        free(dkey);
        free(key);
        free(dqsum);
        free(qsum);
    }
}
