/* Hard selection modes of HyperDAS (hyperdas(7) 4): turn the soft selection matrix
 * W [b, S+1, B] (column t: a distribution over the S source rows and the
 * "keep the base" row S) into 0/1 matrices of the same shape.  Evaluation
 * only: nothing here has a gradient (the reference has no straight-through
 * estimator).  Ties go to the lowest index, as torch.argmax.
 *
 *   SELECT_SOFT            W unchanged
 *   SELECT_COLUMN_ARGMAX   each column one-hot at argmax over all S+1 rows
 *                          ("one-to-many": the self row can win)
 *   SELECT_BIDDING_ARGMAX  ("one-to-one") (1) each source row s < S keeps
 *                          only W[s, argmax_t W[s,t]], other source entries
 *                          become 0, the self row is kept; (2) the self row
 *                          is floored: W[S,t] > threshold ? W[S,t] : threshold
 *                          (threshold 0.1 in the reference); (3) each column
 *                          one-hot at its argmax over the S+1 rows
 *   SELECT_GLOBAL_ARGMAX   the single best source pair (s*, t*) = argmax over
 *                          s < S and all t of W[s,t] (flat index s*B + t);
 *                          one-hot there, self row 1 in every other column
 *   SELECT_GROUNDTRUTH     ignores W: one-hot at (src_pos[r], base_pos[r])
 *                          (the last entity tokens), self row elsewhere
 *   SELECT_RANDOM          the random-position control: one source row and
 *                          one base column drawn uniformly among the visible
 *                          ones (a hash of the example's W seeds the draw, so
 *                          it is reproducible), self row elsewhere: compare
 *                          with global_argmax, the learned single pair */
#ifndef HD_KERNELS_CPU_SELECTION_H
#define HD_KERNELS_CPU_SELECTION_H

typedef enum {
    SELECT_SOFT = 0,
    SELECT_COLUMN_ARGMAX,
    SELECT_BIDDING_ARGMAX,
    SELECT_GLOBAL_ARGMAX,
    SELECT_GROUNDTRUTH,
    SELECT_RANDOM
} SelectionMode;

/* "soft" (also the original's "default"), "column_argmax", "bidding_argmax", "global_argmax",
 * "groundtruth", "random"; -1 for an unknown name. */
int selection_mode_from_name(const char *name);
const char *selection_mode_name(SelectionMode mode);

/* out [b, S+1, B] (may equal W only for SELECT_SOFT).  src_pos/base_pos [b]
 * are read by SELECT_GROUNDTRUTH only (an index out of range leaves the
 * row's columns on the self row).  threshold is the bidding floor. */
void selection_forward(float *out, const float *W, SelectionMode mode, float threshold,
                       const int *src_pos, const int *base_pos, int b, int S, int B);

#endif
