/* hd-score: judge a trained hypernetwork (or DAS baseline) on held-out
 * pairs the way the paper scores it.
 *
 *   ravel-pairs --split test ... | hd-filter | cache-acts | hd-score -c run.ckpt --table
 *
 * For each acts record and each selection mode: one teacher-forced forward
 * of the intervened target (hyperdas(7) 9.1, the HyperDAS rule), a
 * `score` record (prediction, label, correct, the selection matrix used,
 * the tokens), then one `summary` record per mode and split: Cause,
 * Isolate and Disentangle per attribute, per domain and overall, micro
 * (hyperdas(7) 9.3) and RAVEL's macro (9.4), with seeded bootstrap intervals;
 * --table adds paired comparisons of the methods (score_stats.h).
 * --summarize recomputes the summary from score records alone (no model). */
#include "hypernet/checkpoint.h"
#include "base/cli.h"
#include "base/error.h"
#include "stream/header.h"
#include "hypernet/hn_eval.h"
#include "hypernet/hn_generate.h"
#include "hypernet/hn_session.h"
#include "hypernet/hypernet.h"
#include "model/llama_generate.h"
#include "model/llama_load.h"
#include "stream/msgpack_util.h"
#include "stream/record_input.h"
#include "stream/record_shard.h"
#include "stream/records.h"
#include "score/score_groups.h"
#include "score/score_match.h"
#include "score/score_record.h"
#include "score/score_summary.h"
#include "model/target_model.h"
#include "stream/tensor.h"

#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define RULE_TF "teacher-forced"
#define RULE_GEN "greedy-generate"
#define MAX_MODES 8

typedef struct {
    const char *model, *ckpt, *output, *modes, *rule;
    int gzip, table, summarize, generate, sharded;
    HnDevice device;
    long batch, eval_tokens;
    RecordShard shard;
    ScoreBootstrap bootstrap;
    long also_first;     /* -1: not given (3 with --table, else off) */
    char **compare;      /* --compare A:B, n_compare of them */
    int n_compare;
} Options;

/* --also-first as used: its N, or 0 when off. */
static int first_tokens(const Options *o)
{
    return (int)(o->also_first >= 0 ? o->also_first : o->table ? 3 : 0);
}

static void usage(void)
{
    printf(
        "Usage: hd-score -c CHECKPOINT [options] [ACTS...]\n"
        "       hd-score --summarize [options] [SCORES...]\n"
        "Score a trained hypernetwork (hd-train) on held-out acts records (cache-acts):\n"
        "one teacher-forced forward of the intervened model per example and selection\n"
        "mode; an example is correct when the argmax before each label token is that\n"
        "token (hyperdas(7) 9.1).  Writes one score record per example and mode, then\n"
        "summary records (Cause, Isolate, Disentangle per attribute, domain and overall).\n"
        "ACTS '-' or none is stdin.\n"
        "\n"
        "  -c, --checkpoint DIR  hd-train checkpoint directory (its latest step) or one\n"
        "                        step directory\n"
        "  -m, --model PATH      target model (default: $HD_MODEL, else the SmolLM2 of\n"
        "                        'make model'); must be the checkpoint's\n"
        "      --modes LIST      selection modes, comma-separated: soft, column_argmax,\n"
        "                        bidding_argmax, global_argmax, groundtruth, random\n"
        "                        (default: soft for HyperDAS, groundtruth for DAS)\n"
        "      --rule R          teacher-forced (default: the HyperDAS rule, one forward\n"
        "                        with the answer in the input) or greedy-generate (the\n"
        "                        RAVEL rule: greedily generate N tokens from the\n"
        "                        intervened prompt and compare the first N label tokens)\n"
        "      --eval-tokens N   compare the first N label tokens (default 0: all, with\n"
        "                        teacher-forced; 3 with greedy-generate, as RAVEL)\n"
        "  -b, --batch N         examples per forward pass (default 16)\n"
        "      --summarize       read score records (no model) and write their summary\n"
        "      --shard I/N       score shard I of N (0 <= I < N; ACTS must be files):\n"
        "                        'cat' of the N shards has the unsharded run's score\n"
        "                        records (same --batch); the whole run's summaries are\n"
        "                        'cat SHARDS | hd-score --summarize'.  Started by\n"
        "                        mpirun or srun as N processes without --shard: rank I\n"
        "                        scores shard I into FILE.shard-I-of-N (-o FILE)\n"
        "      --table           print the summary as an aligned table on stdout, then\n"
        "                        the comparison of every summary's overall row and the\n"
        "                        paired comparisons; the records then go only to -o\n"
        "                        FILE, if given\n"
        "      --bootstrap N     replicates of the 95%% percentile intervals of Cause,\n"
        "                        Isolate, Disentangle and the flip rate, resampled\n"
        "                        within each (split, domain, attribute, kind) stratum\n"
        "                        (default 1000; 0: no intervals)\n"
        "      --seed N          the bootstrap's seed (default 42)\n"
        "      --compare A:B     with --table: compare summary A with B on the examples\n"
        "                        both scored (A, B: method/mode, e.g. hyperdas/soft,\n"
        "                        das/groundtruth, none/unintervened): paired bootstrap\n"
        "                        intervals of the differences and McNemar's exact test\n"
        "                        on the flips; repeatable.  Default: the first mode of\n"
        "                        each method against every other method's, and every\n"
        "                        mode against the unintervened model\n"
        "      --also-first N    also judge every example on its first N label tokens\n"
        "                        (the paper's rule) from the score records' token ids:\n"
        "                        rows 'first N tokens' in the comparisons (default 3\n"
        "                        with --table, else 0 = off); given explicitly, their\n"
        "                        summary records too (eval_tokens N)\n"
        "  -t, --threads N       CPU threads\n"
        "      --device D        cpu (default) or cuda: the teacher-forced forward on\n"
        "                        the GPU (target matrices in bf16 there); cpu-staged:\n"
        "                        the GPU's code path on the CPU (tests)\n"
        "  -o, --output FILE     records to FILE (atomically) instead of stdout\n"
        "  -z, --gzip            gzip the records\n"
        "  -h, --help            this text\n"
        "      --version         version\n");
}

