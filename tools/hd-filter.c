/* hd-filter: keep the pairs the target model already knows.
 *
 * For each pair record, the model reads BOS + verify_input + answer_sep +
 * label in one teacher-forced pass; the pair is kept when every label
 * token is the model's argmax (spec/ravel.md 2.2, the HyperDAS rule).
 * Kept pairs are written unchanged except for "filtered": true.  Outcomes
 * can be saved as `known` records (--known-out) and reused (--known), so a
 * second run, or ravel-pairs --filter, costs no model time. */
#include "cli.h"
#include "error.h"
#include "header.h"
#include "known_filter.h"
#include "llama_cuda.h"
#include "model_runner.h"
#include "msgpack_util.h"
#include "pair_tokens.h"
#include "pair_window.h"
#include "record_input.h"
#include "records.h"
#include "target_model.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void usage(void)
{
    printf(
        "Usage: hd-filter [options] [PAIRS...]\n"
        "Keep the pair records whose answer the target model already gives: BOS +\n"
        "verify_input + answer_sep + label is run teacher-forced and the pair is kept\n"
        "when every label token is the model's argmax.  PAIRS '-' or none is stdin.\n"
        "\n"
        "  -m, --model PATH      GGUF file or Hugging Face directory (default: $HD_MODEL,\n"
        "                        else the SmolLM2 of 'make model')\n"
        "  -b, --batch N         sequences per forward pass (default 16)\n"
        "      --known FILE      reuse the outcomes in this stream of known records\n"
        "      --known-out FILE  write every outcome computed here as known records\n"
        "      --all             write every pair, with \"model_correct\": true/false,\n"
        "                        instead of dropping the ones the model gets wrong\n"
        "      --stats           print kept/tried per attribute and kind on stderr\n"
        "                        (always when stderr is a terminal)\n"
        "      --max-len N       longest sequence in tokens (default 256)\n"
        "      --no-bos          do not prepend the model's BOS token\n"
        "      --device D        cpu (default) or cuda: the forward on the GPU with\n"
        "                        bf16 weight matrices (cache-acts --device)\n"
        "  -t, --threads N       CPU threads (default: all)\n"
        "  -o, --output FILE     write to FILE (atomically) instead of stdout\n"
        "  -z, --gzip            gzip the output\n"
        "  -h, --help            this text\n"
        "      --version         version\n");
}

/* One pair of the window, with what the filter needs of it. */
typedef struct {
    const PairItem *pair;
    char *prompt;            /* verify_input, NUL-terminated copy */
    char *answer;            /* label */
    int outcome;             /* 1 correct, 0 wrong, -1 not yet known */
} Item;

typedef struct {
    char key[256];
    long long tried, kept;
} Stat;

typedef struct {
    TargetModel target;
    ModelRunner runner;
    KnownFilter *known;
    RecordWriter *out, *known_out;
    int batch, keep_all;
    Stat *stats;
    int n_stats;
} Filter;

static void count(Filter *f, const msgpack_object *rec, int kept)
{
    char key[256];
    const msgpack_object *a = mp_map_get(rec, "target_attribute"), *k = mp_map_get(rec, "kind");
    snprintf(key, sizeof key, "%.*s %.*s",
             a && a->type == MSGPACK_OBJECT_STR ? (int)a->via.str.size : 1,
             a && a->type == MSGPACK_OBJECT_STR ? a->via.str.ptr : "?",
             k && k->type == MSGPACK_OBJECT_STR ? (int)k->via.str.size : 1,
             k && k->type == MSGPACK_OBJECT_STR ? k->via.str.ptr : "?");
    int i = 0;
    while (i < f->n_stats && strcmp(f->stats[i].key, key) != 0) i++;
    if (i == f->n_stats) {
        f->stats = hd_realloc(f->stats, (size_t)(f->n_stats + 1) * sizeof *f->stats);
        memset(&f->stats[i], 0, sizeof f->stats[i]);
        snprintf(f->stats[i].key, sizeof f->stats[i].key, "%s", key);
        f->n_stats++;
    }
    f->stats[i].tried++;
    f->stats[i].kept += kept;
}

static void write_known(Filter *f, const char *prompt, const char *answer, int correct)
{
    if (!f->known_out) return;
    msgpack_packer *pk = record_writer_packer(f->known_out);
    msgpack_pack_map(pk, 5);
    mp_pack_str(pk, "t");
    mp_pack_str(pk, "known");
    mp_pack_str(pk, "prompt");
    mp_pack_str(pk, prompt);
    mp_pack_str(pk, "answer");
    mp_pack_str(pk, answer);
    mp_pack_str(pk, "correct");
    if (correct) msgpack_pack_true(pk);
    else msgpack_pack_false(pk);
    mp_pack_str(pk, "model");
    mp_pack_str(pk, f->target.model.cfg.model_id);
    if (record_writer_end_record(f->known_out) < 0) hd_die("%s", hd_last_error());
}

