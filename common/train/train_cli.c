/* hd-train's command line: the options, their defaults, the usage text
 * and the checks that need no model (train_cli.h). */
#include "train/train_cli.h"
#include "base/cli.h"
#include "base/dist.h"
#include "base/error.h"
#include "hypernet/hn_eval.h"

#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char usage_text[] =
        "Usage: hd-train [options] [ACTS...]\n"
        "Train the HyperDAS hypernetwork on acts records (cache-acts --layers all).\n"
        "ACTS '-' or none is stdin.  Log records (step, eval) go to stdout or -o FILE.\n"
        "\n"
        "Model and data\n"
        "  -m, --model PATH        target model (as given to cache-acts; default: $HD_MODEL,\n"
        "                          else the SmolLM2 of 'make model')\n"
        "  -c, --checkpoint DIR    checkpoint directory (default hd-train.ckpt); the\n"
        "                          training records are spooled there (DIR/train.spool);\n"
        "                          one run at a time (DIR/lock), and not over another\n"
        "                          run's checkpoints (--resume or --overwrite)\n"
        "      --resume DIR        continue from DIR's latest checkpoint (with no ACTS:\n"
        "                          from its spool), bit-identical to an uninterrupted run;\n"
        "                          an option the checkpoint fixes (method, hypernetwork,\n"
        "                          optimisation but --epochs/--max-steps) must agree\n"
        "      --overwrite         a new run into a DIR that holds another run: its\n"
        "                          checkpoints go once the new input has been checked\n"
        "      --val FILE          held-out acts records evaluated every --eval-every steps\n"
        "      --from-pairs        the inputs and --val are pair records (ravel-pairs |\n"
        "                          hd-filter): their activations are computed first, as\n"
        "                          cache-acts does (every layer, bf16), into DIR/*.acts\n"
        "Method\n"
        "      --method M          hyperdas (default) or das: the DAS/MDAS baseline, one\n"
        "                          learned rotation at the entity's last token of base and\n"
        "                          source, no hypernetwork; its defaults: --lr-rotate 3e-4,\n"
        "                          --clip 0, --causal-weight 1, --iso-weight 1, no sparsity\n"
        "                          loss, --eval-modes groundtruth,random (hyperdas(7) 8)\n"
        "Hypernetwork (defaults: hyperdas(7) 7.2, capped to the target)\n"
        "      --layer L           intervention layer: hs[L] is replaced (default 15)\n"
        "      --hyper-layers N    hypernetwork decoder layers (default 8)\n"
        "      --das-dim K         subspace dimension (default 128)\n"
        "      --subspace S        reflect (default), das, mask or none\n"
        "      --sub-ffn N         width of the subspace module's MLP (default: the target's)\n"
        "      --from-scratch      random decoder layers instead of the target's first ones\n"
        "      --head-std X        std of the selection head's init (default 0.02)\n"
        "Optimisation\n"
        "      --epochs N          (default 5)      --max-steps N   stop after N steps\n"
        "  -b, --batch N           (default 16)\n"
        "      --lr X              (default 4e-5)   --lr-rotate X   (default 1e-3)\n"
        "      --lr-mask X         (default 1e-2)   --weight-decay X (default 0.01)\n"
        "      --clip X            gradient norm clip (default 4.0; 0 = none)\n"
        "      --warmup-steps N    linear warm-up (default 0)\n"
        "      --schedule S        constant (default), linear or cosine decay\n"
        "      --causal-weight X   (default 3.5)    --iso-weight X  (default 0.5)\n"
        "      --sparsity A:B:W    sparsity weight from A to B, zero for the first\n"
        "                          fraction W of steps (default 0.15:1.5:0.5)\n"
        "      --no-sparsity       no source-selection sparsity loss (the last of\n"
        "                          --sparsity and --no-sparsity wins)\n"
        "      --seed N            initialisation and data order (default 42)\n"
        "Evaluation and output\n"
        "      --eval-every N      (default 2000, and at the end)\n"
        "      --eval-modes LIST   selection modes (default soft,bidding_argmax): soft,\n"
        "                          column_argmax, bidding_argmax, global_argmax,\n"
        "                          groundtruth (last entity tokens), random (one random\n"
        "                          visible pair: the control for global_argmax)\n"
        "      --eval-tokens N     compare the first N label tokens (default 0: all)\n"
        "      --eval-max N        at most N validation records (default: all)\n"
        "      --save-every N      checkpoint every N steps (default 2000, and at the end;\n"
        "                          Ctrl-C or SIGTERM saves the step in flight and stops)\n"
        "      --keep N            checkpoints kept (default 2)\n"
        "  -t, --threads N         CPU threads\n"
        "      --device D          cpu (default) or cuda: the step on the GPU (target\n"
        "                          matrices in bf16 there, the hypernetwork in fp32);\n"
        "                          cpu-staged: the GPU's code path on the CPU (tests)\n"
        "      --tf32              with --device cuda: the hypernetwork's fp32 GEMMs on\n"
        "                          TF32 tensor cores (~8x faster, ~5e-4 input rounding)\n"
        "      --recompute-target  keep only the input of each frozen target layer\n"
        "                          [L, N) and rerun it in the backward: same results,\n"
        "                          less memory (~170 MiB on SmolLM2), 10-25% slower\n"
        "      --fp32-target       keep the frozen target layers [L, N) in fp32 instead\n"
        "                          of as the weight file stores them (converted a layer\n"
        "                          at a time, the same values): more memory, no\n"
        "                          conversions (CPU; the GPU has its own copy)\n"
        "  -o, --output FILE       log records to FILE (atomically)\n"
        "  -z, --gzip              gzip the log\n"
        "  -h, --help              this text\n"
        "      --version           version, and the features of this build (mpi, nccl)\n"
        "Data parallel (a build with mpi): mpirun -np N hd-train -o LOG ... splits every\n"
        "batch over N processes (rank r: examples r, r+N, ...) with the same result as\n"
        "one process; rank 0 reads the input and writes the log and the checkpoints\n"
        "(DIR must be visible to every rank); a checkpoint resumes with any N.\n";

