#include "train/train_step.h"

#include <string.h>

#include "base/dist.h"
#include "base/error.h"

int train_step_init(TrainStep *t, HnSession *s, float *host_m, float *host_v, int nccl)
{
    const Compute *K = hn_session_target(s)->K;
    memset(t, 0, sizeof *t);
    t->K = K;
    t->n = s->hn->n_params;
    t->host_m = host_m;
    t->host_v = host_v;
    t->nccl = nccl;
    if (!K->on_device) {
        t->m = host_m;
        t->v = host_v;
        return 0;
    }
    t->m = K->alloc(t->n * sizeof(float));
    t->v = K->alloc(t->n * sizeof(float));
    if (!t->m || !t->v) {
        train_step_free(t);
        return hd_fail_prefix("AdamW moments: ");
    }
    K->upload(t->m, host_m, t->n * sizeof(float));
    K->upload(t->v, host_v, t->n * sizeof(float));
    if (K->status()) return hd_fail_prefix("AdamW moments: ");
    return 0;
}

void train_step_free(TrainStep *t)
{
    if (t->K && t->K->on_device) {
        t->K->release(t->m);
        t->K->release(t->v);
    }
    memset(t, 0, sizeof *t);
}

/* The session's parameter and gradient buffers where the step runs (the
 * activations own a device's copies, which move when they grow; before the
 * first batch, a rank with nothing to do has only the host's). */
static float *params_of(HnSession *s)
{
    return s->acts ? hn_acts_params(s->acts) : s->hn->params;
}

static float *grads_of(HnSession *s)
{
    return s->acts ? hn_acts_grads(s->acts) : s->hn->grads;
}

int train_step_gradients(TrainStep *t, HnSession *s, const HnOptions *opt, int share, int world,
                         HnLoss *loss, double *gnorm)
{
    const Compute *K = t->K;
    memset(loss, 0, sizeof *loss);
    if (s->acts) {
        if (hn_acts_zero_grad(s->acts, s->hn) < 0) return -1;
    } else {
        hypernet_zero_grad(s->hn);
    }
    if (share > 0 && (hypernet_forward_view(s->hn, s->acts, &s->view, &s->tb.hb, opt, loss) < 0 ||
                      hypernet_backward_view(s->hn, s->acts, &s->view) < 0))
        return -1;
    float *grads = grads_of(s);
    if (world > 1) { /* sum the ranks' terms: every rank then holds the same */
        if (t->nccl) {
            if (dist_allreduce_sum_f32_device(grads, t->n) < 0) return -1;
        } else {
            dist_allreduce_sum_f32(grads, t->n); /* host memory (cpu-staged too) */
        }
        hypernet_grads_written(s->hn);
        double parts[2] = {loss->pred, loss->sparsity};
        dist_allreduce_sum_f64(parts, 2);
        loss->pred = (float)parts[0];
        loss->sparsity = (float)parts[1];
        loss->total = loss->pred + opt->sparsity_weight * loss->sparsity;
        loss->n_label_tokens = opt->global_label_tokens;
    }
    *gnorm = 0.0;
    K->grad_norm(gnorm, grads, t->n);
    return K->status();
}

int train_step_update(TrainStep *t, HnSession *s, float grad_scale, const AdamWSpan *spans,
                      int n_spans, const AdamWConfig *acfg, long step)
{
    t->K->adamw_step(params_of(s), grads_of(s), grad_scale, t->m, t->v, spans, n_spans, acfg,
                     step);
    return t->K->status();
}

int train_step_to_host(TrainStep *t, HnSession *s)
{
    if (!t->K->on_device) return 0;
    if (hn_acts_download_params(s->acts, s->hn) < 0) return -1;
    t->K->download(t->host_m, t->m, t->n * sizeof(float));
    t->K->download(t->host_v, t->v, t->n * sizeof(float));
    if (t->K->status()) return hd_fail_prefix("AdamW moments: ");
    return 0;
}
