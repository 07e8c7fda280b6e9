/* When is one intervened prediction correct?  The two comparison rules of
 * hyperdas(7) 9.1 and 9.2 that work on data the caller already has: token ids
 * (the teacher-forced HyperDAS rule and RAVEL's first-n rule) and plain
 * text (the approximate fallback for prediction files holding text only).
 * The caller runs the model; these functions only compare. */
#ifndef HD_SCORE_MATCH_H
#define HD_SCORE_MATCH_H

/* Text fallback: 1 iff `generated`, with leading whitespace stripped,
 * starts with `label`, with leading whitespace stripped; byte-exact and
 * case-sensitive.  A label that is empty after stripping (or NULL) is
 * never correct, so a missing answer cannot score.  Approximate: it says
 * nothing about what follows the label ("Paris" matches "Parisian"). */
int score_match_text(const char *generated, const char *label);

/* Token rule: pred[i] is the model's token at label position i (the argmax
 * before label token i when teacher-forced, the i-th generated token when
 * generating).  n <= 0: every label token must match (HyperDAS);
 * n > 0: only the first n label tokens (RAVEL first-n), and a label shorter
 * than n needs only its own tokens.  Too few predictions for the tokens
 * that must match, or an empty label: incorrect.  Returns 1 or 0. */
int score_match_tokens(const int *pred, int n_pred, const int *label, int n_label, int n);

#endif
