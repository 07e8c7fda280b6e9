#include "acts/acts_cache.h"
#include "model/llama_cuda.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/error.h"
#include "float16.h"
#include "stream/map_writer.h"
#include "stream/msgpack_util.h"
#include "acts/pair_tokens.h"
#include "acts/pair_window.h"

/* "all" or "0,8-15,30" into a sorted list of distinct indices. */
int acts_cache_parse_layers(const char *spec, int n_layers, int **out)
{
    int *list = hd_malloc((size_t)(n_layers + 1) * sizeof *list);
    unsigned char *want = hd_calloc((size_t)n_layers + 1, 1);
    if (strcmp(spec, "all") == 0) {
        memset(want, 1, (size_t)n_layers + 1);
    } else {
        const char *p = spec;
        while (*p) {
            char *end;
            long a = strtol(p, &end, 10), b = a;
            if (end == p) goto unreadable;
            p = end;
            if (*p == '-') {
                b = strtol(p + 1, &end, 10);
                if (end == p + 1) goto unreadable;
                p = end;
            }
            if (a < 0 || b > n_layers || a > b) {
                free(list);
                free(want);
                return hd_fail("--layers: %ld-%ld is outside 0-%d", a, b, n_layers);
            }
            for (long i = a; i <= b; i++) want[i] = 1;
            if (*p == ',') p++;
            else if (*p) goto unreadable;
        }
    }
    int n = 0;
    for (int i = 0; i <= n_layers; i++)
        if (want[i]) list[n++] = i;
    free(want);
    *out = list;
    return n;
unreadable:
    free(list);
    free(want);
    return hd_fail("--layers: cannot read '%s'", spec);
}

static void pack_ids(MapWriter *m, const char *key, const int32_t *ids, int n)
{
    int64_t shape[1] = {n};
    tensor_pack(map_key(m, key), DTYPE_I32, 1, shape, ids, 0);
}

/* The states of computed sequence `slot` for every kept layer, as one
 * [n_layers_kept, len, d] tensor. */
static void pack_states(ActsCache *c, MapWriter *m, const char *key, int slot, int len)
{
    int d = c->target->model.cfg.hidden_size;
    size_t n = (size_t)c->n_layers * len * d;
    if (n > c->scratch_cap) {
        c->rows = hd_realloc(c->rows, n * sizeof *c->rows);
        c->packed = hd_realloc(c->packed, n * sizeof(float));
        c->scratch_cap = n;
    }
    for (int li = 0; li < c->n_layers; li++) {
        const float *hs = llama_hidden_state(c->runner.acts, c->layers[li]);
        int row0 = model_runner_row(&c->runner, slot, 0);
        memcpy(c->rows + (size_t)li * len * d, hs + (size_t)row0 * d, (size_t)len * d * sizeof(float));
    }
    const void *data = c->rows;
    if (c->dtype == DTYPE_BF16) {
        uint16_t *h = c->packed;
        for (size_t i = 0; i < n; i++) h[i] = f32_to_bf16(c->rows[i]);
        data = h;
    }
    int64_t shape[3] = {c->n_layers, len, d};
    if (tensor_pack(map_key(m, key), c->dtype, 3, shape, data, c->zlib) < 0) hd_die("%s", hd_last_error());
}

static int same_seq(const TokenSeq *a, const TokenSeq *b)
{
    return a->n == b->n && memcmp(a->ids, b->ids, (size_t)a->n * sizeof *a->ids) == 0;
}

/* A sequence's states key in this stream (model, dtype, layers, ids). */
static uint64_t seq_key(const ActsCache *c, const TokenSeq *s)
{
    return states_key(c->target->model.cfg.model_id, c->dtype, c->layers, c->n_layers, s->ids,
                      s->n);
}

/* Shared states: writes sequence `slot`'s states record unless the stream
 * has it already; returns its key, for the acts record that names it. */
static uint64_t states_once(ActsCache *c, const TokenSeq *seq, int slot)
{
    uint64_t key = seq_key(c, seq);
    if (states_index_find(&c->written, key, NULL, NULL)) return key;
    if (slot < 0) hd_die("internal error: states of a sequence that did not run");
    states_index_put(&c->written, key, 0, 0);
    char hex[17];
    states_key_format(key, hex);
    MapWriter m;
    map_begin(&m, record_writer_packer(c->out));
    map_str(&m, "t", "states");
    map_str(&m, "key", hex);
    pack_ids(&m, "ids", seq->ids, seq->n);
    pack_states(c, &m, "hidden", slot, seq->n);
    if (map_end(&m) < 0 || record_writer_end_record(c->out) < 0) hd_die("%s", hd_last_error());
    return key;
}

