/* cache-acts: run the target model on pair records and cache its
 * activations as `acts` records (hyperdas-records(5) ACTS), the input of hd-train
 * (common/acts_cache does the work).
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
 * (4 batches) are run once, and each distinct sequence's states are written
 * once in the stream, as a `states` record that the acts records name
 * (common/stream/acts_states.h); every reader resolves them, so a tool sees
 * self-contained records.  --inline-states writes the states into every
 * record instead (a stream that can be cut or shuffled record by record). */
#include "acts/acts_cache.h"
#include "base/cli.h"
#include "base/error.h"
#include "stream/header.h"
#include "stream/map_writer.h"
#include "stream/record_input.h"
#include "stream/record_shard.h"
#include "stream/records.h"
#include "model/target_model.h"

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
        "      --inline-states every acts record holds its own hidden states (default:\n"
        "                      each distinct sequence's states once, in a states\n"
        "                      record that the acts records name)\n"
        "      --max-len N     longest sequence in tokens (default 256)\n"
        "      --no-bos        do not prepend the model's BOS token\n"
        "      --shard I/N     write shard I of N (0 <= I < N; PAIRS must be files):\n"
        "                      'cat' of the N shards has the unsharded run's acts\n"
        "                      records, byte for byte (same --batch; a shard repeats\n"
        "                      the states records it needs).  Started by\n"
        "                      mpirun or srun as N processes without --shard: rank I\n"
        "                      writes shard I to FILE.shard-I-of-N (-o FILE needed)\n"
        "      --device D      cpu (default) or cuda: the forward on the GPU\n"
        "                      ($HD_CUDA_DEVICE picks one) with bf16 weight matrices,\n"
        "                      as PyTorch runs a bf16 model; the header says which\n"
        "  -t, --threads N     CPU threads (default: all)\n"
        "  -o, --output FILE   write to FILE (atomically) instead of stdout\n"
        "  -z, --gzip          gzip the whole output stream\n"
        "  -h, --help          this text\n"
        "      --version       version\n");
}


int main(int argc, char **argv)
{
    hd_cli_init(argc, argv, "cache-acts");
    const char *model = NULL, *output = NULL, *layer_spec = "all";
    int batch = 8, gzip = 0, max_len = 256, use_bos = 1, zlib = 0, use_cuda = 0, inline_states = 0;
    DType dtype = DTYPE_BF16;
    RecordShard shard = {0, 1};
    int sharded = 0;
    enum { OPT_DTYPE = 256, OPT_ZLIB, OPT_MAX_LEN, OPT_NO_BOS, OPT_SHARD, OPT_DEVICE, OPT_INLINE,
           OPT_VERSION };
    static const struct option longopts[] = {
        {"model", required_argument, 0, 'm'},   {"batch", required_argument, 0, 'b'},
        {"layers", required_argument, 0, 'l'},  {"dtype", required_argument, 0, OPT_DTYPE},
        {"zlib", required_argument, 0, OPT_ZLIB}, {"max-len", required_argument, 0, OPT_MAX_LEN},
        {"no-bos", no_argument, 0, OPT_NO_BOS}, {"shard", required_argument, 0, OPT_SHARD},
        {"device", required_argument, 0, OPT_DEVICE}, {"inline-states", no_argument, 0, OPT_INLINE},
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
        case OPT_DEVICE: use_cuda = hd_cli_parse_device(optarg); break;
        case OPT_INLINE: inline_states = 1; break;
        case 't': hd_set_threads((int)hd_cli_parse_count("--threads", optarg)); break;
        case 'o': output = optarg; break;
        case 'z': gzip = 1; break;
        case 'h': usage(); return 0;
        case OPT_VERSION: hd_cli_print_version(); return 0;
        default: hd_usage_error("unknown option");
        }
    }
    if (batch < 1) hd_usage_error("--batch must be at least 1");
    hd_blas_warn_slow_kernels();
    char **files = argv + optind;
    int n_files = argc - optind;
    char *rank_output = NULL; /* started by mpirun/srun: this rank's shard */
    if (!sharded) {
        sharded = record_shard_from_launcher(&shard, output, &rank_output);
        if (sharded < 0) hd_usage_error("%s", hd_last_error());
        if (sharded) output = rank_output;
    }
    if (sharded && record_shard_check_inputs(files, n_files) < 0)
        hd_usage_error("%s", hd_last_error());

    TargetModel target;
    const char *path = target_model_resolve(model);
    if (!path || target_model_load(&target, path, use_bos) < 0) hd_die("%s", hd_last_error());
    if (target_model_check_max_len(&target, max_len, "--max-len") < 0) hd_usage_error("%s", hd_last_error());
    ActsCache cache;
    if (acts_cache_init(&cache, &target, batch, layer_spec, dtype, zlib, max_len) < 0)
        hd_usage_error("%s", hd_last_error());
    if (inline_states) acts_cache_inline_states(&cache);
    if (use_cuda && acts_cache_use_cuda(&cache) < 0) hd_die("--device cuda: %s", hd_last_error());

    /* pair_window_run batches pairs `batch` at a time from the start and
     * after any other record: a shard is cut only there */
    ShardBatching how = {"pair", batch, 1};
    ShardRange range;
    RecordInput *in = record_shard_open(files, n_files, sharded ? &shard : NULL, &how, &range);
    if (!in) hd_die("%s", hd_last_error());
    RecordWriter *out = record_writer_open(output, gzip);
    if (!out) hd_die("%s", hd_last_error());
    MapWriter h;
    header_begin(&h, record_writer_packer(out), "acts", record_input_headers(in), record_input_n_headers(in));
    acts_cache_pack_header(&cache, &h);
    if (sharded) record_shard_pack(&h, &shard);
    if (map_end(&h) < 0 || record_writer_end_record(out) < 0) hd_die("%s", hd_last_error());

    if (acts_cache_run(&cache, in, out) < 0) hd_die("%s", hd_last_error());
    if (record_writer_close(out) < 0) hd_die("%s", hd_last_error());
    acts_cache_free(&cache);
    record_input_close(in);
    target_model_free(&target);
    free(rank_output);
    return 0;
}
