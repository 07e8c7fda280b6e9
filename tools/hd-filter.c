/* hd-filter: keep the pairs the target model already knows.
 *
 * Two inputs.  A stream of `pair` records (ravel-pairs) gives the pairs
 * that pass; a stream of `query` records (ravel-pairs --queries: one
 * verification prompt and its answer each) gives one `known` record per
 * query, the cheap way to learn what the model knows before drawing pairs
 * among the known prompts (ravel-pairs --filter --from-known).
 *
 * For each pair record, the model reads BOS + verify_input + answer_sep +
 * label in one teacher-forced pass; the pair is kept when every label
 * token is the model's argmax (hyperdas(7) 10.6, the HyperDAS rule).
 * Kept pairs are written unchanged except for "filtered": true.  Outcomes
 * can be saved as `known` records (--known-out) and reused (--known), so a
 * second run, or ravel-pairs --filter, costs no model time. */
#include "base/cli.h"
#include "base/error.h"
#include "stream/header.h"
#include "stream/map_writer.h"
#include "ravel/known_filter.h"
#include "model/llama_cuda.h"
#include "acts/model_runner.h"
#include "acts/prefix_check.h"
#include "stream/msgpack_util.h"
#include "acts/pair_tokens.h"
#include "acts/pair_window.h"
#include "stream/record_input.h"
#include "stream/records.h"
#include "model/target_model.h"

#include <getopt.h>
#include <time.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void usage(void)
{
    printf(
        "Usage: hd-filter [options] [PAIRS...]\n"
        "       hd-filter [options] [QUERIES...]   (ravel-pairs --queries)\n"
        "Keep the pair records whose answer the target model already gives: BOS +\n"
        "verify_input + answer_sep + label is run teacher-forced and the pair is kept\n"
        "when every label token is the model's argmax.  Given query records instead\n"
        "(prompt, answer_sep, answer), write one known record per query.  Each distinct\n"
        "prompt runs once per run (and never when --known has it).  PAIRS '-' or none\n"
        "is stdin.\n"
        "\n"
        "  -m, --model PATH      GGUF file or Hugging Face directory (default: $HD_MODEL,\n"
        "                        else the SmolLM2 of 'make model')\n"
        "  -b, --batch N         sequences per forward pass (default 16)\n"
        "      --known FILE      reuse the outcomes in this stream of known records\n"
        "      --known-out FILE  write every outcome computed here as known records\n"
        "      --all             write every pair, with \"model_correct\": true/false,\n"
        "                        instead of dropping the ones the model gets wrong\n"
        "      --stats           print kept/tried per attribute and kind (queries: known/\n"
        "                        asked per attribute), prompts run and their rate on\n"
        "                        stderr (always when stderr is a terminal)\n"
        "      --max-len N       longest sequence in tokens (default 256): a pair or\n"
        "                        query with a longer one is an error naming it (text\n"
        "                        too long to fit is refused before tokenising)\n"
        "      --no-bos          do not prepend the model's BOS token\n"
        "      --no-shared-prefix  run every sequence whole; by default (CPU) prompts\n"
        "                        that share a prefix (a template's text before the\n"
        "                        entity) run it once and only their different ends\n"
        "                        are batched\n"
        "      --device D        cpu (default) or cuda: the forward on the GPU with\n"
        "                        bf16 weight matrices (cache-acts --device)\n"
        "  -t, --threads N       CPU threads (default: all)\n"
        "  -o, --output FILE     write to FILE (atomically) instead of stdout\n"
        "  -z, --gzip            gzip the output\n"
        "  -h, --help            this text\n"
        "      --version         version\n");
}

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
    long long n_run;         /* sequences the model ran */
    int shared_prefix;       /* the CPU check with shared prefixes (prefix_check.h) */
    PrefixCheckStats prefix;
    long long n_windows, n_whole; /* model calls, and those where sharing did not pay */
} Filter;