/* ---- the scoring run ---- */

typedef struct {
    Options *o;
    HnSession s;
    const char *method;
    int n_modes;
    SelectionMode modes[MAX_MODES];
    ScoreGroups groups; /* group m = mode m */
    RecordWriter *out; /* NULL: records are not written (--table alone) */
} Scorer;

static int record_flag(const msgpack_object *rec, const char *key)
{
    const msgpack_object *v = mp_map_get(rec, key);
    return v && v->type == MSGPACK_OBJECT_BOOLEAN ? v->via.boolean : -1;
}

/* A string field of the record, copied whole ("" when absent). */
static char *record_str(const msgpack_object *rec, const char *key)
{
    char *v = mp_strdup(mp_map_get(rec, key));
    return v ? v : hd_strdup("");
}


/* The RAVEL rule (hyperdas(7) 9.2): greedily generate n = --eval-tokens
 * tokens from the intervened base prompt; correct when they match the
 * first n label tokens (a shorter label: its own tokens).  pred gets the
 * n tokens of row r at r * n. */
static void judge_generated(Scorer *sc, const HnView *v, int k, int *correct, int *pred,
                            int *first, int *count)
{
    const HnBatch *h = &sc->s.tb.hb;
    const int n = (int)sc->o->eval_tokens;
    int *plen = hd_malloc((size_t)k * sizeof *plen);
    if (hn_prompt_lengths(h, plen) < 0 ||
        hn_generate_greedy(sc->s.hn, sc->s.acts, &sc->s.target.model, h, sc->s.tb.base_ids, plen, n,
                           pred) < 0)
        hd_die("greedy generation: %s", hd_last_error());
    (void)v;
    for (int r = 0; r < k; r++) {
        /* the label: the row's tokens after its prompt (left padded) */
        const int *ids = sc->s.tb.base_ids + (size_t)r * h->B;
        int pad = 0;
        while (pad < h->B && !h->base_attn_mask[(size_t)r * h->B + pad]) pad++;
        int n_label = h->B - pad - plen[r];
        correct[r] = score_match_tokens(pred + (size_t)r * n, n, ids + pad + plen[r], n_label, n);
        first[r] = r * n;
        count[r] = n;
    }
    free(plen);
}

