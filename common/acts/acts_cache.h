/* Running the target model on pair records and writing `acts` records:
 * the machinery of cache-acts, shared with hd-train (which can take pairs
 * and cache their activations itself).
 *
 * For each pair: the base sequence BOS + base_input + answer_sep + label
 * (teacher-forced, as HyperDAS runs it) and the source sequence
 * BOS + source_input are run through every layer in one left-padded batch;
 * the record gets the token ids, the positions the baselines need, the
 * hidden states of the chosen layers (Hugging Face hidden_states indices:
 * 0 = embeddings, l = after layer l, n_layers = after the final norm) and
 * the model's own teacher-forced prediction of the label.
 *
 * Repeated prompts: identical token sequences within a window of pairs
 * (4 batches) are run once.  By default each distinct sequence's states are
 * written once in the whole stream, as a `states` record that acts records
 * name (acts_states.h), and a sequence already written is not run again
 * (a base's answer check is remembered); acts_cache_inline_states makes
 * every record hold its own copy instead. */
#ifndef HD_ACTS_CACHE_H
#define HD_ACTS_CACHE_H

#include <msgpack.h>

#include "stream/acts_states.h"
#include "stream/map_writer.h"
#include "acts/model_runner.h"
#include "stream/record_input.h"
#include "stream/records.h"
#include "model/target_model.h"
#include "stream/tensor.h"

typedef struct {
    const TargetModel *target;    /* borrowed */
    ModelRunner runner;
    LlamaCuda *gpu;               /* acts_cache_use_cuda: the forward on the GPU */
    RecordWriter *out;
    int batch;
    int *layers, n_layers;
    DType dtype;
    int zlib;
    float *rows;                  /* scratch: one sequence's states, f32 */
    void *packed;                 /* scratch: the same in the output dtype */
    size_t scratch_cap;
    int inline_states;            /* 1: every record holds its own states */
    StatesIndex written;          /* shared: the keys already in the stream */
    StatesIndex pred_index;       /* shared: base key -> its answer check in preds */
    int32_t *preds;
    unsigned char *pred_correct;  /* [at] for the entry at preds + at */
    size_t n_preds, cap_preds;
} ActsCache;

/* "all" or "0,8-15,30" into a sorted list of distinct indices in
 * [0, n_layers] (malloc'd); its length, or -1 with a message. */
int acts_cache_parse_layers(const char *spec, int n_layers, int **out);

/* layer_spec as above; batch pairs per forward pass; max_len the longest
 * sequence.  -1 with a message on a bad layer list. */
int acts_cache_init(ActsCache *c, const TargetModel *t, int batch, const char *layer_spec,
                    DType dtype, int zlib, int max_len);
void acts_cache_free(ActsCache *c);

/* Runs the target on the GPU from now on (llama_cuda.h: bf16 weight
 * matrices, fp32 elsewhere; the answer check's logits stay on the host).
 * -1 with a message when there is no usable GPU or no CUDA in the build. */
int acts_cache_use_cuda(ActsCache *c);

/* Every acts record holds its own base_hidden and source_hidden (the
 * stream is then 2-3x larger on known-first pairs); call before the run. */
void acts_cache_inline_states(ActsCache *c);

/* Adds the acts header's own fields (model info, layers, dtype, device,
 * states) to a header begun with header_begin. */
void acts_cache_pack_header(const ActsCache *c, MapWriter *h);

/* Reads the pair records of `in` and writes one acts record per pair to
 * out (other record types pass through, as pair_window_run does).  -1
 * with a message naming the file and record. */
int acts_cache_run(ActsCache *c, RecordInput *in, RecordWriter *out);

#endif