static void pack_key(MapWriter *m, const char *field, uint64_t key)
{
    char hex[17];
    states_key_format(key, hex);
    map_str(m, field, hex);
}

static void write_record(ActsCache *c, const PairItem *it, int base_slot, int source_slot,
                         const int32_t *pred, int correct)
{
    static const char *const replaced[] = {
        "model_id", "layers", "base_ids", "base_prompt_len", "base_entity_pos", "source_ids",
        "source_entity_pos", "instruction_ids", "label_ids", "base_hidden", "source_hidden",
        "base_states", "source_states", "base_pred_ids", "base_pred_correct"};
    const int n_replaced = (int)(sizeof replaced / sizeof *replaced);
    const TokenSeq *base = &it->tokens.base, *src = &it->tokens.source;
    int n_label = base->n - base->prompt_len;
    uint64_t base_key = 0, src_key = 0;
    if (!c->inline_states) {  /* the states records go first: readers need them */
        base_key = states_once(c, base, base_slot);
        src_key = states_once(c, src, source_slot);
    }
    MapWriter m;
    map_begin(&m, record_writer_packer(c->out));
    map_record_rewrite(&m, it->rec, "acts", replaced, n_replaced);
    map_str(&m, "model_id", c->target->model.cfg.model_id);
    msgpack_packer *pk = map_key(&m, "layers");
    msgpack_pack_array(pk, c->n_layers);
    for (int i = 0; i < c->n_layers; i++) msgpack_pack_int(pk, c->layers[i]);
    pack_ids(&m, "base_ids", base->ids, base->n);
    msgpack_pack_int(map_key(&m, "base_prompt_len"), base->prompt_len);
    msgpack_pack_int(map_key(&m, "base_entity_pos"), base->entity_last);
    pack_ids(&m, "source_ids", src->ids, src->n);
    msgpack_pack_int(map_key(&m, "source_entity_pos"), src->entity_last);
    pack_ids(&m, "instruction_ids", it->tokens.instruction.ids, it->tokens.instruction.n);
    pack_ids(&m, "label_ids", base->ids + base->prompt_len, n_label);
    if (c->inline_states) {
        pack_states(c, &m, "base_hidden", base_slot, base->n);
        pack_states(c, &m, "source_hidden", source_slot, src->n);
    } else {
        pack_key(&m, "base_states", base_key);
        pack_key(&m, "source_states", src_key);
    }
    pack_ids(&m, "base_pred_ids", pred, n_label);
    map_bool(&m, "base_pred_correct", correct);
    if (map_end(&m) < 0 || record_writer_end_record(c->out) < 0) hd_die("%s", hd_last_error());
}

/* Shared states: the answer check of a base sequence already written
 * (its prediction depends on the ids and where the label starts). */
static uint64_t pred_key(ActsCache *c, const TokenSeq *base)
{
    return seq_key(c, base) ^ ((uint64_t)base->prompt_len * 0x9e3779b97f4a7c15ULL);
}

static int cached_pred(ActsCache *c, const TokenSeq *base, int32_t **pred, int *correct)
{
    uint64_t at, n;
    if (!states_index_find(&c->pred_index, pred_key(c, base), &at, &n)) return 0;
    *pred = hd_malloc((n ? n : 1) * sizeof **pred);
    memcpy(*pred, c->preds + at, n * sizeof **pred);
    *correct = c->pred_correct[at];
    return 1;
}

static void cache_pred(ActsCache *c, const TokenSeq *base, const int32_t *pred, int correct)
{
    size_t n = (size_t)(base->n - base->prompt_len);
    if (c->n_preds + n > c->cap_preds) {
        c->cap_preds = 2 * (c->n_preds + n) + 1024;
        c->preds = hd_realloc(c->preds, c->cap_preds * sizeof *c->preds);
        c->pred_correct = hd_realloc(c->pred_correct, c->cap_preds);
    }
    memcpy(c->preds + c->n_preds, pred, n * sizeof *pred);
    c->pred_correct[c->n_preds] = (unsigned char)correct;
    states_index_put(&c->pred_index, pred_key(c, base), c->n_preds, n);
    c->n_preds += n;
}

static int written(ActsCache *c, const TokenSeq *s)
{
    return states_index_find(&c->written, seq_key(c, s), NULL, NULL);
}

/* Runs one window of pairs, batch by batch, each distinct sequence once
 * per batch; with shared states, a sequence the stream already holds is
 * not run again (a source at all, a base only for its cached answer). */
