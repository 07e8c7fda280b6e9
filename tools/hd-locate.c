/* hd-locate: ask one checkpoint where a concept lives in one prompt.
 *
 *   hd-locate -c run.ckpt --base "The capital of France is" --base-entity France \
 *             --source "The capital of Japan is" --source-entity Japan --attribute Capital
 *
 * The example goes the way every example of the pipeline goes, so that what
 * it shows is what hd-score would report for the same pair: a pair record
 * (the fields ravel-pairs writes), its activations as cache-acts computes
 * them (common/acts_cache, bf16 states), one forward of the intervened
 * target as hd-score runs it, and the score record hd-score writes
 * (common/score_record).  The intermediate streams live in a temporary
 * directory, removed at exit.  The score record is then shown: on a
 * terminal as the selection matrix with shaded tokens (common/locate_view),
 * as JSON (--json), as a record stream (-o) and as hd-plot's heatmap
 * (--svg, common/score_example). */
#include "acts/acts_cache.h"
#include "base/cli.h"
#include "base/error.h"
#include "stream/header.h"
#include "stream/map_writer.h"
#include "hypernet/hn_eval.h"
#include "hypernet/hn_session.h"
#include "stream/json_view.h"
#include "model/llama_generate.h"
#include "model/llama_load.h"
#include "score/locate_view.h"
#include "stream/msgpack_util.h"
#include "ravel/ravel_sample.h"
#include "stream/record_input.h"
#include "stream/records.h"
#include "score/score_example.h"
#include "score/score_record.h"
#include "plot/svg.h"
#include "model/target_model.h"
#include "tokenizer/tokenizer.h"

#include <dirent.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef struct {
    const char *ckpt, *model, *base, *source, *base_entity, *source_entity, *attribute;
    const char *instruction, *label, *mode, *output, *svg, *colour;
    int json;
    HnDevice device;
} Options;

static void usage(void)
{
    printf(
        "Usage: hd-locate -c CHECKPOINT --base TEXT --source TEXT [options]\n"
        "Ask a trained hypernetwork (hd-train) where a concept lives in one prompt: run\n"
        "the target on the base and source prompts, the hypernetwork on the instruction,\n"
        "and show which source token it patches into which base position (and how much\n"
        "each base position keeps), the base prediction and the intervened one.  The\n"
        "example is computed as cache-acts and hd-score compute it: the weights are\n"
        "those hd-score reports for the same pair.\n"
        "\n"
        "  -c, --checkpoint DIR   hd-train checkpoint directory (its latest step) or one\n"
        "                         step directory\n"
        "      --base TEXT        the base prompt (the model's answer follows it)\n"
        "      --source TEXT      the source prompt\n"
        "      --base-entity E    the entity in the base prompt (its first occurrence):\n"
        "                         the intervention may write BOS up to its last token\n"
        "                         (default: the whole prompt)\n"
        "      --source-entity E  the same for the source prompt (what may be read)\n"
        "      --attribute A      the instruction is 'E1 ; E2 - A', as ravel-pairs\n"
        "                         writes it (needs both entities)\n"
        "      --instruction TEXT the hypernetwork's instruction, given whole\n"
        "      --label TEXT       the answer to judge, teacher-forced after the base\n"
        "                         prompt (and a space unless it ends in a space, quote or\n"
        "                         '('), e.g. the source entity's value (default: the\n"
        "                         unintervened model's own next token)\n"
        "      --mode M           selection mode: soft (default for HyperDAS),\n"
        "                         column_argmax, bidding_argmax, global_argmax,\n"
        "                         groundtruth (default for DAS), random\n"
        "  -m, --model PATH       target model (default: $HD_MODEL, else the SmolLM2 of\n"
        "                         'make model'); must be the checkpoint's\n"
        "      --json             print the score record as one JSON line instead of\n"
        "                         the text view (every weight in full)\n"
        "  -o, --output FILE      also write the score record as a stream (header,\n"
        "                         record, end) for hd-plot and hd-score --summarize;\n"
        "                         '-' is stdout (the text view is then left out)\n"
        "      --svg FILE         the heatmap hd-plot --heatmaps draws for the example\n"
        "      --color WHEN       shade with colours (--colour WHEN is the same): auto\n"
        "                         (default: when stdout is a terminal and NO_COLOR is\n"
        "                         unset), always, never\n"
        "  -t, --threads N        CPU threads\n"
        "      --device D         cpu (default) or cuda: the target's runs on the GPU\n"
        "                         (bf16 weight matrices there, as cache-acts and\n"
        "                         hd-score --device cuda)\n"
        "  -h, --help             this text\n"
        "      --version          version\n");
}

