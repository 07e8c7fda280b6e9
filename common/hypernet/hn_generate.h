/* Greedy generation from the intervened base prompt: the RAVEL correctness
 * rule of hyperdas(7) 9.2 ("greedy-generate n new tokens from the
 * intervened base prompt, compare the first n label tokens").
 *
 * The intervention (common/hypernet/hypernet.h) edits hs[L], the residual entering
 * layer L, at positions of the base PROMPT only (BOS up to the last entity
 * token), and by causality the intervened prompt states do not depend on
 * anything after the prompt.  So after one hypernet_forward on the batch
 * (the teacher-forced run; HnView.new_hidden holds the edited hs[L] of
 * every base position) step j of the generation is:
 *
 *   sequence  = the row's prompt tokens + the j tokens generated so far
 *   run layers [0, L) of the target on it (fresh ids),
 *   hs[L] at the prompt positions <- new_hidden at those positions,
 *   hs[L] at the generated positions as computed,
 *   run layers [L, Lt), token j = argmax of the logits at the last position.
 *
 * This is what a KV-cached generate() with the intervention applied to the
 * prompt pass computes (the generated tokens attend, at layers >= L, to the
 * intervened prompt states), recomputed from scratch at each step instead:
 * RAVEL prompts are ~30 tokens and n is ~3, so no cache is needed.
 *
 * Layout.  The prompts are re-padded on the LEFT to the longest prompt of
 * the batch (the label tokens, the last tokens of each base row, are
 * dropped) and the generated tokens are appended on the RIGHT, so every
 * row's last token is in the last column.  Positions follow the forward's
 * default rule (cumsum(mask) - 1, pads -1), so prompt token i has position i
 * exactly as in the base run that produced new_hidden, and generated token
 * j has position prompt_len + j, as in transformers' generate() on a
 * left-padded batch.  Pads are never attended to.
 *
 * No stop token: exactly n tokens are generated per row.  Tokens after an
 * EOS cannot change a first-n verdict (a label token is never EOS, so a
 * row that emitted EOS before its last compared label position is wrong
 * anyway).
 *
 * Worked example, RAVEL first-3 rule (hd-score, --match first-n --n 3):
 *
 *   hypernet_forward(hn, acts, target, &tb.hb, &opt, &loss);
 *   int plen[b], gen[b * 3];
 *   hn_prompt_lengths(&tb.hb, plen);
 *   hn_generate_greedy(hn, acts, target, &tb.hb, tb.base_ids, plen, 3, gen);
 *   for each row r, with pad_r = B - (its real tokens) and n_lab_r = its
 *   real tokens - plen[r] label tokens at the end of the row:
 *     correct[r] = score_match_tokens(gen + r * 3, 3,
 *                                     tb.base_ids + r * B + pad_r + plen[r], n_lab_r, 3);
 *
 * e.g. (ids made up) label " Paris" -> tokens [12095], one token: correct
 * iff gen[r*3] == 12095, whatever the two tokens after it; label " New
 * York" -> [1030, 4254]: the first two generated tokens must be 1030, 4254;
 * a 5-token label: its first 3 tokens against the 3 generated.  The first
 * generated token is the teacher-forced argmax before the first label
 * token, so with n = 1 both rules of hyperdas(7) 9.1 and 9.2 agree (tests/test_hn_generate.c). */
#ifndef HD_HN_GENERATE_H
#define HD_HN_GENERATE_H

#include "hypernet/hypernet.h"
#include "model/llama_model.h"

/* prompt_len[r] for the rows of a left-padded batch: the real tokens of
 * row r before its first label token (labels != -100), or all its real
 * tokens when the row has no label.  -1 with a message on a malformed
 * batch (no mask or labels, a row that is not left padded, a row whose
 * first real token is a label). */
int hn_prompt_lengths(const HnBatch *batch, int *prompt_len);

/* out [b, n]: the n greedy tokens of each row of `batch` after the
 * intervention of the last hypernet_forward(hn, acts, target, batch, ...),
 * generated from the first prompt_len[r] real tokens of each row.
 *   base_ids   [b, B] the batch's left-padded base ids, label tokens
 *              included (TrainBatch.base_ids)
 *   prompt_len [b] real prompt tokens per row, 1 <= prompt_len[r] <= the
 *              row's real tokens; NULL: hn_prompt_lengths(batch)
 * The acts are only read (HnView stays valid).  -1 with a message on bad
 * arguments, a batch that is not the last forward's, or no forward. */
int hn_generate_greedy(const Hypernet *hn, const HnActs *acts, const LlamaModel *target,
                       const HnBatch *batch, const int *base_ids, const int *prompt_len, int n,
                       int *out);

#endif
