/* The hypernetwork's activation and gradient buffers: one allocation,
 * carved into the views of HnActs (hypernet_internal.h), sized for the
 * largest batch the caller announces. */
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "hypernet_internal.h"

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

static void carve_all(HnActs *a, const Hypernet *hn, Carver *c)
{
    const LlamaConfig *t = &hn->target;
    const size_t d = t->hidden_size, qd = (size_t)t->n_heads * t->head_dim;
    const size_t kvd = (size_t)t->n_kv_heads * t->head_dim, F = t->intermediate_size;
    const size_t half = t->head_dim / 2, H = t->n_heads, V = t->vocab_size;
    const size_t b = a->max_b, E = a->max_E, B = a->max_B, S = a->max_S;
    const size_t bE = b * E, bB = b * B, bS = b * S;
    const size_t Nb = a->max_Nb, Ns = a->max_Ns;
    const size_t k = hn->cfg.das_dim > 0 ? hn->cfg.das_dim : 1;
    const size_t SF = hn->cfg.sub_ffn > 0 ? hn->cfg.sub_ffn : 1;
    const size_t P = (S + 1) * B;
    const int Lh = hn->cfg.n_layers;

    a->ids = take_int(c, bE);
    a->imask = take_int(c, bE);
    a->ipos = take_int(c, bE);
    a->cos_e = take(c, bE * half);
    a->sin_e = take(c, bE * half);
    a->base_intv = take_int(c, bB);
    a->src_intv = take_int(c, bS);
    a->base_attn = take_int(c, bB);
    HnKeys *keys[2] = {&a->keys_src, &a->keys_base};
    size_t caps[2] = {Ns, Nb};
    for (int i = 0; i < 2; i++) {
        keys[i]->states = take(c, b * caps[i] * d);
        keys[i]->mask = take_int(c, b * caps[i]);
        keys[i]->pos = take_int(c, b * caps[i]);
        keys[i]->cos = take(c, b * caps[i] * half);
        keys[i]->sin = take(c, b * caps[i] * half);
    }
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
            x[i]->att = take(c, b * H * E * caps[i]);
            x[i]->ao = take(c, bE * qd);
        }
        s->rstd_post = take(c, bE);
        s->gate = take(c, bE * F);
        s->up = take(c, bE * F);
        s->x1 = take(c, bE * d);
        s->x2 = take(c, bE * d);
        s->x3 = take(c, bE * d);
    }
    a->hg = take(c, bE * d);
    a->final_rstd = take(c, bE);
    a->normed = take(c, bE * d);
    a->act = take(c, bE * F);
    a->branch = take(c, bE * d);
    a->hg_last = take(c, b * d);
    a->hq = take(c, b * qd);
    a->cos_q = take(c, b * half);
    a->sin_q = take(c, b * half);
    a->qpos = take_int(c, b);
    a->yb = take(c, bB * d);
    a->ysn = take(c, bS * d);
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
    a->xb = take(c, bB * d);
    a->ys = take(c, bS * d);
    a->diff = take(c, bB * d);
    a->proj = take(c, bB * k);
    a->new_hidden = take(c, bB * d);
    a->work = take(c, B * (2 * k + d));
    a->label_rows = take_int(c, bB);
    a->label_ids = take_int(c, bB);
    a->label_w = take(c, bB);
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

static HnActs *create(const Hypernet *hn, int max_b, int max_E, int max_B, int max_S,
                      int recompute_target)
{
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
    const int nl = hn->target.n_layers + 1;
    a->max_b = max_b;
    a->max_E = max_E;
    a->max_B = max_B;
    a->max_S = max_S;
    /* the DAS method has no G: its cross-attention keys are never packed */
    const int keys = hn->cfg.method == HN_METHOD_HYPERDAS;
    a->max_Nb = keys ? max_B * nl : 0;
    a->max_Ns = keys ? max_S * nl : 0;
    a->layers = hd_calloc((size_t)hn->cfg.n_layers, sizeof *a->layers);
    Carver count = {NULL, 0};
    carve_all(a, hn, &count);
    a->mem = malloc(count.used * sizeof(float));
    if (!a->mem) {
        hd_fail("hypernet activations: cannot allocate %.1f MiB for b=%d E=%d B=%d S=%d",
                count.used * 4.0 / 1048576.0, max_b, max_E, max_B, max_S);
        hn_acts_free(a);
        return NULL;
    }
    Carver real = {a->mem, 0};
    carve_all(a, hn, &real);
    /* keep_from = Lt: no target layer keeps its internals */
    int keep_from = recompute_target ? hn->target.n_layers : hn->cfg.intervention_layer;
    a->target = llama_acts_create(&hn->target, max_b, max_B, keep_from);
    if (!a->target) {
        hn_acts_free(a);
        return NULL;
    }
    return a;
}

HnActs *hn_acts_create(const Hypernet *hn, int max_b, int max_E, int max_B, int max_S)
{
    return create(hn, max_b, max_E, max_B, max_S, 0);
}

HnActs *hn_acts_create_recomputing(const Hypernet *hn, int max_b, int max_E, int max_B, int max_S)
{
    return create(hn, max_b, max_E, max_B, max_S, 1);
}

void hn_acts_free(HnActs *a)
{
    if (!a) return;
    llama_acts_free(a->target);
    free(a->layers);
    free(a->mem);
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
    v->xb = a->xb;
    v->ysrc_minus_xb = a->diff;
    v->new_hidden = a->new_hidden;
    v->logits = a->target->logits;
    v->label_rows = a->label_rows;
    v->label_ids = a->label_ids;
    v->ce = a->ce;
    v->n_label_tokens = a->n_labels;
    if (a->have_backward) {
        v->dW = a->dW;
        v->dhg = a->dhg;
        v->dnew_hidden = a->dnew;
        v->dR = a->dR;
    }
}
