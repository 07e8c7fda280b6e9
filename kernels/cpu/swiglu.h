/* The gated activation of the Llama MLP: out = silu(gate) * up, with
 * silu(x) = x * sigmoid(x).  The two projections (gate_proj, up_proj) and
 * down_proj around it are plain matmuls. */
#ifndef HD_KERNELS_CPU_SWIGLU_H
#define HD_KERNELS_CPU_SWIGLU_H

#include <stddef.h>

/* out[n] = silu(gate[n]) * up[n] over n elements (rows x ffn). */
void swiglu_forward(float *out, const float *gate, const float *up, size_t n);

/* dgate += dout * up * silu'(gate), dup += dout * silu(gate), where
 * silu'(x) = sigmoid(x) (1 + x (1 - sigmoid(x))).  Either may be NULL. */
void swiglu_backward(float *dgate, float *dup, const float *dout, const float *gate,
                     const float *up, size_t n);

#endif
