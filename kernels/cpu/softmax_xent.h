/* Softmax + cross-entropy over the vocabulary, fused: the loss of a row is
 * logsumexp(logits) - logits[target], computed in fp32 with max subtraction
 * (the sum in double), and its gradient is softmax - onehot(target).
 *
 * Rows whose target is negative (the -100 of Hugging Face labels) are
 * ignored: loss 0, probabilities still written, no gradient. */
#ifndef HD_KERNELS_CPU_SOFTMAX_XENT_H
#define HD_KERNELS_CPU_SOFTMAX_XENT_H

/* losses[N] (may be NULL), probs[N, V] = softmax of logits[N, V] (may be
 * NULL when only the losses are wanted; may equal logits). */
void softmax_xent_forward(float *losses, float *probs, const float *logits, const int *targets,
                          int N, int V);

/* dlogits[N, V] += dlosses[n] * (probs[n] - onehot(targets[n])), skipping
 * rows with a negative target.  dlosses NULL means 1 for every row.
 * dlogits must not alias probs. */
void softmax_xent_backward(float *dlogits, const float *dlosses, const float *probs,
                           const int *targets, int N, int V);

#endif
