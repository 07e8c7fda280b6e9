/* hd-train: train the HyperDAS hypernetwork on cached activations.
 *
 *   ravel-pairs ... | hd-filter | cache-acts | hd-train -c run.ckpt > run.log
 *
 * Reads acts records (files or stdin; spooled once into the checkpoint
 * directory so that every epoch can be shuffled), runs the hypernetwork,
 * the intervention at hs[L] and the frozen target layers [L, N), and
 * trains with AdamW (fp32 master weights), gradient clipping and the
 * source-selection sparsity schedule of hyperdas(7) 6.  Writes `step` and
 * `eval` log records on stdout and checkpoints into DIR.
 *
 * Data parallel (a `make MPI=1` build under mpirun -np N): every rank holds
 * the whole model; rank r takes examples r, r+N, ... of the batch that one
 * process would take, the loss is normalised by the global batch's counts,
 * and the gradients are summed over the ranks before clipping and AdamW,
 * so every rank makes the same update as one process with the whole batch
 * (up to the order of fp32 sums).  Rank 0 alone spools the input, writes
 * the log and the checkpoints; the checkpoint is independent of N. */
#include "acts/acts_cache.h"
#include "train/acts_set.h"
#include "hypernet/checkpoint.h"
#include "train/ckpt_guard.h"
#include "base/cli.h"
#include "cpu/grad_clip.h"
#include "cpu/sparsity_loss.h"
#include "base/dist.h"
#include "base/error.h"
#include "stream/header.h"
#include "stream/map_writer.h"
#include "hypernet/hn_eval.h"
#include "hypernet/hn_session.h"
#include "model/llama_load.h"
#include "model/llama_pack.h"
#include "hypernet/hypernet.h"
#include "stream/msgpack_util.h"
#include "base/outfile.h"
#include "stream/record_input.h"
#include "stream/records.h"
#include "base/rng.h"
#include "model/target_model.h"
#include "train/train_cli.h"
#include "train/train_options.h"
#include "train/train_records.h"
#include "train/train_spool.h"
#include "train/train_step.h"

#include <getopt.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ---- running one batch ---- */

/* Loads records idx[0..n) of the set into the session's batch.  shared:
 * the records are this rank's share of a global batch (every rank calls
 * it, n may be 0), padded to the global batch's longest instruction, base
 * and source (train_batch.h: the padding is part of the maths). */
static void load_batch(HnSession *r, ActsSet *set, const size_t *idx, int n, const char *what,
                       int shared)
{
    MpCopy *copies = hd_calloc((size_t)n, sizeof *copies);
    const msgpack_object **recs = hd_calloc((size_t)n, sizeof *recs);
    for (int i = 0; i < n; i++)
        if (acts_set_get(set, idx[i], &copies[i], &recs[i]) < 0) hd_die("%s", hd_last_error());
    int64_t pad[3] = {0, 0, 0};
    for (int i = 0; shared && i < n; i++) {
        int len[3];
        if (train_batch_lengths(recs[i], len) < 0)
            hd_die("%s: record %zu: %s", what, idx[i] + 1, hd_last_error());
        for (int k = 0; k < 3; k++) pad[k] = len[k] > pad[k] ? len[k] : pad[k];
    }
    if (shared) dist_allreduce_max_i64(pad, 3);
    for (int k = 0; k < 3; k++) r->tb.pad_to[k] = (int)pad[k];
    int bad = 0;
    if (n > 0 && hn_session_fill(r, recs, n, &bad) < 0)
        hd_die("%s: record %zu: %s", what, idx[bad] + 1, hd_last_error());
    for (int i = 0; i < n; i++) mp_copy_destroy(&copies[i]);
    free(copies);
    free(recs);
}

/* ---- evaluation ---- */