/* Runs the model on every item whose outcome is not known yet. */
static void resolve(Filter *f, Item *items, int n)
{
    const TokenSeq **todo = hd_malloc((size_t)n * sizeof *todo);
    int *which = hd_malloc((size_t)n * sizeof *which);
    int32_t **pred = hd_malloc((size_t)n * sizeof *pred);
    int *correct = hd_malloc((size_t)n * sizeof *correct);
    int m = 0;
    for (int i = 0; i < n; i++) {
        if (items[i].outcome >= 0) continue;
        /* the same prompt and answer twice in one batch: run it once */
        int dup = 0;
        for (int j = 0; j < m && !dup; j++)
            dup = strcmp(items[which[j]].prompt, items[i].prompt) == 0 &&
                  strcmp(items[which[j]].answer, items[i].answer) == 0;
        if (dup) continue;
        todo[m] = &items[i].pair->tokens.verify;
        which[m++] = i;
    }
    for (int start = 0; start < m; start += f->batch) {
        int k = m - start < f->batch ? m - start : f->batch;
        if (model_runner_forward(&f->runner, todo + start, k) < 0 ||
            model_runner_answer_check(&f->runner, todo + start, k, pred + start, correct + start) < 0)
            hd_die("%s", hd_last_error());
    }
    for (int j = 0; j < m; j++) {
        Item *it = &items[which[j]];
        known_filter_add(f->known, it->prompt, it->answer, correct[j]);
        write_known(f, it->prompt, it->answer, correct[j]);
        free(pred[j]);
    }
    for (int i = 0; i < n; i++)
        if (items[i].outcome < 0) items[i].outcome = known_filter_lookup(f->known, items[i].prompt, items[i].answer) == 1;
    free(todo);
    free(which);
    free(pred);
    free(correct);
}

/* A window of pairs: outcomes from the known table or the model, then
 * the kept pairs written in order. */
static void flush_window(void *ctx, PairItem *pairs, int n)
{
    Filter *f = ctx;
    Item *items = hd_calloc((size_t)n, sizeof *items);
    for (int i = 0; i < n; i++) {
        items[i].pair = &pairs[i];
        items[i].prompt = mp_strdup(mp_map_get(pairs[i].rec, "verify_input"));
        items[i].answer = mp_strdup(mp_map_get(pairs[i].rec, "label"));
        items[i].outcome = known_filter_lookup(f->known, items[i].prompt, items[i].answer);
    }
    resolve(f, items, n);
    for (int i = 0; i < n; i++) {
        const msgpack_object *rec = pairs[i].rec;
        count(f, rec, items[i].outcome);
        if (items[i].outcome || f->keep_all) {
            static const char *const skip[] = {"filtered", "model_correct"};
            msgpack_packer *pk = record_writer_packer(f->out);
            mp_pack_record_rewrite(pk, rec, "pair", skip, 2, f->keep_all ? 2 : 1);
            mp_pack_str(pk, "filtered");
            msgpack_pack_true(pk);
            if (f->keep_all) {
                mp_pack_str(pk, "model_correct");
                if (items[i].outcome) msgpack_pack_true(pk);
                else msgpack_pack_false(pk);
            }
            if (record_writer_end_record(f->out) < 0) hd_die("%s", hd_last_error());
        }
        free(items[i].prompt);
        free(items[i].answer);
    }
    free(items);
}

