/* Token embedding lookup: row ids[n] of a [V, d] table.
 *
 * The kernel never fails: an id outside [0, V) yields a zero row (and no
 * gradient).  Callers that take ids from users validate them first and
 * report the bad id; the kernel only makes sure a bad id cannot read out of
 * bounds. */
#ifndef HD_KERNELS_CPU_EMBEDDING_H
#define HD_KERNELS_CPU_EMBEDDING_H

/* out[N, d] = table[ids[n], :]. */
void embedding_forward(float *out, const int *ids, const float *table, int N, int V, int d);

/* dtable[ids[n], :] += dout[n, :] (scatter-add; repeated ids sum). */
void embedding_backward(float *dtable, const float *dout, const int *ids, int N, int V, int d);

#endif