static void evaluate(HnSession *r, ActsSet *val, const TrainOptions *o, long step, RecordWriter *log)
{
    size_t n = acts_set_count(val);
    if (o->eval_max > 0 && (size_t)o->eval_max < n) n = (size_t)o->eval_max;
    char *modes = hd_strdup(o->eval_modes);
    for (char *save = NULL, *m = strtok_r(modes, ",", &save); m; m = strtok_r(NULL, ",", &save)) {
        HnOptions opt = hn_default_options();
        opt.mode = (SelectionMode)selection_mode_from_name(m);
        opt.causal_weight = (float)o->causal_w;
        opt.iso_weight = (float)o->iso_w;
        EvalCounts c = {0};
        /* batch j is evaluated by rank j mod N; the counts are summed */
        size_t batch_no = 0;
        for (size_t start = 0; start < n; start += (size_t)o->batch, batch_no++) {
            if (batch_no % (size_t)dist_size() != (size_t)dist_rank()) continue;
            int k = (int)(n - start < (size_t)o->batch ? n - start : (size_t)o->batch);
            size_t *idx = hd_malloc((size_t)k * sizeof *idx);
            for (int i = 0; i < k; i++) idx[i] = start + (size_t)i;
            load_batch(r, val, idx, k, o->val, 0);
            HnLoss loss;
            HnView v;
            if (hypernet_forward_view(r->hn, r->acts, &r->view, &r->tb.hb, &opt, &loss) < 0 ||
                hypernet_view_download(r->acts, &v) < 0)
                hd_die("%s: %s", o->val, hd_last_error());
            int *correct = hd_malloc((size_t)k * sizeof *correct);
            hn_eval_judge(&v, r->target.model.cfg.vocab_size, k, r->tb.hb.B, (int)o->eval_tokens, correct);
            eval_counts_add(&c, correct, r->tb.is_causal, k);
            c.loss_sum += loss.pred;
            c.n_batches++;
            free(correct);
            free(idx);
        }
        if (dist_size() > 1) {
            int64_t counts[5] = {c.n_causal, c.n_isolate, c.ok_causal, c.ok_isolate, c.n_batches};
            dist_allreduce_sum_i64(counts, 5);
            dist_allreduce_sum_f64(&c.loss_sum, 1);
            c.n_causal = counts[0], c.n_isolate = counts[1], c.ok_causal = counts[2];
            c.ok_isolate = counts[3], c.n_batches = counts[4];
        }
        if (!log) continue; /* ranks other than 0 */
        if (train_record_eval(log, step, selection_mode_name(opt.mode), &c, o->eval_tokens) < 0)
            hd_die("%s", hd_last_error());
        char rates[3][16];
        double v[3] = {eval_cause(&c), eval_isolate(&c), eval_disentangle(&c)};
        for (int k = 0; k < 3; k++)
            snprintf(rates[k], sizeof rates[k], isnan(v[k]) ? "-" : "%.3f", v[k]);
        fprintf(stderr, "%s: step %ld eval %s: cause %s isolate %s disentangle %s (%ld+%ld examples)\n",
                hd_progname, step, selection_mode_name(opt.mode), rates[0], rates[1], rates[2], c.n_causal,
                c.n_isolate);
    }
    free(modes);
}

/* --from-pairs: the pair records of files[0..n) run through the target as
 * cache-acts runs them (every layer, bf16, batches of 8), into DIR/NAME.acts;
 * returns that path (malloc'd). */
static char *cache_pairs(const TargetModel *t, char **files, int n, const char *dir,
                         const char *name)
{
    char *path = NULL;
    if (asprintf(&path, "%s/%s.acts", dir, name) < 0) hd_die("out of memory");
    ActsCache cache;
    if (acts_cache_init(&cache, t, 8, "all", DTYPE_BF16, 0, 256) < 0) hd_die("%s", hd_last_error());
    RecordInput *in = record_input_open(files, n);
    if (!in) hd_die("%s", hd_last_error());
    RecordWriter *out = record_writer_open(path, 0);
    if (!out) hd_die("%s", hd_last_error());
    MapWriter h;
    header_begin(&h, record_writer_packer(out), "acts", record_input_headers(in), record_input_n_headers(in));
    acts_cache_pack_header(&cache, &h);
    if (map_end(&h) < 0 || record_writer_end_record(out) < 0 || acts_cache_run(&cache, in, out) < 0 ||
        record_writer_close(out) < 0)
        hd_die("%s", hd_last_error());
    record_input_close(in);
    acts_cache_free(&cache);
    return path;
}

