/* cache-acts: run the target model on pair records and cache its
 * activations as `acts` records (spec/records.md), the input of hd-train.
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
 * (4 batches) are run once and their states copied into every record that
 * needs them; each record stays self-contained, so a stream of acts can be
 * shuffled, split or read one record at a time. */
#include "cli.h"
#include "error.h"
#include "float16.h"
#include "header.h"
#include "model_runner.h"
#include "msgpack_util.h"
#include "pair_tokens.h"
#include "pair_window.h"
#include "record_input.h"
#include "record_shard.h"
#include "records.h"
#include "target_model.h"
#include "tensor.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void usage(void)
{
    printf(
        "Usage: cache-acts [options] [PAIRS...]\n"
        "Run the target model on pair records and write acts records: token ids,\n"
        "entity and label positions, hidden states of every (or the chosen) layer for\n"
        "base and source, and the model's own prediction.  PAIRS '-' or none is stdin.\n"
        "\n"
        "  -m, --model PATH    GGUF file or Hugging Face directory (default: $HD_MODEL,\n"
        "                      else the SmolLM2 of 'make model')\n"
        "  -b, --batch N       pairs per forward pass (default 8; 2N sequences)\n"
        "  -l, --layers LIST   hidden states to keep: 'all' (default) or a list of\n"
        "                      indices and ranges, e.g. 0,8-15,30\n"
        "      --dtype T       bf16 (default) or f32\n"
        "      --zlib N        compress each tensor with zlib level N (1-9)\n"
        "      --max-len N     longest sequence in tokens (default 256)\n"
        "      --no-bos        do not prepend the model's BOS token\n"
        "      --shard I/N     write shard I of N (0 <= I < N; PAIRS must be files):\n"
        "                      'cat' of the N shards has the unsharded run's data\n"
        "                      records, byte for byte (same --batch)\n"
        "  -t, --threads N     CPU threads (default: all)\n"
        "  -o, --output FILE   write to FILE (atomically) instead of stdout\n"
        "  -z, --gzip          gzip the whole output stream\n"
        "  -h, --help          this text\n"
        "      --version       version\n");
}


typedef struct {
    TargetModel target;
    ModelRunner runner;
    RecordWriter *out;
    int batch;
    int *layers, n_layers;
    DType dtype;
    int zlib;
    float *rows;                  /* scratch: one sequence's states, f32 */
    void *packed;                 /* scratch: the same in the output dtype */
    size_t scratch_cap;
} Cache;

/* "all" or "0,8-15,30" into a sorted list of distinct indices. */
static int parse_layers(const char *spec, int n_layers, int **out)
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
            if (end == p) hd_usage_error("--layers: cannot read '%s'", spec);
            p = end;
            if (*p == '-') {
                b = strtol(p + 1, &end, 10);
                if (end == p + 1) hd_usage_error("--layers: cannot read '%s'", spec);
                p = end;
            }
            if (a < 0 || b > n_layers || a > b)
                hd_usage_error("--layers: %ld-%ld is outside 0-%d", a, b, n_layers);
            for (long i = a; i <= b; i++) want[i] = 1;
            if (*p == ',') p++;
            else if (*p) hd_usage_error("--layers: cannot read '%s'", spec);
        }
    }
    int n = 0;
    for (int i = 0; i <= n_layers; i++)
        if (want[i]) list[n++] = i;
    free(want);
    *out = list;
    return n;
}

static void pack_ids(msgpack_packer *pk, const char *key, const int32_t *ids, int n)
{
    int64_t shape[1] = {n};
    mp_pack_str(pk, key);
    tensor_pack(pk, DTYPE_I32, 1, shape, ids, 0);
}

/* The states of computed sequence `slot` for every kept layer, as one
 * [n_layers_kept, len, d] tensor. */
static void pack_states(Cache *c, msgpack_packer *pk, const char *key, int slot, int len)
{
    int d = c->target.model.cfg.hidden_size;
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
    mp_pack_str(pk, key);
    if (tensor_pack(pk, c->dtype, 3, shape, data, c->zlib) < 0) hd_die("%s", hd_last_error());
}

static int same_seq(const TokenSeq *a, const TokenSeq *b)
{
    return a->n == b->n && memcmp(a->ids, b->ids, (size_t)a->n * sizeof *a->ids) == 0;
}

