/* The hypernetwork's activation and gradient buffers: one allocation,
 * carved into the views of HnActs (hypernet_internal.h), sized for the
 * largest batch the caller announces. */
#include <stdlib.h>
#include <string.h>

#include "base/error.h"
#include "hypernet/hypernet_internal.h"

/* A carving pass: with base == NULL it only counts. */
typedef struct {
    float *base;
    size_t used;
} Carver;

static float *take(Carver *c, size_t n)
{
    float *p = c->base ? c->base + c->used : NULL;
    c->used += n;
    return p;
}

_Static_assert(sizeof(int) == sizeof(float), "int arrays are carved from the float buffer");

static int *take_int(Carver *c, size_t n)
{
    return (int *)take(c, n);
}

/* The step's inputs (HnInputs) for a's capacities. */
static void carve_inputs(HnInputs *in, const HnActs *a, const Hypernet *hn, Carver *c)
{
    const LlamaConfig *t = &hn->target;
    const size_t d = t->hidden_size, half = t->head_dim / 2;
    const size_t b = a->max_b, E = a->max_E, B = a->max_B, S = a->max_S;
    const size_t bE = b * E, bB = b * B, bS = b * S;
    const size_t caps[2] = {a->max_Ns, a->max_Nb};
    HnKeys *keys[2] = {&in->keys_src, &in->keys_base};
    in->ids = take_int(c, bE);
    in->imask = take_int(c, bE);
    in->ipos = take_int(c, bE);
    in->cos_e = take(c, bE * half);
    in->sin_e = take(c, bE * half);
    in->base_intv = take_int(c, bB);
    in->src_intv = take_int(c, bS);
    in->base_attn = take_int(c, bB);
    for (int i = 0; i < 2; i++) {
        keys[i]->states = take(c, b * caps[i] * d);
        keys[i]->mask = take_int(c, b * caps[i]);
        keys[i]->pos = take_int(c, b * caps[i]);
        keys[i]->cos = take(c, b * caps[i] * half);
        keys[i]->sin = take(c, b * caps[i] * half);
    }
    in->yb = take(c, bB * d);
    in->ysn = take(c, bS * d);
    in->xb = take(c, bB * d);
    in->ys = take(c, bS * d);
    in->qpos = take_int(c, b);
    in->cos_q = take(c, b * half);
    in->sin_q = take(c, b * half);
    in->src_pos = take_int(c, b);
    in->base_pos = take_int(c, b);
    in->label_rows = take_int(c, bB);
    in->label_ids = take_int(c, bB);
    in->label_w = take(c, bB);
}