/* The configuration: the checkpoint's when resuming (its latest step,
 * malloc'd, is returned), else the defaults and the options (NULL). */
static char *configure(TrainOptions *o, const TrainOptions *as_given, const LlamaConfig *tc)
{
    char *resume_step = NULL;
    if (o->resume) {
        resume_step = checkpoint_latest(o->resume);
        if (!resume_step) hd_die("%s", hd_last_error());
        o->hcfg = hypernet_default_config(tc);
        if (train_options_restore(o, resume_step, tc) < 0) hd_die("%s", hd_last_error());
        if (train_options_check_resume(as_given, o, resume_step) < 0) hd_usage_error("%s", hd_last_error());
        o->ckpt = o->resume;
    } else {
        o->hcfg = hypernet_default_config(tc);
        if (o->method && strcmp(o->method, "das") == 0) {
            o->hcfg.method = HN_METHOD_DAS;
            o->hcfg.n_layers = 0;
            o->hcfg.subspace = HN_SUBSPACE_DAS;
        }
        if (o->layer >= 0) o->hcfg.intervention_layer = (int)o->layer;
        if (o->hyper_layers >= 0) o->hcfg.n_layers = (int)o->hyper_layers;
        if (o->das_dim >= 0) o->hcfg.das_dim = (int)o->das_dim;
        if (o->sub_ffn >= 0) o->hcfg.sub_ffn = (int)o->sub_ffn;
        if (o->subspace) {
            int s = hn_subspace_from_name(o->subspace);
            if (s < 0) hd_usage_error("--subspace: expected reflect, das, mask or none");
            o->hcfg.subspace = (HnSubspace)s;
        }
        if (o->hcfg.method == HN_METHOD_DAS && (o->hcfg.n_layers != 0 || o->hcfg.subspace != HN_SUBSPACE_DAS))
            hd_usage_error("--method das has no hypernetwork (--hyper-layers) and only the das subspace");
    }
    return resume_step;
}

#define SPOOL_PATH 4200

/* The data: spooled into the checkpoint directory, by rank 0 alone (under
 * mpirun only rank 0 has stdin); the other ranks then read its spools,
 * so DIR must be on a file system every rank sees.  Afterwards only the
 * target's layers [L, N) are kept. */
static void open_data(const TrainCli *cli, const TrainOptions *o, HnSession *run, int rank,
                      char spool[SPOOL_PATH], ActsSet **train, ActsSet **val)
{
    const char *inputs = cli->n_files == 1 ? cli->files[0] : cli->n_files == 0 ? "stdin" : "the inputs";
    char vspool[SPOOL_PATH];
    snprintf(spool, SPOOL_PATH, "%s/train.spool", o->ckpt);
    snprintf(vspool, SPOOL_PATH, "%s/val.spool", o->ckpt);
    if (rank == 0) {
        /* under temporary names until read and checked (train_spool.h) */
        OutFile tmp_train = {0}, tmp_val = {0};
        if (o->resume && cli->n_files == 0) {
            *train = acts_set_open_spool(spool);
        } else if (o->from_pairs) {
            char *acts = cache_pairs(&run->target, cli->files, cli->n_files, o->ckpt, "train");
            *train = train_spool_build(&acts, 1, spool, &tmp_train);
            if (*train) unlink(acts); /* the spool holds the same records */
            free(acts);
        } else {
            *train = train_spool_build(cli->files, cli->n_files, spool, &tmp_train);
        }
        if (!*train || train_spool_check(*train, inputs, o->from_pairs, &run->target) < 0)
            hd_die("%s", hd_last_error());
        if (o->val) {
            char *val_file = o->from_pairs ? cache_pairs(&run->target, (char **)&o->val, 1, o->ckpt, "val")
                                          : hd_strdup(o->val);
            *val = train_spool_build(&val_file, 1, vspool, &tmp_val);
            if (!*val || train_spool_check(*val, o->val, o->from_pairs, &run->target) < 0)
                hd_die("%s", hd_last_error());
            if (o->from_pairs) unlink(val_file);
            free(val_file);
        }
        if ((o->overwrite && ckpt_guard_clear_run(o->ckpt) < 0) || train_spool_publish(&tmp_train) < 0 ||
            train_spool_publish(&tmp_val) < 0)
            hd_die("%s", hd_last_error());
    }
    /* From here on only the target's layers [L, N) run (the hypernetwork has
     * copied what it starts from, --from-pairs has cached its activations):
     * the others' memory goes back (half of SmolLM2's layers at L = 15),
     * and so does an untied embedding (Llama-3-8B's: 2 GB). */
    llama_model_release_layers(&run->target.model, 0, run->hn->cfg.intervention_layer);
    if (run->hn->cfg.intervention_layer > 0) llama_model_release_embedding(&run->target.model);
    /* Those run frozen: on the CPU they are kept as the weight file stores
     * them and converted a layer at a time (llama_pack.h: the same values;
     * 212 MB less for SmolLM2's Q4_1 at L = 15).  A GPU has its own copy. */
    if (!run->gpu && !o->fp32_target &&
        llama_model_pack_layers(&run->target.model, run->target.path, run->hn->cfg.intervention_layer,
                                run->target.model.cfg.n_layers) < 0)
        hd_die("%s", hd_last_error());
    dist_barrier();
    if (rank > 0) {
        *train = acts_set_open_spool(spool);
        if (!*train) hd_die("%s", hd_last_error());
        if (o->val && !(*val = acts_set_open_spool(vspool))) hd_die("%s", hd_last_error());
    }
}