/* ---- the temporary streams ---- */

static char tmp_dir[4096];

/* Removes the temporary directory and what is in it (files only: this
 * tool puts nothing else there); run at exit, errors included. */
static void remove_tmp(void)
{
    if (!tmp_dir[0]) return;
    DIR *d = opendir(tmp_dir);
    for (struct dirent *e; d && (e = readdir(d));) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) continue;
        char p[4400];
        snprintf(p, sizeof p, "%s/%s", tmp_dir, e->d_name);
        unlink(p);
    }
    if (d) closedir(d);
    rmdir(tmp_dir);
    tmp_dir[0] = 0;
}

static char *tmp_path(const char *name)
{
    size_t n = strlen(tmp_dir) + strlen(name) + 2;
    char *p = hd_malloc(n);
    snprintf(p, n, "%s/%s", tmp_dir, name);
    return p;
}

static void make_tmp_dir(void)
{
    const char *base = getenv("TMPDIR");
    snprintf(tmp_dir, sizeof tmp_dir, "%s/hd-locate.XXXXXX", base && *base ? base : "/tmp");
    if (!mkdtemp(tmp_dir)) {
        char where[4096];
        snprintf(where, sizeof where, "%s", tmp_dir);
        tmp_dir[0] = 0;
        hd_die("%s: cannot make a temporary directory (set TMPDIR)", where);
    }
    atexit(remove_tmp);
}

/* ---- the pair record ---- */

/* Byte span of the entity in the prompt: its first occurrence, or the
 * whole prompt when no entity is named. */
static void entity_span(const char *prompt, const char *entity, const char *option, const char *which,
                        size_t span[2])
{
    if (!entity) {
        span[0] = 0;
        span[1] = strlen(prompt);
        return;
    }
    const char *at = *entity ? strstr(prompt, entity) : NULL;
    if (!at) hd_usage_error("%s '%s' does not occur in the %s prompt '%s'", option, entity, which, prompt);
    span[0] = (size_t)(at - prompt);
    span[1] = span[0] + strlen(entity);
}

static void pack_span(MapWriter *m, const char *k, const size_t span[2])
{
    msgpack_packer *pk = map_key(m, k);
    msgpack_pack_array(pk, 2);
    msgpack_pack_uint64(pk, span[0]);
    msgpack_pack_uint64(pk, span[1]);
}

/* The pair stream cache-acts would read: one causal pair with the fields
 * ravel-pairs writes that the model-side tools use.  The verification
 * prompt is the base prompt itself (nothing here filters). */
static char *write_pair(const Options *o, const char *label, const char *sep, const char *instruction)
{
    size_t bspan[2], sspan[2];
    entity_span(o->base, o->base_entity, "--base-entity", "base", bspan);
    entity_span(o->source, o->source_entity, "--source-entity", "source", sspan);
    char *path = tmp_path("pairs.mp");
    RecordWriter *w = record_writer_open(path, 0);
    if (!w) hd_die("%s", hd_last_error());
    msgpack_packer *pk = record_writer_packer(w);
    if (header_pack(pk, "pairs", NULL, 0) < 0 || record_writer_end_record(w) < 0) hd_die("%s", hd_last_error());
    MapWriter m;
    map_begin(&m, pk);
    map_str(&m, "t", "pair");
    map_str(&m, "id", "hd-locate");
    /* "-" for what a lone example has not (hd-score --summarize groups
     * score records by these strings) */
    map_str(&m, "domain", "-");
    map_str(&m, "split", "-");
    map_str(&m, "kind", "causal");
    map_str(&m, "target_attribute", o->attribute ? o->attribute : "-");
    map_str(&m, "queried_attribute", o->attribute ? o->attribute : "-");
    map_str(&m, "base_entity", o->base_entity);
    map_str(&m, "source_entity", o->source_entity);
    map_str(&m, "base_template", "-");
    map_str(&m, "base_input", o->base);
    map_str(&m, "source_input", o->source);
    pack_span(&m, "base_entity_span", bspan);
    pack_span(&m, "source_entity_span", sspan);
    map_str(&m, "label", label);
    map_str(&m, "answer_sep", sep);
    map_str(&m, "verify_input", o->base);
    map_str(&m, "instruction", instruction);
    if (map_end(&m) < 0 || record_writer_end_record(w) < 0 || record_writer_close(w) < 0)
        hd_die("%s", hd_last_error());
    return path;
}

