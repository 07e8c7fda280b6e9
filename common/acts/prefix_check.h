/* The teacher-forced answer check (model_runner_answer_check's rule) with
 * shared prompt prefixes computed once.
 *
 * Verification prompts come from templates: every entity of one template
 * shares the template's text before the entity (74-90% of a RAVEL
 * template's characters).  The sequences are sorted by their token ids, so
 * that those sharing a prefix lie next to each other, and cut into groups of
 * at most twice `batch`; each group's common token prefix runs once (one
 * row of a left-padded batch of prefixes) through a key/value cache, whose
 * rows are saved and then loaded behind every sequence of the group
 * (llama_kv_save_row / llama_kv_load_row), and only the rest of each
 * sequence (entity, template tail, answer) runs as a right-padded batch.  A group ends where adding the
 * next sequence would raise the group's cost per sequence (its shared prefix
 * would shrink too much), so groups follow the templates.
 *
 * The outcome is the same check on the same tokens at the same positions;
 * the floating-point sums differ from the one-batch forward only in their
 * grouping (tests/test_llama_generate.c bounds the logits' difference). */
#ifndef HD_PREFIX_CHECK_H
#define HD_PREFIX_CHECK_H

#include <stdint.h>

#include "acts/pair_tokens.h"
#include "model/llama_model.h"

typedef struct {
    long long tokens;     /* token positions of the sequences checked */
    long long computed;   /* of which the model ran (prefixes once per group, pads included) */
    long long groups;     /* forwards of a shared prefix */
} PrefixCheckStats;

/* correct[i] for seqs[0..n): every answer token (positions prompt_len..n-1)
 * is the argmax of the logits one position before.  Sequences without an
 * answer count as not correct.  stats (may be NULL) is added to.  -1 with a
 * message on a failed allocation or forward. */
int prefix_check_run(const LlamaModel *m, const TokenSeq *const *seqs, int n, int batch,
                     int *correct, PrefixCheckStats *stats);

/* Token positions (pads included) the model would run for seqs[0..n):
 * *shared as prefix_check_run plans them, *whole as model_runner runs the
 * same sequences (sorted by length, `batch` per batch, padded to the
 * longest).  Sharing pays only where templates repeat within the call: on
 * a few diverse prompts the prefixes share little but BOS and the plan's
 * two passes cost more than the whole sequences (a caller compares). */
void prefix_check_costs(const TokenSeq *const *seqs, int n, int batch, long long *shared, long long *whole);

#endif