/* The target model loaded, the hypernetwork created (from the checkpoint
 * when resuming: its step directory is returned, else NULL) and moved to
 * the device with the AdamW moments adam_m and adam_v. */
static char *set_up(HnSession *run, TrainOptions *o, const TrainOptions *as_given, HnDevice device, int tf32,
                    int world, float **adam_m, float **adam_v, TrainState *st)
{
    const int use_cuda = device == HN_DEVICE_CUDA;
    const char *path = target_model_resolve(o->model);
    if (!path || target_model_load(&run->target, path, 1) < 0) hd_die("%s", hd_last_error());
    const LlamaConfig *tc = &run->target.model.cfg;

    /* configuration: the checkpoint's when resuming, else defaults + options */
    char *resume_step = configure(o, as_given, tc);
    run->hn = hypernet_create(&o->hcfg, tc);
    if (!run->hn) hd_die("%s", hd_last_error());
    size_t np = run->hn->n_params;
    *adam_m = hd_calloc(np, sizeof(float));
    *adam_v = hd_calloc(np, sizeof(float));
    *st = (TrainState){.seed = o->seed};
    if (resume_step) {
        if (checkpoint_load(resume_step, run->hn, *adam_m, *adam_v, st) < 0) hd_die("%s", hd_last_error());
        hypernet_note_moments(run->hn, *adam_m, *adam_v);
    } else if (hypernet_init(run->hn, &run->target.model, o->from_scratch, (float)o->head_std, o->seed) < 0) {
        hd_die("%s", hd_last_error());
    }

    /* the GPU: one per rank (NCCL picks it); the target's layers [L, N)
     * uploaded before the host releases the others */
    if ((use_cuda && world > 1 && dist_nccl_init() < 0) ||
        hn_session_use_device(run, device) < 0 || (tf32 && compute_cuda_tf32(1) < 0))
        hd_die("--device cuda: %s", hd_last_error());
    return resume_step;
}

/* ---- a clean stop on a signal ----
 *
 * A run of hours (the study's 2,000 steps on a laptop CPU) saves every
 * --save-every steps, but Ctrl-C, a batch system's time limit (SIGTERM)
 * or a closed terminal (SIGHUP) would lose everything since the last save.
 * So during the training loop the first such signal only asks to stop:
 * the step in flight ends, a checkpoint is saved and the log closed (a
 * complete stream up to that step), and --resume continues from there.  A
 * second signal stops at once, as one does outside the loop, removing the
 * temporary files (outfile.h). */