static void write_record(Cache *c, const PairItem *it, int base_slot, int source_slot,
                         const int32_t *pred, int correct)
{
    static const char *const replaced[] = {
        "model_id", "layers", "base_ids", "base_prompt_len", "base_entity_pos", "source_ids",
        "source_entity_pos", "instruction_ids", "label_ids", "base_hidden", "source_hidden",
        "base_pred_ids", "base_pred_correct"};
    const int n_replaced = (int)(sizeof replaced / sizeof *replaced);
    const TokenSeq *base = &it->tokens.base, *src = &it->tokens.source;
    int n_label = base->n - base->prompt_len;
    msgpack_packer *pk = record_writer_packer(c->out);
    mp_pack_record_rewrite(pk, it->rec, "acts", replaced, n_replaced, n_replaced);
    mp_pack_str(pk, "model_id");
    mp_pack_str(pk, c->target.model.cfg.model_id);
    mp_pack_str(pk, "layers");
    msgpack_pack_array(pk, c->n_layers);
    for (int i = 0; i < c->n_layers; i++) msgpack_pack_int(pk, c->layers[i]);
    pack_ids(pk, "base_ids", base->ids, base->n);
    mp_pack_str(pk, "base_prompt_len");
    msgpack_pack_int(pk, base->prompt_len);
    mp_pack_str(pk, "base_entity_pos");
    msgpack_pack_int(pk, base->entity_last);
    pack_ids(pk, "source_ids", src->ids, src->n);
    mp_pack_str(pk, "source_entity_pos");
    msgpack_pack_int(pk, src->entity_last);
    pack_ids(pk, "instruction_ids", it->tokens.instruction.ids, it->tokens.instruction.n);
    pack_ids(pk, "label_ids", base->ids + base->prompt_len, n_label);
    pack_states(c, pk, "base_hidden", base_slot, base->n);
    pack_states(c, pk, "source_hidden", source_slot, src->n);
    pack_ids(pk, "base_pred_ids", pred, n_label);
    mp_pack_str(pk, "base_pred_correct");
    if (correct) msgpack_pack_true(pk);
    else msgpack_pack_false(pk);
    if (record_writer_end_record(c->out) < 0) hd_die("%s", hd_last_error());
}

/* Runs one window of pairs, batch by batch, each distinct sequence once. */
static void flush_window(void *ctx, PairItem *items, int n)
{
    Cache *c = ctx;
    for (int start = 0; start < n; start += c->batch) {
        int k = n - start < c->batch ? n - start : c->batch;
        const TokenSeq **seqs = hd_malloc((size_t)2 * k * sizeof *seqs);
        int *source_slot = hd_malloc((size_t)k * sizeof *source_slot);
        /* base sequences first (slots 0..k-1, the answer check reads them),
         * then each distinct source */
        for (int i = 0; i < k; i++) seqs[i] = &items[start + i].tokens.base;
        int m = k;
        for (int i = 0; i < k; i++) {
            const TokenSeq *s = &items[start + i].tokens.source;
            int slot = -1;
            for (int j = k; j < m && slot < 0; j++)
                if (same_seq(seqs[j], s)) slot = j;
            if (slot < 0) {
                seqs[m] = s;
                slot = m++;
            }
            source_slot[i] = slot;
        }
        int32_t **pred = hd_malloc((size_t)k * sizeof *pred);
        int *correct = hd_malloc((size_t)k * sizeof *correct);
        if (model_runner_forward(&c->runner, seqs, m) < 0 ||
            model_runner_answer_check(&c->runner, seqs, k, pred, correct) < 0)
            hd_die("%s", hd_last_error());
        for (int i = 0; i < k; i++) {
            write_record(c, &items[start + i], i, source_slot[i], pred[i], correct[i]);
            free(pred[i]);
        }
        free(pred);
        free(correct);
        free(source_slot);
        free(seqs);
    }
}