const char *train_cli_usage(void) { return usage_text; }


/* The option table. */
enum { OPT_RESUME = 256, OPT_OVERWRITE, OPT_METHOD, OPT_PAIRS, OPT_VAL, OPT_LAYER, OPT_HL, OPT_DAS, OPT_SUB, OPT_SUBFFN, OPT_SCRATCH,
       OPT_HEADSTD, OPT_EPOCHS, OPT_MAXSTEPS, OPT_LR, OPT_LRROT, OPT_LRMASK, OPT_WD, OPT_CLIP,
       OPT_WARMUP, OPT_SCHED, OPT_CW, OPT_IW, OPT_SP, OPT_NOSP, OPT_SEED, OPT_EVERY, OPT_MODES,
       OPT_ETOK, OPT_EMAX, OPT_SAVE, OPT_KEEP, OPT_RECOMPUTE, OPT_FP32T, OPT_VERSION, OPT_DEVICE,
       OPT_TF32 };
static const struct option longopts[] = {
    {"model", required_argument, 0, 'm'}, {"checkpoint", required_argument, 0, 'c'},
    {"method", required_argument, 0, OPT_METHOD}, {"resume", required_argument, 0, OPT_RESUME}, {"val", required_argument, 0, OPT_VAL},
    {"from-pairs", no_argument, 0, OPT_PAIRS}, {"overwrite", no_argument, 0, OPT_OVERWRITE},
    {"layer", required_argument, 0, OPT_LAYER}, {"hyper-layers", required_argument, 0, OPT_HL},
    {"das-dim", required_argument, 0, OPT_DAS}, {"subspace", required_argument, 0, OPT_SUB},
    {"sub-ffn", required_argument, 0, OPT_SUBFFN}, {"from-scratch", no_argument, 0, OPT_SCRATCH},
    {"head-std", required_argument, 0, OPT_HEADSTD}, {"epochs", required_argument, 0, OPT_EPOCHS},
    {"max-steps", required_argument, 0, OPT_MAXSTEPS}, {"batch", required_argument, 0, 'b'},
    {"lr", required_argument, 0, OPT_LR}, {"lr-rotate", required_argument, 0, OPT_LRROT},
    {"lr-mask", required_argument, 0, OPT_LRMASK}, {"weight-decay", required_argument, 0, OPT_WD},
    {"clip", required_argument, 0, OPT_CLIP}, {"warmup-steps", required_argument, 0, OPT_WARMUP},
    {"schedule", required_argument, 0, OPT_SCHED}, {"causal-weight", required_argument, 0, OPT_CW},
    {"iso-weight", required_argument, 0, OPT_IW}, {"sparsity", required_argument, 0, OPT_SP},
    {"no-sparsity", no_argument, 0, OPT_NOSP}, {"seed", required_argument, 0, OPT_SEED},
    {"eval-every", required_argument, 0, OPT_EVERY}, {"eval-modes", required_argument, 0, OPT_MODES},
    {"eval-tokens", required_argument, 0, OPT_ETOK}, {"eval-max", required_argument, 0, OPT_EMAX},
    {"save-every", required_argument, 0, OPT_SAVE}, {"keep", required_argument, 0, OPT_KEEP},
    {"threads", required_argument, 0, 't'}, {"output", required_argument, 0, 'o'},
    {"recompute-target", no_argument, 0, OPT_RECOMPUTE}, {"fp32-target", no_argument, 0, OPT_FP32T},
    {"device", required_argument, 0, OPT_DEVICE}, {"tf32", no_argument, 0, OPT_TF32},
    {"gzip", no_argument, 0, 'z'}, {"help", no_argument, 0, 'h'},
    {"version", no_argument, 0, OPT_VERSION}, {0, 0, 0, 0}};

