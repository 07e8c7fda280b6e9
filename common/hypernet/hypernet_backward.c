/* The backward of one HyperDAS step, in the reverse order of
 * hypernet_forward.c: loss -> frozen target layers (activations only) ->
 * intervention -> subspace and head -> G -> embedding.  Every kernel ADDS
 * its gradients, so each scratch buffer is zeroed right before it
 * receives one; the parameter gradients accumulate into the replica's
 * (on the CPU: hn->grads).  Same op table as the forward (compute.h). */
#include <string.h>

#include "compute.h"
#include "base/error.h"
#include "hypernet/hypernet_internal.h"

static void zero(const HnActs *a, float *p, size_t n)
{
    a->K->zero(p, n * sizeof *p);
}

/* ---- G ---- */

/* dx: dL/d x_out on entry, dL/d x_in on return (x_out = x_in + mlp(norm(x_in))). */
static void mlp_backward(const Hypernet *hn, HnActs *a, const HnLayerWeights *w,
                         HnLayerWeights *g, const HnLayerActs *s, const float *x_in, float *dx)
{
    const Compute *K = a->K;
    const HnDims D = hn_dims(hn);
    const int N = a->b * a->E;
    const size_t NF = (size_t)N * D.F;
    /* recompute what the forward did not keep: the normed input and silu(gate)*up */
    K->rmsnorm_forward(a->normed, NULL, x_in, w->post_norm, N, D.d, hn->target.rms_norm_eps);
    K->swiglu_forward(a->act, s->gate, s->up, NF);
    zero(a, a->dact, NF);
    K->matmul_backward(a->dact, g->w_down, NULL, dx, a->act, w->w_down, N, D.F, D.d);
    zero(a, a->dgate, NF);
    zero(a, a->dup, NF);
    K->swiglu_backward(a->dgate, a->dup, a->dact, s->gate, s->up, NF);
    zero(a, a->dnormed, (size_t)N * D.d);
    K->matmul_backward(a->dnormed, g->w_gate, NULL, a->dgate, a->normed, w->w_gate, N, D.d, D.F);
    K->matmul_backward(a->dnormed, g->w_up, NULL, a->dup, a->normed, w->w_up, N, D.d, D.F);
    K->rmsnorm_backward(dx, g->post_norm, a->dnormed, x_in, w->post_norm, s->rstd_post, N, D.d);
}

static void cross_block_backward(const Hypernet *hn, HnActs *a, const HnAttnWeights *w,
                                 HnAttnWeights *g, const HnCrossActs *s, const HnKeys *keys,
                                 const float *x_in, float *dx)
{
    const Compute *K = a->K;
    const HnDims D = hn_dims(hn);
    const int b = a->b, E = a->E, N = b * E, NK = b * keys->N;
    zero(a, a->dao, (size_t)N * D.qd);
    K->matmul_backward(a->dao, g->wo, NULL, dx, s->ao, w->wo, N, D.qd, D.d);
    /* the probabilities again, from the kept q, k and v: the same kernel on
     * the same inputs, so the same bits (the output goes to dq, which is
     * cleared before its use below) */
    K->cross_attention_forward(a->dq, a->xatt, s->q, s->kp, s->vp, a->in.imask, keys->mask, b, E,
                               keys->N, D.H, D.Hkv, D.hd);
    zero(a, a->dq_rot, (size_t)N * D.qd);
    zero(a, a->dk_rot, (size_t)NK * D.kvd);
    zero(a, a->dv, (size_t)NK * D.kvd);
    K->cross_attention_backward(a->dq_rot, a->dk_rot, a->dv, a->dao, a->xatt, s->q, s->kp, s->vp,
                                b, E, keys->N, D.H, D.Hkv, D.hd);
    zero(a, a->dq, (size_t)N * D.qd);
    K->rope_backward(a->dq, a->dq_rot, a->in.cos_e, a->in.sin_e, N, D.H, D.hd);
    zero(a, a->dk, (size_t)NK * D.kvd);
    K->rope_backward(a->dk, a->dk_rot, keys->cos, keys->sin, NK, D.Hkv, D.hd);
    /* the keys/values are constants: only their projections' weights learn */
    K->matmul_backward(NULL, g->wk, NULL, a->dk, keys->states, w->wk, NK, D.d, D.kvd);
    K->matmul_backward(NULL, g->wv, NULL, a->dv, keys->states, w->wv, NK, D.d, D.kvd);
    K->rmsnorm_forward(a->normed, NULL, x_in, w->norm, N, D.d, hn->target.rms_norm_eps);
    zero(a, a->dnormed, (size_t)N * D.d);
    K->matmul_backward(a->dnormed, g->wq, NULL, a->dq, a->normed, w->wq, N, D.d, D.qd);
    K->rmsnorm_backward(dx, g->norm, a->dnormed, x_in, w->norm, s->rstd, N, D.d);
}