static void score_batch(Scorer *sc, const msgpack_object *const *recs, int k, const char *where)
{
    int bad = 0;
    if (hn_session_fill(&sc->s, recs, k, &bad) < 0)
        hd_die("%s (batch record %d): %s", where, bad + 1, hd_last_error());
    const HnBatch *h = &sc->s.tb.hb;
    const int V = sc->s.target.model.cfg.vocab_size;
    int *correct = hd_malloc((size_t)k * sizeof *correct);
    const int n_gen = sc->o->generate ? (int)sc->o->eval_tokens : 0;
    int *pred = hd_malloc((size_t)h->b * (h->B > n_gen ? h->B : n_gen) * sizeof *pred);
    int *first = hd_malloc((size_t)k * sizeof *first), *count = hd_malloc((size_t)k * sizeof *count);
    for (int m = 0; m < sc->n_modes; m++) {
        HnOptions opt = hn_default_options();
        opt.mode = sc->modes[m];
        HnLoss loss;
        HnView v;
        if (hypernet_forward_view(sc->s.hn, sc->s.acts, hn_session_target(&sc->s), h, &opt,
                                  &loss) < 0 ||
            hypernet_view_download(sc->s.acts, &v) < 0)
            hd_die("%s: %s", where, hd_last_error());
        if (sc->o->generate) {
            judge_generated(sc, &v, k, correct, pred, first, count);
        } else {
            hn_eval_judge(&v, V, k, h->B, (int)sc->o->eval_tokens, correct);
            /* label tokens come row by row in order: each row's run of them */
            for (int r = 0; r < k; r++) first[r] = -1, count[r] = 0;
            for (int i = 0; i < v.n_label_tokens; i++) {
                int r = v.label_rows[i] / h->B;
                if (first[r] < 0) first[r] = i;
                count[r]++;
                pred[i] = llama_argmax(v.logits + (size_t)i * V, V);
            }
        }
        const char *mode = selection_mode_name(sc->modes[m]);
        for (int r = 0; r < k; r++) {
            ScoreJudged j = {recs[r], r, correct[r], first[r] >= 0 ? pred + first[r] : pred,
                             count[r]};
            if (sc->out && score_record_write(sc->out, &sc->s, &v, &j, mode, sc->method,
                                              sc->o->rule, sc->o->eval_tokens) < 0)
                hd_die("%s", hd_last_error());
            char *str[6];
            static const char *const keys[6] = {"split", "domain", "target_attribute",
                                                "queried_attribute", "base_template", "id"};
            for (int i = 0; i < 6; i++) str[i] = record_str(recs[r], keys[i]);
            ScoreOutcome oc = {str[0], str[1], str[2], str[3], str[4], h->is_causal[r], correct[r],
                               record_flag(recs[r], "base_pred_correct"), str[5]};
            int first = -1, first_base = -1;
            if (sc->groups.first_n > 0)
                score_first_tokens_from_acts(recs[r], j.pred, j.n_pred, sc->groups.first_n, &first,
                                             &first_base);
            if (score_groups_add(&sc->groups, m, &oc, first, first_base) < 0)
                hd_die("%s", hd_last_error());
            for (int i = 0; i < 6; i++) free(str[i]);
        }
    }
    free(first);
    free(count);
    free(pred);
    free(correct);
}

/* Parses --modes into modes[]; returns their number.  Also run on the
 * option alone, before any model is loaded, so that a typo is a usage
 * error at once. */