static void count_key(Filter *f, const char *key, int kept)
{
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

static void count(Filter *f, const msgpack_object *rec, int kept)
{
    char key[256];
    const msgpack_object *a = mp_map_get(rec, "target_attribute"), *k = mp_map_get(rec, "kind");
    snprintf(key, sizeof key, "%.*s %.*s",
             a && a->type == MSGPACK_OBJECT_STR ? (int)a->via.str.size : 1,
             a && a->type == MSGPACK_OBJECT_STR ? a->via.str.ptr : "?",
             k && k->type == MSGPACK_OBJECT_STR ? (int)k->via.str.size : 1,
             k && k->type == MSGPACK_OBJECT_STR ? k->via.str.ptr : "?");
    count_key(f, key, kept);
}

/* One known record; the query's domain and attribute ride along when given
 * (for yield tables), readers need only prompt, answer and correct. */
static void write_known_to(RecordWriter *w, const Filter *f, const char *prompt, const char *answer, int correct,
                           const char *domain, const char *attribute)
{
    MapWriter m;
    map_begin(&m, record_writer_packer(w));
    map_str(&m, "t", "known");
    map_str(&m, "prompt", prompt);
    map_str(&m, "answer", answer);
    map_bool(&m, "correct", correct);
    map_str(&m, "model", f->target.model.cfg.model_id);
    if (domain) map_str(&m, "domain", domain);
    if (attribute) map_str(&m, "attribute", attribute);
    if (map_end(&m) < 0 || record_writer_end_record(w) < 0) hd_die("%s", hd_last_error());
}

static void write_known(Filter *f, const char *prompt, const char *answer, int correct)
{
    if (f->known_out) write_known_to(f->known_out, f, prompt, answer, correct, NULL, NULL);
}

/* Orders sequences by length, so that a batch pads little. */
static const TokenSeq *const *sort_base;
static int by_length(const void *a, const void *b)
{
    int x = sort_base[*(const int *)a]->n, y = sort_base[*(const int *)b]->n;
    return (x > y) - (x < y);
}

/* Runs the model on seqs[0..m), batched by length; correct[j] per sequence. */
static void run_batches(Filter *f, const TokenSeq **seqs, int m, int *correct)
{
    if (f->shared_prefix && m > 0) {
        long long shared, whole;
        prefix_check_costs(seqs, m, f->batch, &shared, &whole);
        f->n_windows++;
        if (shared < whole) {
            if (prefix_check_run(&f->target.model, seqs, m, f->batch, correct, &f->prefix) < 0)
                hd_die("%s", hd_last_error());
            f->n_run += m;
            return;
        }
        /* a few diverse prompts share little but BOS: whole sequences
         * cost fewer positions than the two passes of shared prefixes */
        f->n_whole++;
        f->prefix.computed += whole;
        for (int j = 0; j < m; j++) f->prefix.tokens += seqs[j]->n;
    }
    int *order = hd_malloc((size_t)(m ? m : 1) * sizeof *order);
    const TokenSeq **sorted = hd_malloc((size_t)(m ? m : 1) * sizeof *sorted);
    int32_t **pred = hd_malloc((size_t)(m ? m : 1) * sizeof *pred);
    int *ok = hd_malloc((size_t)(m ? m : 1) * sizeof *ok);
    for (int j = 0; j < m; j++) order[j] = j;
    sort_base = seqs;
    qsort(order, (size_t)m, sizeof *order, by_length);
    for (int j = 0; j < m; j++) sorted[j] = seqs[order[j]];
    for (int start = 0; start < m; start += f->batch) {
        int k = m - start < f->batch ? m - start : f->batch;
        if (model_runner_forward(&f->runner, sorted + start, k) < 0 ||
            model_runner_answer_check(&f->runner, sorted + start, k, pred + start, ok + start) < 0)
            hd_die("%s", hd_last_error());
    }
    for (int j = 0; j < m; j++) {
        correct[order[j]] = ok[j];
        free(pred[j]);
    }
    f->n_run += m;
    free(order);
    free(sorted);
    free(pred);
    free(ok);
}

/* Outcomes of n (prompt, answer, sequence): the known table's where it has
 * them, else the model's, each distinct prompt and answer run once; what
 * the model ran joins the table (and, with log_new, --known-out).
 * outcome[i]: 1 correct, 0 wrong. */
static void resolve(Filter *f, int n, char *const *prompts, char *const *answers, const TokenSeq *const *seqs,
                    int log_new, int *outcome)
{
    const TokenSeq **todo = hd_malloc((size_t)(n ? n : 1) * sizeof *todo);
    int *which = hd_malloc((size_t)(n ? n : 1) * sizeof *which);
    int *correct = hd_malloc((size_t)(n ? n : 1) * sizeof *correct);
    int m = 0;
    for (int i = 0; i < n; i++) {
        if ((outcome[i] = known_filter_lookup(f->known, prompts[i], answers[i])) >= 0) continue;
        /* the same prompt and answer twice in one window: run it once */
        int dup = 0;
        for (int j = 0; j < m && !dup; j++)
            dup = strcmp(prompts[which[j]], prompts[i]) == 0 && strcmp(answers[which[j]], answers[i]) == 0;
        if (dup) continue;
        todo[m] = seqs[i];
        which[m++] = i;
    }
    run_batches(f, todo, m, correct);
    for (int j = 0; j < m; j++) {
        known_filter_add(f->known, prompts[which[j]], answers[which[j]], correct[j]);
        if (log_new) write_known(f, prompts[which[j]], answers[which[j]], correct[j]);
    }
    for (int i = 0; i < n; i++)
        if (outcome[i] < 0) outcome[i] = known_filter_lookup(f->known, prompts[i], answers[i]) == 1;
    free(todo);
    free(which);
    free(correct);
}

/* A window of pairs: outcomes from the known table or the model, then
 * the kept pairs written in order. */
static void flush_window(void *ctx, PairItem *pairs, int n)
{
    Filter *f = ctx;
    char **prompts = hd_calloc((size_t)n, sizeof *prompts), **answers = hd_calloc((size_t)n, sizeof *answers);
    const TokenSeq **seqs = hd_calloc((size_t)n, sizeof *seqs);
    int *outcome = hd_calloc((size_t)n, sizeof *outcome);
    for (int i = 0; i < n; i++) {
        prompts[i] = mp_strdup(mp_map_get(pairs[i].rec, "verify_input"));
        answers[i] = mp_strdup(mp_map_get(pairs[i].rec, "label"));
        seqs[i] = &pairs[i].tokens.verify;
    }
    resolve(f, n, prompts, answers, seqs, 1, outcome);
    for (int i = 0; i < n; i++) {
        const msgpack_object *rec = pairs[i].rec;
        count(f, rec, outcome[i]);
        if (outcome[i] || f->keep_all) {
            static const char *const skip[] = {"filtered", "model_correct"};
            MapWriter m;
            map_begin(&m, record_writer_packer(f->out));
            map_record_rewrite(&m, rec, "pair", skip, 2);
            map_bool(&m, "filtered", 1);
            if (f->keep_all) map_bool(&m, "model_correct", outcome[i]);
            if (map_end(&m) < 0 || record_writer_end_record(f->out) < 0) hd_die("%s", hd_last_error());
        }
        free(prompts[i]);
        free(answers[i]);
    }
    free(prompts);
    free(answers);
    free(seqs);
    free(outcome);
}

/* ---- queries in, known records out ---- */

typedef struct {
    MpCopy copy;
    const msgpack_object *rec;
    char *prompt, *answer;
    TokenSeq seq;
} Query;

static char *query_str(const msgpack_object *rec, const char *key, RecordInput *in)
{
    const msgpack_object *v = mp_map_get(rec, key);
    if (!v || v->type != MSGPACK_OBJECT_STR)
        hd_die("%s: query record has no string '%s'", record_input_where(in), key);
    if (memchr(v->via.str.ptr, 0, v->via.str.size)) hd_die("%s: query '%s' contains a NUL byte", record_input_where(in), key);
    return mp_strdup(v);
}

/* A window of queries: outcomes from the table or the model (each distinct
 * prompt once), then one known record per query, in input order. */
static void flush_queries(Filter *f, Query *q, int n)
{
    char **prompts = hd_calloc((size_t)(n ? n : 1), sizeof *prompts), **answers = hd_calloc((size_t)(n ? n : 1), sizeof *answers);
    const TokenSeq **seqs = hd_calloc((size_t)(n ? n : 1), sizeof *seqs);
    int *outcome = hd_calloc((size_t)(n ? n : 1), sizeof *outcome);
    for (int i = 0; i < n; i++) {
        prompts[i] = q[i].prompt;
        answers[i] = q[i].answer;
        seqs[i] = &q[i].seq;
    }
    /* every query gets its known record below, --known-out too */
    resolve(f, n, prompts, answers, seqs, 0, outcome);
    for (int i = 0; i < n; i++) {
        int ok = outcome[i];
        char *domain = mp_strdup(mp_map_get(q[i].rec, "domain")), *attr = mp_strdup(mp_map_get(q[i].rec, "attribute"));
        char key[256];
        snprintf(key, sizeof key, "%s %s", domain ? domain : "?", attr ? attr : "?");
        count_key(f, key, ok);
        write_known_to(f->out, f, q[i].prompt, q[i].answer, ok, domain, attr);
        if (f->known_out) write_known_to(f->known_out, f, q[i].prompt, q[i].answer, ok, domain, attr);
        free(domain);
        free(attr);
        free(q[i].prompt);
        free(q[i].answer);
        free(q[i].seq.ids);
        mp_copy_destroy(&q[i].copy);
    }
    free(prompts);
    free(answers);
    free(seqs);
    free(outcome);
}

static void run_queries(Filter *f, RecordInput *in, int window, int max_len)
{
    Query *q = hd_calloc((size_t)window, sizeof *q);
    int n = 0, rc;
    long long seen = 0;
    Progress prog;
    progress_begin(&prog, "queries", 0);
    const msgpack_object *rec;
    while ((rc = record_input_next(in, &rec)) == 1) {
        if (!mp_is_str(mp_map_get(rec, "t"), "query"))
            hd_die("%s: not a query record in a stream of queries (ravel-pairs --queries)", record_input_where(in));
        Query *it = &q[n];
        memset(it, 0, sizeof *it);
        it->rec = mp_copy_init(&it->copy, rec);
        it->prompt = query_str(it->rec, "prompt", in);
        it->answer = query_str(it->rec, "answer", in);
        char *sep = query_str(it->rec, "answer_sep", in);
        if (pair_tokens_answer(&f->target, it->prompt, strlen(it->prompt), sep, strlen(sep), it->answer,
                               strlen(it->answer), &it->seq) < 0)
            hd_die("%s: %s", record_input_where(in), hd_last_error());
        free(sep);
        if (it->seq.n > max_len)
            hd_die("%s: %d tokens, longer than --max-len %d", record_input_where(in), it->seq.n, max_len);
        if (++n == window) {
            flush_queries(f, q, n);
            n = 0;
        }
        progress_update(&prog, ++seen);
    }
    if (rc < 0) hd_die("%s", hd_last_error());
    flush_queries(f, q, n);
    progress_end(&prog);
    free(q);
}

/* Pairs or queries, by the input's first header; every other header, read
 * now or later, must be of the same kind (other records would otherwise
 * pass through under a "pairs" header, or stop the query loop). */
static int input_is_queries(RecordInput *in)
{
    int n = record_input_n_headers(in);
    const msgpack_object *const *h = record_input_headers(in);
    int queries = n > 0 && mp_is_str(mp_map_get(h[0], "kind"), "queries");
    record_expect_kind(queries ? "queries" : "pairs");
    for (int i = 1; i < n; i++)
        if (mp_is_str(mp_map_get(h[i], "kind"), "queries") != queries)
            hd_die("the inputs mix pairs and queries streams: give them to separate runs");
    return queries;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

int main(int argc, char **argv)
{
    hd_cli_init(argc, argv, "hd-filter");
    const char *model = NULL, *known_in = NULL, *known_out = NULL, *output = NULL;
    int batch = 16, gzip = 0, keep_all = 0, stats = isatty(STDERR_FILENO), max_len = 256, use_bos = 1, use_cuda = 0;
    int shared_prefix = 1;
    enum { OPT_KNOWN = 256, OPT_KNOWN_OUT, OPT_ALL, OPT_STATS, OPT_MAX_LEN, OPT_NO_BOS, OPT_DEVICE,
           OPT_NO_SHARED_PREFIX, OPT_VERSION };
    static const struct option longopts[] = {
        {"model", required_argument, 0, 'm'},     {"batch", required_argument, 0, 'b'},
        {"known", required_argument, 0, OPT_KNOWN}, {"known-out", required_argument, 0, OPT_KNOWN_OUT},
        {"all", no_argument, 0, OPT_ALL},         {"stats", no_argument, 0, OPT_STATS},
        {"max-len", required_argument, 0, OPT_MAX_LEN}, {"no-bos", no_argument, 0, OPT_NO_BOS},
        {"device", required_argument, 0, OPT_DEVICE},
        {"no-shared-prefix", no_argument, 0, OPT_NO_SHARED_PREFIX},
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
        case OPT_NO_SHARED_PREFIX: shared_prefix = 0; break;
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
    if (target_model_check_max_len(&f.target, max_len, "--max-len") < 0) hd_usage_error("%s", hd_last_error());
    /* every pair's and query's sequences, before the model or --known sees
     * them: a prompt too long is an error naming its record, never a pass */
    target_model_limit_tokens(&f.target, max_len);
    model_runner_init(&f.runner, &f.target.model, max_len);
    if (use_cuda && !(f.runner.gpu = llama_cuda_create(&f.target.model)))
        hd_die("--device cuda: %s", hd_last_error());
    /* the key/value cache of the shared-prefix check is CPU code */
    f.shared_prefix = shared_prefix && !use_cuda;
    f.known = known_in ? known_filter_load(known_in) : known_filter_new();
    if (!f.known) hd_die("%s", hd_last_error());

    record_expect_kind("pairs|queries");
    hd_blas_warn_slow_kernels();
    RecordInput *in = record_input_open(argv + optind, argc - optind);
    if (!in) hd_die("%s", hd_last_error());
    int queries = input_is_queries(in);
    if (queries && keep_all) hd_usage_error("--all is for pair records; query records all get a known record");
    f.out = record_writer_open(output, gzip);
    if (!f.out) hd_die("%s", hd_last_error());
    MapWriter h;
    header_begin(&h, record_writer_packer(f.out), queries ? "known" : "pairs", record_input_headers(in),
                 record_input_n_headers(in));
    target_model_pack_info(&h, &f.target);
    char device[300]; /* near ties of the answer check can go either way in bf16 */
    llama_cuda_describe(f.runner.gpu, device, sizeof device);
    map_str(&h, "device", device);
    map_str(&h, "filter", "teacher-forced full answer (hyperdas(7) 10.6)");
    map_bool(&h, "filtered", !queries);
    if (map_end(&h) < 0 || record_writer_end_record(f.out) < 0) hd_die("%s", hd_last_error());
    if (known_out) {
        f.known_out = record_writer_open(known_out, 0);
        if (!f.known_out) hd_die("%s", hd_last_error());
        header_begin(&h, record_writer_packer(f.known_out), "known", NULL, 0);
        target_model_pack_info(&h, &f.target);
        if (map_end(&h) < 0 || record_writer_end_record(f.known_out) < 0) hd_die("%s", hd_last_error());
    }

    /* a few batches at a time: repeats within a window run once (and
     * across windows the known table catches them), and sorting a window
     * by length (or by tokens, to find shared prefixes) makes batches of
     * alike sequences; a larger window finds more prompts of one template */
    double t0 = now_s();
    int window = batch * (f.shared_prefix ? 64 : 16);
    if (queries) run_queries(&f, in, window, max_len);
    else if (pair_window_run(in, &f.target, f.out, window, flush_window, &f) < 0)
        hd_die("%s", hd_last_error());
    double elapsed = now_s() - t0;
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
        fprintf(stderr, "%s: %lld %s in %.1f s (%.1f/s); the model ran %lld distinct prompts (%.1f/s)\n",
                hd_progname, tried, queries ? "queries" : "pairs", elapsed, elapsed > 0 ? tried / elapsed : 0.0,
                f.n_run, elapsed > 0 ? f.n_run / elapsed : 0.0);
        if (f.shared_prefix && f.prefix.tokens > 0)
            fprintf(stderr, "%s: shared prefixes: %lld groups; the model ran %lld of %lld token positions (%.1f%%)\n",
                    hd_progname, f.prefix.groups, f.prefix.computed, f.prefix.tokens,
                    100.0 * f.prefix.computed / f.prefix.tokens);
        if (f.n_whole > 0)
            fprintf(stderr, "%s: %lld of %lld model calls ran whole sequences (sharing prefixes would not pay)\n",
                    hd_progname, f.n_whole, f.n_windows);
    }
    free(f.stats);
    record_input_close(in);
    known_filter_free(f.known);
    llama_cuda_free(f.runner.gpu);
    model_runner_free(&f.runner);
    target_model_free(&f.target);
    return 0;
}