static void carve_all(HnActs *a, const Hypernet *hn, Carver *c)
{
    const LlamaConfig *t = &hn->target;
    const size_t d = t->hidden_size, qd = (size_t)t->n_heads * t->head_dim;
    const size_t kvd = (size_t)t->n_kv_heads * t->head_dim, F = t->intermediate_size;
    const size_t H = t->n_heads, V = t->vocab_size;
    const size_t b = a->max_b, E = a->max_E, B = a->max_B, S = a->max_S;
    const size_t bE = b * E, bB = b * B, bS = b * S;
    const size_t Nb = a->max_Nb, Ns = a->max_Ns;
    const size_t k = hn->cfg.das_dim > 0 ? hn->cfg.das_dim : 1;
    const size_t SF = hn->cfg.sub_ffn > 0 ? hn->cfg.sub_ffn : 1;
    const size_t P = (S + 1) * B;
    const int Lh = hn->cfg.n_layers;
    const size_t caps[2] = {Ns, Nb}; /* the cross blocks' key counts: source, base */

    carve_inputs(&a->in, a, hn, c);
    a->hres = take(c, (size_t)(Lh + 1) * bE * d);
    for (int l = 0; l < Lh; l++) {
        HnLayerActs *s = c->base ? &a->layers[l] : &(HnLayerActs){0};
        s->rstd_self = take(c, bE);
        s->q = take(c, bE * qd);
        s->k = take(c, bE * kvd);
        s->v = take(c, bE * kvd);
        s->att = take(c, b * H * E * E);
        s->ao = take(c, bE * qd);
        HnCrossActs *x[2] = {&s->src, &s->base};
        for (int i = 0; i < 2; i++) {
            x[i]->rstd = take(c, bE);
            x[i]->q = take(c, bE * qd);
            x[i]->kp = take(c, b * caps[i] * kvd);
            x[i]->vp = take(c, b * caps[i] * kvd);
            x[i]->ao = take(c, bE * qd);
        }
        s->rstd_post = take(c, bE);
        s->gate = take(c, bE * F);
        s->up = take(c, bE * F);
        s->x1 = take(c, bE * d);
        s->x2 = take(c, bE * d);
        s->x3 = take(c, bE * d);
    }
    a->xatt = take(c, b * H * E * (Ns > Nb ? Ns : Nb));
    a->hg = take(c, bE * d);
    a->final_rstd = take(c, bE);
    a->normed = take(c, bE * d);
    a->act = take(c, bE * F);
    a->branch = take(c, bE * d);
    a->hg_last = take(c, b * d);
    a->hq = take(c, b * qd);
    a->pb = take(c, bB * d);
    a->ps = take(c, bS * d);
    a->kb = take(c, bB * kvd);
    a->ks = take(c, bS * kvd);
    a->kself = take(c, bB * kvd);
    a->W = take(c, b * P);
    a->W_used = take(c, b * P);
    a->head_logits = take(c, b * P);
    a->R = take(c, d * k);
    a->sub_normed = take(c, b * d);
    a->sub_rstd = take(c, b);
    a->sub_gate = take(c, b * SF);
    a->sub_up = take(c, b * SF);
    a->sub_act = take(c, b * SF);
    a->u = take(c, b * (d > k ? d : k));
    a->v = take(c, b * d);
    a->unorm = take(c, b);
    a->Rp = take(c, b * d * k);
    a->mask = take(c, b * k);
    a->diff = take(c, bB * d);
    a->proj = take(c, bB * k);
    a->new_hidden = take(c, bB * d);
    a->work = take(c, B * (2 * k + d));
    a->ce = take(c, bB);
    a->probs = take(c, bB * V);
    /* backward */
    a->dlogits = take(c, bB * V);
    a->dnormed_t = take(c, bB * d);
    a->dnew = take(c, bB * d);
    a->dW = take(c, b * P);
    a->dR = take(c, d * k);
    a->dRp = take(c, b * d * k);
    a->dmask = take(c, b * k);
    a->du = take(c, b * (d > k ? d : k));
    a->dsub_act = take(c, b * SF);
    a->dsub_gate = take(c, b * SF);
    a->dsub_up = take(c, b * SF);
    a->dsub_normed = take(c, b * d);
    a->dhg_last = take(c, b * d);
    a->dhq = take(c, b * qd);
    a->dhq_pre = take(c, b * qd);
    a->dkb = take(c, bB * kvd);
    a->dks = take(c, bS * kvd);
    a->dkself = take(c, bB * kvd);
    a->dpb = take(c, bB * d);
    a->dps = take(c, bS * d);
    a->dhg = take(c, bE * d);
    a->dh = take(c, bE * d);
    a->dnormed = take(c, bE * d);
    a->dq = take(c, bE * qd);
    a->dq_rot = take(c, bE * qd);
    a->dao = take(c, bE * qd);
    size_t rows = b * (E > Nb ? (E > Ns ? E : Ns) : (Nb > Ns ? Nb : Ns));
    a->dk_rot = take(c, rows * kvd);
    a->dk = take(c, rows * kvd);
    a->dv = take(c, rows * kvd);
    a->dact = take(c, bE * F);
    a->dgate = take(c, bE * F);
    a->dup = take(c, bE * F);
}

void hn_acts_sync_replica(HnActs *a, const Hypernet *hn)
{
    if (a->K->on_device) return;
    a->rep.params = hn->params;
    a->rep.grads = hn->grads;
    a->rep.w = hn->w;
    a->rep.g = hn->g;
    a->rep.rot_base = hn->rot_base;
    a->rep.inv_freq = hn->inv_freq;
}

/* A device's copy of the parameters, zero gradients, Q0 and the RoPE
 * frequencies. */
static int create_replica(HnActs *a, const Hypernet *hn)
{
    const Compute *K = a->K;
    HnReplica *r = &a->rep;
    const size_t bytes = hn->n_params * sizeof(float);
    const int Lh = hn->cfg.n_layers, d = hn->target.hidden_size, half = hn->target.head_dim / 2;
    r->params = K->alloc(bytes);
    r->grads = K->alloc(bytes);
    r->inv_freq = K->alloc((size_t)half * sizeof(float));
    r->rot_base = hn->rot_base ? K->alloc((size_t)d * d * sizeof(float)) : NULL;
    r->w.layers = hd_calloc(Lh > 0 ? Lh : 1, sizeof(HnLayerWeights));
    r->g.layers = hd_calloc(Lh > 0 ? Lh : 1, sizeof(HnLayerWeights));
    if (!r->params || !r->grads || !r->inv_freq || (hn->rot_base && !r->rot_base)) return -1;
    hn_bind_weights(hn, &r->w, r->params);
    hn_bind_weights(hn, &r->g, r->grads);
    K->upload(r->params, hn->params, bytes);
    K->upload(r->inv_freq, hn->inv_freq, (size_t)half * sizeof(float));
    if (r->rot_base) K->upload(r->rot_base, hn->rot_base, (size_t)d * d * sizeof(float));
    return K->status();
}

