/* The forward of one HyperDAS step (hyperdas(7) 1.3): target states ->
 * G -> head -> selection -> subspace -> intervention at hs[L] -> frozen
 * target layers [L, Lt) -> logits at the label positions -> loss. */
#include <math.h>
#include <string.h>

#include "compute.h"
#include "cpu/rope.h"
#include "base/cli.h"
#include "base/error.h"
#include "hypernet/hypernet_internal.h"

#define IGNORE_LABEL (-100)

/* ---- input checks ---- */

static int check_01(const int *m, size_t n, const char *what, int T)
{
    for (size_t i = 0; i < n; i++)
        if (m[i] != 0 && m[i] != 1)
            return hd_fail("hypernet: %s value %d at row %zu, position %zu (expected 0 or 1)",
                           what, m[i], i / T, i % T);
    return 0;
}

static int check_batch(const Hypernet *hn, const HnActs *a, const HnBatch *x)
{
    const HnDims D = hn_dims(hn);
    if (!x->instr_ids || !x->instr_mask || !x->base_attn_mask || !x->base_intv_mask ||
        !x->src_intv_mask || !x->labels || !x->is_causal || !x->base_states || !x->src_states)
        return hd_fail("hypernet: the batch lacks a required tensor");
    if (x->b < 1 || x->E < 1 || x->B < 2 || x->S < 1 || x->b > a->max_b || x->E > a->max_E ||
        x->B > a->max_B || x->S > a->max_S)
        return hd_fail("hypernet: batch b=%d E=%d B=%d S=%d outside the capacity b=%d E=%d "
                       "B=%d S=%d",
                       x->b, x->E, x->B, x->S, a->max_b, a->max_E, a->max_B, a->max_S);
    const size_t bE = (size_t)x->b * x->E, bB = (size_t)x->b * x->B, bS = (size_t)x->b * x->S;
    if (check_01(x->instr_mask, bE, "instruction mask", x->E) ||
        check_01(x->base_attn_mask, bB, "base attention mask", x->B) ||
        check_01(x->base_intv_mask, bB, "base intervention mask", x->B) ||
        check_01(x->src_intv_mask, bS, "source intervention mask", x->S))
        return -1;
    for (size_t i = 0; i < bE; i++)
        if (x->instr_ids[i] < 0 || x->instr_ids[i] >= D.V)
            return hd_fail("hypernet: instruction token id %d at row %zu, position %zu outside "
                           "the vocabulary of %d",
                           x->instr_ids[i], i / x->E, i % x->E, D.V);
    for (int r = 0; r < x->b; r++)
        if (!x->instr_mask[(size_t)r * x->E + x->E - 1])
            return hd_fail("hypernet: instruction row %d does not end with a real token (empty, "
                           "or padded on the right; the head reads the last position)",
                           r);
    int n = 0;
    for (int r = 0; r < x->b; r++)
        for (int t = 0; t < x->B; t++) {
            int lab = x->labels[(size_t)r * x->B + t];
            if (lab == IGNORE_LABEL) continue;
            if (lab < 0 || lab >= D.V)
                return hd_fail("hypernet: label %d at row %d, position %d outside the vocabulary "
                               "of %d",
                               lab, r, t, D.V);
            if (t == 0)
                return hd_fail("hypernet: label at row %d, position 0 has no predicting position",
                               r);
            n++;
        }
    if (n == 0) return hd_fail("hypernet: the batch has no label token");
    return 0;
}

int hn_batch_label_tokens(const HnBatch *x)
{
    int n = 0;
    for (size_t i = 0; i < (size_t)x->b * x->B; i++) n += x->labels[i] != IGNORE_LABEL;
    return n;
}

/* ---- target states ---- */

/* dst = src / |src| (0 for a zero vector, so that pad rows of a cache that
 * stores zeros stay finite); -1 when src is not finite. */
static int unit_normalise(float *dst, const float *src, int d)
{
    double ss = 0.0;
    for (int i = 0; i < d; i++) ss += (double)src[i] * src[i];
    if (!isfinite(ss)) return -1;
    float n = (float)sqrt(ss);
    for (int i = 0; i < d; i++) dst[i] = n > 0.0f ? src[i] / n : 0.0f;
    return 0;
}