static int parse_modes(SelectionMode modes[MAX_MODES], const char *list)
{
    char *m = hd_strdup(list);
    int n = 0;
    for (char *save = NULL, *t = strtok_r(m, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
        int mode = selection_mode_from_name(t);
        if (mode < 0) hd_usage_error("--modes: unknown mode '%s'", t);
        if (n == MAX_MODES) hd_usage_error("--modes: at most %d modes", MAX_MODES);
        /* one summary per mode: a mode twice would count its examples twice */
        for (int i = 0; i < n; i++)
            if (modes[i] == (SelectionMode)mode) hd_usage_error("--modes: '%s' given twice", t);
        modes[n++] = (SelectionMode)mode;
    }
    free(m);
    if (n == 0) hd_usage_error("--modes: no mode given");
    return n;
}

/* Summary records, tables and comparisons of every group; an unknown
 * --compare name is a usage error. */
static void report(const Options *o, const ScoreGroups *groups, RecordWriter *out)
{
    if (o->table && score_groups_check_compare(groups, o->compare, o->n_compare) < 0)
        hd_usage_error("%s", hd_last_error());
    if (score_groups_report(groups, out, o->table ? stdout : NULL, o->also_first > 0,
                            &o->bootstrap, o->compare, o->n_compare) < 0)
        hd_die("%s", hd_last_error());
}

static int run_scoring(Options *o, char **files, int n_files)
{
    Scorer sc = {.o = o};
    char *step;
    TrainState st;
    if (hn_session_open(&sc.s, o->model, o->ckpt, &step, &st) < 0) hd_die("%s", hd_last_error());
    const LlamaConfig *tc = &sc.s.target.model.cfg;
    const HypernetConfig cfg = sc.s.hn->cfg;
    /* The teacher-forced rule runs only the target's layers [L, N) (the
     * hypernetwork's weights come from the checkpoint): the rest of the
     * target goes back, as in hd-train.  Greedy generation runs every layer. */
    if (hn_session_use_device(&sc.s, o->device) < 0) hd_die("--device cuda: %s", hd_last_error());
    if (!o->generate) {
        llama_model_release_layers(&sc.s.target.model, 0, cfg.intervention_layer);
        if (cfg.intervention_layer > 0) llama_model_release_embedding(&sc.s.target.model);
    }
    sc.method = hn_method_name(cfg.method);
    sc.n_modes = parse_modes(sc.modes, o->modes ? o->modes : cfg.method == HN_METHOD_DAS ? "groundtruth" : "soft");
    const char *mode_names[MAX_MODES];
    score_groups_init(&sc.groups, first_tokens(o));
    for (int m = 0; m < sc.n_modes; m++) {
        mode_names[m] = selection_mode_name(sc.modes[m]);
        score_groups_find(&sc.groups, sc.method, mode_names[m], o->rule, o->eval_tokens);
    }
    train_batch_init(&sc.s.tb, tc->n_layers + 1, tc->hidden_size);

    ShardBatching how = {"acts", (int)o->batch, 0}; /* other records pass by */
    ShardRange range;
    RecordInput *in = record_shard_open(files, n_files, o->sharded ? &o->shard : NULL, &how, &range);
    if (!in) hd_die("%s", hd_last_error());
    if (!o->table || o->output) {
        sc.out = record_writer_open(o->output, o->gzip);
        if (!sc.out) hd_die("%s", hd_last_error());
        MapWriter h;
        header_begin(&h, record_writer_packer(sc.out), "scores", record_input_headers(in),
                     record_input_n_headers(in));
        target_model_pack_info(&h, &sc.s.target);
        char device[300];
        hn_session_describe_device(&sc.s, device, sizeof device);
        map_str(&h, "device", device);
        map_str(&h, "checkpoint", step);
        map_int64(&h, "checkpoint_step", st.step);
        map_str(&h, "method", sc.method);
        map_str(&h, "rule", o->rule);
        map_int64(&h, "eval_tokens", o->eval_tokens);
        msgpack_packer *pk = map_key(&h, "modes");
        msgpack_pack_array(pk, (size_t)sc.n_modes);
        for (int m = 0; m < sc.n_modes; m++) mp_pack_str(pk, mode_names[m]);
        if (o->sharded) record_shard_pack(&h, &o->shard);
        if (map_end(&h) < 0) hd_die("%s", hd_last_error());
        if (record_writer_end_record(sc.out) < 0) hd_die("%s", hd_last_error());
    }

    MpCopy *copies = hd_calloc((size_t)o->batch, sizeof *copies);
    const msgpack_object **recs = hd_calloc((size_t)o->batch, sizeof *recs);
    char where[512] = "";
    int k = 0, rc;
    long n_done = 0;
    Progress prog;
    progress_begin(&prog, "examples", -1);
    const msgpack_object *rec;
    while ((rc = record_input_next(in, &rec)) > 0) {
        if (!mp_is_str(mp_map_get(rec, "t"), "acts")) continue; /* other types pass by */
        if (k == 0) snprintf(where, sizeof where, "%s", record_input_where(in));
        recs[k] = mp_copy_init(&copies[k], rec);
        if (++k == o->batch) {
            score_batch(&sc, recs, k, where);
            for (int i = 0; i < k; i++) mp_copy_destroy(&copies[i]);
            n_done += k;
            k = 0;
            progress_update(&prog, n_done);
        }
    }
    if (rc < 0) hd_die("%s", hd_last_error());
    if (k > 0) score_batch(&sc, recs, k, where);
    for (int i = 0; i < k; i++) mp_copy_destroy(&copies[i]);
    progress_end(&prog);
    /* a shard may be empty (more shards than batches), not the whole input */
    if (n_done + k == 0 && (!o->sharded || range.n_batched == 0))
        hd_die("no acts records in the input (pipe cache-acts output in)");

    report(o, &sc.groups, sc.out);
    if (sc.out && record_writer_close(sc.out) < 0) hd_die("%s", hd_last_error());
    score_groups_free(&sc.groups);
    free(copies);
    free(recs);
    free(step);
    record_input_close(in);
    hn_session_free(&sc.s);
    return 0;
}

/* ---- --summarize: score records in, summaries out ---- */

static int run_summarize(Options *o, char **files, int n_files)
{
    RecordInput *in = record_input_open(files, n_files);
    if (!in) hd_die("%s", hd_last_error());
    /* one group per (method, mode, rule) met, in first-seen order */
    ScoreGroups groups;
    score_groups_init(&groups, first_tokens(o));
    int rc;
    const msgpack_object *rec;
    while ((rc = record_input_next(in, &rec)) > 0) {
        if (!mp_is_str(mp_map_get(rec, "t"), "score")) continue; /* old summaries, others */
        ScoreOutcome oc;
        if (score_outcome_from_record(&oc, rec) < 0)
            hd_die("%s: %s", record_input_where(in), hd_last_error());
        char *method = mp_strdup(mp_map_get(rec, "method"));
        char *mode = mp_strdup(mp_map_get(rec, "mode"));
        char *rule = mp_strdup(mp_map_get(rec, "rule"));
        if (!method || !mode || !rule)
            hd_die("%s: score record without method, mode or rule", record_input_where(in));
        int64_t et = 0;
        if (mp_get_int64(mp_map_get(rec, "eval_tokens"), &et) < 0) et = 0;
        int m = score_groups_find(&groups, method, mode, rule, et);
        groups.g[m].eval_tokens = et;
        int first = -1, first_base = -1;
        if (groups.first_n > 0) score_first_tokens_from_record(rec, groups.first_n, &first, &first_base);
        if (score_groups_add(&groups, m, &oc, first, first_base) < 0)
            hd_die("%s: %s", record_input_where(in), hd_last_error());
        score_outcome_release(&oc);
        free(method);
        free(mode);
        free(rule);
    }
    if (rc < 0) hd_die("%s", hd_last_error());
    if (groups.n == 0) hd_die("no score records in the input");
    RecordWriter *out = NULL;
    if (!o->table || o->output) {
        out = record_writer_open(o->output, o->gzip);
        if (!out) hd_die("%s", hd_last_error());
        header_pack(record_writer_packer(out), "scores", record_input_headers(in),
                    record_input_n_headers(in));
        if (record_writer_end_record(out) < 0) hd_die("%s", hd_last_error());
    }
    report(o, &groups, out);
    score_groups_free(&groups);
    if (out && record_writer_close(out) < 0) hd_die("%s", hd_last_error());
    record_input_close(in);
    return 0;
}

int main(int argc, char **argv)
{
    hd_cli_init(argc, argv, "hd-score");
    Options o = {.batch = 16, .eval_tokens = -1, .rule = RULE_TF, .also_first = -1,
                 .bootstrap = {SCORE_BOOTSTRAP_DEFAULT_N, SCORE_BOOTSTRAP_DEFAULT_SEED}};
    enum { OPT_MODES = 256, OPT_RULE, OPT_ETOK, OPT_SUMMARIZE, OPT_TABLE, OPT_SHARD, OPT_VERSION,
           OPT_DEVICE, OPT_BOOTSTRAP, OPT_SEED, OPT_COMPARE, OPT_ALSO_FIRST };
    static const struct option longopts[] = {
        {"checkpoint", required_argument, 0, 'c'}, {"model", required_argument, 0, 'm'},
        {"modes", required_argument, 0, OPT_MODES}, {"rule", required_argument, 0, OPT_RULE}, {"eval-tokens", required_argument, 0, OPT_ETOK},
        {"batch", required_argument, 0, 'b'},      {"summarize", no_argument, 0, OPT_SUMMARIZE},
        {"table", no_argument, 0, OPT_TABLE},      {"shard", required_argument, 0, OPT_SHARD},
        {"threads", required_argument, 0, 't'},
        {"output", required_argument, 0, 'o'},     {"gzip", no_argument, 0, 'z'},
        {"help", no_argument, 0, 'h'},             {"version", no_argument, 0, OPT_VERSION},
        {"device", required_argument, 0, OPT_DEVICE},
        {"bootstrap", required_argument, 0, OPT_BOOTSTRAP}, {"seed", required_argument, 0, OPT_SEED},
        {"compare", required_argument, 0, OPT_COMPARE},
        {"also-first", required_argument, 0, OPT_ALSO_FIRST},
        {0, 0, 0, 0}};
    int c;
    while ((c = getopt_long(argc, argv, "c:m:b:t:o:zh", longopts, NULL)) != -1) {
        switch (c) {
        case 'c': o.ckpt = optarg; break;
        case 'm': o.model = optarg; break;
        case OPT_MODES: o.modes = optarg; break;
        case OPT_RULE:
            if (strcmp(optarg, RULE_TF) && strcmp(optarg, RULE_GEN))
                hd_usage_error("--rule: expected %s or %s", RULE_TF, RULE_GEN);
            o.rule = optarg;
            o.generate = strcmp(optarg, RULE_GEN) == 0;
            break;
        case OPT_ETOK: o.eval_tokens = hd_cli_parse_count("--eval-tokens", optarg); break;
        case 'b': o.batch = hd_cli_parse_count("--batch", optarg); break;
        case OPT_SUMMARIZE: o.summarize = 1; break;
        case OPT_TABLE: o.table = 1; break;
        case OPT_SHARD:
            if (record_shard_parse(optarg, &o.shard) < 0) hd_usage_error("%s", hd_last_error());
            o.sharded = 1;
            break;
        case 't': hd_set_threads((int)hd_cli_parse_count("--threads", optarg)); break;
        case 'o': o.output = optarg; break;
        case 'z': o.gzip = 1; break;
        case 'h': usage(); return 0;
        case OPT_VERSION: hd_cli_print_version(); return 0;
        case OPT_DEVICE: o.device = hn_device_parse(optarg); break;
        case OPT_BOOTSTRAP:
            o.bootstrap.n = (int)hd_cli_parse_count("--bootstrap", optarg);
            /* every replicate's rates are kept for the percentiles */
            if (o.bootstrap.n > 100000) hd_usage_error("--bootstrap: at most 100000 replicates");
            break;
        case OPT_SEED: o.bootstrap.seed = (uint64_t)hd_cli_parse_count("--seed", optarg); break;
        case OPT_COMPARE: {
            const char *colon = strchr(optarg, ':');
            if (!colon || !strchr(colon + 1, '/') || !memchr(optarg, '/', (size_t)(colon - optarg)))
                hd_usage_error("--compare: expected A:B with A and B method/mode, got '%s'", optarg);
            o.compare = hd_realloc(o.compare, (size_t)(o.n_compare + 1) * sizeof *o.compare);
            o.compare[o.n_compare++] = optarg;
            break;
        }
        case OPT_ALSO_FIRST: o.also_first = hd_cli_parse_count("--also-first", optarg); break;
        default: hd_usage_error("unknown option");
        }
    }
    if (o.batch < 1) hd_usage_error("--batch must be at least 1");
    if (o.modes) parse_modes((SelectionMode[MAX_MODES]){0}, o.modes);
    if (o.n_compare > 0 && !o.table) hd_usage_error("--compare prints its comparisons with --table");
    if (o.eval_tokens < 0) o.eval_tokens = o.generate ? 3 : 0;
    if (o.generate && o.device != HN_DEVICE_CPU)
        hd_usage_error("--device: greedy generation (--rule %s) runs on the CPU", RULE_GEN);
    if (o.generate && o.eval_tokens == 0)
        hd_usage_error("--rule %s compares the first N tokens: --eval-tokens N >= 1", RULE_GEN);
    if (o.summarize) {
        if (o.ckpt) hd_usage_error("--summarize reads score records: no --checkpoint");
        if (o.sharded)
            hd_usage_error("--summarize sums whole runs: cat the shards' scores into it, no --shard");
        int rc = run_summarize(&o, argv + optind, argc - optind);
        free(o.compare);
        return rc;
    }
    if (!o.ckpt) hd_usage_error("a checkpoint is needed: -c DIR (from hd-train)");
    char *rank_output = NULL; /* started by mpirun/srun: this rank's shard */
    if (!o.sharded) {
        o.sharded = record_shard_from_launcher(&o.shard, o.output, &rank_output);
        if (o.sharded < 0) hd_usage_error("%s", hd_last_error());
        if (o.sharded) o.output = rank_output;
    }
    if (o.sharded && record_shard_check_inputs(argv + optind, argc - optind) < 0)
        hd_usage_error("%s", hd_last_error());
    hd_blas_warn_slow_kernels();
    int rc = run_scoring(&o, argv + optind, argc - optind);
    free(rank_output);
    free(o.compare);
    return rc;
}
