/* The activation backward of the Llama forward (llama_forward.h): frozen
 * target layers passing gradients back to an intervention, with weight
 * gradients on the CPU when asked (tests).  Same op table as the forward. */
#include <stdlib.h>

#include "compute.h"
#include "base/error.h"
#include "model/llama_forward_internal.h"

/* The backward's scratch: gradients of one layer's internals. */
typedef struct {
    float *dnormed;    /* [N, d] */
    float *dact;       /* [N, F] */
    float *dgate;      /* [N, F] */
    float *dup;        /* [N, F] */
    float *datt;       /* [N, qd] dL/d att_out, later dL/dq before RoPE */
    float *dq_rot;     /* [N, qd] */
    float *dk_rot;     /* [N, kvd] */
    float *dk;         /* [N, kvd] */
    float *dv;         /* [N, kvd] */
    float *recomputed; /* [N, d] output of a recomputed layer (discarded) */
} LayerGrads;

size_t llama_backward_scratch_bytes(const LlamaConfig *cfg, int max_b, int max_T)
{
    const Dims D = dims_of(cfg);
    const size_t N = (size_t)max_b * max_T;
    return N * (2 * (size_t)D.d + 3 * (size_t)D.F + 2 * (size_t)D.qd + 3 * (size_t)D.kvd) *
           sizeof(float);
}

static int layer_grads(LlamaActivations *a, LayerGrads *g)
{
    const Dims D = dims_of(&a->cfg);
    const size_t N = (size_t)a->max_b * a->max_T;
    if (!a->grad_mem)
        a->grad_mem = a->K->alloc(llama_backward_scratch_bytes(&a->cfg, a->max_b, a->max_T));
    if (!a->grad_mem) return hd_fail_prefix("llama backward: ");
    float *cur = a->grad_mem;
    g->dnormed = carve(&cur, N * D.d);
    g->dact = carve(&cur, N * D.F);
    g->dgate = carve(&cur, N * D.F);
    g->dup = carve(&cur, N * D.F);
    g->datt = carve(&cur, N * D.qd);
    g->dq_rot = carve(&cur, N * D.qd);
    g->dk_rot = carve(&cur, N * D.kvd);
    g->dk = carve(&cur, N * D.kvd);
    g->dv = carve(&cur, N * D.kvd);
    g->recomputed = carve(&cur, N * D.d);
    return 0;
}

/* dL/d of a projection's input: with weight gradients (fp32 weights, the
 * CPU only) the trainable matmul, else the frozen one. */
static void projection_backward(const Compute *K, float *dinp, float *dweight, const float *dout,
                                const float *inp, const void *weight, int N, int C, int OC)
{
    if (dweight)
        K->matmul_backward(dinp, dweight, NULL, dout, inp, weight, N, C, OC);
    else
        K->frozen_matmul_backward(dinp, dout, weight, N, C, OC);
}

/* dx: dL/dx_out on entry, dL/dx_in on return (x_out = x_in + attn + mlp). */
static void layer_backward(const LlamaView *view, int layer, float *dx, const float *x_in,
                           const LlamaLayerActs *s, const LlamaLayerWeights *gw,
                           LlamaActivations *a, const LayerGrads *g)
{
    const Compute *K = view->K;
    const LlamaConfig *c = &view->cfg;
    const Dims D = dims_of(c);
    const LlamaLayerView w = llama_view_layer(view, layer);
    const int b = a->b, T = a->T, N = b * T;
    const size_t Nd = (size_t)N * D.d, NF = (size_t)N * D.F, f = sizeof(float);
    float *normed = a->scratch.normed, *act = a->scratch.act;
    /* Inputs of the projections are only needed for weight gradients; they
     * are recomputed from what the forward kept. */
    const int want_w = gw != NULL;

    /* MLP: x_out = resid_mid + down(silu(gate) * up), gate/up = W norm(resid_mid) */
    if (want_w) K->swiglu_forward(act, s->gate, s->up, NF);
    K->zero(g->dact, NF * f);
    projection_backward(K, g->dact, want_w ? gw->w_down : NULL, dx, act, w.w_down, N, D.F, D.d);
    K->zero(g->dgate, NF * f);
    K->zero(g->dup, NF * f);
    K->swiglu_backward(g->dgate, g->dup, g->dact, s->gate, s->up, NF);
    if (want_w)
        K->rmsnorm_forward(normed, NULL, s->resid_mid, w.ffn_norm, N, D.d, c->rms_norm_eps);
    K->zero(g->dnormed, Nd * f);
    projection_backward(K, g->dnormed, want_w ? gw->w_gate : NULL, g->dgate, normed, w.w_gate, N,
                        D.d, D.F);
    projection_backward(K, g->dnormed, want_w ? gw->w_up : NULL, g->dup, normed, w.w_up, N, D.d,
                        D.F);
    /* dx passes the residual unchanged and gains the norm's share: now dL/d resid_mid */
    K->rmsnorm_backward(dx, want_w ? gw->ffn_norm : NULL, g->dnormed, s->resid_mid, w.ffn_norm,
                        s->rstd2, N, D.d);

    /* attention: resid_mid = x_in + o(attention(rope(q), rope(k), v)) */
    K->zero(g->datt, (size_t)N * D.qd * f);
    projection_backward(K, g->datt, want_w ? gw->wo : NULL, dx, s->att_out, w.wo, N, D.qd, D.d);
    K->zero(g->dq_rot, (size_t)N * D.qd * f);
    K->zero(g->dk_rot, (size_t)N * D.kvd * f);
    K->zero(g->dv, (size_t)N * D.kvd * f);
    K->attention_backward(g->dq_rot, g->dk_rot, g->dv, g->datt, s->att, s->q, s->k, s->v, b, T,
                          T, T, D.H, D.Hkv, D.hd);
    float *dq = g->datt; /* att_out's gradient is spent: reuse its buffer */
    K->zero(dq, (size_t)N * D.qd * f);
    K->zero(g->dk, (size_t)N * D.kvd * f);
    K->rope_backward(dq, g->dq_rot, a->rope_cos, a->rope_sin, N, D.H, D.hd);
    K->rope_backward(g->dk, g->dk_rot, a->rope_cos, a->rope_sin, N, D.Hkv, D.hd);
    if (want_w) K->rmsnorm_forward(normed, NULL, x_in, w.attn_norm, N, D.d, c->rms_norm_eps);
    K->zero(g->dnormed, Nd * f);
    projection_backward(K, g->dnormed, want_w ? gw->wq : NULL, dq, normed, w.wq, N, D.d, D.qd);
    projection_backward(K, g->dnormed, want_w ? gw->wk : NULL, g->dk, normed, w.wk, N, D.d,
                        D.kvd);
    projection_backward(K, g->dnormed, want_w ? gw->wv : NULL, g->dv, normed, w.wv, N, D.d,
                        D.kvd);
    K->rmsnorm_backward(dx, want_w ? gw->attn_norm : NULL, g->dnormed, x_in, w.attn_norm,
                        s->rstd1, N, D.d);
}

