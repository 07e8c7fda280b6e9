/* Cross-attention: a query sequence attends over a separate key/value
 * sequence, with grouped key/value heads (GQA), a query mask and a key
 * mask, softmax in fp32 with max subtraction.  Not causal.
 *
 * HyperDAS's hypernetwork has two such blocks per decoder layer (hyperdas(7)
 * 3.3, 3.4): the instruction tokens (queries) attend over the unit-normalised
 * target hidden states of the source or the base, flattened token x layer
 * (keys/values).  The caller projects and rotates (RoPE at the instruction
 * positions for q, at cumsum(mask)*mask over the flattened sequence for k).
 *
 * Layouts (row-major):
 *   q      [b, Tq, H, hd]     queries, RoPE applied
 *   k, v   [b, Tk, Hkv, hd]   keys (RoPE applied) and values
 *   q_mask [b, Tq]            0 = padded query: its row is all masked; it
 *                             gets probabilities 0 and output 0 (NULL: all real)
 *   k_mask [b, Tk]            0 = key not visible (NULL: all visible)
 *   att    [b, H, Tq, Tk]     softmax probabilities, kept for the backward
 *   out    [b, Tq, H, hd]
 * Query head h reads kv head h / (H / Hkv) (Hugging Face repeat_kv order).
 *
 * Masked rows: the reference adds the dtype minimum for a padded query row
 * and for an invisible key and then clamps, so a padded query row there is a
 * uniform average of all values.  No real token ever reads a padded query
 * row (the self-attention masks pad keys, everything else is per row), so
 * we write 0, as the causal attention kernel does; a query row that sees no
 * visible key at all gets 0 too, never NaN. */
#ifndef HD_KERNELS_CPU_CROSS_ATTENTION_H
#define HD_KERNELS_CPU_CROSS_ATTENTION_H

void cross_attention_forward(float *out, float *att, const float *q, const float *k,
                             const float *v, const int *q_mask, const int *k_mask, int b, int Tq,
                             int Tk, int n_heads, int n_kv_heads, int head_dim);

/* dq [b,Tq,H,hd], dk and dv [b,Tk,Hkv,hd] += gradients; any may be NULL.
 * Needs the att of the forward.  Parallel over (batch row, kv head), so
 * that each thread owns the dk/dv rows it adds to. */
void cross_attention_backward(float *dq, float *dk, float *dv, const float *dout,
                              const float *att, const float *q, const float *k, const float *v,
                              int b, int Tq, int Tk, int n_heads, int n_kv_heads, int head_dim);

#endif