static void self_block_backward(const Hypernet *hn, HnActs *a, const HnAttnWeights *w,
                                HnAttnWeights *g, const HnLayerActs *s, const float *x_in,
                                float *dx)
{
    const Compute *K = a->K;
    const HnDims D = hn_dims(hn);
    const int b = a->b, E = a->E, N = b * E;
    zero(a, a->dao, (size_t)N * D.qd);
    K->matmul_backward(a->dao, g->wo, NULL, dx, s->ao, w->wo, N, D.qd, D.d);
    zero(a, a->dq_rot, (size_t)N * D.qd);
    zero(a, a->dk_rot, (size_t)N * D.kvd);
    zero(a, a->dv, (size_t)N * D.kvd);
    K->attention_backward(a->dq_rot, a->dk_rot, a->dv, a->dao, s->att, s->q, s->k, s->v, b, E, E,
                          E, D.H, D.Hkv, D.hd);
    zero(a, a->dq, (size_t)N * D.qd);
    K->rope_backward(a->dq, a->dq_rot, a->in.cos_e, a->in.sin_e, N, D.H, D.hd);
    zero(a, a->dk, (size_t)N * D.kvd);
    K->rope_backward(a->dk, a->dk_rot, a->in.cos_e, a->in.sin_e, N, D.Hkv, D.hd);
    K->rmsnorm_forward(a->normed, NULL, x_in, w->norm, N, D.d, hn->target.rms_norm_eps);
    zero(a, a->dnormed, (size_t)N * D.d);
    K->matmul_backward(a->dnormed, g->wq, NULL, a->dq, a->normed, w->wq, N, D.d, D.qd);
    K->matmul_backward(a->dnormed, g->wk, NULL, a->dk, a->normed, w->wk, N, D.d, D.kvd);
    K->matmul_backward(a->dnormed, g->wv, NULL, a->dv, a->normed, w->wv, N, D.d, D.kvd);
    K->rmsnorm_backward(dx, g->norm, a->dnormed, x_in, w->norm, s->rstd_self, N, D.d);
}

/* dhg [bE, d] -> every G weight */
static void g_backward(Hypernet *hn, HnActs *a)
{
    const Compute *K = a->K;
    const HnWeights *W = &a->rep.w;
    HnWeights *G = &a->rep.g;
    const HnDims D = hn_dims(hn);
    const int N = a->b * a->E;
    const size_t Nd = (size_t)N * D.d;
    zero(a, a->dh, Nd);
    K->rmsnorm_backward(a->dh, G->final_norm, a->dhg, a->hres + (size_t)D.Lh * Nd, W->final_norm,
                        a->final_rstd, N, D.d);
    for (int l = D.Lh - 1; l >= 0; l--) {
        const HnLayerWeights *w = &W->layers[l];
        HnLayerWeights *g = &G->layers[l];
        const HnLayerActs *s = &a->layers[l];
        mlp_backward(hn, a, w, g, s, s->x3, a->dh);
        if (!hn->cfg.ablate_base_attention)
            cross_block_backward(hn, a, &w->base_cross, &g->base_cross, &s->base, &a->in.keys_base,
                                 s->x2, a->dh);
        if (!hn->cfg.ablate_source_attention)
            cross_block_backward(hn, a, &w->src_cross, &g->src_cross, &s->src, &a->in.keys_src,
                                 s->x1, a->dh);
        self_block_backward(hn, a, &w->self_attn, &g->self_attn, s, a->hres + (size_t)l * Nd,
                            a->dh);
    }
    hn_mark_embed_rows(hn, a->host.ids, N);
    K->embedding_backward(G->tok_embed, a->dh, a->in.ids, N, D.V, D.d);
}

/* ---- head ---- */

