/* Throughput of the fp32 CPU forward (common/llama_forward, llama_generate)
 * on SmolLM2-135M: the batched forward HyperDAS runs on prompts, the
 * activation backward of layers [L, N), greedy generation with the KV
 * cache, and a bare cblas_sgemm at the forward's largest projection shape
 * as the ceiling the forward is measured against.
 *
 *   make bin/bench/bench_llama_forward_cpu
 *   bin/bench/bench_llama_forward_cpu [MODEL.gguf|random] [b] [T] [new]
 * Defaults: models/SmolLM2-135M-Instruct.Q4_1.gguf, b 32, T 48, 32 new
 * tokens.  "random" builds a model with SmolLM2's shapes and random weights
 * (same timings; no file needed).  Threads: OMP_NUM_THREADS and
 * OPENBLAS_NUM_THREADS as usual.  Each timing is the best of a few runs.
 * The left padding of row r is r % 5 tokens. */
#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/error.h"
#include "model/llama_forward.h"
#include "model/llama_generate.h"
#include "model/llama_load.h"

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

static unsigned long long rng = 88172645463325252ULL;
static float urand(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (float)((rng >> 11) * (1.0 / 9007199254740992.0) * 2 - 1);
}

static int random_smollm2(LlamaModel *m)
{
    LlamaConfig c;
    memset(&c, 0, sizeof c);
    c.vocab_size = 49152;
    c.hidden_size = 576;
    c.intermediate_size = 1536;
    c.n_layers = 30;
    c.n_heads = 9;
    c.n_kv_heads = 3;
    c.head_dim = 64;
    c.max_position_embeddings = 8192;
    c.rms_norm_eps = 1e-5f;
    c.rope_theta = 100000.0f;
    c.tie_word_embeddings = 1;
    c.bos_token_id = 1;
    c.eos_token_id = 2;
    snprintf(c.model_id, sizeof c.model_id, "random-smollm2-shapes");
    if (llama_model_alloc(m, &c)) return -1;
    for (size_t i = 0; i < m->n_params; i++) m->params[i] = 0.05f * urand();
    for (int l = 0; l < c.n_layers; l++)
        for (int i = 0; i < c.hidden_size; i++) m->layers[l].attn_norm[i] = m->layers[l].ffn_norm[i] = 1;
    for (int i = 0; i < c.hidden_size; i++) m->final_norm[i] = 1;
    return 0;
}

int main(int argc, char **argv)
{
    const char *path = argc > 1 ? argv[1] : "models/SmolLM2-135M-Instruct.Q4_1.gguf";
    int b = argc > 2 ? atoi(argv[2]) : 32, T = argc > 3 ? atoi(argv[3]) : 48;
    int n_new = argc > 4 ? atoi(argv[4]) : 32;
    if (b < 1 || T < 6 || n_new < 1) {
        fprintf(stderr, "usage: %s [MODEL.gguf|random] [b] [T>=6] [new]\n", argv[0]);
        return 2;
    }
    LlamaModel m;
    double t0 = now();
    if (strcmp(path, "random") == 0 ? random_smollm2(&m) : llama_load(&m, path)) {
        fprintf(stderr, "%s\n", hd_last_error());
        return 1;
    }
    const LlamaConfig *c = &m.cfg;
    printf("model %s (%s), loaded in %.2f s; OpenBLAS threads %d\n", c->model_id, path, now() - t0,
           openblas_get_num_threads());
    const int N = b * T, d = c->hidden_size, F = c->intermediate_size, L = c->n_layers;
    const double qd = (double)c->n_heads * c->head_dim, kvd = (double)c->n_kv_heads * c->head_dim;
    const double flops_per_token = 2.0 * L * (2 * d * qd + 2 * d * kvd + 3.0 * d * F);
    int *ids = malloc(N * sizeof *ids), *mask = malloc(N * sizeof *mask);
    for (int i = 0; i < N; i++) {
        ids[i] = 1 + (i * 7919) % (c->vocab_size - 1);
        mask[i] = (i % T) >= (i / T) % 5;
    }

    const int cut = L / 2;
    LlamaActivations *a = llama_acts_create(c, b, T, cut);
    if (!a) {
        fprintf(stderr, "%s\n", hd_last_error());
        return 1;
    }
    double best = 1e30;
    for (int r = 0; r < 3; r++) {
        t0 = now();
        if (llama_forward(&m, a, ids, mask, NULL, b, T)) return 1;
        double dt = now() - t0;
        if (dt < best) best = dt;
    }
    double fwd = best;
    printf("forward b=%d T=%d (%d tokens): %.3f s, %.0f tokens/s, %.1f GFLOP/s in the projections\n",
           b, T, N, fwd, N / fwd, flops_per_token * N / fwd / 1e9);

    int *rows = malloc(b * sizeof *rows);
    for (int r = 0; r < b; r++) rows[r] = r * T + T - 1;
    t0 = now();
    llama_forward_logits(&m, a, rows, b);
    printf("LM head at the %d last positions: %.3f s\n", b, now() - t0);

    float *dres = malloc((size_t)N * d * sizeof *dres);
    best = 1e30;
    for (int r = 0; r < 2; r++) {
        for (size_t i = 0; i < (size_t)N * d; i++) dres[i] = 1e-3f * urand();
        t0 = now();
        if (llama_backward_range(&m, a, dres, cut, L, NULL)) return 1;
        double dt = now() - t0;
        if (dt < best) best = dt;
    }
    printf("backward of layers [%d, %d), activations only (layers kept): %.3f s\n", cut, L, best);

    int *out = malloc((size_t)b * n_new * sizeof *out);
    t0 = now();
    llama_generate_greedy(&m, ids, mask, 1, T, n_new, NULL, 0, out);
    double g = now() - t0;
    printf("greedy b=1, prompt %d + %d new: %.3f s (%.1f new tokens/s incl. prefill)\n", T, n_new,
           g, n_new / g);
    t0 = now();
    llama_generate_greedy(&m, ids, mask, b, T, n_new, NULL, 0, out);
    g = now() - t0;
    printf("greedy b=%d, prompt %d + %d new: %.3f s (%.1f new tokens/s incl. prefill)\n", b, T,
           n_new, g, (double)b * n_new / g);

    /* ceiling: the largest projection of the forward as one bare sgemm */
    float *A = malloc(sizeof(float) * N * d), *B = malloc(sizeof(float) * F * d);
    float *C = malloc(sizeof(float) * N * F);
    for (long i = 0; i < (long)N * d; i++) A[i] = urand();
    for (long i = 0; i < (long)F * d; i++) B[i] = urand();
    best = 1e30;
    for (int r = 0; r < 5; r++) {
        t0 = now();
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, N, F, d, 1, A, d, B, d, 0, C, F);
        double dt = now() - t0;
        if (dt < best) best = dt;
    }
    printf("bare sgemm %d x %d x %d: %.1f GFLOP/s\n", N, F, d, 2.0 * N * F * d / best / 1e9);

    free(A), free(B), free(C), free(out), free(dres), free(rows), free(ids), free(mask);
    llama_acts_free(a);
    llama_model_free(&m);
    return 0;
}