const char *const *train_cli_long_options(void)
{
    static const char *names[sizeof longopts / sizeof longopts[0]];
    if (!names[0])
        for (size_t i = 0; longopts[i].name; i++) names[i] = longopts[i].name;
    return names;
}

static void parse_sparsity(TrainOptions *o, const char *arg)
{
    int used = 0; /* the whole argument, three finite weights >= 0, a fraction */
    if (sscanf(arg, "%lf:%lf:%lf%n", &o->sp_start, &o->sp_end, &o->sp_warmup, &used) != 3 || arg[used] ||
        !isfinite(o->sp_start) || !isfinite(o->sp_end) || o->sp_start < 0 || o->sp_end < 0 ||
        !(o->sp_warmup >= 0 && o->sp_warmup <= 1))
        hd_usage_error("--sparsity: expected START:END:WARMUP_FRACTION, got '%s'", arg);
    o->sparsity = 1; /* the last of --sparsity / --no-sparsity wins */
}

void train_cli_parse(TrainCli *cli, int argc, char **argv, int world, int rank)
{
    cli->device = HN_DEVICE_CPU;
    cli->tf32 = 0;
    TrainOptions o = {.ckpt = "hd-train.ckpt", .epochs = 5, .batch = 16, .eval_every = 2000,
                 .save_every = 2000, .keep = 2, .lr = 4e-5, .lr_rotate = -1, .lr_mask = 1e-2,
                 .wd = 0.01, .clip = -1, .schedule = "constant", .causal_w = -1, .iso_w = -1,
                 .sp_start = 0.15, .sp_end = 1.5, .sp_warmup = 0.5, .sparsity = 1, .head_std = 0.02,
                 .seed = 42, .layer = -1, .hyper_layers = -1,
                 .das_dim = -1, .sub_ffn = -1};
    int c;
    while ((c = getopt_long(argc, argv, "m:c:b:t:o:zh", longopts, NULL)) != -1) {
        switch (c) {
        case 'm': o.model = optarg; break;
        case 'c': o.ckpt = optarg; break;
        case OPT_METHOD: o.method = optarg; break;
        case OPT_RESUME: o.resume = optarg; break;
        case OPT_OVERWRITE: o.overwrite = 1; break;
        case OPT_VAL: o.val = optarg; break;
        case OPT_PAIRS: o.from_pairs = 1; break;
        case OPT_RECOMPUTE: o.recompute_target = 1; break;
        case OPT_FP32T: o.fp32_target = 1; break;
        case OPT_TF32: cli->tf32 = 1; break;
        case OPT_DEVICE: cli->device = hn_device_parse(optarg); break;
        case OPT_LAYER: o.layer = hd_cli_parse_count("--layer", optarg); break;
        case OPT_HL: o.hyper_layers = hd_cli_parse_count("--hyper-layers", optarg); break;
        case OPT_DAS: o.das_dim = hd_cli_parse_count_min("--das-dim", optarg, 1); break;
        case OPT_SUB: o.subspace = optarg; break;
        case OPT_SUBFFN: o.sub_ffn = hd_cli_parse_count_min("--sub-ffn", optarg, 1); break;
        case OPT_SCRATCH: o.from_scratch = 1; o.given |= TRAIN_GIVEN_SCRATCH; break;
        case OPT_HEADSTD:
            o.head_std = hd_cli_parse_double_min("--head-std", optarg, 0);
            o.given |= TRAIN_GIVEN_HEAD_STD;
            break;
        case OPT_EPOCHS: o.epochs = hd_cli_parse_count_min("--epochs", optarg, 1); break;
        case OPT_MAXSTEPS: o.max_steps = hd_cli_parse_count("--max-steps", optarg); break;
        case 'b': o.batch = hd_cli_parse_count_min("--batch", optarg, 1); o.given |= TRAIN_GIVEN_BATCH; break;
        /* rates, weights and norms: finite and >= 0 (0: frozen group, no
         * clipping, no such loss); NaN or a negative rate trains nothing */
        case OPT_LR: o.lr = hd_cli_parse_double_min("--lr", optarg, 0); o.given |= TRAIN_GIVEN_LR; break;
        case OPT_LRROT: o.lr_rotate = hd_cli_parse_double_min("--lr-rotate", optarg, 0); break;
        case OPT_LRMASK:
            o.lr_mask = hd_cli_parse_double_min("--lr-mask", optarg, 0);
            o.given |= TRAIN_GIVEN_LR_MASK;
            break;
        case OPT_WD: o.wd = hd_cli_parse_double_min("--weight-decay", optarg, 0); o.given |= TRAIN_GIVEN_WD; break;
        case OPT_CLIP: o.clip = hd_cli_parse_double_min("--clip", optarg, 0); break;
        case OPT_WARMUP:
            o.warmup = hd_cli_parse_count("--warmup-steps", optarg);
            o.given |= TRAIN_GIVEN_WARMUP;
            break;
        case OPT_SCHED:
            if (strcmp(optarg, "constant") && strcmp(optarg, "linear") && strcmp(optarg, "cosine"))
                hd_usage_error("--schedule: expected constant, linear or cosine");
            o.schedule = optarg;
            o.given |= TRAIN_GIVEN_SCHEDULE;
            break;
        case OPT_CW: o.causal_w = hd_cli_parse_double_min("--causal-weight", optarg, 0); break;
        case OPT_IW: o.iso_w = hd_cli_parse_double_min("--iso-weight", optarg, 0); break;
        case OPT_SP: parse_sparsity(&o, optarg); o.given |= TRAIN_GIVEN_SPARSITY; break;
        case OPT_NOSP: o.sparsity = 0; o.given |= TRAIN_GIVEN_SPARSITY; break;
        case OPT_SEED: o.seed = (uint64_t)hd_cli_parse_count("--seed", optarg); o.given |= TRAIN_GIVEN_SEED; break;
        case OPT_EVERY: o.eval_every = hd_cli_parse_count("--eval-every", optarg); break;
        case OPT_MODES: o.eval_modes = optarg; break;
        case OPT_ETOK: o.eval_tokens = hd_cli_parse_count("--eval-tokens", optarg); break;
        case OPT_EMAX: o.eval_max = hd_cli_parse_count("--eval-max", optarg); break;
        case OPT_SAVE: o.save_every = hd_cli_parse_count("--save-every", optarg); break;
        case OPT_KEEP: o.keep = hd_cli_parse_count_min("--keep", optarg, 1); break;
        case 't': hd_set_threads((int)hd_cli_parse_count("--threads", optarg)); break;
        case 'o': o.output = optarg; break;
        case 'z': o.gzip = 1; break;
        case 'h': fputs(usage_text, stdout); exit(0);
        case OPT_VERSION:
            hd_cli_print_version();
            printf("features:%s%s\n", dist_compiled() ? " mpi" : "",
                   dist_nccl_compiled() ? " nccl" : "");
            exit(0);
        default: hd_usage_error("unknown option");
        }
    }
    if (o.overwrite && o.resume) hd_usage_error("--overwrite starts a new run and --resume continues one: not both");
    const int use_cuda = cli->device == HN_DEVICE_CUDA;
    if (cli->tf32 && !use_cuda) hd_usage_error("--tf32 is for the GPU's GEMMs: add --device cuda");
    if (use_cuda && o.batch < world)
        hd_usage_error("--device cuda: --batch %ld must give each of the %d processes an example",
                       o.batch, world);
    /* Open MPI's mpirun hands rank 0 a terminal as stdout (a pty, which
     * would also mangle binary records): say how to get the log */
    if (world > 1 && rank == 0 && !o.output && isatty(STDOUT_FILENO))
        hd_usage_error("under mpirun, write the log to a file with -o FILE (stdout is a terminal)");
    if (rank == 0 && o.batch < world)
        hd_warn("--batch %ld is smaller than the %d processes: some have nothing to do", o.batch,
                world);
    cli->as_given = o; /* before the defaults: what --resume must agree with */
    if (train_options_method_defaults(&o) < 0) hd_usage_error("--method: %s", hd_last_error());
    {   /* every --eval-modes name must be known before hours of training */
        char *m = hd_strdup(o.eval_modes);
        for (char *save = NULL, *t = strtok_r(m, ",", &save); t; t = strtok_r(NULL, ",", &save))
            if (selection_mode_from_name(t) < 0) hd_usage_error("--eval-modes: unknown mode '%s'", t);
        free(m);
    }
    cli->o = o;
    cli->files = argv + optind;
    cli->n_files = argc - optind;
}
