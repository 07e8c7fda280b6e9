/* The GPU memory of hd-train --device cuda, planned from the allocation
 * code itself: the target's weights as llama_cuda_create_from uploads them
 * (layers [L, N) and the LM head in bf16, norms in fp32), the
 * hypernetwork's parameters, gradients and AdamW moments in fp32, and
 * hn_acts_bytes (every activation, the target's kept layers, the logits of
 * every base token, the backward's scratch) for one batch shape.  Not
 * counted: the kernels' grow-only scratch (bf16 copies of a projection's
 * input, the attention backward's temporaries: at most a few of the
 * largest activations), cuBLAS's workspace and the CUDA context (~0.5 GB).
 * A plan, not a measurement: the measured peak needs a GPU (bench/NOTES.md).
 *
 *   bin/bench/bench_memory_plan [llama3-8b | MODEL] [b E B S] [--recompute-target]
 *
 * llama3-8b uses the configuration of hyperdas(7) 12 (no weights needed);
 * MODEL is a model path as hd-train -m takes it (only the configuration is
 * used).  b E B S default to 16 12 29
 * 36, the median batch of the SmolLM2 RAVEL city runs (bench/NOTES.md).  The hypernetwork has hd-train's defaults for that target (8
 * layers, L 15, k 128, ReflectSelect with the target's MLP width). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/cli.h"
#include "base/error.h"
#include "hypernet/hypernet.h"
#include "model/llama_cuda.h"
#include "model/target_model.h"

static LlamaConfig llama3_8b(void)
{
    LlamaConfig c;
    memset(&c, 0, sizeof c);
    c.vocab_size = 128256, c.hidden_size = 4096, c.intermediate_size = 14336, c.n_layers = 32;
    c.n_heads = 32, c.n_kv_heads = 8, c.head_dim = 128, c.max_position_embeddings = 8192;
    c.rms_norm_eps = 1e-5f, c.rope_theta = 500000.0f, c.tie_word_embeddings = 0;
    snprintf(c.model_id, sizeof c.model_id, "Meta-Llama-3-8B (hyperdas(7) 12)");
    return c;
}

static double gib(size_t bytes)
{
    return bytes / 1073741824.0;
}

int main(int argc, char **argv)
{
    hd_cli_init(argc, argv, "bench_memory_plan");
    int recompute = 0, n_pos = 0;
    const char *pos[5] = {"llama3-8b", "16", "12", "29", "36"};
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--recompute-target") == 0)
            recompute = 1;
        else if (n_pos < 5)
            pos[n_pos++] = argv[i];
    }
    LlamaConfig cfg;
    TargetModel tm;
    memset(&tm, 0, sizeof tm);
    if (strcmp(pos[0], "llama3-8b") == 0) {
        cfg = llama3_8b();
    } else {
        const char *path = target_model_resolve(pos[0]);
        if (!path || target_model_load(&tm, path, 1) < 0) hd_die("%s", hd_last_error());
        cfg = tm.model.cfg;
    }
    const int b = atoi(pos[1]), E = atoi(pos[2]), B = atoi(pos[3]), S = atoi(pos[4]);
    if (b < 1 || E < 1 || B < 2 || S < 1) hd_die("bad batch shape b=%d E=%d B=%d S=%d", b, E, B, S);

    /* the parameter buffers are calloc'ed: untouched, they take no memory here */
    HypernetConfig hc = hypernet_default_config(&cfg);
    Hypernet *hn = hypernet_create(&hc, &cfg);
    if (!hn) hd_die("%s", hd_last_error());
    const size_t d = cfg.hidden_size, V = cfg.vocab_size;
    const size_t target = llama_cuda_bytes(&cfg, hc.intervention_layer);
    const size_t params = hn->n_params * sizeof(float);
    const size_t acts = hn_acts_bytes(hn, b, E, B, S, recompute, 1) - 2 * params;
    const size_t total = target + 4 * params + acts;
    printf("%s: d %zu, %d layers, vocabulary %zu; hypernetwork %d layers, L %d, k %d, "
           "%.3f G parameters\n",
           cfg.model_id, d, cfg.n_layers, V, hc.n_layers, hc.intervention_layer, hc.das_dim,
           hn->n_params / 1e9);
    printf("batch b=%d E=%d B=%d S=%d%s\n", b, E, B, S, recompute ? ", --recompute-target" : "");
    printf("  target layers [%d, %d) + LM head, bf16   %8.2f GiB\n", hc.intervention_layer,
           cfg.n_layers, gib(target));
    printf("  hypernetwork parameters, fp32          %8.2f GiB\n", gib(params));
    printf("  gradients, fp32                        %8.2f GiB\n", gib(params));
    printf("  AdamW moments m, v, fp32               %8.2f GiB\n", gib(2 * params));
    printf("  activations of the step                %8.2f GiB\n", gib(acts));
    printf("  total (without kernel scratch, cuBLAS, context) %.2f GiB\n", gib(total));
    hypernet_free(hn);
    target_model_free(&tm);
    return 0;
}
