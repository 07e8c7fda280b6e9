/* Causal multi-head self-attention with grouped key/value heads (GQA) and a
 * key padding mask, softmax in fp32 with max subtraction.
 *
 * Layouts (row-major):
 *   q    [b, Tq, H, hd]       queries, already rotated by RoPE
 *   k, v [b, Tcap, Hkv, hd]   the key/value time line of each batch row; only
 *                             the first Tk time steps are used.  Tcap > Tk
 *                             lets a KV cache be used in place.
 *   key_mask [b, Tcap]        1 = real token, 0 = pad (NULL: all real)
 *   att  [b, H, Tq, Tk]       softmax probabilities, saved for the backward
 *   out  [b, Tq, H, hd]
 * Query i of a row sits at time Tk - Tq + i of the key time line, and sees
 * key j iff j <= Tk - Tq + i and key_mask[j] == 1 (causal + padding).  For
 * a full forward Tq = Tk = Tcap; for one generation step Tq = 1.
 * Query head h reads kv head h / (H / Hkv) (Hugging Face repeat_kv order).
 * A query that sees no key at all (a left pad) gets probabilities 0 and an
 * output of 0, never NaN; Hugging Face gives such rows an arbitrary finite
 * value, which no real token ever reads. */
#ifndef HD_KERNELS_CPU_ATTENTION_H
#define HD_KERNELS_CPU_ATTENTION_H

void attention_forward(float *out, float *att, const float *q, const float *k, const float *v,
                       const int *key_mask, int b, int Tq, int Tk, int Tcap, int n_heads,
                       int n_kv_heads, int head_dim);

/* dq [b,Tq,H,hd], dk and dv [b,Tcap,Hkv,hd] += gradients (dk/dv time steps
 * >= Tk are untouched).  Needs the att saved by the forward.  Parallel over
 * (batch row, kv head), so that each thread owns the dk/dv rows it adds to. */
void attention_backward(float *dq, float *dk, float *dv, const float *dout, const float *att,
                        const float *q, const float *k, const float *v, int b, int Tq, int Tk,
                        int Tcap, int n_heads, int n_kv_heads, int head_dim);

#endif
