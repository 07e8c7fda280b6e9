/* The optimiser's share of a HyperDAS step on SmolLM2: AdamW over the
 * hypernetwork's whole buffer with one span per tensor (the GPU path, and
 * the CPU before decay_only spans) against hd-train's CPU spans, where the
 * embedding rows no batch has used only decay (hypernet_adamw_spans_split).
 * The same updates either way (tests/test_hypernet.c); this measures the
 * time.  R rows of the embedding are marked as used, as a run's
 * instruction tokens mark them (a few hundred in the RAVEL studies).
 *
 *   OMP_NUM_THREADS=2 bin/bench/bench_adamw [LH] [R] [REPEATS]
 *
 * Prints the median milliseconds of each, alternating, and the ratio. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/cli.h"
#include "base/error.h"
#include "base/rng.h"
#include "cpu/adamw.h"
#include "hypernet/hypernet.h"
#include "hypernet/hypernet_internal.h"

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int main(int argc, char **argv)
{
    hd_cli_init(argc, argv, "bench_adamw");
    const int lh = argc > 1 ? atoi(argv[1]) : 8, rows = argc > 2 ? atoi(argv[2]) : 400;
    const int reps = argc > 3 ? atoi(argv[3]) : 15;
    LlamaConfig c; /* SmolLM2-135M */
    memset(&c, 0, sizeof c);
    c.vocab_size = 49152, c.hidden_size = 576, c.intermediate_size = 1536, c.n_layers = 30;
    c.n_heads = 9, c.n_kv_heads = 3, c.head_dim = 64, c.max_position_embeddings = 8192;
    c.rms_norm_eps = 1e-5f, c.rope_theta = 100000.0f, c.tie_word_embeddings = 1;
    HypernetConfig cfg = hypernet_default_config(&c);
    cfg.n_layers = lh;
    Hypernet *hn = hypernet_create(&cfg, &c);
    if (!hn) hd_die("%s", hd_last_error());
    const size_t n = hn->n_params, d = (size_t)c.hidden_size;
    float *m = calloc(n, sizeof *m), *v = calloc(n, sizeof *v);
    Rng rng;
    rng_seed(&rng, 1);
    for (size_t i = 0; i < n; i++) hn->params[i] = (float)((rng_next(&rng) >> 40) * 0x1p-24) - 0.5f;
    int *ids = malloc((size_t)rows * sizeof *ids);
    for (int i = 0; i < rows; i++) ids[i] = (int)(rng_next(&rng) % (uint64_t)c.vocab_size);
    hn_mark_embed_rows(hn, ids, rows);
    /* a gradient where the backward writes one: everything but the
     * embedding, and the marked rows */
    const size_t emb = (size_t)(hn->g.tok_embed - hn->grads), ne = (size_t)c.vocab_size * d;
    for (size_t i = 0; i < n; i++)
        if (i < emb || i >= emb + ne || hn->embed_row_moved[(i - emb) / d])
            hn->grads[i] = (float)((rng_next(&rng) >> 40) * 0x1p-24) - 0.5f;
    float lr[HN_N_GROUPS] = {4e-5f, 1e-3f, 1e-2f, 0}, wd[HN_N_GROUPS] = {0.01f, 0, 0.01f, 0};
    AdamWSpan *full = malloc((size_t)hypernet_param_count(hn) * sizeof *full), *split = NULL;
    int cap = 0;
    const int nf = hypernet_adamw_spans(hn, lr, wd, full);
    const int ns = hypernet_adamw_spans_split(hn, lr, wd, &split, &cap);
    AdamWConfig acfg = adamw_default_config();
    double *tf = malloc((size_t)reps * sizeof *tf), *ts = malloc((size_t)reps * sizeof *ts);
    long step = 1;
    adamw_step(hn->params, hn->grads, 1.0f, m, v, full, nf, &acfg, step++); /* warm-up */
    for (int r = 0; r < reps; r++) {
        double t0 = hd_now_seconds();
        adamw_step(hn->params, hn->grads, 1.0f, m, v, full, nf, &acfg, step++);
        double t1 = hd_now_seconds();
        adamw_step(hn->params, hn->grads, 1.0f, m, v, split, ns, &acfg, step++);
        tf[r] = t1 - t0, ts[r] = hd_now_seconds() - t1;
    }
    qsort(tf, (size_t)reps, sizeof *tf, cmp_double);
    qsort(ts, (size_t)reps, sizeof *ts, cmp_double);
    printf("bench_adamw: Lh %d, %zu values (embedding %zu), %d rows used; median of %d:"
           " one span per tensor %.1f ms, decay_only spans (%d spans) %.1f ms, %.2fx\n",
           lh, n, ne, rows, reps, 1e3 * tf[reps / 2], ns, 1e3 * ts[reps / 2], tf[reps / 2] / ts[reps / 2]);
    free(tf), free(ts), free(full), free(split), free(ids), free(m), free(v);
    hypernet_free(hn);
    return 0;
}
