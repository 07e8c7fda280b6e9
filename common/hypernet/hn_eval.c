#include "hypernet/hn_eval.h"
#include "model/llama_generate.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

void hn_eval_judge(const HnView *v, int V, int b, int B, int n_tokens, int *correct)
{
    int *seen = calloc((size_t)b, sizeof *seen);
    for (int r = 0; r < b; r++) correct[r] = 1;
    for (int i = 0; i < v->n_label_tokens; i++) {
        int r = v->label_rows[i] / B;
        if (r < 0 || r >= b) continue;
        seen[r]++;
        if (n_tokens > 0 && seen[r] > n_tokens) continue;
        if (llama_argmax(v->logits + (size_t)i * V, V) != v->label_ids[i]) correct[r] = 0;
    }
    for (int r = 0; r < b; r++)
        if (!seen[r]) correct[r] = 0;   /* no label token: nothing was shown correct */
    free(seen);
}

void eval_counts_add(EvalCounts *c, const int *correct, const int *is_causal, int b)
{
    for (int r = 0; r < b; r++) {
        if (is_causal[r]) {
            c->n_causal++;
            c->ok_causal += correct[r];
        } else {
            c->n_isolate++;
            c->ok_isolate += correct[r];
        }
    }
}

/* A rate with no examples is NAN (nil in the log), never 0: an evaluation
 * set without isolation examples has no Isolate, and its Disentangle is not
 * its Cause. */
double eval_cause(const EvalCounts *c) { return c->n_causal ? (double)c->ok_causal / c->n_causal : NAN; }
double eval_isolate(const EvalCounts *c) { return c->n_isolate ? (double)c->ok_isolate / c->n_isolate : NAN; }

double eval_disentangle(const EvalCounts *c)
{
    return (eval_cause(c) + eval_isolate(c)) / 2;   /* NAN unless both exist */
}
