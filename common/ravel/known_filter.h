/* The model-knowledge filter of `ravel-pairs --filter` (hyperdas(7) 10.6).
 *
 * Input: a record stream of `known` records (hyperdas-records(5) KNOWN), one per
 * prompt a model was asked:
 *
 *   {"t": "known", "prompt": STR, "answer": STR, "correct": BOOL, "model": STR}
 *
 * prompt   the full prompt text (a template with the entity filled in);
 * answer   the gold answer that was checked, exactly as the pair records
 *          carry labels (no separator in front); optional: a record without
 *          it speaks for the prompt whatever the answer;
 * correct  whether the model produced that answer (the HyperDAS rule of
 *          hyperdas(7) 10.6: teacher-forced, full answer, exact tokens);
 * model    the model id; optional, but one stream must not mix models.
 *
 * A (prompt, answer) is known-correct when some record for it says
 * correct: true and none says false (a contradiction counts as not known,
 * the cautious reading).  Headers, `end` and other record types are skipped. */
#ifndef HD_KNOWN_FILTER_H
#define HD_KNOWN_FILTER_H

#include <msgpack.h>

typedef struct KnownFilter KnownFilter;

/* Reads the whole stream; NULL (hd_fail "FILE: record N: what") on error. */
KnownFilter *known_filter_load(const char *path);
/* 1 when (prompt, answer) is known-correct, else 0. */
int known_filter_correct(const KnownFilter *f, const char *prompt, const char *answer);

/* 1 known-correct, 0 known-incorrect (or contradictory), -1 never seen:
 * what a model-side tool needs to reuse earlier answers as a cache. */
int known_filter_lookup(const KnownFilter *f, const char *prompt, const char *answer);

/* An empty filter, and adding one outcome to it (copies the strings). */
KnownFilter *known_filter_new(void);
void known_filter_add(KnownFilter *f, const char *prompt, const char *answer, int correct);

long long known_filter_records(const KnownFilter *f);     /* known records read */
long long known_filter_n_correct(const KnownFilter *f);   /* of which correct */
const char *known_filter_model(const KnownFilter *f);     /* NULL when none named */
/* The stream's headers (copies), for the provenance `inputs` of the output. */
int known_filter_n_headers(const KnownFilter *f);
const msgpack_object *const *known_filter_headers(const KnownFilter *f);

void known_filter_free(KnownFilter *f);

#endif