/* Packs the visible (token, layer) states of one kind (see HnKeys). */
static int pack_keys(HnKeys *K, const float *states, const int *intv, int b, int T,
                     const HnDims *D, const float *inv_freq, const char *what)
{
    int N = 1;
    for (int r = 0; r < b; r++) {
        int n = 0;
        for (int t = 0; t < T; t++) n += intv[(size_t)r * T + t];
        if (n * D->nl > N) N = n * D->nl;
    }
    K->N = N;
    for (int r = 0; r < b; r++) {
        int slot = 0;
        for (int t = 0; t < T; t++) {
            if (!intv[(size_t)r * T + t]) continue;
            for (int l = 0; l < D->nl; l++, slot++) {
                size_t dst = (size_t)r * N + slot;
                const float *src = states + (((size_t)r * T + t) * D->nl + l) * D->d;
                if (unit_normalise(K->states + dst * D->d, src, D->d))
                    return hd_fail("hypernet: %s state at row %d, position %d, layer %d is not "
                                   "finite",
                                   what, r, t, l);
                K->mask[dst] = 1;
                K->pos[dst] = slot + 1; /* cumsum(mask)*mask over the flattened sequence */
            }
        }
        for (; slot < N; slot++) {
            size_t dst = (size_t)r * N + slot;
            memset(K->states + dst * D->d, 0, (size_t)D->d * sizeof(float));
            K->mask[dst] = 0;
            K->pos[dst] = 0;
        }
    }
    rope_angles(K->cos, K->sin, K->pos, inv_freq, b * N, D->half);
    return 0;
}

/* rows [n, d] = layer `l` of states [n, nl, d], optionally unit-normalised */
static int gather_layer(float *rows, const float *states, size_t n, int l, const HnDims *D,
                        int normalise, const char *what)
{
    for (size_t i = 0; i < n; i++) {
        const float *src = states + (i * D->nl + l) * D->d;
        float *dst = rows + i * D->d;
        if (normalise) {
            if (unit_normalise(dst, src, D->d))
                return hd_fail("hypernet: %s state %zu at layer %d is not finite", what, i, l);
        } else {
            memcpy(dst, src, (size_t)D->d * sizeof *dst);
        }
    }
    return 0;
}

/* ---- G ---- */

static void self_block_forward(const Hypernet *hn, HnActs *a, const HnAttnWeights *w,
                               HnLayerActs *s, const float *x_in, float *x_out)
{
    const Compute *K = a->K;
    const HnDims D = hn_dims(hn);
    const int b = a->b, E = a->E, N = b * E;
    K->rmsnorm_forward(a->normed, s->rstd_self, x_in, w->norm, N, D.d, hn->target.rms_norm_eps);
    K->matmul_forward(s->q, a->normed, w->wq, NULL, N, D.d, D.qd);
    K->matmul_forward(s->k, a->normed, w->wk, NULL, N, D.d, D.kvd);
    K->matmul_forward(s->v, a->normed, w->wv, NULL, N, D.d, D.kvd);
    K->rope_forward(s->q, a->in.cos_e, a->in.sin_e, N, D.H, D.hd);
    K->rope_forward(s->k, a->in.cos_e, a->in.sin_e, N, D.Hkv, D.hd);
    K->attention_forward(s->ao, s->att, s->q, s->k, s->v, a->in.imask, b, E, E, E, D.H, D.Hkv,
                         D.hd);
    K->matmul_forward(a->branch, s->ao, w->wo, NULL, N, D.qd, D.d);
    K->residual_forward(x_out, x_in, a->branch, (size_t)N * D.d);
}

