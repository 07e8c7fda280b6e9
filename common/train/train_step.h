/* One optimisation step of a session (hn_session.h) wherever it runs
 * (compute.h): the gradients of this rank's share, summed over the ranks,
 * then AdamW on the backend's parameter copy with moments kept there too.
 * Checkpoints read the host arrays: train_step_to_host brings the
 * parameters and moments back first (nothing to do on the CPU). */
#ifndef HD_TRAIN_STEP_H
#define HD_TRAIN_STEP_H

#include <stddef.h>

#include "compute.h"
#include "hypernet/hn_session.h"

typedef struct {
    const Compute *K;
    size_t n;
    float *m, *v;           /* AdamW's moments in K's memory */
    float *host_m, *host_v; /* [n] the caller's, what checkpoints hold */
    int nccl;               /* sum gradients with NCCL (device memory) instead of MPI */
} TrainStep;

/* Takes the host moments (zeros, or a checkpoint's) to the session's
 * backend.  nccl: the gradients live on a GPU and the ranks sum them with
 * NCCL.  -1 with a message. */
int train_step_init(TrainStep *t, HnSession *s, float *host_m, float *host_v, int nccl);
void train_step_free(TrainStep *t);

/* Zeroes the gradients; forward and backward on the session's batch when
 * share > 0 (this rank's examples); with several ranks, sums the
 * gradients and the loss parts over them (opt->global_* set by the
 * caller); the gradient norm into *gnorm.  -1 with a message on bad
 * input or a device failure (a non-finite loss or norm is the caller's
 * to judge). */
int train_step_gradients(TrainStep *t, HnSession *s, const HnOptions *opt, int share, int world,
                         HnLoss *loss, double *gnorm);

/* AdamW on every span, the gradients scaled by grad_scale (clipping). */
int train_step_update(TrainStep *t, HnSession *s, float grad_scale, const AdamWSpan *spans,
                      int n_spans, const AdamWConfig *acfg, long step);

/* The backend's parameters and moments into the host arrays. */
int train_step_to_host(TrainStep *t, HnSession *s);

#endif
