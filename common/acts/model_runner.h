/* Running the frozen target on a batch of token sequences of different
 * lengths: left padding into one [b, T] batch, activation buffers that grow
 * with the batch, and the teacher-forced answer check that the model
 * filter, cache-acts and the scorer share. */
#ifndef HD_MODEL_RUNNER_H
#define HD_MODEL_RUNNER_H

#include <stdint.h>

#include "model/llama_forward.h"
#include "acts/pair_tokens.h"

typedef struct LlamaCuda LlamaCuda;

typedef struct {
    const LlamaModel *model;
    LlamaCuda *gpu;       /* NULL: the CPU forward; else llama_cuda_forward (borrowed) */
    LlamaActivations *acts;
    int cap_b, cap_T;
    int b, T;
    int *ids, *mask;      /* [b*T] of the current batch */
    int *pad;             /* [b] left pads of each row */
    int max_len;          /* longest sequence accepted */
} ModelRunner;

void model_runner_init(ModelRunner *r, const LlamaModel *m, int max_len);
void model_runner_free(ModelRunner *r);

/* Pads seqs[0..n) into the batch and runs every layer.  -1 with a message
 * when a sequence is longer than max_len or the forward fails. */
int model_runner_forward(ModelRunner *r, const TokenSeq *const *seqs, int n);

/* Flat row (r*T + t) of position t of sequence r in the current batch. */
static inline int model_runner_row(const ModelRunner *r, int seq, int t)
{
    return seq * r->T + r->pad[seq] + t;
}

/* After model_runner_forward: for each sequence, the argmax prediction of
 * every answer token (positions prompt_len..n-1, each predicted from the
 * position before), teacher-forced.  pred[i] gets n - prompt_len ids
 * (malloc'd), correct[i] whether all of them equal the answer. */
int model_runner_answer_check(ModelRunner *r, const TokenSeq *const *seqs, int n, int32_t **pred,
                              int *correct);

#endif