static void flush_window(void *ctx, PairItem *items, int n)
{
    ActsCache *c = ctx;
    const int shared = !c->inline_states;
    for (int start = 0; start < n; start += c->batch) {
        int k = n - start < c->batch ? n - start : c->batch;
        const TokenSeq **seqs = hd_malloc((size_t)2 * k * sizeof *seqs);
        int *base_slot = hd_malloc((size_t)k * sizeof *base_slot);
        int *source_slot = hd_malloc((size_t)k * sizeof *source_slot);
        int32_t **pred = hd_calloc((size_t)k, sizeof *pred);
        int *correct = hd_malloc((size_t)k * sizeof *correct);
        /* base sequences to run first (slots 0..kb-1, the answer check
         * reads them), then each distinct source to run */
        int m = 0;
        for (int i = 0; i < k; i++) {
            const TokenSeq *b = &items[start + i].tokens.base;
            base_slot[i] = -1;
            if (shared && written(c, b) && cached_pred(c, b, &pred[i], &correct[i])) continue;
            seqs[m] = b;
            base_slot[i] = m++;
        }
        const int kb = m;
        for (int i = 0; i < k; i++) {
            const TokenSeq *s = &items[start + i].tokens.source;
            int slot = -1;
            if (shared && written(c, s)) {
                source_slot[i] = -1;
                continue;
            }
            for (int j = kb; j < m && slot < 0; j++)
                if (same_seq(seqs[j], s)) slot = j;
            if (slot < 0) {
                seqs[m] = s;
                slot = m++;
            }
            source_slot[i] = slot;
        }
        if (m > 0 && model_runner_forward(&c->runner, seqs, m) < 0) hd_die("%s", hd_last_error());
        if (kb > 0) {
            int32_t **bp = hd_malloc((size_t)kb * sizeof *bp);
            int *bc = hd_malloc((size_t)kb * sizeof *bc);
            if (model_runner_answer_check(&c->runner, seqs, kb, bp, bc) < 0)
                hd_die("%s", hd_last_error());
            for (int i = 0; i < k; i++) {
                if (base_slot[i] < 0) continue;
                pred[i] = bp[base_slot[i]];
                correct[i] = bc[base_slot[i]];
                bp[base_slot[i]] = NULL;
                if (shared) cache_pred(c, seqs[base_slot[i]], pred[i], correct[i]);
            }
            for (int j = 0; j < kb; j++) free(bp[j]);  /* a base run twice in one batch */
            free(bp);
            free(bc);
        }
        for (int i = 0; i < k; i++) {
            write_record(c, &items[start + i], base_slot[i], source_slot[i], pred[i], correct[i]);
            free(pred[i]);
        }
        free(pred);
        free(correct);
        free(base_slot);
        free(source_slot);
        free(seqs);
    }
}

int acts_cache_init(ActsCache *c, const TargetModel *t, int batch, const char *layer_spec,
                    DType dtype, int zlib, int max_len)
{
    memset(c, 0, sizeof *c);
    c->target = t;
    c->batch = batch;
    c->dtype = dtype;
    c->zlib = zlib;
    c->n_layers = acts_cache_parse_layers(layer_spec, t->model.cfg.n_layers, &c->layers);
    if (c->n_layers < 0) return -1;
    model_runner_init(&c->runner, &t->model, max_len);
    states_index_init(&c->written);
    states_index_init(&c->pred_index);
    return 0;
}

void acts_cache_inline_states(ActsCache *c) { c->inline_states = 1; }

int acts_cache_use_cuda(ActsCache *c)
{
    if (!c->gpu && !(c->gpu = llama_cuda_create(&c->target->model))) return -1;
    c->runner.gpu = c->gpu;
    return 0;
}

void acts_cache_free(ActsCache *c)
{
    llama_cuda_free(c->gpu);
    free(c->layers);
    free(c->rows);
    free(c->packed);
    states_index_free(&c->written);
    states_index_free(&c->pred_index);
    free(c->preds);
    free(c->pred_correct);
    model_runner_free(&c->runner);
    memset(c, 0, sizeof *c);
}

void acts_cache_pack_header(const ActsCache *c, MapWriter *h)
{
    target_model_pack_info(h, c->target);
    msgpack_packer *pk = map_key(h, "layers");
    msgpack_pack_array(pk, c->n_layers);
    for (int i = 0; i < c->n_layers; i++) msgpack_pack_int(pk, c->layers[i]);
    map_str(h, "dtype", dtype_name(c->dtype));
    /* the GPU's states differ from the CPU's by bf16 rounding: say which */
    char device[300];
    llama_cuda_describe(c->gpu, device, sizeof device);
    map_str(h, "device", device);
    map_str(h, "states", c->inline_states ? "inline" : "shared");
}

int acts_cache_run(ActsCache *c, RecordInput *in, RecordWriter *out)
{
    c->out = out;
    return pair_window_run(in, c->target, out, c->batch * 4, flush_window, c);
}