static void cross_block_forward(const Hypernet *hn, HnActs *a, const HnAttnWeights *w,
                                HnCrossActs *s, const HnKeys *keys, const float *x_in,
                                float *x_out)
{
    const Compute *K = a->K;
    const HnDims D = hn_dims(hn);
    const int b = a->b, E = a->E, N = b * E, NK = b * keys->N;
    K->rmsnorm_forward(a->normed, s->rstd, x_in, w->norm, N, D.d, hn->target.rms_norm_eps);
    K->matmul_forward(s->q, a->normed, w->wq, NULL, N, D.d, D.qd);
    K->rope_forward(s->q, a->in.cos_e, a->in.sin_e, N, D.H, D.hd);
    /* K/V of the target states: no norm on them (hyperdas(7) 3.4) */
    K->matmul_forward(s->kp, keys->states, w->wk, NULL, NK, D.d, D.kvd);
    K->matmul_forward(s->vp, keys->states, w->wv, NULL, NK, D.d, D.kvd);
    K->rope_forward(s->kp, keys->cos, keys->sin, NK, D.Hkv, D.hd);
    K->cross_attention_forward(s->ao, a->xatt, s->q, s->kp, s->vp, a->in.imask, keys->mask, b, E,
                               keys->N, D.H, D.Hkv, D.hd);
    K->matmul_forward(a->branch, s->ao, w->wo, NULL, N, D.qd, D.d);
    K->residual_forward(x_out, x_in, a->branch, (size_t)N * D.d);
}

static void mlp_forward(const Hypernet *hn, HnActs *a, const HnLayerWeights *w, HnLayerActs *s,
                        const float *x_in, float *x_out)
{
    const Compute *K = a->K;
    const HnDims D = hn_dims(hn);
    const int N = a->b * a->E;
    K->rmsnorm_forward(a->normed, s->rstd_post, x_in, w->post_norm, N, D.d,
                       hn->target.rms_norm_eps);
    K->matmul_forward(s->gate, a->normed, w->w_gate, NULL, N, D.d, D.F);
    K->matmul_forward(s->up, a->normed, w->w_up, NULL, N, D.d, D.F);
    K->swiglu_forward(a->act, s->gate, s->up, (size_t)N * D.F);
    K->matmul_forward(a->branch, a->act, w->w_down, NULL, N, D.F, D.d);
    K->residual_forward(x_out, x_in, a->branch, (size_t)N * D.d);
}

static void g_forward(const Hypernet *hn, HnActs *a)
{
    const Compute *K = a->K;
    const HnWeights *W = &a->rep.w;
    const HnDims D = hn_dims(hn);
    const size_t Nd = (size_t)a->b * a->E * D.d;
    K->embedding_forward(a->hres, a->in.ids, W->tok_embed, a->b * a->E, D.V, D.d);
    for (int l = 0; l < D.Lh; l++) {
        const HnLayerWeights *w = &W->layers[l];
        HnLayerActs *s = &a->layers[l];
        const float *x_in = a->hres + (size_t)l * Nd;
        self_block_forward(hn, a, &w->self_attn, s, x_in, s->x1);
        if (hn->cfg.ablate_source_attention)
            K->copy(s->x2, s->x1, Nd * sizeof(float));
        else
            cross_block_forward(hn, a, &w->src_cross, &s->src, &a->in.keys_src, s->x1, s->x2);
        if (hn->cfg.ablate_base_attention)
            K->copy(s->x3, s->x2, Nd * sizeof(float));
        else
            cross_block_forward(hn, a, &w->base_cross, &s->base, &a->in.keys_base, s->x2, s->x3);
        mlp_forward(hn, a, w, s, s->x3, a->hres + (size_t)(l + 1) * Nd);
    }
    K->rmsnorm_forward(a->hg, a->final_rstd, a->hres + (size_t)D.Lh * Nd, W->final_norm,
                       a->b * a->E, D.d, hn->target.rms_norm_eps);
}

/* ---- head ---- */

