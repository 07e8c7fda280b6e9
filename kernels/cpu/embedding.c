#include "cpu/embedding.h"

#include <string.h>

void embedding_forward(float *out, const int *ids, const float *table, int N, int V, int d)
{
#pragma omp parallel for schedule(static) if ((long)N * d > 65536)
    for (int n = 0; n < N; n++) {
        float *o = out + (size_t)n * d;
        int id = ids[n];
        if (id >= 0 && id < V)
            memcpy(o, table + (size_t)id * d, (size_t)d * sizeof *o);
        else
            memset(o, 0, (size_t)d * sizeof *o);
    }
}

void embedding_backward(float *dtable, const float *dout, const int *ids, int N, int V, int d)
{
    /* Serial over tokens: two tokens with the same id write the same row, and
     * N*d is tiny next to any matmul, so a lock-free parallel scheme is not
     * worth its complexity. */
    for (int n = 0; n < N; n++) {
        int id = ids[n];
        if (id < 0 || id >= V) continue;
        float *g = dtable + (size_t)id * d;
        const float *o = dout + (size_t)n * d;
        for (int i = 0; i < d; i++) g[i] += o[i];
    }
}
