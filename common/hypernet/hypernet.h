/* The HyperDAS hypernetwork G, its selection head, the subspace module D,
 * the intervention at the target's hidden state hs[L] and the training loss
 * (hyperdas(7) 1.3, 3-6), in fp32 on the CPU, with a hand-written
 * backward into every trainable tensor.
 *
 * Parameters.  One fp32 buffer holds every trainable tensor, one gradient
 * buffer has the same layout (llm.c style); HnWeights are named views into
 * either.  The names are those of tests/fixtures/hyperdas/README.md (the
 * PyTorch reference's state_dict names: "hyper.layers.0.self_attn.q_proj.
 * weight", "head.q_combine.weight", "das.rotate.X", ...), so a checkpoint
 * written with hypernet_param() names loads in the reference and back.
 * The rotation's fixed orthogonal base "das.rotate.Q0" is a buffer: it lives
 * outside the parameter buffer, has no gradient, and is listed last by the
 * iteration API with group HN_GROUP_BUFFER.
 *
 * One step, given a batch whose target states were cached (cache-acts):
 *   hypernet_zero_grad(hn);
 *   hypernet_forward(hn, acts, target, &batch, &opts, &loss);
 *   hypernet_backward(hn, acts, target);        (grads += dL/dparams)
 *   norm = grad_norm(hn->grads, hn->n_params);   (kernels/cpu/grad_clip.h)
 *   adamw_step(hn->params, hn->grads, grad_clip_coef(norm, 4.0), m, v, spans,
 *              n_spans, &acfg, step);
 * with spans from hypernet_adamw_spans().
 *
 * Shapes.  Batch b; instruction length E; base length B; source length S;
 * the target has Lt layers (Lt+1 hidden states), width d, H/Hkv heads of
 * hd; G has Lh layers of the target's shapes; k = DAS dimension. */
#ifndef HD_HYPERNET_H
#define HD_HYPERNET_H

#include <stddef.h>
#include <stdint.h>

#include "cpu/adamw.h"
#include "cpu/selection.h"
#include "model/llama_forward.h"
#include "model/llama_model.h"

typedef enum {
    HN_SUBSPACE_NONE = 0, /* patch the whole mixed vector: hs[L] <- ysrc */
    HN_SUBSPACE_REFLECT,  /* ReflectSelect (HyperDAS default) */
    HN_SUBSPACE_DAS,      /* plain low-rank DAS with one learned R */
    HN_SUBSPACE_MASK      /* MaskSelect: a soft mask on the k directions */
} HnSubspace;

/* "none", "reflect", "das", "mask" (also the original's "ReflectSelect",
 * "DAS", "MaskSelect"); -1 when unknown. */
int hn_subspace_from_name(const char *name);
const char *hn_subspace_name(HnSubspace s);

/* What chooses the positions and the subspace.  HYPERDAS: the hypernetwork
 * G reads the instruction and both runs and outputs the selection matrix
 * (hyperdas(7) 3-5).  DAS: the DAS/MDAS baseline of hyperdas(7) 8 -- no G, no head: one
 * learned rotation R (subspace HN_SUBSPACE_DAS) applied at fixed positions,
 * the entity's last token of base and source (SELECT_GROUNDTRUTH; the soft
 * mode means that here), so the only trainable tensor is das.rotate.X. */
typedef enum { HN_METHOD_HYPERDAS = 0, HN_METHOD_DAS } HnMethod;

/* "hyperdas", "das" (also "mdas"); -1 when unknown. */
int hn_method_from_name(const char *name);
const char *hn_method_name(HnMethod m);

typedef struct {
    HnMethod method;
    int n_layers;           /* Lh: G's depth, <= the target's (chop_editor_at_layer); 0 for DAS */
    int intervention_layer; /* L in [1, Lt-1]: hs[L], the residual entering layer L, is replaced */
    int das_dim;            /* k */
    HnSubspace subspace;
    int sub_ffn;            /* width of ReflectSelect's / MaskSelect's SwiGLU MLP */
    float sub_rms_eps;      /* their RMSNorm eps (1e-5) */
    int ablate_source_attention, ablate_base_attention; /* skip a cross block (ablations) */
} HypernetConfig;