/* dW -> head weights, and dhg_last += the query's share */
static void head_backward(Hypernet *hn, HnActs *a)
{
    const Compute *K = a->K;
    const HnDims D = hn_dims(hn);
    const int b = a->b, B = a->B, S = a->S;
    const HnWeights *w = &a->rep.w;
    HnWeights *g = &a->rep.g;
    zero(a, a->dhq, (size_t)b * D.qd);
    zero(a, a->dkb, (size_t)b * B * D.kvd);
    zero(a, a->dks, (size_t)b * S * D.kvd);
    zero(a, a->dkself, (size_t)b * B * D.kvd);
    K->position_head_backward(a->dhq, a->dkb, a->dks, a->dkself, a->dW, a->W, a->hq, a->kb, a->ks,
                              a->kself, a->in.base_intv, a->in.src_intv, a->rep.inv_freq, b, S,
                              B, D.H, D.Hkv, D.hd);
    zero(a, a->dhq_pre, (size_t)b * D.qd);
    K->rope_backward(a->dhq_pre, a->dhq, a->in.cos_q, a->in.sin_q, b, D.H, D.hd);
    K->matmul_backward(a->dhg_last, g->head_wq, NULL, a->dhq_pre, a->hg_last, w->head_wq, b, D.d,
                       D.qd);
    zero(a, a->dpb, (size_t)b * B * D.d);
    zero(a, a->dps, (size_t)b * S * D.d);
    K->matmul_backward(a->dpb, g->head_wk, NULL, a->dkb, a->pb, w->head_wk, b * B, D.d, D.kvd);
    K->matmul_backward(a->dps, g->head_wk, NULL, a->dks, a->ps, w->head_wk, b * S, D.d, D.kvd);
    K->matmul_backward(NULL, g->head_wk, NULL, a->dkself, a->in.yb, w->head_wk, b * B, D.d, D.kvd);
    /* the two column halves of q_combine [d, 2d] (base, source) */
    K->matmul_backward_strided(g->head_combine, a->dpb, a->in.yb, 2 * D.d, b * B, D.d, D.d);
    K->matmul_backward_strided(g->head_combine + D.d, a->dps, a->in.ysn, 2 * D.d, b * S, D.d, D.d);
}

/* ---- subspace ---- */

/* du [b, out_width] -> the MLP's weights and its norm, dhg_last += */
static void sub_mlp_backward(Hypernet *hn, HnActs *a, int out_width)
{
    const Compute *K = a->K;
    const HnDims D = hn_dims(hn);
    const HnWeights *w = &a->rep.w;
    HnWeights *g = &a->rep.g;
    const int b = a->b;
    const size_t bF = (size_t)b * D.SF;
    zero(a, a->dsub_act, bF);
    K->matmul_backward(a->dsub_act, g->sub_down, NULL, a->du, a->sub_act, w->sub_down, b, D.SF,
                       out_width);
    zero(a, a->dsub_gate, bF);
    zero(a, a->dsub_up, bF);
    K->swiglu_backward(a->dsub_gate, a->dsub_up, a->dsub_act, a->sub_gate, a->sub_up, bF);
    zero(a, a->dsub_normed, (size_t)b * D.d);
    K->matmul_backward(a->dsub_normed, g->sub_gate, NULL, a->dsub_gate, a->sub_normed, w->sub_gate,
                       b, D.d, D.SF);
    K->matmul_backward(a->dsub_normed, g->sub_up, NULL, a->dsub_up, a->sub_normed, w->sub_up, b,
                       D.d, D.SF);
    K->rmsnorm_backward(a->dhg_last, g->sub_norm, a->dsub_normed, a->hg_last, w->sub_norm,
                        a->sub_rstd, b, D.d);
}

static void subspace_backward(Hypernet *hn, HnActs *a)
{
    const Compute *K = a->K;
    const HnDims D = hn_dims(hn);
    const int b = a->b;
    switch (hn->cfg.subspace) {
    case HN_SUBSPACE_REFLECT:
        zero(a, a->du, (size_t)b * D.d);
        K->reflect_backward(a->du, a->dR, a->dRp, a->v, a->unorm, a->R, b, D.d, D.k);
        sub_mlp_backward(hn, a, D.d);
        break;
    case HN_SUBSPACE_MASK:
        /* m = sigmoid(u / tau) => du = dm m (1 - m) / tau */
        zero(a, a->du, (size_t)b * D.k);
        K->sigmoid_backward(a->du, a->dmask, a->mask, a->mask_temperature, (size_t)b * D.k);
        sub_mlp_backward(hn, a, D.k);
        break;
    default:
        break;
    }
    if (hn->cfg.subspace != HN_SUBSPACE_NONE)
        K->householder_orthogonal_backward(a->rep.g.rot_x, a->dR, a->rep.w.rot_x,
                                           a->rep.rot_base, D.d, D.k);
}

