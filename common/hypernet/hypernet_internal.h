/* What the hypernetwork's forward keeps for its backward (shared by
 * hypernet_acts.c, hypernet_forward.c and hypernet_backward.c only). */
#ifndef HD_HYPERNET_INTERNAL_H
#define HD_HYPERNET_INTERNAL_H

#include "compute.h"
#include "hypernet/hypernet.h"

/* One cross-attention block's internals.  Keys/values are the packed
 * visible target states of the batch (see HnKeys). */
typedef struct {
    float *rstd; /* [bE] */
    float *q;    /* [bE, qd] after RoPE */
    float *kp;   /* [b*Nv, kvd] after RoPE */
    float *vp;   /* [b*Nv, kvd] */
    float *ao;   /* [bE, qd] attention output, input of o_proj */
} HnCrossActs;

typedef struct {
    /* self-attention */
    float *rstd_self; /* [bE] */
    float *q, *k, *v; /* [bE, qd], [bE, kvd] x2 (q, k after RoPE) */
    float *att;       /* [b, H, E, E] */
    float *ao;        /* [bE, qd] */
    HnCrossActs src, base;
    /* MLP */
    float *rstd_post; /* [bE] */
    float *gate, *up; /* [bE, F] */
    /* residual stream: x_in = hres[l]; x1 after self-attention, x2 after
     * the source cross block, x3 after the base cross block; the output is
     * hres[l+1] */
    float *x1, *x2, *x3; /* [bE, d] */
} HnLayerActs;

/* The key/value sequence of one kind of cross block (source or base).  The
 * reference attends over all B*(Lt+1) flattened states with a key mask;
 * masked keys get probability exactly 0, so only the visible ones are
 * kept here, packed to the front of each row in their original order.
 * Their RoPE positions, cumsum(mask)*mask over the flattened sequence, are
 * then simply 1, 2, ... n_r; empty slots have mask 0 and position 0. */
typedef struct {
    int N;           /* packed length (max visible count over the rows, >= 1) */
    float *states;   /* [b*N, d] unit-normalised target states */
    int *mask;       /* [b*N] */
    int *pos;        /* [b*N] */
    float *cos, *sin;/* [b*N, hd/2] */
} HnKeys;

/* The inputs of a step as hypernet_forward prepares them on the host (the
 * checks, positions, RoPE tables, packed keys, gathered states, labels).
 * HnActs holds them twice: `in` in its backend's memory, which the ops
 * read, and `host`, where they are prepared; on the CPU the two are the
 * same arrays, on a device `host` is uploaded to `in`. */
typedef struct {
    int *ids, *imask, *ipos;          /* [bE] instruction ids, mask, positions cumsum(m) */
    float *cos_e, *sin_e;             /* [bE, hd/2] */
    int *base_intv, *src_intv, *base_attn; /* [bB], [bS], [bB] */
    HnKeys keys_src, keys_base;
    float *yb, *ysn;                  /* [bB, d], [bS, d] unit-normalised layer-L states */
    float *xb, *ys;                   /* [bB, d], [bS, d] raw layer-L states (intervention) */
    int *qpos;                        /* [b] the head query's position */
    float *cos_q, *sin_q;             /* [b, hd/2] */
    int *src_pos, *base_pos;          /* [b] entity positions (groundtruth selection) */
    int *label_rows, *label_ids;      /* [bB] flat r*B + t of the predicting position, label */
    float *label_w;                   /* [bB] per-token weight / n_labels */
} HnInputs;

/* The trainable parameters where the step runs: on the CPU the
 * hypernetwork's own buffers; on a device, copies (hn_acts_upload_params,
 * hn_acts_download_params) with views laid out as hn->w / hn->g. */
typedef struct {
    float *params, *grads; /* [n_params] */
    HnWeights w, g;
    float *rot_base;       /* [d, d] das.rotate.Q0 (NULL without a subspace) */
    float *inv_freq;       /* [hd/2] */
} HnReplica;