/* --label not given: the unintervened model's own next token after the
 * base prompt, as text, with no separator (the token carries its space).
 * The intervened prediction at that position is then what the
 * intervention makes of the model's answer. */
static char *own_next_token(const TargetModel *t, const char *prompt)
{
    int32_t *ids;
    int n;
    if (target_model_encode(t, prompt, strlen(prompt), &ids, &n, NULL, NULL) < 0)
        hd_die("--base: %s", hd_last_error());
    if (n == 0) hd_usage_error("--base is empty and the model has no BOS");
    int *tok = hd_malloc((size_t)n * sizeof *tok), *mask = hd_malloc((size_t)n * sizeof *mask);
    for (int i = 0; i < n; i++) tok[i] = ids[i], mask[i] = 1;
    int next = -1;
    if (llama_generate_greedy(&t->model, tok, mask, 1, n, 1, NULL, 0, &next) < 0) hd_die("%s", hd_last_error());
    int32_t id = next;
    size_t len = 0;
    char *text = tokenizer_decode(t->tok, &id, 1, 1, &len);
    if (!text || len == 0 || strlen(text) != len)
        hd_die("the model's next token after the base prompt (id %d) is not text: give --label", next);
    free(ids);
    free(tok);
    free(mask);
    return text;
}

/* The acts stream of the pair, as cache-acts writes it (every layer,
 * bf16, each record holding its own states). */
static char *compute_acts(HnSession *s, const Options *o, char *pairs)
{
    ActsCache cache;
    if (acts_cache_init(&cache, &s->target, 1, "all", DTYPE_BF16, 0, 256) < 0) hd_die("%s", hd_last_error());
    acts_cache_inline_states(&cache);
    if (o->device == HN_DEVICE_CUDA && acts_cache_use_cuda(&cache) < 0) hd_die("--device cuda: %s", hd_last_error());
    RecordInput *in = record_input_open(&pairs, 1);
    if (!in) hd_die("%s", hd_last_error());
    char *path = tmp_path("acts.mp");
    RecordWriter *out = record_writer_open(path, 0);
    if (!out) hd_die("%s", hd_last_error());
    MapWriter h;
    header_begin(&h, record_writer_packer(out), "acts", record_input_headers(in), record_input_n_headers(in));
    acts_cache_pack_header(&cache, &h);
    if (map_end(&h) < 0 || record_writer_end_record(out) < 0) hd_die("%s", hd_last_error());
    /* a message names the temporary file: say what it held instead */
    if (acts_cache_run(&cache, in, out) < 0) hd_die("the base or source prompt: %s", hd_last_error());
    if (record_writer_close(out) < 0) hd_die("%s", hd_last_error());
    record_input_close(in);
    acts_cache_free(&cache);
    return path;
}

/* The fields of hd-score's header, so that hd-plot and hd-score
 * --summarize take the stream as theirs. */
static void pack_scores_header(RecordWriter *w, HnSession *s, const msgpack_object *const *inputs, int n_inputs,
                               const char *step, long long ckpt_step, const char *method, const char *mode)
{
    MapWriter h;
    header_begin(&h, record_writer_packer(w), "scores", inputs, n_inputs);
    target_model_pack_info(&h, &s->target);
    char device[300];
    hn_session_describe_device(s, device, sizeof device);
    map_str(&h, "device", device);
    map_str(&h, "checkpoint", step);
    map_int64(&h, "checkpoint_step", ckpt_step);
    map_str(&h, "method", method);
    map_str(&h, "rule", "teacher-forced");
    map_int64(&h, "eval_tokens", 0);
    msgpack_packer *pk = map_key(&h, "modes");
    msgpack_pack_array(pk, 1);
    mp_pack_str(pk, mode);
    if (map_end(&h) < 0 || record_writer_end_record(w) < 0) hd_die("%s", hd_last_error());
}

