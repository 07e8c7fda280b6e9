/* A hypernetwork bound to its frozen target, as the tools that run it
 * (hd-train, hd-score) hold it: the target model, the hypernetwork, its
 * activation buffers grown to the largest batch seen, and the batch
 * assembled from acts records.  Also reading a checkpoint's config.json
 * back into a HypernetConfig. */
#ifndef HD_HN_SESSION_H
#define HD_HN_SESSION_H

#include <jansson.h>
#include <msgpack.h>

#include "hypernet/checkpoint.h"
#include "hypernet/hypernet.h"
#include "model/target_model.h"
#include "hypernet/train_batch.h"

typedef struct LlamaCuda LlamaCuda;

typedef struct {
    Hypernet *hn;
    HnActs *acts;
    int cap_b, cap_E, cap_B, cap_S;
    int recompute_target;   /* hn_acts_create_recomputing: less memory, 10-25% slower */
    TargetModel target;
    TrainBatch tb;
    /* where the step runs: view.K (hn_session_use_cuda, _use_staged; the
     * CPU unless set) */
    LlamaCuda *gpu;         /* the target on the GPU */
    LlamaView view;         /* the target as that backend holds it */
} HnSession;

/* Where a session's steps run: the tools' --device. */
typedef enum { HN_DEVICE_CPU = 0, HN_DEVICE_CUDA, HN_DEVICE_CPU_STAGED } HnDevice;

/* --device of hd-train and hd-score: cpu, cuda, or cpu-staged (the tests'
 * way to run the device path on a CPU); anything else is a usage error. */
HnDevice hn_device_parse(const char *value);

/* cuda: hn_session_use_cuda; cpu-staged: hn_session_use_staged; cpu:
 * nothing.  -1 with a message. */
int hn_session_use_device(HnSession *s, HnDevice device);

/* Runs the session's steps on the GPU: uploads the target's layers [L, N),
 * final norm and LM head (call after the hypernetwork is created, before
 * llama_model_release_layers) and puts the activations and a copy of the
 * hypernetwork's parameters there from the next fill on.  -1 with a
 * message (no GPU, a build without CUDA). */
int hn_session_use_cuda(HnSession *s);

/* For tests: the device code path (copies of the parameters, inputs
 * uploaded, moments and checkpoints downloaded) on the CPU's ops and
 * memory (compute_cpu_staged); results bit for bit the CPU's. */
void hn_session_use_staged(HnSession *s);

/* For a header's "device": "cpu", "cpu-staged", or "cuda: " and the GPU's name. */
void hn_session_describe_device(const HnSession *s, char *out, size_t size);

/* The target as the session's backend holds it (the CPU's when
 * hn_session_use_cuda was not called). */
const LlamaView *hn_session_target(HnSession *s);

/* Fills the session's batch from recs[0..n) and makes sure the activation
 * buffers hold it (on a device, growing them carries the device's
 * parameters over through the host copy).  -1 with a message (bad_index:
 * the failing record). */
int hn_session_fill(HnSession *s, const msgpack_object *const *recs, int n, int *bad_index);

/* The step directory a checkpoint argument names: DIR itself when it
 * holds config.json, else DIR's latest step (hd_malloc'd); NULL with a
 * message. */
char *hn_checkpoint_step_dir(const char *dir);

/* The start of every tool that runs a trained checkpoint (hd-score,
 * hd-locate): loads the target (model as target_model_resolve takes it,
 * with its BOS), finds the checkpoint's step directory, reads its
 * config.json (which must name the same target), creates the hypernetwork
 * and loads its weights.  *step gets the step directory (hd_malloc'd),
 * *st its training state.  -1 with a message; s then holds what was
 * loaded, for hn_session_free. */
int hn_session_open(HnSession *s, const char *model, const char *ckpt, char **step, TrainState *st);

/* Frees everything the session holds (the struct itself is the caller's). */
void hn_session_free(HnSession *s);

/* Reads step_dir/config.json: the "hypernetwork" section into *cfg (fields
 * not saved keep the values *cfg has), and checks that its "target" section
 * names the same model configuration as `target` (config hash).  Returns
 * the whole JSON document for the caller's own sections (json_decref it),
 * or NULL with a message naming the file. */
json_t *hn_config_read(const char *step_dir, HypernetConfig *cfg, const LlamaConfig *target);

#endif
