/* A pair record (hyperdas-records(5) PAIR) turned into the token sequences
 * the model-side tools run, with the positions HyperDAS and the baselines
 * need.  Every sequence is [BOS] + tokens(text) (target_model_encode).
 *
 *   base     BOS + base_input + answer_sep + label   (teacher-forced input)
 *   source   BOS + source_input
 *   verify   BOS + verify_input + answer_sep + label (the model filter's input)
 *   instruction  BOS + instruction                   (the hypernetwork's input)
 *
 * The answer tokens of base and verify are those after the token count of
 * BOS + prompt tokenised alone (the HyperDAS rule, hyperdas(7) 2.2): the
 * answer is tokenised in context.  Entity positions come from the
 * tokenizer's byte offsets: the last entity token is the last token that
 * overlaps the entity's byte span, and the visible prefix (the positions an
 * intervention may touch, hyperdas(7) 2.2) is BOS up to that token. */
#ifndef HD_PAIR_TOKENS_H
#define HD_PAIR_TOKENS_H

#include <msgpack.h>
#include <stdint.h>

#include "model/target_model.h"

typedef struct {
    int32_t *ids;
    int n;
    int prompt_len;    /* tokens before the answer (== n when no answer) */
    int entity_last;   /* index of the last entity token, -1 if none */
} TokenSeq;

typedef struct {
    TokenSeq base, source, verify, instruction;
} PairTokens;

/* Builds every sequence of one pair record; -1 with a message naming the
 * missing or malformed field. */
int pair_tokens_build(const TargetModel *t, const msgpack_object *pair, PairTokens *out);
void pair_tokens_free(PairTokens *p);

/* One sequence BOS + prompt + sep + answer with the answer tokens after the
 * prompt's own token count (the verify sequence of a pair, built from the
 * fields of a `query` record); entity_last is -1.  -1 (hd_fail) when the
 * answer adds no token. */
int pair_tokens_answer(const TargetModel *t, const char *prompt, size_t np, const char *sep, size_t ns,
                       const char *answer, size_t na, TokenSeq *out);

#endif
