/* hd-train's options: what config.json of every checkpoint records, how
 * a resumed run reads them back (the checkpoint's configuration wins), the
 * defaults of each method, and the two schedules they drive (the learning
 * rate and the per-epoch data order). */
#ifndef HD_TRAIN_OPTIONS_H
#define HD_TRAIN_OPTIONS_H

#include <stddef.h>
#include <stdint.h>

#include "hypernet/hypernet.h"
#include "model/target_model.h"

/* Options a checkpoint fixes that have a default rather than a "not given"
 * value: TrainOptions.given records which were on the command line, so
 * that --resume refuses one that contradicts the checkpoint instead of
 * ignoring it (train_options_check_resume). */
enum {
    TRAIN_GIVEN_BATCH = 1 << 0,
    TRAIN_GIVEN_LR = 1 << 1,
    TRAIN_GIVEN_LR_MASK = 1 << 2,
    TRAIN_GIVEN_WD = 1 << 3,
    TRAIN_GIVEN_WARMUP = 1 << 4,
    TRAIN_GIVEN_SCHEDULE = 1 << 5,
    TRAIN_GIVEN_SPARSITY = 1 << 6, /* --sparsity or --no-sparsity */
    TRAIN_GIVEN_HEAD_STD = 1 << 7,
    TRAIN_GIVEN_SCRATCH = 1 << 8,
    TRAIN_GIVEN_SEED = 1 << 9,
};

typedef struct {
    /* lr_rotate, clip, causal_w, iso_w < 0 and eval_modes NULL: not given, so
     * the method's default (train_options_method_defaults) */
    const char *model, *ckpt, *resume, *val, *output;
    int overwrite;                 /* --overwrite: replace a run already in ckpt */
    unsigned given;                /* TRAIN_GIVEN_* */
    int gzip;
    int from_pairs;                /* inputs are pair records: cache their acts first */
    int recompute_target;          /* HnSession.recompute_target (memory, not results) */
    int fp32_target;               /* --fp32-target: frozen layers not packed (llama_pack.h) */
    long epochs, max_steps, batch, eval_every, save_every, keep, eval_tokens, eval_max;
    double lr, lr_rotate, lr_mask, wd, clip;
    long warmup;
    const char *schedule;          /* constant, linear, cosine */
    double causal_w, iso_w, sp_start, sp_end, sp_warmup;
    int sparsity;
    HypernetConfig hcfg;
    int from_scratch;
    double head_std;
    uint64_t seed;
    const char *eval_modes;
    long layer, hyper_layers, das_dim, sub_ffn;
    const char *subspace;
    const char *method;
} TrainOptions;

/* config.json of a checkpoint (malloc'd JSON text). */
char *train_options_json(const TrainOptions *o, const Hypernet *hn, const TargetModel *t);

/* Reads step_dir/config.json back into o (hypernetwork and training
 * options); -1 with a message naming the file and key. */
int train_options_restore(TrainOptions *o, const char *step_dir, const LlamaConfig *target);

/* --resume: cli holds the options as parsed (before any default was
 * filled in), ck the configuration read back from the checkpoint at
 * step_dir.  -1 with a message naming the first option given with
 * another value than the checkpoint's (compared as config.json prints
 * them); 0 when none contradicts it. */
int train_options_check_resume(const TrainOptions *cli, const TrainOptions *ck, const char *step_dir);

/* Fills the options left unset with the defaults of o->method; -1 with a
 * message for an unknown method. */
int train_options_method_defaults(TrainOptions *o);

/* The learning rate of step `step` of `total` for a group whose base rate
 * is `base`: linear warm-up, then constant, linear or cosine decay. */
double train_scheduled_lr(const TrainOptions *o, double base, long step, long total);

/* perm[0..n): the data order of `epoch`, a function of (seed, epoch) alone. */
void train_epoch_order(size_t *perm, size_t n, uint64_t seed, long epoch);

#endif