int hn_acts_download_params(const HnActs *a, Hypernet *hn)
{
    if (!a || !a->K->on_device) return 0;
    a->K->download(hn->params, a->rep.params, hn->n_params * sizeof(float));
    return a->K->status();
}

int hn_acts_download_grads(const HnActs *a, Hypernet *hn)
{
    if (!a || !a->K->on_device) return 0;
    a->K->download(hn->grads, a->rep.grads, hn->n_params * sizeof(float));
    return a->K->status();
}

double hn_acts_input_seconds(const HnActs *a)
{
    return a ? a->input_seconds : 0.0;
}

float *hn_acts_params(const HnActs *a)
{
    return a->rep.params;
}

float *hn_acts_grads(const HnActs *a)
{
    return a->rep.grads;
}

/* The capacities carve_all sizes for. */
static void set_capacity(HnActs *a, const Hypernet *hn, int max_b, int max_E, int max_B,
                         int max_S)
{
    const int nl = hn->target.n_layers + 1;
    a->max_b = max_b;
    a->max_E = max_E;
    a->max_B = max_B;
    a->max_S = max_S;
    /* the DAS method has no G: its cross-attention keys are never packed */
    const int keys = hn->cfg.method == HN_METHOD_HYPERDAS;
    a->max_Nb = keys ? max_B * nl : 0;
    a->max_Ns = keys ? max_S * nl : 0;
}

/* The first target layer that keeps its internals for the backward:
 * L, or Lt (none: each is rerun from its input) with recompute_target. */
static int target_keep_from(const Hypernet *hn, int recompute_target)
{
    return recompute_target ? hn->target.n_layers : hn->cfg.intervention_layer;
}

static HnActs *create(const Compute *K, const Hypernet *hn, int max_b, int max_E, int max_B,
                      int max_S, int recompute_target)
{
    if (!K) {
        hd_fail("hypernet activations: no backend");
        return NULL;
    }
    if (!hn) {
        hd_fail("hypernet activations: no hypernetwork");
        return NULL;
    }
    if (max_b < 1 || max_E < 1 || max_B < 2 || max_S < 1) {
        hd_fail("hypernet activations: bad capacity b=%d E=%d B=%d S=%d", max_b, max_E, max_B,
                max_S);
        return NULL;
    }
    HnActs *a = hd_calloc(1, sizeof *a);
    a->K = K;
    set_capacity(a, hn, max_b, max_E, max_B, max_S);
    a->layers = hd_calloc((size_t)hn->cfg.n_layers, sizeof *a->layers);
    Carver count = {NULL, 0};
    carve_all(a, hn, &count);
    /* malloc, not K->alloc's calloc, on the CPU: pages never touched (the
     * capacity beyond this batch) stay unmapped either way, and malloc is
     * what the memory measurements in bench/NOTES.md were taken with */
    a->mem = K->on_device ? K->alloc(count.used * sizeof(float))
                          : malloc(count.used * sizeof(float));
    if (!a->mem) {
        hd_fail("hypernet activations: cannot allocate %.1f MiB (%s) for b=%d E=%d B=%d S=%d",
                count.used * 4.0 / 1048576.0, K->name, max_b, max_E, max_B, max_S);
        hn_acts_free(a);
        return NULL;
    }
    Carver real = {a->mem, 0};
    carve_all(a, hn, &real);
    if (K->on_device) {
        /* the host side: the inputs, W and ce */
        const size_t P = (size_t)max_b * (max_S + 1) * max_B, bB = (size_t)max_b * max_B;
        Carver host_count = {NULL, 0};
        carve_inputs(&a->host, a, hn, &host_count);
        a->host_mem = hd_malloc((host_count.used + P + bB) * sizeof(float));
        Carver host_real = {a->host_mem, 0};
        carve_inputs(&a->host, a, hn, &host_real);
        a->host_W = take(&host_real, P);
        a->host_ce = take(&host_real, bB);
        if (create_replica(a, hn)) {
            hd_fail_prefix("hypernet activations: ");
            hn_acts_free(a);
            return NULL;
        }
    } else {
        a->host = a->in;
        a->host_W = a->W;
        a->host_ce = a->ce;
        hn_acts_sync_replica(a, hn);
    }
    a->target = llama_acts_create_on(K, &hn->target, max_b, max_B,
                                     target_keep_from(hn, recompute_target));
    if (!a->target) {
        hn_acts_free(a);
        return NULL;
    }
    return a;
}

