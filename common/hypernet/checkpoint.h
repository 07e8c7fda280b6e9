/* hd-train checkpoints: a directory of step directories and a `latest`
 * link, each step directory complete or absent.
 *
 *   DIR/step-00000100/model.safetensors      every hypernetwork tensor by its
 *                                            reference name (f32), Q0 included
 *   DIR/step-00000100/optimizer.safetensors  AdamW moments "m.<name>", "v.<name>"
 *   DIR/step-00000100/config.json            hypernetwork configuration, target
 *                                            model identity, training options
 *   DIR/step-00000100/state.json             step, epoch, cursor, seed
 *   DIR/latest -> step-00000100
 *
 * A step is written into a temporary directory, renamed into place, and only
 * then is `latest` switched (a rename of a new link over the old one), so a
 * run killed at any moment leaves the previous checkpoint intact. */
#ifndef HD_CHECKPOINT_H
#define HD_CHECKPOINT_H

#include <stddef.h>
#include <stdint.h>

#include "hypernet/hypernet.h"

typedef struct {
    long step;          /* optimizer steps done */
    long epoch;         /* epoch of the next batch */
    long cursor;        /* examples of that epoch already used */
    uint64_t seed;
} TrainState;

/* config_json: the JSON object text written as config.json (the caller
 * builds it: it knows the options).  keep: step directories to keep (>= 1). */
int checkpoint_save(const char *dir, const Hypernet *hn, const float *adam_m, const float *adam_v,
                    const TrainState *st, const char *config_json, int keep);

/* The directory of the latest step (malloc'd), or NULL with a message. */
char *checkpoint_latest(const char *dir);

/* Loads tensors into an already created hypernetwork of the same
 * configuration; adam_m / adam_v may be NULL (evaluation).  -1 with a
 * message naming the file and tensor when a tensor is missing or of
 * another shape. */
int checkpoint_load(const char *step_dir, Hypernet *hn, float *adam_m, float *adam_v,
                    TrainState *st);

/* The state.json part of checkpoint_load: text (len bytes, not
 * NUL-terminated) -> st; -1 with a message naming path when it is not a
 * JSON object with integer step, epoch, cursor and seed, all >= 0. */
int checkpoint_state_parse(TrainState *st, const char *text, size_t len, const char *path);

#endif