/* One teacher-forced forward of the intervened target on the acts record
 * and its score record, as hd-score's score_batch makes them. */
static char *score(HnSession *s, char *acts, SelectionMode mode, const char *step, long long ckpt_step)
{
    RecordInput *in = record_input_open(&acts, 1);
    if (!in) hd_die("%s", hd_last_error());
    const msgpack_object *rec;
    int rc = record_input_next(in, &rec);
    if (rc <= 0) hd_die("%s", rc < 0 ? hd_last_error() : "cache-acts wrote no record");
    const LlamaConfig *tc = &s->target.model.cfg;
    train_batch_init(&s->tb, tc->n_layers + 1, tc->hidden_size);
    int bad = 0;
    if (hn_session_fill(s, &rec, 1, &bad) < 0) hd_die("%s", hd_last_error());
    const HnBatch *h = &s->tb.hb;
    HnOptions opt = hn_default_options();
    opt.mode = mode;
    HnLoss loss;
    HnView v;
    if (hypernet_forward_view(s->hn, s->acts, hn_session_target(s), h, &opt, &loss) < 0 ||
        hypernet_view_download(s->acts, &v) < 0)
        hd_die("%s", hd_last_error());
    const int V = tc->vocab_size;
    int correct = 0;
    hn_eval_judge(&v, V, 1, h->B, 0, &correct);
    int *pred = hd_malloc((size_t)(v.n_label_tokens > 0 ? v.n_label_tokens : 1) * sizeof *pred);
    for (int i = 0; i < v.n_label_tokens; i++) pred[i] = llama_argmax(v.logits + (size_t)i * V, V);
    const char *method = hn_method_name(s->hn->cfg.method);
    char *path = tmp_path("scores.mp");
    RecordWriter *w = record_writer_open(path, 0);
    if (!w) hd_die("%s", hd_last_error());
    pack_scores_header(w, s, record_input_headers(in), record_input_n_headers(in), step, ckpt_step, method,
                       selection_mode_name(mode));
    ScoreJudged j = {rec, 0, correct, pred, v.n_label_tokens};
    if (score_record_write(w, s, &v, &j, selection_mode_name(mode), method, "teacher-forced", 0) < 0 ||
        record_writer_close(w) < 0)
        hd_die("%s", hd_last_error());
    free(pred);
    record_input_close(in);
    return path;
}

/* ---- showing it ---- */

/* The unintervened prediction of the score record (base_pred_ids), decoded
 * as hd-score decodes the intervened one, in printable form. */
static char *base_prediction(const Tokenizer *tok, const msgpack_object *rec)
{
    const msgpack_object *ids = mp_map_get(rec, "base_pred_ids");
    if (!ids || ids->type != MSGPACK_OBJECT_ARRAY) return hd_strdup("?");
    int32_t *v = hd_malloc((ids->via.array.size + 1) * sizeof *v);
    for (uint32_t i = 0; i < ids->via.array.size; i++) {
        int64_t x = -1;
        mp_get_int64(&ids->via.array.ptr[i], &x);
        v[i] = (int32_t)x;
    }
    size_t len = 0;
    char *text = tokenizer_decode(tok, v, ids->via.array.size, 0, &len);
    char *shown = visible_text(text ? text : "", text ? len : 0, 80);
    free(text);
    free(v);
    return shown;
}

/* A str (or a bin: text that is not UTF-8) field in printable form. */
static char *printable_field(const msgpack_object *rec, const char *key)
{
    const msgpack_object *v = mp_map_get(rec, key);
    if (v && v->type == MSGPACK_OBJECT_STR) return visible_text(v->via.str.ptr, v->via.str.size, 80);
    if (v && v->type == MSGPACK_OBJECT_BIN) return visible_text(v->via.bin.ptr, v->via.bin.size, 80);
    return hd_strdup("?");
}

static int want_colour(const char *when)
{
    if (strcmp(when, "always") == 0) return 1;
    if (strcmp(when, "never") == 0) return 0;
    const char *no = getenv("NO_COLOR");
    return isatty(STDOUT_FILENO) && !(no && *no);
}