static void head_forward(const Hypernet *hn, HnActs *a)
{
    const Compute *K = a->K;
    HnInputs *h = &a->host;
    const HnDims D = hn_dims(hn);
    const int b = a->b, B = a->B, S = a->S;
    const HnWeights *w = &a->rep.w;
    for (int r = 0; r < b; r++) {
        K->copy(a->hg_last + (size_t)r * D.d, a->hg + ((size_t)r * a->E + a->E - 1) * D.d,
                (size_t)D.d * sizeof(float));
        h->qpos[r] = h->ipos[(size_t)r * a->E + a->E - 1]; /* cumsum(m)*m at E-1 */
    }
    K->matmul_forward(a->hq, a->hg_last, w->head_wq, NULL, b, D.d, D.qd);
    rope_angles(h->cos_q, h->sin_q, h->qpos, hn->inv_freq, b, D.half);
    K->upload(a->in.cos_q, h->cos_q, (size_t)b * D.half * sizeof(float));
    K->upload(a->in.sin_q, h->sin_q, (size_t)b * D.half * sizeof(float));
    K->rope_forward(a->hq, a->in.cos_q, a->in.sin_q, b, D.H, D.hd);
    /* q_combine [d, 2d] takes concat(base, source): its two column halves */
    K->matmul_forward_strided(a->pb, a->in.yb, w->head_combine, 2 * D.d, b * B, D.d, D.d);
    K->matmul_forward_strided(a->ps, a->in.ysn, w->head_combine + D.d, 2 * D.d, b * S, D.d, D.d);
    K->matmul_forward(a->kb, a->pb, w->head_wk, NULL, b * B, D.d, D.kvd);
    K->matmul_forward(a->ks, a->ps, w->head_wk, NULL, b * S, D.d, D.kvd);
    K->matmul_forward(a->kself, a->in.yb, w->head_wk, NULL, b * B, D.d, D.kvd);
    K->position_head_forward(a->W, a->head_logits, a->hq, a->kb, a->ks, a->kself, a->in.base_intv,
                             a->in.src_intv, a->rep.inv_freq, b, S, B, D.H, D.Hkv, D.hd);
}

/* ---- subspace ---- */

/* out = down(silu(gate(norm(hg_last))) * up(.)), the SwiGLU MLP of
 * ReflectSelect (out width d) and MaskSelect (out width k). */
static void sub_mlp_forward(const Hypernet *hn, HnActs *a, int out_width)
{
    const Compute *K = a->K;
    const HnDims D = hn_dims(hn);
    const HnWeights *w = &a->rep.w;
    const int b = a->b;
    K->rmsnorm_forward(a->sub_normed, a->sub_rstd, a->hg_last, w->sub_norm, b, D.d,
                       hn->cfg.sub_rms_eps);
    K->matmul_forward(a->sub_gate, a->sub_normed, w->sub_gate, NULL, b, D.d, D.SF);
    K->matmul_forward(a->sub_up, a->sub_normed, w->sub_up, NULL, b, D.d, D.SF);
    K->swiglu_forward(a->sub_act, a->sub_gate, a->sub_up, (size_t)b * D.SF);
    K->matmul_forward(a->u, a->sub_act, w->sub_down, NULL, b, D.SF, out_width);
}

static void subspace_forward(const Hypernet *hn, HnActs *a)
{
    const Compute *K = a->K;
    const HnDims D = hn_dims(hn);
    if (hn->cfg.subspace == HN_SUBSPACE_NONE) return;
    /* R from X and Q0: hypernet_rotation where the parameters are */
    K->householder_orthogonal_forward(a->R, a->rep.w.rot_x, a->rep.rot_base, D.d, D.k);
    if (hn->cfg.subspace == HN_SUBSPACE_REFLECT) {
        sub_mlp_forward(hn, a, D.d);
        K->reflect_forward(a->Rp, a->v, a->unorm, a->u, a->R, a->b, D.d, D.k);
    } else if (hn->cfg.subspace == HN_SUBSPACE_MASK) {
        sub_mlp_forward(hn, a, D.k);
        K->sigmoid_forward(a->mask, a->u, a->mask_temperature, (size_t)a->b * D.k);
    }
}

/* The matrix the intervention projects with, and its batch stride. */
static const float *intervention_R(const Hypernet *hn, const HnActs *a, size_t *stride)
{
    const HnDims D = hn_dims(hn);
    *stride = 0;
    switch (hn->cfg.subspace) {
    case HN_SUBSPACE_REFLECT:
        *stride = (size_t)D.d * D.k;
        return a->Rp;
    case HN_SUBSPACE_DAS:
    case HN_SUBSPACE_MASK:
        return a->R;
    default:
        return NULL;
    }
}

