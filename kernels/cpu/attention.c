#include "cpu/attention.h"

#include "cpu/vec.h"

#include <math.h>
#include <string.h>

/* Why no sgemm here: for the prompts HyperDAS runs (tens of tokens) the
 * score and value products are a few percent of a layer's FLOPs, the per
 * (row, head) problems are tiny, and calling the pthreads OpenBLAS from
 * inside OpenMP threads would oversubscribe the cores.  Plain loops with
 * `omp simd` reductions over head_dim vectorise well enough. */

void attention_forward(float *out, float *att, const float *q, const float *k, const float *v,
                       const int *key_mask, int b, int Tq, int Tk, int Tcap, int n_heads,
                       int n_kv_heads, int head_dim)
{
    const int H = n_heads, hd = head_dim, group = n_heads / n_kv_heads;
    const size_t q_row = (size_t)H * hd, kv_row = (size_t)n_kv_heads * hd;
    /* transformers divides the scores by math.sqrt(head_dim) */
    const float div = (float)sqrt((double)hd);
    const int t0 = Tk - Tq;
    /* A generation step (one query per row) is too little work to be worth
     * waking the thread team: the team's spinning threads then compete with
     * OpenBLAS's own threads in the next matmul (measured: batched greedy
     * generation 40% slower on 2 cores), and on a loaded machine a barrier
     * can cost a scheduler time slice. */
    const int parallel = (long)b * H * Tq * Tk * hd > (1L << 22);

#pragma omp parallel for collapse(2) schedule(dynamic, 1) if (parallel)
    for (int r = 0; r < b; r++) {
        for (int h = 0; h < H; h++) {
            const int kvh = h / group;
            const float *kb = k + (size_t)r * Tcap * kv_row + (size_t)kvh * hd;
            const float *vb = v + (size_t)r * Tcap * kv_row + (size_t)kvh * hd;
            const int *m = key_mask ? key_mask + (size_t)r * Tcap : NULL;
            for (int i = 0; i < Tq; i++) {
                const float *qi = q + ((size_t)r * Tq + i) * q_row + (size_t)h * hd;
                float *p = att + (((size_t)r * H + h) * Tq + i) * Tk;
                float *o = out + ((size_t)r * Tq + i) * q_row + (size_t)h * hd;
                const int last = t0 + i; /* causal: keys 0..last */
                float mx = -INFINITY;
                for (int j = 0; j <= last; j++) {
                    if (m && !m[j]) continue;
                    float s = vec_dot(qi, kb + (size_t)j * kv_row, hd) / div;
                    p[j] = s;
                    if (s > mx) mx = s;
                }
                memset(o, 0, (size_t)hd * sizeof *o);
                if (mx == -INFINITY) { /* no visible key: a pad query */
                    memset(p, 0, (size_t)Tk * sizeof *p);
                    continue;
                }
                float sum = 0.0f;
                for (int j = 0; j <= last; j++) {
                    if (m && !m[j]) { p[j] = 0.0f; continue; }
                    p[j] = expf(p[j] - mx);
                    sum += p[j];
                }
                for (int j = last + 1; j < Tk; j++) p[j] = 0.0f;
                float inv = 1.0f / sum;
                for (int j = 0; j <= last; j++) {
                    if (p[j] == 0.0f) continue;
                    p[j] *= inv;
                    vec_axpy(o, p[j], vb + (size_t)j * kv_row, hd);
                }
            }
        }
    }
}

void attention_backward(float *dq, float *dk, float *dv, const float *dout, const float *att,
                        const float *q, const float *k, const float *v, int b, int Tq, int Tk,
                        int Tcap, int n_heads, int n_kv_heads, int head_dim)
{
    const int H = n_heads, Hkv = n_kv_heads, hd = head_dim, group = n_heads / n_kv_heads;
    const size_t q_row = (size_t)H * hd, kv_row = (size_t)Hkv * hd;
    const float div = (float)sqrt((double)hd);
    const int t0 = Tk - Tq;

    /* The backward of the softmax needs sum_k p_k dp_k before any ds_j, so
     * each query row takes two passes over its keys; the second recomputes
     * dp_j = dout_i . v_j instead of keeping a Tk-sized scratch row. */
#pragma omp parallel for collapse(2) schedule(dynamic, 1) if ((long)b * H * Tq * Tk * hd > (1L << 22))
    for (int r = 0; r < b; r++) {
        for (int kvh = 0; kvh < Hkv; kvh++) {
            const size_t kv_off = (size_t)r * Tcap * kv_row + (size_t)kvh * hd;
            const float *kb = k + kv_off, *vb = v + kv_off;
            float *dkb = dk ? dk + kv_off : NULL, *dvb = dv ? dv + kv_off : NULL;
            for (int h = kvh * group; h < (kvh + 1) * group; h++) {
                for (int i = 0; i < Tq; i++) {
                    const size_t q_off = ((size_t)r * Tq + i) * q_row + (size_t)h * hd;
                    const float *qi = q + q_off, *go = dout + q_off;
                    const float *p = att + (((size_t)r * H + h) * Tq + i) * Tk;
                    const int last = t0 + i;
                    /* out_i = sum_j p_j v_j  =>  dv_j += p_j dout_i, dp_j = dout_i . v_j */
                    float pdp = 0.0f;
                    for (int j = 0; j <= last; j++) {
                        if (p[j] == 0.0f) continue; /* masked, or no weight to pass back */
                        pdp += p[j] * vec_dot(go, vb + (size_t)j * kv_row, hd);
                        if (dvb) vec_axpy(dvb + (size_t)j * kv_row, p[j], go, hd);
                    }
                    /* softmax: ds_j = p_j (dp_j - sum_k p_k dp_k); score = q.k / div */
                    for (int j = 0; j <= last; j++) {
                        if (p[j] == 0.0f) continue;
                        float dpj = vec_dot(go, vb + (size_t)j * kv_row, hd);
                        float ds = p[j] * (dpj - pdp) / div;
                        if (dq) vec_axpy(dq + q_off, ds, kb + (size_t)j * kv_row, hd);
                        if (dkb) vec_axpy(dkb + (size_t)j * kv_row, ds, qi, hd);
                    }
                }
            }
        }
    }
}