static volatile sig_atomic_t stop_signal;
static int stop_says; /* rank 0 alone says so, as it says the rest */

static void on_stop_signal(int sig)
{
    if (stop_signal) outfile_die_of_signal(sig);
    stop_signal = sig;
    if (!stop_says) return;
    static const char msg[] = "\nhd-train: stopping after this step, with a checkpoint "
                              "(a second signal stops at once)\n";
    ssize_t w = write(STDERR_FILENO, msg, sizeof msg - 1);
    (void)w;
}

static void catch_stop_signals(int rank)
{
    stop_says = rank == 0;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_stop_signal;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESTART; /* the step's reads and writes go on */
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGHUP, &sa, NULL);
}

/* Whether every rank is to stop now: a signal reaches each rank on its
 * own (or only some), and all must leave the loop at the same step. */
static int stop_requested(int world)
{
    int64_t s = stop_signal != 0;
    if (world > 1) dist_allreduce_sum_i64(&s, 1);
    return s > 0;
}

static const char *signal_name(int sig)
{
    return sig == SIGINT ? "SIGINT" : sig == SIGTERM ? "SIGTERM" : sig == SIGHUP ? "SIGHUP" : "a signal";
}

/* Rank 0's log, opened with its header. */
static RecordWriter *open_log(const TrainOptions *o, HnSession *run, ActsSet *train, int tf32,
                              size_t n_train, long total, long resumed_at, const char *cfg_json, int world)
{
    RecordWriter *log = record_writer_open(o->output, o->gzip);
    if (!log) hd_die("%s", hd_last_error());
    MapWriter h;
    header_begin(&h, record_writer_packer(log), "log", acts_set_headers(train), acts_set_n_headers(train));
    target_model_pack_info(&h, &run->target);
    char device[300];
    hn_session_describe_device(run, device, sizeof device);
    if (tf32) strncat(device, ", TF32 GEMMs", sizeof device - strlen(device) - 1);
    map_str(&h, "device", device);
    map_str(&h, "blas", hd_blas_describe());
    /* the frozen layers as the file stores them (llama_pack.h), when they are */
    if (run->target.model.packed) map_uint64(&h, "target_packed_bytes", llama_model_packed_bytes(&run->target.model));
    map_str(&h, "checkpoint", o->ckpt);
    map_uint64(&h, "train_records", n_train);
    map_int64(&h, "total_steps", total);
    map_int64(&h, "resumed_at", resumed_at);
    map_str(&h, "config", cfg_json);
    msgpack_pack_int(map_key(&h, "world_size"), world);
    if (map_end(&h) < 0) hd_die("%s", hd_last_error());
    if (record_writer_end_record(log) < 0) hd_die("%s", hd_last_error());
    return log;
}