/* The training defaults of hyperdas(7) 7.2 for a target: Lh 8 (capped at the
 * target's depth), L 15 (capped at Lt - 1), k 128 (capped at d),
 * ReflectSelect, MLP width = the target's intermediate size. */
HypernetConfig hypernet_default_config(const LlamaConfig *target);

/* Views of one G attention block: pre-norm and q/k/v/o projections. */
typedef struct {
    float *norm; /* [d] */
    float *wq;   /* [H*hd, d] */
    float *wk;   /* [Hkv*hd, d] */
    float *wv;   /* [Hkv*hd, d] */
    float *wo;   /* [d, H*hd] */
} HnAttnWeights;

typedef struct {
    HnAttnWeights self_attn, src_cross, base_cross;
    float *post_norm; /* [d] post_attention_layernorm */
    float *w_gate;    /* [ffn, d] */
    float *w_up;      /* [ffn, d] */
    float *w_down;    /* [d, ffn] */
} HnLayerWeights;

typedef struct {
    float *tok_embed;       /* [V, d]   hyper.embed_tokens.weight */
    HnLayerWeights *layers; /* [Lh] */
    float *final_norm;      /* [d]      hyper.norm.weight */
    float *head_wq;         /* [H*hd, d] */
    float *head_wk;         /* [Hkv*hd, d] */
    float *head_combine;    /* [d, 2d]  q_combine: input concat(base, source) */
    float *sub_norm;        /* [d]      das.rv_norm / das.mask_norm (NULL otherwise) */
    float *sub_gate;        /* [sub_ffn, d] */
    float *sub_up;          /* [sub_ffn, d] */
    float *sub_down;        /* [d or k, sub_ffn] */
    float *rot_x;           /* [d, k]   das.rotate.X (NULL without a subspace) */
} HnWeights;

typedef enum {
    HN_GROUP_MAIN = 0, /* G, head, subspace norm and MLPs: lr 4e-5, wd 0.01 */
    HN_GROUP_ROTATE,   /* das.rotate.X: lr 1e-3, wd 0 */
    HN_GROUP_MASK,     /* das.mask_mlp.*: lr 1e-2, wd 0.01 */
    HN_GROUP_BUFFER,   /* das.rotate.Q0: not trained */
    HN_N_GROUPS
} HnGroup;

typedef struct {
    const char *name;
    int ndim;
    int64_t shape[2];
    size_t numel;
    size_t offset; /* into params/grads; (size_t)-1 for a buffer */
    float *data;   /* the values */
    float *grad;   /* NULL for a buffer */
    HnGroup group;
} HnParam;

typedef struct {
    HypernetConfig cfg;
    LlamaConfig target;  /* the target's shapes (G copies them) */
    float *params;       /* the one trainable buffer */
    float *grads;        /* same layout */
    size_t n_params;
    HnWeights w, g;      /* views into params / grads */
    float *rot_base;     /* [d, d] das.rotate.Q0 (NULL without a subspace) */
    float *inv_freq;     /* [hd/2] the target's RoPE frequencies */
    HnParam *info;       /* every tensor, in the reference's order, Q0 last */
    int n_info;
    char *names;         /* storage of the names */
    /* Rows of the token embedding's gradient written since the last
     * hypernet_zero_grad: the backward adds only the instruction tokens'
     * rows, so zeroing just those leaves the pages of all other rows
     * untouched (not resident: 113 MB of SmolLM2's hypernetwork). */
    unsigned char *embed_row_dirty; /* [V] */
    int *embed_dirty_rows;          /* the dirty rows, in order of first write */
    int n_embed_dirty;
    int grads_all_written;          /* hypernet_grads_written was called */
    /* Rows whose gradient was ever written (hn_mark_embed_rows) or whose
     * loaded moments are not zero (hypernet_note_moments): only those can
     * have non-zero AdamW moments.  embed_moved_all: not known (another
     * writer wrote the gradient), every row counts as moved. */
    unsigned char *embed_row_moved; /* [V] */
    int embed_moved_all;
} Hypernet;