static void show(const Options *o, HnSession *s, const char *scores, const char *step, long long ckpt_step,
                 const char *instruction)
{
    RecordReader *r = record_reader_open(scores);
    if (!r) hd_die("%s", hd_last_error());
    RecordWriter *w = NULL;
    if (o->output && !(w = record_writer_open(o->output, 0))) hd_die("%s", hd_last_error());
    const msgpack_object *rec;
    int rc, seen = 0;
    while ((rc = record_reader_next(r, &rec)) == 1) {
        int is_score = mp_is_str(mp_map_get(rec, "t"), "score");
        /* the header (hd-locate's, its inputs the acts and pairs headers)
         * and the score record; the writer adds its own end record */
        if (w && (is_score || mp_is_str(mp_map_get(rec, "t"), "header")) &&
            record_writer_write_object(w, rec) < 0)
            hd_die("%s", hd_last_error());
        if (!is_score) continue;
        seen = 1;
        ScoreExample ex;
        if (score_example_parse(rec, &ex) < 0) hd_die("%s", hd_last_error());
        if (o->json) {
            JsonViewOptions jo = {1, 0};
            if (json_view_write(stdout, rec, &jo) < 0) hd_die("%s", hd_last_error());
            putchar('\n');
        } else if (!(o->output && strcmp(o->output, "-") == 0)) {
            char *label = printable_field(rec, "label");
            char *base_pred = base_prediction(s->target.tok, rec);
            LocateInfo info = {step, ckpt_step, hn_method_name(s->hn->cfg.method), s->hn->cfg.intervention_layer,
                               instruction, o->base, o->source, label, base_pred};
            locate_view_print(stdout, &ex, &info, want_colour(o->colour));
            free(label);
            free(base_pred);
        }
        if (o->svg && score_example_svg(&ex, o->svg) < 0) hd_die("%s", hd_last_error());
        score_example_free(&ex);
    }
    if (rc < 0) hd_die("%s", hd_last_error());
    if (!seen) hd_die("%s: no score record", scores);
    if (w && record_writer_close(w) < 0) hd_die("%s", hd_last_error());
    record_reader_close(r);
}

