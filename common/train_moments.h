/* AdamW's first and second moments where the training step runs
 * (compute.h), and the way back to the host arrays that checkpoints read
 * and write.  On the CPU the moments are the host arrays themselves and
 * nothing is copied. */
#ifndef HD_TRAIN_MOMENTS_H
#define HD_TRAIN_MOMENTS_H

#include <stddef.h>

#include "compute.h"

typedef struct {
    const Compute *K;
    size_t n;
    float *m, *v;           /* K's memory */
    float *host_m, *host_v; /* [n] the caller's */
} TrainMoments;

/* Takes the host moments (zeros, or a checkpoint's) to K.  -1 with a message. */
int train_moments_init(TrainMoments *t, const Compute *K, float *host_m, float *host_v, size_t n);
/* Copies K's moments back into the host arrays (before a checkpoint). */
int train_moments_to_host(TrainMoments *t);
void train_moments_free(TrainMoments *t);

#endif