/* ---- the whole step ---- */

int hypernet_backward(Hypernet *hn, HnActs *a, const LlamaModel *target)
{
    if (!target) return hd_fail("hypernet backward: missing argument");
    LlamaView tv = llama_view_cpu(target);
    return hypernet_backward_view(hn, a, &tv);
}

int hypernet_backward_view(Hypernet *hn, HnActs *a, const LlamaView *target)
{
    if (!hn || !a || !target) return hd_fail("hypernet backward: missing argument");
    if (!a->have_forward)
        return hd_fail("hypernet backward: no successful forward to go back through");
    const Compute *K = a->K;
    const HnDims D = hn_dims(hn);
    const int b = a->b, B = a->B, S = a->S, n = a->n_labels;
    const size_t bB = (size_t)b * B, P = (size_t)(S + 1) * B;
    hn_acts_sync_replica(a, hn);

    /* loss -> logits -> final norm -> target layers [L, Lt) -> new hs[L] */
    zero(a, a->dlogits, (size_t)n * D.V);
    K->softmax_xent_backward(a->dlogits, a->in.label_w, a->probs, a->in.label_ids, n, D.V);
    zero(a, a->dnormed_t, bB * D.d);
    zero(a, a->dnew, bB * D.d);
    if (llama_view_backward_logits(target, a->target, a->dlogits, a->dnormed_t) ||
        llama_view_backward_final_norm(target, a->target, a->dnormed_t, a->dnew) ||
        llama_view_backward_range(target, a->target, a->dnew, D.L, D.Lt, NULL))
        return hd_fail_prefix("hypernet backward: ");

    /* intervention -> dW, dR (or dR'), dmask */
    size_t stride = 0;
    const float *R = NULL;
    float *dR = NULL;
    if (hn->cfg.subspace == HN_SUBSPACE_REFLECT) {
        R = a->Rp, stride = (size_t)D.d * D.k, dR = a->dRp;
        zero(a, a->dRp, (size_t)b * D.d * D.k);
    } else if (hn->cfg.subspace != HN_SUBSPACE_NONE) {
        R = a->R, dR = a->dR;
    }
    if (hn->cfg.subspace != HN_SUBSPACE_NONE) zero(a, a->dR, (size_t)D.d * D.k);
    zero(a, a->dW, (size_t)b * P);
    if (hn->cfg.subspace == HN_SUBSPACE_MASK) zero(a, a->dmask, (size_t)b * D.k);
    /* hard selections have no gradient (hyperdas(7) 4): W then only feeds the sparsity term */
    K->intervention_backward(a->soft ? a->dW : NULL, dR,
                             hn->cfg.subspace == HN_SUBSPACE_MASK ? a->dmask : NULL, NULL,
                             a->dnew, a->diff, a->proj, a->in.xb, a->in.ys, a->W_used, R, stride,
                             hn->cfg.subspace == HN_SUBSPACE_MASK ? a->mask : NULL, b, S, B, D.d,
                             D.k, a->work);
    if (a->lambda != 0.0f) K->sparsity_loss_backward(a->dW, a->W, a->lambda, b, S, B);

    /* subspace and head -> dhg_last; G from dhg (the DAS method: R only) */
    zero(a, a->dhg_last, (size_t)b * D.d);
    subspace_backward(hn, a);
    if (hn->cfg.method == HN_METHOD_HYPERDAS) {
        head_backward(hn, a);
        zero(a, a->dhg, (size_t)b * a->E * D.d);
        for (int r = 0; r < b; r++)
            K->copy(a->dhg + ((size_t)r * a->E + a->E - 1) * D.d, a->dhg_last + (size_t)r * D.d,
                    (size_t)D.d * sizeof(float));
        g_backward(hn, a);
    }
    if (K->status()) return hd_fail_prefix("hypernet backward: ");
    a->have_backward = 1;
    return 0;
}