int main(int argc, char **argv)
{
    hd_cli_init(argc, argv, "hd-filter");
    const char *model = NULL, *known_in = NULL, *known_out = NULL, *output = NULL;
    int batch = 16, gzip = 0, keep_all = 0, stats = isatty(STDERR_FILENO), max_len = 256, use_bos = 1, use_cuda = 0;
    enum { OPT_KNOWN = 256, OPT_KNOWN_OUT, OPT_ALL, OPT_STATS, OPT_MAX_LEN, OPT_NO_BOS, OPT_DEVICE,
           OPT_VERSION };
    static const struct option longopts[] = {
        {"model", required_argument, 0, 'm'},     {"batch", required_argument, 0, 'b'},
        {"known", required_argument, 0, OPT_KNOWN}, {"known-out", required_argument, 0, OPT_KNOWN_OUT},
        {"all", no_argument, 0, OPT_ALL},         {"stats", no_argument, 0, OPT_STATS},
        {"max-len", required_argument, 0, OPT_MAX_LEN}, {"no-bos", no_argument, 0, OPT_NO_BOS},
        {"device", required_argument, 0, OPT_DEVICE},
        {"threads", required_argument, 0, 't'},   {"output", required_argument, 0, 'o'},
        {"gzip", no_argument, 0, 'z'},            {"help", no_argument, 0, 'h'},
        {"version", no_argument, 0, OPT_VERSION}, {0, 0, 0, 0}};
    int c;
    while ((c = getopt_long(argc, argv, "m:b:t:o:zh", longopts, NULL)) != -1) {
        switch (c) {
        case 'm': model = optarg; break;
        case 'b': batch = (int)hd_cli_parse_count("--batch", optarg); break;
        case OPT_KNOWN: known_in = optarg; break;
        case OPT_KNOWN_OUT: known_out = optarg; break;
        case OPT_ALL: keep_all = 1; break;
        case OPT_STATS: stats = 1; break;
        case OPT_MAX_LEN: max_len = (int)hd_cli_parse_count("--max-len", optarg); break;
        case OPT_NO_BOS: use_bos = 0; break;
        case OPT_DEVICE: use_cuda = hd_cli_parse_device(optarg); break;
        case 't': hd_set_threads((int)hd_cli_parse_count("--threads", optarg)); break;
        case 'o': output = optarg; break;
        case 'z': gzip = 1; break;
        case 'h': usage(); return 0;
        case OPT_VERSION: hd_cli_print_version(); return 0;
        default: hd_usage_error("unknown option");
        }
    }
    if (batch < 1) hd_usage_error("--batch must be at least 1");

    Filter f = {.batch = batch, .keep_all = keep_all};
    const char *path = target_model_resolve(model);
    if (!path || target_model_load(&f.target, path, use_bos) < 0) hd_die("%s", hd_last_error());
    model_runner_init(&f.runner, &f.target.model, max_len);
    if (use_cuda && !(f.runner.gpu = llama_cuda_create(&f.target.model)))
        hd_die("--device cuda: %s", hd_last_error());
    f.known = known_in ? known_filter_load(known_in) : known_filter_new();
    if (!f.known) hd_die("%s", hd_last_error());

    RecordInput *in = record_input_open(argv + optind, argc - optind);
    if (!in) hd_die("%s", hd_last_error());
    f.out = record_writer_open(output, gzip);
    if (!f.out) hd_die("%s", hd_last_error());
    msgpack_packer *pk = record_writer_packer(f.out);
    header_pack_begin(pk, "pairs", record_input_headers(in), record_input_n_headers(in),
                      TARGET_MODEL_INFO_PAIRS + 3);
    target_model_pack_info(pk, &f.target);
    char device[300]; /* near ties of the answer check can go either way in bf16 */
    llama_cuda_describe(f.runner.gpu, device, sizeof device);
    mp_pack_str(pk, "device");
    mp_pack_str(pk, device);
    mp_pack_str(pk, "filter");
    mp_pack_str(pk, "teacher-forced full answer (spec ravel.md 2.2)");
    mp_pack_str(pk, "filtered");
    msgpack_pack_true(pk);
    if (record_writer_end_record(f.out) < 0) hd_die("%s", hd_last_error());
    if (known_out) {
        f.known_out = record_writer_open(known_out, 0);
        if (!f.known_out) hd_die("%s", hd_last_error());
        pk = record_writer_packer(f.known_out);
        header_pack_begin(pk, "known", NULL, 0, TARGET_MODEL_INFO_PAIRS);
        target_model_pack_info(pk, &f.target);
        if (record_writer_end_record(f.known_out) < 0) hd_die("%s", hd_last_error());
    }

    /* a few batches at a time, so that repeats within a window run once */
    if (pair_window_run(in, &f.target, f.out, batch * 4, flush_window, &f) < 0)
        hd_die("%s", hd_last_error());
    if (record_writer_close(f.out) < 0) hd_die("%s", hd_last_error());
    if (f.known_out && record_writer_close(f.known_out) < 0) hd_die("%s", hd_last_error());
    if (stats) {
        long long tried = 0, kept = 0;
        for (int i = 0; i < f.n_stats; i++) {
            fprintf(stderr, "%s: %-40s kept %6lld of %6lld (%5.1f%%)\n", hd_progname, f.stats[i].key,
                    f.stats[i].kept, f.stats[i].tried, 100.0 * f.stats[i].kept / f.stats[i].tried);
            tried += f.stats[i].tried;
            kept += f.stats[i].kept;
        }
        fprintf(stderr, "%s: %-40s kept %6lld of %6lld (%5.1f%%)\n", hd_progname, "all", kept, tried,
                tried ? 100.0 * kept / tried : 0.0);
    }
    free(f.stats);
    record_input_close(in);
    known_filter_free(f.known);
    llama_cuda_free(f.runner.gpu);
    model_runner_free(&f.runner);
    target_model_free(&f.target);
    return 0;
}