/* Checks cfg against the target and allocates zeroed buffers; NULL with a
 * message on a bad configuration.  L = 0 (the embedding hook, which the
 * original allows only without a subspace module) is refused: the
 * intervened run resumes at layer L from the edited residual.  L = Lt is
 * refused too: the cached hs[Lt] is the final-norm output, not a residual. */
Hypernet *hypernet_create(const HypernetConfig *cfg, const LlamaConfig *target);
void hypernet_free(Hypernet *hn);

/* Initialisation (hyperdas(7) 3.1).  G from the target: embedding, the first Lh
 * layers (both cross blocks get independent copies of that layer's
 * self-attention and input norm), final norm.  from_scratch != 0: G's
 * layers as PyTorch defaults (Linear U(+-1/sqrt(fan_in)), norms 1), the
 * embedding and final norm still copied.  Head q/k/q_combine N(0, head_std)
 * (0.02 in the original, hyperdas(7) 14.6).  Subspace MLP PyTorch Linear defaults,
 * its norm 1; X = -I; Q0 a random orthogonal matrix (QR of a Gaussian).
 * All draws from `seed`. */
int hypernet_init(Hypernet *hn, const LlamaModel *target, int from_scratch, float head_std,
                  uint64_t seed);

/* Parameter iteration: i in [0, n); NULL outside. */
int hypernet_param_count(const Hypernet *hn);
const HnParam *hypernet_param(const Hypernet *hn, int i);
const HnParam *hypernet_param_find(const Hypernet *hn, const char *name);

/* One AdamW span per trainable tensor with its group's lr and weight decay
 * (arrays indexed by HnGroup); spans must hold hypernet_param_count()
 * entries.  Returns the number written. */
int hypernet_adamw_spans(const Hypernet *hn, const float *group_lr, const float *group_wd,
                         AdamWSpan *spans);

/* The same spans, but the embedding's split into runs of rows: rows that
 * never had a gradient (zero gradient and moments) get decay_only spans,
 * which AdamW updates without reading g, m and v (the same values).  Only
 * for a CPU step whose gradients this hypernetwork's backward wrote (the
 * rows are marked there); *spans grows as needed (*cap entries). */
int hypernet_adamw_spans_split(const Hypernet *hn, const float *group_lr, const float *group_wd,
                               AdamWSpan **spans, int *cap);

/* Marks the embedding rows whose moments m or v (n_params each, a
 * checkpoint's) are not zero as moved; call after loading them. */
void hypernet_note_moments(Hypernet *hn, const float *m, const float *v);

void hypernet_zero_grad(Hypernet *hn);
/* Tells hypernet_zero_grad that something other than hypernet_backward wrote
 * the whole gradient buffer (an all-reduce): the next zeroing clears it all. */
void hypernet_grads_written(Hypernet *hn);

/* R [d, k] from X and Q0 (the orthogonal parametrisation, householder.h). */
void hypernet_rotation(const Hypernet *hn, float *R);

/* ---- a batch ----
 * Ids and masks are int, row-major, left padded.  The target states come
 * from the target's runs (hyperdas(7) 1.3, 2.4):
 *   base_states [b, B, Lt+1, d]  the base run's HF hidden_states (hs[Lt] is
 *                                the final-norm output), positions cumsum rule
 *   src_states  [b, S, Lt+1, d]  the same for the source
 *   src_ys      [b, S, d]        raw source hs[L] used for mixing (the
 *                                original reruns the source with positions
 *                                0..S-1); NULL: src_states at layer L
 * The intervened run restarts at layer L from the base's cached hs[L]
 * (layers below L are not affected by the intervention). */