struct HnActs {
    const Compute *K;  /* where every array below lives (compute.h) */
    HnInputs in;       /* the inputs, in K's memory */
    HnInputs host;     /* the same, on the host (on the CPU: the same arrays) */
    float *host_W;     /* [b, S+1, B] host side of W (the DAS method's fixed pattern) */
    float *host_ce;    /* [bB] host side of ce (the loss is summed on the host) */
    HnReplica rep;     /* the parameters the step reads and writes */
    float *host_mem;   /* the host inputs' buffer (a device only) */
    float *host_view;  /* hypernet_view_download's copies (a device only) */
    size_t host_view_cap;
    int max_b, max_E, max_B, max_S, max_Nb, max_Ns;
    int b, E, B, S;
    int soft;               /* the last forward used the soft W (gradient to the head) */
    int have_forward, have_backward;
    double input_seconds;   /* the last forward's input preparation and upload (wall clock) */
    float lambda;           /* sparsity weight of the last forward, times the batch's
                               share b / global_examples of the mean (1 alone) */
    float mask_temperature;
    /* G */
    float *hres;        /* (Lh+1) blocks of [bE, d] */
    HnLayerActs *layers;
    float *hg;          /* [bE, d] */
    float *final_rstd;  /* [bE] */
    float *normed, *act, *branch; /* scratch [bE, d], [bE, F], [bE, d] */
    /* One cross block's attention probabilities [b, H, E, max(Ns, Nb)].
     * They are not kept per layer: at 2 blocks x Lh layers they were ~100
     * MB of the step's peak (SmolLM2, Lh 8, b 16), while recomputing one
     * block's in the backward is a small part of its cost (QK^T is E x hd
     * per key, the key/value projections d x kvd x 2). */
    float *xatt;
    /* head */
    float *hg_last;     /* [b, d] */
    float *hq;          /* [b, qd] after RoPE */
    float *pb, *ps;     /* [bB, d], [bS, d] q_combine halves applied */
    float *kb, *ks, *kself; /* [bB, kvd], [bS, kvd], [bB, kvd] */
    float *W, *W_used, *head_logits; /* [b, S+1, B] */
    /* subspace */
    float *R;           /* [d, k] */
    float *sub_normed, *sub_rstd; /* [b, d], [b] */
    float *sub_gate, *sub_up, *sub_act; /* [b, SF] */
    float *u;           /* [b, d] (reflect) or [b, k] (mask logits) */
    float *v, *unorm;   /* [b, d], [b] */
    float *Rp;          /* [b, d, k] */
    float *mask;        /* [b, k] */
    /* intervention */
    float *diff, *proj, *new_hidden; /* [bB, d], [bB, k], [bB, d] */
    float *work;        /* intervention scratch: B*(2k + d) */
    /* loss */
    int n_labels;
    float *ce;          /* [bB] */
    float *probs;       /* [bB, V] */
    LlamaActivations *target;
    /* backward */
    float *dlogits;     /* [bB, V] */
    float *dnormed_t;   /* [bB, d] */
    float *dnew;        /* [bB, d] */
    float *dW;          /* [b, S+1, B] */
    float *dR, *dRp, *dmask, *du; /* [d,k], [b,d,k], [b,k], [b,d] */
    float *dsub_act, *dsub_gate, *dsub_up, *dsub_normed; /* [b,SF] x3, [b,d] */
    float *dhg_last, *dhq, *dhq_pre; /* [b,d], [b,qd], [b,qd] */
    float *dkb, *dks, *dkself, *dpb, *dps; /* head key grads */
    float *dhg, *dh;    /* [bE, d] */
    float *dnormed, *dq, *dq_rot, *dao; /* [bE,d], [bE,qd] x3 */
    float *dk_rot, *dk, *dv; /* [b*max(E, Nb, Ns), kvd] */
    float *dact, *dgate, *dup; /* [bE, F] */
    float *mem;
};

/* Points the views of w (its layers array allocated) at a buffer of
 * hn->n_params floats with the layout of hn->params: the parameters', the
 * gradients', or a device copy's. */
void hn_bind_weights(const Hypernet *hn, HnWeights *w, float *base);

/* On the CPU: points a's replica at hn's own buffers (done at every
 * forward and backward, so that a may serve any hypernetwork of its
 * shapes); a device's replica is left alone. */
void hn_acts_sync_replica(HnActs *a, const Hypernet *hn);

/* The shapes every stage needs, from the hypernetwork's configuration. */
typedef struct {
    int d, H, Hkv, hd, half, qd, kvd, F, V, nl, k, SF, L, Lh, Lt;
} HnDims;

/* Records that the backward is about to add to these rows of the token
 * embedding's gradient (hypernet_zero_grad clears only those). */
void hn_mark_embed_rows(Hypernet *hn, const int *ids, int n);

static inline HnDims hn_dims(const Hypernet *hn)
{
    const LlamaConfig *t = &hn->target;
    HnDims D;
    D.d = t->hidden_size;
    D.H = t->n_heads;
    D.Hkv = t->n_kv_heads;
    D.hd = t->head_dim;
    D.half = t->head_dim / 2;
    D.qd = D.H * D.hd;
    D.kvd = D.Hkv * D.hd;
    D.F = t->intermediate_size;
    D.V = t->vocab_size;
    D.Lt = t->n_layers;
    D.nl = t->n_layers + 1;
    D.k = hn->cfg.das_dim;
    D.SF = hn->cfg.sub_ffn;
    D.L = hn->cfg.intervention_layer;
    D.Lh = hn->cfg.n_layers;
    return D;
}

#endif