int main(int argc, char **argv)
{
    hd_cli_init(argc, argv, "cache-acts");
    const char *model = NULL, *output = NULL, *layer_spec = "all";
    int batch = 8, gzip = 0, max_len = 256, use_bos = 1, zlib = 0;
    DType dtype = DTYPE_BF16;
    RecordShard shard = {0, 1};
    int sharded = 0;
    enum { OPT_DTYPE = 256, OPT_ZLIB, OPT_MAX_LEN, OPT_NO_BOS, OPT_SHARD, OPT_VERSION };
    static const struct option longopts[] = {
        {"model", required_argument, 0, 'm'},   {"batch", required_argument, 0, 'b'},
        {"layers", required_argument, 0, 'l'},  {"dtype", required_argument, 0, OPT_DTYPE},
        {"zlib", required_argument, 0, OPT_ZLIB}, {"max-len", required_argument, 0, OPT_MAX_LEN},
        {"no-bos", no_argument, 0, OPT_NO_BOS}, {"shard", required_argument, 0, OPT_SHARD},
        {"threads", required_argument, 0, 't'},
        {"output", required_argument, 0, 'o'},  {"gzip", no_argument, 0, 'z'},
        {"help", no_argument, 0, 'h'},          {"version", no_argument, 0, OPT_VERSION},
        {0, 0, 0, 0}};
    int c;
    while ((c = getopt_long(argc, argv, "m:b:l:t:o:zh", longopts, NULL)) != -1) {
        switch (c) {
        case 'm': model = optarg; break;
        case 'b': batch = (int)hd_cli_parse_count("--batch", optarg); break;
        case 'l': layer_spec = optarg; break;
        case OPT_DTYPE:
            if (strcmp(optarg, "bf16") == 0) dtype = DTYPE_BF16;
            else if (strcmp(optarg, "f32") == 0) dtype = DTYPE_F32;
            else hd_usage_error("--dtype: expected bf16 or f32, got '%s'", optarg);
            break;
        case OPT_ZLIB:
            zlib = (int)hd_cli_parse_count("--zlib", optarg);
            if (zlib < 1 || zlib > 9) hd_usage_error("--zlib: expected a level 1-9");
            break;
        case OPT_MAX_LEN: max_len = (int)hd_cli_parse_count("--max-len", optarg); break;
        case OPT_NO_BOS: use_bos = 0; break;
        case OPT_SHARD:
            if (record_shard_parse(optarg, &shard) < 0) hd_usage_error("%s", hd_last_error());
            sharded = 1;
            break;
        case 't': hd_set_threads((int)hd_cli_parse_count("--threads", optarg)); break;
        case 'o': output = optarg; break;
        case 'z': gzip = 1; break;
        case 'h': usage(); return 0;
        case OPT_VERSION: hd_cli_print_version(); return 0;
        default: hd_usage_error("unknown option");
        }
    }
    if (batch < 1) hd_usage_error("--batch must be at least 1");
    char **files = argv + optind;
    int n_files = argc - optind;
    if (sharded && record_shard_check_inputs(files, n_files) < 0)
        hd_usage_error("%s", hd_last_error());

    Cache cache = {.batch = batch, .dtype = dtype, .zlib = zlib};
    const char *path = target_model_resolve(model);
    if (!path || target_model_load(&cache.target, path, use_bos) < 0) hd_die("%s", hd_last_error());
    cache.n_layers = parse_layers(layer_spec, cache.target.model.cfg.n_layers, &cache.layers);
    model_runner_init(&cache.runner, &cache.target.model, max_len);

    /* pair_window_run batches pairs `batch` at a time from the start and
     * after any other record: a shard is cut only there */
    ShardBatching how = {"pair", batch, 1};
    ShardRange range;
    RecordInput *in = record_shard_open(files, n_files, sharded ? &shard : NULL, &how, &range);
    if (!in) hd_die("%s", hd_last_error());
    cache.out = record_writer_open(output, gzip);
    if (!cache.out) hd_die("%s", hd_last_error());
    msgpack_packer *pk = record_writer_packer(cache.out);
    header_pack_begin(pk, "acts", record_input_headers(in), record_input_n_headers(in),
                      TARGET_MODEL_INFO_PAIRS + 2 + sharded);
    target_model_pack_info(pk, &cache.target);
    mp_pack_str(pk, "layers");
    msgpack_pack_array(pk, cache.n_layers);
    for (int i = 0; i < cache.n_layers; i++) msgpack_pack_int(pk, cache.layers[i]);
    mp_pack_str(pk, "dtype");
    mp_pack_str(pk, dtype_name(dtype));
    if (sharded) record_shard_pack(pk, &shard);
    if (record_writer_end_record(cache.out) < 0) hd_die("%s", hd_last_error());

    if (pair_window_run(in, &cache.target, cache.out, batch * 4, flush_window, &cache) < 0)
        hd_die("%s", hd_last_error());
    if (record_writer_close(cache.out) < 0) hd_die("%s", hd_last_error());
    free(cache.layers);
    free(cache.rows);
    free(cache.packed);
    record_input_close(in);
    model_runner_free(&cache.runner);
    target_model_free(&cache.target);
    return 0;
}