typedef struct {
    int b, E, B, S;
    const int *instr_ids;      /* [b, E] */
    const int *instr_mask;     /* [b, E] 1 = real (ids != pad) */
    const int *base_attn_mask; /* [b, B] */
    const int *base_intv_mask; /* [b, B] positions G may write */
    const int *src_intv_mask;  /* [b, S] positions G may read */
    const int *labels;         /* [b, B] -100 except the label tokens */
    const int *is_causal;      /* [b] 1 = cause example */
    const float *base_states;
    const float *src_states;
    const float *src_ys;
    const int *base_entity_pos, *src_entity_pos; /* [b], SELECT_GROUNDTRUTH only */
} HnBatch;

typedef struct {
    float sparsity_weight;  /* lambda of this step (kernels/cpu/sparsity_loss.h); 0 = off */
    float causal_weight;    /* 3.5 */
    float iso_weight;       /* 0.5 */
    SelectionMode mode;     /* SELECT_SOFT for training */
    float bidding_threshold;/* 0.1 */
    float mask_temperature; /* MaskSelect's tau */
    /* Data parallelism: the batch is this rank's share of a global batch.
     * The loss is a mean over the global batch (hyperdas(7) 6.1): label weights are
     * divided by global_label_tokens, the sparsity sum by global_examples,
     * so the returned loss parts and the gradients are this rank's terms of
     * the global sums and add up over the ranks.  0: the local counts (one
     * process, the default). */
    int global_label_tokens;
    int global_examples;
} HnOptions;

HnOptions hn_default_options(void);

/* The label tokens of a batch (labels other than -100): what a rank adds
 * to global_label_tokens. */
int hn_batch_label_tokens(const HnBatch *batch);

typedef struct {
    float total;     /* pred + sparsity_weight * sparsity */
    float pred;      /* mean over label tokens of weight * CE */
    float sparsity;  /* the penalty before its weight */
    int n_label_tokens; /* this batch's (not the global count) */
} HnLoss;

typedef struct HnActs HnActs;

/* Activations for batches up to these sizes (and the target's run of
 * layers [L, Lt) over max_b x max_B tokens). */
HnActs *hn_acts_create(const Hypernet *hn, int max_b, int max_E, int max_B, int max_S);
/* The same, except that the frozen target layers [L, Lt) keep only their
 * input for the backward, which reruns each layer's forward before going
 * through it: gradients bit for bit the same, less memory (SmolLM2 at
 * b = 16: ~170 MiB), 10-25% more time per step (hd-train
 * --recompute-target). */
HnActs *hn_acts_create_recomputing(const Hypernet *hn, int max_b, int max_E, int max_B, int max_S);
void hn_acts_free(HnActs *a);

/* ---- the step on another backend (compute.h) ----
 * hn_acts_create_on(compute_cuda(), ...) puts every activation AND a copy
 * of the parameters and their gradients on the GPU (recompute_target as
 * hn_acts_create_recomputing).  The step is then
 *   hn_acts_zero_grad(a, hn);
 *   hypernet_forward_view(hn, a, &gpu_target_view, &batch, &opt, &loss);
 *   hypernet_backward_view(hn, a, &gpu_target_view);
 *   K->grad_norm(&norm, hn_acts_grads(a), hn->n_params);
 *   K->adamw_step(hn_acts_params(a), hn_acts_grads(a), ..., m, v on the device ...);
 * with hn's host buffers read at creation (the copy starts from them) and
 * written only by hn_acts_download_params (before a checkpoint, and
 * before the activations are made again, larger).  On the CPU these are the
 * host buffers themselves and the copies do nothing.
 * hypernet_forward/backward(target) are the _view ones with
 * llama_view_cpu(target). */
typedef struct Compute Compute;
HnActs *hn_acts_create_on(const Compute *K, const Hypernet *hn, int max_b, int max_E, int max_B,
                          int max_S, int recompute_target);
/* The bytes hn_acts_create_on would take in its backend's memory for these
 * capacities, with the logits of every base token and the target
 * backward's scratch; on_device adds the parameter and gradient copies. */