int llama_backward_range(const LlamaModel *m, LlamaActivations *a, float *dresid, int from,
                         int to, const LlamaLayerWeights *grads)
{
    if (!m) return hd_fail("llama forward: no model or no activations");
    LlamaView v = llama_view_cpu(m);
    return llama_view_backward_range(&v, a, dresid, from, to, grads);
}

int llama_view_backward_range(const LlamaView *v, LlamaActivations *a, float *dresid, int from,
                              int to, const LlamaLayerWeights *grads)
{
    if (llama_check_view(v, a)) return -1;
    const int L = v->cfg.n_layers;
    if (from < 0 || to > L || from > to)
        return hd_fail("llama backward: bad layer range [%d, %d) of %d layers", from, to, L);
    if (grads && v->K->on_device)
        return hd_fail("llama backward: weight gradients of the target are CPU-only");
    if (llama_view_check_layers(v, from, to)) return -1;
    for (int l = from; l < to; l++)
        if (!a->layer_done[l])
            return hd_fail("llama backward: layer %d has not been run forward on this batch", l);
    if (from == to) return 0;
    LayerGrads g = {0};
    if (layer_grads(a, &g)) return -1;
    for (int l = to - 1; l >= from; l--) {
        const LlamaLayerActs *s = &a->layers[l];
        if (l < a->keep_from) {
            /* Not kept: rerun the layer from its input into the transient set. */
            LlamaLayerView w = llama_view_layer(v, l);
            llama_layer_forward_on(v->K, &v->cfg, &w, g.recomputed, llama_residual(a, l),
                                   &a->transient, &a->scratch, a->rope_cos, a->rope_sin,
                                   a->mask_k, NULL, a->b, a->T);
            s = &a->transient;
        }
        layer_backward(v, l, dresid, llama_residual(a, l), s, grads ? &grads[l] : NULL, a, &g);
    }
    if (v->K->status()) return hd_fail_prefix("llama backward: ");
    return 0;
}

int llama_backward_final_norm(const LlamaModel *m, LlamaActivations *a, const float *dnormed,
                              float *dresid)
{
    if (!m) return hd_fail("llama forward: no model or no activations");
    LlamaView v = llama_view_cpu(m);
    return llama_view_backward_final_norm(&v, a, dnormed, dresid);
}

int llama_view_backward_final_norm(const LlamaView *v, LlamaActivations *a,
                                   const float *dnormed, float *dresid)
{
    if (llama_check_view(v, a)) return -1;
    if (!a->final_done)
        return hd_fail("llama backward: the forward has not reached the final norm on this batch");
    const int L = v->cfg.n_layers;
    v->K->rmsnorm_backward(dresid, NULL, dnormed, llama_residual(a, L), v->final_norm,
                           a->final_rstd, a->b * a->T, v->cfg.hidden_size);
    if (v->K->status()) return hd_fail_prefix("llama backward: ");
    return 0;
}

int llama_backward_logits(const LlamaModel *m, LlamaActivations *a, const float *dlogits,
                          float *dnormed)
{
    if (!m) return hd_fail("llama forward: no model or no activations");
    LlamaView v = llama_view_cpu(m);
    return llama_view_backward_logits(&v, a, dlogits, dnormed);
}

int llama_view_backward_logits(const LlamaView *v, LlamaActivations *a, const float *dlogits,
                               float *dnormed)
{
    if (llama_check_view(v, a)) return -1;
    if (!a->final_done || a->n_logit_rows < 1)
        return hd_fail("llama backward: no logits were computed on this batch");
    const Compute *K = v->K;
    const Dims D = dims_of(&v->cfg);
    /* logit_in (the gathered forward input) is not needed any more with a
     * frozen LM head: it receives the gathered gradient. */
    float *tmp = a->logit_in;
    K->zero(tmp, (size_t)a->n_logit_rows * D.d * sizeof(float));
    K->frozen_matmul_backward(tmp, dlogits, v->lm_head, a->n_logit_rows, D.d, D.V);
    for (int i = 0; i < a->n_logit_rows; i++) {
        float *dst = dnormed + (size_t)a->logit_rows[i] * D.d;
        K->residual_forward(dst, dst, tmp + (size_t)i * D.d, (size_t)D.d);
    }
    if (K->status()) return hd_fail_prefix("llama backward: ");
    return 0;
}