int main(int argc, char **argv)
{
    hd_cli_init(argc, argv, "hd-train");
    const int world = dist_init(&argc, &argv), rank = dist_rank();
    TrainCli cli;
    train_cli_parse(&cli, argc, argv, world, rank);
    if (rank == 0 && cli.device != HN_DEVICE_CUDA) hd_blas_warn_slow_kernels();
    TrainOptions o = cli.o;
    const TrainOptions as_given = cli.as_given;
    const HnDevice device = cli.device;
    const int tf32 = cli.tf32, use_cuda = device == HN_DEVICE_CUDA;
    /* before the model is loaded: inputs of the right kind (the files; a
     * pipe once spooled), the checkpoint directory this run's alone, and
     * no other run's checkpoints in it unless --overwrite */
    if (rank == 0 && (train_spool_check_files(cli.files, cli.n_files, o.val, o.from_pairs) < 0 ||
                      ckpt_guard_take(o.resume ? o.resume : o.ckpt, o.resume != NULL, o.overwrite) < 0))
        hd_die("%s", hd_last_error());

    HnSession run = {.recompute_target = o.recompute_target};
    float *adam_m, *adam_v;
    TrainState st;
    char *resume_step = set_up(&run, &o, &as_given, device, tf32, world, &adam_m, &adam_v, &st);
    const LlamaConfig *tc = &run.target.model.cfg;

    char spool[SPOOL_PATH];
    ActsSet *train = NULL, *val = NULL;
    open_data(&cli, &o, &run, rank, spool, &train, &val);
    size_t n_train = acts_set_count(train);
    if (n_train == 0) hd_die("%s: no acts records", acts_set_spool_path(train));
    /* a state.json whose cursor lies past the spool's end was saved with
     * other training data */
    if ((size_t)st.cursor > n_train)
        hd_die("%s/state.json: cursor %ld is past the %zu records of %s (resume with the run's own data)",
               resume_step, st.cursor, n_train, spool);
    train_batch_init(&run.tb, tc->n_layers + 1, tc->hidden_size);

    long steps_per_epoch = (long)((n_train + (size_t)o.batch - 1) / (size_t)o.batch);
    long total = o.epochs * steps_per_epoch;
    if (o.max_steps > 0 && o.max_steps < total) total = o.max_steps;
    char *cfg_json = train_options_json(&o, run.hn, &run.target);

    RecordWriter *log = rank == 0 ? open_log(&o, &run, train, tf32, n_train, total, st.step, cfg_json, world)
                                  : NULL; /* rank 0's */

    TrainStep ts;
    if (train_step_init(&ts, &run, adam_m, adam_v, use_cuda) < 0) hd_die("%s", hd_last_error());
    float group_lr[HN_N_GROUPS], group_wd[HN_N_GROUPS] = {(float)o.wd, 0, (float)o.wd, 0};
    AdamWSpan *spans = hd_malloc((size_t)hypernet_param_count(run.hn) * sizeof *spans);
    int spans_cap = hypernet_param_count(run.hn);
    AdamWConfig acfg = adamw_default_config();
    size_t *perm = hd_malloc(n_train * sizeof *perm);
    size_t *mine = hd_malloc((size_t)o.batch * sizeof *mine); /* this rank's share */
    long perm_epoch = -1;
    Progress prog;
    progress_begin(&prog, "steps", total);
    if (rank > 0) prog.enabled = 0;
    catch_stop_signals(rank);
    int stopped = 0;
    while (st.step < total) {
        if ((size_t)st.cursor >= n_train) {
            st.epoch++;
            st.cursor = 0;
        }
        if (perm_epoch != st.epoch) {
            train_epoch_order(perm, n_train, st.seed, st.epoch);
            perm_epoch = st.epoch;
        }
        int b = (int)(n_train - (size_t)st.cursor < (size_t)o.batch ? n_train - (size_t)st.cursor
                                                                     : (size_t)o.batch);
        double t0 = hd_now_seconds();
        /* rank r of N: examples r, r+N, ... of the batch (none when b <= r) */
        int share = 0;
        for (int i = rank; i < b; i += world) mine[share++] = perm[st.cursor + i];
        load_batch(&run, train, mine, share, "training data", world > 1);
        const double load_secs = hd_now_seconds() - t0;
        HnOptions opt = hn_default_options();
        opt.causal_weight = (float)o.causal_w;
        opt.iso_weight = (float)o.iso_w;
        opt.sparsity_weight = o.sparsity && run.hn->cfg.method == HN_METHOD_HYPERDAS
                                  ? sparsity_weight(st.step, total, (float)o.sp_start,
                                                    (float)o.sp_end, (float)o.sp_warmup, 0)
                                  : 0.0f;
        HnLoss loss = {0};
        if (world > 1) { /* the loss is a mean over the global batch */
            int64_t n_tok = share > 0 ? hn_batch_label_tokens(&run.tb.hb) : 0;
            dist_allreduce_sum_i64(&n_tok, 1);
            opt.global_label_tokens = (int)n_tok;
            opt.global_examples = b;
        }
        double gnorm = 0.0;
        if (train_step_gradients(&ts, &run, &opt, share, world, &loss, &gnorm) < 0)
            hd_die("step %ld: %s", st.step + 1, hd_last_error());
        if (!isfinite(loss.total))
            hd_die("step %ld: the loss is %f; stopping (the last good checkpoint is %s/latest)",
                   st.step + 1, loss.total, o.ckpt);
        if (!isfinite(gnorm))
            hd_die("step %ld: the gradient norm is %f; stopping (the last good checkpoint is %s/latest)",
                   st.step + 1, gnorm, o.ckpt);
        group_lr[HN_GROUP_MAIN] = (float)train_scheduled_lr(&o, o.lr, st.step, total);
        group_lr[HN_GROUP_ROTATE] = (float)train_scheduled_lr(&o, o.lr_rotate, st.step, total);
        group_lr[HN_GROUP_MASK] = (float)train_scheduled_lr(&o, o.lr_mask, st.step, total);
        group_lr[HN_GROUP_BUFFER] = 0;
        /* the log's lr: the main group's, or R's for DAS (its only tensor) */
        double lr = group_lr[run.hn->cfg.method == HN_METHOD_DAS ? HN_GROUP_ROTATE : HN_GROUP_MAIN];
        /* on the CPU, the embedding rows no batch has used only decay */
        int n_spans = use_cuda ? hypernet_adamw_spans(run.hn, group_lr, group_wd, spans)
                               : hypernet_adamw_spans_split(run.hn, group_lr, group_wd, &spans, &spans_cap);
        /* --clip 0: no clipping (the DAS baseline's default) */
        float clip_scale = o.clip > 0 ? grad_clip_coef(gnorm, o.clip) : 1.0f;
        if (train_step_update(&ts, &run, clip_scale, spans, n_spans, &acfg, st.step + 1) < 0)
            hd_die("step %ld: %s", st.step + 1, hd_last_error());
        st.step++;
        st.cursor += b;
        if (log) { /* rank 0 always has a share, padded as the whole batch */
            const int shape[3] = {run.tb.hb.E, run.tb.hb.B, run.tb.hb.S};
            const double input_secs = load_secs + (share > 0 ? hn_acts_input_seconds(run.acts) : 0.0);
            if (train_record_step(log, st.step, st.epoch, &loss, opt.sparsity_weight, lr, gnorm, b, shape,
                                  hd_now_seconds() - t0, input_secs) < 0)
                hd_die("%s", hd_last_error());
        }
        progress_update(&prog, st.step);
        if (prog.enabled && (st.step % 10 == 0))
            fprintf(stderr, " loss %.4f", loss.total);
        if (val && o.eval_every > 0 && st.step % o.eval_every == 0 && st.step < total)
            evaluate(&run, val, &o, st.step, log);
        stopped = st.step < total && stop_requested(world);
        if (rank == 0 && ((o.save_every > 0 && st.step % o.save_every == 0) || st.step == total || stopped))
            if (train_step_to_host(&ts, &run) < 0 ||
                checkpoint_save(o.ckpt, run.hn, adam_m, adam_v, &st, cfg_json, (int)o.keep) < 0)
                hd_die("%s", hd_last_error());
        if (stopped) break;
    }
    progress_end(&prog);
    /* a stopped run is not evaluated: the resumed one evaluates at its end */
    if (val && !stopped) evaluate(&run, val, &o, st.step, log);
    if (log && record_writer_close(log) < 0) hd_die("%s", hd_last_error());
    const int sig = stop_signal ? stop_signal : SIGTERM; /* a rank the signal missed */
    if (stopped && rank == 0)
        fprintf(stderr, "hd-train: stopped by %s after step %ld of %ld; checkpoint %s/step-%08ld; "
                        "continue with: hd-train --resume %s and this run's options (no -c, no input: the "
                        "directory holds it)\n",
                signal_name(sig), st.step, total, o.ckpt, st.step, o.ckpt);

    free(mine);
    free(perm);
    free(spans);
    free(cfg_json);
    train_step_free(&ts);
    free(adam_m);
    free(adam_v);
    free(resume_step);
    acts_set_close(train);
    acts_set_close(val);
    hn_session_free(&run);
    /* not 0: the run did not reach its end (a make recipe stops there);
     * 128 + the signal's number, as a shell reports a death by it */
    return stopped ? 128 + sig : 0;
}
