/* Rotary position embedding, Hugging Face "rotate-half" layout.
 *
 * Within each head vector of size hd, element i is paired with element
 * i + hd/2 (not with its neighbour, as in the original RoPE paper and in
 * llama.cpp; GGUF weights are un-permuted at load time so this one layout
 * serves every source).  The pair is rotated by angle pos * inv_freq[i]:
 *   out[i]        = x[i] cos - x[i+hd/2] sin
 *   out[i+hd/2]   = x[i+hd/2] cos + x[i] sin
 * The rotation is orthogonal, so its backward is the rotation by -angle.
 *
 * The angles are tabulated per token (rope_angles) rather than per position:
 * a batch may use any position ids, including -1 for left pads (HyperDAS
 * passes cumsum(mask)*mask - 1, and Hugging Face uses -1 as is). */
#ifndef HD_KERNELS_CPU_ROPE_H
#define HD_KERNELS_CPU_ROPE_H

/* inv_freq[hd/2] = theta^(-2i/hd), computed in fp32 as transformers does.
 * llama3_scaling != 0 applies the Llama 3.1 rule (transformers
 * _compute_llama3_parameters): wavelengths longer than
 * original_max_position / low_freq_factor are divided by factor, shorter
 * than original_max_position / high_freq_factor are kept, and the band in
 * between is interpolated smoothly. */
void rope_inv_freq(float *inv_freq, int head_dim, float theta, int llama3_scaling, float factor,
                   float low_freq_factor, float high_freq_factor, int original_max_position);

/* cos[N, hd/2], sin[N, hd/2] for the angles pos[n] * inv_freq[i] (fp32 product). */
void rope_angles(float *cos_out, float *sin_out, const int *pos, const float *inv_freq, int N,
                 int half);

/* x[N, n_heads, head_dim] rotated in place; token n uses row n of cos/sin. */
void rope_forward(float *x, const float *cos, const float *sin, int N, int n_heads, int head_dim);

/* dinp[N, n_heads, head_dim] += R(-angle) dout.  dinp must not alias dout. */
void rope_backward(float *dinp, const float *dout, const float *cos, const float *sin, int N,
                   int n_heads, int head_dim);

#endif
