/* Greedy generation with a key/value cache, batched over left-padded prompts.
 *
 * The prompt batch [b, T] (LEFT padded, mask 1 = real) is run once through
 * all layers, each layer appending its RoPE-rotated keys and its values to
 * the cache; every later step feeds one token per row and attends over the
 * cache, so a step costs one token's projections instead of a whole new
 * forward.  Position ids follow the forward's rule (count of real tokens
 * before this one; -1 for pads), which is also what transformers' generate()
 * gives real tokens, so greedy continuations match a one-prompt-at-a-time
 * reference run. */
#ifndef HD_LLAMA_GENERATE_H
#define HD_LLAMA_GENERATE_H

#include "model/llama_forward.h"
#include "model/llama_model.h"

typedef struct {
    LlamaConfig cfg;
    int max_b, max_step, cap;   /* rows, tokens per step, time steps in the cache */
    int b, len;                 /* rows in use, time steps filled */
    int step_T;                 /* tokens per row of the last step (rows of x) */
    float *k, *v;               /* n_layers blocks of [max_b, cap, Hkv*hd] */
    int *mask;                  /* [max_b, cap] 1 = real token */
    int *n_real;                /* [max_b] real tokens fed so far */
    int *pos;                   /* [max_b*max_step] positions of the current step */
    float *inv_freq, *rope_cos, *rope_sin;
    LlamaLayerActs step;        /* one layer's internals for a step */
    LlamaLayerScratch scratch;
    float *x, *x_next;          /* [max_b*max_step, d] residual stream of a step */
    float *last;                /* [max_b, d] final-norm output at each row's last token */
    float *logits;              /* [max_b, vocab] logits at each row's last token */
    float *mem;
} LlamaKVCache;

/* Room for max_b rows, steps of up to max_step tokens, cap time steps in
 * all.  NULL with a message on bad sizes or no memory. */
LlamaKVCache *llama_kv_create(const LlamaConfig *cfg, int max_b, int max_step, int cap);
void llama_kv_free(LlamaKVCache *c);
/* Empties the cache for a new batch. */
void llama_kv_reset(LlamaKVCache *c);

/* Feeds Tq tokens per row: ids [b, Tq], mask [b, Tq] (NULL = all real).
 * The batch size is fixed by the first step after a reset.  On return
 * c->logits [b, vocab] holds the logits after the last fed token of each
 * row.  -1 with a message on bad ids or mask values, or a full cache. */
int llama_kv_step(const LlamaModel *m, LlamaKVCache *c, const int *ids, const int *mask, int b,
                  int Tq);

/* Saving and reloading rows, so that a prompt prefix shared by several
 * sequences runs once: after a step, llama_kv_save_row copies the keys and
 * values of row r's last n time steps, every layer, to k and v
 * [n_layers, n, Hkv*hd]; llama_kv_start_rows empties the cache for b rows
 * of len masked time steps, and llama_kv_load_row fills row r's last n of
 * them from saved keys and values (RoPE already applied at the positions
 * they had, so the row's next tokens continue at position n).  -1 with a
 * message on sizes outside the cache. */
int llama_kv_save_row(const LlamaKVCache *c, int r, int n, float *k, float *v);
int llama_kv_start_rows(LlamaKVCache *c, int b, int len);
int llama_kv_load_row(LlamaKVCache *c, int r, int n, const float *k, const float *v);

/* Logits [n, vocab] at n tokens of the last step: rows[i] = r * step_T + t
 * for token t of row r.  What a teacher-forced check needs (the logits at
 * every answer position), where llama_kv_step gives only each row's last. */
int llama_kv_logits_rows(const LlamaModel *m, const LlamaKVCache *c, const int *rows, int n,
                         float *logits);

/* Index of the largest of n values (the first one on ties, as torch.argmax). */
int llama_argmax(const float *x, int n);

/* Greedy continuation of a left-padded prompt batch: out [b, n_new] gets
 * the argmax token of each step.  A row that emits one of stop_ids (n_stop
 * of them; NULL/0 = never stop) keeps that token, and its later entries are
 * -1.  Generation ends early when every row has stopped. */
int llama_generate_greedy(const LlamaModel *m, const int *ids, const int *mask, int b, int T,
                          int n_new, const int *stop_ids, int n_stop, int *out);

#endif
