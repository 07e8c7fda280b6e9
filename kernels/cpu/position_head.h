/* The pair-scoring head of HyperDAS (hyperdas(7) 3.5, "InterpreterUnembedCross-
 * Attention"): for every base position t, a distribution W[:, t] over the
 * S source positions plus one "keep the base" row S.
 *
 * The reference builds pair features Z[s,t] = Wc concat(Yb[t], Ys[s]) for
 * every pair (b x S x B x d values), projects them with k_proj, rotates them
 * at their pair positions and scores them against the last instruction
 * token's query.  Because Wc and k_proj are linear,
 *     k_proj Z[s,t] = k_proj Wc_base Yb[t] + k_proj Wc_src Ys[s] = kb[t] + ks[s],
 * so the caller projects B + S vectors instead of S x B, and this kernel only
 * adds, rotates and scores: the pair tensor is never built.  The self row is
 * k_proj Yb[t] itself (kself[t], no Wc).
 *
 * Per batch row, with pair (s, t) at flat index f = s*B + t:
 *   M[s,t]   = ms[s]*mb[t] for s < S, M[S,t] = 1 (the self row is never masked)
 *   pos[s,t] = (number of visible pairs at flat index <= f) if M else 0
 *   logit[s,t] = mean over heads h of  q_h . rope(k[s,t], pos)_{h/(H/Hkv)} / sqrt(hd)
 *   W[:, t]  = softmax over the S+1 rows of logit[:, t], masked pairs excluded
 * The mask is applied AFTER the mean over heads (hyperdas(7) 14.17): the reference
 * adds the dtype minimum to every head's logit and averages; both give a
 * masked weight of exactly 0.  No column is ever empty (self row).
 *
 * Layouts: q [b, H*hd] (already rotated at the query position), kb and kself
 * [b, B, Hkv*hd], ks [b, S, Hkv*hd], mb [b, B], ms [b, S] (0/1), inv_freq
 * [hd/2] (rope.h), W [b, S+1, B].  RoPE angles are pos * inv_freq[i] in
 * fp32, exactly as rope_angles computes them. */
#ifndef HD_KERNELS_CPU_POSITION_HEAD_H
#define HD_KERNELS_CPU_POSITION_HEAD_H

/* W [b, S+1, B]; logits [b, S+1, B] (may be NULL): the head-mean logits,
 * -INFINITY at masked pairs. */
void position_head_forward(float *W, float *logits, const float *q, const float *kb,
                           const float *ks, const float *kself, const int *mb, const int *ms,
                           const float *inv_freq, int b, int S, int B, int n_heads,
                           int n_kv_heads, int head_dim);

/* dq [b, H*hd], dkb and dkself [b, B, Hkv*hd], dks [b, S, Hkv*hd] +=
 * gradients of a loss whose gradient w.r.t. W is dW; any may be NULL.
 * W is the forward's output. */
void position_head_backward(float *dq, float *dkb, float *dks, float *dkself, const float *dW,
                            const float *W, const float *q, const float *kb, const float *ks,
                            const float *kself, const int *mb, const int *ms,
                            const float *inv_freq, int b, int S, int B, int n_heads,
                            int n_kv_heads, int head_dim);

/* The pair positions of one batch row: pos [(S+1)*B] as defined above. */
void position_head_pair_positions(int *pos, const int *mb, const int *ms, int S, int B);

#endif
