/* Judging interventions the way HyperDAS scores them (hyperdas(7)
 * 9.1, 9.3): one teacher-forced forward of the intervened model; an
 * example is correct when the argmax at the position before each of its
 * label tokens is that token (all label tokens, or the first n).  Cause is
 * the accuracy over causal examples, Isolate over isolation examples,
 * Disentangle their mean (Cause alone when there are no isolation
 * examples, Isolate then reported as 0). */
#ifndef HD_HN_EVAL_H
#define HD_HN_EVAL_H

#include "hypernet/hypernet.h"

typedef struct {
    long n_causal, n_isolate, ok_causal, ok_isolate;
    double loss_sum;
    long n_batches;
} EvalCounts;

/* correct[r] for the b examples of the last forward (view v, vocabulary V,
 * base length B): n_tokens 0 compares every label token, n > 0 the first n
 * of each example. */
void hn_eval_judge(const HnView *v, int V, int b, int B, int n_tokens, int *correct);
void eval_counts_add(EvalCounts *c, const int *correct, const int *is_causal, int b);
/* NAN when there is no example of the kind (both kinds for Disentangle). */
double eval_cause(const EvalCounts *c);
double eval_isolate(const EvalCounts *c);
double eval_disentangle(const EvalCounts *c);

#endif