size_t hn_acts_bytes(const Hypernet *hn, int max_b, int max_E, int max_B, int max_S,
                     int recompute_target, int on_device)
{
    HnActs a = {0};
    set_capacity(&a, hn, max_b, max_E, max_B, max_S);
    Carver count = {NULL, 0};
    carve_all(&a, hn, &count);
    size_t bytes = count.used * sizeof(float) +
                   llama_acts_bytes(&hn->target, max_b, max_B,
                                    target_keep_from(hn, recompute_target), max_b * max_B);
    if (on_device) /* the parameter copy and its gradients, Q0, inv_freq */
        bytes += (2 * hn->n_params + (hn->rot_base ? (size_t)hn->target.hidden_size *
                                                         hn->target.hidden_size : 0) +
                  (size_t)hn->target.head_dim / 2) * sizeof(float);
    return bytes;
}

HnActs *hn_acts_create(const Hypernet *hn, int max_b, int max_E, int max_B, int max_S)
{
    return create(compute_cpu(), hn, max_b, max_E, max_B, max_S, 0);
}

HnActs *hn_acts_create_recomputing(const Hypernet *hn, int max_b, int max_E, int max_B, int max_S)
{
    return create(compute_cpu(), hn, max_b, max_E, max_B, max_S, 1);
}

HnActs *hn_acts_create_on(const Compute *K, const Hypernet *hn, int max_b, int max_E, int max_B,
                          int max_S, int recompute_target)
{
    return create(K, hn, max_b, max_E, max_B, max_S, recompute_target);
}

void hn_acts_free(HnActs *a)
{
    if (!a) return;
    const Compute *K = a->K;
    llama_acts_free(a->target);
    free(a->layers);
    if (K->on_device) {
        K->release(a->mem);
        K->release(a->rep.params);
        K->release(a->rep.grads);
        K->release(a->rep.inv_freq);
        K->release(a->rep.rot_base);
        free(a->rep.w.layers);
        free(a->rep.g.layers);
        free(a->host_mem);
        free(a->host_view);
    } else {
        free(a->mem);
    }
    free(a);
}

void hypernet_view(const HnActs *a, HnView *v)
{
    memset(v, 0, sizeof *v);
    if (!a || !a->have_forward) return;
    v->hg = a->hg;
    v->W = a->W;
    v->W_used = a->W_used;
    v->head_logits = a->head_logits;
    v->R = a->R;
    v->R_reflected = a->Rp;
    v->rv = a->u;
    v->mask = a->mask;
    v->xb = a->in.xb;
    v->ysrc_minus_xb = a->diff;
    v->new_hidden = a->new_hidden;
    v->logits = a->target->logits;
    v->label_rows = a->host.label_rows; /* host memory on every backend */
    v->label_ids = a->host.label_ids;
    v->ce = a->host_ce;
    v->n_label_tokens = a->n_labels;
    if (a->have_backward) {
        v->dW = a->dW;
        v->dhg = a->dhg;
        v->dnew_hidden = a->dnew;
        v->dR = a->dR;
    }
}

int hn_acts_zero_grad(HnActs *a, Hypernet *hn)
{
    if (!a->K->on_device) {
        hypernet_zero_grad(hn);
        return 0;
    }
    a->K->zero(a->rep.grads, hn->n_params * sizeof(float));
    return a->K->status();
}

int hypernet_view_download(HnActs *a, HnView *v)
{
    hypernet_view(a, v);
    if (!a || !a->have_forward || !a->K->on_device) return 0;
    const size_t n_logits = (size_t)a->n_labels * a->target->cfg.vocab_size;
    const size_t n_w = (size_t)a->b * (a->S + 1) * a->B;
    if (n_logits + n_w > a->host_view_cap) {
        free(a->host_view);
        a->host_view = hd_malloc((n_logits + n_w) * sizeof(float));
        a->host_view_cap = n_logits + n_w;
    }
    HnView host = {0};
    host.logits = a->host_view;
    host.W_used = a->host_view + n_logits;
    a->K->download(a->host_view, a->target->logits, n_logits * sizeof(float));
    a->K->download(a->host_view + n_logits, a->W_used, n_w * sizeof(float));
    if (a->K->status()) return hd_fail_prefix("hypernet view: ");
    host.label_rows = v->label_rows;
    host.label_ids = v->label_ids;
    host.ce = v->ce;
    host.n_label_tokens = v->n_label_tokens;
    *v = host;
    return 0;
}