/* The DAS method's stand-in for the head's W: each visible base column
 * spreads its weight evenly over the visible source rows and the self row,
 * a hidden column keeps the base.  Nothing is trained through it; it only
 * tells the random control (selection.h) which positions are visible. */
static void uniform_visible(float *W, const int *src_intv, const int *base_intv, int b, int S,
                            int B)
{
    for (int r = 0; r < b; r++) {
        float *w = W + (size_t)r * (S + 1) * B;
        int n_src = 0;
        for (int s = 0; s < S; s++) n_src += src_intv[(size_t)r * S + s] != 0;
        for (int t = 0; t < B; t++) {
            int open = base_intv[(size_t)r * B + t] != 0;
            float share = 1.0f / (float)(n_src + 1);
            for (int s = 0; s < S; s++)
                w[(size_t)s * B + t] = open && src_intv[(size_t)r * S + s] ? share : 0.0f;
            w[(size_t)S * B + t] = open ? share : 1.0f;
        }
    }
}

/* ---- the inputs, prepared on the host ---- */

/* (positions are read on the host only, to make the RoPE tables: they stay there) */
static void upload_keys(const Compute *K, HnKeys *dst, const HnKeys *src, int b, const HnDims *D)
{
    const size_t n = (size_t)b * src->N;
    dst->N = src->N;
    K->upload(dst->states, src->states, n * D->d * sizeof(float));
    K->upload(dst->mask, src->mask, n * sizeof(int));
    K->upload(dst->cos, src->cos, n * D->half * sizeof(float));
    K->upload(dst->sin, src->sin, n * D->half * sizeof(float));
}

/* Checks x and writes everything the ops read, other than parameters, into
 * a->host, then into a's arrays. */
static int prepare_inputs(const Hypernet *hn, HnActs *a, const HnBatch *x, int has_g)
{
    const Compute *K = a->K;
    HnInputs *h = &a->host;
    const HnDims D = hn_dims(hn);
    const int b = x->b, E = x->E, B = x->B, S = x->S;
    const size_t bE = (size_t)b * E, bB = (size_t)b * B, bS = (size_t)b * S;
    memcpy(h->ids, x->instr_ids, bE * sizeof(int));
    memcpy(h->imask, x->instr_mask, bE * sizeof(int));
    for (int r = 0; r < b; r++) { /* G's positions: cumsum(mask), pads 0 (hyperdas(7) 2.4) */
        int c = 0;
        for (int t = 0; t < E; t++) {
            c += h->imask[(size_t)r * E + t];
            h->ipos[(size_t)r * E + t] = c;
        }
    }
    rope_angles(h->cos_e, h->sin_e, h->ipos, hn->inv_freq, (int)bE, D.half);
    memcpy(h->base_intv, x->base_intv_mask, bB * sizeof(int));
    memcpy(h->src_intv, x->src_intv_mask, bS * sizeof(int));
    memcpy(h->base_attn, x->base_attn_mask, bB * sizeof(int));
    if (has_g &&
        (pack_keys(&h->keys_src, x->src_states, h->src_intv, b, S, &D, hn->inv_freq, "source") ||
         pack_keys(&h->keys_base, x->base_states, h->base_intv, b, B, &D, hn->inv_freq, "base")))
        return -1;
    if (gather_layer(h->yb, x->base_states, bB, D.L, &D, 1, "base") ||
        gather_layer(h->ysn, x->src_states, bS, D.L, &D, 1, "source") ||
        gather_layer(h->xb, x->base_states, bB, D.L, &D, 0, "base"))
        return -1;
    if (x->src_ys)
        memcpy(h->ys, x->src_ys, bS * D.d * sizeof(float));
    else
        gather_layer(h->ys, x->src_states, bS, D.L, &D, 0, "source");
    /* a weight of exactly 0 times a non-finite pad state would still be NaN */
    for (size_t i = 0; i < bS * D.d; i++)
        if (!isfinite(h->ys[i]))
            return hd_fail("hypernet: source hidden state for mixing (layer %d) is not finite at "
                           "row %zu, position %zu",
                           D.L, i / D.d / S, i / D.d % S);
    if (x->src_entity_pos && x->base_entity_pos) {
        memcpy(h->src_pos, x->src_entity_pos, (size_t)b * sizeof(int));
        memcpy(h->base_pos, x->base_entity_pos, (size_t)b * sizeof(int));
    }

    const size_t fi = sizeof(int), ff = sizeof(float);
    K->upload(a->in.ids, h->ids, bE * fi);
    K->upload(a->in.imask, h->imask, bE * fi);
    K->upload(a->in.cos_e, h->cos_e, bE * D.half * ff);
    K->upload(a->in.sin_e, h->sin_e, bE * D.half * ff);
    K->upload(a->in.base_intv, h->base_intv, bB * fi);
    K->upload(a->in.src_intv, h->src_intv, bS * fi);
    K->upload(a->in.base_attn, h->base_attn, bB * fi);
    if (has_g) {
        upload_keys(K, &a->in.keys_src, &h->keys_src, b, &D);
        upload_keys(K, &a->in.keys_base, &h->keys_base, b, &D);
    }
    K->upload(a->in.yb, h->yb, bB * D.d * ff);
    K->upload(a->in.ysn, h->ysn, bS * D.d * ff);
    K->upload(a->in.xb, h->xb, bB * D.d * ff);
    K->upload(a->in.ys, h->ys, bS * D.d * ff);
    K->upload(a->in.src_pos, h->src_pos, (size_t)b * fi);
    K->upload(a->in.base_pos, h->base_pos, (size_t)b * fi);
    return 0;
}