size_t hn_acts_bytes(const Hypernet *hn, int max_b, int max_E, int max_B, int max_S,
                     int recompute_target, int on_device);
float *hn_acts_params(const HnActs *a);
/* Seconds the last forward spent on the host packing its inputs and
 * copying them to K's memory (on a GPU the first copy also waits for the
 * kernels still running from before): what the step costs the host. */
double hn_acts_input_seconds(const HnActs *a);
float *hn_acts_grads(const HnActs *a);
int hn_acts_download_params(const HnActs *a, Hypernet *hn);
int hn_acts_download_grads(const HnActs *a, Hypernet *hn);
/* hypernet_zero_grad on the CPU; the whole gradient copy on a device. */
int hn_acts_zero_grad(HnActs *a, Hypernet *hn);

/* The whole forward: G, head, selection, subspace, intervention, target
 * layers [L, Lt), logits at the label positions, loss.  -1 with a message
 * on bad input (ids, masks, shapes, non-finite states).
 *
 * Semantics that differ from the reference only where nothing real reads
 * the value: padded instruction rows get zero attention output (the
 * reference averages all keys there); the cross blocks attend over the
 * visible (token, layer) states only, packed (masked keys have weight
 * exactly 0 in the reference too), so a row whose source or base has no
 * visible token at all gets a zero cross-attention output where the
 * reference would average every state (hyperdas(7) 14.1 calls that input a bug
 * to guard against).  A zero state vector is normalised to 0, not NaN. */
int hypernet_forward(Hypernet *hn, HnActs *a, const LlamaModel *target, const HnBatch *batch,
                     const HnOptions *opt, HnLoss *loss);

/* grads += dL_total/dparams for the last forward. */
int hypernet_backward(Hypernet *hn, HnActs *a, const LlamaModel *target);

/* The same on a's backend, with the target as that backend holds it. */
int hypernet_forward_view(Hypernet *hn, HnActs *a, const LlamaView *target, const HnBatch *batch,
                          const HnOptions *opt, HnLoss *loss);
int hypernet_backward_view(Hypernet *hn, HnActs *a, const LlamaView *target);

/* Views into the last forward's results (valid until the next forward),
 * in the memory of the activations' backend (device pointers on a GPU),
 * except label_rows, label_ids and ce, which are host copies everywhere. */
typedef struct {
    const float *hg;         /* [b, E, d] G's final-norm output */
    const float *W;          /* [b, S+1, B] soft selection */
    const float *W_used;     /* [b, S+1, B] after the selection mode */
    const float *head_logits;/* [b, S+1, B] head-mean logits, -inf where masked */
    const float *R;          /* [d, k] */
    const float *R_reflected;/* [b, d, k] ReflectSelect only */
    const float *rv;         /* [b, d] ReflectSelect: u (before normalising) */
    const float *mask;       /* [b, k] MaskSelect only */
    const float *xb;         /* [b, B, d] */
    const float *ysrc_minus_xb; /* [b, B, d] */
    const float *new_hidden; /* [b, B, d] */
    const float *logits;     /* [n_label_tokens, V] at the predicting positions */
    const int *label_rows;   /* [n_label_tokens] flat r*B + t of the predicting position */
    const int *label_ids;    /* [n_label_tokens] */
    const float *ce;         /* [n_label_tokens] */
    int n_label_tokens;
    /* after hypernet_backward */
    const float *dW;         /* [b, S+1, B] */
    const float *dhg;        /* [b, E, d] */
    const float *dnew_hidden;/* [b, B, d] */
    const float *dR;         /* [d, k] */
} HnView;

void hypernet_view(const HnActs *a, HnView *v);
/* hypernet_view for readers on the host: on the CPU the same; on a device
 * logits and W_used are downloaded (into a buffer a owns) and every other
 * array but label_rows, label_ids and ce is NULL.  -1 with a message. */
int hypernet_view_download(HnActs *a, HnView *v);

#endif
