#include "train_moments.h"

#include <string.h>

#include "error.h"

int train_moments_init(TrainMoments *t, const Compute *K, float *host_m, float *host_v, size_t n)
{
    memset(t, 0, sizeof *t);
    t->K = K;
    t->n = n;
    t->host_m = host_m;
    t->host_v = host_v;
    if (!K->on_device) {
        t->m = host_m;
        t->v = host_v;
        return 0;
    }
    t->m = K->alloc(n * sizeof(float));
    t->v = K->alloc(n * sizeof(float));
    if (!t->m || !t->v) {
        train_moments_free(t);
        return hd_fail_prefix("AdamW moments: ");
    }
    K->upload(t->m, host_m, n * sizeof(float));
    K->upload(t->v, host_v, n * sizeof(float));
    if (K->status()) return hd_fail_prefix("AdamW moments: ");
    return 0;
}

int train_moments_to_host(TrainMoments *t)
{
    if (!t->K->on_device) return 0;
    t->K->download(t->host_m, t->m, t->n * sizeof(float));
    t->K->download(t->host_v, t->v, t->n * sizeof(float));
    if (t->K->status()) return hd_fail_prefix("AdamW moments: ");
    return 0;
}

void train_moments_free(TrainMoments *t)
{
    if (t->K && t->K->on_device) {
        t->K->release(t->m);
        t->K->release(t->v);
    }
    memset(t, 0, sizeof *t);
}