/* ---- the whole step ---- */

int hypernet_forward(Hypernet *hn, HnActs *a, const LlamaModel *target, const HnBatch *x,
                     const HnOptions *opt, HnLoss *loss)
{
    if (!target) return hd_fail("hypernet forward: missing argument");
    LlamaView tv = llama_view_cpu(target);
    return hypernet_forward_view(hn, a, &tv, x, opt, loss);
}

int hypernet_forward_view(Hypernet *hn, HnActs *a, const LlamaView *target, const HnBatch *x,
                          const HnOptions *opt, HnLoss *loss)
{
    if (!hn || !a || !target || !x || !opt) return hd_fail("hypernet forward: missing argument");
    const HnDims D = hn_dims(hn);
    if (target->cfg.hidden_size != D.d || target->cfg.n_layers != D.Lt ||
        target->cfg.vocab_size != D.V)
        return hd_fail("hypernet forward: the target model does not match the hypernetwork's");
    if (target->K != a->K)
        return hd_fail("hypernet forward: the target is on %s, the activations on %s",
                       target->K->name, a->K->name);
    const Compute *K = a->K;
    HnInputs *h = &a->host;
    a->have_forward = a->have_backward = 0;
    hn_acts_sync_replica(a, hn);
    if (check_batch(hn, a, x)) return -1;
    if (hn->cfg.subspace == HN_SUBSPACE_MASK && !(opt->mask_temperature > 0.0f))
        return hd_fail("hypernet forward: MaskSelect temperature %g is not positive",
                       opt->mask_temperature);
    const int b = x->b, E = x->E, B = x->B, S = x->S;
    /* the global batch this one is a share of (HnOptions); alone: itself */
    const int n_local = hn_batch_label_tokens(x);
    const int n_norm = opt->global_label_tokens > 0 ? opt->global_label_tokens : n_local;
    const int b_norm = opt->global_examples > 0 ? opt->global_examples : b;
    if (n_norm < n_local || b_norm < b)
        return hd_fail("hypernet forward: the global batch (%d examples, %d label tokens) is "
                       "smaller than this share of it (%d, %d)",
                       b_norm, n_norm, b, n_local);
    a->b = b, a->E = E, a->B = B, a->S = S;
    a->lambda = opt->sparsity_weight;
    if (b_norm != b) a->lambda *= (float)b / (float)b_norm;
    a->mask_temperature = opt->mask_temperature;
    a->soft = opt->mode == SELECT_SOFT;

    const int has_g = hn->cfg.method == HN_METHOD_HYPERDAS;
    const double t_in = hd_now_seconds();
    if (prepare_inputs(hn, a, x, has_g)) return -1;
    a->input_seconds = hd_now_seconds() - t_in;

    /* G, head, selection, subspace.  DAS: fixed positions, so "soft" (the
     * training mode) means the entity tokens; W is only the visibility
     * pattern that the random control draws from, with no gradient. */
    SelectionMode mode = opt->mode;
    if (has_g) {
        g_forward(hn, a);
        head_forward(hn, a);
    } else {
        uniform_visible(a->host_W, h->src_intv, h->base_intv, b, S, B);
        K->upload(a->W, a->host_W, (size_t)b * (S + 1) * B * sizeof(float));
        if (mode == SELECT_SOFT) mode = SELECT_GROUNDTRUTH;
        a->soft = 0;
    }
    const int have_pos = x->src_entity_pos && x->base_entity_pos;
    if (mode == SELECT_GROUNDTRUTH && !have_pos)
        return hd_fail("hypernet forward: the groundtruth selection needs entity positions");
    K->selection_forward(a->W_used, a->W, mode, opt->bidding_threshold,
                         have_pos ? a->in.src_pos : NULL, have_pos ? a->in.base_pos : NULL, b,
                         S, B);
    subspace_forward(hn, a);

    /* intervention and the frozen target layers [L, Lt) */
    size_t stride;
    const float *R = intervention_R(hn, a, &stride);
    K->intervention_forward(a->new_hidden, a->diff, a->proj, a->in.xb, a->in.ys, a->W_used, R,
                            stride,
                            hn->cfg.subspace == HN_SUBSPACE_MASK ? a->mask : NULL, b, S, B, D.d,
                            D.k, a->work);
    if (K->status()) return hd_fail_prefix("hypernet forward: ");
    if (llama_view_forward_range(target, a->target, NULL, a->new_hidden, x->base_attn_mask, NULL,
                                 b, B, D.L, D.Lt))
        return hd_fail_prefix("hypernet forward: ");

    /* loss: the logit at position t predicts the label at t+1 (hyperdas(7) 2.3) */
    int n = 0;
    for (int r = 0; r < b; r++)
        for (int t = 0; t + 1 < B; t++) {
            int lab = x->labels[(size_t)r * B + t + 1];
            if (lab == IGNORE_LABEL) continue;
            h->label_rows[n] = r * B + t;
            h->label_ids[n] = lab;
            h->label_w[n] = x->is_causal[r] ? opt->causal_weight : opt->iso_weight;
            n++;
        }
    a->n_labels = n;
    for (int i = 0; i < n; i++) h->label_w[i] /= (float)n_norm;
    K->upload(a->in.label_rows, h->label_rows, (size_t)n * sizeof(int));
    K->upload(a->in.label_ids, h->label_ids, (size_t)n * sizeof(int));
    K->upload(a->in.label_w, h->label_w, (size_t)n * sizeof(float));
    if (llama_view_forward_logits(target, a->target, h->label_rows, n))
        return hd_fail_prefix("hypernet forward: ");
    K->softmax_xent_forward(a->ce, a->probs, a->target->logits, a->in.label_ids, n, D.V);
    K->download(a->host_ce, a->ce, (size_t)n * sizeof(float));
    float sp = 0.0f; /* mean over b */
    if (has_g) K->sparsity_loss_forward(&sp, a->W, b, S, B);
    if (K->status()) return hd_fail_prefix("hypernet forward: ");
    double pred = 0.0;
    for (int i = 0; i < n; i++) pred += (double)h->label_w[i] * a->host_ce[i];
    if (b_norm != b) sp = (float)((double)sp * b / b_norm);
    loss->pred = (float)pred;
    loss->sparsity = sp;
    loss->total = (float)pred + opt->sparsity_weight * sp;
    loss->n_label_tokens = n;
    if (!isfinite(loss->total))
        return hd_fail("hypernet forward: the loss is not finite (%g)", loss->total);
    a->have_forward = 1;
    return 0;
}