int main(int argc, char **argv)
{
    hd_cli_init(argc, argv, "hd-locate");
    Options o = {.colour = "auto"};
    enum { OPT_BASE = 256, OPT_SOURCE, OPT_BASE_ENTITY, OPT_SOURCE_ENTITY, OPT_ATTRIBUTE, OPT_INSTRUCTION,
           OPT_LABEL, OPT_MODE, OPT_JSON, OPT_SVG, OPT_COLOUR, OPT_DEVICE, OPT_VERSION };
    static const struct option longopts[] = {
        {"checkpoint", required_argument, 0, 'c'},   {"model", required_argument, 0, 'm'},
        {"base", required_argument, 0, OPT_BASE},     {"source", required_argument, 0, OPT_SOURCE},
        {"base-entity", required_argument, 0, OPT_BASE_ENTITY},
        {"source-entity", required_argument, 0, OPT_SOURCE_ENTITY},
        {"attribute", required_argument, 0, OPT_ATTRIBUTE},
        {"instruction", required_argument, 0, OPT_INSTRUCTION},
        {"label", required_argument, 0, OPT_LABEL},   {"mode", required_argument, 0, OPT_MODE},
        {"json", no_argument, 0, OPT_JSON},           {"svg", required_argument, 0, OPT_SVG},
        {"color", required_argument, 0, OPT_COLOUR},  {"colour", required_argument, 0, OPT_COLOUR},
        {"device", required_argument, 0, OPT_DEVICE}, {"threads", required_argument, 0, 't'},
        {"output", required_argument, 0, 'o'},        {"help", no_argument, 0, 'h'},
        {"version", no_argument, 0, OPT_VERSION},     {0, 0, 0, 0}};
    int c;
    while ((c = getopt_long(argc, argv, "c:m:t:o:h", longopts, NULL)) != -1) {
        switch (c) {
        case 'c': o.ckpt = optarg; break;
        case 'm': o.model = optarg; break;
        case OPT_BASE: o.base = optarg; break;
        case OPT_SOURCE: o.source = optarg; break;
        case OPT_BASE_ENTITY: o.base_entity = optarg; break;
        case OPT_SOURCE_ENTITY: o.source_entity = optarg; break;
        case OPT_ATTRIBUTE: o.attribute = optarg; break;
        case OPT_INSTRUCTION: o.instruction = optarg; break;
        case OPT_LABEL: o.label = optarg; break;
        case OPT_MODE: o.mode = optarg; break;
        case OPT_JSON: o.json = 1; break;
        case OPT_SVG: o.svg = optarg; break;
        case OPT_COLOUR:
            if (strcmp(optarg, "auto") && strcmp(optarg, "always") && strcmp(optarg, "never"))
                hd_usage_error("--color: expected auto, always or never, got '%s'", optarg);
            o.colour = optarg;
            break;
        case OPT_DEVICE:
            o.device = hn_device_parse(optarg);
            if (o.device == HN_DEVICE_CPU_STAGED) hd_usage_error("--device: expected cpu or cuda");
            break;
        case 't': hd_set_threads((int)hd_cli_parse_count("--threads", optarg)); break;
        case 'o': o.output = optarg; break;
        case 'h': usage(); return 0;
        case OPT_VERSION: hd_cli_print_version(); return 0;
        default: hd_usage_error("unknown option");
        }
    }
    if (optind < argc) hd_usage_error("unexpected argument '%s' (the prompts go with --base and --source)", argv[optind]);
    if (!o.ckpt) hd_usage_error("a checkpoint is needed: -c DIR (from hd-train)");
    if (!o.base || !o.source) hd_usage_error("--base TEXT and --source TEXT are needed");
    if (!*o.base || !*o.source) hd_usage_error("--base and --source must not be empty");
    if (o.label && !*o.label) hd_usage_error("--label must not be empty");
    if (o.json && o.output && strcmp(o.output, "-") == 0)
        hd_usage_error("--json and -o - would both write to stdout: give -o a file");
    int mode = o.mode ? selection_mode_from_name(o.mode) : -1;
    if (o.mode && mode < 0) hd_usage_error("--mode: unknown mode '%s'", o.mode);
    char *instruction = NULL;
    if (o.instruction) {
        instruction = hd_strdup(o.instruction);
    } else if (o.attribute && o.base_entity && o.source_entity) {
        size_t n = strlen(o.base_entity) + strlen(o.source_entity) + strlen(o.attribute) + 8;
        instruction = hd_malloc(n);
        snprintf(instruction, n, "%s ; %s - %s", o.base_entity, o.source_entity, o.attribute);
    } else {
        hd_usage_error("an instruction is needed: --instruction TEXT, or --attribute A with --base-entity "
                       "and --source-entity");
    }
    size_t span[2]; /* the entities must be in their prompts: say so before loading anything */
    entity_span(o.base, o.base_entity, "--base-entity", "base", span);
    entity_span(o.source, o.source_entity, "--source-entity", "source", span);

    HnSession s = {0};
    char *step;
    TrainState st;
    if (hn_session_open(&s, o.model, o.ckpt, &step, &st) < 0) hd_die("%s", hd_last_error());
    if (mode < 0) mode = s.hn->cfg.method == HN_METHOD_DAS ? SELECT_GROUNDTRUTH : SELECT_SOFT;
    make_tmp_dir();
    char *label = o.label ? hd_strdup(o.label) : own_next_token(&s.target, o.base);
    const char *sep = o.label ? ravel_answer_sep(o.base) : "";
    char *pairs = write_pair(&o, label, sep, instruction);
    char *acts = compute_acts(&s, &o, pairs);
    /* the intervened run needs the target's layers [L, N) only, as in hd-score */
    if (hn_session_use_device(&s, o.device) < 0) hd_die("--device cuda: %s", hd_last_error());
    llama_model_release_layers(&s.target.model, 0, s.hn->cfg.intervention_layer);
    char *scores = score(&s, acts, (SelectionMode)mode, step, st.step);
    show(&o, &s, scores, step, st.step, instruction);
    if (fflush(stdout) != 0) hd_die("stdout: write error");
    free(scores);
    free(acts);
    free(pairs);
    free(label);
    free(instruction);
    free(step);
    hn_session_free(&s);
    return 0;
}
